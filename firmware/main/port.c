/* port.c - agent_port_t for ESP-IDF: clocks, entropy, storage, console, Wi-Fi, reboot.
 *
 * ESP-IDF APIs and where they were checked (tags v5.1 and v5.4.2):
 *   esp_timer_get_time        components/esp_timer/include/esp_timer.h (int64_t, microseconds since boot)
 *   esp_fill_random           components/esp_hw_support/include/esp_random.h
 *   esp_restart, esp_get_free_heap_size   components/esp_system/include/esp_system.h
 *   gettimeofday, settimeofday   newlib's <sys/time.h> (components/newlib/platform_include/sys/time.h
 *                             includes it); implemented in components/newlib/time.c: the system
 *                             time is boot time + time since boot, settimeofday moves the boot time
 *
 * Clock: the chip has no wall clock until something sets it: gettimeofday
 * starts at 1970-01-01 + uptime. `clock set` (the rig, before every connect)
 * sets it with settimeofday; mbedTLS checks certificate dates against the
 * same system time (CONFIG_MBEDTLS_HAVE_TIME_DATE: time(), which newlib
 * answers from _gettimeofday_r). The RTC timer keeps the system time across
 * software resets (not power-on resets; api-reference/system/system_time.rst),
 * so after `reboot` the clock may still be right while the port's "was set"
 * flag is gone: a time after 2020-01-01 counts as set too.
 *
 * Entropy: esp_fill_random() returns true random numbers only while the RF
 * subsystem (Wi-Fi/Bluetooth) is on, or while the SAR-ADC entropy source is
 * enabled with bootloader_random_enable() (the 2nd-stage bootloader does this
 * during boot and turns it off before the app starts); otherwise it is only
 * pseudo-random (docs/en/api-reference/system/random.rst). hil_port_init()
 * therefore starts the Wi-Fi driver before the core can seed its CTR-DRBG
 * (first use: parsing a private key or a TLS handshake). Should the driver fail
 * to start, a W line says the entropy is weak. */
#include "port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"

static uint64_t hp_now_ms(void *ctx)
{
    (void)ctx;
    return (uint64_t)esp_timer_get_time() / 1000u;
}

/* 2020-01-01T00:00:00Z: a system time after this was set by someone */
#define CLOCK_PLAUSIBLE_S INT64_C(1577836800)

static int64_t hp_clock_get(void *ctx, bool *is_set)
{
    hil_port_t *p = ctx;
    struct timeval tv;
    if (gettimeofday(&tv, NULL) != 0) {
        *is_set = false;
        return 0;
    }
    int64_t now = (int64_t)tv.tv_sec; /* time_t is 64-bit in ESP-IDF 5 */
    *is_set = p->clock_was_set || now >= CLOCK_PLAUSIBLE_S;
    return now;
}

static int hp_clock_set(void *ctx, int64_t unix_s, char *err, size_t errlen)
{
    hil_port_t *p = ctx;
    struct timeval tv = {.tv_sec = (time_t)unix_s, .tv_usec = 0};
    if ((int64_t)tv.tv_sec != unix_s) {
        snprintf(err, errlen, "out of range for time_t");
        return -1;
    }
    if (settimeofday(&tv, NULL) != 0) {
        snprintf(err, errlen, "settimeofday failed: %s", strerror(errno));
        return -1;
    }
    p->clock_was_set = true;
    return 0;
}

static int hp_load(void *ctx, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    hil_port_t *p = ctx;
    return port_storage_load(&p->storage, buf, len, err, errlen);
}

static int hp_save(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    hil_port_t *p = ctx;
    return port_storage_save(&p->storage, buf, len, err, errlen);
}

static int hp_nvs_get(void *ctx, const char *key, uint8_t type, void *buf, size_t cap, size_t *len,
                      char *err, size_t errlen)
{
    hil_port_t *p = ctx;
    return port_storage_nvs_get(&p->storage, key, type, buf, cap, len, err, errlen);
}

static int hp_random(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    esp_fill_random(buf, len);
    return 0;
}

static bool hp_network_up(void *ctx)
{
    hil_port_t *p = ctx;
    return port_wifi_up(&p->wifi);
}

static int hp_console_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    hil_port_t *p = ctx;
    return port_console_read(&p->console, buf, cap, timeout_ms);
}

static void hp_console_write(void *ctx, const char *buf, size_t len)
{
    hil_port_t *p = ctx;
    port_console_write(&p->console, buf, len);
}

static void hp_reboot(void *ctx)
{
    hil_port_t *p = ctx;
    port_console_drain(&p->console, 500); /* the OK line leaves before the reset */
    esp_restart();
}

static size_t hp_free_heap(void *ctx)
{
    (void)ctx;
    return (size_t)esp_get_free_heap_size();
}

static int hp_wifi_begin(void *ctx, const char *ssid, const char *pass, char *err, size_t errlen)
{
    hil_port_t *p = ctx;
    return port_wifi_start(&p->wifi, ssid, pass, err, errlen) == ESP_OK ? 0 : -1;
}

static unsigned hp_wifi_last_reason(void *ctx)
{
    hil_port_t *p = ctx;
    return port_wifi_last_reason(&p->wifi);
}

static void hp_wifi_status(void *ctx, char *buf, size_t cap)
{
    hil_port_t *p = ctx;
    port_wifi_status(&p->wifi, buf, cap);
}

static bool hp_next_event(void *ctx, char *level, char *text, size_t cap)
{
    hil_port_t *p = ctx;
    return port_event_next(&p->events, level, text, cap);
}

esp_err_t hil_port_init(hil_port_t *p, agent_port_t *port)
{
    esp_err_t err = port_events_init(&p->events);
    if (err != ESP_OK) return err;
    err = port_console_init(&p->console, &p->events);
    if (err != ESP_OK) return err;
    (void)port_storage_init(&p->storage, &p->events); /* Wi-Fi needs NVS (PHY calibration) */
    if (port_wifi_init(&p->wifi, &p->events) != ESP_OK) {
        port_event_post(&p->events, 'W', "Wi-Fi driver not started: esp_fill_random is "
                                         "pseudo-random only (TLS keys are weak)");
    }

    memset(port, 0, sizeof(*port));
    port->ctx = p;
    port->now_ms = hp_now_ms;
    port->storage_load = hp_load;
    port->storage_save = hp_save;
    port->random = hp_random;
    port->network_up = hp_network_up;
    port->console_fd = -1; /* polled: see port_console.h */
    port->console_read = hp_console_read;
    port->console_write = hp_console_write;
    port->reboot = hp_reboot;
    port->free_heap = hp_free_heap;
    port->wifi_begin = hp_wifi_begin;
    port->wifi_last_reason = hp_wifi_last_reason;
    port->wifi_status = hp_wifi_status;
    port->next_event = hp_next_event;
    port->clock_get = hp_clock_get;
    port->clock_set = hp_clock_set;
    port->nvs_get = hp_nvs_get;
    p->clock_was_set = false;
    return ESP_OK;
}
