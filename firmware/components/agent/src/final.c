/* final.c - the one final line of a command, "[@<tag> ]OK" or
 * "[@<tag> ]ERR <reason>": printed now (agent_final) or, for a command whose
 * operation goes on (mqtt connect / publish / subscribe, wifi connect),
 * deferred and printed when the operation is over (agent_resolve). The
 * bottom of the command layer: console.c and commands.c call it; the services
 * never do, they report through the agent_op_events_t table below (given to
 * them at init by agent.c), whose callbacks are agent_defer and
 * agent_resolve. */
#include <stdarg.h>
#include <string.h>

#include "agent_internal.h"

void agent_final(agent_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    agent_tagged_line(a, a->tag, fmt, ap);
    va_end(ap);
    a->tag[0] = '\0'; /* a tag answers one final line only */
    a->finals++;
}

void agent_defer(agent_t *a)
{
    memcpy(a->pending.tag, a->tag, sizeof(a->pending.tag));
    a->pending.active = true;
    a->tag[0] = '\0';
    a->finals++;
}

static void resolve_v(agent_t *a, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void resolve_v(agent_t *a, const char *fmt, va_list ap)
{
    if (!a->pending.active) { /* a bug: never print a final line nobody asked for */
        agent_log(a, 'E', "internal error: final line without a pending command");
        return;
    }
    agent_tagged_line(a, a->pending.tag, fmt, ap);
    a->pending.active = false;
    a->pending.tag[0] = '\0';
}

void agent_resolve(agent_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    resolve_v(a, fmt, ap);
    va_end(ap);
}

bool agent_is_pending(const agent_t *a)
{
    return a->pending.active;
}

/* ---- the services' events ------------------------------------------------------------ */

static void op_pending(void *ctx)
{
    agent_defer(ctx);
}

static void op_done(void *ctx, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void op_done(void *ctx, const char *fmt, va_list ap)
{
    resolve_v(ctx, fmt, ap);
}

const agent_op_events_t agent_command_events = {op_pending, op_done};
