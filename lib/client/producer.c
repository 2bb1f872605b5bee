/* The producer (include/rmq/producer.h): message preparation, queue choice, the sync, async,
 * oneway, orderly, batch and transactional send paths with RocketMQ's retry rules
 * (client.md §3), and the answers to brokers' transaction checks. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <rmq/producer.h>

#include "client.h"

enum { STATE_NEW, STATE_STARTED, STATE_STOPPING };

struct rmq_producer_s {
    rmq_conf_t *conf;
    const char *group; /* owned by conf */
    const char *create_topic_key;
    cm_logger_t log;
    client_instance_t *ci;
    int64_t send_timeout_ms, max_size, compress_over;
    int retries_sync, retries_async, default_queues, compress_type, compress_level;
    bool retry_not_ok, fault_enable;
    rmq_tx_check_cb_t *tx_check; /* from the conf; NULL: checks are ignored */
    void *tx_check_opaque;

    /* state and inflight are atomics: every send reads state and every async send counts
     * itself in and out, from the caller's and the pool's threads; a shared mutex there made
     * them queue on each other. mu and idle serve only destroy's wait for inflight == 0. */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* inflight reached 0 */
    atomic_int state;
    atomic_int inflight; /* async sends and transaction checks not finished yet */
};

/* What rmq_producer_last_remark() answers. */
static _Thread_local char last_remark[512];

static rmq_err_t fail(rmq_err_t err, const char *why) {
    snprintf(last_remark, sizeof last_remark, "%s", why ? why : rmq_err_str(err));
    return err;
}

const char *rmq_producer_last_remark(void) {
    return last_remark;
}

/* ================================================================ outgoing messages */

/* A message as it travels: encoded properties, the (maybe compressed) body, flags. One
 * allocation (block) holds the topic, the properties and a body that was copied as it is;
 * a compressed body or a batch's is its own (body_own). */
typedef struct outgoing {
    char *topic;
    uint8_t *body;
    size_t body_len;
    char *props;
    int32_t sys_flag, flag;
    bool batch;
    char uniq[RMQ_MSG_ID_SIZE];
    void *block;
    uint8_t *body_own;
} outgoing_t;

static void outgoing_free(outgoing_t *o) {
    cm_free(o->block);
    cm_free(o->body_own);
    memset(o, 0, sizeof *o);
}

/* Gives msg a UNIQ_KEY unless it has one (a re-sent message keeps its id). */
static const char *ensure_uniq(rmq_producer_t *p, rmq_msg_t *msg) {
    const char *id = proto_props_get(&msg->props, PROP_UNIQ_KEY);
    if (!id) {
        char fresh[RMQ_MSG_ID_SIZE];
        proto_uniq_gen_next(client_instance_uniq(p->ci), fresh, sizeof fresh);
        proto_props_set(&msg->props, PROP_UNIQ_KEY, fresh);
        id = proto_props_get(&msg->props, PROP_UNIQ_KEY);
    }
    return id;
}

/* msg's properties as sent: its own plus WAIT=true when absent (the Java default), last,
 * where setting it on a copy would put it — written straight out, no copy. */
static size_t props_size(const proto_props_t *props) {
    return proto_props_encoded_len(props, PROP_WAIT, "true");
}

static void write_props(const proto_props_t *props, char *dst) {
    proto_props_write(props, PROP_WAIT, "true", dst);
}

static char *encode_props(const proto_props_t *props) {
    char *text = cm_malloc(props_size(props) + 1);
    write_props(props, text);
    return text;
}

/* Bodies of at least compressMsgBodyOverHowmuch bytes travel compressed (message.md §6):
 * into o->body_own; false when the body goes as it is. */
static bool compress_body(rmq_producer_t *p, outgoing_t *o, const rmq_msg_t *msg) {
    if ((int64_t)msg->body_len < p->compress_over) return false;
    cm_buf_t z = CM_BUF_INIT;
    if (proto_compress(p->compress_type, p->compress_level, msg->body, msg->body_len, &z) ==
        RMQ_OK) {
        o->sys_flag |= SYSFLAG_COMPRESSED | p->compress_type;
        o->body = o->body_own = z.data;
        o->body_len = z.len;
        return true;
    }
    cm_buf_free(&z);
    cm_warn(&p->log, "producer %s: compression failed; sending the body as is", p->group);
    return false;
}

/* Checks msg and copies what its send needs into o. o->block starts with head bytes left
 * for the caller (an async send's own state lives there). */
static rmq_err_t prepare(rmq_producer_t *p, rmq_msg_t *msg, outgoing_t *o, size_t head) {
    char why[256];
    rmq_err_t err = client_check_msg(msg, p->max_size, why, sizeof why);
    if (err) return fail(err, why);
    memset(o, 0, sizeof *o);
    cm_strcpy_cut(o->uniq, sizeof o->uniq, ensure_uniq(p, msg));
    o->flag = msg->flag;
    bool compressed = compress_body(p, o, msg);
    size_t topic_len = strlen(msg->topic), props_len = props_size(&msg->props);
    size_t body_len = compressed ? 0 : msg->body_len;
    /* the body first: it stays aligned as the block */
    head = (head + 15) & ~(size_t)15;
    uint8_t *block = cm_malloc(head + body_len + topic_len + 1 + props_len + 1);
    o->block = block;
    if (!compressed) {
        o->body = block + head;
        o->body_len = body_len;
        if (body_len) memcpy(o->body, msg->body, body_len);
    }
    o->topic = (char *)block + head + body_len;
    memcpy(o->topic, msg->topic, topic_len + 1);
    o->props = o->topic + topic_len + 1;
    write_props(&msg->props, o->props);
    /* sendKernelImpl: TRAN_MSG that parses as true (Boolean.parseBoolean) marks a half. */
    const char *tran = proto_props_get(&msg->props, PROP_TRAN_MSG);
    if (tran && strcasecmp(tran, "true") == 0) o->sys_flag |= SYSFLAG_TX_PREPARED;
    return RMQ_OK;
}

static rmq_err_t prepare_batch(rmq_producer_t *p, rmq_msg_t *const *msgs, size_t count,
                               outgoing_t *o) {
    char why[256];
    for (size_t i = 0; i < count; i++) {
        rmq_err_t err = client_check_msg(msgs[i], p->max_size, why, sizeof why);
        if (err) return fail(err, why);
        if (strcmp(msgs[i]->topic, msgs[0]->topic) != 0)
            return fail(RMQ_ERR_INVALID_ARG, "a batch holds messages of one topic only");
        if (proto_props_get(&msgs[i]->props, PROP_DELAY) ||
            proto_props_get(&msgs[i]->props, PROP_TIMER_DELIVER_MS))
            return fail(RMQ_ERR_INVALID_ARG, "a batch cannot hold delayed messages");
    }
    if (strncmp(msgs[0]->topic, "%RETRY%", 7) == 0)
        return fail(RMQ_ERR_INVALID_ARG, "a batch cannot go to a retry topic");
    memset(o, 0, sizeof *o);
    cm_buf_t body = CM_BUF_INIT;
    for (size_t i = 0; i < count; i++) {
        ensure_uniq(p, msgs[i]);
        char *props = encode_props(&msgs[i]->props);
        proto_batch_encode_item(&body, msgs[i]->flag, msgs[i]->body, msgs[i]->body_len, props,
                                strlen(props));
        cm_free(props);
    }
    if ((int64_t)body.len > p->max_size) {
        snprintf(why, sizeof why, "the batch is %zu bytes encoded, over maxMessageSize %lld",
                 body.len, (long long)p->max_size);
        cm_buf_free(&body);
        return fail(RMQ_ERR_MSG_TOO_LARGE, why);
    }
    /* The batch's own properties carry only WAIT, as Java's MessageBatch does: the broker
     * appends them to every inner message, so an id here would replace each message's own.
     * The send result names the first message's id. */
    snprintf(o->uniq, sizeof o->uniq, "%s", proto_props_get(&msgs[0]->props, PROP_UNIQ_KEY));
    proto_props_t props = {0};
    const char *wait = proto_props_get(&msgs[0]->props, PROP_WAIT);
    proto_props_set(&props, PROP_WAIT, wait ? wait : "true");
    cm_buf_t pb = CM_BUF_INIT;
    proto_props_encode(&props, &pb);
    proto_props_free(&props);
    cm_buf_put8(&pb, 0);
    cm_buf_append_str(&pb, msgs[0]->topic);
    cm_buf_put8(&pb, 0);
    o->block = o->props = (char *)pb.data; /* then the topic */
    o->topic = o->props + strlen(o->props) + 1;
    o->body = o->body_own = body.data;
    o->body_len = body.len;
    o->batch = true;
    return RMQ_OK;
}

/* ================================================================ one attempt */

/* Where an attempt goes: a copy of the chosen queue, valid after the route changes. */
typedef struct target {
    char broker[RMQ_BROKER_NAME_SIZE];
    int32_t queue_id;
} target_t;

/* The request for o to t, without its body (o->body: lent to lib/net, or copied by
 * build_request). */
static void build_header(const rmq_producer_t *p, const outgoing_t *o, const target_t *t,
                         proto_cmd_t *cmd) {
    int32_t code = o->batch ? PROTO_SEND_BATCH_MESSAGE : PROTO_SEND_MESSAGE_V2;
    proto_cmd_request(cmd, code, 0);
    proto_send_req_t h;
    proto_send_req_init(&h);
    h.producer_group = p->group;
    h.topic = o->topic;
    h.default_topic = p->create_topic_key;
    h.default_topic_queue_nums = p->default_queues;
    h.queue_id = t->queue_id;
    h.sys_flag = o->sys_flag;
    h.born_timestamp = cm_now_ms();
    h.flag = o->flag;
    h.properties = o->props;
    h.batch = o->batch;
    h.broker_name = t->broker;
    proto_send_req_encode(&h, code, &cmd->ext);
}

static void build_request(const rmq_producer_t *p, const outgoing_t *o, const target_t *t,
                          proto_cmd_t *cmd) {
    build_header(p, o, t, cmd);
    proto_cmd_set_body(cmd, o->body, o->body_len);
}

/* Broker codes after which Java tries again (on another broker). */
static bool retryable(rmq_err_t err) {
    switch ((int)err) {
    case RMQ_ERR_NETWORK:
    case RMQ_ERR_TIMEOUT:
    case RMQ_ERR_BUSY:
    case RMQ_ERR_NO_ROUTE:
    case RMQ_ERR_TOPIC_NOT_EXIST:
    case RMQ_ERR_SERVICE_NOT_AVAILABLE:
    case RMQ_ERR_SYSTEM_ERROR:
    case RMQ_ERR_NO_PERMISSION:
    case RMQ_ERR_NO_BUYER_ID:
    case RMQ_ERR_NOT_IN_CURRENT_UNIT:
        return true;
    default:
        return false;
    }
}

static void note_latency(rmq_producer_t *p, const char *broker, int64_t t0, bool failed) {
    if (!p->fault_enable) return;
    int64_t now = cm_mono_ms();
    client_faults_update(client_instance_faults(p->ci), broker,
                         failed ? CLIENT_FAILED_LATENCY : now - t0, now);
}

/* Reads a send response into r. RMQ_OK (status in r) or the broker's error code. */
static rmq_err_t read_response(const outgoing_t *o, const target_t *t, proto_cmd_t *resp,
                               rmq_send_result_t *r) {
    memset(r, 0, sizeof *r);
    switch (resp->code) {
    case 0:
        r->status = RMQ_SEND_OK;
        break;
    case RMQ_ERR_FLUSH_DISK_TIMEOUT:
        r->status = RMQ_SEND_FLUSH_DISK_TIMEOUT;
        break;
    case RMQ_ERR_FLUSH_SLAVE_TIMEOUT:
        r->status = RMQ_SEND_FLUSH_SLAVE_TIMEOUT;
        break;
    case RMQ_ERR_SLAVE_NOT_AVAILABLE:
        r->status = RMQ_SEND_SLAVE_NOT_AVAILABLE;
        break;
    default:
        return fail((rmq_err_t)resp->code, resp->remark);
    }
    proto_send_resp_t h;
    proto_hdr_err_t herr;
    if (proto_send_resp_decode(&resp->ext, &h, &herr) != RMQ_OK)
        return fail(RMQ_ERR_MALFORMED, "the broker's send response lacks a field");
    cm_strcpy_cut(r->msg_id, sizeof r->msg_id, o->uniq);
    /* A batch answers comma-joined offset ids: the first is the first message's. */
    size_t cut = strcspn(h.msg_id ? h.msg_id : "", ",") + 1;
    cm_strcpy_cut(r->offset_msg_id, cut < sizeof r->offset_msg_id ? cut : sizeof r->offset_msg_id,
                  h.msg_id);
    r->queue_id = h.queue_id;
    r->queue_offset = h.queue_offset;
    cm_strcpy_cut(r->broker_name, sizeof r->broker_name, t->broker);
    cm_strcpy_cut(r->transaction_id, sizeof r->transaction_id, h.transaction_id);
    return RMQ_OK;
}

static rmq_err_t pick(rmq_producer_t *p, client_pub_t *pub, const char *avoid, target_t *t) {
    client_faults_t *faults = p->fault_enable ? client_instance_faults(p->ci) : NULL;
    const client_queue_t *q = client_pub_select(pub, avoid, faults, cm_mono_ms());
    if (!q) return fail(RMQ_ERR_NO_ROUTE, "the topic has no writable queue");
    cm_strcpy_cut(t->broker, sizeof t->broker, q->broker_name);
    t->queue_id = q->queue_id;
    return RMQ_OK;
}

static net_conn_t *conn_for(rmq_producer_t *p, client_pub_t *pub, const target_t *t,
                            rmq_err_t *err) {
    const char *addr = client_pub_master(pub, t->broker);
    if (!addr) {
        *err = fail(RMQ_ERR_NO_ROUTE, "the chosen broker has no master");
        return NULL;
    }
    net_conn_t *c = client_instance_conn(p->ci, addr, err);
    if (!c) fail(*err, NULL);
    return c;
}

/* One synchronous attempt. *resp_out keeps the response for batch id filling (may be NULL). */
static rmq_err_t attempt_sync(rmq_producer_t *p, const outgoing_t *o, client_pub_t *pub,
                              const target_t *t, int64_t timeout_ms, rmq_send_result_t *r,
                              char **offset_ids) {
    rmq_err_t err;
    net_conn_t *c = conn_for(p, pub, t, &err);
    if (!c) return err;
    proto_cmd_t cmd, resp;
    build_header(p, o, t, &cmd);
    int64_t t0 = cm_mono_ms();
    err = net_conn_request_sync_lent(c, &cmd, o->body, o->body_len, timeout_ms, &resp);
    net_conn_unref(c);
    note_latency(p, t->broker, t0, err != RMQ_OK);
    if (err) return fail(err, NULL);
    err = read_response(o, t, &resp, r);
    if (err == RMQ_OK && offset_ids) *offset_ids = cm_strdup(proto_ext_get(&resp.ext, "msgId"));
    proto_cmd_free(&resp);
    return err;
}

/* ================================================================ sync sends */

static rmq_err_t check_running(rmq_producer_t *p) {
    int state = atomic_load(&p->state);
    if (state == STATE_NEW) return fail(RMQ_ERR_NOT_STARTED, "the producer is not started");
    if (state == STATE_STOPPING) return fail(RMQ_ERR_SHUTDOWN, "the producer is shutting down");
    return RMQ_OK;
}

static rmq_err_t get_pub(rmq_producer_t *p, const char *topic, int64_t timeout_ms,
                         client_pub_t **pub) {
    rmq_err_t err =
        client_instance_pub(p->ci, topic, p->create_topic_key, p->default_queues, timeout_ms, pub);
    if (err == RMQ_ERR_NO_ROUTE) {
        char why[300];
        snprintf(why, sizeof why, "no route for topic %s", topic);
        return fail(err, why);
    }
    return err ? fail(err, NULL) : RMQ_OK;
}

/* Up to 1 + retries attempts within sendMsgTimeout, each on another broker than the last
 * failed one where possible. A message stored with a non-OK status is returned as it is
 * unless retryAnotherBrokerWhenNotStoreOK asks for another attempt. */
static rmq_err_t send_with_retries(rmq_producer_t *p, const outgoing_t *o, int retries,
                                   rmq_send_result_t *r, char **offset_ids) {
    int64_t deadline = cm_mono_ms() + p->send_timeout_ms;
    client_pub_t *pub = NULL;
    char avoid[RMQ_BROKER_NAME_SIZE] = "";
    bool stored = false; /* r holds a stored (non-OK status) answer */
    rmq_err_t err = get_pub(p, o->topic, p->send_timeout_ms, &pub);
    for (int attempt = 0; err == RMQ_OK || retryable(err); attempt++) {
        int64_t left = deadline - cm_mono_ms();
        if (attempt > retries || left <= 0) {
            if (left <= 0 && !stored) err = fail(RMQ_ERR_TIMEOUT, "sendMsgTimeout ran out");
            break;
        }
        if (!pub && (err = get_pub(p, o->topic, left, &pub)) != RMQ_OK) break;
        target_t t;
        rmq_send_result_t attempt_r;
        if ((err = pick(p, pub, *avoid ? avoid : NULL, &t)) != RMQ_OK) break;
        if (offset_ids) cm_free(*offset_ids), *offset_ids = NULL;
        err = attempt_sync(p, o, pub, &t, left, &attempt_r, offset_ids);
        if (err == RMQ_OK) {
            *r = attempt_r;
            stored = true;
            if (r->status == RMQ_SEND_OK || !p->retry_not_ok) break;
        } else if (err == RMQ_ERR_TOPIC_NOT_EXIST) {
            client_instance_route_stale(p->ci, o->topic);
            client_pub_unref(pub);
            pub = NULL;
        }
        snprintf(avoid, sizeof avoid, "%s", t.broker);
    }
    client_pub_unref(pub);
    /* A later failed attempt does not undo an earlier stored one. */
    return stored ? RMQ_OK : err;
}

/* After a sync send: the message answers its ids and position. */
static void fill_msg(rmq_msg_t *msg, const rmq_send_result_t *r, const char *offset_id,
                     int64_t queue_offset) {
    proto_msg_free_text(msg, msg->offset_id);
    msg->offset_id = cm_strdup(offset_id);
    proto_msg_free_text(msg, msg->broker_name);
    msg->broker_name = cm_strdup(r->broker_name);
    msg->queue_id = r->queue_id;
    msg->queue_offset = queue_offset;
    proto_addr_t host;
    int64_t off;
    if (proto_offset_id_parse(offset_id, &host, &off) == RMQ_OK) {
        msg->commitlog_offset = off;
        msg->store_host = host;
    }
}

/* One sync send with retries; on success msg carries the broker's ids and offsets. Shared by
 * rmq_producer_send and the half message of rmq_producer_send_tx. */
static rmq_err_t send_sync(rmq_producer_t *p, rmq_msg_t *msg, rmq_send_result_t *r) {
    outgoing_t o;
    rmq_err_t err = prepare(p, msg, &o, 0);
    if (err) return err;
    err = send_with_retries(p, &o, p->retries_sync, r, NULL);
    outgoing_free(&o);
    if (err) return err;
    fill_msg(msg, r, r->offset_msg_id, r->queue_offset);
    return RMQ_OK;
}

rmq_err_t rmq_producer_send(rmq_producer_t *p, rmq_msg_t *msg, rmq_send_result_t *result) {
    if (!p || !msg) return fail(RMQ_ERR_INVALID_ARG, "NULL producer or message");
    rmq_err_t err = check_running(p);
    if (err) return err;
    rmq_send_result_t r;
    if ((err = send_sync(p, msg, &r)) != RMQ_OK) return err;
    if (result) *result = r;
    last_remark[0] = '\0';
    return RMQ_OK;
}

rmq_err_t rmq_producer_send_orderly(rmq_producer_t *p, rmq_msg_t *msg,
                                    rmq_queue_selector_t *selector, void *arg,
                                    rmq_send_result_t *result) {
    if (!p || !msg) return fail(RMQ_ERR_INVALID_ARG, "NULL producer or message");
    rmq_err_t err = check_running(p);
    if (err) return err;
    const char *key = proto_props_get(&msg->props, PROP_SHARDING_KEY);
    if (!selector && !key)
        return fail(RMQ_ERR_INVALID_ARG, "no selector and no sharding key on the message");
    outgoing_t o;
    if ((err = prepare(p, msg, &o, 0)) != RMQ_OK) return err;
    int64_t deadline = cm_mono_ms() + p->send_timeout_ms;
    client_pub_t *pub = NULL;
    if ((err = get_pub(p, o.topic, p->send_timeout_ms, &pub)) != RMQ_OK) goto out;
    int n = (int)pub->count;
    int idx = selector ? selector(n, msg, arg) : client_hash_index(key, n);
    if (idx < 0 || idx >= n) {
        err = fail(RMQ_ERR_INVALID_ARG, "the selector chose a queue out of range");
        goto out;
    }
    target_t t;
    snprintf(t.broker, sizeof t.broker, "%s", pub->queues[idx].broker_name);
    t.queue_id = pub->queues[idx].queue_id;
    int64_t left = deadline - cm_mono_ms();
    rmq_send_result_t r;
    err = left > 0 ? attempt_sync(p, &o, pub, &t, left, &r, NULL)
                   : fail(RMQ_ERR_TIMEOUT, "sendMsgTimeout ran out");
    if (err == RMQ_ERR_TOPIC_NOT_EXIST) client_instance_route_stale(p->ci, o.topic);
    if (err == RMQ_OK) {
        fill_msg(msg, &r, r.offset_msg_id, r.queue_offset);
        if (result) *result = r;
        last_remark[0] = '\0';
    }
out:
    client_pub_unref(pub);
    outgoing_free(&o);
    return err;
}

rmq_err_t rmq_producer_send_batch(rmq_producer_t *p, rmq_msg_t *const *msgs, size_t count,
                                  rmq_send_result_t *result) {
    if (!p || !msgs || count == 0) return fail(RMQ_ERR_INVALID_ARG, "NULL or empty batch");
    for (size_t i = 0; i < count; i++)
        if (!msgs[i]) return fail(RMQ_ERR_INVALID_ARG, "NULL message in the batch");
    rmq_err_t err = check_running(p);
    if (err) return err;
    outgoing_t o;
    if ((err = prepare_batch(p, msgs, count, &o)) != RMQ_OK) return err;
    rmq_send_result_t r;
    char *ids = NULL;
    err = send_with_retries(p, &o, p->retries_sync, &r, &ids);
    outgoing_free(&o);
    if (err == RMQ_OK) {
        /* Each message: its own offset id (comma-joined in order), consecutive offsets. */
        const char *next = ids ? ids : "";
        for (size_t i = 0; i < count; i++) {
            size_t len = strcspn(next, ",");
            char *one = cm_strndup(next, len);
            fill_msg(msgs[i], &r, one, r.queue_offset + (int64_t)i);
            cm_free(one);
            next += len + (next[len] == ',');
        }
        snprintf(r.msg_id, sizeof r.msg_id, "%s", rmq_msg_id(msgs[0]));
        if (result) *result = r;
        last_remark[0] = '\0';
    }
    cm_free(ids);
    return err;
}

rmq_err_t rmq_producer_send_oneway(rmq_producer_t *p, rmq_msg_t *msg) {
    if (!p || !msg) return fail(RMQ_ERR_INVALID_ARG, "NULL producer or message");
    rmq_err_t err = check_running(p);
    if (err) return err;
    outgoing_t o;
    if ((err = prepare(p, msg, &o, 0)) != RMQ_OK) return err;
    client_pub_t *pub = NULL;
    target_t t;
    net_conn_t *c = NULL;
    if ((err = get_pub(p, o.topic, p->send_timeout_ms, &pub)) == RMQ_OK &&
        (err = pick(p, pub, NULL, &t)) == RMQ_OK && (c = conn_for(p, pub, &t, &err))) {
        proto_cmd_t cmd;
        build_request(p, &o, &t, &cmd);
        err = net_conn_oneway(c, &cmd);
        if (err) fail(err, NULL);
        net_conn_unref(c);
    }
    client_pub_unref(pub);
    outgoing_free(&o);
    return err;
}

/* ================================================================ async sends */

typedef struct async_send {
    rmq_producer_t *p;
    outgoing_t o;
    client_pub_t *pub; /* NULL after TOPIC_NOT_EXIST: looked up again */
    target_t t;
    char avoid[RMQ_BROKER_NAME_SIZE];
    int attempts_left;
    int64_t deadline, t0;
    rmq_err_t err; /* the last attempt's outcome */
    proto_cmd_t resp;
    rmq_send_cb_t *cb;
    void *opaque;
    client_job_t job; /* its turn on the pool: one at a time */
} async_send_t;

/* An async send and its outgoing message are one allocation (prepare's head). */
static void async_free(async_send_t *a) {
    uint8_t *body_own = a->o.body_own;
    cm_free(a);
    cm_free(body_own);
}

static void async_dispatch(async_send_t *a);

/* An async send is over. The last one wakes destroy; the broadcast happens under mu, so
 * a destroy between its check and its wait cannot miss it. */
static void inflight_done(rmq_producer_t *p) {
    if (atomic_fetch_sub(&p->inflight, 1) != 1) return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
}

/* Pool thread: the user's callback, then the send is over. */
static void async_complete(async_send_t *a, const rmq_send_result_t *r) {
    rmq_producer_t *p = a->p;
    a->cb(a->err, r, a->opaque);
    client_pub_unref(a->pub);
    proto_cmd_free(&a->resp);
    async_free(a);
    inflight_done(p);
}

static void async_fail_job(void *arg) {
    async_complete(arg, NULL);
}

/* Ends the send with a->err on a pool thread (posting there if this is not one). */
static void async_fail(async_send_t *a) {
    client_pool_t *pool = client_instance_pool(a->p->ci);
    if (client_pool_on_thread(pool) ||
        client_pool_post_job(pool, &a->job, async_fail_job, a) != RMQ_OK)
        async_complete(a, NULL);
}

static bool async_stopping(const async_send_t *a) {
    return atomic_load(&a->p->state) == STATE_STOPPING;
}

/* Pool thread: the response (or the transport's error) of one attempt. */
static void async_on_pool(void *arg) {
    async_send_t *a = arg;
    rmq_producer_t *p = a->p;
    note_latency(p, a->t.broker, a->t0, a->err != RMQ_OK);
    rmq_send_result_t r;
    if (a->err == RMQ_OK) a->err = read_response(&a->o, &a->t, &a->resp, &r);
    proto_cmd_free(&a->resp);
    if (a->err == RMQ_OK) { /* stored, whatever the status: Java's async path keeps it */
        async_complete(a, &r);
        return;
    }
    if (a->err == RMQ_ERR_TOPIC_NOT_EXIST) {
        client_instance_route_stale(p->ci, a->o.topic);
        client_pub_unref(a->pub);
        a->pub = NULL;
    }
    if (retryable(a->err)) {
        snprintf(a->avoid, sizeof a->avoid, "%s", a->t.broker);
        async_dispatch(a);
        return;
    }
    async_fail(a);
}

/* Loop thread: hand the outcome to the pool, nothing else. */
static void async_on_response(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    async_send_t *a = arg;
    a->err = err;
    if (resp) {
        a->resp = *resp;
        proto_cmd_init(resp);
    }
    /* The pool outlives every send in flight (destroy waits for them), so posting works;
     * should it not, running here is still better than losing the callback. */
    if (client_pool_post_job(client_instance_pool(a->p->ci), &a->job, async_on_pool, a) != RMQ_OK)
        async_on_pool(a);
}

/* Starts the next attempt, or ends the send when none is left. Any thread but the loop's. */
static void async_dispatch(async_send_t *a) {
    rmq_producer_t *p = a->p;
    for (;;) {
        if (a->attempts_left == 0) break;
        if (async_stopping(a) && a->err != RMQ_OK) {
            a->err = RMQ_ERR_SHUTDOWN; /* a retry after destroy began */
            break;
        }
        int64_t now = cm_mono_ms(), left = a->deadline - now;
        if (left <= 0) {
            a->err = RMQ_ERR_TIMEOUT;
            break;
        }
        a->attempts_left--;
        if (!a->pub && (a->err = get_pub(p, a->o.topic, left, &a->pub)) != RMQ_OK) {
            if (!retryable(a->err)) break;
            continue;
        }
        if ((a->err = pick(p, a->pub, *a->avoid ? a->avoid : NULL, &a->t)) != RMQ_OK) break;
        net_conn_t *c = conn_for(p, a->pub, &a->t, &a->err);
        if (c) {
            proto_cmd_t cmd;
            build_header(p, &a->o, &a->t, &cmd);
            a->t0 = now; /* the attempt's start, in ms: what came since took microseconds */
            /* Once accepted, a belongs to async_on_response (it may be freed already), but
             * the body is read before the call returns. */
            rmq_err_t sent = net_conn_request_lent(c, &cmd, a->o.body, a->o.body_len, left,
                                                   async_on_response, a);
            net_conn_unref(c);
            if (sent == RMQ_OK) return;
            a->err = sent;
        }
        note_latency(p, a->t.broker, cm_mono_ms(), true);
        if (!retryable(a->err)) break;
        snprintf(a->avoid, sizeof a->avoid, "%s", a->t.broker);
    }
    async_fail(a);
}

rmq_err_t rmq_producer_send_async(rmq_producer_t *p, rmq_msg_t *msg, rmq_send_cb_t *cb,
                                  void *opaque) {
    if (!p || !msg || !cb) return fail(RMQ_ERR_INVALID_ARG, "NULL producer, message or callback");
    rmq_err_t err = check_running(p);
    outgoing_t o;
    if (!err) err = prepare(p, msg, &o, sizeof(async_send_t));
    if (err) return err;
    async_send_t *a = o.block;
    memset(a, 0, sizeof *a);
    a->o = o;
    err = get_pub(p, a->o.topic, p->send_timeout_ms, &a->pub);
    if (!err) {
        /* Counted in first, then the state checked: destroy sets the state first, then
         * waits for the count (both seq_cst), so either this sees STOPPING or destroy
         * waits for this send. */
        atomic_fetch_add(&p->inflight, 1);
        if (atomic_load(&p->state) == STATE_STOPPING) {
            inflight_done(p);
            err = fail(RMQ_ERR_SHUTDOWN, NULL);
        }
    }
    if (err) {
        client_pub_unref(a->pub);
        async_free(a);
        return err;
    }
    a->p = p;
    a->cb = cb;
    a->opaque = opaque;
    a->attempts_left = 1 + p->retries_async;
    a->deadline = cm_mono_ms() + p->send_timeout_ms;
    proto_cmd_init(&a->resp);
    async_dispatch(a);
    return RMQ_OK;
}

/* ================================================================ transactions */

static int32_t end_type(rmq_tx_state_t state) {
    return state == RMQ_TX_COMMIT     ? PROTO_TX_COMMIT
           : state == RMQ_TX_ROLLBACK ? PROTO_TX_ROLLBACK
                                      : PROTO_TX_UNKNOWN;
}

/* END_TRANSACTION (37) oneway over conn. */
static rmq_err_t send_end(net_conn_t *conn, const proto_end_tx_req_t *h) {
    proto_cmd_t cmd;
    proto_cmd_request(&cmd, PROTO_END_TRANSACTION, 0);
    proto_end_tx_req_encode(h, &cmd.ext);
    return net_conn_oneway(conn, &cmd);
}

/* DefaultMQProducerImpl.endTransaction: to the master of the broker that stored the half,
 * with the half's commit-log offset (from its offset id) and queue offset. */
static void end_transaction(rmq_producer_t *p, const rmq_send_result_t *r, rmq_tx_state_t state) {
    proto_addr_t host;
    int64_t phys = 0;
    rmq_err_t err = proto_offset_id_parse(r->offset_msg_id, &host, &phys);
    char *addr = err ? NULL : client_instance_master(p->ci, r->broker_name);
    net_conn_t *conn = addr ? client_instance_conn(p->ci, addr, &err) : NULL;
    if (conn) {
        proto_end_tx_req_t h;
        proto_end_tx_req_init(&h);
        h.producer_group = p->group;
        h.tran_state_table_offset = r->queue_offset;
        h.commit_log_offset = phys;
        h.commit_or_rollback = end_type(state);
        h.from_transaction_check = false;
        h.msg_id = r->msg_id;
        h.transaction_id = *r->transaction_id ? r->transaction_id : NULL;
        err = send_end(conn, &h);
        net_conn_unref(conn);
    } else if (!err) {
        err = RMQ_ERR_NO_ROUTE;
    }
    if (err)
        cm_warn(&p->log,
                "producer %s: END_TRANSACTION for %s not sent (%s); the broker's check "
                "will ask",
                p->group, r->msg_id, rmq_err_name(err));
    cm_free(addr);
}

rmq_err_t rmq_producer_send_tx(rmq_producer_t *p, rmq_msg_t *msg, rmq_tx_local_cb_t *local,
                               void *arg, rmq_send_result_t *result) {
    if (!p || !msg || !local)
        return fail(RMQ_ERR_INVALID_ARG, "NULL producer, message or local transaction");
    rmq_err_t err = check_running(p);
    if (err) return err;
    /* sendMessageInTransaction: no delay, and the marks the broker parks the half by. */
    proto_props_set(&msg->props, PROP_DELAY, NULL);
    proto_props_set(&msg->props, PROP_TRAN_MSG, "true");
    proto_props_set(&msg->props, PROP_PGROUP, p->group);
    rmq_send_result_t r;
    if ((err = send_sync(p, msg, &r)) != RMQ_OK) return err;
    if (*r.transaction_id) proto_props_set(&msg->props, PROP_TRANSACTION_ID, r.transaction_id);
    rmq_tx_state_t state = RMQ_TX_ROLLBACK; /* a half not stored OK is rolled back */
    if (r.status == RMQ_SEND_OK) state = local(msg, arg);
    if (state != RMQ_TX_COMMIT && state != RMQ_TX_ROLLBACK) state = RMQ_TX_UNKNOWN;
    end_transaction(p, &r, state);
    cm_strcpy_cut(r.transaction_id, sizeof r.transaction_id, r.msg_id);
    r.tx_state = state;
    if (result) *result = r;
    last_remark[0] = '\0';
    return RMQ_OK;
}

/* A CHECK_TRANSACTION_STATE taken off the loop thread. */
typedef struct tx_check_job {
    rmq_producer_t *p;
    net_conn_t *conn; /* the broker that asked (a reference) */
    proto_cmd_t req;
} tx_check_job_t;

/* Pool thread: ask the application, answer END_TRANSACTION marked as from a check, with the
 * check's offsets (DefaultMQProducerImpl.checkTransactionState). */
static void tx_check_run(void *arg) {
    tx_check_job_t *job = arg;
    rmq_producer_t *p = job->p;
    proto_check_tx_req_t h;
    proto_record_t rec;
    rmq_msg_t *msg = NULL;
    if (proto_check_tx_req_decode(&job->req.ext, &h, NULL) == RMQ_OK &&
        proto_record_decode(job->req.body, job->req.body_len, false, &rec) == RMQ_OK &&
        proto_msg_from_record(&rec, CLIENT_MAX_PULLED_BODY, &msg) == RMQ_OK) {
        rmq_tx_state_t state = p->tx_check(msg, p->tx_check_opaque);
        if (state != RMQ_TX_COMMIT && state != RMQ_TX_ROLLBACK) state = RMQ_TX_UNKNOWN;
        const char *uniq = proto_props_get(&msg->props, PROP_UNIQ_KEY);
        proto_end_tx_req_t e;
        proto_end_tx_req_init(&e);
        e.producer_group = p->group;
        e.tran_state_table_offset = h.tran_state_table_offset;
        e.commit_log_offset = h.commit_log_offset;
        e.commit_or_rollback = end_type(state);
        e.from_transaction_check = true;
        e.msg_id = uniq ? uniq : msg->offset_id;
        e.transaction_id = h.transaction_id;
        rmq_err_t err = send_end(job->conn, &e);
        if (err)
            cm_warn(&p->log, "producer %s: answer to a transaction check not sent (%s)", p->group,
                    rmq_err_name(err));
    } else {
        cm_warn(&p->log, "producer %s: a transaction check that does not decode, ignored",
                p->group);
    }
    rmq_msg_destroy(msg);
    net_conn_unref(job->conn);
    proto_cmd_free(&job->req);
    cm_free(job);
    inflight_done(p);
}

/* Loop thread, instance lock held: counts the check in (destroy waits for it) and hands it
 * to the callback pool; the user's callback never runs on the I/O thread. */
static void on_tx_check(void *opaque, net_conn_t *conn, proto_cmd_t *req) {
    rmq_producer_t *p = opaque;
    if (!p->tx_check) {
        cm_warn(&p->log,
                "producer %s: a transaction check arrived, but no check callback is set "
                "(rmq_conf_set_tx_check_cb)",
                p->group);
        return;
    }
    atomic_fetch_add(&p->inflight, 1); /* then the state: as rmq_producer_send_async */
    if (atomic_load(&p->state) == STATE_STOPPING) {
        inflight_done(p);
        return;
    }
    tx_check_job_t *job = cm_calloc(1, sizeof *job);
    job->p = p;
    job->conn = net_conn_ref(conn);
    job->req = *req;
    proto_cmd_init(req);
    if (client_pool_post(client_instance_pool(p->ci), tx_check_run, job) != RMQ_OK) {
        net_conn_unref(job->conn);
        proto_cmd_free(&job->req);
        cm_free(job);
        inflight_done(p);
    }
}

/* ================================================================ life cycle */

/* Validators.checkGroup: at most 255 characters of [%|a-zA-Z0-9_-]. A NULL group counts as
 * not set: the check says so itself rather than trusting every caller to pass a string. */
static bool group_ok(const char *g, char *errstr, size_t size) {
    static const char legal[] =
        "%|_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if (!g || !*g) {
        cm_errstr(errstr, size, "producerGroup is not set");
        return false;
    }
    size_t len = strlen(g);
    if (len > 255 || strspn(g, legal) != len) {
        cm_errstr(errstr, size, "producerGroup \"%s\" is not a legal group name", g);
        return false;
    }
    return true;
}

static bool compress_type_ok(int type, char *errstr, size_t size) {
    cm_buf_t z = CM_BUF_INIT;
    rmq_err_t err = proto_compress(type, 1, "probe", 5, &z);
    cm_buf_free(&z);
    if (err) cm_errstr(errstr, size, "compressType ZSTD: this librmq is built without zstd");
    return err == RMQ_OK;
}

rmq_producer_t *rmq_producer_new(rmq_conf_t *conf, char *errstr, size_t errstr_size) {
    if (!conf) {
        cm_errstr(errstr, errstr_size, "no configuration");
        return NULL;
    }
    const char *group = cm_conf_str(conf, "producerGroup", false);
    if (!group_ok(group, errstr, errstr_size)) return NULL;
    const char *ns = cm_conf_str(conf, "namesrvAddr", false), *env = getenv("NAMESRV_ADDR");
    if (!*ns && (!env || !*env)) {
        cm_errstr(errstr, errstr_size, "no name server: set namesrvAddr or NAMESRV_ADDR");
        return NULL;
    }
    int type = strcmp(cm_conf_str(conf, "compressType", false), "ZSTD") == 0
                   ? SYSFLAG_COMPRESS_ZSTD
                   : SYSFLAG_COMPRESS_ZLIB;
    if (!compress_type_ok(type, errstr, errstr_size)) return NULL;
    rmq_producer_t *p = cm_calloc(1, sizeof *p);
    p->conf = conf;
    p->group = group;
    p->create_topic_key = cm_conf_str(conf, "createTopicKey", false);
    p->log = cm_conf_logger(conf);
    p->send_timeout_ms = cm_conf_int(conf, "sendMsgTimeout", false);
    p->max_size = cm_conf_int(conf, "maxMessageSize", false);
    p->compress_over = cm_conf_int(conf, "compressMsgBodyOverHowmuch", false);
    p->retries_sync = (int)cm_conf_int(conf, "retryTimesWhenSendFailed", false);
    p->retries_async = (int)cm_conf_int(conf, "retryTimesWhenSendAsyncFailed", false);
    p->default_queues = (int)cm_conf_int(conf, "defaultTopicQueueNums", false);
    p->compress_type = type;
    p->compress_level = (int)cm_conf_int(conf, "compressLevel", false);
    p->retry_not_ok = cm_conf_bool(conf, "retryAnotherBrokerWhenNotStoreOK", false);
    p->fault_enable = cm_conf_bool(conf, "sendLatencyFaultEnable", false);
    void (*check)(void);
    cm_conf_tx_check(conf, &check, &p->tx_check_opaque);
    p->tx_check = (rmq_tx_check_cb_t *)check;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->state, STATE_NEW);
    atomic_init(&p->inflight, 0);
    return p;
}

/* A producer answering transaction checks must be known to the brokers before it sends
 * anything (it may only be there to resolve another process's transactions): the route of
 * createTopicKey names them, so the heartbeat reaches them, as Java's producer starts with
 * that topic in its publish table. Failing that, the first send announces the group. */
static void learn_brokers(rmq_producer_t *p) {
    client_pub_t *pub = NULL;
    rmq_err_t err = client_instance_pub(p->ci, p->create_topic_key, p->create_topic_key,
                                        p->default_queues, p->send_timeout_ms, &pub);
    if (err)
        cm_info(&p->log,
                "producer %s: no route for %s (%s); brokers learn the group at the "
                "first send",
                p->group, p->create_topic_key, rmq_err_name(err));
    client_pub_unref(pub);
}

rmq_err_t rmq_producer_start(rmq_producer_t *p, char *errstr, size_t errstr_size) {
    if (!p) return RMQ_ERR_INVALID_ARG;
    if (p->ci) {
        cm_errstr(errstr, errstr_size, "producer %s is already started", p->group);
        return RMQ_ERR_STATE;
    }
    client_instance_t *ci = client_instance_get(p->conf, errstr, errstr_size);
    if (!ci) return RMQ_ERR_IO;
    p->ci = ci; /* before the group is registered: a transaction check reads it */
    if (client_instance_register_producer(ci, p->group, on_tx_check, p) != RMQ_OK) {
        cm_errstr(errstr, errstr_size, "producer group %s is already started on client instance %s",
                  p->group, client_instance_id(ci));
        p->ci = NULL;
        client_instance_release(ci);
        return RMQ_ERR_STATE;
    }
    if (p->tx_check) learn_brokers(p);
    client_instance_heartbeat(ci);
    atomic_store(&p->state, STATE_STARTED);
    cm_info(&p->log, "producer %s started on client %s", p->group, client_instance_id(ci));
    return RMQ_OK;
}

void rmq_producer_destroy(rmq_producer_t *p) {
    if (!p) return;
    atomic_store(&p->state, STATE_STOPPING);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->inflight) > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (p->ci) {
        client_instance_unregister_producer(p->ci, p->group);
        client_instance_release(p->ci);
    }
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    rmq_conf_destroy(p->conf);
    cm_free(p);
}
