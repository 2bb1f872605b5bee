/* lib/broker/namesrv.c: the name-server role — which brokers live in which cluster, where
 * they listen, which topics they serve — kept as RocketMQ 4.9.8's RouteInfoManager keeps it,
 * plus the KV config store clients query. Pure tables under one mutex; the request handlers
 * and the stand-alone server sit at the end of the file. */
#include "broker/namesrv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/broker_int.h" /* broker_cfg_load / broker_cfg_write */

/* ---------------------------------------------------------------- table entries */

typedef struct ns_addr {
    int64_t id; /* 0 = master, >= 1 slaves */
    char *addr;
} ns_addr_t;

/* BrokerData: one broker name (a master and its slaves). */
typedef struct ns_broker {
    char *cluster;
    ns_addr_t *addrs; /* kept sorted by id */
    size_t n_addrs;
} ns_broker_t;

/* QueueData of one broker for one topic. */
typedef struct ns_queue {
    int32_t read, write, perm, sysflag;
} ns_queue_t;

/* BrokerLiveInfo: one broker address. */
typedef struct ns_live {
    int64_t last_ms; /* monotonic time of the last registration */
    int64_t dv_counter, dv_timestamp;
    void *conn; /* the connection it registered over (referenced); NULL when in-process */
    const broker_conn_ops_t *ops; /* the owning table's, to release conn */
    char *ha_addr;
} ns_live_t;

struct nsrv {
    pthread_mutex_t mu;
    cm_logger_t log;
    int64_t expiry_ms;
    cm_map_t *clusters; /* cluster -> set of broker names (cm_map, values unused) */
    cm_map_t *brokers;  /* broker name -> ns_broker_t */
    cm_map_t *topics;   /* topic -> cm_map(broker name -> ns_queue_t) */
    cm_map_t *live;     /* broker addr -> ns_live_t */
    cm_map_t *kv;       /* namespace -> cm_map(key -> char *) */
    char *kv_path;      /* NULL: KV config lives in memory only */
    broker_conn_ops_t ops;
};

static void broker_free(void *p) {
    ns_broker_t *b = p;
    if (!b) return;
    for (size_t i = 0; i < b->n_addrs; i++)
        cm_free(b->addrs[i].addr);
    cm_free(b->addrs);
    cm_free(b->cluster);
    cm_free(b);
}

static void live_set_conn(ns_live_t *l, void *conn) {
    if (l->conn == conn) return;
    if (conn && l->ops->ref) l->ops->ref(conn);
    if (l->conn && l->ops->unref) l->ops->unref(l->conn);
    l->conn = conn;
}

static void live_free(void *p) {
    ns_live_t *l = p;
    if (!l) return;
    live_set_conn(l, NULL);
    cm_free(l->ha_addr);
    cm_free(l);
}

static void map_free(void *p) {
    cm_map_destroy(p);
}

static void kv_load(nsrv_t *ns);
static void kv_persist(nsrv_t *ns);

/* A value for set-like maps, whose values are never read. */
static char set_mark;
#define SET_MARK ((void *)&set_mark)

/* ---------------------------------------------------------------- lifecycle */

nsrv_t *nsrv_new(const nsrv_opts_t *opts) {
    nsrv_t *ns = cm_calloc(1, sizeof *ns);
    pthread_mutex_init(&ns->mu, NULL);
    if (opts && opts->log)
        ns->log = *opts->log;
    else
        ns->log = (cm_logger_t){NULL, NULL, RMQ_LOG_INFO};
    ns->expiry_ms =
        opts && opts->broker_expiry_ms > 0 ? opts->broker_expiry_ms : NSRV_BROKER_EXPIRY_MS;
    if (opts && opts->conn_ops) ns->ops = *opts->conn_ops;
    ns->clusters = cm_map_new(map_free);
    ns->brokers = cm_map_new(broker_free);
    ns->topics = cm_map_new(map_free);
    ns->live = cm_map_new(live_free);
    ns->kv = cm_map_new(map_free);
    if (opts && opts->kv_path && *opts->kv_path) {
        ns->kv_path = cm_strdup(opts->kv_path);
        kv_load(ns);
    }
    return ns;
}

void nsrv_destroy(nsrv_t *ns) {
    if (!ns) return;
    cm_map_destroy(ns->clusters);
    cm_map_destroy(ns->brokers);
    cm_map_destroy(ns->topics);
    cm_map_destroy(ns->live);
    cm_map_destroy(ns->kv);
    cm_free(ns->kv_path);
    pthread_mutex_destroy(&ns->mu);
    cm_free(ns);
}

/* ---------------------------------------------------------------- registration */

static ns_broker_t *broker_get_or_add(nsrv_t *ns, const char *cluster, const char *name,
                                      bool *created) {
    ns_broker_t *b = cm_map_get(ns->brokers, name);
    *created = b == NULL;
    if (!b) {
        b = cm_calloc(1, sizeof *b);
        b->cluster = cm_strdup(cluster);
        cm_map_put(ns->brokers, name, b);
    }
    return b;
}

static ns_addr_t *broker_find_id(ns_broker_t *b, int64_t id) {
    for (size_t i = 0; i < b->n_addrs; i++)
        if (b->addrs[i].id == id) return &b->addrs[i];
    return NULL;
}

static void broker_remove_at(ns_broker_t *b, size_t i) {
    cm_free(b->addrs[i].addr);
    memmove(&b->addrs[i], &b->addrs[i + 1], (b->n_addrs - i - 1) * sizeof b->addrs[0]);
    b->n_addrs--;
}

/* Sets id -> addr. A slave promoted to master (same address, new id) loses its old entry,
 * as in RocketMQ. Returns true when the id had no address before. */
static bool broker_put_addr(ns_broker_t *b, int64_t id, const char *addr) {
    for (size_t i = 0; i < b->n_addrs;) {
        if (b->addrs[i].id != id && strcmp(b->addrs[i].addr, addr) == 0)
            broker_remove_at(b, i);
        else
            i++;
    }
    ns_addr_t *slot = broker_find_id(b, id);
    if (slot) {
        cm_free(slot->addr);
        slot->addr = cm_strdup(addr);
        return false;
    }
    size_t at = 0;
    while (at < b->n_addrs && b->addrs[at].id < id)
        at++;
    b->addrs = cm_realloc(b->addrs, (b->n_addrs + 1) * sizeof b->addrs[0]);
    memmove(&b->addrs[at + 1], &b->addrs[at], (b->n_addrs - at) * sizeof b->addrs[0]);
    b->addrs[at] = (ns_addr_t){id, cm_strdup(addr)};
    b->n_addrs++;
    return true;
}

static void cluster_add(nsrv_t *ns, const char *cluster, const char *broker_name) {
    cm_map_t *names = cm_map_get(ns->clusters, cluster);
    if (!names) {
        names = cm_map_new(NULL);
        cm_map_put(ns->clusters, cluster, names);
    }
    cm_map_put(names, broker_name, SET_MARK);
}

static void queue_put(nsrv_t *ns, const char *broker_name, const proto_topic_config_t *t) {
    cm_map_t *by_broker = cm_map_get(ns->topics, t->topic_name);
    if (!by_broker) {
        by_broker = cm_map_new(cm_free);
        cm_map_put(ns->topics, t->topic_name, by_broker);
    }
    ns_queue_t *q = cm_map_get(by_broker, broker_name);
    if (!q) {
        q = cm_calloc(1, sizeof *q);
        cm_map_put(by_broker, broker_name, q);
    }
    *q = (ns_queue_t){t->read_queue_nums, t->write_queue_nums, t->perm, t->topic_sys_flag};
}

/* Whether the broker at addr sent a different data version last time (or none). */
static bool topics_changed(nsrv_t *ns, const char *addr, const nsrv_reg_t *reg) {
    ns_live_t *l = cm_map_get(ns->live, addr);
    const proto_data_version_t *dv = &reg->body->data_version;
    return !l || l->dv_counter != dv->counter || l->dv_timestamp != dv->timestamp;
}

void nsrv_register(nsrv_t *ns, const nsrv_reg_t *reg, void *conn, nsrv_reg_result_t *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ns->mu);
    cluster_add(ns, reg->cluster, reg->broker_name);
    bool first;
    ns_broker_t *b = broker_get_or_add(ns, reg->cluster, reg->broker_name, &first);
    if (broker_put_addr(b, reg->broker_id, reg->broker_addr)) first = true;
    /* Only a master's topics make queue data; slaves serve the master's queues. */
    if (reg->body && reg->broker_id == 0 && (first || topics_changed(ns, reg->broker_addr, reg))) {
        for (size_t i = 0; i < reg->body->topic_count; i++)
            queue_put(ns, reg->broker_name, &reg->body->topics[i]);
    }
    ns_live_t *l = cm_map_get(ns->live, reg->broker_addr);
    if (!l) {
        l = cm_calloc(1, sizeof *l);
        l->ops = &ns->ops;
        cm_map_put(ns->live, reg->broker_addr, l);
        cm_info(&ns->log, "name server: new broker %s (%s, %s, id %lld)", reg->broker_addr,
                reg->cluster, reg->broker_name, (long long)reg->broker_id);
    }
    l->last_ms = cm_mono_ms();
    l->dv_counter = reg->body ? reg->body->data_version.counter : 0;
    l->dv_timestamp = reg->body ? reg->body->data_version.timestamp : 0;
    live_set_conn(l, conn);
    cm_free(l->ha_addr);
    l->ha_addr = cm_strdup(reg->ha_addr ? reg->ha_addr : "");
    if (reg->broker_id != 0) {
        ns_addr_t *master = broker_find_id(b, 0);
        ns_live_t *ml = master ? cm_map_get(ns->live, master->addr) : NULL;
        if (master && ml) {
            snprintf(out->master_addr, sizeof out->master_addr, "%s", master->addr);
            snprintf(out->ha_server_addr, sizeof out->ha_server_addr, "%s", ml->ha_addr);
        }
    }
    pthread_mutex_unlock(&ns->mu);
}

/* ---------------------------------------------------------------- removal */

/* Drops broker_name from the cluster table and its queue data from every topic; topics left
 * without queue data disappear. Caller holds the lock. */
static void forget_broker_name(nsrv_t *ns, const char *broker_name) {
    const char *key;
    void *val;
    size_t it = 0;
    while (cm_map_next(ns->clusters, &it, &key, &val)) {
        cm_map_t *names = val;
        cm_map_take(names, broker_name);
        if (cm_map_count(names) == 0) cm_map_destroy(cm_map_take(ns->clusters, key));
    }
    it = 0;
    while (cm_map_next(ns->topics, &it, &key, &val)) {
        cm_map_t *by_broker = val;
        cm_free(cm_map_take(by_broker, broker_name));
        if (cm_map_count(by_broker) == 0) cm_map_destroy(cm_map_take(ns->topics, key));
    }
}

/* Removes addr from whichever broker lists it (and the broker name once it has no address
 * left) and its live entry. Caller holds the lock. */
static void forget_addr(nsrv_t *ns, const char *addr) {
    live_free(cm_map_take(ns->live, addr));
    const char *name;
    void *val;
    size_t it = 0;
    while (cm_map_next(ns->brokers, &it, &name, &val)) {
        ns_broker_t *b = val;
        for (size_t i = 0; i < b->n_addrs;) {
            if (strcmp(b->addrs[i].addr, addr) == 0)
                broker_remove_at(b, i);
            else
                i++;
        }
        if (b->n_addrs == 0) {
            char *gone = cm_strdup(name);
            broker_free(cm_map_take(ns->brokers, gone));
            forget_broker_name(ns, gone);
            cm_free(gone);
        }
    }
}

void nsrv_unregister(nsrv_t *ns, const char *cluster, const char *broker_name,
                     const char *broker_addr, int64_t broker_id) {
    pthread_mutex_lock(&ns->mu);
    live_free(cm_map_take(ns->live, broker_addr));
    ns_broker_t *b = cm_map_get(ns->brokers, broker_name);
    if (b) {
        ns_addr_t *slot = broker_find_id(b, broker_id);
        if (slot) broker_remove_at(b, (size_t)(slot - b->addrs));
        if (b->n_addrs == 0) {
            broker_free(cm_map_take(ns->brokers, broker_name));
            forget_broker_name(ns, broker_name);
        }
    }
    (void)cluster; /* RocketMQ finds the cluster through the broker name, as we do */
    cm_info(&ns->log, "name server: broker %s (%s, id %lld) unregistered", broker_addr, broker_name,
            (long long)broker_id);
    pthread_mutex_unlock(&ns->mu);
}

void nsrv_conn_closed(nsrv_t *ns, void *conn) {
    if (!conn) return;
    pthread_mutex_lock(&ns->mu);
    const char *addr;
    void *val;
    size_t it = 0;
    while (cm_map_next(ns->live, &it, &addr, &val)) {
        ns_live_t *l = val;
        if (l->conn != conn) continue;
        char *gone = cm_strdup(addr);
        cm_info(&ns->log, "name server: broker %s dropped, its connection closed", gone);
        forget_addr(ns, gone);
        cm_free(gone);
    }
    pthread_mutex_unlock(&ns->mu);
}

size_t nsrv_expire(nsrv_t *ns, int64_t now_ms, void ***conns, size_t *n_conns) {
    size_t dropped = 0;
    *conns = NULL;
    *n_conns = 0;
    pthread_mutex_lock(&ns->mu);
    const char *addr;
    void *val;
    size_t it = 0;
    while (cm_map_next(ns->live, &it, &addr, &val)) {
        ns_live_t *l = val;
        if (now_ms - l->last_ms <= ns->expiry_ms) continue;
        dropped++;
        if (l->conn) {
            *conns = cm_realloc(*conns, (*n_conns + 1) * sizeof(void *));
            /* The caller's own reference: the table's goes with the entry. */
            (*conns)[(*n_conns)++] = ns->ops.ref ? ns->ops.ref(l->conn) : l->conn;
        }
        char *gone = cm_strdup(addr);
        cm_warn(&ns->log, "name server: broker %s expired, no registration for %lld ms", gone,
                (long long)(now_ms - l->last_ms));
        forget_addr(ns, gone);
        cm_free(gone);
    }
    pthread_mutex_unlock(&ns->mu);
    return dropped;
}

/* ---------------------------------------------------------------- queries */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys of m, sorted (Java's writer sorts object keys; sorted lists read well too). */
static const char **sorted_keys(const cm_map_t *m, size_t *n) {
    const char **keys = cm_calloc(cm_map_count(m) + 1, sizeof(char *));
    const char *key;
    size_t it = 0;
    *n = 0;
    while (cm_map_next(m, &it, &key, NULL))
        keys[(*n)++] = key;
    qsort(keys, *n, sizeof(char *), cmp_str);
    return keys;
}

static void put_key(cm_buf_t *out, const char *key) {
    proto_json_put_str(out, key, strlen(key));
    cm_buf_append_str(out, ":");
}

static void fill_broker_data(proto_broker_data_t *dst, const char *name, const ns_broker_t *b) {
    dst->broker_name = cm_strdup(name);
    dst->cluster = cm_strdup(b->cluster);
    for (size_t i = 0; i < b->n_addrs; i++)
        proto_broker_data_add_addr(dst, b->addrs[i].id, b->addrs[i].addr);
}

bool nsrv_route(nsrv_t *ns, const char *topic, proto_topic_route_t *out) {
    bool found = false;
    pthread_mutex_lock(&ns->mu);
    cm_map_t *by_broker = cm_map_get(ns->topics, topic);
    size_t n = 0;
    const char **names = by_broker ? sorted_keys(by_broker, &n) : NULL;
    for (size_t i = 0; i < n; i++) {
        const ns_queue_t *q = cm_map_get(by_broker, names[i]);
        proto_queue_data_t *qd = proto_topic_route_add_queue(out);
        *qd = (proto_queue_data_t){cm_strdup(names[i]), q->read, q->write, q->perm, q->sysflag};
        ns_broker_t *b = cm_map_get(ns->brokers, names[i]);
        if (!b) continue;
        fill_broker_data(proto_topic_route_add_broker(out), names[i], b);
        found = true;
    }
    pthread_mutex_unlock(&ns->mu);
    cm_free(names);
    return found;
}

void nsrv_cluster_info(nsrv_t *ns, proto_cluster_info_t *out) {
    pthread_mutex_lock(&ns->mu);
    size_t n;
    const char **names = sorted_keys(ns->brokers, &n);
    for (size_t i = 0; i < n; i++)
        fill_broker_data(proto_cluster_info_add_broker(out), names[i],
                         cm_map_get(ns->brokers, names[i]));
    cm_free(names);
    names = sorted_keys(ns->clusters, &n);
    for (size_t i = 0; i < n; i++) {
        proto_cluster_entry_t *ce = proto_cluster_info_add_cluster(out);
        ce->cluster_name = cm_strdup(names[i]);
        size_t m;
        const char **members = sorted_keys(cm_map_get(ns->clusters, names[i]), &m);
        for (size_t j = 0; j < m; j++)
            proto_strlist_add(&ce->broker_names, members[j]);
        cm_free(members);
    }
    cm_free(names);
    pthread_mutex_unlock(&ns->mu);
}

/* Whether the cluster lists a broker that serves this topic. */
static bool served_in_cluster(const cm_map_t *by_broker, const cm_map_t *cluster_names) {
    const char *name;
    size_t it = 0;
    while (cm_map_next(by_broker, &it, &name, NULL))
        if (cm_map_get(cluster_names, name)) return true;
    return false;
}

void nsrv_topic_list(nsrv_t *ns, const char *cluster, proto_topic_list_t *out) {
    pthread_mutex_lock(&ns->mu);
    cm_map_t *cluster_names = cluster ? cm_map_get(ns->clusters, cluster) : NULL;
    size_t n;
    const char **topics = sorted_keys(ns->topics, &n);
    for (size_t i = 0; i < n; i++) {
        if (cluster && (!cluster_names ||
                        !served_in_cluster(cm_map_get(ns->topics, topics[i]), cluster_names)))
            continue;
        proto_strlist_add(&out->topics, topics[i]);
    }
    cm_free(topics);
    pthread_mutex_unlock(&ns->mu);
}

/* ---------------------------------------------------------------- KV config */

/* kvConfig.json as the Java name server writes it: {"configTable":{"ns":{"k":"v"}}}. */
static char *kv_to_json(nsrv_t *ns) {
    cm_buf_t out = CM_BUF_INIT;
    size_t n;
    const char **spaces = sorted_keys(ns->kv, &n);
    cm_buf_append_str(&out, "{\n\t\"configTable\":{");
    for (size_t i = 0; i < n; i++) {
        cm_map_t *table = cm_map_get(ns->kv, spaces[i]);
        cm_buf_append_str(&out, i ? ",\n\t\t" : "\n\t\t");
        put_key(&out, spaces[i]);
        cm_buf_append_str(&out, "{");
        size_t m;
        const char **keys = sorted_keys(table, &m);
        for (size_t j = 0; j < m; j++) {
            const char *val = cm_map_get(table, keys[j]);
            cm_buf_append_str(&out, j ? ",\n\t\t\t" : "\n\t\t\t");
            put_key(&out, keys[j]);
            proto_json_put_str(&out, val, strlen(val));
        }
        cm_free(keys);
        cm_buf_append_str(&out, "\n\t\t}");
    }
    cm_free(spaces);
    cm_buf_append_str(&out, "\n\t}\n}");
    return cm_buf_take_str(&out);
}

static void kv_set_locked(nsrv_t *ns, const char *space, const char *key, const char *value) {
    cm_map_t *table = cm_map_get(ns->kv, space);
    if (!table) {
        table = cm_map_new(cm_free);
        cm_map_put(ns->kv, space, table);
    }
    cm_map_put(table, key, cm_strdup(value));
}

static void kv_from_json(nsrv_t *ns, const proto_json_t *root) {
    const proto_json_t *spaces = proto_json_get(root, "configTable");
    if (!spaces || spaces->type != PJ_OBJECT) return;
    for (size_t i = 0; i < spaces->len; i++) {
        const proto_json_t *k = spaces->keys[i], *table = spaces->items[i];
        if (k->type != PJ_STRING || table->type != PJ_OBJECT) continue;
        for (size_t j = 0; j < table->len; j++) {
            const proto_json_t *key = table->keys[j], *val = table->items[j];
            if (key->type == PJ_STRING && val->type == PJ_STRING)
                kv_set_locked(ns, k->s, key->s, val->s);
        }
    }
}

void nsrv_kv_put(nsrv_t *ns, const char *space, const char *key, const char *value) {
    pthread_mutex_lock(&ns->mu);
    kv_set_locked(ns, space, key, value);
    kv_persist(ns);
    pthread_mutex_unlock(&ns->mu);
}

char *nsrv_kv_get(nsrv_t *ns, const char *space, const char *key) {
    pthread_mutex_lock(&ns->mu);
    cm_map_t *table = cm_map_get(ns->kv, space);
    const char *val = table ? cm_map_get(table, key) : NULL;
    char *copy = val ? cm_strdup(val) : NULL;
    pthread_mutex_unlock(&ns->mu);
    return copy;
}

void nsrv_kv_delete(nsrv_t *ns, const char *space, const char *key) {
    pthread_mutex_lock(&ns->mu);
    cm_map_t *table = cm_map_get(ns->kv, space);
    if (table) {
        cm_free(cm_map_take(table, key));
        if (cm_map_count(table) == 0) cm_map_destroy(cm_map_take(ns->kv, space));
        kv_persist(ns);
    }
    pthread_mutex_unlock(&ns->mu);
}

bool nsrv_kv_table(nsrv_t *ns, const char *space, proto_ext_t *out) {
    pthread_mutex_lock(&ns->mu);
    cm_map_t *table = cm_map_get(ns->kv, space);
    if (table) {
        size_t n;
        const char **keys = sorted_keys(table, &n);
        for (size_t i = 0; i < n; i++)
            proto_ext_set(out, keys[i], cm_map_get(table, keys[i]));
        cm_free(keys);
    }
    pthread_mutex_unlock(&ns->mu);
    return table != NULL;
}

/* ---------------------------------------------------------------- KV persistence */

/* Through the broker's config-file writer: .tmp, the old file kept as .bak, rename. */
static void kv_persist(nsrv_t *ns) {
    if (!ns->kv_path) return;
    char *text = kv_to_json(ns);
    broker_cfg_write(&ns->log, ns->kv_path, text, strlen(text));
    cm_free(text);
}

static void kv_load(nsrv_t *ns) {
    proto_json_t *root = broker_cfg_load(&ns->log, ns->kv_path, NULL);
    if (root) kv_from_json(ns, root);
    proto_json_free(root);
}

/* ---------------------------------------------------------------- request handlers */

/* A reply with an error code and a remark built from a typed header's complaint. */
static void reply_bad_header(const proto_cmd_t *req, proto_cmd_t *resp,
                             const proto_hdr_err_t *err) {
    char remark[256];
    proto_hdr_err_format(err, remark, sizeof remark);
    proto_cmd_response(resp, req, 1, remark);
}

static void on_register(nsrv_t *ns, void *conn, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_register_broker_req_t h;
    proto_hdr_err_t err;
    if (proto_register_broker_req_decode(&req->ext, &h, &err) != RMQ_OK) {
        reply_bad_header(req, resp, &err);
        return;
    }
    if (h.body_crc32 != 0 && proto_body_crc(req->body, req->body_len) != h.body_crc32) {
        proto_cmd_response(resp, req, 1, "crc32 not match");
        return;
    }
    proto_register_broker_body_t body = {0};
    if (req->body_len && proto_register_broker_body_decode(req->body, req->body_len, h.compressed,
                                                           PROTO_MAX_FRAME, &body) != RMQ_OK) {
        proto_register_broker_body_free(&body);
        proto_cmd_response(resp, req, 1, "cannot decode the RegisterBrokerBody");
        return;
    }
    nsrv_reg_t reg = {h.cluster_name,   h.broker_name, h.broker_addr,
                      h.ha_server_addr, h.broker_id,   req->body_len ? &body : NULL};
    nsrv_reg_result_t result;
    nsrv_register(ns, &reg, conn, &result);
    proto_register_broker_body_free(&body);

    proto_cmd_response(resp, req, 0, NULL);
    proto_register_broker_resp_t rh = {NULL, NULL};
    if (result.master_addr[0])
        rh = (proto_register_broker_resp_t){result.ha_server_addr, result.master_addr};
    proto_register_broker_resp_encode(&rh, &resp->ext);
    resp->has_ext = true; /* Java writes "extFields":{} even when both fields are null */
    proto_ext_t table = {0};
    if (nsrv_kv_table(ns, NSRV_NS_ORDER_TOPIC_CONFIG, &table)) {
        cm_buf_t out = CM_BUF_INIT;
        proto_kv_table_encode(&table, &out);
        proto_cmd_take_body(resp, out.data, out.len);
    }
    proto_ext_free(&table);
}

static void on_unregister(nsrv_t *ns, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_unregister_broker_req_t h;
    proto_hdr_err_t err;
    if (proto_unregister_broker_req_decode(&req->ext, &h, &err) != RMQ_OK) {
        reply_bad_header(req, resp, &err);
        return;
    }
    nsrv_unregister(ns, h.cluster_name, h.broker_name, h.broker_addr, h.broker_id);
    proto_cmd_response(resp, req, 0, NULL);
}

static void on_route(nsrv_t *ns, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_route_req_t h;
    proto_hdr_err_t err;
    if (proto_route_req_decode(&req->ext, &h, &err) != RMQ_OK) {
        reply_bad_header(req, resp, &err);
        return;
    }
    proto_topic_route_t route = {0};
    if (!nsrv_route(ns, h.topic, &route)) {
        proto_topic_route_free(&route);
        char *remark = cm_sprintf(
            "No topic route info in name server for the topic: %s" PROTO_FAQ_SUFFIX, h.topic);
        proto_cmd_response(resp, req, 17, remark);
        cm_free(remark);
        return;
    }
    char *order_conf = nsrv_kv_get(ns, NSRV_NS_ORDER_TOPIC_CONFIG, h.topic);
    route.order_topic_conf = order_conf; /* freed with the route */
    cm_buf_t out = CM_BUF_INIT;
    /* Old clients read only fastjson's unquoted broker ids (remoting.md §6). */
    proto_topic_route_encode(&route, h.accept_standard_json || req->version >= NSRV_V4_9_4, &out);
    proto_topic_route_free(&route);
    proto_cmd_response(resp, req, 0, NULL);
    proto_cmd_take_body(resp, out.data, out.len);
}

static void on_kv(nsrv_t *ns, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_hdr_err_t err;
    if (req->code == PROTO_PUT_KV_CONFIG) {
        proto_put_kv_req_t h;
        if (proto_put_kv_req_decode(&req->ext, &h, &err) != RMQ_OK) {
            reply_bad_header(req, resp, &err);
            return;
        }
        nsrv_kv_put(ns, h.namespace_, h.key, h.value);
        proto_cmd_response(resp, req, 0, NULL);
        return;
    }
    proto_kv_req_t h;
    if (proto_kv_req_decode(&req->ext, &h, &err) != RMQ_OK) {
        reply_bad_header(req, resp, &err);
        return;
    }
    if (req->code == PROTO_DELETE_KV_CONFIG) {
        nsrv_kv_delete(ns, h.namespace_, h.key);
        proto_cmd_response(resp, req, 0, NULL);
        return;
    }
    char *value = nsrv_kv_get(ns, h.namespace_, h.key);
    if (!value) {
        char *remark = cm_sprintf("No config item, Namespace: %s Key: %s", h.namespace_, h.key);
        proto_cmd_response(resp, req, 22, remark);
        cm_free(remark);
        return;
    }
    proto_cmd_response(resp, req, 0, NULL);
    proto_get_kv_resp_t rh = {value};
    proto_get_kv_resp_encode(&rh, &resp->ext);
    resp->has_ext = true;
    cm_free(value);
}

static void on_topic_list(nsrv_t *ns, const proto_cmd_t *req, proto_cmd_t *resp) {
    const char *cluster = NULL;
    if (req->code == PROTO_GET_TOPICS_BY_CLUSTER) {
        cluster = proto_ext_get(&req->ext, "cluster");
        if (!cluster) {
            proto_hdr_err_t err = {"cluster", NULL, true};
            reply_bad_header(req, resp, &err);
            return;
        }
    }
    proto_topic_list_t list = {0};
    nsrv_topic_list(ns, cluster, &list);
    cm_buf_t out = CM_BUF_INIT;
    proto_topic_list_encode(&list, &out);
    proto_topic_list_free(&list);
    proto_cmd_response(resp, req, 0, NULL);
    proto_cmd_take_body(resp, out.data, out.len);
}

static void on_cluster_info(nsrv_t *ns, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_cluster_info_t ci = {0};
    nsrv_cluster_info(ns, &ci);
    cm_buf_t out = CM_BUF_INIT;
    proto_cluster_info_encode(&ci, false, &out); /* Java never quotes these broker ids */
    proto_cluster_info_free(&ci);
    proto_cmd_response(resp, req, 0, NULL);
    proto_cmd_take_body(resp, out.data, out.len);
}

bool nsrv_handle(nsrv_t *ns, void *conn, const proto_cmd_t *req, proto_cmd_t *resp) {
    switch (req->code) {
    case PROTO_REGISTER_BROKER:
        on_register(ns, conn, req, resp);
        return true;
    case PROTO_UNREGISTER_BROKER:
        on_unregister(ns, req, resp);
        return true;
    case PROTO_GET_ROUTEINFO_BY_TOPIC:
        on_route(ns, req, resp);
        return true;
    case PROTO_GET_BROKER_CLUSTER_INFO:
        on_cluster_info(ns, req, resp);
        return true;
    case PROTO_PUT_KV_CONFIG:
    case PROTO_GET_KV_CONFIG:
    case PROTO_DELETE_KV_CONFIG:
        on_kv(ns, req, resp);
        return true;
    case PROTO_GET_ALL_TOPIC_LIST_FROM_NAMESERVER:
    case PROTO_GET_TOPICS_BY_CLUSTER:
        on_topic_list(ns, req, resp);
        return true;
    default:
        return false;
    }
}
