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

/* A finding of the check, for the user: the one place they are printed. */
void qcow2_check_msg(BDRVQcow2State *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* The computed refcounts are kept in chunks of this many clusters. */
#define CHECK_CHUNK_BITS 12
#define CHECK_CHUNK_SIZE (INT64_C(1) << CHECK_CHUNK_BITS)

typedef struct Qcow2CheckState {
    BlockDriverState *bs;
    BDRVQcow2State *s;
    /*
     * Computed reference count per cluster, in chunks allocated when
     * something in them is referenced: a sparse file of many GiB with
     * metadata at both ends needs little memory.
     */
    uint64_t **chunks;
    int64_t nb_chunks;       /* slots in chunks */
    int64_t nb_clusters;     /* 1 + highest cluster ever counted */
    int64_t file_len;
} Qcow2CheckState;

/* Computed reference count of cluster @cl. */
static uint64_t qcow2_check_ref(Qcow2CheckState *c, int64_t cl)
{
    int64_t n = cl >> CHECK_CHUNK_BITS;

    if (n >= c->nb_chunks || !c->chunks[n]) {
        return 0;
    }
    return c->chunks[n][cl & (CHECK_CHUNK_SIZE - 1)];
}

/* Where the count of cluster @cl lives (allocated), NULL without memory. */
static uint64_t *qcow2_check_ref_ptr(Qcow2CheckState *c, int64_t cl)
{
    int64_t n = cl >> CHECK_CHUNK_BITS;

    if (n >= c->nb_chunks) {
        int64_t slots = MAX(n + 1, c->nb_chunks * 2);
        uint64_t **chunks = g_try_renew(uint64_t *, c->chunks, slots);

        if (!chunks) {
            return NULL;
        }
        memset(chunks + c->nb_chunks, 0,
               (slots - c->nb_chunks) * sizeof(*chunks));
        c->chunks = chunks;
        c->nb_chunks = slots;
    }
    if (!c->chunks[n]) {
        c->chunks[n] = g_try_new0(uint64_t, CHECK_CHUNK_SIZE);
        if (!c->chunks[n]) {
            return NULL;
        }
    }
    c->nb_clusters = MAX(c->nb_clusters, cl + 1);
    return &c->chunks[n][cl & (CHECK_CHUNK_SIZE - 1)];
}

static void qcow2_check_reset(Qcow2CheckState *c)
{
    int64_t i;

    for (i = 0; i < c->nb_chunks; i++) {
        g_free(c->chunks[i]);
    }
    g_free(c->chunks);
    c->chunks = NULL;
    c->nb_chunks = 0;
    c->nb_clusters = 0;
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
    /*
     * The last cluster may be partly beyond the end, but not more.
     * Offsets come from the file and may be anything up to 2^64: compare
     * unsigned (offset < 2^63 here, so offset + size cannot wrap).  The
     * range check also bounds the counted clusters by the file length.
     */
    if (offset < 0 || (uint64_t)offset + size >=
                      (uint64_t)c->file_len + s->cluster_size) {
        qcow2_check_msg(s, "ERROR: counting reference for region exceeding the "
                "end of the file by one cluster or more: offset 0x%" PRIx64
                " size 0x%" PRIx64 "\n", (uint64_t)offset, (uint64_t)size);
        res->corruptions++;
        return 0;
    }
    last = (offset + size - 1) >> s->cluster_bits;
    for (cl = offset >> s->cluster_bits; cl <= last; cl++) {
        uint64_t *ref = qcow2_check_ref_ptr(c, cl);

        if (!ref) {
            res->check_errors++;
            return -ENOMEM;
        }
        if (*ref == s->refcount_max) {
            qcow2_check_msg(s, "ERROR: overflow cluster offset=0x%" PRIx64 "\n",
                    cl << s->cluster_bits);
            qcow2_check_msg(s, "Use qemu-img amend to increase the refcount entry "
                    "width or qemu-img convert to create a clean copy if the "
                    "image cannot be opened for writing\n");
            res->corruptions++;
            continue;
        }
        (*ref)++;
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
        qcow2_check_msg(s, "ERROR: I/O error in check_refcounts_l2\n");
        res->check_errors++;
        goto out;
    }

    for (i = 0; i < s->l2_size; i++) {
        uint64_t e = be64_to_cpu(l2[i]);
        QCow2ClusterType type = qcow2_get_cluster_type(bs, e);

        if (type != QCOW2_CLUSTER_COMPRESSED &&
            (e & L2E_STD_RESERVED_MASK)) {
            qcow2_check_msg(s, "ERROR found l2 entry with reserved bits set: %"
                    PRIx64 "\n", e);
            res->corruptions++;
        }

        switch (type) {
        case QCOW2_CLUSTER_COMPRESSED: {
            uint64_t coffset;
            int csize;

            if (e & QCOW_OFLAG_COPIED) {
                qcow2_check_msg(s, "ERROR: coffset=0x%" PRIx64 ": copied flag "
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
                    qcow2_check_msg(s, "%s offset=%" PRIx64 ": Preallocated "
                            "cluster is not properly aligned; L2 entry "
                            "corrupted.\n", "ERROR", off);
                } else {
                    qcow2_check_msg(s, "ERROR offset=%" PRIx64 ": Data cluster "
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
        qcow2_check_msg(s, "ERROR: I/O error in check_refcounts_l1\n");
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
            qcow2_check_msg(s, "ERROR found L1 entry with reserved bits set: %"
                    PRIx64 "\n", e);
            res->corruptions++;
        }
        l2_offset = e & L1E_OFFSET_MASK;
        ret = qcow2_check_inc(c, res, l2_offset, s->cluster_size);
        if (ret < 0) {
            goto out;
        }
        if (offset_into_cluster(s, l2_offset)) {
            qcow2_check_msg(s, "ERROR l2_offset=%" PRIx64 ": Table is not "
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

/*
 * Give a refcount block beyond the end of the file a home by growing the
 * file up to it, as QEMU does: a file that lost its tail gets the block
 * back (as zeroes, so what it covers is counted again).  An entry far
 * beyond the end is damage, not a lost tail: growing for it would size
 * the check and the rebuilt refcount structure by whatever the corrupt
 * entry names, so it is refused and the structure rebuilt instead.
 */
static int coroutine_fn qcow2_check_home_refblock(Qcow2CheckState *c,
                                                  BdrvCheckResult *res,
                                                  uint64_t off)
{
    BDRVQcow2State *s = c->s;
    uint64_t end;
    Error *err = NULL;
    int ret;

    if (off > INT64_MAX - s->cluster_size) {
        return -EINVAL;
    }
    end = off + s->cluster_size;
    /* At most double the file: the slack a lost tail plausibly had. */
    if (end > 2 * (uint64_t)MAX(c->file_len, s->cluster_size)) {
        return -EFBIG;
    }
    ret = bdrv_co_truncate(c->bs->file, end, false, PREALLOC_MODE_OFF, 0,
                           &err);
    if (ret < 0) {
        error_free(err);
        return ret;
    }
    c->file_len = end;
    s->file_size = MAX(s->file_size, c->file_len);
    s->zero_start = MAX(s->zero_start, c->file_len);
    res->corruptions--;
    res->corruptions_fixed++;
    /* Just made of zeroes: its refcount can only be 1 now. */
    return qcow2_check_inc(c, res, off, s->cluster_size);
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
            qcow2_check_msg(s, "ERROR refcount table entry %" PRIu32 " has "
                    "reserved bits set\n", i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (offset_into_cluster(s, off)) {
            qcow2_check_msg(s, "ERROR refcount block %" PRIu32 " is not cluster "
                    "aligned; refcount table entry corrupted\n", i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (off && (off >= (uint64_t)c->file_len)) {
            res->corruptions++;
            qcow2_check_msg(s, "%s refcount block %" PRIu32 " is outside image\n",
                    fix & BDRV_FIX_ERRORS ? "Repairing" : "ERROR", i);
            if (fix & BDRV_FIX_ERRORS) {
                ret = qcow2_check_home_refblock(c, res, off);
                if (ret == -ENOMEM) {
                    return ret;
                }
                if (ret < 0) {
                    *rebuild = true;
                    qcow2_check_msg(s, "ERROR could not resize image: %s\n",
                            strerror(-ret));
                }
            }
            continue;
        }
        if (off) {
            ret = qcow2_check_inc(c, res, off, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
            if (qcow2_check_ref(c, cl) != 1) {
                qcow2_check_msg(s, "ERROR refcount block %" PRIu32 " refcount=%"
                        PRIu64 "\n", i, qcow2_check_ref(c, cl));
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
            qcow2_check_msg(s, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": "
                    "L1 table is not cluster aligned; snapshot table entry "
                    "corrupted\n", sn->id_str, sn->name, sn->l1_table_offset);
            res->corruptions++;
            continue;
        }
        if (sn->l1_size > QCOW_MAX_L1_SIZE / 8) {
            qcow2_check_msg(s, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": "
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

/*
 * The stored refcounts of the clusters refcount block @rt describes, read
 * from the file into @rb: false if no valid block exists (all 0 then).
 */
static int coroutine_fn qcow2_read_stored(Qcow2CheckState *c, int64_t rt,
                                          void *rb, bool *valid)
{
    BDRVQcow2State *s = c->s;
    uint64_t off;

    *valid = false;
    if (rt >= s->refcount_table_size) {
        return 0;
    }
    off = s->refcount_table[rt] & REFT_OFFSET_MASK;
    if (!off || offset_into_cluster(s, off) ||
        (s->refcount_table[rt] & REFT_RESERVED_MASK) ||
        (uint64_t)c->file_len < s->cluster_size ||
        off > (uint64_t)c->file_len - s->cluster_size) {
        return 0;
    }
    *valid = true;
    return bdrv_co_pread(c->bs->file, off, s->cluster_size, rb, 0);
}

/*
 * Compare stored with computed refcounts, one refcount block at a time
 * (memory stays one cluster, whatever the file length), over every
 * cluster of the file and every cluster something references.
 */
static int coroutine_fn qcow2_compare_refcounts(Qcow2CheckState *c,
                                                BdrvCheckResult *res,
                                                BdrvCheckMode fix,
                                                bool *rebuild,
                                                int64_t *highest)
{
    BDRVQcow2State *s = c->s;
    int64_t end = MAX(size_to_clusters(s, c->file_len), c->nb_clusters);
    void *rb = g_malloc(s->cluster_size);
    bool valid = false;
    int64_t i;
    int ret = 0;

    *highest = 0;
    for (i = 0; i < end; i++) {
        int64_t j = i & (s->refcount_block_size - 1);
        uint64_t r1, r2 = qcow2_check_ref(c, i);
        int *num_fixed = NULL;

        if (j == 0) {
            ret = qcow2_read_stored(c, i >> s->refcount_block_bits, rb,
                                    &valid);
            if (ret < 0) {
                res->check_errors++;
                goto out;
            }
            if (!valid && i >= c->nb_clusters) {
                /* Nothing stored, nothing referenced: skip the block. */
                i += s->refcount_block_size - 1;
                continue;
            }
        }
        r1 = valid ? s->get_refcount(rb, j) : 0;
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
        qcow2_check_msg(s, "%s cluster %" PRId64 " refcount=%" PRIu64
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
    ret = qcow2_cache_flush(c->bs, s->refcount_block_cache);
    if (ret < 0) {
        res->check_errors++;
    }
out:
    g_free(rb);
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
    for (i = c->nb_clusters - 1; i >= 0 && !qcow2_check_ref(c, i); i--) {
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
    for (i = start; i < end; i++) {
        uint64_t *ref = qcow2_check_ref_ptr(c, i);

        if (!ref) {
            ret = -ENOMEM;
            goto out;
        }
        *ref = 1;
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
            s->set_refcount(rb, j,
                            MIN(qcow2_check_ref(c, cl), s->refcount_max));
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
        qcow2_check_msg(s, "ERROR writing the rebuilt refcount structure: %s\n",
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
            qcow2_check_msg(s, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32
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
            qcow2_check_msg(s, "ERROR: Could not read L2 table: %s\n",
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
                qcow2_check_msg(s, "%s OFLAG_COPIED data cluster: l2_entry=%"
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
                qcow2_check_msg(s, "ERROR: Could not write L2 table; metadata "
                        "overlap check failed: %s\n", strerror(-ret));
                res->check_errors++;
                goto out;
            }
            ret = bdrv_co_pwrite(bs->file, l2_offset, s->cluster_size, l2, 0);
            if (ret < 0) {
                qcow2_check_msg(s, "ERROR: Could not write L2 table: %s\n",
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

        qcow2_check_msg(s, "Rebuilding refcount structure\n");
        ret = qcow2_rebuild_refcounts(&c, res);
        if (ret < 0) {
            goto out;
        }
        res->corruptions = 0;
        res->leaks = 0;
        rebuild = false;
        qcow2_check_reset(&c);
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
                qcow2_check_msg(s, "ERROR rebuilt refcount structure is still "
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
            qcow2_check_msg(s, "ERROR need to rebuild refcount structures\n");
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
    qcow2_check_reset(&c);
    return ret;
}

/*
 * A v3 snapshot table entry must hold the large VM state size and the
 * disk size: 16 bytes of extra data.  Reported first, as QEMU's check
 * reads the table before anything else; returns the number of entries
 * to repair once the refcounts are right.
 */
static uint32_t qcow2_check_snapshot_entries(BDRVQcow2State *s,
                                             BdrvCheckResult *res,
                                             BdrvCheckMode fix)
{
    uint32_t i, n = 0;

    if (s->qcow_version < 3) {
        return 0;
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        if (s->snapshots[i].extra_data_size < 16) {
            qcow2_check_msg(s, "%s snapshot table entry %" PRIu32 " is "
                    "incomplete\n",
                    fix & BDRV_FIX_ERRORS ? "Repairing" : "ERROR", i);
            n++;
        }
    }
    res->corruptions += n;
    return n;
}

int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                                BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult r;
    uint32_t bad_snapshots;
    bool snapshots_counted;
    int64_t file_len;
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

    bad_snapshots = qcow2_check_snapshot_entries(s, res, fix);
    file_len = bdrv_co_getlength(bs->file->bs);
    if (file_len < 0) {
        res->check_errors++;
        ret = file_len;
        goto out;
    }
    /* Counted by the check (see qcow2_check_inc), so its refcount is 1. */
    snapshots_counted = s->snapshots_offset <= INT64_MAX &&
                        s->snapshots_offset + s->snapshots_size <
                        (uint64_t)file_len + s->cluster_size;
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

    if (bad_snapshots && (fix & BDRV_FIX_ERRORS)) {
        ret = qcow2_rewrite_snapshot_table(bs, snapshots_counted);
        if (ret < 0) {
            qcow2_check_msg(s, "ERROR failed to update the snapshot table: %s\n",
                    strerror(-ret));
            res->check_errors++;
            goto out;
        }
        res->corruptions -= bad_snapshots;
        res->corruptions_fixed += bad_snapshots;
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
