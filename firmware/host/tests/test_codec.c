/* test_codec.c - MQTT codec round trips and malformed-input rejection. */
#include "mqtt_codec.h"
#include "test_support.h"

static void test_header(void)
{
    uint8_t tf;
    uint32_t rem;
    size_t hl;
    const uint8_t h1[] = {0x30, 0x7f};
    CHECK(mqtt_parse_header(h1, 2, &tf, &rem, &hl) == MQTT_OK && rem == 127 && hl == 2);
    const uint8_t h2[] = {0x30, 0x80, 0x01};
    CHECK(mqtt_parse_header(h2, 3, &tf, &rem, &hl) == MQTT_OK && rem == 128 && hl == 3);
    const uint8_t h4[] = {0x30, 0xff, 0xff, 0xff, 0x7f};
    CHECK(mqtt_parse_header(h4, 5, &tf, &rem, &hl) == MQTT_OK && rem == MQTT_MAX_REMAINING);
    const uint8_t h5[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_EQ_INT(mqtt_parse_header(h5, 6, &tf, &rem, &hl), MQTT_ERR_MALFORMED);
    const uint8_t nonmin[] = {0x30, 0x80, 0x00};
    CHECK_EQ_INT(mqtt_parse_header(nonmin, 3, &tf, &rem, &hl), MQTT_ERR_MALFORMED);
    CHECK_EQ_INT(mqtt_parse_header(h2, 2, &tf, &rem, &hl), MQTT_INCOMPLETE);
    CHECK_EQ_INT(mqtt_parse_header(h2, 0, &tf, &rem, &hl), MQTT_INCOMPLETE);
}

static void test_connect(void)
{
    uint8_t buf[128];
    mqtt_connect_opts_t o = {"dev1", "bob", "pw", 2, 60, true};
    int n = mqtt_encode_connect(buf, sizeof(buf), &o);
    const uint8_t want[] = {0x10, 25, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60, 0, 4, 'd', 'e',
                            'v', '1', 0, 3, 'b', 'o', 'b', 0, 2, 'p', 'w'};
    CHECK_EQ_INT(n, (int)sizeof(want));
    CHECK(memcmp(buf, want, sizeof(want)) == 0);
    CHECK_EQ_INT(mqtt_encode_connect(buf, 10, &o), MQTT_ERR_NOSPACE);
    mqtt_connect_opts_t bad = {"x", NULL, "pw", 2, 60, true};
    CHECK_EQ_INT(mqtt_encode_connect(buf, sizeof(buf), &bad), MQTT_ERR_ARG);
    mqtt_connect_opts_t anon = {"", NULL, NULL, 0, 0, true};
    n = mqtt_encode_connect(buf, sizeof(buf), &anon);
    CHECK_EQ_INT(n, 14);
    CHECK_EQ_INT(buf[9], 0x02);
}

static void test_publish_roundtrip(void)
{
    uint8_t buf[512];
    mqtt_packet_t p;
    int n = mqtt_encode_publish(buf, sizeof(buf), "a/b", (const uint8_t *)"hello", 5, 1, 7, false);
    CHECK(n > 0);
    CHECK_EQ_INT(mqtt_decode(buf, (size_t)n, &p), MQTT_OK);
    CHECK_EQ_INT(p.type, MQTT_PUBLISH);
    CHECK_EQ_INT(p.u.publish.qos, 1);
    CHECK_EQ_INT(p.u.publish.packet_id, 7);
    CHECK(p.u.publish.topic_len == 3 && memcmp(p.u.publish.topic, "a/b", 3) == 0);
    CHECK(p.u.publish.payload_len == 5 && memcmp(p.u.publish.payload, "hello", 5) == 0);

    n = mqtt_encode_publish(buf, sizeof(buf), "t", (const uint8_t *)"", 0, 0, 0, true);
    CHECK_EQ_INT(mqtt_decode(buf, (size_t)n, &p), MQTT_OK);
    CHECK(p.u.publish.qos == 0 && p.u.publish.retain && p.u.publish.payload_len == 0);

    /* 200-byte payload: 2-byte remaining length */
    uint8_t big[200];
    memset(big, 'x', sizeof(big));
    n = mqtt_encode_publish(buf, sizeof(buf), "t", big, sizeof(big), 0, 0, false);
    CHECK_EQ_INT(n, 1 + 2 + 2 + 1 + 200);
    CHECK_EQ_INT(mqtt_decode(buf, (size_t)n, &p), MQTT_OK);
    CHECK_EQ_INT(p.u.publish.payload_len, 200);
    /* truncated by one byte */
    CHECK_EQ_INT(mqtt_decode(buf, (size_t)n - 1, &p), MQTT_INCOMPLETE);

    CHECK_EQ_INT(mqtt_encode_publish(buf, sizeof(buf), "t", big, 1, 2, 1, false), MQTT_ERR_ARG);
    CHECK_EQ_INT(mqtt_encode_publish(buf, sizeof(buf), "", big, 1, 0, 0, false), MQTT_ERR_ARG);
    CHECK_EQ_INT(mqtt_encode_publish(buf, sizeof(buf), "t", big, 1, 1, 0, false), MQTT_ERR_ARG);
    CHECK_EQ_INT(mqtt_encode_publish(buf, 50, "t", big, sizeof(big), 0, 0, false), MQTT_ERR_NOSPACE);
}

static void test_small_packets(void)
{
    uint8_t buf[64];
    mqtt_packet_t p;
    int n = mqtt_encode_subscribe(buf, sizeof(buf), 5, "x/#", 1);
    const uint8_t want_sub[] = {0x82, 8, 0, 5, 0, 3, 'x', '/', '#', 1};
    CHECK_EQ_INT(n, (int)sizeof(want_sub));
    CHECK(memcmp(buf, want_sub, sizeof(want_sub)) == 0);
    CHECK_EQ_INT(mqtt_encode_pingreq(buf, sizeof(buf)), 2);
    CHECK(buf[0] == 0xC0 && buf[1] == 0);
    CHECK_EQ_INT(mqtt_encode_disconnect(buf, sizeof(buf)), 2);
    CHECK(buf[0] == 0xE0 && buf[1] == 0);
    CHECK_EQ_INT(mqtt_encode_puback(buf, sizeof(buf), 0x1234), 4);
    CHECK_EQ_INT(mqtt_decode(buf, 4, &p), MQTT_OK);
    CHECK(p.type == MQTT_PUBACK && p.u.ack.packet_id == 0x1234);

    const uint8_t connack[] = {0x20, 2, 0, 5};
    CHECK_EQ_INT(mqtt_decode(connack, 4, &p), MQTT_OK);
    CHECK(p.type == MQTT_CONNACK && p.u.connack.return_code == 5);
    const uint8_t suback[] = {0x90, 3, 0, 5, 0x80};
    CHECK_EQ_INT(mqtt_decode(suback, 5, &p), MQTT_OK);
    CHECK(p.u.suback.packet_id == 5 && p.u.suback.return_code == 0x80);
    const uint8_t pingresp[] = {0xD0, 0};
    CHECK_EQ_INT(mqtt_decode(pingresp, 2, &p), MQTT_OK);
}

static void test_malformed(void)
{
    mqtt_packet_t p;
    /* CONNACK with wrong length / flags / reserved bits */
    const uint8_t c1[] = {0x20, 3, 0, 0, 0};
    CHECK_EQ_INT(mqtt_decode(c1, sizeof(c1), &p), MQTT_ERR_MALFORMED);
    const uint8_t c2[] = {0x21, 2, 0, 0};
    CHECK_EQ_INT(mqtt_decode(c2, sizeof(c2), &p), MQTT_ERR_MALFORMED);
    const uint8_t c3[] = {0x20, 2, 2, 0};
    CHECK_EQ_INT(mqtt_decode(c3, sizeof(c3), &p), MQTT_ERR_MALFORMED);
    /* PUBLISH topic length beyond remaining length */
    const uint8_t p1[] = {0x30, 4, 0, 9, 'a', 'b'};
    CHECK_EQ_INT(mqtt_decode(p1, sizeof(p1), &p), MQTT_ERR_MALFORMED);
    /* PUBLISH QoS 1 without room for the packet id */
    const uint8_t p2[] = {0x32, 4, 0, 2, 'a', 'b'};
    CHECK_EQ_INT(mqtt_decode(p2, sizeof(p2), &p), MQTT_ERR_MALFORMED);
    /* PUBLISH QoS 3 */
    const uint8_t p3[] = {0x36, 5, 0, 1, 'a', 0, 1};
    CHECK_EQ_INT(mqtt_decode(p3, sizeof(p3), &p), MQTT_ERR_MALFORMED);
    /* PUBLISH QoS 1 with packet id 0 */
    const uint8_t p4[] = {0x32, 5, 0, 1, 'a', 0, 0};
    CHECK_EQ_INT(mqtt_decode(p4, sizeof(p4), &p), MQTT_ERR_MALFORMED);
    /* PUBLISH remaining 1 (no room for the topic length) */
    const uint8_t p5[] = {0x30, 1, 0};
    CHECK_EQ_INT(mqtt_decode(p5, sizeof(p5), &p), MQTT_ERR_MALFORMED);
    /* trailing bytes after the packet */
    const uint8_t t1[] = {0xD0, 0, 0};
    CHECK_EQ_INT(mqtt_decode(t1, sizeof(t1), &p), MQTT_ERR_MALFORMED);
    /* SUBACK with bad return code / wrong size */
    const uint8_t s1[] = {0x90, 3, 0, 1, 3};
    CHECK_EQ_INT(mqtt_decode(s1, sizeof(s1), &p), MQTT_ERR_MALFORMED);
    const uint8_t s2[] = {0x90, 2, 0, 1};
    CHECK_EQ_INT(mqtt_decode(s2, sizeof(s2), &p), MQTT_ERR_MALFORMED);
    /* packets a client never receives */
    const uint8_t u1[] = {0x10, 0};
    CHECK_EQ_INT(mqtt_decode(u1, sizeof(u1), &p), MQTT_ERR_UNEXPECTED);
    const uint8_t u2[] = {0x00, 0};
    CHECK_EQ_INT(mqtt_decode(u2, sizeof(u2), &p), MQTT_ERR_UNEXPECTED);
    /* PINGRESP with payload */
    const uint8_t r1[] = {0xD0, 1, 0};
    CHECK_EQ_INT(mqtt_decode(r1, sizeof(r1), &p), MQTT_ERR_MALFORMED);
    /* PUBREL must have flags 2 */
    const uint8_t r2[] = {0x60, 2, 0, 1};
    CHECK_EQ_INT(mqtt_decode(r2, sizeof(r2), &p), MQTT_ERR_MALFORMED);
}

int main(void)
{
    test_header();
    test_connect();
    test_publish_roundtrip();
    test_small_packets();
    test_malformed();
    CHECK_STR(mqtt_connack_text(5), "not authorised");
    TEST_DONE();
}
