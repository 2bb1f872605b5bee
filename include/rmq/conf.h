/* librmq configuration: a string key/value object with RocketMQ's own key names.
 *
 * Keys are the ones RocketMQ users know: client keys as in the Java client (namesrvAddr,
 * producerGroup, sendMsgTimeout, ...) and broker keys exactly as in broker.conf (listenPort,
 * brokerName, storePathRootDir, flushDiskType, ...). doc/CONFIGURATION.md lists every key,
 * its type, default and meaning. A key that is not set reads as RocketMQ's default.
 *
 * Thread safety: a conf is not locked; do not change one from two threads at once. A conf
 * handed to a *_new() call belongs to that handle from then on (on success only). */
#ifndef RMQ_CONF_H
#define RMQ_CONF_H

#include <rmq/defs.h>
#include <rmq/err.h>

RMQ_BEGIN_DECLS

typedef struct rmq_conf_s rmq_conf_t;

/* Log levels passed to the log callback (syslog numbering). */
typedef enum rmq_log_level {
    RMQ_LOG_ERROR = 3,
    RMQ_LOG_WARN = 4,
    RMQ_LOG_INFO = 6,
    RMQ_LOG_DEBUG = 7
} rmq_log_level_t;

/* Log callback: level, one line of text without a trailing newline, and the opaque given to
 * rmq_conf_set_log_cb(). Called from whichever librmq thread logs (I/O, flush, scheduler or
 * the caller's own thread); it must be thread-safe and must not block for long. */
typedef void(rmq_log_cb_t)(int level, const char *line, void *opaque);

/* A new empty configuration (every key at its default). NULL only when out of memory. */
RMQ_EXPORT rmq_conf_t *rmq_conf_new(void);

/* Frees conf. NULL is fine. */
RMQ_EXPORT void rmq_conf_destroy(rmq_conf_t *conf);

/* A deep copy of conf (values, log callback and its opaque). NULL only when out of memory. */
RMQ_EXPORT rmq_conf_t *rmq_conf_dup(const rmq_conf_t *conf);

/* Sets key to value after checking both.
 * Returns RMQ_OK; RMQ_ERR_UNKNOWN_KEY when librmq does not know key; RMQ_ERR_BAD_VALUE when
 * value does not fit the key's type or range; RMQ_ERR_INVALID_ARG for NULL arguments.
 * On error a sentence naming the key (and value) is written to errstr (if not NULL). */
RMQ_EXPORT rmq_err_t rmq_conf_set(rmq_conf_t *conf, const char *key, const char *value,
                                  char *errstr, size_t errstr_size);

/* Copies the value of key (the default when it was never set) into dest, NUL-terminated.
 * *dest_size is the size of dest on input and the size needed (with the NUL) on output.
 * dest may be NULL to ask for the size. Returns RMQ_OK, RMQ_ERR_UNKNOWN_KEY, or
 * RMQ_ERR_INVALID_ARG when dest is too small (*dest_size then tells the size needed). */
RMQ_EXPORT rmq_err_t rmq_conf_get(const rmq_conf_t *conf, const char *key, char *dest,
                                  size_t *dest_size);

/* Loads a key=value file (RocketMQ's broker.conf format: one pair a line, '#' starts a
 * comment line, blank lines and spaces around '=' ignored) into conf. Stops at the first
 * bad line; errstr then names the file, the line number and the key. Keys already set and
 * not in the file keep their values. */
RMQ_EXPORT rmq_err_t rmq_conf_load_file(rmq_conf_t *conf, const char *path, char *errstr,
                                        size_t errstr_size);

/* Sets the log callback of the handles made from conf. Default: lines to stderr at level
 * INFO and above. cb NULL restores the default. */
RMQ_EXPORT void rmq_conf_set_log_cb(rmq_conf_t *conf, rmq_log_cb_t *cb, void *opaque);

RMQ_END_DECLS

#endif
