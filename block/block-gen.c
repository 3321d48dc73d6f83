/*
 * Synchronous wrappers of the bdrv_co_* API.  Inside a coroutine they
 * call the coroutine function directly; outside they run it in a new
 * coroutine and poll the current AioContext until it finishes.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"

/*
 * BDRV_WRAP(ret_type, name, co_call, params...) defines a struct holding
 * the arguments, the coroutine entry and the wrapper.  The argument list
 * is written out once per wrapper below; these macros only remove the
 * repeated boilerplate of "run in coroutine, wait, return".
 */
#define WRAP_BEGIN(rtype, name)                                         \
    typedef struct name##_Co {                                          \
        rtype ret;                                                      \
        bool done;

#define WRAP_END(rtype, name, call)                                     \
    } name##_Co;                                                        \
    static void coroutine_fn name##_entry(void *opaque)                 \
    {                                                                   \
        name##_Co *c = opaque;                                          \
        c->ret = call;                                                  \
        c->done = true;                                                 \
    }

#define WRAP_RUN(name, ...)                                             \
    name##_Co c = { __VA_ARGS__ };                                      \
    bdrv_run_co(name##_entry, &c, &c.done);                             \
    return c.ret

WRAP_BEGIN(int, bdrv_pread)
    BdrvChild *child; int64_t offset; int64_t bytes; void *buf;
    BdrvRequestFlags flags;
WRAP_END(int, bdrv_pread,
         bdrv_co_pread(c->child, c->offset, c->bytes, c->buf, c->flags))

int bdrv_pread(BdrvChild *child, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags)
{
    WRAP_RUN(bdrv_pread, .child = child, .offset = offset, .bytes = bytes,
             .buf = buf, .flags = flags);
}

WRAP_BEGIN(int, bdrv_pwrite)
    BdrvChild *child; int64_t offset; int64_t bytes; const void *buf;
    BdrvRequestFlags flags;
WRAP_END(int, bdrv_pwrite,
         bdrv_co_pwrite(c->child, c->offset, c->bytes, c->buf, c->flags))

int bdrv_pwrite(BdrvChild *child, int64_t offset, int64_t bytes,
                const void *buf, BdrvRequestFlags flags)
{
    WRAP_RUN(bdrv_pwrite, .child = child, .offset = offset, .bytes = bytes,
             .buf = buf, .flags = flags);
}

WRAP_BEGIN(int, bdrv_pwrite_sync)
    BdrvChild *child; int64_t offset; int64_t bytes; const void *buf;
    BdrvRequestFlags flags;
WRAP_END(int, bdrv_pwrite_sync,
         bdrv_co_pwrite_sync(c->child, c->offset, c->bytes, c->buf, c->flags))

int bdrv_pwrite_sync(BdrvChild *child, int64_t offset, int64_t bytes,
                     const void *buf, BdrvRequestFlags flags)
{
    WRAP_RUN(bdrv_pwrite_sync, .child = child, .offset = offset,
             .bytes = bytes, .buf = buf, .flags = flags);
}

WRAP_BEGIN(int, bdrv_pwrite_zeroes)
    BdrvChild *child; int64_t offset; int64_t bytes; BdrvRequestFlags flags;
WRAP_END(int, bdrv_pwrite_zeroes,
         bdrv_co_pwrite_zeroes(c->child, c->offset, c->bytes, c->flags))

int bdrv_pwrite_zeroes(BdrvChild *child, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags)
{
    WRAP_RUN(bdrv_pwrite_zeroes, .child = child, .offset = offset,
             .bytes = bytes, .flags = flags);
}

WRAP_BEGIN(int, bdrv_flush)
    BlockDriverState *bs;
WRAP_END(int, bdrv_flush, bdrv_co_flush(c->bs))

int bdrv_flush(BlockDriverState *bs)
{
    WRAP_RUN(bdrv_flush, .bs = bs);
}

WRAP_BEGIN(int64_t, bdrv_getlength)
    BlockDriverState *bs;
WRAP_END(int64_t, bdrv_getlength, bdrv_co_getlength(c->bs))

int64_t bdrv_getlength(BlockDriverState *bs)
{
    /* The cached length needs no coroutine. */
    if (bs->drv && bs->total_bytes >= 0) {
        return bs->total_bytes;
    }
    {
        WRAP_RUN(bdrv_getlength, .bs = bs);
    }
}

WRAP_BEGIN(int64_t, bdrv_get_allocated_file_size)
    BlockDriverState *bs;
WRAP_END(int64_t, bdrv_get_allocated_file_size,
         bdrv_co_get_allocated_file_size(c->bs))

int64_t bdrv_get_allocated_file_size(BlockDriverState *bs)
{
    WRAP_RUN(bdrv_get_allocated_file_size, .bs = bs);
}

WRAP_BEGIN(int, bdrv_make_empty)
    BlockDriverState *bs;
WRAP_END(int, bdrv_make_empty, bdrv_co_make_empty(c->bs))

int bdrv_make_empty(BlockDriverState *bs)
{
    WRAP_RUN(bdrv_make_empty, .bs = bs);
}

WRAP_BEGIN(int, bdrv_truncate)
    BdrvChild *child; int64_t offset; bool exact; PreallocMode prealloc;
    BdrvRequestFlags flags; Error **errp;
WRAP_END(int, bdrv_truncate,
         bdrv_co_truncate(c->child, c->offset, c->exact, c->prealloc,
                          c->flags, c->errp))

int bdrv_truncate(BdrvChild *child, int64_t offset, bool exact,
                  PreallocMode prealloc, BdrvRequestFlags flags, Error **errp)
{
    WRAP_RUN(bdrv_truncate, .child = child, .offset = offset, .exact = exact,
             .prealloc = prealloc, .flags = flags, .errp = errp);
}

WRAP_BEGIN(int, bdrv_block_status)
    BlockDriverState *bs; int64_t offset; int64_t bytes; int64_t *pnum;
    int64_t *map; BlockDriverState **file;
WRAP_END(int, bdrv_block_status,
         bdrv_co_block_status(c->bs, c->offset, c->bytes, c->pnum, c->map,
                              c->file))

int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    WRAP_RUN(bdrv_block_status, .bs = bs, .offset = offset, .bytes = bytes,
             .pnum = pnum, .map = map, .file = file);
}

WRAP_BEGIN(int, bdrv_block_status_above)
    BlockDriverState *bs; BlockDriverState *base; int64_t offset;
    int64_t bytes; int64_t *pnum; int64_t *map; BlockDriverState **file;
    int *depth;
WRAP_END(int, bdrv_block_status_above,
         bdrv_co_block_status_above(c->bs, c->base, c->offset, c->bytes,
                                    c->pnum, c->map, c->file, c->depth))

int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                            int64_t offset, int64_t bytes, int64_t *pnum,
                            int64_t *map, BlockDriverState **file, int *depth)
{
    WRAP_RUN(bdrv_block_status_above, .bs = bs, .base = base,
             .offset = offset, .bytes = bytes, .pnum = pnum, .map = map,
             .file = file, .depth = depth);
}

WRAP_BEGIN(int, bdrv_is_allocated)
    BlockDriverState *bs; int64_t offset; int64_t bytes; int64_t *pnum;
WRAP_END(int, bdrv_is_allocated,
         bdrv_co_is_allocated(c->bs, c->offset, c->bytes, c->pnum))

int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum)
{
    WRAP_RUN(bdrv_is_allocated, .bs = bs, .offset = offset, .bytes = bytes,
             .pnum = pnum);
}

WRAP_BEGIN(int, bdrv_is_allocated_above)
    BlockDriverState *top; BlockDriverState *base; bool include_base;
    int64_t offset; int64_t bytes; int64_t *pnum;
WRAP_END(int, bdrv_is_allocated_above,
         bdrv_co_is_allocated_above(c->top, c->base, c->include_base,
                                    c->offset, c->bytes, c->pnum))

int bdrv_is_allocated_above(BlockDriverState *top, BlockDriverState *base,
                            bool include_base, int64_t offset, int64_t bytes,
                            int64_t *pnum)
{
    WRAP_RUN(bdrv_is_allocated_above, .top = top, .base = base,
             .include_base = include_base, .offset = offset, .bytes = bytes,
             .pnum = pnum);
}

WRAP_BEGIN(int, bdrv_check)
    BlockDriverState *bs; BdrvCheckResult *res; BdrvCheckMode fix;
WRAP_END(int, bdrv_check, bdrv_co_check(c->bs, c->res, c->fix))

int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix)
{
    WRAP_RUN(bdrv_check, .bs = bs, .res = res, .fix = fix);
}

WRAP_BEGIN(int, bdrv_amend)
    BlockDriverState *bs; QemuOpts *opts; bool force; Error **errp;
WRAP_END(int, bdrv_amend, bdrv_co_amend(c->bs, c->opts, c->force, c->errp))

int bdrv_amend(BlockDriverState *bs, QemuOpts *opts, bool force, Error **errp)
{
    WRAP_RUN(bdrv_amend, .bs = bs, .opts = opts, .force = force,
             .errp = errp);
}

WRAP_BEGIN(int, bdrv_change_backing_file)
    BlockDriverState *bs; const char *backing_file; const char *backing_fmt;
WRAP_END(int, bdrv_change_backing_file,
         bdrv_co_change_backing_file(c->bs, c->backing_file, c->backing_fmt))

int bdrv_change_backing_file(BlockDriverState *bs, const char *backing_file,
                             const char *backing_fmt)
{
    WRAP_RUN(bdrv_change_backing_file, .bs = bs,
             .backing_file = backing_file, .backing_fmt = backing_fmt);
}

WRAP_BEGIN(int, bdrv_zone_report)
    BlockDriverState *bs; int64_t offset; unsigned int *nr_zones;
    BlockZoneDescriptor *zones;
WRAP_END(int, bdrv_zone_report,
         bdrv_co_zone_report(c->bs, c->offset, c->nr_zones, c->zones))

int bdrv_zone_report(BlockDriverState *bs, int64_t offset,
                     unsigned int *nr_zones, BlockZoneDescriptor *zones)
{
    WRAP_RUN(bdrv_zone_report, .bs = bs, .offset = offset,
             .nr_zones = nr_zones, .zones = zones);
}

WRAP_BEGIN(int, bdrv_zone_mgmt)
    BlockDriverState *bs; BlockZoneOp op; int64_t offset; int64_t len;
WRAP_END(int, bdrv_zone_mgmt,
         bdrv_co_zone_mgmt(c->bs, c->op, c->offset, c->len))

int bdrv_zone_mgmt(BlockDriverState *bs, BlockZoneOp op, int64_t offset,
                   int64_t len)
{
    WRAP_RUN(bdrv_zone_mgmt, .bs = bs, .op = op, .offset = offset,
             .len = len);
}
