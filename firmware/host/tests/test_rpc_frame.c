/* test_rpc_frame.c - the Mongoose OS RPC-over-UART framing (rpc_frame.c):
 * handshake, frames with and without CRC, bad CRC, oversize, garbage between
 * frames, frames cut by a handshake or a new delimiter, split feeding, the
 * outgoing trailer and the JSON depth guard. Socket-free (also on rv32). */
#include <stdlib.h>

#include "agent_util.h"
#include "rpc_frame.h"
#include "test_support.h"

#define MAX_EVENTS 16

typedef struct {
    rpc_event_t ev[MAX_EVENTS];
    size_t nev;
    char json[MAX_EVENTS][256];
    char err[MAX_EVENTS][96];
    char line[1024]; /* bytes passed to the line console */
    size_t line_len;
} run_t;

static rpc_frame_t fr; /* big: static */

static void feed(run_t *r, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t pass[4];
        size_t np;
        rpc_event_t ev = rpc_frame_feed(&fr, (uint8_t)data[i], pass, &np);
        CHECK(np <= 4);
        for (size_t k = 0; k < np && r->line_len < sizeof(r->line) - 1; k++) {
            r->line[r->line_len++] = (char)pass[k];
        }
        r->line[r->line_len] = '\0';
        if (ev == RPC_EV_NONE) continue;
        CHECK(np == 0); /* bytes for the line console never come with an event */
        if (r->nev >= MAX_EVENTS) continue;
        r->ev[r->nev] = ev;
        r->json[r->nev][0] = r->err[r->nev][0] = '\0';
        if (ev == RPC_EV_FRAME) {
            size_t n;
            const char *j = rpc_frame_json(&fr, &n);
            if (n < sizeof(r->json[0])) {
                memcpy(r->json[r->nev], j, n);
                r->json[r->nev][n] = '\0';
            }
            rpc_frame_consumed(&fr);
        } else if (ev == RPC_EV_ERROR) {
            snprintf(r->err[r->nev], sizeof(r->err[0]), "%s", rpc_frame_error(&fr));
        }
        r->nev++;
    }
}

static void run(run_t *r, const char *s)
{
    memset(r, 0, sizeof(*r));
    rpc_frame_init(&fr);
    feed(r, s, strlen(s));
}

static void test_handshake(void)
{
    run_t r;
    run(&r, "\x04\"\"\"");
    CHECK_EQ_INT(r.nev, 1);
    CHECK_EQ_INT(r.ev[0], RPC_EV_HANDSHAKE);
    CHECK_EQ_INT(r.line_len, 0);
    /* repeated, as the host sends it until answered */
    run(&r, "\x04\"\"\"\x04\"\"\"\x04\"\"\"");
    CHECK_EQ_INT(r.nev, 3);
    CHECK(r.ev[0] == RPC_EV_HANDSHAKE && r.ev[1] == RPC_EV_HANDSHAKE && r.ev[2] == RPC_EV_HANDSHAKE);
    /* a lone \x04 and quotes that are no delimiter belong to the line console */
    run(&r, "a\x04" "b\"\"c\n");
    CHECK_EQ_INT(r.nev, 0);
    CHECK_STR(r.line, "a\x04" "b\"\"c\n");
    run(&r, "\x04\x04\"\"x");
    CHECK_EQ_INT(r.nev, 0);
    CHECK_STR(r.line, "\x04\x04\"\"x");
    CHECK(strcmp(RPC_HANDSHAKE_REPLY, "\"\"\"\x04\"\"\"\n") == 0);
}

static void test_frames(void)
{
    run_t r;
    const char *j = "{\"id\":1,\"method\":\"Sys.GetInfo\"}";
    char buf[256];
    /* no CRC */
    run(&r, "\"\"\"{\"id\":1,\"method\":\"Sys.GetInfo\"}\"\"\"");
    CHECK_EQ_INT(r.nev, 2);
    CHECK_EQ_INT(r.ev[0], RPC_EV_START);
    CHECK_EQ_INT(r.ev[1], RPC_EV_FRAME);
    CHECK_STR(r.json[1], j);
    CHECK(!fr.had_crc);
    /* good CRC, lower and upper case */
    snprintf(buf, sizeof(buf), "\"\"\"%s%08lx\"\"\"", j, (unsigned long)agent_crc32(0, (const uint8_t *)j, strlen(j)));
    run(&r, buf);
    CHECK_EQ_INT(r.nev, 2);
    CHECK_EQ_INT(r.ev[1], RPC_EV_FRAME);
    CHECK_STR(r.json[1], j);
    CHECK(fr.had_crc);
    snprintf(buf, sizeof(buf), "\"\"\"%s%08lX\"\"\"", j, (unsigned long)agent_crc32(0, (const uint8_t *)j, strlen(j)));
    run(&r, buf);
    CHECK_EQ_INT(r.ev[1], RPC_EV_FRAME);
    /* bad CRC: dropped with the reason */
    snprintf(buf, sizeof(buf), "\"\"\"%s%08lx\"\"\"", j, (unsigned long)(agent_crc32(0, (const uint8_t *)j, strlen(j)) ^ 1u));
    run(&r, buf);
    CHECK_EQ_INT(r.nev, 2);
    CHECK_EQ_INT(r.ev[1], RPC_EV_ERROR);
    CHECK(strstr(r.err[1], "crc mismatch") != NULL);
    /* the handshake's """ opens a frame too (rpc-uart's reading) */
    run(&r, "\x04\"\"\"{\"id\":2}\"\"\"");
    CHECK_EQ_INT(r.nev, 3);
    CHECK(r.ev[0] == RPC_EV_HANDSHAKE && r.ev[1] == RPC_EV_START && r.ev[2] == RPC_EV_FRAME);
    CHECK_STR(r.json[2], "{\"id\":2}");
    /* ... and an explicit one after it (mos) */
    run(&r, "\x04\"\"\"\"\"\"{\"id\":3}\"\"\"");
    CHECK_EQ_INT(r.ev[r.nev - 1], RPC_EV_FRAME);
    CHECK_STR(r.json[r.nev - 1], "{\"id\":3}");
    /* after the handshake, a console line is still a line */
    run(&r, "\x04\"\"\"version\n");
    CHECK_EQ_INT(r.nev, 1);
    CHECK_STR(r.line, "version\n");
}

static void test_garbage_and_lines(void)
{
    run_t r;
    /* lines and frames alternate; garbage between frames goes to the line console */
    run(&r, "status\n\"\"\"{\"id\":1}\"\"\"junk\"\"\"{\"id\":2}\"\"\"\nversion\n");
    CHECK_STR(r.line, "status\njunk\nversion\n");
    CHECK_EQ_INT(r.nev, 4);
    CHECK_STR(r.json[1], "{\"id\":1}");
    CHECK_STR(r.json[3], "{\"id\":2}");
    /* a frame cut by a new delimiter: dropped, the delimiter opens the next one */
    run(&r, "\"\"\"{\"id\":1,\"meth\"\"\"{\"id\":2}\"\"\"");
    CHECK_EQ_INT(r.nev, 3);
    CHECK_EQ_INT(r.ev[1], RPC_EV_ERROR);
    CHECK(strstr(r.err[1], "frame cut") != NULL);
    CHECK_EQ_INT(r.ev[2], RPC_EV_FRAME);
    CHECK_STR(r.json[2], "{\"id\":2}");
    /* a frame cut by a handshake: dropped, the handshake is answered */
    run(&r, "\"\"\"{\"id\":1,\"me\x04\"\"\"\"\"\"{\"id\":5}\"\"\"");
    CHECK_EQ_INT(r.ev[1], RPC_EV_HANDSHAKE);
    CHECK_EQ_INT(r.ev[r.nev - 1], RPC_EV_FRAME);
    CHECK_STR(r.json[r.nev - 1], "{\"id\":5}");
    /* empty frames are nothing */
    run(&r, "\"\"\"\"\"\"\"\"\"{}\"\"\"");
    CHECK_EQ_INT(r.ev[r.nev - 1], RPC_EV_FRAME);
    CHECK_STR(r.json[r.nev - 1], "{}");
    /* metadata that is not 8 hex digits: not a frame's end */
    run(&r, "\"\"\"{}xyz\"\"\"");
    CHECK_EQ_INT(r.ev[1], RPC_EV_ERROR);
    CHECK(rpc_frame_busy(&fr));
    rpc_frame_reset(&fr);
    CHECK(!rpc_frame_busy(&fr));
}

static void test_split_and_oversize(void)
{
    run_t r;
    const char *s = "ab\"\"\"{\"id\":7,\"method\":\"Config.Get\"}\"\"\"cd\n";
    /* one byte at a time, and in every split of two reads: the same result */
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        memset(&r, 0, sizeof(r));
        rpc_frame_init(&fr);
        feed(&r, s, cut);
        feed(&r, s + cut, strlen(s) - cut);
        CHECK_EQ_INT(r.nev, 2);
        CHECK_STR(r.json[1], "{\"id\":7,\"method\":\"Config.Get\"}");
        CHECK_STR(r.line, "abcd\n");
    }
    /* a frame of exactly the maximum is taken; one byte more is dropped */
    char *big = malloc(RPC_FRAME_MAX + 16);
    CHECK(big != NULL);
    if (!big) return;
    for (size_t extra = 0; extra < 2; extra++) {
        size_t body = RPC_FRAME_MAX + extra;
        memcpy(big, "\"\"\"{\"x\":\"", 9);
        memset(big + 9, 'a', body - 8);
        memcpy(big + 3 + body - 2, "\"}\"\"\"", 5);
        memset(&r, 0, sizeof(r));
        rpc_frame_init(&fr);
        feed(&r, big, body + 6);
        CHECK_EQ_INT(r.nev, 2);
        if (extra == 0) {
            CHECK_EQ_INT(r.ev[1], RPC_EV_FRAME);
            size_t n;
            (void)rpc_frame_json(&fr, &n);
        } else {
            CHECK_EQ_INT(r.ev[1], RPC_EV_ERROR);
            CHECK(strstr(r.err[1], "frame too large") != NULL);
            CHECK(!rpc_frame_busy(&fr));
        }
        /* the line console works again after it */
        feed(&r, "ok\n", 3);
        CHECK_STR(r.line, "ok\n");
    }
    free(big);
}

static void test_trailer_depth(void)
{
    char t[RPC_TRAILER_LEN + 1];
    rpc_frame_trailer("{}", 2, t);
    char want[32];
    snprintf(want, sizeof(want), "%08lx\"\"\"\n", (unsigned long)agent_crc32(0, (const uint8_t *)"{}", 2));
    CHECK_STR(t, want);
    CHECK_EQ_INT(strlen(t), RPC_TRAILER_LEN);
    /* zlib's crc32 of "123456789" */
    CHECK_EQ_INT(agent_crc32(0, (const uint8_t *)"123456789", 9), 0xcbf43926u);
    CHECK_EQ_INT(rpc_json_depth("{}", 2, 8), 1);
    CHECK_EQ_INT(rpc_json_depth("{\"a\":[{\"b\":\"[[[{{\"}]}", 20, 8), 3);
    CHECK_EQ_INT(rpc_json_depth("{\"a\\\"[[\":1}", 11, 8), 1);
    CHECK(rpc_json_depth("[[[[[[[[[[[[[[[[[[", 18, 8) > 8);
}

int main(void)
{
    test_handshake();
    test_frames();
    test_garbage_and_lines();
    test_split_and_oversize();
    test_trailer_depth();
    TEST_DONE();
}
