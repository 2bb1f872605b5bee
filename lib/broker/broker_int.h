/* lib/broker/broker_int.h: the broker layer's shared internal header — the broker struct,
 * the processor API every request handler registers through, and the services the
 * processors share (topics, offsets, long polling, metadata managers).
 *
 * Threads. Requests are decoded on lib/net's I/O thread. A processor registered with
 * BROKER_EXEC_IO runs there and must not block (no fsync, no waits); one registered with
 * BROKER_EXEC_SEND runs on the broker's send thread(s), which may block in store_append
 * (SYNC_FLUSH). Either may keep a request and answer it later from any thread (long
 * polling does): a request ends exactly once, with broker_reply() or broker_req_end().
 *
 * Metadata managers (namesrv.c, clients.c, subgroups.c, locks.c, register.c) plug in with
 * broker_meta_start() / broker_meta_stop(): start registers their processors with
 * broker_set_processor() and fills the meta fields of broker_t; stop frees them. */
#ifndef RMQ_BROKER_INT_H
#define RMQ_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "broker/clients.h"
#include "broker/namesrv.h"
#include "proto/proto.h"
#include "store/store.h"

#include <rmq/broker.h>

typedef struct rmq_broker_s broker_t;

/* lib/net's handles (lib/net/net.h); the broker only holds pointers to them. */
struct net_loop;
struct net_conn;
struct net_server;

/* Request codes below this index the processor table; larger codes (5.x POP, 2000xx) are
 * answered REQUEST_CODE_NOT_SUPPORTED. */
#define BROKER_MAX_CODE 1024

/* Where a processor runs (see the header comment). */
typedef enum broker_exec { BROKER_EXEC_IO = 0, BROKER_EXEC_SEND = 1 } broker_exec_t;

/* One request in flight. Owned by the processor it was handed to until it ends. */
typedef struct broker_req {
    proto_cmd_t cmd;         /* the decoded request (owned) */
    struct net_conn *conn;   /* the connection it came over; a reference is held until the end */
    proto_addr_t peer;       /* the remote address (a send's born host) */
    char peer_text[64];      /* the same as "ip:port" */
    int64_t received_ms;     /* cm_mono_ms() when decoded: send-queue wait, long-poll start */
    struct broker_req *next; /* free for the current owner's lists (send queue, hold table) */
    struct rmq_broker_s *owner; /* whose free list takes it back at its end */
} broker_req_t;

typedef void(broker_proc_fn)(broker_t *b, broker_req_t *req);

/* Registers fn for request code (0 <= code < BROKER_MAX_CODE), replacing any earlier one.
 * Call before the listener accepts (from broker_meta_start() or the core's start). */
void broker_set_processor(broker_t *b, int32_t code, broker_proc_fn *fn, broker_exec_t exec);

/* Sends resp (unless the request was oneway) and ends req: frees resp's contents and req,
 * drops the connection reference. resp must be a response to req->cmd (proto_cmd_response;
 * that keeps the request's serialize type). Any thread. */
void broker_reply(broker_t *b, broker_req_t *req, proto_cmd_t *resp);
/* Shorthand: a response with code and remark (NULL = none), no ext fields, no body. */
void broker_reply_code(broker_t *b, broker_req_t *req, int32_t code, const char *remark);
/* A request header that did not decode: SYSTEM_ERROR with the decoder's remark, as Java's
 * RemotingCommand.decodeCommandCustomHeader failures are answered. */
void broker_reply_bad_header(broker_t *b, broker_req_t *req, const proto_hdr_err_t *err);
/* The same with a printf-formatted remark (at most 511 bytes). */
void broker_reply_fmt(broker_t *b, broker_req_t *req, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Ends req without answering (oneway requests whose processor had nothing to say). */
void broker_req_end(broker_req_t *req);

/* Sends a request that expects no answer (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_
 * STATE) to a client connection; the oneway flag is set here. cmd's contents are freed.
 * False when the connection is gone. Any thread. */
bool broker_send_oneway(broker_t *b, struct net_conn *conn, proto_cmd_t *cmd);

/* ---------------------------------------------------------------- config files (cfgfile.c) */

/* Parses the JSON file at path, or path.bak when path is missing or does not parse (as
 * RocketMQ's ConfigManager falls back). Java's output is accepted (unquoted int keys).
 * NULL when neither is there or readable; *from_bak tells which one was used. */
proto_json_t *broker_cfg_load(const cm_logger_t *log, const char *path, bool *from_bak);
/* Replaces path with text atomically: writes path.tmp, keeps the old file as path.bak,
 * renames. Creates the directory if needed. False (and a log line) on an I/O error. */
bool broker_cfg_write(const cm_logger_t *log, const char *path, const char *text, size_t len);
/* <config_dir>/<file> into dst. */
void broker_cfg_path(const broker_t *b, const char *file, char *dst, size_t size);

/* ---------------------------------------------------------------- topics (topics.c) */

typedef struct broker_topic {
    char name[128];
    int32_t read_queue_nums, write_queue_nums;
    int32_t perm; /* PROTO_PERM_* bits */
    int32_t sys_flag;
    bool order;
    bool multi_tag; /* topicFilterType MULTI_TAG */
} broker_topic_t;

typedef struct broker_topics broker_topics_t;

/* Loads config/topics.json (or its .bak), adds the built-ins of store.md §9 and every
 * queue the store holds. */
broker_topics_t *broker_topics_new(broker_t *b);
void broker_topics_destroy(broker_topics_t *t);
/* Copies topic's config into out (may be NULL); false when unknown. */
bool broker_topics_find(broker_t *b, const char *topic, broker_topic_t *out);
/* Creates or replaces a topic, persists topics.json, bumps the data version and re-registers
 * with the name servers. */
void broker_topics_put(broker_t *b, const broker_topic_t *t);
/* Creates topic (if absent) with queue_nums read and write queues: %RETRY% topics and
 * internal uses. Returns true when the topic exists afterwards. */
bool broker_topics_ensure(broker_t *b, const char *topic, int32_t queue_nums, int32_t perm,
                          int32_t sys_flag);
/* A send to an unknown topic: auto-creation from default_topic as remoting.md §5 says.
 * Fills out and returns RMQ_OK, or returns RMQ_ERR_TOPIC_NOT_EXIST. */
rmq_err_t broker_topics_create_on_send(broker_t *b, const char *topic, const char *default_topic,
                                       int32_t queue_nums, int32_t sys_flag, broker_topic_t *out);
/* The topic table and its data version, as REGISTER_BROKER carries them. out is zeroed by
 * the caller and freed with proto_register_broker_body_free(). */
void broker_topics_register_body(broker_t *b, proto_register_broker_body_t *out);
/* Writes topics.json if the table changed since it was last written (the service thread
 * calls it every second, destroy once more). */
void broker_topics_flush(broker_t *b);
/* Current data version (counter bumps on every change). */
proto_data_version_t broker_topics_data_version(broker_t *b);
size_t broker_topics_count(broker_t *b);

/* ---------------------------------------------------------------- offsets (offsets.c) */

typedef struct broker_offsets broker_offsets_t;

broker_offsets_t *broker_offsets_new(broker_t *b); /* loads config/consumerOffset.json */
void broker_offsets_destroy(broker_offsets_t *o);  /* persists first */
/* The committed offset of group on topic/queue_id; -1 when none. */
int64_t broker_offsets_get(broker_t *b, const char *group, const char *topic, int32_t queue_id);
void broker_offsets_commit(broker_t *b, const char *group, const char *topic, int32_t queue_id,
                           int64_t offset);
/* Writes consumerOffset.json now (the timer calls it every flushConsumerOffsetInterval). */
void broker_offsets_persist(broker_t *b);

/* ---------------------------------------------------------------- long polling (pull.c) */

typedef struct broker_hold broker_hold_t;

broker_hold_t *broker_hold_new(broker_t *b);
/* Answers every parked pull (re-run once, as on expiry) and frees the table. */
void broker_hold_destroy(broker_hold_t *h);
/* The store's dispatch callback (store_config_t.on_dispatch, arg = broker): marks the queue
 * as having news and wakes the I/O thread; the parked pulls are re-run there. */
void broker_hold_on_dispatch(void *arg, const char *topic, int32_t queue_id, int64_t max_offset,
                             int64_t tags_code, int64_t store_timestamp);

/* ---------------------------------------------------------------- delayed delivery (schedule.c) */

typedef struct broker_sched broker_sched_t;

/* Loads config/delayOffset.json and starts the delivery thread (after the store is open). */
broker_sched_t *broker_sched_new(broker_t *b);
/* Stops and joins the thread, then writes delayOffset.json. Call once no send runs. */
void broker_sched_destroy(broker_sched_t *s);
/* A schedule-topic entry due at the wall time due was dispatched (any thread, under the
 * store's append lock): wakes the thread if it sleeps past due. NULL s is ignored. */
void broker_sched_on_dispatch(broker_sched_t *s, int64_t due);
/* The DELAY property of an encoded properties string as Java parses it: 0 when absent or
 * negative, -1 when not a number. Not clamped to the configured levels. */
int32_t broker_sched_level(const char *props, size_t len);
/* A parked record (schedule or timer topic) re-encoded for its REAL_TOPIC / REAL_QID, as
 * ScheduleMessageService.messageTimeup builds it. False when it has no usable REAL_TOPIC /
 * REAL_QID (RocketMQ drops such a record). */
bool broker_sched_build_delivery(broker_t *b, const proto_record_t *in, cm_buf_t *out);

/* ---------------------------------------------------------------- timer messages (timer.c) */

#define BROKER_TIMER_TOPIC "rmq_sys_wheel_timer" /* where timer messages wait, queue 0 */

typedef struct broker_timer broker_timer_t;

/* Whether name (len bytes) is one of the keys broker_timer_deliver_ms reads. */
bool broker_timer_key(const char *name, size_t len);
/* The deliver time a send's properties ask for (TIMER_DELAY_SEC, TIMER_DELAY_MS,
 * TIMER_DELIVER_MS, __STARTDELIVERTIME, first found): 0 when none or already due (a normal
 * message then), the wall ms otherwise; -1 with remark filled when it is not a number, past
 * timerMaxDelaySec, or timer messages are off (timerWheelEnable=false). */
int64_t broker_timer_deliver_ms(broker_t *b, const char *props, size_t len, char *remark,
                                size_t remark_size);
/* A timer-topic entry was dispatched (under the store's append lock): wakes the thread. */
void broker_timer_on_dispatch(broker_timer_t *t);
/* Timer messages waiting (stats). */
int64_t broker_timer_pending(broker_timer_t *t);

/* ---------------------------------------------------------------- transactions (transaction.c) */

#define BROKER_TX_HALF_TOPIC "RMQ_SYS_TRANS_HALF_TOPIC"       /* half messages, queue 0 */
#define BROKER_TX_OP_TOPIC "RMQ_SYS_TRANS_OP_HALF_TOPIC"      /* op records, queue 0 */
#define BROKER_TX_MAX_TIME_TOPIC "TRANS_CHECK_MAX_TIME_TOPIC" /* halves given up on */

typedef struct broker_tx broker_tx_t;

/* Registers END_TRANSACTION and starts the check thread (masters only). Call after
 * broker_meta_start (the thread asks producer groups) and before requests are served. */
broker_tx_t *broker_tx_new(broker_t *b);
/* Stops and joins the check thread. Call once no send thread runs. */
void broker_tx_destroy(broker_tx_t *tx);
/* A send with TRAN_MSG=true: rec (whose properties already carry REAL_TOPIC / REAL_QID) is
 * redirected to the half topic, queue 0, transaction bits cleared. */
void broker_tx_park_half(broker_t *b, proto_record_t *rec);

/* ---------------------------------------------------------------- send helpers (send.c) */

/* Encodes properties in the order a java.util.HashMap holds them, which is how a Java broker
 * writes stored properties: p lists them in insertion order; peak is the largest number of
 * entries the map ever held (it fixes the capacity). Appends to out, no trailing separator. */
void broker_props_java_order(const proto_props_t *p, size_t peak, cm_buf_t *out);

/* ---------------------------------------------------------------- core processors */

void broker_send_register(broker_t *b);     /* send.c: 10, 310, 320 */
/* The buffers a round of sends stamps its records and properties in, kept by the caller from
 * round to round (each thread that runs rounds has its own); send_scratch_free at the end. */
typedef struct send_scratch {
    cm_buf_t recs, props;
} send_scratch_t;
void send_scratch_free(send_scratch_t *sc);
/* Runs n requests taken from the send queue in order (the send thread, or the loop thread for
 * a read's single sends): the single sends among them are stored together
 * (store_append_many), each answered as on its own. */
void broker_send_many(broker_t *b, broker_req_t **reqs, size_t n, send_scratch_t *sc);
/* True when req is a single send (10, 310) that broker_send_many may run on the loop thread:
 * it never blocks there under ASYNC_FLUSH. */
bool broker_send_is_single(broker_t *b, const broker_req_t *req);
void broker_pull_register(broker_t *b);     /* pull.c: 11 */
void broker_offsets_register(broker_t *b);  /* offsets.c: 14, 15, 43 */
void broker_admin_register(broker_t *b);    /* admin.c: 203, 309 */
void broker_query_register(broker_t *b);    /* query.c: 12, 29-33 */
void broker_topics_register(broker_t *b);   /* topics.c: 17 */
void broker_sendback_register(broker_t *b); /* sendback.c: 36 */

void broker_resetoffset_register(broker_t *b); /* resetoffset.c: 222 (backtracking) */

/* ---------------------------------------------------------------- metadata managers */

/* Implemented by the metadata files (register.c): see namesrv.h. broker_meta_start() runs
 * in rmq_broker_start() after the store, the topic table and lib/net's loop exist and
 * before the listener accepts; broker_meta_stop() in rmq_broker_destroy() while the loop
 * still runs (safe when start never ran). broker_meta_topics_changed() is called by
 * topics.c after every change to the topic table (any thread). */
void broker_meta_start(broker_t *b);
void broker_meta_stop(broker_t *b);
void broker_meta_topics_changed(broker_t *b);

/* ---------------------------------------------------------------- the broker */

typedef struct broker_counters {
    atomic_llong msgs_in, bytes_in;   /* stored by sends */
    atomic_llong msgs_out, bytes_out; /* returned by pulls */
    atomic_llong requests, connections;
    atomic_llong send_busy; /* SYSTEM_BUSY answers (send queue wait) */
    atomic_llong pull_held; /* pulls parked for long polling, total */
} broker_counters_t;

struct rmq_broker_s {
    rmq_conf_t *conf;
    cm_logger_t log;

    /* identity (from conf at rmq_broker_new) */
    char name[128];          /* brokerName */
    char cluster[128];       /* brokerClusterName */
    int64_t broker_id;       /* brokerId */
    char addr[128];          /* "ip:port" clients use; set at start */
    proto_addr_t store_host; /* the same, parsed: STOREHOSTADDRESS of every record */
    char config_dir[1024];   /* <storePathRootDir>/config */
    bool auto_create_topic;  /* autoCreateTopicEnable */
    int32_t max_message_size;
    int64_t send_wait_max_ms; /* waitTimeMillsInSendQueue */
    bool sync_master;         /* brokerRole SYNC_MASTER (read once: every send reply asks) */

    /* storage */
    store_config_t store_cfg;
    store_t *store;

    /* transport (lib/net) */
    struct net_loop *loop;
    struct net_server *server;

    /* processors, indexed by request code */
    broker_proc_fn *procs[BROKER_MAX_CODE];
    uint8_t exec[BROKER_MAX_CODE];

    /* send executor: a FIFO drained by the send thread(s) */
    pthread_mutex_t send_mu;
    pthread_cond_t send_cv;
    broker_req_t *send_head, *send_tail;
    long send_queued, send_queued_bytes;
    int send_active; /* send threads running requests they took (under send_mu) */
    /* The sends of the read being dispatched (loop thread only): stored right there when
     * the send threads are idle, else queued for them (on_read_end). */
    broker_req_t *read_head, *read_tail;
    bool send_stop;
    pthread_t *send_threads;
    int send_thread_count;

    /* core managers (owned here) */
    broker_topics_t *topics;
    broker_offsets_t *offsets;
    broker_hold_t *hold;
    broker_sched_t *_Atomic sched; /* read by the store's dispatch callback */
    broker_timer_t *_Atomic timer; /* likewise; NULL with timerWheelEnable=false */
    broker_tx_t *tx;               /* transactions: END_TRANSACTION and the check thread */

    /* metadata managers (owned by broker_meta_start / broker_meta_stop) */
    nsrv_t *namesrv;
    broker_clients_t *clients;
    broker_subgroups_t *subgroups;
    broker_locks_t *locks;
    void *registrar; /* register.c's state */
    /* broker_meta_stop() leaves the four pointers above NULL. */

    /* service thread: persists consumer offsets periodically */
    pthread_mutex_t svc_mu;
    pthread_cond_t svc_cv;
    pthread_t svc_thread;
    bool svc_running, svc_stop;

    broker_counters_t counters;
    /* Ended requests kept for the next ones: any thread pushes one (lock-free), the loop
     * thread, which alone makes requests, takes them all at once into req_local. */
    _Atomic(broker_req_t *) req_returned;
    broker_req_t *req_local; /* loop thread only */
    atomic_int req_kept;     /* in both lists, about */
    send_scratch_t loop_scratch; /* broker_send_many's buffers on the loop thread */
    bool started;
    atomic_bool ready; /* the processor table is complete: requests are dispatched */
    bool stopping;     /* loop thread only: no more processors or connection hooks */
};

#endif
