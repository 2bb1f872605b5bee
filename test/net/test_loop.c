/* lib/net event loop: timers (order, cancel, periodic, at shutdown) and functions posted
 * from other threads (all run, on the loop thread, in each poster's order, even at stop). */
#include "net_test.h"

/* Runs fn on the loop thread and waits for it (tests drive the timer API through it). */
typedef struct on_loop {
    void (*fn)(net_loop_t *, void *);
    net_loop_t *loop;
    void *arg;
    atomic_bool done;
} on_loop_t;

static void on_loop_run(void *arg) {
    on_loop_t *o = arg;
    o->fn(o->loop, o->arg);
    atomic_store(&o->done, true);
}

static void run_on_loop(net_loop_t *loop, void (*fn)(net_loop_t *, void *), void *arg) {
    on_loop_t o = {fn, loop, arg, false};
    cr_assert_eq(net_loop_post(loop, on_loop_run, &o), RMQ_OK);
    WAIT_FOR(atomic_load(&o.done), 10000);
    cr_assert(atomic_load(&o.done));
}

/* ---------------------------------------------------------------- one-shot order */

typedef struct fired {
    atomic_int count;
    int order[16]; /* written on the loop thread only */
    int shutdowns;
    bool wrong_thread;
} fired_t;

typedef struct tag {
    fired_t *f;
    int id;
} tag_t;

static void record(net_loop_t *loop, rmq_err_t err, void *arg) {
    tag_t *t = arg;
    if (!net_loop_on_thread(loop)) t->f->wrong_thread = true;
    if (err == RMQ_ERR_SHUTDOWN) {
        t->f->shutdowns++;
        return;
    }
    int n = atomic_load(&t->f->count);
    if (n < 16) t->f->order[n] = t->id;
    atomic_fetch_add(&t->f->count, 1);
}

static tag_t tags[8];

static void arm_out_of_order(net_loop_t *loop, void *arg) {
    fired_t *f = arg;
    static const int64_t delays[] = {60, 20, 40, 20, 0, 40};
    for (int i = 0; i < 6; i++) {
        tags[i] = (tag_t){f, i};
        cr_assert_not_null(net_timer_start(loop, delays[i], 0, record, &tags[i]));
    }
}

Test(loop, timers_fire_by_deadline_then_arming_order) {
    net_loop_t *loop = net_loop_new(NULL, NULL);
    fired_t f = {0};
    run_on_loop(loop, arm_out_of_order, &f);
    WAIT_FOR(atomic_load(&f.count) == 6, 10000);
    cr_assert_eq(atomic_load(&f.count), 6);
    static const int want[] = {4, 1, 3, 2, 5, 0};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(f.order[i], want[i], "position %d: timer %d, want %d", i, f.order[i], want[i]);
    cr_assert_not(f.wrong_thread);
    net_loop_destroy(loop);
    cr_assert_eq(f.shutdowns, 0, "one-shot timers that fired are gone");
}

/* ---------------------------------------------------------------- cancel */

typedef struct cancel_case {
    fired_t f;
    net_timer_t *victim, *victim2;
} cancel_case_t;

static void cancel_other(net_loop_t *loop, rmq_err_t err, void *arg) {
    cancel_case_t *cc = arg;
    if (err != RMQ_OK) return;
    net_timer_cancel(cc->victim2); /* armed for later: cancelled from a callback */
    atomic_fetch_add(&cc->f.count, 1);
}

static void arm_and_cancel(net_loop_t *loop, void *arg) {
    cancel_case_t *cc = arg;
    tags[0] = (tag_t){&cc->f, 0};
    tags[1] = (tag_t){&cc->f, 1};
    cc->victim = net_timer_start(loop, 10, 0, record, &tags[0]);
    cc->victim2 = net_timer_start(loop, 80, 0, record, &tags[1]);
    net_timer_start(loop, 30, 0, cancel_other, cc);
    net_timer_cancel(cc->victim);
}

Test(loop, cancelled_timers_never_fire) {
    net_loop_t *loop = net_loop_new(NULL, NULL);
    cancel_case_t cc = {0};
    run_on_loop(loop, arm_and_cancel, &cc);
    WAIT_FOR(atomic_load(&cc.f.count) >= 1, 10000);
    usleep(250 * 1000); /* well past victim2's deadline */
    cr_assert_eq(atomic_load(&cc.f.count), 1, "only the cancelling timer fired");
    net_loop_destroy(loop);
    cr_assert_eq(cc.f.shutdowns, 0);
}

/* ---------------------------------------------------------------- periodic */

typedef struct periodic {
    atomic_int ticks;
    net_timer_t *t;
    int64_t armed_ms, last_ms;
} periodic_t;

static void tick(net_loop_t *loop, rmq_err_t err, void *arg) {
    periodic_t *p = arg;
    cr_assert_eq(err, RMQ_OK);
    int n = atomic_fetch_add(&p->ticks, 1) + 1;
    if (n == 5) {
        p->last_ms = cm_mono_ms();
        net_timer_cancel(p->t); /* a periodic timer cancelling itself */
    }
}

static void arm_periodic(net_loop_t *loop, void *arg) {
    periodic_t *p = arg;
    p->armed_ms = cm_mono_ms();
    p->t = net_timer_start(loop, 0, 10, tick, p);
}

Test(loop, periodic_timer_repeats_until_it_cancels_itself) {
    net_loop_t *loop = net_loop_new(NULL, NULL);
    periodic_t p = {0};
    run_on_loop(loop, arm_periodic, &p);
    WAIT_FOR(atomic_load(&p.ticks) >= 5, 10000);
    usleep(100 * 1000);
    cr_assert_eq(atomic_load(&p.ticks), 5);
    /* The fifth tick is due four periods of 10 ms after the first deadline (the arming):
     * never earlier. (Counted from the first tick instead, a late first tick — common under
     * valgrind — would be followed by on-time ones less than 40 ms later.) */
    cr_assert_geq(p.last_ms - p.armed_ms, 40);
    net_loop_destroy(loop);
}

/* ---------------------------------------------------------------- shutdown */

static void arm_far(net_loop_t *loop, void *arg) {
    fired_t *f = arg;
    for (int i = 0; i < 3; i++) {
        tags[i] = (tag_t){f, i};
        net_timer_start(loop, 3600 * 1000, i == 2 ? 1000 : 0, record, &tags[i]);
    }
}

Test(loop, stop_fires_armed_timers_once_with_shutdown) {
    net_loop_t *loop = net_loop_new(NULL, NULL);
    fired_t f = {0};
    run_on_loop(loop, arm_far, &f);
    net_loop_destroy(loop);
    cr_assert_eq(f.shutdowns, 3);
    cr_assert_eq(atomic_load(&f.count), 0);
    cr_assert_not(f.wrong_thread);
}

/* ---------------------------------------------------------------- posts */

#define POSTERS 4
#define POSTS_EACH 20000

typedef struct post_state {
    net_loop_t *loop;
    int count;         /* loop thread only: a data race here would show under TSan */
    int last[POSTERS]; /* per poster, the last sequence number seen */
    bool out_of_order, wrong_thread;
    atomic_int done;
} post_state_t;

typedef struct post_arg {
    post_state_t *st;
    int poster, seq;
} post_arg_t;

static void posted(void *arg) {
    post_arg_t *a = arg;
    post_state_t *st = a->st;
    if (!net_loop_on_thread(st->loop)) st->wrong_thread = true;
    if (a->seq != st->last[a->poster] + 1) st->out_of_order = true;
    st->last[a->poster] = a->seq;
    st->count++;
    atomic_fetch_add(&st->done, 1);
    free(a);
}

typedef struct poster {
    post_state_t *st;
    int id;
} poster_t;

static void *poster_main(void *arg) {
    poster_t *p = arg;
    for (int i = 1; i <= POSTS_EACH; i++) {
        post_arg_t *a = malloc(sizeof *a);
        *a = (post_arg_t){p->st, p->id, i};
        cr_assert_eq(net_loop_post(p->st->loop, posted, a), RMQ_OK);
    }
    return NULL;
}

Test(loop, posts_from_many_threads_all_run_in_order_on_the_loop) {
    post_state_t st = {0};
    st.loop = net_loop_new(NULL, NULL);
    cr_assert_not(net_loop_on_thread(st.loop));
    pthread_t th[POSTERS];
    poster_t ps[POSTERS];
    for (int i = 0; i < POSTERS; i++) {
        ps[i] = (poster_t){&st, i};
        pthread_create(&th[i], NULL, poster_main, &ps[i]);
    }
    for (int i = 0; i < POSTERS; i++)
        pthread_join(th[i], NULL);
    WAIT_FOR(atomic_load(&st.done) == POSTERS * POSTS_EACH, 30000);
    cr_assert_eq(atomic_load(&st.done), POSTERS * POSTS_EACH);
    net_loop_destroy(st.loop);
    cr_assert_eq(st.count, POSTERS * POSTS_EACH);
    cr_assert_not(st.out_of_order);
    cr_assert_not(st.wrong_thread);
}

static void count_post(void *arg) {
    atomic_fetch_add((atomic_int *)arg, 1);
}

Test(loop, stop_runs_every_accepted_post) {
    atomic_int ran = 0;
    for (int round = 0; round < 20; round++) {
        net_loop_t *loop = net_loop_new(NULL, NULL);
        for (int i = 0; i < 500; i++)
            cr_assert_eq(net_loop_post(loop, count_post, &ran), RMQ_OK);
        net_loop_destroy(loop);
        cr_assert_eq(atomic_load(&ran), (round + 1) * 500);
    }
}

/* A post from the loop thread runs on a later round, not inside its caller. */
typedef struct nested {
    atomic_int step;
    bool ran_inside;
} nested_t;

static void nested_inner(void *arg) {
    nested_t *n = arg;
    atomic_store(&n->step, 2);
}

typedef struct nested_ctx {
    net_loop_t *loop;
    nested_t n;
} nested_ctx_t;

static void nested_outer2(void *arg) {
    nested_ctx_t *ctx = arg;
    cr_assert_eq(net_loop_post(ctx->loop, nested_inner, &ctx->n), RMQ_OK);
    ctx->n.ran_inside = atomic_load(&ctx->n.step) == 2;
    atomic_store(&ctx->n.step, 1);
}

Test(loop, post_from_the_loop_thread_runs_later) {
    nested_ctx_t ctx = {0};
    ctx.loop = net_loop_new(NULL, NULL);
    cr_assert_eq(net_loop_post(ctx.loop, nested_outer2, &ctx), RMQ_OK);
    WAIT_FOR(atomic_load(&ctx.n.step) == 2, 10000);
    cr_assert_eq(atomic_load(&ctx.n.step), 2);
    cr_assert_not(ctx.n.ran_inside);
    net_loop_destroy(ctx.loop);
}

/* ---------------------------------------------------------------- round-end hook */

typedef struct rounds {
    atomic_int posted;   /* posts run so far */
    atomic_int released; /* posts the hook had seen when it last ran */
    atomic_int calls;
    atomic_bool wrong_thread;
    net_loop_t *loop;
} rounds_t;

static void count_round_post(void *arg) {
    atomic_fetch_add(&((rounds_t *)arg)->posted, 1);
}

static void round_end(void *arg) {
    rounds_t *r = arg;
    if (r->loop && !net_loop_on_thread(r->loop)) atomic_store(&r->wrong_thread, true);
    atomic_store(&r->released, atomic_load(&r->posted));
    atomic_fetch_add(&r->calls, 1);
}

/* The hook runs on the loop thread after the round that ran a post (work queued in a round
 * is released by its end), and in the stop's rounds after posts accepted late. */
Test(loop, round_end_hook_follows_every_round_and_the_stop) {
    rounds_t r = {0};
    net_opts_t o = {.on_round_end = round_end, .round_arg = &r};
    net_loop_t *loop = net_loop_new(&o, NULL);
    r.loop = loop;
    for (int i = 1; i <= 5; i++) {
        cr_assert_eq(net_loop_post(loop, count_round_post, &r), RMQ_OK);
        WAIT_FOR(atomic_load(&r.released) == i, 10000);
        cr_assert_eq(atomic_load(&r.released), i);
    }
    cr_assert_eq(net_loop_post(loop, count_round_post, &r), RMQ_OK);
    int before = atomic_load(&r.calls);
    net_loop_destroy(loop);
    cr_assert_eq(atomic_load(&r.posted), 6);
    cr_assert_eq(atomic_load(&r.released), 6);
    cr_assert_gt(atomic_load(&r.calls), before);
    cr_assert_not(atomic_load(&r.wrong_thread));
}
