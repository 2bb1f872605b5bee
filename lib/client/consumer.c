/* The pull consumer (include/rmq/consumer.h), shaped as RocketMQ 4.9.8's lite pull consumer:
 * one pull thread per consumer keeps one long-polling PULL_MESSAGE in flight per owned queue
 * and fills a buffer that poll() drains; rebalance, offset look-ups and commits run on that
 * thread too (client.md §4, §5, §7, §8). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <rmq/consumer.h>

#include "alloc.h"
#include "client.h"

#define RETRY_ON_ERROR_MS 3000 /* PULL_TIME_DELAY_MILLS_ON_EXCEPTION */
#define RETRY_ON_FLOW_MS 20    /* ..._WHEN_BROKER_FLOW_CONTROL */

enum { STATE_NEW, STATE_STARTED, STATE_STOPPING };

/* One owned queue. Freed only under mu, and never while a pull for it is outstanding (a
 * dropped queue with pulls outstanding waits in the graveyard for their answers). */
typedef struct pq {
    char *topic, *broker;
    int32_t qid;
    int64_t pull_offset; /* next offset to pull; -1: to be looked up */
    int64_t consumed;    /* next offset to consume (what a commit stores); -1: none yet */
    int64_t committed;   /* what the broker has; -1: unknown */
    uint32_t epoch;      /* bumped by a seek: older pull answers are dropped */
    int outstanding;     /* pulls sent whose answer was not applied yet (any epoch) */
    bool inflight;       /* a pull of the current epoch is outstanding */
    bool dropped;        /* no longer owned; freed when outstanding reaches 0 */
    int buffered;        /* messages of this queue waiting for poll */
    int64_t retry_at;    /* mono ms before which it is not pulled or looked up */
} pq_t;

typedef struct ready {
    rmq_msg_t *msg;
    pq_t *pq;
} ready_t;

struct rmq_pull_consumer_s {
    rmq_conf_t *conf;
    client_cg_t cg; /* group, instance (once started) and offset settings */
    cm_logger_t log;
    int64_t suspend_ms, rpc_suspend_ms, commit_ms, rebalance_ms;
    int batch, threshold;
    bool auto_commit;
    client_mailbox_t *mb;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t ready_cv;
    int state;
    bool assigned_by_hand, hb_needed;
    client_subs_t subs;
    pq_t **pqs, **grave;
    size_t pq_count, grave_count;
    ready_t *ready;
    size_t ready_head, ready_count, ready_cap; /* entries [head, count) */
};

/* ================================================================ small helpers */

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_mono_ms) {
    struct timespec ts = cm_mono_deadline(deadline_mono_ms - cm_mono_ms());
    pthread_cond_timedwait(cv, mu, &ts);
}

static void kick(rmq_pull_consumer_t *c, bool rebalance) {
    client_mailbox_kick(c->mb, rebalance, false);
}

static void mq_fill(rmq_mq_t *out, const char *topic, const char *broker, int32_t qid) {
    memset(out, 0, sizeof *out);
    cm_strcpy_cut(out->topic, sizeof out->topic, topic);
    cm_strcpy_cut(out->broker_name, sizeof out->broker_name, broker);
    out->queue_id = qid;
}

static pq_t *find_pq(rmq_pull_consumer_t *c, const char *topic, const char *broker, int32_t qid) {
    for (size_t i = 0; i < c->pq_count; i++) {
        pq_t *q = c->pqs[i];
        if (q->qid == qid && strcmp(q->topic, topic) == 0 && strcmp(q->broker, broker) == 0)
            return q;
    }
    return NULL;
}

static pq_t *pq_new(const char *topic, const char *broker, int32_t qid) {
    pq_t *q = cm_calloc(1, sizeof *q);
    q->topic = cm_strdup(topic);
    q->broker = cm_strdup(broker);
    q->qid = qid;
    q->pull_offset = q->consumed = q->committed = -1;
    return q;
}

static void pq_free(pq_t *q) {
    cm_free(q->topic);
    cm_free(q->broker);
    cm_free(q);
}

/* Drops q's messages waiting for poll. Caller holds mu. */
static void drop_ready(rmq_pull_consumer_t *c, pq_t *q) {
    size_t w = c->ready_head;
    for (size_t r = c->ready_head; r < c->ready_count; r++) {
        if (c->ready[r].pq == q)
            rmq_msg_destroy(c->ready[r].msg);
        else
            c->ready[w++] = c->ready[r];
    }
    c->ready_count = w;
    q->buffered = 0;
}

/* Removes the queue at index i. Caller holds mu. */
static void remove_pq(rmq_pull_consumer_t *c, size_t i) {
    pq_t *q = c->pqs[i];
    drop_ready(c, q);
    c->pqs[i] = c->pqs[--c->pq_count];
    if (q->outstanding > 0) {
        q->dropped = true;
        c->grave = cm_realloc(c->grave, (c->grave_count + 1) * sizeof *c->grave);
        c->grave[c->grave_count++] = q;
    } else {
        pq_free(q);
    }
}

/* One outstanding pull of q is over: frees q if it was dropped and this was the last.
 * Returns false when q is gone. Caller holds mu. */
static bool pull_over(rmq_pull_consumer_t *c, pq_t *q) {
    q->outstanding--;
    if (!q->dropped) return true;
    if (q->outstanding > 0) return false;
    for (size_t i = 0; i < c->grave_count; i++)
        if (c->grave[i] == q) {
            c->grave[i] = c->grave[--c->grave_count];
            break;
        }
    pq_free(q);
    return false;
}

static void add_pq(rmq_pull_consumer_t *c, pq_t *q) {
    c->pqs = cm_realloc(c->pqs, (c->pq_count + 1) * sizeof *c->pqs);
    c->pqs[c->pq_count++] = q;
}

static void push_ready(rmq_pull_consumer_t *c, rmq_msg_t *m, pq_t *q) {
    if (c->ready_head > 0 && c->ready_count == c->ready_cap) {
        memmove(c->ready, c->ready + c->ready_head,
                (c->ready_count - c->ready_head) * sizeof *c->ready);
        c->ready_count -= c->ready_head;
        c->ready_head = 0;
    }
    if (c->ready_count == c->ready_cap) {
        c->ready_cap = c->ready_cap ? c->ready_cap * 2 : 64;
        c->ready = cm_realloc(c->ready, c->ready_cap * sizeof *c->ready);
    }
    c->ready[c->ready_count++] = (ready_t){m, q};
    q->buffered++;
}

/* ================================================================ broker calls */

/* ================================================================ commits */

typedef struct pending_commit {
    char *topic, *broker;
    int32_t qid;
    int64_t offset;
} pending_commit_t;

/* Commits every owned queue whose offset moved. The offsets are copied under mu and the
 * queues looked up again afterwards: a rebalance may drop one meanwhile. */
static rmq_err_t commit_all(rmq_pull_consumer_t *c) {
    pthread_mutex_lock(&c->mu);
    pending_commit_t *todo = cm_calloc(c->pq_count ? c->pq_count : 1, sizeof *todo);
    size_t k = 0;
    for (size_t i = 0; i < c->pq_count; i++) {
        pq_t *q = c->pqs[i];
        if (q->consumed < 0 || q->consumed == q->committed) continue;
        todo[k++] =
            (pending_commit_t){cm_strdup(q->topic), cm_strdup(q->broker), q->qid, q->consumed};
    }
    pthread_mutex_unlock(&c->mu);
    rmq_err_t first = RMQ_OK;
    for (size_t i = 0; i < k; i++) {
        rmq_err_t err = client_cg_update_committed(&c->cg, todo[i].topic, todo[i].broker,
                                                   todo[i].qid, todo[i].offset);
        if (err == RMQ_OK) {
            pthread_mutex_lock(&c->mu);
            pq_t *q = find_pq(c, todo[i].topic, todo[i].broker, todo[i].qid);
            if (q && q->committed < todo[i].offset) q->committed = todo[i].offset;
            pthread_mutex_unlock(&c->mu);
        } else {
            cm_warn(&c->log, "consumer %s: commit of %s@%s:%d: %s", c->cg.group, todo[i].topic,
                    todo[i].broker, (int)todo[i].qid, rmq_err_str(err));
            if (!first) first = err;
        }
        cm_free(todo[i].topic);
        cm_free(todo[i].broker);
    }
    cm_free(todo);
    return first;
}

/* ================================================================ pulls */

/* Sends a pull for q (which the caller marked inflight). Outside mu. */
static void send_pull(rmq_pull_consumer_t *c, const char *topic, const char *broker, int32_t qid,
                      int64_t offset, const char *expr, pq_t *q, uint32_t epoch) {
    proto_pull_req_t h;
    proto_pull_req_init(&h);
    h.topic = topic;
    h.bname = broker;
    h.queue_id = qid;
    h.queue_offset = offset;
    h.max_msg_nums = c->batch;
    h.sys_flag = PULL_FLAG_SUSPEND | PULL_FLAG_SUBSCRIPTION | PULL_FLAG_LITE_PULL;
    h.commit_offset = 0;
    h.suspend_timeout_millis = c->suspend_ms;
    h.subscription = expr;
    rmq_err_t err = client_cg_send_pull(&c->cg, &h, c->mb, c->rpc_suspend_ms, q, epoch);
    if (err) {
        cm_debug(&c->log, "consumer %s: pull of %s@%s:%d not sent: %s", c->cg.group, topic, broker,
                 (int)qid, rmq_err_str(err));
        pthread_mutex_lock(&c->mu);
        if (pull_over(c, q) && q->epoch == epoch) {
            q->inflight = false;
            q->retry_at = cm_mono_ms() + RETRY_ON_ERROR_MS;
        }
        pthread_mutex_unlock(&c->mu);
    }
}

/* Pull thread: applies one finished pull. */
static void apply_done(rmq_pull_consumer_t *c, client_done_t *d) {
    pthread_mutex_lock(&c->mu);
    pq_t *q = d->tag;
    if (!pull_over(c, q) || d->epoch != q->epoch) { /* dropped, or a seek came in between */
        pthread_mutex_unlock(&c->mu);
        return;
    }
    q->inflight = false;
    rmq_err_t err = d->err ? d->err : (rmq_err_t)d->resp.code;
    proto_pull_resp_t h;
    if (err == RMQ_OK || err == RMQ_ERR_PULL_NOT_FOUND || err == RMQ_ERR_PULL_RETRY_IMMEDIATELY ||
        err == RMQ_ERR_PULL_OFFSET_MOVED) {
        if (proto_pull_resp_decode(&d->resp.ext, &h, NULL) != RMQ_OK) {
            q->retry_at = cm_mono_ms() + RETRY_ON_ERROR_MS;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        if (err == RMQ_ERR_PULL_OFFSET_MOVED)
            cm_warn(&c->log, "consumer %s: offset %lld of %s@%s:%d is illegal; moving to %lld",
                    c->cg.group, (long long)q->pull_offset, q->topic, q->broker, (int)q->qid,
                    (long long)h.next_begin_offset);
        const client_sub_t *s = client_subs_find(&c->subs, q->topic);
        bool any = false;
        size_t pos = 0;
        rmq_msg_t *m;
        while (err == RMQ_OK && (m = client_next_pulled(&d->resp, &pos, s, q->broker))) {
            push_ready(c, m, q);
            any = true;
        }
        q->pull_offset = h.next_begin_offset;
        q->retry_at = 0;
        if (any) pthread_cond_broadcast(&c->ready_cv);
    } else {
        cm_debug(&c->log, "consumer %s: pull of %s@%s:%d: %s", c->cg.group, q->topic, q->broker,
                 (int)q->qid, rmq_err_str(err));
        q->retry_at = cm_mono_ms() + (err == 215 ? RETRY_ON_FLOW_MS : RETRY_ON_ERROR_MS);
    }
    pthread_mutex_unlock(&c->mu);
}

typedef struct todo_q {
    pq_t *pq;
    char *topic, *broker, *expr;
    int32_t qid;
    int64_t offset;
    uint32_t epoch;
} todo_q_t;

/* Pull thread: looks up start offsets and sends pulls for every queue that may go. Returns
 * the earliest retry time among waiting queues (0: none). */
static int64_t pull_round(rmq_pull_consumer_t *c) {
    int64_t now = cm_mono_ms(), next = 0;
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    todo_q_t *todo = cm_calloc(c->pq_count ? c->pq_count : 1, sizeof *todo);
    for (size_t i = 0; i < c->pq_count; i++) {
        pq_t *q = c->pqs[i];
        if (q->inflight || q->buffered >= c->threshold) continue;
        if (q->retry_at > now) {
            if (!next || q->retry_at < next) next = q->retry_at;
            continue;
        }
        const client_sub_t *s = client_subs_find(&c->subs, q->topic);
        todo[n++] = (todo_q_t){q,
                               cm_strdup(q->topic),
                               cm_strdup(q->broker),
                               cm_strdup(s ? s->expr : "*"),
                               q->qid,
                               q->pull_offset,
                               q->epoch};
        if (q->pull_offset >= 0) {
            q->inflight = true;
            q->outstanding++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        todo_q_t *t = &todo[i];
        if (t->offset >= 0) {
            send_pull(c, t->topic, t->broker, t->qid, t->offset, t->expr, t->pq, t->epoch);
        } else {
            int64_t off = -1;
            bool stored = false;
            rmq_err_t err =
                client_cg_start_offset(&c->cg, t->topic, t->broker, t->qid, &off, &stored);
            pthread_mutex_lock(&c->mu);
            pq_t *q = find_pq(c, t->topic, t->broker, t->qid);
            if (q == t->pq && q->epoch == t->epoch && q->pull_offset < 0) {
                if (err) {
                    cm_debug(&c->log, "consumer %s: start offset of %s@%s:%d: %s", c->cg.group,
                             t->topic, t->broker, (int)t->qid, rmq_err_str(err));
                    q->retry_at = cm_mono_ms() + RETRY_ON_ERROR_MS;
                } else {
                    q->pull_offset = q->consumed = off;
                    if (stored) q->committed = off;
                    q->retry_at = 0;
                    next = cm_mono_ms(); /* pull it at once */
                }
            }
            pthread_mutex_unlock(&c->mu);
        }
        cm_free(t->topic);
        cm_free(t->broker);
        cm_free(t->expr);
    }
    cm_free(todo);
    return next;
}

/* ================================================================ rebalance */

static void rebalance(rmq_pull_consumer_t *c) {
    pthread_mutex_lock(&c->mu);
    proto_strlist_t topics = {0};
    client_subs_topics(&c->subs, &topics);
    pthread_mutex_unlock(&c->mu);
    for (size_t t = 0; t < topics.count; t++) {
        proto_mq_list_t mine = {0};
        rmq_err_t err = client_cg_share(&c->cg, topics.items[t], &mine);
        if (err) {
            cm_debug(&c->log, "consumer %s: rebalance of %s: %s", c->cg.group, topics.items[t],
                     rmq_err_str(err));
            proto_mq_list_free(&mine);
            continue;
        }
        /* Queues leaving: commit their offsets first (autoCommit), as Java persists them. */
        if (c->auto_commit) commit_all(c);
        pthread_mutex_lock(&c->mu);
        for (size_t i = c->pq_count; i-- > 0;) {
            pq_t *q = c->pqs[i];
            if (strcmp(q->topic, topics.items[t]) != 0) continue;
            bool keep = false;
            for (size_t k = 0; k < mine.count && !keep; k++)
                keep = mine.items[k].queue_id == q->qid &&
                       strcmp(mine.items[k].broker_name, q->broker) == 0;
            if (!keep) remove_pq(c, i);
        }
        for (size_t k = 0; k < mine.count; k++)
            if (!find_pq(c, mine.items[k].topic, mine.items[k].broker_name, mine.items[k].queue_id))
                add_pq(c, pq_new(mine.items[k].topic, mine.items[k].broker_name,
                                 mine.items[k].queue_id));
        pthread_mutex_unlock(&c->mu);
        proto_mq_list_free(&mine);
    }
    proto_strlist_free(&topics);
}

/* ================================================================ the pull thread */

static void *pull_thread(void *arg) {
    rmq_pull_consumer_t *c = arg;
    int64_t next_rebalance = 0, next_commit = cm_mono_ms() + c->commit_ms, wake = 0;
    for (;;) {
        bool stop, rebalance_now;
        client_done_t *list = client_mailbox_wait(c->mb, wake, &stop, &rebalance_now);
        for (client_done_t *d = list, *n; d; d = n) {
            n = d->next;
            if (!stop) apply_done(c, d);
            client_done_free(d);
        }
        if (stop) break;

        pthread_mutex_lock(&c->mu);
        bool by_sub = !c->assigned_by_hand && c->subs.count > 0, hb = c->hb_needed;
        c->hb_needed = false;
        pthread_mutex_unlock(&c->mu);
        if (hb) client_instance_heartbeat(c->cg.ci);
        int64_t now = cm_mono_ms();
        if (by_sub && (rebalance_now || now >= next_rebalance)) {
            rebalance(c);
            next_rebalance = cm_mono_ms() + c->rebalance_ms;
        }
        int64_t retry = pull_round(c);
        now = cm_mono_ms();
        if (c->auto_commit && now >= next_commit) {
            commit_all(c);
            next_commit = cm_mono_ms() + c->commit_ms;
        }
        wake = now + 1000;
        if (by_sub && next_rebalance < wake) wake = next_rebalance;
        if (c->auto_commit && next_commit < wake) wake = next_commit;
        if (retry && retry < wake) wake = retry;
    }
    return NULL;
}

/* ================================================================ instance hooks */

static void hook_heartbeat(void *opaque, proto_consumer_data_t *d) {
    rmq_pull_consumer_t *c = opaque;
    d->group_name = cm_strdup(c->cg.group);
    d->consume_type = PROTO_CONSUME_ACTIVELY;
    d->message_model = PROTO_CLUSTERING;
    d->consume_from_where = c->cg.from;
    pthread_mutex_lock(&c->mu);
    client_subs_to_heartbeat(&c->subs, d);
    pthread_mutex_unlock(&c->mu);
}

static void hook_ids_changed(void *opaque) {
    kick(opaque, true);
}

/* ================================================================ public API */

rmq_pull_consumer_t *rmq_pull_consumer_new(rmq_conf_t *conf, char *errstr, size_t errstr_size) {
    if (!conf) {
        cm_errstr(errstr, errstr_size, "no configuration");
        return NULL;
    }
    client_cg_t cg;
    if (!client_cg_init(&cg, conf, errstr, errstr_size)) return NULL;
    if (strcmp(cm_conf_str(conf, "messageModel", false), "CLUSTERING") != 0) {
        cm_errstr(errstr, errstr_size, "the pull consumer supports messageModel CLUSTERING only");
        return NULL;
    }
    rmq_pull_consumer_t *c = cm_calloc(1, sizeof *c);
    c->conf = conf;
    c->cg = cg;
    c->log = cm_conf_logger(conf);
    c->suspend_ms = cm_conf_int(conf, "brokerSuspendMaxTimeMillis", false);
    c->rpc_suspend_ms = cm_conf_int(conf, "consumerTimeoutMillisWhenSuspend", false);
    if (c->rpc_suspend_ms <= c->suspend_ms) c->rpc_suspend_ms = c->suspend_ms + 5000;
    c->commit_ms = cm_conf_int(conf, "autoCommitIntervalMillis", false);
    c->rebalance_ms = cm_conf_int(conf, "rebalanceWaitInterval", false);
    c->batch = (int)cm_conf_int(conf, "pullBatchSize", false);
    c->threshold = (int)cm_conf_int(conf, "pullThresholdForQueue", false);
    c->auto_commit = cm_conf_bool(conf, "autoCommit", false);
    pthread_mutex_init(&c->mu, NULL);
    cm_cond_init_mono(&c->ready_cv);
    c->mb = client_mailbox_new();
    return c;
}

rmq_err_t rmq_pull_consumer_subscribe(rmq_pull_consumer_t *c, const char *topic,
                                      const char *expression) {
    if (!c || !topic) return RMQ_ERR_INVALID_ARG;
    if (client_check_topic(topic, NULL, 0) != RMQ_OK) return RMQ_ERR_BAD_TOPIC;
    pthread_mutex_lock(&c->mu);
    if (c->assigned_by_hand) {
        pthread_mutex_unlock(&c->mu);
        return RMQ_ERR_STATE;
    }
    client_subs_put(&c->subs, topic, expression);
    c->hb_needed = true;
    bool started = c->state == STATE_STARTED;
    pthread_mutex_unlock(&c->mu);
    if (started) kick(c, true);
    return RMQ_OK;
}

rmq_err_t rmq_pull_consumer_assign(rmq_pull_consumer_t *c, const rmq_mq_t *queues, size_t count) {
    if (!c || (!queues && count)) return RMQ_ERR_INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    if (c->subs.count > 0) {
        pthread_mutex_unlock(&c->mu);
        return RMQ_ERR_STATE;
    }
    c->assigned_by_hand = true;
    for (size_t i = c->pq_count; i-- > 0;) {
        pq_t *q = c->pqs[i];
        bool keep = false;
        for (size_t k = 0; k < count && !keep; k++)
            keep = queues[k].queue_id == q->qid && strcmp(queues[k].topic, q->topic) == 0 &&
                   strcmp(queues[k].broker_name, q->broker) == 0;
        if (!keep) remove_pq(c, i);
    }
    for (size_t k = 0; k < count; k++)
        if (!find_pq(c, queues[k].topic, queues[k].broker_name, queues[k].queue_id))
            add_pq(c, pq_new(queues[k].topic, queues[k].broker_name, queues[k].queue_id));
    bool started = c->state == STATE_STARTED;
    pthread_mutex_unlock(&c->mu);
    if (started) kick(c, false);
    return RMQ_OK;
}

rmq_err_t rmq_pull_consumer_start(rmq_pull_consumer_t *c, char *errstr, size_t errstr_size) {
    if (!c) return RMQ_ERR_INVALID_ARG;
    if (c->cg.ci) {
        cm_errstr(errstr, errstr_size, "consumer %s is already started", c->cg.group);
        return RMQ_ERR_STATE;
    }
    client_instance_t *ci = client_instance_get(c->conf, errstr, errstr_size);
    if (!ci) return RMQ_ERR_IO;
    /* No reset_offset: Java applies RESET_CONSUMER_CLIENT_OFFSET to push consumers only (a
     * lite pull consumer seeks by itself). No consume_directly: Java's client answers
     * CONSUME_MESSAGE_DIRECTLY for push consumers only, SYSTEM_ERROR for the rest. */
    static const client_consumer_hooks_t hooks = {.heartbeat = hook_heartbeat,
                                                  .ids_changed = hook_ids_changed};
    if (client_instance_register_consumer(ci, c->cg.group, &hooks, c) != RMQ_OK) {
        cm_errstr(errstr, errstr_size, "consumer group %s is already started on client instance %s",
                  c->cg.group, client_instance_id(ci));
        client_instance_release(ci);
        return RMQ_ERR_STATE;
    }
    c->cg.ci = ci;
    /* Learn the brokers of every topic used, so the heartbeat reaches them. */
    pthread_mutex_lock(&c->mu);
    proto_strlist_t topics = {0};
    client_subs_topics(&c->subs, &topics);
    for (size_t i = 0; i < c->pq_count; i++)
        proto_strlist_add(&topics, c->pqs[i]->topic);
    c->hb_needed = false;
    pthread_mutex_unlock(&c->mu);
    client_cg_announce(&c->cg, &topics);
    proto_strlist_free(&topics);
    pthread_mutex_lock(&c->mu);
    c->state = STATE_STARTED;
    pthread_mutex_unlock(&c->mu);
    kick(c, true); /* the first rebalance at once */
    if (pthread_create(&c->thread, NULL, pull_thread, c) != 0) {
        cm_errstr(errstr, errstr_size, "consumer %s cannot start its pull thread", c->cg.group);
        pthread_mutex_lock(&c->mu);
        c->state = STATE_NEW;
        pthread_mutex_unlock(&c->mu);
        client_instance_unregister_consumer(ci, c->cg.group);
        client_instance_release(ci);
        c->cg.ci = NULL;
        return RMQ_ERR_IO;
    }
    c->thread_started = true;
    cm_info(&c->log, "pull consumer %s started on client %s", c->cg.group, client_instance_id(ci));
    return RMQ_OK;
}

int rmq_pull_consumer_poll(rmq_pull_consumer_t *c, int64_t timeout_ms, rmq_msg_t **msgs,
                           size_t max) {
    if (!c || !msgs || max == 0) return RMQ_ERR_INVALID_ARG;
    int64_t deadline = cm_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->mu);
    if (c->state != STATE_STARTED) {
        pthread_mutex_unlock(&c->mu);
        return RMQ_ERR_NOT_STARTED;
    }
    while (c->ready_head == c->ready_count && c->state == STATE_STARTED && cm_mono_ms() < deadline)
        wait_until(&c->ready_cv, &c->mu, deadline);
    size_t n = 0;
    bool unblocked = false;
    while (n < max && c->ready_head < c->ready_count) {
        ready_t *r = &c->ready[c->ready_head++];
        if (r->pq->buffered-- == c->threshold) unblocked = true;
        r->pq->consumed = r->msg->queue_offset + 1;
        msgs[n++] = r->msg;
    }
    if (c->ready_head == c->ready_count) c->ready_head = c->ready_count = 0;
    pthread_mutex_unlock(&c->mu);
    if (unblocked) kick(c, false);
    return (int)n;
}

/* Copies of an owned queue's names, or RMQ_ERR_NOT_FOUND. */
static rmq_err_t owned(rmq_pull_consumer_t *c, const rmq_mq_t *mq) {
    pthread_mutex_lock(&c->mu);
    rmq_err_t err = c->state != STATE_STARTED                              ? RMQ_ERR_NOT_STARTED
                    : find_pq(c, mq->topic, mq->broker_name, mq->queue_id) ? RMQ_OK
                                                                           : RMQ_ERR_NOT_FOUND;
    pthread_mutex_unlock(&c->mu);
    return err;
}

static rmq_err_t seek_to(rmq_pull_consumer_t *c, const rmq_mq_t *mq, int64_t offset) {
    pthread_mutex_lock(&c->mu);
    pq_t *q = find_pq(c, mq->topic, mq->broker_name, mq->queue_id);
    if (q) {
        drop_ready(c, q);
        q->epoch++;
        q->inflight = false; /* the answer of a pull outstanding will be ignored */
        q->pull_offset = q->consumed = offset;
        q->retry_at = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (!q) return RMQ_ERR_NOT_FOUND;
    kick(c, false);
    return RMQ_OK;
}

rmq_err_t rmq_pull_consumer_seek(rmq_pull_consumer_t *c, const rmq_mq_t *mq, int64_t offset) {
    if (!c || !mq) return RMQ_ERR_INVALID_ARG;
    rmq_err_t err = owned(c, mq);
    int64_t min = 0, max = 0;
    if (!err)
        err = client_cg_queue_offset(&c->cg, PROTO_GET_MIN_OFFSET, mq->topic, mq->broker_name,
                                     mq->queue_id, &min);
    if (!err)
        err = client_cg_queue_offset(&c->cg, PROTO_GET_MAX_OFFSET, mq->topic, mq->broker_name,
                                     mq->queue_id, &max);
    if (!err && (offset < min || offset > max)) err = RMQ_ERR_INVALID_ARG;
    return err ? err : seek_to(c, mq, offset);
}

rmq_err_t rmq_pull_consumer_seek_to_begin(rmq_pull_consumer_t *c, const rmq_mq_t *mq) {
    if (!c || !mq) return RMQ_ERR_INVALID_ARG;
    rmq_err_t err = owned(c, mq);
    int64_t off = 0;
    if (!err)
        err = client_cg_queue_offset(&c->cg, PROTO_GET_MIN_OFFSET, mq->topic, mq->broker_name,
                                     mq->queue_id, &off);
    return err ? err : seek_to(c, mq, off);
}

rmq_err_t rmq_pull_consumer_seek_to_end(rmq_pull_consumer_t *c, const rmq_mq_t *mq) {
    if (!c || !mq) return RMQ_ERR_INVALID_ARG;
    rmq_err_t err = owned(c, mq);
    int64_t off = 0;
    if (!err)
        err = client_cg_queue_offset(&c->cg, PROTO_GET_MAX_OFFSET, mq->topic, mq->broker_name,
                                     mq->queue_id, &off);
    return err ? err : seek_to(c, mq, off);
}

rmq_err_t rmq_pull_consumer_seek_timestamp(rmq_pull_consumer_t *c, const rmq_mq_t *mq,
                                           int64_t timestamp_ms) {
    if (!c || !mq) return RMQ_ERR_INVALID_ARG;
    rmq_err_t err = owned(c, mq);
    int64_t off = 0;
    if (!err)
        err = client_cg_search_offset(&c->cg, mq->topic, mq->broker_name, mq->queue_id,
                                      timestamp_ms, &off);
    return err ? err : seek_to(c, mq, off);
}

rmq_err_t rmq_pull_consumer_commit(rmq_pull_consumer_t *c) {
    if (!c) return RMQ_ERR_INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    bool started = c->state == STATE_STARTED;
    pthread_mutex_unlock(&c->mu);
    return started ? commit_all(c) : RMQ_ERR_NOT_STARTED;
}

rmq_err_t rmq_pull_consumer_committed(rmq_pull_consumer_t *c, const rmq_mq_t *mq, int64_t *offset) {
    if (!c || !mq || !offset) return RMQ_ERR_INVALID_ARG;
    if (!c->cg.ci) return RMQ_ERR_NOT_STARTED;
    return client_cg_query_committed(&c->cg, mq->topic, mq->broker_name, mq->queue_id, offset);
}

rmq_err_t rmq_pull_consumer_fetch_queues(rmq_pull_consumer_t *c, const char *topic,
                                         rmq_mq_t **queues, size_t *count) {
    if (!c || !topic || !queues || !count) return RMQ_ERR_INVALID_ARG;
    *queues = NULL;
    *count = 0;
    if (!c->cg.ci) return RMQ_ERR_NOT_STARTED;
    proto_mq_list_t all = {0};
    rmq_err_t err = client_cg_topic_queues(&c->cg, topic, &all);
    if (!err) {
        *queues = cm_calloc(all.count ? all.count : 1, sizeof **queues);
        for (size_t i = 0; i < all.count; i++)
            mq_fill(&(*queues)[i], all.items[i].topic, all.items[i].broker_name,
                    all.items[i].queue_id);
        *count = all.count;
    }
    proto_mq_list_free(&all);
    return err;
}

rmq_err_t rmq_pull_consumer_assignment(rmq_pull_consumer_t *c, rmq_mq_t **queues, size_t *count) {
    if (!c || !queues || !count) return RMQ_ERR_INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    client_mq_t *v = cm_calloc(c->pq_count ? c->pq_count : 1, sizeof *v);
    for (size_t i = 0; i < c->pq_count; i++)
        v[i] = (client_mq_t){c->pqs[i]->topic, c->pqs[i]->broker, c->pqs[i]->qid};
    client_alloc_sort_mqs(v, c->pq_count);
    *count = c->pq_count;
    *queues = cm_calloc(c->pq_count ? c->pq_count : 1, sizeof **queues);
    for (size_t i = 0; i < c->pq_count; i++)
        mq_fill(&(*queues)[i], v[i].topic, v[i].broker_name, v[i].queue_id);
    pthread_mutex_unlock(&c->mu);
    cm_free(v);
    return RMQ_OK;
}

void rmq_pull_consumer_destroy(rmq_pull_consumer_t *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    bool started = c->state == STATE_STARTED;
    c->state = STATE_STOPPING;
    pthread_cond_broadcast(&c->ready_cv);
    pthread_mutex_unlock(&c->mu);
    client_mailbox_kick(c->mb, false, true);
    if (c->thread_started) pthread_join(c->thread, NULL);
    if (started && c->auto_commit) commit_all(c);
    if (c->cg.ci) client_instance_unregister_consumer(c->cg.ci, c->cg.group);
    client_mailbox_close(c->mb); /* pulls still in flight find it closed */
    if (c->cg.ci) client_instance_release(c->cg.ci);
    for (size_t r = c->ready_head; r < c->ready_count; r++)
        rmq_msg_destroy(c->ready[r].msg);
    cm_free(c->ready);
    for (size_t i = 0; i < c->pq_count; i++)
        pq_free(c->pqs[i]);
    for (size_t i = 0; i < c->grave_count; i++)
        pq_free(c->grave[i]);
    cm_free(c->pqs);
    cm_free(c->grave);
    client_subs_free(&c->subs);
    pthread_cond_destroy(&c->ready_cv);
    pthread_mutex_destroy(&c->mu);
    rmq_conf_destroy(c->conf);
    cm_free(c);
}
