/* rmq-bench produce: producer throughput and latency against a broker (--addr) or one
 * started in this process (--embedded, the default): sync with N threads, async with N sends
 * in flight, or oneway. Summary: produce mode= size= msgs/s= MB/s= p50_us= p99_us= p999_us=
 * errors= */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rmq/broker.h>
#include <rmq/producer.h>

#include "bench.h"

typedef struct run {
    rmq_producer_t *producer;
    const char *topic;
    const char *mode;
    char *body;
    int64_t size, count;
    double stop_at;
    int threads;
    atomic_llong sent, errors, issued;
    atomic_bool done;
    bench_hist_t hist;
    bench_window_t window;
} run_t;

static bool keep_going(run_t *r) {
    if (r->count) return atomic_fetch_add(&r->issued, 1) < r->count;
    return bench_now_s() < r->stop_at;
}

static rmq_msg_t *new_msg(run_t *r) {
    rmq_msg_t *m = rmq_msg_new(r->topic);
    rmq_msg_set_body(m, r->body, (size_t)r->size);
    return m;
}

static void *sync_thread(void *arg) {
    run_t *r = arg;
    bool oneway = strcmp(r->mode, "oneway") == 0;
    while (keep_going(r)) {
        rmq_msg_t *m = new_msg(r);
        double t0 = bench_now_s();
        rmq_err_t err = oneway ? rmq_producer_send_oneway(r->producer, m)
                               : rmq_producer_send(r->producer, m, NULL);
        bench_hist_add(&r->hist, (int64_t)((bench_now_s() - t0) * 1e6));
        atomic_fetch_add(err ? &r->errors : &r->sent, 1);
        rmq_msg_destroy(m);
    }
    return NULL;
}

typedef struct pending {
    run_t *run;
    double t0;
} pending_t;

/* Callback-pool thread. */
static void on_sent(rmq_err_t err, const rmq_send_result_t *res, void *opaque) {
    pending_t *p = opaque;
    run_t *r = p->run;
    bench_hist_add(&r->hist, (int64_t)((bench_now_s() - p->t0) * 1e6));
    atomic_fetch_add(err ? &r->errors : &r->sent, 1);
    free(p);
    bench_window_leave(&r->window);
}

static void run_async(run_t *r) {
    while (keep_going(r)) {
        bench_window_enter(&r->window);
        pending_t *p = malloc(sizeof *p);
        p->run = r;
        p->t0 = bench_now_s();
        rmq_msg_t *m = new_msg(r);
        if (rmq_producer_send_async(r->producer, m, on_sent, p) != RMQ_OK) {
            atomic_fetch_add(&r->errors, 1);
            free(p);
            bench_window_leave(&r->window);
        }
        rmq_msg_destroy(m);
    }
    bench_window_drain(&r->window);
}

/* A line on stderr each second until the run is over. */
static void *progress_thread(void *arg) {
    run_t *r = arg;
    long long last = 0;
    while (!atomic_load(&r->done)) {
        for (int i = 0; i < 10 && !atomic_load(&r->done); i++)
            usleep(100 * 1000);
        long long now = atomic_load(&r->sent);
        fprintf(stderr, "produce: %lld msgs/s, %lld sent, %lld errors\n", now - last, now,
                (long long)atomic_load(&r->errors));
        last = now;
    }
    return NULL;
}

static int produce_main(int argc, char **argv) {
    bench_common_t common = {.size = 1024, .seconds = 10, .topic = "BenchTopic"};
    const char *addr = NULL, *mode = "sync";
    int threads = 1, inflight = 1024;
    for (int i = 1; i < argc; i++) {
        if (bench_common_flag(&common, argc, argv, &i)) continue;
        if (strcmp(argv[i], "--addr") == 0)
            addr = bench_value(argc, argv, &i);
        else if (strcmp(argv[i], "--embedded") == 0)
            addr = NULL;
        else if (strcmp(argv[i], "--mode") == 0)
            mode = bench_value(argc, argv, &i);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (int)bench_int(argc, argv, &i, 1, 1024);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = (int)bench_int(argc, argv, &i, 1, 1 << 20);
        else {
            fprintf(stderr, "rmq-bench produce: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (strcmp(mode, "sync") && strcmp(mode, "async") && strcmp(mode, "oneway")) {
        fprintf(stderr, "rmq-bench produce: --mode sync|async|oneway\n");
        return 2;
    }
    bench_broker_t embedded = {0};
    if (!addr) {
        bench_broker_start(&embedded, NULL);
        addr = rmq_broker_addr(embedded.broker);
        rmq_broker_create_topic(embedded.broker, common.topic, 8, 6);
    }
    run_t *r = calloc(1, sizeof *r);
    r->producer = bench_producer(addr, "rmq_bench_producer");
    r->topic = common.topic;
    r->mode = mode;
    r->size = common.size;
    r->count = common.count;
    r->threads = threads;
    r->body = malloc((size_t)r->size);
    memset(r->body, 'x', (size_t)r->size);
    bench_window_init(&r->window, inflight);
    /* One send first so the route and connection exist before timing starts. */
    rmq_msg_t *warm = new_msg(r);
    rmq_err_t werr = rmq_producer_send(r->producer, warm, NULL);
    rmq_msg_destroy(warm);
    if (werr) fprintf(stderr, "rmq-bench: first send: %s\n", rmq_err_name(werr));

    double t0 = bench_now_s();
    r->stop_at = t0 + (double)common.seconds;
    pthread_t progress;
    pthread_create(&progress, NULL, progress_thread, r);
    if (strcmp(mode, "async") == 0) {
        run_async(r);
    } else {
        pthread_t *ts = calloc((size_t)threads, sizeof *ts);
        for (int i = 0; i < threads; i++)
            pthread_create(&ts[i], NULL, sync_thread, r);
        for (int i = 0; i < threads; i++)
            pthread_join(ts[i], NULL);
        free(ts);
    }
    double secs = bench_now_s() - t0;
    long long sent = atomic_load(&r->sent), errors = atomic_load(&r->errors);
    atomic_store(&r->done, true);
    pthread_join(progress, NULL);
    rmq_producer_destroy(r->producer);
    bench_broker_stop(&embedded);
    double rate = sent / secs;
    if (common.json)
        printf("{\"mode\":\"produce\",\"send\":\"%s\",\"size\":%lld,\"threads\":%d,"
               "\"msgs_per_s\":%.0f,\"MB_per_s\":%.1f,\"p50_us\":%lld,\"p99_us\":%lld,"
               "\"p999_us\":%lld,\"errors\":%lld}\n",
               mode, (long long)r->size, threads, rate, rate * (double)r->size / 1e6,
               (long long)bench_hist_pct(&r->hist, 50), (long long)bench_hist_pct(&r->hist, 99),
               (long long)bench_hist_pct(&r->hist, 99.9), errors);
    else
        printf("produce mode=%s size=%lld msgs/s=%.0f MB/s=%.1f p50_us=%lld p99_us=%lld "
               "p999_us=%lld errors=%lld\n",
               mode, (long long)r->size, rate, rate * (double)r->size / 1e6,
               (long long)bench_hist_pct(&r->hist, 50), (long long)bench_hist_pct(&r->hist, 99),
               (long long)bench_hist_pct(&r->hist, 99.9), errors);
    free(r->body);
    bench_window_destroy(&r->window);
    free(r);
    return errors ? 1 : 0;
}

BENCH_MODE(produce,
           "--embedded | --addr HOST:PORT, --mode sync|async|oneway --threads N --inflight N",
           produce_main)
