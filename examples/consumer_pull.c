/* consumer_pull: sends 100 messages with tags "even" / "odd", then reads the "odd" ones back
 * with a pull consumer that subscribes with a tag filter, polls batches and commits.
 *   consumer_pull [namesrv-addr]   (no address: an embedded broker) */
#include "example.h"

#define COUNT 100

int main(int argc, char **argv) {
    const char *namesrv = name_server(argc, argv);
    rmq_producer_t *p = start_producer(namesrv);
    for (int i = 0; i < COUNT; i++) {
        char body[32];
        snprintf(body, sizeof body, "message %d", i);
        rmq_msg_t *m = rmq_msg_new("ExampleTopic");
        rmq_msg_set_tags(m, i % 2 ? "odd" : "even");
        rmq_msg_set_body(m, body, strlen(body));
        rmq_err_t err = rmq_producer_send(p, m, NULL);
        rmq_msg_destroy(m);
        if (err) {
            fprintf(stderr, "send: %s\n", rmq_err_str(err));
            return 1;
        }
    }
    rmq_producer_destroy(p);

    /* A new group has no stored offsets: start from the first message of each queue. */
    rmq_pull_consumer_t *c =
        new_pull_consumer(namesrv, "example_pull", "CONSUME_FROM_FIRST_OFFSET");
    char err[256];
    if (rmq_pull_consumer_subscribe(c, "ExampleTopic", "odd") ||
        rmq_pull_consumer_start(c, err, sizeof err)) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    int got = 0, idle = 0;
    while (got < COUNT / 2 && idle < 20) {
        rmq_msg_t *msgs[32];
        int n = rmq_pull_consumer_poll(c, 1000, msgs, 32);
        if (n < 0) {
            fprintf(stderr, "poll: %s\n", rmq_err_str(n));
            return 1;
        }
        idle = n ? 0 : idle + 1;
        for (int i = 0; i < n; i++) {
            size_t len;
            const char *body = rmq_msg_body(msgs[i], &len);
            if (got < 3)
                printf("queue %d offset %lld tags %s: %.*s\n", (int)rmq_msg_queue_id(msgs[i]),
                       (long long)rmq_msg_queue_offset(msgs[i]), rmq_msg_tags(msgs[i]), (int)len,
                       body);
            rmq_msg_destroy(msgs[i]);
            got++;
        }
    }
    rmq_err_t e = rmq_pull_consumer_commit(c); /* autoCommit also does this every 5 s */
    rmq_pull_consumer_destroy(c);
    printf("received %d of %d messages tagged odd; commit: %s\n", got, COUNT / 2, rmq_err_str(e));
    stop_embedded();
    return got == COUNT / 2 && e == RMQ_OK ? 0 : 1;
}
