/* Timer messages over raw frames: a send with TIMER_DELIVER_MS / TIMER_DELAY_SEC /
 * TIMER_DELAY_MS / __STARTDELIVERTIME waits on rmq_sys_wheel_timer and shows up on its real
 * topic and queue at its time, in order of due time, exactly once across broker restarts;
 * past timerMaxDelaySec the send is refused. Timing is checked one way only (never early,
 * by the stored timestamps); the lateness is printed. */
#include "tb.h"

#include "common/cm.h"

static char *dir;

static void setup(void) {
    dir = tb_tempdir();
}

static void teardown(void) {
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(timer, .init = setup, .fini = teardown);

/* A SEND_MESSAGE_V2 to topic/queue with property key=value (key NULL: none); the body is
 * also the UNIQ_KEY. Returns the response code; resp_out (may be NULL) keeps the reply. */
static int32_t send_timed(int fd, const char *topic, int32_t queue_id, const char *key,
                          const char *value, const char *body, proto_cmd_t *resp_out) {
    proto_cmd_t cmd, resp;
    proto_props_t p = {0};
    proto_props_set(&p, PROP_UNIQ_KEY, body);
    proto_props_set(&p, PROP_WAIT, "true");
    if (key) proto_props_set(&p, key, value);
    char *text = tb_props_text(&p);
    proto_send_req_t h;
    tb_send_header(&h, topic, queue_id, text);
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

/* Sends with TIMER_DELIVER_MS = at. */
static int32_t send_at(int fd, const char *topic, int64_t at, const char *body) {
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)at);
    return send_timed(fd, topic, 0, PROP_TIMER_DELIVER_MS, text, body, NULL);
}

/* The records of topic/queue from offset 0 (up to 32), decoded, into recs (bodies point into
 * resp, which the caller frees). Returns the count. */
static int pull_all(int fd, const char *topic, int32_t queue_id, proto_cmd_t *resp,
                    proto_record_t *recs, int max) {
    proto_cmd_t req;
    tb_pull_req(&req, "gt", topic, queue_id, 0, 32, 0, 0, "*");
    tb_call(fd, &req, resp);
    int n = 0;
    size_t pos = 0;
    while (resp->code == 0 && pos < resp->body_len && n < max) {
        cr_assert_eq(proto_record_decode(resp->body + pos, resp->body_len - pos, true, &recs[n]),
                     RMQ_OK);
        pos += (size_t)recs[n++].total_size;
    }
    return n;
}

static int count(int fd, const char *topic, int32_t queue_id) {
    return (int)tb_max_offset(fd, topic, queue_id);
}

/* Waits (bounded: 30 s) until topic/queue holds want records. */
static void wait_count(int fd, const char *topic, int32_t queue_id, int want) {
    int64_t start = cm_mono_ms();
    while (count(fd, topic, queue_id) < want) {
        cr_assert_lt(cm_mono_ms() - start, 30000, "%s/%d never reached %d records (has %d)", topic,
                     queue_id, want, count(fd, topic, queue_id));
        usleep(20000);
    }
}

static bool has_prop(const proto_record_t *rec, const char *name) {
    const char *v;
    size_t n;
    return proto_props_find(rec->props, (size_t)rec->props_len, name, &v, &n);
}

static int64_t prop_int(const proto_record_t *rec, const char *name) {
    const char *v;
    size_t n;
    cr_assert(proto_props_find(rec->props, (size_t)rec->props_len, name, &v, &n), "%s missing",
              name);
    char text[32] = "";
    memcpy(text, v, n < sizeof text - 1 ? n : sizeof text - 1);
    return strtoll(text, NULL, 10);
}

/* Every record of topic/queue 0 is stored no earlier than its due time, in order of it;
 * prints the lateness. Returns the count. The due time is TIMER_OUT_MS for what went through
 * the wheel; a send that arrived when its TIMER_DELIVER_MS had already passed (sends under
 * valgrind are slow) is a plain message without it, due at the time it asked for. */
static int check_delivered(int fd, const char *topic, const char *what) {
    proto_cmd_t resp;
    proto_record_t recs[32];
    int n = pull_all(fd, topic, 0, &resp, recs, 32);
    int64_t prev = 0, worst = 0;
    int plain = 0;
    for (int i = 0; i < n; i++) {
        bool wheeled = has_prop(&recs[i], PROP_TIMER_OUT_MS);
        plain += !wheeled;
        int64_t due = prop_int(&recs[i], wheeled ? PROP_TIMER_OUT_MS : PROP_TIMER_DELIVER_MS);
        int64_t late = recs[i].store_timestamp - due;
        cr_assert_geq(late, 0, "%s: message %d delivered %lld ms early", what, i, (long long)-late);
        cr_assert_geq(due, prev, "%s: message %d out of due order", what, i);
        cr_assert(!wheeled || tb_prop_is(&recs[i], PROP_REAL_TOPIC, topic));
        prev = due;
        if (late > worst) worst = late;
    }
    fprintf(stderr, "%s: %d delivered (%d already due when sent), worst lateness %lld ms\n", what,
            n, plain, (long long)worst);
    proto_cmd_free(&resp);
    return n;
}

Test(timer, each_key_delivers_at_its_time_in_due_order) {
    rmq_broker_t *b = tb_broker_start(dir, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    int64_t now = cm_now_ms();
    char at[24];
    /* A deliver time in the past is a normal message (checked first: under valgrind the
     * sends below take long enough for the earliest to come due). */
    cr_assert_eq(send_at(fd, "Timed", now - 5000, "m-past"), 0);
    cr_assert_eq(count(fd, "Timed", 0), 1, "a deliver time in the past is a normal message");
    /* Sent out of due order, one per key, all on queue 0 of "Timed". */
    cr_assert_eq(send_at(fd, "Timed", now + 2600, "m-2600"), 0);
    cr_assert_eq(send_timed(fd, "Timed", 0, PROP_TIMER_DELAY_SEC, "2", "m-sec2", NULL), 0);
    cr_assert_eq(send_timed(fd, "Timed", 0, PROP_TIMER_DELAY_MS, "1300", "m-ms1300", NULL), 0);
    snprintf(at, sizeof at, "%lld", (long long)(now + 800));
    proto_cmd_t resp;
    cr_assert_eq(send_timed(fd, "Timed", 0, PROP_START_DELIVER_TIME, at, "m-ali800", &resp), 0);
    cr_assert_eq(tb_ext_int(&resp, "queueId"), 0); /* the real queue in the reply */
    proto_cmd_free(&resp);

    /* Parked on the timer topic as RocketMQ 5 parks them. */
    proto_record_t recs[32];
    int n = pull_all(fd, "rmq_sys_wheel_timer", 0, &resp, recs, 32);
    cr_assert_eq(n, 4);
    cr_assert(tb_prop_is(&recs[0], PROP_REAL_TOPIC, "Timed"));
    cr_assert(tb_prop_is(&recs[0], PROP_REAL_QID, "0"));
    cr_assert_eq(prop_int(&recs[0], PROP_TIMER_OUT_MS), now + 2600);
    proto_cmd_free(&resp);

    wait_count(fd, "Timed", 0, 5);
    n = pull_all(fd, "Timed", 0, &resp, recs, 32);
    /* In due order: by TIMER_OUT_MS (what each key asked for; on an idle machine the order
     * below, but the relative keys count from their own send). */
    const char *order[] = {"m-past", "m-ali800", "m-ms1300", "m-sec2", "m-2600"};
    cr_assert_eq(n, 5);
    cr_assert(tb_prop_is(&recs[0], PROP_UNIQ_KEY, "m-past"));
    for (int k = 1; k < 5; k++) {
        int found = 0;
        for (int i = 1; i < 5; i++)
            found += tb_prop_is(&recs[i], PROP_UNIQ_KEY, order[k]);
        cr_assert_eq(found, 1, "%s delivered %d times", order[k], found);
    }
    int64_t worst = 0;
    for (int i = 1; i < 5; i++) {
        int64_t due = prop_int(&recs[i], PROP_TIMER_OUT_MS);
        if (i > 1)
            cr_assert_geq(due, prop_int(&recs[i - 1], PROP_TIMER_OUT_MS), "message %d out of order",
                          i);
        int64_t late = recs[i].store_timestamp - due;
        cr_assert_geq(late, 0, "message %d early by %lld ms", i, (long long)-late);
        if (late > worst) worst = late;
    }
    fprintf(stderr, "timer keys: worst lateness %lld ms (target 100 ms on an idle machine)\n",
            (long long)worst);
    proto_cmd_free(&resp);
    usleep(1200 * 1000);
    cr_assert_eq(count(fd, "Timed", 0), 5, "a timer message was delivered twice");
    close(fd);
    rmq_broker_destroy(b);
}

Test(timer, maximum_and_bad_values_are_refused) {
    rmq_broker_t *b = tb_broker_start(dir, "timerMaxDelaySec", "10", NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    proto_cmd_t resp;
    cr_assert_eq(send_timed(fd, "Max", 0, PROP_TIMER_DELAY_SEC, "11", "too-far", &resp), 13);
    cr_assert(strstr(resp.remark, "max delay 10000ms"), "%s", resp.remark);
    proto_cmd_free(&resp);
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)(cm_now_ms() + 60000));
    cr_assert_eq(send_timed(fd, "Max", 0, PROP_TIMER_DELIVER_MS, at, "too-far-2", NULL), 13);
    cr_assert_eq(send_timed(fd, "Max", 0, PROP_TIMER_DELAY_MS, "12x", "nan", &resp), 13);
    cr_assert(strstr(resp.remark, "not a number"), "%s", resp.remark);
    proto_cmd_free(&resp);
    cr_assert_eq(count(fd, "Max", 0), 0, "a refused message was stored");
    cr_assert_eq(tb_max_offset(fd, "rmq_sys_wheel_timer", 0), 0);
    cr_assert_eq(send_timed(fd, "Max", 0, PROP_TIMER_DELAY_SEC, "1", "within", NULL), 0);
    /* DELAY wins over the timer keys. */
    proto_props_t p = {0};
    proto_props_set(&p, PROP_DELAY, "1");
    proto_props_set(&p, PROP_TIMER_DELAY_SEC, "9");
    char *text = tb_props_text(&p);
    proto_send_req_t h;
    proto_cmd_t cmd;
    tb_send_header(&h, "Max", 1, text);
    tb_send_cmd(&cmd, &h, "both", 4);
    tb_call(fd, &cmd, &resp);
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&resp);
    cm_free(text);
    proto_props_free(&p);
    cr_assert_eq(tb_max_offset(fd, "SCHEDULE_TOPIC_XXXX", 0), 1);
    cr_assert_eq(tb_max_offset(fd, "rmq_sys_wheel_timer", 0), 1);
    /* The timer topic is the broker's: producers may not send to it. */
    cr_assert_eq(tb_produce(fd, "rmq_sys_wheel_timer", 0, NULL, NULL, "direct", NULL), 16);
    wait_count(fd, "Max", 0, 1);
    close(fd);
    rmq_broker_destroy(b);
}

Test(timer, disabled_wheel_refuses_timer_keys) {
    rmq_broker_t *b = tb_broker_start(dir, "timerWheelEnable", "false", NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    proto_cmd_t resp;
    cr_assert_eq(send_timed(fd, "Off", 0, PROP_TIMER_DELAY_SEC, "2", "refused", &resp), 13);
    cr_assert(strstr(resp.remark, "timerWheelEnable"), "%s", resp.remark);
    proto_cmd_free(&resp);
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)(cm_now_ms() + 60000));
    /* ali-ons' key is only a property to a 4.x broker: delivered at once. */
    cr_assert_eq(send_timed(fd, "Off", 0, PROP_START_DELIVER_TIME, at, "ali", NULL), 0);
    cr_assert_eq(count(fd, "Off", 0), 1);
    close(fd);
    rmq_broker_destroy(b);
}

/* Sends n messages on "Durable" due at base + i * step (reversed order), bodies d-<i>. */
static void send_series(int fd, int n, int64_t base, int64_t step) {
    for (int i = n - 1; i >= 0; i--) {
        char body[32];
        snprintf(body, sizeof body, "d-%03d", i);
        cr_assert_eq(send_at(fd, "Durable", base + i * step, body), 0);
    }
}

/* Each of the n bodies d-000.. exactly once on Durable/0, in due order. */
static void assert_each_once(int fd, int n) {
    proto_cmd_t resp;
    proto_record_t recs[32];
    cr_assert_leq(n, 32);
    int got = pull_all(fd, "Durable", 0, &resp, recs, 32);
    cr_assert_eq(got, n, "expected %d deliveries, found %d", n, got);
    for (int i = 0; i < n; i++) {
        char body[32];
        snprintf(body, sizeof body, "d-%03d", i);
        cr_assert(tb_prop_is(&recs[i], PROP_UNIQ_KEY, body), "delivery %d is not %s", i, body);
    }
    proto_cmd_free(&resp);
}

Test(timer, restart_mid_delay_delivers_each_once) {
    rmq_broker_t *b = tb_broker_start(dir, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    /* 30 messages 150 ms apart from now + 2 s: the restart falls in the middle. 2 s, not
     * less: under valgrind the 30 sends took longer than 600 ms and the last ones were
     * already due (plain messages) when they arrived. */
    int64_t base = cm_now_ms() + 2000;
    send_series(fd, 30, base, 150);
    while (cm_now_ms() < base + 1500)
        usleep(20000);
    int before = count(fd, "Durable", 0);
    close(fd);
    rmq_broker_destroy(b);
    fprintf(stderr, "restart: %d of 30 delivered before the stop\n", before);

    b = tb_broker_start(dir, NULL);
    fd = tb_connect(rmq_broker_addr(b));
    wait_count(fd, "Durable", 0, 30);
    usleep(1500 * 1000); /* anything repeated would show up by now */
    assert_each_once(fd, 30);
    cr_assert_eq(check_delivered(fd, "Durable", "restart"), 30);
    char *stats = rmq_broker_stats_json(b);
    cr_assert(strstr(stats, "\"timerPending\":0"), "%s", stats);
    rmq_free(stats);
    close(fd);
    rmq_broker_destroy(b);

    /* RocketMQ 5's files: the timer log, the wheel and the checkpoint. */
    char *path = cm_sprintf("%s/store/config/timercheck", dir);
    cr_assert_eq(access(path, R_OK), 0, "%s", path);
    cm_free(path);
    path = cm_sprintf("%s/store/timerwheel", dir);
    cr_assert_eq(access(path, R_OK), 0, "%s", path);
    cm_free(path);
}

Test(timer, pending_messages_survive_a_changed_wheel) {
    rmq_broker_t *b = tb_broker_start(dir, NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    int64_t base = cm_now_ms() + 2500;
    send_series(fd, 10, base, 100);
    close(fd);
    rmq_broker_destroy(b);
    /* Another maximum and precision: the wheel file has another size and is rebuilt from
     * the timer log. */
    b = tb_broker_start(dir, "timerMaxDelaySec", "3600", "timerPrecisionMs", "500", NULL);
    fd = tb_connect(rmq_broker_addr(b));
    cr_assert_eq(count(fd, "Durable", 0) > 0, cm_now_ms() >= base, "delivered early");
    wait_count(fd, "Durable", 0, 10);
    usleep(1000 * 1000);
    assert_each_once(fd, 10);
    check_delivered(fd, "Durable", "rebuilt wheel");
    close(fd);
    rmq_broker_destroy(b);
}

Test(timer, beyond_the_wheel_is_moved_on) {
    /* A maximum raised after the messages were parked with a tiny wheel: 2 s max gives a
     * wheel of 6 one-second slots; a message 8 s away is parked in the last slot and moved
     * on from there until due. */
    rmq_broker_t *b = tb_broker_start(dir, "timerMaxDelaySec", "60", NULL);
    int fd = tb_connect(rmq_broker_addr(b));
    int64_t due = cm_now_ms() + 8000;
    cr_assert_eq(send_at(fd, "Durable", due, "d-000"), 0);
    close(fd);
    rmq_broker_destroy(b);
    b = tb_broker_start(dir, "timerMaxDelaySec", "2", NULL);
    fd = tb_connect(rmq_broker_addr(b));
    while (cm_now_ms() < due - 200) {
        cr_assert_eq(count(fd, "Durable", 0), 0, "delivered %lld ms early",
                     (long long)(due - cm_now_ms()));
        usleep(100 * 1000);
    }
    wait_count(fd, "Durable", 0, 1);
    usleep(1000 * 1000);
    assert_each_once(fd, 1);
    check_delivered(fd, "Durable", "moved on");
    close(fd);
    rmq_broker_destroy(b);
}
