/* The producer's pure decisions: route -> publish list, round-robin queue choice with broker
 * fault avoidance, the hash selector and message checks (client.md §2-§3, message.md §9). */
#include <stdio.h>
#include <stdlib.h>

#include "client.h"

/* ---------------------------------------------------------------- publish list */

static void add_queues(client_pub_t *p, const char *broker, int32_t n) {
    if (n <= 0) return;
    p->queues = cm_realloc(p->queues, (p->count + (size_t)n) * sizeof *p->queues);
    for (int32_t i = 0; i < n; i++) {
        p->queues[p->count].broker_name = cm_strdup(broker);
        p->queues[p->count].queue_id = i;
        p->count++;
    }
}

/* orderTopicConf "brokerA:4;brokerB:8": the brokers in the order given. */
static void add_order_conf(client_pub_t *p, const char *conf) {
    char *copy = cm_strdup(conf), *save = NULL;
    for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        char *colon = strrchr(item, ':');
        if (!colon || colon == item) continue;
        *colon = '\0';
        add_queues(p, item, (int32_t)atoi(colon + 1));
    }
    cm_free(copy);
}

static const proto_broker_data_t *find_broker(const proto_topic_route_t *r, const char *name) {
    for (size_t i = 0; i < r->broker_count; i++)
        if (r->brokers[i].broker_name && strcmp(r->brokers[i].broker_name, name) == 0)
            return &r->brokers[i];
    return NULL;
}

static int cmp_queue_data(const void *a, const void *b) {
    const proto_queue_data_t *x = a, *y = b;
    return strcmp(x->broker_name ? x->broker_name : "", y->broker_name ? y->broker_name : "");
}

static void add_writable(client_pub_t *p, int default_max) {
    proto_topic_route_t *r = &p->route;
    if (r->queue_count > 1) qsort(r->queues, r->queue_count, sizeof *r->queues, cmp_queue_data);
    for (size_t i = 0; i < r->queue_count; i++) {
        proto_queue_data_t *q = &r->queues[i];
        if (!q->broker_name || !(q->perm & PROTO_PERM_WRITE)) continue;
        const proto_broker_data_t *b = find_broker(r, q->broker_name);
        if (!b || !proto_broker_data_addr(b, 0)) continue; /* no master: not writable */
        int32_t n = q->write_queue_nums;
        if (default_max > 0) {
            /* Auto-creation: the broker makes at most this many queues for the new topic. */
            n = q->read_queue_nums < default_max ? q->read_queue_nums : default_max;
            q->read_queue_nums = q->write_queue_nums = n;
        }
        add_queues(p, q->broker_name, n);
    }
}

client_pub_t *client_pub_from_route(proto_topic_route_t *route, int default_max) {
    client_pub_t *p = cm_calloc(1, sizeof *p);
    atomic_init(&p->refs, 1);
    atomic_init(&p->next, (unsigned)(cm_mono_ns() / 1000)); /* random-ish start */
    p->route = *route;
    memset(route, 0, sizeof *route);
    p->from_default = default_max > 0;
    if (p->route.order_topic_conf && *p->route.order_topic_conf) {
        p->order_topic = true;
        add_order_conf(p, p->route.order_topic_conf);
    } else {
        add_writable(p, default_max);
    }
    return p;
}

client_pub_t *client_pub_ref(client_pub_t *p) {
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void client_pub_unref(client_pub_t *p) {
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    for (size_t i = 0; i < p->count; i++)
        cm_free(p->queues[i].broker_name);
    cm_free(p->queues);
    proto_topic_route_free(&p->route);
    cm_free(p);
}

const char *client_pub_master(const client_pub_t *p, const char *broker_name) {
    const proto_broker_data_t *b = find_broker(&p->route, broker_name);
    return b ? proto_broker_data_addr(b, 0) : NULL;
}

/* ---------------------------------------------------------------- fault avoidance */

typedef struct fault {
    int64_t until_ms;
} fault_t;

struct client_faults {
    pthread_mutex_t mu;
    cm_map_t *by_broker; /* broker name -> fault_t */
};

client_faults_t *client_faults_new(void) {
    client_faults_t *f = cm_calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->by_broker = cm_map_new(cm_free);
    return f;
}

void client_faults_destroy(client_faults_t *f) {
    if (!f) return;
    cm_map_destroy(f->by_broker);
    pthread_mutex_destroy(&f->mu);
    cm_free(f);
}

int64_t client_fault_avoid_ms(int64_t latency_ms) {
    /* MQFaultStrategy (4.9.8): latencyMax and notAvailableDuration. */
    static const int64_t latency[] = {50, 100, 550, 1000, 2000, 3000, 15000};
    static const int64_t avoid[] = {0, 0, 30000, 60000, 120000, 180000, 600000};
    for (int i = (int)(sizeof latency / sizeof *latency) - 1; i >= 0; i--)
        if (latency_ms >= latency[i]) return avoid[i];
    return 0;
}

void client_faults_update(client_faults_t *f, const char *broker, int64_t latency_ms,
                          int64_t now_ms) {
    pthread_mutex_lock(&f->mu);
    fault_t *x = cm_map_get(f->by_broker, broker);
    if (!x) {
        x = cm_calloc(1, sizeof *x);
        cm_map_put(f->by_broker, broker, x);
    }
    x->until_ms = now_ms + client_fault_avoid_ms(latency_ms);
    pthread_mutex_unlock(&f->mu);
}

bool client_faults_available(client_faults_t *f, const char *broker, int64_t now_ms) {
    pthread_mutex_lock(&f->mu);
    fault_t *x = cm_map_get(f->by_broker, broker);
    bool ok = !x || now_ms >= x->until_ms;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* ---------------------------------------------------------------- queue choice */

static bool usable(const client_queue_t *q, const char *avoid, client_faults_t *faults,
                   int64_t now_ms) {
    if (avoid && strcmp(q->broker_name, avoid) == 0) return false;
    return !faults || client_faults_available(faults, q->broker_name, now_ms);
}

const client_queue_t *client_pub_select(client_pub_t *p, const char *avoid_broker,
                                        client_faults_t *faults, int64_t now_ms) {
    if (p->count == 0) return NULL;
    unsigned start = atomic_fetch_add(&p->next, 1);
    /* Best first: another broker that is not avoided; then any broker not avoided; then
     * another broker; then plain round robin. */
    const char *avoid_try[] = {avoid_broker, NULL, avoid_broker};
    client_faults_t *fault_try[] = {faults, faults, NULL};
    for (int pass = 0; pass < 3; pass++) {
        if (pass > 0 && !avoid_try[pass] && !fault_try[pass]) continue;
        for (size_t i = 0; i < p->count; i++) {
            const client_queue_t *q = &p->queues[(start + i) % p->count];
            if (usable(q, avoid_try[pass], fault_try[pass], now_ms)) return q;
        }
    }
    return &p->queues[start % p->count];
}

int client_hash_index(const char *key, int n) {
    int32_t h = cm_java_hash(key, strlen(key));
    int32_t r = h % n; /* C and Java agree: the sign follows the dividend */
    return r < 0 ? -r : r;
}

/* ---------------------------------------------------------------- checks */

rmq_err_t client_check_topic(const char *topic, char *why, size_t why_size) {
    if (!topic || !*topic) {
        cm_errstr(why, why_size, "the topic is empty");
        return RMQ_ERR_BAD_TOPIC;
    }
    size_t len = strlen(topic);
    if (len > PROTO_TOPIC_MAX) {
        cm_errstr(why, why_size, "the topic is %zu characters long; at most %d are allowed", len,
                  PROTO_TOPIC_MAX);
        return RMQ_ERR_BAD_TOPIC;
    }
    for (size_t i = 0; i < len; i++)
        if (!proto_topic_char_ok(topic[i])) {
            cm_errstr(why, why_size, "topic \"%s\" has a character outside [%%|a-zA-Z0-9_-]",
                      topic);
            return RMQ_ERR_BAD_TOPIC;
        }
    if (proto_topic_not_sendable(topic)) {
        cm_errstr(why, why_size, "sending to system topic %s is forbidden", topic);
        return RMQ_ERR_BAD_TOPIC;
    }
    return RMQ_OK;
}

static size_t props_size(const proto_props_t *p) {
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += strlen(p->names[i]) + strlen(p->vals[i]) + 2;
    return n;
}

rmq_err_t client_check_msg(const rmq_msg_t *msg, int64_t max_size, char *why, size_t why_size) {
    if (!msg) {
        cm_errstr(why, why_size, "no message");
        return RMQ_ERR_INVALID_ARG;
    }
    rmq_err_t e = client_check_topic(msg->topic, why, why_size);
    if (e) return e;
    if (msg->body_len == 0) {
        cm_errstr(why, why_size, "the message body is empty");
        return RMQ_ERR_MESSAGE_ILLEGAL;
    }
    if ((int64_t)msg->body_len > max_size) {
        cm_errstr(why, why_size, "the message body is %zu bytes, over maxMessageSize %lld",
                  msg->body_len, (long long)max_size);
        return RMQ_ERR_MSG_TOO_LARGE;
    }
    if (props_size(&msg->props) > CLIENT_PROPS_MAX) {
        cm_errstr(why, why_size, "the message properties are over %d bytes", CLIENT_PROPS_MAX);
        return RMQ_ERR_MESSAGE_ILLEGAL;
    }
    return RMQ_OK;
}

void client_split_addrs(const char *text, proto_strlist_t *l) {
    if (!text) return;
    char *copy = cm_strdup(text), *save = NULL;
    for (char *a = strtok_r(copy, ";", &save); a; a = strtok_r(NULL, ";", &save)) {
        while (*a == ' ' || *a == '\t')
            a++;
        char *end = a + strlen(a);
        while (end > a && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
            *--end = '\0';
        if (*a) proto_strlist_add(l, a);
    }
    cm_free(copy);
}
