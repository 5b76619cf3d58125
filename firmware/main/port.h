/* port.h - the ESP-IDF implementation of agent_port_t (the hil-agent's board port).
 * ESP-IDF v5.1 - v5.4 (each module names the headers and tags it was checked against). */
#ifndef HIL_PORT_H
#define HIL_PORT_H

#include "agent_port.h"
#include "esp_err.h"
#include "port_console.h"
#include "port_events.h"
#include "port_storage.h"
#include "port_wifi.h"

typedef struct {
    port_events_t events;
    port_console_t console;
    port_storage_t storage;
    port_wifi_t wifi;
    bool clock_was_set; /* `clock set` since boot (see port.c: the clock) */
} hil_port_t;

/* Bring up the console (UART0), NVS and the Wi-Fi driver, and fill *port.
 * Only a console failure is fatal (returned); NVS or Wi-Fi trouble is
 * reported as W/E lines once the agent runs, and the agent still works. */
esp_err_t hil_port_init(hil_port_t *p, agent_port_t *port);

#endif
