/* http_server.c - the agent's HTTPS server (see agent_http.h).
 *
 * Everything runs inside agent_step(): the listener and every client socket
 * are non-blocking and sit in agent_step's select() sets; each connection
 * walks handshake -> read request -> write response -> linger -> closed,
 * one step per readiness event, with a deadline. Nothing here waits, so
 * the console stays responsive whatever a client does. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "agent_http.h"
#include "agent_internal.h"
#include "agent_util.h"
#include "http_parse.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define HTTP_RX_CAP (HTTP_HEAD_MAX + HTTP_BODY_MAX)
#define HTTP_ACCEPT_BURST 8
#define HTTP_LINGER_MAX_BYTES 65536u
#define HTTP_LOG_MAX 128 /* characters of a method / path in a log line */

static uint64_t now_ms(agent_t *a)
{
    return agent_now(a);
}

/* ---- small text helpers --------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_fmt(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf_t *b, const char *fmt, ...)
{
    char tmp[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->overflow = true;
        return;
    }
    sb_add(b, tmp, (size_t)n);
}

/* A JSON string literal, quotes included. */
static void sb_json_str(sbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_add(b, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15u]};
            sb_add(b, e, 6);
        } else {
            sb_add(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static void sb_html(sbuf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_str(b, "&lt;"); break;
        case '>': sb_str(b, "&gt;"); break;
        case '&': sb_str(b, "&amp;"); break;
        case '"': sb_str(b, "&quot;"); break;
        default: sb_add(b, s, 1); break;
        }
    }
}

/* "<host>:<port>" / "[<v6>]:<port>" of a socket address. */
static void fmt_sockaddr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[64] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        (void)inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
        return;
    }
#ifdef AF_INET6
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
        return;
    }
#endif
    snprintf(out, cap, "?");
}

/* Printable ASCII (spaces kept) of a certificate CN, for the log. */
static void sanitize_cn(const unsigned char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 64 && o + 1 < cap; i++) {
        out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    }
    out[o] = '\0';
}

/* ---- responses -------------------------------------------------------------- */

static size_t finish_response(char *out, int status, const char *ctype, const char *extra,
                              const char *body, size_t body_len, bool head_only)
{
    sbuf_t b = {out, AGENT_HTTP_RESPONSE_MAX, 0, false};
    sb_fmt(&b, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    sb_str(&b, "Server: hil-agent/" AGENT_VERSION "\r\n");
    sb_fmt(&b, "Content-Type: %s\r\n", ctype);
    sb_fmt(&b, "Content-Length: %zu\r\n", body_len);
    if (extra) sb_str(&b, extra);
    sb_str(&b, "Connection: close\r\n\r\n");
    if (!head_only) sb_add(&b, body, body_len);
    return b.overflow ? 0 : b.len;
}

static size_t error_response(char *out, int status, const char *reason, bool head_only)
{
    char body[200];
    int n = reason && *reason
                ? snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_text(status), reason)
                : snprintf(body, sizeof(body), "%d %s\n", status, http_status_text(status));
    size_t blen = n < 0 ? 0 : ((size_t)n >= sizeof(body) ? sizeof(body) - 1 : (size_t)n);
    return finish_response(out, status, "text/plain; charset=utf-8",
                           status == 405 ? "Allow: GET, HEAD, POST\r\n" : NULL, body, blen, head_only);
}

static void body_index(sbuf_t *b)
{
    sb_str(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hil-agent</title></head>\n"
              "<body><h1>hil-agent ");
    sb_html(b, AGENT_VERSION);
    sb_str(b, "</h1>\n<p>HIL rig test firmware (build ");
    sb_html(b, agent_build_id());
    sb_str(b, ", mbedTLS ");
    sb_html(b, AGENT_MBEDTLS_VERSION_STRING);
    sb_str(b, ", " AGENT_ARCH ").</p>\n<ul><li><a href=\"/rpc/Sys.GetInfo\">/rpc/Sys.GetInfo</a></li>"
              "<li><a href=\"/rpc/FS.List\">/rpc/FS.List</a></li></ul>\n</body></html>\n");
}

static void body_sys_getinfo(agent_t *a, sbuf_t *b)
{
    sb_str(b, "{\"app\":");
    sb_json_str(b, "hil-agent");
    sb_str(b, ",\"fw_version\":");
    sb_json_str(b, AGENT_VERSION);
    sb_str(b, ",\"fw_id\":");
    sb_json_str(b, agent_build_id());
    sb_str(b, ",\"mbedtls\":");
    sb_json_str(b, AGENT_MBEDTLS_VERSION_STRING);
    sb_str(b, ",\"arch\":");
    sb_json_str(b, AGENT_ARCH);
    sb_fmt(b, ",\"uptime\":%" PRIu64, now_ms(a) / 1000u);
    if (a->port.free_heap) {
        sb_fmt(b, ",\"ram_free\":%zu}", a->port.free_heap(a->port.ctx));
    } else {
        sb_str(b, ",\"ram_free\":null}");
    }
}

static void body_fs_list(agent_t *a, sbuf_t *b)
{
    char name[96];
    sb_str(b, "[");
    sb_json_str(b, "index.html");
    for (int i = 0; i < SK_COUNT; i++) {
        if (!settings_is_set(&a->settings, (setting_key_t)i)) continue;
        snprintf(name, sizeof(name), "conf/%s", settings_def((setting_key_t)i)->name);
        sb_str(b, ",");
        sb_json_str(b, name);
    }
    sb_str(b, "]");
}

static bool path_is(const uint8_t *buf, const http_request_t *r, const char *p)
{
    return r->path_len == strlen(p) && memcmp(buf + r->path_off, p, r->path_len) == 0;
}

int agent_http_process(agent_t *a, const uint8_t *buf, size_t len, const char *cn, char *out,
                       size_t *out_len, int *status)
{
    http_request_t req;
    char method[HTTP_LOG_MAX + 1], path[HTTP_LOG_MAX + 1];
    http_parse_result_t r = http_parse_request(buf, len, HTTP_HEAD_MAX, HTTP_BODY_MAX, &req);

    if (r == HTTP_PARSE_INCOMPLETE) return 0;
    if (r == HTTP_PARSE_BAD) {
        *status = req.status;
        *out_len = error_response(out, req.status, req.reason, false);
        agent_log(a, 'W', "HTTP bad request %d: %s", req.status, req.reason);
        a->http.requests++;
        return 1;
    }
    if (req.status == 0 && len - req.head_len < req.content_length) return 0; /* body */

    bool head_only = req.method == HTTP_METHOD_HEAD;
    (void)http_sanitize(buf + req.method_off, req.method_len, HTTP_LOG_MAX, method, sizeof(method));
    (void)http_sanitize(buf + req.path_off, req.path_len, HTTP_LOG_MAX, path, sizeof(path));
    if (req.status != 0) {
        *status = req.status;
        *out_len = error_response(out, req.status, NULL, head_only);
    } else {
        char body[AGENT_HTTP_RESPONSE_MAX - 256];
        sbuf_t b = {body, sizeof(body), 0, false};
        const char *ctype = "application/json";
        if (path_is(buf, &req, "/") || path_is(buf, &req, "/index.html")) {
            ctype = "text/html; charset=utf-8";
            body_index(&b);
        } else if (path_is(buf, &req, "/rpc/Sys.GetInfo")) {
            body_sys_getinfo(a, &b);
        } else if (path_is(buf, &req, "/rpc/FS.List")) {
            body_fs_list(a, &b);
        } else {
            b.buf = NULL;
        }
        if (!b.buf) {
            *status = 404;
            *out_len = error_response(out, 404, NULL, head_only);
        } else if (b.overflow) {
            *status = 500;
            *out_len = error_response(out, 500, "response too large", head_only);
        } else {
            *status = 200;
            *out_len = finish_response(out, 200, ctype, NULL, body, b.len, head_only);
        }
    }
    if (cn) {
        agent_log(a, 'I', "HTTP %s %s %d cn=%s", method, path, *status, cn);
    } else {
        agent_log(a, 'I', "HTTP %s %s %d", method, path, *status);
    }
    a->http.requests++;
    return 1;
}

/* ---- connections ---------------------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    agent_http_client_t *c = ctx;
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_CONN_RESET;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    agent_http_client_t *c = ctx;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n >= 0) return (int)n; /* 0: peer closed -> MBEDTLS_ERR_SSL_CONN_EOF */
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_CONN_RESET;
}

static void free_tls(agent_http_client_t *c)
{
    if (c->ssl_inited) mbedtls_ssl_free(&c->ssl);
    c->ssl_inited = false;
}

static void close_client(agent_http_client_t *c)
{
    free_tls(c);
    if (c->fd >= 0) close(c->fd);
    free(c->rx);
    free(c->tx);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = HTTP_CLIENT_FREE;
}

static void log_handshake_failure(agent_t *a, agent_http_client_t *c, int ret)
{
    char reason[200];
    uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
    bool have_flags = flags != 0 && flags != (uint32_t)-1;

    if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE ||
        (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && have_flags && (flags & MBEDTLS_X509_BADCERT_MISSING))) {
        snprintf(reason, sizeof(reason), "client has no certificate");
    } else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        char info[512] = "";
        if (have_flags) (void)mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
        char *nl = strchr(info, '\n');
        if (nl) *nl = '\0';
        char *p = info;
        while (*p == ' ') p++;
        char note[80]; /* the board clock was never set and a date was refused */
        snprintf(reason, sizeof(reason), "client certificate not trusted: %s%s",
                 *p ? p : "verification failed",
                 agent_clock_note(a, have_flags ? flags : 0, p, note, sizeof(note)));
    } else if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        int alert = conn_received_alert(&c->ssl, ret);
        if (alert < 0) {
            snprintf(reason, sizeof(reason), "client sent a fatal alert");
        } else {
            snprintf(reason, sizeof(reason), "client sent alert %d %s", alert,
                     agent_tls_alert_name(alert));
        }
    } else if (ret == MBEDTLS_ERR_NET_CONN_RESET || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(reason, sizeof(reason), "client closed the connection");
    } else {
        char msg[128];
        agent_strerror(ret, msg, sizeof(msg));
        snprintf(reason, sizeof(reason), "%s", msg);
    }
    agent_log(a, 'E', "HTTP TLS handshake failed: %s (-0x%04x)", reason, (unsigned)-ret);
}

static void peer_cn(agent_http_client_t *c, char *out, size_t cap)
{
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
    out[0] = '\0';
    if (!crt) return;
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next) {
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            sanitize_cn(n->val.p, n->val.len, out, cap);
            return;
        }
    }
}

/* Done with TLS (response sent, or handshake failed): shut our side and
 * drain until the client closes, so that unread bytes from the client do
 * not turn our close into an RST that could destroy the response (or the
 * alert) before the client has read it. */
static void start_linger(agent_t *a, agent_http_client_t *c)
{
    free_tls(c);
    free(c->rx);
    c->rx = NULL;
    free(c->tx);
    c->tx = NULL;
    (void)shutdown(c->fd, SHUT_WR);
    c->state = HTTP_CLIENT_LINGER;
    c->want_write = false;
    c->rx_len = 0;
    c->deadline_ms = now_ms(a) + AGENT_HTTP_LINGER_MS;
}

static void step_write(agent_t *a, agent_http_client_t *c)
{
    while (c->tx_off < c->tx_len) {
        int n = mbedtls_ssl_write(&c->ssl, (const unsigned char *)c->tx + c->tx_off,
                                  c->tx_len - c->tx_off);
        if (n > 0) {
            c->tx_off += (size_t)n;
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) {
            c->want_write = n == MBEDTLS_ERR_SSL_WANT_WRITE;
            return;
        }
        char msg[128];
        agent_strerror(n, msg, sizeof(msg));
        agent_log(a, 'W', "HTTP client %s: response not sent: %s (-0x%04x)", c->peer, msg,
                  (unsigned)-n);
        close_client(c);
        return;
    }
    (void)mbedtls_ssl_close_notify(&c->ssl); /* best effort: non-blocking */
    start_linger(a, c);
}

static void step_read(agent_t *a, agent_http_client_t *c)
{
    for (;;) {
        if (c->rx_len >= HTTP_RX_CAP) { /* cannot happen: the parser decides first */
            agent_log(a, 'E', "HTTP client %s: request buffer full", c->peer);
            close_client(c);
            return;
        }
        int n = mbedtls_ssl_read(&c->ssl, c->rx + c->rx_len, HTTP_RX_CAP - c->rx_len);
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
            c->want_write = n == MBEDTLS_ERR_SSL_WANT_WRITE;
            return;
        }
        if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == MBEDTLS_ERR_SSL_CONN_EOF ||
            n == MBEDTLS_ERR_NET_CONN_RESET) {
            agent_log(a, 'W', "HTTP client %s closed the connection before a complete request",
                      c->peer);
            close_client(c);
            return;
        }
        if (n < 0) {
            char msg[128];
            agent_strerror(n, msg, sizeof(msg));
            agent_log(a, 'W', "HTTP client %s: read failed: %s (-0x%04x)", c->peer, msg, (unsigned)-n);
            close_client(c);
            return;
        }
        c->rx_len += (size_t)n;
        char cn[80] = "";
        if (a->http.mutual) peer_cn(c, cn, sizeof(cn));
        if (!c->tx) c->tx = malloc(AGENT_HTTP_RESPONSE_MAX);
        if (!c->tx) {
            agent_log(a, 'E', "HTTP client %s: out of memory", c->peer);
            close_client(c);
            return;
        }
        int status = 0;
        size_t out_len = 0;
        int r = agent_http_process(a, c->rx, c->rx_len, a->http.mutual && cn[0] ? cn : NULL, c->tx,
                                   &out_len, &status);
        if (r == 0) continue; /* more of the head or body to come */
        c->tx_len = out_len;
        c->tx_off = 0;
        c->state = HTTP_CLIENT_WRITE;
        c->want_write = true;
        c->deadline_ms = now_ms(a) + AGENT_HTTP_TIMEOUT_MS;
        step_write(a, c);
        return;
    }
}

static void step_linger(agent_http_client_t *c)
{
    uint8_t scratch[512];
    for (;;) {
        ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
        if (n > 0) {
            c->rx_len += (size_t)n;
            if (c->rx_len > HTTP_LINGER_MAX_BYTES) break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        break; /* FIN or error */
    }
    close_client(c);
}

static void step_client(agent_t *a, agent_http_client_t *c)
{
    if (c->state == HTTP_CLIENT_HANDSHAKE) {
        int ret = mbedtls_ssl_handshake(&c->ssl);
        agent_keylog_flush(a); /* `tls keylog`: before any other line of this connection */
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
            c->want_write = ret == MBEDTLS_ERR_SSL_WANT_WRITE;
            return;
        }
        if (ret != 0) {
            if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
                int sent = agent_ssl_alert_no_client_cert(&c->ssl);
                if (sent != 0) { /* e.g. the socket's buffer is full: the client sees a reset */
                    agent_log(a, 'W', "HTTP could not send the handshake_failure alert: -0x%04x",
                              (unsigned)-sent);
                }
            }
            log_handshake_failure(a, c, ret);
            start_linger(a, c);
            return;
        }
        c->state = HTTP_CLIENT_READ;
        c->want_write = false;
        /* the request may already sit in mbedTLS' buffer: read now */
    }
    switch (c->state) {
    case HTTP_CLIENT_READ: step_read(a, c); break;
    case HTTP_CLIENT_WRITE: step_write(a, c); break;
    case HTTP_CLIENT_LINGER: step_linger(c); break;
    default: break;
    }
}

static void expire(agent_t *a, agent_http_client_t *c)
{
    static const char *const stage[] = {"?", "handshake", "request", "response", "linger"};
    if (c->state != HTTP_CLIENT_LINGER) {
        agent_log(a, 'W', "HTTP client %s timed out in %s after %u ms, dropped", c->peer,
                  stage[c->state], (unsigned)AGENT_HTTP_TIMEOUT_MS);
    }
    close_client(c);
}

static void set_nonblock_cloexec(int fd)
{
#ifdef FD_CLOEXEC
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void accept_clients(agent_t *a)
{
    agent_http_t *h = &a->http;
    for (int k = 0; k < HTTP_ACCEPT_BURST; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        int fd = accept(h->listen_fd, (struct sockaddr *)&ss, &sl);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            if (errno == ECONNABORTED) continue;
            agent_log(a, 'W', "HTTP accept failed: %s", strerror(errno));
            return;
        }
        char peer[56];
        fmt_sockaddr((const struct sockaddr *)&ss, peer, sizeof(peer));
        if (fd >= FD_SETSIZE) { /* cannot be select()ed on */
            agent_log(a, 'W', "HTTP descriptor %d too large for select(): closed connection from %s",
                      fd, peer);
            close(fd);
            continue;
        }
        agent_http_client_t *c = NULL;
        for (int i = 0; i < AGENT_HTTP_MAX_CLIENTS; i++) {
            if (h->clients[i].state == HTTP_CLIENT_FREE) {
                c = &h->clients[i];
                break;
            }
        }
        if (!c) {
            agent_log(a, 'W', "HTTP too many clients (max %d): closed connection from %s",
                      AGENT_HTTP_MAX_CLIENTS, peer);
            close(fd);
            continue;
        }
        set_nonblock_cloexec(fd);
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        snprintf(c->peer, sizeof(c->peer), "%s", peer);
        c->rx = malloc(HTTP_RX_CAP);
        if (!c->rx) {
            agent_log(a, 'E', "HTTP client %s: out of memory", peer);
            close_client(c);
            continue;
        }
        mbedtls_ssl_init(&c->ssl);
        c->ssl_inited = true;
        int ret = mbedtls_ssl_setup(&c->ssl, &h->conf);
        if (ret != 0) {
            char msg[128];
            agent_strerror(ret, msg, sizeof(msg));
            agent_log(a, 'E', "HTTP client %s: TLS setup failed: %s (-0x%04x)", peer, msg,
                      (unsigned)-ret);
            close_client(c);
            continue;
        }
        mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
        /* `tls keylog` on: export this session's secrets (2.28: via the shared h->conf) */
        agent_ssl_export_secrets(&h->conf, &c->ssl, agent_keylog_sink(a));
        c->state = HTTP_CLIENT_HANDSHAKE;
        c->deadline_ms = now_ms(a) + AGENT_HTTP_TIMEOUT_MS;
    }
}

/* ---- server --------------------------------------------------------------------- */

void agent_http_init(agent_t *a)
{
    agent_http_t *h = &a->http;
    memset(h, 0, sizeof(*h));
    h->listen_fd = -1;
    for (int i = 0; i < AGENT_HTTP_MAX_CLIENTS; i++) h->clients[i].fd = -1;
}

bool agent_http_running(const agent_t *a)
{
    return a->http.running;
}

void agent_http_export_secrets(agent_t *a, agent_tls_secret_t *sink)
{
    agent_http_t *h = &a->http;
    if (!h->running) return;
    for (int i = 0; i < AGENT_HTTP_MAX_CLIENTS; i++) {
        agent_http_client_t *c = &h->clients[i];
        if (c->state == HTTP_CLIENT_HANDSHAKE && c->ssl_inited) {
            agent_ssl_export_secrets(&h->conf, &c->ssl, sink);
        }
    }
    agent_ssl_export_secrets(&h->conf, NULL, sink); /* 2.28: the shared configuration's callback */
}

static void free_tls_conf(agent_http_t *h)
{
    mbedtls_ssl_config_free(&h->conf);
    mbedtls_x509_crt_free(&h->cert);
    mbedtls_x509_crt_free(&h->ca);
    mbedtls_pk_free(&h->key);
}

void agent_http_stop(agent_t *a, bool log)
{
    agent_http_t *h = &a->http;
    if (!h->running) return;
    for (int i = 0; i < AGENT_HTTP_MAX_CLIENTS; i++) {
        if (h->clients[i].state != HTTP_CLIENT_FREE) close_client(&h->clients[i]);
    }
    if (h->listen_fd >= 0) close(h->listen_fd);
    h->listen_fd = -1;
    free_tls_conf(h);
    h->running = false;
    h->bound[0] = '\0';
    h->port = 0;
    if (log) agent_log(a, 'I', "HTTP server stopped");
}

static int pem_parse_err(char *err, size_t errlen, const char *key, int ret)
{
    char msg[100];
    agent_strerror(ret, msg, sizeof(msg));
    snprintf(err, errlen, "http start: %s: -0x%04x %s", key, (unsigned)-ret, msg);
    return -1;
}

static int tls_setup(agent_t *a, const char *cert, const char *key, const char *ca, char *err,
                     size_t errlen)
{
    agent_http_t *h = &a->http;
    int ret;
    unsigned char probe[1];
    mbedtls_ssl_config_init(&h->conf);
    mbedtls_x509_crt_init(&h->cert);
    mbedtls_x509_crt_init(&h->ca);
    mbedtls_pk_init(&h->key);
    if (agent_rng(a, probe, 0) != 0) {
        snprintf(err, errlen, "http start: random generator init failed");
        return -1;
    }
    switch (settings_parse_pair(cert, key, &h->cert, &h->key, agent_rng, a, &ret)) {
    case SETTINGS_PAIR_OK: break;
    case SETTINGS_PAIR_BAD_CERT: return pem_parse_err(err, errlen, "http.ssl_cert", ret);
    case SETTINGS_PAIR_BAD_KEY: return pem_parse_err(err, errlen, "http.ssl_key", ret);
    case SETTINGS_PAIR_MISMATCH:
        snprintf(err, errlen, "http start: http.ssl_key does not match http.ssl_cert");
        return -1;
    }
    if (ca) {
        ret = mbedtls_x509_crt_parse(&h->ca, (const unsigned char *)ca, strlen(ca) + 1);
        if (ret != 0) return pem_parse_err(err, errlen, "http.ssl_ca_cert", ret < 0 ? ret : -0x2180);
    }
    ret = mbedtls_ssl_config_defaults(&h->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) return pem_parse_err(err, errlen, "ssl config", ret);
    agent_ssl_conf_tls12_only(&h->conf);
    mbedtls_ssl_conf_rng(&h->conf, mbedtls_ctr_drbg_random, &a->drbg);
    ret = mbedtls_ssl_conf_own_cert(&h->conf, &h->cert, &h->key);
    if (ret != 0) return pem_parse_err(err, errlen, "http.ssl_cert", ret);
    if (ca) {
        mbedtls_ssl_conf_ca_chain(&h->conf, &h->ca, NULL);
        mbedtls_ssl_conf_authmode(&h->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        mbedtls_ssl_conf_authmode(&h->conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    return 0;
}

/* The address to bind: all IPv4 interfaces for host "", else host resolved.
 * shown: "<host>:<port>" for error lines. */
static int listen_address(const char *host, uint16_t port, struct sockaddr_storage *ss,
                          socklen_t *sl, char *shown, size_t shown_cap, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '\0') {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        in->sin_port = htons(port);
        *sl = sizeof(*in);
        snprintf(shown, shown_cap, "0.0.0.0:%u", (unsigned)port);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    snprintf(shown, shown_cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    int gr = getaddrinfo(host, portstr, &hints, &res);
    if (gr != 0 || !res) {
        snprintf(err, errlen, "http start: cannot resolve %s (%s)", host,
                 gr != 0 ? gai_strerror(gr) : "no address");
        if (res) freeaddrinfo(res);
        return -1;
    }
    if (res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        snprintf(err, errlen, "http start: address of %s too long", host);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* The bound address and actual port of the listener into h. */
static int note_bound(agent_http_t *h, int fd, char *err, size_t errlen)
{
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    memset(&bound, 0, sizeof(bound));
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) != 0) {
        snprintf(err, errlen, "http start: getsockname: %s", strerror(errno));
        return -1;
    }
    fmt_sockaddr((const struct sockaddr *)&bound, h->bound, sizeof(h->bound));
    if (bound.ss_family == AF_INET) {
        h->port = ntohs(((const struct sockaddr_in *)(const void *)&bound)->sin_port);
#ifdef AF_INET6
    } else if (bound.ss_family == AF_INET6) {
        h->port = ntohs(((const struct sockaddr_in6 *)(const void *)&bound)->sin6_port);
#endif
    }
    return 0;
}

static int open_listener(agent_t *a, const char *host, uint16_t port, char *err, size_t errlen)
{
    agent_http_t *h = &a->http;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    char shown[300];
    if (listen_address(host, port, &ss, &sl, shown, sizeof(shown), err, errlen) != 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0) {
        snprintf(err, errlen, "http start: socket: %s", strerror(errno));
        return -1;
    }
    if (fd >= FD_SETSIZE) {
        snprintf(err, errlen, "http start: socket: descriptor %d too large for select()", fd);
        close(fd);
        return -1;
    }
    set_nonblock_cloexec(fd);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&ss, sl) != 0) {
        snprintf(err, errlen, "http start: bind %s: %s", shown, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 8) != 0) {
        snprintf(err, errlen, "http start: listen %s: %s", shown, strerror(errno));
        close(fd);
        return -1;
    }
    if (note_bound(h, fd, err, errlen) != 0) {
        close(fd);
        return -1;
    }
    h->listen_fd = fd;
    return 0;
}

int agent_http_start(agent_t *a, char *err, size_t errlen)
{
    agent_http_t *h = &a->http;
    const settings_t *s = &a->settings;
    const char *listen_addr = settings_get(s, SK_HTTP_LISTEN_ADDR);
    const char *cert = settings_get(s, SK_HTTP_SSL_CERT);
    const char *key = settings_get(s, SK_HTTP_SSL_KEY);
    const char *ca = settings_get(s, SK_HTTP_SSL_CA_CERT);
    char host[256];
    uint16_t port;

    if (h->running) agent_http_stop(a, true); /* restart with the current settings */
    if (!listen_addr) {
        snprintf(err, errlen, "http start: http.listen_addr is not set");
        return -1;
    }
    if (!cert) {
        snprintf(err, errlen, "http start: http.ssl_cert is not set");
        return -1;
    }
    if (!key) {
        snprintf(err, errlen, "http start: http.ssl_key is not set");
        return -1;
    }
    if (settings_parse_listen(listen_addr, strlen(listen_addr), host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "http start: http.listen_addr is invalid");
        return -1;
    }
    if (tls_setup(a, cert, key, ca, err, errlen) != 0 ||
        open_listener(a, host, port, err, errlen) != 0) {
        free_tls_conf(h);
        return -1;
    }
    h->running = true;
    h->mutual = ca != NULL;
    h->requests = 0;
    agent_log(a, 'I', "HTTP server started on [%u] (SSL%s)", (unsigned)h->port,
              h->mutual ? ", client certificate required" : "");
    if (h->mutual) (void)agent_clock_warn(a); /* client certificates' dates: the board clock */
    agent_reply(a, "http.port=%u", (unsigned)h->port);
    return 0;
}

/* ---- main loop -------------------------------------------------------------------- */

int agent_http_fdset(agent_t *a, fd_set *rd, fd_set *wr, int maxfd, uint32_t *wait_ms)
{
    agent_http_t *h = &a->http;
    if (!h->running) return maxfd;
    uint64_t t = now_ms(a);
    FD_SET(h->listen_fd, rd);
    if (h->listen_fd > maxfd) maxfd = h->listen_fd;
    for (int i = 0; i < AGENT_HTTP_MAX_CLIENTS; i++) {
        agent_http_client_t *c = &h->clients[i];
        if (c->state == HTTP_CLIENT_FREE) continue;
        if (c->want_write) FD_SET(c->fd, wr);
        else FD_SET(c->fd, rd);
        if (c->fd > maxfd) maxfd = c->fd;
        uint32_t left = c->deadline_ms > t ? (uint32_t)(c->deadline_ms - t) : 0u;
        if (left < *wait_ms) *wait_ms = left;
    }
    return maxfd;
}

void agent_http_service(agent_t *a, const fd_set *rd, const fd_set *wr)
{
    agent_http_t *h = &a->http;
    if (!h->running) return;
    for (int i = 0; i < AGENT_HTTP_MAX_CLIENTS; i++) {
        agent_http_client_t *c = &h->clients[i];
        if (c->state == HTTP_CLIENT_FREE) continue;
        if (FD_ISSET(c->fd, rd) || FD_ISSET(c->fd, wr)) step_client(a, c);
        if (c->state != HTTP_CLIENT_FREE && now_ms(a) >= c->deadline_ms) expire(a, c);
    }
    if (FD_ISSET(h->listen_fd, rd)) accept_clients(a);
}
