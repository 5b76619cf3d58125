/* test_mqtt_offline.c - the pure parts of the MQTT reconnect (mqtt_offline.c):
 * the back-off (min, doubling, capped at max, reset), and the queue of QoS 1
 * publishes held while the connection is down (count and byte limits, front
 * and back, find, remove, wiping). No sockets: also run on rv32 under QEMU. */
#include <stdlib.h>

#include "mqtt_offline.h"
#include "test_support.h"

static void test_backoff(void)
{
    mqtt_backoff_t b;
    mqtt_backoff_init(&b, 1000, 4000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 1000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 2000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 4000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 4000); /* capped */
    CHECK_EQ_INT(mqtt_backoff_next(&b), 4000);
    mqtt_backoff_reset(&b);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 1000);

    /* a max that is not min * 2^n: the last step is cut to it */
    mqtt_backoff_init(&b, 200, 1500);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 200);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 400);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 800);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 1500);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 1500);

    /* min == max: constant; the largest values do not overflow */
    mqtt_backoff_init(&b, 3600000, 3600000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 3600000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 3600000);
    mqtt_backoff_init(&b, 1, 3600000);
    uint32_t w = 0;
    for (int i = 0; i < 40; i++) w = mqtt_backoff_next(&b);
    CHECK_EQ_INT(w, 3600000);
    mqtt_backoff_init(&b, 3000000000u, UINT32_MAX);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 3000000000u);
    CHECK_EQ_INT(mqtt_backoff_next(&b), UINT32_MAX);

    /* min > max (the caller refuses it; the helper takes max) */
    mqtt_backoff_init(&b, 5000, 2000);
    CHECK_EQ_INT(mqtt_backoff_next(&b), 2000);
}

static void check_entry(const mqtt_queue_t *q, size_t i, const char *topic, const char *msg)
{
    CHECK(i < q->count);
    if (i >= q->count) return;
    CHECK_STR(mqtt_queue_topic(q, i), topic);
    CHECK_STR((const char *)mqtt_queue_msg(q, i), msg);
    CHECK_EQ_INT(q->e[i].topic_len, strlen(topic));
    CHECK_EQ_INT(q->e[i].msg_len, strlen(msg));
}

static void push(mqtt_queue_t *q, size_t max, bool front, const char *t, const char *m,
                 mqq_result_t want)
{
    CHECK_EQ_INT(mqtt_queue_push(q, max, front, t, strlen(t), (const uint8_t *)m, strlen(m), 0, 7),
                 want);
}

static bool all_zero_after(const mqtt_queue_t *q, size_t from)
{
    for (size_t i = from; i < sizeof(q->data); i++) {
        if (q->data[i] != 0) return false;
    }
    return true;
}

static void test_queue(void)
{
    static mqtt_queue_t q; /* 4.5 KiB: not on a small stack */
    mqtt_queue_clear(&q);
    CHECK_EQ_INT(mqtt_queue_need(3, 5), 10);

    push(&q, 3, false, "t/a", "one", MQQ_OK);
    push(&q, 3, false, "t/b", "two", MQQ_OK);
    push(&q, 3, true, "t/0", "zero", MQQ_OK); /* to the front */
    push(&q, 3, false, "t/c", "three", MQQ_FULL);
    push(&q, 3, true, "t/c", "three", MQQ_FULL);
    CHECK_EQ_INT(q.count, 3);
    CHECK_EQ_INT(q.used, mqtt_queue_need(3, 4) + 2 * mqtt_queue_need(3, 3));
    check_entry(&q, 0, "t/0", "zero");
    check_entry(&q, 1, "t/a", "one");
    check_entry(&q, 2, "t/b", "two");
    CHECK_EQ_INT(q.e[0].origin, 7);
    CHECK_EQ_INT(q.e[0].id, 0);
    CHECK(all_zero_after(&q, q.used));

    /* ids and flags: find by id with flags */
    q.e[1].id = 42;
    q.e[1].flags = MQQ_SENT;
    q.e[2].id = 43;
    q.e[2].flags = MQQ_SENT | MQQ_SHADOW;
    CHECK_EQ_INT(mqtt_queue_find(&q, 42, MQQ_SENT, MQQ_SHADOW), 1);
    CHECK_EQ_INT(mqtt_queue_find(&q, 43, MQQ_SENT, MQQ_SHADOW), -1);
    CHECK_EQ_INT(mqtt_queue_find(&q, 43, MQQ_SHADOW, 0), 2);
    CHECK_EQ_INT(mqtt_queue_find(&q, 44, 0, 0), -1);
    CHECK_EQ_INT(mqtt_queue_count_without(&q, MQQ_SHADOW), 2);
    CHECK_EQ_INT(mqtt_queue_count_without(&q, MQQ_SENT), 1);

    /* remove from the middle: the rest moves up, nothing is left behind */
    mqtt_queue_remove(&q, 1);
    CHECK_EQ_INT(q.count, 2);
    check_entry(&q, 0, "t/0", "zero");
    check_entry(&q, 1, "t/b", "two");
    CHECK_EQ_INT(q.e[1].id, 43);
    CHECK_EQ_INT(q.used, mqtt_queue_need(3, 4) + mqtt_queue_need(3, 3));
    CHECK(all_zero_after(&q, q.used));
    mqtt_queue_remove(&q, 5); /* out of range: nothing */
    CHECK_EQ_INT(q.count, 2);
    mqtt_queue_remove(&q, 0);
    check_entry(&q, 0, "t/b", "two");
    mqtt_queue_remove(&q, 0);
    CHECK_EQ_INT(q.count, 0);
    CHECK_EQ_INT(q.used, 0);
    CHECK(all_zero_after(&q, 0));

    /* max 0: nothing is held */
    push(&q, 0, false, "t", "m", MQQ_FULL);

    /* an empty message; the byte limit */
    push(&q, 16, false, "t/empty", "", MQQ_OK);
    check_entry(&q, 0, "t/empty", "");
    mqtt_queue_clear(&q);
    static char big[AGENT_MQTT_QUEUE_BYTES];
    memset(big, 'x', sizeof(big));
    big[AGENT_MQTT_QUEUE_BYTES - 3] = '\0'; /* "t" + NUL + big + NUL: exactly full */
    push(&q, 16, false, "t", big, MQQ_OK);
    CHECK_EQ_INT(q.used, AGENT_MQTT_QUEUE_BYTES);
    push(&q, 16, false, "", "", MQQ_NO_ROOM);
    mqtt_queue_clear(&q);
    big[AGENT_MQTT_QUEUE_BYTES - 3] = 'x';
    big[AGENT_MQTT_QUEUE_BYTES - 2] = '\0'; /* one byte more than fits */
    push(&q, 16, false, "t", big, MQQ_NO_ROOM);
    CHECK_EQ_INT(q.count, 0);

    /* the count limit of the storage itself */
    for (int i = 0; i < AGENT_MQTT_QUEUE_MAX; i++) push(&q, 100, i % 2 == 0, "t", "m", MQQ_OK);
    push(&q, 100, false, "t", "m", MQQ_FULL);
    CHECK_EQ_INT(q.count, AGENT_MQTT_QUEUE_MAX);
    /* offsets stay consistent after front inserts */
    for (size_t i = 0; i < q.count; i++) check_entry(&q, i, "t", "m");
    mqtt_queue_clear(&q);
    CHECK(all_zero_after(&q, 0));
}

int main(void)
{
    test_backoff();
    test_queue();
    TEST_DONE();
}
