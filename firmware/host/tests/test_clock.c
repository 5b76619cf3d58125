/* test_clock.c - the board's clock: `clock` / `clock set` (parsing, ranges,
 * the port's clock_get / clock_set), the "clock not set" warning before a
 * connection that verifies certificate dates and the note on a refused date,
 * UTC formatting, and the version lines (bits=, variant=). Uses the in-memory
 * fake port with a fake clock of its own. */
#include <inttypes.h>
#include <stdlib.h>

#include "test_pem.h"
#include "test_support.h"

static fake_port_t fp;
static agent_port_t port;

/* the fake board clock: starts unset at 1970-01-01 + 12 s, like a chip */
static struct {
    int64_t now;
    bool set;
    bool refuse; /* clock_set fails */
    int sets;
} fclock;

static int64_t fc_get(void *ctx, bool *is_set)
{
    (void)ctx;
    *is_set = fclock.set;
    return fclock.now;
}

static int fc_set(void *ctx, int64_t unix_s, char *err, size_t errlen)
{
    (void)ctx;
    if (fclock.refuse) {
        snprintf(err, errlen, "fake clock is read-only");
        return -1;
    }
    fclock.now = unix_s;
    fclock.set = true;
    fclock.sets++;
    return 0;
}

static agent_t *boot(bool with_clock)
{
    fake_port_make(&fp, &port);
    fp.net_up = true;
    memset(&fclock, 0, sizeof(fclock));
    fclock.now = 12;
    /* (fake_port_make may give the port a clock of its own: replaced or removed here) */
    port.clock_get = with_clock ? fc_get : NULL;
    port.clock_set = with_clock ? fc_set : NULL;
    agent_t *a = calloc(1, sizeof(*a));
    agent_init(a, &port);
    agent_boot(a);
    return a;
}

static void done(agent_t *a)
{
    agent_free(a);
    free(a);
}

static const char *utc(int64_t t)
{
    static char buf[40];
    agent_format_utc(t, buf, sizeof(buf));
    return buf;
}

static void test_format_utc(void)
{
    CHECK_STR(utc(0), "1970-01-01T00:00:00Z");
    CHECK_STR(utc(12), "1970-01-01T00:00:12Z");
    CHECK_STR(utc(-1), "1969-12-31T23:59:59Z");
    CHECK_STR(utc(946684800), "2000-01-01T00:00:00Z");
    CHECK_STR(utc(951782400), "2000-02-29T00:00:00Z"); /* leap day of a century leap year */
    CHECK_STR(utc(1709164800), "2024-02-29T00:00:00Z");
    CHECK_STR(utc(1700000000), "2023-11-14T22:13:20Z");
    CHECK_STR(utc(INT64_C(2147483648)), "2038-01-19T03:14:08Z"); /* past 32-bit time_t */
    CHECK_STR(utc(INT64_C(4102444799)), "2099-12-31T23:59:59Z");
    CHECK_STR(utc(INT64_C(4107542400)), "2100-03-01T00:00:00Z"); /* 2100 is no leap year */
    char small[8];
    agent_format_utc(0, small, sizeof(small)); /* truncated, terminated */
    CHECK_STR(small, "1970-01");
}

static void test_clock_command(void)
{
    agent_t *a = boot(true);
    fake_cmd(a, &fp, "clock");
    CHECK_STR(fp.out, "clock=12\nclock_utc=1970-01-01T00:00:12Z\nclock_set=no\nOK\n");

    fake_cmd(a, &fp, "clock set 1700000000");
    CHECK(fake_has_line(&fp, "OK"));
    CHECK(fake_contains(&fp, "hil: clock set to 2023-11-14T22:13:20Z (1700000000)\n"));
    CHECK_EQ_INT(fclock.now, 1700000000);
    CHECK_EQ_INT(fclock.sets, 1);
    fake_cmd(a, &fp, "@c1 clock");
    CHECK_STR(fp.out, "clock=1700000000\nclock_utc=2023-11-14T22:13:20Z\nclock_set=yes\n@c1 OK\n");

    /* the boundaries */
    fake_cmd(a, &fp, "clock set 946684800");
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK_EQ_INT(fclock.now, 946684800);
    fake_cmd(a, &fp, "clock\tset   4102444799");
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK_EQ_INT(fclock.now, INT64_C(4102444799));
    fake_cmd(a, &fp, "clock set 0001700000000"); /* leading zeros are still decimal */
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK_EQ_INT(fclock.now, 1700000000);

    /* refused: the clock does not move */
    int sets = fclock.sets;
    static const struct {
        const char *line, *err;
    } bad[] = {
        {"clock set", "ERR clock set: usage: clock set <unix seconds>"},
        {"clock set 1700000000 1", "ERR clock set: usage: clock set <unix seconds>"},
        {"clock set -1700000000",
         "ERR clock set: '-1700000000' is not a number of seconds (decimal digits only, no sign)"},
        {"clock set +1700000000",
         "ERR clock set: '+1700000000' is not a number of seconds (decimal digits only, no sign)"},
        {"clock set 17000000x0",
         "ERR clock set: '17000000x0' is not a number of seconds (decimal digits only, no sign)"},
        {"clock set 0x65000000",
         "ERR clock set: '0x65000000' is not a number of seconds (decimal digits only, no sign)"},
        {"clock set 1.7e9",
         "ERR clock set: '1.7e9' is not a number of seconds (decimal digits only, no sign)"},
        {"clock set 1700000000\x01",
         "ERR clock set: '1700000000\\x01' is not a number of seconds (decimal digits only, no sign)"},
        {"clock set 946684799", "ERR clock set: 946684799 is before 2000-01-01T00:00:00Z (946684800)"},
        {"clock set 0", "ERR clock set: 0 is before 2000-01-01T00:00:00Z (946684800)"},
        {"clock set 4102444800", "ERR clock set: 4102444800 is after 2099-12-31T23:59:59Z (4102444799)"},
        {"clock set 9223372036854775807",
         "ERR clock set: 9223372036854775807 is after 2099-12-31T23:59:59Z (4102444799)"},
        {"clock set 9223372036854775808",
         "ERR clock set: '9223372036854775808' is out of range (946684800..4102444799)"},
        {"clock set 18446744073709551616",
         "ERR clock set: '18446744073709551616' is out of range (946684800..4102444799)"},
        {"clock set 99999999999999999999999999999999999999999999999999",
         "ERR clock set: '9999999999999999999999999999999999999999' is out of range "
         "(946684800..4102444799)"},
        {"clock get", "ERR clock: unknown subcommand 'get' (clock, or clock set <unix seconds>)"},
        {"clock sett 1700000000",
         "ERR clock: unknown subcommand 'sett' (clock, or clock set <unix seconds>)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fake_cmd(a, &fp, bad[i].line);
        CHECK_STR(fake_last_line(&fp), bad[i].err);
        CHECK(!fake_contains(&fp, "clock set to"));
    }
    CHECK_EQ_INT(fclock.sets, sets);
    CHECK_EQ_INT(fclock.now, 1700000000);

    /* the port refuses */
    fclock.refuse = true;
    fake_cmd(a, &fp, "clock set 1800000000");
    CHECK_STR(fake_last_line(&fp), "ERR clock set: fake clock is read-only");
    CHECK_EQ_INT(fclock.now, 1700000000);
    /* a port that can only read its clock */
    a->port.clock_set = NULL;
    fake_cmd(a, &fp, "clock");
    CHECK_STR(fake_last_line(&fp), "OK");
    fake_cmd(a, &fp, "clock set 1800000000");
    CHECK_STR(fp.out, "ERR clock set: this port cannot set its clock\n");
    done(a);

    /* a port without a clock */
    a = boot(false);
    fake_cmd(a, &fp, "clock");
    CHECK_STR(fp.out, "ERR clock: this port has no clock\n");
    fake_cmd(a, &fp, "clock set 1700000000");
    CHECK_STR(fp.out, "ERR clock: this port has no clock\n");
    bool set = true;
    fp.now = 5000;
    CHECK_EQ_INT(agent_clock(a, &set), 5); /* 1970-01-01 + uptime */
    CHECK(!set);
    done(a);
}

static void set_setting(agent_t *a, setting_key_t key, const char *value)
{
    char err[300];
    CHECK_EQ_INT(settings_set(&a->settings, key, value, strlen(value), agent_rng, a, err, sizeof(err)), 0);
}

static bool has_warning(void)
{
    return fake_contains(&fp, "hil: clock not set (board time 1970-01-01T00:00:12Z): certificate "
                              "dates are checked against it\n");
}

static void test_warning(void)
{
    agent_t *a = boot(true);
    a->dates_on_board_clock = true; /* as with mbedTLS on ESP-IDF / the esp variant */
    set_setting(a, SK_MQTT_SERVER, "127.0.0.1:1"); /* refused: no handshake follows */
    set_setting(a, SK_MQTT_SSL_CA_CERT, test_cert_pem);

    /* clock unset, a certificate to verify: one warning, before the connection */
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(has_warning());
    const char *w = strstr(fp.out, "hil: clock not set");
    const char *c = strstr(fp.out, "hil: MQTT0 connecting to 127.0.0.1:1");
    const char *e = strstr(fp.out, "hil: MQTT0 TCP connect failed");
    CHECK(w && c && e && c < w && w < e);
    CHECK(w && w[-1] == ' ' && strstr(fp.out, "\nW (") != NULL);
    CHECK_STR(fake_last_line(&fp), "ERR mqtt connect: TCP connect failed (Connection refused)");
    CHECK(w && strstr(w + strlen("hil: clock not set"), "clock not set") == NULL); /* once */

    /* dates not checked against the board clock (native: mbedTLS 2.28 uses the host's) */
    a->dates_on_board_clock = false;
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(!fake_contains(&fp, "clock not set"));
    a->dates_on_board_clock = true;

    /* PSK without a CA: no certificate, no dates */
    settings_clear(&a->settings, SK_MQTT_SSL_CA_CERT);
    set_setting(a, SK_MQTT_SSL_PSK_IDENTITY, "bob");
    set_setting(a, SK_MQTT_SSL_PSK_KEY, "000000000000000000000000deadbeef");
    set_setting(a, SK_MQTT_SSL_CIPHER_SUITES, "TLS-PSK-WITH-AES-128-GCM-SHA256");
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(!fake_contains(&fp, "clock not set"));
    CHECK(fake_contains(&fp, "ERR mqtt connect: TCP connect failed"));
    /* plain TCP: neither */
    settings_clear(&a->settings, SK_MQTT_SSL_PSK_IDENTITY);
    settings_clear(&a->settings, SK_MQTT_SSL_PSK_KEY);
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(!fake_contains(&fp, "clock not set"));

    /* HTTPS server verifying client certificates: warned at start; without a CA not */
    set_setting(a, SK_HTTP_LISTEN_ADDR, "127.0.0.1:0");
    set_setting(a, SK_HTTP_SSL_CERT, test_cert_pem);
    set_setting(a, SK_HTTP_SSL_KEY, test_key_pem);
    fake_cmd(a, &fp, "http start");
    CHECK(fake_contains(&fp, "(SSL)\n"));
    CHECK(!fake_contains(&fp, "clock not set"));
    set_setting(a, SK_HTTP_SSL_CA_CERT, test_cert_pem);
    fake_cmd(a, &fp, "http start");
    CHECK(fake_contains(&fp, "(SSL, client certificate required)\n"));
    CHECK(has_warning());
    fake_cmd(a, &fp, "http stop");

    /* the note for a refused date: only on the date's own reason line, never on
     * another reason of the same verification (a wrong CA is not the clock's) */
    char note[80];
    const char *future = "The certificate validity starts in the future";
    const char *expired = "The certificate validity has expired";
    const char *untrusted = "The certificate is not correctly signed by the trusted CA";
    CHECK_STR(agent_clock_note(a, MBEDTLS_X509_BADCERT_FUTURE, future, note, sizeof(note)),
              " (clock not set: board time 1970-01-01T00:00:12Z)");
    CHECK_STR(agent_clock_note(a, MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_NOT_TRUSTED,
                               expired, note, sizeof(note)),
              " (clock not set: board time 1970-01-01T00:00:12Z)");
    CHECK_STR(agent_clock_note(a, MBEDTLS_X509_BADCERT_FUTURE | MBEDTLS_X509_BADCERT_NOT_TRUSTED,
                               untrusted, note, sizeof(note)), "");
    CHECK_STR(agent_clock_note(a, MBEDTLS_X509_BADCERT_NOT_TRUSTED, future, note, sizeof(note)), "");
    CHECK_STR(agent_clock_note(a, MBEDTLS_X509_BADCERT_NOT_TRUSTED, untrusted, note, sizeof(note)),
              "");
    CHECK_STR(agent_clock_note(a, 0, future, note, sizeof(note)), "");
    CHECK_STR(agent_clock_note(a, (uint32_t)-1, future, note, sizeof(note)), "");
    CHECK(agent_clock_unset_for_tls(a));

    /* once set: no warning, no note */
    fake_cmd(a, &fp, "clock set 1700000000");
    CHECK(!agent_clock_unset_for_tls(a));
    set_setting(a, SK_MQTT_SSL_CA_CERT, test_cert_pem);
    fake_cmd(a, &fp, "mqtt connect");
    CHECK(fake_contains(&fp, "hil: MQTT0 connecting to 127.0.0.1:1"));
    CHECK(!fake_contains(&fp, "clock not set"));
    fake_cmd(a, &fp, "http start");
    CHECK(fake_contains(&fp, "(SSL, client certificate required)\n"));
    CHECK(!fake_contains(&fp, "clock not set"));
    fake_cmd(a, &fp, "http stop");
    CHECK_STR(agent_clock_note(a, MBEDTLS_X509_BADCERT_FUTURE, future, note, sizeof(note)), "");
    done(a);

    /* a port without a clock counts as one nobody set */
    a = boot(false);
    a->dates_on_board_clock = true;
    CHECK(agent_clock_unset_for_tls(a));
    fp.now = 12000;
    CHECK(agent_clock_warn(a));
    CHECK(has_warning());
    done(a);
}

static void test_version(void)
{
    agent_t *a = boot(true);
    char line[64];
    fake_cmd(a, &fp, "version");
    CHECK(strncmp(fp.out, "version=1.0.0\nmbedtls=", 22) == 0);
    CHECK(fake_contains(&fp, "\nbuild="));
    snprintf(line, sizeof(line), "bits=%u", (unsigned)(sizeof(void *) * 8u));
    CHECK(fake_has_line(&fp, line));
    snprintf(line, sizeof(line), "variant=%s", agent_variant());
    CHECK(fake_has_line(&fp, line));
    CHECK_STR(fake_last_line(&fp), "OK");
    CHECK_EQ_INT(agent_bits(), sizeof(void *) * 8u);
    CHECK(strcmp(agent_variant(), "native") == 0 || strcmp(agent_variant(), "esp") == 0);
    /* the order the rig reads them in: version=, mbedtls=, build=, bits=, variant= */
    const char *v = strstr(fp.out, "version="), *m = strstr(fp.out, "\nmbedtls="),
               *b = strstr(fp.out, "\nbuild="), *bi = strstr(fp.out, "\nbits="),
               *va = strstr(fp.out, "\nvariant=");
    CHECK(v && m && b && bi && va && v < m && m < b && b < bi && bi < va);
    fake_cmd(a, &fp, "help");
    CHECK(fake_contains(&fp, "clock set <unix seconds>"));
    done(a);
}

#if defined(MBEDTLS_PLATFORM_TIME_ALT)
#include "mbedtls/platform_time.h"

static int64_t fixed_clock(void *ctx, bool *is_set)
{
    (void)ctx;
    *is_set = true;
    return 1700000000;
}

/* mbedTLS's time (what certificate dates are checked against) is the board's
 * clock: the newest live agent's port clock_get, the one before it once that
 * agent is freed, 1970-01-01 with none (the esp variant and rv32) */
static void test_mbedtls_time_is_the_board_clock(void)
{
    static fake_port_t fp2;
    static agent_port_t port2;
    agent_t *a = boot(true); /* unset: 1970-01-01 + 12 s */
    CHECK_EQ_INT(mbedtls_time(NULL), 12);
    fclock.now = 40;
    mbedtls_time_t t = 0;
    CHECK_EQ_INT(mbedtls_time(&t), 40);
    CHECK_EQ_INT(t, 40);
    fake_cmd(a, &fp, "clock set 1800000000");
    CHECK_EQ_INT(mbedtls_time(NULL), 1800000000);

    fake_port_make(&fp2, &port2);
    port2.clock_get = fixed_clock;
    port2.clock_set = NULL;
    agent_t *b = calloc(1, sizeof(*b));
    agent_init(b, &port2);
    CHECK_EQ_INT(mbedtls_time(NULL), 1700000000);
    agent_free(b);
    free(b);
    CHECK_EQ_INT(mbedtls_time(NULL), 1800000000);
    done(a);
    CHECK_EQ_INT(mbedtls_time(NULL), 0);
}
#endif

int main(void)
{
    test_format_utc();
    test_clock_command();
    test_warning();
    test_version();
#if defined(MBEDTLS_PLATFORM_TIME_ALT)
    test_mbedtls_time_is_the_board_clock();
#endif
    TEST_DONE();
}
