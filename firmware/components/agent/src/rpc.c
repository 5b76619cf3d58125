/* rpc.c - Mongoose OS RPC frames on the console (the `mos` tool's serial
 * channel; framing in rpc_frame.c): the handshake's answer, and the methods
 *   Sys.GetInfo   what /rpc/Sys.GetInfo of the HTTPS server reports
 *   Config.Get    {"key": "mqtt.server" | "mqtt" | omitted}: secrets masked
 *                 as `config get` masks them
 *   Config.Set    {"config": {"mqtt": {"server": "h:p", ...}}, "save": bool}:
 *                 nested objects flattened to the dotted setting names, every
 *                 key validated by settings.c; all applied or none
 *   Config.Save   {"reboot": bool}
 *   Sys.Reboot    after the response
 *   FS.Put        {"filename", "data": base64, "append": bool} into a small
 *                 RAM file table; FS.List, FS.Remove {"filename"}. A PEM
 *                 setting given a file's name in Config.Set (the Mongoose OS
 *                 way: `mos put ca.pem`, then mqtt.ssl_ca_cert=ca.pem) stores
 *                 the file's content
 *   MQTT.Pub      {"topic", "message", "qos": 0|1} on the current connection,
 *                 answered {"queued": true} at once (the outcome is logged)
 * Requests {"id":N,"method":M,"params":{...}} get {"id":N,"src":<device id>,
 * "result":...} or {"id":N,"src":...,"error":{"code":C,"message":...}}:
 * 404 "No handler for <method>", 400 for bad params (naming what), 500 when
 * the board failed (storage). A frame that is not a JSON object (or nests
 * deeper than AGENT_RPC_DEPTH_MAX) has no id to answer: it is dropped with an
 * E line. One log line per request; values never appear in responses or log
 * lines except as `config get` shows them.
 *
 * The command layer: it calls the leaves and the services (mqtt.c,
 * http_server.c for a reboot), never console.c or agent.c. JSON is cJSON
 * (ESP-IDF's `json` component on the board; Debian's source package on the
 * host, firmware/host/cjson/fetch.sh). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_util.h"
#include "cJSON.h"

/* "src" of every response: Mongoose OS puts device.id there */
#define RPC_SRC "hil-agent"
#define NAME_MAX_LEN 64 /* a dotted setting name in Config.Set/Get */
#define SHOWN_MAX 40    /* input bytes shown in a message (escaped) */

typedef struct {
    int code;          /* 0 = success: result */
    char msg[300];
    cJSON *result;     /* NULL with code 0: "result": null */
    char note[200];    /* for the log line on success (key names, never values) */
} rpc_reply_t;

static void fail(rpc_reply_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(rpc_reply_t *r, int code, const char *fmt, ...)
{
    va_list ap;
    r->code = code;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

/* Input text for a message: its first SHOWN_MAX bytes, escaped. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    bool cut;
    (void)agent_escape_quoted((const uint8_t *)s, strlen(s), SHOWN_MAX, buf, cap, &cut);
    return buf;
}
#define SHOWN(s) shown((s), (char[4 * SHOWN_MAX + 1]){0}, 4 * SHOWN_MAX + 1)

/* Wipe every string of a parsed request before it is freed (Config.Set
 * carries keys and passwords). Depth is bounded by AGENT_RPC_DEPTH_MAX. */
static void wipe_tree(cJSON *item)
{
    for (cJSON *c = item; c; c = c->next) {
        if (c->valuestring) mbedtls_platform_zeroize(c->valuestring, strlen(c->valuestring));
        if (c->child) wipe_tree(c->child);
    }
}

/* ---- Sys.GetInfo --------------------------------------------------------------- */

static void m_sys_getinfo(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    (void)params;
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        fail(r, 500, "out of memory");
        return;
    }
    cJSON_AddStringToObject(o, "id", RPC_SRC);
    cJSON_AddStringToObject(o, "app", "hil-agent");
    cJSON_AddStringToObject(o, "fw_version", AGENT_VERSION);
    cJSON_AddStringToObject(o, "fw_id", agent_build_id());
    cJSON_AddStringToObject(o, "mbedtls", agent_mbedtls_version());
    cJSON_AddStringToObject(o, "arch", AGENT_ARCH);
    cJSON_AddStringToObject(o, "variant", agent_variant());
    cJSON_AddNumberToObject(o, "bits", agent_bits());
    cJSON_AddNumberToObject(o, "uptime", (double)(agent_now(a) / 1000u));
    if (a->port.free_heap) {
        cJSON_AddNumberToObject(o, "ram_free", (double)a->port.free_heap(a->port.ctx));
    } else {
        cJSON_AddNullToObject(o, "ram_free");
    }
    r->result = o;
}

/* ---- Config.Get -------------------------------------------------------------- */

/* The value `config get` shows for key, as JSON: null when unset, a number
 * for numeric settings, else the masked text of settings_format_get. */
static cJSON *config_value(const agent_t *a, setting_key_t key)
{
    const setting_def_t *d = settings_def(key);
    const char *eff = settings_get(&a->settings, key);
    char line[400];
    if (!eff) return cJSON_CreateNull();
    if (d->kind == SKIND_BOOL) return cJSON_CreateBool(strcmp(eff, "true") == 0);
    if (d->kind == SKIND_U16) {
        uint32_t v;
        if (agent_parse_u32(eff, strlen(eff), 65535, &v) == 0) return cJSON_CreateNumber(v);
    }
    if (d->kind == SKIND_UINT) return cJSON_CreateNumber(settings_get_uint(&a->settings, key));
    if (d->kind == SKIND_SECONDS) return cJSON_CreateNumber(settings_get_ms(&a->settings, key) / 1000.0);
    settings_format_get(&a->settings, key, line, sizeof(line));
    size_t skip = strlen(d->name) + 1; /* "<name>=" */
    return cJSON_CreateString(strlen(line) >= skip ? line + skip : "");
}

/* Every setting as nested objects ("mqtt.server" -> {"mqtt": {"server": ...}}). */
static cJSON *config_tree(const agent_t *a)
{
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; root && i < SK_COUNT; i++) {
        const char *name = settings_def((setting_key_t)i)->name;
        cJSON *node = root;
        char seg[NAME_MAX_LEN];
        const char *p = name;
        for (;;) {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            if (n >= sizeof(seg)) n = sizeof(seg) - 1;
            memcpy(seg, p, n);
            seg[n] = '\0';
            if (!dot) {
                cJSON *v = config_value(a, (setting_key_t)i);
                if (!v || !cJSON_AddItemToObject(node, seg, v)) {
                    cJSON_Delete(v);
                    cJSON_Delete(root);
                    return NULL;
                }
                break;
            }
            cJSON *next = cJSON_GetObjectItemCaseSensitive(node, seg);
            if (!next) next = cJSON_AddObjectToObject(node, seg);
            if (!next) {
                cJSON_Delete(root);
                return NULL;
            }
            node = next;
            p = dot + 1;
        }
    }
    return root;
}

static void m_config_get(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    const cJSON *key = params ? cJSON_GetObjectItemCaseSensitive(params, "key") : NULL;
    if (key && !cJSON_IsString(key)) {
        fail(r, 400, "params.key: expected a string");
        return;
    }
    cJSON *tree = config_tree(a);
    if (!tree) {
        fail(r, 500, "out of memory");
        return;
    }
    if (!key) {
        r->result = tree;
        return;
    }
    /* walk "a.b.c" down the tree */
    cJSON *parent = NULL, *node = tree;
    const char *p = key->valuestring;
    char seg[NAME_MAX_LEN];
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof(seg) || !cJSON_IsObject(node)) {
            node = NULL;
            break;
        }
        memcpy(seg, p, n);
        seg[n] = '\0';
        parent = node;
        node = cJSON_GetObjectItemCaseSensitive(parent, seg);
        if (!node || !dot) break;
        p = dot + 1;
    }
    if (!node) {
        fail(r, 400, "unknown key '%s'", SHOWN(key->valuestring));
        cJSON_Delete(tree);
        return;
    }
    r->result = cJSON_DetachItemViaPointer(parent, node);
    cJSON_Delete(tree);
}

/* ---- FS.Put / FS.List / FS.Remove: the file table ----------------------------------- */

static agent_rpc_file_t *file_find(agent_t *a, const char *name)
{
    for (size_t i = 0; i < AGENT_RPC_FILES; i++) {
        if (a->rpc.file[i].name[0] != '\0' && strcmp(a->rpc.file[i].name, name) == 0) {
            return &a->rpc.file[i];
        }
    }
    return NULL;
}

static void file_free(agent_t *a, agent_rpc_file_t *f)
{
    if (f->data) {
        mbedtls_platform_zeroize(f->data, f->len);
        free(f->data);
    }
    a->rpc.files_total -= f->len;
    memset(f, 0, sizeof(*f));
}

void agent_rpc_free(agent_t *a)
{
    for (size_t i = 0; i < AGENT_RPC_FILES; i++) file_free(a, &a->rpc.file[i]);
    a->rpc.files_total = 0;
    rpc_frame_reset(&a->rpc.frame);
}

/* 1..AGENT_RPC_FILE_NAME_MAX of [A-Za-z0-9._-], not starting with '.' */
static bool file_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > AGENT_RPC_FILE_NAME_MAX || n[0] == '.') return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static const cJSON *file_name_param(const cJSON *params, rpc_reply_t *r)
{
    const cJSON *fn = params ? cJSON_GetObjectItemCaseSensitive(params, "filename") : NULL;
    if (!cJSON_IsString(fn)) {
        fail(r, 400, "params.filename: expected a string");
        return NULL;
    }
    if (!file_name_ok(fn->valuestring)) {
        fail(r, 400, "params.filename: '%s' is not 1..%u of A-Z a-z 0-9 . _ - (not starting with '.')",
             SHOWN(fn->valuestring), (unsigned)AGENT_RPC_FILE_NAME_MAX);
        return NULL;
    }
    return fn;
}

/* {"filename", "data": base64, "append": bool}: mos put sends a file in
 * chunks, the first without append. */
static void m_fs_put(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    const cJSON *fn = file_name_param(params, r);
    if (!fn) return;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(params, "data");
    const cJSON *append = cJSON_GetObjectItemCaseSensitive(params, "append");
    if (!cJSON_IsString(data)) {
        fail(r, 400, "params.data: expected a base64 string");
        return;
    }
    if (append && !cJSON_IsBool(append)) {
        fail(r, 400, "params.append: expected true or false");
        return;
    }
    agent_rpc_file_t *f = file_find(a, fn->valuestring);
    size_t keep = (f && cJSON_IsTrue(append)) ? f->len : 0;
    size_t inlen = strlen(data->valuestring);
    size_t cap = inlen / 4 * 3;
    if (keep + cap > AGENT_RPC_FILE_MAX + 2) cap = AGENT_RPC_FILE_MAX + 2 - keep; /* decode fails if longer */
    uint8_t *chunk = malloc(cap + 1);
    size_t n = 0;
    if (!chunk) {
        fail(r, 500, "out of memory");
        return;
    }
    if (agent_base64_decode(data->valuestring, inlen, chunk, cap, &n) != 0) {
        if (inlen % 4 == 0 && inlen / 4 * 3 > cap) {
            fail(r, 400, "%s: file too large (max %u bytes)", fn->valuestring, (unsigned)AGENT_RPC_FILE_MAX);
        } else {
            fail(r, 400, "params.data: bad base64");
        }
        mbedtls_platform_zeroize(chunk, cap);
        free(chunk);
        return;
    }
    size_t old_len = f ? f->len : 0;
    size_t total = keep + n;
    if (total > AGENT_RPC_FILE_MAX) {
        fail(r, 400, "%s: file too large (max %u bytes)", fn->valuestring, (unsigned)AGENT_RPC_FILE_MAX);
    } else if (a->rpc.files_total - old_len + total > AGENT_RPC_FILES_TOTAL) {
        fail(r, 400, "%s: no room (all files together max %u bytes)", fn->valuestring,
             (unsigned)AGENT_RPC_FILES_TOTAL);
    }
    if (r->code == 0 && !f) { /* a new file: a free slot */
        for (size_t i = 0; i < AGENT_RPC_FILES && !f; i++) {
            if (a->rpc.file[i].name[0] == '\0') f = &a->rpc.file[i];
        }
        if (!f) fail(r, 400, "%s: too many files (max %u)", fn->valuestring, (unsigned)AGENT_RPC_FILES);
    }
    uint8_t *buf = NULL;
    if (r->code == 0) {
        buf = malloc(total + 1);
        if (!buf) fail(r, 500, "out of memory");
    }
    if (r->code == 0) {
        if (keep) memcpy(buf, f->data, keep);
        memcpy(buf + keep, chunk, n);
        buf[total] = 0;
        file_free(a, f);
        snprintf(f->name, sizeof(f->name), "%s", fn->valuestring);
        f->data = buf;
        f->len = total;
        a->rpc.files_total += total;
        snprintf(r->note, sizeof(r->note), "%s (%zu bytes)", f->name, f->len);
    }
    mbedtls_platform_zeroize(chunk, cap);
    free(chunk);
}

static void m_fs_list(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    (void)params;
    cJSON *arr = cJSON_CreateArray();
    if (!arr) {
        fail(r, 500, "out of memory");
        return;
    }
    for (size_t i = 0; i < AGENT_RPC_FILES; i++) {
        if (a->rpc.file[i].name[0] != '\0') {
            cJSON_AddItemToArray(arr, cJSON_CreateString(a->rpc.file[i].name));
        }
    }
    r->result = arr;
}

static void m_fs_remove(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    const cJSON *fn = file_name_param(params, r);
    if (!fn) return;
    agent_rpc_file_t *f = file_find(a, fn->valuestring);
    if (!f) {
        fail(r, 400, "no file '%s'", fn->valuestring);
        return;
    }
    file_free(a, f);
    snprintf(r->note, sizeof(r->note), "%s", fn->valuestring);
}

/* ---- Config.Set / Config.Save ----------------------------------------------------- */

typedef struct {
    setting_key_t key;
    const char *value; /* NULL: clear */
    size_t len;
    char num[12];      /* a number's decimal text */
} rpc_set_t;

typedef struct {
    rpc_set_t item[2 * SK_COUNT];
    size_t n;
} rpc_sets_t;

/* A JSON number for a SKIND_UINT / SKIND_SECONDS setting as the text `config
 * set` takes ("5", "1.5"); a number no such text stands for (negative, a
 * fraction of a count, a 4th decimal, huge) as "%g", which the setting's
 * validation then refuses with its usual reason. */
static void number_text(setting_kind_t kind, double v, char *buf, size_t cap)
{
    double scale = kind == SKIND_SECONDS ? 1000.0 : 1.0;
    double x = v * scale;
    if (x >= 0 && x <= 4000000000.0) {
        uint32_t n = (uint32_t)(x + 0.5);
        double diff = (double)n - x;
        if (diff < 1e-6 && diff > -1e-6) {
            if (kind == SKIND_SECONDS) {
                agent_format_seconds_ms(n, buf, cap);
            } else {
                snprintf(buf, cap, "%lu", (unsigned long)n);
            }
            return;
        }
    }
    snprintf(buf, cap, "%g", v);
}

/* Flatten obj (at dotted prefix) into sets; 0, or -1 with r failed. A PEM
 * setting's value without "-----BEGIN" names a file of the table (FS.Put):
 * the value is the file's content. */
static int flatten(agent_t *a, const cJSON *obj, const char *prefix, rpc_sets_t *sets, rpc_reply_t *r)
{
    char name[NAME_MAX_LEN + 1];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        int n = snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", k);
        if (n < 0 || (size_t)n >= sizeof(name) - 1) {
            fail(r, 400, "unknown key '%s'", SHOWN(name));
            return -1;
        }
        if (cJSON_IsObject(c)) {
            if (flatten(a, c, name, sets, r) != 0) return -1;
            continue;
        }
        int key = settings_find(name, (size_t)n);
        if (key < 0) {
            fail(r, 400, "unknown key '%s'", SHOWN(name));
            return -1;
        }
        if (sets->n >= sizeof(sets->item) / sizeof(sets->item[0])) {
            fail(r, 400, "params.config: too many keys (max %zu)", sizeof(sets->item) / sizeof(sets->item[0]));
            return -1;
        }
        rpc_set_t *s = &sets->item[sets->n];
        s->key = (setting_key_t)key;
        if (cJSON_IsString(c)) {
            s->value = c->valuestring;
            s->len = strlen(c->valuestring);
            setting_kind_t kind = settings_def(s->key)->kind;
            if ((kind == SKIND_PEM_CERT || kind == SKIND_PEM_KEY) && !strstr(s->value, "-----BEGIN")) {
                /* the Mongoose OS way: a file given by FS.Put, named */
                const agent_rpc_file_t *f = file_find(a, s->value);
                if (!f) {
                    fail(r, 400, "%s: no file '%s' (FS.Put it first, or give the PEM text)", name,
                         SHOWN(s->value));
                    return -1;
                }
                s->value = (const char *)f->data;
                s->len = f->len;
            }
        } else if (cJSON_IsNull(c)) {
            s->value = NULL;
            s->len = 0;
        } else if (cJSON_IsBool(c) && settings_def(s->key)->kind == SKIND_BOOL) {
            snprintf(s->num, sizeof(s->num), "%s", cJSON_IsTrue(c) ? "true" : "false");
            s->value = s->num;
            s->len = strlen(s->num);
        } else if (cJSON_IsNumber(c) && settings_def(s->key)->kind == SKIND_U16) {
            double v = c->valuedouble;
            if (!(v >= 0 && v <= 65535 && (double)(unsigned)v == v)) {
                fail(r, 400, "%s: expected an integer 0..65535", name);
                return -1;
            }
            snprintf(s->num, sizeof(s->num), "%u", (unsigned)v);
            s->value = s->num;
            s->len = strlen(s->num);
        } else if (cJSON_IsNumber(c) && (settings_def(s->key)->kind == SKIND_UINT ||
                                         settings_def(s->key)->kind == SKIND_SECONDS)) {
            number_text(settings_def(s->key)->kind, c->valuedouble, s->num, sizeof(s->num));
            s->value = s->num; /* validated as the text would be */
            s->len = strlen(s->num);
        } else {
            setting_kind_t kind = settings_def(s->key)->kind;
            fail(r, 400, "%s: expected %s", name,
                 kind == SKIND_U16 || kind == SKIND_UINT || kind == SKIND_SECONDS
                                      ? "a string or a number"
                 : kind == SKIND_BOOL ? "true or false"
                                      : "a string (or null to clear it)");
            return -1;
        }
        sets->n++;
    }
    return 0;
}

static int save_settings(agent_t *a, const settings_t *s, rpc_reply_t *r)
{
    char err[300] = "";
    uint8_t *blob;
    size_t len;
    if (settings_serialize(s, &blob, &len) != 0) {
        fail(r, 500, "config save: out of memory");
        return -1;
    }
    int rc = a->port.storage_save(a->port.ctx, blob, len, err, sizeof(err));
    mbedtls_platform_zeroize(blob, len);
    free(blob);
    if (rc != 0) {
        err[sizeof(err) - 1] = '\0';
        fail(r, 500, "config save: %s", err);
        return -1;
    }
    return 0;
}

static void note_keys(rpc_reply_t *r, const rpc_sets_t *sets)
{
    size_t pos = 0;
    for (size_t i = 0; i < sets->n && pos < sizeof(r->note); i++) {
        int n = snprintf(r->note + pos, sizeof(r->note) - pos, "%s%s", i ? " " : "",
                         settings_def(sets->item[i].key)->name);
        if (n < 0) break;
        pos += (size_t)n;
    }
}

static void m_config_set(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    const cJSON *config = params ? cJSON_GetObjectItemCaseSensitive(params, "config") : NULL;
    const cJSON *save = params ? cJSON_GetObjectItemCaseSensitive(params, "save") : NULL;
    rpc_sets_t sets;
    settings_t tmp;
    char err[300];
    if (!cJSON_IsObject(config)) {
        fail(r, 400, "params.config: expected an object");
        return;
    }
    if (save && !cJSON_IsBool(save)) {
        fail(r, 400, "params.save: expected true or false");
        return;
    }
    sets.n = 0;
    if (flatten(a, config, "", &sets, r) != 0) return;
    /* on a copy: every key or none. The keys given are cleared first, so that a
     * certificate and its key given together are checked against each other,
     * not against the pair they replace. */
    settings_init(&tmp);
    if (settings_copy(&tmp, &a->settings) != 0) {
        settings_free(&tmp);
        fail(r, 500, "out of memory");
        return;
    }
    for (size_t i = 0; i < sets.n; i++) settings_clear(&tmp, sets.item[i].key);
    for (size_t i = 0; i < sets.n; i++) {
        const rpc_set_t *s = &sets.item[i];
        if (!s->value) {
            settings_clear(&tmp, s->key);
        } else if (settings_set(&tmp, s->key, s->value, s->len, agent_rng, a, err, sizeof(err)) != 0) {
            settings_free(&tmp);
            fail(r, 400, "%s", err);
            return;
        }
    }
    bool saved = cJSON_IsTrue(save);
    if (saved && save_settings(a, &tmp, r) != 0) {
        settings_free(&tmp);
        return;
    }
    settings_free(&a->settings);
    a->settings = tmp; /* the values move */
    note_keys(r, &sets);
    r->result = cJSON_CreateObject();
    if (r->result) cJSON_AddBoolToObject(r->result, "saved", saved);
}

static void m_config_save(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    const cJSON *reboot = params ? cJSON_GetObjectItemCaseSensitive(params, "reboot") : NULL;
    if (reboot && !cJSON_IsBool(reboot)) {
        fail(r, 400, "params.reboot: expected true or false");
        return;
    }
    if (save_settings(a, &a->settings, r) != 0) return;
    r->result = cJSON_CreateObject();
    if (r->result) cJSON_AddBoolToObject(r->result, "saved", true);
    if (cJSON_IsTrue(reboot)) {
        a->rpc.reboot = true;
        snprintf(r->note, sizeof(r->note), "rebooting");
    }
}

static void m_sys_reboot(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    (void)params;
    a->rpc.reboot = true;
    r->result = NULL;
}

/* ---- MQTT.Pub ---------------------------------------------------------------------- */

/* {"topic": T, "message": M, "qos": 0|1}: handed to the MQTT service as an
 * owner-less publish (no console command waits on it, so a command's pending
 * publish is untouched); answered at once {"queued": true}. The service logs
 * "Published:OK topic:T msg:M" when it completes (QoS 1: PUBACK), after this
 * response, or "E ... MQTT.Pub: mqtt publish: <reason>". 400: bad params;
 * 503: not connected, or too many publishes in flight. */
static void m_mqtt_pub(agent_t *a, const cJSON *params, rpc_reply_t *r)
{
    const cJSON *topic = params ? cJSON_GetObjectItemCaseSensitive(params, "topic") : NULL;
    const cJSON *msg = params ? cJSON_GetObjectItemCaseSensitive(params, "message") : NULL;
    const cJSON *qos = params ? cJSON_GetObjectItemCaseSensitive(params, "qos") : NULL;
    const cJSON *retain = params ? cJSON_GetObjectItemCaseSensitive(params, "retain") : NULL;
    char err[200];
    if (!cJSON_IsString(topic)) {
        fail(r, 400, "params.topic: expected a string");
        return;
    }
    if (!cJSON_IsString(msg)) {
        fail(r, 400, "params.message: expected a string");
        return;
    }
    if (qos && !(cJSON_IsNumber(qos) && (qos->valuedouble == 0 || qos->valuedouble == 1))) {
        fail(r, 400, "params.qos: expected 0 or 1");
        return;
    }
    if (retain && !cJSON_IsFalse(retain)) {
        fail(r, 400, "params.retain: not supported (false or omitted)");
        return;
    }
    uint8_t q = qos && qos->valuedouble == 1 ? 1u : 0u;
    int rc = agent_mqtt_publish_unowned(a, "MQTT.Pub", topic->valuestring, msg->valuestring, q, err,
                                        sizeof(err));
    if (rc != 0) {
        fail(r, rc == -1 ? 400 : 503, "%s", err);
        return;
    }
    r->result = cJSON_CreateObject();
    if (r->result) cJSON_AddBoolToObject(r->result, "queued", true);
}

/* ---- dispatch -------------------------------------------------------------------- */

/* The method by name; false when there is none. Direct calls (no table of
 * function pointers), so that the static stack analysis (bench/stack.py)
 * sees every method's path. */
static bool call_method(agent_t *a, const char *m, const cJSON *params, rpc_reply_t *r)
{
    if (strcmp(m, "Sys.GetInfo") == 0) {
        m_sys_getinfo(a, params, r);
    } else if (strcmp(m, "Sys.Reboot") == 0) {
        m_sys_reboot(a, params, r);
    } else if (strcmp(m, "Config.Get") == 0) {
        m_config_get(a, params, r);
    } else if (strcmp(m, "Config.Set") == 0) {
        m_config_set(a, params, r);
    } else if (strcmp(m, "Config.Save") == 0) {
        m_config_save(a, params, r);
    } else if (strcmp(m, "FS.Put") == 0) {
        m_fs_put(a, params, r);
    } else if (strcmp(m, "FS.List") == 0) {
        m_fs_list(a, params, r);
    } else if (strcmp(m, "FS.Remove") == 0) {
        m_fs_remove(a, params, r);
    } else if (strcmp(m, "MQTT.Pub") == 0) {
        m_mqtt_pub(a, params, r);
    } else {
        return false;
    }
    return true;
}

static bool is_method(const char *m)
{
    static const char *const names[] = {"Sys.GetInfo", "Sys.Reboot", "Config.Get", "Config.Set",
                                        "Config.Save", "FS.Put",     "FS.List",    "FS.Remove",
                                        "MQTT.Pub"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i], m) == 0) return true;
    }
    return false;
}

static void dispatch(agent_t *a, const cJSON *req, rpc_reply_t *r, const char **mname)
{
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
    *mname = "?";
    if (!cJSON_IsString(method)) {
        fail(r, 400, "method: expected a string");
        return;
    }
    *mname = method->valuestring;
    if (!is_method(method->valuestring)) {
        fail(r, 404, "No handler for %s", SHOWN(method->valuestring));
        return;
    }
    if (params && cJSON_IsNull(params)) params = NULL;
    if (params && !cJSON_IsObject(params)) {
        fail(r, 400, "params: expected an object");
        return;
    }
    (void)call_method(a, method->valuestring, params, r);
}

/* The response frame; a response that does not fit a frame becomes a 500
 * (without the request's tag, which may be what made it large). */
static void respond(agent_t *a, const cJSON *id, const cJSON *tag, rpc_reply_t *r)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        cJSON *resp = cJSON_CreateObject();
        if (!resp) break;
        if (cJSON_IsNumber(id)) cJSON_AddNumberToObject(resp, "id", id->valuedouble);
        cJSON_AddStringToObject(resp, "src", RPC_SRC);
        if (attempt == 0 && cJSON_IsString(tag)) cJSON_AddStringToObject(resp, "tag", tag->valuestring);
        if (r->code == 0) {
            if (r->result) {
                cJSON_AddItemToObject(resp, "result", r->result);
                r->result = NULL; /* owned by resp now */
            } else {
                cJSON_AddNullToObject(resp, "result");
            }
        } else {
            cJSON *e = cJSON_AddObjectToObject(resp, "error");
            if (e) {
                cJSON_AddNumberToObject(e, "code", r->code);
                cJSON_AddStringToObject(e, "message", r->msg);
            }
        }
        char *text = cJSON_PrintUnformatted(resp);
        cJSON_Delete(resp);
        int rc = text ? agent_output_frame(a, text, strlen(text)) : -1;
        if (text) cJSON_free(text);
        if (rc == 0) return;
        fail(r, 500, "response too large or out of memory");
    }
    agent_log(a, 'E', "rpc: no response sent (too large or out of memory)");
}

static void reboot_now(agent_t *a)
{
    a->rpc.reboot = false;
    agent_log(a, 'I', "rebooting");
    agent_mqtt_disconnect(a, true, "reboot");
    agent_keylog_off(a); /* never outlives the boot it was given in */
    agent_mqtt_export_secrets(a, agent_keylog_sink(a));
    agent_http_export_secrets(a, agent_keylog_sink(a));
    a->port.reboot(a->port.ctx);
    agent_log(a, 'E', "reboot failed"); /* the port returned */
}

void agent_rpc_request(agent_t *a, const char *json, size_t len)
{
    rpc_reply_t r;
    const char *mname;
    memset(&r, 0, sizeof(r));
    unsigned depth = rpc_json_depth(json, len, AGENT_RPC_DEPTH_MAX);
    if (depth > AGENT_RPC_DEPTH_MAX) {
        agent_log(a, 'E', "rpc: frame dropped: JSON nested deeper than %u", (unsigned)AGENT_RPC_DEPTH_MAX);
        return;
    }
    cJSON *req = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(req)) {
        agent_log(a, 'E', "rpc: frame dropped: not a JSON object (%zu bytes)", len);
        if (req) wipe_tree(req);
        cJSON_Delete(req);
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
    dispatch(a, req, &r, &mname);
    char idtext[32] = "none";
    if (cJSON_IsNumber(id)) snprintf(idtext, sizeof(idtext), "%.0f", id->valuedouble);
    if (r.code == 0) {
        agent_log(a, 'I', "rpc: %s id %s: ok%s%s", SHOWN(mname), idtext, r.note[0] ? " " : "", r.note);
    } else {
        agent_log(a, 'E', "rpc: %s id %s: error %d: %s", SHOWN(mname), idtext, r.code, r.msg);
    }
    respond(a, id, cJSON_GetObjectItemCaseSensitive(req, "tag"), &r);
    cJSON_Delete(r.result);
    wipe_tree(req);
    cJSON_Delete(req);
    if (a->rpc.reboot) reboot_now(a);
}

size_t agent_rpc_feed(agent_t *a, uint8_t b, uint8_t pass[4], bool *start)
{
    size_t npass = 0;
    size_t len;
    const char *json;
    *start = false;
    switch (rpc_frame_feed(&a->rpc.frame, b, pass, &npass)) {
    case RPC_EV_START:
        *start = true;
        break;
    case RPC_EV_HANDSHAKE:
        agent_output_raw(a, RPC_HANDSHAKE_REPLY, sizeof(RPC_HANDSHAKE_REPLY) - 1);
        break;
    case RPC_EV_FRAME:
        json = rpc_frame_json(&a->rpc.frame, &len);
        agent_rpc_request(a, json, len);
        rpc_frame_consumed(&a->rpc.frame);
        break;
    case RPC_EV_ERROR:
        agent_log(a, 'E', "rpc: frame dropped: %s", rpc_frame_error(&a->rpc.frame));
        break;
    case RPC_EV_NONE:
        break;
    }
    return npass;
}
