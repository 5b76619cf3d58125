/* port_wifi.h - the Wi-Fi station (esp_netif + esp_event + esp_wifi).
 *
 * ESP-IDF v5.1 - v5.4 (components/esp_wifi, esp_netif, esp_event, esp_timer;
 * checked in v5.1, v5.2.5, v5.3.3, v5.4.2).
 *
 * Threads: the event handler runs in the default event-loop task, the retry
 * timer in the esp_timer task, everything else in the agent task. They share
 * the fields under `lock` (short critical sections, no API calls inside) and
 * the event group; log lines go to the agent through port_events_t. */
#ifndef PORT_WIFI_H
#define PORT_WIFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "esp_event.h"
#include "esp_netif.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "port_events.h"

#define PORT_WIFI_RETRY_FIRST_MS 1000u /* first reconnect delay, doubled per failure */
#define PORT_WIFI_RETRY_MAX_MS 30000u  /* reconnect delay cap */

typedef struct {
    port_events_t *events;
    esp_err_t init_err; /* ESP_OK once the driver is initialised and started */
    esp_netif_t *netif;
    EventGroupHandle_t bits; /* PORT_WIFI_GOT_IP */
    esp_timer_handle_t retry_timer;
    portMUX_TYPE lock;
    /* under lock */
    bool want;          /* credentials given: connect and stay connected */
    bool started;       /* between WIFI_EVENT_STA_START and _STOP */
    bool associated;    /* between STA_CONNECTED and STA_DISCONNECTED */
    bool retry_pending; /* the retry timer is armed for a reconnect */
    uint32_t backoff_ms;
    uint8_t last_reason; /* of the last WIFI_EVENT_STA_DISCONNECTED, 0 = none */
    char ip[16];         /* dotted IPv4 while it has an address, else "" */
    /* agent task only: what the station was last configured with */
    char ssid[33];
    char pass[65];
} port_wifi_t;

/* Initialise netif, the default event loop and the Wi-Fi driver (station
 * mode, configuration kept in RAM, no power save) and start it without
 * connecting: the RF being on is what makes esp_fill_random() truly random,
 * so this runs before the core seeds its DRBG. */
esp_err_t port_wifi_init(port_wifi_t *w, port_events_t *events);
/* Configure the station and (re)start it; returns without waiting. */
esp_err_t port_wifi_begin(port_wifi_t *w, const char *ssid, const char *pass, char *err,
                          size_t errlen);
/* agent_port_t.wifi_begin: port_wifi_begin, unless the station is already
 * connected with these credentials (then nothing changes). Never waits: the
 * core's pending `wifi connect` watches port_wifi_up(). */
esp_err_t port_wifi_start(port_wifi_t *w, const char *ssid, const char *pass, char *err,
                          size_t errlen);
/* agent_port_t.wifi_last_reason: reason of the last STA_DISCONNECTED since
 * the last begin, 0 = none. */
unsigned port_wifi_last_reason(port_wifi_t *w);
/* agent_port_t.wifi_status text: "off", "connecting[ last_reason=N]",
 * "connected ip=A.B.C.D rssi=-NN" (rssi when the driver reports it). */
void port_wifi_status(port_wifi_t *w, char *buf, size_t cap);
/* Station associated and holding an IPv4 address. */
bool port_wifi_up(port_wifi_t *w);

#endif
