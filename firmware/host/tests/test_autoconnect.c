/* test_autoconnect.c - operations no console command waits on:
 *
 *  (a) mqtt.enable: the setting (console and RPC, a JSON boolean), and the
 *      boot connect it turns on: the same log lines as `mqtt connect`, no
 *      final line; refusals end with "E ... mqtt.enable: <reason>"; it waits
 *      for the network; console lines typed meanwhile (a `mqtt connect`
 *      among them) are held and run after it, in order, each with its one
 *      final line;
 *  (b) RPC MQTT.Pub: answered {"queued": true} at once, Published:OK logged
 *      after the response (QoS 1: after the PUBACK); 400 / 503 errors; an RPC
 *      publish while a console publish waits for its PUBACK leaves that
 *      command's one final line alone; a PUBACK that never comes.
 *
 * A forked fake MQTT broker (plain TCP) answers per a script: a CONNACK it
 * holds back goes when the test writes a byte to its control pipe, PUBACKs
 * it holds back go once enough PUBLISHes came, so nothing here sleeps. Deadlines are reached by moving the
 * agent's clock (an offset on the monotonic clock). */
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_util.h"
#include "cJSON.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;
static uint64_t clock_offset_ms;
static int ctl[2] = {-1, -1}; /* test -> broker: "send what you hold back" */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t agent_clock_ms(void *ctx)
{
    (void)ctx;
    return mono_ms() + clock_offset_ms;
}

static void clear_out(void)
{
    fp.out_len = 0;
    fp.out[0] = '\0';
}

/* A fresh port; settings (server "" = none) saved in its storage as a
 * previous boot would have left them. */
static void make_port(const char *server, bool enable)
{
    settings_t s;
    char err[200];
    fake_port_make(&fp, &port);
    port.now_ms = agent_clock_ms;
    port.console_read = test_idle_console;
    fp.net_up = true;
    clock_offset_ms = 0;
    settings_init(&s);
    if (server[0]) CHECK_EQ_INT(settings_set(&s, SK_MQTT_SERVER, server, strlen(server), NULL, NULL, err, sizeof(err)), 0);
    if (enable) CHECK_EQ_INT(settings_set(&s, SK_MQTT_ENABLE, "true", 4, NULL, NULL, err, sizeof(err)), 0);
    CHECK(fake_store_settings(&fp, &s));
}

/* agent_step until the output contains needle (true) or 5 s passed (false) */
static bool run_until(agent_t *a, const char *needle)
{
    uint64_t end = mono_ms() + 5000;
    while (!fake_contains(&fp, needle)) {
        if (mono_ms() > end) {
            fprintf(stderr, "run_until: no '%s' in:\n%s", needle, fp.out);
            test_failures++;
            return false;
        }
        (void)agent_step(a, 10);
    }
    return true;
}

static bool before(const char *x, const char *y)
{
    const char *px = strstr(fp.out, x), *py = strstr(fp.out, y);
    if (!px || !py || px >= py) {
        fprintf(stderr, "expected '%s' before '%s' in:\n%s", x, y, fp.out);
        return false;
    }
    return true;
}

/* One RPC request frame (no CRC: optional); the response parsed (NULL: none). */
static cJSON *call(agent_t *a, const char *json)
{
    return test_rpc_call(a, &fp, json);
}

static void check_result(cJSON *r, const char *key, bool value)
{
    CHECK(r != NULL);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, key);
    CHECK(cJSON_IsBool(v) && cJSON_IsTrue(v) == value);
    cJSON_Delete(r);
}

static void check_error(cJSON *r, int code, const char *msg)
{
    CHECK(r != NULL);
    if (!r) return;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    CHECK(cJSON_IsNumber(c) && (int)c->valuedouble == code);
    CHECK(cJSON_IsString(m));
    if (cJSON_IsString(m)) CHECK_STR(m->valuestring, msg);
    cJSON_Delete(r);
}

/* ---- the fake broker ------------------------------------------------------------------ */

typedef struct {
    uint8_t connack_code; /* != 0: refused, then closed */
    bool hold_connack;    /* the first client's CONNACK waits for a control byte */
    int puback_after;     /* PUBACKs held until this many QoS 1 PUBLISHes came (0: at once) */
    bool no_pubacks;      /* never a PUBACK */
} script_t;

static void wait_ctl(void)
{
    uint8_t b;
    if (read(ctl[0], &b, 1) != 1) _exit(12);
}

/* One client until it closes; false when the broker should stop. */
static bool serve_client(int fd, const script_t *s, bool first)
{
    uint8_t buf[4096];
    uint8_t held[64][4];
    size_t nheld = 0;
    int seen = 0;
    for (;;) {
        int n = test_read_mqtt_packet(fd, buf, sizeof(buf));
        if (n < 0 || (buf[0] >> 4) == 14) return true; /* closed, DISCONNECT */
        size_t hl = 2;
        while (hl < 5 && (buf[hl - 1] & 128u)) hl++;
        if ((buf[0] >> 4) == 1) {
            const uint8_t connack[] = {0x20, 0x02, 0x00, s->connack_code};
            if (s->hold_connack && first) wait_ctl();
            test_send_all(fd, connack, sizeof(connack));
            if (s->connack_code != 0) return true;
        } else if ((buf[0] >> 4) == 3 && ((buf[0] >> 1) & 3u) == 1u && !s->no_pubacks) {
            size_t tl = ((size_t)buf[hl] << 8) | buf[hl + 1];
            uint8_t ack[4] = {0x40, 0x02, buf[hl + 2 + tl], buf[hl + 3 + tl]};
            if (nheld < 64) memcpy(held[nheld++], ack, 4);
            if (++seen >= s->puback_after) {
                for (size_t i = 0; i < nheld; i++) test_send_all(fd, held[i], 4);
                nheld = 0;
            }
        } else if ((buf[0] >> 4) == 12) {
            static const uint8_t pingresp[] = {0xd0, 0x00};
            test_send_all(fd, pingresp, sizeof(pingresp));
        }
    }
}

static int broker(int lfd, const script_t *s)
{
    alarm(30); /* never outlive a broken test */
    for (int i = 0; i < 3; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) return 10;
        bool go_on = serve_client(fd, s, i == 0);
        close(fd);
        if (!go_on) break;
    }
    return 0;
}

static pid_t start_broker(const script_t *s, char *server, size_t cap)
{
    uint16_t p = 0;
    int lfd = test_listen_loopback(&p, 4);
    CHECK(lfd >= 0);
    CHECK(pipe(ctl) == 0);
    pid_t pid = fork();
    if (pid == 0) _exit(broker(lfd, s));
    close(lfd);
    snprintf(server, cap, "127.0.0.1:%u", (unsigned)p);
    return pid;
}

static void release(void)
{
    CHECK_EQ_INT(write(ctl[1], "x", 1), 1);
}

static void reap(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
    close(ctl[0]);
    close(ctl[1]);
    ctl[0] = ctl[1] = -1;
}

/* A loopback port nobody listens on. */
static void closed_server(char *server, size_t cap)
{
    uint16_t p = 0;
    int lfd = test_listen_loopback(&p, 1);
    CHECK(lfd >= 0);
    close(lfd);
    snprintf(server, cap, "127.0.0.1:%u", (unsigned)p);
}

/* ---- (a) the setting ------------------------------------------------------------------ */

static void setting(void)
{
    make_port("", false);
    agent_t *a = test_agent_boot(&port);
    fake_cmd(a, &fp, "config get mqtt.enable");
    CHECK_STR(fp.out, "mqtt.enable=false\nOK\n");
    fake_cmd(a, &fp, "config set mqtt.enable yes");
    CHECK_STR(fp.out, "ERR mqtt.enable: expected true or false\n");
    fake_cmd(a, &fp, "config set mqtt.enable true");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.enable");
    CHECK_STR(fp.out, "mqtt.enable=true\nOK\n");
    fake_cmd(a, &fp, "config get");
    CHECK(fake_has_line(&fp, "mqtt.enable=true"));
    /* no server: the setting alone does not connect (nothing happens until boot) */
    CHECK(!fake_contains(&fp, "connecting"));

    /* RPC: a JSON boolean, shown as one */
    clear_out();
    check_result(call(a, "{\"id\":1,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":{\"enable\":false}}}}"),
                 "saved", false);
    clear_out();
    cJSON *r = call(a, "{\"id\":2,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt.enable\"}}");
    CHECK(r && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "result")));
    cJSON_Delete(r);
    clear_out();
    check_error(call(a, "{\"id\":3,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":{\"enable\":1}}}}"),
                400, "mqtt.enable: expected true or false");
    clear_out();
    check_error(call(a, "{\"id\":4,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":{\"enable\":\"yes\"}}}}"),
                400, "mqtt.enable: expected true or false");
    clear_out();
    check_result(call(a, "{\"id\":5,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt.enable\":true}}}"),
                 "saved", false);
    clear_out();
    r = call(a, "{\"id\":6,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt\"}}");
    CHECK(r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), "enable")));
    cJSON_Delete(r);
    /* Config.Save {"reboot": true}: saved, then the port's reboot */
    clear_out();
    check_result(call(a, "{\"id\":7,\"method\":\"Config.Save\",\"params\":{\"reboot\":true}}"), "saved", true);
    CHECK_EQ_INT(fp.reboots, 1);
    test_agent_drop(a);
    /* the next boot reads it back: enabled, but no server -> a W line, nothing opened */
    a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    clear_out();
    agent_boot(a);
    CHECK(fake_contains(&fp, " hil: mqtt.enable: mqtt.server is not set, not connecting\n"));
    CHECK(!fake_contains(&fp, "MQTT0"));
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK(!agent_console_busy(a));
    test_agent_drop(a);
}

/* ---- (a) the boot connect ------------------------------------------------------------- */

static void boot_connect_ok(void)
{
    const script_t s = {0};
    char server[40], line[80];
    pid_t pid = start_broker(&s, server, sizeof(server));
    make_port(server, true);
    agent_t *a = test_agent_boot(&port);
    snprintf(line, sizeof(line), " hil: MQTT0 connecting to %s\n", server);
    CHECK(before(" ready (mbedtls ", line));
    CHECK(fake_contains(&fp, " hil: MQTT0 no TLS: "));
    CHECK(agent_console_busy(a)); /* the console waits for it */
    CHECK(run_until(a, " hil: MQTT0 CONNACK 0\n"));
    CHECK(before(" hil: MQTT0 TCP connect ok (0)\n", " hil: MQTT0 CONNACK 0\n"));
    CHECK(fake_contains(&fp, " hil: MQTT0 handshake "));
    CHECK_EQ_INT(fake_final_lines(&fp), 0); /* nobody typed a command: no OK / ERR */
    CHECK(!fake_contains(&fp, "mqtt.enable:"));
    CHECK(!agent_console_busy(a));
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "mqtt=connected"));

    /* (b) MQTT.Pub on it: the answer at once, Published:OK after it */
    clear_out();
    cJSON *r = call(a, "{\"id\":1,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/rpc\",\"message\":\"hello rpc\",\"qos\":1}}");
    check_result(r, "queued", true);
    CHECK(fake_contains(&fp, " hil: rpc: MQTT.Pub id 1: ok\n"));
    CHECK(!fake_contains(&fp, "Published:OK"));
    CHECK(run_until(a, " hil: Published:OK topic:t/rpc msg:hello rpc\n"));
    CHECK(before("\"queued\":true", "Published:OK"));
    clear_out();
    check_result(call(a, "{\"id\":2,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/q0\",\"message\":\"zero\"}}"),
                 "queued", true);
    CHECK(!fake_contains(&fp, "Published:OK"));
    CHECK(run_until(a, " hil: Published:OK topic:t/q0 msg:zero\n"));
    CHECK(before("\"queued\":true", "Published:OK"));
    CHECK_EQ_INT(fake_final_lines(&fp), 0);

    /* bad params: 400, naming what */
    clear_out();
    check_error(call(a, "{\"id\":3,\"method\":\"MQTT.Pub\",\"params\":{\"message\":\"m\"}}"), 400,
                "params.topic: expected a string");
    check_error(call(a, "{\"id\":4,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\"}}"), 400,
                "params.message: expected a string");
    check_error(call(a, "{\"id\":5,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\",\"qos\":2}}"),
                400, "params.qos: expected 0 or 1");
    check_error(call(a, "{\"id\":6,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/#\",\"message\":\"m\"}}"),
                400, "params.topic: must be non-empty, without wildcards (+ #)");
    check_error(call(a, "{\"id\":7,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\",\"retain\":true}}"),
                400, "params.retain: not supported (false or omitted)");
    CHECK(!fake_contains(&fp, "Published"));

    /* not connected: 503 */
    fake_cmd(a, &fp, "mqtt disconnect");
    clear_out();
    check_error(call(a, "{\"id\":8,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\"}}"), 503,
                "MQTT not connected");
    CHECK(fake_contains(&fp, " hil: rpc: MQTT.Pub id 8: error 503: MQTT not connected\n"));
    test_agent_drop(a);
    reap(pid);
}

/* A `mqtt connect` (and more) typed while the boot connect waits for its CONNACK. */
static void console_during_boot_connect(void)
{
    const script_t s = {.hold_connack = true};
    char server[40];
    pid_t pid = start_broker(&s, server, sizeof(server));
    make_port(server, true);
    agent_t *a = test_agent_boot(&port);
    CHECK(run_until(a, " hil: MQTT0 TCP connect ok (0)\n"));
    test_feed(a, "@c1 mqtt connect\n@s1 status\n");
    for (int i = 0; i < 5; i++) (void)agent_step(a, 5);
    CHECK_EQ_INT(fake_final_lines(&fp), 0); /* held, in order, behind the boot connect */
    CHECK_EQ_INT(a->queue.count, 2);
    /* an RPC frame is answered meanwhile (not queued) */
    cJSON *r = call(a, "{\"id\":1,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt.enable\"}}");
    CHECK(r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "result")));
    cJSON_Delete(r);
    release();
    CHECK(run_until(a, "@s1 OK\n"));
    CHECK(before(" hil: MQTT0 CONNACK 0\n", " hil: MQTT0 closing the previous connection\n"));
    CHECK(before(" hil: MQTT0 closing the previous connection\n", "\n@c1 OK\n"));
    CHECK(before("\n@c1 OK\n", "\nmqtt=connected\n"));
    CHECK(before("\nmqtt=connected\n", "\n@s1 OK\n"));
    CHECK_EQ_INT(fake_final_lines(&fp), 2);
    test_agent_drop(a);
    reap(pid);
}

static void boot_connect_refused(void)
{
    const script_t s = {.connack_code = 5};
    char server[40];
    pid_t pid = start_broker(&s, server, sizeof(server));
    make_port(server, true);
    agent_t *a = test_agent_boot(&port);
    CHECK(run_until(a, " hil: mqtt.enable: mqtt connect: CONNACK 5 (not authorised)\n"));
    CHECK(before(" hil: MQTT0 CONNACK 5\n", "E ("));
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK(!agent_console_busy(a));
    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    test_agent_drop(a);
    reap(pid);

    /* nobody listening */
    closed_server(server, sizeof(server));
    make_port(server, true);
    a = test_agent_boot(&port);
    CHECK(run_until(a, " hil: mqtt.enable: mqtt connect: TCP connect failed ("));
    CHECK(before(" hil: MQTT0 TCP connect failed: ", " hil: mqtt.enable: mqtt connect: TCP connect failed ("));
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    test_agent_drop(a);

    /* settings a connect refuses: one E line, nothing opened */
    make_port(server, true);
    {
        char err[200];
        settings_t st;
        settings_init(&st);
        CHECK_EQ_INT(settings_deserialize(&st, fp.store, fp.store_len, err, sizeof(err)), 0);
        CHECK_EQ_INT(settings_set(&st, SK_MQTT_SSL_PSK_IDENTITY, "dev", 3, NULL, NULL, err, sizeof(err)), 0);
        CHECK(fake_store_settings(&fp, &st));
    }
    a = test_agent_boot(&port);
    CHECK(fake_contains(&fp, " hil: mqtt.enable: mqtt.ssl_psk_key: required when mqtt.ssl_psk_identity is set\n"));
    CHECK(!fake_contains(&fp, "MQTT0 connecting"));
    CHECK(!agent_console_busy(a));
    test_agent_drop(a);

    /* off (the default): no connect at boot */
    make_port(server, false);
    a = test_agent_boot(&port);
    for (int i = 0; i < 3; i++) (void)agent_step(a, 1);
    CHECK(!fake_contains(&fp, "MQTT0"));
    test_agent_drop(a);
}

/* A board: the network comes up after boot; the connect waits for it. */
static void boot_connect_waits_for_network(void)
{
    char server[40];
    closed_server(server, sizeof(server));
    make_port(server, true);
    fp.net_up = false;
    agent_t *a = test_agent_boot(&port);
    for (int i = 0; i < 5; i++) (void)agent_step(a, 1);
    CHECK(!fake_contains(&fp, "MQTT0"));
    CHECK(!agent_console_busy(a)); /* the console is free meanwhile */
    fake_cmd(a, &fp, "@v1 version");
    CHECK_STR(fake_last_line(&fp), "@v1 OK");
    fp.net_up = true;
    (void)agent_step(a, 1);
    CHECK(fake_contains(&fp, " hil: MQTT0 connecting to "));
    CHECK(run_until(a, " hil: mqtt.enable: mqtt connect: TCP connect failed ("));
    test_agent_drop(a);

    /* a command that connected before the network came up wins: no second connect */
    const script_t s = {0};
    pid_t pid = start_broker(&s, server, sizeof(server));
    make_port(server, true);
    fp.net_up = false;
    a = test_agent_boot(&port);
    fp.net_up = true;
    test_feed(a, "@c1 mqtt connect\n"); /* runs at once: nothing pending */
    CHECK(run_until(a, "@c1 OK\n"));
    for (int i = 0; i < 5; i++) (void)agent_step(a, 1);
    const char *first = strstr(fp.out, "MQTT0 connecting to");
    CHECK(first != NULL && strstr(first + 1, "MQTT0 connecting to") == NULL);
    CHECK(!a->boot_connect);
    test_agent_drop(a);
    reap(pid);
}

/* ---- (b) an RPC publish while a console publish waits for its PUBACK -------------------- */

static void rpc_publish_beside_console_publish(void)
{
    const script_t s = {.puback_after = 2}; /* the console's PUBACK comes after the RPC's PUBLISH */
    char server[40];
    pid_t pid = start_broker(&s, server, sizeof(server));
    make_port(server, false);
    agent_t *a = test_agent_boot(&port);
    fake_cmd(a, &fp, "mqtt connect");
    CHECK_STR(fake_last_line(&fp), "OK");
    clear_out();
    test_feed(a, "@p1 mqtt publish t/console hello 1\n");
    for (int i = 0; i < 3; i++) (void)agent_step(a, 2);
    CHECK(agent_is_pending(a));
    cJSON *r = call(a, "{\"id\":9,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t/rpc\",\"message\":\"beside\",\"qos\":1}}");
    check_result(r, "queued", true);
    CHECK(agent_is_pending(a)); /* the command still waits for its own PUBACK */
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK(run_until(a, "@p1 OK\n"));
    CHECK(run_until(a, " hil: Published:OK topic:t/rpc msg:beside\n"));
    CHECK(before(" hil: Published:OK topic:t/console msg:hello\n", "\n@p1 OK\n"));
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    test_agent_drop(a);
    reap(pid);
}

/* No PUBACK: the RPC publish's timeout is logged; no final line. Then the
 * slots run out while PUBACKs are missing: 503. */
static void rpc_publish_timeout(void)
{
    const script_t s = {.no_pubacks = true};
    char server[40];
    pid_t pid = start_broker(&s, server, sizeof(server));
    make_port(server, false);
    agent_t *a = test_agent_boot(&port);
    fake_cmd(a, &fp, "mqtt connect");
    CHECK_STR(fake_last_line(&fp), "OK");
    clear_out();
    for (int i = 0; i < AGENT_MQTT_BG_PUBS; i++) {
        check_result(call(a, "{\"id\":1,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\",\"qos\":1}}"),
                     "queued", true);
    }
    check_error(call(a, "{\"id\":2,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\",\"qos\":1}}"),
                503, "busy: 4 publishes in flight (max)");
    for (int i = 0; i < 3; i++) (void)agent_step(a, 2);
    CHECK(!fake_contains(&fp, "Published"));
    clock_offset_ms += AGENT_REPLY_TIMEOUT_MS + 1;
    CHECK(run_until(a, " hil: MQTT.Pub: mqtt publish: no PUBACK (timeout)\n"));
    for (int i = 0; i < 3; i++) (void)agent_step(a, 2);
    CHECK(before(" hil: MQTT0 no PUBACK for id ", " hil: MQTT.Pub: mqtt publish: no PUBACK (timeout)\n"));
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    /* the slots are free again; the session is still up */
    clear_out();
    check_result(call(a, "{\"id\":3,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\"}}"),
                 "queued", true);
    CHECK(run_until(a, " hil: Published:OK topic:t msg:m\n"));
    /* a connection that goes away fails what is in flight, logged */
    clear_out();
    check_result(call(a, "{\"id\":4,\"method\":\"MQTT.Pub\",\"params\":{\"topic\":\"t\",\"message\":\"m\",\"qos\":1}}"),
                 "queued", true);
    fake_cmd(a, &fp, "mqtt disconnect");
    CHECK(fake_contains(&fp, " hil: MQTT.Pub: mqtt publish: connection lost before PUBACK\n"));
    CHECK_EQ_INT(fake_final_lines(&fp), 1); /* the disconnect's OK only */
    test_agent_drop(a);
    reap(pid);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setting();
    boot_connect_ok();
    console_during_boot_connect();
    boot_connect_refused();
    boot_connect_waits_for_network();
    rpc_publish_beside_console_publish();
    rpc_publish_timeout();
    TEST_DONE();
}
