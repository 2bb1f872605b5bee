/* rmq-bench: one program, one mode per file. A mode registers itself with BENCH_MODE() and
 * gets argv after the mode name; so adding a mode is one new file plus one line in
 * tools/bench/meson.build. Flags and summary lines: /work/shared/design/tools.md. */
#ifndef RMQ_BENCH_H
#define RMQ_BENCH_H

#include <stdbool.h>
#include <stdint.h>

typedef int(bench_run_fn)(int argc, char **argv);

void bench_register(const char *name, const char *usage, bench_run_fn *run);

#define BENCH_MODE(name, usage, fn)                                                               \
    __attribute__((constructor)) static void bench_register_##name(void) {                        \
        bench_register(#name, usage, fn);                                                         \
    }

/* Flags every mode shares (tools.md "Common flags"). */
typedef struct bench_common {
    int64_t size;    /* --size BYTES */
    int64_t seconds; /* --seconds N (0 = use count) */
    int64_t count;   /* --count N (0 = use seconds) */
    const char *topic;
    bool json;
} bench_common_t;

/* Consumes argv[*i] (and its value) if it is a common flag; false if it is not one.
 * Exits with a message on a bad value. */
bool bench_common_flag(bench_common_t *c, int argc, char **argv, int *i);
/* Value of the flag at argv[*i] (advancing *i), exiting when it is missing. */
const char *bench_value(int argc, char **argv, int *i);
int64_t bench_int(int argc, char **argv, int *i, int64_t min, int64_t max);
/* Resident set size of this process, MiB. */
double bench_rss_mb(void);
double bench_now_s(void);

/* ---------------------------------------------------------------- shared by client modes
 * (util.c): latency histograms, a broker embedded in this process, started clients. */

#include <pthread.h>
#include <stdatomic.h>

#include <rmq/broker.h>
#include <rmq/consumer.h>
#include <rmq/producer.h>

/* Latency histogram: 16 linear sub-buckets per power of two. Thread-safe. */
enum { BENCH_HSUB = 16, BENCH_HBUCKETS = 40 * BENCH_HSUB };
typedef struct bench_hist {
    atomic_llong counts[BENCH_HBUCKETS];
} bench_hist_t;
void bench_hist_add(bench_hist_t *h, int64_t value);
/* The value below which pct percent of the samples lie (bucket resolution). */
int64_t bench_hist_pct(bench_hist_t *h, double pct);

/* A window of at most max async sends in flight. A full window waits until it drained to
 * three quarters before sending again, so the callbacks do not wake the sender one by one
 * (a futex wake-up per message costs more than the send on a small machine). */
typedef struct bench_window {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight, max;
    int wake_at; /* a waiter wants inflight <= wake_at; -1: nobody waits */
} bench_window_t;
void bench_window_init(bench_window_t *w, int max);
void bench_window_destroy(bench_window_t *w);
/* Waits for room, then counts one more send in flight. */
void bench_window_enter(bench_window_t *w);
/* One send finished (its callback ran, or it was never issued). */
void bench_window_leave(bench_window_t *w);
/* Waits until nothing is in flight. */
void bench_window_drain(bench_window_t *w);

/* A broker embedded in this process on 127.0.0.1 and a free port, with a throw-away store. */
typedef struct bench_broker {
    rmq_broker_t *broker;
    char dir[64];
} bench_broker_t;
/* Starts it (exits with a message on failure); extra: NULL-terminated key, value pairs. */
void bench_broker_start(bench_broker_t *b, const char *const *extra);
/* Stops it and removes its store. Safe on one never started. */
void bench_broker_stop(bench_broker_t *b);

/* A started producer of group (exits with a message on failure). */
rmq_producer_t *bench_producer(const char *namesrv, const char *group);
/* A started push consumer of group subscribed to topic ("*"), calling cb; instance names one
 * client instance per consumer, so several consumers of one process form a real group.
 * Starts at the first offset when the group has none. Exits with a message on failure. */
rmq_push_consumer_t *bench_push_consumer(const char *namesrv, const char *group,
                                         const char *instance, const char *topic,
                                         rmq_consume_cb_t *cb, void *opaque);

#endif
