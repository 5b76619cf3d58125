/* test_target_abi.c - what the build promises about the target it stands
 * for. Every host build: a 64-bit time_t and off_t (ESP-IDF 5's newlib has a
 * 64-bit time_t; on 32-bit glibc that takes -D_TIME_BITS=64). The esp
 * variant (HIL_VARIANT_ESP): ILP32 like the ESP32, mbedTLS 3.6 configured
 * like ESP-IDF's for sdkconfig.defaults (firmware/host/mbedtls3/
 * esp_idf_config.h), its entropy source, and certificate dates read from the
 * time source the port gives mbedTLS, past 2038. */
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "test_pem.h"
#include "test_support.h"

_Static_assert(sizeof(time_t) == 8, "time_t must be 64-bit (ESP-IDF 5): build with -D_TIME_BITS=64");
_Static_assert(sizeof(off_t) == 8, "off_t must be 64-bit: build with -D_FILE_OFFSET_BITS=64");

#if defined(HIL_VARIANT_ESP)
_Static_assert(sizeof(void *) == 4 && sizeof(size_t) == 4 && sizeof(long) == 4 && sizeof(int) == 4,
               "the esp variant is ILP32, like the ESP32");
#if MBEDTLS_VERSION_NUMBER < 0x03060000 || MBEDTLS_VERSION_MAJOR != 3
#error "the esp variant uses mbedTLS 3.6 (ESP-IDF v5.1.x-v5.4.x pin 3.6.x)"
#endif
/* the configuration ESP-IDF makes of sdkconfig.defaults + Kconfig defaults */
#if !defined(MBEDTLS_SSL_PROTO_TLS1_2) || defined(MBEDTLS_SSL_PROTO_TLS1_3) || \
    defined(MBEDTLS_SSL_PROTO_DTLS)
#error "CONFIG_MBEDTLS_SSL_PROTO_TLS1_2=y, TLS1_3 and DTLS off"
#endif
#if !defined(MBEDTLS_SSL_CLI_C) || !defined(MBEDTLS_SSL_SRV_C)
#error "CONFIG_MBEDTLS_TLS_SERVER_AND_CLIENT=y"
#endif
#if !defined(MBEDTLS_KEY_EXCHANGE_PSK_ENABLED) || !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED) || \
    !defined(MBEDTLS_KEY_EXCHANGE_RSA_ENABLED) || !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED) || \
    !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED) || defined(MBEDTLS_DHM_C)
#error "key exchanges as in sdkconfig.defaults"
#endif
#if !defined(MBEDTLS_CCM_C) || !defined(MBEDTLS_GCM_C) || !defined(MBEDTLS_CIPHER_MODE_CBC) || \
    defined(MBEDTLS_CHACHAPOLY_C)
#error "ciphers as in sdkconfig.defaults"
#endif
#if MBEDTLS_SSL_IN_CONTENT_LEN != 16384 || MBEDTLS_SSL_OUT_CONTENT_LEN != 4096
#error "record buffers: CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN=16384, OUT 4096 (Kconfig default)"
#endif
#if !defined(MBEDTLS_HAVE_TIME_DATE) || !defined(MBEDTLS_PLATFORM_TIME_ALT)
#error "CONFIG_MBEDTLS_HAVE_TIME_DATE=y, and the time hook for the virtual board's clock"
#endif
#if !defined(MBEDTLS_ERROR_C) || !defined(MBEDTLS_PEM_PARSE_C) || !defined(MBEDTLS_PSA_CRYPTO_C)
#error "error strings, PEM, PSA as in ESP-IDF"
#endif
#if defined(MBEDTLS_AES_ALT) || defined(MBEDTLS_SHA256_ALT) || defined(MBEDTLS_HAVE_ASM) || \
    defined(MBEDTLS_AESNI_C)
#error "the host runs mbedTLS's portable software crypto"
#endif
#endif /* HIL_VARIANT_ESP */

static void test_sizes(void)
{
    fprintf(stderr, "pointer %u bits, size_t %u, long %u, time_t %u, mbedTLS %s\n",
            (unsigned)(sizeof(void *) * 8u), (unsigned)(sizeof(size_t) * 8u),
            (unsigned)(sizeof(long) * 8u), (unsigned)(sizeof(time_t) * 8u),
            AGENT_MBEDTLS_VERSION_STRING);
    /* the host's time() reaches past 2038 (gmtime on the far side) */
    time_t t = (time_t)INT64_C(2208988800); /* 2040-01-01T00:00:00Z */
    struct tm tm;
    CHECK(gmtime_r(&t, &tm) != NULL);
    CHECK_EQ_INT(tm.tm_year, 140);
    CHECK_EQ_INT(tm.tm_mon, 0);
    CHECK_EQ_INT(tm.tm_mday, 1);
}

static void test_crypto_init(void)
{
    /* psa_crypto_init seeds from the entropy source (on the esp variant:
     * MBEDTLS_ENTROPY_HARDWARE_ALT, mbedtls3/hardware_poll.c) */
    CHECK_EQ_INT(agent_mbedtls_global_init(), 0);
#if MBEDTLS_VERSION_MAJOR >= 3 && defined(MBEDTLS_PSA_CRYPTO_C)
    unsigned char a[32] = {0}, b[32] = {0};
    CHECK_EQ_INT(psa_generate_random(a, sizeof(a)), PSA_SUCCESS);
    CHECK_EQ_INT(psa_generate_random(b, sizeof(b)), PSA_SUCCESS);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    mbedtls_psa_crypto_free();
#endif
}

/* The connection-reset text is the same with and without MBEDTLS_NET_C
 * (ESP-IDF's configuration has no NET_C: mbedtls_strerror alone would say
 * "UNKNOWN ERROR CODE (0050)" on the chip and the esp variant). */
static void test_error_texts(void)
{
    char msg[128];
    agent_strerror(MBEDTLS_ERR_NET_CONN_RESET, msg, sizeof(msg));
    CHECK_STR(msg, "NET - Connection was reset by peer");
    char small[8];
    agent_strerror(MBEDTLS_ERR_NET_CONN_RESET, small, sizeof(small));
    CHECK_STR(small, "NET - C");
    agent_strerror(MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, msg, sizeof(msg));
    CHECK_STR(msg, "SSL - A fatal alert message was received from our peer");
    agent_strerror(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, msg, sizeof(msg));
    CHECK(strncmp(msg, "X509 - Certificate verification failed", 38) == 0);
}

#if defined(MBEDTLS_HAVE_TIME_DATE) && defined(MBEDTLS_PLATFORM_TIME_ALT)
#include "mbedtls/platform_time.h"

static mbedtls_time_t fixed_now;
static mbedtls_time_t fixed_time(mbedtls_time_t *t)
{
    if (t) *t = fixed_now;
    return fixed_now;
}

/* Verify the self-signed test certificate against itself at time `when`. */
static uint32_t verify_at(mbedtls_x509_crt *crt, int64_t when)
{
    uint32_t flags = 0;
    fixed_now = (mbedtls_time_t)when;
    (void)mbedtls_x509_crt_verify(crt, crt, NULL, NULL, &flags, NULL, NULL);
    return flags;
}

static void test_certificate_dates(void)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    CHECK_EQ_INT(mbedtls_x509_crt_parse(&crt, (const unsigned char *)test_cert_pem,
                                        strlen(test_cert_pem) + 1),
                 0);
    CHECK_EQ_INT(mbedtls_platform_set_time(fixed_time), 0);
    /* test_cert_pem: valid 2026-11-21 .. 2036-11-18 */
    CHECK_EQ_INT(verify_at(&crt, INT64_C(1893456000)), 0);                            /* 2030 */
    CHECK_EQ_INT(verify_at(&crt, INT64_C(0)), MBEDTLS_X509_BADCERT_FUTURE);          /* 1970: no clock */
    CHECK_EQ_INT(verify_at(&crt, INT64_C(2208988800)), MBEDTLS_X509_BADCERT_EXPIRED); /* 2040 */
    /* far past 2038 does not wrap around into the validity period */
    CHECK_EQ_INT(verify_at(&crt, INT64_C(4102444800)), MBEDTLS_X509_BADCERT_EXPIRED); /* 2100 */
    /* 2^32 + 2030: a 32-bit time would land on 2030 and accept it */
    CHECK_EQ_INT(verify_at(&crt, INT64_C(4294967296) + INT64_C(1893456000)), MBEDTLS_X509_BADCERT_EXPIRED);
    mbedtls_x509_crt_free(&crt);
}
#endif

int main(void)
{
    test_sizes();
    test_crypto_init();
    test_error_texts();
#if defined(MBEDTLS_HAVE_TIME_DATE) && defined(MBEDTLS_PLATFORM_TIME_ALT)
    test_certificate_dates();
#else
    fprintf(stderr, "certificate dates against a port clock: not in this build (mbedTLS reads time())\n");
#endif
    TEST_DONE();
}
