/* agent.h - the hil-agent core: context, boot, main-loop step, console.
 *
 * One agent_t holds all state (no globals). A port creates it with
 * agent_init(), then calls agent_run() (or agent_step() in its own loop). */
#ifndef AGENT_H
#define AGENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_conn.h"
#include "agent_http.h"
#include "agent_mbedtls_compat.h"
#include "agent_port.h"
#include "agent_settings.h"

#define AGENT_VERSION "1.0.0"
#ifndef AGENT_BUILD_ID
#define AGENT_BUILD_ID __DATE__ "-" __TIME__
#endif

#define AGENT_LINE_MAX 512       /* console line, without the newline */
#define AGENT_TAG_MAX 24         /* "@<tag> <command>": 1..24 of [A-Za-z0-9._-] */
#define AGENT_CHUNK_MAX 96       /* decoded bytes per "config data" */
#define AGENT_MQTT_BUF 8192      /* MQTT rx/tx buffer */
#define AGENT_MSG_LOG_MAX 256    /* payload bytes shown in a message log line */

#define AGENT_CONNECT_TIMEOUT_MS 5000u
#define AGENT_HANDSHAKE_TIMEOUT_MS 10000u
#define AGENT_REPLY_TIMEOUT_MS 10000u /* CONNACK, PUBACK, SUBACK */
#define AGENT_WIFI_TIMEOUT_MS 15000u  /* `wifi connect`: association + DHCP */

typedef struct {
    bool active;
    int key;
    size_t total;
    uint32_t crc;
    uint8_t *buf;
    size_t got;
    uint32_t next_seq;
} agent_load_t;

typedef struct {
    agent_conn_t conn;
    bool connected; /* CONNACK 0 received */
    char server[300]; /* "host:port" as configured, for status */
    uint16_t keep_alive_s;
    uint16_t next_packet_id;
    uint64_t last_tx_ms;
    uint64_t ping_sent_ms;
    bool ping_outstanding;
    uint8_t rx[AGENT_MQTT_BUF];
    size_t rx_len;
    size_t discard; /* bytes of an oversize packet still to drop */
    uint8_t tx[AGENT_MQTT_BUF];
    /* what a synchronous command waits for */
    uint8_t wait_type;
    uint16_t wait_id;
    bool wait_done;
    uint8_t wait_code;
} agent_mqtt_t;

typedef struct agent {
    agent_port_t port;
    settings_t settings;
    char line[AGENT_LINE_MAX + 2]; /* + optional CR + NUL */
    size_t line_len;
    bool line_overflow;
    /* The tag of the command being run ("" = untagged): agent_final() puts
     * "@<tag> " before the command's one final line and clears it. */
    char tag[AGENT_TAG_MAX + 1];
    unsigned finals; /* final lines printed by the current command (must end at 1) */
    agent_load_t load;
    mbedtls_ctr_drbg_context drbg;
    bool drbg_ready;
    agent_mqtt_t mqtt;
    agent_http_t http; /* HTTPS server (http_server.c) */
    bool stop; /* console EOF: leave agent_run */
} agent_t;

/* Initialise a (zeroed or fresh) agent: loads settings from storage (a bad
 * blob is reported with a W line and ignored). Does not print the banner. */
int agent_init(agent_t *a, const agent_port_t *port);
void agent_free(agent_t *a);
/* Print the "ready" banner. */
void agent_boot(agent_t *a);
/* One main-loop iteration: wait up to max_wait_ms for console/socket input,
 * handle it, run keep-alive. Returns false when the agent should stop. */
bool agent_step(agent_t *a, uint32_t max_wait_ms);
/* agent_boot + agent_step until stop. */
void agent_run(agent_t *a);

/* Console input bytes (from the port); complete lines are executed. */
void agent_console_feed(agent_t *a, const uint8_t *data, size_t len);
/* Execute one line (no newline): "[@<tag> ]<command ...>"; exactly one
 * final line (agent_final) answers it, none for a blank line. */
void agent_handle_line(agent_t *a, char *line, size_t len);

/* Output. agent_log: "<L> (<ms>) hil: <text>". agent_reply: a data line
 * (raw, no prefix). agent_final: THE way to print a command's final line,
 * "OK" or "ERR <reason>" (fmt must produce one of them); it is prefixed with
 * "@<tag> " when the command was tagged, then the tag is cleared. Every
 * command prints exactly one final line. */
void agent_log(agent_t *a, char level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void agent_reply(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_final(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the port's queued asynchronous events (port.next_event) as log lines. */
void agent_port_events(agent_t *a);

/* DRBG for TLS and key parsing (seeded from port->random on first use). */
int agent_rng(void *a, unsigned char *buf, size_t len);

/* MQTT (agent_mqtt.c). The *_cmd functions print log lines and return 0 or
 * -1 with a reason (for "ERR <reason>") in err. */
int agent_mqtt_connect(agent_t *a, char *err, size_t errlen);
int agent_mqtt_publish(agent_t *a, const char *topic, const char *msg, uint8_t qos, char *err,
                       size_t errlen);
int agent_mqtt_subscribe(agent_t *a, const char *topic, uint8_t qos, char *err, size_t errlen);
void agent_mqtt_disconnect(agent_t *a, bool send_disconnect);
/* Socket readable (or TLS pending): read and handle packets. */
void agent_mqtt_service(agent_t *a);
/* Keep-alive; returns ms until it next needs to run. */
uint32_t agent_mqtt_tick(agent_t *a);

#endif
