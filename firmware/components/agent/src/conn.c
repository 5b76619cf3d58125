/* conn.c - TCP + TLS 1.2 client connection (see agent_conn.h). */
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

static uint32_t remaining(const agent_conn_t *c, uint64_t deadline)
{
    uint64_t t = now(c);
    return t >= deadline ? 0u : (uint32_t)(deadline - t);
}

void conn_init(agent_conn_t *c, const agent_port_t *port)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->port = port;
}

bool conn_is_open(const agent_conn_t *c)
{
    return c->fd >= 0;
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

/* select() on one fd; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, bool for_write, uint32_t timeout_ms)
{
    fd_set set;
    struct timeval tv;
    int r;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    tv.tv_sec = (time_t)(timeout_ms / 1000u);
    tv.tv_usec = (suseconds_t)((timeout_ms % 1000u) * 1000u);
    do {
        r = select(fd + 1, for_write ? NULL : &set, for_write ? &set : NULL, NULL, &tv);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* not tcp_connect(): ESP-IDF's <netinet/tcp.h> includes lwip/tcp.h, which declares one */
static int tcp_open(agent_conn_t *c, const conn_params_t *p, conn_err_t *err)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char portstr[8];
    int last_errno = 0;
    bool timed_out = false;
    uint64_t deadline = now(c) + p->connect_timeout_ms;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)p->port);
    int gr = getaddrinfo(p->host, portstr, &hints, &res);
    if (gr != 0 || !res) {
        char text[128];
        snprintf(text, sizeof(text), "cannot resolve %s (%s)", p->host, gai_strerror(gr));
        set_err(err, CONN_STAGE_RESOLVE, gr, text);
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (fd >= FD_SETSIZE) { /* could not be select()ed on */
            close(fd);
            last_errno = EMFILE;
            continue;
        }
#ifdef FD_CLOEXEC
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
        int fl = fcntl(fd, F_GETFL, 0);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            last_errno = errno;
            close(fd);
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            continue;
        }
        if (r < 0) {
            int w = wait_fd(fd, true, remaining(c, deadline));
            if (w == 0) {
                timed_out = true;
                last_errno = ETIMEDOUT;
                close(fd);
                break;
            }
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
                last_errno = w < 0 ? errno : (soerr ? soerr : errno);
                close(fd);
                continue;
            }
        }
        int one = 1;
        /* brokers delay ACKs; without NODELAY small TLS records stall ~40 ms */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    {
        char text[128];
        snprintf(text, sizeof(text), "%s", timed_out ? "timed out" : strerror(last_errno));
        set_err(err, CONN_STAGE_TCP, last_errno, text);
        if (err) err->timeout = timed_out;
    }
    return -1;
}

/* ---- mbedTLS BIO on the non-blocking socket ----------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    agent_conn_t *c = ctx;
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (errno == EPIPE || errno == ECONNRESET) return MBEDTLS_ERR_NET_CONN_RESET;
    return MBEDTLS_ERR_NET_CONN_RESET;
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

static void tls_err(conn_err_t *err, conn_stage_t stage, int ret, const char *what)
{
    char msg[100];
    char text[160];
    mbedtls_strerror(ret, msg, sizeof(msg));
    snprintf(text, sizeof(text), "%s: -0x%04x %s", what, (unsigned)-ret, msg);
    set_err(err, stage, ret, text);
}

static int tls_setup(agent_conn_t *c, const conn_params_t *p, conn_err_t *err)
{
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
    if (ret != 0) {
        tls_err(err, CONN_STAGE_SETUP, ret, "ssl config");
        return -1;
    }
    agent_ssl_conf_tls12_only(&c->conf);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, p->drbg);

    if (p->ca_pem) {
        ret = mbedtls_x509_crt_parse(&c->ca, (const unsigned char *)p->ca_pem, strlen(p->ca_pem) + 1);
        if (ret != 0) {
            tls_err(err, CONN_STAGE_SETUP, ret < 0 ? ret : -0x2180, "mqtt.ssl_ca_cert");
            return -1;
        }
        mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        /* PSK without CA: the PSK itself authenticates the broker */
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    if (p->cert_pem && p->key_pem) {
        ret = mbedtls_x509_crt_parse(&c->cert, (const unsigned char *)p->cert_pem,
                                     strlen(p->cert_pem) + 1);
        if (ret != 0) {
            tls_err(err, CONN_STAGE_SETUP, ret < 0 ? ret : -0x2180, "mqtt.ssl_cert");
            return -1;
        }
        ret = agent_pk_parse_key(&c->key, (const unsigned char *)p->key_pem, strlen(p->key_pem) + 1,
                                 mbedtls_ctr_drbg_random, p->drbg);
        if (ret != 0) {
            tls_err(err, CONN_STAGE_SETUP, ret, "mqtt.ssl_key");
            return -1;
        }
        ret = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key);
        if (ret != 0) {
            tls_err(err, CONN_STAGE_SETUP, ret, "mqtt.ssl_cert");
            return -1;
        }
    }
    if (p->psk_identity) {
#if AGENT_HAVE_PSK
        if (p->psk_len > sizeof(c->psk)) {
            set_err(err, CONN_STAGE_SETUP, 0, "mqtt.ssl_psk_key: too long");
            return -1;
        }
        memcpy(c->psk, p->psk, p->psk_len);
        ret = mbedtls_ssl_conf_psk(&c->conf, c->psk, p->psk_len,
                                   (const unsigned char *)p->psk_identity, strlen(p->psk_identity));
        if (ret != 0) {
            tls_err(err, CONN_STAGE_SETUP, ret, "mqtt.ssl_psk_identity");
            return -1;
        }
#else
        set_err(err, CONN_STAGE_SETUP, 0, "PSK key exchanges are not enabled in this mbedTLS build");
        return -1;
#endif
    }
    if (p->suites) {
        size_t i = 0;
        for (; p->suites[i] != 0 && i + 1 < SETTING_MAX_SUITES; i++) c->suites[i] = p->suites[i];
        c->suites[i] = 0;
        mbedtls_ssl_conf_ciphersuites(&c->conf, c->suites);
    }
    ret = mbedtls_ssl_setup(&c->ssl, &c->conf);
    if (ret != 0) {
        tls_err(err, CONN_STAGE_SETUP, ret, "ssl setup");
        return -1;
    }
    if (p->verify_hostname || p->ca_pem) {
        /* a certificate is verified: name the host to match, or NULL for "do
         * not match a name" (mbedTLS >= 3.6.3 fails the handshake with
         * -0x5d80 when it is told neither; 2.28 accepts both) */
        ret = mbedtls_ssl_set_hostname(&c->ssl, p->verify_hostname ? p->host : NULL);
        if (ret != 0) {
            tls_err(err, CONN_STAGE_SETUP, ret, "host name");
            return -1;
        }
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

static int tls_handshake(agent_conn_t *c, uint32_t timeout_ms, conn_err_t *err)
{
    uint64_t deadline = now(c) + timeout_ms;
    for (;;) {
        int ret = mbedtls_ssl_handshake(&c->ssl);
        if (ret == 0) return 0;
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) {
            tls_err(err, CONN_STAGE_TLS, ret, "handshake");
            if (err) {
                err->verify_flags = mbedtls_ssl_get_verify_result(&c->ssl);
                err->alert = conn_received_alert(&c->ssl, ret);
            }
            return -1;
        }
        uint32_t left = remaining(c, deadline);
        if (left == 0 || wait_fd(c->fd, ret == MBEDTLS_ERR_SSL_WANT_WRITE, left) == 0) {
            set_err(err, CONN_STAGE_TLS, MBEDTLS_ERR_SSL_TIMEOUT, "handshake timed out");
            if (err) err->timeout = true;
            return -1;
        }
    }
}

int conn_open(agent_conn_t *c, const conn_params_t *p, conn_err_t *err)
{
    conn_close(c, false);
    if (tcp_open(c, p, err) != 0) return -1;
    if (!p->use_tls) return 0;
    if (tls_setup(c, p, err) != 0 || tls_handshake(c, p->handshake_timeout_ms, err) != 0) {
        conn_close(c, false);
        return -1;
    }
    return 0;
}

int conn_write(agent_conn_t *c, const uint8_t *buf, size_t len, uint32_t timeout_ms,
               conn_err_t *err)
{
    uint64_t deadline = now(c) + timeout_ms;
    size_t off = 0;
    if (c->fd < 0) {
        set_err(err, CONN_STAGE_IO, 0, "not connected");
        return -1;
    }
    while (off < len) {
        int n;
        if (c->tls) {
            n = mbedtls_ssl_write(&c->ssl, buf + off, len - off);
        } else {
            n = bio_send(c, buf + off, len - off);
        }
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) {
            uint32_t left = remaining(c, deadline);
            if (left == 0 || wait_fd(c->fd, n == MBEDTLS_ERR_SSL_WANT_WRITE, left) == 0) {
                set_err(err, CONN_STAGE_IO, 0, "write timed out");
                if (err) err->timeout = true;
                return -1;
            }
            continue;
        }
        tls_err(err, CONN_STAGE_IO, n, "write");
        return -1;
    }
    return 0;
}

int conn_read(agent_conn_t *c, uint8_t *buf, size_t cap, conn_err_t *err)
{
    int n;
    if (c->fd < 0) {
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
        tls_err(err, CONN_STAGE_IO, n, "read");
        return -1;
    }
    n = bio_recv(c, buf, cap);
    if (n > 0) return n;
    if (n == MBEDTLS_ERR_SSL_WANT_READ) return 0;
    set_err(err, CONN_STAGE_IO, n, "closed by broker");
    return -1;
}

bool conn_pending(agent_conn_t *c)
{
    return c->fd >= 0 && c->tls && mbedtls_ssl_get_bytes_avail(&c->ssl) > 0;
}

int conn_wait_readable(agent_conn_t *c, uint32_t timeout_ms)
{
    if (c->fd < 0) return -1;
    if (conn_pending(c)) return 1;
    return wait_fd(c->fd, false, timeout_ms);
}

void conn_close(agent_conn_t *c, bool graceful)
{
    if (c->ssl_inited) {
        if (graceful && c->fd >= 0) (void)mbedtls_ssl_close_notify(&c->ssl);
        mbedtls_ssl_free(&c->ssl);
        mbedtls_ssl_config_free(&c->conf);
        mbedtls_x509_crt_free(&c->ca);
        mbedtls_x509_crt_free(&c->cert);
        mbedtls_pk_free(&c->key);
        c->ssl_inited = false;
    }
    mbedtls_platform_zeroize(c->psk, sizeof(c->psk));
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->tls = false;
}

const char *conn_ciphersuite(agent_conn_t *c)
{
    if (c->fd < 0 || !c->tls) return NULL;
    return mbedtls_ssl_get_ciphersuite(&c->ssl);
}
