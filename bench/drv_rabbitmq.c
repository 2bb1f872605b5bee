/* bench/compare.sh's driver for RabbitMQ (rabbitmq-c, AMQP 0-9-1): persistent messages
 * (delivery_mode 2) to a durable classic queue through the default exchange, with publisher
 * confirms. produce: a window of unconfirmed publishes; e2e: the same with a consumer (own
 * connection, prefetch 1000, manual acks, one multiple-ack per 100) at once; sync: publish,
 * wait for its confirm, repeat. A persistent message's confirm comes once the queue has
 * written it to disk (or once a consumer acked it, whichever is first). */
#include "drv_common.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/time.h>

static drv_opts_t o;
static char queue[256];

static void die_on(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, "drv_rabbitmq: %s: %s\n", what, amqp_error_string2(r.library_error));
    else
        fprintf(stderr, "drv_rabbitmq: %s: server exception (reply type %d, method 0x%08x)\n", what,
                r.reply_type, r.reply.id);
    exit(1);
}

static amqp_connection_state_t connect_or_die(void) {
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, o.host, o.port) != AMQP_STATUS_OK) {
        fprintf(stderr, "drv_rabbitmq: connect %s:%d failed\n", o.host, o.port);
        exit(1);
    }
    die_on(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(c, 1);
    die_on(amqp_get_rpc_reply(c), "channel.open");
    return c;
}

static void declare(amqp_connection_state_t c) {
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    die_on(amqp_get_rpc_reply(c), "queue.declare");
}

static int publish(amqp_connection_state_t c, const char *body) {
    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2; /* persistent */
    amqp_bytes_t b = {.len = (size_t)o.size, .bytes = (void *)body};
    return amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props, b);
}

typedef struct {
    long sent, errors;
    drv_lat_t lat;
    double secs;
    atomic_bool done;
} produce_t;

/* Handles one frame; returns the number of messages it confirmed (acks and nacks). */
static long on_frame(amqp_frame_t *f, uint64_t *confirmed, const int64_t *t_sent, produce_t *p) {
    if (f->frame_type != AMQP_FRAME_METHOD) return 0;
    uint64_t tag;
    bool multiple, ok;
    if (f->payload.method.id == AMQP_BASIC_ACK_METHOD) {
        amqp_basic_ack_t *a = f->payload.method.decoded;
        tag = a->delivery_tag, multiple = a->multiple, ok = true;
    } else if (f->payload.method.id == AMQP_BASIC_NACK_METHOD) {
        amqp_basic_nack_t *n = f->payload.method.decoded;
        tag = n->delivery_tag, multiple = n->multiple, ok = false;
    } else {
        return 0;
    }
    /* Delivery tags count from 1; message i (from 0) has tag i + 1. */
    uint64_t from = multiple ? *confirmed : tag - 1;
    int64_t now = drv_now_ns();
    long n = 0;
    for (uint64_t i = from; i < tag; i++, n++) {
        if (ok) {
            p->sent++;
            drv_lat_add(&p->lat, (now - t_sent[i % (uint64_t)o.inflight]) / 1000);
        } else {
            p->errors++;
        }
    }
    if (tag > *confirmed) *confirmed = tag;
    return n;
}

static void produce(amqp_connection_state_t c, produce_t *p) {
    amqp_confirm_select(c, 1);
    die_on(amqp_get_rpc_reply(c), "confirm.select");
    char *body = malloc((size_t)o.size);
    drv_body_init(body, o.size);
    int64_t *t_sent = calloc((size_t)o.inflight, sizeof *t_sent);
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)o.seconds * 1000000000;
    long published = 0, done = 0;
    uint64_t confirmed = 0;
    while (done < published || published < o.count) {
        bool more = false;
        while (published < o.count && published - done < o.inflight && drv_now_ns() < stop) {
            int64_t now = drv_now_ns();
            drv_body_stamp(body, (uint64_t)published, now);
            t_sent[published % o.inflight] = now;
            if (publish(c, body) != AMQP_STATUS_OK) {
                fprintf(stderr, "drv_rabbitmq: publish failed\n");
                p->errors += o.count - published;
                goto out;
            }
            published++;
            if ((published & 63) == 0) {
                more = true;
                break; /* look for confirms now and then without blocking */
            }
        }
        if (done == published) break; /* time is up */
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int st = (more && published - done < o.inflight)
                     ? amqp_simple_wait_frame_noblock(c, &f, &zero)
                     : amqp_simple_wait_frame(c, &f);
        if (st == AMQP_STATUS_TIMEOUT) continue;
        if (st != AMQP_STATUS_OK) {
            fprintf(stderr, "drv_rabbitmq: wait for confirm: %s\n", amqp_error_string2(st));
            p->errors += published - done;
            break;
        }
        done += on_frame(&f, &confirmed, t_sent, p);
        amqp_maybe_release_buffers(c);
    }
out:
    p->secs = (double)(drv_now_ns() - t0) / 1e9;
    free(t_sent);
    free(body);
}

static void finish(amqp_connection_state_t c) {
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

static int run_produce(void) {
    snprintf(queue, sizeof queue, "%s.produce", o.name);
    amqp_connection_state_t c = connect_or_die();
    declare(c);
    produce_t p = {0};
    produce(c, &p);
    drv_print_produce("async", o.size, p.sent, p.secs, &p.lat, p.errors);
    finish(c);
    return p.errors ? 1 : 0;
}

static int run_sync(void) {
    snprintf(queue, sizeof queue, "%s.sync", o.name);
    amqp_connection_state_t c = connect_or_die();
    declare(c);
    amqp_confirm_select(c, 1);
    die_on(amqp_get_rpc_reply(c), "confirm.select");
    char *body = malloc((size_t)o.size);
    drv_body_init(body, o.size);
    produce_t p = {0};
    int64_t t_sent[1];
    int saved = o.inflight;
    o.inflight = 1;
    uint64_t confirmed = 0;
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)o.seconds * 1000000000;
    for (long i = 0; i < o.count && drv_now_ns() < stop; i++) {
        t_sent[0] = drv_now_ns();
        drv_body_stamp(body, (uint64_t)i, t_sent[0]);
        if (publish(c, body) != AMQP_STATUS_OK) {
            p.errors++;
            break;
        }
        long n = 0;
        while (n == 0) {
            amqp_frame_t f;
            if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) {
                p.errors++;
                goto out;
            }
            n = on_frame(&f, &confirmed, t_sent, &p);
        }
        amqp_maybe_release_buffers(c);
    }
out:
    o.inflight = saved;
    drv_print_produce("sync", o.size, p.sent, (double)(drv_now_ns() - t0) / 1e9, &p.lat, p.errors);
    free(body);
    finish(c);
    return p.errors ? 1 : 0;
}

static produce_t e2e_prod;

static void *producer_thread(void *arg) {
    (void)arg;
    amqp_connection_state_t c = connect_or_die();
    produce(c, &e2e_prod);
    finish(c);
    atomic_store(&e2e_prod.done, true);
    return NULL;
}

static int run_e2e(void) {
    snprintf(queue, sizeof queue, "%s.e2e", o.name);
    amqp_connection_state_t c = connect_or_die();
    declare(c);
    amqp_basic_qos(c, 1, 0, 1000, 0);
    die_on(amqp_get_rpc_reply(c), "basic.qos");
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    die_on(amqp_get_rpc_reply(c), "basic.consume");
    drv_e2e_t e;
    drv_e2e_init(&e, o.count);
    int64_t t0 = drv_now_ns(), stop = t0 + (int64_t)(o.seconds + 10) * 1000000000;
    pthread_t th;
    pthread_create(&th, NULL, producer_thread, NULL);
    int64_t idle_since = 0;
    uint64_t last_tag = 0, acked_tag = 0;
    while (drv_now_ns() < stop) {
        bool pdone = atomic_load(&e2e_prod.done);
        if (pdone && e.unique >= e2e_prod.sent) break;
        amqp_envelope_t env;
        struct timeval tv = {0, 200000};
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            drv_e2e_got(&e, env.message.body.bytes, (int)env.message.body.len);
            last_tag = env.delivery_tag;
            amqp_destroy_envelope(&env);
            if (last_tag - acked_tag >= 100) {
                amqp_basic_ack(c, 1, last_tag, 1);
                acked_tag = last_tag;
            }
            idle_since = 0;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (last_tag > acked_tag) {
                amqp_basic_ack(c, 1, last_tag, 1);
                acked_tag = last_tag;
            }
            if (pdone) {
                if (!idle_since)
                    idle_since = drv_now_ns();
                else if (drv_now_ns() - idle_since > 3000000000LL)
                    break;
            }
            continue;
        }
        fprintf(stderr, "drv_rabbitmq: consume: reply type %d, error %s\n", r.reply_type,
                r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                    ? amqp_error_string2(r.library_error)
                    : "server");
        break;
    }
    if (last_tag > acked_tag) amqp_basic_ack(c, 1, last_tag, 1);
    pthread_join(th, NULL);
    drv_print_e2e(o.size, &e, e2e_prod.sent, t0);
    finish(c);
    return 0;
}

int main(int argc, char **argv) {
    if (drv_parse(&o, argc, argv)) return 2;
    if (!strcmp(o.workload, "produce")) return run_produce();
    if (!strcmp(o.workload, "sync")) return run_sync();
    return run_e2e();
}
