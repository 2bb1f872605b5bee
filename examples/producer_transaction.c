/* producer_transaction: three orders sent as transactions. Each is stored as a half message
 * (invisible to consumers), then the local transaction decides: order 1 commits, order 2
 * rolls back, order 3 cannot tell yet (UNKNOWN) and is settled later when the broker asks
 * back through the check callback. A pull consumer then shows what consumers see: orders 1
 * and 3, once each.
 *   producer_transaction [namesrv-addr]   (no address: an embedded broker) */
#include <stdatomic.h>
#include <stdbool.h>

#include "example.h"

#define TOPIC "ExampleTxTopic"

/* The application's own record of each order's fate (in real life: its database). */
static atomic_int paid[4];

static int order_of(const rmq_msg_t *m) {
    const char *keys = rmq_msg_keys(m);
    return keys ? atoi(keys + strlen("order-")) : 0;
}

static const char *state_name(rmq_tx_state_t s) {
    return s == RMQ_TX_COMMIT ? "COMMIT" : s == RMQ_TX_ROLLBACK ? "ROLLBACK" : "UNKNOWN";
}

/* Runs right after the half message was stored, on the thread that called send_tx. */
static rmq_tx_state_t local_transaction(rmq_msg_t *m, void *arg) {
    (void)arg;
    int order = order_of(m);
    printf("local transaction for order %d (transaction %s)\n", order, rmq_msg_id(m));
    switch (order) {
    case 1:
        return RMQ_TX_COMMIT;
    case 2:
        return RMQ_TX_ROLLBACK;
    default:
        atomic_store(&paid[order], 1); /* decided a moment later, after the answer */
        return RMQ_TX_UNKNOWN;
    }
}

/* The broker's check-back, on a callback-pool thread: looks the order up again. */
static rmq_tx_state_t check_transaction(const rmq_msg_t *m, void *opaque) {
    (void)opaque;
    int order = order_of(m);
    rmq_tx_state_t state = atomic_load(&paid[order & 3]) ? RMQ_TX_COMMIT : RMQ_TX_ROLLBACK;
    printf("broker asks about order %d: %s\n", order,
           state == RMQ_TX_COMMIT ? "commit" : "rollback");
    return state;
}

int main(int argc, char **argv) {
    /* The embedded broker checks open transactions every second, one second after they
     * began (RocketMQ's defaults: every 60 s, after 6 s), so the example ends quickly. */
    static const char *const fast_checks[] = {"transactionCheckInterval", "1000",
                                              "transactionTimeOut", "1000", NULL};
    const char *namesrv = name_server_with(argc, argv, fast_checks);
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "namesrvAddr", namesrv, err, sizeof err) ||
        rmq_conf_set(conf, "producerGroup", "example_tx_producers", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rmq_conf_set_tx_check_cb(conf, check_transaction, NULL); /* before rmq_producer_new */
    rmq_producer_t *p = rmq_producer_new(conf, err, sizeof err);
    if (!p || rmq_producer_start(p, err, sizeof err)) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    for (int order = 1; order <= 3; order++) {
        char keys[32], body[64];
        snprintf(keys, sizeof keys, "order-%d", order);
        snprintf(body, sizeof body, "order %d paid", order);
        rmq_msg_t *m = rmq_msg_new(TOPIC);
        rmq_msg_set_keys(m, keys);
        rmq_msg_set_body(m, body, strlen(body));
        rmq_send_result_t r;
        rmq_err_t e = rmq_producer_send_tx(p, m, local_transaction, NULL, &r);
        rmq_msg_destroy(m);
        if (e) {
            fprintf(stderr, "send_tx: %s (%s)\n", rmq_err_name(e), rmq_producer_last_remark());
            return 1;
        }
        printf("order %d: transaction %s, local state %s\n", order, r.transaction_id,
               state_name(r.tx_state));
    }

    rmq_pull_consumer_t *c = new_pull_consumer(namesrv, "example_tx", "CONSUME_FROM_FIRST_OFFSET");
    if (rmq_pull_consumer_subscribe(c, TOPIC, "*") || rmq_pull_consumer_start(c, err, sizeof err)) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    int seen[4] = {0}, got = 0, idle = 0;
    while (got < 2 && idle < 30) { /* order 3 comes after the check-back */
        rmq_msg_t *msgs[8];
        int n = rmq_pull_consumer_poll(c, 1000, msgs, 8);
        idle = n > 0 ? 0 : idle + 1;
        for (int i = 0; i < n; i++) {
            size_t len;
            const char *body = rmq_msg_body(msgs[i], &len);
            printf("consumer got: %.*s\n", (int)len, body);
            seen[order_of(msgs[i]) & 3]++;
            got++;
            rmq_msg_destroy(msgs[i]);
        }
    }
    rmq_pull_consumer_destroy(c);
    rmq_producer_destroy(p);
    stop_embedded();
    bool ok = seen[1] == 1 && seen[2] == 0 && seen[3] == 1 && got == 2;
    printf("%s\n", ok ? "orders 1 and 3 delivered, order 2 rolled back" : "unexpected deliveries");
    return ok ? 0 : 1;
}
