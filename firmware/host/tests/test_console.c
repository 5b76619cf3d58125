/* test_console.c - the console contract: commands, OK/ERR, chunked load,
 * masking, persistence, line limits. Uses the in-memory fake port. */
#include <stdlib.h>

#include "agent_util.h"
#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;

static void b64(const uint8_t *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = al[(v >> 18) & 63];
        out[o++] = al[(v >> 12) & 63];
        out[o++] = i + 1 < n ? al[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? al[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Upload value with the chunk protocol; returns the last line of "config end". */
static const char *upload(agent_t *a, const char *key, const char *value, uint32_t crc_override)
{
    char line[600], enc[200];
    size_t len = strlen(value);
    uint32_t crc = crc_override ? crc_override : agent_crc32(0, (const uint8_t *)value, len);
    snprintf(line, sizeof(line), "config load %s %zu %08lx", key, len, (unsigned long)crc);
    fake_cmd(a, &fp, line);
    CHECK_STR(fake_last_line(&fp), "OK");
    uint32_t seq = 0;
    for (size_t off = 0; off < len; off += 96, seq++) {
        size_t n = len - off < 96 ? len - off : 96;
        b64((const uint8_t *)value + off, n, enc);
        snprintf(line, sizeof(line), "config data %lu %s %08lx", (unsigned long)seq, enc,
                 (unsigned long)agent_crc32(0, (const uint8_t *)value + off, n));
        fake_cmd(a, &fp, line);
        CHECK_STR(fake_last_line(&fp), "OK");
    }
    fake_cmd(a, &fp, "config end");
    return fake_last_line(&fp);
}

static void test_basics(void)
{
    agent_t *a = test_agent_boot(&port);
    CHECK(strstr(fp.out, "hil: hil-agent 1.0.0 ready (mbedtls ") != NULL);
    CHECK(fp.out[0] == 'I' && fp.out[1] == ' ' && fp.out[2] == '(');

    fake_cmd(a, &fp, "version");
    CHECK(fake_has_line(&fp, "version=1.0.0"));
    CHECK(fake_contains(&fp, "mbedtls=2.") || fake_contains(&fp, "mbedtls=3."));
    CHECK(fake_contains(&fp, "\nbuild="));
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK_EQ_INT(fake_final_lines(&fp), 1);

    fake_cmd(a, &fp, "frobnicate now");
    CHECK_STR(fake_last_line(&fp), "ERR unknown command 'frobnicate'");
    fake_cmd(a, &fp, "");
    CHECK_EQ_INT(fp.out_len, 0);
    fake_cmd(a, &fp, "help");
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK(fake_contains(&fp, "mqtt.ssl_psk_key (secret)"));

    fake_cmd(a, &fp, "status\r");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    CHECK(fake_has_line(&fp, "server=<unset>"));
    CHECK(fake_has_line(&fp, "ciphersuite=none"));
    CHECK(fake_has_line(&fp, "free_heap=n/a"));
    CHECK(fake_contains(&fp, "uptime_ms="));
    CHECK_STR(fake_last_line(&fp), "OK");

    /* over-long line: discarded up to its newline, one ERR, next line fine */
    char big[700];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fake_cmd(a, &fp, big);
    CHECK_STR(fp.out, "ERR line too long (max 512)\n");
    /* exactly 512 bytes is accepted (and here: unknown command) */
    big[512] = '\0';
    fake_cmd(a, &fp, big);
    CHECK(strncmp(fp.out, "ERR unknown command", 19) == 0);
    big[512] = 'x';
    big[513] = '\0';
    fake_cmd(a, &fp, big);
    CHECK_STR(fp.out, "ERR line too long (max 512)\n");

    /* two commands in one chunk of input */
    fp.out_len = 0;
    agent_console_feed(a, (const uint8_t *)"version\r\nstatus\n", 16);
    CHECK_EQ_INT(fake_final_lines(&fp), 2);
    test_agent_drop(a);
}

static void test_config(void)
{
    agent_t *a = test_agent_boot(&port);
    fake_cmd(a, &fp, "config set mqtt.ssl_psk_key 00");
    CHECK_STR(fp.out, "ERR mqtt.ssl_psk_key: expected 32 or 64 hex digits (16 or 32 bytes), got 2\n");
    fake_cmd(a, &fp, "config set mqtt.ssl_psk_key 000000000000000000000000deadbeef");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.ssl_psk_key");
    CHECK_STR(fp.out, "mqtt.ssl_psk_key=<set, 16 bytes>\nOK\n");
    CHECK(!fake_contains(&fp, "deadbeef"));
    fake_cmd(a, &fp, "config set mqtt.bogus 1");
    CHECK_STR(fp.out, "ERR unknown key 'mqtt.bogus'\n");
    fake_cmd(a, &fp, "config get mqtt.bogus");
    CHECK_STR(fp.out, "ERR unknown key 'mqtt.bogus'\n");
    fake_cmd(a, &fp, "config set mqtt.server");
    CHECK(strncmp(fp.out, "ERR config set: missing value for mqtt.server", 45) == 0);
    fake_cmd(a, &fp, "config set mqtt.server [::1]:8883");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=[::1]:8883\nOK\n");
    fake_cmd(a, &fp, "config set mqtt.ssl_cipher_suites TLS-PSK-WITH-AES-128-CCM-8:NOPE");
    CHECK_STR(fp.out, "ERR mqtt.ssl_cipher_suites: unknown cipher suite 'NOPE'\n");
    fake_cmd(a, &fp, "config set mqtt.user bob smith");
    fake_cmd(a, &fp, "config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user=bob smith\nOK\n");
    fake_cmd(a, &fp, "config get");
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    CHECK(fake_has_line(&fp, "wifi.sta.pass=<unset>"));
    fake_cmd(a, &fp, "config clear mqtt.user");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user=<unset>\nOK\n");

    /* PSK without a suite list: refused at connect, names the key */
    fake_cmd(a, &fp, "config set mqtt.ssl_psk_identity bob");
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(strncmp(fp.out, "ERR mqtt.ssl_cipher_suites: required for PSK", 44) == 0);
    fake_cmd(a, &fp, "config set mqtt.ssl_cipher_suites TLS-PSK-WITH-AES-128-CCM-8");
    fake_cmd(a, &fp, "mqtt connect");
    CHECK_STR(fp.out, "ERR mqtt connect: network down\n");
    fake_cmd(a, &fp, "mqtt publish t m");
    CHECK_STR(fp.out, "ERR mqtt publish: not connected\n");
    fake_cmd(a, &fp, "mqtt publish t m 2");
    CHECK_STR(fp.out, "ERR mqtt publish: qos must be 0 or 1\n");
    fake_cmd(a, &fp, "mqtt publish t");
    CHECK(strncmp(fp.out, "ERR mqtt publish: usage", 23) == 0);
    fake_cmd(a, &fp, "mqtt disconnect");
    CHECK_STR(fp.out, "OK\n");

    /* save, reboot (re-init from storage) */
    fake_cmd(a, &fp, "config save");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "reboot");
    CHECK(strncmp(fp.out, "OK\n", 3) == 0);
    CHECK_EQ_INT(fp.reboots, 1);
    test_agent_drop(a);
    a = test_agent_boot(&port);
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=[::1]:8883\nOK\n");
    fake_cmd(a, &fp, "config clear");
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=<unset>\nOK\n");
    test_agent_drop(a);

    /* corrupt storage: W line at boot, defaults, still works */
    fp.store[5] ^= 1;
    fp.out_len = 0;
    a = test_agent_boot(&port);
    CHECK(strncmp(fp.out, "W (", 3) == 0);
    CHECK(fake_contains(&fp, "saved settings ignored"));
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=<unset>\nOK\n");
    test_agent_drop(a);
    fp.has_store = false;
}

static void test_chunked(void)
{
    agent_t *a = test_agent_boot(&port);
    char line[300];
    CHECK_STR(upload(a, "mqtt.ssl_ca_cert", test_cert_pem, 0), "OK");
    fake_cmd(a, &fp, "config get mqtt.ssl_ca_cert");
    snprintf(line, sizeof(line), "mqtt.ssl_ca_cert=<pem %zu bytes crc32 %08lx>", strlen(test_cert_pem),
             (unsigned long)agent_crc32(0, (const uint8_t *)test_cert_pem, strlen(test_cert_pem)));
    CHECK(fake_has_line(&fp, line));

    CHECK_STR(upload(a, "mqtt.ssl_key", test_key_pem, 0), "OK");
    fake_cmd(a, &fp, "config get mqtt.ssl_key");
    snprintf(line, sizeof(line), "mqtt.ssl_key=<set, %zu bytes>", strlen(test_key_pem));
    CHECK(fake_has_line(&fp, line));

    /* wrong total CRC: not stored */
    fake_cmd(a, &fp, "config clear mqtt.ssl_cert");
    const char *r = upload(a, "mqtt.ssl_cert", test_cert_pem, 0xdeadbeef);
    CHECK(strncmp(r, "ERR crc mismatch for mqtt.ssl_cert: expected deadbeef got ", 58) == 0);
    fake_cmd(a, &fp, "config get mqtt.ssl_cert");
    CHECK_STR(fp.out, "mqtt.ssl_cert=<unset>\nOK\n");

    /* a non-PEM value with correct CRC is refused at end */
    r = upload(a, "mqtt.ssl_cert", "just some text", 0);
    CHECK(strncmp(r, "ERR mqtt.ssl_cert: not PEM", 26) == 0);

    /* per-chunk errors name the seq; the load stays open for a retry */
    fake_cmd(a, &fp, "config load mqtt.pass 5 3610a686"); /* crc32("hello") */
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config data 1 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "ERR config data 1: seq out of order (expected 0)\n");
    fake_cmd(a, &fp, "config data 0 aGVsbG8 3610a686");
    CHECK_STR(fp.out, "ERR config data 0: bad base64\n");
    fake_cmd(a, &fp, "config data 0 aGVsbG8= 00000000");
    CHECK_STR(fp.out, "ERR config data 0: crc mismatch (expected 00000000 got 3610a686)\n");
    fake_cmd(a, &fp, "config data 0 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config data 1 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "ERR config data 1: overflow (10 bytes > total_len 5)\n");
    fake_cmd(a, &fp, "config end");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.pass");
    CHECK_STR(fp.out, "mqtt.pass=<set, 5 bytes>\nOK\n");

    /* short upload: length mismatch */
    fake_cmd(a, &fp, "config load mqtt.user 10 3610a686");
    fake_cmd(a, &fp, "config data 0 aGVsbG8= 3610a686");
    fake_cmd(a, &fp, "config end");
    CHECK_STR(fp.out, "ERR length mismatch for mqtt.user: expected 10 got 5\n");

    /* another command in the middle aborts the load with a W line */
    fake_cmd(a, &fp, "config load mqtt.user 5 3610a686");
    fake_cmd(a, &fp, "status");
    CHECK(strncmp(fp.out, "W (", 3) == 0);
    CHECK(fake_contains(&fp, "config load of mqtt.user aborted by 'status'"));
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "config data 0 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "ERR config data 0: no config load in progress\n");
    fake_cmd(a, &fp, "config end");
    CHECK_STR(fp.out, "ERR config end: no config load in progress\n");

    /* load argument checks */
    fake_cmd(a, &fp, "config load mqtt.ssl_ca_cert 9000 00000000");
    CHECK(strncmp(fp.out, "ERR config load: total_len must be 1..8192", 42) == 0);
    fake_cmd(a, &fp, "config load mqtt.ssl_ca_cert 10 xyz");
    CHECK_STR(fp.out, "ERR config load: crc32 must be 8 hex digits\n");
    fake_cmd(a, &fp, "config load nope 10 00000000");
    CHECK_STR(fp.out, "ERR unknown key 'nope'\n");
    /* a chunk over 96 bytes */
    fake_cmd(a, &fp, "config load mqtt.ssl_ca_cert 200 00000000");
    char enc[200];
    uint8_t raw[99];
    memset(raw, 'A', sizeof(raw));
    b64(raw, sizeof(raw), enc);
    snprintf(line, sizeof(line), "config data 0 %s %08lx", enc,
             (unsigned long)agent_crc32(0, raw, sizeof(raw)));
    fake_cmd(a, &fp, line);
    CHECK_STR(fp.out, "ERR config data 0: chunk too large (max 96 decoded bytes)\n");
    test_agent_drop(a);
}

/* ---- Wi-Fi: no hooks on the host port; a fake station for boards ---------- */

static char wifi_ssid_seen[64], wifi_pass_seen[80];
static int wifi_fail;        /* the station gets no address (reason 201) */
static int wifi_begin_fail;  /* wifi_begin refuses the credentials */
static int wifi_events_left; /* queued port events */
static bool wifi_up;

static int fake_wifi_begin(void *ctx, const char *ssid, const char *pass, char *err, size_t errlen)
{
    (void)ctx;
    snprintf(wifi_ssid_seen, sizeof(wifi_ssid_seen), "%s", ssid);
    snprintf(wifi_pass_seen, sizeof(wifi_pass_seen), "%s", pass);
    if (wifi_begin_fail) {
        snprintf(err, errlen, "wifi.sta.pass must be empty (open network) or 8..64 characters");
        return -1;
    }
    wifi_events_left = 1;
    wifi_up = !wifi_fail; /* the fake station is instant */
    return 0;
}

static bool fake_wifi_up(void *ctx)
{
    (void)ctx;
    return wifi_up;
}

static unsigned fake_wifi_last_reason(void *ctx)
{
    (void)ctx;
    return wifi_fail ? 201u : 0u;
}

static bool fake_next_event(void *ctx, char *level, char *text, size_t cap)
{
    (void)ctx;
    if (wifi_events_left <= 0) return false;
    wifi_events_left--;
    *level = wifi_fail ? 'W' : 'I';
    snprintf(text, cap, "%s", wifi_fail ? "WiFi STA disconnected (reason 201)" : "WiFi STA IP: 192.0.2.7");
    return true;
}

static void fake_wifi_status(void *ctx, char *buf, size_t cap)
{
    (void)ctx;
    snprintf(buf, cap, "connected ip=192.0.2.7 rssi=-40");
}

static void test_wifi(void)
{
    /* the host port (virtual board) has no Wi-Fi hooks */
    agent_t *a = test_agent_boot(&port);
    fake_cmd(a, &fp, "wifi connect");
    CHECK_STR(fp.out, "ERR wifi: this port has no Wi-Fi (virtual board)\n");
    fake_cmd(a, &fp, "wifi");
    CHECK_STR(fp.out, "ERR wifi: this port has no Wi-Fi (virtual board)\n");
    fake_cmd(a, &fp, "status");
    CHECK(!fake_contains(&fp, "wifi="));
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "help");
    CHECK(fake_contains(&fp, "\nwifi connect "));
    fp.out_len = 0;
    fp.out[0] = '\0';
    agent_port_events(a); /* no next_event hook: nothing */
    CHECK_EQ_INT(fp.out_len, 0);
    test_agent_drop(a);

    /* a port with a station */
    agent_port_t wport = port;
    wport.wifi_begin = fake_wifi_begin;
    wport.wifi_last_reason = fake_wifi_last_reason;
    wport.network_up = fake_wifi_up;
    wport.wifi_status = fake_wifi_status;
    wport.next_event = fake_next_event;
    a = calloc(1, sizeof(*a));
    agent_init(a, &wport);
    agent_boot(a);
    fake_cmd(a, &fp, "wifi connect");
    CHECK_STR(fp.out, "ERR wifi connect: wifi.sta.ssid is not set\n");
    fake_cmd(a, &fp, "wifi scan");
    CHECK_STR(fp.out, "ERR wifi: unknown subcommand 'scan'\n");
    fake_cmd(a, &fp, "wifi connect now");
    CHECK(strncmp(fp.out, "ERR wifi connect: no arguments", 30) == 0);
    fake_cmd(a, &fp, "config set wifi.sta.ssid lab net");
    fake_cmd(a, &fp, "config set wifi.sta.pass s3cret-pass");

    wifi_fail = 0;
    fake_cmd(a, &fp, "wifi connect");
    CHECK_STR(wifi_ssid_seen, "lab net");
    CHECK_STR(wifi_pass_seen, "s3cret-pass");
    CHECK(!fake_contains(&fp, "s3cret"));
    const char *conn = strstr(fp.out, "hil: WiFi STA connecting to lab net\n");
    const char *ip = strstr(fp.out, "hil: WiFi STA IP: 192.0.2.7\n");
    CHECK(conn != NULL && ip != NULL && conn < ip); /* the port's event precedes the final line */
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK_EQ_INT(fake_final_lines(&fp), 1);

    wifi_fail = 1;
    fake_cmd(a, &fp, "wifi connect");
    CHECK(fake_contains(&fp, "W ("));
    CHECK(fake_contains(&fp, "hil: WiFi STA disconnected (reason 201)\n"));
    CHECK_STR(fake_last_line(&fp),
              "ERR wifi connect: no IP address within 15000 ms (last disconnect reason 201; retrying)");
    CHECK_EQ_INT(fake_final_lines(&fp), 1);

    /* pending: a status typed meanwhile is answered after the final line, with its tag */
    fp.out_len = 0;
    fp.out[0] = '\0';
    agent_console_feed(a, (const uint8_t *)"@w1 wifi connect\n@w2 status\n", 28);
    CHECK_EQ_INT(fake_final_lines(&fp), 0);
    CHECK(fake_settle(a, &fp));
    const char *w1 = strstr(fp.out, "@w1 ERR wifi connect: no IP address within 15000 ms");
    const char *w2 = strstr(fp.out, "@w2 OK");
    CHECK(w1 != NULL && w2 != NULL && w1 < w2);
    CHECK(fake_has_line(&fp, "wifi=connected ip=192.0.2.7 rssi=-40"));
    CHECK_EQ_INT(fake_final_lines(&fp), 2);

    /* the port refuses the credentials: ERR at once */
    wifi_fail = 0;
    wifi_begin_fail = 1;
    fake_cmd(a, &fp, "wifi connect");
    CHECK_STR(fake_last_line(&fp),
              "ERR wifi connect: wifi.sta.pass must be empty (open network) or 8..64 characters");
    wifi_begin_fail = 0;

    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "wifi=connected ip=192.0.2.7 rssi=-40"));
    CHECK_STR(fake_last_line(&fp), "OK");

    /* open network: unset password reaches the port as "" */
    wifi_fail = 0;
    fake_cmd(a, &fp, "config clear wifi.sta.pass");
    fake_cmd(a, &fp, "wifi connect");
    CHECK_STR(wifi_pass_seen, "");
    CHECK_STR(fake_last_line(&fp), "OK");

    /* agent_step prints queued events even when the console has nothing */
    wifi_events_left = 1;
    fp.out_len = 0;
    fp.out[0] = '\0';
    (void)agent_step(a, 0); /* the fake console reports EOF: the step stops the agent */
    CHECK(fake_contains(&fp, "hil: WiFi STA IP: 192.0.2.7\n"));
    CHECK_EQ_INT(wifi_events_left, 0);
    CHECK(fake_cmd(a, &fp, "config save") != NULL);
    test_agent_drop(a);

    /* a saved SSID: the station starts at boot, after the ready line */
    a = calloc(1, sizeof(*a));
    agent_init(a, &wport);
    wifi_ssid_seen[0] = '\0';
    fp.out_len = 0;
    fp.out[0] = '\0';
    agent_boot(a);
    CHECK_STR(wifi_ssid_seen, "lab net");
    const char *ready = strstr(fp.out, " ready (mbedtls ");
    const char *starting = strstr(fp.out, "hil: WiFi STA connecting to lab net\n");
    CHECK(ready != NULL && starting != NULL && ready < starting);
    test_agent_drop(a);
    fp.has_store = false;
}

/* ---- tagged commands: "@<tag> <command>" -> the one final line is "@<tag> OK/ERR" ---- */

static void test_tags(void)
{
    agent_t *a = test_agent_boot(&port);
    char line[700];

    /* a data command: data lines unprefixed, then the tagged final line */
    fake_cmd(a, &fp, "@t1 version");
    CHECK(strncmp(fp.out, "version=1.0.0\nmbedtls=", 22) == 0);
    CHECK(fake_contains(&fp, "\nbuild="));
    CHECK_STR(fake_last_line(&fp), "@t1 OK");
    CHECK(!fake_has_line(&fp, "OK"));

    /* OK and ERR, every tag character */
    fake_cmd(a, &fp, "@a.B_c-9 config set mqtt.user bob");
    CHECK_STR(fp.out, "@a.B_c-9 OK\n");
    fake_cmd(a, &fp, "@t2 frobnicate now");
    CHECK_STR(fp.out, "@t2 ERR unknown command 'frobnicate'\n");
    fake_cmd(a, &fp, "@t3 config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user=bob\n@t3 OK\n");
    fake_cmd(a, &fp, "@t4 config set mqtt.ssl_psk_key 00");
    CHECK_STR(fp.out,
              "@t4 ERR mqtt.ssl_psk_key: expected 32 or 64 hex digits (16 or 32 bytes), got 2\n");
    fake_cmd(a, &fp, "@t5 mqtt connect"); /* no server: ERR from mqtt.c, tagged as well */
    CHECK_STR(fp.out, "@t5 ERR mqtt.server: not set\n");
    /* the rig's form: <boot nonce>.<seq>, 24 characters at most */
    fake_cmd(a, &fp, "@0123456789abcdef.1234567 status");
    CHECK_STR(fake_last_line(&fp), "@0123456789abcdef.1234567 OK");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    /* the untagged form is unchanged, and the tag does not stick */
    fake_cmd(a, &fp, "version");
    CHECK_STR(fake_last_line(&fp), "OK");
    fp.out_len = 0;
    agent_console_feed(a, (const uint8_t *)"@x1 version\nversion\n@x2 bogus\n", 30);
    CHECK_EQ_INT(fake_final_lines(&fp), 3);
    CHECK(fake_has_line(&fp, "@x1 OK"));
    CHECK(fake_has_line(&fp, "OK"));
    CHECK(fake_has_line(&fp, "@x2 ERR unknown command 'bogus'"));
    CHECK_STR(a->tag, "");

    /* bad tags: untagged ERR, the command is not run */
    static const char *const bad[] = {
        "@ config set mqtt.user eve",                          /* empty */
        "@0123456789abcdef.12345678 config set mqtt.user eve", /* 25 characters */
        "@t/1 config set mqtt.user eve",                       /* bad character */
        "@t:1 config set mqtt.user eve",
        "@t@ config set mqtt.user eve",
        "@\x01 config set mqtt.user eve",
        "@",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fake_cmd(a, &fp, bad[i]);
        CHECK_STR(fp.out, "ERR bad tag (1..24 of A-Z a-z 0-9 . _ -)\n");
    }
    fake_cmd(a, &fp, "config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user=bob\nOK\n");
    /* a tag and nothing else */
    fake_cmd(a, &fp, "@t6");
    CHECK_STR(fp.out, "@t6 ERR empty command\n");
    fake_cmd(a, &fp, "  @t7   ");
    CHECK_STR(fp.out, "@t7 ERR empty command\n");
    /* a tag is a token of its own: "@t8version" is a tag without a command */
    fake_cmd(a, &fp, "@t8version");
    CHECK_STR(fp.out, "@t8version ERR empty command\n");

    /* NUL byte and over-long line keep a valid tag */
    fp.out_len = 0;
    agent_console_feed(a, (const uint8_t *)"@n1 ver\0sion\n", 13);
    CHECK_STR(fp.out, "@n1 ERR line contains a NUL byte\n");
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    memcpy(line, "@long1 ", 7);
    fake_cmd(a, &fp, line);
    CHECK_STR(fp.out, "@long1 ERR line too long (max 512)\n");
    memcpy(line, "@long1!", 7);
    fake_cmd(a, &fp, line);
    CHECK_STR(fp.out, "ERR line too long (max 512)\n");
    line[0] = 'x';
    fake_cmd(a, &fp, line);
    CHECK_STR(fp.out, "ERR line too long (max 512)\n");

    /* log lines are not prefixed; the abort rule sees the command after the tag */
    fake_cmd(a, &fp, "@l0 config load mqtt.pass 5 3610a686");
    CHECK_STR(fp.out, "@l0 OK\n");
    fake_cmd(a, &fp, "@s1 status");
    CHECK(strncmp(fp.out, "W (", 3) == 0);
    CHECK(fake_contains(&fp, " hil: config load of mqtt.pass aborted by 'status' before config end\n"));
    CHECK_STR(fake_last_line(&fp), "@s1 OK");
    fake_cmd(a, &fp, "@l3 config end");
    CHECK_STR(fp.out, "@l3 ERR config end: no config load in progress\n");

    /* tagged chunked upload: tagged config data / config end are load steps */
    fake_cmd(a, &fp, "@l1 config load mqtt.pass 5 3610a686"); /* crc32("hello") */
    CHECK_STR(fp.out, "@l1 OK\n");
    fake_cmd(a, &fp, "@l2 config data 1 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "@l2 ERR config data 1: seq out of order (expected 0)\n");
    fake_cmd(a, &fp, "@bad/tag config data 0 aGVsbG8= 3610a686"); /* not run: the load stays */
    CHECK_STR(fp.out, "ERR bad tag (1..24 of A-Z a-z 0-9 . _ -)\n");
    fake_cmd(a, &fp, "@l3");                                       /* not a command either */
    CHECK_STR(fp.out, "@l3 ERR empty command\n");
    fake_cmd(a, &fp, "@l4 config data 0 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "@l4 OK\n");
    fake_cmd(a, &fp, "@l5 config end");
    CHECK_STR(fp.out, "@l5 OK\n");
    fake_cmd(a, &fp, "@l6 config get mqtt.pass");
    CHECK_STR(fp.out, "mqtt.pass=<set, 5 bytes>\n@l6 OK\n");
    /* tagged and untagged steps mix */
    fake_cmd(a, &fp, "config load mqtt.user 5 3610a686");
    fake_cmd(a, &fp, "@m1 config data 0 aGVsbG8= 3610a686");
    CHECK_STR(fp.out, "@m1 OK\n");
    fake_cmd(a, &fp, "config end");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user=hello\nOK\n");

    /* reboot: the tagged OK comes first */
    int reboots = fp.reboots;
    fake_cmd(a, &fp, "@r1 reboot");
    CHECK(strncmp(fp.out, "@r1 OK\n", 7) == 0);
    CHECK_EQ_INT(fp.reboots, reboots + 1);
    test_agent_drop(a);
}

/* ---- tokenizer: runs of spaces and tabs separate tokens; the value of
 * "config set" is the rest of the line after exactly one separator ---- */

static void test_tokens(void)
{
    agent_t *a = test_agent_boot(&port);
    fake_cmd(a, &fp, "\tversion\t ");
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK(fake_has_line(&fp, "version=1.0.0"));
    fake_cmd(a, &fp, " \t \t");
    CHECK_EQ_INT(fp.out_len, 0); /* blank: no answer */
    fake_cmd(a, &fp, "config\tget \t mqtt.keep_alive");
    CHECK_STR(fp.out, "mqtt.keep_alive=60\nOK\n");
    /* one separator after the key, the rest is the value: here " x" */
    fake_cmd(a, &fp, "config  set\tmqtt.user  x");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user= x\nOK\n");
    CHECK_EQ_INT(a->settings.v[SK_MQTT_USER].len, 2);
    fake_cmd(a, &fp, "config set mqtt.user\tx  y z ");
    CHECK_STR(fp.out, "OK\n");
    fake_cmd(a, &fp, "config get mqtt.user");
    CHECK_STR(fp.out, "mqtt.user=x  y z \nOK\n");
    /* a tab after the separator is part of the value (and refused here) */
    fake_cmd(a, &fp, "config set mqtt.user\t\tx");
    CHECK_STR(fp.out, "ERR mqtt.user: control characters are not allowed\n");
    fake_cmd(a, &fp, "config set mqtt.user\t");
    CHECK_STR(fp.out, "ERR config set: missing value for mqtt.user (use config clear mqtt.user)\n");
    fake_cmd(a, &fp, "mqtt\tpublish\tt\tm\t2");
    CHECK_STR(fp.out, "ERR mqtt publish: qos must be 0 or 1\n");
    fake_cmd(a, &fp, "@t1\tconfig\tget\tmqtt.user");
    CHECK_STR(fp.out, "mqtt.user=x  y z \n@t1 OK\n");
    test_agent_drop(a);
}

/* ---- words from the input echoed in ERR lines are escaped ---------------- */

static const char *raw_cmd(agent_t *a, const char *bytes, size_t n)
{
    fp.out_len = 0;
    fp.out[0] = '\0';
    agent_console_feed(a, (const uint8_t *)bytes, n);
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    for (size_t i = 0; i < fp.out_len; i++) { /* no raw control or non-ASCII byte comes back */
        unsigned char ch = (unsigned char)fp.out[i];
        CHECK(ch == '\n' || (ch >= 0x20 && ch < 0x7f));
    }
    return fp.out;
}

static void test_escaped_words(void)
{
    agent_t *a = test_agent_boot(&port);
    static const char cmd1[] = "fr\x01\x1b[2J\xff'\"\\o\x7f x\n";
    raw_cmd(a, cmd1, sizeof(cmd1) - 1);
    CHECK_STR(fp.out, "ERR unknown command 'fr\\x01\\x1b[2J\\xff\\x27\\x22\\\\o\\x7f'\n");
    /* at most 40 input bytes are shown */
    char big[100];
    memset(big, 0xff, 50);
    memcpy(big + 50, "\n", 2);
    raw_cmd(a, big, 51);
    char want[300] = "ERR unknown command '";
    for (int i = 0; i < 40; i++) strcat(want, "\\xff");
    strcat(want, "'\n");
    CHECK_STR(fp.out, want);
    static const char cmd2[] = "@t1 config get mqtt.\x80\x19\n";
    raw_cmd(a, cmd2, sizeof(cmd2) - 1);
    CHECK_STR(fp.out, "@t1 ERR unknown key 'mqtt.\\x80\\x19'\n");
    static const char cmd3[] = "config set \x1b]0;x\x07 v\n";
    raw_cmd(a, cmd3, sizeof(cmd3) - 1);
    CHECK_STR(fp.out, "ERR unknown key '\\x1b]0;x\\x07'\n");
    static const char cmd4[] = "config \xfe\xff\n";
    raw_cmd(a, cmd4, sizeof(cmd4) - 1);
    CHECK_STR(fp.out, "ERR config: unknown subcommand '\\xfe\\xff'\n");
    static const char cmd5[] = "mqtt x\x0by\n";
    raw_cmd(a, cmd5, sizeof(cmd5) - 1);
    CHECK_STR(fp.out, "ERR mqtt: unknown subcommand 'x\\x0by'\n");
    static const char cmd6[] = "http \x1b[1m\n";
    raw_cmd(a, cmd6, sizeof(cmd6) - 1);
    CHECK_STR(fp.out, "ERR http: unknown subcommand '\\x1b[1m'\n");
    static const char cmd7[] = "http st\xc3\xa4rt now\n";
    raw_cmd(a, cmd7, sizeof(cmd7) - 1);
    CHECK_STR(fp.out, "ERR http st\\xc3\\xa4rt: too many arguments\n");
    static const char cmd8[] = "config set mqtt.ssl_cipher_suites TLS-PSK-WITH-AES-128-CCM-8:X\x1b\xff'\n";
    raw_cmd(a, cmd8, sizeof(cmd8) - 1);
    CHECK_STR(fp.out, "ERR mqtt.ssl_cipher_suites: unknown cipher suite 'X\\x1b\\xff\\x27'\n");
    /* the abort warning too */
    fake_cmd(a, &fp, "config load mqtt.user 5 3610a686");
    static const char cmd9[] = "\x1b[31mred\n";
    raw_cmd(a, cmd9, sizeof(cmd9) - 1);
    CHECK(fake_contains(&fp, " hil: config load of mqtt.user aborted by '\\x1b[31mred' before config end\n"));
    CHECK_STR(fake_last_line(&fp), "ERR unknown command '\\x1b[31mred'");
    /* plain words are shown as they are */
    fake_cmd(a, &fp, "config get mqtt.Server");
    CHECK_STR(fp.out, "ERR unknown key 'mqtt.Server'\n");
    test_agent_drop(a);
}

/* ---- mqtt.ssl_key must be mqtt.ssl_cert's key once both are set ---------- */

#define PAIR_ERR "ERR mqtt.ssl_key does not match mqtt.ssl_cert (clear the other one first to replace the pair)"

static void test_key_pair(void)
{
    agent_t *a = test_agent_boot(&port);
    char line[300];
    /* the rig's order: config clear, certificate, key */
    fake_cmd(a, &fp, "config clear");
    CHECK_STR(upload(a, "mqtt.ssl_ca_cert", test_cert_pem, 0), "OK");
    CHECK_STR(upload(a, "mqtt.ssl_cert", test_cert_pem, 0), "OK");
    CHECK_STR(upload(a, "mqtt.ssl_key", test_key_pem, 0), "OK");
    /* the same pair again, either half: fine */
    CHECK_STR(upload(a, "mqtt.ssl_key", test_key_pem, 0), "OK");
    CHECK_STR(upload(a, "mqtt.ssl_cert", test_cert_pem, 0), "OK");

    /* another key (EC or RSA) for this certificate: refused, the old key stays */
    CHECK_STR(upload(a, "mqtt.ssl_key", test_key2_pem, 0), PAIR_ERR);
    CHECK_STR(upload(a, "mqtt.ssl_key", test_rsa_key_pem, 0), PAIR_ERR);
    fake_cmd(a, &fp, "config get mqtt.ssl_key");
    snprintf(line, sizeof(line), "mqtt.ssl_key=<set, %zu bytes>\nOK\n", strlen(test_key_pem));
    CHECK_STR(fp.out, line);
    /* another certificate for this key: refused the same way, the old one stays */
    CHECK_STR(upload(a, "mqtt.ssl_cert", test_cert2_pem, 0), PAIR_ERR);
    fake_cmd(a, &fp, "config get mqtt.ssl_cert");
    snprintf(line, sizeof(line), "mqtt.ssl_cert=<pem %zu bytes crc32 %08lx>\nOK\n",
             strlen(test_cert_pem),
             (unsigned long)agent_crc32(0, (const uint8_t *)test_cert_pem, strlen(test_cert_pem)));
    CHECK_STR(fp.out, line);
    /* tagged: the same ERR with the tag */
    snprintf(line, sizeof(line), "config load mqtt.ssl_key %zu %08lx", strlen(test_key2_pem),
             (unsigned long)agent_crc32(0, (const uint8_t *)test_key2_pem, strlen(test_key2_pem)));
    fake_cmd(a, &fp, line);
    CHECK_STR(fp.out, "OK\n");
    {
        char enc[200], cmd[300];
        size_t len = strlen(test_key2_pem);
        uint32_t seq = 0;
        for (size_t off = 0; off < len; off += 96, seq++) {
            size_t n = len - off < 96 ? len - off : 96;
            b64((const uint8_t *)test_key2_pem + off, n, enc);
            snprintf(cmd, sizeof(cmd), "@d%lu config data %lu %s %08lx", (unsigned long)seq,
                     (unsigned long)seq, enc,
                     (unsigned long)agent_crc32(0, (const uint8_t *)test_key2_pem + off, n));
            fake_cmd(a, &fp, cmd);
            snprintf(line, sizeof(line), "@d%lu OK", (unsigned long)seq);
            CHECK_STR(fake_last_line(&fp), line);
        }
    }
    fake_cmd(a, &fp, "@e1 config end");
    CHECK_STR(fp.out, "@e1 " PAIR_ERR "\n");

    /* replacing the pair: clear one half first, then both halves in any order */
    fake_cmd(a, &fp, "config clear mqtt.ssl_cert");
    CHECK_STR(upload(a, "mqtt.ssl_key", test_key2_pem, 0), "OK");
    CHECK_STR(upload(a, "mqtt.ssl_cert", test_cert_pem, 0), PAIR_ERR);
    CHECK_STR(upload(a, "mqtt.ssl_cert", test_cert2_pem, 0), "OK");
    fake_cmd(a, &fp, "config clear mqtt.ssl_key");
    CHECK_STR(upload(a, "mqtt.ssl_key", test_key2_pem, 0), "OK");

    /* the check survives a restart from storage */
    fake_cmd(a, &fp, "config save");
    CHECK_STR(fp.out, "OK\n");
    test_agent_drop(a);
    a = test_agent_boot(&port);
    CHECK_STR(upload(a, "mqtt.ssl_key", test_key_pem, 0), PAIR_ERR);

    /* http.ssl_key / http.ssl_cert are checked at `http start` (shared code) */
    CHECK_STR(upload(a, "http.ssl_cert", test_cert_pem, 0), "OK");
    CHECK_STR(upload(a, "http.ssl_key", test_key2_pem, 0), "OK");
    fake_cmd(a, &fp, "config set http.listen_addr 127.0.0.1:0");
    fake_cmd(a, &fp, "http start");
    CHECK_STR(fp.out, "ERR http start: http.ssl_key does not match http.ssl_cert\n");
    fake_cmd(a, &fp, "config clear");
    test_agent_drop(a);
    fp.has_store = false;
}

int main(void)
{
    fake_port_make(&fp, &port);
    test_basics();
    test_config();
    test_chunked();
    test_wifi();
    test_tags();
    test_tokens();
    test_escaped_words();
    test_key_pair();
    TEST_DONE();
}
