/* The push consumer (include/rmq/consumer.h, second half), shaped as RocketMQ 4.9.8's
 * DefaultMQPushConsumer (client.md §4–§7).
 *
 * Threads. One service thread per consumer does everything that talks to brokers on the
 * consumer's behalf: rebalance, start-offset look-ups, sending pulls (long polling, answered on
 * the instance's loop thread and handed back through a mailbox), orderly locks, offset
 * persistence. The listener runs on the consumer's own consume pool (consumeThreadMin
 * threads); a job there also sends failed messages back (CONSUMER_SEND_MSG_BACK).
 *
 * Queues. Each owned queue has a pq_t with its process queue (procq.h). A queue that leaves
 * (rebalance, PULL_OFFSET_MOVED) is marked dropped and waits in the graveyard until no consume
 * job uses it; then its offset is persisted and (orderly) its broker lock released. A pq is
 * freed when its last reference goes: the table or graveyard, each pull in flight, each
 * consume job and each local retry hold one. Everything in a pq is guarded by the consumer's
 * mu, except the messages a job was handed: only that job reads them until it gives them
 * back. */
#include <stdio.h>
#include <stdlib.h>

#include <rmq/consumer.h>

#include "alloc.h"
#include "client.h"
#include "offfile.h"
#include "procq.h"

#define PULL_DELAY_ON_ERROR_MS 3000 /* PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION */
#define PULL_DELAY_ON_FLOW_MS 20    /* ..._WHEN_BROKER_FLOW_CONTROL */
#define PULL_DELAY_ON_CACHE_MS 50   /* ..._WHEN_FLOW_CONTROL (local thresholds) */
#define LOCAL_RETRY_MS 5000         /* a failed send-back is consumed again here after this */
#define OFFSET_MOVED_WAIT_MS 10000  /* PULL_OFFSET_MOVED: the queue is dropped this long */
#define LOCK_INTERVAL_MS 20000      /* rocketmq.client.rebalance.lockInterval */
#define LOCK_MAX_LIVE_MS 30000      /* rocketmq.client.rebalance.lockMaxLiveTime */
#define LOCK_RETRY_MS 1000          /* an owned queue whose lock was refused is asked again */
#define ORDERLY_MAX_RUN_MS 60000    /* rocketmq.client.maxTimeConsumeContinuously */
#define DEFAULT_MAX_RECONSUME 16    /* maxReconsumeTimes -1, concurrently */

enum { STATE_NEW, STATE_STARTED, STATE_STOPPING };

typedef struct pq {
    int refs;
    char *topic, *broker;
    int32_t qid;
    rmq_mq_t mq; /* what listener contexts show */
    client_procq_t msgs;
    int64_t pull_offset; /* next to pull; -1: look it up first */
    int64_t offset;      /* next to consume, what the offset store gets; -1: none yet */
    int64_t persisted;   /* last offset handed to the store; -1: none */
    int64_t pull_at;     /* mono ms: no pull (or look-up) before */
    int jobs;            /* consume jobs posted and not finished */
    bool pulling, dropped, looking_up;
    bool finished; /* dropped and done with: offset stored, unlocked; freed with its last ref */
    /* orderly */
    bool locked, consuming; /* consuming: a job runs, is queued or waits for resume_at */
    int64_t lock_at, resume_at;
    /* PULL_OFFSET_MOVED: dropped until moved_at, then moved_offset is stored */
    int64_t moved_at, moved_offset;
} pq_t;

/* Messages of one queue for one listener call (concurrent), or a local retry waiting. */
typedef struct job {
    struct job *next; /* in the consumer's list of local retries */
    rmq_push_consumer_t *c;
    pq_t *pq;
    int64_t at; /* local retry: mono ms when it is posted */
    size_t n;
    rmq_msg_t *msgs[];
} job_t;

struct rmq_consume_ctx_s {
    const rmq_mq_t *mq;
    int ack_index, delay_level;
    int64_t suspend_ms;
};

struct rmq_push_consumer_s {
    rmq_conf_t *conf;
    client_cg_t cg;
    cm_logger_t log;
    bool broadcasting, orderly;
    rmq_consume_cb_t *cb;
    void *opaque;
    int threads, batch_max, pull_batch;
    int max_reconsume; /* as configured: -1 is 16 concurrently, unlimited orderly */
    int64_t threshold, threshold_bytes, topic_threshold, topic_threshold_bytes, max_span;
    int64_t pull_interval, broker_suspend_ms, pull_timeout_ms, persist_ms, rebalance_ms,
        orderly_suspend_ms;
    char *retry_topic;
    char *offfile; /* broadcasting */
    client_pool_t *pool;
    client_mailbox_t *mb;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu; /* guards everything below and every pq */
    int state;
    client_subs_t subs;
    pq_t **pqs, **grave;
    size_t pq_count, grave_count;
    job_t *later;           /* local retries */
    client_offtab_t offtab; /* broadcasting: the offsets file's table */
    bool offtab_dirty;
    client_offtab_t resets; /* RESET_CONSUMER_CLIENT_OFFSET offsets not applied yet */
};

/* ================================================================ small helpers */

static void kick(rmq_push_consumer_t *c, bool rebalance) {
    client_mailbox_kick(c->mb, rebalance, false);
}

static pq_t *pq_new(const char *topic, const char *broker, int32_t qid) {
    pq_t *q = cm_calloc(1, sizeof *q);
    q->refs = 1;
    q->topic = cm_strdup(topic);
    q->broker = cm_strdup(broker);
    q->qid = qid;
    cm_strcpy_cut(q->mq.topic, sizeof q->mq.topic, topic);
    cm_strcpy_cut(q->mq.broker_name, sizeof q->mq.broker_name, broker);
    q->mq.queue_id = qid;
    client_procq_init(&q->msgs);
    q->pull_offset = q->offset = q->persisted = -1;
    return q;
}

/* Caller holds mu. */
static void pq_unref(pq_t *q) {
    if (--q->refs > 0) return;
    client_procq_clear(&q->msgs);
    cm_free(q->topic);
    cm_free(q->broker);
    cm_free(q);
}

static bool pq_is(const pq_t *q, const char *topic, const char *broker, int32_t qid) {
    return q->qid == qid && strcmp(q->topic, topic) == 0 && strcmp(q->broker, broker) == 0;
}

static pq_t *find_pq(rmq_push_consumer_t *c, const char *topic, const char *broker, int32_t qid) {
    for (size_t i = 0; i < c->pq_count; i++)
        if (pq_is(c->pqs[i], topic, broker, qid)) return c->pqs[i];
    return NULL;
}

/* Moves the queue at index i to the graveyard. Caller holds mu. */
static void drop_pq(rmq_push_consumer_t *c, size_t i) {
    pq_t *q = c->pqs[i];
    c->pqs[i] = c->pqs[--c->pq_count];
    q->dropped = true;
    c->grave = cm_realloc(c->grave, (c->grave_count + 1) * sizeof *c->grave);
    c->grave[c->grave_count++] = q;
}

/* Records a new next-to-consume offset of q. Concurrent consumption only moves it forward;
 * orderly commits and PULL_OFFSET_MOVED set it. Caller holds mu. */
static void set_offset(pq_t *q, int64_t offset, bool increase_only) {
    if (offset < 0) return;
    if (!increase_only || offset > q->offset) q->offset = offset;
}

/* ================================================================ broker calls */

static void send_offset(rmq_push_consumer_t *c, const char *topic, const char *broker, int32_t qid,
                        int64_t offset, bool oneway) {
    if (!oneway) {
        rmq_err_t err = client_cg_update_committed(&c->cg, topic, broker, qid, offset);
        if (err)
            cm_warn(&c->log, "consumer %s: offset %lld of %s@%s:%d not stored: %s", c->cg.group,
                    (long long)offset, topic, broker, (int)qid, rmq_err_str(err));
        return;
    }
    rmq_err_t err;
    net_conn_t *conn = client_cg_conn(&c->cg, topic, broker, &err);
    if (!conn) return;
    proto_cmd_t req;
    proto_cmd_request(&req, PROTO_UPDATE_CONSUMER_OFFSET, 0);
    proto_update_consumer_offset_req_t h;
    proto_update_consumer_offset_req_init(&h);
    h.consumer_group = c->cg.group;
    h.topic = topic;
    h.queue_id = qid;
    h.commit_offset = offset;
    h.bname = broker;
    proto_update_consumer_offset_req_encode(&h, &req.ext);
    net_conn_oneway(conn, &req);
    net_conn_unref(conn);
}

/* CONSUMER_SEND_MSG_BACK for m, consumed from q's broker. */
static rmq_err_t send_back(rmq_push_consumer_t *c, const char *topic, const char *broker,
                           const rmq_msg_t *m, int delay_level, int max_reconsume) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_CONSUMER_SEND_MSG_BACK, 0);
    proto_send_back_req_t h;
    proto_send_back_req_init(&h);
    h.offset = m->commitlog_offset;
    h.group = c->cg.group;
    h.delay_level = delay_level;
    const char *origin = proto_props_get(&m->props, PROP_ORIGIN_MESSAGE_ID);
    const char *uniq = proto_props_get(&m->props, PROP_UNIQ_KEY);
    h.origin_msg_id = origin ? origin : uniq ? uniq : m->offset_id;
    h.origin_topic = m->topic;
    h.has_max_reconsume_times = true;
    h.max_reconsume_times = max_reconsume;
    h.bname = broker;
    proto_send_back_req_encode(&h, &req.ext);
    rmq_err_t err = client_cg_call(&c->cg, topic, broker, &req, &resp);
    proto_cmd_free(&resp);
    return err;
}

/* LOCK_BATCH_MQ (lock) or UNLOCK_BATCH_MQ of mqs, all on one broker. Lock: granted gets the
 * queues the broker granted. */
static rmq_err_t lock_call(rmq_push_consumer_t *c, bool lock, const proto_mq_list_t *mqs,
                           proto_mq_list_t *granted) {
    if (mqs->count == 0) return RMQ_OK;
    proto_lock_batch_t lb = {(char *)client_instance_id(c->cg.ci), (char *)c->cg.group, *mqs};
    cm_buf_t body = CM_BUF_INIT;
    proto_lock_batch_encode(&lb, &body);
    proto_cmd_t req, resp;
    proto_cmd_request(&req, lock ? PROTO_LOCK_BATCH_MQ : PROTO_UNLOCK_BATCH_MQ, 0);
    proto_cmd_set_body(&req, body.data, body.len);
    cm_buf_free(&body);
    rmq_err_t err =
        client_cg_call(&c->cg, mqs->items[0].topic, mqs->items[0].broker_name, &req, &resp);
    if (err == RMQ_OK && lock) err = proto_lock_ok_decode(resp.body, resp.body_len, granted);
    proto_cmd_free(&resp);
    return err;
}

/* ================================================================ consumption */

static rmq_err_t post_job(rmq_push_consumer_t *c, job_t *j, client_job_fn *fn) {
    return client_pool_post(c->pool, fn, j);
}

static void run_concurrent(void *arg);
static void run_orderly(void *arg);

/* Posts a listener call for n messages of q (concurrent). Caller holds mu. */
static void post_concurrent(rmq_push_consumer_t *c, pq_t *q, rmq_msg_t **msgs, size_t n) {
    job_t *j = cm_calloc(1, sizeof *j + n * sizeof *msgs);
    j->c = c;
    j->pq = q;
    j->n = n;
    memcpy(j->msgs, msgs, n * sizeof *msgs);
    q->jobs++;
    q->refs++;
    if (post_job(c, j, run_concurrent) != RMQ_OK) { /* stopping: they stay unacknowledged */
        q->jobs--;
        q->refs--;
        cm_free(j);
    }
}

/* Starts q's orderly consumption unless it runs already. Caller holds mu. */
static void post_orderly(rmq_push_consumer_t *c, pq_t *q) {
    job_t *j = cm_calloc(1, sizeof *j);
    j->c = c;
    j->pq = q;
    q->jobs++;
    q->refs++;
    q->consuming = true;
    if (post_job(c, j, run_orderly) != RMQ_OK) {
        q->jobs--;
        q->refs--;
        q->consuming = false;
        cm_free(j);
    }
}

/* Up to this many messages per listener call, the batch's bookkeeping stays on the stack. */
#define BATCH_ON_STACK 32

/* Concurrent: the listener's verdict on j, as ConsumeMessageConcurrentlyService's
 * processConsumeResult applies it. Messages after the ack index go back to the broker
 * (clustering; broadcasting drops them); those the broker did not take are consumed again
 * here after LOCAL_RETRY_MS. Fills failed (those) and done (the offsets consumed). */
static void consume_batch(rmq_push_consumer_t *c, job_t *j, rmq_msg_t **failed, size_t *n_failed,
                          int64_t *done, size_t *n_done) {
    pq_t *q = j->pq;
    rmq_consume_ctx_t ctx = {&q->mq, (int)j->n - 1, 0, 0};
    rmq_consume_status_t st = c->cb((const rmq_msg_t *const *)j->msgs, j->n, &ctx, c->opaque);
    int ack = st == RMQ_CONSUME_SUCCESS ? ctx.ack_index : -1;
    if (ack >= (int)j->n) ack = (int)j->n - 1;
    if (ack < -1) ack = -1;
    *n_failed = 0;
    for (size_t i = (size_t)(ack + 1); i < j->n; i++) {
        rmq_msg_t *m = j->msgs[i];
        if (c->broadcasting) {
            cm_warn(&c->log, "consumer %s: broadcasting drops message %s it failed to consume",
                    c->cg.group, m->offset_id ? m->offset_id : "");
            continue;
        }
        rmq_err_t err = send_back(c, q->topic, q->broker, m, ctx.delay_level,
                                  c->max_reconsume < 0 ? DEFAULT_MAX_RECONSUME : c->max_reconsume);
        if (err) {
            cm_warn(&c->log, "consumer %s: send-back of %s failed (%s); consuming it again in %d s",
                    c->cg.group, m->offset_id ? m->offset_id : "", rmq_err_str(err),
                    LOCAL_RETRY_MS / 1000);
            m->reconsume_times++;
            failed[(*n_failed)++] = m;
        }
    }
    *n_done = 0;
    for (size_t i = 0, f = 0; i < j->n; i++) {
        if (f < *n_failed && failed[f] == j->msgs[i])
            f++;
        else
            done[(*n_done)++] = j->msgs[i]->queue_offset;
    }
}

/* What consume_batch decided, applied to q. Caller holds mu. */
static void settle_batch(rmq_push_consumer_t *c, pq_t *q, rmq_msg_t **failed, size_t n_failed,
                         const int64_t *done, size_t n_done) {
    set_offset(q, client_procq_remove(&q->msgs, done, n_done), true);
    if (n_failed == 0) return;
    job_t *r = cm_calloc(1, sizeof *r + n_failed * sizeof *failed);
    r->c = c;
    r->pq = q;
    r->at = cm_mono_ms() + LOCAL_RETRY_MS;
    r->n = n_failed;
    memcpy(r->msgs, failed, n_failed * sizeof *failed);
    q->refs++;
    r->next = c->later;
    c->later = r;
}

static void run_concurrent(void *arg) {
    job_t *j = arg;
    rmq_push_consumer_t *c = j->c;
    pthread_mutex_lock(&c->mu);
    /* Stopping or no longer owned: the messages stay unacknowledged and come again later. */
    bool go = c->state == STATE_STARTED && !j->pq->dropped;
    pthread_mutex_unlock(&c->mu);
    rmq_msg_t *failed_stack[BATCH_ON_STACK], **failed = failed_stack;
    int64_t done_stack[BATCH_ON_STACK], *done = done_stack;
    size_t n_failed = 0, n_done = 0;
    if (go && j->n > BATCH_ON_STACK) {
        failed = cm_calloc(j->n, sizeof *failed);
        done = cm_calloc(j->n, sizeof *done);
    }
    if (go) consume_batch(c, j, failed, &n_failed, done, &n_done);
    pthread_mutex_lock(&c->mu);
    if (go) settle_batch(c, j->pq, failed, n_failed, done, n_done);
    j->pq->jobs--;
    pq_unref(j->pq);
    pthread_mutex_unlock(&c->mu);
    if (failed != failed_stack) {
        cm_free(failed);
        cm_free(done);
    }
    cm_free(j);
}

static bool lock_valid(rmq_push_consumer_t *c, const pq_t *q, int64_t now) {
    return c->broadcasting || (q->locked && now - q->lock_at <= LOCK_MAX_LIVE_MS);
}

/* Orderly, SUSPEND with maxReconsumeTimes set: when every message of the batch reached it,
 * they go to the dead-letter queue and the batch counts as consumed (checkReconsumeTimes).
 * Outside mu. */
static bool past_max_reconsume(rmq_push_consumer_t *c, pq_t *q, rmq_msg_t **msgs, size_t n) {
    if (c->max_reconsume < 0 || c->broadcasting) return false;
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->reconsume_times < c->max_reconsume) return false;
    for (size_t i = 0; i < n; i++)
        if (send_back(c, q->topic, q->broker, msgs[i], -1, c->max_reconsume) != RMQ_OK)
            return false;
    return true;
}

/* Orderly: one job per queue at a time takes batches from the front in offset order while
 * the queue is locked; SUSPEND puts a batch back and pauses the queue. */
static void run_orderly(void *arg) {
    job_t *j = arg;
    rmq_push_consumer_t *c = j->c;
    pq_t *q = j->pq;
    int64_t began = cm_mono_ms();
    rmq_msg_t **batch = cm_calloc((size_t)c->batch_max, sizeof *batch);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        int64_t now = cm_mono_ms();
        if (c->state != STATE_STARTED || q->dropped || !lock_valid(c, q, now)) {
            q->consuming = false; /* the service thread starts it again once locked */
            break;
        }
        if (now - began > ORDERLY_MAX_RUN_MS) { /* let other queues' jobs run */
            q->resume_at = now;
            break;
        }
        size_t n = client_procq_take(&q->msgs, (size_t)c->batch_max, batch);
        if (n == 0) {
            q->consuming = false;
            break;
        }
        pthread_mutex_unlock(&c->mu);
        rmq_consume_ctx_t ctx = {&q->mq, (int)n - 1, 0, c->orderly_suspend_ms};
        rmq_consume_status_t st = c->cb((const rmq_msg_t *const *)batch, n, &ctx, c->opaque);
        bool consumed = st != RMQ_CONSUME_SUSPEND || past_max_reconsume(c, q, batch, n);
        pthread_mutex_lock(&c->mu);
        if (consumed) {
            set_offset(q, client_procq_commit_taken(&q->msgs), false);
            continue;
        }
        client_procq_untake(&q->msgs);
        for (size_t i = 0; i < n; i++)
            batch[i]->reconsume_times++;
        q->resume_at = cm_mono_ms() + (ctx.suspend_ms > 0 ? ctx.suspend_ms : c->orderly_suspend_ms);
        break; /* consuming stays true: the service thread resumes it */
    }
    q->jobs--;
    pq_unref(q);
    pthread_mutex_unlock(&c->mu);
    cm_free(batch);
    cm_free(j);
}

/* ================================================================ pulls */

typedef struct pull_todo {
    pq_t *pq;
    char *topic, *broker, *expr;
    int32_t qid;
    int64_t offset, commit;
} pull_todo_t;

/* Sends one pull (the caller took a reference on t->pq and marked it pulling). */
static void send_pull(rmq_push_consumer_t *c, pull_todo_t *t) {
    proto_pull_req_t h;
    proto_pull_req_init(&h);
    h.topic = t->topic;
    h.bname = t->broker;
    h.queue_id = t->qid;
    h.queue_offset = t->offset;
    h.max_msg_nums = c->pull_batch;
    h.sys_flag = PULL_FLAG_SUSPEND | PULL_FLAG_SUBSCRIPTION;
    if (t->commit > 0) h.sys_flag |= PULL_FLAG_COMMIT_OFFSET; /* piggy-backed offset */
    h.commit_offset = t->commit > 0 ? t->commit : 0;
    h.suspend_timeout_millis = c->broker_suspend_ms;
    h.subscription = t->expr;
    rmq_err_t err = client_cg_send_pull(&c->cg, &h, c->mb, c->pull_timeout_ms, t->pq, 0);
    if (err) {
        cm_debug(&c->log, "consumer %s: pull of %s@%s:%d not sent: %s", c->cg.group, t->topic,
                 t->broker, (int)t->qid, rmq_err_str(err));
        pthread_mutex_lock(&c->mu);
        t->pq->pulling = false;
        t->pq->pull_at = cm_mono_ms() + PULL_DELAY_ON_ERROR_MS;
        pq_unref(t->pq);
        pthread_mutex_unlock(&c->mu);
    }
}

/* Delivered %RETRY%<group> messages show their original topic (resetRetryAndNamespace). */
static void restore_retry_topic(rmq_push_consumer_t *c, rmq_msg_t *m) {
    const char *orig = proto_props_get(&m->props, PROP_RETRY_TOPIC);
    if (!orig || !c->retry_topic || strcmp(m->topic, c->retry_topic) != 0) return;
    char *t = cm_strdup(orig);
    proto_msg_free_text(m, m->topic);
    m->topic = t;
}

/* Puts the pulled records of resp into q and posts their consumption. Caller holds mu. */
static void take_found(rmq_push_consumer_t *c, pq_t *q, const proto_cmd_t *resp) {
    const client_sub_t *s = client_subs_find(&c->subs, q->topic);
    size_t cap = 64, n = 0, pos = 0;
    rmq_msg_t **fresh = cm_calloc(cap, sizeof *fresh);
    rmq_msg_t *m;
    while ((m = client_next_pulled(resp, &pos, s, q->broker))) {
        restore_retry_topic(c, m);
        if (!client_procq_put(&q->msgs, m)) continue;
        if (n == cap) fresh = cm_realloc(fresh, (cap *= 2) * sizeof *fresh);
        fresh[n++] = m;
    }
    if (c->orderly) {
        if (n > 0 && !q->consuming && lock_valid(c, q, cm_mono_ms())) post_orderly(c, q);
    } else {
        for (size_t i = 0; i < n; i += (size_t)c->batch_max) {
            size_t k = n - i < (size_t)c->batch_max ? n - i : (size_t)c->batch_max;
            post_concurrent(c, q, fresh + i, k);
        }
    }
    cm_free(fresh);
}

/* Service thread: applies one pull answer (PullAPIWrapper.processPullResult and the pull
 * callback of DefaultMQPushConsumerImpl). */
static void apply_pull(rmq_push_consumer_t *c, client_done_t *d) {
    pthread_mutex_lock(&c->mu);
    pq_t *q = d->tag;
    q->pulling = false;
    if (q->dropped) {
        pq_unref(q);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    rmq_err_t err = d->err ? d->err : (rmq_err_t)d->resp.code;
    proto_pull_resp_t h;
    bool decoded = proto_pull_resp_decode(&d->resp.ext, &h, NULL) == RMQ_OK;
    int64_t now = cm_mono_ms();
    if (err == RMQ_OK && decoded) {
        take_found(c, q, &d->resp);
        q->pull_offset = h.next_begin_offset;
        q->pull_at = now + c->pull_interval;
    } else if ((err == RMQ_ERR_PULL_NOT_FOUND || err == RMQ_ERR_PULL_RETRY_IMMEDIATELY) &&
               decoded) {
        q->pull_offset = h.next_begin_offset;
        q->pull_at = now;
        /* correctTagsOffset: nothing cached, so everything up to here is consumed */
        if (q->msgs.cached == 0) set_offset(q, h.next_begin_offset, true);
    } else if (err == RMQ_ERR_PULL_OFFSET_MOVED && decoded) {
        cm_warn(&c->log,
                "consumer %s: offset %lld of %s@%s:%d is illegal; the queue is dropped "
                "for %d s and resumes at %lld",
                c->cg.group, (long long)q->pull_offset, q->topic, q->broker, (int)q->qid,
                OFFSET_MOVED_WAIT_MS / 1000, (long long)h.next_begin_offset);
        q->moved_at = now + OFFSET_MOVED_WAIT_MS;
        q->moved_offset = h.next_begin_offset;
        for (size_t i = 0; i < c->pq_count; i++)
            if (c->pqs[i] == q) drop_pq(c, i);
    } else {
        cm_debug(&c->log, "consumer %s: pull of %s@%s:%d: %s", c->cg.group, q->topic, q->broker,
                 (int)q->qid, rmq_err_str(err));
        q->pull_at =
            now + (err == RMQ_ERR_FLOW_CONTROL ? PULL_DELAY_ON_FLOW_MS : PULL_DELAY_ON_ERROR_MS);
    }
    pq_unref(q);
    pthread_mutex_unlock(&c->mu);
}

/* The thresholds of q: per queue, or the topic's divided over its queues when set. Caller
 * holds mu. */
static bool over_threshold(rmq_push_consumer_t *c, const pq_t *q) {
    int64_t count = c->threshold, bytes = c->threshold_bytes;
    if (c->topic_threshold > 0 || c->topic_threshold_bytes > 0) {
        int64_t queues = 0;
        for (size_t i = 0; i < c->pq_count; i++)
            if (strcmp(c->pqs[i]->topic, q->topic) == 0) queues++;
        if (queues < 1) queues = 1;
        if (c->topic_threshold > 0)
            count = c->topic_threshold / queues > 1 ? c->topic_threshold / queues : 1;
        if (c->topic_threshold_bytes > 0)
            bytes = c->topic_threshold_bytes / queues > 1 ? c->topic_threshold_bytes / queues : 1;
    }
    if ((int64_t)q->msgs.cached > count || (int64_t)q->msgs.cached_bytes > bytes) return true;
    return !c->orderly && client_procq_span(&q->msgs) > c->max_span;
}

/* The offset q starts from: the store's, else consumeFromWhere. Outside mu. */
static rmq_err_t start_offset(rmq_push_consumer_t *c, const char *topic, const char *broker,
                              int32_t qid, int64_t *offset) {
    if (!c->broadcasting) {
        bool stored;
        return client_cg_start_offset(&c->cg, topic, broker, qid, offset, &stored);
    }
    pthread_mutex_lock(&c->mu);
    const client_offset_t *e = client_offtab_get(&c->offtab, topic, broker, qid);
    int64_t local = e ? e->offset : -1;
    pthread_mutex_unlock(&c->mu);
    if (local >= 0) {
        *offset = local;
        return RMQ_OK;
    }
    return client_cg_from_where(&c->cg, topic, broker, qid, offset);
}

/* Service thread: looks up start offsets and sends pulls for every queue that may go.
 * Returns the earliest time a waiting queue may go (0: none). */
static int64_t pull_round(rmq_push_consumer_t *c) {
    int64_t now = cm_mono_ms(), next = 0;
    pthread_mutex_lock(&c->mu);
    pull_todo_t *todo = cm_calloc(c->pq_count ? c->pq_count : 1, sizeof *todo);
    size_t n = 0;
    for (size_t i = 0; i < c->pq_count; i++) {
        pq_t *q = c->pqs[i];
        if (q->pulling || q->looking_up) continue;
        if (c->orderly && !c->broadcasting && !q->locked) continue; /* pulled once locked */
        if (q->pull_at <= now && q->pull_offset >= 0 && over_threshold(c, q))
            q->pull_at = now + PULL_DELAY_ON_CACHE_MS;
        if (q->pull_at > now) {
            if (!next || q->pull_at < next) next = q->pull_at;
            continue;
        }
        const client_sub_t *s = client_subs_find(&c->subs, q->topic);
        todo[n++] = (pull_todo_t){q,
                                  cm_strdup(q->topic),
                                  cm_strdup(q->broker),
                                  cm_strdup(s ? s->expr : "*"),
                                  q->qid,
                                  q->pull_offset,
                                  c->broadcasting ? 0 : q->offset};
        q->refs++;
        if (q->pull_offset >= 0)
            q->pulling = true;
        else
            q->looking_up = true;
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        pull_todo_t *t = &todo[i];
        if (t->offset >= 0) {
            send_pull(c, t);
        } else {
            int64_t off = -1;
            rmq_err_t err = start_offset(c, t->topic, t->broker, t->qid, &off);
            pthread_mutex_lock(&c->mu);
            pq_t *q = t->pq;
            q->looking_up = false;
            if (err) {
                cm_debug(&c->log, "consumer %s: start offset of %s@%s:%d: %s", c->cg.group,
                         t->topic, t->broker, (int)t->qid, rmq_err_str(err));
                q->pull_at = cm_mono_ms() + PULL_DELAY_ON_ERROR_MS;
            } else {
                q->pull_offset = off;
                set_offset(q, off, false); /* persisted next time, as Java's offset table is */
                q->pull_at = 0;
                next = cm_mono_ms(); /* pull it at once */
            }
            pq_unref(q);
            pthread_mutex_unlock(&c->mu);
        }
        cm_free(t->topic);
        cm_free(t->broker);
        cm_free(t->expr);
    }
    cm_free(todo);
    return next;
}

/* ================================================================ offsets */

typedef struct offset_todo {
    char *topic, *broker;
    int32_t qid;
    int64_t offset;
} offset_todo_t;

/* Writes the broadcasting offsets file when it changed. Caller holds mu. */
static void save_offfile(rmq_push_consumer_t *c) {
    if (!c->offtab_dirty) return;
    char why[256];
    if (client_offfile_save(c->offfile, &c->offtab, why, sizeof why) == RMQ_OK)
        c->offtab_dirty = false;
    else
        cm_warn(&c->log, "consumer %s: %s", c->cg.group, why);
}

/* Hands every owned queue's moved offset to the store: the offsets file (broadcasting) or
 * UPDATE_CONSUMER_OFFSET, oneway on the periodic pass and awaited at shutdown. */
static void persist_all(rmq_push_consumer_t *c, bool wait) {
    pthread_mutex_lock(&c->mu);
    offset_todo_t *todo = cm_calloc(c->pq_count ? c->pq_count : 1, sizeof *todo);
    size_t n = 0;
    for (size_t i = 0; i < c->pq_count; i++) {
        pq_t *q = c->pqs[i];
        if (q->offset < 0 || q->offset == q->persisted) continue;
        q->persisted = q->offset;
        if (c->broadcasting) {
            client_offtab_put(&c->offtab, q->topic, q->broker, q->qid, q->offset);
            c->offtab_dirty = true;
        } else {
            todo[n++] =
                (offset_todo_t){cm_strdup(q->topic), cm_strdup(q->broker), q->qid, q->offset};
        }
    }
    if (c->broadcasting) save_offfile(c);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        send_offset(c, todo[i].topic, todo[i].broker, todo[i].qid, todo[i].offset, !wait);
        cm_free(todo[i].topic);
        cm_free(todo[i].broker);
    }
    cm_free(todo);
}

/* Stores a leaving queue's final offset and (orderly) releases its lock. Outside mu. */
static void finish_queue(rmq_push_consumer_t *c, const offset_todo_t *t, bool unlock) {
    if (t->offset >= 0) {
        if (c->broadcasting) {
            pthread_mutex_lock(&c->mu);
            client_offtab_put(&c->offtab, t->topic, t->broker, t->qid, t->offset);
            c->offtab_dirty = true;
            save_offfile(c);
            pthread_mutex_unlock(&c->mu);
        } else {
            send_offset(c, t->topic, t->broker, t->qid, t->offset, false);
        }
    }
    if (unlock) {
        proto_mq_list_t one = {0};
        proto_mq_list_add(&one, t->topic, t->broker, t->qid);
        rmq_err_t err = lock_call(c, false, &one, NULL);
        if (err)
            cm_debug(&c->log, "consumer %s: unlock of %s@%s:%d: %s", c->cg.group, t->topic,
                     t->broker, (int)t->qid, rmq_err_str(err));
        proto_mq_list_free(&one);
    }
}

/* Service thread: finishes dropped queues no consume job uses any more. Returns the earliest
 * time a PULL_OFFSET_MOVED queue is due (0: none). */
static int64_t bury(rmq_push_consumer_t *c) {
    int64_t now = cm_mono_ms(), next = 0;
    bool moved = false;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        pq_t *q = NULL;
        for (size_t i = 0; i < c->grave_count && !q; i++) {
            pq_t *g = c->grave[i];
            if (g->finished) {
                if (g->refs > 1) continue; /* a pull in flight still points here */
                c->grave[i--] = c->grave[--c->grave_count];
                pq_unref(g);
                continue;
            }
            if (g->jobs > 0) continue;
            /* A pull of a moved queue still in flight may carry the old offset to commit
             * (PULL_FLAG_COMMIT_OFFSET): once it is answered the broker applied that, and the
             * moved offset stored below is the last word. */
            if (g->moved_at && g->pulling) continue;
            if (g->moved_at > now) {
                if (!next || g->moved_at < next) next = g->moved_at;
                continue;
            }
            q = g;
        }
        if (!q) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        bool was_moved = q->moved_at != 0;
        if (was_moved) {
            set_offset(q, q->moved_offset, false);
            q->moved_at = 0; /* rebalance may take it back now */
            moved = true;
        }
        q->finished = true;
        bool still_owned = find_pq(c, q->topic, q->broker, q->qid) != NULL;
        /* A moved offset is stored even when it equals the last one persisted: the broker's
         * copy may have gone past it since, by an offset a pull carried. */
        bool store = !still_owned && (was_moved || q->offset != q->persisted);
        offset_todo_t t = {cm_strdup(q->topic), cm_strdup(q->broker), q->qid,
                           store ? q->offset : -1};
        bool unlock = c->orderly && !c->broadcasting && !still_owned;
        q->persisted = q->offset;
        pthread_mutex_unlock(&c->mu);
        finish_queue(c, &t, unlock);
        cm_free(t.topic);
        cm_free(t.broker);
    }
    if (moved) kick(c, true); /* rebalance takes the queue back */
    return next;
}

/* ================================================================ backtracking */

/* Moves q (owned, or already leaving) to offset as PULL_OFFSET_MOVED does, without the wait:
 * once no consume job uses it, bury() stores offset and rebalance takes the queue back,
 * pulling from there. What was fetched and not consumed is dropped. Caller holds mu. */
static void move_queue(rmq_push_consumer_t *c, pq_t *q, int64_t offset, int64_t now) {
    q->moved_at = now;
    q->moved_offset = offset;
    for (size_t i = 0; i < c->pq_count; i++)
        if (c->pqs[i] == q) drop_pq(c, i);
}

/* Service thread: applies the offsets brokers reset (RESET_CONSUMER_CLIENT_OFFSET), as
 * Java's MQClientInstance.resetOffset does for a push consumer: the queues' cached messages
 * are dropped and consumption continues from the new offsets. */
static void apply_resets(rmq_push_consumer_t *c) {
    int64_t now = cm_mono_ms();
    pthread_mutex_lock(&c->mu);
    if (c->resets.count == 0) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    for (size_t k = 0; k < c->resets.count; k++) {
        const client_offset_t *e = &c->resets.items[k];
        cm_debug(&c->log, "consumer %s: offset of %s@%s:%d reset to %lld", c->cg.group, e->topic,
                 e->broker_name, (int)e->queue_id, (long long)e->offset);
        bool held = false;
        pq_t *q = find_pq(c, e->topic, e->broker_name, e->queue_id);
        if (q) {
            move_queue(c, q, e->offset, now);
            held = true;
        }
        for (size_t i = 0; i < c->grave_count; i++) {
            pq_t *g = c->grave[i];
            if (g->finished || !pq_is(g, e->topic, e->broker_name, e->queue_id)) continue;
            move_queue(c, g, e->offset, now); /* its final offset must not undo the reset */
            held = true;
        }
        if (!held && c->broadcasting) { /* clustering: the broker stored it already */
            client_offtab_put(&c->offtab, e->topic, e->broker_name, e->queue_id, e->offset);
            c->offtab_dirty = true;
        }
    }
    cm_info(&c->log, "consumer %s: %zu queue offsets reset by a broker", c->cg.group,
            c->resets.count);
    client_offtab_free(&c->resets);
    if (c->broadcasting) save_offfile(c);
    pthread_mutex_unlock(&c->mu);
}

/* ================================================================ orderly locks */

/* The distinct brokers of mqs, and the queues of one of them. */
static void brokers_of(const proto_mq_list_t *mqs, proto_strlist_t *brokers) {
    for (size_t i = 0; i < mqs->count; i++) {
        bool seen = false;
        for (size_t b = 0; b < brokers->count && !seen; b++)
            seen = strcmp(brokers->items[b], mqs->items[i].broker_name) == 0;
        if (!seen) proto_strlist_add(brokers, mqs->items[i].broker_name);
    }
}

static void queues_on(const proto_mq_list_t *mqs, const char *broker, proto_mq_list_t *out) {
    for (size_t i = 0; i < mqs->count; i++)
        if (strcmp(mqs->items[i].broker_name, broker) == 0)
            proto_mq_list_add(out, mqs->items[i].topic, broker, mqs->items[i].queue_id);
}

static bool granted_has(const proto_mq_list_t *granted, const pq_t *q) {
    for (size_t g = 0; g < granted->count; g++)
        if (pq_is(q, granted->items[g].topic, granted->items[g].broker_name,
                  granted->items[g].queue_id))
            return true;
    return false;
}

/* Records a LOCK_BATCH_MQ answer for the queues asked (granted ones are locked now, the others
 * are not) and starts consuming what waited for a lock. */
static void apply_locks(rmq_push_consumer_t *c, const proto_mq_list_t *asked,
                        const proto_mq_list_t *granted) {
    int64_t now = cm_mono_ms();
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < asked->count; i++) {
        const proto_mq_t *m = &asked->items[i];
        pq_t *q = find_pq(c, m->topic, m->broker_name, m->queue_id);
        if (!q) continue;
        q->locked = granted_has(granted, q);
        if (!q->locked) continue;
        q->lock_at = now;
        if (!q->consuming && q->msgs.cached > 0) post_orderly(c, q);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Locks owned queues (renew: all of them, else only those not locked), one LOCK_BATCH_MQ per
 * broker (RebalanceImpl.lockAll). */
static void lock_queues(rmq_push_consumer_t *c, bool renew) {
    proto_mq_list_t want = {0};
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->pq_count; i++)
        if (renew || !c->pqs[i]->locked)
            proto_mq_list_add(&want, c->pqs[i]->topic, c->pqs[i]->broker, c->pqs[i]->qid);
    pthread_mutex_unlock(&c->mu);
    proto_strlist_t brokers = {0};
    brokers_of(&want, &brokers);
    for (size_t b = 0; b < brokers.count; b++) {
        proto_mq_list_t mqs = {0}, granted = {0};
        queues_on(&want, brokers.items[b], &mqs);
        rmq_err_t err = lock_call(c, true, &mqs, &granted);
        if (err)
            cm_debug(&c->log, "consumer %s: lock on %s: %s", c->cg.group, brokers.items[b],
                     rmq_err_str(err));
        else
            apply_locks(c, &mqs, &granted);
        proto_mq_list_free(&mqs);
        proto_mq_list_free(&granted);
    }
    proto_strlist_free(&brokers);
    proto_mq_list_free(&want);
}

/* Unlocks every owned queue (shutdown). */
static void unlock_all(rmq_push_consumer_t *c) {
    proto_mq_list_t held = {0};
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->pq_count; i++)
        if (c->pqs[i]->locked)
            proto_mq_list_add(&held, c->pqs[i]->topic, c->pqs[i]->broker, c->pqs[i]->qid);
    pthread_mutex_unlock(&c->mu);
    proto_strlist_t brokers = {0};
    brokers_of(&held, &brokers);
    for (size_t b = 0; b < brokers.count; b++) {
        proto_mq_list_t mqs = {0};
        queues_on(&held, brokers.items[b], &mqs);
        lock_call(c, false, &mqs, NULL);
        proto_mq_list_free(&mqs);
    }
    proto_strlist_free(&brokers);
    proto_mq_list_free(&held);
}

/* ================================================================ rebalance */

static bool moving(rmq_push_consumer_t *c, const proto_mq_t *m) {
    for (size_t i = 0; i < c->grave_count; i++)
        if (c->grave[i]->moved_at && pq_is(c->grave[i], m->topic, m->broker_name, m->queue_id))
            return true;
    return false;
}

/* RebalanceImpl.rebalanceByTopic + updateProcessQueueTableInRebalance. */
static void rebalance(rmq_push_consumer_t *c) {
    pthread_mutex_lock(&c->mu);
    proto_strlist_t topics = {0};
    client_subs_topics(&c->subs, &topics);
    pthread_mutex_unlock(&c->mu);
    for (size_t t = 0; t < topics.count; t++) {
        proto_mq_list_t mine = {0};
        rmq_err_t err = c->broadcasting ? client_cg_topic_queues(&c->cg, topics.items[t], &mine)
                                        : client_cg_share(&c->cg, topics.items[t], &mine);
        if (err) {
            cm_debug(&c->log, "consumer %s: rebalance of %s: %s", c->cg.group, topics.items[t],
                     rmq_err_str(err));
            proto_mq_list_free(&mine);
            if (err == RMQ_ERR_STATE) client_instance_heartbeat(c->cg.ci); /* not listed */
            continue;
        }
        pthread_mutex_lock(&c->mu);
        for (size_t i = c->pq_count; i-- > 0;) {
            pq_t *q = c->pqs[i];
            if (strcmp(q->topic, topics.items[t]) != 0) continue;
            bool keep = false;
            for (size_t k = 0; k < mine.count && !keep; k++)
                keep = mine.items[k].queue_id == q->qid &&
                       strcmp(mine.items[k].broker_name, q->broker) == 0;
            if (!keep) drop_pq(c, i);
        }
        for (size_t k = 0; k < mine.count; k++) {
            const proto_mq_t *m = &mine.items[k];
            if (find_pq(c, m->topic, m->broker_name, m->queue_id) || moving(c, m)) continue;
            c->pqs = cm_realloc(c->pqs, (c->pq_count + 1) * sizeof *c->pqs);
            c->pqs[c->pq_count++] = pq_new(m->topic, m->broker_name, m->queue_id);
        }
        pthread_mutex_unlock(&c->mu);
        proto_mq_list_free(&mine);
    }
    proto_strlist_free(&topics);
}

/* ================================================================ the service thread */

/* Posts local retries and orderly resumptions that are due. Returns the earliest time one
 * waiting is due (0: none). */
static int64_t post_due(rmq_push_consumer_t *c) {
    int64_t now = cm_mono_ms(), next = 0;
    pthread_mutex_lock(&c->mu);
    for (job_t **p = &c->later; *p;) {
        job_t *j = *p;
        if (j->at > now && !j->pq->dropped) {
            if (!next || j->at < next) next = j->at;
            p = &j->next;
            continue;
        }
        *p = j->next;
        if (!j->pq->dropped) post_concurrent(c, j->pq, j->msgs, j->n);
        pq_unref(j->pq);
        cm_free(j);
    }
    for (size_t i = 0; i < c->pq_count; i++) {
        pq_t *q = c->pqs[i];
        if (!q->resume_at || q->jobs > 0) continue;
        if (q->resume_at > now) {
            if (!next || q->resume_at < next) next = q->resume_at;
            continue;
        }
        q->resume_at = 0;
        q->consuming = false;
        if (q->msgs.cached > 0 && lock_valid(c, q, now)) post_orderly(c, q);
    }
    pthread_mutex_unlock(&c->mu);
    return next;
}

static bool any_unlocked(rmq_push_consumer_t *c) {
    pthread_mutex_lock(&c->mu);
    bool any = false;
    for (size_t i = 0; i < c->pq_count && !any; i++)
        any = !c->pqs[i]->locked;
    pthread_mutex_unlock(&c->mu);
    return any;
}

static int64_t earliest(int64_t a, int64_t b) {
    return b && b < a ? b : a;
}

static void *service_thread(void *arg) {
    rmq_push_consumer_t *c = arg;
    client_pool_defer_here(c->pool);
    bool locking = c->orderly && !c->broadcasting;
    int64_t now = cm_mono_ms(), next_rebalance = 0, next_persist = now + c->persist_ms,
            next_lock = now + LOCK_INTERVAL_MS, next_lock_retry = 0, wake = 0;
    for (;;) {
        bool stop, rebalance_now;
        client_done_t *list = client_mailbox_wait(c->mb, wake, &stop, &rebalance_now);
        for (client_done_t *d = list, *n; d; d = n) {
            n = d->next;
            if (stop) { /* the queue may already be gone from every list: just let go */
                pthread_mutex_lock(&c->mu);
                pq_t *q = d->tag;
                q->pulling = false;
                pq_unref(q);
                pthread_mutex_unlock(&c->mu);
            } else {
                apply_pull(c, d);
            }
            client_done_free(d);
        }
        client_pool_release(c->pool); /* the pulled messages' listener calls */
        if (stop) break;

        apply_resets(c);
        now = cm_mono_ms();
        if (rebalance_now || now >= next_rebalance) {
            rebalance(c);
            next_rebalance = cm_mono_ms() + c->rebalance_ms;
            next_lock_retry = 0;
        }
        if (locking && cm_mono_ms() >= next_lock) {
            lock_queues(c, true);
            next_lock = cm_mono_ms() + LOCK_INTERVAL_MS;
        } else if (locking && cm_mono_ms() >= next_lock_retry && any_unlocked(c)) {
            lock_queues(c, false);
            next_lock_retry = cm_mono_ms() + LOCK_RETRY_MS;
        }
        int64_t pull_due = pull_round(c);
        int64_t later_due = post_due(c);
        int64_t moved_due = bury(c);
        if (cm_mono_ms() >= next_persist) {
            persist_all(c, false);
            next_persist = cm_mono_ms() + c->persist_ms;
        }
        client_pool_release(c->pool); /* local retries that fell due */
        now = cm_mono_ms();
        wake = earliest(now + 1000, next_rebalance);
        wake = earliest(wake, next_persist);
        if (locking) wake = earliest(wake, next_lock);
        wake = earliest(wake, pull_due);
        wake = earliest(wake, later_due);
        wake = earliest(wake, moved_due);
    }
    return NULL;
}

/* ================================================================ instance hooks */

static void hook_heartbeat(void *opaque, proto_consumer_data_t *d) {
    rmq_push_consumer_t *c = opaque;
    d->group_name = cm_strdup(c->cg.group);
    d->consume_type = PROTO_CONSUME_PASSIVELY;
    d->message_model = c->broadcasting ? PROTO_BROADCASTING : PROTO_CLUSTERING;
    d->consume_from_where = c->cg.from;
    pthread_mutex_lock(&c->mu);
    client_subs_to_heartbeat(&c->subs, d);
    pthread_mutex_unlock(&c->mu);
}

static void hook_ids_changed(void *opaque) {
    kick(opaque, true);
}

/* Loop thread: queues the reset offsets of topic for the service thread. */
static void hook_reset_offset(void *opaque, const char *topic, const uint8_t *body, size_t len) {
    rmq_push_consumer_t *c = opaque;
    client_offtab_t tab = CLIENT_OFFTAB_INIT;
    char why[256];
    if (client_offfile_decode((const char *)body, len, &tab, why, sizeof why) != RMQ_OK) {
        cm_warn(&c->log, "consumer %s: offset reset of %s ignored: %s", c->cg.group, topic, why);
        return;
    }
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < tab.count; i++) {
        const client_offset_t *e = &tab.items[i];
        if (strcmp(e->topic, topic) == 0 && client_subs_find(&c->subs, topic))
            client_offtab_put(&c->resets, e->topic, e->broker_name, e->queue_id, e->offset);
    }
    pthread_mutex_unlock(&c->mu);
    client_offtab_free(&tab);
    kick(c, false);
}

/* ================================================================ consume directly */

/* An admin's CONSUME_MESSAGE_DIRECTLY (the dashboard's resend), waiting for a consume thread. */
typedef struct direct_job {
    rmq_push_consumer_t *c;
    net_conn_t *conn; /* the broker that relayed it (a reference) */
    proto_cmd_t req;
} direct_job_t;

/* CMResult's name for what the listener returned (ConsumeMessage*Service.consumeMessageDirectly:
 * orderly SUSPEND_CURRENT_QUEUE_A_MOMENT is CR_LATER too). */
static const char *direct_result_name(rmq_consume_status_t st) {
    switch (st) {
    case RMQ_CONSUME_SUCCESS:
        return "CR_SUCCESS";
    case RMQ_CONSUME_RECONSUME_LATER:
    case RMQ_CONSUME_SUSPEND:
        return "CR_LATER";
    }
    return "CR_RETURN_NULL"; /* no status Java knows, as a listener returning null */
}

/* Runs the listener once with the job's message. Nothing else is touched: no process queue,
 * no offset, no send-back — RocketMQ does not acknowledge a direct consumption either. */
static rmq_err_t consume_directly(rmq_push_consumer_t *c, direct_job_t *job, cm_buf_t *json) {
    proto_consume_direct_req_t h;
    proto_record_t rec;
    rmq_msg_t *msg = NULL;
    if (proto_consume_direct_req_decode(&job->req.ext, &h, NULL) != RMQ_OK ||
        proto_record_decode(job->req.body, job->req.body_len, false, &rec) != RMQ_OK ||
        proto_msg_from_record(&rec, CLIENT_MAX_PULLED_BODY, &msg) != RMQ_OK)
        return RMQ_ERR_MALFORMED;
    rmq_mq_t mq = {.queue_id = msg->queue_id};
    cm_strcpy_cut(mq.topic, sizeof mq.topic, msg->topic);
    cm_strcpy_cut(mq.broker_name, sizeof mq.broker_name, h.broker_name ? h.broker_name : "");
    restore_retry_topic(c, msg);
    rmq_consume_ctx_t ctx = {&mq, 0, 0, c->orderly_suspend_ms};
    cm_info(&c->log, "consumer %s: consuming message %s directly, as an admin asked", c->cg.group,
            h.msg_id ? h.msg_id : "");
    int64_t began = cm_mono_ms();
    const rmq_msg_t *one[1] = {msg};
    rmq_consume_status_t st = c->cb(one, 1, &ctx, c->opaque);
    proto_consume_direct_result_encode(c->orderly, direct_result_name(st), cm_mono_ms() - began,
                                       json);
    rmq_msg_destroy(msg);
    return RMQ_OK;
}

/* Consume thread: answers the job — the listener's verdict, or SYSTEM_ERROR when the
 * consumer is stopping (the pool runs what is queued once more while it is destroyed) or the
 * message does not decode. */
static void run_direct(void *arg) {
    direct_job_t *job = arg;
    rmq_push_consumer_t *c = job->c;
    pthread_mutex_lock(&c->mu);
    bool running = c->state == STATE_STARTED;
    pthread_mutex_unlock(&c->mu);
    cm_buf_t json = CM_BUF_INIT;
    rmq_err_t err = running ? consume_directly(c, job, &json) : RMQ_ERR_SHUTDOWN;
    proto_cmd_t resp;
    if (err) {
        char remark[128];
        snprintf(remark, sizeof remark, "consumer group <%s>: %s", c->cg.group,
                 err == RMQ_ERR_SHUTDOWN ? "the consumer is shutting down"
                                         : "the message does not decode");
        proto_cmd_response(&resp, &job->req, RMQ_ERR_SYSTEM_ERROR, remark);
    } else {
        proto_cmd_response(&resp, &job->req, RMQ_OK, NULL);
        proto_cmd_take_body(&resp, json.data, json.len);
    }
    if (!proto_cmd_is_oneway(&job->req)) net_conn_send(job->conn, &resp);
    proto_cmd_free(&resp);
    net_conn_unref(job->conn);
    proto_cmd_free(&job->req);
    cm_free(job);
}

/* Loop thread, instance lock held: takes the request to the consume pool while the consumer
 * runs. destroy sets STOPPING under mu before it destroys the pool, which runs every job
 * already queued: each is answered before the pool, the instance or the connection goes. */
static bool hook_consume_directly(void *opaque, net_conn_t *conn, proto_cmd_t *req) {
    rmq_push_consumer_t *c = opaque;
    direct_job_t *job = cm_calloc(1, sizeof *job);
    job->c = c;
    job->conn = net_conn_ref(conn);
    job->req = *req; /* a shallow copy until the pool has it */
    pthread_mutex_lock(&c->mu);
    bool taken = c->state == STATE_STARTED && client_pool_post(c->pool, run_direct, job) == RMQ_OK;
    if (taken) proto_cmd_init(req);
    pthread_mutex_unlock(&c->mu);
    if (!taken) {
        net_conn_unref(job->conn);
        cm_free(job);
    }
    return taken;
}

/* ================================================================ public API */

const rmq_mq_t *rmq_consume_ctx_queue(const rmq_consume_ctx_t *ctx) {
    return ctx ? ctx->mq : NULL;
}

void rmq_consume_ctx_set_ack_index(rmq_consume_ctx_t *ctx, int index) {
    if (ctx) ctx->ack_index = index;
}

void rmq_consume_ctx_set_delay_level(rmq_consume_ctx_t *ctx, int level) {
    if (ctx) ctx->delay_level = level;
}

void rmq_consume_ctx_set_suspend_ms(rmq_consume_ctx_t *ctx, int64_t ms) {
    if (ctx) ctx->suspend_ms = ms;
}

static void read_settings(rmq_push_consumer_t *c, const rmq_conf_t *conf) {
    c->threads = (int)cm_conf_int(conf, "consumeThreadMin", false);
    c->batch_max = (int)cm_conf_int(conf, "consumeMessageBatchMaxSize", false);
    c->pull_batch = (int)cm_conf_int(conf, "pullBatchSize", false);
    c->threshold = cm_conf_int(conf, "pullThresholdForQueue", false);
    c->threshold_bytes = cm_conf_int(conf, "pullThresholdSizeForQueue", false) << 20;
    c->topic_threshold = cm_conf_int(conf, "pullThresholdForTopic", false);
    c->topic_threshold_bytes = cm_conf_int(conf, "pullThresholdSizeForTopic", false);
    if (c->topic_threshold_bytes > 0) c->topic_threshold_bytes <<= 20;
    c->max_span = cm_conf_int(conf, "consumeConcurrentlyMaxSpan", false);
    c->pull_interval = cm_conf_int(conf, "pullInterval", false);
    c->max_reconsume = (int)cm_conf_int(conf, "maxReconsumeTimes", false);
    c->orderly_suspend_ms = cm_conf_int(conf, "suspendCurrentQueueTimeMillis", false);
    c->broker_suspend_ms = cm_conf_int(conf, "brokerSuspendMaxTimeMillis", false);
    c->pull_timeout_ms = cm_conf_int(conf, "consumerTimeoutMillisWhenSuspend", false);
    if (c->pull_timeout_ms <= c->broker_suspend_ms)
        c->pull_timeout_ms = c->broker_suspend_ms + 5000;
    c->persist_ms = cm_conf_int(conf, "persistConsumerOffsetInterval", false);
    c->rebalance_ms = cm_conf_int(conf, "rebalanceWaitInterval", false);
}

rmq_push_consumer_t *rmq_push_consumer_new(rmq_conf_t *conf, char *errstr, size_t errstr_size) {
    if (!conf) {
        cm_errstr(errstr, errstr_size, "no configuration");
        return NULL;
    }
    client_cg_t cg;
    if (!client_cg_init(&cg, conf, errstr, errstr_size)) return NULL;
    int64_t tmin = cm_conf_int(conf, "consumeThreadMin", false),
            tmax = cm_conf_int(conf, "consumeThreadMax", false);
    if (tmin > tmax) {
        cm_errstr(errstr, errstr_size,
                  "consumeThreadMin (%lld) is larger than consumeThreadMax "
                  "(%lld)",
                  (long long)tmin, (long long)tmax);
        return NULL;
    }
    rmq_push_consumer_t *c = cm_calloc(1, sizeof *c);
    c->conf = conf;
    c->cg = cg;
    c->log = cm_conf_logger(conf);
    c->broadcasting = strcmp(cm_conf_str(conf, "messageModel", false), "BROADCASTING") == 0;
    read_settings(c, conf);
    if (!c->broadcasting) c->retry_topic = cm_sprintf("%s%s", CLIENT_RETRY_PREFIX, cg.group);
    pthread_mutex_init(&c->mu, NULL);
    c->mb = client_mailbox_new();
    return c;
}

rmq_err_t rmq_push_consumer_subscribe(rmq_push_consumer_t *c, const char *topic,
                                      const char *expression) {
    if (!c || !topic) return RMQ_ERR_INVALID_ARG;
    if (client_check_topic(topic, NULL, 0) != RMQ_OK) return RMQ_ERR_BAD_TOPIC;
    pthread_mutex_lock(&c->mu);
    rmq_err_t err = c->state != STATE_NEW ? RMQ_ERR_STATE : RMQ_OK;
    if (!err) client_subs_put(&c->subs, topic, expression);
    pthread_mutex_unlock(&c->mu);
    return err;
}

static rmq_err_t set_cb(rmq_push_consumer_t *c, rmq_consume_cb_t *cb, void *opaque, bool orderly) {
    if (!c || !cb) return RMQ_ERR_INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    rmq_err_t err =
        c->state != STATE_NEW || (c->cb && c->orderly != orderly) ? RMQ_ERR_STATE : RMQ_OK;
    if (!err) {
        c->cb = cb;
        c->opaque = opaque;
        c->orderly = orderly;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

rmq_err_t rmq_push_consumer_set_listener(rmq_push_consumer_t *c, rmq_consume_cb_t *cb,
                                         void *opaque) {
    return set_cb(c, cb, opaque, false);
}

rmq_err_t rmq_push_consumer_set_orderly_listener(rmq_push_consumer_t *c, rmq_consume_cb_t *cb,
                                                 void *opaque) {
    return set_cb(c, cb, opaque, true);
}

/* Broadcasting: reads the offsets file (LocalFileOffsetStore.load). */
static rmq_err_t load_offfile(rmq_push_consumer_t *c, char *errstr, size_t errstr_size) {
    c->offfile = client_offfile_path(c->conf, client_instance_id(c->cg.ci), c->cg.group);
    char why[512];
    rmq_err_t err = client_offfile_load(c->offfile, &c->offtab, NULL, why, sizeof why);
    if (err) {
        cm_errstr(errstr, errstr_size, "consumer %s: offsets file %s: %s", c->cg.group, c->offfile,
                  why);
        return RMQ_ERR_IO;
    }
    if (*why) cm_warn(&c->log, "consumer %s: %s", c->cg.group, why);
    return RMQ_OK;
}

/* Undoes what start did so far (the instance and pool, if set). */
static void unstart(rmq_push_consumer_t *c, bool registered) {
    if (registered) client_instance_unregister_consumer(c->cg.ci, c->cg.group);
    if (c->cg.ci) client_instance_release(c->cg.ci);
    c->cg.ci = NULL;
    client_pool_destroy(c->pool);
    c->pool = NULL;
    client_offtab_free(&c->offtab);
    client_offtab_free(&c->resets);
    cm_free(c->offfile);
    c->offfile = NULL;
}

rmq_err_t rmq_push_consumer_start(rmq_push_consumer_t *c, char *errstr, size_t errstr_size) {
    if (!c) return RMQ_ERR_INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    const char *why = c->state != STATE_NEW ? "is already started"
                      : !c->cb              ? "has no listener"
                      : c->subs.count == 0  ? "has no subscription"
                                            : NULL;
    if (!why && c->retry_topic) client_subs_put(&c->subs, c->retry_topic, "*");
    pthread_mutex_unlock(&c->mu);
    if (why) {
        cm_errstr(errstr, errstr_size, "push consumer %s %s", c->cg.group, why);
        return RMQ_ERR_STATE;
    }
    rmq_err_t err = RMQ_OK;
    c->pool = client_pool_new(c->threads, &err);
    if (!c->pool) {
        cm_errstr(errstr, errstr_size, "consumer %s cannot start its consume threads", c->cg.group);
        return RMQ_ERR_IO;
    }
    c->cg.ci = client_instance_get(c->conf, errstr, errstr_size);
    if (!c->cg.ci) {
        unstart(c, false);
        return RMQ_ERR_IO;
    }
    if (c->broadcasting && (err = load_offfile(c, errstr, errstr_size)) != RMQ_OK) {
        unstart(c, false);
        return err;
    }
    static const client_consumer_hooks_t hooks = {hook_heartbeat, hook_ids_changed,
                                                  hook_reset_offset, hook_consume_directly};
    if (client_instance_register_consumer(c->cg.ci, c->cg.group, &hooks, c) != RMQ_OK) {
        cm_errstr(errstr, errstr_size, "consumer group %s is already started on client instance %s",
                  c->cg.group, client_instance_id(c->cg.ci));
        unstart(c, false);
        return RMQ_ERR_STATE;
    }
    pthread_mutex_lock(&c->mu);
    proto_strlist_t topics = {0};
    client_subs_topics(&c->subs, &topics);
    pthread_mutex_unlock(&c->mu);
    client_cg_announce(&c->cg, &topics); /* so the first heartbeat reaches every broker */
    proto_strlist_free(&topics);
    pthread_mutex_lock(&c->mu);
    c->state = STATE_STARTED;
    pthread_mutex_unlock(&c->mu);
    kick(c, true); /* the first rebalance at once */
    if (pthread_create(&c->thread, NULL, service_thread, c) != 0) {
        cm_errstr(errstr, errstr_size, "consumer %s cannot start its service thread", c->cg.group);
        pthread_mutex_lock(&c->mu);
        c->state = STATE_NEW;
        pthread_mutex_unlock(&c->mu);
        unstart(c, true);
        return RMQ_ERR_IO;
    }
    c->thread_started = true;
    cm_info(&c->log, "push consumer %s (%s, %s) started on client %s", c->cg.group,
            c->broadcasting ? "broadcasting" : "clustering",
            c->orderly ? "orderly" : "concurrently", client_instance_id(c->cg.ci));
    return RMQ_OK;
}

/* Frees every queue, graveyard entry and local retry. Only once nothing else runs. */
static void free_queues(rmq_push_consumer_t *c) {
    for (job_t *j = c->later, *n; j; j = n) {
        n = j->next;
        pq_unref(j->pq);
        cm_free(j);
    }
    c->later = NULL;
    for (size_t i = 0; i < c->pq_count; i++) {
        c->pqs[i]->refs = 1; /* pulls still in flight will find a closed mailbox */
        pq_unref(c->pqs[i]);
    }
    for (size_t i = 0; i < c->grave_count; i++) {
        c->grave[i]->refs = 1;
        pq_unref(c->grave[i]);
    }
    cm_free(c->pqs);
    cm_free(c->grave);
}

void rmq_push_consumer_destroy(rmq_push_consumer_t *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    bool started = c->state == STATE_STARTED;
    c->state = STATE_STOPPING;
    pthread_mutex_unlock(&c->mu);
    client_mailbox_kick(c->mb, false, true);
    if (c->thread_started) pthread_join(c->thread, NULL);
    /* Jobs not begun return at once; running listener calls are waited for. */
    client_pool_destroy(c->pool);
    if (started) {
        persist_all(c, true);
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < c->grave_count; i++) { /* leaving queues' last offsets too */
            pq_t *q = c->grave[i];
            if (q->moved_at) set_offset(q, q->moved_offset, false);
            /* a moved offset is stored even when persisted before: see bury() */
            if (q->offset >= 0 && (q->moved_at || q->offset != q->persisted) &&
                !find_pq(c, q->topic, q->broker, q->qid)) {
                offset_todo_t t = {q->topic, q->broker, q->qid, q->offset};
                q->persisted = q->offset;
                pthread_mutex_unlock(&c->mu);
                finish_queue(c, &t, false);
                pthread_mutex_lock(&c->mu);
            }
        }
        pthread_mutex_unlock(&c->mu);
        if (c->orderly && !c->broadcasting) unlock_all(c);
        client_instance_unregister_consumer(c->cg.ci, c->cg.group);
    }
    client_mailbox_close(c->mb); /* pulls still in flight find it closed */
    if (c->cg.ci) client_instance_release(c->cg.ci);
    free_queues(c);
    client_subs_free(&c->subs);
    client_offtab_free(&c->offtab);
    client_offtab_free(&c->resets);
    cm_free(c->offfile);
    cm_free(c->retry_topic);
    pthread_mutex_destroy(&c->mu);
    rmq_conf_destroy(c->conf);
    cm_free(c);
}
