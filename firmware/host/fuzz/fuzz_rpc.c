/* fuzz_rpc.c - libFuzzer harness for the Mongoose OS RPC channel: frame
 * assembly (rpc_frame.c), cJSON parsing and method dispatch (rpc.c) on a
 * fresh agent with the in-memory fake port. The first byte picks how the
 * rest goes in:
 *   0: raw console bytes (handshakes, frames, lines, garbage, any split);
 *   1: as the JSON of one frame ("""<rest>"""), so that dispatch is reached
 *      without the fuzzer having to find the delimiters;
 *   2: straight to agent_rpc_request, from an exact-size heap copy (an
 *      overread past the frame's text is an ASan report).
 * Every frame the agent writes must carry a correct CRC and be a JSON object
 * with "src" and exactly one of "result" / "error"; the settings must still
 * serialise and load; the FS.Put file table stays within its limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "cJSON.h"
#include "test_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frames(const fake_port_t *fp)
{
    if (fp->wraps) return;
    const char *p = fp->out;
    while ((p = strstr(p, "\"\"\"{")) != NULL) {
        const char *json = p + 3;
        const char *end = strstr(json, "\"\"\"");
        if (!end || end - json < 10 || end[3] != '\n') abort();
        size_t jlen = (size_t)(end - json) - 8;
        uint32_t crc;
        if (agent_parse_hex32(json + jlen, 8, &crc) != 0) abort();
        if (crc != agent_crc32(0, (const uint8_t *)json, jlen)) abort();
        cJSON *r = cJSON_ParseWithLength(json, jlen);
        if (!cJSON_IsObject(r)) abort();
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "src"))) abort();
        bool res = cJSON_GetObjectItemCaseSensitive(r, "result") != NULL;
        bool err = cJSON_GetObjectItemCaseSensitive(r, "error") != NULL;
        if (res == err) abort();
        cJSON_Delete(r);
        p = end + 3;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fake_port_t fp;
    agent_port_t port;
    if (size < 1) return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    agent_t *a = calloc(1, sizeof(*a));
    if (!a) return 0;
    fake_port_make(&fp, &port);
    agent_init(a, &port);
    if (mode == 0) {
        agent_console_feed(a, data, size);
    } else if (mode == 1) {
        agent_console_feed(a, (const uint8_t *)"\"\"\"", 3);
        agent_console_feed(a, data, size);
        agent_console_feed(a, (const uint8_t *)"\"\"\"", 3);
    } else {
        char *copy = malloc(size ? size : 1);
        if (copy) {
            if (size) memcpy(copy, data, size);
            agent_rpc_request(a, copy, size);
            free(copy);
        }
    }
    check_frames(&fp);
    test_check_settings_roundtrip(a);
    /* the FS.Put file table stays within its bounds and its count */
    size_t total = 0;
    for (size_t i = 0; i < AGENT_RPC_FILES; i++) {
        const agent_rpc_file_t *f = &a->rpc.file[i];
        if (f->len > AGENT_RPC_FILE_MAX || (f->name[0] == '\0' && (f->len || f->data))) abort();
        total += f->len;
    }
    if (total != a->rpc.files_total || total > AGENT_RPC_FILES_TOTAL) abort();
    agent_free(a);
    free(a);
    return 0;
}
