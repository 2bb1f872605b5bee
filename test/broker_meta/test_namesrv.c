/* Name-server tables: registration of two brokers, routes, expiry, unregistration, closed
 * connections, cluster info, KV config, and the captured Java 103/105 exchanges. */
#include "meta_test.h"

#include "broker/namesrv.h"

static void add_topic(proto_register_broker_body_t *body, const char *name, int32_t queues,
                      int32_t perm) {
    proto_topic_config_t *t = proto_register_broker_body_add_topic(body);
    t->topic_name = cm_strdup(name);
    t->read_queue_nums = t->write_queue_nums = queues;
    t->perm = perm;
    t->topic_filter_type = cm_strdup("SINGLE_TAG");
}

static void reg(nsrv_t *ns, const char *name, const char *addr, int64_t id, void *conn,
                int64_t counter, const char *topic, int32_t queues) {
    proto_register_broker_body_t body = {0};
    body.data_version = (proto_data_version_t){1000, counter};
    if (topic) add_topic(&body, topic, queues, 6);
    nsrv_reg_t r = {"C1", name, addr, "127.0.0.1:1", id, &body};
    nsrv_reg_result_t res;
    nsrv_register(ns, &r, conn, &res);
    proto_register_broker_body_free(&body);
}

static const proto_queue_data_t *queue_of(const proto_topic_route_t *r, const char *broker) {
    for (size_t i = 0; i < r->queue_count; i++)
        if (strcmp(r->queues[i].broker_name, broker) == 0) return &r->queues[i];
    return NULL;
}

Test(namesrv, two_brokers_share_a_topic) {
    nsrv_t *ns = nsrv_new(NULL);
    int conn_a, conn_b;
    reg(ns, "broker-a", "127.0.0.1:10911", 0, &conn_a, 1, "T", 4);
    reg(ns, "broker-b", "127.0.0.1:10921", 0, &conn_b, 1, "T", 8);
    reg(ns, "broker-b", "127.0.0.1:10921", 0, &conn_b, 2, "U", 2); /* new version: adds U */

    proto_topic_route_t r = {0};
    cr_assert(nsrv_route(ns, "T", &r));
    cr_assert_eq(r.broker_count, 2);
    cr_assert_eq(r.queue_count, 2);
    cr_assert_eq(queue_of(&r, "broker-a")->write_queue_nums, 4);
    cr_assert_eq(queue_of(&r, "broker-b")->read_queue_nums, 8);
    cr_assert_str_eq(proto_broker_data_addr(&r.brokers[1], 0), "127.0.0.1:10921");
    proto_topic_route_free(&r);

    proto_topic_route_t u = {0};
    cr_assert(nsrv_route(ns, "U", &u));
    cr_assert_eq(u.broker_count, 1);
    cr_assert_str_eq(u.brokers[0].cluster, "C1");
    proto_topic_route_free(&u);

    proto_topic_route_t none = {0};
    cr_assert_not(nsrv_route(ns, "nope", &none));
    proto_topic_route_free(&none);
    nsrv_destroy(ns);
}

Test(namesrv, same_data_version_keeps_queue_data) {
    nsrv_t *ns = nsrv_new(NULL);
    reg(ns, "broker-a", "127.0.0.1:10911", 0, NULL, 5, "T", 4);
    reg(ns, "broker-a", "127.0.0.1:10911", 0, NULL, 5, "T", 16); /* unchanged version */
    proto_topic_route_t r = {0};
    cr_assert(nsrv_route(ns, "T", &r));
    cr_assert_eq(r.queues[0].write_queue_nums, 4);
    proto_topic_route_free(&r);
    nsrv_destroy(ns);
}

Test(namesrv, slave_learns_its_master) {
    nsrv_t *ns = nsrv_new(NULL);
    reg(ns, "broker-a", "127.0.0.1:10911", 0, NULL, 1, "T", 4);
    proto_register_broker_body_t body = {0};
    nsrv_reg_t r = {"C1", "broker-a", "127.0.0.1:10915", "127.0.0.1:2", 1, &body};
    nsrv_reg_result_t res;
    nsrv_register(ns, &r, NULL, &res);
    cr_assert_str_eq(res.master_addr, "127.0.0.1:10911");
    cr_assert_str_eq(res.ha_server_addr, "127.0.0.1:1");
    proto_topic_route_t route = {0};
    cr_assert(nsrv_route(ns, "T", &route));
    cr_assert_eq(route.brokers[0].addr_count, 2);
    proto_topic_route_free(&route);
    nsrv_destroy(ns);
}

Test(namesrv, expiry_and_unregister_and_close) {
    nsrv_t *ns = nsrv_new(&(nsrv_opts_t){.broker_expiry_ms = 120000});
    int conn_a, conn_b;
    reg(ns, "broker-a", "127.0.0.1:10911", 0, &conn_a, 1, "T", 4);
    reg(ns, "broker-b", "127.0.0.1:10921", 0, &conn_b, 1, "T", 4);
    reg(ns, "broker-c", "127.0.0.1:10931", 0, NULL, 1, "V", 4);

    void **conns;
    size_t n_conns;
    cr_assert_eq(nsrv_expire(ns, cm_mono_ms(), &conns, &n_conns), 0);
    cm_free(conns);

    nsrv_conn_closed(ns, &conn_b);
    proto_topic_route_t r = {0};
    cr_assert(nsrv_route(ns, "T", &r));
    cr_assert_eq(r.broker_count, 1);
    cr_assert_str_eq(r.brokers[0].broker_name, "broker-a");
    proto_topic_route_free(&r);

    nsrv_unregister(ns, "C1", "broker-c", "127.0.0.1:10931", 0);
    proto_topic_route_t v = {0};
    cr_assert_not(nsrv_route(ns, "V", &v));
    proto_topic_route_free(&v);

    /* Two minutes later without a registration, broker-a goes too. */
    cr_assert_eq(nsrv_expire(ns, cm_mono_ms() + 121000, &conns, &n_conns), 1);
    cr_assert_eq(n_conns, 1);
    cr_assert_eq(conns[0], &conn_a);
    cm_free(conns);
    proto_topic_route_t t = {0};
    cr_assert_not(nsrv_route(ns, "T", &t));
    proto_topic_route_free(&t);
    proto_topic_list_t list = {0};
    nsrv_topic_list(ns, NULL, &list);
    cr_assert_eq(list.topics.count, 0);
    proto_topic_list_free(&list);
    nsrv_destroy(ns);
}

static void *count_ref(void *conn) {
    ++*(int *)conn;
    return conn;
}

static void count_unref(void *conn) {
    cr_assert_gt(*(int *)conn, 0, "a reference released twice");
    --*(int *)conn;
}

/* A broker's connection is referenced while the tables hold it, and released with it. */
Test(namesrv, stored_connections_are_referenced) {
    static const broker_conn_ops_t ops = {count_ref, count_unref};
    nsrv_t *ns = nsrv_new(&(nsrv_opts_t){.conn_ops = &ops});
    int conn_a = 0, conn_b = 0, conn_b2 = 0;
    reg(ns, "broker-a", "127.0.0.1:10911", 0, &conn_a, 1, "T", 4);
    reg(ns, "broker-a", "127.0.0.1:10911", 0, &conn_a, 1, "T", 4); /* a refresh */
    cr_assert_eq(conn_a, 1);
    reg(ns, "broker-b", "127.0.0.1:10921", 0, &conn_b, 1, "T", 4);
    reg(ns, "broker-b", "127.0.0.1:10921", 0, &conn_b2, 2, "T", 4); /* came back on a new one */
    cr_assert_eq(conn_b, 0);
    cr_assert_eq(conn_b2, 1);
    nsrv_conn_closed(ns, &conn_b2);
    cr_assert_eq(conn_b2, 0);

    void **conns;
    size_t n;
    cr_assert_eq(nsrv_expire(ns, cm_mono_ms() + 121000, &conns, &n), 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(conn_a, 1); /* the table's went with the entry; this one is the caller's */
    count_unref(conns[0]);
    cm_free(conns);
    cr_assert_eq(conn_a, 0);

    reg(ns, "broker-a", "127.0.0.1:10911", 0, &conn_a, 3, "T", 4);
    cr_assert_eq(conn_a, 1);
    nsrv_destroy(ns);
    cr_assert_eq(conn_a, 0);
}

static void request(proto_cmd_t *req, int32_t code, int32_t version) {
    proto_cmd_init(req);
    proto_cmd_request(req, code, 7);
    req->version = version;
}

Test(namesrv, route_keys_quoted_by_version) {
    nsrv_t *ns = nsrv_new(NULL);
    reg(ns, "broker-a", "127.0.0.1:10911", 0, NULL, 1, "T", 4);
    int32_t versions[] = {409, 400, 400};
    for (int i = 0; i < 3; i++) {
        proto_cmd_t req, resp;
        request(&req, PROTO_GET_ROUTEINFO_BY_TOPIC, versions[i]);
        proto_ext_set(&req.ext, "topic", "T");
        if (i == 2) proto_ext_set(&req.ext, "acceptStandardJsonOnly", "true");
        proto_cmd_init(&resp);
        cr_assert(nsrv_handle(ns, NULL, &req, &resp));
        cr_assert_eq(resp.code, 0);
        char *body = cm_strndup((const char *)resp.body, resp.body_len);
        bool quoted = strstr(body, "{\"0\":\"127.0.0.1:10911\"}") != NULL;
        bool bare = strstr(body, "{0:\"127.0.0.1:10911\"}") != NULL;
        cr_assert(i == 1 ? bare && !quoted : quoted && !bare, "%s", body);
        cm_free(body);
        proto_cmd_free(&req);
        proto_cmd_free(&resp);
    }
    nsrv_destroy(ns);
}

Test(namesrv, cluster_info_shape) {
    nsrv_t *ns = nsrv_new(NULL);
    reg(ns, "broker-a", "127.0.0.1:10911", 0, NULL, 1, "T", 4);
    reg(ns, "broker-b", "127.0.0.1:10921", 0, NULL, 1, "T", 4);
    proto_cmd_t req, resp;
    request(&req, PROTO_GET_BROKER_CLUSTER_INFO, 409);
    proto_cmd_init(&resp);
    cr_assert(nsrv_handle(ns, NULL, &req, &resp));
    cr_assert_eq(resp.code, 0);
    const char *want = "{\"brokerAddrTable\":{"
                       "\"broker-a\":{\"brokerAddrs\":{0:\"127.0.0.1:10911\"},"
                       "\"brokerName\":\"broker-a\",\"cluster\":\"C1\"},"
                       "\"broker-b\":{\"brokerAddrs\":{0:\"127.0.0.1:10921\"},"
                       "\"brokerName\":\"broker-b\",\"cluster\":\"C1\"}},"
                       "\"clusterAddrTable\":{\"C1\":[\"broker-a\",\"broker-b\"]}}";
    char *body = cm_strndup((const char *)resp.body, resp.body_len);
    cr_assert(strstr(body, "{0:\"127.0.0.1:10911\"}"), "broker ids must be bare: %s", body);
    proto_json_t *got = meta_parse(resp.body, resp.body_len), *exp = meta_parse(want, strlen(want));
    cr_assert(meta_json_eq(got, exp), "%s", body);
    proto_json_free(got);
    proto_json_free(exp);
    cm_free(body);
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
    nsrv_destroy(ns);
}

static int32_t kv_call(nsrv_t *ns, int32_t code, const char *key, const char *value, char **got) {
    proto_cmd_t req, resp;
    request(&req, code, 409);
    proto_ext_set(&req.ext, "namespace", "NS");
    proto_ext_set(&req.ext, "key", key);
    if (value) proto_ext_set(&req.ext, "value", value);
    proto_cmd_init(&resp);
    cr_assert(nsrv_handle(ns, NULL, &req, &resp));
    const char *v = proto_ext_get(&resp.ext, "value");
    if (got) *got = v ? cm_strdup(v) : NULL;
    int32_t code_out = resp.code;
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
    return code_out;
}

Test(namesrv, kv_config_round_trip_and_persists) {
    char dir[] = "/tmp/rmq-nsrv-kv-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *path = cm_sprintf("%s/kvConfig.json", dir);
    nsrv_t *ns = nsrv_new(&(nsrv_opts_t){.kv_path = path});
    char *got = NULL;
    cr_assert_eq(kv_call(ns, PROTO_GET_KV_CONFIG, "k", NULL, &got), 22);
    cr_assert_eq(kv_call(ns, PROTO_PUT_KV_CONFIG, "k", "v1", NULL), 0);
    cr_assert_eq(kv_call(ns, PROTO_PUT_KV_CONFIG, "gone", "x", NULL), 0);
    cr_assert_eq(kv_call(ns, PROTO_DELETE_KV_CONFIG, "gone", NULL, NULL), 0);
    nsrv_destroy(ns);

    ns = nsrv_new(&(nsrv_opts_t){.kv_path = path}); /* reads the file back */
    cr_assert_eq(kv_call(ns, PROTO_GET_KV_CONFIG, "k", NULL, &got), 0);
    cr_assert_str_eq(got, "v1");
    cm_free(got);
    cr_assert_eq(kv_call(ns, PROTO_GET_KV_CONFIG, "gone", NULL, NULL), 22);
    nsrv_destroy(ns);
    char *cmd = cm_sprintf("rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    cm_free(cmd);
    cm_free(path);
}

/* ---------------------------------------------------------------- golden Java frames */

static void assert_same_response(const proto_cmd_t *got, const char *file) {
    proto_cmd_t want;
    meta_frame(file, &want);
    cr_assert_eq(got->code, want.code, "%s: code %d", file, got->code);
    cr_assert(proto_cmd_is_response(got));
    cr_assert_eq(got->has_ext, want.has_ext, "%s: extFields presence", file);
    if (want.remark) cr_assert_str_eq(got->remark, want.remark);
    cr_assert_eq(got->body_len > 0, want.body_len > 0, "%s: body presence", file);
    if (want.body_len) {
        proto_json_t *a = meta_parse(got->body, got->body_len);
        proto_json_t *b = meta_parse(want.body, want.body_len);
        cr_assert(meta_json_eq(a, b), "%s: body %.*s", file, (int)got->body_len,
                  (const char *)got->body);
        proto_json_free(a);
        proto_json_free(b);
    }
    proto_cmd_free(&want);
}

static void feed(nsrv_t *ns, void *conn, const char *req_file, const char *resp_file) {
    proto_cmd_t req, resp;
    meta_frame(req_file, &req);
    proto_cmd_init(&resp);
    cr_assert(nsrv_handle(ns, conn, &req, &resp));
    cr_assert_eq(resp.opaque, req.opaque);
    assert_same_response(&resp, resp_file);
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
}

Test(namesrv, java_register_then_route) {
    nsrv_t *ns = nsrv_new(NULL);
    int conn;
    /* The first route look-up of the auto-created topic came before the broker knew it. */
    feed(ns, &conn, "namesrv-req-103-c2s-1.bin", "namesrv-resp-103-code0-1.bin");
    feed(ns, &conn, "namesrv-req-105-c2s-1.bin", "namesrv-resp-105-code0-1.bin");
    feed(ns, &conn, "namesrv-req-105-c2s-2.bin", "namesrv-resp-105-code17-1.bin");
    /* The oneway re-registration after the topic was created, then the route exists. */
    proto_cmd_t req, resp;
    meta_frame("namesrv-req-103-c2s-2.bin", &req);
    proto_cmd_init(&resp);
    cr_assert(nsrv_handle(ns, &conn, &req, &resp));
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&req);
    proto_cmd_free(&resp);
    feed(ns, &conn, "namesrv-req-105-c2s-1.bin", "namesrv-resp-105-code0-2.bin");
    proto_topic_route_t r = {0};
    cr_assert(nsrv_route(ns, "IopTopic29930", &r));
    cr_assert_eq(r.queue_count, 1);
    cr_assert_eq(r.queues[0].perm, 6);
    cr_assert_eq(r.queues[0].write_queue_nums, 4);
    proto_topic_route_free(&r);
    nsrv_conn_closed(ns, &conn);
    cr_assert_not(nsrv_route(ns, "TBW102", &r));
    proto_topic_route_free(&r);
    nsrv_destroy(ns);
}
