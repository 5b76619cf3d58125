/* mqtt_codec.h - MQTT 3.1.1 packet encoder/decoder. Pure: no I/O, no
 * allocation; every length is checked against the buffer. */
#ifndef MQTT_CODEC_H
#define MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mqtt_packet_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
};

/* Result codes (negative = error). */
#define MQTT_OK 0
#define MQTT_INCOMPLETE (-1)   /* need more bytes */
#define MQTT_ERR_MALFORMED (-2) /* lengths/flags inconsistent */
#define MQTT_ERR_UNEXPECTED (-3) /* a packet type a client never receives */
#define MQTT_ERR_NOSPACE (-4)   /* output buffer too small */
#define MQTT_ERR_ARG (-5)       /* bad argument (too long string, qos) */

#define MQTT_MAX_REMAINING 268435455u

typedef struct {
    const char *client_id; /* may be empty */
    const char *user;      /* NULL = absent */
    const char *pass;      /* NULL = absent (needs user) */
    size_t pass_len;
    uint16_t keep_alive;
    bool clean_session;
} mqtt_connect_opts_t;

typedef struct {
    uint8_t type;  /* enum mqtt_packet_type */
    uint8_t flags; /* low nibble of the fixed header */
    union {
        struct {
            bool session_present;
            uint8_t return_code;
        } connack;
        struct {
            const uint8_t *topic; /* points into the decoded buffer */
            uint16_t topic_len;
            const uint8_t *payload;
            size_t payload_len;
            uint8_t qos;
            bool dup;
            bool retain;
            uint16_t packet_id; /* 0 for QoS 0 */
        } publish;
        struct {
            uint16_t packet_id;
        } ack; /* PUBACK, UNSUBACK */
        struct {
            uint16_t packet_id;
            uint8_t return_code; /* first (only) granted QoS or 0x80 */
        } suback;
    } u;
} mqtt_packet_t;

/* Fixed header: on MQTT_OK sets *type_flags (first byte), *remaining and
 * *header_len (1 + 1..4 bytes). */
int mqtt_parse_header(const uint8_t *buf, size_t len, uint8_t *type_flags, uint32_t *remaining,
                      size_t *header_len);

/* Decode one complete packet of exactly len bytes (header included).
 * Pointers in *out refer into buf. */
int mqtt_decode(const uint8_t *buf, size_t len, mqtt_packet_t *out);

/* Encoders: return the packet length (> 0) or a negative MQTT_ERR_*. */
int mqtt_encode_connect(uint8_t *buf, size_t cap, const mqtt_connect_opts_t *o);
int mqtt_encode_publish(uint8_t *buf, size_t cap, const char *topic, const uint8_t *payload,
                        size_t payload_len, uint8_t qos, uint16_t packet_id, bool retain);
int mqtt_encode_puback(uint8_t *buf, size_t cap, uint16_t packet_id);
int mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *topic,
                          uint8_t qos);
int mqtt_encode_pingreq(uint8_t *buf, size_t cap);
int mqtt_encode_disconnect(uint8_t *buf, size_t cap);

/* Human text for a CONNACK return code ("accepted", "not authorised", ...). */
const char *mqtt_connack_text(uint8_t rc);
const char *mqtt_type_name(uint8_t type);

#endif
