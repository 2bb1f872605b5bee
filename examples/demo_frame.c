/* demo: decodes one captured remoting frame (default: a SEND_MESSAGE_V2 request recorded
 * from the Java 4.9.8 client) and prints its header fields, ext fields and body size.
 * Usage: demo [frame.bin] */
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

#ifndef RMQ_SOURCE_ROOT
#define RMQ_SOURCE_ROOT "."
#endif
#define DEFAULT_FRAME RMQ_SOURCE_ROOT "/test/data/rocketmq-4.9.8/frames/broker-req-310-c2s-1.bin"

static const struct {
    int32_t code;
    const char *name;
} code_names[] = {
    {10, "SEND_MESSAGE"},
    {11, "PULL_MESSAGE"},
    {12, "QUERY_MESSAGE"},
    {14, "QUERY_CONSUMER_OFFSET"},
    {15, "UPDATE_CONSUMER_OFFSET"},
    {17, "UPDATE_AND_CREATE_TOPIC"},
    {29, "SEARCH_OFFSET_BY_TIMESTAMP"},
    {30, "GET_MAX_OFFSET"},
    {31, "GET_MIN_OFFSET"},
    {33, "VIEW_MESSAGE_BY_ID"},
    {34, "HEART_BEAT"},
    {35, "UNREGISTER_CLIENT"},
    {36, "CONSUMER_SEND_MSG_BACK"},
    {37, "END_TRANSACTION"},
    {38, "GET_CONSUMER_LIST_BY_GROUP"},
    {39, "CHECK_TRANSACTION_STATE"},
    {40, "NOTIFY_CONSUMER_IDS_CHANGED"},
    {41, "LOCK_BATCH_MQ"},
    {42, "UNLOCK_BATCH_MQ"},
    {103, "REGISTER_BROKER"},
    {104, "UNREGISTER_BROKER"},
    {105, "GET_ROUTEINFO_BY_TOPIC"},
    {106, "GET_BROKER_CLUSTER_INFO"},
    {310, "SEND_MESSAGE_V2"},
    {320, "SEND_BATCH_MESSAGE"},
};

static const char *const lang_names[] = {"JAVA",   "CPP",  "DOTNET", "PYTHON", "DELPHI",
                                         "ERLANG", "RUBY", "OTHER",  "HTTP",   "GO",
                                         "PHP",    "OMS",  "RUST",   "NODE_JS"};

/* A response's code is a response code (rmq_err_name knows those); a request's is a
 * request code. */
static const char *code_name(const proto_cmd_t *c) {
    if (proto_cmd_is_response(c))
        return c->code == 0 ? "SUCCESS" : rmq_err_name((rmq_err_t)c->code);
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        if (code_names[i].code == c->code) return code_names[i].name;
    return "?";
}

/* Prints text with the property separators and other control bytes made visible. */
static void print_text(const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    cm_buf_t b = CM_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cm_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.data ? b.data : cm_calloc(1, 1);
}

static void print_cmd(const proto_cmd_t *c) {
    printf("code:       %d (%s)\n", c->code, code_name(c));
    printf("flag:       %d (%s%s)\n", c->flag, proto_cmd_is_response(c) ? "response" : "request",
           proto_cmd_is_oneway(c) ? ", oneway" : "");
    printf("opaque:     %d\n", c->opaque);
    bool named =
        c->language >= 0 && c->language < (int32_t)(sizeof lang_names / sizeof *lang_names);
    printf("language:   %d (%s)\n", c->language, named ? lang_names[c->language] : "?");
    printf("version:    %d\n", c->version);
    printf("serialize:  %s\n", c->serialize == PROTO_SER_JSON ? "JSON" : "ROCKETMQ");
    printf("remark:     ");
    if (c->remark)
        print_text(c->remark);
    else
        printf("(none)");
    printf("\nextFields:  %zu%s\n", c->ext.count, c->has_ext || c->ext.count ? "" : " (absent)");
    for (size_t i = 0; i < c->ext.count; i++) {
        printf("  %-22s ", c->ext.keys[i]);
        print_text(c->ext.vals[i]);
        putchar('\n');
    }
    printf("body:       %zu bytes\n", c->body_len);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : DEFAULT_FRAME;
    size_t len, size;
    uint8_t *buf = read_all(path, &len);
    if (!buf) {
        perror(path);
        return 1;
    }
    printf("frame:      %s (%zu bytes)\n", path, len);
    rmq_err_t err = proto_frame_size(buf, len, PROTO_MAX_FRAME, &size);
    proto_cmd_t cmd;
    if (err == RMQ_OK)
        err = proto_frame_decode(buf, len < size ? len : size, PROTO_MAX_FRAME, &cmd);
    cm_free(buf);
    if (err != RMQ_OK) {
        fprintf(stderr, "demo: cannot decode %s: %s (%s)\n", path, rmq_err_name(err),
                rmq_err_str(err));
        return 1;
    }
    print_cmd(&cmd);
    proto_cmd_free(&cmd);
    printf("\nnote: this demo only decodes a frame; the full broker demo arrives with the "
           "broker.\n");
    return 0;
}
