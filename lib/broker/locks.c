/* lib/broker/locks.c: per-group queue locks for orderly consumers (LOCK_BATCH_MQ,
 * UNLOCK_BATCH_MQ). A queue belongs to one client of a group; another client may take it
 * only once the holder went lockMaxLiveTime (60 s) without renewing, as RebalanceLockManager
 * decides. */
#include "broker/clients.h"

#include <pthread.h>
#include <stdio.h>

typedef struct lock_entry {
    char *client_id;
    int64_t last_ms; /* monotonic time of the last grant or renewal */
} lock_entry_t;

struct broker_locks {
    pthread_mutex_t mu;
    int64_t max_live_ms;
    cm_map_t *groups; /* group -> cm_map(queue key -> lock_entry_t) */
};

static void entry_free(void *p) {
    lock_entry_t *e = p;
    if (!e) return;
    cm_free(e->client_id);
    cm_free(e);
}

static void group_free(void *p) {
    cm_map_destroy(p);
}

broker_locks_t *broker_locks_new(int64_t max_live_ms) {
    broker_locks_t *l = cm_calloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->max_live_ms = max_live_ms > 0 ? max_live_ms : BROKER_LOCK_MAX_LIVE_MS;
    l->groups = cm_map_new(group_free);
    return l;
}

void broker_locks_destroy(broker_locks_t *l) {
    if (!l) return;
    cm_map_destroy(l->groups);
    pthread_mutex_destroy(&l->mu);
    cm_free(l);
}

/* A queue's key inside its group: the three fields that make a MessageQueue equal. */
static void mq_key(const broker_mq_t *mq, char *dst, size_t size) {
    snprintf(dst, size, "%s\x01%s\x01%d", mq->topic, mq->broker_name, (int)mq->queue_id);
}

/* Grants mq to client_id when it is free, already the client's, or its holder expired. */
static bool try_one(broker_locks_t *l, cm_map_t *queues, const broker_mq_t *mq,
                    const char *client_id, int64_t now_ms) {
    char key[512];
    mq_key(mq, key, sizeof key);
    lock_entry_t *e = cm_map_get(queues, key);
    if (!e) {
        e = cm_calloc(1, sizeof *e);
        e->client_id = cm_strdup(client_id);
        cm_map_put(queues, key, e);
    } else if (strcmp(e->client_id, client_id) != 0) {
        if (now_ms - e->last_ms <= l->max_live_ms) return false;
        cm_free(e->client_id);
        e->client_id = cm_strdup(client_id);
    }
    e->last_ms = now_ms;
    return true;
}

size_t broker_locks_try(broker_locks_t *l, const char *group, const char *client_id,
                        const broker_mq_t *mqs, size_t n, bool *granted, int64_t now_ms) {
    size_t n_granted = 0;
    pthread_mutex_lock(&l->mu);
    cm_map_t *queues = cm_map_get(l->groups, group);
    if (!queues) {
        queues = cm_map_new(entry_free);
        cm_map_put(l->groups, group, queues);
    }
    for (size_t i = 0; i < n; i++) {
        granted[i] = try_one(l, queues, &mqs[i], client_id, now_ms);
        if (granted[i]) n_granted++;
    }
    pthread_mutex_unlock(&l->mu);
    return n_granted;
}

void broker_locks_unlock(broker_locks_t *l, const char *group, const char *client_id,
                         const broker_mq_t *mqs, size_t n) {
    pthread_mutex_lock(&l->mu);
    cm_map_t *queues = cm_map_get(l->groups, group);
    for (size_t i = 0; queues && i < n; i++) {
        char key[512];
        mq_key(&mqs[i], key, sizeof key);
        lock_entry_t *e = cm_map_get(queues, key);
        /* Only the holder releases; anyone else's unlock is ignored, as in RocketMQ. */
        if (e && strcmp(e->client_id, client_id) == 0) entry_free(cm_map_take(queues, key));
    }
    if (queues && cm_map_count(queues) == 0) group_free(cm_map_take(l->groups, group));
    pthread_mutex_unlock(&l->mu);
}

bool broker_locks_holder(broker_locks_t *l, const char *group, const broker_mq_t *mq,
                         int64_t now_ms, char *client_id, size_t size) {
    bool held = false;
    char key[512];
    mq_key(mq, key, sizeof key);
    pthread_mutex_lock(&l->mu);
    cm_map_t *queues = cm_map_get(l->groups, group);
    lock_entry_t *e = queues ? cm_map_get(queues, key) : NULL;
    if (e && now_ms - e->last_ms <= l->max_live_ms) {
        held = true;
        if (client_id) snprintf(client_id, size, "%s", e->client_id);
    }
    pthread_mutex_unlock(&l->mu);
    return held;
}
