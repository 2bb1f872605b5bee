/* The callback pool (lib/client/pool.c): jobs posted by a deferring thread run once it
 * releases them; slow jobs each get a thread of their own (as Java's executors start a
 * task on any idle thread); threads stuck in long jobs do not hold up the queue for longer
 * than the stall guard; plain posts from other threads run without a release. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"

typedef struct counts {
    atomic_int ran, running, max_running;
    int sleep_ms;
} counts_t;

static void job(void *arg) {
    counts_t *c = arg;
    int now = atomic_fetch_add(&c->running, 1) + 1;
    for (int seen = atomic_load(&c->max_running);
         now > seen && !atomic_compare_exchange_weak(&c->max_running, &seen, now);)
        ;
    if (c->sleep_ms) usleep((useconds_t)c->sleep_ms * 1000);
    atomic_fetch_sub(&c->running, 1);
    atomic_fetch_add(&c->ran, 1);
}

static bool wait_ran(counts_t *c, int n, int ms) {
    for (int i = 0; i < ms && atomic_load(&c->ran) < n; i++)
        usleep(1000);
    return atomic_load(&c->ran) >= n;
}

static client_pool_t *pool_of(int threads) {
    rmq_err_t err = RMQ_OK;
    client_pool_t *p = client_pool_new(threads, &err);
    cr_assert_not_null(p);
    return p;
}

static void post_n(client_pool_t *p, counts_t *c, int n) {
    for (int i = 0; i < n; i++)
        cr_assert_eq(client_pool_post(p, job, c), RMQ_OK);
}

Test(pool, deferred_jobs_run_after_release_exactly_once) {
    client_pool_t *p = pool_of(4);
    client_pool_defer_here(p);
    counts_t fast = {0};
    post_n(p, &fast, 1000);
    client_pool_release(p);
    cr_assert(wait_ran(&fast, 1000, 10000));
    usleep(20000);
    cr_assert_eq(atomic_load(&fast.ran), 1000);
    client_pool_destroy(p);
}

/* Before anything was measured, and once jobs are known to be slow, a release wakes a
 * thread per job: eight 200 ms jobs on eight threads run side by side. */
Test(pool, slow_jobs_get_a_thread_each) {
    client_pool_t *p = pool_of(8);
    client_pool_defer_here(p);
    counts_t slow = {.sleep_ms = 200};
    post_n(p, &slow, 8);
    client_pool_release(p);
    cr_assert(wait_ran(&slow, 8, 10000));
    cr_assert_eq(atomic_load(&slow.max_running), 8);
    post_n(p, &slow, 8);
    client_pool_release(p);
    cr_assert(wait_ran(&slow, 16, 10000));
    cr_assert_eq(atomic_load(&slow.max_running), 8);
    client_pool_destroy(p);
}

/* After many fast jobs a release wakes few threads; should the jobs then turn out slow, the
 * next release after the stall guard (5 ms without a job taken) wakes the rest. */
Test(pool, stalled_queue_wakes_the_idle_threads) {
    client_pool_t *p = pool_of(8);
    client_pool_defer_here(p);
    counts_t fast = {0};
    post_n(p, &fast, 2000);
    client_pool_release(p);
    cr_assert(wait_ran(&fast, 2000, 10000));
    counts_t slow = {.sleep_ms = 200};
    post_n(p, &slow, 8);
    client_pool_release(p);
    for (int i = 0; i < 20 && atomic_load(&slow.max_running) < 8; i++) {
        usleep(10000);
        client_pool_release(p);
    }
    cr_assert_eq(atomic_load(&slow.max_running), 8);
    cr_assert(wait_ran(&slow, 8, 10000));
    client_pool_destroy(p);
}

/* Posts from a thread that does not defer wake a thread at once, no release needed. */
Test(pool, posts_from_other_threads_need_no_release) {
    client_pool_t *p = pool_of(2);
    counts_t c = {0};
    post_n(p, &c, 100);
    cr_assert(wait_ran(&c, 100, 10000));
    client_pool_stop(p);
    cr_assert_eq(client_pool_post(p, job, &c), RMQ_ERR_SHUTDOWN);
    client_pool_release(p); /* stopped: nothing to do, nothing breaks */
    client_pool_destroy(p);
}
