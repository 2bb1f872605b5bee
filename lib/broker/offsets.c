/* lib/broker/offsets.c: consumer group offsets (RocketMQ's ConsumerOffsetManager) —
 * QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET, GET_ALL_CONSUMER_OFFSET, and
 * config/consumerOffset.json in RocketMQ's shape ({"offsetTable":{"T@g":{0:75}}}), written
 * by the broker's service thread every flushConsumerOffsetInterval and at shutdown. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define OFFSETS_FILE "consumerOffset.json"

/* The offsets of one topic@group, indexed by queue id; -1 = none committed. */
typedef struct queue_offsets {
    int64_t *v;
    int32_t n;
} queue_offsets_t;

struct broker_offsets {
    pthread_mutex_t mu;
    pthread_mutex_t write_mu;
    cm_map_t *table; /* "topic@group" -> queue_offsets_t */
    bool dirty;      /* changed since the last write */
};

static void queue_offsets_free(void *p) {
    queue_offsets_t *q = p;
    cm_free(q->v);
    cm_free(q);
}

static void set_locked(broker_offsets_t *o, const char *key, int32_t queue_id, int64_t offset) {
    queue_offsets_t *q = cm_map_get(o->table, key);
    if (!q) {
        q = cm_calloc(1, sizeof *q);
        cm_map_put(o->table, key, q);
    }
    if (queue_id >= q->n) {
        q->v = cm_realloc(q->v, (size_t)(queue_id + 1) * sizeof *q->v);
        for (int32_t i = q->n; i <= queue_id; i++)
            q->v[i] = -1;
        q->n = queue_id + 1;
    }
    q->v[queue_id] = offset;
    o->dirty = true;
}

/* A queue id as fastjson writes it: a bare number, or a quoted one from other writers. */
static bool json_queue_id(const proto_json_t *k, int32_t *out) {
    int64_t v;
    if (k->type == PJ_NUMBER)
        v = k->i;
    else if (k->type == PJ_STRING && k->len > 0) {
        char *end;
        v = strtoll(k->s, &end, 10);
        if (*end) return false;
    } else
        return false;
    if (v < 0 || v > 65535) return false;
    *out = (int32_t)v;
    return true;
}

static void load(broker_t *b, broker_offsets_t *o) {
    char path[1100];
    broker_cfg_path(b, OFFSETS_FILE, path, sizeof path);
    proto_json_t *root = broker_cfg_load(&b->log, path, NULL);
    const proto_json_t *tab = proto_json_get(root, "offsetTable");
    for (size_t i = 0; tab && tab->type == PJ_OBJECT && i < tab->len; i++) {
        const proto_json_t *k = tab->keys[i], *qs = tab->items[i];
        if (k->type != PJ_STRING || !strchr(k->s, '@') || qs->type != PJ_OBJECT) continue;
        for (size_t j = 0; j < qs->len; j++) {
            int32_t qid;
            if (json_queue_id(qs->keys[j], &qid) && qs->items[j]->type == PJ_NUMBER)
                set_locked(o, k->s, qid, qs->items[j]->i);
        }
    }
    proto_json_free(root);
    o->dirty = false;
}

broker_offsets_t *broker_offsets_new(broker_t *b) {
    broker_offsets_t *o = cm_calloc(1, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->write_mu, NULL);
    o->table = cm_map_new(queue_offsets_free);
    load(b, o);
    return o;
}

void broker_offsets_destroy(broker_offsets_t *o) {
    if (!o) return;
    cm_map_destroy(o->table);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->write_mu);
    cm_free(o);
}

static void offset_key(char *dst, size_t size, const char *topic, const char *group) {
    snprintf(dst, size, "%s@%s", topic, group);
}

int64_t broker_offsets_get(broker_t *b, const char *group, const char *topic, int32_t queue_id) {
    char key[512];
    offset_key(key, sizeof key, topic, group);
    broker_offsets_t *o = b->offsets;
    pthread_mutex_lock(&o->mu);
    queue_offsets_t *q = cm_map_get(o->table, key);
    int64_t v = q && queue_id >= 0 && queue_id < q->n ? q->v[queue_id] : -1;
    pthread_mutex_unlock(&o->mu);
    return v;
}

void broker_offsets_commit(broker_t *b, const char *group, const char *topic, int32_t queue_id,
                           int64_t offset) {
    if (queue_id < 0 || queue_id > 65535 || !group || !topic) return;
    char key[512];
    offset_key(key, sizeof key, topic, group);
    pthread_mutex_lock(&b->offsets->mu);
    set_locked(b->offsets, key, queue_id, offset);
    pthread_mutex_unlock(&b->offsets->mu);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The table as JSON, keys sorted; pretty adds Java's tabs and newlines. Caller holds mu. */
static char *table_json(broker_offsets_t *o, bool pretty) {
    size_t n = cm_map_count(o->table), it = 0, i = 0;
    const char **keys = cm_malloc((n ? n : 1) * sizeof *keys);
    const char *key;
    void *val;
    while (cm_map_next(o->table, &it, &key, &val))
        keys[i++] = key;
    qsort(keys, n, sizeof *keys, cmp_names);
    cm_buf_t out = CM_BUF_INIT;
    cm_buf_append_str(&out, pretty ? "{\n\t\"offsetTable\":{" : "{\"offsetTable\":{");
    for (i = 0; i < n; i++) {
        const queue_offsets_t *q = cm_map_get(o->table, keys[i]);
        cm_buf_append_str(&out, i ? "," : "");
        cm_buf_append_str(&out, pretty ? "\n\t\t" : "");
        proto_json_put_str(&out, keys[i], strlen(keys[i]));
        cm_buf_append_str(&out, ":{");
        bool first = true;
        for (int32_t qid = 0; qid < q->n; qid++) {
            if (q->v[qid] < 0) continue;
            cm_buf_printf(&out, "%s%d:%lld", first ? "" : ",", qid, (long long)q->v[qid]);
            first = false;
        }
        cm_buf_append_str(&out, "}");
    }
    cm_buf_append_str(&out, pretty ? "\n\t}\n}\n" : "}}");
    cm_free(keys);
    return cm_buf_take_str(&out);
}

void broker_offsets_persist(broker_t *b) {
    broker_offsets_t *o = b->offsets;
    if (!o) return;
    char path[1100];
    broker_cfg_path(b, OFFSETS_FILE, path, sizeof path);
    pthread_mutex_lock(&o->write_mu);
    pthread_mutex_lock(&o->mu);
    char *text = o->dirty ? table_json(o, true) : NULL;
    o->dirty = false;
    pthread_mutex_unlock(&o->mu);
    if (text && !broker_cfg_write(&b->log, path, text, strlen(text))) {
        pthread_mutex_lock(&o->mu);
        o->dirty = true; /* try again next time */
        pthread_mutex_unlock(&o->mu);
    }
    pthread_mutex_unlock(&o->write_mu);
    cm_free(text);
}

/* ---------------------------------------------------------------- processors */

/* Whether the record at queue offset 0 has left the page cache, as checkInDiskByConsumeOffset
 * estimates it: more than accessMessageInMemoryMaxRatio of RAM was written after it. */
static bool offset0_on_disk(broker_t *b, const char *topic, int32_t queue_id) {
    store_get_result_t res = {0};
    bool on_disk = false;
    if (store_get_messages(b->store, topic, queue_id, 0, 1, 0, NULL, NULL, &res) == RMQ_OK &&
        res.status == STORE_FOUND) {
        proto_record_t rec;
        if (proto_record_decode(res.records.data, res.records.len, false, &rec) == RMQ_OK) {
            double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
            double behind = (double)(store_max_phys_offset(b->store) - rec.physical_offset);
            on_disk = behind > ram * b->store_cfg.access_in_memory_ratio / 100.0;
        }
    }
    cm_buf_free(&res.records);
    return on_disk;
}

static void on_query_offset(broker_t *b, broker_req_t *req) {
    proto_query_consumer_offset_req_t h;
    proto_hdr_err_t err;
    if (proto_query_consumer_offset_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    int64_t off = broker_offsets_get(b, h.consumer_group, h.topic, h.queue_id);
    /* A group new to a young queue starts at 0 (store.md §9), so its first messages are not
     * skipped by CONSUME_FROM_LAST_OFFSET. */
    if (off < 0 && store_min_offset(b->store, h.topic, h.queue_id) <= 0 &&
        !offset0_on_disk(b, h.topic, h.queue_id))
        off = 0;
    proto_cmd_t resp;
    if (off < 0) {
        proto_cmd_response(&resp, &req->cmd, RMQ_ERR_QUERY_NOT_FOUND,
                           "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first");
        resp.has_ext = true;
    } else {
        proto_cmd_response(&resp, &req->cmd, 0, NULL);
        proto_offset_resp_t r = {.offset = off};
        proto_offset_resp_encode(&r, &resp.ext);
        resp.has_ext = true;
    }
    broker_reply(b, req, &resp);
}

static void on_update_offset(broker_t *b, broker_req_t *req) {
    proto_update_consumer_offset_req_t h;
    proto_hdr_err_t err;
    if (proto_update_consumer_offset_req_decode(&req->cmd.ext, &h, &err) != RMQ_OK) {
        broker_reply_bad_header(b, req, &err);
        return;
    }
    broker_offsets_commit(b, h.consumer_group, h.topic, h.queue_id, h.commit_offset);
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, 0, NULL);
    resp.has_ext = true;
    broker_reply(b, req, &resp);
}

static void on_all_offsets(broker_t *b, broker_req_t *req) {
    broker_offsets_t *o = b->offsets;
    pthread_mutex_lock(&o->mu);
    char *text = cm_map_count(o->table) ? table_json(o, false) : NULL;
    pthread_mutex_unlock(&o->mu);
    proto_cmd_t resp;
    if (!text) {
        proto_cmd_response(&resp, &req->cmd, RMQ_ERR_SYSTEM_ERROR,
                           "No consumer offset in this broker");
    } else {
        proto_cmd_response(&resp, &req->cmd, 0, NULL);
        size_t len = strlen(text);
        proto_cmd_take_body(&resp, (uint8_t *)text, len);
    }
    broker_reply(b, req, &resp);
}

void broker_offsets_register(broker_t *b) {
    broker_set_processor(b, PROTO_QUERY_CONSUMER_OFFSET, on_query_offset, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_UPDATE_CONSUMER_OFFSET, on_update_offset, BROKER_EXEC_IO);
    broker_set_processor(b, PROTO_GET_ALL_CONSUMER_OFFSET, on_all_offsets, BROKER_EXEC_IO);
}
