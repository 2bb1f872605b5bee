/* Helpers for the broker tests: an embedded broker in a temp directory (public API) and a
 * raw remoting connection over loopback (blocking socket, frames from lib/proto), so the
 * tests see exactly the bytes a Java client would. */
#ifndef RMQ_TEST_TB_H
#define RMQ_TEST_TB_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <rmq/rmq.h>

#include "proto/proto.h"
#include "../testdata.h"

/* ---------------------------------------------------------------- broker */

static inline char *tb_tempdir(void) {
    return td_tempdir("rmq-broker-test");
}

static inline void tb_rmrf(const char *dir) {
    td_rmrf(dir);
}

/* A broker (not started yet) for 127.0.0.1 and a free port with a small store in dir.
 * Extra settings come as key, value pairs in ap, ending with NULL. */
static inline rmq_broker_t *tb_broker_newv(const char *dir, va_list ap) {
    char err[512];
    rmq_conf_t *conf = rmq_conf_new();
    char *store = cm_sprintf("%s/store", dir);
    const char *pairs[][2] = {{"listenPort", "0"},
                              {"brokerName", "broker-a"},
                              {"storePathRootDir", store},
                              {"mappedFileSizeCommitLog", "16777216"},
                              {"mappedFileSizeConsumeQueue", "60000"},
                              {"maxIndexNum", "10000"},
                              {"maxHashSlotNum", "2000"},
                              {"logLevel", "WARN"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        cr_assert_eq(rmq_conf_set(conf, pairs[i][0], pairs[i][1], err, sizeof err), RMQ_OK, "%s",
                     err);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        cr_assert_eq(rmq_conf_set(conf, k, v, err, sizeof err), RMQ_OK, "%s", err);
    }
    cm_free(store);
    rmq_broker_t *b = rmq_broker_new(conf, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    return b;
}

static inline rmq_broker_t *tb_broker_new(const char *dir, ...) {
    va_list ap;
    va_start(ap, dir);
    rmq_broker_t *b = tb_broker_newv(dir, ap);
    va_end(ap);
    return b;
}

static inline void tb_broker_run(rmq_broker_t *b) {
    char err[512];
    cr_assert_eq(rmq_broker_start(b, err, sizeof err), RMQ_OK, "%s", err);
    cr_assert_not_null(rmq_broker_addr(b));
}

/* Starts a broker as tb_broker_new() makes it. */
static inline rmq_broker_t *tb_broker_start(const char *dir, ...) {
    va_list ap;
    va_start(ap, dir);
    rmq_broker_t *b = tb_broker_newv(dir, ap);
    va_end(ap);
    tb_broker_run(b);
    return b;
}

/* ---------------------------------------------------------------- raw connection */

static inline int tb_connect(const char *addr) {
    const char *colon = strrchr(addr, ':');
    cr_assert_not_null(colon);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect %s", addr);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline bool tb_write_all(int fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads exactly len bytes; false on EOF, error or timeout. */
static inline bool tb_read_all(int fd, void *data, size_t len) {
    uint8_t *p = data;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Sends cmd (freed). */
static inline bool tb_send(int fd, proto_cmd_t *cmd) {
    cm_buf_t out = CM_BUF_INIT;
    cr_assert_eq(proto_frame_encode(cmd, &out), RMQ_OK);
    bool ok = tb_write_all(fd, out.data, out.len);
    cm_buf_free(&out);
    proto_cmd_free(cmd);
    return ok;
}

/* Reads one frame into cmd; false when the connection closed (or timed out). */
static inline bool tb_recv(int fd, proto_cmd_t *cmd) {
    uint8_t len4[4];
    if (!tb_read_all(fd, len4, 4)) return false;
    size_t total = 4 + cm_rd32(len4);
    uint8_t *buf = cm_malloc(total);
    memcpy(buf, len4, 4);
    bool ok = tb_read_all(fd, buf + 4, total - 4);
    proto_cmd_init(cmd);
    if (ok) cr_assert_eq(proto_frame_decode(buf, total, PROTO_MAX_FRAME, cmd), RMQ_OK);
    cm_free(buf);
    return ok;
}

/* Reads frames until the response with this opaque arrives (skipping broker-initiated
 * oneway requests and other responses). */
static inline void tb_recv_for(int fd, int32_t opaque, proto_cmd_t *resp) {
    for (;;) {
        cr_assert(tb_recv(fd, resp), "no response (opaque %d)", opaque);
        if (proto_cmd_is_response(resp) && resp->opaque == opaque) return;
        proto_cmd_free(resp);
    }
}

/* Sends a request and returns its response. */
static inline void tb_call(int fd, proto_cmd_t *req, proto_cmd_t *resp) {
    int32_t opaque = req->opaque;
    cr_assert(tb_send(fd, req));
    tb_recv_for(fd, opaque, resp);
}

static inline int32_t tb_next_opaque(void) {
    static int32_t opaque = 1000;
    return __atomic_add_fetch(&opaque, 1, __ATOMIC_RELAXED);
}

/* A SEND_MESSAGE_V2 header as the Java client fills it (group tpg, born now); the caller
 * may set more fields before tb_send_cmd(). properties must outlive the encode. */
static inline void tb_send_header(proto_send_req_t *h, const char *topic, int32_t queue_id,
                                  const char *properties) {
    proto_send_req_init(h);
    h->producer_group = "tpg";
    h->topic = topic;
    h->queue_id = queue_id;
    h->born_timestamp = cm_now_ms();
    h->properties = properties;
}

/* The SEND_MESSAGE_V2 request for h, with a copy of body. */
static inline void tb_send_cmd(proto_cmd_t *cmd, const proto_send_req_t *h, const void *body,
                               size_t body_len) {
    proto_cmd_request(cmd, PROTO_SEND_MESSAGE_V2, tb_next_opaque());
    proto_send_req_encode(h, PROTO_SEND_MESSAGE_V2, &cmd->ext);
    proto_cmd_set_body(cmd, body, body_len);
}

/* p as the properties text of a send (caller frees). */
static inline char *tb_props_text(const proto_props_t *p) {
    cm_buf_t props = CM_BUF_INIT;
    proto_props_encode(p, &props);
    return cm_buf_take_str(&props);
}

/* A SEND_MESSAGE_V2 request as the Java client builds it. */
static inline void tb_send_req(proto_cmd_t *cmd, const char *topic, int32_t queue_id,
                               const char *tags, const char *keys, const void *body,
                               size_t body_len) {
    proto_props_t p = {0};
    if (keys) proto_props_set(&p, PROP_KEYS, keys);
    proto_props_set(&p, PROP_WAIT, "true");
    if (tags) proto_props_set(&p, PROP_TAGS, tags);
    char *props_text = tb_props_text(&p);
    proto_send_req_t h;
    tb_send_header(&h, topic, queue_id, props_text);
    tb_send_cmd(cmd, &h, body, body_len);
    cm_free(props_text);
    proto_props_free(&p);
}

/* Sends one message and returns the response code; resp (may be NULL) keeps the reply. */
static inline int32_t tb_produce(int fd, const char *topic, int32_t queue_id, const char *tags,
                                 const char *keys, const char *body, proto_cmd_t *resp_out) {
    proto_cmd_t req, resp;
    tb_send_req(&req, topic, queue_id, tags, keys, body, strlen(body));
    tb_call(fd, &req, &resp);
    int32_t code = resp.code;
    if (resp_out)
        *resp_out = resp;
    else
        proto_cmd_free(&resp);
    return code;
}

/* A PULL_MESSAGE request; subscription non-NULL sets the SUBSCRIPTION bit. */
static inline void tb_pull_req(proto_cmd_t *cmd, const char *group, const char *topic,
                               int32_t queue_id, int64_t offset, int32_t max, int32_t sys_flag,
                               int64_t suspend_ms, const char *subscription) {
    proto_cmd_request(cmd, PROTO_PULL_MESSAGE, tb_next_opaque());
    proto_pull_req_t h;
    proto_pull_req_init(&h);
    h.consumer_group = group;
    h.topic = topic;
    h.queue_id = queue_id;
    h.queue_offset = offset;
    h.max_msg_nums = max;
    h.sys_flag = sys_flag | (subscription ? PULL_FLAG_SUBSCRIPTION : 0);
    h.suspend_timeout_millis = suspend_ms;
    h.subscription = subscription;
    h.sub_version = 0;
    proto_pull_req_encode(&h, &cmd->ext);
}

static inline int64_t tb_ext_int(const proto_cmd_t *c, const char *key) {
    int64_t v = -1;
    cr_assert_eq(proto_ext_get_int(&c->ext, key, &v), RMQ_OK, "ext %s missing", key);
    return v;
}

/* Counts the records in a pull body and checks each decodes with its CRC. */
static inline int tb_count_records(const proto_cmd_t *resp) {
    size_t pos = 0;
    int n = 0;
    while (pos < resp->body_len) {
        proto_record_t rec;
        cr_assert_eq(proto_record_decode(resp->body + pos, resp->body_len - pos, true, &rec),
                     RMQ_OK);
        pos += (size_t)rec.total_size;
        n++;
    }
    return n;
}

/* Whether the record's property name is want (NULL: absent). */
static inline bool tb_prop_is(const proto_record_t *rec, const char *name, const char *want) {
    const char *v;
    size_t n;
    if (!proto_props_find(rec->props, (size_t)rec->props_len, name, &v, &n)) return !want;
    return want && n == strlen(want) && memcmp(v, want, n) == 0;
}

/* GET_MAX_OFFSET of topic/queue. */
static inline int64_t tb_max_offset(int fd, const char *topic, int32_t queue_id) {
    proto_cmd_t req, resp;
    proto_cmd_request(&req, PROTO_GET_MAX_OFFSET, tb_next_opaque());
    proto_queue_req_t qh = {.topic = topic, .queue_id = queue_id};
    proto_queue_req_encode(&qh, &req.ext);
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0);
    int64_t offset = tb_ext_int(&resp, "offset");
    proto_cmd_free(&resp);
    return offset;
}

#endif
