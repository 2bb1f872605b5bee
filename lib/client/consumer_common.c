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

void client_sub_set(client_sub_t *s, const char *expression) {
    cm_free(s->expr);
    proto_subscription_free(&s->tags);
    memset(&s->tags, 0, sizeof s->tags);
    s->expr = cm_strdup(expression && *expression ? expression : "*");
    proto_subscription_set_tags(&s->tags, s->expr);
    s->version = cm_now_ms();
}

void client_sub_free(client_sub_t *s) {
    cm_free(s->topic);
    cm_free(s->expr);
    proto_subscription_free(&s->tags);
}

bool client_sub_match(const client_sub_t *s, const rmq_msg_t *m) {
    if (!s || s->tags.tags.count == 0) return true;
    const char *t = proto_props_get(&m->props, PROP_TAGS);
    if (!t) return false;
    for (size_t i = 0; i < s->tags.tags.count; i++)
        if (strcmp(s->tags.tags.items[i], t) == 0) return true;
    return false;
}

void client_sub_to_heartbeat(const client_sub_t *s, proto_consumer_data_t *d) {
    proto_subscription_t *hs = proto_consumer_data_add_sub(d);
    hs->topic = cm_strdup(s->topic);
    proto_subscription_set_tags(hs, s->expr);
    hs->sub_version = s->version;
    hs->expression_type = cm_strdup("TAG");
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
