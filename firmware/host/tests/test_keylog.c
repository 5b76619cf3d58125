/* test_keylog.c - `tls keylog`: the agent prints every TLS session's NSS
 * key-log line sealed with the rig's key (keylog.c), over real handshakes on
 * 127.0.0.1, in one process: the agent (agent_step, polled console) and a
 * TLS peer of the test's own, plain mbedTLS, both non-blocking, stepped in
 * turn. The peer exports its own view of each session with its own key-export
 * callback (written here, not the agent's), and the agent's line, unsealed
 * here with the test's own HMAC keystream, must carry the same client random
 * and master secret.
 *
 * - MQTT client, psk: one line, seq 1, before `ciphersuite:` / `MQTT0
 *   handshake`; a wrong PSK (the broker answers bad_record_mac after the keys
 *   were derived): the line still comes, before the failure lines.
 * - HTTPS server: one line per connection, before the request's line.
 * - `tls keylog off`: no line; a new key: seq starts at 1 again.
 * - Bad input: ERR, never a trace of the value; the key never appears in any
 *   console output, nor the secrets in clear; wiped at off and agent_free.
 * - The sealing itself against a vector computed with Python's hmac. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "agent_util.h"
#include "test_pem.h"
#include "test_support.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static fake_port_t fp;
static agent_port_t port;
/* everything the agent printed in this test (each command's output is added) */
static char transcript[1 << 20];
static size_t transcript_len;

static const char key1_hex[] = "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0";
static const char key2_hex[] = "f0e1d2c3b4a5968778695a4b3c2d1e0fffeeddccbbaa99887766554433221100";

static void keep_output(void)
{
    size_t n = fp.out_len;
    if (n > sizeof(transcript) - 1 - transcript_len) n = sizeof(transcript) - 1 - transcript_len;
    memcpy(transcript + transcript_len, fp.out, n);
    transcript_len += n;
    transcript[transcript_len] = '\0';
}

static void clear_out(void)
{
    keep_output();
    fp.out_len = 0;
    fp.out[0] = '\0';
}

static const char *cmd(agent_t *a, const char *line)
{
    const char *out = fake_cmd(a, &fp, line);
    keep_output();
    return out;
}

/* ---- the test's own TLS peer (plain mbedTLS) ------------------------------------- */

typedef struct {
    int fd;
    bool inited;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_ctr_drbg_context drbg;
    int hs;        /* 0 in progress, 1 done, <0 failed (mbedTLS error) */
    bool exported; /* its export callback ran */
    unsigned char cr[32];
    unsigned char ms[48];
} peer_t;

/* The peer's key export: the same facts, taken by the test itself. */
#if MBEDTLS_VERSION_MAJOR >= 3
static void peer_export(void *p, mbedtls_ssl_key_export_type type, const unsigned char *secret,
                        size_t secret_len, const unsigned char client_random[32],
                        const unsigned char server_random[32], mbedtls_tls_prf_types prf)
{
    peer_t *pe = p;
    (void)server_random;
    (void)prf;
    if (type != MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET || secret_len != 48) return;
    memcpy(pe->cr, client_random, 32);
    memcpy(pe->ms, secret, 48);
    pe->exported = true;
}
#else
static int peer_export(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen,
                       size_t keylen, size_t ivlen, const unsigned char client_random[32],
                       const unsigned char server_random[32], mbedtls_tls_prf_types prf)
{
    peer_t *pe = p;
    (void)kb;
    (void)maclen;
    (void)keylen;
    (void)ivlen;
    (void)server_random;
    (void)prf;
    memcpy(pe->cr, client_random, 32);
    memcpy(pe->ms, ms, 48);
    pe->exported = true;
    return 0;
}
#endif

static int peer_entropy(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(rand() & 0xff);
    return 0;
}

static int peer_send(void *ctx, const unsigned char *buf, size_t len)
{
    peer_t *pe = ctx;
    ssize_t n = send(pe->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_CONN_RESET;
}

static int peer_recv(void *ctx, unsigned char *buf, size_t len)
{
    peer_t *pe = ctx;
    ssize_t n = recv(pe->fd, buf, len, 0);
    if (n > 0) return (int)n;
    if (n == 0) return MBEDTLS_ERR_SSL_CONN_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_CONN_RESET;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* psk != NULL: a PSK server (the broker); else an HTTPS client that verifies nothing. */
static void peer_start(peer_t *pe, int fd, const unsigned char *psk, size_t psk_len)
{
    memset(pe, 0, sizeof(*pe));
    pe->fd = fd;
    set_nonblock(fd);
    mbedtls_ssl_init(&pe->ssl);
    mbedtls_ssl_config_init(&pe->conf);
    mbedtls_ctr_drbg_init(&pe->drbg);
    pe->inited = true;
    CHECK_EQ_INT(mbedtls_ctr_drbg_seed(&pe->drbg, peer_entropy, NULL, NULL, 0), 0);
    CHECK_EQ_INT(mbedtls_ssl_config_defaults(&pe->conf,
                                             psk ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                             MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT),
                 0);
    agent_ssl_conf_tls12_only(&pe->conf);
    mbedtls_ssl_conf_rng(&pe->conf, mbedtls_ctr_drbg_random, &pe->drbg);
    mbedtls_ssl_conf_authmode(&pe->conf, MBEDTLS_SSL_VERIFY_NONE);
    if (psk) {
        static const char ident[] = "hil";
        CHECK_EQ_INT(mbedtls_ssl_conf_psk(&pe->conf, psk, psk_len, (const unsigned char *)ident,
                                          sizeof(ident) - 1),
                     0);
    }
#if MBEDTLS_VERSION_MAJOR < 3
    mbedtls_ssl_conf_export_keys_ext_cb(&pe->conf, peer_export, pe);
#endif
    CHECK_EQ_INT(mbedtls_ssl_setup(&pe->ssl, &pe->conf), 0);
#if MBEDTLS_VERSION_MAJOR >= 3
    mbedtls_ssl_set_export_keys_cb(&pe->ssl, peer_export, pe);
#endif
    mbedtls_ssl_set_bio(&pe->ssl, pe, peer_send, peer_recv, NULL);
}

static void peer_step(peer_t *pe)
{
    if (pe->hs != 0) return;
    int r = mbedtls_ssl_handshake(&pe->ssl);
    if (r == 0) {
        pe->hs = 1;
    } else if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
        pe->hs = r < 0 ? r : -1;
    }
}

static void peer_free(peer_t *pe)
{
    if (pe->inited) {
        mbedtls_ssl_free(&pe->ssl);
        mbedtls_ssl_config_free(&pe->conf);
        mbedtls_ctr_drbg_free(&pe->drbg);
    }
    if (pe->fd >= 0) close(pe->fd);
    memset(pe, 0, sizeof(*pe));
    pe->fd = -1;
}

/* "CLIENT_RANDOM <cr> <ms>", the test's own formatting */
static void peer_nss(const peer_t *pe, char *out, size_t cap)
{
    size_t pos = (size_t)snprintf(out, cap, "CLIENT_RANDOM ");
    for (size_t i = 0; i < 32; i++) pos += (size_t)snprintf(out + pos, cap - pos, "%02x", pe->cr[i]);
    pos += (size_t)snprintf(out + pos, cap - pos, " ");
    for (size_t i = 0; i < 48; i++) pos += (size_t)snprintf(out + pos, cap - pos, "%02x", pe->ms[i]);
}

/* ---- reading the agent's keylog lines ------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* upper case is not what the contract says */
}

static bool unhex(const char *s, size_t n, uint8_t *out)
{
    if (n % 2) return false;
    for (size_t i = 0; i < n; i += 2) {
        int h = hexval(s[i]), l = hexval(s[i + 1]);
        if (h < 0 || l < 0) return false;
        out[i / 2] = (uint8_t)(h << 4 | l);
    }
    return true;
}

/* The n-th (0-based) "I (<ms>) hil: keylog <seq> <hex>" line of text: its
 * seq and the unsealed NSS line (the test's own keystream); the offset of
 * the line in text, or -1 (and a failure when the line is malformed). */
static long keylog_line(const char *text, int nth, const char *key_hex, uint32_t *seq, char *plain,
                        size_t cap)
{
    const char *p = text;
    if (cap > 0) plain[0] = '\0';
    *seq = 0;
    for (;;) {
        const char *hit = strstr(p, " hil: keylog ");
        if (!hit) return -1;
        const char *bol = hit;
        while (bol > text && bol[-1] != '\n') bol--;
        const char *eol = strchr(hit, '\n');
        if (!eol) return -1;
        p = eol + 1;
        if (nth-- > 0) continue;
        CHECK(strncmp(bol, "I (", 3) == 0);
        const char *q = hit + strlen(" hil: keylog ");
        char *end;
        unsigned long sv = strtoul(q, &end, 10);
        CHECK(end > q && *end == ' ');
        *seq = (uint32_t)sv;
        const char *hex = end + 1;
        size_t hn = (size_t)(eol - hex);
        uint8_t sealed[400], key[32];
        CHECK_EQ_INT((int)hn, 2 * 175);
        if (hn != 2 * 175 || !unhex(hex, hn, sealed) || !unhex(key_hex, 64, key)) {
            CHECK(false);
            return -1;
        }
        const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
        for (size_t off = 0, j = 0; off < hn / 2; off += 32, j++) {
            uint8_t msg[18], blk[32];
            memcpy(msg, "hil-keylog", 10);
            for (int b = 0; b < 4; b++) {
                msg[10 + b] = (uint8_t)(sv >> (24 - 8 * b));
                msg[14 + b] = (uint8_t)(j >> (24 - 8 * b));
            }
            CHECK_EQ_INT(mbedtls_md_hmac(md, key, 32, msg, sizeof(msg), blk), 0);
            for (size_t i = 0; i < 32 && off + i < hn / 2; i++) sealed[off + i] ^= blk[i];
        }
        CHECK(cap > hn / 2);
        memcpy(plain, sealed, hn / 2);
        plain[hn / 2] = '\0';
        return (long)(bol - text);
    }
}

static int count(const char *text, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(text, sub); p; p = strstr(p + 1, sub)) n++;
    return n;
}

static long offset_of(const char *text, const char *sub)
{
    const char *p = strstr(text, sub);
    return p ? (long)(p - text) : -1;
}

/* Is it "CLIENT_RANDOM <64 lower hex> <96 lower hex>"? */
static bool nss_format_ok(const char *s)
{
    uint8_t tmp[48];
    return strlen(s) == 175 && strncmp(s, "CLIENT_RANDOM ", 14) == 0 && unhex(s + 14, 64, tmp) &&
           s[78] == ' ' && unhex(s + 79, 96, tmp);
}

/* ---- MQTT client (psk) ------------------------------------------------------------ */

static const unsigned char psk_ok[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
static const unsigned char psk_wrong[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* `mqtt connect` against a PSK broker of the test's; the peer after it. */
static void mqtt_connect_to(agent_t *a, int lfd, const unsigned char *psk, peer_t *pe)
{
    static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
    bool connack_sent = false;
    clear_out();
    agent_console_feed(a, (const uint8_t *)"mqtt connect\n", 13);
    pe->fd = -1;
    uint64_t end = test_real_now_ms(NULL) + 10000u;
    while (agent_console_busy(a) && test_real_now_ms(NULL) < end) {
        agent_step(a, 1);
        if (pe->fd < 0) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) peer_start(pe, fd, psk, 16);
            continue;
        }
        peer_step(pe);
        if (pe->hs == 1 && !connack_sent) {
            connack_sent = mbedtls_ssl_write(&pe->ssl, connack, sizeof(connack)) == (int)sizeof(connack);
        }
    }
    CHECK(!agent_console_busy(a));
    for (int i = 0; i < 5 && pe->fd >= 0 && pe->hs == 0; i++) { /* the alert after a failure */
        usleep(2000);
        peer_step(pe);
    }
}

static void test_mqtt(agent_t *a)
{
    uint16_t lport;
    char line[200], plain[400], want[200];
    uint32_t seq = 0;
    peer_t pe;
    int lfd = test_listen_loopback(&lport, 4);
    CHECK(lfd >= 0);
    if (lfd < 0) return;
    set_nonblock(lfd);
    snprintf(line, sizeof(line), "config set mqtt.server 127.0.0.1:%u", (unsigned)lport);
    CHECK_STR(cmd(a, line), "OK\n");
    CHECK_STR(cmd(a, "config set mqtt.ssl_psk_identity hil"), "OK\n");
    CHECK_STR(cmd(a, "config set mqtt.ssl_psk_key 000000000000000000000000deadbeef"), "OK\n");
    CHECK_STR(cmd(a, "config set mqtt.ssl_cipher_suites TLS-PSK-WITH-AES-128-GCM-SHA256"), "OK\n");
    snprintf(line, sizeof(line), "tls keylog %s", key1_hex);
    CHECK_STR(cmd(a, line), "OK\n");

    /* a session: one line, seq 1, the broker's secrets, before the handshake's lines */
    mqtt_connect_to(a, lfd, psk_ok, &pe);
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK(fake_contains(&fp, "hil: MQTT0 CONNACK 0\n"));
    CHECK(pe.exported);
    CHECK_EQ_INT(count(fp.out, " hil: keylog "), 1);
    long at = keylog_line(fp.out, 0, key1_hex, &seq, plain, sizeof(plain));
    CHECK(at >= 0);
    CHECK_EQ_INT((int)seq, 1);
    CHECK(nss_format_ok(plain));
    peer_nss(&pe, want, sizeof(want));
    CHECK_STR(plain, want);
    CHECK(at < offset_of(fp.out, "hil: ciphersuite: "));
    CHECK(at < offset_of(fp.out, "hil: MQTT0 handshake "));
    CHECK(offset_of(fp.out, "hil: MQTT0 connecting to ") < at);
    /* the keys are wiped once printed */
    CHECK(!a->keylog.secret.ready);
    static const uint8_t zero[48];
    CHECK(memcmp(a->keylog.secret.master_secret, zero, 48) == 0);
    (void)cmd(a, "mqtt disconnect");
    peer_free(&pe);

    /* a wrong PSK: the broker refuses the Finished (bad_record_mac) after both
     * sides derived their keys; the line still comes, first, seq 2 */
    mqtt_connect_to(a, lfd, psk_wrong, &pe);
    CHECK(strncmp(fake_last_line(&fp), "ERR mqtt connect: TLS handshake failed", 38) == 0);
    CHECK(pe.hs < 0);
    CHECK(pe.exported);
    CHECK_EQ_INT(count(fp.out, " hil: keylog "), 1);
    at = keylog_line(fp.out, 0, key1_hex, &seq, plain, sizeof(plain));
    CHECK(at >= 0);
    CHECK_EQ_INT((int)seq, 2);
    CHECK(nss_format_ok(plain));
    peer_nss(&pe, want, sizeof(want));
    CHECK(strncmp(plain, want, 78) == 0);  /* the same client random */
    CHECK(strcmp(plain + 79, want + 79) != 0); /* other PSK, other master secret */
    long failed = offset_of(fp.out, "hil: MQTT0 TLS handshake failed");
    CHECK(failed >= 0);
    CHECK(at < failed);
    peer_free(&pe);

    /* export off: no line */
    CHECK_STR(cmd(a, "tls keylog off"), "OK\n");
    mqtt_connect_to(a, lfd, psk_ok, &pe);
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK(!fake_contains(&fp, "keylog"));
    CHECK(!a->keylog.secret.ready);
    (void)cmd(a, "mqtt disconnect");
    peer_free(&pe);
    close(lfd);
}

/* ---- HTTPS server ----------------------------------------------------------------- */

static uint16_t start_server(agent_t *a)
{
    test_set_https(a, false);
    (void)cmd(a, "http start");
    CHECK_STR(fake_last_line(&fp), "OK");
    return test_http_port(&fp);
}

/* One HTTPS request by the test's client; the agent's output of it in fp.out. */
static void https_get(agent_t *a, uint16_t hport, peer_t *pe)
{
    static const char req[] = "GET / HTTP/1.1\r\n\r\n";
    struct sockaddr_in sa;
    bool sent = false;
    clear_out();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(hport);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0); /* blocking, loopback */
    peer_start(pe, fd, NULL, 0);
    uint64_t end = test_real_now_ms(NULL) + 10000u;
    while (!fake_contains(&fp, "hil: HTTP GET / 200\n") && test_real_now_ms(NULL) < end) {
        agent_step(a, 1);
        peer_step(pe);
        if (pe->hs == 1 && !sent) sent = mbedtls_ssl_write(&pe->ssl, (const unsigned char *)req,
                                                            sizeof(req) - 1) == (int)sizeof(req) - 1;
        if (pe->hs < 0) break;
    }
    CHECK_EQ_INT(pe->hs, 1);
    CHECK(fake_contains(&fp, "hil: HTTP GET / 200\n"));
    for (int i = 0; i < 10; i++) agent_step(a, 1); /* the server closes its side */
}

static void test_https(agent_t *a)
{
    char line[200], plain[400], want[200];
    uint32_t seq = 0;
    peer_t pe;
    uint16_t hport = start_server(a);

    /* on (key 2): seq 1, one line per connection, before the request's line */
    snprintf(line, sizeof(line), "tls keylog %s", key2_hex);
    CHECK_STR(cmd(a, line), "OK\n");
    for (uint32_t i = 1; i <= 2; i++) {
        https_get(a, hport, &pe);
        CHECK(pe.exported);
        CHECK_EQ_INT(count(fp.out, " hil: keylog "), 1);
        long at = keylog_line(fp.out, 0, key2_hex, &seq, plain, sizeof(plain));
        CHECK(at >= 0);
        CHECK_EQ_INT((int)seq, (int)i);
        peer_nss(&pe, want, sizeof(want));
        CHECK_STR(plain, want);
        CHECK(at < offset_of(fp.out, "hil: HTTP GET / 200\n"));
        peer_free(&pe);
    }
    /* unsealed with the other key, or as another seq, it is garbage */
    https_get(a, hport, &pe);
    CHECK(keylog_line(fp.out, 0, key1_hex, &seq, plain, sizeof(plain)) >= 0);
    CHECK(!nss_format_ok(plain));
    peer_free(&pe);

    /* a new key (key 1 again): seq restarts at 1 */
    snprintf(line, sizeof(line), "tls keylog %s", key1_hex);
    CHECK_STR(cmd(a, line), "OK\n");
    https_get(a, hport, &pe);
    CHECK(keylog_line(fp.out, 0, key1_hex, &seq, plain, sizeof(plain)) >= 0);
    CHECK_EQ_INT((int)seq, 1);
    peer_nss(&pe, want, sizeof(want));
    CHECK_STR(plain, want);
    peer_free(&pe);

    /* off: no line, and the key is gone */
    CHECK_STR(cmd(a, "tls keylog off"), "OK\n");
    static const uint8_t zero[32];
    CHECK(!a->keylog.on);
    CHECK(memcmp(a->keylog.key, zero, sizeof(zero)) == 0);
    https_get(a, hport, &pe);
    CHECK(pe.exported);
    CHECK(!fake_contains(&fp, "keylog"));
    peer_free(&pe);
    clear_out();
    (void)cmd(a, "http stop");
}

/* ---- console: bad input, status, nothing echoed ----------------------------------- */

static void test_console(agent_t *a)
{
    char line[300];
    /* values that must never show, whatever the error */
    static const char *const bad[] = {
        "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f",   /* 63 digits */
        "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0a", /* 65 */
        "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1g0",  /* not hex */
        "0x112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "OFF",
        "Zq",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "@t%u tls keylog %s", (unsigned)i, bad[i]);
        const char *out = cmd(a, line);
        CHECK(strncmp(out, "@t", 2) == 0 && strstr(out, " ERR tls keylog: the sealing key must be 64 hex digits") != NULL);
        CHECK(strstr(out, bad[i]) == NULL);
        CHECK(strstr(out, "2d3c4b5a") == NULL);
        CHECK(!a->keylog.on);
    }
    /* extra words, the key in the subcommand's place, no argument: ERR, nothing echoed */
    snprintf(line, sizeof(line), "tls keylog %s extra", key1_hex);
    CHECK_STR(cmd(a, line), "ERR tls keylog: too many arguments (tls keylog <64 hex digits> | tls keylog off)\n");
    snprintf(line, sizeof(line), "tls keylog off %s", key1_hex);
    CHECK(strstr(cmd(a, line), "ERR tls keylog: too many arguments") != NULL);
    snprintf(line, sizeof(line), "tls %s", key1_hex);
    CHECK_STR(cmd(a, line), "ERR tls: unknown subcommand (tls keylog <64 hex digits> | tls keylog off)\n");
    CHECK_STR(cmd(a, "tls keylog"), "ERR tls keylog: usage: tls keylog <64 hex digits> | tls keylog off\n");
    CHECK_STR(cmd(a, "tls"), "ERR tls: missing subcommand (tls keylog <64 hex digits> | tls keylog off)\n");
    CHECK(!a->keylog.on);

    /* status; upper-case hex is accepted; a tagged command answers with its tag */
    CHECK(strstr(cmd(a, "status"), "\nkeylog=off\n") != NULL);
    snprintf(line, sizeof(line), "@k1 tls keylog %s", "00112233445566778899AABBCCDDEEFF0F1E2D3C4B5A69788796A5B4C3D2E1F0");
    CHECK_STR(cmd(a, line), "@k1 OK\n");
    CHECK(a->keylog.on);
    uint8_t want[32];
    size_t got, badpos;
    CHECK_EQ_INT(agent_hex_decode(key1_hex, 64, want, sizeof(want), &got, &badpos), 0);
    CHECK(memcmp(a->keylog.key, want, 32) == 0);
    CHECK(strstr(cmd(a, "status"), "\nkeylog=on\n") != NULL);
    /* a bad key while on leaves it on, with the old key */
    CHECK(strncmp(cmd(a, "tls keylog 12"), "ERR ", 4) == 0);
    CHECK(a->keylog.on);
    CHECK(memcmp(a->keylog.key, want, 32) == 0);
    /* reboot wipes it */
    CHECK(strncmp(cmd(a, "reboot"), "OK\n", 3) == 0); /* the fake port's reboot returns */
    CHECK(!a->keylog.on);
    static const uint8_t zero[32];
    CHECK(memcmp(a->keylog.key, zero, 32) == 0);
    CHECK(fake_contains(&fp, "hil: rebooting\n"));
}

/* ---- the construction, against Python's hmac ---------------------------------------- */

static void test_vector(void)
{
    /* key = bytes(range(32)), seq 7, client random bytes(range(0x20, 0x40)),
     * master secret bytes(range(0x40, 0x70)); Python:
     *   ks = b"".join(hmac.new(key, b"hil-keylog" + seq.to_bytes(4, "big")
     *                 + j.to_bytes(4, "big"), hashlib.sha256).digest() for j in range(6))
     *   bytes(a ^ b for a, b in zip(line, ks)).hex() */
    static const char want[] =
        "90d825dfcbb39f7cb283bb3d9470c30434c0a48afdb5ecb901d978fb11b5b79cd6ea89df9c7035f3dba39e64"
        "c4e5737ee0413cd2e4c904b1d5315d4f4881c4cbe4bb35058faa8f0ecf8cd89357a7178a24fa4a534e151bb5"
        "decd71dddd47b0829e00996953fcdf569ba66cc8f70cb8abf2946bdda6757a69f5784bf0da738ceda2a923f8"
        "8c555837e4a88281fc664be80f1cbd962bf3cf7d282bd1d3611ffaf89e796087a95e496c85e086392c634a";
    agent_tls_secret_t s;
    uint8_t key[32], sealed[AGENT_KEYLOG_NSS_LEN], back[AGENT_KEYLOG_NSS_LEN];
    char line[AGENT_KEYLOG_NSS_LEN + 1], hex[2 * AGENT_KEYLOG_NSS_LEN + 1];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
    for (int i = 0; i < 32; i++) s.client_random[i] = (uint8_t)(0x20 + i);
    for (int i = 0; i < 48; i++) s.master_secret[i] = (uint8_t)(0x40 + i);
    CHECK_EQ_INT((int)keylog_nss_line(&s, line, sizeof(line)), 175);
    CHECK_EQ_INT((int)keylog_nss_line(&s, line, 175), 0); /* no room for the NUL */
    CHECK_EQ_INT((int)keylog_nss_line(&s, line, sizeof(line)), 175);
    CHECK(nss_format_ok(line));
    CHECK_EQ_INT(keylog_seal(key, 7, (const uint8_t *)line, 175, sealed), 0);
    for (int i = 0; i < 175; i++) snprintf(hex + 2 * i, 3, "%02x", sealed[i]);
    CHECK_STR(hex, want);
    CHECK_EQ_INT(keylog_seal(key, 7, sealed, 175, back), 0);
    CHECK(memcmp(back, line, 175) == 0);
    CHECK_EQ_INT(keylog_seal(key, 8, sealed, 175, back), 0);
    CHECK(memcmp(back, line, 175) != 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL));
    fake_port_make(&fp, &port);
    port.now_ms = test_real_now_ms;
    port.console_read = test_idle_console;
    fake_port_set_real_clock(&port);
    fp.net_up = true;
    agent_t *a = calloc(1, sizeof(*a));
    CHECK(a != NULL);
    if (!a) TEST_DONE();
    agent_init(a, &port);
    agent_boot(a);
    fprintf(stderr, "mbedTLS %s, %u-bit, key export %s\n", AGENT_MBEDTLS_VERSION_STRING,
            (unsigned)(sizeof(void *) * 8u), AGENT_HAVE_KEY_EXPORT ? "yes" : "no");
    test_vector();
    test_console(a);
    test_mqtt(a);
    test_https(a);
    clear_out();

    /* the key never appeared on the console, in any case; nor a secret in clear */
    static const char *const never[] = {key1_hex, key2_hex, "00112233445566778899AABBCCDDEEFF",
                                        "CLIENT_RANDOM", "2d3c4b5a69788796", "deadbeef"};
    CHECK(transcript_len > 1000);
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        if (strstr(transcript, never[i])) {
            fprintf(stderr, "the console showed '%s'\n", never[i]);
            CHECK(false);
        }
    }

    /* agent_free wipes the key */
    char line[100];
    snprintf(line, sizeof(line), "tls keylog %s", key2_hex);
    CHECK_STR(cmd(a, line), "OK\n");
    agent_free(a);
    static const uint8_t zero[32];
    CHECK(!a->keylog.on);
    CHECK(memcmp(a->keylog.key, zero, 32) == 0);
    free(a);
    TEST_DONE();
}
