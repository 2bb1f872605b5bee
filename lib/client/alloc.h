/* lib/client: how a clustering consumer group shares a topic's queues among its clients.
 * The strategies compute exactly what RocketMQ 4.9.8's do, because librmq and Java (or
 * ali-ons) consumers in one group each decide alone and must arrive at the same split. Pure:
 * no I/O, no threads. */
#ifndef RMQ_CLIENT_ALLOC_H
#define RMQ_CLIENT_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* One queue of a topic as Java's MessageQueue names it. The strings are borrowed. */
typedef struct client_mq {
    const char *topic;
    const char *broker_name;
    int32_t queue_id;
} client_mq_t;

/* A strategy. cids: every client id of the group, sorted with client_alloc_sort_ids; mqs:
 * the topic's queues, sorted with client_alloc_sort_mqs. Writes to owned[] (room for n_mqs)
 * the indexes into mqs of the queues cid owns, ascending, and returns how many. A cid not in
 * cids, or no cids or no queues, owns nothing (Java logs "[BUG]" and returns an empty list). */
typedef size_t(client_alloc_fn)(const char *cid, const char *const *cids, size_t n_cids,
                                const client_mq_t *mqs, size_t n_mqs, size_t *owned);

/* AllocateMessageQueueAveragely (the default): contiguous runs whose sizes differ by at most
 * one, the longer runs going to the first clients. */
client_alloc_fn client_alloc_averagely;
/* AllocateMessageQueueAveragelyByCircle: queue k goes to client k mod n_cids. */
client_alloc_fn client_alloc_by_circle;
/* AllocateMessageQueueConsistentHash with its default of 10 virtual nodes per client. */
client_alloc_fn client_alloc_consistent_hash;

/* AllocateMessageQueueConsistentHash(vnodes): an MD5 ring with vnodes points per client;
 * each queue goes to the first point at or after its own hash (wrapping). vnodes 0 leaves
 * the ring empty, so nobody owns anything (as in Java). */
size_t client_alloc_consistent_hash_n(int vnodes, const char *cid, const char *const *cids,
                                      size_t n_cids, const client_mq_t *mqs, size_t n_mqs,
                                      size_t *owned);

/* The ring position of key (its UTF-8 bytes): the first four bytes of its MD5 digest read
 * big-endian, as the router's default MD5Hash computes it. */
uint32_t client_alloc_ring_hash(const char *key, size_t len);

typedef struct client_alloc_strategy {
    const char *name;       /* what Java's getName() returns: "AVG", ... */
    const char *class_name; /* the value of our allocateMessageQueueStrategy key */
    client_alloc_fn *fn;
} client_alloc_strategy_t;

/* The strategy called name: RocketMQ's getName() text ("AVG", "AVG_BY_CIRCLE",
 * "CONSISTENT_HASH") or its class name ("AllocateMessageQueueAveragely", ...). NULL if
 * unknown. */
const client_alloc_strategy_t *client_alloc_find(const char *name);

/* Java's String.compareTo over UTF-8 text: the order of UTF-16 code units, which differs
 * from strcmp's code point order once characters beyond U+FFFF meet ones above U+DFFF. */
int client_java_strcmp(const char *a, const char *b);
/* Sorts as RebalanceImpl does: client ids as Java strings; queues by topic, broker name
 * (both as Java strings), then queue id. */
void client_alloc_sort_ids(const char **ids, size_t n);
void client_alloc_sort_mqs(client_mq_t *mqs, size_t n);
int client_mq_cmp(const client_mq_t *a, const client_mq_t *b);

#endif
