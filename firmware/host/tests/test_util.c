/* test_util.c - CRC-32, base64, hex, number parsing, escaping. */
#include "agent_util.h"
#include "test_support.h"

static void test_crc32(void)
{
    CHECK_EQ_INT(agent_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(agent_crc32(0, (const uint8_t *)"", 0), 0);
    /* incremental == one shot */
    uint32_t c = agent_crc32(0, (const uint8_t *)"1234", 4);
    c = agent_crc32(c, (const uint8_t *)"56789", 5);
    CHECK_EQ_INT(c, 0xCBF43926u);
}

static void test_base64(void)
{
    uint8_t out[16];
    size_t n;
    CHECK(agent_base64_decode("aGVsbG8=", 8, out, sizeof(out), &n) == 0 && n == 5 &&
          memcmp(out, "hello", 5) == 0);
    CHECK(agent_base64_decode("aGk=", 4, out, sizeof(out), &n) == 0 && n == 2);
    CHECK(agent_base64_decode("aA==", 4, out, sizeof(out), &n) == 0 && n == 1 && out[0] == 'h');
    CHECK(agent_base64_decode("", 0, out, sizeof(out), &n) == 0 && n == 0);
    CHECK(agent_base64_decode("aGVsbG8", 7, out, sizeof(out), &n) != 0);  /* length */
    CHECK(agent_base64_decode("aG!sbG8=", 8, out, sizeof(out), &n) != 0); /* alphabet */
    CHECK(agent_base64_decode("a===", 4, out, sizeof(out), &n) != 0);     /* pad position */
    CHECK(agent_base64_decode("aA=a", 4, out, sizeof(out), &n) != 0);     /* data after pad */
    CHECK(agent_base64_decode("aGk=aGk=", 8, out, sizeof(out), &n) != 0); /* pad mid-stream */
    CHECK(agent_base64_decode("aB==", 4, out, sizeof(out), &n) != 0);     /* non-canonical */
    CHECK(agent_base64_decode("aGVsbG8=", 8, out, 4, &n) != 0);           /* no space */
}

static void test_hex_and_numbers(void)
{
    uint8_t out[4];
    size_t n, bad;
    uint32_t v;
    CHECK(agent_hex_decode("deadBEEF", 8, out, sizeof(out), &n, &bad) == 0 && n == 4 &&
          out[0] == 0xde && out[3] == 0xef);
    CHECK(agent_hex_decode("abc", 3, out, sizeof(out), &n, &bad) != 0 && bad == SIZE_MAX);
    CHECK(agent_hex_decode("abxd", 4, out, sizeof(out), &n, &bad) != 0 && bad == 2);
    CHECK(agent_hex_decode("0011223344", 10, out, sizeof(out), &n, &bad) != 0);
    CHECK(agent_parse_u32("65535", 5, 65535, &v) == 0 && v == 65535);
    CHECK(agent_parse_u32("65536", 5, 65535, &v) != 0);
    CHECK(agent_parse_u32("", 0, 65535, &v) != 0);
    CHECK(agent_parse_u32("-1", 2, 65535, &v) != 0);
    CHECK(agent_parse_u32("99999999999", 11, UINT32_MAX, &v) != 0);
    CHECK(agent_parse_hex32("cbf43926", 8, &v) == 0 && v == 0xcbf43926u);
    CHECK(agent_parse_hex32("cbf4392", 7, &v) != 0);
    CHECK(agent_parse_hex32("cbf4392g", 8, &v) != 0);
}

static void test_escape(void)
{
    char out[64];
    bool tr;
    const uint8_t in[] = {'a', '\\', 0x01, 0xff, 'z'};
    agent_escape(in, sizeof(in), 100, out, sizeof(out), &tr);
    CHECK_STR(out, "a\\\\\\x01\\xffz");
    CHECK(!tr);
    agent_escape((const uint8_t *)"abcdef", 6, 3, out, sizeof(out), &tr);
    CHECK_STR(out, "abc");
    CHECK(tr);
    agent_escape((const uint8_t *)"abcdef", 6, 100, out, 4, &tr);
    CHECK_STR(out, "abc");
    CHECK(tr);
    /* quotes: as they are in log text, escaped for a quoted word */
    const uint8_t q[] = {'\'', 'a', '"', '\\', 0x7f, 0x80, ' '};
    agent_escape(q, sizeof(q), 100, out, sizeof(out), &tr);
    CHECK_STR(out, "'a\"\\\\\\x7f\\x80 ");
    agent_escape_quoted(q, sizeof(q), 100, out, sizeof(out), &tr);
    CHECK_STR(out, "\\x27a\\x22\\\\\\x7f\\x80 ");
    CHECK(!tr);
    /* an escape is never cut in half */
    agent_escape_quoted(q, sizeof(q), 100, out, 6, &tr);
    CHECK_STR(out, "\\x27a");
    CHECK(tr);
}

static void test_tls_alert_names(void)
{
    CHECK_STR(agent_tls_alert_name(20), "bad_record_mac");
    CHECK_STR(agent_tls_alert_name(48), "unknown_ca");
    CHECK_STR(agent_tls_alert_name(115), "unknown_psk_identity");
    CHECK_STR(agent_tls_alert_name(-1), "unknown alert");
    CHECK_STR(agent_tls_alert_name(255), "unknown alert");
}

int main(void)
{
    test_crc32();
    test_base64();
    test_hex_and_numbers();
    test_escape();
    test_tls_alert_names();
    TEST_DONE();
}
