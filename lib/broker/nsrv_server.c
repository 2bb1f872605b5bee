/* lib/broker/nsrv_server.c: the name server alone (`rmqd --namesrv`) — the tables of
 * namesrv.c behind a lib/net listener of their own, with the 10 s broker expiry scan and
 * brokers dropped when their connection closes, as Java's NamesrvController runs them. */
#include "broker/namesrv.h"

#include <stdio.h>
#include <stdlib.h>

#include "net/net.h"

struct nsrv_server {
    cm_logger_t log;
    nsrv_t *ns;
    net_loop_t *loop;
    net_server_t *listener;
};

static void *conn_ref(void *conn) {
    return net_conn_ref(conn);
}

static void conn_unref(void *conn) {
    net_conn_unref(conn);
}

static const broker_conn_ops_t conn_ops = {conn_ref, conn_unref};

static void on_request(net_conn_t *conn, proto_cmd_t *req, void *ud) {
    nsrv_server_t *s = ud;
    proto_cmd_t resp;
    proto_cmd_init(&resp);
    if (!nsrv_handle(s->ns, conn, req, &resp)) {
        char remark[64];
        snprintf(remark, sizeof remark, " request type %d not supported", req->code);
        proto_cmd_response(&resp, req, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, remark);
    }
    if (proto_cmd_is_oneway(req)) {
        proto_cmd_free(&resp);
        return;
    }
    resp.language = PROTO_LANG_JAVA;
    rmq_err_t rc = net_conn_send(conn, &resp);
    if (rc != RMQ_OK && rc != RMQ_ERR_NETWORK)
        cm_debug(&s->log, "name server: reply to %s (code %d): %s", net_conn_peer_text(conn),
                 req->code, rmq_err_name(rc));
}

static void on_close(net_conn_t *conn, rmq_err_t why, void *ud) {
    nsrv_server_t *s = ud;
    nsrv_conn_closed(s->ns, conn);
}

/* Every NSRV_SCAN_INTERVAL_MS; the loop's stop ends it (RMQ_ERR_SHUTDOWN). */
static void on_scan(net_loop_t *loop, rmq_err_t err, void *arg) {
    nsrv_server_t *s = arg;
    if (err != RMQ_OK) return;
    void **conns;
    size_t n;
    nsrv_expire(s->ns, cm_mono_ms(), &conns, &n);
    for (size_t i = 0; i < n; i++) {
        net_conn_close(conns[i]);
        net_conn_unref(conns[i]);
    }
    cm_free(conns);
}

static void start_scan(void *arg) {
    nsrv_server_t *s = arg;
    net_timer_start(s->loop, NSRV_SCAN_INTERVAL_MS, NSRV_SCAN_INTERVAL_MS, on_scan, s);
}

nsrv_server_t *nsrv_server_new_on(const rmq_conf_t *conf, const char *host, int port, char *errstr,
                                  size_t size) {
    nsrv_server_t *s = cm_calloc(1, sizeof *s);
    s->log = conf ? cm_conf_logger(conf) : (cm_logger_t){NULL, NULL, RMQ_LOG_INFO};
    /* NamesrvConfig.kvConfigPath: ${user.home}/namesrv/kvConfig.json. */
    const char *home = getenv("HOME");
    char *kv_path = home && *home ? cm_sprintf("%s/namesrv/kvConfig.json", home) : NULL;
    nsrv_opts_t opts = {.log = &s->log, .kv_path = kv_path, .conn_ops = &conn_ops};
    s->ns = nsrv_new(&opts);
    cm_free(kv_path);
    net_opts_t nopts = {.log = s->log};
    rmq_err_t rc = RMQ_OK;
    s->loop = net_loop_new(&nopts, &rc);
    if (!s->loop) {
        cm_errstr(errstr, size, "cannot start the I/O loop: %s", rmq_err_str(rc));
        nsrv_server_destroy(s);
        return NULL;
    }
    net_handler_t h = {on_request, NULL, on_close, s, NULL};
    s->listener = net_listen(s->loop, host, port, &h, &rc);
    if (!s->listener) {
        cm_errstr(errstr, size, "name server cannot listen on port %d: %s", port, rmq_err_str(rc));
        nsrv_server_destroy(s);
        return NULL;
    }
    if (net_loop_post(s->loop, start_scan, s) != RMQ_OK) {
        cm_errstr(errstr, size, "cannot start the expiry timer");
        nsrv_server_destroy(s);
        return NULL;
    }
    cm_info(&s->log, "name server listening on %s:%d", host ? host : "0.0.0.0",
            net_server_port(s->listener));
    return s;
}

nsrv_server_t *nsrv_server_new(const rmq_conf_t *conf, int port, char *errstr, size_t size) {
    return nsrv_server_new_on(conf, NULL, port, errstr, size);
}

int nsrv_server_port(const nsrv_server_t *s) {
    return s && s->listener ? net_server_port(s->listener) : -1;
}

void nsrv_server_destroy(nsrv_server_t *s) {
    if (!s) return;
    if (s->listener) net_server_close(s->listener);
    /* Closes every connection (on_close still finds the tables) and ends the timer. */
    if (s->loop) net_loop_destroy(s->loop);
    nsrv_destroy(s->ns);
    cm_free(s);
}
