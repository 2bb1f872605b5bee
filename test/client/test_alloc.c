/* lib/client queue allocation: RocketMQ 4.9.8's strategies on hand-computed cases, on cases
 * from an independent consistent-hash reference, and on properties over random groups. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/alloc.h"
#include "common/cm.h"

#define MAX_MQS 64
#define MAX_CIDS 16

/* A topic's queues: brokers × per_broker queues, in RocketMQ's sorted order. */
typedef struct topic_fixture {
    client_mq_t mqs[MAX_MQS];
    size_t n;
} topic_fixture_t;

static const char *const broker_names[] = {"broker-a", "broker-b", "broker-c", "broker-d"};

static topic_fixture_t make_topic(const char *topic, int brokers, int per_broker) {
    topic_fixture_t t = {.n = 0};
    for (int b = 0; b < brokers; b++)
        for (int q = 0; q < per_broker; q++)
            t.mqs[t.n++] = (client_mq_t){topic, broker_names[b], q};
    return t;
}

/* Checks that fn gives cid exactly the queue indexes in want (count n_want). */
static void expect_owned(client_alloc_fn *fn, const char *cid, const char *const *cids,
                         size_t n_cids, const topic_fixture_t *t, const size_t *want,
                         size_t n_want) {
    size_t owned[MAX_MQS];
    size_t n = fn(cid, cids, n_cids, t->mqs, t->n, owned);
    cr_assert_eq(n, n_want, "%s owns %zu queues, expected %zu", cid, n, n_want);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(owned[i], want[i], "%s: owned[%zu] = %zu, expected %zu", cid, i, owned[i],
                     want[i]);
}

#define EXPECT(fn, cid, cids, t, ...)                                                              \
    do {                                                                                           \
        const size_t want_[] = {__VA_ARGS__};                                                      \
        expect_owned(fn, cid, cids, sizeof cids / sizeof cids[0], &t, want_,                       \
                     sizeof want_ / sizeof want_[0]);                                              \
    } while (0)
#define EXPECT_NONE(fn, cid, cids, t)                                                              \
    expect_owned(fn, cid, cids, sizeof cids / sizeof cids[0], &t, NULL, 0)

static const char *const three[] = {"192.168.0.1@1001", "192.168.0.2@1002", "192.168.0.3@1003"};
static const char *const five[] = {"10.0.0.1@DEFAULT", "10.0.0.2@DEFAULT", "10.0.0.3@DEFAULT",
                                   "10.0.0.4@DEFAULT", "10.0.0.5@DEFAULT"};
static const char *const one[] = {"10.0.0.1@DEFAULT"};

/* ---------------------------------------------------------------- averagely */

Test(averagely, three_clients_sixteen_queues) {
    /* M 16, C 3, mod 1: client 0 takes 6 from 0; the others 5, starting at i*5 + 1. */
    topic_fixture_t t = make_topic("TopicTest", 2, 8);
    EXPECT(client_alloc_averagely, three[0], three, t, 0, 1, 2, 3, 4, 5);
    EXPECT(client_alloc_averagely, three[1], three, t, 6, 7, 8, 9, 10);
    EXPECT(client_alloc_averagely, three[2], three, t, 11, 12, 13, 14, 15);
}

Test(averagely, spec_worked_example) {
    /* client.md §5: a0..a3 b0..b3 over c0 c1 c2 -> a0 a1 a2 | a3 b0 b1 | b2 b3. */
    topic_fixture_t t = make_topic("T", 2, 4);
    EXPECT(client_alloc_averagely, three[0], three, t, 0, 1, 2);
    EXPECT(client_alloc_averagely, three[1], three, t, 3, 4, 5);
    EXPECT(client_alloc_averagely, three[2], three, t, 6, 7);
}

Test(averagely, more_clients_than_queues) {
    /* M 4 <= C 5: size 1, mod 4; clients 0-3 start at their index, client 4 at 8 (none). */
    topic_fixture_t t = make_topic("T", 1, 4);
    for (size_t i = 0; i < 4; i++)
        EXPECT(client_alloc_averagely, five[i], five, t, i);
    EXPECT_NONE(client_alloc_averagely, five[4], five, t);
}

Test(averagely, single_client_and_strangers) {
    topic_fixture_t t = make_topic("T", 2, 2);
    EXPECT(client_alloc_averagely, one[0], one, t, 0, 1, 2, 3);
    EXPECT_NONE(client_alloc_averagely, "10.9.9.9@DEFAULT", five, t);
    EXPECT_NONE(client_alloc_averagely, "", five, t);
    size_t owned[1];
    cr_expect_eq(client_alloc_averagely(NULL, five, 5, t.mqs, t.n, owned), 0);
    cr_expect_eq(client_alloc_averagely(five[0], five, 5, t.mqs, 0, owned), 0, "no queues");
    cr_expect_eq(client_alloc_averagely(five[0], five, 0, t.mqs, t.n, owned), 0, "no clients");
}

/* ---------------------------------------------------------------- by circle */

Test(by_circle, three_clients_sixteen_queues) {
    topic_fixture_t t = make_topic("TopicTest", 2, 8);
    EXPECT(client_alloc_by_circle, three[0], three, t, 0, 3, 6, 9, 12, 15);
    EXPECT(client_alloc_by_circle, three[1], three, t, 1, 4, 7, 10, 13);
    EXPECT(client_alloc_by_circle, three[2], three, t, 2, 5, 8, 11, 14);
}

Test(by_circle, spec_worked_example) {
    /* client.md §5: a0 a3 b2 | a1 b0 b3 | a2 b1. */
    topic_fixture_t t = make_topic("T", 2, 4);
    EXPECT(client_alloc_by_circle, three[0], three, t, 0, 3, 6);
    EXPECT(client_alloc_by_circle, three[1], three, t, 1, 4, 7);
    EXPECT(client_alloc_by_circle, three[2], three, t, 2, 5);
}

Test(by_circle, more_clients_than_queues_one_client_strangers) {
    topic_fixture_t t = make_topic("T", 1, 4);
    for (size_t i = 0; i < 4; i++)
        EXPECT(client_alloc_by_circle, five[i], five, t, i);
    EXPECT_NONE(client_alloc_by_circle, five[4], five, t);
    EXPECT(client_alloc_by_circle, one[0], one, t, 0, 1, 2, 3);
    EXPECT_NONE(client_alloc_by_circle, "10.9.9.9@DEFAULT", five, t);
}

/* ---------------------------------------------------------------- consistent hash */

/* Expected owners come from an independent reference written from the Java source (not from
 * this implementation), run once with python3:
 *
 *   import hashlib, bisect
 *   def h(s): return int.from_bytes(hashlib.md5(s.encode()).digest()[:4], 'big')
 *   def owners(cids, mqs, v=10):
 *       ring = {}
 *       for c in cids:
 *           for i in range(v): ring[h("%s-%d" % (c, i))] = c
 *       keys = sorted(ring)
 *       out = []
 *       for t, b, q in mqs:
 *           x = h("MessageQueue [topic=%s, brokerName=%s, queueId=%d]" % (t, b, q))
 *           j = bisect.bisect_left(keys, x)
 *           out.append(cids.index(ring[keys[j % len(keys)]]))
 *       return out
 *
 * owners(three, TopicTest broker-a/b × 8)      = 2 2 0 2 2 0 2 2 0 0 2 2 0 0 2 2
 * owners(three, same, v=3)                     = 2 2 0 1 1 1 1 2 1 0 1 2 1 2 1 2
 * owners(five, T broker-a × 4)                 = 4 1 4 2
 * owners(four, OrderTopic broker-a..d × 8)     = 1 0 1 0 1 1 0 1 1 1 1 0 1 2 1 0
 *                                                1 2 1 0 0 1 1 3 0 2 1 2 3 1 2 1
 *   (with v=9 or v=11 queues 10, 26, 29 or 5, 12, 21 move: the case pins the count at 10)
 * hashes: "" d41d8cd9, "a" 0cc175b9, "abc" 90015098, "192.168.0.1@1001-0" 8b4127db,
 * "MessageQueue [topic=TopicTest, brokerName=broker-a, queueId=0]" 767d59fc; b"x"*n for n =
 * 55 56 63 64 65 200: 04364420 668a72d5 7dc2ca20 c1bb4f81 1bc93205 30a83621. */

static uint32_t ring_hash(const char *s) {
    return client_alloc_ring_hash(s, strlen(s));
}

Test(consistent_hash, ring_hash_is_md5_prefix_big_endian) {
    cr_expect_eq(ring_hash(""), 0xd41d8cd9u);
    cr_expect_eq(ring_hash("a"), 0x0cc175b9u);
    cr_expect_eq(ring_hash("abc"), 0x90015098u);
    cr_expect_eq(ring_hash("12345678901234567890123456789012345678901234567890123456789012345678"
                           "901234567890"),
                 0x57edf4a2u, "RFC 1321 test suite, two blocks");
    cr_expect_eq(ring_hash("192.168.0.1@1001-0"), 0x8b4127dbu);
    cr_expect_eq(ring_hash("MessageQueue [topic=TopicTest, brokerName=broker-a, queueId=0]"),
                 0x767d59fcu);
    /* Padding edges: the length field fits in the last block or needs one more. */
    const size_t lens[] = {55, 56, 63, 64, 65, 200};
    const uint32_t want[] = {0x04364420, 0x668a72d5, 0x7dc2ca20,
                             0xc1bb4f81, 0x1bc93205, 0x30a83621};
    char xs[200];
    memset(xs, 'x', sizeof xs);
    for (size_t i = 0; i < 6; i++)
        cr_expect_eq(client_alloc_ring_hash(xs, lens[i]), want[i], "%zu x's", lens[i]);
}

/* Checks every client of cids against the reference owner of each queue. */
static void expect_owners(int vnodes, const char *const *cids, size_t n_cids,
                          const topic_fixture_t *t, const int *owner_of) {
    for (size_t c = 0; c < n_cids; c++) {
        size_t owned[MAX_MQS], want[MAX_MQS], n_want = 0;
        for (size_t k = 0; k < t->n; k++)
            if (owner_of[k] == (int)c) want[n_want++] = k;
        size_t n = vnodes == 10
                       ? client_alloc_consistent_hash(cids[c], cids, n_cids, t->mqs, t->n, owned)
                       : client_alloc_consistent_hash_n(vnodes, cids[c], cids, n_cids, t->mqs, t->n,
                                                        owned);
        cr_assert_eq(n, n_want, "%s (vnodes %d) owns %zu, reference %zu", cids[c], vnodes, n,
                     n_want);
        for (size_t i = 0; i < n; i++)
            cr_expect_eq(owned[i], want[i], "%s: owned[%zu]", cids[c], i);
    }
}

Test(consistent_hash, matches_reference) {
    topic_fixture_t t16 = make_topic("TopicTest", 2, 8);
    const int ten[] = {2, 2, 0, 2, 2, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2};
    const int vn3[] = {2, 2, 0, 1, 1, 1, 1, 2, 1, 0, 1, 2, 1, 2, 1, 2};
    expect_owners(10, three, 3, &t16, ten);
    expect_owners(3, three, 3, &t16, vn3);
    topic_fixture_t t4 = make_topic("T", 1, 4);
    const int five_over_four[] = {4, 1, 4, 2};
    expect_owners(10, five, 5, &t4, five_over_four);
    static const char *const four[] = {"172.16.0.0@3000", "172.16.1.7@3001", "172.16.2.14@3002",
                                       "172.16.3.21@3003"};
    topic_fixture_t t32 = make_topic("OrderTopic", 4, 8);
    const int four_over_32[] = {1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 2, 1, 0,
                                1, 2, 1, 0, 0, 1, 1, 3, 0, 2, 1, 2, 3, 1, 2, 1};
    expect_owners(10, four, 4, &t32, four_over_32);
}

Test(consistent_hash, single_client_strangers_no_vnodes) {
    topic_fixture_t t = make_topic("T", 1, 4);
    EXPECT(client_alloc_consistent_hash, one[0], one, t, 0, 1, 2, 3);
    EXPECT_NONE(client_alloc_consistent_hash, "10.9.9.9@DEFAULT", five, t);
    size_t owned[MAX_MQS];
    cr_expect_eq(client_alloc_consistent_hash_n(0, one[0], one, 1, t.mqs, t.n, owned), 0,
                 "an empty ring routes nothing");
}

/* ---------------------------------------------------------------- properties */

/* A random group (unique ids, sorted as Java sorts them) and topic. */
typedef struct group_fixture {
    char names[MAX_CIDS][64];
    const char *cids[MAX_CIDS];
    size_t n_cids;
    topic_fixture_t topic;
} group_fixture_t;

static void random_group(group_fixture_t *g, unsigned *seed) {
    g->n_cids = 1 + (size_t)rand_r(seed) % MAX_CIDS;
    for (size_t i = 0; i < g->n_cids; i++) {
        snprintf(g->names[i], sizeof g->names[i], "10.%d.%zu.%d@%d", rand_r(seed) % 256, i,
                 rand_r(seed) % 256, rand_r(seed) % 100000);
        g->cids[i] = g->names[i];
    }
    client_alloc_sort_ids(g->cids, g->n_cids);
    g->topic = make_topic("PropTopic", 1 + rand_r(seed) % 4, 1 + rand_r(seed) % 16);
}

/* Every queue owned by exactly one member; returns the smallest and largest share. */
static void check_partition(client_alloc_fn *fn, const group_fixture_t *g, size_t *min_share,
                            size_t *max_share) {
    int owners[MAX_MQS] = {0};
    *min_share = MAX_MQS;
    *max_share = 0;
    for (size_t c = 0; c < g->n_cids; c++) {
        size_t owned[MAX_MQS];
        size_t n = fn(g->cids[c], g->cids, g->n_cids, g->topic.mqs, g->topic.n, owned);
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(owned[i], g->topic.n);
            if (i > 0) cr_assert_gt(owned[i], owned[i - 1], "ascending, no repeats");
            owners[owned[i]]++;
        }
        *min_share = n < *min_share ? n : *min_share;
        *max_share = n > *max_share ? n : *max_share;
    }
    for (size_t k = 0; k < g->topic.n; k++)
        cr_assert_eq(owners[k], 1, "queue %zu of %zu has %d owners among %zu clients", k,
                     g->topic.n, owners[k], g->n_cids);
}

Test(properties, every_queue_owned_exactly_once) {
    unsigned seed = 20240611;
    for (int trial = 0; trial < 500; trial++) {
        group_fixture_t g;
        random_group(&g, &seed);
        size_t lo, hi;
        check_partition(client_alloc_averagely, &g, &lo, &hi);
        cr_assert_leq(hi - lo, 1, "averagely shares %zu..%zu", lo, hi);
        check_partition(client_alloc_by_circle, &g, &lo, &hi);
        cr_assert_leq(hi - lo, 1, "by-circle shares %zu..%zu", lo, hi);
        check_partition(client_alloc_consistent_hash, &g, &lo, &hi);
    }
}

Test(properties, averagely_runs_are_contiguous_and_in_client_order) {
    unsigned seed = 7;
    for (int trial = 0; trial < 200; trial++) {
        group_fixture_t g;
        random_group(&g, &seed);
        size_t next = 0; /* the queue the next client's run must start at */
        for (size_t c = 0; c < g.n_cids; c++) {
            size_t owned[MAX_MQS];
            size_t n =
                client_alloc_averagely(g.cids[c], g.cids, g.n_cids, g.topic.mqs, g.topic.n, owned);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(owned[i], next + i);
            next += n;
        }
        cr_assert_eq(next, g.topic.n);
    }
}

/* ---------------------------------------------------------------- order, lookup */

Test(order, java_string_order) {
    cr_expect_lt(client_java_strcmp("a", "b"), 0);
    cr_expect_gt(client_java_strcmp("ab", "a"), 0);
    cr_expect_eq(client_java_strcmp("10.0.0.1@x", "10.0.0.1@x"), 0);
    cr_expect_lt(client_java_strcmp("10.0.0.10@x", "10.0.0.2@x"), 0, "text, not numbers");
    /* U+1F600 is the surrogate pair D83D DE00 in Java, so it sorts before U+FFFD; strcmp on
     * UTF-8 (F0 ... vs EF ...) says the opposite. */
    cr_expect_lt(client_java_strcmp("\xF0\x9F\x98\x80", "\xEF\xBF\xBD"), 0);
    cr_expect_gt(strcmp("\xF0\x9F\x98\x80", "\xEF\xBF\xBD"), 0);
    cr_expect_lt(client_java_strcmp("\xC3\xA9", "\xF0\x9F\x98\x80"), 0, "U+00E9 first");
}

Test(order, queues_by_topic_broker_then_id) {
    client_mq_t mqs[] = {{"T", "broker-b", 0},
                         {"T", "broker-a", 10},
                         {"S", "broker-z", 5},
                         {"T", "broker-a", 9},
                         {"T", "broker-a", 0}};
    client_alloc_sort_mqs(mqs, 5);
    cr_expect_str_eq(mqs[0].topic, "S");
    cr_expect_eq(mqs[1].queue_id, 0);
    cr_expect_eq(mqs[2].queue_id, 9);
    cr_expect_eq(mqs[3].queue_id, 10, "queue ids compare as numbers");
    cr_expect_str_eq(mqs[4].broker_name, "broker-b");
}

Test(lookup, names_and_class_names) {
    cr_expect_eq(client_alloc_find("AVG")->fn, client_alloc_averagely);
    cr_expect_eq(client_alloc_find("AVG_BY_CIRCLE")->fn, client_alloc_by_circle);
    cr_expect_eq(client_alloc_find("CONSISTENT_HASH")->fn, client_alloc_consistent_hash);
    cr_expect_eq(client_alloc_find("AllocateMessageQueueAveragely")->fn, client_alloc_averagely);
    cr_expect_eq(client_alloc_find("AllocateMessageQueueAveragelyByCircle")->fn,
                 client_alloc_by_circle);
    cr_expect_str_eq(client_alloc_find("AllocateMessageQueueConsistentHash")->name,
                     "CONSISTENT_HASH");
    cr_expect_null(client_alloc_find("avg"), "names are case-sensitive, as Java's equals");
    cr_expect_null(client_alloc_find("MACHINE_ROOM"));
    cr_expect_null(client_alloc_find(NULL));
}
