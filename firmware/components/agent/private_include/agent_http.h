/* agent_http.h - the agent's HTTPS server (TLS 1.2, optional client
 * certificates), driven from agent_step()'s select() loop: non-blocking
 * sockets, one state machine per connection, one request per connection.
 * Console commands: "http start" / "http stop" (commands.c). */
#ifndef AGENT_HTTP_H
#define AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

#include "agent_limits.h" /* AGENT_HTTP_MAX_CLIENTS, AGENT_HTTP_TIMEOUT_MS, AGENT_HTTP_LINGER_MS */
#include "agent_mbedtls_compat.h"

struct agent;

typedef enum {
    HTTP_CLIENT_FREE,
    HTTP_CLIENT_HANDSHAKE,
    HTTP_CLIENT_READ,   /* request head (+ body) */
    HTTP_CLIENT_WRITE,  /* response */
    HTTP_CLIENT_LINGER, /* response sent, write side shut: drain until FIN */
} http_client_state_t;

typedef struct {
    http_client_state_t state;
    int fd;
    bool want_write; /* TLS asked for writability */
    bool ssl_inited;
    mbedtls_ssl_context ssl;
    uint64_t deadline_ms;
    char peer[56]; /* "1.2.3.4:port" / "[v6]:port" for log lines */
    uint8_t *rx;   /* HTTP_HEAD_MAX + HTTP_BODY_MAX bytes while reading */
    size_t rx_len;
    char *tx; /* the response while writing */
    size_t tx_len, tx_off;
} agent_http_client_t;

typedef struct {
    bool running;
    bool mutual; /* http.ssl_ca_cert set: client certificate required */
    int listen_fd;
    uint16_t port;   /* actual port */
    char bound[80];  /* "<host>:<port>" as bound (numeric), for status */
    uint32_t requests; /* responses sent since http start */
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_x509_crt ca;
    mbedtls_pk_context key;
    agent_http_client_t clients[AGENT_HTTP_MAX_CLIENTS];
} agent_http_t;

/* Called by agent_init: nothing open. */
void agent_http_init(struct agent *a);
/* "http start": (re)start with the current settings. Logs "HTTP server
 * started on [<port>] (SSL...)" and prints "http.port=<port>"; 0, or -1 with
 * a reason for "ERR <reason>" in err. */
int agent_http_start(struct agent *a, char *err, size_t errlen);
/* "http stop": close the listener and every client. log: "HTTP server
 * stopped" (only when it was running). */
void agent_http_stop(struct agent *a, bool log);
bool agent_http_running(const struct agent *a);
/* `tls keylog` switched (the command layer calls this after agent_keylog_on /
 * agent_keylog_off): the connections still in their handshake export their
 * secrets to sink from now on (NULL: no longer). */
void agent_http_export_secrets(struct agent *a, agent_tls_secret_t *sink);

/* Main loop: add the server's descriptors to rd/wr (returns the new max fd)
 * and lower *wait_ms to the nearest connection deadline. */
int agent_http_fdset(struct agent *a, fd_set *rd, fd_set *wr, int maxfd, uint32_t *wait_ms);
/* After select(): accept, advance every connection whose descriptor is
 * ready, expire deadlines. */
void agent_http_service(struct agent *a, const fd_set *rd, const fd_set *wr);

/* The request/response core, without sockets (also used by tests and the
 * fuzzer): given the bytes received so far, returns 0 when more are needed,
 * or 1 when a complete response (head and, unless HEAD, body) is in
 * out[0..*out_len) with *status; then the request's log line ("HTTP <METHOD>
 * <path> <status>[ cn=<cn>]" or "HTTP bad request <status>: <reason>") has
 * been written and the request counted. cn: verified client certificate CN
 * or NULL. out must hold AGENT_HTTP_RESPONSE_MAX bytes. */
#define AGENT_HTTP_RESPONSE_MAX 2048u
int agent_http_process(struct agent *a, const uint8_t *buf, size_t len, const char *cn, char *out,
                       size_t *out_len, int *status);

#endif
