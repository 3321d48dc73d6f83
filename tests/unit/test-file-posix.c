/*
 * Unit tests for the file protocol driver (block/file-posix.c) and its
 * AIO back ends, driving the driver callbacks directly.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/raw-aio.h"
#include "qemu/option.h"

#include <sys/wait.h>

static char *tmpdir;
/* A directory on tmpfs (NULL if there is none): the inline I/O path. */
static char *shmdir;

/* ---- helpers ------------------------------------------------------------ */

typedef struct CoCall {
    void (*fn)(void *opaque);
    void *opaque;
    bool done;
} CoCall;

static void coroutine_fn co_call_entry(void *opaque)
{
    CoCall *c = opaque;

    c->fn(c->opaque);
    c->done = true;
}

/* Run fn(opaque) in a coroutine and wait for it in the main loop. */
static void run_co(void (*fn)(void *opaque), void *opaque)
{
    CoCall c = { fn, opaque, false };
    Coroutine *co = qemu_coroutine_create(co_call_entry, &c);

    qemu_coroutine_enter(co);
    AIO_WAIT_WHILE(qemu_get_aio_context(), !c.done);
}

typedef struct OpenArgs {
    BlockDriverState *bs;
    QDict *opts;
    int flags;
    Error *err;
    int ret;
} OpenArgs;

static void coroutine_fn open_co(void *opaque)
{
    OpenArgs *a = opaque;

    a->ret = bdrv_file.bdrv_co_open(a->bs, a->opts, a->flags, &a->err);
}

static void coroutine_fn close_co(void *opaque);

/*
 * Open @path with the file driver.  @extra: "key=value,..." options.
 * Returns NULL and sets *errp on failure.
 */
static BlockDriverState *node_open(const char *path, int flags,
                                   const char *extra, Error **errp)
{
    OpenArgs a = { 0 };
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->drv = &bdrv_file;
    bs->opaque = g_malloc0(bdrv_file.instance_size);
    bs->aio_context = qemu_get_aio_context();
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    bs->refcnt = 1;
    a.bs = bs;
    a.flags = flags;
    a.opts = qdict_new();
    qdict_put_str(a.opts, "filename", path);
    if (extra) {
        char **kv = g_strsplit(extra, ",", -1);
        int i;

        for (i = 0; kv[i]; i++) {
            char *eq = strchr(kv[i], '=');

            g_assert(eq);
            *eq = 0;
            qdict_put_str(a.opts, kv[i], eq + 1);
        }
        g_strfreev(kv);
    }
    run_co(open_co, &a);
    if (a.ret < 0) {
        g_assert(a.err);
        error_propagate(errp, a.err);
        g_free(bs->opaque);
        g_free(bs);
        qdict_free(a.opts);
        return NULL;
    }
    g_assert(!a.err);
    /* Every option we passed must have been consumed. */
    g_assert_cmpint(qdict_size(a.opts), ==, 0);
    qdict_free(a.opts);
    /*
     * A bare node holds no locks; take what a qcow2 parent would (read,
     * write and resize when read-write; share only reads), or share all
     * with force-share.
     */
    if (raw_file_set_perm(bs, BLK_PERM_CONSISTENT_READ |
                          ((flags & BDRV_O_RDWR) ?
                           BLK_PERM_WRITE | BLK_PERM_RESIZE : 0),
                          (flags & BDRV_O_FORCE_SHARE) ? BLK_PERM_ALL :
                          BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED,
                          errp) < 0) {
        run_co(close_co, bs);
        g_free(bs->opaque);
        g_free(bs);
        return NULL;
    }
    return bs;
}

static void coroutine_fn close_co(void *opaque)
{
    bdrv_file.bdrv_co_close(opaque);
}

static void node_close(BlockDriverState *bs)
{
    run_co(close_co, bs);
    g_free(bs->opaque);
    g_free(bs);
}

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static void make_file(const char *path, int64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    close(fd);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
    }
}

/* Synchronous wrappers around the driver callbacks. */
typedef struct IoArgs {
    BlockDriverState *bs;
    int op;
    int64_t offset, bytes;
    QEMUIOVector *qiov;
    size_t qiov_offset;
    BdrvRequestFlags flags;
    PreallocMode prealloc;
    int64_t pnum, map;
    int ret;
    int64_t ret64;
} IoArgs;

enum { OP_READ, OP_WRITE, OP_ZERO, OP_DISCARD, OP_FLUSH, OP_STATUS,
       OP_LENGTH, OP_ALLOC, OP_TRUNCATE };

static void coroutine_fn io_co(void *opaque)
{
    IoArgs *a = opaque;
    BlockDriver *drv = &bdrv_file;
    BlockDriverState *file = NULL;

    switch (a->op) {
    case OP_READ:
        a->ret = drv->bdrv_co_preadv_part(a->bs, a->offset, a->bytes, a->qiov,
                                          a->qiov_offset, 0);
        break;
    case OP_WRITE:
        a->ret = drv->bdrv_co_pwritev_part(a->bs, a->offset, a->bytes,
                                           a->qiov, a->qiov_offset, 0);
        break;
    case OP_ZERO:
        a->ret = drv->bdrv_co_pwrite_zeroes(a->bs, a->offset, a->bytes,
                                            a->flags);
        break;
    case OP_DISCARD:
        a->ret = drv->bdrv_co_pdiscard(a->bs, a->offset, a->bytes);
        break;
    case OP_FLUSH:
        a->ret = drv->bdrv_co_flush_to_disk(a->bs);
        break;
    case OP_STATUS:
        a->ret = drv->bdrv_co_block_status(a->bs, true, a->offset, a->bytes,
                                           &a->pnum, &a->map, &file);
        g_assert(a->ret < 0 || file == a->bs);
        break;
    case OP_LENGTH:
        a->ret64 = drv->bdrv_co_getlength(a->bs);
        break;
    case OP_ALLOC:
        a->ret64 = drv->bdrv_co_get_allocated_file_size(a->bs);
        break;
    case OP_TRUNCATE:
        a->ret = drv->bdrv_co_truncate(a->bs, a->offset, true,
                                       a->prealloc, 0,
                                       &error_abort);
        break;
    }
}

static int do_io(BlockDriverState *bs, int op, int64_t offset, int64_t bytes,
                 QEMUIOVector *qiov, size_t qiov_offset)
{
    IoArgs a = { bs, op, offset, bytes, qiov, qiov_offset };

    run_co(io_co, &a);
    return a.ret;
}

static int do_buf(BlockDriverState *bs, int op, int64_t offset, void *buf,
                  size_t len)
{
    QEMUIOVector qiov;
    int ret;

    qemu_iovec_init_buf(&qiov, buf, len);
    ret = do_io(bs, op, offset, len, &qiov, 0);
    qemu_iovec_destroy(&qiov);
    return ret;
}

static int do_zero(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   BdrvRequestFlags flags)
{
    IoArgs a = { bs, OP_ZERO, offset, bytes, .flags = flags };

    run_co(io_co, &a);
    return a.ret;
}

static int do_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     int64_t *pnum)
{
    IoArgs a = { bs, OP_STATUS, offset, bytes };

    run_co(io_co, &a);
    *pnum = a.pnum;
    if (a.ret >= 0) {
        g_assert_cmpint(a.map, ==, offset);
    }
    return a.ret;
}

static int64_t do_len(BlockDriverState *bs, int op)
{
    IoArgs a = { bs, op };

    run_co(io_co, &a);
    return a.ret64;
}

static int do_truncate(BlockDriverState *bs, int64_t size,
                       PreallocMode prealloc)
{
    IoArgs a = { bs, OP_TRUNCATE, size, .prealloc = prealloc };

    run_co(io_co, &a);
    return a.ret;
}

static bool buf_is_zero(const uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

/* ---- read/write tests, per aio mode ------------------------------------ */

typedef struct ModeParam {
    const char *aio;
    bool direct;
    bool tmpfs;
} ModeParam;

static char *mode_path(const ModeParam *p, const char *name)
{
    return g_build_filename(p->tmpfs ? shmdir : tmpdir, name, NULL);
}

static const char *mode_opts(const ModeParam *p)
{
    static char buf[64];

    snprintf(buf, sizeof(buf), "aio=%s,cache.direct=%s", p->aio,
             p->direct ? "on" : "off");
    return buf;
}

/* Open for a test, or skip if the kernel or fs refuses the mode. */
static BlockDriverState *mode_open(const ModeParam *p, const char *path,
                                   int flags)
{
    Error *err = NULL;
    BlockDriverState *bs = node_open(path, flags, mode_opts(p), &err);

    if (!bs) {
        const char *msg = error_get_pretty(err);

        if (strstr(msg, "Unable to use") ||
            (p->direct && strstr(msg, "Invalid argument"))) {
            char *why = g_strdup_printf("aio=%s direct=%d refused: %s",
                                        p->aio, p->direct, msg);
            g_test_skip(why);
            g_free(why);
            error_free(err);
            return NULL;
        }
        g_error("open failed: %s", msg);
    }
    return bs;
}

#define FILE_SIZE (1 * MiB)

static void test_rw(gconstpointer opaque)
{
    const ModeParam *p = opaque;
    char *path = mode_path(p, "rw.img");
    BlockDriverState *bs;
    size_t align = 4096;
    uint8_t *wbuf = qemu_memalign(align, 256 * KiB);
    uint8_t *rbuf = qemu_memalign(align, 256 * KiB + align);
    QEMUIOVector qiov;
    int64_t pnum;
    int ret, fd;

    make_file(path, FILE_SIZE);
    bs = mode_open(p, path, BDRV_O_RDWR | BDRV_O_UNMAP);
    if (!bs) {
        goto out;
    }
    if (p->direct) {
        g_assert_cmpint(bs->bl.request_alignment, >=, 512);
        g_assert_cmpint(bs->bl.request_alignment, <=, 4096);
        g_assert_cmpint(bs->bl.min_mem_alignment, >=, 512);
    } else {
        g_assert_cmpint(bs->bl.request_alignment, ==, 1);
    }

    /* Write through a three-element vector, read back in one buffer. */
    fill_pattern(wbuf, 64 * KiB, 1);
    qemu_iovec_init(&qiov, 3);
    qemu_iovec_add(&qiov, wbuf, 4096);
    qemu_iovec_add(&qiov, wbuf + 4096, 32 * KiB);
    qemu_iovec_add(&qiov, wbuf + 36 * KiB, 28 * KiB);
    g_assert_cmpint(do_io(bs, OP_WRITE, 8192, 64 * KiB, &qiov, 0), ==, 0);
    qemu_iovec_destroy(&qiov);
    memset(rbuf, 0xaa, 64 * KiB);
    g_assert_cmpint(do_buf(bs, OP_READ, 8192, rbuf, 64 * KiB), ==, 0);
    g_assert(memcmp(rbuf, wbuf, 64 * KiB) == 0);

    /* Data really reached the file (not just a cache of ours). */
    fd = open(path, O_RDONLY);
    g_assert_cmpint(pread(fd, rbuf, 64 * KiB, 8192), ==, 64 * KiB);
    g_assert(memcmp(rbuf, wbuf, 64 * KiB) == 0);
    close(fd);

    /* A slice of a vector: bytes [4096, 4096 + 36k) of the qiov. */
    qemu_iovec_init(&qiov, 3);
    qemu_iovec_add(&qiov, rbuf, 4096);
    qemu_iovec_add(&qiov, rbuf + 4096, 32 * KiB);
    qemu_iovec_add(&qiov, rbuf + 36 * KiB, 28 * KiB);
    memset(rbuf, 0, 64 * KiB);
    g_assert_cmpint(do_io(bs, OP_READ, 8192 + 4096, 36 * KiB, &qiov, 4096),
                    ==, 0);
    g_assert(buf_is_zero(rbuf, 4096));
    g_assert(memcmp(rbuf + 4096, wbuf + 4096, 36 * KiB) == 0);
    g_assert(buf_is_zero(rbuf + 40 * KiB, 24 * KiB));
    qemu_iovec_destroy(&qiov);

    /* Misaligned memory: bounced under O_DIRECT, direct otherwise. */
    fill_pattern(wbuf, 8192, 2);
    memcpy(rbuf + 1, wbuf, 8192);
    g_assert_cmpint(do_buf(bs, OP_WRITE, 128 * KiB, rbuf + 1, 8192), ==, 0);
    memset(rbuf, 0, 16384);
    g_assert_cmpint(do_buf(bs, OP_READ, 128 * KiB, rbuf + 3, 8192), ==, 0);
    g_assert(memcmp(rbuf + 3, wbuf, 8192) == 0);

    g_assert_cmpint(do_io(bs, OP_FLUSH, 0, 0, NULL, 0), ==, 0);

    /* Write zeroes, with and without unmap. */
    fill_pattern(wbuf, 64 * KiB, 3);
    g_assert_cmpint(do_buf(bs, OP_WRITE, 256 * KiB, wbuf, 64 * KiB), ==, 0);
    ret = do_zero(bs, 256 * KiB, 16 * KiB, 0);
    g_assert(ret == 0 || ret == -ENOTSUP);
    if (ret == 0) {
        g_assert_cmpint(do_buf(bs, OP_READ, 256 * KiB, rbuf, 64 * KiB), ==, 0);
        g_assert(buf_is_zero(rbuf, 16 * KiB));
        g_assert(memcmp(rbuf + 16 * KiB, wbuf + 16 * KiB, 48 * KiB) == 0);
    }
    g_assert_cmpint(do_zero(bs, 256 * KiB + 16 * KiB, 16 * KiB,
                            BDRV_REQ_MAY_UNMAP), ==, 0);
    g_assert_cmpint(do_buf(bs, OP_READ, 256 * KiB, rbuf, 64 * KiB), ==, 0);
    g_assert(buf_is_zero(rbuf + 16 * KiB, 16 * KiB));
    g_assert(memcmp(rbuf + 32 * KiB, wbuf + 32 * KiB, 32 * KiB) == 0);

    /* Discard punches a hole that block_status reports as zero. */
    fill_pattern(wbuf, 256 * KiB, 4);
    g_assert_cmpint(do_buf(bs, OP_WRITE, 512 * KiB, wbuf, 256 * KiB), ==, 0);
    g_assert_cmpint(do_io(bs, OP_FLUSH, 0, 0, NULL, 0), ==, 0);
    ret = do_status(bs, 512 * KiB, 256 * KiB, &pnum);
    g_assert_cmpint(ret, ==, BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID);
    g_assert_cmpint(pnum, ==, 256 * KiB);
    g_assert_cmpint(do_io(bs, OP_DISCARD, 576 * KiB, 64 * KiB, NULL, 0), ==,
                    0);
    ret = do_status(bs, 576 * KiB, 192 * KiB, &pnum);
    g_assert_cmpint(ret, ==, BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID);
    g_assert_cmpint(pnum, ==, 64 * KiB);
    ret = do_status(bs, 512 * KiB, 256 * KiB, &pnum);
    g_assert_cmpint(ret, ==, BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID);
    g_assert_cmpint(pnum, ==, 64 * KiB);
    g_assert_cmpint(do_buf(bs, OP_READ, 512 * KiB, rbuf, 256 * KiB), ==, 0);
    g_assert(memcmp(rbuf, wbuf, 64 * KiB) == 0);
    g_assert(buf_is_zero(rbuf + 64 * KiB, 64 * KiB));
    g_assert(memcmp(rbuf + 128 * KiB, wbuf + 128 * KiB, 128 * KiB) == 0);
    /* Unwritten tail of the file is a hole. */
    ret = do_status(bs, FILE_SIZE - 64 * KiB, 64 * KiB, &pnum);
    g_assert_cmpint(ret, ==, BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID);
    g_assert_cmpint(pnum, ==, 64 * KiB);

    /* Truncate: grow to an unaligned size; reads at EOF are zero-filled. */
    g_assert_cmpint(do_truncate(bs, FILE_SIZE + 4096, PREALLOC_MODE_OFF),
                    ==, 0);
    fill_pattern(wbuf, 4096, 5);
    g_assert_cmpint(do_buf(bs, OP_WRITE, FILE_SIZE, wbuf, 4096), ==, 0);
    g_assert_cmpint(do_truncate(bs, FILE_SIZE + 100, PREALLOC_MODE_OFF),
                    ==, 0);
    g_assert_cmpint(do_len(bs, OP_LENGTH), ==, FILE_SIZE + 100);
    memset(rbuf, 0xcc, 8192);
    g_assert_cmpint(do_buf(bs, OP_READ, FILE_SIZE, rbuf, 8192), ==, 0);
    g_assert(memcmp(rbuf, wbuf, 100) == 0);
    g_assert(buf_is_zero(rbuf + 100, 8192 - 100));
    ret = do_status(bs, FILE_SIZE, 4096, &pnum);
    g_assert(ret & BDRV_BLOCK_DATA);
    g_assert_cmpint(pnum, ==, p->direct ? bs->bl.request_alignment : 100);
    ret = do_status(bs, FILE_SIZE + 4096, 4096, &pnum);
    g_assert_cmpint(ret, ==, BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID);

    /* Plain shrink works. */
    g_assert_cmpint(do_truncate(bs, 512 * KiB, PREALLOC_MODE_OFF), ==, 0);
    g_assert_cmpint(do_len(bs, OP_LENGTH), ==, 512 * KiB);
    g_assert_cmpint(do_len(bs, OP_ALLOC), >, 0);

    node_close(bs);
out:
    unlink(path);
    g_free(path);
    qemu_vfree(wbuf);
    qemu_vfree(rbuf);
}

/* Many coroutines in flight at once, each with its own block. */
#define CONC_REQS 300
#define CONC_BLOCK 4096

typedef struct ConcReq {
    BlockDriverState *bs;
    uint8_t *buf;
    int idx;
    bool write;
    int ret;
    bool done;
} ConcReq;

static void coroutine_fn conc_co(void *opaque)
{
    ConcReq *r = opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, r->buf, CONC_BLOCK);
    if (r->write) {
        r->ret = bdrv_file.bdrv_co_pwritev_part(r->bs,
                                                (int64_t)r->idx * CONC_BLOCK,
                                                CONC_BLOCK, &qiov, 0, 0);
    } else {
        r->ret = bdrv_file.bdrv_co_preadv_part(r->bs,
                                               (int64_t)r->idx * CONC_BLOCK,
                                               CONC_BLOCK, &qiov, 0, 0);
    }
    qemu_iovec_destroy(&qiov);
    r->done = true;
}

static void run_concurrent(BlockDriverState *bs, ConcReq *reqs, bool write)
{
    int i, ndone;

    for (i = 0; i < CONC_REQS; i++) {
        reqs[i].write = write;
        reqs[i].done = false;
        reqs[i].ret = -EINPROGRESS;
    }
    /* Start all of them before any can complete. */
    for (i = 0; i < CONC_REQS; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(conc_co, &reqs[i]));
    }
    do {
        ndone = 0;
        for (i = 0; i < CONC_REQS; i++) {
            ndone += reqs[i].done;
        }
        if (ndone < CONC_REQS) {
            aio_poll(qemu_get_aio_context(), true);
        }
    } while (ndone < CONC_REQS);
    for (i = 0; i < CONC_REQS; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }
}

static void test_concurrent(gconstpointer opaque)
{
    const ModeParam *p = opaque;
    char *path = mode_path(p, "conc.img");
    ConcReq reqs[CONC_REQS];
    uint8_t *expect = g_malloc(CONC_BLOCK);
    BlockDriverState *bs;
    int i;

    make_file(path, CONC_REQS * CONC_BLOCK);
    bs = mode_open(p, path, BDRV_O_RDWR);
    if (!bs) {
        goto out;
    }
    for (i = 0; i < CONC_REQS; i++) {
        reqs[i].bs = bs;
        reqs[i].idx = i;
        reqs[i].buf = qemu_memalign(4096, CONC_BLOCK);
        fill_pattern(reqs[i].buf, CONC_BLOCK, 100 + i);
    }
    run_concurrent(bs, reqs, true);
    for (i = 0; i < CONC_REQS; i++) {
        memset(reqs[i].buf, 0, CONC_BLOCK);
    }
    run_concurrent(bs, reqs, false);
    for (i = 0; i < CONC_REQS; i++) {
        fill_pattern(expect, CONC_BLOCK, 100 + i);
        g_assert(memcmp(reqs[i].buf, expect, CONC_BLOCK) == 0);
        qemu_vfree(reqs[i].buf);
    }
    node_close(bs);
out:
    unlink(path);
    g_free(path);
    g_free(expect);
}

/* ---- open errors ------------------------------------------------------ */

static void expect_open_error(const char *path, int flags, const char *extra,
                              const char *msg)
{
    Error *err = NULL;
    BlockDriverState *bs = node_open(path, flags, extra, &err);

    g_assert(!bs);
    g_assert(err);
    if (strcmp(error_get_pretty(err), msg) != 0) {
        g_error("expected '%s', got '%s'", msg, error_get_pretty(err));
    }
    error_free(err);
}

static void test_open_errors(void)
{
    char *path = tmp_path("does-not-exist.img");
    char *msg = g_strdup_printf("Could not open '%s': No such file or "
                                "directory", path);
    char *exist = tmp_path("exists.img");
    char *dirmsg = g_strdup_printf("'file' driver requires '%s' to be a "
                                   "regular file", tmpdir);

    expect_open_error(path, BDRV_O_RDWR, NULL, msg);
    expect_open_error(path, 0, NULL, msg);
    make_file(exist, 4096);
    expect_open_error(exist, BDRV_O_RDWR, "aio=native",
                      "aio=native was specified, but it requires "
                      "cache.direct=on, which was not specified.");
    expect_open_error(exist, BDRV_O_RDWR, "cache.direct=maybe",
                      "Parameter 'cache.direct' expects 'on' or 'off'");
    expect_open_error(exist, BDRV_O_RDWR, "aio=foo",
                      "invalid parameter value: foo");
    expect_open_error(tmpdir, 0, NULL, dirmsg);
    unlink(exist);
    g_free(path);
    g_free(msg);
    g_free(exist);
    g_free(dirmsg);
}

/* Options select cache modes and are reflected in the node's flags. */
static void test_options(void)
{
    char *path = tmp_path("opts.img");
    char *prefixed = g_strdup_printf("file:%s", path);
    BlockDriverState *bs;
    uint8_t buf[512] = { 0 };

    make_file(path, 64 * KiB);
    bs = node_open(path, BDRV_O_RDWR | BDRV_O_NOCACHE,
                   "cache.direct=off,cache.no-flush=on", &error_abort);
    g_assert(!(bs->open_flags & BDRV_O_NOCACHE));
    g_assert(bs->open_flags & BDRV_O_NO_FLUSH);
    g_assert_cmpint(bs->bl.request_alignment, ==, 1);
    g_assert_cmpint(do_io(bs, OP_FLUSH, 0, 0, NULL, 0), ==, 0);
    node_close(bs);

#ifdef CONFIG_LINUX_AIO
    /* Flags alone: O_DIRECT and aio=native via BDRV_O_NATIVE_AIO. */
    bs = node_open(prefixed, BDRV_O_RDWR | BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO,
                   NULL, &error_abort);
    g_assert(bs->open_flags & BDRV_O_NOCACHE);
    g_assert_cmpint(bs->bl.request_alignment, >=, 512);
    g_assert_cmpint(do_len(bs, OP_LENGTH), ==, 64 * KiB);
    node_close(bs);
#endif

    /* Read-only nodes refuse writes. */
    bs = node_open(path, 0, NULL, &error_abort);
    g_assert(bs->read_only);
    g_assert_cmpint(do_buf(bs, OP_WRITE, 0, buf, sizeof(buf)), ==, -EBADF);
    g_assert_cmpint(do_buf(bs, OP_READ, 0, buf, sizeof(buf)), ==, 0);
    node_close(bs);

    unlink(path);
    g_free(path);
    g_free(prefixed);
}

/* ---- locking ---------------------------------------------------------- */

static void expect_lock_error(const char *path, int flags, const char *what)
{
    Error *err = NULL;
    BlockDriverState *bs = node_open(path, flags, NULL, &err);
    char *msg = g_strdup_printf("Failed to get %s lock", what);

    g_assert(!bs);
    g_assert(err);
    if (strcmp(error_get_pretty(err), msg) != 0) {
        g_error("expected '%s', got '%s'", msg, error_get_pretty(err));
    }
    g_free(msg);
    error_free(err);
}

static bool have_qemu_io(void)
{
    return g_file_test("/usr/bin/qemu-io", G_FILE_TEST_IS_EXECUTABLE);
}

/* Run Debian's qemu-io on @path; returns its exit status, *err its stderr. */
static int run_qemu_io(const char *args, const char *path, char **err)
{
    char *cmd = g_strdup_printf("/usr/bin/qemu-io %s -c 'read 0 512' '%s'",
                                args, path);
    char *out = NULL;
    int status = -1;

    g_assert(g_spawn_command_line_sync(cmd, &out, err, &status, NULL));
    g_free(out);
    g_free(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Is byte @off of @path locked by anybody (other than a fresh fd)? */
static bool byte_locked(const char *path, int off)
{
    int fd = open(path, O_RDONLY);
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = off, .l_len = 1, .l_type = F_WRLCK,
    };

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
    close(fd);
    return fl.l_type != F_UNLCK;
}

static void test_locking(void)
{
    char *path = tmp_path("lock.img");
    BlockDriverState *w, *r1, *r2, *u;
    Error *err = NULL;

    make_file(path, 64 * KiB);

    /* Readers share the image with each other. */
    r1 = node_open(path, 0, NULL, &error_abort);
    r2 = node_open(path, 0, NULL, &error_abort);
    g_assert(byte_locked(path, 100));
    g_assert(byte_locked(path, 201));
    g_assert(!byte_locked(path, 101));
    /* ...but a writer needs readers to go away (they unshare write). */
    expect_lock_error(path, BDRV_O_RDWR, "\"write\"");
    node_close(r1);
    node_close(r2);
    g_assert(!byte_locked(path, 100));

    w = node_open(path, BDRV_O_RDWR, NULL, &error_abort);
    g_assert(byte_locked(path, 100));
    g_assert(byte_locked(path, 101));
    g_assert(byte_locked(path, 103));
    g_assert(byte_locked(path, 201));
    g_assert(byte_locked(path, 203));
    g_assert(!byte_locked(path, 200));
    expect_lock_error(path, BDRV_O_RDWR, "\"write\"");
    expect_lock_error(path, 0, "shared \"write\"");
    /* -U (force share) and locking=off do not look at locks. */
    u = node_open(path, BDRV_O_FORCE_SHARE, NULL, &error_abort);
    node_close(u);
    u = node_open(path, BDRV_O_RDWR, "locking=off", &error_abort);
    node_close(u);

    if (have_qemu_io()) {
        char *stderr_txt = NULL;

        /* QEMU's qemu-io sees our lock... */
        g_assert_cmpint(run_qemu_io("-f raw", path, &stderr_txt), !=, 0);
        g_assert(strstr(stderr_txt, "Failed to get \"write\" lock"));
        g_assert(strstr(stderr_txt, "Is another process using the image"));
        g_free(stderr_txt);
        g_assert_cmpint(run_qemu_io("-r -U -f raw", path, &stderr_txt), ==, 0);
        g_free(stderr_txt);
    } else {
        g_test_skip("no /usr/bin/qemu-io: interop checks not run");
    }

    /* Sharing everything (QEMU's raw format) lets a reader in. */
    g_assert_cmpint(raw_file_set_perm(w, BLK_PERM_CONSISTENT_READ |
                                      BLK_PERM_WRITE, BLK_PERM_ALL, &err),
                    ==, 0);
    g_assert(!byte_locked(path, 201));
    g_assert(!byte_locked(path, 103));
    g_assert(byte_locked(path, 101));
    r1 = node_open(path, 0, "locking=on", &err);
    g_assert(!r1);  /* the reader itself still unshares write */
    g_assert(strstr(error_get_pretty(err), "shared \"write\""));
    error_free(err);
    err = NULL;
    node_close(w);
    g_assert(!byte_locked(path, 100));
    g_assert(!byte_locked(path, 101));

    /* ...and our open is refused while QEMU's qemu-io holds the image. */
    if (have_qemu_io()) {
        char *argv[] = { (char *)"/usr/bin/qemu-io", (char *)"-f",
                         (char *)"qcow2", path, NULL };
        char *qcow = tmp_path("lock.qcow2");
        char *cmd = g_strdup_printf("/usr/bin/qemu-img create -q -f qcow2 "
                                    "'%s' 1M", qcow);
        GPid pid;
        int in_fd, i;

        g_assert(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
        argv[3] = qcow;
        g_assert(g_spawn_async_with_pipes(NULL, argv, NULL,
                                          G_SPAWN_DO_NOT_REAP_CHILD |
                                          G_SPAWN_STDOUT_TO_DEV_NULL,
                                          NULL, NULL, &pid, &in_fd, NULL,
                                          NULL, NULL));
        for (i = 0; i < 500 && !byte_locked(qcow, 101); i++) {
            g_usleep(10000);
        }
        g_assert(byte_locked(qcow, 101));
        expect_lock_error(qcow, BDRV_O_RDWR, "\"write\"");
        expect_lock_error(qcow, 0, "shared \"write\"");
        u = node_open(qcow, BDRV_O_FORCE_SHARE, NULL, &error_abort);
        node_close(u);
        close(in_fd);          /* EOF on stdin: qemu-io quits */
        waitpid(pid, NULL, 0);
        g_spawn_close_pid(pid);
        w = node_open(qcow, BDRV_O_RDWR, NULL, &error_abort);
        node_close(w);
        unlink(qcow);
        g_free(qcow);
        g_free(cmd);
    }

    unlink(path);
    g_free(path);
}

/* ---- create ----------------------------------------------------------- */

typedef struct CreateArgs {
    const char *filename;
    QemuOpts *opts;
    Error *err;
    int ret;
} CreateArgs;

static void coroutine_fn create_co(void *opaque)
{
    CreateArgs *a = opaque;

    a->ret = bdrv_file.bdrv_co_create_opts(&bdrv_file, a->filename, a->opts,
                                           &a->err);
}

static int do_create(const char *filename, const char *optstr, Error **errp)
{
    CreateArgs a = { filename };

    a.opts = qemu_opts_create(bdrv_file.create_opts);
    g_assert(qemu_opts_do_parse(a.opts, optstr, &error_abort));
    run_co(create_co, &a);
    qemu_opts_del(a.opts);
    if (a.ret < 0) {
        g_assert(a.err);
        error_propagate(errp, a.err);
    } else {
        g_assert(!a.err);
    }
    return a.ret;
}

static void test_create(void)
{
    char *path = tmp_path("create.img");
    char *bad = g_build_filename(tmpdir, "nodir", "x.img", NULL);
    char *msg;
    Error *err = NULL;
    struct stat st;
    BlockDriverState *w;

    /* off: sparse, only the first block allocated (like QEMU). */
    g_assert_cmpint(do_create(path, "size=1048576", &error_abort), ==, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    g_assert_cmpint(st.st_blocks * 512, <=, 64 * KiB);

    /* An existing file is truncated and re-created. */
    g_assert_cmpint(do_create(path, "size=1000,preallocation=off",
                              &error_abort), ==, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1024);   /* rounded to sectors */

    g_assert_cmpint(do_create(path, "size=1048576,preallocation=falloc",
                              &error_abort), ==, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    g_assert_cmpint(st.st_blocks * 512, >=, 1 * MiB);

    unlink(path);
    g_assert_cmpint(do_create(path, "size=1048576,preallocation=full",
                              &error_abort), ==, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    g_assert_cmpint(st.st_blocks * 512, >=, 1 * MiB);

    g_assert_cmpint(do_create(path, "size=1048576,preallocation=metadata",
                              &err), <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Unsupported preallocation mode: metadata");
    error_free(err);
    err = NULL;

    g_assert_cmpint(do_create(bad, "size=1048576", &err), <, 0);
    msg = g_strdup_printf("Could not create '%s': No such file or directory",
                          bad);
    g_assert_cmpstr(error_get_pretty(err), ==, msg);
    g_free(msg);
    error_free(err);
    err = NULL;

    /* Creating over an image in use is refused and leaves it alone. */
    w = node_open(path, BDRV_O_RDWR, NULL, &error_abort);
    g_assert_cmpint(do_create(path, "size=4096", &err), <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==, "Failed to get \"write\" lock");
    error_free(err);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    node_close(w);

    unlink(path);
    g_free(path);
    g_free(bad);
}

/* Truncate with preallocation through an open node. */
static void test_truncate_prealloc(void)
{
    char *path = tmp_path("trunc.img");
    BlockDriverState *bs;
    struct stat st;

    make_file(path, 0);
    bs = node_open(path, BDRV_O_RDWR, NULL, &error_abort);
    g_assert_cmpint(do_truncate(bs, 1 * MiB, PREALLOC_MODE_FALLOC), ==, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    g_assert_cmpint(st.st_blocks * 512, >=, 1 * MiB);
    g_assert_cmpint(do_truncate(bs, 2 * MiB, PREALLOC_MODE_FULL), ==, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 2 * MiB);
    g_assert_cmpint(st.st_blocks * 512, >=, 2 * MiB);
    g_assert_cmpint(do_len(bs, OP_ALLOC), >=, 2 * MiB);

    node_close(bs);
    unlink(path);
    g_free(path);
}

typedef struct ShrinkArgs {
    BlockDriverState *bs;
    Error *err;
    int ret;
} ShrinkArgs;

static void coroutine_fn shrink_co(void *opaque)
{
    ShrinkArgs *a = opaque;

    a->ret = bdrv_file.bdrv_co_truncate(a->bs, 4096, true,
                                        PREALLOC_MODE_FALLOC, 0, &a->err);
}

static void test_truncate_shrink_prealloc(void)
{
    char *path = tmp_path("shrink.img");
    ShrinkArgs a = { 0 };

    make_file(path, 1 * MiB);
    a.bs = node_open(path, BDRV_O_RDWR, NULL, &error_abort);
    run_co(shrink_co, &a);
    g_assert_cmpint(a.ret, ==, -ENOTSUP);
    g_assert_cmpstr(error_get_pretty(a.err), ==,
                    "Cannot use preallocation for shrinking files");
    error_free(a.err);
    g_assert_cmpint(do_len(a.bs, OP_LENGTH), ==, 1 * MiB);
    node_close(a.bs);
    unlink(path);
    g_free(path);
}

static const ModeParam modes[] = {
    { "threads", false },
    { "threads", true },
    { "native", true },
    { "io_uring", false },
    { "io_uring", true },
    { "threads", false, true },
    { "io_uring", false, true },
    { "native", true, true },
};

int main(int argc, char **argv)
{
    int i, ret;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    tmpdir = g_dir_make_tmp("test-file-posix-XXXXXX", NULL);
    g_assert(tmpdir);

    if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)) {
        char *tmpl = g_strdup("/dev/shm/test-file-posix-XXXXXX");

        shmdir = g_mkdtemp(tmpl);
        if (!shmdir) {
            g_free(tmpl);
        }
    }
    for (i = 0; i < ARRAY_SIZE(modes); i++) {
        const char *fs = modes[i].tmpfs ? "/tmpfs" : "";
        char *name;

        if (modes[i].tmpfs && !shmdir) {
            continue;
        }
        name = g_strdup_printf("/file-posix/rw/%s/%s%s", modes[i].aio,
                               modes[i].direct ? "direct" : "cached", fs);
        g_test_add_data_func(name, &modes[i], test_rw);
        g_free(name);
        name = g_strdup_printf("/file-posix/concurrent/%s/%s%s",
                               modes[i].aio,
                               modes[i].direct ? "direct" : "cached", fs);
        g_test_add_data_func(name, &modes[i], test_concurrent);
        g_free(name);
    }
    g_test_add_func("/file-posix/open-errors", test_open_errors);
    g_test_add_func("/file-posix/options", test_options);
    g_test_add_func("/file-posix/locking", test_locking);
    g_test_add_func("/file-posix/create", test_create);
    g_test_add_func("/file-posix/truncate-prealloc", test_truncate_prealloc);
    g_test_add_func("/file-posix/truncate-shrink-prealloc",
                    test_truncate_shrink_prealloc);
    ret = g_test_run();
    rmdir(tmpdir);
    g_free(tmpdir);
    if (shmdir) {
        rmdir(shmdir);
        g_free(shmdir);
    }
    return ret;
}
