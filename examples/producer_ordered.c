/* producer_ordered: messages of one order go to one queue, so consumers see them in order.
 * Usage: producer_ordered [namesrv host:port] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

/* A user selector: order number modulo the queue count. The built-in one (selector NULL)
 * hashes the message's sharding key as Java's SelectMessageQueueByHash does. */
static int by_order_number(int queue_count, const rmq_msg_t *msg, void *arg) {
    return (int)(*(const long *)arg % queue_count);
}

int main(int argc, char **argv) {
    rmq_producer_t *p = start_producer(name_server(argc, argv));
    static const char *steps[] = {"created", "paid", "shipped", "done"};
    int failures = 0;
    for (long order = 1000; order < 1005; order++) {
        char key[32];
        snprintf(key, sizeof key, "order-%ld", order);
        for (int s = 0; s < 4; s++) {
            rmq_msg_t *m = rmq_msg_new("ExampleOrderTopic");
            rmq_msg_set_tags(m, steps[s]);
            rmq_msg_set_keys(m, key);
            rmq_msg_set_sharding_key(m, key);
            rmq_msg_set_body(m, steps[s], strlen(steps[s]));
            rmq_send_result_t r;
            /* Even orders through the user selector, odd ones by sharding key. */
            rmq_err_t err = order % 2 == 0
                                ? rmq_producer_send_orderly(p, m, by_order_number, &order, &r)
                                : rmq_producer_send_orderly(p, m, NULL, NULL, &r);
            if (err) {
                fprintf(stderr, "%s %s: %s\n", key, steps[s], rmq_err_name(err));
                failures++;
            } else {
                printf("%s %-8s -> queue %d offset %lld\n", key, steps[s], r.queue_id,
                       (long long)r.queue_offset);
            }
            rmq_msg_destroy(m);
        }
    }
    rmq_producer_destroy(p);
    stop_embedded();
    return failures ? 1 : 0;
}
