/* fuzz_nvs_image.c - libFuzzer harness: the NVS partition image reader.
 * Each input is opened three ways: as given (lengths), padded with 0xff to
 * whole pages (at most 4), and the same with every CRC32 recomputed where
 * the bytes look like a page / an item (so mutations reach the checks behind
 * the CRCs). Each copy is a heap block of exactly the image's size, so ASan
 * sees any read past it. On an accepted image every value is found again,
 * read whole and read into a buffer one byte short; a disagreement aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "nvs_image.h"

#define PAGE 4096u
#define MAX_PAGES 4u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t crc(const uint8_t *p, size_t n)
{
    return agent_crc32(0xFFFFFFFFu, p, n);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static void fix_crcs(uint8_t *img, size_t len)
{
    for (size_t pg = 0; pg < len / PAGE; pg++) {
        uint8_t *page = img + pg * PAGE;
        put32(page + 28, crc(page + 4, 24));
        for (uint32_t i = 0; i < 126;) {
            uint32_t st = (uint32_t)(page[32 + i / 4] >> (i % 4 * 2)) & 3u;
            uint8_t *e = page + 64 + i * 32;
            uint32_t span = 1;
            if (st == 2 && (e[1] == 0x21 || e[1] == 0x41 || e[1] == 0x42)) {
                uint32_t n = (uint32_t)e[24] | (uint32_t)e[25] << 8;
                if (e[2] >= 1 && e[2] <= 126 - i && n <= (126u - i - 1u) * 32u) {
                    put32(e + 28, crc(e + 32, n));
                    span = e[2];
                }
            }
            if (st == 2) put32(e + 4, agent_crc32(crc(e, 4), e + 8, 24));
            i += span;
        }
    }
}

static void check(const uint8_t *buf, size_t len)
{
    nvs_image_t img;
    char err[200];
    if (nvs_image_open(&img, buf, len, err, sizeof(err)) != NVS_IMAGE_OK) {
        if (strnlen(err, sizeof(err)) >= sizeof(err)) abort();
        return;
    }
    nvs_image_iter_t it = {0};
    nvs_image_entry_t e;
    uint32_t values = 0;
    while (nvs_image_next(&img, &it, &e)) {
        nvs_image_value_t v;
        if (++values > img.values) abort();
        if (nvs_image_find(&img, e.ns, e.key, &v) != NVS_IMAGE_OK) abort();
        if (v.type != e.value.type || v.size != e.value.size || v.at_ != e.value.at_) abort();
        size_t need = v.size + (v.type == NVS_IMAGE_STR ? 1u : 0u), n = 0;
        uint8_t *out = malloc(need ? need : 1);
        if (out == NULL) abort();
        if (nvs_image_read(&img, &v, out, need, &n) != NVS_IMAGE_OK || n != need) abort();
        if (v.data != NULL && memcmp(out, v.data, need) != 0) abort();
        if (need > 0 && (nvs_image_read(&img, &v, out, need - 1, &n) != NVS_IMAGE_NO_SPACE ||
                         n != need))
            abort();
        free(out);
    }
    if (values != img.values) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL) return 0;
    if (size) memcpy(copy, data, size);
    check(copy, size);
    free(copy);

    size_t pages = (size + PAGE - 1) / PAGE;
    if (pages == 0) pages = 1;
    if (pages > MAX_PAGES) pages = MAX_PAGES;
    size_t len = pages * PAGE;
    uint8_t *img = malloc(len);
    if (img == NULL) return 0;
    memset(img, 0xff, len);
    memcpy(img, data, size < len ? size : len);
    check(img, len);
    fix_crcs(img, len);
    check(img, len);
    free(img);
    return 0;
}
