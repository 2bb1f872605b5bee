/* Message body compression (message.md §6): zlib streams (RFC 1950, Java's Deflater and
 * Inflater) and, when built with it, zstd frames. LZ4 frames are not supported. Output is
 * always bounded: a small input that inflates past max_out is refused, not followed. */
#include <limits.h>
#include <zlib.h>
#ifdef RMQ_HAVE_ZSTD
#include <zstd.h>
#endif

#include "proto.h"

#define OUT_CHUNK (256 * 1024)

/* zlib counts in uInt; feed it at most this much at once. */
static uInt clamp_uint(size_t n) {
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* Room for the next output step: at most one byte past max_out, so overflow is seen. */
static size_t next_room(size_t produced, size_t max_out) {
    size_t left = max_out - produced;
    return left < OUT_CHUNK ? left + 1 : OUT_CHUNK;
}

static rmq_err_t zlib_compress(int level, const uint8_t *in, size_t len, cm_buf_t *out) {
    if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION) return RMQ_ERR_INVALID_ARG;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit(&zs, level) != Z_OK) return RMQ_ERR_COMPRESSION;
    size_t in_left = len;
    int ret = Z_OK;
    zs.next_in = (Bytef *)in;
    while (ret != Z_STREAM_END) {
        if (zs.avail_in == 0 && in_left > 0) {
            zs.avail_in = clamp_uint(in_left);
            in_left -= zs.avail_in;
        }
        cm_buf_reserve(out, OUT_CHUNK);
        zs.next_out = out->data + out->len;
        zs.avail_out = OUT_CHUNK;
        ret = deflate(&zs, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
        out->len += OUT_CHUNK - zs.avail_out;
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) break;
    }
    deflateEnd(&zs);
    return ret == Z_STREAM_END ? RMQ_OK : RMQ_ERR_COMPRESSION;
}

/* Inflates one zlib stream that must span the whole input exactly. */
static rmq_err_t zlib_decompress(const uint8_t *in, size_t len, size_t max_out, cm_buf_t *out) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK) return RMQ_ERR_COMPRESSION;
    size_t in_left = len, produced = 0;
    rmq_err_t err = RMQ_ERR_COMPRESSION;
    zs.next_in = (Bytef *)in;
    for (;;) {
        if (zs.avail_in == 0 && in_left > 0) {
            zs.avail_in = clamp_uint(in_left);
            in_left -= zs.avail_in;
        }
        size_t room = next_room(produced, max_out);
        cm_buf_reserve(out, room);
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)room;
        int ret = inflate(&zs, Z_NO_FLUSH);
        size_t got = room - zs.avail_out;
        out->len += got;
        produced += got;
        if (produced > max_out) break; /* a bomb, or simply larger than allowed */
        if (ret == Z_STREAM_END) {
            /* Bytes after the stream would be silently ignored by us but not by others. */
            if (zs.avail_in == 0 && in_left == 0) err = RMQ_OK;
            break;
        }
        if (ret != Z_OK) break; /* data error, or input ended inside the stream */
    }
    inflateEnd(&zs);
    return err;
}

#ifdef RMQ_HAVE_ZSTD
static rmq_err_t zstd_compress(int level, const uint8_t *in, size_t len, cm_buf_t *out) {
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) return RMQ_ERR_INVALID_ARG;
    size_t bound = ZSTD_compressBound(len);
    cm_buf_reserve(out, bound);
    size_t n = ZSTD_compress(out->data + out->len, bound, in, len, level);
    if (ZSTD_isError(n)) return RMQ_ERR_COMPRESSION;
    out->len += n;
    return RMQ_OK;
}

/* Decodes one or more zstd frames (Java's ZstdInputStream reads concatenated frames). */
static rmq_err_t zstd_run(ZSTD_DCtx *dctx, const uint8_t *in, size_t len, size_t max_out,
                          cm_buf_t *out) {
    ZSTD_inBuffer ib = {in, len, 0};
    size_t produced = 0, ret = 1;
    for (;;) {
        size_t room = next_room(produced, max_out);
        cm_buf_reserve(out, room);
        ZSTD_outBuffer ob = {out->data + out->len, room, 0};
        ret = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(ret)) return RMQ_ERR_COMPRESSION;
        out->len += ob.pos;
        produced += ob.pos;
        if (produced > max_out) return RMQ_ERR_COMPRESSION;
        if (ib.pos == ib.size) {
            if (ret == 0) return RMQ_OK;                      /* last frame complete */
            if (ob.pos < ob.size) return RMQ_ERR_COMPRESSION; /* input ends inside a frame */
        }
    }
}

static rmq_err_t zstd_decompress(const uint8_t *in, size_t len, size_t max_out, cm_buf_t *out) {
    if (len == 0) return RMQ_ERR_COMPRESSION;
    /* A frame that announces more than we accept is refused before any work. */
    unsigned long long fcs = ZSTD_getFrameContentSize(in, len);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR && fcs > max_out)
        return RMQ_ERR_COMPRESSION;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx) return RMQ_ERR_NO_MEMORY;
    rmq_err_t err = zstd_run(dctx, in, len, max_out, out);
    ZSTD_freeDCtx(dctx);
    return err;
}
#endif

rmq_err_t proto_compress(int32_t compress_type, int level, const void *in, size_t len,
                         cm_buf_t *out) {
    if (!out || (len && !in)) return RMQ_ERR_INVALID_ARG;
    size_t start = out->len;
    rmq_err_t err;
    switch (compress_type & SYSFLAG_COMPRESS_MASK) {
    case 0: /* pre-4.9.4 meaning of a bare COMPRESSED flag: zlib */
    case SYSFLAG_COMPRESS_ZLIB:
        err = zlib_compress(level, in, len, out);
        break;
#ifdef RMQ_HAVE_ZSTD
    case SYSFLAG_COMPRESS_ZSTD:
        err = zstd_compress(level, in, len, out);
        break;
#endif
    default:
        return RMQ_ERR_UNSUPPORTED;
    }
    if (err != RMQ_OK) out->len = start;
    return err;
}

rmq_err_t proto_decompress(int32_t sys_flag, const void *in, size_t len, size_t max_out,
                           cm_buf_t *out) {
    if (!out || (len && !in)) return RMQ_ERR_INVALID_ARG;
    size_t start = out->len;
    rmq_err_t err;
    switch (sys_flag & SYSFLAG_COMPRESS_MASK) {
    case 0:
    case SYSFLAG_COMPRESS_ZLIB:
        err = zlib_decompress(in, len, max_out, out);
        break;
#ifdef RMQ_HAVE_ZSTD
    case SYSFLAG_COMPRESS_ZSTD:
        err = zstd_decompress(in, len, max_out, out);
        break;
#endif
    default:
        return RMQ_ERR_UNSUPPORTED;
    }
    if (err != RMQ_OK) out->len = start; /* no partial output on failure */
    return err;
}
