/* rmq_msg_t: the public message object (include/rmq/msg.h). */
#include <stdio.h>
#include <stdlib.h>

#include "proto.h"

rmq_msg_t *rmq_msg_new(const char *topic) {
    if (!topic) return NULL;
    rmq_msg_t *m = cm_calloc(1, sizeof *m);
    m->topic = cm_strdup(topic);
    m->queue_id = -1;
    m->queue_offset = -1;
    m->commitlog_offset = -1;
    return m;
}

void proto_msg_free_text(rmq_msg_t *m, void *text) {
    cm_free_outside(text, m + 1, m->inline_len);
}

rmq_msg_t *rmq_msg_dup(const rmq_msg_t *src) {
    if (!src) return NULL;
    rmq_msg_t *m = cm_malloc(sizeof *m);
    *m = *src;
    m->inline_len = 0; /* the copy's texts are its own allocations */
    m->topic = cm_strdup(src->topic);
    m->body = src->body_len ? cm_malloc(src->body_len) : NULL;
    if (src->body_len) memcpy(m->body, src->body, src->body_len);
    proto_props_copy(&m->props, &src->props);
    m->offset_id = cm_strdup(src->offset_id);
    m->broker_name = cm_strdup(src->broker_name);
    return m;
}

void rmq_msg_destroy(rmq_msg_t *m) {
    if (!m) return;
    proto_msg_free_text(m, m->topic);
    proto_msg_free_text(m, m->body);
    proto_props_free(&m->props);
    proto_msg_free_text(m, m->offset_id);
    proto_msg_free_text(m, m->broker_name);
    cm_free(m);
}

rmq_err_t rmq_msg_set_topic(rmq_msg_t *m, const char *topic) {
    if (!m || !topic) return RMQ_ERR_INVALID_ARG;
    proto_msg_free_text(m, m->topic);
    m->topic = cm_strdup(topic);
    return RMQ_OK;
}

rmq_err_t rmq_msg_set_body(rmq_msg_t *m, const void *body, size_t len) {
    if (!m || (len && !body)) return RMQ_ERR_INVALID_ARG;
    proto_msg_free_text(m, m->body);
    m->body = NULL;
    m->body_len = len;
    if (len) {
        m->body = cm_malloc(len);
        memcpy(m->body, body, len);
    }
    return RMQ_OK;
}

static bool has_separators(const char *s) {
    return s && (strchr(s, PROTO_NAME_SEP) || strchr(s, PROTO_PROP_SEP));
}

/* Sets or (NULL / "") removes a reserved property after checking for separator bytes. */
static rmq_err_t set_system(rmq_msg_t *m, const char *name, const char *val) {
    if (!m) return RMQ_ERR_INVALID_ARG;
    if (has_separators(val)) return RMQ_ERR_INVALID_ARG;
    proto_props_set(&m->props, name, val && *val ? val : NULL);
    return RMQ_OK;
}

rmq_err_t rmq_msg_set_tags(rmq_msg_t *m, const char *tags) {
    return set_system(m, PROP_TAGS, tags);
}

rmq_err_t rmq_msg_set_keys(rmq_msg_t *m, const char *keys) {
    return set_system(m, PROP_KEYS, keys);
}

rmq_err_t rmq_msg_set_property(rmq_msg_t *m, const char *name, const char *value) {
    if (!m || !name || !*name || has_separators(name) || has_separators(value))
        return RMQ_ERR_INVALID_ARG;
    if (proto_props_reserved(name)) return RMQ_ERR_INVALID_ARG;
    if (value && !*value) return RMQ_ERR_INVALID_ARG; /* Java drops empty values on the wire */
    proto_props_set(&m->props, name, value);
    return RMQ_OK;
}

static rmq_err_t set_int_prop(rmq_msg_t *m, const char *name, int64_t v) {
    if (!m) return RMQ_ERR_INVALID_ARG;
    if (v == 0) return set_system(m, name, NULL);
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)v);
    return set_system(m, name, text);
}

rmq_err_t rmq_msg_set_delay_level(rmq_msg_t *m, int level) {
    if (level < 0) return RMQ_ERR_INVALID_ARG;
    return set_int_prop(m, PROP_DELAY, level);
}

rmq_err_t rmq_msg_set_deliver_time_ms(rmq_msg_t *m, int64_t when_ms) {
    if (when_ms < 0) return RMQ_ERR_INVALID_ARG;
    return set_int_prop(m, PROP_TIMER_DELIVER_MS, when_ms);
}

rmq_err_t rmq_msg_set_sharding_key(rmq_msg_t *m, const char *key) {
    return set_system(m, PROP_SHARDING_KEY, key);
}

rmq_err_t rmq_msg_set_flag(rmq_msg_t *m, int32_t flag) {
    if (!m) return RMQ_ERR_INVALID_ARG;
    m->flag = flag;
    return RMQ_OK;
}

rmq_err_t rmq_msg_set_wait_store_msg_ok(rmq_msg_t *m, int wait) {
    /* Absent means true, as in the Java client; store "false" only. */
    return set_system(m, PROP_WAIT, wait ? NULL : "false");
}

const char *rmq_msg_topic(const rmq_msg_t *m) { return m ? m->topic : NULL; }
const char *rmq_msg_tags(const rmq_msg_t *m) { return rmq_msg_property(m, PROP_TAGS); }
const char *rmq_msg_keys(const rmq_msg_t *m) { return rmq_msg_property(m, PROP_KEYS); }

const void *rmq_msg_body(const rmq_msg_t *m, size_t *len) {
    if (len) *len = m ? m->body_len : 0;
    return m ? m->body : NULL;
}

const char *rmq_msg_property(const rmq_msg_t *m, const char *name) {
    return m && name ? proto_props_get(&m->props, name) : NULL;
}

void rmq_msg_foreach_property(const rmq_msg_t *m,
                              int (*cb)(const char *, const char *, void *), void *opaque) {
    if (!m || !cb) return;
    for (size_t i = 0; i < m->props.count; i++)
        if (cb(m->props.names[i], m->props.vals[i], opaque)) return;
}

int32_t rmq_msg_flag(const rmq_msg_t *m) { return m ? m->flag : 0; }

int rmq_msg_delay_level(const rmq_msg_t *m) {
    const char *v = rmq_msg_property(m, PROP_DELAY);
    return v ? atoi(v) : 0;
}

const char *rmq_msg_id(const rmq_msg_t *m) {
    const char *uniq = rmq_msg_property(m, PROP_UNIQ_KEY);
    return uniq ? uniq : (m ? m->offset_id : NULL);
}

const char *rmq_msg_offset_id(const rmq_msg_t *m) { return m ? m->offset_id : NULL; }
int32_t rmq_msg_queue_id(const rmq_msg_t *m) { return m ? m->queue_id : -1; }
int64_t rmq_msg_queue_offset(const rmq_msg_t *m) { return m ? m->queue_offset : -1; }
int64_t rmq_msg_commitlog_offset(const rmq_msg_t *m) { return m ? m->commitlog_offset : -1; }
int64_t rmq_msg_born_timestamp(const rmq_msg_t *m) { return m ? m->born_timestamp : 0; }
int64_t rmq_msg_store_timestamp(const rmq_msg_t *m) { return m ? m->store_timestamp : 0; }
int32_t rmq_msg_reconsume_times(const rmq_msg_t *m) { return m ? m->reconsume_times : 0; }
const char *rmq_msg_broker_name(const rmq_msg_t *m) { return m ? m->broker_name : NULL; }
