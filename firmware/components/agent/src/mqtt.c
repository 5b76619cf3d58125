/* mqtt.c - the MQTT 3.1.1 client session on top of agent_conn and mqtt_codec.
 *
 * Nothing here waits. `mqtt connect` is a state machine serviced by
 * agent_step():
 *
 *   IDLE --connect--> OPENING (conn.c: TCP connect 5 s, TLS handshake 10 s)
 *        --opened, CONNECT queued--> WAIT_CONNACK (10 s) --CONNACK 0--> CONNECTED
 *   any failure or timeout --> IDLE (log lines, then the command's ERR)
 *
 * `mqtt publish ... 1` waits for its PUBACK and `mqtt subscribe` for its
 * SUBACK (10 s each) in the same way, a QoS 0 publish until its bytes are
 * written. The command's log lines are printed when the outcome is known,
 * then the outcome goes to the command layer through the events table given
 * at init (ev->done: the command's final line; ev->pending when the command
 * returns before it). A service: it calls leaves only, never the command
 * layer or the loop. Outgoing
 * packets go through tx and are written as the socket takes them; no
 * progress for 10 s drops the connection. Incoming packets and keep-alive
 * are handled in every state that has a session. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"
#include "mqtt_codec.h"

static uint16_t next_id(agent_mqtt_t *m)
{
    uint16_t id = m->next_packet_id++;
    if (m->next_packet_id == 0) m->next_packet_id = 1;
    return id ? id : next_id(m);
}

bool agent_mqtt_connected(const agent_t *a)
{
    return a->mqtt.state == MQTT_CONNECTED;
}

static bool tx_pending(const agent_mqtt_t *m)
{
    return m->tx_off < m->tx_len;
}

/* ---- the pending command's outcome ----------------------------------------------- */

void agent_mqtt_init(agent_t *a, const agent_op_events_t *ev, void *ev_ctx)
{
    agent_mqtt_t *m = &a->mqtt;
    conn_init(&m->conn, &a->port);
    m->next_packet_id = 1;
    m->ev = ev;
    m->ev_ctx = ev_ctx;
}

void agent_mqtt_export_secrets(agent_t *a, agent_tls_secret_t *sink)
{
    conn_export_secrets(&a->mqtt.conn, sink);
}

/* The operation w waited for is over. A command's (w->origin NULL): the
 * command's final line, through the events table. Owner-less (the boot
 * connect, an RPC publish): nobody waits for a final line; its log lines
 * were printed as for the command, and a failure ends with one line
 * "E ... <origin>: <reason>" (the command's ERR reason), OK with nothing. */
static void op_done(agent_t *a, const mqtt_wait_t *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void op_done(agent_t *a, const mqtt_wait_t *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!w->origin) {
        a->mqtt.ev->done(a->mqtt.ev_ctx, fmt, ap);
    } else {
        char text[300];
        const char *origin = w->origin;
        (void)vsnprintf(text, sizeof(text), fmt, ap);
        if (strncmp(text, "ERR ", 4) == 0) agent_log(a, 'E', "%s: %s", origin, text + 4);
    }
    va_end(ap);
}

static void finish_one(agent_t *a, mqtt_wait_t *w);

/* The session is gone: the operation w waits for (if any) fails. write_err:
 * it failed writing (ERR "<cmd>: write failed (<why>)"). A reply that
 * already arrived in the same read still counts, as it always did. */
static void fail_one(agent_t *a, mqtt_wait_t *w, const char *write_err)
{
    uint8_t type = w->type;
    if (type == 0) return;
    if (w->done) { /* e.g. CONNACK 5 and the broker's close in one segment: CONNACK 5 it is */
        finish_one(a, w);
        return;
    }
    w->type = 0;
    const char *cmd = type == MQTT_CONNACK ? "mqtt connect"
                      : type == MQTT_SUBACK ? "mqtt subscribe"
                                            : "mqtt publish";
    if (write_err) {
        op_done(a, w, "ERR %s: write failed (%s)", cmd, write_err);
    } else if (type == MQTT_CONNACK) {
        op_done(a, w, "ERR mqtt connect: connection closed before CONNACK");
    } else if (type == MQTT_PUBACK) {
        op_done(a, w, "ERR mqtt publish: connection lost before PUBACK");
    } else if (type == MQTT_SUBACK) {
        op_done(a, w, "ERR mqtt subscribe: connection lost before SUBACK");
    } else {
        op_done(a, w, "ERR mqtt publish: write failed (connection lost)");
    }
}

/* Every operation waiting on the session fails (the command's first). */
static void wait_fail(agent_t *a, const char *write_err)
{
    fail_one(a, &a->mqtt.wait, write_err);
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) fail_one(a, &a->mqtt.bg[i], write_err);
}

void agent_mqtt_forget(agent_t *a)
{
    a->mqtt.wait.type = 0;
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) a->mqtt.bg[i].type = 0;
}

bool agent_mqtt_unowned_connecting(const agent_t *a)
{
    return a->mqtt.wait.type == MQTT_CONNACK && a->mqtt.wait.origin != NULL;
}

bool agent_mqtt_idle(const agent_t *a)
{
    return a->mqtt.state == MQTT_IDLE && !conn_is_busy(&a->mqtt.conn) && a->mqtt.wait.type == 0;
}

static void close_session(agent_t *a, bool graceful, const char *write_err)
{
    agent_mqtt_t *m = &a->mqtt;
    conn_close(&m->conn, graceful);
    m->state = MQTT_IDLE;
    m->rx_len = 0;
    m->discard = 0;
    m->ping_outstanding = false;
    mbedtls_platform_zeroize(m->tx, sizeof(m->tx)); /* may still hold CONNECT (password) */
    m->tx_len = m->tx_off = 0;
    wait_fail(a, write_err);
}

/* "MQTT0 connection lost: <why>", close; write: it was a write that failed. */
static void session_lost(agent_t *a, const char *why, bool write)
{
    char text[sizeof(((conn_err_t *)0)->text)];
    snprintf(text, sizeof(text), "%s", why); /* why may live in the session */
    agent_log(a, 'E', "MQTT0 connection lost: %s", text);
    close_session(a, false, write ? text : NULL);
}

/* ---- outgoing bytes --------------------------------------------------------------- */

/* Write what the socket takes now; 0, or -1 (err) when the write failed. */
static int flush_tx(agent_t *a, conn_err_t *err)
{
    agent_mqtt_t *m = &a->mqtt;
    while (tx_pending(m)) {
        int n = conn_send(&m->conn, m->tx + m->tx_off, m->tx_len - m->tx_off, err);
        if (n < 0) return -1;
        if (n == 0) return 0; /* the rest when the socket is writable */
        m->tx_off += (size_t)n;
        m->tx_deadline_ms = agent_now(a) + AGENT_REPLY_TIMEOUT_MS;
    }
    mbedtls_platform_zeroize(m->tx, m->tx_len); /* CONNECT carries the password */
    m->tx_len = m->tx_off = 0;
    return 0;
}

/* Free bytes at tx + tx_len (moves unsent bytes to the front). */
static size_t tx_room(agent_mqtt_t *m)
{
    if (m->tx_off > 0) {
        size_t left = m->tx_len - m->tx_off;
        memmove(m->tx, m->tx + m->tx_off, left);
        mbedtls_platform_zeroize(m->tx + left, m->tx_len - left);
        m->tx_len = left;
        m->tx_off = 0;
    }
    return sizeof(m->tx) - m->tx_len;
}

/* n bytes of a packet were encoded at tx + tx_len: queue and start writing.
 * -1: the connection was lost (and the pending command answered). */
static int tx_commit(agent_t *a, size_t n)
{
    agent_mqtt_t *m = &a->mqtt;
    conn_err_t err;
    if (!tx_pending(m)) m->tx_deadline_ms = agent_now(a) + AGENT_REPLY_TIMEOUT_MS;
    m->tx_len += n;
    m->last_tx_ms = agent_now(a);
    if (flush_tx(a, &err) != 0) {
        session_lost(a, err.text, true);
        return -1;
    }
    return 0;
}

static int send_small(agent_t *a, const uint8_t *pkt, size_t n)
{
    agent_mqtt_t *m = &a->mqtt;
    if (tx_room(m) < n) {
        session_lost(a, "send buffer full", true);
        return -1;
    }
    memcpy(m->tx + m->tx_len, pkt, n);
    return tx_commit(a, n);
}

void agent_mqtt_disconnect(agent_t *a, bool graceful)
{
    agent_mqtt_t *m = &a->mqtt;
    if (graceful && m->state == MQTT_CONNECTED) {
        conn_err_t err;
        size_t room = tx_room(m);
        int n = mqtt_encode_disconnect(m->tx + m->tx_len, room);
        if (n > 0) {
            m->tx_len += (size_t)n;
            (void)flush_tx(a, &err); /* best effort: what the socket takes now */
        }
    }
    close_session(a, graceful, NULL);
}

/* ---- incoming packets -------------------------------------------------------------- */

static void log_message(agent_t *a, const mqtt_packet_t *p)
{
    char topic[400];
    char msg[800];
    bool ttrunc, mtrunc;
    (void)agent_escape(p->u.publish.topic, p->u.publish.topic_len, 96, topic, sizeof(topic), &ttrunc);
    (void)agent_escape(p->u.publish.payload, p->u.publish.payload_len, AGENT_MSG_LOG_MAX, msg,
                       sizeof(msg), &mtrunc);
    if (mtrunc) {
        agent_log(a, 'I', "MQTT0 message topic:%s%s msg:%s... (truncated, %zu bytes)", topic,
                  ttrunc ? "..." : "", msg, p->u.publish.payload_len);
    } else {
        agent_log(a, 'I', "MQTT0 message topic:%s%s msg:%s", topic, ttrunc ? "..." : "", msg);
    }
}

/* An owner-less publish waiting for this PUBACK, or NULL. */
static mqtt_wait_t *bg_find(agent_t *a, uint16_t id)
{
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) {
        mqtt_wait_t *w = &a->mqtt.bg[i];
        if (w->type == MQTT_PUBACK && w->id == id && !w->done) return w;
    }
    return NULL;
}

/* A reply an operation waits for (type, id) arrived. */
static void reply_arrived(agent_t *a, uint8_t type, uint16_t id, uint8_t code)
{
    mqtt_wait_t *w = &a->mqtt.wait;
    mqtt_wait_t *bw = type == MQTT_PUBACK ? bg_find(a, id) : NULL;
    if (w->type == type && (type == MQTT_CONNACK || w->id == id)) {
        w->done = true;
        w->code = code;
    } else if (bw) {
        bw->done = true;
    } else if (type != MQTT_CONNACK) {
        agent_log(a, 'W', "MQTT0 unexpected %s id %u", mqtt_type_name(type), (unsigned)id);
    }
}

/* 0, -1 when the session must be dropped, -2 when it already was. */
static int handle_packet(agent_t *a, const uint8_t *pkt, size_t len)
{
    mqtt_packet_t p;
    int rc = mqtt_decode(pkt, len, &p);
    if (rc != MQTT_OK) {
        agent_log(a, 'E', "MQTT0 %s packet from broker (type %u, %zu bytes), disconnecting",
                  rc == MQTT_ERR_UNEXPECTED ? "unexpected" : "malformed", (unsigned)(pkt[0] >> 4), len);
        return -1;
    }
    switch (p.type) {
    case MQTT_CONNACK:
        agent_log(a, 'I', "MQTT0 CONNACK %u", (unsigned)p.u.connack.return_code);
        reply_arrived(a, MQTT_CONNACK, 0, p.u.connack.return_code);
        break;
    case MQTT_PUBLISH:
        log_message(a, &p);
        if (p.u.publish.qos == 1) {
            uint8_t ack[4];
            int n = mqtt_encode_puback(ack, sizeof(ack), p.u.publish.packet_id);
            if (n > 0 && send_small(a, ack, (size_t)n) != 0) return -2;
        } else if (p.u.publish.qos == 2) {
            agent_log(a, 'W', "MQTT0 QoS 2 message not supported (not acknowledged)");
        }
        break;
    case MQTT_PUBACK: reply_arrived(a, MQTT_PUBACK, p.u.ack.packet_id, 0); break;
    case MQTT_SUBACK:
        reply_arrived(a, MQTT_SUBACK, p.u.suback.packet_id, p.u.suback.return_code);
        break;
    case MQTT_PINGRESP: a->mqtt.ping_outstanding = false; break;
    default: agent_log(a, 'W', "MQTT0 unexpected %s ignored", mqtt_type_name(p.type)); break;
    }
    return 0;
}

/* Parse and handle every complete packet in rx. -1: session dropped. */
static int process_rx(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    for (;;) {
        uint8_t tf;
        uint32_t rem;
        size_t hl;
        int rc = mqtt_parse_header(m->rx, m->rx_len, &tf, &rem, &hl);
        if (rc == MQTT_INCOMPLETE) return 0;
        if (rc != MQTT_OK) {
            agent_log(a, 'E', "MQTT0 malformed packet header from broker, disconnecting");
            close_session(a, false, NULL);
            return -1;
        }
        size_t total = hl + (size_t)rem;
        if (total > sizeof(m->rx)) {
            agent_log(a, 'W', "MQTT0 dropping oversize %s packet (%zu bytes, max %zu)",
                      mqtt_type_name((uint8_t)(tf >> 4)), total, sizeof(m->rx));
            m->discard = total - m->rx_len;
            m->rx_len = 0;
            return 0;
        }
        if (m->rx_len < total) return 0;
        rc = handle_packet(a, m->rx, total);
        if (rc == -2) return -1; /* already closed */
        if (rc != 0) {
            close_session(a, false, NULL);
            return -1;
        }
        memmove(m->rx, m->rx + total, m->rx_len - total);
        m->rx_len -= total;
    }
}

static void read_rx(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    for (int rounds = 0; rounds < 64 && conn_is_open(&m->conn); rounds++) {
        conn_err_t err;
        int n = conn_read(&m->conn, m->rx + m->rx_len, sizeof(m->rx) - m->rx_len, &err);
        if (n < 0) {
            session_lost(a, err.text, false);
            return;
        }
        if (n == 0) return;
        size_t got = (size_t)n;
        if (m->discard) {
            size_t k = got < m->discard ? got : m->discard;
            memmove(m->rx + m->rx_len, m->rx + m->rx_len + k, got - k);
            got -= k;
            m->discard -= k;
        }
        m->rx_len += got;
        if (process_rx(a) != 0) return;
    }
}

/* ---- completing the pending command ------------------------------------------------- */

static void connack_result(agent_t *a, uint8_t code)
{
    const mqtt_wait_t *w = &a->mqtt.wait;
    if (code != 0) {
        agent_mqtt_disconnect(a, false);
        op_done(a, w, "ERR mqtt connect: CONNACK %u (%s)", (unsigned)code, mqtt_connack_text(code));
        return;
    }
    /* CONNACK 0, then the connection lost in the same read: the connect
     * worked (OK, as ever), the session is already gone (logged) */
    if (conn_is_open(&a->mqtt.conn)) a->mqtt.state = MQTT_CONNECTED;
    op_done(a, w, "OK");
}

/* An operation whose reply came (or, QoS 0, whose bytes are written) is over. */
static void finish_one(agent_t *a, mqtt_wait_t *w)
{
    uint8_t type = w->type;
    if (type == MQTT_PUBLISH && !tx_pending(&a->mqtt)) w->done = true; /* QoS 0: written */
    if (type == 0 || !w->done) return;
    w->type = 0;
    if (type == MQTT_CONNACK) {
        connack_result(a, w->code);
    } else if (type == MQTT_SUBACK && w->code == 0x80) {
        agent_log(a, 'E', "MQTT0 SUBACK failure (0x80) for topic:%s", w->topic);
        op_done(a, w, "ERR mqtt subscribe: refused by broker (SUBACK 0x80)");
    } else if (type == MQTT_SUBACK) {
        agent_log(a, 'I', "MQTT0 subscribed topic:%s qos:%u", w->topic, (unsigned)w->code);
        op_done(a, w, "OK");
    } else {
        agent_log(a, 'I', "Published:OK topic:%s msg:%s%s", w->topic, w->msg,
                  w->msg_cut ? "... (truncated)" : "");
        op_done(a, w, "OK");
    }
}

/* The command's operation first, then the owner-less publishes. */
static void finish_wait(agent_t *a)
{
    finish_one(a, &a->mqtt.wait);
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) finish_one(a, &a->mqtt.bg[i]);
}

/* w's reply is overdue (t: now): its log line and outcome. */
static void deadline_one(agent_t *a, mqtt_wait_t *w, uint64_t t)
{
    if (w->type == 0 || w->type == MQTT_PUBLISH || w->done || t < w->deadline_ms) return;
    uint8_t type = w->type;
    w->type = 0;
    if (type == MQTT_CONNACK) {
        agent_log(a, 'E', "MQTT0 no CONNACK within %u ms", (unsigned)AGENT_REPLY_TIMEOUT_MS);
        agent_mqtt_disconnect(a, false);
        op_done(a, w, "ERR mqtt connect: no CONNACK within %u ms", (unsigned)AGENT_REPLY_TIMEOUT_MS);
    } else if (type == MQTT_PUBACK) {
        agent_log(a, 'E', "MQTT0 no PUBACK for id %u within %u ms", (unsigned)w->id,
                  (unsigned)AGENT_REPLY_TIMEOUT_MS);
        op_done(a, w, "ERR mqtt publish: no PUBACK (timeout)");
    } else {
        op_done(a, w, "ERR mqtt subscribe: no SUBACK (timeout)");
    }
}

static void check_deadlines(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    uint64_t t = agent_now(a);
    if (tx_pending(m) && t >= m->tx_deadline_ms) {
        session_lost(a, "write timed out", true);
        return;
    }
    deadline_one(a, &m->wait, t);
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) deadline_one(a, &m->bg[i], t);
}

/* ---- publish / subscribe ---------------------------------------------------------------- */

/* w waits for `type` (id); its outcome comes from finish_one. origin NULL:
 * a command's operation, whose final line comes later (ev->pending). */
static void expect(agent_t *a, mqtt_wait_t *w, const char *origin, uint8_t type, uint16_t id,
                   const char *topic)
{
    bool cut;
    memset(w, 0, sizeof(*w));
    w->type = type;
    w->origin = origin;
    w->id = id;
    w->deadline_ms = agent_now(a) + AGENT_REPLY_TIMEOUT_MS;
    /* shown like incoming topics: non-printable bytes as \xHH */
    (void)agent_escape((const uint8_t *)topic, strlen(topic), 256, w->topic, sizeof(w->topic), &cut);
    if (!origin) a->mqtt.ev->pending(a->mqtt.ev_ctx); /* the final line comes later */
}

static bool has_wildcard(const char *t)
{
    return strchr(t, '+') != NULL || strchr(t, '#') != NULL;
}

int agent_mqtt_publish(agent_t *a, const char *topic, const char *msg, uint8_t qos, char *err,
                       size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    if (m->state != MQTT_CONNECTED) {
        snprintf(err, errlen, "mqtt publish: not connected");
        return -1;
    }
    if (has_wildcard(topic)) {
        snprintf(err, errlen, "mqtt publish: topic must not contain wildcards");
        return -1;
    }
    uint16_t id = qos ? next_id(m) : 0;
    size_t room = tx_room(m); /* first: it may move tx_len */
    int n = mqtt_encode_publish(m->tx + m->tx_len, room, topic, (const uint8_t *)msg, strlen(msg),
                                qos, id, false);
    if (n < 0) {
        snprintf(err, errlen, "mqtt publish: cannot encode PUBLISH (%d)", n);
        return -1;
    }
    expect(a, &m->wait, NULL, qos ? MQTT_PUBACK : MQTT_PUBLISH, id, topic);
    (void)agent_escape((const uint8_t *)msg, strlen(msg), AGENT_MSG_LOG_MAX, m->wait.msg,
                       sizeof(m->wait.msg), &m->wait.msg_cut);
    if (tx_commit(a, (size_t)n) == 0) finish_wait(a); /* QoS 0: done once written */
    return 0;
}

int agent_mqtt_publish_unowned(agent_t *a, const char *origin, const char *topic, const char *msg,
                               uint8_t qos, char *err, size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    mqtt_wait_t *w = NULL;
    if (topic[0] == '\0' || has_wildcard(topic)) {
        snprintf(err, errlen, "params.topic: must be non-empty, without wildcards (+ #)");
        return -1;
    }
    if (qos > 1) {
        snprintf(err, errlen, "params.qos: expected 0 or 1");
        return -1;
    }
    if (m->state != MQTT_CONNECTED) {
        snprintf(err, errlen, "MQTT not connected");
        return -2;
    }
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS && !w; i++) {
        if (m->bg[i].type == 0) w = &m->bg[i];
    }
    if (!w) {
        snprintf(err, errlen, "busy: %u publishes in flight (max)", (unsigned)AGENT_MQTT_BG_PUBS);
        return -2;
    }
    uint16_t id = qos ? next_id(m) : 0;
    size_t room = tx_room(m);
    int n = mqtt_encode_publish(m->tx + m->tx_len, room, topic, (const uint8_t *)msg, strlen(msg),
                                qos, id, false);
    if (n < 0 && n != MQTT_ERR_ARG && room < sizeof(m->tx)) {
        /* would it fit once the bytes ahead of it are written? */
        snprintf(err, errlen, "busy: the send buffer is full, retry");
        return -2;
    }
    if (n < 0) {
        snprintf(err, errlen, "params: topic and message too large (at most about %u bytes together)",
                 (unsigned)(AGENT_MQTT_BUF - 16));
        return -1;
    }
    expect(a, w, origin, qos ? MQTT_PUBACK : MQTT_PUBLISH, id, topic);
    (void)agent_escape((const uint8_t *)msg, strlen(msg), AGENT_MSG_LOG_MAX, w->msg, sizeof(w->msg),
                       &w->msg_cut);
    /* the outcome (Published:OK) comes from a later service round, after the
     * caller has answered; a write that fails now is logged as the session's */
    (void)tx_commit(a, (size_t)n);
    return 0;
}

int agent_mqtt_subscribe(agent_t *a, const char *topic, uint8_t qos, char *err, size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    if (m->state != MQTT_CONNECTED) {
        snprintf(err, errlen, "mqtt subscribe: not connected");
        return -1;
    }
    uint16_t id = next_id(m);
    size_t room = tx_room(m);
    int n = mqtt_encode_subscribe(m->tx + m->tx_len, room, id, topic, qos);
    if (n < 0) {
        snprintf(err, errlen, "mqtt subscribe: cannot encode SUBSCRIBE (%d)", n);
        return -1;
    }
    expect(a, &m->wait, NULL, MQTT_SUBACK, id, topic);
    (void)tx_commit(a, (size_t)n);
    return 0;
}

/* ---- connect --------------------------------------------------------------------------- */

typedef struct {
    char host[256];
    uint16_t port;
    uint32_t keep_alive;
    int suites[SETTING_MAX_SUITES];
    conn_params_t p;
} connect_cfg_t;

static void log_tls_failure(agent_t *a, const conn_err_t *err)
{
    if (err->timeout) {
        agent_log(a, 'E', "MQTT0 TLS handshake failed: timed out after %u ms",
                  (unsigned)AGENT_HANDSHAKE_TIMEOUT_MS);
        return;
    }
    char msg[128];
    agent_strerror(err->code, msg, sizeof(msg));
    if (err->alert >= 0) {
        agent_log(a, 'E', "MQTT0 TLS handshake failed: -0x%04x %s (alert %d %s)",
                  (unsigned)-err->code, msg, err->alert, agent_tls_alert_name(err->alert));
    } else {
        agent_log(a, 'E', "MQTT0 TLS handshake failed: -0x%04x %s", (unsigned)-err->code, msg);
    }
    if (err->verify_flags == 0 || err->verify_flags == (uint32_t)-1) return;
    char info[1024];
    char note[80]; /* " (clock not set: board time ...)" after a date reason, see agent_clock_note */
    int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", err->verify_flags);
    char *save = n > 0 ? info : NULL;
    for (char *line = save; line && *line; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        while (*line == ' ') line++;
        if (*line) {
            agent_log(a, 'E', "MQTT0 verify: %s%s", line,
                      agent_clock_note(a, err->verify_flags, line, note, sizeof(note)));
        }
    }
}

static const char *short_tls_reason(const conn_err_t *err, char *buf, size_t len)
{
    if (err->timeout) {
        snprintf(buf, len, "TLS handshake timed out");
    } else if (err->verify_flags != 0 && err->verify_flags != (uint32_t)-1) {
        snprintf(buf, len, "TLS handshake failed (certificate verify failed)");
    } else if (err->code == MBEDTLS_ERR_NET_CONN_RESET) {
        snprintf(buf, len, "TLS handshake failed (connection reset by broker, see broker log)");
    } else if (err->alert >= 0) {
        snprintf(buf, len, "TLS handshake failed (broker sent alert %d %s)", err->alert,
                 agent_tls_alert_name(err->alert));
    } else {
        char msg[100];
        agent_strerror(err->code, msg, sizeof(msg));
        snprintf(buf, len, "TLS handshake failed (-0x%04x %s)", (unsigned)-err->code, msg);
    }
    return buf;
}

/* TCP connect / TLS setup / handshake failed: log lines, then the ERR. */
static void connect_failed(agent_t *a, const conn_err_t *cerr)
{
    char reason[200];
    a->mqtt.state = MQTT_IDLE;
    a->mqtt.wait.type = 0;
    switch (cerr->stage) {
    case CONN_STAGE_RESOLVE:
    case CONN_STAGE_TCP:
        agent_log(a, 'E', "MQTT0 TCP connect failed: %s", cerr->text);
        op_done(a, &a->mqtt.wait, "ERR mqtt connect: TCP connect failed (%s)", cerr->text);
        break;
    case CONN_STAGE_SETUP:
        agent_log(a, 'E', "MQTT0 TLS setup failed: %s", cerr->text);
        op_done(a, &a->mqtt.wait, "ERR mqtt connect: TLS setup failed (%s)", cerr->text);
        break;
    default:
        log_tls_failure(a, cerr);
        op_done(a, &a->mqtt.wait, "ERR mqtt connect: %s", short_tls_reason(cerr, reason, sizeof(reason)));
        break;
    }
}

/* CONNECT with the current settings, encoded at tx + tx_len. */
static int encode_connect(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    const settings_t *s = &a->settings;
    char cid[40];
    const char *client_id = settings_get(s, SK_MQTT_CLIENT_ID);
    mqtt_connect_opts_t o;
    if (!client_id) {
        unsigned char r[3] = {0, 0, 0};
        (void)agent_rng(a, r, sizeof(r));
        snprintf(cid, sizeof(cid), "hil-agent-%02x%02x%02x", r[0], r[1], r[2]);
        client_id = cid;
    }
    memset(&o, 0, sizeof(o));
    o.client_id = client_id;
    o.user = settings_get(s, SK_MQTT_USER);
    o.pass = settings_get(s, SK_MQTT_PASS);
    o.pass_len = o.pass ? strlen(o.pass) : 0;
    if (o.pass && !o.user) {
        o.pass = NULL;
        o.pass_len = 0;
        agent_log(a, 'W', "MQTT0 mqtt.pass ignored: MQTT 3.1.1 needs mqtt.user with it");
    }
    o.keep_alive = m->keep_alive_s;
    o.clean_session = true;
    size_t room = tx_room(m);
    return mqtt_encode_connect(m->tx + m->tx_len, room, &o);
}

/* TCP (+ TLS) is up: log it, send CONNECT, wait for CONNACK. */
static void connect_opened(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    if (m->conn.tls) {
        const char *cs = conn_ciphersuite(&m->conn);
        agent_log(a, 'I', "ciphersuite: %s", cs ? cs : "?");
    }
    agent_log(a, 'I', "MQTT0 handshake %" PRIu64 " ms", agent_now(a) - m->t0_ms);
    agent_log(a, 'I', "MQTT0 TCP connect ok (0)");
    int n = encode_connect(a);
    if (n < 0) {
        m->wait.type = 0;
        agent_mqtt_disconnect(a, false); /* wipes tx: it may hold part of the password */
        op_done(a, &m->wait, "ERR mqtt connect: cannot encode CONNECT (%d)", n);
        return;
    }
    m->state = MQTT_WAIT_CONNACK;
    m->ping_outstanding = false;
    m->rx_len = 0;
    m->discard = 0;
    m->wait.deadline_ms = agent_now(a) + AGENT_REPLY_TIMEOUT_MS;
    (void)tx_commit(a, (size_t)n); /* a failure answers the command */
}

/* The settings a connect needs, checked; 0 or -1 with the reason in err. */
static int check_settings(const settings_t *s, char *err, size_t errlen)
{
    const char *psk_id = settings_get(s, SK_MQTT_SSL_PSK_IDENTITY);
    const char *psk_hex = settings_get(s, SK_MQTT_SSL_PSK_KEY);
    const char *cert = settings_get(s, SK_MQTT_SSL_CERT);
    const char *key = settings_get(s, SK_MQTT_SSL_KEY);
    if (psk_id && !psk_hex) {
        snprintf(err, errlen, "mqtt.ssl_psk_key: required when mqtt.ssl_psk_identity is set");
    } else if (psk_hex && !psk_id) {
        snprintf(err, errlen, "mqtt.ssl_psk_identity: required when mqtt.ssl_psk_key is set");
    } else if (psk_id && !settings_get(s, SK_MQTT_SSL_CIPHER_SUITES)) {
        snprintf(err, errlen,
                 "mqtt.ssl_cipher_suites: required for PSK (without it no PSK cipher suite is "
                 "offered)");
    } else if ((cert != NULL) != (key != NULL)) {
        snprintf(err, errlen, cert ? "mqtt.ssl_key: required with mqtt.ssl_cert"
                                   : "mqtt.ssl_cert: required with mqtt.ssl_key");
    } else if (cert && !settings_get(s, SK_MQTT_SSL_CA_CERT) && !psk_id) {
        snprintf(err, errlen, "mqtt.ssl_ca_cert: required with mqtt.ssl_cert");
    } else {
        return 0;
    }
    return -1;
}

/* Parse what the connection needs into cfg (psk: the decoded key, psk_cap
 * bytes, owned and wiped by the caller). */
static int build_params(agent_t *a, connect_cfg_t *cfg, uint8_t *psk, size_t psk_cap, char *err,
                        size_t errlen)
{
    const settings_t *s = &a->settings;
    const char *psk_hex = settings_get(s, SK_MQTT_SSL_PSK_KEY);
    const char *suites = settings_get(s, SK_MQTT_SSL_CIPHER_SUITES);
    conn_params_t *p = &cfg->p;
    memset(p, 0, sizeof(*p));
    if (suites) {
        char bad[SETTING_SUITE_BAD_BUF];
        if (settings_parse_suites(suites, strlen(suites), cfg->suites, SETTING_MAX_SUITES, bad,
                                  sizeof(bad)) != 0) {
            snprintf(err, errlen, "mqtt.ssl_cipher_suites: unknown cipher suite '%s'", bad);
            return -1;
        }
        p->suites = cfg->suites;
    }
    if (psk_hex) {
        size_t bad;
        if (agent_hex_decode(psk_hex, strlen(psk_hex), psk, psk_cap, &p->psk_len, &bad) != 0) {
            snprintf(err, errlen, "mqtt.ssl_psk_key: invalid");
            return -1;
        }
        p->psk = psk;
    }
    p->host = cfg->host;
    p->port = cfg->port;
    p->connect_timeout_ms = AGENT_CONNECT_TIMEOUT_MS;
    p->handshake_timeout_ms = AGENT_HANDSHAKE_TIMEOUT_MS;
    p->ca_pem = settings_get(s, SK_MQTT_SSL_CA_CERT);
    p->cert_pem = settings_get(s, SK_MQTT_SSL_CERT);
    p->key_pem = settings_get(s, SK_MQTT_SSL_KEY);
    p->psk_identity = settings_get(s, SK_MQTT_SSL_PSK_IDENTITY);
    p->use_tls = p->ca_pem != NULL || p->psk_identity != NULL;
    p->verify_hostname = p->ca_pem != NULL;
    p->drbg = &a->drbg;
    p->secrets = agent_keylog_sink(a); /* `tls keylog` on: export the session's secrets */
    return 0;
}

static int prepare_connect(agent_t *a, connect_cfg_t *cfg, uint8_t *psk, size_t psk_cap,
                           char *err, size_t errlen)
{
    const settings_t *s = &a->settings;
    const char *server = settings_get(s, SK_MQTT_SERVER);
    const char *ka = settings_get(s, SK_MQTT_KEEP_ALIVE);
    if (!server) {
        snprintf(err, errlen, "mqtt.server: not set");
        return -1;
    }
    if (settings_parse_server(server, strlen(server), cfg->host, sizeof(cfg->host), &cfg->port) != 0) {
        snprintf(err, errlen, "mqtt.server: invalid");
        return -1;
    }
    if (!ka || agent_parse_u32(ka, strlen(ka), 65535, &cfg->keep_alive) != 0) cfg->keep_alive = 60;
    if (check_settings(s, err, errlen) != 0 || build_params(a, cfg, psk, psk_cap, err, errlen) != 0) {
        return -1;
    }
    if (a->port.network_up && !a->port.network_up(a->port.ctx)) {
        snprintf(err, errlen, "mqtt connect: network down");
        return -1;
    }
    if (agent_rng(a, psk, 0) != 0) {
        snprintf(err, errlen, "mqtt connect: random generator init failed");
        return -1;
    }
    return 0;
}

/* Settings are fine: log, go pending (a command's connect: origin NULL),
 * start opening the connection. */
static void start_connect(agent_t *a, const connect_cfg_t *cfg, const char *origin)
{
    agent_mqtt_t *m = &a->mqtt;
    conn_err_t cerr;
    const char *server = settings_get(&a->settings, SK_MQTT_SERVER);
    snprintf(m->server, sizeof(m->server), "%s", server);
    agent_log(a, 'I', "MQTT0 connecting to %s", server);
    if (!cfg->p.use_tls) {
        agent_log(a, 'W', "MQTT0 no TLS: mqtt.ssl_ca_cert and mqtt.ssl_psk_identity unset, "
                          "using plain TCP");
    }
    /* a certificate will be verified: its dates too, against the board clock */
    if (cfg->p.use_tls && cfg->p.ca_pem) (void)agent_clock_warn(a);
    m->keep_alive_s = (uint16_t)cfg->keep_alive;
    m->t0_ms = agent_now(a);
    expect(a, &m->wait, origin, MQTT_CONNACK, 0, "");
    m->state = MQTT_OPENING;
    if (conn_open_start(&m->conn, &cfg->p, &cerr) != 0) connect_failed(a, &cerr);
}

static int connect_as(agent_t *a, const char *origin, char *err, size_t errlen)
{
    connect_cfg_t cfg;
    uint8_t psk[32]; /* the decoded mqtt.ssl_psk_key: wiped on every way out */
    if (conn_is_busy(&a->mqtt.conn)) {
        agent_log(a, 'I', "MQTT0 closing the previous connection");
        agent_mqtt_disconnect(a, true);
    }
    int rc = prepare_connect(a, &cfg, psk, sizeof(psk), err, errlen);
    if (rc == 0) start_connect(a, &cfg, origin); /* the connection keeps its own copy of the PSK */
    mbedtls_platform_zeroize(psk, sizeof(psk));
    mbedtls_platform_zeroize(&cfg, sizeof(cfg));
    return rc;
}

int agent_mqtt_connect(agent_t *a, char *err, size_t errlen)
{
    return connect_as(a, NULL, err, errlen);
}

int agent_mqtt_connect_unowned(agent_t *a, const char *origin, char *err, size_t errlen)
{
    return connect_as(a, origin, err, errlen);
}

/* ---- main loop ----------------------------------------------------------------------------- */

uint32_t agent_mqtt_tick(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    if (m->state != MQTT_CONNECTED || m->keep_alive_s == 0) return UINT32_MAX;
    uint64_t t = agent_now(a);
    uint64_t ka = (uint64_t)m->keep_alive_s * 1000u;
    if (m->ping_outstanding) {
        if (t - m->ping_sent_ms >= ka) {
            agent_log(a, 'E', "MQTT0 keep-alive timeout: no PINGRESP within %u s, disconnecting",
                      (unsigned)m->keep_alive_s);
            agent_mqtt_disconnect(a, false);
            return UINT32_MAX;
        }
        return (uint32_t)(ka - (t - m->ping_sent_ms));
    }
    uint64_t interval = ka * 3u / 4u; /* ping before the broker's 1.5x limit */
    if (t - m->last_tx_ms >= interval) {
        uint8_t pkt[2];
        int n = mqtt_encode_pingreq(pkt, sizeof(pkt));
        if (n > 0 && send_small(a, pkt, (size_t)n) == 0) {
            m->ping_outstanding = true;
            m->ping_sent_ms = t;
            return (uint32_t)ka;
        }
        return UINT32_MAX;
    }
    return (uint32_t)(interval - (t - m->last_tx_ms));
}

int agent_mqtt_fdset(agent_t *a, fd_set *rd, fd_set *wr, int maxfd, uint32_t *wait_ms)
{
    agent_mqtt_t *m = &a->mqtt;
    uint64_t t = agent_now(a);
    uint64_t due = UINT64_MAX;
    if (!conn_is_busy(&m->conn)) return maxfd;
    maxfd = conn_fdset(&m->conn, tx_pending(m), rd, wr, maxfd, wait_ms);
    if (tx_pending(m)) due = m->tx_deadline_ms;
    if (m->state != MQTT_OPENING && m->wait.type != 0 && m->wait.type != MQTT_PUBLISH &&
        m->wait.deadline_ms < due) {
        due = m->wait.deadline_ms;
    }
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) {
        const mqtt_wait_t *w = &m->bg[i];
        if (w->type == 0) continue;
        if (w->done || (w->type == MQTT_PUBLISH && !tx_pending(m))) {
            due = t; /* over: its line is printed in this step's service round */
        } else if (w->type == MQTT_PUBACK && w->deadline_ms < due) {
            due = w->deadline_ms;
        }
    }
    if (due != UINT64_MAX) {
        uint32_t left = due > t ? (uint32_t)(due - t) : 0u;
        if (left < *wait_ms) *wait_ms = left;
    }
    return maxfd;
}

void agent_mqtt_service(agent_t *a, const fd_set *rd, const fd_set *wr)
{
    agent_mqtt_t *m = &a->mqtt;
    conn_err_t err;
    (void)wr; /* a pending write is simply tried: it takes what the socket takes */
    if (m->state == MQTT_OPENING) {
        int r = conn_open_step(&m->conn, &err);
        agent_keylog_flush(a); /* `tls keylog`: before the handshake's outcome */
        if (r < 0) connect_failed(a, &err);
        if (r > 0) connect_opened(a);
        return;
    }
    if (m->state == MQTT_IDLE) return;
    if (tx_pending(m) && flush_tx(a, &err) != 0) {
        session_lost(a, err.text, true);
        return;
    }
    if (FD_ISSET(m->conn.fd, rd) || conn_pending(&m->conn)) read_rx(a);
    if (m->state == MQTT_IDLE) return; /* dropped: the pending command was answered */
    finish_wait(a);
    if (m->state != MQTT_IDLE) check_deadlines(a);
}
