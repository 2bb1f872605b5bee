/* librmq producer: sends messages to a RocketMQ 4.x cluster or a librmq broker.
 *
 * A producer finds a topic's queues through the name servers (namesrvAddr, ';'-separated,
 * or the NAMESRV_ADDR environment variable), spreads messages over the writable queues by
 * round robin, retries a failed send on another broker, and sends heartbeats so brokers know
 * its group. Producers whose configurations give the same client id (clientIP@instanceName)
 * share one client instance: one I/O thread, one callback pool, one connection per server.
 * instanceName DEFAULT (the default) gives each producer an instance of its own.
 *
 * Configuration keys (doc/CONFIGURATION.md): producerGroup (required), namesrvAddr,
 * instanceName, sendMsgTimeout (3000 ms for one send including its retries),
 * retryTimesWhenSendFailed (2), retryTimesWhenSendAsyncFailed (2),
 * retryAnotherBrokerWhenNotStoreOK (false), compressMsgBodyOverHowmuch (4096),
 * compressType (ZLIB | ZSTD), compressLevel (5), maxMessageSize (4 MiB),
 * sendLatencyFaultEnable (false), createTopicKey (TBW102), defaultTopicQueueNums (4),
 * pollNameServerInterval (30000), heartbeatBrokerInterval (30000), mqClientApiTimeout (3000).
 * Transactions: rmq_producer_send_tx() with a local-transaction callback per call, and a
 * check-back callback set on the conf with rmq_conf_set_tx_check_cb() before
 * rmq_producer_new() (doc/transactions.md).
 *
 * Threads. Every function is safe to call from any thread, at the same time, except
 * rmq_producer_destroy(), which must be the last call on the handle. Send callbacks
 * (rmq_send_cb_t) and queue selectors (rmq_queue_selector_t) are user code; the header of
 * each says which thread calls it. No user code ever runs on the I/O thread.
 *
 * Errors. Every send returns rmq_err_t (include/rmq/err.h): RMQ_OK, a negative local error,
 * or the broker's positive RocketMQ response code. The checks made before anything is sent
 * are the Java client's (message.md §9):
 *   RMQ_ERR_INVALID_ARG      a NULL argument, an out-of-range selector index, or (orderly
 *                            send without selector) a message with no sharding key
 *   RMQ_ERR_BAD_TOPIC        empty topic, over 127 characters, a character outside
 *                            [%|a-zA-Z0-9_-], or a system topic producers may not write
 *   RMQ_ERR_MESSAGE_ILLEGAL  an empty body, or properties over 32767 bytes; the code
 *                            RocketMQ's own client uses for these (13), raised locally
 *   RMQ_ERR_MSG_TOO_LARGE    a body (a batch: its encoded size) over maxMessageSize
 *   RMQ_ERR_NOT_STARTED      rmq_producer_start() has not succeeded yet
 *   RMQ_ERR_SHUTDOWN         rmq_producer_destroy() has begun
 * and from the network and the broker:
 *   RMQ_ERR_NO_ROUTE         the name servers know no writable queue for the topic and
 *                            topic auto-creation (createTopicKey) is not available
 *   RMQ_ERR_TIMEOUT          sendMsgTimeout ran out (retries included)
 *   RMQ_ERR_NETWORK          the broker could not be reached (after the retries)
 *   RMQ_ERR_SYSTEM_BUSY (2), RMQ_ERR_NO_PERMISSION (16), ...  the broker's answer.
 * rmq_producer_last_remark() gives the broker's remark text for the last failed call. */
#ifndef RMQ_PRODUCER_H
#define RMQ_PRODUCER_H

#include <rmq/conf.h>
#include <rmq/defs.h>
#include <rmq/err.h>
#include <rmq/msg.h>

RMQ_BEGIN_DECLS

typedef struct rmq_producer_s rmq_producer_t;

/* How the broker stored a message (RocketMQ's SendStatus, same order). Anything but
 * RMQ_SEND_OK means the broker stored the message but could not flush it to disk or
 * replicate it to a slave in time (SYNC_FLUSH / SYNC_MASTER brokers). */
typedef enum rmq_send_status {
    RMQ_SEND_OK = 0,
    RMQ_SEND_FLUSH_DISK_TIMEOUT = 1,
    RMQ_SEND_FLUSH_SLAVE_TIMEOUT = 2,
    RMQ_SEND_SLAVE_NOT_AVAILABLE = 3
} rmq_send_status_t;

/* The outcome of a local transaction (RocketMQ's LocalTransactionState). */
typedef enum rmq_tx_state {
    RMQ_TX_COMMIT = 0,   /* deliver the half message to consumers */
    RMQ_TX_ROLLBACK = 1, /* drop it; consumers never see it */
    RMQ_TX_UNKNOWN = 2   /* not decided yet: the broker asks again later (check-back) */
} rmq_tx_state_t;

#define RMQ_MSG_ID_SIZE 64 /* a message id (32 or 56 hex digits) and its NUL */
#define RMQ_BROKER_NAME_SIZE 128

/* The outcome of a send that reached the broker. Fields are only ever appended (taking room
 * from reserved), so code built against an older librmq keeps working. */
typedef struct rmq_send_result {
    rmq_send_status_t status;
    char msg_id[RMQ_MSG_ID_SIZE];        /* UNIQ_KEY, the client-generated id */
    char offset_msg_id[RMQ_MSG_ID_SIZE]; /* store address + commit-log offset, hex */
    int32_t queue_id;
    int64_t queue_offset;
    char broker_name[RMQ_BROKER_NAME_SIZE];
    char transaction_id[RMQ_MSG_ID_SIZE]; /* empty unless the broker gave one; send_tx: the
                                             transaction id (the message's UNIQ_KEY) */
    rmq_tx_state_t tx_state; /* send_tx: what the local transaction decided; else COMMIT */
    char reserved[252];
} rmq_send_result_t;

/* Async send outcome. err is RMQ_OK with result filled, or the error the send ended with
 * (as rmq_producer_send() would return it; RMQ_ERR_SHUTDOWN when the producer was destroyed
 * before the send could finish), result then NULL. result is valid during the call only.
 * Called exactly once per accepted rmq_producer_send_async(), on a thread of the client's
 * callback pool (never the I/O thread, never the caller's thread). It may call any producer
 * function except rmq_producer_destroy() of the producer that called it. */
typedef void(rmq_send_cb_t)(rmq_err_t err, const rmq_send_result_t *result, void *opaque);

/* Ordered-send queue selector: returns an index in [0, queue_count) of the topic's writable
 * queues, which are listed in the same order for every producer (by broker name, then queue
 * id). Called on the thread that called rmq_producer_send_orderly(), once per call. */
typedef int(rmq_queue_selector_t)(int queue_count, const rmq_msg_t *msg, void *arg);

/* Local transaction of rmq_producer_send_tx(): runs once the broker has stored the half
 * message (still invisible to consumers), on the thread that called send_tx, with the message
 * (its id, offset id, queue and transaction id — rmq_msg_property(msg, "__transactionId__")
 * when the broker gave one — answer) and the arg given to send_tx. Returns the decision. */
typedef rmq_tx_state_t(rmq_tx_local_cb_t)(rmq_msg_t *msg, void *arg);

/* Check-back: the broker asks about a half message whose transaction was left UNKNOWN (or
 * whose END never arrived: the producer died, the broker restarted) after transactionTimeOut,
 * then every transactionCheckInterval, up to transactionCheckMax times. msg is the half
 * message as stored (topic, body, properties, ids; rmq_msg_id() is the transaction id),
 * valid during the call. Called on a thread of the client's callback pool (never the I/O
 * thread), possibly in a process other than the one that sent the half message: any live
 * producer of the group may be asked. Returns the decision; UNKNOWN: ask again later. May call
 * any producer function except rmq_producer_destroy() of the producer it was set for. */
typedef rmq_tx_state_t(rmq_tx_check_cb_t)(const rmq_msg_t *msg, void *opaque);

/* Sets the check-back callback of the producers later made from conf (cb NULL: checks are
 * ignored, and the broker gives up on such half messages after transactionCheckMax checks).
 * Copied by rmq_conf_dup(). Set it before rmq_producer_new(). */
RMQ_EXPORT void rmq_conf_set_tx_check_cb(rmq_conf_t *conf, rmq_tx_check_cb_t *cb, void *opaque);

/* Creates a producer from conf and takes ownership of conf on success (the caller still owns
 * it on failure). Nothing is connected yet. NULL with a sentence in errstr (if non-NULL)
 * when producerGroup is missing or illegal, or when no name server is configured
 * (namesrvAddr or NAMESRV_ADDR). */
RMQ_EXPORT rmq_producer_t *rmq_producer_new(rmq_conf_t *conf, char *errstr, size_t errstr_size);

/* Joins (or creates) the client instance, registers the group and sends a heartbeat to
 * every broker the instance knows. RMQ_OK; RMQ_ERR_STATE when already started or when
 * another started producer of the same group shares the instance (RocketMQ refuses that);
 * RMQ_ERR_IO when the instance's threads cannot start; RMQ_ERR_INVALID_ARG on NULL. errstr
 * says why. */
RMQ_EXPORT rmq_err_t rmq_producer_start(rmq_producer_t *p, char *errstr, size_t errstr_size);

/* Stops the producer and frees it: new sends fail with RMQ_ERR_SHUTDOWN, async sends in
 * flight finish (each callback is called exactly once before this returns: with the result,
 * or with an error, RMQ_ERR_SHUTDOWN for a retry that can no longer be made), the group is
 * unregistered from the brokers (UNREGISTER_CLIENT), and the client instance is released
 * (the last producer of an instance joins its threads). Waits at most about sendMsgTimeout
 * for sends in flight. Safe on NULL and on a producer never started. Not from a send
 * callback of this producer. */
RMQ_EXPORT void rmq_producer_destroy(rmq_producer_t *p);

/* Sends msg and waits for the broker's answer, retrying on another broker (up to
 * retryTimesWhenSendFailed more attempts, all within sendMsgTimeout) after network errors
 * and the broker codes RocketMQ retries (1, 14, 16, 17, 204, 205). msg is not retained.
 * On RMQ_OK, *result (if non-NULL) is filled and msg's id, offset id, queue id, queue
 * offset and broker name accessors answer; status may be other than RMQ_SEND_OK (then,
 * with retryAnotherBrokerWhenNotStoreOK, the send was retried while attempts remained).
 * The message gets a UNIQ_KEY property when it has none, and keeps it (a re-send of the
 * same rmq_msg_t keeps the same id). Bodies of at least compressMsgBodyOverHowmuch bytes
 * travel compressed (compressType). Errors: see the top of this header. */
RMQ_EXPORT rmq_err_t rmq_producer_send(rmq_producer_t *p, rmq_msg_t *msg,
                                       rmq_send_result_t *result);

/* Sends a copy of msg without waiting: cb(err, result, opaque) is called exactly once,
 * later, on a callback-pool thread (see rmq_send_cb_t), with retries as for
 * rmq_producer_send() up to retryTimesWhenSendAsyncFailed (a stored message is reported
 * with its status whatever it is: async sends do not retry a non-OK status, as in Java).
 * msg is copied; the caller may destroy it at once (msg gets its UNIQ_KEY property, but its
 * offset id, queue and offset accessors are not filled). Returns RMQ_OK when the send
 * was accepted (the callback will come), or an error (the callback will not come): the
 * checks at the top of this header, RMQ_ERR_NO_ROUTE / RMQ_ERR_TIMEOUT / RMQ_ERR_NETWORK
 * when the topic's route could not be found, RMQ_ERR_INVALID_ARG when cb is NULL. */
RMQ_EXPORT rmq_err_t rmq_producer_send_async(rmq_producer_t *p, rmq_msg_t *msg, rmq_send_cb_t *cb,
                                             void *opaque);

/* Sends msg once, without any answer from the broker and without retries. RMQ_OK means the
 * frame was queued on the connection, not that the broker stored it. Errors: the checks,
 * route errors, RMQ_ERR_NETWORK (connection closed), RMQ_ERR_BUSY (connection write queue
 * full). */
RMQ_EXPORT rmq_err_t rmq_producer_send_oneway(rmq_producer_t *p, rmq_msg_t *msg);

/* Sends msg synchronously to the queue the selector picks, with no retries (ordering holds
 * per queue only). selector NULL: the queue is |hashCode(sharding key) % queue_count|, with
 * Java's String.hashCode, the key set by rmq_msg_set_sharding_key() — so every RocketMQ
 * client using SelectMessageQueueByHash on the same key picks the same queue. arg is passed
 * to the selector. Result and errors as rmq_producer_send(); also RMQ_ERR_INVALID_ARG for a
 * selector index out of range or (selector NULL) no sharding key. */
RMQ_EXPORT rmq_err_t rmq_producer_send_orderly(rmq_producer_t *p, rmq_msg_t *msg,
                                               rmq_queue_selector_t *selector, void *arg,
                                               rmq_send_result_t *result);

/* Sends count messages of one topic as one SEND_BATCH_MESSAGE frame to one queue, stored
 * together. All must have the same topic and no delay level (RMQ_ERR_INVALID_ARG
 * otherwise); the encoded batch must fit maxMessageSize (RMQ_ERR_MSG_TOO_LARGE); batches
 * are never compressed. Retries as rmq_producer_send(). On RMQ_OK, *result describes the
 * first message (its ids, queue and offset) and every message's accessors answer its own
 * ids, queue id and queue offset (consecutive offsets in one queue). count > 0. */
RMQ_EXPORT rmq_err_t rmq_producer_send_batch(rmq_producer_t *p, rmq_msg_t *const *msgs,
                                             size_t count, rmq_send_result_t *result);

/* Sends msg as a transaction (RocketMQ's sendMessageInTransaction): a half message (the
 * properties TRAN_MSG=true and PGROUP=<producerGroup>, any delay level dropped) is stored
 * synchronously with the retries of rmq_producer_send(), invisible to consumers; then
 * local(msg, arg) runs on this thread (a non-OK store status skips it: ROLLBACK), and its
 * decision goes to the broker as END_TRANSACTION (oneway): COMMIT makes the message visible
 * on its topic exactly once, ROLLBACK drops it, UNKNOWN leaves it to the check-back callback
 * (rmq_conf_set_tx_check_cb). Returns RMQ_OK once the half message was stored — *result
 * (if non-NULL) as for rmq_producer_send(), plus tx_state = the decision and transaction_id;
 * an END that could not be sent is logged, the check-back then resolves the transaction. On
 * an error (those of rmq_producer_send(), RMQ_ERR_INVALID_ARG when local is NULL) nothing was
 * stored and local did not run. */
RMQ_EXPORT rmq_err_t rmq_producer_send_tx(rmq_producer_t *p, rmq_msg_t *msg,
                                          rmq_tx_local_cb_t *local, void *arg,
                                          rmq_send_result_t *result);

/* The broker's remark for the last call on this thread that failed with a broker code
 * (e.g. "[TIMEOUT_CLEAN_QUEUE]broker busy..."), or a sentence about a local error; "" when
 * there is none. Thread-local storage, valid until the thread's next send call. */
RMQ_EXPORT const char *rmq_producer_last_remark(void);

RMQ_END_DECLS

#endif
