/* lib/client: the client side — client instances shared per client id (connections, routes,
 * heartbeats, a callback pool), the producer and the pull consumer. The public API
 * (include/rmq/producer.h, consumer.h) sits on top; this header is what the layer's own
 * files and its unit tests share.
 *
 * Threads. An instance owns one net loop (its I/O thread) and a callback pool. The loop
 * thread only moves responses into pool jobs; everything that may block or call user code
 * (retries, route look-ups, user callbacks, periodic route refresh and heartbeats) runs on
 * a pool thread. */
#ifndef RMQ_CLIENT_H
#define RMQ_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>

#include "net/net.h"
#include "proto/proto.h"

#define CLIENT_INNER_PRODUCER "CLIENT_INNER_PRODUCER"
#define CLIENT_PROPS_MAX 32767      /* properties string limit (message.md §9) */
#define CLIENT_FAILED_LATENCY 30000 /* a failed attempt counts as this latency, ms */

/* ================================================================ pure parts (route.c) */

/* One writable queue of a topic. */
typedef struct client_queue {
    char *broker_name;
    int32_t queue_id;
} client_queue_t;

/* Where a topic can be written: the publish list of client.md §2, plus the route it came from
 * (for broker addresses). Shared by reference count between the route cache and sends in
 * flight, so a refresh never frees a list a send is reading. Immutable once built except
 * for the round-robin counter. */
typedef struct client_pub {
    atomic_int refs;
    atomic_uint next;  /* round-robin counter, random start */
    bool order_topic;  /* built from orderTopicConf */
    bool from_default; /* built from createTopicKey's route: the topic does not exist yet */
    client_queue_t *queues;
    size_t count;
    proto_topic_route_t route;
} client_pub_t;

/* Builds the publish list from route (taken: its contents move into the result, route is
 * left zeroed). orderTopicConf "a:4;b:4" wins when present; otherwise queueDatas sorted by
 * broker name, writable ones whose broker has a master, queues 0..writeQueueNums-1.
 * default_max > 0 means route is createTopicKey's: each broker offers at most
 * min(default_max, readQueueNums) queues (how a send auto-creates a topic). Never NULL; the
 * list may be empty. */
client_pub_t *client_pub_from_route(proto_topic_route_t *route, int default_max);
client_pub_t *client_pub_ref(client_pub_t *p);
void client_pub_unref(client_pub_t *p);
/* Master address of broker_name in p's route, or NULL. Borrowed from p. */
const char *client_pub_master(const client_pub_t *p, const char *broker_name);

/* Broker fault avoidance (sendLatencyFaultEnable): per broker name, the time until which it
 * is avoided. Thread-safe. */
typedef struct client_faults client_faults_t;
client_faults_t *client_faults_new(void);
void client_faults_destroy(client_faults_t *f);
/* Records an attempt that took latency_ms (CLIENT_FAILED_LATENCY for a failure) at now_ms:
 * the broker is avoided for the time RocketMQ 4.9.8's table gives that latency. */
void client_faults_update(client_faults_t *f, const char *broker, int64_t latency_ms,
                          int64_t now_ms);
bool client_faults_available(client_faults_t *f, const char *broker, int64_t now_ms);
/* How long RocketMQ 4.9.8 avoids a broker after an attempt of latency_ms. */
int64_t client_fault_avoid_ms(int64_t latency_ms);

/* Picks the next queue by round robin. avoid_broker (the broker of the previous failed
 * attempt, or NULL) is skipped when another broker has queues; with faults non-NULL,
 * brokers under avoidance are skipped while an available one exists. NULL if p is empty. */
const client_queue_t *client_pub_select(client_pub_t *p, const char *avoid_broker,
                                        client_faults_t *faults, int64_t now_ms);

/* Java's SelectMessageQueueByHash over key: |hashCode(key) % n|. n > 0. */
int client_hash_index(const char *key, int n);

/* Message checks before a send (message.md §9). RMQ_ERR_BAD_TOPIC for an empty, too long or
 * illegal topic (or a system topic a producer may not write); RMQ_ERR_MESSAGE_ILLEGAL for an
 * empty body or properties over 32767 bytes; RMQ_ERR_MSG_TOO_LARGE for a body over max_size.
 * why (may be NULL) gets a sentence. */
rmq_err_t client_check_topic(const char *topic, char *why, size_t why_size);
rmq_err_t client_check_msg(const rmq_msg_t *msg, int64_t max_size, char *why, size_t why_size);

/* Name-server list "a:1;b:2" into l (entries trimmed, empty ones dropped). */
void client_split_addrs(const char *text, proto_strlist_t *l);

/* ================================================================ callback pool (pool.c) */

typedef struct client_pool client_pool_t;
typedef void(client_job_fn)(void *arg);
/* A queued job. client_pool_post_job takes one that lives in the caller's own state, so a
 * post per message allocates nothing; the pool does not touch it once fn starts (fn may
 * free it). */
typedef struct client_job {
    client_job_fn *fn;
    void *arg;
    struct client_job *next;
    bool pooled; /* allocated by client_pool_post, freed after it ran */
} client_job_t;
client_pool_t *client_pool_new(int threads, rmq_err_t *err);
/* Queues fn(arg) for a pool thread. RMQ_ERR_SHUTDOWN once the pool is stopping (fn is then
 * not called). Any thread. */
rmq_err_t client_pool_post(client_pool_t *pool, client_job_fn *fn, void *arg);
/* client_pool_post with the caller's job storage, which must stay valid until fn runs
 * (or until this fails). */
rmq_err_t client_pool_post_job(client_pool_t *pool, client_job_t *job, client_job_fn *fn,
                               void *arg);
/* Posts from the calling thread no longer wake pool threads one by one: they wait for that
 * thread's next client_pool_release, which wakes as many threads as the queued work needs
 * (the instance's I/O thread releases at the end of each loop round, a push consumer's
 * service thread after each batch of pull results). */
void client_pool_defer_here(client_pool_t *pool);
void client_pool_release(client_pool_t *pool);
/* Runs every job already queued and joins the threads; later posts get RMQ_ERR_SHUTDOWN and
 * client_pool_release does nothing, until client_pool_destroy frees the pool. Idempotent. */
void client_pool_stop(client_pool_t *pool);
/* client_pool_stop, then frees the pool. Not from a pool thread. */
void client_pool_destroy(client_pool_t *pool);
bool client_pool_on_thread(const client_pool_t *pool);

/* ================================================================ instance (instance.c) */

typedef struct client_instance client_instance_t;

/* The instance for conf's client id (clientIP@instanceName[@unitName]), created on first
 * use, shared afterwards (reference counted). The first caller's conf sets the name servers,
 * intervals and logger. NULL with errstr when it cannot start (no name server, no thread). */
client_instance_t *client_instance_get(const rmq_conf_t *conf, char *errstr, size_t size);
/* Drops a reference; the last one stops the periodic work, closes connections, joins the
 * threads and frees the instance. Never from one of the instance's own threads. */
void client_instance_release(client_instance_t *ci);

const char *client_instance_id(const client_instance_t *ci);
const cm_logger_t *client_instance_logger(const client_instance_t *ci);
client_pool_t *client_instance_pool(client_instance_t *ci);
client_faults_t *client_instance_faults(client_instance_t *ci);
proto_uniq_gen_t *client_instance_uniq(client_instance_t *ci);

/* A broker's CHECK_TRANSACTION_STATE for the producer's group: called on the loop thread
 * with the instance's lock held (never after client_instance_unregister_producer returns),
 * so it must not block nor call into the instance. It may move req's contents out. */
typedef void(client_tx_check_fn)(void *opaque, net_conn_t *conn, proto_cmd_t *req);

/* Producer groups announced in heartbeats. register: RMQ_ERR_STATE if the group is already
 * registered on this instance (Java refuses two producers of one group per instance).
 * tx_check (may be NULL) receives the group's transaction checks. */
rmq_err_t client_instance_register_producer(client_instance_t *ci, const char *group,
                                            client_tx_check_fn *tx_check, void *opaque);
/* Removes the group and sends UNREGISTER_CLIENT for it to every known broker. */
void client_instance_unregister_producer(client_instance_t *ci, const char *group);
/* What a consumer gives its instance. Both hooks are called with the instance's lock held
 * (so never after client_instance_unregister_consumer returns): they must not call back into
 * the instance, and must take only locks that are never held while calling it.
 *   heartbeat: fills c (a zeroed entry of the heartbeat being built) with the group's
 *     consumer data; any thread of the instance, or a thread calling client_instance_heartbeat.
 *   ids_changed: a broker sent NOTIFY_CONSUMER_IDS_CHANGED for the group (rebalance soon);
 *     the loop thread, so it must not block. May be NULL. */
typedef struct client_consumer_hooks {
    void (*heartbeat)(void *opaque, proto_consumer_data_t *c);
    void (*ids_changed)(void *opaque);
    /* reset_offset: a broker sent RESET_CONSUMER_CLIENT_OFFSET for the group (backtracking):
     * body is its ResetOffsetBody ({"offsetTable":{<MessageQueue>:offset}}, as the broadcasting
     * offsets file) for topic. The loop thread: must not block. May be NULL (ignored, as Java
     * ignores it for anything but a push consumer). */
    void (*reset_offset)(void *opaque, const char *topic, const uint8_t *body, size_t len);
    /* consume_directly: a broker relays an admin's CONSUME_MESSAGE_DIRECTLY (309) for the
     * group: the hook takes the request (moves req's contents out) and answers it on conn
     * later, off the loop thread; false: not taken (the consumer is not running), the
     * instance answers SYSTEM_ERROR. The loop thread: must not block. May be NULL (a pull
     * consumer: SYSTEM_ERROR, as Java answers for anything but a push consumer). */
    bool (*consume_directly)(void *opaque, net_conn_t *conn, proto_cmd_t *req);
} client_consumer_hooks_t;

/* Consumer groups announced in heartbeats. RMQ_ERR_STATE if the group already has a consumer
 * on this instance (Java refuses that too). */
rmq_err_t client_instance_register_consumer(client_instance_t *ci, const char *group,
                                            const client_consumer_hooks_t *hooks, void *opaque);
/* Removes the group (its hooks are not called again) and sends UNREGISTER_CLIENT for it to
 * every known broker, whose NOTIFY_CONSUMER_IDS_CHANGED then tells the rest of the group. */
void client_instance_unregister_consumer(client_instance_t *ci, const char *group);

/* The master address of broker_name as last seen in a route (a new string), or NULL. */
char *client_instance_master(client_instance_t *ci, const char *broker_name);

/* Sends a heartbeat to every known master now (blocking, from a non-loop thread). */
void client_instance_heartbeat(client_instance_t *ci);

/* The publish list of topic (a reference to release with client_pub_unref): the cached one,
 * else fetched from the name server, else — when the topic does not exist — built from
 * createTopicKey's route with at most default_queues queues per broker. Blocks on a name-server
 * request when nothing is cached. RMQ_ERR_NO_ROUTE (or a network error) with *out NULL. */
rmq_err_t client_instance_pub(client_instance_t *ci, const char *topic, const char *default_topic,
                              int default_queues, int64_t timeout_ms, client_pub_t **out);
/* Forgets topic's cached route so the next send asks the name server again (after a broker
 * answered TOPIC_NOT_EXIST). */
void client_instance_route_stale(client_instance_t *ci, const char *topic);

/* A connection to addr (a reference for the caller to net_conn_unref): the open one, or a
 * new one. NULL with *err. */
net_conn_t *client_instance_conn(client_instance_t *ci, const char *addr, rmq_err_t *err);

/* ================================================================ consumers (consumer_common.c) */

#define CLIENT_RETRY_PREFIX "%RETRY%" /* + group: where a group's failed messages come back */

struct client_alloc_strategy;

/* What every consumer of a group needs for its broker calls: the instance (set at start),
 * the group (borrowed from the consumer's conf) and the settings of client.md §4. */
typedef struct client_cg {
    client_instance_t *ci;
    const char *group;
    const struct client_alloc_strategy *strategy;
    proto_consume_from_t from;
    int64_t consume_ts, api_timeout_ms;
} client_cg_t;

/* Reads consumerGroup, the name servers' presence, allocateMessageQueueStrategy,
 * consumeFromWhere, consumeTimestamp and mqClientApiTimeout from conf (which must outlive
 * cg). false with a sentence in errstr when one is missing or wrong. */
bool client_cg_init(client_cg_t *cg, const rmq_conf_t *conf, char *errstr, size_t size);
/* A legal consumerGroup (Java's checkConfig); false with a sentence. */
bool client_group_ok(const char *group, char *errstr, size_t size);

/* One subscription: topic, its tag expression and the parsed tags for the client-side
 * filter. */
typedef struct client_sub {
    char *topic, *expr;
    proto_subscription_t tags;
    int64_t version;
} client_sub_t;
/* A consumer's subscriptions, one per topic (guarded by the consumer's lock). */
typedef struct client_subs {
    client_sub_t *items;
    size_t count;
} client_subs_t;
/* Subscribes topic with expression ("*" for NULL or ""), replacing its earlier expression. */
void client_subs_put(client_subs_t *subs, const char *topic, const char *expression);
/* topic's subscription, or NULL. */
const client_sub_t *client_subs_find(const client_subs_t *subs, const char *topic);
/* Appends every subscribed topic to out. */
void client_subs_topics(const client_subs_t *subs, proto_strlist_t *out);
/* Adds every subscription to a heartbeat's consumer data. */
void client_subs_to_heartbeat(const client_subs_t *subs, proto_consumer_data_t *d);
void client_subs_free(client_subs_t *subs);
/* Whether m passes the tag filter as Java's processPullResult applies it (s NULL: yes). */
bool client_sub_match(const client_sub_t *s, const rmq_msg_t *m);

#define CLIENT_MAX_PULLED_BODY (64u << 20) /* a pulled body is not inflated beyond this */
/* The next message of a PULL_MESSAGE answer's body from *pos on (advanced), built, passed
 * through s's tag filter and marked with broker's name; NULL at the end. Records that do not
 * decode are skipped. */
rmq_msg_t *client_next_pulled(const proto_cmd_t *resp, size_t *pos, const client_sub_t *s,
                              const char *broker);

/* Learns the brokers of topics (their routes) and sends a heartbeat, so the group is known
 * wherever it will pull. */
void client_cg_announce(const client_cg_t *cg, const proto_strlist_t *topics);

/* The master address of broker (a new string, NULL if unknown), learning topic's route when
 * needed; and an open connection to it (a reference, NULL with *err). */
char *client_cg_broker_addr(const client_cg_t *cg, const char *topic, const char *broker);
net_conn_t *client_cg_conn(const client_cg_t *cg, const char *topic, const char *broker,
                           rmq_err_t *err);
/* Sends req (consumed) to broker's master and waits mqClientApiTimeout: the response code
 * (resp filled on 0 and on broker codes, to be freed by the caller) or a local error. */
rmq_err_t client_cg_call(const client_cg_t *cg, const char *topic, const char *broker,
                         proto_cmd_t *req, proto_cmd_t *resp);
/* GET_MIN_OFFSET / GET_MAX_OFFSET (code) of a queue. */
rmq_err_t client_cg_queue_offset(const client_cg_t *cg, int32_t code, const char *topic,
                                 const char *broker, int32_t qid, int64_t *offset);
rmq_err_t client_cg_search_offset(const client_cg_t *cg, const char *topic, const char *broker,
                                  int32_t qid, int64_t ts, int64_t *offset);
/* The group's offset stored on the broker (RMQ_ERR_QUERY_NOT_FOUND: none). */
rmq_err_t client_cg_query_committed(const client_cg_t *cg, const char *topic, const char *broker,
                                    int32_t qid, int64_t *offset);
rmq_err_t client_cg_update_committed(const client_cg_t *cg, const char *topic, const char *broker,
                                     int32_t qid, int64_t offset);
/* Where a queue with no offset of the group starts: consumeFromWhere as Java's
 * computePullFromWhere reads it (retry topics: 0 for LAST, max for TIMESTAMP). */
rmq_err_t client_cg_from_where(const client_cg_t *cg, const char *topic, const char *broker,
                               int32_t qid, int64_t *offset);
/* The stored offset (*stored true) or else client_cg_from_where's. */
rmq_err_t client_cg_start_offset(const client_cg_t *cg, const char *topic, const char *broker,
                                 int32_t qid, int64_t *offset, bool *stored);
/* Appends topic's readable queues to out, sorted as RebalanceImpl sorts them. */
rmq_err_t client_cg_topic_queues(const client_cg_t *cg, const char *topic, proto_mq_list_t *out);
/* This client's share of topic among the group's members (GET_CONSUMER_LIST_BY_GROUP and
 * the strategy), appended to mine, sorted. RMQ_ERR_NO_ROUTE when the topic has no queues;
 * RMQ_ERR_STATE when the broker does not list this client in the group (it missed a heartbeat):
 * the caller keeps its queues. */
rmq_err_t client_cg_share(const client_cg_t *cg, const char *topic, proto_mq_list_t *mine);

/* A consumer thread's mailbox: answers of its asynchronous requests (pulls), handed over by
 * the loop thread, and its wake-up flags. Shared by reference with the requests in flight,
 * so an answer arriving after the consumer is gone finds a closed mailbox instead of freed
 * memory. */
typedef struct client_done {
    struct client_done *next;
    void *tag;      /* what the request was for; never dereferenced by the mailbox */
    uint32_t epoch; /* the caller's, copied */
    rmq_err_t err;  /* local error (then resp is empty), else RMQ_OK */
    proto_cmd_t resp;
} client_done_t;
typedef struct client_mailbox client_mailbox_t;

client_mailbox_t *client_mailbox_new(void);
/* Wakes the waiting thread; rebalance / stop are remembered until it takes them. */
void client_mailbox_kick(client_mailbox_t *mb, bool rebalance, bool stop);
/* The owner lets go: later answers are dropped. */
void client_mailbox_close(client_mailbox_t *mb);
/* Waits until wake_mono_ms or a kick or an answer; returns the answers that came (a list to
 * free with client_done_free) and the flags, which it clears (stop stays set). */
client_done_t *client_mailbox_wait(client_mailbox_t *mb, int64_t wake_mono_ms, bool *stop,
                                   bool *rebalance);
void client_done_free(client_done_t *d);
/* Sends h as a PULL_MESSAGE of cg's group (h->topic, h->bname, queue, offset, batch, flags,
 * commit offset, suspend time and TAG expression are the caller's) to its broker's master;
 * the answer lands in mb as a client_done_t with tag and epoch. A local error if not sent. */
rmq_err_t client_cg_send_pull(const client_cg_t *cg, proto_pull_req_t *h, client_mailbox_t *mb,
                              int64_t timeout_ms, void *tag, uint32_t epoch);

#endif
