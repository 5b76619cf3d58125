/* mqtt_codec.c - MQTT 3.1.1 encode/decode (see mqtt_codec.h). */
#include "mqtt_codec.h"

#include <string.h>

/* ---- decoding ---------------------------------------------------------- */

int mqtt_parse_header(const uint8_t *buf, size_t len, uint8_t *type_flags, uint32_t *remaining,
                      size_t *header_len)
{
    uint32_t value = 0;
    uint32_t shift = 0;
    if (len < 1) return MQTT_INCOMPLETE;
    for (size_t i = 1; i <= 4; i++) {
        if (i >= len) return MQTT_INCOMPLETE;
        uint8_t b = buf[i];
        value |= (uint32_t)(b & 0x7Fu) << shift;
        if ((b & 0x80u) == 0) {
            /* reject non-minimal encodings (e.g. 0x80 0x00) */
            if (i > 1 && b == 0) return MQTT_ERR_MALFORMED;
            *type_flags = buf[0];
            *remaining = value;
            *header_len = i + 1;
            return MQTT_OK;
        }
        shift += 7;
    }
    return MQTT_ERR_MALFORMED; /* more than 4 length bytes */
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

int mqtt_decode(const uint8_t *buf, size_t len, mqtt_packet_t *out)
{
    uint8_t tf;
    uint32_t rem;
    size_t hl;
    int rc = mqtt_parse_header(buf, len, &tf, &rem, &hl);
    if (rc != MQTT_OK) return rc;
    if ((uint64_t)hl + rem != len) return len < (uint64_t)hl + rem ? MQTT_INCOMPLETE : MQTT_ERR_MALFORMED;

    const uint8_t *p = buf + hl;
    memset(out, 0, sizeof(*out));
    out->type = (uint8_t)(tf >> 4);
    out->flags = (uint8_t)(tf & 0x0Fu);

    switch (out->type) {
    case MQTT_CONNACK:
        if (out->flags != 0 || rem != 2) return MQTT_ERR_MALFORMED;
        if (p[0] & 0xFEu) return MQTT_ERR_MALFORMED;
        out->u.connack.session_present = (p[0] & 1u) != 0;
        out->u.connack.return_code = p[1];
        return MQTT_OK;
    case MQTT_PUBLISH: {
        uint8_t qos = (uint8_t)((out->flags >> 1) & 3u);
        size_t pos = 0;
        if (qos == 3) return MQTT_ERR_MALFORMED;
        if (rem < 2) return MQTT_ERR_MALFORMED;
        uint16_t tlen = rd16(p);
        pos = 2;
        if ((size_t)tlen > rem - pos) return MQTT_ERR_MALFORMED;
        out->u.publish.topic = p + pos;
        out->u.publish.topic_len = tlen;
        pos += tlen;
        if (qos > 0) {
            if (rem - pos < 2) return MQTT_ERR_MALFORMED;
            out->u.publish.packet_id = rd16(p + pos);
            if (out->u.publish.packet_id == 0) return MQTT_ERR_MALFORMED;
            pos += 2;
        }
        out->u.publish.payload = p + pos;
        out->u.publish.payload_len = rem - pos;
        out->u.publish.qos = qos;
        out->u.publish.dup = (out->flags & 8u) != 0;
        out->u.publish.retain = (out->flags & 1u) != 0;
        return MQTT_OK;
    }
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        if (out->flags != 0 || rem != 2) return MQTT_ERR_MALFORMED;
        out->u.ack.packet_id = rd16(p);
        if (out->u.ack.packet_id == 0) return MQTT_ERR_MALFORMED;
        return MQTT_OK;
    case MQTT_PUBREL:
        if (out->flags != 2 || rem != 2) return MQTT_ERR_MALFORMED;
        out->u.ack.packet_id = rd16(p);
        if (out->u.ack.packet_id == 0) return MQTT_ERR_MALFORMED;
        return MQTT_OK;
    case MQTT_SUBACK:
        /* we subscribe one topic at a time: exactly one return code */
        if (out->flags != 0 || rem != 3) return MQTT_ERR_MALFORMED;
        out->u.suback.packet_id = rd16(p);
        out->u.suback.return_code = p[2];
        if (out->u.suback.packet_id == 0) return MQTT_ERR_MALFORMED;
        if (p[2] > 2 && p[2] != 0x80) return MQTT_ERR_MALFORMED;
        return MQTT_OK;
    case MQTT_PINGRESP:
        if (out->flags != 0 || rem != 0) return MQTT_ERR_MALFORMED;
        return MQTT_OK;
    default:
        return MQTT_ERR_UNEXPECTED;
    }
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    bool overflow;
} wr_t;

static void put8(wr_t *w, uint8_t b)
{
    if (w->pos >= w->cap) {
        w->overflow = true;
        return;
    }
    w->buf[w->pos++] = b;
}

static void put16(wr_t *w, uint16_t v)
{
    put8(w, (uint8_t)(v >> 8));
    put8(w, (uint8_t)v);
}

static void putbytes(wr_t *w, const void *data, size_t n)
{
    if (n > w->cap - w->pos || w->pos > w->cap) {
        w->overflow = true;
        return;
    }
    if (n) memcpy(w->buf + w->pos, data, n);
    w->pos += n;
}

static void putstr(wr_t *w, const void *s, size_t n)
{
    put16(w, (uint16_t)n);
    putbytes(w, s, n);
}

static void put_header(wr_t *w, uint8_t type_flags, size_t remaining)
{
    put8(w, type_flags);
    do {
        uint8_t b = (uint8_t)(remaining & 0x7Fu);
        remaining >>= 7;
        if (remaining) b |= 0x80u;
        put8(w, b);
    } while (remaining);
}

static int finish(const wr_t *w)
{
    if (w->overflow || w->pos > (size_t)INT32_MAX) return MQTT_ERR_NOSPACE;
    return (int)w->pos;
}

int mqtt_encode_connect(uint8_t *buf, size_t cap, const mqtt_connect_opts_t *o)
{
    wr_t w = {buf, cap, 0, false};
    const char *cid = o->client_id ? o->client_id : "";
    size_t cid_len = strlen(cid);
    size_t user_len = o->user ? strlen(o->user) : 0;
    uint8_t flags = 0;
    size_t rem = 10 + 2 + cid_len;

    if (cid_len > 0xFFFF || user_len > 0xFFFF || o->pass_len > 0xFFFF) return MQTT_ERR_ARG;
    if (o->pass && !o->user) return MQTT_ERR_ARG; /* 3.1.1: password needs user name */
    if (o->clean_session) flags |= 0x02u;
    if (o->user) {
        flags |= 0x80u;
        rem += 2 + user_len;
    }
    if (o->pass) {
        flags |= 0x40u;
        rem += 2 + o->pass_len;
    }
    put_header(&w, (uint8_t)(MQTT_CONNECT << 4), rem);
    putstr(&w, "MQTT", 4);
    put8(&w, 4); /* protocol level 3.1.1 */
    put8(&w, flags);
    put16(&w, o->keep_alive);
    putstr(&w, cid, cid_len);
    if (o->user) putstr(&w, o->user, user_len);
    if (o->pass) putstr(&w, o->pass, o->pass_len);
    return finish(&w);
}

int mqtt_encode_publish(uint8_t *buf, size_t cap, const char *topic, const uint8_t *payload,
                        size_t payload_len, uint8_t qos, uint16_t packet_id, bool retain)
{
    wr_t w = {buf, cap, 0, false};
    size_t tlen = strlen(topic);
    size_t rem;
    if (qos > 1 || tlen == 0 || tlen > 0xFFFF) return MQTT_ERR_ARG;
    if (qos > 0 && packet_id == 0) return MQTT_ERR_ARG;
    if (payload_len > MQTT_MAX_REMAINING - 4 - tlen) return MQTT_ERR_ARG;
    rem = 2 + tlen + (qos ? 2u : 0u) + payload_len;
    put_header(&w, (uint8_t)((MQTT_PUBLISH << 4) | (qos << 1) | (retain ? 1 : 0)), rem);
    putstr(&w, topic, tlen);
    if (qos) put16(&w, packet_id);
    putbytes(&w, payload, payload_len);
    return finish(&w);
}

int mqtt_encode_puback(uint8_t *buf, size_t cap, uint16_t packet_id)
{
    wr_t w = {buf, cap, 0, false};
    put_header(&w, (uint8_t)(MQTT_PUBACK << 4), 2);
    put16(&w, packet_id);
    return finish(&w);
}

int mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *topic,
                          uint8_t qos)
{
    wr_t w = {buf, cap, 0, false};
    size_t tlen = strlen(topic);
    if (qos > 2 || tlen == 0 || tlen > 0xFFFF || packet_id == 0) return MQTT_ERR_ARG;
    put_header(&w, (uint8_t)((MQTT_SUBSCRIBE << 4) | 0x02), 2 + 2 + tlen + 1);
    put16(&w, packet_id);
    putstr(&w, topic, tlen);
    put8(&w, qos);
    return finish(&w);
}

int mqtt_encode_pingreq(uint8_t *buf, size_t cap)
{
    wr_t w = {buf, cap, 0, false};
    put_header(&w, (uint8_t)(MQTT_PINGREQ << 4), 0);
    return finish(&w);
}

int mqtt_encode_disconnect(uint8_t *buf, size_t cap)
{
    wr_t w = {buf, cap, 0, false};
    put_header(&w, (uint8_t)(MQTT_DISCONNECT << 4), 0);
    return finish(&w);
}

const char *mqtt_connack_text(uint8_t rc)
{
    switch (rc) {
    case 0: return "accepted";
    case 1: return "unacceptable protocol version";
    case 2: return "identifier rejected";
    case 3: return "server unavailable";
    case 4: return "bad user name or password";
    case 5: return "not authorised";
    default: return "unknown return code";
    }
}

const char *mqtt_type_name(uint8_t type)
{
    static const char *const names[] = {"RESERVED", "CONNECT", "CONNACK", "PUBLISH",
                                        "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
                                        "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
                                        "PINGREQ", "PINGRESP", "DISCONNECT", "RESERVED"};
    return names[type & 15u];
}
