/* host_port.c - Linux implementation of agent_port_t: monotonic clock, the
 * virtual board's wall clock, settings in a 0600 state file, /dev/urandom,
 * stdin/stdout console, reboot by re-exec. */
#define _GNU_SOURCE
#include "host_port.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t hp_now_ms(void *ctx)
{
    host_port_t *hp = ctx;
    return (mono_ns() - hp->boot_ns) / 1000000u;
}

/* ---- the board's wall clock ------------------------------------------------- */

/* The base the offset is added to, in ns: time since start (a board that
 * starts without a clock) or the host's CLOCK_REALTIME. */
static int64_t clock_base_ns(const host_port_t *hp)
{
    if (hp->clock_unset) return (int64_t)(mono_ns() - hp->boot_ns);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

static int64_t hp_clock_get(void *ctx, bool *is_set)
{
    host_port_t *hp = ctx;
    int64_t ns = clock_base_ns(hp) + hp->clock_offset_ns;
    int64_t s = ns / INT64_C(1000000000);
    if (ns < 0 && s * INT64_C(1000000000) != ns) s--; /* floor */
    if (is_set) *is_set = hp->clock_was_set || !hp->clock_unset;
    return s;
}

static int hp_clock_set(void *ctx, int64_t unix_s, char *err, size_t errlen)
{
    host_port_t *hp = ctx;
    if (unix_s < 0 || unix_s > INT64_MAX / INT64_C(1000000000) - INT64_C(1000000000)) {
        snprintf(err, errlen, "out of range for this port");
        return -1;
    }
    hp->clock_offset_ns = unix_s * INT64_C(1000000000) - clock_base_ns(hp);
    hp->clock_was_set = true;
    return 0;
}

#define STATE_MAX (256u * 1024u)

static int hp_load(void *ctx, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    host_port_t *hp = ctx;
    struct stat st;
    int fd = open(hp->state_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return AGENT_STORAGE_EMPTY;
        snprintf(err, errlen, "%s: %s", hp->state_path, strerror(errno));
        return AGENT_STORAGE_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > STATE_MAX) {
        snprintf(err, errlen, "%s: not a regular file of at most %u bytes", hp->state_path, STATE_MAX);
        close(fd);
        return AGENT_STORAGE_ERROR;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *b = malloc(size ? size : 1);
    if (!b) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return AGENT_STORAGE_ERROR;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, b + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    *buf = b;
    *len = got;
    return AGENT_STORAGE_OK;
}

static int hp_save(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    host_port_t *hp = ctx;
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", hp->state_path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "state path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    (void)fchmod(fd, 0600);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, hp->state_path) != 0) {
        snprintf(err, errlen, "%s: %s", hp->state_path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int hp_random(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    return got == len ? 0 : -1;
}

static bool hp_network_up(void *ctx)
{
    (void)ctx;
    return true;
}

static int hp_console_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    host_port_t *hp = ctx;
    struct pollfd p = {hp->in_fd, POLLIN, 0};
    int r = poll(&p, 1, (int)(timeout_ms > 60000u ? 60000u : timeout_ms));
    if (r < 0) return errno == EINTR ? 0 : -1;
    if (r == 0) return 0;
    ssize_t n = read(hp->in_fd, buf, cap);
    if (n > 0) {
        if (hp->power_cut_file && memmem(buf, (size_t)n, "config ", 7) &&
            unlink(hp->power_cut_file) == 0) {
            raise(SIGKILL); /* the power cut: nothing after this runs */
        }
        return (int)n;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
    return -1; /* EOF, or EIO when the pty master side went away */
}

static void hp_console_write(void *ctx, const char *buf, size_t len)
{
    host_port_t *hp = ctx;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(hp->out_fd, buf + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {hp->out_fd, POLLOUT, 0};
            (void)poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0) return; /* console gone: drop output */
        off += (size_t)n;
    }
}

/* ---- --nvs <image>: settings the ESP-IDF way ------------------------------------ */

#define NVS_FILE_MAX (NVS_IMAGE_MAX_PAGES * NVS_IMAGE_PAGE_SIZE)

static void nvs_read_image(host_port_t *hp)
{
    struct stat st;
    hp->nvs_state = -1;
    int fd = open(hp->nvs_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(hp->nvs_err, sizeof(hp->nvs_err), "%s: %s", hp->nvs_path, strerror(errno));
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > NVS_FILE_MAX) {
        snprintf(hp->nvs_err, sizeof(hp->nvs_err), "%s: not a regular file of 1..%u bytes", hp->nvs_path,
                 (unsigned)NVS_FILE_MAX);
        close(fd);
        return;
    }
    size_t size = (size_t)st.st_size, got = 0;
    hp->nvs_buf = malloc(size);
    while (hp->nvs_buf && got < size) {
        ssize_t n = read(fd, hp->nvs_buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (!hp->nvs_buf || got != size) {
        snprintf(hp->nvs_err, sizeof(hp->nvs_err), "%s: %s", hp->nvs_path,
                 hp->nvs_buf ? "short read" : "out of memory");
        return;
    }
    hp->nvs_len = size;
    char why[200];
    if (nvs_image_open(&hp->nvs_img, hp->nvs_buf, size, why, sizeof(why)) != NVS_IMAGE_OK) {
        snprintf(hp->nvs_err, sizeof(hp->nvs_err), "image %s refused: %s", hp->nvs_path, why);
        return;
    }
    hp->nvs_state = 1;
}

static int hp_nvs_get(void *ctx, const char *key, uint8_t type, void *buf, size_t cap, size_t *len,
                      char *err, size_t errlen)
{
    host_port_t *hp = ctx;
    nvs_image_value_t v;
    if (hp->nvs_state == 0) nvs_read_image(hp);
    if (hp->nvs_state < 0) {
        snprintf(err, errlen, "%s", hp->nvs_err);
        return AGENT_NVS_UNAVAILABLE;
    }
    int r = nvs_image_find(&hp->nvs_img, "hil", key, &v);
    if (r == NVS_IMAGE_NOT_FOUND) return AGENT_NVS_NOT_FOUND;
    if (r != NVS_IMAGE_OK) {
        snprintf(err, errlen, "lookup failed (%d)", r);
        return AGENT_NVS_ERROR;
    }
    if ((unsigned)v.type != type) {
        snprintf(err, errlen, "stored as %s, expected %s", nvs_image_type_name(v.type),
                 nvs_image_type_name((nvs_image_type_t)type));
        return AGENT_NVS_ERROR;
    }
    r = nvs_image_read(&hp->nvs_img, &v, buf, cap, len);
    if (r != NVS_IMAGE_OK) {
        snprintf(err, errlen, "%u bytes, more than %zu", (unsigned)v.size, cap);
        return AGENT_NVS_ERROR;
    }
    return AGENT_NVS_OK;
}

void host_port_free(host_port_t *hp)
{
    if (hp->nvs_buf) {
        memset(hp->nvs_buf, 0, hp->nvs_len); /* keys and PSKs */
        free(hp->nvs_buf);
        hp->nvs_buf = NULL;
    }
    hp->nvs_state = 0;
}

static void hp_reboot(void *ctx)
{
    host_port_t *hp = ctx;
    fflush(NULL);
    /* /proc/self/exe survives a relative argv[0] after chdir */
    execv("/proc/self/exe", hp->argv);
    execv(hp->argv[0], hp->argv);
    fprintf(stderr, "hil-agent: reboot (execv) failed: %s\n", strerror(errno));
}

void host_port_make(host_port_t *hp, agent_port_t *port)
{
    hp->boot_ns = mono_ns();
    memset(port, 0, sizeof(*port));
    port->ctx = hp;
    port->now_ms = hp_now_ms;
    port->storage_load = hp_load;
    port->storage_save = hp_save;
    port->random = hp_random;
    port->network_up = hp_network_up;
    port->console_fd = hp->in_fd;
    port->console_read = hp_console_read;
    port->console_write = hp_console_write;
    port->reboot = hp_reboot;
    port->free_heap = NULL;
    port->clock_get = hp_clock_get;
    port->clock_set = hp_clock_set;
    port->nvs_get = hp->nvs_path ? hp_nvs_get : NULL;
    hp->clock_was_set = false;
    hp->clock_offset_ns = 0;
}
