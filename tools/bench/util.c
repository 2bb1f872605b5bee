/* What the client modes of rmq-bench share: latency histograms, an embedded broker, started
 * producers and push consumers. Set-up failures end the process: a benchmark that cannot
 * start has nothing to measure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static int bucket_of(int64_t v) {
    if (v < BENCH_HSUB) return (int)(v < 0 ? 0 : v);
    int msb = 63 - __builtin_clzll((unsigned long long)v);
    int sub = (int)((v >> (msb - 4)) & (BENCH_HSUB - 1));
    int b = (msb - 3) * BENCH_HSUB + sub;
    return b < BENCH_HBUCKETS ? b : BENCH_HBUCKETS - 1;
}

static int64_t bucket_value(int b) {
    if (b < BENCH_HSUB) return b;
    int msb = b / BENCH_HSUB + 3, sub = b % BENCH_HSUB;
    return ((int64_t)(BENCH_HSUB + sub) << (msb - 4));
}

void bench_hist_add(bench_hist_t *h, int64_t value) {
    atomic_fetch_add(&h->counts[bucket_of(value)], 1);
}

int64_t bench_hist_pct(bench_hist_t *h, double pct) {
    long long total = 0;
    for (int i = 0; i < BENCH_HBUCKETS; i++)
        total += atomic_load(&h->counts[i]);
    long long want = (long long)(total * pct / 100.0), seen = 0;
    for (int i = 0; i < BENCH_HBUCKETS; i++) {
        seen += atomic_load(&h->counts[i]);
        if (seen > want) return bucket_value(i);
    }
    return 0;
}

static void set_or_die(rmq_conf_t *c, const char *key, const char *value) {
    char err[256];
    if (rmq_conf_set(c, key, value, err, sizeof err)) {
        fprintf(stderr, "rmq-bench: %s\n", err);
        exit(1);
    }
}

void bench_broker_start(bench_broker_t *b, const char *const *extra) {
    char err[256];
    snprintf(b->dir, sizeof b->dir, "/tmp/rmq-bench-XXXXXX");
    if (!mkdtemp(b->dir)) {
        perror("rmq-bench: mkdtemp");
        exit(1);
    }
    rmq_conf_t *c = rmq_conf_new();
    set_or_die(c, "listenPort", "0");
    set_or_die(c, "storePathRootDir", b->dir);
    for (size_t i = 0; extra && extra[i]; i += 2)
        set_or_die(c, extra[i], extra[i + 1]);
    b->broker = rmq_broker_new(c, err, sizeof err);
    if (!b->broker || rmq_broker_start(b->broker, err, sizeof err)) {
        fprintf(stderr, "rmq-bench: embedded broker: %s\n", err);
        exit(1);
    }
}

void bench_broker_stop(bench_broker_t *b) {
    if (!b->broker) return;
    rmq_broker_destroy(b->broker);
    b->broker = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
    if (system(cmd) != 0) fprintf(stderr, "rmq-bench: could not remove %s\n", b->dir);
}

rmq_producer_t *bench_producer(const char *namesrv, const char *group) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    set_or_die(c, "namesrvAddr", namesrv);
    set_or_die(c, "producerGroup", group);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    if (!p || rmq_producer_start(p, err, sizeof err)) {
        fprintf(stderr, "rmq-bench: producer: %s\n", err);
        exit(1);
    }
    return p;
}

rmq_push_consumer_t *bench_push_consumer(const char *namesrv, const char *group,
                                         const char *instance, const char *topic,
                                         rmq_consume_cb_t *cb, void *opaque) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    set_or_die(c, "namesrvAddr", namesrv);
    set_or_die(c, "consumerGroup", group);
    set_or_die(c, "instanceName", instance);
    set_or_die(c, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET");
    rmq_push_consumer_t *pc = rmq_push_consumer_new(c, err, sizeof err);
    if (!pc) {
        fprintf(stderr, "rmq-bench: push consumer: %s\n", err);
        exit(1);
    }
    if (rmq_push_consumer_subscribe(pc, topic, "*") ||
        rmq_push_consumer_set_listener(pc, cb, opaque) ||
        rmq_push_consumer_start(pc, err, sizeof err)) {
        fprintf(stderr, "rmq-bench: push consumer start: %s\n", err);
        exit(1);
    }
    return pc;
}

void bench_window_init(bench_window_t *w, int max) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->inflight = 0;
    w->max = max;
    w->wake_at = -1;
}

void bench_window_destroy(bench_window_t *w) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Waits (mu held) until at most level sends are in flight. */
static void window_wait(bench_window_t *w, int level) {
    while (w->inflight > level) {
        w->wake_at = level;
        pthread_cond_wait(&w->cv, &w->mu);
    }
    w->wake_at = -1;
}

void bench_window_enter(bench_window_t *w) {
    pthread_mutex_lock(&w->mu);
    if (w->inflight >= w->max) window_wait(w, w->max - 1 - w->max / 4);
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
}

void bench_window_leave(bench_window_t *w) {
    pthread_mutex_lock(&w->mu);
    w->inflight--;
    if (w->inflight <= w->wake_at) pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void bench_window_drain(bench_window_t *w) {
    pthread_mutex_lock(&w->mu);
    window_wait(w, 0);
    pthread_mutex_unlock(&w->mu);
}
