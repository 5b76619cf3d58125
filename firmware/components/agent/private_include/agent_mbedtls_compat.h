/* agent_mbedtls_compat.h - the ONLY place that knows about mbedTLS version
 * differences (2.28 on Debian 12 hosts, 3.x in ESP-IDF 5). Everything else
 * in the core includes this header instead of mbedTLS headers directly. */
#ifndef AGENT_MBEDTLS_COMPAT_H
#define AGENT_MBEDTLS_COMPAT_H

#include "mbedtls/version.h" /* pulls in config.h (2.x) / build_info.h (3.x) */

#include <stdbool.h>
#include <string.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/error.h"
#include "mbedtls/md.h" /* mbedtls_md_hmac: sealing exported session secrets */
#include "mbedtls/oid.h"
#include "mbedtls/pk.h"
#include "mbedtls/platform_util.h" /* mbedtls_platform_zeroize */
#include "mbedtls/ssl.h"
#include "mbedtls/ssl_ciphersuites.h"
#include "mbedtls/x509_crt.h"

#if MBEDTLS_VERSION_MAJOR >= 4
#error "hil-agent supports mbedTLS 2.28 and 3.x (4.x removed ctr_drbg/pk APIs we use)"
#endif

#if MBEDTLS_VERSION_MAJOR >= 3
#if defined(MBEDTLS_PSA_CRYPTO_C)
#include "psa/crypto.h"
#endif
#endif

/* Private struct members are wrapped in MBEDTLS_PRIVATE() from 3.0 on. */
#ifndef MBEDTLS_PRIVATE
#define MBEDTLS_PRIVATE(member) member
#endif

/* Error code of a reset/closed connection (defined by net_sockets.h, which
 * the core does not use). */
#ifndef MBEDTLS_ERR_NET_CONN_RESET
#define MBEDTLS_ERR_NET_CONN_RESET -0x0050
#endif

/* mbedtls_strerror, plus the text of the one NET error the core's own socket
 * callbacks return (MBEDTLS_ERR_NET_CONN_RESET): mbedTLS has the NET texts
 * only with MBEDTLS_NET_C, which ESP-IDF's configuration leaves out (its
 * esp_config.h undefines it), so the chip would log "UNKNOWN ERROR CODE
 * (0050)" where Debian's mbedTLS says "NET - Connection was reset by peer".
 * Log lines are an API: the same text everywhere. */
static inline void agent_strerror(int ret, char *buf, size_t buflen)
{
#if !defined(MBEDTLS_NET_C)
    if (ret == MBEDTLS_ERR_NET_CONN_RESET && buflen > 0) {
        static const char text[] = "NET - Connection was reset by peer";
        size_t n = sizeof(text) - 1 < buflen - 1 ? sizeof(text) - 1 : buflen - 1;
        memcpy(buf, text, n);
        buf[n] = '\0';
        return;
    }
#endif
    mbedtls_strerror(ret, buf, buflen);
}

/* Version string of the headers the core was compiled against. */
#define AGENT_MBEDTLS_VERSION_STRING MBEDTLS_VERSION_STRING

/* One-time library initialisation (PSA in 3.x). Returns 0 on success. */
static inline int agent_mbedtls_global_init(void)
{
#if MBEDTLS_VERSION_MAJOR >= 3 && defined(MBEDTLS_PSA_CRYPTO_C)
    return psa_crypto_init() == PSA_SUCCESS ? 0 : -1;
#else
    return 0;
#endif
}

/* mbedtls_pk_parse_key: 3.x takes an RNG (for blinding). */
static inline int agent_pk_parse_key(mbedtls_pk_context *pk, const unsigned char *key,
                                     size_t keylen, int (*f_rng)(void *, unsigned char *, size_t),
                                     void *p_rng)
{
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_pk_parse_key(pk, key, keylen, NULL, 0, f_rng, p_rng);
#else
    (void)f_rng;
    (void)p_rng;
    return mbedtls_pk_parse_key(pk, key, keylen, NULL, 0);
#endif
}

/* mbedtls_pk_check_pair: 3.x takes an RNG. 0 when prv is the key of pub. */
static inline int agent_pk_check_pair(const mbedtls_pk_context *pub, const mbedtls_pk_context *prv,
                                      int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_pk_check_pair(pub, prv, f_rng, p_rng);
#else
    (void)f_rng;
    (void)p_rng;
    return mbedtls_pk_check_pair(pub, prv);
#endif
}

/* A server handshake ended with MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE (a
 * required client certificate is missing): neither 2.28 nor 3.x (checked up
 * to 3.6.6: ssl_tls.c's mbedtls_ssl_parse_certificate returns without
 * sending or pending an alert) tells the client, which then sees a
 * connection reset. Send handshake_failure (RFC 5246 7.4.6), as OpenSSL
 * servers do. The handshake stopped before the client's ChangeCipherSpec was
 * read, so the alert goes out in the clear, where every client reads it. */
static inline int agent_ssl_alert_no_client_cert(mbedtls_ssl_context *ssl)
{
    return mbedtls_ssl_send_alert_message(ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                          MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
}

/* Pin the protocol to TLS 1.2 (2.28 has no 1.3; in 3.x keep behaviour
 * identical on host and board). */
static inline void agent_ssl_conf_tls12_only(mbedtls_ssl_config *conf)
{
#if MBEDTLS_VERSION_MAJOR >= 3
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

/* ---- TLS 1.2 session secrets, for the key log (`tls keylog`, keylog.c) ----
 *
 * mbedTLS hands a session's secrets to a key-export callback while the
 * handshake derives its keys (inside mbedtls_ssl_handshake, after the
 * ClientKeyExchange: before the Finished messages, so also for a handshake
 * that then fails, e.g. bad_record_mac with a wrong PSK). The callback only
 * copies the client random and the 48-byte master secret into an
 * agent_tls_secret_t; whoever stepped the handshake prints the line after
 * the step (agent_keylog_flush) and wipes the copy. The APIs differ:
 *
 *   2.28 (Debian 12; needs MBEDTLS_SSL_EXPORT_KEYS, on in its config.h):
 *     per configuration, mbedtls_ssl_conf_export_keys_ext_cb(conf, cb, p),
 *     int cb(void *p, const unsigned char *ms, const unsigned char *kb,
 *            size_t maclen, size_t keylen, size_t ivlen,
 *            const unsigned char client_random[32],
 *            const unsigned char server_random[32], mbedtls_tls_prf_types prf)
 *     (ms: the 48-byte master secret; ssl_tls.c ssl_populate_transform).
 *   3.x (ESP-IDF 5; always compiled in, no option):
 *     per context, mbedtls_ssl_set_export_keys_cb(ssl, cb, p),
 *     void cb(void *p, mbedtls_ssl_key_export_type type,
 *             const unsigned char *secret, size_t secret_len,
 *             const unsigned char client_random[32],
 *             const unsigned char server_random[32], mbedtls_tls_prf_types prf)
 *     with type MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET, secret_len 48
 *     (checked in 3.6.6: include/mbedtls/ssl.h, library/ssl_tls.c
 *     ssl_tls12_populate_transform; TLS 1.3 types are ignored, the core
 *     pins TLS 1.2). */
#if MBEDTLS_VERSION_MAJOR >= 3 || defined(MBEDTLS_SSL_EXPORT_KEYS)
#define AGENT_HAVE_KEY_EXPORT 1
#else
#define AGENT_HAVE_KEY_EXPORT 0
#endif

#define AGENT_TLS_RANDOM_LEN 32
#define AGENT_TLS_MASTER_LEN 48

typedef struct {
    bool ready; /* filled by the callback, not yet printed */
    unsigned char client_random[AGENT_TLS_RANDOM_LEN];
    unsigned char master_secret[AGENT_TLS_MASTER_LEN];
} agent_tls_secret_t;

#if AGENT_HAVE_KEY_EXPORT
static inline void agent_tls_secret_store(void *p, const unsigned char *ms,
                                          const unsigned char client_random[32])
{
    agent_tls_secret_t *s = (agent_tls_secret_t *)p;
    memcpy(s->client_random, client_random, AGENT_TLS_RANDOM_LEN);
    memcpy(s->master_secret, ms, AGENT_TLS_MASTER_LEN);
    s->ready = true;
}

#if MBEDTLS_VERSION_MAJOR >= 3
static inline void agent_tls_export_cb(void *p, mbedtls_ssl_key_export_type type,
                                       const unsigned char *secret, size_t secret_len,
                                       const unsigned char client_random[32],
                                       const unsigned char server_random[32],
                                       mbedtls_tls_prf_types prf)
{
    (void)server_random;
    (void)prf;
    if (type == MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET && secret_len == AGENT_TLS_MASTER_LEN) {
        agent_tls_secret_store(p, secret, client_random);
    }
}
#else
static inline int agent_tls_export_cb(void *p, const unsigned char *ms, const unsigned char *kb,
                                      size_t maclen, size_t keylen, size_t ivlen,
                                      const unsigned char client_random[32],
                                      const unsigned char server_random[32],
                                      mbedtls_tls_prf_types prf)
{
    (void)kb;
    (void)maclen;
    (void)keylen;
    (void)ivlen;
    (void)server_random;
    (void)prf;
    agent_tls_secret_store(p, ms, client_random);
    return 0;
}
#endif
#endif /* AGENT_HAVE_KEY_EXPORT */

/* Export the session secrets of ssl into *sink (NULL: export nothing,
 * unregister). Call after mbedtls_ssl_setup(ssl, conf). In 2.28 the callback
 * belongs to conf, i.e. to every context that shares it (the HTTPS server's
 * clients): one sink then serves them all, which is fine because the
 * callback runs only inside the handshake step of one context and the sink is
 * emptied right after that step. ssl NULL: only conf's callback (2.28; 3.x
 * has none, nothing to do). */
static inline void agent_ssl_export_secrets(mbedtls_ssl_config *conf, mbedtls_ssl_context *ssl,
                                            agent_tls_secret_t *sink)
{
#if MBEDTLS_VERSION_MAJOR >= 3
    (void)conf;
    if (ssl) mbedtls_ssl_set_export_keys_cb(ssl, sink ? agent_tls_export_cb : NULL, sink);
#elif AGENT_HAVE_KEY_EXPORT
    (void)ssl;
    mbedtls_ssl_conf_export_keys_ext_cb(conf, sink ? agent_tls_export_cb : NULL, sink);
#else
    (void)conf;
    (void)ssl;
    (void)sink;
#endif
}

/* HMAC-SHA256 (same mbedtls_md API in 2.28 and 3.x). 0 or an mbedTLS error. */
static inline int agent_hmac_sha256(const unsigned char *key, size_t keylen,
                                    const unsigned char *msg, size_t msglen, unsigned char out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (!md) return MBEDTLS_ERR_MD_FEATURE_UNAVAILABLE;
    return mbedtls_md_hmac(md, key, keylen, msg, msglen, out);
}

/* Is PSK usable in this build? */
#if defined(MBEDTLS_KEY_EXCHANGE_PSK_ENABLED) || defined(MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED) || \
    defined(MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED) || defined(MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED) || \
    defined(MBEDTLS_KEY_EXCHANGE_SOME_PSK_ENABLED)
#define AGENT_HAVE_PSK 1
#else
#define AGENT_HAVE_PSK 0
#endif

#endif
