/* lib/broker/broker.c: the embedded broker's life cycle (rmq_broker_*) and request
 * dispatch — store open/close, lib/net wiring, the processor table by request code, the
 * send executor with its SYSTEM_BUSY queue-wait rule, and the service thread that persists
 * consumer offsets. */
#include "broker/broker_int.h"
#include "broker/timer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

/* ---------------------------------------------------------------- requests */

void broker_set_processor(broker_t *b, int32_t code, broker_proc_fn *fn, broker_exec_t exec) {
    if (code < 0 || code >= BROKER_MAX_CODE) return;
    b->procs[code] = fn;
    b->exec[code] = (uint8_t)exec;
}

/* Requests a broker keeps for reuse at most (one per request in flight is enough). */
#define REQ_KEEP 1024

/* A zeroed request (loop thread). */
static broker_req_t *req_new(broker_t *b) {
    broker_req_t *req = b->req_local;
    if (!req) req = atomic_exchange_explicit(&b->req_returned, NULL, memory_order_acquire);
    if (req) {
        b->req_local = req->next;
        atomic_fetch_sub_explicit(&b->req_kept, 1, memory_order_relaxed);
        memset(req, 0, sizeof *req);
    } else {
        req = cm_calloc(1, sizeof *req);
    }
    req->owner = b;
    return req;
}

static void req_free(broker_req_t *req) {
    proto_cmd_free(&req->cmd);
    if (req->conn) net_conn_unref(req->conn);
    broker_t *b = req->owner;
    if (atomic_fetch_add_explicit(&b->req_kept, 1, memory_order_relaxed) >= REQ_KEEP) {
        atomic_fetch_sub_explicit(&b->req_kept, 1, memory_order_relaxed);
        cm_free(req);
        return;
    }
    /* Only whole lists are taken off the stack, so a push cannot race a pop of its node. */
    broker_req_t *head = atomic_load_explicit(&b->req_returned, memory_order_relaxed);
    do {
        req->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&b->req_returned, &head, req,
                                                    memory_order_release, memory_order_relaxed));
}

static void req_list_free(broker_req_t *req) {
    while (req) {
        broker_req_t *next = req->next;
        cm_free(req);
        req = next;
    }
}

void broker_req_end(broker_req_t *req) {
    req_free(req);
}

void broker_reply(broker_t *b, broker_req_t *req, proto_cmd_t *resp) {
    if (proto_cmd_is_oneway(&req->cmd)) {
        proto_cmd_free(resp);
    } else {
        /* Java brokers answer as JAVA; clients that log it see what they expect. */
        resp->language = PROTO_LANG_JAVA;
        rmq_err_t rc = net_conn_send(req->conn, resp);
        if (rc != RMQ_OK && rc != RMQ_ERR_NETWORK)
            cm_debug(&b->log, "reply to %s (code %d): %s", req->peer_text, req->cmd.code,
                     rmq_err_name(rc));
    }
    req_free(req);
}

void broker_reply_code(broker_t *b, broker_req_t *req, int32_t code, const char *remark) {
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, code, remark);
    broker_reply(b, req, &resp);
}

void broker_reply_bad_header(broker_t *b, broker_req_t *req, const proto_hdr_err_t *err) {
    char remark[256];
    proto_hdr_err_format(err, remark, sizeof remark);
    broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR, remark);
}

void broker_reply_fmt(broker_t *b, broker_req_t *req, int32_t code, const char *fmt, ...) {
    char remark[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(remark, sizeof remark, fmt, ap);
    va_end(ap);
    broker_reply_code(b, req, code, remark);
}

bool broker_send_oneway(broker_t *b, struct net_conn *conn, proto_cmd_t *cmd) {
    return net_conn_oneway(conn, cmd) == RMQ_OK;
}

/* ---------------------------------------------------------------- send executor */

/* RocketMQ's sendThreadPoolQueueCapacity; and a byte bound, so pipelined large messages
 * cannot queue without limit while the store is slow. */
#define SEND_QUEUE_MAX 10000
#define SEND_QUEUE_MAX_BYTES (256L * 1024 * 1024)

static void send_enqueue(broker_t *b, broker_req_t *req) {
    pthread_mutex_lock(&b->send_mu);
    if (b->send_queued >= SEND_QUEUE_MAX || b->send_queued_bytes >= SEND_QUEUE_MAX_BYTES) {
        long queued = b->send_queued;
        pthread_mutex_unlock(&b->send_mu);
        char remark[128];
        snprintf(remark, sizeof remark,
                 "[OVERLOAD]system busy, start flow control for a while, %ld sends queued", queued);
        atomic_fetch_add(&b->counters.send_busy, 1);
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_BUSY, remark);
        return;
    }
    b->send_queued_bytes += (long)req->cmd.body_len;
    req->next = NULL;
    if (b->send_tail)
        b->send_tail->next = req;
    else
        b->send_head = req;
    b->send_tail = req;
    b->send_queued++;
    pthread_cond_signal(&b->send_cv);
    pthread_mutex_unlock(&b->send_mu);
}

/* Sends one send thread takes from the queue per lock round: they are stored together. */
#define SEND_BATCH_MAX 128

/* False (answered SYSTEM_BUSY) when req waited longer than waitTimeMillsInSendQueue: the
 * producer is better served by that now (it retries elsewhere) than by a late answer. */
static bool send_still_wanted(broker_t *b, broker_req_t *req, int64_t now, long queued) {
    int64_t waited = now - req->received_ms;
    if (waited <= b->send_wait_max_ms || proto_cmd_is_oneway(&req->cmd)) return true;
    char remark[160];
    snprintf(remark, sizeof remark,
             "[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in "
             "queue: %lldms, size of queue: %ld",
             (long long)waited, queued);
    atomic_fetch_add(&b->counters.send_busy, 1);
    broker_reply_code(b, req, RMQ_ERR_SYSTEM_BUSY, remark);
    return false;
}

/* Takes up to SEND_BATCH_MAX queued sends (send_mu held) into batch; *queued gets the
 * queue length before. */
static size_t send_take(broker_t *b, broker_req_t **batch, long *queued) {
    size_t n = 0;
    *queued = b->send_queued;
    while (b->send_head && n < SEND_BATCH_MAX) {
        broker_req_t *req = b->send_head;
        b->send_head = req->next;
        b->send_queued--;
        b->send_queued_bytes -= (long)req->cmd.body_len;
        batch[n++] = req;
    }
    if (!b->send_head) b->send_tail = NULL;
    if (n) b->send_active++;
    return n;
}

/* Send thread: drains the queue a batch per lock round; on stop, finishes what is queued. */
static void *send_main(void *arg) {
    broker_t *b = arg;
    broker_req_t *batch[SEND_BATCH_MAX];
    send_scratch_t scratch = {CM_BUF_INIT, CM_BUF_INIT};
    pthread_mutex_lock(&b->send_mu);
    for (;;) {
        while (!b->send_head && !b->send_stop)
            pthread_cond_wait(&b->send_cv, &b->send_mu);
        long queued;
        size_t n = send_take(b, batch, &queued);
        if (n == 0) break;
        pthread_mutex_unlock(&b->send_mu);
        int64_t now = cm_mono_ms();
        size_t keep = 0;
        for (size_t i = 0; i < n; i++)
            if (send_still_wanted(b, batch[i], now, queued)) batch[keep++] = batch[i];
        if (keep) broker_send_many(b, batch, keep, &scratch);
        pthread_mutex_lock(&b->send_mu);
        b->send_active--;
    }
    pthread_mutex_unlock(&b->send_mu);
    send_scratch_free(&scratch);
    return NULL;
}

static bool send_threads_start(broker_t *b) {
    /* One thread keeps a connection's pipelined sends in order, as RocketMQ's default pool of
     * one does. SYNC_FLUSH blocks a thread per send until the group commit, so it gets a few
     * so that one fsync covers several producers. */
    int n = b->store_cfg.sync_flush ? 8 : 1;
    b->send_threads = cm_calloc((size_t)n, sizeof(pthread_t));
    for (int i = 0; i < n; i++) {
        if (pthread_create(&b->send_threads[i], NULL, send_main, b) != 0) return false;
        b->send_thread_count++;
    }
    return true;
}

static void send_threads_stop(broker_t *b) {
    pthread_mutex_lock(&b->send_mu);
    b->send_stop = true;
    pthread_cond_broadcast(&b->send_cv);
    pthread_mutex_unlock(&b->send_mu);
    for (int i = 0; i < b->send_thread_count; i++)
        pthread_join(b->send_threads[i], NULL);
    b->send_thread_count = 0;
    cm_free(b->send_threads);
    b->send_threads = NULL;
}

/* ---------------------------------------------------------------- dispatch (loop thread) */

/* A send of the read being dispatched waits for the read's end (on_read_end). */
static void read_batch_add(broker_t *b, broker_req_t *req) {
    req->next = NULL;
    if (b->read_tail)
        b->read_tail->next = req;
    else
        b->read_head = req;
    b->read_tail = req;
}

/* True when a read's sends may be stored right here on the loop thread: all single sends,
 * ASYNC_FLUSH (the append never waits for the disk), and no send queued or running, so
 * none overtakes an earlier send of its connection. Saves the two thread hand-overs (to the
 * send thread and back for the reply) that bound a lone producer's rate. */
static bool read_batch_inline(broker_t *b, const broker_req_t *list) {
    if (b->store_cfg.sync_flush) return false;
    for (const broker_req_t *r = list; r; r = r->next)
        if (!broker_send_is_single(b, r)) return false;
    pthread_mutex_lock(&b->send_mu);
    bool idle = !b->send_head && b->send_active == 0;
    pthread_mutex_unlock(&b->send_mu);
    return idle;
}

static void on_read_end(net_conn_t *conn, void *ud) {
    (void)conn;
    broker_t *b = ud;
    broker_req_t *list = b->read_head;
    b->read_head = b->read_tail = NULL;
    if (!list) return;
    if (!read_batch_inline(b, list)) {
        while (list) {
            broker_req_t *next = list->next;
            send_enqueue(b, list);
            list = next;
        }
        return;
    }
    broker_req_t *batch[SEND_BATCH_MAX];
    while (list) {
        size_t n = 0;
        for (; list && n < SEND_BATCH_MAX; list = list->next)
            batch[n++] = list;
        broker_send_many(b, batch, n, &b->loop_scratch);
    }
}

static void on_request(net_conn_t *conn, proto_cmd_t *cmd, void *ud) {
    broker_t *b = ud;
    atomic_fetch_add(&b->counters.requests, 1);
    broker_req_t *req = req_new(b);
    req->cmd = *cmd;
    proto_cmd_init(cmd);
    req->conn = net_conn_ref(conn);
    req->peer = *net_conn_peer(conn);
    cm_strcpy_cut(req->peer_text, sizeof req->peer_text, net_conn_peer_text(conn));
    req->received_ms = cm_mono_ms();
    int32_t code = req->cmd.code;
    /* ready is set (release) after the table is complete, stopping on this thread. */
    if (!atomic_load_explicit(&b->ready, memory_order_acquire) || b->stopping) {
        broker_reply_code(b, req, RMQ_ERR_SERVICE_NOT_AVAILABLE,
                          b->stopping ? "the broker is shutting down" : "the broker is starting");
        return;
    }
    broker_proc_fn *fn = code >= 0 && code < BROKER_MAX_CODE ? b->procs[code] : NULL;
    if (!fn) {
        char remark[64];
        snprintf(remark, sizeof remark, " request type %d not supported", code);
        broker_reply_code(b, req, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, remark);
        return;
    }
    if (b->exec[code] == BROKER_EXEC_SEND)
        read_batch_add(b, req);
    else
        fn(b, req);
}

static void on_open(net_conn_t *conn, void *ud) {
    broker_t *b = ud;
    atomic_fetch_add(&b->counters.connections, 1);
}

static void on_close(net_conn_t *conn, rmq_err_t why, void *ud) {
    broker_t *b = ud;
    atomic_fetch_sub(&b->counters.connections, 1);
    if (why != RMQ_OK && why != RMQ_ERR_NETWORK && why != RMQ_ERR_SHUTDOWN)
        cm_info(&b->log, "closed %s: %s", net_conn_peer_text(conn), rmq_err_name(why));
    /* Once stopping (set on this thread) the metadata tables may be going away. */
    if (b->stopping) return;
    if (b->namesrv) nsrv_conn_closed(b->namesrv, conn);
    if (b->clients) broker_clients_conn_closed(b->clients, conn);
}

/* ---------------------------------------------------------------- service thread */

/* Wakes every second: writes topics.json and subscriptionGroup.json when they changed
 * (topics the first time right after start) and consumer offsets every
 * flushConsumerOffsetInterval. File I/O (and its fsync) stays off the loop and send
 * threads. */
static void *service_main(void *arg) {
    broker_t *b = arg;
    int64_t interval = cm_conf_int(b->conf, "flushConsumerOffsetInterval", true);
    int64_t next_offsets = cm_mono_ms() + interval;
    pthread_mutex_lock(&b->svc_mu);
    while (!b->svc_stop) {
        pthread_mutex_unlock(&b->svc_mu);
        broker_topics_flush(b);
        if (b->subgroups) broker_subgroups_persist(b->subgroups);
        if (cm_mono_ms() >= next_offsets) {
            broker_offsets_persist(b);
            next_offsets = cm_mono_ms() + interval;
        }
        pthread_mutex_lock(&b->svc_mu);
        struct timespec ts = cm_mono_deadline(1000);
        int rc = 0;
        while (!b->svc_stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&b->svc_cv, &b->svc_mu, &ts);
    }
    pthread_mutex_unlock(&b->svc_mu);
    return NULL;
}

/* ---------------------------------------------------------------- new */

/* The store's dispatch hook: parked pulls, and the delivery thread for schedule entries
 * (whose tags code is the due time). */
static void on_dispatch(void *arg, const char *topic, int32_t queue_id, int64_t max_offset,
                        int64_t tags_code, int64_t store_timestamp) {
    broker_t *b = arg;
    broker_hold_on_dispatch(arg, topic, queue_id, max_offset, tags_code, store_timestamp);
    if (strcmp(topic, STORE_SCHEDULE_TOPIC) == 0)
        broker_sched_on_dispatch(atomic_load(&b->sched), tags_code);
    else if (strcmp(topic, BROKER_TIMER_TOPIC) == 0)
        broker_timer_on_dispatch(atomic_load(&b->timer));
}

static void read_identity(broker_t *b) {
    const char *name = cm_conf_str(b->conf, "brokerName", true);
    if (!*name) {
        char host[128] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !*host)
            snprintf(host, sizeof host, "broker");
        name = host;
        snprintf(b->name, sizeof b->name, "%s", host);
    } else {
        snprintf(b->name, sizeof b->name, "%s", name);
    }
    snprintf(b->cluster, sizeof b->cluster, "%s", cm_conf_str(b->conf, "brokerClusterName", true));
    b->broker_id = cm_conf_int(b->conf, "brokerId", true);
    b->auto_create_topic = cm_conf_bool(b->conf, "autoCreateTopicEnable", true);
    b->max_message_size = (int32_t)cm_conf_int(b->conf, "maxMessageSize", true);
    b->send_wait_max_ms = cm_conf_int(b->conf, "waitTimeMillsInSendQueue", true);
    b->sync_master = strcmp(cm_conf_str(b->conf, "brokerRole", true), "SYNC_MASTER") == 0;
}

rmq_broker_t *rmq_broker_new(rmq_conf_t *conf, char *errstr, size_t errstr_size) {
    if (!conf) {
        cm_errstr(errstr, errstr_size, "conf is NULL");
        return NULL;
    }
    broker_t *b = cm_calloc(1, sizeof *b);
    b->conf = conf;
    b->log = cm_conf_logger(conf);
    if (store_config_from_conf(conf, &b->store_cfg) != RMQ_OK) {
        cm_errstr(errstr, errstr_size,
                  "bad store settings (deleteWhen, messageDelayLevel or a "
                  "path too long)");
        cm_free(b);
        return NULL;
    }
    read_identity(b);
    if (!proto_topic_name_valid(b->name) || !proto_topic_name_valid(b->cluster)) {
        cm_errstr(errstr, errstr_size,
                  "brokerName '%s' / brokerClusterName '%s' must be 1-127 chars of "
                  "[%%|a-zA-Z0-9_-] (they are topic names too)",
                  b->name, b->cluster);
        cm_free(b);
        return NULL;
    }
    snprintf(b->config_dir, sizeof b->config_dir, "%s/config", b->store_cfg.root_dir);
    b->store_cfg.on_dispatch = on_dispatch;
    b->store_cfg.dispatch_arg = b;
    pthread_mutex_init(&b->send_mu, NULL);
    pthread_cond_init(&b->send_cv, NULL);
    pthread_mutex_init(&b->svc_mu, NULL);
    cm_cond_init_mono(&b->svc_cv);
    return b;
}

/* ---------------------------------------------------------------- start */

static rmq_err_t fail_start(char *errstr, size_t size, rmq_err_t rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rmq_err_t fail_start(char *errstr, size_t size, rmq_err_t rc, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cm_errstr(errstr, size, "%s", msg);
    return rc;
}

/* Binds the port and sets the advertised address (brokerIP1, else loopback). */
static rmq_err_t listen_and_name(broker_t *b, char *errstr, size_t size) {
    const char *ip = cm_conf_str(b->conf, "brokerIP1", true);
    int port = (int)cm_conf_int(b->conf, "listenPort", true);
    static const net_handler_t proto_handler = {on_request, on_open, on_close, NULL,
                                                on_read_end};
    net_handler_t h = proto_handler;
    h.ud = b;
    rmq_err_t rc = RMQ_OK;
    /* Advertising loopback means only this machine can follow the routes: listen there too. */
    b->server = net_listen(b->loop, *ip ? NULL : "127.0.0.1", port, &h, &rc);
    if (!b->server)
        return fail_start(size ? errstr : NULL, size, RMQ_ERR_NETWORK,
                          "cannot listen on port %d: %s", port, rmq_err_str(rc));
    bool v6 = strchr(*ip ? ip : "", ':') != NULL;
    snprintf(b->addr, sizeof b->addr, v6 ? "[%s]:%d" : "%s:%d", *ip ? ip : "127.0.0.1",
             net_server_port(b->server));
    if (proto_addr_parse(b->addr, &b->store_host) != RMQ_OK)
        return fail_start(errstr, size, RMQ_ERR_BAD_VALUE, "brokerIP1 '%s' is not an IP address",
                          ip);
    return RMQ_OK;
}

static rmq_err_t start_store(broker_t *b, char *errstr, size_t size) {
    char why[256] = "";
    rmq_err_t rc = store_open(&b->store_cfg, &b->log, &b->store, why, sizeof why);
    if (rc != RMQ_OK)
        return fail_start(errstr, size, RMQ_ERR_IO, "cannot open the store at %s: %s",
                          b->store_cfg.root_dir, *why ? why : rmq_err_str(rc));
    return RMQ_OK;
}

static void register_core(broker_t *b) {
    broker_send_register(b);
    broker_pull_register(b);
    broker_offsets_register(b);
    broker_query_register(b);
    broker_admin_register(b);
    broker_topics_register(b);
    broker_sendback_register(b);
    broker_resetoffset_register(b);
}

rmq_err_t rmq_broker_start(rmq_broker_t *b, char *errstr, size_t errstr_size) {
    if (!b) return RMQ_ERR_INVALID_ARG;
    if (b->started || b->store)
        return fail_start(errstr, errstr_size, RMQ_ERR_STATE, "the broker was already started");
    rmq_err_t rc = start_store(b, errstr, errstr_size);
    if (rc != RMQ_OK) return rc;
    net_opts_t opts = {.log = b->log};
    b->loop = net_loop_new(&opts, &rc);
    if (!b->loop) return fail_start(errstr, errstr_size, RMQ_ERR_IO, "cannot start the I/O loop");
    rc = listen_and_name(b, errstr, errstr_size);
    if (rc != RMQ_OK) return rc;
    b->topics = broker_topics_new(b);
    b->offsets = broker_offsets_new(b);
    b->hold = broker_hold_new(b);
    atomic_store(&b->sched, broker_sched_new(b));
    atomic_store(&b->timer, broker_timer_new(b));
    register_core(b);
    if (!send_threads_start(b))
        return fail_start(errstr, errstr_size, RMQ_ERR_IO, "cannot start the send thread");
    broker_meta_start(b);
    b->tx = broker_tx_new(b); /* its check thread asks the producer groups meta tracks */
    /* After the meta tables exist: the service thread persists them too. */
    b->svc_running = pthread_create(&b->svc_thread, NULL, service_main, b) == 0;
    b->started = true;
    atomic_store_explicit(&b->ready, true, memory_order_release);
    cm_info(&b->log, "broker %s (cluster %s) serving at %s, store %s", b->name, b->cluster, b->addr,
            b->store_cfg.root_dir);
    return RMQ_OK;
}

const char *rmq_broker_addr(const rmq_broker_t *b) {
    return b && b->server ? b->addr : NULL;
}

/* ---------------------------------------------------------------- stats */

char *rmq_broker_stats_json(rmq_broker_t *b) {
    if (!b || !b->started) return NULL;
    const broker_counters_t *c = &b->counters;
    cm_buf_t out = CM_BUF_INIT;
    cm_buf_append_str(&out, "{\"brokerName\":");
    proto_json_put_str(&out, b->name, strlen(b->name));
    cm_buf_append_str(&out, ",\"addr\":");
    proto_json_put_str(&out, b->addr, strlen(b->addr));
    cm_buf_printf(&out,
                  ",\"msgsIn\":%lld,\"bytesIn\":%lld,\"msgsOut\":%lld,\"bytesOut\":%lld,"
                  "\"requests\":%lld,\"connections\":%lld,\"sendBusy\":%lld,\"pullsHeld\":%lld,"
                  "\"topics\":%zu,\"groups\":%zu,\"commitLogMinOffset\":%lld,"
                  "\"commitLogMaxOffset\":%lld,\"timerPending\":%lld}",
                  (long long)c->msgs_in, (long long)c->bytes_in, (long long)c->msgs_out,
                  (long long)c->bytes_out, (long long)c->requests, (long long)c->connections,
                  (long long)c->send_busy, (long long)c->pull_held, broker_topics_count(b),
                  b->subgroups ? broker_subgroups_count(b->subgroups) : (size_t)0,
                  (long long)store_min_phys_offset(b->store),
                  (long long)store_max_phys_offset(b->store),
                  (long long)broker_timer_pending(atomic_load(&b->timer)));
    return cm_buf_take_str(&out);
}

/* ---------------------------------------------------------------- destroy */

typedef struct quiesce {
    broker_t *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} quiesce_t;

static void quiesce_on_loop(void *arg) {
    quiesce_t *q = arg;
    q->b->stopping = true;
    pthread_mutex_lock(&q->mu);
    q->done = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Sets stopping on the loop thread and waits for it: from then on the loop thread runs no
 * processor and no connection hook, so the tables behind them can be torn down. */
static void quiesce_loop(broker_t *b) {
    quiesce_t q = {.b = b, .done = false};
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.cv, NULL);
    if (net_loop_post(b->loop, quiesce_on_loop, &q) == RMQ_OK) {
        pthread_mutex_lock(&q.mu);
        while (!q.done)
            pthread_cond_wait(&q.cv, &q.mu);
        pthread_mutex_unlock(&q.mu);
    } else {
        b->stopping = true;
    }
    pthread_cond_destroy(&q.cv);
    pthread_mutex_destroy(&q.mu);
}

static void stop_service_thread(broker_t *b) {
    if (!b->svc_running) return;
    pthread_mutex_lock(&b->svc_mu);
    b->svc_stop = true;
    pthread_cond_signal(&b->svc_cv);
    pthread_mutex_unlock(&b->svc_mu);
    pthread_join(b->svc_thread, NULL);
    b->svc_running = false;
}

void rmq_broker_destroy(rmq_broker_t *b) {
    if (!b) return;
    if (b->server) net_server_close(b->server);
    b->server = NULL;
    if (b->loop) quiesce_loop(b);
    send_threads_stop(b); /* finishes the sends already queued */
    /* No send runs any more: the delivery thread is the last appender (and its dispatches
     * still reach the hold table). */
    broker_sched_destroy(atomic_exchange(&b->sched, NULL));
    broker_timer_destroy(atomic_exchange(&b->timer, NULL));
    broker_tx_destroy(b->tx); /* its check thread appends and asks producers */
    b->tx = NULL;
    broker_hold_destroy(b->hold); /* answers parked pulls */
    b->hold = NULL;
    stop_service_thread(b); /* before the meta tables it writes go away */
    if (b->started) broker_meta_stop(b);
    if (b->offsets) broker_offsets_persist(b);
    broker_topics_flush(b);
    broker_offsets_destroy(b->offsets);
    broker_topics_destroy(b->topics);
    if (b->loop) net_loop_destroy(b->loop);
    store_close(b->store);
    req_list_free(b->req_local);
    send_scratch_free(&b->loop_scratch);
    req_list_free(atomic_load(&b->req_returned));
    pthread_mutex_destroy(&b->send_mu);
    pthread_cond_destroy(&b->send_cv);
    pthread_mutex_destroy(&b->svc_mu);
    pthread_cond_destroy(&b->svc_cv);
    rmq_conf_destroy(b->conf);
    cm_free(b);
}
