/* port_wifi.c - see port_wifi.h.
 *
 * ESP-IDF APIs and where they were checked (tags v5.1, v5.2.5, v5.3.3, v5.4.2):
 *   esp_netif_init, esp_ip4addr_ntoa                  components/esp_netif/include/esp_netif.h
 *   IP_EVENT, IP_EVENT_STA_GOT_IP/_LOST_IP, ip_event_got_ip_t
 *                                                     components/esp_netif/include/esp_netif_types.h
 *   esp_netif_create_default_wifi_sta                 components/esp_wifi/include/esp_wifi_default.h
 *   esp_event_loop_create_default (ESP_ERR_INVALID_STATE = already created),
 *   esp_event_handler_instance_register, esp_event_handler_t
 *                                                     components/esp_event/include/esp_event.h
 *   WIFI_INIT_CONFIG_DEFAULT, esp_wifi_init, esp_wifi_set_storage, esp_wifi_set_mode,
 *   esp_wifi_set_config(WIFI_IF_STA), esp_wifi_start/stop/connect, esp_wifi_set_ps,
 *   esp_wifi_sta_get_ap_info                          components/esp_wifi/include/esp_wifi.h
 *   WIFI_EVENT_STA_START/_STOP/_CONNECTED/_DISCONNECTED, wifi_event_sta_disconnected_t
 *   (uint8_t reason), wifi_config_t.sta.{ssid[32],password[64],threshold.authmode},
 *   WIFI_STORAGE_RAM, WIFI_MODE_STA, WIFI_PS_NONE, WIFI_AUTH_OPEN/_WPA2_PSK
 *     components/esp_wifi/include/esp_wifi_types.h (v5.1, v5.2),
 *     esp_wifi_types_generic.h (v5.3, v5.4)
 *   esp_timer_create (ESP_TIMER_TASK), esp_timer_start_once, esp_timer_stop
 *                                                     components/esp_timer/include/esp_timer.h
 *   xEventGroupCreate/SetBits/ClearBits/GetBits/WaitBits  components/freertos
 *
 * Reconnect: every WIFI_EVENT_STA_DISCONNECTED arms a one-shot timer (1 s,
 * doubling up to 30 s, back to 1 s once an address is obtained) whose
 * callback calls esp_wifi_connect(); esp_wifi.h asks for such a limit when
 * reconnecting after WIFI_REASON_NO_AP_FOUND. New credentials restart the
 * driver (stop, set_config, start): the STA_STOP event cancels a retry armed
 * by the disconnect that the stop itself caused, and STA_START connects. */
#include "port_wifi.h"

#include <stdio.h>
#include <string.h>

#include "esp_wifi.h"

#define GOT_IP_BIT ((EventBits_t)1u << 0)
#define STARTED_BIT ((EventBits_t)1u << 1)

static TickType_t ms_ticks(uint32_t ms)
{
    return (TickType_t)((ms + portTICK_PERIOD_MS - 1u) / portTICK_PERIOD_MS);
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* Event task or esp_timer task: arm the reconnect timer if the station
 * should be connected. */
static void schedule_retry(port_wifi_t *w)
{
    uint32_t delay_ms;
    bool go;
    portENTER_CRITICAL(&w->lock);
    go = w->started && w->want;
    delay_ms = w->backoff_ms;
    if (go) {
        w->retry_pending = true;
        w->backoff_ms = w->backoff_ms >= PORT_WIFI_RETRY_MAX_MS / 2 ? PORT_WIFI_RETRY_MAX_MS
                                                                    : w->backoff_ms * 2u;
    }
    portEXIT_CRITICAL(&w->lock);
    if (!go) return;
    (void)esp_timer_stop(w->retry_timer); /* ESP_ERR_INVALID_STATE when not armed */
    (void)esp_timer_start_once(w->retry_timer, (uint64_t)delay_ms * 1000u);
}

static void connect_now(port_wifi_t *w)
{
    esp_err_t err = esp_wifi_connect();
    if (err != ESP_OK) {
        /* no DISCONNECTED event will follow: retry from here */
        port_event_post(w->events, 'W', "WiFi STA connect did not start: %s", esp_err_to_name(err));
        schedule_retry(w);
    }
}

static void on_retry_timer(void *arg)
{
    port_wifi_t *w = arg;
    bool go;
    portENTER_CRITICAL(&w->lock);
    go = w->retry_pending && w->started && w->want && !w->associated;
    w->retry_pending = false;
    portEXIT_CRITICAL(&w->lock);
    if (go) connect_now(w);
}

static void on_wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    port_wifi_t *w = arg;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        bool go;
        portENTER_CRITICAL(&w->lock);
        w->started = true;
        w->retry_pending = false;
        go = w->want;
        portEXIT_CRITICAL(&w->lock);
        xEventGroupSetBits(w->bits, STARTED_BIT);
        if (go) connect_now(w);
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_STOP) {
        portENTER_CRITICAL(&w->lock);
        w->started = false;
        w->associated = false;
        w->retry_pending = false;
        w->ip[0] = '\0';
        portEXIT_CRITICAL(&w->lock);
        (void)esp_timer_stop(w->retry_timer);
        xEventGroupClearBits(w->bits, GOT_IP_BIT | STARTED_BIT);
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_CONNECTED) {
        portENTER_CRITICAL(&w->lock);
        w->associated = true;
        portEXIT_CRITICAL(&w->lock);
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        const wifi_event_sta_disconnected_t *d = data;
        unsigned reason = d ? d->reason : 0u;
        portENTER_CRITICAL(&w->lock);
        w->associated = false;
        w->ip[0] = '\0';
        w->last_reason = (uint8_t)reason;
        portEXIT_CRITICAL(&w->lock);
        xEventGroupClearBits(w->bits, GOT_IP_BIT);
        port_event_post(w->events, 'W', "WiFi STA disconnected (reason %u)", reason);
        schedule_retry(w);
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *g = data;
        char ip[16] = "?";
        if (g) (void)esp_ip4addr_ntoa(&g->ip_info.ip, ip, (int)sizeof(ip));
        portENTER_CRITICAL(&w->lock);
        memcpy(w->ip, ip, sizeof(w->ip));
        w->backoff_ms = PORT_WIFI_RETRY_FIRST_MS;
        portEXIT_CRITICAL(&w->lock);
        /* queue the line first: a pending `wifi connect` that sees the bit
         * prints the queued lines before its OK (the agent may run on the
         * other core) */
        port_event_post(w->events, 'I', "WiFi STA IP: %s", ip);
        xEventGroupSetBits(w->bits, GOT_IP_BIT);
    } else if (base == IP_EVENT && id == IP_EVENT_STA_LOST_IP) {
        portENTER_CRITICAL(&w->lock);
        w->ip[0] = '\0';
        portEXIT_CRITICAL(&w->lock);
        xEventGroupClearBits(w->bits, GOT_IP_BIT);
        port_event_post(w->events, 'W', "WiFi STA lost its IP address");
    }
}

#define TRY(call)                                                                         \
    do {                                                                                  \
        err = (call);                                                                     \
        if (err != ESP_OK) {                                                              \
            port_event_post(events, 'E', "WiFi init: %s failed: %s", #call,               \
                            esp_err_to_name(err));                                        \
            w->init_err = err;                                                            \
            return err;                                                                   \
        }                                                                                 \
    } while (0)

esp_err_t port_wifi_init(port_wifi_t *w, port_events_t *events)
{
    esp_err_t err;
    esp_event_handler_instance_t inst;
    const esp_timer_create_args_t timer_args = {
        .callback = on_retry_timer,
        .arg = w,
        .dispatch_method = ESP_TIMER_TASK,
        .name = "hil_wifi_retry",
    };

    memset(w, 0, sizeof(*w));
    w->events = events;
    w->init_err = ESP_FAIL;
    w->backoff_ms = PORT_WIFI_RETRY_FIRST_MS;
    portMUX_INITIALIZE(&w->lock);
    w->bits = xEventGroupCreate();
    if (!w->bits) {
        w->init_err = ESP_ERR_NO_MEM;
        return w->init_err;
    }
    TRY(esp_timer_create(&timer_args, &w->retry_timer));
    TRY(esp_netif_init());
    err = esp_event_loop_create_default();
    if (err != ESP_ERR_INVALID_STATE) TRY(err); /* INVALID_STATE: it already exists */
    w->netif = esp_netif_create_default_wifi_sta();
    if (!w->netif) TRY(ESP_FAIL);
    wifi_init_config_t init_cfg = WIFI_INIT_CONFIG_DEFAULT();
    TRY(esp_wifi_init(&init_cfg));
    TRY(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi_event, w, &inst));
    TRY(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi_event, w, &inst));
    TRY(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_LOST_IP, on_wifi_event, w, &inst));
    /* the credentials live in the agent's settings blob, not in Wi-Fi's own NVS keys */
    TRY(esp_wifi_set_storage(WIFI_STORAGE_RAM));
    TRY(esp_wifi_set_mode(WIFI_MODE_STA));
    TRY(esp_wifi_start());
    /* modem sleep delays received frames by up to a DTIM period: off on a test rig */
    (void)esp_wifi_set_ps(WIFI_PS_NONE);
    /* let STA_START be handled before anyone sets credentials */
    (void)xEventGroupWaitBits(w->bits, STARTED_BIT, pdFALSE, pdFALSE, ms_ticks(2000));
    w->init_err = ESP_OK;
    return ESP_OK;
}

esp_err_t port_wifi_begin(port_wifi_t *w, const char *ssid, const char *pass, char *err,
                          size_t errlen)
{
    wifi_config_t cfg;
    size_t sl = strlen(ssid);
    size_t pl = strlen(pass);
    esp_err_t e;

    if (w->init_err != ESP_OK) {
        snprintf(err, errlen, "Wi-Fi driver not started (%s)", esp_err_to_name(w->init_err));
        return w->init_err;
    }
    if (sl == 0 || sl > sizeof(cfg.sta.ssid)) {
        snprintf(err, errlen, "wifi.sta.ssid must be 1..%u bytes", (unsigned)sizeof(cfg.sta.ssid));
        return ESP_ERR_INVALID_ARG;
    }
    if (pl > sizeof(cfg.sta.password) || (pl > 0 && pl < 8)) {
        snprintf(err, errlen, "wifi.sta.pass must be empty (open network) or 8..%u characters",
                 (unsigned)sizeof(cfg.sta.password));
        return ESP_ERR_INVALID_ARG;
    }
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.sta.ssid, ssid, sl);    /* 32 bytes: no NUL needed at full length */
    memcpy(cfg.sta.password, pass, pl); /* 64 bytes = a hex PSK, no NUL needed */
    cfg.sta.threshold.authmode = pl ? WIFI_AUTH_WPA2_PSK : WIFI_AUTH_OPEN;

    portENTER_CRITICAL(&w->lock);
    w->want = true;
    w->retry_pending = false;
    w->backoff_ms = PORT_WIFI_RETRY_FIRST_MS;
    w->last_reason = 0;
    portEXIT_CRITICAL(&w->lock);
    (void)esp_timer_stop(w->retry_timer);
    xEventGroupClearBits(w->bits, GOT_IP_BIT);

    e = esp_wifi_stop();
    if (e == ESP_OK) e = esp_wifi_set_config(WIFI_IF_STA, &cfg);
    wipe(&cfg, sizeof(cfg));
    if (e == ESP_OK) e = esp_wifi_start(); /* STA_START -> on_wifi_event connects */
    if (e != ESP_OK) {
        snprintf(err, errlen, "Wi-Fi restart failed: %s", esp_err_to_name(e));
        return e;
    }
    memcpy(w->ssid, ssid, sl + 1);
    memcpy(w->pass, pass, pl + 1);
    return ESP_OK;
}

bool port_wifi_up(port_wifi_t *w)
{
    return w->bits && (xEventGroupGetBits(w->bits) & GOT_IP_BIT) != 0;
}

esp_err_t port_wifi_start(port_wifi_t *w, const char *ssid, const char *pass, char *err,
                          size_t errlen)
{
    if (strcmp(w->ssid, ssid) == 0 && strcmp(w->pass, pass) == 0 && port_wifi_up(w)) {
        return ESP_OK; /* already connected with these credentials */
    }
    return port_wifi_begin(w, ssid, pass, err, errlen);
}

unsigned port_wifi_last_reason(port_wifi_t *w)
{
    unsigned reason;
    portENTER_CRITICAL(&w->lock);
    reason = w->last_reason;
    portEXIT_CRITICAL(&w->lock);
    return reason;
}

void port_wifi_status(port_wifi_t *w, char *buf, size_t cap)
{
    bool want;
    unsigned reason;
    char ip[sizeof(w->ip)];
    wifi_ap_record_t ap;

    if (w->init_err != ESP_OK) {
        snprintf(buf, cap, "off (driver not started: %s)", esp_err_to_name(w->init_err));
        return;
    }
    portENTER_CRITICAL(&w->lock);
    want = w->want;
    reason = w->last_reason;
    memcpy(ip, w->ip, sizeof(ip));
    portEXIT_CRITICAL(&w->lock);
    if (!want) {
        snprintf(buf, cap, "off");
    } else if (ip[0]) {
        if (esp_wifi_sta_get_ap_info(&ap) == ESP_OK) {
            snprintf(buf, cap, "connected ip=%s rssi=%d", ip, (int)ap.rssi);
        } else {
            snprintf(buf, cap, "connected ip=%s", ip);
        }
    } else if (reason) {
        snprintf(buf, cap, "connecting last_reason=%u", reason);
    } else {
        snprintf(buf, cap, "connecting");
    }
}
