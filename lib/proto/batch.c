/* SEND_BATCH_MESSAGE bodies (message.md §5): per message TOTALSIZE, MAGIC (0), BODYCRC (0),
 * FLAG, BODYLEN + body, PROPLEN int16 + properties, back to back. */
#include <assert.h>

#include "proto.h"

#define ITEM_FIXED (4 + 4 + 4 + 4 + 4 + 2)

void proto_batch_encode_item(cm_buf_t *out, int32_t flag, const void *body, size_t body_len,
                             const char *props, size_t props_len) {
    /* Callers validate sizes first (properties <= 32767, body <= maxMessageSize). */
    assert(props_len <= INT16_MAX && body_len <= INT32_MAX - ITEM_FIXED - props_len);
    cm_buf_put32(out, (uint32_t)(ITEM_FIXED + body_len + props_len));
    cm_buf_put32(out, 0); /* magic and CRC: the Java client leaves both 0 */
    cm_buf_put32(out, 0);
    cm_buf_put32(out, (uint32_t)flag);
    cm_buf_put32(out, (uint32_t)body_len);
    if (body_len) cm_buf_append(out, body, body_len);
    cm_buf_put16(out, (uint16_t)props_len);
    if (props_len) cm_buf_append(out, props, props_len);
}

/* Lengths that reach past the data are TRUNCATED; lengths that disagree with TOTALSIZE (or
 * are negative) are MALFORMED. Java writers always make them agree. */
rmq_err_t proto_batch_next(const uint8_t *body, size_t len, size_t *pos, proto_batch_item_t *item) {
    memset(item, 0, sizeof *item);
    if (*pos >= len) return RMQ_ERR_NOT_FOUND;
    const uint8_t *p = body + *pos;
    size_t left = len - *pos;
    if (left < 4 + 4 + 4 + 4 + 4) return RMQ_ERR_TRUNCATED;
    int32_t total = (int32_t)cm_rd32(p);
    int32_t body_len = (int32_t)cm_rd32(p + 16);
    if (total < ITEM_FIXED || body_len < 0 || body_len > total - ITEM_FIXED)
        return RMQ_ERR_MALFORMED;
    if ((size_t)total > left) return RMQ_ERR_TRUNCATED;
    size_t props_at = 20 + (size_t)body_len;
    int32_t props_len = (int16_t)cm_rd16(p + props_at);
    if (props_len < 0 || (size_t)total != props_at + 2 + (size_t)props_len)
        return RMQ_ERR_MALFORMED;
    item->flag = (int32_t)cm_rd32(p + 12);
    item->body = p + 20;
    item->body_len = body_len;
    item->props = (const char *)p + props_at + 2;
    item->props_len = props_len;
    *pos += (size_t)total;
    return RMQ_OK;
}
