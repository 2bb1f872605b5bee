/* producer_ordered: messages of one order go to one queue, so consumers see them in order.
 * Usage: producer_ordered [namesrv host:port] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rmq/broker.h>
#include <rmq/producer.h>
#include <rmq/rmq.h>

/* With no name-server address on the command line, run a broker inside this process (a
 * throw-away store under /tmp) so the example works on its own. */
static rmq_broker_t *embedded;
static char embedded_dir[64];

static const char *name_server(int argc, char **argv) {
    if (argc > 1) return argv[1];
    char err[256];
    snprintf(embedded_dir, sizeof embedded_dir, "/tmp/rmq-example-XXXXXX");
    rmq_conf_t *conf = rmq_conf_new();
    if (!mkdtemp(embedded_dir) || rmq_conf_set(conf, "listenPort", "0", err, sizeof err) ||
        rmq_conf_set(conf, "storePathRootDir", embedded_dir, err, sizeof err) ||
        !(embedded = rmq_broker_new(conf, err, sizeof err)) ||
        rmq_broker_start(embedded, err, sizeof err)) {
        fprintf(stderr, "embedded broker: %s\n", err);
        exit(1);
    }
    return rmq_broker_addr(embedded);
}

static void stop_embedded(void) {
    if (!embedded) return;
    rmq_broker_destroy(embedded);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", embedded_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", embedded_dir);
}

static rmq_producer_t *start_producer(const char *namesrv) {
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "namesrvAddr", namesrv, err, sizeof err) ||
        rmq_conf_set(conf, "producerGroup", "example_producers", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    rmq_producer_t *p = rmq_producer_new(conf, err, sizeof err);
    if (!p || rmq_producer_start(p, err, sizeof err)) {
        fprintf(stderr, "producer: %s\n", err);
        exit(1);
    }
    return p;
}

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
