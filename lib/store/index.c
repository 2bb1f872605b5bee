/* Index files (query by key): RocketMQ 4.x's layout — a 40-byte header, maxHashSlotNum
 * int32 slots holding the newest entry of each bucket, maxIndexNum 20-byte entries chained
 * newest to oldest. Keys are "topic#key" for UNIQ_KEY and each KEYS token. Big-endian.
 * The appender writes an entry, then publishes it through its slot (release store), so a
 * concurrent query follows only complete entries. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

enum {
    IX_HEADER = 40,
    IX_BEGIN_TS = 0,
    IX_END_TS = 8,
    IX_BEGIN_PHY = 16,
    IX_END_PHY = 24,
    IX_SLOT_COUNT = 32,
    IX_INDEX_COUNT = 36,
    IX_ENTRY = 20
};

static int64_t hget64(const ixfile_t *f, size_t off) {
    return (int64_t)be64toh(__atomic_load_n((const uint64_t *)(f->map + off), __ATOMIC_ACQUIRE));
}
static void hset64(ixfile_t *f, size_t off, int64_t v) {
    __atomic_store_n((uint64_t *)(f->map + off), htobe64((uint64_t)v), __ATOMIC_RELEASE);
}
static int32_t get32(const ixfile_t *f, size_t off) {
    return (int32_t)be32toh(__atomic_load_n((const uint32_t *)(f->map + off), __ATOMIC_ACQUIRE));
}
static void set32(ixfile_t *f, size_t off, int32_t v) {
    __atomic_store_n((uint32_t *)(f->map + off), htobe32((uint32_t)v), __ATOMIC_RELEASE);
}

static size_t file_size(const ixsvc_t *ix) {
    return IX_HEADER + (size_t)ix->slots * 4 + (size_t)ix->max * IX_ENTRY;
}

void ix_init(ixsvc_t *ix, const char *dir, int32_t slots, int32_t max) {
    memset(ix, 0, sizeof *ix);
    ix->dir = cm_strdup(dir);
    ix->slots = slots;
    ix->max = max;
    pthread_rwlock_init(&ix->lock, NULL);
}

static void close_file(ixfile_t *f, bool remove_file) {
    munmap(f->map, f->size);
    close(f->fd);
    if (remove_file) unlink(f->path);
    cm_free(f->path);
    cm_free(f);
}

void ix_destroy(ixsvc_t *ix) {
    for (size_t i = 0; i < ix->n; i++) close_file(ix->v[i], false);
    cm_free(ix->v);
    cm_free(ix->dir);
    pthread_rwlock_destroy(&ix->lock);
    memset(ix, 0, sizeof *ix);
}

static void push(ixsvc_t *ix, ixfile_t *f) {
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 8;
        ix->v = cm_realloc(ix->v, ix->cap * sizeof *ix->v);
    }
    ix->v[ix->n++] = f;
}

static rmq_err_t map_file(const ixsvc_t *ix, const char *path, bool create, ixfile_t **out,
                          char *err, size_t errsz) {
    seg_t *g;
    rmq_err_t rc = seg_open(path, 0, (int64_t)file_size(ix), create, &g, err, errsz);
    if (rc == RMQ_ERR_BAD_VALUE)
        cm_errstr(err, errsz, "index file %s does not match maxHashSlotNum=%d maxIndexNum=%d",
                  path, (int)ix->slots, (int)ix->max);
    if (rc != RMQ_OK) return rc;
    ixfile_t *f = cm_calloc(1, sizeof *f);
    f->path = g->path;
    f->fd = g->fd;
    f->map = g->map;
    f->size = (size_t)g->size;
    cm_free(g); /* the mapping and descriptor now belong to f */
    if (get32(f, IX_INDEX_COUNT) <= 0) set32(f, IX_INDEX_COUNT, 1);
    *out = f;
    return RMQ_OK;
}

static int cmp_path(const void *a, const void *b) {
    return strcmp((*(ixfile_t *const *)a)->path, (*(ixfile_t *const *)b)->path);
}

static bool index_file_name(const char *name) {
    size_t n = strlen(name);
    if (n < 14 || n > 20) return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] < '0' || name[i] > '9') return false;
    return true;
}

rmq_err_t ix_load(ixsvc_t *ix, bool abnormal, int64_t cp_index_ts, int64_t *rebuild_from,
                  const cm_logger_t *lg, char *err, size_t errsz) {
    *rebuild_from = -1;
    DIR *d = opendir(ix->dir);
    if (!d) return errno == ENOENT ? RMQ_OK : RMQ_ERR_IO;
    struct dirent *e;
    rmq_err_t rc = RMQ_OK;
    char path[2048];
    while (rc == RMQ_OK && (e = readdir(d)) != NULL) {
        if (store_drop_tmp(ix->dir, e->d_name) || !index_file_name(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", ix->dir, e->d_name);
        ixfile_t *f;
        rc = map_file(ix, path, false, &f, err, errsz);
        if (rc == RMQ_OK) push(ix, f);
    }
    closedir(d);
    if (rc != RMQ_OK) return rc;
    if (ix->n > 1) qsort(ix->v, ix->n, sizeof *ix->v, cmp_path);
    size_t kept = 0;
    for (size_t i = 0; i < ix->n; i++) {
        ixfile_t *f = ix->v[i];
        if (abnormal && hget64(f, IX_END_TS) > cp_index_ts) {
            /* Written after the last index flush the checkpoint knows of: it may be torn.
             * Rebuild it from the commit log instead. */
            int64_t from = hget64(f, IX_BEGIN_PHY);
            if (*rebuild_from < 0 || from < *rebuild_from) *rebuild_from = from;
            cm_info(lg, "index file %s is newer than the checkpoint: rebuilding it", f->path);
            close_file(f, true);
            continue;
        }
        ix->v[kept++] = f;
    }
    ix->n = kept;
    return RMQ_OK;
}

static void name_now(char *dst, size_t size, const char *dir, int64_t ms) {
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&sec, &tm);
    snprintf(dst, size, "%s/%04d%02d%02d%02d%02d%02d%03d", dir, tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static ixfile_t *last_file(ixsvc_t *ix) {
    pthread_rwlock_rdlock(&ix->lock);
    ixfile_t *f = ix->n ? ix->v[ix->n - 1] : NULL;
    pthread_rwlock_unlock(&ix->lock);
    return f;
}

/* A new newest file, continuing the previous one's end (RocketMQ does the same). */
static rmq_err_t add_file(ixsvc_t *ix, const cm_logger_t *lg, ixfile_t **out) {
    char err[256], path[2048];
    rmq_err_t rc = cm_mkdirs(ix->dir, err, sizeof err);
    struct stat st;
    int64_t ms = cm_now_ms();
    do name_now(path, sizeof path, ix->dir, ms++);
    while (stat(path, &st) == 0);
    ixfile_t *f = NULL;
    if (rc == RMQ_OK) rc = map_file(ix, path, true, &f, err, sizeof err);
    if (rc != RMQ_OK) {
        cm_error(lg, "index: %s", err);
        return rc;
    }
    ixfile_t *prev = last_file(ix);
    if (prev) {
        hset64(f, IX_BEGIN_PHY, hget64(prev, IX_END_PHY));
        hset64(f, IX_END_PHY, hget64(prev, IX_END_PHY));
        hset64(f, IX_BEGIN_TS, hget64(prev, IX_END_TS));
        hset64(f, IX_END_TS, hget64(prev, IX_END_TS));
    }
    pthread_rwlock_wrlock(&ix->lock);
    push(ix, f);
    pthread_rwlock_unlock(&ix->lock);
    *out = f;
    return RMQ_OK;
}

static int32_t key_hash(const char *key, size_t len) {
    int32_t h = cm_java_hash(key, len);
    return h == INT32_MIN ? 0 : (h < 0 ? -h : h);
}

static size_t slot_pos(const ixsvc_t *ix, int32_t hash) {
    return IX_HEADER + (size_t)(hash % ix->slots) * 4;
}

static size_t entry_pos(const ixsvc_t *ix, int32_t n) {
    return IX_HEADER + (size_t)ix->slots * 4 + (size_t)n * IX_ENTRY;
}

/* False when the file is full. */
static bool put_key(ixsvc_t *ix, ixfile_t *f, const char *key, size_t len, int64_t phys,
                    int64_t ts) {
    int32_t count = get32(f, IX_INDEX_COUNT);
    if (count >= ix->max) return false;
    int32_t hash = key_hash(key, len);
    size_t slot = slot_pos(ix, hash);
    int32_t prev = get32(f, slot);
    if (prev <= 0 || prev > count) prev = 0;
    int64_t begin = hget64(f, IX_BEGIN_TS);
    int64_t diff = (ts - begin) / 1000;
    if (begin <= 0 || diff < 0) diff = 0;
    if (diff > INT32_MAX) diff = INT32_MAX;
    uint8_t *e = f->map + entry_pos(ix, count);
    cm_wr32(e, (uint32_t)hash);
    cm_wr64(e + 4, (uint64_t)phys);
    cm_wr32(e + 12, (uint32_t)diff);
    cm_wr32(e + 16, (uint32_t)prev);
    set32(f, slot, count); /* publishes the entry */
    if (count <= 1) {
        hset64(f, IX_BEGIN_PHY, phys);
        hset64(f, IX_BEGIN_TS, ts);
    }
    if (prev == 0) set32(f, IX_SLOT_COUNT, get32(f, IX_SLOT_COUNT) + 1);
    set32(f, IX_INDEX_COUNT, count + 1);
    hset64(f, IX_END_PHY, phys);
    hset64(f, IX_END_TS, ts);
    return true;
}

static rmq_err_t put_full_key(ixsvc_t *ix, const cm_logger_t *lg, const char *topic,
                              size_t topic_len, const char *key, size_t key_len, int64_t phys,
                              int64_t ts) {
    char small[512];
    size_t n = topic_len + 1 + key_len;
    char *buf = n <= sizeof small ? small : cm_malloc(n);
    memcpy(buf, topic, topic_len);
    buf[topic_len] = '#';
    memcpy(buf + topic_len + 1, key, key_len);
    rmq_err_t rc = RMQ_OK;
    ixfile_t *f = last_file(ix);
    if (!put_key(ix, f, buf, n, phys, ts)) {
        rc = add_file(ix, lg, &f);
        if (rc == RMQ_OK && !put_key(ix, f, buf, n, phys, ts)) rc = RMQ_ERR_STATE;
    }
    if (buf != small) cm_free(buf);
    return rc;
}

rmq_err_t ix_put_record(ixsvc_t *ix, const cm_logger_t *lg, const char *topic, size_t topic_len,
                        const char *uniq, size_t uniq_len, const char *keys, size_t keys_len,
                        int64_t phys, int64_t store_ts) {
    bool has_uniq = uniq != NULL, has_keys = keys != NULL;
    if (!has_uniq && !has_keys) return RMQ_OK;
    rmq_err_t rc = RMQ_OK;
    ixfile_t *f = last_file(ix);
    if (!f && (rc = add_file(ix, lg, &f)) != RMQ_OK) return rc;
    if (phys < hget64(f, IX_END_PHY)) return RMQ_OK; /* indexed already */
    if (has_uniq && uniq_len > 0)
        rc = put_full_key(ix, lg, topic, topic_len, uniq, uniq_len, phys, store_ts);
    for (size_t i = 0; has_keys && rc == RMQ_OK && i < keys_len;) {
        size_t j = i;
        while (j < keys_len && keys[j] != ' ') j++;
        if (j > i) rc = put_full_key(ix, lg, topic, topic_len, keys + i, j - i, phys, store_ts);
        i = j + 1;
    }
    return rc;
}

static bool time_matched(const ixfile_t *f, int64_t begin, int64_t end) {
    int64_t b = hget64(f, IX_BEGIN_TS), e = hget64(f, IX_END_TS);
    return (begin < b && end > e) || (begin >= b && begin <= e) || (end >= b && end <= e);
}

static int select_file(const ixsvc_t *ix, const ixfile_t *f, int32_t hash, int64_t begin,
                       int64_t end, int64_t *out, int found, int max) {
    int32_t count = get32(f, IX_INDEX_COUNT);
    int32_t n = get32(f, slot_pos(ix, hash));
    if (n <= 0 || n > count || count <= 1) return found;
    int64_t file_begin = hget64(f, IX_BEGIN_TS);
    /* Bounded walk: a chain damaged by a crash cannot loop for ever. */
    for (int32_t steps = 0; found < max && steps < count; steps++) {
        const uint8_t *e = f->map + entry_pos(ix, n);
        int32_t h = (int32_t)cm_rd32(e);
        int64_t phys = (int64_t)cm_rd64(e + 4);
        int32_t diff = (int32_t)cm_rd32(e + 12);
        int32_t prev = (int32_t)cm_rd32(e + 16);
        if (diff < 0) break;
        int64_t t = file_begin + (int64_t)diff * 1000;
        if (h == hash && t >= begin && t <= end) out[found++] = phys;
        if (prev <= 0 || prev > count || prev == n || t < begin) break;
        n = prev;
    }
    return found;
}

int ix_query(ixsvc_t *ix, const char *full_key, int64_t begin, int64_t end, int64_t *out,
             int max, int64_t *last_ts, int64_t *last_phy) {
    int32_t hash = key_hash(full_key, strlen(full_key));
    int found = 0;
    pthread_rwlock_rdlock(&ix->lock);
    *last_ts = *last_phy = 0;
    if (ix->n) {
        *last_ts = hget64(ix->v[ix->n - 1], IX_END_TS);
        *last_phy = hget64(ix->v[ix->n - 1], IX_END_PHY);
    }
    for (size_t i = ix->n; i > 0 && found < max; i--) {
        const ixfile_t *f = ix->v[i - 1];
        if (time_matched(f, begin, end)) found = select_file(ix, f, hash, begin, end, out, found, max);
        if (hget64(f, IX_BEGIN_TS) < begin) break;
    }
    pthread_rwlock_unlock(&ix->lock);
    return found;
}

void ix_flush(ixsvc_t *ix) {
    pthread_rwlock_rdlock(&ix->lock);
    for (size_t i = 0; i < ix->n; i++) fdatasync(ix->v[i]->fd);
    pthread_rwlock_unlock(&ix->lock);
}

int ix_delete_below(ixsvc_t *ix, int64_t cl_min) {
    int deleted = 0;
    pthread_rwlock_wrlock(&ix->lock);
    while (ix->n > 1 && hget64(ix->v[0], IX_END_PHY) < cl_min) {
        close_file(ix->v[0], true);
        memmove(ix->v, ix->v + 1, (ix->n - 1) * sizeof *ix->v);
        ix->n--;
        deleted++;
    }
    pthread_rwlock_unlock(&ix->lock);
    return deleted;
}
