/* fuzz_console_line.c - libFuzzer harness: arbitrary console input bytes
 * into a fresh agent on the in-memory fake port (no network: "mqtt connect"
 * fails at the network-up check). Checks the one-final-line contract for
 * single-line inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fake_port_t fp;
    agent_port_t port;
    agent_t *a = calloc(1, sizeof(*a));
    if (!a) return 0;
    fake_port_make(&fp, &port);
    agent_init(a, &port);
    fp.out_len = 0;
    fp.out[0] = '\0';
    agent_console_feed(a, data, size);
    /* a single newline-terminated line with a token (not only spaces and
     * tabs) gets exactly one final line, tagged or not; the tag is cleared */
    const uint8_t *nl = memchr(data, '\n', size);
    bool has_token = false;
    for (size_t i = 0; nl && i + 1 < size; i++) {
        if (data[i] != ' ' && data[i] != '\t') has_token = true;
    }
    if (nl && nl == data + size - 1 && has_token && size < 500 && !memchr(data, '\0', size) &&
        !memchr(data, '\r', size) && fp.out_len < 60000) {
        if (fake_final_lines(&fp) != 1) abort();
    }
    if (a->tag[0] != '\0') abort();
    /* persistence round trip of whatever the input configured */
    uint8_t *blob;
    size_t len;
    if (settings_serialize(&a->settings, &blob, &len) == 0) {
        settings_t s;
        char err[200];
        settings_init(&s);
        if (settings_deserialize(&s, blob, len, err, sizeof(err)) != 0) abort();
        settings_free(&s);
        free(blob);
    }
    agent_free(a);
    free(a);
    return 0;
}
