/*
 * Unit tests for the generic block layer (block.c, io.c, block-backend.c,
 * raw-format.c) using an in-memory protocol driver registered here.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"

/* ---- the "testmem" protocol driver ------------------------------------ */

typedef struct TestMemState {
    uint8_t *buf;
    int64_t size;
    uint32_t align;
    uint32_t max_transfer;
    uint32_t pdiscard_align;
    int64_t max_zeroes;
    bool yield;                 /* yield to the loop before each operation */
    bool zeroes;                /* implements bdrv_co_pwrite_zeroes */
    /* statistics and checks */
    int reads, writes, zero_calls, discards, flushes;
    int unaligned;              /* requests the generic layer should have fixed */
    int too_big;
    int fua_writes;
    int64_t last_discard_off, last_discard_len;
} TestMemState;

static TestMemState *last_state;
static TestMemState *prev_state;   /* the one opened before last_state */

static void coroutine_fn tm_maybe_yield(TestMemState *s)
{
    if (s->yield) {
        aio_co_schedule(qemu_get_current_aio_context(),
                        qemu_coroutine_self());
        qemu_coroutine_yield();
    }
}

static void tm_check(TestMemState *s, int64_t offset, int64_t bytes)
{
    if (offset % s->align || bytes % s->align) {
        s->unaligned++;
    }
    if (s->max_transfer && bytes > s->max_transfer) {
        s->too_big++;
    }
}

static int64_t opt_num(QDict *o, const char *key, int64_t def)
{
    const char *v = qdict_get_try_str(o, key);
    uint64_t n;

    if (!v) {
        return def;
    }
    g_assert_cmpint(qemu_strtosz(v, NULL, &n), ==, 0);
    qdict_del(o, key);
    return n;
}

static bool opt_flag(QDict *o, const char *key)
{
    const char *v = qdict_get_try_str(o, key);
    bool r = v && !strcmp(v, "on");

    qdict_del(o, key);
    return r;
}

static int coroutine_fn tm_open(BlockDriverState *bs, QDict *options,
                                int flags, Error **errp)
{
    TestMemState *s = bs->opaque;

    s->size = opt_num(options, "size", 64 * KiB);
    s->align = opt_num(options, "align", 1);
    s->max_transfer = opt_num(options, "max-transfer", 0);
    s->pdiscard_align = opt_num(options, "pdiscard-align", 0);
    s->max_zeroes = opt_num(options, "max-zeroes", 0);
    s->yield = opt_flag(options, "yield");
    s->zeroes = opt_flag(options, "zeroes");
    if (opt_flag(options, "fua")) {
        bs->supported_write_flags = BDRV_REQ_FUA;
    }
    if (opt_flag(options, "fail")) {
        error_setg(errp, "testmem: asked to fail");
        return -EIO;
    }
    qdict_del(options, "filename");
    s->buf = g_malloc0(s->size);
    prev_state = last_state;
    last_state = s;
    return 0;
}

static void coroutine_fn tm_close(BlockDriverState *bs)
{
    TestMemState *s = bs->opaque;

    if (last_state == s) {
        last_state = NULL;
    }
    if (prev_state == s) {
        prev_state = NULL;
    }
    g_free(s->buf);
}

static void tm_refresh_limits(BlockDriverState *bs, Error **errp)
{
    TestMemState *s = bs->opaque;

    bs->bl.request_alignment = s->align;
    bs->bl.max_transfer = s->max_transfer;
    bs->bl.pdiscard_alignment = s->pdiscard_align;
    bs->bl.max_pwrite_zeroes = s->max_zeroes;
    bs->bl.max_pdiscard = s->max_zeroes;
}

static int coroutine_fn tm_preadv(BlockDriverState *bs, int64_t offset,
                                  int64_t bytes, QEMUIOVector *qiov,
                                  size_t qiov_offset, BdrvRequestFlags flags)
{
    TestMemState *s = bs->opaque;

    tm_check(s, offset, bytes);
    tm_maybe_yield(s);
    s->reads++;
    g_assert_cmpint(offset + bytes, <=, s->size);
    qemu_iovec_from_buf(qiov, qiov_offset, s->buf + offset, bytes);
    return 0;
}

static int coroutine_fn tm_pwritev(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_offset, BdrvRequestFlags flags)
{
    TestMemState *s = bs->opaque;

    tm_check(s, offset, bytes);
    tm_maybe_yield(s);
    s->writes++;
    if (flags & BDRV_REQ_FUA) {
        s->fua_writes++;
    }
    if (offset + bytes > s->size) {
        return -ENOSPC;
    }
    qemu_iovec_to_buf(qiov, qiov_offset, s->buf + offset, bytes);
    return 0;
}

static int coroutine_fn tm_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                         int64_t bytes, BdrvRequestFlags flags)
{
    TestMemState *s = bs->opaque;

    if (!s->zeroes) {
        return -ENOTSUP;
    }
    tm_check(s, offset, bytes);
    if (s->max_zeroes && bytes > s->max_zeroes) {
        s->too_big++;
    }
    s->zero_calls++;
    memset(s->buf + offset, 0, bytes);
    return 0;
}

static int coroutine_fn tm_pdiscard(BlockDriverState *bs, int64_t offset,
                                    int64_t bytes)
{
    TestMemState *s = bs->opaque;

    if (s->max_zeroes && bytes > s->max_zeroes) {
        s->too_big++;
    }
    s->discards++;
    s->last_discard_off = offset;
    s->last_discard_len = bytes;
    memset(s->buf + offset, 0, bytes);
    return 0;
}

static int coroutine_fn tm_flush(BlockDriverState *bs)
{
    TestMemState *s = bs->opaque;

    tm_maybe_yield(s);
    s->flushes++;
    return 0;
}

static int64_t coroutine_fn tm_getlength(BlockDriverState *bs)
{
    TestMemState *s = bs->opaque;

    return s->size;
}

static BlockDriver bdrv_testmem = {
    .format_name = "testmem",
    .protocol_name = "testmem",
    .instance_size = sizeof(TestMemState),
    .bdrv_co_open = tm_open,
    .bdrv_co_close = tm_close,
    .bdrv_refresh_limits = tm_refresh_limits,
    .bdrv_co_preadv_part = tm_preadv,
    .bdrv_co_pwritev_part = tm_pwritev,
    .bdrv_co_pwrite_zeroes = tm_pwrite_zeroes,
    .bdrv_co_pdiscard = tm_pdiscard,
    .bdrv_co_flush_to_disk = tm_flush,
    .bdrv_co_getlength = tm_getlength,
};

/*
 * "testcow": a format with a backing file and a 4k-cluster allocation map
 * kept in memory; data lives at the same offset in its file.
 */
#define TC_CLUSTER 4096

typedef struct TestCowState {
    bool alloc[64];
    int64_t size;
} TestCowState;

static int coroutine_fn tc_open(BlockDriverState *bs, QDict *options,
                                int flags, Error **errp)
{
    TestCowState *s = bs->opaque;

    s->size = MIN(bdrv_co_getlength(bs->file->bs), 64 * TC_CLUSTER);
    return bdrv_open_backing(bs, options, errp);
}

static int coroutine_fn tc_preadv(BlockDriverState *bs, int64_t offset,
                                  int64_t bytes, QEMUIOVector *qiov,
                                  size_t qiov_offset, BdrvRequestFlags flags)
{
    TestCowState *s = bs->opaque;
    int ret = 0;

    while (bytes > 0 && ret == 0) {
        int64_t c = offset / TC_CLUSTER;
        int64_t n = MIN(bytes, (c + 1) * TC_CLUSTER - offset);

        if (s->alloc[c]) {
            ret = bdrv_co_preadv_part(bs->file, offset, n, qiov, qiov_offset,
                                      0);
        } else if (bs->backing) {
            ret = bdrv_co_preadv_part(bs->backing, offset, n, qiov,
                                      qiov_offset, 0);
        } else {
            qemu_iovec_memset(qiov, qiov_offset, 0, n);
        }
        offset += n;
        qiov_offset += n;
        bytes -= n;
    }
    return ret;
}

static int coroutine_fn tc_pwritev(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_offset, BdrvRequestFlags flags)
{
    TestCowState *s = bs->opaque;
    int64_t c;

    g_assert(offset % TC_CLUSTER == 0 && bytes % TC_CLUSTER == 0);
    for (c = offset / TC_CLUSTER; c < (offset + bytes) / TC_CLUSTER; c++) {
        s->alloc[c] = true;
    }
    return bdrv_co_pwritev_part(bs->file, offset, bytes, qiov, qiov_offset,
                                0);
}

static int coroutine_fn tc_block_status(BlockDriverState *bs, bool want_zero,
                                        int64_t offset, int64_t bytes,
                                        int64_t *pnum, int64_t *map,
                                        BlockDriverState **file)
{
    TestCowState *s = bs->opaque;
    int64_t c = offset / TC_CLUSTER, end = c;
    bool a = s->alloc[c];

    while (end * TC_CLUSTER < offset + bytes && s->alloc[end] == a) {
        end++;
    }
    *pnum = MIN(end * TC_CLUSTER, offset + bytes) - offset;
    if (!a) {
        return 0;
    }
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
}

static void tc_refresh_limits(BlockDriverState *bs, Error **errp)
{
    bs->bl.request_alignment = TC_CLUSTER;
}

static int64_t coroutine_fn tc_getlength(BlockDriverState *bs)
{
    TestCowState *s = bs->opaque;

    return s->size;
}

static BlockDriver bdrv_testcow = {
    .format_name = "testcow",
    .instance_size = sizeof(TestCowState),
    .is_format = true,
    .supports_backing = true,
    .bdrv_co_open = tc_open,
    .bdrv_refresh_limits = tc_refresh_limits,
    .bdrv_co_preadv_part = tc_preadv,
    .bdrv_co_pwritev_part = tc_pwritev,
    .bdrv_co_block_status = tc_block_status,
    .bdrv_co_getlength = tc_getlength,
};

/* ---- helpers ------------------------------------------------------------ */

static BlockBackend *open_blk(const char *optstr, int flags, Error **errp)
{
    QDict *opts = qdict_parse_keyval(optstr, NULL, &error_abort);

    return blk_new_open(NULL, opts, flags, errp);
}

static BlockBackend *open_ok(const char *optstr, int flags)
{
    Error *err = NULL;
    BlockBackend *blk = open_blk(optstr, flags, &err);

    if (!blk) {
        g_printerr("open '%s': %s\n", optstr, error_get_pretty(err));
    }
    g_assert_nonnull(blk);
    g_assert_nonnull(last_state);
    return blk;
}

static void open_fails(const char *optstr, int flags, const char *msg)
{
    Error *err = NULL;
    BlockBackend *blk = open_blk(optstr, flags, &err);

    g_assert_null(blk);
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, msg);
    error_free(err);
}

static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed * 31 + i * 7 + 1);
    }
}

/* ---- tests --------------------------------------------------------------- */

/* Byte-granular I/O on a 4k-aligned device must behave like plain memory. */
static void test_rmw_shadow(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,align=4096",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    TestMemState *s = last_state;
    uint8_t *shadow = g_malloc0(65536), *buf = g_malloc(65536);
    int i;

    for (i = 0; i < 300; i++) {
        int64_t off = g_test_rand_int_range(0, 65536);
        int64_t len = g_test_rand_int_range(1, MIN(65536 - off, 10000) + 1);

        if (g_test_rand_bit()) {
            fill_pattern(buf, len, i);
            g_assert_cmpint(blk_pwrite(blk, off, len, buf, 0), ==, 0);
            memcpy(shadow + off, buf, len);
        } else {
            g_assert_cmpint(blk_pread(blk, off, len, buf, 0), ==, 0);
            g_assert_cmpmem(buf, len, shadow + off, len);
        }
    }
    g_assert_cmpmem(s->buf, 65536, shadow, 65536);
    g_assert_cmpint(s->unaligned, ==, 0);
    g_free(shadow);
    g_free(buf);
    blk_unref(blk);
}

typedef struct AioDone {
    int count;
    int errors;
} AioDone;

static void aio_done_cb(void *opaque, int ret)
{
    AioDone *d = opaque;

    d->count++;
    if (ret < 0) {
        d->errors++;
    }
}

/*
 * Concurrent unaligned writes to disjoint bytes of the same 4k blocks:
 * without serialising the read-modify-write cycles, later writes would
 * restore stale bytes of earlier ones.
 */
static void test_concurrent_rmw(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,align=4096,"
                                "yield=on", BDRV_O_RDWR | BDRV_O_PROTOCOL);
    TestMemState *s = last_state;
    enum { N = 24, LEN = 300 };
    QEMUIOVector qiov[N + 1];
    uint8_t *bufs[N + 1], *aligned_buf;
    uint8_t expect[N * LEN + 4096];
    AioDone done = { 0 };
    int i;

    memset(expect, 0, sizeof(expect));
    for (i = 0; i < N; i++) {
        bufs[i] = g_malloc(LEN);
        memset(bufs[i], i + 1, LEN);
        memcpy(expect + 100 + i * LEN, bufs[i], LEN);
        qemu_iovec_init_buf(&qiov[i], bufs[i], LEN);
        blk_aio_pwritev(blk, 100 + i * LEN, &qiov[i], 0, aio_done_cb, &done);
        if (i == N / 2) {
            /* An aligned write into the same range must not be lost either. */
            aligned_buf = g_malloc(4096);
            memset(aligned_buf, 0xee, 4096);
            bufs[N] = aligned_buf;
            qemu_iovec_init_buf(&qiov[N], aligned_buf, 4096);
            blk_aio_pwritev(blk, 4096, &qiov[N], 0, aio_done_cb, &done);
        }
    }
    g_assert_cmpint(done.count, ==, 0);
    blk_drain(blk);
    g_assert_cmpint(done.count, ==, N + 1);
    g_assert_cmpint(done.errors, ==, 0);
    g_assert_cmpint(s->unaligned, ==, 0);

    /*
     * Overlapping writes may complete in any order, but no write may be
     * lost: every byte holds its unaligned writer's value, or inside
     * [4096, 8192) possibly the aligned write's.
     */
    for (i = 0; i < N * LEN + 100; i++) {
        int writer = i < 100 ? -1 : (i - 100) / LEN;
        uint8_t want = writer < 0 ? 0 : writer + 1;

        if (i >= 4096 && i < 8192 && s->buf[i] == 0xee) {
            continue;
        }
        if (s->buf[i] != want) {
            g_printerr("byte %d: got %d want %d\n", i, s->buf[i], want);
        }
        g_assert_cmpint(s->buf[i], ==, want);
    }
    for (i = 0; i <= N; i++) {
        g_free(bufs[i]);
    }
    blk_unref(blk);
}

static void test_max_transfer(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,align=512,"
                                "max-transfer=8192",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    TestMemState *s = last_state;
    uint8_t *buf = g_malloc(40960), *rbuf = g_malloc(40960);

    fill_pattern(buf, 40960, 3);
    g_assert_cmpint(blk_pwrite(blk, 4096, 40960, buf, 0), ==, 0);
    g_assert_cmpint(s->writes, ==, 5);
    g_assert_cmpint(blk_pread(blk, 4096, 40960, rbuf, 0), ==, 0);
    g_assert_cmpint(s->reads, ==, 5);
    g_assert_cmpmem(buf, 40960, rbuf, 40960);
    g_assert_cmpmem(s->buf + 4096, 40960, buf, 40960);
    g_assert_cmpint(s->too_big, ==, 0);
    /* Unaligned and split: still correct. */
    fill_pattern(buf, 20000, 9);
    g_assert_cmpint(blk_pwrite(blk, 1000, 20000, buf, 0), ==, 0);
    g_assert_cmpmem(s->buf + 1000, 20000, buf, 20000);
    g_assert_cmpint(s->too_big, ==, 0);
    g_assert_cmpint(s->unaligned, ==, 0);
    g_free(buf);
    g_free(rbuf);
    blk_unref(blk);
}

static void test_fua(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    TestMemState *s = last_state;
    uint8_t buf[512] = { 1 };

    /* Emulated: a flush follows the write. */
    g_assert_cmpint(blk_pwrite(blk, 0, 512, buf, BDRV_REQ_FUA), ==, 0);
    g_assert_cmpint(s->flushes, ==, 1);
    g_assert_cmpint(s->fua_writes, ==, 0);
    /* Nothing written since: the flush is skipped... */
    g_assert_cmpint(blk_flush(blk), ==, 0);
    g_assert_cmpint(s->flushes, ==, 1);
    /* ...until something is. */
    g_assert_cmpint(blk_pwrite(blk, 0, 512, buf, 0), ==, 0);
    g_assert_cmpint(blk_flush(blk), ==, 0);
    g_assert_cmpint(s->flushes, ==, 2);
    /* Writethrough makes every write FUA. */
    blk_set_enable_write_cache(blk, false);
    g_assert_cmpint(blk_pwrite(blk, 512, 512, buf, 0), ==, 0);
    g_assert_cmpint(s->flushes, ==, 3);
    blk_unref(blk);

    /* Native FUA: passed to the driver, no flush. */
    blk = open_ok("driver=testmem,size=65536,fua=on",
                  BDRV_O_RDWR | BDRV_O_PROTOCOL);
    s = last_state;
    g_assert_cmpint(blk_pwrite(blk, 0, 512, buf, BDRV_REQ_FUA), ==, 0);
    g_assert_cmpint(s->fua_writes, ==, 1);
    g_assert_cmpint(s->flushes, ==, 0);
    blk_unref(blk);

    /* cache.no-flush: the disk flush is never issued. */
    blk = open_ok("driver=testmem,size=65536,cache.no-flush=on",
                  BDRV_O_RDWR | BDRV_O_PROTOCOL);
    s = last_state;
    g_assert_cmpint(blk_pwrite(blk, 0, 512, buf, 0), ==, 0);
    g_assert_cmpint(blk_flush(blk), ==, 0);
    g_assert_cmpint(s->flushes, ==, 0);
    blk_unref(blk);
}

static void test_write_zeroes(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,align=4096",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    TestMemState *s = last_state;
    uint8_t *shadow = g_malloc(65536);

    memset(s->buf, 0xaa, 65536);
    memset(shadow, 0xaa, 65536);
    /* No driver support: emulated by writing zeroes, unaligned edges RMW. */
    g_assert_cmpint(blk_pwrite_zeroes(blk, 1000, 20000, 0), ==, 0);
    memset(shadow + 1000, 0, 20000);
    g_assert_cmpmem(s->buf, 65536, shadow, 65536);
    g_assert_cmpint(s->zero_calls, ==, 0);
    g_assert_cmpint(s->unaligned, ==, 0);
    /* NO_FALLBACK refuses the emulation. */
    g_assert_cmpint(blk_pwrite_zeroes(blk, 0, 4096, BDRV_REQ_NO_FALLBACK),
                    ==, -ENOTSUP);
    blk_unref(blk);

    blk = open_ok("driver=testmem,size=65536,align=512,zeroes=on",
                  BDRV_O_RDWR | BDRV_O_PROTOCOL);
    s = last_state;
    memset(s->buf, 0xaa, 65536);
    memset(shadow, 0xaa, 65536);
    g_assert_cmpint(blk_pwrite_zeroes(blk, 100, 10000, 0), ==, 0);
    memset(shadow + 100, 0, 10000);
    g_assert_cmpmem(s->buf, 65536, shadow, 65536);
    g_assert_cmpint(s->zero_calls, ==, 1);
    g_assert_cmpint(s->unaligned, ==, 0);
    g_assert_cmpint(blk_pwrite_zeroes(blk, 0, 4096, BDRV_REQ_NO_FALLBACK),
                    ==, 0);
    g_assert_cmpint(s->zero_calls, ==, 2);
    g_free(shadow);
    blk_unref(blk);
}

static void test_discard(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,align=512,"
                                "pdiscard-align=4096",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    TestMemState *s = last_state;

    /* Without BDRV_O_UNMAP discard is a no-op. */
    g_assert_cmpint(blk_pdiscard(blk, 0, 8192), ==, 0);
    g_assert_cmpint(s->discards, ==, 0);
    blk_unref(blk);

    blk = open_ok("driver=testmem,size=65536,align=512,pdiscard-align=4096",
                  BDRV_O_RDWR | BDRV_O_PROTOCOL | BDRV_O_UNMAP);
    s = last_state;
    /* Unaligned head and tail are dropped. */
    g_assert_cmpint(blk_pdiscard(blk, 1000, 10000), ==, 0);
    g_assert_cmpint(s->discards, ==, 1);
    g_assert_cmpint(s->last_discard_off, ==, 4096);
    g_assert_cmpint(s->last_discard_len, ==, 4096);
    /* Nothing left after alignment. */
    g_assert_cmpint(blk_pdiscard(blk, 100, 3000), ==, 0);
    g_assert_cmpint(s->discards, ==, 1);
    /* Past the end. */
    g_assert_cmpint(blk_pdiscard(blk, 65536, 512), ==, -EIO);
    blk_unref(blk);
}

static void test_split_and_coalesce(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,align=512,"
                                "zeroes=on,max-zeroes=8192,yield=on",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL | BDRV_O_UNMAP);
    TestMemState *s = last_state;
    AioDone done = { 0 };
    uint8_t buf[512] = { 0 };

    /* Zeroes and discards are split at the driver's limits. */
    g_assert_cmpint(blk_pwrite_zeroes(blk, 0, 40960, 0), ==, 0);
    g_assert_cmpint(s->zero_calls, ==, 5);
    g_assert_cmpint(blk_pdiscard(blk, 0, 40960), ==, 0);
    g_assert_cmpint(s->discards, ==, 5);
    g_assert_cmpint(s->too_big, ==, 0);

    /* Concurrent flushes after one write share a single disk flush. */
    g_assert_cmpint(blk_pwrite(blk, 0, 512, buf, 0), ==, 0);
    s->flushes = 0;
    blk_aio_flush(blk, aio_done_cb, &done);
    blk_aio_flush(blk, aio_done_cb, &done);
    blk_aio_flush(blk, aio_done_cb, &done);
    blk_drain(blk);
    g_assert_cmpint(done.count, ==, 3);
    g_assert_cmpint(done.errors, ==, 0);
    g_assert_cmpint(s->flushes, ==, 1);
    blk_unref(blk);
}

static void test_drain(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536,yield=on",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    BlockDriverState *bs = blk_bs(blk);
    uint8_t buf[8][4096];
    QEMUIOVector qiov[8];
    AioDone done = { 0 };
    int i;

    for (i = 0; i < 8; i++) {
        qemu_iovec_init_buf(&qiov[i], buf[i], 4096);
        if (i & 1) {
            blk_aio_preadv(blk, i * 4096, &qiov[i], 0, aio_done_cb, &done);
        } else {
            blk_aio_pwritev(blk, i * 4096, &qiov[i], 0, aio_done_cb, &done);
        }
    }
    g_assert_cmpint(bs->in_flight, ==, 8);
    bdrv_drain(bs);
    g_assert_cmpint(bs->in_flight, ==, 0);
    blk_drain(blk);
    g_assert_cmpint(done.count, ==, 8);
    g_assert_cmpint(done.errors, ==, 0);
    blk_unref(blk);
}

static void test_aio_cb_after_return(void)
{
    /* No yield: the request completes inside blk_aio_preadv. */
    BlockBackend *blk = open_ok("driver=testmem,size=65536",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    uint8_t buf[512];
    QEMUIOVector qiov;
    AioDone done = { 0 };

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    blk_aio_preadv(blk, 0, &qiov, 0, aio_done_cb, &done);
    g_assert_cmpint(done.count, ==, 0);
    blk_aio_pwritev(blk, 0, &qiov, 0, aio_done_cb, &done);
    blk_aio_flush(blk, aio_done_cb, &done);
    /* Errors are reported the same way. */
    blk_aio_preadv(blk, 65536, &qiov, 0, aio_done_cb, &done);
    g_assert_cmpint(done.count, ==, 0);
    while (done.count < 4) {
        aio_poll(qemu_get_aio_context(), true);
    }
    g_assert_cmpint(done.errors, ==, 1);
    blk_unref(blk);
}

static void test_errors(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536",
                                BDRV_O_PROTOCOL);
    uint8_t buf[512] = { 0 };

    /* Read-only node. */
    g_assert_true(blk_is_read_only(blk));
    g_assert_cmpint(blk_pwrite(blk, 0, 512, buf, 0), ==, -EPERM);
    g_assert_cmpint(blk_pwrite_zeroes(blk, 0, 512, 0), ==, -EPERM);
    /* Out of range. */
    g_assert_cmpint(blk_pread(blk, 65535, 2, buf, 0), ==, -EIO);
    g_assert_cmpint(blk_pread(blk, -1, 1, buf, 0), ==, -EIO);
    g_assert_cmpint(blk_pread(blk, 65024, 512, buf, 0), ==, 0);
    g_assert_cmpint(blk_getlength(blk), ==, 65536);
    blk_unref(blk);

    blk = open_ok("driver=testmem,size=65536", BDRV_O_RDWR | BDRV_O_PROTOCOL);
    g_assert_cmpint(blk_pwrite(blk, 65536, 512, buf, 0), ==, -EIO);
    /* The generic layer itself: beyond BDRV_MAX_LENGTH. */
    blk_set_allow_write_beyond_eof(blk, true);
    g_assert_cmpint(blk_pwrite(blk, BDRV_MAX_LENGTH, 512, buf, 0), ==, -EIO);
    g_assert_cmpint(blk_pwrite_compressed(blk, 0, buf, 512), ==, -ENOTSUP);
    blk_unref(blk);
}

static void test_zone_enotsup(void)
{
    BlockBackend *blk = open_ok("driver=testmem,size=65536",
                                BDRV_O_RDWR | BDRV_O_PROTOCOL);
    BlockZoneDescriptor zones[4];
    unsigned int nr = 4;
    int64_t off = 0;
    uint8_t buf[512] = { 0 };
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    g_assert_cmpint(blk_zone_report(blk, 0, &nr, zones), ==, -ENOTSUP);
    g_assert_cmpint(blk_zone_mgmt(blk, BLK_ZO_RESET, 0, 65536), ==, -ENOTSUP);
    g_assert_cmpint(blk_zone_append(blk, &off, &qiov, 0), ==, -ENOTSUP);
    blk_unref(blk);

    /* raw passes zone calls through, but the child is not zoned. */
    blk = open_ok("driver=raw,file.driver=testmem", BDRV_O_RDWR);
    g_assert_cmpint(blk_zone_report(blk, 0, &nr, zones), ==, -ENOTSUP);
    g_assert_cmpint(blk_zone_append(blk, &off, &qiov, 0), ==, -ENOTSUP);
    g_assert_cmpstr(bdrv_zone_state_name(BLK_ZS_IOPEN), ==, "IMP_OPEN");
    g_assert_cmpstr(bdrv_zone_op_name(BLK_ZO_FINISH), ==, "finish");
    blk_unref(blk);
}

static void test_open_errors(void)
{
    open_fails("driver=raw,file.driver=testmem,foo=bar", BDRV_O_RDWR,
               "Block format 'raw' does not support the option 'foo'");
    open_fails("driver=raw,file.driver=testmem,file.bar=1", BDRV_O_RDWR,
               "Block protocol 'testmem' doesn't support the option 'bar'");
    open_fails("driver=nope,file.driver=testmem", BDRV_O_RDWR,
               "Unknown driver 'nope'");
    open_fails("driver=raw", BDRV_O_RDWR,
               "A block device must be specified for \"file\"");
    open_fails("filename=x", BDRV_O_RDWR,
               "Must specify either driver or file");
    open_fails("driver=raw,file.driver=testmem,read-only=on", BDRV_O_RDWR,
               "Block node is read-only");
    open_fails("driver=raw,file.driver=testmem,file.fail=on", BDRV_O_RDWR,
               "testmem: asked to fail");
    open_fails("driver=raw,file.driver=testmem,offset=70000", 0,
               "Offset (70000) cannot be greater than size of the "
               "containing file (65536)");
    open_fails("driver=raw,file.driver=testmem,offset=512,size=65536", 0,
               "The sum of offset (512) and size (65536) has to be smaller "
               "or equal to the  actual size of the containing file (65536)");
    open_fails("driver=raw,file.driver=testmem,size=1000", 0,
               "Specified size is not multiple of 512");
    {
        Error *err = NULL;
        BlockDriverState *bs = bdrv_open("json:{\"driver\": \"raw\"", NULL,
                                         0, &err);
        g_assert_null(bs);
        g_assert_true(g_str_has_prefix(error_get_pretty(err),
                                       "Could not parse the JSON options: "));
        error_free(err);
        err = NULL;
        bs = bdrv_open("foo:bar", NULL, 0, &err);
        g_assert_null(bs);
        g_assert_cmpstr(error_get_pretty(err), ==, "Unknown protocol 'foo'");
        error_free(err);
    }
}

static void test_open_graph(void)
{
    Error *err = NULL;
    BlockDriverState *bs;
    BlockBackend *blk;
    uint8_t buf[4096], rbuf[4096];
    int64_t pnum, map;
    BlockDriverState *file;
    int ret;

    /* json: filename with nested objects and a raw window. */
    bs = bdrv_open("json:{\"driver\": \"raw\", \"offset\": 4096, "
                   "\"size\": 8192, \"file\": {\"driver\": \"testmem\", "
                   "\"size\": 65536}}", NULL, BDRV_O_RDWR, &err);
    g_assert_null(err);
    g_assert_nonnull(bs);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "raw");
    g_assert_cmpstr(bdrv_get_format_name(bdrv_get_file(bs)), ==, "testmem");
    g_assert_true(g_str_has_prefix(bdrv_get_node_name(bs), "#block"));
    g_assert_cmpint(bdrv_getlength(bs), ==, 8192);
    blk = blk_new_with_bs(bs, &error_abort);
    bdrv_unref(bs);
    fill_pattern(buf, sizeof(buf), 5);
    g_assert_cmpint(blk_pwrite(blk, 4096, 4096, buf, 0), ==, 0);
    g_assert_cmpmem(last_state->buf + 8192, 4096, buf, 4096);
    g_assert_cmpint(blk_pread(blk, 4096, 4096, rbuf, 0), ==, 0);
    g_assert_cmpmem(rbuf, 4096, buf, 4096);
    g_assert_cmpint(blk_pwrite(blk, 8192, 512, buf, 0), ==, -EIO);

    /* Block status passes through raw to the protocol at the offset. */
    ret = bdrv_block_status(bs, 1000, 100000, &pnum, &map, &file);
    g_assert_cmpint(ret, >=, 0);
    g_assert_true(ret & BDRV_BLOCK_DATA);
    g_assert_true(ret & BDRV_BLOCK_OFFSET_VALID);
    g_assert_true(ret & BDRV_BLOCK_EOF);
    g_assert_cmpint(pnum, ==, 8192 - 1000);
    g_assert_cmpint(map, ==, 4096 + 1000);
    g_assert_true(file == bdrv_get_file(bs));
    g_assert_cmpint(bdrv_is_allocated(bs, 0, 8192, &pnum), ==, 1);
    g_assert_cmpint(bdrv_is_allocated_above(bs, NULL, false, 0, 8192, &pnum),
                    ==, 1);
    blk_unref(blk);

    /* Probing: no driver given and nothing recognisable -> raw. */
    blk = open_ok("file.driver=testmem", 0);
    g_assert_cmpstr(bdrv_get_format_name(blk_bs(blk)), ==, "raw");
    g_assert_true(blk_bs(blk)->probed);
    blk_unref(blk);

    /* A probed raw image refuses to get another format's header. */
    if (bdrv_find_format("qcow2") && bdrv_find_format("qcow2")->bdrv_probe) {
        uint8_t hdr[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };

        blk = open_ok("file.driver=testmem", BDRV_O_RDWR);
        g_assert_cmpint(blk_pwrite(blk, 0, 512, hdr, 0), ==, -EPERM);
        g_assert_cmpint(blk_pwrite(blk, 512, 512, hdr, 0), ==, 0);
        hdr[0] = 0;
        g_assert_cmpint(blk_pwrite(blk, 0, 512, hdr, 0), ==, 0);
        blk_unref(blk);
    }
}

/*
 * A format node's cache mode is its storage child's too, unless the child
 * says otherwise (QEMU's "cache.direct=on" beside "file.*" options).
 */
static void test_open_cache_inherit(void)
{
    BlockBackend *blk;
    BlockDriverState *file;

    blk = open_ok("driver=raw,cache.direct=on,cache.no-flush=on,"
                  "file.driver=testmem,file.size=65536", BDRV_O_RDWR);
    file = bdrv_get_file(blk_bs(blk));
    g_assert_true(blk_bs(blk)->open_flags & BDRV_O_NOCACHE);
    g_assert_true(file->open_flags & BDRV_O_NOCACHE);
    g_assert_true(file->open_flags & BDRV_O_NO_FLUSH);
    blk_unref(blk);

    blk = open_ok("driver=raw,cache.direct=on,file.driver=testmem,"
                  "file.size=65536,file.cache.direct=off", BDRV_O_RDWR);
    file = bdrv_get_file(blk_bs(blk));
    g_assert_false(file->open_flags & BDRV_O_NOCACHE);
    blk_unref(blk);

    blk = open_ok("driver=raw,cache.direct=off,file.driver=testmem,"
                  "file.size=65536", BDRV_O_RDWR | BDRV_O_NOCACHE);
    file = bdrv_get_file(blk_bs(blk));
    g_assert_false(file->open_flags & BDRV_O_NOCACHE);
    blk_unref(blk);
}

static void test_backing_chain(void)
{
    BlockBackend *blk;
    BlockDriverState *bs, *base;
    TestMemState *top_mem, *base_mem;
    uint8_t buf[4096], rbuf[4096];
    int64_t pnum, map;
    int depth, ret;

    /* top: 64k testcow; backing: 32k raw (shorter than the top). */
    blk = open_ok("driver=testcow,file.driver=testmem,file.size=65536,"
                  "backing.driver=raw,backing.file.driver=testmem,"
                  "backing.file.size=32768", BDRV_O_RDWR);
    bs = blk_bs(blk);
    base = bdrv_backing_bs(bs);
    g_assert_nonnull(base);
    g_assert_true(bdrv_is_read_only(base));
    g_assert_false(bdrv_is_read_only(bs));
    base_mem = last_state;
    top_mem = prev_state;
    g_assert_nonnull(top_mem);
    memset(base_mem->buf, 0x11, 32768);

    /* Unallocated clusters read from the backing file, zeroes past it. */
    g_assert_cmpint(blk_pread(blk, 0, 4096, rbuf, 0), ==, 0);
    memset(buf, 0x11, 4096);
    g_assert_cmpmem(rbuf, 4096, buf, 4096);
    g_assert_cmpint(blk_pread(blk, 40960, 4096, rbuf, 0), ==, 0);
    memset(buf, 0, 4096);
    g_assert_cmpmem(rbuf, 4096, buf, 4096);

    /* Unaligned write into cluster 1: RMW pulls the rest from backing. */
    memset(buf, 0x22, 100);
    g_assert_cmpint(blk_pwrite(blk, 4096 + 10, 100, buf, 0), ==, 0);
    g_assert_cmpint(top_mem->buf[4096], ==, 0x11);
    g_assert_cmpint(top_mem->buf[4096 + 10], ==, 0x22);
    g_assert_cmpint(top_mem->buf[4096 + 110], ==, 0x11);

    /* Status: cluster 0 in the backing (depth 2). */
    ret = bdrv_block_status_above(bs, NULL, 0, 65536, &pnum, &map, NULL,
                                  &depth);
    g_assert_cmpint(ret, >=, 0);
    g_assert_true(ret & BDRV_BLOCK_DATA);
    g_assert_true(ret & BDRV_BLOCK_ALLOCATED);
    g_assert_cmpint(pnum, ==, 4096);
    g_assert_cmpint(depth, ==, 2);
    /* Cluster 1 allocated on top. */
    ret = bdrv_block_status_above(bs, NULL, 4096, 65536 - 4096, &pnum, &map,
                                  NULL, &depth);
    g_assert_true(ret & BDRV_BLOCK_DATA);
    g_assert_cmpint(pnum, ==, 4096);
    g_assert_cmpint(depth, ==, 1);
    g_assert_cmpint(map, ==, 4096);
    /* Past the backing file's end: zero, counted as allocated. */
    ret = bdrv_block_status_above(bs, NULL, 32768, 32768, &pnum, NULL, NULL,
                                  &depth);
    g_assert_true(ret & BDRV_BLOCK_ZERO);
    g_assert_true(ret & BDRV_BLOCK_ALLOCATED);
    g_assert_true(ret & BDRV_BLOCK_EOF);
    g_assert_cmpint(pnum, ==, 32768);
    /* Only the top: cluster 0 unallocated. */
    g_assert_cmpint(bdrv_is_allocated(bs, 0, 65536, &pnum), ==, 0);
    g_assert_cmpint(pnum, ==, 4096);
    g_assert_cmpint(bdrv_is_allocated(bs, 4096, 65536, &pnum), ==, 1);
    g_assert_cmpint(bdrv_is_allocated_above(bs, base, false, 0, 4096, &pnum),
                    ==, 0);
    g_assert_cmpint(bdrv_is_allocated_above(bs, base, true, 0, 4096, &pnum),
                    ==, 2);
    blk_unref(blk);

    /* BDRV_O_NO_BACKING leaves the chain closed. */
    blk = open_ok("driver=testcow,file.driver=testmem,"
                  "backing.driver=raw,backing.file.driver=testmem",
                  BDRV_O_NO_BACKING);
    g_assert_null(bdrv_backing_bs(blk_bs(blk)));
    blk_unref(blk);
}

static void test_backing_names(void)
{
    struct {
        const char *backed, *backing, *full;
    } cases[] = {
        { "y.qcow2", "x.qcow2", "x.qcow2" },
        { "/tmp/ref/y.qcow2", "x.qcow2", "/tmp/ref/x.qcow2" },
        { "sub/c.qcow2", "../a.raw", "sub/../a.raw" },
        { "sub/c.qcow2", "/abs/a.raw", "/abs/a.raw" },
        { "sub/c.qcow2", "file:a.raw", "file:a.raw" },
    };
    Error *err = NULL;
    char *s;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        s = bdrv_get_full_backing_filename_from_filename(cases[i].backed,
                                                         cases[i].backing,
                                                         &error_abort);
        g_assert_cmpstr(s, ==, cases[i].full);
        g_free(s);
    }
    s = bdrv_get_full_backing_filename_from_filename("json:{}", "a.raw", &err);
    g_assert_null(s);
    g_assert_nonnull(err);
    error_free(err);
}

/* qemu-img create's core on a real file: the "Formatting" line and errors. */
static void test_img_create_raw(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-block-io-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "a.raw", NULL);
    g_autofree char *path2 = g_build_filename(dir, "b.raw", NULL);
    Error *err = NULL;
    BlockBackend *blk;
    int ret;

    if (g_test_subprocess()) {
        ret = bdrv_img_create(path, "raw", NULL, NULL, NULL, 1 * MiB, 0,
                              false, &error_abort);
        g_assert_cmpint(ret, ==, 0);
        unlink(path);
        rmdir(dir);
        exit(0);
    }
    g_assert_nonnull(dir);
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout("Formatting '*a.raw', fmt=raw size=1048576\n");

    /* The subprocess had its own tmp dir: create here quietly. */
    ret = bdrv_img_create(path, "raw", NULL, NULL, "size=64k", -1, 0, true,
                          &error_abort);
    g_assert_cmpint(ret, ==, 0);
    blk = blk_new_open(path, NULL, 0, &error_abort);
    g_assert_cmpint(blk_getlength(blk), ==, 65536);
    g_assert_cmpstr(bdrv_get_format_name(blk_bs(blk)), ==, "raw");
    blk_unref(blk);

    ret = bdrv_img_create(path2, "raw", NULL, NULL, NULL, -1, 0, true, &err);
    g_assert_cmpint(ret, <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Image creation needs a size parameter");
    error_free(err);
    err = NULL;
    ret = bdrv_img_create(path2, "raw", path, "raw", NULL, -1, 0, true, &err);
    g_assert_cmpint(ret, <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Backing file not supported for file format 'raw'");
    error_free(err);
    err = NULL;
    ret = bdrv_img_create(path2, "raw", NULL, NULL, "size=1M", 1 * MiB, 0,
                          true, &err);
    g_assert_cmpint(ret, <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "The image size must be specified only once");
    error_free(err);
    err = NULL;
    ret = bdrv_img_create(path2, "nope", NULL, NULL, NULL, 1 * MiB, 0, true,
                          &err);
    g_assert_cmpint(ret, <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==, "Unknown file format 'nope'");
    error_free(err);

    unlink(path);
    unlink(path2);
    rmdir(dir);
}

static void test_query_info(void)
{
    BlockBackend *blk = open_ok("driver=raw,file.driver=testmem,"
                                "file.size=1048576", 0);
    Error *err = NULL;
    QObject *info = bdrv_query_image_info(blk_bs(blk), &err);
    GString *out = g_string_new(NULL);

    g_assert_nonnull(info);
    g_assert_cmpint(qobj_get_int(qdict_obj_get(info, "virtual-size")), ==,
                    1048576);
    g_assert_cmpstr(qobj_get_str(qdict_obj_get(info, "format")), ==, "raw");
    g_assert_false(qobj_get_bool(qdict_obj_get(info, "dirty-flag")));
    g_assert_null(qdict_obj_get(info, "backing-filename"));
    bdrv_image_info_print_human(info, out);
    g_assert_nonnull(strstr(out->str, "file format: raw\n"
                                      "virtual size: 1 MiB (1048576 bytes)\n"));
    g_string_free(out, true);
    qobj_unref(info);
    blk_unref(blk);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    bdrv_register(&bdrv_testmem);
    bdrv_register(&bdrv_testcow);

    g_test_add_func("/block-io/rmw-shadow", test_rmw_shadow);
    g_test_add_func("/block-io/concurrent-rmw", test_concurrent_rmw);
    g_test_add_func("/block-io/max-transfer", test_max_transfer);
    g_test_add_func("/block-io/fua", test_fua);
    g_test_add_func("/block-io/write-zeroes", test_write_zeroes);
    g_test_add_func("/block-io/discard", test_discard);
    g_test_add_func("/block-io/split-and-coalesce", test_split_and_coalesce);
    g_test_add_func("/block-io/drain", test_drain);
    g_test_add_func("/block-io/aio-cb-after-return", test_aio_cb_after_return);
    g_test_add_func("/block-io/errors", test_errors);
    g_test_add_func("/block-io/zone-enotsup", test_zone_enotsup);
    g_test_add_func("/block-io/open-errors", test_open_errors);
    g_test_add_func("/block-io/open-graph", test_open_graph);
    g_test_add_func("/block-io/open-cache-inherit", test_open_cache_inherit);
    g_test_add_func("/block-io/backing-chain", test_backing_chain);
    g_test_add_func("/block-io/backing-names", test_backing_names);
    g_test_add_func("/block-io/query-info", test_query_info);
    g_test_add_func("/block-io/img-create-raw", test_img_create_raw);
    return g_test_run();
}
