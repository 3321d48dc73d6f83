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

/*
 * Refcount structure size for @clusters clusters of data and other
 * metadata: the fixed point where the refcount blocks and table also
 * count themselves.  With @generous, room for growing the table by half
 * is added once, as the allocator does when it must grow the table.
 */
int64_t qcow2_refcount_metadata_size(int64_t clusters, uint64_t cluster_size,
                                     int refcount_order, bool generous,
                                     uint64_t *refblock_count)
{
    int64_t per_table_cluster = cluster_size / 8;
    int64_t per_block = cluster_size * 8 / (1 << refcount_order);
    int64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = DIV_ROUND_UP(clusters + table + blocks, per_block);
        table = DIV_ROUND_UP(blocks, per_table_cluster);
        n = clusters + blocks + table;
        if (n == last && generous) {
            clusters += DIV_ROUND_UP(table, 2);
            n = 0;
            generous = false;
        }
    } while (n != last);

    if (refblock_count) {
        *refblock_count = blocks;
    }
    return (blocks + table) * cluster_size;
}

/* ---- growing the refcount structures ---------------------------------------- */

/*
 * Lay out refcount structures at @start that cover all clusters below it
 * plus @additional more behind the new structures: the missing refcount
 * blocks, then a new refcount table.  They get refcount 1, the old table
 * is freed.  Unless @exact, the table gets room to grow by half.  A
 * non-zero @new_offset is a refcount block already written for range
 * @new_index, which the new table is the first to name.  This is where
 * QEMU puts grown refcount structures, so layouts stay the same.
 * Returns the end of the new structures or -errno.
 */
int64_t coroutine_fn qcow2_refcount_area(BlockDriverState *bs, uint64_t start,
                                         uint64_t additional, bool exact,
                                         uint64_t new_index,
                                         uint64_t new_offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t area_index = (start >> s->cluster_bits) >> s->refcount_block_bits;
    uint64_t total_blocks, table_size, extra = 0, i;
    uint64_t table_offset, end_offset, block_offset;
    uint64_t old_offset = s->refcount_table_offset;
    uint64_t old_entries = s->refcount_table_disk_entries;
    uint64_t *table, *buf = NULL;
    uint8_t hdr[12];
    int ret;

    qcow2_refcount_metadata_size((start >> s->cluster_bits) + additional,
                                 s->cluster_size, s->refcount_order, !exact,
                                 &total_blocks);
    if (total_blocks * 8 > QCOW_MAX_REFTABLE_SIZE) {
        return -EFBIG;
    }
    table_size = exact ? total_blocks
                       : total_blocks + DIV_ROUND_UP(total_blocks, 2);
    table_size = ROUND_UP(table_size, per_cluster);
    if (table_size * 8 > QCOW_MAX_REFTABLE_SIZE ||
        (new_offset && new_index >= table_size)) {
        return -EFBIG;
    }
    table = g_new0(uint64_t, table_size);
    for (i = 0; i < MIN(table_size, (uint64_t)s->max_refcount_table_index + 1);
         i++) {
        table[i] = s->refcount_table[i] & REFT_OFFSET_MASK;
    }
    if (new_offset) {
        table[new_index] = new_offset;
    }
    for (i = area_index; i < total_blocks; i++) {
        extra += !table[i];
    }
    table_offset = start + extra * s->cluster_size;
    end_offset = table_offset + table_size * 8;
    if (end_offset > QCOW_MAX_HOST_OFFSET) {
        ret = -EFBIG;
        goto out;
    }
    ret = qcow2_grow_file(bs, end_offset);
    if (ret < 0) {
        goto out;
    }

    block_offset = start;
    for (i = area_index; i < total_blocks; i++) {
        uint64_t first = (i << s->refcount_block_bits) << s->cluster_bits;
        void *rb;

        if (table[i]) {
            ret = qcow2_cache_get(bs, s->refcount_block_cache, table[i], &rb);
        } else {
            ret = qcow2_cache_get_empty(bs, s->refcount_block_cache,
                                        block_offset, &rb);
            if (ret >= 0) {
                memset(rb, 0, s->cluster_size);
                table[i] = block_offset;
                qcow2_meta_filter_add(s, block_offset, s->cluster_size);
                block_offset += s->cluster_size;
            }
        }
        if (ret < 0) {
            goto out;
        }
        if (first < end_offset) {
            uint64_t j = first < start ? (start - first) >> s->cluster_bits
                                       : 0;
            uint64_t end_j = MIN((end_offset - first) >> s->cluster_bits,
                                 (uint64_t)s->refcount_block_size);

            for (; j < end_j; j++) {
                s->set_refcount(rb, j, 1);
            }
        }
        qcow2_cache_entry_mark_dirty(s->refcount_block_cache, rb);
        qcow2_cache_put(s->refcount_block_cache, &rb);
    }
    assert(block_offset == table_offset);
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto out;
    }

    buf = g_new(uint64_t, table_size);
    for (i = 0; i < table_size; i++) {
        buf[i] = cpu_to_be64(table[i]);
    }
    stbe64_p(hdr, table_offset);
    stbe32_p(hdr + 8, table_size / per_cluster);
    ret = qcow2_write_table_and_header(bs, table_offset, buf, table_size * 8,
                                       offsetof(QCowHeader,
                                                refcount_table_offset),
                                       hdr, sizeof(hdr));
    if (ret < 0) {
        goto out;
    }

    g_free(s->refcount_table);
    s->refcount_table = table;
    table = NULL;
    s->refcount_table_offset = table_offset;
    s->refcount_table_size = table_size;
    s->refcount_table_disk_entries = table_size;
    s->refcount_table_generation++;
    s->max_refcount_table_index = table_size - 1;
    while (s->max_refcount_table_index > 0 &&
           !s->refcount_table[s->max_refcount_table_index]) {
        s->max_refcount_table_index--;
    }
    qcow2_meta_filter_add(s, table_offset, table_size * 8);
    s->zero_start = MAX(s->zero_start, (int64_t)end_offset);
    s->alloc_end = MAX(s->alloc_end, (int64_t)end_offset);
    qcow2_free_clusters(bs, old_offset, old_entries * 8);
    ret = 0;
out:
    g_free(buf);
    g_free(table);
    return ret < 0 ? ret : (int64_t)end_offset;
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

    qcow2_meta_filter_add(s, offset, s->cluster_size);
    if (rt >= s->refcount_table_size) {
        /* The caller grows the table to name it. */
        return self ? 0 : qcow2_update_refcount(bs, offset, s->cluster_size,
                                                1, false);
    }
    s->refcount_table[rt] = offset;
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

        b = find_free_clusters(bs, 1, from);
        if (b < 0) {
            return b;
        }
        brt = b >> s->refcount_block_bits;
        if (brt != rt && !refblock_offset(s, brt)) {
            /*
             * As QEMU's allocator does: the block that will count @b is
             * made first, behind @b; the next round finds @b again for
             * @rt.  Same placement, so the same layout.
             */
            ret = ensure_refblock(bs, brt, b + 1);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        ret = write_new_refblock(bs, rt, b, brt == rt);
        if (ret >= 0 && rt >= s->refcount_table_size) {
            /*
             * No entry for it: new blocks and a new table go behind the
             * ranges in use, and the new table names the block at @b.
             */
            uint64_t used = MAX(rt, brt) + 1;
            int64_t end = qcow2_refcount_area(bs, (used <<
                                                   s->refcount_block_bits) <<
                                                  s->cluster_bits, 0, false,
                                              rt, b << s->cluster_bits);
            ret = end < 0 ? end : 0;
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

/* ---- changing the refcount width ------------------------------------------ */

/*
 * Rewrite the refcount structures with entries of 2^@order bits.  The
 * new blocks and table go after everything in use; they describe the
 * current refcounts plus themselves, then the header is switched over
 * and the old structures are freed.
 */
int coroutine_fn qcow2_change_refcount_order(BlockDriverState *bs, int order,
                                             Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2GetRefcountFunc *new_get = qcow2_refcount_get_func(order);
    Qcow2SetRefcountFunc *new_set = qcow2_refcount_set_func(order);
    uint64_t new_max = order == 6 ? UINT64_MAX : (UINT64_C(1) << (1 << order)) - 1;
    int64_t per_block = (int64_t)s->cluster_size * 8 >> order;
    uint64_t *refs = NULL, *table = NULL, *old_table;
    uint64_t old_table_offset = s->refcount_table_offset;
    uint32_t old_table_size = s->refcount_table_size, i;
    int64_t nb, start, blocks = 0, tclusters = 0, end, ci;
    uint8_t *rb = NULL;
    int ret;

    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to flush the image");
        return ret;
    }
    /* Every cluster in use lies inside the file. */
    nb = bdrv_co_getlength(bs->file->bs);
    if (nb < 0) {
        error_setg_errno(errp, -nb, "Failed to get the image file length");
        return nb;
    }
    nb = MAX(size_to_clusters(s, nb), size_to_clusters(s, s->file_size));
    nb = MIN(nb, (int64_t)s->refcount_table_size * s->refcount_block_size);
    refs = g_try_new0(uint64_t, MAX(nb, 1));
    if (!refs) {
        error_setg(errp, "Not enough memory for the refcount array");
        return -ENOMEM;
    }
    start = 0;
    for (ci = 0; ci < nb; ci++) {
        ret = qcow2_get_refcount(bs, ci, &refs[ci]);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read the refcounts");
            goto out;
        }
        if (refs[ci] > new_max) {
            error_setg(errp, "Cannot decrease refcount entry width to %i bits: "
                       "Cluster at offset %#" PRIx64 " has a refcount of %"
                       PRIu64, 1 << order, ci << s->cluster_bits, refs[ci]);
            ret = -EINVAL;
            goto out;
        }
        if (refs[ci]) {
            start = ci + 1;
        }
    }
    start = MAX(start, (int64_t)size_to_clusters(s, s->file_size));

    /* Fixed point: the new structures must describe themselves. */
    for (;;) {
        int64_t b = DIV_ROUND_UP(start + blocks + tclusters, per_block);
        int64_t t = DIV_ROUND_UP(b * 8, s->cluster_size);
        if (b == blocks && t == tclusters) {
            break;
        }
        blocks = b;
        tclusters = t;
    }
    end = start + blocks + tclusters;

    table = g_new0(uint64_t, tclusters * s->cluster_size / 8);
    rb = qemu_blockalign(bs->file->bs, s->cluster_size);
    for (i = 0; i < blocks; i++) {
        int64_t j;

        memset(rb, 0, s->cluster_size);
        for (j = 0; j < per_block; j++) {
            ci = i * per_block + j;
            if (ci >= start && ci < end) {
                new_set(rb, j, 1);
            } else if (ci < nb) {
                new_set(rb, j, refs[ci]);
            }
        }
        assert(new_get(rb, 0) <= new_max);
        ret = bdrv_co_pwrite(bs->file, (start + i) << s->cluster_bits,
                             s->cluster_size, rb, 0);
        if (ret < 0) {
            goto write_fail;
        }
        table[i] = cpu_to_be64((start + i) << s->cluster_bits);
    }
    ret = bdrv_co_pwrite(bs->file, (start + blocks) << s->cluster_bits,
                         tclusters * s->cluster_size, table, 0);
    if (ret < 0) {
        goto write_fail;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        goto write_fail;
    }

    /* Switch: drop cached blocks of the old width first. */
    ret = qcow2_cache_empty(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto write_fail;
    }
    old_table = s->refcount_table;
    s->refcount_table = g_new0(uint64_t, tclusters * s->cluster_size / 8);
    for (i = 0; i < blocks; i++) {
        s->refcount_table[i] = (start + i) << s->cluster_bits;
    }
    s->refcount_table_offset = (start + blocks) << s->cluster_bits;
    s->refcount_table_size = tclusters * s->cluster_size / 8;
    s->max_refcount_table_index = blocks - 1;
    s->refcount_order = order;
    qcow2_refcount_set_accessors(s);
    s->free_cluster_index = 0;
    s->file_size = MAX(s->file_size, end << s->cluster_bits);
    /* We wrote up to @end: nothing below it may be assumed zero. */
    s->zero_start = MAX(s->zero_start, end << s->cluster_bits);
    s->alloc_end = MAX(s->alloc_end, end << s->cluster_bits);
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        g_free(old_table);
        error_setg_errno(errp, -ret, "Failed to update the image header");
        goto out;
    }

    /* The old blocks and table are unused now. */
    for (i = 0; i < old_table_size; i++) {
        uint64_t off = old_table[i] & REFT_OFFSET_MASK;
        if (off) {
            qcow2_update_refcount(bs, off, s->cluster_size, 1, true);
        }
    }
    qcow2_update_refcount(bs, old_table_offset, (int64_t)old_table_size * 8,
                          1, true);
    g_free(old_table);
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to free the old refcount "
                         "structures");
    }
    goto out;

write_fail:
    error_setg_errno(errp, -ret, "Failed to write the new refcount "
                     "structures");
out:
    qemu_vfree(rb);
    g_free(table);
    g_free(refs);
    return ret;
}
