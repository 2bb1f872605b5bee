/* librmq: Apache RocketMQ client and embeddable broker in one C11 library.
 *
 * This umbrella header includes every public header. Everything public starts with rmq_ /
 * RMQ_; handles are opaque; functions return rmq_err_t (include/rmq/err.h).
 * See doc/ for the user guide and doc/CONFIGURATION.md for every configuration key. */
#ifndef RMQ_RMQ_H
#define RMQ_RMQ_H

#include <rmq/defs.h>
#include <rmq/version.h>
#include <rmq/err.h>
#include <rmq/conf.h>
#include <rmq/msg.h>
#include <rmq/broker.h>
#include <rmq/producer.h>
#include <rmq/consumer.h>

RMQ_BEGIN_DECLS

/* The library's version as "MAJOR.MINOR.PATCH" (may differ from RMQ_VERSION_STRING when a
 * program runs with a newer librmq.so than it was built against). */
RMQ_EXPORT const char *rmq_version(void);

/* The library's version as RMQ_VERSION_INT encodes it: 0xMMmmpp. */
RMQ_EXPORT int rmq_version_int(void);

RMQ_END_DECLS

#endif
