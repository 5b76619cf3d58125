/* port_storage.c - see port_storage.h.
 *
 * ESP-IDF APIs (checked in v5.1 and v5.4.2, components/nvs_flash/include):
 *   nvs_flash_init, nvs_flash_erase                         nvs_flash.h
 *   nvs_open(NVS_READONLY/NVS_READWRITE), nvs_get_blob (NULL buffer = ask the size),
 *   nvs_set_blob, nvs_commit, nvs_close, nvs_get_u8, nvs_get_str (the length counts the
 *   NUL; a buffer too small: ESP_ERR_NVS_INVALID_LENGTH), ESP_ERR_NVS_NOT_FOUND (missing key, or a
 *   namespace that does not exist yet when opened NVS_READONLY),
 *   ESP_ERR_NVS_NO_FREE_PAGES, ESP_ERR_NVS_NEW_VERSION_FOUND  nvs.h
 *   esp_err_to_name                                         esp_common/include/esp_err.h
 *
 * Size: NVS limits one blob to 97.6% of the partition minus 4000 bytes
 * (docs/en/api-reference/storage/nvs_flash.rst) and needs room for the new
 * copy before it drops the old one, so firmware/partitions.csv gives NVS
 * 192 KiB: the settings blob can reach ~50 KB (six PEM values of up to 8 KiB). */
#include "port_storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_port.h"
#include "nvs.h"
#include "nvs_flash.h"

esp_err_t port_storage_init(port_storage_t *s, port_events_t *events)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        port_event_post(events, 'W', "NVS partition erased (%s): saved settings are lost",
                        esp_err_to_name(err));
        err = nvs_flash_erase();
        if (err == ESP_OK) err = nvs_flash_init();
    }
    if (err != ESP_OK) {
        port_event_post(events, 'E', "NVS unusable (%s): settings cannot be saved",
                        esp_err_to_name(err));
    }
    s->init_err = err;
    return err;
}

int port_storage_load(port_storage_t *s, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    nvs_handle_t h;
    size_t size = 0;
    esp_err_t e;
    if (s->init_err != ESP_OK) {
        snprintf(err, errlen, "NVS unusable (%s)", esp_err_to_name(s->init_err));
        return AGENT_STORAGE_ERROR;
    }
    e = nvs_open(PORT_NVS_NAMESPACE, NVS_READONLY, &h);
    if (e == ESP_ERR_NVS_NOT_FOUND) return AGENT_STORAGE_EMPTY; /* nothing saved yet */
    if (e != ESP_OK) {
        snprintf(err, errlen, "nvs_open(%s): %s", PORT_NVS_NAMESPACE, esp_err_to_name(e));
        return AGENT_STORAGE_ERROR;
    }
    e = nvs_get_blob(h, PORT_NVS_KEY, NULL, &size);
    if (e == ESP_ERR_NVS_NOT_FOUND) {
        nvs_close(h);
        return AGENT_STORAGE_EMPTY;
    }
    if (e != ESP_OK) {
        nvs_close(h);
        snprintf(err, errlen, "nvs_get_blob(%s) size: %s", PORT_NVS_KEY, esp_err_to_name(e));
        return AGENT_STORAGE_ERROR;
    }
    uint8_t *b = malloc(size ? size : 1);
    if (!b) {
        nvs_close(h);
        snprintf(err, errlen, "out of memory for %u bytes of settings", (unsigned)size);
        return AGENT_STORAGE_ERROR;
    }
    e = nvs_get_blob(h, PORT_NVS_KEY, b, &size);
    nvs_close(h);
    if (e != ESP_OK) {
        free(b);
        snprintf(err, errlen, "nvs_get_blob(%s): %s", PORT_NVS_KEY, esp_err_to_name(e));
        return AGENT_STORAGE_ERROR;
    }
    *buf = b;
    *len = size;
    return AGENT_STORAGE_OK;
}

/* Provisioning keys (the core's nvs_settings.c asks for each): read-only, in the same
 * namespace as the settings blob. A key of another type: ESP_ERR_NVS_TYPE_MISMATCH,
 * reported as AGENT_NVS_ERROR like any error but ESP_ERR_NVS_NOT_FOUND. Compiled
 * against ESP-IDF v5.1 - v5.4's nvs.h only by reading it: not built here. */
int port_storage_nvs_get(port_storage_t *s, const char *key, uint8_t type, void *buf, size_t cap,
                         size_t *len, char *err, size_t errlen)
{
    nvs_handle_t h;
    esp_err_t e;
    size_t n = cap;
    if (s->init_err != ESP_OK) {
        snprintf(err, errlen, "NVS unusable (%s)", esp_err_to_name(s->init_err));
        return AGENT_NVS_UNAVAILABLE;
    }
    e = nvs_open(PORT_NVS_NAMESPACE, NVS_READONLY, &h);
    if (e == ESP_ERR_NVS_NOT_FOUND) return AGENT_NVS_NOT_FOUND; /* no namespace "hil" yet */
    if (e != ESP_OK) {
        snprintf(err, errlen, "nvs_open(%s): %s", PORT_NVS_NAMESPACE, esp_err_to_name(e));
        return AGENT_NVS_UNAVAILABLE;
    }
    if (type == AGENT_NVS_TYPE_U8) {
        uint8_t v = 0;
        e = cap >= 1 ? nvs_get_u8(h, key, &v) : ESP_ERR_NVS_INVALID_LENGTH;
        if (e == ESP_OK) {
            *(uint8_t *)buf = v;
            n = 1;
        }
    } else if (type == AGENT_NVS_TYPE_STR) {
        e = nvs_get_str(h, key, buf, &n);
    } else if (type == AGENT_NVS_TYPE_BLOB) {
        e = nvs_get_blob(h, key, buf, &n);
    } else {
        e = ESP_ERR_NVS_TYPE_MISMATCH;
    }
    nvs_close(h);
    if (e == ESP_ERR_NVS_NOT_FOUND) return AGENT_NVS_NOT_FOUND;
    if (e != ESP_OK) {
        snprintf(err, errlen, "%s", esp_err_to_name(e));
        return AGENT_NVS_ERROR;
    }
    *len = n;
    return AGENT_NVS_OK;
}

int port_storage_save(port_storage_t *s, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    nvs_handle_t h;
    esp_err_t e;
    if (s->init_err != ESP_OK) {
        snprintf(err, errlen, "NVS unusable (%s)", esp_err_to_name(s->init_err));
        return -1;
    }
    e = nvs_open(PORT_NVS_NAMESPACE, NVS_READWRITE, &h);
    if (e != ESP_OK) {
        snprintf(err, errlen, "nvs_open(%s): %s", PORT_NVS_NAMESPACE, esp_err_to_name(e));
        return -1;
    }
    e = nvs_set_blob(h, PORT_NVS_KEY, buf, len);
    if (e == ESP_OK) e = nvs_commit(h);
    nvs_close(h);
    if (e != ESP_OK) {
        snprintf(err, errlen, "NVS write of %u bytes failed: %s", (unsigned)len, esp_err_to_name(e));
        return -1;
    }
    return 0;
}
