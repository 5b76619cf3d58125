/* fuzz_console_line.c - libFuzzer harness: arbitrary console input bytes
 * into a fresh agent on the in-memory fake port (no network: "mqtt connect"
 * fails at the network-up check), twice:
 *  1. as typed at an idle agent: a single-line input gets exactly one final
 *     line (the one-final-line contract), the tag is cleared;
 *  2. while a command is pending (a deferred final line, as `mqtt connect`
 *     leaves it): every line is queued (or answered ERR busy when the queue
 *     is full), then the pending command is answered and the queue runs.
 *     Both runs must print the same number of final lines (+1 for the
 *     pending command), leave nothing queued and no queued bytes behind. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run 1: returns the number of final lines, or -1 when out wrapped. */
static int run_idle(const uint8_t *data, size_t size)
{
    static fake_port_t fp;
    agent_port_t port;
    agent_t *a = calloc(1, sizeof(*a));
    if (!a) return -1;
    fake_port_make(&fp, &port);
    agent_init(a, &port);
    agent_console_feed(a, data, size);
    /* a single newline-terminated line with a token (not only spaces and
     * tabs) gets exactly one final line, tagged or not; the tag is cleared */
    const uint8_t *nl = memchr(data, '\n', size);
    bool has_token = false;
    for (size_t i = 0; nl && i + 1 < size; i++) {
        if (data[i] != ' ' && data[i] != '\t') has_token = true;
    }
    /* (three quotes start a Mongoose OS RPC frame, rpc.c: not a line any more) */
    if (nl && nl == data + size - 1 && has_token && size < 500 && !memchr(data, '\0', size) &&
        !memchr(data, '\r', size) && !memmem(data, size, "\"\"\"", 3) && fp.out_len < 60000) {
        if (fake_final_lines(&fp) != 1) abort();
    }
    if (a->tag[0] != '\0' || agent_console_busy(a)) abort(); /* nothing here goes pending */
    test_check_settings_roundtrip(a);
    int finals = fp.wraps ? -1 : fake_final_lines(&fp);
    agent_free(a);
    free(a);
    return finals;
}

/* Run 2: the same input behind a pending command. */
static int run_pending(const uint8_t *data, size_t size)
{
    static fake_port_t fp;
    agent_port_t port;
    agent_t *a = calloc(1, sizeof(*a));
    if (!a) return -1;
    fake_port_make(&fp, &port);
    agent_init(a, &port);
    a->finals = 0;
    snprintf(a->tag, sizeof(a->tag), "p0");
    agent_defer(a); /* "@p0 <something>" went pending */
    agent_console_feed(a, data, size);
    if (!agent_is_pending(a) || a->queue.len > sizeof(a->queue.buf)) abort();
    agent_resolve(a, "OK");
    agent_console_run_queued(a);
    if (agent_console_busy(a) || a->queue.count != 0 || a->queue.len != 0) abort();
    for (size_t i = 0; i < sizeof(a->queue.buf); i++) {
        if (a->queue.buf[i] != 0) abort(); /* queued lines may hold secrets: wiped */
    }
    if (a->tag[0] != '\0') abort();
    int finals = fp.wraps ? -1 : fake_final_lines(&fp);
    agent_free(a);
    free(a);
    return finals;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int idle = run_idle(data, size);
    int pending = run_pending(data, size);
    /* a command that would answer several lines cannot happen; a reboot
     * ends the fake run the same way in both */
    if (idle >= 0 && pending >= 0 && pending != idle + 1) abort();
    return 0;
}
