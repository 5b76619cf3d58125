/* console.c - line assembly and the command interpreter.
 *
 * Contract: every command line gets zero or more data lines and exactly one
 * final "OK" or "ERR <reason>" line. Input is never echoed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_util.h"

typedef struct {
    const char *p;
    const char *end;
} cursor_t;

typedef struct {
    const char *s;
    size_t n;
} tok_t;

static bool next_tok(cursor_t *c, tok_t *t)
{
    while (c->p < c->end && *c->p == ' ') c->p++;
    t->s = c->p;
    while (c->p < c->end && *c->p != ' ') c->p++;
    t->n = (size_t)(c->p - t->s);
    return t->n > 0;
}

/* The rest of the line after exactly one separating space. */
static tok_t rest(cursor_t *c)
{
    tok_t t;
    if (c->p < c->end && *c->p == ' ') c->p++;
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

/* Shown in error messages: at most 40 characters of a user word. */
#define WORD_FMT "%.*s"
#define WORD_ARG(t) (int)((t).n > 40 ? 40 : (t).n), (t).s

static void ok(agent_t *a)
{
    agent_reply(a, "OK");
}

static void load_abort(agent_t *a)
{
    if (a->load.buf) {
        memset(a->load.buf, 0, a->load.total);
        free(a->load.buf);
    }
    memset(&a->load, 0, sizeof(a->load));
}

/* ---- config -------------------------------------------------------------- */

static int key_arg(agent_t *a, cursor_t *c, const char *cmd)
{
    tok_t k;
    if (!next_tok(c, &k)) {
        agent_reply(a, "ERR %s: missing key", cmd);
        return -1;
    }
    int key = settings_find(k.s, k.n);
    if (key < 0) agent_reply(a, "ERR unknown key '" WORD_FMT "'", WORD_ARG(k));
    return key;
}

static void cmd_config_load(agent_t *a, cursor_t *c)
{
    tok_t tl, tc, extra;
    uint32_t total, crc;
    int key = key_arg(a, c, "config load");
    if (key < 0) return;
    if (!next_tok(c, &tl) || !next_tok(c, &tc) || next_tok(c, &extra)) {
        agent_reply(a, "ERR config load: usage: config load <key> <total_len> <crc32hex8>");
        return;
    }
    size_t maxlen = settings_def((setting_key_t)key)->max_len;
    if (agent_parse_u32(tl.s, tl.n, SETTING_MAX_LEN, &total) != 0 || total == 0 || total > maxlen) {
        agent_reply(a, "ERR config load: total_len must be 1..%zu for %s", maxlen,
                    settings_def((setting_key_t)key)->name);
        return;
    }
    if (agent_parse_hex32(tc.s, tc.n, &crc) != 0) {
        agent_reply(a, "ERR config load: crc32 must be 8 hex digits");
        return;
    }
    load_abort(a);
    a->load.buf = malloc(total);
    if (!a->load.buf) {
        agent_reply(a, "ERR config load: out of memory");
        return;
    }
    a->load.active = true;
    a->load.key = key;
    a->load.total = total;
    a->load.crc = crc;
    ok(a);
}

static void cmd_config_data(agent_t *a, cursor_t *c)
{
    tok_t ts, tb, tc, extra;
    uint32_t seq, crc;
    uint8_t chunk[AGENT_CHUNK_MAX];
    size_t n;
    if (!next_tok(c, &ts) || !next_tok(c, &tb) || !next_tok(c, &tc) || next_tok(c, &extra)) {
        agent_reply(a, "ERR config data: usage: config data <seq> <base64> <crc32hex8>");
        return;
    }
    if (agent_parse_u32(ts.s, ts.n, UINT32_MAX, &seq) != 0) {
        agent_reply(a, "ERR config data: seq must be a decimal number");
        return;
    }
    if (!a->load.active) {
        agent_reply(a, "ERR config data %" PRIu32 ": no config load in progress", seq);
        return;
    }
    if (seq != a->load.next_seq) {
        agent_reply(a, "ERR config data %" PRIu32 ": seq out of order (expected %" PRIu32 ")", seq,
                    a->load.next_seq);
        return;
    }
    if (agent_base64_decode(tb.s, tb.n, chunk, sizeof(chunk), &n) != 0) {
        if (tb.n > (AGENT_CHUNK_MAX / 3) * 4) {
            agent_reply(a, "ERR config data %" PRIu32 ": chunk too large (max %u decoded bytes)", seq,
                        (unsigned)AGENT_CHUNK_MAX);
        } else {
            agent_reply(a, "ERR config data %" PRIu32 ": bad base64", seq);
        }
        return;
    }
    if (agent_parse_hex32(tc.s, tc.n, &crc) != 0) {
        agent_reply(a, "ERR config data %" PRIu32 ": crc32 must be 8 hex digits", seq);
        return;
    }
    uint32_t got = agent_crc32(0, chunk, n);
    if (got != crc) {
        agent_reply(a, "ERR config data %" PRIu32 ": crc mismatch (expected %08" PRIx32 " got %08" PRIx32 ")",
                    seq, crc, got);
        return;
    }
    if (n > a->load.total - a->load.got) {
        agent_reply(a, "ERR config data %" PRIu32 ": overflow (%zu bytes > total_len %zu)", seq,
                    a->load.got + n, a->load.total);
        return;
    }
    memcpy(a->load.buf + a->load.got, chunk, n);
    a->load.got += n;
    a->load.next_seq++;
    ok(a);
}

static void cmd_config_end(agent_t *a)
{
    char err[300];
    if (!a->load.active) {
        agent_reply(a, "ERR config end: no config load in progress");
        return;
    }
    const char *name = settings_def((setting_key_t)a->load.key)->name;
    uint32_t got = agent_crc32(0, a->load.buf, a->load.got);
    if (a->load.got != a->load.total) {
        agent_reply(a, "ERR length mismatch for %s: expected %zu got %zu", name, a->load.total,
                    a->load.got);
    } else if (got != a->load.crc) {
        agent_reply(a, "ERR crc mismatch for %s: expected %08" PRIx32 " got %08" PRIx32, name,
                    a->load.crc, got);
    } else if (settings_set(&a->settings, (setting_key_t)a->load.key, (const char *)a->load.buf,
                            a->load.got, agent_rng, a, err, sizeof(err)) != 0) {
        agent_reply(a, "ERR %s", err);
    } else {
        ok(a);
    }
    load_abort(a);
}

static void cmd_config(agent_t *a, cursor_t *c)
{
    tok_t sub;
    char err[300];
    if (!next_tok(c, &sub)) {
        agent_reply(a, "ERR config: missing subcommand (set, get, clear, save, load, data, end)");
        return;
    }
    if (tok_is(&sub, "set")) {
        int key = key_arg(a, c, "config set");
        if (key < 0) return;
        tok_t v = rest(c);
        if (v.n == 0) {
            agent_reply(a, "ERR config set: missing value for %s (use config clear %s)",
                        settings_def((setting_key_t)key)->name, settings_def((setting_key_t)key)->name);
            return;
        }
        if (settings_set(&a->settings, (setting_key_t)key, v.s, v.n, agent_rng, a, err, sizeof(err)) != 0) {
            agent_reply(a, "ERR %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "get")) {
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
            agent_reply(a, "ERR unknown key '" WORD_FMT "'", WORD_ARG(k));
            return;
        }
        settings_format_get(&a->settings, (setting_key_t)key, out, sizeof(out));
        agent_reply(a, "%s", out);
        ok(a);
    } else if (tok_is(&sub, "clear")) {
        tok_t k;
        if (!next_tok(c, &k)) {
            settings_free(&a->settings);
            ok(a);
            return;
        }
        int key = settings_find(k.s, k.n);
        if (key < 0) {
            agent_reply(a, "ERR unknown key '" WORD_FMT "'", WORD_ARG(k));
            return;
        }
        settings_clear(&a->settings, (setting_key_t)key);
        ok(a);
    } else if (tok_is(&sub, "save")) {
        uint8_t *blob;
        size_t len;
        if (settings_serialize(&a->settings, &blob, &len) != 0) {
            agent_reply(a, "ERR config save: out of memory");
            return;
        }
        int r = a->port.storage_save(a->port.ctx, blob, len, err, sizeof(err));
        memset(blob, 0, len);
        free(blob);
        if (r != 0) {
            agent_reply(a, "ERR config save: %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "load")) {
        cmd_config_load(a, c);
    } else if (tok_is(&sub, "data")) {
        cmd_config_data(a, c);
    } else if (tok_is(&sub, "end")) {
        cmd_config_end(a);
    } else {
        agent_reply(a, "ERR config: unknown subcommand '" WORD_FMT "'", WORD_ARG(sub));
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

static void cmd_mqtt(agent_t *a, cursor_t *c)
{
    tok_t sub, extra;
    char err[400];
    if (!next_tok(c, &sub)) {
        agent_reply(a, "ERR mqtt: missing subcommand (connect, publish, subscribe, disconnect)");
        return;
    }
    if (tok_is(&sub, "connect")) {
        if (agent_mqtt_connect(a, err, sizeof(err)) != 0) {
            agent_reply(a, "ERR %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "publish")) {
        tok_t tt, tm, tq;
        char topic[AGENT_LINE_MAX + 1], msg[AGENT_LINE_MAX + 1];
        uint8_t qos = 0;
        if (!next_tok(c, &tt) || !next_tok(c, &tm)) {
            agent_reply(a, "ERR mqtt publish: usage: mqtt publish <topic> <message> [qos]");
            return;
        }
        if (next_tok(c, &tq) && parse_qos(&tq, &qos) != 0) {
            agent_reply(a, "ERR mqtt publish: qos must be 0 or 1");
            return;
        }
        if (next_tok(c, &extra)) {
            agent_reply(a, "ERR mqtt publish: too many arguments (the message is one token)");
            return;
        }
        (void)tok_copy(&tt, topic, sizeof(topic));
        (void)tok_copy(&tm, msg, sizeof(msg));
        if (agent_mqtt_publish(a, topic, msg, qos, err, sizeof(err)) != 0) {
            agent_reply(a, "ERR %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "subscribe")) {
        tok_t tt, tq;
        char topic[AGENT_LINE_MAX + 1];
        uint8_t qos = 0;
        if (!next_tok(c, &tt)) {
            agent_reply(a, "ERR mqtt subscribe: usage: mqtt subscribe <topic> [qos]");
            return;
        }
        if (next_tok(c, &tq) && parse_qos(&tq, &qos) != 0) {
            agent_reply(a, "ERR mqtt subscribe: qos must be 0 or 1");
            return;
        }
        if (next_tok(c, &extra)) {
            agent_reply(a, "ERR mqtt subscribe: too many arguments");
            return;
        }
        (void)tok_copy(&tt, topic, sizeof(topic));
        if (agent_mqtt_subscribe(a, topic, qos, err, sizeof(err)) != 0) {
            agent_reply(a, "ERR %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "disconnect")) {
        if (conn_is_open(&a->mqtt.conn)) {
            agent_mqtt_disconnect(a, true);
            agent_log(a, 'I', "MQTT0 disconnected");
        }
        ok(a);
    } else {
        agent_reply(a, "ERR mqtt: unknown subcommand '" WORD_FMT "'", WORD_ARG(sub));
    }
}

/* ---- http ---------------------------------------------------------------- */

static void cmd_http(agent_t *a, cursor_t *c)
{
    tok_t sub, extra;
    char err[400];
    if (!next_tok(c, &sub)) {
        agent_reply(a, "ERR http: missing subcommand (start, stop)");
        return;
    }
    if (next_tok(c, &extra)) {
        agent_reply(a, "ERR http " WORD_FMT ": too many arguments", WORD_ARG(sub));
        return;
    }
    if (tok_is(&sub, "start")) {
        if (agent_http_start(a, err, sizeof(err)) != 0) {
            agent_reply(a, "ERR %s", err);
            return;
        }
        ok(a);
    } else if (tok_is(&sub, "stop")) {
        agent_http_stop(a, true);
        ok(a);
    } else {
        agent_reply(a, "ERR http: unknown subcommand '" WORD_FMT "'", WORD_ARG(sub));
    }
}

/* ---- wifi ---------------------------------------------------------------- */

/* `wifi connect`: the port's station with wifi.sta.ssid / wifi.sta.pass;
 * synchronous like `mqtt connect` (OK once the board has an IP address). */
static void cmd_wifi(agent_t *a, cursor_t *c)
{
    tok_t sub, extra;
    char err[200];
    if (!a->port.wifi_connect) {
        agent_reply(a, "ERR wifi: this port has no Wi-Fi (virtual board)");
        return;
    }
    if (!next_tok(c, &sub)) {
        agent_reply(a, "ERR wifi: missing subcommand (connect)");
        return;
    }
    if (!tok_is(&sub, "connect")) {
        agent_reply(a, "ERR wifi: unknown subcommand '" WORD_FMT "'", WORD_ARG(sub));
        return;
    }
    if (next_tok(c, &extra)) {
        agent_reply(a, "ERR wifi connect: no arguments (it uses wifi.sta.ssid and wifi.sta.pass)");
        return;
    }
    const char *ssid = settings_get(&a->settings, SK_WIFI_STA_SSID);
    const char *pass = settings_get(&a->settings, SK_WIFI_STA_PASS);
    if (!ssid) {
        agent_reply(a, "ERR wifi connect: wifi.sta.ssid is not set");
        return;
    }
    agent_log(a, 'I', "WiFi STA connecting to %s", ssid);
    err[0] = '\0';
    int r = a->port.wifi_connect(a->port.ctx, ssid, pass ? pass : "", AGENT_WIFI_TIMEOUT_MS, err,
                                 sizeof(err));
    err[sizeof(err) - 1] = '\0';
    agent_port_events(a); /* the port's IP / disconnect lines come before the final line */
    if (r != 0) {
        agent_reply(a, "ERR wifi connect: %s", err[0] ? err : "failed");
        return;
    }
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
    const char *cs = a->mqtt.connected ? conn_ciphersuite(&a->mqtt.conn) : NULL;
    agent_reply(a, "mqtt=%s", a->mqtt.connected ? "connected" : "disconnected");
    agent_reply(a, "server=%s", a->mqtt.connected ? a->mqtt.server : (server ? server : "<unset>"));
    agent_reply(a, "tls=%s", tls_mode(&a->settings));
    agent_reply(a, "ciphersuite=%s", cs ? cs : "none");
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
    agent_reply(a, "uptime_ms=%" PRIu64, a->port.now_ms(a->port.ctx));
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
        "version                                version=, mbedtls=, build= lines",
        "status                                 mqtt=, server=, tls=, ciphersuite=, http=, http_requests=, uptime_ms=, free_heap=",
        "reboot                                 OK, then restart",
        "config set <key> <value>               value = rest of the line",
        "config get [<key>]                     <key>=<value> (secrets masked); all keys without <key>",
        "config clear [<key>]                   one key, or all keys",
        "config save                            persist settings",
        "config load <key> <total_len> <crc32>  start a chunked upload",
        "config data <seq> <base64> <crc32>     one chunk (<= 96 decoded bytes)",
        "config end                             store the uploaded value if length and CRC match",
        "mqtt connect                           connect with the current settings (waits CONNACK)",
        "mqtt publish <topic> <message> [qos]   qos 0 or 1 (1 waits PUBACK)",
        "mqtt subscribe <topic> [qos]           waits SUBACK",
        "mqtt disconnect                        close the MQTT connection",
        "wifi connect                           join wifi.sta.ssid (boards; waits for an IP address)",
        "http start                             (re)start the HTTPS server (http.listen_addr, http.ssl_*)",
        "http stop                              close the HTTPS server and its connections",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) agent_reply(a, "%s", lines[i]);
    agent_reply(a, "keys:");
    for (int i = 0; i < SK_COUNT; i++) {
        const setting_def_t *d = settings_def((setting_key_t)i);
        agent_reply(a, "  %s%s", d->name, d->secret ? " (secret)" : "");
    }
    ok(a);
}

void agent_handle_line(agent_t *a, char *line, size_t len)
{
    cursor_t c = {line, line + len};
    cursor_t peek;
    tok_t cmd, sub;
    if (memchr(line, '\0', len)) {
        agent_reply(a, "ERR line contains a NUL byte");
        return;
    }
    if (!next_tok(&c, &cmd)) return; /* empty line: no reply */

    peek = c;
    bool is_load_step = tok_is(&cmd, "config") && next_tok(&peek, &sub) &&
                        (tok_is(&sub, "data") || tok_is(&sub, "end"));
    if (a->load.active && !is_load_step) {
        agent_log(a, 'W', "config load of %s aborted by '" WORD_FMT "' before config end",
                  settings_def((setting_key_t)a->load.key)->name, WORD_ARG(cmd));
        load_abort(a);
    }

    if (tok_is(&cmd, "config")) {
        cmd_config(a, &c);
    } else if (tok_is(&cmd, "mqtt")) {
        cmd_mqtt(a, &c);
    } else if (tok_is(&cmd, "http")) {
        cmd_http(a, &c);
    } else if (tok_is(&cmd, "wifi")) {
        cmd_wifi(a, &c);
    } else if (tok_is(&cmd, "status")) {
        cmd_status(a);
    } else if (tok_is(&cmd, "version")) {
        agent_reply(a, "version=%s", AGENT_VERSION);
        agent_reply(a, "mbedtls=%s", AGENT_MBEDTLS_VERSION_STRING);
        agent_reply(a, "build=%s", AGENT_BUILD_ID);
        ok(a);
    } else if (tok_is(&cmd, "help")) {
        cmd_help(a);
    } else if (tok_is(&cmd, "reboot")) {
        ok(a);
        agent_log(a, 'I', "rebooting");
        agent_mqtt_disconnect(a, true);
        a->port.reboot(a->port.ctx);
        /* the port returned: reboot unsupported/failed */
        agent_log(a, 'E', "reboot failed");
    } else {
        agent_reply(a, "ERR unknown command '" WORD_FMT "'", WORD_ARG(cmd));
    }
}

void agent_console_feed(agent_t *a, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = (char)data[i];
        if (ch == '\n') {
            if (a->line_len > 0 && a->line[a->line_len - 1] == '\r') a->line_len--;
            if (a->line_overflow || a->line_len > AGENT_LINE_MAX) {
                agent_reply(a, "ERR line too long (max %u)", (unsigned)AGENT_LINE_MAX);
            } else {
                a->line[a->line_len] = '\0';
                agent_handle_line(a, a->line, a->line_len);
            }
            a->line_len = 0;
            a->line_overflow = false;
            if (a->stop) return;
        } else if (!a->line_overflow) {
            if (a->line_len < AGENT_LINE_MAX + 1) {
                a->line[a->line_len++] = ch;
            } else {
                a->line_overflow = true;
            }
        }
    }
}
