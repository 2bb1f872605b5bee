/* lib/net/conn.c: one connection — readiness handling, frame reassembly (read into a big
 * buffer, decode every whole frame in it), the gathered write queue with its byte limit and
 * read pausing, idle and connect deadlines, close, and reference counting. All socket I/O
 * goes through the connection's transport (transport.h). */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_int.h"

#define READ_CHUNK (64 * 1024)     /* least free room offered to a read */
#define READS_PER_WAKE 16          /* then let the other connections have a turn */
#define KEEP_RBUF_CAP (64 * 1024)  /* a larger carry-over buffer is freed once empty */
#define KEEP_SPARE_CAP (16 * 1024) /* a larger emptied segment is not kept for reuse */
#define KEEP_SEGS 32               /* emptied segments a connection keeps for other threads */
#define MAX_IOV 64
#define HANDSHAKE_TIMEOUT_MS 10000

static void idle_fire(net_loop_t *loop, tnode_t *n, rmq_err_t err);

/* ---------------------------------------------------------------- life cycle */

net_conn_t *conn_new(net_loop_t *loop, const net_handler_t *h, bool server_side) {
    net_conn_t *c = cm_calloc(1, sizeof *c);
    c->io.kind = IO_CONN;
    c->io.fd = -1;
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, CONN_CONNECTING);
    atomic_init(&c->data, NULL);
    atomic_init(&c->next_opaque, 0);
    atomic_init(&c->queued, 0);
    loop_ref(loop);
    c->loop = loop;
    if (h) c->h = *h;
    c->server_side = server_side;
    c->tx = loop->transport;
    c->connect_timeout_ms = NET_DEFAULT_CONNECT_TIMEOUT_MS;
    tnode_init(&c->idle_timer, idle_fire);
    pthread_mutex_init(&c->inbox_mu, NULL);
    return c;
}

void seg_free(seg_t *s) {
    cm_buf_free(&s->buf);
    cm_free(s->body);
    cm_free(s);
}

static void seg_list_free(seg_t *s) {
    while (s) {
        seg_t *next = s->next;
        seg_free(s);
        s = next;
    }
}

static void conn_free(net_conn_t *c) {
    assert(atomic_load(&c->state) == CONN_CLOSED && c->io.fd < 0 && c->pend_count == 0);
    cm_buf_free(&c->rbuf);
    seg_list_free(c->out_head);
    seg_list_free(c->in_head);
    if (c->spare) seg_free(c->spare);
    seg_list_free(c->free_segs);
    for (pend_t *p = c->pend_free, *next; p; p = next) {
        next = p->next;
        cm_free(p);
    }
    cm_free(c->pend);
    pthread_mutex_destroy(&c->inbox_mu);
    net_loop_t *loop = c->loop;
    cm_free(c);
    loop_unref(loop);
}

net_conn_t *net_conn_ref(net_conn_t *c) {
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void net_conn_unref(net_conn_t *c) {
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) conn_free(c);
}

void conn_link(net_conn_t *c) {
    net_loop_t *loop = c->loop;
    c->prev = NULL;
    c->next = loop->conns;
    if (loop->conns) loop->conns->prev = c;
    loop->conns = c;
    c->linked = true;
}

static void conn_unlink(net_conn_t *c) {
    if (!c->linked) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->loop->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->linked = false;
}

/* ---------------------------------------------------------------- accessors */

bool net_conn_is_open(const net_conn_t *c) {
    return atomic_load(&c->state) != CONN_CLOSED;
}
const proto_addr_t *net_conn_peer(const net_conn_t *c) {
    return &c->peer;
}
const char *net_conn_peer_text(const net_conn_t *c) {
    return c->peer_text;
}
void net_conn_set_data(net_conn_t *c, void *data) {
    atomic_store(&c->data, data);
}
void *net_conn_data(const net_conn_t *c) {
    return atomic_load((_Atomic(void *) *)&c->data);
}
net_loop_t *net_conn_loop(const net_conn_t *c) {
    return c->loop;
}
size_t net_conn_queued(const net_conn_t *c) {
    return atomic_load((atomic_size_t *)&c->queued);
}

/* ---------------------------------------------------------------- epoll interest */

static uint32_t wanted_events(const net_conn_t *c) {
    switch (atomic_load(&c->state)) {
    case CONN_CONNECTING:
        return EPOLLOUT;
    case CONN_HANDSHAKE:
        return c->hs_events;
    case CONN_OPEN:
        return ((!c->read_paused || c->write_wants_read) ? EPOLLIN : 0) |
               ((c->write_blocked || c->read_wants_write) ? EPOLLOUT : 0);
    default:
        return 0;
    }
}

/* Brings the epoll registration in line with what c waits for. False if epoll refused
 * (c is then closed). */
static bool update_events(net_conn_t *c) {
    uint32_t want = wanted_events(c);
    if (c->watched && want == c->events) return true;
    bool ok = c->watched ? loop_rewatch(c->loop, &c->io, want) : loop_watch(c->loop, &c->io, want);
    if (!ok) {
        conn_close(c, RMQ_ERR_NETWORK);
        return false;
    }
    c->watched = true;
    c->events = want;
    return true;
}

/* Backpressure on accepted connections: a peer whose replies pile up is not read from until
 * they drain, so it cannot grow our memory by sending more requests. */
static void maybe_pause_read(net_conn_t *c) {
    if (!c->server_side || c->read_paused || atomic_load(&c->state) != CONN_OPEN) return;
    if (atomic_load(&c->queued) < c->loop->pause_at) return;
    c->read_paused = true;
    cm_debug(&c->loop->log, "net: %s: %zu bytes queued, reading paused", c->peer_text,
             atomic_load(&c->queued));
    update_events(c);
}

static void maybe_resume_read(net_conn_t *c) {
    if (!c->read_paused || atomic_load(&c->queued) > c->loop->low_water) return;
    c->read_paused = false;
    cm_debug(&c->loop->log, "net: %s: queue drained, reading resumed", c->peer_text);
    if (update_events(c) && c->rbuf.len == 0) return;
    /* Frames read before the pause may already sit whole in the carry-over buffer. */
    conn_want_again(c);
}

void conn_note_queued(net_conn_t *c) {
    maybe_pause_read(c);
}

/* ---------------------------------------------------------------- close */

static void fail_inbox(net_conn_t *c, rmq_err_t err) {
    pthread_mutex_lock(&c->inbox_mu);
    c->inbox_closed = true;
    seg_t *s = c->in_head, *spare = c->free_segs;
    c->in_head = c->in_tail = NULL;
    c->free_segs = NULL;
    c->free_segs_count = 0;
    pthread_mutex_unlock(&c->inbox_mu);
    seg_list_free(spare);
    while (s) {
        seg_t *next = s->next;
        if (s->has_req) s->req.cb(err, NULL, s->req.arg); /* never registered */
        seg_free(s);
        s = next;
    }
}

static void close_socket(net_conn_t *c) {
    if (c->io.fd < 0) return;
    if (c->watched) loop_unwatch(c->loop, &c->io);
    c->watched = false;
    c->events = 0;
    if (c->tx_state) c->tx->close(c->tx_state);
    c->tx_state = NULL;
    close(c->io.fd);
    c->io.fd = -1;
}

void conn_close(net_conn_t *c, rmq_err_t why) {
    if (atomic_exchange(&c->state, CONN_CLOSED) == CONN_CLOSED) return;
    net_loop_t *loop = c->loop;
    net_conn_ref(c); /* the callbacks below may drop every other reference */
    tnode_disarm(loop, &c->idle_timer);
    close_socket(c);
    conn_unlink(c);
    seg_list_free(c->out_head);
    c->out_head = c->out_tail = NULL;
    c->rbuf.len = 0;
    rmq_err_t perr = loop->stopping ? RMQ_ERR_SHUTDOWN : RMQ_ERR_NETWORK;
    fail_inbox(c, perr);
    atomic_store(&c->queued, 0);
    pend_fail_all(c, perr);
    /* Outgoing connections always hear of their end; accepted ones only after on_open. */
    if ((c->opened || !c->server_side) && c->h.on_close) c->h.on_close(c, why, c->h.ud);
    /* The loop's reference goes at the end of the round: an event for c may still be
     * waiting further down this epoll batch. */
    c->dead_next = loop->dead_conns;
    loop->dead_conns = c;
    net_conn_unref(c);
}

static void close_posted(void *arg) {
    net_conn_t *c = arg;
    conn_close(c, RMQ_OK);
    net_conn_unref(c);
}

void net_conn_close(net_conn_t *c) {
    if (!c || atomic_load(&c->state) == CONN_CLOSED) return;
    if (net_loop_on_thread(c->loop)) {
        conn_close(c, RMQ_OK);
        return;
    }
    net_conn_ref(c);
    /* Refused only once the loop stopped, and the stop closed c already. */
    if (net_loop_post(c->loop, close_posted, c) != RMQ_OK) net_conn_unref(c);
}

/* ---------------------------------------------------------------- open, deadlines */

static void become_open(net_conn_t *c) {
    net_loop_t *loop = c->loop;
    atomic_store(&c->state, CONN_OPEN);
    c->opened = true;
    c->last_io = loop->now;
    if (loop->idle_ms > 0)
        tnode_arm(loop, &c->idle_timer, c->last_io + loop->idle_ms);
    else
        tnode_disarm(loop, &c->idle_timer);
    if (!update_events(c)) return;
    if (c->h.on_open) c->h.on_open(c, c->h.ud);
    if (atomic_load(&c->state) == CONN_OPEN && c->out_head) conn_want_flush(c);
}

static void do_handshake(net_conn_t *c) {
    char why[128];
    switch (c->tx->handshake(c->tx_state)) {
    case NET_IO_DONE:
        become_open(c);
        return;
    case NET_IO_WANT_READ:
        c->hs_events = EPOLLIN;
        break;
    case NET_IO_WANT_WRITE:
        c->hs_events = EPOLLOUT;
        break;
    default:
        c->tx->describe(c->tx_state, why, sizeof why);
        cm_info(&c->loop->log, "net: %s: %s handshake failed: %s", c->peer_text, c->tx->name, why);
        conn_close(c, RMQ_ERR_NETWORK);
        return;
    }
    update_events(c);
}

void conn_start(net_conn_t *c, int fd) {
    net_loop_t *loop = c->loop;
    c->io.fd = fd;
    int one = 1;
    /* Requests are small and latency-bound; we batch writes ourselves. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!c->tx->open(c->tx, fd, c->server_side, &c->tx_state)) {
        cm_warn(&loop->log, "net: %s: cannot open the %s transport", c->peer_text, c->tx->name);
        conn_close(c, RMQ_ERR_NETWORK);
        return;
    }
    c->last_io = loop->now;
    if (!c->tx->handshake) {
        become_open(c);
        return;
    }
    atomic_store(&c->state, CONN_HANDSHAKE);
    /* An outgoing connection keeps its connect deadline through the handshake. */
    if (c->server_side) tnode_arm(loop, &c->idle_timer, loop->now + HANDSHAKE_TIMEOUT_MS);
    do_handshake(c);
}

static void idle_fire(net_loop_t *loop, tnode_t *n, rmq_err_t err) {
    net_conn_t *c = container_of(n, net_conn_t, idle_timer);
    if (err != RMQ_OK) return; /* the stop closes the connection itself */
    int state = atomic_load(&c->state);
    if (state == CONN_CONNECTING || state == CONN_HANDSHAKE) {
        cm_info(&loop->log, "net: %s: %s timed out", c->peer_text,
                state == CONN_CONNECTING ? "connect" : "handshake");
        conn_close(c, RMQ_ERR_TIMEOUT);
        return;
    }
    int64_t now = cm_mono_ms();
    if (now - c->last_io < loop->idle_ms) {
        /* Traffic since the timer was armed: no heap work per byte, only a re-arm here. */
        tnode_arm(loop, &c->idle_timer, c->last_io + loop->idle_ms);
        return;
    }
    cm_info(&loop->log, "net: %s: idle for %lld ms, closing", c->peer_text,
            (long long)(now - c->last_io));
    conn_close(c, RMQ_ERR_TIMEOUT);
}

/* ---------------------------------------------------------------- reading */

static void bad_input(net_conn_t *c, rmq_err_t err, const char *what) {
    cm_warn(&c->loop->log, "net: %s: %s (%s), closing the connection", c->peer_text, what,
            rmq_err_name(err));
    conn_close(c, err);
}

/* Decodes and dispatches every whole frame in buf[0..len); returns the bytes consumed, or
 * SIZE_MAX when the connection closed. *frames counts the frames dispatched. */
static size_t dispatch_frames(net_conn_t *c, const uint8_t *buf, size_t len, size_t *frames) {
    size_t off = 0, max_frame = c->loop->max_frame;
    while (len - off >= 4) {
        size_t size;
        rmq_err_t err = proto_frame_size(buf + off, len - off, max_frame, &size);
        if (err != RMQ_OK) {
            bad_input(c, err, "frame length refused");
            return SIZE_MAX;
        }
        if (size > len - off) break;
        proto_cmd_t cmd;
        err = proto_frame_decode(buf + off, size, max_frame, &cmd);
        if (err != RMQ_OK) {
            bad_input(c, err, "undecodable frame");
            return SIZE_MAX;
        }
        off += size;
        ++*frames;
        conn_dispatch(c, &cmd);
        proto_cmd_free(&cmd);
        if (atomic_load(&c->state) != CONN_OPEN) return SIZE_MAX;
        /* Paused by the replies to these frames: the rest waits in the carry-over buffer
         * (maybe_resume_read comes back for it), or one large read could queue replies far
         * past the limit and have them refused with BUSY. */
        if (c->read_paused) break;
    }
    return off;
}

/* dispatch_frames, then the handler's on_read_end when any frame was dispatched. */
static size_t consume_frames(net_conn_t *c, const uint8_t *buf, size_t len) {
    size_t frames = 0, used = dispatch_frames(c, buf, len, &frames);
    if (frames && c->h.on_read_end) c->h.on_read_end(c, c->h.ud);
    return used;
}

/* Bytes just read into the loop's scratch buffer: decode in place, carry the tail over. */
static bool consume_scratch(net_conn_t *c, const uint8_t *buf, size_t len) {
    size_t used = consume_frames(c, buf, len);
    if (used == SIZE_MAX) return false;
    if (used < len) cm_buf_append(&c->rbuf, buf + used, len - used);
    return true;
}

/* Bytes appended to the carry-over buffer: decode, then move the unfinished tail down. */
static bool consume_rbuf(net_conn_t *c) {
    size_t used = consume_frames(c, c->rbuf.data, c->rbuf.len);
    if (used == SIZE_MAX) return false;
    size_t rest = c->rbuf.len - used;
    if (rest && used) memmove(c->rbuf.data, c->rbuf.data + used, rest);
    c->rbuf.len = rest;
    if (rest == 0 && c->rbuf.cap > KEEP_RBUF_CAP) cm_buf_free(&c->rbuf);
    return true;
}

/* Room in the carry-over buffer for at least the rest of the frame it holds the start of. */
static void reserve_rbuf(net_conn_t *c) {
    size_t need = READ_CHUNK, size;
    if (proto_frame_size(c->rbuf.data, c->rbuf.len, c->loop->max_frame, &size) == RMQ_OK &&
        size > c->rbuf.len && size - c->rbuf.len > need)
        need = size - c->rbuf.len;
    cm_buf_reserve(&c->rbuf, need);
}

static bool transport_has_pending(net_conn_t *c) {
    return c->tx->has_pending && c->tx_state && c->tx->has_pending(c->tx_state);
}

/* One read and the frames it completes. False when reading should stop for now. */
static bool read_once(net_conn_t *c) {
    net_loop_t *loop = c->loop;
    bool scratch = c->rbuf.len == 0;
    uint8_t *dst;
    size_t room;
    if (scratch) {
        dst = loop->scratch;
        room = loop->scratch_cap;
    } else {
        reserve_rbuf(c);
        dst = c->rbuf.data + c->rbuf.len;
        room = c->rbuf.cap - c->rbuf.len;
    }
    ssize_t n = c->tx->read(c->tx_state, dst, room);
    if (n > 0) {
        c->last_io = loop->now;
        bool ok;
        if (scratch) {
            ok = consume_scratch(c, dst, (size_t)n);
        } else {
            c->rbuf.len += (size_t)n;
            ok = consume_rbuf(c);
        }
        /* A short read drained the socket; only a transport's own buffer may hold more. */
        return ok && ((size_t)n == room || transport_has_pending(c));
    }
    char why[128];
    switch (n) {
    case NET_IO_WANT_READ:
        return false;
    case NET_IO_WANT_WRITE:
        c->read_wants_write = true;
        update_events(c);
        return false;
    case NET_IO_EOF:
        cm_debug(&loop->log, "net: %s closed the connection", c->peer_text);
        conn_close(c, RMQ_ERR_NETWORK);
        return false;
    default:
        c->tx->describe(c->tx_state, why, sizeof why);
        cm_info(&loop->log, "net: %s: read failed: %s", c->peer_text, why);
        conn_close(c, RMQ_ERR_NETWORK);
        return false;
    }
}

static void do_read(net_conn_t *c) {
    /* Frames carried over while reading was paused come first. */
    if (c->rbuf.len && !consume_rbuf(c)) return;
    int reads = 0;
    while (atomic_load(&c->state) == CONN_OPEN && !c->read_paused && reads++ < READS_PER_WAKE) {
        if (!read_once(c)) return;
    }
    /* Budget spent: the socket stays readable for epoll, a transport's buffer does not. */
    if (atomic_load(&c->state) == CONN_OPEN && !c->read_paused && transport_has_pending(c))
        conn_want_again(c);
}

void conn_want_again(net_conn_t *c) {
    if (c->in_again) return;
    c->in_again = true;
    net_conn_ref(c);
    c->again_next = c->loop->again_head;
    c->loop->again_head = c;
}

void conn_read_again_all(net_loop_t *loop) {
    net_conn_t *c;
    while ((c = loop->again_head)) {
        loop->again_head = c->again_next;
        c->in_again = false;
        if (atomic_load(&c->state) == CONN_OPEN && !c->read_paused) do_read(c);
        net_conn_unref(c);
    }
}

/* ---------------------------------------------------------------- writing */

/* Hands emptied segments to the senders on other threads (one lock for all of them); what
 * passes KEEP_SEGS is freed. */
static void give_back(net_conn_t *c, seg_t *list) {
    pthread_mutex_lock(&c->inbox_mu);
    while (list && c->free_segs_count < KEEP_SEGS && !c->inbox_closed) {
        seg_t *s = list;
        list = s->next;
        s->next = c->free_segs;
        c->free_segs = s;
        c->free_segs_count++;
    }
    pthread_mutex_unlock(&c->inbox_mu);
    seg_list_free(list);
}

/* Drops n written bytes from the head of the queue. */
static void advance(net_conn_t *c, size_t n) {
    atomic_fetch_sub(&c->queued, n);
    seg_t *back = NULL;
    while (n > 0) {
        seg_t *s = c->out_head;
        size_t left = s->buf.len + s->body_len - s->off;
        if (n < left) {
            s->off += n;
            break;
        }
        n -= left;
        c->out_head = s->next;
        if (!c->out_head) c->out_tail = NULL;
        if (s->body || s->buf.cap > KEEP_SPARE_CAP) {
            seg_free(s);
            continue;
        }
        s->buf.len = s->off = 0;
        if (!c->spare) {
            s->next = NULL;
            c->spare = s;
        } else {
            s->next = back;
            back = s;
        }
    }
    if (back) give_back(c, back);
}

static int gather(const net_conn_t *c, struct iovec *iov, size_t *total) {
    int n = 0;
    *total = 0;
    for (const seg_t *s = c->out_head; s && n + 2 <= MAX_IOV; s = s->next) {
        if (s->off < s->buf.len)
            iov[n++] = (struct iovec){s->buf.data + s->off, s->buf.len - s->off};
        size_t body_off = s->off > s->buf.len ? s->off - s->buf.len : 0;
        if (s->body_len > body_off)
            iov[n++] = (struct iovec){s->body + body_off, s->body_len - body_off};
    }
    for (int i = 0; i < n; i++)
        *total += iov[i].iov_len;
    return n;
}

static void flush_now(net_conn_t *c) {
    if (atomic_load(&c->state) != CONN_OPEN || c->write_blocked || c->write_wants_read) return;
    net_loop_t *loop = c->loop;
    struct iovec iov[MAX_IOV];
    char why[128];
    while (c->out_head) {
        size_t total;
        int n = gather(c, iov, &total);
        ssize_t w = c->tx->writev(c->tx_state, iov, n);
        if (w > 0) {
            c->last_io = loop->now;
            advance(c, (size_t)w);
            continue; /* a short write ends with WANT_WRITE on the next call */
        }
        if (w == 0 || w == NET_IO_WANT_WRITE) {
            c->write_blocked = true;
        } else if (w == NET_IO_WANT_READ) {
            c->write_wants_read = true;
        } else {
            c->tx->describe(c->tx_state, why, sizeof why);
            cm_info(&loop->log, "net: %s: write failed: %s", c->peer_text, why);
            conn_close(c, RMQ_ERR_NETWORK);
            return;
        }
        break;
    }
    if (update_events(c)) maybe_resume_read(c);
}

void conn_want_flush(net_conn_t *c) {
    if (c->in_flush) return;
    c->in_flush = true;
    net_conn_ref(c);
    c->flush_next = c->loop->flush_head;
    c->loop->flush_head = c;
}

void conn_flush_all(net_loop_t *loop) {
    net_conn_t *c;
    while ((c = loop->flush_head)) {
        loop->flush_head = c->flush_next;
        c->in_flush = false;
        flush_now(c);
        net_conn_unref(c);
    }
}

seg_t *conn_seg_new(net_conn_t *c) {
    seg_t *s = c->spare ? c->spare : cm_calloc(1, sizeof *s);
    if (s == c->spare) c->spare = NULL;
    return s;
}

seg_t *conn_seg_take(net_conn_t *c) {
    pthread_mutex_lock(&c->inbox_mu);
    seg_t *s = c->free_segs;
    if (s) {
        c->free_segs = s->next;
        c->free_segs_count--;
    }
    pthread_mutex_unlock(&c->inbox_mu);
    if (!s) return cm_calloc(1, sizeof *s);
    s->next = NULL;
    return s;
}

void conn_enqueue(net_conn_t *c, seg_t *s) {
    if (s->has_req) {
        pend_register(c, &s->req);
        s->has_req = false;
    }
    s->next = NULL;
    if (c->out_tail)
        c->out_tail->next = s;
    else
        c->out_head = s;
    c->out_tail = s;
    conn_want_flush(c);
}

static void drain_posted(void *arg) {
    net_conn_t *c = arg;
    conn_drain_inbox(c);
    net_conn_unref(c);
}

void conn_drain_inbox(net_conn_t *c) {
    pthread_mutex_lock(&c->inbox_mu);
    seg_t *s = c->in_head;
    c->in_head = c->in_tail = NULL;
    c->inbox_posted = false;
    pthread_mutex_unlock(&c->inbox_mu);
    while (s) {
        seg_t *next = s->next;
        conn_enqueue(c, s);
        s = next;
    }
    maybe_pause_read(c);
}

rmq_err_t conn_push_inbox(net_conn_t *c, seg_t *s) {
    s->next = NULL;
    pthread_mutex_lock(&c->inbox_mu);
    if (c->inbox_closed) {
        pthread_mutex_unlock(&c->inbox_mu);
        return RMQ_ERR_NETWORK;
    }
    if (c->in_tail)
        c->in_tail->next = s;
    else
        c->in_head = s;
    c->in_tail = s;
    bool post = !c->inbox_posted;
    c->inbox_posted = true;
    pthread_mutex_unlock(&c->inbox_mu);
    if (post) {
        net_conn_ref(c);
        /* Refused only after the stop closed c, and that close failed s with the rest. */
        if (net_loop_post(c->loop, drain_posted, c) != RMQ_OK) net_conn_unref(c);
    }
    return RMQ_OK;
}

/* ---------------------------------------------------------------- readiness */

static void on_open_events(net_conn_t *c, uint32_t ev) {
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        if (c->read_wants_write) {
            c->read_wants_write = false;
            do_read(c);
        }
        if (c->write_blocked && atomic_load(&c->state) == CONN_OPEN) {
            c->write_blocked = false;
            flush_now(c);
        }
    }
    if (atomic_load(&c->state) != CONN_OPEN || !(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
    if (c->write_wants_read) {
        c->write_wants_read = false;
        flush_now(c);
    }
    if (atomic_load(&c->state) != CONN_OPEN) return;
    if (!c->read_paused)
        do_read(c);
    else if (ev & (EPOLLERR | EPOLLHUP))
        conn_close(c, RMQ_ERR_NETWORK); /* paused, but the peer is gone */
}

void conn_on_events(net_conn_t *c, uint32_t ev) {
    net_conn_ref(c);
    switch (atomic_load(&c->state)) {
    case CONN_CONNECTING:
        connect_on_events(c, ev);
        break;
    case CONN_HANDSHAKE:
        do_handshake(c);
        break;
    case CONN_OPEN:
        on_open_events(c, ev);
        break;
    default:
        break;
    }
    net_conn_unref(c);
}
