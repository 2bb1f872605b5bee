/* lib/proto/frame.c: remoting frames (remoting.md §1, §2): the length-prefixed envelope and
 * both header serializations, JSON (Java's default) and ROCKETMQ binary. The decoder checks
 * every length against the bytes that remain before it touches them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto.h"

#define HDR_LEN_MASK 0xFFFFFFu

/* LanguageCode names by ordinal: JSON headers carry the name. */
static const char *const lang_names[] = {
    "JAVA",  "CPP",  "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY",
    "OTHER", "HTTP", "GO",     "PHP",    "OMS",    "RUST",   "NODE_JS",
};
#define LANG_COUNT ((int32_t)(sizeof lang_names / sizeof lang_names[0]))

const char *proto_lang_name(int32_t code) {
    return code >= 0 && code < LANG_COUNT ? lang_names[code] : "OTHER";
}

/* ================================================================ commands */

void proto_cmd_init(proto_cmd_t *cmd) {
    memset(cmd, 0, sizeof *cmd);
    cmd->serialize = PROTO_SER_JSON;
}

void proto_cmd_free(proto_cmd_t *cmd) {
    cm_free(cmd->remark);
    proto_ext_free(&cmd->ext);
    cm_free(cmd->body);
    proto_cmd_init(cmd);
}

void proto_cmd_request(proto_cmd_t *cmd, int32_t code, int32_t opaque) {
    proto_cmd_init(cmd);
    cmd->code = code;
    cmd->opaque = opaque;
    cmd->language = PROTO_LANG_CPP;
    cmd->version = PROTO_VERSION;
}

void proto_cmd_response(proto_cmd_t *resp, const proto_cmd_t *req, int32_t code,
                        const char *remark) {
    proto_cmd_request(resp, code, req->opaque);
    resp->flag = PROTO_FLAG_RESPONSE;
    resp->serialize = req->serialize;
    resp->remark = remark ? cm_strdup(remark) : NULL;
}

void proto_cmd_set_body(proto_cmd_t *cmd, const void *body, size_t len) {
    uint8_t *copy = NULL;
    if (len) {
        copy = cm_malloc(len);
        memcpy(copy, body, len);
    }
    proto_cmd_take_body(cmd, copy, len);
}

void proto_cmd_take_body(proto_cmd_t *cmd, uint8_t *body, size_t len) {
    cm_free(cmd->body);
    if (len == 0) {
        cm_free(body);
        body = NULL;
    }
    cmd->body = body;
    cmd->body_len = len;
}

/* ================================================================ frame envelope */

rmq_err_t proto_frame_size(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_size) {
    if (len < 4) return RMQ_ERR_TRUNCATED;
    if (max_frame == 0) max_frame = PROTO_MAX_FRAME;
    /* Read unsigned: a length with bit 31 set announces 2 GiB or more, not a negative size. */
    uint64_t total = (uint64_t)cm_rd32(buf) + 4;
    if (total > max_frame) return RMQ_ERR_FRAME_TOO_LARGE;
    if (total < 8) return RMQ_ERR_MALFORMED; /* no room for the header-length word */
    *frame_size = (size_t)total;
    return RMQ_OK;
}

/* ================================================================ decoded ext fields */

typedef struct ext_ref {
    const char *key;
    size_t pos;
} ext_ref_t;

static int ext_ref_cmp(const void *a, const void *b) {
    const ext_ref_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* A repeated key keeps its first place and takes its last value, as proto_ext_set would do
 * (and as Java's HashMap reads it). The texts stay in the ext's pool. */
static void ext_drop_dupes(proto_ext_t *ext, ext_ref_t *refs, size_t n) {
    for (size_t i = 0, j; i < n; i = j + 1) {
        for (j = i; j + 1 < n && strcmp(refs[j + 1].key, refs[i].key) == 0;)
            j++;
        if (j == i) continue;
        char *last = ext->vals[refs[j].pos];
        ext->vals[refs[j].pos] = ext->vals[refs[i].pos];
        ext->vals[refs[i].pos] = last;
        for (size_t k = i + 1; k <= j; k++)
            ext->keys[refs[k].pos] = NULL;
    }
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (!ext->keys[r]) continue;
        ext->keys[w] = ext->keys[r];
        ext->vals[w++] = ext->vals[r];
    }
    ext->count = w;
}

/* A header of a few dozen fields is checked pair by pair, with no allocation (every frame
 * comes here); sorting keeps a 16 MiB frame of tiny fields at O(n log n), not quadratic. */
#define DEDUPE_SCAN_MAX 32

static bool ext_has_dupes(const proto_ext_t *ext) {
    for (size_t i = 1; i < ext->count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(ext->keys[i], ext->keys[j]) == 0) return true;
    return false;
}

static void ext_dedupe(proto_ext_t *ext) {
    size_t n = ext->count;
    if (n < 2 || (n <= DEDUPE_SCAN_MAX && !ext_has_dupes(ext))) return;
    ext_ref_t *refs = cm_malloc(n * sizeof *refs);
    for (size_t i = 0; i < n; i++)
        refs[i] = (ext_ref_t){ext->keys[i], i};
    qsort(refs, n, sizeof *refs, ext_ref_cmp);
    ext_drop_dupes(ext, refs, n);
    cm_free(refs);
}

/* ================================================================ JSON header */

/* A header integer. Absent or null leaves Java's default 0; anything but a number that fits
 * int32 makes the header undecodable. */
static bool json_int32(const proto_json_t *v, int32_t *out) {
    if (!v || v->type == PJ_NULL) return true;
    if (v->type != PJ_NUMBER || v->i < INT32_MIN || v->i > INT32_MAX || (double)v->i != v->d)
        return false;
    *out = (int32_t)v->i;
    return true;
}

/* Language by enum name or by ordinal. An unknown name becomes OTHER: a newer peer's
 * language must not make its frames undecodable. */
static bool json_language(const proto_json_t *v, int32_t *out) {
    if (v && v->type == PJ_STRING) {
        for (int32_t i = 0; i < LANG_COUNT; i++) {
            if (strcmp(v->s, lang_names[i]) == 0) {
                *out = i;
                return true;
            }
        }
        *out = PROTO_LANG_OTHER;
        return true;
    }
    return json_int32(v, out);
}

/* Text of an extFields value, in ext's pool: strings as they are, numbers and booleans as
 * Java would print them, nested JSON as JSON text. NULL for a JSON null (skipped, as Java
 * skips nulls). */
static char *json_to_text(proto_ext_t *ext, const proto_json_t *v) {
    switch (v->type) {
    case PJ_NULL:
        return NULL;
    case PJ_STRING:
        return proto_ext_text(ext, v->s, v->len);
    case PJ_BOOL:
        return proto_ext_text(ext, v->b ? "true" : "false", v->b ? 4 : 5);
    default: {
        cm_buf_t b = CM_BUF_INIT;
        proto_json_write(&b, v);
        char *t = proto_ext_text(ext, (const char *)b.data, b.len);
        cm_buf_free(&b);
        return t;
    }
    }
}

/* A C string cannot hold a NUL; a header text with one would change meaning if cut. */
static bool has_nul(const proto_json_t *v) {
    return v->type == PJ_STRING && memchr(v->s, '\0', v->len) != NULL;
}

static rmq_err_t json_ext(const proto_json_t *obj, proto_cmd_t *cmd) {
    if (!obj || obj->type == PJ_NULL) return RMQ_OK;
    if (obj->type != PJ_OBJECT) return RMQ_ERR_BAD_JSON;
    cmd->has_ext = true;
    for (size_t i = 0; i < obj->len; i++) {
        const proto_json_t *k = obj->keys[i], *v = obj->items[i];
        if (k->type != PJ_STRING && k->type != PJ_NUMBER) return RMQ_ERR_BAD_JSON;
        if (has_nul(k) || has_nul(v)) return RMQ_ERR_MALFORMED;
        char *val = json_to_text(&cmd->ext, v);
        if (val) proto_ext_append(&cmd->ext, json_to_text(&cmd->ext, k), val);
    }
    ext_dedupe(&cmd->ext);
    return RMQ_OK;
}

static rmq_err_t json_header_fields(const proto_json_t *h, proto_cmd_t *cmd) {
    if (h->type != PJ_OBJECT) return RMQ_ERR_BAD_JSON;
    if (!json_int32(proto_json_get(h, "code"), &cmd->code) ||
        !json_language(proto_json_get(h, "language"), &cmd->language) ||
        !json_int32(proto_json_get(h, "version"), &cmd->version) ||
        !json_int32(proto_json_get(h, "opaque"), &cmd->opaque) ||
        !json_int32(proto_json_get(h, "flag"), &cmd->flag))
        return RMQ_ERR_BAD_JSON;
    const proto_json_t *remark = proto_json_get(h, "remark");
    if (remark && remark->type != PJ_NULL) {
        if (remark->type != PJ_STRING) return RMQ_ERR_BAD_JSON;
        if (has_nul(remark)) return RMQ_ERR_MALFORMED;
        cmd->remark = cm_strndup(remark->s, remark->len);
    }
    return json_ext(proto_json_get(h, "extFields"), cmd);
}

/* ---------------------------------------------------------------- JSON header fast path
 *
 * Every frame's header is JSON from Java and from librmq, in one plain shape: a flat object
 * with the known keys, integers, and extFields of escape-free strings. Reading that shape
 * straight into cmd saves building a JSON tree (dozens of allocations per frame). Anything
 * else (escapes, other value types, unknown or repeated keys, odd numbers) makes the fast
 * path give up and the general parser decide, so what is accepted and what it means do not
 * change. */

typedef struct lex {
    const char *p, *end;
} lex_t;

static void lex_ws(lex_t *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

/* Skips whitespace, then takes c if it comes next. */
static bool lex_char(lex_t *l, char c) {
    lex_ws(l);
    if (l->p >= l->end || *l->p != c) return false;
    l->p++;
    return true;
}

/* A string without escapes or control characters: its bytes, in place. */
static bool lex_plain_str(lex_t *l, const char **s, size_t *n) {
    if (!lex_char(l, '"')) return false;
    const char *start = l->p;
    while (l->p < l->end && *l->p != '"' && *l->p != '\\' && (unsigned char)*l->p >= 0x20)
        l->p++;
    if (l->p >= l->end || *l->p != '"') return false;
    *s = start;
    *n = (size_t)(l->p - start);
    l->p++;
    return true;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Undoes, in place, the escapes of a NUL-terminated string: the one-character ones and
 * \u00XX for ASCII (Java writes the property separators \u0001 and \u0002 that way).
 * False for any other \u escape (NUL, non-ASCII, surrogates: the general parser's job). */
static bool unescape_ascii(char *t) {
    static const char names[] = "\"\\/bfnrt", bytes[] = "\"\\/\b\f\n\r\t";
    char *w = t;
    for (const char *r = t; *r;) {
        if (*r != '\\') {
            *w++ = *r++;
            continue;
        }
        r++;
        if (*r == 'u') {
            int v = 0;
            for (int i = 1; i <= 4; i++) {
                int d = hex_val(r[i]); /* the NUL stops this before the end */
                if (d < 0) return false;
                v = v * 16 + d;
            }
            if (v == 0 || v >= 0x80) return false;
            *w++ = (char)v;
            r += 5;
            continue;
        }
        const char *at = *r ? memchr(names, *r, sizeof names - 1) : NULL;
        if (!at) return false;
        *w++ = bytes[at - names];
        r++;
    }
    *w = '\0';
    return true;
}

/* An extFields string, copied into ext's pool with its escapes undone (see above). */
static bool lex_ext_str(lex_t *l, proto_ext_t *ext, char **out) {
    if (!lex_char(l, '"')) return false;
    const char *start = l->p;
    bool escaped = false;
    for (; l->p < l->end && *l->p != '"'; l->p++) {
        if ((unsigned char)*l->p < 0x20) return false;
        if (*l->p != '\\') continue;
        escaped = true;
        if (++l->p >= l->end) return false; /* the escaped byte is skipped, a quote too */
    }
    if (l->p >= l->end) return false;
    *out = proto_ext_text(ext, start, (size_t)(l->p - start));
    l->p++;
    return !escaped || unescape_ascii(*out);
}

static bool lex_null(lex_t *l) {
    lex_ws(l);
    if (l->end - l->p < 4 || memcmp(l->p, "null", 4) != 0) return false;
    l->p += 4;
    return true;
}

/* -?digits fitting int32, no leading zero, not followed by a fraction or exponent. */
static bool lex_int32(lex_t *l, int32_t *out) {
    lex_ws(l);
    bool neg = l->p < l->end && *l->p == '-';
    const char *d = l->p + neg, *q = d;
    int64_t v = 0;
    while (q < l->end && *q >= '0' && *q <= '9' && q - d < 11)
        v = v * 10 + (*q++ - '0');
    size_t digits = (size_t)(q - d);
    if (digits == 0 || digits > 10 || (digits > 1 && *d == '0')) return false;
    if (q < l->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9')))
        return false;
    v = neg ? -v : v;
    if (v < INT32_MIN || v > INT32_MAX) return false;
    *out = (int32_t)v;
    l->p = q;
    return true;
}

static bool fast_language(lex_t *l, int32_t *out) {
    const char *s;
    size_t n;
    if (!lex_plain_str(l, &s, &n)) return false;
    *out = PROTO_LANG_OTHER;
    for (int32_t i = 0; i < LANG_COUNT; i++)
        if (strlen(lang_names[i]) == n && memcmp(s, lang_names[i], n) == 0) *out = i;
    return true;
}

static bool fast_remark(lex_t *l, proto_cmd_t *cmd) {
    const char *s;
    size_t n;
    if (lex_null(l)) return true;
    if (!lex_plain_str(l, &s, &n)) return false;
    cmd->remark = cm_strndup(s, n);
    return true;
}

static bool fast_ext(lex_t *l, proto_cmd_t *cmd) {
    if (lex_null(l)) return true;
    if (!lex_char(l, '{')) return false;
    cmd->has_ext = true;
    if (lex_char(l, '}')) return true;
    do {
        char *k, *v;
        if (!lex_ext_str(l, &cmd->ext, &k) || !lex_char(l, ':')) return false;
        if (lex_null(l)) continue; /* Java skips null fields */
        if (!lex_ext_str(l, &cmd->ext, &v)) return false;
        proto_ext_append(&cmd->ext, k, v);
    } while (lex_char(l, ','));
    if (!lex_char(l, '}')) return false;
    ext_dedupe(&cmd->ext);
    return true;
}

/* The value of one known top-level key; false for an unknown or repeated one. */
static bool fast_member(lex_t *l, const char *k, size_t n, unsigned *seen, proto_cmd_t *cmd) {
    static const char *const names[] = {
        "code",     "flag",   "opaque",    "version",
        "language", "remark", "extFields", "serializeTypeCurrentRPC"};
    int idx = -1;
    for (int i = 0; i < 8; i++)
        if (strlen(names[i]) == n && memcmp(k, names[i], n) == 0) idx = i;
    if (idx < 0 || (*seen & (1u << idx))) return false;
    *seen |= 1u << idx;
    const char *s;
    size_t sn;
    switch (idx) {
    case 0:
        return lex_int32(l, &cmd->code);
    case 1:
        return lex_int32(l, &cmd->flag);
    case 2:
        return lex_int32(l, &cmd->opaque);
    case 3:
        return lex_int32(l, &cmd->version);
    case 4:
        return fast_language(l, &cmd->language);
    case 5:
        return fast_remark(l, cmd);
    case 6:
        return fast_ext(l, cmd);
    default:
        return lex_plain_str(l, &s, &sn);
    }
}

static bool json_header_fast(const char *text, size_t len, proto_cmd_t *cmd) {
    lex_t l = {text, text + len};
    unsigned seen = 0;
    if (!lex_char(&l, '{')) return false;
    if (!lex_char(&l, '}')) {
        do {
            const char *k;
            size_t n;
            if (!lex_plain_str(&l, &k, &n) || !lex_char(&l, ':') ||
                !fast_member(&l, k, n, &seen, cmd))
                return false;
        } while (lex_char(&l, ','));
        if (!lex_char(&l, '}')) return false;
    }
    lex_ws(&l);
    return l.p == l.end;
}

static rmq_err_t json_header_decode(const uint8_t *hdr, size_t len, proto_cmd_t *cmd) {
    if (json_header_fast((const char *)hdr, len, cmd)) return RMQ_OK;
    proto_cmd_free(cmd); /* whatever the fast path filled in before it gave up */
    proto_json_t *h;
    rmq_err_t err = proto_json_parse((const char *)hdr, len, &h);
    if (err != RMQ_OK) return err;
    err = json_header_fields(h, cmd);
    proto_json_free(h);
    return err;
}

/* ,"key": */
static void json_key(cm_buf_t *out, const char *key) {
    cm_buf_append(out, ",\"", 2);
    cm_buf_append_str(out, key);
    cm_buf_append(out, "\":", 2);
}

/* Keys in the order fastjson writes them (sorted), nulls left out. Numbers go through
 * cm_buf_put_i64, not printf: this runs for every frame sent. */
static void json_header_encode(const proto_cmd_t *cmd, cm_buf_t *out) {
    cm_buf_append_str(out, "{\"code\":");
    cm_buf_put_i64(out, cmd->code);
    if (cmd->has_ext || cmd->ext.count) {
        json_key(out, "extFields");
        cm_buf_put8(out, '{');
        for (size_t i = 0; i < cmd->ext.count; i++) {
            if (i) cm_buf_put8(out, ',');
            proto_json_put_str(out, cmd->ext.keys[i], strlen(cmd->ext.keys[i]));
            cm_buf_put8(out, ':');
            proto_json_put_str(out, cmd->ext.vals[i], strlen(cmd->ext.vals[i]));
        }
        cm_buf_put8(out, '}');
    }
    json_key(out, "flag");
    cm_buf_put_i64(out, cmd->flag);
    json_key(out, "language");
    if (cmd->language >= 0 && cmd->language < LANG_COUNT) {
        cm_buf_put8(out, '"');
        cm_buf_append_str(out, lang_names[cmd->language]);
        cm_buf_put8(out, '"');
    } else {
        cm_buf_put_i64(out, cmd->language);
    }
    json_key(out, "opaque");
    cm_buf_put_i64(out, cmd->opaque);
    if (cmd->remark) {
        json_key(out, "remark");
        proto_json_put_str(out, cmd->remark, strlen(cmd->remark));
    }
    cm_buf_append_str(out, ",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    cm_buf_put_i64(out, cmd->version);
    cm_buf_put8(out, '}');
}

/* ================================================================ ROCKETMQ binary header */

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static bool rd_u8(reader_t *r, uint8_t *v) {
    if (r->left < 1) return false;
    *v = r->p[0];
    r->p++, r->left--;
    return true;
}

static bool rd_i16(reader_t *r, int16_t *v) {
    if (r->left < 2) return false;
    *v = (int16_t)cm_rd16(r->p);
    r->p += 2, r->left -= 2;
    return true;
}

static bool rd_i32(reader_t *r, int32_t *v) {
    if (r->left < 4) return false;
    *v = (int32_t)cm_rd32(r->p);
    r->p += 4, r->left -= 4;
    return true;
}

/* A length-prefixed text: fails when the length is negative, exceeds what is left, or the
 * text holds a NUL (see has_nul). */
static bool rd_span(reader_t *r, int32_t n, const char **text) {
    if (n < 0 || (size_t)n > r->left || memchr(r->p, '\0', (size_t)n)) return false;
    *text = (const char *)r->p;
    r->p += n, r->left -= (size_t)n;
    return true;
}

static bool rd_text(reader_t *r, int32_t n, char **out) {
    const char *t;
    if (!rd_span(r, n, &t)) return false;
    *out = cm_strndup(t, (size_t)n);
    return true;
}

/* ext: repeated {int16 keyLen, key, int32 valLen, value} filling exactly len bytes. */
static bool bin_ext_decode(reader_t *r, proto_cmd_t *cmd) {
    while (r->left) {
        int16_t klen;
        int32_t vlen;
        const char *key, *val;
        if (!rd_i16(r, &klen) || !rd_span(r, klen, &key) || !rd_i32(r, &vlen) ||
            !rd_span(r, vlen, &val))
            return false;
        proto_ext_append(&cmd->ext, proto_ext_text(&cmd->ext, key, (size_t)klen),
                         proto_ext_text(&cmd->ext, val, (size_t)vlen));
    }
    ext_dedupe(&cmd->ext);
    return true;
}

/* Layout: code int16, language byte, version int16, opaque int32, flag int32, remark int32
 * length + bytes, ext int32 length + bytes: 21 fixed bytes (remoting.md §2 says 17, but Java's
 * calTotalLen counts both length words). Every inconsistency inside a complete header is a
 * lie about lengths: MALFORMED. */
static rmq_err_t bin_header_decode(const uint8_t *hdr, size_t len, proto_cmd_t *cmd) {
    reader_t r = {hdr, len};
    int16_t code, version;
    uint8_t lang;
    int32_t remark_len, ext_len;
    if (!rd_i16(&r, &code) || !rd_u8(&r, &lang) || !rd_i16(&r, &version) ||
        !rd_i32(&r, &cmd->opaque) || !rd_i32(&r, &cmd->flag) || !rd_i32(&r, &remark_len))
        return RMQ_ERR_MALFORMED;
    cmd->code = code;
    cmd->language = lang;
    cmd->version = version;
    if (remark_len > 0 && !rd_text(&r, remark_len, &cmd->remark)) return RMQ_ERR_MALFORMED;
    if (remark_len < 0 || !rd_i32(&r, &ext_len) || ext_len < 0 || (size_t)ext_len != r.left)
        return RMQ_ERR_MALFORMED;
    if (!bin_ext_decode(&r, cmd)) return RMQ_ERR_MALFORMED;
    cmd->has_ext = cmd->ext.count > 0; /* binary cannot tell an empty map from none */
    return RMQ_OK;
}

static rmq_err_t bin_header_encode(const proto_cmd_t *cmd, cm_buf_t *out) {
    if (cmd->code < INT16_MIN || cmd->code > INT16_MAX || cmd->version < INT16_MIN ||
        cmd->version > INT16_MAX || cmd->language < 0 || cmd->language > UINT8_MAX)
        return RMQ_ERR_UNSUPPORTED; /* does not fit the binary form: use JSON */
    cm_buf_put16(out, (uint16_t)cmd->code);
    cm_buf_put8(out, (uint8_t)cmd->language);
    cm_buf_put16(out, (uint16_t)cmd->version);
    cm_buf_put32(out, (uint32_t)cmd->opaque);
    cm_buf_put32(out, (uint32_t)cmd->flag);
    size_t rlen = cmd->remark ? strlen(cmd->remark) : 0;
    cm_buf_put32(out, (uint32_t)rlen);
    cm_buf_append(out, cmd->remark, rlen);
    size_t ext_at = out->len;
    cm_buf_put32(out, 0); /* patched below */
    for (size_t i = 0; i < cmd->ext.count; i++) {
        size_t klen = strlen(cmd->ext.keys[i]), vlen = strlen(cmd->ext.vals[i]);
        if (klen > INT16_MAX) return RMQ_ERR_UNSUPPORTED;
        cm_buf_put16(out, (uint16_t)klen);
        cm_buf_append(out, cmd->ext.keys[i], klen);
        cm_buf_put32(out, (uint32_t)vlen);
        cm_buf_append(out, cmd->ext.vals[i], vlen);
    }
    cm_wr32(out->data + ext_at, (uint32_t)(out->len - ext_at - 4));
    return RMQ_OK;
}

/* ================================================================ frames */

rmq_err_t proto_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, proto_cmd_t *cmd) {
    size_t size;
    proto_cmd_init(cmd);
    rmq_err_t err = proto_frame_size(buf, len, max_frame, &size);
    if (err != RMQ_OK) return err;
    if (len < size) return RMQ_ERR_TRUNCATED;
    if (len > size) return RMQ_ERR_MALFORMED; /* bytes beyond what the length field announces */
    uint32_t word = cm_rd32(buf + 4);
    size_t hlen = word & HDR_LEN_MASK;
    if (hlen > size - 8) return RMQ_ERR_MALFORMED;
    uint8_t ser = (uint8_t)(word >> 24);
    const uint8_t *hdr = buf + 8;
    if (ser == PROTO_SER_JSON)
        err = json_header_decode(hdr, hlen, cmd);
    else if (ser == PROTO_SER_ROCKETMQ)
        err = bin_header_decode(hdr, hlen, cmd);
    else
        err = RMQ_ERR_UNSUPPORTED;
    if (err != RMQ_OK) {
        proto_cmd_free(cmd);
        return err;
    }
    cmd->serialize = ser;
    proto_cmd_set_body(cmd, hdr + hlen, size - 8 - hlen);
    return RMQ_OK;
}

rmq_err_t proto_frame_encode(const proto_cmd_t *cmd, cm_buf_t *out) {
    size_t start = out->len;
    cm_buf_put32(out, 0); /* total length, patched below */
    cm_buf_put32(out, 0); /* serialize type + header length */
    rmq_err_t err = RMQ_OK;
    if (cmd->serialize == PROTO_SER_JSON)
        json_header_encode(cmd, out);
    else if (cmd->serialize == PROTO_SER_ROCKETMQ)
        err = bin_header_encode(cmd, out);
    else
        err = RMQ_ERR_UNSUPPORTED;
    size_t hlen = out->len - start - 8;
    if (err == RMQ_OK && hlen > HDR_LEN_MASK) err = RMQ_ERR_FRAME_TOO_LARGE;
    if (err == RMQ_OK && 4 + hlen + cmd->body_len > INT32_MAX) err = RMQ_ERR_FRAME_TOO_LARGE;
    if (err != RMQ_OK) {
        out->len = start; /* leave out as it was */
        return err;
    }
    cm_buf_append(out, cmd->body, cmd->body_len);
    cm_wr32(out->data + start, (uint32_t)(4 + hlen + cmd->body_len));
    cm_wr32(out->data + start + 4, ((uint32_t)cmd->serialize << 24) | (uint32_t)hlen);
    return RMQ_OK;
}
