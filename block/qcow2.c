/*
 * qcow2 format driver: open/close, zoned devices (state machine, zone
 * requests, write-pointer persistence), status and info, driver table.
 * Header extensions are in qcow2-header.c, the data path in qcow2-io.c.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Locking: s->lock (a CoMutex) protects the metadata.  It is released
 * around guest data I/O.  Reads and in-place rewrites of clusters whose L2
 * table is cached take a lock-free path: they look the entry up without
 * yielding, and an entry that is NORMAL with the COPIED flag cannot have
 * an allocation in flight, so the mapping is stable for the request.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
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

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    if (buf_size >= 8 && ldbe32_p(buf) == QCOW_MAGIC &&
        ldbe32_p(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

/* ---- corruption ------------------------------------------------------------- */

int coroutine_fn qcow2_mark_corrupt(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t val;

    s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
    if (s->qcow_version < 3 || bs->read_only) {
        return 0;
    }
    val = cpu_to_be64(s->incompatible_features);
    return bdrv_co_pwrite_sync(bs->file,
                               offsetof(QCowHeader, incompatible_features),
                               sizeof(val), &val, 0);
}

void qcow2_signal_corruption(BlockDriverState *bs, bool fatal,
                             int64_t offset, int64_t size,
                             const char *fmt, ...)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree char *msg = NULL;
    va_list ap;

    fatal = fatal && !bs->read_only;
    if (s->signaled_corruption &&
        (!fatal || qcow2_is_corrupt(s))) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    if (fatal) {
        fprintf(stderr, "qcow2: Marking image as corrupt: %s; further "
                "corruption events will be suppressed\n", msg);
    } else {
        fprintf(stderr, "qcow2: Image is corrupt: %s; further non-fatal "
                "corruption events will be suppressed\n", msg);
    }
    s->signaled_corruption = true;
    if (fatal) {
        /* Failing to persist the bit is fine: writes are refused now. */
        if (qemu_in_coroutine()) {
            qcow2_mark_corrupt(bs);
        } else {
            s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        }
    }
}

/* ---- header --------------------------------------------------------------------- */

int qcow2_validate_table(BlockDriverState *bs, uint64_t offset,
                         uint64_t entries, size_t entry_len,
                         int64_t max_size_bytes, const char *table_name,
                         Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (entries > (uint64_t)max_size_bytes / entry_len) {
        error_setg(errp, "%s too large", table_name);
        return -EFBIG;
    }
    if (INT64_MAX - entries * entry_len < offset ||
        offset_into_cluster(s, offset) != 0) {
        error_setg(errp, "%s offset invalid", table_name);
        return -EINVAL;
    }
    /*
     * A table past the end of the file reads as zeroes.  Normal opens
     * refuse it; "check" opens it, as QEMU's does, to report and repair.
     */
    if (entries && s->file_size >= 0 && !(bs->open_flags & BDRV_O_CHECK) &&
        offset + entries * entry_len > (uint64_t)s->file_size) {
        error_setg(errp, "%s is beyond the end of the image file",
                   table_name);
        return -EINVAL;
    }
    return 0;
}


/* ---- host file growth ------------------------------------------------------------- */

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

/* ---- open / close ------------------------------------------------------------------ */

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

static int coroutine_fn qcow2_co_open(BlockDriverState *bs, QDict *options,
                                      int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCowHeader header;
    uint8_t *first = NULL;
    uint64_t ext_end;
    int64_t file_size;
    uint64_t l1_bytes;
    uint32_t i;
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

    memset(&header, 0, sizeof(header));
    ret = bdrv_co_pread(bs->file, 0, MIN((int64_t)sizeof(header), file_size),
                        &header, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read qcow2 header");
        goto fail;
    }
    if (file_size < QCOW2_V2_HEADER_LENGTH ||
        be32_to_cpu(header.magic) != QCOW_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format");
        ret = -EINVAL;
        goto fail;
    }
    s->qcow_version = be32_to_cpu(header.version);
    if (s->qcow_version < 2 || s->qcow_version > 3) {
        error_setg(errp, "Unsupported qcow2 version %d", s->qcow_version);
        ret = -ENOTSUP;
        goto fail;
    }
    s->cluster_bits = be32_to_cpu(header.cluster_bits);
    if (s->cluster_bits < MIN_CLUSTER_BITS ||
        s->cluster_bits > MAX_CLUSTER_BITS) {
        error_setg(errp, "Unsupported cluster size: 2^%d", s->cluster_bits);
        ret = -EINVAL;
        goto fail;
    }
    s->cluster_size = 1 << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1 << s->l2_bits;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (INT64_C(1) << (s->cluster_bits - 8)) - 1;
    s->cluster_offset_mask = (INT64_C(1) << s->csize_shift) - 1;

    if (s->qcow_version == 2) {
        s->incompatible_features = 0;
        s->compatible_features = 0;
        s->autoclear_features = 0;
        s->refcount_order = 4;
        s->header_length = QCOW2_V2_HEADER_LENGTH;
    } else {
        s->incompatible_features = be64_to_cpu(header.incompatible_features);
        s->compatible_features = be64_to_cpu(header.compatible_features);
        s->autoclear_features = be64_to_cpu(header.autoclear_features);
        s->refcount_order = be32_to_cpu(header.refcount_order);
        s->header_length = be32_to_cpu(header.header_length);
        if (s->header_length < QCOW2_V3_MIN_HEADER_LENGTH) {
            error_setg(errp, "qcow2 header too short");
            ret = -EINVAL;
            goto fail;
        }
    }
    if (s->header_length > (uint32_t)s->cluster_size) {
        error_setg(errp, "qcow2 header exceeds cluster size");
        ret = -EINVAL;
        goto fail;
    }
    if (s->header_length > file_size) {
        error_setg(errp, "qcow2 header is beyond the end of the image file");
        ret = -EINVAL;
        goto fail;
    }

    /* The whole first cluster holds header, extensions, backing name. */
    first = g_malloc0(s->cluster_size);
    ret = bdrv_co_pread(bs->file, 0, MIN(s->cluster_size, file_size),
                        first, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read qcow2 header");
        goto fail;
    }
    if (s->header_length > sizeof(QCowHeader)) {
        s->unknown_header_fields_size = s->header_length - sizeof(QCowHeader);
        s->unknown_header_fields = g_memdup2(first + sizeof(QCowHeader),
                                             s->unknown_header_fields_size);
    }

    s->backing_file_offset = be64_to_cpu(header.backing_file_offset);
    s->backing_file_size = be32_to_cpu(header.backing_file_size);
    if (s->backing_file_offset > (uint64_t)s->cluster_size) {
        error_setg(errp, "Invalid backing file offset");
        ret = -EINVAL;
        goto fail;
    }

    s->compression_type = QCOW2_COMPRESSION_TYPE_ZLIB;
    if (s->header_length > offsetof(QCowHeader, compression_type)) {
        s->compression_type = header.compression_type;
    }
    if (s->compression_type != QCOW2_COMPRESSION_TYPE_ZLIB &&
        s->compression_type != QCOW2_COMPRESSION_TYPE_ZSTD) {
        error_setg(errp, "qcow2: unknown compression type: %u",
                   s->compression_type);
        ret = -ENOTSUP;
        goto fail;
    }
    if (s->compression_type != QCOW2_COMPRESSION_TYPE_ZLIB &&
        !(s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit "
                   "must be set");
        ret = -EINVAL;
        goto fail;
    }
    if (s->compression_type == QCOW2_COMPRESSION_TYPE_ZLIB &&
        (s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit "
                   "must not be set");
        ret = -EINVAL;
        goto fail;
    }
#ifndef CONFIG_ZSTD
    if (s->compression_type == QCOW2_COMPRESSION_TYPE_ZSTD) {
        error_setg(errp, "qcow2: zstd compression is not supported by this "
                   "build");
        ret = -ENOTSUP;
        goto fail;
    }
#endif

    ext_end = s->backing_file_offset ? s->backing_file_offset
                                     : (uint64_t)s->cluster_size;
    s->crypt_method_header = be32_to_cpu(header.crypt_method);
    ret = qcow2_read_extensions(bs, first, s->header_length, ext_end, errp);
    if (ret < 0) {
        goto fail;
    }

    if (s->incompatible_features & ~(uint64_t)QCOW2_INCOMPAT_MASK) {
        qcow2_report_unsupported_feature(s, errp, s->incompatible_features &
                                   ~(uint64_t)QCOW2_INCOMPAT_MASK);
        ret = -ENOTSUP;
        goto fail;
    }
    if ((s->incompatible_features & QCOW2_INCOMPAT_CORRUPT) &&
        !bs->read_only && !(flags & BDRV_O_CHECK)) {
        error_setg(errp, "qcow2: Image is corrupt; cannot be opened "
                   "read/write");
        ret = -EACCES;
        goto fail;
    }

    if (s->crypt_method_header) {
        error_setg(errp, "qcow2: Encrypted images are not supported "
                   "(encryption method %u)", s->crypt_method_header);
        ret = -ENOTSUP;
        goto fail;
    }

    if ((uint32_t)s->refcount_order > 6) {
        error_setg(errp, "Reference count entry width too large; may not "
                   "exceed 64 bits");
        ret = -EINVAL;
        goto fail;
    }

    s->size = be64_to_cpu(header.size);
    if (s->size > (uint64_t)INT64_MAX - s->cluster_size) {
        error_setg(errp, "Image size too large");
        ret = -EFBIG;
        goto fail;
    }
    /* The L1 index must fit its 32-bit field (and every int using it). */
    if (size_to_l1(s, s->size) > INT_MAX) {
        error_setg(errp, "Image is too big");
        ret = -EFBIG;
        goto fail;
    }
    s->l1_vm_state_index = size_to_l1(s, s->size);
    ret = qcow2_zoned_validate_ext(bs, errp);
    if (ret < 0) {
        goto fail;
    }

    /* Refcount table. */
    s->refcount_table_offset = be64_to_cpu(header.refcount_table_offset);
    {
        uint32_t rt_clusters = be32_to_cpu(header.refcount_table_clusters);

        if (rt_clusters == 0) {
            error_setg(errp, "Image does not contain a reference count "
                       "table");
            ret = -EINVAL;
            goto fail;
        }
        ret = qcow2_validate_table(bs, s->refcount_table_offset,
                                   rt_clusters, s->cluster_size,
                                   QCOW_MAX_REFTABLE_SIZE,
                                   "Reference count table", errp);
        if (ret < 0) {
            goto fail;
        }
        s->refcount_table_size = ((uint64_t)rt_clusters <<
                                  s->cluster_bits) / 8;
    }

    /* Snapshot table. */
    s->nb_snapshots = be32_to_cpu(header.nb_snapshots);
    s->snapshots_offset = be64_to_cpu(header.snapshots_offset);
    /*
     * The size check in qcow2_validate_table() also enforces
     * QCOW_MAX_SNAPSHOTS, and reports it the way QEMU does.
     */
    ret = qcow2_validate_table(bs, s->snapshots_offset, s->nb_snapshots,
                               sizeof(QCowSnapshotHeader),
                               (int64_t)sizeof(QCowSnapshotHeader) *
                               QCOW_MAX_SNAPSHOTS, "Snapshot table", errp);
    if (ret < 0) {
        goto fail;
    }

    /* Active L1 table. */
    s->l1_size = be32_to_cpu(header.l1_size);
    s->l1_table_offset = be64_to_cpu(header.l1_table_offset);
    if (s->l1_size > QCOW_MAX_L1_SIZE / 8) {
        error_setg(errp, "Active L1 table too large");
        ret = -EFBIG;
        goto fail;
    }
    if (s->l1_size < s->l1_vm_state_index) {
        error_setg(errp, "L1 table is too small");
        ret = -EINVAL;
        goto fail;
    }
    ret = qcow2_validate_table(bs, s->l1_table_offset, s->l1_size, 8,
                               QCOW_MAX_L1_SIZE, "Active L1 table", errp);
    if (ret < 0) {
        goto fail;
    }
    l1_bytes = (uint64_t)s->l1_size * 8;
    s->l1_table = g_try_malloc0(ROUND_UP(MAX(l1_bytes, 8), 512));
    if (!s->l1_table) {
        error_setg(errp, "Could not allocate L1 table");
        ret = -ENOMEM;
        goto fail;
    }
    if (l1_bytes) {
        ret = bdrv_co_pread(bs->file, s->l1_table_offset, l1_bytes,
                            s->l1_table, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read L1 table");
            goto fail;
        }
        for (i = 0; i < s->l1_size; i++) {
            s->l1_table[i] = be64_to_cpu(s->l1_table[i]);
        }
    }

    ret = qcow2_apply_options(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }
    s->l2_table_cache = qcow2_cache_create(bs, s->l2_cache_size /
                                           s->cluster_size, s->cluster_size,
                                           QCOW2_OL_ACTIVE_L2);
    s->refcount_block_cache =
        qcow2_cache_create(bs, s->refcount_cache_size / s->cluster_size,
                           s->cluster_size, QCOW2_OL_REFCOUNT_BLOCK);
    if (!s->l2_table_cache || !s->refcount_block_cache) {
        error_setg(errp, "Could not allocate metadata caches");
        ret = -ENOMEM;
        goto fail;
    }
    s->zero_cluster = qemu_try_blockalign(bs->file->bs, s->cluster_size);
    if (!s->zero_cluster) {
        error_setg(errp, "Could not allocate memory");
        ret = -ENOMEM;
        goto fail;
    }
    memset(s->zero_cluster, 0, s->cluster_size);

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

    /* Backing file name. */
    if (s->backing_file_offset) {
        uint32_t len = s->backing_file_size;

        if (len > MIN(1023, s->cluster_size - s->backing_file_offset)) {
            error_setg(errp, "Backing file name too long");
            ret = -EINVAL;
            goto fail;
        }
        s->image_backing_file = g_strndup((char *)first +
                                          s->backing_file_offset, len);
        pstrcpy(bs->backing_file, sizeof(bs->backing_file),
                s->image_backing_file);
    }
    if (s->image_backing_format) {
        pstrcpy(bs->backing_format, sizeof(bs->backing_format),
                s->image_backing_format);
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

/*
 * A dirty image (lazy refcounts, not closed cleanly) has refcounts that
 * may lag behind its L2 tables: rebuild them before anything allocates.
 * As QEMU, what the repair cannot fix (say, an entry past the end of the
 * file) does not stop the open: the I/O path refuses to use it.  A first
 * pass only reads, so that an image refused here is left as it was.
 */
static int coroutine_fn repair_dirty(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult res;
    int ret;

    memset(&res, 0, sizeof(res));
    s->check_quiet = true;
    ret = qcow2_co_check(bs, &res, 0);
    s->check_quiet = false;
    if (ret >= 0 && !res.check_errors) {
        memset(&res, 0, sizeof(res));
        ret = qcow2_co_check(bs, &res, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
    }
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

/*
 * Driver callback: the open went through; make the updates it implies.
 * Coroutine, s->lock not held, no request in flight.  0 or -errno.
 */
static int coroutine_fn qcow2_co_activate(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t keep = 0;
    int ret;

    if (!bs->read_only) {
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
    }
    s->activated = true;
    return 0;
}

static void qcow2_zoned_refresh_limits(BlockDriverState *bs);

static void qcow2_refresh_limits(BlockDriverState *bs, Error **errp)
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
    qcow2_zoned_refresh_limits(bs);
}

static int coroutine_fn qcow2_co_flush_to_os(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cache_write(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_write(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        /* The generic layer flushes bs->file after us. */
        ret = qcow2_zoned_persist(bs);
    }
    return ret;
}

static void coroutine_fn qcow2_co_close(BlockDriverState *bs)
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
        if (ret >= 0 && (s->file_grown || s->file_lazy)) {
            /*
             * Give back the space reserved ahead of allocation; after lazy
             * growth, make the file cover the last allocated cluster, which
             * a partial write into known-zero space may not have reached.
             */
            int64_t end = MAX(qcow2_get_last_allocated_end(bs),
                              s->open_file_size);
            int64_t real = s->file_lazy ? bdrv_co_getlength(bs->file->bs)
                                        : s->file_size;

            end = end < 0 ? end : MAX(end, s->linked_end);
            /*
             * Grow only over what this session allocated: the refcounts
             * of a truncated or damaged file may name clusters past its
             * end, which must stay missing (as with QEMU) rather than turn
             * into leaked clusters of zeroes, or a file of terabytes.
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
                if (bdrv_co_truncate(bs->file, end, true, PREALLOC_MODE_OFF,
                                     0, NULL) >= 0) {
                    s->file_size = end;
                }
            }
        }
        qemu_co_mutex_unlock(&s->lock);
    }
    qcow2_free_state(bs);
}

/* ---- zoned devices -------------------------------------------------------------- */

/*
 * Zone model (the rules of Linux null_blk, see docs/zoned.rst).  Per zone
 * we keep 21 bytes: the accepted write pointer, the write pointer covering
 * completed writes only (what we persist), the writes in flight and the
 * condition.  The state changes of a request happen without yielding, so
 * in our single-threaded coroutine model they are atomic: a write is
 * accepted and its wp advanced before its I/O starts, and appends to one
 * zone therefore run concurrently.  mgmt_lock serialises management
 * operations and write-pointer persistence.
 */
struct Qcow2ZonedState {
    uint64_t size;
    uint64_t zone_size;
    uint64_t zone_capacity;
    int zone_bits;
    uint32_t nr_zones;
    uint32_t nr_conv;
    uint32_t max_open;
    uint32_t max_active;
    uint32_t max_append;

    uint64_t *wp;            /* accepted: where the next write must start */
    uint64_t *done_wp;       /* all writes below it completed */
    uint32_t *inflight;      /* accepted writes not yet completed */
    uint8_t *cond;           /* BlockZoneState */

    uint32_t nr_imp_open;
    uint32_t nr_exp_open;
    uint32_t nr_closed;
    uint32_t imp_close_zone_no;  /* round-robin start of implicit close */

    uint8_t *dirty;          /* per region cluster: entries to write back */
    uint32_t region_clusters;
    bool any_dirty;
    CoMutex mgmt_lock;
    CoQueue drained;         /* woken when a zone has no write in flight */
    /* Zones a reset is freeing: writes to them wait (mgmt_lock held). */
    uint32_t resetting_first;
    uint32_t resetting_last;
};

static inline uint64_t zone_start(Qcow2ZonedState *zs, uint32_t z)
{
    return (uint64_t)z << zs->zone_bits;
}

static inline uint64_t zone_len(Qcow2ZonedState *zs, uint32_t z)
{
    return MIN(zs->zone_size, zs->size - zone_start(zs, z));
}

static inline uint64_t zone_cap(Qcow2ZonedState *zs, uint32_t z)
{
    return MIN(zs->zone_capacity, zone_len(zs, z));
}

static void zone_mark_dirty(BDRVQcow2State *s, uint32_t z)
{
    s->zoned->dirty[((uint64_t)z * 8) >> s->cluster_bits] = 1;
    s->zoned->any_dirty = true;
}

/* The wp a zone would have on reopen: set when nothing is in flight. */
static void zone_settle(BDRVQcow2State *s, uint32_t z)
{
    Qcow2ZonedState *zs = s->zoned;

    if (zs->inflight[z] == 0 && zs->done_wp[z] != zs->wp[z]) {
        zs->done_wp[z] = zs->wp[z];
        zone_mark_dirty(s, z);
    }
}

static int zone_check_active(Qcow2ZonedState *zs)
{
    if (!zs->max_active ||
        zs->nr_imp_open + zs->nr_exp_open + zs->nr_closed < zs->max_active) {
        return 0;
    }
    return -EOVERFLOW;
}

static int zone_close(Qcow2ZonedState *zs, uint32_t z)
{
    switch (zs->cond[z]) {
    case BLK_ZS_CLOSED:
        return 0;
    case BLK_ZS_IOPEN:
        zs->nr_imp_open--;
        break;
    case BLK_ZS_EOPEN:
        zs->nr_exp_open--;
        break;
    default:
        return -EIO;
    }
    if (zs->wp[z] == zone_start(zs, z)) {
        zs->cond[z] = BLK_ZS_EMPTY;
    } else {
        zs->cond[z] = BLK_ZS_CLOSED;
        zs->nr_closed++;
    }
    return 0;
}

/* Close one implicitly open zone, round robin from the last one closed. */
static void zone_close_imp_open(Qcow2ZonedState *zs)
{
    uint32_t zno = zs->imp_close_zone_no, i;

    if (zno >= zs->nr_zones || zno < zs->nr_conv) {
        zno = zs->nr_conv;
    }
    for (i = zs->nr_conv; i < zs->nr_zones; i++) {
        uint32_t z = zno;

        if (++zno >= zs->nr_zones) {
            zno = zs->nr_conv;
        }
        if (zs->cond[z] == BLK_ZS_IOPEN) {
            zone_close(zs, z);
            zs->imp_close_zone_no = zno;
            return;
        }
    }
}

static int zone_check_open(Qcow2ZonedState *zs)
{
    if (!zs->max_open || zs->nr_imp_open + zs->nr_exp_open < zs->max_open) {
        return 0;
    }
    if (zs->nr_imp_open && zone_check_active(zs) == 0) {
        zone_close_imp_open(zs);
        return 0;
    }
    return -ETOOMANYREFS;
}

/* Resources for zone @z to become open (from EMPTY or CLOSED). */
static int zone_check_resources(Qcow2ZonedState *zs, uint32_t z)
{
    int ret;

    switch (zs->cond[z]) {
    case BLK_ZS_EMPTY:
        ret = zone_check_active(zs);
        if (ret < 0) {
            return ret;
        }
        /* fall through */
    case BLK_ZS_CLOSED:
        return zone_check_open(zs);
    default:
        return -EIO;
    }
}

/*
 * Accept a write of [*offset, +bytes) (an append when @append: *offset is
 * the zone start and is set to the wp used).  Returns the zone to pass to
 * zone_write_end(), UINT32_MAX for conventional zones, or -errno.
 */
static int64_t zone_write_begin(BDRVQcow2State *s, int64_t *offset,
                                uint64_t bytes, bool append)
{
    Qcow2ZonedState *zs = s->zoned;
    uint32_t z = *offset >> zs->zone_bits;
    uint64_t end;
    int ret;

    if (z >= zs->nr_zones) {
        return -EINVAL;
    }
    if (z < zs->nr_conv) {
        if (append) {
            return -EIO;
        }
        /* Random writes stay inside the conventional zones. */
        if (*offset + bytes > zone_start(zs, zs->nr_conv)) {
            return -EINVAL;
        }
        return UINT32_MAX;
    }
    switch (zs->cond[z]) {
    case BLK_ZS_FULL:
    case BLK_ZS_RDONLY:
    case BLK_ZS_OFFLINE:
        return -EIO;
    default:
        break;
    }
    if (append) {
        *offset = zs->wp[z];
    } else if ((uint64_t)*offset != zs->wp[z] || (bytes & 511)) {
        return -EINVAL;
    }
    end = zone_start(zs, z) + zone_cap(zs, z);
    if (*offset + bytes > end) {
        return -EIO;
    }
    if (zs->cond[z] == BLK_ZS_EMPTY || zs->cond[z] == BLK_ZS_CLOSED) {
        ret = zone_check_resources(zs, z);
        if (ret < 0) {
            return ret;
        }
        if (zs->cond[z] == BLK_ZS_CLOSED) {
            zs->nr_closed--;
        }
        zs->nr_imp_open++;
        zs->cond[z] = BLK_ZS_IOPEN;
    }
    zs->wp[z] += bytes;
    zs->inflight[z]++;
    if (zs->wp[z] == end) {
        if (zs->cond[z] == BLK_ZS_EOPEN) {
            zs->nr_exp_open--;
        } else {
            zs->nr_imp_open--;
        }
        zs->cond[z] = BLK_ZS_FULL;
    }
    return z;
}

/*
 * A failed write gives its range back if no later write was accepted in
 * the zone and it did not fill the zone; otherwise the wp stays advanced
 * and the failed range reads as whatever reached the disk.
 */
static void zone_write_end(BDRVQcow2State *s, int64_t z, uint64_t offset,
                           uint64_t bytes, int ret)
{
    Qcow2ZonedState *zs = s->zoned;

    if (z == UINT32_MAX) {
        return;
    }
    if (ret < 0 && zs->cond[z] != BLK_ZS_FULL &&
        zs->wp[z] == offset + bytes) {
        zs->wp[z] = offset;
        /* Back at the start: EMPTY unless explicitly open. */
        if (offset == zone_start(zs, z) && zs->cond[z] != BLK_ZS_EOPEN &&
            zone_close(zs, z) == 0 && zs->cond[z] == BLK_ZS_CLOSED) {
            zs->nr_closed--;
            zs->cond[z] = BLK_ZS_EMPTY;
        }
    }
    zs->inflight[z]--;
    zone_settle(s, z);
    if (zs->inflight[z] == 0 && !qemu_co_queue_empty(&zs->drained)) {
        qemu_co_queue_restart_all(&zs->drained);
    }
}

static int coroutine_fn zoned_write(BlockDriverState *bs, int64_t *offset,
                                    int64_t bytes, QEMUIOVector *qiov,
                                    size_t qiov_offset, bool append,
                                    BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint32_t zi = *offset >> zs->zone_bits;
    int64_t z;
    int ret;

    /* Data written now must not be freed by a reset still under way. */
    while (zi >= zs->resetting_first && zi <= zs->resetting_last) {
        qemu_co_queue_wait(&zs->drained, NULL);
    }
    z = zone_write_begin(s, offset, bytes, append);
    if (z < 0) {
        return z;
    }
    if (qiov) {
        ret = qcow2_co_pwritev_data(bs, *offset, bytes, qiov, qiov_offset, 0);
    } else {
        ret = qcow2_co_pwrite_zeroes_data(bs, *offset, bytes, flags);
    }
    zone_write_end(s, z, *offset, bytes, ret);
    return ret;
}

/*
 * A regular write crossing zone boundaries is done zone by zone, each
 * part checked on its own, as Linux splits it before a zoned device sees
 * it; like the chained bios there, it fails with the error of the last
 * part that failed.  Coroutine context, no lock held (zoned_write takes
 * what it needs); returns 0 or -errno.
 */
static int coroutine_fn zoned_write_split(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes,
                                          QEMUIOVector *qiov,
                                          size_t qiov_offset,
                                          BdrvRequestFlags flags)
{
    Qcow2ZonedState *zs = ((BDRVQcow2State *)bs->opaque)->zoned;
    uint64_t zend = ((offset >> zs->zone_bits) + 1) << zs->zone_bits;
    int ret = 0;

    if ((uint64_t)(offset + bytes) <= zend) {
        return zoned_write(bs, &offset, bytes, qiov, qiov_offset, false,
                           flags);
    }
    while (bytes > 0) {
        int64_t n = MIN((uint64_t)bytes, zend - offset);
        int64_t off = offset;
        int r = zoned_write(bs, &off, n, qiov, qiov_offset, false, flags);

        if (r < 0) {
            ret = r;
        }
        offset += n;
        qiov_offset += n;
        bytes -= n;
        zend += zs->zone_size;
    }
    return ret;
}

int coroutine_fn qcow2_co_preadv_part(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      size_t qiov_offset,
                                      BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (!zs) {
        return qcow2_co_preadv_data(bs, offset, bytes, qiov, qiov_offset,
                                    flags);
    }
    /* Bytes at or past a write pointer read as zeroes, stale or not. */
    while (bytes > 0) {
        uint32_t z = offset >> zs->zone_bits;
        uint64_t zend = zone_start(zs, z) + zs->zone_size;
        uint64_t n, valid;
        int ret;

        if (z < zs->nr_conv) {
            zend = zone_start(zs, zs->nr_conv);
        }
        n = MIN((uint64_t)bytes, zend - offset);
        if (z < zs->nr_conv) {
            valid = n;
        } else {
            valid = zs->wp[z] > (uint64_t)offset ?
                    MIN(n, zs->wp[z] - offset) : 0;
        }
        if (valid) {
            ret = qcow2_co_preadv_data(bs, offset, valid, qiov, qiov_offset,
                                       flags);
            if (ret < 0) {
                return ret;
            }
        }
        if (valid < n) {
            qemu_iovec_memset(qiov, qiov_offset + valid, 0, n - valid);
        }
        offset += n;
        bytes -= n;
        qiov_offset += n;
    }
    return 0;
}

static int coroutine_fn qcow2_co_pwritev_part(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              QEMUIOVector *qiov,
                                              size_t qiov_offset,
                                              BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->zoned) {
        return qcow2_co_pwritev_data(bs, offset, bytes, qiov, qiov_offset,
                                     flags);
    }
    return zoned_write_split(bs, offset, bytes, qiov, qiov_offset, 0);
}

static int coroutine_fn qcow2_co_pwrite_zeroes(BlockDriverState *bs,
                                               int64_t offset, int64_t bytes,
                                               BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->zoned) {
        return qcow2_co_pwrite_zeroes_data(bs, offset, bytes, flags);
    }
    return zoned_write_split(bs, offset, bytes, NULL, 0, flags);
}

static int coroutine_fn qcow2_co_pdiscard(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (zs) {
        /* Sequential zones free space by reset; discard is a hint. */
        uint64_t conv_end = zone_start(zs, zs->nr_conv);

        if ((uint64_t)offset >= conv_end) {
            return 0;
        }
        bytes = MIN((uint64_t)bytes, conv_end - offset);
    }
    return qcow2_co_pdiscard_data(bs, offset, bytes);
}

static int coroutine_fn qcow2_co_zone_append(BlockDriverState *bs,
                                             int64_t *offset,
                                             QEMUIOVector *qiov,
                                             BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (!zs) {
        return -ENOTSUP;
    }
    if (*offset & (zs->zone_size - 1) || (uint64_t)*offset >= zs->size ||
        qiov->size == 0 || qiov->size % 512 || qiov->size > zs->max_append) {
        return -EINVAL;
    }
    return zoned_write(bs, offset, qiov->size, qiov, 0, true, 0);
}

static int coroutine_fn qcow2_co_zone_report(BlockDriverState *bs,
                                             int64_t offset,
                                             unsigned int *nr_zones,
                                             BlockZoneDescriptor *zones)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t z;
    unsigned int n = 0;

    if (!zs) {
        return -ENOTSUP;
    }
    z = (uint64_t)offset >> zs->zone_bits;
    /* Past the end of a short last zone is past the device: no zones. */
    if (z < zs->nr_zones &&
        (uint64_t)offset >= zone_start(zs, z) + zone_len(zs, z)) {
        z = zs->nr_zones;
    }
    for (; z < zs->nr_zones && n < *nr_zones; z++, n++) {
        BlockZoneDescriptor *d = &zones[n];

        d->start = zone_start(zs, z);
        d->length = zone_len(zs, z);
        d->cap = z < zs->nr_conv ? d->length : zone_cap(zs, z);
        d->wp = z < zs->nr_conv ? d->start + d->length : zs->wp[z];
        d->type = z < zs->nr_conv ? BLK_ZT_CONV : BLK_ZT_SWR;
        d->state = zs->cond[z];
    }
    *nr_zones = n;
    return 0;
}

/* Write the dirty region clusters (the caller made the data durable). */
static int coroutine_fn zoned_write_region(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t per = s->cluster_size / 8;
    uint64_t *buf = NULL;
    uint32_t c;
    int ret = 0;

    zs->any_dirty = false;
    buf = qemu_blockalign(bs->file->bs, s->cluster_size);
    for (c = 0; c < zs->region_clusters; c++) {
        uint64_t first = c * per, i, n;

        if (!zs->dirty[c]) {
            continue;
        }
        zs->dirty[c] = 0;
        n = MIN(per, (uint64_t)zs->nr_zones - first);
        memset(buf, 0, s->cluster_size);
        for (i = 0; i < n; i++) {
            uint64_t z = first + i;

            buf[i] = cpu_to_be64(z < zs->nr_conv ?
                                 zone_start(zs, z) | QCOW2_ZONED_CONV_WP_FLAG :
                                 zs->done_wp[z]);
        }
        ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ZONED_META,
                                            s->zoned_ext.zonedmeta_offset +
                                            c * s->cluster_size,
                                            ROUND_UP(n * 8, 512));
        if (ret >= 0) {
            ret = bdrv_co_pwrite(bs->file, s->zoned_ext.zonedmeta_offset +
                                 c * s->cluster_size, ROUND_UP(n * 8, 512),
                                 buf, 0);
        }
        if (ret < 0) {
            zs->dirty[c] = 1;
            zs->any_dirty = true;
            break;
        }
    }
    qemu_vfree(buf);
    return ret < 0 ? ret : 0;
}

/* Flush data and metadata, then write the dirty entries; mgmt_lock held. */
static int coroutine_fn zoned_persist_locked(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    int ret;

    /* Nothing is written to an image marked corrupt. */
    if (!zs || !zs->any_dirty || bs->read_only || qcow2_is_corrupt(s)) {
        return 0;
    }
    /* A persisted wp must never cover data or metadata not yet durable. */
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    return ret < 0 ? ret : zoned_write_region(bs);
}

int coroutine_fn qcow2_zoned_persist(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!s->zoned) {
        return 0;
    }
    qemu_co_mutex_lock(&s->zoned->mgmt_lock);
    ret = zoned_persist_locked(bs);
    qemu_co_mutex_unlock(&s->zoned->mgmt_lock);
    return ret;
}

/* One zone management operation on sequential zone @z (null_blk rules). */
static int zone_mgmt_one(Qcow2ZonedState *zs, BlockZoneOp op, uint32_t z)
{
    uint8_t c = zs->cond[z];
    int ret;

    switch (op) {
    case BLK_ZO_OPEN:
        if (c == BLK_ZS_EOPEN) {
            return 0;
        }
        if (c == BLK_ZS_IOPEN) {
            zs->nr_imp_open--;
        } else if (c == BLK_ZS_EMPTY || c == BLK_ZS_CLOSED) {
            ret = zone_check_resources(zs, z);
            if (ret < 0) {
                return ret;
            }
            if (c == BLK_ZS_CLOSED) {
                zs->nr_closed--;
            }
        } else {
            return -EIO;
        }
        zs->cond[z] = BLK_ZS_EOPEN;
        zs->nr_exp_open++;
        return 0;
    case BLK_ZO_CLOSE:
        return zone_close(zs, z);
    case BLK_ZO_FINISH:
        switch (c) {
        case BLK_ZS_FULL:
            return 0;
        case BLK_ZS_EMPTY:
        case BLK_ZS_CLOSED:
            ret = zone_check_resources(zs, z);
            if (ret < 0) {
                return ret;
            }
            if (c == BLK_ZS_CLOSED) {
                zs->nr_closed--;
            }
            break;
        case BLK_ZS_IOPEN:
            zs->nr_imp_open--;
            break;
        case BLK_ZS_EOPEN:
            zs->nr_exp_open--;
            break;
        default:
            return -EIO;
        }
        zs->cond[z] = BLK_ZS_FULL;
        zs->wp[z] = zone_start(zs, z) + zone_len(zs, z);
        return 0;
    case BLK_ZO_RESET:
        switch (c) {
        case BLK_ZS_EMPTY:
            return 0;
        case BLK_ZS_IOPEN:
            zs->nr_imp_open--;
            break;
        case BLK_ZS_EOPEN:
            zs->nr_exp_open--;
            break;
        case BLK_ZS_CLOSED:
            zs->nr_closed--;
            break;
        case BLK_ZS_FULL:
            break;
        default:
            return -EIO;
        }
        zs->cond[z] = BLK_ZS_EMPTY;
        zs->wp[z] = zone_start(zs, z);
        return 0;
    }
    return -EINVAL;
}

/*
 * Free the clusters wholly inside [start, end) (full discard, so the image
 * stays bounded under write/reset cycles); with @zero_partial also make
 * the rest read as zeroes, for a finish that exposes [start, end).
 */
static int coroutine_fn zone_drop_data(BlockDriverState *bs, uint64_t start,
                                       uint64_t end, bool zero_partial)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t astart = ROUND_UP(start, s->cluster_size);
    uint64_t aend = end == s->size ? ROUND_UP(end, s->cluster_size)
                                   : start_of_cluster(s, end);
    int ret = 0;

    if (zero_partial) {
        return start < end ?
               qcow2_co_pwrite_zeroes_data(bs, start, end - start,
                                           BDRV_REQ_MAY_UNMAP) : 0;
    }
    if (astart < aend) {
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_cluster_discard(bs, astart, aend - astart, true);
        qemu_co_mutex_unlock(&s->lock);
    }
    return ret;
}

/*
 * Open/close/finish/reset every zone of [offset, offset + len), any
 * alignment on entry (checked here: -EINVAL).  Coroutine context; takes
 * mgmt_lock.  Every zone is tried; returns 0, the error of the last zone
 * that failed, or an I/O error of persisting the write pointers.
 */
static int coroutine_fn qcow2_co_zone_mgmt(BlockDriverState *bs,
                                           BlockZoneOp op, int64_t offset,
                                           int64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t end = offset + len;
    uint32_t first, last, z;
    int zone_err = 0;
    int ret = 0;

    if (!zs) {
        return -ENOTSUP;
    }
    if (offset < 0 || len <= 0 || (offset & (zs->zone_size - 1)) ||
        end > zs->size || ((len & (zs->zone_size - 1)) && end != zs->size)) {
        return -EINVAL;
    }
    first = offset >> zs->zone_bits;
    last = (end - 1) >> zs->zone_bits;
    if (first < zs->nr_conv) {
        /*
         * Reset of the whole device skips conventional zones (null_blk's
         * reset all); any other range fails on them but, as Linux issues
         * one request per zone, still acts on its sequential zones.
         */
        if (op != BLK_ZO_RESET || offset != 0 || end != zs->size) {
            zone_err = -EIO;
        }
        if (last < zs->nr_conv) {
            return zone_err;
        }
        first = zs->nr_conv;
    }

    qemu_co_mutex_lock(&zs->mgmt_lock);
    if (op == BLK_ZO_RESET) {
        zs->resetting_first = first;
        zs->resetting_last = last;
    }
    for (z = first; z <= last; z++) {
        uint64_t old_wp = zs->wp[z];
        int r = zone_mgmt_one(zs, op, z);

        /* Every zone is tried; the error of the last failing one wins. */
        if (r < 0) {
            zone_err = r;
            continue;
        }
        if (zs->wp[z] == old_wp) {
            continue;
        }
        /* In-flight writes settle the persisted wp when they end. */
        zone_settle(s, z);
        if (op == BLK_ZO_FINISH) {
            /* Stale clusters past the old wp must not become visible. */
            ret = zone_drop_data(bs, old_wp, zs->wp[z], true);
        }
        if (ret < 0) {
            break;
        }
    }
    /* Management operations are durable when they complete. */
    if (ret >= 0) {
        ret = zoned_persist_locked(bs);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret >= 0 && op == BLK_ZO_RESET) {
        /* Only after the reset wp is durable: data stays until then. */
        for (z = first; z <= last && ret >= 0; z++) {
            /* Writes accepted before the reset must land before it. */
            while (zs->inflight[z]) {
                qemu_co_queue_wait(&zs->drained, NULL);
            }
            if (zs->cond[z] != BLK_ZS_EMPTY) {
                continue;   /* its reset failed (read-only, offline) */
            }
            ret = zone_drop_data(bs, zone_start(zs, z),
                                 zone_start(zs, z) + zone_len(zs, z), false);
        }
    }
    zs->resetting_first = UINT32_MAX;
    zs->resetting_last = 0;
    qemu_co_queue_restart_all(&zs->drained);
    qemu_co_mutex_unlock(&zs->mgmt_lock);
    return ret < 0 ? ret : zone_err;
}

/* Conditions are derived: EMPTY at start, FULL at capacity, else CLOSED. */
int coroutine_fn qcow2_zoned_open(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZonedHeaderExt *ext = &s->zoned_ext;
    Qcow2ZonedState *zs;
    uint64_t region;
    uint32_t z;
    int ol, saved_ol, ret;

    if (!s->has_zoned_ext) {
        return 0;
    }
    /* Whatever overlap-check says: a bad region is refused at open. */
    saved_ol = s->overlap_check;
    s->overlap_check = QCOW2_OL_CACHED;
    ol = qcow2_check_metadata_overlap(bs, QCOW2_OL_ZONED_META,
                                      ext->zonedmeta_offset,
                                      ext->zonedmeta_size);
    s->overlap_check = saved_ol;
    if (ol) {
        error_setg(errp, "Invalid zoned extension: zonedmeta_offset 0x%"
                   PRIx64 ": the write-pointer region overlaps other "
                   "metadata", ext->zonedmeta_offset);
        return -EINVAL;
    }
    zs = g_new0(Qcow2ZonedState, 1);
    zs->size = s->size;
    zs->zone_size = ext->zone_size;
    zs->zone_capacity = ext->zone_capacity;
    zs->zone_bits = ctz64(ext->zone_size);
    zs->nr_zones = ext->nr_zones;
    zs->nr_conv = ext->conventional_zones;
    zs->max_open = ext->max_open_zones;
    zs->max_active = ext->max_active_zones;
    zs->max_append = ext->max_append_bytes;
    qemu_co_mutex_init(&zs->mgmt_lock);
    qemu_co_queue_init(&zs->drained);
    zs->resetting_first = UINT32_MAX;
    region = ROUND_UP(ext->zonedmeta_size, 512);
    zs->region_clusters = DIV_ROUND_UP(ext->zonedmeta_size, s->cluster_size);
    zs->wp = g_try_malloc(region);
    zs->done_wp = g_try_new(uint64_t, zs->nr_zones);
    zs->inflight = g_try_new0(uint32_t, zs->nr_zones);
    zs->cond = g_try_malloc(zs->nr_zones);
    zs->dirty = g_try_malloc0(zs->region_clusters);
    s->zoned = zs;
    if (!zs->wp || !zs->done_wp || !zs->inflight || !zs->cond ||
        !zs->dirty) {
        error_setg(errp, "Could not allocate the zone state");
        return -ENOMEM;
    }
    /* One read of the whole region, one pass over it. */
    ret = bdrv_co_pread(bs->file, ext->zonedmeta_offset,
                        MIN(region, (uint64_t)s->file_size -
                            ext->zonedmeta_offset), zs->wp, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read the write pointers");
        return ret;
    }
    for (z = 0; z < zs->nr_zones; z++) {
        uint64_t start = zone_start(zs, z), wp = be64_to_cpu(zs->wp[z]);
        uint64_t cap_end = start + zone_cap(zs, z);
        uint64_t len_end = start + zone_len(zs, z);

        if (z < zs->nr_conv) {
            /* The header is authoritative; check reports mismatches. */
            zs->wp[z] = zs->done_wp[z] = len_end;
            zs->cond[z] = BLK_ZS_NOT_WP;
            continue;
        }
        if (wp < start || (wp > cap_end && wp != len_end)) {
            if (!(bs->open_flags & BDRV_O_CHECK)) {
                error_setg(errp, "Invalid zoned metadata: write pointer 0x%"
                           PRIx64 " of zone %u lies outside the zone "
                           "[0x%" PRIx64 ", 0x%" PRIx64 "]", wp, z, start,
                           len_end);
                return -EINVAL;
            }
            /*
             * Opened for check: keep going with the zone finished in
             * memory; only a repair writes it back.
             */
            wp = len_end;
        }
        zs->wp[z] = zs->done_wp[z] = wp;
        if (wp == start) {
            zs->cond[z] = BLK_ZS_EMPTY;
        } else if (wp >= cap_end) {
            zs->cond[z] = BLK_ZS_FULL;
        } else {
            zs->cond[z] = BLK_ZS_CLOSED;
            zs->nr_closed++;
        }
    }
    qcow2_meta_filter_add(s, ext->zonedmeta_offset, ext->zonedmeta_size);
    return 0;
}

void qcow2_zoned_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (zs) {
        g_free(zs->wp);
        g_free(zs->done_wp);
        g_free(zs->inflight);
        g_free(zs->cond);
        g_free(zs->dirty);
        g_free(zs);
        s->zoned = NULL;
    }
}

int coroutine_fn qcow2_zoned_check(BlockDriverState *bs,
                                   BdrvCheckResult *res, BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    bool repair = (fix & BDRV_FIX_ERRORS) && !bs->read_only;
    const char *what = repair ? "Repairing" : "ERROR";
    uint64_t *raw;
    uint32_t z, bad = 0;
    int ret;

    if (!zs) {
        return 0;
    }
    /* Compare the region on disk with what open made of it. */
    raw = g_try_malloc(ROUND_UP(s->zoned_ext.zonedmeta_size, 512));
    if (!raw) {
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, s->zoned_ext.zonedmeta_offset,
                        s->zoned_ext.zonedmeta_size, raw, 0);
    if (ret < 0) {
        g_free(raw);
        res->check_errors++;
        return ret;
    }
    for (z = 0; z < zs->nr_zones; z++) {
        uint64_t e = be64_to_cpu(raw[z]), start = zone_start(zs, z);

        if (z < zs->nr_conv) {
            if (e != (start | QCOW2_ZONED_CONV_WP_FLAG)) {
                qcow2_check_msg(s, "%s zone %u: conventional entry 0x%" PRIx64
                        " -> 0x%" PRIx64 "\n", what, z, e,
                        start | QCOW2_ZONED_CONV_WP_FLAG);
                bad++;
            }
        } else if (e != zs->done_wp[z]) {
            /* Open replaced a write pointer outside its zone. */
            qcow2_check_msg(s, "%s zone %u: write pointer 0x%" PRIx64 " outside "
                    "[0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64 "\n",
                    what, z, e, start, start + zone_len(zs, z),
                    zs->done_wp[z]);
            bad++;
        }
    }
    g_free(raw);
    if (!bad) {
        return 0;
    }
    if (!repair) {
        res->corruptions += bad;
        return 0;
    }
    /* Rewrite the whole region from the repaired in-memory state. */
    memset(zs->dirty, 1, zs->region_clusters);
    zs->any_dirty = true;
    ret = bdrv_co_flush(bs->file->bs);
    if (ret >= 0) {
        ret = zoned_write_region(bs);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        res->check_errors++;
        res->corruptions += bad;
        return ret;
    }
    res->corruptions_fixed += bad;
    return 0;
}

static void qcow2_zoned_refresh_limits(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (!zs) {
        return;
    }
    bs->bl.zoned = BLK_Z_HM;
    bs->bl.zone_size = zs->zone_size;
    bs->bl.zone_capacity = zs->zone_capacity;
    bs->bl.nr_zones = zs->nr_zones;
    bs->bl.nr_conv_zones = zs->nr_conv;
    bs->bl.max_open_zones = zs->max_open;
    bs->bl.max_active_zones = zs->max_active;
    bs->bl.max_append_sectors = zs->max_append / BDRV_SECTOR_SIZE;
    bs->bl.write_granularity = BDRV_SECTOR_SIZE;
}

/* ---- status, info ------------------------------------------------------------------------ */

static int coroutine_fn qcow2_co_block_status(BlockDriverState *bs,
                                              bool want_zero, int64_t offset,
                                              int64_t bytes, int64_t *pnum,
                                              int64_t *map,
                                              BlockDriverState **file)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t cur = bytes, host;
    QCow2ClusterType type;
    int ret;

    if (zs && offset >> zs->zone_bits >= zs->nr_conv) {
        /* At and past the write pointer: zeroes, whatever is stored. */
        uint32_t z = offset >> zs->zone_bits;

        if ((uint64_t)offset >= zs->wp[z]) {
            *pnum = MIN((uint64_t)bytes,
                        zone_start(zs, z) + zone_len(zs, z) - offset);
            return BDRV_BLOCK_ZERO;
        }
        cur = MIN(cur, zs->wp[z] - offset);
    }
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

static int64_t coroutine_fn qcow2_co_getlength(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    return s->size;
}

static int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcow2State *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    bdi->vm_state_offset = qcow2_vm_state_offset(s);
    bdi->is_dirty = !!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY);
    return 0;
}

static QObject *qcow2_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QObject *top = qobj_dict();
    QObject *data = qobj_dict();

    qdict_obj_put_str(data, "compat", s->qcow_version == 2 ? "0.10" : "1.1");
    qdict_obj_put_str(data, "compression-type",
                      s->compression_type == QCOW2_COMPRESSION_TYPE_ZSTD
                      ? "zstd" : "zlib");
    if (s->qcow_version >= 3) {
        qdict_obj_put_bool(data, "lazy-refcounts",
                           s->compatible_features &
                           QCOW2_COMPAT_LAZY_REFCOUNTS);
    }
    qdict_obj_put_int(data, "refcount-bits", s->refcount_bits);
    if (s->qcow_version >= 3) {
        qdict_obj_put_bool(data, "corrupt", qcow2_is_corrupt(s));
        qdict_obj_put_bool(data, "extended-l2", false);
    }
    qdict_obj_put_str(top, "type", "qcow2");
    qdict_obj_put(top, "data", data);
    return top;
}

BlockDriver bdrv_qcow2 = {
    .format_name                = "qcow2",
    .instance_size              = sizeof(BDRVQcow2State),
    .is_format                  = true,
    .supports_backing           = true,
    .bdrv_probe                 = qcow2_probe,
    .bdrv_co_open               = qcow2_co_open,
    .bdrv_co_activate           = qcow2_co_activate,
    .bdrv_co_close              = qcow2_co_close,
    .bdrv_refresh_limits        = qcow2_refresh_limits,
    .bdrv_co_preadv_part        = qcow2_co_preadv_part,
    .bdrv_co_pwritev_part       = qcow2_co_pwritev_part,
    .bdrv_co_pwritev_compressed_part = qcow2_co_pwritev_compressed_part,
    .bdrv_co_pwrite_zeroes      = qcow2_co_pwrite_zeroes,
    .bdrv_co_pdiscard           = qcow2_co_pdiscard,
    .bdrv_co_make_empty         = qcow2_co_make_empty,
    .bdrv_co_flush_to_os        = qcow2_co_flush_to_os,
    .bdrv_co_block_status       = qcow2_co_block_status,
    .bdrv_co_getlength          = qcow2_co_getlength,
    .bdrv_co_truncate           = qcow2_co_truncate,
    .bdrv_co_create_opts        = qcow2_co_create_opts,
    .create_opts                = &qcow2_create_opts,
    .bdrv_create_opts_defaults  = qcow2_zoned_create_opts_defaults,
    .bdrv_co_amend              = qcow2_co_amend,
    .amend_opts                 = &qcow2_amend_opts,
    .bdrv_measure               = qcow2_measure,
    .bdrv_get_info              = qcow2_get_info,
    .bdrv_get_specific_info     = qcow2_get_specific_info,
    .bdrv_query_snapshots       = qcow2_query_snapshots,
    .bdrv_co_snapshot_create    = qcow2_snapshot_create,
    .bdrv_co_snapshot_goto      = qcow2_snapshot_goto,
    .bdrv_co_snapshot_delete    = qcow2_snapshot_delete,
    .bdrv_snapshot_list         = qcow2_snapshot_list,
    .bdrv_co_check              = qcow2_co_check,
    .bdrv_co_change_backing_file = qcow2_co_change_backing_file,
    .bdrv_co_zone_report        = qcow2_co_zone_report,
    .bdrv_co_zone_mgmt          = qcow2_co_zone_mgmt,
    .bdrv_co_zone_append        = qcow2_co_zone_append,
};
