/* rmq-bench store: appends to lib/store directly (no broker, no network) from N threads and
 * reports messages/s and commit-log MB/s. Records look like a producer's: TAGS, KEYS and a
 * distinct UNIQ_KEY each, so consume-queue and index dispatch are part of the cost.
 * --recover: the appends run in a child that SIGKILLs itself at the end; the parent then
 * times store_open() (crash recovery) and reports it with the RSS after recovery. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "store/store.h"

typedef struct opts {
    bench_common_t c;
    const char *dir;
    bool sync, keep, recover;
    int appenders;
    int64_t segment;
} opts_t;

typedef struct run {
    const opts_t *o;
    store_t *s;
    int64_t remaining; /* --count budget left (atomic) */
    int64_t msgs, bytes, errors;
    int stop;
} run_t;

static const char usage[] =
    "--dir D --flush async|sync --appenders N [--segment BYTES --recover --keep]";

static void parse(opts_t *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->c = (bench_common_t){128, 0, 0, "BenchmarkTest", false};
    o->dir = NULL;
    o->appenders = 1;
    o->segment = INT64_C(1) << 30;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (bench_common_flag(&o->c, argc, argv, &i)) continue;
        if (strcmp(f, "--dir") == 0) o->dir = bench_value(argc, argv, &i);
        else if (strcmp(f, "--flush") == 0) {
            const char *v = bench_value(argc, argv, &i);
            if (strcmp(v, "sync") && strcmp(v, "async")) {
                fprintf(stderr, "rmq-bench store: --flush async|sync\n");
                exit(2);
            }
            o->sync = strcmp(v, "sync") == 0;
        } else if (strcmp(f, "--appenders") == 0) o->appenders = (int)bench_int(argc, argv, &i, 1, 1024);
        else if (strcmp(f, "--segment") == 0) o->segment = bench_int(argc, argv, &i, 1 << 16, INT64_C(1) << 34);
        else if (strcmp(f, "--keep") == 0) o->keep = true;
        else if (strcmp(f, "--recover") == 0) o->recover = true;
        else {
            fprintf(stderr, "rmq-bench store: unknown flag %s\nusage: rmq-bench store %s\n", f,
                    usage);
            exit(2);
        }
    }
    if (!o->c.seconds && !o->c.count) o->c.seconds = 10;
}

/* One producer-like record; *uniq_at is where its UNIQ_KEY's last 16 hex digits start. */
static void build_record(cm_buf_t *out, const opts_t *o, int32_t qid, size_t *uniq_at) {
    char *body = cm_malloc((size_t)o->c.size);
    for (int64_t i = 0; i < o->c.size; i++) body[i] = (char)('a' + i % 26);
    cm_buf_t props = CM_BUF_INIT;
    cm_buf_printf(&props, "%s%cbench%c%s%c%s%c", PROP_TAGS, PROTO_NAME_SEP, PROTO_PROP_SEP,
                  PROP_KEYS, PROTO_NAME_SEP, "order", PROTO_PROP_SEP);
    cm_buf_printf(&props, "%s%c7F0000010000%020d", PROP_UNIQ_KEY, PROTO_NAME_SEP, 0);
    proto_record_t r;
    memset(&r, 0, sizeof r);
    r.queue_id = qid;
    r.born_timestamp = cm_now_ms();
    r.born_host.ip_len = r.store_host.ip_len = 4;
    r.born_host.ip[0] = r.store_host.ip[0] = 127;
    r.born_host.ip[3] = r.store_host.ip[3] = 1;
    r.store_host.port = 10911;
    r.body = (const uint8_t *)body;
    r.body_len = (int32_t)o->c.size;
    r.topic = o->c.topic;
    r.topic_len = (int32_t)strlen(o->c.topic);
    r.props = (const char *)props.data;
    r.props_len = (int32_t)props.len;
    if (proto_record_encode(&r, out) != RMQ_OK) {
        fprintf(stderr, "rmq-bench store: cannot encode a record of %lld bytes\n",
                (long long)o->c.size);
        exit(2);
    }
    *uniq_at = out->len - 16;
    cm_buf_free(&props);
    cm_free(body);
}

static bool take_one(run_t *r) {
    if (__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) return false;
    if (!r->o->c.count) return true;
    return __atomic_sub_fetch(&r->remaining, 1, __ATOMIC_RELAXED) >= 0;
}

typedef struct worker {
    run_t *r;
    int id;
} worker_t;

static void *append_loop(void *arg) {
    worker_t *w = arg;
    run_t *r = w->r;
    cm_buf_t rec = CM_BUF_INIT;
    size_t uniq_at;
    build_record(&rec, r->o, w->id % 8, &uniq_at);
    char hex[17];
    for (uint64_t n = 0; take_one(r); n++) {
        snprintf(hex, sizeof hex, "%04X%012llX", w->id & 0xFFFF, (unsigned long long)n);
        memcpy(rec.data + uniq_at, hex, 16);
        store_put_result_t res;
        if (store_append(r->s, rec.data, rec.len, NULL, true, &res) == RMQ_OK) {
            __atomic_add_fetch(&r->msgs, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&r->bytes, res.wrote_bytes, __ATOMIC_RELAXED);
        } else {
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
        }
    }
    cm_buf_free(&rec);
    return NULL;
}

static store_t *open_store(const opts_t *o, double *open_s) {
    store_config_t cfg;
    store_config_defaults(&cfg);
    snprintf(cfg.root_dir, sizeof cfg.root_dir, "%s", o->dir);
    cfg.commitlog_file_size = o->segment;
    cfg.sync_flush = o->sync;
    store_t *s;
    char err[256];
    cm_logger_t quiet = {NULL, NULL, getenv("RMQ_BENCH_VERBOSE") ? RMQ_LOG_INFO : RMQ_LOG_WARN};
    double t0 = bench_now_s();
    rmq_err_t rc = store_open(&cfg, &quiet, &s, err, sizeof err);
    if (rc != RMQ_OK) {
        fprintf(stderr, "rmq-bench store: store_open %s: %s\n", rmq_err_name(rc), err);
        exit(1);
    }
    if (open_s) *open_s = bench_now_s() - t0;
    return s;
}

/* Runs the appenders until the time or count is spent, printing progress every second. */
static double run_appenders(run_t *r) {
    const opts_t *o = r->o;
    r->remaining = o->c.count;
    pthread_t *t = cm_calloc((size_t)o->appenders, sizeof *t);
    worker_t *w = cm_calloc((size_t)o->appenders, sizeof *w);
    double t0 = bench_now_s();
    for (int i = 0; i < o->appenders; i++) {
        w[i] = (worker_t){r, i};
        pthread_create(&t[i], NULL, append_loop, &w[i]);
    }
    int64_t last_msgs = 0, last_bytes = 0;
    for (int sec = 1;; sec++) {
        double deadline = t0 + sec;
        while (bench_now_s() < deadline) {
            usleep(20000);
            if (o->c.count && __atomic_load_n(&r->remaining, __ATOMIC_RELAXED) <= 0) break;
        }
        int64_t m = __atomic_load_n(&r->msgs, __ATOMIC_RELAXED);
        int64_t b = __atomic_load_n(&r->bytes, __ATOMIC_RELAXED);
        fprintf(stderr, "store %3ds %10lld msgs/s %9.1f MB/s  total %lld msgs\n", sec,
                (long long)(m - last_msgs), (double)(b - last_bytes) / 1e6, (long long)m);
        last_msgs = m, last_bytes = b;
        bool done = o->c.count ? __atomic_load_n(&r->remaining, __ATOMIC_RELAXED) <= 0
                               : sec >= o->c.seconds;
        if (done) break;
    }
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < o->appenders; i++) pthread_join(t[i], NULL);
    double elapsed = bench_now_s() - t0;
    cm_free(t);
    cm_free(w);
    return elapsed;
}

static void report(const opts_t *o, const run_t *r, double elapsed, double extra_ms,
                   const char *extra_key, double rss) {
    double mps = (double)r->msgs / elapsed, mbs = (double)r->bytes / elapsed / 1e6;
    const char *flush = o->sync ? "sync" : "async";
    if (o->c.json) {
        printf("{\"mode\":\"store\",\"size\":%lld,\"flush\":\"%s\",\"appenders\":%d,"
               "\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,\"msgs\":%lld,\"errors\":%lld,"
               "\"seconds\":%.2f,\"rss_mb\":%.0f",
               (long long)o->c.size, flush, o->appenders, mps, mbs, (long long)r->msgs,
               (long long)r->errors, elapsed, rss);
        if (extra_key) printf(",\"%s\":%.0f", extra_key, extra_ms);
        printf("}\n");
    } else {
        printf("store size=%lld flush=%s appenders=%d msgs/s=%.0f MB/s=%.1f msgs=%lld "
               "errors=%lld seconds=%.2f rss_mb=%.0f",
               (long long)o->c.size, flush, o->appenders, mps, mbs, (long long)r->msgs,
               (long long)r->errors, elapsed, rss);
        if (extra_key) printf(" %s=%.0f", extra_key, extra_ms);
        printf("\n");
    }
}

/* Child: append, report its figures through a pipe, die by SIGKILL (abort file left);
 * parent: time the crash recovery of what the child wrote. */
static int run_recover(opts_t *o) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        run_t r = {o, open_store(o, NULL), 0, 0, 0, 0, 0};
        double elapsed = run_appenders(&r);
        fprintf(stderr, "store: %lld msgs, %.1f MB in %.1f s; SIGKILL\n", (long long)r.msgs,
                (double)r.bytes / 1e6, elapsed);
        int64_t figures[3] = {r.msgs, r.bytes, (int64_t)(elapsed * 1e6)};
        if (write(fds[1], figures, sizeof figures) != (ssize_t)sizeof figures) _exit(1);
        raise(SIGKILL);
    }
    close(fds[1]);
    int64_t figures[3] = {0, 0, 1};
    if (read(fds[0], figures, sizeof figures) != (ssize_t)sizeof figures)
        fprintf(stderr, "rmq-bench store: the appending child died early\n");
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    double open_s;
    store_t *s = open_store(o, &open_s);
    double rss = bench_rss_mb();
    bool crashed = store_recovered_abnormally(s);
    store_close(s);
    run_t r = {o, NULL, 0, figures[0], figures[1], crashed ? 0 : 1, 0};
    report(o, &r, (double)figures[2] / 1e6, open_s * 1000, "recover_ms", rss);
    return crashed ? 0 : 1;
}

static int run_store(int argc, char **argv) {
    opts_t o;
    parse(&o, argc, argv);
    char *own = NULL;
    if (!o.dir) o.dir = own = cm_sprintf("/tmp/rmq-bench-store-%d", (int)getpid());
    int rc = 0;
    if (o.recover) {
        rc = run_recover(&o);
    } else {
        run_t r = {&o, open_store(&o, NULL), 0, 0, 0, 0, 0};
        double elapsed = run_appenders(&r);
        double rss = bench_rss_mb();
        store_close(r.s);
        report(&o, &r, elapsed, 0, NULL, rss);
        rc = r.errors ? 1 : 0;
    }
    if (!o.keep) {
        char *cmd = cm_sprintf("rm -rf '%s'", o.dir);
        if (system(cmd) != 0) fprintf(stderr, "rmq-bench store: could not remove %s\n", o.dir);
        cm_free(cmd);
    }
    cm_free(own);
    return rc;
}

BENCH_MODE(store, usage, run_store)
