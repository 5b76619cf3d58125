/* nvs_image.c - ESP-IDF NVS partition image reader (see nvs_image.h).
 *
 * Two passes in nvs_image_open():
 *   1. every page on its own: header (state, CRC32, version); every entry the
 *      bitmap marks written: CRC32, key, type, span, chunk index, namespace
 *      index, the data entries of its span (marked written, data CRC32, a
 *      string's NUL);
 *   2. across pages: each value's namespace is defined, no key twice in a
 *      namespace (nor a namespace name twice), each V2 blob has all its
 *      chunks exactly once and their sizes add up, each chunk has its index.
 * Only pass 1 trusts nothing; everything after it walks items through
 * next_item(), whose spans pass 1 has checked (and which clamps them anyway).
 * Strict on purpose: the images come from a generator, so anything ESP-IDF
 * would repair or skip at boot (bad CRC, half-written item, duplicate,
 * orphan chunk, a page being freed) means a damaged file and is refused. */
#include "nvs_image.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agent_util.h"

#define PAGE NVS_IMAGE_PAGE_SIZE
#define ENTRY_SIZE 32u
#define ENTRY_COUNT 126u /* entries per page */
#define BITMAP_OFF 32u   /* 2 bits per entry: 11 empty, 10 written, 00 erased, 01 illegal */
#define ENTRIES_OFF 64u

#define PAGE_BLANK 0xFFFFFFFFu
#define PAGE_ACTIVE 0xFFFFFFFEu
#define PAGE_FULL 0xFFFFFFFCu
#define PAGE_FREEING 0xFFFFFFF8u
#define PAGE_CORRUPT 0xFFFFFFF0u

#define VERSION_1 0xFFu
#define VERSION_2 0xFEu

#define ES_ERASED 0u
#define ES_ILLEGAL 1u
#define ES_WRITTEN 2u
#define ES_EMPTY 3u

#define T_SZ 0x21u
#define T_BLOB_V1 0x41u
#define T_BLOB_DATA 0x42u
#define T_BLOB_IDX 0x48u

#define CHUNK_ANY 0xFFu
#define NS_ANY 0xFFu
/* chunk indexes: 0..127 for a blob's version 0, 128..254 for version 1 */
#define CHUNK_VER1 0x80u
/* 127 chunks of a page's 125 data entries */
#define BLOB_MAX (127u * (ENTRY_COUNT - 1u) * ENTRY_SIZE)

/* an entry */
#define E_NS 0u
#define E_TYPE 1u
#define E_SPAN 2u
#define E_CHUNK 3u
#define E_CRC 4u
#define E_KEY 8u
#define E_DATA 24u /* integer | u16 size, u16 reserved, u32 data CRC32 | blob index */
#define KEY_LEN 16u

#define NONE 0xFFFFFFFFu /* no page / no entry in an error's place */
#define KEY_TEXT 65u     /* 16 key bytes, each escaped to at most 4 characters */

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le_n(const uint8_t *p, uint32_t n)
{
    uint64_t v = 0;
    for (uint32_t k = n; k-- > 0;) v = v << 8 | p[k];
    return v;
}

/* the n-bit two's complement value in the low bits of u */
static int64_t sign_extend(uint64_t u, uint32_t bits)
{
    uint64_t mask = bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1u;
    u &= mask;
    if (u >> (bits - 1u) & 1u) return -(int64_t)(~u & mask) - 1;
    return (int64_t)u;
}

/* ESP-IDF's CRC32 (esp_rom_crc32_le(0xffffffff, ...)), = zlib.crc32(d, 0xffffffff) */
static uint32_t nvs_crc(const uint8_t *p, size_t n)
{
    return agent_crc32(0xFFFFFFFFu, p, n);
}

/* an entry's CRC32: its first 4 bytes and its last 24 (key and data) */
static uint32_t entry_crc(const uint8_t *e)
{
    return agent_crc32(nvs_crc(e, E_CRC), e + E_KEY, ENTRY_SIZE - E_KEY);
}

static bool is_int_type(uint32_t t)
{
    switch (t) {
    case NVS_IMAGE_U8: case NVS_IMAGE_I8: case NVS_IMAGE_U16: case NVS_IMAGE_I16:
    case NVS_IMAGE_U32: case NVS_IMAGE_I32: case NVS_IMAGE_U64: case NVS_IMAGE_I64:
        return true;
    default:
        return false;
    }
}

static bool is_varlen(uint32_t t)
{
    return t == T_SZ || t == T_BLOB_V1 || t == T_BLOB_DATA;
}

static bool page_has_entries(const uint8_t *page)
{
    uint32_t st = le32(page);
    return st == PAGE_ACTIVE || st == PAGE_FULL;
}

static uint32_t entry_state(const uint8_t *page, uint32_t i)
{
    return (uint32_t)(page[BITMAP_OFF + i / 4u] >> (i % 4u * 2u)) & 3u;
}

/* 256-bit sets: namespace indexes, chunk indexes */
static bool bit_get(const uint8_t bits[32], uint32_t i)
{
    return ((uint32_t)bits[i / 8u] >> (i % 8u) & 1u) != 0;
}

static void bit_set(uint8_t bits[32], uint32_t i)
{
    bits[i / 8u] = (uint8_t)(bits[i / 8u] | 1u << (i % 8u));
}

/* the same key: as strings (both NUL-terminated within 16 bytes: pass 1); the
 * bytes after the NUL do not count, as in ESP-IDF */
static bool same_key(const uint8_t *a, const uint8_t *b)
{
    return strncmp((const char *)a + E_KEY, (const char *)b + E_KEY, KEY_LEN) == 0;
}

/* e's key (NUL-terminated within its 16 bytes, checked by pass 1) is name[0..n) */
static bool name_is(const uint8_t *e, const char *name, size_t n)
{
    return e[E_KEY + n] == 0 && memcmp(e + E_KEY, name, n) == 0;
}

/* length of a caller's name: 1..15, or 0 when NULL, empty or longer */
static size_t name_len(const char *s)
{
    if (s == NULL) return 0;
    for (size_t n = 0; n <= NVS_IMAGE_KEY_MAX; n++)
        if (s[n] == '\0') return n;
    return 0;
}

/* a key for a message: escaped, at most 16 bytes, up to its NUL */
static const char *key_text(const uint8_t *e, char out[KEY_TEXT])
{
    const uint8_t *k = e + E_KEY;
    const uint8_t *nul = memchr(k, 0, KEY_LEN);
    size_t n = nul ? (size_t)(nul - k) : KEY_LEN;
    bool cut;
    agent_escape_quoted(k, n, KEY_LEN, out, KEY_TEXT, &cut);
    return out;
}

static int fail(char *err, size_t errlen, uint32_t page, uint32_t entry, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, uint32_t page, uint32_t entry, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return NVS_IMAGE_BAD;
    int n;
    if (page == NONE) {
        n = snprintf(err, errlen, "image: ");
    } else if (entry == NONE) {
        n = snprintf(err, errlen, "page %lu (offset 0x%lx): ", (unsigned long)page,
                     (unsigned long)page * PAGE);
    } else {
        n = snprintf(err, errlen, "page %lu entry %lu (offset 0x%lx): ", (unsigned long)page,
                     (unsigned long)entry,
                     (unsigned long)page * PAGE + ENTRIES_OFF + (unsigned long)entry * ENTRY_SIZE);
    }
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return NVS_IMAGE_BAD;
}

/* ---- walking items ----------------------------------------------------------
 * An item: the first entry of a value, a namespace entry, or a blob chunk.
 * Positions are global entry indexes: page * 126 + entry. */

/* the next item at or after *pos: its entry, *at = its position, *pos = the
 * position after its span; NULL at the end. Only for images pass 1 accepted
 * (it trusts bitmap and spans, and still clamps a span to its page). */
static const uint8_t *next_item(const nvs_image_t *img, uint32_t *pos, uint32_t *at)
{
    uint32_t total = img->pages * ENTRY_COUNT;
    while (*pos < total) {
        uint32_t pg = *pos / ENTRY_COUNT, i = *pos % ENTRY_COUNT;
        const uint8_t *page = img->buf + (size_t)pg * PAGE;
        if (!page_has_entries(page)) {
            *pos = (pg + 1u) * ENTRY_COUNT;
            continue;
        }
        if (entry_state(page, i) != ES_WRITTEN) {
            (*pos)++;
            continue;
        }
        const uint8_t *e = page + ENTRIES_OFF + i * ENTRY_SIZE;
        uint32_t span = is_varlen(e[E_TYPE]) ? e[E_SPAN] : 1u;
        if (span < 1u || span > ENTRY_COUNT - i) span = 1u;
        *at = *pos;
        *pos += span;
        return e;
    }
    return NULL;
}

static bool is_value(const uint8_t *e)
{
    return e[E_NS] != 0 && e[E_TYPE] != T_BLOB_DATA;
}

/* the namespace entry that defines index ns, or NULL */
static const uint8_t *ns_by_index(const nvs_image_t *img, uint32_t ns)
{
    uint32_t pos = 0, at;
    const uint8_t *e;
    while ((e = next_item(img, &pos, &at)) != NULL)
        if (e[E_NS] == 0 && e[E_DATA] == ns) return e;
    return NULL;
}

/* chunk c of the V2 blob whose index entry is idx, or NULL; *where = its position */
static const uint8_t *find_chunk(const nvs_image_t *img, const uint8_t *idx, uint32_t c,
                                 uint32_t *where)
{
    uint32_t pos = 0, at;
    const uint8_t *e;
    while ((e = next_item(img, &pos, &at)) != NULL) {
        if (e[E_TYPE] == T_BLOB_DATA && e[E_NS] == idx[E_NS] && e[E_CHUNK] == c &&
            same_key(e, idx)) {
            if (where) *where = at;
            return e;
        }
    }
    return NULL;
}

/* ---- pass 1: pages and entries ---------------------------------------------- */

static int check_entry(nvs_image_t *img, const uint8_t *page, uint32_t pg, uint32_t i,
                       uint8_t defined[32], uint32_t *span_out, char *err, size_t errlen)
{
    const uint8_t *e = page + ENTRIES_OFF + i * ENTRY_SIZE;
    char k[KEY_TEXT];
    uint32_t stored = le32(e + E_CRC), calc = entry_crc(e);
    if (stored != calc)
        return fail(err, errlen, pg, i, "entry CRC32 is 0x%08lx, computed 0x%08lx",
                    (unsigned long)stored, (unsigned long)calc);
    const uint8_t *nul = memchr(e + E_KEY, 0, KEY_LEN);
    if (nul == NULL)
        return fail(err, errlen, pg, i, "key '%s' is not NUL-terminated within 16 bytes",
                    key_text(e, k));
    if (nul == e + E_KEY) return fail(err, errlen, pg, i, "empty key");
    uint32_t ns = e[E_NS], t = e[E_TYPE], span = e[E_SPAN], chunk = e[E_CHUNK];
    key_text(e, k);
    *span_out = 1;
    if (ns == NS_ANY)
        return fail(err, errlen, pg, i, "'%s' has namespace index 255 (reserved)", k);
    if (t != T_BLOB_DATA && chunk != CHUNK_ANY)
        return fail(err, errlen, pg, i, "'%s' (type 0x%02lx) has chunk index %lu (255 expected)",
                    k, (unsigned long)t, (unsigned long)chunk);

    if (ns == 0) { /* the namespace table: name -> index */
        if (t != NVS_IMAGE_U8 || span != 1u)
            return fail(err, errlen, pg, i,
                        "namespace entry '%s' has type 0x%02lx span %lu (a u8, span 1 expected)", k,
                        (unsigned long)t, (unsigned long)span);
        uint32_t idx = e[E_DATA];
        if (idx == 0 || idx == NS_ANY)
            return fail(err, errlen, pg, i, "namespace '%s' has index %lu (1..254 allowed)", k,
                        (unsigned long)idx);
        if (bit_get(defined, idx))
            return fail(err, errlen, pg, i, "namespace index %lu is defined twice (again as '%s')",
                        (unsigned long)idx, k);
        bit_set(defined, idx);
        img->namespaces++;
        return NVS_IMAGE_OK;
    }
    if (is_int_type(t)) {
        if (span != 1u)
            return fail(err, errlen, pg, i, "%s '%s' has span %lu (1 expected)",
                        nvs_image_type_name((nvs_image_type_t)t), k, (unsigned long)span);
        img->values++;
        return NVS_IMAGE_OK;
    }
    if (t == T_BLOB_IDX) {
        uint32_t size = le32(e + E_DATA), count = e[E_DATA + 4u], start = e[E_DATA + 5u];
        if (span != 1u)
            return fail(err, errlen, pg, i, "blob index '%s' has span %lu (1 expected)", k,
                        (unsigned long)span);
        if (start != 0 && start != CHUNK_VER1)
            return fail(err, errlen, pg, i,
                        "blob index '%s': first chunk index %lu (0 or 128 expected)", k,
                        (unsigned long)start);
        if (count > (start ? 127u : 128u))
            return fail(err, errlen, pg, i, "blob index '%s': %lu chunks, above %u", k,
                        (unsigned long)count, start ? 127u : 128u);
        if (size > BLOB_MAX)
            return fail(err, errlen, pg, i, "blob index '%s': size %lu above the format's %lu", k,
                        (unsigned long)size, (unsigned long)BLOB_MAX);
        img->values++;
        return NVS_IMAGE_OK;
    }
    if (!is_varlen(t))
        return fail(err, errlen, pg, i, "'%s' has unknown type 0x%02lx", k, (unsigned long)t);

    /* a string, a V1 blob or a V2 blob chunk: size bytes in the next entries */
    uint32_t size = le16(e + E_DATA);
    uint32_t room = ENTRY_COUNT - i - 1u, need = (size + ENTRY_SIZE - 1u) / ENTRY_SIZE;
    if (t == T_BLOB_DATA && chunk == CHUNK_ANY)
        return fail(err, errlen, pg, i, "blob chunk '%s' has chunk index 255", k);
    if (need > room)
        return fail(err, errlen, pg, i,
                    "'%s': %lu bytes of data do not fit in the %lu entries left in the page", k,
                    (unsigned long)size, (unsigned long)room);
    if (span != need + 1u)
        return fail(err, errlen, pg, i, "'%s': span %lu, but %lu bytes of data need span %lu", k,
                    (unsigned long)span, (unsigned long)size, (unsigned long)need + 1u);
    for (uint32_t j = i + 1u; j < i + span; j++)
        if (entry_state(page, j) != ES_WRITTEN)
            return fail(err, errlen, pg, j,
                        "data of '%s' (entry %lu) is not marked written in the bitmap", k,
                        (unsigned long)i);
    const uint8_t *data = e + ENTRY_SIZE;
    stored = le32(e + E_DATA + 4u);
    calc = nvs_crc(data, size);
    if (stored != calc)
        return fail(err, errlen, pg, i, "'%s': data CRC32 is 0x%08lx, computed 0x%08lx", k,
                    (unsigned long)stored, (unsigned long)calc);
    if (t == T_SZ) {
        if (size == 0 || data[size - 1u] != 0)
            return fail(err, errlen, pg, i, "string '%s' does not end in a NUL byte", k);
        const uint8_t *inner = memchr(data, 0, size - 1u);
        if (inner != NULL)
            return fail(err, errlen, pg, i, "string '%s' has a NUL byte inside (at byte %lu)", k,
                        (unsigned long)(inner - data));
    }
    if (t != T_BLOB_DATA) img->values++;
    *span_out = span;
    return NVS_IMAGE_OK;
}

static int check_page(nvs_image_t *img, uint32_t pg, uint8_t defined[32], char *err,
                      size_t errlen)
{
    const uint8_t *page = img->buf + (size_t)pg * PAGE;
    uint32_t st = le32(page);
    if (st == PAGE_BLANK) { /* erased (the generator leaves the last pages so) */
        for (uint32_t b = 4; b < PAGE; b++)
            if (page[b] != 0xFFu)
                return fail(err, errlen, pg, NONE,
                            "state 0xffffffff (blank), but byte %lu is 0x%02x, not 0xff",
                            (unsigned long)b, page[b]);
        return NVS_IMAGE_OK;
    }
    if (st != PAGE_ACTIVE && st != PAGE_FULL) {
        const char *why = st == PAGE_FREEING ? "freeing (a device's page in garbage collection)"
                          : st == PAGE_CORRUPT ? "marked corrupt"
                          : st == 0           ? "marked invalid"
                                              : "not an NVS page state";
        return fail(err, errlen, pg, NONE, "page state 0x%08lx: %s", (unsigned long)st, why);
    }
    uint32_t stored = le32(page + 28u), calc = nvs_crc(page + 4u, 24u);
    if (stored != calc)
        return fail(err, errlen, pg, NONE, "header CRC32 is 0x%08lx, computed 0x%08lx",
                    (unsigned long)stored, (unsigned long)calc);
    if (page[8] != VERSION_2 && page[8] != VERSION_1)
        return fail(err, errlen, pg, NONE,
                    "format version 0x%02x unknown (0xfe = V2, 0xff = V1; lower = newer)",
                    page[8]);
    img->pages_used++;
    for (uint32_t i = 0; i < ENTRY_COUNT;) {
        uint32_t s = entry_state(page, i);
        if (s == ES_EMPTY || s == ES_ERASED) {
            i++;
            continue;
        }
        if (s == ES_ILLEGAL)
            return fail(err, errlen, pg, i, "entry state 01 (illegal) in the page's bitmap");
        uint32_t span = 1;
        int rc = check_entry(img, page, pg, i, defined, &span, err, errlen);
        if (rc != NVS_IMAGE_OK) return rc;
        i += span;
    }
    return NVS_IMAGE_OK;
}

/* ---- pass 2: across pages ------------------------------------------------------ */

/* a global position's page and entry, for fail() */
#define PG(at) ((at) / ENTRY_COUNT)
#define EN(at) ((at) % ENTRY_COUNT)

static const char *ns_text(const nvs_image_t *img, uint32_t ns, char out[KEY_TEXT])
{
    const uint8_t *d = ns_by_index(img, ns);
    if (d == NULL) {
        snprintf(out, KEY_TEXT, "#%lu", (unsigned long)ns);
        return out;
    }
    return key_text(d, out);
}

/* blob index idx (at position at): chunks start..start+count-1 each once, sizes add up */
static int check_blob(const nvs_image_t *img, const uint8_t *idx, uint32_t at, char *err,
                      size_t errlen)
{
    uint32_t size = le32(idx + E_DATA), count = idx[E_DATA + 4u], start = idx[E_DATA + 5u];
    uint8_t seen[32] = {0};
    uint32_t sum = 0, pos = 0, cat;
    const uint8_t *e;
    char k[KEY_TEXT], n[KEY_TEXT];
    while ((e = next_item(img, &pos, &cat)) != NULL) {
        uint32_t c = e[E_CHUNK];
        if (e[E_TYPE] != T_BLOB_DATA || e[E_NS] != idx[E_NS] || !same_key(e, idx)) continue;
        if (c < start || c >= start + count) continue; /* another version's: an orphan (below) */
        if (bit_get(seen, c))
            return fail(err, errlen, PG(cat), EN(cat),
                        "chunk %lu of blob '%s' in namespace '%s' is stored twice",
                        (unsigned long)c, key_text(idx, k), ns_text(img, idx[E_NS], n));
        bit_set(seen, c);
        sum += le16(e + E_DATA);
    }
    for (uint32_t c = start; c < start + count; c++)
        if (!bit_get(seen, c))
            return fail(err, errlen, PG(at), EN(at),
                        "blob '%s' in namespace '%s': chunk %lu of its %lu (index %lu) is missing",
                        key_text(idx, k), ns_text(img, idx[E_NS], n),
                        (unsigned long)(c - start + 1u), (unsigned long)count, (unsigned long)c);
    if (sum != size)
        return fail(err, errlen, PG(at), EN(at),
                    "blob '%s' in namespace '%s': its chunks hold %lu bytes, its index says %lu",
                    key_text(idx, k), ns_text(img, idx[E_NS], n), (unsigned long)sum,
                    (unsigned long)size);
    return NVS_IMAGE_OK;
}

static int check_links(const nvs_image_t *img, const uint8_t defined[32], char *err,
                       size_t errlen)
{
    uint32_t pos = 0, at;
    const uint8_t *a;
    char k[KEY_TEXT], n[KEY_TEXT];
    while ((a = next_item(img, &pos, &at)) != NULL) {
        uint32_t ns = a[E_NS], t = a[E_TYPE];
        if (ns != 0 && !bit_get(defined, ns))
            return fail(err, errlen, PG(at), EN(at),
                        "'%s' is in namespace index %lu, which no namespace entry defines",
                        key_text(a, k), (unsigned long)ns);
        if (t == T_BLOB_DATA) { /* some blob index must claim it */
            uint32_t c = a[E_CHUNK], p2 = 0, at2;
            const uint8_t *b;
            bool claimed = false;
            while (!claimed && (b = next_item(img, &p2, &at2)) != NULL) {
                uint32_t start = b[E_DATA + 5u], count = b[E_DATA + 4u];
                claimed = b[E_TYPE] == T_BLOB_IDX && b[E_NS] == ns && same_key(a, b) &&
                          c >= start && c < start + count;
            }
            if (!claimed)
                return fail(err, errlen, PG(at), EN(at),
                            "chunk %lu of blob '%s' in namespace '%s' belongs to no blob index",
                            (unsigned long)c, key_text(a, k), ns_text(img, ns, n));
            continue;
        }
        /* the same name later on: a duplicate */
        uint32_t p2 = pos, at2;
        const uint8_t *b;
        while ((b = next_item(img, &p2, &at2)) != NULL) {
            if (b[E_TYPE] == T_BLOB_DATA || b[E_NS] != ns || !same_key(a, b)) continue;
            if (ns == 0)
                return fail(err, errlen, PG(at2), EN(at2),
                            "namespace '%s' is defined twice (first at page %lu entry %lu)",
                            key_text(a, k), (unsigned long)PG(at), (unsigned long)EN(at));
            return fail(err, errlen, PG(at2), EN(at2),
                        "key '%s' appears twice in namespace '%s' (first at page %lu entry %lu)",
                        key_text(a, k), ns_text(img, ns, n), (unsigned long)PG(at),
                        (unsigned long)EN(at));
        }
        if (t == T_BLOB_IDX) {
            int rc = check_blob(img, a, at, err, errlen);
            if (rc != NVS_IMAGE_OK) return rc;
        }
    }
    return NVS_IMAGE_OK;
}

int nvs_image_open(nvs_image_t *img, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) err[0] = '\0';
    if (img == NULL || (buf == NULL && len > 0)) {
        if (err != NULL && errlen > 0) snprintf(err, errlen, "image: no image given (NULL)");
        return NVS_IMAGE_BAD_ARG;
    }
    memset(img, 0, sizeof(*img));
    if (len == 0) return fail(err, errlen, NONE, NONE, "empty (0 bytes)");
    if (len % PAGE != 0)
        return fail(err, errlen, NONE, NONE,
                    "%lu bytes, not a whole number of 4096-byte pages (truncated, or not an NVS "
                    "partition image)",
                    (unsigned long)len);
    if (len / PAGE > NVS_IMAGE_MAX_PAGES)
        return fail(err, errlen, NONE, NONE, "%lu pages, more than the %u (%u KiB) read",
                    (unsigned long)(len / PAGE), NVS_IMAGE_MAX_PAGES,
                    NVS_IMAGE_MAX_PAGES * PAGE / 1024u);
    nvs_image_t tmp = {.buf = buf, .len = len, .pages = (uint32_t)(len / PAGE)};
    uint8_t defined[32] = {0}; /* namespace indexes seen */
    for (uint32_t pg = 0; pg < tmp.pages; pg++) {
        int rc = check_page(&tmp, pg, defined, err, errlen);
        if (rc != NVS_IMAGE_OK) return rc;
    }
    int rc = check_links(&tmp, defined, err, errlen);
    if (rc != NVS_IMAGE_OK) return rc;
    *img = tmp;
    return NVS_IMAGE_OK;
}

/* ---- lookups -------------------------------------------------------------------- */

static void fill_value(const nvs_image_t *img, const uint8_t *e, nvs_image_value_t *v)
{
    uint32_t t = e[E_TYPE];
    memset(v, 0, sizeof(*v));
    v->at_ = (uint32_t)(e - img->buf);
    if (is_int_type(t)) {
        uint32_t n = t & 0x0Fu;
        uint64_t raw = le_n(e + E_DATA, n);
        v->type = (nvs_image_type_t)t;
        v->size = n;
        if (t & 0x10u) v->i = sign_extend(raw, n * 8u);
        else v->u = raw;
    } else if (t == T_SZ) {
        v->type = NVS_IMAGE_STR;
        v->size = le16(e + E_DATA) - 1u; /* >= 1: pass 1 */
        v->data = e + ENTRY_SIZE;
    } else if (t == T_BLOB_V1) {
        v->type = NVS_IMAGE_BLOB;
        v->size = le16(e + E_DATA);
        v->data = v->size ? e + ENTRY_SIZE : e;
    } else if (t == T_BLOB_IDX) {
        v->type = NVS_IMAGE_BLOB;
        v->size = le32(e + E_DATA);
        if (v->size == 0) {
            v->data = e;
        } else if (e[E_DATA + 4u] == 1u) { /* one chunk: contiguous */
            const uint8_t *c = find_chunk(img, e, e[E_DATA + 5u], NULL);
            v->data = c ? c + ENTRY_SIZE : NULL;
        }
    }
}

/* the value item at offset off of img (an item's start, never a data entry) */
static const uint8_t *value_at(const nvs_image_t *img, uint32_t off)
{
    uint32_t pos = 0, at;
    const uint8_t *e;
    while ((e = next_item(img, &pos, &at)) != NULL) {
        uint32_t eoff = (uint32_t)(e - img->buf);
        if (eoff == off) return is_value(e) ? e : NULL;
        if (eoff > off) break;
    }
    return NULL;
}

int nvs_image_find(const nvs_image_t *img, const char *ns, const char *key,
                   nvs_image_value_t *out)
{
    size_t nlen = name_len(ns), klen = name_len(key);
    if (img == NULL || out == NULL || nlen == 0 || klen == 0) return NVS_IMAGE_BAD_ARG;
    memset(out, 0, sizeof(*out));
    if (img->buf == NULL) return NVS_IMAGE_NOT_FOUND;
    uint32_t pos = 0, at, idx = 0;
    const uint8_t *e;
    while ((e = next_item(img, &pos, &at)) != NULL) {
        if (e[E_NS] == 0 && name_is(e, ns, nlen)) {
            idx = e[E_DATA];
            break;
        }
    }
    if (idx == 0) return NVS_IMAGE_NOT_FOUND;
    pos = 0;
    while ((e = next_item(img, &pos, &at)) != NULL) {
        if (e[E_NS] == idx && e[E_TYPE] != T_BLOB_DATA && name_is(e, key, klen)) {
            fill_value(img, e, out);
            return NVS_IMAGE_OK;
        }
    }
    return NVS_IMAGE_NOT_FOUND;
}

int nvs_image_read(const nvs_image_t *img, const nvs_image_value_t *v, uint8_t *out, size_t cap,
                   size_t *outlen)
{
    if (outlen != NULL) *outlen = 0;
    if (img == NULL || img->buf == NULL || v == NULL || outlen == NULL || (out == NULL && cap > 0))
        return NVS_IMAGE_BAD_ARG;
    const uint8_t *e = value_at(img, v->at_);
    if (e == NULL) return NVS_IMAGE_BAD_ARG;
    nvs_image_value_t cur;
    fill_value(img, e, &cur);
    if (cur.type != v->type || cur.size != v->size) return NVS_IMAGE_BAD_ARG;
    size_t need = cur.type == NVS_IMAGE_STR ? (size_t)cur.size + 1u : cur.size;
    if (cap < need) {
        *outlen = need;
        return NVS_IMAGE_NO_SPACE;
    }
    uint32_t t = e[E_TYPE];
    if (is_int_type(t)) {
        memcpy(out, e + E_DATA, need);
    } else if (t == T_SZ || t == T_BLOB_V1) {
        memcpy(out, e + ENTRY_SIZE, need); /* a string's NUL is its data's last byte */
    } else { /* V2 blob: its chunks in order (pass 2: each present once, sizes add up) */
        uint32_t count = e[E_DATA + 4u], start = e[E_DATA + 5u];
        size_t off = 0;
        for (uint32_t c = start; c < start + count; c++) {
            const uint8_t *d = find_chunk(img, e, c, NULL);
            if (d == NULL) return NVS_IMAGE_BAD_ARG;
            size_t n = le16(d + E_DATA);
            if (n > need - off) return NVS_IMAGE_BAD_ARG;
            if (n > 0) memcpy(out + off, d + ENTRY_SIZE, n);
            off += n;
        }
        if (off != need) return NVS_IMAGE_BAD_ARG;
    }
    *outlen = need;
    return NVS_IMAGE_OK;
}

int nvs_image_next(const nvs_image_t *img, nvs_image_iter_t *it, nvs_image_entry_t *out)
{
    if (img == NULL || img->buf == NULL || it == NULL || out == NULL) return 0;
    /* walk from the start: it->next_ is the caller's memory, never a position to trust */
    uint32_t pos = 0, at;
    const uint8_t *e;
    while ((e = next_item(img, &pos, &at)) != NULL) {
        if (at < it->next_ || !is_value(e)) continue;
        memset(out, 0, sizeof(*out));
        memcpy(out->key, e + E_KEY, NVS_IMAGE_KEY_MAX); /* NUL within 16: pass 1 */
        const uint8_t *d = ns_by_index(img, e[E_NS]);
        if (d != NULL) memcpy(out->ns, d + E_KEY, NVS_IMAGE_KEY_MAX);
        fill_value(img, e, &out->value);
        it->next_ = pos;
        return 1;
    }
    it->next_ = img->pages * ENTRY_COUNT;
    return 0;
}

const char *nvs_image_type_name(nvs_image_type_t type)
{
    switch (type) {
    case NVS_IMAGE_U8: return "u8";
    case NVS_IMAGE_I8: return "i8";
    case NVS_IMAGE_U16: return "u16";
    case NVS_IMAGE_I16: return "i16";
    case NVS_IMAGE_U32: return "u32";
    case NVS_IMAGE_I32: return "i32";
    case NVS_IMAGE_U64: return "u64";
    case NVS_IMAGE_I64: return "i64";
    case NVS_IMAGE_STR: return "string";
    case NVS_IMAGE_BLOB: return "blob";
    }
    return "?";
}
