/* demo: what `./build.sh run` shows. Starts an embedded broker (public API) on a free
 * loopback port with a store in a new temp directory, produces 100,000 messages to it with
 * librmq's producer (rmq_producer_send_async, a window of sends in flight), consumes them
 * back with PULL_MESSAGE, and prints throughput and where the data lives. The consuming side
 * speaks raw remoting frames through lib/net until librmq's consumer API exists.
 * Usage: demo [message-count [--remove]]   (--remove deletes the store at the end) */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rmq/broker.h>
#include <rmq/producer.h>
#include <rmq/rmq.h>

#include "net/net.h"
#include "proto/proto.h"

#define TOPIC "DemoTopic"
#define QUEUES 4
#define BODY_SIZE 128
#define WINDOW 512 /* sends in flight */

typedef struct demo {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long inflight, acked, failed;
    int32_t first_error;
} demo_t;

static void die(const char *what, const char *why) {
    fprintf(stderr, "demo: %s: %s\n", what, why);
    exit(1);
}

/* Callback-pool thread: one per accepted send. */
static void on_sent(rmq_err_t err, const rmq_send_result_t *result, void *arg) {
    demo_t *d = arg;
    pthread_mutex_lock(&d->mu);
    d->inflight--;
    if (err == RMQ_OK && result->status == RMQ_SEND_OK) {
        d->acked++;
    } else {
        d->failed++;
        if (!d->first_error) d->first_error = err != RMQ_OK ? err : RMQ_ERR_FLUSH_DISK_TIMEOUT;
    }
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static rmq_producer_t *start_producer(const char *namesrv) {
    char err[512];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "namesrvAddr", namesrv, err, sizeof err) ||
        rmq_conf_set(conf, "producerGroup", "demo-producer", err, sizeof err) ||
        rmq_conf_set(conf, "sendMsgTimeout", "30000", err, sizeof err))
        die("producer conf", err);
    rmq_producer_t *p = rmq_producer_new(conf, err, sizeof err);
    if (!p || rmq_producer_start(p, err, sizeof err) != RMQ_OK) die("producer", err);
    return p;
}

static void progress(const char *what, long done, long total, double t0) {
    double s = (double)(cm_mono_ns() / 1000000) / 1000.0 - t0;
    printf("  %s %7ld / %ld  (%.0f msgs/s)\n", what, done, total, s > 0 ? done / s : 0.0);
    fflush(stdout);
}

static double now_s(void) {
    return (double)(cm_mono_ns() / 1000000) / 1000.0;
}

static double produce(rmq_producer_t *p, long count) {
    demo_t d = {.inflight = 0};
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    char body[BODY_SIZE];
    for (int i = 0; i < BODY_SIZE; i++)
        body[i] = (char)('a' + i % 26);
    double t0 = now_s(), next_tick = t0 + 1;
    for (long i = 0; i < count; i++) {
        pthread_mutex_lock(&d.mu);
        while (d.inflight >= WINDOW)
            pthread_cond_wait(&d.cv, &d.mu);
        d.inflight++;
        long acked = d.acked;
        pthread_mutex_unlock(&d.mu);
        /* A new message per send: each gets its own UNIQ_KEY (a re-sent one keeps its id). */
        rmq_msg_t *msg = rmq_msg_new(TOPIC);
        rmq_msg_set_body(msg, body, BODY_SIZE);
        rmq_msg_set_tags(msg, "demo");
        rmq_err_t rc = rmq_producer_send_async(p, msg, on_sent, &d);
        rmq_msg_destroy(msg); /* the send took a copy */
        if (rc != RMQ_OK) die("send", rmq_producer_last_remark());
        if ((i & 1023) == 0 && now_s() >= next_tick) {
            progress("produced", acked, count, t0);
            next_tick += 1;
        }
    }
    pthread_mutex_lock(&d.mu);
    while (d.inflight > 0)
        pthread_cond_wait(&d.cv, &d.mu);
    pthread_mutex_unlock(&d.mu);
    double took = now_s() - t0;
    if (d.failed) {
        fprintf(stderr, "demo: %ld sends failed (first: %s)\n", d.failed,
                rmq_err_name((rmq_err_t)d.first_error));
        exit(1);
    }
    pthread_cond_destroy(&d.cv);
    pthread_mutex_destroy(&d.mu);
    return took;
}

/* Pulls one batch; returns the records read and advances *offset. */
static int pull_once(net_conn_t *conn, int32_t queue_id, int64_t *offset) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_PULL_MESSAGE, 0);
    proto_pull_req_t h;
    proto_pull_req_init(&h);
    h.consumer_group = "demo-consumer";
    h.topic = TOPIC;
    h.queue_id = queue_id;
    h.queue_offset = *offset;
    h.max_msg_nums = 32;
    h.sys_flag = PULL_FLAG_SUBSCRIPTION;
    h.subscription = "*";
    proto_pull_req_encode(&h, &req.ext);
    rmq_err_t rc = net_conn_request_sync(conn, &req, 30000, &resp);
    if (rc != RMQ_OK) die("pull", rmq_err_str(rc));
    int n = 0;
    if (resp.code == 0) {
        for (size_t pos = 0; pos < resp.body_len; n++) {
            proto_record_t rec;
            if (proto_record_decode(resp.body + pos, resp.body_len - pos, true, &rec) != RMQ_OK)
                die("pull", "a record does not decode");
            pos += (size_t)rec.total_size;
        }
    }
    proto_pull_resp_t ph;
    if (proto_pull_resp_decode(&resp.ext, &ph, NULL) == RMQ_OK) *offset = ph.next_begin_offset;
    proto_cmd_free(&resp);
    return n;
}

static double consume(net_conn_t *conn, long count) {
    int64_t offsets[QUEUES] = {0};
    long got = 0;
    double t0 = now_s(), next_tick = t0 + 1;
    while (got < count) {
        long before = got;
        for (int32_t q = 0; q < QUEUES; q++)
            got += pull_once(conn, q, &offsets[q]);
        if (got == before) die("consume", "the queues ran dry before every message came back");
        if (now_s() >= next_tick) {
            progress("consumed", got, count, t0);
            next_tick += 1;
        }
    }
    return now_s() - t0;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 100000;
    bool remove_store = argc > 2 && strcmp(argv[2], "--remove") == 0;
    if (count <= 0 || (argc > 2 && !remove_store)) die("usage", "demo [message-count [--remove]]");
    char dir[] = "/tmp/rmq-demo-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp", "cannot create a temp directory");
    char store[256], err[512];
    snprintf(store, sizeof store, "%s/store", dir);
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "listenPort", "0", err, sizeof err) ||
        rmq_conf_set(conf, "brokerName", "demo-broker", err, sizeof err) ||
        rmq_conf_set(conf, "storePathRootDir", store, err, sizeof err) ||
        rmq_conf_set(conf, "mappedFileSizeCommitLog", "134217728", err, sizeof err) ||
        /* The demo keeps WINDOW sends in flight: on a slow machine (or a sanitizer build)
         * the last of them can wait in the send queue past the 200 ms default and be
         * refused with SYSTEM_BUSY. This broker serves only the demo, so let it wait. */
        rmq_conf_set(conf, "waitTimeMillsInSendQueue", "2000", err, sizeof err) ||
        rmq_conf_set(conf, "logLevel", "WARN", err, sizeof err))
        die("conf", err);
    rmq_broker_t *b = rmq_broker_new(conf, err, sizeof err);
    if (!b || rmq_broker_start(b, err, sizeof err) != RMQ_OK) die("broker", err);
    if (rmq_broker_create_topic(b, TOPIC, QUEUES, 0) != RMQ_OK) die("topic", "cannot create");
    printf("librmq demo: broker at %s (also its name server), store in %s\n", rmq_broker_addr(b),
           store);

    rmq_err_t rc;
    net_loop_t *loop = net_loop_new(NULL, &rc);
    if (!loop) die("net", rmq_err_str(rc));
    net_handler_t h = {0};
    net_conn_t *conn = net_connect(loop, rmq_broker_addr(b), &h, 0, &rc);
    if (!conn) die("connect", rmq_err_str(rc));

    printf("producing %ld messages of %d bytes (%d in flight)...\n", count, BODY_SIZE, WINDOW);
    rmq_producer_t *producer = start_producer(rmq_broker_addr(b));
    double tp = produce(producer, count);
    rmq_producer_destroy(producer);
    printf("consuming them back with PULL_MESSAGE...\n");
    double tc = consume(conn, count);

    double mb = (double)count * BODY_SIZE / (1024.0 * 1024.0);
    printf("\nproduced %ld messages in %.2f s: %.0f msgs/s, %.1f MB/s of bodies\n", count, tp,
           count / tp, mb / tp);
    printf("consumed %ld messages in %.2f s: %.0f msgs/s, %.1f MB/s of bodies\n", count, tc,
           count / tc, mb / tc);
    char *stats = rmq_broker_stats_json(b);
    printf("broker stats: %s\n", stats);
    rmq_free(stats);

    net_conn_unref(conn);
    net_loop_destroy(loop);
    rmq_broker_destroy(b);
    if (remove_store) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) die("remove", dir);
        printf("\nthe store in %s was removed (--remove)\n", dir);
        return 0;
    }
    printf("\nthe data lives in %s: commitlog/ (the records), consumequeue/%s/0..%d "
           "(offsets per queue),\nindex/ (keys), config/ (topics.json, subscriptionGroup.json). "
           "Remove it with: rm -rf %s\n",
           store, TOPIC, QUEUES - 1, dir);
    return 0;
}
