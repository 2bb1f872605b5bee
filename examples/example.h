/* example.h: what every example program needs besides the feature it shows — a name
 * server to talk to (the one named on the command line, or else a broker embedded in this
 * process), a started producer, a pull consumer and push consumers. Examples are single programs; this header keeps the
 * set-up in one place so each example file is only its feature. */
#ifndef RMQ_EXAMPLE_H
#define RMQ_EXAMPLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rmq/broker.h>
#include <rmq/consumer.h>
#include <rmq/producer.h>
#include <rmq/rmq.h>

/* With no name-server address on the command line, run a broker inside this process (a
 * throw-away store under /tmp) so the example works on its own. */
static rmq_broker_t *embedded;
static char embedded_dir[64];

/* The same, with extra broker settings for the embedded broker: settings is NULL or a
 * NULL-terminated list of key, value, key, value, ... */
static const char *name_server_with(int argc, char **argv, const char *const *settings) {
    if (argc > 1) return argv[1];
    char err[256];
    snprintf(embedded_dir, sizeof embedded_dir, "/tmp/rmq-example-XXXXXX");
    rmq_conf_t *conf = rmq_conf_new();
    if (!mkdtemp(embedded_dir) || rmq_conf_set(conf, "listenPort", "0", err, sizeof err) ||
        rmq_conf_set(conf, "storePathRootDir", embedded_dir, err, sizeof err) ||
        /* A burst of sends on a slow machine (or a sanitizer build) can wait in the send
         * queue past the 200 ms default and be refused with SYSTEM_BUSY, RocketMQ's flow
         * control. This broker serves only the example, so it may keep them waiting. */
        rmq_conf_set(conf, "waitTimeMillsInSendQueue", "2000", err, sizeof err)) {
        fprintf(stderr, "embedded broker: %s\n", err);
        exit(1);
    }
    for (int i = 0; settings && settings[i] && settings[i + 1]; i += 2)
        if (rmq_conf_set(conf, settings[i], settings[i + 1], err, sizeof err)) {
            fprintf(stderr, "embedded broker: %s\n", err);
            exit(1);
        }
    if (!(embedded = rmq_broker_new(conf, err, sizeof err)) ||
        rmq_broker_start(embedded, err, sizeof err)) {
        fprintf(stderr, "embedded broker: %s\n", err);
        exit(1);
    }
    return rmq_broker_addr(embedded);
}

static inline const char *name_server(int argc, char **argv) {
    return name_server_with(argc, argv, NULL);
}

static void stop_embedded(void) {
    if (!embedded) return;
    rmq_broker_destroy(embedded);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", embedded_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", embedded_dir);
}

static inline rmq_producer_t *start_producer(const char *namesrv) {
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

/* A pull consumer of group with consumeFromWhere from (not started: subscribe or assign
 * first). inline: examples without a consumer do not use it. */
static inline rmq_pull_consumer_t *new_pull_consumer(const char *namesrv, const char *group,
                                                     const char *from) {
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "namesrvAddr", namesrv, err, sizeof err) ||
        rmq_conf_set(conf, "consumerGroup", group, err, sizeof err) ||
        rmq_conf_set(conf, "consumeFromWhere", from, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    rmq_pull_consumer_t *c = rmq_pull_consumer_new(conf, err, sizeof err);
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        exit(1);
    }
    return c;
}

/* The configuration of a push consumer of group that starts at the first message when the
 * group has no stored offset. inline: examples without a push consumer do not use it. */
static inline rmq_conf_t *push_conf(const char *namesrv, const char *group) {
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "namesrvAddr", namesrv, err, sizeof err) ||
        rmq_conf_set(conf, "consumerGroup", group, err, sizeof err) ||
        rmq_conf_set(conf, "consumeFromWhere", "CONSUME_FROM_FIRST_OFFSET", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return conf;
}

/* Creates, subscribes (topic, every tag) and starts a push consumer from conf with a
 * concurrent or an orderly listener. */
static inline rmq_push_consumer_t *start_push_consumer(rmq_conf_t *conf, const char *topic,
                                                       rmq_consume_cb_t *cb, void *opaque,
                                                       int orderly) {
    char err[256] = "";
    rmq_push_consumer_t *c = rmq_push_consumer_new(conf, err, sizeof err);
    if (!c || rmq_push_consumer_subscribe(c, topic, "*") ||
        (orderly ? rmq_push_consumer_set_orderly_listener(c, cb, opaque)
                 : rmq_push_consumer_set_listener(c, cb, opaque)) ||
        rmq_push_consumer_start(c, err, sizeof err)) {
        fprintf(stderr, "push consumer: %s\n", err);
        exit(1);
    }
    return c;
}

/* Sends count messages "message <i>" to topic; exits on a failed send. */
static inline void send_numbered(rmq_producer_t *p, const char *topic, int count) {
    for (int i = 0; i < count; i++) {
        char body[32];
        snprintf(body, sizeof body, "message %d", i);
        rmq_msg_t *m = rmq_msg_new(topic);
        rmq_msg_set_body(m, body, strlen(body));
        rmq_err_t err = rmq_producer_send(p, m, NULL);
        rmq_msg_destroy(m);
        if (err) {
            fprintf(stderr, "send: %s\n", rmq_err_str(err));
            exit(1);
        }
    }
}

#endif
