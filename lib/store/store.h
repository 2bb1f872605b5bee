/* lib/store: the broker's durable storage engine — commit log, consume queues, index files,
 * checkpoint, recovery, flush and retention — in Apache RocketMQ 4.x's file layout, so a 4.x
 * broker's store directory opens here and stored records go out on the wire as they are.
 * No sockets. The store owns three threads (commit-log flush; consume-queue flush +
 * checkpoint + retention; the next segment created ahead of the writer, and with SYNC_FLUSH
 * its zeros written ahead), joined by store_close().
 *
 * Thread safety: every function may be called from any thread at any time between
 * store_open() and store_close(); appends are serialized inside, readers never block
 * appenders for longer than a segment roll-over. */
#ifndef RMQ_STORE_H
#define RMQ_STORE_H

#include "proto/proto.h"

typedef struct store store_t;

#define STORE_MAX_DELAY_LEVELS 64
#define STORE_SCHEDULE_TOPIC "SCHEDULE_TOPIC_XXXX"
#define STORE_CQ_UNIT 20 /* bytes per consume-queue entry */

/* Disk usage of the file system holding path as a fraction (0.0 .. 1.0; < 0 = unknown).
 * The default reads statvfs(); tests inject their own. */
typedef double(store_disk_usage_fn)(void *arg, const char *path);

/* Called right after a record became readable through its consume queue (under the append
 * lock: keep it short, never call back into store_append*). max_offset is the queue's new
 * max (next offset to write); the broker wakes long-polling pulls with it. */
typedef void(store_dispatch_fn)(void *arg, const char *topic, int32_t queue_id,
                                int64_t max_offset, int64_t tags_code, int64_t store_timestamp);

/* Every size and interval the store uses. store_config_defaults() gives RocketMQ's
 * defaults; store_config_from_conf() reads broker.conf keys. */
typedef struct store_config {
    char root_dir[1024];      /* storePathRootDir */
    char commitlog_dir[1024]; /* storePathCommitLog; "" = <root_dir>/commitlog */
    int64_t commitlog_file_size; /* mappedFileSizeCommitLog */
    int64_t cq_file_size;        /* mappedFileSizeConsumeQueue (rounded down to 20 B) */
    int32_t index_slots;         /* maxHashSlotNum */
    int32_t index_max;           /* maxIndexNum */
    bool index_enable;           /* messageIndexEnable */
    bool sync_flush;             /* flushDiskType == SYNC_FLUSH */
    int64_t sync_flush_timeout_ms;      /* syncFlushTimeout */
    int64_t flush_interval_ms;          /* flushIntervalCommitLog */
    int32_t flush_least_pages;          /* flushCommitLogLeastPages */
    int64_t cache_window;               /* commitLogCacheWindow: bytes; 0 = keep all cached */
    int64_t flush_thorough_interval_ms; /* flushCommitLogThoroughInterval */
    int64_t cq_flush_interval_ms;       /* flushIntervalConsumeQueue */
    int64_t file_reserved_hours;        /* fileReservedTime */
    uint32_t delete_when_hours;         /* deleteWhen as a bit mask: bit h = hour h of day */
    int32_t disk_max_used_ratio;        /* diskMaxUsedSpaceRatio, percent */
    bool check_crc_on_recover;          /* checkCRCOnRecover */
    int32_t max_transfer_count_mem;     /* maxTransferCountOnMessageInMemory */
    int32_t max_transfer_bytes_mem;     /* maxTransferBytesOnMessageInMemory */
    int32_t max_transfer_count_disk;    /* 8, as RocketMQ */
    int32_t max_transfer_bytes_disk;    /* 64 KiB, as RocketMQ */
    int32_t access_in_memory_ratio;     /* % of RAM behind the log's end counted as "hot" (40) */
    int32_t max_message_size;           /* maxMessageSize: largest record accepted */
    int64_t delay_level_ms[STORE_MAX_DELAY_LEVELS]; /* messageDelayLevel, level n at [n-1] */
    int delay_levels;
    int64_t clean_interval_ms;          /* retention pass interval (10 s) */
    store_disk_usage_fn *disk_usage;    /* NULL = statvfs */
    void *disk_usage_arg;
    store_dispatch_fn *on_dispatch;     /* NULL = none */
    void *dispatch_arg;
} store_config_t;

/* Fills cfg with RocketMQ's broker defaults (root $HOME/store, 1 GiB segments, ...). */
void store_config_defaults(store_config_t *cfg);
/* Defaults, then the broker.conf keys set in conf. RMQ_ERR_BAD_VALUE when deleteWhen or
 * messageDelayLevel does not parse or a path is too long. */
rmq_err_t store_config_from_conf(const rmq_conf_t *conf, store_config_t *cfg);

/* Opens (creating it if needed) the store at cfg->root_dir and recovers it: normal
 * recovery after a clean close, crash recovery when the abort file is present (records
 * checked by magic, size and body CRC; torn tail truncated; consume queues and index
 * rebuilt past the checkpoint). Takes an exclusive flock on <root>/lock: a second open
 * of the same store (any process) fails with RMQ_ERR_STATE. RMQ_ERR_IO on file errors,
 * RMQ_ERR_BAD_VALUE when segment files do not have the configured size. log may be NULL. */
rmq_err_t store_open(const store_config_t *cfg, const cm_logger_t *log, store_t **out,
                     char *errstr, size_t errsize);
/* Stops the threads, flushes everything, writes the checkpoint, removes the abort file,
 * releases the lock. Appends still running must have returned. NULL is ignored. */
void store_close(store_t *s);
/* True when store_open() took the crash-recovery path. */
bool store_recovered_abnormally(const store_t *s);

/* ---- append */

typedef struct store_put_result {
    rmq_err_t status;        /* same as the return value */
    int64_t phys_offset;     /* commit-log offset of the (first) record */
    int64_t queue_offset;    /* queue offset of the (first) record */
    int32_t msg_count;       /* records written */
    int64_t store_timestamp; /* ms, stamped into every record */
    int32_t wrote_bytes;     /* bytes of records written (BLANK filler not counted) */
} store_put_result_t;

/* Appends one fully encoded record (proto_record_encode output, body CRC set). The store
 * stamps QUEUEOFFSET (next offset of topic/queue id; 0 without advancing for PREPARED and
 * ROLLBACK tx types), PHYSICALOFFSET, STORETIMESTAMP and, if store_host is not NULL,
 * STOREHOSTADDRESS (its width must match the record's STOREHOST_V6 bit). Then dispatches
 * it to its consume queue and the index. With SYNC_FLUSH and wait_flush it returns once
 * the record is on disk (group commit).
 * Returns RMQ_OK; RMQ_ERR_FLUSH_DISK_TIMEOUT (stored, not yet durable after
 * syncFlushTimeout; res is filled); RMQ_ERR_DISK_FULL (disk over 90 %, nothing written);
 * RMQ_ERR_MSG_TOO_LARGE (over maxMessageSize or a segment); RMQ_ERR_MALFORMED /
 * RMQ_ERR_BAD_MAGIC / RMQ_ERR_TRUNCATED (not a record); RMQ_ERR_INVALID_ARG (store host
 * width); RMQ_ERR_IO (a segment could not be created); RMQ_ERR_SHUTDOWN (closing). */
rmq_err_t store_append(store_t *s, const void *rec, size_t len, const proto_addr_t *store_host,
                       bool wait_flush, store_put_result_t *res);
/* Appends several records back to back (one buffer), all for the same topic and queue id,
 * atomically in one segment with consecutive queue offsets. Same statuses as above. */
rmq_err_t store_append_batch(store_t *s, const void *recs, size_t len,
                             const proto_addr_t *store_host, bool wait_flush,
                             store_put_result_t *res);

/* One record of store_append_many: in rec/len/wait_flush as store_append takes them,
 * out res (res.status). */
typedef struct store_put_req {
    const void *rec;
    size_t len;
    bool wait_flush;
    store_put_result_t res;
} store_put_req_t;
/* Appends n single records (each as store_append would, any topic and queue) in order, in
 * one hold of the append lock and with one write per run of records that share a segment:
 * a broker's send thread hands over every send it has queued at once, so the commit log
 * costs one system call for them instead of one each. Each record gets its own status in
 * reqs[i].res; a refused record does not stop the others. */
void store_append_many(store_t *s, store_put_req_t *reqs, size_t n,
                       const proto_addr_t *store_host);

/* ---- reading by queue */

typedef enum store_get_status {
    STORE_FOUND,
    STORE_NO_MATCHED_MESSAGE,
    STORE_MESSAGE_WAS_REMOVING,
    STORE_OFFSET_FOUND_NULL,
    STORE_OFFSET_OVERFLOW_BADLY,
    STORE_OFFSET_OVERFLOW_ONE,
    STORE_OFFSET_TOO_SMALL,
    STORE_NO_MESSAGE_IN_QUEUE
} store_get_status_t;

/* "FOUND", "NO_MATCHED_MESSAGE", ... (remoting.md §7 names). */
const char *store_get_status_name(store_get_status_t st);

/* Tag filter on consume-queue tag codes: true keeps the entry. */
typedef bool(store_tag_filter_fn)(void *arg, int64_t tags_code);

typedef struct store_get_result {
    store_get_status_t status;
    int64_t next_begin_offset;
    int64_t min_offset, max_offset;
    int32_t msg_count;
    cm_buf_t records; /* the stored records back to back; free with cm_buf_free */
} store_get_result_t;

/* Reads up to max_count records of topic/queue_id from offset, at most max_bytes bytes
 * (0 = only the configured per-pull limits, which always apply), skipping entries the
 * filter refuses (NULL = all). Status and next offset follow RocketMQ's getMessage
 * (remoting.md §7). res must be zeroed (or hold a buffer to reuse); records are appended.
 * Returns RMQ_OK (status tells the outcome) or RMQ_ERR_INVALID_ARG. */
rmq_err_t store_get_messages(store_t *s, const char *topic, int32_t queue_id, int64_t offset,
                             int32_t max_count, int32_t max_bytes, store_tag_filter_fn *filter,
                             void *filter_arg, store_get_result_t *res);

/* ---- look-ups */

/* Queue bounds; 0 for a queue the store does not know. max = next offset to be written. */
int64_t store_min_offset(store_t *s, const char *topic, int32_t queue_id);
int64_t store_max_offset(store_t *s, const char *topic, int32_t queue_id);
/* Queue offset whose record's store time is ts, else the nearer neighbour (ties: the
 * earlier); 0 for an empty or unknown queue. */
int64_t store_offset_by_time(store_t *s, const char *topic, int32_t queue_id, int64_t ts);
/* Store time of the queue's first available record; -1 if none. */
int64_t store_earliest_time(store_t *s, const char *topic, int32_t queue_id);
/* Store time of the commit log's first available record; -1 if none. */
int64_t store_earliest_time_all(store_t *s);
/* Commit-log bounds: first byte still stored, next byte to be written. */
int64_t store_min_phys_offset(store_t *s);
int64_t store_max_phys_offset(store_t *s);
/* Appends the record at commit-log offset phys to out (VIEW_MESSAGE_BY_ID, send-back,
 * transaction end). RMQ_ERR_NOT_FOUND when no whole record starts there. */
rmq_err_t store_read_record(store_t *s, int64_t phys, cm_buf_t *out);

typedef struct store_query_result {
    int32_t count;
    cm_buf_t records;             /* matching records back to back; free with cm_buf_free */
    int64_t index_last_update_ts; /* newest index file's end timestamp */
    int64_t index_last_update_phy;
} store_query_result_t;

/* Records of topic whose KEYS (any space-separated token) or UNIQ_KEY equal key, stored in
 * [begin_ts, end_ts], newest first, at most max (capped at 64, as RocketMQ). Index hits are
 * re-checked against the record. RMQ_OK (count may be 0) or RMQ_ERR_UNSUPPORTED when
 * messageIndexEnable is false. res must be zeroed. */
rmq_err_t store_query_by_key(store_t *s, const char *topic, const char *key, int64_t begin_ts,
                             int64_t end_ts, int32_t max, store_query_result_t *res);

/* Every queue the store holds (the broker rebuilds its topic table from this). */
typedef void(store_queue_fn)(void *arg, const char *topic, int32_t queue_id, int64_t min_offset,
                             int64_t max_offset);
void store_foreach_queue(store_t *s, store_queue_fn *fn, void *arg);

/* ---- maintenance */

/* One retention pass now (the service thread runs it every clean_interval_ms): reads
 * disk usage (refusing appends over 90 %, re-allowing below), deletes expired commit-log
 * segments at deleteWhen hours or when usage is over diskMaxUsedSpaceRatio (even
 * unexpired ones at 85 % and over; never the newest), then consume-queue and index files
 * wholly below the new minimum. Returns the number of commit-log segments deleted. */
int store_retention_run(store_t *s);
/* Flushes commit log, consume queues, index and checkpoint now. */
rmq_err_t store_flush(store_t *s);

#endif
