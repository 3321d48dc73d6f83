/*
 * qcow2 guest-to-host mapping: L1/L2 lookup, cluster allocation and
 * linking, discard and zeroing.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Functions that change metadata run with s->lock held.  Allocating
 * writes are two-phase: qcow2_alloc_host_offset() reserves host clusters
 * and records a QCowL2Meta in s->cluster_allocs; the caller writes the
 * data without the lock; qcow2_alloc_cluster_link_l2() then points the L2
 * entries at the new clusters.  Requests touching a guest cluster with an
 * allocation in flight wait for it.
 */
#include "qemu/osdep.h"
#include "qcow2.h"

/* ---- L1 table ---------------------------------------------------------------- */

int coroutine_fn qcow2_write_l1_entry(BlockDriverState *bs, int l1_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t buf[64];
    int start = l1_index & ~63;
    int n = MIN(64, (int)s->l1_size - start);
    int i, ret;

    for (i = 0; i < n; i++) {
        buf[i] = cpu_to_be64(s->l1_table[start + i]);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L1,
                                        s->l1_table_offset + start * 8, n * 8);
    if (ret < 0) {
        return ret;
    }
    return bdrv_co_pwrite_sync(bs->file, s->l1_table_offset + start * 8,
                               n * 8, buf, 0);
}

int coroutine_fn qcow2_grow_l1_table(BlockDriverState *bs, uint64_t min_size,
                                     bool exact_size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t new_size, i;
    uint64_t *new_table, *buf;
    int64_t new_offset;
    uint64_t old_offset = s->l1_table_offset;
    uint32_t old_size = s->l1_size;
    uint8_t hdr[12];
    int ret;

    if (min_size <= s->l1_size) {
        return 0;
    }
    new_size = min_size;
    if (!exact_size) {
        new_size = MAX(min_size, (uint64_t)s->l1_size * 3 / 2 + 1);
    }
    new_size = MIN(new_size, QCOW_MAX_L1_SIZE / 8);
    if (new_size < min_size) {
        return -EFBIG;
    }
    new_table = g_try_new0(uint64_t, ROUND_UP(new_size, 64));
    if (!new_table) {
        return -ENOMEM;
    }
    memcpy(new_table, s->l1_table, (size_t)s->l1_size * 8);

    /* The L2 tables must be on disk before a new L1 names them. */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        goto fail;
    }
    new_offset = qcow2_alloc_clusters(bs, new_size * 8);
    if (new_offset < 0) {
        ret = new_offset;
        goto fail;
    }
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto fail_free;
    }
    buf = g_new0(uint64_t, new_size);
    for (i = 0; i < new_size; i++) {
        buf[i] = cpu_to_be64(new_table[i]);
    }
    stbe32_p(hdr, new_size);
    stbe64_p(hdr + 4, new_offset);
    ret = qcow2_write_table_and_header(bs, new_offset, buf, new_size * 8,
                                       offsetof(QCowHeader, l1_size),
                                       hdr, sizeof(hdr));
    g_free(buf);
    if (ret < 0) {
        goto fail_free;
    }
    g_free(s->l1_table);
    qcow2_meta_filter_add(s, new_offset, new_size * 8);
    s->l1_table = new_table;
    s->l1_table_offset = new_offset;
    s->l1_size = new_size;
    qcow2_free_clusters(bs, old_offset, (uint64_t)old_size * 8);
    return 0;

fail_free:
    qcow2_free_clusters(bs, new_offset, new_size * 8);
fail:
    g_free(new_table);
    return ret;
}

/* ---- L2 tables ----------------------------------------------------------------- */

static int coroutine_fn l2_load(BlockDriverState *bs, uint64_t l1_index,
                                uint64_t l2_offset, uint64_t **l2)
{
    BDRVQcow2State *s = bs->opaque;

    if (offset_into_cluster(s, l2_offset)) {
        qcow2_signal_corruption(bs, true, -1, -1, "L2 table offset %#"
                                PRIx64 " unaligned (L1 index: %#" PRIx64
                                ")", l2_offset, l1_index);
        return -EIO;
    }
    return qcow2_cache_get(bs, s->l2_table_cache, l2_offset, (void **)l2);
}

/*
 * Give L1 entry @l1_index a writable L2 table of its own: a fresh zeroed
 * one, or a copy of a shared one (snapshots).
 */
static int coroutine_fn l2_allocate(BlockDriverState *bs, int l1_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_entry = s->l1_table[l1_index];
    uint64_t old_offset = old_entry & L1E_OFFSET_MASK;
    uint64_t *l2 = NULL, *old_l2 = NULL;
    int64_t new_offset;
    int ret;

    new_offset = qcow2_alloc_clusters(bs, s->cluster_size);
    if (new_offset < 0) {
        return new_offset;
    }
    if (new_offset == 0) {
        /*
         * Only a broken refcount for the header cluster gets us here.  The
         * header really is in use, so keep the reference just taken.
         */
        qcow2_signal_corruption(bs, true, -1, -1, "Preventing invalid "
                                "allocation of L2 table at offset 0");
        return -EIO;
    }
    ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                     s->refcount_block_cache);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_cache_get_empty(bs, s->l2_table_cache, new_offset,
                                (void **)&l2);
    if (ret < 0) {
        goto fail;
    }
    if (old_offset) {
        ret = l2_load(bs, l1_index, old_offset, &old_l2);
        if (ret < 0) {
            qcow2_cache_put(s->l2_table_cache, (void **)&l2);
            goto fail;
        }
        memcpy(l2, old_l2, s->cluster_size);
        qcow2_cache_put(s->l2_table_cache, (void **)&old_l2);
    } else {
        memset(l2, 0, s->cluster_size);
    }
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, l2);
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);

    /* The table (and its refcount) must be on disk before L1 names it. */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        goto fail;
    }
    s->l1_table[l1_index] = new_offset | QCOW_OFLAG_COPIED;
    s->linked_end = MAX(s->linked_end, new_offset + s->cluster_size);
    qcow2_meta_filter_add(s, new_offset, s->cluster_size);
    ret = qcow2_write_l1_entry(bs, l1_index);
    if (ret < 0) {
        s->l1_table[l1_index] = old_entry;
        goto fail;
    }
    if (old_offset) {
        qcow2_free_clusters(bs, old_offset, s->cluster_size);
    }
    return 0;

fail:
    l2 = qcow2_cache_is_table_offset(s->l2_table_cache, new_offset);
    if (l2) {
        qcow2_cache_discard(s->l2_table_cache, l2);
    }
    qcow2_free_clusters(bs, new_offset, s->cluster_size);
    return ret;
}

/* The writable L2 table holding guest @offset (allocated if needed). */
static int coroutine_fn get_cluster_table(BlockDriverState *bs,
                                          uint64_t offset, uint64_t **l2,
                                          int *l2_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = offset_to_l1_index(s, offset);
    int ret;

    if (l1_index >= s->l1_size) {
        ret = qcow2_grow_l1_table(bs, l1_index + 1, false);
        if (ret < 0) {
            return ret;
        }
    }
    if (!(s->l1_table[l1_index] & QCOW_OFLAG_COPIED) ||
        !(s->l1_table[l1_index] & L1E_OFFSET_MASK)) {
        ret = l2_allocate(bs, l1_index);
        if (ret < 0) {
            return ret;
        }
    }
    /* Writing it past the end must not extend the file for a bad entry. */
    ret = qcow2_cover_allocated(bs, s->l1_table[l1_index] & L1E_OFFSET_MASK,
                                s->cluster_size, "L2 table");
    if (ret < 0) {
        return ret;
    }
    ret = l2_load(bs, l1_index, s->l1_table[l1_index] & L1E_OFFSET_MASK,
                  l2);
    if (ret < 0) {
        return ret;
    }
    *l2_index = offset_to_l2_index(s, offset);
    return 0;
}

int coroutine_fn qcow2_get_l2_entry(BlockDriverState *bs, uint64_t offset,
                                    uint64_t *l2_entry)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = offset_to_l1_index(s, offset);
    uint64_t l2_offset, *l2;
    int ret;

    *l2_entry = 0;
    if (l1_index >= s->l1_size) {
        return 0;
    }
    l2_offset = s->l1_table[l1_index] & L1E_OFFSET_MASK;
    if (!l2_offset) {
        return 0;
    }
    ret = l2_load(bs, l1_index, l2_offset, &l2);
    if (ret < 0) {
        return ret;
    }
    *l2_entry = be64_to_cpu(l2[offset_to_l2_index(s, offset)]);
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);
    return 0;
}

int coroutine_fn qcow2_prepare_l2_table(BlockDriverState *bs,
                                        uint64_t offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2;
    int l2_index, ret;

    ret = get_cluster_table(bs, offset, &l2, &l2_index);
    if (ret >= 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
    }
    return ret;
}

/* ---- lookup ---------------------------------------------------------------------- */

int coroutine_fn qcow2_get_host_offset(BlockDriverState *bs, uint64_t offset,
                                       uint64_t *bytes,
                                       uint64_t *host_offset,
                                       QCow2ClusterType *type)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = offset_to_l1_index(s, offset);
    int l2_index = offset_to_l2_index(s, offset);
    uint64_t into = offset_into_cluster(s, offset);
    uint64_t bytes_needed, nb_clusters, i;
    uint64_t l2_offset, entry, host;
    uint64_t *l2;
    QCow2ClusterType t;
    int ret;

    bytes_needed = ((uint64_t)(s->l2_size - l2_index) << s->cluster_bits)
                   - into;
    bytes_needed = MIN(bytes_needed, *bytes);
    *host_offset = 0;

    if (l1_index >= s->l1_size ||
        !(l2_offset = s->l1_table[l1_index] & L1E_OFFSET_MASK)) {
        *type = QCOW2_CLUSTER_UNALLOCATED;
        *bytes = bytes_needed;
        return 0;
    }
    ret = l2_load(bs, l1_index, l2_offset, &l2);
    if (ret < 0) {
        return ret;
    }
    nb_clusters = size_to_clusters(s, into + bytes_needed);
    entry = be64_to_cpu(l2[l2_index]);
    t = qcow2_get_cluster_type(bs, entry);
    host = entry & L2E_OFFSET_MASK;

    switch (t) {
    case QCOW2_CLUSTER_COMPRESSED:
        *host_offset = entry;
        nb_clusters = 1;
        break;
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        if (offset_into_cluster(s, host)) {
            qcow2_cache_put(s->l2_table_cache, (void **)&l2);
            qcow2_signal_corruption(bs, true, -1, -1,
                                    "Cluster allocation offset %#" PRIx64
                                    " unaligned (L2 offset: %#" PRIx64
                                    ", L2 index: %#x)", host, l2_offset,
                                    l2_index);
            return -EIO;
        }
        *host_offset = host + into;
        /* fall through */
    default:
        for (i = 1; i < nb_clusters; i++) {
            uint64_t e = be64_to_cpu(l2[l2_index + i]);

            if (qcow2_get_cluster_type(bs, e) != t) {
                break;
            }
            if ((t == QCOW2_CLUSTER_NORMAL || t == QCOW2_CLUSTER_ZERO_ALLOC)
                && (e & L2E_OFFSET_MASK) != host + (i << s->cluster_bits)) {
                break;
            }
        }
        nb_clusters = i;
        break;
    }
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);
    *type = t;
    *bytes = MIN(bytes_needed, (nb_clusters << s->cluster_bits) - into);
    return 0;
}

/* ---- allocation --------------------------------------------------------------- */

/*
 * If a request for guest [start, start+*bytes) conflicts with an
 * allocation in flight: shorten it to end before the conflict, or, if it
 * starts inside one, wait for it and return -EAGAIN.
 */
static int coroutine_fn handle_dependencies(BlockDriverState *bs,
                                            uint64_t start, uint64_t *bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = start + *bytes;
    QCowL2Meta *m;

    for (m = s->cluster_allocs; m; m = m->next) {
        uint64_t ms = m->guest_offset;
        uint64_t me = ms + ((uint64_t)m->nb_clusters << s->cluster_bits);
        /* Allocations own whole guest clusters. */
        uint64_t cs = start_of_cluster(s, start);
        uint64_t ce = ROUND_UP(end, s->cluster_size);

        if (me <= cs || ms >= ce) {
            continue;
        }
        if (ms > cs && ms > start) {
            end = ms;
            *bytes = end - start;
            continue;
        }
        qemu_co_queue_wait(&m->dependent_requests, &s->lock);
        return -EAGAIN;
    }
    return 0;
}

int coroutine_fn qcow2_wait_for_allocations(BlockDriverState *bs,
                                            uint64_t offset, uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    QCowL2Meta *m;

again:
    for (m = s->cluster_allocs; m; m = m->next) {
        uint64_t ms = m->guest_offset;
        uint64_t me = ms + ((uint64_t)m->nb_clusters << s->cluster_bits);

        if (me > start_of_cluster(s, offset) &&
            ms < ROUND_UP(offset + bytes, s->cluster_size)) {
            qemu_co_queue_wait(&m->dependent_requests, &s->lock);
            goto again;
        }
    }
    return 0;
}

static bool cow_source_is_zero(BlockDriverState *bs, QCow2ClusterType t)
{
    return t == QCOW2_CLUSTER_ZERO_PLAIN || t == QCOW2_CLUSTER_ZERO_ALLOC ||
           (t == QCOW2_CLUSTER_UNALLOCATED && !bs->backing);
}

int coroutine_fn qcow2_alloc_host_offset(BlockDriverState *bs,
                                         uint64_t offset, uint64_t *bytes,
                                         uint64_t *host_offset,
                                         QCowL2Meta **pm)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t into = offset_into_cluster(s, offset);
    uint64_t *l2;
    int l2_index, ret;
    uint64_t nb_clusters, i, entry, host;
    QCow2ClusterType first_type, last_type;
    int64_t alloc_offset, zero_start;
    QCowL2Meta *m;

    *pm = NULL;
again:
    ret = handle_dependencies(bs, offset, bytes);
    if (ret == -EAGAIN) {
        goto again;
    }

    ret = get_cluster_table(bs, offset, &l2, &l2_index);
    if (ret < 0) {
        return ret;
    }
    nb_clusters = size_to_clusters(s, into + *bytes);
    nb_clusters = MIN(nb_clusters, (uint64_t)(s->l2_size - l2_index));

    entry = be64_to_cpu(l2[l2_index]);
    first_type = qcow2_get_cluster_type(bs, entry);
    host = entry & L2E_OFFSET_MASK;
    if (first_type == QCOW2_CLUSTER_NORMAL && (entry & QCOW_OFLAG_COPIED)) {
        /* Write in place: extend over contiguous writable clusters. */
        if (offset_into_cluster(s, host)) {
            qcow2_cache_put(s->l2_table_cache, (void **)&l2);
            qcow2_signal_corruption(bs, true, -1, -1,
                                    "Data cluster offset %#" PRIx64
                                    " unaligned", host);
            return -EIO;
        }
        for (i = 1; i < nb_clusters; i++) {
            uint64_t e = be64_to_cpu(l2[l2_index + i]);

            if (qcow2_get_cluster_type(bs, e) != QCOW2_CLUSTER_NORMAL ||
                !(e & QCOW_OFLAG_COPIED) ||
                (e & L2E_OFFSET_MASK) != host + (i << s->cluster_bits)) {
                break;
            }
        }
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
        ret = qcow2_cover_allocated(bs, host, i << s->cluster_bits,
                                    "Data cluster");
        if (ret < 0) {
            return ret;
        }
        *host_offset = host + into;
        *bytes = MIN(*bytes, (i << s->cluster_bits) - into);
        return 0;
    }

    /* Allocate new clusters for a run that cannot be written in place. */
    last_type = first_type;
    for (i = 1; i < nb_clusters; i++) {
        uint64_t e = be64_to_cpu(l2[l2_index + i]);
        QCow2ClusterType t = qcow2_get_cluster_type(bs, e);

        if (t == QCOW2_CLUSTER_NORMAL && (e & QCOW_OFLAG_COPIED)) {
            break;
        }
        last_type = t;
    }
    nb_clusters = i;
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);

    zero_start = s->zero_start;
    alloc_offset = qcow2_alloc_clusters(bs, nb_clusters << s->cluster_bits);
    if (alloc_offset < 0) {
        return alloc_offset;
    }

    *bytes = MIN(*bytes, (nb_clusters << s->cluster_bits) - into);
    m = g_new0(QCowL2Meta, 1);
    m->guest_offset = start_of_cluster(s, offset);
    m->alloc_offset = alloc_offset;
    m->nb_clusters = nb_clusters;
    m->cow_start.offset = 0;
    m->cow_start.bytes = into;
    m->cow_end.offset = into + *bytes;
    m->cow_end.bytes = (nb_clusters << s->cluster_bits) - m->cow_end.offset;
    m->cow_start_zero = cow_source_is_zero(bs, first_type);
    m->cow_end_zero = cow_source_is_zero(bs, last_type);
    m->new_is_zero = alloc_offset >= zero_start;
    qemu_co_queue_init(&m->dependent_requests);
    m->next = s->cluster_allocs;
    s->cluster_allocs = m;

    *host_offset = alloc_offset + into;
    *pm = m;
    return 0;
}

static void alloc_meta_remove(BlockDriverState *bs, QCowL2Meta *m)
{
    BDRVQcow2State *s = bs->opaque;
    QCowL2Meta **pp = &s->cluster_allocs;

    while (*pp != m) {
        pp = &(*pp)->next;
    }
    *pp = m->next;
    qemu_co_queue_restart_all(&m->dependent_requests);
}

int coroutine_fn qcow2_alloc_cluster_link_l2(BlockDriverState *bs,
                                             QCowL2Meta *m)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_small[32];
    uint64_t *old = m->nb_clusters <= (int)ARRAY_SIZE(old_small)
                    ? old_small : g_new(uint64_t, m->nb_clusters);
    uint64_t *l2;
    int l2_index, i, ret;

    if (s->use_lazy_refcounts) {
        ret = qcow2_mark_dirty(bs);
        if (ret < 0) {
            goto out;
        }
    }
    if (qcow2_need_accurate_refcounts(s)) {
        ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                         s->refcount_block_cache);
        if (ret < 0) {
            goto out;
        }
    } else {
        /*
         * Lazy refcounts: no refcount flush orders the data write before
         * the new L2 entry, and an entry on disk without its data points
         * at stale bytes or past the end of the file (which the repair
         * at the next open refuses).  Flush before the L2 table goes out.
         */
        qcow2_cache_depends_on_flush(s->l2_table_cache);
    }
    ret = get_cluster_table(bs, m->guest_offset, &l2, &l2_index);
    if (ret < 0) {
        goto out;
    }
    for (i = 0; i < m->nb_clusters; i++) {
        old[i] = be64_to_cpu(l2[l2_index + i]);
        l2[l2_index + i] = cpu_to_be64((m->alloc_offset +
                                        ((uint64_t)i << s->cluster_bits)) |
                                       QCOW_OFLAG_COPIED);
    }
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, l2);
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);
    s->linked_end = MAX(s->linked_end, m->alloc_offset +
                        ((int64_t)m->nb_clusters << s->cluster_bits));

    for (i = 0; i < m->nb_clusters; i++) {
        qcow2_free_any_cluster(bs, old[i]);
    }
out:
    if (old != old_small) {
        g_free(old);
    }
    alloc_meta_remove(bs, m);
    if (ret < 0) {
        qcow2_free_clusters(bs, m->alloc_offset,
                            (int64_t)m->nb_clusters << s->cluster_bits);
    }
    g_free(m);
    return ret;
}

void coroutine_fn qcow2_alloc_cluster_abort(BlockDriverState *bs,
                                            QCowL2Meta *m)
{
    BDRVQcow2State *s = bs->opaque;

    alloc_meta_remove(bs, m);
    qcow2_free_clusters(bs, m->alloc_offset,
                        (int64_t)m->nb_clusters << s->cluster_bits);
    g_free(m);
}

int coroutine_fn qcow2_alloc_compressed_cluster_offset(BlockDriverState *bs,
                                                       uint64_t offset,
                                                       int compressed_size,
                                                       uint64_t *host_offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2, entry;
    int l2_index, ret, nb_add;
    int64_t coffset;

    ret = get_cluster_table(bs, offset, &l2, &l2_index);
    if (ret < 0) {
        return ret;
    }
    entry = be64_to_cpu(l2[l2_index]);
    if (entry & L2E_OFFSET_MASK) {
        /* Compressed writes only go to unallocated clusters. */
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
        return -EIO;
    }
    coffset = qcow2_alloc_bytes(bs, compressed_size);
    if (coffset < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
        return coffset;
    }
    nb_add = ((coffset + compressed_size - 1) >> 9) - (coffset >> 9);
    entry = QCOW_OFLAG_COMPRESSED | coffset |
            ((uint64_t)nb_add << s->csize_shift);
    ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                     s->refcount_block_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
        return ret;
    }
    l2[l2_index] = cpu_to_be64(entry);
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, l2);
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);
    s->linked_end = MAX(s->linked_end,
                        ROUND_UP(coffset + compressed_size, s->cluster_size));
    s->compressed_end = MAX(s->compressed_end, coffset + compressed_size);
    *host_offset = coffset;
    return 0;
}

/* ---- discard and zeroing ------------------------------------------------------ */

/*
 * Apply to whole clusters [offset, offset+bytes) within one L2 table:
 * @mode 0 discard (zero flag on v3 unless @full, see below), 1 zero with
 * unmap, 2 zero keeping allocations.
 */
static int coroutine_fn update_l2_range(BlockDriverState *bs,
                                        uint64_t offset, uint64_t nb,
                                        int mode, bool full)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2, *freed;
    int l2_index, ret;
    uint64_t i, nfreed = 0;

    ret = get_cluster_table(bs, offset, &l2, &l2_index);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_cache_set_dependency(bs, s->l2_table_cache,
                                     s->refcount_block_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
        return ret;
    }
    freed = g_new(uint64_t, nb);
    for (i = 0; i < nb; i++) {
        uint64_t old = be64_to_cpu(l2[l2_index + i]);
        QCow2ClusterType t = qcow2_get_cluster_type(bs, old);
        uint64_t new;
        bool unmap;

        if (mode == 0) {
            /*
             * A guest discard must read back as zeroes (v3 can say so) and
             * must not uncover the backing file; only a full discard
             * (truncate, image-level operations) leaves the cluster
             * unallocated.  Nothing to do for clusters that already read
             * as zeroes without a backing file.
             */
            unmap = true;
            if (full) {
                new = 0;
            } else if (bs->backing || t == QCOW2_CLUSTER_NORMAL ||
                       t == QCOW2_CLUSTER_COMPRESSED ||
                       t == QCOW2_CLUSTER_ZERO_ALLOC) {
                new = s->qcow_version >= 3 ? QCOW_OFLAG_ZERO : 0;
            } else {
                new = old;
            }
        } else if (mode == 1 || t == QCOW2_CLUSTER_COMPRESSED) {
            unmap = true;
            new = QCOW_OFLAG_ZERO;
        } else {
            unmap = false;
            new = (t == QCOW2_CLUSTER_NORMAL || t == QCOW2_CLUSTER_ZERO_ALLOC)
                  ? old | QCOW_OFLAG_ZERO : QCOW_OFLAG_ZERO;
        }
        if (old == new) {
            continue;
        }
        l2[l2_index + i] = cpu_to_be64(new);
        if (unmap && t != QCOW2_CLUSTER_UNALLOCATED &&
            t != QCOW2_CLUSTER_ZERO_PLAIN) {
            freed[nfreed++] = old;
        }
    }
    qcow2_cache_entry_mark_dirty(s->l2_table_cache, l2);
    qcow2_cache_put(s->l2_table_cache, (void **)&l2);

    for (i = 0; i < nfreed; i++) {
        QCow2ClusterType t = qcow2_get_cluster_type(bs, freed[i]);
        uint64_t host = freed[i] & L2E_OFFSET_MASK;

        qcow2_free_any_cluster(bs, freed[i]);
        if (s->discard_passthrough && t == QCOW2_CLUSTER_NORMAL) {
            uint64_t rc = 1;

            if (qcow2_get_refcount(bs, host >> s->cluster_bits, &rc) == 0 &&
                rc == 0) {
                /* Space back to the host; the hint may fail harmlessly. */
                bdrv_co_pdiscard(bs->file, host, s->cluster_size);
            }
        }
    }
    g_free(freed);
    return 0;
}

static int coroutine_fn update_range(BlockDriverState *bs, uint64_t offset,
                                     uint64_t bytes, int mode, bool full)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = offset + bytes;
    int ret;

    assert(offset_is_cluster_aligned(s, offset));
    while (offset < end) {
        uint64_t nb = MIN((end - offset) >> s->cluster_bits,
                          (uint64_t)(s->l2_size -
                                     offset_to_l2_index(s, offset)));

        if (nb == 0) {
            break;
        }
        /* Nothing to do where no L2 table exists and none is needed. */
        if (mode == 0 && !(s->qcow_version >= 3 && bs->backing && !full)) {
            uint64_t l1i = offset_to_l1_index(s, offset);

            if (l1i >= s->l1_size || !(s->l1_table[l1i] & L1E_OFFSET_MASK)) {
                offset += nb << s->cluster_bits;
                continue;
            }
        }
        ret = update_l2_range(bs, offset, nb, mode, full);
        if (ret < 0) {
            return ret;
        }
        offset += nb << s->cluster_bits;
    }
    return 0;
}

int coroutine_fn qcow2_cluster_discard(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, bool full_discard)
{
    qcow2_wait_for_allocations(bs, offset, bytes);
    return update_range(bs, offset, bytes, 0, full_discard);
}

int coroutine_fn qcow2_subcluster_zeroize(BlockDriverState *bs,
                                          uint64_t offset, uint64_t bytes,
                                          int flags)
{
    BDRVQcow2State *s = bs->opaque;

    qcow2_wait_for_allocations(bs, offset, bytes);
    if (s->qcow_version < 3) {
        /* No zero flag: only an unallocated range without backing reads
         * as zeroes. */
        if (bs->backing) {
            return -ENOTSUP;
        }
        return update_range(bs, offset, bytes, 0, true);
    }
    return update_range(bs, offset, bytes,
                        (flags & BDRV_REQ_MAY_UNMAP) ? 1 : 2, false);
}
