/* commands.c - the console commands (config, status, version, clock, help,
 * reboot, mqtt ..., http ..., tls keylog, wifi ...). console.c hands each
 * line here without its tag; every handler prints exactly one final line
 * with agent_final() (final.c), or starts a pending operation (mqtt.c,
 * wifi.c) whose final line comes later through the events table
 * (agent_command_events, final.c). The command layer: it calls the services
 * and the leaves, never console.c or agent.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"

typedef struct {
    const char *p;
    const char *end;
} cursor_t;

typedef struct {
    const char *s;
    size_t n;
} tok_t;

/* Tokens are separated by runs of spaces and tabs. */
static bool is_sep(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool next_tok(cursor_t *c, tok_t *t)
{
    while (c->p < c->end && is_sep(*c->p)) c->p++;
    t->s = c->p;
    while (c->p < c->end && !is_sep(*c->p)) c->p++;
    t->n = (size_t)(c->p - t->s);
    return t->n > 0;
}

/* The rest of the line after exactly one separator (space or tab): further
 * separators belong to the value ("config set <key> <value>"). */
static tok_t rest(cursor_t *c)
{
    tok_t t;
    if (c->p < c->end && is_sep(*c->p)) c->p++;
    t.s = c->p;
    t.n = (size_t)(c->end - c->p);
    c->p = c->end;
    return t;
}

static bool tok_is(const tok_t *t, const char *word)
{
    return t->n == strlen(word) && memcmp(t->s, word, t->n) == 0;
}

static int tok_copy(const tok_t *t, char *out, size_t cap)
{
    if (t->n + 1 > cap) return -1;
    memcpy(out, t->s, t->n);
    out[t->n] = '\0';
    return 0;
}

/* A word from the input shown in an ERR/log line: at most its first 40
 * bytes, non-printable bytes, backslash and quotes escaped (\xHH, \\). */
#define WORD_MAX_IN 40
#define WORD_BUF (4 * WORD_MAX_IN + 1)

static const char *word_text(const tok_t *t, char *buf)
{
    bool cut;
    (void)agent_escape_quoted((const uint8_t *)t->s, t->n, WORD_MAX_IN, buf, WORD_BUF, &cut);
    return buf;
}

/* WORD(tok): its escaped text, in a buffer that lives until the end of the
 * enclosing block (a compound literal), e.g. agent_final(a, "... '%s'", WORD(k)). */
#define WORD(t) word_text(&(t), (char[WORD_BUF]){0})

static void ok(agent_t *a)
{
    agent_final(a, "OK");
}

static void load_abort(agent_t *a)
{
    if (a->load.buf) {
        mbedtls_platform_zeroize(a->load.buf, a->load.total); /* may be a private key */
        free(a->load.buf);
    }
    memset(&a->load, 0, sizeof(a->load));
}

/* ---- config -------------------------------------------------------------- */

static int key_arg(agent_t *a, cursor_t *c, const char *cmd)
{
    tok_t k;
    if (!next_tok(c, &k)) {
        agent_final(a, "ERR %s: missing key", cmd);
        return -1;
    }
    int key = settings_find(k.s, k.n);
    if (key < 0) agent_final(a, "ERR unknown key '%s'", WORD(k));
    return key;
}

static void cmd_config_load(agent_t *a, cursor_t *c)
{
    tok_t tl, tc, extra;
    uint32_t total, crc;
    int key = key_arg(a, c, "config load");
    if (key < 0) return;
    if (!next_tok(c, &tl) || !next_tok(c, &tc) || next_tok(c, &extra)) {
        agent_final(a, "ERR config load: usage: config load <key> <total_len> <crc32hex8>");
        return;
    }
    size_t maxlen = settings_def((setting_key_t)key)->max_len;
    if (agent_parse_u32(tl.s, tl.n, SETTING_MAX_LEN, &total) != 0 || total == 0 || total > maxlen) {
        agent_final(a, "ERR config load: total_len must be 1..%zu for %s", maxlen,
                    settings_def((setting_key_t)key)->name);
        return;
    }
    if (agent_parse_hex32(tc.s, tc.n, &crc) != 0) {
        agent_final(a, "ERR config load: crc32 must be 8 hex digits");
        return;
    }
    load_abort(a);
    a->load.buf = malloc(total);
    if (!a->load.buf) {
        agent_final(a, "ERR config load: out of memory");
        return;
    }
    a->load.active = true;
    a->load.key = key;
    a->load.total = total;
    a->load.crc = crc;
    ok(a);
}

/* chunk: AGENT_CHUNK_MAX bytes for the decoded data, wiped by the caller */
static void config_data(agent_t *a, cursor_t *c, uint8_t *chunk)
{
    tok_t ts, tb, tc, extra;
    uint32_t seq, crc;
    size_t n;
    if (!next_tok(c, &ts) || !next_tok(c, &tb) || !next_tok(c, &tc) || next_tok(c, &extra)) {
        agent_final(a, "ERR config data: usage: config data <seq> <base64> <crc32hex8>");
        return;
    }
    if (agent_parse_u32(ts.s, ts.n, UINT32_MAX, &seq) != 0) {
        agent_final(a, "ERR config data: seq must be a decimal number");
        return;
    }
    if (!a->load.active) {
        agent_final(a, "ERR config data %" PRIu32 ": no config load in progress", seq);
        return;
    }
    if (seq != a->load.next_seq) {
        agent_final(a, "ERR config data %" PRIu32 ": seq out of order (expected %" PRIu32 ")", seq,
                    a->load.next_seq);
        return;
    }
    if (agent_base64_decode(tb.s, tb.n, chunk, AGENT_CHUNK_MAX, &n) != 0) {
        if (tb.n > (AGENT_CHUNK_MAX / 3) * 4) {
            agent_final(a, "ERR config data %" PRIu32 ": chunk too large (max %u decoded bytes)", seq,
                        (unsigned)AGENT_CHUNK_MAX);
        } else {
            agent_final(a, "ERR config data %" PRIu32 ": bad base64", seq);
        }
        return;
    }
    if (agent_parse_hex32(tc.s, tc.n, &crc) != 0) {
        agent_final(a, "ERR config data %" PRIu32 ": crc32 must be 8 hex digits", seq);
        return;
    }
    uint32_t got = agent_crc32(0, chunk, n);
    if (got != crc) {
        agent_final(a, "ERR config data %" PRIu32 ": crc mismatch (expected %08" PRIx32 " got %08" PRIx32 ")",
                    seq, crc, got);
        return;
    }
    if (n > a->load.total - a->load.got) {
        agent_final(a, "ERR config data %" PRIu32 ": overflow (%zu bytes > total_len %zu)", seq,
                    a->load.got + n, a->load.total);
        return;
    }
    memcpy(a->load.buf + a->load.got, chunk, n);
    a->load.got += n;
    a->load.next_seq++;
    ok(a);
}

static void cmd_config_data(agent_t *a, cursor_t *c)
{
    uint8_t chunk[AGENT_CHUNK_MAX]; /* a piece of a value that may be a private key */
    config_data(a, c, chunk);
    mbedtls_platform_zeroize(chunk, sizeof(chunk));
}

static void cmd_config_end(agent_t *a)
{
    char err[300];
    if (!a->load.active) {
        agent_final(a, "ERR config end: no config load in progress");
        return;
    }
    const char *name = settings_def((setting_key_t)a->load.key)->name;
    uint32_t got = agent_crc32(0, a->load.buf, a->load.got);
    if (a->load.got != a->load.total) {
        agent_final(a, "ERR length mismatch for %s: expected %zu got %zu", name, a->load.total,
                    a->load.got);
    } else if (got != a->load.crc) {
        agent_final(a, "ERR crc mismatch for %s: expected %08" PRIx32 " got %08" PRIx32, name,
                    a->load.crc, got);
    } else if (settings_set(&a->settings, (setting_key_t)a->load.key, (const char *)a->load.buf,
                            a->load.got, agent_rng, a, err, sizeof(err)) != 0) {
        agent_final(a, "ERR %s", err);
    } else {
        ok(a);
    }
    load_abort(a);
}

static void cmd_config_set(agent_t *a, cursor_t *c)
{
    char err[300];
    int key = key_arg(a, c, "config set");
    if (key < 0) return;
    tok_t v = rest(c);
    if (v.n == 0) {
        agent_final(a, "ERR config set: missing value for %s (use config clear %s)",
                    settings_def((setting_key_t)key)->name, settings_def((setting_key_t)key)->name);
        return;
    }
    if (settings_set(&a->settings, (setting_key_t)key, v.s, v.n, agent_rng, a, err, sizeof(err)) != 0) {
        agent_final(a, "ERR %s", err);
        return;
    }
    ok(a);
}

static void cmd_config_get(agent_t *a, cursor_t *c)
{
    tok_t k;
    char out[400];
    if (!next_tok(c, &k)) {
        for (int i = 0; i < SK_COUNT; i++) {
            settings_format_get(&a->settings, (setting_key_t)i, out, sizeof(out));
            agent_reply(a, "%s", out);
        }
        ok(a);
        return;
    }
    int key = settings_find(k.s, k.n);
    if (key < 0) {
        agent_final(a, "ERR unknown key '%s'", WORD(k));
        return;
    }
    settings_format_get(&a->settings, (setting_key_t)key, out, sizeof(out));
    agent_reply(a, "%s", out);
    ok(a);
}

static void cmd_config_clear(agent_t *a, cursor_t *c)
{
    tok_t k;
    if (!next_tok(c, &k)) {
        settings_free(&a->settings);
        ok(a);
        return;
    }
    int key = settings_find(k.s, k.n);
    if (key < 0) {
        agent_final(a, "ERR unknown key '%s'", WORD(k));
        return;
    }
    settings_clear(&a->settings, (setting_key_t)key);
    ok(a);
}

static void cmd_config_save(agent_t *a)
{
    char err[300];
    uint8_t *blob;
    size_t len;
    if (settings_serialize(&a->settings, &blob, &len) != 0) {
        agent_final(a, "ERR config save: out of memory");
        return;
    }
    int r = a->port.storage_save(a->port.ctx, blob, len, err, sizeof(err));
    mbedtls_platform_zeroize(blob, len);
    free(blob);
    if (r != 0) {
        agent_final(a, "ERR config save: %s", err);
        return;
    }
    ok(a);
}

static void cmd_config(agent_t *a, cursor_t *c)
{
    tok_t sub;
    if (!next_tok(c, &sub)) {
        agent_final(a, "ERR config: missing subcommand (set, get, clear, save, load, data, end)");
    } else if (tok_is(&sub, "set")) {
        cmd_config_set(a, c);
    } else if (tok_is(&sub, "get")) {
        cmd_config_get(a, c);
    } else if (tok_is(&sub, "clear")) {
        cmd_config_clear(a, c);
    } else if (tok_is(&sub, "save")) {
        cmd_config_save(a);
    } else if (tok_is(&sub, "load")) {
        cmd_config_load(a, c);
    } else if (tok_is(&sub, "data")) {
        cmd_config_data(a, c);
    } else if (tok_is(&sub, "end")) {
        cmd_config_end(a);
    } else {
        agent_final(a, "ERR config: unknown subcommand '%s'", WORD(sub));
    }
}

/* ---- mqtt ---------------------------------------------------------------- */

static int parse_qos(const tok_t *t, uint8_t *qos)
{
    if (t->n == 1 && (t->s[0] == '0' || t->s[0] == '1')) {
        *qos = (uint8_t)(t->s[0] - '0');
        return 0;
    }
    return -1;
}

/* connect, publish and subscribe answer from mqtt.c (pending until the
 * outcome is known); here only the ERR of a command that did not start */
static void cmd_mqtt_publish(agent_t *a, cursor_t *c)
{
    tok_t tt, tm, tq, extra;
    char topic[AGENT_LINE_MAX + 1], msg[AGENT_LINE_MAX + 1], err[400];
    uint8_t qos = 0;
    if (!next_tok(c, &tt) || !next_tok(c, &tm)) {
        agent_final(a, "ERR mqtt publish: usage: mqtt publish <topic> <message> [qos]");
        return;
    }
    if (next_tok(c, &tq) && parse_qos(&tq, &qos) != 0) {
        agent_final(a, "ERR mqtt publish: qos must be 0 or 1");
        return;
    }
    if (next_tok(c, &extra)) {
        agent_final(a, "ERR mqtt publish: too many arguments (the message is one token)");
        return;
    }
    (void)tok_copy(&tt, topic, sizeof(topic));
    (void)tok_copy(&tm, msg, sizeof(msg));
    if (agent_mqtt_publish(a, topic, msg, qos, err, sizeof(err)) != 0) agent_final(a, "ERR %s", err);
}

static void cmd_mqtt_subscribe(agent_t *a, cursor_t *c)
{
    tok_t tt, tq, extra;
    char topic[AGENT_LINE_MAX + 1], err[400];
    uint8_t qos = 0;
    if (!next_tok(c, &tt)) {
        agent_final(a, "ERR mqtt subscribe: usage: mqtt subscribe <topic> [qos]");
        return;
    }
    if (next_tok(c, &tq) && parse_qos(&tq, &qos) != 0) {
        agent_final(a, "ERR mqtt subscribe: qos must be 0 or 1");
        return;
    }
    if (next_tok(c, &extra)) {
        agent_final(a, "ERR mqtt subscribe: too many arguments");
        return;
    }
    (void)tok_copy(&tt, topic, sizeof(topic));
    if (agent_mqtt_subscribe(a, topic, qos, err, sizeof(err)) != 0) agent_final(a, "ERR %s", err);
}

static void cmd_mqtt(agent_t *a, cursor_t *c)
{
    tok_t sub;
    char err[400];
    if (!next_tok(c, &sub)) {
        agent_final(a, "ERR mqtt: missing subcommand (connect, publish, subscribe, disconnect)");
    } else if (tok_is(&sub, "connect")) {
        if (agent_mqtt_connect(a, err, sizeof(err)) != 0) agent_final(a, "ERR %s", err);
    } else if (tok_is(&sub, "publish")) {
        cmd_mqtt_publish(a, c);
    } else if (tok_is(&sub, "subscribe")) {
        cmd_mqtt_subscribe(a, c);
    } else if (tok_is(&sub, "disconnect")) {
        /* open, or reconnecting: now disconnected (no attempt follows, the
         * offline queue is dropped) */
        bool was = conn_is_busy(&a->mqtt.conn) || agent_mqtt_reconnecting(a);
        agent_mqtt_disconnect(a, true, "mqtt disconnect");
        if (was) agent_log(a, 'I', "MQTT0 disconnected");
        ok(a);
    } else {
        agent_final(a, "ERR mqtt: unknown subcommand '%s'", WORD(sub));
    }
}

/* ---- http ---------------------------------------------------------------- */

static void cmd_http(agent_t *a, cursor_t *c)
{
    tok_t sub, extra;
    char err[400];
    if (!next_tok(c, &sub)) {
        agent_final(a, "ERR http: missing subcommand (start, stop)");
        return;
    }
    if (next_tok(c, &extra)) {
        agent_final(a, "ERR http %s: too many arguments", WORD(sub));
        return;
    }
    if (tok_is(&sub, "start")) {
        if (agent_http_start(a, err, sizeof(err)) != 0) {
            agent_final(a, "ERR %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "stop")) {
        agent_http_stop(a, true);
        ok(a);
    } else {
        agent_final(a, "ERR http: unknown subcommand '%s'", WORD(sub));
    }
}

/* ---- tls ----------------------------------------------------------------- */

/* `tls keylog` was switched (keylog.c): the connections already being set up
 * follow (mbedTLS reads the callback when the handshake derives the keys). */
static void keylog_switched(agent_t *a)
{
    agent_tls_secret_t *sink = agent_keylog_sink(a);
    agent_mqtt_export_secrets(a, sink);
    agent_http_export_secrets(a, sink);
}

/* `tls keylog <64 hex digits>` / `tls keylog off` (keylog.c). The argument
 * is a secret: no reason here ever shows a word of this command (a key typed
 * in the subcommand's place would be echoed by "unknown subcommand '<word>'"). */
static void cmd_tls(agent_t *a, cursor_t *c)
{
    tok_t sub, arg, extra;
    char err[200];
    if (!next_tok(c, &sub)) {
        agent_final(a, "ERR tls: missing subcommand (tls keylog <64 hex digits> | tls keylog off)");
        return;
    }
    if (!tok_is(&sub, "keylog")) {
        agent_final(a, "ERR tls: unknown subcommand (tls keylog <64 hex digits> | tls keylog off)");
        return;
    }
    if (!next_tok(c, &arg)) {
        agent_final(a, "ERR tls keylog: usage: tls keylog <64 hex digits> | tls keylog off");
        return;
    }
    if (next_tok(c, &extra)) {
        agent_final(a, "ERR tls keylog: too many arguments (tls keylog <64 hex digits> | tls keylog off)");
        return;
    }
    if (tok_is(&arg, "off")) {
        agent_keylog_off(a);
        keylog_switched(a);
        ok(a);
        return;
    }
    int rc = agent_keylog_on(a, arg.s, arg.n, err, sizeof(err));
    keylog_switched(a); /* a refused key left export as it was */
    if (rc != 0) {
        agent_final(a, "ERR %s", err);
        return;
    }
    ok(a);
}

/* ---- wifi ---------------------------------------------------------------- */

/* `wifi connect`: the port's station with wifi.sta.ssid / wifi.sta.pass;
 * pending like `mqtt connect` (OK once the board has an IP address). */
static void cmd_wifi(agent_t *a, cursor_t *c)
{
    tok_t sub, extra;
    char err[200];
    if (!a->port.wifi_begin) {
        agent_final(a, "ERR wifi: this port has no Wi-Fi (virtual board)");
        return;
    }
    if (!next_tok(c, &sub)) {
        agent_final(a, "ERR wifi: missing subcommand (connect)");
        return;
    }
    if (!tok_is(&sub, "connect")) {
        agent_final(a, "ERR wifi: unknown subcommand '%s'", WORD(sub));
        return;
    }
    if (next_tok(c, &extra)) {
        agent_final(a, "ERR wifi connect: no arguments (it uses wifi.sta.ssid and wifi.sta.pass)");
        return;
    }
    if (agent_wifi_connect(a, err, sizeof(err)) != 0) agent_final(a, "ERR %s", err);
}

/* ---- clock --------------------------------------------------------------- */

/* Unix seconds: decimal digits only (no sign, space or other character; any
 * number of them, overflow checked), AGENT_CLOCK_MIN_S..AGENT_CLOCK_MAX_S.
 * 0, or -1 with the reason in err. */
static int parse_unix_seconds(const tok_t *t, int64_t *out, char *err, size_t errlen)
{
    int64_t v = 0;
    bool overflow = false;
    for (size_t i = 0; i < t->n; i++) {
        if (t->s[i] < '0' || t->s[i] > '9') {
            snprintf(err, errlen, "'%s' is not a number of seconds (decimal digits only, no sign)",
                     WORD(*t));
            return -1;
        }
    }
    for (size_t i = 0; i < t->n && !overflow; i++) {
        int digit = t->s[i] - '0';
        if (v > (INT64_MAX - digit) / 10) {
            overflow = true;
        } else {
            v = v * 10 + digit;
        }
    }
    if (t->n == 0 || overflow) {
        snprintf(err, errlen, "'%s' is out of range (%" PRId64 "..%" PRId64 ")", WORD(*t),
                 AGENT_CLOCK_MIN_S, AGENT_CLOCK_MAX_S);
        return -1;
    }
    if (v < AGENT_CLOCK_MIN_S) {
        snprintf(err, errlen, "%" PRId64 " is before 2000-01-01T00:00:00Z (%" PRId64 ")", v,
                 AGENT_CLOCK_MIN_S);
        return -1;
    }
    if (v > AGENT_CLOCK_MAX_S) {
        snprintf(err, errlen, "%" PRId64 " is after 2099-12-31T23:59:59Z (%" PRId64 ")", v,
                 AGENT_CLOCK_MAX_S);
        return -1;
    }
    *out = v;
    return 0;
}

/* `clock`: the board's time; `clock set <unix seconds>`: set it (the rig
 * does before every connect: certificate dates are checked against it). */
static void cmd_clock(agent_t *a, cursor_t *c)
{
    tok_t sub, arg, extra;
    char utc[32], err[200];
    if (!a->port.clock_get) {
        agent_final(a, "ERR clock: this port has no clock");
        return;
    }
    if (!next_tok(c, &sub)) {
        bool set;
        int64_t now = agent_clock(a, &set);
        agent_format_utc(now, utc, sizeof(utc));
        agent_reply(a, "clock=%" PRId64, now);
        agent_reply(a, "clock_utc=%s", utc);
        agent_reply(a, "clock_set=%s", set ? "yes" : "no");
        ok(a);
        return;
    }
    if (!tok_is(&sub, "set")) {
        agent_final(a, "ERR clock: unknown subcommand '%s' (clock, or clock set <unix seconds>)",
                    WORD(sub));
        return;
    }
    if (!next_tok(c, &arg) || next_tok(c, &extra)) {
        agent_final(a, "ERR clock set: usage: clock set <unix seconds>");
        return;
    }
    int64_t v;
    if (!a->port.clock_set) {
        agent_final(a, "ERR clock set: this port cannot set its clock");
        return;
    }
    if (parse_unix_seconds(&arg, &v, err, sizeof(err)) != 0) {
        agent_final(a, "ERR clock set: %s", err);
        return;
    }
    err[0] = '\0';
    if (a->port.clock_set(a->port.ctx, v, err, sizeof(err)) != 0) {
        err[sizeof(err) - 1] = '\0';
        agent_final(a, "ERR clock set: %s", err[0] ? err : "the port refused");
        return;
    }
    agent_format_utc(v, utc, sizeof(utc));
    agent_log(a, 'I', "clock set to %s (%" PRId64 ")", utc, v);
    ok(a);
}

/* ---- misc ---------------------------------------------------------------- */

static const char *tls_mode(const settings_t *s)
{
    if (settings_get(s, SK_MQTT_SSL_PSK_IDENTITY)) return "psk";
    if (settings_get(s, SK_MQTT_SSL_CA_CERT)) {
        return settings_get(s, SK_MQTT_SSL_CERT) ? "mutual" : "ca";
    }
    return "none";
}

static void cmd_status(agent_t *a)
{
    const char *server = settings_get(&a->settings, SK_MQTT_SERVER);
    bool connected = agent_mqtt_connected(a);
    const char *cs = connected ? conn_ciphersuite(&a->mqtt.conn) : NULL;
    agent_reply(a, "mqtt=%s", connected                  ? "connected"
                              : agent_mqtt_reconnecting(a) ? "reconnecting"
                                                           : "disconnected");
    agent_reply(a, "server=%s", connected ? a->mqtt.server : (server ? server : "<unset>"));
    agent_reply(a, "tls=%s", tls_mode(&a->settings));
    agent_reply(a, "ciphersuite=%s", cs ? cs : "none");
    agent_reply(a, "mqtt_queued=%zu", agent_mqtt_queued(a));
    if (a->port.wifi_status) { /* ports with Wi-Fi only */
        char wifi[160] = "";
        a->port.wifi_status(a->port.ctx, wifi, sizeof(wifi));
        wifi[sizeof(wifi) - 1] = '\0';
        agent_reply(a, "wifi=%s", wifi);
    }
    if (agent_http_running(a)) {
        agent_reply(a, "http=listening %s", a->http.bound);
    } else {
        agent_reply(a, "http=stopped");
    }
    agent_reply(a, "http_requests=%" PRIu32, a->http.requests);
    agent_reply(a, "keylog=%s", a->keylog.on ? "on" : "off");
    agent_reply(a, "uptime_ms=%" PRIu64, agent_now(a));
    if (a->port.free_heap) {
        agent_reply(a, "free_heap=%zu", a->port.free_heap(a->port.ctx));
    } else {
        agent_reply(a, "free_heap=n/a");
    }
    ok(a);
}

static void cmd_help(agent_t *a)
{
    static const char *const lines[] = {
        "help                                   this list",
        "version                                version=, mbedtls=, build=, bits=, variant= lines",
        "clock                                  clock=<unix s>, clock_utc=, clock_set=yes|no",
        "clock set <unix seconds>               set the board's clock (certificate dates are checked against it)",
        "status                                 mqtt=connected|reconnecting|disconnected, server=, tls=, ciphersuite=, mqtt_queued=, http=, http_requests=, keylog=, uptime_ms=, free_heap=",
        "reboot                                 OK, then restart",
        "config set <key> <value>               value = rest of the line",
        "config get [<key>]                     <key>=<value> (secrets masked); all keys without <key>",
        "config clear [<key>]                   one key, or all keys",
        "config save                            persist settings",
        "config load <key> <total_len> <crc32>  start a chunked upload",
        "config data <seq> <base64> <crc32>     one chunk (<= 96 decoded bytes)",
        "config end                             store the uploaded value if length and CRC match",
        "mqtt connect                           connect with the current settings (waits CONNACK)",
        "mqtt publish <topic> <message> [qos]   qos 0 or 1 (1 waits PUBACK; while reconnecting: OK queued <k> of <max>)",
        "mqtt subscribe <topic> [qos]           waits SUBACK (remembered for a reconnect)",
        "mqtt disconnect                        close the MQTT connection (ends reconnecting, drops the queue)",
        "reconnect: mqtt.reconnect_timeout_max > 0 (seconds; 0 = off, the default): a lost session is retried",
        "  after mqtt.reconnect_timeout_min, doubling up to max; QoS 1 publishes wait in a queue of",
        "  mqtt.max_queue_length (0..16); subscriptions are restored; mqtt.clean_session true|false",
        "wifi connect                           join wifi.sta.ssid (boards; waits for an IP address)",
        "http start                             (re)start the HTTPS server (http.listen_addr, http.ssl_*)",
        "http stop                              close the HTTPS server and its connections",
        "tls keylog <64 hex digits>             print each TLS session's secrets sealed with this key (keylog lines)",
        "tls keylog off                         stop that and forget the key",
        "tagged: @<tag> <command>               final line @<tag> OK / @<tag> ERR <reason> (tag: 1..24 of A-Z a-z 0-9 . _ -)",
        "while a command waits, later lines are queued and answered in order (full queue: ERR busy)",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) agent_reply(a, "%s", lines[i]);
    agent_reply(a, "keys:");
    for (int i = 0; i < SK_COUNT; i++) {
        const setting_def_t *d = settings_def((setting_key_t)i);
        agent_reply(a, "  %s%s", d->name, d->secret ? " (secret)" : "");
    }
    ok(a);
}

static void cmd_version(agent_t *a)
{
    agent_reply(a, "version=%s", AGENT_VERSION);
    agent_reply(a, "mbedtls=%s", agent_mbedtls_version());
    agent_reply(a, "build=%s", agent_build_id());
    agent_reply(a, "bits=%u", agent_bits());
    agent_reply(a, "variant=%s", agent_variant());
    ok(a);
}

static void cmd_reboot(agent_t *a)
{
    ok(a);
    agent_log(a, 'I', "rebooting");
    agent_mqtt_disconnect(a, true, "reboot");
    agent_keylog_off(a); /* never outlives the boot it was given in */
    keylog_switched(a);
    a->port.reboot(a->port.ctx);
    /* the port returned: reboot unsupported/failed */
    agent_log(a, 'E', "reboot failed");
}

/* A load in progress is aborted by any command but its own steps. */
static void abort_load_unless_step(agent_t *a, const cursor_t *c, const tok_t *cmd)
{
    cursor_t peek = *c;
    tok_t sub;
    bool is_load_step = tok_is(cmd, "config") && next_tok(&peek, &sub) &&
                        (tok_is(&sub, "data") || tok_is(&sub, "end"));
    if (a->load.active && !is_load_step) {
        agent_log(a, 'W', "config load of %s aborted by '%s' before config end",
                  settings_def((setting_key_t)a->load.key)->name, WORD(*cmd));
        load_abort(a);
    }
}

void agent_command(agent_t *a, const char *line, size_t len)
{
    cursor_t c = {line, line + len};
    tok_t cmd;
    if (!next_tok(&c, &cmd)) return; /* console.c never passes a blank line */
    abort_load_unless_step(a, &c, &cmd);
    if (tok_is(&cmd, "config")) {
        cmd_config(a, &c);
    } else if (tok_is(&cmd, "mqtt")) {
        cmd_mqtt(a, &c);
    } else if (tok_is(&cmd, "http")) {
        cmd_http(a, &c);
    } else if (tok_is(&cmd, "tls")) {
        cmd_tls(a, &c);
    } else if (tok_is(&cmd, "wifi")) {
        cmd_wifi(a, &c);
    } else if (tok_is(&cmd, "status")) {
        cmd_status(a);
    } else if (tok_is(&cmd, "clock")) {
        cmd_clock(a, &c);
    } else if (tok_is(&cmd, "version")) {
        cmd_version(a);
    } else if (tok_is(&cmd, "help")) {
        cmd_help(a);
    } else if (tok_is(&cmd, "reboot")) {
        cmd_reboot(a);
    } else {
        agent_final(a, "ERR unknown command '%s'", WORD(cmd));
    }
}
