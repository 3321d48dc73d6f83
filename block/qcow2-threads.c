/*
 * qcow2 cluster compression (zlib raw deflate, zstd) in the thread pool.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * zlib data is a raw deflate stream (no header: windowBits -12).  zstd
 * data is one or more frames; the decompressor stops once the cluster
 * is full because the stored length is rounded up to sectors and may
 * carry trailing bytes.
 */
#include "qemu/osdep.h"
#include <zlib.h>
#ifdef CONFIG_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif
#include "block/aio.h"
#include "qcow2.h"

static ssize_t zlib_compress(void *dest, size_t dest_size,
                             const void *src, size_t src_size)
{
    z_stream strm;
    ssize_t ret;

    memset(&strm, 0, sizeof(strm));
    if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return -EIO;
    }
    strm.next_in = (Bytef *)src;
    strm.avail_in = src_size;
    strm.next_out = dest;
    strm.avail_out = dest_size;
    ret = deflate(&strm, Z_FINISH);
    if (ret == Z_STREAM_END) {
        ret = dest_size - strm.avail_out;
    } else {
        ret = (ret == Z_OK || ret == Z_BUF_ERROR) ? -ENOMEM : -EIO;
    }
    deflateEnd(&strm);
    return ret;
}

static ssize_t zlib_decompress(void *dest, size_t dest_size,
                               const void *src, size_t src_size)
{
    z_stream strm;
    ssize_t ret;

    memset(&strm, 0, sizeof(strm));
    strm.next_in = (Bytef *)src;
    strm.avail_in = src_size;
    strm.next_out = dest;
    strm.avail_out = dest_size;
    if (inflateInit2(&strm, -12) != Z_OK) {
        return -EIO;
    }
    ret = inflate(&strm, Z_FINISH);
    /* A full output buffer is success even if the stream end is unseen. */
    if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && strm.avail_out == 0) {
        ret = 0;
    } else {
        ret = -EIO;
    }
    inflateEnd(&strm);
    return ret;
}

#ifdef CONFIG_ZSTD
static ssize_t zstd_compress(void *dest, size_t dest_size,
                             const void *src, size_t src_size)
{
    size_t ret;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_inBuffer in = { src, src_size, 0 };
    ZSTD_outBuffer out = { dest, dest_size, 0 };

    if (!cctx) {
        return -ENOMEM;
    }
    /* The streaming API writes the content size-less frame QEMU uses. */
    do {
        ret = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
        if (ZSTD_isError(ret)) {
            ZSTD_freeCCtx(cctx);
            return ZSTD_getErrorCode(ret) == ZSTD_error_dstSize_tooSmall
                   ? -ENOMEM : -EIO;
        }
        if (ret && out.pos == out.size) {
            ZSTD_freeCCtx(cctx);
            return -ENOMEM;
        }
    } while (ret);
    ZSTD_freeCCtx(cctx);
    return out.pos;
}

static ssize_t zstd_decompress(void *dest, size_t dest_size,
                               const void *src, size_t src_size)
{
    size_t ret = 0;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer in = { src, src_size, 0 };
    ZSTD_outBuffer out = { dest, dest_size, 0 };

    if (!dctx) {
        return -ENOMEM;
    }
    while (out.pos < out.size) {
        size_t last_in = in.pos;

        ret = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(ret)) {
            break;
        }
        if (in.pos == last_in && in.pos >= in.size) {
            break;     /* input exhausted before the cluster is full */
        }
    }
    ZSTD_freeDCtx(dctx);
    if (ZSTD_isError(ret) || out.pos != out.size) {
        return -EIO;
    }
    return 0;
}
#endif

ssize_t qcow2_compress_buf(Qcow2CompressionType type, void *dest,
                           size_t dest_size, const void *src,
                           size_t src_size)
{
    switch (type) {
    case QCOW2_COMPRESSION_TYPE_ZLIB:
        return zlib_compress(dest, dest_size, src, src_size);
#ifdef CONFIG_ZSTD
    case QCOW2_COMPRESSION_TYPE_ZSTD:
        return zstd_compress(dest, dest_size, src, src_size);
#endif
    default:
        return -ENOTSUP;
    }
}

ssize_t qcow2_decompress_buf(Qcow2CompressionType type, void *dest,
                             size_t dest_size, const void *src,
                             size_t src_size)
{
    switch (type) {
    case QCOW2_COMPRESSION_TYPE_ZLIB:
        return zlib_decompress(dest, dest_size, src, src_size);
#ifdef CONFIG_ZSTD
    case QCOW2_COMPRESSION_TYPE_ZSTD:
        return zstd_decompress(dest, dest_size, src, src_size);
#endif
    default:
        return -ENOTSUP;
    }
}

typedef struct Qcow2CompressData {
    Qcow2CompressionType type;
    bool compress;
    void *dest;
    size_t dest_size;
    const void *src;
    size_t src_size;
    ssize_t ret;
} Qcow2CompressData;

static int qcow2_compress_worker(void *opaque)
{
    Qcow2CompressData *d = opaque;

    d->ret = d->compress
             ? qcow2_compress_buf(d->type, d->dest, d->dest_size,
                                  d->src, d->src_size)
             : qcow2_decompress_buf(d->type, d->dest, d->dest_size,
                                    d->src, d->src_size);
    return 0;
}

static ssize_t coroutine_fn qcow2_co_do_compress(BlockDriverState *bs,
                                                 bool compress, void *dest,
                                                 size_t dest_size,
                                                 const void *src,
                                                 size_t src_size)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2CompressData d = {
        .type = s->compression_type,
        .compress = compress,
        .dest = dest,
        .dest_size = dest_size,
        .src = src,
        .src_size = src_size,
    };

    thread_pool_submit_co(qcow2_compress_worker, &d);
    return d.ret;
}

ssize_t coroutine_fn qcow2_co_compress(BlockDriverState *bs, void *dest,
                                       size_t dest_size, const void *src,
                                       size_t src_size)
{
    return qcow2_co_do_compress(bs, true, dest, dest_size, src, src_size);
}

ssize_t coroutine_fn qcow2_co_decompress(BlockDriverState *bs, void *dest,
                                         size_t dest_size, const void *src,
                                         size_t src_size)
{
    return qcow2_co_do_compress(bs, false, dest, dest_size, src, src_size);
}
