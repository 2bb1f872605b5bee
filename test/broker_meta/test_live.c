/* The metadata managers inside a running broker, over loopback: consumer groups from
 * heartbeats and NOTIFY_CONSUMER_IDS_CHANGED on joins and leaves, the broker's own routes,
 * a second broker registering with the first (and unregistering at its stop), and the
 * stand-alone name server. */
#include "live.h"

#include "broker/namesrv.h"

typedef struct fx {
    char *dir;
    net_loop_t *loop; /* the clients' side */
} fx_t;

static void fx_init(fx_t *f) {
    f->dir = live_tempdir();
    rmq_err_t err = RMQ_OK;
    f->loop = net_loop_new(NULL, &err);
    cr_assert_not_null(f->loop, "%s", rmq_err_name(err));
}

static void fx_fini(fx_t *f) {
    net_loop_destroy(f->loop);
    live_rmrf(f->dir);
    cm_free(f->dir);
}

Test(live, two_consumers_listed_and_notified) {
    fx_t f;
    fx_init(&f);
    rmq_broker_t *b = live_broker(f.dir, "bm-a", NULL);
    live_client_t c1, c2;
    live_client_open(&c1, f.loop, rmq_broker_addr(b));
    live_client_open(&c2, f.loop, rmq_broker_addr(b));

    cr_assert_eq(live_heartbeat(&c1, "127.0.0.1@one", "bm_group", "bm_topic"), 0);
    /* A join tells every member, the newcomer included. */
    cr_assert(live_wait_notifies(&c1, 1), "no notification for the first join");
    int before = live_notifies(&c1);
    cr_assert_eq(live_heartbeat(&c2, "127.0.0.1@two", "bm_group", "bm_topic"), 0);
    cr_assert(live_wait_notifies(&c1, before + 1), "c1 not told that c2 joined");
    cr_assert(live_wait_notifies(&c2, 1), "c2 not told of its own join");
    cr_assert_str_eq(c1.notify_group, "bm_group");
    cr_assert(c1.notify_oneway, "NOTIFY_CONSUMER_IDS_CHANGED must be oneway");

    proto_strlist_t ids = {0};
    cr_assert_eq(live_consumer_list(&c1, "bm_group", &ids), 0);
    cr_assert_eq(ids.count, 2);
    cr_assert_str_eq(ids.items[0], "127.0.0.1@one");
    cr_assert_str_eq(ids.items[1], "127.0.0.1@two");
    proto_strlist_free(&ids);

    /* The heartbeat made the group's retry topic, which the broker now routes. */
    cr_assert(live_wait_route(&c1, "%RETRY%bm_group", 0, NULL));

    /* c2 leaves by closing its connection: c1 hears of it, the list shrinks. */
    before = live_notifies(&c1);
    net_conn_close(c2.conn);
    cr_assert(live_wait_notifies(&c1, before + 1), "c1 not told that c2 left");
    proto_strlist_t left = {0};
    cr_assert_eq(live_consumer_list(&c1, "bm_group", &left), 0);
    cr_assert_eq(left.count, 1);
    cr_assert_str_eq(left.items[0], "127.0.0.1@one");
    proto_strlist_free(&left);

    /* The last one leaving empties the group: no consumer online is code 1. */
    net_conn_close(c1.conn);
    live_client_t c3;
    live_client_open(&c3, f.loop, rmq_broker_addr(b));
    int64_t until = cm_mono_ms() + LIVE_WAIT_MS;
    int32_t code;
    proto_strlist_t none = {0};
    while ((code = live_consumer_list(&c3, "bm_group", &none)) == 0 && cm_mono_ms() < until) {
        proto_strlist_free(&none);
        usleep(20 * 1000);
    }
    proto_strlist_free(&none);
    cr_assert_eq(code, 1);

    rmq_broker_destroy(b);
    fx_fini(&f);
    live_client_free(&c1);
    live_client_free(&c2);
    live_client_free(&c3);
}

Test(live, broker_routes_its_own_topics) {
    fx_t f;
    fx_init(&f);
    rmq_broker_t *b = live_broker(f.dir, "bm-a", NULL);
    live_client_t c;
    live_client_open(&c, f.loop, rmq_broker_addr(b));

    char remark[512];
    proto_topic_route_t r = {0};
    cr_assert_eq(live_route(&c, "bm_made_later", &r, remark, sizeof remark), 17);
    cr_assert(strstr(remark, "No topic route info in name server for the topic: bm_made_later"),
              "%s", remark);
    proto_topic_route_free(&r);

    cr_assert_eq(rmq_broker_create_topic(b, "bm_made_later", 3, 6), RMQ_OK);
    /* The in-process registration is done when create_topic returns: no waiting. */
    cr_assert_eq(live_route(&c, "bm_made_later", &r, NULL, 0), 0);
    cr_assert_eq(r.broker_count, 1);
    cr_assert_str_eq(r.brokers[0].broker_name, "bm-a");
    cr_assert_str_eq(proto_broker_data_addr(&r.brokers[0], 0), rmq_broker_addr(b));
    cr_assert_eq(r.queue_count, 1);
    cr_assert_eq(r.queues[0].write_queue_nums, 3);
    cr_assert_eq(r.queues[0].read_queue_nums, 3);
    cr_assert_eq(r.queues[0].perm, 6);
    proto_topic_route_free(&r);

    /* The cluster info lists the broker too. */
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_GET_BROKER_CLUSTER_INFO, 0);
    live_call(&c, &req, &resp);
    cr_assert_eq(resp.code, 0);
    proto_cluster_info_t ci = {0};
    cr_assert_eq(proto_cluster_info_decode(resp.body, resp.body_len, &ci), RMQ_OK);
    cr_assert_eq(ci.broker_count, 1);
    cr_assert_str_eq(proto_broker_data_addr(&ci.brokers[0], 0), rmq_broker_addr(b));
    cr_assert_eq(ci.cluster_count, 1);
    cr_assert_str_eq(ci.clusters[0].cluster_name, "DefaultCluster");
    proto_cluster_info_free(&ci);
    proto_cmd_free(&resp);

    rmq_broker_destroy(b);
    fx_fini(&f);
    live_client_free(&c);
}

Test(live, second_broker_registers_with_the_first) {
    fx_t f;
    fx_init(&f);
    rmq_broker_t *a = live_broker(f.dir, "bm-a", NULL);
    rmq_broker_t *b = live_broker(f.dir, "bm-b", "namesrvAddr", rmq_broker_addr(a), NULL);
    cr_assert_eq(rmq_broker_create_topic(b, "bm_on_b", 2, 6), RMQ_OK);
    live_client_t c;
    live_client_open(&c, f.loop, rmq_broker_addr(a));

    /* Routed through a, pointing at b. */
    proto_topic_route_t r = {0};
    cr_assert(live_wait_route(&c, "bm_on_b", 0, &r), "a never learned b's topic");
    cr_assert_eq(r.broker_count, 1);
    cr_assert_str_eq(r.brokers[0].broker_name, "bm-b");
    cr_assert_str_eq(proto_broker_data_addr(&r.brokers[0], 0), rmq_broker_addr(b));
    cr_assert_eq(r.queues[0].write_queue_nums, 2);
    proto_topic_route_free(&r);

    /* A topic both serve lists both brokers. */
    cr_assert_eq(rmq_broker_create_topic(a, "bm_both", 4, 6), RMQ_OK);
    cr_assert_eq(rmq_broker_create_topic(b, "bm_both", 4, 6), RMQ_OK);
    int64_t until = cm_mono_ms() + LIVE_WAIT_MS;
    size_t brokers = 0;
    while (brokers < 2 && cm_mono_ms() < until) {
        proto_topic_route_t both = {0};
        if (live_route(&c, "bm_both", &both, NULL, 0) == 0) brokers = both.broker_count;
        proto_topic_route_free(&both);
        if (brokers < 2) usleep(50 * 1000);
    }
    cr_assert_eq(brokers, 2);

    /* b's stop unregisters it: its topic is gone from a at once, a's own stays. */
    rmq_broker_destroy(b);
    cr_assert_eq(live_route(&c, "bm_on_b", &r, NULL, 0), 17);
    proto_topic_route_free(&r);
    cr_assert_eq(live_route(&c, "bm_both", &r, NULL, 0), 0);
    cr_assert_eq(r.broker_count, 1);
    cr_assert_str_eq(r.brokers[0].broker_name, "bm-a");
    proto_topic_route_free(&r);

    rmq_broker_destroy(a);
    fx_fini(&f);
    live_client_free(&c);
}

Test(live, standalone_name_server) {
    fx_t f;
    fx_init(&f);
    char err[256];
    setenv("HOME", f.dir, 1); /* its kvConfig.json: the temp dir's, not the user's */
    rmq_conf_t *conf = rmq_conf_new();
    nsrv_server_t *ns = nsrv_server_new_on(conf, "127.0.0.1", 0, err, sizeof err);
    cr_assert_not_null(ns, "%s", err);
    char *addr = cm_sprintf("127.0.0.1:%d", nsrv_server_port(ns));
    live_client_t c;
    live_client_open(&c, f.loop, addr);

    char remark[512];
    proto_topic_route_t r = {0};
    cr_assert_eq(live_route(&c, "bm_unknown", &r, remark, sizeof remark), 17);
    cr_assert(strstr(remark, "bm_unknown"), "%s", remark);
    proto_topic_route_free(&r);

    /* A broker pointed at it becomes routable through it. */
    rmq_broker_t *b = live_broker(f.dir, "bm-n", "namesrvAddr", addr, NULL);
    cr_assert_eq(rmq_broker_create_topic(b, "bm_via_nsrv", 1, 6), RMQ_OK);
    cr_assert(live_wait_route(&c, "bm_via_nsrv", 0, &r));
    cr_assert_str_eq(proto_broker_data_addr(&r.brokers[0], 0), rmq_broker_addr(b));
    proto_topic_route_free(&r);

    /* Codes a name server does not serve answer REQUEST_CODE_NOT_SUPPORTED. */
    proto_cmd_t req, resp;
    proto_cmd_init(&req);
    proto_cmd_request(&req, PROTO_PULL_MESSAGE, 0);
    live_call(&c, &req, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED);
    proto_cmd_free(&resp);

    rmq_broker_destroy(b);
    cr_assert_eq(live_route(&c, "bm_via_nsrv", &r, NULL, 0), 17);
    proto_topic_route_free(&r);
    nsrv_server_destroy(ns);
    rmq_conf_destroy(conf);
    fx_fini(&f);
    live_client_free(&c);
    cm_free(addr);
}
