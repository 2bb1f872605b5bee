/* lib/net/send.c: sending — frames encoded on the caller's thread, queued under the byte
 * limit — and request/response correlation: opaques from a per-connection counter, a
 * table of pending requests with timeouts, and the blocking request form. */
#include <assert.h>
#include <stdio.h>
#include <unistd.h>

#include "net_int.h"

/* Bodies at least this large are written from their own memory, not copied. */
#define ZERO_COPY_BODY (32 * 1024)
/* A loop-thread send appends to the last queued segment while it is smaller than this. */
#define APPEND_LIMIT (64 * 1024)
/* Bytes a JSON header with a few ext fields usually takes. */
#define HEADER_GUESS 512
/* Finished table entries a connection keeps for its next requests. */
#define KEEP_PENDS 64

/* ---------------------------------------------------------------- pending table */

static size_t bucket_of(const net_conn_t *c, int32_t opaque) {
    return (uint32_t)opaque & (c->pend_cap - 1);
}

static void pend_grow(net_conn_t *c) {
    size_t old_cap = c->pend_cap;
    pend_t **old = c->pend;
    c->pend_cap = old_cap ? old_cap * 2 : 64;
    c->pend = cm_calloc(c->pend_cap, sizeof *c->pend);
    for (size_t i = 0; i < old_cap; i++) {
        for (pend_t *p = old[i], *next; p; p = next) {
            next = p->next;
            size_t b = bucket_of(c, p->opaque);
            p->next = c->pend[b];
            c->pend[b] = p;
        }
    }
    cm_free(old);
}

static void pend_timer_fire(net_loop_t *loop, tnode_t *n, rmq_err_t err) {
    pend_t *p = container_of(n, pend_t, timer);
    pend_t *taken = pend_take(p->conn, p->opaque);
    assert(taken == p);
    (void)taken;
    if (err == RMQ_OK) {
        cm_debug(&loop->log, "net: %s: request opaque %d timed out", p->conn->peer_text, p->opaque);
        err = RMQ_ERR_TIMEOUT;
    }
    pend_finish(p, err, NULL);
}

void pend_register(net_conn_t *c, const req_info_t *r) {
    pend_t *p = c->pend_free;
    if (p) {
        c->pend_free = p->next;
        c->pend_free_count--;
    } else {
        p = cm_malloc(sizeof *p);
    }
    p->opaque = r->opaque;
    p->cb = r->cb;
    p->arg = r->arg;
    p->deadline = r->deadline;
    tnode_init(&p->timer, pend_timer_fire);
    if (c->pend_count >= c->pend_cap) pend_grow(c);
    p->conn = c;
    size_t b = bucket_of(c, p->opaque);
    p->next = c->pend[b];
    c->pend[b] = p;
    c->pend_count++;
    tnode_arm(c->loop, &p->timer, p->deadline);
}

pend_t *pend_take(net_conn_t *c, int32_t opaque) {
    if (c->pend_count == 0) return NULL;
    for (pend_t **pp = &c->pend[bucket_of(c, opaque)]; *pp; pp = &(*pp)->next) {
        pend_t *p = *pp;
        if (p->opaque != opaque) continue;
        *pp = p->next;
        c->pend_count--;
        return p;
    }
    return NULL;
}

void pend_finish(pend_t *p, rmq_err_t err, proto_cmd_t *resp) {
    /* Registered entries only: the connection outlives its table (its memory stays until
     * the loop's end-of-round release even when the callback closes it). */
    net_conn_t *c = p->conn;
    tnode_disarm(c->loop, &p->timer);
    p->cb(err, resp, p->arg);
    if (c->pend_free_count < KEEP_PENDS) {
        p->next = c->pend_free;
        c->pend_free = p;
        c->pend_free_count++;
    } else {
        cm_free(p);
    }
}

void pend_fail_all(net_conn_t *c, rmq_err_t err) {
    /* Unhook them all first: a callback may look at the connection. */
    pend_t *all = NULL;
    for (size_t i = 0; i < c->pend_cap; i++) {
        while (c->pend[i]) {
            pend_t *p = c->pend[i];
            c->pend[i] = p->next;
            p->next = all;
            all = p;
        }
    }
    c->pend_count = 0;
    while (all) {
        pend_t *next = all->next;
        pend_finish(all, err, NULL);
        all = next;
    }
}

/* ---------------------------------------------------------------- incoming frames */

void conn_dispatch(net_conn_t *c, proto_cmd_t *cmd) {
    if (proto_cmd_is_response(cmd)) {
        pend_t *p = pend_take(c, cmd->opaque);
        if (!p) {
            cm_debug(&c->loop->log, "net: %s: response code %d with unknown opaque %d dropped",
                     c->peer_text, cmd->code, cmd->opaque);
            return;
        }
        pend_finish(p, RMQ_OK, cmd);
        return;
    }
    if (c->h.on_request) {
        c->h.on_request(c, cmd, c->h.ud);
        return;
    }
    if (proto_cmd_is_oneway(cmd)) return;
    /* What Java's NettyRemotingAbstract answers for a code nobody registered. */
    char remark[64];
    snprintf(remark, sizeof remark, " request type %d not supported", cmd->code);
    proto_cmd_t resp;
    proto_cmd_response(&resp, cmd, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, remark);
    net_conn_send(c, &resp);
}

/* ---------------------------------------------------------------- encoding and queueing */

/* A frame to send: the command, and a body the caller lends (read before the send returns)
 * in place of the command's own. */
typedef struct out_frame {
    proto_cmd_t *cmd;
    const void *lent;
    size_t lent_len;
} out_frame_t;

/* Appends the frame's bytes to out. A large body is not copied: it moves to *body (a lent
 * one is copied there), and the length field counts it (the frame is the header bytes
 * followed by the body, remoting.md §1). */
static rmq_err_t encode(const net_loop_t *loop, const out_frame_t *f, cm_buf_t *out, uint8_t **body,
                        size_t *body_len) {
    proto_cmd_t *cmd = f->cmd;
    *body = NULL;
    *body_len = 0;
    size_t start = out->len;
    bool lend = f->lent_len && f->lent_len < ZERO_COPY_BODY;
    if (f->lent_len >= ZERO_COPY_BODY) {
        *body = cm_malloc(f->lent_len);
        memcpy(*body, f->lent, f->lent_len);
        *body_len = f->lent_len;
    } else if (lend) {
        cmd->body = (uint8_t *)f->lent; /* copied by the encoder, taken back right after */
        cmd->body_len = f->lent_len;
    } else if (cmd->body_len >= ZERO_COPY_BODY) {
        *body = cmd->body;
        *body_len = cmd->body_len;
        cmd->body = NULL;
        cmd->body_len = 0;
    }
    rmq_err_t err = proto_frame_encode(cmd, out);
    if (lend) {
        cmd->body = NULL;
        cmd->body_len = 0;
    }
    if (err != RMQ_OK) return err;
    uint64_t frame = (uint64_t)(out->len - start) + *body_len;
    if (frame > loop->max_frame || frame - 4 > INT32_MAX) {
        out->len = start;
        return RMQ_ERR_FRAME_TOO_LARGE;
    }
    if (*body_len) cm_wr32(out->data + start, (uint32_t)(frame - 4));
    return RMQ_OK;
}

/* Counts n more queued bytes unless that passes the connection's limit. */
static bool reserve(net_conn_t *c, size_t n) {
    size_t before = atomic_fetch_add(&c->queued, n);
    if (before + n <= c->loop->write_limit) return true;
    atomic_fetch_sub(&c->queued, n);
    return false;
}

/* Loop thread: encode straight into the write queue, appending to its last segment when
 * that is small, so a burst of replies costs no allocation and leaves in one write. */
static rmq_err_t send_local(net_conn_t *c, const out_frame_t *f, const req_info_t *req) {
    seg_t *tail = c->out_tail;
    bool append = tail && !tail->body && tail->buf.len < APPEND_LIMIT;
    seg_t *s = append ? tail : conn_seg_new(c);
    size_t start = s->buf.len;
    uint8_t *body;
    size_t body_len;
    rmq_err_t err = encode(c->loop, f, &s->buf, &body, &body_len);
    if (err == RMQ_OK && !reserve(c, s->buf.len - start + body_len)) err = RMQ_ERR_BUSY;
    if (err != RMQ_OK) {
        s->buf.len = start;
        cm_free(body);
        if (!append) seg_free(s);
        if (err == RMQ_ERR_BUSY) conn_note_queued(c);
        return err;
    }
    s->body = body;
    s->body_len = body_len;
    if (req) pend_register(c, req);
    if (append)
        conn_want_flush(c);
    else
        conn_enqueue(c, s);
    conn_note_queued(c);
    return RMQ_OK;
}

/* Another thread: encode here (spreading the work over the callers), hand over the bytes. */
static rmq_err_t send_remote(net_conn_t *c, const out_frame_t *f, const req_info_t *req) {
    seg_t *s = conn_seg_take(c);
    /* Room for a typical header and a copied body at once, instead of growing by doubling
     * from 64 bytes (three reallocs for a small request). */
    size_t body_len = f->lent_len ? f->lent_len : f->cmd->body_len;
    cm_buf_reserve(&s->buf, HEADER_GUESS + (body_len < ZERO_COPY_BODY ? body_len : 0));
    rmq_err_t err = encode(c->loop, f, &s->buf, &s->body, &s->body_len);
    size_t n = s->buf.len + s->body_len;
    if (err == RMQ_OK && !reserve(c, n)) err = RMQ_ERR_BUSY;
    if (err == RMQ_OK) {
        s->has_req = req != NULL;
        if (req) s->req = *req;
        err = conn_push_inbox(c, s);
        if (err != RMQ_OK) atomic_fetch_sub(&c->queued, n);
    }
    if (err != RMQ_OK) seg_free(s); /* its request was never handed over: no callback */
    return err;
}

static rmq_err_t send_frame(net_conn_t *c, const out_frame_t *f, const req_info_t *req) {
    rmq_err_t err;
    if (atomic_load(&c->state) == CONN_CLOSED)
        err = RMQ_ERR_NETWORK;
    else if (net_loop_on_thread(c->loop))
        err = send_local(c, f, req);
    else
        err = send_remote(c, f, req);
    proto_cmd_free(f->cmd);
    return err;
}

static rmq_err_t send_cmd(net_conn_t *c, proto_cmd_t *cmd) {
    out_frame_t f = {.cmd = cmd};
    return send_frame(c, &f, NULL);
}

static int32_t next_opaque(net_conn_t *c) {
    return (int32_t)atomic_fetch_add(&c->next_opaque, 1u);
}

rmq_err_t net_conn_send(net_conn_t *c, proto_cmd_t *cmd) {
    if (!c || !cmd) {
        if (cmd) proto_cmd_free(cmd);
        return RMQ_ERR_INVALID_ARG;
    }
    return send_cmd(c, cmd);
}

rmq_err_t net_conn_oneway(net_conn_t *c, proto_cmd_t *cmd) {
    if (!c || !cmd) return net_conn_send(NULL, cmd);
    cmd->flag = (cmd->flag & ~PROTO_FLAG_RESPONSE) | PROTO_FLAG_ONEWAY;
    cmd->opaque = next_opaque(c);
    return send_cmd(c, cmd);
}

rmq_err_t net_conn_request_lent(net_conn_t *c, proto_cmd_t *cmd, const void *body, size_t body_len,
                                int64_t timeout_ms, net_resp_fn *cb, void *arg) {
    if (!c || !cmd || !cb || timeout_ms <= 0 || (body_len && (!body || cmd->body_len)))
        return net_conn_send(NULL, cmd);
    cmd->flag &= ~(PROTO_FLAG_RESPONSE | PROTO_FLAG_ONEWAY);
    cmd->opaque = next_opaque(c);
    /* The deadline counts from now, including any time spent waiting for the loop. */
    req_info_t req = {
        .opaque = cmd->opaque, .cb = cb, .arg = arg, .deadline = cm_mono_ms() + timeout_ms};
    out_frame_t f = {.cmd = cmd, .lent = body, .lent_len = body_len};
    return send_frame(c, &f, &req);
}

rmq_err_t net_conn_request(net_conn_t *c, proto_cmd_t *cmd, int64_t timeout_ms, net_resp_fn *cb,
                           void *arg) {
    return net_conn_request_lent(c, cmd, NULL, 0, timeout_ms, cb, arg);
}

/* ---------------------------------------------------------------- blocking form */

/* A blocking request whose answer is due within a few wake-ups waits for it spinning
 * before it sleeps: on a virtual machine a sleeping thread woken from another CPU costs
 * tens of microseconds, as much as the whole round trip to a broker on the same host.
 * Only while the connection's recent round trips are that short (a broker across a
 * network stops qualifying after its first few requests, which find no history yet), at
 * most SPIN_NS per request, and by one thread per spare CPU at a time, so that waiting never
 * takes a CPU the threads that answer need. The spinner count is process-wide on purpose:
 * the CPUs it protects are shared by every loop of the process. */
#define SPIN_NS 200000
static atomic_int spinners;

static int spinners_max(void) {
    static atomic_int max;
    int m = atomic_load_explicit(&max, memory_order_relaxed);
    if (m == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        m = cpus > 1 ? (int)(cpus / 2) : -1; /* one CPU: never spin */
        atomic_store_explicit(&max, m, memory_order_relaxed);
    }
    return m;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins until *done, for at most SPIN_NS after start_ns, when spinning is worth it. */
static void spin_for(net_conn_t *c, atomic_bool *done, int64_t start_ns) {
    if (atomic_load_explicit(&c->sync_rtt_ns, memory_order_relaxed) >= SPIN_NS) return;
    if (atomic_fetch_add(&spinners, 1) >= spinners_max()) {
        atomic_fetch_sub(&spinners, 1);
        return;
    }
    int64_t until = start_ns + SPIN_NS;
    while (!atomic_load_explicit(done, memory_order_acquire)) {
        for (int i = 0; i < 64 && !atomic_load_explicit(done, memory_order_acquire); i++)
            cpu_relax();
        if (cm_mono_ns() >= until) break;
    }
    atomic_fetch_sub(&spinners, 1);
}

/* An average over the last eight or so round trips. */
static void note_rtt(net_conn_t *c, int64_t rtt_ns) {
    int64_t avg = atomic_load_explicit(&c->sync_rtt_ns, memory_order_relaxed);
    atomic_store_explicit(&c->sync_rtt_ns, avg + (rtt_ns - avg) / 8, memory_order_relaxed);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool done;
    rmq_err_t err;
    proto_cmd_t resp;
} sync_wait_t;

static void sync_done(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    sync_wait_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    if (resp) {
        w->resp = *resp;
        proto_cmd_init(resp);
    }
    atomic_store_explicit(&w->done, true, memory_order_release);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

rmq_err_t net_conn_request_sync_lent(net_conn_t *c, proto_cmd_t *cmd, const void *body,
                                     size_t body_len, int64_t timeout_ms, proto_cmd_t *resp) {
    if (c && net_loop_on_thread(c->loop)) {
        proto_cmd_free(cmd);
        return RMQ_ERR_STATE;
    }
    if (!resp) return net_conn_send(NULL, cmd);
    proto_cmd_init(resp);
    sync_wait_t w = {.err = RMQ_OK};
    atomic_init(&w.done, false);
    proto_cmd_init(&w.resp);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int64_t start_ns = cm_mono_ns();
    rmq_err_t err = net_conn_request_lent(c, cmd, body, body_len, timeout_ms, sync_done, &w);
    if (err == RMQ_OK) {
        spin_for(c, &w.done, start_ns);
        /* The callback comes exactly once: on the response, the timeout, the close or the
         * loop's stop, so this wait always ends. The mutex also orders the callback's last
         * touch of w before w goes away. */
        pthread_mutex_lock(&w.mu);
        while (!atomic_load_explicit(&w.done, memory_order_relaxed))
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        err = w.err;
        *resp = w.resp;
        if (err == RMQ_OK) note_rtt(c, cm_mono_ns() - start_ns);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return err;
}

rmq_err_t net_conn_request_sync(net_conn_t *c, proto_cmd_t *cmd, int64_t timeout_ms,
                                proto_cmd_t *resp) {
    return net_conn_request_sync_lent(c, cmd, NULL, 0, timeout_ms, resp);
}
