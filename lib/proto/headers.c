/* lib/proto/headers.c: typed custom headers (remoting.md §4-§5). Each header is a table of
 * field descriptors (wire key, C type, offset, required/optional rules); one generic codec
 * moves fields between the struct and extFields, so a header costs a table, not code. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "proto.h"

typedef enum hf_type { HF_STR, HF_I32, HF_I64, HF_BOOL } hf_type_t;

enum hf_flags {
    HF_REQ = 0x1,    /* required: decode fails when absent, encode always writes */
    HF_HAS = 0x2,    /* optional number with a presence flag at has_off */
    HF_SPARSE = 0x4, /* optional bool written only when true (peers that predate it) */
};

typedef struct hdr_field {
    const char *key;
    uint8_t klen; /* strlen(key) */
    uint8_t type;
    uint8_t flags;
    uint16_t off;
    uint16_t has_off;
    int64_t def;       /* HF_I32 / HF_I64 / HF_BOOL default */
    const char *def_s; /* HF_STR default (a static string) */
} hdr_field_t;

typedef struct hdr_desc {
    const hdr_field_t *fields;
    size_t count;
    size_t size; /* sizeof the struct */
} hdr_desc_t;

/* Table entries; HT names the struct type of the table being written, key is a literal. */
#define F_STR(m, key, fl, d)                                                                       \
    { key, sizeof key - 1, HF_STR, fl, offsetof(HT, m), 0, 0, d }
#define F_I32(m, key, fl, d)                                                                       \
    { key, sizeof key - 1, HF_I32, fl, offsetof(HT, m), 0, d, NULL }
#define F_I64(m, key, fl, d)                                                                       \
    { key, sizeof key - 1, HF_I64, fl, offsetof(HT, m), 0, d, NULL }
#define F_BOOL(m, key, fl, d)                                                                      \
    { key, sizeof key - 1, HF_BOOL, fl, offsetof(HT, m), 0, d, NULL }
#define F_I32_HAS(m, key)                                                                          \
    { key, sizeof key - 1, HF_I32, HF_HAS, offsetof(HT, m), offsetof(HT, has_##m), 0, NULL }
#define REQ HF_REQ
#define OPT 0

/* ---------------------------------------------------------------- generic codec */

static void *at(void *h, size_t off) {
    return (char *)h + off;
}

static const void *cat(const void *h, size_t off) {
    return (const char *)h + off;
}

/* Sets field f of h to its default (a presence flag stays as it is: false after a memset). */
static void field_default(const hdr_field_t *f, void *h) {
    switch (f->type) {
    case HF_STR:
        *(const char **)at(h, f->off) = f->def_s;
        break;
    case HF_I32:
        *(int32_t *)at(h, f->off) = (int32_t)f->def;
        break;
    case HF_I64:
        *(int64_t *)at(h, f->off) = f->def;
        break;
    case HF_BOOL:
        *(bool *)at(h, f->off) = f->def != 0;
        break;
    }
}

/* Defaults for fields from..count of a zeroed h. */
static void hdr_defaults(const hdr_desc_t *d, size_t from, void *h) {
    for (size_t i = from; i < d->count; i++)
        field_default(&d->fields[i], h);
}

static void hdr_init(const hdr_desc_t *d, void *h) {
    memset(h, 0, d->size);
    hdr_defaults(d, 0, h);
}

static rmq_err_t field_fail(proto_hdr_err_t *err, const hdr_field_t *f, const char *val) {
    if (err) *err = (proto_hdr_err_t){f->key, val, val == NULL};
    return RMQ_ERR_MALFORMED;
}

/* Reads one present field (its text val); false when val is not of the field's type.
 * Integers follow Java's Integer.parseInt / Long.parseLong: an int field refuses values
 * beyond int32. */
static bool field_read(const hdr_field_t *f, const char *val, void *h) {
    int64_t v;
    switch (f->type) {
    case HF_STR:
        *(const char **)at(h, f->off) = val;
        return true;
    case HF_I32:
        if (proto_ext_parse_int(val, &v) != RMQ_OK || v < INT32_MIN || v > INT32_MAX) return false;
        *(int32_t *)at(h, f->off) = (int32_t)v;
        return true;
    case HF_I64:
        if (proto_ext_parse_int(val, &v) != RMQ_OK) return false;
        *(int64_t *)at(h, f->off) = v;
        return true;
    case HF_BOOL:
        return proto_ext_parse_bool(val, (bool *)at(h, f->off)) == RMQ_OK;
    }
    return false;
}

/* Lengths first, then the bytes (keys are short: no memcmp call). */
static inline bool key_is(const proto_ext_t *ext, size_t i, const hdr_field_t *f) {
    if (proto_ext_key_len(ext, i) != f->klen) return false;
    const char *k = ext->keys[i];
    for (size_t j = 0; j < f->klen; j++)
        if (k[j] != f->key[j]) return false;
    return true;
}

/* A bit per key, picked by length and first byte: a field whose bit is clear is absent
 * without a look at every key (optional fields are often absent). */
static inline uint64_t key_bit(const char *k, size_t n) {
    return (uint64_t)1 << ((n * 7 + (n ? (unsigned char)k[0] : 0)) & 63);
}

/* key's value, looked for first where the previous field was found + 1: a header written
 * by hdr_encode (librmq's own frames) has its fields in table order, so each look-up is
 * one comparison; other orders (Java's HashMap) fall back to the full scan. */
static const char *ext_get_near(const proto_ext_t *ext, uint64_t keys, const hdr_field_t *f,
                                size_t *hint) {
    if (*hint < ext->count && key_is(ext, *hint, f)) return ext->vals[(*hint)++];
    if (!(keys & key_bit(f->key, f->klen))) return NULL;
    for (size_t i = 0; i < ext->count; i++) {
        if (!key_is(ext, i, f)) continue;
        *hint = i + 1;
        return ext->vals[i];
    }
    return NULL;
}

/* Fields are set as they are found, defaults only for the absent ones (not all first, as
 * hdr_init would: most are present). On failure the fields not reached get their defaults
 * too, so h reads as it did when hdr_init ran first. */
static rmq_err_t hdr_decode(const hdr_desc_t *d, const proto_ext_t *ext, void *h,
                            proto_hdr_err_t *err) {
    memset(h, 0, d->size);
    uint64_t keys = 0;
    for (size_t i = 0; i < ext->count; i++)
        keys |= key_bit(ext->keys[i], proto_ext_key_len(ext, i));
    size_t hint = 0;
    for (size_t i = 0; i < d->count; i++) {
        const hdr_field_t *f = &d->fields[i];
        const char *val = ext_get_near(ext, keys, f, &hint);
        if (!val) {
            field_default(f, h);
            if (!(f->flags & HF_REQ)) continue;
            hdr_defaults(d, i + 1, h);
            return field_fail(err, f, NULL);
        }
        if (!field_read(f, val, h)) { /* f is left unset */
            hdr_defaults(d, i, h);
            return field_fail(err, f, val);
        }
        if (f->flags & HF_HAS) *(bool *)at(h, f->has_off) = true;
    }
    return RMQ_OK;
}

/* Sets key: appended without a look-up when the header went into an empty ext (the table's
 * keys are distinct), which is every send and reply. The key is the table's static text
 * (ext texts are never written to), so only the value is copied. */
static void hdr_put(proto_ext_t *ext, bool fresh, const hdr_field_t *f, const char *val,
                    size_t vlen) {
    if (!fresh) {
        proto_ext_set(ext, f->key, val);
        return;
    }
    proto_ext_push(ext, (char *)f->key, f->klen, proto_ext_text(ext, val, vlen), vlen);
}

static void hdr_put_int(proto_ext_t *ext, bool fresh, const hdr_field_t *f, int64_t v) {
    char text[CM_I64_TEXT];
    hdr_put(ext, fresh, f, text, cm_i64_text(v, text));
}

/* Booleans point at static "true" / "false" too. */
static void hdr_put_bool(proto_ext_t *ext, bool fresh, const hdr_field_t *f, bool b) {
    if (fresh)
        proto_ext_push(ext, (char *)f->key, f->klen, (char *)(b ? "true" : "false"), b ? 4 : 5);
    else
        proto_ext_set(ext, f->key, b ? "true" : "false");
}

static void hdr_encode(const hdr_desc_t *d, const void *h, proto_ext_t *ext) {
    bool fresh = ext->count == 0;
    for (size_t i = 0; i < d->count; i++) {
        const hdr_field_t *f = &d->fields[i];
        if ((f->flags & HF_HAS) && !*(const bool *)cat(h, f->has_off)) continue;
        switch (f->type) {
        case HF_STR: {
            const char *s = *(const char *const *)cat(h, f->off);
            if (s || (f->flags & HF_REQ)) hdr_put(ext, fresh, f, s ? s : "", s ? strlen(s) : 0);
            break;
        }
        case HF_I32:
            hdr_put_int(ext, fresh, f, *(const int32_t *)cat(h, f->off));
            break;
        case HF_I64:
            hdr_put_int(ext, fresh, f, *(const int64_t *)cat(h, f->off));
            break;
        case HF_BOOL: {
            bool b = *(const bool *)cat(h, f->off);
            if (b || !(f->flags & HF_SPARSE)) hdr_put_bool(ext, fresh, f, b);
            break;
        }
        }
    }
}

void proto_hdr_err_format(const proto_hdr_err_t *err, char *dst, size_t size) {
    if (err->missing)
        cm_errstr(dst, size, "the custom field <%s> is null", err->field);
    else
        cm_errstr(dst, size, "the custom field <%s> has a bad value: %s", err->field,
                  err->value ? err->value : "");
}

/* Defines proto_X_init/decode/encode over the table X_fields. */
#define HDR_DEFINE(X)                                                                              \
    static const hdr_desc_t X##_desc = {X##_fields, sizeof X##_fields / sizeof X##_fields[0],      \
                                        sizeof(proto_##X##_t)};                                    \
    void proto_##X##_init(proto_##X##_t *h) {                                                      \
        hdr_init(&X##_desc, h);                                                                    \
    }                                                                                              \
    rmq_err_t proto_##X##_decode(const proto_ext_t *ext, proto_##X##_t *h, proto_hdr_err_t *err) { \
        return hdr_decode(&X##_desc, ext, h, err);                                                 \
    }                                                                                              \
    void proto_##X##_encode(const proto_##X##_t *h, proto_ext_t *ext) {                            \
        hdr_encode(&X##_desc, h, ext);                                                             \
    }

/* ---------------------------------------------------------------- send (10, 310, 320) */

/* V1 and V2 share the struct; only the keys differ (remoting.md §5). 4.9.8 writes the V1
 * brokerName as "bname". */
#define HT proto_send_req_t
#define SEND_FIELDS(A, B, C, D, E, F, G, H, I, J, K, L, M, N)                                      \
    F_STR(producer_group, A, REQ, NULL), F_STR(topic, B, REQ, NULL),                               \
        F_STR(default_topic, C, REQ, "TBW102"), F_I32(default_topic_queue_nums, D, REQ, 4),        \
        F_I32(queue_id, E, REQ, 0), F_I32(sys_flag, F, REQ, 0), F_I64(born_timestamp, G, REQ, 0),  \
        F_I32(flag, H, REQ, 0), F_STR(properties, I, OPT, NULL),                                   \
        F_I32(reconsume_times, J, OPT, 0), F_BOOL(unit_mode, K, OPT, 0),                           \
        F_I32_HAS(max_reconsume_times, L), F_BOOL(batch, M, OPT, 0),                               \
        F_STR(broker_name, N, OPT, NULL)
static const hdr_field_t send_v1_fields[] = {
    SEND_FIELDS("producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
                "sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode",
                "maxReconsumeTimes", "batch", "bname")};
static const hdr_field_t send_v2_fields[] = {
    SEND_FIELDS("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n")};
#undef HT

static const hdr_desc_t send_v1_desc = {
    send_v1_fields, sizeof send_v1_fields / sizeof send_v1_fields[0], sizeof(proto_send_req_t)};
static const hdr_desc_t send_v2_desc = {
    send_v2_fields, sizeof send_v2_fields / sizeof send_v2_fields[0], sizeof(proto_send_req_t)};

static const hdr_desc_t *send_desc(int32_t code) {
    switch (code) {
    case PROTO_SEND_MESSAGE:
        return &send_v1_desc;
    case PROTO_SEND_MESSAGE_V2:
    case PROTO_SEND_BATCH_MESSAGE:
        return &send_v2_desc;
    default:
        return NULL;
    }
}

void proto_send_req_init(proto_send_req_t *h) {
    hdr_init(&send_v1_desc, h);
}

/* A 320 is a batch whatever m says: Java's broker picks the batch path by request code. */
rmq_err_t proto_send_req_decode(const proto_ext_t *ext, int32_t code, proto_send_req_t *h,
                                proto_hdr_err_t *err) {
    const hdr_desc_t *d = send_desc(code);
    if (!d) return RMQ_ERR_INVALID_ARG;
    rmq_err_t rc = hdr_decode(d, ext, h, err);
    if (rc == RMQ_OK && code == PROTO_SEND_BATCH_MESSAGE) h->batch = true;
    return rc;
}

rmq_err_t proto_send_req_encode(const proto_send_req_t *h, int32_t code, proto_ext_t *ext) {
    const hdr_desc_t *d = send_desc(code);
    if (!d) return RMQ_ERR_INVALID_ARG;
    proto_send_req_t c = *h;
    if (code == PROTO_SEND_BATCH_MESSAGE) c.batch = true;
    hdr_encode(d, &c, ext);
    return RMQ_OK;
}

#define HT proto_send_resp_t
static const hdr_field_t send_resp_fields[] = {
    F_STR(msg_id, "msgId", REQ, NULL),
    F_I32(queue_id, "queueId", REQ, 0),
    F_I64(queue_offset, "queueOffset", REQ, 0),
    F_STR(transaction_id, "transactionId", OPT, NULL),
    F_STR(msg_region, "MSG_REGION", OPT, "DefaultRegion"),
    F_BOOL(trace_on, "TRACE_ON", OPT, 1),
};
#undef HT
HDR_DEFINE(send_resp)

/* ---------------------------------------------------------------- pull (11) */

#define HT proto_pull_req_t
static const hdr_field_t pull_req_fields[] = {
    F_STR(consumer_group, "consumerGroup", REQ, NULL),
    F_STR(topic, "topic", REQ, NULL),
    F_I32(queue_id, "queueId", REQ, 0),
    F_I64(queue_offset, "queueOffset", REQ, 0),
    F_I32(max_msg_nums, "maxMsgNums", REQ, 0),
    F_I32(sys_flag, "sysFlag", REQ, 0),
    F_I64(commit_offset, "commitOffset", REQ, 0),
    F_I64(suspend_timeout_millis, "suspendTimeoutMillis", REQ, 0),
    F_STR(subscription, "subscription", OPT, NULL),
    F_I64(sub_version, "subVersion", REQ, 0),
    F_STR(expression_type, "expressionType", OPT, "TAG"),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(pull_req)

#define HT proto_pull_resp_t
static const hdr_field_t pull_resp_fields[] = {
    F_I64(suggest_which_broker_id, "suggestWhichBrokerId", REQ, 0),
    F_I64(next_begin_offset, "nextBeginOffset", REQ, 0),
    F_I64(min_offset, "minOffset", REQ, 0),
    F_I64(max_offset, "maxOffset", REQ, 0),
};
#undef HT
HDR_DEFINE(pull_resp)

/* ---------------------------------------------------------------- query (12, 33) */

#define HT proto_query_msg_req_t
static const hdr_field_t query_msg_req_fields[] = {
    F_STR(topic, "topic", REQ, NULL),
    F_STR(key, "key", REQ, NULL),
    F_I32(max_num, "maxNum", REQ, 0),
    F_I64(begin_timestamp, "beginTimestamp", REQ, 0),
    F_I64(end_timestamp, "endTimestamp", REQ, 0),
    F_BOOL(unique_key_query, "_UNIQUE_KEY_QUERY", HF_SPARSE, 0),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(query_msg_req)

#define HT proto_query_msg_resp_t
static const hdr_field_t query_msg_resp_fields[] = {
    F_I64(index_last_update_timestamp, "indexLastUpdateTimestamp", REQ, 0),
    F_I64(index_last_update_phyoffset, "indexLastUpdatePhyoffset", REQ, 0),
};
#undef HT
HDR_DEFINE(query_msg_resp)

#define HT proto_consume_direct_req_t
static const hdr_field_t consume_direct_req_fields[] = {
    F_STR(consumer_group, "consumerGroup", REQ, NULL),
    F_STR(client_id, "clientId", OPT, NULL),
    F_STR(msg_id, "msgId", OPT, NULL),
    F_STR(broker_name, "brokerName", OPT, NULL),
};
#undef HT
HDR_DEFINE(consume_direct_req)

#define HT proto_view_msg_req_t
static const hdr_field_t view_msg_req_fields[] = {
    F_I64(offset, "offset", REQ, 0),
    F_STR(topic, "topic", OPT, NULL),
};
#undef HT
HDR_DEFINE(view_msg_req)

/* ---------------------------------------------------------------- offsets (14, 15, 29-32) */

#define HT proto_query_consumer_offset_req_t
static const hdr_field_t query_consumer_offset_req_fields[] = {
    F_STR(consumer_group, "consumerGroup", REQ, NULL),
    F_STR(topic, "topic", REQ, NULL),
    F_I32(queue_id, "queueId", REQ, 0),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(query_consumer_offset_req)

#define HT proto_offset_resp_t
static const hdr_field_t offset_resp_fields[] = {
    F_I64(offset, "offset", REQ, 0),
};
#undef HT
HDR_DEFINE(offset_resp)

#define HT proto_update_consumer_offset_req_t
static const hdr_field_t update_consumer_offset_req_fields[] = {
    F_STR(consumer_group, "consumerGroup", REQ, NULL),
    F_STR(topic, "topic", REQ, NULL),
    F_I32(queue_id, "queueId", REQ, 0),
    F_I64(commit_offset, "commitOffset", REQ, 0),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(update_consumer_offset_req)

#define HT proto_search_offset_req_t
static const hdr_field_t search_offset_req_fields[] = {
    F_STR(topic, "topic", REQ, NULL),
    F_I32(queue_id, "queueId", REQ, 0),
    F_I64(timestamp, "timestamp", REQ, 0),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(search_offset_req)

#define HT proto_queue_req_t
static const hdr_field_t queue_req_fields[] = {
    F_STR(topic, "topic", REQ, NULL),
    F_I32(queue_id, "queueId", REQ, 0),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(queue_req)

#define HT proto_storetime_resp_t
static const hdr_field_t storetime_resp_fields[] = {
    F_I64(timestamp, "timestamp", REQ, 0),
};
#undef HT
HDR_DEFINE(storetime_resp)

/* ---------------------------------------------------------------- topics (17) */

#define HT proto_create_topic_req_t
static const hdr_field_t create_topic_req_fields[] = {
    F_STR(topic, "topic", REQ, NULL),
    F_STR(default_topic, "defaultTopic", REQ, "TBW102"),
    F_I32(read_queue_nums, "readQueueNums", REQ, 0),
    F_I32(write_queue_nums, "writeQueueNums", REQ, 0),
    F_I32(perm, "perm", REQ, 0),
    F_STR(topic_filter_type, "topicFilterType", REQ, "SINGLE_TAG"),
    F_I32(topic_sys_flag, "topicSysFlag", OPT, 0),
    F_BOOL(order, "order", REQ, 0),
};
#undef HT
HDR_DEFINE(create_topic_req)

/* ---------------------------------------------------------------- clients, groups (35-40) */

#define HT proto_unregister_client_req_t
static const hdr_field_t unregister_client_req_fields[] = {
    F_STR(client_id, "clientID", REQ, NULL),
    F_STR(producer_group, "producerGroup", OPT, NULL),
    F_STR(consumer_group, "consumerGroup", OPT, NULL),
};
#undef HT
HDR_DEFINE(unregister_client_req)

#define HT proto_send_back_req_t
static const hdr_field_t send_back_req_fields[] = {
    F_I64(offset, "offset", REQ, 0),
    F_STR(group, "group", REQ, NULL),
    F_I32(delay_level, "delayLevel", REQ, 0),
    F_STR(origin_msg_id, "originMsgId", OPT, NULL),
    F_STR(origin_topic, "originTopic", OPT, NULL),
    F_BOOL(unit_mode, "unitMode", OPT, 0),
    F_I32_HAS(max_reconsume_times, "maxReconsumeTimes"),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(send_back_req)

#define HT proto_end_tx_req_t
static const hdr_field_t end_tx_req_fields[] = {
    F_STR(producer_group, "producerGroup", REQ, NULL),
    F_I64(tran_state_table_offset, "tranStateTableOffset", REQ, 0),
    F_I64(commit_log_offset, "commitLogOffset", REQ, 0),
    F_I32(commit_or_rollback, "commitOrRollback", REQ, 0),
    F_BOOL(from_transaction_check, "fromTransactionCheck", OPT, 0),
    F_STR(msg_id, "msgId", REQ, NULL),
    F_STR(transaction_id, "transactionId", OPT, NULL),
    F_STR(bname, "bname", OPT, NULL),
};
#undef HT
HDR_DEFINE(end_tx_req)

#define HT proto_check_tx_req_t
static const hdr_field_t check_tx_req_fields[] = {
    F_I64(tran_state_table_offset, "tranStateTableOffset", REQ, 0),
    F_I64(commit_log_offset, "commitLogOffset", REQ, 0),
    F_STR(msg_id, "msgId", OPT, NULL),
    F_STR(transaction_id, "transactionId", OPT, NULL),
    F_STR(offset_msg_id, "offsetMsgId", OPT, NULL),
};
#undef HT
HDR_DEFINE(check_tx_req)

#define HT proto_group_req_t
static const hdr_field_t group_req_fields[] = {
    F_STR(consumer_group, "consumerGroup", REQ, NULL),
};
#undef HT
HDR_DEFINE(group_req)

#define HT proto_reset_offset_req_t
static const hdr_field_t reset_offset_req_fields[] = {
    F_STR(topic, "topic", REQ, NULL),
    F_STR(group, "group", REQ, NULL),
    F_I64(timestamp, "timestamp", REQ, 0),
    F_BOOL(is_force, "isForce", REQ, 0),
};
#undef HT
HDR_DEFINE(reset_offset_req)

/* ---------------------------------------------------------------- name server (100-105) */

#define HT proto_register_broker_req_t
static const hdr_field_t register_broker_req_fields[] = {
    F_STR(broker_name, "brokerName", REQ, NULL),   F_STR(broker_addr, "brokerAddr", REQ, NULL),
    F_STR(cluster_name, "clusterName", REQ, NULL), F_STR(ha_server_addr, "haServerAddr", REQ, NULL),
    F_I64(broker_id, "brokerId", REQ, 0),          F_BOOL(compressed, "compressed", OPT, 0),
    F_I32(body_crc32, "bodyCrc32", OPT, 0),
};
#undef HT
HDR_DEFINE(register_broker_req)

#define HT proto_register_broker_resp_t
static const hdr_field_t register_broker_resp_fields[] = {
    F_STR(ha_server_addr, "haServerAddr", OPT, NULL),
    F_STR(master_addr, "masterAddr", OPT, NULL),
};
#undef HT
HDR_DEFINE(register_broker_resp)

#define HT proto_unregister_broker_req_t
static const hdr_field_t unregister_broker_req_fields[] = {
    F_STR(broker_name, "brokerName", REQ, NULL),
    F_STR(broker_addr, "brokerAddr", REQ, NULL),
    F_STR(cluster_name, "clusterName", REQ, NULL),
    F_I64(broker_id, "brokerId", REQ, 0),
};
#undef HT
HDR_DEFINE(unregister_broker_req)

#define HT proto_route_req_t
static const hdr_field_t route_req_fields[] = {
    F_STR(topic, "topic", REQ, NULL),
    F_BOOL(accept_standard_json, "acceptStandardJsonOnly", HF_SPARSE, 0),
};
#undef HT
HDR_DEFINE(route_req)

#define HT proto_put_kv_req_t
static const hdr_field_t put_kv_req_fields[] = {
    F_STR(namespace_, "namespace", REQ, NULL),
    F_STR(key, "key", REQ, NULL),
    F_STR(value, "value", REQ, NULL),
};
#undef HT
HDR_DEFINE(put_kv_req)

#define HT proto_kv_req_t
static const hdr_field_t kv_req_fields[] = {
    F_STR(namespace_, "namespace", REQ, NULL),
    F_STR(key, "key", REQ, NULL),
};
#undef HT
HDR_DEFINE(kv_req)

#define HT proto_get_kv_resp_t
static const hdr_field_t get_kv_resp_fields[] = {
    F_STR(value, "value", OPT, NULL),
};
#undef HT
HDR_DEFINE(get_kv_resp)
