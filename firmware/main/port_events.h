/* port_events.h - log lines from other tasks, handed to the agent task.
 *
 * ESP-IDF v5.1 - v5.4 (FreeRTOS queue + spinlock APIs checked in v5.1 and v5.4.2).
 *
 * The core is not thread-safe: only the agent task may print through it. Wi-Fi
 * event handlers (default event-loop task), esp_timer callbacks and the port's
 * own start-up code post short texts here; the core drains them through
 * agent_port_t.next_event from agent_step, so they come out as ordinary
 * `I (<ms>) hil: ...` lines between commands. */
#ifndef PORT_EVENTS_H
#define PORT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"

#define PORT_EVENT_TEXT 120 /* bytes per event text, NUL included */
#define PORT_EVENT_DEPTH 16 /* queued events; more are counted as dropped */

typedef struct {
    QueueHandle_t queue;
    portMUX_TYPE lock; /* guards dropped */
    uint32_t dropped;
} port_events_t;

esp_err_t port_events_init(port_events_t *ev);
/* Any task (not an ISR). Never blocks: a full queue counts a drop. */
void port_event_post(port_events_t *ev, char level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Agent task: the next event, false when there is none. */
bool port_event_next(port_events_t *ev, char *level, char *text, size_t cap);
bool port_events_pending(port_events_t *ev);

#endif
