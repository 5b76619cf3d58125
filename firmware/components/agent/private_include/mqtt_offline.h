/* mqtt_offline.h - what the MQTT client keeps for a connection that is down
 * (mqtt.c's reconnect): the back-off between reconnect attempts and the QoS 1
 * publishes held until the reconnect. Pure: no agent_t, no I/O, no clock (the
 * caller's times are stored as they are given), no allocation (fixed storage,
 * sizes in agent_limits.h). Run on rv32 too (tests/test_mqtt_offline.c). */
#ifndef MQTT_OFFLINE_H
#define MQTT_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_limits.h"

/* ---- back-off ------------------------------------------------------------------ */

/* The first attempt after a loss waits min_ms; each failed attempt doubles the
 * wait, capped at max_ms; a successful connect resets it to min_ms. */
typedef struct {
    uint32_t min_ms, max_ms;
    uint32_t next_ms; /* the wait before the next attempt */
} mqtt_backoff_t;

/* min_ms <= max_ms (a larger min is taken as max). */
void mqtt_backoff_init(mqtt_backoff_t *b, uint32_t min_ms, uint32_t max_ms);
/* The wait before the next attempt; the one after it doubles (capped). */
uint32_t mqtt_backoff_next(mqtt_backoff_t *b);
void mqtt_backoff_reset(mqtt_backoff_t *b);

/* ---- the queue of QoS 1 publishes ------------------------------------------------- */

#define MQQ_SENT 0x01u   /* written to the broker, no PUBACK yet (id is its packet id) */
#define MQQ_DUP 0x02u    /* sent before: DUP=1 (and the same id) when sent again */
#define MQQ_SHADOW 0x04u /* a copy of a publish a wait slot tracks while connected, kept so
                          * that it can be resent should the connection be lost */

typedef struct {
    uint16_t off;       /* of the topic in data: topic, NUL, message, NUL */
    uint16_t topic_len;
    uint16_t msg_len;
    uint16_t id;        /* packet id once sent (0: never sent) */
    uint8_t flags;      /* MQQ_* */
    uint8_t origin;     /* the caller's (who queued it) */
    uint64_t deadline_ms; /* the caller's: its PUBACK deadline while MQQ_SENT */
} mqq_entry_t;

typedef struct {
    mqq_entry_t e[AGENT_MQTT_QUEUE_MAX]; /* in order: e[0] goes first */
    size_t count;
    size_t used; /* bytes of data in use (e[0] at 0, the others right after it) */
    uint8_t data[AGENT_MQTT_QUEUE_BYTES];
} mqtt_queue_t;

typedef enum {
    MQQ_OK,
    MQQ_FULL,     /* max_count (or AGENT_MQTT_QUEUE_MAX) messages already */
    MQQ_NO_ROOM,  /* the bytes do not fit (mqtt_queue_need) */
} mqq_result_t;

/* Bytes a message takes in data. */
size_t mqtt_queue_need(size_t topic_len, size_t msg_len);
/* Append (front: insert before e[0]) a copy of topic (topic_len bytes, no NUL
 * inside) and msg; at most max_count messages. */
mqq_result_t mqtt_queue_push(mqtt_queue_t *q, size_t max_count, bool front, const char *topic,
                             size_t topic_len, const uint8_t *msg, size_t msg_len, uint8_t flags,
                             uint8_t origin);
/* Message i's topic and message, each NUL-terminated inside the queue. */
const char *mqtt_queue_topic(const mqtt_queue_t *q, size_t i);
const uint8_t *mqtt_queue_msg(const mqtt_queue_t *q, size_t i);
/* Index of the message with these flags (all of `flags` set, none of `not`)
 * and this packet id; -1 when none. */
int mqtt_queue_find(const mqtt_queue_t *q, uint16_t id, uint8_t flags, uint8_t not_flags);
/* Messages with none of these flags. */
size_t mqtt_queue_count_without(const mqtt_queue_t *q, uint8_t flags);
/* Remove message i (its bytes wiped); the ones after it move up. */
void mqtt_queue_remove(mqtt_queue_t *q, size_t i);
/* Remove every message (wiped). */
void mqtt_queue_clear(mqtt_queue_t *q);

#endif
