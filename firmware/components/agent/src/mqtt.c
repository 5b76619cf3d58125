/* mqtt.c - the MQTT 3.1.1 client session: connect, publish, subscribe,
 * incoming packets and keep-alive, on top of agent_conn and mqtt_codec. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_util.h"
#include "mqtt_codec.h"

static uint64_t now_ms(agent_t *a)
{
    return a->port.now_ms(a->port.ctx);
}

static uint16_t next_id(agent_mqtt_t *m)
{
    uint16_t id = m->next_packet_id++;
    if (m->next_packet_id == 0) m->next_packet_id = 1;
    return id ? id : next_id(m);
}

void agent_mqtt_disconnect(agent_t *a, bool send_disconnect)
{
    agent_mqtt_t *m = &a->mqtt;
    if (send_disconnect && m->connected && conn_is_open(&m->conn)) {
        uint8_t pkt[4];
        int n = mqtt_encode_disconnect(pkt, sizeof(pkt));
        if (n > 0) (void)conn_write(&m->conn, pkt, (size_t)n, 1000u, NULL);
    }
    conn_close(&m->conn, send_disconnect);
    m->connected = false;
    m->rx_len = 0;
    m->discard = 0;
    m->ping_outstanding = false;
}

static int send_packet(agent_t *a, const uint8_t *pkt, size_t len, char *why, size_t whylen)
{
    conn_err_t err;
    if (conn_write(&a->mqtt.conn, pkt, len, AGENT_REPLY_TIMEOUT_MS, &err) != 0) {
        agent_log(a, 'E', "MQTT0 connection lost: %s", err.text);
        snprintf(why, whylen, "write failed (%s)", err.text);
        agent_mqtt_disconnect(a, false);
        return -1;
    }
    a->mqtt.last_tx_ms = now_ms(a);
    return 0;
}

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

/* Returns -1 when the session must be dropped. */
static int handle_packet(agent_t *a, const uint8_t *pkt, size_t len)
{
    agent_mqtt_t *m = &a->mqtt;
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
        if (m->wait_type == MQTT_CONNACK) {
            m->wait_done = true;
            m->wait_code = p.u.connack.return_code;
        }
        break;
    case MQTT_PUBLISH:
        log_message(a, &p);
        if (p.u.publish.qos == 1) {
            uint8_t ack[4];
            char why[160];
            int n = mqtt_encode_puback(ack, sizeof(ack), p.u.publish.packet_id);
            if (n > 0 && send_packet(a, ack, (size_t)n, why, sizeof(why)) != 0) return -2;
        } else if (p.u.publish.qos == 2) {
            agent_log(a, 'W', "MQTT0 QoS 2 message not supported (not acknowledged)");
        }
        break;
    case MQTT_PUBACK:
        if (m->wait_type == MQTT_PUBACK && m->wait_id == p.u.ack.packet_id) {
            m->wait_done = true;
        } else {
            agent_log(a, 'W', "MQTT0 unexpected PUBACK id %u", (unsigned)p.u.ack.packet_id);
        }
        break;
    case MQTT_SUBACK:
        if (m->wait_type == MQTT_SUBACK && m->wait_id == p.u.suback.packet_id) {
            m->wait_done = true;
            m->wait_code = p.u.suback.return_code;
        } else {
            agent_log(a, 'W', "MQTT0 unexpected SUBACK id %u", (unsigned)p.u.suback.packet_id);
        }
        break;
    case MQTT_PINGRESP:
        m->ping_outstanding = false;
        break;
    default:
        agent_log(a, 'W', "MQTT0 unexpected %s ignored", mqtt_type_name(p.type));
        break;
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
            agent_mqtt_disconnect(a, false);
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
        if (rc == -2) return -1; /* already disconnected */
        if (rc != 0) {
            agent_mqtt_disconnect(a, false);
            return -1;
        }
        memmove(m->rx, m->rx + total, m->rx_len - total);
        m->rx_len -= total;
    }
}

void agent_mqtt_service(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    for (int rounds = 0; rounds < 64 && conn_is_open(&m->conn); rounds++) {
        conn_err_t err;
        int n = conn_read(&m->conn, m->rx + m->rx_len, sizeof(m->rx) - m->rx_len, &err);
        if (n < 0) {
            agent_log(a, 'E', "MQTT0 connection lost: %s", err.text);
            agent_mqtt_disconnect(a, false);
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

/* Wait for the packet set up in m->wait_*: 0 done, 1 timeout, -1 closed. */
static int wait_reply(agent_t *a, uint32_t timeout_ms)
{
    agent_mqtt_t *m = &a->mqtt;
    uint64_t deadline = now_ms(a) + timeout_ms;
    for (;;) {
        if (m->wait_done) return 0;
        if (!conn_is_open(&m->conn)) return -1;
        uint64_t t = now_ms(a);
        if (t >= deadline) return 1;
        int r = conn_wait_readable(&m->conn, (uint32_t)(deadline - t));
        if (r > 0) agent_mqtt_service(a);
        else if (r < 0) return -1;
    }
}

static void expect(agent_mqtt_t *m, uint8_t type, uint16_t id)
{
    m->wait_type = type;
    m->wait_id = id;
    m->wait_done = false;
    m->wait_code = 0;
}

static void log_tls_failure(agent_t *a, const conn_err_t *err)
{
    if (err->timeout) {
        agent_log(a, 'E', "MQTT0 TLS handshake failed: timed out after %u ms",
                  (unsigned)AGENT_HANDSHAKE_TIMEOUT_MS);
        return;
    }
    char msg[128];
    mbedtls_strerror(err->code, msg, sizeof(msg));
    if (err->alert >= 0) {
        agent_log(a, 'E', "MQTT0 TLS handshake failed: -0x%04x %s (alert %d %s)",
                  (unsigned)-err->code, msg, err->alert, agent_tls_alert_name(err->alert));
    } else {
        agent_log(a, 'E', "MQTT0 TLS handshake failed: -0x%04x %s", (unsigned)-err->code, msg);
    }
    if (err->verify_flags != 0 && err->verify_flags != (uint32_t)-1) {
        char info[1024];
        int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", err->verify_flags);
        if (n > 0) {
            char *save = info;
            for (char *line = info; line && *line; line = save) {
                char *nl = strchr(line, '\n');
                save = nl ? nl + 1 : NULL;
                if (nl) *nl = '\0';
                while (*line == ' ') line++;
                if (*line) agent_log(a, 'E', "MQTT0 verify: %s", line);
            }
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
        mbedtls_strerror(err->code, msg, sizeof(msg));
        snprintf(buf, len, "TLS handshake failed (-0x%04x %s)", (unsigned)-err->code, msg);
    }
    return buf;
}

/* agent_mqtt_connect without the PSK buffer: psk (cap bytes, owned and
 * wiped by the caller) receives the decoded mqtt.ssl_psk_key. */
static int mqtt_connect(agent_t *a, uint8_t *psk, size_t psk_cap, char *err, size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    const settings_t *s = &a->settings;
    const char *server = settings_get(s, SK_MQTT_SERVER);
    const char *psk_id = settings_get(s, SK_MQTT_SSL_PSK_IDENTITY);
    const char *psk_hex = settings_get(s, SK_MQTT_SSL_PSK_KEY);
    const char *ca = settings_get(s, SK_MQTT_SSL_CA_CERT);
    const char *cert = settings_get(s, SK_MQTT_SSL_CERT);
    const char *key = settings_get(s, SK_MQTT_SSL_KEY);
    const char *suites_str = settings_get(s, SK_MQTT_SSL_CIPHER_SUITES);
    const char *ka_str = settings_get(s, SK_MQTT_KEEP_ALIVE);
    char host[256];
    uint16_t port;
    uint32_t ka = 60;
    int suites[SETTING_MAX_SUITES];
    size_t psk_len = 0;
    conn_params_t p;
    conn_err_t cerr;

    if (conn_is_open(&m->conn)) {
        agent_log(a, 'I', "MQTT0 closing the previous connection");
        agent_mqtt_disconnect(a, true);
    }
    if (!server) {
        snprintf(err, errlen, "mqtt.server: not set");
        return -1;
    }
    if (settings_parse_server(server, strlen(server), host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "mqtt.server: invalid");
        return -1;
    }
    if (ka_str && agent_parse_u32(ka_str, strlen(ka_str), 65535, &ka) != 0) ka = 60;
    if (psk_id && !psk_hex) {
        snprintf(err, errlen, "mqtt.ssl_psk_key: required when mqtt.ssl_psk_identity is set");
        return -1;
    }
    if (psk_hex && !psk_id) {
        snprintf(err, errlen, "mqtt.ssl_psk_identity: required when mqtt.ssl_psk_key is set");
        return -1;
    }
    if (psk_id && !suites_str) {
        snprintf(err, errlen,
                 "mqtt.ssl_cipher_suites: required for PSK (without it no PSK cipher suite is "
                 "offered)");
        return -1;
    }
    if ((cert != NULL) != (key != NULL)) {
        snprintf(err, errlen, cert ? "mqtt.ssl_key: required with mqtt.ssl_cert"
                                   : "mqtt.ssl_cert: required with mqtt.ssl_key");
        return -1;
    }
    if (cert && !ca && !psk_id) {
        snprintf(err, errlen, "mqtt.ssl_ca_cert: required with mqtt.ssl_cert");
        return -1;
    }
    if (suites_str) {
        char bad[SETTING_SUITE_BAD_BUF];
        if (settings_parse_suites(suites_str, strlen(suites_str), suites, SETTING_MAX_SUITES, bad,
                                  sizeof(bad)) != 0) {
            snprintf(err, errlen, "mqtt.ssl_cipher_suites: unknown cipher suite '%s'", bad);
            return -1;
        }
    }
    if (psk_hex) {
        size_t bad;
        if (agent_hex_decode(psk_hex, strlen(psk_hex), psk, psk_cap, &psk_len, &bad) != 0) {
            snprintf(err, errlen, "mqtt.ssl_psk_key: invalid");
            return -1;
        }
    }
    if (a->port.network_up && !a->port.network_up(a->port.ctx)) {
        snprintf(err, errlen, "mqtt connect: network down");
        return -1;
    }
    if (agent_rng(a, psk, 0) != 0) {
        snprintf(err, errlen, "mqtt connect: random generator init failed");
        return -1;
    }

    memset(&p, 0, sizeof(p));
    p.host = host;
    p.port = port;
    p.connect_timeout_ms = AGENT_CONNECT_TIMEOUT_MS;
    p.handshake_timeout_ms = AGENT_HANDSHAKE_TIMEOUT_MS;
    p.use_tls = ca != NULL || psk_id != NULL;
    p.ca_pem = ca;
    p.cert_pem = cert;
    p.key_pem = key;
    p.psk_identity = psk_id;
    p.psk = psk;
    p.psk_len = psk_len;
    p.suites = suites_str ? suites : NULL;
    p.verify_hostname = ca != NULL;
    p.drbg = &a->drbg;

    snprintf(m->server, sizeof(m->server), "%s", server);
    agent_log(a, 'I', "MQTT0 connecting to %s", server);
    if (!p.use_tls) {
        agent_log(a, 'W', "MQTT0 no TLS: mqtt.ssl_ca_cert and mqtt.ssl_psk_identity unset, "
                          "using plain TCP");
    }
    uint64_t t0 = now_ms(a);
    int rc = conn_open(&m->conn, &p, &cerr);
    mbedtls_platform_zeroize(psk, psk_cap); /* conn keeps its own copy (wiped at close) */
    if (rc != 0) {
        char reason[200];
        switch (cerr.stage) {
        case CONN_STAGE_RESOLVE:
        case CONN_STAGE_TCP:
            agent_log(a, 'E', "MQTT0 TCP connect failed: %s", cerr.text);
            snprintf(err, errlen, "mqtt connect: TCP connect failed (%s)", cerr.text);
            break;
        case CONN_STAGE_SETUP:
            agent_log(a, 'E', "MQTT0 TLS setup failed: %s", cerr.text);
            snprintf(err, errlen, "mqtt connect: TLS setup failed (%s)", cerr.text);
            break;
        default:
            log_tls_failure(a, &cerr);
            snprintf(err, errlen, "mqtt connect: %s", short_tls_reason(&cerr, reason, sizeof(reason)));
            break;
        }
        return -1;
    }
    uint64_t t1 = now_ms(a);
    if (p.use_tls) {
        const char *cs = conn_ciphersuite(&m->conn);
        agent_log(a, 'I', "ciphersuite: %s", cs ? cs : "?");
    }
    agent_log(a, 'I', "MQTT0 handshake %" PRIu64 " ms", t1 - t0);
    agent_log(a, 'I', "MQTT0 TCP connect ok (0)");

    /* CONNECT */
    {
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
        o.keep_alive = (uint16_t)ka;
        o.clean_session = true;
        int n = mqtt_encode_connect(m->tx, sizeof(m->tx), &o);
        if (n < 0) {
            mbedtls_platform_zeroize(m->tx, sizeof(m->tx)); /* may hold part of the password */
            snprintf(err, errlen, "mqtt connect: cannot encode CONNECT (%d)", n);
            agent_mqtt_disconnect(a, false);
            return -1;
        }
        m->keep_alive_s = (uint16_t)ka;
        m->ping_outstanding = false;
        m->rx_len = 0;
        m->discard = 0;
        expect(m, MQTT_CONNACK, 0);
        char why[160];
        rc = send_packet(a, m->tx, (size_t)n, why, sizeof(why));
        mbedtls_platform_zeroize(m->tx, (size_t)n); /* contained the password */
        if (rc != 0) {
            snprintf(err, errlen, "mqtt connect: %s", why);
            return -1;
        }
    }
    rc = wait_reply(a, AGENT_REPLY_TIMEOUT_MS);
    m->wait_type = 0;
    if (rc == 1) {
        agent_log(a, 'E', "MQTT0 no CONNACK within %u ms", (unsigned)AGENT_REPLY_TIMEOUT_MS);
        agent_mqtt_disconnect(a, false);
        snprintf(err, errlen, "mqtt connect: no CONNACK within %u ms", (unsigned)AGENT_REPLY_TIMEOUT_MS);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "mqtt connect: connection closed before CONNACK");
        agent_mqtt_disconnect(a, false);
        return -1;
    }
    if (m->wait_code != 0) {
        snprintf(err, errlen, "mqtt connect: CONNACK %u (%s)", (unsigned)m->wait_code,
                 mqtt_connack_text(m->wait_code));
        agent_mqtt_disconnect(a, false);
        return -1;
    }
    m->connected = true;
    return 0;
}

int agent_mqtt_connect(agent_t *a, char *err, size_t errlen)
{
    uint8_t psk[32]; /* the decoded mqtt.ssl_psk_key: wiped on every way out */
    int rc = mqtt_connect(a, psk, sizeof(psk), err, errlen);
    mbedtls_platform_zeroize(psk, sizeof(psk));
    return rc;
}

static bool has_wildcard(const char *t)
{
    return strchr(t, '+') != NULL || strchr(t, '#') != NULL;
}

int agent_mqtt_publish(agent_t *a, const char *topic, const char *msg, uint8_t qos, char *err,
                       size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    if (!m->connected) {
        snprintf(err, errlen, "mqtt publish: not connected");
        return -1;
    }
    if (has_wildcard(topic)) {
        snprintf(err, errlen, "mqtt publish: topic must not contain wildcards");
        return -1;
    }
    uint16_t id = qos ? next_id(m) : 0;
    int n = mqtt_encode_publish(m->tx, sizeof(m->tx), topic, (const uint8_t *)msg, strlen(msg), qos,
                                id, false);
    if (n < 0) {
        snprintf(err, errlen, "mqtt publish: cannot encode PUBLISH (%d)", n);
        return -1;
    }
    char why[160];
    if (qos) expect(m, MQTT_PUBACK, id);
    if (send_packet(a, m->tx, (size_t)n, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "mqtt publish: %s", why);
        return -1;
    }
    if (qos) {
        int rc = wait_reply(a, AGENT_REPLY_TIMEOUT_MS);
        m->wait_type = 0;
        if (rc != 0) {
            if (rc == 1) agent_log(a, 'E', "MQTT0 no PUBACK for id %u within %u ms", (unsigned)id,
                                   (unsigned)AGENT_REPLY_TIMEOUT_MS);
            snprintf(err, errlen, "mqtt publish: %s",
                     rc == 1 ? "no PUBACK (timeout)" : "connection lost before PUBACK");
            return -1;
        }
    }
    char t[300], msgbuf[800];
    bool tr;
    (void)agent_escape((const uint8_t *)topic, strlen(topic), 256, t, sizeof(t), &tr);
    (void)agent_escape((const uint8_t *)msg, strlen(msg), AGENT_MSG_LOG_MAX, msgbuf, sizeof(msgbuf), &tr);
    agent_log(a, 'I', "Published:OK topic:%s msg:%s%s", t, msgbuf, tr ? "... (truncated)" : "");
    return 0;
}

int agent_mqtt_subscribe(agent_t *a, const char *topic, uint8_t qos, char *err, size_t errlen)
{
    agent_mqtt_t *m = &a->mqtt;
    if (!m->connected) {
        snprintf(err, errlen, "mqtt subscribe: not connected");
        return -1;
    }
    uint16_t id = next_id(m);
    int n = mqtt_encode_subscribe(m->tx, sizeof(m->tx), id, topic, qos);
    if (n < 0) {
        snprintf(err, errlen, "mqtt subscribe: cannot encode SUBSCRIBE (%d)", n);
        return -1;
    }
    char why[160];
    expect(m, MQTT_SUBACK, id);
    if (send_packet(a, m->tx, (size_t)n, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "mqtt subscribe: %s", why);
        return -1;
    }
    int rc = wait_reply(a, AGENT_REPLY_TIMEOUT_MS);
    m->wait_type = 0;
    if (rc != 0) {
        snprintf(err, errlen, "mqtt subscribe: %s",
                 rc == 1 ? "no SUBACK (timeout)" : "connection lost before SUBACK");
        return -1;
    }
    char t[300]; /* shown like incoming topics: non-printable bytes as \xHH */
    bool tr;
    (void)agent_escape((const uint8_t *)topic, strlen(topic), 256, t, sizeof(t), &tr);
    if (m->wait_code == 0x80) {
        agent_log(a, 'E', "MQTT0 SUBACK failure (0x80) for topic:%s", t);
        snprintf(err, errlen, "mqtt subscribe: refused by broker (SUBACK 0x80)");
        return -1;
    }
    agent_log(a, 'I', "MQTT0 subscribed topic:%s qos:%u", t, (unsigned)m->wait_code);
    return 0;
}

uint32_t agent_mqtt_tick(agent_t *a)
{
    agent_mqtt_t *m = &a->mqtt;
    if (!m->connected || m->keep_alive_s == 0) return UINT32_MAX;
    uint64_t t = now_ms(a);
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
        char why[160];
        int n = mqtt_encode_pingreq(pkt, sizeof(pkt));
        if (n > 0 && send_packet(a, pkt, (size_t)n, why, sizeof(why)) == 0) {
            m->ping_outstanding = true;
            m->ping_sent_ms = t;
            return (uint32_t)ka;
        }
        return UINT32_MAX;
    }
    return (uint32_t)(interval - (t - m->last_tx_ms));
}
