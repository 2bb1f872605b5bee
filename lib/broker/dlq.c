/* lib/broker/dlq.c: dead letters through the public API — rmq_broker_dlq_list() reads
 * %DLQ%<group> queue 0 (where sendback.c and send.c put what a group gave up on) and
 * rmq_broker_dlq_resend() stores a copy of one on its original topic (RETRY_TOPIC), as
 * RocketMQ's console re-sends a dead letter. Over the wire the same is done with
 * PULL_MESSAGE or QUERY_MESSAGE on the DLQ topic, VIEW_MESSAGE_BY_ID and a send
 * (doc/broker.md). Both run on the caller's thread: the store is safe from any thread. */
#include "broker/broker_int.h"

#include <stdio.h>

#define LIST_MAX 1024

/* Properties the broker itself adds to route a message; a re-sent copy starts without. */
static const char *const routing_props[] = {
    PROP_DELAY,         PROP_REAL_TOPIC,       PROP_REAL_QID,          PROP_WAIT,
    PROP_TIMER_OUT_MS,  PROP_TIMER_DELIVER_MS, PROP_TIMER_DELAY_SEC,   PROP_TIMER_DELAY_MS,
    PROP_START_DELIVER_TIME, PROP_RECONSUME_TIME, PROP_MAX_RECONSUME_TIMES, PROP_CLUSTER,
    NULL};

static bool dlq_topic(const char *group, char *topic, size_t size) {
    int n = snprintf(topic, size, "%%DLQ%%%s", group);
    return n > 0 && (size_t)n < size && proto_topic_name_valid(topic);
}

static rmq_err_t check_args(const rmq_broker_t *b, const char *group) {
    if (!b || !group) return RMQ_ERR_INVALID_ARG;
    if (!b->started) return RMQ_ERR_NOT_STARTED;
    return RMQ_OK;
}

/* Reports the records of one read to cb; false when cb asked to stop. */
static bool report(const cm_buf_t *records, rmq_dlq_cb_t *cb, void *opaque, int *left,
                   int64_t *off) {
    size_t pos = 0;
    while (pos < records->len && *left > 0) {
        proto_record_t rec;
        if (proto_record_decode(records->data + pos, records->len - pos, false, &rec) != RMQ_OK)
            break;
        pos += (size_t)rec.total_size;
        *off = rec.queue_offset + 1;
        (*left)--;
        rmq_msg_t *m = NULL;
        if (proto_msg_from_record(&rec, SIZE_MAX, &m) != RMQ_OK) continue;
        int stop = cb(m, opaque);
        rmq_msg_destroy(m);
        if (stop) return false;
    }
    return true;
}

rmq_err_t rmq_broker_dlq_list(rmq_broker_t *b, const char *group, int64_t from, int max,
                              rmq_dlq_cb_t *cb, void *opaque, int64_t *next) {
    rmq_err_t rc = check_args(b, group);
    if (rc != RMQ_OK) return rc;
    if (!cb || max < 1 || max > LIST_MAX || from < 0) return RMQ_ERR_INVALID_ARG;
    char topic[160];
    if (!dlq_topic(group, topic, sizeof topic)) return RMQ_ERR_BAD_TOPIC;
    int64_t off = from;
    int left = max;
    while (left > 0) {
        store_get_result_t res = {0};
        store_get_messages(b->store, topic, 0, off, left, 0, NULL, NULL, &res);
        bool go_on = true;
        if (res.status == STORE_FOUND) {
            go_on = report(&res.records, cb, opaque, &left, &off);
        } else if (res.status == STORE_OFFSET_TOO_SMALL || res.status == STORE_OFFSET_FOUND_NULL ||
                   res.status == STORE_MESSAGE_WAS_REMOVING) {
            go_on = res.next_begin_offset > off; /* start at the oldest still stored */
            if (go_on) off = res.next_begin_offset;
        } else {
            go_on = false; /* the end, or nothing stored */
        }
        cm_buf_free(&res.records);
        if (!go_on) break;
    }
    if (next) *next = off;
    return RMQ_OK;
}

/* The copy's properties: the dead letter's, without the broker's routing ones, with this
 * broker's CLUSTER, in Java's HashMap order. *topic gets RETRY_TOPIC (caller frees). */
static rmq_err_t resend_props(broker_t *b, const proto_record_t *rec, cm_buf_t *out,
                              char **topic) {
    proto_props_t p = {0};
    rmq_err_t rc = proto_props_parse(rec->props, (size_t)rec->props_len, &p);
    const char *origin = rc == RMQ_OK ? proto_props_get(&p, PROP_RETRY_TOPIC) : NULL;
    if (rc == RMQ_OK && (!origin || !proto_topic_name_valid(origin))) rc = RMQ_ERR_INVALID_ARG;
    if (rc == RMQ_OK) {
        *topic = cm_strdup(origin);
        for (const char *const *name = routing_props; *name; name++)
            proto_props_set(&p, *name, NULL);
        proto_props_set(&p, PROP_CLUSTER, b->cluster);
        broker_props_java_order(&p, p.count, out);
    }
    proto_props_free(&p);
    return rc;
}

/* The new record for topic/queue_id from the dead letter rec with properties props. */
static rmq_err_t encode_copy(broker_t *b, const proto_record_t *rec, const char *topic,
                             int32_t queue_id, const cm_buf_t *props, cm_buf_t *out) {
    if (props->len > 32767) return RMQ_ERR_MSG_TOO_LARGE;
    proto_record_t copy;
    memset(&copy, 0, sizeof copy);
    copy.magic = PROTO_MAGIC_V1;
    copy.queue_id = queue_id;
    copy.flag = rec->flag;
    copy.sys_flag = rec->sys_flag & ~(SYSFLAG_STOREHOST_V6 | SYSFLAG_TX_MASK);
    if (b->store_host.ip_len == 16) copy.sys_flag |= SYSFLAG_STOREHOST_V6;
    copy.born_timestamp = rec->born_timestamp;
    copy.born_host = rec->born_host;
    copy.store_host = b->store_host;
    copy.reconsume_times = 0;
    copy.body = rec->body;
    copy.body_len = rec->body_len;
    copy.topic = topic;
    copy.topic_len = (int32_t)strlen(topic);
    copy.props = (const char *)props->data;
    copy.props_len = (int32_t)props->len;
    return proto_record_encode(&copy, out);
}

/* Stores the copy of rec on its original topic; fills offset_id. */
static rmq_err_t resend_record(broker_t *b, const proto_record_t *rec, char *offset_id,
                               size_t size) {
    cm_buf_t props = CM_BUF_INIT, out = CM_BUF_INIT;
    char *topic = NULL;
    rmq_err_t rc = resend_props(b, rec, &props, &topic);
    broker_topic_t tc;
    if (rc == RMQ_OK && !broker_topics_find(b, topic, &tc)) rc = RMQ_ERR_TOPIC_NOT_EXIST;
    if (rc == RMQ_OK && (!(tc.perm & PROTO_PERM_WRITE) || tc.write_queue_nums <= 0))
        rc = RMQ_ERR_NO_PERMISSION;
    if (rc == RMQ_OK) {
        int32_t queue_id = (int32_t)((uint64_t)cm_mono_ns() % (uint64_t)tc.write_queue_nums);
        rc = encode_copy(b, rec, topic, queue_id, &props, &out);
    }
    store_put_result_t put = {0};
    if (rc == RMQ_OK) rc = store_append(b->store, out.data, out.len, &b->store_host, true, &put);
    if (rc == RMQ_ERR_FLUSH_DISK_TIMEOUT) rc = RMQ_OK; /* stored; durable a little later */
    if (rc == RMQ_OK && offset_id) proto_offset_id_format(&b->store_host, put.phys_offset, offset_id, size);
    if (rc == RMQ_OK) cm_info(&b->log, "dead letter re-sent to %s", topic);
    cm_free(topic);
    cm_buf_free(&props);
    cm_buf_free(&out);
    return rc;
}

rmq_err_t rmq_broker_dlq_resend(rmq_broker_t *b, const char *group, int64_t offset,
                                char *offset_id, size_t offset_id_size) {
    rmq_err_t rc = check_args(b, group);
    if (rc != RMQ_OK) return rc;
    if (offset < 0 || (offset_id && offset_id_size < 57)) return RMQ_ERR_INVALID_ARG;
    char topic[160];
    if (!dlq_topic(group, topic, sizeof topic)) return RMQ_ERR_BAD_TOPIC;
    store_get_result_t res = {0};
    store_get_messages(b->store, topic, 0, offset, 1, 0, NULL, NULL, &res);
    proto_record_t rec;
    if (res.status != STORE_FOUND ||
        proto_record_decode(res.records.data, res.records.len, false, &rec) != RMQ_OK ||
        rec.queue_offset != offset)
        rc = RMQ_ERR_NOT_FOUND;
    else
        rc = resend_record(b, &rec, offset_id, offset_id_size);
    cm_buf_free(&res.records);
    return rc;
}
