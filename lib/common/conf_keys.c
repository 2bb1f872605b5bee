/* Every configuration key librmq knows, with RocketMQ's default and a one-line meaning.
 * doc/CONFIGURATION.md is written from this table (a test keeps the two in step).
 * Client keys follow the Java client's names; broker keys are broker.conf's names. */
#include <limits.h>

#include "cm.h"

#define I(name, def, min, max, doc) {name, CM_CONF_INT, def, NULL, min, max, NULL, doc}
#define IB(name, def, bdef, min, max, doc) {name, CM_CONF_INT, def, bdef, min, max, NULL, doc}
#define B(name, def, doc) {name, CM_CONF_BOOL, def, NULL, 0, 0, NULL, doc}
#define S(name, def, doc) {name, CM_CONF_STR, def, NULL, 0, 0, NULL, doc}
#define E(name, def, choices, doc) {name, CM_CONF_ENUM, def, NULL, 0, 0, choices, doc}
#define A(name, doc) {name, CM_CONF_ADDRS, "", NULL, 0, 0, NULL, doc}

#define MS_MAX (INT64_C(1) << 40)

const cm_conf_key_t cm_conf_keys[] = {
    /* ---- shared by clients and broker */
    A("namesrvAddr", "Name servers, host:port separated by ';'. Clients fall back to the "
                     "NAMESRV_ADDR environment variable; a broker registers with each"),
    I("maxMessageSize", "4194304", 1, 1073741824, "Largest message body in bytes"),
    IB("defaultTopicQueueNums", "4", "8", 1, 1024,
       "Client: queues asked for when a send auto-creates a topic. Broker: queues of TBW102"),
    E("logLevel", "INFO", "ERROR|WARN|INFO|DEBUG", "Lowest level passed to the log callback"),

    /* ---- client */
    S("instanceName", "DEFAULT",
      "Client instance name; DEFAULT becomes <pid>#<nanotime>; "
      "handles with the same name share one client instance"),
    S("clientIP", "", "IP put in the client id (ip@instanceName); empty = first non-loopback"),
    S("unitName", "", "Unit name appended to the client id"),
    I("pollNameServerInterval", "30000", 10, MS_MAX, "Route refresh interval, ms"),
    I("heartbeatBrokerInterval", "30000", 10, MS_MAX, "Heartbeat to brokers interval, ms"),
    I("persistConsumerOffsetInterval", "5000", 10, MS_MAX, "Consumer offset commit interval, ms"),
    B("vipChannelEnabled", "false", "Send to the broker's VIP port (listenPort - 2)"),
    I("mqClientApiTimeout", "3000", 1, MS_MAX, "Default RPC timeout, ms"),
    S("producerGroup", "", "Producer group (required for producers)"),
    I("sendMsgTimeout", "3000", 1, MS_MAX, "Timeout of one send including its retries, ms"),
    I("retryTimesWhenSendFailed", "2", 0, 1000, "Extra attempts of a failed sync send"),
    I("retryTimesWhenSendAsyncFailed", "2", 0, 1000, "Extra attempts of a failed async send"),
    B("retryAnotherBrokerWhenNotStoreOK", "false",
      "Retry on another broker when the status is FLUSH_DISK_TIMEOUT / *_SLAVE_*"),
    I("compressMsgBodyOverHowmuch", "4096", 0, INT32_MAX,
      "Compress bodies of at least this many bytes"),
    E("compressType", "ZLIB", "ZLIB|ZSTD", "Body compression: ZLIB (what 4.x reads) or ZSTD"),
    I("compressLevel", "5", 1, 22, "Compression level"),
    B("sendLatencyFaultEnable", "false", "Avoid slow or failing brokers for a while"),
    S("createTopicKey", "TBW102", "Default topic whose route is used to auto-create topics"),
    S("consumerGroup", "", "Consumer group (required for consumers)"),
    E("messageModel", "CLUSTERING", "CLUSTERING|BROADCASTING",
      "CLUSTERING shares queues in the group; BROADCASTING gives every instance all messages"),
    E("consumeFromWhere", "CONSUME_FROM_LAST_OFFSET",
      "CONSUME_FROM_LAST_OFFSET|CONSUME_FROM_FIRST_OFFSET|CONSUME_FROM_TIMESTAMP",
      "Start position of a group with no stored offset"),
    S("consumeTimestamp", "", "yyyyMMddHHmmss for CONSUME_FROM_TIMESTAMP; empty = 30 min ago"),
    E("allocateMessageQueueStrategy", "AllocateMessageQueueAveragely",
      "AllocateMessageQueueAveragely|AllocateMessageQueueAveragelyByCircle|"
      "AllocateMessageQueueConsistentHash",
      "How a clustering group splits queues (same results as RocketMQ's)"),
    I("consumeThreadMin", "20", 1, 1000,
      "Push consumer: consume threads (the pool runs this many, as Java's does)"),
    I("consumeThreadMax", "20", 1, 1000,
      "Push consumer: consume threads at most (>= consumeThreadMin)"),
    I("pullBatchSize", "32", 1, 1024, "Messages asked for per pull"),
    I("consumeMessageBatchMaxSize", "1", 1, 1024, "Messages handed to one listener call"),
    I("pullThresholdForQueue", "1000", 1, 65535, "Cached messages per queue before pulls pause"),
    I("pullThresholdSizeForQueue", "100", 1, 1024, "Cached MiB per queue before pulls pause"),
    I("pullThresholdForTopic", "-1", -1, INT32_MAX, "Cached messages per topic (-1 = off)"),
    I("pullThresholdSizeForTopic", "-1", -1, INT32_MAX, "Cached MiB per topic (-1 = off)"),
    I("consumeConcurrentlyMaxSpan", "2000", 1, 65535, "Max offset span cached in a queue"),
    I("pullInterval", "0", 0, 65535, "Pause between pulls of one queue, ms"),
    I("maxReconsumeTimes", "-1", -1, 65535,
      "Deliveries before the dead-letter queue (-1 = 16; orderly: unlimited)"),
    I("suspendCurrentQueueTimeMillis", "1000", 10, 30000, "Orderly SUSPEND pause, ms"),
    I("consumeTimeout", "15", 1, 1440, "Minutes a message may be consumed before it is retried"),
    I("brokerSuspendMaxTimeMillis", "15000", 0, MS_MAX, "Long-poll time asked of the broker"),
    I("autoCommitIntervalMillis", "5000", 1000, MS_MAX, "Pull consumer auto-commit, ms"),
    B("autoCommit", "true", "Pull consumer commits offsets by itself"),
    I("pollTimeoutMillis", "5000", 0, MS_MAX, "Pull consumer default poll timeout, ms"),
    I("consumerTimeoutMillisWhenSuspend", "30000", 1, MS_MAX,
      "Consumers: RPC timeout of a long-polling pull (longer than brokerSuspendMaxTimeMillis)"),
    I("rebalanceWaitInterval", "20000", 100, MS_MAX,
      "Consumers rebalance this often, ms (Java: rocketmq.client.rebalance.waitInterval)"),
    S("localOffsetStoreDir", "${HOME}/.rocketmq_offsets",
      "Broadcasting consumers' offset files: <dir>/<clientId>/<group>/offsets.json"),

    /* ---- broker (broker.conf names) */
    I("listenPort", "10911", 0, 65535, "Broker (and embedded name server) port; 0 = any free"),
    S("brokerName", "", "Broker name; empty = this host's name"),
    S("brokerClusterName", "DefaultCluster", "Cluster the broker registers in"),
    I("brokerId", "0", 0, 1024, "0 = master, >0 = slave"),
    S("brokerIP1", "",
      "Address advertised to clients; empty = 127.0.0.1 (and the broker "
      "listens on loopback only); set it to serve other hosts"),
    S("brokerIP2", "", "Address for HA; empty = brokerIP1"),
    S("storePathRootDir", "${HOME}/store", "Store root directory"),
    S("storePathCommitLog", "", "Commit log directory; empty = <storePathRootDir>/commitlog"),
    I("mappedFileSizeCommitLog", "1073741824", 4096, INT64_C(1) << 34,
      "Commit log segment size, bytes"),
    I("mappedFileSizeConsumeQueue", "6000000", 20, INT32_MAX,
      "Consume queue file size, bytes (a multiple of 20)"),
    I("maxHashSlotNum", "5000000", 1, INT32_MAX, "Index file hash slots"),
    I("maxIndexNum", "20000000", 1, INT32_MAX, "Index file entries"),
    B("messageIndexEnable", "true", "Index KEYS and UNIQ_KEY for query by key"),
    E("flushDiskType", "ASYNC_FLUSH", "ASYNC_FLUSH|SYNC_FLUSH",
      "SYNC_FLUSH acknowledges a send only once it is on disk (group commit)"),
    I("syncFlushTimeout", "5000", 1, MS_MAX, "SYNC_FLUSH wait before FLUSH_DISK_TIMEOUT, ms"),
    I("flushIntervalCommitLog", "500", 1, MS_MAX, "Async flush interval, ms"),
    I("flushCommitLogLeastPages", "4", 0, INT32_MAX, "Async flush: least dirty pages"),
    I("commitLogCacheWindow", "536870912", 0, INT64_MAX,
      "Flushed commit-log bytes kept in the page cache behind the flushed end (at least 32 MiB); "
      "older pages leave the cache, so it does not grow with the log; 0 = keep them all"),
    I("flushCommitLogThoroughInterval", "10000", 0, MS_MAX,
      "Async flush: flush all at least every, ms"),
    I("flushIntervalConsumeQueue", "1000", 1, MS_MAX, "Consume queue flush interval, ms"),
    E("brokerRole", "ASYNC_MASTER", "ASYNC_MASTER|SYNC_MASTER|SLAVE", "Replication role"),
    B("autoCreateTopicEnable", "true", "Create topics on first send (via TBW102)"),
    B("autoCreateSubscriptionGroup", "true", "Create consumer groups on first use"),
    B("clusterTopicEnable", "true", "Keep a topic named after the cluster"),
    B("brokerTopicEnable", "true", "Keep a topic named after the broker"),
    I("fileReservedTime", "72", 0, 100000, "Hours a commit log segment is kept"),
    S("deleteWhen", "04", "Hours of day (';'-separated) when expired files are deleted"),
    I("diskMaxUsedSpaceRatio", "75", 10, 95,
      "Disk use (%) over which expired files are deleted at once; writes stop at 90%"),
    B("checkCRCOnRecover", "true", "Check body CRCs during recovery"),
    {"messageDelayLevel", CM_CONF_DELAYS,
     "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h", NULL, 0, 0, NULL,
     "Delay levels (units s m h d), level n = the n-th"},
    I("timerMaxDelaySec", "259200", 1, INT32_MAX, "Longest arbitrary delivery delay, seconds"),
    B("timerWheelEnable", "true",
      "Timer messages (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS, __STARTDELIVERTIME)"),
    I("timerPrecisionMs", "1000", 10, 60000,
      "Timer wheel slot width, ms (delivery is exact to the ms)"),
    I("timerFlushIntervalMs", "1000", 10, MS_MAX,
      "Timer log, wheel and config/timercheck are made durable this often, ms"),
    I("mappedFileSizeTimerLog", "104857600", 4096, INT32_MAX, "Timer log segment size, bytes"),
    B("longPollingEnable", "true", "Park pulls that find nothing until a message arrives"),
    I("shortPollingTimeMills", "1000", 1, MS_MAX, "Pull parking time without long polling, ms"),
    I("waitTimeMillsInSendQueue", "200", 1, MS_MAX,
      "A send queued longer than this is answered SYSTEM_BUSY, ms"),
    I("flushConsumerOffsetInterval", "5000", 100, MS_MAX,
      "Broker: consumerOffset.json is written this often, ms"),
    I("flushDelayOffsetInterval", "10000", 100, MS_MAX,
      "Broker: delayOffset.json (delayed-delivery progress) is written this often, ms"),
    I("channelExpiredTimeout", "120000", 1000, MS_MAX, "Client idle expiry on the broker, ms"),
    I("registerNameServerPeriod", "30000", 10000, 60000, "Broker registration interval, ms"),
    I("transactionCheckInterval", "60000", 100, MS_MAX, "Transaction check-back pass interval, ms"),
    I("transactionTimeOut", "6000", 0, MS_MAX, "Age of a half message before it is checked, ms"),
    I("transactionCheckMax", "15", 1, 10000, "Check-backs before a half message is dropped"),
    I("maxTransferCountOnMessageInMemory", "32", 1, 65535, "Messages per pull from memory"),
    I("maxTransferBytesOnMessageInMemory", "262144", 1, INT32_MAX, "Bytes per pull from memory"),
    I("haListenPort", "10912", 0, 65535, "Replication port"),
    {NULL, CM_CONF_STR, NULL, NULL, 0, 0, NULL, NULL}};

const cm_conf_key_t *cm_conf_key_find(const char *name) {
    for (const cm_conf_key_t *k = cm_conf_keys; k->name; k++)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}
