/* lib/broker/timer.h: timer messages (RocketMQ 5's arbitrary-time delivery) — the on-disk
 * timing wheel (timerwheel.c, files only, no threads) and the timer service that feeds and
 * drains it (timer.c, one thread).
 *
 * A message sent with TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS / __STARTDELIVERTIME
 * is stored on rmq_sys_wheel_timer queue 0 with TIMER_OUT_MS (its deliver time), REAL_TOPIC
 * and REAL_QID added (send.c). The timer thread reads that queue and, for each message,
 * appends an entry (deliver time, commit-log offset, size, previous entry of the same slot)
 * to the timer log and links it into the wheel slot of its second. Each tick it walks the
 * due slot's list, reads the parked messages back from the commit log and stores them on
 * their real topic and queue. Nothing is kept in memory per pending message except the
 * entries of the one slot being delivered.
 *
 * Files under storePathRootDir (RocketMQ 5's names):
 *   timerlog/<20-digit base offset>  append-only entries of TIMER_UNIT bytes, in segments
 *   timerwheel                       slots * TIMER_SLOT bytes, slot = (time / precision) % slots
 *   config/timercheck                the checkpoint: enqueue offset, read time, last phys
 * An entry is flagged done (in place) once delivered, so a restart walks the slot again and
 * skips what was delivered: a clean stop repeats nothing; a crash repeats at most what was
 * delivered since the last flush (timerFlushIntervalMs). */
#ifndef RMQ_BROKER_TIMER_H
#define RMQ_BROKER_TIMER_H

#include "broker/broker_int.h"

#define TIMER_UNIT 40 /* bytes per timer-log entry */
#define TIMER_SLOT 32 /* bytes per wheel slot */

/* One timer-log entry. */
typedef struct timer_entry {
    int64_t pos;        /* its timer-log position */
    int64_t prev;       /* previous entry in the same slot, -1 = none */
    int64_t deliver_ms; /* wall ms the message is due */
    int64_t phys;       /* commit-log offset of the parked record */
    int32_t size;       /* its size */
    bool done;          /* delivered (or re-linked into a later slot) */
} timer_entry_t;

/* One wheel slot: the list of entries due in [time_ms, time_ms + precision). */
typedef struct timer_slot {
    int64_t time_ms; /* the second this slot holds now; another value = empty for any other */
    int64_t first, last;
    int32_t count;
} timer_slot_t;

/* The persisted progress (config/timercheck). */
typedef struct timer_check {
    int64_t enqueue_offset; /* next rmq_sys_wheel_timer queue offset to put into the wheel */
    int64_t read_ms;        /* the slot being delivered (every earlier one is done) */
    int64_t last_phys;      /* commit-log offset of the newest parked record in the wheel */
} timer_check_t;

typedef struct timer_wheel timer_wheel_t;

/* Opens (creating) the timer log and wheel under root, with slots slots of precision_ms
 * and timer-log segments of seg_size bytes. Reads config/timercheck into *chk (zeros when
 * absent). A wheel file of another size (precision or maximum delay changed) is rebuilt
 * from the entries of the log that are not done. NULL (and a log line) on an I/O error. */
timer_wheel_t *timer_wheel_open(broker_t *b, int64_t slots, int64_t precision_ms, int64_t seg_size,
                                timer_check_t *chk);
/* Flushes and closes; NULL is ignored. Write the checkpoint first. */
void timer_wheel_close(timer_wheel_t *w);
/* Appends an entry for (deliver_ms, phys, size) and links it into the slot of slot_ms.
 * False on an I/O error (nothing linked). */
bool timer_wheel_add(timer_wheel_t *w, int64_t slot_ms, int64_t deliver_ms, int64_t phys,
                     int32_t size, int64_t *pos_out);
/* The entries of slot_ms that are not done (in no particular order) appended to *out
 * (a cm_realloc'ed array of *count, capacity *cap). */
void timer_wheel_slot_entries(timer_wheel_t *w, int64_t slot_ms, timer_entry_t **out, size_t *count,
                              size_t *cap);
/* Flags the entry at pos done; drops timer-log segments whose entries (and every older
 * segment's) are all done. */
void timer_wheel_mark_done(timer_wheel_t *w, int64_t pos);
/* The same for n entries (pos sorted here): one read and one write per run of adjacent
 * entries instead of one write each. */
void timer_wheel_mark_done_many(timer_wheel_t *w, int64_t *pos, size_t n);
/* Entries not done yet. */
int64_t timer_wheel_pending(const timer_wheel_t *w);
/* Makes the log and wheel durable, then writes config/timercheck. False on an I/O error. */
bool timer_wheel_checkpoint(timer_wheel_t *w, const timer_check_t *chk);
/* The newest commit-log offset of any entry (-1 when the log is empty). */
int64_t timer_wheel_last_phys(const timer_wheel_t *w);

/* ---- the service (timer.c) */

typedef struct broker_timer broker_timer_t;

broker_timer_t *broker_timer_new(broker_t *b);
void broker_timer_destroy(broker_timer_t *t);

#endif
