/* Shared pieces of the lib/net tests: a scripted test server, raw blocking sockets for
 * speaking bytes by hand, and waiting without asserting on timing. */
#ifndef RMQ_NET_TEST_H
#define RMQ_NET_TEST_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

/* Request codes the test server understands. */
enum {
    T_ECHO = 1000,   /* answer 0 with the same body and ext "seq" */
    T_SILENT = 1001, /* never answer */
    T_CLOSE = 1002,  /* close the connection instead of answering */
    T_HOLD = 1003,   /* keep the request in the server's slot; the test answers it */
    T_BIG = 1004,    /* answer with a body of ext "size" bytes */
};

typedef struct tsrv {
    net_loop_t *loop;
    net_server_t *srv;
    int port;
    atomic_int requests, oneways, opens, closes;
    atomic_int last_why;
    /* T_HOLD: the last held request and its connection (a reference) */
    pthread_mutex_t mu;
    proto_cmd_t held;
    net_conn_t *held_conn;
    /* the last accepted connection (a reference) */
    net_conn_t *last_conn;
} tsrv_t;

static inline void tsrv_on_request(net_conn_t *c, proto_cmd_t *req, void *ud) {
    tsrv_t *t = ud;
    atomic_fetch_add(&t->requests, 1);
    if (proto_cmd_is_oneway(req)) {
        atomic_fetch_add(&t->oneways, 1);
        return;
    }
    proto_cmd_t resp;
    switch (req->code) {
    case T_SILENT:
        return;
    case T_CLOSE:
        net_conn_close(c);
        return;
    case T_HOLD:
        pthread_mutex_lock(&t->mu);
        proto_cmd_free(&t->held);
        if (t->held_conn) net_conn_unref(t->held_conn);
        t->held = *req;
        proto_cmd_init(req);
        t->held_conn = net_conn_ref(c);
        pthread_mutex_unlock(&t->mu);
        return;
    case T_BIG: {
        int64_t size = 0;
        proto_ext_get_int(&req->ext, "size", &size);
        proto_cmd_response(&resp, req, 0, NULL);
        uint8_t *body = malloc((size_t)size);
        memset(body, 'b', (size_t)size);
        proto_cmd_set_body(&resp, body, (size_t)size);
        free(body);
        net_conn_send(c, &resp);
        return;
    }
    default:
        proto_cmd_response(&resp, req, 0, NULL);
        if (proto_ext_get(&req->ext, "seq"))
            proto_ext_set(&resp.ext, "seq", proto_ext_get(&req->ext, "seq"));
        proto_cmd_take_body(&resp, req->body, req->body_len);
        req->body = NULL;
        req->body_len = 0;
        net_conn_send(c, &resp);
    }
}

static inline void tsrv_on_open(net_conn_t *c, void *ud) {
    tsrv_t *t = ud;
    pthread_mutex_lock(&t->mu);
    if (t->last_conn) net_conn_unref(t->last_conn);
    t->last_conn = net_conn_ref(c);
    pthread_mutex_unlock(&t->mu);
    atomic_fetch_add(&t->opens, 1);
}

static inline void tsrv_on_close(net_conn_t *c, rmq_err_t why, void *ud) {
    tsrv_t *t = ud;
    atomic_store(&t->last_why, why);
    atomic_fetch_add(&t->closes, 1);
}

/* Starts a server loop with opts (NULL = defaults) on host ("127.0.0.1" when NULL). */
static inline tsrv_t *tsrv_start(const net_opts_t *opts, const char *host) {
    tsrv_t *t = calloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    proto_cmd_init(&t->held);
    rmq_err_t err;
    t->loop = net_loop_new(opts, &err);
    cr_assert_not_null(t->loop, "net_loop_new: %s", rmq_err_name(err));
    net_handler_t h = {tsrv_on_request, tsrv_on_open, tsrv_on_close, t, NULL};
    t->srv = net_listen(t->loop, host ? host : "127.0.0.1", 0, &h, &err);
    if (!t->srv) return t; /* the caller checks (IPv6 may be unavailable) */
    t->port = net_server_port(t->srv);
    cr_assert_gt(t->port, 0);
    return t;
}

static inline void tsrv_stop(tsrv_t *t) {
    if (t->srv) net_server_close(t->srv);
    net_loop_destroy(t->loop);
    proto_cmd_free(&t->held);
    if (t->held_conn) net_conn_unref(t->held_conn);
    if (t->last_conn) net_conn_unref(t->last_conn);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---------------------------------------------------------------- waiting */

/* Polls cond every ms for up to limit_ms (generous: CI has two busy cores). */
#define WAIT_FOR(cond, limit_ms)                                                                   \
    do {                                                                                           \
        int64_t wait_end_ = cm_mono_ms() + (limit_ms);                                             \
        while (!(cond) && cm_mono_ms() < wait_end_)                                                \
            usleep(1000);                                                                          \
    } while (0)

/* ---------------------------------------------------------------- client side */

typedef struct tcli {
    atomic_int opens, closes, requests;
    atomic_int last_why;
} tcli_t;

static inline void tcli_on_open(net_conn_t *c, void *ud) {
    atomic_fetch_add(&((tcli_t *)ud)->opens, 1);
}
static inline void tcli_on_close(net_conn_t *c, rmq_err_t why, void *ud) {
    tcli_t *t = ud;
    atomic_store(&t->last_why, why);
    atomic_fetch_add(&t->closes, 1);
}

static inline net_conn_t *connect_to(net_loop_t *loop, const char *host, int port, tcli_t *cli) {
    char addr[128];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    net_handler_t h = {NULL, tcli_on_open, tcli_on_close, cli, NULL};
    rmq_err_t err;
    net_conn_t *c = net_connect(loop, addr, &h, 2000, &err);
    cr_assert_not_null(c, "net_connect(%s): %s", addr, rmq_err_name(err));
    return c;
}

/* A request with a body and ext "seq". */
static inline void make_req(proto_cmd_t *cmd, int32_t code, const char *seq, const void *body,
                            size_t len) {
    proto_cmd_request(cmd, code, 0);
    if (seq) proto_ext_set(&cmd->ext, "seq", seq);
    if (len) proto_cmd_set_body(cmd, body, len);
}

/* One synchronous echo: asserts the response carries seq and the body back. */
static inline void echo_ok(net_conn_t *c, const char *seq) {
    proto_cmd_t req, resp;
    make_req(&req, T_ECHO, seq, seq, strlen(seq));
    rmq_err_t err = net_conn_request_sync(c, &req, 5000, &resp);
    cr_assert_eq(err, RMQ_OK, "echo %s: %s", seq, rmq_err_name(err));
    cr_assert(proto_cmd_is_response(&resp));
    cr_assert_str_eq(proto_ext_get(&resp.ext, "seq"), seq);
    cr_assert_eq(resp.body_len, strlen(seq));
    cr_assert_eq(memcmp(resp.body, seq, resp.body_len), 0);
    proto_cmd_free(&resp);
}

/* ---------------------------------------------------------------- raw sockets */

static inline int raw_connect(int port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

static inline void raw_write(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static inline void raw_write_cmd(int fd, proto_cmd_t *cmd) {
    cm_buf_t b = CM_BUF_INIT;
    cr_assert_eq(proto_frame_encode(cmd, &b), RMQ_OK);
    raw_write(fd, b.data, b.len);
    cm_buf_free(&b);
    proto_cmd_free(cmd);
}

/* True when the peer closed fd within limit_ms (reads and drops anything before the EOF). */
static inline bool raw_closed_by_peer(int fd, int limit_ms) {
    int64_t end = cm_mono_ms() + limit_ms;
    char buf[4096];
    while (cm_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    }
    return false;
}

/* Reads one whole frame into cmd (blocking, limit_ms). False on EOF or timeout. */
static inline bool raw_read_cmd(int fd, proto_cmd_t *cmd, int limit_ms) {
    cm_buf_t b = CM_BUF_INIT;
    int64_t end = cm_mono_ms() + limit_ms;
    size_t need = 4;
    bool sized = false;
    while (b.len < need) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(end - cm_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        cm_buf_reserve(&b, need - b.len);
        ssize_t n = recv(fd, b.data + b.len, need - b.len, 0);
        if (n <= 0) break;
        b.len += (size_t)n;
        if (!sized && b.len == 4) {
            cr_assert_eq(proto_frame_size(b.data, 4, 0, &need), RMQ_OK);
            sized = true;
        }
    }
    bool ok = sized && b.len == need && proto_frame_decode(b.data, b.len, 0, cmd) == RMQ_OK;
    cm_buf_free(&b);
    return ok;
}

#endif
