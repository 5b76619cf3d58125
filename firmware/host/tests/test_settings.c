/* test_settings.c - settings validation, masking, persistence. */
#include <stdlib.h>

#include "agent_settings.h"
#include "agent_util.h"
#include "test_pem.h"
#include "test_support.h"

static int rng(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(i * 7u + 1u);
    return 0;
}

static int set(settings_t *s, setting_key_t k, const char *v, char *err)
{
    return settings_set(s, k, v, strlen(v), rng, NULL, err, 300);
}

static void test_server(void)
{
    char host[64];
    uint16_t port;
    CHECK(settings_parse_server("127.0.0.1:8883", 14, host, sizeof(host), &port) == 0);
    CHECK_STR(host, "127.0.0.1");
    CHECK_EQ_INT(port, 8883);
    CHECK(settings_parse_server("[::1]:1883", 10, host, sizeof(host), &port) == 0);
    CHECK_STR(host, "::1");
    CHECK_EQ_INT(port, 1883);
    CHECK(settings_parse_server("broker.local:1", 14, host, sizeof(host), &port) == 0);
    CHECK(settings_parse_server("host", 4, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("host:0", 6, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("host:65536", 10, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server(":1883", 5, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("::1:1883", 8, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("[::1]", 5, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("[::1:1883", 9, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("host:88x", 8, host, sizeof(host), &port) != 0);
    CHECK(settings_parse_server("ho st:1", 7, host, sizeof(host), &port) != 0);

    char err[300];
    settings_t s;
    settings_init(&s);
    CHECK(set(&s, SK_MQTT_SERVER, "localhost", err) != 0);
    CHECK_STR(err, "mqtt.server: port required (use host:port)");
    CHECK(set(&s, SK_HTTP_LISTEN_ADDR, ":443", err) == 0);
    CHECK(set(&s, SK_HTTP_LISTEN_ADDR, "443", err) == 0);
    CHECK(set(&s, SK_HTTP_LISTEN_ADDR, "0.0.0.0:8443", err) == 0);
    CHECK(set(&s, SK_HTTP_LISTEN_ADDR, "x", err) != 0);
    settings_free(&s);
}

static void test_psk_and_suites(void)
{
    char err[300];
    settings_t s;
    settings_init(&s);
    CHECK(set(&s, SK_MQTT_SSL_PSK_KEY, "00", err) != 0);
    CHECK_STR(err, "mqtt.ssl_psk_key: expected 32 or 64 hex digits (16 or 32 bytes), got 2");
    CHECK(set(&s, SK_MQTT_SSL_PSK_KEY, "000000000000000000000000deadbeef", err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_PSK_KEY,
              "000000000000000000000000deadbeef000000000000000000000000deadbeef", err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_PSK_KEY, "000000000000000000000000deadbeeg", err) != 0);
    CHECK_STR(err, "mqtt.ssl_psk_key: not a hex digit at position 31");
    CHECK(set(&s, SK_MQTT_SSL_PSK_KEY, "000000000000000000000000deadbeef0", err) != 0);
    CHECK(strstr(err, "got 33") != NULL);

    const char *list = "TLS-PSK-WITH-AES-128-CCM-8:TLS-PSK-WITH-AES-128-GCM-SHA256:"
                       "TLS-ECDHE-PSK-WITH-AES-128-CBC-SHA256:TLS-PSK-WITH-AES-128-CBC-SHA";
    CHECK(set(&s, SK_MQTT_SSL_CIPHER_SUITES, list, err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_CIPHER_SUITES, "TLS-PSK-WITH-AES-128-CCM-8:TLS-BOGUS", err) != 0);
    CHECK_STR(err, "mqtt.ssl_cipher_suites: unknown cipher suite 'TLS-BOGUS'");
    CHECK(set(&s, SK_MQTT_SSL_CIPHER_SUITES, "TLS-PSK-WITH-AES-128-CCM-8::", err) != 0);
    int ids[8];
    char bad[80];
    CHECK(settings_parse_suites(list, strlen(list), ids, 8, bad, sizeof(bad)) == 0);
    CHECK(ids[0] != 0 && ids[3] != 0 && ids[4] == 0);
    CHECK(settings_parse_suites(list, strlen(list), ids, 3, bad, sizeof(bad)) != 0);
    settings_free(&s);
}

static void test_masking(void)
{
    char err[300], out[300];
    settings_t s;
    settings_init(&s);
    settings_format_get(&s, SK_MQTT_PASS, out, sizeof(out));
    CHECK_STR(out, "mqtt.pass=<unset>");
    CHECK(set(&s, SK_MQTT_PASS, "hunter2", err) == 0);
    settings_format_get(&s, SK_MQTT_PASS, out, sizeof(out));
    CHECK_STR(out, "mqtt.pass=<set, 7 bytes>");
    settings_format_get(&s, SK_MQTT_KEEP_ALIVE, out, sizeof(out));
    CHECK_STR(out, "mqtt.keep_alive=60");
    CHECK(set(&s, SK_MQTT_KEEP_ALIVE, "65536", err) != 0);
    CHECK(set(&s, SK_MQTT_KEEP_ALIVE, "0", err) == 0);
    settings_format_get(&s, SK_MQTT_KEEP_ALIVE, out, sizeof(out));
    CHECK_STR(out, "mqtt.keep_alive=0");
    CHECK(set(&s, SK_MQTT_SSL_CA_CERT, test_cert_pem, err) == 0);
    settings_format_get(&s, SK_MQTT_SSL_CA_CERT, out, sizeof(out));
    char want[120];
    snprintf(want, sizeof(want), "mqtt.ssl_ca_cert=<pem %zu bytes crc32 %08lx>", strlen(test_cert_pem),
             (unsigned long)agent_crc32(0, (const uint8_t *)test_cert_pem, strlen(test_cert_pem)));
    CHECK_STR(out, want);
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_key_pem, err) == 0);
    settings_format_get(&s, SK_MQTT_SSL_KEY, out, sizeof(out));
    snprintf(want, sizeof(want), "mqtt.ssl_key=<set, %zu bytes>", strlen(test_key_pem));
    CHECK_STR(out, want);
    /* a certificate is not a key and vice versa; non-PEM is refused */
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_cert_pem, err) != 0);
    CHECK(set(&s, SK_MQTT_SSL_CERT, test_key_pem, err) != 0);
    CHECK(set(&s, SK_MQTT_SSL_CERT, "hello", err) != 0);
    CHECK(strstr(err, "mqtt.ssl_cert: not PEM") == err);
    CHECK(set(&s, SK_MQTT_CLIENT_ID, "a\tb", err) != 0);
    settings_free(&s);
}

static void test_persistence(void)
{
    char err[300];
    settings_t s, t;
    uint8_t *blob;
    size_t len;
    settings_init(&s);
    settings_init(&t);
    CHECK(set(&s, SK_MQTT_SERVER, "127.0.0.1:8883", err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_CA_CERT, test_cert_pem, err) == 0);
    CHECK(set(&s, SK_MQTT_PASS, "p w", err) == 0);
    CHECK(settings_serialize(&s, &blob, &len) == 0);
    CHECK(settings_deserialize(&t, blob, len, err, sizeof(err)) == 0);
    CHECK_STR(settings_get(&t, SK_MQTT_SERVER), "127.0.0.1:8883");
    CHECK_STR(settings_get(&t, SK_MQTT_SSL_CA_CERT), test_cert_pem);
    CHECK_STR(settings_get(&t, SK_MQTT_PASS), "p w");
    CHECK(!settings_is_set(&t, SK_MQTT_USER));
    /* every truncation and every single-byte corruption is rejected */
    int accepted = 0;
    for (size_t cut = 0; cut < len; cut++) {
        settings_t u;
        settings_init(&u);
        if (settings_deserialize(&u, blob, cut, err, sizeof(err)) == 0) accepted++;
        settings_free(&u);
    }
    for (size_t i = 0; i < len; i++) {
        settings_t u;
        settings_init(&u);
        blob[i] ^= 0x01;
        if (settings_deserialize(&u, blob, len, err, sizeof(err)) == 0) accepted++;
        blob[i] ^= 0x01;
        settings_free(&u);
    }
    CHECK_EQ_INT(accepted, 0);
    /* a failed load leaves the previous settings alone */
    CHECK(settings_deserialize(&t, (const uint8_t *)"garbage", 7, err, sizeof(err)) != 0);
    CHECK_STR(settings_get(&t, SK_MQTT_SERVER), "127.0.0.1:8883");
    free(blob);
    settings_free(&s);
    settings_free(&t);
}

static void test_key_pair(void)
{
    char err[300];
    settings_t s;
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    int ret = 0;
    static const char pair_err[] =
        "mqtt.ssl_key does not match mqtt.ssl_cert (clear the other one first to replace the pair)";

    /* settings_parse_pair: the four outcomes */
    static const struct {
        const char *cert, *key;
        settings_pair_t want;
    } cases[] = {
        {test_cert_pem, test_key_pem, SETTINGS_PAIR_OK},
        {test_cert2_pem, test_key2_pem, SETTINGS_PAIR_OK},
        {test_cert_pem, test_key2_pem, SETTINGS_PAIR_MISMATCH},
        {test_cert2_pem, test_key_pem, SETTINGS_PAIR_MISMATCH},
        {test_cert_pem, test_rsa_key_pem, SETTINGS_PAIR_MISMATCH},
        {test_key_pem, test_key_pem, SETTINGS_PAIR_BAD_CERT},
        {test_cert_pem, test_cert_pem, SETTINGS_PAIR_BAD_KEY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mbedtls_x509_crt_init(&crt);
        mbedtls_pk_init(&pk);
        ret = 0;
        CHECK_EQ_INT(settings_parse_pair(cases[i].cert, cases[i].key, &crt, &pk, rng, NULL, &ret),
                     cases[i].want);
        CHECK(cases[i].want == SETTINGS_PAIR_OK ? ret == 0 : ret < 0);
        mbedtls_pk_free(&pk);
        mbedtls_x509_crt_free(&crt);
    }

    /* settings_set: checked whichever half comes second */
    settings_init(&s);
    CHECK(set(&s, SK_MQTT_SSL_CERT, test_cert_pem, err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_key2_pem, err) != 0);
    CHECK_STR(err, pair_err);
    CHECK(!settings_is_set(&s, SK_MQTT_SSL_KEY));
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_key_pem, err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_CERT, test_cert2_pem, err) != 0);
    CHECK_STR(err, pair_err);
    CHECK_STR(settings_get(&s, SK_MQTT_SSL_CERT), test_cert_pem);
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_rsa_key_pem, err) != 0);
    CHECK_STR(settings_get(&s, SK_MQTT_SSL_KEY), test_key_pem);
    settings_clear(&s, SK_MQTT_SSL_KEY);
    CHECK(set(&s, SK_MQTT_SSL_CERT, test_cert2_pem, err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_key2_pem, err) == 0);
    /* other keys are not paired at set time (http.* is checked at http start) */
    CHECK(set(&s, SK_HTTP_SSL_CERT, test_cert_pem, err) == 0);
    CHECK(set(&s, SK_HTTP_SSL_KEY, test_key2_pem, err) == 0);
    CHECK(set(&s, SK_MQTT_SSL_CA_CERT, test_cert_pem, err) == 0);
    /* a stored half that no longer parses is not compared */
    settings_clear(&s, SK_MQTT_SSL_CERT);
    s.v[SK_MQTT_SSL_CERT].value = strdup("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
    s.v[SK_MQTT_SSL_CERT].len = strlen(s.v[SK_MQTT_SSL_CERT].value);
    CHECK(set(&s, SK_MQTT_SSL_KEY, test_key_pem, err) == 0);
    settings_free(&s);
}

/* mqtt.enable: a boolean, "true" or "false", default false */
static void test_bool(void)
{
    char err[300], out[300];
    settings_t s;
    settings_init(&s);
    CHECK(!settings_get_bool(&s, SK_MQTT_ENABLE));
    settings_format_get(&s, SK_MQTT_ENABLE, out, sizeof(out));
    CHECK_STR(out, "mqtt.enable=false");
    CHECK(set(&s, SK_MQTT_ENABLE, "1", err) != 0);
    CHECK_STR(err, "mqtt.enable: expected true or false");
    CHECK(set(&s, SK_MQTT_ENABLE, "TRUE", err) != 0);
    CHECK(set(&s, SK_MQTT_ENABLE, "true ", err) != 0);
    CHECK(set(&s, SK_MQTT_ENABLE, "true", err) == 0);
    CHECK(settings_get_bool(&s, SK_MQTT_ENABLE));
    settings_format_get(&s, SK_MQTT_ENABLE, out, sizeof(out));
    CHECK_STR(out, "mqtt.enable=true");
    CHECK(set(&s, SK_MQTT_ENABLE, "false", err) == 0);
    CHECK(!settings_get_bool(&s, SK_MQTT_ENABLE));
    CHECK_EQ_INT(settings_find("mqtt.enable", 11), SK_MQTT_ENABLE);
    settings_free(&s);
}

/* The reconnect settings (Mongoose OS's names): decimal seconds with at most
 * 3 decimals (milliseconds inside), a count, a boolean; defaults. */
static void test_reconnect_settings(void)
{
    char err[300], out[300];
    settings_t s;
    settings_init(&s);
    /* defaults: min 2 s, max 0 (no reconnect), clean session, 5 queued */
    CHECK_EQ_INT(settings_get_ms(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN), 2000);
    CHECK_EQ_INT(settings_get_ms(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX), 0);
    CHECK(settings_get_bool(&s, SK_MQTT_CLEAN_SESSION));
    CHECK_EQ_INT(settings_get_uint(&s, SK_MQTT_MAX_QUEUE_LENGTH), 5);
    settings_format_get(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN, out, sizeof(out));
    CHECK_STR(out, "mqtt.reconnect_timeout_min=2");
    settings_format_get(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, out, sizeof(out));
    CHECK_STR(out, "mqtt.reconnect_timeout_max=0");
    settings_format_get(&s, SK_MQTT_CLEAN_SESSION, out, sizeof(out));
    CHECK_STR(out, "mqtt.clean_session=true");
    settings_format_get(&s, SK_MQTT_MAX_QUEUE_LENGTH, out, sizeof(out));
    CHECK_STR(out, "mqtt.max_queue_length=5");
    CHECK_EQ_INT(settings_find("mqtt.reconnect_timeout_min", 26), SK_MQTT_RECONNECT_TIMEOUT_MIN);
    CHECK_EQ_INT(settings_find("mqtt.reconnect_timeout_max", 26), SK_MQTT_RECONNECT_TIMEOUT_MAX);
    CHECK_EQ_INT(settings_find("mqtt.clean_session", 18), SK_MQTT_CLEAN_SESSION);
    CHECK_EQ_INT(settings_find("mqtt.max_queue_length", 21), SK_MQTT_MAX_QUEUE_LENGTH);

    static const struct {
        const char *v;
        uint32_t ms;
    } max_ok[] = {{"0", 0}, {"0.001", 1}, {"2", 2000}, {"1.5", 1500}, {"3600", 3600000}, {"0.2", 200}};
    for (size_t i = 0; i < sizeof(max_ok) / sizeof(max_ok[0]); i++) {
        CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, max_ok[i].v, err) == 0);
        CHECK_EQ_INT(settings_get_ms(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX), max_ok[i].ms);
        settings_format_get(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, out, sizeof(out));
        char want[80];
        snprintf(want, sizeof(want), "mqtt.reconnect_timeout_max=%s", max_ok[i].v); /* as given */
        CHECK_STR(out, want);
    }
    static const char *const bad[] = {"-1", "1.2345", "abc", "3601", "3600.001", ".5", "2.", "1 ",
                                      "1e3", "0x1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, bad[i], err) != 0);
        CHECK_STR(err, "mqtt.reconnect_timeout_max: expected seconds 0..3600 with at most 3 decimals "
                       "(e.g. 2 or 0.5)");
        CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN, bad[i], err) != 0);
        CHECK_STR(err, "mqtt.reconnect_timeout_min: expected seconds 0.001..3600 with at most 3 "
                       "decimals (e.g. 2 or 0.5)");
    }
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, "", err) != 0); /* empty (RPC "") */
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, "12345678901234567", err) != 0);
    CHECK(strstr(err, "value too long") != NULL);
    /* min: 0 is refused (0.001 is the least) */
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN, "0", err) != 0);
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN, "0.000", err) != 0);
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN, "0.001", err) == 0);
    CHECK_EQ_INT(settings_get_ms(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN), 1);
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN, "3600", err) == 0);
    CHECK_EQ_INT(settings_get_ms(&s, SK_MQTT_RECONNECT_TIMEOUT_MIN), 3600000);

    CHECK(set(&s, SK_MQTT_MAX_QUEUE_LENGTH, "0", err) == 0);
    CHECK_EQ_INT(settings_get_uint(&s, SK_MQTT_MAX_QUEUE_LENGTH), 0);
    CHECK(set(&s, SK_MQTT_MAX_QUEUE_LENGTH, "16", err) == 0);
    CHECK_EQ_INT(settings_get_uint(&s, SK_MQTT_MAX_QUEUE_LENGTH), 16);
    static const char *const bad_n[] = {"17", "-1", "1.5", "x", "99999"};
    for (size_t i = 0; i < sizeof(bad_n) / sizeof(bad_n[0]); i++) {
        CHECK(set(&s, SK_MQTT_MAX_QUEUE_LENGTH, bad_n[i], err) != 0);
        if (strstr(err, "value too long") == NULL) {
            CHECK_STR(err, "mqtt.max_queue_length: expected a number 0..16");
        }
    }
    CHECK_EQ_INT(settings_get_uint(&s, SK_MQTT_MAX_QUEUE_LENGTH), 16);

    CHECK(set(&s, SK_MQTT_CLEAN_SESSION, "no", err) != 0);
    CHECK_STR(err, "mqtt.clean_session: expected true or false");
    CHECK(set(&s, SK_MQTT_CLEAN_SESSION, "false", err) == 0);
    CHECK(!settings_get_bool(&s, SK_MQTT_CLEAN_SESSION));

    /* they persist like the others */
    uint8_t *blob;
    size_t len;
    settings_t t;
    settings_init(&t);
    CHECK(set(&s, SK_MQTT_RECONNECT_TIMEOUT_MAX, "1.5", err) == 0);
    CHECK(settings_serialize(&s, &blob, &len) == 0);
    CHECK(settings_deserialize(&t, blob, len, err, sizeof(err)) == 0);
    CHECK_EQ_INT(settings_get_ms(&t, SK_MQTT_RECONNECT_TIMEOUT_MAX), 1500);
    CHECK_EQ_INT(settings_get_ms(&t, SK_MQTT_RECONNECT_TIMEOUT_MIN), 3600000);
    CHECK_EQ_INT(settings_get_uint(&t, SK_MQTT_MAX_QUEUE_LENGTH), 16);
    CHECK(!settings_get_bool(&t, SK_MQTT_CLEAN_SESSION));
    free(blob);
    settings_free(&t);
    settings_free(&s);
}

int main(void)
{
    test_reconnect_settings();
    test_bool();
    test_server();
    test_psk_and_suites();
    test_masking();
    test_persistence();
    test_key_pair();
    TEST_DONE();
}
