/* Every frame captured from Apache RocketMQ 4.9.8 (test/data/rocketmq-4.9.8/frames) decodes
 * to what its index.json says, carries the fields the spec describes, and survives
 * re-encoding in both header forms. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"
#include "../testdata.h"

static char *frames_path(const char *file) {
    char *rel = cm_sprintf("rocketmq-4.9.8/frames/%s", file);
    char *path = td_path(rel);
    cm_free(rel);
    return path;
}

static void decode_file(const char *file, proto_cmd_t *cmd) {
    td_frame("rocketmq-4.9.8/frames", file, cmd);
}

static proto_json_t *load_index(void) {
    char *path = frames_path("index.json");
    size_t len;
    uint8_t *text = td_read_path(path, &len);
    proto_json_t *idx;
    cr_assert_eq(proto_json_parse((char *)text, len, &idx), RMQ_OK);
    cr_assert_eq(idx->type, PJ_ARRAY);
    cm_free(text);
    cm_free(path);
    return idx;
}

static void assert_same(const proto_cmd_t *a, const proto_cmd_t *b, const char *what) {
    cr_assert_eq(a->code, b->code, "%s", what);
    cr_assert_eq(a->language, b->language, "%s", what);
    cr_assert_eq(a->version, b->version, "%s", what);
    cr_assert_eq(a->opaque, b->opaque, "%s", what);
    cr_assert_eq(a->flag, b->flag, "%s", what);
    cr_assert_eq(a->remark == NULL, b->remark == NULL, "%s", what);
    if (a->remark) cr_assert_str_eq(a->remark, b->remark, "%s", what);
    cr_assert_eq(a->ext.count, b->ext.count, "%s", what);
    for (size_t i = 0; i < a->ext.count; i++) {
        cr_assert_str_eq(a->ext.keys[i], b->ext.keys[i], "%s", what);
        cr_assert_str_eq(a->ext.vals[i], b->ext.vals[i], "%s", what);
    }
    cr_assert_eq(a->body_len, b->body_len, "%s", what);
    if (a->body_len) cr_assert_eq(memcmp(a->body, b->body, a->body_len), 0, "%s", what);
}

/* Encodes cmd with serialize type ser and decodes it back. */
static void reencode(const proto_cmd_t *cmd, uint8_t ser, proto_cmd_t *back, cm_buf_t *out) {
    proto_cmd_t c = *cmd; /* shallow: only serialize changes */
    c.serialize = ser;
    out->len = 0;
    cr_assert_eq(proto_frame_encode(&c, out), RMQ_OK);
    cr_assert_eq(proto_frame_decode(out->data, out->len, 0, back), RMQ_OK);
    cr_assert_eq(back->serialize, ser);
}

Test(javaframes, every_frame_matches_index_and_reencodes) {
    proto_json_t *idx = load_index();
    cr_assert_geq(idx->len, 50);
    size_t identical = 0;
    for (size_t i = 0; i < idx->len; i++) {
        const proto_json_t *e = idx->items[i];
        const char *file = proto_json_get_str(e, "file", NULL);
        cr_assert_not_null(file);
        char *path = frames_path(file);
        size_t len, size;
        uint8_t *b = td_read_path(path, &len);
        cm_free(path);
        cr_assert_eq(len, (size_t)proto_json_get_int(e, "frame_len", -1), "%s", file);
        cr_assert_eq(proto_frame_size(b, len, 0, &size), RMQ_OK);
        cr_assert_eq(size, len, "%s", file);

        proto_cmd_t c, back;
        cr_assert_eq(proto_frame_decode(b, len, 0, &c), RMQ_OK, "%s", file);
        bool response = strcmp(proto_json_get_str(e, "kind", ""), "response") == 0;
        int64_t code = proto_json_get_int(e, response ? "response_code" : "request_code", -1);
        cr_assert_eq(c.code, code, "%s", file);
        cr_assert_eq(proto_cmd_is_response(&c), response, "%s", file);
        cr_assert_eq(c.opaque, proto_json_get_int(e, "opaque", -1), "%s", file);
        cr_assert_eq(c.flag, proto_json_get_int(e, "flag", -1), "%s", file);
        const char *ser = proto_json_get_str(e, "serialize", "");
        cr_assert_eq(c.serialize, strcmp(ser, "JSON") == 0 ? PROTO_SER_JSON : PROTO_SER_ROCKETMQ);
        cr_assert_eq(c.body_len, (size_t)proto_json_get_int(e, "body_len", -1), "%s", file);
        cr_assert_eq(c.language, PROTO_LANG_JAVA, "%s", file);
        cr_assert_eq(c.version, 409, "%s", file);

        /* Same serialize type: identical fields; for Java's JSON header, identical bytes. */
        cm_buf_t out = CM_BUF_INIT;
        reencode(&c, c.serialize, &back, &out);
        assert_same(&c, &back, file);
        cr_assert_eq(back.has_ext, c.has_ext, "%s", file);
        if (out.len == len && memcmp(out.data, b, len) == 0)
            identical++;
        else
            cr_assert_fail("%s: re-encoded bytes differ from Java's", file);
        proto_cmd_free(&back);
        /* ROCKETMQ binary: identical fields. */
        reencode(&c, PROTO_SER_ROCKETMQ, &back, &out);
        assert_same(&c, &back, file);
        proto_cmd_free(&back);
        cm_buf_free(&out);
        proto_cmd_free(&c);
        cm_free(b);
    }
    cr_assert_eq(identical, idx->len);
    proto_json_free(idx);
}

static void assert_ext(const proto_cmd_t *c, const char *key, const char *want) {
    const char *v = proto_ext_get(&c->ext, key);
    cr_assert_not_null(v, "ext %s missing", key);
    cr_assert_str_eq(v, want, "ext %s", key);
}

static void assert_ext_int(const proto_cmd_t *c, const char *key, int64_t want) {
    int64_t v;
    cr_assert_eq(proto_ext_get_int(&c->ext, key, &v), RMQ_OK, "ext %s", key);
    cr_assert_eq(v, want, "ext %s", key);
}

static proto_json_t *body_json(const proto_cmd_t *c) {
    proto_json_t *v;
    cr_assert_eq(proto_json_parse((const char *)c->body, c->body_len, &v), RMQ_OK);
    cr_assert_eq(v->type, PJ_OBJECT);
    return v;
}

Test(javaframes, send_message_v2_request) {
    proto_cmd_t c;
    decode_file("broker-req-310-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_SEND_MESSAGE_V2);
    cr_assert_eq(c.ext.count, 13); /* a..n without l */
    assert_ext(&c, "a", "ipg29930");
    assert_ext(&c, "b", "IopTopic29930");
    assert_ext(&c, "c", "TBW102");
    assert_ext_int(&c, "d", 4);
    assert_ext_int(&c, "e", 3);
    assert_ext_int(&c, "f", 0);
    assert_ext_int(&c, "g", 1795579031123LL);
    assert_ext_int(&c, "h", 0);
    assert_ext_int(&c, "j", 0);
    bool b;
    cr_assert_eq(proto_ext_get_bool(&c.ext, "k", &b), RMQ_OK);
    cr_assert_not(b);
    cr_assert_eq(proto_ext_get_bool(&c.ext, "m", &b), RMQ_OK);
    cr_assert_not(b);
    assert_ext(&c, "n", "broker-a");
    cr_assert_null(proto_ext_get(&c.ext, "l"));
    /* \u0001 / \u0002 escapes became the raw separator bytes. */
    assert_ext(&c, "i",
               "KEYS\x01k-s0\x02UNIQ_KEY\x01"
               "FD000000000000000000000000000002232330946E097C71C6530000\x02WAIT\x01true"
               "\x02TAGS\x01"
               "A");
    cr_assert_eq(c.body_len, 2);
    cr_assert_eq(memcmp(c.body, "s0", 2), 0);
    proto_cmd_free(&c);
}

Test(javaframes, route_requests_and_responses) {
    proto_cmd_t c;
    decode_file("namesrv-req-105-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_GET_ROUTEINFO_BY_TOPIC);
    assert_ext(&c, "topic", "TBW102");
    proto_cmd_free(&c);
    decode_file("namesrv-req-105-c2s-2.bin", &c);
    assert_ext(&c, "topic", "IopTopic29930");
    proto_cmd_free(&c);

    decode_file("namesrv-resp-105-code0-1.bin", &c);
    cr_assert_eq(c.code, 0);
    cr_assert_not(c.has_ext); /* built without a header class: no extFields key */
    cr_assert_null(c.remark);
    proto_json_t *r = body_json(&c);
    const proto_json_t *bd = proto_json_get(r, "brokerDatas");
    cr_assert_eq(bd->type, PJ_ARRAY);
    cr_assert_eq(bd->len, 1);
    cr_assert_str_eq(proto_json_get_str(bd->items[0], "brokerName", NULL), "broker-a");
    cr_assert_str_eq(proto_json_get_str(bd->items[0], "cluster", NULL), "DefaultCluster");
    cr_assert_str_eq(proto_json_get_str(proto_json_get(bd->items[0], "brokerAddrs"), "0", NULL),
                     "127.0.0.1:10911");
    const proto_json_t *qd = proto_json_get(r, "queueDatas");
    cr_assert_eq(qd->len, 1);
    cr_assert_eq(proto_json_get_int(qd->items[0], "perm", -1), 7); /* TBW102: RW + INHERIT */
    cr_assert_eq(proto_json_get_int(qd->items[0], "readQueueNums", -1), 8);
    cr_assert_eq(proto_json_get_int(qd->items[0], "writeQueueNums", -1), 8);
    cr_assert_eq(proto_json_get(r, "filterServerTable")->type, PJ_OBJECT);
    proto_json_free(r);
    proto_cmd_free(&c);

    decode_file("namesrv-resp-105-code17-1.bin", &c);
    cr_assert_eq(c.code, RMQ_ERR_TOPIC_NOT_EXIST);
    cr_assert_not_null(c.remark);
    cr_assert_str_eq(c.remark, "No topic route info in name server for the topic: IopTopic29930"
                               "\nSee http://rocketmq.apache.org/docs/faq/ for further details.");
    cr_assert_eq(c.body_len, 0);
    cr_assert_null(c.body);
    proto_cmd_free(&c);
}

Test(javaframes, heartbeat_body) {
    proto_cmd_t c;
    decode_file("broker-req-34-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_HEART_BEAT);
    cr_assert_not(c.has_ext);
    proto_json_t *h = body_json(&c);
    cr_assert_str_eq(proto_json_get_str(h, "clientID", NULL), "192.0.2.2@p-ipg29930");
    const proto_json_t *cons = proto_json_get(h, "consumerDataSet");
    cr_assert_eq(cons->type, PJ_ARRAY);
    cr_assert_eq(cons->len, 0);
    const proto_json_t *prod = proto_json_get(h, "producerDataSet");
    cr_assert_eq(prod->len, 2);
    cr_assert_str_eq(proto_json_get_str(prod->items[0], "groupName", NULL), "ipg29930");
    cr_assert_str_eq(proto_json_get_str(prod->items[1], "groupName", NULL),
                     "CLIENT_INNER_PRODUCER");
    proto_json_free(h);
    proto_cmd_free(&c);

    decode_file("broker-resp-34-code0-1.bin", &c);
    cr_assert_eq(c.code, 0);
    cr_assert_eq(c.version, 409); /* stored by clients as the broker version */
    proto_cmd_free(&c);
}

Test(javaframes, register_broker_body) {
    proto_cmd_t c;
    decode_file("namesrv-req-103-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_REGISTER_BROKER);
    assert_ext(&c, "brokerName", "broker-a");
    assert_ext(&c, "brokerAddr", "127.0.0.1:10911");
    assert_ext(&c, "clusterName", "DefaultCluster");
    assert_ext_int(&c, "brokerId", 0);
    assert_ext_int(&c, "bodyCrc32", 987237156);
    assert_ext(&c, "compressed", "false");
    cr_assert_eq(c.body_len, 1402);
    proto_json_t *b = body_json(&c);
    const proto_json_t *w = proto_json_get(b, "topicConfigSerializeWrapper");
    cr_assert_eq(proto_json_get_int(proto_json_get(w, "dataVersion"), "timestamp", -1),
                 1795579028685LL);
    const proto_json_t *tt = proto_json_get(w, "topicConfigTable");
    cr_assert_eq(tt->type, PJ_OBJECT);
    cr_assert_geq(tt->len, 5);
    const proto_json_t *s = proto_json_get(tt, "SCHEDULE_TOPIC_XXXX");
    cr_assert_eq(proto_json_get_int(s, "readQueueNums", -1), 18);
    cr_assert_str_eq(proto_json_get_str(s, "topicName", NULL), "SCHEDULE_TOPIC_XXXX");
    cr_assert_eq(proto_json_get_int(proto_json_get(tt, "TBW102"), "perm", -1), 7);
    cr_assert_eq(proto_json_get(b, "filterServerList")->type, PJ_ARRAY);
    proto_json_free(b);
    proto_cmd_free(&c);

    decode_file("namesrv-resp-103-code0-1.bin", &c);
    cr_assert(c.has_ext); /* "extFields":{} */
    cr_assert_eq(c.ext.count, 0);
    proto_cmd_free(&c);
}

Test(javaframes, batch_send) {
    proto_cmd_t c;
    decode_file("broker-req-320-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_SEND_BATCH_MESSAGE);
    cr_assert_eq(c.body_len, 5880);
    assert_ext(&c, "m", "true");
    assert_ext(&c, "i", "WAIT\x01true");
    proto_cmd_free(&c);
    decode_file("broker-resp-320-code0-1.bin", &c);
    const char *ids = proto_ext_get(&c.ext, "msgId");
    cr_assert_not_null(ids);
    cr_assert_eq(strlen(ids) % 33, 32); /* comma-joined 32-char offset ids */
    assert_ext(&c, "MSG_REGION", "DefaultRegion");
    assert_ext(&c, "TRACE_ON", "true");
    proto_cmd_free(&c);
}

Test(javaframes, send_response) {
    proto_cmd_t c;
    decode_file("broker-resp-310-code0-1.bin", &c);
    cr_assert_eq(c.flag, PROTO_FLAG_RESPONSE);
    assert_ext(&c, "msgId", "7F00000100002A9F0000000000000000");
    assert_ext_int(&c, "queueId", 3);
    assert_ext_int(&c, "queueOffset", 0);
    assert_ext(&c, "MSG_REGION", "DefaultRegion");
    assert_ext(&c, "TRACE_ON", "true");
    /* Java's HashMap order is kept. */
    cr_assert_str_eq(c.ext.keys[0], "queueId");
    cr_assert_str_eq(c.ext.keys[4], "queueOffset");
    proto_cmd_free(&c);
}

Test(javaframes, pull_request_and_response) {
    proto_cmd_t c;
    decode_file("broker-req-11-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_PULL_MESSAGE);
    assert_ext(&c, "consumerGroup", "icg29930");
    assert_ext(&c, "topic", "IopTopic29930");
    assert_ext_int(&c, "queueId", 0);
    assert_ext_int(&c, "queueOffset", 0);
    assert_ext_int(&c, "maxMsgNums", 32);
    assert_ext_int(&c, "sysFlag", 2);
    assert_ext_int(&c, "commitOffset", 0);
    assert_ext_int(&c, "suspendTimeoutMillis", 15000);
    assert_ext_int(&c, "subVersion", 1795579032190LL);
    assert_ext(&c, "expressionType", "TAG");
    assert_ext(&c, "bname", "broker-a");
    proto_cmd_free(&c);

    decode_file("broker-resp-11-code0-1.bin", &c);
    cr_assert_eq(c.code, 0);
    cr_assert_str_eq(c.remark, "FOUND");
    assert_ext_int(&c, "nextBeginOffset", 32);
    assert_ext_int(&c, "minOffset", 0);
    assert_ext_int(&c, "maxOffset", 75);
    assert_ext_int(&c, "suggestWhichBrokerId", 0);
    cr_assert_eq(c.body_len, 6804);
    proto_cmd_free(&c);

    decode_file("broker-resp-11-code25-1.bin", &c);
    cr_assert_eq(c.code, RMQ_ERR_SUBSCRIPTION_NOT_LATEST);
    cr_assert_str_eq(c.remark, "the consumer's subscription not latest");
    proto_cmd_free(&c);
}

Test(javaframes, check_transaction_state_from_broker) {
    proto_cmd_t c;
    decode_file("broker-req-39-s2c-1.bin", &c);
    cr_assert_eq(c.code, PROTO_CHECK_TRANSACTION_STATE);
    cr_assert(proto_cmd_is_oneway(&c));
    cr_assert_not(proto_cmd_is_response(&c));
    assert_ext_int(&c, "commitLogOffset", 112855);
    assert_ext_int(&c, "tranStateTableOffset", 11);
    assert_ext(&c, "msgId", "FD000000000000000000000000000002232330946E097C72AB8701DB");
    assert_ext(&c, "transactionId", "FD000000000000000000000000000002232330946E097C72AB8701DB");
    assert_ext(&c, "offsetMsgId", "7F00000100002A9F000000000001B8D7");
    cr_assert_eq(c.body_len, 308); /* the full stored record */
    proto_cmd_free(&c);
}

Test(javaframes, consumer_list_and_locks) {
    proto_cmd_t c;
    decode_file("broker-resp-38-code0-1.bin", &c);
    proto_json_t *b = body_json(&c);
    const proto_json_t *ids = proto_json_get(b, "consumerIdList");
    cr_assert_eq(ids->type, PJ_ARRAY);
    cr_assert_eq(ids->len, 1);
    cr_assert_str_eq(ids->items[0]->s, "192.0.2.2@c129930");
    proto_json_free(b);
    proto_cmd_free(&c);

    decode_file("broker-req-41-c2s-1.bin", &c);
    cr_assert_eq(c.code, PROTO_LOCK_BATCH_MQ);
    b = body_json(&c);
    cr_assert_str_eq(proto_json_get_str(b, "clientId", NULL), "192.0.2.2@oc29930");
    cr_assert_str_eq(proto_json_get_str(b, "consumerGroup", NULL), "iog29930");
    const proto_json_t *mqs = proto_json_get(b, "mqSet");
    cr_assert_eq(mqs->len, 1);
    cr_assert_str_eq(proto_json_get_str(mqs->items[0], "brokerName", NULL), "broker-a");
    cr_assert_eq(proto_json_get_int(mqs->items[0], "queueId", -1), 1);
    cr_assert_str_eq(proto_json_get_str(mqs->items[0], "topic", NULL), "IopOrder29930");
    proto_json_free(b);
    proto_cmd_free(&c);

    decode_file("broker-resp-41-code0-1.bin", &c);
    b = body_json(&c);
    cr_assert_eq(proto_json_get(b, "lockOKMQSet")->len, 1);
    proto_json_free(b);
    proto_cmd_free(&c);
}

Test(javaframes, oneway_requests) {
    proto_cmd_t c;
    decode_file("broker-req-15-c2s-1.bin", &c);
    cr_assert_eq(c.flag, PROTO_FLAG_ONEWAY);
    assert_ext_int(&c, "commitOffset", 32);
    proto_cmd_free(&c);
    decode_file("broker-req-37-c2s-2.bin", &c);
    cr_assert(proto_cmd_is_oneway(&c));
    assert_ext_int(&c, "commitOrRollback", 12);
    bool b = true;
    cr_assert_eq(proto_ext_get_bool(&c.ext, "fromTransactionCheck", &b), RMQ_OK);
    cr_assert_not(b);
    proto_cmd_free(&c);
}
