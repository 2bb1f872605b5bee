/* lib/broker/subgroups.c: subscription group configs (retry queues, retry limit, consume
 * switches), auto-created on a group's first heartbeat or pull when
 * autoCreateSubscriptionGroup is on, persisted to config/subscriptionGroup.json in the shape
 * RocketMQ's SubscriptionGroupManager writes. A change only marks the table dirty: the file
 * is written by broker_subgroups_persist() (a timer, and destroy), so a heartbeat that
 * auto-creates a group never waits for a disk write. */
#include "broker/clients.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/broker_int.h" /* broker_cfg_load / broker_cfg_write */

struct broker_subgroups {
    pthread_mutex_t mu;
    cm_logger_t log;
    bool auto_create;
    char *path; /* NULL: memory only */
    int64_t dv_counter, dv_timestamp;
    bool dirty;               /* changed since the last write */
    cm_map_t *groups;         /* name -> broker_subgroup_t */
    pthread_mutex_t write_mu; /* one writer of the file at a time, in version order */
};

/* Groups every RocketMQ broker knows from the start. */
static const char *const builtin_groups[] = {
    "TOOLS_CONSUMER",  "FILTERSRV_CONSUMER",    "SELF_TEST_C_GROUP", "CID_ONS-HTTP-PROXY",
    "CID_ONSAPI_PULL", "CID_ONSAPI_PERMISSION", "CID_ONSAPI_OWNER",
};

void broker_subgroup_defaults(broker_subgroup_t *g, const char *name) {
    *g = (broker_subgroup_t){.consume_enable = true,
                             .consume_from_min_enable = true,
                             .consume_broadcast_enable = true,
                             .retry_queue_nums = 1,
                             .retry_max_times = 16,
                             .broker_id = 0,
                             .which_broker_when_consume_slowly = 1,
                             .notify_consumer_ids_changed_enable = true};
    snprintf(g->group_name, sizeof g->group_name, "%s", name);
}

/* ---------------------------------------------------------------- JSON */

static void put_group(cm_buf_t *out, const broker_subgroup_t *g) {
    cm_buf_printf(out,
                  "{\n\t\t\t\"brokerId\":%lld,\n\t\t\t\"consumeBroadcastEnable\":%s,"
                  "\n\t\t\t\"consumeEnable\":%s,\n\t\t\t\"consumeFromMinEnable\":%s,"
                  "\n\t\t\t\"groupName\":",
                  (long long)g->broker_id, g->consume_broadcast_enable ? "true" : "false",
                  g->consume_enable ? "true" : "false",
                  g->consume_from_min_enable ? "true" : "false");
    proto_json_put_str(out, g->group_name, strlen(g->group_name));
    cm_buf_printf(out,
                  ",\n\t\t\t\"notifyConsumerIdsChangedEnable\":%s,\n\t\t\t\"retryMaxTimes\":%d,"
                  "\n\t\t\t\"retryQueueNums\":%d,\n\t\t\t\"whichBrokerWhenConsumeSlowly\":%lld"
                  "\n\t\t}",
                  g->notify_consumer_ids_changed_enable ? "true" : "false", (int)g->retry_max_times,
                  (int)g->retry_queue_nums, (long long)g->which_broker_when_consume_slowly);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *to_json(broker_subgroups_t *sg) {
    cm_buf_t out = CM_BUF_INIT;
    cm_buf_printf(&out,
                  "{\n\t\"dataVersion\":{\n\t\t\"counter\":%lld,\n\t\t\"timestamp\":%lld\n\t},"
                  "\n\t\"subscriptionGroupTable\":{",
                  (long long)sg->dv_counter, (long long)sg->dv_timestamp);
    const char **names = cm_calloc(cm_map_count(sg->groups) + 1, sizeof(char *));
    size_t n = 0, it = 0;
    const char *name;
    while (cm_map_next(sg->groups, &it, &name, NULL))
        names[n++] = name;
    qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        cm_buf_append_str(&out, i ? ",\n\t\t" : "\n\t\t");
        proto_json_put_str(&out, names[i], strlen(names[i]));
        cm_buf_append_str(&out, ":");
        put_group(&out, cm_map_get(sg->groups, names[i]));
    }
    cm_free(names);
    cm_buf_append_str(&out, "\n\t}\n}");
    return cm_buf_take_str(&out);
}

rmq_err_t broker_subgroup_from_json(const proto_json_t *obj, broker_subgroup_t *g) {
    const char *name = proto_json_get_str(obj, "groupName", NULL);
    if (!obj || obj->type != PJ_OBJECT || !name || !*name) return RMQ_ERR_MALFORMED;
    broker_subgroup_defaults(g, name);
    g->consume_enable = proto_json_get_bool(obj, "consumeEnable", g->consume_enable);
    g->consume_from_min_enable =
        proto_json_get_bool(obj, "consumeFromMinEnable", g->consume_from_min_enable);
    g->consume_broadcast_enable =
        proto_json_get_bool(obj, "consumeBroadcastEnable", g->consume_broadcast_enable);
    g->retry_queue_nums = (int32_t)proto_json_get_int(obj, "retryQueueNums", 1);
    g->retry_max_times = (int32_t)proto_json_get_int(obj, "retryMaxTimes", 16);
    g->broker_id = proto_json_get_int(obj, "brokerId", 0);
    g->which_broker_when_consume_slowly =
        proto_json_get_int(obj, "whichBrokerWhenConsumeSlowly", 1);
    g->notify_consumer_ids_changed_enable = proto_json_get_bool(
        obj, "notifyConsumerIdsChangedEnable", g->notify_consumer_ids_changed_enable);
    return RMQ_OK;
}

/* ---------------------------------------------------------------- persistence */

static void load_json(broker_subgroups_t *sg, const proto_json_t *root) {
    const proto_json_t *dv = proto_json_get(root, "dataVersion");
    sg->dv_counter = proto_json_get_int(dv, "counter", 0);
    sg->dv_timestamp = proto_json_get_int(dv, "timestamp", 0);
    const proto_json_t *table = proto_json_get(root, "subscriptionGroupTable");
    for (size_t i = 0; table && table->type == PJ_OBJECT && i < table->len; i++) {
        broker_subgroup_t *g = cm_malloc(sizeof *g);
        if (broker_subgroup_from_json(table->items[i], g) == RMQ_OK)
            cm_map_put(sg->groups, g->group_name, g);
        else
            cm_free(g);
    }
}

bool broker_subgroups_persist(broker_subgroups_t *sg) {
    if (!sg->path) return true;
    /* The text is taken under the table lock, written outside it; write_mu keeps two
     * writers from putting an older text last. */
    pthread_mutex_lock(&sg->write_mu);
    pthread_mutex_lock(&sg->mu);
    char *text = sg->dirty ? to_json(sg) : NULL;
    sg->dirty = false;
    pthread_mutex_unlock(&sg->mu);
    bool ok = !text || broker_cfg_write(&sg->log, sg->path, text, strlen(text));
    if (!ok) {
        pthread_mutex_lock(&sg->mu);
        sg->dirty = true; /* try again next time */
        pthread_mutex_unlock(&sg->mu);
    }
    pthread_mutex_unlock(&sg->write_mu);
    cm_free(text);
    return ok;
}

/* ---------------------------------------------------------------- API */

broker_subgroups_t *broker_subgroups_new(const char *path, bool auto_create,
                                         const cm_logger_t *log) {
    broker_subgroups_t *sg = cm_calloc(1, sizeof *sg);
    pthread_mutex_init(&sg->mu, NULL);
    sg->log = log ? *log : (cm_logger_t){NULL, NULL, RMQ_LOG_INFO};
    sg->auto_create = auto_create;
    sg->path = path && *path ? cm_strdup(path) : NULL;
    pthread_mutex_init(&sg->write_mu, NULL);
    sg->groups = cm_map_new(cm_free);
    sg->dv_timestamp = cm_now_ms();
    for (size_t i = 0; i < sizeof builtin_groups / sizeof builtin_groups[0]; i++) {
        broker_subgroup_t *g = cm_malloc(sizeof *g);
        broker_subgroup_defaults(g, builtin_groups[i]);
        cm_map_put(sg->groups, g->group_name, g);
    }
    if (sg->path) {
        proto_json_t *root = broker_cfg_load(&sg->log, sg->path, NULL);
        if (root) load_json(sg, root);
        proto_json_free(root);
    }
    return sg;
}

void broker_subgroups_destroy(broker_subgroups_t *sg) {
    if (!sg) return;
    broker_subgroups_persist(sg);
    cm_map_destroy(sg->groups);
    cm_free(sg->path);
    pthread_mutex_destroy(&sg->write_mu);
    pthread_mutex_destroy(&sg->mu);
    cm_free(sg);
}

static void next_version(broker_subgroups_t *sg) {
    sg->dv_counter++;
    sg->dv_timestamp = cm_now_ms();
    sg->dirty = true;
}

bool broker_subgroups_find(broker_subgroups_t *sg, const char *group, broker_subgroup_t *out) {
    if (!group || !*group || strlen(group) >= sizeof out->group_name) return false;
    pthread_mutex_lock(&sg->mu);
    broker_subgroup_t *g = cm_map_get(sg->groups, group);
    /* Groups named CID_RMQ_SYS_* are the broker's own and always exist (MixAll). */
    if (!g && (sg->auto_create || strncmp(group, "CID_RMQ_SYS_", 12) == 0)) {
        g = cm_malloc(sizeof *g);
        broker_subgroup_defaults(g, group);
        cm_map_put(sg->groups, group, g);
        next_version(sg);
        cm_info(&sg->log, "subscription group %s auto-created", group);
    }
    if (g && out) *out = *g;
    pthread_mutex_unlock(&sg->mu);
    return g != NULL;
}

void broker_subgroups_update(broker_subgroups_t *sg, const broker_subgroup_t *g) {
    pthread_mutex_lock(&sg->mu);
    broker_subgroup_t *copy = cm_malloc(sizeof *copy);
    *copy = *g;
    cm_map_put(sg->groups, copy->group_name, copy);
    next_version(sg);
    pthread_mutex_unlock(&sg->mu);
}

size_t broker_subgroups_count(broker_subgroups_t *sg) {
    pthread_mutex_lock(&sg->mu);
    size_t n = cm_map_count(sg->groups);
    pthread_mutex_unlock(&sg->mu);
    return n;
}
