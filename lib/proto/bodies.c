/* lib/proto/bodies.c: JSON bodies of the remoting requests (remoting.md §6): heartbeat,
 * routes, cluster info, broker registration, lock sets, KV tables, lists. Readers take what
 * Java's fastjson writes (any key order, absent nulls, unquoted integer keys); writers emit
 * keys sorted as Java does. */
#include <inttypes.h>
#include <stdio.h>

#include "proto.h"

/* Grows an array of elements of size sz by one zeroed element; returns it. */
static void *grow(void *arr, size_t *count, size_t sz) {
    char *a = cm_realloc(arr, (*count + 1) * sz);
    memset(a + *count * sz, 0, sz);
    (*count)++;
    return a;
}
#define PUSH(arr, count) ((arr) = grow((arr), &(count), sizeof *(arr)), &(arr)[(count)-1])

/* ---------------------------------------------------------------- typed member reads */

/* Each read leaves *out at its default when the member is absent or null, and fails with
 * RMQ_ERR_MALFORMED when it has another JSON type. Numbers sent as numeric strings are
 * accepted, as fastjson does. */
static const proto_json_t *member(const proto_json_t *obj, const char *key) {
    const proto_json_t *v = proto_json_get(obj, key);
    return v && v->type != PJ_NULL ? v : NULL;
}

static rmq_err_t j_i64(const proto_json_t *obj, const char *key, int64_t *out) {
    const proto_json_t *v = member(obj, key);
    if (!v) return RMQ_OK;
    if (v->type == PJ_NUMBER) {
        *out = v->i;
        return RMQ_OK;
    }
    if (v->type != PJ_STRING) return RMQ_ERR_MALFORMED;
    proto_ext_t tmp = {0}; /* reuse ext's strict integer parser */
    proto_ext_set(&tmp, "v", v->s);
    rmq_err_t rc = proto_ext_get_int(&tmp, "v", out);
    proto_ext_free(&tmp);
    return rc;
}

static rmq_err_t j_i32(const proto_json_t *obj, const char *key, int32_t *out) {
    int64_t v = *out;
    rmq_err_t rc = j_i64(obj, key, &v);
    if (rc != RMQ_OK) return rc;
    if (v < INT32_MIN || v > INT32_MAX) return RMQ_ERR_MALFORMED;
    *out = (int32_t)v;
    return RMQ_OK;
}

static rmq_err_t j_bool(const proto_json_t *obj, const char *key, bool *out) {
    const proto_json_t *v = member(obj, key);
    if (!v) return RMQ_OK;
    if (v->type != PJ_BOOL) return RMQ_ERR_MALFORMED;
    *out = v->b;
    return RMQ_OK;
}

/* A string member copied into *out (freed first). */
static rmq_err_t j_str(const proto_json_t *obj, const char *key, char **out) {
    const proto_json_t *v = member(obj, key);
    if (!v) return RMQ_OK;
    if (v->type != PJ_STRING) return RMQ_ERR_MALFORMED;
    cm_free(*out);
    *out = cm_strndup(v->s, v->len);
    return RMQ_OK;
}

/* A container member, or NULL when absent; MALFORMED when of another type. */
static rmq_err_t j_container(const proto_json_t *obj, const char *key, proto_json_type_t type,
                             const proto_json_t **out) {
    *out = member(obj, key);
    if (*out && (*out)->type != type) return RMQ_ERR_MALFORMED;
    return RMQ_OK;
}

static rmq_err_t strlist_read(const proto_json_t *arr, proto_strlist_t *out) {
    for (size_t i = 0; arr && i < arr->len; i++) {
        if (arr->items[i]->type != PJ_STRING) return RMQ_ERR_MALFORMED;
        proto_strlist_add(out, arr->items[i]->s);
    }
    return RMQ_OK;
}

static rmq_err_t j_strlist(const proto_json_t *obj, const char *key, proto_strlist_t *out) {
    const proto_json_t *arr;
    rmq_err_t rc = j_container(obj, key, PJ_ARRAY, &arr);
    return rc != RMQ_OK ? rc : strlist_read(arr, out);
}

/* Text of an object key as a string: string keys as they are, bare numbers in decimal. */
static char *key_text(const proto_json_t *k) {
    if (k->type == PJ_STRING) return cm_strndup(k->s, k->len);
    if (k->type == PJ_NUMBER) return cm_sprintf("%" PRId64, k->i);
    return NULL;
}

/* Parses body and checks it is an object. */
static rmq_err_t parse_obj(const void *body, size_t len, proto_json_t **root) {
    rmq_err_t rc = proto_json_parse(body, len, root);
    if (rc != RMQ_OK) return rc;
    if ((*root)->type != PJ_OBJECT) {
        proto_json_free(*root);
        *root = NULL;
        return RMQ_ERR_MALFORMED;
    }
    return RMQ_OK;
}

/* ---------------------------------------------------------------- writer helpers */

/* A tiny object writer: tracks whether a comma is due. Members must be put in sorted key
 * order by the caller, as Java's writer sorts them. */
typedef struct jw {
    cm_buf_t *out;
    bool first;
} jw_t;

static jw_t jw_open(cm_buf_t *out) {
    cm_buf_put8(out, '{');
    return (jw_t){out, true};
}

static void jw_close(jw_t *w) {
    cm_buf_put8(w->out, '}');
}

static void jw_key(jw_t *w, const char *key) {
    if (!w->first) cm_buf_put8(w->out, ',');
    w->first = false;
    proto_json_put_str(w->out, key, strlen(key));
    cm_buf_put8(w->out, ':');
}

static void put_s(cm_buf_t *out, const char *s) {
    proto_json_put_str(out, s, strlen(s));
}

static void jw_str(jw_t *w, const char *key, const char *val) {
    if (!val) return; /* null members are omitted */
    jw_key(w, key);
    put_s(w->out, val);
}

static void jw_int(jw_t *w, const char *key, int64_t v) {
    jw_key(w, key);
    cm_buf_printf(w->out, "%" PRId64, v);
}

static void jw_bool(jw_t *w, const char *key, bool v) {
    jw_key(w, key);
    cm_buf_append_str(w->out, v ? "true" : "false");
}

static void put_strlist(cm_buf_t *out, const proto_strlist_t *l) {
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < l->count; i++) {
        if (i) cm_buf_put8(out, ',');
        put_s(out, l->items[i]);
    }
    cm_buf_put8(out, ']');
}

/* Indices 0..n-1 ordered by the strings names[i] (stable), for writing maps in Java's sorted
 * key order. Caller frees. */
static size_t *sorted_order(const char *const *names, size_t n) {
    size_t *idx = cm_malloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && strcmp(names[idx[j - 1]], names[i]) > 0; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
    return idx;
}

/* ---------------------------------------------------------------- lists */

void proto_strlist_add(proto_strlist_t *l, const char *s) {
    *PUSH(l->items, l->count) = cm_strdup(s);
}

void proto_strlist_free(proto_strlist_t *l) {
    for (size_t i = 0; i < l->count; i++)
        cm_free(l->items[i]);
    cm_free(l->items);
    memset(l, 0, sizeof *l);
}

void proto_mq_list_add(proto_mq_list_t *l, const char *topic, const char *broker_name,
                       int32_t queue_id) {
    proto_mq_t *mq = PUSH(l->items, l->count);
    mq->topic = cm_strdup(topic);
    mq->broker_name = cm_strdup(broker_name);
    mq->queue_id = queue_id;
}

void proto_mq_list_free(proto_mq_list_t *l) {
    for (size_t i = 0; i < l->count; i++) {
        cm_free(l->items[i].topic);
        cm_free(l->items[i].broker_name);
    }
    cm_free(l->items);
    memset(l, 0, sizeof *l);
}

static rmq_err_t mq_list_read(const proto_json_t *arr, proto_mq_list_t *out) {
    for (size_t i = 0; arr && i < arr->len; i++) {
        const proto_json_t *o = arr->items[i];
        if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
        proto_mq_t *mq = PUSH(out->items, out->count);
        rmq_err_t rc;
        if ((rc = j_str(o, "topic", &mq->topic)) != RMQ_OK ||
            (rc = j_str(o, "brokerName", &mq->broker_name)) != RMQ_OK ||
            (rc = j_i32(o, "queueId", &mq->queue_id)) != RMQ_OK)
            return rc;
    }
    return RMQ_OK;
}

static void put_mq_list(cm_buf_t *out, const proto_mq_list_t *l) {
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < l->count; i++) {
        if (i) cm_buf_put8(out, ',');
        jw_t w = jw_open(out);
        jw_str(&w, "brokerName", l->items[i].broker_name);
        jw_int(&w, "queueId", l->items[i].queue_id);
        jw_str(&w, "topic", l->items[i].topic);
        jw_close(&w);
    }
    cm_buf_put8(out, ']');
}

/* ---------------------------------------------------------------- enums by name */

static const char *const consume_type_names[] = {"CONSUME_PASSIVELY", "CONSUME_ACTIVELY",
                                                 "CONSUME_POP"};
static const char *const message_model_names[] = {"CLUSTERING", "BROADCASTING"};
static const char *const consume_from_names[] = {
    "CONSUME_FROM_LAST_OFFSET", "CONSUME_FROM_FIRST_OFFSET",
    "CONSUME_FROM_TIMESTAMP",   "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
    "CONSUME_FROM_MIN_OFFSET",  "CONSUME_FROM_MAX_OFFSET"};
#define NAMES(a) (a), sizeof(a) / sizeof((a)[0])

static const char *enum_name(const char *const *names, size_t n, int v) {
    return v >= 0 && (size_t)v < n ? names[v] : NULL;
}

const char *proto_consume_type_name(proto_consume_type_t t) {
    return enum_name(NAMES(consume_type_names), (int)t);
}

const char *proto_message_model_name(proto_message_model_t m) {
    return enum_name(NAMES(message_model_names), (int)m);
}

const char *proto_consume_from_name(proto_consume_from_t c) {
    return enum_name(NAMES(consume_from_names), (int)c);
}

/* An enum member by name; absent keeps *out. */
static rmq_err_t j_enum(const proto_json_t *obj, const char *key, const char *const *names,
                        size_t n, int *out) {
    const proto_json_t *v = member(obj, key);
    if (!v) return RMQ_OK;
    if (v->type != PJ_STRING) return RMQ_ERR_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v->s, names[i]) == 0) {
            *out = (int)i;
            return RMQ_OK;
        }
    }
    return RMQ_ERR_MALFORMED;
}

/* ---------------------------------------------------------------- HeartbeatData (34) */

void proto_subscription_free(proto_subscription_t *s) {
    cm_free(s->topic);
    cm_free(s->sub_string);
    proto_strlist_free(&s->tags);
    cm_free(s->codes);
    cm_free(s->expression_type);
    memset(s, 0, sizeof *s);
}

static bool has_tag(const proto_strlist_t *tags, const char *t, size_t len) {
    for (size_t i = 0; i < tags->count; i++)
        if (strlen(tags->items[i]) == len && memcmp(tags->items[i], t, len) == 0) return true;
    return false;
}

/* Java's String.trim: drops every char <= ' ' at both ends. */
static void trim(const char **s, size_t *len) {
    while (*len && (unsigned char)(*s)[0] <= ' ')
        (*s)++, (*len)--;
    while (*len && (unsigned char)(*s)[*len - 1] <= ' ')
        (*len)--;
}

void proto_subscription_set_tags(proto_subscription_t *s, const char *expr) {
    proto_strlist_free(&s->tags);
    cm_free(s->codes);
    s->codes = NULL;
    s->code_count = 0;
    cm_free(s->sub_string);
    if (!expr || !*expr || strcmp(expr, "*") == 0) {
        s->sub_string = cm_strdup("*");
        return;
    }
    s->sub_string = cm_strdup(expr);
    for (const char *p = expr;;) {
        const char *bar = strstr(p, "||");
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        const char *t = p;
        trim(&t, &len);
        if (len && !has_tag(&s->tags, t, len)) {
            *PUSH(s->tags.items, s->tags.count) = cm_strndup(t, len);
            *PUSH(s->codes, s->code_count) = cm_java_hash(t, len);
        }
        if (!bar) break;
        p = bar + 2;
    }
}

static rmq_err_t sub_read(const proto_json_t *o, proto_subscription_t *s) {
    if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
    rmq_err_t rc;
    const proto_json_t *codes;
    if ((rc = j_str(o, "topic", &s->topic)) != RMQ_OK ||
        (rc = j_str(o, "subString", &s->sub_string)) != RMQ_OK ||
        (rc = j_strlist(o, "tagsSet", &s->tags)) != RMQ_OK ||
        (rc = j_i64(o, "subVersion", &s->sub_version)) != RMQ_OK ||
        (rc = j_str(o, "expressionType", &s->expression_type)) != RMQ_OK ||
        (rc = j_bool(o, "classFilterMode", &s->class_filter_mode)) != RMQ_OK ||
        (rc = j_container(o, "codeSet", PJ_ARRAY, &codes)) != RMQ_OK)
        return rc;
    for (size_t i = 0; codes && i < codes->len; i++) {
        const proto_json_t *c = codes->items[i];
        if (c->type != PJ_NUMBER || c->i < INT32_MIN || c->i > INT32_MAX) return RMQ_ERR_MALFORMED;
        *PUSH(s->codes, s->code_count) = (int32_t)c->i;
    }
    return RMQ_OK;
}

static rmq_err_t consumer_read(const proto_json_t *o, proto_consumer_data_t *c) {
    if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
    int ct = PROTO_CONSUME_PASSIVELY, mm = PROTO_CLUSTERING, cf = PROTO_CONSUME_FROM_LAST_OFFSET;
    const proto_json_t *subs;
    rmq_err_t rc;
    if ((rc = j_str(o, "groupName", &c->group_name)) != RMQ_OK ||
        (rc = j_enum(o, "consumeType", NAMES(consume_type_names), &ct)) != RMQ_OK ||
        (rc = j_enum(o, "messageModel", NAMES(message_model_names), &mm)) != RMQ_OK ||
        (rc = j_enum(o, "consumeFromWhere", NAMES(consume_from_names), &cf)) != RMQ_OK ||
        (rc = j_bool(o, "unitMode", &c->unit_mode)) != RMQ_OK ||
        (rc = j_container(o, "subscriptionDataSet", PJ_ARRAY, &subs)) != RMQ_OK)
        return rc;
    c->consume_type = (proto_consume_type_t)ct;
    c->message_model = (proto_message_model_t)mm;
    c->consume_from_where = (proto_consume_from_t)cf;
    for (size_t i = 0; subs && i < subs->len; i++)
        if ((rc = sub_read(subs->items[i], proto_consumer_data_add_sub(c))) != RMQ_OK) return rc;
    return RMQ_OK;
}

static rmq_err_t heartbeat_read(const proto_json_t *root, proto_heartbeat_t *hb) {
    const proto_json_t *prods, *cons;
    rmq_err_t rc;
    if ((rc = j_str(root, "clientID", &hb->client_id)) != RMQ_OK ||
        (rc = j_container(root, "producerDataSet", PJ_ARRAY, &prods)) != RMQ_OK ||
        (rc = j_container(root, "consumerDataSet", PJ_ARRAY, &cons)) != RMQ_OK)
        return rc;
    for (size_t i = 0; prods && i < prods->len; i++) {
        const proto_json_t *p = prods->items[i];
        const char *g = p->type == PJ_OBJECT ? proto_json_get_str(p, "groupName", NULL) : NULL;
        if (!g) return RMQ_ERR_MALFORMED;
        proto_strlist_add(&hb->producer_groups, g);
    }
    for (size_t i = 0; cons && i < cons->len; i++)
        if ((rc = consumer_read(cons->items[i], proto_heartbeat_add_consumer(hb))) != RMQ_OK)
            return rc;
    return RMQ_OK;
}

proto_subscription_t *proto_consumer_data_add_sub(proto_consumer_data_t *c) {
    return PUSH(c->subs, c->sub_count);
}

proto_consumer_data_t *proto_heartbeat_add_consumer(proto_heartbeat_t *hb) {
    return PUSH(hb->consumers, hb->consumer_count);
}

/* Decodes into a zeroed *out; on failure *out is freed and zeroed. Shared by every body. */
#define BODY_DECODE(body, len, out, reader, freer)                                                 \
    do {                                                                                           \
        memset((out), 0, sizeof *(out));                                                           \
        proto_json_t *root_;                                                                       \
        rmq_err_t rc_ = parse_obj((body), (len), &root_);                                          \
        if (rc_ != RMQ_OK) return rc_;                                                             \
        rc_ = reader(root_, (out));                                                                \
        proto_json_free(root_);                                                                    \
        if (rc_ != RMQ_OK) freer(out);                                                             \
        return rc_;                                                                                \
    } while (0)

rmq_err_t proto_heartbeat_decode(const void *body, size_t len, proto_heartbeat_t *out) {
    BODY_DECODE(body, len, out, heartbeat_read, proto_heartbeat_free);
}

void proto_heartbeat_free(proto_heartbeat_t *hb) {
    cm_free(hb->client_id);
    proto_strlist_free(&hb->producer_groups);
    for (size_t i = 0; i < hb->consumer_count; i++) {
        proto_consumer_data_t *c = &hb->consumers[i];
        cm_free(c->group_name);
        for (size_t j = 0; j < c->sub_count; j++)
            proto_subscription_free(&c->subs[j]);
        cm_free(c->subs);
    }
    cm_free(hb->consumers);
    memset(hb, 0, sizeof *hb);
}

static void put_sub(cm_buf_t *out, const proto_subscription_t *s) {
    jw_t w = jw_open(out);
    jw_bool(&w, "classFilterMode", s->class_filter_mode);
    jw_key(&w, "codeSet");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < s->code_count; i++)
        cm_buf_printf(out, i ? ",%" PRId32 : "%" PRId32, s->codes[i]);
    cm_buf_put8(out, ']');
    jw_str(&w, "expressionType", s->expression_type);
    jw_str(&w, "subString", s->sub_string);
    jw_int(&w, "subVersion", s->sub_version);
    jw_key(&w, "tagsSet");
    put_strlist(out, &s->tags);
    jw_str(&w, "topic", s->topic);
    jw_close(&w);
}

static void put_consumer(cm_buf_t *out, const proto_consumer_data_t *c) {
    jw_t w = jw_open(out);
    jw_str(&w, "consumeFromWhere", proto_consume_from_name(c->consume_from_where));
    jw_str(&w, "consumeType", proto_consume_type_name(c->consume_type));
    jw_str(&w, "groupName", c->group_name);
    jw_str(&w, "messageModel", proto_message_model_name(c->message_model));
    jw_key(&w, "subscriptionDataSet");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < c->sub_count; i++) {
        if (i) cm_buf_put8(out, ',');
        put_sub(out, &c->subs[i]);
    }
    cm_buf_put8(out, ']');
    jw_bool(&w, "unitMode", c->unit_mode);
    jw_close(&w);
}

void proto_heartbeat_encode(const proto_heartbeat_t *hb, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_str(&w, "clientID", hb->client_id);
    jw_key(&w, "consumerDataSet");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < hb->consumer_count; i++) {
        if (i) cm_buf_put8(out, ',');
        put_consumer(out, &hb->consumers[i]);
    }
    cm_buf_put8(out, ']');
    jw_key(&w, "producerDataSet");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < hb->producer_groups.count; i++) {
        if (i) cm_buf_put8(out, ',');
        jw_t p = jw_open(out);
        jw_str(&p, "groupName", hb->producer_groups.items[i]);
        jw_close(&p);
    }
    cm_buf_put8(out, ']');
    jw_close(&w);
}

/* ---------------------------------------------------------------- BrokerData, routes (105) */

void proto_broker_data_add_addr(proto_broker_data_t *b, int64_t id, const char *addr) {
    for (size_t i = 0; i < b->addr_count; i++) {
        if (b->addrs[i].id == id) { /* a map: the id is replaced */
            cm_free(b->addrs[i].addr);
            b->addrs[i].addr = cm_strdup(addr);
            return;
        }
    }
    proto_broker_addr_t *a = PUSH(b->addrs, b->addr_count);
    a->id = id;
    a->addr = cm_strdup(addr);
}

const char *proto_broker_data_addr(const proto_broker_data_t *b, int64_t id) {
    for (size_t i = 0; i < b->addr_count; i++)
        if (b->addrs[i].id == id) return b->addrs[i].addr;
    return NULL;
}

void proto_broker_data_free(proto_broker_data_t *b) {
    cm_free(b->cluster);
    cm_free(b->broker_name);
    for (size_t i = 0; i < b->addr_count; i++)
        cm_free(b->addrs[i].addr);
    cm_free(b->addrs);
    memset(b, 0, sizeof *b);
}

/* brokerAddrs keys: bare numbers ({0:...}) or their decimal text ({"0":...}). */
static rmq_err_t broker_addrs_read(const proto_json_t *m, proto_broker_data_t *b) {
    for (size_t i = 0; m && i < m->len; i++) {
        const proto_json_t *k = m->keys[i], *v = m->items[i];
        if (v->type != PJ_STRING) return RMQ_ERR_MALFORMED;
        int64_t id;
        if (k->type == PJ_NUMBER) {
            id = k->i;
        } else {
            char *text = key_text(k);
            proto_ext_t tmp = {0};
            proto_ext_set(&tmp, "id", text ? text : "");
            rmq_err_t rc = proto_ext_get_int(&tmp, "id", &id);
            proto_ext_free(&tmp);
            cm_free(text);
            if (rc != RMQ_OK) return RMQ_ERR_MALFORMED;
        }
        proto_broker_data_add_addr(b, id, v->s);
    }
    return RMQ_OK;
}

static rmq_err_t broker_data_read(const proto_json_t *o, proto_broker_data_t *b) {
    if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
    const proto_json_t *addrs;
    rmq_err_t rc;
    if ((rc = j_str(o, "cluster", &b->cluster)) != RMQ_OK ||
        (rc = j_str(o, "brokerName", &b->broker_name)) != RMQ_OK ||
        (rc = j_container(o, "brokerAddrs", PJ_OBJECT, &addrs)) != RMQ_OK)
        return rc;
    return broker_addrs_read(addrs, b);
}

/* Broker ids in numeric order, as Java's HashMap of small Longs iterates. */
static void put_broker_data(cm_buf_t *out, const proto_broker_data_t *b, bool standard_json) {
    size_t n = b->addr_count;
    size_t *idx = cm_malloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && b->addrs[idx[j - 1]].id > b->addrs[i].id; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
    jw_t w = jw_open(out);
    jw_key(&w, "brokerAddrs");
    cm_buf_put8(out, '{');
    for (size_t i = 0; i < n; i++) {
        const proto_broker_addr_t *a = &b->addrs[idx[i]];
        cm_buf_printf(out, standard_json ? "%s\"%" PRId64 "\":" : "%s%" PRId64 ":", i ? "," : "",
                      a->id);
        put_s(out, a->addr);
    }
    cm_buf_put8(out, '}');
    jw_str(&w, "brokerName", b->broker_name);
    jw_str(&w, "cluster", b->cluster);
    jw_close(&w);
    cm_free(idx);
}

static rmq_err_t queue_data_read(const proto_json_t *o, proto_queue_data_t *q) {
    if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
    rmq_err_t rc;
    if ((rc = j_str(o, "brokerName", &q->broker_name)) != RMQ_OK ||
        (rc = j_i32(o, "readQueueNums", &q->read_queue_nums)) != RMQ_OK ||
        (rc = j_i32(o, "writeQueueNums", &q->write_queue_nums)) != RMQ_OK ||
        (rc = j_i32(o, "perm", &q->perm)) != RMQ_OK)
        return rc;
    /* 4.x writes topicSysFlag; some older writers spelled it topicSynFlag */
    if ((rc = j_i32(o, "topicSynFlag", &q->topic_sys_flag)) != RMQ_OK) return rc;
    return j_i32(o, "topicSysFlag", &q->topic_sys_flag);
}

static rmq_err_t filter_table_read(const proto_json_t *m, proto_topic_route_t *r) {
    for (size_t i = 0; m && i < m->len; i++) {
        char *addr = key_text(m->keys[i]);
        if (!addr || m->items[i]->type != PJ_ARRAY) {
            cm_free(addr);
            return RMQ_ERR_MALFORMED;
        }
        proto_filter_servers_t *fs = PUSH(r->filter_servers, r->filter_server_count);
        fs->broker_addr = addr;
        rmq_err_t rc = strlist_read(m->items[i], &fs->servers);
        if (rc != RMQ_OK) return rc;
    }
    return RMQ_OK;
}

static rmq_err_t route_read(const proto_json_t *root, proto_topic_route_t *r) {
    const proto_json_t *brokers, *queues, *filters;
    rmq_err_t rc;
    if ((rc = j_str(root, "orderTopicConf", &r->order_topic_conf)) != RMQ_OK ||
        (rc = j_container(root, "brokerDatas", PJ_ARRAY, &brokers)) != RMQ_OK ||
        (rc = j_container(root, "queueDatas", PJ_ARRAY, &queues)) != RMQ_OK ||
        (rc = j_container(root, "filterServerTable", PJ_OBJECT, &filters)) != RMQ_OK)
        return rc;
    for (size_t i = 0; brokers && i < brokers->len; i++)
        if ((rc = broker_data_read(brokers->items[i], proto_topic_route_add_broker(r))) != RMQ_OK)
            return rc;
    for (size_t i = 0; queues && i < queues->len; i++)
        if ((rc = queue_data_read(queues->items[i], proto_topic_route_add_queue(r))) != RMQ_OK)
            return rc;
    return filter_table_read(filters, r);
}

proto_broker_data_t *proto_topic_route_add_broker(proto_topic_route_t *r) {
    return PUSH(r->brokers, r->broker_count);
}

proto_queue_data_t *proto_topic_route_add_queue(proto_topic_route_t *r) {
    return PUSH(r->queues, r->queue_count);
}

rmq_err_t proto_topic_route_decode(const void *body, size_t len, proto_topic_route_t *out) {
    BODY_DECODE(body, len, out, route_read, proto_topic_route_free);
}

void proto_topic_route_free(proto_topic_route_t *r) {
    cm_free(r->order_topic_conf);
    for (size_t i = 0; i < r->broker_count; i++)
        proto_broker_data_free(&r->brokers[i]);
    cm_free(r->brokers);
    for (size_t i = 0; i < r->queue_count; i++)
        cm_free(r->queues[i].broker_name);
    cm_free(r->queues);
    for (size_t i = 0; i < r->filter_server_count; i++) {
        cm_free(r->filter_servers[i].broker_addr);
        proto_strlist_free(&r->filter_servers[i].servers);
    }
    cm_free(r->filter_servers);
    memset(r, 0, sizeof *r);
}

static void put_queue_data(cm_buf_t *out, const proto_queue_data_t *q) {
    jw_t w = jw_open(out);
    jw_str(&w, "brokerName", q->broker_name);
    jw_int(&w, "perm", q->perm);
    jw_int(&w, "readQueueNums", q->read_queue_nums);
    jw_int(&w, "topicSysFlag", q->topic_sys_flag);
    jw_int(&w, "writeQueueNums", q->write_queue_nums);
    jw_close(&w);
}

void proto_topic_route_encode(const proto_topic_route_t *r, bool standard_json, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "brokerDatas");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < r->broker_count; i++) {
        if (i) cm_buf_put8(out, ',');
        put_broker_data(out, &r->brokers[i], standard_json);
    }
    cm_buf_put8(out, ']');
    jw_key(&w, "filterServerTable");
    jw_t f = jw_open(out);
    for (size_t i = 0; i < r->filter_server_count; i++) {
        jw_key(&f, r->filter_servers[i].broker_addr);
        put_strlist(out, &r->filter_servers[i].servers);
    }
    jw_close(&f);
    jw_str(&w, "orderTopicConf", r->order_topic_conf);
    jw_key(&w, "queueDatas");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < r->queue_count; i++) {
        if (i) cm_buf_put8(out, ',');
        put_queue_data(out, &r->queues[i]);
    }
    cm_buf_put8(out, ']');
    jw_close(&w);
}

/* ---------------------------------------------------------------- ClusterInfo (106) */

proto_broker_data_t *proto_cluster_info_add_broker(proto_cluster_info_t *ci) {
    return PUSH(ci->brokers, ci->broker_count);
}

proto_cluster_entry_t *proto_cluster_info_add_cluster(proto_cluster_info_t *ci) {
    return PUSH(ci->clusters, ci->cluster_count);
}

static rmq_err_t cluster_info_read(const proto_json_t *root, proto_cluster_info_t *ci) {
    const proto_json_t *brokers, *clusters;
    rmq_err_t rc;
    if ((rc = j_container(root, "brokerAddrTable", PJ_OBJECT, &brokers)) != RMQ_OK ||
        (rc = j_container(root, "clusterAddrTable", PJ_OBJECT, &clusters)) != RMQ_OK)
        return rc;
    for (size_t i = 0; brokers && i < brokers->len; i++) {
        proto_broker_data_t *b = proto_cluster_info_add_broker(ci);
        if ((rc = broker_data_read(brokers->items[i], b)) != RMQ_OK) return rc;
        if (!b->broker_name) b->broker_name = key_text(brokers->keys[i]);
    }
    for (size_t i = 0; clusters && i < clusters->len; i++) {
        proto_cluster_entry_t *c = proto_cluster_info_add_cluster(ci);
        c->cluster_name = key_text(clusters->keys[i]);
        if (!c->cluster_name || clusters->items[i]->type != PJ_ARRAY) return RMQ_ERR_MALFORMED;
        if ((rc = strlist_read(clusters->items[i], &c->broker_names)) != RMQ_OK) return rc;
    }
    return RMQ_OK;
}

rmq_err_t proto_cluster_info_decode(const void *body, size_t len, proto_cluster_info_t *out) {
    BODY_DECODE(body, len, out, cluster_info_read, proto_cluster_info_free);
}

void proto_cluster_info_free(proto_cluster_info_t *ci) {
    for (size_t i = 0; i < ci->broker_count; i++)
        proto_broker_data_free(&ci->brokers[i]);
    cm_free(ci->brokers);
    for (size_t i = 0; i < ci->cluster_count; i++) {
        cm_free(ci->clusters[i].cluster_name);
        proto_strlist_free(&ci->clusters[i].broker_names);
    }
    cm_free(ci->clusters);
    memset(ci, 0, sizeof *ci);
}

void proto_cluster_info_encode(const proto_cluster_info_t *ci, bool standard_json, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "brokerAddrTable");
    jw_t b = jw_open(out);
    for (size_t i = 0; i < ci->broker_count; i++) {
        const char *name = ci->brokers[i].broker_name;
        jw_key(&b, name ? name : "");
        put_broker_data(out, &ci->brokers[i], standard_json);
    }
    jw_close(&b);
    jw_key(&w, "clusterAddrTable");
    jw_t c = jw_open(out);
    for (size_t i = 0; i < ci->cluster_count; i++) {
        const char *name = ci->clusters[i].cluster_name;
        jw_key(&c, name ? name : "");
        put_strlist(out, &ci->clusters[i].broker_names);
    }
    jw_close(&c);
    jw_close(&w);
}

/* ---------------------------------------------------------------- RegisterBrokerBody (103) */

proto_topic_config_t *proto_register_broker_body_add_topic(proto_register_broker_body_t *b) {
    return PUSH(b->topics, b->topic_count);
}

void proto_register_broker_body_free(proto_register_broker_body_t *b) {
    for (size_t i = 0; i < b->topic_count; i++) {
        cm_free(b->topics[i].topic_name);
        cm_free(b->topics[i].topic_filter_type);
    }
    cm_free(b->topics);
    proto_strlist_free(&b->filter_servers);
    memset(b, 0, sizeof *b);
}

static rmq_err_t data_version_read(const proto_json_t *o, proto_data_version_t *dv) {
    if (!o) return RMQ_OK;
    if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
    rmq_err_t rc = j_i64(o, "timestamp", &dv->timestamp);
    return rc != RMQ_OK ? rc : j_i64(o, "counter", &dv->counter);
}

static rmq_err_t topic_config_read(const proto_json_t *key, const proto_json_t *o,
                                   proto_topic_config_t *t) {
    if (o->type != PJ_OBJECT) return RMQ_ERR_MALFORMED;
    rmq_err_t rc;
    if ((rc = j_str(o, "topicName", &t->topic_name)) != RMQ_OK ||
        (rc = j_i32(o, "readQueueNums", &t->read_queue_nums)) != RMQ_OK ||
        (rc = j_i32(o, "writeQueueNums", &t->write_queue_nums)) != RMQ_OK ||
        (rc = j_i32(o, "perm", &t->perm)) != RMQ_OK ||
        (rc = j_str(o, "topicFilterType", &t->topic_filter_type)) != RMQ_OK ||
        (rc = j_i32(o, "topicSysFlag", &t->topic_sys_flag)) != RMQ_OK ||
        (rc = j_bool(o, "order", &t->order)) != RMQ_OK)
        return rc;
    if (!t->topic_name) t->topic_name = key_text(key);
    if (!t->topic_filter_type) t->topic_filter_type = cm_strdup("SINGLE_TAG");
    return t->topic_name ? RMQ_OK : RMQ_ERR_MALFORMED;
}

static rmq_err_t register_body_read(const proto_json_t *root, proto_register_broker_body_t *b) {
    const proto_json_t *wrap, *dv, *table;
    rmq_err_t rc;
    if ((rc = j_container(root, "topicConfigSerializeWrapper", PJ_OBJECT, &wrap)) != RMQ_OK ||
        (rc = j_strlist(root, "filterServerList", &b->filter_servers)) != RMQ_OK)
        return rc;
    if (!wrap) return RMQ_OK;
    if ((rc = j_container(wrap, "dataVersion", PJ_OBJECT, &dv)) != RMQ_OK ||
        (rc = data_version_read(dv, &b->data_version)) != RMQ_OK ||
        (rc = j_container(wrap, "topicConfigTable", PJ_OBJECT, &table)) != RMQ_OK)
        return rc;
    for (size_t i = 0; table && i < table->len; i++) {
        proto_topic_config_t *t = proto_register_broker_body_add_topic(b);
        if ((rc = topic_config_read(table->keys[i], table->items[i], t)) != RMQ_OK) return rc;
    }
    return RMQ_OK;
}

/* The compressed form: int32-length-prefixed pieces inside a zlib stream. */
typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd_t;

static bool rd_piece(rd_t *r, const uint8_t **piece, size_t *len) {
    if (r->left < 4) return false;
    int32_t n = (int32_t)cm_rd32(r->p);
    if (n < 0 || (size_t)n > r->left - 4) return false;
    *piece = r->p + 4;
    *len = (size_t)n;
    r->p += 4 + (size_t)n;
    r->left -= 4 + (size_t)n;
    return true;
}

/* One topic line: "name read write perm filterType" (space separated). */
static rmq_err_t topic_line_read(const uint8_t *s, size_t len, proto_topic_config_t *t) {
    char *line = cm_strndup((const char *)s, len);
    char name[256] = "", filter[32] = "";
    int rq, wq, perm, used = 0;
    int n = sscanf(line, "%255s %d %d %d %31s%n", name, &rq, &wq, &perm, filter, &used);
    bool ok = n == 5 && (size_t)used == len;
    cm_free(line);
    if (!ok) return RMQ_ERR_MALFORMED;
    t->topic_name = cm_strdup(name);
    t->read_queue_nums = rq;
    t->write_queue_nums = wq;
    t->perm = perm;
    t->topic_filter_type = cm_strdup(filter);
    return RMQ_OK;
}

static rmq_err_t json_piece(const uint8_t *s, size_t len, proto_json_t **out) {
    return proto_json_parse((const char *)s, len, out);
}

static rmq_err_t compressed_read(const uint8_t *data, size_t len, proto_register_broker_body_t *b) {
    rd_t r = {data, len};
    const uint8_t *piece;
    size_t plen;
    proto_json_t *j = NULL;
    if (!rd_piece(&r, &piece, &plen)) return RMQ_ERR_MALFORMED;
    rmq_err_t rc = json_piece(piece, plen, &j);
    if (rc == RMQ_OK) rc = data_version_read(j, &b->data_version);
    proto_json_free(j);
    if (rc != RMQ_OK) return rc;
    if (r.left < 4) return RMQ_ERR_MALFORMED;
    int32_t count = (int32_t)cm_rd32(r.p);
    r.p += 4;
    r.left -= 4;
    for (int32_t i = 0; i < count; i++) {
        if (!rd_piece(&r, &piece, &plen)) return RMQ_ERR_MALFORMED;
        if ((rc = topic_line_read(piece, plen, proto_register_broker_body_add_topic(b))) != RMQ_OK)
            return rc;
    }
    if (!rd_piece(&r, &piece, &plen)) return RMQ_ERR_MALFORMED;
    if ((rc = json_piece(piece, plen, &j)) != RMQ_OK) return rc;
    rc = j->type == PJ_ARRAY ? strlist_read(j, &b->filter_servers) : RMQ_ERR_MALFORMED;
    proto_json_free(j);
    return rc;
}

rmq_err_t proto_register_broker_body_decode(const void *body, size_t len, bool compressed,
                                            size_t max_inflated,
                                            proto_register_broker_body_t *out) {
    if (!compressed)
        BODY_DECODE(body, len, out, register_body_read, proto_register_broker_body_free);
    memset(out, 0, sizeof *out);
    cm_buf_t raw = CM_BUF_INIT;
    rmq_err_t rc = proto_decompress(SYSFLAG_COMPRESS_ZLIB, body, len, max_inflated, &raw);
    if (rc == RMQ_OK) rc = compressed_read(raw.data, raw.len, out);
    cm_buf_free(&raw);
    if (rc != RMQ_OK) proto_register_broker_body_free(out);
    return rc;
}

void proto_register_broker_body_encode(const proto_register_broker_body_t *b, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "filterServerList");
    put_strlist(out, &b->filter_servers);
    jw_key(&w, "topicConfigSerializeWrapper");
    jw_t wrap = jw_open(out);
    jw_key(&wrap, "dataVersion");
    jw_t dv = jw_open(out);
    jw_int(&dv, "counter", b->data_version.counter);
    jw_int(&dv, "timestamp", b->data_version.timestamp);
    jw_close(&dv);
    jw_key(&wrap, "topicConfigTable");
    jw_t table = jw_open(out);
    for (size_t i = 0; i < b->topic_count; i++) {
        const proto_topic_config_t *t = &b->topics[i];
        jw_key(&table, t->topic_name ? t->topic_name : "");
        jw_t o = jw_open(out);
        jw_bool(&o, "order", t->order);
        jw_int(&o, "perm", t->perm);
        jw_int(&o, "readQueueNums", t->read_queue_nums);
        jw_str(&o, "topicFilterType", t->topic_filter_type ? t->topic_filter_type : "SINGLE_TAG");
        jw_str(&o, "topicName", t->topic_name);
        jw_int(&o, "topicSysFlag", t->topic_sys_flag);
        jw_int(&o, "writeQueueNums", t->write_queue_nums);
        jw_close(&o);
    }
    jw_close(&table);
    jw_close(&wrap);
    jw_close(&w);
}

/* ---------------------------------------------------------------- small bodies */

static rmq_err_t consumer_list_read(const proto_json_t *root, proto_strlist_t *out) {
    return j_strlist(root, "consumerIdList", out);
}

rmq_err_t proto_consumer_list_decode(const void *body, size_t len, proto_strlist_t *out) {
    BODY_DECODE(body, len, out, consumer_list_read, proto_strlist_free);
}

void proto_consumer_list_encode(const proto_strlist_t *ids, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "consumerIdList");
    put_strlist(out, ids);
    jw_close(&w);
}

void proto_consumer_connection_encode(const proto_consumer_connection_t *cc, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "connectionSet");
    cm_buf_put8(out, '[');
    for (size_t i = 0; i < cc->conn_count; i++) {
        const proto_connection_t *c = &cc->conns[i];
        if (i) cm_buf_put8(out, ',');
        jw_t cw = jw_open(out);
        jw_str(&cw, "clientAddr", c->client_addr);
        jw_str(&cw, "clientId", c->client_id);
        jw_str(&cw, "language", proto_lang_name(c->language));
        jw_int(&cw, "version", c->version);
        jw_close(&cw);
    }
    cm_buf_put8(out, ']');
    jw_str(&w, "consumeFromWhere", cc->consume_from_where);
    jw_str(&w, "consumeType", cc->consume_type);
    jw_str(&w, "messageModel", cc->message_model);
    jw_key(&w, "subscriptionTable");
    jw_t sw = jw_open(out);
    for (size_t i = 0; i < cc->sub_count; i++) {
        jw_key(&sw, cc->subs[i].topic);
        put_sub(out, &cc->subs[i]);
    }
    jw_close(&sw);
    jw_close(&w);
}

void proto_reset_offset_body_encode(const proto_queue_offset_t *items, size_t n, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "offsetTable");
    jw_t tw = jw_open(out);
    for (size_t i = 0; i < n; i++) {
        if (i) cm_buf_put8(out, ',');
        jw_t qw = jw_open(out); /* the key: a MessageQueue object */
        jw_str(&qw, "brokerName", items[i].broker_name);
        jw_int(&qw, "queueId", items[i].queue_id);
        jw_str(&qw, "topic", items[i].topic);
        jw_close(&qw);
        cm_buf_printf(out, ":%" PRId64, items[i].offset);
    }
    jw_close(&tw);
    jw_close(&w);
}

void proto_consume_direct_result_encode(bool order, const char *result, int64_t spent_ms,
                                        cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_bool(&w, "autoCommit", true);
    jw_str(&w, "consumeResult", result);
    jw_bool(&w, "order", order);
    jw_int(&w, "spentTimeMills", spent_ms);
    jw_close(&w);
}

static rmq_err_t lock_batch_read(const proto_json_t *root, proto_lock_batch_t *lb) {
    const proto_json_t *set;
    rmq_err_t rc;
    if ((rc = j_str(root, "clientId", &lb->client_id)) != RMQ_OK ||
        (rc = j_str(root, "consumerGroup", &lb->consumer_group)) != RMQ_OK ||
        (rc = j_container(root, "mqSet", PJ_ARRAY, &set)) != RMQ_OK)
        return rc;
    return mq_list_read(set, &lb->mqs);
}

rmq_err_t proto_lock_batch_decode(const void *body, size_t len, proto_lock_batch_t *out) {
    BODY_DECODE(body, len, out, lock_batch_read, proto_lock_batch_free);
}

void proto_lock_batch_free(proto_lock_batch_t *lb) {
    cm_free(lb->client_id);
    cm_free(lb->consumer_group);
    proto_mq_list_free(&lb->mqs);
    memset(lb, 0, sizeof *lb);
}

void proto_lock_batch_encode(const proto_lock_batch_t *lb, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_str(&w, "clientId", lb->client_id);
    jw_str(&w, "consumerGroup", lb->consumer_group);
    jw_key(&w, "mqSet");
    put_mq_list(out, &lb->mqs);
    jw_close(&w);
}

static rmq_err_t lock_ok_read(const proto_json_t *root, proto_mq_list_t *out) {
    const proto_json_t *set;
    rmq_err_t rc = j_container(root, "lockOKMQSet", PJ_ARRAY, &set);
    return rc != RMQ_OK ? rc : mq_list_read(set, out);
}

rmq_err_t proto_lock_ok_decode(const void *body, size_t len, proto_mq_list_t *out) {
    BODY_DECODE(body, len, out, lock_ok_read, proto_mq_list_free);
}

void proto_lock_ok_encode(const proto_mq_list_t *mqs, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_key(&w, "lockOKMQSet");
    put_mq_list(out, mqs);
    jw_close(&w);
}

static rmq_err_t kv_table_read(const proto_json_t *root, proto_ext_t *out) {
    const proto_json_t *t;
    rmq_err_t rc = j_container(root, "table", PJ_OBJECT, &t);
    for (size_t i = 0; rc == RMQ_OK && t && i < t->len; i++) {
        char *k = key_text(t->keys[i]);
        if (k && t->items[i]->type == PJ_STRING)
            proto_ext_set(out, k, t->items[i]->s);
        else if (!k || t->items[i]->type != PJ_NULL)
            rc = RMQ_ERR_MALFORMED;
        cm_free(k);
    }
    return rc;
}

rmq_err_t proto_kv_table_decode(const void *body, size_t len, proto_ext_t *out) {
    BODY_DECODE(body, len, out, kv_table_read, proto_ext_free);
}

void proto_kv_table_encode(const proto_ext_t *table, cm_buf_t *out) {
    size_t *idx = sorted_order((const char *const *)table->keys, table->count);
    jw_t w = jw_open(out);
    jw_key(&w, "table");
    jw_t t = jw_open(out);
    for (size_t i = 0; i < table->count; i++)
        jw_str(&t, table->keys[idx[i]], table->vals[idx[i]]);
    jw_close(&t);
    jw_close(&w);
    cm_free(idx);
}

static rmq_err_t topic_list_read(const proto_json_t *root, proto_topic_list_t *tl) {
    rmq_err_t rc = j_strlist(root, "topicList", &tl->topics);
    return rc != RMQ_OK ? rc : j_str(root, "brokerAddr", &tl->broker_addr);
}

rmq_err_t proto_topic_list_decode(const void *body, size_t len, proto_topic_list_t *out) {
    BODY_DECODE(body, len, out, topic_list_read, proto_topic_list_free);
}

void proto_topic_list_free(proto_topic_list_t *tl) {
    proto_strlist_free(&tl->topics);
    cm_free(tl->broker_addr);
    memset(tl, 0, sizeof *tl);
}

void proto_topic_list_encode(const proto_topic_list_t *tl, cm_buf_t *out) {
    jw_t w = jw_open(out);
    jw_str(&w, "brokerAddr", tl->broker_addr);
    jw_key(&w, "topicList");
    put_strlist(out, &tl->topics);
    jw_close(&w);
}
