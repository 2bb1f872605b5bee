/* lib/net/loop.c: the event loop — one epoll thread per loop, functions posted from other
 * threads (woken through an eventfd), and the stop sequence that closes everything and
 * fires every pending callback once before the thread exits. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net_int.h"

#define MAX_EVENTS 256
#define SCRATCH_SIZE (256 * 1024)

struct post {
    post_t *next;
    net_post_fn *fn;
    void *arg;
};

/* The loop whose thread this is, so net_loop_on_thread needs no shared state. */
static _Thread_local net_loop_t *current_loop;

void loop_ref(net_loop_t *loop) {
    atomic_fetch_add(&loop->refs, 1);
}

void loop_unref(net_loop_t *loop) {
    if (atomic_fetch_sub(&loop->refs, 1) != 1) return;
    assert(loop->post_head == NULL);
    pthread_mutex_destroy(&loop->mu);
    cm_free(loop->heap);
    cm_free(loop->scratch);
    cm_free(loop);
}

bool net_loop_on_thread(const net_loop_t *loop) {
    return current_loop == loop;
}

const cm_logger_t *net_loop_logger(const net_loop_t *loop) {
    return &loop->log;
}

bool loop_watch(net_loop_t *loop, io_t *io, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0) return true;
    cm_error(&loop->log, "net: epoll_ctl(ADD, fd %d): %s", io->fd, strerror(errno));
    return false;
}

bool loop_rewatch(net_loop_t *loop, io_t *io, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0) return true;
    cm_error(&loop->log, "net: epoll_ctl(MOD, fd %d): %s", io->fd, strerror(errno));
    return false;
}

void loop_unwatch(net_loop_t *loop, io_t *io) {
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

/* ---------------------------------------------------------------- posts */

rmq_err_t net_loop_post(net_loop_t *loop, net_post_fn *fn, void *arg) {
    post_t *p = cm_malloc(sizeof *p);
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->mu);
    if (!loop->accepting) {
        pthread_mutex_unlock(&loop->mu);
        cm_free(p);
        return RMQ_ERR_SHUTDOWN;
    }
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    pthread_mutex_unlock(&loop->mu);
    /* One eventfd write per wake-up is enough; the loop clears the flag before it reads the
     * queue, so a post racing with that still gets its own wake-up. Posts from the loop
     * thread wake it too: they run on the next round, not inside the caller. */
    if (!atomic_exchange(&loop->wake_pending, true)) {
        uint64_t one = 1;
        while (write(loop->wake.fd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    return RMQ_OK;
}

/* Runs everything posted so far (and what those functions post in turn). */
static void run_posts(net_loop_t *loop) {
    for (;;) {
        pthread_mutex_lock(&loop->mu);
        post_t *p = loop->post_head;
        loop->post_head = loop->post_tail = NULL;
        pthread_mutex_unlock(&loop->mu);
        if (!p) return;
        while (p) {
            post_t *next = p->next;
            p->fn(p->arg);
            cm_free(p);
            p = next;
        }
    }
}

static void on_wake(net_loop_t *loop) {
    uint64_t n;
    /* Read first, then clear the flag: cleared first, a poster could set it and write
     * between the two, and our read would eat that write while the flag stays set, so no
     * later post would ever write again (a lost wake-up). */
    while (read(loop->wake.fd, &n, sizeof n) < 0 && errno == EINTR) {
    }
    atomic_store(&loop->wake_pending, false);
    run_posts(loop);
}

typedef struct sync_call {
    net_post_fn *fn;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} sync_call_t;

static void sync_call_run(void *arg) {
    sync_call_t *sc = arg;
    sc->fn(sc->arg);
    pthread_mutex_lock(&sc->mu);
    sc->done = true;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

rmq_err_t loop_run_sync(net_loop_t *loop, net_post_fn *fn, void *arg) {
    if (net_loop_on_thread(loop)) {
        fn(arg);
        return RMQ_OK;
    }
    sync_call_t sc = {.fn = fn, .arg = arg, .done = false};
    pthread_mutex_init(&sc.mu, NULL);
    pthread_cond_init(&sc.cv, NULL);
    rmq_err_t err = net_loop_post(loop, sync_call_run, &sc);
    if (err == RMQ_OK) {
        pthread_mutex_lock(&sc.mu);
        while (!sc.done)
            pthread_cond_wait(&sc.cv, &sc.mu);
        pthread_mutex_unlock(&sc.mu);
    }
    pthread_cond_destroy(&sc.cv);
    pthread_mutex_destroy(&sc.mu);
    return err;
}

/* ---------------------------------------------------------------- the thread */

static void dispatch_event(net_loop_t *loop, struct epoll_event *ev) {
    io_t *io = ev->data.ptr;
    switch (io->kind) {
    case IO_WAKE:
        on_wake(loop);
        break;
    case IO_SERVER:
        server_on_events((net_server_t *)io, ev->events);
        break;
    case IO_CONN:
        conn_on_events((net_conn_t *)io, ev->events);
        break;
    }
}

void loop_reap(net_loop_t *loop) {
    while (loop->dead_conns || loop->dead_servers) {
        net_conn_t *c = loop->dead_conns;
        net_server_t *s = loop->dead_servers;
        loop->dead_conns = NULL;
        loop->dead_servers = NULL;
        while (c) {
            net_conn_t *next = c->dead_next;
            net_conn_unref(c);
            c = next;
        }
        while (s) {
            net_server_t *next = s->dead_next;
            server_free(s);
            s = next;
        }
    }
}

static void run_once(net_loop_t *loop, struct epoll_event *events) {
    conn_flush_all(loop);
    int wait = loop->again_head ? 0 : timers_next_wait(loop, cm_mono_ms());
    int n = epoll_wait(loop->epfd, events, MAX_EVENTS, wait);
    if (n < 0 && errno != EINTR) {
        /* Only EBADF/EINVAL are possible here: a broken invariant, not bad input. */
        cm_error(&loop->log, "net: epoll_wait: %s", strerror(errno));
        assert(!"epoll_wait failed");
    }
    loop->now = cm_mono_ms();
    for (int i = 0; i < n; i++)
        dispatch_event(loop, &events[i]);
    conn_read_again_all(loop);
    timers_run_due(loop, cm_mono_ms());
    loop_reap(loop);
    if (loop->on_round_end) loop->on_round_end(loop->round_arg);
}

/* Closes listeners and connections, fires timers, runs posts, and repeats until a round
 * finds nothing posted: only then are posts refused, so every accepted post runs and every
 * callback they arm is failed in turn. */
static void stop_sequence(net_loop_t *loop) {
    loop->stopping = true;
    for (;;) {
        run_posts(loop);
        while (loop->servers)
            server_close_fd(loop->servers);
        conn_flush_all(loop); /* best effort: replies already queued go out */
        while (loop->conns)
            conn_close(loop->conns, RMQ_ERR_SHUTDOWN);
        conn_flush_all(loop); /* drops the flush list's references */
        conn_read_again_all(loop);
        timers_shutdown(loop);
        loop_reap(loop);
        if (loop->on_round_end) loop->on_round_end(loop->round_arg);
        pthread_mutex_lock(&loop->mu);
        if (!loop->post_head) {
            loop->accepting = false;
            pthread_mutex_unlock(&loop->mu);
            return;
        }
        pthread_mutex_unlock(&loop->mu);
    }
}

static void *loop_main(void *arg) {
    net_loop_t *loop = arg;
    current_loop = loop;
    struct epoll_event events[MAX_EVENTS];
    while (!loop->stop)
        run_once(loop, events);
    stop_sequence(loop);
    current_loop = NULL;
    return NULL;
}

static void set_stop(void *arg) {
    ((net_loop_t *)arg)->stop = true;
}

/* ---------------------------------------------------------------- life cycle */

static void apply_opts(net_loop_t *loop, const net_opts_t *o) {
    net_opts_t none = {0};
    if (!o) o = &none;
    loop->log = o->log;
    if (!loop->log.cb && loop->log.level == 0) loop->log.level = RMQ_LOG_INFO;
    loop->max_frame = o->max_frame ? o->max_frame : PROTO_MAX_FRAME;
    loop->write_limit = o->write_limit ? o->write_limit : NET_DEFAULT_WRITE_LIMIT;
    loop->low_water = o->write_low_water ? o->write_low_water : loop->write_limit / 2;
    if (loop->low_water > loop->write_limit) loop->low_water = loop->write_limit;
    /* Pause reading half-way between the low-water mark and the limit, so replies to the
     * requests already read still fit under the limit. */
    loop->pause_at = loop->low_water + (loop->write_limit - loop->low_water) / 2;
    loop->idle_ms = o->idle_ms == 0 ? NET_DEFAULT_IDLE_MS : o->idle_ms;
    loop->transport = o->transport ? o->transport : &net_tcp_transport;
    loop->on_round_end = o->on_round_end;
    loop->round_arg = o->round_arg;
}

static rmq_err_t open_fds(net_loop_t *loop) {
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) return RMQ_ERR_IO;
    loop->wake.kind = IO_WAKE;
    loop->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake.fd < 0) return RMQ_ERR_IO;
    return loop_watch(loop, &loop->wake, EPOLLIN) ? RMQ_OK : RMQ_ERR_IO;
}

static void close_fds(net_loop_t *loop) {
    if (loop->wake.fd >= 0) close(loop->wake.fd);
    if (loop->epfd >= 0) close(loop->epfd);
    loop->wake.fd = loop->epfd = -1;
}

net_loop_t *net_loop_new(const net_opts_t *opts, rmq_err_t *err) {
    net_loop_t *loop = cm_calloc(1, sizeof *loop);
    atomic_init(&loop->refs, 1);
    atomic_init(&loop->wake_pending, false);
    apply_opts(loop, opts);
    pthread_mutex_init(&loop->mu, NULL);
    loop->accepting = true;
    loop->epfd = loop->wake.fd = -1;
    loop->scratch_cap = SCRATCH_SIZE;
    loop->scratch = cm_malloc(loop->scratch_cap);
    loop->now = cm_mono_ms();
    rmq_err_t e = open_fds(loop);
    if (e == RMQ_OK && pthread_create(&loop->thread, NULL, loop_main, loop) != 0) e = RMQ_ERR_IO;
    if (e != RMQ_OK) {
        cm_error(&loop->log, "net: cannot start an event loop: %s", strerror(errno));
        close_fds(loop);
        loop_unref(loop);
        loop = NULL;
    }
    if (err) *err = e;
    return loop;
}

void net_loop_destroy(net_loop_t *loop) {
    if (!loop) return;
    assert(!net_loop_on_thread(loop));
    /* Refused only if the loop already stopped, which only this function does. */
    rmq_err_t err = net_loop_post(loop, set_stop, loop);
    assert(err == RMQ_OK);
    (void)err;
    pthread_join(loop->thread, NULL);
    close_fds(loop);
    loop_unref(loop);
}
