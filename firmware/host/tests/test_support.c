/* test_support.c - in-memory fake port for unit tests and fuzzers. */
#include "test_support.h"

#include "test_pem.h"
#include "cJSON.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/select.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_failures;

static uint64_t fp_now(void *ctx)
{
    fake_port_t *fp = ctx;
    return fp->now++;
}

static int fp_load(void *ctx, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    fake_port_t *fp = ctx;
    if (!fp->has_store) return AGENT_STORAGE_EMPTY;
    if (fp->store_fail) {
        snprintf(err, errlen, "fake read error");
        return AGENT_STORAGE_ERROR;
    }
    *buf = malloc(fp->store_len ? fp->store_len : 1);
    if (!*buf) return AGENT_STORAGE_ERROR;
    memcpy(*buf, fp->store, fp->store_len);
    *len = fp->store_len;
    return AGENT_STORAGE_OK;
}

static int fp_save(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    fake_port_t *fp = ctx;
    if (len > sizeof(fp->store) || fp->store_fail) {
        snprintf(err, errlen, "fake storage full");
        return -1;
    }
    memcpy(fp->store, buf, len);
    fp->store_len = len;
    fp->has_store = true;
    return 0;
}

bool fake_store_settings(fake_port_t *fp, settings_t *s)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    bool ok = settings_serialize(s, &blob, &len) == 0 && len <= sizeof(fp->store);
    if (ok) {
        memcpy(fp->store, blob, len);
        fp->store_len = len;
        fp->has_store = true;
    } else {
        fprintf(stderr, "fake_store_settings: the settings do not serialize into the store\n");
        test_failures++;
    }
    free(blob);
    settings_free(s);
    return ok;
}

static int fp_random(void *ctx, unsigned char *buf, size_t len)
{
    fake_port_t *fp = ctx;
    for (size_t i = 0; i < len; i++) {
        fp->rng_state ^= fp->rng_state << 13;
        fp->rng_state ^= fp->rng_state >> 17;
        fp->rng_state ^= fp->rng_state << 5;
        buf[i] = (unsigned char)fp->rng_state;
    }
    return 0;
}

static bool fp_net(void *ctx)
{
    fake_port_t *fp = ctx;
    return fp->net_up;
}

static int fp_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    (void)timeout_ms;
    return -1;
}

static void fp_write(void *ctx, const char *buf, size_t len)
{
    fake_port_t *fp = ctx;
    if (len > sizeof(fp->out) - 1 - fp->out_len) { /* wrap (fuzzing) */
        fp->out_len = 0;
        fp->wraps++;
    }
    if (len > sizeof(fp->out) - 1) return;
    memcpy(fp->out + fp->out_len, buf, len);
    fp->out_len += len;
    fp->out[fp->out_len] = '\0';
}

static void fp_reboot(void *ctx)
{
    fake_port_t *fp = ctx;
    fp->reboots++;
}

/* A board clock that was set (as the rig sets a virtual board's): the host's time. */
static int64_t fp_clock_real(void *ctx, bool *is_set)
{
    (void)ctx;
    *is_set = true;
    return (int64_t)time(NULL);
}

void fake_port_set_real_clock(agent_port_t *port)
{
    port->clock_get = fp_clock_real;
}

void fake_port_make(fake_port_t *fp, agent_port_t *port)
{
    memset(fp, 0, sizeof(*fp));
    fp->rng_state = 0x12345678u;
    memset(port, 0, sizeof(*port));
    port->ctx = fp;
    port->now_ms = fp_now;
    port->storage_load = fp_load;
    port->storage_save = fp_save;
    port->random = fp_random;
    port->network_up = fp_net;
    port->console_fd = -1;
    port->console_read = fp_read;
    port->console_write = fp_write;
    port->reboot = fp_reboot;
}

agent_t *test_agent_boot(agent_port_t *port)
{
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, port);
    agent_boot(a);
    return a;
}

void test_agent_drop(agent_t *a)
{
    agent_free(a);
    free(a);
}

void test_feed(agent_t *a, const char *s)
{
    agent_console_feed(a, (const uint8_t *)s, strlen(s));
}

void test_check_settings_roundtrip(agent_t *a)
{
    uint8_t *blob;
    size_t len;
    if (settings_serialize(&a->settings, &blob, &len) == 0) {
        settings_t s;
        char err[200];
        settings_init(&s);
        if (settings_deserialize(&s, blob, len, err, sizeof(err)) != 0) abort();
        settings_free(&s);
        free(blob);
    }
}

int test_recv_all(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int test_read_mqtt_packet(int fd, uint8_t *buf, size_t cap)
{
    size_t n = 1;
    uint32_t rem = 0, mult = 1;
    if (test_recv_all(fd, buf, 1) != 0) return -1;
    do {
        if (n >= 5 || test_recv_all(fd, buf + n, 1) != 0) return -1;
        rem += (uint32_t)(buf[n] & 127u) * mult;
        mult *= 128u;
    } while (buf[n++] & 128u);
    if (n + rem > cap || test_recv_all(fd, buf + n, rem) != 0) return -1;
    return (int)(n + rem);
}

void test_send_all(int fd, const uint8_t *p, size_t n)
{
    if (send(fd, p, n, 0) != (ssize_t)n) _exit(11);
}

const char *fake_cmd(agent_t *a, fake_port_t *fp, const char *line)
{
    fp->out_len = 0;
    fp->out[0] = '\0';
    agent_console_feed(a, (const uint8_t *)line, strlen(line));
    agent_console_feed(a, (const uint8_t *)"\n", 1);
    (void)fake_settle(a, fp);
    /* the contract, for every command a test sends: exactly one final line
     * (none for a blank line), and the tag is gone afterwards */
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\r') n--; /* stripped by the console */
    bool blank = strspn(line, " \t") >= n;
    if (fake_final_lines(fp) != (blank ? 0 : 1)) {
        fprintf(stderr, "fake_cmd: '%s' printed %d final lines:\n%s", line, fake_final_lines(fp),
                fp->out);
        test_failures++;
    }
    if (a->tag[0] != '\0') {
        fprintf(stderr, "fake_cmd: '%s' left the tag '%s' set\n", line, a->tag);
        test_failures++;
    }
    return fp->out;
}

bool fake_settle(agent_t *a, fake_port_t *fp)
{
    for (int i = 0; i < 60000; i++) {
        if (!agent_console_busy(a)) return true;
        fp->now += 50;
        (void)agent_step(a, 1);
    }
    fprintf(stderr, "fake_settle: a command is still pending:\n%s", fp->out);
    test_failures++;
    return false;
}

const char *fake_last_line(const fake_port_t *fp)
{
    static char last[1024];
    size_t end = fp->out_len;
    if (end > 0 && fp->out[end - 1] == '\n') end--;
    size_t start = end;
    while (start > 0 && fp->out[start - 1] != '\n') start--;
    size_t n = end - start < sizeof(last) - 1 ? end - start : sizeof(last) - 1;
    memcpy(last, fp->out + start, n);
    last[n] = '\0';
    return last;
}

bool fake_has_line(const fake_port_t *fp, const char *line)
{
    size_t n = strlen(line);
    const char *p = fp->out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0) return true;
        if (!nl) break;
        p = nl + 1;
    }
    return false;
}

bool fake_contains(const fake_port_t *fp, const char *sub)
{
    return strstr(fp->out, sub) != NULL;
}

bool fake_is_final(const char *p, size_t len)
{
    if (len > 0 && p[0] == '@') { /* "@<tag> " prefix of a tagged command */
        const char *sp = memchr(p, ' ', len);
        if (!sp || sp == p + 1 || (size_t)(sp - p) > AGENT_TAG_MAX + 1) return false;
        len -= (size_t)(sp + 1 - p);
        p = sp + 1;
    }
    /* "OK <note>": `mqtt publish ... 1` held in the offline queue ("OK queued 1 of 5") */
    return (len == 2 && memcmp(p, "OK", 2) == 0) || (len > 3 && memcmp(p, "OK ", 3) == 0) ||
           (len >= 4 && memcmp(p, "ERR ", 4) == 0);
}

int fake_final_lines(const fake_port_t *fp)
{
    int count = 0;
    const char *p = fp->out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (fake_is_final(p, len)) count++;
        if (!nl) break;
        p = nl + 1;
    }
    return count;
}

/* select() on the connection's descriptor for up to ms: >0 ready. */
static int wait_conn(agent_conn_t *c, bool for_write, uint32_t ms)
{
    fd_set set;
    struct timeval tv;
    int r;
    FD_ZERO(&set);
    FD_SET(c->fd, &set);
    tv.tv_sec = (time_t)(ms / 1000u);
    tv.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
    do {
        r = select(c->fd + 1, for_write ? NULL : &set, for_write ? &set : NULL, NULL, &tv);
    } while (r < 0 && errno == EINTR);
    return r;
}

int test_conn_open(agent_conn_t *c, const conn_params_t *p, conn_err_t *err)
{
    if (conn_open_start(c, p, err) != 0) return -1;
    for (;;) {
        int r = conn_open_step(c, err);
        if (r != 0) return r > 0 ? 0 : -1;
        (void)wait_conn(c, c->want_write, 50); /* the deadlines are conn.c's */
    }
}

int test_conn_write(agent_conn_t *c, const uint8_t *buf, size_t len, uint32_t timeout_ms,
                    conn_err_t *err)
{
    size_t off = 0;
    uint32_t waited = 0;
    while (off < len) {
        int n = conn_send(c, buf + off, len - off, err);
        if (n < 0) return -1;
        off += (size_t)n;
        if (n == 0) {
            if (waited >= timeout_ms) return -1;
            (void)wait_conn(c, true, 50);
            waited += 50;
        }
    }
    return 0;
}

int test_conn_wait_readable(agent_conn_t *c, uint32_t timeout_ms)
{
    if (c->fd < 0) return -1;
    if (conn_pending(c)) return 1;
    return wait_conn(c, false, timeout_ms);
}

int test_listen_loopback(uint16_t *port, int backlog)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int test_read_console_fd(int fd, uint8_t *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return n <= 0 ? -1 : (int)n;
}

uint64_t test_real_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int test_idle_console(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    usleep((useconds_t)(timeout_ms < 5u ? timeout_ms : 5u) * 1000u);
    return 0;
}

void test_set_https(agent_t *a, bool mutual)
{
    char err[300];
    CHECK_EQ_INT(settings_set(&a->settings, SK_HTTP_LISTEN_ADDR, "127.0.0.1:0", 11, agent_rng, a,
                              err, sizeof(err)),
                 0);
    CHECK_EQ_INT(settings_set(&a->settings, SK_HTTP_SSL_CERT, test_cert_pem, strlen(test_cert_pem),
                              agent_rng, a, err, sizeof(err)),
                 0);
    CHECK_EQ_INT(settings_set(&a->settings, SK_HTTP_SSL_KEY, test_key_pem, strlen(test_key_pem),
                              agent_rng, a, err, sizeof(err)),
                 0);
    if (mutual) {
        CHECK_EQ_INT(settings_set(&a->settings, SK_HTTP_SSL_CA_CERT, test_cert_pem,
                                  strlen(test_cert_pem), agent_rng, a, err, sizeof(err)),
                     0);
    } else {
        settings_clear(&a->settings, SK_HTTP_SSL_CA_CERT);
    }
}

uint16_t test_http_port(const fake_port_t *fp)
{
    const char *p = strstr(fp->out, "\nhttp.port=");
    CHECK(p != NULL);
    return p ? (uint16_t)strtoul(p + 11, NULL, 10) : 0;
}

int test_serve_until_exit(agent_t *a, pid_t pid)
{
    int st = 0;
    uint64_t end = test_real_now_ms(NULL) + 15000u;
    for (;;) {
        agent_step(a, 20);
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        if (test_real_now_ms(NULL) > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 99;
        }
    }
    for (int i = 0; i < 10; i++) agent_step(a, 5); /* let the server finish its side */
    return WIFEXITED(st) ? WEXITSTATUS(st) : 98;
}

cJSON *test_rpc_call(agent_t *a, const fake_port_t *fp, const char *json)
{
    test_feed(a, "\"\"\"");
    test_feed(a, json);
    test_feed(a, "\"\"\"");
    const char *start = NULL;
    for (const char *p = fp->out; (p = strstr(p, "\"\"\"{")) != NULL; p++) start = p;
    if (!start) return NULL;
    const char *end = strstr(start + 3, "\"\"\"");
    if (!end || end - start < 3 + 2 + 8) return NULL; /* the frame ends with its CRC (8 hex) */
    return cJSON_ParseWithLength(start + 3, (size_t)(end - start - 3) - 8);
}
