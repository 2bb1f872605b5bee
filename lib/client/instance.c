/* Client instances: one per client id in a process (clientIP@instanceName), shared by every
 * producer and consumer that names it, as MQClientInstance is in Java. An instance owns the
 * net loop, the callback pool, connections, the route cache, the periodic route refresh and
 * heartbeats (client.md §1-§2), and passes brokers' NOTIFY_CONSUMER_IDS_CHANGED to the
 * consumer of that group and CHECK_TRANSACTION_STATE to the producer of the message's group. */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"

#define POOL_THREADS 2

struct client_instance {
    char *client_id;
    int refs; /* guarded by the registry lock */
    cm_logger_t log;
    net_loop_t *loop;
    client_pool_t *pool;
    client_faults_t *faults;
    proto_uniq_gen_t *uniq;
    int64_t poll_ms, heartbeat_ms, api_timeout_ms;

    pthread_mutex_t mu; /* guards everything below */
    proto_strlist_t namesrv;
    size_t namesrv_cur;  /* the name server in use until it fails */
    cm_map_t *conns;     /* "ip:port" -> net_conn_t (a reference) */
    cm_map_t *routes;    /* topic -> client_pub_t (a reference) */
    cm_map_t *masters;   /* broker name -> master address (owned string) */
    cm_map_t *groups;    /* producer group -> producer_reg_t (owned) */
    cm_map_t *consumers; /* consumer group -> consumer_reg_t (owned) */
    net_timer_t *timers[2];
    bool refresh_queued, heartbeat_queued; /* a periodic job waits in the pool */
    int64_t reconnect_heartbeat_at;        /* mono ms of the last heartbeat a reconnect queued */
    bool stopping;
};

/* The one process-wide table the conventions allow: client id -> instance. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static cm_map_t *registry;

typedef struct producer_reg {
    client_tx_check_fn *tx_check;
    void *opaque;
} producer_reg_t;

typedef struct consumer_reg {
    client_consumer_hooks_t hooks;
    void *opaque;
} consumer_reg_t;

/* Heartbeats are sent while the instance has any producer or consumer group. Caller holds
 * mu. */
static bool has_groups(const client_instance_t *ci) {
    return cm_map_count(ci->groups) > 0 || cm_map_count(ci->consumers) > 0;
}

/* ---------------------------------------------------------------- identity */

/* The first non-loopback IPv4 address, as Java's RemotingUtil.getLocalAddress prefers. */
static void local_ip(char *dst, size_t size) {
    snprintf(dst, size, "127.0.0.1");
    struct ifaddrs *all = NULL;
    if (getifaddrs(&all) != 0) return;
    for (struct ifaddrs *i = all; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        const uint8_t *b = (const uint8_t *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if (b[0] == 127) continue;
        snprintf(dst, size, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        break;
    }
    freeifaddrs(all);
}

static char *make_client_id(const rmq_conf_t *conf, char *ip, size_t ip_size) {
    const char *conf_ip = cm_conf_str(conf, "clientIP", false);
    if (*conf_ip)
        snprintf(ip, ip_size, "%s", conf_ip);
    else
        local_ip(ip, ip_size);
    const char *name = cm_conf_str(conf, "instanceName", false);
    char generated[64];
    if (strcmp(name, "DEFAULT") == 0) {
        /* Java's changeInstanceNameToPID: every DEFAULT producer gets its own instance. */
        snprintf(generated, sizeof generated, "%d#%lld", (int)getpid(), (long long)cm_mono_ns());
        name = generated;
    }
    const char *unit = cm_conf_str(conf, "unitName", false);
    return *unit ? cm_sprintf("%s@%s@%s", ip, name, unit) : cm_sprintf("%s@%s", ip, name);
}

/* ---------------------------------------------------------------- connections */

static void unref_conn(void *c) {
    net_conn_unref(c);
}

/* The open connection to addr with a reference for the caller, or NULL. Caller holds mu. */
static net_conn_t *open_conn(client_instance_t *ci, const char *addr) {
    net_conn_t *c = cm_map_get(ci->conns, addr);
    return c && net_conn_is_open(c) ? net_conn_ref(c) : NULL;
}

/* Loop thread: RESET_CONSUMER_CLIENT_OFFSET (oneway) goes to the group's consumer. */
static void reset_offset(client_instance_t *ci, const proto_cmd_t *req) {
    proto_reset_offset_req_t h;
    if (proto_reset_offset_req_decode(&req->ext, &h, NULL) != RMQ_OK) return;
    pthread_mutex_lock(&ci->mu);
    consumer_reg_t *r = cm_map_get(ci->consumers, h.group);
    if (r && r->hooks.reset_offset)
        r->hooks.reset_offset(r->opaque, h.topic, req->body, req->body_len);
    pthread_mutex_unlock(&ci->mu);
}

/* Loop thread: CHECK_TRANSACTION_STATE goes to the producer of the group its message names
 * (PGROUP), as MQClientInstance.selectProducer picks it; none: dropped, as Java drops it. */
static void dispatch_tx_check(client_instance_t *ci, net_conn_t *conn, proto_cmd_t *req) {
    proto_record_t rec;
    const char *group;
    size_t len;
    if (proto_record_decode(req->body, req->body_len, false, &rec) != RMQ_OK ||
        !proto_props_find(rec.props, (size_t)rec.props_len, PROP_PGROUP, &group, &len))
        return;
    char *name = cm_strndup(group, len);
    pthread_mutex_lock(&ci->mu);
    producer_reg_t *r = cm_map_get(ci->groups, name);
    if (r && r->tx_check) r->tx_check(r->opaque, conn, req);
    pthread_mutex_unlock(&ci->mu);
    if (!r)
        cm_debug(&ci->log, "client %s: transaction check for group %s, which has no producer here",
                 ci->client_id, name);
    cm_free(name);
}

/* Loop thread: CONSUME_MESSAGE_DIRECTLY goes to the push consumer of its group, which answers
 * it from its consume pool; with none (or one not running), SYSTEM_ERROR at once, with the
 * remark ClientRemotingProcessor gives. */
static void dispatch_consume_directly(client_instance_t *ci, net_conn_t *conn, proto_cmd_t *req) {
    proto_consume_direct_req_t h;
    if (proto_consume_direct_req_decode(&req->ext, &h, NULL) != RMQ_OK) h.consumer_group = "";
    char *group = cm_strdup(h.consumer_group); /* h points into req, which a hook may take */
    bool taken = false;
    pthread_mutex_lock(&ci->mu);
    consumer_reg_t *r = cm_map_get(ci->consumers, group);
    if (r && r->hooks.consume_directly) taken = r->hooks.consume_directly(r->opaque, conn, req);
    pthread_mutex_unlock(&ci->mu);
    if (!taken && !proto_cmd_is_oneway(req)) {
        char *remark = cm_sprintf("The Consumer Group <%s> not exist in this consumer", group);
        proto_cmd_t resp;
        proto_cmd_response(&resp, req, RMQ_ERR_SYSTEM_ERROR, remark);
        net_conn_send(conn, &resp);
        cm_free(remark);
    }
    cm_free(group);
}

/* Loop thread: requests brokers send to clients. NOTIFY_CONSUMER_IDS_CHANGED and
 * RESET_CONSUMER_CLIENT_OFFSET (both oneway) and CONSUME_MESSAGE_DIRECTLY go to the group's
 * consumer, CHECK_TRANSACTION_STATE (oneway) to a producer of the message's group; every other
 * request gets REQUEST_CODE_NOT_SUPPORTED, as before. */
static void on_broker_request(net_conn_t *conn, proto_cmd_t *req, void *ud) {
    client_instance_t *ci = ud;
    if (req->code == PROTO_CHECK_TRANSACTION_STATE) {
        dispatch_tx_check(ci, conn, req);
        return;
    }
    if (req->code == PROTO_NOTIFY_CONSUMER_IDS_CHANGED) {
        proto_group_req_t h;
        if (proto_group_req_decode(&req->ext, &h, NULL) == RMQ_OK && h.consumer_group) {
            pthread_mutex_lock(&ci->mu);
            consumer_reg_t *r = cm_map_get(ci->consumers, h.consumer_group);
            if (r && r->hooks.ids_changed) r->hooks.ids_changed(r->opaque);
            pthread_mutex_unlock(&ci->mu);
        }
        return;
    }
    if (req->code == PROTO_RESET_CONSUMER_CLIENT_OFFSET) {
        reset_offset(ci, req);
        return;
    }
    if (req->code == PROTO_CONSUME_MESSAGE_DIRECTLY) {
        dispatch_consume_directly(ci, conn, req);
        return;
    }
    if (proto_cmd_is_oneway(req)) return;
    char remark[64];
    snprintf(remark, sizeof remark, " request type %d not supported", (int)req->code);
    proto_cmd_t resp;
    proto_cmd_response(&resp, req, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, remark);
    net_conn_send(conn, &resp);
}

static void queue_heartbeat(client_instance_t *ci);

/* No lib/net call is made under mu: net may wait for its loop thread, whose timer callbacks
 * take mu. */
net_conn_t *client_instance_conn(client_instance_t *ci, const char *addr, rmq_err_t *err) {
    const net_handler_t handler = {.on_request = on_broker_request, .ud = ci};
    pthread_mutex_lock(&ci->mu);
    bool stopping = ci->stopping;
    net_conn_t *c = stopping ? NULL : open_conn(ci, addr);
    pthread_mutex_unlock(&ci->mu);
    if (c) return c;
    if (stopping) {
        *err = RMQ_ERR_SHUTDOWN;
        return NULL;
    }
    net_conn_t *fresh = net_connect(ci->loop, addr, &handler, 0, err);
    if (!fresh) return NULL;
    net_conn_t *old = NULL;
    pthread_mutex_lock(&ci->mu);
    c = open_conn(ci, addr); /* another thread may have connected meanwhile */
    if (!c) {
        old = cm_map_take(ci->conns, addr);
        cm_map_put(ci->conns, addr, net_conn_ref(fresh));
        /* A reconnect: the broker forgot this client's groups when the old connection
         * closed, so the rest of a consumer group would not see it until the next periodic
         * heartbeat (30 s). Announce them again now — at most once a second: a connection
         * to a dead broker fails after connect returns, and the heartbeat reconnects. */
        int64_t now = cm_mono_ms();
        if (old && has_groups(ci) && now - ci->reconnect_heartbeat_at >= 1000) {
            ci->reconnect_heartbeat_at = now;
            queue_heartbeat(ci);
        }
    }
    pthread_mutex_unlock(&ci->mu);
    if (old) net_conn_unref(old);
    if (!c) return fresh;
    net_conn_close(fresh);
    net_conn_unref(fresh);
    return c;
}

/* ---------------------------------------------------------------- name servers */

static char *current_namesrv(client_instance_t *ci, size_t *idx) {
    pthread_mutex_lock(&ci->mu);
    *idx = ci->namesrv_cur;
    char *addr = cm_strdup(ci->namesrv.items[*idx]);
    pthread_mutex_unlock(&ci->mu);
    return addr;
}

/* The name server at idx failed: move on to the next one (unless someone already did). */
static void namesrv_failed(client_instance_t *ci, size_t idx) {
    pthread_mutex_lock(&ci->mu);
    if (ci->namesrv_cur == idx) ci->namesrv_cur = (idx + 1) % ci->namesrv.count;
    pthread_mutex_unlock(&ci->mu);
}

/* GET_ROUTEINFO_BY_TOPIC, trying each name server once while time remains. RMQ_OK with
 * *route filled, RMQ_ERR_TOPIC_NOT_EXIST, a broker code, or the last network error. */
static rmq_err_t fetch_route(client_instance_t *ci, const char *topic, int64_t timeout_ms,
                             proto_topic_route_t *route) {
    int64_t deadline = cm_mono_ms() + timeout_ms;
    rmq_err_t err = RMQ_ERR_TIMEOUT;
    for (size_t tries = 0; tries < ci->namesrv.count; tries++) {
        int64_t left = deadline - cm_mono_ms();
        if (left <= 0) return RMQ_ERR_TIMEOUT;
        size_t idx;
        char *addr = current_namesrv(ci, &idx);
        net_conn_t *c = client_instance_conn(ci, addr, &err);
        cm_free(addr);
        if (!c) {
            if (err == RMQ_ERR_SHUTDOWN) return err;
            namesrv_failed(ci, idx);
            continue;
        }
        proto_cmd_t req, resp;
        proto_cmd_request(&req, PROTO_GET_ROUTEINFO_BY_TOPIC, 0);
        proto_route_req_t h;
        proto_route_req_init(&h);
        h.topic = topic;
        proto_route_req_encode(&h, &req.ext);
        err = net_conn_request_sync(c, &req, left, &resp);
        net_conn_unref(c);
        if (err == RMQ_ERR_NETWORK || err == RMQ_ERR_TIMEOUT) {
            namesrv_failed(ci, idx);
            continue;
        }
        if (err) return err;
        err = resp.code == 0 ? proto_topic_route_decode(resp.body, resp.body_len, route)
                             : (rmq_err_t)resp.code;
        proto_cmd_free(&resp);
        return err;
    }
    return err;
}

/* ---------------------------------------------------------------- route cache */

static void unref_pub(void *p) {
    client_pub_unref(p);
}

static void heartbeat_job(void *arg);

/* Remembers p's masters; true when one of them was not known before (it needs a heartbeat).
 * Caller holds mu. */
static bool learn_masters(client_instance_t *ci, const client_pub_t *p) {
    bool news = false;
    for (size_t i = 0; i < p->route.broker_count; i++) {
        const proto_broker_data_t *b = &p->route.brokers[i];
        const char *addr = proto_broker_data_addr(b, 0);
        if (!addr || !b->broker_name) continue;
        const char *known = cm_map_get(ci->masters, b->broker_name);
        if (known && strcmp(known, addr) == 0) continue;
        cm_map_put(ci->masters, b->broker_name, cm_strdup(addr));
        news = true;
    }
    return news;
}

static void queue_heartbeat(client_instance_t *ci) {
    if (ci->heartbeat_queued || ci->stopping) return;
    if (client_pool_post(ci->pool, heartbeat_job, ci) == RMQ_OK) ci->heartbeat_queued = true;
}

/* Caches p (taking the caller's reference) under topic and returns a new reference. */
static client_pub_t *store_pub(client_instance_t *ci, const char *topic, client_pub_t *p) {
    pthread_mutex_lock(&ci->mu);
    if (learn_masters(ci, p) && has_groups(ci)) queue_heartbeat(ci);
    cm_map_put(ci->routes, topic, p);
    client_pub_ref(p);
    pthread_mutex_unlock(&ci->mu);
    return p;
}

rmq_err_t client_instance_pub(client_instance_t *ci, const char *topic, const char *default_topic,
                              int default_queues, int64_t timeout_ms, client_pub_t **out) {
    *out = NULL;
    pthread_mutex_lock(&ci->mu);
    client_pub_t *p = cm_map_get(ci->routes, topic);
    if (p && p->count > 0) *out = client_pub_ref(p);
    pthread_mutex_unlock(&ci->mu);
    if (*out) return RMQ_OK;

    int64_t deadline = cm_mono_ms() + timeout_ms;
    proto_topic_route_t route = {0};
    rmq_err_t err = fetch_route(ci, topic, timeout_ms, &route);
    if (err == RMQ_OK) {
        p = store_pub(ci, topic, client_pub_from_route(&route, 0));
    } else if (err == RMQ_ERR_TOPIC_NOT_EXIST && default_topic && *default_topic) {
        /* Unknown topic: send along createTopicKey's route; the broker creates it. */
        proto_topic_route_free(&route);
        memset(&route, 0, sizeof route);
        int64_t left = deadline - cm_mono_ms();
        err = left > 0 ? fetch_route(ci, default_topic, left, &route) : RMQ_ERR_TIMEOUT;
        if (err == RMQ_OK) p = store_pub(ci, topic, client_pub_from_route(&route, default_queues));
    }
    proto_topic_route_free(&route);
    if (err == RMQ_ERR_TOPIC_NOT_EXIST) err = RMQ_ERR_NO_ROUTE;
    if (err) return err;
    if (p->count == 0) {
        client_pub_unref(p);
        return RMQ_ERR_NO_ROUTE;
    }
    *out = p;
    return RMQ_OK;
}

void client_instance_route_stale(client_instance_t *ci, const char *topic) {
    pthread_mutex_lock(&ci->mu);
    client_pub_unref(cm_map_take(ci->routes, topic));
    pthread_mutex_unlock(&ci->mu);
}

/* ---------------------------------------------------------------- periodic work */

static proto_strlist_t cached_topics(client_instance_t *ci) {
    proto_strlist_t topics = {0};
    pthread_mutex_lock(&ci->mu);
    size_t it = 0;
    const char *topic;
    void *v;
    while (cm_map_next(ci->routes, &it, &topic, &v))
        proto_strlist_add(&topics, topic);
    pthread_mutex_unlock(&ci->mu);
    return topics;
}

static bool is_stopping(client_instance_t *ci) {
    pthread_mutex_lock(&ci->mu);
    bool s = ci->stopping;
    pthread_mutex_unlock(&ci->mu);
    return s;
}

/* Every pollNameServerInterval: re-read each cached topic's route. A topic still unknown to
 * the name server keeps the route it has (createTopicKey's). */
static void refresh_job(void *arg) {
    client_instance_t *ci = arg;
    proto_strlist_t topics = cached_topics(ci);
    for (size_t i = 0; i < topics.count && !is_stopping(ci); i++) {
        proto_topic_route_t route = {0};
        rmq_err_t err = fetch_route(ci, topics.items[i], ci->api_timeout_ms, &route);
        if (err == RMQ_OK)
            client_pub_unref(store_pub(ci, topics.items[i], client_pub_from_route(&route, 0)));
        else if (err != RMQ_ERR_TOPIC_NOT_EXIST)
            cm_debug(&ci->log, "client %s: route of %s: %s", ci->client_id, topics.items[i],
                     rmq_err_str(err));
        proto_topic_route_free(&route);
    }
    proto_strlist_free(&topics);
    pthread_mutex_lock(&ci->mu);
    ci->refresh_queued = false;
    pthread_mutex_unlock(&ci->mu);
}

static void heartbeat_body(client_instance_t *ci, cm_buf_t *body) {
    proto_heartbeat_t hb = {0};
    hb.client_id = cm_strdup(ci->client_id);
    pthread_mutex_lock(&ci->mu);
    size_t it = 0;
    const char *group;
    void *v;
    while (cm_map_next(ci->groups, &it, &group, &v))
        proto_strlist_add(&hb.producer_groups, group);
    it = 0;
    while (cm_map_next(ci->consumers, &it, &group, &v)) {
        consumer_reg_t *r = v;
        r->hooks.heartbeat(r->opaque, proto_heartbeat_add_consumer(&hb));
    }
    pthread_mutex_unlock(&ci->mu);
    proto_strlist_add(&hb.producer_groups, CLIENT_INNER_PRODUCER);
    proto_heartbeat_encode(&hb, body);
    proto_heartbeat_free(&hb);
}

static proto_strlist_t master_addrs(client_instance_t *ci) {
    proto_strlist_t addrs = {0};
    pthread_mutex_lock(&ci->mu);
    size_t it = 0;
    const char *name;
    void *addr;
    while (cm_map_next(ci->masters, &it, &name, &addr))
        proto_strlist_add(&addrs, addr);
    pthread_mutex_unlock(&ci->mu);
    return addrs;
}

/* Sends cmd to addr and waits; the response code, or the transport's error. */
static rmq_err_t call_broker(client_instance_t *ci, const char *addr, proto_cmd_t *cmd) {
    rmq_err_t err;
    net_conn_t *c = client_instance_conn(ci, addr, &err);
    if (!c) {
        proto_cmd_free(cmd);
        return err;
    }
    proto_cmd_t resp;
    err = net_conn_request_sync(c, cmd, ci->api_timeout_ms, &resp);
    net_conn_unref(c);
    if (err) return err;
    err = (rmq_err_t)resp.code;
    proto_cmd_free(&resp);
    return err;
}

void client_instance_heartbeat(client_instance_t *ci) {
    cm_buf_t body = CM_BUF_INIT;
    heartbeat_body(ci, &body);
    proto_strlist_t addrs = master_addrs(ci);
    for (size_t i = 0; i < addrs.count; i++) {
        proto_cmd_t req;
        proto_cmd_request(&req, PROTO_HEART_BEAT, 0);
        proto_cmd_set_body(&req, body.data, body.len);
        rmq_err_t err = call_broker(ci, addrs.items[i], &req);
        if (err)
            cm_warn(&ci->log, "client %s: heartbeat to %s: %s", ci->client_id, addrs.items[i],
                    rmq_err_str(err));
    }
    proto_strlist_free(&addrs);
    cm_buf_free(&body);
}

static void heartbeat_job(void *arg) {
    client_instance_t *ci = arg;
    pthread_mutex_lock(&ci->mu);
    ci->heartbeat_queued = false; /* cleared first: a broker learnt meanwhile queues again */
    bool run = !ci->stopping && has_groups(ci);
    pthread_mutex_unlock(&ci->mu);
    if (run) client_instance_heartbeat(ci);
}

/* Loop thread: the timers only hand the work to the pool (it blocks on requests). */
static void on_refresh_timer(net_loop_t *loop, rmq_err_t err, void *arg) {
    client_instance_t *ci = arg;
    if (err) return;
    pthread_mutex_lock(&ci->mu);
    if (!ci->stopping && !ci->refresh_queued &&
        client_pool_post(ci->pool, refresh_job, ci) == RMQ_OK)
        ci->refresh_queued = true;
    pthread_mutex_unlock(&ci->mu);
}

static void on_heartbeat_timer(net_loop_t *loop, rmq_err_t err, void *arg) {
    client_instance_t *ci = arg;
    if (err) return;
    pthread_mutex_lock(&ci->mu);
    if (has_groups(ci)) queue_heartbeat(ci);
    pthread_mutex_unlock(&ci->mu);
}

static void start_timers(void *arg) {
    client_instance_t *ci = arg;
    pthread_mutex_lock(&ci->mu);
    if (!ci->stopping) {
        ci->timers[0] = net_timer_start(ci->loop, ci->poll_ms, ci->poll_ms, on_refresh_timer, ci);
        ci->timers[1] =
            net_timer_start(ci->loop, ci->heartbeat_ms, ci->heartbeat_ms, on_heartbeat_timer, ci);
    }
    pthread_mutex_unlock(&ci->mu);
}

/* ---------------------------------------------------------------- producers */

rmq_err_t client_instance_register_producer(client_instance_t *ci, const char *group,
                                            client_tx_check_fn *tx_check, void *opaque) {
    pthread_mutex_lock(&ci->mu);
    rmq_err_t err = cm_map_get(ci->groups, group) ? RMQ_ERR_STATE : RMQ_OK;
    if (!err) {
        producer_reg_t *r = cm_calloc(1, sizeof *r);
        r->tx_check = tx_check;
        r->opaque = opaque;
        cm_map_put(ci->groups, group, r);
    }
    pthread_mutex_unlock(&ci->mu);
    return err;
}

/* UNREGISTER_CLIENT for one group to every known master. */
static void unregister_everywhere(client_instance_t *ci, const char *producer_group,
                                  const char *consumer_group) {
    proto_strlist_t addrs = master_addrs(ci);
    for (size_t i = 0; i < addrs.count; i++) {
        proto_cmd_t req;
        proto_cmd_request(&req, PROTO_UNREGISTER_CLIENT, 0);
        proto_unregister_client_req_t h;
        proto_unregister_client_req_init(&h);
        h.client_id = ci->client_id;
        h.producer_group = producer_group;
        h.consumer_group = consumer_group;
        proto_unregister_client_req_encode(&h, &req.ext);
        rmq_err_t err = call_broker(ci, addrs.items[i], &req);
        if (err)
            cm_debug(&ci->log, "client %s: unregister from %s: %s", ci->client_id, addrs.items[i],
                     rmq_err_str(err));
    }
    proto_strlist_free(&addrs);
}

void client_instance_unregister_producer(client_instance_t *ci, const char *group) {
    pthread_mutex_lock(&ci->mu);
    cm_free(cm_map_take(ci->groups, group)); /* no check reaches the producer after this */
    pthread_mutex_unlock(&ci->mu);
    unregister_everywhere(ci, group, NULL);
}

/* ---------------------------------------------------------------- consumers */

rmq_err_t client_instance_register_consumer(client_instance_t *ci, const char *group,
                                            const client_consumer_hooks_t *hooks, void *opaque) {
    pthread_mutex_lock(&ci->mu);
    rmq_err_t err = cm_map_get(ci->consumers, group) ? RMQ_ERR_STATE : RMQ_OK;
    if (!err) {
        consumer_reg_t *r = cm_calloc(1, sizeof *r);
        r->hooks = *hooks;
        r->opaque = opaque;
        cm_map_put(ci->consumers, group, r);
    }
    pthread_mutex_unlock(&ci->mu);
    return err;
}

void client_instance_unregister_consumer(client_instance_t *ci, const char *group) {
    pthread_mutex_lock(&ci->mu);
    cm_free(cm_map_take(ci->consumers, group)); /* no hook runs after this */
    pthread_mutex_unlock(&ci->mu);
    unregister_everywhere(ci, NULL, group);
}

char *client_instance_master(client_instance_t *ci, const char *broker_name) {
    pthread_mutex_lock(&ci->mu);
    const char *addr = cm_map_get(ci->masters, broker_name);
    char *copy = addr ? cm_strdup(addr) : NULL;
    pthread_mutex_unlock(&ci->mu);
    return copy;
}

/* ---------------------------------------------------------------- life cycle */

static void free_parts(client_instance_t *ci) {
    cm_map_destroy(ci->routes);
    cm_map_destroy(ci->masters);
    cm_map_destroy(ci->groups);
    cm_map_destroy(ci->consumers);
    proto_strlist_free(&ci->namesrv);
    client_faults_destroy(ci->faults);
    proto_uniq_gen_destroy(ci->uniq);
    pthread_mutex_destroy(&ci->mu);
    cm_free(ci->client_id);
    cm_free(ci);
}

static void instance_free(client_instance_t *ci) {
    pthread_mutex_lock(&ci->mu);
    ci->stopping = true; /* timers stop posting; periodic jobs end early */
    pthread_mutex_unlock(&ci->mu);
    client_pool_stop(ci->pool); /* queued jobs run (and see stopping); threads joined */
    cm_map_destroy(ci->conns);  /* our references; the loop closes the sockets */
    if (ci->loop) net_loop_destroy(ci->loop); /* timers and connections end; thread joined */
    client_pool_destroy(ci->pool);            /* after the loop's last round-end hook */
    free_parts(ci);
}

/* The I/O thread's callbacks wait for the end of its loop round (release_pool, the loop's
 * round-end hook), which wakes the pool once for them all. */
static void defer_pool_here(void *pool) {
    client_pool_defer_here(pool);
}

static void release_pool(void *pool) {
    client_pool_release(pool);
}

static client_instance_t *instance_new(const rmq_conf_t *conf, char *id, const char *ip,
                                       char *errstr, size_t size) {
    client_instance_t *ci = cm_calloc(1, sizeof *ci);
    ci->client_id = id;
    ci->log = cm_conf_logger(conf);
    pthread_mutex_init(&ci->mu, NULL);
    const char *ns = cm_conf_str(conf, "namesrvAddr", false);
    client_split_addrs(*ns ? ns : getenv("NAMESRV_ADDR"), &ci->namesrv);
    ci->poll_ms = cm_conf_int(conf, "pollNameServerInterval", false);
    ci->heartbeat_ms = cm_conf_int(conf, "heartbeatBrokerInterval", false);
    ci->api_timeout_ms = cm_conf_int(conf, "mqClientApiTimeout", false);
    ci->conns = cm_map_new(unref_conn);
    ci->routes = cm_map_new(unref_pub);
    ci->masters = cm_map_new(cm_free);
    ci->groups = cm_map_new(cm_free);
    ci->consumers = cm_map_new(cm_free);
    ci->faults = client_faults_new();
    proto_addr_t addr = {{0}, 4, 0};
    char with_port[80];
    snprintf(with_port, sizeof with_port, "%s:0", ip);
    if (proto_addr_parse(with_port, &addr) != RMQ_OK) addr.ip_len = 4;
    ci->uniq = proto_uniq_gen_new(&addr, (int32_t)getpid());
    rmq_err_t err = RMQ_OK;
    ci->pool = client_pool_new(POOL_THREADS, &err);
    net_opts_t opts = {.log = ci->log, .on_round_end = release_pool, .round_arg = ci->pool};
    if (ci->pool) ci->loop = net_loop_new(&opts, &err);
    if (ci->loop) err = net_loop_post(ci->loop, defer_pool_here, ci->pool);
    if (!err) err = net_loop_post(ci->loop, start_timers, ci);
    if (err) {
        cm_errstr(errstr, size, "client %s cannot start its threads: %s", id, rmq_err_str(err));
        instance_free(ci);
        return NULL;
    }
    return ci;
}

client_instance_t *client_instance_get(const rmq_conf_t *conf, char *errstr, size_t size) {
    const char *ns = cm_conf_str(conf, "namesrvAddr", false);
    const char *env = getenv("NAMESRV_ADDR");
    if (!*ns && (!env || !*env)) {
        cm_errstr(errstr, size, "no name server: set namesrvAddr or NAMESRV_ADDR");
        return NULL;
    }
    char ip[64];
    char *id = make_client_id(conf, ip, sizeof ip);
    pthread_mutex_lock(&registry_mu);
    if (!registry) registry = cm_map_new(NULL);
    client_instance_t *ci = cm_map_get(registry, id);
    if (ci) {
        ci->refs++;
        cm_free(id);
    } else if ((ci = instance_new(conf, id, ip, errstr, size))) {
        ci->refs = 1;
        cm_map_put(registry, ci->client_id, ci);
    }
    if (cm_map_count(registry) == 0) {
        cm_map_destroy(registry);
        registry = NULL;
    }
    pthread_mutex_unlock(&registry_mu);
    return ci;
}

void client_instance_release(client_instance_t *ci) {
    if (!ci) return;
    pthread_mutex_lock(&registry_mu);
    bool last = --ci->refs == 0;
    if (last) {
        cm_map_take(registry, ci->client_id);
        if (cm_map_count(registry) == 0) {
            cm_map_destroy(registry);
            registry = NULL;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (last) instance_free(ci); /* outside the registry lock: it joins threads */
}

const char *client_instance_id(const client_instance_t *ci) {
    return ci->client_id;
}
const cm_logger_t *client_instance_logger(const client_instance_t *ci) {
    return &ci->log;
}
client_pool_t *client_instance_pool(client_instance_t *ci) {
    return ci->pool;
}
client_faults_t *client_instance_faults(client_instance_t *ci) {
    return ci->faults;
}
proto_uniq_gen_t *client_instance_uniq(client_instance_t *ci) {
    return ci->uniq;
}
