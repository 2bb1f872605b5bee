/* lib/broker/clients.c: producer and consumer group tables fed by HEART_BEAT, as RocketMQ's
 * ProducerManager and ConsumerManager keep them: members keyed by their connection, a
 * consumer group's subscriptions by topic, NOTIFY_CONSUMER_IDS_CHANGED to every member when
 * the membership changes, and channel expiry after 120 s without a heartbeat. */
#include "broker/clients.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct member {
    void *conn;
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
    cm_map_t *subs; /* topic -> broker_sub_t */
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
    cm_map_t *consumers; /* group -> consumer_group_t */
    cm_map_t *producers; /* group -> producer_group_t */
};

/* ---------------------------------------------------------------- subscriptions */

void broker_sub_free(broker_sub_t *s) {
    if (!s) return;
    cm_free(s->topic);
    cm_free(s->sub_string);
    cm_free(s->expression_type);
    for (size_t i = 0; i < s->n_tags; i++) cm_free(s->tags[i]);
    cm_free(s->tags);
    cm_free(s->codes);
    memset(s, 0, sizeof *s);
}

static char *dup_or_null(const char *s) { return s ? cm_strdup(s) : NULL; }

void broker_sub_copy(broker_sub_t *dst, const broker_sub_t *src) {
    *dst = *src;
    dst->topic = dup_or_null(src->topic);
    dst->sub_string = dup_or_null(src->sub_string);
    dst->expression_type = dup_or_null(src->expression_type);
    dst->tags = src->n_tags ? cm_calloc(src->n_tags, sizeof(char *)) : NULL;
    for (size_t i = 0; i < src->n_tags; i++) dst->tags[i] = cm_strdup(src->tags[i]);
    dst->codes = NULL;
    if (src->n_codes) {
        dst->codes = cm_malloc(src->n_codes * sizeof(int32_t));
        memcpy(dst->codes, src->codes, src->n_codes * sizeof(int32_t));
    }
}

static void sub_free_value(void *p) {
    broker_sub_free(p);
    cm_free(p);
}

/* ---------------------------------------------------------------- member lists */

static member_t *members_find(members_t *ms, void *conn) {
    for (size_t i = 0; i < ms->n; i++)
        if (ms->v[i].conn == conn) return &ms->v[i];
    return NULL;
}

/* Adds or refreshes conn's entry. Returns true when conn is new to the list. */
static bool members_put(members_t *ms, const broker_client_id_t *who, int64_t now_ms) {
    member_t *m = members_find(ms, who->conn);
    bool added = m == NULL;
    if (!m) {
        if (ms->n == ms->cap) {
            ms->cap = ms->cap ? ms->cap * 2 : 4;
            ms->v = cm_realloc(ms->v, ms->cap * sizeof ms->v[0]);
        }
        m = &ms->v[ms->n++];
        *m = (member_t){.conn = who->conn};
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

static void members_remove_at(members_t *ms, size_t i) {
    cm_free(ms->v[i].client_id);
    ms->v[i] = ms->v[--ms->n];
}

static bool members_remove(members_t *ms, void *conn) {
    member_t *m = members_find(ms, conn);
    if (!m) return false;
    members_remove_at(ms, (size_t)(m - ms->v));
    return true;
}

static void members_free(members_t *ms) {
    for (size_t i = 0; i < ms->n; i++) cm_free(ms->v[i].client_id);
    cm_free(ms->v);
}

static void consumer_group_free(void *p) {
    consumer_group_t *g = p;
    if (!g) return;
    cm_map_destroy(g->subs);
    members_free(&g->members);
    cm_free(g);
}

static void producer_group_free(void *p) {
    producer_group_t *g = p;
    if (!g) return;
    members_free(&g->members);
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

static void notices_add_group(notices_t *ns, const char *group, const consumer_group_t *g) {
    for (size_t i = 0; i < g->members.n; i++) {
        if (ns->n == ns->cap) {
            ns->cap = ns->cap ? ns->cap * 2 : 8;
            ns->v = cm_realloc(ns->v, ns->cap * sizeof ns->v[0]);
        }
        ns->v[ns->n++] = (notice_t){g->members.v[i].conn, cm_strdup(group)};
    }
}

static void notices_send(broker_clients_t *c, notices_t *ns) {
    for (size_t i = 0; i < ns->n; i++) {
        if (c->notify && ns->v[i].conn) c->notify(c->notify_arg, ns->v[i].conn, ns->v[i].group);
        cm_free(ns->v[i].group);
    }
    cm_free(ns->v);
    *ns = (notices_t){0};
}

/* ---------------------------------------------------------------- lifecycle */

broker_clients_t *broker_clients_new(const cm_logger_t *log, int64_t channel_expiry_ms,
                                     broker_notify_fn *notify, void *notify_arg) {
    broker_clients_t *c = cm_calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->log = log ? *log : (cm_logger_t){NULL, NULL, RMQ_LOG_INFO};
    c->expiry_ms = channel_expiry_ms > 0 ? channel_expiry_ms : BROKER_CHANNEL_EXPIRY_MS;
    c->notify = notify;
    c->notify_arg = notify_arg;
    c->consumers = cm_map_new(consumer_group_free);
    c->producers = cm_map_new(producer_group_free);
    return c;
}

void broker_clients_destroy(broker_clients_t *c) {
    if (!c) return;
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
static bool update_subs(consumer_group_t *g, const broker_sub_t *subs, size_t n) {
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        broker_sub_t *old = cm_map_get(g->subs, subs[i].topic);
        if (old && subs[i].sub_version <= old->sub_version) continue;
        if (!old) changed = true;
        broker_sub_t *copy = cm_malloc(sizeof *copy);
        broker_sub_copy(copy, &subs[i]);
        cm_map_put(g->subs, subs[i].topic, copy);
    }
    const char *topic;
    size_t it = 0;
    while (cm_map_next(g->subs, &it, &topic, NULL)) {
        bool declared = false;
        for (size_t i = 0; i < n && !declared; i++) declared = strcmp(subs[i].topic, topic) == 0;
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
    bool joined = members_put(&g->members, who, now_ms);
    bool subs_changed = update_subs(g, decl->subs, decl->n_subs);
    if (joined)
        cm_info(&c->log, "consumer %s joined group %s (%zu online)", who->client_id, decl->group,
                g->members.n);
    if ((joined || subs_changed) && notify_enabled) notices_add_group(&notices, decl->group, g);
    pthread_mutex_unlock(&c->mu);
    notices_send(c, &notices);
    return joined || subs_changed;
}

/* Removes conn from one consumer group (dropping the group once empty) and queues a notice
 * for the members left. Caller holds the lock. */
static bool consumer_leave(broker_clients_t *c, const char *group, void *conn, bool notify,
                           notices_t *notices) {
    consumer_group_t *g = cm_map_get(c->consumers, group);
    if (!g || !members_remove(&g->members, conn)) return false;
    cm_info(&c->log, "a consumer left group %s (%zu online)", group, g->members.n);
    if (g->members.n == 0) consumer_group_free(cm_map_take(c->consumers, group));
    else if (notify) notices_add_group(notices, group, g);
    return true;
}

void broker_clients_unregister_consumer(broker_clients_t *c, void *conn, const char *group,
                                        bool notify_enabled) {
    notices_t notices = {0};
    pthread_mutex_lock(&c->mu);
    consumer_leave(c, group, conn, notify_enabled, &notices);
    pthread_mutex_unlock(&c->mu);
    notices_send(c, &notices);
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
    if (members_put(&g->members, who, now_ms))
        cm_debug(&c->log, "producer %s joined group %s", who->client_id, group);
    pthread_mutex_unlock(&c->mu);
}

static void producer_leave(broker_clients_t *c, const char *group, void *conn) {
    producer_group_t *g = cm_map_get(c->producers, group);
    if (!g || !members_remove(&g->members, conn)) return;
    if (g->members.n == 0) producer_group_free(cm_map_take(c->producers, group));
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
    pthread_mutex_unlock(&c->mu);
    return conn;
}

/* ---------------------------------------------------------------- channel close, expiry */

/* Group names of a table, copied: leaving a group may remove it while we walk. */
static char **group_names(cm_map_t *m, size_t *n) {
    char **names = cm_calloc(cm_map_count(m) + 1, sizeof(char *));
    const char *key;
    size_t it = 0;
    *n = 0;
    while (cm_map_next(m, &it, &key, NULL)) names[(*n)++] = cm_strdup(key);
    return names;
}

static void drop_conn_locked(broker_clients_t *c, void *conn, notices_t *notices) {
    size_t n;
    char **names = group_names(c->consumers, &n);
    /* A closed channel always tells the others (Java's doChannelCloseEvent ignores the
     * group's notify flag here). */
    for (size_t i = 0; i < n; i++) consumer_leave(c, names[i], conn, true, notices);
    broker_clients_free_ids(names, n);
    names = group_names(c->producers, &n);
    for (size_t i = 0; i < n; i++) producer_leave(c, names[i], conn);
    broker_clients_free_ids(names, n);
}

void broker_clients_conn_closed(broker_clients_t *c, void *conn) {
    notices_t notices = {0};
    pthread_mutex_lock(&c->mu);
    drop_conn_locked(c, conn, &notices);
    pthread_mutex_unlock(&c->mu);
    /* Never notify the connection that just closed. */
    for (size_t i = 0; i < notices.n; i++)
        if (notices.v[i].conn == conn) notices.v[i].conn = NULL;
    notices_send(c, &notices);
}

typedef struct conn_list {
    void **v;
    size_t n, cap;
} conn_list_t;

static void conn_list_add(conn_list_t *l, void *conn) {
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == conn) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = cm_realloc(l->v, l->cap * sizeof l->v[0]);
    }
    l->v[l->n++] = conn;
}

static void collect_idle(cm_map_t *groups, bool consumers, int64_t expiry_ms, int64_t now_ms,
                         conn_list_t *idle) {
    void *val;
    size_t it = 0;
    while (cm_map_next(groups, &it, NULL, &val)) {
        members_t *ms = consumers ? &((consumer_group_t *)val)->members
                                  : &((producer_group_t *)val)->members;
        for (size_t i = 0; i < ms->n; i++)
            if (now_ms - ms->v[i].last_ms > expiry_ms) conn_list_add(idle, ms->v[i].conn);
    }
}

size_t broker_clients_expire(broker_clients_t *c, int64_t now_ms, void ***conns,
                             size_t *n_conns) {
    notices_t notices = {0};
    conn_list_t idle = {0};
    pthread_mutex_lock(&c->mu);
    collect_idle(c->consumers, true, c->expiry_ms, now_ms, &idle);
    collect_idle(c->producers, false, c->expiry_ms, now_ms, &idle);
    for (size_t i = 0; i < idle.n; i++) {
        cm_warn(&c->log, "client channel %p expired: no heartbeat for %lld ms", idle.v[i],
                (long long)c->expiry_ms);
        drop_conn_locked(c, idle.v[i], &notices);
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < notices.n; i++)
        for (size_t j = 0; j < idle.n; j++)
            if (notices.v[i].conn == idle.v[j]) notices.v[i].conn = NULL;
    notices_send(c, &notices);
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
    for (size_t i = 0; i < n; i++) cm_free(ids[i]);
    cm_free(ids);
}

bool broker_clients_group_online(broker_clients_t *c, const char *group) {
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    bool online = g && g->members.n > 0;
    pthread_mutex_unlock(&c->mu);
    return online;
}

bool broker_clients_find_sub(broker_clients_t *c, const char *group, const char *topic,
                             broker_sub_t *out) {
    pthread_mutex_lock(&c->mu);
    consumer_group_t *g = cm_map_get(c->consumers, group);
    broker_sub_t *s = g ? cm_map_get(g->subs, topic) : NULL;
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
