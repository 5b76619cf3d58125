/* agent_limits.h - the core's shared limits and timeouts: the one place for
 * every size and deadline more than one module (or a test, or the rig's
 * documentation) relies on. Constants only: no types, no functions. */
#ifndef AGENT_LIMITS_H
#define AGENT_LIMITS_H

#include <stdint.h>

/* ---- console (console.c, commands.c) ------------------------------------------ */
#define AGENT_LINE_MAX 512       /* console line, without the newline */
#define AGENT_TAG_MAX 24         /* "@<tag> <command>": 1..24 of [A-Za-z0-9._-] */
#define AGENT_CHUNK_MAX 96       /* decoded bytes per "config data" */
#define AGENT_QUEUE_BYTES 2048   /* console lines queued behind a pending command */

/* ---- MQTT (mqtt.c) ------------------------------------------------------------- */
#define AGENT_MQTT_BUF 8192      /* MQTT rx/tx buffer */
#define AGENT_MSG_LOG_MAX 256    /* payload bytes shown in a message log line */
#define AGENT_CONNECT_TIMEOUT_MS 5000u
#define AGENT_HANDSHAKE_TIMEOUT_MS 10000u
#define AGENT_REPLY_TIMEOUT_MS 10000u /* CONNACK, PUBACK, SUBACK; a stalled write */
#define AGENT_MQTT_BG_PUBS 4     /* RPC MQTT.Pub publishes in flight (no command waits on them) */

/* ---- MQTT reconnect (mqtt.c, mqtt_offline.c) ------------------------------------ */
/* QoS 1 publishes held while the connection is down (mqtt.max_queue_length is
 * 0..AGENT_MQTT_QUEUE_MAX), and the bytes they may take together (topic +
 * message + 2 per message): fixed storage in the agent, no allocation. A
 * reconnect's CONNACK sends them all at once: with the resubscribes they must
 * fit the send buffer (AGENT_MQTT_BUF), checked below. */
#define AGENT_MQTT_QUEUE_MAX 16
#define AGENT_MQTT_QUEUE_BYTES 4096
/* subscriptions remembered for the resubscribe after a reconnect */
#define AGENT_MQTT_SUBS 8
#define AGENT_MQTT_SUB_TOPIC_MAX 256 /* bytes of a remembered topic filter */
/* mqtt.reconnect_timeout_min / _max: at most an hour */
#define AGENT_MQTT_RECONNECT_MAX_MS 3600000u
_Static_assert(AGENT_MQTT_QUEUE_BYTES + AGENT_MQTT_QUEUE_MAX * 8 +
                   AGENT_MQTT_SUBS * (AGENT_MQTT_SUB_TOPIC_MAX + 8) < AGENT_MQTT_BUF,
               "a reconnect's resubscribes and queued messages must fit the send buffer");

/* ---- the boot connect (agent.c: mqtt.enable) ------------------------------------ */
#define AGENT_BOOT_NET_POLL_MS 100u /* mqtt.enable before the network is up: look this often */

/* ---- Wi-Fi (wifi.c) ------------------------------------------------------------ */
#define AGENT_WIFI_TIMEOUT_MS 15000u  /* `wifi connect`: association + DHCP */
#define AGENT_WIFI_POLL_MS 50u        /* `wifi connect` pending: look at network_up this often */

/* ---- HTTPS server (http_server.c) ---------------------------------------------- */
#define AGENT_HTTP_MAX_CLIENTS 4
#define AGENT_HTTP_TIMEOUT_MS 5000u /* handshake + request, and again for the response */
#define AGENT_HTTP_LINGER_MS 1000u  /* after the response: wait for the client's FIN */

/* ---- RPC frames on the console (rpc_frame.c, rpc.c, output.c) ------------------ */
/* JSON text of one frame: a PEM value of SETTING_MAX_LEN bytes, JSON-escaped, fits */
#define AGENT_RPC_FRAME_MAX 12288
#define AGENT_RPC_DEPTH_MAX 8       /* nesting of objects/arrays in a request */
#define AGENT_LOG_HOLD_BYTES 2048   /* log lines held while a frame goes out */
/* FS.Put's file table (RAM only, rpc.c): certificates and keys by file name */
#define AGENT_RPC_FILES 8
#define AGENT_RPC_FILE_NAME_MAX 48  /* [A-Za-z0-9._-], not starting with '.' */
#define AGENT_RPC_FILE_MAX 8192     /* one file (= the settings' largest value) */
#define AGENT_RPC_FILES_TOTAL 32768 /* all files together */

/* ---- the loop (agent.c) -------------------------------------------------------- */
#define AGENT_POLL_SLICE_MS 10u       /* polled console: longest read while sockets need service */

/* ---- the board's clock (clock.c, `clock set`) ----------------------------------- */
/* `clock set <unix seconds>` accepts 2000-01-01T00:00:00Z .. 2099-12-31T23:59:59Z. */
#define AGENT_CLOCK_MIN_S INT64_C(946684800)
#define AGENT_CLOCK_MAX_S INT64_C(4102444799)

#endif
