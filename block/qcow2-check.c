/*
 * qcow2 consistency check and repair ("qemu-img check").
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The check rebuilds the reference count every host cluster should have
 * from the metadata that points at it (header, L1/L2 tables, compressed
 * ranges, snapshot tables, refcount structures, bitmap directory, zoned
 * metadata) and compares it with what the refcount blocks store.  Stored
 * values are read straight from the file after flushing the caches, so
 * a corrupt refcount structure is reported rather than tripping the
 * driver's runtime corruption guard.  Messages and their order follow
 * the reference tool so outputs can be compared line by line.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

#define CHECK_FRAG_INFO 2

typedef struct Qcow2CheckState {
    BlockDriverState *bs;
    BDRVQcow2State *s;
    uint64_t *refs;          /* computed reference count per cluster */
    int64_t nb_clusters;     /* entries in refs */
    int64_t file_len;
} Qcow2CheckState;

static int qcow2_check_grow(Qcow2CheckState *c, int64_t n)
{
    if (n <= c->nb_clusters) {
        return 0;
    }
    c->refs = g_try_renew(uint64_t, c->refs, n);
    if (!c->refs) {
        return -ENOMEM;
    }
    memset(c->refs + c->nb_clusters, 0, (n - c->nb_clusters) * 8);
    c->nb_clusters = n;
    return 0;
}

/* Count one reference to every cluster of [offset, +size). */
static int qcow2_check_inc(Qcow2CheckState *c, BdrvCheckResult *res,
                           int64_t offset, int64_t size)
{
    BDRVQcow2State *s = c->s;
    int64_t cl, last;

    if (size <= 0) {
        return 0;
    }
    /* The last cluster may be partly beyond the end, but not more. */
    if (offset < 0 || size > INT64_MAX - offset ||
        offset + size - c->file_len >= s->cluster_size) {
        fprintf(stderr, "ERROR: counting reference for region exceeding the "
                "end of the file by one cluster or more: offset 0x%" PRIx64
                " size 0x%" PRIx64 "\n", offset, size);
        res->corruptions++;
        return 0;
    }
    last = (offset + size - 1) >> s->cluster_bits;
    for (cl = offset >> s->cluster_bits; cl <= last; cl++) {
        if (qcow2_check_grow(c, cl + 1) < 0) {
            res->check_errors++;
            return -ENOMEM;
        }
        if (c->refs[cl] == s->refcount_max) {
            fprintf(stderr, "ERROR: overflow cluster offset=0x%" PRIx64 "\n",
                    cl << s->cluster_bits);
            fprintf(stderr, "Use qemu-img amend to increase the refcount entry "
                    "width or qemu-img convert to create a clean copy if the "
                    "image cannot be opened for writing\n");
            res->corruptions++;
            continue;
        }
        c->refs[cl]++;
    }
    return 0;
}

static int coroutine_fn qcow2_check_l2(Qcow2CheckState *c,
                                       BdrvCheckResult *res,
                                       uint64_t l2_offset, int flags)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = c->s;
    uint64_t *l2 = g_malloc(s->cluster_size);
    uint64_t next_contiguous = 0;
    int i, ret;

    ret = bdrv_co_pread(bs->file, l2_offset, s->cluster_size, l2, 0);
    if (ret < 0) {
        fprintf(stderr, "ERROR: I/O error in check_refcounts_l2\n");
        res->check_errors++;
        goto out;
    }

    for (i = 0; i < s->l2_size; i++) {
        uint64_t e = be64_to_cpu(l2[i]);
        QCow2ClusterType type = qcow2_get_cluster_type(bs, e);

        if (type != QCOW2_CLUSTER_COMPRESSED &&
            (e & L2E_STD_RESERVED_MASK)) {
            fprintf(stderr, "ERROR found l2 entry with reserved bits set: %"
                    PRIx64 "\n", e);
            res->corruptions++;
        }

        switch (type) {
        case QCOW2_CLUSTER_COMPRESSED: {
            uint64_t coffset;
            int csize;

            if (e & QCOW_OFLAG_COPIED) {
                fprintf(stderr, "ERROR: coffset=0x%" PRIx64 ": copied flag "
                        "must never be set for compressed clusters\n",
                        e & s->cluster_offset_mask);
                e &= ~QCOW_OFLAG_COPIED;
                res->corruptions++;
            }
            qcow2_parse_compressed_l2_entry(s, e, &coffset, &csize);
            ret = qcow2_check_inc(c, res, coffset, csize);
            if (ret < 0) {
                goto out;
            }
            if (flags & CHECK_FRAG_INFO) {
                res->bfi.allocated_clusters++;
                res->bfi.compressed_clusters++;
                /* Compressed clusters never sit contiguously in sectors. */
                res->bfi.fragmented_clusters++;
            }
            break;
        }
        case QCOW2_CLUSTER_ZERO_ALLOC:
        case QCOW2_CLUSTER_NORMAL: {
            uint64_t off = e & L2E_OFFSET_MASK;

            if (offset_into_cluster(s, off)) {
                res->corruptions++;
                if (type == QCOW2_CLUSTER_ZERO_ALLOC) {
                    fprintf(stderr, "%s offset=%" PRIx64 ": Preallocated "
                            "cluster is not properly aligned; L2 entry "
                            "corrupted.\n", "ERROR", off);
                } else {
                    fprintf(stderr, "ERROR offset=%" PRIx64 ": Data cluster "
                            "is not properly aligned; L2 entry corrupted.\n",
                            off);
                }
            }
            if (flags & CHECK_FRAG_INFO) {
                res->bfi.allocated_clusters++;
                if (next_contiguous && off != next_contiguous) {
                    res->bfi.fragmented_clusters++;
                }
                next_contiguous = off + s->cluster_size;
            }
            ret = qcow2_check_inc(c, res, off, s->cluster_size);
            if (ret < 0) {
                goto out;
            }
            break;
        }
        default:
            break;
        }
    }
    ret = 0;
out:
    g_free(l2);
    return ret;
}

static int coroutine_fn qcow2_check_l1(Qcow2CheckState *c,
                                       BdrvCheckResult *res,
                                       uint64_t l1_offset, uint32_t l1_size,
                                       int flags)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = c->s;
    uint64_t *l1 = NULL;
    uint32_t i;
    int ret;

    ret = qcow2_check_inc(c, res, l1_offset, (int64_t)l1_size * 8);
    if (ret < 0 || !l1_size) {
        return ret;
    }
    l1 = g_try_new(uint64_t, l1_size);
    if (!l1) {
        res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, l1_offset, (int64_t)l1_size * 8, l1, 0);
    if (ret < 0) {
        fprintf(stderr, "ERROR: I/O error in check_refcounts_l1\n");
        res->check_errors++;
        goto out;
    }
    for (i = 0; i < l1_size; i++) {
        uint64_t e = be64_to_cpu(l1[i]);
        uint64_t l2_offset;

        if (!e) {
            continue;
        }
        if (e & L1E_RESERVED_MASK) {
            fprintf(stderr, "ERROR found L1 entry with reserved bits set: %"
                    PRIx64 "\n", e);
            res->corruptions++;
        }
        l2_offset = e & L1E_OFFSET_MASK;
        ret = qcow2_check_inc(c, res, l2_offset, s->cluster_size);
        if (ret < 0) {
            goto out;
        }
        if (offset_into_cluster(s, l2_offset)) {
            fprintf(stderr, "ERROR l2_offset=%" PRIx64 ": Table is not "
                    "cluster aligned; L1 entry corrupted\n", l2_offset);
            res->corruptions++;
        }
        ret = qcow2_check_l2(c, res, l2_offset, flags);
        if (ret < 0) {
            goto out;
        }
    }
    ret = 0;
out:
    g_free(l1);
    return ret;
}

/* Bitmap directory, bitmap tables and their data clusters. */
static int coroutine_fn qcow2_check_bitmaps(Qcow2CheckState *c,
                                            BdrvCheckResult *res)
{
    BDRVQcow2State *s = c->s;
    uint64_t dir_off, dir_size, pos = 0;
    uint8_t *dir;
    int ret;

    if (!s->has_bitmaps_ext) {
        return 0;
    }
    dir_off = be64_to_cpu(s->bitmaps_ext.bitmap_directory_offset);
    dir_size = be64_to_cpu(s->bitmaps_ext.bitmap_directory_size);
    if (!dir_size || dir_size > 64 * MiB) {
        return 0;
    }
    ret = qcow2_check_inc(c, res, dir_off, dir_size);
    if (ret < 0) {
        return ret;
    }
    dir = g_malloc(dir_size);
    ret = bdrv_co_pread(c->bs->file, dir_off, dir_size, dir, 0);
    if (ret < 0) {
        res->check_errors++;
        goto out;
    }
    while (pos + 24 <= dir_size) {
        uint64_t table_off = ldbe64_p(dir + pos);
        uint32_t table_size = ldbe32_p(dir + pos + 8);
        uint16_t name_size = ldbe16_p(dir + pos + 18);
        uint32_t extra = ldbe32_p(dir + pos + 20);
        uint64_t *table;
        uint32_t i;

        ret = qcow2_check_inc(c, res, table_off, (int64_t)table_size * 8);
        if (ret < 0) {
            goto out;
        }
        table = g_try_new(uint64_t, MAX(table_size, 1));
        if (!table) {
            res->check_errors++;
            ret = -ENOMEM;
            goto out;
        }
        ret = bdrv_co_pread(c->bs->file, table_off, (int64_t)table_size * 8,
                            table, 0);
        if (ret < 0) {
            g_free(table);
            res->check_errors++;
            goto out;
        }
        for (i = 0; i < table_size; i++) {
            uint64_t off = be64_to_cpu(table[i]) & L2E_OFFSET_MASK;
            if (off) {
                ret = qcow2_check_inc(c, res, off, s->cluster_size);
                if (ret < 0) {
                    g_free(table);
                    goto out;
                }
            }
        }
        g_free(table);
        pos += ROUND_UP(24 + extra + name_size, 8);
    }
    ret = 0;
out:
    g_free(dir);
    return ret;
}

static int coroutine_fn qcow2_check_refblocks(Qcow2CheckState *c,
                                              BdrvCheckResult *res,
                                              BdrvCheckMode fix, bool *rebuild)
{
    BDRVQcow2State *s = c->s;
    uint32_t i;
    int ret;

    for (i = 0; i < s->refcount_table_size; i++) {
        uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;
        int64_t cl = off >> s->cluster_bits;

        if (s->refcount_table[i] & REFT_RESERVED_MASK) {
            fprintf(stderr, "ERROR refcount table entry %" PRIu32 " has "
                    "reserved bits set\n", i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (offset_into_cluster(s, off)) {
            fprintf(stderr, "ERROR refcount block %" PRIu32 " is not cluster "
                    "aligned; refcount table entry corrupted\n", i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (off && (off >= (uint64_t)c->file_len)) {
            res->corruptions++;
            fprintf(stderr, "%s refcount block %" PRIu32 " is outside image\n",
                    fix & BDRV_FIX_ERRORS ? "Repairing" : "ERROR", i);
            if (fix & BDRV_FIX_ERRORS) {
                /* Give the block a home: grow the file up to it. */
                Error *err = NULL;
                ret = bdrv_co_truncate(c->bs->file, off + s->cluster_size,
                                       false, PREALLOC_MODE_OFF, 0, &err);
                if (ret < 0) {
                    *rebuild = true;
                    fprintf(stderr, "ERROR could not resize image: %s\n",
                            error_get_pretty(err));
                    error_free(err);
                    continue;
                }
                c->file_len = off + s->cluster_size;
                s->file_size = MAX(s->file_size, c->file_len);
                s->zero_start = MAX(s->zero_start, c->file_len);
                res->corruptions--;
                res->corruptions_fixed++;
                ret = qcow2_check_inc(c, res, off, s->cluster_size);
                if (ret < 0) {
                    return ret;
                }
            }
            continue;
        }
        if (off) {
            ret = qcow2_check_inc(c, res, off, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
            if (c->refs[cl] != 1) {
                fprintf(stderr, "ERROR refcount block %" PRIu32 " refcount=%"
                        PRIu64 "\n", i, c->refs[cl]);
                res->corruptions++;
                *rebuild = true;
            }
        }
    }
    return 0;
}

static int coroutine_fn qcow2_calc_refcounts(Qcow2CheckState *c,
                                             BdrvCheckResult *res,
                                             BdrvCheckMode fix, bool *rebuild)
{
    BDRVQcow2State *s = c->s;
    uint32_t i;
    int ret;

    ret = qcow2_check_inc(c, res, 0, s->cluster_size);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_check_l1(c, res, s->l1_table_offset, s->l1_size,
                         CHECK_FRAG_INFO);
    if (ret < 0) {
        return ret;
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        QCowSnapshot *sn = &s->snapshots[i];

        if (offset_into_cluster(s, sn->l1_table_offset)) {
            fprintf(stderr, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": "
                    "L1 table is not cluster aligned; snapshot table entry "
                    "corrupted\n", sn->id_str, sn->name, sn->l1_table_offset);
            res->corruptions++;
            continue;
        }
        if (sn->l1_size > QCOW_MAX_L1_SIZE / 8) {
            fprintf(stderr, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": "
                    "L1 table is too large; snapshot table entry corrupted\n",
                    sn->id_str, sn->name, sn->l1_size);
            res->corruptions++;
            continue;
        }
        ret = qcow2_check_l1(c, res, sn->l1_table_offset, sn->l1_size, 0);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_check_inc(c, res, s->snapshots_offset, s->snapshots_size);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_check_inc(c, res, s->refcount_table_offset,
                          (int64_t)s->refcount_table_size * 8);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_check_bitmaps(c, res);
    if (ret < 0) {
        return ret;
    }
    if (s->has_zoned_ext && s->zoned_ext.zonedmeta_size) {
        ret = qcow2_check_inc(c, res, s->zoned_ext.zonedmeta_offset,
                              ROUND_UP(s->zoned_ext.zonedmeta_size,
                                       s->cluster_size));
        if (ret < 0) {
            return ret;
        }
    }
    return qcow2_check_refblocks(c, res, fix, rebuild);
}

/* Stored refcounts read from the file (0 where no valid block exists). */
static int coroutine_fn qcow2_read_stored(Qcow2CheckState *c,
                                          uint64_t **stored)
{
    BDRVQcow2State *s = c->s;
    uint64_t *out = g_try_new0(uint64_t, MAX(c->nb_clusters, 1));
    void *rb = g_malloc(s->cluster_size);
    int64_t rt, j;
    int ret = 0;

    if (!out) {
        g_free(rb);
        return -ENOMEM;
    }
    for (rt = 0; rt < s->refcount_table_size; rt++) {
        uint64_t off = s->refcount_table[rt] & REFT_OFFSET_MASK;
        int64_t first = rt << s->refcount_block_bits;

        if (!off || offset_into_cluster(s, off) ||
            (s->refcount_table[rt] & REFT_RESERVED_MASK) ||
            first >= c->nb_clusters ||
            off + s->cluster_size > (uint64_t)c->file_len) {
            continue;
        }
        ret = bdrv_co_pread(c->bs->file, off, s->cluster_size, rb, 0);
        if (ret < 0) {
            break;
        }
        for (j = 0; j < s->refcount_block_size &&
                    first + j < c->nb_clusters; j++) {
            out[first + j] = s->get_refcount(rb, j);
        }
    }
    g_free(rb);
    if (ret < 0) {
        g_free(out);
        return ret;
    }
    *stored = out;
    return 0;
}

static int coroutine_fn qcow2_compare_refcounts(Qcow2CheckState *c,
                                                BdrvCheckResult *res,
                                                BdrvCheckMode fix,
                                                bool *rebuild,
                                                int64_t *highest)
{
    BDRVQcow2State *s = c->s;
    uint64_t *stored;
    int64_t i;
    int ret;

    ret = qcow2_read_stored(c, &stored);
    if (ret < 0) {
        res->check_errors++;
        return ret;
    }
    *highest = 0;
    for (i = 0; i < c->nb_clusters; i++) {
        uint64_t r1 = stored[i], r2 = c->refs[i];
        int *num_fixed = NULL;

        if (r1 > 0 || r2 > 0) {
            *highest = i;
        }
        if (r1 == r2) {
            continue;
        }
        if (r1 == 0) {
            *rebuild = true;
        } else if (r1 > r2 && (fix & BDRV_FIX_LEAKS)) {
            num_fixed = &res->leaks_fixed;
        } else if (r1 < r2 && (fix & BDRV_FIX_ERRORS)) {
            num_fixed = &res->corruptions_fixed;
        }
        fprintf(stderr, "%s cluster %" PRId64 " refcount=%" PRIu64
                " reference=%" PRIu64 "\n",
                num_fixed ? "Repairing" : r1 < r2 ? "ERROR" : "Leaked",
                i, r1, r2);
        if (num_fixed) {
            ret = qcow2_update_refcount(c->bs, i << s->cluster_bits, 1,
                                        r1 > r2 ? r1 - r2 : r2 - r1, r1 > r2);
            if (ret >= 0) {
                (*num_fixed)++;
                if (r2 == 0) {
                    /*
                     * A freed cluster's stale content goes, as on free.
                     * QEMU discards these always (whatever the node's
                     * discard option), so the file gets a hole.
                     */
                    BlockDriverState *file = c->bs->file->bs;
                    int saved = file->open_flags & BDRV_O_UNMAP;

                    file->open_flags |= BDRV_O_UNMAP;
                    bdrv_co_pdiscard(c->bs->file, i << s->cluster_bits,
                                     s->cluster_size);
                    file->open_flags = (file->open_flags & ~BDRV_O_UNMAP) |
                                       saved;
                }
                continue;
            }
        }
        if (r1 < r2) {
            res->corruptions++;
        } else {
            res->leaks++;
        }
    }
    g_free(stored);
    ret = qcow2_cache_flush(c->bs, s->refcount_block_cache);
    if (ret < 0) {
        res->check_errors++;
    }
    return ret;
}

/*
 * Write brand new refcount blocks and table after everything in use,
 * describing the computed references plus themselves, and switch the
 * header to them.  The old structures become leaks the caller repairs.
 */
static int coroutine_fn qcow2_rebuild_refcounts(Qcow2CheckState *c,
                                                BdrvCheckResult *res)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = c->s;
    int64_t start, end, blocks, table_clusters, i;
    uint64_t *table = NULL;
    uint8_t *rb = NULL, hdr[12];
    int ret;

    start = c->nb_clusters;
    for (i = c->nb_clusters - 1; i >= 0 && !c->refs[i]; i--) {
        start = i;
    }
    /* Fixed point: the new structures must describe themselves. */
    blocks = 0;
    table_clusters = 0;
    for (;;) {
        int64_t total = start + blocks + table_clusters;
        int64_t nb = DIV_ROUND_UP(total, s->refcount_block_size);
        int64_t tc = DIV_ROUND_UP(nb * 8, s->cluster_size);
        if (nb == blocks && tc == table_clusters) {
            break;
        }
        blocks = nb;
        table_clusters = tc;
    }
    end = start + blocks + table_clusters;
    ret = qcow2_check_grow(c, end);
    if (ret < 0) {
        goto out;
    }
    for (i = start; i < end; i++) {
        c->refs[i] = 1;
    }

    table = g_new0(uint64_t, table_clusters * s->cluster_size / 8);
    rb = g_malloc(s->cluster_size);
    for (i = 0; i < blocks; i++) {
        int64_t j;

        memset(rb, 0, s->cluster_size);
        for (j = 0; j < s->refcount_block_size; j++) {
            int64_t cl = i * s->refcount_block_size + j;
            if (cl >= c->nb_clusters) {
                break;
            }
            s->set_refcount(rb, j, MIN(c->refs[cl], s->refcount_max));
        }
        ret = bdrv_co_pwrite(bs->file, (start + i) << s->cluster_bits,
                             s->cluster_size, rb, 0);
        if (ret < 0) {
            goto out;
        }
        table[i] = cpu_to_be64((start + i) << s->cluster_bits);
    }
    ret = bdrv_co_pwrite(bs->file, (start + blocks) << s->cluster_bits,
                         table_clusters * s->cluster_size, table, 0);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        goto out;
    }
    stbe64_p(hdr, (start + blocks) << s->cluster_bits);
    stbe32_p(hdr + 8, table_clusters);
    ret = bdrv_co_pwrite_sync(bs->file, offsetof(QCowHeader,
                                                 refcount_table_offset),
                              sizeof(hdr), hdr, 0);
    if (ret < 0) {
        goto out;
    }

    /* Switch the driver over; cached blocks of the old structure go. */
    ret = qcow2_cache_empty(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto out;
    }
    g_free(s->refcount_table);
    s->refcount_table = g_new0(uint64_t, table_clusters * s->cluster_size / 8);
    for (i = 0; i < blocks; i++) {
        s->refcount_table[i] = (start + i) << s->cluster_bits;
    }
    s->refcount_table_offset = (start + blocks) << s->cluster_bits;
    s->refcount_table_size = table_clusters * s->cluster_size / 8;
    s->max_refcount_table_index = blocks - 1;
    s->free_cluster_index = 0;
    c->file_len = MAX(c->file_len, end << s->cluster_bits);
    s->file_size = MAX(s->file_size, c->file_len);
    /* We wrote up to @end: nothing below it may be assumed zero. */
    s->zero_start = MAX(s->zero_start, end << s->cluster_bits);
    s->alloc_end = MAX(s->alloc_end, end << s->cluster_bits);
    ret = 0;
out:
    if (ret < 0) {
        fprintf(stderr, "ERROR writing the rebuilt refcount structure: %s\n",
                strerror(-ret));
        res->check_errors++;
    }
    g_free(table);
    g_free(rb);
    return ret;
}

static int coroutine_fn qcow2_check_oflag_copied(Qcow2CheckState *c,
                                                 BdrvCheckResult *res,
                                                 BdrvCheckMode fix)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = c->s;
    uint64_t *l2 = g_malloc(s->cluster_size);
    bool repair;
    uint32_t i;
    int j, ret = 0;

    if (fix & BDRV_FIX_ERRORS) {
        repair = true;
    } else if (fix & BDRV_FIX_LEAKS) {
        /* Refcounts are only trustworthy if nothing else is wrong. */
        repair = !res->check_errors && !res->corruptions && !res->leaks;
    } else {
        repair = false;
    }

    for (i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1_table[i];
        uint64_t l2_offset = l1e & L1E_OFFSET_MASK;
        uint64_t rc;
        int dirty = 0;

        if (!l2_offset) {
            continue;
        }
        ret = qcow2_get_refcount(bs, l2_offset >> s->cluster_bits, &rc);
        if (ret < 0) {
            continue;
        }
        if ((rc == 1) != ((l1e & QCOW_OFLAG_COPIED) != 0)) {
            res->corruptions++;
            fprintf(stderr, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32
                    " l1_entry=%" PRIx64 " refcount=%" PRIu64 "\n",
                    repair ? "Repairing" : "ERROR", i, l1e, rc);
            if (repair) {
                s->l1_table[i] = rc == 1 ? l1e | QCOW_OFLAG_COPIED
                                         : l1e & ~QCOW_OFLAG_COPIED;
                ret = qcow2_write_l1_entry(bs, i);
                if (ret < 0) {
                    res->check_errors++;
                    goto out;
                }
                res->corruptions--;
                res->corruptions_fixed++;
            }
        }

        ret = bdrv_co_pread(bs->file, l2_offset, s->cluster_size, l2, 0);
        if (ret < 0) {
            fprintf(stderr, "ERROR: Could not read L2 table: %s\n",
                    strerror(-ret));
            res->check_errors++;
            goto out;
        }
        for (j = 0; j < s->l2_size; j++) {
            uint64_t e = be64_to_cpu(l2[j]);
            QCow2ClusterType type = qcow2_get_cluster_type(bs, e);

            if (type != QCOW2_CLUSTER_NORMAL &&
                type != QCOW2_CLUSTER_ZERO_ALLOC) {
                continue;
            }
            ret = qcow2_get_refcount(bs, (e & L2E_OFFSET_MASK)
                                         >> s->cluster_bits, &rc);
            if (ret < 0) {
                continue;
            }
            if ((rc == 1) != ((e & QCOW_OFLAG_COPIED) != 0)) {
                res->corruptions++;
                fprintf(stderr, "%s OFLAG_COPIED data cluster: l2_entry=%"
                        PRIx64 " refcount=%" PRIu64 "\n",
                        repair ? "Repairing" : "ERROR", e, rc);
                if (repair) {
                    e = rc == 1 ? e | QCOW_OFLAG_COPIED
                                : e & ~QCOW_OFLAG_COPIED;
                    l2[j] = cpu_to_be64(e);
                    dirty++;
                }
            }
        }
        if (dirty) {
            ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L2,
                                                l2_offset, s->cluster_size);
            if (ret < 0) {
                fprintf(stderr, "ERROR: Could not write L2 table; metadata "
                        "overlap check failed: %s\n", strerror(-ret));
                res->check_errors++;
                goto out;
            }
            ret = bdrv_co_pwrite(bs->file, l2_offset, s->cluster_size, l2, 0);
            if (ret < 0) {
                fprintf(stderr, "ERROR: Could not write L2 table: %s\n",
                        strerror(-ret));
                res->check_errors++;
                goto out;
            }
            res->corruptions -= dirty;
            res->corruptions_fixed += dirty;
        }
    }
    ret = 0;
out:
    g_free(l2);
    return ret;
}

static int coroutine_fn qcow2_check_refcounts(BlockDriverState *bs,
                                              BdrvCheckResult *res,
                                              BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2CheckState c = { .bs = bs, .s = s };
    BdrvCheckResult pre;
    int64_t highest = 0;
    bool rebuild = false;
    int ret;

    c.file_len = bdrv_co_getlength(bs->file->bs);
    if (c.file_len < 0) {
        res->check_errors++;
        return c.file_len;
    }
    ret = qcow2_check_grow(&c, size_to_clusters(s, c.file_len));
    if (ret < 0) {
        res->check_errors++;
        return ret;
    }
    res->bfi.total_clusters = size_to_clusters(s, s->size);

    ret = qcow2_calc_refcounts(&c, res, fix, &rebuild);
    if (ret < 0) {
        goto out;
    }
    pre = *res;
    ret = qcow2_compare_refcounts(&c, res, 0, &rebuild, &highest);
    if (ret < 0) {
        goto out;
    }

    if (rebuild && (fix & BDRV_FIX_ERRORS)) {
        BdrvCheckResult old = *res;
        int fresh_leaks = 0;

        fprintf(stderr, "Rebuilding refcount structure\n");
        ret = qcow2_rebuild_refcounts(&c, res);
        if (ret < 0) {
            goto out;
        }
        res->corruptions = 0;
        res->leaks = 0;
        rebuild = false;
        memset(c.refs, 0, c.nb_clusters * 8);
        ret = qcow2_calc_refcounts(&c, res, 0, &rebuild);
        if (ret < 0) {
            goto out;
        }
        if (fix & BDRV_FIX_LEAKS) {
            /* The old structures are leaks now; drop them quietly. */
            BdrvCheckResult saved = *res;
            memset(res, 0, sizeof(*res));
            ret = qcow2_compare_refcounts(&c, res, BDRV_FIX_LEAKS, &rebuild,
                                          &highest);
            if (rebuild) {
                fprintf(stderr, "ERROR rebuilt refcount structure is still "
                        "broken\n");
            }
            fresh_leaks = res->leaks;
            *res = saved;
        }
        if (res->corruptions < old.corruptions) {
            res->corruptions_fixed += old.corruptions - res->corruptions;
        }
        if (res->leaks < old.leaks) {
            res->leaks_fixed += old.leaks - res->leaks;
        }
        res->leaks += fresh_leaks;
    } else if (fix) {
        if (rebuild) {
            fprintf(stderr, "ERROR need to rebuild refcount structures\n");
            res->check_errors++;
            ret = -EIO;
            goto out;
        }
        if (res->leaks || res->corruptions) {
            *res = pre;
            ret = qcow2_compare_refcounts(&c, res, fix, &rebuild, &highest);
            if (ret < 0) {
                goto out;
            }
        }
    }

    ret = qcow2_check_oflag_copied(&c, res, fix);
    if (ret < 0) {
        goto out;
    }
    res->image_end_offset = (highest + 1) * s->cluster_size;
    ret = 0;
out:
    g_free(c.refs);
    return ret;
}

int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                                BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult r;
    int ret;

    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));

    qemu_co_mutex_lock(&s->lock);
    /* Everything is read from the file: write the caches back first. */
    ret = qcow2_cache_empty(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        res->check_errors++;
        goto out;
    }

    ret = qcow2_check_refcounts(bs, &r, fix);
    res->corruptions += r.corruptions;
    res->leaks += r.leaks;
    res->check_errors += r.check_errors;
    res->corruptions_fixed += r.corruptions_fixed;
    res->leaks_fixed += r.leaks_fixed;
    res->image_end_offset = r.image_end_offset;
    res->bfi = r.bfi;
    if (ret < 0) {
        goto out;
    }

    if (s->has_zoned_ext) {
        ret = qcow2_zoned_check(bs, res, fix);
        if (ret < 0) {
            goto out;
        }
    }

    if (fix && res->check_errors == 0 && res->corruptions == 0) {
        ret = qcow2_mark_clean(bs);
        if (ret >= 0 && qcow2_is_corrupt(s)) {
            s->incompatible_features &= ~QCOW2_INCOMPAT_CORRUPT;
            ret = qcow2_update_header(bs);
        }
    }
out:
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}
