/* agent_port.h - the platform port interface of the hil-agent core.
 *
 * The core never touches the platform directly except through BSD sockets
 * (for the MQTT connection) and this table of functions. A port fills an
 * agent_port_t and hands it to agent_init(). Every function gets the port's
 * own context pointer back as its first argument.
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
     * short timeout). console_read: up to cap bytes, waiting at most
     * timeout_ms; returns bytes read (0 = nothing yet) or -1 on EOF/error
     * (the agent then stops). console_write: write all of buf. */
    int console_fd;
    int (*console_read)(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms);
    void (*console_write)(void *ctx, const char *buf, size_t len);

    /* Restart the firmware; does not return on success. */
    void (*reboot)(void *ctx);

    /* Optional (may be NULL): free heap in bytes. */
    size_t (*free_heap)(void *ctx);
} agent_port_t;

#ifdef __cplusplus
}
#endif
#endif
