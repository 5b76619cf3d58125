/* port_console.c - UART0 console + ESP_LOG redirection; see port_console.h.
 *
 * ESP-IDF APIs and where they were checked (tags v5.1, v5.2.5, v5.3.3, v5.4.2):
 *   uart_param_config, uart_driver_install, uart_read_bytes, uart_write_bytes,
 *   uart_get_buffered_data_len, uart_wait_tx_done, uart_config_t, UART_SCLK_DEFAULT
 *     components/driver/uart/include/driver/uart.h (v5.1, v5.2),
 *     components/esp_driver_uart/include/driver/uart.h (v5.3, v5.4),
 *     components/hal/include/hal/uart_types.h, components/soc/<target>/include/soc/clk_tree_defs.h
 *   esp_log_set_vprintf, esp_log_level_set, vprintf_like_t
 *     components/log/include/esp_log.h (+ esp_log_level.h in v5.4)
 *   xPortInIsrContext, xTaskGetSchedulerState  components/freertos (portmacro.h, task.h)
 *
 * uart_read_bytes(n, ticks) waits until n bytes arrived or the timeout passed
 * (components/.../uart.c, both versions), so a read asks for one byte with the
 * timeout and then takes what is already buffered without waiting. It returns
 * -1 only for bad arguments or when the RX lock is busy; never an EOF. */
#include "port_console.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#if !CONFIG_ESP_CONSOLE_UART || CONFIG_ESP_CONSOLE_UART_NUM != 0
#error "hil-agent's console is UART0: set CONFIG_ESP_CONSOLE_UART_DEFAULT (sdkconfig.defaults)"
#endif

/* Longest wait inside one uart_read_bytes call, so a Wi-Fi event posted while
 * the console is idle is printed within this time. */
#define READ_SLICE_MS 50u
/* ESP_LOG lines of other components: longer ones are cut (and still end in
 * a newline). Formatted on the caller's stack: the hook must be re-entrant. */
#define IDF_LOG_LINE_MAX 160

/* esp_log_set_vprintf() takes no context pointer: the UART the hook writes
 * to and the previous output function are this file's only state. */
static bool s_log_ready;
static uart_port_t s_log_uart;
static vprintf_like_t s_prev_vprintf;

static TickType_t ms_to_ticks(uint32_t ms)
{
    /* round up: a 5 ms wait must not become a 0-tick busy poll at 100 Hz */
    return (TickType_t)((ms + portTICK_PERIOD_MS - 1u) / portTICK_PERIOD_MS);
}

/* ESP_LOG output: one line, one uart_write_bytes() (v5.1 - v5.4 format a log
 * line, newline included, in one call of this function). A piece without a
 * trailing newline gets one, so an agent line never continues it. */
static int log_to_uart(const char *fmt, va_list ap)
{
    char line[IDF_LOG_LINE_MAX];
    if (!s_log_ready || xPortInIsrContext() || xTaskGetSchedulerState() != taskSCHEDULER_RUNNING) {
        return s_prev_vprintf ? s_prev_vprintf(fmt, ap) : 0;
    }
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n <= 0) return n;
    size_t len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 1;
    if (line[len - 1] != '\n') {
        if (len < sizeof(line) - 1) {
            len++;
        }
        line[len - 1] = '\n';
    }
    (void)uart_write_bytes(s_log_uart, line, len);
    return n;
}

esp_err_t port_console_init(port_console_t *c, port_events_t *events)
{
    const uart_config_t cfg = {
        .baud_rate = PORT_CONSOLE_BAUD,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    esp_err_t err;

    c->uart = PORT_CONSOLE_UART;
    c->events = events;
    /* let the boot log leave the FIFO before the UART is reconfigured */
    fflush(stdout);
    fsync(fileno(stdout));
    err = uart_param_config(c->uart, &cfg);
    if (err != ESP_OK) return err;
    /* RX ring buffer for the rig's pipelined commands; no TX buffer (writes
     * block until the bytes are in the FIFO, so nothing is lost on restart);
     * no event queue; intr flags 0 (the driver adds ESP_INTR_FLAG_IRAM itself
     * when CONFIG_UART_ISR_IN_IRAM is set, which keeps RX alive during flash
     * writes such as `config save`). */
    err = uart_driver_install(c->uart, CONFIG_HIL_CONSOLE_RX_BUFFER, 0, 0, NULL, 0);
    if (err != ESP_OK) return err;

    s_log_uart = c->uart;
    s_log_ready = true;
    s_prev_vprintf = esp_log_set_vprintf(log_to_uart);
    esp_log_level_set("*", (esp_log_level_t)CONFIG_HIL_IDF_LOG_LEVEL);
    return ESP_OK;
}

int port_console_read(port_console_t *c, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    uint32_t left = timeout_ms;
    size_t avail = 0;
    if (cap == 0) return 0;
    for (;;) {
        uint32_t slice = left < READ_SLICE_MS ? left : READ_SLICE_MS;
        if (uart_read_bytes(c->uart, buf, 1, ms_to_ticks(slice)) == 1) break;
        left -= slice;
        if (left == 0 || port_events_pending(c->events)) return 0;
    }
    if (cap > 1 && uart_get_buffered_data_len(c->uart, &avail) == ESP_OK && avail > 0) {
        uint32_t want = (uint32_t)(avail < cap - 1 ? avail : cap - 1);
        int more = uart_read_bytes(c->uart, buf + 1, want, 0);
        if (more > 0) return 1 + more;
    }
    return 1;
}

void port_console_write(port_console_t *c, const char *buf, size_t len)
{
    /* one call for the whole line: the driver holds its TX lock throughout */
    size_t off = 0;
    while (off < len) {
        int n = uart_write_bytes(c->uart, buf + off, len - off);
        if (n <= 0) return;
        off += (size_t)n;
    }
}

void port_console_drain(port_console_t *c, uint32_t timeout_ms)
{
    (void)uart_wait_tx_done(c->uart, ms_to_ticks(timeout_ms));
}
