/* Producer behaviour a real broker cannot be asked to show: fake name server + brokers on
 * lib/net that answer sends with injected codes, so retries on another broker, codes that
 * must not be retried, name-server failover, TBW102 auto-creation routes, heartbeats and
 * UNREGISTER_CLIENT are checked frame by frame. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include <rmq/producer.h>

#include "client/client.h"

typedef struct fake {
    net_server_t *srv;
    char addr[32];
    const char *name;
    atomic_int send_code; /* answer to sends: 0 stores */
    atomic_int sends, heartbeats, unregisters;
    pthread_mutex_t mu;
    char last_topic[128];
    int last_queue;
    char heartbeat[2048];
} fake_t;

static net_loop_t *loop;
static fake_t fakes[2]; /* broker-a (also the name server) and broker-b */

static void add_broker(proto_topic_route_t *r, const fake_t *f, int queues, int perm) {
    proto_broker_data_t *b = proto_topic_route_add_broker(r);
    b->broker_name = cm_strdup(f->name);
    b->cluster = cm_strdup("FakeCluster");
    proto_broker_data_add_addr(b, 0, f->addr);
    proto_queue_data_t *q = proto_topic_route_add_queue(r);
    q->broker_name = cm_strdup(f->name);
    q->read_queue_nums = q->write_queue_nums = queues;
    q->perm = perm;
}

static void answer(net_conn_t *c, const proto_cmd_t *req, int code, const char *remark,
                   proto_cmd_t *resp) {
    proto_cmd_response(resp, req, code, remark);
    net_conn_send(c, resp);
}

static void route_reply(net_conn_t *c, proto_cmd_t *req) {
    proto_route_req_t h;
    proto_cmd_t resp;
    proto_route_req_decode(&req->ext, &h, NULL);
    proto_topic_route_t r = {0};
    if (strcmp(h.topic, "TBW102") == 0) {
        add_broker(&r, &fakes[0], 8, 7);
    } else if (strcmp(h.topic, "T") == 0) {
        add_broker(&r, &fakes[0], 2, 6);
        add_broker(&r, &fakes[1], 2, 6);
    } else {
        answer(c, req, RMQ_ERR_TOPIC_NOT_EXIST, "No topic route info in name server", &resp);
        return;
    }
    cm_buf_t body = CM_BUF_INIT;
    proto_topic_route_encode(&r, true, &body);
    proto_topic_route_free(&r);
    proto_cmd_response(&resp, req, 0, NULL);
    proto_cmd_take_body(&resp, body.data, body.len);
    net_conn_send(c, &resp);
}

static void send_reply(fake_t *f, net_conn_t *c, proto_cmd_t *req) {
    proto_send_req_t h;
    proto_cmd_t resp;
    cr_assert_eq(proto_send_req_decode(&req->ext, req->code, &h, NULL), RMQ_OK);
    int n = atomic_fetch_add(&f->sends, 1);
    pthread_mutex_lock(&f->mu);
    snprintf(f->last_topic, sizeof f->last_topic, "%s", h.topic);
    f->last_queue = h.queue_id;
    pthread_mutex_unlock(&f->mu);
    int code = atomic_load(&f->send_code);
    if (code) {
        answer(c, req, code, "injected", &resp);
        return;
    }
    proto_send_resp_t rh;
    proto_send_resp_init(&rh);
    rh.msg_id = "7F00000100002A9F0000000000000000";
    rh.queue_id = h.queue_id;
    rh.queue_offset = n;
    proto_cmd_response(&resp, req, 0, NULL);
    proto_send_resp_encode(&rh, &resp.ext);
    net_conn_send(c, &resp);
}

static void on_request(net_conn_t *c, proto_cmd_t *req, void *ud) {
    fake_t *f = ud;
    proto_cmd_t resp;
    switch (req->code) {
    case PROTO_GET_ROUTEINFO_BY_TOPIC:
        route_reply(c, req);
        break;
    case PROTO_SEND_MESSAGE_V2:
        send_reply(f, c, req);
        break;
    case PROTO_HEART_BEAT:
        pthread_mutex_lock(&f->mu);
        snprintf(f->heartbeat, sizeof f->heartbeat, "%.*s", (int)req->body_len,
                 (const char *)req->body);
        pthread_mutex_unlock(&f->mu);
        atomic_fetch_add(&f->heartbeats, 1);
        answer(c, req, 0, NULL, &resp);
        break;
    case PROTO_UNREGISTER_CLIENT:
        atomic_fetch_add(&f->unregisters, 1);
        answer(c, req, 0, NULL, &resp);
        break;
    default:
        answer(c, req, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, NULL, &resp);
    }
}

static void start_fakes(void) {
    rmq_err_t err;
    loop = net_loop_new(NULL, &err);
    cr_assert_not_null(loop);
    const char *names[2] = {"broker-a", "broker-b"};
    for (int i = 0; i < 2; i++) {
        fake_t *f = &fakes[i];
        memset(f, 0, sizeof *f);
        pthread_mutex_init(&f->mu, NULL);
        f->name = names[i];
        net_handler_t h = {.on_request = on_request, .ud = f};
        f->srv = net_listen(loop, "127.0.0.1", 0, &h, &err);
        cr_assert_not_null(f->srv);
        snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", net_server_port(f->srv));
    }
}

static void stop_fakes(void) {
    for (int i = 0; i < 2; i++)
        net_server_close(fakes[i].srv);
    net_loop_destroy(loop);
}

TestSuite(faults, .init = start_fakes, .fini = stop_fakes);

static rmq_producer_t *producer(const char *namesrv) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", namesrv, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_conf_set(c, "producerGroup", "pg", err, sizeof err), RMQ_OK);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    return p;
}

static rmq_err_t send_one(rmq_producer_t *p, const char *topic, rmq_send_result_t *r) {
    rmq_msg_t *m = rmq_msg_new(topic);
    rmq_msg_set_body(m, "x", 1);
    rmq_err_t err = rmq_producer_send(p, m, r);
    rmq_msg_destroy(m);
    return err;
}

Test(faults, failed_send_is_retried_on_the_other_broker) {
    rmq_producer_t *p = producer(fakes[0].addr);
    atomic_store(&fakes[0].send_code, RMQ_ERR_SYSTEM_ERROR);
    for (int i = 0; i < 6; i++) {
        rmq_send_result_t r;
        cr_assert_eq(send_one(p, "T", &r), RMQ_OK, "%s", rmq_producer_last_remark());
        cr_expect_str_eq(r.broker_name, "broker-b");
    }
    cr_expect_eq(atomic_load(&fakes[1].sends), 6);
    cr_expect_leq(atomic_load(&fakes[0].sends), 6);
    rmq_producer_destroy(p);
}

Test(faults, system_busy_is_not_retried) {
    rmq_producer_t *p = producer(fakes[0].addr);
    atomic_store(&fakes[0].send_code, RMQ_ERR_SYSTEM_BUSY);
    atomic_store(&fakes[1].send_code, RMQ_ERR_SYSTEM_BUSY);
    cr_expect_eq(send_one(p, "T", NULL), RMQ_ERR_SYSTEM_BUSY);
    cr_expect_str_eq(rmq_producer_last_remark(), "injected");
    cr_expect_eq(atomic_load(&fakes[0].sends) + atomic_load(&fakes[1].sends), 1);
    rmq_producer_destroy(p);
}

Test(faults, retries_stop_after_retryTimesWhenSendFailed) {
    rmq_producer_t *p = producer(fakes[0].addr);
    atomic_store(&fakes[0].send_code, RMQ_ERR_SYSTEM_ERROR);
    atomic_store(&fakes[1].send_code, RMQ_ERR_SYSTEM_ERROR);
    cr_expect_eq(send_one(p, "T", NULL), RMQ_ERR_SYSTEM_ERROR);
    cr_expect_eq(atomic_load(&fakes[0].sends) + atomic_load(&fakes[1].sends), 3);
    rmq_producer_destroy(p);
}

Test(faults, dead_name_server_is_skipped) {
    char list[96];
    /* Port 1 on loopback refuses connections. */
    snprintf(list, sizeof list, "127.0.0.1:1;%s", fakes[0].addr);
    rmq_producer_t *p = producer(list);
    cr_expect_eq(send_one(p, "T", NULL), RMQ_OK, "%s", rmq_producer_last_remark());
    rmq_producer_destroy(p);
}

Test(faults, unknown_topic_goes_along_TBW102_with_at_most_4_queues) {
    rmq_producer_t *p = producer(fakes[0].addr);
    for (int i = 0; i < 8; i++) {
        rmq_send_result_t r;
        cr_assert_eq(send_one(p, "Fresh", &r), RMQ_OK, "%s", rmq_producer_last_remark());
        cr_expect_lt(r.queue_id, 4);
        cr_expect_str_eq(fakes[0].last_topic, "Fresh");
    }
    rmq_producer_destroy(p);
}

static int wait_for(atomic_int *v, int at_least) {
    for (int i = 0; i < 500 && atomic_load(v) < at_least; i++)
        usleep(10 * 1000);
    return atomic_load(v);
}

Test(faults, heartbeats_name_the_group_and_destroy_unregisters) {
    rmq_producer_t *p = producer(fakes[0].addr);
    cr_assert_eq(send_one(p, "T", NULL), RMQ_OK);
    cr_assert_geq(wait_for(&fakes[0].heartbeats, 1), 1);
    cr_assert_geq(wait_for(&fakes[1].heartbeats, 1), 1);
    pthread_mutex_lock(&fakes[1].mu);
    proto_heartbeat_t hb = {0};
    cr_assert_eq(proto_heartbeat_decode(fakes[1].heartbeat, strlen(fakes[1].heartbeat), &hb),
                 RMQ_OK, "%s", fakes[1].heartbeat);
    pthread_mutex_unlock(&fakes[1].mu);
    cr_expect(strchr(hb.client_id, '@'), "%s", hb.client_id);
    cr_assert_eq(hb.producer_groups.count, 2);
    cr_expect_str_eq(hb.producer_groups.items[0], "pg");
    cr_expect_str_eq(hb.producer_groups.items[1], "CLIENT_INNER_PRODUCER");
    cr_expect_eq(hb.consumer_count, 0);
    proto_heartbeat_free(&hb);
    rmq_producer_destroy(p);
    cr_expect_eq(atomic_load(&fakes[0].unregisters), 1);
    cr_expect_eq(atomic_load(&fakes[1].unregisters), 1);
}

static atomic_int async_ok, async_done;

static void on_sent(rmq_err_t err, const rmq_send_result_t *r, void *opaque) {
    if (err == RMQ_OK && strcmp(r->broker_name, "broker-b") == 0) atomic_fetch_add(&async_ok, 1);
    atomic_fetch_add(&async_done, 1);
}

Test(faults, async_send_is_retried_on_the_other_broker) {
    rmq_producer_t *p = producer(fakes[0].addr);
    atomic_store(&fakes[0].send_code, RMQ_ERR_SYSTEM_ERROR);
    atomic_store(&async_ok, 0);
    atomic_store(&async_done, 0);
    for (int i = 0; i < 20; i++) {
        rmq_msg_t *m = rmq_msg_new("T");
        rmq_msg_set_body(m, "x", 1);
        cr_assert_eq(rmq_producer_send_async(p, m, on_sent, NULL), RMQ_OK);
        rmq_msg_destroy(m);
    }
    /* Wait for the callbacks before destroying: a retry that starts after destroy began
     * ends with RMQ_ERR_SHUTDOWN by design (producer.h). */
    for (int ms = 0; ms < 10000 && atomic_load(&async_done) < 20; ms += 5)
        usleep(5000);
    cr_expect_eq(atomic_load(&async_done), 20);
    cr_expect_eq(atomic_load(&async_ok), 20);
    rmq_producer_destroy(p);
}

static atomic_int async_shutdown;

static void on_sent_count(rmq_err_t err, const rmq_send_result_t *r, void *opaque) {
    (void)opaque;
    if (err == RMQ_OK && strcmp(r->broker_name, "broker-b") == 0) atomic_fetch_add(&async_ok, 1);
    if (err == RMQ_ERR_SHUTDOWN) atomic_fetch_add(&async_shutdown, 1);
    atomic_fetch_add(&async_done, 1);
}

Test(faults, destroy_during_async_retries_calls_every_callback_once) {
    rmq_producer_t *p = producer(fakes[0].addr);
    atomic_store(&fakes[0].send_code, RMQ_ERR_SYSTEM_ERROR);
    atomic_store(&async_ok, 0);
    atomic_store(&async_done, 0);
    atomic_store(&async_shutdown, 0);
    for (int i = 0; i < 20; i++) {
        rmq_msg_t *m = rmq_msg_new("T");
        rmq_msg_set_body(m, "x", 1);
        cr_assert_eq(rmq_producer_send_async(p, m, on_sent_count, NULL), RMQ_OK);
        rmq_msg_destroy(m);
    }
    rmq_producer_destroy(p); /* waits for the callbacks */
    cr_expect_eq(atomic_load(&async_done), 20);
    cr_expect_eq(atomic_load(&async_ok) + atomic_load(&async_shutdown), 20);
}
