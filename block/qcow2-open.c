/*
 * qcow2 format driver: opening and closing an image.  Open reads the
 * header (qcow2-header.c), loads the tables, applies the runtime options
 * and sets up the caches; activation makes the updates a read-write open
 * implies (dirty repair, autoclear bits); close writes everything back.
 * Also the limits, flush and length callbacks that do not depend on zones.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qcow2.h"

#define DEFAULT_L2_CACHE_MAX_SIZE   (32 * MiB)
#define MIN_L2_CACHE_TABLES         2
#define MIN_REFCOUNT_CACHE_TABLES   4
#define DEFAULT_PREALLOC_STEP       (16 * MiB)

#define QCOW2_OPT_L2_CACHE_SIZE       "l2-cache-size"
#define QCOW2_OPT_REFCOUNT_CACHE_SIZE "refcount-cache-size"
#define QCOW2_OPT_CACHE_SIZE          "cache-size"
#define QCOW2_OPT_LAZY_REFCOUNTS      "lazy-refcounts"
#define QCOW2_OPT_OVERLAP             "overlap-check"
#define QCOW2_OPT_DISCARD_REQUEST     "pass-discard-request"

static const QemuOptDesc qcow2_runtime_opts_desc[] = {
    { QCOW2_OPT_LAZY_REFCOUNTS, QEMU_OPT_BOOL,
      "Postpone refcount updates", NULL },
    { QCOW2_OPT_DISCARD_REQUEST, QEMU_OPT_BOOL,
      "Pass guest discard requests to the layer below", NULL },
    { "pass-discard-snapshot", QEMU_OPT_BOOL,
      "Generate discard requests when snapshot related space is freed",
      NULL },
    { "pass-discard-other", QEMU_OPT_BOOL,
      "Generate discard requests when other clusters are freed", NULL },
    { QCOW2_OPT_OVERLAP, QEMU_OPT_STRING,
      "Selects which overlap checks to perform from a range of templates "
      "(none, constant, cached, all)", NULL },
    { QCOW2_OPT_CACHE_SIZE, QEMU_OPT_SIZE,
      "Maximum combined metadata (L2 tables and refcount blocks) cache size",
      NULL },
    { QCOW2_OPT_L2_CACHE_SIZE, QEMU_OPT_SIZE,
      "Maximum L2 table cache size", NULL },
    { "l2-cache-entry-size", QEMU_OPT_SIZE,
      "Size of each entry in the L2 cache", NULL },
    { QCOW2_OPT_REFCOUNT_CACHE_SIZE, QEMU_OPT_SIZE,
      "Maximum refcount block cache size", NULL },
    { "cache-clean-interval", QEMU_OPT_NUMBER,
      "Clean unused cache entries after this time (in seconds)", NULL },
    { NULL }
};

const QemuOptsList qcow2_runtime_opts = {
    .name = "qcow2",
    .desc = qcow2_runtime_opts_desc,
};

int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    if (buf_size >= 8 && ldbe32_p(buf) == QCOW_MAGIC &&
        ldbe32_p(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

/* Set the in-use flag of every persistent bitmap (directory rewrite). */
static int coroutine_fn mark_bitmaps_in_use(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t dir_off = be64_to_cpu(s->bitmaps_ext.bitmap_directory_offset);
    uint64_t dir_size = be64_to_cpu(s->bitmaps_ext.bitmap_directory_size);
    uint32_t nb = be32_to_cpu(s->bitmaps_ext.nb_bitmaps);
    uint8_t *dir;
    uint64_t pos = 0;
    uint32_t i;
    int ret;

    if (!nb) {
        return 0;
    }
    if (dir_size > 64 * MiB || dir_size < 24 ||
        offset_into_cluster(s, dir_off) ||
        (int64_t)(dir_off + dir_size) > s->file_size) {
        return -EINVAL;
    }
    dir = g_malloc(dir_size);
    ret = bdrv_co_pread(bs->file, dir_off, dir_size, dir, 0);
    if (ret < 0) {
        goto out;
    }
    for (i = 0; i < nb; i++) {
        uint32_t extra, name;

        if (pos + 24 > dir_size) {
            ret = -EINVAL;
            goto out;
        }
        /* Entry: table offset, table size, flags (bit 0: in use), ... */
        stbe32_p(dir + pos + 12, ldbe32_p(dir + pos + 12) | 1);
        name = ldbe16_p(dir + pos + 18);
        extra = ldbe32_p(dir + pos + 20);
        pos = ROUND_UP(pos + 24 + (uint64_t)extra + name, 8);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_BITMAP_DIRECTORY,
                                        dir_off, dir_size);
    if (ret >= 0) {
        ret = bdrv_co_pwrite_sync(bs->file, dir_off, dir_size, dir, 0);
    }
out:
    g_free(dir);
    return ret < 0 ? ret : 0;
}

static void meta_filter_init(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t i;

    qcow2_meta_filter_add(s, 0, s->cluster_size);
    qcow2_meta_filter_add(s, s->l1_table_offset, (uint64_t)s->l1_size * 8);
    qcow2_meta_filter_add(s, s->refcount_table_offset,
                          (uint64_t)s->refcount_table_size * 8);
    qcow2_meta_filter_add(s, s->snapshots_offset, s->snapshots_size);
    for (i = 0; i < s->l1_size; i++) {
        qcow2_meta_filter_add(s, s->l1_table[i] & L1E_OFFSET_MASK,
                              (s->l1_table[i] & L1E_OFFSET_MASK) ?
                              s->cluster_size : 0);
    }
    for (i = 0; i < s->refcount_table_size; i++) {
        uint64_t rb = s->refcount_table[i] & REFT_OFFSET_MASK;

        qcow2_meta_filter_add(s, rb, rb ? s->cluster_size : 0);
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        qcow2_meta_filter_add(s, s->snapshots[i].l1_table_offset,
                              (uint64_t)s->snapshots[i].l1_size * 8);
    }
    if (s->has_bitmaps_ext) {
        qcow2_meta_filter_add(
            s, be64_to_cpu(s->bitmaps_ext.bitmap_directory_offset),
            be64_to_cpu(s->bitmaps_ext.bitmap_directory_size));
    }
}

static int parse_overlap_check(const char *str, int *out, Error **errp)
{
    if (!str || !strcmp(str, "cached")) {
        *out = QCOW2_OL_CACHED;
    } else if (!strcmp(str, "none")) {
        *out = 0;
    } else if (!strcmp(str, "constant")) {
        *out = QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1 |
               QCOW2_OL_REFCOUNT_TABLE | QCOW2_OL_SNAPSHOT_TABLE |
               QCOW2_OL_INACTIVE_L1 | QCOW2_OL_BITMAP_DIRECTORY |
               QCOW2_OL_ZONED_META;
    } else if (!strcmp(str, "all")) {
        *out = QCOW2_OL_ALL;
    } else {
        error_setg(errp, "Unsupported value '%s' for qcow2 option "
                   "'overlap-check'. Allowed are any of the following: "
                   "none, constant, cached, all", str);
        return -EINVAL;
    }
    return 0;
}

static int qcow2_apply_options(BlockDriverState *bs, QDict *options,
                               Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QemuOpts *opts = qemu_opts_create(&qcow2_runtime_opts);
    uint64_t l2_cache, rc_cache, combined, max_l2;
    bool l2_set, rc_set;
    int ret = 0;

    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        ret = -EINVAL;
        goto out;
    }
    max_l2 = (uint64_t)size_to_l1(s, s->size) * s->cluster_size;
    l2_set = qemu_opt_has(opts, QCOW2_OPT_L2_CACHE_SIZE);
    rc_set = qemu_opt_has(opts, QCOW2_OPT_REFCOUNT_CACHE_SIZE);
    l2_cache = qemu_opt_get_size(opts, QCOW2_OPT_L2_CACHE_SIZE, 0);
    rc_cache = qemu_opt_get_size(opts, QCOW2_OPT_REFCOUNT_CACHE_SIZE, 0);
    if (qemu_opt_has(opts, QCOW2_OPT_CACHE_SIZE)) {
        combined = qemu_opt_get_size(opts, QCOW2_OPT_CACHE_SIZE, 0);
        if (l2_set && rc_set) {
            error_setg(errp, "cache-size, l2-cache-size and "
                       "refcount-cache-size may not be set at the same time");
            ret = -EINVAL;
            goto out;
        }
        if (l2_set) {
            rc_cache = combined > l2_cache ? combined - l2_cache : 0;
        } else if (rc_set) {
            l2_cache = combined > rc_cache ? combined - rc_cache : 0;
        } else {
            l2_cache = MIN(max_l2, combined);
            rc_cache = combined - l2_cache;
        }
    } else if (!l2_set) {
        l2_cache = MIN(max_l2, DEFAULT_L2_CACHE_MAX_SIZE);
    }
    s->l2_cache_size = MAX(l2_cache, (uint64_t)MIN_L2_CACHE_TABLES *
                                     s->cluster_size);
    s->refcount_cache_size = MAX(rc_cache, (uint64_t)MIN_REFCOUNT_CACHE_TABLES
                                           * s->cluster_size);
    if (s->l2_cache_size / s->cluster_size > INT_MAX / 2) {
        s->l2_cache_size = (uint64_t)(INT_MAX / 2) * s->cluster_size;
    }
    if (s->refcount_cache_size / s->cluster_size > INT_MAX / 2) {
        s->refcount_cache_size = (uint64_t)(INT_MAX / 2) * s->cluster_size;
    }

    s->use_lazy_refcounts =
        qemu_opt_get_bool(opts, QCOW2_OPT_LAZY_REFCOUNTS,
                          s->compatible_features &
                          QCOW2_COMPAT_LAZY_REFCOUNTS);
    if (s->use_lazy_refcounts && s->qcow_version < 3) {
        error_setg(errp, "Lazy refcounts require a qcow2 image with at least "
                   "qemu 1.1 compatibility level");
        ret = -EINVAL;
        goto out;
    }
    s->discard_passthrough = qemu_opt_get_bool(opts, QCOW2_OPT_DISCARD_REQUEST,
                                               true);
    ret = parse_overlap_check(qemu_opt_get(opts, QCOW2_OPT_OVERLAP),
                              &s->overlap_check, errp);
out:
    qemu_opts_del(opts);
    return ret;
}

static void qcow2_free_state(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    qcow2_cache_destroy(s->l2_table_cache);
    qcow2_cache_destroy(s->refcount_block_cache);
    s->l2_table_cache = s->refcount_block_cache = NULL;
    qcow2_refcount_close(bs);
    g_free(s->l1_table);
    s->l1_table = NULL;
    g_free(s->unknown_header_fields);
    s->unknown_header_fields = NULL;
    g_free(s->image_backing_file);
    g_free(s->image_backing_format);
    s->image_backing_file = s->image_backing_format = NULL;
    g_free(s->feature_table);
    s->feature_table = NULL;
    qcow2_free_unknown_exts(s);
    qcow2_free_snapshots(s);
    qemu_vfree(s->zero_cluster);
    s->zero_cluster = NULL;
    qcow2_zoned_close(bs);
}

/* Load the active L1 table (host byte order in memory). */
static int coroutine_fn load_l1_table(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
    uint32_t i;
    int ret;

    s->l1_table = g_try_malloc0(ROUND_UP(MAX(l1_bytes, 8), 512));
    if (!s->l1_table) {
        error_setg(errp, "Could not allocate L1 table");
        return -ENOMEM;
    }
    if (l1_bytes) {
        ret = bdrv_co_pread(bs->file, s->l1_table_offset, l1_bytes,
                            s->l1_table, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read L1 table");
            return ret;
        }
        for (i = 0; i < s->l1_size; i++) {
            s->l1_table[i] = be64_to_cpu(s->l1_table[i]);
        }
    }
    return 0;
}

/* The metadata caches (sized by the options) and the COW zero buffer. */
static int alloc_caches(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    s->l2_table_cache = qcow2_cache_create(bs, s->l2_cache_size /
                                           s->cluster_size, s->cluster_size,
                                           QCOW2_OL_ACTIVE_L2);
    s->refcount_block_cache =
        qcow2_cache_create(bs, s->refcount_cache_size / s->cluster_size,
                           s->cluster_size, QCOW2_OL_REFCOUNT_BLOCK);
    if (!s->l2_table_cache || !s->refcount_block_cache) {
        error_setg(errp, "Could not allocate metadata caches");
        return -ENOMEM;
    }
    s->zero_cluster = qemu_try_blockalign(bs->file->bs, s->cluster_size);
    if (!s->zero_cluster) {
        error_setg(errp, "Could not allocate memory");
        return -ENOMEM;
    }
    memset(s->zero_cluster, 0, s->cluster_size);
    return 0;
}

int coroutine_fn qcow2_co_open(BlockDriverState *bs, QDict *options,
                               int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *first = NULL;
    int64_t file_size;
    int ret;

    memset(s, 0, sizeof(*s));
    qemu_co_mutex_init(&s->lock);
    bs->read_only = bs->read_only || !(flags & BDRV_O_RDWR);

    file_size = bdrv_co_getlength(bs->file->bs);
    if (file_size < 0) {
        error_setg_errno(errp, -file_size, "Could not get image size");
        return file_size;
    }
    s->file_size = file_size;
    s->open_file_size = file_size;

    ret = qcow2_read_header(bs, flags, &first, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = load_l1_table(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_apply_options(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = alloc_caches(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_refcount_init(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not initialize refcount handling");
        goto fail;
    }
    ret = qcow2_read_snapshots(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    meta_filter_init(bs);
    ret = qcow2_zoned_open(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_read_backing_name(bs, first, errp);
    if (ret < 0) {
        goto fail;
    }
    g_free(first);
    first = NULL;

    s->zero_start = s->file_size;
    s->prealloc_step = MAX(DEFAULT_PREALLOC_STEP, 8 * s->cluster_size);

    ret = bdrv_open_backing(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }

    bs->supported_write_flags = 0;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    return 0;

fail:
    g_free(first);
    qcow2_free_state(bs);
    return ret;
}

static int coroutine_fn repair_dirty(BlockDriverState *bs, Error **errp)
{
    BdrvCheckResult res;
    int ret;

    memset(&res, 0, sizeof(res));
    ret = qcow2_co_check(bs, &res, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
    if (ret < 0 || res.check_errors) {
        ret = ret < 0 ? ret : -EIO;
        error_setg_errno(errp, -ret, "Could not repair dirty image");
        return ret;
    }
    ret = qcow2_mark_clean(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not update qcow2 header");
    }
    return ret;
}

/* The updates an open implies, in the order they are made. */
static int coroutine_fn activate_updates(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t keep = 0;
    int ret;

    if ((s->incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
        !(bs->open_flags & BDRV_O_CHECK)) {
        ret = repair_dirty(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /*
     * We do not track dirty bitmaps: flag them in use (inconsistent)
     * so that their owner knows, and keep the bit.  Other autoclear
     * bits describe data we may make stale: clear them.
     */
    if ((s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS) &&
        (!s->has_bitmaps_ext || mark_bitmaps_in_use(bs) == 0)) {
        keep |= QCOW2_AUTOCLEAR_BITMAPS;
    }
    if (s->autoclear_features & ~keep) {
        s->autoclear_features &= keep;
        ret = qcow2_update_header(bs);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not update qcow2 header");
            return ret;
        }
    }
    return 0;
}

/*
 * Driver callback: the open went through; make the updates it implies
 * (docs/devel/block-layer.rst, "Opening and activation").  A dirty image
 * (lazy refcounts, not closed cleanly) has refcounts that may lag behind
 * its L2 tables: they are rebuilt before anything allocates.  As QEMU,
 * what the repair cannot fix (say, an entry past the end of the file)
 * does not stop the open: the I/O path refuses to use it.  The updates
 * run under an undo journal on the file: if one fails, everything they
 * wrote is put back and the open is refused with the file as it was.
 * Coroutine, s->lock not held, no request in flight.  0 or -errno.
 */
int coroutine_fn qcow2_co_activate(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!bs->read_only) {
        ret = bdrv_co_undo_begin(bs->file);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not open the image");
            return ret;
        }
        ret = activate_updates(bs, errp);
        if (ret < 0) {
            int r = bdrv_co_undo_rollback(bs->file);

            if (r < 0) {
                /* Rare (an I/O error while restoring): say it aloud. */
                warn_report("qcow2: could not undo the changes of a failed "
                            "open: %s", strerror(-r));
            }
            return ret;
        }
        bdrv_undo_end(bs->file);
    }
    s->activated = true;
    return 0;
}

/* Limits of any qcow2 image; the zoned ones are added in qcow2.c. */
void qcow2_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    bs->bl.request_alignment = 1;
    bs->bl.pdiscard_alignment = s->cluster_size;
    bs->bl.pwrite_zeroes_alignment = s->cluster_size;
    bs->bl.max_transfer = 0;
    if (bs->file) {
        bs->bl.min_mem_alignment = bs->file->bs->bl.min_mem_alignment;
        bs->bl.opt_mem_alignment = bs->file->bs->bl.opt_mem_alignment;
    }
}

/* Write the dirty metadata tables (the generic layer flushes bs->file). */
int coroutine_fn qcow2_co_flush_caches(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cache_write(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_write(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

void coroutine_fn qcow2_co_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    /* Not activated: the open was refused, and must leave the file alone. */
    if (!bs->read_only && s->activated) {
        int ret;

        if (qcow2_zoned_persist(bs) >= 0 && s->zoned) {
            bdrv_co_flush(bs->file->bs);
        }
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
        if (ret >= 0) {
            ret = qcow2_cache_flush(bs, s->refcount_block_cache);
        }
        if (ret >= 0 && s->use_lazy_refcounts) {
            ret = qcow2_mark_clean(bs);
        }
        if (ret >= 0) {
            qcow2_trim_file(bs);
        }
        qemu_co_mutex_unlock(&s->lock);
    }
    qcow2_free_state(bs);
}

int64_t coroutine_fn qcow2_co_getlength(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    return s->size;
}
