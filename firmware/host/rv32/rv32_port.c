/* rv32_port.c - what mbedTLS needs from the platform on the bare-metal rv32
 * build (rv32_overlay.h), where ESP-IDF supplies its own:
 *  - mbedtls_ms_time() (MBEDTLS_PLATFORM_MS_TIME_ALT; ESP-IDF: esp_timer):
 *    semihosting's wall clock, only TLS session-ticket ages use it;
 *  - mbedtls_hardware_poll() (MBEDTLS_ENTROPY_HARDWARE_ALT, set by
 *    esp_idf_config.h; ESP-IDF: the chip's RNG): qemu's virt machine has no
 *    entropy source here, so it fails; the unit tests never need one. */
#include <stddef.h>
#include <time.h>

#include "mbedtls/build_info.h"
#include "mbedtls/platform_time.h"

mbedtls_ms_time_t mbedtls_ms_time(void)
{
    return (mbedtls_ms_time_t)time(NULL) * 1000;
}

#if defined(MBEDTLS_ENTROPY_HARDWARE_ALT)
#include "mbedtls/entropy.h"

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    (void)data;
    (void)output;
    (void)len;
    *olen = 0;
    return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
}
#endif
