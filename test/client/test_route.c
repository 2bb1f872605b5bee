/* lib/client pure parts: route -> publish list, queue choice, fault avoidance, the hash
 * selector, message checks, name-server lists and the callback pool. */
#include <criterion/criterion.h>

#include "client/client.h"

static void add_broker(proto_topic_route_t *r, const char *name, int64_t id, const char *addr) {
    proto_broker_data_t *b = proto_topic_route_add_broker(r);
    b->broker_name = cm_strdup(name);
    b->cluster = cm_strdup("DefaultCluster");
    proto_broker_data_add_addr(b, id, addr);
}

static void add_queue(proto_topic_route_t *r, const char *name, int rq, int wq, int perm) {
    proto_queue_data_t *q = proto_topic_route_add_queue(r);
    q->broker_name = cm_strdup(name);
    q->read_queue_nums = rq;
    q->write_queue_nums = wq;
    q->perm = perm;
}

static void expect_queue(const client_pub_t *p, size_t i, const char *broker, int qid) {
    cr_assert_lt(i, p->count);
    cr_expect_str_eq(p->queues[i].broker_name, broker, "queue %zu", i);
    cr_expect_eq(p->queues[i].queue_id, qid, "queue %zu", i);
}

Test(pub, writable_masters_sorted_by_broker) {
    proto_topic_route_t r = {0};
    add_broker(&r, "b", 0, "127.0.0.1:2");
    add_broker(&r, "a", 0, "127.0.0.1:1");
    add_broker(&r, "c", 1, "127.0.0.1:3"); /* a slave only: not writable */
    add_broker(&r, "d", 0, "127.0.0.1:4");
    add_queue(&r, "b", 2, 2, 6);
    add_queue(&r, "c", 4, 4, 6);
    add_queue(&r, "a", 3, 3, 6);
    add_queue(&r, "d", 4, 4, 4); /* read only */
    add_queue(&r, "e", 4, 4, 6); /* no broker data */
    client_pub_t *p = client_pub_from_route(&r, 0);
    cr_assert_eq(r.broker_count, 0, "the route moved into the list");
    cr_assert_eq(p->count, 5);
    expect_queue(p, 0, "a", 0);
    expect_queue(p, 2, "a", 2);
    expect_queue(p, 3, "b", 0);
    expect_queue(p, 4, "b", 1);
    cr_expect_str_eq(client_pub_master(p, "b"), "127.0.0.1:2");
    cr_expect_null(client_pub_master(p, "c"));
    cr_expect_not(p->order_topic);
    client_pub_unref(p);
}

Test(pub, order_topic_conf_wins) {
    proto_topic_route_t r = {0};
    add_broker(&r, "x", 0, "127.0.0.1:1");
    add_queue(&r, "x", 8, 8, 6);
    r.order_topic_conf = cm_strdup("y:2;x:3;bad;:4");
    client_pub_t *p = client_pub_from_route(&r, 0);
    cr_assert(p->order_topic);
    cr_assert_eq(p->count, 5);
    expect_queue(p, 0, "y", 0);
    expect_queue(p, 1, "y", 1);
    expect_queue(p, 2, "x", 0);
    expect_queue(p, 4, "x", 2);
    client_pub_unref(p);
}

Test(pub, default_topic_route_capped) {
    proto_topic_route_t r = {0};
    add_broker(&r, "a", 0, "127.0.0.1:1");
    add_broker(&r, "b", 0, "127.0.0.1:2");
    add_queue(&r, "a", 8, 8, 7);
    add_queue(&r, "b", 2, 8, 7); /* min(4, read 2) */
    client_pub_t *p = client_pub_from_route(&r, 4);
    cr_assert(p->from_default);
    cr_assert_eq(p->count, 6);
    expect_queue(p, 3, "a", 3);
    expect_queue(p, 5, "b", 1);
    cr_expect_eq(p->route.queues[1].write_queue_nums, 2);
    client_pub_unref(p);
}

Test(pub, empty_route_gives_empty_list) {
    proto_topic_route_t r = {0};
    client_pub_t *p = client_pub_from_route(&r, 0);
    cr_assert_eq(p->count, 0);
    cr_assert_null(client_pub_select(p, NULL, NULL, 0));
    client_pub_unref(p);
}

static client_pub_t *two_brokers(void) {
    proto_topic_route_t r = {0};
    add_broker(&r, "a", 0, "127.0.0.1:1");
    add_broker(&r, "b", 0, "127.0.0.1:2");
    add_queue(&r, "a", 2, 2, 6);
    add_queue(&r, "b", 2, 2, 6);
    return client_pub_from_route(&r, 0);
}

Test(select, round_robin_covers_every_queue_evenly) {
    client_pub_t *p = two_brokers();
    int hits[4] = {0};
    for (int i = 0; i < 400; i++) {
        const client_queue_t *q = client_pub_select(p, NULL, NULL, 0);
        hits[(q->broker_name[0] - 'a') * 2 + q->queue_id]++;
    }
    for (int i = 0; i < 4; i++)
        cr_expect_eq(hits[i], 100, "queue %d", i);
    client_pub_unref(p);
}

Test(select, retry_avoids_the_last_broker) {
    client_pub_t *p = two_brokers();
    for (int i = 0; i < 20; i++)
        cr_expect_str_eq(client_pub_select(p, "a", NULL, 0)->broker_name, "b");
    client_pub_unref(p);
}

Test(select, single_broker_is_used_even_when_avoided) {
    proto_topic_route_t r = {0};
    add_broker(&r, "a", 0, "127.0.0.1:1");
    add_queue(&r, "a", 2, 2, 6);
    client_pub_t *p = client_pub_from_route(&r, 0);
    cr_expect_str_eq(client_pub_select(p, "a", NULL, 0)->broker_name, "a");
    client_pub_unref(p);
}

Test(select, faulty_broker_skipped_until_its_time_is_up) {
    client_pub_t *p = two_brokers();
    client_faults_t *f = client_faults_new();
    client_faults_update(f, "a", CLIENT_FAILED_LATENCY, 1000); /* avoided for 600 s */
    for (int i = 0; i < 20; i++)
        cr_expect_str_eq(client_pub_select(p, NULL, f, 2000)->broker_name, "b");
    /* Both avoided: something is still chosen. */
    client_faults_update(f, "b", CLIENT_FAILED_LATENCY, 1000);
    cr_expect_not_null(client_pub_select(p, NULL, f, 2000));
    /* Later than 600 s: a is back. */
    int a = 0;
    for (int i = 0; i < 20; i++)
        a += client_pub_select(p, NULL, f, 1000 + 600000)->broker_name[0] == 'a';
    cr_expect_gt(a, 0);
    cr_expect(client_faults_available(f, "a", 601000));
    cr_expect_not(client_faults_available(f, "a", 600999));
    cr_expect(client_faults_available(f, "never-seen", 0));
    client_faults_destroy(f);
    client_pub_unref(p);
}

Test(faults, rocketmq_498_table) {
    cr_expect_eq(client_fault_avoid_ms(0), 0);
    cr_expect_eq(client_fault_avoid_ms(100), 0);
    cr_expect_eq(client_fault_avoid_ms(549), 0);
    cr_expect_eq(client_fault_avoid_ms(550), 30000);
    cr_expect_eq(client_fault_avoid_ms(1000), 60000);
    cr_expect_eq(client_fault_avoid_ms(2000), 120000);
    cr_expect_eq(client_fault_avoid_ms(3000), 180000);
    cr_expect_eq(client_fault_avoid_ms(15000), 600000);
    cr_expect_eq(client_fault_avoid_ms(CLIENT_FAILED_LATENCY), 600000);
}

Test(hash, java_select_message_queue_by_hash) {
    /* Values from Java: |"x".hashCode() % 8|. */
    cr_expect_eq(client_hash_index("hello", 8), 2);              /* 99162322 */
    cr_expect_eq(client_hash_index("order-1", 8), 6);            /* -1207111310 */
    cr_expect_eq(client_hash_index("order-2", 8), 5);            /* -1207111309 */
    cr_expect_eq(client_hash_index("key-17", 8), 4);             /* -1134722988 */
    cr_expect_eq(client_hash_index("polygenelubricants", 8), 0); /* Integer.MIN_VALUE */
    cr_expect_eq(client_hash_index("polygenelubricants", 3), 2);
    cr_expect_eq(client_hash_index("anything", 1), 0);
}

Test(check, topics) {
    char why[256];
    char longest[129];
    memset(longest, 'a', 128);
    longest[128] = '\0';
    cr_expect_eq(client_check_topic("", why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_topic(NULL, why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_topic(longest, why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect(strstr(why, "128"), "%s", why);
    longest[127] = '\0';
    cr_expect_eq(client_check_topic(longest, why, sizeof why), RMQ_OK);
    cr_expect_eq(client_check_topic("a b", why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_topic("a.b", why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_topic("SCHEDULE_TOPIC_XXXX", why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_topic("RMQ_SYS_TRANS_HALF_TOPIC", why, sizeof why),
                 RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_topic("%RETRY%g|x_y-Z9", why, sizeof why), RMQ_OK);
}

Test(check, messages) {
    char why[256];
    rmq_msg_t *m = rmq_msg_new("T");
    cr_expect_eq(client_check_msg(m, 4, why, sizeof why), RMQ_ERR_MESSAGE_ILLEGAL);
    rmq_msg_set_body(m, "abcd", 4);
    cr_expect_eq(client_check_msg(m, 4, why, sizeof why), RMQ_OK);
    cr_expect_eq(client_check_msg(m, 3, why, sizeof why), RMQ_ERR_MSG_TOO_LARGE);
    cr_expect(strstr(why, "maxMessageSize"), "%s", why);
    char *big = cm_malloc(33000);
    memset(big, 'v', 32999);
    big[32999] = '\0';
    cr_assert_eq(rmq_msg_set_property(m, "p", big), RMQ_OK);
    cr_expect_eq(client_check_msg(m, 4, why, sizeof why), RMQ_ERR_MESSAGE_ILLEGAL);
    cm_free(big);
    rmq_msg_set_topic(m, "bad topic");
    cr_expect_eq(client_check_msg(m, 4, why, sizeof why), RMQ_ERR_BAD_TOPIC);
    cr_expect_eq(client_check_msg(NULL, 4, why, sizeof why), RMQ_ERR_INVALID_ARG);
    rmq_msg_destroy(m);
}

Test(addrs, split_trims_and_drops_empties) {
    proto_strlist_t l = {0};
    client_split_addrs(" 127.0.0.1:9876; ;127.0.0.2:9876 ;", &l);
    cr_assert_eq(l.count, 2);
    cr_expect_str_eq(l.items[0], "127.0.0.1:9876");
    cr_expect_str_eq(l.items[1], "127.0.0.2:9876");
    proto_strlist_free(&l);
    client_split_addrs(NULL, &l);
    cr_expect_eq(l.count, 0);
}

typedef struct {
    client_pool_t *pool;
    atomic_int ran, on_pool;
} pool_probe_t;

static void probe_job(void *arg) {
    pool_probe_t *p = arg;
    if (client_pool_on_thread(p->pool)) atomic_fetch_add(&p->on_pool, 1);
    atomic_fetch_add(&p->ran, 1);
}

Test(pool, every_job_runs_once_on_a_pool_thread_before_destroy_returns) {
    rmq_err_t err = RMQ_OK;
    pool_probe_t probe = {0};
    probe.pool = client_pool_new(2, &err);
    cr_assert_not_null(probe.pool);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(client_pool_post(probe.pool, probe_job, &probe), RMQ_OK);
    cr_expect_not(client_pool_on_thread(probe.pool));
    client_pool_destroy(probe.pool);
    cr_expect_eq(atomic_load(&probe.ran), 1000);
    cr_expect_eq(atomic_load(&probe.on_pool), 1000);
}
