/* agent_conn.h - one outgoing connection: TCP (BSD sockets, non-blocking,
 * TCP_NODELAY) with optional mbedTLS TLS 1.2 on top. Nothing here waits:
 * opening is a state machine (conn_open_start, then conn_open_step each time
 * the socket is ready, until it returns 1 or -1), reads and writes return
 * what the socket takes now. No logging here: errors come back in a
 * conn_err_t for the caller to report. */
#ifndef AGENT_CONN_H
#define AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

#include "agent_mbedtls_compat.h"
#include "agent_port.h"
#include "agent_settings.h"

struct addrinfo;

typedef enum {
    CONN_STAGE_NONE,
    CONN_STAGE_RESOLVE, /* getaddrinfo */
    CONN_STAGE_TCP,     /* socket/connect */
    CONN_STAGE_SETUP,   /* TLS configuration (bad cert/key/psk) */
    CONN_STAGE_TLS,     /* TLS handshake */
    CONN_STAGE_IO,      /* read/write after connect */
} conn_stage_t;

typedef struct {
    conn_stage_t stage;
    int code;              /* errno (RESOLVE: getaddrinfo code) or mbedTLS error */
    bool timeout;
    uint32_t verify_flags; /* mbedtls_ssl_get_verify_result() after a TLS failure */
    int alert;             /* description of a fatal alert the peer sent, else -1 */
    char text[160];        /* short human reason, never contains secrets */
} conn_err_t;

typedef struct {
    const char *host;
    uint16_t port;
    uint32_t connect_timeout_ms;   /* TCP connect, over every address of host */
    uint32_t handshake_timeout_ms; /* TLS handshake */
    /* TLS (use_tls=false: plain TCP) */
    bool use_tls;
    const char *ca_pem;   /* NUL-terminated or NULL */
    const char *cert_pem; /* client certificate or NULL */
    const char *key_pem;
    const char *psk_identity; /* NULL = no PSK */
    const uint8_t *psk;
    size_t psk_len;
    const int *suites; /* 0-terminated or NULL for the library default */
    bool verify_hostname;
    mbedtls_ctr_drbg_context *drbg;
    /* `tls keylog`: the session's secrets are exported here during the
     * handshake (agent_mbedtls_compat.h); NULL = no export callback */
    agent_tls_secret_t *secrets;
} conn_params_t;

typedef enum {
    CONN_CLOSED,
    CONN_TCP,       /* non-blocking connect() in progress */
    CONN_HANDSHAKE, /* TLS handshake in progress */
    CONN_OPEN,
} conn_state_t;

typedef struct {
    int fd; /* -1 when closed */
    conn_state_t state;
    bool tls;
    bool ssl_inited;
    bool want_write;      /* CONN_TCP, or the handshake asked for writability */
    size_t retry_len;     /* TLS: length of a write that must be repeated (WANT_WRITE) */
    uint64_t deadline_ms; /* of the current opening stage */
    /* while opening: the parameters (host, suites and PSK copied here; the
     * PEM strings must stay valid until the connection is open) */
    conn_params_t p;
    char host[256];
    struct addrinfo *addrs, *next_addr;
    int last_errno;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    int suites[SETTING_MAX_SUITES];
    uint8_t psk[32]; /* wiped at close */
    const agent_port_t *port;
} agent_conn_t;

void conn_init(agent_conn_t *c, const agent_port_t *port);
/* Start opening: resolve the host (getaddrinfo: immediate for a numeric
 * address), start a non-blocking connect. 0 = in progress (call
 * conn_open_step when conn_fdset's descriptor is ready or its deadline
 * passed), -1 = failed at once (closed, *err says why). */
int conn_open_start(agent_conn_t *c, const conn_params_t *p, conn_err_t *err);
/* Advance the opening without waiting: 1 open, 0 still in progress, -1
 * failed or timed out (closed, *err says why). */
int conn_open_step(agent_conn_t *c, conn_err_t *err);
/* Add the descriptor to rd or wr for what the connection waits on (opening,
 * or want_write = caller has bytes to send) and lower *wait_ms to the opening
 * deadline (0 when TLS holds decrypted bytes). Returns the new max fd. */
int conn_fdset(agent_conn_t *c, bool want_write, fd_set *rd, fd_set *wr, int maxfd,
               uint32_t *wait_ms);
/* Write what the socket takes now: bytes written (0 = try again when
 * writable), or -1 (err filled). After 0, call again with the same buf (it
 * may have grown at its end): TLS repeats exactly the write it started. */
int conn_send(agent_conn_t *c, const uint8_t *buf, size_t len, conn_err_t *err);
/* Non-blocking read: >0 bytes, 0 nothing available now, -1 closed/error. */
int conn_read(agent_conn_t *c, uint8_t *buf, size_t cap, conn_err_t *err);
/* Bytes already decrypted and buffered inside TLS (select would not see them). */
bool conn_pending(agent_conn_t *c);
void conn_close(agent_conn_t *c, bool graceful);
/* A handshake in progress exports its secrets to sink from now on (NULL: no
 * longer); nothing for a connection in another state. */
void conn_export_secrets(agent_conn_t *c, agent_tls_secret_t *sink);
bool conn_is_open(const agent_conn_t *c); /* CONN_OPEN */
bool conn_is_busy(const agent_conn_t *c); /* any state but CONN_CLOSED */
const char *conn_ciphersuite(agent_conn_t *c);
/* The description byte of the fatal alert behind `ret` (an mbedTLS error
 * from a handshake or read), or -1 when ret is not "fatal alert received". */
int conn_received_alert(const mbedtls_ssl_context *ssl, int ret);

#if defined(ESP_PLATFORM)
/* ESP-IDF's lwIP has getaddrinfo() but no gai_strerror() (checked: esp-lwip
 * as used by ESP-IDF v5.1 - v5.4, src/include/lwip/netdb.h): name its EAI_*
 * codes so conn.c and http_server.c build and report the same way there. */
#include <netdb.h>
static inline const char *agent_gai_strerror(int code)
{
    switch (code) {
    case EAI_NONAME: return "name or service not known";
    case EAI_SERVICE: return "service not supported";
    case EAI_FAIL: return "non-recoverable failure in name resolution";
    case EAI_MEMORY: return "memory allocation failure";
    case EAI_FAMILY: return "address family not supported";
    default: return "name resolution failed";
    }
}
#define gai_strerror(code) agent_gai_strerror(code)
#endif

#endif
