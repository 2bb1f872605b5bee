/* producer_async: send 100 messages without waiting; a callback reports each outcome on a
 * thread of the client's callback pool. Usage: producer_async [namesrv host:port] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "example.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ok, failed;

/* Runs on a callback-pool thread, once per accepted send. */
static void on_sent(rmq_err_t err, const rmq_send_result_t *r, void *opaque) {
    pthread_mutex_lock(&mu);
    if (err) {
        failed++;
        fprintf(stderr, "message %d: %s\n", (int)(intptr_t)opaque, rmq_err_name(err));
    } else {
        ok++;
    }
    pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv) {
    rmq_producer_t *p = start_producer(name_server(argc, argv));
    int accepted = 0;
    for (intptr_t i = 0; i < 100; i++) {
        rmq_msg_t *m = rmq_msg_new("ExampleTopic");
        rmq_msg_set_body(m, "async hello", 11);
        rmq_err_t err = rmq_producer_send_async(p, m, on_sent, (void *)i);
        if (err)
            fprintf(stderr, "send_async: %s\n", rmq_err_name(err));
        else
            accepted++;
        rmq_msg_destroy(m); /* the send keeps its own copy */
    }
    rmq_producer_destroy(p); /* waits until every callback has run */
    printf("accepted %d, stored %d, failed %d\n", accepted, ok, failed);
    stop_embedded();
    return accepted == 100 && ok == 100 ? 0 : 1;
}
