/* esp_idf_config.h - mbedTLS 3.6 configuration (MBEDTLS_CONFIG_FILE) of the
 * host build's `esp` variant: the mbedTLS the ESP32 firmware gets from
 * ESP-IDF v5.x when it is configured from firmware/sdkconfig.defaults.
 *
 * How ESP-IDF makes its configuration: components/mbedtls/port/include/
 * mbedtls/esp_config.h first includes mbedTLS's own default configuration
 * (include/mbedtls/mbedtls_config.h) and then defines or undefines options
 * according to the CONFIG_MBEDTLS_* values in sdkconfig.h (sdkconfig.defaults
 * + the Kconfig defaults of components/mbedtls/Kconfig). This file writes the
 * outcome out as one complete list, grouped, each group saying which
 * sdkconfig option or Kconfig default it follows.
 *
 * Reference: ESP-IDF v5.4.2 (esp32 target), which pins mbedTLS 3.6.3; this
 * build uses 3.6.6. The list was checked by running ESP-IDF's kconfgen
 * (esp-idf-kconfig 2.5) on components/mbedtls/Kconfig + the esp32 SoC caps
 * with our sdkconfig.defaults, preprocessing esp_config.h against the
 * resulting sdkconfig.h (gcc -E -dM) and comparing the MBEDTLS_* macros with
 * this file's. The same check on other releases (same sdkconfig.defaults):
 *   v5.4, v5.4.1:       identical to v5.4.2.
 *   v5.4.3, v5.4.4:     no MBEDTLS_SSL_KEYING_MATERIAL_EXPORT (unused here).
 *   v5.3.x, v5.2.x:     adds MBEDTLS_CMAC_C (Kconfig default y there).
 *   v5.1.x:             as v5.3.x.
 *   (v5.1-v5.3 also pinned mbedTLS 3.6.2 in their latest patch releases.)
 * (A review re-ran that check with components/vfs/Kconfig loaded too, which
 * the first run had missed: every release then also defines MBEDTLS_FS_IO and
 * the PSA file key store, MBEDTLS_PSA_CRYPTO_STORAGE_C and
 * MBEDTLS_PSA_ITS_FILE_C; v5.1-v5.3 unconditionally, v5.4.x through
 * CONFIG_MBEDTLS_FS_IO, default y with VFS. They are left out on purpose,
 * see below.)
 *
 * Where the host differs from the chip, on purpose:
 *  - Crypto accelerators. On the ESP32 esp_config.h replaces AES
 *    (MBEDTLS_AES_ALT, MBEDTLS_GCM_ALT: CONFIG_MBEDTLS_HARDWARE_AES=y),
 *    SHA-1/256/512 (MBEDTLS_SHA*_ALT: CONFIG_MBEDTLS_HARDWARE_SHA=y), bignum
 *    multiplication/exponentiation (MBEDTLS_MPI_*_ALT:
 *    CONFIG_MBEDTLS_HARDWARE_MPI=y) and MD5 (the ROM's, CONFIG_MBEDTLS_ROM_MD5)
 *    with the chip's hardware/ROM code. None of that exists here: mbedTLS's
 *    portable software implementations are used instead. Same results,
 *    different timing and code.
 *  - Host CPU extensions that the chip does not have are left out too
 *    (MBEDTLS_HAVE_ASM, MBEDTLS_AESNI_C, MBEDTLS_AESCE_C, MBEDTLS_PADLOCK_C,
 *    on in mbedTLS's default config and so on in ESP-IDF's, where they do
 *    nothing on Xtensa/RISC-V): the portable C code runs, as on the chip.
 *  - Memory: ESP-IDF routes calloc/free to esp_mbedtls_mem_calloc/free
 *    (CONFIG_MBEDTLS_INTERNAL_MEM_ALLOC=y: internal RAM); here libc's.
 *  - Clock. ESP-IDF has CONFIG_MBEDTLS_PLATFORM_TIME_ALT=n (Kconfig
 *    default): mbedTLS calls newlib's time(), i.e. the chip's system clock,
 *    which starts at 1970 until something (SNTP, settimeofday) sets it. Here
 *    MBEDTLS_PLATFORM_TIME_ALT is ON so that the core (agent.c, at
 *    agent_init) points mbedTLS at the board's own clock, the port's
 *    clock_get, with mbedtls_platform_set_time() (same behaviour: no clock
 *    until the rig sets one). The millisecond clock
 *    (MBEDTLS_PLATFORM_MS_TIME_ALT, esp_timer on the chip) is mbedTLS's own
 *    clock_gettime(CLOCK_MONOTONIC) here.
 *  - Entropy: as on the chip, no platform entropy (MBEDTLS_NO_PLATFORM_ENTROPY)
 *    and one hardware source (MBEDTLS_ENTROPY_HARDWARE_ALT): ESP-IDF's
 *    mbedtls_hardware_poll() reads the chip's RNG (esp_fill_random); the host's
 *    (firmware/host/mbedtls3/hardware_poll.c) reads getrandom(). PSA crypto
 *    (psa_crypto_init) seeds from it. The core's own CTR-DRBG (rng.c) is
 *    seeded from the port's `random` function and does not use this source.
 *  - File I/O (MBEDTLS_FS_IO) and PSA's file key store
 *    (MBEDTLS_PSA_CRYPTO_STORAGE_C, MBEDTLS_PSA_ITS_FILE_C) are off: the core
 *    opens no file and creates no persistent key (it loads every certificate
 *    and key from memory), and a virtual board must not write key-store files
 *    into whatever directory it runs in.
 *  - Options that mean nothing to mbedTLS 3.6 but that esp_config.h still
 *    defines (MBEDTLS_CERTS_C, MBEDTLS_SSL_EXPORT_KEYS, TLS 1.3 ticket/early
 *    data sizes with TLS 1.3 off, MBEDTLS_GCM_NON_AES_CIPHER_SOFT_FALLBACK for
 *    the hardware GCM) are left out.
 */
#ifndef HIL_ESP_IDF_MBEDTLS_CONFIG_H
#define HIL_ESP_IDF_MBEDTLS_CONFIG_H

/* ---- System ----------------------------------------------------------------
 * CONFIG_MBEDTLS_HAVE_TIME=y (Kconfig default) -> MBEDTLS_HAVE_TIME.
 * CONFIG_MBEDTLS_HAVE_TIME_DATE=y (sdkconfig.defaults: certificate validity
 * dates are checked) -> MBEDTLS_HAVE_TIME_DATE.
 * MBEDTLS_PLATFORM_C + MBEDTLS_PLATFORM_MEMORY: always on in esp_config.h.
 * MBEDTLS_PLATFORM_TIME_ALT: host only, see above. */
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_TIME_ALT
/* esp_config.h removes deprecated APIs: the core must build without them */
#define MBEDTLS_DEPRECATED_REMOVED

/* ---- Entropy and DRBGs -----------------------------------------------------
 * esp_config.h: MBEDTLS_ENTROPY_HARDWARE_ALT + MBEDTLS_NO_PLATFORM_ENTROPY
 * (not for the "linux" target); ENTROPY_C, CTR_DRBG_C, HMAC_DRBG_C from
 * mbedTLS's defaults, which ESP-IDF keeps. */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_ENTROPY_HARDWARE_ALT
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_CTR_DRBG_C
#define MBEDTLS_HMAC_DRBG_C

/* ---- PSA crypto --------------------------------------------------------------
 * mbedTLS default, kept by ESP-IDF 5.x (no Kconfig). TLS itself does not go
 * through PSA (MBEDTLS_USE_PSA_CRYPTO off, as in ESP-IDF without TLS 1.3).
 * No persistent key store: ESP-IDF has one (MBEDTLS_PSA_ITS_FILE_C over
 * MBEDTLS_FS_IO), left out here on purpose (see the top of this file). */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC

/* ---- TLS protocol ----------------------------------------------------------------
 * CONFIG_MBEDTLS_TLS_SERVER_AND_CLIENT=y -> MBEDTLS_SSL_CLI_C + MBEDTLS_SSL_SRV_C.
 * CONFIG_MBEDTLS_SSL_PROTO_TLS1_2=y, CONFIG_MBEDTLS_SSL_PROTO_TLS1_3 not set:
 * TLS 1.2 only. CONFIG_MBEDTLS_SSL_PROTO_DTLS default n: no DTLS. */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2

/* TLS 1.2 extensions and features, each a Kconfig default y:
 * CONFIG_MBEDTLS_SSL_RENEGOTIATION, CONFIG_MBEDTLS_SSL_ALPN,
 * CONFIG_MBEDTLS_SSL_MAX_FRAGMENT_LENGTH, CONFIG_MBEDTLS_CLIENT_SSL_SESSION_TICKETS,
 * CONFIG_MBEDTLS_SERVER_SSL_SESSION_TICKETS (-> SESSION_TICKETS + TICKET_C),
 * CONFIG_MBEDTLS_SSL_KEEP_PEER_CERTIFICATE (the HTTPS server logs the
 * client certificate's CN from it). The others are mbedTLS defaults that
 * esp_config.h keeps. */
#define MBEDTLS_SSL_RENEGOTIATION
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ENCRYPT_THEN_MAC
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_FALLBACK_SCSV
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
#define MBEDTLS_SSL_KEYING_MATERIAL_EXPORT /* gone from v5.4.3 on */
#define MBEDTLS_SSL_CACHE_C
#define MBEDTLS_SSL_COOKIE_C
/* SHA-1 may still sign a TLS 1.2 key exchange (mbedTLS default) */
#define MBEDTLS_TLS_DEFAULT_ALLOW_SHA1_IN_KEY_EXCHANGE

/* Record buffers: CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN=y (default),
 * CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN=16384 (sdkconfig.defaults; also the
 * default), CONFIG_MBEDTLS_SSL_OUT_CONTENT_LEN=4096 (Kconfig default). With
 * 4096 a record the agent sends carries at most 4 KiB, and a handshake
 * message it sends (its certificate chain) must fit in 4 KiB. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

/* ---- Key exchanges (TLS 1.2) ---------------------------------------------------
 * sdkconfig.defaults: CONFIG_MBEDTLS_KEY_EXCHANGE_PSK, _ECDHE_PSK, _RSA,
 * _ECDHE_RSA, _ECDHE_ECDSA (under CONFIG_MBEDTLS_PSK_MODES and
 * CONFIG_MBEDTLS_KEY_EXCHANGE_ELLIPTIC_CURVE); Kconfig defaults y:
 * _RSA_PSK, _ECDH_ECDSA, _ECDH_RSA. Default n: _DHE_PSK, _DHE_RSA (no DHM). */
#define MBEDTLS_KEY_EXCHANGE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_RSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDH_RSA_ENABLED

/* ---- Symmetric ciphers and modes ----------------------------------------------------
 * CONFIG_MBEDTLS_AES_C=y, CONFIG_MBEDTLS_CCM_C=y, CONFIG_MBEDTLS_GCM_C=y
 * (sdkconfig.defaults). ARIA: mbedTLS default, ESP-IDF has no option for
 * it and keeps it. CAMELLIA, DES, ChaCha20/Poly1305, CMAC (v5.4), NIST_KW:
 * Kconfig default n. CBC/CFB/CTR/OFB/XTS and the paddings: mbedTLS defaults,
 * kept (CONFIG_MBEDTLS_CIPHER_MODE_* have no prompt). AES tables in ROM
 * (flash) as esp_config.h says: MBEDTLS_AES_ROM_TABLES. */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_ARIA_C
#define MBEDTLS_CCM_C
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_MODE_CFB
#define MBEDTLS_CIPHER_MODE_CTR
#define MBEDTLS_CIPHER_MODE_OFB
#define MBEDTLS_CIPHER_MODE_XTS
#define MBEDTLS_CIPHER_PADDING_PKCS7
#define MBEDTLS_CIPHER_PADDING_ONE_AND_ZEROS
#define MBEDTLS_CIPHER_PADDING_ZEROS_AND_LEN
#define MBEDTLS_CIPHER_PADDING_ZEROS

/* ---- Hashes and MACs -----------------------------------------------------------------
 * CONFIG_MBEDTLS_SHA1_C=y, CONFIG_MBEDTLS_SHA512_C=y (sdkconfig.defaults;
 * SHA512_C brings SHA-384). SHA-224/256 always on. MD5: kept (the chip uses
 * its ROM's, CONFIG_MBEDTLS_ROM_MD5). RIPEMD-160, SHA-3, HKDF: default n. */
#define MBEDTLS_MD_C
#define MBEDTLS_MD5_C
#define MBEDTLS_SHA1_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C

/* ---- Public key, bignum, elliptic curves ---------------------------------------------
 * RSA with PKCS#1 v1.5 and v2.1 (mbedTLS defaults). CONFIG_MBEDTLS_ECP_C,
 * CONFIG_MBEDTLS_ECDH_C, CONFIG_MBEDTLS_ECDSA_C: y. Every curve option
 * CONFIG_MBEDTLS_ECP_DP_* defaults to y (sdkconfig.defaults names P-256 and
 * X25519); CONFIG_MBEDTLS_ECP_NIST_OPTIM=y (default);
 * CONFIG_MBEDTLS_ECP_FIXED_POINT_OPTIM=n (default) -> ..._OPTIM 0 (less RAM). */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_GENPRIME
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECP_DP_SECP192R1_ENABLED
#define MBEDTLS_ECP_DP_SECP224R1_ENABLED
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_SECP521R1_ENABLED
#define MBEDTLS_ECP_DP_SECP192K1_ENABLED
#define MBEDTLS_ECP_DP_SECP224K1_ENABLED
#define MBEDTLS_ECP_DP_SECP256K1_ENABLED
#define MBEDTLS_ECP_DP_BP256R1_ENABLED
#define MBEDTLS_ECP_DP_BP384R1_ENABLED
#define MBEDTLS_ECP_DP_BP512R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
/* LMS signatures: mbedTLS default, kept by ESP-IDF */
#define MBEDTLS_LMS_C

/* ---- Keys, certificates, encodings ---------------------------------------------------
 * CONFIG_MBEDTLS_PEM_PARSE_C=y (sdkconfig.defaults), CONFIG_MBEDTLS_PEM_WRITE_C,
 * CONFIG_MBEDTLS_X509_CRL_PARSE_C, CONFIG_MBEDTLS_X509_CSR_PARSE_C: default y.
 * Certificate/CSR writing, PKCS#5/#7/#12, RSASSA-PSS certificates, the
 * extended/compressed EC key formats, PK_RSA_ALT_SUPPORT: mbedTLS defaults,
 * kept. CONFIG_MBEDTLS_CERTIFICATE_BUNDLE not set: no CA bundle. */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_OID_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PK_PARSE_EC_EXTENDED
#define MBEDTLS_PK_PARSE_EC_COMPRESSED
#define MBEDTLS_PK_RSA_ALT_SUPPORT
#define MBEDTLS_PKCS5_C
#define MBEDTLS_PKCS7_C
#define MBEDTLS_PKCS12_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CRL_PARSE_C
#define MBEDTLS_X509_CSR_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C
#define MBEDTLS_X509_CSR_WRITE_C
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT

/* ---- Diagnostics ------------------------------------------------------------------------
 * CONFIG_MBEDTLS_ERROR_STRINGS=y (sdkconfig.defaults) -> MBEDTLS_ERROR_C:
 * mbedtls_strerror() texts in the agent's E lines. CONFIG_MBEDTLS_DEBUG=n
 * (default): no MBEDTLS_DEBUG_C. Version information and the self tests:
 * mbedTLS defaults, kept. */
#define MBEDTLS_ERROR_C
#define MBEDTLS_ERROR_STRERROR_DUMMY
#define MBEDTLS_VERSION_C
#define MBEDTLS_VERSION_FEATURES
#define MBEDTLS_SELF_TEST

/* Not defined, as in ESP-IDF with these settings: MBEDTLS_SSL_PROTO_TLS1_3,
 * MBEDTLS_SSL_PROTO_DTLS (and every DTLS option), MBEDTLS_DHM_C,
 * MBEDTLS_USE_PSA_CRYPTO, MBEDTLS_NET_C, MBEDTLS_TIMING_C,
 * MBEDTLS_DEBUG_C, MBEDTLS_CAMELLIA_C, MBEDTLS_DES_C, MBEDTLS_CHACHA20_C,
 * MBEDTLS_POLY1305_C, MBEDTLS_CHACHAPOLY_C, MBEDTLS_CMAC_C, MBEDTLS_HKDF_C,
 * MBEDTLS_RIPEMD160_C, MBEDTLS_SHA3_C, MBEDTLS_NIST_KW_C,
 * MBEDTLS_SSL_CONTEXT_SERIALIZATION. Not defined unlike ESP-IDF (see the top):
 * MBEDTLS_FS_IO, MBEDTLS_PSA_CRYPTO_STORAGE_C, MBEDTLS_PSA_ITS_FILE_C. */

#endif /* HIL_ESP_IDF_MBEDTLS_CONFIG_H */
