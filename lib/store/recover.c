/* Dispatch (commit-log record -> consume queue + index) and recovery at open: load the
 * files, find the end of valid data in the commit log (magic, size, body CRC), truncate a
 * torn tail, re-dispatch records the consume queues and index may lack, and cut consume
 * queues that point past the log's end. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "store/store_int.h"

/* "topic@qid" (size >= topic_len + 13). Written by hand: two look-ups per appended record. */
static void cq_key(char *dst, size_t size, const char *topic, size_t topic_len, int32_t qid) {
    (void)size;
    topic_len = strnlen(topic, topic_len); /* as "%.*s" did: a NUL ends the name */
    memcpy(dst, topic, topic_len);
    dst[topic_len] = '@';
    cm_i64_text(qid, dst + topic_len + 1);
}

cq_t *store_find_cq(store_t *s, const char *topic, size_t topic_len, int32_t qid, bool create) {
    char small[256];
    size_t need = topic_len + 16;
    char *key = need <= sizeof small ? small : cm_malloc(need);
    cq_key(key, need, topic, topic_len, qid);
    pthread_rwlock_rdlock(&s->cq_lock);
    cq_t *q = cm_map_get(s->cqs, key);
    pthread_rwlock_unlock(&s->cq_lock);
    if (!q && create) {
        pthread_rwlock_wrlock(&s->cq_lock);
        q = cm_map_get(s->cqs, key);
        if (!q) {
            char *name = cm_strndup(topic, topic_len);
            q = cq_new(s->cq_dir, name, qid, s->cfg.cq_file_size);
            cm_free(name);
            cm_map_put(s->cqs, key, q);
        }
        pthread_rwlock_unlock(&s->cq_lock);
    }
    if (key != small) cm_free(key);
    return q;
}

static bool topic_is(const proto_record_t *rec, const char *name) {
    size_t n = strlen(name);
    return (size_t)rec->topic_len == n && memcmp(rec->topic, name, n) == 0;
}

static int64_t parse_level(const char *v, size_t len) {
    int64_t level = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || level > 1000000) return 0;
        level = level * 10 + (v[i] - '0');
    }
    return level;
}

/* The properties a dispatch reads, each as proto_props_find finds it (the last non-empty
 * value), from one pass over the record's properties instead of one each. */
enum { KEY_TAGS, KEY_DELAY, KEY_UNIQ, KEY_KEYS, KEY_COUNT };
typedef struct rec_keys {
    const char *val[KEY_COUNT]; /* NULL: absent */
    size_t len[KEY_COUNT];
} rec_keys_t;

static void find_keys(const proto_record_t *rec, rec_keys_t *k) {
#define NAME(s)                                                                                    \
    { s, sizeof s - 1 }
    static const struct {
        const char *s;
        size_t len;
    } names[KEY_COUNT] = {NAME(PROP_TAGS), NAME(PROP_DELAY), NAME(PROP_UNIQ_KEY), NAME(PROP_KEYS)};
#undef NAME
    memset(k, 0, sizeof *k);
    size_t pos = 0;
    proto_prop_pair_t pp;
    while (proto_props_next(rec->props, (size_t)rec->props_len, &pos, &pp)) {
        if (!pp.val || pp.val_len == 0) continue; /* no value */
        for (int i = 0; i < KEY_COUNT; i++) {
            if (names[i].len != pp.name_len || memcmp(names[i].s, pp.name, pp.name_len) != 0)
                continue;
            k->val[i] = pp.val;
            k->len[i] = pp.val_len;
            break;
        }
    }
}

static int64_t tags_code(const store_t *s, const proto_record_t *rec, const rec_keys_t *k) {
    int64_t code = 0;
    if (k->val[KEY_TAGS]) code = cm_java_hash(k->val[KEY_TAGS], k->len[KEY_TAGS]);
    if (topic_is(rec, STORE_SCHEDULE_TOPIC) && k->val[KEY_DELAY]) {
        /* The schedule topic's slot holds the due time, which is what its timers scan. */
        int64_t level = parse_level(k->val[KEY_DELAY], k->len[KEY_DELAY]);
        if (level > s->cfg.delay_levels) level = s->cfg.delay_levels;
        if (level > 0) code = rec->store_timestamp + s->cfg.delay_level_ms[level - 1];
    }
    return code;
}

rmq_err_t store_dispatch_to(store_t *s, const proto_record_t *rec, cq_t *q, bool recovering) {
    int32_t tx = rec->sys_flag & SYSFLAG_TX_MASK;
    rmq_err_t rc = RMQ_OK;
    rec_keys_t k;
    find_keys(rec, &k);
    if (tx == SYSFLAG_TX_NOT || tx == SYSFLAG_TX_COMMIT) {
        if (!q) q = store_find_cq(s, rec->topic, (size_t)rec->topic_len, rec->queue_id, true);
        bool present = recovering && rec->physical_offset + rec->total_size <= q->max_phys_end;
        if (!present) {
            int64_t tags = tags_code(s, rec, &k);
            rc = cq_put(q, s->lg, rec->queue_offset, rec->physical_offset, rec->total_size, tags);
            if (rc == RMQ_OK && !recovering && s->cfg.on_dispatch)
                s->cfg.on_dispatch(s->cfg.dispatch_arg, q->topic, q->queue_id, rec->queue_offset + 1,
                                   tags, rec->store_timestamp);
        }
    }
    if (rc == RMQ_OK && s->cfg.index_enable && tx != SYSFLAG_TX_ROLLBACK)
        rc = ix_put_record(&s->ix, s->lg, rec->topic, (size_t)rec->topic_len, k.val[KEY_UNIQ],
                           k.len[KEY_UNIQ], k.val[KEY_KEYS], k.len[KEY_KEYS], rec->physical_offset,
                           rec->store_timestamp);
    STORE_REL(&s->last_dispatch_ts, rec->store_timestamp);
    return rc;
}

rmq_err_t store_dispatch(store_t *s, const proto_record_t *rec, bool recovering) {
    return store_dispatch_to(s, rec, NULL, recovering);
}

/* ---- loading consume queues */

static bool queue_id_name(const char *name, int32_t *qid) {
    if (!*name || strlen(name) > 9) return false;
    for (const char *c = name; *c; c++)
        if (*c < '0' || *c > '9') return false;
    *qid = (int32_t)atoi(name);
    return true;
}

static rmq_err_t load_topic(store_t *s, const char *topic, char *err, size_t errsz) {
    char *dir = cm_sprintf("%s/%s", s->cq_dir, topic);
    DIR *d = opendir(dir);
    cm_free(dir);
    if (!d) return RMQ_OK;
    struct dirent *e;
    rmq_err_t rc = RMQ_OK;
    while (rc == RMQ_OK && (e = readdir(d)) != NULL) {
        int32_t qid;
        if (!queue_id_name(e->d_name, &qid)) continue;
        cq_t *q = store_find_cq(s, topic, strlen(topic), qid, true);
        rc = cq_load(q, s->lg, err, errsz);
    }
    closedir(d);
    return rc;
}

static rmq_err_t load_queues(store_t *s, char *err, size_t errsz) {
    DIR *d = opendir(s->cq_dir);
    if (!d) return errno == ENOENT ? RMQ_OK : RMQ_ERR_IO;
    struct dirent *e;
    rmq_err_t rc = RMQ_OK;
    while (rc == RMQ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        rc = load_topic(s, e->d_name, err, errsz);
    }
    closedir(d);
    return rc;
}

/* ---- scanning the commit log */

/* Store time of a segment's first record, or -1 when it does not start with one. */
static int64_t first_record_ts(const seg_t *g) {
    int32_t magic = (int32_t)cm_rd32(g->map + 4);
    if (magic != PROTO_MAGIC_V1 && magic != PROTO_MAGIC_V2) return -1;
    int32_t sys_flag = (int32_t)cm_rd32(g->map + PROTO_REC_OFF_SYSFLAG);
    int64_t ts = (int64_t)cm_rd64(g->map + proto_record_store_ts_off(sys_flag));
    return ts == 0 ? -1 : ts;
}

/* Where the scan starts: RocketMQ's rules (store.md §6), widened to cover index files that
 * are being rebuilt. */
static size_t scan_start(store_t *s, int64_t cp_physic, int64_t cp_logics, int64_t rebuild_from) {
    size_t n = s->cl.n, start;
    if (!s->abnormal) {
        start = n >= 3 ? n - 3 : 0;
    } else {
        int64_t safe = (cp_physic < cp_logics ? cp_physic : cp_logics) - 3000;
        start = 0;
        for (size_t i = n; i > 0; i--) {
            int64_t ts = first_record_ts(s->cl.v[i - 1]);
            if (ts > 0 && ts <= safe) {
                start = i - 1;
                break;
            }
        }
    }
    if (rebuild_from >= 0) {
        seg_t *g = segq_find(&s->cl, rebuild_from);
        size_t at = g ? (size_t)((g->start - s->cl.v[0]->start) / s->cl.seg_size) : 0;
        if (at < start) start = at;
    }
    return start;
}

/* Walks one segment from its start; returns the offset (in the log) where valid data ends
 * and sets *next when the segment ended with a BLANK marker (the log continues). */
static int64_t scan_segment(store_t *s, seg_t *g, bool *next, int64_t *records) {
    int64_t off = 0;
    *next = false;
    madvise(g->map, (size_t)g->size, MADV_SEQUENTIAL);
    while (off + 8 <= g->size) {
        int32_t total = (int32_t)cm_rd32(g->map + off);
        int32_t magic = (int32_t)cm_rd32(g->map + off + 4);
        if (magic == PROTO_MAGIC_BLANK && total >= STORE_BLANK_MIN && off + total == g->size) {
            *next = true;
            off = g->size;
            break;
        }
        proto_record_t rec;
        rmq_err_t rc = proto_record_decode(g->map + off, (size_t)(g->size - off),
                                           s->cfg.check_crc_on_recover, &rec);
        /* A record must also sit where it says it does: anything else is an old or torn
         * write, not data of this log. */
        if (rc != RMQ_OK || rec.magic == PROTO_MAGIC_BLANK || rec.total_size <= 0 ||
            rec.physical_offset != g->start + off) {
            if (total != 0 || magic != 0)
                cm_warn(s->lg, "commit log: data ends at %lld (%s)", (long long)(g->start + off),
                        rc != RMQ_OK ? rmq_err_name(rc) : "offset mismatch");
            break;
        }
        if (store_dispatch(s, &rec, true) != RMQ_OK)
            cm_warn(s->lg, "recovery: dispatch of record at %lld failed",
                    (long long)rec.physical_offset);
        off += rec.total_size;
        (*records)++;
    }
    /* The scanned pages stay in the page cache; drop them from our RSS. */
    madvise(g->map, (size_t)off, MADV_DONTNEED);
    return g->start + off;
}

static int64_t scan_log(store_t *s, size_t start, int64_t *records) {
    int64_t end = s->cl.v[start]->start;
    for (size_t i = start; i < s->cl.n; i++) {
        bool next;
        end = scan_segment(s, s->cl.v[i], &next, records);
        if (!next) break;
    }
    return end;
}

static void drop_all_queues(store_t *s) {
    size_t it = 0;
    const char *key;
    void *v;
    while (cm_map_next(s->cqs, &it, &key, &v)) {
        cq_t *q = v;
        for (size_t i = 0; i < q->files.n; i++) seg_close(q->files.v[i], true);
        q->files.n = 0;
        q->max = q->min = q->flushed = q->max_phys_end = 0;
    }
}

rmq_err_t store_recover(store_t *s, char *err, size_t errsz) {
    int64_t cp_physic, cp_logics, cp_index, rebuild_from;
    rmq_err_t rc = segq_load(&s->cl, err, errsz);
    if (rc == RMQ_ERR_BAD_VALUE)
        cm_errstr(err, errsz, "commit log %s: segments must be mappedFileSizeCommitLog=%lld "
                  "bytes and contiguous", s->cl_dir, (long long)s->cl.seg_size);
    if (rc == RMQ_OK) rc = load_queues(s, err, errsz);
    if (rc == RMQ_OK) rc = store_read_checkpoint(s, &cp_physic, &cp_logics, &cp_index);
    if (rc == RMQ_OK && s->cfg.index_enable)
        rc = ix_load(&s->ix, s->abnormal, cp_index, &rebuild_from, s->lg, err, errsz);
    else
        rebuild_from = -1;
    if (rc != RMQ_OK) return rc;

    int64_t t0 = cm_mono_ms(), records = 0, end = 0;
    if (s->cl.n == 0) {
        drop_all_queues(s);
    } else {
        size_t start = scan_start(s, cp_physic, cp_logics, rebuild_from);
        end = scan_log(s, start, &records);
        segq_truncate(&s->cl, end);
    }
    int64_t cl_min = s->cl.n ? s->cl.v[0]->start : end;
    size_t it = 0;
    const char *key;
    void *v;
    while (cm_map_next(s->cqs, &it, &key, &v)) {
        cq_truncate_phys(v, end);
        cq_correct_min(v, cl_min);
    }
    s->write_pos = s->written = s->flushed = end;
    s->cl_min = cl_min;
    s->written_ts = s->flushed_ts = cp_physic;
    cm_info(s->lg, "store %s: %s recovery, log [%lld, %lld), %lld records checked in %lld ms",
            s->root, s->abnormal ? "crash" : "normal", (long long)cl_min, (long long)end,
            (long long)records, (long long)(cm_mono_ms() - t0));
    return RMQ_OK;
}
