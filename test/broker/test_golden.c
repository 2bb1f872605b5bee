/* Golden: the Java 4.9.8 client's captured request frames (310, 320, 11, 14, 15) replayed
 * to our broker; the responses must have the codes and extFields of the captured Java
 * broker responses (values that depend on time and position aside). */
#include "tb.h"

static void capture(const char *file, proto_cmd_t *cmd) {
    char *path = cm_sprintf("%s/rocketmq-4.9.8/frames/%s", getenv("TEST_DATA"), file);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    proto_cmd_init(cmd);
    cr_assert_eq(proto_frame_decode(buf, len, PROTO_MAX_FRAME, cmd), RMQ_OK, "%s", file);
    cm_free(path);
}

/* Same code and the same set of ext keys; keys listed in same_values must match exactly. */
static void same_shape(const proto_cmd_t *ours, const char *java_file, const char **same_values) {
    proto_cmd_t java;
    capture(java_file, &java);
    cr_assert_eq(ours->code, java.code, "%s: code %d (%s)", java_file, ours->code,
                 ours->remark ? ours->remark : "");
    cr_assert_eq(ours->ext.count, java.ext.count, "%s: %zu ext fields, Java has %zu", java_file,
                 ours->ext.count, java.ext.count);
    for (size_t i = 0; i < java.ext.count; i++)
        cr_assert_not_null(proto_ext_get(&ours->ext, java.ext.keys[i]), "%s: no %s", java_file,
                           java.ext.keys[i]);
    for (; same_values && *same_values; same_values++)
        cr_assert_str_eq(proto_ext_get(&ours->ext, *same_values),
                         proto_ext_get(&java.ext, *same_values), "%s: %s", java_file, *same_values);
    if (java.remark)
        cr_assert_str_eq(ours->remark, java.remark);
    else
        cr_assert_null(ours->remark);
    proto_cmd_free(&java);
}

/* Queue 0's first record is message k-s1 (the second 310 capture) in both brokers: ours
 * must be byte for byte the Java broker's, but for the born host's port, the store time
 * and the store host's port. */
static void same_stored_record(const proto_cmd_t *ours, const char *java_file) {
    proto_cmd_t java;
    capture(java_file, &java);
    proto_record_t a, b;
    cr_assert_eq(proto_record_decode(ours->body, ours->body_len, true, &a), RMQ_OK);
    cr_assert_eq(proto_record_decode(java.body, java.body_len, true, &b), RMQ_OK);
    cr_assert_eq(a.total_size, b.total_size);
    cr_assert_eq(a.body_crc, b.body_crc);
    cr_assert_eq(a.queue_id, b.queue_id);
    cr_assert_eq(a.flag, b.flag);
    cr_assert_eq(a.queue_offset, b.queue_offset);
    cr_assert_eq(a.physical_offset, b.physical_offset);
    cr_assert_eq(a.sys_flag, b.sys_flag);
    cr_assert_eq(a.born_timestamp, b.born_timestamp);
    cr_assert_eq(memcmp(a.born_host.ip, b.born_host.ip, 4), 0);
    cr_assert_eq(memcmp(a.store_host.ip, b.store_host.ip, 4), 0);
    cr_assert_eq(a.reconsume_times, b.reconsume_times);
    cr_assert_eq(a.prepared_tx_offset, b.prepared_tx_offset);
    cr_assert_eq(a.body_len, b.body_len);
    cr_assert_eq(memcmp(a.body, b.body, (size_t)a.body_len), 0);
    cr_assert_eq(a.topic_len, b.topic_len);
    cr_assert_eq(memcmp(a.topic, b.topic, (size_t)a.topic_len), 0);
    cr_assert_eq(a.props_len, b.props_len, "props %.*s vs Java %.*s", a.props_len, a.props,
                 b.props_len, b.props);
    cr_assert_eq(memcmp(a.props, b.props, (size_t)a.props_len), 0, "props %.*s vs Java %.*s",
                 a.props_len, a.props, b.props_len, b.props);
    proto_cmd_free(&java);
}

static void replay(int fd, const char *file, proto_cmd_t *resp) {
    proto_cmd_t req;
    capture(file, &req);
    tb_call(fd, &req, resp);
}

/* The push consumer's heartbeat (not captured): group icg29930 on IopTopic29930, "*". */
static void heartbeat(int fd) {
    proto_heartbeat_t hb = {0};
    hb.client_id = cm_strdup("127.0.0.1@golden");
    proto_consumer_data_t *c = proto_heartbeat_add_consumer(&hb);
    c->group_name = cm_strdup("icg29930");
    c->consume_type = PROTO_CONSUME_PASSIVELY;
    c->message_model = PROTO_CLUSTERING;
    c->consume_from_where = PROTO_CONSUME_FROM_FIRST_OFFSET;
    proto_subscription_t *s = proto_consumer_data_add_sub(c);
    s->topic = cm_strdup("IopTopic29930");
    proto_subscription_set_tags(s, "*");
    s->sub_version = INT64_C(1795579032190) + 1000000;
    s->expression_type = cm_strdup("TAG");
    cm_buf_t body = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &body);
    proto_heartbeat_free(&hb);
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_HEART_BEAT, tb_next_opaque());
    proto_cmd_take_body(&req, body.data, body.len);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&resp);
}

Test(golden, java_4_9_8_exchanges) {
    char *dir = tb_tempdir();
    rmq_broker_t *b = tb_broker_start(dir, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    proto_cmd_t resp;
    static const char *send_same[] = {"queueId", "MSG_REGION", "TRACE_ON", "queueOffset", NULL};

    replay(fd, "broker-req-310-c2s-1.bin", &resp); /* first message: auto-creates the topic */
    same_shape(&resp, "broker-resp-310-code0-1.bin", send_same);
    cr_assert_eq(strlen(proto_ext_get(&resp.ext, "msgId")), 32);
    proto_cmd_free(&resp);
    replay(fd, "broker-req-310-c2s-2.bin", &resp);
    static const char *send_same2[] = {"MSG_REGION", "TRACE_ON", NULL};
    same_shape(&resp, "broker-resp-310-code0-2.bin", send_same2);
    proto_cmd_free(&resp);

    replay(fd, "broker-req-320-c2s-1.bin", &resp);
    same_shape(&resp, "broker-resp-320-code0-1.bin", send_same2);
    /* 50 comma-joined offset ids, as the Java broker answered. */
    const char *ids = proto_ext_get(&resp.ext, "msgId");
    size_t commas = 0;
    for (const char *p = ids; *p; p++)
        commas += *p == ',';
    cr_assert_eq(commas, 49);
    proto_cmd_free(&resp);

    /* The captured pulls are for queues 0 and 2 from offset 0, with SUSPEND: give them data. */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tb_produce(fd, "IopTopic29930", 0, "A", NULL, "x", NULL), 0);
        cr_assert_eq(tb_produce(fd, "IopTopic29930", 2, "A", NULL, "x", NULL), 0);
    }
    heartbeat(fd);
    static const char *pull_same[] = {"suggestWhichBrokerId", "minOffset", NULL};
    replay(fd, "broker-req-11-c2s-1.bin", &resp);
    same_shape(&resp, "broker-resp-11-code0-1.bin", pull_same);
    cr_assert_gt(tb_count_records(&resp), 0);
    same_stored_record(&resp, "broker-resp-11-code0-1.bin");
    proto_cmd_free(&resp);
    replay(fd, "broker-req-11-c2s-2.bin", &resp);
    same_shape(&resp, "broker-resp-11-code0-2.bin", pull_same);
    proto_cmd_free(&resp);

    static const char *offset_same[] = {"offset", NULL};
    replay(fd, "broker-req-14-c2s-1.bin", &resp);
    same_shape(&resp, "broker-resp-14-code0-1.bin", offset_same);
    proto_cmd_free(&resp);

    /* 15 is oneway: no answer; the next 14 for that queue sees the committed 32. */
    proto_cmd_t req;
    capture("broker-req-15-c2s-2.bin", &req);
    cr_assert(proto_cmd_is_oneway(&req));
    cr_assert(tb_send(fd, &req));
    capture("broker-req-14-c2s-2.bin", &req);
    proto_ext_set(&req.ext, "queueId", "3");
    tb_call(fd, &req, &resp);
    same_shape(&resp, "broker-resp-14-code0-2.bin", NULL);
    cr_assert_str_eq(proto_ext_get(&resp.ext, "offset"), "32");
    proto_cmd_free(&resp);

    /* QUERY_MESSAGE by the UNIQ_KEY the Java client gave message k-s0. */
    proto_cmd_request(&req, PROTO_QUERY_MESSAGE, tb_next_opaque());
    proto_query_msg_req_t qh = {.topic = "IopTopic29930",
                                .key = "FD000000000000000000000000000002232330946E097C71C6530000",
                                .max_num = 1,
                                .begin_timestamp = 0,
                                .end_timestamp = INT64_MAX,
                                .unique_key_query = true};
    proto_query_msg_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark ? resp.remark : "");
    cr_assert_eq(tb_count_records(&resp), 1);
    cr_assert_not_null(proto_ext_get(&resp.ext, "indexLastUpdateTimestamp"));
    proto_cmd_free(&resp);

    close(fd);
    rmq_broker_destroy(b);
    tb_rmrf(dir);
    cm_free(dir);
}
