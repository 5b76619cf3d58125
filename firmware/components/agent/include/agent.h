/* agent.h - the hil-agent core as a port sees it: create, boot, run.
 *
 * A port fills an agent_port_t (agent_port.h), creates the agent with
 * agent_new() and calls agent_run() (or agent_boot() once and then
 * agent_step() in its own loop). That is all a port includes: the agent's
 * state (agent_t) is opaque here and defined in the core's private header
 * (components/agent/private_include/agent_internal.h). No globals: all state
 * lives in the agent_t. The core is single-threaded: call these functions
 * from one task only. */
#ifndef AGENT_H
#define AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_port.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGENT_VERSION "1.0.0"

typedef struct agent agent_t;

/* Allocate and initialise an agent on this port (the table is copied):
 * loads the saved settings through port->storage_load (a bad blob is
 * reported with a W line and ignored). NULL when out of memory. Does not
 * print the "ready" banner.
 * With an mbedTLS built with MBEDTLS_PLATFORM_TIME_ALT (the host's esp
 * variant), it also points mbedTLS's time source (mbedtls_platform_set_time,
 * which certificate date checks read) at this agent's port->clock_get: that
 * hook is process-wide and has no context argument, so it reads the clock of
 * the most recently created agent that is not deleted yet (1970-01-01 when
 * none is left). Without TIME_ALT mbedTLS calls time(): on ESP-IDF that is
 * the board clock (newlib, settimeofday), on a PC the host's. */
agent_t *agent_new(const agent_port_t *port);
/* Close every connection, wipe the secrets it holds and free it. */
void agent_delete(agent_t *a);

/* Print the "ready" banner; on a port with Wi-Fi, start the station when
 * wifi.sta.ssid is saved. */
void agent_boot(agent_t *a);
/* One main-loop iteration: wait up to max_wait_ms (less when a connection,
 * keep-alive or pending command needs it) for console input and socket
 * events, then handle them. Never waits longer than that: a command that
 * waits on the network (mqtt connect, ...) is completed by later steps.
 * Returns false when the agent should stop: the console reported EOF and
 * every command read before it has been answered. */
bool agent_step(agent_t *a, uint32_t max_wait_ms);
/* agent_boot, then agent_step until it returns false. */
void agent_run(agent_t *a);

/* For a port's --version output and similar. */
const char *agent_build_id(void);       /* git commit at configure time, or a date */
const char *agent_mbedtls_version(void); /* mbedTLS version the core was compiled with */
/* Which build this is: the compile definition AGENT_VARIANT (the host builds:
 * "native" = Debian's mbedTLS 2.28, "esp" = mbedTLS 3.6 configured like
 * ESP-IDF, 32-bit), else "esp-idf" under ESP-IDF and "native" elsewhere. */
const char *agent_variant(void);
unsigned agent_bits(void); /* pointer width in bits: 32 on an ESP32 (and the esp variant), 64 on a PC */

#ifdef __cplusplus
}
#endif
#endif
