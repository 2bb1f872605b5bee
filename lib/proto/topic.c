/* RocketMQ's topic name rules (4.9.8 TopicValidator), one copy for the broker and client. */
#include "proto/proto.h"

#include <string.h>

/* TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET. */
static const char *const not_sendable[] = {"SCHEDULE_TOPIC_XXXX",
                                           "RMQ_SYS_TRANS_HALF_TOPIC",
                                           "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                                           "TRANS_CHECK_MAX_TIME_TOPIC",
                                           "SELF_TEST_TOPIC",
                                           "OFFSET_MOVED_EVENT",
                                           "rmq_sys_wheel_timer", /* timer messages wait there */
                                           NULL};

bool proto_topic_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '%' ||
           c == '|' || c == '_' || c == '-';
}

bool proto_topic_name_valid(const char *topic) {
    size_t n = topic ? strlen(topic) : 0;
    if (n == 0 || n > PROTO_TOPIC_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!proto_topic_char_ok(topic[i])) return false;
    return true;
}

bool proto_topic_not_sendable(const char *topic) {
    for (const char *const *s = not_sendable; *s; s++)
        if (strcmp(*s, topic) == 0) return true;
    return false;
}
