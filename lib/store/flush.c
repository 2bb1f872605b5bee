/* The store's threads. The flush thread makes the commit log durable: with SYNC_FLUSH it is
 * a group commit (every appender waiting when a flush starts is covered by that one msync
 * and woken with the others, without a lock to take on the way out, while those that came
 * later sleep on for the next round); with ASYNC_FLUSH it flushes on an interval. The
 * service thread flushes consume queues and index files, writes the checkpoint and runs
 * retention. The warm thread creates the next segment early and, with SYNC_FLUSH, writes
 * zeros ahead of the writer. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

enum { CP_PHYSIC = 0, CP_LOGICS = 8, CP_INDEX = 16, CP_SIZE = 4096 };

/* ---- checkpoint */

rmq_err_t store_read_checkpoint(store_t *s, int64_t *physic, int64_t *logics, int64_t *index) {
    uint8_t b[24] = {0};
    ssize_t n = pread(s->cp_fd, b, sizeof b, 0);
    if (n < 0) return RMQ_ERR_IO;
    *physic = (int64_t)cm_rd64(b + CP_PHYSIC);
    *logics = (int64_t)cm_rd64(b + CP_LOGICS);
    *index = (int64_t)cm_rd64(b + CP_INDEX);
    return RMQ_OK;
}

void store_write_checkpoint(store_t *s, int64_t physic, int64_t logics, int64_t index) {
    uint8_t b[24];
    cm_wr64(b + CP_PHYSIC, (uint64_t)physic);
    cm_wr64(b + CP_LOGICS, (uint64_t)logics);
    cm_wr64(b + CP_INDEX, (uint64_t)index);
    if (pwrite(s->cp_fd, b, sizeof b, 0) != (ssize_t)sizeof b || fdatasync(s->cp_fd) != 0)
        cm_error(s->lg, "checkpoint: cannot write %s: %s", s->cp_path, strerror(errno));
}

/* ---- commit-log flush */

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *abs) {
    return syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, abs, NULL,
                   FUTEX_BITSET_MATCH_ANY);
}

/* Starts a round up to the written end unless nothing is new. The end is read under
 * flush_mu: an appender that found no round in flight (pick_round) published its bytes
 * before, so this round covers them. The time first: its record then lies below the end. */
static bool begin_round(store_t *s, int64_t *from, int64_t *to, int64_t *ts, uint64_t *round) {
    pthread_mutex_lock(&s->flush_mu);
    *ts = LOAD_ACQ(&s->written_ts);
    *to = LOAD_ACQ(&s->written);
    *from = s->flushed;
    bool go = *to > *from;
    if (go) {
        s->flushing = true;
        s->round_to = *to;
        *round = s->round;
    }
    pthread_mutex_unlock(&s->flush_mu);
    return go;
}

/* Publishes the round's result and wakes the appenders waiting for this round. */
static void end_round(store_t *s, uint64_t round, int64_t to, int64_t ts, int rc) {
    pthread_mutex_lock(&s->flush_mu);
    if (rc == 0) {
        s->flushes++;
        STORE_REL(&s->flushed, to);
        s->flushed_ts = ts;
        s->flush_failed = false;
    } else if (!s->flush_failed) {
        s->flush_failed = true;
        cm_error(s->lg, "commit log: msync failed: %s", strerror(errno));
    }
    s->flushing = false;
    s->round++;
    uint32_t *word = &s->done[round & 1];
    __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->flush_mu);
    /* A failed round wakes its waiters too: they wait again for the next round. */
    if (__atomic_load_n(&s->waiters, __ATOMIC_ACQUIRE) > 0)
        futex(word, FUTEX_WAKE, INT32_MAX, NULL);
}

/* Flushes [flushed, written) and publishes the new durable end. */
static void flush_to_written(store_t *s) {
    int64_t from, to, ts;
    uint64_t round;
    pthread_mutex_lock(&s->sync_mu);
    if (begin_round(s, &from, &to, &ts, &round))
        end_round(s, round, to, ts, segq_sync(&s->cl, from, to));
    pthread_mutex_unlock(&s->sync_mu);
}

void store_flush_commitlog_now(store_t *s) { flush_to_written(s); }

/* Drops our page-table mappings of commit-log bytes that are flushed and more than
 * RELEASE_LAG behind the durable end. The pages stay in the kernel's cache (a reader
 * refaults them cheaply) up to commitLogCacheWindow, below; our RSS stays bounded by the recent
 * tail instead of growing with the 1 GiB segment being written. Written bytes are never written
 * again, so this is safe. */
enum { RELEASE_LAG = 32 << 20, RELEASE_STEP = 8 << 20 };

/* How [from, to) of the log is let go: our mapping of it, or its pages in the kernel's cache
 * (they must not be mapped any more for the kernel to drop them). */
typedef enum let_go { LET_GO_MAPPING, LET_GO_CACHE } let_go_t;

static void let_go(store_t *s, int64_t from_all, int64_t upto, let_go_t what) {
    pthread_rwlock_rdlock(&s->cl.lock);
    for (size_t i = 0; i < s->cl.n; i++) {
        seg_t *g = s->cl.v[i];
        int64_t from = from_all > g->start ? from_all : g->start;
        int64_t to = upto < g->start + g->size ? upto : g->start + g->size;
        if (to <= from) continue;
        if (what == LET_GO_MAPPING)
            madvise(g->map + (from - g->start), (size_t)(to - from), MADV_DONTNEED);
        else
            posix_fadvise(g->fd, from - g->start, to - from, POSIX_FADV_DONTNEED);
    }
    pthread_rwlock_unlock(&s->cl.lock);
}

/* Then, commitLogCacheWindow behind the flushed end, the pages leave the page cache: the
 * log is written once and read mostly near its end, and a cache that grows with the log
 * takes fresh memory for every page written. On a virtual machine whose host backs guest
 * memory lazily, that made each new page cost a host fault: async sends fell from about
 * 180,000 to 95,000 msgs/s once the cache had grown by 800 MB, while recycled pages keep
 * the rate. Readers further back read from disk (the kernel reads ahead), as RocketMQ's
 * do for data the cache lost. Only clean, unmapped pages go. */
static void release_flushed(store_t *s, int64_t *released, int64_t *uncached) {
    pthread_mutex_lock(&s->flush_mu);
    int64_t flushed = s->flushed;
    pthread_mutex_unlock(&s->flush_mu);
    int64_t upto = (flushed - RELEASE_LAG) & ~(int64_t)(STORE_PAGE - 1);
    if (upto - *released >= RELEASE_STEP) {
        let_go(s, *released, upto, LET_GO_MAPPING);
        *released = upto;
    }
    if (s->cfg.cache_window <= 0) return;
    int64_t drop = (flushed - s->cfg.cache_window) & ~(int64_t)(STORE_PAGE - 1);
    if (drop > *released) drop = *released;
    if (drop - *uncached < RELEASE_STEP) return;
    let_go(s, *uncached, drop, LET_GO_CACHE);
    *uncached = drop;
}

/* With SYNC_FLUSH, keeps WARM_LEAD bytes after the write position zeroed on disk (below);
 * with either mode, creates the next segment before the writer needs it. ASYNC_FLUSH does
 * not read pages in ahead: the appender's pwrites cover whole pages (a batch is staged),
 * so the kernel does not zero a page before the write, and reading ahead zeroed every page
 * once more, a quarter of the process's CPU at 80,000 1 KiB msgs/s for nothing (RocketMQ's
 * warmMapedFileEnable is off by default too). */
enum { WARM_LEAD = 64 << 20, WARM_STEP = 4 << 20 };

/* SYNC_FLUSH writes real zeros ahead (RocketMQ's warmMapedFileEnable): segments are
 * preallocated as unwritten extents, and a flush over such blocks converts them, so every
 * group commit would also write the inode (ext4 without a journal does so synchronously):
 * two disk writes per round instead of one. Zeros written and made durable here, in steps
 * of ZERO_CHUNK claimed from the appenders, leave the flushes only data blocks to write.
 * Not for ASYNC_FLUSH: it would write every byte twice and halve its bandwidth. */
enum { ZERO_CHUNK = 1 << 20, ZERO_BUF = 64 << 10 };

bool store_wait_zeroing(store_t *s, int64_t from, int64_t to) {
    bool waited = false;
    while (from < s->zeroing_to && s->zeroing_from < to) {
        pthread_cond_wait(&s->zero_done, &s->append_mu);
        waited = true;
    }
    return waited;
}

/* Claims [*from, to) for zeroing, moved past what the writer already wrote; false when
 * nothing is left of it. */
static bool claim_zeroing(store_t *s, int64_t *from, int64_t to) {
    pthread_mutex_lock(&s->append_mu);
    int64_t pos = (s->write_pos + STORE_PAGE - 1) & ~(int64_t)(STORE_PAGE - 1);
    if (*from < pos) *from = pos;
    bool claimed = *from < to;
    if (claimed) {
        s->zeroing_from = *from;
        s->zeroing_to = to;
    }
    pthread_mutex_unlock(&s->append_mu);
    return claimed;
}

static void end_zeroing(store_t *s) {
    pthread_mutex_lock(&s->append_mu);
    s->zeroing_from = s->zeroing_to = 0;
    pthread_cond_broadcast(&s->zero_done);
    pthread_mutex_unlock(&s->append_mu);
}

/* Writes zeros over [from, to) (log offsets) of the segment open as fd, which starts at
 * base, where the writer has not been yet. */
static int zero_fill(store_t *s, int fd, int64_t base, int64_t from, int64_t to) {
    static const uint8_t zeros[ZERO_BUF];
    int rc = 0;
    for (int64_t at = from; at < to && rc == 0; at += ZERO_CHUNK) {
        int64_t start = at, end = at + ZERO_CHUNK < to ? at + ZERO_CHUNK : to;
        if (!claim_zeroing(s, &start, end)) continue;
        for (int64_t p = start; p < end && rc == 0; p += ZERO_BUF) {
            size_t n = end - p < ZERO_BUF ? (size_t)(end - p) : ZERO_BUF;
            if (pwrite(fd, zeros, n, p - base) != (ssize_t)n) rc = -1;
        }
        end_zeroing(s);
    }
    /* The extent conversion and its inode write happen in this sync, not in a commit's. */
    if (rc == 0 && fdatasync(fd) != 0) rc = -1;
    return rc;
}

/* The descriptor to zero-fill g through; called with the segment list read-locked.
 * Zero-filling takes append_mu, which appenders hold while they take the list's lock
 * (segment roll-over): it runs after the caller unlocks, on a duplicate of the descriptor
 * that stays valid even if retention closes the segment meanwhile. Returns it or -1. */
static int zero_fd(store_t *s, seg_t *g) {
    int fd = fcntl(g->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) cm_warn(s->lg, "commit log: zero-fill of %s: %s", g->path, strerror(errno));
    return fd;
}

static void warm_ahead(store_t *s, int64_t *warm_to) {
    int64_t pos = LOAD_ACQ(&s->written), seg_size = s->cl.seg_size;
    /* in whole steps: each zero-fill step ends in an fdatasync */
    int64_t want = (pos + WARM_LEAD) & ~(int64_t)(WARM_STEP - 1);
    int64_t next = pos - pos % seg_size + seg_size;
    seg_t *g;
    pthread_rwlock_rdlock(&s->cl.lock);
    bool writing = segq_find(&s->cl, pos) != NULL; /* the first segment is the appender's */
    pthread_rwlock_unlock(&s->cl.lock);
    if (want > next && (!writing || store_segment_at(s, next, &g) != RMQ_OK)) want = next;
    if (!s->cfg.sync_flush) return; /* the next segment was all it needed */
    if (*warm_to < pos) *warm_to = pos & ~(int64_t)(STORE_PAGE - 1);
    while (*warm_to < want && !LOAD_ACQ(&s->stopping)) {
        int64_t to = *warm_to + WARM_STEP < want ? *warm_to + WARM_STEP : want, base = 0;
        int fd = -1;
        pthread_rwlock_rdlock(&s->cl.lock);
        g = segq_find(&s->cl, *warm_to);
        if (g) {
            if (to > g->start + g->size) to = g->start + g->size;
            base = g->start;
            fd = zero_fd(s, g);
        }
        pthread_rwlock_unlock(&s->cl.lock);
        if (!g) break;
        if (fd >= 0) {
            if (zero_fill(s, fd, base, *warm_to, to) != 0)
                cm_warn(s->lg, "commit log: zero-fill failed: %s", strerror(errno));
            close(fd);
        }
        *warm_to = to;
    }
}

static bool async_flush_due(store_t *s, int64_t *last_flush, int64_t *last_thorough) {
    int64_t now = cm_mono_ms();
    if (now - *last_flush < s->cfg.flush_interval_ms) return false;
    *last_flush = now;
    int64_t written = LOAD_ACQ(&s->written), flushed = LOAD_ACQ(&s->flushed);
    int64_t dirty_pages = written / STORE_PAGE - flushed / STORE_PAGE;
    bool any = written > flushed;
    if (any && now - *last_thorough >= s->cfg.flush_thorough_interval_ms) {
        *last_thorough = now;
        return true;
    }
    return dirty_pages >= s->cfg.flush_least_pages && any;
}

void *store_flush_main(void *arg) {
    store_t *s = arg;
    int64_t last_thorough = cm_mono_ms(), last_flush = cm_mono_ms();
    pthread_mutex_lock(&s->flush_mu);
    int64_t released = s->flushed; /* recovery already released what it scanned */
    int64_t uncached = 0;
    pthread_mutex_unlock(&s->flush_mu);
    for (;;) {
        pthread_mutex_lock(&s->flush_mu);
        bool stop = LOAD_ACQ(&s->stopping);
        if (!stop) {
            /* SYNC: wake as soon as someone waits, and every 10 ms for appends that did not
             * ask to wait (RocketMQ's GroupCommitService does the same). ASYNC: flushes
             * follow flushIntervalCommitLog. */
            int64_t ms = s->cfg.flush_interval_ms < 10 ? s->cfg.flush_interval_ms : 10;
            struct timespec dl = cm_mono_deadline(ms);
            bool waited = __atomic_load_n(&s->waiters, __ATOMIC_ACQUIRE) > 0;
            if (!(s->cfg.sync_flush && waited && LOAD_ACQ(&s->written) > s->flushed))
                pthread_cond_timedwait(&s->flush_req, &s->flush_mu, &dl);
            stop = LOAD_ACQ(&s->stopping);
        }
        pthread_mutex_unlock(&s->flush_mu);
        if (stop) break;
        if (s->cfg.sync_flush || async_flush_due(s, &last_flush, &last_thorough))
            flush_to_written(s);
        release_flushed(s, &released, &uncached);
    }
    flush_to_written(s);
    return NULL;
}

/* The warm thread: its own, so zeroing pages never delays a group commit. */
void *store_warm_main(void *arg) {
    store_t *s = arg;
    int64_t warm_to = 0;
    for (;;) {
        pthread_mutex_lock(&s->svc_mu);
        if (!s->stopping) {
            struct timespec dl = cm_mono_deadline(5);
            pthread_cond_timedwait(&s->warm_cv, &s->svc_mu, &dl);
        }
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->svc_mu);
        if (stop) break;
        warm_ahead(s, &warm_to);
    }
    return NULL;
}

/* The futex word of the first round sure to cover end, and its value now: the round in
 * flight if it reaches end, else the next one (which starts after our bytes were
 * published). Wakes the flush thread when no round is in flight. */
static uint32_t *pick_round(store_t *s, int64_t end, uint32_t *seen) {
    pthread_mutex_lock(&s->flush_mu);
    uint64_t r = s->round + (s->flushing && s->round_to < end ? 1 : 0);
    uint32_t *word = &s->done[r & 1];
    *seen = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (!s->flushing) pthread_cond_signal(&s->flush_req);
    pthread_mutex_unlock(&s->flush_mu);
    return word;
}

rmq_err_t store_wait_flushed(store_t *s, int64_t end) {
    if (LOAD_ACQ(&s->flushed) >= end) return RMQ_OK;
    struct timespec dl = cm_mono_deadline(s->cfg.sync_flush_timeout_ms);
    rmq_err_t rc = RMQ_OK;
    __atomic_add_fetch(&s->waiters, 1, __ATOMIC_ACQ_REL);
    while (LOAD_ACQ(&s->flushed) < end) {
        uint32_t seen, *word = pick_round(s, end, &seen);
        if (LOAD_ACQ(&s->flushed) >= end) break;
        /* returns at once if the round ended since pick_round (the word moved on) */
        if (futex(word, FUTEX_WAIT_BITSET, seen, &dl) != 0 && errno == ETIMEDOUT &&
            LOAD_ACQ(&s->flushed) < end) {
            rc = RMQ_ERR_FLUSH_DISK_TIMEOUT;
            break;
        }
    }
    __atomic_sub_fetch(&s->waiters, 1, __ATOMIC_ACQ_REL);
    return rc;
}

/* ---- consume queues, index, checkpoint */

typedef struct cq_list {
    cq_t **v;
    size_t n;
} cq_list_t;

static cq_list_t snapshot_queues(store_t *s) {
    cq_list_t l = {NULL, 0};
    pthread_rwlock_rdlock(&s->cq_lock);
    size_t count = cm_map_count(s->cqs), it = 0;
    l.v = cm_malloc((count ? count : 1) * sizeof *l.v);
    const char *key;
    void *v;
    while (cm_map_next(s->cqs, &it, &key, &v)) l.v[l.n++] = v;
    pthread_rwlock_unlock(&s->cq_lock);
    return l;
}

void store_flush_cqs(store_t *s) {
    int64_t logics = LOAD_ACQ(&s->last_dispatch_ts);
    cq_list_t l = snapshot_queues(s);
    for (size_t i = 0; i < l.n; i++) cq_flush(l.v[i]);
    cm_free(l.v);
    if (s->cfg.index_enable) ix_flush(&s->ix);
    pthread_mutex_lock(&s->flush_mu);
    int64_t physic = s->flushed_ts;
    pthread_mutex_unlock(&s->flush_mu);
    store_write_checkpoint(s, physic, logics, logics);
}

/* ---- retention */

static double statvfs_usage(void *arg, const char *path) {
    (void)arg;
    struct statvfs v;
    if (statvfs(path, &v) != 0 || v.f_blocks == 0) return -1;
    return 1.0 - (double)v.f_bavail / (double)v.f_blocks;
}

static int64_t file_mtime_ms(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Disk guard: over 90 % writes stop; over 85 % old files go regardless of age. */
static bool check_disk(store_t *s, bool *space_to_delete) {
    store_disk_usage_fn *fn = s->cfg.disk_usage ? s->cfg.disk_usage : statvfs_usage;
    double used = fn(s->cfg.disk_usage_arg, s->cl_dir);
    int full = used > 0.90;
    if (full != LOAD_ACQ(&s->disk_full)) {
        if (full)
            cm_error(s->lg, "disk %.0f%% full (over 90%%): refusing appends", used * 100);
        else
            cm_info(s->lg, "disk %.0f%% full: appends allowed again", used * 100);
        STORE_REL(&s->disk_full, full);
    }
    *space_to_delete = used > s->cfg.disk_max_used_ratio / 100.0;
    return used > 0.85;
}

static bool delete_hour_now(const store_t *s) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return (s->cfg.delete_when_hours >> tm.tm_hour) & 1u;
}

enum { DELETE_FILES_BATCH_MAX = 10 };

static int delete_segments(store_t *s, bool force) {
    int64_t keep_ms = s->cfg.file_reserved_hours * 3600 * 1000, now = cm_now_ms();
    int deleted = 0;
    while (deleted < DELETE_FILES_BATCH_MAX) {
        pthread_rwlock_rdlock(&s->cl.lock);
        seg_t *g = s->cl.n > 1 ? s->cl.v[0] : NULL;
        /* never the segment being written (a pre-created empty one may follow it) */
        if (g && g->start + g->size > LOAD_ACQ(&s->written)) g = NULL;
        char *path = g ? cm_strdup(g->path) : NULL;
        int64_t next_start = g ? g->start + g->size : 0;
        pthread_rwlock_unlock(&s->cl.lock);
        if (!g) break;
        /* In order only: a young file stops the pass, files are never deleted mid-log. */
        bool expired = now >= file_mtime_ms(path) + keep_ms;
        cm_free(path);
        if (!expired && !force) break;
        STORE_REL(&s->cl_min, next_start);
        segq_drop_first(&s->cl);
        deleted++;
    }
    return deleted;
}

int store_retention_run(store_t *s) {
    pthread_mutex_lock(&s->clean_mu);
    bool space_to_delete;
    bool force = check_disk(s, &space_to_delete);
    int deleted = 0;
    if (delete_hour_now(s) || space_to_delete || force) deleted = delete_segments(s, force);
    if (deleted) {
        int64_t cl_min = LOAD_ACQ(&s->cl_min);
        cm_info(s->lg, "retention: %d commit-log segment(s) deleted, log now starts at %lld",
                deleted, (long long)cl_min);
        cq_list_t l = snapshot_queues(s);
        for (size_t i = 0; i < l.n; i++) {
            cq_delete_below(l.v[i], cl_min);
            cq_correct_min(l.v[i], cl_min);
        }
        cm_free(l.v);
        if (s->cfg.index_enable) ix_delete_below(&s->ix, cl_min);
    }
    pthread_mutex_unlock(&s->clean_mu);
    return deleted;
}

void *store_service_main(void *arg) {
    store_t *s = arg;
    int64_t last_cq = cm_mono_ms(), last_clean = cm_mono_ms();
    int64_t tick = s->cfg.cq_flush_interval_ms < s->cfg.clean_interval_ms
                       ? s->cfg.cq_flush_interval_ms
                       : s->cfg.clean_interval_ms;
    for (;;) {
        pthread_mutex_lock(&s->svc_mu);
        if (!s->stopping) {
            struct timespec dl = cm_mono_deadline(tick);
            pthread_cond_timedwait(&s->svc_cv, &s->svc_mu, &dl);
        }
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->svc_mu);
        if (stop) break;
        int64_t now = cm_mono_ms();
        if (now - last_cq >= s->cfg.cq_flush_interval_ms) {
            store_flush_cqs(s);
            last_cq = now;
        }
        if (now - last_clean >= s->cfg.clean_interval_ms) {
            store_retention_run(s);
            last_clean = now;
        }
    }
    return NULL;
}
