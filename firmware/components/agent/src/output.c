/* output.c - the core's lines: log lines, data lines, "[@<tag> ]<text>"
 * lines (final.c builds the commands' final lines on it) and the port's
 * queued events. A leaf: it calls nothing of the core. Every line is written
 * with one console_write. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"

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
    a->port.console_write(a->port.ctx, buf, len);
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
