/* Public API (issue W1-1): version, errors, configuration and messages, through librmq.so. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rmq/rmq.h>

Test(version, matches_macros) {
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", RMQ_VERSION_MAJOR, RMQ_VERSION_MINOR,
             RMQ_VERSION_PATCH);
    cr_assert_str_eq(rmq_version(), expect);
    cr_assert_str_eq(rmq_version(), RMQ_VERSION_STRING);
    cr_assert_eq(rmq_version_int(), RMQ_VERSION_INT);
}

Test(conf, set_get_and_defaults) {
    char err[256], val[64];
    size_t sz = sizeof val;
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_get(c, "sendMsgTimeout", val, &sz), RMQ_OK);
    cr_assert_str_eq(val, "3000");
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", "127.0.0.1:9876;127.0.0.1:9877", err, sizeof err),
                 RMQ_OK);
    sz = sizeof val;
    cr_assert_eq(rmq_conf_get(c, "namesrvAddr", val, &sz), RMQ_OK);
    cr_assert_str_eq(val, "127.0.0.1:9876;127.0.0.1:9877");
    /* size query, then too small */
    size_t need = 0;
    cr_assert_eq(rmq_conf_get(c, "namesrvAddr", NULL, &need), RMQ_OK);
    cr_assert_eq(need, strlen("127.0.0.1:9876;127.0.0.1:9877") + 1);
    char tiny[4];
    sz = sizeof tiny;
    cr_assert_eq(rmq_conf_get(c, "namesrvAddr", tiny, &sz), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(sz, need);
    rmq_conf_destroy(c);
}

Test(conf, unknown_key_and_bad_values_named) {
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_set(c, "sendMsgTimeOut", "1", err, sizeof err), RMQ_ERR_UNKNOWN_KEY);
    cr_assert(strstr(err, "sendMsgTimeOut"), "errstr: %s", err);
    cr_assert_eq(rmq_conf_set(c, "sendMsgTimeout", "soon", err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert(strstr(err, "sendMsgTimeout") && strstr(err, "soon"), "errstr: %s", err);
    cr_assert_eq(rmq_conf_set(c, "listenPort", "70000", err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert(strstr(err, "listenPort") && strstr(err, "70000"), "errstr: %s", err);
    cr_assert_eq(rmq_conf_set(c, "flushDiskType", "SOMETIMES", err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert(strstr(err, "ASYNC_FLUSH|SYNC_FLUSH"), "errstr: %s", err);
    cr_assert_eq(rmq_conf_set(c, "autoCreateTopicEnable", "yes", err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert_eq(rmq_conf_set(c, "namesrvAddr", "localhost", err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert_eq(rmq_conf_set(c, "messageDelayLevel", "1s 2x", err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert_eq(rmq_conf_set(NULL, "a", "b", err, sizeof err), RMQ_ERR_INVALID_ARG);
    /* a refused value leaves the old one */
    char val[32];
    size_t sz = sizeof val;
    rmq_conf_get(c, "listenPort", val, &sz);
    cr_assert_str_eq(val, "10911");
    rmq_conf_destroy(c);
}

Test(conf, dup_is_deep) {
    rmq_conf_t *a = rmq_conf_new();
    rmq_conf_set(a, "producerGroup", "orders", NULL, 0);
    rmq_conf_t *b = rmq_conf_dup(a);
    rmq_conf_set(a, "producerGroup", "other", NULL, 0);
    char val[32];
    size_t sz = sizeof val;
    rmq_conf_get(b, "producerGroup", val, &sz);
    cr_assert_str_eq(val, "orders");
    rmq_conf_destroy(a);
    rmq_conf_destroy(b);
    rmq_conf_destroy(NULL);
}

static char *write_temp(const char *text) {
    char *path = strdup("/tmp/rmq-conf-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(conf, load_broker_conf_file) {
    char *path = write_temp("# a broker.conf as RocketMQ ships it\n"
                            "brokerClusterName = DefaultCluster\n"
                            "brokerName=broker-a\n\n"
                            "brokerId = 0\n"
                            "deleteWhen = 04\n"
                            "fileReservedTime = 48\n"
                            "brokerRole = ASYNC_MASTER\n"
                            "flushDiskType = SYNC_FLUSH\n");
    char err[256], val[32];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_load_file(c, path, err, sizeof err), RMQ_OK, "%s", err);
    size_t sz = sizeof val;
    rmq_conf_get(c, "flushDiskType", val, &sz);
    cr_assert_str_eq(val, "SYNC_FLUSH");
    sz = sizeof val;
    rmq_conf_get(c, "fileReservedTime", val, &sz);
    cr_assert_str_eq(val, "48");
    unlink(path);
    free(path);
    rmq_conf_destroy(c);
}

Test(conf, load_file_names_bad_line) {
    char *path = write_temp("brokerName=a\nlistenPort=abc\n");
    char err[256];
    rmq_conf_t *c = rmq_conf_new();
    cr_assert_eq(rmq_conf_load_file(c, path, err, sizeof err), RMQ_ERR_BAD_VALUE);
    cr_assert(strstr(err, ":2:") && strstr(err, "listenPort"), "errstr: %s", err);
    unlink(path);
    free(path);
    cr_assert_eq(rmq_conf_load_file(c, "/nonexistent/broker.conf", err, sizeof err), RMQ_ERR_IO);
    cr_assert(strstr(err, "/nonexistent/broker.conf"), "errstr: %s", err);
    rmq_conf_destroy(c);
}

Test(msg, setters_and_accessors) {
    rmq_msg_t *m = rmq_msg_new("OrderTopic");
    cr_assert_str_eq(rmq_msg_topic(m), "OrderTopic");
    cr_assert_eq(rmq_msg_set_tags(m, "created"), RMQ_OK);
    cr_assert_eq(rmq_msg_set_keys(m, "order-1 order-2"), RMQ_OK);
    cr_assert_eq(rmq_msg_set_body(m, "hello", 5), RMQ_OK);
    cr_assert_eq(rmq_msg_set_property(m, "region", "eu"), RMQ_OK);
    cr_assert_eq(rmq_msg_set_delay_level(m, 3), RMQ_OK);
    cr_assert_eq(rmq_msg_set_flag(m, 7), RMQ_OK);
    cr_assert_eq(rmq_msg_set_sharding_key(m, "customer-9"), RMQ_OK);
    cr_assert_eq(rmq_msg_set_deliver_time_ms(m, 1800000000000LL), RMQ_OK);
    cr_assert_eq(rmq_msg_set_wait_store_msg_ok(m, 0), RMQ_OK);
    cr_assert_str_eq(rmq_msg_tags(m), "created");
    cr_assert_str_eq(rmq_msg_keys(m), "order-1 order-2");
    size_t len;
    cr_assert_eq(memcmp(rmq_msg_body(m, &len), "hello", 5), 0);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(rmq_msg_property(m, "region"), "eu");
    cr_assert_str_eq(rmq_msg_property(m, "DELAY"), "3");
    cr_assert_eq(rmq_msg_delay_level(m), 3);
    cr_assert_eq(rmq_msg_flag(m), 7);
    cr_assert_str_eq(rmq_msg_property(m, "__SHARDINGKEY"), "customer-9");
    cr_assert_str_eq(rmq_msg_property(m, "TIMER_DELIVER_MS"), "1800000000000");
    cr_assert_str_eq(rmq_msg_property(m, "WAIT"), "false");
    /* not received yet */
    cr_assert_null(rmq_msg_id(m));
    cr_assert_eq(rmq_msg_queue_id(m), -1);
    cr_assert_eq(rmq_msg_queue_offset(m), -1);

    rmq_msg_t *d = rmq_msg_dup(m);
    rmq_msg_set_tags(m, NULL);
    rmq_msg_set_property(m, "region", NULL);
    cr_assert_null(rmq_msg_tags(m));
    cr_assert_null(rmq_msg_property(m, "region"));
    cr_assert_str_eq(rmq_msg_tags(d), "created");
    cr_assert_str_eq(rmq_msg_property(d, "region"), "eu");
    rmq_msg_destroy(m);
    rmq_msg_destroy(d);
    rmq_msg_destroy(NULL);
}

Test(msg, refuses_reserved_and_separators) {
    rmq_msg_t *m = rmq_msg_new("T");
    cr_assert_eq(rmq_msg_set_property(m, "UNIQ_KEY", "x"), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_msg_set_property(m, "TAGS", "x"), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_msg_set_property(m, "a\x01", "x"), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_msg_set_property(m, "a", "x\x02y"), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_msg_set_tags(m, "x\x01"), RMQ_ERR_INVALID_ARG);
    cr_assert_eq(rmq_msg_set_delay_level(m, -1), RMQ_ERR_INVALID_ARG);
    cr_assert_null(rmq_msg_new(NULL));
    cr_assert_eq(rmq_msg_set_body(NULL, "x", 1), RMQ_ERR_INVALID_ARG);
    rmq_msg_destroy(m);
}

static int count_props(const char *n, const char *v, void *opaque) {
    (void)n, (void)v;
    ++*(int *)opaque;
    return 0;
}

Test(msg, foreach_property) {
    rmq_msg_t *m = rmq_msg_new("T");
    rmq_msg_set_tags(m, "a");
    rmq_msg_set_keys(m, "k");
    rmq_msg_set_property(m, "x", "1");
    int n = 0;
    rmq_msg_foreach_property(m, count_props, &n);
    cr_assert_eq(n, 3);
    rmq_msg_destroy(m);
}

Test(err, public_names) {
    cr_assert_str_eq(rmq_err_name(RMQ_ERR_MESSAGE_ILLEGAL), "MESSAGE_ILLEGAL");
    cr_assert_eq(RMQ_ERR_MESSAGE_ILLEGAL, 13);
    cr_assert(RMQ_ERR_TIMEOUT < 0);
}
