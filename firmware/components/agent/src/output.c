/* output.c - the core's lines: log lines, data lines, "[@<tag> ]<text>"
 * lines (final.c builds the commands' final lines on it), the port's queued
 * events, and RPC frames (rpc.c). A leaf: it calls only rpc_frame.c (the
 * frame's trailer). Every line is written with one console_write, and so is
 * every frame; while a frame goes out, lines are held (a->out) and written
 * after it, so that no line ever lands inside a frame. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "rpc_frame.h"

#define LINE_BUF 1200

uint64_t agent_now(const agent_t *a)
{
    return a->port.now_ms(a->port.ctx);
}

static void write_line(agent_t *a, char *buf, size_t len, size_t cap)
{
    /* guarantee one line: no embedded newlines, terminated by exactly one */
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    }
    if (len + 1 >= cap) len = cap - 2;
    buf[len++] = '\n';
    if (a->out.holding) {
        if (len <= sizeof(a->out.hold) - a->out.hold_len) {
            memcpy(a->out.hold + a->out.hold_len, buf, len);
            a->out.hold_len += len;
        } else {
            a->out.dropped++;
        }
        return;
    }
    a->port.console_write(a->port.ctx, buf, len);
}

void agent_output_raw(agent_t *a, const char *buf, size_t len)
{
    a->port.console_write(a->port.ctx, buf, len);
}

int agent_output_frame(agent_t *a, const char *json, size_t len)
{
    char trailer[RPC_TRAILER_LEN + 1];
    if (len > AGENT_RPC_FRAME_MAX) return -1;
    size_t total = len + RPC_FRAME_OVERHEAD;
    char *buf = malloc(total);
    if (!buf) return -1;
    memcpy(buf, "\"\"\"", 3);
    memcpy(buf + 3, json, len);
    rpc_frame_trailer(json, len, trailer);
    memcpy(buf + 3 + len, trailer, RPC_TRAILER_LEN);
    a->out.holding = true;
    a->port.console_write(a->port.ctx, buf, total);
    a->out.holding = false;
    free(buf);
    /* the lines held meanwhile (none in the single-threaded core today) */
    if (a->out.hold_len > 0) {
        a->port.console_write(a->port.ctx, a->out.hold, a->out.hold_len);
        a->out.hold_len = 0;
    }
    if (a->out.dropped > 0) {
        unsigned n = a->out.dropped;
        a->out.dropped = 0;
        agent_log(a, 'W', "%u log lines dropped while an RPC frame went out", n);
    }
    return 0;
}

void agent_log(agent_t *a, char level, const char *fmt, ...)
{
    char buf[LINE_BUF];
    va_list ap;
    int n = snprintf(buf, sizeof(buf), "%c (%" PRIu64 ") hil: ", level, agent_now(a));
    if (n < 0) return;
    size_t pos = (size_t)n;
    va_start(ap, fmt);
    int m = vsnprintf(buf + pos, sizeof(buf) - pos, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    pos += (size_t)m;
    if (pos >= sizeof(buf)) pos = sizeof(buf) - 1;
    write_line(a, buf, pos, sizeof(buf));
}

void agent_reply(agent_t *a, const char *fmt, ...)
{
    char buf[LINE_BUF];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t pos = (size_t)n;
    if (pos >= sizeof(buf)) pos = sizeof(buf) - 1;
    write_line(a, buf, pos, sizeof(buf));
}

void agent_tagged_line(agent_t *a, const char *tag, const char *fmt, va_list ap)
{
    char buf[LINE_BUF];
    size_t pos = 0;
    if (tag[0] != '\0') {
        int t = snprintf(buf, sizeof(buf), "@%s ", tag);
        if (t > 0) pos = (size_t)t;
    }
    int n = vsnprintf(buf + pos, sizeof(buf) - pos, fmt, ap);
    if (n > 0) pos += (size_t)n;
    if (pos >= sizeof(buf)) pos = sizeof(buf) - 1;
    write_line(a, buf, pos, sizeof(buf));
}

void agent_port_events(agent_t *a)
{
    char text[200];
    char level = 'I';
    /* bounded: a port that keeps producing events cannot starve the console */
    for (int i = 0; i < 32 && a->port.next_event; i++) {
        text[0] = '\0';
        if (!a->port.next_event(a->port.ctx, &level, text, sizeof(text))) break;
        text[sizeof(text) - 1] = '\0';
        if (level != 'I' && level != 'W' && level != 'E') level = 'I';
        agent_log(a, level, "%s", text);
    }
}
