/* port_storage.h - the settings blob in NVS (namespace "hil", key "settings").
 * ESP-IDF v5.1 - v5.4 (nvs_flash/include/nvs.h + nvs_flash.h, checked in v5.1 and v5.4.2). */
#ifndef PORT_STORAGE_H
#define PORT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "port_events.h"

#define PORT_NVS_NAMESPACE "hil"
#define PORT_NVS_KEY "settings"

typedef struct {
    esp_err_t init_err; /* ESP_OK when NVS is usable */
} port_storage_t;

/* nvs_flash_init(), erasing and retrying once when the partition is full or
 * from a newer NVS format (reported as a W event: saved settings are lost). */
esp_err_t port_storage_init(port_storage_t *s, port_events_t *events);
/* agent_port_t.storage_load / storage_save semantics (AGENT_STORAGE_*). */
int port_storage_load(port_storage_t *s, uint8_t **buf, size_t *len, char *err, size_t errlen);
int port_storage_save(port_storage_t *s, const uint8_t *buf, size_t len, char *err, size_t errlen);
/* agent_port_t.nvs_get semantics (AGENT_NVS_*): a provisioning key of namespace "hil"
 * (nvs_get_u8 / nvs_get_str / nvs_get_blob by the type asked for). */
int port_storage_nvs_get(port_storage_t *s, const char *key, uint8_t type, void *buf, size_t cap,
                         size_t *len, char *err, size_t errlen);

#endif
