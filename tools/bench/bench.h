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

#endif
