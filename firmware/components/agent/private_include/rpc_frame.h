/* rpc_frame.h - Mongoose OS RPC-over-UART framing (the `mos` tool's serial
 * channel), byte by byte, with no agent_t and no allocation: a leaf.
 *
 * On the wire (mongoose-os-libs/rpc-uart, as measured):
 *   handshake  host -> device  \x04"""        device answers """\x04"""
 *   frame      both ways       """<JSON object>[<crc32 as 8 hex digits>]"""
 * The optional metadata after the closing '}' is the CRC-32 (IEEE, zlib's;
 * agent_crc32 in util.c) of the JSON text; it is checked when present and
 * always written (lower-case %08x) on frames the device sends.
 *
 * The console carries both: outside a frame, bytes are the line console's.
 * rpc_frame_feed() classifies each byte: passed through (to the line
 * assembler), held (a possible delimiter: \x04 or '"'; released to the line
 * console when the sequence turns out not to be one), or part of a frame.
 * Valid JSON never holds three quotes in a row, so the first """ after a
 * frame's start ends it. Defensive rules:
 *  - a frame body is at most RPC_FRAME_MAX bytes; a longer one is dropped
 *    (RPC_EV_ERROR "frame too large") when its closing """ arrives;
 *  - \x04""" inside a frame is a handshake: the partial frame is dropped;
 *  - a """ whose body does not end in '}' or '}' + 8 hex digits cannot be a
 *    frame's end: the partial frame is dropped (RPC_EV_ERROR "frame cut")
 *    and the """ starts a new frame (a host that restarted mid-frame);
 *  - bytes between frames that are not delimiters go to the line console;
 *  - right after a handshake a '{' starts a frame too (rpc-uart takes the
 *    text between two """ for a frame, so a host may omit the opening one).
 * A frame never ends by itself: a """ or a handshake ends it. */
#ifndef RPC_FRAME_H
#define RPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_limits.h"

#define RPC_FRAME_MAX AGENT_RPC_FRAME_MAX
/* what the device answers a handshake with (the newline is for line readers:
 * rpc-uart hosts skip what comes between frames) */
#define RPC_HANDSHAKE_REPLY "\"\"\"\x04\"\"\"\n"
/* a frame's wrapping: """ + JSON + 8 hex digits + """ + newline */
#define RPC_FRAME_OVERHEAD 15u

typedef enum {
    RPC_EV_NONE,      /* nothing to do (pass[0..npass) may hold bytes for the line console) */
    RPC_EV_START,     /* a frame starts: a partial console line before it is garbage */
    RPC_EV_HANDSHAKE, /* \x04""" seen: answer RPC_HANDSHAKE_REPLY */
    RPC_EV_FRAME,     /* a frame: its JSON in rpc_frame_json() (CRC checked when given) */
    RPC_EV_ERROR,     /* a frame was dropped: why in rpc_frame_error() */
} rpc_event_t;

typedef struct {
    bool in_frame;
    bool oversize;     /* the body outgrew buf: dropped at its end */
    bool after_hs;     /* the last thing seen was a handshake */
    uint8_t held[4];   /* outside a frame: a possible \x04""" or """ so far */
    size_t nheld;
    uint8_t last[4];   /* inside a frame: the last 4 bytes, newest last */
    size_t seen;       /* bytes of the body seen (may exceed RPC_FRAME_MAX) */
    size_t len;        /* bytes in buf */
    size_t json_len;   /* RPC_EV_FRAME: the JSON text is buf[0..json_len) */
    bool had_crc;      /* RPC_EV_FRAME: the frame carried a CRC (it matched) */
    char err[96];      /* RPC_EV_ERROR: the reason */
    uint8_t buf[RPC_FRAME_MAX + 3]; /* body + its closing """ */
} rpc_frame_t;

void rpc_frame_init(rpc_frame_t *f);
/* Feed one byte. pass (4 bytes) gets *npass bytes for the line console, in
 * order, before whatever the event means. */
rpc_event_t rpc_frame_feed(rpc_frame_t *f, uint8_t b, uint8_t pass[4], size_t *npass);
/* The last RPC_EV_FRAME's JSON text (not NUL-terminated) and its length. */
const char *rpc_frame_json(const rpc_frame_t *f, size_t *len);
const char *rpc_frame_error(const rpc_frame_t *f);
/* Inside a frame (bytes of the console are the RPC channel's now). */
bool rpc_frame_busy(const rpc_frame_t *f);
/* After an RPC_EV_FRAME was handled: wipe its bytes. */
void rpc_frame_consumed(rpc_frame_t *f);
/* Forget a frame in progress and held bytes (wipes the buffer: frames may carry secrets). */
void rpc_frame_reset(rpc_frame_t *f);

/* The trailer of an outgoing frame: 8 lower-case hex digits (CRC-32 of
 * json[0..len)) + """ + newline, into out (NUL-terminated). */
#define RPC_TRAILER_LEN 12u
void rpc_frame_trailer(const char *json, size_t len, char out[RPC_TRAILER_LEN + 1]);
/* The deepest nesting of objects/arrays in a JSON text (strings skipped),
 * stopping early once it passes limit: callers refuse deep input before a
 * recursive parser sees it. */
unsigned rpc_json_depth(const char *json, size_t len, unsigned limit);

#endif
