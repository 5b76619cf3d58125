/* http_parse.c - HTTP/1.x request head parser (see http_parse.h).
 *
 * Deliberately strict (RFC 9112 syntax, a small server): single spaces in
 * the request line, token method, visible-ASCII request target, exact
 * "HTTP/d.d" version, token field names directly followed by ':', no line
 * folding, no control bytes, one Content-Length value, no
 * Transfer-Encoding. */
#include "http_parse.h"

#include <string.h>

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL;
}

static bool is_vchar(uint8_t c)
{
    return c >= 0x21 && c <= 0x7e;
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

static bool eq_nocase(const uint8_t *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m) return false;
    for (size_t i = 0; i < n; i++) {
        if (lower(s[i]) != (uint8_t)lit[i]) return false;
    }
    return true;
}

static bool eq(const uint8_t *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static http_parse_result_t bad(http_request_t *req, int status, const char *reason)
{
    req->status = status;
    req->reason = reason;
    return HTTP_PARSE_BAD;
}

/* Find the next line in buf[pos..scan). 1: line content is buf[pos..pos+*n)
 * and the next line starts at *next; 0: no line end yet; -1: malformed
 * (reason set). */
static int next_line(const uint8_t *buf, size_t scan, size_t pos, size_t *n, size_t *next,
                     const char **reason)
{
    const uint8_t *lf = memchr(buf + pos, '\n', scan - pos);
    if (!lf) return 0;
    size_t end = (size_t)(lf - buf);
    size_t content = end - pos;
    if (content > 0 && buf[end - 1] == '\r') content--;
    if (memchr(buf + pos, '\0', content)) {
        *reason = "NUL byte in request head";
        return -1;
    }
    if (memchr(buf + pos, '\r', content)) {
        *reason = "bare CR in request head";
        return -1;
    }
    *n = content;
    *next = end + 1;
    return 1;
}

static http_parse_result_t parse_request_line(const uint8_t *buf, size_t pos, size_t n,
                                              http_request_t *req)
{
    const uint8_t *l = buf + pos;
    const uint8_t *sp1 = memchr(l, ' ', n);
    if (!sp1) return bad(req, 400, "malformed request line");
    size_t mlen = (size_t)(sp1 - l);
    if (mlen == 0) return bad(req, 400, "malformed request line");
    for (size_t i = 0; i < mlen; i++) {
        if (!is_tchar(l[i])) return bad(req, 400, "bad method token");
    }
    req->method_off = pos;
    req->method_len = mlen;
    if (eq(l, mlen, "GET")) req->method = HTTP_METHOD_GET;
    else if (eq(l, mlen, "HEAD")) req->method = HTTP_METHOD_HEAD;
    else if (eq(l, mlen, "POST")) req->method = HTTP_METHOD_POST;
    else req->method = HTTP_METHOD_OTHER;

    size_t toff = mlen + 1;
    const uint8_t *sp2 = memchr(l + toff, ' ', n - toff);
    if (!sp2) return bad(req, 400, "missing HTTP version");
    size_t tlen = (size_t)(sp2 - (l + toff));
    if (tlen == 0) return bad(req, 400, "malformed request line");
    for (size_t i = 0; i < tlen; i++) {
        if (!is_vchar(l[toff + i])) return bad(req, 400, "bad character in request target");
    }
    req->target_off = pos + toff;
    req->target_len = tlen;

    /* origin-form "/path?query", or absolute-form "http(s)://authority/path" */
    const uint8_t *t = l + toff;
    size_t pstart = 0;
    if (t[0] != '/') {
        size_t skip = 0;
        if (tlen > 7 && eq_nocase(t, 7, "http://")) skip = 7;
        else if (tlen > 8 && eq_nocase(t, 8, "https://")) skip = 8;
        if (skip == 0) return bad(req, 400, "request target must start with '/'");
        const uint8_t *slash = memchr(t + skip, '/', tlen - skip);
        if (!slash || slash == t + skip) return bad(req, 400, "bad absolute request target");
        pstart = (size_t)(slash - t);
    }
    const uint8_t *q = memchr(t + pstart, '?', tlen - pstart);
    size_t pend = q ? (size_t)(q - t) : tlen;
    req->path_off = req->target_off + pstart;
    req->path_len = pend - pstart;
    if (q) {
        req->query_off = req->target_off + pend + 1;
        req->query_len = tlen - pend - 1;
    }

    size_t voff = toff + tlen + 1;
    const uint8_t *v = l + voff;
    size_t vlen = n - voff;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9') {
        return bad(req, 400, "malformed HTTP version");
    }
    if (v[5] != '1') return bad(req, 505, "unsupported HTTP version");
    req->version_minor = (uint8_t)(v[7] - '0');
    req->have_request_line = true;
    return HTTP_PARSE_OK;
}

/* Content-Length values are parsed into 64 bits whatever the width of size_t
 * (32 bits on the ESP32) and saturate at HTTP_CL_HUGE: only "fits the body
 * limit" or "too large" matters, and no digit string can wrap around to a
 * small value. */
#define HTTP_CL_HUGE UINT64_C(1000000000000000000) /* 10^18 < 2^63 */

typedef struct {
    bool have_cl;
    uint64_t cl; /* <= HTTP_CL_HUGE */
} hdr_state_t;

/* Decimal digits [s, s+n) as a Content-Length: false unless all are digits
 * (and n > 0); the value saturates at HTTP_CL_HUGE. */
static bool parse_content_length(const uint8_t *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        /* v * 10 + d <= HTTP_CL_HUGE, checked without overflowing */
        if (v > (HTTP_CL_HUGE - d) / 10u) v = HTTP_CL_HUGE;
        else v = v * 10u + d;
    }
    *out = v;
    return true;
}

static http_parse_result_t parse_header_line(const uint8_t *l, size_t n, hdr_state_t *st,
                                             http_request_t *req)
{
    if (l[0] == ' ' || l[0] == '\t') return bad(req, 400, "obsolete header line folding");
    const uint8_t *colon = memchr(l, ':', n);
    if (!colon) return bad(req, 400, "header line without ':'");
    size_t nlen = (size_t)(colon - l);
    if (nlen == 0) return bad(req, 400, "bad header name");
    for (size_t i = 0; i < nlen; i++) {
        if (!is_tchar(l[i])) return bad(req, 400, "bad header name");
    }
    size_t vs = nlen + 1;
    size_t ve = n;
    while (vs < ve && (l[vs] == ' ' || l[vs] == '\t')) vs++;
    while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t')) ve--;
    for (size_t i = vs; i < ve; i++) {
        uint8_t c = l[i];
        if (c != '\t' && (c < 0x20 || c == 0x7f)) return bad(req, 400, "bad character in header value");
    }
    if (eq_nocase(l, nlen, "content-length")) {
        uint64_t v = 0;
        if (!parse_content_length(l + vs, ve - vs, &v)) return bad(req, 400, "bad Content-Length");
        /* (two different values that both saturate count as equal: 413 either way) */
        if (st->have_cl && st->cl != v) return bad(req, 400, "conflicting Content-Length headers");
        st->have_cl = true;
        st->cl = v;
    } else if (eq_nocase(l, nlen, "transfer-encoding")) {
        return bad(req, 400, "Transfer-Encoding not supported");
    }
    return HTTP_PARSE_OK;
}

http_parse_result_t http_parse_request(const uint8_t *buf, size_t len, size_t max_head,
                                       size_t max_body, http_request_t *req)
{
    hdr_state_t st = {false, 0};
    size_t scan = len < max_head ? len : max_head;
    size_t pos = 0;

    memset(req, 0, sizeof(*req));
    req->reason = "";
    for (;;) {
        size_t n = 0, next = 0;
        const char *why = "";
        int r = next_line(buf, scan, pos, &n, &next, &why);
        if (r < 0) return bad(req, 400, why);
        if (r == 0) {
            if (len < max_head) return HTTP_PARSE_INCOMPLETE;
            return bad(req, 431, req->have_request_line ? "header section too long"
                                                         : "request line too long");
        }
        if (!req->have_request_line) {
            if (n == 0) { /* leading empty line: ignored */
                pos = next;
                continue;
            }
            http_parse_result_t pr = parse_request_line(buf, pos, n, req);
            if (pr != HTTP_PARSE_OK) return pr;
        } else if (n == 0) {
            req->head_len = next;
            req->content_length_too_large = st.cl > (uint64_t)max_body;
            /* a value above the limit is never stored: it may not fit a size_t */
            req->content_length = req->content_length_too_large ? 0 : (size_t)st.cl;
            if (req->method == HTTP_METHOD_OTHER) req->status = 405;
            else if (req->content_length_too_large) req->status = 413;
            return HTTP_PARSE_OK;
        } else {
            http_parse_result_t pr = parse_header_line(buf + pos, n, &st, req);
            if (pr != HTTP_PARSE_OK) return pr;
        }
        pos = next;
    }
}

const char *http_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

char *http_sanitize(const uint8_t *in, size_t len, size_t max_chars, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0) return out;
    for (size_t i = 0; i < len && o < max_chars && o + 1 < outlen; i++) {
        out[o++] = is_vchar(in[i]) ? (char)in[i] : '?';
    }
    out[o] = '\0';
    return out;
}
