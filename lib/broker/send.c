/* lib/broker/send.c: SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320)
 * — check the request as RocketMQ's SendMessageProcessor does, build the stored record(s)
 * byte for byte as a 4.9.8 broker would (CLUSTER added, WAIT dropped, properties in Java's
 * HashMap order), append them and answer with the offset id, queue id and queue offset.
 * Runs on the send thread(s), where store_append may wait for the disk under SYNC_FLUSH, and
 * with ASYNC_FLUSH on the loop thread for a read's single sends (broker_send_many). */
#include "broker/broker_int.h"

#include <stdio.h>
#include <strings.h>

#define ILLEGAL_REMARK                                                                             \
    "the message is illegal, maybe msg body or properties length not matched. msg body "           \
    "length limit 128k, msg properties length limit 32k."
#define PROPS_MAX 32767 /* the record's properties length is an int16 */

/* ---------------------------------------------------------------- Java property order */

/* One property, pointing into text that outlives it (no NUL at its ends). */
typedef struct prop_view {
    const char *name, *val;
    size_t name_len, val_len;
} prop_view_t;

/* Properties a message usually has fit this many slots on the stack. */
#define JAVA_ORDER_STACK 32

/* Writes v[0..n) (not changed) as a java.util.HashMap that once held peak entries iterates them: a
 * default map doubles from 16 whenever its size passes 3/4 of the capacity and never shrinks, so
 * the peak fixes the capacity; iteration goes bucket by bucket, insertion order inside one. */
static void java_order(prop_view_t *v, size_t n, size_t peak, cm_buf_t *out) {
    uint32_t cap = 16;
    while ((double)peak > cap * 0.75)
        cap *= 2;
    uint32_t stack_bucket[JAVA_ORDER_STACK];
    uint32_t stack_order[JAVA_ORDER_STACK];
    bool small = n <= JAVA_ORDER_STACK;
    uint32_t *bucket = small ? stack_bucket : cm_malloc(n * sizeof *bucket);
    uint32_t *order = small ? stack_order : cm_malloc(n * sizeof *order);
    size_t bytes = 0;
    /* Each name hashed once; a stable insertion sort by bucket keeps insertion order. */
    for (size_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)cm_java_hash(v[i].name, v[i].name_len);
        bucket[i] = (h ^ (h >> 16)) & (cap - 1);
        size_t j = i;
        for (; j > 0 && bucket[order[j - 1]] > bucket[i]; j--)
            order[j] = order[j - 1];
        order[j] = (uint32_t)i;
        bytes += v[i].name_len + v[i].val_len + 2;
    }
    cm_buf_reserve(out, bytes);
    for (size_t k = 0; k < n; k++) {
        const prop_view_t *p = &v[order[k]];
        if (k) cm_buf_put8(out, PROTO_PROP_SEP);
        cm_buf_append(out, p->name, p->name_len);
        cm_buf_put8(out, PROTO_NAME_SEP);
        cm_buf_append(out, p->val, p->val_len);
    }
    if (!small) {
        cm_free(bucket);
        cm_free(order);
    }
}

void broker_props_java_order(const proto_props_t *p, size_t peak, cm_buf_t *out) {
    size_t n = p->count;
    prop_view_t stack[JAVA_ORDER_STACK];
    prop_view_t *v = n <= JAVA_ORDER_STACK ? stack : cm_malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (prop_view_t){p->names[i], p->vals[i], strlen(p->names[i]), strlen(p->vals[i])};
    java_order(v, n, peak, out);
    if (v != stack) cm_free(v);
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

/* ---------------------------------------------------------------- the plain send's properties */

/* Most sends carry a few ASCII properties and none that makes them special: those are
 * split in place and written out without building a proto_props_t (a copy of every name
 * and value); anything else takes the general path above, which stays the reference. */
#define PLAIN_PROPS 32

/* Names that give a send more to do than a store: a transaction's half (is_half), a delay
 * level (delay_level) and the timer keys (broker_timer_key). */
static bool special_name(const char *name, size_t len) {
    return (len == sizeof PROP_TRAN_MSG - 1 && memcmp(name, PROP_TRAN_MSG, len) == 0) ||
           (len == sizeof PROP_DELAY - 1 && memcmp(name, PROP_DELAY, len) == 0) ||
           broker_timer_key(name, len);
}

/* No NUL and no byte above 0x7F: then the text is valid UTF-8 as proto_props_parse wants. */
static bool plain_ascii(const char *s, size_t len) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t bad = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        bad |= ((x - ones) | x) & highs; /* a zero byte borrows into its high bit */
    }
    for (; i < len; i++)
        bad |= (uint8_t)s[i] == 0 || (uint8_t)s[i] > 0x7F;
    return bad == 0;
}

static size_t view_find(const prop_view_t *v, size_t n, const char *name, size_t len) {
    size_t i = 0;
    while (i < n && !(v[i].name_len == len && memcmp(v[i].name, name, len) == 0))
        i++;
    return i;
}

/* Splits text as proto_props_parse reads it (empty pairs and pairs with an empty name or
 * value skipped, the last value of a name kept in the place of its first) into v, which
 * has room for PLAIN_PROPS. False when the send is not plain: non-ASCII or NUL bytes, a
 * pair without \1 (refused by the general path), too many names, or a special one. */
static bool plain_split(const char *text, size_t len, prop_view_t *v, size_t *count) {
    if (!plain_ascii(text, len)) return false;
    size_t n = 0, pos = 0;
    proto_prop_pair_t pp;
    while (proto_props_next(text, len, &pos, &pp)) {
        if (!pp.val || special_name(pp.name, pp.name_len)) return false;
        if (pp.name_len == 0 || pp.val_len == 0) continue;
        size_t i = view_find(v, n, pp.name, pp.name_len);
        if (i == n) {
            if (n == PLAIN_PROPS) return false;
            v[n++] = (prop_view_t){.name = pp.name, .name_len = pp.name_len};
        }
        v[i].val = pp.val;
        v[i].val_len = pp.val_len;
    }
    *count = n;
    return true;
}

/* stored_props for a plain send (v from plain_split, room for one more): CLUSTER set,
 * WAIT dropped, Java's order. */
static void plain_props(broker_t *b, prop_view_t *v, size_t n, cm_buf_t *out, bool *wait) {
    size_t w = view_find(v, n, PROP_WAIT, strlen(PROP_WAIT));
    bool has_wait = w < n;
    *wait = !has_wait || !(v[w].val_len == 5 && memcmp(v[w].val, "false", 5) == 0);
    size_t cl = view_find(v, n, PROP_CLUSTER, strlen(PROP_CLUSTER));
    size_t peak = n + (cl == n ? 1 : 0);
    if (cl == n) v[n++] = (prop_view_t){.name = PROP_CLUSTER, .name_len = strlen(PROP_CLUSTER)};
    v[cl].val = b->cluster;
    v[cl].val_len = strlen(b->cluster);
    if (has_wait) {
        memmove(&v[w], &v[w + 1], (n - w - 1) * sizeof *v);
        n--;
    }
    java_order(v, n, peak, out);
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
    size_t rec_off, rec_len; /* the record in the scratch's recs */
    bool wait;               /* the producer waits for the store (WAIT not "false") */
    int32_t reply_qid;       /* Java answers the queue it picked, even for the DLQ */
} send_ready_t;

/* Buffers one round of sends shares: the records wait in one buffer for the store, and
 * the properties of each are built in the same place, instead of two allocations each. */
static void send_finish(broker_t *b, send_ready_t *r, rmq_err_t st,
                        const store_put_result_t *res) {
    char id[64] = "";
    proto_offset_id_format(&b->store_host, res->phys_offset, id, sizeof id);
    reply_put(b, r->req, st, r->wait, res, id, r->reply_qid);
}

/* Checks a single send and appends the record to store to sc->recs. False when the request
 * was answered. */
static bool send_prepare(broker_t *b, broker_req_t *req, send_scratch_t *sc, send_ready_t *r) {
    send_ctx_t c;
    if (!check_request(b, req, &c)) return false;
    *r = (send_ready_t){.req = req, .wait = true, .reply_qid = c.queue_id};
    char dlq[300];
    if (!retry_and_dlq(b, req, &c, dlq, sizeof dlq)) return false;
    const char *text = c.h.properties ? c.h.properties : "";
    prop_view_t plain[PLAIN_PROPS + 1];
    size_t nplain;
    bool is_plain = plain_split(text, strlen(text), plain, &nplain);
    int32_t level = 0;
    int64_t timer_ms = 0;
    c.half = false;
    if (!is_plain) {
        c.half = is_half(&c);
        level = c.half ? 0 : delay_level(b, req, &c); /* producers drop DELAY on halves */
        if (level < 0) return false;
        timer_ms = level == 0 && !c.half ? timer_deliver_ms(b, req, &c) : 0; /* DELAY wins */
        if (timer_ms < 0) return false;
    }
    if (req->cmd.body_len > (size_t)b->max_message_size) {
        broker_reply_code(b, req, RMQ_ERR_MESSAGE_ILLEGAL, ILLEGAL_REMARK);
        return false;
    }
    cm_buf_t *props = &sc->props;
    cm_buf_reset(props);
    if (is_plain)
        plain_props(b, plain, nplain, props, &r->wait);
    else if (stored_props(b, &c, level, timer_ms, props, &r->wait) != RMQ_OK)
        props->len = PROPS_MAX + 1; /* illegal either way */
    if (props->len > PROPS_MAX) {
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
    rec.props = (const char *)props->data;
    rec.props_len = (int32_t)props->len;
    r->rec_off = sc->recs.len;
    rmq_err_t st = proto_record_encode(&rec, &sc->recs);
    if (st != RMQ_OK) {
        sc->recs.len = r->rec_off;
        store_put_result_t none = {0};
        send_finish(b, r, st, &none);
        return false;
    }
    r->rec_len = sc->recs.len - r->rec_off;
    return true;
}

static void on_send(broker_t *b, broker_req_t *req) {
    send_scratch_t sc = {CM_BUF_INIT, CM_BUF_INIT};
    send_ready_t r;
    if (send_prepare(b, req, &sc, &r)) {
        store_put_result_t res = {0};
        rmq_err_t st =
            store_append(b->store, sc.recs.data, r.rec_len, &b->store_host, r.wait, &res);
        send_finish(b, &r, st, &res);
    }
    cm_buf_free(&sc.recs);
    cm_buf_free(&sc.props);
}

/* Stores n prepared sends with one store_append_many and answers each; the scratch's
 * records are done with then. */
static void store_ready(broker_t *b, send_scratch_t *sc, send_ready_t *ready, store_put_req_t *puts,
                        size_t n) {
    if (n == 0) return;
    for (size_t i = 0; i < n; i++)
        puts[i] = (store_put_req_t){.rec = sc->recs.data + ready[i].rec_off,
                                    .len = ready[i].rec_len,
                                    .wait_flush = ready[i].wait};
    store_append_many(b->store, puts, n, &b->store_host);
    for (size_t i = 0; i < n; i++) send_finish(b, &ready[i], puts[i].res.status, &puts[i].res);
    cm_buf_reset(&sc->recs);
}

bool broker_send_is_single(broker_t *b, const broker_req_t *req) {
    return b->procs[req->cmd.code] == on_send;
}

/* Sends one round usually holds: their bookkeeping stays on the stack. */
#define SEND_MANY_STACK 16
/* Bytes a record takes besides its body, properties included, as a first guess. */
#define RECORD_GUESS 256
/* A round's buffers are kept for the next round up to this size. */
#define SCRATCH_KEEP (1024 * 1024)

void send_scratch_free(send_scratch_t *sc) {
    cm_buf_free(&sc->recs);
    cm_buf_free(&sc->props);
}

void broker_send_many(broker_t *b, broker_req_t **reqs, size_t n, send_scratch_t *sc) {
    send_ready_t stack_ready[SEND_MANY_STACK];
    store_put_req_t stack_puts[SEND_MANY_STACK];
    bool small = n <= SEND_MANY_STACK;
    send_ready_t *ready = small ? stack_ready : cm_malloc(n * sizeof *ready);
    store_put_req_t *puts = small ? stack_puts : cm_malloc(n * sizeof *puts);
    size_t guess = 0;
    for (size_t i = 0; i < n; i++)
        guess += reqs[i]->cmd.body_len + RECORD_GUESS;
    cm_buf_reserve(&sc->recs, guess); /* one allocation for the round's records */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        broker_proc_fn *fn = b->procs[reqs[i]->cmd.code];
        if (fn == on_send) {
            if (send_prepare(b, reqs[i], sc, &ready[k])) k++;
            continue;
        }
        /* Anything else (a batch message, a processor registered over ours) runs in order
         * after the single sends before it are stored. */
        store_ready(b, sc, ready, puts, k);
        k = 0;
        fn(b, reqs[i]);
    }
    store_ready(b, sc, ready, puts, k);
    if (sc->recs.cap > SCRATCH_KEEP || sc->props.cap > SCRATCH_KEEP) send_scratch_free(sc);
    if (!small) {
        cm_free(puts);
        cm_free(ready);
    }
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
