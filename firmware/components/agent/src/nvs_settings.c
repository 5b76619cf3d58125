/* nvs_settings.c - settings provisioned in an NVS partition, as an ESP-IDF
 * esp-mqtt app reads them: namespace "hil", keys of at most 15 characters,
 * asked of the port one by one (agent_port_t.nvs_get: the host port reads
 * them from an image file with nvs_image.c, `hil-agent --nvs <image>`; the
 * ESP-IDF port from its `nvs` partition with nvs_get_str / nvs_get_blob /
 * nvs_get_u8). Each value is mapped to its setting and validated by the
 * settings code (settings_set, as `config set`); the values apply together
 * or not at all (on a copy of the settings), for this boot only: they are
 * not saved (a later `config save` saves whatever the settings then are).
 *
 *   key            type    setting
 *   broker_uri     string  mqtt.server ("mqtts://host:port" or "mqtt://host:port";
 *                          without a port: 8883 / 1883)
 *   client_id      string  mqtt.client_id
 *   ca_cert        string  mqtt.ssl_ca_cert (PEM)
 *   client_cert    string  mqtt.ssl_cert (PEM)
 *   client_key     string  mqtt.ssl_key (PEM)
 *   psk_identity   string  mqtt.ssl_psk_identity
 *   psk_key        blob    mqtt.ssl_psk_key: the raw key, 16 or 32 bytes (as
 *                          esp-mqtt's psk_hint_key takes it)
 *   cipher_suites  string  mqtt.ssl_cipher_suites
 *   mqtt_enable    u8      mqtt.enable: 1 true, 0 false
 *
 * Any problem (a store refused as a whole, a key of another type, a value
 * the settings refuse) is one line "E ... nvs: <what> (no settings from
 * NVS)" naming the key, never the value, and the agent starts with the
 * settings it had (saved ones, or defaults). A leaf: settings.c, util.c,
 * output.c, rng.c and the port. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"

typedef struct {
    const char *key; /* NVS key, at most 15 characters */
    uint8_t type;    /* AGENT_NVS_TYPE_* */
    setting_key_t setting;
} nvs_map_t;

static const nvs_map_t map[] = {
    {"broker_uri", AGENT_NVS_TYPE_STR, SK_MQTT_SERVER},
    {"client_id", AGENT_NVS_TYPE_STR, SK_MQTT_CLIENT_ID},
    {"ca_cert", AGENT_NVS_TYPE_STR, SK_MQTT_SSL_CA_CERT},
    {"client_cert", AGENT_NVS_TYPE_STR, SK_MQTT_SSL_CERT},
    {"client_key", AGENT_NVS_TYPE_STR, SK_MQTT_SSL_KEY},
    {"psk_identity", AGENT_NVS_TYPE_STR, SK_MQTT_SSL_PSK_IDENTITY},
    {"psk_key", AGENT_NVS_TYPE_BLOB, SK_MQTT_SSL_PSK_KEY},
    {"cipher_suites", AGENT_NVS_TYPE_STR, SK_MQTT_SSL_CIPHER_SUITES},
    {"mqtt_enable", AGENT_NVS_TYPE_U8, SK_MQTT_ENABLE},
};

#define NVS_VALUE_CAP (SETTING_MAX_LEN + 1) /* a string with its NUL */

/* "mqtts://host:port" -> "host:port" into out; NULL, or what is wrong. */
static const char *map_uri(const char *uri, size_t len, char *out, size_t cap)
{
    const char *rest;
    const char *dflt;
    if (len >= 8 && memcmp(uri, "mqtts://", 8) == 0) {
        rest = uri + 8;
        dflt = "8883";
    } else if (len >= 7 && memcmp(uri, "mqtt://", 7) == 0) {
        rest = uri + 7;
        dflt = "1883";
    } else {
        return "expected mqtts://host:port or mqtt://host:port";
    }
    size_t n = len - (size_t)(rest - uri);
    if (n > 0 && rest[n - 1] == '/') n--; /* "mqtts://host:8883/" */
    if (n == 0) return "no host after the scheme";
    if (memchr(rest, '/', n) || memchr(rest, '@', n)) return "only host:port after the scheme (no path, no user)";
    /* a port: ":" after the host ([v6]: after its "]"); the settings check the rest */
    bool has_port;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', n);
        has_port = close && (size_t)(close - rest) + 1 < n && close[1] == ':';
    } else {
        has_port = memchr(rest, ':', n) != NULL;
    }
    int w = has_port ? snprintf(out, cap, "%.*s", (int)n, rest)
                     : snprintf(out, cap, "%.*s:%s", (int)n, rest, dflt);
    if (w < 0 || (size_t)w >= cap) return "too long";
    return NULL;
}

void agent_nvs_settings(agent_t *a)
{
    settings_t tmp;
    char text[300]; /* a value made from the image's: may be the PSK in hex */
    char names[300] = "";
    size_t names_len = 0;
    unsigned loaded = 0;
    uint8_t *buf;
    if (!a->port.nvs_get) return;
    settings_init(&tmp);
    buf = malloc(NVS_VALUE_CAP);
    if (!buf || settings_copy(&tmp, &a->settings) != 0) {
        agent_log(a, 'E', "nvs: out of memory (no settings from NVS)");
        free(buf);
        settings_free(&tmp);
        return;
    }
    bool pair_cleared = false;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const nvs_map_t *m = &map[i];
        const char *name = settings_def(m->setting)->name;
        char err[300] = "";
        size_t len = 0;
        const char *value = (const char *)buf;
        size_t vlen = 0;
        int r = a->port.nvs_get(a->port.ctx, m->key, m->type, buf, NVS_VALUE_CAP, &len, err,
                                sizeof(err));
        if (r == AGENT_NVS_NOT_FOUND) continue;
        if (r == AGENT_NVS_UNAVAILABLE) {
            agent_log(a, 'E', "nvs: %s (no settings from NVS)", err);
            goto out;
        }
        if (r != AGENT_NVS_OK || len > NVS_VALUE_CAP) {
            agent_log(a, 'E', "nvs: hil/%s: %s (no settings from NVS)", m->key, err[0] ? err : "unreadable");
            goto out;
        }
        const char *bad = NULL;
        if (m->type == AGENT_NVS_TYPE_STR) {
            if (len == 0 || buf[len - 1] != '\0' || memchr(buf, '\0', len - 1)) {
                bad = "not a NUL-terminated string";
            }
            vlen = len ? len - 1 : 0;
        } else if (m->type == AGENT_NVS_TYPE_U8) {
            if (len != 1 || buf[0] > 1) bad = "expected a u8 0 or 1";
            value = len == 1 && buf[0] == 1 ? "true" : "false";
            vlen = strlen(value);
        } else { /* psk_key: the raw key -> the setting's hex */
            if (len != 16 && len != 32) {
                snprintf(text, sizeof(text), "expected a blob of 16 or 32 bytes (the raw key), got %zu", len);
                bad = text;
            } else {
                for (size_t k = 0; k < len; k++) snprintf(text + 2 * k, 3, "%02x", buf[k]);
                value = text;
                vlen = 2 * len;
            }
        }
        if (!bad && m->setting == SK_MQTT_SERVER) {
            char server[300];
            bad = map_uri(value, vlen, server, sizeof(server));
            if (!bad) {
                memcpy(text, server, sizeof(text) < sizeof(server) ? sizeof(text) : sizeof(server));
                text[sizeof(text) - 1] = '\0';
                value = text;
                vlen = strlen(text);
            }
        }
        if (bad) {
            agent_log(a, 'E', "nvs: hil/%s: %s (no settings from NVS)", m->key, bad);
            goto out;
        }
        /* the image's client certificate and key replace the saved pair as a whole */
        if ((m->setting == SK_MQTT_SSL_CERT || m->setting == SK_MQTT_SSL_KEY) && !pair_cleared) {
            settings_clear(&tmp, SK_MQTT_SSL_CERT);
            settings_clear(&tmp, SK_MQTT_SSL_KEY);
            pair_cleared = true;
        }
        if (settings_set(&tmp, m->setting, value, vlen, agent_rng, a, err, sizeof(err)) != 0) {
            agent_log(a, 'E', "nvs: hil/%s: %s (no settings from NVS)", m->key, err);
            goto out;
        }
        int w = snprintf(names + names_len, sizeof(names) - names_len, "%s%s", loaded ? " " : "", name);
        if (w > 0 && (size_t)w < sizeof(names) - names_len) names_len += (size_t)w;
        loaded++;
    }
    if (loaded) {
        settings_free(&a->settings);
        a->settings = tmp; /* the values move */
        settings_init(&tmp);
        agent_log(a, 'I', "nvs: %u settings from namespace hil (this boot only): %s", loaded, names);
    }
out:
    mbedtls_platform_zeroize(text, sizeof(text));
    mbedtls_platform_zeroize(buf, NVS_VALUE_CAP);
    free(buf);
    settings_free(&tmp);
}
