/* fuzz_http_request.c - libFuzzer harness: the HTTP request-head parser
 * (with its invariants) and the server's request -> response core
 * (agent_http_process) on an agent with the in-memory fake port. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "test_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const uint8_t *data, size_t size)
{
    http_request_t r;
    http_parse_result_t res = http_parse_request(data, size, HTTP_HEAD_MAX, HTTP_BODY_MAX, &r);
    if (res == HTTP_PARSE_OK) {
        if (r.head_len == 0 || r.head_len > size || r.head_len > HTTP_HEAD_MAX) abort();
        if (r.status != 0 && r.status != 405 && r.status != 413) abort();
        if (r.status == 0 && r.content_length > HTTP_BODY_MAX) abort();
        if (!r.have_request_line || r.method_len == 0) abort();
        if (r.path_len == 0 || r.path_off + r.path_len > r.head_len || data[r.path_off] != '/') abort();
        if (r.query_len && r.query_off + r.query_len > r.head_len) abort();
        if (r.target_off + r.target_len > r.head_len) abort();
        for (size_t i = 0; i < r.path_len; i++) {
            if (data[r.path_off + i] < 0x21 || data[r.path_off + i] > 0x7e) abort();
        }
        /* incremental use: any shorter prefix is incomplete (the head ends
         * exactly at head_len), never an error */
        http_request_t q;
        if (http_parse_request(data, r.head_len - 1, HTTP_HEAD_MAX, HTTP_BODY_MAX, &q) !=
            HTTP_PARSE_INCOMPLETE) {
            abort();
        }
        if (http_parse_request(data, r.head_len / 2, HTTP_HEAD_MAX, HTTP_BODY_MAX, &q) !=
            HTTP_PARSE_INCOMPLETE) {
            abort();
        }
    } else if (res == HTTP_PARSE_BAD) {
        if (r.status != 400 && r.status != 431 && r.status != 505) abort();
        if (!r.reason || !r.reason[0]) abort();
        if (r.status == 431 && size < HTTP_HEAD_MAX) abort();
    } else if (res == HTTP_PARSE_INCOMPLETE) {
        if (size >= HTTP_HEAD_MAX) abort(); /* the limit always decides */
    } else {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fake_port_t fp;
    static agent_port_t port;
    static agent_t *a;
    static char out[AGENT_HTTP_RESPONSE_MAX];

    check_parse(data, size);

    if (!a) {
        a = calloc(1, sizeof(*a));
        if (!a) return 0;
        fake_port_make(&fp, &port);
        agent_init(a, &port);
    }
    fp.out_len = 0;
    fp.out[0] = '\0';
    size_t out_len = 0;
    int status = 0;
    if (agent_http_process(a, data, size, NULL, out, &out_len, &status) == 1) {
        /* a complete, framed response and exactly one log line */
        if (out_len < 12 || out_len > sizeof(out) || memcmp(out, "HTTP/1.1 ", 9) != 0) abort();
        if (status < 200 || status > 599) abort();
        if (!memmem(out, out_len, "\r\nContent-Length: ", 18)) abort();
        if (!memmem(out, out_len, "\r\nContent-Type: ", 16)) abort();
        if (!memmem(out, out_len, "\r\nConnection: close\r\n\r\n", 23)) abort();
        size_t lines = 0;
        for (size_t i = 0; i < fp.out_len; i++) lines += fp.out[i] == '\n';
        if (lines != 1 || strncmp(fp.out + 1, " (", 2) != 0) abort();
        if (!strstr(fp.out, " hil: HTTP ")) abort();
    } else if (fp.out_len != 0) {
        abort(); /* nothing logged until a response is due */
    }
    return 0;
}
