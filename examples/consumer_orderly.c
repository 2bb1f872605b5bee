/* consumer_orderly: the steps of five orders go to the queue their order key hashes to; an
 * orderly push consumer locks each queue on the broker and sees every order's steps in the
 * order they were sent, one thread per queue at a time.
 *   consumer_orderly [namesrv-addr]   (no address: an embedded broker) */
#include <pthread.h>

#include "example.h"

#define ORDERS 5
#define STEPS 4

static const char *steps[STEPS] = {"created", "paid", "shipped", "done"};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int next_step[ORDERS], received, out_of_order;

static rmq_consume_status_t on_messages(const rmq_msg_t *const *msgs, size_t count,
                                        rmq_consume_ctx_t *ctx, void *opaque) {
    (void)ctx;
    (void)opaque;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < count; i++) {
        int order = atoi(rmq_msg_keys(msgs[i]) + strlen("order-")) - 1000;
        const char *tag = rmq_msg_tags(msgs[i]);
        if (order < 0 || order >= ORDERS || strcmp(tag, steps[next_step[order] % STEPS]) != 0)
            out_of_order++;
        else
            next_step[order]++;
        printf("order %d: %s\n", 1000 + order, tag);
        received++;
    }
    pthread_mutex_unlock(&mu);
    return RMQ_CONSUME_SUCCESS;
}

int main(int argc, char **argv) {
    const char *namesrv = name_server(argc, argv);
    rmq_producer_t *p = start_producer(namesrv);
    for (int s = 0; s < STEPS; s++)
        for (int order = 1000; order < 1000 + ORDERS; order++) {
            char key[32];
            snprintf(key, sizeof key, "order-%d", order);
            rmq_msg_t *m = rmq_msg_new("ExampleOrderlyTopic");
            rmq_msg_set_tags(m, steps[s]);
            rmq_msg_set_keys(m, key);
            rmq_msg_set_sharding_key(m, key); /* same key, same queue */
            rmq_msg_set_body(m, steps[s], strlen(steps[s]));
            rmq_err_t err = rmq_producer_send_orderly(p, m, NULL, NULL, NULL);
            rmq_msg_destroy(m);
            if (err) {
                fprintf(stderr, "send: %s\n", rmq_err_str(err));
                return 1;
            }
        }
    rmq_producer_destroy(p);

    rmq_conf_t *conf = push_conf(namesrv, "example_orderly");
    rmq_push_consumer_t *c = start_push_consumer(conf, "ExampleOrderlyTopic", on_messages, NULL, 1);
    for (int waited = 0; waited < 30000; waited += 100) {
        pthread_mutex_lock(&mu);
        int n = received;
        pthread_mutex_unlock(&mu);
        if (n >= ORDERS * STEPS) break;
        usleep(100 * 1000);
    }
    rmq_push_consumer_destroy(c); /* unlocks the queues on the broker */
    printf("received %d of %d steps, %d out of order\n", received, ORDERS * STEPS, out_of_order);
    stop_embedded();
    return received == ORDERS * STEPS && out_of_order == 0 ? 0 : 1;
}
