/* lib/broker/namesrv.h: the broker's metadata roles — the name server (route tables, broker
 * expiry, KV config) and, through broker_meta_start() (register.c, hooks declared in
 * broker_int.h), client tracking (clients.h), subscription groups, queue locks and
 * registration with name servers.
 *
 * How it is wired:
 *   broker_meta_start(b)  creates b's name-server tables, client/group/lock tables, registers
 *                         the processors for codes 34 35 38 41 42 100-106 200 206 224, the
 *                         broker itself in its own tables (in-process), starts the expiry
 *                         and persist timers and the registration with namesrvAddr's name
 *                         servers (at once, then every registerNameServerPeriod).
 *   broker_meta_stop(b)   UNREGISTER_BROKER to every name server it registered with, stops
 *                         every timer, frees every table.
 *   broker_meta_topics_changed(b)  registers again at once (itself, then the name servers).
 *   connection closed:    broker.c's close hook calls nsrv_conn_closed() and
 *                         broker_clients_conn_closed().
 *   rmqd --namesrv:       nsrv_server_new() / nsrv_server_destroy() below (nsrv_server.c).
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
/* The KV namespace whose table answers REGISTER_BROKER (ordered topics' queue config). */
#define NSRV_NS_ORDER_TOPIC_CONFIG "ORDER_TOPIC_CONFIG"
/* Request versions that change answers: V3_0_11 (RegisterBrokerBody wraps the topic table),
 * V4_9_4 (routes in standard JSON). */
#define NSRV_V3_0_11 37
#define NSRV_V4_9_4 401

typedef struct nsrv nsrv_t;

/* How a table keeps a connection it stores alive (lib/net's net_conn_ref/net_conn_unref, so
 * a stored pointer never dangles). NULL members: connections are plain keys (unit tests). */
typedef struct broker_conn_ops {
    void *(*ref)(void *conn);
    void (*unref)(void *conn);
} broker_conn_ops_t;

typedef struct nsrv_opts {
    const cm_logger_t *log;            /* NULL: default logger */
    int64_t broker_expiry_ms;          /* 0: NSRV_BROKER_EXPIRY_MS */
    const char *kv_path;               /* kvConfig.json; NULL or "": KV config in memory only */
    const broker_conn_ops_t *conn_ops; /* copied; NULL: no reference counting */
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
 * when that closes; referenced while stored), NULL for an in-process registration. A master's
 * topics are rewritten when its data version changed or it is new; topics are never removed by
 * registering. */
void nsrv_register(nsrv_t *ns, const nsrv_reg_t *reg, void *conn, nsrv_reg_result_t *out);
void nsrv_unregister(nsrv_t *ns, const char *cluster, const char *broker_name,
                     const char *broker_addr, int64_t broker_id);
/* Drops every broker that registered over conn. */
void nsrv_conn_closed(nsrv_t *ns, void *conn);
/* Drops brokers whose last registration is older than the expiry at now_ms (monotonic, as
 * cm_mono_ms()). Returns how many; *conns (malloc'd, caller frees) gets their connections,
 * to be closed by the caller, each with a reference (conn_ops.ref) the caller releases. */
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

/* ================================================================ stand-alone server */

/* `rmqd --namesrv`: a name server alone on its own lib/net loop — codes 100-106, 206, 224,
 * broker expiry every 10 s, brokers dropped when their connection closes. Its KV config
 * lives in $HOME/namesrv/kvConfig.json as Java's does. */
typedef struct nsrv_server nsrv_server_t;

/* Listens on every IPv4 address (as Java's name server) at port (0 = a free one). conf
 * (borrowed for the call) gives the logger. NULL with a message in errstr when the port
 * cannot be bound. */
nsrv_server_t *nsrv_server_new(const rmq_conf_t *conf, int port, char *errstr, size_t size);
/* The same on one address only ("127.0.0.1" in tests). */
nsrv_server_t *nsrv_server_new_on(const rmq_conf_t *conf, const char *host, int port, char *errstr,
                                  size_t size);
/* The port actually bound. */
int nsrv_server_port(const nsrv_server_t *s);
/* Stops listening, closes every connection, stops the timer and the loop, frees s. */
void nsrv_server_destroy(nsrv_server_t *s);

#endif
