/* librmq error codes.
 *
 * One enum holds both worlds, as librdkafka does with Kafka's codes:
 *   0         RMQ_OK
 *   negative  local errors raised by librmq itself (timeouts, bad arguments, bad frames, ...)
 *   positive  a RocketMQ broker/name-server response code, numbered exactly as the remoting
 *             protocol numbers it (2 SYSTEM_BUSY, 13 MESSAGE_ILLEGAL, 17 TOPIC_NOT_EXIST, ...).
 * A positive value not listed here is still a valid broker code; rmq_err_name() then answers
 * "CODE_<n>". */
#ifndef RMQ_ERR_H
#define RMQ_ERR_H

#include <rmq/defs.h>

RMQ_BEGIN_DECLS

typedef enum rmq_err {
    RMQ_OK = 0,

    /* Local errors. */
    RMQ_ERR_UNKNOWN = -1,          /* an error with no better code */
    RMQ_ERR_INVALID_ARG = -2,      /* NULL or out-of-range argument */
    RMQ_ERR_NO_MEMORY = -3,        /* allocation failed */
    RMQ_ERR_TIMEOUT = -4,          /* no answer in time */
    RMQ_ERR_NO_ROUTE = -5,         /* no route / no writable queue for the topic */
    RMQ_ERR_NOT_STARTED = -6,      /* handle used before *_start() */
    RMQ_ERR_SHUTDOWN = -7,         /* handle is shutting down or was shut down */
    RMQ_ERR_IO = -8,               /* file system error (see errstr / log) */
    RMQ_ERR_NETWORK = -9,          /* connect failed or connection lost */
    RMQ_ERR_UNKNOWN_KEY = -10,     /* configuration key librmq does not know */
    RMQ_ERR_BAD_VALUE = -11,       /* configuration value of the wrong type or range */
    RMQ_ERR_MSG_TOO_LARGE = -12,   /* body larger than maxMessageSize */
    RMQ_ERR_BAD_TOPIC = -13,       /* empty, too long or illegal topic name */
    RMQ_ERR_TRUNCATED = -14,       /* input ends before the structure it announces */
    RMQ_ERR_MALFORMED = -15,       /* input violates the format (lengths that lie, ...) */
    RMQ_ERR_FRAME_TOO_LARGE = -16, /* remoting frame over the 16 MiB limit */
    RMQ_ERR_BAD_JSON = -17,        /* JSON text that does not parse */
    RMQ_ERR_BAD_PROPERTIES = -18,  /* message properties string that does not parse */
    RMQ_ERR_BAD_MAGIC = -19,       /* stored record with an unknown magic code */
    RMQ_ERR_BAD_CRC = -20,         /* stored body whose CRC does not match */
    RMQ_ERR_COMPRESSION = -21,     /* body (de)compression failed */
    RMQ_ERR_UNSUPPORTED = -22,     /* feature not built in or not supported */
    RMQ_ERR_NOT_FOUND = -23,       /* nothing at that key / offset */
    RMQ_ERR_STATE = -24,           /* call not valid in the handle's current state */
    RMQ_ERR_DISK_FULL = -25,       /* disk usage over diskMaxUsedSpaceRatio: writes refused */
    RMQ_ERR_BUSY = -26,            /* local queue full: try again later */

    /* RocketMQ response codes (remoting protocol numbering). */
    RMQ_ERR_SYSTEM_ERROR = 1,
    RMQ_ERR_SYSTEM_BUSY = 2,
    RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED = 3,
    RMQ_ERR_TRANSACTION_FAILED = 4,
    RMQ_ERR_FLUSH_DISK_TIMEOUT = 10,
    RMQ_ERR_SLAVE_NOT_AVAILABLE = 11,
    RMQ_ERR_FLUSH_SLAVE_TIMEOUT = 12,
    RMQ_ERR_MESSAGE_ILLEGAL = 13,
    RMQ_ERR_SERVICE_NOT_AVAILABLE = 14,
    RMQ_ERR_VERSION_NOT_SUPPORTED = 15,
    RMQ_ERR_NO_PERMISSION = 16,
    RMQ_ERR_TOPIC_NOT_EXIST = 17,
    RMQ_ERR_TOPIC_EXIST_ALREADY = 18,
    RMQ_ERR_PULL_NOT_FOUND = 19,
    RMQ_ERR_PULL_RETRY_IMMEDIATELY = 20,
    RMQ_ERR_PULL_OFFSET_MOVED = 21,
    RMQ_ERR_QUERY_NOT_FOUND = 22,
    RMQ_ERR_SUBSCRIPTION_PARSE_FAILED = 23,
    RMQ_ERR_SUBSCRIPTION_NOT_EXIST = 24,
    RMQ_ERR_SUBSCRIPTION_NOT_LATEST = 25,
    RMQ_ERR_SUBSCRIPTION_GROUP_NOT_EXIST = 26,
    RMQ_ERR_FILTER_DATA_NOT_EXIST = 27,
    RMQ_ERR_FILTER_DATA_NOT_LATEST = 28,
    RMQ_ERR_TRANSACTION_SHOULD_COMMIT = 200,
    RMQ_ERR_TRANSACTION_SHOULD_ROLLBACK = 201,
    RMQ_ERR_TRANSACTION_STATE_UNKNOW = 202,
    RMQ_ERR_TRANSACTION_STATE_GROUP_WRONG = 203,
    RMQ_ERR_NO_BUYER_ID = 204,
    RMQ_ERR_NOT_IN_CURRENT_UNIT = 205,
    RMQ_ERR_CONSUMER_NOT_ONLINE = 206,
    RMQ_ERR_CONSUME_MSG_TIMEOUT = 207,
    RMQ_ERR_NO_MESSAGE = 208,
    RMQ_ERR_FLOW_CONTROL = 215
} rmq_err_t;

/* A human sentence for err ("Topic does not exist", ...). Never NULL; static storage. */
RMQ_EXPORT const char *rmq_err_str(rmq_err_t err);

/* The code's name without the RMQ_ERR_ prefix ("TIMEOUT", "SYSTEM_BUSY", "OK"); an unlisted
 * positive broker code gives "CODE_<n>" written into thread-local storage. Never NULL. */
RMQ_EXPORT const char *rmq_err_name(rmq_err_t err);

RMQ_END_DECLS

#endif
