/* lib/broker/send.c: SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320)
 * — check the request as RocketMQ's SendMessageProcessor does, build the stored record(s)
 * byte for byte as a 4.9.8 broker would (CLUSTER added, WAIT dropped, properties in Java's
 * HashMap order), append them and answer with the offset id, queue id and queue offset.
 * Runs on the send thread(s): store_append may wait for the disk under SYNC_FLUSH. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <strings.h>

#define ILLEGAL_REMARK                                                                             \
    "the message is illegal, maybe msg body or properties length not matched. msg body "           \
    "length limit 128k, msg properties length limit 32k."
#define PROPS_MAX 32767 /* the record's properties length is an int16 */

/* ---------------------------------------------------------------- Java property order */

/* Index of name's bucket in a java.util.HashMap of capacity cap (a power of two). */
static uint32_t java_bucket(const char *name, uint32_t cap) {
    uint32_t h = (uint32_t)cm_java_hash(name, strlen(name));
    return (h ^ (h >> 16)) & (cap - 1);
}

/* Properties a message usually has fit this many bucket slots on the stack. */
#define JAVA_ORDER_STACK 32

void broker_props_java_order(const proto_props_t *p, size_t peak, cm_buf_t *out) {
    /* A default HashMap doubles from 16 whenever its size passes 3/4 of the capacity; it
     * never shrinks, so the largest size the map ever had fixes the capacity. Iteration
     * goes bucket by bucket, insertion order inside one. Each name is hashed once. */
    uint32_t cap = 16;
    while ((double)peak > cap * 0.75)
        cap *= 2;
    size_t n = p->count, done = 0;
    uint32_t stack[JAVA_ORDER_STACK];
    uint32_t *bucket_of = n <= JAVA_ORDER_STACK ? stack : cm_malloc(n * sizeof *bucket_of);
    for (size_t i = 0; i < n; i++)
        bucket_of[i] = java_bucket(p->names[i], cap);
    bool first = true;
    for (uint32_t bucket = 0; done < n && bucket < cap; bucket++) {
        for (size_t i = 0; i < n; i++) {
            if (bucket_of[i] != bucket) continue;
            if (!first) cm_buf_put8(out, PROTO_PROP_SEP);
            cm_buf_append_str(out, p->names[i]);
            cm_buf_put8(out, PROTO_NAME_SEP);
            cm_buf_append_str(out, p->vals[i]);
            first = false;
            done++;
        }
    }
    if (bucket_of != stack) cm_free(bucket_of);
}

typedef struct send_ctx {
    proto_send_req_t h;
    broker_topic_t topic;
    int32_t queue_id;
    bool half; /* a transaction's half message (transaction.c parks it) */
} send_ctx_t;

/* The stored properties of a single send: the request's, plus CLUSTER, minus WAIT (as
 * 4.9.8 saves those 9 bytes). *wait tells whether the producer waits for the store. A
 * delayed send (level > 0) keeps WAIT and gets REAL_TOPIC and REAL_QID, and a DELAY above
 * the last level becomes the last level, as CommitLog.putMessage rewrites it. */
static rmq_err_t stored_props(broker_t *b, const send_ctx_t *c, int32_t level, int64_t timer_ms,
                              cm_buf_t *out, bool *wait) {
    const char *text = c->h.properties;
    proto_props_t p = {0};
    rmq_err_t rc = proto_props_parse(text ? text : "", text ? strlen(text) : 0, &p);
    if (rc != RMQ_OK) {
        proto_props_free(&p);
        return rc;
    }
    const char *w = proto_props_get(&p, PROP_WAIT);
    *wait = !w || strcmp(w, "false") != 0;
    size_t peak = p.count + (proto_props_get(&p, PROP_CLUSTER) ? 0 : 1);
    proto_props_set(&p, PROP_CLUSTER, b->cluster);
    char *wait_val = w ? cm_strdup(w) : NULL;
    proto_props_set(&p, PROP_WAIT, NULL);
    if (level > 0 || timer_ms > 0 || c->half) {
        /* SendMessageProcessor puts WAIT back (last in insertion order) after dropping it
         * from the first string; the delay rewrite then re-encodes the whole map, so a
         * delayed record keeps WAIT (observed in a 4.9.8 store). */
        if (wait_val) proto_props_set(&p, PROP_WAIT, wait_val);
        char num[16];
        if (level > b->store_cfg.delay_levels) {
            snprintf(num, sizeof num, "%d", b->store_cfg.delay_levels);
            proto_props_set(&p, PROP_DELAY, num);
        }
        if (timer_ms > 0) { /* a timer message (timer.c), as RocketMQ 5 parks it */
            char ms[24];
            snprintf(ms, sizeof ms, "%lld", (long long)timer_ms);
            proto_props_set(&p, PROP_TIMER_OUT_MS, ms);
        }
        proto_props_set(&p, PROP_REAL_TOPIC, c->h.topic);
        snprintf(num, sizeof num, "%d", c->queue_id);
        proto_props_set(&p, PROP_REAL_QID, num);
        if (p.count > peak) peak = p.count;
    }
    cm_free(wait_val);
    broker_props_java_order(&p, peak, out);
    proto_props_free(&p);
    return RMQ_OK;
}

/* ---------------------------------------------------------------- checks */

static bool check_topic_name(broker_t *b, broker_req_t *req, const char *topic) {
    if (!topic || !*topic) {
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR, "The specified topic is blank.");
        return false;
    }
    if (strlen(topic) > 127) {
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR,
                          "The specified topic is longer than topic max length.");
        return false;
    }
    if (!proto_topic_name_valid(topic)) {
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR,
                          "The specified topic contains illegal characters, allowing only "
                          "^[%|a-zA-Z0-9_-]+$");
        return false;
    }
    if (proto_topic_not_sendable(topic)) {
        broker_reply_fmt(b, req, RMQ_ERR_NO_PERMISSION, "Sending message to topic[%s] is forbidden.",
                  topic);
        return false;
    }
    return true;
}

/* Decodes the header and runs msgCheck: topic name, topic (auto-created), queue id. On
 * false the request was answered. */
static bool check_request(broker_t *b, broker_req_t *req, send_ctx_t *c) {
    proto_hdr_err_t herr;
    if (proto_send_req_decode(&req->cmd.ext, req->cmd.code, &c->h, &herr) != RMQ_OK) {
        broker_reply_bad_header(b, req, &herr);
        return false;
    }
    if (!check_topic_name(b, req, c->h.topic)) return false;
    if (broker_topics_create_on_send(b, c->h.topic, c->h.default_topic,
                                     c->h.default_topic_queue_nums, 0, &c->topic) != RMQ_OK) {
        broker_reply_fmt(b, req, RMQ_ERR_TOPIC_NOT_EXIST, "topic[%s] not exist, apply first please!%s",
                  c->h.topic, PROTO_FAQ_SUFFIX);
        return false;
    }
    if (!(c->topic.perm & PROTO_PERM_WRITE)) {
        broker_reply_fmt(b, req, RMQ_ERR_NO_PERMISSION, "the topic[%s] sending message is forbidden",
                  c->h.topic);
        return false;
    }
    int32_t limit = c->topic.write_queue_nums > c->topic.read_queue_nums ? c->topic.write_queue_nums
                                                                         : c->topic.read_queue_nums;
    c->queue_id = c->h.queue_id;
    if (c->queue_id >= limit) {
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR,
                  "request queueId[%d] is illegal, topic %s has %d "
                  "queues, Producer: %s",
                  c->queue_id, c->h.topic, limit, req->peer_text);
        return false;
    }
    if (c->queue_id < 0) {
        if (c->topic.write_queue_nums <= 0) {
            broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "topic[%s] has no writable queue", c->h.topic);
            return false;
        }
        c->queue_id = (int32_t)((uint64_t)cm_mono_ns() % (uint64_t)c->topic.write_queue_nums);
    }
    return true;
}

/* A batch never carries a transaction (RocketMQ's batch path has no half messages): refused
 * rather than stored as plain messages, which would deliver them without their semantics. */
static bool refuse_unsupported(broker_t *b, broker_req_t *req, const send_ctx_t *c) {
    const char *props = c->h.properties ? c->h.properties : "";
    const char *val;
    size_t len;
    if ((c->h.sys_flag & SYSFLAG_TX_MASK) == SYSFLAG_TX_PREPARED ||
        (proto_props_find(props, strlen(props), PROP_TRAN_MSG, &val, &len) && len == 4 &&
         memcmp(val, "true", 4) == 0)) {
        broker_reply_fmt(b, req, RMQ_ERR_NO_PERMISSION,
                  "the broker[%s] sending transaction message is forbidden", b->addr);
        return true;
    }
    return false;
}

/* SendMessageProcessor: TRAN_MSG parses as true (Java's Boolean.parseBoolean), unless it is
 * a delayed re-consumption. */
static bool is_half(const send_ctx_t *c) {
    const char *props = c->h.properties ? c->h.properties : "";
    const char *val;
    size_t len;
    if (!proto_props_find(props, strlen(props), PROP_TRAN_MSG, &val, &len) || len != 4 ||
        strncasecmp(val, "true", 4) != 0)
        return false;
    return !(c->h.reconsume_times > 0 && broker_sched_level(props, strlen(props)) > 0);
}

/* The send's delay level (0 = none; above the last level is kept as sent, stored_props
 * clamps it), as CommitLog.putMessage reads it: only for non-transactional and committed
 * messages. -1 (answered) when DELAY is not a number, where Java's parseInt throws. */
static int32_t delay_level(broker_t *b, broker_req_t *req, const send_ctx_t *c) {
    int32_t tx = c->h.sys_flag & SYSFLAG_TX_MASK;
    if (tx != SYSFLAG_TX_NOT && tx != SYSFLAG_TX_COMMIT) return 0;
    const char *props = c->h.properties ? c->h.properties : "";
    int32_t level = broker_sched_level(props, strlen(props));
    if (level < 0)
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR, "the DELAY property is not a number");
    return level;
}

/* A timer message's deliver time (HookUtils.transformTimerMessage): 0 none, > 0 the wall
 * ms, -1 when answered (MESSAGE_ILLEGAL: not a number, past the maximum, timers off). Only
 * for non-transactional and committed messages, as delay levels. */
static int64_t timer_deliver_ms(broker_t *b, broker_req_t *req, const send_ctx_t *c) {
    int32_t tx = c->h.sys_flag & SYSFLAG_TX_MASK;
    if (tx != SYSFLAG_TX_NOT && tx != SYSFLAG_TX_COMMIT) return 0;
    const char *props = c->h.properties ? c->h.properties : "";
    char remark[256];
    int64_t ms = broker_timer_deliver_ms(b, props, strlen(props), remark, sizeof remark);
    if (ms < 0) broker_reply_code(b, req, RMQ_ERR_MESSAGE_ILLEGAL, remark);
    return ms;
}

/* handleRetryAndDLQ: a send to %RETRY%<group> (a consumer's fallback when its send-back
 * failed) that has been consumed the group's maximum number of times goes to %DLQ%<group>
 * queue 0 instead. As in 4.9.8 the request's properties are kept whole, so a DELAY they
 * carry still applies (Java's DELAY=0 lands in a map that is replaced right after). On
 * false the request was answered. dlq holds the new topic name c->h.topic points to. */
static bool retry_and_dlq(broker_t *b, broker_req_t *req, send_ctx_t *c, char *dlq, size_t size) {
    if (strncmp(c->h.topic, "%RETRY%", 7) != 0) return true;
    const char *group = c->h.topic + 7;
    broker_subgroup_t g;
    if (!b->subgroups || !broker_subgroups_find(b->subgroups, group, &g)) {
        broker_reply_fmt(b, req, RMQ_ERR_SUBSCRIPTION_GROUP_NOT_EXIST,
                  "subscription group not exist, %s %s", group, PROTO_FAQ_SUFFIX);
        return false;
    }
    int32_t max = c->h.has_max_reconsume_times ? c->h.max_reconsume_times : g.retry_max_times;
    if (c->h.reconsume_times < max) return true;
    snprintf(dlq, size, "%%DLQ%%%s", group);
    if (!broker_topics_ensure(b, dlq, 1, PROTO_PERM_READ | PROTO_PERM_WRITE, 0)) {
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "topic[%s] not exist", dlq);
        return false;
    }
    c->h.topic = dlq;
    c->queue_id = 0; /* DLQ_NUMS_PER_GROUP = 1 */
    return true;
}

/* ---------------------------------------------------------------- record and reply */

static void fill_record(broker_t *b, const broker_req_t *req, const send_ctx_t *c,
                        proto_record_t *rec) {
    memset(rec, 0, sizeof *rec);
    rec->magic = PROTO_MAGIC_V1;
    rec->queue_id = c->queue_id;
    rec->flag = c->h.flag;
    rec->sys_flag = c->h.sys_flag & ~(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6);
    if (req->peer.ip_len == 16) rec->sys_flag |= SYSFLAG_BORNHOST_V6;
    if (b->store_host.ip_len == 16) rec->sys_flag |= SYSFLAG_STOREHOST_V6;
    rec->born_timestamp = c->h.born_timestamp;
    rec->born_host = req->peer;
    rec->store_host = b->store_host;
    rec->reconsume_times = c->h.reconsume_times;
    rec->topic = c->h.topic;
    rec->topic_len = (int32_t)strlen(c->h.topic);
}

/* Maps a store status to the reply code; 10 and 11 still mean "stored". */
static int32_t status_code(broker_t *b, rmq_err_t st, bool wait, const char **remark) {
    *remark = NULL;
    switch (st) {
    case RMQ_OK:
        /* SYNC_MASTER without a slave: stored, not replicated (there is no HA yet). */
        if (wait && b->sync_master) return RMQ_ERR_SLAVE_NOT_AVAILABLE;
        return 0;
    case RMQ_ERR_FLUSH_DISK_TIMEOUT:
        return RMQ_ERR_FLUSH_DISK_TIMEOUT;
    case RMQ_ERR_DISK_FULL:
        *remark = "service not available now, maybe disk full, maybe your broker machine "
                  "memory too small.";
        return RMQ_ERR_SERVICE_NOT_AVAILABLE;
    case RMQ_ERR_SHUTDOWN:
        *remark = "service not available now, the broker is shutting down.";
        return RMQ_ERR_SERVICE_NOT_AVAILABLE;
    case RMQ_ERR_MSG_TOO_LARGE:
    case RMQ_ERR_MALFORMED:
    case RMQ_ERR_TRUNCATED:
    case RMQ_ERR_BAD_MAGIC:
        *remark = ILLEGAL_REMARK;
        return RMQ_ERR_MESSAGE_ILLEGAL;
    default:
        *remark = "create mapped file failed, server is busy or broken.";
        return RMQ_ERR_SYSTEM_ERROR;
    }
}

static void reply_put(broker_t *b, broker_req_t *req, rmq_err_t st, bool wait,
                      const store_put_result_t *res, const char *msg_ids, int32_t queue_id) {
    const char *remark;
    int32_t code = status_code(b, st, wait, &remark);
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, code, remark);
    if (code == 0 || code == RMQ_ERR_FLUSH_DISK_TIMEOUT || code == RMQ_ERR_SLAVE_NOT_AVAILABLE) {
        proto_send_resp_t r;
        proto_send_resp_init(&r);
        r.msg_id = msg_ids;
        r.queue_id = queue_id;
        r.queue_offset = res->queue_offset;
        proto_send_resp_encode(&r, &resp.ext);
        atomic_fetch_add(&b->counters.msgs_in, res->msg_count);
        atomic_fetch_add(&b->counters.bytes_in, res->wrote_bytes);
    }
    /* The Java client reads MSG_REGION and TRACE_ON from every send reply's extFields. */
    resp.has_ext = true;
    broker_reply(b, req, &resp);
}

/* ---------------------------------------------------------------- single send */

/* A checked single send, its record encoded and waiting for the store. */
typedef struct send_ready {
    broker_req_t *req;
    cm_buf_t rec;
    bool wait;         /* the producer waits for the store (WAIT not "false") */
    int32_t reply_qid; /* Java answers the queue it picked, even for the DLQ */
} send_ready_t;

static void send_finish(broker_t *b, send_ready_t *r, rmq_err_t st,
                        const store_put_result_t *res) {
    char id[64] = "";
    proto_offset_id_format(&b->store_host, res->phys_offset, id, sizeof id);
    cm_buf_free(&r->rec);
    reply_put(b, r->req, st, r->wait, res, id, r->reply_qid);
}

/* Checks a single send and encodes the record to store into r->rec. False when the
 * request was answered. */
static bool send_prepare(broker_t *b, broker_req_t *req, send_ready_t *r) {
    send_ctx_t c;
    if (!check_request(b, req, &c)) return false;
    *r = (send_ready_t){.req = req, .rec = CM_BUF_INIT, .wait = true, .reply_qid = c.queue_id};
    char dlq[300];
    if (!retry_and_dlq(b, req, &c, dlq, sizeof dlq)) return false;
    c.half = is_half(&c);
    int32_t level = c.half ? 0 : delay_level(b, req, &c); /* producers drop DELAY on halves */
    if (level < 0) return false;
    int64_t timer_ms = level == 0 && !c.half ? timer_deliver_ms(b, req, &c) : 0; /* DELAY wins */
    if (timer_ms < 0) return false;
    if (req->cmd.body_len > (size_t)b->max_message_size) {
        broker_reply_code(b, req, RMQ_ERR_MESSAGE_ILLEGAL, ILLEGAL_REMARK);
        return false;
    }
    cm_buf_t props = CM_BUF_INIT;
    if (stored_props(b, &c, level, timer_ms, &props, &r->wait) != RMQ_OK ||
        props.len > PROPS_MAX) {
        cm_buf_free(&props);
        broker_reply_code(b, req, RMQ_ERR_MESSAGE_ILLEGAL, ILLEGAL_REMARK);
        return false;
    }
    proto_record_t rec;
    fill_record(b, req, &c, &rec);
    if (level > 0) { /* kept on the schedule topic until due (schedule.c) */
        rec.topic = STORE_SCHEDULE_TOPIC;
        rec.topic_len = (int32_t)strlen(STORE_SCHEDULE_TOPIC);
        int32_t max = b->store_cfg.delay_levels;
        rec.queue_id = (level > max ? max : level) - 1;
    } else if (timer_ms > 0) { /* kept on the timer topic until due (timer.c) */
        rec.topic = BROKER_TIMER_TOPIC;
        rec.topic_len = (int32_t)strlen(BROKER_TIMER_TOPIC);
        rec.queue_id = 0;
    } else if (c.half) { /* kept on the half topic until its END (transaction.c) */
        broker_tx_park_half(b, &rec);
    }
    rec.body = req->cmd.body;
    rec.body_len = (int32_t)req->cmd.body_len;
    rec.props = (const char *)props.data;
    rec.props_len = (int32_t)props.len;
    rmq_err_t st = proto_record_encode(&rec, &r->rec);
    cm_buf_free(&props);
    if (st != RMQ_OK) {
        store_put_result_t none = {0};
        send_finish(b, r, st, &none);
        return false;
    }
    return true;
}

static void on_send(broker_t *b, broker_req_t *req) {
    send_ready_t r;
    if (!send_prepare(b, req, &r)) return;
    store_put_result_t res = {0};
    rmq_err_t st = store_append(b->store, r.rec.data, r.rec.len, &b->store_host, r.wait, &res);
    send_finish(b, &r, st, &res);
}

/* Stores n prepared sends with one store_append_many and answers each. */
static void store_ready(broker_t *b, send_ready_t *ready, store_put_req_t *puts, size_t n) {
    if (n == 0) return;
    for (size_t i = 0; i < n; i++)
        puts[i] = (store_put_req_t){
            .rec = ready[i].rec.data, .len = ready[i].rec.len, .wait_flush = ready[i].wait};
    store_append_many(b->store, puts, n, &b->store_host);
    for (size_t i = 0; i < n; i++) send_finish(b, &ready[i], puts[i].res.status, &puts[i].res);
}

bool broker_send_is_single(broker_t *b, const broker_req_t *req) {
    return b->procs[req->cmd.code] == on_send;
}

void broker_send_many(broker_t *b, broker_req_t **reqs, size_t n) {
    send_ready_t *ready = cm_malloc(n * sizeof *ready);
    store_put_req_t *puts = cm_malloc(n * sizeof *puts);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        broker_proc_fn *fn = b->procs[reqs[i]->cmd.code];
        if (fn == on_send) {
            if (send_prepare(b, reqs[i], &ready[k])) k++;
            continue;
        }
        /* Anything else (a batch message, a processor registered over ours) runs in order
         * after the single sends before it are stored. */
        store_ready(b, ready, puts, k);
        k = 0;
        fn(b, reqs[i]);
    }
    store_ready(b, ready, puts, k);
    cm_free(puts);
    cm_free(ready);
}

/* ---------------------------------------------------------------- batch send */

/* The batch's own properties (the header's, plus CLUSTER, WAIT kept), which 4.9.8 appends
 * to every inner message's properties. */
static rmq_err_t batch_props(broker_t *b, const char *text, cm_buf_t *out, bool *wait) {
    proto_props_t p = {0};
    rmq_err_t rc = proto_props_parse(text ? text : "", text ? strlen(text) : 0, &p);
    if (rc == RMQ_OK) {
        const char *w = proto_props_get(&p, PROP_WAIT);
        *wait = !w || strcmp(w, "false") != 0;
        size_t peak = p.count + (proto_props_get(&p, PROP_CLUSTER) ? 0 : 1);
        proto_props_set(&p, PROP_CLUSTER, b->cluster);
        broker_props_java_order(&p, peak, out);
    }
    proto_props_free(&p);
    return rc;
}

/* Encodes every inner message as a record into recs; sizes[i] gets each record's size.
 * Returns the count, or -1 when the body or a message is illegal. */
static int encode_batch(broker_t *b, broker_req_t *req, const send_ctx_t *c, const cm_buf_t *bp,
                        cm_buf_t *recs, int32_t **sizes) {
    size_t pos = 0;
    int n = 0, cap = 0;
    proto_batch_item_t item;
    rmq_err_t rc;
    cm_buf_t props = CM_BUF_INIT;
    while ((rc = proto_batch_next(req->cmd.body, req->cmd.body_len, &pos, &item)) == RMQ_OK) {
        if (item.body_len > b->max_message_size) break;
        cm_buf_reset(&props);
        cm_buf_append(&props, item.props, (size_t)item.props_len);
        bool sep =
            item.props_len > 0 && bp->len > 0 && item.props[item.props_len - 1] != PROTO_PROP_SEP;
        if (sep) cm_buf_put8(&props, PROTO_PROP_SEP);
        cm_buf_append(&props, bp->data, bp->len);
        if (props.len > PROPS_MAX) break;
        proto_record_t rec;
        fill_record(b, req, c, &rec);
        rec.flag = item.flag;
        rec.body = item.body;
        rec.body_len = item.body_len;
        rec.props = (const char *)props.data;
        rec.props_len = (int32_t)props.len;
        size_t before = recs->len;
        if (proto_record_encode(&rec, recs) != RMQ_OK) break;
        if (n == cap)
            *sizes = cm_realloc(*sizes, (size_t)(cap = cap ? cap * 2 : 64) * sizeof(int32_t));
        (*sizes)[n++] = (int32_t)(recs->len - before);
    }
    cm_buf_free(&props);
    return rc == RMQ_ERR_NOT_FOUND && n > 0 ? n : -1;
}

static void on_send_batch(broker_t *b, broker_req_t *req) {
    send_ctx_t c;
    if (!check_request(b, req, &c) || refuse_unsupported(b, req, &c)) return;
    /* CommitLog.putMessages refuses a delayed batch (the batch's own DELAY). */
    const char *bprops = c.h.properties ? c.h.properties : "";
    if (broker_sched_level(bprops, strlen(bprops)) != 0) {
        broker_reply_code(b, req, RMQ_ERR_MESSAGE_ILLEGAL, ILLEGAL_REMARK);
        return;
    }
    if (strncmp(c.h.topic, "%RETRY%", 7) == 0) {
        broker_reply_fmt(b, req, RMQ_ERR_MESSAGE_ILLEGAL, "batch request does not support retry group %s",
                  c.h.topic);
        return;
    }
    cm_buf_t bp = CM_BUF_INIT, recs = CM_BUF_INIT;
    int32_t *sizes = NULL;
    bool wait = true;
    int n = -1;
    if (batch_props(b, c.h.properties, &bp, &wait) == RMQ_OK)
        n = encode_batch(b, req, &c, &bp, &recs, &sizes);
    cm_buf_free(&bp);
    if (n < 0) {
        cm_buf_free(&recs);
        cm_free(sizes);
        broker_reply_code(b, req, RMQ_ERR_MESSAGE_ILLEGAL, ILLEGAL_REMARK);
        return;
    }
    store_put_result_t res = {0};
    rmq_err_t st = store_append_batch(b->store, recs.data, recs.len, &b->store_host, wait, &res);
    cm_buf_t ids = CM_BUF_INIT;
    int64_t phys = res.phys_offset;
    for (int i = 0; i < n; i++) {
        char id[64];
        proto_offset_id_format(&b->store_host, phys, id, sizeof id);
        if (i) cm_buf_put8(&ids, ',');
        cm_buf_append_str(&ids, id);
        phys += sizes[i];
    }
    char *id_text = cm_buf_take_str(&ids);
    reply_put(b, req, st, wait, &res, id_text, c.queue_id);
    cm_free(id_text);
    cm_free(sizes);
    cm_buf_free(&recs);
}

void broker_send_register(broker_t *b) {
    broker_set_processor(b, PROTO_SEND_MESSAGE, on_send, BROKER_EXEC_SEND);
    broker_set_processor(b, PROTO_SEND_MESSAGE_V2, on_send, BROKER_EXEC_SEND);
    broker_set_processor(b, PROTO_SEND_BATCH_MESSAGE, on_send_batch, BROKER_EXEC_SEND);
}
