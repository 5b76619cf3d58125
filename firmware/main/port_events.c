/* port_events.c - see port_events.h.
 * ESP-IDF v5.1 - v5.4: xQueueCreate/xQueueSend/xQueueReceive/uxQueueMessagesWaiting,
 * portMUX_INITIALIZE/portENTER_CRITICAL (components/freertos, checked in v5.1 and v5.4.2). */
#include "port_events.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char level;
    char text[PORT_EVENT_TEXT];
} port_event_t;

esp_err_t port_events_init(port_events_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    portMUX_INITIALIZE(&ev->lock);
    ev->queue = xQueueCreate(PORT_EVENT_DEPTH, sizeof(port_event_t));
    return ev->queue ? ESP_OK : ESP_ERR_NO_MEM;
}

void port_event_post(port_events_t *ev, char level, const char *fmt, ...)
{
    port_event_t e;
    va_list ap;
    if (!ev->queue) return;
    e.level = level;
    va_start(ap, fmt);
    (void)vsnprintf(e.text, sizeof(e.text), fmt, ap);
    va_end(ap);
    if (xQueueSend(ev->queue, &e, 0) != pdTRUE) {
        portENTER_CRITICAL(&ev->lock);
        ev->dropped++;
        portEXIT_CRITICAL(&ev->lock);
    }
}

bool port_event_next(port_events_t *ev, char *level, char *text, size_t cap)
{
    port_event_t e;
    uint32_t dropped;
    if (!ev->queue || cap == 0) return false;
    portENTER_CRITICAL(&ev->lock);
    dropped = ev->dropped;
    ev->dropped = 0;
    portEXIT_CRITICAL(&ev->lock);
    if (dropped) {
        *level = 'W';
        snprintf(text, cap, "%" PRIu32 " port event(s) dropped (queue full)", dropped);
        return true;
    }
    if (xQueueReceive(ev->queue, &e, 0) != pdTRUE) return false;
    *level = e.level;
    snprintf(text, cap, "%s", e.text);
    return true;
}

bool port_events_pending(port_events_t *ev)
{
    return ev->queue && uxQueueMessagesWaiting(ev->queue) > 0;
}
