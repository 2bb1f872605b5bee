/* bench/compare.sh's driver for Redis Streams (hiredis): XADD pipelined with a window of
 * unanswered commands (produce), the same with a consumer group reading and acking at once
 * (e2e: XREADGROUP + XACK), and XADD one at a time (sync). A reply to XADD is the confirm:
 * with `appendfsync everysec` it means "in memory and in the AOF buffer", not "on disk". */
#include "drv_common.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

static drv_opts_t o;
static char key[256];

static redisContext *connect_or_die(void) {
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(o.host, o.port, tv);
    if (!c || c->err) {
        fprintf(stderr, "drv_redis: connect %s:%d: %s\n", o.host, o.port,
                c ? c->errstr : "out of memory");
        exit(1);
    }
    return c;
}

static void append_xadd(redisContext *c, const char *body) {
    const char *argv[5] = {"XADD", key, "*", "d", body};
    size_t lens[5] = {4, strlen(key), 1, 1, (size_t)o.size};
    redisAppendCommandArgv(c, 5, argv, lens);
}

/* Pipelined XADD of up to o.count messages with at most o.inflight unanswered. */
typedef struct {
    long sent, errors;
    drv_lat_t lat;
    double secs;
    atomic_bool done;
} produce_t;

static void produce(redisContext *c, produce_t *p) {
    char *body = malloc((size_t)o.size);
    drv_body_init(body, o.size);
    int64_t *t_sent = calloc((size_t)o.inflight, sizeof *t_sent);
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)o.seconds * 1000000000;
    long appended = 0, answered = 0;
    while (answered < appended || appended < o.count) {
        while (appended < o.count && appended - answered < o.inflight && drv_now_ns() < stop) {
            int64_t now = drv_now_ns();
            drv_body_stamp(body, (uint64_t)appended, now);
            t_sent[appended % o.inflight] = now;
            append_xadd(c, body);
            appended++;
        }
        if (answered == appended) break; /* time is up */
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "drv_redis: %s\n", c->errstr);
            p->errors += appended - answered;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            p->errors++;
        } else {
            p->sent++;
            drv_lat_add(&p->lat, (drv_now_ns() - t_sent[answered % o.inflight]) / 1000);
        }
        answered++;
        freeReplyObject(r);
    }
    p->secs = (double)(drv_now_ns() - t0) / 1e9;
    free(t_sent);
    free(body);
}

static int run_produce(void) {
    redisContext *c = connect_or_die();
    snprintf(key, sizeof key, "%s:produce", o.name);
    produce_t p = {0};
    produce(c, &p);
    drv_print_produce("async", o.size, p.sent, p.secs, &p.lat, p.errors);
    redisFree(c);
    return p.errors ? 1 : 0;
}

static int run_sync(void) {
    redisContext *c = connect_or_die();
    snprintf(key, sizeof key, "%s:sync", o.name);
    char *body = malloc((size_t)o.size);
    drv_body_init(body, o.size);
    drv_lat_t lat = {0};
    long sent = 0, errors = 0;
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)o.seconds * 1000000000;
    for (long i = 0; i < o.count && drv_now_ns() < stop; i++) {
        int64_t t = drv_now_ns();
        drv_body_stamp(body, (uint64_t)i, t);
        const char *argv[5] = {"XADD", key, "*", "d", body};
        size_t lens[5] = {4, strlen(key), 1, 1, (size_t)o.size};
        redisReply *r = redisCommandArgv(c, 5, argv, lens);
        if (!r) {
            fprintf(stderr, "drv_redis: %s\n", c->errstr);
            errors++;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR)
            errors++;
        else {
            sent++;
            drv_lat_add(&lat, (drv_now_ns() - t) / 1000);
        }
        freeReplyObject(r);
    }
    drv_print_produce("sync", o.size, sent, (double)(drv_now_ns() - t0) / 1e9, &lat, errors);
    free(body);
    redisFree(c);
    return errors ? 1 : 0;
}

/* e2e: the consumer group exists before the first XADD; the consumer reads with
 * XREADGROUP ... > and acks each batch with one XACK. */
static produce_t e2e_prod;

static void *producer_thread(void *arg) {
    (void)arg;
    redisContext *c = connect_or_die();
    produce(c, &e2e_prod);
    redisFree(c);
    atomic_store(&e2e_prod.done, true);
    return NULL;
}

static int run_e2e(void) {
    snprintf(key, sizeof key, "%s:e2e", o.name);
    redisContext *c = connect_or_die();
    redisReply *r = redisCommand(c, "XGROUP CREATE %s g $ MKSTREAM", key);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "drv_redis: XGROUP CREATE: %s\n", r ? r->str : c->errstr);
        return 1;
    }
    freeReplyObject(r);
    drv_e2e_t e;
    drv_e2e_init(&e, o.count);
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)(o.seconds + 10) * 1000000000;
    pthread_t th;
    pthread_create(&th, NULL, producer_thread, NULL);
    int64_t idle_since = 0;
    const char **ack = malloc((size_t)(3 + 1000) * sizeof *ack);
    while (drv_now_ns() < stop) {
        bool pdone = atomic_load(&e2e_prod.done);
        if (pdone && e.unique >= e2e_prod.sent) break;
        r = redisCommand(c, "XREADGROUP GROUP g c COUNT 1000 BLOCK 200 STREAMS %s >", key);
        if (!r) {
            fprintf(stderr, "drv_redis: XREADGROUP: %s\n", c->errstr);
            break;
        }
        long got = 0;
        int nack = 3;
        ack[0] = "XACK", ack[1] = key, ack[2] = "g";
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *ent = entries->element[i];
                redisReply *fields = ent->element[1];
                if (fields->elements >= 2)
                    drv_e2e_got(&e, fields->element[1]->str, (int)fields->element[1]->len);
                ack[nack++] = ent->element[0]->str;
                got++;
            }
        }
        if (nack > 3) {
            redisReply *a = redisCommandArgv(c, nack, ack, NULL);
            if (a) freeReplyObject(a);
        }
        freeReplyObject(r);
        if (got == 0 && pdone) {
            if (!idle_since)
                idle_since = drv_now_ns();
            else if (drv_now_ns() - idle_since > 3000000000LL)
                break; /* 3 s with nothing */
        } else {
            idle_since = 0;
        }
    }
    pthread_join(th, NULL);
    drv_print_e2e(o.size, &e, e2e_prod.sent, t0);
    free(ack);
    redisFree(c);
    return 0;
}

int main(int argc, char **argv) {
    if (drv_parse(&o, argc, argv)) return 2;
    if (!strcmp(o.workload, "produce")) return run_produce();
    if (!strcmp(o.workload, "sync")) return run_sync();
    return run_e2e();
}
