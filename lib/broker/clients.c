/* lib/broker/clients.c: producer and consumer group tables fed by HEART_BEAT, as RocketMQ's
 * ProducerManager and ConsumerManager keep them: members keyed by their connection, a
 * consumer group's subscriptions by topic, NOTIFY_CONSUMER_IDS_CHANGED to every member when
 * the membership changes, and channel expiry after 120 s without a heartbeat. */
#include "broker/clients.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct member {
    void *conn; /* referenced through the table's conn ops */
    char *client_id;
    int32_t language, version;
    int64_t last_ms; /* monotonic time of the last heartbeat */
} member_t;

typedef struct members {
    member_t *v;
    size_t n, cap;
} members_t;

typedef struct consumer_group {
    char consume_type[32], message_model[32], consume_from_where[64];
    bool unit_mode;
    cm_map_t *subs; /* topic -> proto_subscription_t */
    members_t members;
} consumer_group_t;

typedef struct producer_group {
    members_t members;
} producer_group_t;

struct broker_clients {
    pthread_mutex_t mu;
    cm_logger_t log;
    int64_t expiry_ms;
    broker_notify_fn *notify;
    void *notify_arg;
    broker_conn_ops_t ops;
    cm_map_t *consumers; /* group -> consumer_group_t */
    cm_map_t *producers; /* group -> producer_group_t */
};

/* ---------------------------------------------------------------- subscriptions */

static char *dup_or_null(const char *s) {
    return s ? cm_strdup(s) : NULL;
}

void broker_sub_copy(proto_subscription_t *dst, const proto_subscription_t *src) {
    *dst = (proto_subscription_t){0};
    dst->topic = dup_or_null(src->topic);
    dst->sub_string = dup_or_null(src->sub_string);
    dst->expression_type = dup_or_null(src->expression_type);
    for (size_t i = 0; i < src->tags.count; i++)
        proto_strlist_add(&dst->tags, src->tags.items[i]);
    if (src->code_count) {
        dst->codes = cm_malloc(src->code_count * sizeof(int32_t));
        memcpy(dst->codes, src->codes, src->code_count * sizeof(int32_t));
        dst->code_count = src->code_count;
    }
    dst->sub_version = src->sub_version;
    dst->class_filter_mode = src->class_filter_mode;
}

static void sub_free_value(void *p) {
    proto_subscription_free(p);
    cm_free(p);
}

/* ---------------------------------------------------------------- connection references */

static void *conn_ref(const broker_conn_ops_t *ops, void *conn) {
    return conn && ops->ref ? ops->ref(conn) : conn;
}

static void conn_unref(const broker_conn_ops_t *ops, void *conn) {
    if (conn && ops->unref) ops->unref(conn);
}

/* ---------------------------------------------------------------- member lists */

static member_t *members_find(members_t *ms, void *conn) {
    for (size_t i = 0; i < ms->n; i++)
        if (ms->v[i].conn == conn) return &ms->v[i];
    return NULL;
}

/* Adds or refreshes conn's entry. Returns true when conn is new to the list. */
static bool members_put(const broker_conn_ops_t *ops, members_t *ms, const broker_client_id_t *who,
                        int64_t now_ms) {
    member_t *m = members_find(ms, who->conn);
    bool added = m == NULL;
    if (!m) {
        if (ms->n == ms->cap) {
            ms->cap = ms->cap ? ms->cap * 2 : 4;
            ms->v = cm_realloc(ms->v, ms->cap * sizeof ms->v[0]);
        }
        m = &ms->v[ms->n++];
        *m = (member_t){.conn = conn_ref(ops, who->conn)};
    }
    /* A connection that now speaks for another client id keeps its slot, like Java. */
    if (!m->client_id || strcmp(m->client_id, who->client_id) != 0) {
        cm_free(m->client_id);
        m->client_id = cm_strdup(who->client_id);
    }
    m->language = who->language;
    m->version = who->version;
    m->last_ms = now_ms;
    return added;
}

static void members_remove_at(const broker_conn_ops_t *ops, members_t *ms, size_t i) {
    conn_unref(ops, ms->v[i].conn);
    cm_free(ms->v[i].client_id);
    ms->v[i] = ms->v[--ms->n];
}

static bool members_remove(const broker_conn_ops_t *ops, members_t *ms, void *conn) {
    member_t *m = members_find(ms, conn);
    if (!m) return false;
    members_remove_at(ops, ms, (size_t)(m - ms->v));
    return true;
}

static void members_free(const broker_conn_ops_t *ops, members_t *ms) {
    for (size_t i = 0; i < ms->n; i++) {
        conn_unref(ops, ms->v[i].conn);
        cm_free(ms->v[i].client_id);
    }
    cm_free(ms->v);
}

/* Group values are freed through these (the maps' free functions have no context). */
static void consumer_group_free(const broker_conn_ops_t *ops, consumer_group_t *g) {
    if (!g) return;
    cm_map_destroy(g->subs);
    members_free(ops, &g->members);
    cm_free(g);
}

static void producer_group_free(const broker_conn_ops_t *ops, producer_group_t *g) {
    if (!g) return;
    members_free(ops, &g->members);
    cm_free(g);
}

/* ---------------------------------------------------------------- notifications */

/* Connections to notify about one group, gathered under the lock and sent after it. */
typedef struct notice {
    void *conn;
    char *group;
} notice_t;

typedef struct notices {
    notice_t *v;
    size_t n, cap;
} notices_t;

/* Each notice holds its own connection reference until it is sent. */
static void notices_add_group(const broker_conn_ops_t *ops, notices_t *ns, const char *group,
                              const consumer_group_t *g) {
    for (size_t i = 0; i < g->members.n; i++) {
        if (ns->n == ns->cap) {
            ns->cap = ns->cap ? ns->cap * 2 : 8;
            ns->v = cm_realloc(ns->v, ns->cap * sizeof ns->v[0]);
        }
        ns->v[ns->n++] = (notice_t){conn_ref(ops, g->members.v[i].conn), cm_strdup(group)};
    }
}

/* Sends the notices, except to the connections in skip (they just closed or expired). */
static void notices_send(broker_clients_t *c, notices_t *ns, void *const *skip, size_t n_skip) {
    for (size_t i = 0; i < ns->n; i++) {
        bool skipped = false;
        for (size_t j = 0; j < n_skip && !skipped; j++)
            skipped = ns->v[i].conn == skip[j];
        if (c->notify && !skipped) c->notify(c->notify_arg, ns->v[i].conn, ns->v[i].group);
        conn_unref(&c->ops, ns->v[i].conn);
        cm_free(ns->v[i].group);
    }
    cm_free(ns->v);
    *ns = (notices_t){0};
}

/* ---------------------------------------------------------------- lifecycle */

broker_clients_t *broker_clients_new(const cm_logger_t *log, int64_t channel_expiry_ms,
                                     const broker_conn_ops_t *ops, broker_notify_fn *notify,
                                     void *notify_arg) {
    broker_clients_t *c = cm_calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->log = log ? *log : (cm_logger_t){NULL, NULL, RMQ_LOG_INFO};
    c->expiry_ms = channel_expiry_ms > 0 ? channel_expiry_ms : BROKER_CHANNEL_EXPIRY_MS;
    c->notify = notify;
    c->notify_arg = notify_arg;
    if (ops) c->ops = *ops;
    c->consumers = cm_map_new(NULL);
    c->producers = cm_map_new(NULL);
    return c;
}

void broker_clients_destroy(broker_clients_t *c) {
    if (!c) return;
    void *val;
    size_t it = 0;
    while (cm_map_next(c->consumers, &it, NULL, &val))
        consumer_group_free(&c->ops, val);
    it = 0;
    while (cm_map_next(c->producers, &it, NULL, &val))
        producer_group_free(&c->ops, val);
    cm_map_destroy(c->consumers);
    cm_map_destroy(c->producers);
    pthread_mutex_destroy(&c->mu);
    cm_free(c);
}

/* ---------------------------------------------------------------- consumers */

static consumer_group_t *consumer_group_get_or_add(broker_clients_t *c, const char *group) {
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (!g) {
        g = cm_calloc(1, sizeof *g);
        g->subs = cm_map_new(sub_free_value);
        cm_map_put(c->consumers, group, g);
    }
    return g;
}

/* Replaces the group's subscriptions with the declared ones. A newer subVersion replaces a
 * topic's entry; only topics appearing or disappearing count as a change (Java's rule). */
static bool update_subs(consumer_group_t *g, const proto_subscription_t *subs, size_t n) {
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        proto_subscription_t *old = cm_map_get(g->subs, subs[i].topic);
        if (old && subs[i].sub_version <= old->sub_version) continue;
        if (!old) changed = true;
        proto_subscription_t *copy = cm_malloc(sizeof *copy);
        broker_sub_copy(copy, &subs[i]);
        cm_map_put(g->subs, subs[i].topic, copy);
    }
    const char *topic;
    size_t it = 0;
    while (cm_map_next(g->subs, &it, &topic, NULL)) {
        bool declared = false;
        for (size_t i = 0; i < n && !declared; i++)
            declared = strcmp(subs[i].topic, topic) == 0;
        if (declared) continue;
        sub_free_value(cm_map_take(g->subs, topic));
        changed = true;
    }
    return changed;
}

static void copy_text(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

bool broker_clients_register_consumer(broker_clients_t *c, const broker_client_id_t *who,
                                      const broker_consumer_decl_t *decl, bool notify_enabled,
                                      int64_t now_ms) {
    notices_t notices = {0};
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = consumer_group_get_or_add(c, decl->group);
    copy_text(g->consume_type, sizeof g->consume_type, decl->consume_type);
    copy_text(g->message_model, sizeof g->message_model, decl->message_model);
    copy_text(g->consume_from_where, sizeof g->consume_from_where, decl->consume_from_where);
    g->unit_mode = decl->unit_mode;
    bool joined = members_put(&c->ops, &g->members, who, now_ms);
    bool subs_changed = update_subs(g, decl->subs, decl->n_subs);
    if (joined)
        cm_info(&c->log, "consumer %s joined group %s (%zu online)", who->client_id, decl->group,
                g->members.n);
    if ((joined || subs_changed) && notify_enabled)
        notices_add_group(&c->ops, &notices, decl->group, g);
    pthread_mutex_unlock(&c->mu);
    notices_send(c, &notices, NULL, 0);
    return joined || subs_changed;
}

/* Removes conn from one consumer group (dropping the group once empty) and queues a notice
 * for the members left. Caller holds the lock. */
static bool consumer_leave(broker_clients_t *c, const char *group, void *conn, bool notify,
                           notices_t *notices) {
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (!g || !members_remove(&c->ops, &g->members, conn)) return false;
    cm_info(&c->log, "a consumer left group %s (%zu online)", group, g->members.n);
    if (g->members.n == 0)
        consumer_group_free(&c->ops, cm_map_take(c->consumers, group));
    else if (notify)
        notices_add_group(&c->ops, notices, group, g);
    return true;
}

void broker_clients_unregister_consumer(broker_clients_t *c, void *conn, const char *group,
                                        bool notify_enabled) {
    notices_t notices = {0};
    pthread_mutex_lock(&c->mu);
    consumer_leave(c, group, conn, notify_enabled, &notices);
    pthread_mutex_unlock(&c->mu);
    notices_send(c, &notices, NULL, 0);
}

/* ---------------------------------------------------------------- producers */

void broker_clients_register_producer(broker_clients_t *c, const broker_client_id_t *who,
                                      const char *group, int64_t now_ms) {
    pthread_mutex_lock(&c->mu);
    producer_group_t *g = cm_map_get(c->producers, group);
    if (!g) {
        g = cm_calloc(1, sizeof *g);
        cm_map_put(c->producers, group, g);
    }
    if (members_put(&c->ops, &g->members, who, now_ms))
        cm_debug(&c->log, "producer %s joined group %s", who->client_id, group);
    pthread_mutex_unlock(&c->mu);
}

static void producer_leave(broker_clients_t *c, const char *group, void *conn) {
    producer_group_t *g = cm_map_get(c->producers, group);
    if (!g || !members_remove(&c->ops, &g->members, conn)) return;
    if (g->members.n == 0) producer_group_free(&c->ops, cm_map_take(c->producers, group));
}

void broker_clients_unregister_producer(broker_clients_t *c, void *conn, const char *group) {
    pthread_mutex_lock(&c->mu);
    producer_leave(c, group, conn);
    pthread_mutex_unlock(&c->mu);
}

void *broker_clients_producer_conn(broker_clients_t *c, const char *group) {
    void *conn = NULL;
    int64_t newest = INT64_MIN;
    pthread_mutex_lock(&c->mu);
    producer_group_t *g = cm_map_get(c->producers, group);
    for (size_t i = 0; g && i < g->members.n; i++) {
        if (g->members.v[i].last_ms <= newest) continue;
        newest = g->members.v[i].last_ms;
        conn = g->members.v[i].conn;
    }
    conn = conn_ref(&c->ops, conn);
    pthread_mutex_unlock(&c->mu);
    return conn;
}

void *broker_clients_consumer_conn(broker_clients_t *c, const char *group, const char *client_id) {
    void *conn = NULL;
    int64_t newest = INT64_MIN;
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    for (size_t i = 0; g && i < g->members.n; i++) {
        const member_t *m = &g->members.v[i];
        if (strcmp(m->client_id, client_id) != 0 || m->last_ms <= newest) continue;
        newest = m->last_ms;
        conn = m->conn;
    }
    conn = conn_ref(&c->ops, conn);
    pthread_mutex_unlock(&c->mu);
    return conn;
}

bool broker_clients_group_view(broker_clients_t *c, const char *group, broker_group_view_t *v) {
    memset(v, 0, sizeof *v);
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (g && g->members.n) {
        v->members = cm_calloc(g->members.n, sizeof *v->members);
        for (size_t i = 0; i < g->members.n; i++) {
            const member_t *m = &g->members.v[i];
            v->members[i] = (broker_member_view_t){.conn = conn_ref(&c->ops, m->conn),
                                                   .client_id = cm_strdup(m->client_id),
                                                   .language = m->language,
                                                   .version = m->version};
        }
        v->n_members = g->members.n;
        v->subs = cm_calloc(cm_map_count(g->subs) + 1, sizeof *v->subs);
        size_t it = 0;
        void *sub;
        while (cm_map_next(g->subs, &it, NULL, &sub))
            broker_sub_copy(&v->subs[v->n_subs++], sub);
        copy_text(v->consume_type, sizeof v->consume_type, g->consume_type);
        copy_text(v->message_model, sizeof v->message_model, g->message_model);
        copy_text(v->consume_from_where, sizeof v->consume_from_where, g->consume_from_where);
    }
    pthread_mutex_unlock(&c->mu);
    return v->n_members > 0;
}

void broker_clients_group_view_free(broker_clients_t *c, broker_group_view_t *v) {
    for (size_t i = 0; i < v->n_members; i++) {
        conn_unref(&c->ops, v->members[i].conn);
        cm_free(v->members[i].client_id);
    }
    for (size_t i = 0; i < v->n_subs; i++)
        proto_subscription_free(&v->subs[i]);
    cm_free(v->members);
    cm_free(v->subs);
    memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------------- channel close, expiry */

/* Group names of a table, copied: leaving a group may remove it while we walk. */
static char **group_names(cm_map_t *m, size_t *n) {
    char **names = cm_calloc(cm_map_count(m) + 1, sizeof(char *));
    const char *key;
    size_t it = 0;
    *n = 0;
    while (cm_map_next(m, &it, &key, NULL))
        names[(*n)++] = cm_strdup(key);
    return names;
}

static void drop_conn_locked(broker_clients_t *c, void *conn, notices_t *notices) {
    size_t n;
    char **names = group_names(c->consumers, &n);
    /* A closed channel always tells the others (Java's doChannelCloseEvent ignores the
     * group's notify flag here). */
    for (size_t i = 0; i < n; i++)
        consumer_leave(c, names[i], conn, true, notices);
    broker_clients_free_ids(names, n);
    names = group_names(c->producers, &n);
    for (size_t i = 0; i < n; i++)
        producer_leave(c, names[i], conn);
    broker_clients_free_ids(names, n);
}

void broker_clients_conn_closed(broker_clients_t *c, void *conn) {
    notices_t notices = {0};
    pthread_mutex_lock(&c->mu);
    drop_conn_locked(c, conn, &notices);
    pthread_mutex_unlock(&c->mu);
    /* Never notify the connection that just closed. */
    notices_send(c, &notices, &conn, 1);
}

typedef struct conn_list {
    void **v;
    size_t n, cap;
} conn_list_t;

/* Adds conn once, with a reference of the list's own. */
static void conn_list_add(const broker_conn_ops_t *ops, conn_list_t *l, void *conn) {
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == conn) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = cm_realloc(l->v, l->cap * sizeof l->v[0]);
    }
    l->v[l->n++] = conn_ref(ops, conn);
}

static void collect_idle(const broker_conn_ops_t *ops, cm_map_t *groups, bool consumers,
                         int64_t expiry_ms, int64_t now_ms, conn_list_t *idle) {
    void *val;
    size_t it = 0;
    while (cm_map_next(groups, &it, NULL, &val)) {
        members_t *ms =
            consumers ? &((consumer_group_t *)val)->members : &((producer_group_t *)val)->members;
        for (size_t i = 0; i < ms->n; i++)
            if (now_ms - ms->v[i].last_ms > expiry_ms) conn_list_add(ops, idle, ms->v[i].conn);
    }
}

size_t broker_clients_expire(broker_clients_t *c, int64_t now_ms, void ***conns, size_t *n_conns) {
    notices_t notices = {0};
    conn_list_t idle = {0};
    pthread_mutex_lock(&c->mu);
    collect_idle(&c->ops, c->consumers, true, c->expiry_ms, now_ms, &idle);
    collect_idle(&c->ops, c->producers, false, c->expiry_ms, now_ms, &idle);
    for (size_t i = 0; i < idle.n; i++) {
        cm_warn(&c->log, "client channel %p expired: no heartbeat for %lld ms", idle.v[i],
                (long long)c->expiry_ms);
        drop_conn_locked(c, idle.v[i], &notices);
    }
    pthread_mutex_unlock(&c->mu);
    notices_send(c, &notices, idle.v, idle.n);
    *conns = idle.v;
    *n_conns = idle.n;
    return idle.n;
}

/* ---------------------------------------------------------------- look-ups */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t broker_clients_consumer_ids(broker_clients_t *c, const char *group, char ***ids) {
    size_t n = 0;
    *ids = NULL;
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (g && g->members.n) {
        *ids = cm_calloc(g->members.n, sizeof(char *));
        for (size_t i = 0; i < g->members.n; i++) {
            /* Two connections of one client id count once, as one consumer. */
            bool seen = false;
            for (size_t j = 0; j < n && !seen; j++)
                seen = strcmp((*ids)[j], g->members.v[i].client_id) == 0;
            if (!seen) (*ids)[n++] = cm_strdup(g->members.v[i].client_id);
        }
    }
    pthread_mutex_unlock(&c->mu);
    /* Clients sort the list themselves before allocating; a sorted answer keeps every
     * client's view (and our tests) deterministic. Byte order equals Java's String order for
     * the ASCII ids clients use. */
    if (n) qsort(*ids, n, sizeof(char *), cmp_str);
    return n;
}

void broker_clients_free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        cm_free(ids[i]);
    cm_free(ids);
}

size_t broker_clients_consumer_conns(broker_clients_t *c, const char *group, void ***conns) {
    size_t n = 0;
    *conns = NULL;
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (g && g->members.n) {
        *conns = cm_calloc(g->members.n, sizeof(void *));
        for (size_t i = 0; i < g->members.n; i++)
            (*conns)[n++] = conn_ref(&c->ops, g->members.v[i].conn);
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

void broker_clients_release_conns(broker_clients_t *c, void **conns, size_t n) {
    for (size_t i = 0; i < n; i++)
        conn_unref(&c->ops, conns[i]);
    cm_free(conns);
}

bool broker_clients_group_online(broker_clients_t *c, const char *group) {
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    bool online = g && g->members.n > 0;
    pthread_mutex_unlock(&c->mu);
    return online;
}

bool broker_clients_find_sub(broker_clients_t *c, const char *group, const char *topic,
                             proto_subscription_t *out) {
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    proto_subscription_t *s = g ? cm_map_get(g->subs, topic) : NULL;
    if (s) broker_sub_copy(out, s);
    pthread_mutex_unlock(&c->mu);
    return s != NULL;
}

bool broker_clients_consumer_info(broker_clients_t *c, const char *group, char *consume_type,
                                  char *message_model, char *consume_from_where, size_t size) {
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (g) {
        if (consume_type) copy_text(consume_type, size, g->consume_type);
        if (message_model) copy_text(message_model, size, g->message_model);
        if (consume_from_where) copy_text(consume_from_where, size, g->consume_from_where);
    }
    pthread_mutex_unlock(&c->mu);
    return g != NULL;
}

/* ---------------------------------------------------------------- request handlers */

static void register_consumer(broker_meta_tables_t *t, const broker_client_id_t *who,
                              const proto_consumer_data_t *cd) {
    broker_subgroup_t sg;
    bool notify = true;
    if (broker_subgroups_find(t->subgroups, cd->group_name, &sg)) {
        notify = sg.notify_consumer_ids_changed_enable;
        /* Failed messages go back to %RETRY%<group>; it must exist before the first one. */
        char *retry = cm_sprintf("%%RETRY%%%s", cd->group_name);
        int32_t sys_flag = cd->unit_mode ? 0x2 /* UNIT_SUB */ : 0;
        if (t->ensure_retry_topic)
            t->ensure_retry_topic(t->arg, retry, sg.retry_queue_nums, 0x4 | 0x2, sys_flag);
        cm_free(retry);
    }
    broker_consumer_decl_t decl = {cd->group_name,
                                   proto_consume_type_name(cd->consume_type),
                                   proto_message_model_name(cd->message_model),
                                   proto_consume_from_name(cd->consume_from_where),
                                   cd->unit_mode,
                                   cd->subs,
                                   cd->sub_count};
    broker_clients_register_consumer(t->clients, who, &decl, notify, cm_mono_ms());
}

static void on_heartbeat(broker_meta_tables_t *t, void *conn, const proto_cmd_t *req,
                         proto_cmd_t *resp) {
    proto_heartbeat_t hb = {0};
    if (proto_heartbeat_decode(req->body, req->body_len, &hb) != RMQ_OK || !hb.client_id) {
        proto_heartbeat_free(&hb);
        proto_cmd_response(resp, req, 1, "cannot decode the HeartbeatData body");
        return;
    }
    broker_client_id_t who = {conn, hb.client_id, req->language, req->version};
    for (size_t i = 0; i < hb.consumer_count; i++)
        if (hb.consumers[i].group_name) register_consumer(t, &who, &hb.consumers[i]);
    for (size_t i = 0; i < hb.producer_groups.count; i++)
        broker_clients_register_producer(t->clients, &who, hb.producer_groups.items[i],
                                         cm_mono_ms());
    proto_heartbeat_free(&hb);
    proto_cmd_response(resp, req, 0, NULL);
}

static void reply_bad_header(const proto_cmd_t *req, proto_cmd_t *resp,
                             const proto_hdr_err_t *err) {
    char remark[256];
    proto_hdr_err_format(err, remark, sizeof remark);
    proto_cmd_response(resp, req, 1, remark);
}

static void on_unregister(broker_meta_tables_t *t, void *conn, const proto_cmd_t *req,
                          proto_cmd_t *resp) {
    proto_unregister_client_req_t h;
    proto_hdr_err_t err;
    if (proto_unregister_client_req_decode(&req->ext, &h, &err) != RMQ_OK) {
        reply_bad_header(req, resp, &err);
        return;
    }
    if (h.producer_group && *h.producer_group)
        broker_clients_unregister_producer(t->clients, conn, h.producer_group);
    if (h.consumer_group && *h.consumer_group) {
        broker_subgroup_t sg;
        bool notify = true;
        if (broker_subgroups_find(t->subgroups, h.consumer_group, &sg))
            notify = sg.notify_consumer_ids_changed_enable;
        broker_clients_unregister_consumer(t->clients, conn, h.consumer_group, notify);
    }
    proto_cmd_response(resp, req, 0, NULL);
    resp->has_ext = true; /* UnregisterClientResponseHeader: "extFields":{} */
}

static void on_consumer_list(broker_meta_tables_t *t, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_group_req_t h;
    proto_hdr_err_t err;
    if (proto_group_req_decode(&req->ext, &h, &err) != RMQ_OK) {
        reply_bad_header(req, resp, &err);
        return;
    }
    char **ids;
    size_t n = broker_clients_consumer_ids(t->clients, h.consumer_group, &ids);
    if (n == 0) {
        char *remark = cm_sprintf("no consumer for this group, %s", h.consumer_group);
        proto_cmd_response(resp, req, 1, remark);
        cm_free(remark);
    } else {
        proto_strlist_t list = {ids, n};
        cm_buf_t out = CM_BUF_INIT;
        proto_consumer_list_encode(&list, &out);
        proto_cmd_response(resp, req, 0, NULL);
        proto_cmd_take_body(resp, out.data, out.len);
    }
    resp->has_ext = true; /* GetConsumerListByGroupResponseHeader: "extFields":{} */
    broker_clients_free_ids(ids, n);
}

static void on_lock(broker_meta_tables_t *t, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_lock_batch_t lb = {0};
    if (proto_lock_batch_decode(req->body, req->body_len, &lb) != RMQ_OK || !lb.client_id ||
        !lb.consumer_group) {
        proto_lock_batch_free(&lb);
        proto_cmd_response(resp, req, 1, "cannot decode the LockBatchRequestBody");
        return;
    }
    size_t n = lb.mqs.count;
    broker_mq_t *mqs = cm_calloc(n + 1, sizeof *mqs);
    bool *granted = cm_calloc(n + 1, sizeof *granted);
    for (size_t i = 0; i < n; i++)
        mqs[i] = (broker_mq_t){lb.mqs.items[i].topic, lb.mqs.items[i].broker_name,
                               lb.mqs.items[i].queue_id};
    proto_mq_list_t ok = {0};
    if (req->code == PROTO_LOCK_BATCH_MQ) {
        broker_locks_try(t->locks, lb.consumer_group, lb.client_id, mqs, n, granted, cm_mono_ms());
        for (size_t i = 0; i < n; i++)
            if (granted[i])
                proto_mq_list_add(&ok, mqs[i].topic, mqs[i].broker_name, mqs[i].queue_id);
    } else {
        broker_locks_unlock(t->locks, lb.consumer_group, lb.client_id, mqs, n);
    }
    proto_cmd_response(resp, req, 0, NULL);
    if (req->code == PROTO_LOCK_BATCH_MQ) {
        cm_buf_t out = CM_BUF_INIT;
        proto_lock_ok_encode(&ok, &out);
        proto_cmd_take_body(resp, out.data, out.len);
    }
    proto_mq_list_free(&ok);
    cm_free(granted);
    cm_free(mqs);
    proto_lock_batch_free(&lb);
}

static void on_update_subgroup(broker_meta_tables_t *t, const proto_cmd_t *req, proto_cmd_t *resp) {
    proto_json_t *root = NULL;
    broker_subgroup_t sg;
    if (proto_json_parse((const char *)req->body, req->body_len, &root) != RMQ_OK ||
        broker_subgroup_from_json(root, &sg) != RMQ_OK) {
        proto_json_free(root);
        proto_cmd_response(resp, req, 1, "cannot decode the SubscriptionGroupConfig body");
        return;
    }
    proto_json_free(root);
    broker_subgroups_update(t->subgroups, &sg);
    proto_cmd_response(resp, req, 0, NULL);
}

bool broker_meta_handle(broker_meta_tables_t *t, void *conn, const proto_cmd_t *req,
                        proto_cmd_t *resp) {
    switch (req->code) {
    case PROTO_HEART_BEAT:
        on_heartbeat(t, conn, req, resp);
        return true;
    case PROTO_UNREGISTER_CLIENT:
        on_unregister(t, conn, req, resp);
        return true;
    case PROTO_GET_CONSUMER_LIST_BY_GROUP:
        on_consumer_list(t, req, resp);
        return true;
    case PROTO_LOCK_BATCH_MQ:
    case PROTO_UNLOCK_BATCH_MQ:
        on_lock(t, req, resp);
        return true;
    case PROTO_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP:
        on_update_subgroup(t, req, resp);
        return true;
    default:
        return false;
    }
}
