/* rpc_frame.c - Mongoose OS RPC-over-UART framing, one byte at a time (see
 * rpc_frame.h). A leaf: pure, no agent_t, no allocation; it uses util.c's
 * CRC-32 (IEEE, the one zlib computes). */
#include "rpc_frame.h"

#include <stdio.h>
#include <string.h>

#include "agent_mbedtls_compat.h"
#include "agent_util.h"

static const uint8_t HANDSHAKE[4] = {0x04, '"', '"', '"'};
static const uint8_t DELIM[3] = {'"', '"', '"'};

void rpc_frame_init(rpc_frame_t *f)
{
    memset(f, 0, sizeof(*f));
}

static void frame_clear(rpc_frame_t *f)
{
    mbedtls_platform_zeroize(f->buf, f->len);
    f->len = 0;
    f->seen = 0;
    f->oversize = false;
    memset(f->last, 0, sizeof(f->last));
}

void rpc_frame_reset(rpc_frame_t *f)
{
    frame_clear(f);
    f->in_frame = false;
    f->nheld = 0;
    f->json_len = 0;
    f->after_hs = false;
}

bool rpc_frame_busy(const rpc_frame_t *f)
{
    return f->in_frame;
}

const char *rpc_frame_json(const rpc_frame_t *f, size_t *len)
{
    *len = f->json_len;
    return (const char *)f->buf;
}

const char *rpc_frame_error(const rpc_frame_t *f)
{
    return f->err;
}

/* s[0..n) is the start of \x04""" or of """ */
static bool is_prefix(const uint8_t *s, size_t n)
{
    return (n <= 4 && memcmp(s, HANDSHAKE, n) == 0) || (n <= 3 && memcmp(s, DELIM, n) == 0);
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void rpc_frame_consumed(rpc_frame_t *f)
{
    frame_clear(f);
    f->json_len = 0;
}

static rpc_event_t start_frame(rpc_frame_t *f)
{
    rpc_frame_consumed(f);
    f->nheld = 0;
    f->in_frame = true;
    return RPC_EV_START;
}

/* Outside a frame: b after the held bytes. */
static rpc_event_t feed_outside(rpc_frame_t *f, uint8_t b, uint8_t pass[4], size_t *npass)
{
    uint8_t cand[5];
    size_t n = f->nheld;
    memcpy(cand, f->held, n);
    cand[n++] = b;
    size_t off = 0;
    for (;;) {
        size_t m = n - off;
        if (m == 4 && memcmp(cand + off, HANDSHAKE, 4) == 0) {
            f->nheld = 0;
            f->after_hs = true;
            return RPC_EV_HANDSHAKE;
        }
        if (m == 3 && memcmp(cand + off, DELIM, 3) == 0) return start_frame(f);
        if (m == 0 || is_prefix(cand + off, m)) break;
        /* the oldest byte cannot begin a delimiter: it is the line console's */
        pass[(*npass)++] = cand[off++];
    }
    f->nheld = n - off;
    memcpy(f->held, cand + off, f->nheld);
    return RPC_EV_NONE;
}

/* A closing """ arrived: the body is buf[0..len - 3) (or was too large). */
static rpc_event_t frame_end(rpc_frame_t *f)
{
    size_t body = f->len - 3;
    if (f->oversize) {
        snprintf(f->err, sizeof(f->err), "frame too large (%zu bytes, max %u)", f->seen - 3,
                 (unsigned)RPC_FRAME_MAX);
        frame_clear(f);
        f->in_frame = false;
        return RPC_EV_ERROR;
    }
    if (body >= 1 && f->buf[body - 1] == '}') {
        f->json_len = body;
        f->had_crc = false;
        f->in_frame = false;
        return RPC_EV_FRAME;
    }
    if (body >= 9 && f->buf[body - 9] == '}') {
        uint32_t want = 0;
        bool hex = true;
        for (size_t i = body - 8; i < body; i++) {
            int v = hexval(f->buf[i]);
            if (v < 0) {
                hex = false;
                break;
            }
            want = (want << 4) | (uint32_t)v;
        }
        if (hex) {
            uint32_t got = agent_crc32(0, f->buf, body - 8);
            f->in_frame = false;
            if (got != want) {
                snprintf(f->err, sizeof(f->err), "crc mismatch (frame says %08lx, got %08lx)",
                         (unsigned long)want, (unsigned long)got);
                frame_clear(f);
                return RPC_EV_ERROR;
            }
            f->json_len = body - 8;
            f->had_crc = true;
            return RPC_EV_FRAME;
        }
    }
    /* not the end of a frame: the rest of one that was cut, and this """
     * starts the next (the host restarted it) */
    if (body == 0) {
        frame_clear(f);
        return RPC_EV_NONE;
    }
    snprintf(f->err, sizeof(f->err), "frame cut (%zu bytes without a closing '}')", body);
    frame_clear(f);
    return RPC_EV_ERROR;
}

rpc_event_t rpc_frame_feed(rpc_frame_t *f, uint8_t b, uint8_t pass[4], size_t *npass)
{
    *npass = 0;
    if (!f->in_frame && f->after_hs) {
        f->after_hs = false;
        if (b == '{') { /* the handshake's """ opened this frame (rpc-uart reads it so) */
            rpc_event_t ev = start_frame(f);
            f->buf[f->len++] = b;
            f->seen = 1;
            f->last[3] = b;
            return ev;
        }
    }
    if (!f->in_frame) {
        if (f->nheld == 0 && b != 0x04 && b != '"') {
            pass[(*npass)++] = b;
            return RPC_EV_NONE;
        }
        return feed_outside(f, b, pass, npass);
    }
    f->seen++;
    if (f->len < sizeof(f->buf) && !f->oversize) {
        f->buf[f->len++] = b;
    } else {
        f->oversize = true;
    }
    memmove(f->last, f->last + 1, 3);
    f->last[3] = b;
    if (f->seen < 3 || memcmp(f->last + 1, DELIM, 3) != 0) return RPC_EV_NONE;
    if (f->seen >= 4 && f->last[0] == 0x04) { /* a handshake: the partial frame is dropped */
        frame_clear(f);
        f->in_frame = false;
        f->after_hs = true;
        return RPC_EV_HANDSHAKE;
    }
    return frame_end(f);
}

void rpc_frame_trailer(const char *json, size_t len, char out[RPC_TRAILER_LEN + 1])
{
    uint32_t crc = agent_crc32(0, (const uint8_t *)json, len);
    snprintf(out, RPC_TRAILER_LEN + 1, "%08lx\"\"\"\n", (unsigned long)crc);
}

unsigned rpc_json_depth(const char *json, size_t len, unsigned limit)
{
    unsigned depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
            if (max > limit) return max;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}
