/* conn.c - TCP + TLS 1.2 client connection, non-blocking (see agent_conn.h).
 *
 * Opening: conn_open_start resolves the host and starts a non-blocking
 * connect() to its first address; conn_open_step (called when the socket is
 * ready, or its deadline passed) finishes it (SO_ERROR), moves on to the next
 * address after an error, sets TLS up and steps mbedtls_ssl_handshake()
 * through MBEDTLS_ERR_SSL_WANT_READ / WANT_WRITE. Deadlines: TCP connect over
 * every address p->connect_timeout_ms, handshake p->handshake_timeout_ms. */
#include "agent_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static uint64_t now(const agent_conn_t *c)
{
    return c->port->now_ms(c->port->ctx);
}

static bool expired(const agent_conn_t *c)
{
    return now(c) >= c->deadline_ms;
}

void conn_init(agent_conn_t *c, const agent_port_t *port)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = CONN_CLOSED;
    c->port = port;
}

bool conn_is_open(const agent_conn_t *c)
{
    return c->state == CONN_OPEN;
}

bool conn_is_busy(const agent_conn_t *c)
{
    return c->state != CONN_CLOSED;
}

static void set_err(conn_err_t *err, conn_stage_t stage, int code, const char *text)
{
    if (!err) return;
    memset(err, 0, sizeof(*err));
    err->stage = stage;
    err->code = code;
    err->alert = -1;
    snprintf(err->text, sizeof(err->text), "%s", text);
}

/* Is fd writable right now? 1 yes, 0 not yet, -1 error (errno). */
static int writable_now(int fd)
{
    fd_set set;
    struct timeval tv = {0, 0};
    int r;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    do {
        r = select(fd + 1, NULL, &set, NULL, &tv);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* ---- TCP -------------------------------------------------------------------- */

static void close_fd(agent_conn_t *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* A non-blocking socket to ai, connect() started: the descriptor, or -1
 * (c->last_errno set). */
static int start_connect(agent_conn_t *c, const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        c->last_errno = errno;
        return -1;
    }
    if (fd >= FD_SETSIZE) { /* could not be select()ed on */
        close(fd);
        c->last_errno = EMFILE;
        return -1;
    }
#ifdef FD_CLOEXEC
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
        c->last_errno = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* Start connecting to the next address: 0 in progress, -1 none left (err). */
static int tcp_next(agent_conn_t *c, conn_err_t *err)
{
    while (c->next_addr) {
        const struct addrinfo *ai = c->next_addr;
        c->next_addr = ai->ai_next;
        int fd = start_connect(c, ai);
        if (fd >= 0) {
            c->fd = fd;
            c->state = CONN_TCP;
            c->want_write = true;
            return 0;
        }
    }
    set_err(err, CONN_STAGE_TCP, c->last_errno, strerror(c->last_errno));
    return -1;
}

/* not tcp_connect(): ESP-IDF's <netinet/tcp.h> includes lwip/tcp.h, which declares one */
static int tcp_step(agent_conn_t *c, conn_err_t *err)
{
    for (;;) {
        int w = writable_now(c->fd);
        if (w == 0) {
            if (!expired(c)) return 0;
            set_err(err, CONN_STAGE_TCP, ETIMEDOUT, "timed out");
            if (err) err->timeout = true;
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (w < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            c->last_errno = w < 0 ? errno : (soerr ? soerr : errno);
            close_fd(c);
            if (tcp_next(c, err) != 0) return -1;
            continue; /* the next address */
        }
        int one = 1;
        /* brokers delay ACKs; without NODELAY small TLS records stall ~40 ms */
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return 1;
    }
}

/* ---- mbedTLS BIO on the non-blocking socket ----------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    agent_conn_t *c = ctx;
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_CONN_RESET; /* EPIPE, ECONNRESET, ... */
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    agent_conn_t *c = ctx;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0) return (int)n;
    if (n == 0) return MBEDTLS_ERR_NET_CONN_RESET; /* peer closed */
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_CONN_RESET;
}

/* ---- TLS setup ----------------------------------------------------------------- */

static int tls_err(conn_err_t *err, conn_stage_t stage, int ret, const char *what)
{
    char msg[100];
    char text[160];
    agent_strerror(ret, msg, sizeof(msg));
    snprintf(text, sizeof(text), "%s: -0x%04x %s", what, (unsigned)-ret, msg);
    set_err(err, stage, ret, text);
    return -1;
}

/* CA (verify the broker) and client certificate + key. */
static int tls_setup_certs(agent_conn_t *c, conn_err_t *err)
{
    const conn_params_t *p = &c->p;
    int ret;
    if (p->ca_pem) {
        ret = mbedtls_x509_crt_parse(&c->ca, (const unsigned char *)p->ca_pem, strlen(p->ca_pem) + 1);
        if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret < 0 ? ret : -0x2180, "mqtt.ssl_ca_cert");
        mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        /* PSK without CA: the PSK itself authenticates the broker */
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    if (!p->cert_pem || !p->key_pem) return 0;
    ret = mbedtls_x509_crt_parse(&c->cert, (const unsigned char *)p->cert_pem,
                                 strlen(p->cert_pem) + 1);
    if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret < 0 ? ret : -0x2180, "mqtt.ssl_cert");
    ret = agent_pk_parse_key(&c->key, (const unsigned char *)p->key_pem, strlen(p->key_pem) + 1,
                             mbedtls_ctr_drbg_random, p->drbg);
    if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret, "mqtt.ssl_key");
    ret = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key);
    if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret, "mqtt.ssl_cert");
    return 0;
}

static int tls_setup_psk(agent_conn_t *c, conn_err_t *err)
{
    const conn_params_t *p = &c->p;
    if (!p->psk_identity) return 0;
#if AGENT_HAVE_PSK
    if (p->psk_len > sizeof(c->psk)) {
        set_err(err, CONN_STAGE_SETUP, 0, "mqtt.ssl_psk_key: too long");
        return -1;
    }
    int ret = mbedtls_ssl_conf_psk(&c->conf, c->psk, p->psk_len,
                                   (const unsigned char *)p->psk_identity, strlen(p->psk_identity));
    if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret, "mqtt.ssl_psk_identity");
    return 0;
#else
    set_err(err, CONN_STAGE_SETUP, 0, "PSK key exchanges are not enabled in this mbedTLS build");
    return -1;
#endif
}

static int tls_setup(agent_conn_t *c, conn_err_t *err)
{
    const conn_params_t *p = &c->p;
    int ret;
    mbedtls_ssl_init(&c->ssl);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->cert);
    mbedtls_pk_init(&c->key);
    c->ssl_inited = true;
    c->tls = true;

    ret = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret, "ssl config");
    agent_ssl_conf_tls12_only(&c->conf);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, p->drbg);
    if (tls_setup_certs(c, err) != 0 || tls_setup_psk(c, err) != 0) return -1;
    if (p->suites) mbedtls_ssl_conf_ciphersuites(&c->conf, c->suites);
    ret = mbedtls_ssl_setup(&c->ssl, &c->conf);
    if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret, "ssl setup");
    if (p->secrets) agent_ssl_export_secrets(&c->conf, &c->ssl, p->secrets);
    if (p->verify_hostname || p->ca_pem) {
        /* a certificate is verified: name the host to match, or NULL for "do
         * not match a name" (mbedTLS >= 3.6.3 fails the handshake with
         * -0x5d80 when it is told neither; 2.28 accepts both) */
        ret = mbedtls_ssl_set_hostname(&c->ssl, p->verify_hostname ? p->host : NULL);
        if (ret != 0) return tls_err(err, CONN_STAGE_SETUP, ret, "host name");
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    return 0;
}

int conn_received_alert(const mbedtls_ssl_context *ssl, int ret)
{
    /* After MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE the alert record (level,
     * description) is still the current incoming message. */
    const unsigned char *msg = ssl->MBEDTLS_PRIVATE(in_msg);
    if (ret != MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE || msg == NULL ||
        ssl->MBEDTLS_PRIVATE(in_msglen) < 2 || msg[0] != MBEDTLS_SSL_ALERT_LEVEL_FATAL) {
        return -1;
    }
    return msg[1];
}

/* One handshake step: 1 done, 0 waiting (c->want_write), -1 failed or timed out. */
static int tls_step(agent_conn_t *c, conn_err_t *err)
{
    int ret = mbedtls_ssl_handshake(&c->ssl);
    if (ret == 0) return 1;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        c->want_write = ret == MBEDTLS_ERR_SSL_WANT_WRITE;
        if (!expired(c)) return 0;
        set_err(err, CONN_STAGE_TLS, MBEDTLS_ERR_SSL_TIMEOUT, "handshake timed out");
        if (err) err->timeout = true;
        return -1;
    }
    tls_err(err, CONN_STAGE_TLS, ret, "handshake");
    if (err) {
        err->verify_flags = mbedtls_ssl_get_verify_result(&c->ssl);
        err->alert = conn_received_alert(&c->ssl, ret);
    }
    return -1;
}

/* ---- opening ------------------------------------------------------------------ */

static void forget_params(agent_conn_t *c)
{
    if (c->addrs) freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
    memset(&c->p, 0, sizeof(c->p));
}

int conn_open_start(agent_conn_t *c, const conn_params_t *p, conn_err_t *err)
{
    struct addrinfo hints;
    char portstr[8];
    size_t i = 0;

    conn_close(c, false);
    c->p = *p;
    snprintf(c->host, sizeof(c->host), "%s", p->host);
    c->p.host = c->host;
    if (p->psk && p->psk_len <= sizeof(c->psk)) memcpy(c->psk, p->psk, p->psk_len);
    c->p.psk = c->psk; /* the caller may wipe its copy now */
    for (; p->suites && p->suites[i] != 0 && i + 1 < SETTING_MAX_SUITES; i++) c->suites[i] = p->suites[i];
    c->suites[i] = 0;
    c->deadline_ms = now(c) + p->connect_timeout_ms;
    c->last_errno = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)p->port);
    int gr = getaddrinfo(c->host, portstr, &hints, &c->addrs);
    if (gr != 0 || !c->addrs) {
        char text[128];
        snprintf(text, sizeof(text), "cannot resolve %s (%s)", c->host, gai_strerror(gr));
        set_err(err, CONN_STAGE_RESOLVE, gr, text);
        if (gr != 0) c->addrs = NULL; /* not set on failure */
        conn_close(c, false);
        return -1;
    }
    c->next_addr = c->addrs;
    if (tcp_next(c, err) != 0) {
        conn_close(c, false);
        return -1;
    }
    return 0;
}

static int open_step(agent_conn_t *c, conn_err_t *err)
{
    if (c->state == CONN_TCP) {
        int r = tcp_step(c, err);
        if (r <= 0) return r;
        if (!c->p.use_tls) return 1;
        if (tls_setup(c, err) != 0) return -1;
        c->state = CONN_HANDSHAKE;
        c->deadline_ms = now(c) + c->p.handshake_timeout_ms;
    }
    if (c->state == CONN_HANDSHAKE) return tls_step(c, err);
    set_err(err, CONN_STAGE_IO, 0, "not connected");
    return -1;
}

int conn_open_step(agent_conn_t *c, conn_err_t *err)
{
    if (c->state == CONN_OPEN) return 1;
    int r = open_step(c, err);
    if (r < 0) {
        conn_close(c, false);
    } else if (r > 0) {
        c->state = CONN_OPEN;
        c->want_write = false;
        forget_params(c);
    }
    return r;
}

int conn_fdset(agent_conn_t *c, bool want_write, fd_set *rd, fd_set *wr, int maxfd,
               uint32_t *wait_ms)
{
    if (c->fd < 0) return maxfd;
    if (c->state == CONN_OPEN) {
        FD_SET(c->fd, rd);
        if (want_write) FD_SET(c->fd, wr);
        if (conn_pending(c)) *wait_ms = 0;
    } else {
        FD_SET(c->fd, c->want_write ? wr : rd);
        uint64_t t = now(c);
        uint32_t left = c->deadline_ms > t ? (uint32_t)(c->deadline_ms - t) : 0u;
        if (left < *wait_ms) *wait_ms = left;
    }
    return c->fd > maxfd ? c->fd : maxfd;
}

/* ---- data ------------------------------------------------------------------------- */

int conn_send(agent_conn_t *c, const uint8_t *buf, size_t len, conn_err_t *err)
{
    int n;
    if (c->state != CONN_OPEN) {
        set_err(err, CONN_STAGE_IO, 0, "not connected");
        return -1;
    }
    if (len == 0) return 0;
    if (!c->tls) {
        n = bio_send(c, buf, len);
        if (n >= 0) return n;
        return n == MBEDTLS_ERR_SSL_WANT_WRITE ? 0 : tls_err(err, CONN_STAGE_IO, n, "write");
    }
    /* mbedtls_ssl_write after WANT_WRITE must be repeated with the same
     * length: it then reports that many bytes as written */
    if (c->retry_len && len > c->retry_len) len = c->retry_len;
    n = mbedtls_ssl_write(&c->ssl, buf, len);
    if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) {
        c->retry_len = len;
        return 0;
    }
    c->retry_len = 0;
    if (n >= 0) return n;
    return tls_err(err, CONN_STAGE_IO, n, "write");
}

int conn_read(agent_conn_t *c, uint8_t *buf, size_t cap, conn_err_t *err)
{
    int n;
    if (c->state != CONN_OPEN) {
        set_err(err, CONN_STAGE_IO, 0, "not connected");
        return -1;
    }
    if (c->tls) {
        n = mbedtls_ssl_read(&c->ssl, buf, cap);
        if (n > 0) return n;
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
        if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            set_err(err, CONN_STAGE_IO, n, "closed by broker");
            return -1;
        }
        return tls_err(err, CONN_STAGE_IO, n, "read");
    }
    n = bio_recv(c, buf, cap);
    if (n > 0) return n;
    if (n == MBEDTLS_ERR_SSL_WANT_READ) return 0;
    set_err(err, CONN_STAGE_IO, n, "closed by broker");
    return -1;
}

bool conn_pending(agent_conn_t *c)
{
    return c->state == CONN_OPEN && c->tls && mbedtls_ssl_get_bytes_avail(&c->ssl) > 0;
}

void conn_close(agent_conn_t *c, bool graceful)
{
    if (c->ssl_inited) {
        /* best effort, non-blocking: a close_notify the socket does not take now is dropped */
        if (graceful && c->state == CONN_OPEN) (void)mbedtls_ssl_close_notify(&c->ssl);
        mbedtls_ssl_free(&c->ssl);
        mbedtls_ssl_config_free(&c->conf);
        mbedtls_x509_crt_free(&c->ca);
        mbedtls_x509_crt_free(&c->cert);
        mbedtls_pk_free(&c->key);
        c->ssl_inited = false;
    }
    mbedtls_platform_zeroize(c->psk, sizeof(c->psk));
    forget_params(c);
    close_fd(c);
    c->state = CONN_CLOSED;
    c->tls = false;
    c->want_write = false;
    c->retry_len = 0;
}

void conn_export_secrets(agent_conn_t *c, agent_tls_secret_t *sink)
{
    if (c->ssl_inited && c->state == CONN_HANDSHAKE) agent_ssl_export_secrets(&c->conf, &c->ssl, sink);
}

const char *conn_ciphersuite(agent_conn_t *c)
{
    if (c->state != CONN_OPEN || !c->tls) return NULL;
    return mbedtls_ssl_get_ciphersuite(&c->ssl);
}
