/* util.c - pure helpers (see agent_util.h). */
#include "agent_util.h"

#include <stdio.h>

uint32_t agent_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) {
            uint32_t mask = (uint32_t)(-(int32_t)(crc & 1u));
            crc = (crc >> 1) ^ (0xEDB88320u & mask);
        }
    }
    return ~crc;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int agent_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    *outlen = 0;
    if (inlen % 4 != 0) return -1;
    for (size_t i = 0; i < inlen; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + (size_t)k];
            if (c == '=') {
                /* '=' only in the last quantum, only in positions 2..3 */
                if (i + 4 != inlen || k < 2) return -1;
                pad++;
                v[k] = 0;
            } else {
                if (pad) return -1; /* data after padding */
                v[k] = b64_value(c);
                if (v[k] < 0) return -1;
            }
        }
        uint32_t q = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) |
                     (uint32_t)v[3];
        size_t n = (size_t)(3 - pad);
        /* non-canonical encodings (unused bits set) are rejected */
        if (pad == 1 && (q & 0xFFu) != 0) return -1;
        if (pad == 2 && (q & 0xFFFFu) != 0) return -1;
        if (o + n > cap) return -1;
        out[o++] = (uint8_t)(q >> 16);
        if (n > 1) out[o++] = (uint8_t)(q >> 8);
        if (n > 2) out[o++] = (uint8_t)q;
    }
    *outlen = o;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int agent_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t cap, size_t *outlen,
                     size_t *bad_pos)
{
    *outlen = 0;
    *bad_pos = SIZE_MAX;
    for (size_t i = 0; i < inlen; i++) {
        if (hex_value(in[i]) < 0) {
            *bad_pos = i;
            return -1;
        }
    }
    if (inlen % 2 != 0 || inlen / 2 > cap) return -1;
    for (size_t i = 0; i < inlen; i += 2) {
        out[i / 2] = (uint8_t)((hex_value(in[i]) << 4) | hex_value(in[i + 1]));
    }
    *outlen = inlen / 2;
    return 0;
}

int agent_parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 10) return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10u + (uint64_t)(s[i] - '0');
    }
    if (v > max) return -1;
    *out = (uint32_t)v;
    return 0;
}

int agent_parse_seconds_ms(const char *s, size_t len, uint32_t max_ms, uint32_t *out_ms)
{
    uint64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (++digits > 10) return -1; /* more than any uint32_t of milliseconds */
        whole = whole * 10u + (uint64_t)(s[i++] - '0');
    }
    if (digits == 0) return -1;
    if (i < len) {
        size_t fd = 0;
        if (s[i++] != '.') return -1;
        while (i < len && s[i] >= '0' && s[i] <= '9' && fd < 3) {
            frac = frac * 10u + (uint64_t)(s[i++] - '0');
            fd++;
        }
        if (fd == 0 || i != len) return -1; /* "2." / a 4th decimal / anything else */
        for (; fd < 3; fd++) frac *= 10u;
    }
    uint64_t ms = whole * 1000u + frac;
    if (ms > max_ms) return -1;
    *out_ms = (uint32_t)ms;
    return 0;
}

void agent_format_seconds_ms(uint32_t ms, char *buf, size_t cap)
{
    unsigned long whole = (unsigned long)(ms / 1000u), frac = (unsigned long)(ms % 1000u);
    if (frac == 0) {
        snprintf(buf, cap, "%lu", whole);
    } else if (frac % 100u == 0) {
        snprintf(buf, cap, "%lu.%lu", whole, frac / 100u);
    } else if (frac % 10u == 0) {
        snprintf(buf, cap, "%lu.%02lu", whole, frac / 10u);
    } else {
        snprintf(buf, cap, "%lu.%03lu", whole, frac);
    }
}

int agent_parse_hex32(const char *s, size_t len, uint32_t *out)
{
    uint32_t v = 0;
    if (len != 8) return -1;
    for (size_t i = 0; i < len; i++) {
        int h = hex_value(s[i]);
        if (h < 0) return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

const char *agent_tls_alert_name(int description)
{
    switch (description) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 115: return "unknown_psk_identity";
    case 116: return "certificate_required";
    default: return "unknown alert";
    }
}

static size_t escape(const uint8_t *in, size_t inlen, size_t max_in, char *out, size_t outlen,
                     bool *truncated, bool quotes)
{
    size_t o = 0;
    size_t i = 0;
    *truncated = false;
    if (outlen == 0) return 0;
    for (; i < inlen; i++) {
        char tmp[5];
        size_t n;
        uint8_t c = in[i];
        if (i >= max_in) break;
        if (c == '\\') {
            tmp[0] = '\\';
            tmp[1] = '\\';
            n = 2;
        } else if (c >= 0x20 && c < 0x7f && !(quotes && (c == '\'' || c == '"'))) {
            tmp[0] = (char)c;
            n = 1;
        } else {
            static const char digits[] = "0123456789abcdef";
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = digits[c >> 4];
            tmp[3] = digits[c & 15u];
            n = 4;
        }
        if (o + n + 1 > outlen) break;
        for (size_t k = 0; k < n; k++) out[o++] = tmp[k];
    }
    out[o] = '\0';
    if (i < inlen) *truncated = true;
    return i;
}

size_t agent_escape(const uint8_t *in, size_t inlen, size_t max_in, char *out, size_t outlen,
                    bool *truncated)
{
    return escape(in, inlen, max_in, out, outlen, truncated, false);
}

size_t agent_escape_quoted(const uint8_t *in, size_t inlen, size_t max_in, char *out,
                           size_t outlen, bool *truncated)
{
    return escape(in, inlen, max_in, out, outlen, truncated, true);
}
