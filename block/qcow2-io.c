/*
 * qcow2 format driver: the guest data path (reads, writes, compressed
 * writes, write zeroes, discard, block status); resize is in
 * qcow2-resize.c.  Nothing here knows of zones: the zoned emulation in
 * qcow2.c wraps these functions and the driver table points at it.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Locking: s->lock protects the metadata and is released around guest
 * data I/O.  Reads and in-place rewrites of clusters whose L2 table is
 * cached take a lock-free path (see fast_lookup()).
 */
#include "qemu/osdep.h"
#include "qcow2.h"

/* ---- reads ---------------------------------------------------------------------------- */

static int coroutine_fn read_backing(BlockDriverState *bs, uint64_t offset,
                                     uint64_t bytes, QEMUIOVector *qiov,
                                     size_t qiov_offset)
{
    int64_t blen;
    uint64_t n = 0;
    int ret;

    if (bs->backing) {
        blen = bdrv_co_getlength(bs->backing->bs);
        if (blen < 0) {
            return blen;
        }
        if ((int64_t)offset < blen) {
            n = MIN(bytes, (uint64_t)blen - offset);
            ret = bdrv_co_preadv_part(bs->backing, offset, n, qiov,
                                      qiov_offset, 0);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (n < bytes) {
        qemu_iovec_memset(qiov, qiov_offset + n, 0, bytes - n);
    }
    return 0;
}

static int coroutine_fn read_compressed(BlockDriverState *bs,
                                        uint64_t l2_entry, uint64_t offset,
                                        uint64_t bytes, QEMUIOVector *qiov,
                                        size_t qiov_offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t coffset;
    int csize, avail;
    uint8_t *in, *out;
    int ret;

    qcow2_parse_compressed_l2_entry(s, l2_entry, &coffset, &csize);
    in = g_try_malloc0(csize);
    out = g_try_malloc(s->cluster_size);
    if (!in || !out) {
        ret = -ENOMEM;
        goto out;
    }
    /* The sector-rounded length may reach past the end of the file. */
    avail = csize;
    if ((int64_t)(coffset + csize) > s->file_size) {
        avail = s->file_size > (int64_t)coffset ? s->file_size - coffset : 0;
    }
    if (avail) {
        ret = bdrv_co_pread(bs->file, coffset, avail, in, 0);
        if (ret < 0) {
            goto out;
        }
    }
    ret = qcow2_co_decompress(bs, out, s->cluster_size, in, csize);
    if (ret < 0) {
        ret = -EIO;
        goto out;
    }
    qemu_iovec_from_buf(qiov, qiov_offset, out + offset_into_cluster(s, offset),
                        bytes);
    ret = 0;
out:
    g_free(in);
    g_free(out);
    return ret;
}

/*
 * Lock-free lookup for requests whose clusters are all in one cached L2
 * table and contiguous on the host: returns the host offset for @offset,
 * or 0 if the slow path must be taken.  Reads accept any allocated data
 * cluster; writes only clusters (and an L2 table) we own exclusively.
 * Never yields, so the entries cannot change under it.
 */
static inline uint64_t fast_lookup(BDRVQcow2State *s, uint64_t offset,
                                   uint64_t bytes, bool write)
{
    uint64_t l1_index = offset >> (s->l2_bits + s->cluster_bits);
    uint64_t check = write ? QCOW_OFLAG_COPIED | QCOW_OFLAG_COMPRESSED |
                             QCOW_OFLAG_ZERO
                           : QCOW_OFLAG_COMPRESSED | QCOW_OFLAG_ZERO;
    uint64_t want = write ? QCOW_OFLAG_COPIED : 0;
    uint64_t l1e, host, e, *l2;
    uint64_t into = offset_into_cluster(s, offset);
    uint64_t extra = (into + bytes - 1) >> s->cluster_bits;
    int l2_index, k;

    if (unlikely(l1_index >= s->l1_size)) {
        return 0;
    }
    l1e = s->l1_table[l1_index];
    if (!(l1e & L1E_OFFSET_MASK) || (write && !(l1e & QCOW_OFLAG_COPIED))) {
        return 0;
    }
    l2_index = offset_to_l2_index(s, offset);
    if (l2_index + extra >= (uint64_t)s->l2_size) {
        return 0;
    }
    l2 = qcow2_cache_peek(s->l2_table_cache, l1e & L1E_OFFSET_MASK);
    if (!l2) {
        return 0;
    }
    e = be64_to_cpu(l2[l2_index]);
    host = e & L2E_OFFSET_MASK;
    if ((e & check) != want || !host || offset_into_cluster(s, host)) {
        return 0;
    }
    for (k = 1; k <= (int)extra; k++) {
        e = be64_to_cpu(l2[l2_index + k]);
        if ((e & check) != want ||
            (e & L2E_OFFSET_MASK) != host + ((uint64_t)k << s->cluster_bits)) {
            return 0;
        }
    }
    return host + into;
}

int coroutine_fn qcow2_co_preadv_data(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      size_t qiov_offset,
                                      BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    /* Fast path: allocated, uncompressed, contiguous clusters. */
    {
        uint64_t host = fast_lookup(s, offset, bytes, false);

        if (host) {
            return bdrv_co_preadv_part(bs->file, host, bytes, qiov,
                                       qiov_offset, 0);
        }
    }

    while (bytes > 0) {
        uint64_t cur = bytes, host;
        QCow2ClusterType type;

        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_get_host_offset(bs, offset, &cur, &host, &type);
        qemu_co_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
        switch (type) {
        case QCOW2_CLUSTER_UNALLOCATED:
            ret = read_backing(bs, offset, cur, qiov, qiov_offset);
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            qemu_iovec_memset(qiov, qiov_offset, 0, cur);
            break;
        case QCOW2_CLUSTER_COMPRESSED:
            ret = read_compressed(bs, host, offset, cur, qiov, qiov_offset);
            break;
        case QCOW2_CLUSTER_NORMAL:
            ret = bdrv_co_preadv_part(bs->file, host, cur, qiov, qiov_offset,
                                      0);
            break;
        }
        if (ret < 0) {
            return ret;
        }
        offset += cur;
        bytes -= cur;
        qiov_offset += cur;
    }
    return 0;
}

/* ---- writes ---------------------------------------------------------------------------- */

/*
 * Fill @buf with what the image holds at guest [offset, +bytes).  Layers
 * above that hide some of it (zones past their write pointer) keep hiding
 * the copy: it lands at the same guest offsets.
 */
static int coroutine_fn cow_read(BlockDriverState *bs, uint64_t offset,
                                 uint64_t bytes, void *buf)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes);
    return qcow2_co_preadv_data(bs, offset, bytes, &qiov, 0, 0);
}

/*
 * Write the data of an allocating request, with the parts of the new
 * clusters it does not cover copied from the old content, in one
 * vectored write when possible.
 */
static int coroutine_fn write_allocated(BlockDriverState *bs, QCowL2Meta *m,
                                        uint64_t host_offset, uint64_t bytes,
                                        QEMUIOVector *qiov,
                                        size_t qiov_offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t head = m->cow_start.bytes, tail = m->cow_end.bytes;
    bool need_head = head && !(m->cow_start_zero && m->new_is_zero);
    bool need_tail = tail && !(m->cow_end_zero && m->new_is_zero);
    void *head_buf = NULL, *tail_buf = NULL;
    QEMUIOVector local;
    uint64_t start = host_offset, total = bytes;
    int ret;

    ret = qcow2_pre_write_overlap_check(bs, 0, m->alloc_offset,
                                        (int64_t)m->nb_clusters <<
                                        s->cluster_bits);
    if (ret < 0) {
        return ret;
    }
    if (!need_head && !need_tail) {
        return bdrv_co_pwritev_part(bs->file, host_offset, bytes, qiov,
                                    qiov_offset, 0);
    }

    if (need_head) {
        if (m->cow_start_zero) {
            head_buf = s->zero_cluster;
        } else {
            head_buf = qemu_blockalign(bs->file->bs, head);
            ret = cow_read(bs, m->guest_offset + m->cow_start.offset, head,
                           head_buf);
            if (ret < 0) {
                goto out;
            }
        }
    }
    if (need_tail) {
        if (m->cow_end_zero) {
            tail_buf = s->zero_cluster;
        } else {
            tail_buf = qemu_blockalign(bs->file->bs, tail);
            ret = cow_read(bs, m->guest_offset + m->cow_end.offset, tail,
                           tail_buf);
            if (ret < 0) {
                goto out;
            }
        }
    }

    qemu_iovec_init(&local, qiov->niov + 2);
    if (need_head) {
        qemu_iovec_add(&local, head_buf, head);
        start -= head;
        total += head;
    }
    qemu_iovec_concat(&local, qiov, qiov_offset, bytes);
    if (need_tail) {
        qemu_iovec_add(&local, tail_buf, tail);
        total += tail;
    }
    ret = bdrv_co_pwritev(bs->file, start, total, &local, 0);
    qemu_iovec_destroy(&local);
out:
    if (head_buf && head_buf != s->zero_cluster) {
        qemu_vfree(head_buf);
    }
    if (tail_buf && tail_buf != s->zero_cluster) {
        qemu_vfree(tail_buf);
    }
    return ret;
}

int coroutine_fn qcow2_co_pwritev_data(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       size_t qiov_offset,
                                       BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    if (unlikely(qcow2_is_corrupt(s))) {
        return -EIO;
    }

    /* Fast path: rewrite of clusters we own exclusively. */
    {
        uint64_t host = fast_lookup(s, offset, bytes, true);

        if (host && (int64_t)(host + bytes) <= s->file_size) {
            /* Full overlap check only where metadata may be. */
            if (unlikely(qcow2_meta_filter_hit(s, host, bytes))) {
                ret = qcow2_pre_write_overlap_check(bs, 0, host, bytes);
                if (ret < 0) {
                    return ret;
                }
            }
            return bdrv_co_pwritev_part(bs->file, host, bytes, qiov,
                                        qiov_offset, 0);
        }
    }

    while (bytes > 0) {
        uint64_t cur = bytes, host;
        QCowL2Meta *m = NULL;

        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_alloc_host_offset(bs, offset, &cur, &host, &m);
        qemu_co_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
        if (!m) {
            ret = qcow2_pre_write_overlap_check(bs, 0, host, cur);
            if (ret >= 0) {
                ret = bdrv_co_pwritev_part(bs->file, host, cur, qiov,
                                           qiov_offset, 0);
            }
        } else {
            ret = write_allocated(bs, m, host, cur, qiov, qiov_offset);
            qemu_co_mutex_lock(&s->lock);
            if (ret < 0) {
                qcow2_alloc_cluster_abort(bs, m);
            } else {
                ret = qcow2_alloc_cluster_link_l2(bs, m);
            }
            qemu_co_mutex_unlock(&s->lock);
        }
        if (ret < 0) {
            return ret;
        }
        offset += cur;
        bytes -= cur;
        qiov_offset += cur;
    }
    return 0;
}

/*
 * Driver callback: compressed write.  Coroutine, s->lock not held on
 * entry.  @offset cluster aligned, @bytes whole clusters (or up to the
 * image end); bytes == 0 ends a compressed stream and aligns the file end
 * to 512 bytes.  0 or negative errno.
 */
int coroutine_fn
qcow2_co_pwritev_compressed_data(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 size_t qiov_offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *buf = NULL, *out = NULL;
    uint64_t host;
    ssize_t out_len;
    int ret;

    if (qcow2_is_corrupt(s)) {
        return -EIO;
    }
    if (bytes == 0) {
        /*
         * The end of a compressed stream (qemu-img convert -c): as QEMU,
         * the file ends on a 512-byte boundary after the last data.
         */
        int64_t len;

        qemu_co_mutex_lock(&s->lock);
        len = bdrv_co_getlength(bs->file->bs);
        ret = len < 0 ? (int)len : 0;
        if (len >= 0 && s->compressed_end % BDRV_SECTOR_SIZE) {
            s->compressed_end = ROUND_UP(s->compressed_end, BDRV_SECTOR_SIZE);
            if (len < s->compressed_end) {
                ret = bdrv_co_truncate(bs->file, s->compressed_end, false,
                                       PREALLOC_MODE_OFF, 0, NULL);
            }
        }
        qemu_co_mutex_unlock(&s->lock);
        return ret;
    }
    /* Several clusters: compress each. */
    while (bytes > s->cluster_size) {
        ret = qcow2_co_pwritev_compressed_data(bs, offset, s->cluster_size,
                                               qiov, qiov_offset);
        if (ret < 0) {
            return ret;
        }
        offset += s->cluster_size;
        bytes -= s->cluster_size;
        qiov_offset += s->cluster_size;
    }
    if (offset_into_cluster(s, offset) ||
        (bytes != s->cluster_size && (uint64_t)(offset + bytes) != s->size)) {
        return -EINVAL;
    }

    buf = g_malloc0(s->cluster_size);
    qemu_iovec_to_buf(qiov, qiov_offset, buf, bytes);
    out = g_malloc(s->cluster_size);
    out_len = qcow2_co_compress(bs, out, s->cluster_size - 1, buf,
                                s->cluster_size);
    if (out_len == -ENOMEM) {
        /* Does not get smaller: store it uncompressed. */
        ret = qcow2_co_pwritev_data(bs, offset, bytes, qiov, qiov_offset, 0);
        goto out;
    } else if (out_len < 0) {
        ret = -EINVAL;
        goto out;
    }

    qemu_co_mutex_lock(&s->lock);
    qcow2_wait_for_allocations(bs, offset, s->cluster_size);
    ret = qcow2_alloc_compressed_cluster_offset(bs, offset, out_len, &host);
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_pre_write_overlap_check(bs, 0, host, out_len);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_co_pwrite(bs->file, host, out_len, out, 0);
out:
    g_free(buf);
    g_free(out);
    return ret;
}

/* Does guest [offset, +bytes) (inside one cluster) read as zeroes? */
static int coroutine_fn is_zero_range(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cur = bytes, host;
    QCow2ClusterType type;
    int ret;

    ret = qcow2_get_host_offset(bs, offset, &cur, &host, &type);
    if (ret < 0) {
        return ret;
    }
    (void)s;
    return type == QCOW2_CLUSTER_ZERO_PLAIN ||
           type == QCOW2_CLUSTER_ZERO_ALLOC ||
           (type == QCOW2_CLUSTER_UNALLOCATED && !bs->backing);
}

static int coroutine_fn write_zero_bytes(BlockDriverState *bs, int64_t offset,
                                         int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, s->zero_cluster, bytes);
    return qcow2_co_pwritev_data(bs, offset, bytes, &qiov, 0, 0);
}

/*
 * The whole clusters inside [offset, offset + bytes) as [*astart, *aend);
 * the partial cluster at the end of the image counts as whole.  False if
 * there is none.
 */
static bool whole_clusters(BDRVQcow2State *s, int64_t offset, int64_t bytes,
                           int64_t *astart, int64_t *aend)
{
    int64_t end = offset + bytes;

    *astart = ROUND_UP(offset, s->cluster_size);
    *aend = (uint64_t)end == s->size ? ROUND_UP(end, s->cluster_size)
                                     : start_of_cluster(s, end);
    return *astart < *aend;
}

int coroutine_fn qcow2_co_pwrite_zeroes_data(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t end = offset + bytes;
    int64_t astart, aend;
    int ret;

    if (qcow2_is_corrupt(s)) {
        return -EIO;
    }
    if (!whole_clusters(s, offset, bytes, &astart, &aend)) {
        /* No whole cluster inside: treat it all as unaligned. */
        astart = aend = end;
    }

    /* Unaligned head and tail: nothing to do where already zero. */
    {
        int64_t pieces[2][2] = {
            { offset, astart - offset },
            { aend, end - aend },
        };
        int k;

        for (k = 0; k < 2; k++) {
            int64_t o = pieces[k][0], n = pieces[k][1];

            while (n > 0) {
                int64_t chunk = MIN(n, s->cluster_size -
                                       offset_into_cluster(s, o));

                qemu_co_mutex_lock(&s->lock);
                ret = is_zero_range(bs, o, chunk);
                qemu_co_mutex_unlock(&s->lock);
                if (ret < 0) {
                    return ret;
                }
                if (!ret) {
                    if (flags & BDRV_REQ_NO_FALLBACK) {
                        return -ENOTSUP;
                    }
                    ret = write_zero_bytes(bs, o, chunk);
                    if (ret < 0) {
                        return ret;
                    }
                }
                o += chunk;
                n -= chunk;
            }
        }
    }
    if (astart >= aend) {
        return 0;
    }

    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_subcluster_zeroize(bs, astart, aend - astart, flags);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn qcow2_co_pdiscard_data(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t astart, aend;
    int ret;

    if (qcow2_is_corrupt(s)) {
        return -EIO;
    }
    if (!whole_clusters(s, offset, bytes, &astart, &aend)) {
        return 0;   /* a hint: partial clusters stay as they are */
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cluster_discard(bs, astart, aend - astart, false);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/*
 * BlockDriver.bdrv_co_make_empty: a full discard of the whole image, which
 * leaves every L2 entry unallocated (no zero flags) so that the backing
 * file shows through again; freed clusters go back to the allocator.
 * Coroutine context, takes s->lock.
 */
int coroutine_fn qcow2_co_make_empty_data(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    /* One L2 table's worth at a time keeps the freed list bounded. */
    uint64_t step = (uint64_t)s->l2_size << s->cluster_bits;
    uint64_t end = ROUND_UP(s->size, s->cluster_size), offset;
    int ret = 0;

    if (qcow2_is_corrupt(s)) {
        return -EIO;
    }
    if (bdrv_is_read_only(bs)) {
        return -EACCES;
    }
    qemu_co_mutex_lock(&s->lock);
    for (offset = 0; offset < end && ret >= 0; offset += step) {
        ret = qcow2_cluster_discard(bs, offset, MIN(step, end - offset),
                                    true);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/* ---- block status ------------------------------------------------------------------ */

int coroutine_fn qcow2_co_block_status_data(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cur = bytes, host;
    QCow2ClusterType type;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    if (!s->metadata_preallocation_checked) {
        s->metadata_preallocation =
            qcow2_detect_metadata_preallocation(bs) == 1;
        s->metadata_preallocation_checked = true;
    }
    ret = qcow2_get_host_offset(bs, offset, &cur, &host, &type);
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    *pnum = cur;
    switch (type) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
        return BDRV_BLOCK_ZERO;
    case QCOW2_CLUSTER_ZERO_ALLOC:
        *map = host;
        *file = bs->file->bs;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
    case QCOW2_CLUSTER_COMPRESSED:
        return BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED;
    case QCOW2_CLUSTER_NORMAL:
    default:
        *map = host;
        *file = bs->file->bs;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID |
               (s->metadata_preallocation ? BDRV_BLOCK_RECURSE : 0);
    }
}
