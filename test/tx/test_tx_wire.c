/* Transactions on the wire, with raw frames as a Java producer sends them: the half message's
 * answer, END_TRANSACTION's checks (EndTransactionProcessor's remarks), the committed copy
 * (sysFlag COMMIT, PREPAREDTRANSACTIONOFFSET) and a repeated END that delivers nothing
 * twice. */
#include "../broker/tb.h"

#define TOPIC "WireTx"
#define HALF "RMQ_SYS_TRANS_HALF_TOPIC"
#define OP "RMQ_SYS_TRANS_OP_HALF_TOPIC"

static char *dir;
static rmq_broker_t *broker;
static int fd = -1;

static void setup(void) {
    dir = tb_tempdir();
    broker = tb_broker_start(dir, NULL);
    cr_assert_eq(rmq_broker_create_topic(broker, TOPIC, 4, 6), RMQ_OK);
    fd = tb_connect(rmq_broker_addr(broker));
}

static void teardown(void) {
    if (fd >= 0) close(fd);
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    free(dir);
}

TestSuite(tx_wire, .init = setup, .fini = teardown, .timeout = 120);

/* A half message as DefaultMQProducerImpl sends it: TRAN_MSG, PGROUP, sysFlag PREPARED. */
static void send_half(int32_t queue_id, int64_t *phys, int64_t *queue_offset) {
    proto_props_t p = {0};
    proto_props_set(&p, PROP_UNIQ_KEY, "7F00000100002A9F0000000000000001");
    proto_props_set(&p, PROP_WAIT, "true");
    proto_props_set(&p, PROP_TAGS, "A");
    proto_props_set(&p, PROP_TRAN_MSG, "true");
    proto_props_set(&p, PROP_PGROUP, "wire_pg");
    char *text = tb_props_text(&p);
    proto_send_req_t h;
    tb_send_header(&h, TOPIC, queue_id, text);
    h.producer_group = "wire_pg";
    h.sys_flag = SYSFLAG_TX_PREPARED;
    proto_cmd_t req, resp;
    tb_send_cmd(&req, &h, "half", 4);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark ? resp.remark : "");
    cr_expect_eq(tb_ext_int(&resp, "queueId"), queue_id, "the queue asked for is answered");
    *queue_offset = tb_ext_int(&resp, "queueOffset");
    proto_addr_t host;
    cr_assert_eq(proto_offset_id_parse(proto_ext_get(&resp.ext, "msgId"), &host, phys), RMQ_OK);
    proto_cmd_free(&resp);
    cm_free(text);
    proto_props_free(&p);
}

/* END_TRANSACTION, answered (Java producers send it oneway; the broker answers when asked). */
static int32_t end_tx(const char *group, int64_t table_offset, int64_t phys, int32_t type,
                      char *remark, size_t size) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_END_TRANSACTION, tb_next_opaque());
    proto_end_tx_req_t h;
    proto_end_tx_req_init(&h);
    h.producer_group = group;
    h.tran_state_table_offset = table_offset;
    h.commit_log_offset = phys;
    h.commit_or_rollback = type;
    h.msg_id = "7F00000100002A9F0000000000000001";
    proto_end_tx_req_encode(&h, &req.ext);
    tb_call(fd, &req, &resp);
    snprintf(remark, size, "%s", resp.remark ? resp.remark : "");
    int32_t code = resp.code;
    proto_cmd_free(&resp);
    return code;
}

Test(tx_wire, end_checks_and_commit_once) {
    int64_t phys, qoff;
    send_half(2, &phys, &qoff);
    cr_expect_eq(qoff, 0, "the half's offset in the half queue");
    cr_expect_eq(tb_max_offset(fd, TOPIC, 2), 0, "invisible until committed");
    cr_expect_eq(tb_max_offset(fd, HALF, 0), 1);
    char remark[256];
    cr_expect_eq(end_tx("other_pg", qoff, phys, PROTO_TX_COMMIT, remark, sizeof remark), 1);
    cr_expect_str_eq(remark, "The producer group wrong");
    cr_expect_eq(end_tx("wire_pg", qoff + 5, phys, PROTO_TX_COMMIT, remark, sizeof remark), 1);
    cr_expect_str_eq(remark, "The transaction state table offset wrong");
    cr_expect_eq(end_tx("wire_pg", qoff, phys + (1 << 20), PROTO_TX_COMMIT, remark, sizeof remark),
                 1);
    cr_expect_str_eq(remark, "Find prepared transaction message failed");
    cr_expect_eq(tb_max_offset(fd, TOPIC, 2), 0, "refused ENDs commit nothing");

    cr_expect_eq(end_tx("wire_pg", qoff, phys, PROTO_TX_COMMIT, remark, sizeof remark), 0, "%s",
                 remark);
    cr_expect_eq(tb_max_offset(fd, TOPIC, 2), 1, "committed on the real queue");
    cr_expect_eq(tb_max_offset(fd, OP, 0), 1, "one op record");
    /* A second END for the same half (a retry, a late duplicate): no second copy. */
    cr_expect_eq(end_tx("wire_pg", qoff, phys, PROTO_TX_COMMIT, remark, sizeof remark), 0);
    cr_expect_eq(end_tx("wire_pg", qoff, phys, PROTO_TX_ROLLBACK, remark, sizeof remark), 0);
    cr_expect_eq(tb_max_offset(fd, TOPIC, 2), 1, "still one copy");

    proto_cmd_t req, resp;
    tb_pull_req(&req, "wire_cg", TOPIC, 2, 0, 32, 0, 0, "*");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "pull: %d %s", resp.code, resp.remark ? resp.remark : "");
    proto_record_t rec;
    cr_assert_eq(proto_record_decode(resp.body, resp.body_len, true, &rec), RMQ_OK);
    cr_expect_eq(rec.sys_flag & SYSFLAG_TX_MASK, SYSFLAG_TX_COMMIT);
    cr_expect_eq(rec.prepared_tx_offset, phys, "PREPAREDTRANSACTIONOFFSET = the half's offset");
    cr_expect_eq(rec.queue_id, 2);
    cr_expect(tb_prop_is(&rec, PROP_TRAN_MSG, "true"));
    cr_expect(tb_prop_is(&rec, PROP_PGROUP, "wire_pg"));
    cr_expect(tb_prop_is(&rec, PROP_REAL_TOPIC, TOPIC));
    cr_expect(tb_prop_is(&rec, PROP_REAL_QID, "2"));
    cr_expect_eq(rec.body_len, 4);
    proto_cmd_free(&resp);
}

Test(tx_wire, rollback_stores_only_the_op_record) {
    int64_t phys, qoff;
    send_half(1, &phys, &qoff);
    char remark[256];
    cr_expect_eq(end_tx("wire_pg", qoff, phys, PROTO_TX_ROLLBACK, remark, sizeof remark), 0);
    cr_expect_eq(end_tx("wire_pg", qoff, phys, PROTO_TX_COMMIT, remark, sizeof remark), 0);
    cr_expect_eq(tb_max_offset(fd, TOPIC, 1), 0, "rolled back: never on the real queue");
    cr_expect_eq(tb_max_offset(fd, OP, 0), 2, "an op record for each END");
}

/* A batch never carries a transaction (RocketMQ's batch path has no half messages). */
Test(tx_wire, a_transactional_batch_is_refused) {
    proto_props_t p = {0};
    proto_props_set(&p, PROP_TRAN_MSG, "true");
    char *text = tb_props_text(&p);
    cm_buf_t body = CM_BUF_INIT;
    proto_batch_encode_item(&body, 0, "x", 1, "", 0);
    proto_send_req_t h;
    tb_send_header(&h, TOPIC, 0, text);
    h.batch = true;
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_SEND_BATCH_MESSAGE, tb_next_opaque());
    proto_send_req_encode(&h, PROTO_SEND_BATCH_MESSAGE, &req.ext);
    proto_cmd_set_body(&req, body.data, body.len);
    tb_call(fd, &req, &resp);
    cr_expect_eq(resp.code, RMQ_ERR_NO_PERMISSION);
    proto_cmd_free(&resp);
    cm_buf_free(&body);
    cm_free(text);
    proto_props_free(&p);
}
