/* test_https_tls.c - TLS behaviour that differs between mbedTLS 2.28 and
 * 3.6 (the esp variant, what ESP-IDF 5 runs), over real connections on
 * 127.0.0.1: the agent's HTTPS server in the parent (agent_step with a
 * polled console), an mbedTLS client (conn.c) in a forked child.
 *
 * - A required client certificate that is missing: mbedTLS sends no alert
 *   (2.28 and 3.x alike); the agent sends handshake_failure (40) itself, and
 *   the client must receive it (not a connection reset).
 * - A client that verifies the server's certificate without checking its
 *   name (verify_hostname false): conn.c tells mbedTLS so with
 *   mbedtls_ssl_set_hostname(NULL); from 3.6.3 on, without that call the
 *   handshake fails with -0x5d80. With the name checked, a certificate
 *   without that name fails (CN mismatch) on both.
 * - Content-Length 4294967296 over TLS is answered 413 (it wrapped to 0 on
 *   32-bit builds). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_conn.h"
#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;

static int child_entropy(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(rand() & 0xff);
    return 0;
}

/* Exit codes of a child client. */
enum {
    CHILD_OK = 0,              /* got the expected outcome */
    CHILD_SETUP = 10,          /* DRBG */
    CHILD_HANDSHAKE = 11,      /* handshake failed other than expected */
    CHILD_NO_ALERT = 12,       /* failed as expected but without the alert */
    CHILD_WRITE = 13,          /* request not written */
    CHILD_READ = 14,           /* no response */
    CHILD_RESPONSE = 15,       /* response other than expected */
    CHILD_UNEXPECTED_OK = 16,  /* handshake succeeded where it must fail */
    CHILD_WRONG_FLAGS = 17,    /* verification failed for another reason */
};

typedef struct {
    uint16_t port;
    bool with_cert;          /* present the client certificate */
    bool verify_hostname;    /* check the server certificate's name ("127.0.0.1") */
    int want_alert;          /* >= 0: the handshake must fail with this alert from the server */
    uint32_t want_flags;     /* nonzero: the handshake must fail with these verify flags */
    const char *request;     /* else: send this, the response must start with want */
    const char *want;
} child_t;

static int child_run(const child_t *ch)
{
    static agent_port_t cport;
    static agent_conn_t c;
    mbedtls_ctr_drbg_context drbg;
    conn_params_t prm;
    conn_err_t err;
    char buf[2048];
    size_t got = 0;

    cport.now_ms = test_real_now_ms;
    conn_init(&c, &cport);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, child_entropy, NULL, NULL, 0) != 0) return CHILD_SETUP;
    memset(&prm, 0, sizeof(prm));
    prm.host = "127.0.0.1";
    prm.port = ch->port;
    prm.connect_timeout_ms = 3000;
    prm.handshake_timeout_ms = 3000;
    prm.use_tls = true;
    prm.ca_pem = test_cert_pem;
    prm.cert_pem = ch->with_cert ? test_cert_pem : NULL;
    prm.key_pem = ch->with_cert ? test_key_pem : NULL;
    prm.verify_hostname = ch->verify_hostname;
    prm.drbg = &drbg;
    int r = test_conn_open(&c, &prm, &err);
    if (ch->want_alert >= 0 || ch->want_flags) {
        if (r == 0) return CHILD_UNEXPECTED_OK;
        fprintf(stderr, "child: %s (alert %d, flags 0x%x)\n", err.text, err.alert,
                (unsigned)err.verify_flags);
        if (ch->want_flags) return (err.verify_flags & ch->want_flags) ? CHILD_OK : CHILD_WRONG_FLAGS;
        if (err.code == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && err.alert == ch->want_alert) return CHILD_OK;
        return err.code == MBEDTLS_ERR_NET_CONN_RESET || err.code == MBEDTLS_ERR_SSL_CONN_EOF
                   ? CHILD_NO_ALERT
                   : CHILD_HANDSHAKE;
    }
    if (r != 0) {
        fprintf(stderr, "child: %s\n", err.text);
        return CHILD_HANDSHAKE;
    }
    if (test_conn_write(&c, (const uint8_t *)ch->request, strlen(ch->request), 3000, &err) != 0) {
        return CHILD_WRITE;
    }
    for (;;) {
        if (test_conn_wait_readable(&c, 3000) <= 0) return CHILD_READ;
        int n = conn_read(&c, (uint8_t *)buf + got, sizeof(buf) - 1 - got, &err);
        if (n < 0) break; /* closed: the whole response is in */
        got += (size_t)n;
        if (got >= sizeof(buf) - 1) break;
    }
    buf[got] = '\0';
    conn_close(&c, false);
    return strncmp(buf, ch->want, strlen(ch->want)) == 0 ? CHILD_OK : CHILD_RESPONSE;
}

/* Fork a client, run the agent until it exits; its exit code. */
static int serve_child(agent_t *a, const child_t *ch)
{
    pid_t pid = fork();
    if (pid == 0) _exit(child_run(ch));
    CHECK(pid > 0);
    if (pid < 0) return 97;
    return test_serve_until_exit(a, pid);
}

static uint16_t start_server(agent_t *a, bool mutual)
{
    test_set_https(a, mutual);
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fake_last_line(&fp), "OK");
    return test_http_port(&fp);
}

static void clear_out(void)
{
    fp.out_len = 0;
    fp.out[0] = '\0';
}

static void test_missing_client_cert_alert(agent_t *a)
{
    child_t ch = {0};
    ch.port = start_server(a, true);
    ch.want_alert = -1;

    /* with the certificate: served, CN logged */
    clear_out();
    ch.with_cert = true;
    ch.request = "GET /rpc/FS.List HTTP/1.1\r\n\r\n";
    ch.want = "HTTP/1.1 200 OK\r\n";
    CHECK_EQ_INT(serve_child(a, &ch), CHILD_OK);
    CHECK(fake_contains(&fp, "HTTP GET /rpc/FS.List 200 cn=hil-test\n"));

    /* without: the client gets a fatal handshake_failure alert, not a reset */
    clear_out();
    ch.with_cert = false;
    ch.want_alert = MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE;
    CHECK_EQ_INT(serve_child(a, &ch), CHILD_OK);
    CHECK(fake_contains(&fp, "HTTP TLS handshake failed: client has no certificate (-0x7480)\n"));

    /* and the server goes on serving */
    clear_out();
    ch.with_cert = true;
    ch.want_alert = -1;
    ch.request = "GET / HTTP/1.1\r\n\r\n";
    ch.want = "HTTP/1.1 200 OK\r\n";
    CHECK_EQ_INT(serve_child(a, &ch), CHILD_OK);
}

static void test_hostname(agent_t *a)
{
    child_t ch = {0};
    ch.port = start_server(a, false);
    ch.want_alert = -1;

    /* the certificate verified, its name not checked: set_hostname(NULL) */
    clear_out();
    ch.verify_hostname = false;
    ch.request = "GET /rpc/Sys.GetInfo HTTP/1.1\r\n\r\n";
    ch.want = "HTTP/1.1 200 OK\r\n";
    CHECK_EQ_INT(serve_child(a, &ch), CHILD_OK);
    CHECK(fake_contains(&fp, "HTTP GET /rpc/Sys.GetInfo 200\n"));

    /* the name checked: "127.0.0.1" is not in a certificate for CN=hil-test */
    clear_out();
    ch.verify_hostname = true;
    ch.want_flags = MBEDTLS_X509_BADCERT_CN_MISMATCH;
    CHECK_EQ_INT(serve_child(a, &ch), CHILD_OK);
}

static void test_huge_content_length(agent_t *a)
{
    child_t ch = {0};
    ch.port = start_server(a, false);
    ch.want_alert = -1;
    static const char *const values[] = {"4294967296", "4294968000", "18446744073709551616"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char req[200];
        snprintf(req, sizeof(req), "POST /rpc/Sys.GetInfo HTTP/1.1\r\nContent-Length: %s\r\n\r\n",
                 values[i]);
        clear_out();
        ch.request = req;
        ch.want = "HTTP/1.1 413 ";
        CHECK_EQ_INT(serve_child(a, &ch), CHILD_OK);
        CHECK(fake_contains(&fp, "HTTP POST /rpc/Sys.GetInfo 413\n"));
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL));
    fake_port_make(&fp, &port);
    port.now_ms = test_real_now_ms;
    port.console_read = test_idle_console;
    fake_port_set_real_clock(&port); /* certificate dates are checked (esp variant) */
    agent_t *a = calloc(1, sizeof(*a));
    CHECK(a != NULL);
    if (!a) TEST_DONE();
    agent_init(a, &port);
    agent_boot(a);
    fprintf(stderr, "mbedTLS %s, %u-bit\n", AGENT_MBEDTLS_VERSION_STRING, (unsigned)(sizeof(void *) * 8u));
    test_missing_client_cert_alert(a);
    test_hostname(a);
    test_huge_content_length(a);
    fake_cmd(a, &fp, "http stop");
    agent_free(a);
    free(a);
    TEST_DONE();
}
