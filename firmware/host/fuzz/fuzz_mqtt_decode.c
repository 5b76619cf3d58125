/* fuzz_mqtt_decode.c - libFuzzer harness: MQTT packet decoding, both a
 * single packet and a stream split the way the client splits it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mqtt_packet_t p;
    (void)mqtt_decode(data, size, &p);

    size_t pos = 0;
    while (pos < size) {
        uint8_t tf;
        uint32_t rem;
        size_t hl;
        if (mqtt_parse_header(data + pos, size - pos, &tf, &rem, &hl) != MQTT_OK) break;
        if ((uint64_t)hl + rem > size - pos) break;
        size_t total = hl + rem;
        if (mqtt_decode(data + pos, total, &p) == MQTT_OK && p.type == MQTT_PUBLISH) {
            /* touch every byte the decoder points at */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < p.u.publish.topic_len; i++) sink ^= p.u.publish.topic[i];
            for (size_t i = 0; i < p.u.publish.payload_len; i++) sink ^= p.u.publish.payload[i];
            (void)sink;
        }
        pos += total;
    }
    return 0;
}
