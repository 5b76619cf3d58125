/* test_http_server.c - the HTTPS server: request routing and responses
 * (agent_http_process, no sockets), the console commands, and real TLS
 * connections over 127.0.0.1 from a forked client process while the parent
 * runs agent_step() with a console that cannot be selected on (the polled
 * path). */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "agent_conn.h"
#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;
static uint64_t clock_offset_ms; /* added to the real clock: expire deadlines at will */

static uint64_t real_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + clock_offset_ms;
}

static size_t heap_12345(void *ctx)
{
    (void)ctx;
    return 12345;
}

static agent_t *boot(bool real_clock)
{
    fake_port_make(&fp, &port);
    fake_port_set_real_clock(&port); /* certificate dates are checked (esp variant) */
    if (real_clock) {
        port.now_ms = real_now;
        port.console_read = test_idle_console;
    }
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    agent_boot(a);
    return a;
}

static void done(agent_t *a)
{
    agent_free(a);
    free(a);
}

/* ---- request processing without sockets ------------------------------------ */

static char resp[AGENT_HTTP_RESPONSE_MAX];
static size_t resp_len;
static int resp_status;

static int process(agent_t *a, const char *req, const char *cn)
{
    fp.out_len = 0;
    fp.out[0] = '\0';
    memset(resp, 0, sizeof(resp));
    resp_len = 0;
    resp_status = 0;
    return agent_http_process(a, (const uint8_t *)req, strlen(req), cn, resp, &resp_len,
                              &resp_status);
}

/* The body of resp (after the empty line), NUL-terminated in a static buffer. */
static const char *body(void)
{
    static char b[AGENT_HTTP_RESPONSE_MAX + 1];
    resp[resp_len < sizeof(resp) ? resp_len : sizeof(resp) - 1] = '\0';
    const char *p = strstr(resp, "\r\n\r\n");
    snprintf(b, sizeof(b), "%s", p ? p + 4 : "<no head end>");
    return b;
}

static bool has_header(const char *h)
{
    char want[200];
    snprintf(want, sizeof(want), "\r\n%s\r\n", h);
    return strstr(resp, want) != NULL;
}

/* Every response: status line, Content-Type, Content-Length = body length,
 * Connection: close. */
static void check_framing(bool head_only)
{
    const char *b = body();
    CHECK(strncmp(resp, "HTTP/1.1 ", 9) == 0);
    CHECK(strstr(resp, "\r\nContent-Type: ") != NULL);
    CHECK(has_header("Connection: close"));
    const char *p = strstr(resp, "\r\nContent-Length: ");
    CHECK(p != NULL);
    if (!p) return;
    unsigned long n = strtoul(p + 18, NULL, 10);
    if (head_only) {
        CHECK_EQ_INT(strlen(b), 0);
    } else {
        CHECK_EQ_INT(n, strlen(b));
    }
    CHECK(n > 0);
}

static void test_routes(void)
{
    agent_t *a = boot(false);
    fake_cmd(a, &fp, "config set mqtt.server 127.0.0.1:1883");
    fake_cmd(a, &fp, "config set http.listen_addr 443");
    fake_cmd(a, &fp, "config set mqtt.pass s3cr3t");

    CHECK_EQ_INT(process(a, "GET /rpc/FS.List HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 1);
    CHECK_EQ_INT(resp_status, 200);
    check_framing(false);
    CHECK(has_header("Content-Type: application/json"));
    CHECK_STR(body(), "[\"index.html\",\"conf/mqtt.server\",\"conf/mqtt.pass\",\"conf/http.listen_addr\"]");
    CHECK(!strstr(resp, "s3cr3t"));
    CHECK(fake_contains(&fp, " hil: HTTP GET /rpc/FS.List 200\n"));
    CHECK(fp.out[0] == 'I');

    CHECK_EQ_INT(process(a, "GET /rpc/Sys.GetInfo?x=1 HTTP/1.0\r\n\r\n", NULL), 1);
    CHECK_EQ_INT(resp_status, 200);
    check_framing(false);
    char want[300];
    snprintf(want, sizeof(want),
             "{\"app\":\"hil-agent\",\"fw_version\":\"%s\",\"fw_id\":\"%s\",\"mbedtls\":\"%s\","
             "\"arch\":\"host\",\"uptime\":",
             AGENT_VERSION, agent_build_id(), AGENT_MBEDTLS_VERSION_STRING);
    CHECK(strncmp(body(), want, strlen(want)) == 0);
    CHECK(strstr(body(), ",\"ram_free\":null}") != NULL);
    CHECK(fake_contains(&fp, "HTTP GET /rpc/Sys.GetInfo 200\n")); /* query not logged */
    a->port.free_heap = heap_12345;
    process(a, "POST /rpc/Sys.GetInfo HTTP/1.1\r\n\r\n", NULL);
    CHECK(strstr(body(), ",\"ram_free\":12345}") != NULL);
    CHECK(fake_contains(&fp, "HTTP POST /rpc/Sys.GetInfo 200\n"));

    process(a, "GET / HTTP/1.1\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 200);
    CHECK(has_header("Content-Type: text/html; charset=utf-8"));
    CHECK(strstr(body(), "hil-agent " AGENT_VERSION) != NULL);
    check_framing(false);
    size_t get_len = strlen(body());
    process(a, "GET /index.html HTTP/1.1\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 200);
    /* HEAD: same head, no body */
    process(a, "HEAD / HTTP/1.1\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 200);
    check_framing(true);
    snprintf(want, sizeof(want), "Content-Length: %zu", get_len);
    CHECK(has_header(want));
    CHECK(fake_contains(&fp, "HTTP HEAD / 200\n"));

    process(a, "GET /nope?a HTTP/1.1\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 404);
    check_framing(false);
    CHECK(fake_contains(&fp, "HTTP GET /nope 404\n"));
    process(a, "GET /rpc/sys.getinfo HTTP/1.1\r\n\r\n", NULL); /* paths are case-sensitive */
    CHECK_EQ_INT(resp_status, 404);

    process(a, "DELETE /x HTTP/1.1\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 405);
    CHECK(has_header("Allow: GET, HEAD, POST"));
    check_framing(false);
    CHECK(fake_contains(&fp, "HTTP DELETE /x 405\n"));

    process(a, "POST /rpc/FS.List HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 413);
    check_framing(false);
    CHECK(fake_contains(&fp, "HTTP POST /rpc/FS.List 413\n"));

    /* body: not answered until all Content-Length bytes are there */
    CHECK_EQ_INT(process(a, "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab", NULL), 0);
    CHECK_EQ_INT(fp.out_len, 0);
    CHECK_EQ_INT(process(a, "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", NULL), 1);
    CHECK_EQ_INT(resp_status, 200);
    CHECK_EQ_INT(process(a, "GET / HTTP/1.1\r\nHost: x\r\n", NULL), 0);

    /* malformed: 400 + W line with the reason */
    process(a, "garbage\r\n", NULL);
    CHECK_EQ_INT(resp_status, 400);
    check_framing(false);
    CHECK(strstr(fp.out, "W (") == fp.out);
    CHECK(fake_contains(&fp, " hil: HTTP bad request 400: malformed request line\n"));
    process(a, "GET / HTTP/3.0\r\n\r\n", NULL);
    CHECK_EQ_INT(resp_status, 505);
    CHECK(fake_contains(&fp, "HTTP bad request 505: unsupported HTTP version\n"));

    /* the client certificate's CN */
    process(a, "GET /rpc/FS.List HTTP/1.1\r\n\r\n", "dev 1");
    CHECK(fake_contains(&fp, "HTTP GET /rpc/FS.List 200 cn=dev 1\n"));

    /* method and path are cut to 128 visible characters in the log */
    char req[600], logp[200];
    memset(logp, 'p', 127);
    logp[127] = '\0';
    snprintf(req, sizeof(req), "GET /%s%s HTTP/1.1\r\n\r\n", logp, "tail-not-logged");
    process(a, req, NULL);
    snprintf(want, sizeof(want), "HTTP GET /%s 404\n", logp);
    CHECK(fake_contains(&fp, want));

    /* console: status counts responses; help lists the commands */
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "http=stopped"));
    CHECK(fake_has_line(&fp, "http_requests=15"));
    fake_cmd(a, &fp, "help");
    CHECK(fake_contains(&fp, "\nhttp start "));
    CHECK(fake_contains(&fp, "\nhttp stop "));
    done(a);
}

static void test_commands(void)
{
    agent_t *a = boot(false);
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fake_last_line(&fp), "ERR http start: http.listen_addr is not set");
    fake_cmd(a, &fp, "config set http.listen_addr 127.0.0.1:0");
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fake_last_line(&fp), "ERR http start: http.ssl_cert is not set");
    fake_cmd(a, &fp, "config set http.listen_addr 0");
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "config set http.listen_addr :0");
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "config set http.listen_addr [::1]:0");
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "config set http.listen_addr 127.0.0.1:65536");
    CHECK_STR(fake_last_line(&fp), "ERR http.listen_addr: port must be a number 0..65535");
    fake_cmd(a, &fp, "config set http.listen_addr 65536");
    CHECK_STR(fake_last_line(&fp), "ERR http.listen_addr: port must be a number 0..65535");
    fake_cmd(a, &fp, "config set mqtt.server 127.0.0.1:0");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt.server: port must be a number 1..65535");
    CHECK_EQ_INT(settings_set(&a->settings, SK_HTTP_SSL_CERT, test_cert_pem, strlen(test_cert_pem),
                              agent_rng, a, resp, sizeof(resp)),
                 0);
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fake_last_line(&fp), "ERR http start: http.ssl_key is not set");
    fake_cmd(a, &fp, "http stop");
    CHECK_STR(fp.out, "OK\n"); /* not running: nothing logged */
    fake_cmd(a, &fp, "http");
    CHECK_STR(fake_last_line(&fp), "ERR http: missing subcommand (start, stop)");
    fake_cmd(a, &fp, "http reload");
    CHECK_STR(fake_last_line(&fp), "ERR http: unknown subcommand 'reload'");
    fake_cmd(a, &fp, "http start now");
    CHECK_STR(fake_last_line(&fp), "ERR http start: too many arguments");
    done(a);
}

/* ---- real connections over loopback ---------------------------------------------- */

static int child_entropy(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(rand() & 0xff);
    return 0;
}

/* In the child: one HTTPS request; exit 0 if the response starts with want. */
static int child_request(uint16_t p, bool with_cert, const char *request, const char *want)
{
    static agent_port_t cport;
    static agent_conn_t c;
    mbedtls_ctr_drbg_context drbg;
    conn_params_t prm;
    conn_err_t err;
    char buf[4096];
    size_t got = 0;
    cport.now_ms = real_now;
    conn_init(&c, &cport);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, child_entropy, NULL, NULL, 0) != 0) return 10;
    memset(&prm, 0, sizeof(prm));
    prm.host = "127.0.0.1";
    prm.port = p;
    prm.connect_timeout_ms = 3000;
    prm.handshake_timeout_ms = 3000;
    prm.use_tls = true;
    prm.ca_pem = test_cert_pem;
    prm.cert_pem = with_cert ? test_cert_pem : NULL;
    prm.key_pem = with_cert ? test_key_pem : NULL;
    prm.drbg = &drbg;
    if (test_conn_open(&c, &prm, &err) != 0) return 11;
    if (test_conn_write(&c, (const uint8_t *)request, strlen(request), 3000, &err) != 0) return 12;
    for (;;) {
        int r = test_conn_wait_readable(&c, 3000);
        if (r <= 0) return 13;
        int n = conn_read(&c, (uint8_t *)buf + got, sizeof(buf) - 1 - got, &err);
        if (n < 0) break; /* closed: the whole response is in */
        got += (size_t)n;
        if (got >= sizeof(buf) - 1) break;
    }
    buf[got] = '\0';
    conn_close(&c, false);
    return strncmp(buf, want, strlen(want)) == 0 ? 0 : 14;
}

static int raw_connect(uint16_t p)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(p);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) return -1;
    return fd;
}

static uint16_t start_server(agent_t *a, bool mutual)
{
    test_set_https(a, mutual);
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK(fake_contains(&fp, mutual ? "] (SSL, client certificate required)\n" : "] (SSL)\n"));
    return test_http_port(&fp);
}

static void test_loopback(void)
{
    agent_t *a = boot(true);
    uint16_t p = start_server(a, false);
    char want[80];
    CHECK(p != 0);
    CHECK(fake_contains(&fp, "HTTP server started on ["));
    fake_cmd(a, &fp, "status");
    snprintf(want, sizeof(want), "http=listening 127.0.0.1:%u", (unsigned)p);
    CHECK(fake_has_line(&fp, want));

    /* a silent TCP client and a stalled one do not block a real request */
    int idle = raw_connect(p);
    CHECK(idle >= 0);
    int stalled = raw_connect(p);
    CHECK(stalled >= 0);
    CHECK(send(stalled, "\x16\x03\x01\x00\xff\x01", 6, 0) == 6); /* start of a ClientHello */
    for (int i = 0; i < 5; i++) agent_step(a, 5);
    fp.out_len = 0;
    fp.out[0] = '\0';
    pid_t pid = fork();
    if (pid == 0) _exit(child_request(p, false, "GET /rpc/Sys.GetInfo HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n"));
    CHECK_EQ_INT(test_serve_until_exit(a, pid), 0);
    CHECK(fake_contains(&fp, "HTTP GET /rpc/Sys.GetInfo 200\n"));

    /* several in a row */
    for (int i = 0; i < 3; i++) {
        pid = fork();
        if (pid == 0) _exit(child_request(p, false, "GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "));
        CHECK_EQ_INT(test_serve_until_exit(a, pid), 0);
    }
    pid = fork();
    if (pid == 0) _exit(child_request(p, false, "BREW / HTCPCP/1.0\r\n\r\n", "HTTP/1.1 400 "));
    CHECK_EQ_INT(test_serve_until_exit(a, pid), 0);
    CHECK(fake_contains(&fp, "HTTP bad request 400: malformed HTTP version\n"));

    /* with the idle and the stalled client still there, two more fill the 4
     * slots and the fifth is closed at once */
    int more[3];
    for (int i = 0; i < 3; i++) more[i] = raw_connect(p);
    fp.out_len = 0;
    fp.out[0] = '\0';
    for (int i = 0; i < 10; i++) agent_step(a, 5);
    CHECK(fake_contains(&fp, "HTTP too many clients (max 4): closed connection from 127.0.0.1:"));
    CHECK(strstr(fp.out, "W (") == fp.out);
    char c;
    CHECK(recv(more[2], &c, 1, 0) <= 0);

    /* the 5 s deadline: jump the clock */
    fp.out_len = 0;
    fp.out[0] = '\0';
    clock_offset_ms += AGENT_HTTP_TIMEOUT_MS + 1000u;
    agent_step(a, 5);
    CHECK(fake_contains(&fp, "timed out in handshake after 5000 ms, dropped\n"));
    CHECK(recv(idle, &c, 1, 0) <= 0);
    CHECK(recv(stalled, &c, 1, 0) <= 0);
    close(idle);
    close(stalled);
    for (int i = 0; i < 3; i++) close(more[i]);

    /* a peer that closes mid-handshake */
    stalled = raw_connect(p);
    CHECK(send(stalled, "\x16\x03\x01\x00\xff\x01", 6, 0) == 6);
    for (int i = 0; i < 5; i++) agent_step(a, 5);
    fp.out_len = 0;
    fp.out[0] = '\0';
    close(stalled);
    for (int i = 0; i < 5; i++) agent_step(a, 5);
    CHECK(fake_contains(&fp, "E (") && fake_contains(&fp, " hil: HTTP TLS handshake failed: client closed the connection (-0x"));

    /* bind error: the port is taken */
    agent_t *b = calloc(1, sizeof(*b));
    fake_port_t fp2;
    agent_port_t port2;
    fake_port_make(&fp2, &port2);
    agent_init(b, &port2);
    char addr[40], err[300];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)p);
    CHECK_EQ_INT(settings_set(&b->settings, SK_HTTP_LISTEN_ADDR, addr, strlen(addr), NULL, NULL, err,
                              sizeof(err)),
                 0);
    settings_set(&b->settings, SK_HTTP_SSL_CERT, test_cert_pem, strlen(test_cert_pem), agent_rng, b,
                 err, sizeof(err));
    settings_set(&b->settings, SK_HTTP_SSL_KEY, test_key_pem, strlen(test_key_pem), agent_rng, b, err,
                 sizeof(err));
    fake_cmd(b, &fp2, "http start");
    snprintf(want, sizeof(want), "ERR http start: bind 127.0.0.1:%u: Address already in use",
             (unsigned)p);
    CHECK_STR(fake_last_line(&fp2), want);
    agent_free(b);
    free(b);

    /* mutual: with the certificate (CN logged), then without */
    p = start_server(a, true);
    CHECK(fake_contains(&fp, "HTTP server stopped\n")); /* restart */
    fp.out_len = 0;
    fp.out[0] = '\0';
    pid = fork();
    if (pid == 0) _exit(child_request(p, true, "GET /rpc/FS.List HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n"));
    CHECK_EQ_INT(test_serve_until_exit(a, pid), 0);
    CHECK(fake_contains(&fp, "HTTP GET /rpc/FS.List 200 cn=hil-test\n"));
    pid = fork();
    if (pid == 0) _exit(child_request(p, false, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200"));
    CHECK_EQ_INT(test_serve_until_exit(a, pid), 11); /* handshake refused */
    CHECK(fake_contains(&fp, "HTTP TLS handshake failed: client has no certificate (-0x7480)\n"));
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "http_requests=1"));

    fake_cmd(a, &fp, "http stop");
    CHECK(fake_contains(&fp, "HTTP server stopped\n"));
    CHECK_STR(fake_last_line(&fp), "OK");
    int fd = raw_connect(p);
    CHECK(fd < 0); /* listener closed */
    if (fd >= 0) close(fd);
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "http=stopped"));
    done(a);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_routes();
    test_commands();
    test_loopback();
    TEST_DONE();
}
