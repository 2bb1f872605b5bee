/* lib/broker/pull.c: PULL_MESSAGE (11) as RocketMQ's PullMessageProcessor answers it — group
 * and topic checks, the subscription from the request or the group's heartbeat (24/25),
 * tag filtering on consume-queue tag codes, the status -> code table of remoting.md §7,
 * COMMIT_OFFSET — and long polling: a pull with SUSPEND that finds nothing is parked until
 * the store dispatches a message to that queue (broker_hold_on_dispatch) or its
 * suspendTimeoutMillis passes; the hold thread then re-runs it and answers. */
#include "broker/broker_int.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define MAX_SUSPEND_MS (3600 * 1000) /* a larger suspendTimeoutMillis is clamped */

/* How a pull is being run: as it arrives, re-run after a dispatch woke it (may park
 * again), or a last time (suspension over: always answered). */
typedef enum pull_mode { PULL_FIRST, PULL_WAKE, PULL_FINAL } pull_mode_t;

/* ---------------------------------------------------------------- filter */

typedef struct pull_filter {
    proto_subscription_t sub; /* owned copy */
    bool all;                 /* "*", class filter, or no tags */
} pull_filter_t;

/* ExpressionMessageFilter.isMatchedByConsumeQueue for TAG expressions. */
static bool tag_match(void *arg, int64_t tags_code) {
    const pull_filter_t *f = arg;
    if (f->all) return true;
    for (size_t i = 0; i < f->sub.code_count; i++)
        if (f->sub.codes[i] == (int32_t)tags_code) return true;
    return false;
}

static void filter_init(pull_filter_t *f) {
    f->all = f->sub.class_filter_mode || !f->sub.sub_string ||
             strcmp(f->sub.sub_string, "*") == 0 || f->sub.sub_string[0] == '\0';
}

/* ---------------------------------------------------------------- checks */

typedef struct pull_ctx {
    proto_pull_req_t h;
    broker_topic_t topic;
    pull_filter_t filter;
    int32_t code; /* != 0: answer with this code and remark */
    char remark[512];
} pull_ctx_t;

static bool fail(pull_ctx_t *c, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(pull_ctx_t *c, int32_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->remark, sizeof c->remark, fmt, ap);
    va_end(ap);
    c->code = code;
    return false;
}

static bool check_group(broker_t *b, pull_ctx_t *c, broker_subgroup_t *sg) {
    if (b->subgroups && !broker_subgroups_find(b->subgroups, c->h.consumer_group, sg))
        return fail(c, RMQ_ERR_SUBSCRIPTION_GROUP_NOT_EXIST,
                    "subscription group [%s] does not exist, %s", c->h.consumer_group, PROTO_FAQ_SUFFIX);
    if (!b->subgroups) broker_subgroup_defaults(sg, c->h.consumer_group);
    if (!sg->consume_enable)
        return fail(c, RMQ_ERR_NO_PERMISSION, "subscription group no permission, %s",
                    c->h.consumer_group);
    return true;
}

static bool check_topic(broker_t *b, pull_ctx_t *c, broker_req_t *req) {
    if (!broker_topics_find(b, c->h.topic, &c->topic))
        return fail(c, RMQ_ERR_TOPIC_NOT_EXIST, "topic[%s] not exist, apply first please! %s",
                    c->h.topic, PROTO_FAQ_SUFFIX);
    if (!(c->topic.perm & PROTO_PERM_READ))
        return fail(c, RMQ_ERR_NO_PERMISSION, "the topic[%s] pulling message is forbidden",
                    c->h.topic);
    if (c->h.queue_id < 0 || c->h.queue_id >= c->topic.read_queue_nums)
        return fail(c, RMQ_ERR_SYSTEM_ERROR,
                    "queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d] "
                    "consumer:[%s]",
                    c->h.queue_id, c->h.topic, c->topic.read_queue_nums, req->peer_text);
    return true;
}

/* The subscription: the request's (SUBSCRIPTION bit) or the group's from its heartbeat. */
static bool find_subscription(broker_t *b, pull_ctx_t *c, const broker_subgroup_t *sg) {
    if (c->h.sys_flag & PULL_FLAG_SUBSCRIPTION) {
        c->filter.sub.topic = cm_strdup(c->h.topic);
        proto_subscription_set_tags(&c->filter.sub, c->h.subscription);
        c->filter.sub.sub_version = c->h.sub_version;
        if (c->h.expression_type) c->filter.sub.expression_type = cm_strdup(c->h.expression_type);
    } else {
        char type[64], model[64], from[64];
        if (!b->clients || !broker_clients_consumer_info(b->clients, c->h.consumer_group, type,
                                                         model, from, sizeof type))
            return fail(c, RMQ_ERR_SUBSCRIPTION_NOT_EXIST, "the consumer's group info not exist%s",
                        PROTO_FAQ_SUFFIX);
        if (!sg->consume_broadcast_enable && strcmp(model, "BROADCASTING") == 0)
            return fail(c, RMQ_ERR_NO_PERMISSION,
                        "the consumer group[%s] can not consume by broadcast way",
                        c->h.consumer_group);
        if (!broker_clients_find_sub(b->clients, c->h.consumer_group, c->h.topic, &c->filter.sub))
            return fail(c, RMQ_ERR_SUBSCRIPTION_NOT_EXIST,
                        "the consumer's subscription not exist%s", PROTO_FAQ_SUFFIX);
        if (c->filter.sub.sub_version < c->h.sub_version)
            return fail(c, RMQ_ERR_SUBSCRIPTION_NOT_LATEST,
                        "the consumer's subscription not latest");
    }
    const char *type = c->filter.sub.expression_type;
    if (type && strcmp(type, "TAG") != 0)
        return fail(c, RMQ_ERR_SYSTEM_ERROR,
                    "The broker does not support consumer to filter message by %s", type);
    filter_init(&c->filter);
    return true;
}

/* ---------------------------------------------------------------- one run */

/* remoting.md §7: the reply code of a store status. */
static int32_t status_code(const store_get_result_t *r, int64_t req_offset) {
    switch (r->status) {
    case STORE_FOUND:
        return 0;
    case STORE_NO_MATCHED_MESSAGE:
    case STORE_MESSAGE_WAS_REMOVING:
        return RMQ_ERR_PULL_RETRY_IMMEDIATELY;
    case STORE_NO_MESSAGE_IN_QUEUE:
        return req_offset != 0 ? RMQ_ERR_PULL_OFFSET_MOVED : RMQ_ERR_PULL_NOT_FOUND;
    case STORE_OFFSET_TOO_SMALL:
    case STORE_OFFSET_OVERFLOW_BADLY:
        return RMQ_ERR_PULL_OFFSET_MOVED;
    case STORE_OFFSET_OVERFLOW_ONE:
    case STORE_OFFSET_FOUND_NULL:
    default:
        return RMQ_ERR_PULL_NOT_FOUND;
    }
}

static void reply_result(broker_t *b, broker_req_t *req, int32_t code, store_get_result_t *r) {
    proto_cmd_t resp;
    proto_cmd_response(&resp, &req->cmd, code, store_get_status_name(r->status));
    proto_pull_resp_t ph = {.suggest_which_broker_id = 0,
                            .next_begin_offset = r->next_begin_offset,
                            .min_offset = r->min_offset,
                            .max_offset = r->max_offset};
    proto_pull_resp_encode(&ph, &resp.ext);
    resp.has_ext = true;
    if (code == 0 && r->records.len) {
        atomic_fetch_add(&b->counters.msgs_out, r->msg_count);
        atomic_fetch_add(&b->counters.bytes_out, (long long)r->records.len);
        proto_cmd_take_body(&resp, r->records.data, r->records.len);
        r->records = (cm_buf_t)CM_BUF_INIT; /* the reply owns the records now */
    }
    broker_reply(b, req, &resp);
}

static void ctx_free(pull_ctx_t *c) {
    proto_subscription_free(&c->filter.sub);
}

/* Runs the pull once. Returns false when it should be parked (19 with suspension allowed),
 * true when req was answered (and ended). */
static bool pull_run(broker_t *b, broker_req_t *req, pull_mode_t mode) {
    pull_ctx_t c;
    memset(&c, 0, sizeof c);
    proto_hdr_err_t herr;
    broker_subgroup_t sg;
    if (proto_pull_req_decode(&req->cmd.ext, &c.h, &herr) != RMQ_OK) {
        proto_hdr_err_format(&herr, c.remark, sizeof c.remark);
        c.code = RMQ_ERR_SYSTEM_ERROR;
    } else if (check_group(b, &c, &sg) && check_topic(b, &c, req)) {
        find_subscription(b, &c, &sg);
    }
    if (c.code) {
        ctx_free(&c);
        proto_cmd_t resp;
        proto_cmd_response(&resp, &req->cmd, c.code, c.remark);
        resp.has_ext = true;
        broker_reply(b, req, &resp);
        return true;
    }
    store_get_result_t r = {0};
    int32_t max = c.h.max_msg_nums > 0 ? c.h.max_msg_nums : 1;
    rmq_err_t rc = store_get_messages(b->store, c.h.topic, c.h.queue_id, c.h.queue_offset, max, 0,
                                      tag_match, &c.filter, &r);
    int32_t code = rc == RMQ_OK ? status_code(&r, c.h.queue_offset) : RMQ_ERR_SYSTEM_ERROR;
    bool suspend = (c.h.sys_flag & PULL_FLAG_SUSPEND) && mode != PULL_FINAL;
    bool park = code == RMQ_ERR_PULL_NOT_FOUND && suspend;
    /* The consumer's own position rides along on its first run (not on re-runs). */
    if (mode == PULL_FIRST && (c.h.sys_flag & PULL_FLAG_COMMIT_OFFSET) &&
        strcmp(cm_conf_str(b->conf, "brokerRole", true), "SLAVE") != 0)
        broker_offsets_commit(b, c.h.consumer_group, c.h.topic, c.h.queue_id, c.h.commit_offset);
    ctx_free(&c);
    if (park) {
        cm_buf_free(&r.records);
        return false;
    }
    reply_result(b, req, code, &r);
    cm_buf_free(&r.records);
    return true;
}

/* ---------------------------------------------------------------- hold table */

typedef struct held {
    broker_req_t *req;
    int64_t deadline_ms; /* cm_mono_ms() */
    struct held *next;
} held_t;

typedef struct held_queue {
    held_t *head;
    bool news; /* a message landed since the pulls here were (re)parked */
} held_queue_t;

struct broker_hold {
    broker_t *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cm_map_t *queues;   /* "topic@queueId" -> held_queue_t */
    atomic_long parked; /* pulls in the table: the dispatch callback's fast exit */
    bool pending;       /* some queue has news */
    bool stop;
    bool running;
    pthread_t thread;
};

/* "topic@queueId", cut to size; without printf, as it runs for every message stored while a
 * pull is parked. */
static void queue_key(char *dst, size_t size, const char *topic, int32_t queue_id) {
    char num[CM_I64_TEXT + 1] = "@";
    cm_i64_text(queue_id, num + 1);
    cm_strcpy_cut(dst, size, topic);
    size_t used = strlen(dst);
    cm_strcpy_cut(dst + used, size - used, num);
}

void broker_hold_on_dispatch(void *arg, const char *topic, int32_t queue_id, int64_t max_offset,
                             int64_t tags_code, int64_t store_timestamp) {
    broker_t *b = arg;
    broker_hold_t *h = b->hold;
    if (!h || atomic_load(&h->parked) == 0) return;
    char key[200];
    queue_key(key, sizeof key, topic, queue_id);
    pthread_mutex_lock(&h->mu);
    held_queue_t *q = cm_map_get(h->queues, key);
    if (q && q->head) {
        q->news = true;
        h->pending = true;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
}

/* Parks req. A message that landed between the pull's read and this insert would not have
 * seen the entry, so the queue's max offset is checked once more after inserting. Once req
 * is in the table the hold thread may answer and free it at any moment: what the check
 * needs is copied out first, and the queue is looked up again under the lock. */
static void park(broker_hold_t *h, broker_req_t *req, int64_t deadline_ms) {
    proto_pull_req_t ph;
    if (proto_pull_req_decode(&req->cmd.ext, &ph, NULL) != RMQ_OK) return; /* decoded before */
    char key[200];
    queue_key(key, sizeof key, ph.topic, ph.queue_id);
    char *topic = cm_strdup(ph.topic);
    int32_t queue_id = ph.queue_id;
    int64_t offset = ph.queue_offset;
    held_t *e = cm_malloc(sizeof *e);
    e->req = req;
    e->deadline_ms = deadline_ms;
    pthread_mutex_lock(&h->mu);
    held_queue_t *q = cm_map_get(h->queues, key);
    if (!q) {
        q = cm_calloc(1, sizeof *q);
        cm_map_put(h->queues, key, q);
    }
    e->next = q->head;
    q->head = e;
    atomic_fetch_add(&h->parked, 1);
    pthread_cond_signal(&h->cv); /* the deadline may be the earliest now */
    pthread_mutex_unlock(&h->mu);
    if (store_max_offset(h->b->store, topic, queue_id) > offset) {
        pthread_mutex_lock(&h->mu);
        q = cm_map_get(h->queues, key);
        if (q) q->news = true;
        h->pending = true;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    cm_free(topic);
}

/* Moves the entries to re-run out of the table: every entry of a queue with news, and every
 * expired one (or all when stopping). Returns the earliest deadline left. Holds mu. */
static int64_t collect(broker_hold_t *h, held_t **wake, held_t **expired, int64_t now) {
    int64_t next = INT64_MAX;
    size_t it = 0;
    const char *key;
    void *val;
    h->pending = false;
    while (cm_map_next(h->queues, &it, &key, &val)) {
        held_queue_t *q = val;
        held_t **pp = &q->head;
        while (*pp) {
            held_t *e = *pp;
            bool expire = h->stop || e->deadline_ms <= now;
            if (expire || q->news) {
                *pp = e->next;
                e->next = expire ? *expired : *wake;
                *(expire ? expired : wake) = e;
                atomic_fetch_sub(&h->parked, 1);
            } else {
                if (e->deadline_ms < next) next = e->deadline_ms;
                pp = &e->next;
            }
        }
        q->news = false;
    }
    return next;
}

static void run_list(broker_hold_t *h, held_t *list, pull_mode_t mode) {
    while (list) {
        held_t *e = list;
        list = e->next;
        if (pull_run(h->b, e->req, mode))
            cm_free(e);
        else {
            park(h, e->req, e->deadline_ms);
            cm_free(e);
        }
    }
}

static void timed_wait(broker_hold_t *h, int64_t until_mono_ms) {
    int64_t wait_ms = until_mono_ms - cm_mono_ms();
    if (wait_ms > 60000) wait_ms = 60000;
    if (wait_ms <= 0) return;
    struct timespec ts = cm_mono_deadline(wait_ms);
    pthread_cond_timedwait(&h->cv, &h->mu, &ts);
}

/* The hold thread (RocketMQ's PullRequestHoldService): re-runs woken and expired pulls. */
static void *hold_main(void *arg) {
    broker_hold_t *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        held_t *wake = NULL, *expired = NULL;
        bool stopping = h->stop;
        int64_t next = collect(h, &wake, &expired, cm_mono_ms());
        pthread_mutex_unlock(&h->mu);
        run_list(h, wake, stopping ? PULL_FINAL : PULL_WAKE);
        run_list(h, expired, PULL_FINAL);
        pthread_mutex_lock(&h->mu);
        if (stopping) break;
        if (!h->pending && !h->stop) timed_wait(h, next);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

broker_hold_t *broker_hold_new(broker_t *b) {
    broker_hold_t *h = cm_calloc(1, sizeof *h);
    h->b = b;
    pthread_mutex_init(&h->mu, NULL);
    cm_cond_init_mono(&h->cv);
    h->queues = cm_map_new(cm_free);
    h->running = pthread_create(&h->thread, NULL, hold_main, h) == 0;
    if (!h->running) cm_error(&b->log, "cannot start the long-polling thread");
    return h;
}

void broker_hold_destroy(broker_hold_t *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->running) pthread_join(h->thread, NULL);
    /* Without a thread (it could not start) the table is answered here. */
    held_t *wake = NULL, *expired = NULL;
    collect(h, &wake, &expired, INT64_MAX);
    run_list(h, expired, PULL_FINAL);
    cm_map_destroy(h->queues);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    cm_free(h);
}

/* ---------------------------------------------------------------- processor */

static void on_pull(broker_t *b, broker_req_t *req) {
    if (pull_run(b, req, PULL_FIRST)) return;
    int64_t timeout = 0;
    proto_ext_get_int(&req->cmd.ext, "suspendTimeoutMillis", &timeout);
    if (!cm_conf_bool(b->conf, "longPollingEnable", true))
        timeout = cm_conf_int(b->conf, "shortPollingTimeMills", true);
    if (timeout < 0) timeout = 0;
    if (timeout > MAX_SUSPEND_MS) timeout = MAX_SUSPEND_MS;
    atomic_fetch_add(&b->counters.pull_held, 1);
    park(b->hold, req, req->received_ms + timeout);
}

void broker_pull_register(broker_t *b) {
    broker_set_processor(b, PROTO_PULL_MESSAGE, on_pull, BROKER_EXEC_IO);
}
