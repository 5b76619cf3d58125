/* http_parse.h - pure parser of one HTTP/1.x request head (request line +
 * header fields), for the agent's HTTPS server. No I/O, no allocation, no
 * logging: it is unit-tested and fuzzed on its own.
 *
 * Call http_parse_request() on the bytes received so far (from the start of
 * the connection). It only ever looks at the first max_head bytes. */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 4096u /* request line + header fields + empty line */
#define HTTP_BODY_MAX 1024u /* largest Content-Length that is read (and ignored) */

typedef enum {
    HTTP_METHOD_OTHER, /* a well-formed token that is not supported (-> 405) */
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
} http_method_t;

typedef enum {
    HTTP_PARSE_INCOMPLETE = 0, /* need more bytes */
    HTTP_PARSE_OK = 1,         /* head complete; see req->status */
    HTTP_PARSE_BAD = -1,       /* malformed / too large: req->status, req->reason */
} http_parse_result_t;

typedef struct {
    /* Filled on HTTP_PARSE_OK (and, for a parsed request line, on _BAD). All
     * offsets index the caller's buffer. */
    http_method_t method;
    size_t method_off, method_len;
    size_t target_off, target_len; /* request-target as sent */
    size_t path_off, path_len;     /* target without the query, '/'-rooted */
    size_t query_off, query_len;   /* after '?', 0 length when absent */
    uint8_t version_minor;         /* HTTP/1.<minor> */
    bool have_request_line;
    size_t head_len;       /* bytes of the head, including the empty line */
    size_t content_length; /* 0 when absent or above max_body (only valid when status is 0) */
    /* Content-Length above max_body (parsed in 64 bits, saturating: any
     * number of digits, on 32- and 64-bit size_t alike); status is then 413,
     * or 405 for an unsupported method */
    bool content_length_too_large;
    /* HTTP_PARSE_OK: 0 = serve it, or 405 (method not supported) or 413
     * (Content-Length above the body limit): the request is well-formed
     * but refused. HTTP_PARSE_BAD: 400, 431 or 505. */
    int status;
    const char *reason; /* static text for the log (HTTP_PARSE_BAD), else "" */
} http_request_t;

/* Parse the head at the start of buf[0..len). max_head bounds the head
 * (normally HTTP_HEAD_MAX); max_body bounds Content-Length (HTTP_BODY_MAX).
 * Lines end in CRLF or a bare LF; a bare CR is malformed. Leading empty
 * lines are skipped (RFC 9112 2.2). Errors in complete lines are reported
 * as soon as they are seen, before the rest of the head arrives. */
http_parse_result_t http_parse_request(const uint8_t *buf, size_t len, size_t max_head,
                                       size_t max_body, http_request_t *req);

/* Reason phrase for a status code ("OK", "Not Found", ...; "" if unknown). */
const char *http_status_text(int status);

/* Copy bytes for a log line: visible ASCII (0x21..0x7e) kept, anything else
 * (spaces, control bytes, NUL, bytes >= 0x80) as '?', cut to at most
 * max_chars characters and to outlen - 1. Always NUL-terminates (outlen > 0).
 * Returns out. */
char *http_sanitize(const uint8_t *in, size_t len, size_t max_chars, char *out, size_t outlen);

#endif
