/* rv32_overlay.h - MBEDTLS_USER_CONFIG_FILE for the bare-metal rv32 build
 * (firmware/host/rv32): applied after the base configuration (ESP-IDF's
 * mirror, firmware/host/mbedtls3/esp_idf_config.h, or mbedTLS's default),
 * it removes what a picolibc + semihosting target does not have. Nothing
 * here changes TLS behaviour: the core's unit tests and the stack/footprint
 * measurements see the same protocol code as the board. */
#ifndef HIL_RV32_OVERLAY_H
#define HIL_RV32_OVERLAY_H

/* no sockets: the core brings its own (the ESP-IDF port: lwIP) */
#undef MBEDTLS_NET_C
/* no timers: mbedtls_timing_* needs POSIX/Windows */
#undef MBEDTLS_TIMING_C
/* no /dev/urandom / getrandom(): the agent seeds its CTR-DRBG from the
 * port's random source (ESP-IDF: esp_fill_random). With esp_idf_config.h,
 * MBEDTLS_ENTROPY_HARDWARE_ALT's mbedtls_hardware_poll() is in rv32_port.c
 * (it fails: this target has no entropy source). */
#define MBEDTLS_NO_PLATFORM_ENTROPY
/* no file system: certificates and keys come from the settings blob */
#undef MBEDTLS_FS_IO
#undef MBEDTLS_PSA_ITS_FILE_C
#undef MBEDTLS_PSA_CRYPTO_STORAGE_C
/* no clock_gettime(): mbedtls_ms_time() comes from rv32_port.c (ESP-IDF
 * likewise supplies its own, from esp_timer) */
#define MBEDTLS_PLATFORM_MS_TIME_ALT
/* no threads */
#undef MBEDTLS_THREADING_C
#undef MBEDTLS_THREADING_PTHREAD

#endif
