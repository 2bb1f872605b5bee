/* lib/broker/clients.h: what the broker knows about its clients — producer and consumer
 * groups from HEART_BEAT (members, their connections, subscriptions), subscription group
 * configs (subgroups.c) and orderly queue locks (locks.c).
 *
 * Look-ups for other processors (pull.c, transactions):
 *   broker_clients_find_sub()       a consumer group's subscription of a topic (24/25)
 *   broker_clients_group_online()   whether a consumer group has a member online
 *   broker_clients_producer_conn()  one live connection of a producer group (check-back)
 *   broker_subgroups_find()         a group's config, auto-created when allowed (26) */
#ifndef RMQ_BROKER_CLIENTS_H
#define RMQ_BROKER_CLIENTS_H

#include "broker/namesrv.h" /* broker_conn_ops_t */
#include "proto/proto.h"

/* Client channels idle this long are dropped (channelExpiredTimeout). */
#define BROKER_CHANNEL_EXPIRY_MS 120000
#define BROKER_CLIENT_SCAN_INTERVAL_MS 10000
/* A queue lock not renewed this long may go to another client (lockMaxLiveTime). */
#define BROKER_LOCK_MAX_LIVE_MS 60000

/* ================================================================ queue locks */

/* A MessageQueue: equal when all three fields are. Borrowed strings. */
typedef struct broker_mq {
    const char *topic;
    const char *broker_name;
    int32_t queue_id;
} broker_mq_t;

typedef struct broker_locks broker_locks_t;

broker_locks_t *broker_locks_new(int64_t max_live_ms); /* 0: BROKER_LOCK_MAX_LIVE_MS */
void broker_locks_destroy(broker_locks_t *l);
/* Tries to lock each queue for client_id at now_ms (monotonic). granted[i] says whether
 * mqs[i] is now the client's (new, renewed, or taken over from an expired holder).
 * Returns how many were granted. */
size_t broker_locks_try(broker_locks_t *l, const char *group, const char *client_id,
                        const broker_mq_t *mqs, size_t n, bool *granted, int64_t now_ms);
/* Releases the queues client_id holds; queues held by others are left alone. */
void broker_locks_unlock(broker_locks_t *l, const char *group, const char *client_id,
                         const broker_mq_t *mqs, size_t n);
/* Whether mq is held (and not expired) at now_ms; the holder's id into client_id. */
bool broker_locks_holder(broker_locks_t *l, const char *group, const broker_mq_t *mq,
                         int64_t now_ms, char *client_id, size_t size);

/* ================================================================ client groups */

/* Subscriptions are proto_subscription_t (proto_headers.h), as HEART_BEAT carries them;
 * free copies with proto_subscription_free(). */
void broker_sub_copy(proto_subscription_t *dst, const proto_subscription_t *src);

/* One member's declaration of a consumer group (ConsumerData). */
typedef struct broker_consumer_decl {
    const char *group;
    const char *consume_type;       /* CONSUME_ACTIVELY / CONSUME_PASSIVELY */
    const char *message_model;      /* CLUSTERING / BROADCASTING */
    const char *consume_from_where; /* CONSUME_FROM_LAST_OFFSET ... */
    bool unit_mode;
    const proto_subscription_t *subs;
    size_t n_subs;
} broker_consumer_decl_t;

/* Identity of a client connection (ClientChannelInfo). */
typedef struct broker_client_id {
    void *conn;            /* the connection; compared by address, referenced while stored */
    const char *client_id; /* "ip@instance" */
    int32_t language;
    int32_t version;
} broker_client_id_t;

typedef struct broker_clients broker_clients_t;

/* Called (outside any lock) to send NOTIFY_CONSUMER_IDS_CHANGED for group to conn; conn is
 * referenced for the duration of the call. */
typedef void(broker_notify_fn)(void *arg, void *conn, const char *group);

/* ops (copied; NULL: none) keeps every stored connection referenced, so none dangles. */
broker_clients_t *broker_clients_new(const cm_logger_t *log, int64_t channel_expiry_ms,
                                     const broker_conn_ops_t *ops, broker_notify_fn *notify,
                                     void *notify_arg);
void broker_clients_destroy(broker_clients_t *c);

/* Registers a consumer member; notifies every member when the group's membership or topic
 * set changed and notify_enabled. Returns true when something changed. */
bool broker_clients_register_consumer(broker_clients_t *c, const broker_client_id_t *who,
                                      const broker_consumer_decl_t *decl, bool notify_enabled,
                                      int64_t now_ms);
void broker_clients_register_producer(broker_clients_t *c, const broker_client_id_t *who,
                                      const char *group, int64_t now_ms);
/* UNREGISTER_CLIENT: drops conn from the group; notifies the members left. */
void broker_clients_unregister_consumer(broker_clients_t *c, void *conn, const char *group,
                                        bool notify_enabled);
void broker_clients_unregister_producer(broker_clients_t *c, void *conn, const char *group);
/* Drops conn from every group (it closed); notifies the members left. */
void broker_clients_conn_closed(broker_clients_t *c, void *conn);
/* Drops members idle longer than the expiry at now_ms; notifies the members left. Returns
 * how many were dropped; *conns (malloc'd) gets their connections for the caller to close,
 * each with a reference (ops.ref) the caller releases. */
size_t broker_clients_expire(broker_clients_t *c, int64_t now_ms, void ***conns, size_t *n_conns);

/* The client ids of a consumer group's members, sorted (as clients sort them before
 * allocating queues). Returns the count; *ids (malloc'd array of malloc'd strings) is the
 * caller's: free with broker_clients_free_ids(). 0 and NULL when none is online. */
size_t broker_clients_consumer_ids(broker_clients_t *c, const char *group, char ***ids);
void broker_clients_free_ids(char **ids, size_t n);
/* The connections of a consumer group's members (0 and NULL when none is online), each with
 * a reference (ops.ref): release them all with broker_clients_release_conns(). */
size_t broker_clients_consumer_conns(broker_clients_t *c, const char *group, void ***conns);
void broker_clients_release_conns(broker_clients_t *c, void **conns, size_t n);
bool broker_clients_group_online(broker_clients_t *c, const char *group);
/* Copies the group's subscription of topic into *out (free with proto_subscription_free).
 * False when the group or the topic is unknown. */
bool broker_clients_find_sub(broker_clients_t *c, const char *group, const char *topic,
                             proto_subscription_t *out);
/* The group's consumeType / messageModel / consumeFromWhere as last declared (copies into
 * the buffers); false when the group is unknown. */
bool broker_clients_consumer_info(broker_clients_t *c, const char *group, char *consume_type,
                                  char *message_model, char *consume_from_where, size_t size);
/* One connection of a producer group (the most recently seen), NULL when none; with a
 * reference (ops.ref) the caller releases. */
void *broker_clients_producer_conn(broker_clients_t *c, const char *group);
/* The connection client_id speaks for in consumer group (the most recently seen when it
 * has several), NULL when it is not online; with a reference the caller releases. */
void *broker_clients_consumer_conn(broker_clients_t *c, const char *group, const char *client_id);

/* A consumer group as GET_CONSUMER_CONNECTION_LIST shows it: its members (each conn with a
 * reference) and what it last declared. Everything is a copy the view owns. */
typedef struct broker_member_view {
    void *conn;
    char *client_id;
    int32_t language, version;
} broker_member_view_t;

typedef struct broker_group_view {
    broker_member_view_t *members;
    size_t n_members;
    proto_subscription_t *subs;
    size_t n_subs;
    char consume_type[32], message_model[32], consume_from_where[64];
} broker_group_view_t;

/* Fills *v; false (v empty) when nobody of the group is online. */
bool broker_clients_group_view(broker_clients_t *c, const char *group, broker_group_view_t *v);
/* Releases the references and frees the copies. */
void broker_clients_group_view_free(broker_clients_t *c, broker_group_view_t *v);

/* ================================================================ subscription groups */

/* SubscriptionGroupConfig. */
typedef struct broker_subgroup {
    char group_name[256];
    bool consume_enable, consume_from_min_enable, consume_broadcast_enable;
    int32_t retry_queue_nums; /* 1 */
    int32_t retry_max_times;  /* 16 */
    int64_t broker_id, which_broker_when_consume_slowly;
    bool notify_consumer_ids_changed_enable;
} broker_subgroup_t;

typedef struct broker_subgroups broker_subgroups_t;

/* RocketMQ's defaults for a new group. */
void broker_subgroup_defaults(broker_subgroup_t *g, const char *name);
/* A SubscriptionGroupConfig JSON object (the body of UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
 * an entry of subscriptionGroup.json). RMQ_ERR_MALFORMED without a groupName. */
rmq_err_t broker_subgroup_from_json(const proto_json_t *obj, broker_subgroup_t *g);

/* path: config/subscriptionGroup.json (loaded now, its .bak when it is unreadable), NULL or
 * "": memory only. auto_create: autoCreateSubscriptionGroup. Changes are written by
 * broker_subgroups_persist() and by destroy. */
broker_subgroups_t *broker_subgroups_new(const char *path, bool auto_create,
                                         const cm_logger_t *log);
void broker_subgroups_destroy(broker_subgroups_t *sg);
/* Copies group's config into out (may be NULL); creates it first when auto-creation is on.
 * False when the group does not exist (SUBSCRIPTION_GROUP_NOT_EXIST, 26). */
bool broker_subgroups_find(broker_subgroups_t *sg, const char *group, broker_subgroup_t *out);
void broker_subgroups_update(broker_subgroups_t *sg, const broker_subgroup_t *g);
size_t broker_subgroups_count(broker_subgroups_t *sg);
/* Writes the file if the table changed since the last write (any thread; writes and syncs
 * a small file). False on an I/O error (logged; the next call tries again). */
bool broker_subgroups_persist(broker_subgroups_t *sg);

/* ================================================================ request handlers */

/* The tables one broker's client-facing processors work on, and the broker services they
 * need. Everything hangs off the broker; nothing is global. */
typedef struct broker_meta_tables {
    broker_clients_t *clients;
    broker_subgroups_t *subgroups;
    broker_locks_t *locks;
    /* Creates %RETRY%<group> if absent (retryQueueNums queues, perm read|write, sysFlag);
     * NULL: no topic table (tests). */
    void (*ensure_retry_topic)(void *arg, const char *topic, int32_t queue_nums, int32_t perm,
                               int32_t sys_flag);
    void *arg;
} broker_meta_tables_t;

/* Answers HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP, LOCK_BATCH_MQ,
 * UNLOCK_BATCH_MQ and UPDATE_AND_CREATE_SUBSCRIPTIONGROUP into resp (which the caller sends
 * unless the request was oneway). conn is the requester's connection. Returns false for
 * other codes (resp untouched). */
bool broker_meta_handle(broker_meta_tables_t *t, void *conn, const proto_cmd_t *req,
                        proto_cmd_t *resp);

#endif
