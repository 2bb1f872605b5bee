/* Dead letters: listed and re-sent to their original topic through the public API
 * (rmq_broker_dlq_list, rmq_broker_dlq_resend), and the same over the wire with RocketMQ's
 * own requests as admin tools use them (route, offsets, PULL_MESSAGE, VIEW_MESSAGE_BY_ID,
 * send to RETRY_TOPIC). */
#include "tb.h"

#include "common/cm.h"

static char *dir;
static rmq_broker_t *broker;
static int fd;

static void setup(void) {
    dir = tb_tempdir();
    broker = tb_broker_start(dir, NULL);
    fd = tb_connect(rmq_broker_addr(broker));
}

static void teardown(void) {
    close(fd);
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(dlq, .init = setup, .fini = teardown);

/* Pulls topic/queue from offset; decodes up to max records into recs (they point into
 * resp, which the caller frees). Returns the count. */
static int pull(const char *topic, int32_t queue_id, int64_t offset, proto_cmd_t *resp,
                proto_record_t *recs, int max) {
    proto_cmd_t req;
    tb_pull_req(&req, "gview", topic, queue_id, offset, max, 0, 0, "*");
    tb_call(fd, &req, resp);
    int n = 0;
    for (size_t pos = 0; resp->code == 0 && pos < resp->body_len && n < max; n++) {
        cr_assert_eq(proto_record_decode(resp->body + pos, resp->body_len - pos, true, &recs[n]),
                     RMQ_OK);
        pos += (size_t)recs[n].total_size;
    }
    return n;
}

/* Produces body on Orig/0 and sends it straight to group's DLQ (delay level -1, as a
 * consumer giving up does). Returns the original's offset id in id. */
static void make_dead_letter(const char *group, const char *body, char *id, size_t size) {
    proto_cmd_t resp;
    cr_assert_eq(tb_produce(fd, "Orig", 0, "TagD", body, body, &resp), 0);
    const char *msg_id = proto_ext_get(&resp.ext, "msgId");
    snprintf(id, size, "%s", msg_id);
    proto_addr_t host;
    int64_t phys;
    cr_assert_eq(proto_offset_id_parse(msg_id, &host, &phys), RMQ_OK);
    proto_cmd_free(&resp);
    proto_cmd_request(&resp, PROTO_CONSUMER_SEND_MSG_BACK, tb_next_opaque());
    proto_send_back_req_t h = {
        .offset = phys, .group = group, .delay_level = -1, .origin_topic = "Orig"};
    proto_send_back_req_encode(&h, &resp.ext);
    proto_cmd_t reply;
    tb_call(fd, &resp, &reply);
    cr_assert_eq(reply.code, 0, "%s", reply.remark);
    proto_cmd_free(&reply);
}

typedef struct seen {
    int n;
    int64_t offsets[8];
    char bodies[8][32];
    char origin[8][64];
    int stop_after; /* 0 = never */
} seen_t;

static int on_dead(const rmq_msg_t *m, void *opaque) {
    seen_t *s = opaque;
    cr_assert_lt(s->n, 8);
    size_t len;
    const char *body = rmq_msg_body(m, &len);
    snprintf(s->bodies[s->n], sizeof s->bodies[0], "%.*s", (int)len, body);
    cr_assert_str_eq(rmq_msg_topic(m), "%DLQ%gd");
    cr_assert_str_eq(rmq_msg_property(m, "RETRY_TOPIC"), "Orig");
    cr_assert_str_eq(rmq_msg_tags(m), "TagD");
    cr_assert_eq(rmq_msg_reconsume_times(m), 1);
    snprintf(s->origin[s->n], sizeof s->origin[0], "%s", rmq_msg_property(m, "ORIGIN_MESSAGE_ID"));
    s->offsets[s->n++] = rmq_msg_queue_offset(m);
    return s->stop_after && s->n >= s->stop_after;
}

Test(dlq, list_and_resend_through_the_api) {
    cr_assert_eq(rmq_broker_create_topic(broker, "Orig", 2, 6), RMQ_OK);
    char ids[3][64];
    const char *bodies[] = {"dead-0", "dead-1", "dead-2"};
    for (int i = 0; i < 3; i++)
        make_dead_letter("gd", bodies[i], ids[i], sizeof ids[i]);

    seen_t s = {0};
    int64_t next = -1;
    cr_assert_eq(rmq_broker_dlq_list(broker, "gd", 0, 100, on_dead, &s, &next), RMQ_OK);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(next, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.bodies[i], bodies[i]);
        cr_assert_eq(s.offsets[i], i);
        cr_assert_str_eq(s.origin[i], ids[i], "ORIGIN_MESSAGE_ID is the first delivery's id");
    }
    /* Paging and stopping early. */
    seen_t page = {.stop_after = 1};
    cr_assert_eq(rmq_broker_dlq_list(broker, "gd", 1, 100, on_dead, &page, &next), RMQ_OK);
    cr_assert_eq(page.n, 1);
    cr_assert_str_eq(page.bodies[0], "dead-1");
    cr_assert_eq(next, 2);
    seen_t none = {0};
    cr_assert_eq(rmq_broker_dlq_list(broker, "nobody", 0, 10, on_dead, &none, &next), RMQ_OK);
    cr_assert_eq(none.n, 0);
    cr_assert_eq(next, 0);

    /* Re-send dead-1 to Orig: a fresh copy on one of its queues. */
    int64_t before = tb_max_offset(fd, "Orig", 0) + tb_max_offset(fd, "Orig", 1);
    char new_id[RMQ_MSG_ID_SIZE] = "";
    cr_assert_eq(rmq_broker_dlq_resend(broker, "gd", 1, new_id, sizeof new_id), RMQ_OK);
    cr_assert_eq(tb_max_offset(fd, "Orig", 0) + tb_max_offset(fd, "Orig", 1), before + 1);
    proto_addr_t host;
    int64_t phys;
    cr_assert_eq(proto_offset_id_parse(new_id, &host, &phys), RMQ_OK);
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_VIEW_MESSAGE_BY_ID, tb_next_opaque());
    proto_view_msg_req_t vh = {.offset = phys};
    proto_view_msg_req_encode(&vh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_eq(rec.topic_len, 4);
    cr_assert_eq(memcmp(rec.topic, "Orig", 4), 0);
    cr_assert_eq(rec.reconsume_times, 0);
    cr_assert_eq(rec.body_len, 6);
    cr_assert_eq(memcmp(rec.body, "dead-1", 6), 0);
    cr_assert(tb_prop_is(&rec, PROP_TAGS, "TagD"));
    cr_assert(tb_prop_is(&rec, PROP_KEYS, "dead-1"));
    cr_assert(tb_prop_is(&rec, PROP_ORIGIN_MESSAGE_ID, ids[1]));
    cr_assert(tb_prop_is(&rec, PROP_DELAY, NULL), "routing properties dropped");
    cr_assert(tb_prop_is(&rec, PROP_REAL_TOPIC, NULL));
    proto_cmd_free(&resp);
    /* The dead letter stays listed. */
    seen_t again = {0};
    cr_assert_eq(rmq_broker_dlq_list(broker, "gd", 0, 100, on_dead, &again, NULL), RMQ_OK);
    cr_assert_eq(again.n, 3);

    /* Bad requests get clear errors and change nothing. */
    cr_assert_eq(rmq_broker_dlq_resend(broker, "gd", 3, NULL, 0), RMQ_ERR_NOT_FOUND);
    cr_assert_eq(rmq_broker_dlq_resend(broker, "nobody", 0, NULL, 0), RMQ_ERR_NOT_FOUND);
    cr_assert_eq(rmq_broker_dlq_resend(broker, "bad group!", 0, NULL, 0), RMQ_ERR_BAD_TOPIC);
    cr_assert_eq(rmq_broker_dlq_resend(NULL, "gd", 0, NULL, 0), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_broker_dlq_list(broker, "gd", 0, 0, on_dead, &none, NULL),
                 RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_broker_dlq_list(broker, "gd", -1, 5, on_dead, &none, NULL),
                 RMQ_ERR_INVALID_ARG);
    cr_assert_eq(tb_max_offset(fd, "Orig", 0) + tb_max_offset(fd, "Orig", 1), before + 1);
}

Test(dlq, resend_to_a_deleted_topic_is_refused) {
    /* A dead letter whose RETRY_TOPIC names a topic the broker does not have. */
    char id[64];
    make_dead_letter("gx", "lost-topic", id, sizeof id);
    /* Orig was auto-created on the first send; the resend works. */
    cr_assert_eq(rmq_broker_dlq_resend(broker, "gx", 0, NULL, 0), RMQ_OK);
    /* A topic that was never there: send straight to %DLQ% is impossible for producers
     * (not a %RETRY% topic), so the group's DLQ of a retried send is used. */
    proto_props_t p = {0};
    proto_props_set(&p, PROP_RETRY_TOPIC, "NeverCreated");
    char *text = tb_props_text(&p);
    proto_send_req_t h;
    tb_send_header(&h, "%RETRY%gx", 0, text);
    h.reconsume_times = 16; /* past the group's 16 retries: the DLQ */
    proto_cmd_t cmd, resp;
    tb_send_cmd(&cmd, &h, "orphan", 6);
    tb_call(fd, &cmd, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_cmd_free(&resp);
    cm_free(text);
    proto_props_free(&p);
    cr_assert_eq(rmq_broker_dlq_resend(broker, "gx", 1, NULL, 0), RMQ_ERR_TOPIC_NOT_EXIST);
}

/* What an admin tool does over the wire (rocketmq-dashboard lists a DLQ this way, mqadmin
 * queryMsgById fetches one), with no librmq-specific request: the route of %DLQ%<group>
 * (GET_ROUTEINFO_BY_TOPIC), its queue's range (GET_MIN_OFFSET / GET_MAX_OFFSET, or
 * SEARCH_OFFSET_BY_TIMESTAMP from a time), the dead letters (PULL_MESSAGE), one of them by
 * its offset id (VIEW_MESSAGE_BY_ID), and a copy sent to its RETRY_TOPIC (SEND_MESSAGE). */
static int64_t search_offset(const char *topic, int32_t queue_id, int64_t timestamp) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_SEARCH_OFFSET_BY_TIMESTAMP, tb_next_opaque());
    proto_search_offset_req_t h = {.topic = topic, .queue_id = queue_id, .timestamp = timestamp};
    proto_search_offset_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    int64_t offset = tb_ext_int(&resp, "offset");
    proto_cmd_free(&resp);
    return offset;
}

static void dlq_route(const char *topic, proto_topic_route_t *route) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_GET_ROUTEINFO_BY_TOPIC, tb_next_opaque());
    proto_route_req_t h = {.topic = topic};
    proto_route_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    cr_assert_eq(proto_topic_route_decode(resp.body, resp.body_len, route), RMQ_OK);
    proto_cmd_free(&resp);
}

Test(dlq, list_and_resend_over_the_wire_as_admin_tools_do) {
    int64_t before_ms = cm_now_ms();
    char ids[2][64];
    make_dead_letter("gw", "wire-0", ids[0], sizeof ids[0]);
    make_dead_letter("gw", "wire-1", ids[1], sizeof ids[1]);

    /* The DLQ topic is routed like any other: one queue, readable and writable. */
    proto_topic_route_t route = {0};
    dlq_route("%DLQ%gw", &route);
    cr_assert_eq(route.queue_count, 1);
    cr_assert_eq(route.queues[0].read_queue_nums, 1);
    cr_assert_eq(route.queues[0].perm & 6, 6);
    proto_topic_route_free(&route);

    /* Its range, from the ends and by time (what the dashboard's page query starts with). */
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_GET_MIN_OFFSET, tb_next_opaque());
    proto_queue_req_t qh = {.topic = "%DLQ%gw", .queue_id = 0};
    proto_queue_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(tb_ext_int(&resp, "offset"), 0);
    proto_cmd_free(&resp);
    cr_assert_eq(tb_max_offset(fd, "%DLQ%gw", 0), 2);
    cr_assert_eq(search_offset("%DLQ%gw", 0, before_ms - 1000), 0);

    /* The dead letters, then the second one again by its offset id. */
    proto_record_t recs[4];
    cr_assert_eq(pull("%DLQ%gw", 0, 0, &resp, recs, 4), 2);
    char dlq_id[64];
    proto_offset_id_format(&recs[1].store_host, recs[1].physical_offset, dlq_id, sizeof dlq_id);
    cr_assert(tb_prop_is(&recs[1], PROP_ORIGIN_MESSAGE_ID, ids[1]));
    proto_cmd_free(&resp);

    proto_addr_t host;
    int64_t phys;
    cr_assert_eq(proto_offset_id_parse(dlq_id, &host, &phys), RMQ_OK);
    proto_cmd_request(&req, PROTO_VIEW_MESSAGE_BY_ID, tb_next_opaque());
    proto_view_msg_req_t vh = {.offset = phys};
    proto_view_msg_req_encode(&vh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    proto_props_t p = {0};
    cr_assert_eq(proto_props_parse(rec.props, (size_t)rec.props_len, &p), RMQ_OK);
    char *topic = cm_strdup(proto_props_get(&p, PROP_RETRY_TOPIC));
    cr_assert_str_eq(topic, "Orig");
    char *body = cm_strndup((const char *)rec.body, (size_t)rec.body_len);
    cr_assert_str_eq(body, "wire-1");
    proto_cmd_free(&resp);

    /* Re-sent to its topic: one more message there; the DLQ keeps its two. */
    int64_t before = tb_max_offset(fd, "Orig", 0);
    cr_assert_eq(tb_produce(fd, topic, 0, "TagD", NULL, body, NULL), 0);
    cr_assert_eq(tb_max_offset(fd, "Orig", 0), before + 1);
    cr_assert_eq(tb_max_offset(fd, "%DLQ%gw", 0), 2);
    proto_props_free(&p);
    cm_free(topic);
    cm_free(body);
}

/* A consumer of group on a raw connection: HEART_BEAT with Orig subscribed. */
static int raw_consumer(const char *group, const char *client_id) {
    int cfd = tb_connect(rmq_broker_addr(broker));
    proto_heartbeat_t hb = {0};
    hb.client_id = cm_strdup(client_id);
    proto_consumer_data_t *c = proto_heartbeat_add_consumer(&hb);
    c->group_name = cm_strdup(group);
    c->consume_type = PROTO_CONSUME_PASSIVELY;
    c->message_model = PROTO_CLUSTERING;
    c->consume_from_where = PROTO_CONSUME_FROM_FIRST_OFFSET;
    proto_subscription_t *s = proto_consumer_data_add_sub(c);
    s->topic = cm_strdup("Orig");
    proto_subscription_set_tags(s, "TagD");
    s->sub_version = 1;
    s->expression_type = cm_strdup("TAG");
    cm_buf_t body = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &body);
    proto_heartbeat_free(&hb);
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_HEART_BEAT, tb_next_opaque());
    req.version = 395; /* a 4.9 Java client */
    proto_cmd_take_body(&req, body.data, body.len);
    tb_call(cfd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&resp);
    return cfd;
}

static void connection_list(const char *group, proto_cmd_t *resp) {
    proto_cmd_t req;
    proto_cmd_request(&req, PROTO_GET_CONSUMER_CONNECTION_LIST, tb_next_opaque());
    proto_group_req_t h = {.consumer_group = group};
    proto_group_req_encode(&h, &req.ext);
    tb_call(fd, &req, resp);
}

static int32_t send_consume_directly(const char *group, const char *client_id, const char *id) {
    proto_cmd_t req;
    int32_t opaque = tb_next_opaque();
    proto_cmd_request(&req, PROTO_CONSUME_MESSAGE_DIRECTLY, opaque);
    proto_consume_direct_req_t h = {.consumer_group = group, .client_id = client_id, .msg_id = id};
    proto_consume_direct_req_encode(&h, &req.ext);
    cr_assert(tb_send(fd, &req));
    return opaque;
}

/* The dashboard's "resend" of a dead letter: GET_CONSUMER_CONNECTION_LIST (203) names the
 * group's online clients, CONSUME_MESSAGE_DIRECTLY (309) asks the broker to hand the
 * message to one of them; the broker forwards it with the record as the body and relays the
 * client's answer (ConsumeMessageDirectlyResult) unchanged. */
Test(dlq, consume_directly_as_the_dashboard_resends) {
    char id[64];
    make_dead_letter("gc", "direct-0", id, sizeof id);
    proto_cmd_t resp;
    proto_record_t recs[2];
    cr_assert_eq(pull("%DLQ%gc", 0, 0, &resp, recs, 2), 1);
    char dlq_id[64];
    proto_offset_id_format(&recs[0].store_host, recs[0].physical_offset, dlq_id, sizeof dlq_id);
    proto_cmd_free(&resp);

    connection_list("gc", &resp);
    cr_assert_eq(resp.code, RMQ_ERR_CONSUMER_NOT_ONLINE);
    cr_assert_str_eq(resp.remark, "the consumer group[gc] not online");
    proto_cmd_free(&resp);
    int cfd = raw_consumer("gc", "127.0.0.1@direct");

    /* Who is online, as ConsumerConnection. */
    connection_list("gc", &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_json_t *cc;
    cr_assert_eq(proto_json_parse((const char *)resp.body, resp.body_len, &cc), RMQ_OK);
    const proto_json_t *set = proto_json_get(cc, "connectionSet");
    cr_assert(set && set->len == 1);
    cr_assert_str_eq(proto_json_get_str(set->items[0], "clientId", ""), "127.0.0.1@direct");
    cr_assert_str_eq(proto_json_get_str(set->items[0], "language", ""), "CPP");
    cr_assert_eq(proto_json_get_int(set->items[0], "version", 0), 395);
    cr_assert_eq(strncmp(proto_json_get_str(set->items[0], "clientAddr", ""), "127.0.0.1:", 10), 0);
    cr_assert_str_eq(proto_json_get_str(cc, "consumeType", ""), "CONSUME_PASSIVELY");
    cr_assert_str_eq(proto_json_get_str(cc, "messageModel", ""), "CLUSTERING");
    cr_assert_str_eq(proto_json_get_str(cc, "consumeFromWhere", ""), "CONSUME_FROM_FIRST_OFFSET");
    const proto_json_t *sub = proto_json_get(proto_json_get(cc, "subscriptionTable"), "Orig");
    cr_assert_not_null(sub);
    cr_assert_str_eq(proto_json_get_str(sub, "subString", ""), "TagD");
    proto_json_free(cc);
    proto_cmd_free(&resp);

    /* A client that is not in the group. */
    int32_t op = send_consume_directly("gc", "127.0.0.1@nobody", dlq_id);
    tb_recv_for(fd, op, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_ERROR);
    cr_assert_str_eq(resp.remark, "The Consumer <gc> <127.0.0.1@nobody> not online");
    proto_cmd_free(&resp);

    /* Forwarded to the client with the dead letter; its answer comes back. */
    op = send_consume_directly("gc", "127.0.0.1@direct", dlq_id);
    proto_cmd_t fwd;
    cr_assert(tb_recv(cfd, &fwd));
    cr_assert_eq(fwd.code, PROTO_CONSUME_MESSAGE_DIRECTLY);
    cr_assert_eq(fwd.flag & PROTO_FLAG_RESPONSE, 0);
    cr_assert_str_eq(proto_ext_get(&fwd.ext, "consumerGroup"), "gc");
    cr_assert_str_eq(proto_ext_get(&fwd.ext, "clientId"), "127.0.0.1@direct");
    cr_assert_str_eq(proto_ext_get(&fwd.ext, "msgId"), dlq_id);
    cr_assert_not_null(proto_ext_get(&fwd.ext, "brokerName"));
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(fwd.body, fwd.body_len, true, &rec), RMQ_OK);
    cr_assert_eq(rec.body_len, 8);
    cr_assert_eq(memcmp(rec.body, "direct-0", 8), 0);
    cr_assert(tb_prop_is(&rec, PROP_RETRY_TOPIC, "Orig"));
    static const char result[] = "{\"autoCommit\":true,\"consumeResult\":\"CR_SUCCESS\","
                                 "\"order\":false,\"remark\":\"consumed\",\"spentTimeMills\":3}";
    proto_cmd_t answer;
    proto_cmd_response(&answer, &fwd, 0, NULL);
    proto_cmd_set_body(&answer, result, sizeof result - 1);
    cr_assert(tb_send(cfd, &answer));
    proto_cmd_free(&fwd);
    tb_recv_for(fd, op, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    cr_assert_eq(resp.body_len, sizeof result - 1);
    cr_assert_eq(memcmp(resp.body, result, sizeof result - 1), 0);
    proto_cmd_free(&resp);

    /* The client goes away before it answers: the admin gets an error, not silence. */
    op = send_consume_directly("gc", "127.0.0.1@direct", dlq_id);
    cr_assert(tb_recv(cfd, &fwd));
    proto_cmd_free(&fwd);
    close(cfd);
    tb_recv_for(fd, op, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_ERROR);
    cr_assert(strstr(resp.remark, "invoke consumer <gc> <127.0.0.1@direct> Exception"), "%s",
              resp.remark);
    proto_cmd_free(&resp);

    /* An id that names no message. */
    op = send_consume_directly("gc", "127.0.0.1@direct", "7F00000100002A9F00000000FFFFFF00");
    tb_recv_for(fd, op, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_ERROR);
    proto_cmd_free(&resp);

    /* Still waiting for a client when the broker is destroyed (teardown): nothing leaks. */
    int cfd2 = raw_consumer("gc", "127.0.0.1@slow");
    send_consume_directly("gc", "127.0.0.1@slow", dlq_id);
    cr_assert(tb_recv(cfd2, &fwd));
    proto_cmd_free(&fwd);
}
