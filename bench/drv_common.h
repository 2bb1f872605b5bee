/* Shared by the peer drivers of bench/compare.sh (drv_redis.c, drv_rabbitmq.c, drv_nats.c):
 * flags, the clock, latency percentiles, message bodies that carry their own sequence number
 * and send time, and the summary lines in rmq-bench's shape (doc/benchmarks.md). */
#ifndef BENCH_DRV_COMMON_H
#define BENCH_DRV_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *host;
    int port;
    const char *workload; /* produce | e2e | sync */
    long count;           /* messages (produce, e2e); upper bound for sync */
    int seconds;          /* time bound for every workload */
    int size;             /* body bytes */
    int inflight;         /* unconfirmed sends allowed at once (produce, e2e) */
    const char *name;     /* queue / stream / key name */
} drv_opts_t;

static inline int64_t drv_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void drv_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s --port P [--host 127.0.0.1] --workload produce|e2e|sync [--count N]\n"
            "          [--seconds S] [--size BYTES] [--inflight N] [--name NAME]\n"
            "prints one summary line in rmq-bench's shape (produce ... / e2e ...)\n",
            prog);
}

static inline int drv_parse(drv_opts_t *o, int argc, char **argv) {
    *o = (drv_opts_t){.host = "127.0.0.1",
                      .workload = "produce",
                      .count = 100000,
                      .seconds = 60,
                      .size = 1024,
                      .inflight = 1024,
                      .name = "bench"};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc) {
            drv_usage(argv[0]);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(f, "--host"))
            o->host = v;
        else if (!strcmp(f, "--port"))
            o->port = atoi(v);
        else if (!strcmp(f, "--workload"))
            o->workload = v;
        else if (!strcmp(f, "--count"))
            o->count = atol(v);
        else if (!strcmp(f, "--seconds"))
            o->seconds = atoi(v);
        else if (!strcmp(f, "--size"))
            o->size = atoi(v);
        else if (!strcmp(f, "--inflight"))
            o->inflight = atoi(v);
        else if (!strcmp(f, "--name"))
            o->name = v;
        else {
            drv_usage(argv[0]);
            return -1;
        }
    }
    if (o->port <= 0 || o->count <= 0 || o->size < 16 || o->inflight <= 0 || o->seconds <= 0 ||
        (strcmp(o->workload, "produce") && strcmp(o->workload, "e2e") &&
         strcmp(o->workload, "sync"))) {
        drv_usage(argv[0]);
        return -1;
    }
    return 0;
}

/* Body: 8 bytes sequence number, 8 bytes send time (ns, CLOCK_MONOTONIC), then 'x'. */
static inline void drv_body_init(char *body, int size) {
    memset(body, 'x', (size_t)size);
}
static inline void drv_body_stamp(char *body, uint64_t seq, int64_t t_ns) {
    memcpy(body, &seq, 8);
    memcpy(body + 8, &t_ns, 8);
}
static inline void drv_body_read(const void *body, uint64_t *seq, int64_t *t_ns) {
    memcpy(seq, body, 8);
    memcpy(t_ns, (const char *)body + 8, 8);
}

/* Latency samples in microseconds: one per message, sorted at the end. */
typedef struct {
    int64_t *v;
    long n, cap;
} drv_lat_t;

static inline void drv_lat_add(drv_lat_t *l, int64_t us) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        if (!l->v) abort();
    }
    l->v[l->n++] = us;
}

static int drv_cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static inline int64_t drv_lat_pct(drv_lat_t *l, double pct) {
    if (l->n == 0) return 0;
    static const drv_lat_t *sorted;
    if (sorted != l) {
        qsort(l->v, (size_t)l->n, sizeof *l->v, drv_cmp64);
        sorted = l;
    }
    long i = (long)((double)l->n * pct / 100.0);
    if (i >= l->n) i = l->n - 1;
    return l->v[i];
}

static inline void drv_print_produce(const char *mode, int size, long sent, double secs,
                                     drv_lat_t *lat, long errors) {
    double rate = secs > 0 ? (double)sent / secs : 0;
    printf("produce mode=%s size=%d msgs/s=%.0f MB/s=%.1f p50_us=%lld p99_us=%lld "
           "p999_us=%lld errors=%ld\n",
           mode, size, rate, rate * size / 1e6, (long long)drv_lat_pct(lat, 50),
           (long long)drv_lat_pct(lat, 99), (long long)drv_lat_pct(lat, 99.9), errors);
    fflush(stdout);
}

/* e2e bookkeeping (lost = confirmed sends never received): which sequence numbers arrived, how
 * often, and their delivery delay. */
typedef struct {
    unsigned char *seen; /* count per sequence number, saturating at 255 */
    long count, unique, dup;
    drv_lat_t delivery; /* microseconds from send to receipt */
    int64_t last_ns;
} drv_e2e_t;

static inline void drv_e2e_init(drv_e2e_t *e, long count) {
    memset(e, 0, sizeof *e);
    e->count = count;
    e->seen = calloc((size_t)count, 1);
    if (!e->seen) abort();
}

static inline void drv_e2e_got(drv_e2e_t *e, const void *body, int len) {
    if (len < 16) {
        e->dup++; /* not one of ours: count it as noise */
        return;
    }
    uint64_t seq;
    int64_t t;
    drv_body_read(body, &seq, &t);
    int64_t now = drv_now_ns();
    e->last_ns = now;
    if (seq >= (uint64_t)e->count) return;
    if (e->seen[seq]) {
        e->dup++;
        if (e->seen[seq] < 255) e->seen[seq]++;
        return;
    }
    e->seen[seq] = 1;
    e->unique++;
    drv_lat_add(&e->delivery, (now - t) / 1000);
}

static inline void drv_print_e2e(int size, drv_e2e_t *e, long sent, int64_t t0_ns) {
    double secs = (double)(e->last_ns - t0_ns) / 1e9;
    double rate = secs > 0 ? (double)e->unique / secs : 0;
    printf("e2e size=%d msgs/s=%.0f lost=%ld dup=%ld p99_delivery_ms=%.1f sent=%ld\n", size, rate,
           sent > e->unique ? sent - e->unique : 0, e->dup,
           (double)drv_lat_pct(&e->delivery, 99) / 1000.0, sent);
    fflush(stdout);
}

#endif
