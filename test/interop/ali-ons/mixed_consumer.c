/* mixed_consumer: librmq's push consumer as one member of a consumer group whose other member
 * is an ali-ons consumer (mixed-group.js, issue 6 item 7). It joins GROUP on TOPIC through the
 * name server at NAMESRV and prints one line per message it consumes:
 *     MSG <queueId> <queueOffset> <body>
 * (stdout, flushed per line), so the script can tell which queues each member owned and
 * which messages it got. It prints READY once started and stops — destroying the consumer,
 * which persists its offsets and leaves the group — when its standard input closes.
 * Usage: mixed_consumer NAMESRV GROUP TOPIC INSTANCE
 * Exit: 0 after a clean stop; 1 when the consumer cannot start. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <rmq/rmq.h>

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static rmq_consume_status_t on_msgs(const rmq_msg_t *const *msgs, size_t count,
                                    rmq_consume_ctx_t *ctx, void *opaque) {
    (void)opaque;
    const rmq_mq_t *mq = rmq_consume_ctx_queue(ctx);
    pthread_mutex_lock(&out_mu);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const char *body = rmq_msg_body(msgs[i], &len);
        printf("MSG %d %lld %.*s\n", (int)mq->queue_id, (long long)rmq_msg_queue_offset(msgs[i]),
               (int)len, body);
    }
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    return RMQ_CONSUME_SUCCESS;
}

static int set(rmq_conf_t *conf, const char *key, const char *value) {
    char err[256];
    if (rmq_conf_set(conf, key, value, err, sizeof err) == RMQ_OK) return 0;
    fprintf(stderr, "mixed_consumer: %s=%s: %s\n", key, value, err);
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s NAMESRV GROUP TOPIC INSTANCE\n", argv[0]);
        return 2;
    }
    rmq_conf_t *conf = rmq_conf_new();
    /* ali-ons rebalances every second in the script (it ignores NOTIFY_CONSUMER_IDS_CHANGED);
     * ours rebalances on the notification and every second too. */
    if (set(conf, "namesrvAddr", argv[1]) || set(conf, "consumerGroup", argv[2]) ||
        set(conf, "instanceName", argv[4]) ||
        set(conf, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET") ||
        set(conf, "rebalanceWaitInterval", "1000") ||
        set(conf, "persistConsumerOffsetInterval", "1000") ||
        set(conf, "brokerSuspendMaxTimeMillis", "2000")) {
        rmq_conf_destroy(conf);
        return 1;
    }
    char err[256];
    rmq_push_consumer_t *c = rmq_push_consumer_new(conf, err, sizeof err);
    if (!c) {
        fprintf(stderr, "mixed_consumer: %s\n", err);
        rmq_conf_destroy(conf);
        return 1;
    }
    if (rmq_push_consumer_subscribe(c, argv[3], "*") != RMQ_OK ||
        rmq_push_consumer_set_listener(c, on_msgs, NULL) != RMQ_OK ||
        rmq_push_consumer_start(c, err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "mixed_consumer: cannot start: %s\n", err);
        rmq_push_consumer_destroy(c);
        return 1;
    }
    pthread_mutex_lock(&out_mu);
    printf("READY\n");
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    char line[256];
    while (fgets(line, sizeof line, stdin)) { /* until the script closes our stdin */
    }
    rmq_push_consumer_destroy(c);
    pthread_mutex_lock(&out_mu);
    printf("STOPPED\n");
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    return 0;
}
