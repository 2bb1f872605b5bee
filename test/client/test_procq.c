/* The push consumer's process queue (lib/client/procq.h): what flow control and the offset
 * store read from it, concurrent removal in any order, and orderly take / commit / put back. */
#include <criterion/criterion.h>

#include "client/procq.h"
#include "proto/proto.h"

static rmq_msg_t *msg_at(int64_t offset, size_t body_len) {
    rmq_msg_t *m = rmq_msg_new("T");
    char body[64] = {0};
    rmq_msg_set_body(m, body, body_len);
    m->queue_offset = offset;
    return m;
}

Test(procq, counts_span_and_next_offset) {
    client_procq_t q;
    client_procq_init(&q);
    cr_expect_eq(client_procq_next(&q), -1);
    for (int64_t off = 10; off < 20; off += 2)
        cr_assert(client_procq_put(&q, msg_at(off, 8)));
    cr_expect_not(client_procq_put(&q, msg_at(18, 8)), "a duplicate is refused");
    cr_expect_eq(q.cached, 5);
    cr_expect_eq(q.cached_bytes, 40);
    cr_expect_eq(client_procq_span(&q), 8);
    cr_expect_eq(client_procq_next(&q), 10);
    int64_t done[] = {12, 16, 99};
    cr_expect_eq(client_procq_remove(&q, done, 3), 10, "10 is still not consumed");
    int64_t first[] = {10};
    cr_expect_eq(client_procq_remove(&q, first, 1), 14);
    cr_expect_eq(client_procq_span(&q), 4);
    int64_t rest[] = {14, 18};
    cr_expect_eq(client_procq_remove(&q, rest, 2), 19, "all done: past the highest pulled");
    cr_expect_eq(q.cached, 0);
    cr_expect_eq(q.cached_bytes, 0);
    client_procq_clear(&q);
}

Test(procq, many_messages_removed_out_of_order) {
    client_procq_t q;
    client_procq_init(&q);
    for (int64_t off = 0; off < 1000; off++)
        client_procq_put(&q, msg_at(off, 1));
    for (int64_t off = 999; off >= 1; off--) {
        cr_assert_eq(client_procq_remove(&q, &off, 1), 0);
    }
    cr_expect_eq(q.cached, 1);
    int64_t zero = 0;
    cr_expect_eq(client_procq_remove(&q, &zero, 1), 1000);
    client_procq_put(&q, msg_at(1000, 1));
    cr_expect_eq(client_procq_next(&q), 1000);
    client_procq_clear(&q);
    cr_expect_eq(client_procq_next(&q), 1001, "clear keeps the pull position");
}

Test(procq, orderly_take_commit_and_put_back) {
    client_procq_t q;
    client_procq_init(&q);
    for (int64_t off = 0; off < 5; off++)
        client_procq_put(&q, msg_at(off, 1));
    rmq_msg_t *out[3];
    cr_assert_eq(client_procq_take(&q, 3, out), 3);
    cr_expect_eq(out[0]->queue_offset, 0);
    cr_expect_eq(out[2]->queue_offset, 2);
    client_procq_untake(&q);
    cr_assert_eq(client_procq_take(&q, 2, out), 2);
    cr_expect_eq(out[0]->queue_offset, 0, "a suspended batch comes again first");
    cr_expect_eq(client_procq_commit_taken(&q), 2);
    cr_assert_eq(client_procq_take(&q, 8, out), 3);
    cr_expect_eq(out[0]->queue_offset, 2);
    cr_expect_eq(client_procq_commit_taken(&q), 5);
    cr_expect_eq(client_procq_take(&q, 8, out), 0);
    client_procq_clear(&q);
}
