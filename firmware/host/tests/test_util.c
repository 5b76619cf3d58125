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

static void test_seconds(void)
{
    uint32_t ms = 7;
    char buf[16];
    static const struct {
        const char *in;
        uint32_t ms;
    } good[] = {
        {"0", 0}, {"0.001", 1}, {"2", 2000}, {"1.5", 1500}, {"0.2", 200}, {"3600", 3600000},
        {"0.25", 250}, {"10.010", 10010}, {"007", 7000}, {"3599.999", 3599999},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_EQ_INT(agent_parse_seconds_ms(good[i].in, strlen(good[i].in), 3600000u, &ms), 0);
        CHECK_EQ_INT(ms, good[i].ms);
    }
    static const char *const bad[] = {"", "-1", "+1", "1.2345", "abc", "3601", "3600.001", ".5",
                                      "2.", "1..2", "1.5s", " 1", "1 ", "1e3", "0x10", "1,5",
                                      "99999999999", "4294967.296"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 7;
        if (agent_parse_seconds_ms(bad[i], strlen(bad[i]), 3600000u, &ms) == 0) {
            fprintf(stderr, "'%s' was accepted\n", bad[i]);
            test_failures++;
        }
        CHECK_EQ_INT(ms, 7);
    }
    /* the whole uint32_t range, no more */
    CHECK_EQ_INT(agent_parse_seconds_ms("4294967.295", 11, UINT32_MAX, &ms), 0);
    CHECK_EQ_INT(ms, UINT32_MAX);

    agent_format_seconds_ms(0, buf, sizeof(buf));
    CHECK_STR(buf, "0");
    agent_format_seconds_ms(1, buf, sizeof(buf));
    CHECK_STR(buf, "0.001");
    agent_format_seconds_ms(1500, buf, sizeof(buf));
    CHECK_STR(buf, "1.5");
    agent_format_seconds_ms(10010, buf, sizeof(buf));
    CHECK_STR(buf, "10.01");
    agent_format_seconds_ms(3600000, buf, sizeof(buf));
    CHECK_STR(buf, "3600");
    agent_format_seconds_ms(UINT32_MAX, buf, sizeof(buf));
    CHECK_STR(buf, "4294967.295");
    for (uint32_t v = 0; v < 5000; v += 7) { /* format and parse agree */
        agent_format_seconds_ms(v, buf, sizeof(buf));
        CHECK_EQ_INT(agent_parse_seconds_ms(buf, strlen(buf), 3600000u, &ms), 0);
        CHECK_EQ_INT(ms, v);
    }
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
    test_seconds();
    test_escape();
    test_tls_alert_names();
    TEST_DONE();
}
