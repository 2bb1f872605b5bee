/* Apache RocketMQ 4.9.8's store (test/data/rocketmq-4.9.8/store.tar.gz, left by a crash)
 * opened by lib/store: crash recovery, every message of every queue read back as the Java
 * broker wrote it, consume queues identical to Java's (kept, and rebuilt from the commit log),
 * look-up by key through the index. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "store_test.h"

static char *dir;
static store_config_t cfg;
static store_t *st;
static uint8_t *raw; /* the Java commit log's first segment, read before we open it */
static size_t raw_len;

enum { JAVA_RECORDS = 514, JAVA_LOG_END = 113619 };

static uint8_t *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", path);
    struct stat sb;
    fstat(fd, &sb);
    uint8_t *p = cm_malloc((size_t)sb.st_size + 1);
    cr_assert_eq(pread(fd, p, (size_t)sb.st_size, 0), sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return p;
}

static void setup(void) {
    const char *data = getenv("TEST_DATA");
    cr_assert_not_null(data, "TEST_DATA must point at test/data");
    dir = st_tmpdir("javastore");
    char *cmd = cm_sprintf("tar xzf '%s/rocketmq-4.9.8/store.tar.gz' -C '%s'", data, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    cm_free(cmd);
    store_config_defaults(&cfg);
    snprintf(cfg.root_dir, sizeof cfg.root_dir, "%s/store", dir);
    /* the sizes the capture was made with (its README) */
    cfg.commitlog_file_size = 1048576;
    cfg.cq_file_size = 6000;
    cfg.index_slots = 1000;
    cfg.index_max = 4000;
    cfg.clean_interval_ms = 3600 * 1000;
    char *path = cm_sprintf("%s/commitlog/00000000000000000000", cfg.root_dir);
    raw = slurp(path, &raw_len);
    cm_free(path);
    st = NULL;
}

static void teardown(void) {
    store_close(st);
    st_rmrf(dir);
    cm_free(dir);
    cm_free(raw);
}

TestSuite(javastore, .init = setup, .fini = teardown);

static void open_store(void) {
    char err[256] = "";
    rmq_err_t rc = store_open(&cfg, &st_quiet, &st, err, sizeof err);
    cr_assert_eq(rc, RMQ_OK, "store_open: %s (%s)", rmq_err_name(rc), err);
}

/* ---- the Java consume queues, as files */

typedef struct jqueue {
    char topic[256];
    int32_t qid;
    uint8_t *data; /* valid entries only */
    size_t count;
} jqueue_t;

static jqueue_t jq[64];
static int jq_n;

static size_t valid_entries(const uint8_t *p, size_t len) {
    size_t n = 0;
    while ((n + 1) * STORE_CQ_UNIT <= len && (int64_t)cm_rd64(p + n * 20) >= 0 &&
           (int32_t)cm_rd32(p + n * 20 + 8) > 0)
        n++;
    return n;
}

/* Every consume queue of the capture fits one 6000-byte file. */
static void load_java_queues(void) {
    char *cmd = cm_sprintf("cd '%s/consumequeue' && ls -d */* > '%s/queues.txt'", cfg.root_dir,
                           dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
    char *list = cm_sprintf("%s/queues.txt", dir);
    FILE *f = fopen(list, "r");
    char line[256];
    jq_n = 0;
    while (fgets(line, sizeof line, f)) {
        char *slash = strrchr(line, '/');
        *slash = '\0';
        jqueue_t *q = &jq[jq_n++];
        snprintf(q->topic, sizeof q->topic, "%s", line);
        q->qid = atoi(slash + 1);
        char *path = cm_sprintf("%s/consumequeue/%s/%d/00000000000000000000", cfg.root_dir,
                                q->topic, (int)q->qid);
        size_t len;
        q->data = slurp(path, &len);
        q->count = valid_entries(q->data, len);
        cm_free(path);
    }
    fclose(f);
    cm_free(list);
    cr_assert_eq(jq_n, 23);
}

static void free_java_queues(void) {
    for (int i = 0; i < jq_n; i++) cm_free(jq[i].data);
}

static void bounds_equal_java(void) {
    size_t total = 0;
    for (int i = 0; i < jq_n; i++) {
        jqueue_t *q = &jq[i];
        cr_assert_eq(store_max_offset(st, q->topic, q->qid), (int64_t)q->count, "%s/%d",
                     q->topic, (int)q->qid);
        cr_assert_eq(store_min_offset(st, q->topic, q->qid), 0);
        total += q->count;
    }
    cr_assert_eq(total, JAVA_RECORDS);
}

/* Our consume-queue files hold exactly Java's entries; `grown` (if not NULL) may have more
 * entries after them (we appended to it). */
static void files_equal_java(const char *grown) {
    for (int i = 0; i < jq_n; i++) {
        jqueue_t *q = &jq[i];
        char *path = cm_sprintf("%s/consumequeue/%s/%d/00000000000000000000", cfg.root_dir,
                                q->topic, (int)q->qid);
        size_t len;
        uint8_t *ours = slurp(path, &len);
        size_t n = valid_entries(ours, len);
        bool may_grow = grown && strcmp(grown, path + strlen(cfg.root_dir)) == 0;
        cr_assert(may_grow ? n > q->count : n == q->count, "%s: %zu entries, Java %zu", path, n,
                  q->count);
        for (size_t e = 0; e < q->count; e++)
            cr_assert(memcmp(ours + e * 20, q->data + e * 20, 20) == 0,
                      "%s entry %zu: ours (%lld,%d,%lld) java (%lld,%d,%lld)", path, e,
                      (long long)cm_rd64(ours + e * 20), (int)cm_rd32(ours + e * 20 + 8),
                      (long long)cm_rd64(ours + e * 20 + 12), (long long)cm_rd64(q->data + e * 20),
                      (int)cm_rd32(q->data + e * 20 + 8), (long long)cm_rd64(q->data + e * 20 + 12));
        cm_free(ours);
        cm_free(path);
    }
}

/* ---- every message through the read path */

typedef struct walk {
    const char *topic;
    int32_t qid;
    int64_t next;
    int seen;
} walk_t;

static void check_against_raw(void *arg, const proto_record_t *rec) {
    walk_t *w = arg;
    cr_assert_eq(rec->queue_offset, w->next);
    cr_assert_eq(rec->queue_id, w->qid);
    cr_assert_eq((size_t)rec->topic_len, strlen(w->topic));
    cr_assert(memcmp(rec->topic, w->topic, strlen(w->topic)) == 0);
    /* byte for byte what the Java broker stored: topic, tags, keys, body, everything */
    cr_assert_lt((size_t)rec->physical_offset + (size_t)rec->total_size, raw_len);
    const uint8_t *orig = raw + rec->physical_offset;
    cr_assert_eq((int32_t)cm_rd32(orig), rec->total_size);
    w->next++;
    w->seen++;
}

static int read_queue(const char *topic, int32_t qid, cm_buf_t *all) {
    walk_t w = {topic, qid, 0, 0};
    int64_t off = 0;
    for (;;) {
        store_get_result_t r = {0};
        cr_assert_eq(store_get_messages(st, topic, qid, off, 32, 0, NULL, NULL, &r), RMQ_OK);
        if (r.status != STORE_FOUND) {
            cr_assert_eq(r.status, STORE_OFFSET_OVERFLOW_ONE, "%s/%d at %lld: %s", topic,
                         (int)qid, (long long)off, store_get_status_name(r.status));
            cm_buf_free(&r.records);
            break;
        }
        cr_assert_eq(st_each_record(&r.records, check_against_raw, &w), r.msg_count);
        for (size_t p = 0; p < r.records.len;) {
            int32_t size = (int32_t)cm_rd32(r.records.data + p);
            int64_t phys = (int64_t)cm_rd64(r.records.data + p + PROTO_REC_OFF_PHYSICALOFFSET);
            cr_assert(memcmp(r.records.data + p, raw + phys, (size_t)size) == 0,
                      "record at %lld differs from the Java bytes", (long long)phys);
            p += (size_t)size;
        }
        cm_buf_append(all, r.records.data, r.records.len);
        off = r.next_begin_offset;
        cm_buf_free(&r.records);
    }
    return w.seen;
}

static void read_every_queue(void) {
    int total = 0;
    cm_buf_t all = CM_BUF_INIT;
    for (int i = 0; i < jq_n; i++) total += read_queue(jq[i].topic, jq[i].qid, &all);
    cr_assert_eq(total, JAVA_RECORDS);
    cm_buf_free(&all);
}

/* Every KEYS token and UNIQ_KEY of every record finds that record through the index. */
static void keys_found_in_index(void) {
    int checked = 0;
    for (size_t off = 0; off < JAVA_LOG_END;) {
        proto_record_t rec;
        cr_assert_eq(proto_record_decode(raw + off, raw_len - off, true, &rec), RMQ_OK);
        char topic[256], keys[1024], uniq[128];
        snprintf(topic, sizeof topic, "%.*s", (int)rec.topic_len, rec.topic);
        const char *want[16];
        int n = 0;
        if (st_prop(&rec, PROP_UNIQ_KEY, uniq, sizeof uniq)) want[n++] = uniq;
        if (st_prop(&rec, PROP_KEYS, keys, sizeof keys))
            for (char *t = strtok(keys, " "); t && n < 16; t = strtok(NULL, " ")) want[n++] = t;
        for (int k = 0; k < n; k++) {
            store_query_result_t q = {0};
            cr_assert_eq(store_query_by_key(st, topic, want[k], 0, INT64_MAX, 64, &q), RMQ_OK);
            bool found = false;
            for (size_t p = 0; p < q.records.len;) {
                int32_t size = (int32_t)cm_rd32(q.records.data + p);
                if ((int64_t)cm_rd64(q.records.data + p + PROTO_REC_OFF_PHYSICALOFFSET) ==
                    (int64_t)off)
                    found = true;
                p += (size_t)size;
            }
            cr_assert(found || q.count == 64, "%s#%s (record at %zu) not found (%d hits)", topic,
                      want[k], off, q.count);
            cm_buf_free(&q.records);
            checked++;
        }
        off += (size_t)rec.total_size;
    }
    cr_assert_gt(checked, JAVA_RECORDS); /* every record has at least a UNIQ_KEY */
}

Test(javastore, crash_recovery_reads_everything) {
    load_java_queues();
    open_store();
    cr_assert(store_recovered_abnormally(st));
    cr_assert_eq(store_max_phys_offset(st), JAVA_LOG_END);
    cr_assert_eq(store_min_phys_offset(st), 0);
    bounds_equal_java();
    read_every_queue();
    keys_found_in_index();
    store_close(st);
    st = NULL;
    files_equal_java(NULL);
    free_java_queues();
}

/* Dropping the consume queues makes recovery rebuild them from the commit log: tag codes
 * (Java String.hashCode), schedule-topic due times and queue offsets must come out exactly
 * as the Java broker wrote them. */
Test(javastore, rebuilt_queues_match_java) {
    load_java_queues();
    char *cmd = cm_sprintf("rm -rf '%s/consumequeue' '%s/index'", cfg.root_dir, cfg.root_dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
    open_store();
    bounds_equal_java();
    read_every_queue();
    keys_found_in_index();
    /* appends continue the Java queues */
    cm_buf_t b = CM_BUF_INIT;
    st_record(&b, "IopTopic29930", 3, "A", NULL, NULL, NULL, "c", 1, 0);
    store_put_result_t r;
    cr_assert_eq(store_append(st, b.data, b.len, NULL, true, &r), RMQ_OK);
    cr_assert_eq(r.queue_offset, 124);
    cr_assert_eq(r.phys_offset, JAVA_LOG_END);
    cm_buf_free(&b);
    store_close(st);
    st = NULL;
    files_equal_java("/consumequeue/IopTopic29930/3/00000000000000000000");
    free_java_queues();
}
