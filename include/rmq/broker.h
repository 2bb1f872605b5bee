/* librmq embedded broker: a RocketMQ 4.x broker and name server inside your process.
 *
 * rmq_broker_new() + rmq_broker_start() give a running broker that also answers the
 * name-server requests clients make (GET_ROUTEINFO_BY_TOPIC, ...) on the same port, so its
 * address is both the broker and the name-server address for any RocketMQ client (Java,
 * Go, C++, Node's ali-ons, librmq's own). Configuration keys are broker.conf's
 * (doc/CONFIGURATION.md): listenPort (0 = any free port), storePathRootDir, brokerName,
 * flushDiskType, namesrvAddr (register with external name servers as well), ...
 *
 * Threads (all started by rmq_broker_start(), all joined by rmq_broker_destroy()):
 *   - I/O thread (lib/net): accepts connections, decodes requests, answers pulls, offset and
 *     look-up requests, name-server and client-tracking requests;
 *   - send thread (8 with flushDiskType=SYNC_FLUSH): stores messages, in arrival order;
 *   - long-polling thread: answers parked pulls when a message lands or their time is up;
 *   - service thread: writes config/topics.json and config/consumerOffset.json;
 *   - store threads: commit-log flush, consume-queue flush and retention, page warming.
 * None of them calls user code except the log callback set on the conf (any of them may).
 * Every function is safe to call from any thread; rmq_broker_destroy() must not race
 * other calls on the same broker. */
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
 * RMQ_ERR_IO (store cannot be opened or is locked by another broker, or a thread cannot be
 * started), RMQ_ERR_NETWORK (port cannot be bound), RMQ_ERR_BAD_VALUE (brokerIP1 is not an
 * IP address), RMQ_ERR_STATE (already started, or a failed start: destroy it). errstr says
 * why. Returns once the broker serves: rmq_broker_addr() is valid. */
RMQ_EXPORT rmq_err_t rmq_broker_start(rmq_broker_t *broker, char *errstr, size_t errstr_size);

/* The address clients use, "host:port" (brokerIP1 or 127.0.0.1, and the bound port). Also
 * the name-server address. NULL before start. Lives as long as the broker. */
RMQ_EXPORT const char *rmq_broker_addr(const rmq_broker_t *broker);

/* Creates or updates a topic with queue_nums (1..1024) read and write queues and perm
 * (RocketMQ's permission bits: 4 read | 2 write | 1 inherit; 0 means 6), writes
 * config/topics.json and registers it with the name servers, as UPDATE_AND_CREATE_TOPIC
 * does. RMQ_ERR_BAD_TOPIC for an illegal name (1-127 chars of [%|a-zA-Z0-9_-]) or a
 * system topic (TBW102, SCHEDULE_TOPIC_XXXX, the cluster's name, rmq_sys_*, ...);
 * RMQ_ERR_INVALID_ARG for a NULL broker or counts out of range; RMQ_ERR_NOT_STARTED
 * before rmq_broker_start(). */
RMQ_EXPORT rmq_err_t rmq_broker_create_topic(rmq_broker_t *broker, const char *topic,
                                             int queue_nums, int perm);

/* A JSON object with the broker's counters: brokerName, addr, msgsIn / bytesIn (stored by
 * sends), msgsOut / bytesOut (returned by pulls), requests, connections (open now),
 * sendBusy (sends answered SYSTEM_BUSY), pullsHeld (pulls parked for long polling, total),
 * topics, groups (subscription groups), commitLogMinOffset, commitLogMaxOffset. Fields may
 * be added. The string is the caller's: free it with rmq_free(). NULL before start. */
RMQ_EXPORT char *rmq_broker_stats_json(rmq_broker_t *broker);

/* Stops serving, flushes and closes the store (a clean shutdown: the next start takes the
 * normal recovery path), persists offsets and topics, joins every thread and frees the
 * broker. Safe on a broker that never started, and on NULL. */
RMQ_EXPORT void rmq_broker_destroy(rmq_broker_t *broker);

RMQ_END_DECLS

#endif
