/* lib/proto: RocketMQ wire and record formats, pure (no I/O, no threads).
 *
 *  - remoting frames (JSON and ROCKETMQ binary headers), extFields, typed headers
 *  - message records in the 4.x commit-log layout (= pull-response body layout)
 *  - message properties, batch bodies, message ids, body compression
 *  - a JSON reader/writer that accepts what RocketMQ's Java side writes
 *
 * Decoders never read out of bounds and return a distinct rmq_err_t for each kind of bad
 * input. The layers above (net, store, broker, client) include only this header. */
#ifndef RMQ_PROTO_H
#define RMQ_PROTO_H

#include "common/cm.h"
#include <rmq/msg.h>

/* ================================================================ remoting frames */

#define PROTO_MAX_FRAME (16 * 1024 * 1024) /* Java's default frame limit */
#define PROTO_VERSION 409                  /* MQVersion V4_9_8 ordinal; what we send */

enum { PROTO_SER_JSON = 0, PROTO_SER_ROCKETMQ = 1 };
enum { PROTO_FLAG_RESPONSE = 0x1, PROTO_FLAG_ONEWAY = 0x2 };
enum { PROTO_LANG_JAVA = 0, PROTO_LANG_CPP = 1, PROTO_LANG_OTHER = 7, PROTO_LANG_NODE_JS = 13 };

/* Request codes (remoting.md §4). */
enum proto_code {
    PROTO_SEND_MESSAGE = 10,
    PROTO_PULL_MESSAGE = 11,
    PROTO_QUERY_MESSAGE = 12,
    PROTO_QUERY_BROKER_OFFSET = 13,
    PROTO_QUERY_CONSUMER_OFFSET = 14,
    PROTO_UPDATE_CONSUMER_OFFSET = 15,
    PROTO_UPDATE_AND_CREATE_TOPIC = 17,
    PROTO_GET_ALL_TOPIC_CONFIG = 21,
    PROTO_SEARCH_OFFSET_BY_TIMESTAMP = 29,
    PROTO_GET_MAX_OFFSET = 30,
    PROTO_GET_MIN_OFFSET = 31,
    PROTO_GET_EARLIEST_MSG_STORETIME = 32,
    PROTO_VIEW_MESSAGE_BY_ID = 33,
    PROTO_HEART_BEAT = 34,
    PROTO_UNREGISTER_CLIENT = 35,
    PROTO_CONSUMER_SEND_MSG_BACK = 36,
    PROTO_END_TRANSACTION = 37,
    PROTO_GET_CONSUMER_LIST_BY_GROUP = 38,
    PROTO_CHECK_TRANSACTION_STATE = 39,
    PROTO_NOTIFY_CONSUMER_IDS_CHANGED = 40,
    PROTO_LOCK_BATCH_MQ = 41,
    PROTO_UNLOCK_BATCH_MQ = 42,
    PROTO_GET_ALL_CONSUMER_OFFSET = 43,
    PROTO_GET_ALL_DELAY_OFFSET = 45,
    PROTO_PUT_KV_CONFIG = 100,
    PROTO_GET_KV_CONFIG = 101,
    PROTO_DELETE_KV_CONFIG = 102,
    PROTO_REGISTER_BROKER = 103,
    PROTO_UNREGISTER_BROKER = 104,
    PROTO_GET_ROUTEINFO_BY_TOPIC = 105,
    PROTO_GET_BROKER_CLUSTER_INFO = 106,
    PROTO_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
    PROTO_GET_CONSUMER_CONNECTION_LIST = 203,
    PROTO_GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206,
    PROTO_RESET_CONSUMER_CLIENT_OFFSET = 220,
    PROTO_INVOKE_BROKER_TO_RESET_OFFSET = 222,
    PROTO_GET_TOPICS_BY_CLUSTER = 224,
    PROTO_CONSUME_MESSAGE_DIRECTLY = 309,
    PROTO_SEND_MESSAGE_V2 = 310,
    PROTO_SEND_BATCH_MESSAGE = 320,
    PROTO_QUERY_DATA_VERSION = 322,
};

/* extFields: an ordered list of string pairs (the typed header, flattened). Every frame
 * carries one, so its texts live in a pool of a few blocks owned by the ext (freed together
 * by proto_ext_free) instead of two allocations per field; keys, vals and their lengths share
 * one array block. A replaced or removed text stays in the pool until then. Move an ext by
 * struct copy (then forget the source); never free one of its texts alone, never change
 * keys, vals or lens but through these functions (the lengths spare encoders a strlen).
 * Texts are never written to once set: typed headers point keys and boolean values at
 * their static texts instead of copying them. */
typedef struct proto_ext_pool proto_ext_pool_t;
typedef struct proto_ext {
    char **keys;
    char **vals;  /* keys + cap */
    size_t *lens; /* lens[i] = strlen(keys[i]), lens[cap + i] = strlen(vals[i]) */
    size_t count, cap;
    proto_ext_pool_t *pool;
    char *room; /* the free part of the newest pool block: room_len bytes */
    size_t room_len;
} proto_ext_t;

void proto_ext_free(proto_ext_t *ext);
/* Sets key (replacing an existing value). */
void proto_ext_set(proto_ext_t *ext, const char *key, const char *val);
void proto_ext_set_int(proto_ext_t *ext, const char *key, int64_t val);
void proto_ext_set_bool(proto_ext_t *ext, const char *key, bool val);
const char *proto_ext_get(const proto_ext_t *ext, const char *key); /* NULL if absent */
/* Typed reads: RMQ_ERR_NOT_FOUND if absent, RMQ_ERR_MALFORMED if not a number/bool. */
rmq_err_t proto_ext_get_int(const proto_ext_t *ext, const char *key, int64_t *out);
rmq_err_t proto_ext_get_bool(const proto_ext_t *ext, const char *key, bool *out);
/* The same reads of a value already looked up (NULL = absent). */
rmq_err_t proto_ext_parse_int(const char *val, int64_t *out);
rmq_err_t proto_ext_parse_bool(const char *val, bool *out);
/* For decoders: a copy of s[0..n) (NUL added) in ext's pool, and an append that does not
 * look for an existing key (the caller dedupes). */
char *proto_ext_text(proto_ext_t *ext, const char *s, size_t n);
void proto_ext_append(proto_ext_t *ext, char *key, char *val);
/* The same for decoders that write texts themselves: n bytes of ext's pool (room for the
 * texts and their NULs), and an append of pool texts whose lengths are known. */
char *proto_ext_alloc_block(proto_ext_t *ext, size_t n); /* a new block when room is short */
static inline char *proto_ext_alloc(proto_ext_t *ext, size_t n) {
    if (n >= ext->room_len) return proto_ext_alloc_block(ext, n);
    char *d = ext->room;
    ext->room += n;
    ext->room_len -= n;
    return d;
}
void proto_ext_grow(proto_ext_t *ext); /* doubles cap */
static inline void proto_ext_push(proto_ext_t *ext, char *key, size_t klen, char *val,
                                  size_t vlen) {
    if (ext->count == ext->cap) proto_ext_grow(ext);
    size_t i = ext->count++;
    ext->keys[i] = key;
    ext->vals[i] = val;
    ext->lens[i] = klen;
    ext->lens[ext->cap + i] = vlen;
}
static inline size_t proto_ext_key_len(const proto_ext_t *ext, size_t i) {
    return ext->lens[i];
}
static inline size_t proto_ext_val_len(const proto_ext_t *ext, size_t i) {
    return ext->lens[ext->cap + i];
}

/* One remoting command (request or response). Owns every pointer in it. */
typedef struct proto_cmd {
    int32_t code;
    int32_t language;
    int32_t version;
    int32_t opaque;
    int32_t flag;
    char *remark;    /* NULL when absent */
    proto_ext_t ext; /* empty when absent */
    bool has_ext;    /* JSON header had an "extFields" key (Java checks for it on send replies) */
    uint8_t serialize; /* PROTO_SER_JSON / PROTO_SER_ROCKETMQ */
    uint8_t *body;   /* NULL when body_len is 0 */
    size_t body_len;
} proto_cmd_t;

void proto_cmd_init(proto_cmd_t *cmd);
void proto_cmd_free(proto_cmd_t *cmd);
/* A new request from librmq: language CPP (the closest RocketMQ knows), version 409,
 * JSON header (what Java peers default to), no ext fields, no body. */
void proto_cmd_request(proto_cmd_t *cmd, int32_t code, int32_t opaque);
/* A response to req: same opaque and serialize type, flag RESPONSE, the given code. */
void proto_cmd_response(proto_cmd_t *resp, const proto_cmd_t *req, int32_t code,
                        const char *remark);
/* LanguageCode's name for code ("JAVA", "CPP", ...; "OTHER" when out of range). */
const char *proto_lang_name(int32_t code);
/* Copies len bytes as the body. */
void proto_cmd_set_body(proto_cmd_t *cmd, const void *body, size_t len);
/* Takes ownership of a malloc'd body. */
void proto_cmd_take_body(proto_cmd_t *cmd, uint8_t *body, size_t len);
static inline bool proto_cmd_is_response(const proto_cmd_t *c) {
    return (c->flag & PROTO_FLAG_RESPONSE) != 0;
}
static inline bool proto_cmd_is_oneway(const proto_cmd_t *c) {
    return (c->flag & PROTO_FLAG_ONEWAY) != 0;
}

/* Frame length peek for reassembly: given at least 4 bytes, the total frame size including
 * the 4-byte length field. RMQ_ERR_TRUNCATED if fewer than 4 bytes; RMQ_ERR_FRAME_TOO_LARGE
 * over max_frame; RMQ_ERR_MALFORMED when the length is below the 4-byte minimum. */
rmq_err_t proto_frame_size(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_size);

/* Decodes one whole frame (buf starts at the length field, len = proto_frame_size()).
 * On success cmd owns copies of everything. Errors: RMQ_ERR_TRUNCATED, RMQ_ERR_MALFORMED,
 * RMQ_ERR_FRAME_TOO_LARGE, RMQ_ERR_BAD_JSON, RMQ_ERR_UNSUPPORTED (unknown serialize type). */
rmq_err_t proto_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, proto_cmd_t *cmd);

/* Appends the encoded frame (length field first) to out, with cmd->serialize's header form. */
rmq_err_t proto_frame_encode(const proto_cmd_t *cmd, cm_buf_t *out);

/* ================================================================ JSON */

typedef enum proto_json_type {
    PJ_NULL,
    PJ_BOOL,
    PJ_NUMBER,
    PJ_STRING,
    PJ_ARRAY,
    PJ_OBJECT
} proto_json_type_t;

typedef struct proto_json proto_json_t;
struct proto_json {
    proto_json_type_t type;
    bool b;
    int64_t i;     /* PJ_NUMBER: integer value (truncated when fractional) */
    double d;      /* PJ_NUMBER: as double */
    char *s;       /* PJ_STRING: NUL-terminated UTF-8 (may contain NUL: see len) */
    size_t len;    /* PJ_STRING length; PJ_ARRAY / PJ_OBJECT element count */
    proto_json_t **items; /* PJ_ARRAY elements; PJ_OBJECT values */
    proto_json_t **keys;  /* PJ_OBJECT keys: any JSON value (string, bare number, object) */
};

/* Parses text (not necessarily NUL-terminated). Accepts Java fastjson's output: unquoted
 * integer keys ({0:"a"}), objects as keys, any key order. Max nesting depth 64.
 * Returns RMQ_ERR_BAD_JSON with *out = NULL on bad input. */
rmq_err_t proto_json_parse(const char *text, size_t len, proto_json_t **out);
void proto_json_free(proto_json_t *v);
/* Object member by string key (a bare-number key matches its decimal text). NULL if absent. */
const proto_json_t *proto_json_get(const proto_json_t *obj, const char *key);
/* Convenience reads with defaults when absent or of another type. */
int64_t proto_json_get_int(const proto_json_t *obj, const char *key, int64_t def);
const char *proto_json_get_str(const proto_json_t *obj, const char *key, const char *def);
bool proto_json_get_bool(const proto_json_t *obj, const char *key, bool def);

/* Writer helpers: append JSON text to a buffer. proto_json_put_str escapes as JSON needs. */
void proto_json_put_str(cm_buf_t *out, const char *s, size_t len);
/* Serializes a parsed value back to standard JSON (object keys that are not strings are
 * written as in Java: bare numbers unquoted, objects as objects). */
void proto_json_write(cm_buf_t *out, const proto_json_t *v);

/* ================================================================ message properties */

#define PROTO_NAME_SEP '\x01'
#define PROTO_PROP_SEP '\x02'

/* Property names RocketMQ reserves (MessageConst). */
#define PROP_KEYS "KEYS"
#define PROP_TAGS "TAGS"
#define PROP_WAIT "WAIT"
#define PROP_DELAY "DELAY"
#define PROP_UNIQ_KEY "UNIQ_KEY"
#define PROP_REAL_TOPIC "REAL_TOPIC"
#define PROP_REAL_QID "REAL_QID"
#define PROP_RETRY_TOPIC "RETRY_TOPIC"
#define PROP_ORIGIN_MESSAGE_ID "ORIGIN_MESSAGE_ID"
#define PROP_RECONSUME_TIME "RECONSUME_TIME"
#define PROP_MAX_RECONSUME_TIMES "MAX_RECONSUME_TIMES"
#define PROP_TRAN_MSG "TRAN_MSG"
#define PROP_PGROUP "PGROUP"
#define PROP_TRANSACTION_CHECK_TIMES "TRANSACTION_CHECK_TIMES"
#define PROP_TRAN_PREPARED_QUEUE_OFFSET "TRAN_PREPARED_QUEUE_OFFSET"
#define PROP_CHECK_IMMUNITY_TIME "CHECK_IMMUNITY_TIME_IN_SECONDS"
#define PROP_TRANSACTION_ID "__transactionId__"
#define PROP_CLUSTER "CLUSTER"
#define PROP_MIN_OFFSET "MIN_OFFSET"
#define PROP_MAX_OFFSET "MAX_OFFSET"
#define PROP_SHARDING_KEY "__SHARDINGKEY"
#define PROP_TIMER_DELIVER_MS "TIMER_DELIVER_MS"
#define PROP_TIMER_DELAY_SEC "TIMER_DELAY_SEC"
#define PROP_TIMER_DELAY_MS "TIMER_DELAY_MS"
#define PROP_START_DELIVER_TIME "__STARTDELIVERTIME"
#define PROP_TIMER_OUT_MS "TIMER_OUT_MS" /* broker: deliver time of a parked timer message */

/* Ordered name/value pairs; set replaces (last wins on parse, as Java's HashMap). Parsed
 * and copied pairs point into one pooled block (pool); pairs set later are allocated one by
 * one. vals lives in the names allocation. */
typedef struct proto_props {
    char **names;
    char **vals;
    size_t count, cap;
    char *pool;
    size_t pool_len;
} proto_props_t;

void proto_props_free(proto_props_t *p);
void proto_props_copy(proto_props_t *dst, const proto_props_t *src);
const char *proto_props_get(const proto_props_t *p, const char *name);
void proto_props_set(proto_props_t *p, const char *name, const char *val); /* NULL val removes */
/* Parses name\1value\2... (trailing \2 optional). Pairs with an empty name or value are
 * skipped as Java does. RMQ_ERR_BAD_PROPERTIES on invalid UTF-8 or a pair without \1. */
rmq_err_t proto_props_parse(const char *text, size_t len, proto_props_t *out);
/* Appends the encoded string (no trailing \2, as 4.9.1+ writers). */
void proto_props_encode(const proto_props_t *p, cm_buf_t *out);
/* The same written into caller memory: proto_props_encoded_len bytes and a NUL at dst, with
 * the pair dflt_name=dflt_val last when p lacks dflt_name (the producer's WAIT=true; NULL:
 * none). Returns the end (the NUL). */
size_t proto_props_encoded_len(const proto_props_t *p, const char *dflt_name, const char *dflt_val);
char *proto_props_write(const proto_props_t *p, const char *dflt_name, const char *dflt_val,
                        char *dst);
/* One pair of an encoded properties string: the pair at *pos, and *pos moved past it;
 * false at the end. Empty pairs (two \2 in a row) are skipped. A pair without \1 has
 * val NULL and the whole pair as its name; name or value may be empty. Zero-copy: the
 * pointers are into text. */
typedef struct proto_prop_pair {
    const char *name, *val;
    size_t name_len, val_len;
} proto_prop_pair_t;
bool proto_props_next(const char *text, size_t len, size_t *pos, proto_prop_pair_t *out);
/* Zero-copy look-up in an encoded string: the last value of name, or false. */
bool proto_props_find(const char *text, size_t len, const char *name, const char **val,
                      size_t *val_len);
/* True for names the Java client refuses as user properties. */
bool proto_props_reserved(const char *name);
/* A property value as Java's Long.parseLong reads it: an optional sign and 1-18 digits (so
 * no overflow); false for anything else. */
bool proto_parse_long(const char *v, size_t len, int64_t *out);

/* ================================================================ message records */

#define PROTO_MAGIC_V1 ((int32_t)0xDAA320A7)
#define PROTO_MAGIC_V2 ((int32_t)0xDAA320AB)
#define PROTO_MAGIC_BLANK ((int32_t)0xCBD43194)

enum proto_sysflag {
    SYSFLAG_COMPRESSED = 0x1,
    SYSFLAG_MULTI_TAGS = 0x2,
    SYSFLAG_TX_MASK = 0xC,
    SYSFLAG_TX_NOT = 0x0,
    SYSFLAG_TX_PREPARED = 0x4,
    SYSFLAG_TX_COMMIT = 0x8,
    SYSFLAG_TX_ROLLBACK = 0xC,
    SYSFLAG_BORNHOST_V6 = 0x10,
    SYSFLAG_STOREHOST_V6 = 0x20,
    SYSFLAG_NEED_UNWRAP = 0x40,
    SYSFLAG_INNER_BATCH = 0x80,
    SYSFLAG_COMPRESS_MASK = 0x700,
    SYSFLAG_COMPRESS_LZ4 = 0x100,
    SYSFLAG_COMPRESS_ZSTD = 0x200,
    SYSFLAG_COMPRESS_ZLIB = 0x300,
};

/* A socket address as RocketMQ stores it: 4 or 16 address bytes and a port. */
typedef struct proto_addr {
    uint8_t ip[16];
    uint8_t ip_len; /* 4 or 16 */
    int32_t port;
} proto_addr_t;

/* Parses "a.b.c.d:port" or "[v6]:port" / "v6:port". */
rmq_err_t proto_addr_parse(const char *text, proto_addr_t *out);
/* Writes "ip:port" into dst (at least 64 bytes). */
void proto_addr_format(const proto_addr_t *a, char *dst, size_t size);

/* A decoded record: a view into the buffer it was decoded from (zero copy). */
typedef struct proto_record {
    int32_t total_size;
    int32_t magic;
    int32_t body_crc;
    int32_t queue_id;
    int32_t flag;
    int64_t queue_offset;
    int64_t physical_offset;
    int32_t sys_flag;
    int64_t born_timestamp;
    proto_addr_t born_host;
    int64_t store_timestamp;
    proto_addr_t store_host;
    int32_t reconsume_times;
    int64_t prepared_tx_offset;
    const uint8_t *body;
    int32_t body_len;
    const char *topic;
    int32_t topic_len;
    const char *props;
    int32_t props_len;
} proto_record_t;

/* Byte offsets of the fields the store stamps at append time, for a record whose born host
 * is IPv4 (born_v6 false) or IPv6. */
enum {
    PROTO_REC_OFF_QUEUEOFFSET = 20,
    PROTO_REC_OFF_PHYSICALOFFSET = 28,
    PROTO_REC_OFF_SYSFLAG = 36,
    PROTO_REC_OFF_BORNTIMESTAMP = 40,
    PROTO_REC_OFF_BORNHOST = 48
};
/* Offset of STORETIMESTAMP (STOREHOSTADDRESS follows it) given the sys flag. */
size_t proto_record_store_ts_off(int32_t sys_flag);

/* Size of the encoded record for these field lengths and host widths. */
size_t proto_record_size(int32_t sys_flag, size_t body_len, size_t topic_len, size_t props_len);

/* Decodes one record at buf (len bytes available). Checks magic (v1 or v2), that every
 * length fits inside total_size and len, and, if check_crc, the body CRC.
 * RMQ_ERR_TRUNCATED / RMQ_ERR_MALFORMED / RMQ_ERR_BAD_MAGIC / RMQ_ERR_BAD_CRC.
 * A BLANK record decodes with magic = PROTO_MAGIC_BLANK and only total_size set. */
rmq_err_t proto_record_decode(const uint8_t *buf, size_t len, bool check_crc,
                              proto_record_t *rec);

/* Appends rec encoded in the v1 layout (v2 when topic_len > 127). total_size and body_crc
 * are computed, not taken from rec. */
rmq_err_t proto_record_encode(const proto_record_t *rec, cm_buf_t *out);

/* BODYCRC: zlib CRC32 of the body & 0x7FFFFFFF. */
int32_t proto_body_crc(const void *body, size_t len);

/* ================================================================ message ids */

/* Offset id: store host + commit-log offset, upper-case hex (32 chars for IPv4, 56 IPv6). */
void proto_offset_id_format(const proto_addr_t *store_host, int64_t offset, char *dst,
                            size_t size);
rmq_err_t proto_offset_id_parse(const char *id, proto_addr_t *store_host, int64_t *offset);

/* Client unique id (UNIQ_KEY) generator: one per producer client. */
typedef struct proto_uniq_gen proto_uniq_gen_t;
proto_uniq_gen_t *proto_uniq_gen_new(const proto_addr_t *client_ip, int32_t pid);
void proto_uniq_gen_destroy(proto_uniq_gen_t *g);
/* Writes a new id (32 or 56 hex chars + NUL) into dst; thread-safe. */
void proto_uniq_gen_next(proto_uniq_gen_t *g, char *dst, size_t size);
/* The same with the current time given (ms since the epoch), for tests that cross a month. */
void proto_uniq_gen_next_at(proto_uniq_gen_t *g, int64_t now_ms, char *dst, size_t size);
/* The parts of a client unique id (32 or 56 hex chars); the broker needs the time to look a
 * message up by UNIQ_KEY. RMQ_ERR_MALFORMED on another length or a non-hex character. */
typedef struct proto_uniq_parts {
    proto_addr_t ip;  /* port 0 */
    uint16_t pid;     /* low 16 bits of the producer's pid */
    int32_t instance; /* the per-process int32 */
    int32_t month_ms; /* ms since the start of its month, local time (Java's int: may wrap) */
    uint16_t counter;
} proto_uniq_parts_t;
rmq_err_t proto_uniq_parse(const char *id, proto_uniq_parts_t *out);

/* ================================================================ batch bodies, compression */

/* One message inside a SEND_BATCH_MESSAGE body. */
typedef struct proto_batch_item {
    int32_t flag;
    const uint8_t *body;
    int32_t body_len;
    const char *props;
    int32_t props_len;
} proto_batch_item_t;

void proto_batch_encode_item(cm_buf_t *out, int32_t flag, const void *body, size_t body_len,
                             const char *props, size_t props_len);
/* Decodes the next item at *pos; returns RMQ_ERR_NOT_FOUND at the end of the body. */
rmq_err_t proto_batch_next(const uint8_t *body, size_t len, size_t *pos, proto_batch_item_t *item);

/* Compresses with the type in sys_flag's compression bits (ZLIB, or ZSTD if built in) at
 * level; appends to out. Decompression picks zlib for type 0/ZLIB, zstd for ZSTD, and
 * refuses more than max_out bytes of output (RMQ_ERR_COMPRESSION). */
rmq_err_t proto_compress(int32_t compress_type, int level, const void *in, size_t len,
                         cm_buf_t *out);
rmq_err_t proto_decompress(int32_t sys_flag, const void *in, size_t len, size_t max_out,
                           cm_buf_t *out);

/* ================================================================ rmq_msg_t internals */

struct rmq_msg_s {
    char *topic;
    uint8_t *body;
    size_t body_len;
    int32_t flag;
    proto_props_t props;
    /* received / sent metadata */
    char *offset_id;
    char *broker_name;
    int32_t queue_id;
    int64_t queue_offset;
    int64_t commitlog_offset;
    int64_t born_timestamp;
    int64_t store_timestamp;
    int32_t reconsume_times;
    int32_t sys_flag;
    proto_addr_t born_host, store_host;
    /* Bytes allocated right after the struct, in the same block, holding some of its texts
     * (a received message: topic, offset id, broker name, body). Such a text is not freed
     * alone: replace or free a field through proto_msg_free_text. */
    size_t inline_len;
};

/* Frees a text or body of m unless it lives in m's own block. */
void proto_msg_free_text(rmq_msg_t *m, void *text);

/* Builds a message from a decoded record: decompresses the body if needed (max_body bytes),
 * parses properties, fills the received metadata and the offset id. */
rmq_err_t proto_msg_from_record(const proto_record_t *rec, size_t max_body, rmq_msg_t **out);
/* The same, also naming the broker it came from (broker_name, or NULL): topic, offset id,
 * broker name and an uncompressed body share the message's own allocation, so a pulled
 * message is two allocations (three with properties) wherever it is freed. */
rmq_err_t proto_msg_from_record_at(const proto_record_t *rec, size_t max_body,
                                   const char *broker_name, rmq_msg_t **out);

/* What Java brokers append to many error remarks (FAQUrl.suggestTodo), kept so remarks
 * read as users know them. */
#define PROTO_FAQ_SUFFIX "\nSee http://rocketmq.apache.org/docs/faq/ for further details."

/* Topic names (TopicValidator): at most PROTO_TOPIC_MAX characters of [%|a-zA-Z0-9_-]. */
#define PROTO_TOPIC_MAX 127
bool proto_topic_char_ok(char c);
/* Non-empty, at most PROTO_TOPIC_MAX characters, each proto_topic_char_ok(). */
bool proto_topic_name_valid(const char *topic);
/* Topics only a broker itself writes (SCHEDULE_TOPIC_XXXX, RMQ_SYS_TRANS_*, ...): producers
 * may not send to them. */
bool proto_topic_not_sendable(const char *topic);

#include "proto_headers.h"

#endif
