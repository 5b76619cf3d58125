/* agent_port.h - the platform port interface of the hil-agent core.
 *
 * The core never touches the platform directly except through BSD sockets
 * (MQTT connection, HTTPS server) and this table of functions. A port fills
 * an agent_port_t and hands it to agent_new(). Every function gets the
 * port's own context pointer back as its first argument. The core calls
 * them from agent_step() only (one task); none of them should block longer
 * than it says.
 */
#ifndef AGENT_PORT_H
#define AGENT_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of agent_port_t.storage_load. */
#define AGENT_STORAGE_OK 0
#define AGENT_STORAGE_EMPTY 1 /* nothing saved yet */
#define AGENT_STORAGE_ERROR (-1)

/* agent_port_t.nvs_get: return codes, and the value types asked for
 * (numbered as ESP-IDF's nvs_type_t). */
#define AGENT_NVS_OK 0
#define AGENT_NVS_NOT_FOUND 1        /* no such key in the namespace (or no namespace) */
#define AGENT_NVS_ERROR (-1)         /* this key: another type, too large, unreadable */
#define AGENT_NVS_UNAVAILABLE (-2)   /* the whole store: refused or unusable; ask no more */
#define AGENT_NVS_TYPE_U8 0x01
#define AGENT_NVS_TYPE_STR 0x21
#define AGENT_NVS_TYPE_BLOB 0x42

typedef struct agent_port {
    void *ctx;

    /* Milliseconds since boot, monotonic. */
    uint64_t (*now_ms)(void *ctx);

    /* Settings blob. load: allocate *buf with malloc (the core frees it) and
     * set *len; return AGENT_STORAGE_OK / _EMPTY / _ERROR (then write a short
     * reason into err). save: 0 on success, else nonzero and a reason in err. */
    int (*storage_load)(void *ctx, uint8_t **buf, size_t *len, char *err, size_t errlen);
    int (*storage_save)(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen);

    /* Fill buf with len bytes of entropy; 0 on success (mbedTLS f_entropy). */
    int (*random)(void *ctx, unsigned char *buf, size_t len);

    /* Is the network usable (host: always; board: Wi-Fi associated + IP)? */
    bool (*network_up)(void *ctx);

    /* Console. console_fd: a descriptor select() can wait on, or -1 when the
     * console cannot be selected on (the core then polls console_read with a
     * short timeout: at most 10 ms while a socket is open or a command is
     * pending). console_read: up to cap bytes, waiting at most timeout_ms;
     * returns bytes read (0 = nothing yet) or -1 on EOF/error (the agent
     * answers what it has read, then stops). The core keeps reading while a
     * command is pending, so the port's receive buffer never fills.
     * console_write: write all of buf. */
    int console_fd;
    int (*console_read)(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms);
    void (*console_write)(void *ctx, const char *buf, size_t len);

    /* Restart the firmware; does not return on success. */
    void (*reboot)(void *ctx);

    /* Optional (may be NULL): free heap in bytes. */
    size_t (*free_heap)(void *ctx);

    /* Optional Wi-Fi station (NULL on ports without Wi-Fi, e.g. the host
     * port: `wifi ...` then answers ERR). None of these may wait: `wifi
     * connect` is a pending command (see agent_step) that the core completes
     * when network_up() turns true, or fails after 15 s.
     * wifi_begin: configure the station with these credentials (pass "" =
     * open network) and start connecting; a station already connected with
     * the same credentials stays connected. 0, or nonzero and a reason in err
     * (never the password). A port keeps retrying in the background after a
     * failure, and network_up() reports the station's state.
     * wifi_last_reason (may be NULL): the reason code of the station's last
     * disconnect since wifi_begin, 0 = none; shown in the timeout's ERR line.
     * wifi_status: one line of text for `status` ("wifi=<text>"), e.g.
     * "connected ip=192.168.1.20 rssi=-50". */
    int (*wifi_begin)(void *ctx, const char *ssid, const char *pass, char *err, size_t errlen);
    unsigned (*wifi_last_reason)(void *ctx);
    void (*wifi_status)(void *ctx, char *buf, size_t cap);

    /* Optional: asynchronous events of the port (Wi-Fi up/down, ...) as log
     * lines. The core is not thread-safe, so a port's other tasks queue
     * events and the core drains them from its own task (every agent_step,
     * and before a Wi-Fi command's final line): return true with *level ('I',
     * 'W' or 'E') and a NUL-terminated one-line text, false when none is
     * left. A port whose console_read can wait should return early when an
     * event is queued, so that it is printed promptly. */
    bool (*next_event)(void *ctx, char *level, char *text, size_t cap);

    /* Optional (may be NULL: `clock` then answers ERR, and the core takes the
     * board for one without a clock, at 1970-01-01 + uptime): the board's
     * wall clock, which mbedTLS compares certificate validity dates with.
     * A chip has no clock until something sets it: it starts at 1970-01-01
     * plus its uptime. Neither function may wait.
     * clock_get: the board's time now, in Unix seconds (UTC), and in
     * *is_set whether it is a real time: it was set (clock_set, or another
     * source such as SNTP) or it is plausibly real (after 2020-01-01).
     * clock_set: set the board's time to unix_s (>= 2000-01-01, checked by
     * the core); 0, or nonzero and a short reason in err. */
    int64_t (*clock_get)(void *ctx, bool *is_set);
    int (*clock_set)(void *ctx, int64_t unix_s, char *err, size_t errlen);

    /* Optional (NULL: none): settings provisioned the ESP-IDF way, in the NVS
     * namespace "hil" (keys of at most 15 characters; firmware/README.md,
     * "Settings from an NVS partition"). At init, after storage_load, the core
     * asks for each key it knows, with the type it expects: the value into buf
     * (cap bytes; a u8 as 1 byte, a string with its NUL, a blob as it is) and
     * *len = the bytes written (a string's NUL counted). Returns AGENT_NVS_OK,
     * _NOT_FOUND, _ERROR (this key: another type, larger than cap, unreadable)
     * or _UNAVAILABLE (the whole store: an image refused, NVS unusable; the
     * core asks no further key), with a short reason in err that never holds a
     * value. Must not wait. */
    int (*nvs_get)(void *ctx, const char *key, uint8_t type, void *buf, size_t cap, size_t *len,
                   char *err, size_t errlen);
} agent_port_t;

#ifdef __cplusplus
}
#endif
#endif
