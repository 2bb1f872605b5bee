/* A push consumer's process queue (procq.h): a sorted array with holes, compacted from the
 * front, because pulls append in offset order and acknowledgements mostly come in it. */
#include "procq.h"

#include <string.h>

#include "common/cm.h"
#include "proto/proto.h"

void client_procq_init(client_procq_t *q) {
    memset(q, 0, sizeof *q);
    q->max_offset = -1;
}

void client_procq_clear(client_procq_t *q) {
    for (size_t i = q->head; i < q->count; i++)
        rmq_msg_destroy(q->items[i].msg);
    cm_free(q->items);
    int64_t max = q->max_offset;
    client_procq_init(q);
    q->max_offset = max; /* the next pull still continues from there */
}

/* Drops removed entries at the front; moves the rest down when the front grew large. */
static void compact(client_procq_t *q) {
    while (q->head < q->count && !q->items[q->head].msg)
        q->head++;
    if (q->head == q->count) {
        q->head = q->count = 0;
    } else if (q->head > 64 && q->head * 2 > q->count) {
        memmove(q->items, q->items + q->head, (q->count - q->head) * sizeof *q->items);
        q->count -= q->head;
        q->head = 0;
    }
}

bool client_procq_put(client_procq_t *q, rmq_msg_t *m) {
    if (m->queue_offset <= q->max_offset) {
        rmq_msg_destroy(m);
        return false;
    }
    if (q->count == q->cap) {
        if (q->head > 0) {
            memmove(q->items, q->items + q->head, (q->count - q->head) * sizeof *q->items);
            q->count -= q->head;
            q->head = 0;
        }
        if (q->count == q->cap) {
            q->cap = q->cap ? q->cap * 2 : 64;
            q->items = cm_realloc(q->items, q->cap * sizeof *q->items);
        }
    }
    q->items[q->count++] = (client_procq_entry_t){m->queue_offset, m, false};
    q->max_offset = m->queue_offset;
    q->cached++;
    q->cached_bytes += m->body_len;
    return true;
}

int64_t client_procq_span(const client_procq_t *q) {
    if (q->cached < 2) return 0;
    /* head is live after every compact(); the last live entry is the highest. */
    size_t last = q->count;
    while (last > q->head && !q->items[last - 1].msg)
        last--;
    return q->items[last - 1].offset - q->items[q->head].offset;
}

int64_t client_procq_next(const client_procq_t *q) {
    if (q->cached > 0) return q->items[q->head].offset;
    return q->max_offset < 0 ? -1 : q->max_offset + 1;
}

static client_procq_entry_t *find(client_procq_t *q, int64_t offset) {
    size_t lo = q->head, hi = q->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->items[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < q->count && q->items[lo].offset == offset && q->items[lo].msg ? &q->items[lo]
                                                                              : NULL;
}

static void drop(client_procq_t *q, client_procq_entry_t *e) {
    q->cached--;
    q->cached_bytes -= e->msg->body_len;
    if (e->taken) q->taken--;
    rmq_msg_destroy(e->msg);
    e->msg = NULL;
    e->taken = false;
}

int64_t client_procq_remove(client_procq_t *q, const int64_t *offsets, size_t n) {
    for (size_t i = 0; i < n; i++) {
        client_procq_entry_t *e = find(q, offsets[i]);
        if (e) drop(q, e);
    }
    compact(q);
    return client_procq_next(q);
}

size_t client_procq_take(client_procq_t *q, size_t max, rmq_msg_t **out) {
    size_t n = 0;
    for (size_t i = q->head; i < q->count && n < max; i++) {
        client_procq_entry_t *e = &q->items[i];
        if (!e->msg || e->taken) continue;
        e->taken = true;
        q->taken++;
        out[n++] = e->msg;
    }
    return n;
}

int64_t client_procq_commit_taken(client_procq_t *q) {
    for (size_t i = q->head; i < q->count && q->taken > 0; i++)
        if (q->items[i].msg && q->items[i].taken) drop(q, &q->items[i]);
    compact(q);
    return client_procq_next(q);
}

void client_procq_untake(client_procq_t *q) {
    for (size_t i = q->head; i < q->count && q->taken > 0; i++)
        if (q->items[i].taken) {
            q->items[i].taken = false;
            q->taken--;
        }
}
