/* Helpers for the live metadata tests: embedded brokers in temp directories (public API) and
 * clients on lib/net's client side that send typed frames and record the requests a broker
 * pushes to them (NOTIFY_CONSUMER_IDS_CHANGED). Only 127.0.0.1. */
#ifndef RMQ_TEST_META_LIVE_H
#define RMQ_TEST_META_LIVE_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <rmq/rmq.h>

#include "net/net.h"
#include "proto/proto.h"
#include "../testdata.h"

/* Every wait for something asynchronous gives up after this long (generous: CI is slow). */
#define LIVE_WAIT_MS 15000

static inline char *live_tempdir(void) {
    return td_tempdir("rmq-meta-live");
}

static inline void live_rmrf(const char *dir) {
    td_rmrf(dir);
}

/* A broker on 127.0.0.1 (brokerIP1 unset: it listens on loopback only) and a free port, its
 * store in dir/name. Extra settings as key,
 * value pairs ending with NULL. */
static inline rmq_broker_t *live_broker(const char *dir, const char *name, ...) {
    char err[512];
    rmq_conf_t *conf = rmq_conf_new();
    char *store = cm_sprintf("%s/%s", dir, name);
    const char *pairs[][2] = {{"listenPort", "0"},
                              {"brokerName", name},
                              {"storePathRootDir", store},
                              {"mappedFileSizeCommitLog", "16777216"},
                              {"mappedFileSizeConsumeQueue", "60000"},
                              {"maxIndexNum", "10000"},
                              {"maxHashSlotNum", "2000"},
                              {"logLevel", "WARN"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        cr_assert_eq(rmq_conf_set(conf, pairs[i][0], pairs[i][1], err, sizeof err), RMQ_OK, "%s",
                     err);
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        cr_assert_eq(rmq_conf_set(conf, k, v, err, sizeof err), RMQ_OK, "%s", err);
    }
    va_end(ap);
    cm_free(store);
    rmq_broker_t *b = rmq_broker_new(conf, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    cr_assert_eq(rmq_broker_start(b, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_not_null(rmq_broker_addr(b));
    return b;
}

/* ---------------------------------------------------------------- clients */

typedef struct live_client {
    net_conn_t *conn;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int notifies;       /* NOTIFY_CONSUMER_IDS_CHANGED received */
    bool notify_oneway; /* every one of them flagged oneway */
    char notify_group[128];
    bool closed;
} live_client_t;

static inline void live_on_request(net_conn_t *conn, proto_cmd_t *req, void *ud) {
    live_client_t *c = ud;
    if (req->code != PROTO_NOTIFY_CONSUMER_IDS_CHANGED) return;
    proto_group_req_t h;
    bool ok = proto_group_req_decode(&req->ext, &h, NULL) == RMQ_OK;
    pthread_mutex_lock(&c->mu);
    c->notifies++;
    c->notify_oneway = c->notify_oneway && proto_cmd_is_oneway(req);
    snprintf(c->notify_group, sizeof c->notify_group, "%s", ok ? h.consumer_group : "?");
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static inline void live_on_close(net_conn_t *conn, rmq_err_t why, void *ud) {
    live_client_t *c = ud;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static inline void live_client_open(live_client_t *c, net_loop_t *loop, const char *addr) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->notify_oneway = true;
    net_handler_t h = {live_on_request, NULL, live_on_close, c, NULL};
    rmq_err_t err = RMQ_OK;
    c->conn = net_connect(loop, addr, &h, 0, &err);
    cr_assert_not_null(c->conn, "connect %s: %s", addr, rmq_err_name(err));
}

/* After the client's loop is destroyed (no callback can run any more). */
static inline void live_client_free(live_client_t *c) {
    if (c->conn) net_conn_unref(c->conn);
    c->conn = NULL;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

/* Waits until the client has seen at least n notifications; false on timeout. */
static inline bool live_wait_notifies(live_client_t *c, int n) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += LIVE_WAIT_MS / 1000;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->notifies < n && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
    bool ok = c->notifies >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static inline int live_notifies(live_client_t *c) {
    pthread_mutex_lock(&c->mu);
    int n = c->notifies;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* Sends req (taken) and waits for its response. */
static inline void live_call(live_client_t *c, proto_cmd_t *req, proto_cmd_t *resp) {
    int32_t code = req->code;
    proto_cmd_init(resp);
    rmq_err_t rc = net_conn_request_sync(c->conn, req, LIVE_WAIT_MS, resp);
    cr_assert_eq(rc, RMQ_OK, "request %d: %s", code, rmq_err_name(rc));
    cr_assert(proto_cmd_is_response(resp));
}

/* HEART_BEAT declaring client_id as a push consumer of group on topic. */
static inline int32_t live_heartbeat(live_client_t *c, const char *client_id, const char *group,
                                     const char *topic) {
    proto_heartbeat_t hb = {0};
    hb.client_id = cm_strdup(client_id);
    proto_consumer_data_t *cd = proto_heartbeat_add_consumer(&hb);
    cd->group_name = cm_strdup(group);
    cd->consume_type = PROTO_CONSUME_PASSIVELY;
    cd->message_model = PROTO_CLUSTERING;
    cd->consume_from_where = PROTO_CONSUME_FROM_LAST_OFFSET;
    proto_subscription_t *s = proto_consumer_data_add_sub(cd);
    s->topic = cm_strdup(topic);
    proto_subscription_set_tags(s, "*");
    s->sub_version = cm_now_ms();
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_HEART_BEAT, 0);
    cm_buf_t body = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &body);
    proto_cmd_take_body(&req, body.data, body.len);
    proto_heartbeat_free(&hb);
    live_call(c, &req, &resp);
    int32_t code = resp.code;
    proto_cmd_free(&resp);
    return code;
}

/* GET_CONSUMER_LIST_BY_GROUP: the ids into out (zeroed by the caller); the response code. */
static inline int32_t live_consumer_list(live_client_t *c, const char *group,
                                         proto_strlist_t *out) {
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_GET_CONSUMER_LIST_BY_GROUP, 0);
    proto_group_req_t h = {group};
    proto_group_req_encode(&h, &req.ext);
    live_call(c, &req, &resp);
    int32_t code = resp.code;
    if (code == 0) cr_assert_eq(proto_consumer_list_decode(resp.body, resp.body_len, out), RMQ_OK);
    proto_cmd_free(&resp);
    return code;
}

/* GET_ROUTEINFO_BY_TOPIC: the route into out (zeroed by the caller) when the code is 0. */
static inline int32_t live_route(live_client_t *c, const char *topic, proto_topic_route_t *out,
                                 char *remark, size_t remark_size) {
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_GET_ROUTEINFO_BY_TOPIC, 0);
    proto_route_req_t h = {topic, false};
    proto_route_req_encode(&h, &req.ext);
    live_call(c, &req, &resp);
    int32_t code = resp.code;
    if (code == 0) cr_assert_eq(proto_topic_route_decode(resp.body, resp.body_len, out), RMQ_OK);
    if (remark) snprintf(remark, remark_size, "%s", resp.remark ? resp.remark : "");
    proto_cmd_free(&resp);
    return code;
}

/* Asks for topic's route every 50 ms until the answer is want_code; false on timeout. */
static inline bool live_wait_route(live_client_t *c, const char *topic, int32_t want_code,
                                   proto_topic_route_t *out) {
    int64_t until = cm_mono_ms() + LIVE_WAIT_MS;
    for (;;) {
        proto_topic_route_t r = {0};
        int32_t code = live_route(c, topic, &r, NULL, 0);
        if (code == want_code) {
            if (out)
                *out = r;
            else
                proto_topic_route_free(&r);
            return true;
        }
        proto_topic_route_free(&r);
        if (cm_mono_ms() > until) return false;
        usleep(50 * 1000);
    }
}

#endif
