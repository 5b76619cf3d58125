/* test_nvs_image.c - the NVS partition image reader on images made by
 * Espressif's generator (tests/nvs/: the CSVs, make_fixtures.sh, the .bin
 * files, embedded by tests/nvs/fixtures.cmake as nvs_fixtures.h), and on
 * copies of them damaged on purpose. Socket-free: also runs on rv32. */
#include <stdint.h>
#include <string.h>

#include "agent_util.h"
#include "nvs_fixtures.h"
#include "nvs_image.h"
#include "test_support.h"

#define PAGE 4096u
#define ENTRY(pg, i) ((size_t)(pg) * PAGE + 64u + (size_t)(i) * 32u)

/* static: the rv32 build runs on a small stack */
static uint8_t img_copy[sizeof(nvs_settings_v2)];
static uint8_t out[8192];
static char err[256];

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

/* what the generator computes: zlib.crc32(data, 0xffffffff) */
static uint32_t nvs_crc(const uint8_t *p, size_t n)
{
    return agent_crc32(0xFFFFFFFFu, p, n);
}

static void fix_entry_crc(uint8_t *img, unsigned pg, unsigned i)
{
    uint8_t *e = img + ENTRY(pg, i);
    wr32(e + 4, agent_crc32(nvs_crc(e, 4), e + 8, 24));
}

static void fix_header_crc(uint8_t *img, unsigned pg)
{
    uint8_t *p = img + (size_t)pg * PAGE;
    wr32(p + 28, nvs_crc(p + 4, 24));
}

/* entry i of page pg -> bitmap state s (3 empty, 2 written, 0 erased, 1 illegal) */
static void set_state(uint8_t *img, unsigned pg, unsigned i, unsigned s)
{
    uint8_t *b = img + (size_t)pg * PAGE + 32u + i / 4u;
    unsigned shift = (i % 4u) * 2u;
    *b = (uint8_t)((*b & ~(3u << shift)) | (s << shift));
}

static void fresh(void)
{
    memcpy(img_copy, nvs_settings_v2, sizeof(img_copy));
}

/* open img_copy[0..len): expect NVS_IMAGE_BAD with all the words in err */
static void expect_bad(size_t len, const char *where, const char *what)
{
    nvs_image_t img;
    int rc = nvs_image_open(&img, img_copy, len, err, sizeof(err));
    CHECK_EQ_INT(rc, NVS_IMAGE_BAD);
    if (strstr(err, where) == NULL || strstr(err, what) == NULL)
        fprintf(stderr, "  error was: %s\n  expected: %s ... %s\n", err, where, what);
    CHECK(strstr(err, where) != NULL);
    CHECK(strstr(err, what) != NULL);
    CHECK(img.buf == NULL && img.pages == 0); /* zeroed on failure */
}

static void test_settings_v2(void)
{
    nvs_image_t img;
    nvs_image_value_t v;
    size_t n;
    CHECK_EQ_INT(nvs_image_open(&img, nvs_settings_v2, sizeof(nvs_settings_v2), err, sizeof(err)),
                 NVS_IMAGE_OK);
    CHECK_STR(err, "");
    CHECK_EQ_INT(img.pages, 6);
    CHECK_EQ_INT(img.pages_used, 3); /* the rest blank: empty pages + the reserved one */
    CHECK_EQ_INT(img.namespaces, 3);
    CHECK_EQ_INT(img.values, 18);

    /* strings */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "server", &v), NVS_IMAGE_OK);
    CHECK_EQ_INT(v.type, NVS_IMAGE_STR);
    CHECK_EQ_INT(v.size, 17);
    CHECK(v.data != NULL && memcmp(v.data, "broker.local:8883", 18) == 0); /* with its NUL */
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, sizeof(out), &n), NVS_IMAGE_OK);
    CHECK_EQ_INT(n, 18);
    CHECK_STR((const char *)out, "broker.local:8883");
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, 17, &n), NVS_IMAGE_NO_SPACE);
    CHECK_EQ_INT(n, 18);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "empty", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_STR && v.size == 0 && v.data != NULL && v.data[0] == 0);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "long", &v), NVS_IMAGE_OK); /* 48 entries */
    CHECK_EQ_INT(v.size, 1500);
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, sizeof(out), &n), NVS_IMAGE_OK);
    CHECK_EQ_INT(n, 1501);
    static const char line[] = "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    bool same = true;
    for (size_t k = 0; k < 1500; k++) same = same && out[k] == (uint8_t)line[k % (sizeof(line) - 1)];
    CHECK(same && out[1500] == 0);
    CHECK_EQ_INT(nvs_image_find(&img, "other", "server", &v), NVS_IMAGE_OK); /* same key, other ns */
    CHECK(v.type == NVS_IMAGE_STR && strcmp((const char *)v.data, "10.0.0.2:1883") == 0);

    /* integers, at their limits */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "port", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_U16 && v.size == 2 && v.u == 8883 && v.i == 0 && v.data == NULL);
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, sizeof(out), &n), NVS_IMAGE_OK);
    CHECK(n == 2 && out[0] == 0xb3 && out[1] == 0x22); /* little-endian */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "u8max", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_U8 && v.size == 1 && v.u == 255);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "i8min", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_I8 && v.size == 1 && v.i == -128 && v.u == 0);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "u16max", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_U16 && v.u == 65535);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "i16min", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_I16 && v.i == -32768);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "u32max", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_U32 && v.size == 4 && v.u == 4294967295u);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "i32min", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_I32 && v.i == INT32_MIN);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "i32neg", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_I32 && v.i == -2);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "u64max", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_U64 && v.size == 8 && v.u == UINT64_MAX);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "i64min", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_I64 && v.i == INT64_MIN);

    /* blobs: one chunk (contiguous), and one over two pages (V2 multipage) */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "psk", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_BLOB && v.size == 16 && v.data != NULL);
    CHECK(v.data != NULL && v.data[0] == 0x00 && v.data[1] == 0x11 && v.data[15] == 0xff);
    CHECK_EQ_INT(nvs_image_find(&img, "other", "b64", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_BLOB && v.size == 9 && memcmp(v.data, "hello nvs", 9) == 0);
    CHECK_EQ_INT(nvs_image_find(&img, "other", "eblob", &v), NVS_IMAGE_OK); /* one empty chunk */
    CHECK(v.type == NVS_IMAGE_BLOB && v.size == 0 && v.data != NULL);
    CHECK_EQ_INT(nvs_image_read(&img, &v, NULL, 0, &n), NVS_IMAGE_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "big", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_BLOB && v.size == 6000 && v.data == NULL);
    memset(out, 0, sizeof(out));
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, sizeof(out), &n), NVS_IMAGE_OK);
    CHECK_EQ_INT(n, 6000);
    same = true;
    for (size_t k = 0; k < 6000; k++) same = same && out[k] == (uint8_t)((k * 31u + (k >> 7)) & 0xffu);
    CHECK(same);
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, 5999, &n), NVS_IMAGE_NO_SPACE);
    CHECK_EQ_INT(n, 6000);

    /* absent: wrong namespace, namespace without keys, no such namespace or key */
    CHECK_EQ_INT(nvs_image_find(&img, "other", "port", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_find(&img, "unused", "server", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_find(&img, "nope", "server", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "nokey", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "serve", &v), NVS_IMAGE_NOT_FOUND);  /* prefix */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "server2", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_find(&img, "", "hil", &v), NVS_IMAGE_BAD_ARG);   /* namespace table */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "", &v), NVS_IMAGE_BAD_ARG);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "0123456789abcdef", &v), NVS_IMAGE_BAD_ARG); /* 16 */
    CHECK_EQ_INT(nvs_image_find(&img, NULL, "port", &v), NVS_IMAGE_BAD_ARG);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "port", NULL), NVS_IMAGE_BAD_ARG);

    /* a value that is not this image's */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "server", &v), NVS_IMAGE_OK);
    nvs_image_value_t bad = v;
    bad.at_ += 32; /* a data entry of the string, not an item */
    CHECK_EQ_INT(nvs_image_read(&img, &bad, out, sizeof(out), &n), NVS_IMAGE_BAD_ARG);
    bad = v;
    bad.at_ = 0xFFFFFFF0u;
    CHECK_EQ_INT(nvs_image_read(&img, &bad, out, sizeof(out), &n), NVS_IMAGE_BAD_ARG);
    bad = v;
    bad.type = NVS_IMAGE_BLOB;
    CHECK_EQ_INT(nvs_image_read(&img, &bad, out, sizeof(out), &n), NVS_IMAGE_BAD_ARG);

    /* iteration: every value once, in image order, with its namespace */
    nvs_image_iter_t it = {0};
    nvs_image_entry_t e;
    int count = 0, others = 0;
    while (nvs_image_next(&img, &it, &e)) {
        if (count == 0) CHECK(strcmp(e.ns, "hil") == 0 && strcmp(e.key, "server") == 0);
        if (strcmp(e.ns, "other") == 0) others++;
        nvs_image_value_t again;
        CHECK_EQ_INT(nvs_image_find(&img, e.ns, e.key, &again), NVS_IMAGE_OK);
        CHECK(again.type == e.value.type && again.size == e.value.size && again.at_ == e.value.at_);
        count++;
    }
    CHECK_EQ_INT(count, 18);
    CHECK_EQ_INT(others, 3);
    CHECK_EQ_INT(nvs_image_next(&img, &it, &e), 0); /* stays at the end */
    it.next_ = 2;                                   /* inside the first string's span */
    CHECK_EQ_INT(nvs_image_next(&img, &it, &e), 1);
    CHECK_STR(e.key, "port");

    CHECK_STR(nvs_image_type_name(NVS_IMAGE_I64), "i64");
    CHECK_STR(nvs_image_type_name(NVS_IMAGE_STR), "string");
    CHECK_STR(nvs_image_type_name(NVS_IMAGE_BLOB), "blob");
    CHECK_STR(nvs_image_type_name((nvs_image_type_t)0x33), "?");
}

static void test_legacy_v1(void)
{
    nvs_image_t img;
    nvs_image_value_t v;
    size_t n;
    CHECK_EQ_INT(nvs_image_open(&img, nvs_legacy_v1, sizeof(nvs_legacy_v1), err, sizeof(err)),
                 NVS_IMAGE_OK);
    CHECK_EQ_INT(img.values, 3);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "server", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_STR && strcmp((const char *)v.data, "legacy.local:8883") == 0);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "blob", &v), NVS_IMAGE_OK); /* type 0x41 */
    CHECK(v.type == NVS_IMAGE_BLOB && v.size == 48 && v.data != NULL);
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, sizeof(out), &n), NVS_IMAGE_OK);
    CHECK(n == 48 && out[0] == 1 && out[47] == 0x30);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "count", &v), NVS_IMAGE_OK);
    CHECK(v.type == NVS_IMAGE_U32 && v.u == 7);
}

static void test_lengths(void)
{
    nvs_image_t img;
    fresh();
    expect_bad(0, "image:", "empty");
    expect_bad(100, "image:", "100 bytes, not a whole number of 4096-byte pages");
    expect_bad(10000, "image:", "not a whole number"); /* truncated mid-page */
    expect_bad(sizeof(img_copy) + 1 - 4096, "image:", "not a whole number");
    /* the first page alone: the multipage blob's first chunk has lost its index */
    expect_bad(4096, "page 0 entry 57 (offset 0x760)", "chunk 0 of blob 'big' in namespace 'hil' belongs to no blob index");
    /* two pages: complete, just without page 2's values */
    CHECK_EQ_INT(nvs_image_open(&img, img_copy, 8192, err, sizeof(err)), NVS_IMAGE_OK);
    nvs_image_value_t v;
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "big", &v), NVS_IMAGE_OK);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "u32max", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_find(&img, "other", "server", &v), NVS_IMAGE_NOT_FOUND);
    /* more pages than read: refused before anything is read */
    expect_bad((size_t)(NVS_IMAGE_MAX_PAGES + 1u) * PAGE, "image:", "65 pages, more than the 64 (256 KiB)");
    CHECK_EQ_INT(nvs_image_open(NULL, img_copy, PAGE, err, sizeof(err)), NVS_IMAGE_BAD_ARG);
    CHECK_EQ_INT(nvs_image_open(&img, NULL, PAGE, err, sizeof(err)), NVS_IMAGE_BAD_ARG);
    /* no error buffer, or a tiny one */
    CHECK_EQ_INT(nvs_image_open(&img, img_copy, 100, NULL, 0), NVS_IMAGE_BAD);
    char tiny[8];
    CHECK_EQ_INT(nvs_image_open(&img, img_copy, 100, tiny, sizeof(tiny)), NVS_IMAGE_BAD);
    CHECK_STR(tiny, "image: ");
}

static void test_blank_and_garbage(void)
{
    nvs_image_t img;
    nvs_image_value_t v;
    nvs_image_iter_t it = {0};
    nvs_image_entry_t e;
    memset(img_copy, 0xff, sizeof(img_copy)); /* an erased partition: valid, empty */
    CHECK_EQ_INT(nvs_image_open(&img, img_copy, sizeof(img_copy), err, sizeof(err)), NVS_IMAGE_OK);
    CHECK(img.pages == 6 && img.pages_used == 0 && img.values == 0 && img.namespaces == 0);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "server", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_next(&img, &it, &e), 0);
    img_copy[2 * PAGE + 1234] = 0x00; /* a "blank" page that is not */
    expect_bad(sizeof(img_copy), "page 2 (offset 0x2000)", "state 0xffffffff (blank), but byte 1234 is 0x00");

    uint32_t x = 12345; /* garbage */
    for (size_t k = 0; k < sizeof(img_copy); k++) {
        x = x * 1103515245u + 12345u;
        img_copy[k] = (uint8_t)(x >> 16);
    }
    expect_bad(sizeof(img_copy), "page 0 (offset 0x0)", "not an NVS page state");
    memset(img_copy, 0, sizeof(img_copy));
    expect_bad(sizeof(img_copy), "page 0", "page state 0x00000000: marked invalid");

    /* a failed open leaves an image that finds nothing */
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "server", &v), NVS_IMAGE_NOT_FOUND);
    CHECK_EQ_INT(nvs_image_next(&img, &it, &e), 0);
    CHECK_EQ_INT(nvs_image_read(&img, &v, out, sizeof(out), &(size_t){0}), NVS_IMAGE_BAD_ARG);
}

static void test_crc(void)
{
    fresh();
    img_copy[ENTRY(0, 3) + 8] ^= 0x20; /* the key of hil/port */
    expect_bad(sizeof(img_copy), "page 0 entry 3 (offset 0xa0): entry CRC32 is 0x0166722b, computed", "");
    fresh();
    img_copy[ENTRY(0, 2) + 3] ^= 0x01; /* a byte of hil/server's string */
    expect_bad(sizeof(img_copy), "page 0 entry 1 (offset 0x60): 'server': data CRC32 is", "computed");
    fresh();
    img_copy[ENTRY(1, 60)] ^= 0xff; /* inside the second chunk of hil/big */
    expect_bad(sizeof(img_copy), "page 1 entry 0 (offset 0x1040): 'big': data CRC32", "");
    fresh();
    img_copy[PAGE + 4] ^= 0x01; /* page 1's sequence number */
    expect_bad(sizeof(img_copy), "page 1 (offset 0x1000): header CRC32 is", "computed");
}

static void test_structure(void)
{
    nvs_image_t img;
    nvs_image_value_t v;

    /* an erased entry is skipped, as ESP-IDF does */
    fresh();
    set_state(img_copy, 0, 3, 0);
    CHECK_EQ_INT(nvs_image_open(&img, img_copy, sizeof(img_copy), err, sizeof(err)), NVS_IMAGE_OK);
    CHECK_EQ_INT(img.values, 17);
    CHECK_EQ_INT(nvs_image_find(&img, "hil", "port", &v), NVS_IMAGE_NOT_FOUND);

    fresh();
    set_state(img_copy, 0, 3, 1);
    expect_bad(sizeof(img_copy), "page 0 entry 3", "entry state 01 (illegal)");

    fresh(); /* a data entry of hil/long marked empty: a half-written item */
    set_state(img_copy, 0, 30, 3);
    expect_bad(sizeof(img_copy), "page 0 entry 30", "data of 'long' (entry 6) is not marked written");

    fresh(); /* hil/empty renamed to "port": the same key twice */
    memcpy(img_copy + ENTRY(0, 4) + 8, "port\0", 6);
    fix_entry_crc(img_copy, 0, 4);
    expect_bad(sizeof(img_copy), "page 0 entry 4", "key 'port' appears twice in namespace 'hil' (first at page 0 entry 3)");

    fresh(); /* the same, with bytes after the key's NUL: still the same key */
    memcpy(img_copy + ENTRY(0, 4) + 8, "port\0junk", 10);
    fix_entry_crc(img_copy, 0, 4);
    expect_bad(sizeof(img_copy), "page 0 entry 4", "key 'port' appears twice in namespace 'hil'");

    fresh(); /* namespace "other" renamed to "hil" */
    memcpy(img_copy + ENTRY(2, 5) + 8, "hil\0\0", 6);
    fix_entry_crc(img_copy, 2, 5);
    expect_bad(sizeof(img_copy), "page 2 entry 5", "namespace 'hil' is defined twice (first at page 0 entry 0)");

    fresh(); /* namespace "unused" given index 1 too */
    img_copy[ENTRY(2, 13) + 24] = 1;
    fix_entry_crc(img_copy, 2, 13);
    expect_bad(sizeof(img_copy), "page 2 entry 13", "namespace index 1 is defined twice (again as 'unused')");

    fresh(); /* hil/port moved to a namespace index nothing defines */
    img_copy[ENTRY(0, 3)] = 9;
    fix_entry_crc(img_copy, 0, 3);
    expect_bad(sizeof(img_copy), "page 0 entry 3", "'port' is in namespace index 9, which no namespace entry defines");

    fresh();
    img_copy[ENTRY(0, 3) + 1] = 0x33;
    fix_entry_crc(img_copy, 0, 3);
    expect_bad(sizeof(img_copy), "page 0 entry 3", "'port' has unknown type 0x33");

    fresh(); /* a string's span one too long */
    img_copy[ENTRY(0, 1) + 2] = 3;
    fix_entry_crc(img_copy, 0, 1);
    expect_bad(sizeof(img_copy), "page 0 entry 1", "'server': span 3, but 18 bytes of data need span 2");

    fresh(); /* a string whose size runs past the page */
    img_copy[ENTRY(0, 6) + 24] = 0xff;
    img_copy[ENTRY(0, 6) + 25] = 0xff;
    fix_entry_crc(img_copy, 0, 6);
    expect_bad(sizeof(img_copy), "page 0 entry 6", "'long': 65535 bytes of data do not fit in the 119 entries left");

    fresh(); /* a string without its NUL (CRCs made to match) */
    img_copy[ENTRY(0, 2) + 17] = 'x';
    wr32(img_copy + ENTRY(0, 1) + 28, nvs_crc(img_copy + ENTRY(0, 2), 18));
    fix_entry_crc(img_copy, 0, 1);
    expect_bad(sizeof(img_copy), "page 0 entry 1", "string 'server' does not end in a NUL byte");

    fresh(); /* a key without a NUL in its 16 bytes */
    memcpy(img_copy + ENTRY(0, 3) + 8, "0123456789abcdef", 16);
    fix_entry_crc(img_copy, 0, 3);
    expect_bad(sizeof(img_copy), "page 0 entry 3", "key '0123456789abcdef' is not NUL-terminated");

    fresh(); /* the multipage blob's second chunk erased (its whole span) */
    for (unsigned i = 0; i < 121; i++) set_state(img_copy, 1, i, 0);
    expect_bad(sizeof(img_copy), "page 1 entry 121", "blob 'big' in namespace 'hil': chunk 2 of its 2 (index 1) is missing");

    fresh(); /* its index claims a byte more than the chunks hold */
    wr32(img_copy + ENTRY(1, 121) + 24, 6001);
    fix_entry_crc(img_copy, 1, 121);
    expect_bad(sizeof(img_copy), "page 1 entry 121", "its chunks hold 6000 bytes, its index says 6001");

    fresh(); /* the second chunk numbered 0 too */
    img_copy[ENTRY(1, 0) + 3] = 0;
    fix_entry_crc(img_copy, 1, 0);
    expect_bad(sizeof(img_copy), "page 1 entry 0", "chunk 0 of blob 'big' in namespace 'hil' is stored twice");

    fresh();
    img_copy[ENTRY(1, 121) + 29] = 5;
    fix_entry_crc(img_copy, 1, 121);
    expect_bad(sizeof(img_copy), "page 1 entry 121", "first chunk index 5 (0 or 128 expected)");

    fresh(); /* a page from a newer ESP-IDF format */
    img_copy[PAGE + 8] = 0xfd;
    fix_header_crc(img_copy, 1);
    expect_bad(sizeof(img_copy), "page 1 (offset 0x1000)", "format version 0xfd unknown");

    fresh(); /* a page ESP-IDF was freeing */
    wr32(img_copy + PAGE, 0xFFFFFFF8u);
    expect_bad(sizeof(img_copy), "page 1", "page state 0xfffffff8: freeing");
    CHECK_EQ_INT(rd32(nvs_settings_v2 + PAGE), 0xFFFFFFFCu); /* the fixture is FULL */
}

int main(void)
{
    test_settings_v2();
    test_legacy_v1();
    test_lengths();
    test_blank_and_garbage();
    test_crc();
    test_structure();
    TEST_DONE();
}
