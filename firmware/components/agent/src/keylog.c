/* keylog.c - `tls keylog`: the TLS session secrets of every session the
 * agent makes (MQTT client, HTTPS server connections), exported for the rig's
 * packet captures, sealed.
 *
 * The console goes through pytest-embedded, which writes everything the board
 * prints to its own log files: the secrets never appear there in clear. While
 * export is on (`tls keylog <64 hex digits>`: a 32-byte key from the rig,
 * never persisted), each session's NSS key-log line
 *   CLIENT_RANDOM <client random, 64 hex> <master secret, 96 hex>
 * is printed as one log line
 *   I (<ms>) hil: keylog <seq> <hex of (NSS line XOR keystream)>
 * with seq = 1, 2, ... since `tls keylog <hex>` and keystream block j (32
 * bytes each, concatenated, cut to the line's length) =
 *   HMAC-SHA256(key, "hil-keylog" || seq (uint32 big-endian) || j (uint32 big-endian)).
 *
 * mbedTLS's key-export callback (agent_mbedtls_compat.h) only copies the
 * secret into a->keylog.secret while the handshake step runs; the module that
 * stepped the handshake calls agent_keylog_flush right after the step, which
 * prints the line and wipes every buffer that held the secret or the plain
 * line.
 *
 * A leaf: it knows nothing of the connections. Whoever switches export on or
 * off (the `tls keylog` and `reboot` commands) makes the connections already
 * in their handshake follow (agent_mqtt_export_secrets,
 * agent_http_export_secrets with agent_keylog_sink). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"

static const char hexdig[] = "0123456789abcdef";

static void hex_lower(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 0x0fu];
    }
}

size_t keylog_nss_line(const agent_tls_secret_t *s, char *out, size_t cap)
{
    static const char label[] = "CLIENT_RANDOM ";
    size_t pos = sizeof(label) - 1;
    if (cap < AGENT_KEYLOG_NSS_LEN + 1) {
        if (cap > 0) out[0] = '\0';
        return 0;
    }
    memcpy(out, label, pos);
    hex_lower(s->client_random, AGENT_TLS_RANDOM_LEN, out + pos);
    pos += 2u * AGENT_TLS_RANDOM_LEN;
    out[pos++] = ' ';
    hex_lower(s->master_secret, AGENT_TLS_MASTER_LEN, out + pos);
    pos += 2u * AGENT_TLS_MASTER_LEN;
    out[pos] = '\0';
    return pos;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int keylog_seal(const uint8_t key[AGENT_KEYLOG_KEY_LEN], uint32_t seq, const uint8_t *in,
                size_t len, uint8_t *out)
{
    static const char label[] = "hil-keylog";
    uint8_t msg[sizeof(label) - 1 + 8];
    uint8_t block[32];
    int ret = 0;
    memcpy(msg, label, sizeof(label) - 1);
    put_be32(msg + sizeof(label) - 1, seq);
    for (size_t off = 0, j = 0; off < len; off += sizeof(block), j++) {
        put_be32(msg + sizeof(label) - 1 + 4, (uint32_t)j);
        ret = agent_hmac_sha256(key, AGENT_KEYLOG_KEY_LEN, msg, sizeof(msg), block);
        if (ret != 0) break;
        size_t n = len - off < sizeof(block) ? len - off : sizeof(block);
        for (size_t i = 0; i < n; i++) out[off + i] = (uint8_t)(in[off + i] ^ block[i]);
    }
    mbedtls_platform_zeroize(block, sizeof(block));
    return ret;
}

int agent_keylog_on(agent_t *a, const char *hex, size_t n, char *err, size_t errlen)
{
    uint8_t key[AGENT_KEYLOG_KEY_LEN];
    size_t got = 0, bad;
#if !AGENT_HAVE_KEY_EXPORT
    (void)hex;
    (void)n;
    (void)key;
    (void)got;
    (void)bad;
    snprintf(err, errlen, "tls keylog: this mbedTLS build cannot export session keys "
                          "(MBEDTLS_SSL_EXPORT_KEYS is off)");
    return -1;
#else
    if (n != 2u * AGENT_KEYLOG_KEY_LEN ||
        agent_hex_decode(hex, n, key, sizeof(key), &got, &bad) != 0 || got != sizeof(key)) {
        /* the length only: never the value, not even a part of it */
        snprintf(err, errlen, "tls keylog: the sealing key must be %u hex digits (%u bytes), got %zu characters",
                 2u * AGENT_KEYLOG_KEY_LEN, (unsigned)AGENT_KEYLOG_KEY_LEN, n);
        mbedtls_platform_zeroize(key, sizeof(key));
        return -1;
    }
    agent_keylog_off(a);
    memcpy(a->keylog.key, key, sizeof(key));
    mbedtls_platform_zeroize(key, sizeof(key));
    a->keylog.seq = 0;
    a->keylog.on = true;
    return 0;
#endif
}

void agent_keylog_off(agent_t *a)
{
    a->keylog.on = false;
    a->keylog.seq = 0;
    mbedtls_platform_zeroize(a->keylog.key, sizeof(a->keylog.key));
    mbedtls_platform_zeroize(&a->keylog.secret, sizeof(a->keylog.secret));
}

agent_tls_secret_t *agent_keylog_sink(agent_t *a)
{
    return a->keylog.on ? &a->keylog.secret : NULL;
}

void agent_keylog_flush(agent_t *a)
{
    agent_keylog_t *k = &a->keylog;
    if (!k->secret.ready) return;
    if (k->on) {
        char line[AGENT_KEYLOG_NSS_LEN + 1];
        uint8_t sealed[AGENT_KEYLOG_NSS_LEN];
        char hex[2u * AGENT_KEYLOG_NSS_LEN + 1];
        size_t n = keylog_nss_line(&k->secret, line, sizeof(line));
        uint32_t seq = ++k->seq;
        int ret = keylog_seal(k->key, seq, (const uint8_t *)line, n, sealed);
        mbedtls_platform_zeroize(line, sizeof(line));
        if (ret == 0) {
            hex_lower(sealed, n, hex);
            hex[2u * n] = '\0';
            agent_log(a, 'I', "keylog %" PRIu32 " %s", seq, hex);
        } else {
            agent_log(a, 'E', "keylog %" PRIu32 ": sealing failed (-0x%04x)", seq, (unsigned)-ret);
        }
        mbedtls_platform_zeroize(sealed, sizeof(sealed));
    }
    mbedtls_platform_zeroize(&k->secret, sizeof(k->secret));
}
