/* Names and sentences for rmq_err_t, local and broker codes alike. */
#include <stdio.h>

#include "cm.h"

typedef struct err_desc {
    rmq_err_t code;
    const char *name;
    const char *str;
} err_desc_t;

static const err_desc_t descs[] = {
    {RMQ_OK, "OK", "Success"},
    {RMQ_ERR_UNKNOWN, "UNKNOWN", "Unknown error"},
    {RMQ_ERR_INVALID_ARG, "INVALID_ARG", "Invalid argument"},
    {RMQ_ERR_NO_MEMORY, "NO_MEMORY", "Out of memory"},
    {RMQ_ERR_TIMEOUT, "TIMEOUT", "Timed out"},
    {RMQ_ERR_NO_ROUTE, "NO_ROUTE", "No route to the topic"},
    {RMQ_ERR_NOT_STARTED, "NOT_STARTED", "Not started"},
    {RMQ_ERR_SHUTDOWN, "SHUTDOWN", "Shut down"},
    {RMQ_ERR_IO, "IO", "File system error"},
    {RMQ_ERR_NETWORK, "NETWORK", "Connection failed or lost"},
    {RMQ_ERR_UNKNOWN_KEY, "UNKNOWN_KEY", "Unknown configuration key"},
    {RMQ_ERR_BAD_VALUE, "BAD_VALUE", "Bad configuration value"},
    {RMQ_ERR_MSG_TOO_LARGE, "MSG_TOO_LARGE", "Message body larger than maxMessageSize"},
    {RMQ_ERR_BAD_TOPIC, "BAD_TOPIC", "Empty, too long or illegal topic name"},
    {RMQ_ERR_TRUNCATED, "TRUNCATED", "Input truncated"},
    {RMQ_ERR_MALFORMED, "MALFORMED", "Malformed input"},
    {RMQ_ERR_FRAME_TOO_LARGE, "FRAME_TOO_LARGE", "Frame over the size limit"},
    {RMQ_ERR_BAD_JSON, "BAD_JSON", "Malformed JSON"},
    {RMQ_ERR_BAD_PROPERTIES, "BAD_PROPERTIES", "Malformed message properties"},
    {RMQ_ERR_BAD_MAGIC, "BAD_MAGIC", "Unknown message record magic code"},
    {RMQ_ERR_BAD_CRC, "BAD_CRC", "Message body CRC mismatch"},
    {RMQ_ERR_COMPRESSION, "COMPRESSION", "Body compression or decompression failed"},
    {RMQ_ERR_UNSUPPORTED, "UNSUPPORTED", "Not supported"},
    {RMQ_ERR_NOT_FOUND, "NOT_FOUND", "Not found"},
    {RMQ_ERR_STATE, "STATE", "Not allowed in the current state"},
    {RMQ_ERR_DISK_FULL, "DISK_FULL", "Disk usage over diskMaxUsedSpaceRatio: writes refused"},
    {RMQ_ERR_BUSY, "BUSY", "Local queue full"},
    {RMQ_ERR_SYSTEM_ERROR, "SYSTEM_ERROR", "Broker system error"},
    {RMQ_ERR_SYSTEM_BUSY, "SYSTEM_BUSY", "Broker busy"},
    {RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED, "REQUEST_CODE_NOT_SUPPORTED", "Request code not supported"},
    {RMQ_ERR_TRANSACTION_FAILED, "TRANSACTION_FAILED", "Transaction failed"},
    {RMQ_ERR_FLUSH_DISK_TIMEOUT, "FLUSH_DISK_TIMEOUT", "Stored, but not flushed to disk in time"},
    {RMQ_ERR_SLAVE_NOT_AVAILABLE, "SLAVE_NOT_AVAILABLE", "Stored, but no slave available"},
    {RMQ_ERR_FLUSH_SLAVE_TIMEOUT, "FLUSH_SLAVE_TIMEOUT", "Stored, but not replicated in time"},
    {RMQ_ERR_MESSAGE_ILLEGAL, "MESSAGE_ILLEGAL", "Illegal message"},
    {RMQ_ERR_SERVICE_NOT_AVAILABLE, "SERVICE_NOT_AVAILABLE", "Service not available"},
    {RMQ_ERR_VERSION_NOT_SUPPORTED, "VERSION_NOT_SUPPORTED", "Version not supported"},
    {RMQ_ERR_NO_PERMISSION, "NO_PERMISSION", "No permission"},
    {RMQ_ERR_TOPIC_NOT_EXIST, "TOPIC_NOT_EXIST", "Topic does not exist"},
    {RMQ_ERR_TOPIC_EXIST_ALREADY, "TOPIC_EXIST_ALREADY", "Topic exists already"},
    {RMQ_ERR_PULL_NOT_FOUND, "PULL_NOT_FOUND", "No new message"},
    {RMQ_ERR_PULL_RETRY_IMMEDIATELY, "PULL_RETRY_IMMEDIATELY", "No matched message; pull again"},
    {RMQ_ERR_PULL_OFFSET_MOVED, "PULL_OFFSET_MOVED", "Pull offset out of range"},
    {RMQ_ERR_QUERY_NOT_FOUND, "QUERY_NOT_FOUND", "Nothing found"},
    {RMQ_ERR_SUBSCRIPTION_PARSE_FAILED, "SUBSCRIPTION_PARSE_FAILED", "Subscription does not parse"},
    {RMQ_ERR_SUBSCRIPTION_NOT_EXIST, "SUBSCRIPTION_NOT_EXIST", "Subscription does not exist"},
    {RMQ_ERR_SUBSCRIPTION_NOT_LATEST, "SUBSCRIPTION_NOT_LATEST", "Subscription not the latest"},
    {RMQ_ERR_SUBSCRIPTION_GROUP_NOT_EXIST, "SUBSCRIPTION_GROUP_NOT_EXIST", "Consumer group does not exist"},
    {RMQ_ERR_FILTER_DATA_NOT_EXIST, "FILTER_DATA_NOT_EXIST", "Filter data does not exist"},
    {RMQ_ERR_FILTER_DATA_NOT_LATEST, "FILTER_DATA_NOT_LATEST", "Filter data not the latest"},
    {RMQ_ERR_TRANSACTION_SHOULD_COMMIT, "TRANSACTION_SHOULD_COMMIT", "Transaction should commit"},
    {RMQ_ERR_TRANSACTION_SHOULD_ROLLBACK, "TRANSACTION_SHOULD_ROLLBACK", "Transaction should roll back"},
    {RMQ_ERR_TRANSACTION_STATE_UNKNOW, "TRANSACTION_STATE_UNKNOW", "Transaction state unknown"},
    {RMQ_ERR_TRANSACTION_STATE_GROUP_WRONG, "TRANSACTION_STATE_GROUP_WRONG", "Transaction group wrong"},
    {RMQ_ERR_NO_BUYER_ID, "NO_BUYER_ID", "No buyer id"},
    {RMQ_ERR_NOT_IN_CURRENT_UNIT, "NOT_IN_CURRENT_UNIT", "Not in current unit"},
    {RMQ_ERR_CONSUMER_NOT_ONLINE, "CONSUMER_NOT_ONLINE", "Consumer not online"},
    {RMQ_ERR_CONSUME_MSG_TIMEOUT, "CONSUME_MSG_TIMEOUT", "Consume message timeout"},
    {RMQ_ERR_NO_MESSAGE, "NO_MESSAGE", "No message"},
    {RMQ_ERR_FLOW_CONTROL, "FLOW_CONTROL", "Flow control"},
};

static const err_desc_t *find(rmq_err_t err) {
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++)
        if (descs[i].code == err) return &descs[i];
    return NULL;
}

const char *rmq_err_str(rmq_err_t err) {
    const err_desc_t *d = find(err);
    if (d) return d->str;
    return err > 0 ? "Broker error (unlisted response code)" : "Unknown local error";
}

const char *rmq_err_name(rmq_err_t err) {
    const err_desc_t *d = find(err);
    if (d) return d->name;
    static _Thread_local char name[32];
    snprintf(name, sizeof name, "%s_%d", err > 0 ? "CODE" : "LOCAL", (int)err);
    return name;
}
