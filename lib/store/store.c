/* The store handle: configuration, open/close (lock, abort file, recovery, threads), appends
 * and every read path. Appends hold append_mu from placing the bytes to dispatching them;
 * readers hold only the read side of the segment lists they touch. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* ---- configuration */

void store_config_defaults(store_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    const char *home = getenv("HOME");
    snprintf(cfg->root_dir, sizeof cfg->root_dir, "%s/store", home ? home : ".");
    cfg->commitlog_file_size = INT64_C(1073741824);
    cfg->cq_file_size = 300000 * STORE_CQ_UNIT;
    cfg->index_slots = 5000000;
    cfg->index_max = 20000000;
    cfg->index_enable = true;
    cfg->sync_flush_timeout_ms = 5000;
    cfg->flush_interval_ms = 500;
    cfg->flush_least_pages = 4;
    cfg->cache_window = INT64_C(512) << 20;
    cfg->flush_thorough_interval_ms = 10000;
    cfg->cq_flush_interval_ms = 1000;
    cfg->file_reserved_hours = 72;
    cfg->delete_when_hours = 1u << 4;
    cfg->disk_max_used_ratio = 75;
    cfg->check_crc_on_recover = true;
    cfg->max_transfer_count_mem = 32;
    cfg->max_transfer_bytes_mem = 256 * 1024;
    cfg->max_transfer_count_disk = 8;
    cfg->max_transfer_bytes_disk = 64 * 1024;
    cfg->access_in_memory_ratio = 40;
    cfg->max_message_size = 4 * 1024 * 1024 + 64 * 1024; /* body limit + headers/properties */
    cfg->delay_levels = cm_parse_delay_levels(
        "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h", cfg->delay_level_ms,
        STORE_MAX_DELAY_LEVELS);
    cfg->clean_interval_ms = 10000;
}

/* "04" or "01;04;23" -> bit mask of hours. */
static bool parse_hours(const char *text, uint32_t *mask) {
    *mask = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long h = strtol(p, &end, 10);
        if (end == p || h < 0 || h > 23) return false;
        *mask |= 1u << h;
        p = end;
        while (*p == ' ') p++;
        if (*p == ';') p++;
        else if (*p) return false;
    }
    return *mask != 0;
}

rmq_err_t store_config_from_conf(const rmq_conf_t *conf, store_config_t *cfg) {
    store_config_defaults(cfg);
    const char *root = cm_conf_str(conf, "storePathRootDir", true);
    const char *cl = cm_conf_str(conf, "storePathCommitLog", true);
    if (strlen(root) >= sizeof cfg->root_dir || strlen(cl) >= sizeof cfg->commitlog_dir)
        return RMQ_ERR_BAD_VALUE;
    strcpy(cfg->root_dir, root);
    strcpy(cfg->commitlog_dir, cl);
    cfg->commitlog_file_size = cm_conf_int(conf, "mappedFileSizeCommitLog", true);
    cfg->cq_file_size = cm_conf_int(conf, "mappedFileSizeConsumeQueue", true);
    cfg->index_slots = (int32_t)cm_conf_int(conf, "maxHashSlotNum", true);
    cfg->index_max = (int32_t)cm_conf_int(conf, "maxIndexNum", true);
    cfg->index_enable = cm_conf_bool(conf, "messageIndexEnable", true);
    cfg->sync_flush = strcmp(cm_conf_str(conf, "flushDiskType", true), "SYNC_FLUSH") == 0;
    cfg->sync_flush_timeout_ms = cm_conf_int(conf, "syncFlushTimeout", true);
    cfg->flush_interval_ms = cm_conf_int(conf, "flushIntervalCommitLog", true);
    cfg->flush_least_pages = (int32_t)cm_conf_int(conf, "flushCommitLogLeastPages", true);
    cfg->cache_window = cm_conf_int(conf, "commitLogCacheWindow", true);
    cfg->flush_thorough_interval_ms = cm_conf_int(conf, "flushCommitLogThoroughInterval", true);
    cfg->cq_flush_interval_ms = cm_conf_int(conf, "flushIntervalConsumeQueue", true);
    cfg->file_reserved_hours = cm_conf_int(conf, "fileReservedTime", true);
    cfg->disk_max_used_ratio = (int32_t)cm_conf_int(conf, "diskMaxUsedSpaceRatio", true);
    cfg->check_crc_on_recover = cm_conf_bool(conf, "checkCRCOnRecover", true);
    cfg->max_transfer_count_mem =
        (int32_t)cm_conf_int(conf, "maxTransferCountOnMessageInMemory", true);
    cfg->max_transfer_bytes_mem =
        (int32_t)cm_conf_int(conf, "maxTransferBytesOnMessageInMemory", true);
    cfg->max_message_size = (int32_t)cm_conf_int(conf, "maxMessageSize", true) + 64 * 1024;
    if (!parse_hours(cm_conf_str(conf, "deleteWhen", true), &cfg->delete_when_hours))
        return RMQ_ERR_BAD_VALUE;
    cfg->delay_levels = cm_parse_delay_levels(cm_conf_str(conf, "messageDelayLevel", true),
                                              cfg->delay_level_ms, STORE_MAX_DELAY_LEVELS);
    return cfg->delay_levels > 0 ? RMQ_OK : RMQ_ERR_BAD_VALUE;
}

/* ---- open / close */

static rmq_err_t check_config(const store_config_t *c, char *err, size_t errsz) {
    if (!c->root_dir[0]) cm_errstr(err, errsz, "storePathRootDir is empty");
    else if (c->commitlog_file_size < STORE_PAGE || c->commitlog_file_size % STORE_PAGE)
        cm_errstr(err, errsz, "mappedFileSizeCommitLog must be a multiple of %d", STORE_PAGE);
    else if (c->cq_file_size < STORE_CQ_UNIT)
        cm_errstr(err, errsz, "mappedFileSizeConsumeQueue must hold at least one entry");
    else if (c->index_slots < 1 || c->index_max < 2)
        cm_errstr(err, errsz, "maxHashSlotNum must be >= 1 and maxIndexNum >= 2");
    else if (c->delay_levels < 0 || c->delay_levels > STORE_MAX_DELAY_LEVELS)
        cm_errstr(err, errsz, "bad delay level count");
    else
        return RMQ_OK;
    return RMQ_ERR_INVALID_ARG;
}

static int64_t hot_bytes(int ratio) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return INT64_MAX;
    return (int64_t)pages * size / 100 * ratio;
}

static rmq_err_t take_lock(store_t *s, char *err, size_t errsz) {
    char *path = cm_sprintf("%s/lock", s->root);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    rmq_err_t rc = RMQ_OK;
    if (s->lock_fd < 0) {
        cm_errstr(err, errsz, "cannot open %s: %s", path, strerror(errno));
        rc = RMQ_ERR_IO;
    } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        cm_errstr(err, errsz, "store %s is in use by another broker (%s is locked)", s->root,
                  path);
        rc = RMQ_ERR_STATE;
    }
    cm_free(path);
    return rc;
}

static store_t *store_alloc(const store_config_t *cfg, const cm_logger_t *log) {
    store_t *s = cm_calloc(1, sizeof *s);
    s->cfg = *cfg;
    s->cfg.cq_file_size -= s->cfg.cq_file_size % STORE_CQ_UNIT;
    if (log) {
        s->logger = *log;
        s->lg = &s->logger;
    }
    s->lock_fd = s->cp_fd = -1;
    s->root = cm_strdup(cfg->root_dir);
    s->cl_dir = cfg->commitlog_dir[0] ? cm_strdup(cfg->commitlog_dir)
                                      : cm_sprintf("%s/commitlog", s->root);
    s->cq_dir = cm_sprintf("%s/consumequeue", s->root);
    s->ix_dir = cm_sprintf("%s/index", s->root);
    s->abort_path = cm_sprintf("%s/abort", s->root);
    s->cp_path = cm_sprintf("%s/checkpoint", s->root);
    s->ram_hot_bytes = hot_bytes(cfg->access_in_memory_ratio);
    segq_init(&s->cl, s->cl_dir, cfg->commitlog_file_size);
    ix_init(&s->ix, s->ix_dir, cfg->index_slots, cfg->index_max);
    s->cqs = cm_map_new((cm_free_fn *)cq_free);
    pthread_mutex_init(&s->append_mu, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_mutex_init(&s->flush_mu, NULL);
    pthread_mutex_init(&s->svc_mu, NULL);
    pthread_mutex_init(&s->clean_mu, NULL);
    pthread_mutex_init(&s->roll_mu, NULL);
    pthread_rwlock_init(&s->cq_lock, NULL);
    cm_cond_init_mono(&s->flush_req);
    cm_cond_init_mono(&s->svc_cv);
    cm_cond_init_mono(&s->warm_cv);
    cm_cond_init_mono(&s->zero_done);
    return s;
}

static void store_free(store_t *s) {
    cm_buf_free(&s->stage);
    cm_map_destroy(s->cqs);
    ix_destroy(&s->ix);
    segq_destroy(&s->cl);
    if (s->cp_fd >= 0) close(s->cp_fd);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->append_mu);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_mutex_destroy(&s->flush_mu);
    pthread_mutex_destroy(&s->svc_mu);
    pthread_mutex_destroy(&s->clean_mu);
    pthread_mutex_destroy(&s->roll_mu);
    pthread_rwlock_destroy(&s->cq_lock);
    pthread_cond_destroy(&s->flush_req);
    pthread_cond_destroy(&s->svc_cv);
    pthread_cond_destroy(&s->warm_cv);
    pthread_cond_destroy(&s->zero_done);
    cm_free(s->root);
    cm_free(s->cl_dir);
    cm_free(s->cq_dir);
    cm_free(s->ix_dir);
    cm_free(s->abort_path);
    cm_free(s->cp_path);
    cm_free(s);
}

static rmq_err_t open_files(store_t *s, char *err, size_t errsz) {
    rmq_err_t rc = cm_mkdirs(s->root, err, errsz);
    if (rc == RMQ_OK) rc = cm_mkdirs(s->cl_dir, err, errsz);
    if (rc == RMQ_OK) rc = take_lock(s, err, errsz);
    if (rc != RMQ_OK) return rc;
    s->abnormal = access(s->abort_path, F_OK) == 0;
    s->cp_fd = open(s->cp_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (s->cp_fd < 0 || fstat(s->cp_fd, &st) != 0 ||
        (st.st_size < 4096 && ftruncate(s->cp_fd, 4096) != 0)) {
        cm_errstr(err, errsz, "cannot open %s: %s", s->cp_path, strerror(errno));
        return RMQ_ERR_IO;
    }
    return RMQ_OK;
}

static rmq_err_t create_abort(store_t *s, char *err, size_t errsz) {
    int fd = open(s->abort_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        cm_errstr(err, errsz, "cannot create %s: %s", s->abort_path, strerror(errno));
        return RMQ_ERR_IO;
    }
    fsync(fd);
    close(fd);
    return RMQ_OK;
}

rmq_err_t store_open(const store_config_t *cfg, const cm_logger_t *log, store_t **out,
                     char *errstr, size_t errsize) {
    *out = NULL;
    rmq_err_t rc = check_config(cfg, errstr, errsize);
    if (rc != RMQ_OK) return rc;
    store_t *s = store_alloc(cfg, log);
    rc = open_files(s, errstr, errsize);
    if (rc == RMQ_OK) rc = store_recover(s, errstr, errsize);
    if (rc == RMQ_OK) rc = create_abort(s, errstr, errsize);
    if (rc != RMQ_OK) {
        store_free(s);
        return rc;
    }
    store_retention_run(s); /* reads the disk usage before the first append */
    if (pthread_create(&s->flush_thr, NULL, store_flush_main, s) != 0 ||
        pthread_create(&s->svc_thr, NULL, store_service_main, s) != 0 ||
        pthread_create(&s->warm_thr, NULL, store_warm_main, s) != 0)
        abort(); /* thread creation failing is resource exhaustion, like out of memory */
    s->threads_started = true;
    *out = s;
    return RMQ_OK;
}

bool store_recovered_abnormally(const store_t *s) { return s->abnormal; }

rmq_err_t store_flush(store_t *s) {
    store_flush_commitlog_now(s);
    store_flush_cqs(s);
    return RMQ_OK;
}

void store_close(store_t *s) {
    if (!s) return;
    pthread_mutex_lock(&s->svc_mu);
    STORE_REL(&s->stopping, true); /* read without svc_mu by the flush thread and appends */
    pthread_cond_broadcast(&s->svc_cv);
    pthread_cond_broadcast(&s->warm_cv);
    pthread_mutex_unlock(&s->svc_mu);
    pthread_mutex_lock(&s->flush_mu);
    pthread_cond_broadcast(&s->flush_req);
    pthread_mutex_unlock(&s->flush_mu);
    if (s->threads_started) {
        pthread_join(s->flush_thr, NULL);
        pthread_join(s->svc_thr, NULL);
        pthread_join(s->warm_thr, NULL);
    }
    store_flush(s);
    if (unlink(s->abort_path) != 0 && errno != ENOENT)
        cm_error(s->lg, "cannot remove %s: %s", s->abort_path, strerror(errno));
    cm_info(s->lg, "store %s closed at log offset %lld (%lld commit-log flushes)", s->root,
            (long long)s->write_pos, (long long)s->flushes);
    store_free(s);
}

/* ---- append */

typedef struct parsed {
    proto_record_t *v;
    size_t n, cap;
    proto_record_t small[4];
} parsed_t;

static void parsed_free(parsed_t *p) {
    if (p->v != p->small) cm_free(p->v);
}

static proto_record_t *parsed_add(parsed_t *p) {
    if (p->n == p->cap) {
        size_t cap = p->cap * 2;
        proto_record_t *v = cm_malloc(cap * sizeof *v);
        memcpy(v, p->v, p->n * sizeof *v);
        if (p->v != p->small) cm_free(p->v);
        p->v = v;
        p->cap = cap;
    }
    return &p->v[p->n++];
}

static bool same_queue(const proto_record_t *a, const proto_record_t *b) {
    return a->queue_id == b->queue_id && a->topic_len == b->topic_len &&
           memcmp(a->topic, b->topic, (size_t)a->topic_len) == 0;
}

static rmq_err_t parse_records(const store_t *s, const uint8_t *buf, size_t len, bool batch,
                               const proto_addr_t *host, parsed_t *p) {
    p->v = p->small;
    p->cap = sizeof p->small / sizeof p->small[0];
    p->n = 0;
    if (len == 0) return RMQ_ERR_MALFORMED;
    if (len + STORE_BLANK_MIN > (size_t)s->cfg.commitlog_file_size) return RMQ_ERR_MSG_TOO_LARGE;
    for (size_t off = 0; off < len;) {
        proto_record_t *r = parsed_add(p);
        rmq_err_t rc = proto_record_decode(buf + off, len - off, false, r);
        if (rc != RMQ_OK) return rc;
        if (r->magic == PROTO_MAGIC_BLANK || r->total_size <= 0) return RMQ_ERR_MALFORMED;
        if (r->total_size > s->cfg.max_message_size) return RMQ_ERR_MSG_TOO_LARGE;
        if (p->n > 1 && !same_queue(&p->v[0], r)) return RMQ_ERR_INVALID_ARG;
        if (host && (host->ip_len == 16) != ((r->sys_flag & SYSFLAG_STOREHOST_V6) != 0))
            return RMQ_ERR_INVALID_ARG;
        off += (size_t)r->total_size;
        if (!batch && off != len) return RMQ_ERR_MALFORMED;
    }
    return RMQ_OK;
}

/* Lock-free, so the flush thread and waking appenders never hold up the append lock.
 * written before its time: a reader of written_ts then sees that record below written. */
static void publish_written(store_t *s, int64_t ts) {
    STORE_REL(&s->written, s->write_pos);
    if (ts) STORE_REL(&s->written_ts, ts);
}

rmq_err_t store_segment_at(store_t *s, int64_t start, seg_t **out) {
    pthread_mutex_lock(&s->roll_mu);
    pthread_rwlock_rdlock(&s->cl.lock);
    seg_t *g = segq_find(&s->cl, start);
    seg_t *last = segq_last(&s->cl);
    pthread_rwlock_unlock(&s->cl.lock);
    rmq_err_t rc = RMQ_OK;
    if (!g && last && start != last->start + last->size) {
        rc = RMQ_ERR_STATE; /* only the segment right after the newest may be created */
    } else if (!g) {
        char err[256];
        rc = segq_add(&s->cl, start, &g, err, sizeof err);
        if (rc != RMQ_OK) cm_error(s->lg, "commit log: %s", err);
    }
    pthread_mutex_unlock(&s->roll_mu);
    *out = g;
    return rc;
}

/* The segment that takes need bytes at write_pos; closes the current one with a BLANK
 * marker when they do not fit (a record never spans two segments). When the bytes to write
 * lie where the warm thread is writing zeros, waits for it and looks again: the wait
 * releases append_mu, so another append may have moved write_pos meanwhile. On return the
 * bytes are free until append_mu is released (the warm thread claims under it). */
static rmq_err_t place(store_t *s, size_t need, seg_t **out) {
    for (;;) {
        seg_t *g;
        rmq_err_t rc = store_segment_at(s, s->write_pos, &g);
        if (rc != RMQ_OK) return rc;
        int64_t left = g->start + g->size - s->write_pos;
        bool fits = (int64_t)need + STORE_BLANK_MIN <= left;
        int64_t end = s->write_pos + (fits ? (int64_t)need : STORE_BLANK_MIN);
        if (store_wait_zeroing(s, s->write_pos, end)) continue;
        if (fits) {
            *out = g;
            return RMQ_OK;
        }
        uint8_t blank[STORE_BLANK_MIN];
        cm_wr32(blank, (uint32_t)left);
        cm_wr32(blank + 4, (uint32_t)PROTO_MAGIC_BLANK);
        if (pwrite(g->fd, blank, sizeof blank, s->write_pos - g->start) !=
            (ssize_t)sizeof blank) {
            cm_error(s->lg, "commit log: cannot write %s: %s", g->path, strerror(errno));
            return RMQ_ERR_IO;
        }
        s->write_pos += left;
        publish_written(s, 0);
    }
}

/* Stamps what the store owns in a record copied to dst, and mirrors it in rec. */
static void stamp(uint8_t *dst, proto_record_t *rec, int64_t qoff, int64_t phys, int64_t now,
                  const proto_addr_t *host) {
    cm_wr64(dst + PROTO_REC_OFF_QUEUEOFFSET, (uint64_t)qoff);
    cm_wr64(dst + PROTO_REC_OFF_PHYSICALOFFSET, (uint64_t)phys);
    size_t ts_off = proto_record_store_ts_off(rec->sys_flag);
    cm_wr64(dst + ts_off, (uint64_t)now);
    if (host) {
        memcpy(dst + ts_off + 8, host->ip, host->ip_len);
        cm_wr32(dst + ts_off + 8 + host->ip_len, (uint32_t)host->port);
        rec->store_host = *host;
    }
    rec->queue_offset = qoff;
    rec->physical_offset = phys;
    rec->store_timestamp = now;
}

static bool takes_queue_offset(const proto_record_t *rec) {
    int32_t tx = rec->sys_flag & SYSFLAG_TX_MASK;
    return tx == SYSFLAG_TX_NOT || tx == SYSFLAG_TX_COMMIT;
}

static rmq_err_t append_locked(store_t *s, const uint8_t *buf, size_t len, parsed_t *p,
                               const proto_addr_t *host, store_put_result_t *res) {
    seg_t *g;
    rmq_err_t rc = place(s, len, &g);
    if (rc != RMQ_OK) return rc;
    cq_t *q = NULL;
    if (takes_queue_offset(&p->v[0]))
        q = store_find_cq(s, p->v[0].topic, (size_t)p->v[0].topic_len, p->v[0].queue_id, true);
    int64_t qoff = q ? q->max : 0, phys = s->write_pos, now = cm_now_ms();
    /* Stamped in a staging copy, then written with pwrite: the commit log is only ever
     * read through its mapping, so writeback never has to write-protect our page tables
     * (TLB shoot-downs on every flush) and a failing disk is an error, not SIGBUS. */
    cm_buf_reset(&s->stage);
    cm_buf_append(&s->stage, buf, len);
    size_t off = 0;
    for (size_t i = 0; i < p->n; i++) {
        stamp(s->stage.data + off, &p->v[i], q ? qoff + (int64_t)i : 0, phys + (int64_t)off,
              now, host);
        off += (size_t)p->v[i].total_size;
    }
    if (pwrite(g->fd, s->stage.data, len, phys - g->start) != (ssize_t)len) {
        cm_error(s->lg, "commit log: cannot write %s: %s", g->path, strerror(errno));
        return RMQ_ERR_IO;
    }
    s->write_pos += (int64_t)len;
    publish_written(s, now);
    /* a batch's records share one topic and queue: q, found above */
    for (size_t i = 0; i < p->n && rc == RMQ_OK; i++)
        rc = store_dispatch_to(s, &p->v[i], q, false);
    if (rc != RMQ_OK) cm_error(s->lg, "dispatch of record at %lld failed: %s",
                               (long long)phys, rmq_err_name(rc));
    res->phys_offset = phys;
    res->queue_offset = q ? qoff : 0;
    res->msg_count = (int32_t)p->n;
    res->store_timestamp = now;
    res->wrote_bytes = (int32_t)len;
    return RMQ_OK;
}

static rmq_err_t append(store_t *s, const void *buf, size_t len, bool batch,
                        const proto_addr_t *host, bool wait_flush, store_put_result_t *res) {
    memset(res, 0, sizeof *res);
    if (host && host->ip_len != 4 && host->ip_len != 16) return res->status = RMQ_ERR_INVALID_ARG;
    if (LOAD_ACQ(&s->stopping)) return res->status = RMQ_ERR_SHUTDOWN;
    if (LOAD_ACQ(&s->disk_full)) return res->status = RMQ_ERR_DISK_FULL;
    parsed_t p;
    rmq_err_t rc = parse_records(s, buf, len, batch, host, &p);
    if (rc == RMQ_OK) {
        pthread_mutex_lock(&s->append_mu);
        rc = append_locked(s, buf, len, &p, host, res);
        pthread_mutex_unlock(&s->append_mu);
    }
    parsed_free(&p);
    if (rc == RMQ_OK && s->cfg.sync_flush && wait_flush)
        rc = store_wait_flushed(s, res->phys_offset + (int64_t)len);
    return res->status = rc;
}

rmq_err_t store_append(store_t *s, const void *rec, size_t len, const proto_addr_t *store_host,
                       bool wait_flush, store_put_result_t *res) {
    return append(s, rec, len, false, store_host, wait_flush, res);
}

rmq_err_t store_append_batch(store_t *s, const void *recs, size_t len,
                             const proto_addr_t *store_host, bool wait_flush,
                             store_put_result_t *res) {
    return append(s, recs, len, true, store_host, wait_flush, res);
}

/* ---- appending many single records */

enum { RUN_QUEUES = 16 }; /* queues one run tracks; a record for one more starts a new run */
/* Bytes one run stages: up to 128 large messages must not grow the staging buffer (kept
 * between appends) to hundreds of megabytes; one write of this much is already cheap. */
#define RUN_MAX_BYTES (1024 * 1024)

/* Records staged in s->stage since the last write: they share segment g from log offset
 * start (write_pos already counts them, written does not), and are not dispatched yet, so
 * each queue's next offset is tracked here rather than read from the queue. */
typedef struct run_rec {
    size_t i; /* index in reqs */
    cq_t *q;  /* its queue, NULL when it takes none */
} run_rec_t;

typedef struct run {
    seg_t *g;
    int64_t start, now;
    run_rec_t *recs;
    size_t count;
    struct {
        cq_t *q;
        int64_t next;
    } qs[RUN_QUEUES];
    size_t nq;
} run_t;

/* A record of len bytes at write_pos stays in the run's segment and clear of zeroing. */
static bool run_fits(const store_t *s, const run_t *run, size_t len) {
    int64_t from = s->write_pos, end = from + (int64_t)len;
    if (end + STORE_BLANK_MIN > run->g->start + run->g->size) return false;
    return !(from < s->zeroing_to && s->zeroing_from < end);
}

static bool run_knows_queue(const run_t *run, const cq_t *q) {
    for (size_t i = 0; i < run->nq; i++)
        if (run->qs[i].q == q) return true;
    return run->nq < RUN_QUEUES;
}

static int64_t run_next_queue_offset(run_t *run, cq_t *q) {
    size_t i = 0;
    while (i < run->nq && run->qs[i].q != q) i++;
    if (i == run->nq) {
        run->qs[run->nq].q = q;
        run->qs[run->nq++].next = q->max;
    }
    return run->qs[i].next++;
}

/* Writes the run with one pwrite, publishes it and dispatches its records. */
static void run_end(store_t *s, run_t *run, store_put_req_t *reqs, proto_record_t *recs) {
    if (run->count == 0) return;
    size_t len = s->stage.len;
    if (pwrite(run->g->fd, s->stage.data, len, run->start - run->g->start) != (ssize_t)len) {
        cm_error(s->lg, "commit log: cannot write %s: %s", run->g->path, strerror(errno));
        s->write_pos = run->start;
        for (size_t i = 0; i < run->count; i++) {
            store_put_result_t *res = &reqs[run->recs[i].i].res;
            memset(res, 0, sizeof *res);
            res->status = RMQ_ERR_IO;
        }
    } else {
        publish_written(s, run->now);
        for (size_t i = 0; i < run->count; i++) {
            const proto_record_t *rec = &recs[run->recs[i].i];
            if (store_dispatch_to(s, rec, run->recs[i].q, false) != RMQ_OK)
                cm_error(s->lg, "dispatch of record at %lld failed",
                         (long long)rec->physical_offset);
        }
    }
    run->g = NULL;
    run->count = run->nq = 0;
    cm_buf_reset(&s->stage);
}

/* rec's queue (created if new), append lock held. */
static cq_t *recent_cq(store_t *s, const proto_record_t *rec) {
    size_t n = sizeof s->recent_cq / sizeof s->recent_cq[0];
    cq_t **slot = &s->recent_cq[(uint32_t)rec->queue_id % n];
    cq_t *q = *slot;
    size_t len = (size_t)rec->topic_len;
    if (q && q->queue_id == rec->queue_id && strlen(q->topic) == len &&
        memcmp(q->topic, rec->topic, len) == 0)
        return q;
    q = store_find_cq(s, rec->topic, len, rec->queue_id, true);
    *slot = q;
    return q;
}

/* Stages reqs[i] (append lock held), ending the run first when it cannot take it. */
static void run_add(store_t *s, run_t *run, store_put_req_t *reqs, proto_record_t *recs,
                    size_t i, const proto_addr_t *host) {
    store_put_req_t *r = &reqs[i];
    proto_record_t *rec = &recs[i];
    cq_t *q = takes_queue_offset(rec) ? recent_cq(s, rec) : NULL;
    if (run->count && (!run_fits(s, run, r->len) || (q && !run_knows_queue(run, q)) ||
                       s->stage.len + r->len > RUN_MAX_BYTES))
        run_end(s, run, reqs, recs);
    if (run->count == 0) {
        rmq_err_t rc = place(s, r->len, &run->g);
        if (rc != RMQ_OK) {
            r->res.status = rc;
            return;
        }
        run->start = s->write_pos;
        run->now = cm_now_ms();
    }
    int64_t qoff = q ? run_next_queue_offset(run, q) : 0, phys = s->write_pos;
    size_t off = s->stage.len;
    cm_buf_append(&s->stage, r->rec, r->len);
    stamp(s->stage.data + off, rec, qoff, phys, run->now, host);
    s->write_pos += (int64_t)r->len;
    r->res.phys_offset = phys;
    r->res.queue_offset = qoff;
    r->res.msg_count = 1;
    r->res.store_timestamp = run->now;
    r->res.wrote_bytes = (int32_t)r->len;
    run->recs[run->count++] = (run_rec_t){i, q};
}

/* Decodes each request's record into recs; a refused one gets its status. */
static void parse_many(const store_t *s, store_put_req_t *reqs, size_t n, proto_record_t *recs,
                       const proto_addr_t *host) {
    for (size_t i = 0; i < n; i++) {
        memset(&reqs[i].res, 0, sizeof reqs[i].res);
        parsed_t p;
        reqs[i].res.status = parse_records(s, reqs[i].rec, reqs[i].len, false, host, &p);
        if (reqs[i].res.status == RMQ_OK) recs[i] = p.v[0];
        parsed_free(&p);
    }
}

/* SYNC_FLUSH: one wait for the furthest record whose sender waits. */
static void wait_many(store_t *s, store_put_req_t *reqs, size_t n) {
    int64_t end = -1;
    for (size_t i = 0; i < n; i++) {
        const store_put_result_t *res = &reqs[i].res;
        if (res->status == RMQ_OK && reqs[i].wait_flush && res->phys_offset + res->wrote_bytes > end)
            end = res->phys_offset + res->wrote_bytes;
    }
    rmq_err_t rc = end < 0 ? RMQ_OK : store_wait_flushed(s, end);
    for (size_t i = 0; i < n && rc != RMQ_OK; i++)
        if (reqs[i].res.status == RMQ_OK && reqs[i].wait_flush) reqs[i].res.status = rc;
}

/* Records one store_append_many usually gets: their bookkeeping stays on the stack. */
#define APPEND_STACK 16

void store_append_many(store_t *s, store_put_req_t *reqs, size_t n,
                       const proto_addr_t *store_host) {
    rmq_err_t refuse = RMQ_OK;
    if (store_host && store_host->ip_len != 4 && store_host->ip_len != 16)
        refuse = RMQ_ERR_INVALID_ARG;
    else if (LOAD_ACQ(&s->stopping))
        refuse = RMQ_ERR_SHUTDOWN;
    else if (LOAD_ACQ(&s->disk_full))
        refuse = RMQ_ERR_DISK_FULL;
    if (refuse != RMQ_OK || n == 0) {
        for (size_t i = 0; i < n; i++) {
            memset(&reqs[i].res, 0, sizeof reqs[i].res);
            reqs[i].res.status = refuse;
        }
        return;
    }
    proto_record_t stack_recs[APPEND_STACK];
    run_rec_t stack_run[APPEND_STACK];
    bool small = n <= APPEND_STACK;
    proto_record_t *recs = small ? stack_recs : cm_malloc(n * sizeof *recs);
    run_t run = {.recs = small ? stack_run : cm_malloc(n * sizeof *run.recs)};
    parse_many(s, reqs, n, recs, store_host);
    pthread_mutex_lock(&s->append_mu);
    cm_buf_reset(&s->stage);
    for (size_t i = 0; i < n; i++)
        if (reqs[i].res.status == RMQ_OK) run_add(s, &run, reqs, recs, i, store_host);
    run_end(s, &run, reqs, recs);
    pthread_mutex_unlock(&s->append_mu);
    if (!small) {
        cm_free(run.recs);
        cm_free(recs);
    }
    if (s->cfg.sync_flush) wait_many(s, reqs, n);
}

/* ---- reading the commit log */

/* Copies the size-byte record at phys into out; false when it is gone or not all there. */
static bool copy_record(store_t *s, int64_t phys, int32_t size, cm_buf_t *out) {
    bool ok = false;
    int64_t written = LOAD_ACQ(&s->written);
    pthread_rwlock_rdlock(&s->cl.lock);
    seg_t *g = phys >= LOAD_ACQ(&s->cl_min) ? segq_find(&s->cl, phys) : NULL;
    if (g && size >= 8 && phys + size <= written && phys + size <= g->start + g->size) {
        const uint8_t *p = g->map + (phys - g->start);
        if ((int32_t)cm_rd32(p) == size) {
            cm_buf_append(out, p, (size_t)size);
            ok = true;
        }
    }
    pthread_rwlock_unlock(&s->cl.lock);
    return ok;
}

rmq_err_t store_read_record(store_t *s, int64_t phys, cm_buf_t *out) {
    int64_t written = LOAD_ACQ(&s->written);
    int32_t size = 0;
    pthread_rwlock_rdlock(&s->cl.lock);
    seg_t *g = phys >= LOAD_ACQ(&s->cl_min) ? segq_find(&s->cl, phys) : NULL;
    if (g && phys + 8 <= written) {
        const uint8_t *p = g->map + (phys - g->start);
        int32_t magic = (int32_t)cm_rd32(p + 4);
        if (magic == PROTO_MAGIC_V1 || magic == PROTO_MAGIC_V2) size = (int32_t)cm_rd32(p);
    }
    pthread_rwlock_unlock(&s->cl.lock);
    if (size <= 0 || !copy_record(s, phys, size, out)) return RMQ_ERR_NOT_FOUND;
    return RMQ_OK;
}

/* STORETIMESTAMP of the record at phys, -1 if it is gone. */
static int64_t record_store_ts(store_t *s, int64_t phys, int32_t size) {
    int64_t ts = -1, written = LOAD_ACQ(&s->written);
    pthread_rwlock_rdlock(&s->cl.lock);
    seg_t *g = phys >= LOAD_ACQ(&s->cl_min) ? segq_find(&s->cl, phys) : NULL;
    if (g && phys + size <= written && size > 80) {
        const uint8_t *p = g->map + (phys - g->start);
        size_t off = proto_record_store_ts_off((int32_t)cm_rd32(p + PROTO_REC_OFF_SYSFLAG));
        if ((int64_t)off + 8 <= size) ts = (int64_t)cm_rd64(p + off);
    }
    pthread_rwlock_unlock(&s->cl.lock);
    return ts;
}

/* ---- reading by queue */

const char *store_get_status_name(store_get_status_t st) {
    static const char *const names[] = {
        "FOUND",           "NO_MATCHED_MESSAGE",    "MESSAGE_WAS_REMOVING",
        "OFFSET_FOUND_NULL", "OFFSET_OVERFLOW_BADLY", "OFFSET_OVERFLOW_ONE",
        "OFFSET_TOO_SMALL",  "NO_MESSAGE_IN_QUEUE"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "UNKNOWN";
}

typedef struct pull {
    int32_t max_count, max_bytes;
    int32_t count;
    int64_t bytes;
} pull_t;

/* RocketMQ's isTheBatchFull: limits per pull, tighter for data that is no longer hot. */
static bool batch_full(const store_t *s, const pull_t *p, int32_t size, bool in_disk) {
    if (p->count == 0 || p->bytes == 0) return false;
    if (p->count >= p->max_count) return true;
    if (p->max_bytes > 0 && p->bytes + size > p->max_bytes) return true;
    int32_t max_n = in_disk ? s->cfg.max_transfer_count_disk : s->cfg.max_transfer_count_mem;
    int64_t max_b = in_disk ? s->cfg.max_transfer_bytes_disk : s->cfg.max_transfer_bytes_mem;
    return p->bytes + size > max_b || p->count > max_n - 1;
}

static void read_queue(store_t *s, cq_t *q, int64_t offset, int64_t max, pull_t *p,
                       store_tag_filter_fn *filter, void *arg, store_get_result_t *res) {
    int64_t per_file = cq_entries_per_file(q);
    int64_t file_end = offset - offset % per_file + per_file;
    int64_t end = max < file_end ? max : file_end;
    int64_t scan_max = (p->max_count * STORE_CQ_UNIT > 16000 ? p->max_count * STORE_CQ_UNIT
                                                             : 16000) / STORE_CQ_UNIT;
    int64_t written = LOAD_ACQ(&s->written), seg_size = s->cfg.commitlog_file_size;
    int64_t skip_below = INT64_MIN, i = offset;
    res->status = STORE_NO_MATCHED_MESSAGE;
    for (; i < end && i - offset < scan_max; i++) {
        int64_t phys, tags;
        int32_t size;
        if (!cq_get(q, i, &phys, &size, &tags)) break;
        if (skip_below != INT64_MIN && phys < skip_below) continue;
        if (batch_full(s, p, size, written - phys > s->ram_hot_bytes)) break;
        if (size == STORE_FILLER_SIZE) continue;
        if (filter && !filter(arg, tags)) continue;
        if (!copy_record(s, phys, size, &res->records)) {
            if (p->count == 0) res->status = STORE_MESSAGE_WAS_REMOVING;
            skip_below = phys + seg_size - phys % seg_size; /* the rest of that segment */
            continue;
        }
        p->count++;
        p->bytes += size;
        res->status = STORE_FOUND;
        skip_below = INT64_MIN;
    }
    res->next_begin_offset = i;
}

rmq_err_t store_get_messages(store_t *s, const char *topic, int32_t queue_id, int64_t offset,
                             int32_t max_count, int32_t max_bytes, store_tag_filter_fn *filter,
                             void *filter_arg, store_get_result_t *res) {
    if (!topic || max_count <= 0) return RMQ_ERR_INVALID_ARG;
    res->msg_count = 0;
    res->min_offset = res->max_offset = res->next_begin_offset = 0;
    cq_t *q = store_find_cq(s, topic, strlen(topic), queue_id, false);
    int64_t min = q ? LOAD_ACQ(&q->min) : 0, max = q ? LOAD_ACQ(&q->max) : 0;
    res->min_offset = min;
    res->max_offset = max;
    if (max == 0) {
        res->status = STORE_NO_MESSAGE_IN_QUEUE;
    } else if (offset < min) {
        res->status = STORE_OFFSET_TOO_SMALL;
        res->next_begin_offset = min;
    } else if (offset == max) {
        res->status = STORE_OFFSET_OVERFLOW_ONE;
        res->next_begin_offset = offset;
    } else if (offset > max) {
        res->status = STORE_OFFSET_OVERFLOW_BADLY;
        res->next_begin_offset = min == 0 ? min : max;
    } else {
        int64_t phys, tags;
        int32_t size;
        if (!cq_get(q, offset, &phys, &size, &tags)) {
            int64_t per_file = cq_entries_per_file(q);
            res->status = STORE_OFFSET_FOUND_NULL;
            res->next_begin_offset = offset - offset % per_file + per_file;
        } else {
            pull_t p = {max_count, max_bytes, 0, 0};
            read_queue(s, q, offset, max, &p, filter, filter_arg, res);
            res->msg_count = p.count;
        }
    }
    return RMQ_OK;
}

/* ---- look-ups */

int64_t store_min_offset(store_t *s, const char *topic, int32_t queue_id) {
    cq_t *q = store_find_cq(s, topic, strlen(topic), queue_id, false);
    return q ? LOAD_ACQ(&q->min) : 0;
}

int64_t store_max_offset(store_t *s, const char *topic, int32_t queue_id) {
    cq_t *q = store_find_cq(s, topic, strlen(topic), queue_id, false);
    return q ? LOAD_ACQ(&q->max) : 0;
}

int64_t store_min_phys_offset(store_t *s) { return LOAD_ACQ(&s->cl_min); }
int64_t store_max_phys_offset(store_t *s) { return LOAD_ACQ(&s->written); }

/* Binary search by store time (RocketMQ's getOffsetInQueueByTime over the whole queue). */
int64_t store_offset_by_time(store_t *s, const char *topic, int32_t queue_id, int64_t ts) {
    cq_t *q = store_find_cq(s, topic, strlen(topic), queue_id, false);
    if (!q) return 0;
    int64_t lo = LOAD_ACQ(&q->min), hi = LOAD_ACQ(&q->max) - 1, cl_min = LOAD_ACQ(&s->cl_min);
    int64_t left = -1, right = -1, left_ts = -1, right_ts = -1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2, phys, tags;
        int32_t size;
        if (!cq_get(q, mid, &phys, &size, &tags)) return 0;
        if (size == STORE_FILLER_SIZE || phys < cl_min) {
            lo = mid + 1;
            left = mid;
            continue;
        }
        int64_t t = record_store_ts(s, phys, size);
        if (t < 0) return 0;
        if (t == ts) return mid;
        if (t > ts) {
            hi = mid - 1;
            right = mid;
            right_ts = t;
        } else {
            lo = mid + 1;
            left = mid;
            left_ts = t;
        }
    }
    if (left_ts == -1) return right >= 0 ? right : (left >= 0 ? left + 1 : 0);
    if (right_ts == -1) return left;
    return ts - left_ts > right_ts - ts ? right : left;
}

int64_t store_earliest_time(store_t *s, const char *topic, int32_t queue_id) {
    cq_t *q = store_find_cq(s, topic, strlen(topic), queue_id, false);
    if (!q) return -1;
    int64_t min = LOAD_ACQ(&q->min), phys, tags;
    int32_t size;
    if (min >= LOAD_ACQ(&q->max) || !cq_get(q, min, &phys, &size, &tags)) return -1;
    return record_store_ts(s, phys, size);
}

int64_t store_earliest_time_all(store_t *s) {
    int64_t phys = LOAD_ACQ(&s->cl_min);
    cm_buf_t b = CM_BUF_INIT;
    int64_t ts = -1;
    if (store_read_record(s, phys, &b) == RMQ_OK) ts = record_store_ts(s, phys, (int32_t)b.len);
    cm_buf_free(&b);
    return ts;
}

static bool has_token(const char *list, size_t len, const char *key, size_t key_len) {
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && list[j] != ' ') j++;
        if (j - i == key_len && memcmp(list + i, key, key_len) == 0) return true;
        i = j + 1;
    }
    return false;
}

static bool record_matches(const uint8_t *p, size_t len, const char *topic, const char *key) {
    proto_record_t rec;
    if (proto_record_decode(p, len, false, &rec) != RMQ_OK) return false;
    size_t tl = strlen(topic), kl = strlen(key);
    if ((size_t)rec.topic_len != tl || memcmp(rec.topic, topic, tl) != 0) return false;
    const char *v;
    size_t vl;
    if (proto_props_find(rec.props, (size_t)rec.props_len, PROP_UNIQ_KEY, &v, &vl) && vl == kl &&
        memcmp(v, key, kl) == 0)
        return true;
    return proto_props_find(rec.props, (size_t)rec.props_len, PROP_KEYS, &v, &vl) &&
           has_token(v, vl, key, kl);
}

enum { QUERY_MAX = 64 };

rmq_err_t store_query_by_key(store_t *s, const char *topic, const char *key, int64_t begin_ts,
                             int64_t end_ts, int32_t max, store_query_result_t *res) {
    res->count = 0;
    if (!s->cfg.index_enable) return RMQ_ERR_UNSUPPORTED;
    if (max > QUERY_MAX) max = QUERY_MAX;
    int64_t offs[QUERY_MAX];
    char *full = cm_sprintf("%s#%s", topic, key);
    int n = max > 0 ? ix_query(&s->ix, full, begin_ts, end_ts, offs, max,
                               &res->index_last_update_ts, &res->index_last_update_phy)
                    : 0;
    cm_free(full);
    cm_buf_t one = CM_BUF_INIT;
    for (int i = 0; i < n; i++) {
        bool dup = false;
        for (int j = 0; j < i && !dup; j++) dup = offs[j] == offs[i];
        cm_buf_reset(&one);
        if (dup || store_read_record(s, offs[i], &one) != RMQ_OK) continue;
        if (!record_matches(one.data, one.len, topic, key)) continue;
        cm_buf_append(&res->records, one.data, one.len);
        res->count++;
    }
    cm_buf_free(&one);
    return RMQ_OK;
}

void store_foreach_queue(store_t *s, store_queue_fn *fn, void *arg) {
    pthread_rwlock_rdlock(&s->cq_lock);
    size_t count = cm_map_count(s->cqs), n = 0, it = 0;
    cq_t **v = cm_malloc((count ? count : 1) * sizeof *v);
    const char *key;
    void *val;
    while (cm_map_next(s->cqs, &it, &key, &val)) v[n++] = val;
    pthread_rwlock_unlock(&s->cq_lock);
    /* Called without the table lock: fn may append (and so create queues). */
    for (size_t i = 0; i < n; i++)
        fn(arg, v[i]->topic, v[i]->queue_id, LOAD_ACQ(&v[i]->min), LOAD_ACQ(&v[i]->max));
    cm_free(v);
}
