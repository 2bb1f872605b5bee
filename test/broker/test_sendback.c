/* CONSUMER_SEND_MSG_BACK over raw frames: a failed message comes back on %RETRY%<group>
 * after its level's delay with reconsumeTimes + 1, RETRY_TOPIC and ORIGIN_MESSAGE_ID, and
 * goes to %DLQ%<group> once it was retried the maximum number of times; the stored
 * properties are a 4.9.8 broker's. */
#include "tb.h"

#include "common/cm.h"

#define LEVELS "1s 2s 3s"

static char *dir;
static rmq_broker_t *broker;
static int fd;

static void setup(void) {
    dir = tb_tempdir();
    broker = tb_broker_start(dir, "messageDelayLevel", LEVELS, NULL);
    fd = tb_connect(rmq_broker_addr(broker));
}

static void teardown(void) {
    close(fd);
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(sendback, .init = setup, .fini = teardown);

/* Sends back the message at commit-log offset phys; max < 0 leaves maxReconsumeTimes out. */
static int32_t send_back(int64_t phys, const char *group, int32_t level, int32_t max,
                         proto_cmd_t *resp_out) {
    proto_cmd_t cmd, resp;
    proto_cmd_request(&cmd, PROTO_CONSUMER_SEND_MSG_BACK, tb_next_opaque());
    proto_send_back_req_t h = {0};
    h.offset = phys;
    h.group = group;
    h.delay_level = level;
    h.origin_topic = "SB";
    h.has_max_reconsume_times = max >= 0;
    h.max_reconsume_times = max;
    proto_send_back_req_encode(&h, &cmd.ext);
    tb_call(fd, &cmd, &resp);
    int32_t code = resp.code;
    if (resp_out)
        *resp_out = resp;
    else
        proto_cmd_free(&resp);
    return code;
}

/* Pulls topic/queue 0 from offset and decodes the first record into rec (the buffer stays
 * in resp). False when nothing is there. */
static bool pull_one(const char *topic, int64_t offset, proto_cmd_t *resp, proto_record_t *rec) {
    proto_cmd_t req;
    tb_pull_req(&req, "gpull", topic, 0, offset, 1, 0, 0, "*");
    tb_call(fd, &req, resp);
    if (resp->code != 0) {
        proto_cmd_free(resp);
        return false;
    }
    cr_assert_eq(proto_record_decode(resp->body, resp->body_len, true, rec), RMQ_OK);
    return true;
}

/* Waits (bounded: 20 s) for the record at offset of topic/0; returns the wait in ms. */
static int64_t wait_one(const char *topic, int64_t offset, proto_cmd_t *resp, proto_record_t *rec) {
    int64_t start = cm_mono_ms();
    while (!pull_one(topic, offset, resp, rec)) {
        cr_assert_lt(cm_mono_ms() - start, 20000, "%s: offset %lld never arrived", topic,
                     (long long)offset);
        usleep(20000);
    }
    return cm_mono_ms() - start;
}

Test(sendback, retries_then_dead_letter) {
    proto_cmd_t resp;
    cr_assert_eq(tb_produce(fd, "SB", 0, "T", "k1", "payload", &resp), 0);
    char origin_id[64];
    snprintf(origin_id, sizeof origin_id, "%s", proto_ext_get(&resp.ext, "msgId"));
    proto_cmd_free(&resp);
    proto_record_t orig, rec;
    cr_assert(pull_one("SB", 0, &resp, &orig));
    int64_t phys = orig.physical_offset, born = orig.born_timestamp;
    proto_cmd_free(&resp);

    /* Retry 1: delay level 0 = 3 + reconsumeTimes = level 3 (3 s here). */
    int64_t sent = cm_now_ms();
    cr_assert_eq(send_back(phys, "gsb", 0, 2, &resp), 0, "%s", resp.remark);
    proto_cmd_free(&resp);
    if (pull_one("%RETRY%gsb", 0, &resp, &rec)) { /* only on a machine slower than 3 s */
        cr_assert_geq(cm_now_ms(), sent + 3000, "retry delivered early");
        proto_cmd_free(&resp);
    }
    int64_t waited = wait_one("%RETRY%gsb", 0, &resp, &rec);
    fprintf(stderr, "retry 1 (level 3, 3000 ms): visible after %lld ms, stored +%lld ms\n",
            (long long)waited, (long long)(rec.store_timestamp - sent));
    cr_assert_geq(rec.store_timestamp, sent + 3000 - 1); /* ms clocks of two reads */
    cr_assert_eq(rec.reconsume_times, 1);
    cr_assert_eq(rec.born_timestamp, born);
    cr_assert_eq(rec.body_len, 7);
    cr_assert_eq(memcmp(rec.body, "payload", 7), 0);
    cr_assert(tb_prop_is(&rec, PROP_RETRY_TOPIC, "SB"));
    cr_assert(tb_prop_is(&rec, PROP_ORIGIN_MESSAGE_ID, origin_id));
    cr_assert(tb_prop_is(&rec, PROP_KEYS, "k1"));
    cr_assert(tb_prop_is(&rec, PROP_TAGS, "T"));
    cr_assert(tb_prop_is(&rec, PROP_REAL_TOPIC, "%RETRY%gsb"));
    int64_t phys1 = rec.physical_offset;
    proto_cmd_free(&resp);

    /* Retry 2 with an explicit level 1. */
    cr_assert_eq(send_back(phys1, "gsb", 1, 2, NULL), 0);
    wait_one("%RETRY%gsb", 1, &resp, &rec);
    cr_assert_eq(rec.reconsume_times, 2);
    cr_assert(tb_prop_is(&rec, PROP_RETRY_TOPIC, "SB"), "kept, not the retry topic");
    cr_assert(tb_prop_is(&rec, PROP_ORIGIN_MESSAGE_ID, origin_id));
    int64_t phys2 = rec.physical_offset;
    proto_cmd_free(&resp);

    /* reconsumeTimes 2 >= max 2: the dead-letter queue, at once. */
    cr_assert_eq(send_back(phys2, "gsb", 0, 2, NULL), 0);
    cr_assert(pull_one("%DLQ%gsb", 0, &resp, &rec), "no DLQ copy");
    cr_assert_eq(rec.reconsume_times, 3);
    cr_assert_eq(rec.queue_id, 0);
    cr_assert(tb_prop_is(&rec, PROP_RETRY_TOPIC, "SB"));
    cr_assert(tb_prop_is(&rec, PROP_ORIGIN_MESSAGE_ID, origin_id));
    cr_assert(tb_prop_is(&rec, PROP_DELAY, "0"));
    cr_assert(tb_prop_is(&rec, PROP_WAIT, "false"));
    proto_cmd_free(&resp);
    char *stats = rmq_broker_stats_json(broker);
    cr_assert_not_null(stats);
    rmq_free(stats);
}

Test(sendback, negative_level_and_group_limit) {
    proto_cmd_t resp;
    proto_record_t orig, rec;
    cr_assert_eq(tb_produce(fd, "SB", 0, "T", NULL, "x", NULL), 0);
    cr_assert(pull_one("SB", 0, &resp, &orig));
    int64_t phys = orig.physical_offset;
    proto_cmd_free(&resp);
    /* delayLevel < 0: straight to the DLQ. */
    cr_assert_eq(send_back(phys, "gneg", -1, -1, NULL), 0);
    cr_assert(pull_one("%DLQ%gneg", 0, &resp, &rec));
    cr_assert_eq(rec.reconsume_times, 1);
    proto_cmd_free(&resp);
    /* No maxReconsumeTimes: the group's retryMaxTimes (16), so a retry. */
    cr_assert_eq(send_back(phys, "gmax", 1, -1, NULL), 0);
    wait_one("%RETRY%gmax", 0, &resp, &rec);
    cr_assert_eq(rec.reconsume_times, 1);
    proto_cmd_free(&resp);
    /* An offset where no record starts. */
    cr_assert_eq(send_back(phys + 1, "gmax", 0, -1, &resp), RMQ_ERR_SYSTEM_ERROR);
    cr_assert_not_null(strstr(resp.remark, "look message by offset failed"));
    proto_cmd_free(&resp);
}

/* The schedule copy of k-r1 as a 4.9.8 broker stored it after the Java consumer sent it
 * back (test/data's store), but for ORIGIN_MESSAGE_ID, whose value is the offset id of the
 * original in each broker. */
Test(sendback, stored_properties_match_java) {
    proto_cmd_t cmd, resp;
    proto_send_req_t h;
    tb_send_header(&h, "IopRetry29930", 0,
                   "KEYS\001k-r1\002UNIQ_KEY\001FD000000000000000000000000000002232330946E097C7"
                   "2310901CD\002WAIT\001true\002TAGS\001R");
    tb_send_cmd(&cmd, &h, "r1", 2);
    tb_call(fd, &cmd, &resp);
    cr_assert_eq(resp.code, 0);
    char *java = cm_sprintf("REAL_TOPIC\001%%RETRY%%irg29930\002ORIGIN_MESSAGE_ID\001%s\002"
                            "RETRY_TOPIC\001IopRetry29930\002KEYS\001k-r1\002UNIQ_KEY\001"
                            "FD000000000000000000000000000002232330946E097C72310901CD\002"
                            "CLUSTER\001DefaultCluster\002WAIT\001false\002DELAY\0013\002TAGS\001R"
                            "\002REAL_QID\0010",
                            proto_ext_get(&resp.ext, "msgId"));
    proto_cmd_free(&resp);
    proto_record_t orig, rec;
    cr_assert(pull_one("IopRetry29930", 0, &resp, &orig));
    int64_t phys = orig.physical_offset;
    proto_cmd_free(&resp);
    cr_assert_eq(send_back(phys, "irg29930", 0, 16, &resp), 0);
    cr_assert_null(resp.remark);
    proto_cmd_free(&resp);
    proto_cmd_t req;
    tb_pull_req(&req, "gpull", "SCHEDULE_TOPIC_XXXX", 2, 0, 1, 0, 0, "*");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_eq((size_t)rec.props_len, strlen(java), "%.*s", rec.props_len, rec.props);
    cr_assert_eq(memcmp(rec.props, java, strlen(java)), 0, "%.*s", rec.props_len, rec.props);
    cr_assert_eq(rec.reconsume_times, 1);
    proto_cmd_free(&resp);
    cm_free(java);
}

/* A consumer whose send-back failed sends the message to %RETRY%<group> itself; past the
 * group's limit the broker stores it on %DLQ%<group> (handleRetryAndDLQ). */
static int32_t send_retry(const char *topic, int32_t reconsume, int32_t max) {
    proto_cmd_t cmd, resp;
    proto_send_req_t h;
    tb_send_header(&h, topic, 0, "TAGS\001T");
    h.reconsume_times = reconsume;
    h.has_max_reconsume_times = max >= 0;
    h.max_reconsume_times = max;
    tb_send_cmd(&cmd, &h, "r", 1);
    tb_call(fd, &cmd, &resp);
    int32_t code = resp.code;
    if (code == 0) cr_assert_eq(tb_ext_int(&resp, "queueId"), 0);
    proto_cmd_free(&resp);
    return code;
}

Test(sendback, retry_topic_send_past_limit_goes_to_dlq) {
    proto_cmd_t resp;
    proto_record_t rec;
    cr_assert_eq(send_retry("%RETRY%gsend", 15, -1), 0);
    cr_assert(pull_one("%RETRY%gsend", 0, &resp, &rec), "under the limit: the retry topic");
    cr_assert_eq(rec.reconsume_times, 15);
    proto_cmd_free(&resp);
    cr_assert_not(pull_one("%DLQ%gsend", 0, &resp, &rec));
    cr_assert_eq(send_retry("%RETRY%gsend", 16, -1), 0); /* group limit 16 */
    cr_assert(pull_one("%DLQ%gsend", 0, &resp, &rec));
    cr_assert_eq(rec.reconsume_times, 16);
    cr_assert_eq(rec.queue_id, 0);
    proto_cmd_free(&resp);
    cr_assert_eq(send_retry("%RETRY%gsend", 2, 2), 0); /* the request's limit */
    cr_assert(pull_one("%DLQ%gsend", 1, &resp, &rec));
    cr_assert_eq(rec.reconsume_times, 2);
    proto_cmd_free(&resp);
}
