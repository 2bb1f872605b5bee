/* lib/broker/schedule.c: delayed delivery (RocketMQ's ScheduleMessageService). A send with
 * DELAY=n is stored on SCHEDULE_TOPIC_XXXX queue n-1, whose consume-queue slot holds the due
 * time (lib/store computes it); this file's thread re-stores each due message on its
 * REAL_TOPIC / REAL_QID and keeps each level's next offset in config/delayOffset.json.
 *
 * Instead of polling every 100 ms the thread sleeps until the earliest due time among the
 * queue heads; the store's dispatch of a schedule-topic entry due earlier wakes it. Offsets
 * are written every flushDelayOffsetInterval (10 s) and at stop. After a crash the messages
 * delivered since the last write are delivered again (at least once, as RocketMQ); a clean
 * stop repeats nothing. */
#include "broker/broker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define DELAY_OFFSET_FILE "delayOffset.json"
#define RETRY_MS 1000 /* after a failed re-store (RocketMQ retries in 100 ms) */

struct broker_sched {
    broker_t *b;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool running, stop;
    bool kick;       /* a schedule entry was dispatched that may be due before wake_at */
    bool scanning;   /* the thread is scanning: every dispatch kicks */
    int64_t wake_at; /* wall ms the thread sleeps until */
    int levels;
    int64_t offsets[STORE_MAX_DELAY_LEVELS]; /* next offset per level (thread only) */
    bool present[STORE_MAX_DELAY_LEVELS];    /* level has an entry in the table */
    bool dirty;
    int64_t flush_interval, next_flush; /* mono ms (thread only) */
};

/* Messages one level delivers per pass before the others get their turn. */
#define LEVEL_BATCH 256

/* ---------------------------------------------------------------- delayOffset.json */

static void load(broker_sched_t *s) {
    char path[1100];
    broker_cfg_path(s->b, DELAY_OFFSET_FILE, path, sizeof path);
    proto_json_t *root = broker_cfg_load(&s->b->log, path, NULL);
    const proto_json_t *tab = proto_json_get(root, "offsetTable");
    for (size_t i = 0; tab && tab->type == PJ_OBJECT && i < tab->len; i++) {
        const proto_json_t *k = tab->keys[i], *v = tab->items[i];
        int64_t level;
        if (k->type == PJ_NUMBER)
            level = k->i;
        else if (k->type == PJ_STRING)
            level = strtoll(k->s, NULL, 10);
        else
            continue;
        if (level < 1 || level > STORE_MAX_DELAY_LEVELS || v->type != PJ_NUMBER || v->i < 0)
            continue;
        s->offsets[level - 1] = v->i;
        s->present[level - 1] = true;
    }
    proto_json_free(root);
}

/* fastjson's pretty form of DelayOffsetSerializeWrapper, as a 4.9.8 broker writes it:
 * {\n\t"offsetTable":{2:10,3:5\n\t}\n} (no dataVersion in 4.x). */
static char *table_json(const broker_sched_t *s) {
    cm_buf_t out = CM_BUF_INIT;
    cm_buf_append_str(&out, "{\n\t\"offsetTable\":{");
    bool first = true;
    for (int i = 0; i < STORE_MAX_DELAY_LEVELS; i++) {
        if (!s->present[i]) continue;
        cm_buf_printf(&out, "%s%d:%lld", first ? "" : ",", i + 1, (long long)s->offsets[i]);
        first = false;
    }
    cm_buf_append_str(&out, first ? "}\n}" : "\n\t}\n}");
    return cm_buf_take_str(&out);
}

static void persist(broker_sched_t *s) {
    pthread_mutex_lock(&s->mu);
    bool dirty = s->dirty;
    char *text = dirty ? table_json(s) : NULL;
    s->dirty = false;
    pthread_mutex_unlock(&s->mu);
    if (!text) return;
    char path[1100];
    broker_cfg_path(s->b, DELAY_OFFSET_FILE, path, sizeof path);
    if (!broker_cfg_write(&s->b->log, path, text, strlen(text))) {
        pthread_mutex_lock(&s->mu);
        s->dirty = true;
        pthread_mutex_unlock(&s->mu);
    }
    cm_free(text);
}

static void set_offset(broker_sched_t *s, int level, int64_t off) {
    pthread_mutex_lock(&s->mu);
    if (!s->present[level - 1] || s->offsets[level - 1] != off) s->dirty = true;
    s->offsets[level - 1] = off;
    s->present[level - 1] = true;
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- delivery */

/* ScheduleMessageService.messageTimeup: the stored schedule record re-encoded for its real
 * topic and queue. Its properties are the stored ones re-ordered as a fresh HashMap holds
 * them; DELAY, REAL_TOPIC and REAL_QID stay in the string (Java removes DELAY from the map
 * only after writing the string). False when the record has no usable REAL_TOPIC /
 * REAL_QID: RocketMQ drops such a record. */
bool broker_sched_build_delivery(broker_t *b, const proto_record_t *in, cm_buf_t *out) {
    proto_props_t p = {0};
    if (proto_props_parse(in->props, (size_t)in->props_len, &p) != RMQ_OK) return false;
    const char *topic = proto_props_get(&p, PROP_REAL_TOPIC);
    const char *qid_text = proto_props_get(&p, PROP_REAL_QID);
    char *end = NULL;
    long qid = qid_text ? strtol(qid_text, &end, 10) : -1;
    bool ok = topic && *topic && strlen(topic) < 256 && end && !*end && qid >= 0 && qid < 65536 &&
              strcmp(topic, "RMQ_SYS_TRANS_HALF_TOPIC") != 0; /* RocketMQ discards those */
    if (ok) {
        cm_buf_t props = CM_BUF_INIT;
        broker_props_java_order(&p, p.count, &props);
        proto_record_t rec;
        memset(&rec, 0, sizeof rec);
        rec.magic = PROTO_MAGIC_V1;
        rec.queue_id = (int32_t)qid;
        rec.flag = in->flag;
        rec.sys_flag = in->sys_flag & ~SYSFLAG_STOREHOST_V6;
        if (b->store_host.ip_len == 16) rec.sys_flag |= SYSFLAG_STOREHOST_V6;
        rec.born_timestamp = in->born_timestamp;
        rec.born_host = in->born_host;
        rec.store_host = b->store_host;
        rec.reconsume_times = in->reconsume_times;
        rec.body = in->body;
        rec.body_len = in->body_len;
        rec.topic = topic;
        rec.topic_len = (int32_t)strlen(topic);
        rec.props = (const char *)props.data;
        rec.props_len = (int32_t)props.len;
        ok = proto_record_encode(&rec, out) == RMQ_OK;
        cm_buf_free(&props);
    }
    proto_props_free(&p);
    return ok;
}

static bool capture_tags(void *arg, int64_t tags_code) {
    *(int64_t *)arg = tags_code;
    return true;
}

static bool stopping(broker_sched_t *s) {
    pthread_mutex_lock(&s->mu);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Delivers level's due entries (at most LEVEL_BATCH); returns the wall time its head falls
 * due (INT64_MAX when the queue is drained, INT64_MIN when more are due now). */
static int64_t deliver_level(broker_sched_t *s, int level) {
    broker_t *b = s->b;
    int64_t delay = b->store_cfg.delay_level_ms[level - 1];
    int64_t off = s->offsets[level - 1];
    cm_buf_t rec_buf = CM_BUF_INIT;
    int64_t wake = INT64_MAX;
    for (int n = 0;; n++) {
        if (stopping(s)) break;
        if (n == LEVEL_BATCH) { /* a backlog: let the other levels run, come back at once */
            wake = INT64_MIN;
            break;
        }
        if (cm_mono_ms() >= s->next_flush) { /* keeps a crash's repeats to one interval */
            persist(s);
            s->next_flush = cm_mono_ms() + s->flush_interval;
        }
        store_get_result_t res = {0};
        int64_t tags = 0;
        store_get_messages(b->store, STORE_SCHEDULE_TOPIC, level - 1, off, 1, 0, capture_tags,
                           &tags, &res);
        if (res.status != STORE_FOUND) {
            cm_buf_free(&res.records);
            if (res.status == STORE_OFFSET_OVERFLOW_BADLY) {
                cm_warn(&b->log, "delay level %d: offset %lld past the queue's end %lld", level,
                        (long long)off, (long long)res.max_offset);
                off = res.max_offset;
                break;
            }
            /* Holes and removed segments are skipped; an empty or caught-up queue ends. */
            if (res.next_begin_offset > off && res.status != STORE_OFFSET_OVERFLOW_ONE) {
                off = res.next_begin_offset;
                continue;
            }
            break;
        }
        int64_t now = cm_now_ms();
        /* correctDeliverTimestamp: a due time further away than the level's delay (the clock
         * went back, or the level was shortened) is taken as now. */
        int64_t due = tags > now + delay ? now : tags;
        if (due > now) {
            cm_buf_free(&res.records);
            wake = due;
            break;
        }
        proto_record_t rec;
        cm_buf_reset(&rec_buf);
        bool built =
            proto_record_decode(res.records.data, res.records.len, false, &rec) == RMQ_OK &&
            broker_sched_build_delivery(b, &rec, &rec_buf);
        cm_buf_free(&res.records);
        if (built) {
            store_put_result_t put = {0};
            rmq_err_t rc =
                store_append(b->store, rec_buf.data, rec_buf.len, &b->store_host, false, &put);
            if (rc == RMQ_ERR_MSG_TOO_LARGE || rc == RMQ_ERR_MALFORMED) {
                cm_warn(&b->log, "delay level %d offset %lld: cannot re-store (%s), dropped", level,
                        (long long)off, rmq_err_name(rc));
            } else if (rc != RMQ_OK && rc != RMQ_ERR_FLUSH_DISK_TIMEOUT) {
                cm_warn(&b->log, "delay level %d offset %lld: re-store failed (%s), retrying",
                        level, (long long)off, rmq_err_name(rc));
                wake = cm_now_ms() + RETRY_MS;
                break;
            }
        } else {
            cm_warn(&b->log, "delay level %d offset %lld: no REAL_TOPIC/REAL_QID, dropped", level,
                    (long long)off);
        }
        off = res.next_begin_offset;
        set_offset(s, level, off);
    }
    /* Levels never delivered stay out of the table, as in RocketMQ's file. */
    if (off != s->offsets[level - 1]) set_offset(s, level, off);
    cm_buf_free(&rec_buf);
    return wake;
}

static void *sched_main(void *arg) {
    broker_sched_t *s = arg;
    s->flush_interval = cm_conf_int(s->b->conf, "flushDelayOffsetInterval", true);
    s->next_flush = cm_mono_ms() + s->flush_interval;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        s->kick = false;
        s->scanning = true;
        pthread_mutex_unlock(&s->mu);
        int64_t wake = INT64_MAX;
        for (int level = 1; level <= s->levels; level++) {
            int64_t w = deliver_level(s, level);
            if (w < wake) wake = w;
        }
        if (cm_mono_ms() >= s->next_flush) {
            persist(s);
            s->next_flush = cm_mono_ms() + s->flush_interval;
        }
        pthread_mutex_lock(&s->mu);
        s->scanning = false;
        if (wake == INT64_MIN) continue; /* a level has more due messages */
        s->wake_at = wake;
        int64_t now = cm_now_ms();
        int64_t sleep_ms = s->next_flush - cm_mono_ms();
        if (wake != INT64_MAX && wake - now < sleep_ms) sleep_ms = wake - now;
        if (sleep_ms < 1) sleep_ms = 1;
        struct timespec ts = cm_mono_deadline(sleep_ms);
        int rc = 0;
        while (!s->stop && !s->kick && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

broker_sched_t *broker_sched_new(broker_t *b) {
    broker_sched_t *s = cm_calloc(1, sizeof *s);
    s->b = b;
    s->levels = b->store_cfg.delay_levels;
    if (s->levels > STORE_MAX_DELAY_LEVELS) s->levels = STORE_MAX_DELAY_LEVELS;
    pthread_mutex_init(&s->mu, NULL);
    cm_cond_init_mono(&s->cv);
    load(s);
    /* Like RocketMQ, only a master delivers: a slave's copies arrive by replication. */
    if (strcmp(cm_conf_str(b->conf, "brokerRole", true), "SLAVE") == 0) return s;
    s->scanning = true;
    s->running = pthread_create(&s->thread, NULL, sched_main, s) == 0;
    if (!s->running) cm_error(&b->log, "cannot start the delayed-delivery thread");
    return s;
}

void broker_sched_destroy(broker_sched_t *s) {
    if (!s) return;
    if (s->running) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    persist(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    cm_free(s);
}

void broker_sched_on_dispatch(broker_sched_t *s, int64_t due) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    if (s->scanning || due < s->wake_at) {
        s->kick = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

int32_t broker_sched_level(const char *props, size_t len) {
    const char *v;
    size_t vlen;
    if (!proto_props_find(props, len, PROP_DELAY, &v, &vlen) || vlen == 0) return 0;
    bool neg = v[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == vlen || vlen - i > 9) return -1;
    int32_t level = 0;
    for (; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        level = level * 10 + (v[i] - '0');
    }
    return neg ? 0 : level;
}
