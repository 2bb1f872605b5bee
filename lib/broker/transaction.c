/* lib/broker/transaction.c: transactional messages, broker side (store.md §8) — RocketMQ
 * 4.9's TransactionalMessageServiceImpl, EndTransactionProcessor and
 * TransactionalMessageCheckService.
 *
 * A send with TRAN_MSG=true is parked on RMQ_SYS_TRANS_HALF_TOPIC queue 0 (send.c calls
 * broker_tx_park_half). END_TRANSACTION (37) commits it (a copy on REAL_TOPIC / REAL_QID
 * with the COMMIT type, then an op record) or rolls it back (the op record only). An op
 * record on RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0 has tag "d" and the half's queue offset as
 * decimal text for its body, as 4.9 writes them.
 *
 * The check thread wakes every transactionCheckInterval and walks the half queue from the
 * consume offset of the internal group CID_RMQ_SYS_TRANS: a half without an op record, older
 * than transactionTimeOut, is re-appended with TRANSACTION_CHECK_TIMES + 1 and its producer
 * group is asked with CHECK_TRANSACTION_STATE (39, oneway); after transactionCheckMax checks
 * it is dropped onto TRANS_CHECK_MAX_TIME_TOPIC. Both consume offsets live in
 * consumerOffset.json, so all state comes from the two topics and survives a restart.
 *
 * Exactly once. A re-appended copy carries TRAN_PREPARED_QUEUE_OFFSET = the queue offset of
 * the first half (its origin), and so does every op record (an extra property a Java broker
 * ignores). An END for a copy whose origin is already resolved writes its op record but no
 * second committed copy, and the check thread skips copies of resolved origins: an END that
 * arrives late, after the half was re-appended for a check, cannot deliver twice. */
#include "broker/broker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/net.h"

#define TX_GROUP "CID_RMQ_SYS_TRANS"
#define TX_REMOVE_TAG "d"
#define PERM_RW (PROTO_PERM_READ | PROTO_PERM_WRITE)
#define OP_BATCH 32 /* op records read per store call */

struct broker_tx {
    broker_t *b;
    int64_t interval_ms, timeout_ms;
    int32_t check_max;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool running, stop;
    int64_t ops_read_to; /* op records before this were read by an earlier pass (thread only) */
    /* Origins (first half queue offsets, decimal) resolved by an END, each with the highest
     * copy offset seen for it (int64_t *): dropped once the half offset passes it. */
    cm_map_t *resolved;
};

/* ---------------------------------------------------------------- helpers */

/* text as Java's parseLong reads it, else fallback. */
static int64_t parse_i64(const char *text, size_t len, int64_t fallback) {
    int64_t v;
    return text && proto_parse_long(text, len, &v) ? v : fallback;
}

static int64_t prop_i64(const proto_record_t *rec, const char *name, int64_t fallback) {
    const char *v;
    size_t len;
    if (!proto_props_find(rec->props, (size_t)rec->props_len, name, &v, &len)) return fallback;
    return parse_i64(v, len, fallback);
}

/* The queue offset of the first half of rec's transaction (rec itself unless re-appended). */
static int64_t origin_of(const proto_record_t *rec) {
    return prop_i64(rec, PROP_TRAN_PREPARED_QUEUE_OFFSET, rec->queue_offset);
}

/* Whether origin is resolved; a known one learns copy_offset as one of its copies. */
static bool is_resolved(broker_tx_t *tx, int64_t origin, int64_t copy_offset) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)origin);
    pthread_mutex_lock(&tx->mu);
    int64_t *last = cm_map_get(tx->resolved, key);
    if (last && copy_offset > *last) *last = copy_offset;
    pthread_mutex_unlock(&tx->mu);
    return last != NULL;
}

/* Marks origin resolved with copy_offset among its copies. False when it already was: the
 * check and the mark are one step, so two ENDs for copies of one transaction on two send
 * threads cannot both commit. */
static bool claim(broker_tx_t *tx, int64_t origin, int64_t copy_offset) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)origin);
    pthread_mutex_lock(&tx->mu);
    int64_t *last = cm_map_get(tx->resolved, key);
    bool fresh = last == NULL;
    if (fresh) {
        last = cm_malloc(sizeof *last);
        *last = copy_offset;
        cm_map_put(tx->resolved, key, last);
    } else if (copy_offset > *last) {
        *last = copy_offset;
    }
    pthread_mutex_unlock(&tx->mu);
    return fresh;
}

/* Undoes a claim whose END could not be stored: the check-back will ask again. */
static void unclaim(broker_tx_t *tx, int64_t origin) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)origin);
    pthread_mutex_lock(&tx->mu);
    cm_free(cm_map_take(tx->resolved, key));
    pthread_mutex_unlock(&tx->mu);
}

/* Whether origin is still remembered (it has a copy at or above the half offset). */
static bool remembered(broker_tx_t *tx, int64_t origin) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)origin);
    pthread_mutex_lock(&tx->mu);
    bool known = cm_map_get(tx->resolved, key) != NULL;
    pthread_mutex_unlock(&tx->mu);
    return known;
}

/* Forgets origins whose every known copy lies below the half offset: nothing can name them
 * any more. */
static void prune_resolved(broker_tx_t *tx, int64_t half_offset) {
    pthread_mutex_lock(&tx->mu);
    proto_strlist_t drop = {0};
    size_t it = 0;
    const char *key;
    void *val;
    while (cm_map_next(tx->resolved, &it, &key, &val))
        if (*(int64_t *)val < half_offset) proto_strlist_add(&drop, key);
    for (size_t i = 0; i < drop.count; i++)
        cm_free(cm_map_take(tx->resolved, drop.items[i]));
    pthread_mutex_unlock(&tx->mu);
    proto_strlist_free(&drop);
}

/* A copy of in for topic / queue_id with sys_flag and properties props (a broker-made
 * record: stamped with this broker as store host). */
static rmq_err_t encode_copy(broker_t *b, const proto_record_t *in, const char *topic,
                             int32_t queue_id, int32_t sys_flag, int64_t prepared_offset,
                             const cm_buf_t *props, cm_buf_t *out) {
    proto_record_t rec = *in;
    rec.queue_id = queue_id;
    rec.sys_flag = sys_flag & ~SYSFLAG_STOREHOST_V6;
    if (b->store_host.ip_len == 16) rec.sys_flag |= SYSFLAG_STOREHOST_V6;
    rec.store_host = b->store_host;
    rec.queue_offset = 0;
    rec.physical_offset = 0;
    rec.store_timestamp = 0;
    rec.prepared_tx_offset = prepared_offset;
    rec.topic = topic;
    rec.topic_len = (int32_t)strlen(topic);
    rec.props = (const char *)props->data;
    rec.props_len = (int32_t)props->len;
    return proto_record_encode(&rec, out);
}

static rmq_err_t append(broker_t *b, const cm_buf_t *rec, store_put_result_t *res) {
    rmq_err_t rc = store_append(b->store, rec->data, rec->len, &b->store_host, false, res);
    return rc == RMQ_ERR_FLUSH_DISK_TIMEOUT ? RMQ_OK : rc;
}

/* Reads the record at queue offset off of topic queue 0 into buf / rec. */
static bool read_at(broker_t *b, const char *topic, int64_t off, cm_buf_t *buf, proto_record_t *rec,
                    int64_t *next) {
    store_get_result_t res = {0};
    store_get_messages(b->store, topic, 0, off, 1, 0, NULL, NULL, &res);
    *next = res.next_begin_offset > off ? res.next_begin_offset : off + 1;
    bool ok = res.status == STORE_FOUND &&
              proto_record_decode(res.records.data, res.records.len, false, rec) == RMQ_OK;
    if (ok) {
        cm_buf_free(buf);
        *buf = res.records; /* rec points into it */
    } else {
        cm_buf_free(&res.records);
    }
    return ok;
}

/* ---------------------------------------------------------------- half messages */

void broker_tx_park_half(broker_t *b, proto_record_t *rec) {
    broker_topics_ensure(b, BROKER_TX_HALF_TOPIC, 1, PERM_RW, 0);
    rec->topic = BROKER_TX_HALF_TOPIC;
    rec->topic_len = (int32_t)strlen(BROKER_TX_HALF_TOPIC);
    rec->queue_id = 0;
    rec->sys_flag &= ~SYSFLAG_TX_MASK; /* stored as a plain message, so it gets a queue slot */
}

/* An op record closing the half at half_offset (of the transaction begun at origin). */
static rmq_err_t put_op(broker_t *b, int64_t half_offset, int64_t origin) {
    broker_topics_ensure(b, BROKER_TX_OP_TOPIC, 1, PERM_RW, 0);
    char body[24], num[24];
    snprintf(body, sizeof body, "%lld", (long long)half_offset);
    snprintf(num, sizeof num, "%lld", (long long)origin);
    proto_props_t p = {0};
    proto_props_set(&p, PROP_TAGS, TX_REMOVE_TAG);
    proto_props_set(&p, PROP_WAIT, "false");
    proto_props_set(&p, PROP_TRAN_PREPARED_QUEUE_OFFSET, num);
    cm_buf_t props = CM_BUF_INIT, rec_buf = CM_BUF_INIT;
    broker_props_java_order(&p, p.count, &props);
    proto_props_free(&p);
    proto_record_t rec;
    memset(&rec, 0, sizeof rec);
    rec.magic = PROTO_MAGIC_V1;
    rec.born_timestamp = cm_now_ms();
    rec.born_host = b->store_host;
    if (b->store_host.ip_len == 16) rec.sys_flag |= SYSFLAG_BORNHOST_V6;
    rec.body = (const uint8_t *)body;
    rec.body_len = (int32_t)strlen(body);
    store_put_result_t res = {0};
    rmq_err_t rc = encode_copy(b, &rec, BROKER_TX_OP_TOPIC, 0, rec.sys_flag, 0, &props, &rec_buf);
    if (rc == RMQ_OK) rc = append(b, &rec_buf, &res);
    cm_buf_free(&props);
    cm_buf_free(&rec_buf);
    return rc;
}

/* The committed copy (EndTransactionProcessor.endMessageTransaction): the half's properties
 * string as stored (TRAN_MSG, PGROUP, REAL_* remain, as a 4.9 broker leaves them), the
 * COMMIT type, PREPAREDTRANSACTIONOFFSET = the half's commit-log offset. */
static rmq_err_t put_committed(broker_t *b, const proto_record_t *half) {
    proto_props_t p = {0};
    rmq_err_t rc = proto_props_parse(half->props, (size_t)half->props_len, &p);
    const char *topic = proto_props_get(&p, PROP_REAL_TOPIC);
    const char *qid = proto_props_get(&p, PROP_REAL_QID);
    int64_t queue_id = qid ? parse_i64(qid, strlen(qid), -1) : -1;
    if (rc == RMQ_OK && (!topic || !*topic || queue_id < 0 || queue_id > 65535))
        rc = RMQ_ERR_MALFORMED;
    cm_buf_t props = CM_BUF_INIT, rec_buf = CM_BUF_INIT;
    if (rc == RMQ_OK) {
        cm_buf_append(&props, half->props, (size_t)half->props_len);
        int32_t sys_flag = (half->sys_flag & ~SYSFLAG_TX_MASK) | SYSFLAG_TX_COMMIT;
        rc = encode_copy(b, half, topic, (int32_t)queue_id, sys_flag, half->physical_offset, &props,
                         &rec_buf);
    }
    if (rc == RMQ_OK) {
        store_put_result_t res = {0};
        rc = append(b, &rec_buf, &res);
    }
    proto_props_free(&p);
    cm_buf_free(&props);
    cm_buf_free(&rec_buf);
    return rc;
}

/* ---------------------------------------------------------------- END_TRANSACTION (37) */

/* EndTransactionProcessor.checkPrepareMessage: the half named by the header, or a remark. */
static const char *check_half(const proto_end_tx_req_t *h, const proto_record_t *half) {
    const char *pg;
    size_t len;
    if (!proto_props_find(half->props, (size_t)half->props_len, PROP_PGROUP, &pg, &len) ||
        len != strlen(h->producer_group) || memcmp(pg, h->producer_group, len) != 0)
        return "The producer group wrong";
    if (half->queue_offset != h->tran_state_table_offset)
        return "The transaction state table offset wrong";
    if (half->physical_offset != h->commit_log_offset) return "The commit log offset wrong";
    return NULL;
}

static void on_end_transaction(broker_t *b, broker_req_t *req) {
    proto_end_tx_req_t h;
    proto_hdr_err_t herr;
    if (proto_end_tx_req_decode(&req->cmd.ext, &h, &herr) != RMQ_OK) {
        broker_reply_bad_header(b, req, &herr);
        return;
    }
    if (strcmp(cm_conf_str(b->conf, "brokerRole", true), "SLAVE") == 0) {
        broker_reply_code(b, req, RMQ_ERR_SLAVE_NOT_AVAILABLE,
                          "Can't process the transaction message on slave");
        return;
    }
    if (h.commit_or_rollback != PROTO_TX_COMMIT && h.commit_or_rollback != PROTO_TX_ROLLBACK) {
        broker_req_end(req); /* unknown: the check-back will ask again (Java answers null) */
        return;
    }
    bool commit = h.commit_or_rollback == PROTO_TX_COMMIT;
    cm_buf_t buf = CM_BUF_INIT;
    proto_record_t half;
    const char *why = NULL;
    if (store_read_record(b->store, h.commit_log_offset, &buf) != RMQ_OK ||
        proto_record_decode(buf.data, buf.len, false, &half) != RMQ_OK ||
        (size_t)half.topic_len != strlen(BROKER_TX_HALF_TOPIC) ||
        memcmp(half.topic, BROKER_TX_HALF_TOPIC, (size_t)half.topic_len) != 0)
        why = "Find prepared transaction message failed";
    else
        why = check_half(&h, &half);
    if (why) {
        cm_buf_free(&buf);
        cm_warn(&b->log, "END_TRANSACTION from %s (group %s, offset %lld): %s", req->peer_text,
                h.producer_group, (long long)h.commit_log_offset, why);
        broker_reply_code(b, req, RMQ_ERR_SYSTEM_ERROR, why);
        return;
    }
    broker_tx_t *tx = b->tx;
    int64_t origin = origin_of(&half);
    /* Copies of origin lie below the half queue's end, except one the check thread appends
     * right now, which it then looks up again (check_pass). */
    int64_t last = store_max_offset(b->store, BROKER_TX_HALF_TOPIC, 0) - 1;
    bool again = !claim(tx, origin, last > half.queue_offset ? last : half.queue_offset);
    rmq_err_t rc = commit && !again ? put_committed(b, &half) : RMQ_OK;
    if (rc == RMQ_OK) rc = put_op(b, half.queue_offset, origin);
    if (rc != RMQ_OK && !again) unclaim(tx, origin);
    cm_buf_free(&buf);
    if (rc != RMQ_OK) {
        broker_reply_fmt(b, req, RMQ_ERR_SYSTEM_ERROR, "store the %s failed: %s",
                         commit ? "committed message" : "op record", rmq_err_name(rc));
        return;
    }
    if (again)
        cm_info(&b->log, "END_TRANSACTION %s for %s: already resolved, nothing delivered again",
                commit ? "commit" : "rollback", h.msg_id);
    broker_reply_code(b, req, 0, NULL);
}

/* ---------------------------------------------------------------- check pass */

/* An op record read in a pass: where it is, the half it closes, and that half's origin. */
typedef struct op_seen {
    int64_t offset, target, origin;
} op_seen_t;

typedef struct op_list {
    op_seen_t *v;
    size_t n, cap;
    int64_t end; /* the op queue offset after the last one read */
} op_list_t;

/* The op records from op_off on into ops; closed gets every half offset >= half_off they
 * name, and every origin they name is noted as resolved. */
static void read_ops(broker_tx_t *tx, int64_t half_off, int64_t half_max, int64_t op_off,
                     cm_map_t *closed, op_list_t *ops) {
    broker_t *b = tx->b;
    int64_t off = op_off;
    int64_t max = store_max_offset(b->store, BROKER_TX_OP_TOPIC, 0);
    while (off < max) {
        store_get_result_t res = {0};
        store_get_messages(b->store, BROKER_TX_OP_TOPIC, 0, off, OP_BATCH, 0, NULL, NULL, &res);
        if (res.status != STORE_FOUND) {
            cm_buf_free(&res.records);
            if (res.next_begin_offset <= off) break;
            off = res.next_begin_offset;
            continue;
        }
        size_t pos = 0;
        proto_record_t op;
        while (pos < res.records.len &&
               proto_record_decode(res.records.data + pos, res.records.len - pos, false, &op) ==
                   RMQ_OK) {
            pos += (size_t)op.total_size;
            int64_t target = parse_i64((const char *)op.body, (size_t)op.body_len, -1);
            if (target < 0) continue;
            int64_t origin = prop_i64(&op, PROP_TRAN_PREPARED_QUEUE_OFFSET, target);
            /* Any copy of origin lies below half_max: only this thread makes copies, and it
             * makes none of a resolved origin. Learnt once per op record (and once more
             * after a restart): an origin forgotten since stays forgotten. */
            if (op.queue_offset >= tx->ops_read_to)
                claim(tx, origin, target > half_max - 1 ? target : half_max - 1);
            if (target >= half_off) {
                char key[24];
                snprintf(key, sizeof key, "%lld", (long long)target);
                cm_map_put(closed, key, tx);
            }
            if (ops->n == ops->cap)
                ops->v =
                    cm_realloc(ops->v, (ops->cap = ops->cap ? ops->cap * 2 : 64) * sizeof *ops->v);
            ops->v[ops->n++] = (op_seen_t){op.queue_offset, target, origin};
        }
        off = res.next_begin_offset;
        cm_buf_free(&res.records);
    }
    ops->end = off > op_off ? off : op_off;
    if (ops->end > tx->ops_read_to) tx->ops_read_to = ops->end;
}

/* Where the next pass rereads the op queue: the first op record still useful — its half not
 * passed yet, or its origin still remembered (a copy of it may lie ahead). Everything
 * before it is done for good, so a restart rebuilds the same state. */
static int64_t op_resume(broker_tx_t *tx, const op_list_t *ops, int64_t half_off) {
    for (size_t i = 0; i < ops->n; i++)
        if (ops->v[i].target >= half_off || remembered(tx, ops->v[i].origin))
            return ops->v[i].offset;
    return ops->end;
}

/* The half re-appended for a check (TransactionalMessageBridge.renewHalfMessageInner):
 * TRANSACTION_CHECK_TIMES = times, WAIT=false, the origin kept. res gets its position. */
static rmq_err_t put_back(broker_t *b, const proto_record_t *half, int32_t times, int64_t origin,
                          store_put_result_t *res) {
    proto_props_t p = {0};
    rmq_err_t rc = proto_props_parse(half->props, (size_t)half->props_len, &p);
    cm_buf_t props = CM_BUF_INIT, rec_buf = CM_BUF_INIT;
    if (rc == RMQ_OK) {
        char num[24];
        snprintf(num, sizeof num, "%d", times);
        proto_props_set(&p, PROP_TRANSACTION_CHECK_TIMES, num);
        proto_props_set(&p, PROP_WAIT, "false");
        snprintf(num, sizeof num, "%lld", (long long)origin);
        proto_props_set(&p, PROP_TRAN_PREPARED_QUEUE_OFFSET, num);
        broker_props_java_order(&p, p.count, &props);
        rc = encode_copy(b, half, BROKER_TX_HALF_TOPIC, 0, half->sys_flag, 0, &props, &rec_buf);
    }
    if (rc == RMQ_OK) rc = append(b, &rec_buf, res);
    proto_props_free(&p);
    cm_buf_free(&props);
    cm_buf_free(&rec_buf);
    return rc;
}

/* CHECK_TRANSACTION_STATE for the copy at phys (message.md §8): the record with REAL_TOPIC /
 * REAL_QID for topic and queue, sent oneway to a live producer of its group. */
static void send_check(broker_t *b, int64_t phys) {
    cm_buf_t buf = CM_BUF_INIT, body = CM_BUF_INIT;
    proto_record_t rec;
    if (store_read_record(b->store, phys, &buf) != RMQ_OK ||
        proto_record_decode(buf.data, buf.len, false, &rec) != RMQ_OK) {
        cm_buf_free(&buf);
        return;
    }
    proto_props_t p = {0};
    proto_props_parse(rec.props, (size_t)rec.props_len, &p);
    const char *group = proto_props_get(&p, PROP_PGROUP);
    const char *topic = proto_props_get(&p, PROP_REAL_TOPIC);
    const char *qid = proto_props_get(&p, PROP_REAL_QID);
    const char *uniq = proto_props_get(&p, PROP_UNIQ_KEY);
    void *conn = group && b->clients ? broker_clients_producer_conn(b->clients, group) : NULL;
    if (!conn) {
        cm_info(&b->log, "transaction check: no producer of group %s online",
                group ? group : "(none)");
    } else if (topic && qid) {
        proto_record_t out = rec;
        out.topic = topic;
        out.topic_len = (int32_t)strlen(topic);
        out.queue_id = (int32_t)parse_i64(qid, strlen(qid), 0);
        char offset_id[64];
        proto_offset_id_format(&rec.store_host, rec.physical_offset, offset_id, sizeof offset_id);
        proto_cmd_t cmd;
        proto_cmd_request(&cmd, PROTO_CHECK_TRANSACTION_STATE, 0);
        proto_check_tx_req_t h;
        proto_check_tx_req_init(&h);
        h.tran_state_table_offset = rec.queue_offset;
        h.commit_log_offset = rec.physical_offset;
        h.msg_id = uniq;
        h.transaction_id = uniq;
        h.offset_msg_id = offset_id;
        proto_check_tx_req_encode(&h, &cmd.ext);
        if (proto_record_encode(&out, &body) == RMQ_OK) {
            proto_cmd_set_body(&cmd, body.data, body.len);
            if (!broker_send_oneway(b, conn, &cmd))
                cm_info(&b->log, "transaction check for %s: the producer's connection is gone",
                        uniq ? uniq : "?");
        } else {
            proto_cmd_free(&cmd);
        }
    }
    if (conn) net_conn_unref(conn);
    proto_props_free(&p);
    cm_buf_free(&body);
    cm_buf_free(&buf);
}

/* Gives up on a half checked transactionCheckMax times (resolveDiscardMsg): a copy on
 * TRANS_CHECK_MAX_TIME_TOPIC keeps it for inspection. */
static void discard(broker_t *b, const proto_record_t *half) {
    broker_topics_ensure(b, BROKER_TX_MAX_TIME_TOPIC, 1, PERM_RW, 0);
    cm_buf_t props = CM_BUF_INIT, rec_buf = CM_BUF_INIT;
    cm_buf_append(&props, half->props, (size_t)half->props_len);
    store_put_result_t res = {0};
    rmq_err_t rc =
        encode_copy(b, half, BROKER_TX_MAX_TIME_TOPIC, 0, half->sys_flag, 0, &props, &rec_buf);
    if (rc == RMQ_OK) rc = append(b, &rec_buf, &res);
    cm_warn(&b->log, "transaction half at offset %lld checked %d times, given up (%s)",
            (long long)half->queue_offset, (int)prop_i64(half, PROP_TRANSACTION_CHECK_TIMES, 0),
            rc == RMQ_OK ? "kept on " BROKER_TX_MAX_TIME_TOPIC : rmq_err_name(rc));
    cm_buf_free(&props);
    cm_buf_free(&rec_buf);
}

static bool tx_stopping(broker_tx_t *tx) {
    pthread_mutex_lock(&tx->mu);
    bool stop = tx->stop;
    pthread_mutex_unlock(&tx->mu);
    return stop;
}

/* What the pass does with the half at rec (not closed by an op record). */
enum half_step { STEP_SKIP, STEP_WAIT, STEP_CHECK };

static enum half_step judge(broker_tx_t *tx, const proto_record_t *rec, int64_t now) {
    if (is_resolved(tx, origin_of(rec), rec->queue_offset)) return STEP_SKIP;
    int64_t age = now - rec->born_timestamp;
    int64_t immunity = tx->timeout_ms;
    int64_t seconds = prop_i64(rec, PROP_CHECK_IMMUNITY_TIME, -1);
    if (seconds >= 0 && prop_i64(rec, PROP_TRANSACTION_CHECK_TIMES, 0) == 0)
        immunity = seconds * 1000;
    if (age >= 0 && age < immunity) return STEP_WAIT;
    return STEP_CHECK;
}

/* One pass (TransactionalMessageServiceImpl.check) over the half queue. */
static void check_pass(broker_tx_t *tx) {
    broker_t *b = tx->b;
    int64_t half_max = store_max_offset(b->store, BROKER_TX_HALF_TOPIC, 0);
    int64_t half_off = broker_offsets_get(b, TX_GROUP, BROKER_TX_HALF_TOPIC, 0);
    int64_t op_off = broker_offsets_get(b, TX_GROUP, BROKER_TX_OP_TOPIC, 0);
    int64_t half_min = store_min_offset(b->store, BROKER_TX_HALF_TOPIC, 0);
    if (half_off < half_min) half_off = half_min;
    if (op_off < 0) op_off = store_min_offset(b->store, BROKER_TX_OP_TOPIC, 0);
    if (half_off >= half_max) return;
    cm_map_t *closed = cm_map_new(NULL);
    op_list_t ops = {0};
    read_ops(tx, half_off, half_max, op_off, closed, &ops);
    int64_t now = cm_now_ms();
    cm_buf_t buf = CM_BUF_INIT;
    int checked = 0;
    while (half_off < half_max && !tx_stopping(tx)) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)half_off);
        proto_record_t rec;
        int64_t next;
        if (cm_map_get(closed, key)) { /* committed or rolled back */
            half_off++;
            continue;
        }
        if (!read_at(b, BROKER_TX_HALF_TOPIC, half_off, &buf, &rec, &next)) {
            half_off = next; /* a hole, or a removed segment */
            continue;
        }
        enum half_step step = judge(tx, &rec, now);
        if (step == STEP_WAIT) break;
        if (step == STEP_CHECK) {
            int32_t times = (int32_t)prop_i64(&rec, PROP_TRANSACTION_CHECK_TIMES, 0);
            if (times >= tx->check_max) {
                discard(b, &rec);
            } else {
                store_put_result_t res = {0};
                if (put_back(b, &rec, times + 1, origin_of(&rec), &res) != RMQ_OK) break;
                /* An END that resolved it meanwhile learns about the new copy here. */
                if (!is_resolved(tx, origin_of(&rec), res.queue_offset)) {
                    send_check(b, res.phys_offset);
                    checked++;
                }
            }
        }
        half_off = next;
    }
    cm_buf_free(&buf);
    cm_map_destroy(closed);
    prune_resolved(tx, half_off);
    broker_offsets_commit(b, TX_GROUP, BROKER_TX_HALF_TOPIC, 0, half_off);
    broker_offsets_commit(b, TX_GROUP, BROKER_TX_OP_TOPIC, 0, op_resume(tx, &ops, half_off));
    cm_free(ops.v);
    if (checked) cm_debug(&b->log, "transaction check: %d half messages asked about", checked);
}

static void *check_main(void *arg) {
    broker_tx_t *tx = arg;
    pthread_mutex_lock(&tx->mu);
    while (!tx->stop) {
        struct timespec ts = cm_mono_deadline(tx->interval_ms);
        int rc = 0;
        while (!tx->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&tx->cv, &tx->mu, &ts);
        if (tx->stop) break;
        pthread_mutex_unlock(&tx->mu);
        check_pass(tx);
        pthread_mutex_lock(&tx->mu);
    }
    pthread_mutex_unlock(&tx->mu);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

broker_tx_t *broker_tx_new(broker_t *b) {
    broker_tx_t *tx = cm_calloc(1, sizeof *tx);
    tx->b = b;
    tx->interval_ms = cm_conf_int(b->conf, "transactionCheckInterval", true);
    tx->timeout_ms = cm_conf_int(b->conf, "transactionTimeOut", true);
    tx->check_max = (int32_t)cm_conf_int(b->conf, "transactionCheckMax", true);
    tx->resolved = cm_map_new(cm_free);
    pthread_mutex_init(&tx->mu, NULL);
    cm_cond_init_mono(&tx->cv);
    broker_set_processor(b, PROTO_END_TRANSACTION, on_end_transaction, BROKER_EXEC_SEND);
    /* Only a master checks: a slave holds replicated halves it cannot resolve. */
    if (strcmp(cm_conf_str(b->conf, "brokerRole", true), "SLAVE") == 0) return tx;
    tx->running = pthread_create(&tx->thread, NULL, check_main, tx) == 0;
    if (!tx->running) cm_error(&b->log, "cannot start the transaction check thread");
    return tx;
}

void broker_tx_destroy(broker_tx_t *tx) {
    if (!tx) return;
    if (tx->running) {
        pthread_mutex_lock(&tx->mu);
        tx->stop = true;
        pthread_cond_signal(&tx->cv);
        pthread_mutex_unlock(&tx->mu);
        pthread_join(tx->thread, NULL);
    }
    cm_map_destroy(tx->resolved);
    pthread_cond_destroy(&tx->cv);
    pthread_mutex_destroy(&tx->mu);
    cm_free(tx);
}
