/* test_console.c - the console contract: commands, OK/ERR, chunked load,
 * masking, persistence, line limits. Uses the in-memory fake port. */
#include <stdlib.h>

#include "agent_util.h"
#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;

static agent_t *boot(void)
{
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    agent_boot(a);
    return a;
}

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
    agent_t *a = boot();
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
    agent_free(a);
    free(a);
}

static void test_config(void)
{
    agent_t *a = boot();
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
    agent_free(a);
    free(a);
    a = boot();
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=[::1]:8883\nOK\n");
    fake_cmd(a, &fp, "config clear");
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=<unset>\nOK\n");
    agent_free(a);
    free(a);

    /* corrupt storage: W line at boot, defaults, still works */
    fp.store[5] ^= 1;
    fp.out_len = 0;
    a = boot();
    CHECK(strncmp(fp.out, "W (", 3) == 0);
    CHECK(fake_contains(&fp, "saved settings ignored"));
    fake_cmd(a, &fp, "config get mqtt.server");
    CHECK_STR(fp.out, "mqtt.server=<unset>\nOK\n");
    agent_free(a);
    free(a);
    fp.has_store = false;
}

static void test_chunked(void)
{
    agent_t *a = boot();
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
    agent_free(a);
    free(a);
}

/* ---- Wi-Fi: no hooks on the host port; a fake station for boards ---------- */

static char wifi_ssid_seen[64], wifi_pass_seen[80];
static int wifi_fail;        /* next wifi_connect fails */
static int wifi_events_left; /* queued port events */

static int fake_wifi_connect(void *ctx, const char *ssid, const char *pass, uint32_t timeout_ms,
                             char *err, size_t errlen)
{
    (void)ctx;
    snprintf(wifi_ssid_seen, sizeof(wifi_ssid_seen), "%s", ssid);
    snprintf(wifi_pass_seen, sizeof(wifi_pass_seen), "%s", pass);
    CHECK_EQ_INT(timeout_ms, AGENT_WIFI_TIMEOUT_MS);
    wifi_events_left = 1;
    if (wifi_fail) {
        snprintf(err, errlen, "no IP address within 15000 ms (last disconnect reason 201; retrying)");
        return -1;
    }
    return 0;
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
    agent_t *a = boot();
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
    agent_free(a);
    free(a);

    /* a port with a station */
    agent_port_t wport = port;
    wport.wifi_connect = fake_wifi_connect;
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
    agent_free(a);
    free(a);
}

int main(void)
{
    fake_port_make(&fp, &port);
    test_basics();
    test_config();
    test_chunked();
    test_wifi();
    TEST_DONE();
}
