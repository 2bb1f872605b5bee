/* Helpers shared by the store tests (test/store, test/crash): temporary directories, small
 * configurations and records built with lib/proto's encoder, as the broker builds them. */
#ifndef RMQ_STORE_TEST_H
#define RMQ_STORE_TEST_H


#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"

/* Warnings and errors only: recovery's INFO lines would drown the test output. */
static const cm_logger_t st_quiet = {NULL, NULL, RMQ_LOG_WARN};

static int st_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void st_rmrf(const char *dir) { nftw(dir, st_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh directory under $TMPDIR (or /tmp); the caller frees and removes it. */
static inline char *st_tmpdir(const char *tag) {
    const char *base = getenv("TMPDIR");
    char *path = cm_sprintf("%s/rmq-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        exit(2);
    }
    return path;
}

/* Tiny files so tests cross every boundary: 16 KiB segments, 10-entry consume-queue files,
 * index files of 7 entries over 16 slots. Background threads effectively idle. */
static inline void st_small_config(store_config_t *cfg, const char *dir) {
    store_config_defaults(cfg);
    snprintf(cfg->root_dir, sizeof cfg->root_dir, "%s", dir);
    cfg->commitlog_file_size = 16384;
    cfg->cq_file_size = 10 * STORE_CQ_UNIT;
    cfg->index_slots = 16;
    cfg->index_max = 8;
    cfg->clean_interval_ms = 3600 * 1000;
}

/* "a.b.c.d:port" or "[::1]:port" (the only v6 form tests use). */
static inline proto_addr_t st_addr(const char *text) {
    proto_addr_t a;
    memset(&a, 0, sizeof a);
    unsigned b[4], port;
    if (sscanf(text, "%u.%u.%u.%u:%u", &b[0], &b[1], &b[2], &b[3], &port) == 5) {
        for (int i = 0; i < 4; i++) a.ip[i] = (uint8_t)b[i];
        a.ip_len = 4;
    } else if (sscanf(text, "[::1]:%u", &port) == 1) {
        a.ip[15] = 1;
        a.ip_len = 16;
    } else {
        abort();
    }
    a.port = (int32_t)port;
    return a;
}

/* Encodes one record: tags/keys/uniq may be NULL; extra is appended to the properties
 * (already encoded, "name\1value" pairs joined by \2). */
static inline void st_record(cm_buf_t *out, const char *topic, int32_t qid, const char *tags,
                             const char *keys, const char *uniq, const char *extra,
                             const void *body, size_t body_len, int32_t sys_flag) {
    cm_buf_t props = CM_BUF_INIT;
    const char *names[] = {PROP_TAGS, PROP_KEYS, PROP_UNIQ_KEY};
    const char *vals[] = {tags, keys, uniq};
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        if (props.len) cm_buf_put8(&props, PROTO_PROP_SEP);
        cm_buf_printf(&props, "%s%c%s", names[i], PROTO_NAME_SEP, vals[i]);
    }
    if (extra) {
        if (props.len) cm_buf_put8(&props, PROTO_PROP_SEP);
        cm_buf_append_str(&props, extra);
    }
    proto_record_t r;
    memset(&r, 0, sizeof r);
    r.queue_id = qid;
    r.flag = 7;
    r.sys_flag = sys_flag;
    r.born_timestamp = cm_now_ms();
    r.born_host = st_addr("10.1.2.3:5555");
    r.store_host = (sys_flag & SYSFLAG_STOREHOST_V6) ? st_addr("[::1]:10911")
                                                     : st_addr("127.0.0.1:10911");
    r.body = body;
    r.body_len = (int32_t)body_len;
    r.topic = topic;
    r.topic_len = (int32_t)strlen(topic);
    r.props = (const char *)props.data;
    r.props_len = (int32_t)props.len;
    if (proto_record_encode(&r, out) != RMQ_OK) abort();
    cm_buf_free(&props);
}

/* Decodes every record of a buffer into a callback. Returns the count, -1 on a bad one. */
typedef void(st_rec_fn)(void *arg, const proto_record_t *rec);
static inline int st_each_record(const cm_buf_t *b, st_rec_fn *fn, void *arg) {
    int n = 0;
    for (size_t off = 0; off < b->len; n++) {
        proto_record_t rec;
        if (proto_record_decode(b->data + off, b->len - off, true, &rec) != RMQ_OK) return -1;
        if (fn) fn(arg, &rec);
        off += (size_t)rec.total_size;
    }
    return n;
}

static inline bool st_prop(const proto_record_t *rec, const char *name, char *dst, size_t size) {
    const char *v;
    size_t len;
    if (!proto_props_find(rec->props, (size_t)rec->props_len, name, &v, &len)) return false;
    snprintf(dst, size, "%.*s", (int)len, v);
    return true;
}

#endif
