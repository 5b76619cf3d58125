/* agent_settings.h - the settings table (Mongoose-OS key names), per-key
 * validation, masked read-back and the persisted blob format. */
#ifndef AGENT_SETTINGS_H
#define AGENT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_mbedtls_compat.h"

typedef enum {
    SK_MQTT_SERVER,
    SK_MQTT_CLIENT_ID,
    SK_MQTT_USER,
    SK_MQTT_PASS,
    SK_MQTT_KEEP_ALIVE,
    SK_MQTT_SSL_CA_CERT,
    SK_MQTT_SSL_CERT,
    SK_MQTT_SSL_KEY,
    SK_MQTT_SSL_PSK_IDENTITY,
    SK_MQTT_SSL_PSK_KEY,
    SK_MQTT_SSL_CIPHER_SUITES,
    SK_HTTP_LISTEN_ADDR,
    SK_HTTP_SSL_CERT,
    SK_HTTP_SSL_KEY,
    SK_HTTP_SSL_CA_CERT,
    SK_WIFI_STA_SSID,
    SK_WIFI_STA_PASS,
    SK_MQTT_ENABLE, /* the keys before it keep their order in `config get` */
    /* reconnect (mqtt.c), after the others so that their order stays as it was */
    SK_MQTT_RECONNECT_TIMEOUT_MIN,
    SK_MQTT_RECONNECT_TIMEOUT_MAX,
    SK_MQTT_CLEAN_SESSION,
    SK_MQTT_MAX_QUEUE_LENGTH,
    SK_COUNT
} setting_key_t;

typedef enum {
    SKIND_STRING,   /* printable single-line text */
    SKIND_SERVER,   /* host:port or [v6]:port */
    SKIND_LISTEN,   /* [host]:port, :port or port */
    SKIND_U16,      /* decimal 0..65535 */
    SKIND_PEM_CERT, /* PEM certificate(s) */
    SKIND_PEM_KEY,  /* PEM private key */
    SKIND_PSK_HEX,  /* 32 or 64 hex digits */
    SKIND_SUITES,   /* colon-separated mbedTLS suite names */
    SKIND_BOOL,     /* "true" or "false" (RPC: a JSON boolean) */
    SKIND_SECONDS,  /* decimal seconds, at most 3 decimals, lo..hi milliseconds (RPC: a number too) */
    SKIND_UINT,     /* decimal lo..hi (RPC: a number too) */
} setting_kind_t;

#define SETTING_MAX_LEN 8192   /* largest value (PEM via config load) */
#define SETTING_MAX_SUITES 32

typedef struct {
    const char *name;
    setting_kind_t kind;
    bool secret;            /* never read back, never logged */
    size_t max_len;
    const char *default_value; /* NULL = none */
    uint32_t lo, hi;           /* SKIND_SECONDS (milliseconds), SKIND_UINT: the range */
} setting_def_t;

typedef struct {
    char *value; /* NUL-terminated heap copy, NULL when unset */
    size_t len;  /* without the NUL */
} setting_value_t;

typedef struct {
    setting_value_t v[SK_COUNT];
} settings_t;

const setting_def_t *settings_def(setting_key_t key);
/* Find a key by name; returns -1 when unknown. */
int settings_find(const char *name, size_t len);

void settings_init(settings_t *s);
void settings_free(settings_t *s);
void settings_clear(settings_t *s, setting_key_t key);
/* dst (initialised) = a copy of src's stored values; 0, or -1 (out of memory: dst empty). */
int settings_copy(settings_t *dst, const settings_t *src);

/* Validate value for key; on error writes "ERR"-ready text into err
 * ("<key>: <what was wrong>", never the value itself for secrets). */
typedef int (*settings_rng_fn)(void *ctx, unsigned char *buf, size_t len);
int settings_validate(setting_key_t key, const char *value, size_t len, settings_rng_fn rng,
                      void *rng_ctx, char *err, size_t errlen);
/* Validate and store a copy. rng is needed to parse private keys (mbedTLS
 * 3.x blinding); it may be NULL with mbedTLS 2.x. Storing mqtt.ssl_key while
 * mqtt.ssl_cert is set (or the other way round) also checks that the key is
 * the certificate's: "mqtt.ssl_key does not match mqtt.ssl_cert (clear the
 * other one first to replace the pair)", nothing stored. */
int settings_set(settings_t *s, setting_key_t key, const char *value, size_t len,
                 settings_rng_fn rng, void *rng_ctx, char *err, size_t errlen);
/* A certificate and its private key, parsed and checked together (shared by
 * the mqtt.ssl_cert / mqtt.ssl_key check above and `http start`). */
typedef enum {
    SETTINGS_PAIR_OK,
    SETTINGS_PAIR_BAD_CERT, /* cert_pem does not parse (*ret: the mbedTLS error) */
    SETTINGS_PAIR_BAD_KEY,  /* key_pem does not parse (*ret) */
    SETTINGS_PAIR_MISMATCH, /* key_pem is not the key of the (first) certificate (*ret) */
} settings_pair_t;
/* Parse cert_pem (a chain: the first certificate is checked) into crt and
 * key_pem into pk (both NUL-terminated PEM; crt and pk initialised and later
 * freed by the caller, they stay usable on SETTINGS_PAIR_OK) and check that
 * pk is the private key of the certificate's public key (mbedtls_pk_check_pair;
 * mbedTLS 3.x needs rng). */
settings_pair_t settings_parse_pair(const char *cert_pem, const char *key_pem, mbedtls_x509_crt *crt,
                                    mbedtls_pk_context *pk, settings_rng_fn rng, void *rng_ctx,
                                    int *ret);

/* Effective value (stored or default) or NULL. */
const char *settings_get(const settings_t *s, setting_key_t key);
bool settings_is_set(const settings_t *s, setting_key_t key);
/* A SKIND_BOOL setting's effective value ("true"). */
bool settings_get_bool(const settings_t *s, setting_key_t key);
/* A SKIND_SECONDS setting's effective value in milliseconds, a SKIND_UINT
 * setting's value (its default when the stored text does not parse). */
uint32_t settings_get_ms(const settings_t *s, setting_key_t key);
uint32_t settings_get_uint(const settings_t *s, setting_key_t key);
/* The "<key>=<value>" read-back line with masking, into out. */
void settings_format_get(const settings_t *s, setting_key_t key, char *out, size_t outlen);

/* Parse "host:port" / "[v6]:port" into host (no brackets) and port. */
int settings_parse_server(const char *value, size_t len, char *host, size_t hostcap,
                          uint16_t *port);
/* Parse a listen address ("443", ":443", "host:443", "[v6]:443"; port 0 =
 * any free port) into host ("" = all interfaces, no brackets) and port. */
int settings_parse_listen(const char *value, size_t len, char *host, size_t hostcap,
                          uint16_t *port);
/* Parse a suite list into ids (0-terminated, max cap-1 entries). On an
 * unknown name writes it into bad (its first SETTING_SUITE_SHOWN bytes,
 * escaped as by agent_escape_quoted; SETTING_SUITE_BAD_BUF bytes always
 * suffice) and returns -1. */
#define SETTING_SUITE_SHOWN 60
#define SETTING_SUITE_BAD_BUF (4 * SETTING_SUITE_SHOWN + 32)
int settings_parse_suites(const char *value, size_t len, int *ids, size_t cap, char *bad,
                          size_t badlen);

/* Persisted blob: serialise (malloc'd buffer) / parse into s (s is only
 * modified when the whole blob is valid). */
int settings_serialize(const settings_t *s, uint8_t **out, size_t *outlen);
int settings_deserialize(settings_t *s, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif
