/* agent.c - lifecycle (new, init, boot, free) and the main loop.
 *
 * agent_step() is the only place that waits: one select() over the console
 * (when it can be selected on), the MQTT socket, the HTTPS listener and its
 * clients, with a timeout that is the nearest deadline (keep-alive, a
 * connection stage, a pending command, an HTTP client). After it, every
 * module advances what is ready or expired, the console input is read
 * (complete lines run, or are queued behind a pending command), and queued
 * lines run once nothing is pending. Nothing else waits: a command that
 * needs the network is a pending operation that later steps complete.
 *
 * The top of the core's layers (agent_internal.h, layers.txt): it calls
 * every layer below it and nothing calls it; it hands the services the
 * command layer's events table (agent_command_events) at init. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

#include "agent_internal.h"

#if defined(MBEDTLS_PLATFORM_TIME_ALT)
#include "mbedtls/platform_time.h" /* mbedtls_platform_set_time, mbedtls_time_t */

/* mbedTLS's time hook (what certificate dates are compared with) takes no
 * context argument: this is the core's one process-wide pointer, the live
 * agents, most recently initialised first (a->time_next). The hook reads the
 * first one's clock (a firmware has one agent; with none, 1970-01-01). The
 * core is single-threaded. */
static agent_t *s_time_agents;
/* ESP-IDF 5 and the esp host build have a 64-bit time_t: no 2038 cut-off */
_Static_assert(sizeof(mbedtls_time_t) >= 8, "mbedTLS's time type must be 64-bit");

static void time_unlink(agent_t *a)
{
    for (agent_t **pp = &s_time_agents; *pp; pp = &(*pp)->time_next) {
        if (*pp == a) {
            *pp = a->time_next; /* the hook moves on to the agent created before it */
            break;
        }
    }
    a->time_next = NULL;
}

static mbedtls_time_t board_time(mbedtls_time_t *t)
{
    bool set;
    int64_t now = s_time_agents ? agent_clock(s_time_agents, &set) : 0;
    mbedtls_time_t r = (mbedtls_time_t)now;
    if (t) *t = r;
    return r;
}
#endif

/* ---- lifecycle -------------------------------------------------------------------- */

int agent_init(agent_t *a, const agent_port_t *port)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    char err[160] = "";

#if defined(MBEDTLS_PLATFORM_TIME_ALT)
    time_unlink(a); /* initialised again without agent_free */
#endif
    memset(a, 0, sizeof(*a));
    a->port = *port;
    settings_init(&a->settings);
    /* the services report the outcome of a command's operation to the command layer */
    agent_mqtt_init(a, &agent_command_events, a);
    agent_wifi_init(a, &agent_command_events, a);
    agent_http_init(a);
    a->dates_on_board_clock = AGENT_DATES_ON_BOARD_CLOCK;
#if defined(MBEDTLS_PLATFORM_TIME_ALT)
    a->time_next = s_time_agents;
    s_time_agents = a;
    (void)mbedtls_platform_set_time(board_time);
#endif
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
    agent_nvs_settings(a); /* the ESP-IDF way: NVS namespace "hil", over the saved ones */
    return 0;
}

void agent_free(agent_t *a)
{
    /* nobody waits for a pending command's final line (or a boot connect's
     * or an RPC publish's outcome) any more */
    agent_mqtt_forget(a);
    a->boot_connect = false;
    a->wifi.pending = false;
    a->pending.active = false;
    agent_mqtt_disconnect(a, false, NULL);
    agent_http_stop(a, false);
    agent_keylog_off(a); /* the sealing key (no connection is left to follow the switch) */
    agent_rpc_free(a); /* FS.Put's files (keys) and a partial RPC frame */
    settings_free(&a->settings);
    if (a->load.buf) {
        mbedtls_platform_zeroize(a->load.buf, a->load.total);
        free(a->load.buf);
        a->load.buf = NULL;
    }
    /* queued and partial lines may hold "config set <secret>" */
    mbedtls_platform_zeroize(&a->queue, sizeof(a->queue));
    mbedtls_platform_zeroize(a->line, sizeof(a->line));
    agent_rng_free(a);
#if defined(MBEDTLS_PLATFORM_TIME_ALT)
    time_unlink(a);
#endif
}

agent_t *agent_new(const agent_port_t *port)
{
    agent_t *a = calloc(1, sizeof(*a));
    if (a) agent_init(a, port);
    return a;
}

void agent_delete(agent_t *a)
{
    if (!a) return;
    agent_free(a);
    free(a);
}

/* mqtt.enable (Mongoose OS's setting): the agent connects by itself once
 * per boot, exactly as `mqtt connect` does (the same log lines), but no
 * command waits for it: the MQTT service reports its outcome to nobody (an
 * owner-less operation, mqtt.c), so there is no final line, and a failure
 * ends with "E ... mqtt.enable: <the reason `mqtt connect` would give>".
 * It starts when the network is up (boards: after Wi-Fi got an address)
 * and nothing else is under way on the console (a pending command and the
 * lines queued behind it go first); while it is in progress the console
 * holds its lines as behind a pending command (console.c). A connection a
 * command opened first wins (no boot connect). With mqtt.reconnect_timeout_max
 * > 0 the MQTT service retries it (mqtt.c: from its first failed attempt on,
 * and after a loss); those attempts do not hold the console. */
static void boot_connect_try(agent_t *a)
{
    char err[300];
    if (!a->boot_connect || agent_console_busy(a)) return;
    if (a->port.network_up && !a->port.network_up(a->port.ctx)) return;
    a->boot_connect = false;
    if (!settings_get_bool(&a->settings, SK_MQTT_ENABLE)) return; /* turned off meanwhile */
    if (!agent_mqtt_idle(a)) return; /* a command connected first */
    if (!settings_get(&a->settings, SK_MQTT_SERVER)) {
        agent_log(a, 'W', "mqtt.enable: mqtt.server is not set, not connecting");
        return;
    }
    if (agent_mqtt_connect_unowned(a, "mqtt.enable", err, sizeof(err)) != 0) {
        agent_log(a, 'E', "mqtt.enable: %s", err);
    }
}

void agent_boot(agent_t *a)
{
    agent_log(a, 'I', "hil-agent %s ready (mbedtls %s, build %s)", AGENT_VERSION,
              agent_mbedtls_version(), agent_build_id());
    agent_wifi_autoconnect(a);
    a->boot_connect = settings_get_bool(&a->settings, SK_MQTT_ENABLE);
    boot_connect_try(a);
}

/* Read what the console has (waiting at most timeout_ms) and feed it. */
static void console_input(agent_t *a, uint32_t timeout_ms)
{
    uint8_t buf[256];
    int n = a->port.console_read(a->port.ctx, buf, sizeof(buf), timeout_ms);
    if (n < 0) {
        a->console_eof = true; /* answer what was read, then stop */
        return;
    }
    if (n > 0) {
        agent_console_feed(a, buf, (size_t)n);
        mbedtls_platform_zeroize(buf, (size_t)n); /* console input may carry secrets */
    }
}

/* select() the sets for up to wait_ms; on error nothing is ready (deadlines
 * are still serviced). */
static void wait_ready(agent_t *a, int maxfd, fd_set *rd, fd_set *wr, uint32_t wait_ms)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(wait_ms / 1000u);
    tv.tv_usec = (suseconds_t)((wait_ms % 1000u) * 1000u);
    if (select(maxfd + 1, rd, wr, NULL, &tv) < 0) {
        if (errno != EINTR) agent_log(a, 'E', "select failed: %s", strerror(errno));
        FD_ZERO(rd);
        FD_ZERO(wr);
    }
}

bool agent_step(agent_t *a, uint32_t max_wait_ms)
{
    fd_set rd, wr;
    int cfd = a->console_eof ? -1 : a->port.console_fd;
    bool polled = !a->console_eof && cfd < 0;
    agent_port_events(a);
    /* keep-alive first: it may close the socket, and a closed descriptor
     * must not reach select() */
    uint32_t wait = agent_mqtt_tick(a);
    if (wait > max_wait_ms) wait = max_wait_ms;
    uint32_t wifi_wait = agent_wifi_wait_ms(a);
    if (wifi_wait < wait) wait = wifi_wait;
    /* mqtt.enable waits for the network: look again soon */
    if (a->boot_connect && wait > AGENT_BOOT_NET_POLL_MS) wait = AGENT_BOOT_NET_POLL_MS;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    int maxfd = agent_mqtt_fdset(a, &rd, &wr, -1, &wait);
    maxfd = agent_http_fdset(a, &rd, &wr, maxfd, &wait);
    /* A console that cannot be selected on is polled: with no socket open the
     * wait happens in its read; else select() waits on the sockets for at
     * most a slice and the console is read after them, without waiting. */
    bool read_first = polled && maxfd < 0;
    if (read_first) {
        console_input(a, wait);
        wait = 0;
    } else if (polled) {
        if (wait > AGENT_POLL_SLICE_MS) wait = AGENT_POLL_SLICE_MS;
    } else if (cfd >= 0) {
        FD_SET(cfd, &rd);
        if (cfd > maxfd) maxfd = cfd;
    }
    wait_ready(a, maxfd, &rd, &wr, wait);
    agent_mqtt_service(a, &rd, &wr);
    agent_http_service(a, &rd, &wr);
    agent_wifi_service(a);
    if (polled && !read_first) {
        console_input(a, 0);
    } else if (cfd >= 0 && FD_ISSET(cfd, &rd)) {
        console_input(a, 0);
    }
    agent_console_run_queued(a);
    boot_connect_try(a);
    if (a->console_eof && !agent_console_busy(a)) a->stop = true;
    return !a->stop;
}

void agent_run(agent_t *a)
{
    agent_boot(a);
    while (agent_step(a, 1000u)) {
    }
}
