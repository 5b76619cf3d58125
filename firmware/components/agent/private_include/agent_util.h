/* agent_util.h - small pure helpers: CRC-32, base64, hex, number parsing,
 * safe printing of untrusted bytes. No I/O, no allocation. */
#ifndef AGENT_UTIL_H
#define AGENT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, same as zlib.crc32). Pass 0 as crc to start. */
uint32_t agent_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* Strict base64 decode (RFC 4648 alphabet, '=' padding required for
 * partial quanta, no whitespace). Returns 0 and the decoded length in
 * *outlen, or -1 when the input is malformed or does not fit in cap. */
int agent_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap, size_t *outlen);

/* Hex string to bytes. Returns 0, or -1 (odd length, bad digit, too long).
 * *bad_pos gets the index of the first non-hex character (or SIZE_MAX). */
int agent_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t cap, size_t *outlen,
                     size_t *bad_pos);

/* Parse a decimal unsigned integer (digits only, no sign, no spaces) that
 * must be <= max. Returns 0 on success, -1 otherwise. */
int agent_parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out);

/* Parse decimal seconds with at most 3 decimals ("2", "0.2", "1.5", "0.001":
 * digits, optionally '.' and 1..3 digits; no sign, exponent or spaces) into
 * milliseconds, which must be <= max_ms. Returns 0, or -1. */
int agent_parse_seconds_ms(const char *s, size_t len, uint32_t max_ms, uint32_t *out_ms);
/* Milliseconds as the shortest such text ("2", "1.5", "0.001"); always NUL-terminated. */
void agent_format_seconds_ms(uint32_t ms, char *buf, size_t cap);

/* Parse exactly 8 hex digits. */
int agent_parse_hex32(const char *s, size_t len, uint32_t *out);

/* Name of a TLS alert description (RFC 5246 7.2), e.g. 48 -> "unknown_ca";
 * "unknown alert" for numbers it does not know. */
const char *agent_tls_alert_name(int description);

/* Copy bytes into out as printable text: printable ASCII as is, backslash
 * as "\\", anything else as "\xHH" (lower-case hex). Stops (and sets
 * *truncated) when more than max_in input bytes or when out (size outlen,
 * always NUL-terminated) is full. Returns the number of input bytes
 * represented. out needs 4 * max_in + 1 bytes to never cut. */
size_t agent_escape(const uint8_t *in, size_t inlen, size_t max_in, char *out, size_t outlen,
                    bool *truncated);
/* The same, and quotes (' and ") as \x27 / \x22 too: for a word from the
 * input shown between quotes in an ERR line ("unknown command '<word>'"). */
size_t agent_escape_quoted(const uint8_t *in, size_t inlen, size_t max_in, char *out,
                           size_t outlen, bool *truncated);

#endif
