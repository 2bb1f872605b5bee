/* lib/proto/ext.c: extFields, the flattened custom header of a remoting command: an ordered
 * list of text pairs. Typed reads follow Java's Long.parseLong / Boolean rules closely enough
 * to accept everything a Java peer writes, and flag anything else as malformed. */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "proto.h"

/* A block of the text pool; texts are bump-allocated from the newest block (its free part
 * is the ext's room). */
struct proto_ext_pool {
    proto_ext_pool_t *next;
    size_t cap;
    char data[];
};

/* A send request's header (14 fields) fits the first block, texts and arrays: the first
 * FIRST_CAP pairs' arrays sit at the start of the first block, so a header costs one
 * allocation; larger arrays are allocated on their own. */
#define POOL_FIRST 384 /* with the arrays, within what glibc serves from its per-thread cache */
#define POOL_MAX_STEP (64 * 1024)
#define FIRST_CAP 16
#define ARRAYS_SIZE(cap) (2 * (cap) * sizeof(char *) + 2 * (cap) * sizeof(size_t))

void proto_ext_free(proto_ext_t *ext) {
    if (ext->cap > FIRST_CAP) cm_free(ext->keys); /* vals and lens share the block */
    for (proto_ext_pool_t *p = ext->pool, *next; p; p = next) {
        next = p->next;
        cm_free(p);
    }
    memset(ext, 0, sizeof *ext);
}

/* The arrays of cap pairs at block. */
static void ext_set_arrays(proto_ext_t *ext, void *block, size_t cap) {
    ext->keys = block;
    ext->vals = ext->keys + cap;
    ext->lens = (size_t *)(ext->keys + 2 * cap);
    ext->cap = cap;
}

/* An ext's first block (no pool yet means no arrays yet either): the first arrays, then room
 * for at least text_room bytes of text. */
static void ext_head_block(proto_ext_t *ext, size_t text_room) {
    size_t cap = ARRAYS_SIZE(FIRST_CAP) + (text_room > POOL_FIRST ? text_room : POOL_FIRST);
    proto_ext_pool_t *b = cm_malloc(sizeof *b + cap);
    b->next = NULL;
    b->cap = cap;
    ext->pool = b;
    ext_set_arrays(ext, b->data, FIRST_CAP);
    ext->room = b->data + ARRAYS_SIZE(FIRST_CAP);
    ext->room_len = cap - ARRAYS_SIZE(FIRST_CAP);
}

/* proto_ext_alloc's slow path: n is at least what is left of the newest block. */
char *proto_ext_alloc_block(proto_ext_t *ext, size_t n) {
    if (!ext->pool) ext_head_block(ext, n);
    if (ext->room_len < n) {
        /* Blocks double (bounded), so a large header costs few allocations. */
        proto_ext_pool_t *p = ext->pool;
        size_t cap = p->cap < POOL_MAX_STEP ? p->cap * 2 : p->cap;
        if (cap < n) cap = n;
        proto_ext_pool_t *b = cm_malloc(sizeof *b + cap);
        b->next = p;
        b->cap = cap;
        ext->pool = b;
        ext->room = b->data;
        ext->room_len = cap;
    }
    char *d = ext->room;
    ext->room += n;
    ext->room_len -= n;
    return d;
}

char *proto_ext_text(proto_ext_t *ext, const char *s, size_t n) {
    char *d = proto_ext_alloc(ext, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void proto_ext_grow(proto_ext_t *ext) {
    if (!ext->pool) {
        ext_head_block(ext, 0);
        return;
    }
    proto_ext_t old = *ext;
    ext_set_arrays(ext, cm_malloc(ARRAYS_SIZE(old.cap * 2)), old.cap * 2);
    memcpy(ext->keys, old.keys, old.count * sizeof *ext->keys);
    memcpy(ext->vals, old.vals, old.count * sizeof *ext->vals);
    memcpy(ext->lens, old.lens, old.count * sizeof *ext->lens);
    memcpy(ext->lens + ext->cap, old.lens + old.cap, old.count * sizeof *ext->lens);
    if (old.cap > FIRST_CAP) cm_free(old.keys);
}

void proto_ext_append(proto_ext_t *ext, char *key, char *val) {
    proto_ext_push(ext, key, strlen(key), val, strlen(val));
}

static ssize_t ext_find(const proto_ext_t *ext, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < ext->count; i++)
        if (ext->lens[i] == n && memcmp(ext->keys[i], key, n) == 0) return (ssize_t)i;
    return -1;
}

static void ext_remove(proto_ext_t *ext, size_t at) {
    size_t tail = ext->count - at - 1;
    memmove(ext->keys + at, ext->keys + at + 1, tail * sizeof *ext->keys);
    memmove(ext->vals + at, ext->vals + at + 1, tail * sizeof *ext->vals);
    memmove(ext->lens + at, ext->lens + at + 1, tail * sizeof *ext->lens);
    size_t *vlens = ext->lens + ext->cap;
    memmove(vlens + at, vlens + at + 1, tail * sizeof *vlens);
    ext->count--;
}

/* A NULL val removes the key: Java leaves null header fields out of extFields. */
void proto_ext_set(proto_ext_t *ext, const char *key, const char *val) {
    ssize_t at = ext_find(ext, key);
    if (!val) {
        if (at >= 0) ext_remove(ext, (size_t)at);
        return;
    }
    size_t vlen = strlen(val);
    char *v = proto_ext_text(ext, val, vlen);
    if (at >= 0) {
        ext->vals[at] = v;
        ext->lens[ext->cap + (size_t)at] = vlen;
        return;
    }
    size_t klen = strlen(key);
    proto_ext_push(ext, proto_ext_text(ext, key, klen), klen, v, vlen);
}

void proto_ext_set_int(proto_ext_t *ext, const char *key, int64_t val) {
    char text[CM_I64_TEXT];
    cm_i64_text(val, text);
    proto_ext_set(ext, key, text);
}

void proto_ext_set_bool(proto_ext_t *ext, const char *key, bool val) {
    proto_ext_set(ext, key, val ? "true" : "false");
}

const char *proto_ext_get(const proto_ext_t *ext, const char *key) {
    ssize_t at = ext_find(ext, key);
    return at >= 0 ? ext->vals[at] : NULL;
}

/* Decimal int64 with an optional sign, nothing else (no spaces, no hex), overflow refused:
 * the set Long.parseLong accepts for ASCII digits. */
static bool parse_int64(const char *s, int64_t *out) {
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!*s) return false;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t u = 0;
    for (size_t n = 0; *s; s++, n++) {
        unsigned d = (unsigned)(unsigned char)*s - '0';
        if (d > 9) return false;
        /* 18 digits cannot overflow; from the 19th each one is checked. */
        if (n >= 18 && u > (limit - d) / 10) return false;
        u = u * 10 + d;
    }
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

rmq_err_t proto_ext_parse_int(const char *v, int64_t *out) {
    if (!v) return RMQ_ERR_NOT_FOUND;
    return parse_int64(v, out) ? RMQ_OK : RMQ_ERR_MALFORMED;
}

rmq_err_t proto_ext_get_int(const proto_ext_t *ext, const char *key, int64_t *out) {
    return proto_ext_parse_int(proto_ext_get(ext, key), out);
}

/* Java's Boolean.parseBoolean ignores case; anything but true/false is refused here rather
 * than silently read as false. */
rmq_err_t proto_ext_get_bool(const proto_ext_t *ext, const char *key, bool *out) {
    return proto_ext_parse_bool(proto_ext_get(ext, key), out);
}

/* s equals lower (a lower-case ASCII word) ignoring ASCII case, as strcasecmp does for it. */
static bool word_is(const char *s, const char *lower) {
    for (; *lower; s++, lower++)
        if ((*s | 0x20) != *lower) return false; /* only a letter's two cases map to it */
    return *s == '\0';
}

rmq_err_t proto_ext_parse_bool(const char *v, bool *out) {
    if (!v) return RMQ_ERR_NOT_FOUND;
    if (word_is(v, "true"))
        *out = true;
    else if (word_is(v, "false"))
        *out = false;
    else
        return RMQ_ERR_MALFORMED;
    return RMQ_OK;
}
