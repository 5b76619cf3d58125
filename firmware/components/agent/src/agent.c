/* agent.c - context, output, boot and the main-loop step. */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

#include "agent_util.h"

static void write_line(agent_t *a, char *buf, size_t len, size_t cap)
{
    /* guarantee one line: no embedded newlines, terminated by exactly one */
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    }
    if (len + 1 >= cap) len = cap - 2;
    buf[len++] = '\n';
    a->port.console_write(a->port.ctx, buf, len);
}

void agent_log(agent_t *a, char level, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    int n = snprintf(buf, sizeof(buf), "%c (%" PRIu64 ") hil: ", level,
                     a->port.now_ms(a->port.ctx));
    if (n < 0) return;
    size_t pos = (size_t)n;
    va_start(ap, fmt);
    int m = vsnprintf(buf + pos, sizeof(buf) - pos, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    pos += (size_t)m;
    if (pos >= sizeof(buf)) pos = sizeof(buf) - 1;
    write_line(a, buf, pos, sizeof(buf));
}

void agent_reply(agent_t *a, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t pos = (size_t)n;
    if (pos >= sizeof(buf)) pos = sizeof(buf) - 1;
    write_line(a, buf, pos, sizeof(buf));
}

void agent_final(agent_t *a, const char *fmt, ...)
{
    char buf[1200];
    size_t pos = 0;
    va_list ap;
    if (a->tag[0] != '\0') {
        int t = snprintf(buf, sizeof(buf), "@%s ", a->tag);
        if (t > 0) pos = (size_t)t;
    }
    va_start(ap, fmt);
    int n = vsnprintf(buf + pos, sizeof(buf) - pos, fmt, ap);
    va_end(ap);
    if (n > 0) pos += (size_t)n;
    if (pos >= sizeof(buf)) pos = sizeof(buf) - 1;
    write_line(a, buf, pos, sizeof(buf));
    a->tag[0] = '\0'; /* a tag answers one final line only */
    a->finals++;
}

static int port_entropy(void *ctx, unsigned char *buf, size_t len)
{
    agent_t *a = ctx;
    return a->port.random(a->port.ctx, buf, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

static int ensure_drbg(agent_t *a)
{
    static const unsigned char pers[] = "hil-agent";
    if (a->drbg_ready) return 0;
    mbedtls_ctr_drbg_init(&a->drbg);
    int ret = mbedtls_ctr_drbg_seed(&a->drbg, port_entropy, a, pers, sizeof(pers) - 1);
    if (ret != 0) {
        mbedtls_ctr_drbg_free(&a->drbg);
        return ret;
    }
    a->drbg_ready = true;
    return 0;
}

int agent_rng(void *ctx, unsigned char *buf, size_t len)
{
    agent_t *a = ctx;
    int ret = ensure_drbg(a);
    if (ret != 0) return ret;
    return mbedtls_ctr_drbg_random(&a->drbg, buf, len);
}

int agent_init(agent_t *a, const agent_port_t *port)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    char err[160] = "";

    memset(a, 0, sizeof(*a));
    a->port = *port;
    settings_init(&a->settings);
    conn_init(&a->mqtt.conn, &a->port);
    agent_http_init(a);
    a->mqtt.next_packet_id = 1;
    if (agent_mbedtls_global_init() != 0) {
        agent_log(a, 'E', "crypto library init failed");
    }
    int r = a->port.storage_load(a->port.ctx, &blob, &len, err, sizeof(err));
    if (r == AGENT_STORAGE_OK) {
        char derr[160];
        if (settings_deserialize(&a->settings, blob, len, derr, sizeof(derr)) != 0) {
            agent_log(a, 'W', "saved settings ignored: %s (defaults in use)", derr);
        }
    } else if (r == AGENT_STORAGE_ERROR) {
        agent_log(a, 'W', "saved settings unreadable: %s (defaults in use)", err);
    }
    if (blob) {
        mbedtls_platform_zeroize(blob, len); /* holds the secrets */
        free(blob);
    }
    return 0;
}

void agent_free(agent_t *a)
{
    agent_mqtt_disconnect(a, false);
    agent_http_stop(a, false);
    settings_free(&a->settings);
    if (a->load.buf) {
        mbedtls_platform_zeroize(a->load.buf, a->load.total);
        free(a->load.buf);
        a->load.buf = NULL;
    }
    if (a->drbg_ready) mbedtls_ctr_drbg_free(&a->drbg);
    a->drbg_ready = false;
}

void agent_boot(agent_t *a)
{
    agent_log(a, 'I', "hil-agent %s ready (mbedtls %s, build %s)", AGENT_VERSION,
              AGENT_MBEDTLS_VERSION_STRING, AGENT_BUILD_ID);
}

void agent_port_events(agent_t *a)
{
    char text[200];
    char level = 'I';
    /* bounded: a port that keeps producing events cannot starve the console */
    for (int i = 0; i < 32 && a->port.next_event; i++) {
        text[0] = '\0';
        if (!a->port.next_event(a->port.ctx, &level, text, sizeof(text))) break;
        text[sizeof(text) - 1] = '\0';
        if (level != 'I' && level != 'W' && level != 'E') level = 'I';
        agent_log(a, level, "%s", text);
    }
}

bool agent_step(agent_t *a, uint32_t max_wait_ms)
{
    uint8_t buf[256];
    int cfd = a->port.console_fd;
    agent_port_events(a);
    uint32_t wait = agent_mqtt_tick(a);
    /* only now: the keep-alive tick may just have closed the socket (no
     * PINGRESP), and a closed descriptor must not reach select() */
    int sfd = a->mqtt.conn.fd;
    if (wait > max_wait_ms) wait = max_wait_ms;
    if (conn_pending(&a->mqtt.conn)) wait = 0;

    if (cfd < 0) {
        /* console cannot be selected on: poll it, then look at the sockets */
        bool sockets = sfd >= 0 || agent_http_running(a);
        uint32_t cw = sockets ? (wait < 10u ? wait : 10u) : wait;
        int n = a->port.console_read(a->port.ctx, buf, sizeof(buf), cw);
        if (n < 0) {
            a->stop = true;
            return false;
        }
        if (n > 0) {
            agent_console_feed(a, buf, (size_t)n);
            mbedtls_platform_zeroize(buf, (size_t)n); /* console input may carry secrets */
        }
        if (a->mqtt.conn.fd >= 0 && conn_wait_readable(&a->mqtt.conn, 0) > 0) agent_mqtt_service(a);
        agent_http_poll(a);
        return !a->stop;
    }

    fd_set rd, wr;
    struct timeval tv;
    int maxfd = cfd;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(cfd, &rd);
    if (sfd >= 0) {
        FD_SET(sfd, &rd);
        if (sfd > maxfd) maxfd = sfd;
    }
    maxfd = agent_http_fdset(a, &rd, &wr, maxfd, &wait);
    tv.tv_sec = (time_t)(wait / 1000u);
    tv.tv_usec = (suseconds_t)((wait % 1000u) * 1000u);
    int r = select(maxfd + 1, &rd, &wr, NULL, &tv);
    if (r < 0) {
        if (errno != EINTR) agent_log(a, 'E', "select failed: %s", strerror(errno));
        return !a->stop;
    }
    if (sfd >= 0 && a->mqtt.conn.fd == sfd && (FD_ISSET(sfd, &rd) || conn_pending(&a->mqtt.conn))) {
        agent_mqtt_service(a);
    }
    agent_http_service(a, &rd, &wr);
    if (FD_ISSET(cfd, &rd)) {
        int n = a->port.console_read(a->port.ctx, buf, sizeof(buf), 0);
        if (n < 0) {
            a->stop = true;
            return false;
        }
        if (n > 0) {
            agent_console_feed(a, buf, (size_t)n);
            mbedtls_platform_zeroize(buf, (size_t)n);
        }
    }
    return !a->stop;
}

void agent_run(agent_t *a)
{
    agent_boot(a);
    while (agent_step(a, 1000u)) {
    }
}
