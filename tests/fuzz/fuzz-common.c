/*
 * The "fuzzmem" protocol driver: the image file lives in one growable
 * buffer, so a fuzz iteration costs no system call and no thread pool
 * round trip, while qcow2 above it runs unchanged.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "fuzz-common.h"
#include "block/block_int.h"

static uint8_t *mem_buf;
static size_t mem_len, mem_alloc;

void fuzzmem_load(const uint8_t *data, size_t size)
{
    if (size > mem_alloc) {
        g_free(mem_buf);
        mem_alloc = MAX(size, 64 * 1024);
        mem_buf = g_malloc(mem_alloc);
    }
    if (size) {
        memcpy(mem_buf, data, size);
    }
    mem_len = size;
}

void fuzzmem_assert_unchanged(const uint8_t *data, size_t size)
{
    if (mem_len != size || (size && memcmp(mem_buf, data, size))) {
        fprintf(stderr, "a refused open changed the image file\n");
        abort();
    }
}

/* Grow to @end bytes, zero-filling; -ENOSPC past the cap. */
static int mem_grow(uint64_t end)
{
    if (end <= mem_len) {
        return 0;
    }
    if (end > FUZZMEM_MAX_SIZE) {
        return -ENOSPC;
    }
    if (end > mem_alloc) {
        size_t n = MAX(end, MIN((uint64_t)mem_alloc * 2, FUZZMEM_MAX_SIZE));

        mem_buf = g_realloc(mem_buf, n);
        mem_alloc = n;
    }
    memset(mem_buf + mem_len, 0, end - mem_len);
    mem_len = end;
    return 0;
}

static int coroutine_fn mem_co_open(BlockDriverState *bs, QDict *options,
                                    int flags, Error **errp)
{
    qdict_del(options, "filename");
    return 0;
}

static void mem_refresh_limits(BlockDriverState *bs, Error **errp)
{
    bs->bl.request_alignment = 1;
    bs->bl.max_transfer = 1 << 30;
}

static int coroutine_fn mem_co_preadv(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      size_t qiov_offset,
                                      BdrvRequestFlags flags)
{
    int64_t avail = offset < (int64_t)mem_len ? mem_len - offset : 0;
    int64_t n = MIN(bytes, avail);

    if (n > 0) {
        qemu_iovec_from_buf(qiov, qiov_offset, mem_buf + offset, n);
    }
    if (n < bytes) {
        /* Like a regular file: reads past the end return zeroes. */
        qemu_iovec_memset(qiov, qiov_offset + n, 0, bytes - n);
    }
    return 0;
}

static int coroutine_fn mem_co_pwritev(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       size_t qiov_offset,
                                       BdrvRequestFlags flags)
{
    int ret = mem_grow(offset + bytes);

    if (ret < 0) {
        return ret;
    }
    qemu_iovec_to_buf(qiov, qiov_offset, mem_buf + offset, bytes);
    return 0;
}

static int coroutine_fn mem_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    int ret = mem_grow(offset + bytes);

    if (ret < 0) {
        return ret;
    }
    memset(mem_buf + offset, 0, bytes);
    return 0;
}

static int coroutine_fn mem_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    return 0;
}

static int coroutine_fn mem_co_flush(BlockDriverState *bs)
{
    return 0;
}

static int64_t coroutine_fn mem_co_getlength(BlockDriverState *bs)
{
    return mem_len;
}

static int coroutine_fn mem_co_truncate(BlockDriverState *bs, int64_t offset,
                                        bool exact, PreallocMode prealloc,
                                        BdrvRequestFlags flags, Error **errp)
{
    int ret;

    if (offset < (int64_t)mem_len) {
        if (exact) {
            mem_len = offset;
        }
        return 0;
    }
    ret = mem_grow(offset);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "fuzzmem: cannot grow to %" PRId64,
                         offset);
    }
    return ret;
}

static BlockDriver bdrv_fuzzmem = {
    .format_name = "fuzzmem",
    .protocol_name = "fuzzmem",
    .bdrv_co_open = mem_co_open,
    .bdrv_refresh_limits = mem_refresh_limits,
    .bdrv_co_preadv_part = mem_co_preadv,
    .bdrv_co_pwritev_part = mem_co_pwritev,
    .bdrv_co_pwrite_zeroes = mem_co_pwrite_zeroes,
    .bdrv_co_pdiscard = mem_co_pdiscard,
    .bdrv_co_flush_to_disk = mem_co_flush,
    .bdrv_co_getlength = mem_co_getlength,
    .bdrv_co_truncate = mem_co_truncate,
};

void fuzz_init(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    bdrv_init();
    bdrv_register(&bdrv_fuzzmem);
    /* Corrupt images make the driver report; keep the output short. */
    if (!getenv("FUZZ_VERBOSE")) {
        int fd = open("/dev/null", O_WRONLY);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
}

BlockBackend *fuzz_open_qcow2(int flags)
{
    QDict *opts = qdict_new();
    Error *err = NULL;
    BlockBackend *blk;

    qdict_put_str(opts, "driver", "qcow2");
    qdict_put_str(opts, "file.driver", "fuzzmem");
    qdict_put_str(opts, "file.filename", "fuzz");
    /*
     * A small L2 cache: each iteration creates and flushes it, and the
     * eviction paths get exercised too.
     */
    qdict_put_str(opts, "l2-cache-size", "32k");
    blk = blk_new_open(NULL, opts, flags | BDRV_O_NO_BACKING, &err);
    if (!blk) {
        error_free(err);
    }
    return blk;
}
