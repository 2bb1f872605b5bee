/* The push consumer against an in-process broker, through the public API: a group splitting
 * 16 queues evenly and receiving every message, members joining and leaving under load,
 * broadcasting, orderly consumption under load, tag filters, redelivery through %RETRY%,
 * offsets across restarts of the consumer and of the broker, destroy while listeners run, and
 * faults: the broker restarted under a running consumer (concurrent and orderly) and every
 * client connection cut mid-pull, losing nothing. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rmq/rmq.h>

#define TOPIC "PushTopic"
#define QUEUES 16
#define MAX_MSGS 4096
#define MAX_CONSUMERS 4

static rmq_broker_t *broker;
static char store_dir[64], offsets_dir[96];
static int broker_port;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    usleep((useconds_t)ms * 1000);
}

static void boot_broker(void) {
    char err[256], port[16];
    rmq_conf_t *c = rmq_conf_new();
    snprintf(port, sizeof port, "%d", broker_port);
    cr_assert_eq(rmq_conf_set(c, "listenPort", port, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_conf_set(c, "storePathRootDir", store_dir, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "brokerName", "broker-a", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "messageDelayLevel", "1s 1s 1s", err, sizeof err), RMQ_OK, "%s",
                 err);
    cr_assert_eq(rmq_conf_set(c, "waitTimeMillsInSendQueue", "10000", err, sizeof err), RMQ_OK);
    broker = rmq_broker_new(c, err, sizeof err);
    cr_assert_not_null(broker, "%s", err);
    cr_assert_eq(rmq_broker_start(broker, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_broker_create_topic(broker, TOPIC, QUEUES, 6), RMQ_OK);
    const char *addr = rmq_broker_addr(broker);
    broker_port = atoi(strrchr(addr, ':') + 1); /* a restart keeps the address */
}

static void start_broker(void) {
    snprintf(store_dir, sizeof store_dir, "/tmp/rmq-pushc-XXXXXX");
    cr_assert_not_null(mkdtemp(store_dir));
    snprintf(offsets_dir, sizeof offsets_dir, "%s/offsets", store_dir);
    broker_port = 0;
    boot_broker();
}

static void stop_broker(void) {
    rmq_broker_destroy(broker);
    broker = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(push_consumer, .init = start_broker, .fini = stop_broker);

/* ---------------------------------------------------------------- what listeners saw */

typedef struct seen {
    pthread_mutex_t mu;
    int count[MAX_MSGS];  /* deliveries of message i */
    int acked[MAX_MSGS];  /* listener calls that returned SUCCESS for it */
    int owner[QUEUES];    /* bitmask of consumers that got messages of queue q */
    int64_t last[QUEUES]; /* orderly: last offset seen per queue */
    int order_errors, reentry_errors, total;
    int gap_errors, rewinds; /* allow_rewind: offsets skipped ahead / gone back (redelivery) */
    bool allow_rewind;       /* orderly: a redelivery may go back, never skip ahead */
    atomic_int busy[QUEUES]; /* orderly: calls running per queue */
    atomic_int running;      /* listener calls running */
    int sleep_ms;            /* each call sleeps this long */
    int suspend_every;       /* orderly: SUSPEND once for offsets % this == 3 */
    int retry_until;         /* RECONSUME_LATER until reconsume times reaches this */
    int retry_seen[8];       /* deliveries by reconsume times */
    char tags_bad;           /* a message with an unexpected tag came */
    const char *want_tag;
    int suspended[QUEUES][64];
} seen_t;

static void seen_init(seen_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    for (int q = 0; q < QUEUES; q++)
        s->last[q] = -1;
}

static int body_index(const rmq_msg_t *m) {
    size_t len;
    const char *b = rmq_msg_body(m, &len);
    char text[16] = {0};
    memcpy(text, b, len < 15 ? len : 15);
    int v = atoi(text);
    cr_assert(v >= 0 && v < MAX_MSGS, "body %s", text);
    return v;
}

typedef struct member {
    seen_t *s;
    int id;
} member_t;

static int distinct(seen_t *s, int n) {
    pthread_mutex_lock(&s->mu);
    int k = 0;
    for (int i = 0; i < n; i++)
        k += s->count[i] > 0;
    pthread_mutex_unlock(&s->mu);
    return k;
}

static int distinct_acked(seen_t *s, int n) {
    pthread_mutex_lock(&s->mu);
    int k = 0;
    for (int i = 0; i < n; i++)
        k += s->acked[i] > 0;
    pthread_mutex_unlock(&s->mu);
    return k;
}

/* Waits up to ms for n distinct messages. */
static bool wait_distinct(seen_t *s, int n, int ms) {
    int64_t end = now_ms() + ms;
    while (distinct(s, n) < n && now_ms() < end)
        sleep_ms(50);
    return distinct(s, n) == n;
}

static rmq_consume_status_t on_msgs(const rmq_msg_t *const *msgs, size_t count,
                                    rmq_consume_ctx_t *ctx, void *opaque) {
    member_t *mb = opaque;
    seen_t *s = mb->s;
    atomic_fetch_add(&s->running, 1);
    const rmq_mq_t *mq = rmq_consume_ctx_queue(ctx);
    rmq_consume_status_t st = RMQ_CONSUME_SUCCESS;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < count; i++) {
        int v = body_index(msgs[i]);
        s->count[v]++;
        s->total++;
        if (strcmp(mq->topic, TOPIC) == 0 && mq->queue_id < QUEUES)
            s->owner[mq->queue_id] |= 1 << mb->id;
        if (s->want_tag && strcmp(rmq_msg_tags(msgs[i]), s->want_tag) != 0) s->tags_bad = 1;
        int rt = rmq_msg_reconsume_times(msgs[i]);
        if (rt < 8) s->retry_seen[rt]++;
        if (rt < s->retry_until) {
            st = RMQ_CONSUME_RECONSUME_LATER;
            cr_expect_str_eq(rmq_msg_topic(msgs[i]), TOPIC, "a retried message shows its topic");
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (s->sleep_ms) sleep_ms(s->sleep_ms);
    if (st == RMQ_CONSUME_SUCCESS) {
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < count; i++)
            s->acked[body_index(msgs[i])]++;
        pthread_mutex_unlock(&s->mu);
    }
    atomic_fetch_sub(&s->running, 1);
    return st;
}

static rmq_consume_status_t on_orderly(const rmq_msg_t *const *msgs, size_t count,
                                       rmq_consume_ctx_t *ctx, void *opaque) {
    member_t *mb = opaque;
    seen_t *s = mb->s;
    int q = rmq_consume_ctx_queue(ctx)->queue_id;
    cr_assert(q >= 0 && q < QUEUES);
    if (atomic_fetch_add(&s->busy[q], 1) != 0) s->reentry_errors++;
    rmq_consume_status_t st = RMQ_CONSUME_SUCCESS;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < count && st == RMQ_CONSUME_SUCCESS; i++) {
        int64_t off = rmq_msg_queue_offset(msgs[i]);
        if (s->suspend_every && off % s->suspend_every == 3 && off / s->suspend_every < 64 &&
            !s->suspended[q][off / s->suspend_every]) {
            s->suspended[q][off / s->suspend_every] = 1;
            st = RMQ_CONSUME_SUSPEND;
            rmq_consume_ctx_set_suspend_ms(ctx, 20);
        }
    }
    if (st == RMQ_CONSUME_SUCCESS)
        for (size_t i = 0; i < count; i++) {
            int64_t off = rmq_msg_queue_offset(msgs[i]);
            if (s->allow_rewind && off <= s->last[q])
                s->rewinds++;
            else if (s->allow_rewind && off > s->last[q] + 1)
                s->gap_errors++;
            else if (off != s->last[q] + 1)
                s->order_errors++;
            s->last[q] = off;
            s->count[body_index(msgs[i])]++;
            s->total++;
        }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_sub(&s->busy[q], 1);
    return st;
}

/* ---------------------------------------------------------------- clients */

static rmq_conf_t *consumer_conf(const char *group, const char *instance) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumerGroup", group, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "instanceName", instance, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "brokerSuspendMaxTimeMillis", "1000", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "rebalanceWaitInterval", "1000", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "persistConsumerOffsetInterval", "500", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET", err, sizeof err),
                 RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "localOffsetStoreDir", offsets_dir, err, sizeof err), RMQ_OK);
    return c;
}

static void conf_set(rmq_conf_t *c, const char *key, const char *value) {
    char err[256];
    cr_assert_eq(rmq_conf_set(c, key, value, err, sizeof err), RMQ_OK, "%s", err);
}

static rmq_push_consumer_t *start_consumer(rmq_conf_t *conf, const char *expr, member_t *mb,
                                           bool orderly) {
    char err[256];
    rmq_push_consumer_t *pc = rmq_push_consumer_new(conf, err, sizeof err);
    cr_assert_not_null(pc, "%s", err);
    cr_assert_eq(rmq_push_consumer_subscribe(pc, TOPIC, expr), RMQ_OK);
    if (orderly)
        cr_assert_eq(rmq_push_consumer_set_orderly_listener(pc, on_orderly, mb), RMQ_OK);
    else
        cr_assert_eq(rmq_push_consumer_set_listener(pc, on_msgs, mb), RMQ_OK);
    cr_assert_eq(rmq_push_consumer_start(pc, err, sizeof err), RMQ_OK, "%s", err);
    return pc;
}

static rmq_producer_t *new_producer(void) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "producerGroup", "pg", err, sizeof err), RMQ_OK);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    return p;
}

/* Sends messages first..first+count-1, body "<i>", tags TagA / TagB alternating, round robin
 * over the queues. */
static void produce_with(rmq_producer_t *p, int first, int count) {
    for (int i = first; i < first + count; i++) {
        char body[16];
        snprintf(body, sizeof body, "%d", i);
        rmq_msg_t *m = rmq_msg_new(TOPIC);
        rmq_msg_set_body(m, body, strlen(body));
        rmq_msg_set_tags(m, i % 2 ? "TagB" : "TagA");
        cr_assert_eq(rmq_producer_send(p, m, NULL), RMQ_OK);
        rmq_msg_destroy(m);
    }
}

static void produce(int first, int count) {
    rmq_producer_t *p = new_producer();
    produce_with(p, first, count);
    rmq_producer_destroy(p);
}

static int queues_of(seen_t *s, int id) {
    int n = 0;
    for (int q = 0; q < QUEUES; q++)
        n += (s->owner[q] >> id) & 1;
    return n;
}

/* ---------------------------------------------------------------- tests */

Test(push_consumer, group_of_three_splits_evenly_and_gets_everything) {
    seen_t s;
    seen_init(&s);
    member_t m[3] = {{&s, 0}, {&s, 1}, {&s, 2}};
    rmq_push_consumer_t *pc[3];
    char inst[16];
    for (int i = 0; i < 3; i++) {
        snprintf(inst, sizeof inst, "split%d", i);
        pc[i] = start_consumer(consumer_conf("g_split", inst), "*", &m[i], false);
    }
    sleep_ms(3000); /* each member's rebalance sees all three */
    produce(0, 320);
    cr_assert(wait_distinct(&s, 320, 15000), "got %d of 320", distinct(&s, 320));
    int dups = s.total - 320;
    printf("split: %d %d %d queues, %d duplicates\n", queues_of(&s, 0), queues_of(&s, 1),
           queues_of(&s, 2), dups);
    for (int q = 0; q < QUEUES; q++)
        cr_expect(s.owner[q] == 1 || s.owner[q] == 2 || s.owner[q] == 4,
                  "queue %d consumed by mask %d", q, s.owner[q]);
    for (int i = 0; i < 3; i++)
        cr_expect(queues_of(&s, i) == 5 || queues_of(&s, i) == 6, "member %d has %d queues", i,
                  queues_of(&s, i));
    cr_expect_eq(dups, 0);
    for (int i = 0; i < 3; i++)
        rmq_push_consumer_destroy(pc[i]);
}

typedef struct feeder {
    atomic_bool stop;
    int sent;
} feeder_t;

static void *feed(void *arg) {
    feeder_t *f = arg;
    rmq_producer_t *p = new_producer();
    while (!atomic_load(&f->stop) && f->sent < MAX_MSGS) {
        produce_with(p, f->sent, 10);
        f->sent += 10;
        sleep_ms(20);
    }
    rmq_producer_destroy(p);
    return NULL;
}

Test(push_consumer, members_join_and_leave_under_load_losing_nothing) {
    seen_t s;
    seen_init(&s);
    member_t m[4] = {{&s, 0}, {&s, 1}, {&s, 2}, {&s, 3}};
    rmq_push_consumer_t *pc[4];
    char inst[16];
    for (int i = 0; i < 3; i++) {
        snprintf(inst, sizeof inst, "churn%d", i);
        pc[i] = start_consumer(consumer_conf("g_churn", inst), "*", &m[i], false);
    }
    feeder_t f = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, feed, &f), 0);
    sleep_ms(1500);
    pc[3] = start_consumer(consumer_conf("g_churn", "churn3"), "*", &m[3], false);
    int64_t joined = now_ms();
    while (queues_of(&s, 3) == 0 && now_ms() - joined < 10000)
        sleep_ms(50);
    printf("churn: the fourth member got messages after %lld ms\n", (long long)(now_ms() - joined));
    cr_expect_gt(queues_of(&s, 3), 0, "the joining member got no queue");
    rmq_push_consumer_destroy(pc[0]); /* leaves: its queues move to the others */
    pc[0] = NULL;
    sleep_ms(2000);
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    cr_assert(wait_distinct(&s, f.sent, 15000), "got %d of %d", distinct(&s, f.sent), f.sent);
    printf("churn: %d sent, %d deliveries (%d duplicates)\n", f.sent, s.total, s.total - f.sent);
    for (int i = 1; i < 4; i++)
        rmq_push_consumer_destroy(pc[i]);
}

Test(push_consumer, broadcasting_gives_every_instance_a_full_copy) {
    seen_t s[2];
    member_t m[2] = {{&s[0], 0}, {&s[1], 1}};
    rmq_push_consumer_t *pc[2];
    char inst[16];
    for (int i = 0; i < 2; i++) {
        seen_init(&s[i]);
        snprintf(inst, sizeof inst, "bcast%d", i);
        rmq_conf_t *c = consumer_conf("g_bcast", inst);
        conf_set(c, "messageModel", "BROADCASTING");
        pc[i] = start_consumer(c, "*", &m[i], false);
    }
    produce(0, 200);
    for (int i = 0; i < 2; i++) {
        cr_assert(wait_distinct(&s[i], 200, 15000), "instance %d got %d of 200", i,
                  distinct(&s[i], 200));
        cr_expect_eq(queues_of(&s[i], i), QUEUES);
    }
    rmq_push_consumer_destroy(pc[0]);
    /* The instance's offsets file holds every queue, in RocketMQ's shape. */
    char path[256];
    snprintf(path, sizeof path, "%s/127.0.0.1@bcast0/g_bcast/offsets.json", offsets_dir);
    FILE *fp = fopen(path, "r");
    if (!fp) { /* the client id's IP is the host's first address, not always loopback */
        char cmd[300];
        snprintf(cmd, sizeof cmd, "ls %s/*@bcast0/g_bcast/offsets.json", offsets_dir);
        FILE *ls = popen(cmd, "r");
        cr_assert_not_null(ls);
        cr_assert_not_null(fgets(path, sizeof path, ls), "no offsets file under %s", offsets_dir);
        pclose(ls);
        path[strcspn(path, "\n")] = 0;
        fp = fopen(path, "r");
    }
    cr_assert_not_null(fp, "%s", path);
    char text[8192] = {0};
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    cr_expect_gt(len, 0);
    cr_expect(strstr(text, "\"offsetTable\"") && strstr(text, "\"topic\":\"" TOPIC "\""), "%s",
              text);
    /* A restarted instance goes on from its file: nothing old comes again. */
    seen_t again;
    seen_init(&again);
    member_t ma = {&again, 0};
    rmq_conf_t *c = consumer_conf("g_bcast", "bcast0");
    conf_set(c, "messageModel", "BROADCASTING");
    pc[0] = start_consumer(c, "*", &ma, false);
    produce(200, 20);
    cr_assert(wait_distinct(&s[1], 220, 15000));
    int64_t end = now_ms() + 10000;
    while (distinct(&again, 220) < 20 && now_ms() < end)
        sleep_ms(50);
    cr_expect_eq(distinct(&again, 220), 20);
    for (int i = 0; i < 200; i++)
        cr_expect_eq(again.count[i], 0, "message %d came again", i);
    for (int i = 0; i < 2; i++)
        rmq_push_consumer_destroy(pc[i]);
}

Test(push_consumer, orderly_keeps_queue_order_under_load) {
    seen_t s;
    seen_init(&s);
    s.suspend_every = 50;
    member_t m = {&s, 0};
    rmq_conf_t *c = consumer_conf("g_orderly", "orderly0");
    conf_set(c, "consumeThreadMin", "4");
    conf_set(c, "consumeThreadMax", "4");
    conf_set(c, "consumeMessageBatchMaxSize", "3");
    rmq_push_consumer_t *pc = start_consumer(c, "*", &m, true);
    feeder_t f = {0};
    produce(0, 1000);
    f.sent = 1000; /* the feeder continues from here while the backlog is consumed */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, feed, &f), 0);
    sleep_ms(2000);
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    cr_assert(wait_distinct(&s, f.sent, 15000), "got %d of %d", distinct(&s, f.sent), f.sent);
    printf("orderly: %d messages, %d deliveries\n", f.sent, s.total);
    cr_expect_eq(s.order_errors, 0);
    cr_expect_eq(s.reentry_errors, 0);
    int suspends = 0;
    for (int q = 0; q < QUEUES; q++)
        for (int k = 0; k < 64; k++)
            suspends += s.suspended[q][k];
    cr_expect_gt(suspends, 0);
    cr_expect_eq(s.total, f.sent, "every message exactly once");
    rmq_push_consumer_destroy(pc);
}

Test(push_consumer, tag_filter) {
    seen_t s;
    seen_init(&s);
    s.want_tag = "TagB";
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf("g_tags", "tags0"), "TagB", &m, false);
    produce(0, 200);
    int64_t end = now_ms() + 15000;
    while (distinct(&s, 200) < 100 && now_ms() < end)
        sleep_ms(50);
    sleep_ms(500);
    cr_expect_eq(distinct(&s, 200), 100);
    cr_expect_eq(s.tags_bad, 0);
    for (int i = 0; i < 200; i++)
        cr_expect_eq(s.count[i], i % 2, "message %d", i);
    rmq_push_consumer_destroy(pc);
}

Test(push_consumer, reconsume_later_comes_back_through_retry_topic) {
    seen_t s;
    seen_init(&s);
    s.retry_until = 2; /* fail twice, succeed the third time */
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf("g_retry", "retry0"), "*", &m, false);
    produce(0, 10);
    int64_t end = now_ms() + 15000;
    while (distinct_acked(&s, 10) < 10 && now_ms() < end)
        sleep_ms(50);
    cr_expect_eq(distinct_acked(&s, 10), 10);
    cr_expect_eq(s.retry_seen[0], 10);
    cr_expect_eq(s.retry_seen[1], 10);
    cr_expect_eq(s.retry_seen[2], 10);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(s.count[i], 3, "message %d delivered %d times", i, s.count[i]);
    rmq_push_consumer_destroy(pc);
}

/* Consumes 0..n-1 with a fresh consumer of group and destroys it. */
static void consume_all(const char *group, int n) {
    seen_t s;
    seen_init(&s);
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf(group, "restart0"), "*", &m, false);
    cr_assert(wait_distinct(&s, n, 15000), "got %d of %d", distinct(&s, n), n);
    rmq_push_consumer_destroy(pc);
}

/* A new consumer of group gets exactly first..first+n-1 and nothing before. */
static void consume_only_new(const char *group, int first, int n) {
    seen_t s;
    seen_init(&s);
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf(group, "restart1"), "*", &m, false);
    int64_t end = now_ms() + 15000;
    while (distinct(&s, first + n) < n && now_ms() < end)
        sleep_ms(50);
    sleep_ms(300);
    for (int i = 0; i < first + n; i++)
        cr_expect_eq(s.count[i], i >= first, "message %d seen %d times", i, s.count[i]);
    rmq_push_consumer_destroy(pc);
}

Test(push_consumer, offsets_survive_consumer_restart) {
    produce(0, 100);
    consume_all("g_offsets", 100);
    produce(100, 50);
    consume_only_new("g_offsets", 100, 50);
}

Test(push_consumer, offsets_survive_broker_restart) {
    produce(0, 100);
    consume_all("g_brestart", 100);
    rmq_broker_destroy(broker);
    boot_broker();
    produce(100, 50);
    consume_only_new("g_brestart", 100, 50);
}

Test(push_consumer, destroy_waits_for_listeners_and_loses_nothing) {
    seen_t s;
    seen_init(&s);
    s.sleep_ms = 300;
    member_t m = {&s, 0};
    rmq_conf_t *c = consumer_conf("g_destroy", "destroy0");
    conf_set(c, "consumeThreadMin", "8");
    conf_set(c, "consumeThreadMax", "8");
    rmq_push_consumer_t *pc = start_consumer(c, "*", &m, false);
    produce(0, 200);
    int64_t end = now_ms() + 10000;
    while (atomic_load(&s.running) < 8 && now_ms() < end)
        sleep_ms(10);
    cr_assert_eq(atomic_load(&s.running), 8, "the listeners never all ran");
    rmq_push_consumer_destroy(pc);
    cr_expect_eq(atomic_load(&s.running), 0, "destroy returned while a listener ran");
    /* Every listener call that started also finished: what it was given is acknowledged. */
    for (int i = 0; i < 200; i++)
        cr_expect(s.count[i] == 0 || s.acked[i] > 0, "message %d delivered, never acknowledged", i);
    int acked = distinct_acked(&s, 200);
    printf("destroy: %d of 200 acknowledged before destroy\n", acked);
    cr_expect_lt(acked, 200);
    /* Whatever was not acknowledged comes to the next consumer of the group. */
    s.sleep_ms = 0;
    rmq_push_consumer_t *again =
        start_consumer(consumer_conf("g_destroy", "destroy1"), "*", &m, false);
    end = now_ms() + 15000;
    while (distinct_acked(&s, 200) < 200 && now_ms() < end)
        sleep_ms(50);
    cr_expect_eq(distinct_acked(&s, 200), 200);
    rmq_push_consumer_destroy(again);
}

/* ---------------------------------------------------------------- backtracking */

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to ms until messages first..first+n-1 were each delivered at least times times. */
static bool wait_times(seen_t *s, int first, int n, int times, int ms) {
    int64_t end = now_ms() + ms;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int done = 0;
        for (int i = first; i < first + n; i++)
            done += s->count[i] >= times;
        pthread_mutex_unlock(&s->mu);
        if (done == n) return true;
        if (now_ms() >= end) return false;
        sleep_ms(50);
    }
}

Test(push_consumer, reset_offset_to_a_timestamp_consumes_again_from_there) {
    seen_t s;
    seen_init(&s);
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf("g_reset", "reset0"), "*", &m, false);
    produce(0, 100);
    cr_assert(wait_distinct(&s, 100, 15000));
    /* The offset for a time is the message stored then, else the nearer neighbour (RocketMQ's
     * consume-queue search): the point lies long after 0..99 and just before 100..199, so each
     * queue's first message at or after it is also the nearer one (under valgrind too). */
    sleep_ms(3000);
    int64_t point = wall_ms();
    produce(100, 100);
    cr_assert(wait_distinct(&s, 200, 15000));
    /* The running consumer drops nothing it should keep and gets 100..199 once more. */
    cr_assert_eq(rmq_broker_reset_offset(broker, "g_reset", TOPIC, point, 0), RMQ_OK);
    cr_assert(wait_times(&s, 100, 100, 2, 30000), "100..199 did not all come again");
    sleep_ms(500);
    for (int i = 0; i < 100; i++)
        cr_expect_eq(s.count[i], 1, "message %d (before the reset point) came %d times", i,
                     s.count[i]);
    rmq_push_consumer_destroy(pc);
    /* With nobody online the broker's stored offsets move: the next consumer starts there. */
    cr_assert_eq(rmq_broker_reset_offset(broker, "g_reset", TOPIC, point, 0), RMQ_OK);
    pc = start_consumer(consumer_conf("g_reset", "reset1"), "*", &m, false);
    cr_assert(wait_times(&s, 100, 100, 3, 30000), "100..199 did not come a third time");
    sleep_ms(500);
    for (int i = 0; i < 100; i++)
        cr_expect_eq(s.count[i], 1, "message %d came again after the offline reset", i);
    rmq_push_consumer_destroy(pc);
    cr_expect_eq(rmq_broker_reset_offset(broker, "g_reset", "NoSuchTopic", point, 0),
                 RMQ_ERR_TOPIC_NOT_EXIST);
    cr_expect_eq(rmq_broker_reset_offset(broker, NULL, TOPIC, point, 0), RMQ_ERR_INVALID_ARG);
    cr_expect_eq(rmq_broker_reset_offset(broker, "g_reset", TOPIC, -2, 0), RMQ_ERR_INVALID_ARG);
}

Test(push_consumer, reset_offset_rewinds_an_orderly_consumer_in_queue_order) {
    seen_t s;
    seen_init(&s);
    s.allow_rewind = true;
    member_t m = {&s, 0};
    rmq_conf_t *c = consumer_conf("g_reset_orderly", "oreset0");
    conf_set(c, "consumeThreadMin", "4");
    conf_set(c, "consumeThreadMax", "4");
    rmq_push_consumer_t *pc = start_consumer(c, "*", &m, true);
    produce(0, 100);
    cr_assert(wait_distinct(&s, 100, 15000));
    /* A point before every message: each queue goes back to its start. */
    cr_assert_eq(rmq_broker_reset_offset(broker, "g_reset_orderly", TOPIC, 1, 0), RMQ_OK);
    cr_assert(wait_times(&s, 0, 100, 2, 30000), "0..99 did not all come again");
    printf("orderly reset: %d rewinds, %d deliveries\n", s.rewinds, s.total);
    cr_expect_gt(s.rewinds, 0);
    cr_expect_eq(s.gap_errors, 0, "a queue skipped ahead");
    cr_expect_eq(s.reentry_errors, 0, "two threads consumed one queue at once");
    rmq_push_consumer_destroy(pc);
}

/* ---------------------------------------------------------------- faults */

/* Sends message i until a broker stores it: a restarting broker, or a cut connection, makes
 * sends fail for a while. A send that failed late may have been stored (a duplicate then). */
static void send_until_stored(rmq_producer_t *p, int i) {
    char body[16];
    snprintf(body, sizeof body, "%d", i);
    rmq_msg_t *m = rmq_msg_new(TOPIC);
    rmq_msg_set_body(m, body, strlen(body));
    rmq_msg_set_tags(m, i % 2 ? "TagB" : "TagA");
    int64_t end = now_ms() + 120000;
    rmq_err_t err;
    while ((err = rmq_producer_send(p, m, NULL)) != RMQ_OK && now_ms() < end)
        sleep_ms(100);
    rmq_msg_destroy(m);
    cr_assert_eq(err, RMQ_OK, "message %d never stored: %s", i, rmq_err_str(err));
}

/* feed() through faults: f->sent counts stored messages (0..sent-1). */
static void *feed_through_faults(void *arg) {
    feeder_t *f = arg;
    rmq_producer_t *p = new_producer();
    while (!atomic_load(&f->stop) && f->sent + 10 <= MAX_MSGS) {
        for (int k = 0; k < 10; k++)
            send_until_stored(p, f->sent + k);
        f->sent += 10;
        sleep_ms(20);
    }
    rmq_producer_destroy(p);
    return NULL;
}

/* Shuts down (both ways) every TCP connection this process opened to the broker, leaving the
 * in-process broker's own ends alone (their local port is the broker's): each client sees its
 * connection drop in the middle of whatever it was doing — the consumer's long-polling pull
 * is nearly always outstanding. Returns how many were cut. */
static int cut_client_connections(void) {
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int cut = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == dirfd(d)) continue;
        struct sockaddr_in local, peer;
        socklen_t local_len = sizeof local, peer_len = sizeof peer;
        if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0 ||
            local.sin_family != AF_INET)
            continue;
        if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0) continue;
        if (ntohs(peer.sin_port) != broker_port || ntohs(local.sin_port) == broker_port) continue;
        if (shutdown(fd, SHUT_RDWR) == 0) cut++;
    }
    closedir(d);
    return cut;
}

/* Waits (generously: pulls back off 3 s after an error, valgrind is slow) for every message
 * the feeder stored, and reports duplicates. */
static void expect_everything(seen_t *s, const feeder_t *f, const char *what) {
    bool all = wait_distinct(s, f->sent, 90000);
    printf("%s: %d messages stored, %d deliveries (%d duplicates)\n", what, f->sent, s->total,
           s->total - distinct(s, f->sent));
    cr_assert(all, "%s: got %d of %d", what, distinct(s, f->sent), f->sent);
}

Test(push_consumer, broker_restart_under_a_running_consumer_loses_nothing) {
    seen_t s;
    seen_init(&s);
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf("g_crash", "crash0"), "*", &m, false);
    feeder_t f = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, feed_through_faults, &f), 0);
    for (int round = 0; round < 2; round++) {
        sleep_ms(1500); /* consuming under load, pulls in flight */
        int before = distinct(&s, MAX_MSGS);
        rmq_broker_destroy(broker);
        sleep_ms(500);
        boot_broker(); /* same port, same store */
        printf("broker restart %d: %d messages consumed before it\n", round, before);
    }
    sleep_ms(1500);
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    expect_everything(&s, &f, "broker restarts");
    rmq_push_consumer_destroy(pc);
}

Test(push_consumer, connections_cut_mid_pull_lose_nothing) {
    seen_t s;
    seen_init(&s);
    member_t m = {&s, 0};
    rmq_push_consumer_t *pc = start_consumer(consumer_conf("g_cut", "cut0"), "*", &m, false);
    feeder_t f = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, feed_through_faults, &f), 0);
    int cuts = 0;
    for (int round = 0; round < 4; round++) {
        sleep_ms(1000);
        int n = cut_client_connections();
        cr_expect_gt(n, 0, "round %d found no connection to cut", round);
        cuts += n;
    }
    sleep_ms(1000);
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    printf("connection cuts: %d connections shut down in 4 rounds\n", cuts);
    expect_everything(&s, &f, "connection cuts");
    /* The consumer reconnected: messages sent now still arrive. */
    int first = f.sent;
    produce(first, 20);
    f.sent += 20;
    expect_everything(&s, &f, "after the cuts");
    rmq_push_consumer_destroy(pc);
}

Test(push_consumer, orderly_keeps_queue_order_across_a_broker_restart) {
    seen_t s;
    seen_init(&s);
    s.allow_rewind = true; /* offsets not yet stored may come again, in order */
    member_t m = {&s, 0};
    rmq_conf_t *c = consumer_conf("g_orderly_crash", "ocrash0");
    conf_set(c, "consumeThreadMin", "4");
    conf_set(c, "consumeThreadMax", "4");
    rmq_push_consumer_t *pc = start_consumer(c, "*", &m, true);
    feeder_t f = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, feed_through_faults, &f), 0);
    sleep_ms(1500);
    rmq_broker_destroy(broker);
    sleep_ms(500);
    boot_broker();
    sleep_ms(2000);
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    expect_everything(&s, &f, "orderly broker restart");
    printf("orderly broker restart: %d rewinds\n", s.rewinds);
    cr_expect_eq(s.gap_errors, 0, "a queue skipped ahead");
    cr_expect_eq(s.reentry_errors, 0, "two threads consumed one queue at once");
    rmq_push_consumer_destroy(pc);
}

Test(push_consumer, refuses_bad_use) {
    char err[256] = "";
    rmq_conf_t *c = consumer_conf("g_bad", "bad0");
    conf_set(c, "consumeThreadMin", "30");
    cr_expect_null(rmq_push_consumer_new(c, err, sizeof err));
    cr_expect(strstr(err, "consumeThreadMin") != NULL, "%s", err);
    rmq_conf_destroy(c);
    rmq_push_consumer_t *pc =
        rmq_push_consumer_new(consumer_conf("g_bad", "bad0"), err, sizeof err);
    cr_assert_not_null(pc);
    cr_expect_eq(rmq_push_consumer_start(pc, err, sizeof err), RMQ_ERR_STATE);
    cr_expect_eq(rmq_push_consumer_subscribe(pc, "bad topic", "*"), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(rmq_push_consumer_subscribe(pc, TOPIC, "*"), RMQ_OK);
    cr_expect_eq(rmq_push_consumer_start(pc, err, sizeof err), RMQ_ERR_STATE, "no listener");
    member_t m = {NULL, 0};
    cr_expect_eq(rmq_push_consumer_set_listener(pc, on_msgs, &m), RMQ_OK);
    cr_expect_eq(rmq_push_consumer_set_orderly_listener(pc, on_orderly, &m), RMQ_ERR_STATE);
    rmq_push_consumer_destroy(pc);
    rmq_push_consumer_destroy(NULL);
}
