/* test_content_length.c - Content-Length values that do not fit 32 bits.
 *
 * http_parse.c once accumulated Content-Length in a size_t: on a 32-bit
 * build (the ESP32, the host's esp variant) "4294967296" wrapped to 0 and
 * "4294968000" to 704, so an oversized request was taken as a small one.
 * The same answers are expected from every build, 32- and 64-bit. */
#include <stdint.h>
#include <stdlib.h>

#include "http_parse.h"
#include "test_support.h"

static http_request_t req;

static http_parse_result_t parse_cl(const char *value)
{
    static char buf[1024];
    int n = snprintf(buf, sizeof(buf), "POST /x HTTP/1.1\r\nContent-Length: %s\r\n\r\n", value);
    CHECK(n > 0 && (size_t)n < sizeof(buf));
    return http_parse_request((const uint8_t *)buf, (size_t)n, HTTP_HEAD_MAX, HTTP_BODY_MAX, &req);
}

/* A value above the body limit: well-formed, refused with 413. */
static void check_too_large(const char *value, int line)
{
    http_parse_result_t r = parse_cl(value);
    if (r != HTTP_PARSE_OK || req.status != 413 || !req.content_length_too_large ||
        req.content_length != 0) {
        fprintf(stderr, "%s:%d: Content-Length %s: result %d status %d too_large %d length %lu\n",
                __FILE__, line, value, (int)r, req.status, (int)req.content_length_too_large,
                (unsigned long)req.content_length);
        test_failures++;
    }
}
#define CHECK_TOO_LARGE(v) check_too_large(v, __LINE__)

/* A value within the limit: served, with this length. */
static void check_fits(const char *value, size_t want, int line)
{
    http_parse_result_t r = parse_cl(value);
    if (r != HTTP_PARSE_OK || req.status != 0 || req.content_length_too_large ||
        req.content_length != want) {
        fprintf(stderr, "%s:%d: Content-Length %s: result %d status %d length %lu (want %lu)\n",
                __FILE__, line, value, (int)r, req.status, (unsigned long)req.content_length,
                (unsigned long)want);
        test_failures++;
    }
}
#define CHECK_FITS(v, n) check_fits(v, n, __LINE__)

static void test_wrapping_values(void)
{
    /* the values that wrapped on 32 bits: 2^32 -> 0, 2^32 + 704 -> 704 */
    CHECK_TOO_LARGE("4294967296");
    CHECK_TOO_LARGE("4294968000");
    CHECK_TOO_LARGE("4294967297");
    CHECK_TOO_LARGE("4294967295"); /* SIZE_MAX on 32 bits */
    CHECK_TOO_LARGE("8589934592"); /* 2^33 */
    CHECK_TOO_LARGE("8589935616"); /* 2^33 + 1024 */
    /* 64-bit wrap points and beyond */
    CHECK_TOO_LARGE("18446744073709551615");
    CHECK_TOO_LARGE("18446744073709551616");
    CHECK_TOO_LARGE("18446744073709552000");
    CHECK_TOO_LARGE("1000000000000000000"); /* the saturation point itself */
    CHECK_TOO_LARGE("999999999999999999");
    char many[600];
    memset(many, '9', sizeof(many) - 1);
    many[sizeof(many) - 1] = '\0';
    CHECK_TOO_LARGE(many);
    memset(many, '1', sizeof(many) - 1);
    CHECK_TOO_LARGE(many);
}

static void test_limits(void)
{
    CHECK_FITS("0", 0);
    CHECK_FITS("1024", 1024);
    CHECK_TOO_LARGE("1025");
    /* leading zeros never saturate the value */
    char zeros[600];
    memset(zeros, '0', sizeof(zeros) - 1);
    zeros[sizeof(zeros) - 5] = '1';
    zeros[sizeof(zeros) - 4] = '0';
    zeros[sizeof(zeros) - 3] = '2';
    zeros[sizeof(zeros) - 2] = '4';
    zeros[sizeof(zeros) - 1] = '\0';
    CHECK_FITS(zeros, 1024);
    CHECK_FITS("00000000000000000000000000000000000007", 7);
}

static void test_conflicts(void)
{
    /* 2^32 and 0 are different values (they were equal on 32 bits) */
    const char *two = "POST / HTTP/1.1\r\nContent-Length: 4294967296\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ_INT(http_parse_request((const uint8_t *)two, strlen(two), HTTP_HEAD_MAX, HTTP_BODY_MAX,
                                    &req),
                 HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 400);
    CHECK_STR(req.reason, "conflicting Content-Length headers");
    const char *wrap = "POST / HTTP/1.1\r\nContent-Length: 4294968000\r\nContent-Length: 704\r\n\r\n";
    CHECK_EQ_INT(http_parse_request((const uint8_t *)wrap, strlen(wrap), HTTP_HEAD_MAX, HTTP_BODY_MAX,
                                    &req),
                 HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 400);
    const char *same = "POST / HTTP/1.1\r\nContent-Length: 4294967296\r\nContent-Length: 04294967296\r\n\r\n";
    CHECK_EQ_INT(http_parse_request((const uint8_t *)same, strlen(same), HTTP_HEAD_MAX, HTTP_BODY_MAX,
                                    &req),
                 HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 413);
    /* an unsupported method with a huge body: 405 wins, nothing stored */
    const char *opt = "OPTIONS / HTTP/1.1\r\nContent-Length: 4294967296\r\n\r\n";
    CHECK_EQ_INT(http_parse_request((const uint8_t *)opt, strlen(opt), HTTP_HEAD_MAX, HTTP_BODY_MAX,
                                    &req),
                 HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 405);
    CHECK(req.content_length_too_large);
    CHECK_EQ_INT(req.content_length, 0);
}

static void test_other_limits(void)
{
    /* a caller's max_body above 32 bits is compared in 64 bits too */
    const char *r = "POST / HTTP/1.1\r\nContent-Length: 4294967296\r\n\r\n";
    CHECK_EQ_INT(http_parse_request((const uint8_t *)r, strlen(r), HTTP_HEAD_MAX, 0, &req), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 413);
    const char *z = "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ_INT(http_parse_request((const uint8_t *)z, strlen(z), HTTP_HEAD_MAX, 0, &req), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 0);
}

int main(void)
{
    fprintf(stderr, "size_t is %u bits\n", (unsigned)(sizeof(size_t) * 8u));
    test_wrapping_values();
    test_limits();
    test_conflicts();
    test_other_limits();
    TEST_DONE();
}
