/* test_support.h - tiny assert macros and an in-memory fake port. */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include <stdbool.h>
#include <sys/types.h>
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"

/* CHECK, CHECK_EQ_INT, CHECK_STR, TEST_DONE and test_failures: shared with the
 * socket-free tests' bare-metal builds (firmware/host/rv32) */
#include "test_support_pure.h"

typedef struct {
    char out[65536];
    size_t out_len;
    unsigned wraps; /* out was full and started over */
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

/* s serialized into fp's storage, as a previous boot would have left it; s is freed.
 * false (and a test failure counted) when it does not serialize or fit. */
bool fake_store_settings(fake_port_t *fp, settings_t *s);
/* A new agent on `port`, booted (agent_init + agent_boot; calloc'd), and its end. */
agent_t *test_agent_boot(agent_port_t *port);
void test_agent_drop(agent_t *a);
/* Bytes on the agent's console, as typed (no newline added). */
void test_feed(agent_t *a, const char *s);
/* For fuzzers: the agent's settings survive their own serialization (abort() if not). */
void test_check_settings_roundtrip(agent_t *a);
/* Give the port a board clock that was set, at the host's time (clock_get).
 * fake_port_make leaves it NULL: a board nobody set, at 1970 + uptime. Where
 * mbedTLS checks certificate dates against the board's clock (the esp
 * variant: AGENT_DATES_ON_BOARD_CLOCK) a test with real certificates needs it. */
void fake_port_set_real_clock(agent_port_t *port);

/* The HTTPS server's settings on 127.0.0.1:0 with the test certificate and key
 * (test_pem.h); mutual: the test certificate is also the client CA, else none. */
void test_set_https(agent_t *a, bool mutual);
/* The http.port= value of the last `http start` in fp's output (0: none). */
uint16_t test_http_port(const fake_port_t *fp);
/* Step the agent until the forked child `pid` exits (at most 15 s: then it is
 * killed); its exit code, 99 after the timeout, 98 when it did not exit. */
int test_serve_until_exit(agent_t *a, pid_t pid);

/* port.now_ms from CLOCK_MONOTONIC, for tests with real sockets and timeouts */
uint64_t test_real_now_ms(void *ctx);
/* port.console_read of a console nobody types on: waits up to 5 ms, reads nothing */
int test_idle_console(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms);
/* Clear captured output, feed "line\n", run agent_step until no command is
 * pending or queued (fake_settle), return the captured output. Counts a test
 * failure unless the line got exactly one final line (none when blank). */
const char *fake_cmd(agent_t *a, fake_port_t *fp, const char *line);

/* One Mongoose OS RPC request frame (no CRC: optional) fed to the agent; the last response
 * frame in fp's output, parsed (NULL: none). The caller frees it (cJSON_Delete). */
struct cJSON *test_rpc_call(agent_t *a, const fake_port_t *fp, const char *json);
/* agent_step (up to 1 ms each) until no command is pending or queued; each
 * step also moves the fake clock 50 ms (ports with a real clock ignore it).
 * Returns false (and counts a failure) when that takes over 60000 steps. */
bool fake_settle(agent_t *a, fake_port_t *fp);
/* Last complete line of the captured output (static buffer). */
const char *fake_last_line(const fake_port_t *fp);
/* Does the captured output contain this exact line / this substring? */
bool fake_has_line(const fake_port_t *fp, const char *line);
bool fake_contains(const fake_port_t *fp, const char *sub);
/* Is this line (without its newline) a final line: "OK", "OK <note>", "ERR <reason>",
 * or one of them after "@<tag> "? */
bool fake_is_final(const char *line, size_t len);
/* Number of final lines in the captured output (must be 1 per command). */
int fake_final_lines(const fake_port_t *fp);

/* A fake broker's side of a socket (in a forked child): exactly n bytes (0, or -1 when the
 * peer closed); one MQTT packet into buf (its length, or -1: closed or too long); all n
 * bytes sent, else the child exits with code 11. */
int test_recv_all(int fd, uint8_t *buf, size_t n);
int test_read_mqtt_packet(int fd, uint8_t *buf, size_t cap);
void test_send_all(int fd, const uint8_t *p, size_t n);

/* Blocking use of the non-blocking connection (agent_conn.h), for test
 * clients: open (0 / -1), write all (0 / -1) within timeout_ms, wait until
 * readable (1 readable, 0 timeout, -1 error). */
int test_conn_open(agent_conn_t *c, const conn_params_t *p, conn_err_t *err);
int test_conn_write(agent_conn_t *c, const uint8_t *buf, size_t len, uint32_t timeout_ms,
                    conn_err_t *err);
int test_conn_wait_readable(agent_conn_t *c, uint32_t timeout_ms);

/* A TCP listener on 127.0.0.1, any free port (written to *port), with this
 * backlog; -1 on failure. For the tests' fake brokers. */
int test_listen_loopback(uint16_t *port, int backlog);

/* One read of a non-blocking fd standing for a console: bytes read, 0 when
 * nothing is there (EAGAIN, EINTR), -1 at EOF or on an error. */
int test_read_console_fd(int fd, uint8_t *buf, size_t cap);

#endif
