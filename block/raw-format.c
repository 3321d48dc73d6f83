/*
 * The "raw" format driver: the image is the file's bytes, optionally a
 * window [offset, offset+size) of it.  Everything passes through to the
 * file child.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"

typedef struct BDRVRawState {
    uint64_t offset;
    uint64_t size;
    bool has_size;
} BDRVRawState;

static const QemuOptDesc raw_runtime_desc[] = {
    { .name = "offset", .type = QEMU_OPT_SIZE,
      .help = "offset in the disk where the image starts" },
    { .name = "size", .type = QEMU_OPT_SIZE,
      .help = "virtual disk size" },
    { NULL }
};

static const QemuOptsList raw_runtime_opts = {
    .name = "raw",
    .desc = raw_runtime_desc,
};

static const QemuOptDesc raw_create_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { NULL }
};

static const QemuOptsList raw_create_opts = {
    .name = "raw-create-opts",
    .desc = raw_create_desc,
};

static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    /* Anything is raw, but every real format wins. */
    return 1;
}

static int coroutine_fn raw_co_open(BlockDriverState *bs, QDict *options,
                                    int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    QemuOpts *opts;
    int64_t real_size;
    int ret = -EINVAL;

    if (!bs->file) {
        error_setg(errp, "A block device must be specified for \"file\"");
        return -EINVAL;
    }
    opts = qemu_opts_create(&raw_runtime_opts);
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        goto out;
    }
    s->offset = qemu_opt_get_size(opts, "offset", 0);
    s->has_size = qemu_opt_has(opts, "size");
    s->size = qemu_opt_get_size(opts, "size", 0);

    real_size = bdrv_co_getlength(bs->file->bs);
    if (real_size < 0) {
        error_setg_errno(errp, -real_size, "Could not get image size");
        ret = real_size;
        goto out;
    }
    if (s->offset > (uint64_t)real_size) {
        error_setg(errp, "Offset (%" PRIu64 ") cannot be greater than size "
                   "of the containing file (%" PRId64 ")",
                   s->offset, real_size);
        goto out;
    }
    if (s->has_size && (uint64_t)real_size - s->offset < s->size) {
        error_setg(errp, "The sum of offset (%" PRIu64 ") and size (%" PRIu64
                   ") has to be smaller or equal to the  actual size of the "
                   "containing file (%" PRId64 ")",
                   s->offset, s->size, real_size);
        goto out;
    }
    /* A sector multiple, so sector-based users never round past it. */
    if (s->has_size && !QEMU_IS_ALIGNED(s->size, BDRV_SECTOR_SIZE)) {
        error_setg(errp, "Specified size is not multiple of %llu",
                   BDRV_SECTOR_SIZE);
        goto out;
    }

    bs->supported_write_flags = BDRV_REQ_FUA &
                                bs->file->bs->supported_write_flags;
    bs->supported_zero_flags = (BDRV_REQ_FUA | BDRV_REQ_MAY_UNMAP |
                                BDRV_REQ_NO_FALLBACK) &
                               bs->file->bs->supported_zero_flags;

    if (bs->probed && !bs->read_only) {
        fprintf(stderr,
                "WARNING: Image format was not specified for '%s' and probing "
                "guessed raw.\n"
                "         Automatically detecting the format is dangerous for "
                "raw images, write operations on block 0 will be restricted.\n"
                "         Specify the 'raw' format explicitly to remove the "
                "restrictions.\n",
                bs->file->bs->filename);
    }
    ret = 0;
out:
    qemu_opts_del(opts);
    return ret;
}

/*
 * bdrv_child_perm.  Not a coroutine, no I/O; may run before raw_co_open
 * (offset and size still 0).  Without offset or size limit raw is a
 * filter: its users' permissions pass straight through (so a writer
 * shares writes when its users do).  A window into the file is data
 * storage instead, but write and resize are still needed only when a
 * user needs them.
 */
static void raw_child_perm(BlockDriverState *bs, BdrvChild *c,
                           BdrvChildRole role, uint64_t perm,
                           uint64_t shared, uint64_t *nperm,
                           uint64_t *nshared)
{
    BDRVRawState *s = bs->opaque;
    BdrvChildRole r = (s->offset || s->has_size) ? BDRV_CHILD_DATA
                                                 : BDRV_CHILD_FILTERED;

    bdrv_default_perms(bs, c, r | BDRV_CHILD_PRIMARY, perm, shared, nperm,
                       nshared);
    *nperm &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    *nperm |= perm & (BLK_PERM_WRITE | BLK_PERM_RESIZE);
}

static void raw_refresh_limits(BlockDriverState *bs, Error **errp)
{
    /* Pass-through: the file's limits, zone geometry included. */
    bs->bl = bs->file->bs->bl;
    if (bs->probed) {
        /* Block 0 writes are checked whole (see raw_check_probed_write). */
        bs->bl.request_alignment = MAX(bs->bl.request_alignment,
                                       BDRV_SECTOR_SIZE);
    }
}

/*
 * A probed raw image must not get a header that would make the next open
 * probe another format (a guest could otherwise take over host files).
 */
static int raw_check_probed_write(BlockDriverState *bs, int64_t offset,
                                  QEMUIOVector *qiov, size_t qiov_offset)
{
    uint8_t buf[BDRV_SECTOR_SIZE];

    if (!bs->probed || offset >= (int64_t)BDRV_SECTOR_SIZE) {
        return 0;
    }
    assert(offset == 0);
    qemu_iovec_to_buf(qiov, qiov_offset, buf, sizeof(buf));
    if (bdrv_probe_format(buf, sizeof(buf), "") != &bdrv_raw ||
        bdrv_probe_foreign(buf, sizeof(buf))) {
        return -EPERM;
    }
    return 0;
}

static int coroutine_fn raw_co_preadv_part(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           size_t qiov_offset,
                                           BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;

    return bdrv_co_preadv_part(bs->file, offset + s->offset, bytes, qiov,
                               qiov_offset, flags);
}

static int coroutine_fn raw_co_pwritev_part(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;

    if (unlikely(bs->probed)) {
        int ret = raw_check_probed_write(bs, offset, qiov, qiov_offset);
        if (ret < 0) {
            return ret;
        }
    }
    return bdrv_co_pwritev_part(bs->file, offset + s->offset, bytes, qiov,
                                qiov_offset, flags);
}

static int coroutine_fn raw_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;

    return bdrv_co_pwrite_zeroes(bs->file, offset + s->offset, bytes, flags);
}

static int coroutine_fn raw_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    BDRVRawState *s = bs->opaque;

    return bdrv_co_pdiscard(bs->file, offset + s->offset, bytes);
}

static int coroutine_fn raw_co_block_status(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;

    *pnum = bytes;
    *file = bs->file->bs;
    *map = offset + s->offset;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t coroutine_fn raw_co_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    int64_t len;

    if (s->has_size) {
        return s->size;
    }
    len = bdrv_co_getlength(bs->file->bs);
    if (len < 0) {
        return len;
    }
    /*
     * Whole sectors, as QEMU: the tail of an unaligned file reads as
     * zeroes (the file node zero-fills past its end) and writes grow it.
     */
    return QEMU_ALIGN_UP(MAX(len - (int64_t)s->offset, 0), BDRV_SECTOR_SIZE);
}

static int coroutine_fn raw_co_truncate(BlockDriverState *bs, int64_t offset,
                                        bool exact, PreallocMode prealloc,
                                        BdrvRequestFlags flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    if (s->has_size) {
        error_setg(errp, "Cannot resize fixed-size raw disks");
        return -ENOTSUP;
    }
    if (INT64_MAX - offset < (int64_t)s->offset) {
        error_setg(errp, "Disk size too large for the chosen offset");
        return -EINVAL;
    }
    return bdrv_co_truncate(bs->file, offset + s->offset, exact, prealloc,
                            flags, errp);
}

static int raw_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
    return 0;
}

static int coroutine_fn raw_co_create_opts(BlockDriver *drv,
                                           const char *filename,
                                           QemuOpts *opts, Error **errp)
{
    return bdrv_co_create_file(filename, opts, errp);
}

static BlockMeasureInfo *raw_measure(QemuOpts *opts, BlockDriverState *in_bs,
                                     Error **errp)
{
    BlockMeasureInfo *info;
    int64_t required;

    if (in_bs) {
        required = bdrv_getlength(in_bs);
        if (required < 0) {
            error_setg_errno(errp, -required, "Unable to get image size");
            return NULL;
        }
    } else {
        required = ROUND_UP(qemu_opt_get_size(opts, "size", 0),
                            BDRV_SECTOR_SIZE);
    }
    info = g_new0(BlockMeasureInfo, 1);
    /* Unallocated ranges still take space in a raw file. */
    info->required = required;
    info->fully_allocated = required;
    return info;
}

static int coroutine_fn raw_co_zone_report(BlockDriverState *bs,
                                           int64_t offset,
                                           unsigned int *nr_zones,
                                           BlockZoneDescriptor *zones)
{
    BDRVRawState *s = bs->opaque;

    return bdrv_co_zone_report(bs->file->bs, offset + s->offset, nr_zones,
                               zones);
}

static int coroutine_fn raw_co_zone_mgmt(BlockDriverState *bs, BlockZoneOp op,
                                         int64_t offset, int64_t len)
{
    BDRVRawState *s = bs->opaque;

    return bdrv_co_zone_mgmt(bs->file->bs, op, offset + s->offset, len);
}

static int coroutine_fn raw_co_zone_append(BlockDriverState *bs,
                                           int64_t *offset,
                                           QEMUIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    *offset += s->offset;
    ret = bdrv_co_zone_append(bs->file->bs, offset, qiov, flags);
    *offset -= s->offset;
    return ret;
}

BlockDriver bdrv_raw = {
    .format_name = "raw",
    .instance_size = sizeof(BDRVRawState),
    .is_format = true,
    .bdrv_probe = raw_probe,
    .bdrv_co_open = raw_co_open,
    .bdrv_refresh_limits = raw_refresh_limits,
    .bdrv_child_perm = raw_child_perm,
    .bdrv_co_preadv_part = raw_co_preadv_part,
    .bdrv_co_pwritev_part = raw_co_pwritev_part,
    .bdrv_co_pwrite_zeroes = raw_co_pwrite_zeroes,
    .bdrv_co_pdiscard = raw_co_pdiscard,
    .bdrv_co_block_status = raw_co_block_status,
    .bdrv_co_getlength = raw_co_getlength,
    .bdrv_co_truncate = raw_co_truncate,
    .bdrv_co_create_opts = raw_co_create_opts,
    .create_opts = &raw_create_opts,
    .bdrv_measure = raw_measure,
    .bdrv_get_info = raw_get_info,
    .bdrv_co_zone_report = raw_co_zone_report,
    .bdrv_co_zone_mgmt = raw_co_zone_mgmt,
    .bdrv_co_zone_append = raw_co_zone_append,
};
