/* lib/broker/register.c: the metadata managers live inside the broker — their processors,
 * timers (broker and client-channel expiry, registration; the service thread in broker.c
 * writes subscriptionGroup.json), the broker's registration in its own name-server tables
 * (in-process) and with the name servers of namesrvAddr (over lib/net),
 * NOTIFY_CONSUMER_IDS_CHANGED, and the teardown.
 *
 * Threads. Tables are thread-safe on their own. Everything about the name-server peers
 * (connections, in-flight registrations, timers) happens on the loop thread; other threads
 * reach it with net_loop_post(). The registrar outlives broker_meta_stop() when lib/net still
 * owes it callbacks (a registration answer, a connection's on_close): it is reference
 * counted and freed by whichever comes last, and after stop those callbacks touch nothing
 * but the registrar itself. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "net/net.h"

/* BrokerOuterAPI's registerBrokerTimeoutMills and the wait for UNREGISTER_BROKER answers. */
#define REGISTER_TIMEOUT_MS 6000
#define UNREGISTER_WAIT_MS 3000
/* How often a changed subscription-group table is written (coalesces auto-creations). */

typedef struct peer {
    char addr[128];
    net_conn_t *conn; /* our reference; NULL while not connected */
    bool in_flight;   /* a REGISTER_BROKER awaits its answer */
    bool again;       /* asked to register while one was in flight */
    bool registered;  /* the last registration was answered SUCCESS */
} peer_t;

typedef struct registrar {
    atomic_int refs; /* the broker's + one per open peer connection + per pending callback */
    broker_t *b;     /* NULL once stopped (loop thread) */
    cm_logger_t log;
    broker_meta_tables_t tables;
    pthread_mutex_t self_mu; /* serializes in-process registrations (version order) */

    /* loop thread only */
    peer_t *peers;
    size_t n_peers;
    net_timer_t *t_register, *t_nsrv_scan, *t_client_scan;
    int64_t register_period_ms;
    bool stopping;

    /* broker_meta_stop() waits here for the stop step and the UNREGISTER answers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop_ran;
    int unreg_pending;
} registrar_t;

static void registrar_release(registrar_t *r) {
    if (atomic_fetch_sub(&r->refs, 1) != 1) return;
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].conn) net_conn_unref(r->peers[i].conn);
    cm_free(r->peers);
    pthread_mutex_destroy(&r->self_mu);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    cm_free(r);
}

/* ---------------------------------------------------------------- table hooks */

static void *conn_ref(void *conn) {
    return net_conn_ref(conn);
}

static void conn_unref(void *conn) {
    net_conn_unref(conn);
}

static const broker_conn_ops_t conn_ops = {conn_ref, conn_unref};

/* NOTIFY_CONSUMER_IDS_CHANGED (40): the members rebalance at once instead of at their next
 * 20 s rebalance. */
static void notify_ids_changed(void *arg, void *conn, const char *group) {
    broker_t *b = arg;
    proto_cmd_t cmd;
    proto_cmd_init(&cmd);
    proto_cmd_request(&cmd, PROTO_NOTIFY_CONSUMER_IDS_CHANGED, 0);
    cmd.language = PROTO_LANG_JAVA;
    proto_group_req_t h = {group};
    proto_group_req_encode(&h, &cmd.ext);
    if (!broker_send_oneway(b, conn, &cmd))
        cm_debug(&b->log, "NOTIFY_CONSUMER_IDS_CHANGED (%s) to %s not sent", group,
                 net_conn_peer_text(conn));
}

static void ensure_retry_topic(void *arg, const char *topic, int32_t queue_nums, int32_t perm,
                               int32_t sys_flag) {
    broker_topics_ensure(arg, topic, queue_nums, perm, sys_flag);
}

/* Closes connections a scan dropped and releases the references it handed over. */
static void close_all(void **conns, size_t n) {
    for (size_t i = 0; i < n; i++) {
        net_conn_close(conns[i]);
        net_conn_unref(conns[i]);
    }
    cm_free(conns);
}

/* ---------------------------------------------------------------- processors (I/O thread) */

static void proc_clients(broker_t *b, broker_req_t *req) {
    registrar_t *r = b->registrar;
    proto_cmd_t resp;
    proto_cmd_init(&resp);
    if (broker_meta_handle(&r->tables, req->conn, &req->cmd, &resp))
        broker_reply(b, req, &resp);
    else
        broker_reply_code(b, req, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, NULL);
}

static void proc_namesrv(broker_t *b, broker_req_t *req) {
    proto_cmd_t resp;
    proto_cmd_init(&resp);
    if (nsrv_handle(b->namesrv, req->conn, &req->cmd, &resp))
        broker_reply(b, req, &resp);
    else
        broker_reply_code(b, req, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, NULL);
}

static const int32_t client_codes[] = {
    PROTO_HEART_BEAT,    PROTO_UNREGISTER_CLIENT, PROTO_GET_CONSUMER_LIST_BY_GROUP,
    PROTO_LOCK_BATCH_MQ, PROTO_UNLOCK_BATCH_MQ,   PROTO_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP};
static const int32_t namesrv_codes[] = {
    PROTO_PUT_KV_CONFIG,           PROTO_GET_KV_CONFIG,
    PROTO_DELETE_KV_CONFIG,        PROTO_REGISTER_BROKER,
    PROTO_UNREGISTER_BROKER,       PROTO_GET_ROUTEINFO_BY_TOPIC,
    PROTO_GET_BROKER_CLUSTER_INFO, PROTO_GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
    PROTO_GET_TOPICS_BY_CLUSTER};

/* ---------------------------------------------------------------- registration */

/* haServerAddr as a 4.9.8 broker announces it: its host and haListenPort (listenPort + 1).
 * No slave replicates from us; the field is required and name servers hand it to slaves. */
static void ha_addr(const broker_t *b, char *dst, size_t size) {
    const char *colon = strrchr(b->addr, ':');
    if (!colon) {
        snprintf(dst, size, "%s", b->addr);
        return;
    }
    snprintf(dst, size, "%.*s:%d", (int)(colon - b->addr), b->addr, atoi(colon + 1) + 1);
}

/* The broker in its own name-server tables, with no network hop, so its port answers
 * GET_ROUTEINFO_BY_TOPIC for its topics. Any thread. */
static void register_self(broker_t *b) {
    registrar_t *r = b->registrar;
    char ha[160];
    ha_addr(b, ha, sizeof ha);
    pthread_mutex_lock(&r->self_mu);
    proto_register_broker_body_t body = {0};
    broker_topics_register_body(b, &body);
    nsrv_reg_t reg = {b->cluster, b->name, b->addr, ha, b->broker_id, &body};
    nsrv_reg_result_t res;
    nsrv_register(b->namesrv, &reg, NULL, &res);
    pthread_mutex_unlock(&r->self_mu);
    proto_register_broker_body_free(&body);
}

static void peer_register(registrar_t *r, size_t i);

static void on_peer_close(net_conn_t *conn, rmq_err_t why, void *ud) {
    registrar_t *r = ud;
    for (size_t i = 0; i < r->n_peers; i++) {
        peer_t *p = &r->peers[i];
        if (p->conn != conn) continue;
        if (!r->stopping)
            cm_info(&r->log, "name server %s: connection closed (%s)", p->addr, rmq_err_name(why));
        net_conn_unref(p->conn);
        p->conn = NULL;
        p->registered = false;
    }
    registrar_release(r); /* the reference net_connect() took for this connection */
}

static const net_handler_t peer_handler = {NULL, NULL, on_peer_close, NULL, NULL};

/* The connection to peer i, connecting when there is none (requests queue until it is up). */
static net_conn_t *peer_conn(registrar_t *r, peer_t *p) {
    if (p->conn && net_conn_is_open(p->conn)) return p->conn;
    if (p->conn) net_conn_unref(p->conn);
    p->conn = NULL;
    net_handler_t h = peer_handler;
    h.ud = r;
    rmq_err_t err = RMQ_OK;
    atomic_fetch_add(&r->refs, 1);
    p->conn = net_connect(r->b->loop, p->addr, &h, 0, &err);
    if (!p->conn) {
        registrar_release(r);
        cm_warn(&r->log, "name server %s: cannot connect: %s", p->addr, rmq_err_str(err));
    }
    return p->conn;
}

/* The argument of a registration's response callback. */
typedef struct reg_call {
    registrar_t *r;
    size_t peer;
} reg_call_t;

static void on_registered(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    reg_call_t *call = arg;
    registrar_t *r = call->r;
    peer_t *p = &r->peers[call->peer];
    p->in_flight = false;
    p->registered = err == RMQ_OK && resp->code == 0;
    if (!r->stopping) {
        if (err != RMQ_OK)
            cm_warn(&r->log, "register with name server %s: %s", p->addr, rmq_err_name(err));
        else if (resp->code != 0)
            cm_warn(&r->log, "register with name server %s: code %d %s", p->addr, resp->code,
                    resp->remark ? resp->remark : "");
        if (p->again) {
            p->again = false;
            peer_register(r, call->peer);
        }
    }
    cm_free(call);
    registrar_release(r);
}

/* REGISTER_BROKER as BrokerOuterAPI.registerBrokerAll sends it: the whole topic table, its
 * data version, bodyCrc32 over the body. Loop thread. */
static void build_register(broker_t *b, proto_cmd_t *cmd) {
    char ha[160];
    ha_addr(b, ha, sizeof ha);
    proto_register_broker_body_t body = {0};
    broker_topics_register_body(b, &body);
    cm_buf_t out = CM_BUF_INIT;
    proto_register_broker_body_encode(&body, &out);
    proto_register_broker_body_free(&body);
    proto_cmd_init(cmd);
    proto_cmd_request(cmd, PROTO_REGISTER_BROKER, 0);
    cmd->language = PROTO_LANG_JAVA;
    proto_register_broker_req_t h = {.broker_name = b->name,
                                     .broker_addr = b->addr,
                                     .cluster_name = b->cluster,
                                     .ha_server_addr = ha,
                                     .broker_id = b->broker_id,
                                     .compressed = false,
                                     .body_crc32 = proto_body_crc(out.data, out.len)};
    proto_register_broker_req_encode(&h, &cmd->ext);
    proto_cmd_take_body(cmd, out.data, out.len);
}

static void peer_register(registrar_t *r, size_t i) {
    peer_t *p = &r->peers[i];
    if (r->stopping) return;
    if (p->in_flight) {
        p->again = true; /* the answer comes first; then the newest table goes */
        return;
    }
    net_conn_t *conn = peer_conn(r, p);
    if (!conn) return;
    proto_cmd_t cmd;
    build_register(r->b, &cmd);
    reg_call_t *call = cm_calloc(1, sizeof *call);
    *call = (reg_call_t){r, i};
    atomic_fetch_add(&r->refs, 1);
    rmq_err_t rc = net_conn_request(conn, &cmd, REGISTER_TIMEOUT_MS, on_registered, call);
    if (rc != RMQ_OK) {
        cm_warn(&r->log, "register with name server %s: %s", p->addr, rmq_err_name(rc));
        cm_free(call);
        registrar_release(r);
        return;
    }
    p->in_flight = true;
}

static void register_peers(registrar_t *r) {
    for (size_t i = 0; i < r->n_peers; i++)
        peer_register(r, i);
}

/* net_loop_post() target of broker_meta_topics_changed(). */
static void register_peers_posted(void *arg) {
    registrar_t *r = arg;
    register_peers(r);
    registrar_release(r);
}

/* ---------------------------------------------------------------- timers (loop thread) */

static void on_register_timer(net_loop_t *loop, rmq_err_t err, void *arg) {
    registrar_t *r = arg;
    if (err != RMQ_OK || r->stopping) return;
    register_self(r->b); /* keeps the broker's own entry fresh against the expiry scan */
    register_peers(r);
}

static void on_nsrv_scan(net_loop_t *loop, rmq_err_t err, void *arg) {
    registrar_t *r = arg;
    if (err != RMQ_OK || r->stopping) return;
    void **conns;
    size_t n;
    nsrv_expire(r->b->namesrv, cm_mono_ms(), &conns, &n);
    close_all(conns, n);
}

static void on_client_scan(net_loop_t *loop, rmq_err_t err, void *arg) {
    registrar_t *r = arg;
    if (err != RMQ_OK || r->stopping) return;
    void **conns;
    size_t n;
    broker_clients_expire(r->b->clients, cm_mono_ms(), &conns, &n);
    close_all(conns, n);
}

static void start_on_loop(void *arg) {
    registrar_t *r = arg;
    net_loop_t *loop = r->b->loop;
    r->t_nsrv_scan =
        net_timer_start(loop, NSRV_SCAN_INTERVAL_MS, NSRV_SCAN_INTERVAL_MS, on_nsrv_scan, r);
    r->t_client_scan = net_timer_start(loop, BROKER_CLIENT_SCAN_INTERVAL_MS,
                                       BROKER_CLIENT_SCAN_INTERVAL_MS, on_client_scan, r);
    r->t_register =
        net_timer_start(loop, r->register_period_ms, r->register_period_ms, on_register_timer, r);
    register_peers(r); /* at start, as BrokerController.start() does */
    registrar_release(r);
}

/* ---------------------------------------------------------------- start */

/* namesrvAddr "host:port;host:port" into peers, without our own address (the in-process
 * registration covers it). */
static void parse_peers(registrar_t *r, const char *list, const char *self) {
    char *copy = cm_strdup(list ? list : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = '\0';
        if (!len || strcmp(tok, self) == 0 || len >= sizeof r->peers[0].addr) continue;
        r->peers = cm_realloc(r->peers, (r->n_peers + 1) * sizeof r->peers[0]);
        r->peers[r->n_peers] = (peer_t){0};
        snprintf(r->peers[r->n_peers].addr, sizeof r->peers[0].addr, "%s", tok);
        r->n_peers++;
    }
    cm_free(copy);
}

void broker_meta_start(broker_t *b) {
    registrar_t *r = cm_calloc(1, sizeof *r);
    atomic_init(&r->refs, 1);
    r->b = b;
    r->log = b->log;
    pthread_mutex_init(&r->self_mu, NULL);
    pthread_mutex_init(&r->mu, NULL);
    cm_cond_init_mono(&r->cv);
    r->register_period_ms = cm_conf_int(b->conf, "registerNameServerPeriod", true);
    parse_peers(r, cm_conf_str(b->conf, "namesrvAddr", true), b->addr);

    char kv_path[1100], sg_path[1100];
    broker_cfg_path(b, "kvConfig.json", kv_path, sizeof kv_path);
    broker_cfg_path(b, "subscriptionGroup.json", sg_path, sizeof sg_path);
    nsrv_opts_t nopts = {.log = &b->log, .kv_path = kv_path, .conn_ops = &conn_ops};
    b->namesrv = nsrv_new(&nopts);
    b->clients = broker_clients_new(&b->log, cm_conf_int(b->conf, "channelExpiredTimeout", true),
                                    &conn_ops, notify_ids_changed, b);
    b->subgroups = broker_subgroups_new(
        sg_path, cm_conf_bool(b->conf, "autoCreateSubscriptionGroup", true), &b->log);
    b->locks = broker_locks_new(0);
    r->tables = (broker_meta_tables_t){b->clients, b->subgroups, b->locks, ensure_retry_topic, b};
    b->registrar = r;

    for (size_t i = 0; i < sizeof client_codes / sizeof client_codes[0]; i++)
        broker_set_processor(b, client_codes[i], proc_clients, BROKER_EXEC_IO);
    for (size_t i = 0; i < sizeof namesrv_codes / sizeof namesrv_codes[0]; i++)
        broker_set_processor(b, namesrv_codes[i], proc_namesrv, BROKER_EXEC_IO);

    register_self(b);
    atomic_fetch_add(&r->refs, 1);
    if (net_loop_post(b->loop, start_on_loop, r) != RMQ_OK) {
        registrar_release(r);
        cm_error(&b->log, "metadata timers not started: the I/O loop is stopping");
    }
    if (r->n_peers)
        cm_info(&b->log, "registering with %zu name server(s) every %lld ms", r->n_peers,
                (long long)r->register_period_ms);
}

void broker_meta_topics_changed(broker_t *b) {
    registrar_t *r = b->registrar;
    if (!r) return;
    register_self(b);
    if (!r->n_peers) return;
    atomic_fetch_add(&r->refs, 1);
    if (net_loop_post(b->loop, register_peers_posted, r) != RMQ_OK) registrar_release(r);
}

/* ---------------------------------------------------------------- stop */

static void on_unregistered(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    reg_call_t *call = arg;
    registrar_t *r = call->r;
    if (err != RMQ_OK || resp->code != 0)
        cm_warn(&r->log, "unregister from name server %s: %s", r->peers[call->peer].addr,
                err != RMQ_OK ? rmq_err_name(err) : "refused");
    pthread_mutex_lock(&r->mu);
    r->unreg_pending--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    cm_free(call);
    registrar_release(r);
}

static void unregister_peer(registrar_t *r, size_t i) {
    peer_t *p = &r->peers[i];
    broker_t *b = r->b;
    if (!p->registered || !p->conn || !net_conn_is_open(p->conn)) return;
    proto_cmd_t cmd;
    proto_cmd_init(&cmd);
    proto_cmd_request(&cmd, PROTO_UNREGISTER_BROKER, 0);
    cmd.language = PROTO_LANG_JAVA;
    proto_unregister_broker_req_t h = {b->name, b->addr, b->cluster, b->broker_id};
    proto_unregister_broker_req_encode(&h, &cmd.ext);
    reg_call_t *call = cm_calloc(1, sizeof *call);
    *call = (reg_call_t){r, i};
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_lock(&r->mu);
    r->unreg_pending++;
    pthread_mutex_unlock(&r->mu);
    if (net_conn_request(p->conn, &cmd, UNREGISTER_WAIT_MS, on_unregistered, call) != RMQ_OK) {
        pthread_mutex_lock(&r->mu);
        r->unreg_pending--;
        pthread_mutex_unlock(&r->mu);
        cm_free(call);
        registrar_release(r);
    }
}

/* Stops the timers and sends UNREGISTER_BROKER where registered. */
static void stop_on_loop(void *arg) {
    registrar_t *r = arg;
    r->stopping = true;
    net_timer_t **timers[] = {&r->t_register, &r->t_nsrv_scan, &r->t_client_scan};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        if (*timers[i]) net_timer_cancel(*timers[i]);
        *timers[i] = NULL;
    }
    for (size_t i = 0; i < r->n_peers; i++)
        unregister_peer(r, i);
    pthread_mutex_lock(&r->mu);
    r->stop_ran = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Closes the peer connections (their on_close releases them) and drops the broker's
 * reference: from here on the registrar no longer knows the broker. */
static void close_on_loop(void *arg) {
    registrar_t *r = arg;
    r->b = NULL;
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].conn) net_conn_close(r->peers[i].conn);
    registrar_release(r);
}

/* Waits for stop_on_loop and, up to UNREGISTER_WAIT_MS, for the name servers' answers. */
static void wait_stopped(registrar_t *r) {
    struct timespec until = cm_mono_deadline(UNREGISTER_WAIT_MS);
    pthread_mutex_lock(&r->mu);
    while (!r->stop_ran)
        pthread_cond_wait(&r->cv, &r->mu);
    int rc = 0;
    while (r->unreg_pending > 0 && rc == 0)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
    pthread_mutex_unlock(&r->mu);
}

void broker_meta_stop(broker_t *b) {
    registrar_t *r = b->registrar;
    if (r) {
        if (net_loop_post(b->loop, stop_on_loop, r) == RMQ_OK) {
            wait_stopped(r);
            if (net_loop_post(b->loop, close_on_loop, r) != RMQ_OK) registrar_release(r);
        } else {
            /* Against the contract (stop runs while the loop does): timers may still be
             * armed, so the registrar is left alive for their last call rather than freed. */
            cm_error(&b->log, "metadata stop: the I/O loop is already stopping");
        }
        b->registrar = NULL;
    }
    /* No processor or connection hook runs any more (the core set stopping on the loop
     * thread first), and the timers are cancelled: the tables can go. */
    nsrv_destroy(b->namesrv);
    broker_clients_destroy(b->clients);
    broker_subgroups_destroy(b->subgroups); /* writes pending changes */
    broker_locks_destroy(b->locks);
    b->namesrv = NULL;
    b->clients = NULL;
    b->subgroups = NULL;
    b->locks = NULL;
}
