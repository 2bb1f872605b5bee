/* lib/broker/sendback.c: CONSUMER_SEND_MSG_BACK (36) — a consumer hands back a message it
 * failed to consume. The broker re-reads it by commit-log offset and stores a copy on
 * %RETRY%<group> through the delay levels (schedule.c delivers it later), or on
 * %DLQ%<group> once it was retried the group's maximum number of times, building the copy
 * as RocketMQ 4.9.8's SendMessageProcessor.consumerSendMsgBack does. Runs on the send
 * thread(s): store_append may wait for the disk. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>

#define PERM_RW (PROTO_PERM_READ | PROTO_PERM_WRITE)
#define TOPIC_SYSFLAG_UNIT_SUB 0x2 /* TopicSysFlag.buildSysFlag(false, true) */

/* The copy's properties: the original's (parsed into a fresh map), then RETRY_TOPIC if
 * absent, WAIT=false, DELAY, ORIGIN_MESSAGE_ID, and for a delayed copy REAL_TOPIC and
 * REAL_QID — the order in which Java puts them into the one map it re-encodes. */
static rmq_err_t copy_props(broker_t *b, const proto_record_t *orig, const char *topic,
                            int32_t queue_id, int32_t level, cm_buf_t *out) {
    proto_props_t p = {0};
    rmq_err_t rc = proto_props_parse(orig->props, (size_t)orig->props_len, &p);
    if (rc != RMQ_OK) {
        proto_props_free(&p);
        return rc;
    }
    if (!proto_props_get(&p, PROP_RETRY_TOPIC)) {
        char *t = cm_strndup(orig->topic, (size_t)orig->topic_len);
        proto_props_set(&p, PROP_RETRY_TOPIC, t);
        cm_free(t);
    }
    proto_props_set(&p, PROP_WAIT, "false");
    char num[24];
    snprintf(num, sizeof num, "%d", level);
    proto_props_set(&p, PROP_DELAY, num);
    const char *origin = proto_props_get(&p, PROP_ORIGIN_MESSAGE_ID);
    if (!origin || !*origin) {
        char id[64];
        proto_offset_id_format(&orig->store_host, orig->physical_offset, id, sizeof id);
        proto_props_set(&p, PROP_ORIGIN_MESSAGE_ID, id);
    }
    if (level > 0) { /* CommitLog.putMessage's delay rewrite */
        if (level > b->store_cfg.delay_levels) {
            snprintf(num, sizeof num, "%d", b->store_cfg.delay_levels);
            proto_props_set(&p, PROP_DELAY, num);
        }
        proto_props_set(&p, PROP_REAL_TOPIC, topic);
        snprintf(num, sizeof num, "%d", queue_id);
        proto_props_set(&p, PROP_REAL_QID, num);
    }
    broker_props_java_order(&p, p.count, out);
    proto_props_free(&p);
    return RMQ_OK;
}

static void on_send_back(broker_t *b, broker_req_t *req) {
    proto_send_back_req_t h;
    proto_hdr_err_t herr;
    if (proto_send_back_req_decode(&req->cmd.ext, &h, &herr) != RMQ_OK) {
        broker_reply_bad_header(b, req, &herr);
        return;
    }
    broker_subgroup_t g;
    if (!b->subgroups || !broker_subgroups_find(b->subgroups, h.group, &g)) {
        broker_reply_fmt(b, req, RMQ_ERR_SUBSCRIPTION_GROUP_NOT_EXIST,
                  "subscription group not exist, %s %s", h.group, PROTO_FAQ_SUFFIX);
        return;
    }
    if (g.retry_queue_nums <= 0) { /* retries switched off: the message is dropped */
        broker_reply_code(b, req, 0, NULL);
        return;
    }
    char topic[300];
    snprintf(topic, sizeof topic, "%%RETRY%%%s", h.group);
    int32_t queue_id = (int32_t)((uint64_t)cm_mono_ns() % (uint64_t)g.retry_queue_nums);
    broker_topic_t tc;
    if (!broker_topics_ensure(b, topic, g.retry_queue_nums, PERM_RW,
                              h.unit_mode ? TOPIC_SYSFLAG_UNIT_SUB : 0) ||
        !broker_topics_find(b, topic, &tc)) {
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "topic[%s] not exist", topic);
        return;
    }
    if (!(tc.perm & PROTO_PERM_WRITE)) {
        broker_reply_fmt(b, req, RMQ_ERR_NO_PERMISSION, "the topic[%s] sending message is forbidden",
                  topic);
        return;
    }
    cm_buf_t orig_buf = CM_BUF_INIT, props = CM_BUF_INIT, rec_buf = CM_BUF_INIT;
    proto_record_t orig;
    if (store_read_record(b->store, h.offset, &orig_buf) != RMQ_OK ||
        proto_record_decode(orig_buf.data, orig_buf.len, false, &orig) != RMQ_OK ||
        orig.magic == PROTO_MAGIC_BLANK) {
        cm_buf_free(&orig_buf);
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "look message by offset failed, %lld",
                  (long long)h.offset);
        return;
    }
    int32_t max_times = h.has_max_reconsume_times ? h.max_reconsume_times : g.retry_max_times;
    int32_t level = h.delay_level;
    if (orig.reconsume_times >= max_times || level < 0) {
        snprintf(topic, sizeof topic, "%%DLQ%%%s", h.group);
        queue_id = 0; /* DLQ_NUMS_PER_GROUP = 1 */
        if (!broker_topics_ensure(b, topic, 1, PERM_RW, 0) || !broker_topics_find(b, topic, &tc)) {
            cm_buf_free(&orig_buf);
            broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "topic[%s] not exist", topic);
            return;
        }
        level = 0;
    } else if (level == 0) {
        level = 3 + orig.reconsume_times;
    }
    rmq_err_t st = copy_props(b, &orig, topic, queue_id, level, &props);
    if (st == RMQ_OK && props.len > 32767) st = RMQ_ERR_MSG_TOO_LARGE;
    if (st == RMQ_OK) {
        proto_record_t rec;
        memset(&rec, 0, sizeof rec);
        rec.magic = PROTO_MAGIC_V1;
        rec.flag = orig.flag;
        rec.sys_flag = orig.sys_flag & ~SYSFLAG_STOREHOST_V6;
        if (b->store_host.ip_len == 16) rec.sys_flag |= SYSFLAG_STOREHOST_V6;
        rec.born_timestamp = orig.born_timestamp;
        rec.born_host = orig.born_host;
        rec.store_host = b->store_host;
        rec.reconsume_times = orig.reconsume_times + 1;
        rec.body = orig.body;
        rec.body_len = orig.body_len;
        if (level > 0) { /* through the delay levels, like any delayed send */
            int32_t max = b->store_cfg.delay_levels;
            rec.topic = STORE_SCHEDULE_TOPIC;
            rec.queue_id = (level > max ? max : level) - 1;
        } else {
            rec.topic = topic;
            rec.queue_id = queue_id;
        }
        rec.topic_len = (int32_t)strlen(rec.topic);
        rec.props = (const char *)props.data;
        rec.props_len = (int32_t)props.len;
        st = proto_record_encode(&rec, &rec_buf);
    }
    store_put_result_t res = {0};
    if (st == RMQ_OK)
        st = store_append(b->store, rec_buf.data, rec_buf.len, &b->store_host, false, &res);
    cm_buf_free(&orig_buf);
    cm_buf_free(&props);
    cm_buf_free(&rec_buf);
    if (st == RMQ_OK || st == RMQ_ERR_FLUSH_DISK_TIMEOUT) {
        broker_reply_code(b, req, 0, NULL);
        return;
    }
    /* Java answers SYSTEM_ERROR with the PutMessageStatus name. */
    const char *name = st == RMQ_ERR_DISK_FULL       ? "SERVICE_NOT_AVAILABLE"
                       : st == RMQ_ERR_SHUTDOWN      ? "SERVICE_NOT_AVAILABLE"
                       : st == RMQ_ERR_MSG_TOO_LARGE ? "MESSAGE_ILLEGAL"
                                                     : "UNKNOWN_ERROR";
    broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR, name);
}

void broker_sendback_register(broker_t *b) {
    broker_set_processor(b, PROTO_CONSUMER_SEND_MSG_BACK, on_send_back, BROKER_EXEC_SEND);
}
