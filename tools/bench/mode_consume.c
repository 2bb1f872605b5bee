/* rmq-bench consume: push-consumer throughput. Embedded (the default): --count messages
 * (default 200,000) are stored first, then one push consumer of a new group reads them from
 * the first offset and the rate is count / time to the last one. With --addr: consumes the
 * topic (from the first offset when the group has none) for --seconds and reports the rate.
 * Summary: consume group= size= count= msgs/s= MB/s= */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

typedef struct consume {
    atomic_llong received, bytes, send_errors;
    _Atomic double first_at, last_at;
    bench_window_t window;
} consume_t;

static rmq_consume_status_t on_messages(const rmq_msg_t *const *msgs, size_t count,
                                        rmq_consume_ctx_t *ctx, void *opaque) {
    (void)ctx;
    consume_t *c = opaque;
    double now = bench_now_s();
    double zero = 0;
    atomic_compare_exchange_strong(&c->first_at, &zero, now);
    for (size_t i = 0; i < count; i++) {
        size_t len = 0;
        rmq_msg_body(msgs[i], &len);
        atomic_fetch_add(&c->bytes, (long long)len);
    }
    atomic_fetch_add(&c->received, (long long)count);
    atomic_store(&c->last_at, now);
    return RMQ_CONSUME_SUCCESS;
}

/* Callback-pool thread. */
static void on_sent(rmq_err_t err, const rmq_send_result_t *res, void *opaque) {
    (void)res;
    consume_t *c = opaque;
    if (err) atomic_fetch_add(&c->send_errors, 1);
    bench_window_leave(&c->window);
}

/* Stores count messages of size bytes in topic (async, 1024 in flight). */
static void preload(consume_t *c, const char *addr, const char *topic, int64_t count,
                    int64_t size) {
    rmq_producer_t *p = bench_producer(addr, "rmq_bench_consume_producer");
    char *body = malloc((size_t)size);
    memset(body, 'x', (size_t)size);
    for (int64_t i = 0; i < count; i++) {
        bench_window_enter(&c->window);
        rmq_msg_t *m = rmq_msg_new(topic);
        rmq_msg_set_body(m, body, (size_t)size);
        if (rmq_producer_send_async(p, m, on_sent, c) != RMQ_OK) {
            atomic_fetch_add(&c->send_errors, 1);
            bench_window_leave(&c->window);
        }
        rmq_msg_destroy(m);
    }
    bench_window_drain(&c->window);
    free(body);
    rmq_producer_destroy(p);
}

/* Waits until want messages arrived, stop_at passed (if non-zero), or nothing came for 10 s. */
static void wait_done(consume_t *c, long long want, double stop_at) {
    long long last = -1;
    double progress_at = bench_now_s(), tick = progress_at;
    for (;;) {
        long long now = atomic_load(&c->received);
        double t = bench_now_s();
        if ((want && now >= want) || (stop_at && t >= stop_at)) return;
        if (now != last) {
            last = now;
            progress_at = t;
        } else if (t - progress_at > 10.0) {
            return;
        }
        if (t - tick >= 1.0) {
            fprintf(stderr, "consume: %lld received\n", now);
            tick = t;
        }
        usleep(10 * 1000);
    }
}

static int consume_main(int argc, char **argv) {
    bench_common_t common = {.size = 1024, .topic = "BenchTopic"};
    const char *addr = NULL, *group = NULL;
    for (int i = 1; i < argc; i++) {
        if (bench_common_flag(&common, argc, argv, &i)) continue;
        if (strcmp(argv[i], "--addr") == 0)
            addr = bench_value(argc, argv, &i);
        else if (strcmp(argv[i], "--embedded") == 0)
            addr = NULL;
        else if (strcmp(argv[i], "--group") == 0)
            group = bench_value(argc, argv, &i);
        else {
            fprintf(stderr, "rmq-bench consume: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    char own_group[64];
    snprintf(own_group, sizeof own_group, "rmq_bench_consume_%ld", (long)getpid());
    if (!group) group = own_group;
    consume_t *c = calloc(1, sizeof *c);
    bench_window_init(&c->window, 1024);
    bench_broker_t embedded = {0};
    long long want = 0;
    double stop_at = 0;
    if (!addr) {
        bench_broker_start(&embedded, NULL);
        addr = rmq_broker_addr(embedded.broker);
        rmq_broker_create_topic(embedded.broker, common.topic, 8, 6);
        want = common.count ? common.count : 200000;
        fprintf(stderr, "consume: storing %lld messages of %lld bytes\n", want,
                (long long)common.size);
        preload(c, addr, common.topic, want, common.size);
        want -= atomic_load(&c->send_errors);
    } else if (common.count) {
        want = common.count;
    }
    rmq_push_consumer_t *pc = bench_push_consumer(addr, group, "consume", common.topic,
                                                  on_messages, c);
    double started = bench_now_s();
    if (!want) stop_at = started + (double)(common.seconds ? common.seconds : 10);
    wait_done(c, want, stop_at);
    long long got = atomic_load(&c->received), bytes = atomic_load(&c->bytes);
    double first = atomic_load(&c->first_at), last = atomic_load(&c->last_at);
    double secs = want ? last - first : bench_now_s() - started;
    rmq_push_consumer_destroy(pc);
    bench_broker_stop(&embedded);
    double rate = secs > 0 ? (double)got / secs : 0;
    if (common.json)
        printf("{\"mode\":\"consume\",\"group\":\"%s\",\"size\":%lld,\"count\":%lld,"
               "\"msgs_per_s\":%.0f,\"MB_per_s\":%.1f}\n",
               group, (long long)common.size, got, rate, secs > 0 ? (double)bytes / secs / 1e6 : 0);
    else
        printf("consume group=%s size=%lld count=%lld msgs/s=%.0f MB/s=%.1f\n", group,
               (long long)common.size, got, rate, secs > 0 ? (double)bytes / secs / 1e6 : 0);
    int rc = want && got < want ? 1 : 0;
    bench_window_destroy(&c->window);
    free(c);
    return rc;
}

BENCH_MODE(consume, "--embedded | --addr HOST:PORT, --group G (push consumer throughput)",
           consume_main)
