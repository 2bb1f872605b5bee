/* lib/net over loopback (127.0.0.1 only): an echo server, requests from many threads matched
 * by opaque, timeouts, closes mid-request, oneway, bad input, backpressure, idle close, and
 * the stop with requests in flight. Every callback counts its calls, so "exactly once" is
 * checked, not assumed. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

enum {
    CODE_ECHO = 1,    /* answered inline with code 0 and the request's body */
    CODE_SILENT = 2,  /* never answered */
    CODE_CLOSE = 3,   /* the server closes the connection */
    CODE_ONEWAY = 4,  /* counted, never answered */
    CODE_LATE = 5,    /* answered 300 ms later from a server timer */
    CODE_REVERSE = 6, /* held until REVERSE_N arrived, then answered last-first */
    CODE_THREAD = 7,  /* answered from another thread */
};
#define REVERSE_N 8

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool wait_int(atomic_int *v, int want, int64_t ms) {
    int64_t end = cm_mono_ms() + ms;
    while (atomic_load(v) < want) {
        if (cm_mono_ms() > end) return false;
        sleep_ms(2);
    }
    return true;
}

/* ---------------------------------------------------------------- the test server */

typedef struct srv {
    net_loop_t *loop;
    net_server_t *server;
    char addr[64];
    atomic_int opens, closes, requests, oneways, silent, busy;
    _Atomic int last_why;
    net_conn_t *last_conn; /* a reference to the last accepted connection */
    proto_cmd_t held[REVERSE_N];
    int n_held;
    net_conn_t *held_conn;
} srv_t;

typedef struct late {
    net_conn_t *conn;
    proto_cmd_t resp;
} late_t;

static void late_fire(net_loop_t *loop, rmq_err_t err, void *arg) {
    late_t *l = arg;
    if (err == RMQ_OK)
        net_conn_send(l->conn, &l->resp);
    else
        proto_cmd_free(&l->resp);
    net_conn_unref(l->conn);
    free(l);
}

static void *thread_reply(void *arg) {
    late_t *l = arg;
    sleep_ms(5);
    cr_assert_eq(net_conn_send(l->conn, &l->resp), RMQ_OK);
    net_conn_unref(l->conn);
    free(l);
    return NULL;
}

static void echo_into(proto_cmd_t *resp, proto_cmd_t *req) {
    proto_cmd_response(resp, req, 0, "echo");
    proto_cmd_take_body(resp, req->body, req->body_len); /* moved: lib/net frees the rest */
    req->body = NULL;
    req->body_len = 0;
}

static void answer_reversed(srv_t *s, net_conn_t *conn) {
    for (int i = s->n_held - 1; i >= 0; i--) {
        proto_cmd_t resp;
        echo_into(&resp, &s->held[i]);
        proto_cmd_free(&s->held[i]);
        cr_assert_eq(net_conn_send(conn, &resp), RMQ_OK);
    }
    s->n_held = 0;
}

static void srv_request(net_conn_t *conn, proto_cmd_t *req, void *ud) {
    srv_t *s = ud;
    cr_assert(net_loop_on_thread(s->loop));
    cr_assert_not(proto_cmd_is_response(req));
    atomic_fetch_add(&s->requests, 1);
    proto_cmd_t resp;
    switch (req->code) {
    case CODE_ECHO:
        echo_into(&resp, req);
        if (net_conn_send(conn, &resp) != RMQ_OK) atomic_fetch_add(&s->busy, 1);
        break;
    case CODE_SILENT:
        atomic_fetch_add(&s->silent, 1);
        break;
    case CODE_CLOSE:
        net_conn_close(conn);
        break;
    case CODE_ONEWAY:
        cr_assert(proto_cmd_is_oneway(req));
        atomic_fetch_add(&s->oneways, 1);
        break;
    case CODE_LATE: {
        late_t *l = malloc(sizeof *l);
        l->conn = net_conn_ref(conn);
        echo_into(&l->resp, req);
        net_timer_start(s->loop, 300, 0, late_fire, l);
        break;
    }
    case CODE_REVERSE:
        s->held[s->n_held] = *req;
        proto_cmd_init(req);
        if (++s->n_held == REVERSE_N) answer_reversed(s, conn);
        break;
    case CODE_THREAD: {
        late_t *l = malloc(sizeof *l);
        l->conn = net_conn_ref(conn);
        echo_into(&l->resp, req);
        pthread_t th;
        pthread_create(&th, NULL, thread_reply, l);
        pthread_detach(th);
        break;
    }
    default:
        cr_assert_fail("unexpected code %d", req->code);
    }
}

static void srv_open(net_conn_t *conn, void *ud) {
    srv_t *s = ud;
    if (s->last_conn) net_conn_unref(s->last_conn);
    s->last_conn = net_conn_ref(conn);
    atomic_fetch_add(&s->opens, 1);
}

static void srv_close(net_conn_t *conn, rmq_err_t why, void *ud) {
    srv_t *s = ud;
    atomic_store(&s->last_why, why);
    atomic_fetch_add(&s->closes, 1);
}

static void srv_start(srv_t *s, const net_opts_t *opts, bool with_requests) {
    memset(s, 0, sizeof *s);
    rmq_err_t err;
    s->loop = net_loop_new(opts, &err);
    cr_assert_not_null(s->loop);
    net_handler_t h = {with_requests ? srv_request : NULL, srv_open, srv_close, s, NULL};
    s->server = net_listen(s->loop, "127.0.0.1", 0, &h, &err);
    cr_assert_not_null(s->server, "listen: %s", rmq_err_name(err));
    cr_assert_gt(net_server_port(s->server), 0);
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", net_server_port(s->server));
}

static void drop_last_conn(void *arg) {
    srv_t *s = arg;
    if (s->last_conn) net_conn_unref(s->last_conn);
    s->last_conn = NULL;
    for (int i = 0; i < s->n_held; i++)
        proto_cmd_free(&s->held[i]);
    s->n_held = 0;
}

static void srv_stop(srv_t *s) {
    net_server_close(s->server);
    net_loop_post(s->loop, drop_last_conn, s);
    net_loop_destroy(s->loop);
}

/* ---------------------------------------------------------------- the client side */

typedef struct cli {
    net_loop_t *loop;
    net_conn_t *conn;
    atomic_int opens, closes;
    _Atomic int last_why;
} cli_t;

static void cli_open(net_conn_t *conn, void *ud) {
    atomic_fetch_add(&((cli_t *)ud)->opens, 1);
}

static void cli_close(net_conn_t *conn, rmq_err_t why, void *ud) {
    cli_t *c = ud;
    atomic_store(&c->last_why, why);
    atomic_fetch_add(&c->closes, 1);
}

static net_conn_t *cli_connect(cli_t *c, const char *addr) {
    rmq_err_t err;
    net_handler_t h = {NULL, cli_open, cli_close, c, NULL};
    net_conn_t *conn = net_connect(c->loop, addr, &h, 2000, &err);
    cr_assert_not_null(conn, "connect %s: %s", addr, rmq_err_name(err));
    return conn;
}

static void cli_start(cli_t *c, const net_opts_t *opts, const char *addr) {
    memset(c, 0, sizeof *c);
    rmq_err_t err;
    c->loop = net_loop_new(opts, &err);
    cr_assert_not_null(c->loop);
    c->conn = cli_connect(c, addr);
}

static void cli_stop(cli_t *c) {
    net_loop_destroy(c->loop);
    net_conn_unref(c->conn);
}

static void make_req(proto_cmd_t *cmd, int code, const char *body) {
    proto_cmd_request(cmd, code, 0);
    if (body) proto_cmd_set_body(cmd, body, strlen(body));
}

static bool body_is(const proto_cmd_t *cmd, const char *want) {
    return cmd->body_len == strlen(want) && memcmp(cmd->body, want, cmd->body_len) == 0;
}

/* One asynchronous request's outcome; calls counts every callback. */
typedef struct call {
    char expect[48];
    atomic_int calls;
    _Atomic int err;
    atomic_int *done; /* shared counter, may be NULL */
    atomic_int *bad;
    int64_t at;
} call_t;

static void call_cb(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    call_t *c = arg;
    atomic_store(&c->err, err);
    c->at = cm_mono_ms();
    if (err == RMQ_OK &&
        (!resp || resp->code != 0 || !proto_cmd_is_response(resp) || !body_is(resp, c->expect)))
        if (c->bad) atomic_fetch_add(c->bad, 1);
    if (err != RMQ_OK && resp) atomic_fetch_add(c->bad, 1);
    atomic_fetch_add(&c->calls, 1);
    if (c->done) atomic_fetch_add(c->done, 1);
}

/* ---------------------------------------------------------------- echo, many threads */

#define THREADS 4
#define SYNC_EACH 300
#define ASYNC_EACH 300

typedef struct worker {
    net_conn_t *conn;
    int id;
    atomic_int *done, *bad;
    call_t *calls; /* ASYNC_EACH */
    int sync_ok;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (int i = 0; i < ASYNC_EACH; i++) {
        call_t *c = &w->calls[i];
        snprintf(c->expect, sizeof c->expect, "async %d/%d", w->id, i);
        c->done = w->done;
        c->bad = w->bad;
        proto_cmd_t req;
        make_req(&req, i % 3 == 0 ? CODE_THREAD : CODE_ECHO, c->expect);
        cr_assert_eq(net_conn_request(w->conn, &req, 20000, call_cb, c), RMQ_OK);
        cr_assert_eq(req.body, NULL); /* the send took the contents */
    }
    for (int i = 0; i < SYNC_EACH; i++) {
        char body[48];
        snprintf(body, sizeof body, "sync %d/%d", w->id, i);
        proto_cmd_t req, resp;
        make_req(&req, CODE_ECHO, body);
        rmq_err_t err = net_conn_request_sync(w->conn, &req, 20000, &resp);
        if (err == RMQ_OK && resp.code == 0 && body_is(&resp, body)) w->sync_ok++;
        proto_cmd_free(&resp);
    }
    return NULL;
}

Test(transport, concurrent_requests_from_threads_are_all_matched) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    atomic_int done = 0, bad = 0;
    worker_t w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){c.conn, i, &done, &bad, calloc(ASYNC_EACH, sizeof(call_t)), 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert(wait_int(&done, THREADS * ASYNC_EACH, 20000));
    sleep_ms(20);
    cr_assert_eq(atomic_load(&bad), 0);
    for (int i = 0; i < THREADS; i++) {
        cr_assert_eq(w[i].sync_ok, SYNC_EACH);
        for (int j = 0; j < ASYNC_EACH; j++) {
            cr_assert_eq(atomic_load(&w[i].calls[j].calls), 1);
            cr_assert_eq(atomic_load(&w[i].calls[j].err), RMQ_OK);
        }
        free(w[i].calls);
    }
    cr_assert_eq(atomic_load(&c.opens), 1);
    cr_assert_eq(atomic_load(&s.opens), 1);
    cr_assert_eq(atomic_load(&s.requests), THREADS * (SYNC_EACH + ASYNC_EACH));
    cli_stop(&c);
    srv_stop(&s);
}

Test(transport, responses_out_of_order_reach_their_requests) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    atomic_int done = 0, bad = 0;
    call_t calls[REVERSE_N];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < REVERSE_N; i++) {
        snprintf(calls[i].expect, sizeof calls[i].expect, "rev %d", i);
        calls[i].done = &done;
        calls[i].bad = &bad;
        proto_cmd_t req;
        make_req(&req, CODE_REVERSE, calls[i].expect);
        cr_assert_eq(net_conn_request(c.conn, &req, 10000, call_cb, &calls[i]), RMQ_OK);
    }
    cr_assert(wait_int(&done, REVERSE_N, 10000));
    cr_assert_eq(atomic_load(&bad), 0);
    for (int i = 0; i < REVERSE_N; i++)
        cr_assert_eq(atomic_load(&calls[i].calls), 1);
    /* Answered last-first: the first request heard last. */
    cr_assert_geq(calls[0].at, calls[REVERSE_N - 1].at);
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- timeouts */

Test(transport, timeout_fires_exactly_once_and_a_late_response_is_dropped) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    call_t silent = {.expect = ""}, late = {.expect = "late"};
    atomic_int bad = 0;
    silent.bad = late.bad = &bad;
    proto_cmd_t req;
    make_req(&req, CODE_SILENT, NULL);
    int64_t t0 = cm_mono_ms();
    cr_assert_eq(net_conn_request(c.conn, &req, 200, call_cb, &silent), RMQ_OK);
    make_req(&req, CODE_LATE, "late");
    cr_assert_eq(net_conn_request(c.conn, &req, 100, call_cb, &late), RMQ_OK);
    cr_assert(wait_int(&silent.calls, 1, 10000));
    cr_assert(wait_int(&late.calls, 1, 10000));
    sleep_ms(600); /* the late answer (at ~300 ms) arrives and must be dropped */
    cr_assert_eq(atomic_load(&silent.calls), 1);
    cr_assert_eq(atomic_load(&late.calls), 1);
    cr_assert_eq(atomic_load(&silent.err), RMQ_ERR_TIMEOUT);
    cr_assert_eq(atomic_load(&late.err), RMQ_ERR_TIMEOUT);
    cr_assert_geq(silent.at - t0, 195, "timed out after %lld ms", (long long)(silent.at - t0));
    cr_assert_geq(late.at - t0, 95);
    /* The blocking form times out too, and the connection is still good afterwards. */
    proto_cmd_t resp;
    make_req(&req, CODE_SILENT, NULL);
    cr_assert_eq(net_conn_request_sync(c.conn, &req, 100, &resp), RMQ_ERR_TIMEOUT);
    make_req(&req, CODE_ECHO, "still there");
    cr_assert_eq(net_conn_request_sync(c.conn, &req, 5000, &resp), RMQ_OK);
    cr_assert(body_is(&resp, "still there"));
    proto_cmd_free(&resp);
    cr_assert(net_conn_is_open(c.conn));
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- closes */

Test(transport, server_closing_mid_request_fails_each_request_once_with_network) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    call_t calls[6];
    memset(calls, 0, sizeof calls);
    atomic_int done = 0, bad = 0;
    for (int i = 0; i < 6; i++) {
        calls[i].done = &done;
        calls[i].bad = &bad;
        proto_cmd_t req;
        make_req(&req, i == 5 ? CODE_CLOSE : CODE_SILENT, NULL);
        cr_assert_eq(net_conn_request(c.conn, &req, 30000, call_cb, &calls[i]), RMQ_OK);
    }
    cr_assert(wait_int(&done, 6, 10000), "callbacks: %d", atomic_load(&done));
    cr_assert(wait_int(&c.closes, 1, 5000));
    sleep_ms(50);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(atomic_load(&calls[i].calls), 1);
        cr_assert_eq(atomic_load(&calls[i].err), RMQ_ERR_NETWORK);
    }
    cr_assert_eq(atomic_load(&bad), 0);
    cr_assert_eq(atomic_load(&c.closes), 1);
    cr_assert_eq(atomic_load(&c.last_why), RMQ_ERR_NETWORK);
    cr_assert_not(net_conn_is_open(c.conn));
    /* Sends on a closed connection fail at once; the callback is never called. */
    call_t after = {0};
    proto_cmd_t req;
    make_req(&req, CODE_ECHO, "x");
    cr_assert_eq(net_conn_request(c.conn, &req, 1000, call_cb, &after), RMQ_ERR_NETWORK);
    cr_assert_null(req.body);
    make_req(&req, CODE_ECHO, "x");
    cr_assert_eq(net_conn_oneway(c.conn, &req), RMQ_ERR_NETWORK);
    cr_assert(wait_int(&s.closes, 1, 5000));
    cr_assert_eq(atomic_load(&s.last_why), RMQ_OK); /* closed by net_conn_close */
    sleep_ms(50);
    cr_assert_eq(atomic_load(&after.calls), 0);
    cli_stop(&c);
    srv_stop(&s);
}

Test(transport, closing_our_side_fails_pending_with_network_and_on_close_gets_ok) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    call_t call = {0};
    proto_cmd_t req;
    make_req(&req, CODE_SILENT, NULL);
    cr_assert_eq(net_conn_request(c.conn, &req, 30000, call_cb, &call), RMQ_OK);
    cr_assert(wait_int(&s.silent, 1, 5000));
    net_conn_close(c.conn);
    net_conn_close(c.conn); /* idempotent */
    cr_assert(wait_int(&call.calls, 1, 5000));
    cr_assert(wait_int(&c.closes, 1, 5000));
    cr_assert_eq(atomic_load(&call.err), RMQ_ERR_NETWORK);
    cr_assert_eq(atomic_load(&c.last_why), RMQ_OK);
    cr_assert(wait_int(&s.closes, 1, 5000)); /* the server hears the peer go */
    cr_assert_eq(atomic_load(&s.last_why), RMQ_ERR_NETWORK);
    sleep_ms(50);
    cr_assert_eq(atomic_load(&call.calls), 1);
    cr_assert_eq(atomic_load(&c.closes), 1);
    cli_stop(&c);
    srv_stop(&s);
}

Test(transport, connect_refused_fails_queued_requests_and_calls_on_close) {
    /* A port nobody listens on: bind one, then close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    cli_t c;
    cli_start(&c, NULL, addr);
    call_t call = {0};
    proto_cmd_t req;
    make_req(&req, CODE_ECHO, "x");
    rmq_err_t err = net_conn_request(c.conn, &req, 30000, call_cb, &call);
    if (err == RMQ_OK) cr_assert(wait_int(&call.calls, 1, 5000));
    cr_assert(wait_int(&c.closes, 1, 5000));
    sleep_ms(20);
    cr_assert_eq(atomic_load(&c.opens), 0);
    cr_assert_eq(atomic_load(&c.closes), 1);
    cr_assert_eq(atomic_load(&c.last_why), RMQ_ERR_NETWORK);
    if (err == RMQ_OK) cr_assert_eq(atomic_load(&call.err), RMQ_ERR_NETWORK);
    cr_assert_eq(atomic_load(&call.calls), err == RMQ_OK ? 1 : 0);
    cli_stop(&c);
}

Test(transport, bad_addresses_are_refused) {
    rmq_err_t err;
    net_loop_t *loop = net_loop_new(NULL, &err);
    net_handler_t h = {0};
    cr_assert_null(net_connect(loop, "127.0.0.1", &h, 0, &err));
    cr_assert_eq(err, RMQ_ERR_INVALID_ARG);
    cr_assert_null(net_connect(loop, "127.0.0.1:x", &h, 0, &err));
    cr_assert_eq(err, RMQ_ERR_INVALID_ARG);
    cr_assert_null(net_listen(loop, "not an ip", 0, &h, &err));
    cr_assert_eq(err, RMQ_ERR_INVALID_ARG);
    /* A port already taken. */
    net_server_t *a = net_listen(loop, "127.0.0.1", 0, &h, &err);
    cr_assert_not_null(a);
    cr_assert_null(net_listen(loop, "127.0.0.1", net_server_port(a), &h, &err));
    cr_assert_eq(err, RMQ_ERR_NETWORK);
    net_server_close(a);
    net_loop_destroy(loop);
}

Test(transport, ipv6_loopback_when_available) {
    rmq_err_t err;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool v6 = probe >= 0 && bind(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (probe >= 0) close(probe);
    if (!v6) cr_skip_test("no ::1 here");
    srv_t s;
    memset(&s, 0, sizeof s);
    s.loop = net_loop_new(NULL, &err);
    net_handler_t h = {srv_request, srv_open, srv_close, &s, NULL};
    s.server = net_listen(s.loop, "::1", 0, &h, &err);
    cr_assert_not_null(s.server);
    snprintf(s.addr, sizeof s.addr, "[::1]:%d", net_server_port(s.server));
    cli_t c;
    cli_start(&c, NULL, s.addr);
    proto_cmd_t req, resp;
    make_req(&req, CODE_ECHO, "six");
    cr_assert_eq(net_conn_request_sync(c.conn, &req, 5000, &resp), RMQ_OK);
    cr_assert(body_is(&resp, "six"));
    proto_cmd_free(&resp);
    cr_assert_str_eq(net_conn_peer_text(c.conn), s.addr);
    cr_assert_eq(net_conn_peer(c.conn)->ip_len, 16);
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- oneway, no handler */

Test(transport, oneway_requests_arrive_in_order_and_get_no_answer) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    for (int i = 0; i < 100; i++) {
        proto_cmd_t req;
        make_req(&req, CODE_ONEWAY, "one way");
        cr_assert_eq(net_conn_oneway(c.conn, &req), RMQ_OK);
    }
    /* A request after them on the same connection is read after them. */
    proto_cmd_t req, resp;
    make_req(&req, CODE_ECHO, "after");
    cr_assert_eq(net_conn_request_sync(c.conn, &req, 5000, &resp), RMQ_OK);
    proto_cmd_free(&resp);
    cr_assert_eq(atomic_load(&s.oneways), 100);
    cli_stop(&c);
    srv_stop(&s);
}

Test(transport, without_on_request_requests_get_code_not_supported) {
    srv_t s;
    srv_start(&s, NULL, false);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    proto_cmd_t req, resp;
    make_req(&req, 77, NULL);
    cr_assert_eq(net_conn_oneway(c.conn, &req), RMQ_OK); /* dropped, no answer */
    make_req(&req, 77, NULL);
    cr_assert_eq(net_conn_request_sync(c.conn, &req, 5000, &resp), RMQ_OK);
    cr_assert_eq(resp.code, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED);
    cr_assert(proto_cmd_is_response(&resp));
    cr_assert_not_null(resp.remark);
    cr_assert(strstr(resp.remark, "77") != NULL);
    proto_cmd_free(&resp);
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- bad input */

static int raw_connect(const char *addr_text) {
    proto_addr_t a;
    cr_assert_eq(proto_addr_parse(addr_text, &a), RMQ_OK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
    memcpy(&sa.sin_addr, a.ip, 4);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* True when the peer closed fd within ms (EOF or reset). */
static bool raw_closed_by_peer(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    int64_t end = cm_mono_ms() + ms;
    char buf[4096];
    while (cm_mono_ms() < end) {
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    }
    return false;
}

static void raw_write(int fd, const void *p, size_t n) {
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
}

Test(transport, oversized_frame_closes_only_that_connection) {
    srv_t s;
    net_opts_t so = {.max_frame = 64 * 1024};
    srv_start(&s, &so, true);
    cli_t good;
    cli_start(&good, NULL, s.addr);
    proto_cmd_t req, resp;
    make_req(&req, CODE_ECHO, "before");
    cr_assert_eq(net_conn_request_sync(good.conn, &req, 5000, &resp), RMQ_OK);
    proto_cmd_free(&resp);
    /* A length field claiming 1 MiB: refused from its first 4 bytes. */
    int fd = raw_connect(s.addr);
    uint8_t hdr[8];
    cm_wr32(hdr, 1024 * 1024);
    cm_wr32(hdr + 4, 20);
    raw_write(fd, hdr, sizeof hdr);
    cr_assert(raw_closed_by_peer(fd, 5000));
    close(fd);
    cr_assert(wait_int(&s.closes, 1, 5000));
    cr_assert_eq(atomic_load(&s.last_why), RMQ_ERR_FRAME_TOO_LARGE);
    /* Through lib/net: a 100 KiB body from a client whose own limit is the default. */
    cli_t big;
    cli_start(&big, NULL, s.addr);
    char *body = malloc(100 * 1024 + 1);
    memset(body, 'b', 100 * 1024);
    body[100 * 1024] = 0;
    make_req(&req, CODE_ECHO, body);
    free(body);
    cr_assert_eq(net_conn_request_sync(big.conn, &req, 5000, &resp), RMQ_ERR_NETWORK);
    cr_assert(wait_int(&s.closes, 2, 5000));
    cr_assert_eq(atomic_load(&s.last_why), RMQ_ERR_FRAME_TOO_LARGE);
    /* The other connection did not notice. */
    make_req(&req, CODE_ECHO, "after");
    cr_assert_eq(net_conn_request_sync(good.conn, &req, 5000, &resp), RMQ_OK);
    cr_assert(body_is(&resp, "after"));
    proto_cmd_free(&resp);
    cr_assert_eq(atomic_load(&good.closes), 0);
    /* Our own sends over the limit fail before they reach the wire. */
    cli_t small;
    net_opts_t co = {.max_frame = 1024};
    cli_start(&small, &co, s.addr);
    body = calloc(1, 2048);
    memset(body, 'c', 2047);
    make_req(&req, CODE_ECHO, body);
    free(body);
    cr_assert_eq(net_conn_request_sync(small.conn, &req, 5000, &resp), RMQ_ERR_FRAME_TOO_LARGE);
    cr_assert(net_conn_is_open(small.conn));
    cli_stop(&small);
    cli_stop(&big);
    cli_stop(&good);
    srv_stop(&s);
}

Test(transport, garbage_closes_the_connection_and_the_server_keeps_accepting) {
    srv_t s;
    srv_start(&s, NULL, true);
    /* A frame whose header length runs past its end. */
    int fd = raw_connect(s.addr);
    uint8_t bad[16] = {0};
    cm_wr32(bad, 12);
    cm_wr32(bad + 4, 200);
    raw_write(fd, bad, sizeof bad);
    cr_assert(raw_closed_by_peer(fd, 5000));
    close(fd);
    cr_assert(wait_int(&s.closes, 1, 5000));
    rmq_err_t why = atomic_load(&s.last_why);
    cr_assert(why != RMQ_OK && why != RMQ_ERR_NETWORK && why != RMQ_ERR_TIMEOUT, "closed with %s",
              rmq_err_name(why));
    /* A JSON header that is not JSON. */
    fd = raw_connect(s.addr);
    const char junk[] = "}{ not json at all";
    uint8_t frame[64];
    cm_wr32(frame, (uint32_t)(4 + sizeof junk - 1));
    cm_wr32(frame + 4, (uint32_t)(sizeof junk - 1)); /* serialize type 0: JSON */
    memcpy(frame + 8, junk, sizeof junk - 1);
    raw_write(fd, frame, 8 + sizeof junk - 1);
    cr_assert(raw_closed_by_peer(fd, 5000));
    close(fd);
    cr_assert(wait_int(&s.closes, 2, 5000));
    /* Length below the minimum. */
    fd = raw_connect(s.addr);
    uint8_t tiny[4];
    cm_wr32(tiny, 2);
    raw_write(fd, tiny, 4);
    cr_assert(raw_closed_by_peer(fd, 5000));
    close(fd);
    cr_assert(wait_int(&s.closes, 3, 5000));
    /* A half frame then EOF: the server just closes. */
    fd = raw_connect(s.addr);
    cm_wr32(tiny, 100);
    raw_write(fd, tiny, 4);
    close(fd);
    cr_assert(wait_int(&s.closes, 4, 5000));
    cr_assert_eq(atomic_load(&s.requests), 0);
    /* Still accepting and serving. */
    cli_t c;
    cli_start(&c, NULL, s.addr);
    proto_cmd_t req, resp;
    make_req(&req, CODE_ECHO, "fine");
    cr_assert_eq(net_conn_request_sync(c.conn, &req, 5000, &resp), RMQ_OK);
    cr_assert(body_is(&resp, "fine"));
    proto_cmd_free(&resp);
    cli_stop(&c);
    srv_stop(&s);
}

/* A frame split into single bytes still arrives whole. */
Test(transport, frames_reassemble_from_byte_sized_writes) {
    srv_t s;
    srv_start(&s, NULL, true);
    int fd = raw_connect(s.addr);
    proto_cmd_t req;
    make_req(&req, CODE_ECHO, "dribble");
    req.opaque = 42;
    cm_buf_t out = CM_BUF_INIT;
    cr_assert_eq(proto_frame_encode(&req, &out), RMQ_OK);
    cr_assert_eq(proto_frame_encode(&req, &out), RMQ_OK); /* two back to back */
    proto_cmd_free(&req);
    for (size_t i = 0; i < out.len; i++) {
        raw_write(fd, out.data + i, 1);
        if (i % 16 == 0) sleep_ms(1);
    }
    cr_assert(wait_int(&s.requests, 2, 5000));
    /* Both answers come back, each with our opaque. */
    uint8_t in[4096];
    size_t have = 0;
    int frames = 0;
    int64_t end = cm_mono_ms() + 5000;
    while (frames < 2 && cm_mono_ms() < end) {
        ssize_t n = read(fd, in + have, sizeof in - have);
        cr_assert_gt(n, 0);
        have += (size_t)n;
        size_t size;
        while (have >= 4 && proto_frame_size(in, have, PROTO_MAX_FRAME, &size) == RMQ_OK &&
               size <= have) {
            proto_cmd_t resp;
            cr_assert_eq(proto_frame_decode(in, size, PROTO_MAX_FRAME, &resp), RMQ_OK);
            cr_assert_eq(resp.opaque, 42);
            cr_assert(proto_cmd_is_response(&resp));
            cr_assert(body_is(&resp, "dribble"));
            proto_cmd_free(&resp);
            memmove(in, in + size, have - size);
            have -= size;
            frames++;
        }
    }
    cr_assert_eq(frames, 2);
    cm_buf_free(&out);
    close(fd);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- backpressure */

Test(transport, a_peer_that_never_reads_makes_sends_busy_with_bounded_queue) {
    /* A listener nobody accepts from: the kernel completes the handshake, nobody reads. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, len), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    const size_t limit = 1024 * 1024;
    net_opts_t o = {.write_limit = limit};
    cli_t c;
    cli_start(&c, &o, addr);
    static char body[64 * 1024];
    memset(body, 'p', sizeof body - 1);
    rmq_err_t err = RMQ_OK;
    int sent = 0;
    size_t max_seen = 0;
    int64_t end = cm_mono_ms() + 20000;
    while (err != RMQ_ERR_BUSY && cm_mono_ms() < end) {
        proto_cmd_t req;
        make_req(&req, CODE_ONEWAY, body);
        err = net_conn_oneway(c.conn, &req);
        cr_assert(err == RMQ_OK || err == RMQ_ERR_BUSY, "send: %s", rmq_err_name(err));
        if (err == RMQ_OK) sent++;
        size_t q = net_conn_queued(c.conn);
        if (q > max_seen) max_seen = q;
        if (sent % 64 == 0) sleep_ms(1); /* let the loop write what the kernel takes */
    }
    cr_assert_eq(err, RMQ_ERR_BUSY, "never busy after %d sends", sent);
    cr_assert_leq(max_seen, limit);
    cr_assert_leq(net_conn_queued(c.conn), limit);
    /* Requests are refused the same way, and a refused request's callback is never called.
     * The loop may hand the kernel a little more meanwhile (slow under sanitizers), so the
     * queue is filled again before each try; accepted requests fail when the client stops. */
    call_t call = {0};
    int accepted = 0;
    rmq_err_t rerr = RMQ_OK;
    for (int tries = 0; tries < 100 && rerr != RMQ_ERR_BUSY; tries++) {
        proto_cmd_t req;
        do make_req(&req, CODE_ONEWAY, body);
        while (net_conn_oneway(c.conn, &req) == RMQ_OK);
        make_req(&req, CODE_ECHO, body);
        rerr = net_conn_request(c.conn, &req, 1000, call_cb, &call);
        if (rerr == RMQ_OK) accepted++;
    }
    cr_assert_eq(rerr, RMQ_ERR_BUSY);
    cr_assert(net_conn_is_open(c.conn));
    cli_stop(&c);
    cr_assert_eq(atomic_load(&call.calls), accepted);
    close(lfd);
}

/* Raw client that writes echo requests and does not read: the server stops reading from it
 * instead of queueing replies without bound, and serves it all once it reads again. */
Test(transport, server_pauses_reading_from_a_peer_that_does_not_read_replies) {
    srv_t s;
    const size_t limit = 256 * 1024;
    net_opts_t so = {.write_limit = limit};
    srv_start(&s, &so, true);
    /* (No small SO_RCVBUF here: a window below the MSS makes loopback TCP crawl on
     * zero-window probes, which is not what this test is about.) */
    int fd = raw_connect(s.addr);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* More than the kernel buffers on both sides can absorb. */
    enum { N = 4000, BODY = 8 * 1024 };
    static char body[BODY + 1];
    memset(body, 'q', BODY);
    cm_buf_t all = CM_BUF_INIT;
    for (int i = 0; i < N; i++) {
        proto_cmd_t req;
        make_req(&req, CODE_ECHO, body);
        req.opaque = i;
        cr_assert_eq(proto_frame_encode(&req, &all), RMQ_OK);
        proto_cmd_free(&req);
    }
    /* Write until the server stops taking bytes for 500 ms. */
    size_t off = 0;
    int64_t idle_since = cm_mono_ms();
    while (off < all.len && cm_mono_ms() - idle_since < 500) {
        ssize_t n = write(fd, all.data + off, all.len - off);
        if (n > 0) {
            off += (size_t)n;
            idle_since = cm_mono_ms();
        } else {
            sleep_ms(5);
        }
    }
    cr_assert_lt(off, all.len, "the server read everything without pausing");
    int handled = atomic_load(&s.requests);
    cr_assert_lt(handled, N);
    sleep_ms(200);
    cr_assert_eq(atomic_load(&s.requests), handled, "paused reading still handles requests");
    cr_assert_not_null(s.last_conn);
    size_t q = net_conn_queued(s.last_conn);
    cr_assert_leq(q, limit, "server queued %zu", q);
    cr_assert(net_conn_is_open(s.last_conn));
    /* Now read every reply while writing the rest: all N come back, in order. */
    uint8_t *in = malloc(1 << 20);
    size_t have = 0;
    int got = 0;
    int64_t end = cm_mono_ms() + 30000;
    while (got < N && cm_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN | (off < all.len ? POLLOUT : 0), 0};
        poll(&p, 1, 100);
        if (off < all.len) {
            ssize_t n = write(fd, all.data + off, all.len - off);
            if (n > 0) off += (size_t)n;
        }
        ssize_t n = read(fd, in + have, (1 << 20) - have);
        if (n == 0) break;
        if (n > 0) have += (size_t)n;
        size_t size;
        while (have >= 4 && proto_frame_size(in, have, PROTO_MAX_FRAME, &size) == RMQ_OK &&
               size <= have) {
            proto_cmd_t resp;
            cr_assert_eq(proto_frame_decode(in, size, PROTO_MAX_FRAME, &resp), RMQ_OK);
            cr_assert_eq(resp.opaque, got);
            cr_assert_eq(resp.body_len, BODY);
            proto_cmd_free(&resp);
            memmove(in, in + size, have - size);
            have -= size;
            got++;
        }
    }
    /* Reading paused before the replies reached the limit: none was refused. */
    cr_assert_eq(atomic_load(&s.busy), 0);
    cr_assert_eq(got, N, "got %d of %d replies; wrote %zu of %zu bytes; server handled %d, "
                 "queued %zu, refused %d", got, N, off, all.len, atomic_load(&s.requests),
                 net_conn_queued(s.last_conn), atomic_load(&s.busy));
    free(in);
    cm_buf_free(&all);
    close(fd);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- idle */

Test(transport, idle_connections_close_with_timeout) {
    srv_t s;
    net_opts_t so = {.idle_ms = 300};
    srv_start(&s, &so, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    proto_cmd_t req, resp;
    /* Traffic keeps it open past the idle time: requests 100 ms apart, 800 ms in all. A
     * loaded machine can stretch one of those sleeps past the idle time (seen with the suite
     * run four times at once); then the server was right to close, and only the close
     * itself is checked. */
    int64_t last_reply_ms = cm_mono_ms(), widest_gap_ms = 0;
    for (int i = 0; i < 8; i++) {
        make_req(&req, CODE_ECHO, "keepalive");
        rmq_err_t err = net_conn_request_sync(c.conn, &req, 5000, &resp);
        int64_t now = cm_mono_ms();
        if (now - last_reply_ms > widest_gap_ms) widest_gap_ms = now - last_reply_ms;
        if (err != RMQ_OK && widest_gap_ms >= 250) break; /* closed after an overrun: fine */
        cr_assert_eq(err, RMQ_OK, "request %d: %s after %lld ms", i, rmq_err_name(err),
                     (long long)(now - last_reply_ms));
        last_reply_ms = now;
        proto_cmd_free(&resp);
        sleep_ms(100);
    }
    if (widest_gap_ms < 250) cr_assert_eq(atomic_load(&s.closes), 0);
    cr_assert(wait_int(&s.closes, 1, 10000));
    /* Measured from the last reply, not from after the sleep: on a loaded machine the sleep
     * itself can overrun by more than the margin (seen in a full-suite run). The server saw
     * its last traffic just before that reply, so idle_ms minus scheduling slack has passed. */
    cr_assert_geq(cm_mono_ms() - last_reply_ms, 250);
    cr_assert_eq(atomic_load(&s.last_why), RMQ_ERR_TIMEOUT);
    cr_assert(wait_int(&c.closes, 1, 5000));
    cr_assert_eq(atomic_load(&c.last_why), RMQ_ERR_NETWORK);
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- the stop */

typedef struct sync_thread {
    net_conn_t *conn;
    rmq_err_t err;
} sync_thread_t;

static void *sync_silent(void *arg) {
    sync_thread_t *st = arg;
    proto_cmd_t req, resp;
    make_req(&req, CODE_SILENT, NULL);
    st->err = net_conn_request_sync(st->conn, &req, 60000, &resp);
    proto_cmd_free(&resp);
    return NULL;
}

Test(transport, loop_destroy_fails_each_request_once_with_shutdown) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    enum { N = 50 };
    call_t calls[N];
    memset(calls, 0, sizeof calls);
    atomic_int done = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        calls[i].done = &done;
        calls[i].bad = &bad;
        proto_cmd_t req;
        make_req(&req, CODE_SILENT, NULL);
        cr_assert_eq(net_conn_request(c.conn, &req, 60000, call_cb, &calls[i]), RMQ_OK);
    }
    sync_thread_t st = {c.conn, RMQ_OK};
    pthread_t th;
    pthread_create(&th, NULL, sync_silent, &st);
    cr_assert(wait_int(&s.silent, N + 1, 10000));
    net_loop_destroy(c.loop);
    /* Every callback ran before destroy returned. */
    cr_assert_eq(atomic_load(&done), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(atomic_load(&calls[i].calls), 1);
        cr_assert_eq(atomic_load(&calls[i].err), RMQ_ERR_SHUTDOWN);
    }
    pthread_join(th, NULL);
    cr_assert_eq(st.err, RMQ_ERR_SHUTDOWN);
    cr_assert_eq(atomic_load(&c.closes), 1);
    cr_assert_eq(atomic_load(&c.last_why), RMQ_ERR_SHUTDOWN);
    /* The reference still held is valid memory; sends answer NETWORK. */
    cr_assert_not(net_conn_is_open(c.conn));
    proto_cmd_t req;
    make_req(&req, CODE_ECHO, "x");
    cr_assert_eq(net_conn_send(c.conn, &req), RMQ_ERR_NETWORK);
    net_conn_unref(c.conn);
    sleep_ms(50);
    cr_assert_eq(atomic_load(&done), N);
    srv_stop(&s);
}

/* Requests queued from another thread and not yet taken by the loop when it stops. */
typedef struct burst {
    net_conn_t *conn;
    call_t *calls;
    int n;
    atomic_int accepted;
} burst_t;

static void *burst_main(void *arg) {
    burst_t *b = arg;
    for (int i = 0; i < b->n; i++) {
        proto_cmd_t req;
        make_req(&req, CODE_SILENT, NULL);
        if (net_conn_request(b->conn, &req, 60000, call_cb, &b->calls[i]) == RMQ_OK)
            atomic_fetch_add(&b->accepted, 1);
    }
    return NULL;
}

Test(transport, destroy_racing_with_senders_calls_every_accepted_callback_once) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    enum { N = 3000 };
    call_t *calls = calloc(N, sizeof *calls);
    burst_t b = {c.conn, calls, N, 0};
    pthread_t th;
    pthread_create(&th, NULL, burst_main, &b);
    sleep_ms(5);
    net_loop_destroy(c.loop);
    pthread_join(th, NULL);
    int accepted = atomic_load(&b.accepted), called = 0;
    for (int i = 0; i < N; i++) {
        int n = atomic_load(&calls[i].calls);
        cr_assert_leq(n, 1);
        called += n;
        if (n) cr_assert(calls[i].err == RMQ_ERR_SHUTDOWN || calls[i].err == RMQ_ERR_NETWORK);
    }
    cr_assert_eq(called, accepted);
    free(calls);
    net_conn_unref(c.conn);
    srv_stop(&s);
}

static void sync_on_loop(void *arg) {
    cli_t *c = arg;
    proto_cmd_t req, resp;
    make_req(&req, CODE_ECHO, "deadlock?");
    atomic_store(&c->last_why, net_conn_request_sync(c->conn, &req, 1000, &resp));
    cr_assert_null(req.body);
    atomic_fetch_add(&c->opens, 100);
}

Test(transport, request_sync_on_the_loop_thread_is_refused) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    cr_assert(wait_int(&c.opens, 1, 5000));
    net_loop_post(c.loop, sync_on_loop, &c);
    cr_assert(wait_int(&c.opens, 101, 5000));
    cr_assert_eq(atomic_load(&c.last_why), RMQ_ERR_STATE);
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- throughput (printed) */

typedef struct pipe_state {
    net_conn_t *conn;
    atomic_int in_flight;
    atomic_long completed;
    atomic_int errors;
} pipe_state_t;

static void pipe_cb(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    pipe_state_t *p = arg;
    if (err != RMQ_OK) atomic_fetch_add(&p->errors, 1);
    atomic_fetch_add(&p->completed, 1);
    atomic_fetch_sub(&p->in_flight, 1);
}

Test(transport, pipelined_round_trip_throughput) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    pipe_state_t p = {c.conn, 0, 0, 0};
    enum { WINDOW = 256 };
    static const char body[128] = "payload";
    int64_t t0 = cm_mono_ns(), until = cm_mono_ms() + 1000;
    long sent = 0;
    while (cm_mono_ms() < until) {
        if (atomic_load(&p.in_flight) >= WINDOW) {
            sched_yield();
            continue;
        }
        proto_cmd_t req;
        proto_cmd_request(&req, CODE_ECHO, 0);
        proto_cmd_set_body(&req, body, sizeof body);
        atomic_fetch_add(&p.in_flight, 1);
        cr_assert_eq(net_conn_request(c.conn, &req, 30000, pipe_cb, &p), RMQ_OK);
        sent++;
    }
    while (atomic_load(&p.completed) < sent)
        sleep_ms(1);
    double secs = (double)(cm_mono_ns() - t0) / 1e9;
    printf("net throughput: %ld pipelined round trips (128-byte body, window %d) in %.2f s = "
           "%.0f req/s\n",
           sent, WINDOW, secs, (double)sent / secs);
    fflush(stdout);
    cr_assert_eq(atomic_load(&p.errors), 0);
    cli_stop(&c);
    srv_stop(&s);
}

/* ---------------------------------------------------------------- lent bodies */

/* A request whose echo must be len bytes of fill. */
typedef struct lent_call {
    char fill;
    size_t len;
    atomic_int calls, ok;
} lent_call_t;

static bool lent_body_is(const lent_call_t *l, const uint8_t *b, size_t len) {
    if (len != l->len) return false;
    for (size_t i = 0; i < len; i++)
        if (b[i] != (uint8_t)l->fill) return false;
    return true;
}

static void lent_cb(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    lent_call_t *l = arg;
    if (err == RMQ_OK && resp && resp->code == 0 && lent_body_is(l, resp->body, resp->body_len))
        atomic_fetch_add(&l->ok, 1);
    atomic_fetch_add(&l->calls, 1);
}

typedef struct lent_job {
    net_conn_t *conn;
    lent_call_t *call;
    char *body; /* overwritten as soon as the request call returns */
    rmq_err_t sent;
    atomic_int ran;
} lent_job_t;

static void lend(lent_job_t *j) {
    memset(j->body, j->call->fill, j->call->len);
    proto_cmd_t req;
    proto_cmd_request(&req, CODE_ECHO, 0);
    j->sent = net_conn_request_lent(j->conn, &req, j->body, j->call->len, 20000, lent_cb, j->call);
    cr_assert_null(req.body);
    memset(j->body, '#', j->call->len); /* the caller's again */
}

static void lend_on_loop(void *arg) {
    lent_job_t *j = arg;
    lend(j);
    atomic_store(&j->ran, 1);
}

/* A lent body is read before net_conn_request_lent returns, from another thread and from
 * the loop's, small or past the zero-copy size; a command with a body of its own as well is
 * refused without a callback. */
Test(transport, lent_bodies_are_read_before_the_call_returns) {
    srv_t s;
    srv_start(&s, NULL, true);
    cli_t c;
    cli_start(&c, NULL, s.addr);
    enum { N = 8, BIG = 40000 };
    static lent_call_t calls[N];
    char *body = malloc(BIG);
    for (int i = 0; i < N; i++) {
        calls[i].fill = (char)('a' + i);
        calls[i].len = i % 2 ? BIG - (size_t)i : 10 + (size_t)i;
        lent_job_t j = {.conn = c.conn, .call = &calls[i], .body = body};
        if (i < N / 2) {
            lend(&j);
        } else {
            cr_assert_eq(net_loop_post(c.loop, lend_on_loop, &j), RMQ_OK);
            while (!atomic_load(&j.ran))
                sleep_ms(1);
        }
        cr_assert_eq(j.sent, RMQ_OK, "request %d: %s", i, rmq_err_name(j.sent));
    }
    for (int i = 0; i < N; i++) {
        cr_assert(wait_int(&calls[i].calls, 1, 20000), "request %d unanswered", i);
        cr_assert_eq(atomic_load(&calls[i].ok), 1, "request %d: wrong echo", i);
    }
    /* The blocking form reads its lent body before it returns, too. */
    const size_t sync_lens[] = {5, 500, BIG - 3};
    for (size_t k = 0; k < 3; k++) {
        size_t len = sync_lens[k];
        memset(body, 'z', len);
        proto_cmd_t req, resp;
        proto_cmd_request(&req, CODE_ECHO, 0);
        cr_assert_eq(net_conn_request_sync_lent(c.conn, &req, body, len, 20000, &resp), RMQ_OK);
        memset(body, '#', len);
        lent_call_t want = {.fill = 'z', .len = len};
        cr_assert(lent_body_is(&want, resp.body, resp.body_len), "sync echo of %zu bytes", len);
        proto_cmd_free(&resp);
    }
    lent_call_t refused = {.fill = 'x', .len = 4};
    proto_cmd_t req;
    make_req(&req, CODE_ECHO, "own");
    cr_assert_eq(net_conn_request_lent(c.conn, &req, "xxxx", 4, 20000, lent_cb, &refused),
                 RMQ_ERR_INVALID_ARG);
    sleep_ms(50);
    cr_assert_eq(atomic_load(&refused.calls), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(atomic_load(&calls[i].calls), 1);
    free(body);
    cli_stop(&c);
    srv_stop(&s);
}
