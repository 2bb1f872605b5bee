/* producer_batch: 32 small messages of one topic in one frame, stored together.
 * Usage: producer_batch [namesrv host:port] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

int main(int argc, char **argv) {
    rmq_producer_t *p = start_producer(name_server(argc, argv));
    enum { N = 32 };
    rmq_msg_t *batch[N];
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "item %d", i);
        batch[i] = rmq_msg_new("ExampleBatchTopic");
        rmq_msg_set_body(batch[i], body, strlen(body));
    }
    rmq_send_result_t r;
    rmq_err_t err = rmq_producer_send_batch(p, batch, N, &r);
    if (err) {
        fprintf(stderr, "send_batch: %s (%s)\n", rmq_err_name(err), rmq_producer_last_remark());
    } else {
        printf("batch stored in %s queue %d from offset %lld\n", r.broker_name, r.queue_id,
               (long long)r.queue_offset);
        for (int i = 0; i < N; i++)
            printf("  %s at offset %lld\n", rmq_msg_id(batch[i]),
                   (long long)rmq_msg_queue_offset(batch[i]));
    }
    for (int i = 0; i < N; i++)
        rmq_msg_destroy(batch[i]);
    rmq_producer_destroy(p);
    stop_embedded();
    return err ? 1 : 0;
}
