/* test_support_pure.h - the unit tests' check macros, with no socket, no
 * agent_t and no port: all the socket-free tests (test_codec, test_http_parse,
 * test_settings, test_util) need, so they also build for bare-metal targets
 * (firmware/host/rv32: RISC-V under qemu). test_support.h includes it. */
#ifndef TEST_SUPPORT_PURE_H
#define TEST_SUPPORT_PURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

#endif
