/*
 * qcow2 format driver: resize (grow with preallocation, shrink).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The steps and their order follow the reference implementation, so
 * that a resized image has the same layout as one resized by QEMU.
 * preallocation=metadata maps the new clusters L2 table by L2 table
 * through the normal allocator; falloc and full first lay out new
 * refcount structures behind the last used cluster (as the allocator
 * does when the refcount table must grow), then one run of data
 * clusters.  Shrinking discards the cropped clusters, frees L2 tables and
 * refcount blocks left unused and trims the host file.
 *
 * Deliberate differences: growing from inside a cluster zeroes what a
 * shrink left behind the old end, and reused free clusters are zeroed for
 * preallocation=metadata, so that the image always reads like a raw
 * image resized the same way (QEMU 7.2 shows stale data there).
 */
#include "qemu/osdep.h"
#include "qcow2.h"

/* ---- shrinking -------------------------------------------------------- */

/*
 * Host ranges freed by a shrink go back to the host whatever the discard
 * options say, as with the reference implementation (its "always"
 * discards, merged into ranges, reach a protocol layer that accepts
 * discards by default).
 */
typedef struct PunchRange {
    uint64_t offset;
    uint64_t bytes;
} PunchRange;

static void punch_add(GArray *punch, uint64_t offset, uint64_t bytes)
{
    PunchRange r = { offset, bytes };

    g_array_append_val(punch, r);
}

static gint punch_cmp(gconstpointer a, gconstpointer b)
{
    const PunchRange *x = a, *y = b;

    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Discard the clusters of @punch left without references, merged. */
static void coroutine_fn punch_free(BlockDriverState *bs, GArray *punch)
{
    BDRVQcow2State *s = bs->opaque;
    BlockDriverState *file = bs->file->bs;
    int saved = file->open_flags & BDRV_O_UNMAP;
    uint64_t run_start = 0, run_end = 0;
    guint i;

    g_array_sort(punch, punch_cmp);
    file->open_flags |= BDRV_O_UNMAP;
    for (i = 0; i < punch->len; i++) {
        PunchRange *r = &g_array_index(punch, PunchRange, i);
        uint64_t c;

        for (c = r->offset; c < r->offset + r->bytes; c += s->cluster_size) {
            uint64_t rc = 1;

            if (qcow2_get_refcount(bs, c >> s->cluster_bits, &rc) < 0 || rc) {
                continue;   /* still used (snapshots): keep it */
            }
            if (c != run_end) {
                if (run_end > run_start) {
                    bdrv_co_pdiscard(bs->file, run_start,
                                     run_end - run_start);
                }
                run_start = c;
            }
            run_end = c + s->cluster_size;
        }
    }
    if (run_end > run_start) {
        bdrv_co_pdiscard(bs->file, run_start, run_end - run_start);
    }
    file->open_flags = (file->open_flags & ~BDRV_O_UNMAP) | saved;
}

/* Note the host clusters that guest [offset, +bytes) maps to. */
static int coroutine_fn punch_collect(BlockDriverState *bs, uint64_t offset,
                                      uint64_t bytes, GArray *punch)
{
    while (bytes) {
        uint64_t n = bytes, host;
        QCow2ClusterType type;
        int ret;

        ret = qcow2_get_host_offset(bs, offset, &n, &host, &type);
        if (ret < 0) {
            return ret;
        }
        if (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) {
            punch_add(punch, host, n);
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/*
 * Drop the L1 entries from @new_size on (the table keeps its size on
 * disk, as in the reference implementation) and free their L2 tables.
 */
static int coroutine_fn shrink_l1_table(BlockDriverState *bs,
                                        uint64_t new_size, GArray *punch)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t i;
    int ret;

    if (new_size >= s->l1_size) {
        return 0;
    }
    ret = bdrv_co_pwrite_zeroes(bs->file, s->l1_table_offset + new_size * 8,
                                (s->l1_size - new_size) * 8, 0);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    for (i = s->l1_size; i-- > new_size;) {
        uint64_t l2_offset = s->l1_table[i] & L1E_OFFSET_MASK;

        /* On a failed write the on-disk entries are unknown: forget them
         * in memory too rather than keep using them. */
        s->l1_table[i] = 0;
        if (ret >= 0 && l2_offset) {
            qcow2_free_clusters(bs, l2_offset, s->cluster_size);
            punch_add(punch, l2_offset, s->cluster_size);
        }
    }
    return ret;
}

/*
 * Unhook refcount blocks that no longer count anything but (possibly)
 * themselves, and free them.
 */
static int coroutine_fn shrink_reftable(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t n = s->refcount_table_disk_entries;
    uint64_t *disk = g_new0(uint64_t, n);
    bool *unused = g_new0(bool, n);
    uint32_t i;
    int ret = 0;

    for (i = 0; i < n && i < s->refcount_table_size; i++) {
        uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;
        uint64_t own = 0;
        bool self;
        void *rb;

        if (!off) {
            continue;
        }
        ret = qcow2_cache_get(bs, s->refcount_block_cache, off, &rb);
        if (ret < 0) {
            goto out;
        }
        self = (off >> s->cluster_bits) >> s->refcount_block_bits == i;
        if (self) {
            uint64_t idx = (off >> s->cluster_bits) &
                           (s->refcount_block_size - 1);

            own = s->get_refcount(rb, idx);
            s->set_refcount(rb, idx, 0);
            unused[i] = buffer_is_zero(rb, s->cluster_size);
            s->set_refcount(rb, idx, own);
        } else {
            unused[i] = buffer_is_zero(rb, s->cluster_size);
        }
        qcow2_cache_put(s->refcount_block_cache, &rb);
        if (!unused[i]) {
            disk[i] = cpu_to_be64(s->refcount_table[i]);
        }
    }

    ret = bdrv_co_pwrite_sync(bs->file, s->refcount_table_offset,
                              (int64_t)n * 8, disk, 0);
    for (i = 0; i < n && i < s->refcount_table_size; i++) {
        uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;
        bool self;
        void *rb;

        if (!unused[i]) {
            continue;
        }
        self = (off >> s->cluster_bits) >> s->refcount_block_bits == i;
        rb = qcow2_cache_is_table_offset(s->refcount_block_cache, off);

        s->refcount_table[i] = 0;
        if (rb) {
            qcow2_cache_discard(s->refcount_block_cache, rb);
        }
        /* A block counting itself took its only reference with it. */
        if (ret >= 0 && !self) {
            ret = qcow2_update_cluster_refcount(bs, off >> s->cluster_bits,
                                                1, true);
        }
    }
    while (s->max_refcount_table_index > 0 &&
           !s->refcount_table[s->max_refcount_table_index]) {
        s->max_refcount_table_index--;
    }
out:
    g_free(unused);
    g_free(disk);
    return ret;
}

static int coroutine_fn qcow2_shrink(BlockDriverState *bs, uint64_t old_size,
                                     int64_t offset, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t astart = ROUND_UP(offset, s->cluster_size);
    GArray *punch = g_array_new(false, false, sizeof(PunchRange));
    int64_t end;
    int ret = 0;

    /*
     * L2 table by L2 table, each one made writable first (allocated if
     * missing) as the reference implementation does: freed clusters of
     * one table may then hold the next table, giving the same layout.
     */
    while (astart < old_size) {
        uint64_t l2_span = (uint64_t)s->l2_size << s->cluster_bits;
        uint64_t chunk_end = MIN(ROUND_UP(astart + 1, l2_span),
                                 ROUND_UP(old_size, s->cluster_size));

        ret = qcow2_prepare_l2_table(bs, astart);
        if (ret >= 0) {
            ret = punch_collect(bs, astart, chunk_end - astart, punch);
        }
        if (ret >= 0) {
            ret = qcow2_cluster_discard(bs, astart, chunk_end - astart, true);
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to discard cropped clusters");
            goto out;
        }
        astart = chunk_end;
    }
    ret = shrink_l1_table(bs, size_to_l1(s, offset), punch);
    if (ret < 0) {
        error_setg_errno(errp, -ret,
                         "Failed to reduce the number of L2 tables");
        goto out;
    }
    ret = shrink_reftable(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to discard unused refblocks");
        goto out;
    }
    punch_free(bs, punch);

    /* Give the freed tail back to the host; failing that is harmless. */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to flush metadata");
        goto out;
    }
    end = qcow2_get_last_allocated_end(bs);
    if (end < 0) {
        ret = end;
        error_setg_errno(errp, -ret, "Failed to find the last cluster");
        goto out;
    }
    /* Tables just freed may lie beyond: s->linked_end is stale here. */
    if (end > 0 && end < s->file_size) {
        Error *local_err = NULL;

        if (bdrv_co_truncate(bs->file, end, false, PREALLOC_MODE_OFF, 0,
                             &local_err) < 0) {
            warn_report("Failed to truncate the tail of the image: %s",
                        error_get_pretty(local_err));
            error_free(local_err);
        } else {
            s->file_size = end;
            s->open_file_size = MIN(s->open_file_size, end);
            s->zero_start = MIN(s->zero_start, end);
            s->linked_end = MIN(s->linked_end, end);
        }
    }
    ret = 0;
out:
    g_array_free(punch, true);
    return ret;
}

/* ---- growing with preallocation -------------------------------------- */

/* Link guest clusters from @guest to the host run at @host (s->lock held). */
static int coroutine_fn link_run(BlockDriverState *bs, uint64_t guest,
                                 uint64_t host, uint64_t nb)
{
    BDRVQcow2State *s = bs->opaque;

    while (nb) {
        uint64_t n = MIN(nb, (uint64_t)(s->l2_size -
                                        offset_to_l2_index(s, guest)));
        QCowL2Meta *m = g_new0(QCowL2Meta, 1);
        int ret;

        m->guest_offset = guest;
        m->alloc_offset = host;
        m->nb_clusters = n;
        m->new_is_zero = true;
        qemu_co_queue_init(&m->dependent_requests);
        m->next = s->cluster_allocs;
        s->cluster_allocs = m;
        /* Frees the run of @m itself on failure. */
        ret = qcow2_alloc_cluster_link_l2(bs, m);
        if (ret < 0) {
            if (nb > n) {
                qcow2_free_clusters(bs, host + (n << s->cluster_bits),
                                    (nb - n) << s->cluster_bits);
            }
            return ret;
        }
        guest += n << s->cluster_bits;
        host += n << s->cluster_bits;
        nb -= n;
    }
    return 0;
}

/*
 * preallocation=falloc/full: new refcount structures behind the last
 * used cluster, then the data run, preallocated in the host file, then
 * the L2 entries.  A partial first cluster moves into the run too, with
 * its old content (@head, @head_len bytes).
 */
static int coroutine_fn prealloc_full(BlockDriverState *bs, uint64_t old_size,
                                      int64_t offset, PreallocMode prealloc,
                                      const void *head, uint64_t head_len,
                                      Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t guest = start_of_cluster(s, old_size);
    uint64_t nb_data = (ROUND_UP(offset, s->cluster_size) - guest) >>
                       s->cluster_bits;
    uint64_t nb_l2 = DIV_ROUND_UP(nb_data, s->l2_size) + 1;
    int64_t last_end, start, got, new_file_size;
    int ret;

    last_end = qcow2_get_last_allocated_end(bs);
    if (last_end <= 0) {
        last_end = ROUND_UP(s->file_size, s->cluster_size);
    }
    start = qcow2_refcount_area(bs, last_end, nb_data + nb_l2, true, 0, 0);
    if (start < 0) {
        error_setg_errno(errp, -start, "Failed to resize refcount structures");
        return start;
    }
    got = qcow2_alloc_clusters_at(bs, start, nb_data);
    if (got < 0 || (uint64_t)got != nb_data) {
        if (got > 0) {
            qcow2_free_clusters(bs, start, got << s->cluster_bits);
        }
        ret = got < 0 ? got : -EIO;
        error_setg_errno(errp, -ret, "Failed to allocate data clusters");
        return ret;
    }
    new_file_size = start + (nb_data << s->cluster_bits);

    /* Space reserved ahead by earlier growth must be preallocated too. */
    ret = 0;
    if (s->file_size > start) {
        ret = bdrv_co_truncate(bs->file, start, true, PREALLOC_MODE_OFF, 0,
                               errp);
        if (ret >= 0) {
            s->file_size = start;
        }
    }
    if (ret >= 0) {
        ret = bdrv_co_truncate(bs->file, new_file_size, false, prealloc, 0,
                               errp);
    }
    if (ret < 0) {
        error_prepend(errp, "Failed to resize underlying file: ");
        qcow2_free_clusters(bs, start, nb_data << s->cluster_bits);
        return ret;
    }
    s->file_size = new_file_size;
    s->file_grown = true;
    s->zero_start = MAX(s->zero_start, new_file_size);
    s->alloc_end = MAX(s->alloc_end, new_file_size);

    if (head_len) {
        ret = bdrv_co_pwrite(bs->file, start, head_len, head, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to copy the last cluster");
            qcow2_free_clusters(bs, start, nb_data << s->cluster_bits);
            return ret;
        }
    }
    ret = link_run(bs, guest, start, nb_data);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to update L2 tables");
    }
    return ret;
}

/*
 * preallocation=metadata: map the new clusters through the normal
 * allocator, L2 table by L2 table, then extend the host file over them.
 */
static int coroutine_fn prealloc_metadata(BlockDriverState *bs,
                                          uint64_t old_size, int64_t offset,
                                          const void *head, uint64_t head_len,
                                          Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t guest = old_size, left = offset - old_size;
    uint64_t host_end = 0;
    int ret;

    while (left) {
        uint64_t cur = MIN(left, QEMU_ALIGN_DOWN((uint64_t)INT_MAX,
                                                 s->cluster_size));
        uint64_t host;
        QCowL2Meta *m;

        ret = qcow2_alloc_host_offset(bs, guest, &cur, &host, &m);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Allocating clusters failed");
            return ret;
        }
        if (m) {
            int64_t run = (int64_t)m->nb_clusters << s->cluster_bits;

            /* Reused clusters may hold old data: the new area reads as 0. */
            ret = qcow2_pre_write_overlap_check(bs, 0, m->alloc_offset, run);
            if (ret >= 0 && (!m->new_is_zero || head_len)) {
                ret = qcow2_grow_file(bs, m->alloc_offset + run);
            }
            if (ret >= 0 && !m->new_is_zero) {
                ret = bdrv_co_pwrite_zeroes(bs->file, m->alloc_offset, run,
                                            0);
            }
            if (ret >= 0 && head_len && m->cow_start.bytes) {
                ret = bdrv_co_pwrite(bs->file, m->alloc_offset, head_len,
                                     head, 0);
            }
            if (ret < 0) {
                qcow2_alloc_cluster_abort(bs, m);
                error_setg_errno(errp, -ret, "Mapping clusters failed");
                return ret;
            }
            ret = qcow2_alloc_cluster_link_l2(bs, m);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Mapping clusters failed");
                return ret;
            }
        }
        host_end = host + cur;
        guest += cur;
        left -= cur;
    }

    /* Reads of the new clusters must not end up beyond the file end. */
    if ((int64_t)host_end > s->file_size) {
        ret = bdrv_co_truncate(bs->file, host_end, false, PREALLOC_MODE_OFF,
                               0, errp);
        if (ret < 0) {
            return ret;
        }
        s->file_size = host_end;
        s->file_grown = true;
    }
    return 0;
}

/*
 * With a backing file that reaches beyond the old end, the new area must
 * read as zeroes, not as backing data: zero clusters for the whole ones,
 * written zeroes for the rest of a partial first cluster.  Called with
 * s->lock held and s->size already covering @offset.
 */
static int coroutine_fn zero_new_area(BlockDriverState *bs, uint64_t old_size,
                                      int64_t offset, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t zero_start = ROUND_UP(old_size, s->cluster_size);
    int ret;

    if ((uint64_t)offset > zero_start) {
        /* The end is the image end: its partial cluster is zeroed whole. */
        ret = qcow2_subcluster_zeroize(bs, zero_start,
                                       ROUND_UP(offset, s->cluster_size) -
                                       zero_start, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to zero out new clusters");
            return ret;
        }
    }
    if (zero_start > old_size) {
        uint64_t len = MIN(zero_start, (uint64_t)offset) - old_size;

        qemu_co_mutex_unlock(&s->lock);
        ret = qcow2_co_pwrite_zeroes_data(bs, old_size, len, 0);
        qemu_co_mutex_lock(&s->lock);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to zero out the new area");
            return ret;
        }
    }
    return 0;
}

/*
 * Zero [old_size, end of its cluster or @offset) if it holds data.
 * Called without s->lock.
 */
static int coroutine_fn zero_stale_tail(BlockDriverState *bs,
                                        uint64_t old_size, int64_t offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = MIN(ROUND_UP(old_size, s->cluster_size),
                       (uint64_t)offset);
    uint64_t len = end - old_size;
    void *buf = qemu_blockalign(bs->file->bs, len);
    QEMUIOVector qiov;
    int ret;

    qemu_iovec_init_buf(&qiov, buf, len);
    /* The driver checks requests against its size: reach the tail. */
    s->size = end;
    ret = qcow2_co_preadv_data(bs, old_size, len, &qiov, 0, 0);
    if (ret >= 0 && !buffer_is_zero(buf, len)) {
        ret = qcow2_co_pwrite_zeroes_data(bs, old_size, len, 0);
    }
    s->size = old_size;
    qemu_vfree(buf);
    return ret;
}

/*
 * A grown L1 table written last ends the file where its entries end, as
 * with the reference implementation; space reserved ahead of allocation
 * would otherwise only be trimmed to the end of its cluster.
 */
static void coroutine_fn trim_after_l1(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t l1_end = s->l1_table_offset + (int64_t)s->l1_size * 8;
    int64_t end, real;

    end = qcow2_get_last_allocated_end(bs);
    if (end != ROUND_UP(l1_end, s->cluster_size) || s->linked_end > l1_end) {
        return;
    }
    real = bdrv_co_getlength(bs->file->bs);
    if (real < 0) {
        return;
    }
    if (real == l1_end ||
        bdrv_co_truncate(bs->file, l1_end, true, PREALLOC_MODE_OFF, 0,
                         NULL) >= 0) {
        /* The file now ends exactly there: nothing for close to adjust. */
        s->file_size = l1_end;
        s->open_file_size = MIN(s->open_file_size, l1_end);
        s->zero_start = MIN(s->zero_start, l1_end);
        s->file_grown = false;
        s->file_lazy = false;
    }
}

/* ---- the driver callback --------------------------------------------- */

/*
 * Contract: runs in a coroutine, without s->lock (taken here); @offset
 * must be a multiple of 512.  Shrinking needs prealloc OFF.  With
 * BDRV_REQ_ZERO_WRITE the grown area reads as zeroes even over a backing
 * file.  Returns 0 or -errno with @errp set; checks that fail leave the
 * image untouched.  Zoned images cannot be resized.
 */
int coroutine_fn qcow2_co_truncate(BlockDriverState *bs, int64_t offset,
                                   bool exact, PreallocMode prealloc,
                                   BdrvRequestFlags flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_size = s->size;
    uint64_t head_len = 0;
    void *head = NULL;
    uint64_t val;
    int ret;

    if (s->zoned || s->has_zoned_ext) {
        error_setg(errp, "Cannot resize a zoned image");
        return -ENOTSUP;
    }
    if (prealloc != PREALLOC_MODE_OFF && prealloc != PREALLOC_MODE_METADATA &&
        prealloc != PREALLOC_MODE_FALLOC && prealloc != PREALLOC_MODE_FULL) {
        error_setg(errp, "Unsupported preallocation mode '%s'",
                   PreallocMode_str[prealloc]);
        return -ENOTSUP;
    }
    if (offset & 511) {
        error_setg(errp, "The new size must be a multiple of 512");
        return -EINVAL;
    }
    if (s->nb_snapshots && s->qcow_version < 3) {
        error_setg(errp, "Can't resize a v2 image which has snapshots");
        return -ENOTSUP;
    }
    if (s->has_bitmaps_ext && be32_to_cpu(s->bitmaps_ext.nb_bitmaps)) {
        /* Their on-disk size follows the image size; we cannot resize them. */
        error_setg(errp, "Cannot resize an image with persistent bitmaps");
        return -ENOTSUP;
    }
    if ((uint64_t)offset < old_size && prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Preallocation can't be used for shrinking an image");
        return -EINVAL;
    }

    /*
     * Version 2 has no zero clusters: the area a backing file would show
     * through cannot be zeroed (checked first so that nothing changes).
     */
    if ((flags & BDRV_REQ_ZERO_WRITE) && (uint64_t)offset > old_size &&
        s->qcow_version < 3 && prealloc != PREALLOC_MODE_FALLOC &&
        prealloc != PREALLOC_MODE_FULL &&
        (uint64_t)offset > ROUND_UP(old_size, s->cluster_size)) {
        error_setg_errno(errp, ENOTSUP, "Failed to zero out new clusters");
        return -ENOTSUP;
    }

    /*
     * Bytes past the old end in its last cluster come into view: they
     * are zero unless a shrink left old data there.  Make sure they are.
     * (With a backing file or preallocation into new clusters, the paths
     * below take care of it.)
     */
    if ((uint64_t)offset > old_size && offset_into_cluster(s, old_size) &&
        !(flags & BDRV_REQ_ZERO_WRITE) && prealloc != PREALLOC_MODE_FALLOC &&
        prealloc != PREALLOC_MODE_FULL) {
        ret = zero_stale_tail(bs, old_size, offset);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to zero out the new area");
            return ret;
        }
    }

    /* The content of a partial last cluster that preallocation relinks. */
    if ((uint64_t)offset > old_size && prealloc != PREALLOC_MODE_OFF &&
        offset_into_cluster(s, old_size)) {
        QEMUIOVector qiov;

        head_len = offset_into_cluster(s, old_size);
        head = qemu_blockalign(bs->file->bs, head_len);
        qemu_iovec_init_buf(&qiov, head, head_len);
        ret = qcow2_co_preadv_data(bs, start_of_cluster(s, old_size),
                                   head_len, &qiov, 0, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read the last cluster");
            goto out_nolock;
        }
    }

    qemu_co_mutex_lock(&s->lock);
    if ((uint64_t)offset < old_size) {
        ret = qcow2_shrink(bs, old_size, offset, errp);
    } else {
        ret = qcow2_grow_l1_table(bs, size_to_l1(s, offset), true);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to grow the L1 table");
        }
    }
    if (ret < 0) {
        goto out;
    }

    switch (prealloc) {
    case PREALLOC_MODE_METADATA:
        ret = prealloc_metadata(bs, old_size, offset, head, head_len, errp);
        break;
    case PREALLOC_MODE_FALLOC:
    case PREALLOC_MODE_FULL:
        ret = prealloc_full(bs, old_size, offset, prealloc, head, head_len,
                            errp);
        /* Preallocated clusters read as zeroes, backing file or not. */
        flags &= ~BDRV_REQ_ZERO_WRITE;
        break;
    default:
        break;
    }
    if (ret < 0) {
        goto out;
    }

    if ((flags & BDRV_REQ_ZERO_WRITE) && (uint64_t)offset > old_size) {
        s->size = offset;
        ret = zero_new_area(bs, old_size, offset, errp);
        s->size = old_size;
        if (ret < 0) {
            goto out;
        }
    }

    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to flush metadata");
        goto out;
    }
    val = cpu_to_be64(offset);
    ret = bdrv_co_pwrite_sync(bs->file, offsetof(QCowHeader, size),
                              sizeof(val), &val, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to update the image size");
        goto out;
    }
    s->size = offset;
    s->l1_vm_state_index = size_to_l1(s, offset);
    if ((uint64_t)offset > old_size) {
        trim_after_l1(bs);
    }
out:
    qemu_co_mutex_unlock(&s->lock);
out_nolock:
    qemu_vfree(head);
    return ret < 0 ? ret : 0;
}
