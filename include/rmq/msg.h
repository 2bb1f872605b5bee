/* librmq messages: what a producer sends and what a consumer receives.
 *
 * A message is a topic, a body, and string properties (tags, keys and user properties are
 * properties under RocketMQ's reserved names). Received messages also carry where they were
 * stored: queue id, queue offset, store time, ids.
 *
 * Memory: the caller owns what it creates with rmq_msg_new()/rmq_msg_dup(). A message given
 * to a consumer listener is valid during the callback only; keep it with rmq_msg_dup().
 * Strings and body pointers returned by accessors live as long as the message and until
 * the same field is set again.
 * Thread safety: a message is not locked; don't change it from two threads at once. */
#ifndef RMQ_MSG_H
#define RMQ_MSG_H

#include <rmq/defs.h>
#include <rmq/err.h>

RMQ_BEGIN_DECLS

typedef struct rmq_msg_s rmq_msg_t;

/* A new message for topic with an empty body and no properties. NULL when topic is NULL or
 * out of memory. Topic rules are checked at send time (RMQ_ERR_BAD_TOPIC). */
RMQ_EXPORT rmq_msg_t *rmq_msg_new(const char *topic);

/* A deep copy of msg, received fields included. NULL on NULL or out of memory. */
RMQ_EXPORT rmq_msg_t *rmq_msg_dup(const rmq_msg_t *msg);

/* Frees msg. NULL is fine. */
RMQ_EXPORT void rmq_msg_destroy(rmq_msg_t *msg);

/* Replaces the topic. */
RMQ_EXPORT rmq_err_t rmq_msg_set_topic(rmq_msg_t *msg, const char *topic);

/* Copies len bytes of body into the message (len 0 makes it empty; sends refuse an empty
 * body as RocketMQ does). */
RMQ_EXPORT rmq_err_t rmq_msg_set_body(rmq_msg_t *msg, const void *body, size_t len);

/* Sets the tag (property TAGS), used by consumers' tag filters ("TagA || TagB").
 * NULL or "" removes it. */
RMQ_EXPORT rmq_err_t rmq_msg_set_tags(rmq_msg_t *msg, const char *tags);

/* Sets the business keys (property KEYS): several keys separated by spaces, each indexed by
 * the broker for query by key. NULL or "" removes them. */
RMQ_EXPORT rmq_err_t rmq_msg_set_keys(rmq_msg_t *msg, const char *keys);

/* Sets a user property. NULL value removes it. RocketMQ's reserved names (TAGS, KEYS,
 * UNIQ_KEY, DELAY, ... see doc/messages.md) are refused with RMQ_ERR_INVALID_ARG, as the
 * Java client refuses them, as are names or values holding the bytes 0x01 or 0x02. */
RMQ_EXPORT rmq_err_t rmq_msg_set_property(rmq_msg_t *msg, const char *name, const char *value);

/* Delay level (property DELAY): 0 = none, 1..18 with the broker's default messageDelayLevel
 * "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"; above the broker's maximum
 * means the maximum. */
RMQ_EXPORT rmq_err_t rmq_msg_set_delay_level(rmq_msg_t *msg, int level);

/* Deliver at an absolute time, ms since the epoch (property TIMER_DELIVER_MS, as RocketMQ 5
 * timer messages); 0 removes it. */
RMQ_EXPORT rmq_err_t rmq_msg_set_deliver_time_ms(rmq_msg_t *msg, int64_t when_ms);

/* Sharding key for ordered sends (property __SHARDINGKEY): messages with equal keys go to the
 * same queue when sent with rmq_producer_send_orderly() and no selector. NULL removes it. */
RMQ_EXPORT rmq_err_t rmq_msg_set_sharding_key(rmq_msg_t *msg, const char *key);

/* The user flag: an int carried with the message, opaque to RocketMQ. */
RMQ_EXPORT rmq_err_t rmq_msg_set_flag(rmq_msg_t *msg, int32_t flag);

/* Whether the broker acknowledges only after the message is flushed / replicated as its
 * flushDiskType / brokerRole say (property WAIT; default 1 = yes, as in RocketMQ). */
RMQ_EXPORT rmq_err_t rmq_msg_set_wait_store_msg_ok(rmq_msg_t *msg, int wait);

/* Accessors. Strings are NULL when absent. */
RMQ_EXPORT const char *rmq_msg_topic(const rmq_msg_t *msg);
RMQ_EXPORT const char *rmq_msg_tags(const rmq_msg_t *msg);
RMQ_EXPORT const char *rmq_msg_keys(const rmq_msg_t *msg);
RMQ_EXPORT const void *rmq_msg_body(const rmq_msg_t *msg, size_t *len);
/* Any property, reserved ones included (UNIQ_KEY, DELAY, REAL_TOPIC, ...). */
RMQ_EXPORT const char *rmq_msg_property(const rmq_msg_t *msg, const char *name);
/* Calls cb for each property in order; stops early when cb returns non-zero. */
RMQ_EXPORT void rmq_msg_foreach_property(const rmq_msg_t *msg,
                                         int (*cb)(const char *name, const char *value,
                                                   void *opaque),
                                         void *opaque);
RMQ_EXPORT int32_t rmq_msg_flag(const rmq_msg_t *msg);
RMQ_EXPORT int rmq_msg_delay_level(const rmq_msg_t *msg);

/* Received (or sent, once a send succeeded) messages only; 0 / -1 / NULL otherwise. */
/* Client message id: the UNIQ_KEY property when present, else the offset id. */
RMQ_EXPORT const char *rmq_msg_id(const rmq_msg_t *msg);
/* Offset message id: the broker's store address and the commit-log offset, in hex. */
RMQ_EXPORT const char *rmq_msg_offset_id(const rmq_msg_t *msg);
RMQ_EXPORT int32_t rmq_msg_queue_id(const rmq_msg_t *msg);
RMQ_EXPORT int64_t rmq_msg_queue_offset(const rmq_msg_t *msg);
RMQ_EXPORT int64_t rmq_msg_commitlog_offset(const rmq_msg_t *msg);
RMQ_EXPORT int64_t rmq_msg_born_timestamp(const rmq_msg_t *msg);
RMQ_EXPORT int64_t rmq_msg_store_timestamp(const rmq_msg_t *msg);
RMQ_EXPORT int32_t rmq_msg_reconsume_times(const rmq_msg_t *msg);
/* Name of the broker the message was received from or sent to. */
RMQ_EXPORT const char *rmq_msg_broker_name(const rmq_msg_t *msg);

RMQ_END_DECLS

#endif
