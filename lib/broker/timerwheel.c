/* lib/broker/timerwheel.c: the files of the timing wheel (timer.h) — the append-only timer
 * log in fixed-size segments, the wheel of slots, the checkpoint. Plain pread/pwrite: the
 * page cache keeps the hot part in memory, nothing is held per entry here. Used by the
 * timer thread only (no locking inside).
 *
 * Entry layout (big-endian, TIMER_UNIT = 40 bytes): magic int32, flags int32 (bit 0 done),
 * prev int64, deliver ms int64, commit-log offset int64, size int32, reserved int32.
 * Slot layout (TIMER_SLOT = 32 bytes): time ms int64, first int64, last int64, count int32,
 * reserved int32.
 *
 * System calls are the cost here (a million messages is millions of small writes), so two
 * small caches save the reads: the last slots written (every message of one second goes to
 * the same slot) and one block of the timer log (a slot's list is walked backwards through
 * entries that were mostly appended together). Both are write-through: the files always
 * hold the truth, the caches are dropped whenever the files change under them. */
#include "broker/timer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_MAGIC 0x54494D31 /* "TIM1" */
#define FLAG_DONE 1
#define CHECK_FILE "timercheck"
#define SLOT_CACHE 16                  /* slots remembered, direct-mapped by index */
#define READ_BLOCK (1638 * TIMER_UNIT) /* timer-log bytes read at once (64 KiB) */

typedef struct segment {
    int64_t base; /* timer-log position of its first byte */
    int fd;
    int64_t pending; /* entries not done */
} segment_t;

struct timer_wheel {
    broker_t *b;
    char log_dir[1100];
    int wheel_fd;
    int64_t slots, precision, seg_size;
    segment_t *segs; /* oldest first; the last one is written */
    size_t nsegs, cap;
    int64_t write_pos;    /* next timer-log position */
    atomic_llong pending; /* read by the stats (any thread) */
    int64_t last_phys;

    /* slot cache: what slot_off() offset off holds, for off / TIMER_SLOT % SLOT_CACHE */
    struct {
        int64_t off; /* -1: empty */
        timer_slot_t slot;
    } slot_cache[SLOT_CACHE];
    /* timer-log read cache: bytes [block_pos, block_pos + block_len) of the log */
    uint8_t *block;
    int64_t block_pos, block_len;
};

/* ---------------------------------------------------------------- raw I/O */

static bool pread_all(int fd, void *buf, size_t len, int64_t off) {
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return true;
}

static bool pwrite_all(int fd, const void *buf, size_t len, int64_t off) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return true;
}

/* ---------------------------------------------------------------- segments */

static segment_t *seg_of(timer_wheel_t *w, int64_t pos) {
    if (w->nsegs == 0 || pos < w->segs[0].base) return NULL;
    size_t i = (size_t)((pos - w->segs[0].base) / w->seg_size);
    return i < w->nsegs ? &w->segs[i] : NULL;
}

static void seg_path(const timer_wheel_t *w, int64_t base, char *dst, size_t size) {
    snprintf(dst, size, "%s/%020lld", w->log_dir, (long long)base);
}

static segment_t *seg_add(timer_wheel_t *w, int64_t base) {
    char path[1200];
    seg_path(w, base, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        cm_error(&w->b->log, "timer log: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (w->nsegs == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->segs = cm_realloc(w->segs, w->cap * sizeof *w->segs);
    }
    segment_t *s = &w->segs[w->nsegs++];
    *s = (segment_t){.base = base, .fd = fd, .pending = 0};
    return s;
}

/* Drops leading segments that hold nothing pending (never the one being written): a slot
 * list may run into a dropped segment only where everything older is done too. */
static void seg_trim(timer_wheel_t *w) {
    size_t drop = 0;
    while (drop + 1 < w->nsegs && w->segs[drop].pending == 0)
        drop++;
    for (size_t i = 0; i < drop; i++) {
        char path[1200];
        seg_path(w, w->segs[i].base, path, sizeof path);
        close(w->segs[i].fd);
        if (unlink(path) != 0)
            cm_warn(&w->b->log, "timer log: cannot remove %s: %s", path, strerror(errno));
    }
    if (drop) {
        memmove(w->segs, w->segs + drop, (w->nsegs - drop) * sizeof *w->segs);
        w->nsegs -= drop;
    }
}

/* ---------------------------------------------------------------- entries and slots */

static void entry_encode(const timer_entry_t *e, uint8_t *u) {
    memset(u, 0, TIMER_UNIT);
    cm_wr32(u, ENTRY_MAGIC);
    cm_wr32(u + 4, e->done ? FLAG_DONE : 0);
    cm_wr64(u + 8, (uint64_t)e->prev);
    cm_wr64(u + 16, (uint64_t)e->deliver_ms);
    cm_wr64(u + 24, (uint64_t)e->phys);
    cm_wr32(u + 32, (uint32_t)e->size);
}

static bool entry_decode(const uint8_t *u, int64_t pos, timer_entry_t *e) {
    if (cm_rd32(u) != ENTRY_MAGIC) return false;
    e->pos = pos;
    e->done = (cm_rd32(u + 4) & FLAG_DONE) != 0;
    e->prev = (int64_t)cm_rd64(u + 8);
    e->deliver_ms = (int64_t)cm_rd64(u + 16);
    e->phys = (int64_t)cm_rd64(u + 24);
    e->size = (int32_t)cm_rd32(u + 32);
    return e->deliver_ms > 0 && e->phys >= 0 && e->size > 0;
}

static void caches_reset(timer_wheel_t *w) {
    for (size_t i = 0; i < SLOT_CACHE; i++)
        w->slot_cache[i].off = -1;
    w->block_len = 0;
}

/* Fills the read cache with a block of pos's segment holding pos: the block that ends just
 * after pos when the walk goes towards older entries (a slot's list), the one that starts
 * at pos when it goes forward (rebuild); never past what is written. */
static bool block_load(timer_wheel_t *w, const segment_t *s, int64_t pos) {
    bool forward = w->block_len && pos >= w->block_pos + w->block_len;
    int64_t seg_end = s->base + w->seg_size;
    int64_t limit = seg_end < w->write_pos ? seg_end : w->write_pos;
    int64_t end = forward ? pos + READ_BLOCK : pos + TIMER_UNIT;
    if (end > limit) end = limit;
    int64_t start = forward ? pos : end - READ_BLOCK;
    if (start < s->base) start = s->base;
    if (!w->block) w->block = cm_malloc(READ_BLOCK);
    w->block_len = 0;
    if (end <= start || !pread_all(s->fd, w->block, (size_t)(end - start), start - s->base))
        return false;
    w->block_pos = start;
    w->block_len = end - start;
    return true;
}

static bool entry_read(timer_wheel_t *w, int64_t pos, timer_entry_t *e) {
    if (w->nsegs == 0) return false;
    segment_t *s = seg_of(w, pos);
    if (!s || pos < 0 || pos + TIMER_UNIT > w->write_pos) return false;
    bool cached = pos >= w->block_pos && pos + TIMER_UNIT <= w->block_pos + w->block_len;
    if (!cached && !block_load(w, s, pos)) return false;
    return entry_decode(w->block + (pos - w->block_pos), pos, e);
}

static int64_t slot_off(const timer_wheel_t *w, int64_t time_ms) {
    return (time_ms / w->precision % w->slots) * TIMER_SLOT;
}

static void slot_read(timer_wheel_t *w, int64_t time_ms, timer_slot_t *s) {
    int64_t off = slot_off(w, time_ms);
    size_t ci = (size_t)(off / TIMER_SLOT % SLOT_CACHE);
    if (w->slot_cache[ci].off == off) {
        *s = w->slot_cache[ci].slot;
        return;
    }
    uint8_t u[TIMER_SLOT];
    if (!pread_all(w->wheel_fd, u, sizeof u, off)) memset(u, 0, sizeof u);
    s->time_ms = (int64_t)cm_rd64(u);
    s->first = (int64_t)cm_rd64(u + 8);
    s->last = (int64_t)cm_rd64(u + 16);
    s->count = (int32_t)cm_rd32(u + 24);
    w->slot_cache[ci].off = off;
    w->slot_cache[ci].slot = *s;
}

static bool slot_write(timer_wheel_t *w, const timer_slot_t *s) {
    uint8_t u[TIMER_SLOT] = {0};
    cm_wr64(u, (uint64_t)s->time_ms);
    cm_wr64(u + 8, (uint64_t)s->first);
    cm_wr64(u + 16, (uint64_t)s->last);
    cm_wr32(u + 24, (uint32_t)s->count);
    int64_t off = slot_off(w, s->time_ms);
    size_t ci = (size_t)(off / TIMER_SLOT % SLOT_CACHE);
    w->slot_cache[ci].off = -1; /* unknown until the write is known to have happened */
    if (!pwrite_all(w->wheel_fd, u, sizeof u, off)) return false;
    w->slot_cache[ci].off = off;
    w->slot_cache[ci].slot = *s;
    return true;
}

/* Rebuild: links the existing entry at pos into slot_ms's list (its prev rewritten first,
 * then the slot, so the slot never points at a half-linked entry). */
static bool relink_entry(timer_wheel_t *w, int64_t slot_ms, int64_t pos) {
    timer_slot_t s;
    slot_read(w, slot_ms, &s);
    if (s.time_ms != slot_ms) s = (timer_slot_t){.time_ms = slot_ms, .first = pos, .last = -1};
    uint8_t prev[8];
    cm_wr64(prev, (uint64_t)s.last);
    segment_t *seg = seg_of(w, pos);
    if (!seg || !pwrite_all(seg->fd, prev, sizeof prev, pos - seg->base + 8)) {
        w->block_len = 0; /* the entry's bytes are unknown now */
        return false;
    }
    if (pos >= w->block_pos && pos + TIMER_UNIT <= w->block_pos + w->block_len)
        memcpy(w->block + (pos - w->block_pos) + 8, prev, sizeof prev);
    s.last = pos;
    s.count++;
    return slot_write(w, &s);
}

bool timer_wheel_add(timer_wheel_t *w, int64_t slot_ms, int64_t deliver_ms, int64_t phys,
                     int32_t size, int64_t *pos_out) {
    int64_t pos = w->write_pos;
    segment_t *seg = w->nsegs ? &w->segs[w->nsegs - 1] : NULL;
    if (!seg || pos - seg->base + TIMER_UNIT > w->seg_size) {
        seg = seg_add(w, pos);
        if (!seg) return false;
    }
    /* The entry is written whole, already linked to the slot's previous last, before the
     * slot points at it: a crash in between leaves the slot as it was. */
    timer_slot_t s;
    slot_read(w, slot_ms, &s);
    if (s.time_ms != slot_ms) s = (timer_slot_t){.time_ms = slot_ms, .first = pos, .last = -1};
    timer_entry_t e = {.prev = s.last, .deliver_ms = deliver_ms, .phys = phys, .size = size};
    uint8_t u[TIMER_UNIT];
    entry_encode(&e, u);
    if (!pwrite_all(seg->fd, u, sizeof u, pos - seg->base)) {
        cm_error(&w->b->log, "timer log: write failed: %s", strerror(errno));
        return false;
    }
    w->write_pos = pos + TIMER_UNIT;
    seg->pending++;
    atomic_fetch_add(&w->pending, 1);
    if (phys > w->last_phys) w->last_phys = phys;
    s.last = pos;
    s.count++;
    if (!slot_write(w, &s)) {
        cm_error(&w->b->log, "timer wheel: write failed: %s", strerror(errno));
        timer_wheel_mark_done(w, pos);
        return false;
    }
    if (pos_out) *pos_out = pos;
    return true;
}

void timer_wheel_slot_entries(timer_wheel_t *w, int64_t slot_ms, timer_entry_t **out, size_t *count,
                              size_t *cap) {
    timer_slot_t s;
    slot_read(w, slot_ms, &s);
    if (s.time_ms != slot_ms) return;
    timer_entry_t e;
    /* Positions only go down along a list; a bad link (torn write) cannot loop. */
    for (int64_t pos = s.last, bound = INT64_MAX; pos >= 0 && pos < bound; pos = e.prev) {
        if (!entry_read(w, pos, &e)) break; /* dropped segment: everything older is done */
        bound = pos;
        if (e.done) continue;
        if (*count == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *out = cm_realloc(*out, *cap * sizeof **out);
        }
        (*out)[(*count)++] = e;
    }
}

void timer_wheel_mark_done(timer_wheel_t *w, int64_t pos) {
    segment_t *seg = seg_of(w, pos);
    if (!seg) return;
    uint8_t flags[4];
    cm_wr32(flags, FLAG_DONE);
    if (!pwrite_all(seg->fd, flags, sizeof flags, pos - seg->base + 4))
        cm_warn(&w->b->log, "timer log: cannot flag entry %lld done: %s", (long long)pos,
                strerror(errno));
    else if (pos >= w->block_pos && pos + TIMER_UNIT <= w->block_pos + w->block_len)
        memcpy(w->block + (pos - w->block_pos) + 4, flags, sizeof flags);
    if (seg->pending > 0) seg->pending--;
    atomic_fetch_sub(&w->pending, 1);
    if (seg->pending == 0 && seg == &w->segs[0]) seg_trim(w);
}

static int cmp_i64(const void *a, const void *b);

/* Flags the run of k adjacent entries from pos (all in segment s) done with one read and one
 * write; false on an I/O error (then they are flagged one by one). */
static bool mark_run_done(timer_wheel_t *w, segment_t *s, int64_t pos, size_t k) {
    size_t len = k * TIMER_UNIT;
    uint8_t *run = cm_malloc(len);
    bool ok = pread_all(s->fd, run, len, pos - s->base);
    for (size_t i = 0; ok && i < k; i++)
        cm_wr32(run + i * TIMER_UNIT + 4, FLAG_DONE);
    ok = ok && pwrite_all(s->fd, run, len, pos - s->base);
    int64_t end = pos + (int64_t)len;
    if (ok && end > w->block_pos && pos < w->block_pos + w->block_len) {
        int64_t from = pos > w->block_pos ? pos : w->block_pos;
        int64_t to = end < w->block_pos + w->block_len ? end : w->block_pos + w->block_len;
        memcpy(w->block + (from - w->block_pos), run + (from - pos), (size_t)(to - from));
    }
    cm_free(run);
    if (!ok) return false;
    s->pending = s->pending > (int64_t)k ? s->pending - (int64_t)k : 0;
    atomic_fetch_sub(&w->pending, (long long)k);
    return true;
}

void timer_wheel_mark_done_many(timer_wheel_t *w, int64_t *pos, size_t n) {
    if (n > 1) qsort(pos, n, sizeof *pos, cmp_i64);
    for (size_t i = 0; i < n;) {
        segment_t *s = seg_of(w, pos[i]);
        size_t k = 1;
        while (i + k < n && pos[i + k] == pos[i] + (int64_t)k * TIMER_UNIT &&
               seg_of(w, pos[i + k]) == s)
            k++;
        if (k == 1 || !s || !mark_run_done(w, s, pos[i], k))
            for (size_t j = i; j < i + k; j++)
                timer_wheel_mark_done(w, pos[j]);
        i += k;
    }
    if (w->nsegs && w->segs[0].pending == 0) seg_trim(w);
}

int64_t timer_wheel_pending(const timer_wheel_t *w) {
    return atomic_load(&w->pending);
}

int64_t timer_wheel_last_phys(const timer_wheel_t *w) {
    return w->last_phys;
}

/* ---------------------------------------------------------------- checkpoint */

static void check_load(broker_t *b, timer_check_t *chk) {
    char path[1100];
    broker_cfg_path(b, CHECK_FILE, path, sizeof path);
    proto_json_t *root = broker_cfg_load(&b->log, path, NULL);
    const proto_json_t *v;
    *chk = (timer_check_t){.last_phys = -1};
    if ((v = proto_json_get(root, "enqueueOffset")) && v->type == PJ_NUMBER && v->i >= 0)
        chk->enqueue_offset = v->i;
    if ((v = proto_json_get(root, "readTimeMs")) && v->type == PJ_NUMBER && v->i > 0)
        chk->read_ms = v->i;
    if ((v = proto_json_get(root, "lastEnqueuedPhysOffset")) && v->type == PJ_NUMBER)
        chk->last_phys = v->i;
    proto_json_free(root);
}

bool timer_wheel_checkpoint(timer_wheel_t *w, const timer_check_t *chk) {
    /* The entries and links the checkpoint counts on reach the disk first. */
    if (w->nsegs && fdatasync(w->segs[w->nsegs - 1].fd) != 0) return false;
    if (fdatasync(w->wheel_fd) != 0) return false;
    char text[256];
    int n = snprintf(text, sizeof text,
                     "{\n\t\"enqueueOffset\":%lld,\n\t\"readTimeMs\":%lld,\n"
                     "\t\"lastEnqueuedPhysOffset\":%lld\n}",
                     (long long)chk->enqueue_offset, (long long)chk->read_ms,
                     (long long)chk->last_phys);
    char path[1100];
    broker_cfg_path(w->b, CHECK_FILE, path, sizeof path);
    return broker_cfg_write(&w->b->log, path, text, (size_t)n);
}

/* ---------------------------------------------------------------- open */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Segment bases found in the directory, sorted. */
static int64_t *list_bases(const char *dir, size_t *n) {
    int64_t *bases = NULL;
    size_t cap = 0;
    *n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        char *end;
        long long base = strtoll(de->d_name, &end, 10);
        if (strlen(de->d_name) != 20 || *end || base < 0) continue;
        if (*n == cap) bases = cm_realloc(bases, (cap = cap ? cap * 2 : 8) * sizeof *bases);
        bases[(*n)++] = base;
    }
    if (d) closedir(d);
    if (*n) qsort(bases, *n, sizeof *bases, cmp_i64);
    return bases;
}

/* Counts each segment's pending entries and finds the end of the written log (the first
 * unit without a valid entry in the last segment: a torn tail is overwritten). */
static void scan_segments(timer_wheel_t *w) {
    enum { CHUNK = TIMER_UNIT * 4096 };
    uint8_t *buf = cm_malloc(CHUNK);
    w->write_pos = w->nsegs ? w->segs[0].base : 0;
    for (size_t i = 0; i < w->nsegs; i++) {
        segment_t *s = &w->segs[i];
        int64_t off = 0;
        bool end = false;
        while (!end && off < w->seg_size) {
            ssize_t n = pread(s->fd, buf, CHUNK, (off_t)off);
            if (n < TIMER_UNIT) break;
            for (ssize_t at = 0; at + TIMER_UNIT <= n; at += TIMER_UNIT, off += TIMER_UNIT) {
                timer_entry_t e;
                if (!entry_decode(buf + at, s->base + off, &e)) {
                    end = true;
                    break;
                }
                if (!e.done) s->pending++;
                if (e.phys > w->last_phys) w->last_phys = e.phys;
            }
        }
        atomic_fetch_add(&w->pending, s->pending);
        w->write_pos = s->base + off;
    }
    cm_free(buf);
}

/* A new wheel (the old one missing or of another shape): every pending entry is linked
 * again, in log order, into the slot of its deliver time (not before first_ms, the slot
 * being delivered; not past the wheel's span). */
static bool rebuild(timer_wheel_t *w, int64_t first_ms) {
    caches_reset(w);
    if (ftruncate(w->wheel_fd, 0) != 0 || ftruncate(w->wheel_fd, w->slots * TIMER_SLOT) != 0)
        return false;
    int64_t span_end = first_ms + (w->slots - 1) * w->precision;
    int64_t relinked = 0;
    for (int64_t pos = w->nsegs ? w->segs[0].base : 0; pos < w->write_pos; pos += TIMER_UNIT) {
        timer_entry_t e;
        if (!entry_read(w, pos, &e) || e.done) continue;
        int64_t slot = e.deliver_ms / w->precision * w->precision;
        if (slot < first_ms) slot = first_ms;
        if (slot > span_end) slot = span_end;
        if (!relink_entry(w, slot, pos)) return false;
        relinked++;
    }
    cm_info(&w->b->log, "timer wheel rebuilt: %lld pending message(s) relinked",
            (long long)relinked);
    return true;
}

timer_wheel_t *timer_wheel_open(broker_t *b, int64_t slots, int64_t precision_ms, int64_t seg_size,
                                timer_check_t *chk) {
    timer_wheel_t *w = cm_calloc(1, sizeof *w);
    w->b = b;
    w->slots = slots;
    w->precision = precision_ms;
    w->seg_size = seg_size / TIMER_UNIT * TIMER_UNIT;
    w->last_phys = -1;
    w->wheel_fd = -1;
    caches_reset(w);
    check_load(b, chk);
    if (chk->read_ms <= 0) chk->read_ms = cm_now_ms() / precision_ms * precision_ms;
    snprintf(w->log_dir, sizeof w->log_dir, "%s/timerlog", b->store_cfg.root_dir);
    char why[1200], path[1200];
    if (cm_mkdirs(w->log_dir, why, sizeof why) != RMQ_OK) {
        cm_error(&b->log, "timer: %s", why);
        timer_wheel_close(w);
        return NULL;
    }
    size_t n;
    int64_t *bases = list_bases(w->log_dir, &n);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = seg_add(w, bases[i]) != NULL;
    cm_free(bases);
    if (ok) scan_segments(w);
    if (chk->last_phys > w->last_phys) w->last_phys = chk->last_phys;
    snprintf(path, sizeof path, "%s/timerwheel", b->store_cfg.root_dir);
    struct stat st;
    bool fresh = stat(path, &st) != 0 || st.st_size != slots * TIMER_SLOT;
    w->wheel_fd = ok ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (w->wheel_fd < 0 || (fresh && !rebuild(w, chk->read_ms))) {
        cm_error(&b->log, "timer: cannot open %s: %s", path, strerror(errno));
        timer_wheel_close(w);
        return NULL;
    }
    seg_trim(w);
    return w;
}

void timer_wheel_close(timer_wheel_t *w) {
    if (!w) return;
    for (size_t i = 0; i < w->nsegs; i++) {
        fdatasync(w->segs[i].fd);
        close(w->segs[i].fd);
    }
    if (w->wheel_fd >= 0) {
        fdatasync(w->wheel_fd);
        close(w->wheel_fd);
    }
    cm_free(w->segs);
    cm_free(w->block);
    cm_free(w);
}
