/* Message properties: "name\1value\2name\1value" (message.md §3). */
#include "proto.h"

/* A text allocated by itself, not in the pooled block, is freed alone. */
static void free_text(const proto_props_t *p, char *s) {
    cm_free_outside(s, p->pool, p->pool_len);
}

void proto_props_free(proto_props_t *p) {
    for (size_t i = 0; i < p->count; i++) {
        free_text(p, p->names[i]);
        free_text(p, p->vals[i]);
    }
    cm_free(p->names); /* vals shares the block */
    cm_free(p->pool);
    memset(p, 0, sizeof *p);
}

/* names and vals share one block: vals starts at names + cap. */
static void reserve_pairs(proto_props_t *p, size_t cap) {
    if (cap <= p->cap) return;
    char **block = cm_malloc(2 * cap * sizeof *block);
    if (p->count) {
        memcpy(block, p->names, p->count * sizeof *block);
        memcpy(block + cap, p->vals, p->count * sizeof *block);
    }
    cm_free(p->names);
    p->names = block;
    p->vals = block + cap;
    p->cap = cap;
}

/* One block for every text of src and one pair of arrays: a message's properties are
 * copied on every send, so two allocations instead of two per property. */
void proto_props_copy(proto_props_t *dst, const proto_props_t *src) {
    memset(dst, 0, sizeof *dst);
    if (src->count == 0) return;
    size_t total = 0;
    for (size_t i = 0; i < src->count; i++)
        total += strlen(src->names[i]) + strlen(src->vals[i]) + 2;
    reserve_pairs(dst, src->count);
    dst->pool = cm_malloc(total);
    dst->pool_len = total;
    char *w = dst->pool;
    for (size_t i = 0; i < src->count; i++) {
        dst->names[i] = w;
        w = stpcpy(w, src->names[i]) + 1;
        dst->vals[i] = w;
        w = stpcpy(w, src->vals[i]) + 1;
    }
    dst->count = src->count;
}

static ssize_t find_index(const proto_props_t *p, const char *name) {
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->names[i], name) == 0) return (ssize_t)i;
    return -1;
}

const char *proto_props_get(const proto_props_t *p, const char *name) {
    ssize_t i = find_index(p, name);
    return i < 0 ? NULL : p->vals[i];
}

/* Adds name=val (a name p lacks), both kept as they are (copies or pool texts). */
static void append(proto_props_t *p, char *name, char *val) {
    if (p->count == p->cap) reserve_pairs(p, p->cap ? p->cap * 2 : 8);
    p->names[p->count] = name;
    p->vals[p->count] = val;
    p->count++;
}

/* Adds or replaces name with val, both kept as they are (copies or pool texts). */
static void put(proto_props_t *p, char *name, char *val) {
    ssize_t i = find_index(p, name);
    if (i < 0) {
        append(p, name, val);
        return;
    }
    free_text(p, name);
    free_text(p, p->vals[i]);
    p->vals[i] = val;
}

void proto_props_set(proto_props_t *p, const char *name, const char *val) {
    ssize_t i = find_index(p, name);
    if (val && i >= 0) {
        free_text(p, p->vals[i]);
        p->vals[i] = cm_strdup(val);
        return;
    }
    if (val) {
        append(p, cm_strdup(name), cm_strdup(val));
        return;
    }
    if (i < 0) return;
    free_text(p, p->names[i]);
    free_text(p, p->vals[i]);
    memmove(&p->names[i], &p->names[i + 1], (p->count - (size_t)i - 1) * sizeof(char *));
    memmove(&p->vals[i], &p->vals[i + 1], (p->count - (size_t)i - 1) * sizeof(char *));
    p->count--;
}

/* Strict UTF-8 check (no overlongs, no surrogates), so a garbled properties string is
 * reported rather than passed on to consumers. */
static bool valid_utf8(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        /* Properties are mostly ASCII: skip eight such bytes at a time. */
        uint64_t word;
        if (len - i >= 8 && (memcpy(&word, s + i, 8), (word & 0x8080808080808080u) == 0)) {
            i += 8;
            continue;
        }
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len) return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

rmq_err_t proto_props_parse(const char *text, size_t len, proto_props_t *out) {
    memset(out, 0, sizeof *out);
    if (!valid_utf8((const uint8_t *)text, len)) return RMQ_ERR_BAD_PROPERTIES;
    if (len == 0) return RMQ_OK;
    /* The texts stay in one copy of the string, the separators turned into NULs. */
    size_t pairs = 1;
    for (const char *q = text; (q = memchr(q, PROTO_PROP_SEP, len - (size_t)(q - text))); q++)
        pairs++;
    out->pool = cm_malloc(len + 1);
    out->pool_len = len + 1;
    memcpy(out->pool, text, len);
    out->pool[len] = '\0';
    reserve_pairs(out, pairs);
    size_t pos = 0;
    proto_prop_pair_t pp;
    while (proto_props_next(out->pool, len, &pos, &pp)) {
        if (!pp.val) {
            proto_props_free(out);
            return RMQ_ERR_BAD_PROPERTIES;
        }
        if (pp.name_len == 0 || pp.val_len == 0) continue; /* Java keeps only complete pairs */
        if (memchr(pp.name, '\0', pp.name_len) || memchr(pp.val, '\0', pp.val_len)) {
            proto_props_free(out);
            return RMQ_ERR_BAD_PROPERTIES;
        }
        char *name = (char *)pp.name, *val = (char *)pp.val; /* in out->pool */
        name[pp.name_len] = '\0';
        val[pp.val_len] = '\0';
        put(out, name, val);
    }
    return RMQ_OK;
}

static bool adds_default(const proto_props_t *p, const char *dflt_name) {
    return dflt_name && !proto_props_get(p, dflt_name);
}

size_t proto_props_encoded_len(const proto_props_t *p, const char *dflt_name,
                               const char *dflt_val) {
    size_t pairs = p->count, n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += strlen(p->names[i]) + 1 + strlen(p->vals[i]);
    if (adds_default(p, dflt_name)) {
        pairs++;
        n += strlen(dflt_name) + 1 + strlen(dflt_val);
    }
    return n + (pairs ? pairs - 1 : 0);
}

static char *write_pair(char *dst, bool first, const char *name, const char *val) {
    if (!first) *dst++ = PROTO_PROP_SEP;
    dst = stpcpy(dst, name);
    *dst++ = PROTO_NAME_SEP;
    return stpcpy(dst, val);
}

char *proto_props_write(const proto_props_t *p, const char *dflt_name, const char *dflt_val,
                        char *dst) {
    *dst = '\0';
    for (size_t i = 0; i < p->count; i++)
        dst = write_pair(dst, i == 0, p->names[i], p->vals[i]);
    if (adds_default(p, dflt_name)) dst = write_pair(dst, p->count == 0, dflt_name, dflt_val);
    return dst;
}

void proto_props_encode(const proto_props_t *p, cm_buf_t *out) {
    size_t n = proto_props_encoded_len(p, NULL, NULL);
    cm_buf_reserve(out, n + 1);
    proto_props_write(p, NULL, NULL, (char *)out->data + out->len);
    out->len += n;
}

bool proto_props_next(const char *text, size_t len, size_t *pos, proto_prop_pair_t *out) {
    while (*pos < len) {
        const char *pair = text + *pos;
        const char *end = memchr(pair, PROTO_PROP_SEP, len - *pos);
        size_t pair_len = end ? (size_t)(end - pair) : len - *pos;
        *pos += pair_len + (end ? 1 : 0);
        if (pair_len == 0) continue;
        const char *sep = memchr(pair, PROTO_NAME_SEP, pair_len);
        out->name = pair;
        out->name_len = sep ? (size_t)(sep - pair) : pair_len;
        out->val = sep ? sep + 1 : NULL;
        out->val_len = sep ? pair_len - out->name_len - 1 : 0;
        return true;
    }
    return false;
}

bool proto_props_find(const char *text, size_t len, const char *name, const char **val,
                      size_t *val_len) {
    size_t name_len = strlen(name), pos = 0;
    bool found = false;
    proto_prop_pair_t pp;
    while (proto_props_next(text, len, &pos, &pp)) {
        if (!pp.val || pp.val_len == 0 || pp.name_len != name_len ||
            memcmp(pp.name, name, name_len) != 0)
            continue;
        *val = pp.val;
        *val_len = pp.val_len;
        found = true; /* keep going: the last one wins */
    }
    return found;
}

/* MessageConst.STRING_HASH_SET: names the Java client will not take as user properties. */
static const char *const reserved[] = {
    "TRACE_ON", "MSG_REGION", "KEYS", "TAGS", "WAIT", "DELAY", "RETRY_TOPIC", "REAL_TOPIC",
    "REAL_QID", "TRAN_MSG", "PGROUP", "MIN_OFFSET", "MAX_OFFSET", "BUYER_ID",
    "ORIGIN_MESSAGE_ID", "TRANSFER_FLAG", "CORRECTION_FLAG", "MQ2_FLAG", "RECONSUME_TIME",
    "UNIQ_KEY", "MAX_RECONSUME_TIMES", "CONSUME_START_TIME", "TRAN_PREPARED_QUEUE_OFFSET",
    "TRANSACTION_CHECK_TIMES", "CHECK_IMMUNITY_TIME_IN_SECONDS", "INSTANCE_ID",
    "CORRELATION_ID", "REPLY_TO_CLIENT", "TTL", "ARRIVE_TIME", "PUSH_REPLY_TIME", "CLUSTER",
    "MSG_TYPE", "INNER_MULTI_QUEUE_OFFSET", "INNER_MULTI_DISPATCH", "__SHARDINGKEY",
    "TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS", "__transactionId__", NULL};

bool proto_props_reserved(const char *name) {
    for (const char *const *r = reserved; *r; r++)
        if (strcmp(*r, name) == 0) return true;
    return false;
}

bool proto_parse_long(const char *v, size_t len, int64_t *out) {
    size_t i = len && (v[0] == '-' || v[0] == '+') ? 1 : 0;
    if (i == len || len - i > 18) return false;
    int64_t n = 0;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        n = n * 10 + (v[i] - '0');
    }
    *out = v[0] == '-' ? -n : n;
    return true;
}
