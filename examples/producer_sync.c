/* producer_sync: send ten messages and wait for each answer.
 * Usage: producer_sync [namesrv host:port]  (none: an embedded broker) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

int main(int argc, char **argv) {
    rmq_producer_t *p = start_producer(name_server(argc, argv));
    int failures = 0;
    for (int i = 0; i < 10; i++) {
        char body[64];
        snprintf(body, sizeof body, "hello %d", i);
        rmq_msg_t *m = rmq_msg_new("ExampleTopic");
        rmq_msg_set_tags(m, "TagA");
        rmq_msg_set_keys(m, "order-1001 customer-7");
        rmq_msg_set_body(m, body, strlen(body));
        rmq_send_result_t r;
        rmq_err_t err = rmq_producer_send(p, m, &r);
        if (err) {
            fprintf(stderr, "send: %s (%s)\n", rmq_err_name(err), rmq_producer_last_remark());
            failures++;
        } else {
            printf("sent %s to %s queue %d offset %lld\n", r.msg_id, r.broker_name, r.queue_id,
                   (long long)r.queue_offset);
        }
        rmq_msg_destroy(m);
    }
    rmq_producer_destroy(p);
    stop_embedded();
    return failures ? 1 : 0;
}
