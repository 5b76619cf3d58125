/* test_rpc.c - Mongoose OS RPC frames on the console (rpc.c): the
 * handshake's answer, each method, the errors, masking of secrets,
 * all-or-nothing Config.Set, and frames mixed with console lines. Uses the
 * in-memory fake port; responses are checked for their CRC and parsed with
 * cJSON. */
#include <stdlib.h>

#include "agent_util.h"
#include "cJSON.h"
#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;

/* The last frame in the output: its CRC checked, its JSON parsed (NULL: none). */
static cJSON *last_frame(void)
{
    const char *start = NULL;
    for (const char *p = fp.out; (p = strstr(p, "\"\"\"{")) != NULL; p++) start = p;
    if (!start) return NULL;
    const char *end = strstr(start + 3, "\"\"\"");
    CHECK(end != NULL);
    if (!end || end - start < 3 + 2 + 8) return NULL;
    const char *json = start + 3;
    size_t jlen = (size_t)(end - json) - 8;
    uint32_t crc;
    CHECK(agent_parse_hex32(json + jlen, 8, &crc) == 0);
    CHECK_EQ_INT(crc, agent_crc32(0, (const uint8_t *)json, jlen));
    /* lower-case hex, and a newline after the frame */
    for (size_t i = 0; i < 8; i++) CHECK(!(json[jlen + i] >= 'A' && json[jlen + i] <= 'F'));
    CHECK(end[3] == '\n');
    return cJSON_ParseWithLength(json, jlen);
}

/* Send one request frame (with CRC when crc is true); the parsed response. */
static cJSON *call(agent_t *a, const char *json, bool crc)
{
    char tail[16];
    fp.out_len = 0;
    fp.out[0] = '\0';
    test_feed(a, "\"\"\"");
    test_feed(a, json);
    if (crc) {
        snprintf(tail, sizeof(tail), "%08lx", (unsigned long)agent_crc32(0, (const uint8_t *)json, strlen(json)));
        test_feed(a, tail);
    }
    test_feed(a, "\"\"\"");
    return last_frame();
}

static const cJSON *get(const cJSON *o, const char *path)
{
    char seg[64];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(seg)) return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, seg);
        path = dot ? dot + 1 : path + n;
    }
    return o;
}

static const char *str(const cJSON *o, const char *path)
{
    const cJSON *v = get(o, path);
    return cJSON_IsString(v) ? v->valuestring : "<not a string>";
}

static double num(const cJSON *o, const char *path)
{
    const cJSON *v = get(o, path);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void check_error(cJSON *r, int code, const char *msg)
{
    CHECK(r != NULL);
    if (!r) return;
    CHECK(get(r, "result") == NULL);
    CHECK_EQ_INT(num(r, "error.code"), code);
    CHECK_STR(str(r, "error.message"), msg);
    CHECK_STR(str(r, "src"), "hil-agent");
    cJSON_Delete(r);
}

static void test_handshake_and_info(void)
{
    agent_t *a = test_agent_boot(&port);
    fp.out_len = 0;
    test_feed(a, "\x04\"\"\"");
    CHECK_EQ_INT(fp.out_len, 8);
    CHECK(memcmp(fp.out, "\"\"\"\x04\"\"\"\n", 8) == 0);
    test_feed(a, "\x04\"\"\"");
    CHECK_EQ_INT(fp.out_len, 16);

    cJSON *r = call(a, "{\"id\":42,\"method\":\"Sys.GetInfo\",\"tag\":\"t1\"}", true);
    CHECK(r != NULL);
    CHECK_EQ_INT(num(r, "id"), 42);
    CHECK_STR(str(r, "src"), "hil-agent");
    CHECK_STR(str(r, "tag"), "t1");
    CHECK_STR(str(r, "result.fw_version"), AGENT_VERSION);
    CHECK_STR(str(r, "result.mbedtls"), agent_mbedtls_version());
    CHECK_STR(str(r, "result.variant"), agent_variant());
    CHECK_STR(str(r, "result.fw_id"), agent_build_id());
    CHECK_STR(str(r, "result.app"), "hil-agent");
    CHECK(num(r, "result.uptime") >= 0);
    CHECK(cJSON_IsNull(get(r, "result.ram_free")));
    cJSON_Delete(r);
    CHECK(fake_contains(&fp, "hil: rpc: Sys.GetInfo id 42: ok\n"));
    /* the log line comes before the frame, never inside it */
    CHECK(strstr(fp.out, "hil: rpc:") < strstr(fp.out, "\"\"\"{"));

    /* without CRC and without id */
    r = call(a, "{\"method\":\"Sys.GetInfo\"}", false);
    CHECK(r != NULL);
    CHECK(get(r, "id") == NULL);
    CHECK_STR(str(r, "result.app"), "hil-agent");
    cJSON_Delete(r);
    test_agent_drop(a);
}

static void test_errors(void)
{
    agent_t *a = test_agent_boot(&port);
    check_error(call(a, "{\"id\":1,\"method\":\"Foo.Bar\"}", true), 404, "No handler for Foo.Bar");
    CHECK(fake_contains(&fp, "hil: rpc: Foo.Bar id 1: error 404: No handler for Foo.Bar\n"));
    check_error(call(a, "{\"id\":2}", true), 400, "method: expected a string");
    check_error(call(a, "{\"id\":3,\"method\":\"Config.Get\",\"params\":[1]}", true), 400,
                "params: expected an object");
    check_error(call(a, "{\"id\":4,\"method\":\"Config.Set\",\"params\":{}}", true), 400,
                "params.config: expected an object");
    check_error(call(a, "{\"id\":5,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt.nope\"}}", true),
                400, "unknown key 'mqtt.nope'");
    check_error(call(a, "{\"id\":6,\"method\":\"Config.Get\",\"params\":{\"key\":7}}", true), 400,
                "params.key: expected a string");
    check_error(call(a, "{\"id\":7,\"method\":\"Config.Save\",\"params\":{\"reboot\":1}}", true), 400,
                "params.reboot: expected true or false");
    /* a method name is shown escaped and cut */
    check_error(call(a, "{\"id\":8,\"method\":\"X'\\n\"}", true), 404, "No handler for X\\x27\\x0a");

    /* frames with no id to answer: dropped with an E line, no response */
    CHECK(call(a, "{\"id\":9,\"method\":\"Sys.GetInfo\"", false) == NULL);
    CHECK(call(a, "{\"id\":9 nonsense}", false) == NULL);
    CHECK(fake_contains(&fp, "hil: rpc: frame dropped: not a JSON object"));
    CHECK(call(a, "{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}", false) == NULL);
    CHECK(fake_contains(&fp, "hil: rpc: frame dropped: JSON nested deeper than 8"));
    /* bad CRC */
    fp.out_len = 0;
    test_feed(a, "\"\"\"{\"id\":1,\"method\":\"Sys.GetInfo\"}00000000\"\"\"");
    CHECK(!fake_contains(&fp, "\"\"\"{"));
    CHECK(fake_contains(&fp, "hil: rpc: frame dropped: crc mismatch (frame says 00000000, got "));
    /* oversize */
    fp.out_len = 0;
    test_feed(a, "\"\"\"{\"x\":\"");
    for (int i = 0; i < AGENT_RPC_FRAME_MAX / 64 + 1; i++) {
        test_feed(a, "0123456789012345678901234567890123456789012345678901234567890123");
    }
    test_feed(a, "\"}\"\"\"");
    CHECK(fake_contains(&fp, "hil: rpc: frame dropped: frame too large ("));
    CHECK(!fake_contains(&fp, "\"\"\"{"));
    /* the console still works */
    fake_cmd(a, &fp, "version");
    CHECK_STR(fake_last_line(&fp), "OK");
    test_agent_drop(a);
}

static void test_config(void)
{
    agent_t *a = test_agent_boot(&port);
    const char *psk = "00112233445566778899aabbccddeeff";
    char req[4096];
    snprintf(req, sizeof(req),
             "{\"id\":10,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":{\"server\":"
             "\"127.0.0.1:8883\",\"ssl_psk_identity\":\"dev1\",\"ssl_psk_key\":\"%s\",\"keep_alive\":30,"
             "\"pass\":\"hunter2\"},\"wifi.sta.ssid\":\"lab\"}}}",
             psk);
    cJSON *r = call(a, req, true);
    CHECK(r != NULL);
    CHECK(cJSON_IsFalse(get(r, "result.saved")));
    cJSON_Delete(r);
    CHECK(fake_contains(&fp, "hil: rpc: Config.Set id 10: ok mqtt.server mqtt.ssl_psk_identity "
                             "mqtt.ssl_psk_key mqtt.keep_alive mqtt.pass wifi.sta.ssid\n"));
    CHECK(!fake_contains(&fp, psk));
    CHECK(!fake_contains(&fp, "hunter2"));
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SERVER), "127.0.0.1:8883");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_KEEP_ALIVE), "30");
    CHECK_STR(settings_get(&a->settings, SK_WIFI_STA_SSID), "lab");

    /* Config.Get: a subtree, one key, everything; secrets masked as `config get` masks them */
    r = call(a, "{\"id\":11,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt\"}}", true);
    CHECK_STR(str(r, "result.server"), "127.0.0.1:8883");
    CHECK_STR(str(r, "result.ssl_psk_key"), "<set, 16 bytes>");
    CHECK_STR(str(r, "result.pass"), "<set, 7 bytes>");
    CHECK_EQ_INT(num(r, "result.keep_alive"), 30);
    CHECK(cJSON_IsNull(get(r, "result.ssl_ca_cert")));
    cJSON_Delete(r);
    CHECK(!fake_contains(&fp, psk));
    r = call(a, "{\"id\":12,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt.server\"}}", true);
    CHECK_STR(str(r, "result"), "127.0.0.1:8883");
    cJSON_Delete(r);
    r = call(a, "{\"id\":13,\"method\":\"Config.Get\"}", true);
    CHECK_STR(str(r, "result.wifi.sta.ssid"), "lab");
    CHECK_STR(str(r, "result.wifi.sta.pass") , "<not a string>");
    CHECK(cJSON_IsNull(get(r, "result.http.listen_addr")));
    CHECK_STR(str(r, "result.mqtt.ssl_psk_identity"), "dev1");
    cJSON_Delete(r);

    /* all or nothing: a bad value leaves every key as it was; the error names the key */
    check_error(call(a, "{\"id\":14,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                        "{\"server\":\"10.0.0.1:1\",\"ssl_psk_key\":\"00\"}}}}", true),
                400, "mqtt.ssl_psk_key: expected 32 or 64 hex digits (16 or 32 bytes), got 2");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SERVER), "127.0.0.1:8883");
    check_error(call(a, "{\"id\":15,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                        "{\"server\":\"10.0.0.1:1\",\"bogus\":\"x\"}}}}", true),
                400, "unknown key 'mqtt.bogus'");
    check_error(call(a, "{\"id\":16,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                        "{\"server\":5}}}}", true),
                400, "mqtt.server: expected a string (or null to clear it)");
    check_error(call(a, "{\"id\":17,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                        "{\"keep_alive\":70000}}}}", true),
                400, "mqtt.keep_alive: expected an integer 0..65535");
    check_error(call(a, "{\"id\":18,\"method\":\"Config.Set\",\"params\":{\"config\":{},\"save\":1}}", true),
                400, "params.save: expected true or false");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SERVER), "127.0.0.1:8883");
    CHECK(!fake_contains(&fp, psk));

    /* null clears a key */
    r = call(a, "{\"id\":19,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":{\"pass\":null}}}}", true);
    CHECK(get(r, "result") != NULL);
    cJSON_Delete(r);
    CHECK(!settings_is_set(&a->settings, SK_MQTT_PASS));

    /* a certificate and its key given together are checked against each other */
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddNumberToObject(cfg, "id", 20);
    cJSON_AddStringToObject(cfg, "method", "Config.Set");
    cJSON *mqtt = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(cfg, "params"), "config"), "mqtt");
    cJSON_AddStringToObject(mqtt, "ssl_cert", test_cert_pem);
    cJSON_AddStringToObject(mqtt, "ssl_key", test_key_pem);
    char *text = cJSON_PrintUnformatted(cfg);
    r = call(a, text, true);
    CHECK(get(r, "result") != NULL);
    cJSON_Delete(r);
    CHECK(settings_is_set(&a->settings, SK_MQTT_SSL_KEY));
    CHECK(!fake_contains(&fp, "PRIVATE KEY"));
    cJSON_free(text);
    /* then the other certificate alone: it does not match the stored key */
    cJSON_DeleteItemFromObject(mqtt, "ssl_key");
    cJSON_ReplaceItemInObject(mqtt, "ssl_cert", cJSON_CreateString(test_cert2_pem));
    text = cJSON_PrintUnformatted(cfg);
    r = call(a, text, true);
    CHECK(r != NULL && num(r, "error.code") == 400);
    CHECK(r != NULL && strstr(str(r, "error.message"), "does not match") != NULL);
    cJSON_Delete(r);
    cJSON_free(text);
    cJSON_Delete(cfg);
    r = call(a, "{\"id\":21,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt.ssl_key\"}}", true);
    CHECK(strncmp(str(r, "result"), "<set, ", 6) == 0);
    cJSON_Delete(r);
    r = call(a, "{\"id\":22,\"method\":\"Config.Get\",\"params\":{\"key\":\"mqtt.ssl_cert\"}}", true);
    CHECK(strncmp(str(r, "result"), "<pem ", 5) == 0);
    cJSON_Delete(r);
    test_agent_drop(a);
}

static void test_save_reboot(void)
{
    fake_port_make(&fp, &port);
    agent_t *a = test_agent_boot(&port);
    cJSON *r = call(a, "{\"id\":1,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                       "{\"server\":\"h:1\"}},\"save\":true}}", true);
    CHECK(cJSON_IsTrue(get(r, "result.saved")));
    cJSON_Delete(r);
    CHECK(fp.has_store);
    fp.store_fail = true;
    check_error(call(a, "{\"id\":2,\"method\":\"Config.Save\"}", true), 500, "config save: fake storage full");
    check_error(call(a, "{\"id\":3,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":"
                        "{\"server\":\"h:2\"}},\"save\":true}}", true),
                500, "config save: fake storage full");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SERVER), "h:1"); /* not saved: not applied */
    fp.store_fail = false;
    CHECK_EQ_INT(fp.reboots, 0);
    r = call(a, "{\"id\":4,\"method\":\"Config.Save\",\"params\":{\"reboot\":true}}", true);
    CHECK(cJSON_IsTrue(get(r, "result.saved")));
    cJSON_Delete(r);
    CHECK_EQ_INT(fp.reboots, 1);
    /* the response goes out before the reboot */
    CHECK(strstr(fp.out, "\"\"\"{") != NULL && strstr(fp.out, "hil: rebooting") > strstr(fp.out, "\"\"\"{"));
    r = call(a, "{\"id\":5,\"method\":\"Sys.Reboot\",\"params\":{\"delay_ms\":100}}", true);
    CHECK(r != NULL && cJSON_IsNull(get(r, "result")));
    cJSON_Delete(r);
    CHECK_EQ_INT(fp.reboots, 2);
    test_agent_drop(a);
    /* what was saved is what the next boot loads */
    a = test_agent_boot(&port);
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SERVER), "h:1");
    test_agent_drop(a);
}

static void test_lines_and_frames(void)
{
    agent_t *a = test_agent_boot(&port);
    /* garbage before a frame is not run as a command; lines around frames are */
    fp.out_len = 0;
    test_feed(a, "garbage\"\"\"{\"id\":1,\"method\":\"Sys.GetInfo\"}\"\"\"\nversion\n");
    fake_settle(a, &fp);
    CHECK(!fake_contains(&fp, "unknown command"));
    CHECK(fake_has_line(&fp, "version=" AGENT_VERSION));
    CHECK_EQ_INT(fake_final_lines(&fp), 1);
    CHECK(fake_contains(&fp, "\"\"\"{\"id\":1,"));
    /* the handshake's own """ may open the frame (rpc-uart) */
    fp.out_len = 0;
    test_feed(a, "\x04\"\"\"{\"id\":2,\"method\":\"Sys.GetInfo\"}\"\"\"");
    CHECK(strncmp(fp.out, "\"\"\"\x04\"\"\"\n", 8) == 0);
    CHECK(fake_contains(&fp, "\n\"\"\"{\"id\":2,"));
    test_agent_drop(a);
}

static void b64(const char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)(uint8_t)in[i + 1] << 8;
        if (i + 2 < n) v |= (uint8_t)in[i + 2];
        out[o++] = al[(v >> 18) & 63];
        out[o++] = al[(v >> 12) & 63];
        out[o++] = i + 1 < n ? al[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? al[v & 63] : '=';
    }
    out[o] = '\0';
}

/* FS.Put name with text in chunks of `chunk` bytes (the first without append). */
static void put_file(agent_t *a, const char *name, const char *text, size_t chunk)
{
    char enc[1400], req[1700];
    size_t len = strlen(text);
    for (size_t off = 0; off < len || off == 0; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        b64(text + off, n, enc);
        snprintf(req, sizeof(req),
                 "{\"id\":30,\"method\":\"FS.Put\",\"params\":{\"filename\":\"%s\",\"data\":\"%s\",\"append\":%s}}",
                 name, enc, off ? "true" : "false");
        cJSON *r = call(a, req, true);
        CHECK(r != NULL && cJSON_IsNull(get(r, "result")));
        cJSON_Delete(r);
        if (len == 0) break;
    }
}

static void test_files(void)
{
    fake_port_make(&fp, &port);
    agent_t *a = test_agent_boot(&port);
    put_file(a, "ca.pem", test_cert_pem, 300);
    CHECK(fake_contains(&fp, "hil: rpc: FS.Put id 30: ok ca.pem ("));
    put_file(a, "client.crt", test_cert_pem, 1000);
    put_file(a, "client.key", test_key_pem, 100);
    CHECK(!fake_contains(&fp, "PRIVATE"));
    cJSON *r = call(a, "{\"id\":31,\"method\":\"FS.List\"}", true);
    CHECK(cJSON_IsArray(get(r, "result")) && cJSON_GetArraySize(get(r, "result")) == 3);
    CHECK_STR(cJSON_GetArrayItem(get(r, "result"), 0)->valuestring, "ca.pem");
    cJSON_Delete(r);
    /* the Mongoose OS way: settings name the files */
    r = call(a, "{\"id\":32,\"method\":\"Config.Set\",\"params\":{\"config\":{\"mqtt\":{\"ssl_ca_cert\":"
                "\"ca.pem\",\"ssl_cert\":\"client.crt\",\"ssl_key\":\"client.key\"}}}}", true);
    CHECK(r != NULL && get(r, "result") != NULL);
    cJSON_Delete(r);
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SSL_CA_CERT), test_cert_pem);
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SSL_KEY), test_key_pem);
    check_error(call(a, "{\"id\":33,\"method\":\"Config.Set\",\"params\":{\"config\":{\"http\":{\"ssl_cert\":"
                        "\"nope.pem\"}}}}", true),
                400, "http.ssl_cert: no file 'nope.pem' (FS.Put it first, or give the PEM text)");
    /* a file that is not what the setting wants: the settings' own reason */
    put_file(a, "junk.pem", "hello", 10);
    r = call(a, "{\"id\":34,\"method\":\"Config.Set\",\"params\":{\"config\":{\"http\":{\"ssl_ca_cert\":"
                "\"junk.pem\"}}}}", true);
    CHECK(r != NULL && num(r, "error.code") == 400);
    CHECK(r != NULL && strncmp(str(r, "error.message"), "http.ssl_ca_cert: ", 18) == 0);
    cJSON_Delete(r);
    /* errors */
    check_error(call(a, "{\"id\":35,\"method\":\"FS.Put\",\"params\":{\"filename\":\"../x\",\"data\":\"\"}}", true),
                400, "params.filename: '../x' is not 1..48 of A-Z a-z 0-9 . _ - (not starting with '.')");
    check_error(call(a, "{\"id\":36,\"method\":\"FS.Put\",\"params\":{\"filename\":\"a\",\"data\":\"!!\"}}", true),
                400, "params.data: bad base64");
    check_error(call(a, "{\"id\":37,\"method\":\"FS.Put\",\"params\":{\"filename\":\"a\"}}", true),
                400, "params.data: expected a base64 string");
    check_error(call(a, "{\"id\":38,\"method\":\"FS.Put\",\"params\":{\"data\":\"\"}}", true),
                400, "params.filename: expected a string");
    /* one file at most AGENT_RPC_FILE_MAX bytes */
    static char big[AGENT_RPC_FILE_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fp.out_len = 0;
    char enc[1400], req[1700];
    bool refused = false;
    for (size_t off = 0; off < sizeof(big) - 1 && !refused; off += 900) {
        size_t n = sizeof(big) - 1 - off < 900 ? sizeof(big) - 1 - off : 900;
        b64(big + off, n, enc);
        snprintf(req, sizeof(req),
                 "{\"id\":39,\"method\":\"FS.Put\",\"params\":{\"filename\":\"big\",\"data\":\"%s\",\"append\":%s}}",
                 enc, off ? "true" : "false");
        r = call(a, req, true);
        if (r && get(r, "error")) {
            refused = true;
            CHECK_STR(str(r, "error.message"), "big: file too large (max 8192 bytes)");
            CHECK(off + n > AGENT_RPC_FILE_MAX);
        }
        cJSON_Delete(r);
    }
    CHECK(refused);
    /* too many files */
    bool full = false;
    for (int i = 0; i < AGENT_RPC_FILES; i++) {
        snprintf(req, sizeof(req), "{\"id\":40,\"method\":\"FS.Put\",\"params\":{\"filename\":\"f%d\",\"data\":\"eA==\"}}", i);
        r = call(a, req, true);
        if (r && get(r, "error")) full = strstr(str(r, "error.message"), "too many files (max 8)") != NULL;
        cJSON_Delete(r);
    }
    CHECK(full);
    r = call(a, "{\"id\":41,\"method\":\"FS.List\"}", true);
    CHECK_EQ_INT(cJSON_GetArraySize(get(r, "result")), AGENT_RPC_FILES);
    cJSON_Delete(r);
    /* remove */
    r = call(a, "{\"id\":42,\"method\":\"FS.Remove\",\"params\":{\"filename\":\"ca.pem\"}}", true);
    CHECK(r != NULL && get(r, "error") == NULL);
    cJSON_Delete(r);
    check_error(call(a, "{\"id\":43,\"method\":\"FS.Remove\",\"params\":{\"filename\":\"ca.pem\"}}", true),
                400, "no file 'ca.pem'");
    /* the settings keep the content */
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SSL_CA_CERT), test_cert_pem);
    size_t total = 0;
    for (int i = 0; i < AGENT_RPC_FILES; i++) total += a->rpc.file[i].len;
    CHECK_EQ_INT(total, a->rpc.files_total);
    test_agent_drop(a);
}

int main(void)
{
    fake_port_make(&fp, &port);
    test_handshake_and_info();
    test_errors();
    test_config();
    test_save_reboot();
    test_lines_and_frames();
    test_files();
    TEST_DONE();
}
