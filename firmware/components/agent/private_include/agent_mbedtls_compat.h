/* agent_mbedtls_compat.h - the ONLY place that knows about mbedTLS version
 * differences (2.28 on Debian 12 hosts, 3.x in ESP-IDF 5). Everything else
 * in the core includes this header instead of mbedTLS headers directly. */
#ifndef AGENT_MBEDTLS_COMPAT_H
#define AGENT_MBEDTLS_COMPAT_H

#include "mbedtls/version.h" /* pulls in config.h (2.x) / build_info.h (3.x) */

#include <string.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/error.h"
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

/* Is PSK usable in this build? */
#if defined(MBEDTLS_KEY_EXCHANGE_PSK_ENABLED) || defined(MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED) || \
    defined(MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED) || defined(MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED) || \
    defined(MBEDTLS_KEY_EXCHANGE_SOME_PSK_ENABLED)
#define AGENT_HAVE_PSK 1
#else
#define AGENT_HAVE_PSK 0
#endif

#endif
