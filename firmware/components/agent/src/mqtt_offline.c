/* mqtt_offline.c - the reconnect back-off and the queue of QoS 1 publishes
 * held while the MQTT connection is down (see mqtt_offline.h). A leaf: no
 * agent_t, no I/O, no allocation. */
#include "mqtt_offline.h"

#include <string.h>

/* ---- back-off ------------------------------------------------------------------ */

void mqtt_backoff_init(mqtt_backoff_t *b, uint32_t min_ms, uint32_t max_ms)
{
    b->min_ms = min_ms < max_ms ? min_ms : max_ms;
    b->max_ms = max_ms;
    b->next_ms = b->min_ms;
}

uint32_t mqtt_backoff_next(mqtt_backoff_t *b)
{
    uint32_t w = b->next_ms;
    b->next_ms = w > b->max_ms / 2u ? b->max_ms : w * 2u;
    if (b->next_ms == 0) b->next_ms = b->max_ms; /* min 0: never spin */
    return w;
}

void mqtt_backoff_reset(mqtt_backoff_t *b)
{
    b->next_ms = b->min_ms;
}

/* ---- the queue ------------------------------------------------------------------- */

size_t mqtt_queue_need(size_t topic_len, size_t msg_len)
{
    return topic_len + msg_len + 2u; /* each NUL-terminated */
}

mqq_result_t mqtt_queue_push(mqtt_queue_t *q, size_t max_count, bool front, const char *topic,
                             size_t topic_len, const uint8_t *msg, size_t msg_len, uint8_t flags,
                             uint8_t origin)
{
    if (q->count >= max_count || q->count >= AGENT_MQTT_QUEUE_MAX) return MQQ_FULL;
    if (topic_len > UINT16_MAX || msg_len > UINT16_MAX ||
        mqtt_queue_need(topic_len, msg_len) > sizeof(q->data) - q->used) {
        return MQQ_NO_ROOM;
    }
    size_t need = mqtt_queue_need(topic_len, msg_len);
    size_t pos = front ? 0 : q->count;
    size_t start = pos < q->count ? q->e[pos].off : q->used;
    memmove(q->data + start + need, q->data + start, q->used - start);
    memmove(&q->e[pos + 1], &q->e[pos], (q->count - pos) * sizeof(q->e[0]));
    for (size_t i = pos + 1; i <= q->count; i++) q->e[i].off = (uint16_t)(q->e[i].off + need);
    memcpy(q->data + start, topic, topic_len);
    q->data[start + topic_len] = 0;
    if (msg_len) memcpy(q->data + start + topic_len + 1, msg, msg_len);
    q->data[start + topic_len + 1 + msg_len] = 0;
    mqq_entry_t *e = &q->e[pos];
    memset(e, 0, sizeof(*e));
    e->off = (uint16_t)start;
    e->topic_len = (uint16_t)topic_len;
    e->msg_len = (uint16_t)msg_len;
    e->flags = flags;
    e->origin = origin;
    q->count++;
    q->used += need;
    return MQQ_OK;
}

const char *mqtt_queue_topic(const mqtt_queue_t *q, size_t i)
{
    return (const char *)q->data + q->e[i].off;
}

const uint8_t *mqtt_queue_msg(const mqtt_queue_t *q, size_t i)
{
    return q->data + q->e[i].off + q->e[i].topic_len + 1;
}

int mqtt_queue_find(const mqtt_queue_t *q, uint16_t id, uint8_t flags, uint8_t not_flags)
{
    for (size_t i = 0; i < q->count; i++) {
        const mqq_entry_t *e = &q->e[i];
        if (e->id == id && (e->flags & flags) == flags && (e->flags & not_flags) == 0) return (int)i;
    }
    return -1;
}

size_t mqtt_queue_count_without(const mqtt_queue_t *q, uint8_t flags)
{
    size_t n = 0;
    for (size_t i = 0; i < q->count; i++) {
        if ((q->e[i].flags & flags) == 0) n++;
    }
    return n;
}

void mqtt_queue_remove(mqtt_queue_t *q, size_t i)
{
    if (i >= q->count) return;
    size_t start = q->e[i].off;
    size_t need = mqtt_queue_need(q->e[i].topic_len, q->e[i].msg_len);
    memmove(q->data + start, q->data + start + need, q->used - start - need);
    memset(q->data + q->used - need, 0, need); /* nothing of it is left behind */
    memmove(&q->e[i], &q->e[i + 1], (q->count - i - 1) * sizeof(q->e[0]));
    q->count--;
    q->used -= need;
    for (size_t k = i; k < q->count; k++) q->e[k].off = (uint16_t)(q->e[k].off - need);
    memset(&q->e[q->count], 0, sizeof(q->e[0]));
}

void mqtt_queue_clear(mqtt_queue_t *q)
{
    memset(q, 0, sizeof(*q));
}
