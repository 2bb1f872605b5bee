/* consumer_broadcast: two push consumers of one group in BROADCASTING mode each receive every
 * message; each keeps its offsets in its own local file,
 * <localOffsetStoreDir>/<clientId>/<group>/offsets.json (RocketMQ's format).
 *   consumer_broadcast [namesrv-addr]   (no address: an embedded broker) */
#include <stdatomic.h>

#include "example.h"

#define COUNT 50

static rmq_consume_status_t on_messages(const rmq_msg_t *const *msgs, size_t count,
                                        rmq_consume_ctx_t *ctx, void *opaque) {
    (void)msgs;
    (void)ctx;
    atomic_fetch_add((atomic_int *)opaque, (int)count);
    return RMQ_CONSUME_SUCCESS;
}

int main(int argc, char **argv) {
    const char *namesrv = name_server(argc, argv);
    char dir[64] = "/tmp/rmq-example-offsets-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* Sent first, so the topic exists when the consumers look at its queues (a topic created
     * later is seen at the next rebalance, up to rebalanceWaitInterval later). */
    rmq_producer_t *p = start_producer(namesrv);
    send_numbered(p, "ExampleBroadcastTopic", COUNT);
    rmq_producer_destroy(p);
    atomic_int got[2] = {0, 0};
    rmq_push_consumer_t *c[2];
    for (int i = 0; i < 2; i++) {
        char err[256], name[32];
        snprintf(name, sizeof name, "broadcast-%d", i);
        rmq_conf_t *conf = push_conf(namesrv, "example_broadcast");
        if (rmq_conf_set(conf, "messageModel", "BROADCASTING", err, sizeof err) ||
            rmq_conf_set(conf, "instanceName", name, err, sizeof err) || /* one file each */
            rmq_conf_set(conf, "localOffsetStoreDir", dir, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        c[i] = start_push_consumer(conf, "ExampleBroadcastTopic", on_messages, &got[i], 0);
    }
    for (int waited = 0; waited < 30000; waited += 100) {
        if (atomic_load(&got[0]) >= COUNT && atomic_load(&got[1]) >= COUNT) break;
        usleep(100 * 1000);
    }
    for (int i = 0; i < 2; i++)
        rmq_push_consumer_destroy(c[i]); /* writes the offsets files */
    printf("consumer 0 got %d, consumer 1 got %d of %d; offsets under %s\n", atomic_load(&got[0]),
           atomic_load(&got[1]), COUNT, dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    stop_embedded();
    return atomic_load(&got[0]) == COUNT && atomic_load(&got[1]) == COUNT ? 0 : 1;
}
