/* Message records in the 4.x commit-log layout (message.md §1), which is also the layout of
 * PULL/QUERY/VIEW response bodies and of the CHECK_TRANSACTION_STATE body. */
#include <assert.h>

#include "proto.h"

/* Fixed part of a v1 record with IPv4 hosts: every field but body, topic and properties. */
#define FIXED_V1_V4 91
#define HOST_V6_EXTRA 12 /* 16 address bytes instead of 4 */
#define BLANK_MIN 8      /* TOTALSIZE + MAGIC */

int32_t proto_body_crc(const void *body, size_t len) {
    return (int32_t)(cm_crc32(0, body, len) & 0x7FFFFFFF);
}

static size_t host_len(int32_t sys_flag, int32_t v6_bit) {
    return (sys_flag & v6_bit) ? 16 + 4 : 4 + 4;
}

size_t proto_record_store_ts_off(int32_t sys_flag) {
    return PROTO_REC_OFF_BORNHOST + host_len(sys_flag, SYSFLAG_BORNHOST_V6);
}

/* v2 only when the topic does not fit v1's int8 length, as RocketMQ 5.x writers do. */
static bool needs_v2(size_t topic_len) {
    return topic_len > 127;
}

size_t proto_record_size(int32_t sys_flag, size_t body_len, size_t topic_len, size_t props_len) {
    size_t size = FIXED_V1_V4 + body_len + topic_len + props_len;
    if (sys_flag & SYSFLAG_BORNHOST_V6) size += HOST_V6_EXTRA;
    if (sys_flag & SYSFLAG_STOREHOST_V6) size += HOST_V6_EXTRA;
    if (needs_v2(topic_len)) size += 1;
    return size;
}

/* A bounded reader over one record: every read checks against the end of the record, so a
 * lying length can only produce RMQ_ERR_MALFORMED, never an out-of-bounds read. */
typedef struct rd {
    const uint8_t *p;
    size_t pos, end;
} rd_t;

static bool rd_has(const rd_t *r, size_t n) {
    return r->end - r->pos >= n;
}

static int32_t rd_i32(rd_t *r) {
    int32_t v = (int32_t)cm_rd32(r->p + r->pos);
    r->pos += 4;
    return v;
}

static int64_t rd_i64(rd_t *r) {
    int64_t v = (int64_t)cm_rd64(r->p + r->pos);
    r->pos += 8;
    return v;
}

static void rd_host(rd_t *r, bool v6, proto_addr_t *a) {
    memset(a, 0, sizeof *a);
    a->ip_len = v6 ? 16 : 4;
    memcpy(a->ip, r->p + r->pos, a->ip_len);
    r->pos += a->ip_len;
    a->port = rd_i32(r);
}

/* Reads a length-prefixed field (length already read) as a view. */
static bool rd_bytes(rd_t *r, int32_t n, const uint8_t **out) {
    if (n < 0 || !rd_has(r, (size_t)n)) return false;
    *out = r->p + r->pos;
    r->pos += (size_t)n;
    return true;
}

/* Everything between TOTALSIZE/MAGIC and BODYLEN; all fixed-width, sized by sysFlag. */
static rmq_err_t decode_fixed(rd_t *r, proto_record_t *rec) {
    rec->body_crc = rd_i32(r);
    rec->queue_id = rd_i32(r);
    rec->flag = rd_i32(r);
    rec->queue_offset = rd_i64(r);
    rec->physical_offset = rd_i64(r);
    rec->sys_flag = rd_i32(r);
    rec->born_timestamp = rd_i64(r);
    /* The hosts' widths are only known now; the minimum size check covered IPv4 widths. */
    size_t rest = host_len(rec->sys_flag, SYSFLAG_BORNHOST_V6) + 8 +
                  host_len(rec->sys_flag, SYSFLAG_STOREHOST_V6) + 4 + 8;
    if (!rd_has(r, rest)) return RMQ_ERR_MALFORMED;
    rd_host(r, rec->sys_flag & SYSFLAG_BORNHOST_V6, &rec->born_host);
    rec->store_timestamp = rd_i64(r);
    rd_host(r, rec->sys_flag & SYSFLAG_STOREHOST_V6, &rec->store_host);
    rec->reconsume_times = rd_i32(r);
    rec->prepared_tx_offset = rd_i64(r);
    return RMQ_OK;
}

/* BODYLEN + BODY, TOPICLEN + TOPIC, PROPLEN + PROPERTIES. Java reads the v1 topic length
 * and the properties length as signed, so negative values are malformed, not large. */
static rmq_err_t decode_variable(rd_t *r, proto_record_t *rec) {
    if (!rd_has(r, 4)) return RMQ_ERR_MALFORMED;
    rec->body_len = rd_i32(r);
    if (!rd_bytes(r, rec->body_len, &rec->body)) return RMQ_ERR_MALFORMED;

    bool v2 = rec->magic == PROTO_MAGIC_V2;
    if (!rd_has(r, v2 ? 2 : 1)) return RMQ_ERR_MALFORMED;
    rec->topic_len = v2 ? (int16_t)cm_rd16(r->p + r->pos) : (int8_t)r->p[r->pos];
    r->pos += v2 ? 2 : 1;
    const uint8_t *topic;
    if (!rd_bytes(r, rec->topic_len, &topic)) return RMQ_ERR_MALFORMED;
    rec->topic = (const char *)topic;

    if (!rd_has(r, 2)) return RMQ_ERR_MALFORMED;
    rec->props_len = (int16_t)cm_rd16(r->p + r->pos);
    r->pos += 2;
    const uint8_t *props;
    if (!rd_bytes(r, rec->props_len, &props)) return RMQ_ERR_MALFORMED;
    rec->props = (const char *)props;

    /* TOTALSIZE must be exactly the fields' sum, as CommitLog.checkMessageAndReturnSize
     * demands; trailing bytes mean the lengths and the total disagree. */
    return r->pos == r->end ? RMQ_OK : RMQ_ERR_MALFORMED;
}

rmq_err_t proto_record_decode(const uint8_t *buf, size_t len, bool check_crc, proto_record_t *rec) {
    memset(rec, 0, sizeof *rec);
    if (len < BLANK_MIN) return RMQ_ERR_TRUNCATED;
    int32_t total = (int32_t)cm_rd32(buf);
    int32_t magic = (int32_t)cm_rd32(buf + 4);
    if (magic == PROTO_MAGIC_BLANK) {
        /* The filler runs to the end of the segment; only its size matters to readers. */
        if (total < BLANK_MIN) return RMQ_ERR_MALFORMED;
        rec->total_size = total;
        rec->magic = magic;
        return RMQ_OK;
    }
    if (magic != PROTO_MAGIC_V1 && magic != PROTO_MAGIC_V2) return RMQ_ERR_BAD_MAGIC;
    size_t min = FIXED_V1_V4 + (magic == PROTO_MAGIC_V2 ? 1 : 0);
    if (total < (int32_t)min) return RMQ_ERR_MALFORMED;
    if ((size_t)total > len) return RMQ_ERR_TRUNCATED;

    rd_t r = {buf, 8, (size_t)total};
    rec->total_size = total;
    rec->magic = magic;
    rmq_err_t err = decode_fixed(&r, rec);
    if (err == RMQ_OK) err = decode_variable(&r, rec);
    if (err != RMQ_OK) {
        memset(rec, 0, sizeof *rec);
        return err;
    }
    if (check_crc && proto_body_crc(rec->body, (size_t)rec->body_len) != rec->body_crc)
        return RMQ_ERR_BAD_CRC;
    return RMQ_OK;
}

/* A host must have the width sysFlag announces (0 counts as an unset IPv4 address). */
static bool host_fits(const proto_addr_t *a, bool v6) {
    return v6 ? a->ip_len == 16 : (a->ip_len == 4 || a->ip_len == 0);
}

static void put_host(uint8_t *p, size_t *pos, const proto_addr_t *a, bool v6) {
    size_t n = v6 ? 16 : 4;
    if (a->ip_len == 0)
        memset(p + *pos, 0, n);
    else
        memcpy(p + *pos, a->ip, n);
    *pos += n;
    cm_wr32(p + *pos, (uint32_t)a->port);
    *pos += 4;
}

static void put32(uint8_t *p, size_t *pos, int32_t v) {
    cm_wr32(p + *pos, (uint32_t)v);
    *pos += 4;
}

static void put64(uint8_t *p, size_t *pos, int64_t v) {
    cm_wr64(p + *pos, (uint64_t)v);
    *pos += 8;
}

static void put_bytes(uint8_t *p, size_t *pos, const void *src, size_t n) {
    if (n) memcpy(p + *pos, src, n);
    *pos += n;
}

static bool encodable(const proto_record_t *rec) {
    bool born6 = rec->sys_flag & SYSFLAG_BORNHOST_V6, store6 = rec->sys_flag & SYSFLAG_STOREHOST_V6;
    if (!host_fits(&rec->born_host, born6) || !host_fits(&rec->store_host, store6)) return false;
    if (rec->body_len < 0 || rec->topic_len < 0 || rec->props_len < 0) return false;
    if (rec->topic_len > INT16_MAX || rec->props_len > INT16_MAX) return false;
    if ((rec->body_len && !rec->body) || (rec->topic_len && !rec->topic) ||
        (rec->props_len && !rec->props))
        return false;
    size_t size = proto_record_size(rec->sys_flag, (size_t)rec->body_len, (size_t)rec->topic_len,
                                    (size_t)rec->props_len);
    return size <= INT32_MAX;
}

rmq_err_t proto_record_encode(const proto_record_t *rec, cm_buf_t *out) {
    if (!encodable(rec)) return RMQ_ERR_INVALID_ARG;
    size_t size = proto_record_size(rec->sys_flag, (size_t)rec->body_len, (size_t)rec->topic_len,
                                    (size_t)rec->props_len);
    bool v2 = needs_v2((size_t)rec->topic_len);
    cm_buf_reserve(out, size);
    uint8_t *p = out->data + out->len;
    size_t pos = 0;
    put32(p, &pos, (int32_t)size);
    put32(p, &pos, v2 ? PROTO_MAGIC_V2 : PROTO_MAGIC_V1);
    put32(p, &pos, proto_body_crc(rec->body, (size_t)rec->body_len));
    put32(p, &pos, rec->queue_id);
    put32(p, &pos, rec->flag);
    put64(p, &pos, rec->queue_offset);
    put64(p, &pos, rec->physical_offset);
    put32(p, &pos, rec->sys_flag);
    put64(p, &pos, rec->born_timestamp);
    put_host(p, &pos, &rec->born_host, rec->sys_flag & SYSFLAG_BORNHOST_V6);
    put64(p, &pos, rec->store_timestamp);
    put_host(p, &pos, &rec->store_host, rec->sys_flag & SYSFLAG_STOREHOST_V6);
    put32(p, &pos, rec->reconsume_times);
    put64(p, &pos, rec->prepared_tx_offset);
    put32(p, &pos, rec->body_len);
    put_bytes(p, &pos, rec->body, (size_t)rec->body_len);
    if (v2) {
        cm_wr16(p + pos, (uint16_t)rec->topic_len);
        pos += 2;
    } else {
        p[pos++] = (uint8_t)rec->topic_len;
    }
    put_bytes(p, &pos, rec->topic, (size_t)rec->topic_len);
    cm_wr16(p + pos, (uint16_t)rec->props_len);
    pos += 2;
    put_bytes(p, &pos, rec->props, (size_t)rec->props_len);
    assert(pos == size); /* proto_record_size and this writer must agree */
    out->len += size;
    return RMQ_OK;
}

/* ---- records as messages */

/* Copies n bytes to *w (the message's own block) and moves *w past them and a NUL. */
static char *put_inline(char **w, const void *src, size_t n) {
    char *t = memcpy(*w, src, n);
    t[n] = '\0';
    *w += n + 1;
    return t;
}

/* The body as the consumer sees it: inflated when COMPRESSED (bounded by max_body; the
 * stored bytes are already bounded by the record), else copied into the message's block. */
static rmq_err_t msg_body(const proto_record_t *rec, size_t max_body, char **w, rmq_msg_t *m) {
    if (!(rec->sys_flag & SYSFLAG_COMPRESSED)) {
        if (rec->body_len > 0) m->body = (uint8_t *)put_inline(w, rec->body, (size_t)rec->body_len);
        m->body_len = (size_t)rec->body_len;
        return RMQ_OK;
    }
    cm_buf_t b = CM_BUF_INIT;
    rmq_err_t err = proto_decompress(rec->sys_flag, rec->body, (size_t)rec->body_len, max_body, &b);
    if (err != RMQ_OK) {
        cm_buf_free(&b);
        return err;
    }
    m->body = b.data;
    m->body_len = b.len;
    return RMQ_OK;
}

rmq_err_t proto_msg_from_record(const proto_record_t *rec, size_t max_body, rmq_msg_t **out) {
    return proto_msg_from_record_at(rec, max_body, NULL, out);
}

rmq_err_t proto_msg_from_record_at(const proto_record_t *rec, size_t max_body,
                                   const char *broker_name, rmq_msg_t **out) {
    *out = NULL;
    /* Records built by hand (magic 0) are fine; a BLANK filler is not a message. */
    if (rec->magic == PROTO_MAGIC_BLANK || rec->body_len < 0 || rec->topic_len < 0 ||
        rec->props_len < 0)
        return RMQ_ERR_INVALID_ARG;
    char id[64];
    proto_offset_id_format(&rec->store_host, rec->physical_offset, id, sizeof id);
    size_t id_len = strlen(id);
    size_t broker_len = broker_name ? strlen(broker_name) : 0;
    size_t body_len = rec->sys_flag & SYSFLAG_COMPRESSED ? 0 : (size_t)rec->body_len;
    size_t inline_len = (size_t)rec->topic_len + 1 + id_len + 1 +
                        (broker_name ? broker_len + 1 : 0) + (body_len ? body_len + 1 : 0);
    rmq_msg_t *m = cm_calloc(1, sizeof *m + inline_len);
    m->inline_len = inline_len;
    char *w = (char *)(m + 1);
    m->topic = put_inline(&w, rec->topic ? rec->topic : "", (size_t)rec->topic_len);
    m->offset_id = put_inline(&w, id, id_len);
    if (broker_name) m->broker_name = put_inline(&w, broker_name, broker_len);
    rmq_err_t err = msg_body(rec, max_body, &w, m);
    if (err == RMQ_OK) err = proto_props_parse(rec->props, (size_t)rec->props_len, &m->props);
    if (err != RMQ_OK) {
        rmq_msg_destroy(m);
        return err;
    }
    /* sysFlag stays as stored, COMPRESSED included, as Java's decoder leaves it; the body
     * here is always the inflated one. */
    m->flag = rec->flag;
    m->queue_id = rec->queue_id;
    m->queue_offset = rec->queue_offset;
    m->commitlog_offset = rec->physical_offset;
    m->born_timestamp = rec->born_timestamp;
    m->store_timestamp = rec->store_timestamp;
    m->reconsume_times = rec->reconsume_times;
    m->sys_flag = rec->sys_flag;
    m->born_host = rec->born_host;
    m->store_host = rec->store_host;
    *out = m;
    return RMQ_OK;
}
