/* nvs_image.h - defensive reader of ESP-IDF NVS partition images (the
 * nvs_flash format, as Espressif's esp-idf-nvs-partition-gen writes it:
 * `python -m esp_idf_nvs_partition_gen generate in.csv out.bin 0x6000`).
 *
 * Public (include/): the host port reads `hil-agent --nvs <image>` with it;
 * the core maps the values to settings (nvs_settings.c, agent_port_t.nvs_get).
 *
 * Pure: no I/O, no allocation, no globals, no recursion. The image stays
 * the caller's; it is only read, never past len. nvs_image_open() checks the
 * whole image once (every page, entry, CRC32, span, namespace and blob; see
 * firmware/README.md, "NVS partition images"); afterwards lookups cannot
 * meet a malformed structure. A key is unique in its namespace: an image
 * with the same key twice is refused (ESP-IDF would keep the newer one).
 *
 * Format, in short: pages of 4096 bytes = a 32-byte header (state, sequence
 * number, version 0xfe = V2 / 0xff = V1, CRC32), a 32-byte bitmap of entry
 * states (2 bits each), 126 entries of 32 bytes. An entry: namespace index,
 * type, span, chunk index, CRC32, 16-byte key, 8 bytes of data (an integer,
 * or size + CRC32 of variable-length data in the span-1 entries after it).
 * Namespace 0 maps names to indexes 1..254. V2 blobs: a blob index entry
 * (0x48: total size, chunk count, first chunk index) and data chunks (0x42)
 * that may lie on different pages; V1 blobs (0x41) are one piece. Every
 * CRC32 is the reflected 0xEDB88320 CRC with the register starting at 0 and
 * the result inverted: zlib's crc32(data, 0xFFFFFFFF), agent_crc32(0xFFFFFFFF, ...). */
#ifndef NVS_IMAGE_H
#define NVS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define NVS_IMAGE_PAGE_SIZE 4096u
#define NVS_IMAGE_MAX_PAGES 64u /* 256 KiB: larger images are refused */
#define NVS_IMAGE_KEY_MAX 15u   /* bytes of a key or a namespace name */

typedef enum {
    NVS_IMAGE_OK = 0,
    NVS_IMAGE_NOT_FOUND = -1, /* no such namespace, or no such key in it */
    NVS_IMAGE_BAD = -2,       /* nvs_image_open: the image is malformed (err says what, where) */
    NVS_IMAGE_NO_SPACE = -3,  /* nvs_image_read: out too small (*outlen = bytes needed) */
    NVS_IMAGE_BAD_ARG = -4,   /* NULL, a name that is empty or longer than 15 bytes, a value
                                 that did not come from this image */
} nvs_image_status_t;

/* The value types, numbered as ESP-IDF's nvs_type_t. V1 (0x41) and V2
 * (0x48 + 0x42 chunks) blobs are both NVS_IMAGE_BLOB. */
typedef enum {
    NVS_IMAGE_U8 = 0x01,
    NVS_IMAGE_I8 = 0x11,
    NVS_IMAGE_U16 = 0x02,
    NVS_IMAGE_I16 = 0x12,
    NVS_IMAGE_U32 = 0x04,
    NVS_IMAGE_I32 = 0x14,
    NVS_IMAGE_U64 = 0x08,
    NVS_IMAGE_I64 = 0x18,
    NVS_IMAGE_STR = 0x21,
    NVS_IMAGE_BLOB = 0x42,
} nvs_image_type_t;

/* An image that nvs_image_open() accepted (zeroed when it refused one). */
typedef struct {
    const uint8_t *buf;
    size_t len;
    uint32_t pages;      /* len / 4096 */
    uint32_t pages_used; /* pages in state ACTIVE or FULL (the others are blank) */
    uint32_t namespaces; /* namespace entries */
    uint32_t values;     /* values in all namespaces (a V2 blob counts once) */
} nvs_image_t;

typedef struct {
    nvs_image_type_t type;
    uint32_t size; /* integers: 1, 2, 4, 8; string: bytes without its NUL; blob: bytes */
    uint64_t u;    /* unsigned integer types: the value; otherwise 0 */
    int64_t i;     /* signed integer types: the value; otherwise 0 */
    /* string, or a blob stored in one piece: its size bytes in the image (a
     * string is followed by its NUL and has no other NUL). NULL for a blob in
     * several chunks and for integers: use nvs_image_read(). */
    const uint8_t *data;
    uint32_t at_; /* private: offset of the value's entry in the image */
} nvs_image_value_t;

typedef struct {
    char ns[NVS_IMAGE_KEY_MAX + 1];  /* namespace name, NUL-terminated */
    char key[NVS_IMAGE_KEY_MAX + 1]; /* key, NUL-terminated */
    nvs_image_value_t value;
} nvs_image_entry_t;

typedef struct {
    uint32_t next_; /* private; zero the iterator to start */
} nvs_image_iter_t;

/* Check buf[0..len) as an NVS partition image. NVS_IMAGE_OK: *img refers to
 * buf (keep it alive and unchanged while img is used). NVS_IMAGE_BAD: err
 * (errlen bytes, always NUL-terminated; err may be NULL) names the first
 * problem and where, e.g. "page 1 entry 17 (offset 0x1260): entry CRC32 is
 * 0x5d6e9f00, computed 0x8e1c3a2b"; *img is zeroed. NVS_IMAGE_BAD_ARG: img
 * NULL, or buf NULL with len > 0. Blank (all-0xff) pages and erased entries
 * are skipped: an all-0xff image is valid and empty. Cost: linear in len,
 * plus a check of every value against every other (at most 64 pages). */
int nvs_image_open(nvs_image_t *img, const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Find key in namespace ns (both 1..15 bytes, NUL-terminated). OK: *out is
 * the value. NOT_FOUND: no namespace ns or no key in it. */
int nvs_image_find(const nvs_image_t *img, const char *ns, const char *key,
                   nvs_image_value_t *out);

/* Copy a value found in img into out (cap bytes): integers as size bytes,
 * little-endian; a string with its NUL (size + 1 bytes); a blob, its chunks
 * joined in order. *outlen = bytes written, or needed (NO_SPACE). */
int nvs_image_read(const nvs_image_t *img, const nvs_image_value_t *v, uint8_t *out, size_t cap,
                   size_t *outlen);

/* Iterate over every value in image order (pages in the image's order;
 * namespace entries and blob chunks are not values). Returns 1 and fills
 * *e, or 0 at the end. */
int nvs_image_next(const nvs_image_t *img, nvs_image_iter_t *it, nvs_image_entry_t *e);

/* "u8", "i8", ..., "i64", "string", "blob", or "?". */
const char *nvs_image_type_name(nvs_image_type_t type);

#endif
