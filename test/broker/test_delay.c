/* Delayed delivery over raw frames: a send with DELAY is kept on SCHEDULE_TOPIC_XXXX and
 * shows up on its real topic and queue only after its level's delay, once, across a broker
 * restart; config/delayOffset.json has RocketMQ's shape. Timing is only checked one way
 * (never early, by the stored timestamps); the observed lateness is printed. */
#include "tb.h"

#include "common/cm.h"

#define LEVELS "1s 2s 3s"

static char *dir;

static void setup(void) {
    dir = tb_tempdir();
}

static void teardown(void) {
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(delay, .init = setup, .fini = teardown);

/* A SEND_MESSAGE_V2 with DELAY=level (level NULL: none); returns the response code and
 * the born timestamp it stamped. */
static int32_t send_delayed(int fd, const char *topic, int32_t queue_id, const char *level,
                            const char *body, int64_t *born, proto_cmd_t *resp_out) {
    proto_cmd_t cmd, resp;
    proto_props_t p = {0};
    proto_props_set(&p, PROP_UNIQ_KEY, body);
    proto_props_set(&p, PROP_WAIT, "true");
    proto_props_set(&p, PROP_TAGS, "T");
    if (level) proto_props_set(&p, PROP_DELAY, level);
    char *text = tb_props_text(&p);
    proto_send_req_t h;
    tb_send_header(&h, topic, queue_id, text);
    if (born) *born = h.born_timestamp;
    tb_send_cmd(&cmd, &h, body, strlen(body));
    tb_call(fd, &cmd, &resp);
    cm_free(text);
    proto_props_free(&p);
    int32_t code = resp.code;
    if (resp_out)
        *resp_out = resp;
    else
        proto_cmd_free(&resp);
    return code;
}

/* Pulls topic/queue from offset 0; the response (FOUND or not) in resp. */
static void pull(int fd, const char *topic, int32_t queue_id, proto_cmd_t *resp) {
    proto_cmd_t req;
    tb_pull_req(&req, "gd", topic, queue_id, 0, 32, 0, 0, "*");
    tb_call(fd, &req, resp);
}

static int count(int fd, const char *topic, int32_t queue_id) {
    proto_cmd_t resp;
    pull(fd, topic, queue_id, &resp);
    int n = resp.code == 0 ? tb_count_records(&resp) : 0;
    proto_cmd_free(&resp);
    return n;
}

/* Waits (bounded: 20 s) until topic/queue holds want records; returns the wait in ms. */
static int64_t wait_count(int fd, const char *topic, int32_t queue_id, int want) {
    int64_t start = cm_mono_ms();
    while (count(fd, topic, queue_id) < want) {
        cr_assert_lt(cm_mono_ms() - start, 20000, "%s/%d never reached %d records", topic, queue_id,
                     want);
        usleep(20000);
    }
    return cm_mono_ms() - start;
}

/* Not there before not_before (wall ms): a record found is only an error while that time
 * has not come yet, so a slow machine cannot fail the check. */
static void assert_not_early(int fd, const char *topic, int32_t queue_id, int64_t not_before) {
    if (count(fd, topic, queue_id) > 0)
        cr_assert_geq(cm_now_ms(), not_before, "%s/%d delivered early", topic, queue_id);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

Test(delay, levels_deliver_after_their_delay) {
    rmq_broker_t *b = tb_broker_start(dir, "messageDelayLevel", LEVELS, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    int64_t born1, born3;
    proto_cmd_t resp;
    cr_assert_eq(send_delayed(fd, "Delayed", 0, "1", "m-level1", &born1, &resp), 0);
    cr_assert_eq(tb_ext_int(&resp, "queueId"), 0); /* the real queue, as Java answers */
    proto_cmd_free(&resp);
    /* Level 7 is past the last level: it becomes level 3. */
    cr_assert_eq(send_delayed(fd, "Delayed", 1, "7", "m-level3", &born3, NULL), 0);
    cr_assert_eq(send_delayed(fd, "Delayed", 2, "-1", "m-nodelay", NULL, NULL), 0);
    cr_assert_eq(count(fd, "Delayed", 2), 1, "a negative DELAY is no delay");

    /* Kept on the schedule topic, queue = level - 1, with REAL_TOPIC / REAL_QID. */
    pull(fd, "SCHEDULE_TOPIC_XXXX", 2, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert(tb_prop_is(&rec, PROP_DELAY, "3"));
    cr_assert(tb_prop_is(&rec, PROP_REAL_TOPIC, "Delayed"));
    cr_assert(tb_prop_is(&rec, PROP_REAL_QID, "1"));
    cr_assert(tb_prop_is(&rec, PROP_WAIT, "true")); /* kept, as a 4.9.8 broker keeps it */
    int64_t sched_store3 = rec.store_timestamp;
    proto_cmd_free(&resp);

    assert_not_early(fd, "Delayed", 0, born1 + 1000);
    assert_not_early(fd, "Delayed", 1, sched_store3 + 3000);
    wait_count(fd, "Delayed", 0, 1);
    assert_not_early(fd, "Delayed", 1, sched_store3 + 3000);
    wait_count(fd, "Delayed", 1, 1);

    /* The delivered copies: stored no earlier than due, real topic and queue, the schedule
     * properties still in the string (as a 4.9.8 broker leaves them). */
    pull(fd, "Delayed", 0, &resp);
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_geq(rec.store_timestamp, born1 + 1000);
    cr_assert_eq(rec.queue_id, 0);
    cr_assert_eq(rec.body_len, 8);
    cr_assert(tb_prop_is(&rec, PROP_REAL_TOPIC, "Delayed"));
    cr_assert(tb_prop_is(&rec, PROP_DELAY, "1"));
    cr_assert(tb_prop_is(&rec, PROP_UNIQ_KEY, "m-level1"));
    fprintf(stderr, "level 1: stored %lld ms after born (delay 1000 ms)\n",
            (long long)(rec.store_timestamp - born1));
    proto_cmd_free(&resp);
    pull(fd, "Delayed", 1, &resp);
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_geq(rec.store_timestamp, sched_store3 + 3000);
    cr_assert_eq(rec.queue_id, 1);
    cr_assert(tb_prop_is(&rec, PROP_UNIQ_KEY, "m-level3"));
    fprintf(stderr, "level 3: stored %lld ms after its schedule copy (delay 3000 ms)\n",
            (long long)(rec.store_timestamp - sched_store3));
    proto_cmd_free(&resp);
    close(fd);
    rmq_broker_destroy(b);

    /* delayOffset.json as a 4.9.8 broker writes it: level -> next offset. */
    char *path = cm_sprintf("%s/store/config/delayOffset.json", dir);
    const char *text = read_text(path);
    cr_assert_not_null(text, "%s", path);
    cr_assert_str_eq(text, "{\n\t\"offsetTable\":{1:1,3:1\n\t}\n}");
    cm_free(path);
}

Test(delay, restart_mid_delay_delivers_each_once) {
    rmq_broker_t *b = tb_broker_start(dir, "messageDelayLevel", LEVELS, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    int64_t born_long = 0;
    for (int i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "short-%d", i);
        cr_assert_eq(send_delayed(fd, "Restart", 0, "1", body, NULL, NULL), 0);
        snprintf(body, sizeof body, "long-%d", i);
        cr_assert_eq(send_delayed(fd, "Restart", 1, "3", body, born_long ? NULL : &born_long, NULL),
                     0);
    }
    wait_count(fd, "Restart", 0, 3);
    assert_not_early(fd, "Restart", 1, born_long + 3000);
    if (cm_now_ms() >= born_long + 2500)
        fprintf(stderr, "restart: the machine is slow, level 3 may be due before the restart\n");
    close(fd);
    rmq_broker_destroy(b); /* level 1 done, level 3 pending */

    b = tb_broker_start(dir, "messageDelayLevel", LEVELS, NULL);
    fd = tb_connect(rmq_broker_addr(b));
    int64_t waited = wait_count(fd, "Restart", 1, 3);
    fprintf(stderr, "level 3 after restart: waited %lld ms\n", (long long)waited);
    usleep(1500 * 1000); /* anything repeated would show up by now */
    cr_assert_eq(count(fd, "Restart", 0), 3, "level 1 repeated after the restart");
    cr_assert_eq(count(fd, "Restart", 1), 3, "level 3 repeated");
    close(fd);
    rmq_broker_destroy(b);
    char *path = cm_sprintf("%s/store/config/delayOffset.json", dir);
    cr_assert_str_eq(read_text(path), "{\n\t\"offsetTable\":{1:3,3:3\n\t}\n}");
    cm_free(path);
}

Test(delay, delayed_batch_is_illegal) {
    rmq_broker_t *b = tb_broker_start(dir, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    proto_cmd_t cmd, resp;
    proto_cmd_request(&cmd, PROTO_SEND_BATCH_MESSAGE, tb_next_opaque());
    char props[32];
    snprintf(props, sizeof props, "%s%c2", PROP_DELAY, PROTO_NAME_SEP);
    proto_send_req_t h;
    proto_send_req_init(&h);
    h.producer_group = "tpg";
    h.topic = "Batch";
    h.queue_id = 0;
    h.born_timestamp = cm_now_ms();
    h.properties = props;
    h.batch = true;
    proto_send_req_encode(&h, PROTO_SEND_BATCH_MESSAGE, &cmd.ext);
    cm_buf_t body = CM_BUF_INIT;
    proto_batch_encode_item(&body, 0, "x", 1, "", 0);
    proto_cmd_set_body(&cmd, body.data, body.len);
    cm_buf_free(&body);
    tb_call(fd, &cmd, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_MESSAGE_ILLEGAL);
    proto_cmd_free(&resp);
    close(fd);
    rmq_broker_destroy(b);
}

/* The properties of a delayed message as a 4.9.8 broker stored them (test/data's store: the
 * schedule record of k-d0 and its delivered copy carry this very string). */
Test(delay, stored_properties_match_java) {
    static const char java[] =
        "REAL_TOPIC\001IopDelay29930\002KEYS\001k-d0\002UNIQ_KEY\001"
        "FD000000000000000000000000000002232330946E097C71DE4801C2\002CLUSTER\001DefaultCluster"
        "\002DELAY\0012\002WAIT\001true\002TAGS\001D\002REAL_QID\0011";
    rmq_broker_t *b = tb_broker_start(dir, "messageDelayLevel", LEVELS, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    proto_cmd_t cmd, resp;
    proto_send_req_t h;
    /* The Java client's order (its own HashMap). */
    tb_send_header(&h, "IopDelay29930", 1,
                   "KEYS\001k-d0\002UNIQ_KEY\001FD000000000000000000000000000002232330946E097C71DE4"
                   "801C2\002DELAY\0012\002WAIT\001true\002TAGS\001D");
    tb_send_cmd(&cmd, &h, "d0", 2);
    tb_call(fd, &cmd, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    proto_cmd_free(&resp);
    proto_record_t rec;
    pull(fd, "SCHEDULE_TOPIC_XXXX", 1, &resp);
    cr_assert_eq(resp.code, 0);
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_eq((size_t)rec.props_len, sizeof java - 1);
    cr_assert_eq(memcmp(rec.props, java, sizeof java - 1), 0, "%.*s", rec.props_len, rec.props);
    proto_cmd_free(&resp);
    wait_count(fd, "IopDelay29930", 1, 1);
    pull(fd, "IopDelay29930", 1, &resp);
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_eq((size_t)rec.props_len, sizeof java - 1);
    cr_assert_eq(memcmp(rec.props, java, sizeof java - 1), 0, "%.*s", rec.props_len, rec.props);
    cr_assert_eq(rec.reconsume_times, 0);
    proto_cmd_free(&resp);
    close(fd);
    rmq_broker_destroy(b);
}

/* Progress is written while the broker runs (every flushDelayOffsetInterval), not only at
 * destroy, so a crash repeats at most that interval's deliveries. */
Test(delay, offsets_written_periodically) {
    rmq_broker_t *b =
        tb_broker_start(dir, "messageDelayLevel", LEVELS, "flushDelayOffsetInterval", "200", NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    cr_assert_eq(send_delayed(fd, "Periodic", 0, "1", "p0", NULL, NULL), 0);
    wait_count(fd, "Periodic", 0, 1);
    char *path = cm_sprintf("%s/store/config/delayOffset.json", dir);
    int64_t start = cm_mono_ms();
    const char *text;
    while (!(text = read_text(path)) || strcmp(text, "{\n\t\"offsetTable\":{1:1\n\t}\n}") != 0) {
        cr_assert_lt(cm_mono_ms() - start, 10000, "delayOffset.json: %s", text ? text : "none");
        usleep(50000);
    }
    cm_free(path);
    close(fd);
    rmq_broker_destroy(b);
}

/* More due messages than one pass delivers per level: all arrive, once, in order, and
 * another level's message is not held up behind the backlog. */
Test(delay, backlog_delivered_once_in_order) {
    rmq_broker_t *b = tb_broker_start(dir, "messageDelayLevel", LEVELS, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    enum { N = 700 };
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "b-%04d", i);
        cr_assert_eq(send_delayed(fd, "Backlog", 0, "1", body, NULL, NULL), 0);
    }
    cr_assert_eq(send_delayed(fd, "Backlog", 1, "2", "other", NULL, NULL), 0);
    int64_t start = cm_mono_ms();
    while (tb_max_offset(fd, "Backlog", 0) < N) {
        cr_assert_lt(cm_mono_ms() - start, 20000, "backlog not delivered");
        usleep(20000);
    }
    wait_count(fd, "Backlog", 1, 1);
    usleep(1200 * 1000);
    cr_assert_eq(tb_max_offset(fd, "Backlog", 0), N, "repeated deliveries");
    cr_assert_eq(count(fd, "Backlog", 1), 1);
    proto_cmd_t req, resp;
    tb_pull_req(&req, "gd", "Backlog", 0, N - 1, 1, 0, 0, "*");
    tb_call(fd, &req, &resp);
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_assert_eq(rec.body_len, 6);
    cr_assert_eq(memcmp(rec.body, "b-0699", 6), 0);
    proto_cmd_free(&resp);
    close(fd);
    rmq_broker_destroy(b);
    char *path = cm_sprintf("%s/store/config/delayOffset.json", dir);
    cr_assert_str_eq(read_text(path), "{\n\t\"offsetTable\":{1:700,2:1\n\t}\n}");
    cm_free(path);
}
