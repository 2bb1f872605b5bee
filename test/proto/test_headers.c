/* Typed custom headers (remoting.md §4-§5): every header decodes from the frames captured
 * from Java 4.9.8 (and ali-ons), re-encodes to the same extFields, round-trips, and refuses
 * missing required fields and non-numeric numbers naming the field. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "../testdata.h"

/* ---------------------------------------------------------------- helpers */

static void load(const char *dir, const char *file, proto_cmd_t *cmd) {
    td_frame(dir, file, cmd);
}

static void java(const char *file, proto_cmd_t *cmd) {
    load("rocketmq-4.9.8/frames", file, cmd);
}

/* Same key/value set, order ignored. */
static void assert_same_ext(const proto_ext_t *a, const proto_ext_t *b, const char *what) {
    cr_assert_eq(a->count, b->count, "%s: %zu keys vs %zu", what, a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const char *v = proto_ext_get(b, a->keys[i]);
        cr_assert_not_null(v, "%s: key %s lost", what, a->keys[i]);
        cr_assert_str_eq(v, a->vals[i], "%s: key %s", what, a->keys[i]);
    }
}

/* Copy of ext without key (to make a required field go missing). */
static void ext_without(const proto_ext_t *src, const char *key, proto_ext_t *dst) {
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->count; i++)
        if (strcmp(src->keys[i], key) != 0) proto_ext_set(dst, src->keys[i], src->vals[i]);
}

/* ---------------------------------------------------------------- send */

Test(headers, send_v2_golden_fields) {
    proto_cmd_t cmd;
    java("broker-req-310-c2s-1.bin", &cmd);
    proto_send_req_t h;
    cr_assert_eq(proto_send_req_decode(&cmd.ext, cmd.code, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.producer_group, "ipg29930");
    cr_assert_str_eq(h.topic, "IopTopic29930");
    cr_assert_str_eq(h.default_topic, "TBW102");
    cr_assert_eq(h.default_topic_queue_nums, 4);
    cr_assert_eq(h.queue_id, 3);
    cr_assert_eq(h.sys_flag, 0);
    cr_assert_eq(h.born_timestamp, 1795579031123LL);
    cr_assert_eq(h.flag, 0);
    cr_assert_eq(h.reconsume_times, 0);
    cr_assert_not(h.unit_mode);
    cr_assert_not(h.has_max_reconsume_times);
    cr_assert_not(h.batch);
    cr_assert_str_eq(h.broker_name, "broker-a");
    const char *v;
    size_t vl;
    cr_assert(proto_props_find(h.properties, strlen(h.properties), "TAGS", &v, &vl));
    cr_assert_eq(vl, 1);
    cr_assert_eq(v[0], 'A');
    cr_assert(proto_props_find(h.properties, strlen(h.properties), PROP_UNIQ_KEY, &v, &vl));
    cr_assert_eq(vl, 56);

    proto_ext_t back = {0};
    cr_assert_eq(proto_send_req_encode(&h, PROTO_SEND_MESSAGE_V2, &back), RMQ_OK);
    assert_same_ext(&cmd.ext, &back, "310");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);
}

Test(headers, send_batch_golden_is_batch) {
    proto_cmd_t cmd;
    java("broker-req-320-c2s-1.bin", &cmd);
    proto_send_req_t h;
    cr_assert_eq(proto_send_req_decode(&cmd.ext, cmd.code, &h, NULL), RMQ_OK);
    cr_assert(h.batch);
    cr_assert_str_eq(h.properties, "WAIT\x01true");
    proto_ext_t back = {0};
    cr_assert_eq(proto_send_req_encode(&h, PROTO_SEND_BATCH_MESSAGE, &back), RMQ_OK);
    assert_same_ext(&cmd.ext, &back, "320");
    proto_ext_free(&back);

    /* 320 writes m=true even when the caller forgot it */
    h.batch = false;
    cr_assert_eq(proto_send_req_encode(&h, PROTO_SEND_BATCH_MESSAGE, &back), RMQ_OK);
    cr_assert_str_eq(proto_ext_get(&back, "m"), "true");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);
}

Test(headers, send_v1_v2_same_struct) {
    proto_send_req_t h, v1, v2;
    proto_send_req_init(&h);
    cr_assert_str_eq(h.default_topic, "TBW102");
    cr_assert_eq(h.default_topic_queue_nums, 4);
    h.producer_group = "pg";
    h.topic = "T";
    h.queue_id = 2;
    h.sys_flag = 4;
    h.born_timestamp = 1700000000123LL;
    h.flag = 7;
    h.properties = "TRAN_MSG\x01true";
    h.reconsume_times = 3;
    h.unit_mode = true;
    h.has_max_reconsume_times = true;
    h.max_reconsume_times = 16;
    h.broker_name = "broker-b";

    proto_ext_t e1 = {0}, e2 = {0};
    cr_assert_eq(proto_send_req_encode(&h, PROTO_SEND_MESSAGE, &e1), RMQ_OK);
    cr_assert_eq(proto_send_req_encode(&h, PROTO_SEND_MESSAGE_V2, &e2), RMQ_OK);
    cr_assert_eq(e1.count, 14);
    cr_assert_eq(e2.count, 14);
    cr_assert_str_eq(proto_ext_get(&e1, "producerGroup"), "pg");
    cr_assert_str_eq(proto_ext_get(&e1, "maxReconsumeTimes"), "16");
    cr_assert_str_eq(proto_ext_get(&e1, "bname"), "broker-b");
    cr_assert_str_eq(proto_ext_get(&e2, "a"), "pg");
    cr_assert_str_eq(proto_ext_get(&e2, "c"), "TBW102");
    cr_assert_str_eq(proto_ext_get(&e2, "k"), "true");
    cr_assert_str_eq(proto_ext_get(&e2, "l"), "16");
    cr_assert_str_eq(proto_ext_get(&e2, "m"), "false");
    cr_assert_null(proto_ext_get(&e2, "producerGroup"));

    cr_assert_eq(proto_send_req_decode(&e1, PROTO_SEND_MESSAGE, &v1, NULL), RMQ_OK);
    cr_assert_eq(proto_send_req_decode(&e2, PROTO_SEND_MESSAGE_V2, &v2, NULL), RMQ_OK);
    const proto_send_req_t *all[] = {&v1, &v2};
    for (int i = 0; i < 2; i++) {
        const proto_send_req_t *d = all[i];
        cr_assert_str_eq(d->producer_group, "pg");
        cr_assert_str_eq(d->topic, "T");
        cr_assert_eq(d->queue_id, 2);
        cr_assert_eq(d->sys_flag, 4);
        cr_assert_eq(d->born_timestamp, 1700000000123LL);
        cr_assert_eq(d->flag, 7);
        cr_assert_str_eq(d->properties, "TRAN_MSG\x01true");
        cr_assert_eq(d->reconsume_times, 3);
        cr_assert(d->unit_mode);
        cr_assert(d->has_max_reconsume_times);
        cr_assert_eq(d->max_reconsume_times, 16);
        cr_assert_not(d->batch);
        cr_assert_str_eq(d->broker_name, "broker-b");
    }
    /* V1 names are not V2 names */
    cr_assert_eq(proto_send_req_decode(&e1, PROTO_SEND_MESSAGE_V2, &v2, NULL), RMQ_ERR_MALFORMED);
    cr_assert_eq(proto_send_req_decode(&e1, PROTO_PULL_MESSAGE, &v2, NULL), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(proto_send_req_encode(&h, PROTO_PULL_MESSAGE, &e1), RMQ_ERR_INVALID_ARG);
    proto_ext_free(&e1);
    proto_ext_free(&e2);
}

Test(headers, send_alions_defaults_for_absent_optionals) {
    proto_cmd_t cmd;
    load("ali-ons", "alions-req-310-1.bin", &cmd);
    proto_send_req_t h;
    cr_assert_eq(proto_send_req_decode(&cmd.ext, cmd.code, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.producer_group, "PID_ali");
    cr_assert_eq(h.queue_id, 2);
    cr_assert_eq(h.born_timestamp, 1795587293738LL);
    cr_assert_not(h.batch);
    cr_assert_not(h.has_max_reconsume_times);
    cr_assert_null(h.broker_name);
    proto_cmd_free(&cmd);
}

Test(headers, send_missing_required_names_field) {
    proto_cmd_t cmd;
    java("broker-req-310-c2s-1.bin", &cmd);
    const char *required[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        proto_ext_t e;
        ext_without(&cmd.ext, required[i], &e);
        proto_send_req_t h;
        proto_hdr_err_t err = {0};
        cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE_V2, &h, &err), RMQ_ERR_MALFORMED,
                     "%s", required[i]);
        cr_assert(err.missing);
        cr_assert_str_eq(err.field, required[i]);
        proto_ext_free(&e);
    }
    /* optional ones may go */
    const char *optional[] = {"i", "j", "k", "l", "m", "n"};
    for (size_t i = 0; i < sizeof optional / sizeof *optional; i++) {
        proto_ext_t e;
        ext_without(&cmd.ext, optional[i], &e);
        proto_send_req_t h;
        cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE_V2, &h, NULL), RMQ_OK, "%s",
                     optional[i]);
        proto_ext_free(&e);
    }
    proto_cmd_free(&cmd);
}

Test(headers, send_bad_numbers) {
    proto_cmd_t cmd;
    java("broker-req-310-c2s-1.bin", &cmd);
    const char *cases[][2] = {{"e", "x"},  {"e", "3.5"}, {"e", "2147483648"},
                              {"g", ""},   {"g", "1e3"}, {"k", "yes"},
                              {"j", " 1"}, {"l", "abc"}, {"d", "99999999999999999999"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        proto_ext_t e = {0};
        ext_without(&cmd.ext, "", &e);
        proto_ext_set(&e, cases[i][0], cases[i][1]);
        proto_send_req_t h;
        proto_hdr_err_t err = {0};
        cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE_V2, &h, &err), RMQ_ERR_MALFORMED,
                     "%s=%s", cases[i][0], cases[i][1]);
        cr_assert_not(err.missing);
        cr_assert_str_eq(err.field, cases[i][0]);
        cr_assert_str_eq(err.value, cases[i][1]);
        proto_ext_free(&e);
    }
    /* int32 limits themselves are fine */
    proto_ext_t e = {0};
    ext_without(&cmd.ext, "", &e);
    proto_ext_set(&e, "e", "-2147483648");
    proto_ext_set(&e, "h", "2147483647");
    proto_send_req_t h;
    cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE_V2, &h, NULL), RMQ_OK);
    cr_assert_eq(h.queue_id, INT32_MIN);
    cr_assert_eq(h.flag, INT32_MAX);
    proto_ext_free(&e);
    proto_cmd_free(&cmd);
}

Test(headers, send_response_golden_and_defaults) {
    proto_cmd_t cmd;
    java("broker-resp-310-code0-1.bin", &cmd);
    proto_send_resp_t r;
    cr_assert_eq(proto_send_resp_decode(&cmd.ext, &r, NULL), RMQ_OK);
    cr_assert_str_eq(r.msg_id, "7F00000100002A9F0000000000000000");
    cr_assert_eq(r.queue_id, 3);
    cr_assert_eq(r.queue_offset, 0);
    cr_assert_null(r.transaction_id);
    cr_assert_str_eq(r.msg_region, "DefaultRegion");
    cr_assert(r.trace_on);
    proto_ext_t back = {0};
    proto_send_resp_encode(&r, &back);
    assert_same_ext(&cmd.ext, &back, "310 response");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);

    java("broker-resp-320-code0-1.bin", &cmd);
    cr_assert_eq(proto_send_resp_decode(&cmd.ext, &r, NULL), RMQ_OK);
    cr_assert_eq(r.queue_offset, 74);
    cr_assert_eq(strlen(r.msg_id), 50 * 32 + 49);
    proto_cmd_free(&cmd);

    /* a zero-initialised response still carries MSG_REGION and TRACE_ON (trap 4) */
    proto_send_resp_init(&r);
    r.msg_id = "ID";
    proto_send_resp_encode(&r, &back);
    cr_assert_str_eq(proto_ext_get(&back, "MSG_REGION"), "DefaultRegion");
    cr_assert_str_eq(proto_ext_get(&back, "TRACE_ON"), "true");
    cr_assert_str_eq(proto_ext_get(&back, "queueId"), "0");
    cr_assert_str_eq(proto_ext_get(&back, "queueOffset"), "0");
    cr_assert_null(proto_ext_get(&back, "transactionId"));
    proto_ext_free(&back);

    /* TRACE_ON false survives; absent MSG_REGION reads as the default */
    proto_ext_t e = {0};
    proto_ext_set(&e, "msgId", "X");
    proto_ext_set(&e, "queueId", "1");
    proto_ext_set(&e, "queueOffset", "9");
    proto_ext_set(&e, "TRACE_ON", "false");
    proto_ext_set(&e, "transactionId", "T1");
    cr_assert_eq(proto_send_resp_decode(&e, &r, NULL), RMQ_OK);
    cr_assert_not(r.trace_on);
    cr_assert_str_eq(r.msg_region, "DefaultRegion");
    cr_assert_str_eq(r.transaction_id, "T1");
    proto_ext_free(&e);
}

/* ---------------------------------------------------------------- pull */

Test(headers, pull_golden) {
    proto_cmd_t cmd;
    java("broker-req-11-c2s-2.bin", &cmd);
    proto_pull_req_t h;
    cr_assert_eq(proto_pull_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.consumer_group, "icg29930");
    cr_assert_str_eq(h.topic, "IopTopic29930");
    cr_assert_eq(h.queue_id, 2);
    cr_assert_eq(h.queue_offset, 0);
    cr_assert_eq(h.max_msg_nums, 32);
    cr_assert_eq(h.sys_flag, PULL_FLAG_SUSPEND);
    cr_assert_eq(h.commit_offset, 0);
    cr_assert_eq(h.suspend_timeout_millis, 15000);
    cr_assert_null(h.subscription);
    cr_assert_eq(h.sub_version, 1795579032520LL);
    cr_assert_str_eq(h.expression_type, "TAG");
    cr_assert_str_eq(h.bname, "broker-a");
    proto_ext_t back = {0};
    proto_pull_req_encode(&h, &back);
    assert_same_ext(&cmd.ext, &back, "11");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);

    java("broker-resp-11-code0-1.bin", &cmd);
    proto_pull_resp_t r;
    cr_assert_eq(proto_pull_resp_decode(&cmd.ext, &r, NULL), RMQ_OK);
    cr_assert_eq(r.suggest_which_broker_id, 0);
    cr_assert_eq(r.next_begin_offset, 32);
    cr_assert_eq(r.min_offset, 0);
    cr_assert_eq(r.max_offset, 75);
    proto_pull_resp_encode(&r, &back);
    assert_same_ext(&cmd.ext, &back, "11 response");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);
}

Test(headers, pull_alions_subscription_and_default_expression) {
    proto_cmd_t cmd;
    load("ali-ons", "alions-req-11-1.bin", &cmd);
    proto_pull_req_t h;
    cr_assert_eq(proto_pull_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_eq(h.sys_flag, PULL_FLAG_SUSPEND | PULL_FLAG_SUBSCRIPTION);
    cr_assert_str_eq(h.subscription, "TagA || TagB");
    cr_assert_str_eq(h.expression_type, "TAG"); /* absent on the wire */
    cr_assert_null(h.bname);
    proto_cmd_free(&cmd);
}

Test(headers, pull_missing_required) {
    proto_cmd_t cmd;
    java("broker-req-11-c2s-1.bin", &cmd);
    const char *required[] = {"consumerGroup", "topic",   "queueId",      "queueOffset",
                              "maxMsgNums",    "sysFlag", "commitOffset", "suspendTimeoutMillis",
                              "subVersion"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        proto_ext_t e;
        ext_without(&cmd.ext, required[i], &e);
        proto_pull_req_t h;
        proto_hdr_err_t err = {0};
        cr_assert_eq(proto_pull_req_decode(&e, &h, &err), RMQ_ERR_MALFORMED);
        cr_assert(err.missing);
        cr_assert_str_eq(err.field, required[i]);
        char remark[128];
        proto_hdr_err_format(&err, remark, sizeof remark);
        char *want = cm_sprintf("the custom field <%s> is null", required[i]);
        cr_assert_str_eq(remark, want);
        cm_free(want);
        proto_ext_free(&e);
    }
    proto_cmd_free(&cmd);
}

/* ---------------------------------------------------------------- offsets, groups, clients */

Test(headers, query_and_update_consumer_offset_golden) {
    proto_cmd_t cmd;
    java("broker-req-14-c2s-2.bin", &cmd);
    proto_query_consumer_offset_req_t q;
    cr_assert_eq(proto_query_consumer_offset_req_decode(&cmd.ext, &q, NULL), RMQ_OK);
    cr_assert_str_eq(q.consumer_group, "icg29930");
    cr_assert_str_eq(q.topic, "IopTopic29930");
    cr_assert_eq(q.queue_id, 2);
    cr_assert_str_eq(q.bname, "broker-a");
    proto_ext_t back = {0};
    proto_query_consumer_offset_req_encode(&q, &back);
    assert_same_ext(&cmd.ext, &back, "14");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);

    java("broker-resp-14-code0-1.bin", &cmd);
    proto_offset_resp_t r;
    cr_assert_eq(proto_offset_resp_decode(&cmd.ext, &r, NULL), RMQ_OK);
    cr_assert_eq(r.offset, 0);
    proto_offset_resp_encode(&r, &back);
    assert_same_ext(&cmd.ext, &back, "14 response");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);

    java("broker-req-15-c2s-2.bin", &cmd);
    proto_update_consumer_offset_req_t u;
    cr_assert_eq(proto_update_consumer_offset_req_decode(&cmd.ext, &u, NULL), RMQ_OK);
    cr_assert_str_eq(u.consumer_group, "icg29930");
    cr_assert_eq(u.queue_id, 3);
    cr_assert_eq(u.commit_offset, 32);
    proto_update_consumer_offset_req_encode(&u, &back);
    assert_same_ext(&cmd.ext, &back, "15");
    proto_ext_free(&back);
    proto_cmd_free(&cmd);

    /* ali-ons sends numbers as JSON numbers and commitOffset -1 */
    load("ali-ons", "alions-req-15-1.bin", &cmd);
    cr_assert_eq(proto_update_consumer_offset_req_decode(&cmd.ext, &u, NULL), RMQ_OK);
    cr_assert_eq(u.commit_offset, -1);
    cr_assert_eq(u.queue_id, 0);
    proto_cmd_free(&cmd);
}

Test(headers, offset_missing_required) {
    proto_ext_t e = {0};
    proto_ext_set(&e, "topic", "T");
    proto_ext_set(&e, "consumerGroup", "g");
    proto_hdr_err_t err = {0};
    proto_query_consumer_offset_req_t q;
    cr_assert_eq(proto_query_consumer_offset_req_decode(&e, &q, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "queueId");
    proto_update_consumer_offset_req_t u;
    proto_ext_set(&e, "queueId", "1");
    cr_assert_eq(proto_update_consumer_offset_req_decode(&e, &u, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "commitOffset");
    proto_offset_resp_t r;
    cr_assert_eq(proto_offset_resp_decode(&e, &r, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "offset");
    proto_queue_req_t qr;
    cr_assert_eq(proto_queue_req_decode(&e, &qr, NULL), RMQ_OK);
    cr_assert_eq(qr.queue_id, 1);
    proto_search_offset_req_t s;
    cr_assert_eq(proto_search_offset_req_decode(&e, &s, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "timestamp");
    proto_ext_free(&e);
}

Test(headers, unregister_client_golden) {
    proto_cmd_t cmd;
    java("broker-req-35-c2s-1.bin", &cmd);
    proto_unregister_client_req_t h;
    cr_assert_eq(proto_unregister_client_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.client_id, "192.0.2.2@p-ipg29930");
    cr_assert_str_eq(h.producer_group, "ipg29930");
    cr_assert_null(h.consumer_group);
    proto_ext_t back = {0};
    proto_unregister_client_req_encode(&h, &back);
    assert_same_ext(&cmd.ext, &back, "35");
    proto_ext_free(&back);

    proto_ext_t e;
    ext_without(&cmd.ext, "clientID", &e);
    proto_hdr_err_t err = {0};
    cr_assert_eq(proto_unregister_client_req_decode(&e, &h, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "clientID");
    proto_ext_free(&e);
    proto_cmd_free(&cmd);

    load("ali-ons", "alions-req-35-1.bin", &cmd);
    cr_assert_eq(proto_unregister_client_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.consumer_group, "GID_ali");
    cr_assert_null(h.producer_group);
    proto_cmd_free(&cmd);
}

Test(headers, send_back_golden) {
    proto_cmd_t cmd;
    java("broker-req-36-c2s-1.bin", &cmd);
    proto_send_back_req_t h;
    cr_assert_eq(proto_send_back_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_eq(h.offset, 102310);
    cr_assert_str_eq(h.group, "irg29930");
    cr_assert_eq(h.delay_level, 0);
    cr_assert_str_eq(h.origin_topic, "IopRetry29930");
    cr_assert_str_eq(h.origin_msg_id, "FD000000000000000000000000000002232330946E097C7230F901CC");
    cr_assert_not(h.unit_mode);
    cr_assert(h.has_max_reconsume_times);
    cr_assert_eq(h.max_reconsume_times, 16);
    proto_ext_t back = {0};
    proto_send_back_req_encode(&h, &back);
    assert_same_ext(&cmd.ext, &back, "36");
    proto_ext_free(&back);

    const char *required[] = {"offset", "group", "delayLevel"};
    for (size_t i = 0; i < 3; i++) {
        proto_ext_t e;
        ext_without(&cmd.ext, required[i], &e);
        proto_hdr_err_t err = {0};
        cr_assert_eq(proto_send_back_req_decode(&e, &h, &err), RMQ_ERR_MALFORMED);
        cr_assert_str_eq(err.field, required[i]);
        proto_ext_free(&e);
    }
    proto_ext_t e;
    ext_without(&cmd.ext, "maxReconsumeTimes", &e);
    cr_assert_eq(proto_send_back_req_decode(&e, &h, NULL), RMQ_OK);
    cr_assert_not(h.has_max_reconsume_times);
    proto_send_back_req_encode(&h, &back);
    cr_assert_null(proto_ext_get(&back, "maxReconsumeTimes"));
    proto_ext_free(&back);
    proto_ext_free(&e);
    proto_cmd_free(&cmd);
}

Test(headers, transactions_golden) {
    proto_cmd_t cmd;
    java("broker-req-37-c2s-2.bin", &cmd);
    proto_end_tx_req_t h;
    cr_assert_eq(proto_end_tx_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.producer_group, "itx29930");
    cr_assert_eq(h.commit_log_offset, 107150);
    cr_assert_eq(h.tran_state_table_offset, 1);
    cr_assert_eq(h.commit_or_rollback, PROTO_TX_ROLLBACK);
    cr_assert_not(h.from_transaction_check);
    cr_assert_str_eq(h.msg_id, "FD000000000000000000000000000002232330946E097C72AB1601D2");
    cr_assert_null(h.transaction_id);
    proto_ext_t back = {0};
    proto_end_tx_req_encode(&h, &back);
    assert_same_ext(&cmd.ext, &back, "37");
    proto_ext_free(&back);
    proto_ext_t e;
    ext_without(&cmd.ext, "msgId", &e);
    proto_hdr_err_t err = {0};
    cr_assert_eq(proto_end_tx_req_decode(&e, &h, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "msgId");
    proto_ext_free(&e);
    proto_cmd_free(&cmd);

    java("broker-req-39-s2c-1.bin", &cmd);
    proto_check_tx_req_t c;
    cr_assert_eq(proto_check_tx_req_decode(&cmd.ext, &c, NULL), RMQ_OK);
    cr_assert_eq(c.commit_log_offset, 112855);
    cr_assert_eq(c.tran_state_table_offset, 11);
    cr_assert_str_eq(c.msg_id, "FD000000000000000000000000000002232330946E097C72AB8701DB");
    cr_assert_str_eq(c.transaction_id, c.msg_id);
    cr_assert_str_eq(c.offset_msg_id, "7F00000100002A9F000000000001B8D7");
    proto_check_tx_req_encode(&c, &back);
    assert_same_ext(&cmd.ext, &back, "39");
    proto_ext_free(&back);
    ext_without(&cmd.ext, "commitLogOffset", &e);
    cr_assert_eq(proto_check_tx_req_decode(&e, &c, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "commitLogOffset");
    proto_ext_free(&e);
    proto_cmd_free(&cmd);
}

Test(headers, group_requests_golden) {
    const char *files[] = {"broker-req-38-c2s-1.bin", "broker-req-40-s2c-1.bin"};
    for (int i = 0; i < 2; i++) {
        proto_cmd_t cmd;
        java(files[i], &cmd);
        proto_group_req_t h;
        cr_assert_eq(proto_group_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
        cr_assert_str_eq(h.consumer_group, "icg29930");
        proto_ext_t back = {0};
        proto_group_req_encode(&h, &back);
        assert_same_ext(&cmd.ext, &back, files[i]);
        proto_ext_free(&back);
        proto_cmd_free(&cmd);
    }
    proto_ext_t none = {0};
    proto_group_req_t h;
    proto_hdr_err_t err = {0};
    cr_assert_eq(proto_group_req_decode(&none, &h, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "consumerGroup");
}

/* ---------------------------------------------------------------- name server */

Test(headers, register_broker_golden) {
    proto_cmd_t cmd;
    java("namesrv-req-103-c2s-1.bin", &cmd);
    proto_register_broker_req_t h;
    cr_assert_eq(proto_register_broker_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.broker_name, "broker-a");
    cr_assert_str_eq(h.broker_addr, "127.0.0.1:10911");
    cr_assert_str_eq(h.cluster_name, "DefaultCluster");
    cr_assert_str_eq(h.ha_server_addr, "192.0.2.2:10912");
    cr_assert_eq(h.broker_id, 0);
    cr_assert_not(h.compressed);
    cr_assert_eq(h.body_crc32, 987237156);
    cr_assert_eq(proto_body_crc(cmd.body, cmd.body_len), h.body_crc32);
    proto_ext_t back = {0};
    proto_register_broker_req_encode(&h, &back);
    assert_same_ext(&cmd.ext, &back, "103");
    proto_ext_free(&back);
    const char *required[] = {"brokerName", "brokerAddr", "clusterName", "haServerAddr",
                              "brokerId"};
    for (size_t i = 0; i < 5; i++) {
        proto_ext_t e;
        ext_without(&cmd.ext, required[i], &e);
        proto_hdr_err_t err = {0};
        cr_assert_eq(proto_register_broker_req_decode(&e, &h, &err), RMQ_ERR_MALFORMED);
        cr_assert_str_eq(err.field, required[i]);
        proto_ext_free(&e);
    }
    proto_cmd_free(&cmd);

    /* the response header has only optional fields: an empty extFields decodes */
    java("namesrv-resp-103-code0-1.bin", &cmd);
    proto_register_broker_resp_t r;
    cr_assert_eq(proto_register_broker_resp_decode(&cmd.ext, &r, NULL), RMQ_OK);
    cr_assert_null(r.master_addr);
    cr_assert_null(r.ha_server_addr);
    proto_register_broker_resp_encode(&r, &back);
    cr_assert_eq(back.count, 0);
    proto_cmd_free(&cmd);
}

Test(headers, route_request_golden_and_standard_json_flag) {
    proto_cmd_t cmd;
    java("namesrv-req-105-c2s-2.bin", &cmd);
    proto_route_req_t h;
    cr_assert_eq(proto_route_req_decode(&cmd.ext, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.topic, "IopTopic29930");
    cr_assert_not(h.accept_standard_json);
    proto_ext_t back = {0};
    proto_route_req_encode(&h, &back);
    assert_same_ext(&cmd.ext, &back, "105"); /* false is not written */
    proto_ext_free(&back);
    h.accept_standard_json = true;
    proto_route_req_encode(&h, &back);
    cr_assert_str_eq(proto_ext_get(&back, "acceptStandardJsonOnly"), "true");
    proto_route_req_t d;
    cr_assert_eq(proto_route_req_decode(&back, &d, NULL), RMQ_OK);
    cr_assert(d.accept_standard_json);
    proto_ext_free(&back);
    proto_cmd_free(&cmd);
}

/* ---------------------------------------------------------------- round trips of the rest */

Test(headers, round_trip_every_other_header) {
    proto_ext_t e = {0};
    proto_hdr_err_t err;

    proto_query_msg_req_t qm, qm2;
    proto_query_msg_req_init(&qm);
    qm.topic = "T";
    qm.key = "k1";
    qm.max_num = 32;
    qm.begin_timestamp = 1;
    qm.end_timestamp = INT64_MAX;
    qm.unique_key_query = true;
    proto_query_msg_req_encode(&qm, &e);
    cr_assert_str_eq(proto_ext_get(&e, "_UNIQUE_KEY_QUERY"), "true");
    cr_assert_eq(proto_query_msg_req_decode(&e, &qm2, &err), RMQ_OK);
    cr_assert_str_eq(qm2.key, "k1");
    cr_assert_eq(qm2.end_timestamp, INT64_MAX);
    cr_assert(qm2.unique_key_query);
    proto_ext_free(&e);

    proto_query_msg_resp_t qr = {5, -7}, qr2;
    proto_query_msg_resp_encode(&qr, &e);
    cr_assert_eq(proto_query_msg_resp_decode(&e, &qr2, NULL), RMQ_OK);
    cr_assert_eq(qr2.index_last_update_timestamp, 5);
    cr_assert_eq(qr2.index_last_update_phyoffset, -7);
    cr_assert_str_eq(proto_ext_get(&e, "indexLastUpdatePhyoffset"), "-7");
    proto_ext_free(&e);

    proto_view_msg_req_t vm = {.offset = 1234567890123LL}, vm2;
    proto_view_msg_req_encode(&vm, &e);
    cr_assert_eq(e.count, 1);
    cr_assert_eq(proto_view_msg_req_decode(&e, &vm2, NULL), RMQ_OK);
    cr_assert_eq(vm2.offset, 1234567890123LL);
    proto_ext_free(&e);

    proto_create_topic_req_t ct, ct2;
    proto_create_topic_req_init(&ct);
    ct.topic = "NewTopic";
    ct.read_queue_nums = 8;
    ct.write_queue_nums = 8;
    ct.perm = 6;
    ct.order = true;
    proto_create_topic_req_encode(&ct, &e);
    cr_assert_str_eq(proto_ext_get(&e, "defaultTopic"), "TBW102");
    cr_assert_str_eq(proto_ext_get(&e, "topicFilterType"), "SINGLE_TAG");
    cr_assert_str_eq(proto_ext_get(&e, "order"), "true");
    cr_assert_eq(proto_create_topic_req_decode(&e, &ct2, NULL), RMQ_OK);
    cr_assert_str_eq(ct2.topic, "NewTopic");
    cr_assert_eq(ct2.perm, 6);
    cr_assert(ct2.order);
    proto_ext_set(&e, "order", NULL);
    cr_assert_eq(proto_create_topic_req_decode(&e, &ct2, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "order");
    proto_ext_free(&e);

    proto_search_offset_req_t so = {"T", 3, 1700000000000LL, NULL}, so2;
    proto_search_offset_req_encode(&so, &e);
    cr_assert_eq(proto_search_offset_req_decode(&e, &so2, NULL), RMQ_OK);
    cr_assert_eq(so2.timestamp, 1700000000000LL);
    cr_assert_eq(so2.queue_id, 3);
    proto_ext_free(&e);

    proto_storetime_resp_t st = {42}, st2;
    proto_storetime_resp_encode(&st, &e);
    cr_assert_eq(proto_storetime_resp_decode(&e, &st2, NULL), RMQ_OK);
    cr_assert_eq(st2.timestamp, 42);
    proto_ext_free(&e);

    proto_unregister_broker_req_t ub = {"broker-a", "1.2.3.4:10911", "C", 1}, ub2;
    proto_unregister_broker_req_encode(&ub, &e);
    cr_assert_eq(proto_unregister_broker_req_decode(&e, &ub2, NULL), RMQ_OK);
    cr_assert_str_eq(ub2.broker_addr, "1.2.3.4:10911");
    cr_assert_eq(ub2.broker_id, 1);
    proto_ext_free(&e);

    proto_register_broker_resp_t rr = {"h:1", "m:2"}, rr2;
    proto_register_broker_resp_encode(&rr, &e);
    cr_assert_eq(proto_register_broker_resp_decode(&e, &rr2, NULL), RMQ_OK);
    cr_assert_str_eq(rr2.master_addr, "m:2");
    proto_ext_free(&e);

    proto_put_kv_req_t pk = {"ORDER_TOPIC_CONFIG", "T", "broker-a:4"}, pk2;
    proto_put_kv_req_encode(&pk, &e);
    cr_assert_str_eq(proto_ext_get(&e, "namespace"), "ORDER_TOPIC_CONFIG");
    cr_assert_eq(proto_put_kv_req_decode(&e, &pk2, NULL), RMQ_OK);
    cr_assert_str_eq(pk2.value, "broker-a:4");
    proto_ext_set(&e, "value", NULL);
    cr_assert_eq(proto_put_kv_req_decode(&e, &pk2, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "value");
    proto_kv_req_t kv;
    cr_assert_eq(proto_kv_req_decode(&e, &kv, NULL), RMQ_OK);
    cr_assert_str_eq(kv.key, "T");
    proto_ext_free(&e);

    proto_get_kv_resp_t gv = {NULL}, gv2;
    proto_get_kv_resp_encode(&gv, &e);
    cr_assert_eq(e.count, 0);
    gv.value = "v";
    proto_get_kv_resp_encode(&gv, &e);
    cr_assert_eq(proto_get_kv_resp_decode(&e, &gv2, NULL), RMQ_OK);
    cr_assert_str_eq(gv2.value, "v");
    proto_ext_free(&e);
}

/* A NULL required string is still written (as ""), so the peer sees the key (trap 9). */
Test(headers, encoders_always_write_required_fields) {
    proto_pull_req_t p;
    proto_pull_req_init(&p);
    proto_ext_t e = {0};
    proto_pull_req_encode(&p, &e);
    const char *keys[] = {"consumerGroup", "topic",   "queueId",      "queueOffset",
                          "maxMsgNums",    "sysFlag", "commitOffset", "suspendTimeoutMillis",
                          "subVersion"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        cr_assert_not_null(proto_ext_get(&e, keys[i]), "%s", keys[i]);
    cr_assert_str_eq(proto_ext_get(&e, "topic"), "");
    cr_assert_null(proto_ext_get(&e, "subscription"));
    proto_pull_req_t back;
    cr_assert_eq(proto_pull_req_decode(&e, &back, NULL), RMQ_OK);
    proto_ext_free(&e);

    proto_send_req_t s;
    proto_send_req_init(&s);
    proto_send_req_encode(&s, PROTO_SEND_MESSAGE_V2, &e);
    const char *v2[] = {"a", "b", "c", "d", "e", "f", "g", "h", "j", "k", "m"};
    for (size_t i = 0; i < sizeof v2 / sizeof *v2; i++)
        cr_assert_not_null(proto_ext_get(&e, v2[i]), "%s", v2[i]);
    cr_assert_str_eq(proto_ext_get(&e, "d"), "4");
    proto_ext_free(&e);
}

/* Headers survive a whole frame in both header forms. */
Test(headers, through_a_frame_both_forms) {
    for (uint8_t ser = 0; ser < 2; ser++) {
        proto_cmd_t req;
        proto_cmd_request(&req, PROTO_END_TRANSACTION, 77);
        req.serialize = ser;
        proto_end_tx_req_t h;
        proto_end_tx_req_init(&h);
        h.producer_group = "g\xc3\xa9";
        h.commit_log_offset = 99;
        h.commit_or_rollback = PROTO_TX_COMMIT;
        h.msg_id = "M";
        h.transaction_id = "TX";
        h.from_transaction_check = true;
        proto_end_tx_req_encode(&h, &req.ext);
        cm_buf_t out = CM_BUF_INIT;
        cr_assert_eq(proto_frame_encode(&req, &out), RMQ_OK);
        proto_cmd_t got;
        cr_assert_eq(proto_frame_decode(out.data, out.len, PROTO_MAX_FRAME, &got), RMQ_OK);
        proto_end_tx_req_t d;
        cr_assert_eq(proto_end_tx_req_decode(&got.ext, &d, NULL), RMQ_OK);
        cr_assert_str_eq(d.producer_group, "g\xc3\xa9");
        cr_assert_eq(d.commit_log_offset, 99);
        cr_assert_eq(d.commit_or_rollback, PROTO_TX_COMMIT);
        cr_assert(d.from_transaction_check);
        cr_assert_str_eq(d.transaction_id, "TX");
        cm_buf_free(&out);
        proto_cmd_free(&req);
        proto_cmd_free(&got);
    }
}

/* ---------------------------------------------------------------- look-up and failures */

/* A key matches a field only whole: same length, first byte and the rest; keys that share
 * a length and first letter with a field, or one of them, are unknown keys. */
Test(headers, keys_match_whole) {
    proto_ext_t e = {0};
    proto_ext_set(&e, "msgIX", "wrong");
    proto_ext_set(&e, "XsgId", "wrong");
    proto_ext_set(&e, "", "empty key");
    proto_ext_set(&e, "queueId", "5");
    proto_ext_set(&e, "queueOffset", "77");
    proto_ext_set(&e, "msgId", "M1");
    proto_ext_set(&e, "TRACE_ON", "false");
    proto_send_resp_t h;
    cr_assert_eq(proto_send_resp_decode(&e, &h, NULL), RMQ_OK);
    cr_assert_str_eq(h.msg_id, "M1");
    cr_assert_eq(h.queue_id, 5);
    cr_assert_eq(h.queue_offset, 77);
    cr_assert_not(h.trace_on);
    cr_assert_str_eq(h.msg_region, "DefaultRegion"); /* absent: the default */
    proto_ext_free(&e);

    proto_ext_set(&e, "b", "T");
    proto_ext_set(&e, "aa", "wrong");
    proto_send_req_t s;
    proto_hdr_err_t err;
    cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE_V2, &s, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "a");
    cr_assert(err.missing);
    proto_ext_free(&e);
}

/* A header that fails to decode leaves the struct as init plus the fields read before the
 * failure: the fields after it hold their defaults, not zeros. */
Test(headers, failed_decode_leaves_defaults) {
    proto_ext_t e = {0};
    proto_ext_set(&e, "producerGroup", "G");
    proto_send_req_t h;
    proto_hdr_err_t err;
    cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE, &h, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "topic");
    cr_assert_str_eq(h.producer_group, "G");
    cr_assert_null(h.topic);
    cr_assert_str_eq(h.default_topic, "TBW102");
    cr_assert_eq(h.default_topic_queue_nums, 4);
    cr_assert_not(h.has_max_reconsume_times);

    proto_ext_set(&e, "topic", "T");
    proto_ext_set(&e, "defaultTopic", "D");
    proto_ext_set(&e, "defaultTopicQueueNums", "x4");
    cr_assert_eq(proto_send_req_decode(&e, PROTO_SEND_MESSAGE, &h, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(err.field, "defaultTopicQueueNums");
    cr_assert_str_eq(err.value, "x4");
    cr_assert_str_eq(h.topic, "T");
    cr_assert_str_eq(h.default_topic, "D");
    cr_assert_eq(h.default_topic_queue_nums, 4); /* the bad field keeps its default */
    cr_assert_eq(h.queue_id, 0);
    proto_ext_free(&e);

    proto_pull_req_t p;
    proto_ext_set(&e, "consumerGroup", "G");
    cr_assert_eq(proto_pull_req_decode(&e, &p, &err), RMQ_ERR_MALFORMED);
    cr_assert_str_eq(p.expression_type, "TAG");
    proto_ext_free(&e);
}

/* Fields in any order (Java writes a HashMap's), with optional ones present or absent, read
 * the same as in table order. */
Test(headers, any_field_order) {
    proto_send_req_t h, back, rev;
    proto_send_req_init(&h);
    h.producer_group = "G";
    h.topic = "T";
    h.queue_id = 3;
    h.born_timestamp = 1795579031123LL;
    h.properties = "KEYS\x01k\x02TAGS\x01t";
    h.has_max_reconsume_times = true;
    h.max_reconsume_times = 16;
    h.unit_mode = true;
    h.broker_name = "broker-a";
    for (int code = 0; code < 2; code++) {
        int32_t c = code ? PROTO_SEND_MESSAGE : PROTO_SEND_MESSAGE_V2;
        for (int with_opt = 0; with_opt < 2; with_opt++) {
            h.has_max_reconsume_times = with_opt;
            h.broker_name = with_opt ? "broker-a" : NULL;
            proto_ext_t e = {0}, r = {0};
            cr_assert_eq(proto_send_req_encode(&h, c, &e), RMQ_OK);
            for (size_t i = e.count; i-- > 0;)
                proto_ext_set(&r, e.keys[i], e.vals[i]);
            cr_assert_eq(proto_send_req_decode(&e, c, &back, NULL), RMQ_OK);
            cr_assert_eq(proto_send_req_decode(&r, c, &rev, NULL), RMQ_OK);
            cr_assert_str_eq(rev.producer_group, "G");
            cr_assert_str_eq(rev.topic, "T");
            cr_assert_str_eq(rev.default_topic, back.default_topic);
            cr_assert_eq(rev.queue_id, 3);
            cr_assert_eq(rev.born_timestamp, 1795579031123LL);
            cr_assert_str_eq(rev.properties, h.properties);
            cr_assert_eq(rev.has_max_reconsume_times, (bool)with_opt);
            cr_assert_eq(back.has_max_reconsume_times, (bool)with_opt);
            cr_assert_eq(rev.max_reconsume_times, with_opt ? 16 : 0);
            cr_assert(rev.unit_mode);
            if (with_opt)
                cr_assert_str_eq(rev.broker_name, "broker-a");
            else
                cr_assert_null(rev.broker_name);
            proto_ext_free(&e);
            proto_ext_free(&r);
        }
    }
}
