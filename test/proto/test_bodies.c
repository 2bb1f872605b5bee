/* JSON bodies (remoting.md §6): every body captured from Java 4.9.8 (and ali-ons) decodes to
 * the fields it carries; every body type round-trips struct -> JSON -> struct; Java's
 * unquoted-key and compressed forms are read; bad shapes are refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "proto/proto.h"
#include "../testdata.h"

static void load(const char *dir, const char *file, proto_cmd_t *cmd) {
    td_frame(dir, file, cmd);
}

static void java(const char *file, proto_cmd_t *cmd) {
    load("rocketmq-4.9.8/frames", file, cmd);
}

/* Structural equality; object members are matched by key, in any order. */
static bool json_equal(const proto_json_t *x, const proto_json_t *y) {
    if (x->type != y->type || x->len != y->len) return false;
    switch (x->type) {
    case PJ_NULL:
        return true;
    case PJ_BOOL:
        return x->b == y->b;
    case PJ_NUMBER:
        return x->i == y->i && x->d == y->d;
    case PJ_STRING:
        return memcmp(x->s, y->s, x->len) == 0;
    case PJ_ARRAY:
        for (size_t i = 0; i < x->len; i++)
            if (!json_equal(x->items[i], y->items[i])) return false;
        return true;
    case PJ_OBJECT:
        for (size_t i = 0; i < x->len; i++) {
            cr_assert_eq(x->keys[i]->type, PJ_STRING);
            const proto_json_t *o = proto_json_get(y, x->keys[i]->s);
            if (!o || !json_equal(x->items[i], o)) return false;
        }
        return true;
    }
    return false;
}

static void assert_json_equal(const cm_buf_t *a, const void *b, size_t blen) {
    proto_json_t *x, *y;
    cr_assert_eq(proto_json_parse((const char *)a->data, a->len, &x), RMQ_OK);
    cr_assert_eq(proto_json_parse(b, blen, &y), RMQ_OK);
    cr_assert(json_equal(x, y), "%.*s\nvs\n%.*s", (int)a->len, a->data, (int)blen, (const char *)b);
    proto_json_free(x);
    proto_json_free(y);
}

/* ---------------------------------------------------------------- heartbeat */

Test(bodies, heartbeat_java_producer) {
    proto_cmd_t cmd;
    java("broker-req-34-c2s-1.bin", &cmd);
    proto_heartbeat_t hb;
    cr_assert_eq(proto_heartbeat_decode(cmd.body, cmd.body_len, &hb), RMQ_OK);
    cr_assert_str_eq(hb.client_id, "192.0.2.2@p-ipg29930");
    cr_assert_eq(hb.consumer_count, 0);
    cr_assert_eq(hb.producer_groups.count, 2);
    cr_assert_str_eq(hb.producer_groups.items[0], "ipg29930");
    cr_assert_str_eq(hb.producer_groups.items[1], "CLIENT_INNER_PRODUCER");
    cm_buf_t out = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &out);
    /* Java's own text, byte for byte: same key order, same shapes */
    cr_assert_eq(out.len, cmd.body_len);
    cr_assert_eq(memcmp(out.data, cmd.body, out.len), 0, "%.*s", (int)out.len, out.data);
    cm_buf_free(&out);
    proto_heartbeat_free(&hb);
    proto_cmd_free(&cmd);
}

Test(bodies, heartbeat_consumer_subscriptions) {
    proto_cmd_t cmd;
    load("ali-ons", "alions-req-34-1.bin", &cmd);
    proto_heartbeat_t hb;
    cr_assert_eq(proto_heartbeat_decode(cmd.body, cmd.body_len, &hb), RMQ_OK);
    cr_assert_eq(hb.consumer_count, 1);
    const proto_consumer_data_t *c = &hb.consumers[0];
    cr_assert_str_eq(c->group_name, "GID_ali");
    cr_assert_eq(c->consume_type, PROTO_CONSUME_PASSIVELY);
    cr_assert_eq(c->message_model, PROTO_CLUSTERING);
    cr_assert_eq(c->consume_from_where, PROTO_CONSUME_FROM_LAST_OFFSET);
    cr_assert_not(c->unit_mode);
    cr_assert_eq(c->sub_count, 2);
    const proto_subscription_t *s = &c->subs[0];
    cr_assert_str_eq(s->topic, "IopTopic");
    cr_assert_str_eq(s->sub_string, "TagA || TagB");
    cr_assert_eq(s->tags.count, 2);
    cr_assert_str_eq(s->tags.items[0], "TagA");
    cr_assert_str_eq(s->tags.items[1], "TagB");
    cr_assert_eq(s->code_count, 2);
    cr_assert_eq(s->codes[0], 2598919);
    cr_assert_eq(s->codes[1], 2598920);
    cr_assert_eq(s->codes[0], cm_java_hash("TagA", 4));
    cr_assert_eq(s->sub_version, 1795587293741LL);
    cr_assert_null(s->expression_type); /* ali-ons omits it */
    cr_assert_str_eq(c->subs[1].topic, "%RETRY%GID_ali");
    cr_assert_str_eq(c->subs[1].sub_string, "*");
    cr_assert_eq(c->subs[1].tags.count, 0);
    cr_assert_eq(hb.producer_groups.count, 1);

    /* our tag parser gives what the client computed */
    proto_subscription_t mine = {0};
    proto_subscription_set_tags(&mine, s->sub_string);
    cr_assert_eq(mine.tags.count, s->tags.count);
    for (size_t i = 0; i < mine.tags.count; i++) {
        cr_assert_str_eq(mine.tags.items[i], s->tags.items[i]);
        cr_assert_eq(mine.codes[i], s->codes[i]);
    }
    proto_subscription_free(&mine);

    cm_buf_t out = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &out);
    assert_json_equal(&out, cmd.body, cmd.body_len);
    cm_buf_free(&out);
    proto_heartbeat_free(&hb);
    proto_cmd_free(&cmd);
}

Test(bodies, heartbeat_spec_example_and_round_trip) {
    const char *text =
        "{\"clientID\":\"192.0.2.2@c1\",\"consumerDataSet\":[{\"consumeFromWhere\":"
        "\"CONSUME_FROM_LAST_OFFSET\",\"consumeType\":\"CONSUME_PASSIVELY\",\"groupName\":\"g\","
        "\"messageModel\":\"CLUSTERING\",\"subscriptionDataSet\":[{\"classFilterMode\":false,"
        "\"codeSet\":[65],\"expressionType\":\"TAG\",\"subString\":\"A\",\"subVersion\":"
        "1795579032190,\"tagsSet\":[\"A\"],\"topic\":\"T\"}],\"unitMode\":false}],"
        "\"producerDataSet\":[{\"groupName\":\"pg\"},{\"groupName\":\"CLIENT_INNER_PRODUCER\"}]}";
    proto_heartbeat_t hb;
    cr_assert_eq(proto_heartbeat_decode(text, strlen(text), &hb), RMQ_OK);
    cr_assert_str_eq(hb.consumers[0].subs[0].expression_type, "TAG");
    cr_assert_eq(hb.consumers[0].subs[0].codes[0], 65);
    cm_buf_t out = CM_BUF_INIT;
    proto_heartbeat_encode(&hb, &out);
    cr_assert_eq(out.len, strlen(text));
    cr_assert_eq(memcmp(out.data, text, out.len), 0, "%.*s", (int)out.len, out.data);
    cm_buf_free(&out);
    proto_heartbeat_free(&hb);

    /* built from scratch: broadcasting pull consumer, every enum value survives */
    proto_heartbeat_t b = {0}, back;
    b.client_id = cm_strdup("c");
    for (int cf = PROTO_CONSUME_FROM_LAST_OFFSET; cf <= PROTO_CONSUME_FROM_MAX_OFFSET; cf++) {
        proto_consumer_data_t *c = proto_heartbeat_add_consumer(&b);
        c->group_name = cm_sprintf("g%d", cf);
        c->consume_type = PROTO_CONSUME_ACTIVELY;
        c->message_model = PROTO_BROADCASTING;
        c->consume_from_where = (proto_consume_from_t)cf;
        c->unit_mode = cf % 2;
        proto_subscription_t *s = proto_consumer_data_add_sub(c);
        s->topic = cm_strdup("T");
        s->expression_type = cm_strdup("SQL92");
        s->sub_version = 5;
        s->class_filter_mode = true;
        proto_subscription_set_tags(s, "a>1");
    }
    proto_heartbeat_encode(&b, &out);
    cr_assert_eq(proto_heartbeat_decode(out.data, out.len, &back), RMQ_OK);
    cr_assert_eq(back.consumer_count, 6);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(back.consumers[i].consume_from_where, (proto_consume_from_t)i);
        cr_assert_eq(back.consumers[i].consume_type, PROTO_CONSUME_ACTIVELY);
        cr_assert_eq(back.consumers[i].message_model, PROTO_BROADCASTING);
        cr_assert_eq(back.consumers[i].unit_mode, (bool)(i % 2));
        cr_assert_str_eq(back.consumers[i].subs[0].expression_type, "SQL92");
        cr_assert(back.consumers[i].subs[0].class_filter_mode);
    }
    cm_buf_free(&out);
    proto_heartbeat_free(&b);
    proto_heartbeat_free(&back);
}

Test(bodies, heartbeat_bad_shapes) {
    const char *bad[] = {
        "[]",
        "{\"consumerDataSet\":{}}",
        "{\"consumerDataSet\":[{\"consumeType\":\"CONSUME_SOMETIMES\"}]}",
        "{\"consumerDataSet\":[{\"messageModel\":1}]}",
        "{\"consumerDataSet\":[{\"subscriptionDataSet\":[{\"codeSet\":[\"x\"]}]}]}",
        "{\"consumerDataSet\":[{\"subscriptionDataSet\":[{\"tagsSet\":[1]}]}]}",
        "{\"producerDataSet\":[{\"groupName\":5}]}",
        "{\"clientID\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        proto_heartbeat_t hb;
        cr_assert_eq(proto_heartbeat_decode(bad[i], strlen(bad[i]), &hb), RMQ_ERR_MALFORMED, "%s",
                     bad[i]);
        cr_assert_eq(hb.consumer_count, 0);
    }
    proto_heartbeat_t hb;
    cr_assert_eq(proto_heartbeat_decode("{", 1, &hb), RMQ_ERR_BAD_JSON);
    /* nulls and absent members take defaults */
    const char *sparse = "{\"clientID\":null,\"consumerDataSet\":[{\"groupName\":\"g\"}]}";
    cr_assert_eq(proto_heartbeat_decode(sparse, strlen(sparse), &hb), RMQ_OK);
    cr_assert_null(hb.client_id);
    cr_assert_eq(hb.consumers[0].consume_type, PROTO_CONSUME_PASSIVELY);
    cr_assert_eq(hb.consumers[0].message_model, PROTO_CLUSTERING);
    proto_heartbeat_free(&hb);
}

Test(bodies, subscription_tag_parsing) {
    proto_subscription_t s = {0};
    proto_subscription_set_tags(&s, " TagA ||TagB|| ||TagA||\tC d ");
    cr_assert_str_eq(s.sub_string, " TagA ||TagB|| ||TagA||\tC d ");
    cr_assert_eq(s.tags.count, 3);
    cr_assert_str_eq(s.tags.items[0], "TagA");
    cr_assert_str_eq(s.tags.items[1], "TagB");
    cr_assert_str_eq(s.tags.items[2], "C d");
    cr_assert_eq(s.code_count, 3);
    cr_assert_eq(s.codes[0], 2598919);
    cr_assert_eq(s.codes[2], cm_java_hash("C d", 3));
    const char *all[] = {NULL, "", "*"};
    for (int i = 0; i < 3; i++) {
        proto_subscription_set_tags(&s, all[i]);
        cr_assert_str_eq(s.sub_string, "*");
        cr_assert_eq(s.tags.count, 0);
        cr_assert_eq(s.code_count, 0);
    }
    proto_subscription_set_tags(&s, "\xe4\xb8\xad");
    cr_assert_eq(s.codes[0], 0x4e2d); /* Java hash of one UTF-16 unit */
    proto_subscription_free(&s);
}

/* ---------------------------------------------------------------- routes, cluster */

Test(bodies, topic_route_golden) {
    proto_cmd_t cmd;
    java("namesrv-resp-105-code0-1.bin", &cmd);
    proto_topic_route_t r;
    cr_assert_eq(proto_topic_route_decode(cmd.body, cmd.body_len, &r), RMQ_OK);
    cr_assert_null(r.order_topic_conf);
    cr_assert_eq(r.broker_count, 1);
    cr_assert_str_eq(r.brokers[0].broker_name, "broker-a");
    cr_assert_str_eq(r.brokers[0].cluster, "DefaultCluster");
    cr_assert_eq(r.brokers[0].addr_count, 1);
    cr_assert_str_eq(proto_broker_data_addr(&r.brokers[0], 0), "127.0.0.1:10911");
    cr_assert_null(proto_broker_data_addr(&r.brokers[0], 1));
    cr_assert_eq(r.queue_count, 1);
    cr_assert_str_eq(r.queues[0].broker_name, "broker-a");
    cr_assert_eq(r.queues[0].perm, 7);
    cr_assert_eq(r.queues[0].read_queue_nums, 8);
    cr_assert_eq(r.queues[0].write_queue_nums, 8);
    cr_assert_eq(r.queues[0].topic_sys_flag, 0);
    cr_assert_eq(r.filter_server_count, 0);
    cm_buf_t out = CM_BUF_INIT;
    proto_topic_route_encode(&r, true, &out);
    cr_assert_eq(out.len, cmd.body_len, "%.*s", (int)out.len, out.data);
    cr_assert_eq(memcmp(out.data, cmd.body, out.len), 0);
    cm_buf_free(&out);
    proto_topic_route_free(&r);
    proto_cmd_free(&cmd);
}

Test(bodies, topic_route_unquoted_keys_and_round_trip) {
    proto_topic_route_t r = {0}, back;
    r.order_topic_conf = cm_strdup("broker-a:4;broker-b:4");
    proto_broker_data_t *b = proto_topic_route_add_broker(&r);
    b->broker_name = cm_strdup("broker-a");
    b->cluster = cm_strdup("C");
    proto_broker_data_add_addr(b, 2, "10.0.0.3:10911");
    proto_broker_data_add_addr(b, 0, "10.0.0.1:10911");
    proto_broker_data_add_addr(b, 1, "old");
    proto_broker_data_add_addr(b, 1, "10.0.0.2:10911"); /* replaces */
    cr_assert_eq(b->addr_count, 3);
    proto_queue_data_t *q = proto_topic_route_add_queue(&r);
    q->broker_name = cm_strdup("broker-a");
    q->read_queue_nums = 4;
    q->write_queue_nums = 2;
    q->perm = PROTO_PERM_READ | PROTO_PERM_WRITE;
    q->topic_sys_flag = 1;
    r.filter_servers = cm_calloc(1, sizeof *r.filter_servers);
    r.filter_server_count = 1;
    r.filter_servers[0].broker_addr = cm_strdup("10.0.0.1:10911");
    proto_strlist_add(&r.filter_servers[0].servers, "10.0.0.9:1");

    for (int std = 0; std < 2; std++) {
        cm_buf_t out = CM_BUF_INIT;
        proto_topic_route_encode(&r, std, &out);
        char *text = cm_strndup((char *)out.data, out.len);
        const char *want = std ? "\"brokerAddrs\":{\"0\":\"10.0.0.1:10911\",\"1\":"
                               : "\"brokerAddrs\":{0:\"10.0.0.1:10911\",1:";
        cr_assert_not_null(strstr(text, want), "%s", text);
        cr_assert_eq(proto_topic_route_decode(out.data, out.len, &back), RMQ_OK);
        cr_assert_str_eq(back.order_topic_conf, "broker-a:4;broker-b:4");
        cr_assert_eq(back.brokers[0].addr_count, 3);
        cr_assert_str_eq(proto_broker_data_addr(&back.brokers[0], 2), "10.0.0.3:10911");
        cr_assert_str_eq(proto_broker_data_addr(&back.brokers[0], 1), "10.0.0.2:10911");
        cr_assert_eq(back.queues[0].write_queue_nums, 2);
        cr_assert_eq(back.queues[0].topic_sys_flag, 1);
        cr_assert_eq(back.filter_server_count, 1);
        cr_assert_str_eq(back.filter_servers[0].servers.items[0], "10.0.0.9:1");
        proto_topic_route_free(&back);
        cm_free(text);
        cm_buf_free(&out);
    }
    const char *bad = "{\"brokerDatas\":[{\"brokerAddrs\":{\"x\":\"a\"}}]}";
    cr_assert_eq(proto_topic_route_decode(bad, strlen(bad), &back), RMQ_ERR_MALFORMED);
    proto_topic_route_free(&r);
}

Test(bodies, cluster_info_java_form) {
    const char *text = "{\"brokerAddrTable\":{\"broker-a\":{\"brokerAddrs\":{0:\"127.0.0.1:10911\","
                       "1:\"127.0.0.1:10921\"},\"brokerName\":\"broker-a\",\"cluster\":"
                       "\"DefaultCluster\"}},\"clusterAddrTable\":{\"DefaultCluster\":"
                       "[\"broker-a\"]}}";
    proto_cluster_info_t ci;
    cr_assert_eq(proto_cluster_info_decode(text, strlen(text), &ci), RMQ_OK);
    cr_assert_eq(ci.broker_count, 1);
    cr_assert_str_eq(ci.brokers[0].broker_name, "broker-a");
    cr_assert_str_eq(proto_broker_data_addr(&ci.brokers[0], 1), "127.0.0.1:10921");
    cr_assert_eq(ci.cluster_count, 1);
    cr_assert_str_eq(ci.clusters[0].cluster_name, "DefaultCluster");
    cr_assert_str_eq(ci.clusters[0].broker_names.items[0], "broker-a");
    cm_buf_t out = CM_BUF_INIT;
    proto_cluster_info_encode(&ci, false, &out);
    cr_assert_eq(out.len, strlen(text), "%.*s", (int)out.len, out.data);
    cr_assert_eq(memcmp(out.data, text, out.len), 0);
    cm_buf_free(&out);
    proto_cluster_info_free(&ci);
}

/* ---------------------------------------------------------------- register broker */

Test(bodies, register_broker_golden) {
    proto_cmd_t cmd;
    java("namesrv-req-103-c2s-2.bin", &cmd);
    proto_register_broker_body_t b;
    cr_assert_eq(proto_register_broker_body_decode(cmd.body, cmd.body_len, false, 1 << 20, &b),
                 RMQ_OK);
    cr_assert_eq(b.data_version.counter, 1);
    cr_assert_eq(b.data_version.timestamp, 1795579031178LL);
    cr_assert_eq(b.filter_servers.count, 0);
    cr_assert_eq(b.topic_count, 9, "%zu", b.topic_count);
    const proto_topic_config_t *iop = NULL, *tbw = NULL;
    for (size_t i = 0; i < b.topic_count; i++) {
        if (strcmp(b.topics[i].topic_name, "IopTopic29930") == 0) iop = &b.topics[i];
        if (strcmp(b.topics[i].topic_name, "TBW102") == 0) tbw = &b.topics[i];
    }
    cr_assert_not_null(iop);
    cr_assert_eq(iop->perm, 6);
    cr_assert_eq(iop->read_queue_nums, 4);
    cr_assert_eq(iop->write_queue_nums, 4);
    cr_assert_str_eq(iop->topic_filter_type, "SINGLE_TAG");
    cr_assert_not(iop->order);
    cr_assert_not_null(tbw);
    cr_assert_eq(tbw->perm, 7);
    cr_assert_eq(tbw->write_queue_nums, 8);
    cm_buf_t out = CM_BUF_INIT;
    proto_register_broker_body_encode(&b, &out);
    /* same order as read, Java's key order: byte-identical to the capture */
    cr_assert_eq(out.len, cmd.body_len);
    cr_assert_eq(memcmp(out.data, cmd.body, out.len), 0);
    cm_buf_free(&out);
    proto_register_broker_body_free(&b);
    proto_cmd_free(&cmd);
}

static void put_piece(cm_buf_t *b, const char *s) {
    cm_buf_put32(b, (uint32_t)strlen(s));
    cm_buf_append_str(b, s);
}

Test(bodies, register_broker_compressed_form) {
    cm_buf_t raw = CM_BUF_INIT, z = CM_BUF_INIT;
    put_piece(&raw, "{\"counter\":3,\"timestamp\":1700000000000}");
    cm_buf_put32(&raw, 2);
    put_piece(&raw, "%RETRY%g 1 1 6 SINGLE_TAG");
    put_piece(&raw, "T 8 4 7 MULTI_TAG");
    put_piece(&raw, "[\"10.0.0.5:1\"]");
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZLIB, 5, raw.data, raw.len, &z), RMQ_OK);
    proto_register_broker_body_t b;
    cr_assert_eq(proto_register_broker_body_decode(z.data, z.len, true, 1 << 20, &b), RMQ_OK);
    cr_assert_eq(b.data_version.counter, 3);
    cr_assert_eq(b.topic_count, 2);
    cr_assert_str_eq(b.topics[0].topic_name, "%RETRY%g");
    cr_assert_eq(b.topics[1].read_queue_nums, 8);
    cr_assert_eq(b.topics[1].write_queue_nums, 4);
    cr_assert_eq(b.topics[1].perm, 7);
    cr_assert_str_eq(b.topics[1].topic_filter_type, "MULTI_TAG");
    cr_assert_str_eq(b.filter_servers.items[0], "10.0.0.5:1");
    proto_register_broker_body_free(&b);
    /* inflating past the limit, or a lying piece length, is refused */
    cr_assert_eq(proto_register_broker_body_decode(z.data, z.len, true, 16, &b),
                 RMQ_ERR_COMPRESSION);
    raw.data[3] = 0xFF;
    z.len = 0;
    cr_assert_eq(proto_compress(SYSFLAG_COMPRESS_ZLIB, 5, raw.data, raw.len, &z), RMQ_OK);
    cr_assert_eq(proto_register_broker_body_decode(z.data, z.len, true, 1 << 20, &b),
                 RMQ_ERR_MALFORMED);
    cm_buf_free(&raw);
    cm_buf_free(&z);
}

Test(bodies, register_broker_round_trip) {
    proto_register_broker_body_t b = {0}, back;
    b.data_version = (proto_data_version_t){1700000000001LL, 42};
    proto_topic_config_t *t = proto_register_broker_body_add_topic(&b);
    t->topic_name = cm_strdup("Ord");
    t->read_queue_nums = 2;
    t->write_queue_nums = 3;
    t->perm = 6;
    t->topic_sys_flag = 2;
    t->order = true;
    t->topic_filter_type = cm_strdup("MULTI_TAG");
    t = proto_register_broker_body_add_topic(&b);
    t->topic_name = cm_strdup("Plain"); /* NULL filter type is written as SINGLE_TAG */
    proto_strlist_add(&b.filter_servers, "fs:1");
    cm_buf_t out = CM_BUF_INIT;
    proto_register_broker_body_encode(&b, &out);
    cr_assert_eq(proto_register_broker_body_decode(out.data, out.len, false, 0, &back), RMQ_OK);
    cr_assert_eq(back.data_version.counter, 42);
    cr_assert_eq(back.data_version.timestamp, 1700000000001LL);
    cr_assert_eq(back.topic_count, 2);
    cr_assert_str_eq(back.topics[0].topic_name, "Ord");
    cr_assert_eq(back.topics[0].write_queue_nums, 3);
    cr_assert_eq(back.topics[0].topic_sys_flag, 2);
    cr_assert(back.topics[0].order);
    cr_assert_str_eq(back.topics[0].topic_filter_type, "MULTI_TAG");
    cr_assert_str_eq(back.topics[1].topic_filter_type, "SINGLE_TAG");
    cr_assert_str_eq(back.filter_servers.items[0], "fs:1");
    cm_buf_free(&out);
    proto_register_broker_body_free(&b);
    proto_register_broker_body_free(&back);
}

/* ---------------------------------------------------------------- small bodies */

/* ResetOffsetBody as fastjson writes a map keyed by MessageQueue objects (Broker2Client's
 * 220 body and 222 answer): the keys are objects, members in name order. */
Test(bodies, reset_offset_body_shape) {
    const proto_queue_offset_t table[] = {{"T\"1", "broker-a", 0, 5}, {"T\"1", "broker-a", 1, -1}};
    cm_buf_t out = CM_BUF_INIT;
    proto_reset_offset_body_encode(table, 2, &out);
    const char *want = "{\"offsetTable\":{{\"brokerName\":\"broker-a\",\"queueId\":0,"
                       "\"topic\":\"T\\\"1\"}:5,{\"brokerName\":\"broker-a\",\"queueId\":1,"
                       "\"topic\":\"T\\\"1\"}:-1}}";
    cr_assert_eq(out.len, strlen(want));
    cr_assert_eq(memcmp(out.data, want, out.len), 0, "%.*s", (int)out.len, (const char *)out.data);
    out.len = 0;
    proto_reset_offset_body_encode(NULL, 0, &out);
    cr_assert_eq(out.len, strlen("{\"offsetTable\":{}}"));
    cm_buf_free(&out);
}

/* ConsumeMessageDirectlyResult as fastjson writes it (keys sorted, no null remark). */
Test(bodies, consume_direct_result_shape) {
    cm_buf_t out = CM_BUF_INIT;
    proto_consume_direct_result_encode(true, "CR_LATER", 12, &out);
    const char *want =
        "{\"autoCommit\":true,\"consumeResult\":\"CR_LATER\",\"order\":true,\"spentTimeMills\":12}";
    cr_assert_eq(out.len, strlen(want));
    cr_assert_eq(memcmp(out.data, want, out.len), 0, "%.*s", (int)out.len, (const char *)out.data);
    cm_buf_free(&out);
}

Test(bodies, consumer_list_golden) {
    proto_cmd_t cmd;
    java("broker-resp-38-code0-1.bin", &cmd);
    proto_strlist_t ids;
    cr_assert_eq(proto_consumer_list_decode(cmd.body, cmd.body_len, &ids), RMQ_OK);
    cr_assert_eq(ids.count, 1);
    cr_assert_str_eq(ids.items[0], "192.0.2.2@c129930");
    cm_buf_t out = CM_BUF_INIT;
    proto_consumer_list_encode(&ids, &out);
    cr_assert_eq(out.len, cmd.body_len);
    cr_assert_eq(memcmp(out.data, cmd.body, out.len), 0);
    cm_buf_free(&out);
    proto_strlist_free(&ids);
    proto_cmd_free(&cmd);
    const char *bad = "{\"consumerIdList\":\"x\"}";
    cr_assert_eq(proto_consumer_list_decode(bad, strlen(bad), &ids), RMQ_ERR_MALFORMED);
}

Test(bodies, lock_batch_golden) {
    proto_cmd_t cmd;
    java("broker-req-41-c2s-1.bin", &cmd);
    proto_lock_batch_t lb;
    cr_assert_eq(proto_lock_batch_decode(cmd.body, cmd.body_len, &lb), RMQ_OK);
    cr_assert_str_eq(lb.client_id, "192.0.2.2@oc29930");
    cr_assert_str_eq(lb.consumer_group, "iog29930");
    cr_assert_eq(lb.mqs.count, 1);
    cr_assert_str_eq(lb.mqs.items[0].topic, "IopOrder29930");
    cr_assert_str_eq(lb.mqs.items[0].broker_name, "broker-a");
    cr_assert_eq(lb.mqs.items[0].queue_id, 1);
    cm_buf_t out = CM_BUF_INIT;
    proto_lock_batch_encode(&lb, &out);
    cr_assert_eq(out.len, cmd.body_len);
    cr_assert_eq(memcmp(out.data, cmd.body, out.len), 0);
    cm_buf_free(&out);
    proto_lock_batch_free(&lb);
    proto_cmd_free(&cmd);

    java("broker-req-42-c2s-1.bin", &cmd);
    cr_assert_eq(proto_lock_batch_decode(cmd.body, cmd.body_len, &lb), RMQ_OK);
    cr_assert_eq(lb.mqs.count, 4);
    cr_assert_eq(lb.mqs.items[2].queue_id, 3);
    proto_lock_batch_free(&lb);
    proto_cmd_free(&cmd);

    java("broker-resp-41-code0-2.bin", &cmd);
    proto_mq_list_t ok;
    cr_assert_eq(proto_lock_ok_decode(cmd.body, cmd.body_len, &ok), RMQ_OK);
    cr_assert_eq(ok.count, 1);
    cr_assert_eq(ok.items[0].queue_id, 0);
    cr_assert_str_eq(ok.items[0].topic, "IopOrder29930");
    proto_lock_ok_encode(&ok, &out);
    cr_assert_eq(out.len, cmd.body_len);
    cr_assert_eq(memcmp(out.data, cmd.body, out.len), 0);
    cm_buf_free(&out);
    proto_mq_list_free(&ok);
    proto_cmd_free(&cmd);

    const char *bad = "{\"mqSet\":[{\"queueId\":\"x\"}]}";
    cr_assert_eq(proto_lock_batch_decode(bad, strlen(bad), &lb), RMQ_ERR_MALFORMED);
    cr_assert_eq(lb.mqs.count, 0);
}

Test(bodies, kv_table_and_topic_list) {
    proto_ext_t t = {0}, back;
    proto_ext_set(&t, "b", "2");
    proto_ext_set(&t, "a", "1;x");
    cm_buf_t out = CM_BUF_INIT;
    proto_kv_table_encode(&t, &out);
    const char *want = "{\"table\":{\"a\":\"1;x\",\"b\":\"2\"}}";
    cr_assert_eq(out.len, strlen(want));
    cr_assert_eq(memcmp(out.data, want, out.len), 0);
    cr_assert_eq(proto_kv_table_decode(out.data, out.len, &back), RMQ_OK);
    cr_assert_eq(back.count, 2);
    cr_assert_str_eq(proto_ext_get(&back, "a"), "1;x");
    proto_ext_free(&back);
    proto_ext_free(&t);
    cm_buf_free(&out);
    const char *java_form = "{\"table\":{5:\"v\"}}";
    cr_assert_eq(proto_kv_table_decode(java_form, strlen(java_form), &back), RMQ_OK);
    cr_assert_str_eq(proto_ext_get(&back, "5"), "v");
    proto_ext_free(&back);

    proto_topic_list_t tl = {0}, tl2;
    proto_strlist_add(&tl.topics, "T1");
    proto_strlist_add(&tl.topics, "%RETRY%g");
    proto_topic_list_encode(&tl, &out);
    cr_assert_eq(proto_topic_list_decode(out.data, out.len, &tl2), RMQ_OK);
    cr_assert_eq(tl2.topics.count, 2);
    cr_assert_str_eq(tl2.topics.items[1], "%RETRY%g");
    cr_assert_null(tl2.broker_addr);
    proto_topic_list_free(&tl2);
    tl.broker_addr = cm_strdup("1.1.1.1:10911");
    out.len = 0;
    proto_topic_list_encode(&tl, &out);
    cr_assert_eq(proto_topic_list_decode(out.data, out.len, &tl2), RMQ_OK);
    cr_assert_str_eq(tl2.broker_addr, "1.1.1.1:10911");
    proto_topic_list_free(&tl2);
    proto_topic_list_free(&tl);
    cm_buf_free(&out);
}
