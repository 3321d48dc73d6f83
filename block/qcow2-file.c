/*
 * qcow2 format driver: the length of the host file.  Allocation grows it
 * (lazily, or ahead in steps while allocations run concurrently), clusters
 * named past its end after a crash are covered, and a clean close trims
 * what was reserved ahead.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Called with s->lock held (or during open/close).
 */
#include "qemu/osdep.h"
#include "qcow2.h"

int coroutine_fn qcow2_grow_file(BlockDriverState *bs, int64_t end)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t new_size;
    int ret;

    if (end <= s->file_size) {
        return 0;
    }
    /*
     * With no other allocation in flight, let the write itself extend the
     * file, as QEMU does: an extending O_DIRECT write gets written blocks
     * at once, while a write into a hole below EOF gets unwritten ones that
     * the filesystem converts again on completion (ext4: 1.3-2x slower at
     * depth 1).  Reads beyond the real end return zeroes meanwhile.
     */
    if (!s->cluster_allocs) {
        s->file_size = end;
        s->file_lazy = true;
        return 0;
    }
    /*
     * Concurrent allocating writes: extending writes are serialised by the
     * filesystem, so extend ahead in big steps and let them land inside
     * the file; the unused tail has no refcount and is trimmed on close.
     */
    new_size = ROUND_UP(end, s->prealloc_step);
    ret = bdrv_co_truncate(bs->file, new_size, false, PREALLOC_MODE_OFF, 0,
                           NULL);
    if (ret < 0) {
        /* Fall back to growing exactly as much as needed. */
        new_size = end;
        ret = bdrv_co_truncate(bs->file, new_size, false, PREALLOC_MODE_OFF,
                               0, NULL);
        if (ret < 0) {
            return ret;
        }
    }
    s->file_size = new_size;
    s->file_grown = true;
    return 0;
}

/*
 * Clusters [@offset, @offset + @bytes) that an L1 or L2 entry names lie past
 * the end of the file as we know it.  After a crash that is legal: the
 * refcount and the table entry reached the disk, the write that would have
 * extended the file did not.  Clusters whose refcounts say they are in use
 * are ours, and the file is grown to cover them; anything else is a
 * corrupt entry, and growing the file for it could make it any size.
 * Called with s->lock held.  0, or -EIO after marking the image corrupt.
 */
int coroutine_fn qcow2_cover_allocated(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, const char *what)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t first, last, c, rc = 0;
    int ret;

    if (bytes == 0 || offset > (uint64_t)INT64_MAX - bytes) {
        goto corrupt;
    }
    if ((int64_t)(offset + bytes) <= s->file_size) {
        return 0;
    }
    first = offset >> s->cluster_bits;
    last = (offset + bytes - 1) >> s->cluster_bits;
    for (c = first; c <= last; c++) {
        ret = qcow2_get_refcount(bs, c, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc == 0) {
            goto corrupt;
        }
    }
    return qcow2_grow_file(bs, (last + 1) << s->cluster_bits);

corrupt:
    qcow2_signal_corruption(bs, true, -1, -1, "%s offset %#" PRIx64
                            " beyond the end of the image file", what,
                            offset);
    return -EIO;
}

/*
 * At a clean close (s->lock held): give back the space reserved ahead of
 * allocation; after lazy growth, make the file cover the last allocated
 * cluster, which a partial write into known-zero space may not have
 * reached.  A failed trim leaves the file as it is.
 */
void coroutine_fn qcow2_trim_file(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t end, real;

    if (!s->file_grown && !s->file_lazy) {
        return;
    }
    end = MAX(qcow2_get_last_allocated_end(bs), s->open_file_size);
    real = s->file_lazy ? bdrv_co_getlength(bs->file->bs) : s->file_size;
    end = end < 0 ? end : MAX(end, s->linked_end);
    /*
     * Grow only over what this session allocated: the refcounts of a
     * truncated or damaged file may name clusters past its end, which must
     * stay missing (as with QEMU) rather than turn into leaked clusters of
     * zeroes, or a file of terabytes.
     */
    if (end > real && real >= 0) {
        end = MAX(real, MIN(end, MAX(s->alloc_end, s->linked_end)));
    }
    /* Compressed data last: QEMU leaves the file where it ends. */
    if (s->compressed_end && real >= 0 && real < end &&
        end == ROUND_UP(s->compressed_end, s->cluster_size)) {
        end = MAX(real, s->compressed_end);
    }
    if (end > 0 && real >= 0 &&
        (end < real || (s->file_lazy && end > real))) {
        if (bdrv_co_truncate(bs->file, end, true, PREALLOC_MODE_OFF, 0,
                             NULL) >= 0) {
            s->file_size = end;
        }
    }
}
