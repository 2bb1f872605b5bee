/* lib/net: the transport the broker and the client share — an epoll event loop with timers,
 * listeners, outgoing connections, remoting-frame reassembly, request/response correlation
 * by opaque, oneway sends and bounded write queues. The layers above include only this
 * header; everything else in lib/net is private.
 *
 * Threads. Each net_loop_t owns one I/O thread (the "loop thread"). Every callback this
 * header names (handler callbacks, response callbacks, timer and posted functions) is called
 * on that thread, one at a time, and must not block. Functions marked "any thread" may be
 * called from anywhere, including from those callbacks; functions marked "loop thread" only
 * from the loop's own callbacks.
 *
 * Lifetimes. Connections are shared by reference count: a net_conn_t pointer handed to a
 * callback is borrowed for the duration of that call; keep it longer with net_conn_ref().
 * A closed connection stays valid memory while references remain, and every send on it
 * answers RMQ_ERR_NETWORK. net_loop_destroy() closes every listener and connection and
 * calls every pending callback exactly once (RMQ_ERR_SHUTDOWN) before it returns, so no
 * callback ever runs after it. */
#ifndef RMQ_NET_H
#define RMQ_NET_H

#include "proto/proto.h"

typedef struct net_loop net_loop_t;
typedef struct net_conn net_conn_t;
typedef struct net_server net_server_t;
typedef struct net_timer net_timer_t;
struct net_transport; /* lib/net/transport.h: plain TCP now, TLS later */

#define NET_DEFAULT_WRITE_LIMIT (64 * 1024 * 1024) /* bytes queued per connection */
#define NET_DEFAULT_IDLE_MS (120 * 1000)           /* RocketMQ's channel idle time */
#define NET_DEFAULT_CONNECT_TIMEOUT_MS 3000        /* Java's connectTimeoutMillis */

/* Loop-wide settings; zero fields take the defaults. */
typedef struct net_opts {
    cm_logger_t log;        /* where lib/net logs; {0} = stderr at INFO */
    size_t max_frame;       /* largest frame accepted, length field included; 0 = 16 MiB */
    size_t write_limit;     /* bytes queued per connection before sends fail with BUSY */
    size_t write_low_water; /* a server connection whose reading paused at write_limit
                               resumes below this; 0 = write_limit / 2 */
    int64_t idle_ms;        /* close a connection after this long without traffic in either
                               direction; 0 = 120 s, negative = never */
    /* How connections move bytes; NULL = plain TCP. The seam where TLS will plug in. */
    const struct net_transport *transport;
    /* Optional: called on the loop thread after each round of events, timers and posts
     * (and each round of the stop), before the loop may sleep, so that work handed to other
     * threads during the round can be released to them with one wake-up. */
    void (*on_round_end)(void *arg);
    void *round_arg;
} net_opts_t;

/* ================================================================ loop */

/* Creates a loop and starts its thread. opts may be NULL (all defaults). NULL with *err set
 * (RMQ_ERR_IO) when epoll, eventfd or the thread cannot be created. Any thread. */
net_loop_t *net_loop_new(const net_opts_t *opts, rmq_err_t *err);

/* Stops the loop and frees it: posted functions already queued run, every listener and
 * connection closes (on_close with RMQ_ERR_SHUTDOWN), every pending response callback and
 * timer callback is called once with RMQ_ERR_SHUTDOWN, then the thread is joined. After it
 * returns no callback of this loop runs again; net_conn_t references still held stay valid
 * (sends answer RMQ_ERR_NETWORK) until released. Any thread except the loop thread. */
void net_loop_destroy(net_loop_t *loop);

/* Runs fn(arg) on the loop thread, in posting order, as soon as it can (wakes it through an
 * eventfd). RMQ_OK: fn will run exactly once, even if the loop is being stopped (then during
 * the stop, before connections close). RMQ_ERR_SHUTDOWN: the loop is stopped or stopping
 * past that point; fn will not run. Any thread. */
typedef void(net_post_fn)(void *arg);
rmq_err_t net_loop_post(net_loop_t *loop, net_post_fn *fn, void *arg);

/* True when called on loop's thread. Any thread. */
bool net_loop_on_thread(const net_loop_t *loop);

/* The loop's logger (for callbacks that want to log where lib/net logs). Any thread. */
const cm_logger_t *net_loop_logger(const net_loop_t *loop);

/* ================================================================ timers (loop thread) */

/* fn gets RMQ_OK when the timer fires, or RMQ_ERR_SHUTDOWN once if the loop stops while the
 * timer is still armed. */
typedef void(net_timer_fn)(net_loop_t *loop, rmq_err_t err, void *arg);

/* Arms a timer that fires after delay_ms (>= 0), then every period_ms if period_ms > 0.
 * Timers with the same deadline fire in the order they were started. The handle belongs to
 * the loop: a one-shot timer's handle is gone once its callback returns; a periodic one
 * lives until cancelled (a callback may cancel its own timer). Loop thread. */
net_timer_t *net_timer_start(net_loop_t *loop, int64_t delay_ms, int64_t period_ms,
                             net_timer_fn *fn, void *arg);
/* Disarms and frees t; its callback is not called again. Loop thread. */
void net_timer_cancel(net_timer_t *t);

/* ================================================================ handlers */

/* What a listener or an outgoing connection does with the peer's traffic. Every member is
 * optional. All are called on the loop thread.
 *
 * on_request: an incoming request (neither the response flag set nor an unknown opaque
 *   involved), decoded. req belongs to lib/net: keep its contents by moving them out
 *   (struct copy, then proto_cmd_init(req)); whatever is left is freed after the call.
 *   Answer with net_conn_send() (a response built with proto_cmd_response), inline or later
 *   from any thread. Oneway requests must not be answered. With no on_request, requests
 *   get REQUEST_CODE_NOT_SUPPORTED (oneway ones are dropped), as Java answers.
 * on_open: the connection is established (accepted, or connected and handshaken).
 * on_close: the connection closed; why is RMQ_ERR_NETWORK (peer closed, I/O error, connect
 *   refused), RMQ_ERR_TIMEOUT (connect timeout or idle), RMQ_ERR_FRAME_TOO_LARGE /
 *   RMQ_ERR_MALFORMED / other decode errors (bad input from the peer), RMQ_OK (closed by
 *   net_conn_close) or RMQ_ERR_SHUTDOWN (loop stopping). Called once per connection that
 *   net_connect() returned or whose on_open was called, after its pending requests were
 *   failed. */
typedef struct net_handler {
    void (*on_request)(net_conn_t *conn, proto_cmd_t *req, void *ud);
    void (*on_open)(net_conn_t *conn, void *ud);
    void (*on_close)(net_conn_t *conn, rmq_err_t why, void *ud);
    void *ud;
    /* Optional: after on_request ran for every whole frame of one read (loop thread), so a
     * handler can act on the requests that arrived together at once (the broker stores a
     * read's sends with one write). Called even when the connection closed meanwhile. */
    void (*on_read_end)(net_conn_t *conn, void *ud);
} net_handler_t;

/* ================================================================ listeners */

/* Binds host ("127.0.0.1", "::1", "0.0.0.0", "::"; NULL = all IPv4) and port (0 = a free
 * port) and starts accepting on loop. Each accepted connection uses handler h (copied).
 * NULL with *err: RMQ_ERR_INVALID_ARG (bad host), RMQ_ERR_NETWORK (bind/listen failed, e.g.
 * port in use; logged with the reason), RMQ_ERR_SHUTDOWN. Any thread. */
net_server_t *net_listen(net_loop_t *loop, const char *host, int port, const net_handler_t *h,
                         rmq_err_t *err);
/* The port actually bound. Any thread. */
int net_server_port(const net_server_t *s);
/* Stops accepting and frees s; connections already accepted stay open. When it returns on
 * or off the loop thread, no further accept happens. Any thread. */
void net_server_close(net_server_t *s);

/* ================================================================ connections */

/* Starts connecting to addr ("1.2.3.4:port", "[::1]:port"; a host name is resolved on the
 * calling thread, which blocks). Returns at once with a reference the caller owns (release
 * it with net_conn_unref); requests sent before the connection is up wait in its queue.
 * h->on_open runs when it is up, h->on_close when it fails or later closes. timeout_ms <= 0
 * means NET_DEFAULT_CONNECT_TIMEOUT_MS. NULL with *err: RMQ_ERR_INVALID_ARG (address does
 * not parse), RMQ_ERR_NETWORK (does not resolve), RMQ_ERR_SHUTDOWN. Any thread. */
net_conn_t *net_connect(net_loop_t *loop, const char *addr, const net_handler_t *h,
                        int64_t timeout_ms, rmq_err_t *err);

/* Reference counting. Any thread. */
net_conn_t *net_conn_ref(net_conn_t *c);
void net_conn_unref(net_conn_t *c);

/* Closes the connection (on_close gets RMQ_OK; pending requests RMQ_ERR_NETWORK). Queued
 * bytes not yet written are dropped. Idempotent. Any thread: off the loop thread the close
 * happens shortly after the call. */
void net_conn_close(net_conn_t *c);

/* True until the connection closed (or failed to connect). Any thread. */
bool net_conn_is_open(const net_conn_t *c);
/* The peer's address as RocketMQ stores it, and as text ("ip:port", "[v6]:port"). For an
 * outgoing connection, the address connected to. Fixed for the connection's life. Any
 * thread. */
const proto_addr_t *net_conn_peer(const net_conn_t *c);
const char *net_conn_peer_text(const net_conn_t *c);
/* A pointer the user hangs on the connection (the broker's client channel). Any thread. */
void net_conn_set_data(net_conn_t *c, void *data);
void *net_conn_data(const net_conn_t *c);
/* The loop the connection lives on. Any thread. */
net_loop_t *net_conn_loop(const net_conn_t *c);
/* Bytes queued for writing and not yet written. Any thread (a snapshot). */
size_t net_conn_queued(const net_conn_t *c);

/* ================================================================ sending (any thread)
 *
 * Every send takes cmd's contents: they are freed (or moved) whatever the result, and cmd
 * is left initialized-empty. Frames are encoded on the calling thread. Errors returned:
 * RMQ_ERR_NETWORK (connection closed), RMQ_ERR_BUSY (the connection's write queue is over
 * write_limit: the peer is not reading), RMQ_ERR_SHUTDOWN (loop stopping), or the encoder's
 * error (RMQ_ERR_FRAME_TOO_LARGE, ...). */

/* Sends cmd exactly as built: a response (flag RESPONSE, the request's opaque) or a
 * request whose opaque the caller chose. */
rmq_err_t net_conn_send(net_conn_t *c, proto_cmd_t *cmd);

/* Sends cmd as a oneway request: sets flag ONEWAY, assigns the opaque. No answer. */
rmq_err_t net_conn_oneway(net_conn_t *c, proto_cmd_t *cmd);

/* Response callback: exactly one call per accepted request, on the loop thread.
 * err RMQ_OK with the response (resp belongs to lib/net; move its contents out to keep
 * them), or with resp NULL: RMQ_ERR_TIMEOUT (no response within timeout_ms),
 * RMQ_ERR_NETWORK (the connection closed first), RMQ_ERR_SHUTDOWN (the loop stopped).
 * A response arriving after the timeout is dropped (debug log). */
typedef void(net_resp_fn)(rmq_err_t err, proto_cmd_t *resp, void *arg);

/* Sends cmd as a request: assigns the opaque (a per-connection counter), clears the
 * response and oneway flags, and arranges for cb(.., arg) to be called exactly once. If it
 * returns an error, cb is never called. timeout_ms > 0. Any thread. */
rmq_err_t net_conn_request(net_conn_t *c, proto_cmd_t *cmd, int64_t timeout_ms, net_resp_fn *cb,
                           void *arg);

/* net_conn_request with a lent body: cmd has none of its own, and body[0..body_len) is read
 * (copied into the write queue) before this returns, so the caller keeps it, for a retry
 * say, and a send costs no copy of it into cmd first. */
rmq_err_t net_conn_request_lent(net_conn_t *c, proto_cmd_t *cmd, const void *body, size_t body_len,
                                int64_t timeout_ms, net_resp_fn *cb, void *arg);

/* Blocking form for threads other than the loop's: sends cmd and waits for the outcome.
 * RMQ_OK fills *resp (the caller frees it with proto_cmd_free); otherwise the error as the
 * callback would have seen it, or RMQ_ERR_STATE when called on the loop thread (it would
 * wait for itself). */
rmq_err_t net_conn_request_sync(net_conn_t *c, proto_cmd_t *cmd, int64_t timeout_ms,
                                proto_cmd_t *resp);
/* The blocking form with a lent body, as net_conn_request_lent. */
rmq_err_t net_conn_request_sync_lent(net_conn_t *c, proto_cmd_t *cmd, const void *body,
                                     size_t body_len, int64_t timeout_ms, proto_cmd_t *resp);

#endif
