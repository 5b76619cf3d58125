/* clock.c - the board's clock: what time it is (port.clock_get), its UTC
 * text, and the notes a TLS module adds when certificate dates were checked
 * against a clock nobody set. A leaf: it calls output.c only (agent_log,
 * agent_now). mbedTLS's time hook (MBEDTLS_PLATFORM_TIME_ALT) stays with the
 * agent's lifecycle in agent.c: it is registered in agent_init. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"

int64_t agent_clock(const agent_t *a, bool *is_set)
{
    bool set = false;
    int64_t now;
    if (a->port.clock_get) {
        now = a->port.clock_get(a->port.ctx, &set);
    } else {
        now = (int64_t)(agent_now(a) / 1000u); /* a chip nobody set: 1970-01-01 + uptime */
    }
    if (is_set) *is_set = set;
    return now;
}

void agent_format_utc(int64_t t, char *buf, size_t cap)
{
    /* days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil inverse) */
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    snprintf(buf, cap, "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64 ":%02" PRId64 "Z",
             y, m, d, secs / 3600, secs / 60 % 60, secs % 60);
}

bool agent_clock_unset_for_tls(const agent_t *a)
{
    bool set;
    if (!a->dates_on_board_clock) return false;
    (void)agent_clock(a, &set);
    return !set;
}

bool agent_clock_warn(agent_t *a)
{
    char utc[32];
    bool set;
    if (!a->dates_on_board_clock) return false;
    int64_t now = agent_clock(a, &set);
    if (set) return false;
    agent_format_utc(now, utc, sizeof(utc));
    agent_log(a, 'W', "clock not set (board time %s): certificate dates are checked against it", utc);
    return true;
}

/* Is `line` (one line of mbedtls_x509_crt_verify_info, leading spaces
 * skipped) the text of `flag`? */
static bool verify_line_is(const char *line, uint32_t flag)
{
    char text[128] = "";
    (void)mbedtls_x509_crt_verify_info(text, sizeof(text), "", flag);
    text[strcspn(text, "\n")] = '\0';
    const char *t = text + strspn(text, " ");
    return *t && strcmp(line, t) == 0;
}

const char *agent_clock_note(const agent_t *a, uint32_t verify_flags, const char *line, char *buf,
                             size_t cap)
{
    char utc[32];
    bool set;
    if (cap) buf[0] = '\0';
    if (!a->dates_on_board_clock || verify_flags == (uint32_t)-1 ||
        !((verify_flags & MBEDTLS_X509_BADCERT_FUTURE && verify_line_is(line, MBEDTLS_X509_BADCERT_FUTURE)) ||
          (verify_flags & MBEDTLS_X509_BADCERT_EXPIRED && verify_line_is(line, MBEDTLS_X509_BADCERT_EXPIRED)))) {
        return buf;
    }
    int64_t now = agent_clock(a, &set);
    if (set) return buf;
    agent_format_utc(now, utc, sizeof(utc));
    snprintf(buf, cap, " (clock not set: board time %s)", utc);
    return buf;
}
