/* librmq consumers: the pull consumer (first half) and the push consumer (second half).
 *
 * The pull consumer has the shape of RocketMQ's DefaultLitePullConsumer. The application
 * calls rmq_pull_consumer_poll() for batches of messages; a library thread keeps every
 * owned queue pulled ahead (long polling), and offsets go to the broker (clustering).
 *
 * Queues are owned either by subscription — rmq_pull_consumer_subscribe(): the group's
 * members share each topic's queues with allocateMessageQueueStrategy, rebalanced every
 * rebalanceWaitInterval and at once when a broker says the group changed — or by hand —
 * rmq_pull_consumer_assign(). A consumer uses one of the two, not both.
 *
 * Configuration keys (doc/CONFIGURATION.md): consumerGroup (required), namesrvAddr (or the
 * NAMESRV_ADDR environment variable), instanceName, consumeFromWhere
 * (CONSUME_FROM_LAST_OFFSET), consumeTimestamp, allocateMessageQueueStrategy
 * (AllocateMessageQueueAveragely), pullBatchSize (32), pullThresholdForQueue (1000),
 * brokerSuspendMaxTimeMillis, consumerTimeoutMillisWhenSuspend, autoCommit (true),
 * autoCommitIntervalMillis (5000), rebalanceWaitInterval (20000), mqClientApiTimeout.
 * messageModel must be CLUSTERING (broadcasting is not supported by this consumer yet).
 *
 * Offsets. A queue starts at the group's offset stored on the broker; a queue with none
 * starts where consumeFromWhere says. The offset committed for a queue is the one after the
 * last message poll returned from it ("next to consume"). With autoCommit, offsets are
 * committed every autoCommitIntervalMillis, when a queue leaves the consumer, and by
 * rmq_pull_consumer_destroy().
 *
 * Threads. Every function may be called from any thread, except rmq_pull_consumer_destroy(),
 * which must be the last call on the handle (no other call may still be running). */
#ifndef RMQ_CONSUMER_H
#define RMQ_CONSUMER_H

#include <rmq/conf.h>
#include <rmq/defs.h>
#include <rmq/err.h>
#include <rmq/msg.h>

RMQ_BEGIN_DECLS

typedef struct rmq_pull_consumer_s rmq_pull_consumer_t;

#define RMQ_MQ_TOPIC_SIZE 128  /* a topic (at most 127 characters) and its NUL */
#define RMQ_MQ_BROKER_SIZE 128 /* a broker name and its NUL */

/* One queue of a topic (Java's MessageQueue). Fields are only ever appended, taking room
 * from reserved. */
typedef struct rmq_mq {
    char topic[RMQ_MQ_TOPIC_SIZE];
    char broker_name[RMQ_MQ_BROKER_SIZE];
    int32_t queue_id;
    char reserved[60];
} rmq_mq_t;

/* Creates a pull consumer from conf and takes ownership of conf on success (the caller
 * still owns it on failure). Nothing is connected yet. NULL with a sentence in errstr (if
 * non-NULL) when consumerGroup is missing or illegal, no name server is configured, or the
 * configuration asks for something this consumer does not do (BROADCASTING). */
RMQ_EXPORT rmq_pull_consumer_t *rmq_pull_consumer_new(rmq_conf_t *conf, char *errstr,
                                                      size_t errstr_size);

/* Subscribes to topic with a tag expression: "*" (or NULL, or "") for every message, or
 * tags joined by "||" ("TagA || TagB"). The broker filters by the tags' hash codes and the
 * consumer again by the tags themselves, as Java does. Subscribing again to a topic replaces
 * its expression. Before or after rmq_pull_consumer_start(). RMQ_ERR_BAD_TOPIC for an illegal
 * topic, RMQ_ERR_STATE when queues were assigned by hand, RMQ_ERR_INVALID_ARG on NULL. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_subscribe(rmq_pull_consumer_t *c, const char *topic,
                                                 const char *expression);

/* Makes the consumer own exactly these count queues (replacing an earlier assignment;
 * messages already fetched from queues no longer assigned are dropped). No rebalance, and
 * every message of the queues is delivered (no tag filter). Before or after start.
 * RMQ_ERR_STATE when the consumer subscribed, RMQ_ERR_INVALID_ARG on NULL. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_assign(rmq_pull_consumer_t *c, const rmq_mq_t *queues,
                                              size_t count);

/* Joins (or creates) the client instance, announces the group to the brokers (heartbeat,
 * consume type CONSUME_ACTIVELY) and starts the pull thread. RMQ_OK; RMQ_ERR_STATE when
 * already started or when the instance already has a consumer of this group; RMQ_ERR_IO
 * when the instance cannot start. errstr says why. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_start(rmq_pull_consumer_t *c, char *errstr,
                                             size_t errstr_size);

/* Waits up to timeout_ms (0: do not wait) for messages and moves at most max of them into
 * msgs[]; the caller owns each and frees it with rmq_msg_destroy(). Messages of one queue
 * come in queue order. Returns how many (0 when none came in time), or a negative error:
 * RMQ_ERR_NOT_STARTED, RMQ_ERR_INVALID_ARG (NULL, max 0). */
RMQ_EXPORT int rmq_pull_consumer_poll(rmq_pull_consumer_t *c, int64_t timeout_ms, rmq_msg_t **msgs,
                                      size_t max);

/* Makes queue's next message the one at offset, which must lie between the queue's minimum
 * and maximum offsets (RMQ_ERR_INVALID_ARG otherwise); messages already fetched from it are
 * dropped. The queue must be owned (RMQ_ERR_NOT_FOUND). Started consumers only
 * (RMQ_ERR_NOT_STARTED). Network and broker errors as the broker returns them. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_seek(rmq_pull_consumer_t *c, const rmq_mq_t *queue,
                                            int64_t offset);
/* rmq_pull_consumer_seek() to the queue's minimum / maximum offset. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_seek_to_begin(rmq_pull_consumer_t *c, const rmq_mq_t *queue);
RMQ_EXPORT rmq_err_t rmq_pull_consumer_seek_to_end(rmq_pull_consumer_t *c, const rmq_mq_t *queue);
/* rmq_pull_consumer_seek() to the offset the broker finds for timestamp_ms (ms since the
 * epoch; SEARCH_OFFSET_BY_TIMESTAMP, as RocketMQ's consume-queue search answers it: the
 * message stored at that time, else the nearer of its neighbours, ties to the earlier). */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_seek_timestamp(rmq_pull_consumer_t *c, const rmq_mq_t *queue,
                                                      int64_t timestamp_ms);

/* Commits, and waits for the broker to store, the offset of every owned queue that moved
 * since its last commit. RMQ_OK, RMQ_ERR_NOT_STARTED, or the first error met (the other
 * queues are still committed). */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_commit(rmq_pull_consumer_t *c);

/* The group's offset of queue as stored on the broker, into *offset. RMQ_ERR_QUERY_NOT_FOUND
 * (22) when the group has none. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_committed(rmq_pull_consumer_t *c, const rmq_mq_t *queue,
                                                 int64_t *offset);

/* The readable queues of topic, sorted (topic, broker name, queue id), into a new array
 * *queues of *count entries that the caller frees with rmq_free(). Started consumers only.
 * RMQ_ERR_NO_ROUTE when the name servers do not know the topic. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_fetch_queues(rmq_pull_consumer_t *c, const char *topic,
                                                    rmq_mq_t **queues, size_t *count);

/* The queues the consumer owns now (after the last rebalance), sorted, into a new array as
 * rmq_pull_consumer_fetch_queues() gives it. */
RMQ_EXPORT rmq_err_t rmq_pull_consumer_assignment(rmq_pull_consumer_t *c, rmq_mq_t **queues,
                                                  size_t *count);

/* Stops the pull thread (joined), commits the offsets (with autoCommit), unregisters the
 * group from the brokers (UNREGISTER_CLIENT; the brokers tell the rest of the group, which
 * rebalances), releases the client instance and frees the consumer and messages not yet
 * polled. Safe on NULL and on a consumer never started. */
RMQ_EXPORT void rmq_pull_consumer_destroy(rmq_pull_consumer_t *c);

/* ================================================================ push consumer
 *
 * The shape of RocketMQ's DefaultMQPushConsumer: the library pulls every owned queue (long
 * polling) into a process queue and calls the application's listener on its consume pool.
 *
 * Configuration keys (doc/CONFIGURATION.md), RocketMQ's names and defaults: consumerGroup
 * (required), namesrvAddr (or NAMESRV_ADDR), instanceName, messageModel (CLUSTERING or
 * BROADCASTING), consumeFromWhere, consumeTimestamp, allocateMessageQueueStrategy,
 * consumeThreadMin / consumeThreadMax (20), consumeMessageBatchMaxSize (1), pullBatchSize
 * (32), pullInterval (0), pullThresholdForQueue (1000), pullThresholdSizeForQueue (100 MiB),
 * consumeConcurrentlyMaxSpan (2000), maxReconsumeTimes (16), suspendCurrentQueueTimeMillis
 * (1000), brokerSuspendMaxTimeMillis (15000), persistConsumerOffsetInterval (5000),
 * rebalanceWaitInterval (20000), consumerTimeoutMillisWhenSuspend (30000), localOffsetStoreDir
 * (broadcasting offsets: <dir>/<clientId>/<group>/offsets.json; default ~/.rocketmq_offsets).
 * The consume pool runs consumeThreadMin threads, as Java's does.
 *
 * Offsets. A queue starts at the group's stored offset (the broker's; BROADCASTING: the
 * instance's offsets file), or where consumeFromWhere says when there is none. The offset kept
 * for a queue is its smallest message not yet acknowledged (or past the last one pulled), so
 * a restart may deliver again but never skips; it is stored every
 * persistConsumerOffsetInterval, when a queue leaves the consumer and by destroy.
 *
 * Listeners. A consumer has exactly one listener, set before rmq_push_consumer_start():
 * - concurrent (rmq_push_consumer_set_listener): called on a consume-pool thread with up to
 *   consumeMessageBatchMaxSize messages of one queue; several calls run at once. SUCCESS
 *   acknowledges the batch; RECONSUME_LATER sends each message back to the broker
 *   (CONSUMER_SEND_MSG_BACK) so it returns later through %RETRY%<group> (the consumer
 *   subscribes to that topic by itself), or to the dead-letter queue after maxReconsumeTimes.
 *   In BROADCASTING, RECONSUME_LATER drops the messages, as RocketMQ does.
 * - orderly (rmq_push_consumer_set_orderly_listener): queues are locked on the broker
 *   (LOCK_BATCH_MQ, renewed every 20 s) before they are consumed; one thread per queue at a
 *   time, messages in queue order. SUSPEND pauses the queue for suspendCurrentQueueTimeMillis
 *   (or the context's suspend time) and retries the same messages.
 * Messages given to a listener are valid during the call only (keep them with rmq_msg_dup()).
 * A listener may call any librmq function except rmq_push_consumer_destroy() on its own
 * consumer. */

typedef struct rmq_push_consumer_s rmq_push_consumer_t;

/* What a listener returns. Concurrent listeners: SUCCESS or RECONSUME_LATER; orderly ones:
 * SUCCESS or SUSPEND (SUSPEND_CURRENT_QUEUE_A_MOMENT). */
typedef enum rmq_consume_status {
    RMQ_CONSUME_SUCCESS = 0,
    RMQ_CONSUME_RECONSUME_LATER = 1,
    RMQ_CONSUME_SUSPEND = 2,
} rmq_consume_status_t;

/* Per call of a listener: which queue the messages came from, and what the listener may ask
 * for besides its status. Valid during the call only. */
typedef struct rmq_consume_ctx_s rmq_consume_ctx_t;

/* The queue the batch came from. */
RMQ_EXPORT const rmq_mq_t *rmq_consume_ctx_queue(const rmq_consume_ctx_t *ctx);
/* Concurrent only: with SUCCESS, messages [0, index] are acknowledged and the rest are sent
 * back as with RECONSUME_LATER (Java's ackIndex; default: the whole batch). */
RMQ_EXPORT void rmq_consume_ctx_set_ack_index(rmq_consume_ctx_t *ctx, int index);
/* Concurrent only: the delay level a sent-back message gets (0, the default, lets the broker
 * choose 3 + reconsume times; -1 sends it straight to the dead-letter queue). */
RMQ_EXPORT void rmq_consume_ctx_set_delay_level(rmq_consume_ctx_t *ctx, int level);
/* Orderly only: how long SUSPEND pauses the queue, ms (default
 * suspendCurrentQueueTimeMillis). */
RMQ_EXPORT void rmq_consume_ctx_set_suspend_ms(rmq_consume_ctx_t *ctx, int64_t ms);

typedef rmq_consume_status_t(rmq_consume_cb_t)(const rmq_msg_t *const *msgs, size_t count,
                                               rmq_consume_ctx_t *ctx, void *opaque);

/* Creates a push consumer from conf and takes ownership of conf on success (the caller still
 * owns it on failure). Nothing is connected yet. NULL with a sentence in errstr when
 * consumerGroup is missing or illegal, no name server is configured, or a value is out of
 * range. */
RMQ_EXPORT rmq_push_consumer_t *rmq_push_consumer_new(rmq_conf_t *conf, char *errstr,
                                                      size_t errstr_size);
/* Subscribes to topic with a tag expression ("*", NULL or "" for all; "TagA || TagB").
 * Before start. RMQ_ERR_BAD_TOPIC, RMQ_ERR_STATE after start, RMQ_ERR_INVALID_ARG on NULL. */
RMQ_EXPORT rmq_err_t rmq_push_consumer_subscribe(rmq_push_consumer_t *c, const char *topic,
                                                 const char *expression);
/* Sets the concurrent listener (called on consume-pool threads). Before start;
 * RMQ_ERR_STATE when started or when an orderly listener is set. */
RMQ_EXPORT rmq_err_t rmq_push_consumer_set_listener(rmq_push_consumer_t *c, rmq_consume_cb_t *cb,
                                                    void *opaque);
/* Sets the orderly listener (called on consume-pool threads, one per queue at a time).
 * Before start; RMQ_ERR_STATE when started or when a concurrent listener is set. */
RMQ_EXPORT rmq_err_t rmq_push_consumer_set_orderly_listener(rmq_push_consumer_t *c,
                                                            rmq_consume_cb_t *cb, void *opaque);
/* Joins (or creates) the client instance, announces the group (consume type
 * CONSUME_PASSIVELY), rebalances and starts pulling. RMQ_ERR_STATE when already started, with
 * no listener or no subscription, or when the instance already has a consumer of this group;
 * RMQ_ERR_IO when an instance or broadcasting offset file cannot start. errstr says why. */
RMQ_EXPORT rmq_err_t rmq_push_consumer_start(rmq_push_consumer_t *c, char *errstr,
                                             size_t errstr_size);
/* Stops pulling, waits for every running listener call to return (messages already pulled but
 * not consumed are not acknowledged, so they are delivered again later), persists offsets,
 * unlocks orderly queues, unregisters the group and frees the consumer. Must not be called
 * from the consumer's own listener. Safe on NULL and on a consumer never started. */
RMQ_EXPORT void rmq_push_consumer_destroy(rmq_push_consumer_t *c);

RMQ_END_DECLS

#endif
