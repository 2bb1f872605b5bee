/* What the pull and push consumers share (client.h, "consumer groups"): the broker calls a
 * consumer makes (offsets, group members), the queue share a rebalance computes, where a
 * queue without a stored offset starts, the client-side tag filter and the checks of a
 * consumer's configuration (client.md §4, §5, §7). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "alloc.h"
#include "client.h"

/* ================================================================ configuration */

bool client_group_ok(const char *group, char *errstr, size_t size) {
    size_t len = strlen(group);
    if (len == 0) {
        cm_errstr(errstr, size, "consumerGroup is required");
        return false;
    }
    if (len > 255) {
        cm_errstr(errstr, size, "consumerGroup is %zu characters long; at most 255 are allowed",
                  len);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = group[i];
        if (!(ch == '%' || ch == '|' || ch == '_' || ch == '-' || (ch >= '0' && ch <= '9') ||
              (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))) {
            cm_errstr(errstr, size,
                      "consumerGroup \"%s\" has a character outside "
                      "[%%|a-zA-Z0-9_-]",
                      group);
            return false;
        }
    }
    if (strcmp(group, "DEFAULT_CONSUMER") == 0) {
        cm_errstr(errstr, size, "consumerGroup DEFAULT_CONSUMER is reserved");
        return false;
    }
    return true;
}

/* consumeTimestamp "yyyyMMddHHmmss" (local time) in ms; empty: 30 minutes ago. */
static bool parse_ts(const char *text, int64_t *out) {
    if (!*text) {
        *out = cm_now_ms() - 30 * 60 * 1000;
        return true;
    }
    struct tm tm = {0};
    if (strlen(text) != 14 || sscanf(text, "%4d%2d%2d%2d%2d%2d", &tm.tm_year, &tm.tm_mon,
                                     &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1) return false;
    *out = (int64_t)t * 1000;
    return true;
}

bool client_cg_init(client_cg_t *cg, const rmq_conf_t *conf, char *errstr, size_t size) {
    memset(cg, 0, sizeof *cg);
    cg->group = cm_conf_str(conf, "consumerGroup", false);
    if (!client_group_ok(cg->group, errstr, size)) return false;
    const char *ns = cm_conf_str(conf, "namesrvAddr", false), *env = getenv("NAMESRV_ADDR");
    if (!*ns && (!env || !*env)) {
        cm_errstr(errstr, size, "no name server: set namesrvAddr or NAMESRV_ADDR");
        return false;
    }
    const char *strategy = cm_conf_str(conf, "allocateMessageQueueStrategy", false);
    cg->strategy = client_alloc_find(strategy);
    if (!cg->strategy) {
        cm_errstr(errstr, size, "unknown allocateMessageQueueStrategy %s", strategy);
        return false;
    }
    const char *ts_text = cm_conf_str(conf, "consumeTimestamp", false);
    if (!parse_ts(ts_text, &cg->consume_ts)) {
        cm_errstr(errstr, size, "consumeTimestamp \"%s\" is not yyyyMMddHHmmss", ts_text);
        return false;
    }
    const char *from = cm_conf_str(conf, "consumeFromWhere", false);
    cg->from = strcmp(from, "CONSUME_FROM_FIRST_OFFSET") == 0 ? PROTO_CONSUME_FROM_FIRST_OFFSET
               : strcmp(from, "CONSUME_FROM_TIMESTAMP") == 0  ? PROTO_CONSUME_FROM_TIMESTAMP
                                                              : PROTO_CONSUME_FROM_LAST_OFFSET;
    cg->api_timeout_ms = cm_conf_int(conf, "mqClientApiTimeout", false);
    return true;
}

/* ================================================================ subscriptions */

const client_sub_t *client_subs_find(const client_subs_t *subs, const char *topic) {
    for (size_t i = 0; i < subs->count; i++)
        if (strcmp(subs->items[i].topic, topic) == 0) return &subs->items[i];
    return NULL;
}

void client_subs_put(client_subs_t *subs, const char *topic, const char *expression) {
    client_sub_t *s = (client_sub_t *)client_subs_find(subs, topic);
    if (!s) {
        subs->items = cm_realloc(subs->items, (subs->count + 1) * sizeof *subs->items);
        s = &subs->items[subs->count++];
        memset(s, 0, sizeof *s);
        s->topic = cm_strdup(topic);
    }
    cm_free(s->expr);
    proto_subscription_free(&s->tags);
    memset(&s->tags, 0, sizeof s->tags);
    s->expr = cm_strdup(expression && *expression ? expression : "*");
    proto_subscription_set_tags(&s->tags, s->expr);
    s->version = cm_now_ms();
}

void client_subs_topics(const client_subs_t *subs, proto_strlist_t *out) {
    for (size_t i = 0; i < subs->count; i++)
        proto_strlist_add(out, subs->items[i].topic);
}

void client_subs_free(client_subs_t *subs) {
    for (size_t i = 0; i < subs->count; i++) {
        cm_free(subs->items[i].topic);
        cm_free(subs->items[i].expr);
        proto_subscription_free(&subs->items[i].tags);
    }
    cm_free(subs->items);
    subs->items = NULL;
    subs->count = 0;
}

bool client_sub_match(const client_sub_t *s, const rmq_msg_t *m) {
    if (!s || s->tags.tags.count == 0) return true;
    const char *t = proto_props_get(&m->props, PROP_TAGS);
    if (!t) return false;
    for (size_t i = 0; i < s->tags.tags.count; i++)
        if (strcmp(s->tags.tags.items[i], t) == 0) return true;
    return false;
}

void client_subs_to_heartbeat(const client_subs_t *subs, proto_consumer_data_t *d) {
    for (size_t i = 0; i < subs->count; i++) {
        proto_subscription_t *hs = proto_consumer_data_add_sub(d);
        hs->topic = cm_strdup(subs->items[i].topic);
        proto_subscription_set_tags(hs, subs->items[i].expr);
        hs->sub_version = subs->items[i].version;
        hs->expression_type = cm_strdup("TAG");
    }
}

rmq_msg_t *client_next_pulled(const proto_cmd_t *resp, size_t *pos, const client_sub_t *s,
                              const char *broker) {
    while (*pos < resp->body_len) {
        proto_record_t rec;
        if (proto_record_decode(resp->body + *pos, resp->body_len - *pos, false, &rec) != RMQ_OK ||
            rec.total_size <= 0) {
            *pos = resp->body_len; /* a torn tail: the next pull starts after the last good one */
            return NULL;
        }
        *pos += (size_t)rec.total_size;
        if (rec.magic == PROTO_MAGIC_BLANK) continue;
        rmq_msg_t *m = NULL;
        if (proto_msg_from_record_at(&rec, CLIENT_MAX_PULLED_BODY, broker, &m) != RMQ_OK) continue;
        if (!client_sub_match(s, m)) {
            rmq_msg_destroy(m);
            continue;
        }
        return m;
    }
    return NULL;
}

void client_cg_announce(const client_cg_t *cg, const proto_strlist_t *topics) {
    for (size_t i = 0; i < topics->count; i++) {
        client_pub_t *p = NULL;
        if (client_instance_pub(cg->ci, topics->items[i], NULL, 0, cg->api_timeout_ms, &p) ==
            RMQ_OK)
            client_pub_unref(p);
    }
    client_instance_heartbeat(cg->ci);
}

/* ================================================================ broker calls */

char *client_cg_broker_addr(const client_cg_t *cg, const char *topic, const char *broker) {
    char *addr = client_instance_master(cg->ci, broker);
    if (addr) return addr;
    client_pub_t *p = NULL;
    if (client_instance_pub(cg->ci, topic, NULL, 0, cg->api_timeout_ms, &p) == RMQ_OK) {
        const char *a = client_pub_master(p, broker);
        if (a) addr = cm_strdup(a);
        client_pub_unref(p);
    }
    return addr;
}

net_conn_t *client_cg_conn(const client_cg_t *cg, const char *topic, const char *broker,
                           rmq_err_t *err) {
    char *addr = client_cg_broker_addr(cg, topic, broker);
    if (!addr) {
        *err = RMQ_ERR_NO_ROUTE;
        return NULL;
    }
    net_conn_t *conn = client_instance_conn(cg->ci, addr, err);
    cm_free(addr);
    return conn;
}

rmq_err_t client_cg_call(const client_cg_t *cg, const char *topic, const char *broker,
                         proto_cmd_t *req, proto_cmd_t *resp) {
    proto_cmd_init(resp);
    rmq_err_t err;
    net_conn_t *conn = client_cg_conn(cg, topic, broker, &err);
    if (!conn) {
        proto_cmd_free(req);
        return err;
    }
    err = net_conn_request_sync(conn, req, cg->api_timeout_ms, resp);
    net_conn_unref(conn);
    return err ? err : (rmq_err_t)resp->code;
}

/* A request answered by {offset}: 14, 29, 30, 31. */
static rmq_err_t offset_call(const client_cg_t *cg, const char *topic, const char *broker,
                             proto_cmd_t *req, int64_t *offset) {
    proto_cmd_t resp;
    rmq_err_t err = client_cg_call(cg, topic, broker, req, &resp);
    if (err == RMQ_OK) {
        proto_offset_resp_t h;
        err = proto_offset_resp_decode(&resp.ext, &h, NULL);
        if (!err) *offset = h.offset;
    }
    proto_cmd_free(&resp);
    return err;
}

rmq_err_t client_cg_queue_offset(const client_cg_t *cg, int32_t code, const char *topic,
                                 const char *broker, int32_t qid, int64_t *offset) {
    proto_cmd_t req;
    proto_cmd_request(&req, code, 0);
    proto_queue_req_t h;
    proto_queue_req_init(&h);
    h.topic = topic;
    h.queue_id = qid;
    h.bname = broker;
    proto_queue_req_encode(&h, &req.ext);
    return offset_call(cg, topic, broker, &req, offset);
}

rmq_err_t client_cg_search_offset(const client_cg_t *cg, const char *topic, const char *broker,
                                  int32_t qid, int64_t ts, int64_t *offset) {
    proto_cmd_t req;
    proto_cmd_request(&req, PROTO_SEARCH_OFFSET_BY_TIMESTAMP, 0);
    proto_search_offset_req_t h;
    proto_search_offset_req_init(&h);
    h.topic = topic;
    h.queue_id = qid;
    h.timestamp = ts;
    h.bname = broker;
    proto_search_offset_req_encode(&h, &req.ext);
    return offset_call(cg, topic, broker, &req, offset);
}

rmq_err_t client_cg_query_committed(const client_cg_t *cg, const char *topic, const char *broker,
                                    int32_t qid, int64_t *offset) {
    proto_cmd_t req;
    proto_cmd_request(&req, PROTO_QUERY_CONSUMER_OFFSET, 0);
    proto_query_consumer_offset_req_t h;
    proto_query_consumer_offset_req_init(&h);
    h.consumer_group = cg->group;
    h.topic = topic;
    h.queue_id = qid;
    h.bname = broker;
    proto_query_consumer_offset_req_encode(&h, &req.ext);
    return offset_call(cg, topic, broker, &req, offset);
}

rmq_err_t client_cg_update_committed(const client_cg_t *cg, const char *topic, const char *broker,
                                     int32_t qid, int64_t offset) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_UPDATE_CONSUMER_OFFSET, 0);
    proto_update_consumer_offset_req_t h;
    proto_update_consumer_offset_req_init(&h);
    h.consumer_group = cg->group;
    h.topic = topic;
    h.queue_id = qid;
    h.commit_offset = offset;
    h.bname = broker;
    proto_update_consumer_offset_req_encode(&h, &req.ext);
    rmq_err_t err = client_cg_call(cg, topic, broker, &req, &resp);
    proto_cmd_free(&resp);
    return err;
}

rmq_err_t client_cg_from_where(const client_cg_t *cg, const char *topic, const char *broker,
                               int32_t qid, int64_t *offset) {
    bool retry = strncmp(topic, CLIENT_RETRY_PREFIX, strlen(CLIENT_RETRY_PREFIX)) == 0;
    switch (cg->from) {
    case PROTO_CONSUME_FROM_FIRST_OFFSET:
        *offset = 0;
        return RMQ_OK;
    case PROTO_CONSUME_FROM_TIMESTAMP:
        if (retry)
            return client_cg_queue_offset(cg, PROTO_GET_MAX_OFFSET, topic, broker, qid, offset);
        return client_cg_search_offset(cg, topic, broker, qid, cg->consume_ts, offset);
    default:
        if (retry) {
            *offset = 0;
            return RMQ_OK;
        }
        return client_cg_queue_offset(cg, PROTO_GET_MAX_OFFSET, topic, broker, qid, offset);
    }
}

rmq_err_t client_cg_start_offset(const client_cg_t *cg, const char *topic, const char *broker,
                                 int32_t qid, int64_t *offset, bool *stored) {
    *stored = false;
    rmq_err_t err = client_cg_query_committed(cg, topic, broker, qid, offset);
    if (err == RMQ_OK && *offset >= 0) {
        *stored = true;
        return RMQ_OK;
    }
    if (err != RMQ_OK && err != RMQ_ERR_QUERY_NOT_FOUND) return err;
    return client_cg_from_where(cg, topic, broker, qid, offset);
}

/* ================================================================ rebalance */

rmq_err_t client_cg_topic_queues(const client_cg_t *cg, const char *topic, proto_mq_list_t *out) {
    client_pub_t *p = NULL;
    rmq_err_t err = client_instance_pub(cg->ci, topic, NULL, 0, cg->api_timeout_ms, &p);
    if (err) return err;
    proto_mq_list_t found = {0};
    for (size_t i = 0; i < p->route.queue_count; i++) {
        const proto_queue_data_t *qd = &p->route.queues[i];
        if (!(qd->perm & PROTO_PERM_READ) || !qd->broker_name) continue;
        for (int32_t q = 0; q < qd->read_queue_nums; q++)
            proto_mq_list_add(&found, topic, qd->broker_name, q);
    }
    client_pub_unref(p);
    client_mq_t *v = cm_calloc(found.count ? found.count : 1, sizeof *v);
    for (size_t i = 0; i < found.count; i++)
        v[i] = (client_mq_t){found.items[i].topic, found.items[i].broker_name,
                             found.items[i].queue_id};
    client_alloc_sort_mqs(v, found.count);
    for (size_t i = 0; i < found.count; i++)
        proto_mq_list_add(out, v[i].topic, v[i].broker_name, v[i].queue_id);
    cm_free(v);
    proto_mq_list_free(&found);
    return RMQ_OK;
}

static bool listed(const proto_strlist_t *ids, const char *id) {
    for (size_t i = 0; i < ids->count; i++)
        if (strcmp(ids->items[i], id) == 0) return true;
    return false;
}

/* GET_CONSUMER_LIST_BY_GROUP from a broker hosting topic. */
static rmq_err_t group_members(const client_cg_t *cg, const char *topic, const char *broker,
                               proto_strlist_t *ids) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_GET_CONSUMER_LIST_BY_GROUP, 0);
    proto_group_req_t h;
    proto_group_req_init(&h);
    h.consumer_group = cg->group;
    proto_group_req_encode(&h, &req.ext);
    rmq_err_t err = client_cg_call(cg, topic, broker, &req, &resp);
    if (err == RMQ_OK) err = proto_consumer_list_decode(resp.body, resp.body_len, ids);
    proto_cmd_free(&resp);
    return err;
}

rmq_err_t client_cg_share(const client_cg_t *cg, const char *topic, proto_mq_list_t *mine) {
    proto_mq_list_t all = {0};
    rmq_err_t err = client_cg_topic_queues(cg, topic, &all);
    if (err || all.count == 0) {
        proto_mq_list_free(&all);
        return err ? err : RMQ_ERR_NO_ROUTE;
    }
    proto_strlist_t ids = {0};
    err = group_members(cg, topic, all.items[0].broker_name, &ids);
    /* Not (yet, or no longer) registered there — a broker that restarted learns of us with
     * the next heartbeat. Java would drop every queue until then; keeping them is safe
     * (at worst a queue is consumed twice) and loses no time. */
    if (!err && !listed(&ids, client_instance_id(cg->ci))) err = RMQ_ERR_STATE;
    if (!err) {
        const char **cids = cm_calloc(ids.count ? ids.count : 1, sizeof *cids);
        for (size_t i = 0; i < ids.count; i++)
            cids[i] = ids.items[i];
        client_alloc_sort_ids(cids, ids.count);
        client_mq_t *mqs = cm_calloc(all.count, sizeof *mqs);
        for (size_t i = 0; i < all.count; i++)
            mqs[i] =
                (client_mq_t){all.items[i].topic, all.items[i].broker_name, all.items[i].queue_id};
        size_t *owned = cm_calloc(all.count, sizeof *owned);
        size_t n =
            cg->strategy->fn(client_instance_id(cg->ci), cids, ids.count, mqs, all.count, owned);
        for (size_t i = 0; i < n; i++)
            proto_mq_list_add(mine, mqs[owned[i]].topic, mqs[owned[i]].broker_name,
                              mqs[owned[i]].queue_id);
        cm_free(owned);
        cm_free(mqs);
        cm_free(cids);
    }
    proto_strlist_free(&ids);
    proto_mq_list_free(&all);
    return err;
}

/* ================================================================ mailbox */

struct client_mailbox {
    atomic_int refs; /* the owner's and one per request in flight */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    client_done_t *head, *tail;
    bool closed, stop, kick, rebalance;
};

client_mailbox_t *client_mailbox_new(void) {
    client_mailbox_t *mb = cm_calloc(1, sizeof *mb);
    atomic_init(&mb->refs, 1);
    pthread_mutex_init(&mb->mu, NULL);
    cm_cond_init_mono(&mb->cv);
    return mb;
}

void client_done_free(client_done_t *d) {
    proto_cmd_free(&d->resp);
    cm_free(d);
}

static void mailbox_unref(client_mailbox_t *mb) {
    if (atomic_fetch_sub(&mb->refs, 1) != 1) return;
    for (client_done_t *d = mb->head, *n; d; d = n) {
        n = d->next;
        client_done_free(d);
    }
    pthread_cond_destroy(&mb->cv);
    pthread_mutex_destroy(&mb->mu);
    cm_free(mb);
}

void client_mailbox_kick(client_mailbox_t *mb, bool rebalance, bool stop) {
    pthread_mutex_lock(&mb->mu);
    mb->kick = true;
    if (rebalance) mb->rebalance = true;
    if (stop) mb->stop = true;
    pthread_cond_signal(&mb->cv);
    pthread_mutex_unlock(&mb->mu);
}

void client_mailbox_close(client_mailbox_t *mb) {
    pthread_mutex_lock(&mb->mu);
    mb->closed = true;
    pthread_mutex_unlock(&mb->mu);
    mailbox_unref(mb);
}

client_done_t *client_mailbox_wait(client_mailbox_t *mb, int64_t wake_mono_ms, bool *stop,
                                   bool *rebalance) {
    pthread_mutex_lock(&mb->mu);
    while (!mb->stop && !mb->kick && !mb->rebalance && !mb->head && cm_mono_ms() < wake_mono_ms) {
        struct timespec ts = cm_mono_deadline(wake_mono_ms - cm_mono_ms());
        pthread_cond_timedwait(&mb->cv, &mb->mu, &ts);
    }
    *stop = mb->stop;
    *rebalance = mb->rebalance;
    client_done_t *list = mb->head;
    mb->head = mb->tail = NULL;
    mb->kick = mb->rebalance = false;
    pthread_mutex_unlock(&mb->mu);
    return list;
}

typedef struct mail_arg {
    client_mailbox_t *mb;
    void *tag;
    uint32_t epoch;
} mail_arg_t;

/* Loop thread: only hands the answer over. */
static void on_answer(rmq_err_t err, proto_cmd_t *resp, void *arg) {
    mail_arg_t *a = arg;
    client_mailbox_t *mb = a->mb;
    client_done_t *d = cm_calloc(1, sizeof *d);
    d->tag = a->tag;
    d->epoch = a->epoch;
    d->err = err;
    proto_cmd_init(&d->resp);
    if (resp) {
        d->resp = *resp;
        proto_cmd_init(resp);
    }
    pthread_mutex_lock(&mb->mu);
    if (mb->closed) {
        client_done_free(d);
    } else {
        if (mb->tail)
            mb->tail->next = d;
        else
            mb->head = d;
        mb->tail = d;
        pthread_cond_signal(&mb->cv);
    }
    pthread_mutex_unlock(&mb->mu);
    mailbox_unref(mb);
    cm_free(a);
}

/* net_conn_request whose answer lands in mb as a client_done_t with tag and epoch. */
static rmq_err_t mailbox_request(client_mailbox_t *mb, net_conn_t *conn, proto_cmd_t *req,
                                 int64_t timeout_ms, void *tag, uint32_t epoch) {
    mail_arg_t *a = cm_calloc(1, sizeof *a);
    a->mb = mb;
    a->tag = tag;
    a->epoch = epoch;
    atomic_fetch_add(&mb->refs, 1);
    rmq_err_t err = net_conn_request(conn, req, timeout_ms, on_answer, a);
    if (err) {
        atomic_fetch_sub(&mb->refs, 1); /* the owner still holds one */
        cm_free(a);
    }
    return err;
}

rmq_err_t client_cg_send_pull(const client_cg_t *cg, proto_pull_req_t *h, client_mailbox_t *mb,
                              int64_t timeout_ms, void *tag, uint32_t epoch) {
    rmq_err_t err;
    net_conn_t *conn = client_cg_conn(cg, h->topic, h->bname, &err);
    if (!conn) return err;
    h->consumer_group = cg->group;
    h->sub_version = 0; /* Java sends 0 for TAG expressions */
    h->expression_type = "TAG";
    proto_cmd_t req;
    proto_cmd_request(&req, PROTO_PULL_MESSAGE, 0);
    proto_pull_req_encode(h, &req.ext);
    err = mailbox_request(mb, conn, &req, timeout_ms, tag, epoch);
    net_conn_unref(conn);
    return err;
}
