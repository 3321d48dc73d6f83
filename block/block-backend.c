/*
 * BlockBackend: the handle tools use for I/O on a node graph.  Adds the
 * end-of-image check, write-through emulation, synchronous wrappers and
 * callback-style AIO on top of the bdrv_co_* request layer.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block-backend.h"
#include "block/block_int.h"

struct BlockBackend {
    BdrvChild root;              /* root.bs: the node; root.parent NULL */
    bool allow_write_beyond_eof;
    bool enable_write_cache;
    unsigned int in_flight;      /* AIO requests not yet completed */

    /*
     * Drained sections (bdrv_drained_begin on the root or below): while
     * quiesce_counter > 0, coroutine requests wait in queued_requests
     * before they reach the node; busy counts those past that point,
     * which the section waits for.
     */
    unsigned int quiesce_counter;
    unsigned int busy;
    CoQueue queued_requests;
    const BlockDevOps *dev_ops;
    void *dev_opaque;
};

typedef enum BlkAioType {
    BLK_AIO_READ,
    BLK_AIO_WRITE,
    BLK_AIO_ZEROES,
    BLK_AIO_DISCARD,
    BLK_AIO_FLUSH,
    BLK_AIO_ZONE_APPEND,
} BlkAioType;

struct BlockAIOCB {
    BlockBackend *blk;
    BlockCompletionFunc *cb;
    void *opaque;
    BlkAioType type;
    int64_t offset;
    int64_t bytes;
    int64_t *zone_offset;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    int ret;
    bool done;                   /* the request finished */
    bool has_returned;           /* blk_aio_* returned to the caller */
    BlockAIOCB *next_free;
};

/* A small per-thread cache of ACBs keeps allocation off the hot path. */
#define ACB_CACHE_MAX 64
static __thread BlockAIOCB *acb_cache;
static __thread unsigned int acb_cache_len;

/* ---- lifetime --------------------------------------------------------- */

static void blk_root_drained_begin(BdrvChild *c)
{
    BlockBackend *blk = container_of(c, BlockBackend, root);

    if (blk->quiesce_counter++ == 0 && blk->dev_ops &&
        blk->dev_ops->drained_begin) {
        blk->dev_ops->drained_begin(blk->dev_opaque);
    }
}

static void blk_root_drained_end(BdrvChild *c)
{
    BlockBackend *blk = container_of(c, BlockBackend, root);

    assert(blk->quiesce_counter > 0);
    if (--blk->quiesce_counter > 0) {
        return;
    }
    if (blk->dev_ops && blk->dev_ops->drained_end) {
        blk->dev_ops->drained_end(blk->dev_opaque);
    }
    qemu_co_queue_restart_all(&blk->queued_requests);
}

static bool blk_root_drained_poll(BdrvChild *c)
{
    BlockBackend *blk = container_of(c, BlockBackend, root);

    return blk->busy > 0;
}

static const BdrvChildClass blk_root_class = {
    .drained_begin = blk_root_drained_begin,
    .drained_end = blk_root_drained_end,
    .drained_poll = blk_root_drained_poll,
};

/*
 * Attach to @bs holding @perm and sharing @shared (takes over the
 * caller's reference on @bs, also on failure).
 */
static BlockBackend *blk_wrap(BlockDriverState *bs, uint64_t perm,
                              uint64_t shared, Error **errp)
{
    BlockBackend *blk = g_new0(BlockBackend, 1);

    blk->root.bs = bs;
    blk->root.parent = NULL;
    blk->root.name = g_strdup("root");
    blk->root.role = BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY;
    blk->root.klass = &blk_root_class;
    blk->root.perm = perm;
    blk->root.shared = shared;
    blk->enable_write_cache = true;
    qemu_co_queue_init(&blk->queued_requests);
    /* Attached inside a section: start quiesced, its end releases us. */
    blk->quiesce_counter = bs->quiesce_counter > 0;
    bdrv_parent_link(&blk->root);
    if (bdrv_refresh_perms(bs, errp) < 0) {
        bdrv_parent_unlink(&blk->root);
        bdrv_refresh_perms(bs, NULL);
        bdrv_unref(bs);
        g_free(blk->root.name);
        g_free(blk);
        return NULL;
    }
    return blk;
}

/*
 * The permissions a tool's BlockBackend asks for, as QEMU's: reading
 * (unless BDRV_O_NO_IO), writing with BDRV_O_RDWR, resizing with
 * BDRV_O_RESIZE; everything is shared unless BDRV_O_NO_SHARE.
 */
static void blk_perms_from_flags(int flags, uint64_t *perm, uint64_t *shared)
{
    *perm = 0;
    if (!(flags & BDRV_O_NO_IO)) {
        *perm |= BLK_PERM_CONSISTENT_READ;
        if (flags & BDRV_O_RDWR) {
            *perm |= BLK_PERM_WRITE;
        }
    }
    if (flags & BDRV_O_RESIZE) {
        *perm |= BLK_PERM_RESIZE;
    }
    *shared = (flags & BDRV_O_NO_SHARE) ?
              BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED :
              BLK_PERM_ALL;
}

BlockBackend *blk_new_open(const char *filename, QDict *options, int flags,
                           Error **errp)
{
    BlockDriverState *bs = bdrv_open(filename, options, flags, errp);
    uint64_t perm, shared;

    if (!bs) {
        return NULL;
    }
    blk_perms_from_flags(flags, &perm, &shared);
    return blk_wrap(bs, perm, shared, errp);
}

BlockBackend *blk_new_with_bs(BlockDriverState *bs, Error **errp)
{
    uint64_t perm, shared;

    blk_perms_from_flags(bs->open_flags, &perm, &shared);
    bdrv_ref(bs);
    return blk_wrap(bs, perm, shared, errp);
}

BlockBackend *blk_new_with_perm(BlockDriverState *bs, uint64_t perm,
                                uint64_t shared, Error **errp)
{
    bdrv_ref(bs);
    return blk_wrap(bs, perm, shared, errp);
}

void blk_drain(BlockBackend *blk)
{
    BlockDriverState *bs = blk->root.bs;

    if (qemu_in_coroutine()) {
        bdrv_co_drain(bs);
        return;
    }
    AIO_WAIT_WHILE(bdrv_get_aio_context(bs), blk->in_flight > 0);
    bdrv_drain(bs);
}

void blk_unref(BlockBackend *blk)
{
    if (!blk) {
        return;
    }
    blk_drain(blk);
    bdrv_parent_unlink(&blk->root);
    if (blk->root.bs->refcnt > 1) {
        bdrv_refresh_perms(blk->root.bs, NULL);
    }
    bdrv_unref(blk->root.bs);
    g_free(blk->root.name);
    g_free(blk);
}

BlockDriverState *blk_bs(BlockBackend *blk)
{
    return blk->root.bs;
}

AioContext *blk_get_aio_context(BlockBackend *blk)
{
    return bdrv_get_aio_context(blk->root.bs);
}

bool blk_is_read_only(BlockBackend *blk)
{
    return bdrv_is_read_only(blk->root.bs);
}

void blk_set_allow_write_beyond_eof(BlockBackend *blk, bool allow)
{
    blk->allow_write_beyond_eof = allow;
}

void blk_set_enable_write_cache(BlockBackend *blk, bool wce)
{
    blk->enable_write_cache = wce;
}

void blk_get_zone_geometry(BlockBackend *blk, BlockZoneGeometry *geo)
{
    const BlockLimits *bl = &blk->root.bs->bl;

    memset(geo, 0, sizeof(*geo));
    geo->model = bl->zoned;
    if (bl->zoned == BLK_Z_NONE) {
        return;
    }
    geo->zone_size = bl->zone_size;
    geo->zone_capacity = bl->zone_capacity;
    geo->nr_zones = bl->nr_zones;
    geo->nr_conv_zones = bl->nr_conv_zones;
    geo->max_open_zones = bl->max_open_zones;
    geo->max_active_zones = bl->max_active_zones;
    geo->max_append_bytes = (uint64_t)bl->max_append_sectors <<
                            BDRV_SECTOR_BITS;
}

uint32_t blk_get_logical_block_size(BlockBackend *blk)
{
    const BlockLimits *bl = &blk->root.bs->bl;
    uint32_t lbs = MAX(512, bl->request_alignment);

    if (bl->zoned != BLK_Z_NONE) {
        lbs = MAX(lbs, bl->write_granularity);
    }
    return lbs;
}

void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops, void *opaque)
{
    blk->dev_ops = ops;
    blk->dev_opaque = opaque;
    /* A user arriving inside a section must hold off like the others. */
    if (ops && blk->quiesce_counter > 0 && ops->drained_begin) {
        ops->drained_begin(opaque);
    }
}

/* ---- coroutine API ---------------------------------------------------- */

/*
 * Every coroutine request passes here first: inside a drained section
 * it waits for the end, so nothing new reaches the node.
 */
static inline void coroutine_fn blk_co_request_begin(BlockBackend *blk)
{
    while (unlikely(blk->quiesce_counter > 0)) {
        qemu_co_queue_wait(&blk->queued_requests, NULL);
    }
    blk->busy++;
}

static inline void blk_co_request_end(BlockBackend *blk)
{
    blk->busy--;
}

/* Requests must stay inside the image unless explicitly allowed. */
static inline int blk_check_byte_request(BlockBackend *blk, int64_t offset,
                                         int64_t bytes)
{
    BlockDriverState *bs = blk->root.bs;
    int64_t len;

    if (unlikely(offset < 0 || bytes < 0)) {
        return -EIO;
    }
    if (!blk->allow_write_beyond_eof) {
        len = likely(bs->total_bytes >= 0) ? bs->total_bytes
                                           : bdrv_co_getlength(bs);
        if (unlikely(len < 0)) {
            return len;
        }
        if (unlikely(offset > len || len - offset < bytes)) {
            return -EIO;
        }
    }
    return 0;
}

static int coroutine_fn blk_co_do_preadv(BlockBackend *blk, int64_t offset,
                                         int64_t bytes, QEMUIOVector *qiov,
                                         BdrvRequestFlags flags)
{
    int ret = blk_check_byte_request(blk, offset, bytes);

    if (unlikely(ret < 0)) {
        return ret;
    }
    return bdrv_co_preadv_part(&blk->root, offset, bytes, qiov, 0, flags);
}

static int coroutine_fn blk_co_do_pwritev(BlockBackend *blk, int64_t offset,
                                          int64_t bytes, QEMUIOVector *qiov,
                                          BdrvRequestFlags flags)
{
    int ret = blk_check_byte_request(blk, offset, bytes);

    if (unlikely(ret < 0)) {
        return ret;
    }
    if (!blk->enable_write_cache) {
        flags |= BDRV_REQ_FUA;
    }
    return bdrv_co_pwritev_part(&blk->root, offset, bytes, qiov, 0, flags);
}

static int coroutine_fn blk_co_do_pwrite_zeroes(BlockBackend *blk,
                                                int64_t offset, int64_t bytes,
                                                BdrvRequestFlags flags)
{
    int ret = blk_check_byte_request(blk, offset, bytes);

    if (ret < 0) {
        return ret;
    }
    if (!blk->enable_write_cache) {
        flags |= BDRV_REQ_FUA;
    }
    return bdrv_co_pwrite_zeroes(&blk->root, offset, bytes, flags);
}

static int coroutine_fn blk_co_do_pdiscard(BlockBackend *blk, int64_t offset,
                                           int64_t bytes)
{
    int ret = blk_check_byte_request(blk, offset, bytes);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_pdiscard(&blk->root, offset, bytes);
}

static int coroutine_fn blk_co_do_flush(BlockBackend *blk)
{
    return bdrv_co_flush(blk->root.bs);
}

static int coroutine_fn blk_co_do_zone_report(BlockBackend *blk, int64_t offset,
                                              unsigned int *nr_zones,
                                              BlockZoneDescriptor *zones)
{
    return bdrv_co_zone_report(blk->root.bs, offset, nr_zones, zones);
}

static int coroutine_fn blk_co_do_zone_mgmt(BlockBackend *blk, BlockZoneOp op,
                                            int64_t offset, int64_t len)
{
    int ret = blk_check_byte_request(blk, offset, len);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_zone_mgmt(blk->root.bs, op, offset, len);
}

static int coroutine_fn blk_co_do_zone_append(BlockBackend *blk,
                                              int64_t *offset,
                                              QEMUIOVector *qiov,
                                              BdrvRequestFlags flags)
{
    int ret = blk_check_byte_request(blk, *offset, qiov->size);

    if (ret < 0) {
        return ret;
    }
    if (!blk->enable_write_cache) {
        flags |= BDRV_REQ_FUA;
    }
    return bdrv_co_zone_append(blk->root.bs, offset, qiov, flags);
}

/* ---- the public coroutine API: gated by drained sections -------------- */

int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov,
                               BdrvRequestFlags flags)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_preadv(blk, offset, bytes, qiov, flags);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_pwritev(blk, offset, bytes, qiov, flags);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                      int64_t bytes, BdrvRequestFlags flags)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_pwrite_zeroes(blk, offset, bytes, flags);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                 int64_t bytes)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_pdiscard(blk, offset, bytes);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_flush(BlockBackend *blk)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_flush(blk);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_zone_report(BlockBackend *blk, int64_t offset,
                                    unsigned int *nr_zones,
                                    BlockZoneDescriptor *zones)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_zone_report(blk, offset, nr_zones, zones);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_zone_mgmt(BlockBackend *blk, BlockZoneOp op,
                                  int64_t offset, int64_t len)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_zone_mgmt(blk, op, offset, len);
    blk_co_request_end(blk);
    return ret;
}

int coroutine_fn blk_co_zone_append(BlockBackend *blk, int64_t *offset,
                                    QEMUIOVector *qiov,
                                    BdrvRequestFlags flags)
{
    int ret;

    blk_co_request_begin(blk);
    ret = blk_co_do_zone_append(blk, offset, qiov, flags);
    blk_co_request_end(blk);
    return ret;
}

/* ---- synchronous wrappers ---------------------------------------------- */

typedef struct BlkRwCo {
    BlockBackend *blk;
    int64_t offset;
    int64_t bytes;
    int64_t *zone_offset;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    BlkAioType type;
    BlockZoneOp op;
    unsigned int *nr_zones;
    BlockZoneDescriptor *zones;
    int ret;
    bool done;
} BlkRwCo;

static int coroutine_fn blk_rw_dispatch(BlkRwCo *c)
{
    switch (c->type) {
    case BLK_AIO_READ:
        return blk_co_preadv(c->blk, c->offset, c->bytes, c->qiov, c->flags);
    case BLK_AIO_WRITE:
        return blk_co_pwritev(c->blk, c->offset, c->bytes, c->qiov, c->flags);
    case BLK_AIO_ZEROES:
        return blk_co_pwrite_zeroes(c->blk, c->offset, c->bytes, c->flags);
    case BLK_AIO_DISCARD:
        return blk_co_pdiscard(c->blk, c->offset, c->bytes);
    case BLK_AIO_FLUSH:
        return blk_co_flush(c->blk);
    case BLK_AIO_ZONE_APPEND:
        return blk_co_zone_append(c->blk, c->zone_offset, c->qiov, c->flags);
    }
    return -EINVAL;
}

static void coroutine_fn blk_rw_entry(void *opaque)
{
    BlkRwCo *c = opaque;

    c->ret = blk_rw_dispatch(c);
    c->done = true;
}

static int blk_rw_sync(BlkRwCo *c)
{
    if (qemu_in_coroutine()) {
        return blk_rw_dispatch(c);
    }
    bdrv_run_co(blk_rw_entry, c, &c->done);
    return c->ret;
}

int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    BlkRwCo c = { .blk = blk, .offset = offset, .bytes = bytes,
                  .qiov = qiov, .flags = flags, .type = BLK_AIO_READ };
    return blk_rw_sync(&c);
}

int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    BlkRwCo c = { .blk = blk, .offset = offset, .bytes = bytes,
                  .qiov = qiov, .flags = flags, .type = BLK_AIO_WRITE };
    return blk_rw_sync(&c);
}

int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes, void *buf,
              BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes);
    return blk_preadv(blk, offset, bytes, &qiov, flags);
}

int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
               const void *buf, BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, (void *)buf, bytes);
    return blk_pwritev(blk, offset, bytes, &qiov, flags);
}

int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset, int64_t bytes,
                      BdrvRequestFlags flags)
{
    BlkRwCo c = { .blk = blk, .offset = offset, .bytes = bytes,
                  .flags = flags, .type = BLK_AIO_ZEROES };
    return blk_rw_sync(&c);
}

int blk_pwrite_compressed(BlockBackend *blk, int64_t offset,
                          const void *buf, int64_t bytes)
{
    return blk_pwrite(blk, offset, bytes, buf, BDRV_REQ_WRITE_COMPRESSED);
}

int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes)
{
    BlkRwCo c = { .blk = blk, .offset = offset, .bytes = bytes,
                  .type = BLK_AIO_DISCARD };
    return blk_rw_sync(&c);
}

int blk_flush(BlockBackend *blk)
{
    BlkRwCo c = { .blk = blk, .type = BLK_AIO_FLUSH };
    return blk_rw_sync(&c);
}

int64_t blk_getlength(BlockBackend *blk)
{
    return bdrv_getlength(blk->root.bs);
}

int blk_truncate(BlockBackend *blk, int64_t offset, bool exact,
                 PreallocMode prealloc, BdrvRequestFlags flags, Error **errp)
{
    return bdrv_truncate(&blk->root, offset, exact, prealloc, flags, errp);
}

int blk_zone_report(BlockBackend *blk, int64_t offset,
                    unsigned int *nr_zones, BlockZoneDescriptor *zones)
{
    return bdrv_zone_report(blk->root.bs, offset, nr_zones, zones);
}

int blk_zone_mgmt(BlockBackend *blk, BlockZoneOp op, int64_t offset,
                  int64_t len)
{
    int ret = offset < 0 || len < 0 ? -EIO : 0;

    if (ret == 0 && !blk->allow_write_beyond_eof) {
        int64_t l = blk_getlength(blk);
        if (l < 0) {
            return l;
        }
        if (offset > l || l - offset < len) {
            return -EIO;
        }
    }
    return ret < 0 ? ret : bdrv_zone_mgmt(blk->root.bs, op, offset, len);
}

int blk_zone_append(BlockBackend *blk, int64_t *offset, QEMUIOVector *qiov,
                    BdrvRequestFlags flags)
{
    BlkRwCo c = { .blk = blk, .zone_offset = offset, .qiov = qiov,
                  .flags = flags, .type = BLK_AIO_ZONE_APPEND };
    return blk_rw_sync(&c);
}

/* ---- callback AIO ------------------------------------------------------ */

static BlockAIOCB *blk_acb_get(void)
{
    BlockAIOCB *acb = acb_cache;

    if (likely(acb)) {
        acb_cache = acb->next_free;
        acb_cache_len--;
        return acb;
    }
    return g_new(BlockAIOCB, 1);
}

static void blk_acb_put(BlockAIOCB *acb)
{
    if (acb_cache_len < ACB_CACHE_MAX) {
        acb->next_free = acb_cache;
        acb_cache = acb;
        acb_cache_len++;
    } else {
        g_free(acb);
    }
}

static void blk_aio_complete(BlockAIOCB *acb)
{
    BlockBackend *blk = acb->blk;

    acb->cb(acb->opaque, acb->ret);
    blk->in_flight--;
    blk_acb_put(acb);
}

static void blk_aio_complete_bh(void *opaque)
{
    blk_aio_complete(opaque);
}

static void coroutine_fn blk_aio_entry(void *opaque)
{
    BlockAIOCB *acb = opaque;
    BlockBackend *blk = acb->blk;

    switch (acb->type) {
    case BLK_AIO_READ:
        acb->ret = blk_co_preadv(blk, acb->offset, acb->bytes, acb->qiov,
                                 acb->flags);
        break;
    case BLK_AIO_WRITE:
        acb->ret = blk_co_pwritev(blk, acb->offset, acb->bytes, acb->qiov,
                                  acb->flags);
        break;
    case BLK_AIO_ZEROES:
        acb->ret = blk_co_pwrite_zeroes(blk, acb->offset, acb->bytes,
                                        acb->flags);
        break;
    case BLK_AIO_DISCARD:
        acb->ret = blk_co_pdiscard(blk, acb->offset, acb->bytes);
        break;
    case BLK_AIO_FLUSH:
        acb->ret = blk_co_flush(blk);
        break;
    case BLK_AIO_ZONE_APPEND:
        acb->ret = blk_co_zone_append(blk, acb->zone_offset, acb->qiov,
                                      acb->flags);
        break;
    }
    acb->done = true;
    /*
     * If we got here after yielding, we run from the event loop and may
     * complete now; otherwise blk_aio_start defers the callback.
     */
    if (acb->has_returned) {
        blk_aio_complete(acb);
    }
}

static BlockAIOCB *blk_aio_start(BlockBackend *blk, BlkAioType type,
                                 int64_t offset, int64_t bytes,
                                 QEMUIOVector *qiov, BdrvRequestFlags flags,
                                 BlockCompletionFunc *cb, void *opaque)
{
    BlockAIOCB *acb = blk_acb_get();
    Coroutine *co;

    acb->blk = blk;
    acb->cb = cb;
    acb->opaque = opaque;
    acb->type = type;
    acb->offset = offset;
    acb->bytes = bytes;
    acb->zone_offset = NULL;
    acb->qiov = qiov;
    acb->flags = flags;
    acb->ret = 0;
    acb->done = false;
    acb->has_returned = false;
    blk->in_flight++;

    co = qemu_coroutine_create(blk_aio_entry, acb);
    qemu_coroutine_enter(co);
    acb->has_returned = true;
    if (acb->done) {
        aio_bh_schedule_oneshot(blk_get_aio_context(blk), blk_aio_complete_bh,
                                acb);
    }
    return acb;
}

BlockAIOCB *blk_aio_preadv(BlockBackend *blk, int64_t offset,
                           QEMUIOVector *qiov, BdrvRequestFlags flags,
                           BlockCompletionFunc *cb, void *opaque)
{
    return blk_aio_start(blk, BLK_AIO_READ, offset, qiov->size, qiov, flags,
                         cb, opaque);
}

BlockAIOCB *blk_aio_pwritev(BlockBackend *blk, int64_t offset,
                            QEMUIOVector *qiov, BdrvRequestFlags flags,
                            BlockCompletionFunc *cb, void *opaque)
{
    return blk_aio_start(blk, BLK_AIO_WRITE, offset, qiov->size, qiov, flags,
                         cb, opaque);
}

BlockAIOCB *blk_aio_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                  int64_t bytes, BdrvRequestFlags flags,
                                  BlockCompletionFunc *cb, void *opaque)
{
    return blk_aio_start(blk, BLK_AIO_ZEROES, offset, bytes, NULL, flags,
                         cb, opaque);
}

BlockAIOCB *blk_aio_pdiscard(BlockBackend *blk, int64_t offset,
                             int64_t bytes, BlockCompletionFunc *cb,
                             void *opaque)
{
    return blk_aio_start(blk, BLK_AIO_DISCARD, offset, bytes, NULL, 0,
                         cb, opaque);
}

BlockAIOCB *blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb,
                          void *opaque)
{
    return blk_aio_start(blk, BLK_AIO_FLUSH, 0, 0, NULL, 0, cb, opaque);
}

BlockAIOCB *blk_aio_zone_append(BlockBackend *blk, int64_t *offset,
                                QEMUIOVector *qiov, BdrvRequestFlags flags,
                                BlockCompletionFunc *cb, void *opaque)
{
    BlockAIOCB *acb;
    Coroutine *co;

    /* Like blk_aio_start, but the ACB must carry the offset pointer
     * before the coroutine first runs. */
    acb = blk_acb_get();
    memset(acb, 0, sizeof(*acb));
    acb->blk = blk;
    acb->cb = cb;
    acb->opaque = opaque;
    acb->type = BLK_AIO_ZONE_APPEND;
    acb->zone_offset = offset;
    acb->qiov = qiov;
    acb->flags = flags;
    blk->in_flight++;
    co = qemu_coroutine_create(blk_aio_entry, acb);
    qemu_coroutine_enter(co);
    acb->has_returned = true;
    if (acb->done) {
        aio_bh_schedule_oneshot(blk_get_aio_context(blk), blk_aio_complete_bh,
                                acb);
    }
    return acb;
}
