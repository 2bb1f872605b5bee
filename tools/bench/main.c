/* rmq-bench <mode> [flags]: dispatches to the mode registered under that name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

enum { MAX_MODES = 32 };

static struct {
    const char *name, *usage;
    bench_run_fn *run;
} modes[MAX_MODES];
static int mode_count;

void bench_register(const char *name, const char *usage, bench_run_fn *run) {
    if (mode_count == MAX_MODES) abort();
    modes[mode_count].name = name;
    modes[mode_count].usage = usage;
    modes[mode_count].run = run;
    mode_count++;
}

static void usage(FILE *out) {
    fprintf(out, "usage: rmq-bench <mode> [flags]\n"
                 "common flags: --size BYTES --seconds N | --count N --topic T --json\n"
                 "modes:\n");
    for (int i = 0; i < mode_count; i++)
        fprintf(out, "  %-10s %s\n", modes[i].name, modes[i].usage);
}

const char *bench_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "rmq-bench: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

int64_t bench_int(int argc, char **argv, int *i, int64_t min, int64_t max) {
    const char *flag = argv[*i], *v = bench_value(argc, argv, i);
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || end == v || n < min || n > max) {
        fprintf(stderr, "rmq-bench: %s %s: expected an integer in [%lld, %lld]\n", flag, v,
                (long long)min, (long long)max);
        exit(2);
    }
    return n;
}

bool bench_common_flag(bench_common_t *c, int argc, char **argv, int *i) {
    const char *f = argv[*i];
    if (strcmp(f, "--size") == 0) c->size = bench_int(argc, argv, i, 1, 64 << 20);
    else if (strcmp(f, "--seconds") == 0) c->seconds = bench_int(argc, argv, i, 1, 86400);
    else if (strcmp(f, "--count") == 0) c->count = bench_int(argc, argv, i, 1, INT64_MAX);
    else if (strcmp(f, "--topic") == 0) c->topic = bench_value(argc, argv, i);
    else if (strcmp(f, "--json") == 0) c->json = true;
    else return false;
    return true;
}

double bench_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atof(line + 6);
    if (f) fclose(f);
    return kb / 1024;
}

double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < mode_count; i++)
        if (strcmp(argv[1], modes[i].name) == 0) return modes[i].run(argc - 1, argv + 1);
    fprintf(stderr, "rmq-bench: unknown mode '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
