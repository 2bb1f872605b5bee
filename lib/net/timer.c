/* lib/net/timer.c: the loop's timers — a binary min-heap of deadlines (request timeouts,
 * idle and connect deadlines, user timers), ordered by deadline then by arming order, and
 * the user-facing net_timer_* on top of it. Loop thread only. */
#include <assert.h>

#include "net_int.h"

void tnode_init(tnode_t *n, void (*fire)(net_loop_t *, tnode_t *, rmq_err_t)) {
    n->deadline = 0;
    n->seq = 0;
    n->idx = TNODE_IDLE;
    n->fire = fire;
}

static bool earlier(const tnode_t *a, const tnode_t *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(net_loop_t *loop, size_t i, tnode_t *n) {
    loop->heap[i] = n;
    n->idx = i;
}

static void sift_up(net_loop_t *loop, size_t i) {
    tnode_t *n = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(n, loop->heap[parent])) break;
        place(loop, i, loop->heap[parent]);
        i = parent;
    }
    place(loop, i, n);
}

static void sift_down(net_loop_t *loop, size_t i) {
    tnode_t *n = loop->heap[i];
    size_t len = loop->heap_len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= len) break;
        if (child + 1 < len && earlier(loop->heap[child + 1], loop->heap[child])) child++;
        if (!earlier(loop->heap[child], n)) break;
        place(loop, i, loop->heap[child]);
        i = child;
    }
    place(loop, i, n);
}

void tnode_disarm(net_loop_t *loop, tnode_t *n) {
    if (!tnode_armed(n)) return;
    size_t i = n->idx;
    assert(i < loop->heap_len && loop->heap[i] == n);
    tnode_t *last = loop->heap[--loop->heap_len];
    n->idx = TNODE_IDLE;
    if (last == n) return;
    place(loop, i, last);
    /* The node moved into the hole may belong above or below it. */
    if (i > 0 && earlier(last, loop->heap[(i - 1) / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

void tnode_arm(net_loop_t *loop, tnode_t *n, int64_t deadline) {
    tnode_disarm(loop, n);
    if (loop->heap_len == loop->heap_cap) {
        loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        loop->heap = cm_realloc(loop->heap, loop->heap_cap * sizeof *loop->heap);
    }
    n->deadline = deadline;
    n->seq = loop->timer_seq++;
    place(loop, loop->heap_len++, n);
    sift_up(loop, n->idx);
}

int timers_next_wait(net_loop_t *loop, int64_t now) {
    if (loop->heap_len == 0) return -1;
    int64_t wait = loop->heap[0]->deadline - now;
    if (wait <= 0) return 0;
    return wait > 60000 ? 60000 : (int)wait;
}

void timers_run_due(net_loop_t *loop, int64_t now) {
    /* Bounded by what was due on entry: a timer re-armed for "now" by its own callback
     * waits for the next round instead of spinning here. */
    uint64_t seq_limit = loop->timer_seq;
    while (loop->heap_len > 0) {
        tnode_t *n = loop->heap[0];
        if (n->deadline > now || n->seq >= seq_limit) break;
        tnode_disarm(loop, n);
        n->fire(loop, n, RMQ_OK);
    }
}

void timers_shutdown(net_loop_t *loop) {
    while (loop->heap_len > 0) {
        tnode_t *n = loop->heap[0];
        tnode_disarm(loop, n);
        n->fire(loop, n, RMQ_ERR_SHUTDOWN);
    }
}

/* ---------------------------------------------------------------- user timers */

struct net_timer {
    tnode_t node;
    net_loop_t *loop;
    int64_t period;
    net_timer_fn *fn;
    void *arg;
    bool running;   /* inside its callback */
    bool cancelled; /* cancelled from inside its callback: freed when it returns */
};

static void user_timer_fire(net_loop_t *loop, tnode_t *n, rmq_err_t err) {
    net_timer_t *t = container_of(n, net_timer_t, node);
    t->running = true;
    t->fn(loop, err, t->arg);
    t->running = false;
    if (t->cancelled || t->period <= 0 || err != RMQ_OK) {
        cm_free(t);
        return;
    }
    /* Keep the cadence, but never schedule into the past after a long stall. */
    int64_t next = t->node.deadline + t->period;
    int64_t now = cm_mono_ms();
    tnode_arm(loop, &t->node, next > now ? next : now + t->period);
}

net_timer_t *net_timer_start(net_loop_t *loop, int64_t delay_ms, int64_t period_ms,
                             net_timer_fn *fn, void *arg) {
    assert(net_loop_on_thread(loop) && fn);
    net_timer_t *t = cm_calloc(1, sizeof *t);
    tnode_init(&t->node, user_timer_fire);
    t->loop = loop;
    t->period = period_ms;
    t->fn = fn;
    t->arg = arg;
    tnode_arm(loop, &t->node, cm_mono_ms() + (delay_ms > 0 ? delay_ms : 0));
    return t;
}

void net_timer_cancel(net_timer_t *t) {
    if (!t) return;
    assert(net_loop_on_thread(t->loop));
    tnode_disarm(t->loop, &t->node);
    if (t->running)
        t->cancelled = true;
    else
        cm_free(t);
}
