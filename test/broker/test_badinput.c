/* Bad input (issue 4 item 6): random, mutated and truncated frames, a frame announcing
 * 2 GiB and unknown codes. Each gets an error response or a closed connection, the broker
 * stays up, and a valid send afterwards succeeds. */
#include "tb.h"

#include <poll.h>

static uint8_t *read_capture(const char *file, size_t *len) {
    char *path = cm_sprintf("%s/rocketmq-4.9.8/frames/%s", getenv("TEST_DATA"), file);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint8_t *buf = cm_malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    cm_free(path);
    return buf;
}

/* Waits for the broker's reaction to what was sent: a response or the connection closed.
 * Silence is acceptable only for a frame that decodes as a oneway request or a response
 * (RocketMQ answers neither). */
static void expect_reaction(int fd, const uint8_t *frame, size_t len) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, 5000);
    if (n == 1) {
        uint8_t buf[4096];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        cr_assert_geq(r, 0); /* a response (r > 0) or a close (0); ECONNRESET shows as -1 */
        return;
    }
    proto_cmd_t cmd;
    proto_cmd_init(&cmd);
    rmq_err_t rc = proto_frame_decode(frame, len, PROTO_MAX_FRAME, &cmd);
    cr_assert(rc == RMQ_OK && (proto_cmd_is_oneway(&cmd) || proto_cmd_is_response(&cmd)),
              "no reaction to a %zu-byte frame", len);
    proto_cmd_free(&cmd);
}

Test(badinput, thousand_bad_frames_then_a_good_send) {
    char *dir = tb_tempdir();
    rmq_broker_t *b = tb_broker_start(dir, NULL);
    const char *addr = rmq_broker_addr(b);
    size_t good_len;
    uint8_t *good = read_capture("broker-req-310-c2s-1.bin", &good_len);
    srand(4242);
    uint8_t frame[512];
    for (int i = 0; i < 1000; i++) {
        int fd = tb_connect(addr);
        size_t len;
        int kind = i % 3;
        if (kind == 0) { /* random bytes behind a truthful length */
            len = 8 + (size_t)(rand() % 300);
            for (size_t j = 4; j < len; j++)
                frame[j] = (uint8_t)rand();
            cm_wr32(frame, (uint32_t)(len - 4));
        } else { /* a real request with a few bytes changed (never its length) */
            len = good_len < sizeof frame ? good_len : sizeof frame;
            memcpy(frame, good, len);
            cm_wr32(frame, (uint32_t)(len - 4));
            for (int k = 0; k < 1 + rand() % 3; k++)
                frame[4 + rand() % (len - 4)] = (uint8_t)rand();
        }
        if (kind == 2) { /* and cut short: the broker sees the end of the stream */
            len = 4 + (size_t)rand() % (len - 4);
            cr_assert(tb_write_all(fd, frame, len));
            shutdown(fd, SHUT_WR);
            uint8_t buf[4096];
            ssize_t r;
            while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
            }
            cr_assert_leq(r, 0);
        } else {
            cr_assert(tb_write_all(fd, frame, len));
            expect_reaction(fd, frame, len);
        }
        close(fd);
    }
    /* 2 GiB announced: closed without the broker trying to buffer it. */
    int fd = tb_connect(addr);
    uint8_t huge[8];
    cm_wr32(huge, 0x7FFFFFF0u);
    cm_wr32(huge + 4, 0x10);
    cr_assert(tb_write_all(fd, huge, sizeof huge));
    uint8_t buf[64];
    cr_assert_leq(recv(fd, buf, sizeof buf, 0), 0);
    close(fd);
    /* Unknown codes on one connection, then a valid send on it. */
    fd = tb_connect(addr);
    const int32_t codes[] = {13, 999, 4000, 32767, -5};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        proto_cmd_t req, resp;
        proto_cmd_request(&req, codes[i], tb_next_opaque());
        tb_call(fd, &req, &resp);
        cr_assert_eq(resp.code, RMQ_ERR_REQUEST_CODE_NOT_SUPPORTED);
        char want[64];
        snprintf(want, sizeof want, " request type %d not supported", codes[i]);
        cr_assert_str_eq(resp.remark, want);
        proto_cmd_free(&resp);
    }
    cr_assert_eq(tb_produce(fd, "AfterBad", 0, NULL, NULL, "still here", NULL), 0);
    close(fd);
    cm_free(good);
    rmq_broker_destroy(b);
    tb_rmrf(dir);
    cm_free(dir);
}
