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
#include <rmq/msg.h>

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

/* ---- dead letters: messages a consumer group gave up on (%DLQ%<group>, queue 0) */

/* Called once per dead letter by rmq_broker_dlq_list(); non-zero stops the listing. msg
 * lives only for the call (copy what you keep). Its accessors give the message as a consumer
 * of the DLQ would see it: rmq_msg_queue_offset() (what rmq_broker_dlq_resend() takes),
 * rmq_msg_id() / rmq_msg_offset_id(), rmq_msg_reconsume_times(), rmq_msg_store_timestamp(),
 * the body, tags and keys, and the properties RocketMQ keeps on dead letters: RETRY_TOPIC
 * (the topic it was consumed from) and ORIGIN_MESSAGE_ID (the id of its first delivery). */
typedef int(rmq_dlq_cb_t)(const rmq_msg_t *msg, void *opaque);

/* Lists the dead-letter queue of consumer group from queue offset from (0 = the oldest
 * still stored; offsets below the oldest start there): calls cb for at most max messages
 * (1..1024) in queue order. *next (may be NULL) gets the offset to continue from. RMQ_OK
 * (also when the group has no dead letters), RMQ_ERR_INVALID_ARG (NULL broker, group or
 * cb, max out of range, from < 0), RMQ_ERR_BAD_TOPIC (a group name that cannot make a
 * topic), RMQ_ERR_NOT_STARTED. Reads the store directly; any thread. */
RMQ_EXPORT rmq_err_t rmq_broker_dlq_list(rmq_broker_t *broker, const char *group, int64_t from,
                                         int max, rmq_dlq_cb_t *cb, void *opaque,
                                         int64_t *next);

/* Re-sends the dead letter at queue offset offset of group's DLQ to its original topic
 * (its RETRY_TOPIC property), on a queue of that topic picked at random, as RocketMQ's
 * console re-sends one: a new message with the same body, flag, tags, keys, UNIQ_KEY (so
 * consumers see the same message id), user properties, RETRY_TOPIC and ORIGIN_MESSAGE_ID,
 * reconsume times 0 (a fresh set of retries); the broker's own routing properties (DELAY,
 * REAL_TOPIC, REAL_QID, timer keys, retry counters) are dropped. The dead letter itself
 * stays in the DLQ (a queue is a log). offset_id (may be NULL, RMQ_MSG_ID_SIZE bytes
 * suffice) gets the new copy's offset message id. RMQ_OK; RMQ_ERR_NOT_FOUND (no message at
 * that offset); RMQ_ERR_TOPIC_NOT_EXIST (the original topic is gone); RMQ_ERR_NO_PERMISSION
 * (it is not writable); RMQ_ERR_INVALID_ARG (no RETRY_TOPIC: not a dead letter the broker
 * wrote, or bad arguments); RMQ_ERR_NOT_STARTED; store errors (RMQ_ERR_DISK_FULL, ...). */
RMQ_EXPORT rmq_err_t rmq_broker_dlq_resend(rmq_broker_t *broker, const char *group,
                                           int64_t offset, char *offset_id, size_t offset_id_size);

/* Backtracking: moves consumer group's offsets of topic back (or, with force non-zero, also
 * forward) to timestamp_ms (ms since the epoch; per queue the offset SEARCH_OFFSET_BY_TIMESTAMP
 * finds: the message stored at that time, else the nearer neighbour; -1: the end of each
 * queue), as mqadmin resetOffsetByTime asks a broker over the wire
 * (INVOKE_BROKER_TO_RESET_OFFSET, 222, which this broker serves too). Without force a queue
 * whose committed offset already lies before that point keeps it. The new offsets are stored
 * on the broker and sent to every online consumer of the group (RESET_CONSUMER_CLIENT_OFFSET,
 * 220): push consumers drop what they fetched of those queues and continue from the new
 * offsets, so the messages since timestamp_ms are consumed again. RMQ_OK;
 * RMQ_ERR_TOPIC_NOT_EXIST; RMQ_ERR_INVALID_ARG (NULL or empty names, timestamp_ms < -1);
 * RMQ_ERR_NOT_STARTED. */
RMQ_EXPORT rmq_err_t rmq_broker_reset_offset(rmq_broker_t *broker, const char *group,
                                             const char *topic, int64_t timestamp_ms, int force);

/* Stops serving, flushes and closes the store (a clean shutdown: the next start takes the
 * normal recovery path), persists offsets and topics, joins every thread and frees the
 * broker. Safe on a broker that never started, and on NULL. */
RMQ_EXPORT void rmq_broker_destroy(rmq_broker_t *broker);

RMQ_END_DECLS

#endif
