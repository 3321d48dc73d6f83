/*
 * BlockBackend: the handle tools and exports use to do I/O on a node
 * graph.  It owns the root reference and offers callback-style AIO on
 * top of the coroutine API.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_BLOCK_BACKEND_H
#define BLOCK_BLOCK_BACKEND_H

#include "block/block.h"

typedef struct BlockBackend BlockBackend;
typedef struct BlockAIOCB BlockAIOCB;
typedef void BlockCompletionFunc(void *opaque, int ret);

/*
 * Open like bdrv_open() and wrap the root node.  @options consumed.
 * The BlockBackend takes QEMU's permissions for @flags (read; write with
 * BDRV_O_RDWR; resize with BDRV_O_RESIZE; none with BDRV_O_NO_IO; shares
 * only reads with BDRV_O_NO_SHARE), which may fail on image locks.
 */
BlockBackend *blk_new_open(const char *filename, QDict *options, int flags,
                           Error **errp);
/* Wrap an existing node (takes a new reference; permissions from its
 * open flags as for blk_new_open). */
BlockBackend *blk_new_with_bs(BlockDriverState *bs, Error **errp);
/*
 * Wrap @bs holding exactly @perm and sharing @shared (BLK_PERM_*): an
 * export asks for write only when it is writable.  Takes a new reference.
 */
BlockBackend *blk_new_with_perm(BlockDriverState *bs, uint64_t perm,
                                uint64_t shared, Error **errp);
/*
 * Drain and drop the root reference.  Not inside a drained section of
 * the node while AIO requests of this BlockBackend wait for its end.
 */
void blk_unref(BlockBackend *blk);

BlockDriverState *blk_bs(BlockBackend *blk);
AioContext *blk_get_aio_context(BlockBackend *blk);
bool blk_is_read_only(BlockBackend *blk);
/* Let writes/reads beyond the end be refused (-EIO) or allowed. */
void blk_set_allow_write_beyond_eof(BlockBackend *blk, bool allow);
/* @wce true (default) = writeback; false = writethrough: every write is
 * FUA (as QEMU: blk_set_enable_write_cache(blk, !writethrough)). */
void blk_set_enable_write_cache(BlockBackend *blk, bool wce);

/*
 * Zone geometry as a device presents it (all zero / BLK_Z_NONE for an
 * ordinary node).  Sizes in bytes.
 */
typedef struct BlockZoneGeometry {
    BlockZoneModel model;
    uint64_t zone_size;          /* power of two */
    uint64_t zone_capacity;      /* <= zone_size, same for every zone */
    uint32_t nr_zones;           /* the last one may be short */
    uint32_t nr_conv_zones;
    uint32_t max_open_zones;     /* 0 = no limit */
    uint32_t max_active_zones;   /* 0 = no limit */
    uint64_t max_append_bytes;
} BlockZoneGeometry;

/* The root node's zone geometry (any thread that owns the node). */
void blk_get_zone_geometry(BlockBackend *blk, BlockZoneGeometry *geo);
/*
 * The smallest block a device over this node should advertise: the
 * node's write alignment (request_alignment, a zoned node's write
 * granularity), at least 512.
 */
uint32_t blk_get_logical_block_size(BlockBackend *blk);

/*
 * Callbacks a BlockBackend's user (an export) gets when the root node
 * enters and leaves a drained section (bdrv_drained_begin/end).  While
 * drained, the user must not start requests; blk requests started
 * anyway wait until the section ends.  Main thread.
 */
typedef struct BlockDevOps {
    void (*drained_begin)(void *opaque);
    void (*drained_end)(void *opaque);
} BlockDevOps;
void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops, void *opaque);

/* Coroutine API (in coroutine context). */
int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov,
                               BdrvRequestFlags flags);
int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn blk_co_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                      int64_t bytes, BdrvRequestFlags flags);
int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                 int64_t bytes);
int coroutine_fn blk_co_flush(BlockBackend *blk);
int coroutine_fn blk_co_zone_report(BlockBackend *blk, int64_t offset,
                                    unsigned int *nr_zones,
                                    BlockZoneDescriptor *zones);
int coroutine_fn blk_co_zone_mgmt(BlockBackend *blk, BlockZoneOp op,
                                  int64_t offset, int64_t len);
int coroutine_fn blk_co_zone_append(BlockBackend *blk, int64_t *offset,
                                    QEMUIOVector *qiov,
                                    BdrvRequestFlags flags);

/* Synchronous (poll the loop until done). Return 0 or -errno. */
int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes, void *buf,
              BdrvRequestFlags flags);
int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
               const void *buf, BdrvRequestFlags flags);
int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags);
int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags);
int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset, int64_t bytes,
                      BdrvRequestFlags flags);
int blk_pwrite_compressed(BlockBackend *blk, int64_t offset,
                          const void *buf, int64_t bytes);
int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes);
int blk_flush(BlockBackend *blk);
int64_t blk_getlength(BlockBackend *blk);
int blk_truncate(BlockBackend *blk, int64_t offset, bool exact,
                 PreallocMode prealloc, BdrvRequestFlags flags, Error **errp);
int blk_zone_report(BlockBackend *blk, int64_t offset,
                    unsigned int *nr_zones, BlockZoneDescriptor *zones);
int blk_zone_mgmt(BlockBackend *blk, BlockZoneOp op, int64_t offset,
                  int64_t len);
int blk_zone_append(BlockBackend *blk, int64_t *offset, QEMUIOVector *qiov,
                    BdrvRequestFlags flags);
void blk_drain(BlockBackend *blk);

/*
 * Callback AIO: starts the request in a new coroutine right away and
 * calls cb(opaque, ret) from the event loop when it completes (ret 0 or
 * -errno; never before this function returns).  @qiov must stay valid
 * until then.
 */
BlockAIOCB *blk_aio_preadv(BlockBackend *blk, int64_t offset,
                           QEMUIOVector *qiov, BdrvRequestFlags flags,
                           BlockCompletionFunc *cb, void *opaque);
BlockAIOCB *blk_aio_pwritev(BlockBackend *blk, int64_t offset,
                            QEMUIOVector *qiov, BdrvRequestFlags flags,
                            BlockCompletionFunc *cb, void *opaque);
BlockAIOCB *blk_aio_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                  int64_t bytes, BdrvRequestFlags flags,
                                  BlockCompletionFunc *cb, void *opaque);
BlockAIOCB *blk_aio_pdiscard(BlockBackend *blk, int64_t offset,
                             int64_t bytes, BlockCompletionFunc *cb,
                             void *opaque);
BlockAIOCB *blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb,
                          void *opaque);
/* *offset is updated before cb runs. */
BlockAIOCB *blk_aio_zone_append(BlockBackend *blk, int64_t *offset,
                                QEMUIOVector *qiov, BdrvRequestFlags flags,
                                BlockCompletionFunc *cb, void *opaque);

#endif
