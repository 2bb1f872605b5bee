/* consumer_push: sends 100 messages, then a push consumer receives them on its consume
 * threads. The listener fails each message once (RECONSUME_LATER): the broker keeps a copy
 * and delivers it again through %RETRY%<group> after a delay (level 3: 10 s by default), with its
 * reconsume times 1. consumer_push [namesrv-addr]   (no address: an embedded broker) */
#include <stdatomic.h>

#include "example.h"

#define COUNT 100

static atomic_int first_time, again;

static rmq_consume_status_t on_messages(const rmq_msg_t *const *msgs, size_t count,
                                        rmq_consume_ctx_t *ctx, void *opaque) {
    (void)opaque;
    for (size_t i = 0; i < count; i++) {
        if (rmq_msg_reconsume_times(msgs[i]) == 0) {
            if (atomic_fetch_add(&first_time, 1) < 2) {
                size_t len;
                const char *body = rmq_msg_body(msgs[i], &len);
                printf("queue %d offset %lld: %.*s\n", (int)rmq_consume_ctx_queue(ctx)->queue_id,
                       (long long)rmq_msg_queue_offset(msgs[i]), (int)len, body);
            }
            return RMQ_CONSUME_RECONSUME_LATER; /* once: it comes back about 10 s later */
        }
        atomic_fetch_add(&again, 1);
    }
    return RMQ_CONSUME_SUCCESS;
}

int main(int argc, char **argv) {
    const char *namesrv = name_server(argc, argv);
    rmq_producer_t *p = start_producer(namesrv);
    send_numbered(p, "ExamplePushTopic", COUNT);
    rmq_producer_destroy(p);

    rmq_conf_t *conf = push_conf(namesrv, "example_push");
    rmq_push_consumer_t *c = start_push_consumer(conf, "ExamplePushTopic", on_messages, NULL, 0);
    for (int waited = 0; atomic_load(&again) < COUNT && waited < 60000; waited += 100)
        usleep(100 * 1000);
    rmq_push_consumer_destroy(c); /* waits for listener calls still running */
    printf("%d first deliveries, %d redelivered and acknowledged\n", atomic_load(&first_time),
           atomic_load(&again));
    stop_embedded();
    return atomic_load(&again) == COUNT ? 0 : 1;
}
