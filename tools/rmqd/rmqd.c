/* rmqd: the librmq broker daemon (tools.md). `rmqd -c broker.conf` runs a broker with
 * RocketMQ's broker.conf keys; `rmqd` alone runs one with defaults on port 10911 that is
 * also its own name server; `rmqd --namesrv [-p PORT]` runs a name server alone. Logs go to
 * stderr; SIGTERM or SIGINT shuts down cleanly (store flushed, offsets persisted), exit 0. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rmq/rmq.h>

#include "broker/namesrv.h"

static void usage(FILE *out) {
    fprintf(out, "usage: rmqd [-c broker.conf]          broker (and its own name server)\n"
                 "       rmqd --namesrv [-p PORT]       name server alone (default 9876)\n");
}

/* Blocks the stop signals in every thread (the library's threads inherit the mask), so
 * only sigwait() in main sees them. */
static void block_stop_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

static int wait_stop_signal(const sigset_t *set) {
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    return sig;
}

static int run_broker(const char *conf_path, const sigset_t *stop) {
    char err[512];
    rmq_conf_t *conf = rmq_conf_new();
    if (conf_path && rmq_conf_load_file(conf, conf_path, err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "rmqd: %s\n", err);
        rmq_conf_destroy(conf);
        return 1;
    }
    rmq_broker_t *b = rmq_broker_new(conf, err, sizeof err);
    if (!b) {
        fprintf(stderr, "rmqd: %s\n", err);
        rmq_conf_destroy(conf);
        return 1;
    }
    if (rmq_broker_start(b, err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "rmqd: %s\n", err);
        rmq_broker_destroy(b);
        return 1;
    }
    printf("rmqd: broker listening on %s (also its name server)\n", rmq_broker_addr(b));
    fflush(stdout);
    int sig = wait_stop_signal(stop);
    fprintf(stderr, "rmqd: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rmq_broker_destroy(b);
    return 0;
}

static int run_namesrv(int port, const sigset_t *stop) {
    char err[512];
    rmq_conf_t *conf = rmq_conf_new();
    nsrv_server_t *ns = nsrv_server_new(conf, port, err, sizeof err);
    if (!ns) {
        fprintf(stderr, "rmqd: %s\n", err);
        rmq_conf_destroy(conf);
        return 1;
    }
    printf("rmqd: name server listening on port %d\n", nsrv_server_port(ns)); /* -p 0 */
    fflush(stdout);
    int sig = wait_stop_signal(stop);
    fprintf(stderr, "rmqd: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    nsrv_server_destroy(ns);
    rmq_conf_destroy(conf);
    return 0;
}

int main(int argc, char **argv) {
    const char *conf_path = NULL;
    bool namesrv = false;
    int port = 9876;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            conf_path = argv[++i];
        else if (strcmp(argv[i], "--namesrv") == 0)
            namesrv = true;
        else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "rmqd: bad port %d\n", port);
        return 2;
    }
    sigset_t stop;
    block_stop_signals(&stop);
    return namesrv ? run_namesrv(port, &stop) : run_broker(conf_path, &stop);
}
