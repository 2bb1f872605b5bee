/* producer_oneway: fire-and-forget sends (no answer, no retry), e.g. for logs.
 * Usage: producer_oneway [namesrv host:port] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

int main(int argc, char **argv) {
    rmq_producer_t *p = start_producer(name_server(argc, argv));
    int failures = 0;
    for (int i = 0; i < 100; i++) {
        rmq_msg_t *m = rmq_msg_new("ExampleLogTopic");
        rmq_msg_set_body(m, "log line", 8);
        if (rmq_producer_send_oneway(p, m) != RMQ_OK) failures++;
        rmq_msg_destroy(m);
    }
    /* A sync send afterwards: its answer shows the oneway frames before it arrived. */
    rmq_msg_t *m = rmq_msg_new("ExampleLogTopic");
    rmq_msg_set_body(m, "last", 4);
    rmq_send_result_t r;
    rmq_err_t err = rmq_producer_send(p, m, &r);
    rmq_msg_destroy(m);
    printf("oneway failures %d; final sync send: %s\n", failures, rmq_err_name(err));
    rmq_producer_destroy(p);
    stop_embedded();
    return failures || err ? 1 : 0;
}
