/* console.c - console input: line assembly, tags, the queue of lines read
 * while a command is pending, and the one-final-line contract.
 *
 * Contract: every command line gets zero or more data lines and exactly one
 * final "OK" or "ERR <reason>" line, after the command's outcome. Input is
 * never echoed. While a command is pending (its final line comes from a later
 * agent_step), further lines are queued and run in order after it, so final
 * lines stay in command order; a line that does not fit in the queue is
 * answered "ERR busy" at once. The commands themselves are in commands.c.
 * Bytes of Mongoose OS RPC frames (rpc.c) never reach the line assembler;
 * frames are answered at once, even while a command is pending. */
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"

enum { QUEUED_LINE = 1, QUEUED_TOO_LONG = 2 };

static bool is_sep(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* The first token of s[0..n): its start in *tok and length (0 = none);
 * *sep_after: a separator follows it. */
static size_t first_token(const char *s, size_t n, const char **tok, bool *sep_after)
{
    size_t i = 0;
    while (i < n && is_sep(s[i])) i++;
    size_t start = i;
    while (i < n && !is_sep(s[i])) i++;
    *tok = s + start;
    *sep_after = i < n;
    return i - start;
}

/* "@<tag>": 1..AGENT_TAG_MAX of [A-Za-z0-9._-] after the '@'. */
static bool tag_ok(const char *t, size_t n)
{
    if (n < 2 || n > AGENT_TAG_MAX + 1 || t[0] != '@') return false;
    for (size_t i = 1; i < n; i++) {
        char ch = t[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

/* The tag of a line that is not run (too long, queue full) into tag ("" =
 * none): a valid first token, followed by a separator when need_sep (the
 * kept start of an over-long line may end inside its first token). */
static void line_tag(const char *s, size_t n, bool need_sep, char *tag)
{
    const char *t;
    bool sep;
    size_t tn = first_token(s, n, &t, &sep);
    tag[0] = '\0';
    if ((sep || !need_sep) && tag_ok(t, tn)) {
        memcpy(tag, t + 1, tn - 1);
        tag[tn - 1] = '\0';
    }
}

/* The command word, escaped for an error line. */
static const char *word_of(const char *t, size_t n, char *buf, size_t cap)
{
    bool cut;
    (void)agent_escape_quoted((const uint8_t *)t, n, 40, buf, cap, &cut);
    return buf;
}

void agent_handle_line(agent_t *a, const char *line, size_t len)
{
    const char *end = line + len;
    const char *cmd;
    bool sep;
    size_t n = first_token(line, len, &cmd, &sep);
    a->tag[0] = '\0';
    a->finals = 0;
    if (n == 0) return; /* empty line: no reply */
    if (cmd[0] == '@') {
        if (!tag_ok(cmd, n)) { /* not run; answered untagged: there is no usable tag */
            agent_final(a, "ERR bad tag (1..%u of A-Z a-z 0-9 . _ -)", (unsigned)AGENT_TAG_MAX);
            return;
        }
        memcpy(a->tag, cmd + 1, n - 1);
        a->tag[n - 1] = '\0';
        n = first_token(cmd + n, (size_t)(end - (cmd + n)), &cmd, &sep);
        if (n == 0) {
            agent_final(a, "ERR empty command");
            return;
        }
    }
    if (memchr(line, '\0', len)) {
        agent_final(a, "ERR line contains a NUL byte");
    } else {
        agent_command(a, cmd, (size_t)(end - cmd));
        if (a->finals != 1) { /* a bug: keep the one-final-line contract anyway */
            char w[4 * 40 + 1];
            agent_log(a, 'E', "internal error: '%s' printed %u final lines", word_of(cmd, n, w, sizeof(w)),
                      a->finals);
            if (a->finals == 0) agent_final(a, "ERR internal error: no final line");
        }
    }
    a->tag[0] = '\0';
}

/* ---- the queue -------------------------------------------------------------------- */

/* Lines wait: a command is pending, or the boot connect (mqtt.enable) is in
 * progress, which holds the console as a pending command would (its
 * outcome is only logged; a `mqtt connect` typed meanwhile runs after it). */
static bool held(const agent_t *a)
{
    return agent_is_pending(a) || agent_mqtt_unowned_connecting(a);
}

bool agent_console_busy(const agent_t *a)
{
    return held(a) || a->queue.count > 0;
}

static bool queue_push(agent_queue_t *q, uint8_t kind, const char *data, size_t n)
{
    if (n > AGENT_LINE_MAX || q->len + 3 + n > sizeof(q->buf)) return false;
    q->buf[q->len] = kind;
    q->buf[q->len + 1] = (uint8_t)(n & 0xffu);
    q->buf[q->len + 2] = (uint8_t)(n >> 8);
    memcpy(q->buf + q->len + 3, data, n);
    q->len += 3 + n;
    q->count++;
    return true;
}

/* The oldest entry into out (cap > AGENT_LINE_MAX, NUL-terminated); its length. */
static size_t queue_pop(agent_queue_t *q, uint8_t *kind, char *out)
{
    size_t n = (size_t)q->buf[1] | ((size_t)q->buf[2] << 8);
    size_t used = 3 + n;
    *kind = q->buf[0];
    memcpy(out, q->buf + 3, n);
    out[n] = '\0';
    memmove(q->buf, q->buf + used, q->len - used);
    q->len -= used;
    mbedtls_platform_zeroize(q->buf + q->len, used); /* lines may hold secrets */
    q->count--;
    return n;
}

static void answer_too_long(agent_t *a, const char *tag)
{
    a->finals = 0;
    snprintf(a->tag, sizeof(a->tag), "%s", tag);
    agent_final(a, "ERR line too long (max %u)", (unsigned)AGENT_LINE_MAX);
    a->tag[0] = '\0';
}

/* Not queued: answered at once (out of order, but with its tag). */
static void answer_busy(agent_t *a, const char *line, size_t len)
{
    a->finals = 0;
    line_tag(line, len, false, a->tag);
    agent_final(a, "ERR busy");
    a->tag[0] = '\0';
}

void agent_console_run_queued(agent_t *a)
{
    char line[AGENT_LINE_MAX + 1];
    while (!held(a) && a->queue.count > 0) {
        uint8_t kind;
        size_t n = queue_pop(&a->queue, &kind, line);
        if (kind == QUEUED_TOO_LONG) {
            answer_too_long(a, line);
        } else {
            agent_handle_line(a, line, n);
        }
        mbedtls_platform_zeroize(line, sizeof(line));
    }
}

/* ---- line assembly ------------------------------------------------------------------ */

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_sep(s[i])) return false;
    }
    return true;
}

static void line_complete(agent_t *a, const char *line, size_t len)
{
    if (!agent_console_busy(a)) {
        agent_handle_line(a, line, len);
    } else if (!is_blank(line, len) && !queue_push(&a->queue, QUEUED_LINE, line, len)) {
        answer_busy(a, line, len);
    }
}

/* The discarded line's first bytes are still in a->line: when they start
 * with a valid "@<tag> ", the ERR carries that tag (the rig waits for it). */
static void line_too_long(agent_t *a)
{
    char tag[AGENT_TAG_MAX + 1];
    size_t kept = a->line_len < sizeof(a->line) ? a->line_len : sizeof(a->line) - 1;
    line_tag(a->line, kept, true, tag);
    if (!agent_console_busy(a)) {
        answer_too_long(a, tag);
    } else if (!queue_push(&a->queue, QUEUED_TOO_LONG, tag, strlen(tag))) {
        answer_busy(a, a->line, kept);
    }
}

static void line_byte(agent_t *a, char ch)
{
    if (ch == '\n') {
        if (a->line_len > 0 && a->line[a->line_len - 1] == '\r') a->line_len--;
        if (a->line_overflow || a->line_len > AGENT_LINE_MAX) {
            line_too_long(a);
        } else {
            a->line[a->line_len] = '\0';
            line_complete(a, a->line, a->line_len);
        }
        mbedtls_platform_zeroize(a->line, sizeof(a->line)); /* "config set <secret>" */
        a->line_len = 0;
        a->line_overflow = false;
    } else if (!a->line_overflow) {
        if (a->line_len < AGENT_LINE_MAX + 1) {
            a->line[a->line_len++] = ch;
        } else {
            a->line_overflow = true;
        }
    }
}

/* Every byte goes through the RPC channel's framing first (rpc.c,
 * rpc_frame.c): frame bytes stay there, the rest comes back for the line
 * assembler. A frame's start discards the partial line before it (garbage
 * between frames must not prefix the next command). */
void agent_console_feed(agent_t *a, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t pass[4];
        bool start;
        size_t n = agent_rpc_feed(a, data[i], pass, &start);
        if (start) {
            mbedtls_platform_zeroize(a->line, sizeof(a->line));
            a->line_len = 0;
            a->line_overflow = false;
        }
        for (size_t k = 0; k < n; k++) line_byte(a, (char)pass[k]);
        mbedtls_platform_zeroize(pass, sizeof(pass));
    }
}
