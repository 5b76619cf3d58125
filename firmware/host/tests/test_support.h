/* test_support.h - tiny assert macros and an in-memory fake port. */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

extern int test_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                         \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                   \
    do {                                                                                     \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                \
        if (va_ != vb_) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,      \
                    __LINE__, #a, #b, va_, vb_);                                             \
            test_failures++;                                                                 \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                     \
    do {                                                                                    \
        const char *sa_ = (a), *sb_ = (b);                                                  \
        if (strcmp(sa_, sb_) != 0) {                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" == \"%s\"\n", __FILE__, __LINE__, \
                    sa_, sb_);                                                              \
            test_failures++;                                                                \
        }                                                                                   \
    } while (0)

#define TEST_DONE()                                                                 \
    do {                                                                            \
        if (test_failures) fprintf(stderr, "%d check(s) failed\n", test_failures); \
        else fprintf(stderr, "all checks passed\n");                               \
        return test_failures ? 1 : 0;                                               \
    } while (0)

typedef struct {
    char out[65536];
    size_t out_len;
    unsigned char store[65536 + 1024];
    size_t store_len;
    bool has_store;
    bool store_fail;
    uint64_t now;
    uint32_t rng_state;
    bool net_up;
    int reboots;
} fake_port_t;

void fake_port_make(fake_port_t *fp, agent_port_t *port);
/* Clear captured output, feed "line\n", return the captured output. Counts
 * a test failure unless the line got exactly one final line (none when blank). */
const char *fake_cmd(agent_t *a, fake_port_t *fp, const char *line);
/* Last complete line of the captured output (static buffer). */
const char *fake_last_line(const fake_port_t *fp);
/* Does the captured output contain this exact line / this substring? */
bool fake_has_line(const fake_port_t *fp, const char *line);
bool fake_contains(const fake_port_t *fp, const char *sub);
/* Is this line (without its newline) a final line: "OK", "ERR <reason>",
 * "@<tag> OK" or "@<tag> ERR <reason>"? */
bool fake_is_final(const char *line, size_t len);
/* Number of final lines in the captured output (must be 1 per command). */
int fake_final_lines(const fake_port_t *fp);

#endif
