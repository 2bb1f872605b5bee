/* lib/broker/resetoffset.c: backtracking — a consumer group's offsets of a topic reset to a
 * point in time, as mqadmin resetOffsetByTime asks a broker with INVOKE_BROKER_TO_RESET_OFFSET
 * (222) and rmq_broker_reset_offset() does in process. RocketMQ 4.9's Broker2Client.resetOffset
 * computes, per queue, the offset SEARCH_OFFSET_BY_TIMESTAMP finds (the message stored then,
 * else the nearer neighbour; -1: the queue's end)
 * and takes it when isForce or when it lies before the group's committed offset; it tells every
 * online consumer of the group with RESET_CONSUMER_CLIENT_OFFSET (220, oneway, ResetOffsetBody)
 * and answers 222 with the same body. This broker also stores the new offsets itself, so a
 * group with no consumer online is reset too (4.9 refuses that one, and its admin tool then
 * writes the offsets queue by queue). Runs on the caller's thread (the I/O thread for 222):
 * the store, offsets and client tables are safe from any thread and nothing here blocks. */
#include "broker/broker_int.h"

#include "net/net.h"

/* The offset queue qid goes back to: the store's look-up for ts (ts -1: the end). */
static int64_t target_offset(broker_t *b, const char *topic, int32_t qid, int64_t ts) {
    int64_t off = ts == -1 ? store_max_offset(b->store, topic, qid)
                           : store_offset_by_time(b->store, topic, qid, ts);
    return off < 0 ? 0 : off;
}

/* Computes and stores the group's new offsets of topic, and writes them as ResetOffsetBody
 * into body. RMQ_ERR_TOPIC_NOT_EXIST when the broker has no such topic. */
static rmq_err_t reset_queues(broker_t *b, const char *topic, const char *group, int64_t ts,
                              bool force, cm_buf_t *body, int *queues) {
    broker_topic_t t;
    if (!broker_topics_find(b, topic, &t)) return RMQ_ERR_TOPIC_NOT_EXIST;
    /* +1: cm_malloc of 0 is not an allocation, and a topic may have no write queue */
    proto_queue_offset_t *table = cm_malloc(((size_t)t.write_queue_nums + 1) * sizeof *table);
    for (int32_t qid = 0; qid < t.write_queue_nums; qid++) {
        int64_t committed = broker_offsets_get(b, group, topic, qid);
        int64_t target = target_offset(b, topic, qid, ts);
        /* A queue the group never committed takes the target, as a forced reset would. */
        int64_t offset = force || committed < 0 || target < committed ? target : committed;
        broker_offsets_commit(b, group, topic, qid, offset);
        table[qid] = (proto_queue_offset_t){topic, b->name, qid, offset};
    }
    proto_reset_offset_body_encode(table, (size_t)t.write_queue_nums, body);
    cm_free(table);
    *queues = t.write_queue_nums;
    cm_info(&b->log, "group %s: offsets of %s reset to %s %lld%s (%d queues)", group, topic,
            ts == -1 ? "the end" : "timestamp", (long long)ts, force ? ", forced" : "", *queues);
    return RMQ_OK;
}

/* RESET_CONSUMER_CLIENT_OFFSET to every online consumer of the group (oneway). */
static void tell_consumers(broker_t *b, const proto_reset_offset_req_t *h, const cm_buf_t *body) {
    void **conns;
    size_t n = broker_clients_consumer_conns(b->clients, h->group, &conns);
    for (size_t i = 0; i < n; i++) {
        proto_cmd_t cmd;
        proto_cmd_request(&cmd, PROTO_RESET_CONSUMER_CLIENT_OFFSET, 0);
        proto_reset_offset_req_encode(h, &cmd.ext);
        cmd.has_ext = true;
        void *copy = cm_malloc(body->len);
        memcpy(copy, body->data, body->len);
        proto_cmd_take_body(&cmd, copy, body->len);
        if (!broker_send_oneway(b, conns[i], &cmd))
            cm_debug(&b->log, "group %s: a consumer left before its offsets were reset", h->group);
    }
    broker_clients_release_conns(b->clients, conns, n);
}

static rmq_err_t reset(broker_t *b, const proto_reset_offset_req_t *h, cm_buf_t *body,
                       int *queues) {
    rmq_err_t rc = reset_queues(b, h->topic, h->group, h->timestamp, h->is_force, body, queues);
    if (rc == RMQ_OK) tell_consumers(b, h, body);
    return rc;
}

rmq_err_t rmq_broker_reset_offset(rmq_broker_t *b, const char *group, const char *topic,
                                  int64_t timestamp_ms, int force) {
    if (!b || !group || !topic || !*group || !*topic || timestamp_ms < -1)
        return RMQ_ERR_INVALID_ARG;
    if (!b->started) return RMQ_ERR_NOT_STARTED;
    proto_reset_offset_req_t h = {
        .topic = topic, .group = group, .timestamp = timestamp_ms, .is_force = force != 0};
    cm_buf_t body = CM_BUF_INIT;
    int queues = 0;
    rmq_err_t rc = reset(b, &h, &body, &queues);
    cm_buf_free(&body);
    return rc;
}

static void on_reset_offset(broker_t *b, broker_req_t *req) {
    proto_reset_offset_req_t h;
    proto_hdr_err_t err;
    if (proto_reset_offset_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    cm_buf_t body = CM_BUF_INIT;
    int queues = 0;
    if (reset(b, &h, &body, &queues) != RMQ_OK) {
        cm_buf_free(&body);
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "[%s] topic does not exist", h.topic);
        return;
    }
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, 0, NULL);
    proto_cmd_take_body(&resp, body.data, body.len);
    broker_reply(b, req, &resp);
}

void broker_resetoffset_register(broker_t *b) {
    broker_set_processor(b, PROTO_INVOKE_BROKER_TO_RESET_OFFSET, on_reset_offset, BROKER_EXEC_IO);
}
