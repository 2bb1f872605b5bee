/* Transactional messages end to end (issue 8): an in-process broker with a short
 * transactionCheckInterval / transactionTimeOut, producers through the public API, and a
 * pull consumer that must see exactly the committed messages, each once.
 *
 * Timing: nothing asserts a duration. Waits are bounded (generous, for valgrind) and end as
 * soon as the expected messages came; "never delivered" is judged after a quiet period that
 * spans several check passes, and the elapsed times are logged. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rmq/rmq.h>

#define TOPIC "TxTopic"
#define GROUP "tx_pg"
#define CHECK_INTERVAL_MS 500
#define TX_TIMEOUT_MS 1000
/* Long enough for a half left open to be checked twice: a message that should never show up
 * would have by then. */
#define QUIET_MS (3 * (CHECK_INTERVAL_MS + TX_TIMEOUT_MS))
#define MAX_TX 4096

static rmq_broker_t *broker;
static char store_dir[64];
static char port[16] = "0";
static const char *check_max = "15";

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void boot_broker(void) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "listenPort", port, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_conf_set(c, "storePathRootDir", store_dir, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "brokerName", "broker-a", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "waitTimeMillsInSendQueue", "10000", err, sizeof err), RMQ_OK);
    char num[16];
    snprintf(num, sizeof num, "%d", CHECK_INTERVAL_MS);
    cr_assert_eq(rmq_conf_set(c, "transactionCheckInterval", num, err, sizeof err), RMQ_OK);
    snprintf(num, sizeof num, "%d", TX_TIMEOUT_MS);
    cr_assert_eq(rmq_conf_set(c, "transactionTimeOut", num, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "transactionCheckMax", check_max, err, sizeof err), RMQ_OK);
    broker = rmq_broker_new(c, err, sizeof err);
    cr_assert_not_null(broker, "%s", err);
    cr_assert_eq(rmq_broker_start(broker, err, sizeof err), RMQ_OK, "%s", err);
    const char *addr = rmq_broker_addr(broker);
    snprintf(port, sizeof port, "%s", strrchr(addr, ':') + 1); /* a restart keeps it */
}

static void start_broker(void) {
    snprintf(store_dir, sizeof store_dir, "/tmp/rmq-tx-XXXXXX");
    cr_assert_not_null(mkdtemp(store_dir));
    snprintf(port, sizeof port, "0");
    boot_broker();
    cr_assert_eq(rmq_broker_create_topic(broker, TOPIC, 4, 6), RMQ_OK);
}

static void restart_broker(void) {
    int64_t t0 = now_ms();
    rmq_broker_destroy(broker);
    boot_broker();
    cr_log_info("broker restarted on port %s in %lld ms", port, (long long)(now_ms() - t0));
}

static void stop_broker(void) {
    rmq_broker_destroy(broker);
    broker = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(tx, .init = start_broker, .fini = stop_broker, .timeout = 240);

/* ---------------------------------------------------------------- the application */

/* What each transaction (numbered by its body) decides, locally and on a check. */
typedef struct app {
    rmq_tx_state_t local[MAX_TX], check[MAX_TX];
    atomic_int checks[MAX_TX];
    atomic_int checks_total;
    atomic_int checks_on_caller; /* checks run on a thread that called send_tx: must be 0 */
    pthread_t callers[16];
    int n_callers;
    char last_check_topic[128];
} app_t;

static app_t app;

static int body_number(const rmq_msg_t *m) {
    size_t len;
    const char *b = rmq_msg_body(m, &len);
    char text[16] = {0};
    memcpy(text, b, len < 15 ? len : 15);
    int n = atoi(text);
    return n >= 0 && n < MAX_TX ? n : 0;
}

static rmq_tx_state_t local_tx(rmq_msg_t *msg, void *arg) {
    (void)arg;
    return app.local[body_number(msg)];
}

static rmq_tx_state_t check_tx(const rmq_msg_t *msg, void *opaque) {
    app_t *a = opaque;
    int n = body_number(msg);
    for (int i = 0; i < a->n_callers; i++)
        if (pthread_equal(a->callers[i], pthread_self())) atomic_fetch_add(&a->checks_on_caller, 1);
    snprintf(a->last_check_topic, sizeof a->last_check_topic, "%s", rmq_msg_topic(msg));
    atomic_fetch_add(&a->checks[n], 1);
    atomic_fetch_add(&a->checks_total, 1);
    return a->check[n];
}

static rmq_producer_t *tx_producer(const char *instance) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "producerGroup", GROUP, err, sizeof err), RMQ_OK);
    if (instance) cr_assert_eq(rmq_conf_set(c, "instanceName", instance, err, sizeof err), RMQ_OK);
    /* Brokers learn the group again soon after a restart (default: 30 s). */
    cr_assert_eq(rmq_conf_set(c, "heartbeatBrokerInterval", "500", err, sizeof err), RMQ_OK, "%s",
                 err);
    rmq_conf_set_tx_check_cb(c, check_tx, &app);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    return p;
}

static rmq_err_t send_tx(rmq_producer_t *p, int n, rmq_send_result_t *r) {
    char body[16];
    snprintf(body, sizeof body, "%d", n);
    rmq_msg_t *m = rmq_msg_new(TOPIC);
    rmq_msg_set_body(m, body, strlen(body));
    rmq_msg_set_tags(m, "TagTx");
    rmq_err_t rc = rmq_producer_send_tx(p, m, local_tx, NULL, r);
    rmq_msg_destroy(m);
    return rc;
}

/* ---------------------------------------------------------------- the consumer */

typedef struct seen {
    int count[MAX_TX];
    int total;
} seen_t;

static rmq_pull_consumer_t *tx_consumer(void) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumerGroup", "tx_cg", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET", err, sizeof err),
                 RMQ_OK, "%s", err);
    cr_assert_eq(rmq_conf_set(c, "brokerSuspendMaxTimeMillis", "1000", err, sizeof err), RMQ_OK);
    rmq_pull_consumer_t *pc = rmq_pull_consumer_new(c, err, sizeof err);
    cr_assert_not_null(pc, "%s", err);
    cr_assert_eq(rmq_pull_consumer_subscribe(pc, TOPIC, "*"), RMQ_OK);
    cr_assert_eq(rmq_pull_consumer_start(pc, err, sizeof err), RMQ_OK, "%s", err);
    return pc;
}

/* Polls until want messages came (at most max_ms), then for quiet_ms more: whatever else
 * arrives is counted too. Checks what a committed copy carries. */
static void consume(rmq_pull_consumer_t *pc, seen_t *s, int want, int64_t max_ms,
                    int64_t quiet_ms) {
    int64_t t0 = now_ms(), until = t0 + max_ms;
    bool reached = false;
    while (now_ms() < until) {
        rmq_msg_t *msgs[32];
        int n = rmq_pull_consumer_poll(pc, 200, msgs, 32);
        cr_assert_geq(n, 0);
        for (int i = 0; i < n; i++) {
            s->count[body_number(msgs[i])]++;
            s->total++;
            cr_expect_str_eq(rmq_msg_topic(msgs[i]), TOPIC);
            cr_expect_str_eq(rmq_msg_tags(msgs[i]), "TagTx");
            const char *tran = rmq_msg_property(msgs[i], "TRAN_MSG");
            cr_expect(tran && strcmp(tran, "true") == 0, "a committed copy keeps TRAN_MSG");
            const char *pg = rmq_msg_property(msgs[i], "PGROUP");
            cr_expect(pg && strcmp(pg, GROUP) == 0);
            rmq_msg_destroy(msgs[i]);
        }
        if (!reached && s->total >= want) {
            reached = true;
            cr_log_info("%d messages in %lld ms", s->total, (long long)(now_ms() - t0));
            until = now_ms() + quiet_ms;
        }
    }
    if (!reached)
        cr_log_info("only %d of %d messages after %lld ms", s->total, want, (long long)max_ms);
}

/* ---------------------------------------------------------------- tests */

Test(tx, commit_visible_rollback_never) {
    app.local[0] = RMQ_TX_COMMIT;
    app.local[1] = RMQ_TX_ROLLBACK;
    app.check[0] = app.check[1] = RMQ_TX_UNKNOWN; /* no check is expected at all */
    rmq_producer_t *p = tx_producer(NULL);
    rmq_send_result_t r;
    cr_assert_eq(send_tx(p, 0, &r), RMQ_OK, "%s", rmq_producer_last_remark());
    cr_expect_eq(r.status, RMQ_SEND_OK);
    cr_expect_eq(r.tx_state, RMQ_TX_COMMIT);
    cr_expect_str_eq(r.transaction_id, r.msg_id);
    cr_expect_neq(r.msg_id[0], '\0');
    cr_assert_eq(send_tx(p, 1, &r), RMQ_OK);
    cr_expect_eq(r.tx_state, RMQ_TX_ROLLBACK);
    rmq_pull_consumer_t *pc = tx_consumer();
    seen_t s = {0};
    consume(pc, &s, 1, 30000, QUIET_MS);
    cr_expect_eq(s.count[0], 1, "the committed message, once");
    cr_expect_eq(s.count[1], 0, "the rolled-back message never");
    cr_expect_eq(s.total, 1);
    cr_expect_eq(atomic_load(&app.checks_total), 0, "both ends arrived: nothing to check");
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

Test(tx, unknown_then_check_back) {
    app.local[0] = app.local[1] = RMQ_TX_UNKNOWN;
    app.check[0] = RMQ_TX_COMMIT;
    app.check[1] = RMQ_TX_ROLLBACK;
    app.callers[app.n_callers++] = pthread_self();
    rmq_producer_t *p = tx_producer(NULL);
    rmq_send_result_t r;
    cr_assert_eq(send_tx(p, 0, &r), RMQ_OK);
    cr_expect_eq(r.tx_state, RMQ_TX_UNKNOWN);
    cr_assert_eq(send_tx(p, 1, &r), RMQ_OK);
    rmq_pull_consumer_t *pc = tx_consumer();
    seen_t s = {0};
    consume(pc, &s, 1, 60000, QUIET_MS);
    cr_expect_eq(s.count[0], 1, "committed by the check-back, once");
    cr_expect_eq(s.count[1], 0, "rolled back by the check-back");
    /* One check each, unless an answer took longer than a pass: logged, not asserted. */
    cr_expect_geq(atomic_load(&app.checks[0]), 1, "checked, answered COMMIT");
    cr_expect_geq(atomic_load(&app.checks[1]), 1, "checked, answered ROLLBACK");
    cr_log_info("checks: %d and %d", atomic_load(&app.checks[0]), atomic_load(&app.checks[1]));
    cr_expect_eq(atomic_load(&app.checks_on_caller), 0, "checks run on the callback pool");
    cr_expect_str_eq(app.last_check_topic, TOPIC, "the check shows the real topic");
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

/* Holds the local transaction until the broker has asked about it: its END then arrives
 * after the check's answer, for an older copy of the same half. */
static rmq_tx_state_t commit_after_check(rmq_msg_t *msg, void *arg) {
    (void)arg;
    int n = body_number(msg);
    int64_t t0 = now_ms();
    while (atomic_load(&app.checks[n]) == 0 && now_ms() - t0 < 60000)
        usleep(20 * 1000);
    usleep(300 * 1000); /* let the check's own END be stored first */
    cr_log_info("local END after %lld ms, %d check(s)", (long long)(now_ms() - t0),
                atomic_load(&app.checks[n]));
    return RMQ_TX_COMMIT;
}

Test(tx, late_end_racing_a_check_delivers_once) {
    app.check[5] = RMQ_TX_COMMIT;
    rmq_producer_t *p = tx_producer(NULL);
    rmq_msg_t *m = rmq_msg_new(TOPIC);
    rmq_msg_set_body(m, "5", 1);
    rmq_msg_set_tags(m, "TagTx");
    cr_assert_eq(rmq_producer_send_tx(p, m, commit_after_check, NULL, NULL), RMQ_OK);
    rmq_msg_destroy(m);
    cr_expect_geq(atomic_load(&app.checks[5]), 1);
    rmq_pull_consumer_t *pc = tx_consumer();
    seen_t s = {0};
    consume(pc, &s, 1, 30000, QUIET_MS);
    cr_expect_eq(s.count[5], 1, "committed by the check and by the late END: delivered once");
    cr_expect_eq(s.total, 1);
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

/* What the broker stores, as a 4.9 broker does (store.md §8): halves on the half topic queue
 * 0 with REAL_TOPIC / REAL_QID, op records tagged "d" whose body is the half's queue offset. */
Test(tx, stored_as_rocketmq_stores_it) {
    app.local[0] = RMQ_TX_COMMIT;
    app.local[1] = RMQ_TX_ROLLBACK;
    rmq_producer_t *p = tx_producer(NULL);
    cr_assert_eq(send_tx(p, 0, NULL), RMQ_OK);
    cr_assert_eq(send_tx(p, 1, NULL), RMQ_OK);
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumerGroup", "tx_inspect", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET", err, sizeof err),
                 RMQ_OK);
    rmq_pull_consumer_t *pc = rmq_pull_consumer_new(c, err, sizeof err);
    cr_assert_not_null(pc, "%s", err);
    rmq_mq_t mqs[2] = {{.topic = "RMQ_SYS_TRANS_HALF_TOPIC", .broker_name = "broker-a"},
                       {.topic = "RMQ_SYS_TRANS_OP_HALF_TOPIC", .broker_name = "broker-a"}};
    cr_assert_eq(rmq_pull_consumer_assign(pc, mqs, 2), RMQ_OK);
    cr_assert_eq(rmq_pull_consumer_start(pc, err, sizeof err), RMQ_OK, "%s", err);
    int halves = 0, ops = 0, op_bodies = 0;
    int64_t t0 = now_ms();
    while (halves + ops < 4 && now_ms() - t0 < 30000) {
        rmq_msg_t *msgs[8];
        int n = rmq_pull_consumer_poll(pc, 200, msgs, 8);
        for (int i = 0; i < n; i++) {
            rmq_msg_t *m = msgs[i];
            cr_expect_eq(rmq_msg_queue_id(m), 0);
            if (strcmp(rmq_msg_topic(m), "RMQ_SYS_TRANS_HALF_TOPIC") == 0) {
                halves++;
                cr_expect_str_eq(rmq_msg_property(m, "REAL_TOPIC"), TOPIC);
                const char *qid = rmq_msg_property(m, "REAL_QID");
                cr_expect(qid && atoi(qid) >= 0 && atoi(qid) < 4);
                cr_expect_str_eq(rmq_msg_property(m, "TRAN_MSG"), "true");
                cr_expect_str_eq(rmq_msg_property(m, "PGROUP"), GROUP);
                cr_expect_eq(rmq_msg_queue_offset(m), body_number(m), "halves 0 and 1, in order");
            } else {
                ops++;
                cr_expect_str_eq(rmq_msg_topic(m), "RMQ_SYS_TRANS_OP_HALF_TOPIC");
                cr_expect_str_eq(rmq_msg_tags(m), "d");
                size_t len;
                const char *body = rmq_msg_body(m, &len);
                cr_expect(len == 1 && (body[0] == '0' || body[0] == '1'), "body: a half offset");
                op_bodies |= 1 << (body[0] - '0');
            }
            rmq_msg_destroy(m);
        }
    }
    cr_expect_eq(halves, 2);
    cr_expect_eq(ops, 2);
    cr_expect_eq(op_bodies, 3, "one op record for each half");
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

static void few_checks(void) {
    check_max = "2";
    start_broker();
}

Test(tx, gives_up_after_check_max, .init = few_checks) {
    app.local[0] = app.check[0] = RMQ_TX_UNKNOWN;
    rmq_producer_t *p = tx_producer(NULL);
    cr_assert_eq(send_tx(p, 0, NULL), RMQ_OK);
    int64_t t0 = now_ms();
    while (atomic_load(&app.checks[0]) < 2 && now_ms() - t0 < 60000)
        usleep(50 * 1000);
    cr_log_info("2 checks after %lld ms", (long long)(now_ms() - t0));
    usleep(QUIET_MS * 1000); /* passes enough for a third check, were there one */
    cr_expect_eq(atomic_load(&app.checks[0]), 2, "transactionCheckMax=2 checks, then given up: %d",
                 atomic_load(&app.checks[0]));
    rmq_pull_consumer_t *pc = tx_consumer();
    seen_t s = {0};
    consume(pc, &s, 0, 2000, 2000);
    cr_expect_eq(s.total, 0);
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

Test(tx, producer_killed_resolved_by_another) {
    const char *child = getenv("TX_CHILD");
    cr_assert_not_null(child, "TX_CHILD names the tx_child program");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl(child, child, rmq_broker_addr(broker), GROUP, TOPIC, "7", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child died in its local transaction (status %d)", status);
    app.check[7] = RMQ_TX_COMMIT;
    rmq_producer_t *p = tx_producer(NULL); /* the same group, another process's half */
    rmq_pull_consumer_t *pc = tx_consumer();
    seen_t s = {0};
    consume(pc, &s, 1, 60000, QUIET_MS);
    cr_expect_eq(s.count[7], 1, "the dead producer's transaction, committed once by the other");
    cr_expect_eq(s.total, 1);
    cr_expect_geq(atomic_load(&app.checks[7]), 1);
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

static rmq_tx_state_t restart_then_commit(rmq_msg_t *msg, void *arg) {
    (void)msg;
    (void)arg;
    restart_broker(); /* between the half and its END */
    return RMQ_TX_COMMIT;
}

Test(tx, broker_restarted_between_half_and_end) {
    app.check[3] = app.check[4] = RMQ_TX_COMMIT;
    app.local[4] = RMQ_TX_UNKNOWN;
    rmq_producer_t *p = tx_producer(NULL);
    /* 3: the broker restarts inside the local transaction, which then commits. */
    rmq_msg_t *m = rmq_msg_new(TOPIC);
    rmq_msg_set_body(m, "3", 1);
    rmq_msg_set_tags(m, "TagTx");
    rmq_send_result_t r;
    cr_assert_eq(rmq_producer_send_tx(p, m, restart_then_commit, NULL, &r), RMQ_OK);
    cr_expect_eq(r.tx_state, RMQ_TX_COMMIT);
    rmq_msg_destroy(m);
    /* 4: left unknown, then the broker restarts; the check after the restart commits it. */
    int64_t t0 = now_ms();
    rmq_err_t rc;
    while ((rc = send_tx(p, 4, NULL)) != RMQ_OK && now_ms() - t0 < 30000)
        usleep(200 * 1000); /* the route may still point at the old connection */
    cr_assert_eq(rc, RMQ_OK, "%s", rmq_producer_last_remark());
    restart_broker();
    rmq_pull_consumer_t *pc = tx_consumer();
    seen_t s = {0};
    consume(pc, &s, 2, 60000, QUIET_MS);
    cr_expect_eq(s.count[3], 1, "committed across the restart, once");
    cr_expect_eq(s.count[4], 1, "checked after the restart, committed once");
    cr_expect_eq(s.total, 2);
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}

/* ---------------------------------------------------------------- many at once */

#define THREADS 4

typedef struct worker {
    rmq_producer_t *p;
    int first, count;
    int failed;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (int n = w->first; n < w->first + w->count; n++)
        if (send_tx(w->p, n, NULL) != RMQ_OK) w->failed++;
    return NULL;
}

static int tx_count(void) {
    const char *env = getenv("TX_COUNT");
    int n = env ? atoi(env) : 1000;
    return n > 0 && n <= MAX_TX - 1 ? n : 1000;
}

Test(tx, thousand_concurrent_random_outcomes) {
    int total = tx_count();
    unsigned seed = (unsigned)time(NULL);
    cr_log_info("%d transactions, seed %u", total, seed);
    int committed = 0;
    for (int n = 0; n < total; n++) {
        switch (rand_r(&seed) % 4) {
        case 0:
            app.local[n] = RMQ_TX_COMMIT;
            break;
        case 1:
            app.local[n] = RMQ_TX_ROLLBACK;
            break;
        case 2:
            app.local[n] = RMQ_TX_UNKNOWN, app.check[n] = RMQ_TX_COMMIT;
            break;
        default:
            app.local[n] = RMQ_TX_UNKNOWN, app.check[n] = RMQ_TX_ROLLBACK;
            break;
        }
        bool commit = app.local[n] == RMQ_TX_COMMIT ||
                      (app.local[n] == RMQ_TX_UNKNOWN && app.check[n] == RMQ_TX_COMMIT);
        committed += commit;
    }
    rmq_producer_t *p = tx_producer(NULL);
    pthread_t threads[THREADS];
    worker_t w[THREADS];
    int64_t t0 = now_ms();
    for (int i = 0; i < THREADS; i++) {
        w[i] =
            (worker_t){p, i * total / THREADS, (i + 1) * total / THREADS - i * total / THREADS, 0};
        cr_assert_eq(pthread_create(&threads[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        cr_expect_eq(w[i].failed, 0);
    }
    cr_log_info("%d transactions sent in %lld ms", total, (long long)(now_ms() - t0));
    rmq_pull_consumer_t *pc = tx_consumer();
    static seen_t s;
    memset(&s, 0, sizeof s);
    consume(pc, &s, committed, 120000, QUIET_MS);
    int wrong = 0;
    for (int n = 0; n < total; n++) {
        bool commit = app.local[n] == RMQ_TX_COMMIT ||
                      (app.local[n] == RMQ_TX_UNKNOWN && app.check[n] == RMQ_TX_COMMIT);
        if (s.count[n] != (commit ? 1 : 0)) {
            if (wrong++ < 10)
                cr_log_error("transaction %d: seen %d times, committed %d", n, s.count[n], commit);
        }
    }
    cr_expect_eq(wrong, 0, "%d transactions delivered wrongly", wrong);
    cr_expect_eq(s.total, committed, "consumers see exactly the committed set (%d)", committed);
    cr_log_info("%d committed, %d checks", committed, atomic_load(&app.checks_total));
    rmq_pull_consumer_destroy(pc);
    rmq_producer_destroy(p);
}
