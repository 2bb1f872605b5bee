/* Producer flow control: a send that waited in the broker's send queue longer than
 * waitTimeMillsInSendQueue is answered SYSTEM_BUSY (2) with RocketMQ's [TIMEOUT_CLEAN_QUEUE]
 * remark and is not stored; a oneway send is still stored (it cannot be told to retry); the
 * next send is served normally. The send thread is held deterministically by a processor of
 * our own on the send executor (a private request code), so no timing guesswork is needed. */
#include "tb.h"

#include <pthread.h>

#include "broker/broker_int.h"
#include "common/cm.h"

#define CODE_HOLD 1000 /* unused by RocketMQ, below BROKER_MAX_CODE */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static bool holding, released;

/* Send thread: blocks until the test releases it, then answers OK. */
static void on_hold(broker_t *b, broker_req_t *req) {
    pthread_mutex_lock(&hold_mu);
    holding = true;
    pthread_cond_broadcast(&hold_cv);
    while (!released)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    broker_reply_code(b, req, 0, NULL);
}

static void wait_holding(void) {
    pthread_mutex_lock(&hold_mu);
    while (!holding)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
}

static void release(void) {
    pthread_mutex_lock(&hold_mu);
    released = true;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
}

Test(flowctl, send_that_waited_too_long_gets_system_busy_and_is_not_stored) {
    char *dir = tb_tempdir();
    /* 500 ms, not less: the "after" send below must not wait that long in an idle queue even
     * under valgrind on a loaded machine (with 50 ms it did, seen in a CI dry run). */
    rmq_broker_t *broker = tb_broker_new(dir, "waitTimeMillsInSendQueue", "500", NULL);
    broker_set_processor((broker_t *)broker, CODE_HOLD, on_hold, BROKER_EXEC_SEND);
    tb_broker_run(broker);
    cr_assert_eq(rmq_broker_create_topic(broker, "FlowT", 1, 6), RMQ_OK);
    int fd = tb_connect(rmq_broker_addr(broker));

    proto_cmd_t hold, late, oneway, resp;
    proto_cmd_request(&hold, CODE_HOLD, tb_next_opaque());
    int32_t hold_opaque = hold.opaque;
    cr_assert(tb_send(fd, &hold));
    wait_holding(); /* the send thread is busy from here on */
    tb_send_req(&late, "FlowT", 0, NULL, NULL, "late", 4);
    int32_t late_opaque = late.opaque;
    cr_assert(tb_send(fd, &late));
    tb_send_req(&oneway, "FlowT", 0, NULL, NULL, "oneway", 6);
    oneway.flag |= PROTO_FLAG_ONEWAY;
    cr_assert(tb_send(fd, &oneway));
    usleep(1000 * 1000); /* both wait in the queue well past 500 ms */
    release();

    tb_recv_for(fd, hold_opaque, &resp);
    cr_assert_eq(resp.code, 0);
    proto_cmd_free(&resp);
    tb_recv_for(fd, late_opaque, &resp);
    cr_assert_eq(resp.code, RMQ_ERR_SYSTEM_BUSY, "code %d", resp.code);
    cr_assert_not_null(resp.remark);
    cr_assert(strstr(resp.remark, "[TIMEOUT_CLEAN_QUEUE]broker busy"), "%s", resp.remark);
    proto_cmd_free(&resp);

    /* Served normally again; the refused send was not stored, the oneway one was. */
    cr_assert_eq(tb_produce(fd, "FlowT", 0, NULL, NULL, "after", NULL), 0);
    cr_assert_eq(tb_max_offset(fd, "FlowT", 0), 2);
    char *stats = rmq_broker_stats_json(broker);
    cr_assert(strstr(stats, "\"sendBusy\":1"), "%s", stats);
    rmq_free(stats);
    close(fd);
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}

/* Pipelined sends of one connection are stored in the order sent, whether they run on the
 * send thread (queued behind a busy one) or on the I/O thread (the send thread idle), and
 * however the switch between the two falls: the queue offsets in the replies count up. */
Test(flowctl, pipelined_sends_keep_their_order_across_the_send_and_io_threads) {
    enum { BEFORE = 5, HELD = 10, N = 60 };
    char *dir = tb_tempdir();
    rmq_broker_t *broker = tb_broker_new(dir, "waitTimeMillsInSendQueue", "60000", NULL);
    broker_set_processor((broker_t *)broker, CODE_HOLD, on_hold, BROKER_EXEC_SEND);
    tb_broker_run(broker);
    cr_assert_eq(rmq_broker_create_topic(broker, "OrderT", 1, 6), RMQ_OK);
    int fd = tb_connect(rmq_broker_addr(broker));
    int32_t opaques[N];
    cm_buf_t out = CM_BUF_INIT;
    for (int i = 0; i < N; i++) {
        if (i == BEFORE) {
            /* One write: the hold and the two sends after it arrive in one read, so the send
             * thread takes them as one batch and stays busy with sends of its own. */
            proto_cmd_t hold;
            proto_cmd_request(&hold, CODE_HOLD, tb_next_opaque());
            cr_assert_eq(proto_frame_encode(&hold, &out), RMQ_OK);
            proto_cmd_free(&hold);
        }
        if (i == BEFORE + HELD) release(); /* the rest races the queue draining */
        char body[16];
        snprintf(body, sizeof body, "m%d", i);
        proto_cmd_t req;
        tb_send_req(&req, "OrderT", 0, NULL, NULL, body, strlen(body));
        opaques[i] = req.opaque;
        if (i < BEFORE || i > BEFORE + 1) {
            cr_assert(tb_send(fd, &req));
            continue;
        }
        cr_assert_eq(proto_frame_encode(&req, &out), RMQ_OK);
        proto_cmd_free(&req);
        if (i == BEFORE + 1) {
            cr_assert(tb_write_all(fd, out.data, out.len));
            wait_holding(); /* later sends must queue behind the batch being run */
        }
    }
    cm_buf_free(&out);
    int64_t offsets[N];
    for (int i = 0; i < N; i++) offsets[i] = -1;
    for (int got = 0; got < N;) {
        proto_cmd_t resp;
        cr_assert(tb_recv(fd, &resp));
        for (int i = 0; i < N; i++) {
            if (!proto_cmd_is_response(&resp) || resp.opaque != opaques[i]) continue;
            cr_assert_eq(resp.code, 0, "send %d: code %d", i, resp.code);
            offsets[i] = tb_ext_int(&resp, "queueOffset");
            got++;
        }
        proto_cmd_free(&resp);
    }
    for (int i = 0; i < N; i++) cr_assert_eq(offsets[i], i, "send %d stored at %lld", i, (long long)offsets[i]);
    cr_assert_eq(tb_max_offset(fd, "OrderT", 0), N);
    close(fd);
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}
