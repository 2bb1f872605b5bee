/* Issue 7 end to end through the public API only: a push-consumer listener that keeps
 * returning RECONSUME_LATER sees the message again with reconsume times 1, 2, 3, each after
 * a longer wait (the broker schedules retry n at delay level 3 + n; messageDelayLevel is
 * shortened so levels 3, 4, 5 are 1 s, 2 s, 4 s); after maxReconsumeTimes (3 here) the
 * message is in %DLQ%<group>, rmq_broker_dlq_list() shows it and rmq_broker_dlq_resend()
 * puts it back on its topic, where the same consumer gets it once more with reconsume
 * times 0. The measured intervals go to the test log; the assertions only use lower bounds
 * (a retry is never early) and the order of the levels, so a slow machine cannot fail it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rmq/rmq.h>

#define TOPIC "RetryLevels"
#define GROUP "g_levels"
#define MAX_RECONSUME 3
#define MAX_DELIVERIES 8
#define WAIT_MS 120000 /* generous: valgrind runs this 30x slower */

/* Delay of levels 3, 4 and 5 in ms: what retries 1, 2 and 3 wait at least. */
static const int64_t retry_delay_ms[MAX_RECONSUME] = {1000, 2000, 4000};

static rmq_broker_t *broker;
static char store_dir[64];

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_set(rmq_conf_t *c, const char *key, const char *value) {
    char err[256];
    cr_assert_eq(rmq_conf_set(c, key, value, err, sizeof err), RMQ_OK, "%s: %s", key, err);
}

static void start_broker(void) {
    snprintf(store_dir, sizeof store_dir, "/tmp/rmq-levels-XXXXXX");
    cr_assert_not_null(mkdtemp(store_dir));
    rmq_conf_t *c = rmq_conf_new();
    conf_set(c, "listenPort", "0");
    conf_set(c, "storePathRootDir", store_dir);
    conf_set(c, "brokerName", "broker-a");
    conf_set(c, "messageDelayLevel", "1s 1s 1s 2s 4s 8s");
    char err[256];
    broker = rmq_broker_new(c, err, sizeof err);
    cr_assert_not_null(broker, "%s", err);
    cr_assert_eq(rmq_broker_start(broker, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_broker_create_topic(broker, TOPIC, 2, 6), RMQ_OK);
}

static void stop_broker(void) {
    rmq_broker_destroy(broker);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(retry_levels, .init = start_broker, .fini = stop_broker, .timeout = 300);

/* What the listener saw, in delivery order. */
typedef struct deliveries {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    int n;
    int reconsume[MAX_DELIVERIES];
    int64_t at_ms[MAX_DELIVERIES];
    char id[MAX_DELIVERIES][RMQ_MSG_ID_SIZE];
    char topic[MAX_DELIVERIES][64];
} deliveries_t;

/* RECONSUME_LATER for the first MAX_RECONSUME + 1 deliveries (the original and its three
 * retries), SUCCESS afterwards (the copy re-sent from the DLQ). */
static rmq_consume_status_t on_msgs(const rmq_msg_t *const *msgs, size_t count,
                                    rmq_consume_ctx_t *ctx, void *opaque) {
    (void)ctx;
    deliveries_t *d = opaque;
    rmq_consume_status_t st = RMQ_CONSUME_SUCCESS;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < count && d->n < MAX_DELIVERIES; i++, d->n++) {
        d->reconsume[d->n] = rmq_msg_reconsume_times(msgs[i]);
        d->at_ms[d->n] = now_ms();
        snprintf(d->id[d->n], sizeof d->id[0], "%s", rmq_msg_id(msgs[i]));
        snprintf(d->topic[d->n], sizeof d->topic[0], "%s", rmq_msg_topic(msgs[i]));
        if (d->n <= MAX_RECONSUME) st = RMQ_CONSUME_RECONSUME_LATER;
    }
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->mu);
    return st;
}

/* Waits until the listener has seen n deliveries (false on timeout). */
static bool wait_deliveries(deliveries_t *d, int n) {
    int64_t end = now_ms() + WAIT_MS;
    pthread_mutex_lock(&d->mu);
    while (d->n < n && now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->changed, &d->mu, &ts);
    }
    bool ok = d->n >= n;
    pthread_mutex_unlock(&d->mu);
    return ok;
}

static rmq_push_consumer_t *start_consumer(deliveries_t *d) {
    rmq_conf_t *c = rmq_conf_new();
    conf_set(c, "namesrvAddr", rmq_broker_addr(broker));
    conf_set(c, "consumerGroup", GROUP);
    conf_set(c, "instanceName", "levels0");
    conf_set(c, "maxReconsumeTimes", "3");
    conf_set(c, "brokerSuspendMaxTimeMillis", "1000");
    conf_set(c, "rebalanceWaitInterval", "1000");
    conf_set(c, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET");
    char err[256];
    rmq_push_consumer_t *pc = rmq_push_consumer_new(c, err, sizeof err);
    cr_assert_not_null(pc, "%s", err);
    cr_assert_eq(rmq_push_consumer_subscribe(pc, TOPIC, "*"), RMQ_OK);
    cr_assert_eq(rmq_push_consumer_set_listener(pc, on_msgs, d), RMQ_OK);
    cr_assert_eq(rmq_push_consumer_start(pc, err, sizeof err), RMQ_OK, "%s", err);
    return pc;
}

static void send_one(char *id, size_t id_size) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    conf_set(c, "namesrvAddr", rmq_broker_addr(broker));
    conf_set(c, "producerGroup", "pg_levels");
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    rmq_msg_t *m = rmq_msg_new(TOPIC);
    rmq_msg_set_body(m, "doomed", 6);
    rmq_msg_set_tags(m, "TagR");
    rmq_send_result_t res;
    cr_assert_eq(rmq_producer_send(p, m, &res), RMQ_OK);
    snprintf(id, id_size, "%s", res.msg_id);
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
}

typedef struct dead {
    int n;
    int64_t offset;
    char id[RMQ_MSG_ID_SIZE];
    char retry_topic[64];
    int reconsume;
} dead_t;

static int on_dead(const rmq_msg_t *m, void *opaque) {
    dead_t *d = opaque;
    d->n++;
    d->offset = rmq_msg_queue_offset(m);
    d->reconsume = rmq_msg_reconsume_times(m);
    snprintf(d->id, sizeof d->id, "%s", rmq_msg_id(m));
    const char *rt = rmq_msg_property(m, "RETRY_TOPIC");
    snprintf(d->retry_topic, sizeof d->retry_topic, "%s", rt ? rt : "");
    return 0;
}

/* Lists the group's DLQ until it holds one message (the send-back is asynchronous to the
 * listener's return). */
static void wait_dead_letter(dead_t *dead) {
    int64_t end = now_ms() + WAIT_MS;
    do {
        memset(dead, 0, sizeof *dead);
        cr_assert_eq(rmq_broker_dlq_list(broker, GROUP, 0, 16, on_dead, dead, NULL), RMQ_OK);
        if (dead->n) return;
        usleep(50 * 1000);
    } while (now_ms() < end);
}

Test(retry_levels, reconsume_later_grows_then_dead_letter_then_resend) {
    deliveries_t d = {.n = 0};
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.changed, NULL);
    rmq_push_consumer_t *pc = start_consumer(&d);
    char sent_id[RMQ_MSG_ID_SIZE];
    send_one(sent_id, sizeof sent_id);

    /* The original and its three retries. */
    cr_assert(wait_deliveries(&d, MAX_RECONSUME + 1), "only %d deliveries", d.n);
    pthread_mutex_lock(&d.mu);
    for (int i = 0; i <= MAX_RECONSUME; i++) {
        cr_expect_eq(d.reconsume[i], i, "delivery %d has reconsume times %d", i, d.reconsume[i]);
        cr_expect_str_eq(d.id[i], sent_id, "every retry is the same message id");
        cr_expect_str_eq(d.topic[i], TOPIC, "a retry shows its original topic");
    }
    int64_t interval[MAX_RECONSUME];
    for (int i = 0; i < MAX_RECONSUME; i++) {
        interval[i] = d.at_ms[i + 1] - d.at_ms[i];
        cr_log_info("retry %d (level %d, %lld ms) came %lld ms after the previous delivery", i + 1,
                    3 + i, (long long)retry_delay_ms[i], (long long)interval[i]);
        fprintf(stderr, "retry %d: level %d (%lld ms), measured interval %lld ms\n", i + 1, 3 + i,
                (long long)retry_delay_ms[i], (long long)interval[i]);
    }
    pthread_mutex_unlock(&d.mu);
    /* A retry waits at least its level's delay (the listener's timestamp precedes the send
     * back the delay counts from; 20 ms is clock granularity), so the intervals grow with
     * the levels; the last one, 4 s, exceeds the first, 1 s, whatever the overheads were
     * unless the machine stalled for three seconds. */
    for (int i = 0; i < MAX_RECONSUME; i++)
        cr_expect_geq(interval[i], retry_delay_ms[i] - 20, "retry %d early: %lld ms", i + 1,
                      (long long)interval[i]);
    cr_expect_gt(interval[MAX_RECONSUME - 1], interval[0], "intervals grow");

    /* The fourth failure goes to %DLQ%g_levels. */
    dead_t dead;
    wait_dead_letter(&dead);
    cr_assert_eq(dead.n, 1, "dead letters: %d", dead.n);
    cr_expect_str_eq(dead.retry_topic, TOPIC);
    cr_expect_str_eq(dead.id, sent_id);
    cr_expect_eq(dead.reconsume, MAX_RECONSUME + 1);
    pthread_mutex_lock(&d.mu);
    cr_expect_eq(d.n, MAX_RECONSUME + 1, "no delivery after the dead letter");
    pthread_mutex_unlock(&d.mu);

    /* Re-sent, the same consumer gets it again as a fresh message and acknowledges it. */
    char new_offset_id[RMQ_MSG_ID_SIZE];
    cr_assert_eq(
        rmq_broker_dlq_resend(broker, GROUP, dead.offset, new_offset_id, sizeof new_offset_id),
        RMQ_OK);
    cr_assert(wait_deliveries(&d, MAX_RECONSUME + 2), "re-sent copy not consumed");
    pthread_mutex_lock(&d.mu);
    int last = MAX_RECONSUME + 1;
    cr_expect_eq(d.reconsume[last], 0);
    cr_expect_str_eq(d.id[last], sent_id);
    cr_expect_str_eq(d.topic[last], TOPIC);
    pthread_mutex_unlock(&d.mu);
    /* Acknowledged: nothing more comes (a second's grace for a stray retry). */
    usleep(1500 * 1000);
    pthread_mutex_lock(&d.mu);
    cr_expect_eq(d.n, MAX_RECONSUME + 2, "deliveries: %d", d.n);
    pthread_mutex_unlock(&d.mu);

    rmq_push_consumer_destroy(pc);
    pthread_cond_destroy(&d.changed);
    pthread_mutex_destroy(&d.mu);
}
