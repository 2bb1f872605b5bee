/* The library's only clock readings, so tests and timeouts reason about one source; and the
 * monotonic condition-variable waits built on them. */
#include <time.h>

#include "cm.h"

static int64_t read_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cm_now_ms(void) { return read_ns(CLOCK_REALTIME) / 1000000; }
int64_t cm_mono_ms(void) { return read_ns(CLOCK_MONOTONIC) / 1000000; }
int64_t cm_mono_ns(void) { return read_ns(CLOCK_MONOTONIC); }

struct timespec cm_mono_deadline(int64_t in_ms) {
    int64_t ns = read_ns(CLOCK_MONOTONIC) + (in_ms > 0 ? in_ms : 0) * 1000000;
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
}

void cm_cond_init_mono(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}
