/* Crash test: a child process appends with SYNC_FLUSH from several threads and reports every
 * acknowledged record (offset, queue offset, size, body CRC) through a pipe; the parent
 * SIGKILLs it at a random moment, reopens the store (crash recovery), and checks that every
 * acknowledged record is present and intact and that the consume queues agree with the
 * commit log. Then a torn write: the newest record's tail is damaged and recovery must drop
 * exactly that record. Usage: crash [cycles] [seed]   (the seed is printed; rerun with it). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "../store/store_test.h"

#define TOPICS 2
#define QUEUES 4
#define APPENDERS 3

static const char *topic_names[TOPICS] = {"CrashA", "CrashB"};

typedef struct ack {
    int64_t phys, qoff;
    int32_t size, crc, qid, topic;
} ack_t;

static store_config_t cfg;
static int failures;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fprintf(stderr, "\n");                                                                \
            if (++failures > 20) exit(1);                                                         \
        }                                                                                         \
    } while (0)

static store_t *open_or_die(void) {
    char err[256] = "";
    store_t *s = NULL;
    rmq_err_t rc = store_open(&cfg, &st_quiet, &s, err, sizeof err);
    if (rc != RMQ_OK) {
        fprintf(stderr, "store_open: %s: %s\n", rmq_err_name(rc), err);
        exit(1);
    }
    return s;
}

/* ---- the child */

typedef struct appender {
    store_t *s;
    int fd, id;
    unsigned seed;
} appender_t;

static void *append_loop(void *arg) {
    appender_t *a = arg;
    char body[2048], keys[64];
    for (uint64_t n = 0;; n++) {
        int topic = rand_r(&a->seed) % TOPICS, qid = rand_r(&a->seed) % QUEUES;
        size_t len = 10 + (size_t)(rand_r(&a->seed) % 1500);
        for (size_t i = 0; i < len; i++) body[i] = (char)('a' + (n * 7 + i + (size_t)a->id) % 26);
        snprintf(keys, sizeof keys, "k%d-%llu", a->id, (unsigned long long)n);
        cm_buf_t b = CM_BUF_INIT;
        st_record(&b, topic_names[topic], qid, n % 2 ? "A" : "B", keys, NULL, NULL, body, len, 0);
        store_put_result_t r;
        if (store_append(a->s, b.data, b.len, NULL, true, &r) == RMQ_OK) {
            ack_t k = {r.phys_offset, r.queue_offset, r.wrote_bytes,
                       proto_body_crc(body, len), qid, topic};
            if (write(a->fd, &k, sizeof k) != (ssize_t)sizeof k) _exit(3);
        }
        cm_buf_free(&b);
    }
    return NULL;
}

static void child(int fd, unsigned seed) {
    store_t *s = open_or_die();
    pthread_t t[APPENDERS];
    appender_t a[APPENDERS];
    for (int i = 0; i < APPENDERS; i++) {
        a[i] = (appender_t){s, fd, i, seed * 31 + (unsigned)i};
        pthread_create(&t[i], NULL, append_loop, &a[i]);
    }
    for (;;) pause(); /* until SIGKILL */
}

/* ---- the parent */

typedef struct acks {
    ack_t *v;
    size_t n, cap;
} acks_t;

/* Collects acks until until_ms (-1: until EOF), or until the first one if first_only. */
static void read_acks(int fd, acks_t *acks, int64_t until_ms, bool first_only) {
    static uint8_t part[sizeof(ack_t)];
    static size_t have;
    size_t start = acks->n;
    for (;;) {
        int64_t left = until_ms < 0 ? -1 : until_ms - cm_mono_ms();
        if (until_ms >= 0 && left <= 0) return;
        if (first_only && acks->n > start) return;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t n = read(fd, part + have, sizeof part - have);
        if (n == 0) return; /* EOF: the child is gone */
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("read");
            exit(1);
        }
        have += (size_t)n;
        if (have < sizeof part) continue;
        have = 0;
        if (acks->n == acks->cap) {
            acks->cap = acks->cap ? acks->cap * 2 : 1024;
            acks->v = cm_realloc(acks->v, acks->cap * sizeof *acks->v);
        }
        memcpy(&acks->v[acks->n++], part, sizeof part);
    }
}

static void check_acked(store_t *s, const acks_t *acks) {
    cm_buf_t b = CM_BUF_INIT;
    for (size_t i = 0; i < acks->n; i++) {
        const ack_t *k = &acks->v[i];
        cm_buf_reset(&b);
        rmq_err_t rc = store_read_record(s, k->phys, &b);
        CHECK(rc == RMQ_OK, "acknowledged record at %lld missing (%s)", (long long)k->phys,
              rmq_err_name(rc));
        if (rc != RMQ_OK) continue;
        proto_record_t rec;
        rc = proto_record_decode(b.data, b.len, true, &rec);
        CHECK(rc == RMQ_OK && rec.total_size == k->size && rec.body_crc == k->crc &&
                  rec.queue_offset == k->qoff && rec.queue_id == k->qid,
              "acknowledged record at %lld damaged (%s)", (long long)k->phys, rmq_err_name(rc));
        /* and its consume-queue entry points at it */
        store_get_result_t g = {0};
        store_get_messages(s, topic_names[k->topic], k->qid, k->qoff, 1, 0, NULL, NULL, &g);
        CHECK(g.status == STORE_FOUND && g.records.len == (size_t)k->size &&
                  (int64_t)cm_rd64(g.records.data + PROTO_REC_OFF_PHYSICALOFFSET) == k->phys,
              "queue %s/%d offset %lld does not lead to %lld (%s)", topic_names[k->topic],
              (int)k->qid, (long long)k->qoff, (long long)k->phys,
              store_get_status_name(g.status));
        cm_buf_free(&g.records);
    }
    cm_buf_free(&b);
}

/* Walks the whole commit log; returns the record count and the newest record's offset. */
static int64_t walk_log(store_t *s, int64_t *last_phys, int32_t *last_size) {
    int64_t off = store_min_phys_offset(s), end = store_max_phys_offset(s), n = 0;
    cm_buf_t b = CM_BUF_INIT;
    while (off < end) {
        cm_buf_reset(&b);
        if (store_read_record(s, off, &b) != RMQ_OK) {
            /* a BLANK marker: the rest of this segment */
            int64_t next = off - off % cfg.commitlog_file_size + cfg.commitlog_file_size;
            CHECK(next > off && next <= end + cfg.commitlog_file_size, "hole at %lld",
                  (long long)off);
            off = next;
            continue;
        }
        *last_phys = off;
        *last_size = (int32_t)b.len;
        off += (int64_t)b.len;
        n++;
    }
    cm_buf_free(&b);
    CHECK(off == end, "log walk ended at %lld, log end %lld", (long long)off, (long long)end);
    return n;
}

/* Every queue entry leads to a record of that queue with that queue offset, and together
 * the queues index every record of the log exactly once. */
static void check_queues(store_t *s, int64_t log_records) {
    int64_t entries = 0;
    for (int t = 0; t < TOPICS; t++) {
        for (int q = 0; q < QUEUES; q++) {
            int64_t max = store_max_offset(s, topic_names[t], q);
            for (int64_t off = 0; off < max;) {
                store_get_result_t g = {0};
                store_get_messages(s, topic_names[t], q, off, 32, 0, NULL, NULL, &g);
                CHECK(g.status == STORE_FOUND, "%s/%d at %lld: %s", topic_names[t], q,
                      (long long)off, store_get_status_name(g.status));
                if (g.status != STORE_FOUND) {
                    cm_buf_free(&g.records);
                    break;
                }
                for (size_t p = 0; p < g.records.len;) {
                    proto_record_t rec;
                    rmq_err_t rc = proto_record_decode(g.records.data + p, g.records.len - p,
                                                       true, &rec);
                    CHECK(rc == RMQ_OK && rec.queue_offset == off && rec.queue_id == q,
                          "%s/%d entry %lld: %s, record says %lld", topic_names[t], q,
                          (long long)off, rmq_err_name(rc), (long long)rec.queue_offset);
                    if (rc != RMQ_OK) break;
                    p += (size_t)rec.total_size;
                    off++;
                    entries++;
                }
                cm_buf_free(&g.records);
            }
        }
    }
    CHECK(entries == log_records, "queues hold %lld entries, log %lld records",
          (long long)entries, (long long)log_records);
}

static void run_cycle(int cycle, unsigned *seed, acks_t *acks) {
    int fds[2];
    if (pipe(fds) != 0) exit(2);
    unsigned child_seed = (unsigned)rand_r(seed);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], child_seed);
    }
    close(fds[1]);
    int64_t run_ms = rand_r(seed) % 150;
    size_t before = acks->n;
    /* the kill comes at a random moment after the child's first acknowledged append, so
     * every cycle tests something even when start-up is slow (valgrind, a busy machine) */
    read_acks(fds[0], acks, -1, true);
    read_acks(fds[0], acks, cm_mono_ms() + run_ms, false);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    read_acks(fds[0], acks, -1, false);
    close(fds[0]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child ended otherwise (%d)",
          status);

    store_t *s = open_or_die();
    CHECK(store_recovered_abnormally(s), "crash recovery expected");
    check_acked(s, acks);
    int64_t last_phys = 0;
    int32_t last_size = 0;
    int64_t records = walk_log(s, &last_phys, &last_size);
    check_queues(s, records);
    store_close(s);
    printf("cycle %2d: killed after %3lld ms, %4zu new acks, %6lld records in the log\n", cycle,
           (long long)run_ms, acks->n - before, (long long)records);
}

/* Damages the newest record's second half as a torn write would (zeros where the last page
 * never reached the disk, garbage in the byte before): recovery keeps everything before it
 * and nothing of it. */
static void torn_write(const acks_t *acks) {
    store_t *s = open_or_die();
    int64_t last_phys = 0;
    int32_t last_size = 0;
    int64_t records = walk_log(s, &last_phys, &last_size);
    store_close(s);
    int64_t seg = last_phys - last_phys % cfg.commitlog_file_size;
    char *path = cm_sprintf("%s/commitlog/%020lld", cfg.root_dir, (long long)seg);
    int fd = open(path, O_RDWR);
    uint8_t junk[2048] = {0x5A};
    size_t half = (size_t)last_size / 2;
    CHECK(fd >= 0 && pwrite(fd, junk, (size_t)last_size - half, last_phys - seg + (int64_t)half) ==
                         (ssize_t)((size_t)last_size - half),
          "corrupt %s", path);
    close(fd);
    cm_free(path);
    char *abort_path = cm_sprintf("%s/abort", cfg.root_dir);
    close(open(abort_path, O_CREAT | O_WRONLY, 0644));
    cm_free(abort_path);

    s = open_or_die();
    CHECK(store_max_phys_offset(s) == last_phys, "torn record at %lld kept (end %lld)",
          (long long)last_phys, (long long)store_max_phys_offset(s));
    int64_t lp = 0;
    int32_t ls = 0;
    CHECK(walk_log(s, &lp, &ls) == records - 1, "only the torn record may go");
    acks_t older = {acks->v, 0, 0};
    for (size_t i = 0; i < acks->n; i++)
        if (acks->v[i].phys != last_phys) acks->v[older.n++] = acks->v[i];
    check_acked(s, &older);
    check_queues(s, records - 1);
    store_close(s);
    printf("torn write: record at %lld dropped, %lld kept\n", (long long)last_phys,
           (long long)(records - 1));
}

int main(int argc, char **argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 50;
    unsigned seed = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : (unsigned)cm_now_ms();
    printf("crash test: %d cycles, seed %u\n", cycles, seed);
    fflush(stdout);
    char *dir = st_tmpdir("crash");
    store_config_defaults(&cfg);
    snprintf(cfg.root_dir, sizeof cfg.root_dir, "%s", dir);
    cfg.commitlog_file_size = 64 * 1024;
    cfg.cq_file_size = 100 * STORE_CQ_UNIT;
    cfg.index_slots = 64;
    cfg.index_max = 200;
    cfg.sync_flush = true;
    cfg.cq_flush_interval_ms = 50; /* checkpoints move during the run */
    cfg.clean_interval_ms = 3600 * 1000;
    acks_t acks = {NULL, 0, 0};
    for (int c = 0; c < cycles && !failures; c++) {
        run_cycle(c, &seed, &acks);
        fflush(stdout);
    }
    if (!failures) torn_write(&acks);
    cm_free(acks.v);
    st_rmrf(dir);
    cm_free(dir);
    printf("%s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
