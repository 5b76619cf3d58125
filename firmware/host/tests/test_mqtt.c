/* test_mqtt.c - the MQTT session against a fake broker over 127.0.0.1 (plain
 * TCP: no CA and no PSK set), run by a forked child while the parent drives
 * agent_step(). Covers the keep-alive timeout of a broker that answers
 * CONNECT but ignores PINGREQ: the step that closes the socket must not hand
 * the closed descriptor to select() ("select failed: Bad file descriptor"),
 * with a console that select() can watch (a pipe) and with a polled one.
 * And a PSK connect cut short by the broker leaves no key bytes behind. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;
static uint64_t clock_offset_ms; /* added to the real clock: run keep-alive at will */
static int console_pipe[2] = {-1, -1};

static uint64_t real_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + clock_offset_ms;
}

/* The selectable console: a pipe nobody writes to (until the test does). */
static int pipe_console_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    return test_read_console_fd(console_pipe[0], buf, cap);
}

/* The polled console (console_fd -1): nothing typed, wait a little. */
/* The child: accept one client, read its CONNECT, answer CONNACK 0, then
 * read and ignore everything (PINGREQ included) until the client closes.
 * Exit 0 when a PINGREQ came and the client then closed the connection. */
static int deaf_broker(int lfd)
{
    static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
    uint8_t buf[1024];
    bool connect_seen = false, ping_seen = false;
    alarm(20); /* never outlive a broken test */
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return 10;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) {
            if (!connect_seen && buf[i] == 0x10) {
                connect_seen = true;
                if (send(fd, connack, sizeof(connack), 0) != (ssize_t)sizeof(connack)) return 11;
            } else if (connect_seen && buf[i] == 0xC0 && i + 1 < n && buf[i + 1] == 0x00) {
                ping_seen = true; /* and never answered */
            }
        }
    }
    close(fd);
    return connect_seen && ping_seen ? 0 : 12;
}

static void keepalive_timeout(bool selectable_console)
{
    uint16_t p = 0;
    char line[80];
    int lfd = test_listen_loopback(&p, 4);
    CHECK(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) _exit(deaf_broker(lfd));
    close(lfd);

    fake_port_make(&fp, &port);
    port.now_ms = real_now;
    if (selectable_console) {
        CHECK(pipe(console_pipe) == 0);
        (void)fcntl(console_pipe[0], F_SETFL, O_NONBLOCK);
        port.console_fd = console_pipe[0];
        port.console_read = pipe_console_read;
    } else {
        port.console_fd = -1;
        port.console_read = test_idle_console;
    }
    fp.net_up = true;
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    agent_boot(a);
    snprintf(line, sizeof(line), "config set mqtt.server 127.0.0.1:%u", (unsigned)p);
    fake_cmd(a, &fp, line);
    fake_cmd(a, &fp, "config set mqtt.keep_alive 1");
    fake_cmd(a, &fp, "@c1 mqtt connect");
    CHECK(fake_contains(&fp, " hil: MQTT0 no TLS: "));
    CHECK(fake_contains(&fp, " hil: MQTT0 CONNACK 0\n"));
    CHECK_STR(fake_last_line(&fp), "@c1 OK");

    fp.out_len = 0;
    fp.out[0] = '\0';
    /* 0.5 s (keep_alive/2) without traffic: PINGREQ; 0.5 s after it with
     * nothing from the broker: the socket is closed by the keep-alive tick
     * inside agent_step */
    for (int i = 0; i < 3; i++) CHECK(agent_step(a, 5));
    clock_offset_ms += 800;
    for (int i = 0; i < 3; i++) CHECK(agent_step(a, 5));
    CHECK(a->mqtt.ping_outstanding);
    clock_offset_ms += 1100;
    for (int i = 0; i < 3; i++) CHECK(agent_step(a, 5));
    CHECK(fake_contains(&fp, "E ("));
    CHECK(fake_contains(&fp, " hil: MQTT0 keep-alive timeout: nothing from the broker for "));
    CHECK(fake_contains(&fp, " ms (keep_alive 1 s), disconnecting\n"));
    CHECK(!fake_contains(&fp, "select failed"));
    CHECK(!fake_contains(&fp, "Bad file descriptor"));
    CHECK(!conn_is_open(&a->mqtt.conn));
    if (fake_contains(&fp, "select failed")) fprintf(stderr, "%s", fp.out);

    /* the broker saw the PINGREQ and then the close */
    int st = 0;
    CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    fake_cmd(a, &fp, "status");
    CHECK(fake_has_line(&fp, "mqtt=disconnected"));
    fake_cmd(a, &fp, "mqtt publish t m");
    CHECK_STR(fp.out, "ERR mqtt publish: not connected\n");
    agent_free(a);
    free(a);
    if (selectable_console) {
        close(console_pipe[0]);
        close(console_pipe[1]);
        console_pipe[0] = console_pipe[1] = -1;
    }
}

/* The child: accept one client and close at once (mid-handshake for TLS). */
static int rude_broker(int lfd)
{
    alarm(20);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return 10;
    close(fd);
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) return false;
    }
    return true;
}

/* A PSK connect that fails after the connection took its copy of the key
 * (TLS set up, handshake cut by the broker) leaves no key bytes behind. */
static void psk_failure_wipes_key(void)
{
    uint16_t p = 0;
    char line[80];
    int lfd = test_listen_loopback(&p, 4);
    CHECK(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) _exit(rude_broker(lfd));
    close(lfd);

    fake_port_make(&fp, &port);
    port.now_ms = real_now;
    port.console_read = test_idle_console;
    fp.net_up = true;
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    snprintf(line, sizeof(line), "config set mqtt.server 127.0.0.1:%u", (unsigned)p);
    fake_cmd(a, &fp, line);
    fake_cmd(a, &fp, "config set mqtt.ssl_psk_identity dev");
    fake_cmd(a, &fp, "config set mqtt.ssl_psk_key ffeeddccbbaa99887766554433221100");
    fake_cmd(a, &fp, "config set mqtt.ssl_cipher_suites TLS-PSK-WITH-AES-128-GCM-SHA256");
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(strncmp(fake_last_line(&fp), "ERR mqtt connect: TLS handshake failed", 38) == 0);
    CHECK(all_zero(a->mqtt.conn.psk, sizeof(a->mqtt.conn.psk)));
    CHECK(!fake_contains(&fp, "ffeedd"));
    int st = 0;
    CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
    agent_free(a);
    free(a);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    keepalive_timeout(true);
    keepalive_timeout(false);
    psk_failure_wipes_key();
    TEST_DONE();
}
