/* CONSUME_MESSAGE_DIRECTLY (309), the dashboard's "resend" of a dead letter and mqadmin's
 * consumeMessage: an admin connection asks the broker for the group's clients
 * (GET_CONSUMER_CONNECTION_LIST, 203), then to have one of them consume a stored message;
 * the broker relays it to a librmq push consumer, whose listener runs once with that message
 * and whose verdict comes back as a ConsumeMessageDirectlyResult. Nothing is acknowledged:
 * no offset is committed, nothing is sent back. */
#include <pthread.h>
#include <stdatomic.h>

#include "../broker/tb.h"

#include "common/cm.h"

#define GROUP "gdirect"

static char *dir;
static rmq_broker_t *broker;
static int fd; /* the admin's raw connection */

static void setup(void) {
    dir = tb_tempdir();
    broker = tb_broker_start(dir, NULL);
    cr_assert_eq(rmq_broker_create_topic(broker, "Orig", 1, 6), RMQ_OK);
    cr_assert_eq(rmq_broker_create_topic(broker, "Subscribed", 1, 6), RMQ_OK);
    fd = tb_connect(rmq_broker_addr(broker));
}

static void teardown(void) {
    close(fd);
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(direct, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- the listener */

typedef struct seen {
    pthread_mutex_t mu;
    int calls;
    char topic[128], body[64], broker_name[128];
    int32_t queue_id;
    rmq_consume_status_t verdict; /* what the listener returns */
    int sleep_ms;                 /* each call sleeps this long */
    atomic_bool entered;
} seen_t;

static rmq_consume_status_t on_msgs(const rmq_msg_t *const *msgs, size_t n, rmq_consume_ctx_t *ctx,
                                    void *opaque) {
    seen_t *s = opaque;
    atomic_store(&s->entered, true);
    size_t len;
    const char *body = rmq_msg_body(msgs[0], &len);
    const rmq_mq_t *mq = rmq_consume_ctx_queue(ctx);
    pthread_mutex_lock(&s->mu);
    s->calls += (int)n;
    snprintf(s->topic, sizeof s->topic, "%s", rmq_msg_topic(msgs[0]));
    snprintf(s->body, sizeof s->body, "%.*s", (int)len, body);
    snprintf(s->broker_name, sizeof s->broker_name, "%s", mq->broker_name);
    s->queue_id = mq->queue_id;
    pthread_mutex_unlock(&s->mu);
    if (s->sleep_ms) usleep((useconds_t)s->sleep_ms * 1000);
    return s->verdict;
}

static rmq_conf_t *client_conf(const char *key, const char *group) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, key, group, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "clientIP", "127.0.0.1", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "instanceName", "direct", err, sizeof err), RMQ_OK);
    return c;
}

static rmq_push_consumer_t *start_consumer(seen_t *s, bool orderly) {
    char err[256];
    rmq_push_consumer_t *pc =
        rmq_push_consumer_new(client_conf("consumerGroup", GROUP), err, sizeof err);
    cr_assert_not_null(pc, "%s", err);
    cr_assert_eq(rmq_push_consumer_subscribe(pc, "Subscribed", "*"), RMQ_OK);
    if (orderly)
        cr_assert_eq(rmq_push_consumer_set_orderly_listener(pc, on_msgs, s), RMQ_OK);
    else
        cr_assert_eq(rmq_push_consumer_set_listener(pc, on_msgs, s), RMQ_OK);
    cr_assert_eq(rmq_push_consumer_start(pc, err, sizeof err), RMQ_OK, "%s", err);
    return pc;
}

/* ---------------------------------------------------------------- the admin's side */

/* Produces body on Orig and sends it to GROUP's dead-letter queue (delay level -1, as a
 * consumer giving up does); returns the dead letter's offset id, what the dashboard sends. */
static void make_dead_letter(const char *body, char *dlq_id, size_t size) {
    proto_cmd_t resp, req;
    cr_assert_eq(tb_produce(fd, "Orig", 0, "TagD", NULL, body, &resp), 0);
    proto_addr_t host;
    int64_t phys;
    cr_assert_eq(proto_offset_id_parse(proto_ext_get(&resp.ext, "msgId"), &host, &phys), RMQ_OK);
    proto_cmd_free(&resp);
    proto_cmd_request(&req, PROTO_CONSUMER_SEND_MSG_BACK, tb_next_opaque());
    proto_send_back_req_t h = {
        .offset = phys, .group = GROUP, .delay_level = -1, .origin_topic = "Orig"};
    proto_send_back_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_cmd_free(&resp);
    /* Where it is now: the last record of %DLQ%GROUP/0. */
    int64_t max = tb_max_offset(fd, "%DLQ%" GROUP, 0);
    cr_assert_gt(max, 0);
    tb_pull_req(&req, "gview", "%DLQ%" GROUP, 0, max - 1, 1, 0, 0, "*");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    proto_offset_id_format(&rec.store_host, rec.physical_offset, dlq_id, size);
    proto_cmd_free(&resp);
}

/* The client id the broker lists for group (GET_CONSUMER_CONNECTION_LIST), once the
 * consumer's heartbeat has arrived. */
static void online_client(const char *group, char *client_id, size_t size) {
    int64_t began = cm_mono_ms();
    for (;;) {
        proto_cmd_t req, resp;
        proto_cmd_request(&req, PROTO_GET_CONSUMER_CONNECTION_LIST, tb_next_opaque());
        proto_group_req_t h = {.consumer_group = group};
        proto_group_req_encode(&h, &req.ext);
        tb_call(fd, &req, &resp);
        proto_json_t *cc = NULL;
        if (resp.code == 0)
            cr_assert_eq(proto_json_parse((const char *)resp.body, resp.body_len, &cc), RMQ_OK);
        const proto_json_t *set = cc ? proto_json_get(cc, "connectionSet") : NULL;
        bool found = set && set->len == 1;
        if (found)
            snprintf(client_id, size, "%s", proto_json_get_str(set->items[0], "clientId", ""));
        proto_json_free(cc);
        proto_cmd_free(&resp);
        if (found) break;
        cr_assert_lt(cm_mono_ms() - began, 60000, "group %s never came online", group);
        usleep(20000);
    }
    cr_log_info("group %s online after %lld ms as %s", group, (long long)(cm_mono_ms() - began),
                client_id);
}

/* CONSUME_MESSAGE_DIRECTLY as the dashboard sends it (no brokerName: the broker adds its
 * own); returns the opaque to wait for. */
static int32_t send_consume_directly(const char *group, const char *client_id, const char *msg_id) {
    proto_cmd_t req;
    int32_t opaque = tb_next_opaque();
    proto_cmd_request(&req, PROTO_CONSUME_MESSAGE_DIRECTLY, opaque);
    proto_consume_direct_req_t h = {
        .consumer_group = group, .client_id = client_id, .msg_id = msg_id};
    proto_consume_direct_req_encode(&h, &req.ext);
    cr_assert(tb_send(fd, &req));
    return opaque;
}

/* Checks resp is SUCCESS with a ConsumeMessageDirectlyResult saying want, frees it and
 * returns the listener's time (spentTimeMills). */
static int64_t assert_verdict(proto_cmd_t *resp, const char *want, bool order) {
    cr_assert_eq(resp->code, 0, "code %d: %s", resp->code, resp->remark);
    cr_log_info("answer: %.*s", (int)resp->body_len, resp->body);
    proto_json_t *r;
    cr_assert_eq(proto_json_parse((const char *)resp->body, resp->body_len, &r), RMQ_OK);
    cr_assert_str_eq(proto_json_get_str(r, "consumeResult", ""), want);
    cr_assert_eq(proto_json_get_bool(r, "order", !order), order);
    cr_assert_eq(proto_json_get_bool(r, "autoCommit", false), true);
    const proto_json_t *spent = proto_json_get(r, "spentTimeMills");
    cr_assert(spent && spent->type == PJ_NUMBER && spent->i >= 0);
    int64_t spent_ms = spent->i;
    proto_json_free(r);
    proto_cmd_free(resp);
    return spent_ms;
}

/* Has client_id of GROUP consume msg_id directly and checks the verdict. */
static void expect_verdict(const char *client_id, const char *msg_id, const char *want,
                           bool order) {
    proto_cmd_t resp;
    tb_recv_for(fd, send_consume_directly(GROUP, client_id, msg_id), &resp);
    assert_verdict(&resp, want, order);
}

/* Nothing was acknowledged for GROUP: no offset past the dead letters committed on their
 * queue and nothing sent back to its retry topic. */
static void assert_nothing_acked(void) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_QUERY_CONSUMER_OFFSET, tb_next_opaque());
    proto_query_consumer_offset_req_t h = {
        .consumer_group = GROUP, .topic = "%DLQ%" GROUP, .queue_id = 0};
    proto_query_consumer_offset_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    /* None stored: NOT_FOUND, or 0 when the queue starts at 0 (as a 4.9 broker answers). */
    if (resp.code != RMQ_ERR_QUERY_NOT_FOUND) {
        cr_assert_eq(resp.code, 0, "code %d: %s", resp.code, resp.remark);
        cr_assert_eq(tb_ext_int(&resp, "offset"), 0, "a directly consumed message was acked");
    }
    proto_cmd_free(&resp);
    int64_t retried = 0;
    proto_cmd_request(&req, PROTO_GET_MAX_OFFSET, tb_next_opaque());
    proto_queue_req_t qh = {.topic = "%RETRY%" GROUP, .queue_id = 0};
    proto_queue_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    if (resp.code == 0) retried = tb_ext_int(&resp, "offset");
    proto_cmd_free(&resp);
    cr_assert_eq(retried, 0, "a directly consumed message was sent back");
}

/* ---------------------------------------------------------------- tests */

Test(direct, the_listener_consumes_a_dead_letter_and_the_admin_gets_its_verdict) {
    char dlq_id[64], client_id[256];
    make_dead_letter("resend-me", dlq_id, sizeof dlq_id);
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .verdict = RMQ_CONSUME_SUCCESS};
    rmq_push_consumer_t *pc = start_consumer(&s, false);
    online_client(GROUP, client_id, sizeof client_id);
    cr_assert_str_eq(client_id, "127.0.0.1@direct");

    expect_verdict(client_id, dlq_id, "CR_SUCCESS", false);
    pthread_mutex_lock(&s.mu);
    cr_assert_eq(s.calls, 1);
    cr_assert_str_eq(s.body, "resend-me");
    cr_assert_str_eq(s.topic, "%DLQ%" GROUP);
    cr_assert_str_eq(s.broker_name, "broker-a");
    cr_assert_eq(s.queue_id, 0);
    pthread_mutex_unlock(&s.mu);

    /* RECONSUME_LATER is reported, and still nothing is sent back. */
    s.verdict = RMQ_CONSUME_RECONSUME_LATER;
    expect_verdict(client_id, dlq_id, "CR_LATER", false);
    cr_assert_eq(s.calls, 2);
    assert_nothing_acked();
    rmq_push_consumer_destroy(pc);
}

Test(direct, an_orderly_listener_reports_order_and_suspend_as_later) {
    char dlq_id[64], client_id[256];
    make_dead_letter("orderly", dlq_id, sizeof dlq_id);
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .verdict = RMQ_CONSUME_SUCCESS};
    rmq_push_consumer_t *pc = start_consumer(&s, true);
    online_client(GROUP, client_id, sizeof client_id);
    expect_verdict(client_id, dlq_id, "CR_SUCCESS", true);
    s.verdict = RMQ_CONSUME_SUSPEND;
    expect_verdict(client_id, dlq_id, "CR_LATER", true);
    cr_assert_eq(s.calls, 2);
    cr_assert_str_eq(s.body, "orderly");
    assert_nothing_acked();
    rmq_push_consumer_destroy(pc);
}

/* A pull consumer's group is online too, but Java's client consumes directly only for push
 * consumers: SYSTEM_ERROR with ClientRemotingProcessor's remark. */
Test(direct, a_pull_consumer_answers_system_error) {
    char dlq_id[64], client_id[256], err[256];
    make_dead_letter("pulled", dlq_id, sizeof dlq_id);
    rmq_pull_consumer_t *pull =
        rmq_pull_consumer_new(client_conf("consumerGroup", "gpull"), err, sizeof err);
    cr_assert_not_null(pull, "%s", err);
    cr_assert_eq(rmq_pull_consumer_subscribe(pull, "Subscribed", "*"), RMQ_OK);
    cr_assert_eq(rmq_pull_consumer_start(pull, err, sizeof err), RMQ_OK, "%s", err);
    online_client("gpull", client_id, sizeof client_id);
    proto_cmd_t resp;
    tb_recv_for(fd, send_consume_directly("gpull", client_id, dlq_id), &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_ERROR);
    cr_assert_str_eq(resp.remark, "The Consumer Group <gpull> not exist in this consumer");
    proto_cmd_free(&resp);
    rmq_pull_consumer_destroy(pull);
}

/* Destroying the consumer while the listener runs for a direct request: destroy waits for
 * the call, the admin still gets the verdict, and nothing is used after it is freed (ASan,
 * valgrind). */
Test(direct, destroy_while_the_listener_runs_still_answers) {
    char dlq_id[64], client_id[256];
    make_dead_letter("slow", dlq_id, sizeof dlq_id);
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .verdict = RMQ_CONSUME_SUCCESS, .sleep_ms = 300};
    rmq_push_consumer_t *pc = start_consumer(&s, false);
    online_client(GROUP, client_id, sizeof client_id);
    int32_t op = send_consume_directly(GROUP, client_id, dlq_id);
    int64_t began = cm_mono_ms();
    while (!atomic_load(&s.entered)) {
        cr_assert_lt(cm_mono_ms() - began, 60000, "the listener never ran");
        usleep(5000);
    }
    rmq_push_consumer_destroy(pc);
    proto_cmd_t resp;
    tb_recv_for(fd, op, &resp);
    cr_assert_geq(assert_verdict(&resp, "CR_SUCCESS", false), 250, "the whole call is timed");

    /* Gone: the broker no longer lists the client and says so. */
    op = send_consume_directly(GROUP, client_id, dlq_id);
    tb_recv_for(fd, op, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_ERROR);
    cr_log_info("after destroy: %s", resp.remark);
    proto_cmd_free(&resp);
}
