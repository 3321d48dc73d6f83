/*
 * qcow2 refcounts: table and blocks, cluster allocation, overlap checks.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every function here runs with s->lock held (or during open/close).
 *
 * New refcount blocks are placed at the first cluster of the range they
 * describe: an uncovered range has no references at all, so that cluster
 * is free, and the block then counts itself.  This keeps allocation
 * free of the chicken-and-egg recursion; the cost is that a block may
 * land in the middle of a run being searched, which simply restarts the
 * search.
 */
#include "qemu/osdep.h"
#include "qcow2.h"

/* ---- per-width accessors ------------------------------------------------ */

static uint64_t get_refcount_ro0(const void *a, uint64_t i)
{
    return (((const uint8_t *)a)[i / 8] >> (i % 8)) & 0x1;
}

static void set_refcount_ro0(void *a, uint64_t i, uint64_t v)
{
    uint8_t *p = (uint8_t *)a + i / 8;
    *p = (*p & ~(0x1 << (i % 8))) | ((v & 0x1) << (i % 8));
}

static uint64_t get_refcount_ro1(const void *a, uint64_t i)
{
    return (((const uint8_t *)a)[i / 4] >> (2 * (i % 4))) & 0x3;
}

static void set_refcount_ro1(void *a, uint64_t i, uint64_t v)
{
    uint8_t *p = (uint8_t *)a + i / 4;
    int sh = 2 * (i % 4);
    *p = (*p & ~(0x3 << sh)) | ((v & 0x3) << sh);
}

static uint64_t get_refcount_ro2(const void *a, uint64_t i)
{
    return (((const uint8_t *)a)[i / 2] >> (4 * (i % 2))) & 0xf;
}

static void set_refcount_ro2(void *a, uint64_t i, uint64_t v)
{
    uint8_t *p = (uint8_t *)a + i / 2;
    int sh = 4 * (i % 2);
    *p = (*p & ~(0xf << sh)) | ((v & 0xf) << sh);
}

static uint64_t get_refcount_ro3(const void *a, uint64_t i)
{
    return ((const uint8_t *)a)[i];
}

static void set_refcount_ro3(void *a, uint64_t i, uint64_t v)
{
    ((uint8_t *)a)[i] = v;
}

static uint64_t get_refcount_ro4(const void *a, uint64_t i)
{
    return ldbe16_p((const uint8_t *)a + 2 * i);
}

static void set_refcount_ro4(void *a, uint64_t i, uint64_t v)
{
    stbe16_p((uint8_t *)a + 2 * i, v);
}

static uint64_t get_refcount_ro5(const void *a, uint64_t i)
{
    return ldbe32_p((const uint8_t *)a + 4 * i);
}

static void set_refcount_ro5(void *a, uint64_t i, uint64_t v)
{
    stbe32_p((uint8_t *)a + 4 * i, v);
}

static uint64_t get_refcount_ro6(const void *a, uint64_t i)
{
    return ldbe64_p((const uint8_t *)a + 8 * i);
}

static void set_refcount_ro6(void *a, uint64_t i, uint64_t v)
{
    stbe64_p((uint8_t *)a + 8 * i, v);
}

static Qcow2GetRefcountFunc *const get_refcount_funcs[] = {
    get_refcount_ro0, get_refcount_ro1, get_refcount_ro2, get_refcount_ro3,
    get_refcount_ro4, get_refcount_ro5, get_refcount_ro6,
};

static Qcow2SetRefcountFunc *const set_refcount_funcs[] = {
    set_refcount_ro0, set_refcount_ro1, set_refcount_ro2, set_refcount_ro3,
    set_refcount_ro4, set_refcount_ro5, set_refcount_ro6,
};

Qcow2GetRefcountFunc *qcow2_refcount_get_func(int refcount_order)
{
    assert(refcount_order >= 0 && refcount_order <= 6);
    return get_refcount_funcs[refcount_order];
}

Qcow2SetRefcountFunc *qcow2_refcount_set_func(int refcount_order)
{
    assert(refcount_order >= 0 && refcount_order <= 6);
    return set_refcount_funcs[refcount_order];
}

void qcow2_refcount_set_accessors(BDRVQcow2State *s)
{
    s->get_refcount = qcow2_refcount_get_func(s->refcount_order);
    s->set_refcount = qcow2_refcount_set_func(s->refcount_order);
    s->refcount_bits = 1 << s->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX
                      : (UINT64_C(1) << s->refcount_bits) - 1;
    s->refcount_block_bits = s->cluster_bits - (s->refcount_order - 3);
    s->refcount_block_size = 1 << s->refcount_block_bits;
}

/* ---- table ---------------------------------------------------------------- */

static void update_max_refcount_table_index(BDRVQcow2State *s)
{
    uint32_t i = s->refcount_table_size;

    while (i > 0 && !(s->refcount_table[i - 1] & REFT_OFFSET_MASK)) {
        i--;
    }
    s->max_refcount_table_index = i ? i - 1 : 0;
}

int coroutine_fn qcow2_refcount_init(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bytes = (uint64_t)s->refcount_table_size * 8;
    uint32_t i;
    int ret;

    qcow2_refcount_set_accessors(s);
    s->refcount_table = g_try_malloc0(MAX(bytes, 8));
    if (!s->refcount_table) {
        return -ENOMEM;
    }
    if (bytes) {
        ret = bdrv_co_pread(bs->file, s->refcount_table_offset, bytes,
                            s->refcount_table, 0);
        if (ret < 0) {
            return ret;
        }
        for (i = 0; i < s->refcount_table_size; i++) {
            s->refcount_table[i] = be64_to_cpu(s->refcount_table[i]);
        }
    }
    s->refcount_table_disk_entries = s->refcount_table_size;
    update_max_refcount_table_index(s);
    return 0;
}

void qcow2_refcount_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    g_free(s->refcount_table);
    s->refcount_table = NULL;
}

int coroutine_fn qcow2_write_refcount_table_entries(BlockDriverState *bs,
                                                    uint32_t first,
                                                    uint32_t n)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *buf;
    uint32_t start, end, i;
    int ret;

    /* Write whole 512-byte sectors of the table, never past its end on
     * disk (while it grows, the new table is written in one go later). */
    start = first & ~63u;
    end = MIN(ROUND_UP(first + n, 64), s->refcount_table_disk_entries);
    if (start >= end) {
        return 0;
    }
    buf = g_new(uint64_t, end - start);
    for (i = start; i < end; i++) {
        buf[i - start] = cpu_to_be64(s->refcount_table[i]);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_REFCOUNT_TABLE,
                                        s->refcount_table_offset + start * 8,
                                        (end - start) * 8);
    if (ret >= 0) {
        ret = bdrv_co_pwrite_sync(bs->file,
                                  s->refcount_table_offset + start * 8,
                                  (end - start) * 8, buf, 0);
    }
    g_free(buf);
    return ret < 0 ? ret : 0;
}

int coroutine_fn qcow2_write_table_and_header(BlockDriverState *bs,
                                              int64_t offset,
                                              const void *buf, uint64_t size,
                                              size_t hdr_offset,
                                              const void *hdr,
                                              size_t hdr_size)
{
    int ret;

    if (size) {
        ret = qcow2_pre_write_overlap_check(bs, 0, offset, size);
        if (ret < 0) {
            return ret;
        }
        /* Stable before the header names it, or a crash could leave the
         * header pointing at a half-written table. */
        ret = bdrv_co_pwrite_sync(bs->file, offset, size, buf, 0);
        if (ret < 0) {
            return ret;
        }
    }
    ret = bdrv_co_pwrite_sync(bs->file, hdr_offset, hdr_size, hdr, 0);
    return ret < 0 ? ret : 0;
}

/* ---- lookups ---------------------------------------------------------------- */

static inline uint64_t refblock_offset(BDRVQcow2State *s, uint64_t rt_index)
{
    if (rt_index >= s->refcount_table_size) {
        return 0;
    }
    return s->refcount_table[rt_index] & REFT_OFFSET_MASK;
}

static int coroutine_fn load_refblock(BlockDriverState *bs,
                                      uint64_t rb_offset, void **rb)
{
    BDRVQcow2State *s = bs->opaque;

    if (offset_into_cluster(s, rb_offset)) {
        qcow2_signal_corruption(bs, true, rb_offset, s->cluster_size,
                                "Refblock offset %#" PRIx64
                                " unaligned", rb_offset);
        return -EIO;
    }
    return qcow2_cache_get(bs, s->refcount_block_cache, rb_offset, rb);
}

int coroutine_fn qcow2_get_refcount(BlockDriverState *bs,
                                    int64_t cluster_index,
                                    uint64_t *refcount)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t rb_offset;
    void *rb;
    int ret;

    rb_offset = refblock_offset(s, cluster_index >> s->refcount_block_bits);
    if (!rb_offset) {
        *refcount = 0;
        return 0;
    }
    ret = load_refblock(bs, rb_offset, &rb);
    if (ret < 0) {
        return ret;
    }
    *refcount = s->get_refcount(rb, cluster_index &
                                (s->refcount_block_size - 1));
    qcow2_cache_put(s->refcount_block_cache, &rb);
    return 0;
}

int64_t coroutine_fn qcow2_get_last_allocated_end(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t r;
    int ret;

    for (r = s->max_refcount_table_index; r >= 0; r--) {
        uint64_t rb_offset = refblock_offset(s, r);
        void *rb;
        int64_t j;

        if (!rb_offset) {
            continue;
        }
        ret = load_refblock(bs, rb_offset, &rb);
        if (ret < 0) {
            return ret;
        }
        for (j = s->refcount_block_size - 1; j >= 0; j--) {
            if (s->get_refcount(rb, j)) {
                break;
            }
        }
        qcow2_cache_put(s->refcount_block_cache, &rb);
        if (j >= 0) {
            return ((r << s->refcount_block_bits) + j + 1) << s->cluster_bits;
        }
    }
    return 0;
}

/* ---- growing the refcount structures ---------------------------------------- */

static int coroutine_fn grow_refcount_table(BlockDriverState *bs,
                                            uint64_t min_entries)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t new_size, old_size = s->refcount_table_size;
    uint64_t old_offset = s->refcount_table_offset;
    uint64_t *new_table, *old_table = s->refcount_table;
    uint64_t *buf;
    int64_t new_offset;
    uint8_t hdr[12];
    uint64_t i;
    int overlap_check = s->overlap_check;
    int ret;

    /*
     * Leave room for the table itself and a couple of refcount blocks
     * it may need, so allocating it never needs another growth.
     */
    new_size = ROUND_UP(min_entries + min_entries / 2 + 4, per_cluster);
    if (new_size * 8 > QCOW_MAX_REFTABLE_SIZE) {
        new_size = QCOW_MAX_REFTABLE_SIZE / 8;
        if (new_size < min_entries + 2) {
            return -EFBIG;
        }
    }
    new_table = g_try_new0(uint64_t, new_size);
    if (!new_table) {
        return -ENOMEM;
    }
    memcpy(new_table, old_table, old_size * 8);
    s->refcount_table = new_table;
    s->refcount_table_size = new_size;
    s->refcount_table_generation++;

    /*
     * Until the header names the new table, the in-memory size does not
     * describe the on-disk table at refcount_table_offset: skip that
     * check meanwhile (the old table's clusters are allocated anyway).
     */
    overlap_check = s->overlap_check;
    s->overlap_check &= ~QCOW2_OL_REFCOUNT_TABLE;
    new_offset = qcow2_alloc_clusters(bs, new_size * 8);
    if (new_offset < 0) {
        ret = new_offset;
        goto fail;
    }
    /* The allocation may have added entries: write the final state. */
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto fail;
    }
    buf = g_new(uint64_t, new_size);
    for (i = 0; i < new_size; i++) {
        buf[i] = cpu_to_be64(s->refcount_table[i]);
    }
    stbe64_p(hdr, new_offset);
    stbe32_p(hdr + 8, new_size * 8 / s->cluster_size);
    ret = qcow2_write_table_and_header(bs, new_offset, buf, new_size * 8,
                                       offsetof(QCowHeader,
                                                refcount_table_offset),
                                       hdr, sizeof(hdr));
    g_free(buf);
    if (ret < 0) {
        goto fail;
    }
    qcow2_meta_filter_add(s, new_offset, new_size * 8);
    s->refcount_table_offset = new_offset;
    s->refcount_table_disk_entries = new_size;
    s->overlap_check = overlap_check;
    g_free(old_table);
    update_max_refcount_table_index(s);
    qcow2_free_clusters(bs, old_offset, old_size * 8);
    return 0;

fail:
    /*
     * Keep the bigger in-memory table: entries in it may already point at
     * new blocks.  The on-disk header still names the old table, so at
     * worst clusters leak.
     */
    s->overlap_check = overlap_check;
    g_free(old_table);
    return ret;
}

static int64_t coroutine_fn find_free_clusters(BlockDriverState *bs,
                                               uint64_t n, uint64_t from);

/* Write a new refcount block for range @rt at host cluster @cluster. */
static int coroutine_fn write_new_refblock(BlockDriverState *bs, uint64_t rt,
                                           uint64_t cluster, bool self)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t offset = cluster << s->cluster_bits;
    void *rb;
    int ret;

    if (offset + s->cluster_size > QCOW_MAX_HOST_OFFSET) {
        return -EFBIG;
    }
    if (offset == 0) {
        /* The header lives there: its refcount must have been broken. */
        qcow2_signal_corruption(bs, true, -1, -1, "Preventing invalid "
                                "allocation of refcount block at offset 0");
        return -EIO;
    }
    ret = qcow2_grow_file(bs, offset + s->cluster_size);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_cache_get_empty(bs, s->refcount_block_cache, offset, &rb);
    if (ret < 0) {
        return ret;
    }
    memset(rb, 0, s->cluster_size);
    if (self) {
        s->set_refcount(rb, cluster & (s->refcount_block_size - 1), 1);
    }
    ret = qcow2_pre_write_overlap_check(bs, 0, offset, s->cluster_size);
    if (ret >= 0) {
        /* On disk before the table entry that points to it. */
        ret = bdrv_co_pwrite(bs->file, offset, s->cluster_size, rb, 0);
    }
    qcow2_cache_put(s->refcount_block_cache, &rb);
    if (ret < 0) {
        qcow2_cache_discard(s->refcount_block_cache,
                            qcow2_cache_is_table_offset(
                                s->refcount_block_cache, offset));
        return ret;
    }
    if ((int64_t)(offset + s->cluster_size) > s->zero_start) {
        s->zero_start = offset + s->cluster_size;
    }
    if ((int64_t)(offset + s->cluster_size) > s->alloc_end) {
        s->alloc_end = offset + s->cluster_size;
    }

    s->refcount_table[rt] = offset;
    qcow2_meta_filter_add(s, offset, s->cluster_size);
    ret = qcow2_write_refcount_table_entries(bs, rt, 1);
    if (ret < 0) {
        s->refcount_table[rt] = 0;
        return ret;
    }
    if (rt > s->max_refcount_table_index) {
        s->max_refcount_table_index = rt;
    }
    if (!self) {
        /* Its own range is covered already. */
        ret = qcow2_update_refcount(bs, offset, s->cluster_size, 1, false);
    }
    return ret;
}

/*
 * Make sure range @rt has a refcount block, placing new blocks at free
 * clusters at or after @from (so a run being allocated below @from is not
 * disturbed).  A block landing in another uncovered range describes that
 * range and itself; the search then goes on for @rt.
 */
static int coroutine_fn ensure_refblock(BlockDriverState *bs, uint64_t rt,
                                        uint64_t from)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (rt == 0 && !refblock_offset(s, 0)) {
        qcow2_signal_corruption(bs, true, -1, -1,
                                "Refcount block for the image header "
                                "missing");
        return -EIO;
    }
    while (!refblock_offset(s, rt)) {
        int64_t b;
        uint64_t brt;

        if (rt >= s->refcount_table_size) {
            ret = grow_refcount_table(bs, rt + 1);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        b = find_free_clusters(bs, 1, from);
        if (b < 0) {
            return b;
        }
        brt = b >> s->refcount_block_bits;
        if (brt >= s->refcount_table_size) {
            ret = grow_refcount_table(bs, brt + 1);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        if (brt == rt || !refblock_offset(s, brt)) {
            ret = write_new_refblock(bs, brt, b, true);
        } else {
            ret = write_new_refblock(bs, rt, b, false);
        }
        if (ret < 0) {
            return ret;
        }
        from = b + 1;
    }
    return 0;
}

/* ---- refcount updates --------------------------------------------------------- */

static void discard_cached_table(BDRVQcow2State *s, Qcow2Cache *c,
                                 uint64_t offset)
{
    void *t = qcow2_cache_is_table_offset(c, offset);

    if (t) {
        qcow2_cache_discard(c, t);
    }
}

int coroutine_fn qcow2_update_refcount(BlockDriverState *bs, int64_t offset,
                                       int64_t length, int64_t addend,
                                       bool decrease)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cluster, last, cur_rt = UINT64_MAX;
    void *rb = NULL;
    int ret = 0;

    if (length <= 0) {
        return length < 0 ? -EINVAL : 0;
    }
    if (decrease) {
        /* The references must be gone on disk before the refcount drops. */
        ret = qcow2_cache_set_dependency(bs, s->refcount_block_cache,
                                         s->l2_table_cache);
        if (ret < 0) {
            return ret;
        }
    }

    cluster = offset >> s->cluster_bits;
    last = (offset + length - 1) >> s->cluster_bits;
    for (; cluster <= last; cluster++) {
        uint64_t rt = cluster >> s->refcount_block_bits;
        uint64_t idx = cluster & (s->refcount_block_size - 1);
        uint64_t rc;

        if (rt != cur_rt) {
            uint64_t rb_offset;

            if (rb) {
                qcow2_cache_put(s->refcount_block_cache, &rb);
            }
            rb_offset = refblock_offset(s, rt);
            if (!rb_offset) {
                if (decrease) {
                    qcow2_signal_corruption(bs, true, -1, -1,
                                            "Freeing cluster %#" PRIx64
                                            " without refcount block",
                                            cluster << s->cluster_bits);
                    ret = -EIO;
                    goto out;
                }
                ret = ensure_refblock(bs, rt, last + 1);
                if (ret < 0) {
                    goto out;
                }
                rb_offset = refblock_offset(s, rt);
            }
            ret = load_refblock(bs, rb_offset, &rb);
            if (ret < 0) {
                goto out;
            }
            cur_rt = rt;
        }

        rc = s->get_refcount(rb, idx);
        if (decrease) {
            if (rc < (uint64_t)addend) {
                ret = -EINVAL;
                goto out;
            }
            rc -= addend;
        } else {
            if (rc + addend < rc || rc + addend > s->refcount_max) {
                ret = -ERANGE;
                goto out;
            }
            rc += addend;
        }
        if (rc == 0 && cluster < s->free_cluster_index) {
            s->free_cluster_index = cluster;
        }
        s->set_refcount(rb, idx, rc);
        qcow2_cache_entry_mark_dirty(s->refcount_block_cache, rb);
        if (rc == 0) {
            s->freed_unwritten |= decrease;
            /*
             * The partly filled cluster of compressed writes is free now:
             * its next allocation may be data, which a later compressed
             * write must not write into (QEMU's cursor survives this).
             */
            if (s->free_byte_offset &&
                s->free_byte_offset >> s->cluster_bits == cluster) {
                s->free_byte_offset = 0;
            }
            discard_cached_table(s, s->l2_table_cache,
                                 cluster << s->cluster_bits);
            if ((cluster << s->cluster_bits) != refblock_offset(s, rt)) {
                discard_cached_table(s, s->refcount_block_cache,
                                     cluster << s->cluster_bits);
            }
        }
    }
out:
    if (rb) {
        qcow2_cache_put(s->refcount_block_cache, &rb);
    }
    return ret;
}

int coroutine_fn qcow2_update_cluster_refcount(BlockDriverState *bs,
                                               int64_t cluster_index,
                                               uint64_t addend,
                                               bool decrease)
{
    BDRVQcow2State *s = bs->opaque;

    return qcow2_update_refcount(bs, cluster_index << s->cluster_bits, 1,
                                 addend, decrease);
}

/* ---- allocation ---------------------------------------------------------------- */

/*
 * First run of @n free clusters at or after the hint.  Ranges without a
 * refcount block count as free.  Returns the cluster index or -errno.
 */
static int64_t coroutine_fn find_free_clusters(BlockDriverState *bs,
                                               uint64_t n, uint64_t from)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t i = MAX(s->free_cluster_index, from);
    bool update_hint = from <= s->free_cluster_index;
    uint64_t start = i, count = 0;
    uint64_t max_cluster = QCOW_MAX_HOST_OFFSET >> s->cluster_bits;
    int ret;

    while (count < n) {
        uint64_t rt = i >> s->refcount_block_bits;
        uint64_t rb_offset = refblock_offset(s, rt);
        uint64_t end = (rt + 1) << s->refcount_block_bits;

        if (i > max_cluster) {
            return -EFBIG;
        }
        if (!rb_offset) {
            if (count == 0 && update_hint) {
                s->free_cluster_index = i;
                update_hint = false;
            }
            count += end - i;
            i = end;
            continue;
        }
        void *rb;
        ret = load_refblock(bs, rb_offset, &rb);
        if (ret < 0) {
            return ret;
        }
        for (; i < end && count < n; i++) {
            if (s->get_refcount(rb, i & (s->refcount_block_size - 1))) {
                count = 0;
                start = i + 1;
            } else {
                if (count == 0 && update_hint) {
                    /* Everything before is in use: remember for next time. */
                    s->free_cluster_index = i;
                    update_hint = false;
                }
                count++;
            }
        }
        qcow2_cache_put(s->refcount_block_cache, &rb);
    }
    return start;
}

/*
 * A cluster freed by an L2 update still in the cache is still referenced
 * on disk: if it were reused and written before that table, a power cut
 * would leave the old reference pointing at the new content (another
 * guest cluster's data, or a table).  So write the L2 tables (and, by the
 * cache dependency and flush, the refcounts) before handing out clusters
 * after a free.
 */
static int coroutine_fn qcow2_flush_freed(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!s->freed_unwritten) {
        return 0;
    }
    s->freed_unwritten = false;
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        s->freed_unwritten = true;
    }
    return ret;
}

int64_t coroutine_fn qcow2_alloc_clusters(BlockDriverState *bs, uint64_t size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = size_to_clusters(s, size);
    int64_t start;
    uint64_t rt, rt_last, gen;
    int ret;

    if (n == 0) {
        return -EINVAL;
    }
    ret = qcow2_flush_freed(bs);
    if (ret < 0) {
        return ret;
    }
retry:
    start = find_free_clusters(bs, n, 0);
    if (start < 0) {
        return start;
    }
    gen = s->refcount_table_generation;
    rt_last = (start + n - 1) >> s->refcount_block_bits;
    for (rt = start >> s->refcount_block_bits; rt <= rt_last; rt++) {
        ret = ensure_refblock(bs, rt, start + n);
        if (ret < 0) {
            return ret;
        }
    }
    /* A table growth allocates too and may have taken part of the run. */
    if (gen != s->refcount_table_generation) {
        goto retry;
    }
    if (((start + n) << s->cluster_bits) > QCOW_MAX_HOST_OFFSET) {
        return -EFBIG;
    }
    ret = qcow2_grow_file(bs, (start + n) << s->cluster_bits);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_update_refcount(bs, start << s->cluster_bits,
                               n << s->cluster_bits, 1, false);
    if (ret < 0) {
        return ret;
    }
    /*
     * The search hint moves past the new run even over holes it skipped,
     * as the reference allocator's does: later allocations then follow
     * this one instead of filling the holes, which keeps layouts equal.
     */
    s->free_cluster_index = MAX(s->free_cluster_index, (uint64_t)start + n);
    if ((int64_t)((start + n) << s->cluster_bits) > s->alloc_end) {
        s->alloc_end = (start + n) << s->cluster_bits;
    }
    /* Whatever goes there may be freed and reused: no longer known zero. */
    if ((int64_t)((start + n) << s->cluster_bits) > s->zero_start) {
        s->zero_start = (start + n) << s->cluster_bits;
    }
    return start << s->cluster_bits;
}

int64_t coroutine_fn qcow2_alloc_clusters_at(BlockDriverState *bs,
                                             uint64_t offset,
                                             int64_t nb_clusters)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cluster = offset >> s->cluster_bits;
    int64_t i;
    int ret;

    ret = qcow2_flush_freed(bs);
    if (ret < 0) {
        return ret;
    }
    for (i = 0; i < nb_clusters; i++) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, cluster + i, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc) {
            break;
        }
    }
    if (i == 0) {
        return 0;
    }
    ret = qcow2_grow_file(bs, offset + (i << s->cluster_bits));
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_update_refcount(bs, offset, i << s->cluster_bits, 1, false);
    if (ret < 0) {
        return ret;
    }
    if ((int64_t)(offset + (i << s->cluster_bits)) > s->alloc_end) {
        s->alloc_end = offset + (i << s->cluster_bits);
    }
    if ((int64_t)(offset + (i << s->cluster_bits)) > s->zero_start) {
        s->zero_start = offset + (i << s->cluster_bits);
    }
    return i;
}

int64_t coroutine_fn qcow2_alloc_bytes(BlockDriverState *bs, int size)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t offset = s->free_byte_offset;
    int ret;

    assert(size > 0 && size <= s->cluster_size);
    if (offset) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, offset >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        /* Freed meanwhile (may be reused) or saturated: start afresh. */
        if (rc == 0 || rc == s->refcount_max ||
            s->cluster_size - offset_into_cluster(s, offset) < size) {
            offset = 0;
        }
    }
    if (!offset) {
        offset = qcow2_alloc_clusters(bs, s->cluster_size);
        if (offset < 0) {
            return offset;
        }
    } else {
        ret = qcow2_update_cluster_refcount(bs, offset >> s->cluster_bits,
                                            1, false);
        if (ret < 0) {
            return ret;
        }
    }
    s->free_byte_offset = offset + size;
    if (!offset_into_cluster(s, s->free_byte_offset)) {
        s->free_byte_offset = 0;
    }
    return offset;
}

void coroutine_fn qcow2_free_clusters(BlockDriverState *bs, int64_t offset,
                                      int64_t size)
{
    int ret = qcow2_update_refcount(bs, offset, size, 1, true);

    if (ret < 0) {
        /* Only a leak: the check can reclaim the space. */
        warn_report("qcow2: freeing clusters at %#" PRIx64 " failed: %s",
                    offset, strerror(-ret));
    }
}

void coroutine_fn qcow2_free_any_cluster(BlockDriverState *bs,
                                         uint64_t l2_entry)
{
    BDRVQcow2State *s = bs->opaque;

    switch (qcow2_get_cluster_type(bs, l2_entry)) {
    case QCOW2_CLUSTER_COMPRESSED: {
        uint64_t coffset;
        int csize;

        qcow2_parse_compressed_l2_entry(s, l2_entry, &coffset, &csize);
        qcow2_free_clusters(bs, coffset & ~511ULL,
                            ROUND_UP(coffset + csize, 512) -
                            (coffset & ~511ULL));
        break;
    }
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        if (offset_into_cluster(s, l2_entry & L2E_OFFSET_MASK)) {
            qcow2_signal_corruption(bs, false, -1, -1,
                                    "Cannot free unaligned cluster %#"
                                    PRIx64, l2_entry & L2E_OFFSET_MASK);
        } else {
            qcow2_free_clusters(bs, l2_entry & L2E_OFFSET_MASK,
                                s->cluster_size);
        }
        break;
    default:
        break;
    }
}

/* ---- overlap checks ------------------------------------------------------------ */

/*
 * Offsets come straight from (possibly corrupted) metadata and may lie
 * near 2^64, so compare distances instead of computing ends.
 */
static inline bool ranges_overlap(uint64_t a, uint64_t alen,
                                  uint64_t b, uint64_t blen)
{
    return a >= b ? a - b < blen : b - a < alen;
}

int qcow2_check_metadata_overlap(BlockDriverState *bs, int ign,
                                 int64_t offset, int64_t size)
{
    BDRVQcow2State *s = bs->opaque;
    int chk = s->overlap_check & ~ign;
    uint32_t i;

    if (size <= 0) {
        return 0;
    }
    if ((chk & QCOW2_OL_MAIN_HEADER) && offset < s->cluster_size) {
        return QCOW2_OL_MAIN_HEADER;
    }
    /* Work on cluster boundaries: metadata owns whole clusters. */
    size = ROUND_UP(offset_into_cluster(s, offset) + size, s->cluster_size);
    offset = start_of_cluster(s, offset);

    if ((chk & QCOW2_OL_ACTIVE_L1) && s->l1_size &&
        ranges_overlap(offset, size, s->l1_table_offset,
                       (int64_t)s->l1_size * 8)) {
        return QCOW2_OL_ACTIVE_L1;
    }
    if ((chk & QCOW2_OL_REFCOUNT_TABLE) && s->refcount_table_size &&
        ranges_overlap(offset, size, s->refcount_table_offset,
                       (int64_t)s->refcount_table_size * 8)) {
        return QCOW2_OL_REFCOUNT_TABLE;
    }
    if ((chk & QCOW2_OL_SNAPSHOT_TABLE) && s->snapshots_size &&
        ranges_overlap(offset, size, s->snapshots_offset,
                       s->snapshots_size)) {
        return QCOW2_OL_SNAPSHOT_TABLE;
    }
    if ((chk & QCOW2_OL_INACTIVE_L1) && s->snapshots) {
        for (i = 0; i < s->nb_snapshots; i++) {
            if (s->snapshots[i].l1_size &&
                ranges_overlap(offset, size, s->snapshots[i].l1_table_offset,
                               (int64_t)s->snapshots[i].l1_size * 8)) {
                return QCOW2_OL_INACTIVE_L1;
            }
        }
    }
    if ((chk & QCOW2_OL_BITMAP_DIRECTORY) && s->has_bitmaps_ext) {
        uint64_t bo = be64_to_cpu(s->bitmaps_ext.bitmap_directory_offset);
        uint64_t bl = be64_to_cpu(s->bitmaps_ext.bitmap_directory_size);

        if (bl && ranges_overlap(offset, size, bo, bl)) {
            return QCOW2_OL_BITMAP_DIRECTORY;
        }
    }
    if ((chk & QCOW2_OL_ZONED_META) && s->has_zoned_ext &&
        s->zoned_ext.zonedmeta_size &&
        ranges_overlap(offset, size, s->zoned_ext.zonedmeta_offset,
                       s->zoned_ext.zonedmeta_size)) {
        return QCOW2_OL_ZONED_META;
    }
    if ((chk & QCOW2_OL_ACTIVE_L2) && s->l1_table) {
        for (i = 0; i < s->l1_size; i++) {
            uint64_t l2 = s->l1_table[i] & L1E_OFFSET_MASK;

            if (l2 && ranges_overlap(offset, size, l2, s->cluster_size)) {
                return QCOW2_OL_ACTIVE_L2;
            }
        }
    }
    if ((chk & QCOW2_OL_REFCOUNT_BLOCK) && s->refcount_table) {
        for (i = 0; i <= s->max_refcount_table_index &&
                    i < s->refcount_table_size; i++) {
            uint64_t rb = s->refcount_table[i] & REFT_OFFSET_MASK;

            if (rb && ranges_overlap(offset, size, rb, s->cluster_size)) {
                return QCOW2_OL_REFCOUNT_BLOCK;
            }
        }
    }
    return 0;
}

static const char *metadata_ol_name(int ol)
{
    switch (ol) {
    case QCOW2_OL_MAIN_HEADER:      return "qcow2_header";
    case QCOW2_OL_ACTIVE_L1:        return "active L1 table";
    case QCOW2_OL_ACTIVE_L2:        return "active L2 table";
    case QCOW2_OL_REFCOUNT_TABLE:   return "refcount table";
    case QCOW2_OL_REFCOUNT_BLOCK:   return "refcount block";
    case QCOW2_OL_SNAPSHOT_TABLE:   return "snapshot table";
    case QCOW2_OL_INACTIVE_L1:      return "inactive L1 table";
    case QCOW2_OL_INACTIVE_L2:      return "inactive L2 table";
    case QCOW2_OL_BITMAP_DIRECTORY: return "bitmap directory";
    case QCOW2_OL_ZONED_META:       return "zoned write-pointer region";
    default:                        return "metadata";
    }
}

int qcow2_pre_write_overlap_check(BlockDriverState *bs, int ign,
                                  int64_t offset, int64_t size)
{
    int ret = qcow2_check_metadata_overlap(bs, ign, offset, size);

    if (ret) {
        qcow2_signal_corruption(bs, true, offset, size,
                                "Preventing invalid write on metadata "
                                "(overlaps with %s)", metadata_ol_name(ret));
        return -EIO;
    }
    return 0;
}

/* ---- preallocation detection ------------------------------------------------------ */

int coroutine_fn qcow2_detect_metadata_preallocation(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t file_len, real, threshold, end, i, count = 0;

    file_len = bdrv_co_getlength(bs->file->bs);
    if (file_len < 0) {
        return file_len;
    }
    real = bdrv_co_get_allocated_file_size(bs->file->bs);
    if (real < 0) {
        return real;
    }
    /* Same margin as the reference, so that map output agrees. */
    real /= s->cluster_size;
    threshold = MAX(real * 10 / 9, real + 2);
    end = size_to_clusters(s, file_len);
    for (i = 0; i < end && count < threshold; i++) {
        uint64_t rc;
        int ret = qcow2_get_refcount(bs, i, &rc);

        if (ret < 0) {
            return ret;
        }
        count += rc != 0;
    }
    return count >= threshold;
}
