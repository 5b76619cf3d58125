/* hardware_poll.c - the entropy source of the `esp` variant's mbedTLS.
 *
 * esp_idf_config.h, like ESP-IDF's esp_config.h, turns platform entropy off
 * (MBEDTLS_NO_PLATFORM_ENTROPY) and declares one hardware source
 * (MBEDTLS_ENTROPY_HARDWARE_ALT). On the chip ESP-IDF's mbedTLS port
 * implements it with the hardware RNG (esp_fill_random); here it is the
 * kernel's getrandom(). Only mbedTLS's entropy module calls it (PSA crypto's
 * own DRBG); the core seeds its CTR-DRBG from the port's `random`. */
#include <errno.h>
#include <stddef.h>
#include <sys/random.h>

#include "mbedtls/entropy.h"

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    size_t done = 0;
    (void)data;
    while (done < len) {
        ssize_t n = getrandom(output + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            *olen = 0;
            return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
        }
        done += (size_t)n;
    }
    *olen = done;
    return 0;
}
