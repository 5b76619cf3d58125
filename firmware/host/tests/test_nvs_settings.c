/* test_nvs_settings.c - settings provisioned in an NVS partition (nvs_settings.c):
 * namespace "hil" read through agent_port_t.nvs_get, here from the image
 * Espressif's generator made (tests/nvs/provision.csv -> provision_v2.bin,
 * read with nvs_image.c as the host port reads --nvs), and from a fake store
 * for the refusals: every key mapped, validated by the settings code, all
 * applied or none, one E line naming the key and never the value, this boot
 * only (not saved), and the boot connect (mqtt_enable = 1) follows them. */
#include <stdlib.h>

#include "nvs_fixtures.h"
#include "nvs_image.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;
static nvs_image_t img;
static int img_status; /* nvs_image_open's */
static char img_err[160];

/* nvs_get from the image, as the host port does */
static int image_get(void *ctx, const char *key, uint8_t type, void *buf, size_t cap, size_t *len,
                     char *err, size_t errlen)
{
    nvs_image_value_t v;
    (void)ctx;
    if (img_status != NVS_IMAGE_OK) {
        snprintf(err, errlen, "image refused: %s", img_err);
        return AGENT_NVS_UNAVAILABLE;
    }
    if (nvs_image_find(&img, "hil", key, &v) != NVS_IMAGE_OK) return AGENT_NVS_NOT_FOUND;
    if ((uint8_t)v.type != type) {
        snprintf(err, errlen, "stored as %s, expected %s", nvs_image_type_name(v.type),
                 nvs_image_type_name((nvs_image_type_t)type));
        return AGENT_NVS_ERROR;
    }
    if (nvs_image_read(&img, &v, buf, cap, len) != NVS_IMAGE_OK) {
        snprintf(err, errlen, "too large");
        return AGENT_NVS_ERROR;
    }
    return AGENT_NVS_OK;
}

/* a store with one key overridden: key, type and raw bytes */
static const char *fake_key;
static uint8_t fake_type;
static const uint8_t *fake_val;
static size_t fake_len;

static int fake_get(void *ctx, const char *key, uint8_t type, void *buf, size_t cap, size_t *len,
                    char *err, size_t errlen)
{
    if (strcmp(key, fake_key) != 0) return image_get(ctx, key, type, buf, cap, len, err, errlen);
    if (type != fake_type) {
        snprintf(err, errlen, "stored as another type");
        return AGENT_NVS_ERROR;
    }
    if (fake_len > cap) return AGENT_NVS_ERROR;
    memcpy(buf, fake_val, fake_len);
    *len = fake_len;
    return AGENT_NVS_OK;
}

static agent_t *boot_with(int (*get)(void *, const char *, uint8_t, void *, size_t, size_t *, char *, size_t))
{
    fake_port_make(&fp, &port);
    port.nvs_get = get;
    fp.net_up = true;
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    return a;
}

static const char *get_line(agent_t *a, const char *key)
{
    char cmd[80];
    snprintf(cmd, sizeof(cmd), "config get %s", key);
    fake_cmd(a, &fp, cmd);
    static char line[400];
    snprintf(line, sizeof(line), "%s", fp.out);
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    return line;
}

static void from_image(void)
{
    img_status = nvs_image_open(&img, nvs_provision_v2, sizeof(nvs_provision_v2), img_err, sizeof(img_err));
    CHECK_EQ_INT(img_status, NVS_IMAGE_OK);
    agent_t *a = boot_with(image_get);
    CHECK(fake_contains(&fp, " hil: nvs: 6 settings from namespace hil (this boot only): mqtt.server "
                             "mqtt.client_id mqtt.ssl_psk_identity mqtt.ssl_psk_key "
                             "mqtt.ssl_cipher_suites mqtt.enable\n"));
    CHECK(!fake_contains(&fp, "00112233445566778899aabbccddeeff"));
    CHECK_STR(get_line(a, "mqtt.server"), "mqtt.server=127.0.0.1:1");
    CHECK_STR(get_line(a, "mqtt.client_id"), "mqtt.client_id=dev-nvs-1");
    CHECK_STR(get_line(a, "mqtt.ssl_psk_key"), "mqtt.ssl_psk_key=<set, 16 bytes>");
    CHECK_STR(get_line(a, "mqtt.enable"), "mqtt.enable=true");
    CHECK_STR(settings_get(&a->settings, SK_MQTT_SSL_PSK_KEY), "00112233445566778899aabbccddeeff");
    /* this boot only: nothing was saved */
    CHECK(!fp.has_store);
    /* the boot connect follows the image (nothing listens on port 1) */
    fp.out_len = 0;
    fp.out[0] = '\0';
    agent_boot(a);
    CHECK(fake_contains(&fp, " hil: MQTT0 connecting to 127.0.0.1:1\n"));
    CHECK(fake_settle(a, &fp));
    CHECK(fake_contains(&fp, " hil: mqtt.enable: mqtt connect: TCP connect failed ("));
    test_agent_drop(a);
}

/* The image's values override saved ones; a refusal keeps the saved ones. */
static void refusals(void)
{
    static const struct {
        const char *key;
        uint8_t type;
        const char *val;
        size_t len;
        const char *line;
    } cases[] = {
        {"psk_key", AGENT_NVS_TYPE_BLOB, "\x01\x02\x03", 3,
         "nvs: hil/psk_key: expected a blob of 16 or 32 bytes (the raw key), got 3 (no settings from NVS)"},
        {"psk_key", AGENT_NVS_TYPE_STR, "0011", 5, "nvs: hil/psk_key: stored as another type (no settings from NVS)"},
        {"broker_uri", AGENT_NVS_TYPE_STR, "http://h:1", 11,
         "nvs: hil/broker_uri: expected mqtts://host:port or mqtt://host:port (no settings from NVS)"},
        {"broker_uri", AGENT_NVS_TYPE_STR, "mqtts://h:99999", 16,
         "nvs: hil/broker_uri: mqtt.server: port must be a number 1..65535 (no settings from NVS)"},
        {"broker_uri", AGENT_NVS_TYPE_STR, "mqtts://h/x", 12,
         "nvs: hil/broker_uri: only host:port after the scheme (no path, no user) (no settings from NVS)"},
        {"mqtt_enable", AGENT_NVS_TYPE_U8, "\x02", 1, "nvs: hil/mqtt_enable: expected a u8 0 or 1 (no settings from NVS)"},
        {"client_id", AGENT_NVS_TYPE_STR, "a\tb", 4,
         "nvs: hil/client_id: mqtt.client_id: control characters are not allowed (no settings from NVS)"},
        {"cipher_suites", AGENT_NVS_TYPE_STR, "NOPE", 5,
         "nvs: hil/cipher_suites: mqtt.ssl_cipher_suites: unknown cipher suite 'NOPE' (no settings from NVS)"},
        {"ca_cert", AGENT_NVS_TYPE_STR, "not pem", 8,
         "nvs: hil/ca_cert: mqtt.ssl_ca_cert: not PEM (expected -----BEGIN ...) (no settings from NVS)"},
        {"client_id", AGENT_NVS_TYPE_STR, "abc", 3, "nvs: hil/client_id: not a NUL-terminated string (no settings from NVS)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_key = cases[i].key;
        fake_type = cases[i].type;
        fake_val = (const uint8_t *)cases[i].val;
        fake_len = cases[i].len;
        fake_port_make(&fp, &port);
        port.nvs_get = fake_get;
        /* a saved server, as a previous boot left it */
        {
            settings_t s;
            char err[100];
            settings_init(&s);
            CHECK_EQ_INT(settings_set(&s, SK_MQTT_SERVER, "saved:1", 7, NULL, NULL, err, sizeof(err)), 0);
            CHECK(fake_store_settings(&fp, &s));
        }
        agent_t *a = calloc(1, sizeof(*a));
        agent_init(a, &port);
        char want[300];
        snprintf(want, sizeof(want), " hil: %s\n", cases[i].line);
        if (!fake_contains(&fp, want)) {
            fprintf(stderr, "case %zu: no '%s' in:\n%s", i, cases[i].line, fp.out);
            test_failures++;
        }
        CHECK(!fake_contains(&fp, "nvs: 6 settings"));
        CHECK(!fake_contains(&fp, "0011")); /* never the value */
        CHECK_STR(get_line(a, "mqtt.server"), "mqtt.server=saved:1");
        CHECK_STR(get_line(a, "mqtt.enable"), "mqtt.enable=false");
        test_agent_drop(a);
    }

    /* a damaged image: one E line, no settings from it */
    static uint8_t bad[sizeof(nvs_provision_v2)];
    memcpy(bad, nvs_provision_v2, sizeof(bad));
    bad[64 + 32 + 10] ^= 0x40; /* inside page 0's first entry: its CRC no longer matches */
    img_status = nvs_image_open(&img, bad, sizeof(bad), img_err, sizeof(img_err));
    CHECK_EQ_INT(img_status, NVS_IMAGE_BAD);
    agent_t *a = boot_with(image_get);
    CHECK(fake_contains(&fp, " hil: nvs: image refused: page 0 entry "));
    CHECK(fake_contains(&fp, " (no settings from NVS)\n"));
    CHECK_STR(get_line(a, "mqtt.server"), "mqtt.server=<unset>");
    test_agent_drop(a);
    /* no store at all (a port without nvs_get): nothing, not even a line */
    fake_port_make(&fp, &port);
    a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    CHECK(!fake_contains(&fp, "nvs"));
    test_agent_drop(a);
}

/* broker_uri: the scheme's default port, [v6], a trailing slash */
static void uri_mapping(void)
{
    static const struct {
        const char *uri;
        const char *server;
    } cases[] = {
        {"mqtts://broker.example", "broker.example:8883"},
        {"mqtt://broker.example", "broker.example:1883"},
        {"mqtts://10.0.0.2:8884/", "10.0.0.2:8884"},
        {"mqtt://[::1]", "[::1]:1883"},
        {"mqtts://[::1]:18883", "[::1]:18883"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[100];
        fake_key = "broker_uri";
        fake_type = AGENT_NVS_TYPE_STR;
        fake_val = (const uint8_t *)cases[i].uri;
        fake_len = strlen(cases[i].uri) + 1;
        agent_t *a = boot_with(fake_get);
        snprintf(want, sizeof(want), "mqtt.server=%s", cases[i].server);
        CHECK_STR(get_line(a, "mqtt.server"), want);
        test_agent_drop(a);
    }
}

int main(void)
{
    from_image();
    uri_mapping();
    refusals();
    TEST_DONE();
}
