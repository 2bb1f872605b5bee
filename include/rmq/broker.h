/* librmq embedded broker: a RocketMQ 4.x broker and name server inside your process.
 *
 * rmq_broker_new() + rmq_broker_start() give a running broker that also answers the
 * name-server requests clients make (GET_ROUTEINFO_BY_TOPIC, ...) on the same port, so its
 * address is both the broker and the name-server address for any RocketMQ client (Java,
 * Go, C++, Node's ali-ons, librmq's own). Configuration keys are broker.conf's
 * (doc/CONFIGURATION.md): listenPort (0 = any free port), storePathRootDir, brokerName,
 * flushDiskType, namesrvAddr (register with external name servers as well), ...
 *
 * Threads: the broker owns an I/O thread, a flush thread, a retention thread and a scheduler
 * thread; none of them calls user code except the log callback set on the conf.
 * Every function is safe to call from any thread. */
#ifndef RMQ_BROKER_H
#define RMQ_BROKER_H

#include <rmq/conf.h>
#include <rmq/defs.h>
#include <rmq/err.h>

RMQ_BEGIN_DECLS

typedef struct rmq_broker_s rmq_broker_t;

/* Creates a broker from conf. Takes ownership of conf on success only. Checks the
 * configuration; opens nothing yet. NULL on error with a sentence in errstr. */
RMQ_EXPORT rmq_broker_t *rmq_broker_new(rmq_conf_t *conf, char *errstr, size_t errstr_size);

/* Opens (and recovers) the store, binds the port and starts serving. Returns RMQ_OK,
 * RMQ_ERR_IO (store cannot be opened or is locked by another broker), RMQ_ERR_NETWORK (port
 * cannot be bound), RMQ_ERR_STATE (already started). errstr says why. */
RMQ_EXPORT rmq_err_t rmq_broker_start(rmq_broker_t *broker, char *errstr, size_t errstr_size);

/* The address clients use, "host:port" (brokerIP1 or 127.0.0.1, and the bound port). Also
 * the name-server address. NULL before start. Lives as long as the broker. */
RMQ_EXPORT const char *rmq_broker_addr(const rmq_broker_t *broker);

/* Creates or updates a topic with queue_nums read and write queues and perm (RocketMQ's
 * permission bits: 4 read | 2 write; 0 means 6) and registers it with the name servers,
 * as UPDATE_AND_CREATE_TOPIC does. RMQ_ERR_BAD_TOPIC for an illegal or system topic name. */
RMQ_EXPORT rmq_err_t rmq_broker_create_topic(rmq_broker_t *broker, const char *topic,
                                             int queue_nums, int perm);

/* A JSON object with the broker's counters (messages in/out, store offsets, connections,
 * topics, groups). The string is the caller's: free it with rmq_free(). NULL before start. */
RMQ_EXPORT char *rmq_broker_stats_json(rmq_broker_t *broker);

/* Stops serving, flushes and closes the store (a clean shutdown: the next start takes the
 * normal recovery path), persists offsets and topics, joins every thread and frees the
 * broker. Safe on a broker that never started, and on NULL. */
RMQ_EXPORT void rmq_broker_destroy(rmq_broker_t *broker);

RMQ_END_DECLS

#endif
