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
 * are handled in every state that has a session.
 *
 * Keep-alive: a PINGREQ goes when nothing was sent, or nothing received, for
 * keep_alive/2 (and none is outstanding); with one outstanding, nothing at
 * all received for keep_alive/2 since it went means the link is dead. So a
 * broker that goes silent (no FIN, no RST) is noticed at most keep_alive
 * after its last byte.
 *
 * Reconnect (mqtt.reconnect_timeout_max > 0; mqtt_offline.c has the pure
 * parts): a session that reached CONNACK 0 (or the boot connect, from its
 * first attempt) is "armed"; when it is lost (read/write error, EOF, keep-
 * alive, malformed packet: never the user's own close) the service schedules
 * attempts with a doubling back-off, each one an owner-less connect with
 * the ordinary connect lines (origin RECONNECT). While it is down, QoS 1
 * publishes are held in the offline queue; the reconnect's CONNACK 0
 * resubscribes (session present 0) and sends the queue in order. A QoS 1
 * publish in flight at the loss goes back to the queue (from its shadow copy,
 * MQQ_SHADOW) and is resent with DUP=1. Attempts do not hold the console
 * (only the boot connect's first attempt does, as before). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"
#include "mqtt_codec.h"

/* The origin of a reconnect attempt (an owner-less connect): its failure ends
 * with "E ... MQTT0 reconnect: <the ERR reason of `mqtt connect`>". */
static const char RECONNECT_ORIGIN[] = "MQTT0 reconnect";

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

bool agent_mqtt_reconnecting(const agent_t *a)
{
    return a->mqtt.rc.active;
}

size_t agent_mqtt_queued(const agent_t *a)
{
    return mqtt_queue_count_without(&a->mqtt.queue, MQQ_SHADOW);
}

static bool tx_pending(const agent_mqtt_t *m)
{
    return m->tx_off < m->tx_len;
}

/* A topic as log lines show it (like incoming ones: non-printable bytes as \xHH). */
static const char *shown_topic(const char *topic, char *buf, size_t cap)
{
    bool cut;
    (void)agent_escape((const uint8_t *)topic, strlen(topic), 256, buf, cap, &cut);
    return buf;
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

/* w's shadow copy in the offline queue is not needed any more. */
static void shadow_drop(agent_t *a, mqtt_wait_t *w)
{
    if (!w->shadow) return;
    w->shadow = false;
    int i = mqtt_queue_find(&a->mqtt.queue, w->id, MQQ_SHADOW, 0);
    if (i >= 0) mqtt_queue_remove(&a->mqtt.queue, (size_t)i);
}

/* The operation w waited for is over. A command's (w->origin NULL): the
 * command's final line, through the events table. Owner-less (the boot
 * connect, an RPC publish, a reconnect attempt): nobody waits for a final
 * line; its log lines were printed as for the command, and a failure ends
 * with one line "E ... <origin>: <reason>" (the command's ERR reason), OK
 * with nothing. */
static void op_done_v(agent_t *a, mqtt_wait_t *w, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void op_done_v(agent_t *a, mqtt_wait_t *w, const char *fmt, va_list ap)
{
    shadow_drop(a, w);
    if (!w->origin) {
        a->mqtt.ev->done(a->mqtt.ev_ctx, fmt, ap);
    } else {
        char text[300];
        const char *origin = w->origin;
        (void)vsnprintf(text, sizeof(text), fmt, ap);
        if (strncmp(text, "ERR ", 4) == 0) agent_log(a, 'E', "%s: %s", origin, text + 4);
    }
}

static void op_done(agent_t *a, mqtt_wait_t *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void op_done(agent_t *a, mqtt_wait_t *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    op_done_v(a, w, fmt, ap);
    va_end(ap);
}

/* A command's operation that is over as it starts (a QoS 1 publish put in
 * the offline queue): pending, then its final line. */
static void answer_now(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answer_now(agent_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a->mqtt.ev->pending(a->mqtt.ev_ctx);
    a->mqtt.ev->done(a->mqtt.ev_ctx, fmt, ap);
    va_end(ap);
}

static void finish_one(agent_t *a, mqtt_wait_t *w);
static void connect_done(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void close_session(agent_t *a, bool graceful, const char *write_err, bool lost);

/* ---- reconnect ---------------------------------------------------------------------- */

/* The offline queue is dropped (why NULL: silently); its messages are never
 * sent. Shadow copies go too (their publishes report their own outcome). */
static void drop_queue(agent_t *a, const char *why)
{
    agent_mqtt_t *m = &a->mqtt;
    size_t k = agent_mqtt_queued(a);
    if (why && k > 0) agent_log(a, 'W', "MQTT0 dropped %zu queued message(s): %s", k, why);
    mqtt_queue_clear(&m->queue);
    m->wait.shadow = false;
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) m->bg[i].shadow = false;
}

/* The next attempt: "MQTT0 reconnect attempt <n> in <ms> ms". */
static void reconnect_schedule(agent_t *a)
{
    mqtt_reconnect_t *rc = &a->mqtt.rc;
    uint32_t w = mqtt_backoff_next(&rc->backoff);
    rc->attempt++;
    rc->scheduled = true;
    rc->due_ms = agent_now(a) + w;
    agent_log(a, 'I', "MQTT0 reconnect attempt %u in %" PRIu32 " ms", rc->attempt, w);
}

/* The session (or the boot connect's first attempt) is lost: reconnecting. */
static void loss_begin(agent_t *a)
{
    mqtt_reconnect_t *rc = &a->mqtt.rc;
    rc->active = true;
    rc->lost_ms = agent_now(a);
    rc->attempt = 0;
    mqtt_backoff_reset(&rc->backoff);
    reconnect_schedule(a);
}

/* Something ends the session on purpose: no attempt follows, the remembered
 * subscriptions are forgotten, an attempt under way is nobody's any more
 * (the caller closes its connection). The offline queue stays. */
static void reconnect_end(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    m->rc.armed = false;
    m->rc.active = false;
    m->rc.scheduled = false;
    memset(m->subs, 0, sizeof(m->subs));
    if (m->wait.type == MQTT_CONNACK && m->wait.origin == RECONNECT_ORIGIN) m->wait.type = 0;
}

/* A connect that nobody retries failed (origin: the wait's owner). */
static void connect_failed_then(agent_t *a, const char *origin)
{
    agent_mqtt_t *m = &a->mqtt;
    if (origin == RECONNECT_ORIGIN) {
        if (m->rc.active) reconnect_schedule(a);
    } else if (origin && m->rc.armed) {
        loss_begin(a); /* the boot connect's own attempt: a board retries until the broker is up */
    } else if (!origin) {
        drop_queue(a, "mqtt connect failed"); /* a command's connect is not retried */
    }
}

/* ---- subscriptions remembered for a reconnect ----------------------------------------- */

static mqtt_sub_t *sub_find(agent_mqtt_t *m, const char *topic)
{
    for (size_t i = 0; i < AGENT_MQTT_SUBS; i++) {
        if (m->subs[i].topic[0] && strcmp(m->subs[i].topic, topic) == 0) return &m->subs[i];
    }
    return NULL;
}

static size_t sub_count(const agent_mqtt_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < AGENT_MQTT_SUBS; i++) n += m->subs[i].topic[0] ? 1u : 0u;
    return n;
}

/* A `mqtt subscribe` got its SUBACK: remembered (a topic already there gets
 * the new QoS). Room was checked when it was sent. */
static void sub_remember(agent_mqtt_t *m, const char *topic, uint8_t qos)
{
    mqtt_sub_t *s = sub_find(m, topic);
    for (size_t i = 0; i < AGENT_MQTT_SUBS && !s; i++) {
        if (!m->subs[i].topic[0]) s = &m->subs[i];
    }
    if (!s || strlen(topic) > AGENT_MQTT_SUB_TOPIC_MAX) return;
    snprintf(s->topic, sizeof(s->topic), "%s", topic);
    s->qos = qos;
    s->pending_id = 0;
}

/* A resubscribe's SUBACK (id) arrived: true when it was one. */
static bool resub_ack(agent_t *a, uint16_t id, uint8_t code)
{
    agent_mqtt_t *m = &a->mqtt;
    char t[300];
    for (size_t i = 0; i < AGENT_MQTT_SUBS; i++) {
        mqtt_sub_t *s = &m->subs[i];
        if (!s->topic[0] || s->pending_id == 0 || s->pending_id != id) continue;
        s->pending_id = 0;
        if (code == 0x80) {
            agent_log(a, 'E', "MQTT0 resubscribe %s refused by the broker (SUBACK 0x80): forgotten",
                      shown_topic(s->topic, t, sizeof(t)));
            memset(s, 0, sizeof(*s));
        } else {
            agent_log(a, 'I', "MQTT0 resubscribed %s qos %u", shown_topic(s->topic, t, sizeof(t)),
                      (unsigned)code);
        }
        return true;
    }
    return false;
}

/* ---- closing ------------------------------------------------------------------------- */

/* The session is gone: the operation w waits for (if any) fails. write_err:
 * it failed writing (ERR "<cmd>: write failed (<why>)"). A reply that
 * already arrived in the same read still counts, as it always did. requeue:
 * the connection was lost and a reconnect follows, so a QoS 1 publish in
 * flight goes back to the offline queue (from its shadow copy) and is resent
 * after it. */
static void fail_one(agent_t *a, mqtt_wait_t *w, const char *write_err, bool requeue)
{
    agent_mqtt_t *m = &a->mqtt;
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
    if (type == MQTT_PUBACK && requeue) {
        int i = w->shadow ? mqtt_queue_find(&m->queue, w->id, MQQ_SHADOW, 0) : -1;
        if (i >= 0) {
            mqq_entry_t *e = &m->queue.e[i];
            e->flags = MQQ_DUP; /* a queued message now, sent before: same id, DUP=1 */
            w->shadow = false;
            agent_log(a, 'W', "MQTT0 PUBLISH id %u unacknowledged when the connection was lost: "
                              "resent after the reconnect", (unsigned)w->id);
            op_done(a, w, "OK queued %d of %zu (connection lost before PUBACK)", i + 1,
                    m->rc.queue_max);
            return;
        }
        agent_log(a, 'E', "MQTT0 PUBLISH id %u lost: offline queue full%s", (unsigned)w->id,
                  w->shadow_err == MQQ_NO_ROOM ? " (bytes)" : "");
    }
    if (type == MQTT_CONNACK) {
        if (write_err) {
            connect_done(a, "ERR mqtt connect: write failed (%s)", write_err);
        } else {
            connect_done(a, "ERR mqtt connect: connection closed before CONNACK");
        }
    } else if (write_err) {
        op_done(a, w, "ERR %s: write failed (%s)", cmd, write_err);
    } else if (type == MQTT_PUBACK) {
        op_done(a, w, "ERR mqtt publish: connection lost before PUBACK");
    } else if (type == MQTT_SUBACK) {
        op_done(a, w, "ERR mqtt subscribe: connection lost before SUBACK");
    } else {
        op_done(a, w, "ERR mqtt publish: write failed (connection lost)");
    }
}

/* Every operation waiting on the session fails (the command's first). */
static void wait_fail(agent_t *a, const char *write_err, bool requeue)
{
    fail_one(a, &a->mqtt.wait, write_err, requeue);
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) fail_one(a, &a->mqtt.bg[i], write_err, requeue);
}

void agent_mqtt_forget(agent_t *a)
{
    a->mqtt.wait.type = 0;
    for (size_t i = 0; i < AGENT_MQTT_BG_PUBS; i++) a->mqtt.bg[i].type = 0;
    memset(&a->mqtt.rc, 0, sizeof(a->mqtt.rc)); /* no attempt after this */
}

bool agent_mqtt_unowned_connecting(const agent_t *a)
{
    /* a reconnect attempt leaves the console alone (it may retry for hours) */
    return a->mqtt.wait.type == MQTT_CONNACK && a->mqtt.wait.origin != NULL &&
           a->mqtt.wait.origin != RECONNECT_ORIGIN;
}

bool agent_mqtt_idle(const agent_t *a)
{
    return a->mqtt.state == MQTT_IDLE && !conn_is_busy(&a->mqtt.conn) && a->mqtt.wait.type == 0 &&
           !a->mqtt.rc.active;
}

/* Queued messages that were sent and not acknowledged are sent again (DUP)
 * after the next CONNACK 0. */
static void requeue_sent(agent_t *a)
{
    mqtt_queue_t *q = &a->mqtt.queue;
    for (size_t i = 0; i < q->count; i++) {
        mqq_entry_t *e = &q->e[i];
        if ((e->flags & MQQ_SENT) && !(e->flags & MQQ_SHADOW)) {
            e->flags = MQQ_DUP;
            agent_log(a, 'W', "MQTT0 PUBLISH id %u unacknowledged when the connection was lost: "
                              "resent after the reconnect", (unsigned)e->id);
        }
    }
}

/* Close the connection. lost: the connection failed (not the user's doing):
 * with reconnect armed, what was in flight is kept and attempts follow;
 * without, the offline queue is dropped. */
static void close_session(agent_t *a, bool graceful, const char *write_err, bool lost)
{
    agent_mqtt_t *m = &a->mqtt;
    bool was_up = m->state == MQTT_CONNECTED;
    bool reconnect = lost && was_up && m->rc.armed;
    conn_close(&m->conn, graceful);
    m->state = MQTT_IDLE;
    m->rx_len = 0;
    m->discard = 0;
    m->ping_outstanding = false;
    mbedtls_platform_zeroize(m->tx, sizeof(m->tx)); /* may still hold CONNECT (password) */
    m->tx_len = m->tx_off = 0;
    for (size_t i = 0; i < AGENT_MQTT_SUBS; i++) m->subs[i].pending_id = 0;
    if (lost && was_up && !reconnect) drop_queue(a, "connection lost (no reconnect)");
    requeue_sent(a);
    wait_fail(a, write_err, reconnect);
    /* shadows nobody claimed (their publishes failed above) */
    for (size_t i = 0; i < m->queue.count; i++) {
        if (m->queue.e[i].flags & MQQ_SHADOW) mqtt_queue_remove(&m->queue, i--);
    }
    if (reconnect) loss_begin(a);
}

/* "MQTT0 connection lost: <why>", close; write: it was a write that failed. */
static void session_lost(agent_t *a, const char *why, bool write)
{
    char text[sizeof(((conn_err_t *)0)->text)];
    snprintf(text, sizeof(text), "%s", why); /* why may live in the session */
    agent_log(a, 'E', "MQTT0 connection lost: %s", text);
    close_session(a, false, write ? text : NULL, true);
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

/* Close (graceful: DISCONNECT first, best effort), not a loss. */
static void close_conn(agent_t *a, bool graceful)
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
    close_session(a, graceful, NULL, false);
}

void agent_mqtt_disconnect(agent_t *a, bool graceful, const char *why)
{
    reconnect_end(a);
    drop_queue(a, why);
    close_conn(a, graceful);
}

/* ---- the offline queue ------------------------------------------------------------------ */

/* A QoS 1 publish while the connection is down and reconnect is on: held
 * for the reconnect. 0 (k: its place), or -1 with the reason in err. */
static int queue_offline(agent_t *a, const char *topic, const char *msg, size_t *k, char *err,
                         size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    char t[300];
    size_t tl = strlen(topic), ml = strlen(msg);
    mqq_result_t r = mqtt_queue_push(&m->queue, m->rc.queue_max, false, topic, tl,
                                     (const uint8_t *)msg, ml, 0, 0);
    (void)shown_topic(topic, t, sizeof(t));
    if (r == MQQ_FULL) {
        snprintf(err, errlen, "offline queue full (%zu of %zu): not queued", m->queue.count,
                 m->rc.queue_max);
    } else if (r == MQQ_NO_ROOM) {
        snprintf(err, errlen,
                 "offline queue full (%zu of %u bytes in use, this message needs %zu): not queued",
                 m->queue.used, (unsigned)AGENT_MQTT_QUEUE_BYTES, mqtt_queue_need(tl, ml));
    } else {
        *k = m->queue.count;
        agent_log(a, 'I', "MQTT0 queued PUBLISH topic:%s (%zu of %zu)", t, *k, m->rc.queue_max);
        return 0;
    }
    agent_log(a, 'E', "MQTT0 %s (topic:%s)", err, t);
    return -1;
}

/* A QoS 1 publish (id) goes out while reconnect is armed: a shadow copy in
 * the queue lets a lost connection resend it. */
static void shadow_add(agent_t *a, mqtt_wait_t *w, const char *topic, const char *msg)
{
    agent_mqtt_t *m = &a->mqtt;
    w->shadow = false;
    w->shadow_err = MQQ_OK;
    if (!m->rc.armed) return;
    mqq_result_t r = mqtt_queue_push(&m->queue, m->rc.queue_max, false, topic, strlen(topic),
                                     (const uint8_t *)msg, strlen(msg), MQQ_SHADOW | MQQ_SENT, 0);
    if (r == MQQ_OK) {
        m->queue.e[m->queue.count - 1].id = w->id;
        w->shadow = true;
    }
    w->shadow_err = (uint8_t)r;
}

/* Send the queued messages not sent yet, in order (as the send buffer
 * takes them: the rest in a later round). announce: the first round after a
 * CONNACK 0, "MQTT0 sending <k> queued message(s)". */
static void pump_queue(agent_t *a, bool announce)
{
    agent_mqtt_t *m = &a->mqtt;
    mqtt_queue_t *q = &m->queue;
    char t[300];
    if (m->state != MQTT_CONNECTED) return;
    size_t k = mqtt_queue_count_without(q, MQQ_SENT | MQQ_SHADOW);
    if (k == 0) return;
    if (announce) agent_log(a, 'I', "MQTT0 sending %zu queued message(s)", k);
    for (size_t i = 0; i < q->count; i++) {
        mqq_entry_t *e = &q->e[i];
        if (e->flags & (MQQ_SENT | MQQ_SHADOW)) continue;
        uint16_t id = e->id ? e->id : next_id(m); /* a resend keeps its id */
        size_t room = tx_room(m);
        int n = mqtt_encode_publish(m->tx + m->tx_len, room, mqtt_queue_topic(q, i),
                                    mqtt_queue_msg(q, i), e->msg_len, 1, id, false);
        if (n < 0 && room < sizeof(m->tx)) return; /* when the bytes ahead of it are written */
        if (n < 0) {
            agent_log(a, 'E', "MQTT0 queued PUBLISH topic:%s cannot be encoded (%d): dropped",
                      shown_topic(mqtt_queue_topic(q, i), t, sizeof(t)), n);
            mqtt_queue_remove(q, i--);
            continue;
        }
        bool dup = (e->flags & MQQ_DUP) != 0;
        if (dup) m->tx[m->tx_len] |= 0x08u; /* DUP flag of the fixed header */
        e->id = id;
        e->flags |= MQQ_SENT;
        e->deadline_ms = agent_now(a) + AGENT_REPLY_TIMEOUT_MS;
        agent_log(a, 'I', "MQTT0 sending queued PUBLISH id %u topic:%s%s", (unsigned)id,
                  shown_topic(mqtt_queue_topic(q, i), t, sizeof(t)), dup ? " (DUP)" : "");
        if (tx_commit(a, (size_t)n) != 0) return; /* lost again: the queue was kept */
    }
}

/* A queued message's PUBACK (queue index i). */
static void queued_puback(agent_t *a, size_t i)
{
    mqtt_queue_t *q = &a->mqtt.queue;
    char t[300], msg[800];
    bool cut;
    (void)agent_escape(mqtt_queue_msg(q, i), q->e[i].msg_len, AGENT_MSG_LOG_MAX, msg, sizeof(msg),
                       &cut);
    agent_log(a, 'I', "MQTT0 PUBACK id %u (queued)", (unsigned)q->e[i].id);
    agent_log(a, 'I', "Published:OK topic:%s msg:%s%s", shown_topic(mqtt_queue_topic(q, i), t, sizeof(t)),
              msg, cut ? "... (truncated)" : "");
    mqtt_queue_remove(q, i);
}

/* After a reconnect's CONNACK 0: the remembered subscriptions again
 * (session present 0), or "session kept" (the broker still has them). */
static void resubscribe(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    char t[300];
    if (m->session_present) {
        agent_log(a, 'I', "MQTT0 session kept: %zu subscription(s)", sub_count(m));
        return;
    }
    for (size_t i = 0; i < AGENT_MQTT_SUBS && m->state == MQTT_CONNECTED; i++) {
        mqtt_sub_t *s = &m->subs[i];
        if (!s->topic[0]) continue;
        uint16_t id = next_id(m);
        size_t room = tx_room(m);
        int n = mqtt_encode_subscribe(m->tx + m->tx_len, room, id, s->topic, s->qos);
        if (n < 0) {
            agent_log(a, 'E', "MQTT0 resubscribe %s: cannot encode SUBSCRIBE (%d)",
                      shown_topic(s->topic, t, sizeof(t)), n);
            continue;
        }
        s->pending_id = id;
        s->deadline_ms = agent_now(a) + AGENT_REPLY_TIMEOUT_MS;
        agent_log(a, 'I', "MQTT0 resubscribe %s qos %u", shown_topic(s->topic, t, sizeof(t)),
                  (unsigned)s->qos);
        if (tx_commit(a, (size_t)n) != 0) return;
    }
}

/* CONNACK 0 and the connection is open: the session is up. */
static void session_up(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    mqtt_reconnect_t *rc = &m->rc;
    bool was_reconnect = rc->active;
    m->state = MQTT_CONNECTED;
    if (was_reconnect) {
        agent_log(a, 'I', "MQTT0 reconnected after %u attempt(s), offline %" PRIu64
                          " ms, session present %u",
                  rc->attempt, agent_now(a) - rc->lost_ms, (unsigned)m->session_present);
    }
    rc->active = false;
    rc->scheduled = false;
    rc->attempt = 0;
    mqtt_backoff_reset(&rc->backoff);
    rc->armed = rc->max_ms > 0;
    if (was_reconnect) resubscribe(a);
    pump_queue(a, true);
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
    int qi = type == MQTT_PUBACK ? mqtt_queue_find(&a->mqtt.queue, id, MQQ_SENT, MQQ_SHADOW) : -1;
    if (w->type == type && (type == MQTT_CONNACK || w->id == id)) {
        w->done = true;
        w->code = code;
    } else if (bw) {
        bw->done = true;
    } else if (qi >= 0) {
        queued_puback(a, (size_t)qi);
    } else if (type == MQTT_SUBACK && resub_ack(a, id, code)) {
        /* a resubscribe's */
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
        a->mqtt.session_present = p.u.connack.session_present;
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
            close_session(a, false, NULL, true);
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
            close_session(a, false, NULL, true);
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
        m->last_rx_ms = agent_now(a); /* the broker is alive (keep-alive) */
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

/* The connect the wait slot holds is over (fmt: "OK" or "ERR ..."): its
 * outcome, then what follows a failure (the next reconnect attempt, the
 * boot connect's first retry, or the offline queue dropped). */
static void connect_done(agent_t *a, const char *fmt, ...)
{
    const char *origin = a->mqtt.wait.origin;
    va_list ap;
    va_start(ap, fmt);
    op_done_v(a, &a->mqtt.wait, fmt, ap);
    va_end(ap);
    if (strncmp(fmt, "ERR", 3) == 0) connect_failed_then(a, origin);
}

static void connack_result(agent_t *a, uint8_t code)
{
    agent_mqtt_t *m = &a->mqtt;
    if (code != 0) {
        close_conn(a, false);
        connect_done(a, "ERR mqtt connect: CONNACK %u (%s)", (unsigned)code, mqtt_connack_text(code));
        return;
    }
    /* CONNACK 0, then the connection lost in the same read: the connect
     * worked (OK, as ever), the session is already gone (logged) */
    if (conn_is_open(&m->conn)) {
        session_up(a);
    } else if (m->rc.max_ms > 0) {
        /* it reached CONNACK 0: a session lost at once (an attempt: the next one) */
        m->rc.armed = true;
        if (m->rc.active) {
            reconnect_schedule(a);
        } else {
            loss_begin(a);
        }
    }
    connect_done(a, "OK");
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
        if (a->mqtt.rc.armed && a->mqtt.sub_topic[0]) {
            sub_remember(&a->mqtt, a->mqtt.sub_topic, a->mqtt.sub_qos);
        }
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
        close_conn(a, false);
        connect_done(a, "ERR mqtt connect: no CONNACK within %u ms", (unsigned)AGENT_REPLY_TIMEOUT_MS);
    } else if (type == MQTT_PUBACK) {
        agent_log(a, 'E', "MQTT0 no PUBACK for id %u within %u ms", (unsigned)w->id,
                  (unsigned)AGENT_REPLY_TIMEOUT_MS);
        op_done(a, w, "ERR mqtt publish: no PUBACK (timeout)");
    } else {
        op_done(a, w, "ERR mqtt subscribe: no SUBACK (timeout)");
    }
}

/* Queued messages and resubscribes whose reply is overdue (t: now). */
static void deadline_queued(agent_t *a, uint64_t t)
{
    agent_mqtt_t *m = &a->mqtt;
    char topic[300];
    for (size_t i = 0; i < m->queue.count; i++) {
        mqq_entry_t *e = &m->queue.e[i];
        if ((e->flags & MQQ_SHADOW) || !(e->flags & MQQ_SENT) || t < e->deadline_ms) continue;
        agent_log(a, 'E', "MQTT0 no PUBACK for id %u within %u ms", (unsigned)e->id,
                  (unsigned)AGENT_REPLY_TIMEOUT_MS);
        agent_log(a, 'E', "MQTT0 queued PUBLISH id %u topic:%s lost: no PUBACK (timeout)",
                  (unsigned)e->id, shown_topic(mqtt_queue_topic(&m->queue, i), topic, sizeof(topic)));
        mqtt_queue_remove(&m->queue, i--);
    }
    for (size_t i = 0; i < AGENT_MQTT_SUBS; i++) {
        mqtt_sub_t *s = &m->subs[i];
        if (!s->topic[0] || s->pending_id == 0 || t < s->deadline_ms) continue;
        s->pending_id = 0;
        agent_log(a, 'E', "MQTT0 no SUBACK for resubscribe %s within %u ms",
                  shown_topic(s->topic, topic, sizeof(topic)), (unsigned)AGENT_REPLY_TIMEOUT_MS);
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
    if (m->state == MQTT_CONNECTED) deadline_queued(a, t);
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
    if (m->state != MQTT_CONNECTED && !(qos == 1 && m->rc.active)) {
        snprintf(err, errlen, "mqtt publish: not connected");
        return -1;
    }
    if (has_wildcard(topic)) {
        snprintf(err, errlen, "mqtt publish: topic must not contain wildcards");
        return -1;
    }
    if (m->state != MQTT_CONNECTED) { /* down, reconnecting: held for the reconnect */
        size_t k = 0;
        if (queue_offline(a, topic, msg, &k, err, errlen) != 0) return -1;
        answer_now(a, "OK queued %zu of %zu", k, m->rc.queue_max);
        return 0;
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
    if (qos) shadow_add(a, &m->wait, topic, msg);
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
    if (m->state != MQTT_CONNECTED && qos == 1 && m->rc.active) { /* held for the reconnect */
        size_t k = 0;
        return queue_offline(a, topic, msg, &k, err, errlen) == 0 ? 0 : -2;
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
    if (qos) shadow_add(a, w, topic, msg);
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
    /* with reconnect on, every subscription is remembered for the resubscribe */
    size_t tl = strlen(topic);
    if (m->rc.armed && tl > AGENT_MQTT_SUB_TOPIC_MAX) {
        snprintf(err, errlen,
                 "mqtt subscribe: topic too long to resubscribe after a reconnect (%zu bytes, max %u)",
                 tl, (unsigned)AGENT_MQTT_SUB_TOPIC_MAX);
        return -1;
    }
    if (m->rc.armed && !sub_find(m, topic) && sub_count(m) >= AGENT_MQTT_SUBS) {
        snprintf(err, errlen,
                 "mqtt subscribe: %u subscriptions already, the most reconnect can restore: not "
                 "subscribed",
                 (unsigned)AGENT_MQTT_SUBS);
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
    m->sub_topic[0] = '\0';
    if (tl <= AGENT_MQTT_SUB_TOPIC_MAX) memcpy(m->sub_topic, topic, tl + 1);
    m->sub_qos = qos;
    (void)tx_commit(a, (size_t)n);
    return 0;
}

/* ---- connect --------------------------------------------------------------------------- */

typedef struct {
    char host[256];
    uint16_t port;
    uint32_t keep_alive;
    uint32_t reconnect_min_ms, reconnect_max_ms;
    uint32_t queue_max;
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
        connect_done(a, "ERR mqtt connect: TCP connect failed (%s)", cerr->text);
        break;
    case CONN_STAGE_SETUP:
        agent_log(a, 'E', "MQTT0 TLS setup failed: %s", cerr->text);
        connect_done(a, "ERR mqtt connect: TLS setup failed (%s)", cerr->text);
        break;
    default:
        log_tls_failure(a, cerr);
        connect_done(a, "ERR mqtt connect: %s", short_tls_reason(cerr, reason, sizeof(reason)));
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
    o.clean_session = settings_get_bool(s, SK_MQTT_CLEAN_SESSION);
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
        close_conn(a, false); /* wipes tx: it may hold part of the password */
        connect_done(a, "ERR mqtt connect: cannot encode CONNECT (%d)", n);
        return;
    }
    m->state = MQTT_WAIT_CONNACK;
    m->ping_outstanding = false;
    m->session_present = false;
    m->rx_len = 0;
    m->discard = 0;
    m->last_rx_ms = agent_now(a); /* the handshake's bytes came from the broker */
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
    uint32_t rmin = settings_get_ms(s, SK_MQTT_RECONNECT_TIMEOUT_MIN);
    uint32_t rmax = settings_get_ms(s, SK_MQTT_RECONNECT_TIMEOUT_MAX);
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
    } else if (rmax != 0 && rmax < rmin) {
        snprintf(err, errlen,
                 "mqtt.reconnect_timeout_max: must be 0 (no reconnect) or at least "
                 "mqtt.reconnect_timeout_min (%s < %s)",
                 settings_get(s, SK_MQTT_RECONNECT_TIMEOUT_MAX),
                 settings_get(s, SK_MQTT_RECONNECT_TIMEOUT_MIN));
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
    cfg->reconnect_min_ms = settings_get_ms(s, SK_MQTT_RECONNECT_TIMEOUT_MIN);
    cfg->reconnect_max_ms = settings_get_ms(s, SK_MQTT_RECONNECT_TIMEOUT_MAX);
    cfg->queue_max = settings_get_uint(s, SK_MQTT_MAX_QUEUE_LENGTH);
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
    if (origin != RECONNECT_ORIGIN) {
        /* a new session: its reconnect settings (an attempt keeps the lost session's) */
        m->rc.max_ms = cfg->reconnect_max_ms;
        m->rc.queue_max = cfg->queue_max;
        mqtt_backoff_init(&m->rc.backoff, cfg->reconnect_min_ms, cfg->reconnect_max_ms);
        /* the boot connect retries from its first attempt on; a command's
         * connect only once it reached CONNACK 0 */
        m->rc.armed = origin != NULL && m->rc.max_ms > 0;
    }
    m->t0_ms = agent_now(a);
    expect(a, &m->wait, origin, MQTT_CONNACK, 0, "");
    m->state = MQTT_OPENING;
    if (conn_open_start(&m->conn, &cfg->p, &cerr) != 0) connect_failed(a, &cerr);
}

static int connect_as(agent_t *a, const char *origin, char *err, size_t errlen)
{
    connect_cfg_t cfg;
    uint8_t psk[32]; /* the decoded mqtt.ssl_psk_key: wiped on every way out */
    /* `mqtt connect` (or the boot connect) ends reconnecting; the offline
     * queue stays for its CONNACK 0 */
    if (origin != RECONNECT_ORIGIN) reconnect_end(a);
    if (conn_is_busy(&a->mqtt.conn)) {
        agent_log(a, 'I', "MQTT0 closing the previous connection");
        close_conn(a, true);
    }
    int rc = prepare_connect(a, &cfg, psk, sizeof(psk), err, errlen);
    if (rc == 0) start_connect(a, &cfg, origin); /* the connection keeps its own copy of the PSK */
    mbedtls_platform_zeroize(psk, sizeof(psk));
    mbedtls_platform_zeroize(&cfg, sizeof(cfg));
    if (rc != 0 && !origin) drop_queue(a, "mqtt connect failed");
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

/* A scheduled reconnect attempt is due: the connect `mqtt connect` makes,
 * owned by nobody (its outcome: the next attempt, or session_up). */
static void reconnect_attempt(agent_t *a)
{
    char err[300];
    a->mqtt.rc.scheduled = false;
    if (connect_as(a, RECONNECT_ORIGIN, err, sizeof(err)) != 0) {
        agent_log(a, 'E', "%s: %s", RECONNECT_ORIGIN, err); /* settings, network down, ... */
        if (a->mqtt.rc.active) reconnect_schedule(a);
    }
}

/* ---- main loop ----------------------------------------------------------------------------- */

static uint32_t ms_until(uint64_t due, uint64_t t)
{
    if (due <= t) return 0;
    return due - t > UINT32_MAX ? UINT32_MAX : (uint32_t)(due - t);
}

/* Keep-alive of the session (t: now); ms until it next needs to run. */
static uint32_t keep_alive_tick(agent_t *a, uint64_t t)
{
    agent_mqtt_t *m = &a->mqtt;
    if (m->state != MQTT_CONNECTED || m->keep_alive_s == 0) return UINT32_MAX;
    uint64_t half = (uint64_t)m->keep_alive_s * 500u; /* keep_alive / 2, in ms */
    if (m->ping_outstanding) {
        uint64_t since = m->ping_sent_ms > m->last_rx_ms ? m->ping_sent_ms : m->last_rx_ms;
        if (t - since >= half) {
            agent_log(a, 'E', "MQTT0 keep-alive timeout: nothing from the broker for %" PRIu64
                              " ms (keep_alive %u s), disconnecting",
                      t - m->last_rx_ms, (unsigned)m->keep_alive_s);
            close_session(a, false, NULL, true); /* a silent peer: no close_notify, no wait */
            return UINT32_MAX;
        }
        return ms_until(since + half, t);
    }
    /* nothing sent, or nothing received, for keep_alive/2: PINGREQ */
    uint64_t oldest = m->last_tx_ms < m->last_rx_ms ? m->last_tx_ms : m->last_rx_ms;
    if (t - oldest >= half) {
        uint8_t pkt[2];
        int n = mqtt_encode_pingreq(pkt, sizeof(pkt));
        if (n > 0 && send_small(a, pkt, (size_t)n) == 0) {
            m->ping_outstanding = true;
            m->ping_sent_ms = t;
            return (uint32_t)half;
        }
        return UINT32_MAX;
    }
    return ms_until(oldest + half, t);
}

uint32_t agent_mqtt_tick(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    if (m->rc.scheduled && m->state == MQTT_IDLE && !conn_is_busy(&m->conn) &&
        agent_now(a) >= m->rc.due_ms) {
        reconnect_attempt(a);
    }
    uint32_t wait = keep_alive_tick(a, agent_now(a));
    /* an attempt scheduled now or before (a keep-alive timeout schedules one) */
    if (m->rc.scheduled) {
        uint32_t left = ms_until(m->rc.due_ms, agent_now(a));
        if (left < wait) wait = left;
    }
    return wait;
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
    if (m->state == MQTT_CONNECTED) {
        for (size_t i = 0; i < m->queue.count; i++) {
            const mqq_entry_t *e = &m->queue.e[i];
            if ((e->flags & MQQ_SENT) && !(e->flags & MQQ_SHADOW) && e->deadline_ms < due) {
                due = e->deadline_ms; /* its PUBACK */
            }
        }
        for (size_t i = 0; i < AGENT_MQTT_SUBS; i++) {
            const mqtt_sub_t *s = &m->subs[i];
            if (s->topic[0] && s->pending_id && s->deadline_ms < due) due = s->deadline_ms;
        }
    }
    if (due != UINT64_MAX) {
        uint32_t left = ms_until(due, t);
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
    if (m->state == MQTT_CONNECTED) pump_queue(a, false); /* what did not fit at the CONNACK */
    if (m->state != MQTT_IDLE) check_deadlines(a);
}
