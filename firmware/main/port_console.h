/* port_console.h - the agent's console on UART0 (115200 8N1) through the UART driver.
 *
 * ESP-IDF v5.1 - v5.4 (driver/uart.h: components/driver/uart in v5.1/v5.2,
 * components/esp_driver_uart in v5.3/v5.4; checked in v5.1, v5.2.5, v5.3.3, v5.4.2).
 *
 * The console is polled (agent_port_t.console_fd = -1): console_read waits in
 * uart_read_bytes, which needs no VFS. A selectable fd would need the UART VFS
 * switched to the driver, and that API moved between the versions we support
 * (esp_vfs_dev_uart_use_driver in vfs/esp_vfs_dev.h up to v5.2,
 * uart_vfs_dev_use_driver in driver/uart_vfs.h from v5.3, the old name
 * deprecated), plus select() on a UART fd mixed with lwIP sockets. Polling
 * costs at most 10 ms of latency on console input while a socket is open
 * (agent_step then waits on the sockets for at most 10 ms and reads the
 * console after them; with no socket open it waits in the console read),
 * which the rig does not notice; the RX buffer holds the input meanwhile.
 *
 * ESP_LOG output of ESP-IDF components goes to the same UART. The port routes
 * it (esp_log_set_vprintf) through the same driver call as the agent's lines,
 * one whole line per uart_write_bytes(), which holds the driver's TX lock for
 * the whole buffer: a component's log line can come between two agent lines,
 * never inside one. */
#ifndef PORT_CONSOLE_H
#define PORT_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "driver/uart.h"
#include "esp_err.h"
#include "port_events.h"

#define PORT_CONSOLE_UART UART_NUM_0
#define PORT_CONSOLE_BAUD 115200

typedef struct {
    uart_port_t uart;
    port_events_t *events; /* a pending event cuts a console wait short */
} port_console_t;

/* Configure UART0, install the driver (RX buffer CONFIG_HIL_CONSOLE_RX_BUFFER,
 * no TX buffer: writes return once the bytes are in the FIFO) and redirect
 * ESP_LOG output through it. */
esp_err_t port_console_init(port_console_t *c, port_events_t *events);
/* Up to cap bytes, waiting at most timeout_ms for the first one; 0 = nothing.
 * Never -1: a UART has no end of file. */
int port_console_read(port_console_t *c, uint8_t *buf, size_t cap, uint32_t timeout_ms);
/* One whole line (the core writes each line with one call). */
void port_console_write(port_console_t *c, const char *buf, size_t len);
/* Wait until everything written has left the UART (before a restart). */
void port_console_drain(port_console_t *c, uint32_t timeout_ms);

#endif
