/* Client tracking: heartbeats build the group tables, the consumer list is sorted,
 * membership changes notify every member, channels expire, locks are granted, renewed,
 * expire and move; the captured Java 34/35/38/41/42 exchanges. */
#include "meta_test.h"

#include "broker/clients.h"

/* Records NOTIFY_CONSUMER_IDS_CHANGED calls. */
typedef struct notes {
    void *conn[16];
    char group[16][64];
    int n;
} notes_t;

static void record_notify(void *arg, void *conn, const char *group) {
    notes_t *nt = arg;
    cr_assert_lt(nt->n, 16);
    nt->conn[nt->n] = conn;
    snprintf(nt->group[nt->n], sizeof nt->group[0], "%s", group);
    nt->n++;
}

static bool notified(const notes_t *nt, void *conn) {
    for (int i = 0; i < nt->n; i++)
        if (nt->conn[i] == conn) return true;
    return false;
}

typedef struct retry_log {
    char topic[128];
    int32_t queues, perm;
    int calls;
} retry_log_t;

static void record_retry(void *arg, const char *topic, int32_t queues, int32_t perm,
                         int32_t sys_flag) {
    retry_log_t *rl = arg;
    snprintf(rl->topic, sizeof rl->topic, "%s", topic);
    rl->queues = queues;
    rl->perm = perm;
    rl->calls++;
}

typedef struct fixture {
    notes_t notes;
    retry_log_t retries;
    broker_meta_tables_t t;
} fixture_t;

static void fixture_init(fixture_t *f) {
    memset(f, 0, sizeof *f);
    f->t.clients = broker_clients_new(NULL, 120000, NULL, record_notify, &f->notes);
    f->t.subgroups = broker_subgroups_new(NULL, true, NULL);
    f->t.locks = broker_locks_new(60000);
    f->t.ensure_retry_topic = record_retry;
    f->t.arg = &f->retries;
}

static void fixture_fini(fixture_t *f) {
    broker_clients_destroy(f->t.clients);
    broker_subgroups_destroy(f->t.subgroups);
    broker_locks_destroy(f->t.locks);
}

static void heartbeat(fixture_t *f, void *conn, const char *client_id, const char *group,
                      const char *topic) {
    proto_heartbeat_t hb = {0};
    hb.client_id = cm_strdup(client_id);
    proto_consumer_data_t *cd = proto_heartbeat_add_consumer(&hb);
    cd->group_name = cm_strdup(group);
    proto_subscription_t *s = proto_consumer_data_add_sub(cd);
    s->topic = cm_strdup(topic);
    proto_subscription_set_tags(s, "A || B");
    s->sub_version = 42;
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_HEART_BEAT, 1);
    cm_buf_t body = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &body);
    proto_cmd_take_body(&req, body.data, body.len);
    proto_cmd_init(&resp);
    cr_assert(broker_meta_handle(&f->t, conn, &req, &resp));
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
    proto_heartbeat_free(&hb);
}

Test(clients, heartbeat_builds_tables_and_sorted_list) {
    fixture_t f;
    fixture_init(&f);
    int c1, c2, c3;
    heartbeat(&f, &c2, "127.0.0.1@zeta", "g", "T");
    heartbeat(&f, &c1, "127.0.0.1@alpha", "g", "T");
    heartbeat(&f, &c3, "127.0.0.1@mid", "g", "T");
    cr_assert_str_eq(f.retries.topic, "%RETRY%g");
    cr_assert_eq(f.retries.queues, 1);
    cr_assert_eq(f.retries.perm, 6);

    char **ids;
    size_t n = broker_clients_consumer_ids(f.t.clients, "g", &ids);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(ids[0], "127.0.0.1@alpha");
    cr_assert_str_eq(ids[1], "127.0.0.1@mid");
    cr_assert_str_eq(ids[2], "127.0.0.1@zeta");
    broker_clients_free_ids(ids, n);

    proto_subscription_t sub;
    cr_assert(broker_clients_find_sub(f.t.clients, "g", "T", &sub));
    cr_assert_eq(sub.sub_version, 42);
    cr_assert_eq(sub.tags.count, 2);
    proto_subscription_free(&sub);
    cr_assert_not(broker_clients_find_sub(f.t.clients, "g", "other", &sub));
    cr_assert(broker_subgroups_find(f.t.subgroups, "g", NULL));
    fixture_fini(&f);
}

Test(clients, membership_changes_notify_members) {
    fixture_t f;
    fixture_init(&f);
    int c1, c2;
    heartbeat(&f, &c1, "127.0.0.1@one", "g", "T");
    cr_assert(notified(&f.notes, &c1)); /* a join tells everyone, the newcomer included */
    f.notes.n = 0;
    heartbeat(&f, &c1, "127.0.0.1@one", "g", "T"); /* a plain renewal is no change */
    cr_assert_eq(f.notes.n, 0);
    heartbeat(&f, &c2, "127.0.0.1@two", "g", "T");
    cr_assert(notified(&f.notes, &c1) && notified(&f.notes, &c2));
    cr_assert_str_eq(f.notes.group[0], "g");

    f.notes.n = 0;
    broker_clients_conn_closed(f.t.clients, &c2);
    cr_assert_eq(f.notes.n, 1);
    cr_assert_eq(f.notes.conn[0], &c1);

    f.notes.n = 0;
    heartbeat(&f, &c2, "127.0.0.1@two", "g", "T");
    f.notes.n = 0;
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_UNREGISTER_CLIENT, 2);
    proto_ext_set(&req.ext, "clientID", "127.0.0.1@two");
    proto_ext_set(&req.ext, "consumerGroup", "g");
    proto_cmd_init(&resp);
    cr_assert(broker_meta_handle(&f.t, &c2, &req, &resp));
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(f.notes.n, 1);
    cr_assert_eq(f.notes.conn[0], &c1);
    proto_cmd_free(&req);
    proto_cmd_free(&resp);

    /* c1 goes quiet for more than two minutes: dropped, its connection handed back. */
    void **conns;
    size_t n_conns;
    cr_assert_eq(broker_clients_expire(f.t.clients, cm_mono_ms(), &conns, &n_conns), 0);
    cm_free(conns);
    cr_assert_eq(broker_clients_expire(f.t.clients, cm_mono_ms() + 121000, &conns, &n_conns), 1);
    cr_assert_eq(conns[0], &c1);
    cm_free(conns);
    cr_assert_not(broker_clients_group_online(f.t.clients, "g"));
    fixture_fini(&f);
}

Test(clients, producers_tracked_for_check_back) {
    fixture_t f;
    fixture_init(&f);
    int p1;
    broker_client_id_t who = {&p1, "127.0.0.1@p", 0, 409};
    broker_clients_register_producer(f.t.clients, &who, "pg", cm_mono_ms());
    cr_assert_eq(broker_clients_producer_conn(f.t.clients, "pg"), &p1);
    broker_clients_conn_closed(f.t.clients, &p1);
    cr_assert_null(broker_clients_producer_conn(f.t.clients, "pg"));
    fixture_fini(&f);
}

/* Connection references: each "connection" is an int counting the references the tables
 * hold on it, so a stored pointer that could dangle shows up as a count left at zero while
 * stored, or one left above zero once nothing holds it. */
static void *count_ref(void *conn) {
    ++*(int *)conn;
    return conn;
}

static void count_unref(void *conn) {
    cr_assert_gt(*(int *)conn, 0, "a reference released twice");
    --*(int *)conn;
}

static const broker_conn_ops_t counting_ops = {count_ref, count_unref};

/* Notifications happen while the notice holds its own reference. */
static void notify_checks_ref(void *arg, void *conn, const char *group) {
    cr_assert_gt(*(int *)conn, 0, "notified a connection nobody references");
    ++*(int *)arg;
}

Test(clients, stored_connections_are_referenced) {
    int notified = 0;
    broker_meta_tables_t t = {0};
    t.clients = broker_clients_new(NULL, 120000, &counting_ops, notify_checks_ref, &notified);
    t.subgroups = broker_subgroups_new(NULL, true, NULL);
    t.locks = broker_locks_new(60000);
    fixture_t f; /* heartbeat() takes a fixture: lend it these tables */
    memset(&f, 0, sizeof f);
    f.t = t;
    int c1 = 0, c2 = 0;
    heartbeat(&f, &c1, "127.0.0.1@one", "g", "T");
    heartbeat(&f, &c2, "127.0.0.1@two", "g", "T");
    heartbeat(&f, &c2, "127.0.0.1@two", "g2", "T");
    broker_client_id_t who = {&c2, "127.0.0.1@two", 0, 409};
    broker_clients_register_producer(t.clients, &who, "pg", cm_mono_ms());
    cr_assert_eq(c1, 1); /* one group */
    cr_assert_eq(c2, 3); /* two consumer groups and a producer group */
    cr_assert_gt(notified, 0);

    /* The producer look-up hands out a reference of its own. */
    void *p = broker_clients_producer_conn(t.clients, "pg");
    cr_assert_eq(p, &c2);
    cr_assert_eq(c2, 4);
    count_unref(p);

    /* Closing c2 drops all of its entries and tells c1, which is still referenced. */
    int before = notified;
    broker_clients_conn_closed(t.clients, &c2);
    cr_assert_eq(c2, 0);
    cr_assert_eq(notified, before + 1);
    cr_assert_eq(c1, 1);

    /* Expiry hands c1 back with the caller's reference. */
    void **conns;
    size_t n;
    cr_assert_eq(broker_clients_expire(t.clients, cm_mono_ms() + 121000, &conns, &n), 1);
    cr_assert_eq(conns[0], &c1);
    cr_assert_eq(c1, 1);
    count_unref(conns[0]);
    cm_free(conns);
    cr_assert_eq(c1, 0);

    heartbeat(&f, &c1, "127.0.0.1@one", "g", "T");
    cr_assert_eq(c1, 1);
    broker_clients_destroy(t.clients); /* destroy releases what is still held */
    cr_assert_eq(c1, 0);
    broker_subgroups_destroy(t.subgroups);
    broker_locks_destroy(t.locks);
}

Test(locks, grant_renew_expire_steal) {
    broker_locks_t *l = broker_locks_new(60000);
    broker_mq_t mqs[2] = {{"T", "broker-a", 0}, {"T", "broker-a", 1}};
    bool granted[2];
    int64_t t0 = 1000000;
    cr_assert_eq(broker_locks_try(l, "g", "c1", mqs, 2, granted, t0), 2);
    cr_assert_eq(broker_locks_try(l, "g", "c2", mqs, 2, granted, t0 + 1000), 0);
    /* c1 renews queue 0 at +50 s; queue 1 is left to expire */
    cr_assert_eq(broker_locks_try(l, "g", "c1", mqs, 1, granted, t0 + 50000), 1);
    cr_assert_eq(broker_locks_try(l, "g", "c2", mqs, 2, granted, t0 + 61000), 1);
    cr_assert_not(granted[0]);
    cr_assert(granted[1]);
    char holder[64];
    cr_assert(broker_locks_holder(l, "g", &mqs[1], t0 + 61000, holder, sizeof holder));
    cr_assert_str_eq(holder, "c2");
    /* Another group locks independently; c1 cannot release c2's queue. */
    cr_assert_eq(broker_locks_try(l, "g2", "c9", mqs, 2, granted, t0), 2);
    broker_locks_unlock(l, "g", "c1", &mqs[1], 1);
    cr_assert(broker_locks_holder(l, "g", &mqs[1], t0 + 61000, holder, sizeof holder));
    broker_locks_unlock(l, "g", "c2", &mqs[1], 1);
    cr_assert_not(broker_locks_holder(l, "g", &mqs[1], t0 + 61000, NULL, 0));
    broker_locks_destroy(l);
}

/* ---------------------------------------------------------------- golden Java frames */

static void feed(fixture_t *f, void *conn, const char *req_file, const char *resp_file) {
    proto_cmd_t req, resp, want;
    meta_frame(req_file, &req);
    meta_frame(resp_file, &want);
    proto_cmd_init(&resp);
    cr_assert(broker_meta_handle(&f->t, conn, &req, &resp));
    cr_assert_eq(resp.code, want.code, "%s: code %d (%s)", req_file, resp.code,
                 resp.remark ? resp.remark : "");
    cr_assert_eq(resp.has_ext, want.has_ext, "%s: extFields presence", req_file);
    cr_assert_eq(resp.body_len > 0, want.body_len > 0, "%s: body presence", req_file);
    if (want.body_len) {
        proto_json_t *a = meta_parse(resp.body, resp.body_len);
        proto_json_t *b = meta_parse(want.body, want.body_len);
        cr_assert(meta_json_eq(a, b), "%s: %.*s", req_file, (int)resp.body_len,
                  (const char *)resp.body);
        proto_json_free(a);
        proto_json_free(b);
    }
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
    proto_cmd_free(&want);
}

Test(clients, java_frames) {
    fixture_t f;
    fixture_init(&f);
    int producer, consumer, orderly;
    feed(&f, &producer, "broker-req-34-c2s-1.bin", "broker-resp-34-code0-1.bin");
    feed(&f, &producer, "broker-req-35-c2s-1.bin", "broker-resp-35-code0-1.bin");
    feed(&f, &producer, "broker-req-35-c2s-2.bin", "broker-resp-35-code0-2.bin");
    cr_assert_null(broker_clients_producer_conn(f.t.clients, "ipg29930"));

    /* The captured consumer list names client 192.0.2.2@c129930 of group icg29930. */
    heartbeat(&f, &consumer, "192.0.2.2@c129930", "icg29930", "IopTopic29930");
    feed(&f, &consumer, "broker-req-38-c2s-1.bin", "broker-resp-38-code0-1.bin");

    feed(&f, &orderly, "broker-req-41-c2s-1.bin", "broker-resp-41-code0-1.bin");
    feed(&f, &orderly, "broker-req-41-c2s-2.bin", "broker-resp-41-code0-2.bin");
    feed(&f, &orderly, "broker-req-42-c2s-1.bin", "broker-resp-42-code0-1.bin");
    broker_mq_t q0 = {"IopOrder29930", "broker-a", 0};
    cr_assert_not(broker_locks_holder(f.t.locks, "iog29930", &q0, cm_mono_ms(), NULL, 0));
    fixture_fini(&f);
}

Test(clients, consumer_list_of_unknown_group_is_an_error) {
    fixture_t f;
    fixture_init(&f);
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_GET_CONSUMER_LIST_BY_GROUP, 3);
    proto_ext_set(&req.ext, "consumerGroup", "nobody");
    proto_cmd_init(&resp);
    cr_assert(broker_meta_handle(&f.t, NULL, &req, &resp));
    cr_assert_eq(resp.code, 1);
    cr_assert_eq(resp.body_len, 0);
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
    fixture_fini(&f);
}

Test(subgroups, persisted_in_rocketmq_shape) {
    char dir[] = "/tmp/rmq-subgroups-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *path = cm_sprintf("%s/subscriptionGroup.json", dir);
    broker_subgroups_t *sg = broker_subgroups_new(path, true, NULL);
    size_t builtins = broker_subgroups_count(sg);
    cr_assert_eq(builtins, 7);
    broker_subgroup_t g;
    cr_assert(broker_subgroups_find(sg, "cg", &g));
    cr_assert_eq(g.retry_max_times, 16);
    g.retry_max_times = 3;
    broker_subgroups_update(sg, &g);
    broker_subgroups_destroy(sg);

    sg = broker_subgroups_new(path, false, NULL);
    cr_assert(broker_subgroups_find(sg, "cg", &g));
    cr_assert_eq(g.retry_max_times, 3);
    cr_assert_not(broker_subgroups_find(sg, "unknown", NULL)); /* no auto-creation */
    broker_subgroups_destroy(sg);

    size_t len;
    uint8_t *text = td_read_path(path, &len);
    proto_json_t *root = meta_parse(text, len);
    const proto_json_t *e = proto_json_get(proto_json_get(root, "subscriptionGroupTable"), "cg");
    cr_assert_not_null(e);
    cr_assert_eq(e->len, 9); /* the nine SubscriptionGroupConfig fields of 4.9.8 */
    cr_assert_eq(proto_json_get_int(proto_json_get(root, "dataVersion"), "counter", -1), 2);
    proto_json_free(root);
    cm_free(text);
    char *cmd = cm_sprintf("rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
    cm_free(path);
}
