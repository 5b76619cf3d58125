/* test_pending.c - commands that wait on the network are pending operations
 * serviced by agent_step(), and the agent keeps serving everything else
 * meanwhile. A forked fake MQTT broker (plain TCP: no CA and no PSK set)
 * follows a script (CONNACK after N ms or never, PUBACK / SUBACK after N ms
 * or never, messages pushed to the agent); a forked HTTPS client talks to the
 * agent's server. The parent drives agent_step() with the console on a pipe,
 * selectable and polled (console_fd -1, as on the ESP-IDF port).
 *
 *  (a) an HTTPS request is answered while `mqtt connect` waits for CONNACK;
 *  (b) lines typed during a pending command are read, queued and answered
 *      after its final line, in order, each with its own tag; a full queue
 *      answers ERR busy at once; EOF still answers everything read before it;
 *  (c) every timeout (TCP connect, TLS handshake, CONNACK, PUBACK, SUBACK)
 *      gives the same log and ERR lines as before (the clock is moved on);
 *  (d) publish QoS 0 / 1 and subscribe work, and incoming messages and
 *      PINGRESP are handled while a command is pending. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;
static uint64_t clock_offset_ms; /* added to the real clock: expire deadlines at will */
static int console_pipe[2] = {-1, -1};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_now(void *ctx)
{
    (void)ctx;
    return mono_ms() + clock_offset_ms;
}

/* selectable console: the read end of a non-blocking pipe */
static int pipe_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    return test_read_console_fd(console_pipe[0], buf, cap);
}

/* polled console (console_fd -1): wait up to timeout_ms, like a UART driver */
static int polled_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    struct pollfd p = {console_pipe[0], POLLIN, 0};
    if (poll(&p, 1, (int)timeout_ms) <= 0) return 0;
    return pipe_read(ctx, buf, cap, 0);
}

static agent_t *boot(bool selectable)
{
    fake_port_make(&fp, &port);
    fake_port_set_real_clock(&port); /* certificate dates are checked (esp variant) */
    port.now_ms = real_now;
    CHECK(pipe(console_pipe) == 0);
    (void)fcntl(console_pipe[0], F_SETFL, O_NONBLOCK);
    port.console_fd = selectable ? console_pipe[0] : -1;
    port.console_read = selectable ? pipe_read : polled_read;
    fp.net_up = true;
    clock_offset_ms = 0;
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    agent_boot(a);
    return a;
}

static void done(agent_t *a)
{
    agent_free(a);
    free(a);
    if (console_pipe[1] >= 0) close(console_pipe[1]);
    close(console_pipe[0]);
    console_pipe[0] = console_pipe[1] = -1;
}

static void clear_out(void)
{
    fp.out_len = 0;
    fp.out[0] = '\0';
}

/* "type" on the console */
static void type(const char *text)
{
    size_t n = strlen(text);
    CHECK_EQ_INT(write(console_pipe[1], text, n), (long long)n);
}

/* agent_step until the output contains needle (true) or ms passed (false) */
static bool run_until(agent_t *a, const char *needle, uint32_t ms)
{
    uint64_t end = mono_ms() + ms;
    while (!fake_contains(&fp, needle)) {
        if (mono_ms() > end) {
            fprintf(stderr, "run_until: no '%s' within %u ms in:\n%s", needle, (unsigned)ms, fp.out);
            test_failures++;
            return false;
        }
        (void)agent_step(a, 20);
    }
    return true;
}

/* a before b in the output (both present) */
static bool before(const char *x, const char *y)
{
    const char *px = strstr(fp.out, x), *py = strstr(fp.out, y);
    if (!px || !py || px >= py) {
        fprintf(stderr, "expected '%s' before '%s' in:\n%s", x, y, fp.out);
        return false;
    }
    return true;
}

static void set(agent_t *a, setting_key_t key, const char *value)
{
    char err[300];
    CHECK_EQ_INT(settings_set(&a->settings, key, value, strlen(value), agent_rng, a, err, sizeof(err)), 0);
}

/* ---- the fake broker ------------------------------------------------------------------ */

typedef struct {
    int connack_ms;          /* CONNACK after this many ms; -1: never */
    uint8_t connack_code;    /* its return code (5: not authorised, then the broker closes) */
    int puback_ms;           /* PUBACK after this many ms; -1: never */
    int suback_ms;           /* SUBACK (granted QoS 1) after this many ms; -1: never */
    bool push_before_puback; /* a PUBLISH to the agent before the PUBACK */
    bool push_with_suback;   /* a retained-style PUBLISH right behind the SUBACK */
    bool silent;             /* read everything, answer nothing (a TLS handshake that stalls) */
} script_t;

static void pause_ms(int ms)
{
    usleep((useconds_t)ms * 1000u);
}

static const uint8_t pushed[] = {0x30, 0x0a, 0x00, 0x04, 't', '/', 'i', 'n', 'p', 'u', 's', 'h'};

/* Answer one packet per the script. */
static void broker_answer(int fd, const script_t *s, const uint8_t *pkt, int len)
{
    const uint8_t connack[] = {0x20, 0x02, 0x00, s->connack_code};
    static const uint8_t pingresp[] = {0xd0, 0x00};
    size_t hl = 2;
    while (hl < 5 && (pkt[hl - 1] & 128u)) hl++;
    switch (pkt[0] >> 4) {
    case 1:
        if (s->connack_ms < 0) return;
        pause_ms(s->connack_ms);
        test_send_all(fd, connack, sizeof(connack));
        if (s->connack_code != 0) _exit(0); /* refused: close at once, like mosquitto */
        break;
    case 3:
        if (((pkt[0] >> 1) & 3u) == 1u && s->puback_ms >= 0) {
            size_t tl = ((size_t)pkt[hl] << 8) | pkt[hl + 1];
            uint8_t ack[] = {0x40, 0x02, pkt[hl + 2 + tl], pkt[hl + 3 + tl]};
            if (s->push_before_puback) test_send_all(fd, pushed, sizeof(pushed));
            pause_ms(s->puback_ms);
            test_send_all(fd, ack, sizeof(ack));
        }
        break;
    case 8:
        if (s->suback_ms >= 0) {
            uint8_t ack[5 + sizeof(pushed)] = {0x90, 0x03, pkt[hl], pkt[hl + 1], 0x01};
            size_t n = 5;
            if (s->push_with_suback) {
                memcpy(ack + 5, pushed, sizeof(pushed));
                n += sizeof(pushed);
            }
            pause_ms(s->suback_ms);
            test_send_all(fd, ack, n); /* one segment: SUBACK and the message together */
        }
        break;
    case 12: test_send_all(fd, pingresp, sizeof(pingresp)); break;
    default: break;
    }
    (void)len;
}

/* The child: one client, answered per the script until it closes. */
static int broker(int lfd, const script_t *s)
{
    uint8_t buf[4096];
    alarm(30); /* never outlive a broken test */
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return 10;
    for (;;) {
        if (s->silent) {
            if (recv(fd, buf, sizeof(buf), 0) <= 0) break;
            continue;
        }
        int n = test_read_mqtt_packet(fd, buf, sizeof(buf));
        if (n < 0 || (buf[0] >> 4) == 14) break;
        broker_answer(fd, s, buf, n);
    }
    close(fd);
    return 0;
}

static pid_t start_broker(const script_t *s, uint16_t *p)
{
    int lfd = test_listen_loopback(p, 4);
    CHECK(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(console_pipe[1]); /* or the agent would never see the console's EOF */
        _exit(broker(lfd, s));
    }
    close(lfd);
    return pid;
}

static void reap(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
}

static void use_broker(agent_t *a, uint16_t p)
{
    char server[40];
    snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)p);
    set(a, SK_MQTT_SERVER, server);
}

/* ---- the HTTPS client ------------------------------------------------------------------ */

static int child_entropy(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(rand() & 0xff);
    return 0;
}

/* In the child: GET /rpc/Sys.GetInfo; exit 0 when the answer is a 200. */
static int https_get(uint16_t p)
{
    static agent_port_t cport;
    static agent_conn_t c;
    static const char req[] = "GET /rpc/Sys.GetInfo HTTP/1.1\r\n\r\n";
    mbedtls_ctr_drbg_context drbg;
    conn_params_t prm;
    conn_err_t err;
    char buf[2048];
    size_t got = 0;
    alarm(20);
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
    prm.drbg = &drbg;
    if (test_conn_open(&c, &prm, &err) != 0) return 11;
    if (test_conn_write(&c, (const uint8_t *)req, sizeof(req) - 1, 3000, &err) != 0) return 12;
    while (got < sizeof(buf) - 1) {
        if (test_conn_wait_readable(&c, 3000) <= 0) return 13;
        int n = conn_read(&c, (uint8_t *)buf + got, sizeof(buf) - 1 - got, &err);
        if (n < 0) break; /* closed: the whole response is in */
        got += (size_t)n;
    }
    buf[got] = '\0';
    conn_close(&c, false);
    return strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0 ? 0 : 14;
}

static uint16_t start_https(agent_t *a)
{
    set(a, SK_HTTP_LISTEN_ADDR, "127.0.0.1:0");
    set(a, SK_HTTP_SSL_CERT, test_cert_pem);
    set(a, SK_HTTP_SSL_KEY, test_key_pem);
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fake_last_line(&fp), "OK");
    const char *p = strstr(fp.out, "\nhttp.port=");
    return p ? (uint16_t)strtoul(p + 11, NULL, 10) : 0;
}

/* ---- (a) + (b): HTTPS and the console while mqtt connect waits for CONNACK ---------------- */

static void https_during_connect(bool selectable)
{
    const script_t s = {.connack_ms = 2500, .puback_ms = 0, .suback_ms = 0};
    uint16_t bp = 0;
    agent_t *a = boot(selectable);
    uint16_t hp = start_https(a);
    CHECK(hp != 0);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    clear_out();

    /* pipelined like the rig: the connect, then more commands, then EOF */
    uint64_t t0 = mono_ms();
    type("@c1 mqtt connect\n@s1 status\n\n@v1 version\n");
    close(console_pipe[1]);
    console_pipe[1] = -1;
    CHECK(run_until(a, " hil: MQTT0 TCP connect ok (0)\n", 3000));
    CHECK_EQ_INT(fake_final_lines(&fp), 0); /* nothing answered yet: all in order behind @c1 */

    /* (a) the HTTPS server answers while the connect waits for its CONNACK */
    pid_t client = fork();
    if (client == 0) _exit(https_get(hp));
    int st = -1;
    while (waitpid(client, &st, WNOHANG) == 0) {
        CHECK(agent_step(a, 20)); /* EOF read, but commands are still to answer */
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(fake_contains(&fp, " hil: HTTP GET /rpc/Sys.GetInfo 200\n"));
    CHECK(!fake_contains(&fp, "CONNACK")); /* still waiting */
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK(mono_ms() - t0 < 2500);

    /* (b) the connect's final line, then the queued commands, in order, tagged */
    while (agent_step(a, 20)) {
        CHECK(mono_ms() - t0 < 10000);
        if (mono_ms() - t0 >= 10000) break;
    }
    CHECK(mono_ms() - t0 >= 2500);
    CHECK(before(" hil: HTTP GET /rpc/Sys.GetInfo 200\n", " hil: MQTT0 CONNACK 0\n"));
    CHECK(before(" hil: MQTT0 CONNACK 0\n", "\n@c1 OK\n"));
    CHECK(before("\n@c1 OK\n", "\nmqtt=connected\n"));
    CHECK(before("\nmqtt=connected\n", "\n@s1 OK\n"));
    CHECK(before("\n@s1 OK\n", "\nversion=1.0.0\n"));
    CHECK(before("\nversion=1.0.0\n", "\n@v1 OK\n"));
    CHECK(fake_has_line(&fp, "http_requests=1"));
    CHECK_EQ_INT(fake_final_lines(&fp), 3); /* the blank line got none */
    CHECK(a->stop);
    done(a);
    reap(broker_pid);
}

/* ---- (b): the queue, ERR busy; (c) the CONNACK timeout ----------------------------------- */

static void queue_and_connack_timeout(void)
{
    const script_t s = {.connack_ms = -1};
    uint16_t bp = 0;
    char line[700];
    agent_t *a = boot(true);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    clear_out();
    type("@c2 mqtt connect\n");
    CHECK(run_until(a, " hil: MQTT0 TCP connect ok (0)\n", 3000));

    /* read while pending: an over-long line and four 500-byte lines are
     * queued (2048 bytes), the fifth does not fit: ERR busy at once */
    memset(line, 'x', sizeof(line));
    memcpy(line, "@L1 ", 4);
    line[600] = '\n';
    line[601] = '\0';
    agent_console_feed(a, (const uint8_t *)line, strlen(line));
    for (int i = 1; i <= 5; i++) {
        memset(line, ' ', 520);
        int n = snprintf(line, sizeof(line), "@b%d version", i);
        line[n] = ' ';
        line[500] = '\n';
        line[501] = '\0';
        agent_console_feed(a, (const uint8_t *)line, strlen(line));
    }
    CHECK_STR(fp.out + strlen(fp.out) - strlen("@b5 ERR busy\n"), "@b5 ERR busy\n");
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    CHECK_EQ_INT(a->queue.count, 5);

    /* (c) no CONNACK within 10 s: the same lines as ever */
    clock_offset_ms += AGENT_REPLY_TIMEOUT_MS + 1;
    CHECK(run_until(a, "@b4 OK\n", 2000));
    CHECK(fake_contains(&fp, "E ("));
    CHECK(before(" hil: MQTT0 no CONNACK within 10000 ms\n",
                 "\n@c2 ERR mqtt connect: no CONNACK within 10000 ms\n"));
    CHECK(before("\n@c2 ERR mqtt connect: no CONNACK within 10000 ms\n",
                 "\n@L1 ERR line too long (max 512)\n"));
    CHECK(before("\n@L1 ERR line too long (max 512)\n", "\n@b1 OK\n"));
    CHECK(before("\n@b1 OK\n", "\n@b2 OK\n") && before("\n@b3 OK\n", "\n@b4 OK\n"));
    CHECK_EQ_INT(fake_final_lines(&fp), 7);
    CHECK_EQ_INT(a->queue.count, 0);
    CHECK_EQ_INT(a->queue.len, 0);
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    done(a);
    reap(broker_pid);
}

/* ---- (c) TCP connect and TLS handshake timeouts ------------------------------------------- */

static void tls_handshake_timeout(void)
{
    const script_t s = {.silent = true};
    uint16_t bp = 0;
    agent_t *a = boot(false);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    set(a, SK_MQTT_SSL_CA_CERT, test_cert_pem); /* TLS, ca mode */
    clear_out();
    type("@h1 mqtt connect\n@h2 version\n");
    for (int i = 0; i < 20; i++) (void)agent_step(a, 10); /* TCP up, ClientHello sent */
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    clock_offset_ms += AGENT_HANDSHAKE_TIMEOUT_MS + 1;
    CHECK(run_until(a, "@h2 OK\n", 2000));
    CHECK(before(" hil: MQTT0 TLS handshake failed: timed out after 10000 ms\n",
                 "\n@h1 ERR mqtt connect: TLS handshake timed out\n"));
    CHECK(before("\n@h1 ERR mqtt connect: TLS handshake timed out\n", "\n@h2 OK\n"));
    done(a);
    reap(broker_pid);
}

static void tcp_connect_timeout(void)
{
    uint16_t p = 0;
    int fill[8];
    agent_t *a = boot(true);
    /* a listener nobody accepts on, its queue full: further SYNs are dropped */
    int lfd = test_listen_loopback(&p, 0);
    CHECK(lfd >= 0);
    for (int i = 0; i < 8; i++) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons(p);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50000);
    use_broker(a, p);
    clear_out();
    type("@t1 mqtt connect\n");
    for (int i = 0; i < 10; i++) (void)agent_step(a, 10);
    if (fake_final_lines(&fp) != 0 || fake_contains(&fp, "TCP connect ok")) {
        fprintf(stderr, "tcp_connect_timeout: this kernel completed or refused the connect; "
                        "timeout not exercised:\n%s", fp.out);
    } else {
        clock_offset_ms += AGENT_CONNECT_TIMEOUT_MS + 1;
        CHECK(run_until(a, "@t1 ", 2000));
        CHECK(fake_contains(&fp, "E ("));
        CHECK(before(" hil: MQTT0 TCP connect failed: timed out\n",
                     "\n@t1 ERR mqtt connect: TCP connect failed (timed out)\n"));
    }
    for (int i = 0; i < 8; i++) close(fill[i]);
    close(lfd);
    done(a);
}

/* ---- (c) PUBACK / SUBACK timeouts; (d) publish and subscribe ------------------------------- */

static void publish_subscribe(void)
{
    const script_t s = {.connack_ms = 0, .puback_ms = 300, .suback_ms = 100,
                        .push_before_puback = true, .push_with_suback = true};
    uint16_t bp = 0;
    agent_t *a = boot(true);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    fake_cmd(a, &fp, "@c3 mqtt connect");
    CHECK_STR(fake_last_line(&fp), "@c3 OK");

    /* subscribe: SUBACK and a message in one segment; the message is logged first, as before */
    fake_cmd(a, &fp, "@u1 mqtt subscribe t/in 1");
    CHECK(before(" hil: MQTT0 message topic:t/in msg:push\n", " hil: MQTT0 subscribed topic:t/in qos:1\n"));
    CHECK_STR(fake_last_line(&fp), "@u1 OK");

    /* QoS 1: pending until PUBACK; a message from the broker meanwhile */
    clear_out();
    type("@p1 mqtt publish t/out hello 1\n@p2 status\n");
    CHECK(run_until(a, " hil: MQTT0 message topic:t/in msg:push\n", 2000));
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK(run_until(a, "@p2 OK\n", 3000));
    CHECK(before(" hil: MQTT0 message topic:t/in msg:push\n", " hil: Published:OK topic:t/out msg:hello\n"));
    CHECK(before(" hil: Published:OK topic:t/out msg:hello\n", "\n@p1 OK\n"));
    CHECK(before("\n@p1 OK\n", "\n@p2 OK\n"));

    /* QoS 0: answered once written */
    fake_cmd(a, &fp, "@p3 mqtt publish t/out bye");
    CHECK(fake_contains(&fp, " hil: Published:OK topic:t/out msg:bye\n"));
    CHECK_STR(fake_last_line(&fp), "@p3 OK");
    fake_cmd(a, &fp, "@d1 mqtt disconnect");
    CHECK(fake_contains(&fp, " hil: MQTT0 disconnected\n"));
    CHECK_STR(fake_last_line(&fp), "@d1 OK");
    done(a);
    reap(broker_pid);
}

static void ack_timeouts(void)
{
    const script_t s = {.connack_ms = 0, .puback_ms = -1, .suback_ms = -1};
    uint16_t bp = 0;
    agent_t *a = boot(false);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    set(a, SK_MQTT_KEEP_ALIVE, "1");
    fake_cmd(a, &fp, "mqtt connect");
    CHECK_STR(fake_last_line(&fp), "OK");

    clear_out();
    type("@p4 mqtt publish t/out x 1\n");
    for (int i = 0; i < 10; i++) (void)agent_step(a, 10);
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    /* keep-alive goes on while the PUBACK is awaited: PINGREQ out, PINGRESP in */
    clock_offset_ms += 800;
    for (int i = 0; i < 10 && !a->mqtt.ping_outstanding; i++) (void)agent_step(a, 10);
    for (int i = 0; i < 20 && a->mqtt.ping_outstanding; i++) (void)agent_step(a, 10);
    CHECK(!a->mqtt.ping_outstanding);
    CHECK(agent_mqtt_connected(a));
    clock_offset_ms += AGENT_REPLY_TIMEOUT_MS + 1;
    CHECK(run_until(a, "@p4 ", 2000));
    CHECK(before(" hil: MQTT0 no PUBACK for id 1 within 10000 ms\n",
                 "\n@p4 ERR mqtt publish: no PUBACK (timeout)\n"));

    clear_out();
    type("@u2 mqtt subscribe t/x\n");
    for (int i = 0; i < 5; i++) (void)agent_step(a, 10);
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    clock_offset_ms += AGENT_REPLY_TIMEOUT_MS + 1;
    CHECK(run_until(a, "@u2 ", 2000));
    CHECK_STR(fake_last_line(&fp), "@u2 ERR mqtt subscribe: no SUBACK (timeout)");
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    done(a);
    reap(broker_pid);
}

/* CONNACK 5 and the broker's close arrive together: the answer is the CONNACK's. */
static void refused_and_closed(void)
{
    const script_t s = {.connack_ms = 0, .connack_code = 5};
    uint16_t bp = 0;
    agent_t *a = boot(true);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    fake_cmd(a, &fp, "@r1 mqtt connect");
    CHECK(fake_contains(&fp, " hil: MQTT0 CONNACK 5\n"));
    CHECK_STR(fake_last_line(&fp), "@r1 ERR mqtt connect: CONNACK 5 (not authorised)");
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    done(a);
    reap(broker_pid);
}

/* A broker that closes the connection while a publish waits for its PUBACK. */
static void lost_while_pending(void)
{
    const script_t s = {.connack_ms = 0, .puback_ms = -1};
    uint16_t bp = 0;
    agent_t *a = boot(true);
    pid_t broker_pid = start_broker(&s, &bp);
    use_broker(a, bp);
    fake_cmd(a, &fp, "mqtt connect");
    clear_out();
    type("@p5 mqtt publish t/out x 1\n");
    for (int i = 0; i < 5; i++) (void)agent_step(a, 10);
    kill(broker_pid, SIGKILL);
    CHECK(run_until(a, "@p5 ", 3000));
    CHECK(fake_contains(&fp, " hil: MQTT0 connection lost: "));
    CHECK_STR(fake_last_line(&fp), "@p5 ERR mqtt publish: connection lost before PUBACK");
    done(a);
    reap(broker_pid);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    https_during_connect(true);
    https_during_connect(false);
    queue_and_connack_timeout();
    tls_handshake_timeout();
    tcp_connect_timeout();
    publish_subscribe();
    ack_timeouts();
    lost_while_pending();
    refused_and_closed();
    TEST_DONE();
}
