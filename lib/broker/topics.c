/* lib/broker/topics.c: the broker's topic table (RocketMQ's TopicConfigManager): built-in
 * topics, config/topics.json, auto-creation on send through TBW102, %RETRY% topics,
 * UPDATE_AND_CREATE_TOPIC, and a data version that tells name servers the table changed. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>

#define TOPICS_FILE "topics.json"
#define TBW102 "TBW102"

struct broker_topics {
    pthread_mutex_t mu;       /* guards the table and the version */
    pthread_mutex_t write_mu; /* orders file writes (built outside mu) */
    cm_map_t *table;          /* name -> broker_topic_t */
    proto_data_version_t version;
    bool dirty; /* topics.json is behind the table (set at start; the service thread writes) */
};

/* Names an admin may not create (TopicValidator.SYSTEM_TOPIC_SET). */
static const char *const system_names[] = {TBW102,
                                           STORE_SCHEDULE_TOPIC,
                                           "BenchmarkTest",
                                           "RMQ_SYS_TRANS_HALF_TOPIC",
                                           "RMQ_SYS_TRACE_TOPIC",
                                           "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                                           "TRANS_CHECK_MAX_TIME_TOPIC",
                                           "SELF_TEST_TOPIC",
                                           "OFFSET_MOVED_EVENT",
                                           NULL};

static bool in_list(const char *const *list, const char *s) {
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return true;
    return false;
}

static bool conflicts_with_system(const char *topic) {
    return in_list(system_names, topic) || strncmp(topic, "rmq_sys_", 8) == 0;
}

/* ---------------------------------------------------------------- table */

static broker_topic_t *topic_dup(const broker_topic_t *t) {
    broker_topic_t *c = cm_malloc(sizeof *c);
    *c = *t;
    return c;
}

static void topic_init(broker_topic_t *t, const char *name, int32_t queues, int32_t perm) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%.127s", name);
    t->read_queue_nums = t->write_queue_nums = queues;
    t->perm = perm;
}

/* Bumps the data version; caller holds mu. */
static void version_bump(broker_topics_t *t) {
    t->version.timestamp = cm_now_ms();
    t->version.counter++;
}

static void put_topic_json(cm_buf_t *out, const broker_topic_t *t, bool last) {
    cm_buf_append_str(out, "\t\t");
    proto_json_put_str(out, t->name, strlen(t->name));
    cm_buf_printf(out,
                  ":{\n\t\t\t\"order\":%s,\n\t\t\t\"perm\":%d,\n\t\t\t\"readQueueNums\":%d,\n"
                  "\t\t\t\"topicFilterType\":\"%s\",\n\t\t\t\"topicName\":",
                  t->order ? "true" : "false", t->perm, t->read_queue_nums,
                  t->multi_tag ? "MULTI_TAG" : "SINGLE_TAG");
    proto_json_put_str(out, t->name, strlen(t->name));
    cm_buf_printf(out, ",\n\t\t\t\"topicSysFlag\":%d,\n\t\t\t\"writeQueueNums\":%d\n\t\t}%s\n",
                  t->sys_flag, t->write_queue_nums, last ? "" : ",");
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Topic names sorted (Java writes its maps in key order); caller holds mu. */
static const char **sorted_names(broker_topics_t *t, size_t *n) {
    *n = cm_map_count(t->table);
    const char **names = cm_malloc((*n ? *n : 1) * sizeof *names);
    size_t it = 0, i = 0;
    const char *key;
    void *val;
    while (cm_map_next(t->table, &it, &key, &val))
        names[i++] = key;
    qsort(names, *n, sizeof *names, cmp_names);
    return names;
}

/* topics.json in Java's pretty shape; caller holds mu. */
static char *table_json(broker_topics_t *t) {
    cm_buf_t out = CM_BUF_INIT;
    cm_buf_printf(&out,
                  "{\n\t\"dataVersion\":{\n\t\t\"counter\":%lld,\n\t\t\"timestamp\":%lld\n\t},\n"
                  "\t\"topicConfigTable\":{\n",
                  (long long)t->version.counter, (long long)t->version.timestamp);
    size_t n;
    const char **names = sorted_names(t, &n);
    for (size_t i = 0; i < n; i++)
        put_topic_json(&out, cm_map_get(t->table, names[i]), i + 1 == n);
    cm_free(names);
    cm_buf_append_str(&out, "\t}\n}\n");
    return cm_buf_take_str(&out);
}

static void persist(broker_t *b) {
    broker_topics_t *t = b->topics;
    char path[1100];
    broker_cfg_path(b, TOPICS_FILE, path, sizeof path);
    pthread_mutex_lock(&t->write_mu);
    pthread_mutex_lock(&t->mu);
    char *text = table_json(t);
    t->dirty = false;
    pthread_mutex_unlock(&t->mu);
    if (!broker_cfg_write(&b->log, path, text, strlen(text))) {
        pthread_mutex_lock(&t->mu);
        t->dirty = true; /* the service thread tries again */
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&t->write_mu);
    cm_free(text);
}

void broker_topics_flush(broker_t *b) {
    if (!b->topics) return;
    pthread_mutex_lock(&b->topics->mu);
    bool dirty = b->topics->dirty;
    pthread_mutex_unlock(&b->topics->mu);
    if (dirty) persist(b);
}

/* After an explicit change (admin create/update): the file at once, then the name servers
 * (which read the new version from memory). */
static void changed(broker_t *b) {
    persist(b);
    if (b->started) broker_meta_topics_changed(b);
}

/* After a topic created by a send (auto-creation, retry topics): the name servers at once,
 * the file from the service thread within a second (put_if_absent marked the table dirty).
 * A write and fsync here would hold the send thread — and every send queued behind it —
 * for as long as the disk takes, which under load exceeds waitTimeMillsInSendQueue; the
 * topic is rebuilt from the store's queues if the broker dies before the write. */
static void changed_by_send(broker_t *b) {
    if (b->started) broker_meta_topics_changed(b);
}

/* ---------------------------------------------------------------- loading */

static void load_file(broker_t *b, broker_topics_t *t) {
    char path[1100];
    broker_cfg_path(b, TOPICS_FILE, path, sizeof path);
    proto_json_t *root = broker_cfg_load(&b->log, path, NULL);
    if (!root) return;
    const proto_json_t *dv = proto_json_get(root, "dataVersion");
    t->version.counter = proto_json_get_int(dv, "counter", 0);
    t->version.timestamp = proto_json_get_int(dv, "timestamp", 0);
    const proto_json_t *tab = proto_json_get(root, "topicConfigTable");
    for (size_t i = 0; tab && tab->type == PJ_OBJECT && i < tab->len; i++) {
        const proto_json_t *v = tab->items[i];
        const char *name = proto_json_get_str(v, "topicName", NULL);
        if (!name || !proto_topic_name_valid(name)) continue;
        broker_topic_t tc;
        topic_init(&tc, name, (int32_t)proto_json_get_int(v, "readQueueNums", 16),
                   (int32_t)proto_json_get_int(v, "perm", PROTO_PERM_READ | PROTO_PERM_WRITE));
        tc.write_queue_nums = (int32_t)proto_json_get_int(v, "writeQueueNums", 16);
        tc.sys_flag = (int32_t)proto_json_get_int(v, "topicSysFlag", 0);
        tc.order = proto_json_get_bool(v, "order", false);
        tc.multi_tag = strcmp(proto_json_get_str(v, "topicFilterType", ""), "MULTI_TAG") == 0;
        cm_map_put(t->table, name, topic_dup(&tc));
    }
    proto_json_free(root);
}

/* Puts a built-in unless the table already has it exactly so; notes a difference. */
static void put_builtin(broker_topics_t *t, const broker_topic_t *tc) {
    broker_topic_t *cur = cm_map_get(t->table, tc->name);
    if (cur && memcmp(cur, tc, sizeof *tc) == 0) return;
    cm_map_put(t->table, tc->name, topic_dup(tc));
    t->dirty = true;
}

/* The built-ins of TopicConfigManager's constructor (store.md §9). They are (re)put at
 * every start, so a changed setting (autoCreateTopicEnable, defaultTopicQueueNums) wins
 * over an older topics.json. */
static void add_builtins(broker_t *b, broker_topics_t *t) {
    const int32_t rw = PROTO_PERM_READ | PROTO_PERM_WRITE;
    broker_topic_t tc;
    topic_init(&tc, "SELF_TEST_TOPIC", 1, rw);
    put_builtin(t, &tc);
    if (b->auto_create_topic) {
        topic_init(&tc, TBW102, (int32_t)cm_conf_int(b->conf, "defaultTopicQueueNums", true),
                   rw | PROTO_PERM_INHERIT);
        put_builtin(t, &tc);
    } else {
        broker_topic_t *old = cm_map_take(t->table, TBW102);
        if (old) t->dirty = true;
        cm_free(old);
    }
    int32_t cperm =
        PROTO_PERM_INHERIT | (cm_conf_bool(b->conf, "clusterTopicEnable", true) ? rw : 0);
    topic_init(&tc, b->cluster, 16, cperm);
    put_builtin(t, &tc);
    int32_t bperm =
        PROTO_PERM_INHERIT | (cm_conf_bool(b->conf, "brokerTopicEnable", true) ? rw : 0);
    topic_init(&tc, b->name, 1, bperm);
    put_builtin(t, &tc);
    topic_init(&tc, "OFFSET_MOVED_EVENT", 1, rw);
    put_builtin(t, &tc);
    topic_init(&tc, STORE_SCHEDULE_TOPIC, 18, rw);
    put_builtin(t, &tc);
    topic_init(&tc, BROKER_TIMER_TOPIC, 1, rw);
    put_builtin(t, &tc);
    char reply[160];
    snprintf(reply, sizeof reply, "%s_REPLY_TOPIC", b->cluster);
    topic_init(&tc, reply, 1, rw);
    put_builtin(t, &tc);
}

typedef struct rebuild {
    broker_topics_t *t;
    cm_map_t *added; /* topics this pass created (they grow to cover every queue id seen) */
} rebuild_t;

/* A queue in the store whose topic the table lost (topics.json deleted, or a store moved
 * from another broker): the topic comes back with enough queues to reach it. Topics the
 * table already had keep their queue counts (an admin may have shrunk them). */
static void rebuild_queue(void *arg, const char *topic, int32_t queue_id, int64_t min_offset,
                          int64_t max_offset) {
    rebuild_t *r = arg;
    if (!proto_topic_name_valid(topic) || queue_id < 0 || queue_id > 65535) return;
    broker_topic_t *tc = cm_map_get(r->t->table, topic);
    if (!tc) {
        broker_topic_t fresh;
        topic_init(&fresh, topic, queue_id + 1, PROTO_PERM_READ | PROTO_PERM_WRITE);
        cm_map_put(r->t->table, topic, topic_dup(&fresh));
        cm_map_put(r->added, topic, r);
        r->t->dirty = true;
    } else if (cm_map_get(r->added, topic) && tc->read_queue_nums <= queue_id) {
        tc->read_queue_nums = tc->write_queue_nums = queue_id + 1;
    }
}

broker_topics_t *broker_topics_new(broker_t *b) {
    broker_topics_t *t = cm_calloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->write_mu, NULL);
    t->table = cm_map_new(cm_free);
    b->topics = t;
    load_file(b, t);
    add_builtins(b, t);
    rebuild_t r = {t, cm_map_new(NULL)};
    if (b->store) store_foreach_queue(b->store, rebuild_queue, &r);
    if (cm_map_count(r.added))
        cm_info(&b->log, "%zu topic(s) rebuilt from the store", cm_map_count(r.added));
    cm_map_destroy(r.added);
    /* The file is written by the service thread shortly after start (broker_topics_flush),
     * so a start does not wait for a disk write. */
    if (t->dirty) version_bump(t);
    return t;
}

void broker_topics_destroy(broker_topics_t *t) {
    if (!t) return;
    cm_map_destroy(t->table);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->write_mu);
    cm_free(t);
}

/* ---------------------------------------------------------------- queries and updates */

bool broker_topics_find(broker_t *b, const char *topic, broker_topic_t *out) {
    broker_topics_t *t = b->topics;
    pthread_mutex_lock(&t->mu);
    broker_topic_t *tc = cm_map_get(t->table, topic);
    if (tc && out) *out = *tc;
    pthread_mutex_unlock(&t->mu);
    return tc != NULL;
}

void broker_topics_put(broker_t *b, const broker_topic_t *tc) {
    broker_topics_t *t = b->topics;
    pthread_mutex_lock(&t->mu);
    cm_map_put(t->table, tc->name, topic_dup(tc));
    version_bump(t);
    pthread_mutex_unlock(&t->mu);
    cm_info(&b->log, "topic %s: %d/%d queues, perm %d", tc->name, tc->read_queue_nums,
            tc->write_queue_nums, tc->perm);
    changed(b);
}

/* Inserts tc unless the topic exists; returns true when it was inserted. */
static bool put_if_absent(broker_t *b, const broker_topic_t *tc, broker_topic_t *out) {
    broker_topics_t *t = b->topics;
    pthread_mutex_lock(&t->mu);
    broker_topic_t *cur = cm_map_get(t->table, tc->name);
    bool inserted = cur == NULL;
    if (inserted) {
        cur = topic_dup(tc);
        cm_map_put(t->table, tc->name, cur);
        version_bump(t);
        t->dirty = true;
    }
    if (out) *out = *cur;
    pthread_mutex_unlock(&t->mu);
    return inserted;
}

bool broker_topics_ensure(broker_t *b, const char *topic, int32_t queue_nums, int32_t perm,
                          int32_t sys_flag) {
    if (!proto_topic_name_valid(topic)) return false;
    broker_topic_t tc;
    topic_init(&tc, topic, queue_nums, perm);
    tc.sys_flag = sys_flag;
    if (put_if_absent(b, &tc, NULL)) {
        cm_info(&b->log, "topic %s created (%d queues)", topic, queue_nums);
        changed_by_send(b);
    }
    return true;
}

rmq_err_t broker_topics_create_on_send(broker_t *b, const char *topic, const char *default_topic,
                                       int32_t queue_nums, int32_t sys_flag, broker_topic_t *out) {
    if (broker_topics_find(b, topic, out)) return RMQ_OK;
    /* %RETRY% topics come from consumers' send-backs: one queue, no template needed. */
    if (strncmp(topic, "%RETRY%", 7) == 0) {
        broker_topics_ensure(b, topic, 1, PROTO_PERM_READ | PROTO_PERM_WRITE, sys_flag);
        return broker_topics_find(b, topic, out) ? RMQ_OK : RMQ_ERR_TOPIC_NOT_EXIST;
    }
    broker_topic_t def;
    if (!default_topic || !broker_topics_find(b, default_topic, &def))
        return RMQ_ERR_TOPIC_NOT_EXIST;
    /* TBW102 lingering in an old topics.json must not create anything once auto-creation
     * was turned off (add_builtins removes it, this guards a racing admin update). */
    if (strcmp(default_topic, TBW102) == 0 && !b->auto_create_topic) return RMQ_ERR_TOPIC_NOT_EXIST;
    if (!(def.perm & PROTO_PERM_INHERIT)) return RMQ_ERR_TOPIC_NOT_EXIST;
    int32_t n = queue_nums < def.write_queue_nums ? queue_nums : def.write_queue_nums;
    broker_topic_t tc;
    topic_init(&tc, topic, n < 0 ? 0 : n, def.perm & ~PROTO_PERM_INHERIT);
    tc.sys_flag = sys_flag;
    tc.multi_tag = def.multi_tag;
    if (put_if_absent(b, &tc, out)) {
        cm_info(&b->log, "topic %s auto-created from %s (%d queues)", topic, default_topic, n);
        changed_by_send(b);
    }
    return RMQ_OK;
}

void broker_topics_register_body(broker_t *b, proto_register_broker_body_t *out) {
    broker_topics_t *t = b->topics;
    pthread_mutex_lock(&t->mu);
    out->data_version = t->version;
    size_t n;
    const char **names = sorted_names(t, &n);
    for (size_t i = 0; i < n; i++) {
        const broker_topic_t *tc = cm_map_get(t->table, names[i]);
        proto_topic_config_t *p = proto_register_broker_body_add_topic(out);
        p->topic_name = cm_strdup(tc->name);
        p->read_queue_nums = tc->read_queue_nums;
        p->write_queue_nums = tc->write_queue_nums;
        p->perm = tc->perm;
        p->topic_filter_type = cm_strdup(tc->multi_tag ? "MULTI_TAG" : "SINGLE_TAG");
        p->topic_sys_flag = tc->sys_flag;
        p->order = tc->order;
    }
    cm_free(names);
    pthread_mutex_unlock(&t->mu);
}

proto_data_version_t broker_topics_data_version(broker_t *b) {
    pthread_mutex_lock(&b->topics->mu);
    proto_data_version_t v = b->topics->version;
    pthread_mutex_unlock(&b->topics->mu);
    return v;
}

size_t broker_topics_count(broker_t *b) {
    pthread_mutex_lock(&b->topics->mu);
    size_t n = cm_map_count(b->topics->table);
    pthread_mutex_unlock(&b->topics->mu);
    return n;
}

/* ---------------------------------------------------------------- UPDATE_AND_CREATE_TOPIC */

/* Why topic may not be created by an admin, as AdminBrokerProcessor words it; NULL if it may. */
static const char *create_refusal(broker_t *b, const char *topic, char *buf, size_t size) {
    if (!topic || !*topic) return "The specified topic is blank.";
    if (strcmp(topic, b->cluster) == 0 || conflicts_with_system(topic)) {
        snprintf(buf, size, "The topic[%s] is conflict with system topic.", topic);
        return buf;
    }
    if (strlen(topic) > 127) return "The specified topic is longer than topic max length.";
    if (!proto_topic_name_valid(topic))
        return "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$";
    return NULL;
}

static void on_create_topic(broker_t *b, broker_req_t *req) {
    proto_create_topic_req_t h;
    proto_hdr_err_t herr;
    char remark[256];
    if (proto_create_topic_req_decode(&req->cmd.ext, &h, &herr) != RMQ_OK) {
        broker_reply_bad_header(b, req, &herr);
        return;
    }
    const char *why = create_refusal(b, h.topic, remark, sizeof remark);
    if (why) {
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR, why);
        return;
    }
    broker_topic_t tc;
    topic_init(&tc, h.topic, h.read_queue_nums, h.perm);
    tc.write_queue_nums = h.write_queue_nums;
    tc.sys_flag = h.topic_sys_flag;
    tc.order = h.order;
    tc.multi_tag = h.topic_filter_type && strcmp(h.topic_filter_type, "MULTI_TAG") == 0;
    broker_topics_put(b, &tc);
    broker_reply_code(b, req, 0, NULL);
}

void broker_topics_register(broker_t *b) {
    broker_set_processor(b, PROTO_UPDATE_AND_CREATE_TOPIC, on_create_topic, BROKER_EXEC_SEND);
}

/* ---------------------------------------------------------------- public API */

rmq_err_t rmq_broker_create_topic(rmq_broker_t *b, const char *topic, int queue_nums, int perm) {
    if (!b || queue_nums <= 0 || queue_nums > 1024 || perm < 0 || perm > 15)
        return RMQ_ERR_INVALID_ARG;
    char buf[256];
    if (create_refusal(b, topic, buf, sizeof buf)) return RMQ_ERR_BAD_TOPIC;
    if (!b->topics) return RMQ_ERR_NOT_STARTED;
    broker_topic_t tc;
    topic_init(&tc, topic, queue_nums, perm ? perm : PROTO_PERM_READ | PROTO_PERM_WRITE);
    broker_topics_put(b, &tc);
    return RMQ_OK;
}
