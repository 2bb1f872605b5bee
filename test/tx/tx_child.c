/* A producer process that dies in the middle of a transaction: it stores one half message
 * and is killed (SIGKILL) inside its local-transaction callback, so no END_TRANSACTION is
 * ever sent and its connections close with the process. test_tx.c runs it to show that
 * another producer of the same group resolves the transaction through the check-back.
 *
 * usage: tx_child NAMESRV GROUP TOPIC BODY */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <rmq/rmq.h>

static rmq_tx_state_t die_now(rmq_msg_t *msg, void *arg) {
    (void)msg;
    (void)arg;
    fflush(NULL);
    raise(SIGKILL);
    return RMQ_TX_UNKNOWN; /* not reached */
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s NAMESRV GROUP TOPIC BODY\n", argv[0]);
        return 2;
    }
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "namesrvAddr", argv[1], err, sizeof err) ||
        rmq_conf_set(conf, "producerGroup", argv[2], err, sizeof err)) {
        fprintf(stderr, "tx_child: %s\n", err);
        return 2;
    }
    rmq_producer_t *p = rmq_producer_new(conf, err, sizeof err);
    if (!p || rmq_producer_start(p, err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "tx_child: %s\n", err);
        return 2;
    }
    rmq_msg_t *m = rmq_msg_new(argv[3]);
    rmq_msg_set_body(m, argv[4], strlen(argv[4]));
    rmq_msg_set_tags(m, "TagTx");
    rmq_err_t rc = rmq_producer_send_tx(p, m, die_now, NULL, NULL);
    /* Only a failed half send gets here. */
    fprintf(stderr, "tx_child: send_tx: %s %s\n", rmq_err_name(rc), rmq_producer_last_remark());
    rmq_msg_destroy(m);
    rmq_producer_destroy(p);
    return 1;
}
