/* producer_async: send 100 messages without waiting; a callback reports each outcome on a
 * thread of the client's callback pool. Usage: producer_async [namesrv host:port] */
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
#include <pthread.h>

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
