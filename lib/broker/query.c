/* lib/broker/query.c: the look-ups clients and admin tools make — GET_MAX_OFFSET (30),
 * GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29), GET_EARLIEST_MSG_STORETIME (32),
 * VIEW_MESSAGE_BY_ID (33) and QUERY_MESSAGE (12, by key or UNIQ_KEY). Read-only; they run
 * on the I/O thread. */
#include "broker/broker_int.h"

#include <stdio.h>

#define DEFAULT_QUERY_MAX_NUM 32 /* defaultQueryMaxNum */

static void reply_offset(broker_t *b, broker_req_t *req, int64_t offset) {
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, 0, NULL);
    proto_offset_resp_t r = {.offset = offset};
    proto_offset_resp_encode(&r, &resp.ext);
    resp.has_ext = true;
    broker_reply(b, req, &resp);
}

static void on_max_offset(broker_t *b, broker_req_t *req) {
    proto_queue_req_t h;
    proto_hdr_err_t err;
    if (proto_queue_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    reply_offset(b, req, store_max_offset(b->store, h.topic, h.queue_id));
}

static void on_min_offset(broker_t *b, broker_req_t *req) {
    proto_queue_req_t h;
    proto_hdr_err_t err;
    if (proto_queue_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    reply_offset(b, req, store_min_offset(b->store, h.topic, h.queue_id));
}

static void on_search_offset(broker_t *b, broker_req_t *req) {
    proto_search_offset_req_t h;
    proto_hdr_err_t err;
    if (proto_search_offset_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    reply_offset(b, req, store_offset_by_time(b->store, h.topic, h.queue_id, h.timestamp));
}

static void on_earliest_time(broker_t *b, broker_req_t *req) {
    proto_queue_req_t h;
    proto_hdr_err_t err;
    if (proto_queue_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, 0, NULL);
    proto_storetime_resp_t r = {.timestamp = store_earliest_time(b->store, h.topic, h.queue_id)};
    proto_storetime_resp_encode(&r, &resp.ext);
    resp.has_ext = true;
    broker_reply(b, req, &resp);
}

static void on_view_by_id(broker_t *b, broker_req_t *req) {
    proto_view_msg_req_t h;
    proto_hdr_err_t err;
    if (proto_view_msg_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    cm_buf_t rec = CM_BUF_INIT;
    proto_cmd_t resp;
    if (h.offset < 0 || store_read_record(b->store, h.offset, &rec) != RMQ_OK) {
        char remark[128];
        snprintf(remark, sizeof remark, "can not find message by the offset, %lld",
                 (long long)h.offset);
        proto_cmd_response(&resp, &req->cmd, RMQ_ERR_SYSTEM_ERROR, remark);
        cm_buf_free(&rec);
    } else {
        proto_cmd_response(&resp, &req->cmd, 0, NULL);
        proto_cmd_take_body(&resp, rec.data, rec.len);
    }
    broker_reply(b, req, &resp);
}

static void on_query_message(broker_t *b, broker_req_t *req) {
    proto_query_msg_req_t h;
    proto_hdr_err_t err;
    if (proto_query_msg_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    /* A UNIQ_KEY names one message, but retries and redeliveries may have stored copies. */
    int32_t max = h.unique_key_query ? DEFAULT_QUERY_MAX_NUM : h.max_num;
    store_query_result_t r = {0};
    rmq_err_t rc =
        store_query_by_key(b->store, h.topic, h.key, h.begin_timestamp, h.end_timestamp, max, &r);
    proto_cmd_t resp;
    if (rc == RMQ_OK && r.count > 0) {
        proto_cmd_response(&resp, &req->cmd, 0, NULL);
        proto_cmd_take_body(&resp, r.records.data, r.records.len);
        r.records = (cm_buf_t)CM_BUF_INIT;
    } else if (rc == RMQ_ERR_UNSUPPORTED) {
        proto_cmd_response(&resp, &req->cmd, RMQ_ERR_SYSTEM_ERROR,
                           "messageIndexEnable is false on this broker: query by key is off");
    } else {
        proto_cmd_response(&resp, &req->cmd, RMQ_ERR_QUERY_NOT_FOUND,
                           "can not find message, maybe time range not correct");
    }
    proto_query_msg_resp_t rh = {.index_last_update_timestamp = r.index_last_update_ts,
                                 .index_last_update_phyoffset = r.index_last_update_phy};
    proto_query_msg_resp_encode(&rh, &resp.ext);
    resp.has_ext = true;
    cm_buf_free(&r.records);
    broker_reply(b, req, &resp);
}

void broker_query_register(broker_t *b) {
    broker_set_processor(b, PROTO_GET_MAX_OFFSET, on_max_offset, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_GET_MIN_OFFSET, on_min_offset, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_SEARCH_OFFSET_BY_TIMESTAMP, on_search_offset, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_GET_EARLIEST_MSG_STORETIME, on_earliest_time, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_VIEW_MESSAGE_BY_ID, on_view_by_id, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_QUERY_MESSAGE, on_query_message, BROKER_EXEC_IO);
}
