/* Consume queues: per topic and queue id, 20-byte entries (commit-log offset, record size,
 * tags code) in files of mappedFileSizeConsumeQueue bytes named by their first byte offset.
 * Entry k is queue offset k. The appender (under the store's append lock) is the only writer;
 * readers see entries below `max`, which is published after the entry is written. */
#include <stdio.h>

#include "store/store_int.h"

int64_t cq_entries_per_file(const cq_t *q) { return q->files.seg_size / STORE_CQ_UNIT; }

cq_t *cq_new(const char *cq_root, const char *topic, int32_t queue_id, int64_t file_size) {
    cq_t *q = cm_calloc(1, sizeof *q);
    q->topic = cm_strdup(topic);
    q->queue_id = queue_id;
    char *dir = cm_sprintf("%s/%s/%d", cq_root, topic, (int)queue_id);
    segq_init(&q->files, dir, file_size - file_size % STORE_CQ_UNIT);
    cm_free(dir);
    return q;
}

void cq_free(cq_t *q) {
    if (!q) return;
    segq_destroy(&q->files);
    cm_free(q->topic);
    cm_free(q);
}

static bool entry_valid(int64_t phys, int32_t size) { return phys >= 0 && size > 0; }

static void read_entry(const uint8_t *p, int64_t *phys, int32_t *size, int64_t *tags) {
    *phys = (int64_t)cm_rd64(p);
    *size = (int32_t)cm_rd32(p + 8);
    if (tags) *tags = (int64_t)cm_rd64(p + 12);
}

/* Recovery as RocketMQ does it: from the third-last file forward until the first invalid
 * entry; everything after it is dropped. */
rmq_err_t cq_load(cq_t *q, const cm_logger_t *lg, char *err, size_t errsz) {
    rmq_err_t rc = segq_load(&q->files, err, errsz);
    if (rc != RMQ_OK || q->files.n == 0) return rc;
    size_t first = q->files.n >= 3 ? q->files.n - 3 : 0;
    int64_t end = q->files.v[first]->start;
    for (size_t i = first; i < q->files.n; i++) {
        seg_t *g = q->files.v[i];
        int64_t off = 0;
        for (; off + STORE_CQ_UNIT <= g->size; off += STORE_CQ_UNIT) {
            int64_t phys;
            int32_t size;
            read_entry(g->map + off, &phys, &size, NULL);
            if (!entry_valid(phys, size)) break;
            if (size != STORE_FILLER_SIZE) q->max_phys_end = phys + size;
        }
        end = g->start + off;
        if (off + STORE_CQ_UNIT <= g->size) break;
    }
    segq_truncate(&q->files, end);
    q->max = end / STORE_CQ_UNIT;
    q->min = q->files.n ? q->files.v[0]->start / STORE_CQ_UNIT : q->max;
    q->flushed = q->max;
    cm_debug(lg, "consume queue %s/%d: offsets [%lld, %lld)", q->topic, (int)q->queue_id,
             (long long)q->min, (long long)q->max);
    return RMQ_OK;
}

/* The segment that holds byte offset pos, created when pos is where the next file starts. */
static rmq_err_t file_for(cq_t *q, int64_t pos, seg_t **out) {
    pthread_rwlock_rdlock(&q->files.lock);
    seg_t *g = segq_find(&q->files, pos);
    seg_t *last = segq_last(&q->files);
    pthread_rwlock_unlock(&q->files.lock);
    if (g) {
        *out = g;
        return RMQ_OK;
    }
    int64_t start = pos - pos % q->files.seg_size;
    if (last && start != last->start + last->size) return RMQ_ERR_STATE;
    char err[256];
    return segq_add(&q->files, start, out, err, sizeof err);
}

static rmq_err_t write_entry(cq_t *q, int64_t idx, int64_t phys, int32_t size, int64_t tags) {
    seg_t *g;
    int64_t pos = idx * STORE_CQ_UNIT;
    rmq_err_t rc = file_for(q, pos, &g);
    if (rc != RMQ_OK) return rc;
    uint8_t *p = g->map + (pos - g->start);
    cm_wr64(p, (uint64_t)phys);
    cm_wr32(p + 8, (uint32_t)size);
    cm_wr64(p + 12, (uint64_t)tags);
    return RMQ_OK;
}

rmq_err_t cq_put(cq_t *q, const cm_logger_t *lg, int64_t idx, int64_t phys, int32_t size,
                 int64_t tags) {
    int64_t max = q->max;
    if (idx < max) {
        /* Only recovery gets here (the log disagrees with the queue): the log wins. */
        cm_warn(lg, "consume queue %s/%d: rewriting from offset %lld (had %lld)", q->topic,
                (int)q->queue_id, (long long)idx, (long long)max);
        STORE_REL(&q->max, idx);
        max = idx;
    }
    pthread_rwlock_rdlock(&q->files.lock);
    bool empty = q->files.n == 0;
    pthread_rwlock_unlock(&q->files.lock);
    if (empty && idx > 0) {
        /* A queue that starts mid-way (its older files are gone): pad its first file, as
         * RocketMQ does, and make the first real entry its minimum. */
        max = idx - idx % cq_entries_per_file(q);
        STORE_REL(&q->min, idx);
    } else if (idx > max) {
        cm_warn(lg, "consume queue %s/%d: gap from %lld to %lld filled", q->topic,
                (int)q->queue_id, (long long)max, (long long)idx);
    }
    for (; max < idx; max++) {
        rmq_err_t rc = write_entry(q, max, 0, STORE_FILLER_SIZE, 0);
        if (rc != RMQ_OK) return rc;
    }
    rmq_err_t rc = write_entry(q, idx, phys, size, tags);
    if (rc != RMQ_OK) return rc;
    if (phys + size > q->max_phys_end) q->max_phys_end = phys + size;
    STORE_REL(&q->max, idx + 1);
    return RMQ_OK;
}

bool cq_get(cq_t *q, int64_t idx, int64_t *phys, int32_t *size, int64_t *tags) {
    bool ok = false;
    pthread_rwlock_rdlock(&q->files.lock);
    seg_t *g = segq_find(&q->files, idx * STORE_CQ_UNIT);
    if (g) {
        read_entry(g->map + (idx * STORE_CQ_UNIT - g->start), phys, size, tags);
        ok = true;
    }
    pthread_rwlock_unlock(&q->files.lock);
    return ok;
}

void cq_truncate_phys(cq_t *q, int64_t log_end) {
    int64_t max = q->max;
    q->max_phys_end = 0;
    while (max > q->min) {
        int64_t phys, tags;
        int32_t size;
        if (!cq_get(q, max - 1, &phys, &size, &tags)) break;
        if (size == STORE_FILLER_SIZE || phys + size <= log_end) {
            if (size != STORE_FILLER_SIZE) q->max_phys_end = phys + size;
            break;
        }
        max--;
    }
    if (max != q->max) STORE_REL(&q->max, max);
    segq_truncate(&q->files, max * STORE_CQ_UNIT);
    if (q->flushed > max) q->flushed = max;
}

/* First entry whose record is at or above cl_min (entries are in log order, fillers first). */
void cq_correct_min(cq_t *q, int64_t cl_min) {
    pthread_rwlock_rdlock(&q->files.lock);
    int64_t lo = q->files.n ? q->files.v[0]->start / STORE_CQ_UNIT : LOAD_ACQ(&q->max);
    pthread_rwlock_unlock(&q->files.lock);
    int64_t min = LOAD_ACQ(&q->min);
    if (lo < min) lo = min;
    int64_t hi = LOAD_ACQ(&q->max);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, phys, tags;
        int32_t size;
        bool below = !cq_get(q, mid, &phys, &size, &tags) || size == STORE_FILLER_SIZE ||
                     phys < cl_min;
        if (below)
            lo = mid + 1;
        else
            hi = mid;
    }
    STORE_REL(&q->min, lo);
}

int cq_delete_below(cq_t *q, int64_t cl_min) {
    int deleted = 0;
    for (;;) {
        pthread_rwlock_rdlock(&q->files.lock);
        seg_t *g = q->files.n > 1 ? q->files.v[0] : NULL;
        int64_t phys = 0;
        int32_t size = 0;
        if (g) read_entry(g->map + g->size - STORE_CQ_UNIT, &phys, &size, NULL);
        pthread_rwlock_unlock(&q->files.lock);
        if (!g || (size != STORE_FILLER_SIZE && phys >= cl_min)) break;
        segq_drop_first(&q->files);
        deleted++;
    }
    if (deleted) cq_correct_min(q, cl_min);
    return deleted;
}

void cq_flush(cq_t *q) {
    int64_t max = LOAD_ACQ(&q->max);
    if (max <= q->flushed) return;
    segq_sync(&q->files, q->flushed * STORE_CQ_UNIT, max * STORE_CQ_UNIT);
    q->flushed = max;
}
