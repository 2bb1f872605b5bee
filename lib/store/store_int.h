/* lib/store private header: mapped segment files, the commit log's segment list, consume
 * queues, index files and the store handle itself. Nothing here leaves lib/store. */
#ifndef RMQ_STORE_INT_H
#define RMQ_STORE_INT_H

#include <pthread.h>

#include "store/store.h"

#define STORE_PAGE 4096
#define STORE_BLANK_MIN 8 /* a segment always keeps room for a BLANK marker */
#define STORE_FILLER_SIZE 0x7FFFFFFF /* consume-queue filler entry: (0, 0x7FFFFFFF, 0) */

/* Relaxed-enough atomics for values one thread publishes and others read. */
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* ---- one memory-mapped file of fixed size */
typedef struct seg {
    int64_t start; /* first byte offset it holds (commit log / consume queue space) */
    int64_t size;
    int fd;
    uint8_t *map;
    char *path;
} seg_t;

/* Creates path (mode 0644) at size bytes, allocated on disk so mapped writes cannot hit a
 * full disk, and maps it. An existing file is opened and must have that size. */
rmq_err_t seg_open(const char *path, int64_t start, int64_t size, bool create, seg_t **out,
                   char *err, size_t errsz);
void seg_close(seg_t *g, bool remove_file);
/* Makes [from, to) (offsets inside the segment) durable. */
int seg_sync(seg_t *g, int64_t from, int64_t to);
/* Zeroes [from, size) so nothing after a truncation point can ever parse as data. */
void seg_zero_tail(seg_t *g, int64_t from);

/* ---- an ordered list of segments named by their 20-digit start offset */
typedef struct segq {
    char *dir;
    int64_t seg_size;
    pthread_rwlock_t lock; /* readers hold it shared while they touch mapped bytes */
    seg_t **v;
    size_t n, cap;
} segq_t;

void segq_init(segq_t *q, const char *dir, int64_t seg_size);
void segq_destroy(segq_t *q);
/* Loads every segment file of dir (a missing dir is empty). */
rmq_err_t segq_load(segq_t *q, char *err, size_t errsz);
/* The segment holding off, or NULL. Caller holds q->lock. */
seg_t *segq_find(const segq_t *q, int64_t off);
seg_t *segq_last(const segq_t *q);
/* Creates the segment starting at start (a multiple of seg_size) and appends it. */
rmq_err_t segq_add(segq_t *q, int64_t start, seg_t **out, char *err, size_t errsz);
/* Drops everything at and after off: later segments deleted, the holding one zeroed from
 * off. Single-threaded use (recovery). */
void segq_truncate(segq_t *q, int64_t off);
/* Deletes the first segment (under the write lock). */
void segq_drop_first(segq_t *q);
/* msync over [from, to) across segments; returns 0 or -1. */
int segq_sync(segq_t *q, int64_t from, int64_t to);
void seg_name(char *dst, size_t size, const char *dir, int64_t start);
/* Deletes dir/name if it is a leftover "*.tmp" file; true if it was one. */
bool store_drop_tmp(const char *dir, const char *name);

/* ---- consume queue of one topic / queue id */
typedef struct cq {
    char *topic;
    int32_t queue_id;
    segq_t files;
    int64_t max;          /* entries, = next queue offset; published with release */
    int64_t min;          /* first logical offset still readable */
    int64_t max_phys_end; /* highest offset+size dispatched (append side) */
    int64_t flushed;      /* entries made durable (service thread) */
} cq_t;

cq_t *cq_new(const char *cq_root, const char *topic, int32_t queue_id, int64_t file_size);
void cq_free(cq_t *q);
rmq_err_t cq_load(cq_t *q, const cm_logger_t *lg, char *err, size_t errsz);
/* Writes entry idx (appender only). Fills a gap before it with filler entries. */
rmq_err_t cq_put(cq_t *q, const cm_logger_t *lg, int64_t idx, int64_t phys, int32_t size,
                 int64_t tags);
/* Reads entry idx (< max); false when its file is gone. */
bool cq_get(cq_t *q, int64_t idx, int64_t *phys, int32_t *size, int64_t *tags);
/* Recovery: drops entries that reference bytes at or beyond log_end. */
void cq_truncate_phys(cq_t *q, int64_t log_end);
/* Sets min to the first entry whose record is still at or above cl_min. */
void cq_correct_min(cq_t *q, int64_t cl_min);
/* Deletes files wholly below cl_min (never the last); returns files deleted. */
int cq_delete_below(cq_t *q, int64_t cl_min);
void cq_flush(cq_t *q);
int64_t cq_entries_per_file(const cq_t *q);

/* ---- index files */
typedef struct ixfile {
    char *path;
    int fd;
    uint8_t *map;
    size_t size;
} ixfile_t;

typedef struct ixsvc {
    char *dir;
    int32_t slots, max;
    pthread_rwlock_t lock;
    ixfile_t **v;
    size_t n, cap;
} ixsvc_t;

void ix_init(ixsvc_t *ix, const char *dir, int32_t slots, int32_t max);
void ix_destroy(ixsvc_t *ix);
/* Loads the index files; after a crash (abnormal), deletes those whose end timestamp is past
 * cp_index_ts and reports the lowest begin offset among them in *rebuild_from (else -1). */
rmq_err_t ix_load(ixsvc_t *ix, bool abnormal, int64_t cp_index_ts, int64_t *rebuild_from,
                  const cm_logger_t *lg, char *err, size_t errsz);
/* Adds the keys of a record (phys, store time): its UNIQ_KEY and each KEYS token (NULL when
 * it has none); skips records below the newest file's end. */
rmq_err_t ix_put_record(ixsvc_t *ix, const cm_logger_t *lg, const char *topic, size_t topic_len,
                        const char *uniq, size_t uniq_len, const char *keys, size_t keys_len,
                        int64_t phys, int64_t store_ts);
/* Up to max commit-log offsets for key (topic#key) stored within [begin, end]. */
int ix_query(ixsvc_t *ix, const char *full_key, int64_t begin, int64_t end, int64_t *out,
             int max, int64_t *last_ts, int64_t *last_phy);
void ix_flush(ixsvc_t *ix);
int ix_delete_below(ixsvc_t *ix, int64_t cl_min);

/* ---- the store handle */
struct store {
    store_config_t cfg;
    cm_logger_t logger;
    const cm_logger_t *lg;
    char *root, *cl_dir, *cq_dir, *ix_dir, *abort_path, *cp_path;
    int lock_fd, cp_fd;
    bool abnormal;
    int64_t ram_hot_bytes; /* bytes behind the log's end treated as in memory */

    segq_t cl;
    pthread_mutex_t append_mu; /* serializes appends and dispatch */
    int64_t write_pos;         /* next byte to write (under append_mu) */
    cm_buf_t stage;            /* records being stamped before pwrite (under append_mu) */
    /* The queues appends used last, by queue id (under append_mu): a hot topic's queues are
     * found without building their key and taking cq_lock. Queues live until the close. */
    cq_t *recent_cq[16];
    int64_t written;           /* end of fully written data, published with release */
    int64_t cl_min;            /* first byte still stored, published with release */
    int64_t last_dispatch_ts;  /* store time of the newest dispatched record */
    /* SYNC_FLUSH: the warm thread writes zeros into [zeroing_from, zeroing_to) ahead of the
     * writer (empty when equal); an append that would overlap waits on zero_done. Both
     * under append_mu. */
    int64_t zeroing_from, zeroing_to;
    pthread_cond_t zero_done;

    int64_t written_ts; /* store time of a record below written, published with release */

    /* commit-log flush (group commit): rounds are numbered; an appender waits on the futex
     * word of the first round sure to cover its bytes (done[round & 1]), so the end of a
     * round wakes only the appenders it covered, and none of them needs a lock to return */
    pthread_mutex_t sync_mu; /* one round at a time (flush thread, store_flush, close) */
    pthread_mutex_t flush_mu;
    pthread_cond_t flush_req;
    int64_t flushed;    /* durable end: under flush_mu, published with release */
    int64_t flushed_ts; /* its store time, under flush_mu */
    uint64_t round;     /* the round in flight if flushing, else the next one (flush_mu) */
    int64_t round_to;   /* the end the round in flight makes durable (flush_mu) */
    bool flushing;      /* under flush_mu */
    uint32_t done[2];   /* futex words, bumped when a round of that parity ends */
    int waiters;        /* appenders waiting for a flush (atomic) */
    bool flush_failed;
    int64_t flushes; /* msync rounds that advanced the durable end (for the close log) */

    /* service thread: consume-queue/index flush, checkpoint, retention */
    pthread_mutex_t svc_mu;
    pthread_cond_t svc_cv;
    bool stopping;
    pthread_cond_t warm_cv;
    pthread_t flush_thr, svc_thr, warm_thr;
    bool threads_started;
    pthread_mutex_t clean_mu; /* one retention pass at a time */
    pthread_mutex_t roll_mu;  /* creation of the next commit-log segment */

    pthread_rwlock_t cq_lock; /* guards the map; cq_t objects live until close */
    cm_map_t *cqs;            /* "topic@queueId" -> cq_t* */
    ixsvc_t ix;

    int disk_full; /* 1 while writes are refused */
};

/* store.c: the commit-log segment starting at start, created if it is the next one. */
rmq_err_t store_segment_at(store_t *s, int64_t start, seg_t **out);

/* recover.c */
rmq_err_t store_recover(store_t *s, char *err, size_t errsz);
/* Dispatch of one written record to its consume queue and the index (append lock held). */
rmq_err_t store_dispatch(store_t *s, const proto_record_t *rec, bool recovering);
/* store_dispatch to the record's queue q when the caller has it already (NULL: looked up). */
rmq_err_t store_dispatch_to(store_t *s, const proto_record_t *rec, cq_t *q, bool recovering);
cq_t *store_find_cq(store_t *s, const char *topic, size_t topic_len, int32_t qid, bool create);

/* flush.c */
void *store_flush_main(void *arg);
void *store_service_main(void *arg);
void *store_warm_main(void *arg);
void store_flush_cqs(store_t *s);
void store_write_checkpoint(store_t *s, int64_t physic, int64_t logics, int64_t index);
rmq_err_t store_read_checkpoint(store_t *s, int64_t *physic, int64_t *logics, int64_t *index);
/* Blocks until the commit log is durable up to end or the sync timeout passes. */
rmq_err_t store_wait_flushed(store_t *s, int64_t end);
/* Waits (append_mu held) until the warm thread's zero-fill does not overlap [from, to);
 * true if it waited, which released append_mu for a while. */
bool store_wait_zeroing(store_t *s, int64_t from, int64_t to);
/* Flushes the commit log up to what is written (caller: close and store_flush). */
void store_flush_commitlog_now(store_t *s);

#endif
