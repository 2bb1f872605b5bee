/* The pull consumer against an in-process broker, through the public API: delivery once and
 * in queue order, tag filters, a group of two splitting and re-taking queues, assignment by
 * hand, seeks, commits resumed by a new consumer, offsets that survive a broker restart. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rmq/rmq.h>

#define TOPIC "PullTopic"
#define QUEUES 8

static rmq_broker_t *broker;
static char store_dir[64];

static rmq_conf_t *broker_conf(void) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "listenPort", "0", err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_conf_set(c, "storePathRootDir", store_dir, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "brokerName", "broker-a", err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "waitTimeMillsInSendQueue", "10000", err, sizeof err), RMQ_OK);
    return c;
}

static void boot_broker(void) {
    char err[256];
    broker = rmq_broker_new(broker_conf(), err, sizeof err);
    cr_assert_not_null(broker, "%s", err);
    cr_assert_eq(rmq_broker_start(broker, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_eq(rmq_broker_create_topic(broker, TOPIC, QUEUES, 6), RMQ_OK);
}

static void start_broker(void) {
    snprintf(store_dir, sizeof store_dir, "/tmp/rmq-pullc-XXXXXX");
    cr_assert_not_null(mkdtemp(store_dir));
    boot_broker();
}

static void stop_broker(void) {
    rmq_broker_destroy(broker);
    broker = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(pull_consumer, .init = start_broker, .fini = stop_broker);

static rmq_pull_consumer_t *consumer_with(const char *group, const char *key, const char *value) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "consumerGroup", group, err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "brokerSuspendMaxTimeMillis", "1000", err, sizeof err), RMQ_OK);
    if (key) cr_assert_eq(rmq_conf_set(c, key, value, err, sizeof err), RMQ_OK, "%s", err);
    rmq_pull_consumer_t *pc = rmq_pull_consumer_new(c, err, sizeof err);
    cr_assert_not_null(pc, "%s", err);
    return pc;
}

static void start(rmq_pull_consumer_t *pc) {
    char err[256];
    cr_assert_eq(rmq_pull_consumer_start(pc, err, sizeof err), RMQ_OK, "%s", err);
}

/* Sends count messages, body "<i>", tags alternating TagA / TagB, round robin over queues. */
static void produce(int first, int count) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_assert_eq(rmq_conf_set(c, "producerGroup", "pg", err, sizeof err), RMQ_OK);
    rmq_producer_t *p = rmq_producer_new(c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(rmq_producer_start(p, err, sizeof err), RMQ_OK, "%s", err);
    for (int i = first; i < first + count; i++) {
        char body[16];
        snprintf(body, sizeof body, "%d", i);
        rmq_msg_t *m = rmq_msg_new(TOPIC);
        rmq_msg_set_body(m, body, strlen(body));
        rmq_msg_set_tags(m, i % 2 ? "TagB" : "TagA");
        cr_assert_eq(rmq_producer_send(p, m, NULL), RMQ_OK);
        rmq_msg_destroy(m);
    }
    rmq_producer_destroy(p);
}

/* Polls until want messages came (or 20 s of nothing new); records each body in seen[]
 * (counts) and checks per-queue offsets ascend. Returns how many came. */
typedef struct seen {
    int count[1024];
    int64_t last[QUEUES];
    int total;
} seen_t;

static void seen_init(seen_t *s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < QUEUES; i++)
        s->last[i] = -1;
}

static int record(seen_t *s, rmq_msg_t **msgs, int n) {
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *b = rmq_msg_body(msgs[i], &len);
        char text[16] = {0};
        memcpy(text, b, len < 15 ? len : 15);
        int v = atoi(text);
        cr_assert(v >= 0 && v < 1024);
        s->count[v]++;
        int q = rmq_msg_queue_id(msgs[i]);
        cr_assert(q >= 0 && q < QUEUES);
        cr_expect_gt(rmq_msg_queue_offset(msgs[i]), s->last[q], "queue %d out of order", q);
        s->last[q] = rmq_msg_queue_offset(msgs[i]);
        cr_expect_str_eq(rmq_msg_broker_name(msgs[i]), "broker-a");
        rmq_msg_destroy(msgs[i]);
        s->total++;
    }
    return n;
}

/* One poll of up to 32 messages, waiting at most timeout_ms. */
static int poll_once(rmq_pull_consumer_t *pc, seen_t *s, int64_t timeout_ms) {
    rmq_msg_t *msgs[32];
    int n = rmq_pull_consumer_poll(pc, timeout_ms, msgs, 32);
    cr_assert_geq(n, 0);
    return record(s, msgs, n);
}

/* Polls until want messages came, or 20 s passed with nothing new. */
static int poll_into(rmq_pull_consumer_t *pc, seen_t *s, int want) {
    int got = 0;
    int64_t idle = 0;
    while (got < want && idle < 20000) {
        int n = poll_once(pc, s, 200);
        idle = n ? 0 : idle + 200;
        got += n;
    }
    return got;
}

static size_t assigned(rmq_pull_consumer_t *pc) {
    rmq_mq_t *qs = NULL;
    size_t n = 0;
    cr_assert_eq(rmq_pull_consumer_assignment(pc, &qs, &n), RMQ_OK);
    rmq_free(qs);
    return n;
}

/* Waits (bounded) until the consumer owns want queues. */
static bool wait_assigned(rmq_pull_consumer_t *pc, size_t want) {
    for (int i = 0; i < 300; i++) {
        if (assigned(pc) == want) return true;
        usleep(50 * 1000);
    }
    return false;
}

Test(pull_consumer, every_message_once_in_queue_order) {
    rmq_pull_consumer_t *pc = consumer_with("g_all", NULL, NULL);
    cr_assert_eq(rmq_pull_consumer_subscribe(pc, TOPIC, "*"), RMQ_OK);
    start(pc);
    cr_assert(wait_assigned(pc, QUEUES));
    produce(0, 200);
    seen_t s;
    seen_init(&s);
    cr_assert_eq(poll_into(pc, &s, 200), 200);
    for (int i = 0; i < 200; i++)
        cr_expect_eq(s.count[i], 1, "message %d seen %d times", i, s.count[i]);
    rmq_msg_t *extra[4];
    cr_expect_eq(rmq_pull_consumer_poll(pc, 300, extra, 4), 0);
    rmq_pull_consumer_destroy(pc);
}

Test(pull_consumer, tag_filter) {
    rmq_pull_consumer_t *pc = consumer_with("g_tags", NULL, NULL);
    cr_assert_eq(rmq_pull_consumer_subscribe(pc, TOPIC, "TagB"), RMQ_OK);
    start(pc);
    cr_assert(wait_assigned(pc, QUEUES));
    produce(0, 100);
    seen_t s;
    seen_init(&s);
    cr_assert_eq(poll_into(pc, &s, 50), 50);
    for (int i = 0; i < 100; i++)
        cr_expect_eq(s.count[i], i % 2, "message %d", i);
    rmq_pull_consumer_destroy(pc);
}

Test(pull_consumer, group_of_two_splits_then_one_takes_all) {
    rmq_pull_consumer_t *a = consumer_with("g_two", NULL, NULL);
    rmq_pull_consumer_t *b = consumer_with("g_two", NULL, NULL);
    cr_assert_eq(rmq_pull_consumer_subscribe(a, TOPIC, "*"), RMQ_OK);
    cr_assert_eq(rmq_pull_consumer_subscribe(b, TOPIC, "*"), RMQ_OK);
    start(a);
    cr_assert(wait_assigned(a, QUEUES));
    start(b);
    cr_assert(wait_assigned(a, QUEUES / 2), "a owns %zu", assigned(a));
    cr_assert(wait_assigned(b, QUEUES / 2), "b owns %zu", assigned(b));
    produce(0, 160);
    seen_t s;
    seen_init(&s);
    int from_a = 0, from_b = 0;
    for (int idle = 0; s.total < 160 && idle < 200;) {
        int na = poll_once(a, &s, 100), nb = poll_once(b, &s, 100);
        from_a += na;
        from_b += nb;
        idle = na + nb ? 0 : idle + 1;
    }
    cr_expect_eq(from_a, 80);
    cr_expect_eq(from_b, 80);
    for (int i = 0; i < 160; i++)
        cr_expect_eq(s.count[i], 1, "message %d seen %d times", i, s.count[i]);

    rmq_pull_consumer_destroy(b); /* commits, unregisters: the broker tells a */
    cr_assert(wait_assigned(a, QUEUES), "a owns %zu", assigned(a));
    produce(160, 80);
    cr_assert_eq(poll_into(a, &s, 80), 80);
    for (int i = 160; i < 240; i++)
        cr_expect_eq(s.count[i], 1, "message %d seen %d times", i, s.count[i]);
    rmq_pull_consumer_destroy(a);
}

static rmq_mq_t queue(int id) {
    rmq_mq_t q;
    memset(&q, 0, sizeof q);
    snprintf(q.topic, sizeof q.topic, "%s", TOPIC);
    snprintf(q.broker_name, sizeof q.broker_name, "broker-a");
    q.queue_id = id;
    return q;
}

Test(pull_consumer, assign_and_seek) {
    produce(0, 80); /* 10 per queue */
    rmq_pull_consumer_t *pc =
        consumer_with("g_assign", "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET");
    rmq_mq_t q3 = queue(3);
    cr_assert_eq(rmq_pull_consumer_assign(pc, &q3, 1), RMQ_OK);
    cr_expect_eq(rmq_pull_consumer_subscribe(pc, TOPIC, "*"), RMQ_ERR_STATE);
    start(pc);
    rmq_mq_t *all = NULL;
    size_t n = 0;
    cr_assert_eq(rmq_pull_consumer_fetch_queues(pc, TOPIC, &all, &n), RMQ_OK);
    cr_expect_eq(n, QUEUES);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(all[i].queue_id, (int32_t)i);
    rmq_free(all);

    seen_t s;
    seen_init(&s);
    cr_assert_eq(poll_into(pc, &s, 10), 10);
    cr_expect_eq(s.total, 10);
    cr_expect_eq(s.last[3], 9);
    for (int q = 0; q < QUEUES; q++)
        if (q != 3) cr_expect_eq(s.last[q], -1);

    cr_assert_eq(rmq_pull_consumer_seek(pc, &q3, 4), RMQ_OK);
    rmq_msg_t *m[32];
    int got = rmq_pull_consumer_poll(pc, 5000, m, 32);
    cr_assert_gt(got, 0);
    cr_expect_eq(rmq_msg_queue_offset(m[0]), 4);
    for (int i = 0; i < got; i++)
        rmq_msg_destroy(m[i]);

    cr_assert_eq(rmq_pull_consumer_seek_to_begin(pc, &q3), RMQ_OK);
    got = rmq_pull_consumer_poll(pc, 5000, m, 32);
    cr_assert_gt(got, 0);
    cr_expect_eq(rmq_msg_queue_offset(m[0]), 0);
    int64_t ts = rmq_msg_store_timestamp(m[0]);
    for (int i = 0; i < got; i++)
        rmq_msg_destroy(m[i]);

    cr_assert_eq(rmq_pull_consumer_seek_timestamp(pc, &q3, ts), RMQ_OK);
    got = rmq_pull_consumer_poll(pc, 5000, m, 32);
    cr_assert_gt(got, 0);
    cr_expect_eq(rmq_msg_queue_offset(m[0]), 0);
    for (int i = 0; i < got; i++)
        rmq_msg_destroy(m[i]);

    cr_assert_eq(rmq_pull_consumer_seek_to_end(pc, &q3), RMQ_OK);
    cr_expect_eq(rmq_pull_consumer_poll(pc, 300, m, 32), 0);
    cr_expect_eq(rmq_pull_consumer_seek(pc, &q3, 11), RMQ_ERR_INVALID_ARG);
    rmq_mq_t q5 = queue(5);
    cr_expect_eq(rmq_pull_consumer_seek(pc, &q5, 0), RMQ_ERR_NOT_FOUND);
    rmq_pull_consumer_destroy(pc);
}

/* Consumes 40 of 80, commits, and lets a new consumer of the group go on from there. */
static void consume_half_and_commit(const char *group) {
    rmq_pull_consumer_t *pc = consumer_with(group, "autoCommit", "false");
    cr_assert_eq(rmq_pull_consumer_subscribe(pc, TOPIC, "*"), RMQ_OK);
    start(pc);
    cr_assert(wait_assigned(pc, QUEUES));
    produce(0, 80);
    seen_t s;
    seen_init(&s);
    cr_assert_eq(poll_into(pc, &s, 80), 80);
    cr_assert_eq(rmq_pull_consumer_commit(pc), RMQ_OK);
    rmq_mq_t q0 = queue(0);
    int64_t off = -1;
    cr_assert_eq(rmq_pull_consumer_committed(pc, &q0, &off), RMQ_OK);
    cr_expect_eq(off, 10);
    rmq_pull_consumer_destroy(pc);
    produce(80, 40);
}

static void resume_after_commit(const char *group) {
    rmq_pull_consumer_t *pc = consumer_with(group, NULL, NULL);
    cr_assert_eq(rmq_pull_consumer_subscribe(pc, TOPIC, "*"), RMQ_OK);
    start(pc);
    seen_t s;
    seen_init(&s);
    cr_assert_eq(poll_into(pc, &s, 40), 40);
    for (int i = 0; i < 120; i++)
        cr_expect_eq(s.count[i], i >= 80, "message %d seen %d times", i, s.count[i]);
    rmq_pull_consumer_destroy(pc);
}

Test(pull_consumer, commit_then_new_consumer_resumes) {
    consume_half_and_commit("g_commit");
    resume_after_commit("g_commit");
}

Test(pull_consumer, offsets_survive_broker_restart) {
    consume_half_and_commit("g_restart");
    rmq_broker_destroy(broker);
    boot_broker();
    resume_after_commit("g_restart");
}

Test(pull_consumer, refuses_bad_configuration) {
    char err[256] = "";
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", rmq_broker_addr(broker), err, sizeof err), RMQ_OK);
    cr_expect_null(rmq_pull_consumer_new(c, err, sizeof err));
    cr_expect(strstr(err, "consumerGroup") != NULL, "%s", err);
    rmq_conf_destroy(c);
    rmq_pull_consumer_t *pc = consumer_with("g_bad", NULL, NULL);
    rmq_msg_t *m[1];
    cr_expect_eq(rmq_pull_consumer_poll(pc, 0, m, 1), RMQ_ERR_NOT_STARTED);
    rmq_pull_consumer_destroy(pc);
    rmq_pull_consumer_destroy(NULL);
}
