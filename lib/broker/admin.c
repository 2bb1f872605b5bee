/* lib/broker/admin.c: the admin requests RocketMQ's console uses on consumer groups —
 * GET_CONSUMER_CONNECTION_LIST (203), who is online in a group, and CONSUME_MESSAGE_DIRECTLY
 * (309), which the broker forwards to one of them with the message, as the dashboard's
 * "resend" of a dead letter does: the client consumes it in place and its answer
 * (ConsumeMessageDirectlyResult) goes back to the admin unchanged. */
#include <stdio.h>

#include "broker/broker_int.h"
#include "net/net.h"

/* How long a client may take to consume the message (Broker2Client.callClient's wait). */
#define CALL_CLIENT_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- 203 */

static void on_connection_list(broker_t *b, broker_req_t *req) {
    proto_group_req_t h;
    proto_hdr_err_t err;
    if (proto_group_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    broker_group_view_t v;
    if (!broker_clients_group_view(b->clients, h.consumer_group, &v)) {
        broker_reply_fmt(b, req, RMQ_ERR_CONSUMER_NOT_ONLINE, "the consumer group[%s] not online",
                         h.consumer_group);
        return;
    }
    proto_connection_t *conns = cm_calloc(v.n_members, sizeof *conns);
    for (size_t i = 0; i < v.n_members; i++)
        conns[i] = (proto_connection_t){.client_id = v.members[i].client_id,
                                        .client_addr = net_conn_peer_text(v.members[i].conn),
                                        .language = v.members[i].language,
                                        .version = v.members[i].version};
    proto_consumer_connection_t cc = {.conns = conns,
                                      .conn_count = v.n_members,
                                      .subs = v.subs,
                                      .sub_count = v.n_subs,
                                      .consume_type = v.consume_type,
                                      .message_model = v.message_model,
                                      .consume_from_where = v.consume_from_where};
    cm_buf_t body = CM_BUF_INIT;
    proto_consumer_connection_encode(&cc, &body);
    cm_free(conns);
    broker_clients_group_view_free(b->clients, &v);
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, 0, NULL);
    proto_cmd_take_body(&resp, body.data, body.len);
    broker_reply(b, req, &resp);
}

/* ---------------------------------------------------------------- 309 */

typedef struct direct_call {
    broker_t *b;
    broker_req_t *req; /* the admin's request, answered when the client answers */
    char group[256], client_id[256];
} direct_call_t;

/* The client's answer (or why there is none) becomes the admin's response. */
static void on_client_answer(rmq_err_t err, proto_cmd_t *answer, void *arg) {
    direct_call_t *call = arg;
    broker_t *b = call->b;
    if (err == RMQ_ERR_TIMEOUT) {
        broker_reply_fmt(b, call->req, RMQ_ERR_CONSUME_MSG_TIMEOUT,
                         "consumer <%s> <%s> Timeout: %s", call->group, call->client_id,
                         rmq_err_name(err));
    } else if (err != RMQ_OK) {
        broker_reply_fmt(b, call->req, RMQ_ERR_SYSTEM_ERROR,
                         "invoke consumer <%s> <%s> Exception: %s", call->group, call->client_id,
                         rmq_err_name(err));
    } else {
        proto_cmd_t resp;
        proto_cmd_response(&resp, &call->req->cmd, answer->code, answer->remark);
        proto_ext_free(&resp.ext);
        resp.ext = answer->ext; /* moved: the client's fields go back as they came */
        resp.has_ext = answer->has_ext;
        answer->ext = (proto_ext_t){0};
        proto_cmd_take_body(&resp, answer->body, answer->body_len);
        answer->body = NULL;
        answer->body_len = 0;
        broker_reply(b, call->req, &resp);
    }
    cm_free(call);
}

/* Reads the record msg_id (an offset id) names into *rec. */
static bool read_by_offset_id(broker_t *b, const char *msg_id, cm_buf_t *rec) {
    proto_addr_t host;
    int64_t offset;
    return msg_id && proto_offset_id_parse(msg_id, &host, &offset) == RMQ_OK && offset >= 0 &&
           store_read_record(b->store, offset, rec) == RMQ_OK;
}

static void on_consume_directly(broker_t *b, broker_req_t *req) {
    proto_consume_direct_req_t h;
    proto_hdr_err_t err;
    if (proto_consume_direct_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    cm_buf_t rec = CM_BUF_INIT;
    if (!read_by_offset_id(b, h.msg_id, &rec)) {
        cm_buf_free(&rec);
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "can not find message by the id, %s",
                         h.msg_id ? h.msg_id : "(none)");
        return;
    }
    struct net_conn *conn =
        h.client_id ? broker_clients_consumer_conn(b->clients, h.consumer_group, h.client_id)
                    : NULL;
    if (!conn) {
        cm_buf_free(&rec);
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "The Consumer <%s> <%s> not online",
                         h.consumer_group, h.client_id ? h.client_id : "");
        return;
    }
    direct_call_t *call = cm_calloc(1, sizeof *call);
    call->b = b;
    call->req = req;
    cm_strcpy_cut(call->group, sizeof call->group, h.consumer_group);
    cm_strcpy_cut(call->client_id, sizeof call->client_id, h.client_id);
    /* The admin's fields go to the client as they came, brokerName set to ours. */
    proto_cmd_t fwd;
    proto_cmd_request(&fwd, PROTO_CONSUME_MESSAGE_DIRECTLY, 0);
    for (size_t i = 0; i < req->cmd.ext.count; i++)
        proto_ext_set(&fwd.ext, req->cmd.ext.keys[i], req->cmd.ext.vals[i]);
    proto_ext_set(&fwd.ext, "brokerName", b->name);
    fwd.has_ext = true;
    proto_cmd_take_body(&fwd, rec.data, rec.len);
    rmq_err_t rc = net_conn_request(conn, &fwd, CALL_CLIENT_TIMEOUT_MS, on_client_answer, call);
    net_conn_unref(conn);
    if (rc != RMQ_OK) on_client_answer(rc, NULL, call);
}

void broker_admin_register(broker_t *b) {
    broker_set_processor(b, PROTO_GET_CONSUMER_CONNECTION_LIST, on_connection_list, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_CONSUME_MESSAGE_DIRECTLY, on_consume_directly, BROKER_EXEC_IO);
}
