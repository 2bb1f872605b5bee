/* Broker core through the public API and raw frames over loopback: send and pull back,
 * topic auto-creation, long polling woken by a send, offsets across a restart, look-ups,
 * size limit and the start/stop life cycle. */
#include "tb.h"

#include <pthread.h>

#include "common/cm.h"

static char *dir;
static rmq_broker_t *broker;

static void setup(void) {
    dir = tb_tempdir();
    broker = tb_broker_start(dir, NULL);
}

static void teardown(void) {
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(broker, .init = setup, .fini = teardown);

Test(broker, send_then_pull_back) {
    int fd = tb_connect(rmq_broker_addr(broker));
    proto_cmd_t resp;
    for (int i = 0; i < 10; i++) {
        char body[32];
        snprintf(body, sizeof body, "hello-%d", i);
        cr_assert_eq(tb_produce(fd, "SendPull", 1, "A", "k1", body, &resp), 0, "%s",
                     resp.remark ? resp.remark : "");
        cr_assert_eq(tb_ext_int(&resp, "queueId"), 1);
        cr_assert_eq(tb_ext_int(&resp, "queueOffset"), i);
        cr_assert_str_eq(proto_ext_get(&resp.ext, "MSG_REGION"), "DefaultRegion");
        cr_assert_str_eq(proto_ext_get(&resp.ext, "TRACE_ON"), "true");
        cr_assert_eq(strlen(proto_ext_get(&resp.ext, "msgId")), 32);
        proto_cmd_free(&resp);
    }
    proto_cmd_t req;
    tb_pull_req(&req, "g1", "SendPull", 1, 0, 32, 0, 0, "*");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    cr_assert_str_eq(resp.remark, "FOUND");
    cr_assert_eq(tb_count_records(&resp), 10);
    cr_assert_eq(tb_ext_int(&resp, "nextBeginOffset"), 10);
    cr_assert_eq(tb_ext_int(&resp, "maxOffset"), 10);
    cr_assert_eq(tb_ext_int(&resp, "minOffset"), 0);
    cr_assert_eq(tb_ext_int(&resp, "suggestWhichBrokerId"), 0);
    /* The stored copy: CLUSTER added, WAIT dropped, born host = our socket's address. */
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    const char *v;
    size_t n;
    cr_assert(proto_props_find(rec.props, (size_t)rec.props_len, PROP_CLUSTER, &v, &n));
    cr_assert_eq(n, strlen("DefaultCluster"));
    cr_assert_not(proto_props_find(rec.props, (size_t)rec.props_len, PROP_WAIT, &v, &n));
    cr_assert_eq(rec.born_host.ip_len, 4);
    cr_assert_eq(rec.born_host.ip[0], 127);
    cr_assert_eq(rec.body_len, 7);
    cr_assert_eq(memcmp(rec.body, "hello-0", 7), 0);
    proto_cmd_free(&resp);
    /* Past the end: 19 with nextBeginOffset unchanged. */
    tb_pull_req(&req, "g1", "SendPull", 1, 10, 32, 0, 0, "*");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_PULL_NOT_FOUND);
    cr_assert_eq(tb_ext_int(&resp, "nextBeginOffset"), 10);
    proto_cmd_free(&resp);
    close(fd);
}

Test(broker, tag_filter) {
    int fd = tb_connect(rmq_broker_addr(broker));
    const char *tags[] = {"A", "B", "A", "C", "B"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tb_produce(fd, "Tags", 0, tags[i], NULL, "x", NULL), 0);
    proto_cmd_t req, resp;
    tb_pull_req(&req, "g", "Tags", 0, 0, 32, 0, 0, "B || C");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(tb_count_records(&resp), 3);
    cr_assert_eq(tb_ext_int(&resp, "nextBeginOffset"), 5);
    proto_cmd_free(&resp);
    tb_pull_req(&req, "g", "Tags", 0, 0, 32, 0, 0, "Z");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_PULL_RETRY_IMMEDIATELY);
    proto_cmd_free(&resp);
    close(fd);
}

Test(broker, auto_create_from_tbw102) {
    int fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(tb_produce(fd, "AutoTopic", 2, NULL, NULL, "x", NULL), 0);
    /* The default topic's queue count asked for by the client (d=4) caps the new topic. */
    proto_cmd_t resp;
    cr_assert_eq(tb_produce(fd, "AutoTopic", 4, NULL, NULL, "x", &resp), RMQ_ERR_SYSTEM_ERROR);
    proto_cmd_free(&resp);
    /* System topics are not writable. */
    cr_assert_eq(tb_produce(fd, "SCHEDULE_TOPIC_XXXX", 0, NULL, NULL, "x", NULL),
                 RMQ_ERR_NO_PERMISSION);
    cr_assert_eq(tb_produce(fd, "bad topic!", 0, NULL, NULL, "x", NULL), RMQ_ERR_SYSTEM_ERROR);
    close(fd);
    /* A topic made by a send reaches topics.json from the service thread within a second
     * (the send thread does not wait for the disk). */
    char *path = cm_sprintf("%s/store/config/topics.json", dir);
    char text[65536];
    size_t len = 0;
    text[0] = '\0';
    for (int waited = 0; waited < 5000 && !strstr(text, "AutoTopic"); waited += 50) {
        usleep(50 * 1000);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = '\0';
    }
    proto_json_t *root = NULL;
    cr_assert_eq(proto_json_parse(text, len, &root), RMQ_OK);
    const proto_json_t *tab = proto_json_get(root, "topicConfigTable");
    cr_assert_eq(proto_json_get_int(proto_json_get(tab, "AutoTopic"), "writeQueueNums", 0), 4);
    cr_assert_eq(proto_json_get_int(proto_json_get(tab, "TBW102"), "perm", 0), 7);
    cr_assert_eq(proto_json_get_int(proto_json_get(tab, "TBW102"), "writeQueueNums", 0), 8);
    cr_assert_gt(proto_json_get_int(proto_json_get(root, "dataVersion"), "counter", 0), 0);
    proto_json_free(root);
    cm_free(path);
}

Test(broker, unknown_code_and_public_create_topic) {
    int fd = tb_connect(rmq_broker_addr(broker));
    proto_cmd_t req, resp;
    proto_cmd_request(&req, 9999, tb_next_opaque());
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED);
    cr_assert_str_eq(resp.remark, " request type 9999 not supported");
    proto_cmd_free(&resp);
    /* Replies use the request's serialize type (binary ROCKETMQ here). */
    proto_cmd_request(&req, PROTO_GET_MAX_OFFSET, tb_next_opaque());
    req.serialize = PROTO_SER_ROCKETMQ;
    proto_queue_req_t qh = {.topic = "Nothing", .queue_id = 0};
    proto_queue_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(resp.serialize, PROTO_SER_ROCKETMQ);
    cr_assert_eq(tb_ext_int(&resp, "offset"), 0);
    proto_cmd_free(&resp);
    cr_assert_eq(rmq_broker_create_topic(broker, "Made", 3, 0), RMQ_OK);
    cr_assert_eq(rmq_broker_create_topic(broker, "TBW102", 3, 0), RMQ_ERR_BAD_TOPIC);
    cr_assert_eq(tb_produce(fd, "Made", 2, NULL, NULL, "x", NULL), 0);
    char *stats = rmq_broker_stats_json(broker);
    cr_assert_not_null(stats);
    proto_json_t *root = NULL;
    cr_assert_eq(proto_json_parse(stats, strlen(stats), &root), RMQ_OK);
    cr_assert_eq(proto_json_get_int(root, "msgsIn", 0), 1);
    proto_json_free(root);
    rmq_free(stats);
    close(fd);
}

Test(broker, max_message_size) {
    int fd = tb_connect(rmq_broker_addr(broker));
    size_t len = 4 * 1024 * 1024 + 1;
    char *body = cm_malloc(len);
    memset(body, 'x', len);
    proto_cmd_t req, resp;
    tb_send_req(&req, "Big", 0, NULL, NULL, body, len);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_MESSAGE_ILLEGAL);
    cr_assert_not_null(strstr(resp.remark, "the message is illegal"));
    proto_cmd_free(&resp);
    tb_send_req(&req, "Big", 0, NULL, NULL, body, len - 1);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark ? resp.remark : "");
    proto_cmd_free(&resp);
    cm_free(body);
    close(fd);
}

/* ---------------------------------------------------------------- long polling */

typedef struct late_send {
    const char *addr;
    int delay_ms;
} late_send_t;

static void *send_later(void *arg) {
    late_send_t *ls = arg;
    usleep((useconds_t)ls->delay_ms * 1000);
    int fd = tb_connect(ls->addr);
    cr_assert_eq(tb_produce(fd, "Poll", 0, "A", NULL, "wake", NULL), 0);
    close(fd);
    return NULL;
}

Test(broker, long_poll_woken_by_send) {
    int fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(rmq_broker_create_topic(broker, "Poll", 1, 0), RMQ_OK);
    proto_cmd_t req, resp;
    tb_pull_req(&req, "pg", "Poll", 0, 0, 32, PULL_FLAG_SUSPEND, 20000, "*");
    int64_t t0 = cm_mono_ms();
    cr_assert(tb_send(fd, &req));
    late_send_t ls = {rmq_broker_addr(broker), 300};
    pthread_t th;
    pthread_create(&th, NULL, send_later, &ls);
    cr_assert(tb_recv(fd, &resp));
    int64_t took = cm_mono_ms() - t0;
    pthread_join(th, NULL);
    /* Answered because of the send: long before the 20 s suspension would have ended. */
    cr_assert_eq(resp.code, 0, "code %d %s", resp.code, resp.remark);
    cr_assert_lt(took, 5000);
    cr_assert_eq(tb_count_records(&resp), 1);
    proto_cmd_free(&resp);
    close(fd);
}

Test(broker, long_poll_expires_with_19) {
    int fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(rmq_broker_create_topic(broker, "Quiet", 1, 0), RMQ_OK);
    proto_cmd_t req, resp;
    tb_pull_req(&req, "qg", "Quiet", 0, 0, 32, PULL_FLAG_SUSPEND, 300, "*");
    int64_t t0 = cm_mono_ms();
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_PULL_NOT_FOUND);
    cr_assert_geq(cm_mono_ms() - t0, 250);
    proto_cmd_free(&resp);
    close(fd);
}

/* A pull parked on a filter that the new message does not match stays parked. */
Test(broker, long_poll_ignores_unmatched_tag) {
    int fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(rmq_broker_create_topic(broker, "Poll", 1, 0), RMQ_OK);
    proto_cmd_t req, resp;
    tb_pull_req(&req, "pg", "Poll", 0, 0, 32, PULL_FLAG_SUSPEND, 1500, "B");
    cr_assert(tb_send(fd, &req));
    late_send_t ls = {rmq_broker_addr(broker), 100};
    pthread_t th;
    pthread_create(&th, NULL, send_later, &ls); /* tag A */
    cr_assert(tb_recv(fd, &resp));
    pthread_join(th, NULL);
    /* Re-run at expiry: the A message is filtered out, so the queue has no match. */
    cr_assert_eq(resp.code, RMQ_ERR_PULL_RETRY_IMMEDIATELY, "code %d", resp.code);
    proto_cmd_free(&resp);
    close(fd);
}

/* ---------------------------------------------------------------- offsets */

static int64_t query_offset(int fd, const char *group, const char *topic, int32_t q,
                            int32_t *code) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_QUERY_CONSUMER_OFFSET, tb_next_opaque());
    proto_query_consumer_offset_req_t h = {.consumer_group = group, .topic = topic, .queue_id = q};
    proto_query_consumer_offset_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    *code = resp.code;
    int64_t off = -1;
    proto_ext_get_int(&resp.ext, "offset", &off);
    proto_cmd_free(&resp);
    return off;
}

static void update_offset(int fd, const char *group, const char *topic, int32_t q, int64_t off) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_UPDATE_CONSUMER_OFFSET, tb_next_opaque());
    proto_update_consumer_offset_req_t h = {
        .consumer_group = group, .topic = topic, .queue_id = q, .commit_offset = off};
    proto_update_consumer_offset_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&resp);
}

Test(broker, offsets_survive_restart) {
    int fd = tb_connect(rmq_broker_addr(broker));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tb_produce(fd, "Off", 1, NULL, NULL, "x", NULL), 0);
    int32_t code;
    /* No offset yet, young queue: 0 (store.md §9). */
    cr_assert_eq(query_offset(fd, "og", "Off", 1, &code), 0);
    cr_assert_eq(code, 0);
    update_offset(fd, "og", "Off", 1, 2);
    update_offset(fd, "og", "Off", 3, 7);
    /* A pull with COMMIT_OFFSET stores the consumer's position too. */
    proto_cmd_t req, resp;
    tb_pull_req(&req, "og2", "Off", 1, 0, 32, PULL_FLAG_COMMIT_OFFSET, 0, "*");
    proto_ext_set_int(&req.ext, "commitOffset", 1);
    tb_call(fd, &req, &resp);
    proto_cmd_free(&resp);
    close(fd);
    rmq_broker_destroy(broker);
    broker = tb_broker_start(dir, NULL);
    fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(query_offset(fd, "og", "Off", 1, &code), 2);
    cr_assert_eq(query_offset(fd, "og", "Off", 3, &code), 7);
    cr_assert_eq(query_offset(fd, "og2", "Off", 1, &code), 1);
    proto_cmd_t all;
    proto_cmd_request(&all, PROTO_GET_ALL_CONSUMER_OFFSET, tb_next_opaque());
    tb_call(fd, &all, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_not_null(memmem(resp.body, resp.body_len, "\"Off@og\":{1:2,3:7}", 18));
    proto_cmd_free(&resp);
    /* The topic came back from topics.json with its queues. */
    cr_assert_eq(tb_produce(fd, "Off", 1, NULL, NULL, "x", NULL), 0);
    close(fd);
}

/* INVOKE_BROKER_TO_RESET_OFFSET (222), mqadmin resetOffsetByTime's request: a timestamp
 * before every message moves the group back to each queue's start; without isForce a later
 * point keeps the committed offsets, with it -1 (the end) moves them forward. */
static int reset_by_time(int fd, const char *group, const char *topic, int64_t ts, bool force,
                         char *body, size_t size) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_INVOKE_BROKER_TO_RESET_OFFSET, tb_next_opaque());
    proto_reset_offset_req_t h = {
        .topic = topic, .group = group, .timestamp = ts, .is_force = force};
    proto_reset_offset_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    int code = resp.code;
    snprintf(body, size, "%.*s", (int)resp.body_len, resp.body ? (const char *)resp.body : "");
    proto_cmd_free(&resp);
    return code;
}

Test(broker, reset_offset_by_time) {
    int fd = tb_connect(rmq_broker_addr(broker));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tb_produce(fd, "Rst", 1, NULL, NULL, "x", NULL), 0);
    update_offset(fd, "rg", "Rst", 1, 3);
    char body[2048];
    int32_t code;
    cr_assert_eq(reset_by_time(fd, "rg", "Rst", 1, false, body, sizeof body), 0);
    cr_expect(strstr(body, "{\"brokerName\":\"") &&
                  strstr(body, ",\"queueId\":1,\"topic\":\"Rst\"}:0"),
              "%s", body);
    cr_expect_eq(query_offset(fd, "rg", "Rst", 1, &code), 0);
    update_offset(fd, "rg", "Rst", 1, 2);
    cr_assert_eq(reset_by_time(fd, "rg", "Rst", -1, false, body, sizeof body), 0);
    cr_expect_eq(query_offset(fd, "rg", "Rst", 1, &code), 2, "no force: the offset stays");
    cr_assert_eq(reset_by_time(fd, "rg", "Rst", -1, true, body, sizeof body), 0);
    cr_expect_eq(query_offset(fd, "rg", "Rst", 1, &code), 3, "forced to the end");
    cr_expect_eq(reset_by_time(fd, "rg", "NoSuchTopic", 1, false, body, sizeof body),
                 RMQ_ERR_SYSTEM_ERROR);
    close(fd);
}

/* ---------------------------------------------------------------- look-ups */

static proto_cmd_t queue_call(int fd, int32_t code, const char *topic, int32_t q, int64_t ts) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, code, tb_next_opaque());
    if (code == PROTO_SEARCH_OFFSET_BY_TIMESTAMP) {
        proto_search_offset_req_t h = {.topic = topic, .queue_id = q, .timestamp = ts};
        proto_search_offset_req_encode(&h, &req.ext);
    } else {
        proto_queue_req_t h = {.topic = topic, .queue_id = q};
        proto_queue_req_encode(&h, &req.ext);
    }
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    return resp;
}

Test(broker, queries) {
    int fd = tb_connect(rmq_broker_addr(broker));
    proto_cmd_t resp;
    char first_id[64] = "";
    int64_t t_before = cm_now_ms();
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "key-%d", i);
        cr_assert_eq(tb_produce(fd, "Q", 0, "T", key, "payload", &resp), 0);
        if (i == 0) snprintf(first_id, sizeof first_id, "%s", proto_ext_get(&resp.ext, "msgId"));
        proto_cmd_free(&resp);
    }
    resp = queue_call(fd, PROTO_GET_MAX_OFFSET, "Q", 0, 0);
    cr_assert_eq(tb_ext_int(&resp, "offset"), 5);
    proto_cmd_free(&resp);
    resp = queue_call(fd, PROTO_GET_MIN_OFFSET, "Q", 0, 0);
    cr_assert_eq(tb_ext_int(&resp, "offset"), 0);
    proto_cmd_free(&resp);
    resp = queue_call(fd, PROTO_GET_EARLIEST_MSG_STORETIME, "Q", 0, 0);
    cr_assert_geq(tb_ext_int(&resp, "timestamp"), t_before - 1000);
    proto_cmd_free(&resp);
    resp = queue_call(fd, PROTO_SEARCH_OFFSET_BY_TIMESTAMP, "Q", 0, t_before - 60000);
    cr_assert_eq(tb_ext_int(&resp, "offset"), 0);
    proto_cmd_free(&resp);

    /* VIEW_MESSAGE_BY_ID: the commit-log offset inside the offset id. */
    proto_addr_t host;
    int64_t phys;
    cr_assert_eq(proto_offset_id_parse(first_id, &host, &phys), RMQ_OK);
    proto_cmd_t req;
    proto_cmd_request(&req, PROTO_VIEW_MESSAGE_BY_ID, tb_next_opaque());
    proto_view_msg_req_t vh = {.offset = phys};
    proto_view_msg_req_encode(&vh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(tb_count_records(&resp), 1);
    proto_cmd_free(&resp);
    proto_cmd_request(&req, PROTO_VIEW_MESSAGE_BY_ID, tb_next_opaque());
    vh.offset = phys + 3;
    proto_view_msg_req_encode(&vh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_ERROR);
    proto_cmd_free(&resp);

    /* QUERY_MESSAGE by key. */
    proto_cmd_request(&req, PROTO_QUERY_MESSAGE, tb_next_opaque());
    proto_query_msg_req_t qh = {.topic = "Q",
                                .key = "key-3",
                                .max_num = 32,
                                .begin_timestamp = 0,
                                .end_timestamp = INT64_MAX};
    proto_query_msg_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    cr_assert_eq(tb_count_records(&resp), 1);
    proto_cmd_free(&resp);
    proto_cmd_request(&req, PROTO_QUERY_MESSAGE, tb_next_opaque());
    qh.key = "nope";
    proto_query_msg_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_QUERY_NOT_FOUND);
    proto_cmd_free(&resp);
    close(fd);
}

/* ---------------------------------------------------------------- life cycle */

Test(broker_life, start_stop_and_second_open_refused) {
    char *d = tb_tempdir();
    rmq_broker_t *b = tb_broker_start(d, NULL);
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    char *store = cm_sprintf("%s/store", d);
    rmq_conf_set(conf, "storePathRootDir", store, err, sizeof err);
    rmq_conf_set(conf, "listenPort", "0", err, sizeof err);
    rmq_broker_t *b2 = rmq_broker_new(conf, err, sizeof err);
    cr_assert_not_null(b2);
    cr_assert_eq(rmq_broker_start(b2, err, sizeof err), RMQ_ERR_IO);
    rmq_broker_destroy(b2);
    cr_assert_eq(rmq_broker_start(b, err, sizeof err), RMQ_ERR_STATE);
    rmq_broker_destroy(b);
    rmq_broker_destroy(NULL);
    /* never started */
    conf = rmq_conf_new();
    b2 = rmq_broker_new(conf, err, sizeof err);
    cr_assert_null(rmq_broker_addr(b2));
    cr_assert_null(rmq_broker_stats_json(b2));
    rmq_broker_destroy(b2);
    cm_free(store);
    tb_rmrf(d);
    cm_free(d);
}

Test(broker_life, auto_create_off_gives_17) {
    char *d = tb_tempdir();
    rmq_broker_t *b = tb_broker_start(d, "autoCreateTopicEnable", "false", NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    proto_cmd_t resp;
    cr_assert_eq(tb_produce(fd, "Nope", 0, NULL, NULL, "x", &resp), RMQ_ERR_TOPIC_NOT_EXIST);
    cr_assert_not_null(strstr(resp.remark, "topic[Nope] not exist, apply first please!"));
    proto_cmd_free(&resp);
    close(fd);
    rmq_broker_destroy(b);
    tb_rmrf(d);
    cm_free(d);
}

/* topics.json lost: the topic table comes back from the queues the store holds. */
Test(broker, topics_rebuilt_from_store) {
    int fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(rmq_broker_create_topic(broker, "Rebuilt", 8, 0), RMQ_OK);
    cr_assert_eq(tb_produce(fd, "Rebuilt", 5, NULL, NULL, "x", NULL), 0);
    close(fd);
    rmq_broker_destroy(broker);
    char *cmd = cm_sprintf("rm -f '%s'/store/config/topics.json*", dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
    broker = tb_broker_start(dir, "autoCreateTopicEnable", "false", NULL);
    fd = tb_connect(rmq_broker_addr(broker));
    cr_assert_eq(tb_produce(fd, "Rebuilt", 5, NULL, NULL, "y", NULL), 0);
    proto_cmd_t resp;
    cr_assert_eq(tb_produce(fd, "Rebuilt", 6, NULL, NULL, "y", &resp), RMQ_ERR_SYSTEM_ERROR);
    proto_cmd_free(&resp);
    close(fd);
}
