/* test_http_parse.c - the pure HTTP request-head parser (http_parse.c). */
#include <stdlib.h>

#include "http_parse.h"
#include "test_support.h"

static http_request_t req;

static http_parse_result_t parse_n(const char *s, size_t n)
{
    return http_parse_request((const uint8_t *)s, n, HTTP_HEAD_MAX, HTTP_BODY_MAX, &req);
}

static http_parse_result_t parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static bool field_is(const char *buf, size_t off, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(buf + off, want, len) == 0;
}

/* Malformed: HTTP_PARSE_BAD with this status and reason. */
#define CHECK_BAD(s, st, why)                  \
    do {                                       \
        CHECK_EQ_INT(parse(s), HTTP_PARSE_BAD); \
        CHECK_EQ_INT(req.status, st);          \
        CHECK_STR(req.reason, why);            \
    } while (0)

static void test_good(void)
{
    const char *g = "GET /rpc/Sys.GetInfo HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";
    CHECK_EQ_INT(parse(g), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 0);
    CHECK_EQ_INT(req.method, HTTP_METHOD_GET);
    CHECK(field_is(g, req.method_off, req.method_len, "GET"));
    CHECK(field_is(g, req.path_off, req.path_len, "/rpc/Sys.GetInfo"));
    CHECK_EQ_INT(req.query_len, 0);
    CHECK_EQ_INT(req.version_minor, 1);
    CHECK_EQ_INT(req.head_len, strlen(g));
    CHECK_EQ_INT(req.content_length, 0);

    const char *h = "HEAD / HTTP/1.0\r\n\r\n";
    CHECK_EQ_INT(parse(h), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.method, HTTP_METHOD_HEAD);
    CHECK_EQ_INT(req.version_minor, 0);
    CHECK(field_is(h, req.path_off, req.path_len, "/"));

    const char *p = "POST /rpc/FS.List HTTP/1.1\r\nContent-Type: application/json\r\n"
                    "content-LENGTH:  5 \r\n\r\nhello";
    CHECK_EQ_INT(parse(p), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.method, HTTP_METHOD_POST);
    CHECK_EQ_INT(req.status, 0);
    CHECK_EQ_INT(req.content_length, 5);
    CHECK_EQ_INT(req.head_len, strlen(p) - 5);
    /* same Content-Length twice is fine; body bytes after the head are not parsed */
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n\x01\x02\x03"),
                 HTTP_PARSE_OK);
    CHECK_EQ_INT(req.content_length, 3);
    /* exactly the body limit */
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 1024\r\n\r\n"), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 0);
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 0001\r\n\r\n"), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.content_length, 1);
    /* header values may carry tabs and obs-text; empty values are fine */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nX-A:\tv\xe9 w\t\r\nX-Empty:\r\n\r\n"), HTTP_PARSE_OK);
}

static void test_query_and_target(void)
{
    const char *q = "GET /rpc/Sys.GetInfo?a=1&b=%20 HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse(q), HTTP_PARSE_OK);
    CHECK(field_is(q, req.path_off, req.path_len, "/rpc/Sys.GetInfo"));
    CHECK(field_is(q, req.query_off, req.query_len, "a=1&b=%20"));
    CHECK(field_is(q, req.target_off, req.target_len, "/rpc/Sys.GetInfo?a=1&b=%20"));
    const char *e = "GET /?x HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse(e), HTTP_PARSE_OK);
    CHECK(field_is(e, req.path_off, req.path_len, "/"));
    const char *abs = "GET https://localhost:8443/rpc/FS.List?x HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse(abs), HTTP_PARSE_OK);
    CHECK(field_is(abs, req.path_off, req.path_len, "/rpc/FS.List"));
    CHECK_BAD("GET http://host HTTP/1.1\r\n\r\n", 400, "bad absolute request target");
    CHECK_BAD("GET * HTTP/1.1\r\n\r\n", 400, "request target must start with '/'");
    CHECK_BAD("GET rpc HTTP/1.1\r\n\r\n", 400, "request target must start with '/'");
    CHECK_BAD("GET /a\x7f HTTP/1.1\r\n\r\n", 400, "bad character in request target");
    CHECK_BAD("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400, "bad character in request target");
}

static void test_request_line_errors(void)
{
    CHECK_BAD("GET /\r\n\r\n", 400, "missing HTTP version");
    CHECK_BAD("GET\r\n\r\n", 400, "malformed request line");
    CHECK_BAD("garbage\n", 400, "malformed request line"); /* rejected before the head ends */
    CHECK_BAD("GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line");
    CHECK_BAD(" GET / HTTP/1.1\r\n\r\n", 400, "malformed request line");
    CHECK_BAD("GET / HTTP/1.1 \r\n\r\n", 400, "malformed HTTP version");
    CHECK_BAD("GET / HTTP/1.1 x\r\n\r\n", 400, "malformed HTTP version");
    CHECK_BAD("GET / HTTP/11\r\n\r\n", 400, "malformed HTTP version");
    CHECK_BAD("GET / http/1.1\r\n\r\n", 400, "malformed HTTP version");
    CHECK_BAD("GET / HTTP/1.x\r\n\r\n", 400, "malformed HTTP version");
    CHECK_BAD("GET / HTTP/2.0\r\n\r\n", 505, "unsupported HTTP version");
    CHECK_BAD("G(T / HTTP/1.1\r\n\r\n", 400, "bad method token");
    CHECK_BAD("G\xc3T / HTTP/1.1\r\n\r\n", 400, "bad method token");
    CHECK_BAD("GET\t/ HTTP/1.1\r\n\r\n", 400, "bad method token");
    /* well-formed but unsupported methods: 405 once the head is complete */
    const char *d = "DELETE /x HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse(d), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 405);
    CHECK(field_is(d, req.method_off, req.method_len, "DELETE"));
    CHECK_EQ_INT(parse("get / HTTP/1.1\r\n\r\n"), HTTP_PARSE_OK); /* methods are case-sensitive */
    CHECK_EQ_INT(req.status, 405);
    CHECK_EQ_INT(parse("OPTIONS / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n"), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 405); /* 405 wins over 413 */
}

static void test_header_errors(void)
{
    CHECK_BAD("GET / HTTP/1.1\r\nHost localhost\r\n\r\n", 400, "header line without ':'");
    CHECK_BAD("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad header name");
    CHECK_BAD("GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "bad header name");
    CHECK_BAD("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "obsolete header line folding");
    CHECK_BAD("GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n", 400, "bad character in header value");
    CHECK_BAD("GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", 400, "bad character in header value");
    CHECK_BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
              "Transfer-Encoding not supported");
}

static void test_content_length(void)
{
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "bad Content-Length");
    CHECK_BAD("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
              "conflicting Content-Length headers");
    /* oversized: well-formed, refused with 413 */
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n"), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 413);
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n"),
                 HTTP_PARSE_OK);
    CHECK_EQ_INT(req.status, 413);
}

static void test_line_endings(void)
{
    /* bare LF is accepted everywhere, mixed with CRLF */
    const char *lf = "GET /a HTTP/1.1\nHost: x\r\n\n";
    CHECK_EQ_INT(parse(lf), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.head_len, strlen(lf));
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n\n"), HTTP_PARSE_OK);
    /* leading empty lines are skipped */
    const char *lead = "\r\n\nGET /x HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse(lead), HTTP_PARSE_OK);
    CHECK(field_is(lead, req.path_off, req.path_len, "/x"));
    /* a bare CR is malformed: in the request line, in a header, as a terminator */
    CHECK_BAD("GET / HTTP/1.1\rX\r\n\r\n", 400, "bare CR in request head");
    CHECK_BAD("GET / HTTP/1.1\r\nX-A: 1\r2\r\n\r\n", 400, "bare CR in request head");
    CHECK_BAD("GET / HTTP/1.1\r\n\r\r\n", 400, "bare CR in request head");
    CHECK_BAD("GET / HTTP/1.1\r\r\n\r\n", 400, "bare CR in request head");
    /* incomplete until the empty line */
    CHECK_EQ_INT(parse(""), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n"), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n\r"), HTTP_PARSE_INCOMPLETE);
    /* every prefix of a good request is incomplete, never an error */
    const char *g = "POST /rpc/FS.List?q HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
    for (size_t n = 0; n < strlen(g); n++) CHECK_EQ_INT(parse_n(g, n), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse_n(g, strlen(g)), HTTP_PARSE_OK);
}

static void test_nul_bytes(void)
{
    static const char a[] = "GET /\0x HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse_n(a, sizeof(a) - 1), HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 400);
    CHECK_STR(req.reason, "NUL byte in request head");
    static const char b[] = "GET / HTTP/1.1\r\nX-A: \0\r\n\r\n";
    CHECK_EQ_INT(parse_n(b, sizeof(b) - 1), HTTP_PARSE_BAD);
    CHECK_STR(req.reason, "NUL byte in request head");
    static const char c[] = "\0";
    CHECK_EQ_INT(parse_n(c, 1), HTTP_PARSE_INCOMPLETE); /* no line yet */
    static const char d[] = "\0\n";
    CHECK_EQ_INT(parse_n(d, 2), HTTP_PARSE_BAD);
}

static void test_limits(void)
{
    size_t cap = HTTP_HEAD_MAX + 200;
    char *buf = malloc(cap);
    /* a request line that does not end within the limit */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', cap - 5);
    CHECK_EQ_INT(parse_n(buf, HTTP_HEAD_MAX - 1), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse_n(buf, HTTP_HEAD_MAX), HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 431);
    CHECK_STR(req.reason, "request line too long");
    CHECK_EQ_INT(parse_n(buf, cap), HTTP_PARSE_BAD);
    /* a header too long */
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nX-Long: ");
    memset(buf + n, 'b', cap - n);
    CHECK_EQ_INT(parse_n(buf, HTTP_HEAD_MAX - 1), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse_n(buf, cap), HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 431);
    CHECK_STR(req.reason, "header section too long");
    /* a head of exactly HTTP_HEAD_MAX bytes is accepted; one more byte is not */
    n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nX-Fill: ");
    memset(buf + n, 'c', HTTP_HEAD_MAX - n - 4);
    memcpy(buf + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
    CHECK_EQ_INT(parse_n(buf, HTTP_HEAD_MAX), HTTP_PARSE_OK);
    CHECK_EQ_INT(req.head_len, HTTP_HEAD_MAX);
    memset(buf + n, 'c', HTTP_HEAD_MAX - n - 3);
    memcpy(buf + HTTP_HEAD_MAX - 3, "\r\n\r\n", 4);
    CHECK_EQ_INT(parse_n(buf, HTTP_HEAD_MAX + 1), HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 431);
    /* endless empty lines before the request line */
    memset(buf, '\n', cap);
    CHECK_EQ_INT(parse_n(buf, cap), HTTP_PARSE_BAD);
    CHECK_EQ_INT(req.status, 431);
    free(buf);
}

static void test_helpers(void)
{
    char out[16];
    CHECK_STR(http_sanitize((const uint8_t *)"/a b\x01\xff", 6, 128, out, sizeof(out)), "/a?b??");
    CHECK_STR(http_sanitize((const uint8_t *)"abcdefghij", 10, 4, out, sizeof(out)), "abcd");
    CHECK_STR(http_sanitize((const uint8_t *)"abcdefghijklmnopqrstuvwxyz", 26, 128, out, sizeof(out)),
              "abcdefghijklmno");
    CHECK_STR(http_status_text(404), "Not Found");
    CHECK_STR(http_status_text(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_text(299), "");
}

int main(void)
{
    test_good();
    test_query_and_target();
    test_request_line_errors();
    test_header_errors();
    test_content_length();
    test_line_endings();
    test_nul_bytes();
    test_limits();
    test_helpers();
    TEST_DONE();
}
