/* rmq-bench startup: starts and stops an embedded broker on a fresh store directory --runs
 * times (port 0, defaults otherwise) and reports the median and p99 time of
 * rmq_broker_new + rmq_broker_start, and the process RSS right after a start (the largest
 * seen). Target (issue 4): median under 5 ms, RSS under 16 MB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rmq/rmq.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void remove_tree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "rmq-bench: could not remove %s\n", dir);
}

/* One start; returns its duration in ms and the RSS after it, or exits on failure. */
static double one_start(double *rss_mb) {
    char dir[] = "/tmp/rmq-bench-startup-XXXXXX", store[256], err[512];
    if (!mkdtemp(dir)) {
        perror("rmq-bench: mkdtemp");
        exit(1);
    }
    snprintf(store, sizeof store, "%s/store", dir);
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "listenPort", "0", err, sizeof err) ||
        rmq_conf_set(conf, "storePathRootDir", store, err, sizeof err) ||
        rmq_conf_set(conf, "logLevel", "WARN", err, sizeof err)) {
        fprintf(stderr, "rmq-bench: %s\n", err);
        exit(1);
    }
    double t0 = bench_now_s();
    rmq_broker_t *b = rmq_broker_new(conf, err, sizeof err);
    if (!b || rmq_broker_start(b, err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "rmq-bench: broker: %s\n", err);
        exit(1);
    }
    double ms = (bench_now_s() - t0) * 1000.0;
    *rss_mb = bench_rss_mb();
    rmq_broker_destroy(b);
    remove_tree(dir);
    return ms;
}

static int run_startup(int argc, char **argv) {
    bench_common_t common = {0};
    int runs = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0)
            runs = (int)bench_int(argc, argv, &i, 1, 100000);
        else if (!bench_common_flag(&common, argc, argv, &i)) {
            fprintf(stderr, "rmq-bench startup: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    double *ms = calloc((size_t)runs, sizeof *ms), rss_max = 0, next = bench_now_s() + 1;
    for (int i = 0; i < runs; i++) {
        double rss;
        ms[i] = one_start(&rss);
        if (rss > rss_max) rss_max = rss;
        if (bench_now_s() >= next) {
            fprintf(stderr, "startup: %d/%d runs\n", i + 1, runs);
            next += 1;
        }
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    double p50 = ms[runs / 2], p99 = ms[(runs * 99) / 100 < runs ? (runs * 99) / 100 : runs - 1];
    if (common.json)
        printf(
            "{\"mode\":\"startup\",\"runs\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"rss_mb\":%.1f}\n",
            runs, p50, p99, rss_max);
    else
        printf("startup runs=%d p50_ms=%.3f p99_ms=%.3f rss_mb=%.1f\n", runs, p50, p99, rss_max);
    free(ms);
    return 0;
}

BENCH_MODE(startup, "--runs N: embedded broker start time (port 0, empty store) and RSS",
           run_startup)
