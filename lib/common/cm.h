/* lib/common: small pieces every layer shares — allocation, byte buffers, big-endian
 * access, a string-keyed hash map, clocks, logging, Java-compatible string hashing, CRC-32
 * and the configuration key registry. No sockets, no threads of its own. */
#ifndef RMQ_CM_H
#define RMQ_CM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <rmq/conf.h>
#include <rmq/err.h>

/* ---- allocation: out of memory is fatal inside the library (as in Redis); the public API
 * never returns half-built objects. */
void *cm_malloc(size_t n);
void *cm_calloc(size_t count, size_t n);
void *cm_realloc(void *p, size_t n);
char *cm_strdup(const char *s);
char *cm_strndup(const char *s, size_t n);
void cm_free(void *p);
/* Frees p unless it points into [block, block + len): a text kept inside its owner's own
 * allocation is freed with the owner. */
void cm_free_outside(void *p, const void *block, size_t len);
/* Copies src (NULL = "") into dst[size], cut to fit and always NUL-terminated (size > 0):
 * what snprintf(dst, size, "%s", src) does, without the formatting machinery. */
void cm_strcpy_cut(char *dst, size_t size, const char *src);
/* printf into a new string. */
char *cm_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes a formatted sentence into errstr (if errstr is non-NULL and size > 0). */
void cm_errstr(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- big-endian access */
static inline uint16_t cm_rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t cm_rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t cm_rd64(const uint8_t *p) {
    return ((uint64_t)cm_rd32(p) << 32) | cm_rd32(p + 4);
}
static inline void cm_wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void cm_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void cm_wr64(uint8_t *p, uint64_t v) {
    cm_wr32(p, (uint32_t)(v >> 32));
    cm_wr32(p + 4, (uint32_t)v);
}

/* ---- growable byte buffer */
typedef struct cm_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} cm_buf_t;

#define CM_BUF_INIT {NULL, 0, 0}
void cm_buf_reserve(cm_buf_t *b, size_t extra);
void cm_buf_append(cm_buf_t *b, const void *data, size_t n);
void cm_buf_append_str(cm_buf_t *b, const char *s);
void cm_buf_printf(cm_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Inline: encoders put single bytes (quotes, separators) several times per frame. */
static inline void cm_buf_put8(cm_buf_t *b, uint8_t v) {
    if (b->len < b->cap)
        b->data[b->len++] = v;
    else
        cm_buf_append(b, &v, 1);
}
void cm_buf_put16(cm_buf_t *b, uint16_t v);
void cm_buf_put32(cm_buf_t *b, uint32_t v);
void cm_buf_put64(cm_buf_t *b, uint64_t v);
/* Decimal text of v, as printf's %lld would write it (no locale, no vfprintf: hot paths
 * format header numbers per frame). cm_i64_text writes at most CM_I64_TEXT bytes with the
 * NUL and returns the length without it. */
#define CM_I64_TEXT 21
size_t cm_i64_text(int64_t v, char *dst);
void cm_buf_put_i64(cm_buf_t *b, int64_t v);
/* Returns the data NUL-terminated (the NUL is not counted in len) and resets b. */
char *cm_buf_take_str(cm_buf_t *b);
void cm_buf_reset(cm_buf_t *b); /* len = 0, keeps the memory */
void cm_buf_free(cm_buf_t *b);

/* ---- string-keyed hash map (keys copied, values borrowed unless a free fn is given) */
typedef struct cm_map cm_map_t;
typedef void(cm_free_fn)(void *value);
cm_map_t *cm_map_new(cm_free_fn *free_value);
void cm_map_destroy(cm_map_t *m);
void *cm_map_get(const cm_map_t *m, const char *key);
/* Inserts or replaces (the old value is freed with free_value). */
void cm_map_put(cm_map_t *m, const char *key, void *value);
/* Removes key; returns its value without freeing it (NULL if absent). */
void *cm_map_take(cm_map_t *m, const char *key);
size_t cm_map_count(const cm_map_t *m);
/* Iteration: *iter starts at 0; returns false at the end. Do not insert while iterating. */
bool cm_map_next(const cm_map_t *m, size_t *iter, const char **key, void **value);

/* ---- files (file.c) */
/* mkdir -p dir (0755). RMQ_ERR_IO naming the directory in why. */
rmq_err_t cm_mkdirs(const char *dir, char *why, size_t why_size);
/* Appends the whole file to out. RMQ_ERR_NOT_FOUND when it does not exist, else RMQ_ERR_IO. */
rmq_err_t cm_file_read(const char *path, cm_buf_t *out, char *why, size_t why_size);
/* Replaces path with data so that no instant lacks a readable file: creates the parent
 * directories, writes and fsyncs path.tmp, keeps the previous file as path.bak (hard link,
 * or a copy where links fail), renames, fsyncs the directory. RMQ_ERR_IO with why. */
rmq_err_t cm_file_replace(const char *path, const void *data, size_t len, char *why,
                          size_t why_size);

/* ---- clocks: every time reading in the library goes through these */
int64_t cm_now_ms(void);   /* wall clock, ms since the epoch (stored timestamps) */
int64_t cm_mono_ms(void);  /* monotonic ms (timeouts, intervals) */
int64_t cm_mono_ns(void);  /* monotonic ns (latency measurement) */
/* The monotonic time in_ms from now (at least now) as an absolute pthread_cond_timedwait()
 * deadline; the condition variable must use the monotonic clock (cm_cond_init_mono). */
struct timespec cm_mono_deadline(int64_t in_ms);
/* pthread_cond_init with CLOCK_MONOTONIC, so waits do not move with the wall clock. */
void cm_cond_init_mono(pthread_cond_t *cv);

/* ---- Java-compatible hashing */
/* Java String.hashCode() of UTF-8 text (hashed as UTF-16 code units, int32 wrap-around). */
int32_t cm_java_hash(const char *s, size_t len);

/* ---- CRC-32 (crc32.c) */
/* zlib's crc32(): reflected CRC-32 of polynomial 0x04C11DB7 (gzip, PNG; RocketMQ's BODYCRC
 * before its 0x7FFFFFFF mask), chained the same way: start from 0, then
 * crc = cm_crc32(crc, part, n) over consecutive parts. p may be NULL only when n is 0 (the
 * result is then crc). Uses carry-less multiplication where the CPU has it (below). */
uint32_t cm_crc32(uint32_t crc, const void *p, size_t n);
/* The ways cm_crc32 can compute, for tests: tables on any CPU; on x86-64 CPUs that have
 * them, carry-less multiplication (PCLMULQDQ with SSE4.1) and the same with AVX encoding.
 * cm_crc32 takes the best one the CPU has, which cm_crc32_best_path() names; cm_crc32_by()
 * computes by a path no better than that. */
typedef enum cm_crc32_path { CM_CRC32_TABLES, CM_CRC32_CLMUL, CM_CRC32_CLMUL_AVX } cm_crc32_path_t;
cm_crc32_path_t cm_crc32_best_path(void);
uint32_t cm_crc32_by(cm_crc32_path_t path, uint32_t crc, const void *p, size_t n);

/* ---- logging: a logger hangs off each handle; NULL means the default (stderr, INFO+). */
typedef struct cm_logger {
    rmq_log_cb_t *cb;
    void *opaque;
    int level; /* lines above this level are dropped */
} cm_logger_t;

void cm_log(const cm_logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define cm_error(lg, ...) cm_log((lg), RMQ_LOG_ERROR, __VA_ARGS__)
#define cm_warn(lg, ...) cm_log((lg), RMQ_LOG_WARN, __VA_ARGS__)
#define cm_info(lg, ...) cm_log((lg), RMQ_LOG_INFO, __VA_ARGS__)
#define cm_debug(lg, ...) cm_log((lg), RMQ_LOG_DEBUG, __VA_ARGS__)

/* ---- configuration, internal view (public API in include/rmq/conf.h) */
typedef enum cm_conf_type {
    CM_CONF_INT,   /* int64 within [min, max] */
    CM_CONF_BOOL,  /* true/false */
    CM_CONF_STR,   /* any text */
    CM_CONF_ENUM,  /* one of the '|'-separated names in choices */
    CM_CONF_ADDRS, /* host:port[;host:port...] */
    CM_CONF_DELAYS /* "1s 5s 10m 2h ..." delay level list */
} cm_conf_type_t;

typedef struct cm_conf_key {
    const char *name;
    cm_conf_type_t type;
    const char *def;        /* default as text ("" = unset/auto) */
    const char *broker_def; /* broker's default where RocketMQ's broker differs, else NULL */
    int64_t min, max;       /* CM_CONF_INT range */
    const char *choices;    /* CM_CONF_ENUM */
    const char *doc;        /* one line for doc/CONFIGURATION.md */
} cm_conf_key_t;

/* The registry of every key librmq knows, NULL-name terminated. */
extern const cm_conf_key_t cm_conf_keys[];
const cm_conf_key_t *cm_conf_key_find(const char *name);

/* Typed reads for library code. Unknown keys are a programming error (assert). The value is
 * the one set, else the default (the broker default when broker is true). ${HOME} in a
 * string value or default is expanded. cm_conf_str returns memory owned by conf, valid until
 * the key is set again. */
int64_t cm_conf_int(const rmq_conf_t *conf, const char *key, bool broker);
bool cm_conf_bool(const rmq_conf_t *conf, const char *key, bool broker);
const char *cm_conf_str(const rmq_conf_t *conf, const char *key, bool broker);
bool cm_conf_is_set(const rmq_conf_t *conf, const char *key);
/* The transaction check-back callback and opaque set with rmq_conf_set_tx_check_cb()
 * (include/rmq/producer.h), untyped here: the producer casts cb back to rmq_tx_check_cb_t. */
void cm_conf_tx_check(const rmq_conf_t *conf, void (**cb)(void), void **opaque);
/* A logger configured from conf's log callback. */
cm_logger_t cm_conf_logger(const rmq_conf_t *conf);

/* Parses a delay level list ("1s 5s 10m 2h", units s m h d) into ms values. Returns the
 * number of levels (0 on a bad list); writes at most max entries. */
int cm_parse_delay_levels(const char *text, int64_t *ms, int max);

#endif
