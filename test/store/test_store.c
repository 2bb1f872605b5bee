/* lib/store: append, read, queue offsets, segment roll-over, recovery (normal, crash, torn
 * tail), batch, filters, look-ups, index queries, retention, disk guard, group commit and
 * concurrent readers. Tiny file sizes so every boundary is crossed. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_test.h"

static char *dir;
static store_config_t cfg;
static store_t *st;

static void setup(void) {
    dir = st_tmpdir("store");
    st_small_config(&cfg, dir);
    st = NULL;
}

static void teardown(void) {
    store_close(st);
    st_rmrf(dir);
    cm_free(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static void open_store(void) {
    char err[256] = "";
    rmq_err_t rc = store_open(&cfg, &st_quiet, &st, err, sizeof err);
    cr_assert_eq(rc, RMQ_OK, "store_open: %s (%s)", rmq_err_name(rc), err);
}

static void reopen(void) {
    store_close(st);
    st = NULL;
    open_store();
}

static store_put_result_t put(const char *topic, int32_t qid, const char *tags, const char *keys,
                              const char *body) {
    cm_buf_t b = CM_BUF_INIT;
    st_record(&b, topic, qid, tags, keys, NULL, NULL, body, strlen(body), 0);
    store_put_result_t r;
    proto_addr_t host = st_addr("192.168.7.9:10911");
    rmq_err_t rc = store_append(st, b.data, b.len, &host, true, &r);
    cr_assert_eq(rc, RMQ_OK, "append: %s", rmq_err_name(rc));
    cr_assert_eq(r.wrote_bytes, (int32_t)b.len);
    cm_buf_free(&b);
    return r;
}

typedef struct expect {
    const char *topic;
    int32_t qid;
    int64_t next_qoff;
    int seen;
} expect_t;

static void check_seq(void *arg, const proto_record_t *rec) {
    expect_t *e = arg;
    cr_assert_eq((size_t)rec->topic_len, strlen(e->topic));
    cr_assert(memcmp(rec->topic, e->topic, (size_t)rec->topic_len) == 0);
    cr_assert_eq(rec->queue_id, e->qid);
    cr_assert_eq(rec->queue_offset, e->next_qoff, "queue offset %lld, expected %lld",
                 (long long)rec->queue_offset, (long long)e->next_qoff);
    char want[64];
    snprintf(want, sizeof want, "%s-%d-%lld", e->topic, (int)e->qid, (long long)e->next_qoff);
    cr_assert_eq((size_t)rec->body_len, strlen(want));
    cr_assert(memcmp(rec->body, want, strlen(want)) == 0);
    e->next_qoff++;
    e->seen++;
}

/* Reads the whole queue from offset 0 and checks bodies "topic-qid-offset". */
static int read_all(const char *topic, int32_t qid, int64_t from) {
    expect_t e = {topic, qid, from, 0};
    int64_t off = from;
    for (;;) {
        store_get_result_t r = {0};
        cr_assert_eq(store_get_messages(st, topic, qid, off, 32, 0, NULL, NULL, &r), RMQ_OK);
        if (r.status == STORE_OFFSET_OVERFLOW_ONE) {
            cm_buf_free(&r.records);
            break;
        }
        cr_assert_eq(r.status, STORE_FOUND, "status %s at %lld", store_get_status_name(r.status),
                     (long long)off);
        cr_assert_eq(st_each_record(&r.records, check_seq, &e), r.msg_count);
        cr_assert_eq(r.next_begin_offset, off + r.msg_count);
        off = r.next_begin_offset;
        cm_buf_free(&r.records);
    }
    return e.seen;
}

static void fill(const char *topic, int32_t qid, int n) {
    char body[64];
    int64_t base = store_max_offset(st, topic, qid);
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "%s-%d-%lld", topic, (int)qid, (long long)(base + i));
        store_put_result_t r = put(topic, qid, i % 2 ? "A" : "B", NULL, body);
        cr_assert_eq(r.queue_offset, base + i);
    }
}

Test(store, append_read_and_statuses) {
    open_store();
    cr_assert_not(store_recovered_abnormally(st));
    fill("T1", 0, 50);
    fill("T1", 1, 30);
    fill("T2", 3, 40);
    cr_assert_eq(read_all("T1", 0, 0), 50);
    cr_assert_eq(read_all("T1", 1, 0), 30);
    cr_assert_eq(read_all("T2", 3, 0), 40);
    cr_assert_eq(store_max_offset(st, "T1", 0), 50);
    cr_assert_eq(store_min_offset(st, "T1", 0), 0);

    store_get_result_t r = {0};
    store_get_messages(st, "T1", 0, 51, 32, 0, NULL, NULL, &r);
    cr_assert_eq(r.status, STORE_OFFSET_OVERFLOW_BADLY);
    cr_assert_eq(r.next_begin_offset, 0); /* min is 0: RocketMQ moves to min */
    store_get_messages(st, "nope", 0, 5, 32, 0, NULL, NULL, &r);
    cr_assert_eq(r.status, STORE_NO_MESSAGE_IN_QUEUE);
    cr_assert_eq(r.next_begin_offset, 0);
    cr_assert_str_eq(store_get_status_name(STORE_OFFSET_FOUND_NULL), "OFFSET_FOUND_NULL");
    cm_buf_free(&r.records);
}

Test(store, stamps_store_fields) {
    open_store();
    store_put_result_t p = put("S", 2, "x", NULL, "S-2-0");
    cm_buf_t b = CM_BUF_INIT;
    cr_assert_eq(store_read_record(st, p.phys_offset, &b), RMQ_OK);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(b.data, b.len, true, &rec), RMQ_OK);
    cr_assert_eq(rec.physical_offset, p.phys_offset);
    cr_assert_eq(rec.queue_offset, 0);
    cr_assert_eq(rec.store_timestamp, p.store_timestamp);
    proto_addr_t want = st_addr("192.168.7.9:10911");
    cr_assert_eq(rec.store_host.ip_len, 4);
    cr_assert(memcmp(rec.store_host.ip, want.ip, 4) == 0);
    cr_assert_eq(rec.store_host.port, 10911);
    cr_assert_eq(rec.flag, 7);
    cr_assert_eq(store_read_record(st, p.phys_offset + 4, &b), RMQ_ERR_NOT_FOUND);
    cr_assert_eq(store_read_record(st, store_max_phys_offset(st), &b), RMQ_ERR_NOT_FOUND);
    cm_buf_free(&b);
}

/* Records never span segments: each segment ends with a BLANK marker covering its tail. */
Test(store, segments_roll_with_blank) {
    open_store();
    fill("R", 0, 600); /* ~ 100 B each: several 16 KiB segments */
    int64_t end = store_max_phys_offset(st);
    cr_assert_gt(end, 3 * cfg.commitlog_file_size);
    int64_t seg = cfg.commitlog_file_size;
    for (int64_t start = 0; start + seg <= end; start += seg) {
        /* walk records of this segment to its BLANK */
        int64_t off = start;
        cm_buf_t b = CM_BUF_INIT;
        while (store_read_record(st, off, &b) == RMQ_OK) {
            off += (int64_t)b.len;
            cm_buf_reset(&b);
        }
        cm_buf_free(&b);
        cr_assert_lt(off, start + seg);
        char *path = cm_sprintf("%s/commitlog/%020lld", dir, (long long)start);
        int fd = open(path, O_RDONLY);
        cr_assert_geq(fd, 0, "%s", path);
        uint8_t m[8];
        cr_assert_eq(pread(fd, m, 8, off - start), 8);
        close(fd);
        cm_free(path);
        cr_assert_eq((int32_t)cm_rd32(m + 4), PROTO_MAGIC_BLANK);
        cr_assert_eq(cm_rd32(m), (uint32_t)(start + seg - off));
    }
    cr_assert_eq(read_all("R", 0, 0), 600);
}

Test(store, reopen_normal_continues_offsets) {
    open_store();
    fill("N", 0, 120);
    fill("N", 1, 10);
    int64_t end = store_max_phys_offset(st);
    reopen();
    cr_assert_not(store_recovered_abnormally(st));
    cr_assert_eq(store_max_phys_offset(st), end);
    cr_assert_eq(store_max_offset(st, "N", 0), 120);
    fill("N", 0, 15);
    reopen();
    cr_assert_eq(read_all("N", 0, 0), 135);
    cr_assert_eq(read_all("N", 1, 0), 10);
}

static void count_queue(void *arg, const char *topic, int32_t qid, int64_t min, int64_t max) {
    int *n = arg;
    (*n)++;
    cr_assert(min <= max);
    cr_assert(topic[0] == 'Q' && qid >= 0 && qid < 3);
}

/* A crash that lost every consume queue and index file: recovery rebuilds them from the
 * commit log (what happens to the files the checkpoint does not cover). */
Test(store, crash_recovery_rebuilds_queues_and_index) {
    open_store();
    fill("Q", 0, 100);
    fill("Q", 2, 25);
    put("Q", 1, "T", "order-1 order-2", "Q-1-0");
    store_close(st);
    st = NULL;
    char *cmd = cm_sprintf("rm -rf '%s/consumequeue' '%s/index' && touch '%s/abort'", dir, dir,
                           dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
    open_store();
    cr_assert(store_recovered_abnormally(st));
    cr_assert_eq(read_all("Q", 0, 0), 100);
    cr_assert_eq(read_all("Q", 2, 0), 25);
    int queues = 0;
    store_foreach_queue(st, count_queue, &queues);
    cr_assert_eq(queues, 3);
    store_query_result_t q = {0};
    cr_assert_eq(store_query_by_key(st, "Q", "order-2", 0, INT64_MAX, 32, &q), RMQ_OK);
    cr_assert_eq(q.count, 1);
    cm_buf_free(&q.records);
    fill("Q", 0, 5);
    cr_assert_eq(read_all("Q", 0, 0), 105);
}

static void corrupt(const char *path, int64_t off, size_t len, uint8_t byte) {
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t buf[4096];
    memset(buf, byte, len);
    cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len);
    close(fd);
}

/* Torn writes: the last records are damaged (body bytes flipped, tail zeroed); recovery
 * drops exactly them, keeps everything before, and the log continues where they began. */
Test(store, torn_tail_dropped) {
    open_store();
    fill("W", 0, 20);
    store_put_result_t last[3];
    for (int i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "W-0-%d", 20 + i);
        last[i] = put("W", 0, NULL, NULL, body);
    }
    store_close(st);
    st = NULL;
    char *cl = cm_sprintf("%s/commitlog/%020lld", dir, (long long)0);
    /* flip a body byte of record 21 (CRC mismatch) and zero the tail of record 22 */
    corrupt(cl, last[1].phys_offset + last[1].wrote_bytes - 5, 1, 0x5A);
    corrupt(cl, last[2].phys_offset + 30, (size_t)last[2].wrote_bytes - 30, 0);
    char *abort_path = cm_sprintf("%s/abort", dir);
    close(open(abort_path, O_CREAT | O_WRONLY, 0644));
    open_store();
    cr_assert(store_recovered_abnormally(st));
    cr_assert_eq(store_max_phys_offset(st), last[1].phys_offset);
    cr_assert_eq(store_max_offset(st, "W", 0), 21);
    cr_assert_eq(read_all("W", 0, 0), 21);
    store_put_result_t again = put("W", 0, NULL, NULL, "W-0-21");
    cr_assert_eq(again.phys_offset, last[1].phys_offset);
    cr_assert_eq(again.queue_offset, 21);
    cr_assert_eq(read_all("W", 0, 0), 22);
    cm_free(cl);
    cm_free(abort_path);
}

Test(store, batch_is_atomic_and_consecutive) {
    open_store();
    fill("B", 0, 3);
    cm_buf_t b = CM_BUF_INIT;
    for (int i = 0; i < 10; i++) {
        char body[32];
        snprintf(body, sizeof body, "B-0-%d", 3 + i);
        st_record(&b, "B", 0, "t", NULL, NULL, NULL, body, strlen(body), 0);
    }
    store_put_result_t r;
    cr_assert_eq(store_append_batch(st, b.data, b.len, NULL, true, &r), RMQ_OK);
    cr_assert_eq(r.msg_count, 10);
    cr_assert_eq(r.queue_offset, 3);
    cr_assert_eq(r.wrote_bytes, (int32_t)b.len);
    cr_assert_eq(r.phys_offset / cfg.commitlog_file_size,
                 (r.phys_offset + r.wrote_bytes - 1) / cfg.commitlog_file_size);
    cr_assert_eq(read_all("B", 0, 0), 13);
    /* a batch that mixes queues is refused; so is a batch passed as one record */
    st_record(&b, "B", 1, NULL, NULL, NULL, NULL, "x", 1, 0);
    cr_assert_eq(store_append_batch(st, b.data, b.len, NULL, true, &r), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_ERR_MALFORMED);
    cr_assert_eq(store_max_offset(st, "B", 0), 13);
    cm_buf_free(&b);
}

/* n records "topic-qid-offset" round-robin over qids queues of topic, starting at each
 * queue's current end; slot bad (if < n) holds junk. Appended with store_append_many. */
static void append_many(const char *topic, int qids, int n, int bad, bool wait) {
    cm_buf_t *bufs = cm_calloc((size_t)n, sizeof *bufs);
    store_put_req_t *reqs = cm_calloc((size_t)n, sizeof *reqs);
    int64_t next[64];
    for (int q = 0; q < qids; q++) next[q] = store_max_offset(st, topic, q);
    for (int i = 0; i < n; i++) {
        int q = i % qids;
        char body[64];
        snprintf(body, sizeof body, "%s-%d-%lld", topic, q, (long long)next[q]);
        if (i == bad)
            cm_buf_append(&bufs[i], "junk-junk-junk-junk", 19);
        else
            st_record(&bufs[i], topic, q, "t", NULL, NULL, NULL, body, strlen(body), 0);
        reqs[i] = (store_put_req_t){.rec = bufs[i].data, .len = bufs[i].len, .wait_flush = wait};
        if (i != bad) next[q]++;
    }
    proto_addr_t host = st_addr("192.168.7.9:10911");
    store_append_many(st, reqs, (size_t)n, &host);
    for (int q = 0; q < qids; q++) next[q] = -1;
    for (int i = 0; i < n; i++) {
        store_put_result_t *r = &reqs[i].res;
        if (i == bad) {
            cr_assert_neq(r->status, RMQ_OK);
            continue;
        }
        cr_assert_eq(r->status, RMQ_OK, "record %d: %s", i, rmq_err_name(r->status));
        cr_assert_eq(r->msg_count, 1);
        cr_assert_eq(r->wrote_bytes, (int32_t)bufs[i].len);
        int q = i % qids;
        if (next[q] >= 0) cr_assert_eq(r->queue_offset, next[q]);
        next[q] = r->queue_offset + 1;
        /* never across a segment end */
        cr_assert_eq(r->phys_offset / cfg.commitlog_file_size,
                     (r->phys_offset + r->wrote_bytes - 1) / cfg.commitlog_file_size);
        cm_buf_t one = CM_BUF_INIT;
        cr_assert_eq(store_read_record(st, r->phys_offset, &one), RMQ_OK);
        proto_record_t rec;
        cr_assert_eq(proto_record_decode(one.data, one.len, true, &rec), RMQ_OK);
        cr_assert_eq(rec.physical_offset, r->phys_offset);
        cr_assert_eq(rec.queue_offset, r->queue_offset);
        cr_assert_eq(rec.store_timestamp, r->store_timestamp);
        cm_buf_free(&one);
    }
    for (int i = 0; i < n; i++) cm_buf_free(&bufs[i]);
    cm_free(bufs);
    cm_free(reqs);
}

/* Many records for more queues than one run tracks, over several segments, mixed with single
 * appends and a refused record: offsets per queue stay consecutive and everything survives
 * a normal reopen and a crash recovery. */
Test(store, append_many_keeps_queue_offsets_across_runs_and_segments) {
    open_store();
    enum { QUEUES = 20 };
    fill("M", 0, 5);
    append_many("M", QUEUES, 400, 123, false);
    fill("M", 3, 7);
    append_many("M", QUEUES, 300, -1, false);
    cr_assert_gt(store_max_phys_offset(st), 3 * cfg.commitlog_file_size);
    int want[QUEUES];
    for (int q = 0; q < QUEUES; q++) {
        want[q] = 700 / QUEUES + (q == 0 ? 5 : 0) + (q == 3 ? 7 : 0) - (q == 123 % QUEUES);
        cr_assert_eq(read_all("M", q, 0), want[q], "queue %d", q);
    }
    reopen();
    for (int q = 0; q < QUEUES; q++) cr_assert_eq(read_all("M", q, 0), want[q]);
    /* crash: the abort file stays, queues and index are rebuilt from the commit log */
    char *abort_path = cm_sprintf("%s/abort", dir);
    store_close(st);
    int fd = open(abort_path, O_WRONLY | O_CREAT, 0644);
    close(fd);
    st = NULL;
    open_store();
    cr_assert(store_recovered_abnormally(st));
    for (int q = 0; q < QUEUES; q++) cr_assert_eq(read_all("M", q, 0), want[q]);
    append_many("M", QUEUES, 40, -1, true);
    for (int q = 0; q < QUEUES; q++) cr_assert_eq(read_all("M", q, 0), want[q] + 2);
    cm_free(abort_path);
}

/* Interleaved queues that share a slot of the store's recent-queue cache (a topic and its
 * prefix, queue ids 16 apart) each keep their own consecutive offsets. */
Test(store, append_many_tells_apart_queues_of_one_cache_slot) {
    open_store();
    const struct {
        const char *topic;
        int32_t qid;
    } qs[] = {{"P", 0}, {"PQ", 0}, {"P", 16}, {"Q", 0}};
    enum { N = 40, NQ = sizeof qs / sizeof qs[0] };
    for (int round = 0; round < 2; round++) { /* the second finds the cache warm */
        cm_buf_t bufs[N];
        store_put_req_t reqs[N];
        for (int i = 0; i < N; i++) {
            int k = i % NQ;
            char body[64];
            snprintf(body, sizeof body, "%s-%d-%d", qs[k].topic, (int)qs[k].qid,
                     round * (N / NQ) + i / NQ);
            bufs[i] = (cm_buf_t)CM_BUF_INIT;
            st_record(&bufs[i], qs[k].topic, qs[k].qid, "t", NULL, NULL, NULL, body, strlen(body),
                      0);
            reqs[i] = (store_put_req_t){.rec = bufs[i].data, .len = bufs[i].len};
        }
        store_append_many(st, reqs, N, NULL);
        for (int i = 0; i < N; i++) {
            cr_assert_eq(reqs[i].res.status, RMQ_OK);
            cr_assert_eq(reqs[i].res.queue_offset, round * (N / NQ) + i / NQ, "record %d", i);
            cm_buf_free(&bufs[i]);
        }
    }
    for (int k = 0; k < NQ; k++)
        cr_assert_eq(read_all(qs[k].topic, qs[k].qid, 0), 2 * (N / NQ), "%s %d", qs[k].topic,
                     (int)qs[k].qid);
}

static void *many_appender(void *arg) {
    char topic[16];
    snprintf(topic, sizeof topic, "N%d", (int)(intptr_t)arg);
    for (int i = 0; i < 20; i++) append_many(topic, 3, 30, -1, i % 2 == 0);
    return NULL;
}

/* SYNC_FLUSH: concurrent store_append_many callers (which also race the zero-filling warm
 * thread) wait for the group commit and keep every record. */
Test(store, append_many_sync_flush_concurrent) {
    cfg.sync_flush = true;
    open_store();
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, many_appender, (void *)(intptr_t)i);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    reopen();
    for (int i = 0; i < 3; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "N%d", i);
        for (int q = 0; q < 3; q++) cr_assert_eq(read_all(topic, q, 0), 200);
    }
}

/* Large records: the staging buffer is written out every megabyte, offsets stay right. */
Test(store, append_many_large_records_in_several_writes) {
    cfg.commitlog_file_size = 8 << 20;
    open_store();
    enum { N = 30, BODY = 100 * 1024 };
    char *body = cm_malloc(BODY);
    memset(body, 'L', BODY);
    cm_buf_t bufs[N];
    store_put_req_t reqs[N];
    for (int i = 0; i < N; i++) {
        bufs[i] = (cm_buf_t)CM_BUF_INIT;
        st_record(&bufs[i], "L", i % 2, NULL, NULL, NULL, NULL, body, BODY, 0);
        reqs[i] = (store_put_req_t){.rec = bufs[i].data, .len = bufs[i].len};
    }
    store_append_many(st, reqs, N, NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(reqs[i].res.status, RMQ_OK);
        cr_assert_eq(reqs[i].res.queue_offset, i / 2);
        if (i)
            cr_assert_eq(reqs[i].res.phys_offset,
                         reqs[i - 1].res.phys_offset + (int64_t)reqs[i - 1].len);
        cm_buf_t one = CM_BUF_INIT;
        cr_assert_eq(store_read_record(st, reqs[i].res.phys_offset, &one), RMQ_OK);
        proto_record_t rec;
        cr_assert_eq(proto_record_decode(one.data, one.len, true, &rec), RMQ_OK);
        cr_assert_eq(rec.body_len, BODY);
        cr_assert_eq(rec.queue_offset, i / 2);
        cm_buf_free(&one);
        cm_buf_free(&bufs[i]);
    }
    cr_assert_eq(store_max_offset(st, "L", 0), N / 2);
    cr_assert_eq(store_max_offset(st, "L", 1), N / 2);
    cm_free(body);
}

/* Refusals apply to every record of the call. */
Test(store, append_many_refusals) {
    open_store();
    cm_buf_t b0 = CM_BUF_INIT, b1 = CM_BUF_INIT;
    st_record(&b0, "X", 0, NULL, NULL, NULL, NULL, "X-0-0", 5, 0);
    st_record(&b1, "X", 0, NULL, NULL, NULL, NULL, "X-0-1", 5, 0);
    store_put_req_t reqs[2] = {{.rec = b0.data, .len = b0.len}, {.rec = b1.data, .len = b1.len}};
    proto_addr_t bad = st_addr("1.2.3.4:5");
    bad.ip_len = 7;
    store_append_many(st, reqs, 2, &bad);
    cr_assert_eq(reqs[0].res.status, RMQ_ERR_INVALID_ARG);
    cr_assert_eq(reqs[1].res.status, RMQ_ERR_INVALID_ARG);
    store_append_many(st, reqs, 0, NULL);
    cr_assert_eq(store_max_offset(st, "X", 0), 0);
    store_append_many(st, reqs, 2, NULL);
    cr_assert_eq(reqs[1].res.status, RMQ_OK);
    cr_assert_eq(reqs[1].res.queue_offset, 1);
    cr_assert_eq(read_all("X", 0, 0), 2);
    cm_buf_free(&b0);
    cm_buf_free(&b1);
}

Test(store, refuses_bad_input) {
    cfg.max_message_size = 2000;
    open_store();
    store_put_result_t r;
    uint8_t junk[100] = {0};
    cr_assert_neq(store_append(st, junk, sizeof junk, NULL, true, &r), RMQ_OK);
    cm_buf_t b = CM_BUF_INIT;
    char big[3000];
    memset(big, 'x', sizeof big);
    st_record(&b, "L", 0, NULL, NULL, NULL, NULL, big, sizeof big, 0);
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_ERR_MSG_TOO_LARGE);
    cr_assert_eq(r.status, RMQ_ERR_MSG_TOO_LARGE);
    cm_buf_reset(&b);
    st_record(&b, "L", 0, NULL, NULL, NULL, NULL, "y", 1, 0);
    proto_addr_t v6 = st_addr("[::1]:10911");
    cr_assert_eq(store_append(st, b.data, b.len, &v6, true, &r), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(store_max_phys_offset(st), 0);
    cm_buf_free(&b);
}

static bool only_tag_a(void *arg, int64_t tags) {
    (void)arg;
    return tags == cm_java_hash("A", 1);
}

Test(store, tag_filter) {
    open_store();
    fill("F", 0, 20); /* odd offsets tagged A */
    store_get_result_t r = {0};
    store_get_messages(st, "F", 0, 0, 32, 0, only_tag_a, NULL, &r);
    cr_assert_eq(r.status, STORE_FOUND);
    cr_assert_eq(r.msg_count, 5); /* one consume-queue file: offsets 0..9 */
    cr_assert_eq(r.next_begin_offset, 10);
    cm_buf_reset(&r.records);
    store_get_messages(st, "F", 0, 10, 32, 0, only_tag_a, NULL, &r);
    cr_assert_eq(r.msg_count, 5);
    cr_assert_eq(r.next_begin_offset, 20);
    cm_buf_reset(&r.records);
    put("F", 0, "B", NULL, "F-0-20");
    store_get_messages(st, "F", 0, 20, 32, 0, only_tag_a, NULL, &r);
    cr_assert_eq(r.status, STORE_NO_MATCHED_MESSAGE);
    cr_assert_eq(r.next_begin_offset, 21);
    cr_assert_eq(r.records.len, 0);
    /* max count and max bytes */
    store_get_messages(st, "F", 0, 0, 3, 0, NULL, NULL, &r);
    cr_assert_eq(r.msg_count, 3);
    cr_assert_eq(r.next_begin_offset, 3);
    cm_buf_reset(&r.records);
    store_get_messages(st, "F", 0, 0, 32, 150, NULL, NULL, &r);
    cr_assert_eq(r.msg_count, 1, "%d", r.msg_count);
    cm_buf_free(&r.records);
}

static int64_t seen_tags;
static bool grab_tags(void *arg, int64_t tags) {
    (void)arg;
    seen_tags = tags;
    return true;
}

Test(store, schedule_topic_tags_is_due_time_and_tx_types) {
    open_store();
    cm_buf_t b = CM_BUF_INIT;
    char extra[32];
    snprintf(extra, sizeof extra, "%s%c3", PROP_DELAY, PROTO_NAME_SEP);
    st_record(&b, STORE_SCHEDULE_TOPIC, 2, "A", NULL, NULL, extra, "d", 1, 0);
    store_put_result_t r;
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_OK);
    store_get_result_t g = {0};
    store_get_messages(st, STORE_SCHEDULE_TOPIC, 2, 0, 1, 0, grab_tags, NULL, &g);
    cr_assert_eq(g.status, STORE_FOUND);
    cr_assert_eq(seen_tags, r.store_timestamp + 10000); /* level 3 = 10 s */
    /* PREPARED: queue offset 0, not advanced, no consume-queue entry; COMMIT: normal */
    for (int i = 0; i < 2; i++) {
        cm_buf_reset(&b);
        st_record(&b, "TX", 0, NULL, NULL, NULL, NULL, "p", 1, SYSFLAG_TX_PREPARED);
        cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_OK);
        cr_assert_eq(r.queue_offset, 0);
    }
    cr_assert_eq(store_max_offset(st, "TX", 0), 0);
    cm_buf_reset(&b);
    st_record(&b, "TX", 0, NULL, NULL, NULL, NULL, "c", 1, SYSFLAG_TX_COMMIT);
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_OK);
    cr_assert_eq(store_max_offset(st, "TX", 0), 1);
    cm_buf_free(&b);
    cm_buf_free(&g.records);
}

typedef struct ts_rec {
    int64_t ts;
} ts_rec_t;

Test(store, offset_by_time_and_earliest) {
    open_store();
    int64_t ts[30];
    for (int i = 0; i < 30; i++) {
        char body[32];
        snprintf(body, sizeof body, "O-0-%d", i);
        ts[i] = put("O", 0, NULL, NULL, body).store_timestamp;
        if (i % 5 == 4) usleep(3000); /* a few distinct store times */
    }
    cr_assert_eq(store_earliest_time(st, "O", 0), ts[0]);
    cr_assert_eq(store_earliest_time_all(st), ts[0]);
    cr_assert_eq(store_earliest_time(st, "O", 9), -1);
    for (int i = 0; i < 30; i++) {
        int64_t off = store_offset_by_time(st, "O", 0, ts[i]);
        cr_assert(off >= 0 && off < 30);
        cr_assert_eq(ts[off], ts[i], "exact hit must have the same time");
    }
    cr_assert_eq(store_offset_by_time(st, "O", 0, ts[0] - 100000), 0);
    cr_assert_eq(store_offset_by_time(st, "O", 0, ts[29] + 100000), 29);
    /* between two distinct times: the nearer neighbour, ties to the earlier */
    for (int i = 1; i < 30; i++) {
        if (ts[i] - ts[i - 1] < 2) continue;
        int64_t mid = ts[i - 1] + (ts[i] - ts[i - 1]) / 2;
        int64_t off = store_offset_by_time(st, "O", 0, mid);
        bool tie = mid - ts[i - 1] == ts[i] - mid;
        int64_t want_ts = (mid - ts[i - 1] <= ts[i] - mid) ? ts[i - 1] : ts[i];
        cr_assert_eq(ts[off], want_ts, "tie=%d", tie);
    }
    cr_assert_eq(store_offset_by_time(st, "none", 0, ts[0]), 0);
}

Test(store, query_by_key_across_index_files) {
    open_store();
    char body[32], keys[64], uniq[40];
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "K-0-%d", i);
        snprintf(keys, sizeof keys, "k%d all", i % 4);
        snprintf(uniq, sizeof uniq, "UNIQ%04d", i);
        cm_buf_t b = CM_BUF_INIT;
        st_record(&b, "K", 0, NULL, keys, uniq, NULL, body, strlen(body), 0);
        store_put_result_t r;
        cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_OK);
        cm_buf_free(&b);
    }
    struct stat sb;
    char *ixdir = cm_sprintf("%s/index", dir);
    cr_assert_eq(stat(ixdir, &sb), 0);
    cm_free(ixdir);
    store_query_result_t q = {0};
    cr_assert_eq(store_query_by_key(st, "K", "k1", 0, INT64_MAX, 64, &q), RMQ_OK);
    cr_assert_eq(q.count, 10, "%d", q.count); /* 3 keys per record, 7 per file: many files */
    cm_buf_free(&q.records);
    memset(&q, 0, sizeof q);
    store_query_by_key(st, "K", "all", 0, INT64_MAX, 5, &q);
    cr_assert_eq(q.count, 5);
    cm_buf_free(&q.records);
    memset(&q, 0, sizeof q);
    store_query_by_key(st, "K", "UNIQ0033", 0, INT64_MAX, 32, &q);
    cr_assert_eq(q.count, 1);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(q.records.data, q.records.len, true, &rec), RMQ_OK);
    cr_assert_eq(rec.queue_offset, 33);
    cr_assert_gt(q.index_last_update_phy, 0);
    cm_buf_free(&q.records);
    memset(&q, 0, sizeof q);
    store_query_by_key(st, "Other", "k1", 0, INT64_MAX, 32, &q);
    cr_assert_eq(q.count, 0);
    store_query_by_key(st, "K", "k1", 0, 1000, 32, &q); /* time range before everything */
    cr_assert_eq(q.count, 0);
    cm_buf_free(&q.records);
    reopen(); /* index survives a clean restart */
    memset(&q, 0, sizeof q);
    store_query_by_key(st, "K", "k2", 0, INT64_MAX, 64, &q);
    cr_assert_eq(q.count, 10);
    cm_buf_free(&q.records);
}

/* Dispatch reads TAGS, KEYS and UNIQ_KEY as proto_props_find does: the last non-empty value
 * of each exact name; through store_append and store_append_many alike. */
Test(store, dispatch_takes_the_last_non_empty_keys_tags_and_id) {
    open_store();
    const char *extra = "KEYS\1old\2TAGS\1A\2KEYS\1new x\2TAGS\1\2UNIQ_KEY\1\2UNIQ_KEY\1U1\2"
                        "KEYSX\1zz\2\2XTAGS\1B\2UNIQ_KEY";
    cm_buf_t b1 = CM_BUF_INIT, b2 = CM_BUF_INIT;
    st_record(&b1, "DK", 0, NULL, NULL, NULL, extra, "one", 3, 0);
    st_record(&b2, "DK", 1, NULL, NULL, NULL, extra, "two", 3, 0);
    store_put_result_t r;
    cr_assert_eq(store_append(st, b1.data, b1.len, NULL, true, &r), RMQ_OK);
    store_put_req_t req = {.rec = b2.data, .len = b2.len, .wait_flush = true};
    store_append_many(st, &req, 1, NULL);
    cr_assert_eq(req.res.status, RMQ_OK);
    const struct {
        const char *key;
        int count;
    } want[] = {{"new", 2}, {"x", 2}, {"U1", 2}, {"old", 0}, {"zz", 0}, {"", 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        store_query_result_t q = {0};
        store_query_by_key(st, "DK", want[i].key, 0, INT64_MAX, 32, &q);
        cr_assert_eq(q.count, want[i].count, "key %s: %d", want[i].key, q.count);
        cm_buf_free(&q.records);
    }
    for (int qid = 0; qid < 2; qid++) {
        store_get_result_t g = {0};
        seen_tags = -1;
        store_get_messages(st, "DK", qid, 0, 1, 0, grab_tags, NULL, &g);
        cr_assert_eq(g.status, STORE_FOUND);
        cr_assert_eq(seen_tags, cm_java_hash("A", 1), "queue %d", qid);
        cm_buf_free(&g.records);
    }
    cm_buf_free(&b1);
    cm_buf_free(&b2);
}

static double fake_usage;
static double usage_fn(void *arg, const char *path) {
    (void)arg, (void)path;
    return fake_usage;
}

Test(store, retention_deletes_old_segments_and_queue_files) {
    cfg.file_reserved_hours = 0;
    cfg.delete_when_hours = 0xFFFFFF; /* every hour */
    cfg.disk_usage = usage_fn;
    fake_usage = 0.10;
    open_store();
    fill("D", 0, 400);
    int64_t end = store_max_phys_offset(st);
    int deleted = 0, n;
    while ((n = store_retention_run(st)) > 0) deleted += n;
    cr_assert_eq(deleted, (int)(end / cfg.commitlog_file_size)); /* all but the newest */
    int64_t cl_min = store_min_phys_offset(st);
    cr_assert_eq(cl_min, end - end % cfg.commitlog_file_size);
    int64_t min = store_min_offset(st, "D", 0);
    cr_assert_gt(min, 0);
    cr_assert_lt(min, 400);
    store_get_result_t r = {0};
    store_get_messages(st, "D", 0, 0, 32, 0, NULL, NULL, &r);
    cr_assert_eq(r.status, STORE_OFFSET_TOO_SMALL);
    cr_assert_eq(r.next_begin_offset, min);
    cr_assert_eq(read_all("D", 0, min), 400 - min);
    char *first_cq = cm_sprintf("%s/consumequeue/D/0/%020d", dir, 0);
    struct stat sb;
    cr_assert_neq(stat(first_cq, &sb), 0, "the first consume-queue file is gone");
    cm_free(first_cq);
    reopen();
    cr_assert_eq(store_min_offset(st, "D", 0), min);
    cr_assert_eq(read_all("D", 0, min), 400 - min);
    cm_buf_free(&r.records);
}

/* Pages of the log commitLogCacheWindow (at least 32 MiB) behind the flushed end leave the
 * page cache; what is read back from there is still every record, intact. */
Test(store, pages_behind_the_cache_window_leave_the_cache) {
    cfg.commitlog_file_size = 64 << 20;
    cfg.cq_file_size = 20000 * STORE_CQ_UNIT;
    cfg.index_enable = false;
    cfg.flush_interval_ms = 10;
    cfg.flush_least_pages = 0;
    cfg.cache_window = 1 << 20;
    open_store();
    enum { BODY = 4000, COUNT = 14000 }; /* about 56 MiB */
    static char body[BODY];
    proto_addr_t host = st_addr("192.168.7.9:10911");
    for (int i = 0; i < COUNT; i++) {
        memset(body, 'a' + i % 26, sizeof body);
        snprintf(body, 16, "%d", i);
        cm_buf_t b = CM_BUF_INIT;
        st_record(&b, "W", 0, NULL, NULL, NULL, NULL, body, sizeof body, 0);
        store_put_result_t r;
        cr_assert_eq(store_append(st, b.data, b.len, &host, false, &r), RMQ_OK);
        cm_buf_free(&b);
    }
    char *path = cm_sprintf("%s/commitlog/%020d", dir, 0);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    enum { CHECKED = 8 << 20 };
    uint8_t *map = mmap(NULL, CHECKED, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    static unsigned char vec[CHECKED / 4096];
    size_t resident = CHECKED / 4096;
    for (int tries = 0; tries < 300 && resident > 0; tries++) {
        usleep(10000);
        cr_assert_eq(mincore(map, CHECKED, vec), 0);
        resident = 0;
        for (size_t i = 0; i < sizeof vec; i++)
            resident += vec[i] & 1;
    }
    cr_assert_eq(resident, 0, "%zu pages of the first 8 MiB still cached", resident);
    munmap(map, CHECKED);
    close(fd);
    cm_free(path);
    int64_t off = 0;
    while (off < COUNT) {
        store_get_result_t r = {0};
        cr_assert_eq(store_get_messages(st, "W", 0, off, 32, 0, NULL, NULL, &r), RMQ_OK);
        cr_assert_eq(r.status, STORE_FOUND);
        size_t pos = 0;
        for (int i = 0; i < r.msg_count; i++) {
            proto_record_t rec;
            cr_assert_eq(proto_record_decode(r.records.data + pos, r.records.len - pos, true, &rec),
                         RMQ_OK);
            cr_assert_eq(rec.body_len, BODY);
            cr_assert_eq(atoi((const char *)rec.body), (int)(off + i));
            cr_assert_eq(rec.body[BODY - 1], 'a' + (off + i) % 26);
            pos += (size_t)rec.total_size;
        }
        off += r.msg_count;
        cm_buf_free(&r.records);
    }
}

Test(store, disk_guard_refuses_writes) {
    cfg.disk_usage = usage_fn;
    fake_usage = 0.95;
    open_store();
    cm_buf_t b = CM_BUF_INIT;
    st_record(&b, "G", 0, NULL, NULL, NULL, NULL, "x", 1, 0);
    store_put_result_t r;
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_ERR_DISK_FULL);
    fake_usage = 0.50;
    store_retention_run(st);
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_OK);
    fake_usage = 0.91;
    store_retention_run(st);
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_ERR_DISK_FULL);
    cm_buf_free(&b);
}

Test(store, second_open_is_refused) {
    open_store();
    store_t *other = NULL;
    char err[256];
    cr_assert_eq(store_open(&cfg, NULL, &other, err, sizeof err), RMQ_ERR_STATE);
    cr_assert_null(other);
    cr_assert(strstr(err, "in use") != NULL, "%s", err);
}

Test(store, wrong_segment_size_is_refused) {
    open_store();
    fill("Z", 0, 3);
    store_close(st);
    st = NULL;
    cfg.commitlog_file_size *= 2;
    char err[256];
    cr_assert_eq(store_open(&cfg, &st_quiet, &st, err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert(strstr(err, "mappedFileSizeCommitLog") != NULL, "%s", err);
}

typedef struct disp {
    pthread_mutex_t mu;
    int calls;
    int64_t last_max;
} disp_t;

static void on_disp(void *arg, const char *topic, int32_t qid, int64_t max, int64_t tags,
                    int64_t ts) {
    disp_t *d = arg;
    (void)ts;
    pthread_mutex_lock(&d->mu);
    if (strcmp(topic, "L") == 0 && qid == 1) {
        d->calls++;
        d->last_max = max;
        cr_assert_eq(tags, cm_java_hash("A", 1) * (max % 2 == 0) +
                               cm_java_hash("B", 1) * (max % 2 == 1));
    }
    pthread_mutex_unlock(&d->mu);
}

Test(store, dispatch_listener) {
    disp_t d = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    cfg.on_dispatch = on_disp;
    cfg.dispatch_arg = &d;
    open_store();
    fill("L", 1, 12);
    cr_assert_eq(d.calls, 12);
    cr_assert_eq(d.last_max, 12);
}

/* ---- concurrency: SYNC_FLUSH group commit with concurrent readers */

enum { WRITERS = 8, PER_WRITER = 150 };

typedef struct wctx {
    int id;
    int ok;
    rmq_err_t first_error;
} wctx_t;

static void *writer(void *arg) {
    wctx_t *w = arg;
    char body[64];
    for (int i = 0; i < PER_WRITER; i++) {
        cm_buf_t b = CM_BUF_INIT;
        snprintf(body, sizeof body, "writer %d msg %d", w->id, i);
        st_record(&b, "C", w->id % 2, "A", NULL, NULL, NULL, body, strlen(body), 0);
        store_put_result_t r;
        rmq_err_t rc = store_append(st, b.data, b.len, NULL, true, &r);
        if (rc == RMQ_OK) w->ok++;
        else if (w->first_error == RMQ_OK) w->first_error = rc;
        cm_buf_free(&b);
    }
    return NULL;
}

static volatile int writers_done;

static void check_crc_only(void *arg, const proto_record_t *rec) {
    int64_t *next = arg;
    cr_assert_eq(rec->queue_offset, *next);
    (*next)++;
}

static void *reader(void *arg) {
    int32_t qid = (int32_t)(intptr_t)arg;
    int64_t off = 0;
    while (!__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE) || off < WRITERS / 2 * PER_WRITER) {
        store_get_result_t r = {0};
        store_get_messages(st, "C", qid, off, 32, 0, NULL, NULL, &r);
        if (r.status == STORE_FOUND) {
            int64_t next = off;
            cr_assert_eq(st_each_record(&r.records, check_crc_only, &next), r.msg_count,
                         "torn read");
            off = r.next_begin_offset;
        }
        cm_buf_free(&r.records);
    }
    return (void *)(intptr_t)off;
}

Test(store, sync_flush_group_commit_with_readers) {
    cfg.sync_flush = true;
    cfg.sync_flush_timeout_ms = 600000; /* slow runs (valgrind) must not see FLUSH_DISK_TIMEOUT */
    open_store();
    pthread_t w[WRITERS], rd[2];
    wctx_t ctx[WRITERS];
    writers_done = 0;
    for (int i = 0; i < 2; i++) pthread_create(&rd[i], NULL, reader, (void *)(intptr_t)i);
    for (int i = 0; i < WRITERS; i++) {
        ctx[i] = (wctx_t){i, 0, RMQ_OK};
        pthread_create(&w[i], NULL, writer, &ctx[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(w[i], NULL);
        cr_assert_eq(ctx[i].ok, PER_WRITER, "writer %d: %s", i, rmq_err_name(ctx[i].first_error));
    }
    __atomic_store_n(&writers_done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        void *got;
        pthread_join(rd[i], &got);
        cr_assert_eq((int64_t)(intptr_t)got, WRITERS / 2 * PER_WRITER);
    }
    cr_assert_eq(store_max_offset(st, "C", 0) + store_max_offset(st, "C", 1),
                 WRITERS * PER_WRITER);
}

/* SYNC_FLUSH makes the warm thread write zeros ahead of the writer. Appends that do not wait
 * for the flush run as fast as they can from several threads, so the writer keeps catching
 * up with the zero-fill (16 KiB segments): not one record may be overwritten, by zeros or
 * by another append, before or after a reopen. */
enum { ZF_THREADS = 4, ZF_PER_THREAD = 5000 };

static void *zero_fill_appender(void *arg) {
    int32_t qid = (int32_t)(intptr_t)arg;
    char body[64];
    cm_buf_t b = CM_BUF_INIT;
    for (int i = 0; i < ZF_PER_THREAD; i++) {
        snprintf(body, sizeof body, "Z-%d-%d", (int)qid, i);
        cm_buf_reset(&b);
        st_record(&b, "Z", qid, NULL, NULL, NULL, NULL, body, strlen(body), 0);
        store_put_result_t r;
        if (store_append(st, b.data, b.len, NULL, i == ZF_PER_THREAD - 1, &r) != RMQ_OK) break;
    }
    cm_buf_free(&b);
    return NULL;
}

Test(store, sync_flush_zero_fill_never_overwrites_records) {
    cfg.sync_flush = true;
    open_store();
    pthread_t t[ZF_THREADS];
    for (int i = 0; i < ZF_THREADS; i++)
        pthread_create(&t[i], NULL, zero_fill_appender, (void *)(intptr_t)i);
    for (int i = 0; i < ZF_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < ZF_THREADS; i++) cr_assert_eq(read_all("Z", i, 0), ZF_PER_THREAD);
    reopen();
    for (int i = 0; i < ZF_THREADS; i++) cr_assert_eq(read_all("Z", i, 0), ZF_PER_THREAD);
}

/* A SYNC_FLUSH append that is not durable within syncFlushTimeout reports
 * FLUSH_DISK_TIMEOUT; the record is stored all the same. A zero timeout expires at once. */
Test(store, sync_flush_timeout_reports_and_keeps_the_record) {
    cfg.sync_flush = true;
    cfg.sync_flush_timeout_ms = 0;
    open_store();
    enum { N = 200 };
    int timeouts = 0;
    char body[64];
    cm_buf_t b = CM_BUF_INIT;
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof body, "T-0-%d", i);
        cm_buf_reset(&b);
        st_record(&b, "T", 0, NULL, NULL, NULL, NULL, body, strlen(body), 0);
        store_put_result_t r;
        rmq_err_t rc = store_append(st, b.data, b.len, NULL, true, &r);
        cr_assert(rc == RMQ_OK || rc == RMQ_ERR_FLUSH_DISK_TIMEOUT, "%s", rmq_err_name(rc));
        cr_assert_eq(r.queue_offset, i);
        timeouts += rc == RMQ_ERR_FLUSH_DISK_TIMEOUT;
    }
    cm_buf_free(&b);
    cr_assert_gt(timeouts, 0);
    cr_assert_eq(read_all("T", 0, 0), N);
}

Test(store, config_from_conf) {
    rmq_conf_t *conf = rmq_conf_new();
    char err[128];
    cr_assert_eq(rmq_conf_set(conf, "storePathRootDir", "/x/y", err, sizeof err), RMQ_OK);
    rmq_conf_set(conf, "mappedFileSizeCommitLog", "1048576", err, sizeof err);
    rmq_conf_set(conf, "mappedFileSizeConsumeQueue", "6000", err, sizeof err);
    rmq_conf_set(conf, "flushDiskType", "SYNC_FLUSH", err, sizeof err);
    rmq_conf_set(conf, "deleteWhen", "02;14", err, sizeof err);
    rmq_conf_set(conf, "messageDelayLevel", "1s 2m", err, sizeof err);
    store_config_t c;
    cr_assert_eq(store_config_from_conf(conf, &c), RMQ_OK);
    cr_assert_str_eq(c.root_dir, "/x/y");
    cr_assert_eq(c.commitlog_file_size, 1048576);
    cr_assert_eq(c.cq_file_size, 6000);
    cr_assert(c.sync_flush);
    cr_assert_eq(c.delete_when_hours, (1u << 2) | (1u << 14));
    cr_assert_eq(c.delay_levels, 2);
    cr_assert_eq(c.delay_level_ms[1], 120000);
    cr_assert_eq(c.index_slots, 5000000);
    cr_assert_eq(c.file_reserved_hours, 72);
    rmq_conf_set(conf, "deleteWhen", "25", err, sizeof err);
    cr_assert_eq(store_config_from_conf(conf, &c), RMQ_ERR_BAD_VALUE);
    rmq_conf_destroy(conf);
}
