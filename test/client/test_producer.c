/* Producer against an in-process broker: every send mode through the public API, with the
 * stored records read back by a raw PULL_MESSAGE (lib/net + lib/proto) to check what landed. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rmq/broker.h>
#include <rmq/producer.h>

#include "client/client.h"

static rmq_broker_t *broker;
static char store_dir[64];

static void rm_rf(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static void start_broker(void) {
    snprintf(store_dir, sizeof store_dir, "/tmp/rmq-client-XXXXXX");
    cr_assert_not_null(mkdtemp(store_dir));
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "listenPort", "0", err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_conf_set(c, "storePathRootDir", store_dir, err, sizeof err), RMQ_OK, "%s",
                 err);
    cr_assert_eq(rmq_conf_set(c, "brokerName", "broker-a", err, sizeof err), RMQ_OK, "%s", err);
    /* Hundreds of async sends at once under sanitizers can wait in the broker's send queue
     * past the 200 ms default and get SYSTEM_BUSY (flow control, tested in test/broker);
     * these tests are about the client's callbacks. */
    cr_assert_eq(rmq_conf_set(c, "waitTimeMillsInSendQueue", "10000", err, sizeof err), RMQ_OK);
    broker = rmq_broker_new(c, err, sizeof err);
    cr_assert_not_null(broker, "%s", err);
    cr_assert_eq(rmq_broker_start(broker, err, sizeof err), RMQ_OK, "%s", err);
}

static void stop_broker(void) {
    rmq_broker_destroy(broker);
    broker = NULL;
    rm_rf(store_dir);
}

static rmq_producer_t *producer_with(const char *key, const char *value) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "producerGroup", "pg", err, sizeof err), RMQ_OK);
    if (key) cr_assert_eq(rmq_conf_set(c, key, value, err, sizeof err), RMQ_OK, "%s", err);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    return p;
}

static rmq_msg_t *msg_of(const char *topic, const char *body) {
    rmq_msg_t *m = rmq_msg_new(topic);
    rmq_msg_set_body(m, body, strlen(body));
    return m;
}

/* ---------------------------------------------------------------- raw pull */

typedef struct pulled {
    rmq_msg_t *msgs[256];
    int32_t sys_flags[256];
    int count;
} pulled_t;

static void pulled_free(pulled_t *p) {
    for (int i = 0; i < p->count; i++)
        rmq_msg_destroy(p->msgs[i]);
    p->count = 0;
}

static void pull_from(const char *addr, const char *topic, int queue, pulled_t *out);

/* Every record of topic/queue from offset 0, decoded as a consumer would. */
static void pull_all(const char *topic, int queue, pulled_t *out) {
    pull_from(rmq_broker_addr(broker), topic, queue, out);
}

static void pull_from(const char *addr, const char *topic, int queue, pulled_t *out) {
    memset(out, 0, sizeof *out);
    rmq_err_t err;
    net_loop_t *loop = net_loop_new(NULL, &err);
    cr_assert_not_null(loop);
    net_handler_t h = {0};
    net_conn_t *c = net_connect(loop, addr, &h, 0, &err);
    cr_assert_not_null(c);
    int64_t offset = 0;
    for (;;) {
        proto_cmd_t req, resp;
        proto_cmd_request(&req, PROTO_PULL_MESSAGE, 0);
        proto_pull_req_t ph;
        proto_pull_req_init(&ph);
        ph.consumer_group = "test_reader";
        ph.topic = topic;
        ph.queue_id = queue;
        ph.queue_offset = offset;
        ph.max_msg_nums = 32;
        ph.sys_flag = PULL_FLAG_SUBSCRIPTION;
        ph.subscription = "*";
        proto_pull_req_encode(&ph, &req.ext);
        cr_assert_eq(net_conn_request_sync(c, &req, 5000, &resp), RMQ_OK);
        if (resp.code != 0) {
            proto_cmd_free(&resp);
            break;
        }
        size_t pos = 0;
        while (pos < resp.body_len && out->count < 256) {
            proto_record_t rec;
            cr_assert_eq(proto_record_decode(resp.body + pos, resp.body_len - pos, true, &rec),
                         RMQ_OK);
            out->sys_flags[out->count] = rec.sys_flag;
            cr_assert_eq(proto_msg_from_record(&rec, 64 << 20, &out->msgs[out->count]), RMQ_OK);
            out->count++;
            offset = rec.queue_offset + 1;
            pos += (size_t)rec.total_size;
        }
        proto_cmd_free(&resp);
    }
    net_conn_unref(c);
    net_loop_destroy(loop);
}

/* ---------------------------------------------------------------- sync */

TestSuite(producer, .init = start_broker, .fini = stop_broker);

Test(producer, sync_send_fills_result_and_message) {
    cr_assert_eq(rmq_broker_create_topic(broker, "SyncT", 4, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    rmq_msg_t *m = msg_of("SyncT", "hello");
    rmq_msg_set_tags(m, "TagA");
    rmq_msg_set_keys(m, "k1 k2");
    rmq_msg_set_property(m, "color", "blue");
    rmq_msg_set_flag(m, 7);
    rmq_send_result_t r;
    cr_assert_eq(rmq_producer_send(p, m, &r), RMQ_OK, "%s", rmq_producer_last_remark());
    cr_expect_eq(r.status, RMQ_SEND_OK);
    cr_expect_eq(strlen(r.msg_id), 32);
    cr_expect_str_eq(r.msg_id, rmq_msg_property(m, "UNIQ_KEY"));
    cr_expect_eq(strlen(r.offset_msg_id), 32);
    cr_expect_str_eq(r.broker_name, "broker-a");
    cr_expect(r.queue_id >= 0 && r.queue_id < 4);
    cr_expect_eq(r.queue_offset, 0);
    cr_expect_str_eq(rmq_msg_offset_id(m), r.offset_msg_id);
    cr_expect_eq(rmq_msg_queue_id(m), r.queue_id);
    cr_expect_str_eq(rmq_msg_broker_name(m), "broker-a");
    cr_expect_str_eq(rmq_msg_id(m), r.msg_id);

    pulled_t got;
    pull_all("SyncT", r.queue_id, &got);
    cr_assert_eq(got.count, 1);
    size_t len;
    const char *body = rmq_msg_body(got.msgs[0], &len);
    cr_expect_eq(len, 5);
    cr_expect_eq(memcmp(body, "hello", 5), 0);
    cr_expect_str_eq(rmq_msg_tags(got.msgs[0]), "TagA");
    cr_expect_str_eq(rmq_msg_keys(got.msgs[0]), "k1 k2");
    cr_expect_str_eq(rmq_msg_property(got.msgs[0], "color"), "blue");
    cr_expect_str_eq(rmq_msg_id(got.msgs[0]), r.msg_id);
    cr_expect_str_eq(rmq_msg_offset_id(got.msgs[0]), r.offset_msg_id);
    cr_expect_eq(rmq_msg_flag(got.msgs[0]), 7);
    pulled_free(&got);
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

Test(producer, round_robin_over_every_queue) {
    cr_assert_eq(rmq_broker_create_topic(broker, "RoundT", 4, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    int per_queue[4] = {0};
    for (int i = 0; i < 8; i++) {
        rmq_msg_t *m = msg_of("RoundT", "x");
        rmq_send_result_t r;
        cr_assert_eq(rmq_producer_send(p, m, &r), RMQ_OK);
        per_queue[r.queue_id]++;
        rmq_msg_destroy(m);
    }
    for (int q = 0; q < 4; q++)
        cr_expect_eq(per_queue[q], 2, "queue %d", q);
    rmq_producer_destroy(p);
}

Test(producer, unknown_topic_is_created_through_createTopicKey) {
    rmq_producer_t *p = producer_with(NULL, NULL);
    rmq_msg_t *m = msg_of("AutoCreatedT", "first");
    rmq_send_result_t r;
    cr_assert_eq(rmq_producer_send(p, m, &r), RMQ_OK, "%s", rmq_producer_last_remark());
    cr_expect(r.queue_id >= 0 && r.queue_id < 4, "defaultTopicQueueNums caps the queues");
    pulled_t got;
    pull_all("AutoCreatedT", r.queue_id, &got);
    cr_expect_eq(got.count, 1);
    pulled_free(&got);
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

Test(producer, local_checks_give_distinct_errors) {
    rmq_producer_t *p = producer_with("maxMessageSize", "1024");
    rmq_msg_t *m = rmq_msg_new("CheckT");
    cr_expect_eq(rmq_producer_send(p, m, NULL), RMQ_ERR_MESSAGE_ILLEGAL);
    cr_expect_str_neq(rmq_producer_last_remark(), "");
    char big[1025];
    memset(big, 'b', sizeof big);
    rmq_msg_set_body(m, big, sizeof big);
    cr_expect_eq(rmq_producer_send(p, m, NULL), RMQ_ERR_MSG_TOO_LARGE);
    rmq_msg_set_body(m, big, 10);
    rmq_msg_set_topic(m, "bad topic");
    cr_expect_eq(rmq_producer_send(p, m, NULL), RMQ_ERR_BAD_TOPIC);
    rmq_msg_set_topic(m, "SCHEDULE_TOPIC_XXXX");
    cr_expect_eq(rmq_producer_send_oneway(p, m), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(rmq_producer_send(NULL, m, NULL), RMQ_ERR_INVALID_ARG);
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

Test(producer, not_started_and_no_route) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err);
    rmq_conf_set(c, "producerGroup", "pg2", err, sizeof err);
    rmq_conf_set(c, "createTopicKey", "NoSuchDefaultTopic", err, sizeof err);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    rmq_msg_t *m = msg_of("NoRouteT", "x");
    cr_expect_eq(rmq_producer_send(p, m, NULL), RMQ_ERR_NOT_STARTED);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    cr_expect_eq(rmq_producer_start(p, err, sizeof err), RMQ_ERR_STATE);
    cr_expect_eq(rmq_producer_send(p, m, NULL), RMQ_ERR_NO_ROUTE);
    cr_expect(strstr(rmq_producer_last_remark(), "NoRouteT"), "%s", rmq_producer_last_remark());
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

Test(producer, new_refuses_missing_group_and_name_server) {
    char err[256] = "";
    rmq_conf_t *c = rmq_conf_new();
    rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err);
    cr_expect_null(rmq_producer_new(c, err, sizeof err));
    cr_expect(strstr(err, "producerGroup"), "%s", err);
    rmq_conf_set(c, "producerGroup", "bad group", err, sizeof err);
    cr_expect_null(rmq_producer_new(c, err, sizeof err));
    rmq_conf_destroy(c);
}

Test(producer, name_server_from_NAMESRV_ADDR_when_the_conf_has_none) {
    char err[256] = "";
    unsetenv("NAMESRV_ADDR");
    rmq_conf_t *c = rmq_conf_new();
    rmq_conf_set(c, "producerGroup", "pg", err, sizeof err);
    cr_expect_null(rmq_producer_new(c, err, sizeof err));
    cr_expect(strstr(err, "NAMESRV_ADDR"), "%s", err);
    /* Criterion runs each test in its own process: the variable stays in this one. */
    setenv("NAMESRV_ADDR", rmq_broker_addr(broker), 1);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_broker_create_topic(broker, "EnvT", 1, 6), RMQ_OK);
    rmq_msg_t *m = msg_of("EnvT", "via NAMESRV_ADDR");
    rmq_send_result_t r;
    cr_expect_eq(rmq_producer_send(p, m, &r), RMQ_OK, "%s", rmq_producer_last_remark());
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

/* ---------------------------------------------------------------- async */

typedef struct async_tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls[512];
    int done, ok, shutdown, other, on_caller;
    rmq_err_t other_err; /* the last error that was neither OK nor SHUTDOWN */
    pthread_t caller;
} async_tally_t;

static async_tally_t tally;

static void tally_cb(rmq_err_t err, const rmq_send_result_t *r, void *opaque) {
    intptr_t i = (intptr_t)opaque;
    pthread_mutex_lock(&tally.mu);
    tally.calls[i]++;
    if (err == RMQ_OK) {
        tally.ok++;
        cr_expect_not_null(r);
        cr_expect_eq(r->status, RMQ_SEND_OK);
    } else if (err == RMQ_ERR_SHUTDOWN) {
        tally.shutdown++;
    } else {
        tally.other++;
        tally.other_err = err;
    }
    if (pthread_equal(pthread_self(), tally.caller)) tally.on_caller++;
    tally.done++;
    pthread_cond_broadcast(&tally.cv);
    pthread_mutex_unlock(&tally.mu);
}

static void tally_reset(void) {
    memset(&tally, 0, sizeof tally);
    pthread_mutex_init(&tally.mu, NULL);
    pthread_cond_init(&tally.cv, NULL);
    tally.caller = pthread_self();
}

Test(producer, async_sends_call_back_once_each_off_the_caller_thread) {
    cr_assert_eq(rmq_broker_create_topic(broker, "AsyncT", 4, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    tally_reset();
    enum { N = 300 };
    for (intptr_t i = 0; i < N; i++) {
        rmq_msg_t *m = msg_of("AsyncT", "async");
        cr_assert_eq(rmq_producer_send_async(p, m, tally_cb, (void *)i), RMQ_OK);
        rmq_msg_destroy(m); /* the send took a copy */
    }
    pthread_mutex_lock(&tally.mu);
    while (tally.done < N)
        pthread_cond_wait(&tally.cv, &tally.mu);
    pthread_mutex_unlock(&tally.mu);
    cr_expect_eq(tally.ok, N, "%d failed, last with %s", tally.other, rmq_err_name(tally.other_err));
    cr_expect_eq(tally.on_caller, 0);
    for (int i = 0; i < N; i++)
        cr_expect_eq(tally.calls[i], 1, "send %d", i);
    rmq_producer_destroy(p);
    int stored = 0;
    for (int q = 0; q < 4; q++) {
        pulled_t got;
        pull_all("AsyncT", q, &got);
        stored += got.count;
        pulled_free(&got);
    }
    cr_expect_eq(stored, N);
}

Test(producer, destroy_with_async_sends_in_flight_calls_each_back_exactly_once) {
    cr_assert_eq(rmq_broker_create_topic(broker, "DrainT", 4, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    tally_reset();
    enum { N = 500 };
    int accepted = 0;
    for (intptr_t i = 0; i < N; i++) {
        rmq_msg_t *m = msg_of("DrainT", "drain");
        accepted += rmq_producer_send_async(p, m, tally_cb, (void *)i) == RMQ_OK;
        rmq_msg_destroy(m);
    }
    cr_assert_eq(accepted, N);
    rmq_producer_destroy(p); /* returns only after every callback */
    cr_expect_eq(tally.done, N);
    cr_expect_eq(tally.ok + tally.shutdown + tally.other, N);
    for (int i = 0; i < N; i++)
        cr_expect_eq(tally.calls[i], 1, "send %d", i);
}

/* ---------------------------------------------------------------- oneway */

Test(producer, oneway_sends_land) {
    cr_assert_eq(rmq_broker_create_topic(broker, "OnewayT", 1, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    for (int i = 0; i < 20; i++) {
        rmq_msg_t *m = msg_of("OnewayT", "one way");
        cr_assert_eq(rmq_producer_send_oneway(p, m), RMQ_OK);
        rmq_msg_destroy(m);
    }
    /* A sync send on the same connection is answered after the oneway frames before it. */
    rmq_msg_t *last = msg_of("OnewayT", "last");
    rmq_send_result_t r;
    cr_assert_eq(rmq_producer_send(p, last, &r), RMQ_OK);
    cr_expect_eq(r.queue_offset, 20);
    rmq_msg_destroy(last);
    rmq_producer_destroy(p);
}

/* ---------------------------------------------------------------- orderly */

static int pick_arg(int n, const rmq_msg_t *msg, void *arg) {
    return (int)(intptr_t)arg % n;
}

Test(producer, orderly_by_sharding_key_over_8_queues) {
    cr_assert_eq(rmq_broker_create_topic(broker, "OrderT", 8, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    enum { KEYS = 12, PER_KEY = 10 };
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "order-%d", k);
        for (int s = 0; s < PER_KEY; s++) {
            char body[64];
            snprintf(body, sizeof body, "%s:%d", key, s);
            rmq_msg_t *m = msg_of("OrderT", body);
            rmq_msg_set_sharding_key(m, key);
            rmq_send_result_t r;
            cr_assert_eq(rmq_producer_send_orderly(p, m, NULL, NULL, &r), RMQ_OK);
            cr_expect_eq(r.queue_id, client_hash_index(key, 8), "%s", key);
            rmq_msg_destroy(m);
        }
    }
    /* In each queue, every key's messages appear in send order. */
    for (int q = 0; q < 8; q++) {
        pulled_t got;
        pull_all("OrderT", q, &got);
        int next[KEYS] = {0};
        for (int i = 0; i < got.count; i++) {
            size_t len;
            const char *b = rmq_msg_body(got.msgs[i], &len);
            char text[64]; /* bodies are not NUL-terminated: sscanf must not run past one */
            snprintf(text, sizeof text, "%.*s", (int)len, b);
            int k, s;
            cr_assert_eq(sscanf(text, "order-%d:%d", &k, &s), 2);
            cr_expect_eq(client_hash_index(rmq_msg_property(got.msgs[i], "__SHARDINGKEY"), 8), q);
            cr_expect_eq(s, next[k], "key %d out of order", k);
            next[k] = s + 1;
        }
        pulled_free(&got);
    }
    /* A user selector, and its range check. */
    rmq_msg_t *m = msg_of("OrderT", "chosen");
    rmq_send_result_t r;
    cr_assert_eq(rmq_producer_send_orderly(p, m, pick_arg, (void *)(intptr_t)13, &r), RMQ_OK);
    cr_expect_eq(r.queue_id, 5);
    cr_expect_eq(rmq_producer_send_orderly(p, m, NULL, NULL, &r), RMQ_ERR_INVALID_ARG);
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

/* ---------------------------------------------------------------- batch */

Test(producer, batch_is_one_frame_with_consecutive_offsets) {
    cr_assert_eq(rmq_broker_create_topic(broker, "BatchT", 1, 6), RMQ_OK);
    rmq_producer_t *p = producer_with(NULL, NULL);
    enum { N = 10 };
    rmq_msg_t *msgs[N];
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "batch-%d", i);
        msgs[i] = msg_of("BatchT", body);
        rmq_msg_set_tags(msgs[i], "B");
    }
    rmq_send_result_t r;
    cr_assert_eq(rmq_producer_send_batch(p, msgs, N, &r), RMQ_OK, "%s", rmq_producer_last_remark());
    cr_expect_eq(r.queue_offset, 0);
    cr_expect_str_eq(r.msg_id, rmq_msg_id(msgs[0]));
    pulled_t got;
    pull_all("BatchT", 0, &got);
    cr_assert_eq(got.count, N);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(rmq_msg_queue_offset(msgs[i]), i);
        cr_expect_str_eq(rmq_msg_offset_id(msgs[i]), rmq_msg_offset_id(got.msgs[i]));
        cr_expect_str_eq(rmq_msg_id(got.msgs[i]), rmq_msg_id(msgs[i]));
        size_t len;
        const char *b = rmq_msg_body(got.msgs[i], &len);
        char want[32];
        snprintf(want, sizeof want, "batch-%d", i);
        cr_expect_eq(len, strlen(want));
        cr_expect_eq(memcmp(b, want, len), 0);
    }
    pulled_free(&got);
    rmq_msg_t *other = msg_of("OtherT", "x");
    rmq_msg_t *mixed[2] = {msgs[0], other};
    cr_expect_eq(rmq_producer_send_batch(p, mixed, 2, &r), RMQ_ERR_INVALID_ARG);
    rmq_msg_set_delay_level(msgs[1], 3);
    cr_expect_eq(rmq_producer_send_batch(p, msgs, 2, &r), RMQ_ERR_INVALID_ARG);
    rmq_msg_destroy(other);
    for (int i = 0; i < N; i++)
        rmq_msg_destroy(msgs[i]);
    rmq_producer_destroy(p);
}

/* ---------------------------------------------------------------- compression */

static void compressed_round_trip(const char *type, int32_t type_bits) {
    char topic[32];
    snprintf(topic, sizeof topic, "Zip%sT", type);
    cr_assert_eq(rmq_broker_create_topic(broker, topic, 1, 6), RMQ_OK);
    rmq_producer_t *p = producer_with("compressType", type);
    enum { SIZE = 20000 };
    char *body = malloc(SIZE);
    for (int i = 0; i < SIZE; i++)
        body[i] = (char)('a' + (i / 7) % 26);
    rmq_msg_t *m = rmq_msg_new(topic);
    rmq_msg_set_body(m, body, SIZE);
    rmq_msg_t *small = msg_of(topic, "under the threshold");
    cr_assert_eq(rmq_producer_send(p, m, NULL), RMQ_OK, "%s", rmq_producer_last_remark());
    cr_assert_eq(rmq_producer_send(p, small, NULL), RMQ_OK);
    pulled_t got;
    pull_all(topic, 0, &got);
    cr_assert_eq(got.count, 2);
    cr_expect_eq(got.sys_flags[0] & (SYSFLAG_COMPRESS_MASK | SYSFLAG_COMPRESSED),
                 type_bits | SYSFLAG_COMPRESSED, "sysFlag 0x%x", got.sys_flags[0]);
    cr_expect_eq(got.sys_flags[1] & SYSFLAG_COMPRESSED, 0);
    size_t len;
    const void *b = rmq_msg_body(got.msgs[0], &len);
    cr_expect_eq(len, SIZE);
    cr_expect_eq(memcmp(b, body, SIZE), 0);
    pulled_free(&got);
    free(body);
    rmq_msg_destroy(m);
    rmq_msg_destroy(small);
    rmq_producer_destroy(p);
}

Test(producer, zlib_body_round_trip) {
    compressed_round_trip("ZLIB", SYSFLAG_COMPRESS_ZLIB);
}

Test(producer, zstd_body_round_trip) {
#ifdef RMQ_HAVE_ZSTD
    compressed_round_trip("ZSTD", SYSFLAG_COMPRESS_ZSTD);
#else
    cr_skip_test("built without zstd");
#endif
}

/* An async send copies what it needs in one piece (a compressed body apart): each message,
 * destroyed right after the call, lands with its body, properties, flag and topic. */
Test(producer, async_sends_keep_bodies_properties_and_flags) {
    cr_assert_eq(rmq_broker_create_topic(broker, "AsyncCopyT", 1, 6), RMQ_OK);
    rmq_producer_t *p = producer_with("compressType", "ZLIB");
    tally_reset();
    enum { N = 6, BIG = 20000 };
    char *big = malloc(BIG);
    for (int i = 0; i < BIG; i++)
        big[i] = (char)('a' + (i / 5) % 26);
    for (intptr_t i = 0; i < N; i++) {
        rmq_msg_t *m = rmq_msg_new("AsyncCopyT");
        char text[32];
        snprintf(text, sizeof text, "small-%d", (int)i);
        if (i % 2)
            rmq_msg_set_body(m, big, BIG - (size_t)i);
        else
            rmq_msg_set_body(m, text, strlen(text));
        rmq_msg_set_tags(m, i % 3 ? "T" : "U");
        rmq_msg_set_property(m, "seq", text);
        rmq_msg_set_flag(m, (int32_t)i + 7);
        cr_assert_eq(rmq_producer_send_async(p, m, tally_cb, (void *)i), RMQ_OK);
        rmq_msg_destroy(m);
    }
    pthread_mutex_lock(&tally.mu);
    while (tally.done < N)
        pthread_cond_wait(&tally.cv, &tally.mu);
    pthread_mutex_unlock(&tally.mu);
    cr_assert_eq(tally.ok, N, "%d failed, last with %s", tally.other,
                 rmq_err_name(tally.other_err));
    rmq_producer_destroy(p);
    pulled_t got;
    pull_all("AsyncCopyT", 0, &got);
    cr_assert_eq(got.count, N);
    bool seen[N] = {false};
    for (int k = 0; k < N; k++) {
        const rmq_msg_t *m = got.msgs[k];
        int i = rmq_msg_flag(m) - 7;
        cr_assert(i >= 0 && i < N && !seen[i], "flag %d", rmq_msg_flag(m));
        seen[i] = true;
        char text[32];
        snprintf(text, sizeof text, "small-%d", i);
        cr_expect_str_eq(rmq_msg_topic(m), "AsyncCopyT");
        cr_expect_str_eq(rmq_msg_property(m, "seq"), text);
        cr_expect_str_eq(rmq_msg_tags(m), i % 3 ? "T" : "U");
        cr_expect_eq((got.sys_flags[k] & SYSFLAG_COMPRESSED) != 0, i % 2 == 1);
        size_t len;
        const void *b = rmq_msg_body(m, &len);
        if (i % 2) {
            cr_expect_eq(len, BIG - (size_t)i);
            cr_expect_eq(memcmp(b, big, len), 0);
        } else {
            cr_expect_eq(len, strlen(text));
            cr_expect_eq(memcmp(b, text, len), 0);
        }
    }
    pulled_free(&got);
    free(big);
}

/* ---------------------------------------------------------------- shared instances */

Test(producer, same_instance_name_shares_one_client_and_refuses_a_second_group_copy) {
    cr_assert_eq(rmq_broker_create_topic(broker, "ShareT", 2, 6), RMQ_OK);
    char err[256];
    rmq_producer_t *ps[2];
    const char *groups[2] = {"g1", "g2"};
    for (int i = 0; i < 2; i++) {
        rmq_conf_t *c = rmq_conf_new();
        rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err);
        rmq_conf_set(c, "producerGroup", groups[i], err, sizeof err);
        rmq_conf_set(c, "instanceName", "shared", err, sizeof err);
        ps[i] = rmq_producer_new(c, err, sizeof err);
        cr_assert_eq(rmq_producer_start(ps[i], err, sizeof err), RMQ_OK, "%s", err);
    }
    rmq_conf_t *c = rmq_conf_new();
    rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err);
    rmq_conf_set(c, "producerGroup", "g1", err, sizeof err);
    rmq_conf_set(c, "instanceName", "shared", err, sizeof err);
    rmq_producer_t *dup = rmq_producer_new(c, err, sizeof err);
    cr_expect_eq(rmq_producer_start(dup, err, sizeof err), RMQ_ERR_STATE);
    rmq_producer_destroy(dup);
    for (int i = 0; i < 2; i++) {
        rmq_msg_t *m = msg_of("ShareT", "shared");
        cr_expect_eq(rmq_producer_send(ps[i], m, NULL), RMQ_OK);
        rmq_msg_destroy(m);
    }
    rmq_producer_destroy(ps[0]);
    rmq_msg_t *m = msg_of("ShareT", "after the first left");
    cr_expect_eq(rmq_producer_send(ps[1], m, NULL), RMQ_OK);
    rmq_msg_destroy(m);
    rmq_producer_destroy(ps[1]);
}

/* ---------------------------------------------------------------- failover */

static rmq_broker_t *broker_at(const char *dir, const char *name, const char *namesrv) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "listenPort", "0", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "storePathRootDir", dir, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "brokerName", name, err, sizeof err), RMQ_OK);
    if (namesrv) cr_assert_eq(rmq_conf_set(c, "namesrvAddr", namesrv, err, sizeof err), RMQ_OK);
    rmq_broker_t *b = rmq_broker_new(c, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    cr_assert_eq(rmq_broker_start(b, err, sizeof err), RMQ_OK, "%s", err);
    return b;
}

/* True once the name server at addr routes topic to two brokers. */
static bool routed_to_both(const char *addr, const char *topic) {
    rmq_err_t err;
    net_loop_t *l = net_loop_new(NULL, &err);
    net_handler_t h = {0};
    net_conn_t *c = net_connect(l, addr, &h, 0, &err);
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_GET_ROUTEINFO_BY_TOPIC, 0);
    proto_route_req_t rh;
    proto_route_req_init(&rh);
    rh.topic = topic;
    proto_route_req_encode(&rh, &req.ext);
    bool both = false;
    if (net_conn_request_sync(c, &req, 3000, &resp) == RMQ_OK) {
        proto_topic_route_t r = {0};
        both = resp.code == 0 && proto_topic_route_decode(resp.body, resp.body_len, &r) == 0 &&
               r.broker_count == 2;
        proto_topic_route_free(&r);
        proto_cmd_free(&resp);
    }
    net_conn_unref(c);
    net_loop_destroy(l);
    return both;
}

Test(failover, broker_killed_mid_stream_loses_nothing_acknowledged) {
    char dir_a[64] = "/tmp/rmq-client-a-XXXXXX", dir_b[64] = "/tmp/rmq-client-b-XXXXXX";
    cr_assert_not_null(mkdtemp(dir_a));
    cr_assert_not_null(mkdtemp(dir_b));
    rmq_broker_t *a = broker_at(dir_a, "broker-a", NULL);
    rmq_broker_t *b = broker_at(dir_b, "broker-b", rmq_broker_addr(a));
    cr_assert_eq(rmq_broker_create_topic(a, "FailT", 2, 6), RMQ_OK);
    cr_assert_eq(rmq_broker_create_topic(b, "FailT", 2, 6), RMQ_OK);
    for (int i = 0; i < 500 && !routed_to_both(rmq_broker_addr(a), "FailT"); i++)
        usleep(10000);
    cr_assert(routed_to_both(rmq_broker_addr(a), "FailT"));

    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(a), err, sizeof err);
    rmq_conf_set(c, "producerGroup", "pg_failover", err, sizeof err);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    enum { N = 200 };
    int acked = 0, on_b = 0;
    bool stored[N] = {false};
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            rmq_broker_destroy(b); /* mid-stream */
            b = NULL;
        }
        char body[32];
        snprintf(body, sizeof body, "fail-%d", i);
        rmq_msg_t *m = msg_of("FailT", body);
        rmq_send_result_t r;
        if (rmq_producer_send(p, m, &r) == RMQ_OK) {
            stored[i] = true;
            acked++;
            on_b += strcmp(r.broker_name, "broker-b") == 0;
        }
        rmq_msg_destroy(m);
    }
    rmq_producer_destroy(p);
    cr_expect_eq(acked, N, "every send failed over to broker-a");
    cr_expect_gt(on_b, 0, "broker-b took messages before it went away");

    /* Restart broker-b on its store and read both brokers back. */
    b = broker_at(dir_b, "broker-b", NULL);
    bool found[N] = {false};
    rmq_broker_t *both[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (int q = 0; q < 2; q++) {
            pulled_t got;
            pull_from(rmq_broker_addr(both[k]), "FailT", q, &got);
            for (int i = 0; i < got.count; i++) {
                size_t len;
                const char *body = rmq_msg_body(got.msgs[i], &len);
                char text[64]; /* bodies are not NUL-terminated: sscanf must not run past */
                snprintf(text, sizeof text, "%.*s", (int)len, body);
                int n;
                if (sscanf(text, "fail-%d", &n) == 1 && n >= 0 && n < N) found[n] = true;
            }
            pulled_free(&got);
        }
    for (int i = 0; i < N; i++)
        if (stored[i]) cr_expect(found[i], "acknowledged message %d is missing", i);
    rmq_broker_destroy(a);
    rmq_broker_destroy(b);
    rm_rf(dir_a);
    rm_rf(dir_b);
}
