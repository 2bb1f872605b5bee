/* librmq: export macro and C++ linkage guards shared by every public header. */
#ifndef RMQ_DEFS_H
#define RMQ_DEFS_H

#include <stddef.h>
#include <stdint.h>

#if defined(RMQ_BUILDING_LIBRARY) && defined(__GNUC__)
#define RMQ_EXPORT __attribute__((visibility("default")))
#else
#define RMQ_EXPORT
#endif

#ifdef __cplusplus
#define RMQ_BEGIN_DECLS extern "C" {
#define RMQ_END_DECLS }
#else
#define RMQ_BEGIN_DECLS
#define RMQ_END_DECLS
#endif

RMQ_BEGIN_DECLS

/* Frees memory librmq returned to the caller (rmq_broker_stats_json, ...). NULL is ignored. */
RMQ_EXPORT void rmq_free(void *ptr);

RMQ_END_DECLS

#endif
