/* test_reconnect.c - keep-alive, reconnect and the offline queue (mqtt.c):
 *
 *  (a) keep-alive: PINGREQ after keep_alive/2 without sending or without
 *      receiving; a broker that answers PINGRESP keeps the link; a frozen
 *      broker (no FIN, no RST) is dropped at keep_alive after its last byte,
 *      with its exact line;
 *  (b) reconnect: back-off (min, doubled, capped at max, reset after a
 *      success) with its "reconnect attempt <n> in <ms> ms" lines; a broker
 *      that closes, then refuses, then accepts: "reconnected after <n>
 *      attempt(s), offline <ms> ms, session present 0", the resubscribes and
 *      their SUBACKs (a refused one too); clean_session false + session
 *      present 1: "session kept"; the boot connect retries a broker that is
 *      not up yet; a console `mqtt connect` is not retried; off by default;
 *  (c) the offline queue: "OK queued <k> of <max>", a full queue (count and
 *      bytes), the order of sending after the reconnect, "PUBACK id <id>
 *      (queued)", a publish in flight at the loss resent with DUP=1 (the bit
 *      on the wire), MQTT.Pub queued too, `mqtt disconnect` dropping it.
 *
 * The fake broker runs in this process: a non-blocking listener and
 * connection polled between agent steps (no fork, no sleep). The agent's
 * clock is a variable the test moves, so every deadline and every
 * millisecond in a log line is exact. "Connection refused" is the listener
 * closed; the broker listens again on the same port. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cJSON.h"
#include "mqtt_codec.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;
static uint64_t now_ms = 1000; /* the agent's clock: moved by the test only */

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

static int no_console(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    (void)timeout_ms;
    return 0; /* nothing typed (lines are fed with agent_console_feed) */
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the fake broker ------------------------------------------------------------------ */

typedef struct {
    uint8_t b0; /* first byte: DUP is 0x08 */
    uint16_t id;
    char topic[64];
    char msg[600];
    int conn; /* which connection (1, 2, ...) */
} seen_pub_t;

static struct {
    int lfd;
    uint16_t port;
    int fd;
    uint8_t in[16384];
    size_t in_len;
    int conns;
    /* behaviour */
    bool frozen;          /* after CONNACK: read everything, answer nothing */
    bool hold_puback;     /* no PUBACKs */
    bool session_present; /* CONNACK's flag */
    uint8_t connack_code;
    bool refuse_deny;     /* SUBACK 0x80 for topics starting with "deny/" */
    /* what it saw */
    int connects;
    uint8_t connect_flags;
    int pingreqs;
    int subscribes;
    char sub_topic[32][64];
    uint8_t sub_qos[32];
    seen_pub_t pub[64];
    size_t npub;
} br;

static int listen_on(uint16_t p)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(p);
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        fprintf(stderr, "listen on %u: %s\n", (unsigned)p, strerror(errno));
        test_failures++;
        if (fd >= 0) close(fd);
        return -1;
    }
    (void)fcntl(fd, F_SETFL, O_NONBLOCK);
    br.port = ntohs(sa.sin_port);
    return fd;
}

static void broker_close_client(void)
{
    if (br.fd >= 0) close(br.fd);
    br.fd = -1;
    br.in_len = 0;
}

static void broker_start(void)
{
    memset(&br, 0, sizeof(br));
    br.fd = -1;
    br.lfd = listen_on(0);
}

/* Nobody listens on the port any more: connects are refused. */
static void broker_refuse(void)
{
    if (br.lfd >= 0) close(br.lfd);
    br.lfd = -1;
}

static void broker_listen_again(void)
{
    if (br.lfd < 0) br.lfd = listen_on(br.port);
}

static void broker_stop(void)
{
    broker_close_client();
    broker_refuse();
}

static void broker_send(const uint8_t *p, size_t n)
{
    if (br.fd >= 0 && send(br.fd, p, n, MSG_NOSIGNAL) != (ssize_t)n) {
        fprintf(stderr, "broker: send failed\n");
        test_failures++;
    }
}

static void copy_str(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void broker_packet(const uint8_t *p, size_t hl, size_t total)
{
    uint8_t type = (uint8_t)(p[0] >> 4);
    if (type == 1) { /* CONNECT: "MQTT" (2 + 4 bytes), level, flags */
        const uint8_t connack[] = {0x20, 0x02, br.session_present ? 1u : 0u, br.connack_code};
        br.connects++;
        br.connect_flags = p[hl + 7];
        broker_send(connack, sizeof(connack));
        if (br.connack_code != 0) broker_close_client();
    } else if (type == 8) { /* SUBSCRIBE: id, topic, qos */
        size_t tl = ((size_t)p[hl + 2] << 8) | p[hl + 3];
        uint8_t qos = p[hl + 4 + tl];
        if (br.subscribes < 32) {
            copy_str(br.sub_topic[br.subscribes], sizeof(br.sub_topic[0]), p + hl + 4, tl);
            br.sub_qos[br.subscribes] = qos;
        }
        bool deny = br.refuse_deny && tl >= 5 && memcmp(p + hl + 4, "deny/", 5) == 0;
        br.subscribes++;
        const uint8_t suback[] = {0x90, 0x03, p[hl], p[hl + 1], deny ? 0x80 : qos};
        if (!br.frozen) broker_send(suback, sizeof(suback));
    } else if (type == 3) { /* PUBLISH */
        uint8_t qos = (uint8_t)((p[0] >> 1) & 3u);
        size_t tl = ((size_t)p[hl] << 8) | p[hl + 1];
        size_t off = hl + 2 + tl;
        seen_pub_t *s = br.npub < 64 ? &br.pub[br.npub++] : NULL;
        uint16_t id = 0;
        if (qos) {
            id = (uint16_t)((p[off] << 8) | p[off + 1]);
            off += 2;
        }
        if (s) {
            s->b0 = p[0];
            s->id = id;
            s->conn = br.conns;
            copy_str(s->topic, sizeof(s->topic), p + hl + 2, tl);
            copy_str(s->msg, sizeof(s->msg), p + off, total - off);
        }
        if (qos == 1 && !br.frozen && !br.hold_puback) {
            const uint8_t puback[] = {0x40, 0x02, (uint8_t)(id >> 8), (uint8_t)id};
            broker_send(puback, sizeof(puback));
        }
    } else if (type == 12) { /* PINGREQ */
        static const uint8_t pingresp[] = {0xd0, 0x00};
        br.pingreqs++;
        if (!br.frozen) broker_send(pingresp, sizeof(pingresp));
    } else if (type == 14) { /* DISCONNECT */
        broker_close_client();
    }
}

/* Accept, read and answer what is there (never waits). */
static void broker_poll(void)
{
    if (br.lfd >= 0) {
        int fd = accept(br.lfd, NULL, NULL);
        if (fd >= 0) {
            broker_close_client(); /* one client at a time: the newest */
            int one = 1; /* no Nagle: its PUBACKs must not wait for a delayed ACK */
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            (void)fcntl(fd, F_SETFL, O_NONBLOCK);
            br.fd = fd;
            br.conns++;
        }
    }
    while (br.fd >= 0) {
        ssize_t n = recv(br.fd, br.in + br.in_len, sizeof(br.in) - br.in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            broker_close_client();
            return;
        }
        if (n < 0) break;
        br.in_len += (size_t)n;
        for (;;) {
            uint8_t tf;
            uint32_t rem;
            size_t hl;
            if (br.fd < 0 || mqtt_parse_header(br.in, br.in_len, &tf, &rem, &hl) != MQTT_OK) break;
            size_t total = hl + rem;
            if (total > br.in_len) break;
            broker_packet(br.in, hl, total);
            if (br.fd < 0) return;
            memmove(br.in, br.in + total, br.in_len - total);
            br.in_len -= total;
        }
    }
}

/* A message from the broker to the agent (QoS 0). */
static void broker_push(const char *topic, const char *msg)
{
    uint8_t p[256];
    size_t tl = strlen(topic), ml = strlen(msg);
    p[0] = 0x30;
    p[1] = (uint8_t)(2 + tl + ml);
    p[2] = 0;
    p[3] = (uint8_t)tl;
    memcpy(p + 4, topic, tl);
    memcpy(p + 4 + tl, msg, ml);
    broker_send(p, 4 + tl + ml);
}

/* ---- driving the agent ------------------------------------------------------------------- */

static void clear_out(void)
{
    fp.out_len = 0;
    fp.out[0] = '\0';
}

/* A few rounds of agent and broker: what is on the wire gets handled. */
static void spin(agent_t *a, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        (void)agent_step(a, 1);
        broker_poll();
    }
}

/* Agent and broker until the output contains needle (5 s of real time at most). */
static bool until(agent_t *a, const char *needle)
{
    uint64_t end = mono_ms() + 5000;
    while (!fake_contains(&fp, needle)) {
        if (mono_ms() > end) {
            fprintf(stderr, "until: no '%s' in:\n%s", needle, fp.out);
            test_failures++;
            return false;
        }
        spin(a, 1);
    }
    return true;
}

/* The clock moves on by ms; then a few rounds. */
static void advance(agent_t *a, uint64_t ms)
{
    now_ms += ms;
    spin(a, 5);
}

/* A console line, run until it is answered (its one final line); the output. */
static const char *cmd(agent_t *a, const char *line)
{
    uint64_t end = mono_ms() + 5000;
    clear_out();
    test_feed(a, line);
    test_feed(a, "\n");
    while (agent_console_busy(a) && mono_ms() < end) spin(a, 1);
    spin(a, 2);
    if (fake_final_lines(&fp) != 1) {
        fprintf(stderr, "cmd: '%s' printed %d final lines:\n%s", line, fake_final_lines(&fp), fp.out);
        test_failures++;
    }
    return fp.out;
}

static bool before(const char *x, const char *y)
{
    const char *px = strstr(fp.out, x), *py = strstr(fp.out, y);
    if (!px || !py || px >= py) {
        fprintf(stderr, "expected '%s' before '%s' in:\n%s", x, y, fp.out);
        test_failures++;
        return false;
    }
    return true;
}

static void check_has(const char *sub)
{
    if (!fake_contains(&fp, sub)) {
        fprintf(stderr, "missing '%s' in:\n%s", sub, fp.out);
        test_failures++;
    }
}

static void check_not(const char *sub)
{
    if (fake_contains(&fp, sub)) {
        fprintf(stderr, "unexpected '%s' in:\n%s", sub, fp.out);
        test_failures++;
    }
}

/* A log line "<L> (<now>) hil: <text>" at the current clock. */
static void check_log(char level, const char *text)
{
    char line[600];
    snprintf(line, sizeof(line), "%c (%llu) hil: %s\n", level, (unsigned long long)now_ms, text);
    check_has(line);
}

/* One RPC request frame; the response parsed (NULL: none). */
static cJSON *call(agent_t *a, const char *json)
{
    return test_rpc_call(a, &fp, json);
}

/* A fresh agent on the fake clock (settings: server = the broker, plus lines). */
static agent_t *boot(const char *const *settings)
{
    char line[120];
    fake_port_make(&fp, &port);
    port.now_ms = fake_clock;
    port.console_read = no_console;
    fp.net_up = true;
    agent_t *a = test_agent_boot(&port);
    snprintf(line, sizeof(line), "config set mqtt.server 127.0.0.1:%u", (unsigned)br.port);
    cmd(a, line);
    for (size_t i = 0; settings && settings[i]; i++) {
        cmd(a, settings[i]);
        if (strcmp(fake_last_line(&fp), "OK") != 0) {
            fprintf(stderr, "'%s': %s\n", settings[i], fp.out);
            test_failures++;
        }
    }
    return a;
}

static void connect_ok(agent_t *a)
{
    cmd(a, "mqtt connect");
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK(agent_mqtt_connected(a));
}

/* ---- (a) keep-alive --------------------------------------------------------------------- */

static void keep_alive(void)
{
    static const char *const set[] = {"config set mqtt.keep_alive 2", NULL}; /* half: 1000 ms */
    broker_start();
    agent_t *a = boot(set);
    connect_ok(a);
    uint64_t t0 = now_ms; /* CONNECT sent and CONNACK read at t0 */

    /* received at t0 + 600, nothing sent since t0: the PINGREQ is due at t0 + 1000 */
    advance(a, 600);
    broker_push("t/in", "x");
    spin(a, 5);
    CHECK(fake_contains(&fp, "MQTT0 message topic:t/in msg:x"));
    advance(a, 399);
    CHECK_EQ_INT(br.pingreqs, 0);
    advance(a, 1);
    CHECK_EQ_INT(br.pingreqs, 1); /* nothing SENT for keep_alive/2 */
    spin(a, 5);
    CHECK(!a->mqtt.ping_outstanding); /* PINGRESP came */

    /* sending all the time, nothing received: a PINGREQ anyway */
    uint64_t t1 = now_ms; /* the PINGRESP's time */
    for (int i = 0; i < 2; i++) {
        advance(a, 400);
        cmd(a, "mqtt publish t/out q0"); /* QoS 0: nothing comes back */
        CHECK_STR(fake_last_line(&fp), "OK");
    }
    CHECK_EQ_INT(br.pingreqs, 1);
    advance(a, t1 + 999 - now_ms);
    CHECK_EQ_INT(br.pingreqs, 1);
    advance(a, 1);
    CHECK_EQ_INT(br.pingreqs, 2); /* nothing RECEIVED for keep_alive/2 */
    spin(a, 5);
    CHECK(!a->mqtt.ping_outstanding);

    /* a broker that answers keeps the link, however long */
    for (int i = 0; i < 10; i++) advance(a, 1000);
    CHECK_EQ_INT(br.pingreqs, 12);
    CHECK(agent_mqtt_connected(a));
    CHECK(!fake_contains(&fp, "keep-alive timeout"));

    /* frozen (SIGSTOP: no FIN, no RST): the last byte was the PINGRESP at now */
    br.frozen = true;
    clear_out();
    uint64_t last = now_ms;
    advance(a, 1000); /* PINGREQ, never answered */
    CHECK_EQ_INT(br.pingreqs, 13);
    advance(a, 999);
    CHECK(agent_mqtt_connected(a));
    advance(a, 1);
    CHECK_EQ_INT(now_ms - last, 2000); /* = keep_alive: inside MQTT's 1.5 x keep_alive */
    check_log('E', "MQTT0 keep-alive timeout: nothing from the broker for 2000 ms (keep_alive 2 s), "
                   "disconnecting");
    CHECK(!agent_mqtt_connected(a));
    CHECK(!conn_is_open(&a->mqtt.conn));
    check_not("reconnect attempt"); /* reconnect off (the default): it stays lost */
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    CHECK(fake_has_line(&fp, "mqtt_queued=0"));
    (void)t0;
    test_agent_drop(a);
    broker_stop();

    /* with reconnect on, a frozen broker is a lost connection like any other: the
     * step that noticed it schedules the attempt and waits no longer than that */
    static const char *const rc[] = {"config set mqtt.keep_alive 2",
                                     "config set mqtt.reconnect_timeout_min 0.3",
                                     "config set mqtt.reconnect_timeout_max 5", NULL};
    broker_start();
    a = boot(rc);
    connect_ok(a);
    br.frozen = true;
    clear_out();
    advance(a, 1000); /* PINGREQ */
    now_ms += 1000;
    CHECK(agent_mqtt_tick(a) == 300); /* the timeout, then the attempt's wait */
    check_log('E', "MQTT0 keep-alive timeout: nothing from the broker for 2000 ms (keep_alive 2 s), "
                   "disconnecting");
    check_log('I', "MQTT0 reconnect attempt 1 in 300 ms");
    br.frozen = false; /* SIGCONT */
    advance(a, 300);
    CHECK(until(a, "MQTT0 reconnected after 1 attempt(s), offline 300 ms, session present 0\n"));
    test_agent_drop(a);
    broker_stop();

    /* keep_alive 0: no PINGREQ at all */
    static const char *const off[] = {"config set mqtt.keep_alive 0", NULL};
    broker_start();
    a = boot(off);
    connect_ok(a);
    for (int i = 0; i < 5; i++) advance(a, 100000);
    CHECK_EQ_INT(br.pingreqs, 0);
    CHECK(agent_mqtt_connected(a));
    test_agent_drop(a);
    broker_stop();
}

/* ---- (b) reconnect ----------------------------------------------------------------------- */

static void backoff_and_resubscribe(void)
{
    static const char *const set[] = {"config set mqtt.reconnect_timeout_min 1",
                                      "config set mqtt.reconnect_timeout_max 4", NULL};
    broker_start();
    br.refuse_deny = true;
    agent_t *a = boot(set);
    connect_ok(a);
    cmd(a, "mqtt subscribe t/a 1");
    CHECK_STR(fake_last_line(&fp), "OK");
    cmd(a, "mqtt subscribe t/b");
    CHECK_STR(fake_last_line(&fp), "OK");
    cmd(a, "mqtt subscribe deny/x");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt subscribe: refused by broker (SUBACK 0x80)");
    cmd(a, "mqtt subscribe t/a 1"); /* again: still one subscription */
    CHECK_EQ_INT(br.subscribes, 4);

    /* the broker closes the connection and stops listening */
    clear_out();
    broker_stop();
    uint64_t lost = now_ms;
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 1000 ms\n"));
    check_log('E', "MQTT0 connection lost: closed by broker");
    check_log('I', "MQTT0 reconnect attempt 1 in 1000 ms");
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=reconnecting"));
    CHECK(fake_has_line(&fp, "mqtt_queued=0"));
    clear_out();
    advance(a, 999);
    check_not("connecting to");
    advance(a, 1); /* attempt 1: refused */
    CHECK(until(a, "MQTT0 reconnect attempt 2 in 2000 ms\n"));
    check_has(" hil: MQTT0 connecting to 127.0.0.1:");
    check_has(" hil: MQTT0 TCP connect failed: Connection refused\n");
    check_has(" hil: MQTT0 reconnect: mqtt connect: TCP connect failed (Connection refused)\n");
    check_log('I', "MQTT0 reconnect attempt 2 in 2000 ms");
    CHECK_EQ_INT(fake_final_lines(&fp), 0); /* nobody's command */
    CHECK(!agent_console_busy(a));           /* attempts leave the console alone */
    advance(a, 2000);
    CHECK(until(a, "MQTT0 reconnect attempt 3 in 4000 ms\n"));
    advance(a, 4000);
    CHECK(until(a, "MQTT0 reconnect attempt 4 in 4000 ms\n")); /* capped at max */
    clear_out();
    broker_listen_again();
    advance(a, 4000); /* attempt 4: accepted */
    CHECK(until(a, "MQTT0 resubscribed t/b qos 0\n"));
    CHECK_EQ_INT(now_ms - lost, 11000);
    check_has(" hil: MQTT0 CONNACK 0\n");
    check_log('I', "MQTT0 reconnected after 4 attempt(s), offline 11000 ms, session present 0");
    check_log('I', "MQTT0 resubscribe t/a qos 1");
    check_log('I', "MQTT0 resubscribe t/b qos 0");
    check_log('I', "MQTT0 resubscribed t/a qos 1");
    before("MQTT0 CONNACK 0\n", "MQTT0 reconnected after");
    before("MQTT0 reconnected after", "MQTT0 resubscribe t/a");
    check_not("deny/x"); /* refused: never remembered */
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK_EQ_INT(br.subscribes, 6);
    CHECK_STR(br.sub_topic[4], "t/a");
    CHECK_EQ_INT(br.sub_qos[4], 1);
    CHECK_STR(br.sub_topic[5], "t/b");
    CHECK_EQ_INT(br.connect_flags & 0x02, 0x02); /* clean session (the default) */
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=connected"));

    /* lost again: the back-off starts over at min */
    clear_out();
    broker_close_client();
    lost = now_ms;
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 1000 ms\n"));
    advance(a, 1000);
    CHECK(until(a, "MQTT0 resubscribed t/b qos 0\n"));
    check_log('I', "MQTT0 reconnected after 1 attempt(s), offline 1000 ms, session present 0");

    /* a resubscribe the broker refuses now: an E line naming it, forgotten */
    br.refuse_deny = true;
    cmd(a, "mqtt subscribe deny/later");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt subscribe: refused by broker (SUBACK 0x80)");
    test_agent_drop(a);
    broker_stop();
}

/* The contract's sequence: closed, refused once, accepted; clean_session
 * false with a broker that kept the session: no resubscribe. */
static void session_kept(void)
{
    static const char *const set[] = {"config set mqtt.reconnect_timeout_min 0.5",
                                      "config set mqtt.reconnect_timeout_max 60",
                                      "config set mqtt.clean_session false",
                                      "config set mqtt.client_id dev-1", NULL};
    broker_start();
    agent_t *a = boot(set);
    connect_ok(a);
    CHECK_EQ_INT(br.connect_flags & 0x02, 0); /* clean session off */
    cmd(a, "mqtt subscribe t/kept 1");
    cmd(a, "mqtt subscribe t/kept2");
    clear_out();
    broker_stop(); /* closes (EOF), then refuses */
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 500 ms\n"));
    advance(a, 500);
    CHECK(until(a, "MQTT0 reconnect attempt 2 in 1000 ms\n"));
    broker_listen_again();
    br.session_present = true;
    advance(a, 1000);
    CHECK(until(a, "MQTT0 session kept: 2 subscription(s)\n"));
    check_log('I', "MQTT0 reconnected after 2 attempt(s), offline 1500 ms, session present 1");
    spin(a, 5);
    check_not("resubscribe");
    CHECK_EQ_INT(br.subscribes, 2);

    /* session present 0 after all (the broker lost it): resubscribed */
    br.session_present = false;
    clear_out();
    broker_close_client();
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 500 ms\n"));
    advance(a, 500);
    CHECK(until(a, "MQTT0 resubscribed t/kept2 qos 0\n"));
    check_has("MQTT0 resubscribed t/kept qos 1\n");
    CHECK_EQ_INT(br.subscribes, 4);
    test_agent_drop(a);
    broker_stop();
}

/* mqtt.enable with a broker that is not up yet: the boot connect retries. */
static void boot_connect_retries(void)
{
    settings_t s;
    char err[200], server[40];
    broker_start();
    snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)br.port);
    broker_refuse();
    fake_port_make(&fp, &port);
    port.now_ms = fake_clock;
    port.console_read = no_console;
    fp.net_up = true;
    settings_init(&s);
    CHECK_EQ_INT(settings_set(&s, SK_MQTT_SERVER, server, strlen(server), NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ_INT(settings_set(&s, SK_MQTT_ENABLE, "true", 4, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ_INT(settings_set(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, "10", 2, NULL, NULL, err, sizeof(err)), 0);
    CHECK(fake_store_settings(&fp, &s));
    agent_t *a = test_agent_boot(&port);
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 2000 ms\n")); /* min's default: 2 s */
    before(" hil: mqtt.enable: mqtt connect: TCP connect failed (Connection refused)\n",
           "MQTT0 reconnect attempt 1 in 2000 ms");
    CHECK(!agent_console_busy(a)); /* the console is free while it waits */
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=reconnecting"));
    clear_out();
    advance(a, 2000);
    CHECK(until(a, "MQTT0 reconnect attempt 2 in 4000 ms\n"));
    broker_listen_again();
    advance(a, 4000);
    CHECK(until(a, "MQTT0 reconnected after 2 attempt(s), offline 6000 ms, session present 0\n"));
    check_not("session kept"); /* nothing to resubscribe */
    CHECK(agent_mqtt_connected(a));
    test_agent_drop(a);
    broker_stop();
}

/* What is not retried: a console connect that fails, the default (max 0). */
static void not_retried(void)
{
    static const char *const set[] = {"config set mqtt.reconnect_timeout_max 5", NULL};
    broker_start();
    agent_t *a = boot(set);
    broker_refuse();
    cmd(a, "mqtt connect");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt connect: TCP connect failed (Connection refused)");
    clear_out();
    for (int i = 0; i < 5; i++) advance(a, 10000);
    check_not("reconnect");
    check_not("connecting");
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    /* max < min: refused at connect time, naming both */
    cmd(a, "config set mqtt.reconnect_timeout_min 6");
    cmd(a, "mqtt connect");
    CHECK_STR(fp.out, "ERR mqtt.reconnect_timeout_max: must be 0 (no reconnect) or at least "
                      "mqtt.reconnect_timeout_min (5 < 6)\n");
    test_agent_drop(a);
    broker_stop();

    /* the default, reconnect off: a lost session stays lost, as before */
    broker_start();
    a = boot(NULL);
    connect_ok(a);
    cmd(a, "config get mqtt.reconnect_timeout_max");
    CHECK_STR(fp.out, "mqtt.reconnect_timeout_max=0\nOK\n");
    clear_out();
    broker_close_client();
    CHECK(until(a, "MQTT0 connection lost: closed by broker\n"));
    for (int i = 0; i < 5; i++) advance(a, 100000);
    check_not("reconnect");
    CHECK_EQ_INT(br.conns, 1);
    cmd(a, "mqtt publish t m 1");
    CHECK_STR(fp.out, "ERR mqtt publish: not connected\n");
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    test_agent_drop(a);
    broker_stop();
}

/* ---- (c) the offline queue ------------------------------------------------------------------ */

static void offline_queue(void)
{
    static const char *const set[] = {"config set mqtt.reconnect_timeout_min 1",
                                      "config set mqtt.reconnect_timeout_max 1",
                                      "config set mqtt.max_queue_length 4", NULL};
    broker_start();
    agent_t *a = boot(set);
    connect_ok(a);

    /* a console publish and an RPC publish in flight (no PUBACK) when the link dies */
    br.hold_puback = true;
    clear_out();
    test_feed(a, "@p1 mqtt publish t/f first 1\n");
    spin(a, 5);
    CHECK(agent_is_pending(a));
    cJSON *r = call(a, "{\"id\":1,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/r\",\"message\":\"second\",\"qos\":1}}");
    CHECK(r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), "queued")));
    cJSON_Delete(r);
    spin(a, 5);
    CHECK_EQ_INT(br.npub, 2);
    CHECK_EQ_INT(br.pub[0].b0 & 0x08, 0);
    uint16_t id1 = br.pub[0].id, id2 = br.pub[1].id;
    char line[200];
    broker_stop();
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 1000 ms\n"));
    snprintf(line, sizeof(line), "MQTT0 PUBLISH id %u unacknowledged when the connection was lost: "
                                 "resent after the reconnect", (unsigned)id1);
    check_log('W', line);
    snprintf(line, sizeof(line), "MQTT0 PUBLISH id %u unacknowledged when the connection was lost: "
                                 "resent after the reconnect", (unsigned)id2);
    check_log('W', line);
    check_has("\n@p1 OK queued 1 of 4 (connection lost before PUBACK)\n");
    before("@p1 OK queued", "MQTT0 reconnect attempt 1");
    CHECK(!agent_is_pending(a));
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=reconnecting"));
    CHECK(fake_has_line(&fp, "mqtt_queued=2"));

    /* while down: QoS 1 queued at once, QoS 0 refused, a full queue refused */
    cmd(a, "@q1 mqtt publish t/q third 1");
    CHECK_STR(fake_last_line(&fp), "@q1 OK queued 3 of 4");
    check_log('I', "MQTT0 queued PUBLISH topic:t/q (3 of 4)");
    clear_out();
    r = call(a, "{\"id\":2,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/r2\",\"message\":\"fourth\",\"qos\":1}}");
    CHECK(r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), "queued")));
    cJSON_Delete(r);
    check_log('I', "MQTT0 queued PUBLISH topic:t/r2 (4 of 4)");
    cmd(a, "@q2 mqtt publish t/q fifth 1");
    CHECK_STR(fake_last_line(&fp), "@q2 ERR offline queue full (4 of 4): not queued");
    check_log('E', "MQTT0 offline queue full (4 of 4): not queued (topic:t/q)");
    clear_out();
    r = call(a, "{\"id\":3,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/r3\",\"message\":\"x\",\"qos\":1}}");
    CHECK(r && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "error")));
    cJSON_Delete(r);
    check_has(" hil: rpc: MQTT.Pub id 3: error 503: offline queue full (4 of 4): not queued\n");
    cmd(a, "@q3 mqtt publish t/q zero");
    CHECK_STR(fake_last_line(&fp), "@q3 ERR mqtt publish: not connected");
    cmd(a, "mqtt subscribe t/s");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt subscribe: not connected");

    /* the reconnect: the queue in order, the two that were in flight with DUP=1 */
    br.hold_puback = false;
    broker_listen_again();
    clear_out();
    size_t base = br.npub;
    advance(a, 1000);
    CHECK(until(a, "Published:OK topic:t/r2 msg:fourth\n"));
    check_log('I', "MQTT0 reconnected after 1 attempt(s), offline 1000 ms, session present 0");
    check_log('I', "MQTT0 sending 4 queued message(s)");
    before("MQTT0 reconnected after", "MQTT0 sending 4 queued message(s)");
    CHECK_EQ_INT(br.npub, base + 4);
    static const char *const order[][2] = {{"t/f", "first"}, {"t/r", "second"}, {"t/q", "third"},
                                           {"t/r2", "fourth"}};
    for (size_t i = 0; i < 4 && base + i < br.npub; i++) {
        const seen_pub_t *p = &br.pub[base + i];
        CHECK_STR(p->topic, order[i][0]);
        CHECK_STR(p->msg, order[i][1]);
        CHECK_EQ_INT((p->b0 >> 1) & 3, 1);
        CHECK_EQ_INT(p->conn, 2);
        CHECK_EQ_INT(p->b0 & 0x08, i < 2 ? 0x08 : 0); /* DUP: the two sent before */
    }
    CHECK_EQ_INT(br.pub[base].id, id1); /* resent with their ids */
    CHECK_EQ_INT(br.pub[base + 1].id, id2);
    snprintf(line, sizeof(line), "MQTT0 sending queued PUBLISH id %u topic:t/f (DUP)", (unsigned)id1);
    check_log('I', line);
    snprintf(line, sizeof(line), "MQTT0 PUBACK id %u (queued)", (unsigned)id1);
    check_log('I', line);
    snprintf(line, sizeof(line), "MQTT0 PUBACK id %u (queued)", (unsigned)br.pub[base + 3].id);
    check_log('I', line);
    check_has(" hil: Published:OK topic:t/f msg:first\n");
    check_has(" hil: Published:OK topic:t/q msg:third\n");
    before("Published:OK topic:t/f msg:first", "Published:OK topic:t/r msg:second");
    before("Published:OK topic:t/r msg:second", "Published:OK topic:t/q msg:third");
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=connected"));
    CHECK(fake_has_line(&fp, "mqtt_queued=0"));

    /* connected: publishes go out as ever */
    cmd(a, "mqtt publish t/now live 1");
    CHECK(fake_contains(&fp, " hil: Published:OK topic:t/now msg:live\n"));
    CHECK_STR(fake_last_line(&fp), "OK");

    /* down again: queued, then `mqtt disconnect` drops them */
    clear_out();
    broker_stop();
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 1000 ms\n"));
    cmd(a, "mqtt publish t/d one 1");
    CHECK_STR(fake_last_line(&fp), "OK queued 1 of 4");
    cmd(a, "mqtt publish t/d two 1");
    cmd(a, "mqtt disconnect");
    check_log('W', "MQTT0 dropped 2 queued message(s): mqtt disconnect");
    check_log('I', "MQTT0 disconnected");
    CHECK_STR(fake_last_line(&fp), "OK");
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    CHECK(fake_has_line(&fp, "mqtt_queued=0"));
    clear_out();
    broker_listen_again();
    for (int i = 0; i < 5; i++) advance(a, 10000);
    check_not("connecting"); /* no attempt after `mqtt disconnect` */
    cmd(a, "mqtt publish t/d three 1");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt publish: not connected");
    test_agent_drop(a);
    broker_stop();
}

/* The byte bound of the queue; max_queue_length 0; a `mqtt connect` while
 * reconnecting keeps the queue (and forgets the subscriptions). */
static void queue_limits(void)
{
    static const char *const set[] = {"config set mqtt.reconnect_timeout_min 1",
                                      "config set mqtt.reconnect_timeout_max 1",
                                      "config set mqtt.max_queue_length 16", NULL};
    char line[600], msg[480];
    broker_start();
    agent_t *a = boot(set);
    connect_ok(a);
    cmd(a, "mqtt subscribe t/sub");
    clear_out();
    broker_close_client();
    CHECK(until(a, "MQTT0 reconnect attempt 1 in 1000 ms\n"));
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    size_t each = mqtt_queue_need(3, strlen(msg)), used = 0;
    int k = 0;
    for (; used + each <= AGENT_MQTT_QUEUE_BYTES; used += each) {
        snprintf(line, sizeof(line), "mqtt publish t/b %s 1", msg);
        cmd(a, line);
        snprintf(line, sizeof(line), "OK queued %d of 16", ++k);
        CHECK_STR(fake_last_line(&fp), line);
    }
    snprintf(line, sizeof(line), "mqtt publish t/b %s 1", msg);
    cmd(a, line);
    snprintf(line, sizeof(line),
             "ERR offline queue full (%zu of %u bytes in use, this message needs %zu): not queued", used,
             (unsigned)AGENT_MQTT_QUEUE_BYTES, each);
    CHECK_STR(fake_last_line(&fp), line);
    cmd(a, "mqtt publish t/b small 1"); /* a smaller one still fits */
    CHECK(strncmp(fake_last_line(&fp), "OK queued ", 10) == 0);

    /* `mqtt connect` while reconnecting: the schedule ends, the queue goes out
     * after its CONNACK, the subscriptions are not restored */
    clear_out();
    test_feed(a, "@c1 mqtt connect\n");
    CHECK(until(a, "@c1 OK\n"));
    spin(a, 10);
    snprintf(line, sizeof(line), "MQTT0 sending %d queued message(s)", k + 1);
    check_log('I', line);
    before(line, "@c1 OK");
    check_not("reconnected after");
    check_not("resubscribe");
    cmd(a, "status");
    CHECK(fake_has_line(&fp, "mqtt_queued=0"));
    test_agent_drop(a);
    broker_stop();

    /* max_queue_length 0: nothing is held, and an in-flight publish is lost, said */
    static const char *const zero[] = {"config set mqtt.reconnect_timeout_min 1",
                                       "config set mqtt.reconnect_timeout_max 1",
                                       "config set mqtt.max_queue_length 0", NULL};
    broker_start();
    a = boot(zero);
    connect_ok(a);
    br.hold_puback = true;
    clear_out();
    test_feed(a, "@p1 mqtt publish t/x lost 1\n");
    spin(a, 5);
    uint16_t id = br.pub[0].id;
    broker_close_client();
    CHECK(until(a, "@p1 ERR mqtt publish: connection lost before PUBACK\n"));
    snprintf(line, sizeof(line), "MQTT0 PUBLISH id %u lost: offline queue full", (unsigned)id);
    check_log('E', line);
    cmd(a, "mqtt publish t/x m 1");
    CHECK_STR(fake_last_line(&fp), "ERR offline queue full (0 of 0): not queued");
    test_agent_drop(a);
    broker_stop();
}

/* With reconnect on, the subscriptions it can restore are bounded. */
static void subscription_bound(void)
{
    static const char *const set[] = {"config set mqtt.reconnect_timeout_max 5", NULL};
    char line[400];
    broker_start();
    agent_t *a = boot(set);
    connect_ok(a);
    for (int i = 0; i < AGENT_MQTT_SUBS; i++) {
        snprintf(line, sizeof(line), "mqtt subscribe t/%d", i);
        cmd(a, line);
        CHECK_STR(fake_last_line(&fp), "OK");
    }
    cmd(a, "mqtt subscribe t/0 1"); /* one it has: fine */
    CHECK_STR(fake_last_line(&fp), "OK");
    cmd(a, "mqtt subscribe t/one-more");
    snprintf(line, sizeof(line), "ERR mqtt subscribe: %u subscriptions already, the most reconnect can "
                                 "restore: not subscribed", (unsigned)AGENT_MQTT_SUBS);
    CHECK_STR(fake_last_line(&fp), line);
    char topic[AGENT_MQTT_SUB_TOPIC_MAX + 2];
    memset(topic, 'l', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    snprintf(line, sizeof(line), "mqtt subscribe %s", topic);
    cmd(a, line);
    CHECK(strstr(fake_last_line(&fp), "ERR mqtt subscribe: topic too long to resubscribe after a "
                                      "reconnect (257 bytes, max 256)") != NULL);
    test_agent_drop(a);
    broker_stop();
}

/* The settings on the console and by RPC (numbers, booleans). */
static void settings_rpc(void)
{
    broker_start();
    agent_t *a = boot(NULL);
    cmd(a, "config get");
    CHECK(fake_has_line(&fp, "mqtt.reconnect_timeout_min=2"));
    CHECK(fake_has_line(&fp, "mqtt.reconnect_timeout_max=0"));
    CHECK(fake_has_line(&fp, "mqtt.clean_session=true"));
    CHECK(fake_has_line(&fp, "mqtt.max_queue_length=5"));
    before("mqtt.enable=false\n", "mqtt.reconnect_timeout_min=2\n");
    cmd(a, "help");
    check_has("  mqtt.reconnect_timeout_min\n");
    check_has("reconnect");
    cmd(a, "config set mqtt.reconnect_timeout_max 1.2345");
    CHECK_STR(fake_last_line(&fp), "ERR mqtt.reconnect_timeout_max: expected seconds 0..3600 with at "
                                   "most 3 decimals (e.g. 2 or 0.5)");
    clear_out();
    cJSON *r = call(a, "{\"id\":1,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                       "{\"reconnect_timeout_min\":0.2,\"reconnect_timeout_max\":1.5,"
                       "\"clean_session\":false,\"max_queue_length\":16}}}}");
    CHECK(r && cJSON_GetObjectItemCaseSensitive(r, "result") != NULL);
    cJSON_Delete(r);
    CHECK_STR(settings_get(&a->settings, SK_MQTT_RECONNECT_TIMEOUT_MIN), "0.2");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_RECONNECT_TIMEOUT_MAX), "1.5");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_CLEAN_SESSION), "false");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_MAX_QUEUE_LENGTH), "16");
    clear_out();
    r = call(a, "{\"id\":2,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt\"}}");
    const cJSON *res = r ? cJSON_GetObjectItemCaseSensitive(r, "result") : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, "reconnect_timeout_min");
    CHECK(cJSON_IsNumber(v) && v->valuedouble > 0.1999 && v->valuedouble < 0.2001);
    v = cJSON_GetObjectItemCaseSensitive(res, "reconnect_timeout_max");
    CHECK(cJSON_IsNumber(v) && v->valuedouble == 1.5);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(res, "clean_session")));
    v = cJSON_GetObjectItemCaseSensitive(res, "max_queue_length");
    CHECK(cJSON_IsNumber(v) && v->valuedouble == 16);
    cJSON_Delete(r);
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"mqtt.reconnect_timeout_max\":1.2345}",
         "mqtt.reconnect_timeout_max: expected seconds 0..3600 with at most 3 decimals (e.g. 2 or 0.5)"},
        {"{\"mqtt.reconnect_timeout_max\":-1}",
         "mqtt.reconnect_timeout_max: expected seconds 0..3600 with at most 3 decimals (e.g. 2 or 0.5)"},
        {"{\"mqtt.reconnect_timeout_min\":0}",
         "mqtt.reconnect_timeout_min: expected seconds 0.001..3600 with at most 3 decimals (e.g. 2 or 0.5)"},
        {"{\"mqtt.reconnect_timeout_max\":1e300}",
         "mqtt.reconnect_timeout_max: expected seconds 0..3600 with at most 3 decimals (e.g. 2 or 0.5)"},
        {"{\"mqtt.max_queue_length\":17}", "mqtt.max_queue_length: expected a number 0..16"},
        {"{\"mqtt.max_queue_length\":1.5}", "mqtt.max_queue_length: expected a number 0..16"},
        {"{\"mqtt.max_queue_length\":true}", "mqtt.max_queue_length: expected a string or a number"},
        {"{\"mqtt.clean_session\":1}", "mqtt.clean_session: expected true or false"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[300];
        snprintf(req, sizeof(req), "{\"id\":3,\"method\":\"Config.Set\",\"params\":{\"config\":%s}}",
                 bad[i].json);
        clear_out();
        r = call(a, req);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "error"),
                                                          "message");
        CHECK(cJSON_IsString(m));
        if (cJSON_IsString(m)) CHECK_STR(m->valuestring, bad[i].err);
        cJSON_Delete(r);
    }
    CHECK_STR(settings_get(&a->settings, SK_MQTT_RECONNECT_TIMEOUT_MAX), "1.5"); /* unchanged */
    test_agent_drop(a);
    broker_stop();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    keep_alive();
    backoff_and_resubscribe();
    session_kept();
    boot_connect_retries();
    not_retried();
    offline_queue();
    queue_limits();
    subscription_bound();
    settings_rpc();
    TEST_DONE();
}
