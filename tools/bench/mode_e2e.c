/* rmq-bench e2e: one async producer and N push consumers of one group at the same time,
 * against a broker (--addr) or one embedded in this process (the default). Every body starts
 * with this run's id, the message's sequence number and its send time, so the consumers can
 * count what arrived: lost = acknowledged by the broker but never delivered, dup = delivered
 * more than once. Delivery latency is receive time minus send time (one process, one clock).
 * Summary: e2e size= consumers= msgs/s= lost= dup= p50_delivery_ms= p99_delivery_ms= */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* What starts every body. */
typedef struct stamp {
    uint64_t run_id;
    int64_t seq; /* -1: the warm-up message */
    double sent_at;
} stamp_t;

typedef struct e2e {
    uint64_t run_id;
    int64_t capacity;        /* messages this run may send (size of the arrays below) */
    atomic_uchar *acked;     /* per seq: 1 once the broker acknowledged it */
    atomic_uchar *delivered; /* per seq: deliveries seen (saturating at 255) */
    atomic_llong sent, send_errors, received, dups, foreign;
    atomic_bool warm_seen;
    _Atomic double last_delivery;
    bench_hist_t delivery_us;
    bench_window_t window;
    char *body;
    int64_t size;
} e2e_t;

static rmq_consume_status_t on_messages(const rmq_msg_t *const *msgs, size_t count,
                                        rmq_consume_ctx_t *ctx, void *opaque) {
    (void)ctx;
    e2e_t *e = opaque;
    double now = bench_now_s();
    for (size_t i = 0; i < count; i++) {
        size_t len = 0;
        const void *body = rmq_msg_body(msgs[i], &len);
        stamp_t st;
        if (len < sizeof st) {
            atomic_fetch_add(&e->foreign, 1);
            continue;
        }
        memcpy(&st, body, sizeof st);
        if (st.run_id != e->run_id || st.seq >= e->capacity) {
            atomic_fetch_add(&e->foreign, 1);
            continue;
        }
        if (st.seq < 0) {
            atomic_store(&e->warm_seen, true);
            continue;
        }
        unsigned char before = atomic_fetch_add(&e->delivered[st.seq], 1);
        if (before == 255) atomic_store(&e->delivered[st.seq], 255);
        if (before) {
            atomic_fetch_add(&e->dups, 1);
            continue;
        }
        atomic_fetch_add(&e->received, 1);
        bench_hist_add(&e->delivery_us, (int64_t)((now - st.sent_at) * 1e6));
        atomic_store(&e->last_delivery, now);
    }
    return RMQ_CONSUME_SUCCESS;
}

typedef struct pending {
    e2e_t *e;
    int64_t seq;
} pending_t;

/* Callback-pool thread. */
static void on_sent(rmq_err_t err, const rmq_send_result_t *res, void *opaque) {
    (void)res;
    pending_t *p = opaque;
    e2e_t *e = p->e;
    if (err) {
        atomic_fetch_add(&e->send_errors, 1);
    } else {
        atomic_store(&e->acked[p->seq], 1);
        atomic_fetch_add(&e->sent, 1);
    }
    free(p);
    bench_window_leave(&e->window);
}

static rmq_msg_t *stamped(e2e_t *e, const char *topic, int64_t seq) {
    stamp_t st = {.run_id = e->run_id, .seq = seq, .sent_at = bench_now_s()};
    memcpy(e->body, &st, sizeof st);
    rmq_msg_t *m = rmq_msg_new(topic);
    rmq_msg_set_body(m, e->body, (size_t)e->size);
    return m;
}

/* Sends until the count is reached or the time is up; returns how many were issued. */
static int64_t produce(e2e_t *e, rmq_producer_t *p, const char *topic, double stop_at) {
    int64_t seq = 0;
    for (; seq < e->capacity && (stop_at == 0 || bench_now_s() < stop_at); seq++) {
        bench_window_enter(&e->window);
        pending_t *pend = malloc(sizeof *pend);
        pend->e = e;
        pend->seq = seq;
        rmq_msg_t *m = stamped(e, topic, seq);
        if (rmq_producer_send_async(p, m, on_sent, pend) != RMQ_OK) {
            atomic_fetch_add(&e->send_errors, 1);
            free(pend);
            bench_window_leave(&e->window);
        }
        rmq_msg_destroy(m);
    }
    bench_window_drain(&e->window);
    return seq;
}

/* Waits until every acknowledged message arrived, or nothing arrived for idle_s. */
static void drain(e2e_t *e, double idle_s) {
    long long last = -1;
    double progress_at = bench_now_s();
    while (atomic_load(&e->received) < atomic_load(&e->sent)) {
        long long now = atomic_load(&e->received);
        if (now != last) {
            last = now;
            progress_at = bench_now_s();
        } else if (bench_now_s() - progress_at > idle_s) {
            return;
        }
        usleep(20 * 1000);
    }
}

typedef struct progress {
    e2e_t *e;
    atomic_bool done;
} progress_t;

static void *progress_thread(void *arg) {
    progress_t *pr = arg;
    long long last_sent = 0, last_recv = 0;
    while (!atomic_load(&pr->done)) {
        for (int i = 0; i < 10 && !atomic_load(&pr->done); i++)
            usleep(100 * 1000);
        long long s = atomic_load(&pr->e->sent), r = atomic_load(&pr->e->received);
        fprintf(stderr, "e2e: sent %lld/s, delivered %lld/s, %lld sent, %lld delivered\n",
                s - last_sent, r - last_recv, s, r);
        last_sent = s;
        last_recv = r;
    }
    return NULL;
}

/* Waits until a consumer has the warm-up message: the group has rebalanced and is pulling. */
static bool wait_warm(e2e_t *e, rmq_producer_t *p, const char *topic) {
    for (int tries = 0; tries < 60 && !atomic_load(&e->warm_seen); tries++) {
        rmq_msg_t *m = stamped(e, topic, -1);
        rmq_err_t err = rmq_producer_send(p, m, NULL);
        rmq_msg_destroy(m);
        if (err) fprintf(stderr, "rmq-bench e2e: warm-up send: %s\n", rmq_err_name(err));
        for (int i = 0; i < 10 && !atomic_load(&e->warm_seen); i++)
            usleep(100 * 1000);
    }
    return atomic_load(&e->warm_seen);
}

static void report(e2e_t *e, const bench_common_t *c, int consumers, double secs, long long lost) {
    double rate = secs > 0 ? (double)atomic_load(&e->received) / secs : 0;
    double p50 = (double)bench_hist_pct(&e->delivery_us, 50) / 1000.0;
    double p99 = (double)bench_hist_pct(&e->delivery_us, 99) / 1000.0;
    long long sent = atomic_load(&e->sent), errors = atomic_load(&e->send_errors);
    long long dups = atomic_load(&e->dups);
    if (c->json)
        printf("{\"mode\":\"e2e\",\"size\":%lld,\"consumers\":%d,\"sent\":%lld,\"send_errors\":%lld,"
               "\"msgs_per_s\":%.0f,\"lost\":%lld,\"dup\":%lld,\"p50_delivery_ms\":%.2f,"
               "\"p99_delivery_ms\":%.2f}\n",
               (long long)c->size, consumers, sent, errors, rate, lost, dups, p50, p99);
    else
        printf("e2e size=%lld consumers=%d sent=%lld send_errors=%lld msgs/s=%.0f lost=%lld "
               "dup=%lld p50_delivery_ms=%.2f p99_delivery_ms=%.2f\n",
               (long long)c->size, consumers, sent, errors, rate, lost, dups, p50, p99);
}

static int e2e_main(int argc, char **argv) {
    bench_common_t common = {.size = 1024, .seconds = 0, .topic = NULL};
    const char *addr = NULL;
    int consumers = 1, inflight = 1024;
    for (int i = 1; i < argc; i++) {
        if (bench_common_flag(&common, argc, argv, &i)) continue;
        if (strcmp(argv[i], "--addr") == 0)
            addr = bench_value(argc, argv, &i);
        else if (strcmp(argv[i], "--embedded") == 0)
            addr = NULL;
        else if (strcmp(argv[i], "--consumers") == 0)
            consumers = (int)bench_int(argc, argv, &i, 1, 64);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = (int)bench_int(argc, argv, &i, 1, 1 << 20);
        else {
            fprintf(stderr, "rmq-bench e2e: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (common.size < (int64_t)sizeof(stamp_t)) {
        fprintf(stderr, "rmq-bench e2e: --size must be at least %zu\n", sizeof(stamp_t));
        return 2;
    }
    if (!common.count && !common.seconds) common.seconds = 10;
    /* A topic of this run's own, so a shared broker's older messages are not counted. */
    char topic[64];
    snprintf(topic, sizeof topic, "%s", common.topic ? common.topic : "");
    if (!common.topic) snprintf(topic, sizeof topic, "BenchE2E_%ld", (long)getpid());
    char group[64];
    snprintf(group, sizeof group, "rmq_bench_e2e_%ld", (long)getpid());

    bench_broker_t embedded = {0};
    if (!addr) {
        bench_broker_start(&embedded, NULL);
        addr = rmq_broker_addr(embedded.broker);
        rmq_broker_create_topic(embedded.broker, topic, 8, 6);
    }
    e2e_t *e = calloc(1, sizeof *e);
    e->run_id = ((uint64_t)getpid() << 32) ^ (uint64_t)(bench_now_s() * 1e6);
    e->capacity = common.count ? common.count : common.seconds * 1000000;
    e->acked = calloc((size_t)e->capacity, 1);
    e->delivered = calloc((size_t)e->capacity, 1);
    e->size = common.size;
    e->body = malloc((size_t)e->size);
    memset(e->body, 'x', (size_t)e->size);
    bench_window_init(&e->window, inflight);

    rmq_producer_t *producer = bench_producer(addr, "rmq_bench_e2e_producer");
    rmq_push_consumer_t **cs = calloc((size_t)consumers, sizeof *cs);
    for (int i = 0; i < consumers; i++) {
        char instance[32];
        snprintf(instance, sizeof instance, "e2e-%d", i);
        cs[i] = bench_push_consumer(addr, group, instance, topic, on_messages, e);
    }
    int rc = 0;
    if (!wait_warm(e, producer, topic)) {
        fprintf(stderr, "rmq-bench e2e: the consumers received nothing within 60 s\n");
        rc = 1;
    }
    progress_t pr = {.e = e};
    pthread_t progress;
    pthread_create(&progress, NULL, progress_thread, &pr);
    double t0 = bench_now_s();
    double stop_at = common.seconds ? t0 + (double)common.seconds : 0;
    int64_t issued = rc ? 0 : produce(e, producer, topic, stop_at);
    drain(e, 10.0);
    double secs = atomic_load(&e->last_delivery) - t0;
    atomic_store(&pr.done, true);
    pthread_join(progress, NULL);

    long long lost = 0;
    for (int64_t s = 0; s < issued; s++)
        if (atomic_load(&e->acked[s]) && !atomic_load(&e->delivered[s])) lost++;
    report(e, &common, consumers, secs, lost);
    if (lost || atomic_load(&e->send_errors)) rc = 1;

    for (int i = 0; i < consumers; i++)
        rmq_push_consumer_destroy(cs[i]);
    free(cs);
    rmq_producer_destroy(producer);
    bench_broker_stop(&embedded);
    bench_window_destroy(&e->window);
    free(e->acked);
    free(e->delivered);
    free(e->body);
    free(e);
    return rc;
}

BENCH_MODE(e2e,
           "--embedded | --addr HOST:PORT, --consumers N --inflight N (async producer + push "
           "consumers)",
           e2e_main)
