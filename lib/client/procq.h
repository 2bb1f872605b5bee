/* lib/client: a push consumer's process queue — the messages pulled from one queue and not
 * yet acknowledged, in offset order (Java's ProcessQueue msgTreeMap). It answers what flow
 * control asks (how many, how many bytes, the offset span) and what the offset store needs
 * ("next to consume": the smallest offset still cached, or past the highest pulled when all
 * are done). Orderly consumption takes messages from the front and either commits or puts
 * back what it took. Pure: no locks (the consumer's mutex guards it), no I/O. */
#ifndef RMQ_CLIENT_PROCQ_H
#define RMQ_CLIENT_PROCQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rmq/msg.h>

typedef struct client_procq_entry {
    int64_t offset;
    rmq_msg_t *msg; /* NULL once removed */
    bool taken;     /* orderly: handed to the listener, not committed yet */
} client_procq_entry_t;

typedef struct client_procq {
    client_procq_entry_t *items; /* live entries and holes in [head, count), ascending */
    size_t head, count, cap;
    size_t cached;       /* messages held */
    size_t cached_bytes; /* their body bytes */
    size_t taken;        /* orderly: entries taken */
    int64_t max_offset;  /* highest offset ever put, -1: none */
} client_procq_t;

void client_procq_init(client_procq_t *q);
/* Frees every message held; q is empty and reusable afterwards. */
void client_procq_clear(client_procq_t *q);

/* Takes ownership of m (its queue_offset is the key). A message at or below the highest
 * offset already put is a duplicate: freed, false. */
bool client_procq_put(client_procq_t *q, rmq_msg_t *m);

/* Highest minus lowest offset held (0 when fewer than two). */
int64_t client_procq_span(const client_procq_t *q);

/* Next to consume: the lowest offset held, else max_offset + 1, else -1 (nothing ever put). */
int64_t client_procq_next(const client_procq_t *q);

/* Concurrent: removes (and frees) the messages at these offsets; offsets not held are
 * ignored. Returns client_procq_next afterwards. */
int64_t client_procq_remove(client_procq_t *q, const int64_t *offsets, size_t n);

/* Orderly: marks up to max untaken messages from the front as taken and writes them to out,
 * in offset order. Returns how many. */
size_t client_procq_take(client_procq_t *q, size_t max, rmq_msg_t **out);
/* Orderly: SUCCESS — removes every taken message; returns client_procq_next afterwards. */
int64_t client_procq_commit_taken(client_procq_t *q);
/* Orderly: SUSPEND — the taken messages go back to be taken again, in order. */
void client_procq_untake(client_procq_t *q);

#endif
