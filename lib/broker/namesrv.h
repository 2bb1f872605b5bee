/* lib/broker/namesrv.h: the broker's metadata roles — the name server (route tables, broker
 * expiry, KV config) and, through broker_meta_start(), client tracking (clients.h),
 * subscription groups, queue locks and registration with name servers.
 *
 * ---- For the core engineer (broker.c, tools/rmqd): PROPOSED, not written yet ----
 * (lib/net/net.h and broker_int.h did not exist when this was written; the entry points
 * below will be built on them. Until then the tables and handlers here are complete and
 * tested on their own: nsrv_handle() and broker_meta_handle() in clients.h turn a request
 * into a response and are what the processors will call.)
 *
 *   void broker_meta_start(broker_t *b)
 *                         once the topic table is loaded and lib/net's loop exists, before
 *                         the listener accepts: creates b's name-server tables,
 *                         client/group/lock tables, registers the processors for codes
 *                         34 35 38 41 42 100-106 200 206 224, starts the expiry timers (10 s)
 *                         and the registration with namesrvAddr's name servers (30 s) and
 *                         with itself, in-process.
 *   void broker_meta_stop(broker_t *b)
 *                         before the loop stops: UNREGISTER_BROKER to every name server,
 *                         stops every timer, frees every table. Safe if start never ran.
 *   void broker_meta_topics_changed(broker_t *b)
 *                         after a topic was created or changed: registers again at once.
 *   connection closed:    the core's close hook calls nsrv_conn_closed() and
 *                         broker_clients_conn_closed() with the connection.
 *
 *   rmqd --namesrv [-p PORT]:  nsrv_server_t *nsrv_server_new(const rmq_conf_t *conf,
 *                         int port, char *errstr, size_t size) / nsrv_server_destroy():
 *                         a name server alone on PORT (9876 by default) over lib/net, its
 *                         KV config in $HOME/namesrv/kvConfig.json.
 *
 * Every table hangs off the broker handle (or the nsrv_server_t): two brokers live in one
 * process without sharing anything. */
#ifndef RMQ_BROKER_NAMESRV_H
#define RMQ_BROKER_NAMESRV_H

#include "proto/proto.h"

/* Brokers that did not register for this long are dropped (RouteInfoManager). */
#define NSRV_BROKER_EXPIRY_MS 120000
/* How often the expiry scan runs. */
#define NSRV_SCAN_INTERVAL_MS 10000
/* The remark of a route look-up for an unknown topic ends with this (FAQUrl.suggestTodo). */
#define NSRV_FAQ_SUFFIX "\nSee http://rocketmq.apache.org/docs/faq/ for further details."
/* The KV namespace whose table answers REGISTER_BROKER (ordered topics' queue config). */
#define NSRV_NS_ORDER_TOPIC_CONFIG "ORDER_TOPIC_CONFIG"
/* Request versions that change answers: V3_0_11 (RegisterBrokerBody wraps the topic table),
 * V4_9_4 (routes in standard JSON). */
#define NSRV_V3_0_11 37
#define NSRV_V4_9_4 401

typedef struct nsrv nsrv_t;

typedef struct nsrv_opts {
    const cm_logger_t *log;   /* NULL: default logger */
    int64_t broker_expiry_ms; /* 0: NSRV_BROKER_EXPIRY_MS */
    const char *kv_path;      /* kvConfig.json; NULL or "": KV config in memory only */
} nsrv_opts_t;

nsrv_t *nsrv_new(const nsrv_opts_t *opts);
void nsrv_destroy(nsrv_t *ns);

/* A REGISTER_BROKER request, decoded. Pointers are borrowed for the call. */
typedef struct nsrv_reg {
    const char *cluster, *broker_name, *broker_addr, *ha_addr;
    int64_t broker_id;
    /* The topic table and its data version; NULL when the request had no body (the
     * broker's queue data stays as it was). */
    const proto_register_broker_body_t *body;
} nsrv_reg_t;

/* Filled for slaves whose master is registered (RegisterBrokerResult). */
typedef struct nsrv_reg_result {
    char master_addr[128];
    char ha_server_addr[128];
} nsrv_reg_result_t;

/* Registers (or refreshes) a broker. conn is the connection it came over (dropped with it
 * when that closes), NULL for an in-process registration. A master's topics are rewritten
 * when its data version changed or it is new; topics are never removed by registering. */
void nsrv_register(nsrv_t *ns, const nsrv_reg_t *reg, void *conn, nsrv_reg_result_t *out);
void nsrv_unregister(nsrv_t *ns, const char *cluster, const char *broker_name,
                     const char *broker_addr, int64_t broker_id);
/* Drops every broker that registered over conn. */
void nsrv_conn_closed(nsrv_t *ns, void *conn);
/* Drops brokers whose last registration is older than the expiry at now_ms (monotonic, as
 * cm_mono_ms()). Returns how many; *conns (malloc'd, caller frees) gets their connections,
 * to be closed by the caller. */
size_t nsrv_expire(nsrv_t *ns, int64_t now_ms, void ***conns, size_t *n_conns);

/* Fills out (zeroed by the caller, freed with proto_topic_route_free) with the topic's
 * route; false when the topic has no queue data or none of its brokers is alive. */
bool nsrv_route(nsrv_t *ns, const char *topic, proto_topic_route_t *out);
/* ClusterInfo: every broker name and the clusters listing them. */
void nsrv_cluster_info(nsrv_t *ns, proto_cluster_info_t *out);
/* Every topic, or (cluster non-NULL) the topics a broker of that cluster serves. */
void nsrv_topic_list(nsrv_t *ns, const char *cluster, proto_topic_list_t *out);

/* KV config (namespace, key) -> value, persisted to kv_path when set. */
void nsrv_kv_put(nsrv_t *ns, const char *ns_name, const char *key, const char *value);
/* Returns a malloc'd copy, NULL when absent. */
char *nsrv_kv_get(nsrv_t *ns, const char *ns_name, const char *key);
void nsrv_kv_delete(nsrv_t *ns, const char *ns_name, const char *key);
/* The pairs of one namespace into out (a KVTable); false when the namespace is empty. */
bool nsrv_kv_table(nsrv_t *ns, const char *ns_name, proto_ext_t *out);

/* Answers a name-server request (codes 100-106, 206, 224) into resp, which the caller
 * sends. conn is the requester's connection (kept for REGISTER_BROKER). Returns false
 * for other codes (resp untouched). */
bool nsrv_handle(nsrv_t *ns, void *conn, const proto_cmd_t *req, proto_cmd_t *resp);

#endif
