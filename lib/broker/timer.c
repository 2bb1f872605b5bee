/* lib/broker/timer.c: timer messages — what a send asks for (broker_timer_deliver_ms, used
 * by send.c) and the thread that moves parked messages through the on-disk wheel
 * (timerwheel.c) to their real topic when due. See timer.h for the design and files.
 *
 * One thread does both halves, so nothing here needs a lock but the wake-up flags:
 *   enqueue  reads rmq_sys_wheel_timer queue 0 from the checkpoint's offset and adds a
 *            timer-log entry per message to the slot of its second (a message already due
 *            goes to the slot being delivered; one beyond the wheel's span to its last slot,
 *            and is moved on when that slot comes);
 *   dequeue  loads the slot being delivered (its pending entries, sorted by deliver time)
 *            and re-stores each one when its millisecond comes, then moves to the next slot.
 * The thread sleeps until the next deliver time, the next slot, or a new parked message
 * (the store's dispatch wakes it). */
#include "broker/timer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define RETRY_MS 1000      /* after a failed re-store */
#define ENQUEUE_BATCH 32   /* records per read of the timer queue */
#define DEQUEUE_BUDGET 512 /* deliveries (or slot moves) per pass before enqueuing again */

struct broker_timer {
    broker_t *b;
    timer_wheel_t *w;
    timer_check_t chk;
    int64_t precision, span_ms;
    bool dirty; /* chk or the files changed since the last checkpoint */
    int64_t flush_interval, next_flush;

    /* the slot being delivered: its pending entries, sorted from next on */
    timer_entry_t *cur;
    size_t ncur, cap, next;
    int64_t cur_ms;
    bool cur_loaded, cur_sorted;
    /* delivered in this dequeue pass, flagged done together at its end */
    int64_t *done;
    size_t ndone, done_cap;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool running, stop, kick;
};

/* ---------------------------------------------------------------- what a send asks for */

/* The keys that make a send a timer message, with what their numbers count. */
#define KEY(name, unit_ms)                                                                         \
    { name, sizeof name - 1, unit_ms }
static const struct {
    const char *name;
    size_t len;
    int64_t unit_ms; /* 0: absolute ms */
} keys[] = {KEY(PROP_TIMER_DELAY_SEC, 1000), KEY(PROP_TIMER_DELAY_MS, 1),
            KEY(PROP_TIMER_DELIVER_MS, 0), KEY(PROP_START_DELIVER_TIME, 0)};

/* Called for every property of every plain send: lengths compared first, no strlen. */
bool broker_timer_key(const char *name, size_t len) {
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (keys[k].len == len && memcmp(keys[k].name, name, len) == 0) return true;
    return false;
}

int64_t broker_timer_deliver_ms(broker_t *b, const char *props, size_t len, char *remark,
                                size_t remark_size) {
    int64_t now = cm_now_ms();
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v;
        size_t vlen;
        if (!proto_props_find(props, len, keys[k].name, &v, &vlen)) continue;
        /* looked up only here: the configuration is a list searched by name, and most sends
         * carry no timer key */
        bool enabled = cm_conf_bool(b->conf, "timerWheelEnable", true);
        bool ali = keys[k].unit_ms == 0 && strcmp(keys[k].name, PROP_START_DELIVER_TIME) == 0;
        if (!enabled) {
            if (ali) return 0; /* a 4.x broker ignores ali-ons' key: delivered at once */
            snprintf(remark, remark_size,
                     "accurate timer message is not enabled, "
                     "timerWheelEnable is false");
            return -1;
        }
        int64_t n;
        if (!proto_parse_long(v, vlen, &n)) {
            snprintf(remark, remark_size, "timer message illegal, %s is not a number",
                     keys[k].name);
            return -1;
        }
        int64_t deliver = keys[k].unit_ms ? now + n * keys[k].unit_ms : n;
        if (deliver <= now) return 0; /* due already: stored as a normal message */
        int64_t max_ms = cm_conf_int(b->conf, "timerMaxDelaySec", true) * 1000;
        if (deliver - now > max_ms) {
            snprintf(remark, remark_size,
                     "timer message illegal, the delay time should not be bigger than the max "
                     "delay %lldms (timerMaxDelaySec); %s asks for %lldms",
                     (long long)max_ms, keys[k].name, (long long)(deliver - now));
            return -1;
        }
        return deliver;
    }
    return 0;
}

/* ---------------------------------------------------------------- slots */

/* The slot an entry due at deliver_ms goes to: its second, but not before the slot being
 * delivered nor past the wheel's last slot (then it is moved on from there). */
static int64_t slot_for(const broker_timer_t *t, int64_t deliver_ms) {
    int64_t slot = deliver_ms / t->precision * t->precision;
    int64_t last = t->chk.read_ms + t->span_ms - t->precision;
    if (slot < t->chk.read_ms) slot = t->chk.read_ms;
    return slot > last ? last : slot;
}

static bool add_entry(broker_timer_t *t, int64_t deliver_ms, int64_t phys, int32_t size) {
    int64_t slot = slot_for(t, deliver_ms), pos;
    if (!timer_wheel_add(t->w, slot, deliver_ms, phys, size, &pos)) return false;
    t->dirty = true;
    if (t->cur_loaded && slot == t->cur_ms) {
        if (t->ncur == t->cap)
            t->cur = cm_realloc(t->cur, (t->cap = t->cap ? t->cap * 2 : 64) * sizeof *t->cur);
        t->cur[t->ncur++] = (timer_entry_t){
            .pos = pos, .prev = -1, .deliver_ms = deliver_ms, .phys = phys, .size = size};
        t->cur_sorted = false;
    }
    return true;
}

static int cmp_entry(const void *a, const void *b) {
    const timer_entry_t *x = a, *y = b;
    if (x->deliver_ms != y->deliver_ms)
        return (x->deliver_ms > y->deliver_ms) - (x->deliver_ms < y->deliver_ms);
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static void load_slot(broker_timer_t *t) {
    t->ncur = t->next = 0;
    timer_wheel_slot_entries(t->w, t->chk.read_ms, &t->cur, &t->ncur, &t->cap);
    t->cur_ms = t->chk.read_ms;
    t->cur_loaded = true;
    t->cur_sorted = false;
}

/* ---------------------------------------------------------------- delivery */

/* Re-stores the parked message of e on its real topic. False when the store refused it
 * for now (retry later); a message that cannot be delivered ever is logged and dropped. */
static bool deliver(broker_timer_t *t, const timer_entry_t *e) {
    broker_t *b = t->b;
    cm_buf_t raw = CM_BUF_INIT, out = CM_BUF_INIT;
    proto_record_t rec;
    bool ok = true;
    if (store_read_record(b->store, e->phys, &raw) != RMQ_OK ||
        proto_record_decode(raw.data, raw.len, false, &rec) != RMQ_OK ||
        rec.total_size != e->size) {
        cm_warn(&b->log, "timer: parked message at %lld is gone (commit log deleted?), dropped",
                (long long)e->phys);
    } else if (!broker_sched_build_delivery(b, &rec, &out)) {
        cm_warn(&b->log, "timer: message at %lld has no REAL_TOPIC/REAL_QID, dropped",
                (long long)e->phys);
    } else {
        store_put_result_t put = {0};
        rmq_err_t rc = store_append(b->store, out.data, out.len, &b->store_host, false, &put);
        if (rc == RMQ_ERR_MSG_TOO_LARGE || rc == RMQ_ERR_MALFORMED) {
            cm_warn(&b->log, "timer: message at %lld cannot be re-stored (%s), dropped",
                    (long long)e->phys, rmq_err_name(rc));
        } else if (rc != RMQ_OK && rc != RMQ_ERR_FLUSH_DISK_TIMEOUT) {
            cm_warn(&b->log, "timer: re-store of %lld failed (%s), retrying", (long long)e->phys,
                    rmq_err_name(rc));
            ok = false;
        }
    }
    cm_buf_free(&raw);
    cm_buf_free(&out);
    if (ok) {
        if (t->ndone == t->done_cap)
            t->done = cm_realloc(t->done, (t->done_cap = t->done_cap ? t->done_cap * 2 : 64) *
                                              sizeof *t->done);
        t->done[t->ndone++] = e->pos;
        t->dirty = true;
    }
    return ok;
}

/* The slot's time is over: what is left in it belongs to a later slot (it was beyond the
 * wheel's span when added) and is linked again from the new read time. */
static void next_slot(broker_timer_t *t) {
    t->chk.read_ms += t->precision;
    t->cur_loaded = false;
    for (size_t i = t->next; i < t->ncur; i++) {
        const timer_entry_t *e = &t->cur[i];
        if (add_entry(t, e->deliver_ms, e->phys, e->size)) timer_wheel_mark_done(t->w, e->pos);
    }
    if (t->next < t->ncur) t->dirty = true;
}

/* Delivers what is due. Returns the wall ms of the next work, or 0 for "more right now". */
static int64_t dequeue_pass(broker_timer_t *t) {
    for (int budget = DEQUEUE_BUDGET; budget > 0;) {
        if (!t->cur_loaded || t->cur_ms != t->chk.read_ms) load_slot(t);
        if (!t->cur_sorted) {
            if (t->ncur - t->next > 1)
                qsort(t->cur + t->next, t->ncur - t->next, sizeof *t->cur, cmp_entry);
            t->cur_sorted = true;
        }
        int64_t now = cm_now_ms(), slot_end = t->chk.read_ms + t->precision;
        for (; t->next < t->ncur && budget > 0; budget--) {
            const timer_entry_t *e = &t->cur[t->next];
            if (e->deliver_ms >= slot_end) break; /* rolled on (sorted last) */
            if (e->deliver_ms > now) return e->deliver_ms;
            if (!deliver(t, e)) return now + RETRY_MS;
            t->next++;
        }
        if (budget == 0) return 0;
        if (now < slot_end) return slot_end;
        next_slot(t);
        budget--;
    }
    return 0;
}

/* A pass, then its deliveries flagged done (before any checkpoint can cover them: a crash
 * in between delivers them again, as a crash before the flush always could). */
static int64_t dequeue(broker_timer_t *t) {
    int64_t next = dequeue_pass(t);
    timer_wheel_mark_done_many(t->w, t->done, t->ndone);
    t->ndone = 0;
    return next;
}

/* ---------------------------------------------------------------- enqueue */

/* The deliver time a parked record carries (TIMER_OUT_MS); 0 when it has none. */
static int64_t timer_out_ms(const proto_record_t *rec) {
    const char *v;
    size_t len;
    int64_t ms;
    if (!proto_props_find(rec->props, (size_t)rec->props_len, PROP_TIMER_OUT_MS, &v, &len) ||
        !proto_parse_long(v, len, &ms) || ms <= 0)
        return 0;
    return ms;
}

/* Puts the next parked messages into the wheel. True when more are waiting. */
static bool enqueue(broker_timer_t *t) {
    broker_t *b = t->b;
    store_get_result_t res = {0};
    int64_t off = t->chk.enqueue_offset;
    store_get_messages(b->store, BROKER_TIMER_TOPIC, 0, off, ENQUEUE_BATCH, 0, NULL, NULL, &res);
    bool more = false;
    if (res.status != STORE_FOUND) {
        if (res.status == STORE_OFFSET_OVERFLOW_BADLY) {
            cm_warn(&b->log, "timer: offset %lld past the queue's end %lld", (long long)off,
                    (long long)res.max_offset);
            t->chk.enqueue_offset = res.max_offset;
            t->dirty = true;
        } else if (res.next_begin_offset > off && res.status != STORE_OFFSET_OVERFLOW_ONE) {
            t->chk.enqueue_offset = res.next_begin_offset; /* holes, removed segments */
            t->dirty = true;
            more = true;
        }
        cm_buf_free(&res.records);
        return more;
    }
    size_t pos = 0;
    bool stuck = false;
    while (pos < res.records.len && !stuck) {
        proto_record_t rec;
        if (proto_record_decode(res.records.data + pos, res.records.len - pos, false, &rec) !=
            RMQ_OK)
            break;
        pos += (size_t)rec.total_size;
        if (rec.physical_offset > t->chk.last_phys) { /* not in the wheel yet */
            int64_t due = timer_out_ms(&rec);
            if (!due) {
                cm_warn(&b->log, "timer: parked message at %lld has no TIMER_OUT_MS, dropped",
                        (long long)rec.physical_offset);
            } else if (!add_entry(t, due, rec.physical_offset, rec.total_size)) {
                stuck = true; /* I/O error: try this record again later */
                break;
            }
            t->chk.last_phys = rec.physical_offset;
        }
        t->chk.enqueue_offset = rec.queue_offset + 1;
        t->dirty = true;
    }
    more = !stuck && res.msg_count == ENQUEUE_BATCH;
    cm_buf_free(&res.records);
    return more;
}

/* ---------------------------------------------------------------- thread */

static void checkpoint(broker_timer_t *t) {
    if (!t->dirty) return;
    if (timer_wheel_checkpoint(t->w, &t->chk))
        t->dirty = false;
    else
        cm_warn(&t->b->log, "timer: cannot write the checkpoint: %s", strerror(errno));
}

static bool stopping(broker_timer_t *t) {
    pthread_mutex_lock(&t->mu);
    bool stop = t->stop;
    t->kick = false;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

static void *timer_main(void *arg) {
    broker_timer_t *t = arg;
    t->next_flush = cm_mono_ms() + t->flush_interval;
    while (!stopping(t)) {
        bool more = enqueue(t);
        int64_t next = dequeue(t);
        if (cm_mono_ms() >= t->next_flush) {
            checkpoint(t);
            t->next_flush = cm_mono_ms() + t->flush_interval;
        }
        if (more || next == 0) continue;
        int64_t sleep_ms = next - cm_now_ms(), to_flush = t->next_flush - cm_mono_ms();
        if (to_flush < sleep_ms) sleep_ms = to_flush;
        if (sleep_ms < 1) continue;
        struct timespec ts = cm_mono_deadline(sleep_ms);
        pthread_mutex_lock(&t->mu);
        int rc = 0;
        while (!t->stop && !t->kick && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        pthread_mutex_unlock(&t->mu);
    }
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

broker_timer_t *broker_timer_new(broker_t *b) {
    if (!cm_conf_bool(b->conf, "timerWheelEnable", true)) return NULL;
    /* Like delayed delivery, only a master delivers. */
    if (strcmp(cm_conf_str(b->conf, "brokerRole", true), "SLAVE") == 0) return NULL;
    broker_timer_t *t = cm_calloc(1, sizeof *t);
    t->b = b;
    t->precision = cm_conf_int(b->conf, "timerPrecisionMs", true);
    t->flush_interval = cm_conf_int(b->conf, "timerFlushIntervalMs", true);
    /* Twice the longest delay: every slot time in [read, read + span) has its own slot,
     * and a backlog of up to one maximum delay still fits without moving entries on. */
    int64_t max_ms = cm_conf_int(b->conf, "timerMaxDelaySec", true) * 1000;
    int64_t slots = 2 * ((max_ms + t->precision - 1) / t->precision) + 2;
    t->span_ms = slots * t->precision;
    t->w = timer_wheel_open(b, slots, t->precision,
                            cm_conf_int(b->conf, "mappedFileSizeTimerLog", true), &t->chk);
    if (!t->w) {
        cm_free(t);
        return NULL;
    }
    t->chk.read_ms = t->chk.read_ms / t->precision * t->precision;
    pthread_mutex_init(&t->mu, NULL);
    cm_cond_init_mono(&t->cv);
    t->running = pthread_create(&t->thread, NULL, timer_main, t) == 0;
    if (!t->running) cm_error(&b->log, "cannot start the timer-message thread");
    return t;
}

void broker_timer_destroy(broker_timer_t *t) {
    if (!t) return;
    if (t->running) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    t->dirty = true; /* a clean stop always leaves a current checkpoint */
    checkpoint(t);
    timer_wheel_close(t->w);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    cm_free(t->cur);
    cm_free(t->done);
    cm_free(t);
}

void broker_timer_on_dispatch(broker_timer_t *t) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->kick = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

int64_t broker_timer_pending(broker_timer_t *t) {
    return t ? timer_wheel_pending(t->w) : 0;
}
