/* rmq-bench delay: schedules --count timer messages (TIMER_DELIVER_MS = send time +
 * --delay-ms) and reads them back from their topic with a pull consumer once delivered.
 * Lateness is the delivered copy's store time minus its deliver time (what the broker's
 * timer adds, not the consumer's lag). msgs/s is the scheduling rate (sends); rss_mb the
 * largest resident size sampled during the run (the embedded broker's, with --embedded).
 * Summary: delay count= msgs/s= p50_late_ms= p99_late_ms= lost= rss_mb= */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

typedef struct run {
    const char *topic;
    rmq_producer_t *producer;
    rmq_pull_consumer_t *consumer;
    rmq_broker_t *broker; /* the embedded one, or NULL */
    int64_t count, delay_ms, size;
    bench_window_t window;
    bench_hist_t late;
    atomic_llong sent, errors, received, dups;
    _Atomic rmq_err_t first_error;
    uint8_t *seen; /* one byte per message index */
    atomic_bool sending_done, done;
    double rss_max;
} run_t;

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_sent(rmq_err_t err, const rmq_send_result_t *res, void *opaque) {
    (void)res;
    run_t *r = opaque;
    atomic_fetch_add(err ? &r->errors : &r->sent, 1);
    rmq_err_t none = RMQ_OK;
    if (err) atomic_compare_exchange_strong(&r->first_error, &none, err);
    bench_window_leave(&r->window);
}

static void send_all(run_t *r) {
    char *body = malloc((size_t)r->size + 32);
    memset(body, 'x', (size_t)r->size + 32);
    for (int64_t i = 0; i < r->count; i++) {
        int n = snprintf(body, 32, "%lld:", (long long)i);
        body[n] = 'x';
        rmq_msg_t *m = rmq_msg_new(r->topic);
        rmq_msg_set_body(m, body, (size_t)(r->size > n ? r->size : n));
        rmq_msg_set_deliver_time_ms(m, wall_ms() + r->delay_ms);
        bench_window_enter(&r->window);
        if (rmq_producer_send_async(r->producer, m, on_sent, r) != RMQ_OK) {
            atomic_fetch_add(&r->errors, 1);
            bench_window_leave(&r->window);
        }
        rmq_msg_destroy(m);
    }
    bench_window_drain(&r->window);
    free(body);
}

/* Consumer thread: polls until every sent message came back or the run is given up. */
static void *receive_main(void *arg) {
    run_t *r = arg;
    rmq_msg_t *msgs[256];
    while (!atomic_load(&r->done)) {
        int n = rmq_pull_consumer_poll(r->consumer, 200, msgs, 256);
        for (int i = 0; i < n; i++) {
            size_t len;
            const char *body = rmq_msg_body(msgs[i], &len);
            long long idx = len ? strtoll(body, NULL, 10) : -1;
            const char *due = rmq_msg_property(msgs[i], "TIMER_DELIVER_MS");
            if (idx >= 0 && idx < r->count) {
                if (r->seen[idx]++) atomic_fetch_add(&r->dups, 1);
                else atomic_fetch_add(&r->received, 1);
            }
            if (due) {
                int64_t late = rmq_msg_store_timestamp(msgs[i]) - strtoll(due, NULL, 10);
                bench_hist_add(&r->late, late < 0 ? 0 : late);
            }
            rmq_msg_destroy(msgs[i]);
        }
    }
    return NULL;
}

static long long timer_pending(run_t *r) {
    if (!r->broker) return -1;
    char *stats = rmq_broker_stats_json(r->broker);
    const char *p = stats ? strstr(stats, "\"timerPending\":") : NULL;
    long long n = p ? atoll(p + 15) : -1;
    rmq_free(stats);
    return n;
}

/* RssAnon of this process, MiB: the heap, without the store's mapped files. */
static double rss_anon_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "RssAnon:", 8) == 0) kb = atof(line + 8);
    if (f) fclose(f);
    return kb / 1024;
}

static void progress(run_t *r) {
    double rss = bench_rss_mb();
    if (rss > r->rss_max) r->rss_max = rss;
    fprintf(stderr,
            "delay: %lld sent, %lld errors, %lld received, %lld pending in the broker, rss %.0f MB "
            "(anon %.0f MB)\n",
            (long long)atomic_load(&r->sent), (long long)atomic_load(&r->errors),
            (long long)atomic_load(&r->received), timer_pending(r), rss, rss_anon_mb());
}

static void *progress_main(void *arg) {
    run_t *r = arg;
    while (!atomic_load(&r->sending_done)) {
        for (int i = 0; i < 10 && !atomic_load(&r->sending_done); i++)
            usleep(100 * 1000);
        progress(r);
    }
    return NULL;
}

static rmq_pull_consumer_t *start_consumer(const char *addr, const char *topic) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    const char *pairs[][2] = {{"namesrvAddr", addr},
                              {"consumerGroup", "rmq_bench_delay"},
                              {"consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET"},
                              {"pullBatchSize", "256"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (rmq_conf_set(c, pairs[i][0], pairs[i][1], err, sizeof err) != RMQ_OK) {
            fprintf(stderr, "rmq-bench: consumer %s: %s\n", pairs[i][0], err);
            exit(1);
        }
    rmq_pull_consumer_t *pc = rmq_pull_consumer_new(c, err, sizeof err);
    if (!pc || rmq_pull_consumer_subscribe(pc, topic, "*") != RMQ_OK ||
        rmq_pull_consumer_start(pc, err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "rmq-bench: consumer: %s\n", err);
        exit(1);
    }
    return pc;
}

static int delay_main(int argc, char **argv) {
    bench_common_t common = {.size = 128, .count = 1000000, .topic = "BenchDelay"};
    const char *addr = NULL;
    int64_t delay_ms = 10000, inflight = 1024;
    for (int i = 1; i < argc; i++) {
        if (bench_common_flag(&common, argc, argv, &i)) continue;
        if (strcmp(argv[i], "--addr") == 0)
            addr = bench_value(argc, argv, &i);
        else if (strcmp(argv[i], "--embedded") == 0)
            addr = NULL;
        else if (strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = bench_int(argc, argv, &i, 1, 3LL * 86400 * 1000);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = bench_int(argc, argv, &i, 1, 1 << 20);
        else {
            fprintf(stderr, "rmq-bench delay: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    run_t *r = calloc(1, sizeof *r);
    r->topic = common.topic;
    r->count = common.count;
    r->delay_ms = delay_ms;
    r->size = common.size;
    r->seen = calloc((size_t)r->count, 1);
    bench_broker_t embedded = {0};
    if (!addr) {
        /* 1 GiB segments as RocketMQ's default; a million parked and delivered copies fit. */
        bench_broker_start(&embedded, NULL);
        addr = rmq_broker_addr(embedded.broker);
        rmq_broker_create_topic(embedded.broker, r->topic, 8, 6);
        r->broker = embedded.broker;
    }
    r->consumer = start_consumer(addr, r->topic);
    r->producer = bench_producer(addr, "rmq_bench_delay");
    bench_window_init(&r->window, (int)inflight);
    pthread_t rx, prog;
    pthread_create(&rx, NULL, receive_main, r);
    pthread_create(&prog, NULL, progress_main, r);

    double t0 = bench_now_s();
    send_all(r);
    double send_secs = bench_now_s() - t0;
    atomic_store(&r->sending_done, true);
    pthread_join(prog, NULL);
    /* Everything is due delay_ms after its send; give the tail a minute beyond that. */
    double give_up = bench_now_s() + (double)delay_ms / 1000 + 60;
    long long want = atomic_load(&r->sent), last = -1;
    while (atomic_load(&r->received) < want && bench_now_s() < give_up) {
        usleep(1000 * 1000);
        if (atomic_load(&r->received) != last) progress(r);
        last = atomic_load(&r->received);
    }
    usleep(1000 * 1000); /* a duplicate would arrive by now */
    atomic_store(&r->done, true);
    pthread_join(rx, NULL);
    double rss = bench_rss_mb();
    if (rss > r->rss_max) r->rss_max = rss;
    rmq_producer_destroy(r->producer);
    rmq_pull_consumer_destroy(r->consumer);
    bench_broker_stop(&embedded);

    long long lost = want - atomic_load(&r->received), errors = atomic_load(&r->errors);
    double rate = (double)want / send_secs;
    long long p50 = bench_hist_pct(&r->late, 50), p99 = bench_hist_pct(&r->late, 99);
    if (errors || atomic_load(&r->dups))
        fprintf(stderr, "delay: %lld send errors (first: %s), %lld duplicates\n", errors,
                rmq_err_name(atomic_load(&r->first_error)), (long long)atomic_load(&r->dups));
    if (common.json)
        printf("{\"mode\":\"delay\",\"count\":%lld,\"msgs_per_s\":%.0f,\"p50_late_ms\":%lld,"
               "\"p99_late_ms\":%lld,\"lost\":%lld,\"dup\":%lld,\"rss_mb\":%.0f}\n",
               want, rate, p50, p99, lost, (long long)atomic_load(&r->dups), r->rss_max);
    else
        printf("delay count=%lld msgs/s=%.0f p50_late_ms=%lld p99_late_ms=%lld lost=%lld "
               "rss_mb=%.0f\n",
               want, rate, p50, p99, lost, r->rss_max);
    bench_window_destroy(&r->window);
    free(r->seen);
    free(r);
    return lost || errors ? 1 : 0;
}

BENCH_MODE(delay, "--embedded | --addr HOST:PORT, --count N --delay-ms MS --inflight N",
           delay_main)
