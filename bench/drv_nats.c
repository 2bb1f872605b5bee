/* bench/compare.sh's driver for NATS JetStream (cnats): one file-storage stream per
 * workload. produce: js_PublishAsync with at most --inflight pending acks (the PubAck is the
 * confirm: stored by the stream, written to its file, fsynced later on the server's sync
 * interval); e2e: the same with a durable pull consumer (own connection, Fetch of 500,
 * AckAll on the last message of each batch) at once; sync: js_Publish, one at a time. */
#include "drv_common.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

static drv_opts_t o;
static char url[300];

typedef struct {
    atomic_long sent, errors;
    drv_lat_t lat; /* written by the ack handler only (one thread) */
    double secs;
    atomic_bool done;
} produce_t;

static void check(natsStatus s, const char *what) {
    if (s == NATS_OK) return;
    fprintf(stderr, "drv_nats: %s: %s (%s)\n", what, natsStatus_GetText(s),
            nats_GetLastError(NULL));
    exit(1);
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    produce_t *p = closure;
    if (pa && !pae) {
        uint64_t seq;
        int64_t t;
        drv_body_read(natsMsg_GetData(msg), &seq, &t);
        drv_lat_add(&p->lat, (drv_now_ns() - t) / 1000);
        atomic_fetch_add(&p->sent, 1);
    } else {
        atomic_fetch_add(&p->errors, 1);
    }
    natsMsg_Destroy(msg);
}

static void open_js(natsConnection **nc, jsCtx **js, produce_t *p) {
    check(natsConnection_ConnectTo(nc, url), "connect");
    jsOptions jo;
    jsOptions_Init(&jo);
    if (p) {
        jo.PublishAsync.MaxPending = o.inflight;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = p;
        jo.PublishAsync.StallWait = 30000;
    }
    check(natsConnection_JetStream(js, *nc, &jo), "jetstream context");
}

static void add_stream(jsCtx *js, const char *name, const char *subject) {
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = &subject;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    check(js_AddStream(&si, js, &sc, NULL, &jerr), "add stream");
    jsStreamInfo_Destroy(si);
}

static void produce(const char *subject, produce_t *p) {
    natsConnection *nc;
    jsCtx *js;
    open_js(&nc, &js, p);
    char *body = malloc((size_t)o.size);
    drv_body_init(body, o.size);
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)o.seconds * 1000000000;
    for (long i = 0; i < o.count && drv_now_ns() < stop; i++) {
        drv_body_stamp(body, (uint64_t)i, drv_now_ns());
        natsStatus s = js_PublishAsync(js, subject, body, o.size, NULL);
        if (s != NATS_OK) {
            fprintf(stderr, "drv_nats: publish: %s\n", natsStatus_GetText(s));
            atomic_fetch_add(&p->errors, 1);
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK)
        fprintf(stderr, "drv_nats: some publishes were never acknowledged\n");
    p->secs = (double)(drv_now_ns() - t0) / 1e9;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(body);
}

static int run_produce(void) {
    natsConnection *nc;
    jsCtx *js;
    open_js(&nc, &js, NULL);
    add_stream(js, "P", "bench.p");
    produce_t p = {0};
    produce("bench.p", &p);
    drv_print_produce("async", o.size, atomic_load(&p.sent), p.secs, &p.lat,
                      atomic_load(&p.errors));
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return atomic_load(&p.errors) ? 1 : 0;
}

static int run_sync(void) {
    natsConnection *nc;
    jsCtx *js;
    open_js(&nc, &js, NULL);
    add_stream(js, "S", "bench.s");
    char *body = malloc((size_t)o.size);
    drv_body_init(body, o.size);
    drv_lat_t lat = {0};
    long sent = 0, errors = 0;
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)o.seconds * 1000000000;
    for (long i = 0; i < o.count && drv_now_ns() < stop; i++) {
        int64_t t = drv_now_ns();
        drv_body_stamp(body, (uint64_t)i, t);
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        if (js_Publish(&pa, js, "bench.s", body, o.size, NULL, &jerr) == NATS_OK) {
            sent++;
            drv_lat_add(&lat, (drv_now_ns() - t) / 1000);
        } else {
            errors++;
        }
        jsPubAck_Destroy(pa);
    }
    drv_print_produce("sync", o.size, sent, (double)(drv_now_ns() - t0) / 1e9, &lat, errors);
    free(body);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return errors ? 1 : 0;
}

static produce_t e2e_prod;

static void *producer_thread(void *arg) {
    (void)arg;
    produce("bench.e", &e2e_prod);
    atomic_store(&e2e_prod.done, true);
    return NULL;
}

static int run_e2e(void) {
    natsConnection *nc;
    jsCtx *js;
    open_js(&nc, &js, NULL);
    add_stream(js, "E", "bench.e");
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "E";
    so.Config.AckPolicy = js_AckAll;
    so.Config.MaxAckPending = 20000;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    check(js_PullSubscribe(&sub, js, "bench.e", "bench", NULL, &so, &jerr), "pull subscribe");
    drv_e2e_t e;
    drv_e2e_init(&e, o.count);
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)(o.seconds + 10) * 1000000000;
    pthread_t th;
    pthread_create(&th, NULL, producer_thread, NULL);
    int64_t idle_since = 0;
    while (drv_now_ns() < stop) {
        bool pdone = atomic_load(&e2e_prod.done);
        if (pdone && e.unique >= atomic_load(&e2e_prod.sent)) break;
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, 500, 200, &jerr);
        if (s == NATS_OK && list.Count > 0) {
            for (int i = 0; i < list.Count; i++)
                drv_e2e_got(&e, natsMsg_GetData(list.Msgs[i]), natsMsg_GetDataLength(list.Msgs[i]));
            natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
            natsMsgList_Destroy(&list);
            idle_since = 0;
            continue;
        }
        natsMsgList_Destroy(&list);
        if (s != NATS_OK && s != NATS_TIMEOUT) {
            fprintf(stderr, "drv_nats: fetch: %s\n", natsStatus_GetText(s));
            break;
        }
        if (pdone) {
            if (!idle_since)
                idle_since = drv_now_ns();
            else if (drv_now_ns() - idle_since > 3000000000LL)
                break;
        }
    }
    pthread_join(th, NULL);
    drv_print_e2e(o.size, &e, atomic_load(&e2e_prod.sent), t0);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

int main(int argc, char **argv) {
    if (drv_parse(&o, argc, argv)) return 2;
    snprintf(url, sizeof url, "nats://%s:%d", o.host, o.port);
    int rc;
    if (!strcmp(o.workload, "produce"))
        rc = run_produce();
    else if (!strcmp(o.workload, "sync"))
        rc = run_sync();
    else
        rc = run_e2e();
    nats_Close();
    return rc;
}
