/* lib/net/net_int.h (private): the structs behind net.h's handles and the functions the
 * lib/net files share. Loop-thread-only fields are marked (L); the others say how they are
 * protected. */
#ifndef RMQ_NET_INT_H
#define RMQ_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "net/net.h"
#include "net/transport.h"

/* What an epoll event's data.ptr points at: the first member of each registered object. */
typedef enum io_kind { IO_WAKE, IO_SERVER, IO_CONN } io_kind_t;
typedef struct io {
    io_kind_t kind;
    int fd;
} io_t;

/* ---------------------------------------------------------------- timer heap (timer.c) */

/* A deadline in the loop's min-heap, embedded in whatever owns it (a request, a
 * connection, a user timer). fire is called with RMQ_OK at the deadline, or with
 * RMQ_ERR_SHUTDOWN when the loop stops with the node still armed. */
typedef struct tnode tnode_t;
struct tnode {
    int64_t deadline; /* cm_mono_ms() */
    uint64_t seq;     /* start order: equal deadlines fire first-armed first */
    size_t idx;       /* position in the heap; TNODE_IDLE when not armed */
    void (*fire)(net_loop_t *loop, tnode_t *n, rmq_err_t err);
};
#define TNODE_IDLE ((size_t)-1)

void tnode_init(tnode_t *n, void (*fire)(net_loop_t *, tnode_t *, rmq_err_t));
static inline bool tnode_armed(const tnode_t *n) {
    return n->idx != TNODE_IDLE;
}
/* Arms n at deadline (re-arms it if armed). (L) */
void tnode_arm(net_loop_t *loop, tnode_t *n, int64_t deadline);
void tnode_disarm(net_loop_t *loop, tnode_t *n); /* no-op when not armed (L) */
/* ms until the earliest deadline (0 if due), or -1 with no timer armed. (L) */
int timers_next_wait(net_loop_t *loop, int64_t now);
/* Fires every node due at now, earliest first. (L) */
void timers_run_due(net_loop_t *loop, int64_t now);
/* Pops every armed node and fires it with RMQ_ERR_SHUTDOWN until none is left. (L) */
void timers_shutdown(net_loop_t *loop);

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---------------------------------------------------------------- loop (loop.c) */

typedef struct post post_t;

struct net_loop {
    atomic_int refs; /* the net_loop_new handle + every connection and server */
    cm_logger_t log;
    size_t max_frame, write_limit, low_water, pause_at;
    int64_t idle_ms; /* <= 0: never */
    const net_transport_t *transport;
    void (*on_round_end)(void *arg);
    void *round_arg;

    int epfd;
    io_t wake; /* eventfd: posts wake the loop through it */
    pthread_t thread;
    atomic_bool wake_pending; /* an eventfd write is outstanding: later posts skip theirs */

    pthread_mutex_t mu; /* the post queue and `accepting` */
    post_t *post_head, *post_tail;
    bool accepting; /* false once the stop has run its last round: posts are refused */

    /* (L) */
    bool stop;     /* leave the run loop */
    bool stopping; /* the stop sequence has begun: pending callbacks get RMQ_ERR_SHUTDOWN */
    int64_t now;   /* cm_mono_ms() at the last wake-up */
    tnode_t **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    net_conn_t *conns;      /* every connection not yet closed (doubly linked) */
    net_server_t *servers;  /* every listener not yet closed (doubly linked) */
    net_conn_t *flush_head; /* connections with bytes to write this round (a ref each) */
    net_conn_t *again_head; /* connections whose transport holds unread bytes (a ref each) */
    /* Closed this round, released at its end: a later event in the same epoll batch may
     * still name them (the loop's reference to a connection, a closed listener). */
    net_conn_t *dead_conns;
    net_server_t *dead_servers;
    uint8_t *scratch;       /* shared read buffer: whole frames are decoded in place here */
    size_t scratch_cap;
};

void loop_ref(net_loop_t *loop);
void loop_unref(net_loop_t *loop);
/* epoll_ctl wrappers; false (logged) on failure. (L) */
bool loop_watch(net_loop_t *loop, io_t *io, uint32_t events);
bool loop_rewatch(net_loop_t *loop, io_t *io, uint32_t events);
void loop_unwatch(net_loop_t *loop, io_t *io);
/* Releases what closed this round (loop->dead_*). (L) */
void loop_reap(net_loop_t *loop);
/* Posts fn(arg) and waits until it ran; runs it inline on the loop thread. RMQ_ERR_SHUTDOWN
 * when the loop no longer takes posts (fn did not run). */
rmq_err_t loop_run_sync(net_loop_t *loop, net_post_fn *fn, void *arg);

/* ---------------------------------------------------------------- connections (conn.c) */

typedef enum conn_state {
    CONN_CONNECTING, /* connect(2) in progress */
    CONN_HANDSHAKE,  /* connected, the transport's handshake not done */
    CONN_OPEN,
    CONN_CLOSED
} conn_state_t;

/* Encoded bytes waiting to be written: a header buffer (holding small bodies too) and
 * optionally a large body written from its own memory. */
typedef struct seg seg_t;
typedef struct pend pend_t;

/* A request as its sender hands it over: what its table entry (pend_t) will hold. */
typedef struct req_info {
    int32_t opaque;
    net_resp_fn *cb;
    void *arg;
    int64_t deadline; /* cm_mono_ms() */
} req_info_t;

struct seg {
    seg_t *next;
    cm_buf_t buf;
    uint8_t *body;
    size_t body_len;
    size_t off;   /* bytes of buf then body already written */
    bool has_req; /* a request sent from another thread: registered when the loop takes it */
    req_info_t req;
};

/* A request waiting for its response. */
struct pend {
    pend_t *next; /* hash chain */
    int32_t opaque;
    net_resp_fn *cb;
    void *arg;
    int64_t deadline;
    tnode_t timer;
    net_conn_t *conn; /* borrowed: a pend never outlives its connection's table */
};

struct net_conn {
    io_t io; /* first: epoll's data.ptr */
    atomic_int refs;
    _Atomic int state; /* conn_state_t */
    net_loop_t *loop;  /* a loop reference is held until the connection is freed */
    net_handler_t h;
    bool server_side; /* accepted by a listener: its reading pauses under backpressure */
    proto_addr_t peer;
    char peer_text[64];
    _Atomic(void *) data;
    atomic_uint next_opaque;
    atomic_size_t queued; /* encoded bytes in inbox + out queue, not yet written */
    _Atomic int64_t sync_rtt_ns; /* moving average of blocking requests' round trips */

    /* the transport */
    const net_transport_t *tx;
    void *tx_state;

    /* (L) */
    uint32_t events;    /* epoll events registered */
    uint32_t hs_events; /* what the handshake waits for */
    bool watched;       /* the socket is in epoll */
    bool linked;        /* in loop->conns */
    bool read_paused;   /* backpressure */
    bool read_wants_write, write_wants_read, write_blocked;
    bool opened; /* on_open called: on_close will be */
    bool in_flush, in_again;
    net_conn_t *flush_next, *again_next, *dead_next;
    net_conn_t *prev, *next; /* loop->conns */
    cm_buf_t rbuf;           /* the unfinished frame carried over between reads */
    seg_t *out_head, *out_tail;
    seg_t *spare;  /* one emptied segment kept for reuse */
    pend_t **pend; /* opaque -> request, chained hash (power-of-two buckets) */
    size_t pend_cap, pend_count;
    pend_t *pend_free; /* finished entries kept for the next requests */
    size_t pend_free_count;
    int64_t last_io; /* cm_mono_ms() of the last byte read or written */
    int64_t connect_timeout_ms;
    tnode_t idle_timer; /* idle close; also the connect/handshake deadline */

    /* from other threads */
    pthread_mutex_t inbox_mu;
    seg_t *in_head, *in_tail;
    seg_t *free_segs; /* written segments kept for send_remote (a request per message) */
    size_t free_segs_count;
    bool inbox_closed; /* set when the connection closed: pushes fail */
    bool inbox_posted; /* a drain is posted and has not yet run */
};

/* A new connection object on loop: refs 1, state CONNECTING, no socket yet. */
net_conn_t *conn_new(net_loop_t *loop, const net_handler_t *h, bool server_side);
/* Adds c to loop->conns, so the stop closes it. (L) */
void conn_link(net_conn_t *c);
/* Adopts a connected socket (accepted, or connect finished): transport open, handshake or
 * open. (L) */
void conn_start(net_conn_t *c, int fd);
/* Closes c (idempotent): fails its requests, calls on_close(why), drops the loop's ref. (L) */
void conn_close(net_conn_t *c, rmq_err_t why);
/* epoll readiness for a connection. (L) */
void conn_on_events(net_conn_t *c, uint32_t events);
/* Writes what the flush list holds; reads what transports hold buffered. (L) */
void conn_flush_all(net_loop_t *loop);
void conn_read_again_all(net_loop_t *loop);
/* Queues seg for writing (registers its request first), schedules a flush. (L) */
void conn_enqueue(net_conn_t *c, seg_t *s);
/* Marks c for a flush before the loop next sleeps. (L) */
void conn_want_flush(net_conn_t *c);
/* Marks c to be read again this round without waiting for epoll. (L) */
void conn_want_again(net_conn_t *c);
/* Pauses reading from an accepted peer whose queue passed the pause mark. (L) */
void conn_note_queued(net_conn_t *c);
/* An empty segment: c's spare one if it has it. (L) */
seg_t *conn_seg_new(net_conn_t *c);
/* An empty segment for a send from another thread: one the loop gave back, or a new one. */
seg_t *conn_seg_take(net_conn_t *c);
/* Hands s to the loop from another thread. RMQ_ERR_NETWORK if c closed (s not taken). */
rmq_err_t conn_push_inbox(net_conn_t *c, seg_t *s);
/* Takes what other threads queued. (L) */
void conn_drain_inbox(net_conn_t *c);
void seg_free(seg_t *s);

/* ---------------------------------------------------------------- requests (send.c) */

/* Registers request r in c's table (an entry c kept, or a new one) and arms its timeout. (L) */
void pend_register(net_conn_t *c, const req_info_t *r);
/* The request waiting for opaque, removed from the table (NULL if none). (L) */
pend_t *pend_take(net_conn_t *c, int32_t opaque);
/* Calls p's callback with err (and resp), then keeps p for reuse or frees it. (L) */
void pend_finish(pend_t *p, rmq_err_t err, proto_cmd_t *resp);
/* Fails every request in c's table with err. (L) */
void pend_fail_all(net_conn_t *c, rmq_err_t err);
/* A frame in: dispatches a response to its request, a request to the handler. (L) */
void conn_dispatch(net_conn_t *c, proto_cmd_t *cmd);

/* ---------------------------------------------------------------- servers (server.c) */

struct net_server {
    io_t io;          /* first: epoll's data.ptr; fd -1 once closed */
    net_loop_t *loop; /* a loop reference is held until net_server_close */
    net_handler_t h;
    int port;
    /* (L) */
    bool listening;            /* registered with epoll, in loop->servers */
    net_server_t *prev, *next; /* loop->servers */
    net_server_t *dead_next;   /* loop->dead_servers */
    tnode_t retry;             /* accept paused after EMFILE / ENFILE */
};

void server_on_events(net_server_t *s, uint32_t events);
struct sockaddr_storage;
/* An accepted or resolved socket address as RocketMQ stores it (IPv4-mapped -> IPv4). */
void net_addr_from_sockaddr(const struct sockaddr_storage *ss, proto_addr_t *out);
void server_close_fd(net_server_t *s); /* stop accepting (L) */
void server_free(net_server_t *s);     /* after server_close_fd */

/* ---------------------------------------------------------------- connect (connect.c) */

void connect_on_events(net_conn_t *c, uint32_t events);

#endif
