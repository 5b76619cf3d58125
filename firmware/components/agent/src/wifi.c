/* wifi.c - `wifi connect` on ports with a Wi-Fi station: the port starts the
 * station (wifi_begin, which never waits); the command stays pending until
 * the port reports the network up (network_up) or AGENT_WIFI_TIMEOUT_MS
 * passed, looked at every AGENT_WIFI_POLL_MS by agent_step. Its log lines
 * (the port's queued events) come before its final line, which goes to the
 * command layer through the events table given at init (ev->pending,
 * ev->done). A service: it calls leaves only. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"

void agent_wifi_init(agent_t *a, const agent_op_events_t *ev, void *ev_ctx)
{
    a->wifi.pending = false;
    a->wifi.ev = ev;
    a->wifi.ev_ctx = ev_ctx;
}

/* The pending `wifi connect` is over: its final line. */
static void op_done(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void op_done(agent_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a->wifi.ev->done(a->wifi.ev_ctx, fmt, ap);
    va_end(ap);
}

static void start_failed(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "wifi connect: %s", why[0] ? why : "failed");
}

int agent_wifi_connect(agent_t *a, char *err, size_t errlen)
{
    const char *ssid = settings_get(&a->settings, SK_WIFI_STA_SSID);
    const char *pass = settings_get(&a->settings, SK_WIFI_STA_PASS);
    char why[200] = "";
    if (!a->port.wifi_begin) {
        snprintf(err, errlen, "wifi: this port has no Wi-Fi (virtual board)");
        return -1;
    }
    if (!ssid) {
        snprintf(err, errlen, "wifi connect: wifi.sta.ssid is not set");
        return -1;
    }
    agent_log(a, 'I', "WiFi STA connecting to %s", ssid);
    if (a->port.wifi_begin(a->port.ctx, ssid, pass ? pass : "", why, sizeof(why)) != 0) {
        why[sizeof(why) - 1] = '\0';
        agent_port_events(a); /* the port's lines come before the final line */
        start_failed(err, errlen, why);
        return -1;
    }
    a->wifi.pending = true;
    a->wifi.deadline_ms = agent_now(a) + AGENT_WIFI_TIMEOUT_MS;
    a->wifi.ev->pending(a->wifi.ev_ctx); /* the final line comes later */
    agent_wifi_service(a); /* already connected with these credentials: OK now */
    return 0;
}

void agent_wifi_service(agent_t *a)
{
    if (!a->wifi.pending) return;
    bool up = a->port.network_up && a->port.network_up(a->port.ctx);
    bool late = agent_now(a) >= a->wifi.deadline_ms;
    if (!up && !late) return;
    a->wifi.pending = false;
    agent_port_events(a); /* the port's IP / disconnect lines come before the final line */
    if (up) {
        op_done(a, "OK");
        return;
    }
    unsigned reason = a->port.wifi_last_reason ? a->port.wifi_last_reason(a->port.ctx) : 0u;
    if (reason) {
        op_done(a, "ERR wifi connect: no IP address within %u ms (last disconnect reason %u; "
                         "retrying)",
                      (unsigned)AGENT_WIFI_TIMEOUT_MS, reason);
    } else {
        op_done(a, "ERR wifi connect: no IP address within %u ms (retrying)",
                      (unsigned)AGENT_WIFI_TIMEOUT_MS);
    }
}

uint32_t agent_wifi_wait_ms(agent_t *a)
{
    if (!a->wifi.pending) return UINT32_MAX;
    uint64_t t = agent_now(a);
    uint64_t left = a->wifi.deadline_ms > t ? a->wifi.deadline_ms - t : 0u;
    return left < AGENT_WIFI_POLL_MS ? (uint32_t)left : AGENT_WIFI_POLL_MS;
}

void agent_wifi_autoconnect(agent_t *a)
{
    const char *ssid = settings_get(&a->settings, SK_WIFI_STA_SSID);
    const char *pass = settings_get(&a->settings, SK_WIFI_STA_PASS);
    char why[200] = "";
    if (!a->port.wifi_begin || !ssid) return;
    agent_log(a, 'I', "WiFi STA connecting to %s", ssid);
    if (a->port.wifi_begin(a->port.ctx, ssid, pass ? pass : "", why, sizeof(why)) != 0) {
        why[sizeof(why) - 1] = '\0';
        agent_log(a, 'E', "WiFi STA not started: %s", why);
    }
}
