/* settings.c - settings table, validation, masking, persistence. */
#include "agent_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_limits.h"
#include "agent_mbedtls_compat.h"
#include "agent_util.h"

static const setting_def_t defs[SK_COUNT] = {
    [SK_MQTT_SERVER] = {"mqtt.server", SKIND_SERVER, false, 262, NULL, 0u, 0u},
    [SK_MQTT_CLIENT_ID] = {"mqtt.client_id", SKIND_STRING, false, 256, NULL, 0u, 0u},
    [SK_MQTT_USER] = {"mqtt.user", SKIND_STRING, false, 256, NULL, 0u, 0u},
    [SK_MQTT_PASS] = {"mqtt.pass", SKIND_STRING, true, 256, NULL, 0u, 0u},
    [SK_MQTT_KEEP_ALIVE] = {"mqtt.keep_alive", SKIND_U16, false, 5, "60", 0u, 0u},
    [SK_MQTT_SSL_CA_CERT] = {"mqtt.ssl_ca_cert", SKIND_PEM_CERT, false, SETTING_MAX_LEN, NULL, 0u, 0u},
    [SK_MQTT_SSL_CERT] = {"mqtt.ssl_cert", SKIND_PEM_CERT, false, SETTING_MAX_LEN, NULL, 0u, 0u},
    [SK_MQTT_SSL_KEY] = {"mqtt.ssl_key", SKIND_PEM_KEY, true, SETTING_MAX_LEN, NULL, 0u, 0u},
    [SK_MQTT_SSL_PSK_IDENTITY] = {"mqtt.ssl_psk_identity", SKIND_STRING, false, 128, NULL, 0u, 0u},
    [SK_MQTT_SSL_PSK_KEY] = {"mqtt.ssl_psk_key", SKIND_PSK_HEX, true, 64, NULL, 0u, 0u},
    [SK_MQTT_SSL_CIPHER_SUITES] = {"mqtt.ssl_cipher_suites", SKIND_SUITES, false, 1024, NULL, 0u, 0u},
    [SK_HTTP_LISTEN_ADDR] = {"http.listen_addr", SKIND_LISTEN, false, 262, NULL, 0u, 0u},
    [SK_HTTP_SSL_CERT] = {"http.ssl_cert", SKIND_PEM_CERT, false, SETTING_MAX_LEN, NULL, 0u, 0u},
    [SK_HTTP_SSL_KEY] = {"http.ssl_key", SKIND_PEM_KEY, true, SETTING_MAX_LEN, NULL, 0u, 0u},
    [SK_HTTP_SSL_CA_CERT] = {"http.ssl_ca_cert", SKIND_PEM_CERT, false, SETTING_MAX_LEN, NULL, 0u, 0u},
    [SK_WIFI_STA_SSID] = {"wifi.sta.ssid", SKIND_STRING, false, 32, NULL, 0u, 0u},
    [SK_WIFI_STA_PASS] = {"wifi.sta.pass", SKIND_STRING, true, 64, NULL, 0u, 0u},
    /* Mongoose OS's name: connect at boot (agent.c) */
    [SK_MQTT_ENABLE] = {"mqtt.enable", SKIND_BOOL, false, 5, "false", 0u, 0u},
    /* Mongoose OS's names (mqtt.c: reconnect after a lost session). Mongoose OS's
     * reconnect_timeout_max defaults to 60; here 0 (no reconnect) is the default */
    [SK_MQTT_RECONNECT_TIMEOUT_MIN] = {"mqtt.reconnect_timeout_min", SKIND_SECONDS, false, 16, "2",
                                       1u, AGENT_MQTT_RECONNECT_MAX_MS},
    [SK_MQTT_RECONNECT_TIMEOUT_MAX] = {"mqtt.reconnect_timeout_max", SKIND_SECONDS, false, 16, "0",
                                       0u, AGENT_MQTT_RECONNECT_MAX_MS},
    [SK_MQTT_CLEAN_SESSION] = {"mqtt.clean_session", SKIND_BOOL, false, 5, "true", 0u, 0u},
    [SK_MQTT_MAX_QUEUE_LENGTH] = {"mqtt.max_queue_length", SKIND_UINT, false, 5, "5", 0u,
                                  AGENT_MQTT_QUEUE_MAX},
};

const setting_def_t *settings_def(setting_key_t key)
{
    return (unsigned)key < SK_COUNT ? &defs[key] : NULL;
}

int settings_find(const char *name, size_t len)
{
    for (int i = 0; i < SK_COUNT; i++) {
        if (strlen(defs[i].name) == len && memcmp(defs[i].name, name, len) == 0) return i;
    }
    return -1;
}

void settings_init(settings_t *s)
{
    memset(s, 0, sizeof(*s));
}

void settings_clear(settings_t *s, setting_key_t key)
{
    setting_value_t *v = &s->v[key];
    if (v->value) {
        mbedtls_platform_zeroize(v->value, v->len); /* values may be secrets */
        free(v->value);
    }
    v->value = NULL;
    v->len = 0;
}

void settings_free(settings_t *s)
{
    for (int i = 0; i < SK_COUNT; i++) settings_clear(s, (setting_key_t)i);
}

int settings_copy(settings_t *dst, const settings_t *src)
{
    settings_free(dst);
    for (int i = 0; i < SK_COUNT; i++) {
        const setting_value_t *v = &src->v[i];
        if (!v->value) continue;
        char *copy = malloc(v->len + 1);
        if (!copy) {
            settings_free(dst);
            return -1;
        }
        memcpy(copy, v->value, v->len + 1);
        dst->v[i].value = copy;
        dst->v[i].len = v->len;
    }
    return 0;
}

/* ---- per-kind validation ---------------------------------------------- */

static int parse_port(const char *p, size_t n, uint32_t min, uint16_t *port)
{
    uint32_t v;
    if (agent_parse_u32(p, n, 65535, &v) != 0 || v < min) return -1;
    *port = (uint16_t)v;
    return 0;
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* Shared by server and listen address. allow_empty (listen address): the
 * host may be empty and port 0 ("any free port") is allowed. */
static int parse_hostport(const char *value, size_t len, char *host, size_t hostcap,
                          uint16_t *port, bool allow_empty, const char **why)
{
    const char *colon;
    size_t hlen;
    const char *h = value;
    if (len > 0 && value[0] == '[') {
        const char *close = memchr(value, ']', len);
        if (!close) {
            *why = "missing ']' after IPv6 address";
            return -1;
        }
        h = value + 1;
        hlen = (size_t)(close - h);
        if (hlen == 0) {
            *why = "empty IPv6 address";
            return -1;
        }
        for (size_t i = 0; i < hlen; i++) {
            char c = h[i];
            if (!(c == ':' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                  (c >= 'A' && c <= 'F'))) {
                *why = "bad character in IPv6 address";
                return -1;
            }
        }
        colon = close + 1;
        if ((size_t)(colon - value) >= len || *colon != ':') {
            *why = "port required (use [addr]:port)";
            return -1;
        }
    } else {
        colon = memchr(value, ':', len);
        if (!colon) {
            *why = "port required (use host:port)";
            return -1;
        }
        hlen = (size_t)(colon - value);
        if (memchr(colon + 1, ':', len - hlen - 1)) {
            *why = "IPv6 addresses must be written [addr]:port";
            return -1;
        }
        for (size_t i = 0; i < hlen; i++) {
            if (!host_char_ok(value[i])) {
                *why = "bad character in host name";
                return -1;
            }
        }
        if (hlen == 0 && !allow_empty) {
            *why = "empty host (use host:port)";
            return -1;
        }
    }
    if (hlen + 1 > hostcap) {
        *why = "host name too long";
        return -1;
    }
    size_t plen = len - (size_t)(colon + 1 - value);
    if (parse_port(colon + 1, plen, allow_empty ? 0u : 1u, port) != 0) {
        *why = allow_empty ? "port must be a number 0..65535" : "port must be a number 1..65535";
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

int settings_parse_server(const char *value, size_t len, char *host, size_t hostcap,
                          uint16_t *port)
{
    const char *why;
    return parse_hostport(value, len, host, hostcap, port, false, &why);
}

int settings_parse_listen(const char *value, size_t len, char *host, size_t hostcap,
                          uint16_t *port)
{
    const char *why;
    uint32_t p;
    if (hostcap == 0) return -1;
    if (agent_parse_u32(value, len, 65535, &p) == 0) { /* bare "443" */
        host[0] = '\0';
        *port = (uint16_t)p;
        return 0;
    }
    return parse_hostport(value, len, host, hostcap, port, true, &why);
}

int settings_parse_suites(const char *value, size_t len, int *ids, size_t cap, char *bad,
                          size_t badlen)
{
    size_t n = 0;
    size_t start = 0;
    if (cap == 0) return -1;
    while (start <= len) {
        size_t end = start;
        char name[96];
        bool cut;
        while (end < len && value[end] != ':') end++;
        size_t nlen = end - start;
        if (nlen == 0 || nlen >= sizeof(name)) {
            (void)agent_escape_quoted((const uint8_t *)value + start, nlen, SETTING_SUITE_SHOWN, bad,
                                      badlen, &cut);
            return -1;
        }
        memcpy(name, value + start, nlen);
        name[nlen] = '\0';
        int id = mbedtls_ssl_get_ciphersuite_id(name);
        if (id == 0) {
            (void)agent_escape_quoted((const uint8_t *)name, nlen, SETTING_SUITE_SHOWN, bad, badlen,
                                      &cut);
            return -1;
        }
        if (n + 1 >= cap) {
            (void)agent_escape_quoted((const uint8_t *)name, nlen, SETTING_SUITE_SHOWN, bad, badlen,
                                      &cut);
            size_t used = strlen(bad);
            snprintf(bad + used, badlen - used, " (too many suites)");
            return -1;
        }
        ids[n++] = id;
        start = end + 1;
    }
    ids[n] = 0;
    return 0;
}

static bool is_printable_line(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

static void pem_error(char *err, size_t errlen, const char *name, const char *what, int ret)
{
    char msg[128];
    agent_strerror(ret, msg, sizeof(msg));
    snprintf(err, errlen, "%s: not a valid PEM %s (-0x%04x %s)", name, what, (unsigned)-ret, msg);
}

/* SKIND_SERVER / SKIND_LISTEN */
static int validate_address(const setting_def_t *d, const char *value, size_t len, char *err,
                            size_t errlen)
{
    char host[256];
    uint16_t port;
    const char *why = "";
    if (d->kind == SKIND_LISTEN) {
        /* Mongoose-OS style: "443" alone is allowed; 0 = any free port */
        uint32_t p;
        if (agent_parse_u32(value, len, 65535, &p) == 0) return 0;
        size_t digits = 0;
        while (digits < len && value[digits] >= '0' && value[digits] <= '9') digits++;
        if (len > 0 && digits == len) {
            snprintf(err, errlen, "%s: port must be a number 0..65535", d->name);
            return -1;
        }
    }
    if (parse_hostport(value, len, host, sizeof(host), &port, d->kind == SKIND_LISTEN, &why) != 0) {
        snprintf(err, errlen, "%s: %s", d->name, why);
        return -1;
    }
    return 0;
}

static int validate_psk_hex(const setting_def_t *d, const char *value, size_t len, char *err,
                            size_t errlen)
{
    uint8_t tmp[32];
    size_t outlen, bad;
    int hr = agent_hex_decode(value, len, tmp, sizeof(tmp), &outlen, &bad);
    mbedtls_platform_zeroize(tmp, sizeof(tmp)); /* the key itself: only the syntax matters */
    if (hr != 0 && bad != SIZE_MAX) {
        snprintf(err, errlen, "%s: not a hex digit at position %zu", d->name, bad);
        return -1;
    }
    if (len != 32 && len != 64) {
        snprintf(err, errlen, "%s: expected 32 or 64 hex digits (16 or 32 bytes), got %zu", d->name,
                 len);
        return -1;
    }
    return 0;
}

/* SKIND_PEM_CERT / SKIND_PEM_KEY: parsed with mbedTLS. */
static int validate_pem(const setting_def_t *d, const char *value, size_t len, settings_rng_fn rng,
                        void *rng_ctx, char *err, size_t errlen)
{
    int ret;
    char *copy;
    if (len < 11 || memcmp(value, "-----BEGIN ", 11) != 0) {
        snprintf(err, errlen, "%s: not PEM (expected -----BEGIN ...)", d->name);
        return -1;
    }
    /* mbedTLS needs the terminating NUL counted in the PEM length */
    copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", d->name);
        return -1;
    }
    memcpy(copy, value, len);
    copy[len] = '\0';
    if (d->kind == SKIND_PEM_CERT) {
        mbedtls_x509_crt crt;
        mbedtls_x509_crt_init(&crt);
        ret = mbedtls_x509_crt_parse(&crt, (const unsigned char *)copy, len + 1);
        mbedtls_x509_crt_free(&crt);
        if (ret != 0) pem_error(err, errlen, d->name, "certificate", ret < 0 ? ret : -0x2180);
    } else {
        mbedtls_pk_context pk;
        mbedtls_pk_init(&pk);
        ret = agent_pk_parse_key(&pk, (const unsigned char *)copy, len + 1, rng, rng_ctx);
        mbedtls_pk_free(&pk);
        if (ret != 0) pem_error(err, errlen, d->name, "private key", ret);
    }
    mbedtls_platform_zeroize(copy, len); /* may be a private key */
    free(copy);
    return ret == 0 ? 0 : -1;
}

int settings_validate(setting_key_t key, const char *value, size_t len, settings_rng_fn rng,
                      void *rng_ctx, char *err, size_t errlen)
{
    const setting_def_t *d = settings_def(key);
    if (!d) {
        snprintf(err, errlen, "unknown key");
        return -1;
    }
    if (len > d->max_len) {
        snprintf(err, errlen, "%s: value too long (%zu bytes, max %zu)", d->name, len, d->max_len);
        return -1;
    }
    if (memchr(value, '\0', len)) {
        snprintf(err, errlen, "%s: value contains a NUL byte", d->name);
        return -1;
    }
    switch (d->kind) {
    case SKIND_STRING:
        if (!is_printable_line(value, len)) {
            snprintf(err, errlen, "%s: control characters are not allowed", d->name);
            return -1;
        }
        return 0;
    case SKIND_SERVER:
    case SKIND_LISTEN: return validate_address(d, value, len, err, errlen);
    case SKIND_U16: {
        uint32_t v;
        if (agent_parse_u32(value, len, 65535, &v) != 0) {
            snprintf(err, errlen, "%s: expected a number 0..65535", d->name);
            return -1;
        }
        return 0;
    }
    case SKIND_SECONDS: {
        uint32_t ms;
        if (agent_parse_seconds_ms(value, len, d->hi, &ms) != 0 || ms < d->lo) {
            char lo[16], hi[16];
            agent_format_seconds_ms(d->lo, lo, sizeof(lo));
            agent_format_seconds_ms(d->hi, hi, sizeof(hi));
            snprintf(err, errlen, "%s: expected seconds %s..%s with at most 3 decimals (e.g. 2 or 0.5)",
                     d->name, lo, hi);
            return -1;
        }
        return 0;
    }
    case SKIND_UINT: {
        uint32_t v;
        if (agent_parse_u32(value, len, d->hi, &v) != 0 || v < d->lo) {
            snprintf(err, errlen, "%s: expected a number %lu..%lu", d->name, (unsigned long)d->lo,
                     (unsigned long)d->hi);
            return -1;
        }
        return 0;
    }
    case SKIND_PSK_HEX: return validate_psk_hex(d, value, len, err, errlen);
    case SKIND_BOOL:
        if (!(len == 4 && memcmp(value, "true", 4) == 0) && !(len == 5 && memcmp(value, "false", 5) == 0)) {
            snprintf(err, errlen, "%s: expected true or false", d->name);
            return -1;
        }
        return 0;
    case SKIND_SUITES: {
        int ids[SETTING_MAX_SUITES];
        char bad[SETTING_SUITE_BAD_BUF];
        if (settings_parse_suites(value, len, ids, SETTING_MAX_SUITES, bad, sizeof(bad)) != 0) {
            snprintf(err, errlen, "%s: unknown cipher suite '%s'", d->name, bad);
            return -1;
        }
        return 0;
    }
    case SKIND_PEM_CERT:
    case SKIND_PEM_KEY: return validate_pem(d, value, len, rng, rng_ctx, err, errlen);
    }
    snprintf(err, errlen, "%s: internal error", d->name);
    return -1;
}

settings_pair_t settings_parse_pair(const char *cert_pem, const char *key_pem, mbedtls_x509_crt *crt,
                                    mbedtls_pk_context *pk, settings_rng_fn rng, void *rng_ctx,
                                    int *ret)
{
    /* mbedTLS wants the terminating NUL counted in a PEM length */
    int r = mbedtls_x509_crt_parse(crt, (const unsigned char *)cert_pem, strlen(cert_pem) + 1);
    if (r != 0) {
        *ret = r < 0 ? r : MBEDTLS_ERR_X509_INVALID_FORMAT; /* >0: that many certificates failed */
        return SETTINGS_PAIR_BAD_CERT;
    }
    r = agent_pk_parse_key(pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, rng, rng_ctx);
    if (r != 0) {
        *ret = r;
        return SETTINGS_PAIR_BAD_KEY;
    }
    r = agent_pk_check_pair(&crt->pk, pk, rng, rng_ctx);
    *ret = r;
    return r == 0 ? SETTINGS_PAIR_OK : SETTINGS_PAIR_MISMATCH;
}

/* Certificate/key settings that must belong together once both are set. */
static const struct {
    setting_key_t cert;
    setting_key_t key;
} key_pairs[] = {
    {SK_MQTT_SSL_CERT, SK_MQTT_SSL_KEY},
};

/* Storing value (NUL-terminated) for key: does it contradict the other half
 * of its pair? A stored half that no longer parses is not compared. */
static int check_pair(const settings_t *s, setting_key_t key, const char *value, settings_rng_fn rng,
                      void *rng_ctx, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(key_pairs) / sizeof(key_pairs[0]); i++) {
        setting_key_t ck = key_pairs[i].cert, kk = key_pairs[i].key;
        const char *cert, *pkey;
        if (key == ck && s->v[kk].value) {
            cert = value;
            pkey = s->v[kk].value;
        } else if (key == kk && s->v[ck].value) {
            cert = s->v[ck].value;
            pkey = value;
        } else {
            continue;
        }
        mbedtls_x509_crt crt;
        mbedtls_pk_context pk;
        int ret = 0;
        mbedtls_x509_crt_init(&crt);
        mbedtls_pk_init(&pk);
        settings_pair_t r = settings_parse_pair(cert, pkey, &crt, &pk, rng, rng_ctx, &ret);
        mbedtls_pk_free(&pk);
        mbedtls_x509_crt_free(&crt);
        if (r == SETTINGS_PAIR_MISMATCH) {
            snprintf(err, errlen, "%s does not match %s (clear the other one first to replace the pair)",
                     defs[kk].name, defs[ck].name);
            return -1;
        }
    }
    return 0;
}

int settings_set(settings_t *s, setting_key_t key, const char *value, size_t len,
                 settings_rng_fn rng, void *rng_ctx, char *err, size_t errlen)
{
    char *copy;
    if (settings_validate(key, value, len, rng, rng_ctx, err, errlen) != 0) return -1;
    copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", defs[key].name);
        return -1;
    }
    memcpy(copy, value, len);
    copy[len] = '\0';
    if (check_pair(s, key, copy, rng, rng_ctx, err, errlen) != 0) {
        mbedtls_platform_zeroize(copy, len);
        free(copy);
        return -1;
    }
    settings_clear(s, key);
    s->v[key].value = copy;
    s->v[key].len = len;
    return 0;
}

const char *settings_get(const settings_t *s, setting_key_t key)
{
    if (s->v[key].value) return s->v[key].value;
    return defs[key].default_value;
}

bool settings_is_set(const settings_t *s, setting_key_t key)
{
    return s->v[key].value != NULL;
}

bool settings_get_bool(const settings_t *s, setting_key_t key)
{
    const char *v = settings_get(s, key);
    return v != NULL && strcmp(v, "true") == 0;
}

uint32_t settings_get_ms(const settings_t *s, setting_key_t key)
{
    const setting_def_t *d = &defs[key];
    const char *v = settings_get(s, key);
    uint32_t ms = 0;
    if (v && agent_parse_seconds_ms(v, strlen(v), d->hi, &ms) == 0 && ms >= d->lo) return ms;
    v = d->default_value;
    if (!v || agent_parse_seconds_ms(v, strlen(v), d->hi, &ms) != 0) ms = 0;
    return ms;
}

uint32_t settings_get_uint(const settings_t *s, setting_key_t key)
{
    const setting_def_t *d = &defs[key];
    const char *v = settings_get(s, key);
    uint32_t n = 0;
    if (v && agent_parse_u32(v, strlen(v), d->hi, &n) == 0 && n >= d->lo) return n;
    v = d->default_value;
    if (!v || agent_parse_u32(v, strlen(v), d->hi, &n) != 0) n = 0;
    return n;
}

void settings_format_get(const settings_t *s, setting_key_t key, char *out, size_t outlen)
{
    const setting_def_t *d = &defs[key];
    const setting_value_t *v = &s->v[key];
    const char *eff = settings_get(s, key);
    if (!eff) {
        snprintf(out, outlen, "%s=<unset>", d->name);
    } else if (d->secret) {
        /* A PSK is stored as hex: report the key's length, which is what matters (16/32). */
        size_t n = d->kind == SKIND_PSK_HEX ? v->len / 2 : v->len;
        snprintf(out, outlen, "%s=<set, %zu bytes>", d->name, n);
    } else if (d->kind == SKIND_PEM_CERT || d->kind == SKIND_PEM_KEY) {
        snprintf(out, outlen, "%s=<pem %zu bytes crc32 %08lx>", d->name, v->len,
                 (unsigned long)agent_crc32(0, (const uint8_t *)v->value, v->len));
    } else {
        snprintf(out, outlen, "%s=%s", d->name, eff);
    }
}

/* ---- persistence --------------------------------------------------------
 * "HILSTATE 1\n", then per set key "<name> <len>\n<bytes>\n", then
 * "END <crc32 of everything before, 8 hex>\n". */

#define STATE_MAGIC "HILSTATE 1\n"

int settings_serialize(const settings_t *s, uint8_t **out, size_t *outlen)
{
    size_t cap = sizeof(STATE_MAGIC) + 16;
    size_t pos = 0;
    uint8_t *buf;
    for (int i = 0; i < SK_COUNT; i++) {
        if (s->v[i].value) cap += strlen(defs[i].name) + 24 + s->v[i].len;
    }
    buf = malloc(cap);
    if (!buf) return -1;
    memcpy(buf, STATE_MAGIC, strlen(STATE_MAGIC));
    pos = strlen(STATE_MAGIC);
    for (int i = 0; i < SK_COUNT; i++) {
        const setting_value_t *v = &s->v[i];
        if (!v->value) continue;
        int n = snprintf((char *)buf + pos, cap - pos, "%s %zu\n", defs[i].name, v->len);
        if (n < 0 || (size_t)n >= cap - pos) goto fail;
        pos += (size_t)n;
        if (v->len + 1 > cap - pos) goto fail;
        memcpy(buf + pos, v->value, v->len);
        pos += v->len;
        buf[pos++] = '\n';
    }
    {
        uint32_t crc = agent_crc32(0, buf, pos);
        int n = snprintf((char *)buf + pos, cap - pos, "END %08lx\n", (unsigned long)crc);
        if (n < 0 || (size_t)n >= cap - pos) goto fail;
        pos += (size_t)n;
    }
    *out = buf;
    *outlen = pos;
    return 0;
fail:
    mbedtls_platform_zeroize(buf, cap);
    free(buf);
    return -1;
}

int settings_deserialize(settings_t *s, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    settings_t tmp;
    size_t pos;
    size_t mlen = strlen(STATE_MAGIC);
    settings_init(&tmp);
    if (len < mlen || memcmp(buf, STATE_MAGIC, mlen) != 0) {
        snprintf(err, errlen, "unknown format (bad magic)");
        return -1;
    }
    pos = mlen;
    for (;;) {
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t llen;
        const char *line = (const char *)buf + pos;
        if (!nl) {
            snprintf(err, errlen, "truncated at offset %zu", pos);
            goto fail;
        }
        llen = (size_t)(nl - (buf + pos));
        if (llen == 12 && memcmp(line, "END ", 4) == 0) {
            uint32_t want;
            uint32_t got = agent_crc32(0, buf, pos);
            if (agent_parse_hex32(line + 4, 8, &want) != 0 || want != got) {
                snprintf(err, errlen, "checksum mismatch");
                goto fail;
            }
            if (pos + llen + 1 != len) {
                snprintf(err, errlen, "trailing data after END");
                goto fail;
            }
            break;
        }
        const char *sp = memchr(line, ' ', llen);
        if (!sp) {
            snprintf(err, errlen, "bad record at offset %zu", pos);
            goto fail;
        }
        int key = settings_find(line, (size_t)(sp - line));
        uint32_t vlen;
        if (key < 0) {
            snprintf(err, errlen, "unknown key at offset %zu", pos);
            goto fail;
        }
        if (agent_parse_u32(sp + 1, llen - (size_t)(sp + 1 - line), SETTING_MAX_LEN, &vlen) != 0) {
            snprintf(err, errlen, "bad length for %s", defs[key].name);
            goto fail;
        }
        pos += llen + 1;
        if ((size_t)vlen + 1 > len - pos || buf[pos + vlen] != '\n') {
            snprintf(err, errlen, "truncated value for %s", defs[key].name);
            goto fail;
        }
        char *copy = malloc((size_t)vlen + 1);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        memcpy(copy, buf + pos, vlen);
        copy[vlen] = '\0';
        settings_clear(&tmp, (setting_key_t)key);
        tmp.v[key].value = copy;
        tmp.v[key].len = vlen;
        pos += (size_t)vlen + 1;
    }
    settings_free(s);
    *s = tmp;
    return 0;
fail:
    settings_free(&tmp);
    return -1;
}
