/* lib/proto typed custom headers and JSON bodies (remoting.md §4-§6). Included from proto.h;
 * the broker and the client read and write headers and bodies only through these.
 *
 * Headers. Each header type proto_X_t has
 *   void      proto_X_init(proto_X_t *h);       zero + RocketMQ's defaults (TBW102, 4, TAG...)
 *   rmq_err_t proto_X_decode(const proto_ext_t *ext, proto_X_t *h, proto_hdr_err_t *err);
 *   void      proto_X_encode(const proto_X_t *h, proto_ext_t *ext);
 * Decoded strings are BORROWED from ext: valid while ext lives and is not changed. Encoding
 * copies them into ext. Field names, types and required marks follow the Java header classes.
 *
 * decode: starts from proto_X_init's defaults, so absent optional fields keep RocketMQ's
 * defaults. A required field that is absent, or a number/boolean field whose text is not
 * one, fails with RMQ_ERR_MALFORMED and describes the field in *err (err may be NULL).
 * Unknown keys are ignored.
 * encode: writes every required field always (a NULL required string is written as ""),
 * optional strings when non-NULL, optional numbers marked "has_" only when has_ is true,
 * other optional numbers and booleans always (as Java writes its primitives). */
#ifndef RMQ_PROTO_HEADERS_H
#define RMQ_PROTO_HEADERS_H

/* What was wrong with a header: the wire key, and whether it was absent or unparseable. */
typedef struct proto_hdr_err {
    const char *field; /* wire key ("topic", "b", ...) */
    const char *value; /* the bad text (borrowed from ext), NULL when missing */
    bool missing;
} proto_hdr_err_t;

/* A remark for an error reply, worded as Java's: "the custom field <topic> is null". */
void proto_hdr_err_format(const proto_hdr_err_t *err, char *dst, size_t size);

#define PROTO_HEADER(X)                                                                            \
    void proto_##X##_init(proto_##X##_t *h);                                                       \
    rmq_err_t proto_##X##_decode(const proto_ext_t *ext, proto_##X##_t *h, proto_hdr_err_t *err);  \
    void proto_##X##_encode(const proto_##X##_t *h, proto_ext_t *ext)

/* ---------------------------------------------------------------- send (10, 310, 320) */

/* SEND_MESSAGE (V1 field names), SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE (a..n). */
typedef struct proto_send_req {
    const char *producer_group;       /* a  * */
    const char *topic;                /* b  * */
    const char *default_topic;        /* c  * init: "TBW102" */
    int32_t default_topic_queue_nums; /* d * init: 4 */
    int32_t queue_id;                 /* e  * */
    int32_t sys_flag;                 /* f  * */
    int64_t born_timestamp;           /* g  * */
    int32_t flag;                     /* h  * */
    const char *properties;           /* i  encoded props (proto_props_encode) */
    int32_t reconsume_times;          /* j  default 0 */
    bool unit_mode;                   /* k */
    bool has_max_reconsume_times;     /* l  absent: the group's retry limit applies */
    int32_t max_reconsume_times;
    bool batch;              /* m  always true for 320 */
    const char *broker_name; /* n  (V1: "bname") target broker, 4.9.8 sends it */
} proto_send_req_t;

void proto_send_req_init(proto_send_req_t *h);
/* code picks the names: PROTO_SEND_MESSAGE -> V1 names, PROTO_SEND_MESSAGE_V2 and
 * PROTO_SEND_BATCH_MESSAGE -> a..n (320 also sets batch). Other codes: RMQ_ERR_INVALID_ARG. */
rmq_err_t proto_send_req_decode(const proto_ext_t *ext, int32_t code, proto_send_req_t *h,
                                proto_hdr_err_t *err);
/* Encodes with code's names; for 320 m is written true whatever h->batch says. */
rmq_err_t proto_send_req_encode(const proto_send_req_t *h, int32_t code, proto_ext_t *ext);

/* Send response (10/310/320). msg_region and trace_on travel as MSG_REGION / TRACE_ON, which
 * the Java client requires: init sets "DefaultRegion" and true, decode defaults likewise. */
typedef struct proto_send_resp {
    const char *msg_id;   /* * offset id (320: comma-joined ids) */
    int32_t queue_id;     /* * */
    int64_t queue_offset; /* * (320: the first) */
    const char *transaction_id;
    const char *msg_region; /* MSG_REGION */
    bool trace_on;          /* TRACE_ON */
} proto_send_resp_t;
PROTO_HEADER(send_resp);

/* ---------------------------------------------------------------- pull (11) */

enum proto_pull_sysflag {
    PULL_FLAG_COMMIT_OFFSET = 0x1,
    PULL_FLAG_SUSPEND = 0x2,
    PULL_FLAG_SUBSCRIPTION = 0x4,
    PULL_FLAG_CLASS_FILTER = 0x8,
    PULL_FLAG_LITE_PULL = 0x10,
};

typedef struct proto_pull_req {
    const char *consumer_group;     /* * */
    const char *topic;              /* * */
    int32_t queue_id;               /* * */
    int64_t queue_offset;           /* * */
    int32_t max_msg_nums;           /* * */
    int32_t sys_flag;               /* * PULL_FLAG_* */
    int64_t commit_offset;          /* * */
    int64_t suspend_timeout_millis; /* * */
    const char *subscription;       /* with PULL_FLAG_SUBSCRIPTION */
    int64_t sub_version;            /* * */
    const char *expression_type;    /* "TAG" / "SQL92"; init and absent: "TAG" */
    const char *bname;
} proto_pull_req_t;
PROTO_HEADER(pull_req);

typedef struct proto_pull_resp {
    int64_t suggest_which_broker_id; /* * */
    int64_t next_begin_offset;       /* * */
    int64_t min_offset;              /* * */
    int64_t max_offset;              /* * */
} proto_pull_resp_t;
PROTO_HEADER(pull_resp);

/* ---------------------------------------------------------------- query (12, 33) */

typedef struct proto_query_msg_req {
    const char *topic;       /* * */
    const char *key;         /* * */
    int32_t max_num;         /* * */
    int64_t begin_timestamp; /* * */
    int64_t end_timestamp;   /* * */
    bool unique_key_query;   /* ext "_UNIQUE_KEY_QUERY" (written only when true) */
    const char *bname;
} proto_query_msg_req_t;
PROTO_HEADER(query_msg_req);

typedef struct proto_query_msg_resp {
    int64_t index_last_update_timestamp; /* * */
    int64_t index_last_update_phyoffset; /* * */
} proto_query_msg_resp_t;
PROTO_HEADER(query_msg_resp);

/* CONSUME_MESSAGE_DIRECTLY (309): an admin asks the broker, which forwards it to the client
 * (with brokerName set and the message as the body). GET_CONSUMER_CONNECTION_LIST (203)
 * takes proto_group_req_t. */
typedef struct proto_consume_direct_req {
    const char *consumer_group; /* * */
    const char *client_id;
    const char *msg_id; /* the broker's offset id */
    const char *broker_name;
} proto_consume_direct_req_t;
PROTO_HEADER(consume_direct_req);

/* VIEW_MESSAGE_BY_ID (33). */
typedef struct proto_view_msg_req {
    int64_t offset;    /* * commit-log offset */
    const char *topic; /* 5.x */
} proto_view_msg_req_t;
PROTO_HEADER(view_msg_req);

/* ---------------------------------------------------------------- offsets (14, 15, 29-32) */

typedef struct proto_query_consumer_offset_req {
    const char *consumer_group; /* * */
    const char *topic;          /* * */
    int32_t queue_id;           /* * */
    const char *bname;
} proto_query_consumer_offset_req_t;
PROTO_HEADER(query_consumer_offset_req);

/* Response of 14, 29, 30 and 31. */
typedef struct proto_offset_resp {
    int64_t offset; /* * */
} proto_offset_resp_t;
PROTO_HEADER(offset_resp);

typedef struct proto_update_consumer_offset_req {
    const char *consumer_group; /* * */
    const char *topic;          /* * */
    int32_t queue_id;           /* * */
    int64_t commit_offset;      /* * */
    const char *bname;
} proto_update_consumer_offset_req_t;
PROTO_HEADER(update_consumer_offset_req);

typedef struct proto_search_offset_req {
    const char *topic; /* * */
    int32_t queue_id;  /* * */
    int64_t timestamp; /* * */
    const char *bname;
} proto_search_offset_req_t;
PROTO_HEADER(search_offset_req);

/* GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32). */
typedef struct proto_queue_req {
    const char *topic; /* * */
    int32_t queue_id;  /* * */
    const char *bname;
} proto_queue_req_t;
PROTO_HEADER(queue_req);

typedef struct proto_storetime_resp {
    int64_t timestamp; /* * */
} proto_storetime_resp_t;
PROTO_HEADER(storetime_resp);

/* ---------------------------------------------------------------- topics (17) */

typedef struct proto_create_topic_req {
    const char *topic;             /* * */
    const char *default_topic;     /* * unused by the broker; init "TBW102" */
    int32_t read_queue_nums;       /* * */
    int32_t write_queue_nums;      /* * */
    int32_t perm;                  /* * */
    const char *topic_filter_type; /* * "SINGLE_TAG" / "MULTI_TAG"; init "SINGLE_TAG" */
    int32_t topic_sys_flag;
    bool order; /* * */
} proto_create_topic_req_t;
PROTO_HEADER(create_topic_req);

/* ---------------------------------------------------------------- clients, groups (35-40) */

typedef struct proto_unregister_client_req {
    const char *client_id; /* * "clientID" */
    const char *producer_group;
    const char *consumer_group;
} proto_unregister_client_req_t;
PROTO_HEADER(unregister_client_req);

/* CONSUMER_SEND_MSG_BACK (36). */
typedef struct proto_send_back_req {
    int64_t offset;      /* * commit-log offset of the failed message */
    const char *group;   /* * */
    int32_t delay_level; /* * 0 = broker picks */
    const char *origin_msg_id;
    const char *origin_topic;
    bool unit_mode;
    bool has_max_reconsume_times; /* absent: the group's retry limit */
    int32_t max_reconsume_times;
    const char *bname;
} proto_send_back_req_t;
PROTO_HEADER(send_back_req);

enum { PROTO_TX_UNKNOWN = 0, PROTO_TX_COMMIT = 8, PROTO_TX_ROLLBACK = 12 };

/* END_TRANSACTION (37). */
typedef struct proto_end_tx_req {
    const char *producer_group;      /* * */
    int64_t tran_state_table_offset; /* * */
    int64_t commit_log_offset;       /* * */
    int32_t commit_or_rollback;      /* * PROTO_TX_* */
    bool from_transaction_check;
    const char *msg_id; /* * UNIQ_KEY */
    const char *transaction_id;
    const char *bname;
} proto_end_tx_req_t;
PROTO_HEADER(end_tx_req);

/* CHECK_TRANSACTION_STATE (39), broker to producer. */
typedef struct proto_check_tx_req {
    int64_t tran_state_table_offset; /* * */
    int64_t commit_log_offset;       /* * */
    const char *msg_id;
    const char *transaction_id;
    const char *offset_msg_id;
} proto_check_tx_req_t;
PROTO_HEADER(check_tx_req);

/* GET_CONSUMER_LIST_BY_GROUP (38) and NOTIFY_CONSUMER_IDS_CHANGED (40). */
typedef struct proto_group_req {
    const char *consumer_group; /* * */
} proto_group_req_t;
PROTO_HEADER(group_req);

/* INVOKE_BROKER_TO_RESET_OFFSET (222) and RESET_CONSUMER_CLIENT_OFFSET (220):
 * ResetOffsetRequestHeader. Their body (220's request, 222's response) is ResetOffsetBody,
 * {"offsetTable":{<MessageQueue>:offset}}, the shape of a broadcasting offsets file. */
typedef struct proto_reset_offset_req {
    const char *topic; /* * */
    const char *group; /* * */
    int64_t timestamp; /* * ms since the epoch; -1: the end of each queue */
    bool is_force;     /* * "isForce": also move offsets forward */
} proto_reset_offset_req_t;
PROTO_HEADER(reset_offset_req);

/* ---------------------------------------------------------------- name server (100-105) */

typedef struct proto_register_broker_req {
    const char *broker_name;    /* * */
    const char *broker_addr;    /* * */
    const char *cluster_name;   /* * */
    const char *ha_server_addr; /* * */
    int64_t broker_id;          /* * 0 = master */
    bool compressed;
    int32_t body_crc32; /* 0 = no check; else proto_body_crc() of the body */
} proto_register_broker_req_t;
PROTO_HEADER(register_broker_req);

typedef struct proto_register_broker_resp {
    const char *ha_server_addr;
    const char *master_addr;
} proto_register_broker_resp_t;
PROTO_HEADER(register_broker_resp);

typedef struct proto_unregister_broker_req {
    const char *broker_name;  /* * */
    const char *broker_addr;  /* * */
    const char *cluster_name; /* * */
    int64_t broker_id;        /* * */
} proto_unregister_broker_req_t;
PROTO_HEADER(unregister_broker_req);

typedef struct proto_route_req {
    const char *topic;         /* * */
    bool accept_standard_json; /* acceptStandardJsonOnly; written only when true */
} proto_route_req_t;
PROTO_HEADER(route_req);

/* PUT_KV_CONFIG (100). */
typedef struct proto_put_kv_req {
    const char *namespace_; /* * "namespace" */
    const char *key;        /* * */
    const char *value;      /* * */
} proto_put_kv_req_t;
PROTO_HEADER(put_kv_req);

/* GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102). */
typedef struct proto_kv_req {
    const char *namespace_; /* * "namespace" */
    const char *key;        /* * */
} proto_kv_req_t;
PROTO_HEADER(kv_req);

typedef struct proto_get_kv_resp {
    const char *value;
} proto_get_kv_resp_t;
PROTO_HEADER(get_kv_resp);

/* ================================================================ JSON bodies
 *
 * Decoders take the body bytes (need not be NUL-terminated) and fill an owned structure:
 * free it with its proto_X_free (safe on a zeroed or half-filled one). RMQ_ERR_BAD_JSON when
 * the text does not parse, RMQ_ERR_MALFORMED when a member has the wrong JSON type or an enum
 * name is unknown. Absent members get Java's defaults. Encoders append JSON text to out: keys
 * sorted and nulls omitted as Java's writer does. */

/* A list of owned strings. */
typedef struct proto_strlist {
    char **items;
    size_t count;
} proto_strlist_t;
void proto_strlist_add(proto_strlist_t *l, const char *s);
void proto_strlist_free(proto_strlist_t *l);

/* A message queue: {"brokerName","queueId","topic"}. */
typedef struct proto_mq {
    char *topic;
    char *broker_name;
    int32_t queue_id;
} proto_mq_t;

typedef struct proto_mq_list {
    proto_mq_t *items;
    size_t count;
} proto_mq_list_t;
void proto_mq_list_add(proto_mq_list_t *l, const char *topic, const char *broker_name,
                       int32_t queue_id);
void proto_mq_list_free(proto_mq_list_t *l);

/* ---------------------------------------------------------------- HeartbeatData (34) */

typedef enum proto_consume_type {
    PROTO_CONSUME_PASSIVELY = 0, /* push */
    PROTO_CONSUME_ACTIVELY,      /* pull */
    PROTO_CONSUME_POP,           /* 5.x */
} proto_consume_type_t;

typedef enum proto_message_model {
    PROTO_CLUSTERING = 0,
    PROTO_BROADCASTING,
} proto_message_model_t;

typedef enum proto_consume_from {
    PROTO_CONSUME_FROM_LAST_OFFSET = 0,
    PROTO_CONSUME_FROM_FIRST_OFFSET,
    PROTO_CONSUME_FROM_TIMESTAMP,
    PROTO_CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST, /* deprecated names */
    PROTO_CONSUME_FROM_MIN_OFFSET,
    PROTO_CONSUME_FROM_MAX_OFFSET,
} proto_consume_from_t;

/* Java enum names of the above ("CONSUME_PASSIVELY", ...); NULL for an unknown value. */
const char *proto_consume_type_name(proto_consume_type_t t);
const char *proto_message_model_name(proto_message_model_t m);
const char *proto_consume_from_name(proto_consume_from_t c);

typedef struct proto_subscription {
    char *topic;
    char *sub_string;     /* "*" = all */
    proto_strlist_t tags; /* tagsSet */
    int32_t *codes;       /* codeSet: Java String.hashCode of each tag */
    size_t code_count;
    int64_t sub_version;
    char *expression_type; /* "TAG" / "SQL92"; NULL (absent, as ali-ons sends) means TAG */
    bool class_filter_mode;
} proto_subscription_t;

void proto_subscription_free(proto_subscription_t *s);
/* Sets sub_string, tags and codes from a tag expression as the Java client does: NULL, "" or
 * "*" subscribes to all (no tags); otherwise split on "||", trim, drop empties and
 * duplicates, codes = cm_java_hash of each tag. */
void proto_subscription_set_tags(proto_subscription_t *s, const char *expr);

typedef struct proto_consumer_data {
    char *group_name;
    proto_consume_type_t consume_type;
    proto_message_model_t message_model;
    proto_consume_from_t consume_from_where;
    proto_subscription_t *subs;
    size_t sub_count;
    bool unit_mode;
} proto_consumer_data_t;

/* Appends a zeroed subscription to c and returns it. */
proto_subscription_t *proto_consumer_data_add_sub(proto_consumer_data_t *c);

typedef struct proto_heartbeat {
    char *client_id;                 /* "clientID" */
    proto_strlist_t producer_groups; /* producerDataSet[].groupName */
    proto_consumer_data_t *consumers;
    size_t consumer_count;
} proto_heartbeat_t;

/* Appends a zeroed consumer entry to hb and returns it. */
proto_consumer_data_t *proto_heartbeat_add_consumer(proto_heartbeat_t *hb);
rmq_err_t proto_heartbeat_decode(const void *body, size_t len, proto_heartbeat_t *out);
void proto_heartbeat_encode(const proto_heartbeat_t *hb, cm_buf_t *out);
void proto_heartbeat_free(proto_heartbeat_t *hb);

/* ---------------------------------------------------------------- TopicRouteData (105) */

enum proto_perm {
    PROTO_PERM_PRIORITY = 0x8,
    PROTO_PERM_READ = 0x4,
    PROTO_PERM_WRITE = 0x2,
    PROTO_PERM_INHERIT = 0x1
};

typedef struct proto_broker_addr {
    int64_t id; /* 0 = master */
    char *addr;
} proto_broker_addr_t;

typedef struct proto_broker_data {
    char *cluster;
    char *broker_name;
    proto_broker_addr_t *addrs; /* brokerAddrs, in the order read or added */
    size_t addr_count;
} proto_broker_data_t;

void proto_broker_data_add_addr(proto_broker_data_t *b, int64_t id, const char *addr);
/* The address of broker id, or NULL. */
const char *proto_broker_data_addr(const proto_broker_data_t *b, int64_t id);
void proto_broker_data_free(proto_broker_data_t *b);

typedef struct proto_queue_data {
    char *broker_name;
    int32_t read_queue_nums;
    int32_t write_queue_nums;
    int32_t perm;
    int32_t topic_sys_flag;
} proto_queue_data_t;

/* filterServerTable entry: a broker address and its filter servers. */
typedef struct proto_filter_servers {
    char *broker_addr;
    proto_strlist_t servers;
} proto_filter_servers_t;

typedef struct proto_topic_route {
    char *order_topic_conf; /* "brokerA:4;brokerB:4" or NULL */
    proto_broker_data_t *brokers;
    size_t broker_count;
    proto_queue_data_t *queues;
    size_t queue_count;
    proto_filter_servers_t *filter_servers;
    size_t filter_server_count;
} proto_topic_route_t;

/* Append a zeroed entry and return it. */
proto_broker_data_t *proto_topic_route_add_broker(proto_topic_route_t *r);
proto_queue_data_t *proto_topic_route_add_queue(proto_topic_route_t *r);
rmq_err_t proto_topic_route_decode(const void *body, size_t len, proto_topic_route_t *out);
/* standard_json: brokerAddrs keys quoted ({"0":...}); false writes Java's {0:...} (what a
 * 4.9.8 name server answers a request with version < 401 and no acceptStandardJsonOnly). */
void proto_topic_route_encode(const proto_topic_route_t *r, bool standard_json, cm_buf_t *out);
void proto_topic_route_free(proto_topic_route_t *r);

/* ---------------------------------------------------------------- ClusterInfo (106) */

typedef struct proto_cluster_entry {
    char *cluster_name;
    proto_strlist_t broker_names;
} proto_cluster_entry_t;

typedef struct proto_cluster_info {
    proto_broker_data_t *brokers; /* brokerAddrTable values (keyed by their broker_name) */
    size_t broker_count;
    proto_cluster_entry_t *clusters; /* clusterAddrTable */
    size_t cluster_count;
} proto_cluster_info_t;

proto_broker_data_t *proto_cluster_info_add_broker(proto_cluster_info_t *ci);
proto_cluster_entry_t *proto_cluster_info_add_cluster(proto_cluster_info_t *ci);
rmq_err_t proto_cluster_info_decode(const void *body, size_t len, proto_cluster_info_t *out);
/* Java always writes this body with unquoted broker ids: pass standard_json = false to match. */
void proto_cluster_info_encode(const proto_cluster_info_t *ci, bool standard_json, cm_buf_t *out);
void proto_cluster_info_free(proto_cluster_info_t *ci);

/* ---------------------------------------------------------------- RegisterBrokerBody (103) */

typedef struct proto_data_version {
    int64_t timestamp;
    int64_t counter;
} proto_data_version_t;

typedef struct proto_topic_config {
    char *topic_name;
    int32_t read_queue_nums;
    int32_t write_queue_nums;
    int32_t perm;
    char *topic_filter_type; /* "SINGLE_TAG" (absent: SINGLE_TAG) / "MULTI_TAG" */
    int32_t topic_sys_flag;
    bool order;
} proto_topic_config_t;

typedef struct proto_register_broker_body {
    proto_data_version_t data_version;
    proto_topic_config_t *topics; /* topicConfigTable values, keyed by topic_name */
    size_t topic_count;
    proto_strlist_t filter_servers;
} proto_register_broker_body_t;

proto_topic_config_t *proto_register_broker_body_add_topic(proto_register_broker_body_t *b);
/* compressed: the header's compressed flag. The zlib form (remoting.md §6) is inflated up to
 * max_inflated bytes (RMQ_ERR_COMPRESSION beyond); its topic lines carry no sysFlag/order. */
rmq_err_t proto_register_broker_body_decode(const void *body, size_t len, bool compressed,
                                            size_t max_inflated, proto_register_broker_body_t *out);
void proto_register_broker_body_encode(const proto_register_broker_body_t *b, cm_buf_t *out);
void proto_register_broker_body_free(proto_register_broker_body_t *b);

/* ---------------------------------------------------------------- small bodies */

/* {"consumerIdList":[...]} (38 response). */
rmq_err_t proto_consumer_list_decode(const void *body, size_t len, proto_strlist_t *out);
void proto_consumer_list_encode(const proto_strlist_t *ids, cm_buf_t *out);

/* GET_CONSUMER_CONNECTION_LIST (203) response body, ConsumerConnection: the group's
 * members (Connection: clientId, clientAddr, language name, version), its subscriptions by
 * topic and how it consumes. Borrowed pointers; encode only. */
typedef struct proto_connection {
    const char *client_id, *client_addr;
    int32_t language, version;
} proto_connection_t;

typedef struct proto_consumer_connection {
    const proto_connection_t *conns;
    size_t conn_count;
    const proto_subscription_t *subs;
    size_t sub_count;
    const char *consume_type, *message_model, *consume_from_where;
} proto_consumer_connection_t;
void proto_consumer_connection_encode(const proto_consumer_connection_t *cc, cm_buf_t *out);

/* ResetOffsetBody (RESET_CONSUMER_CLIENT_OFFSET 220, and the answer to 222):
 * {"offsetTable":{MessageQueue:offset,...}} with each MessageQueue object as a key, the way
 * fastjson writes a map with object keys (members sorted: brokerName, queueId, topic).
 * Encode only (clients read it with the offsets-file reader, the same shape). */
typedef struct proto_queue_offset {
    const char *topic, *broker_name;
    int32_t queue_id;
    int64_t offset;
} proto_queue_offset_t;
void proto_reset_offset_body_encode(const proto_queue_offset_t *items, size_t n, cm_buf_t *out);

/* ConsumeMessageDirectlyResult, a client's answer to CONSUME_MESSAGE_DIRECTLY (309), as
 * fastjson writes it: keys sorted, autoCommit true, no remark. result is a CMResult name
 * ("CR_SUCCESS", "CR_LATER", ...). */
void proto_consume_direct_result_encode(bool order, const char *result, int64_t spent_ms,
                                        cm_buf_t *out);

/* LOCK_BATCH_MQ (41) / UNLOCK_BATCH_MQ (42) request body. */
typedef struct proto_lock_batch {
    char *client_id;      /* "clientId" */
    char *consumer_group; /* "consumerGroup" */
    proto_mq_list_t mqs;  /* "mqSet" */
} proto_lock_batch_t;
rmq_err_t proto_lock_batch_decode(const void *body, size_t len, proto_lock_batch_t *out);
void proto_lock_batch_encode(const proto_lock_batch_t *lb, cm_buf_t *out);
void proto_lock_batch_free(proto_lock_batch_t *lb);

/* {"lockOKMQSet":[...]} (41 response). */
rmq_err_t proto_lock_ok_decode(const void *body, size_t len, proto_mq_list_t *out);
void proto_lock_ok_encode(const proto_mq_list_t *mqs, cm_buf_t *out);

/* KVTable {"table":{"k":"v"}}: the pairs land in a proto_ext_t (ordered string pairs). */
rmq_err_t proto_kv_table_decode(const void *body, size_t len, proto_ext_t *out);
void proto_kv_table_encode(const proto_ext_t *table, cm_buf_t *out);

/* TopicList {"topicList":[...],"brokerAddr":...}; broker_addr may be NULL. */
typedef struct proto_topic_list {
    proto_strlist_t topics;
    char *broker_addr;
} proto_topic_list_t;
rmq_err_t proto_topic_list_decode(const void *body, size_t len, proto_topic_list_t *out);
void proto_topic_list_encode(const proto_topic_list_t *tl, cm_buf_t *out);
void proto_topic_list_free(proto_topic_list_t *tl);

#endif
