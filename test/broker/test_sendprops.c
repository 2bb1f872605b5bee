/* The properties a single send stores: the request's, CLUSTER set, WAIT dropped, in the
 * order Java's HashMap iterates them — for the plain sends the broker splits in place
 * (ASCII, at most 32 names, none special) and for those that take its general path
 * (non-ASCII, more names, TRAN_MSG / DELAY / timer keys that turn out inert), pipelined so
 * that one round of sends mixes both and refused ones. */
#include "tb.h"

#include "common/cm.h"

static char *dir;
static rmq_broker_t *broker;

static void setup(void) {
    dir = tb_tempdir();
    broker = tb_broker_start(dir, NULL);
}

static void teardown(void) {
    rmq_broker_destroy(broker);
    tb_rmrf(dir);
    cm_free(dir);
}

TestSuite(sendprops, .init = setup, .fini = teardown);

/* What a 4.9.8 broker stores for text, written from the rules alone: parsed (last value
 * wins, in the first one's place), peak size with CLUSTER, CLUSTER set, WAIT removed, then
 * HashMap iteration: bucket by bucket, insertion order inside one. NULL when the broker
 * refuses the properties. */
static char *expected_props(const char *text) {
    proto_props_t p;
    if (proto_props_parse(text, strlen(text), &p) != RMQ_OK) return NULL;
    size_t peak = p.count + (proto_props_get(&p, PROP_CLUSTER) ? 0 : 1);
    proto_props_set(&p, PROP_CLUSTER, "DefaultCluster");
    proto_props_set(&p, PROP_WAIT, NULL);
    uint32_t cap = 16;
    while (peak * 4 > cap * 3)
        cap *= 2;
    cm_buf_t out = CM_BUF_INIT;
    bool first = true;
    for (uint32_t bucket = 0; bucket < cap; bucket++) {
        for (size_t i = 0; i < p.count; i++) {
            uint32_t h = (uint32_t)cm_java_hash(p.names[i], strlen(p.names[i]));
            if (((h ^ (h >> 16)) & (cap - 1)) != bucket) continue;
            if (!first) cm_buf_put8(&out, PROTO_PROP_SEP);
            cm_buf_printf(&out, "%s%c%s", p.names[i], PROTO_NAME_SEP, p.vals[i]);
            first = false;
        }
    }
    proto_props_free(&p);
    return cm_buf_take_str(&out);
}

/* n properties p0=v0 ... (with WAIT first). */
static char *many_props(int n) {
    cm_buf_t b = CM_BUF_INIT;
    cm_buf_printf(&b, "WAIT\1true");
    for (int i = 0; i < n; i++)
        cm_buf_printf(&b, "\2p%d\1v%d", i, i);
    return cm_buf_take_str(&b);
}

Test(sendprops, plain_and_general_paths_store_the_same) {
    char *p32 = many_props(31), *p33 = many_props(32), *p40 = many_props(40);
    const char *texts[] = {
        "",
        "UNIQ_KEY\1ABC0123\2WAIT\1true",
        "WAIT\1false\2KEYS\1k1 k2\2TAGS\1t",
        "KEYS\1a\2TAGS\1x\2KEYS\1b",
        "\2A\1\2\1x\2B\1y\2\2",
        "CLUSTER\1other\2A\1b",
        "A\1b\2",
        "A\1b\1c\2D\1e",
        p32, /* 32 names: the most a plain send splits */
        p33,
        p40,
        "A\1\xc3\xa9\2"
        "B\1c",                  /* valid UTF-8, not ASCII */
        "A\1b\2C",               /* a pair without \1: refused */
        "TRAN_MSG\1false\2A\1b", /* special names that do nothing here */
        "DELAY\1\2A\1b",
        "DELAY\1"
        "0\2A\1b",
        "TIMER_DELIVER_MS\1"
        "1\2A\1b",
        "__STARTDELIVERTIME\1"
        "5\2A\1b",
        "UNIQ_KEY\1X\2WAIT\1true\2UNIQ_KEY\1Y\2WAIT\1false\2CLUSTER\1c",
    };
    size_t n = sizeof texts / sizeof texts[0];
    int fd = tb_connect(rmq_broker_addr(broker));
    int32_t opaques[sizeof texts / sizeof texts[0]];
    for (size_t i = 0; i < n; i++) { /* all at once: one read, one round of sends */
        proto_send_req_t h;
        tb_send_header(&h, "SendProps", 0, texts[i]);
        proto_cmd_t req;
        char body[16];
        snprintf(body, sizeof body, "m%zu", i);
        tb_send_cmd(&req, &h, body, strlen(body));
        opaques[i] = req.opaque;
        cr_assert(tb_send(fd, &req));
    }
    /* A refused send is answered at once, the stored ones after the round's append. */
    proto_cmd_t resps[sizeof texts / sizeof texts[0]];
    for (size_t got = 0; got < n; got++) {
        proto_cmd_t resp;
        cr_assert(tb_recv(fd, &resp));
        size_t i = 0;
        while (i < n && opaques[i] != resp.opaque)
            i++;
        cr_assert_lt(i, n, "unknown opaque %d", resp.opaque);
        resps[i] = resp;
    }
    char *want[sizeof texts / sizeof texts[0]];
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        want[i] = expected_props(texts[i]);
        cr_assert_eq(resps[i].code, want[i] ? 0 : RMQ_ERR_MESSAGE_ILLEGAL, "text %zu: %d %s", i,
                     resps[i].code, resps[i].remark ? resps[i].remark : "");
        if (want[i]) cr_assert_eq(tb_ext_int(&resps[i], "queueOffset"), (int64_t)stored++);
        proto_cmd_free(&resps[i]);
    }
    proto_cmd_t req, resp;
    tb_pull_req(&req, "g1", "SendProps", 0, 0, 64, 0, 0, "*");
    tb_call(fd, &req, &resp);
    cr_assert_eq(resp.code, 0, "%s", resp.remark);
    cr_assert_eq(tb_count_records(&resp), (int)stored);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!want[i]) continue;
        proto_record_t rec;
        cr_assert_eq(proto_record_decode(resp.body + pos, resp.body_len - pos, true, &rec), RMQ_OK);
        pos += (size_t)rec.total_size;
        char body[16];
        snprintf(body, sizeof body, "m%zu", i);
        cr_assert_eq((size_t)rec.body_len, strlen(body));
        cr_assert_eq(memcmp(rec.body, body, strlen(body)), 0, "text %zu", i);
        cr_assert_eq((size_t)rec.props_len, strlen(want[i]), "text %zu: %.*s, want %s", i,
                     rec.props_len, rec.props, want[i]);
        cr_assert_eq(memcmp(rec.props, want[i], strlen(want[i])), 0, "text %zu: %.*s, want %s", i,
                     rec.props_len, rec.props, want[i]);
    }
    proto_cmd_free(&resp);
    for (size_t i = 0; i < n; i++)
        cm_free(want[i]);
    cm_free(p32);
    cm_free(p33);
    cm_free(p40);
    close(fd);
}
