/* agent_internal.h - the core's private view: the agent_t context and the
 * functions its modules call on each other. Ports never include this (they
 * see agent.h and agent_port.h only: the component's public include
 * directory holds nothing else); the host unit tests and fuzzers do.
 *
 * Layers, one way only (a file calls functions of lower layers, never of a
 * higher one; layers.txt is the table, firmware/host/layers.sh checks it on
 * the compiled objects):
 *
 *   leaf <- service <- command <- loop
 *
 *   leaf     util.c rpc_frame.c mqtt_codec.c mqtt_offline.c http_parse.c version.c conn.c
 *            rng.c output.c settings.c clock.c keylog.c nvs_image.c nvs_settings.c: codecs,
 *            parsers, the reconnect back-off and offline queue, RPC framing, the settings
 *            store, settings from NVS,
 *            TCP+TLS connection, DRBG, the lines printed, the board's clock,
 *            the key-log sink. A leaf may call a leaf listed before it.
 *   service  mqtt.c http_server.c wifi.c: each exposes what the loop needs
 *            (init, fdset / tick / wait_ms, service) and what the command
 *            layer starts; services never call each other. The outcome of an
 *            operation a command started goes up through the callback table
 *            given at init (agent_op_events_t: pending, done).
 *   command  final.c commands.c rpc.c console.c: console line (or RPC frame) -> command ->
 *            services; final.c prints the one final line of a command (now,
 *            or through the events table when its operation ends).
 *   loop     agent.c: lifecycle and agent_step; wires the services to the
 *            command layer (agent_command_events).
 *
 * Shared limits and timeouts: agent_limits.h.
 *
 * Pending commands: a command that waits on the network (mqtt connect,
 * mqtt publish, mqtt subscribe, wifi connect) starts its operation and
 * returns; the service calls ev->pending (agent_defer: the command's tag is
 * kept), agent_step services the operation and the service prints the
 * command's log lines and then calls ev->done (agent_resolve: its one final
 * line with the tag). Meanwhile console input is still read, but complete
 * lines are queued (console.c) and run in order once nothing is pending.
 *
 * Owner-less operations (no command waits on them): the boot connect
 * (mqtt.enable, agent.c) and RPC MQTT.Pub (rpc.c). The MQTT service runs
 * them like the commands' ones, with the same log lines, but never calls
 * the events table for them: their outcome is only logged (a failure as
 * "E ... <origin>: <reason>"). The boot connect holds the console's lines
 * as a pending command would; MQTT.Pub has publish slots of its own. */
#ifndef AGENT_INTERNAL_H
#define AGENT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

#include "agent.h"
#include "agent_conn.h"
#include "agent_http.h"
#include "agent_limits.h"
#include "agent_mbedtls_compat.h"
#include "agent_port.h"
#include "agent_settings.h"
#include "mqtt_offline.h"
#include "rpc_frame.h"

/* Does mbedTLS check certificate validity dates against the board's clock
 * (port.clock_get)? Only when it checks dates at all (MBEDTLS_HAVE_TIME_DATE)
 * and reads them from the board: on ESP-IDF time() is the board clock (newlib,
 * settimeofday); with MBEDTLS_PLATFORM_TIME_ALT agent_init points mbedTLS's
 * time hook at port.clock_get (the host's esp variant). Elsewhere (the native
 * variant: Debian's mbedTLS 2.28) mbedTLS calls the host's time(). */
#if defined(MBEDTLS_HAVE_TIME_DATE) && (defined(ESP_PLATFORM) || defined(MBEDTLS_PLATFORM_TIME_ALT))
#define AGENT_DATES_ON_BOARD_CLOCK 1
#else
#define AGENT_DATES_ON_BOARD_CLOCK 0
#endif

/* What Sys.GetInfo reports as "arch" (HTTPS /rpc/Sys.GetInfo and the RPC method). */
#ifndef AGENT_ARCH
#if defined(ESP_PLATFORM)
#define AGENT_ARCH "esp32"
#else
#define AGENT_ARCH "host"
#endif
#endif

/* ---- console.c ---------------------------------------------------------------- */

typedef struct {
    bool active;
    int key;
    size_t total;
    uint32_t crc;
    uint8_t *buf;
    size_t got;
    uint32_t next_seq;
} agent_load_t;

/* Lines read while a command is pending, run in order afterwards. Entries:
 * kind (1 byte), length (2 bytes, little-endian), bytes. */
typedef struct {
    uint8_t buf[AGENT_QUEUE_BYTES];
    size_t len;
    unsigned count;
} agent_queue_t;

/* ---- final.c: the command whose final line comes later --------------------------- */

typedef struct {
    bool active;
    char tag[AGENT_TAG_MAX + 1];
} agent_pending_t;

/* ---- the services' events ---------------------------------------------------------- */

/* How a service (mqtt.c, wifi.c) reports the operation a command started: a
 * table of the command layer's callbacks (agent_command_events, final.c),
 * handed to the service at init with the context to pass them. */
typedef struct {
    /* The command returns before its operation ends: its final line comes later. */
    void (*pending)(void *ctx);
    /* The operation is over: the command's one final line, "OK" or "ERR <reason>". */
    void (*done)(void *ctx, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
} agent_op_events_t;

/* ---- mqtt.c ----------------------------------------------------------------------- */

typedef enum {
    MQTT_IDLE,        /* no connection */
    MQTT_OPENING,     /* `mqtt connect`: TCP connect + TLS handshake (conn.c) */
    MQTT_WAIT_CONNACK, /* `mqtt connect`: CONNECT sent */
    MQTT_CONNECTED,   /* CONNACK 0: publish, subscribe, keep-alive, incoming messages */
} mqtt_state_t;

/* What an MQTT operation waits for. Its owner: a console command (origin
 * NULL: the outcome is the command's final line, through the events table),
 * or nobody (origin: "mqtt.enable" for the boot connect, "MQTT.Pub" for an
 * RPC publish; the outcome is only logged, see mqtt.c). */
typedef struct {
    uint8_t type; /* 0 = nothing; MQTT_CONNACK / MQTT_PUBACK / MQTT_SUBACK; MQTT_PUBLISH =
                   * a QoS 0 publish waiting until its bytes are written */
    const char *origin; /* NULL: a command's; else who started it (a static string) */
    uint16_t id;
    bool done;    /* the packet arrived (handled at the end of the service round) */
    uint8_t code; /* CONNACK return code, SUBACK granted QoS */
    uint64_t deadline_ms;
    char topic[300]; /* escaped, for the command's log line */
    char msg[800];
    bool msg_cut;
    /* a QoS 1 publish while reconnect is on: a copy of it is in the offline
     * queue (MQQ_SHADOW, same id) so that a lost connection can resend it;
     * when there was no room for one, why (mqq_result_t) */
    bool shadow;
    uint8_t shadow_err;
} mqtt_wait_t;

/* A subscription remembered for the resubscribe after a reconnect. */
typedef struct {
    char topic[AGENT_MQTT_SUB_TOPIC_MAX + 1]; /* "" = free */
    uint8_t qos;          /* as asked for */
    uint16_t pending_id;  /* its resubscribe's SUBSCRIBE id while the SUBACK is awaited */
    uint64_t deadline_ms; /* of that SUBACK */
} mqtt_sub_t;

/* Reconnect (mqtt.reconnect_timeout_min/max, taken at connect time). */
typedef struct {
    uint32_t max_ms;         /* max_ms 0: no reconnect (the back-off holds min and max) */
    size_t queue_max;        /* mqtt.max_queue_length */
    /* a loss will be followed by reconnect attempts: a session that reached
     * CONNACK 0 (or the boot connect, from its first attempt) with max_ms > 0;
     * cleared by what ends a session on purpose (mqtt disconnect, mqtt
     * connect, reboot) */
    bool armed;
    bool active;      /* between a loss and a reconnect's CONNACK 0 (`status`: reconnecting) */
    unsigned attempt; /* attempts since the loss (the one scheduled or under way) */
    bool scheduled;   /* an attempt waits for due_ms */
    uint64_t due_ms;
    uint64_t lost_ms; /* the loss was detected then */
    mqtt_backoff_t backoff;
} mqtt_reconnect_t;

typedef struct {
    agent_conn_t conn;
    mqtt_state_t state;
    char server[300]; /* "host:port" as configured, for status */
    uint16_t keep_alive_s;
    uint16_t next_packet_id;
    uint64_t t0_ms; /* `mqtt connect` started: "MQTT0 handshake <ms> ms" */
    uint64_t last_tx_ms; /* a packet was handed to the socket */
    uint64_t last_rx_ms; /* a byte came from the broker */
    uint64_t ping_sent_ms;
    bool ping_outstanding;
    bool session_present; /* of the last CONNACK */
    uint8_t rx[AGENT_MQTT_BUF];
    size_t rx_len;
    size_t discard; /* bytes of an oversize packet still to drop */
    /* outgoing bytes: tx[tx_off..tx_len) not yet taken by the socket */
    uint8_t tx[AGENT_MQTT_BUF];
    size_t tx_len, tx_off;
    uint64_t tx_deadline_ms; /* no write progress until then: connection lost */
    mqtt_wait_t wait; /* the one operation a command (or the boot connect) waits on */
    mqtt_wait_t bg[AGENT_MQTT_BG_PUBS]; /* owner-less publishes (RPC MQTT.Pub) */
    const agent_op_events_t *ev; /* the command layer's callbacks (agent_mqtt_init) */
    void *ev_ctx;
    mqtt_reconnect_t rc;
    mqtt_queue_t queue; /* QoS 1 publishes held for a reconnect (and MQQ_SHADOW copies) */
    mqtt_sub_t subs[AGENT_MQTT_SUBS]; /* remembered while reconnect is armed */
    /* the topic of the `mqtt subscribe` awaiting its SUBACK, as given (remembered then) */
    char sub_topic[AGENT_MQTT_SUB_TOPIC_MAX + 1];
    uint8_t sub_qos;
} agent_mqtt_t;

/* ---- keylog.c ---------------------------------------------------------------------- */

#define AGENT_KEYLOG_KEY_LEN 32
/* "CLIENT_RANDOM <64 hex> <96 hex>": the NSS key-log line, without newline */
#define AGENT_KEYLOG_NSS_LEN (14u + 2u * AGENT_TLS_RANDOM_LEN + 1u + 2u * AGENT_TLS_MASTER_LEN)

/* `tls keylog <64 hex digits>`: while on, every TLS session's secrets are
 * printed sealed with key (never persisted, wiped when turned off, at
 * reboot and in agent_free). */
typedef struct {
    bool on;
    uint8_t key[AGENT_KEYLOG_KEY_LEN];
    uint32_t seq;              /* of the last line printed; 0 after `tls keylog <hex>` */
    agent_tls_secret_t secret; /* the sink of mbedTLS's key-export callback (compat header) */
} agent_keylog_t;

/* ---- wifi.c ----------------------------------------------------------------------- */

typedef struct {
    bool pending; /* `wifi connect` waits for network_up() */
    uint64_t deadline_ms;
    const agent_op_events_t *ev; /* the command layer's callbacks (agent_wifi_init) */
    void *ev_ctx;
} agent_wifi_t;

/* ---- output.c: lines held while an RPC frame goes out ------------------------------- */

typedef struct {
    bool holding;
    size_t hold_len;
    unsigned dropped; /* lines that did not fit in hold */
    char hold[AGENT_LOG_HOLD_BYTES];
} agent_out_t;

/* ---- rpc.c: Mongoose OS RPC frames on the console ----------------------------------- */

/* A file given by FS.Put (RAM only: gone at reboot). A PEM setting given a
 * file's name in Config.Set stores the file's content. */
typedef struct {
    char name[AGENT_RPC_FILE_NAME_MAX + 1]; /* "" = free slot */
    uint8_t *data; /* heap; may be a private key: wiped when freed */
    size_t len;
} agent_rpc_file_t;

typedef struct {
    rpc_frame_t frame;
    bool reboot; /* Sys.Reboot / Config.Save {"reboot": true}: after the response */
    agent_rpc_file_t file[AGENT_RPC_FILES];
    size_t files_total; /* bytes in all files */
} agent_rpc_t;

struct agent {
    agent_port_t port;
    settings_t settings;
    /* console input (console.c) */
    char line[AGENT_LINE_MAX + 2]; /* + optional CR + NUL */
    size_t line_len;
    bool line_overflow;
    agent_queue_t queue;
    bool console_eof; /* console_read reported EOF: answer what was read, then stop */
    /* The tag of the command being run ("" = untagged): agent_final() puts
     * "@<tag> " before the command's one final line and clears it. */
    char tag[AGENT_TAG_MAX + 1];
    unsigned finals; /* final lines printed (or deferred) by the current command: must end at 1 */
    agent_pending_t pending; /* final.c */
    agent_load_t load;
    mbedtls_ctr_drbg_context drbg;
    bool drbg_ready;
    agent_mqtt_t mqtt;
    agent_wifi_t wifi;
    agent_http_t http; /* HTTPS server (http_server.c) */
    agent_keylog_t keylog; /* `tls keylog` (keylog.c) */
    agent_out_t out;       /* output.c */
    agent_rpc_t rpc;       /* RPC frames on the console (rpc.c) */
    bool stop;         /* leave agent_run */
    bool boot_connect; /* mqtt.enable: connect once the network is up (agent.c) */
    /* certificate dates are checked against port.clock_get: AGENT_DATES_ON_BOARD_CLOCK
     * (a field so that the unit tests can turn the clock warnings on in any build) */
    bool dates_on_board_clock;
    struct agent *time_next; /* MBEDTLS_PLATFORM_TIME_ALT: the list of live agents (agent.c) */
};

/* ==== leaves (also: agent_util.h, agent_settings.h, agent_conn.h, mqtt_codec.h) ==== */

/* ---- output.c --------------------------------------------------------------------- */

/* agent_log: "<L> (<ms>) hil: <text>". agent_reply: a data line (raw, no
 * prefix). agent_tagged_line: "[@<tag> ]<text>" (tag "" = none), what
 * final.c prints a command's final line with. */
void agent_log(agent_t *a, char level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void agent_reply(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_tagged_line(agent_t *a, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Bytes as they are (the RPC handshake's answer), one console_write. */
void agent_output_raw(agent_t *a, const char *buf, size_t len);
/* One RPC frame: """ + json + CRC-32 as %08x + """ + newline, one console_write;
 * lines logged meanwhile are held and written after it. 0, or -1 (too
 * large: AGENT_RPC_FRAME_MAX; out of memory). */
int agent_output_frame(agent_t *a, const char *json, size_t len);
/* Print the port's queued asynchronous events (port.next_event) as log lines. */
void agent_port_events(agent_t *a);
uint64_t agent_now(const agent_t *a);

/* ---- rng.c ------------------------------------------------------------------------ */

/* DRBG for TLS and key parsing (seeded from port->random on first use). */
int agent_rng(void *a, unsigned char *buf, size_t len);
void agent_rng_free(agent_t *a);

/* ---- clock.c: the board's clock --------------------------------------------------- */

/* The board's time in Unix seconds and whether it was set (port.clock_get;
 * a port without one: 1970-01-01 + uptime, never set). */
int64_t agent_clock(const agent_t *a, bool *is_set);
/* "YYYY-MM-DDTHH:MM:SSZ" (proleptic Gregorian, UTC; any int64_t, no time_t). */
void agent_format_utc(int64_t unix_s, char *buf, size_t cap);
/* Certificate dates will be checked against a clock nobody set. */
bool agent_clock_unset_for_tls(const agent_t *a);
/* Before a handshake that verifies a certificate: when agent_clock_unset_for_tls,
 * log "W ... clock not set (board time <utc>): certificate dates are checked
 * against it" and return true. */
bool agent_clock_warn(agent_t *a);
/* For one reason of a failed verification (`line`: a line of
 * mbedtls_x509_crt_verify_info for verify_flags, leading spaces skipped):
 * " (clock not set: board time <utc>)" when that line is the FUTURE or EXPIRED
 * reason and the board's unset clock decided it, else "" (another reason, a
 * wrong CA say, is never blamed on the clock). Returns buf. */
const char *agent_clock_note(const agent_t *a, uint32_t verify_flags, const char *line, char *buf,
                             size_t cap);

/* ---- keylog.c ---------------------------------------------------------------------- */

/* `tls keylog <hex>`: turn export on with the 32-byte sealing key given as 64
 * hex digits (hex[0..n)); the line counter restarts at 1. 0, or -1 with a
 * reason in err that never contains the input. */
int agent_keylog_on(agent_t *a, const char *hex, size_t n, char *err, size_t errlen);
/* `tls keylog off`, reboot, agent_free: off, key and pending secret wiped.
 * Neither on nor off touches the connections: the caller makes those in a
 * handshake follow (agent_mqtt_export_secrets, agent_http_export_secrets). */
void agent_keylog_off(agent_t *a);
/* Where a new TLS session's secrets go: &a->keylog.secret while export is on,
 * NULL when off (then no callback is registered). */
agent_tls_secret_t *agent_keylog_sink(agent_t *a);
/* After each handshake step (mqtt.c, http_server.c): when the step exported
 * secrets, print "I (ms) hil: keylog <seq> <hex of the sealed NSS line>"
 * (only while on) and wipe them. */
void agent_keylog_flush(agent_t *a);

/* Pure (no agent_t): the NSS key-log line of s into out (cap >=
 * AGENT_KEYLOG_NSS_LEN + 1, NUL-terminated); its length. */
size_t keylog_nss_line(const agent_tls_secret_t *s, char *out, size_t cap);
/* out[i] = in[i] XOR keystream, keystream block j (32 bytes) =
 * HMAC-SHA256(key, "hil-keylog" || seq (4 bytes big-endian) || j (4 bytes
 * big-endian)). Sealing and unsealing are the same. 0 or an mbedTLS error. */
int keylog_seal(const uint8_t key[AGENT_KEYLOG_KEY_LEN], uint32_t seq, const uint8_t *in,
                size_t len, uint8_t *out);

/* ---- nvs_settings.c ---------------------------------------------------------------- */

/* agent_init, after the saved settings: the provisioning keys of NVS namespace
 * "hil" (port.nvs_get; nothing when the port has none) mapped to settings,
 * validated by settings_set, all applied or none, for this boot (not saved).
 * One I line naming the settings, or one E line naming the key at fault. */
void agent_nvs_settings(agent_t *a);

/* ==== services (agent_http.h: http_server.c): leaves only, never each other ======== */

/* ---- mqtt.c ----------------------------------------------------------------------- */

/* Called by agent_init: nothing open; ev reports the commands' outcomes. */
void agent_mqtt_init(agent_t *a, const agent_op_events_t *ev, void *ev_ctx);
/* `tls keylog` switched: a handshake in progress exports to sink from now on. */
void agent_mqtt_export_secrets(agent_t *a, agent_tls_secret_t *sink);

/* The mqtt commands. 0: the command is answered through ev (ev->pending,
 * then ev->done now or when the outcome is known); -1: not started, a reason
 * for the caller's "ERR <reason>" is in err. */
int agent_mqtt_connect(agent_t *a, char *err, size_t errlen);
int agent_mqtt_publish(agent_t *a, const char *topic, const char *msg, uint8_t qos, char *err,
                       size_t errlen);
int agent_mqtt_subscribe(agent_t *a, const char *topic, uint8_t qos, char *err, size_t errlen);
/* The same operations with no command waiting (owner-less): nothing goes
 * through ev; the log lines are those of the command, and a failure ends
 * with one line "E ... <origin>: <the command's ERR reason>" (origin: a
 * static string naming who started it). Connect (the boot connect,
 * "mqtt.enable"): uses the one wait slot, like `mqtt connect`; 0 started,
 * -1 with the reason in err. Publish (RPC "MQTT.Pub"): one of
 * AGENT_MQTT_BG_PUBS slots of its own, so a command's pending publish is
 * untouched; its Published:OK line comes from a later service round (after
 * the caller's answer); 0 handed to the connection, -1 a bad request
 * (topic, size), -2 not now (not connected, all slots or the send buffer
 * in use); err says why. */
int agent_mqtt_connect_unowned(agent_t *a, const char *origin, char *err, size_t errlen);
int agent_mqtt_publish_unowned(agent_t *a, const char *origin, const char *topic, const char *msg,
                               uint8_t qos, char *err, size_t errlen);
/* An owner-less connect is in progress (the console holds its lines meanwhile). */
bool agent_mqtt_unowned_connecting(const agent_t *a);
/* Nothing open and nothing waited on (the boot connect may start). */
bool agent_mqtt_idle(const agent_t *a);
/* agent_free: nobody waits for any outcome any more. */
void agent_mqtt_forget(agent_t *a);
/* Close the connection on purpose (graceful: DISCONNECT + close_notify, best
 * effort): `mqtt disconnect`, `reboot`, agent_free. It ends reconnecting (no
 * attempt follows, the remembered subscriptions are forgotten) and drops the
 * offline queue: "W ... MQTT0 dropped <k> queued message(s): <why>" when k > 0
 * (why NULL: silently). A loss (read/write error, EOF, keep-alive, malformed
 * packet) is not this: with reconnect on, attempts follow it. */
void agent_mqtt_disconnect(agent_t *a, bool graceful, const char *why);
bool agent_mqtt_connected(const agent_t *a);
/* Between a loss and a reconnect's CONNACK 0 (`status`: mqtt=reconnecting). */
bool agent_mqtt_reconnecting(const agent_t *a);
/* Messages held in the offline queue (`status`: mqtt_queued=). */
size_t agent_mqtt_queued(const agent_t *a);
/* Main loop: keep-alive (returns ms until it next needs to run), descriptors
 * and deadlines for select(), then the work after select(). */
uint32_t agent_mqtt_tick(agent_t *a);
int agent_mqtt_fdset(agent_t *a, fd_set *rd, fd_set *wr, int maxfd, uint32_t *wait_ms);
void agent_mqtt_service(agent_t *a, const fd_set *rd, const fd_set *wr);

/* ---- wifi.c ----------------------------------------------------------------------- */

/* Called by agent_init: nothing pending; ev reports `wifi connect`'s outcome. */
void agent_wifi_init(agent_t *a, const agent_op_events_t *ev, void *ev_ctx);

/* `wifi connect` (port with Wi-Fi): 0 answered through ev (now or later),
 * -1 with a reason in err. */
int agent_wifi_connect(agent_t *a, char *err, size_t errlen);
void agent_wifi_service(agent_t *a);
/* ms until the pending `wifi connect` needs a look (UINT32_MAX: none). */
uint32_t agent_wifi_wait_ms(agent_t *a);
/* At boot: start the station when wifi.sta.ssid is saved. */
void agent_wifi_autoconnect(agent_t *a);

/* ==== command layer: final.c <- commands.c <- console.c ============================ */

/* ---- final.c --------------------------------------------------------------------- */

/* agent_final: THE way to print the current command's final line, "OK" or
 * "ERR <reason>" (fmt must produce one of them); it is prefixed with
 * "@<tag> " when the command was tagged, then the tag is cleared. */
void agent_final(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current command goes pending: its final line comes later, from
 * agent_resolve() (it keeps the command's tag). Counts as its final line. */
void agent_defer(agent_t *a);
/* The pending command's one final line ("OK" / "ERR <reason>"). */
void agent_resolve(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool agent_is_pending(const agent_t *a);
/* The services' events table (agent_mqtt_init, agent_wifi_init): pending =
 * agent_defer, done = agent_resolve; ctx is the agent_t. */
extern const agent_op_events_t agent_command_events;

/* ---- commands.c ------------------------------------------------------------------- */

/* Run a command (line without its tag, starting at the command word; the
 * tag, if any, is in a->tag). Prints or defers exactly one final line. */
void agent_command(agent_t *a, const char *line, size_t len);

/* ---- rpc.c: Mongoose OS RPC frames (rpc_frame.h: the framing) ------------------------ */

/* A console byte for the RPC channel. Returns the bytes (0..4, in pass) the
 * line console gets; *start is set when a frame begins (a partial console
 * line before it is garbage). Handshakes are answered and frames run
 * (methods: rpc.c) from here. */
size_t agent_rpc_feed(agent_t *a, uint8_t b, uint8_t pass[4], bool *start);
/* Run one request (the JSON text of a frame) and write its response frame. */
void agent_rpc_request(agent_t *a, const char *json, size_t len);
/* agent_free: the FS.Put files wiped and freed, a partial frame forgotten. */
void agent_rpc_free(agent_t *a);

/* ---- console.c -------------------------------------------------------------------- */

/* Console input bytes; every complete line is run now, or queued while a
 * command is pending (a full queue answers that line "ERR busy"). */
void agent_console_feed(agent_t *a, const uint8_t *data, size_t len);
/* Run queued lines, in order, until one goes pending or none is left. */
void agent_console_run_queued(agent_t *a);
/* A command is pending or lines are queued. */
bool agent_console_busy(const agent_t *a);
/* Execute one line (no newline): "[@<tag> ]<command ...>"; exactly one
 * final line answers it (now, or later for a pending command), none for a
 * blank line. */
void agent_handle_line(agent_t *a, const char *line, size_t len);

/* ==== the loop (agent.c) =========================================================== */

/* ---- agent.c: lifecycle (tests create agents on their own storage) --------------- */

/* Initialise a (zeroed or fresh) agent: loads settings from storage. Every
 * agent_init must be paired with agent_free before the agent's memory is freed
 * or reused: with MBEDTLS_PLATFORM_TIME_ALT the agent is on the list mbedTLS's
 * time hook reads (agent.c) until agent_free takes it off. */
int agent_init(agent_t *a, const agent_port_t *port);
void agent_free(agent_t *a);

#endif
