/*
 * qcow2 format driver: open/close, header, request paths, driver table.
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

/* Names of the features this implementation knows (feature table). */
static const Qcow2Feature qcow2_known_features[] = {
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_DIRTY_BITNR,
      "dirty bit" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_CORRUPT_BITNR,
      "corrupt bit" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_DATA_FILE_BITNR,
      "external data file" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_COMPRESSION_BITNR,
      "compression type" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_EXTL2_BITNR,
      "extended L2 entries" },
    { QCOW2_FEAT_TYPE_COMPATIBLE, QCOW2_COMPAT_LAZY_REFCOUNTS_BITNR,
      "lazy refcounts" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, QCOW2_AUTOCLEAR_BITMAPS_BITNR,
      "bitmaps" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, QCOW2_AUTOCLEAR_DATA_FILE_RAW_BITNR,
      "raw external data" },
};

/* Names we use when the image has none for a bit we refuse. */
static const Qcow2Feature qcow2_refused_features[] = {
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_DATA_FILE_BITNR,
      "external data file" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_EXTL2_BITNR,
      "extended L2 entries" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_ZONED_BITNR,
      "zoned" },
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
    if (entries && s->file_size >= 0 &&
        offset + entries * entry_len > (uint64_t)s->file_size) {
        error_setg(errp, "%s is beyond the end of the image file",
                   table_name);
        return -EINVAL;
    }
    return 0;
}

static void add_feature_name(GString *str, const char *name)
{
    if (str->len) {
        g_string_append(str, ", ");
    }
    g_string_append(str, name);
}

static const char *feature_name(const Qcow2Feature *table, int n,
                                int type, int bit)
{
    static char buf[48];
    int i;

    for (i = 0; i < n; i++) {
        if (table[i].type == type && table[i].bit == bit) {
            memcpy(buf, table[i].name, sizeof(table[i].name));
            buf[sizeof(table[i].name)] = '\0';
            return buf;
        }
    }
    return NULL;
}

static void report_unsupported_feature(BDRVQcow2State *s, Error **errp,
                                       uint64_t mask)
{
    g_autoptr(GString) str = g_string_new("");
    int bit;

    for (bit = 0; bit < 64; bit++) {
        const char *name;

        if (!(mask & (UINT64_C(1) << bit))) {
            continue;
        }
        name = feature_name(s->feature_table, s->nb_features,
                            QCOW2_FEAT_TYPE_INCOMPATIBLE, bit);
        if (!name) {
            name = feature_name(qcow2_refused_features,
                                ARRAY_SIZE(qcow2_refused_features),
                                QCOW2_FEAT_TYPE_INCOMPATIBLE, bit);
        }
        if (name) {
            add_feature_name(str, name);
        } else {
            g_autofree char *unk =
                g_strdup_printf("Unknown incompatible feature: %" PRIx64,
                                UINT64_C(1) << bit);
            add_feature_name(str, unk);
        }
    }
    error_setg(errp, "Unsupported qcow2 feature(s): %s", str->str);
}

static void free_unknown_exts(BDRVQcow2State *s)
{
    while (s->unknown_exts) {
        Qcow2UnknownHeaderExtension *e = s->unknown_exts;

        s->unknown_exts = e->next;
        g_free(e);
    }
}

/* Parse the extensions in [start, end) of the first cluster @buf. */
static int read_extensions(BlockDriverState *bs, const uint8_t *buf,
                           uint64_t start, uint64_t end, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2UnknownHeaderExtension **tail = &s->unknown_exts;
    uint64_t offset = start;

    while (offset + sizeof(QCowExtension) <= end) {
        uint32_t magic = ldbe32_p(buf + offset);
        uint32_t len = ldbe32_p(buf + offset + 4);
        const uint8_t *data;

        offset += sizeof(QCowExtension);
        if (magic == QCOW2_EXT_MAGIC_END) {
            break;
        }
        if (len > end - offset) {
            error_setg(errp, "Header extension too large");
            return -EINVAL;
        }
        data = buf + offset;

        switch (magic) {
        case QCOW2_EXT_MAGIC_BACKING_FORMAT:
            if (len >= sizeof(bs->backing_format)) {
                error_setg(errp, "ERROR: ext_backing_format: len=%" PRIu32
                           " too large (>=%zu)", len,
                           sizeof(bs->backing_format));
                return -EINVAL;
            }
            g_free(s->image_backing_format);
            s->image_backing_format = g_strndup((const char *)data, len);
            break;
        case QCOW2_EXT_MAGIC_FEATURE_TABLE:
            g_free(s->feature_table);
            s->nb_features = len / sizeof(Qcow2Feature);
            s->feature_table = g_memdup2(data,
                                         s->nb_features * sizeof(Qcow2Feature));
            break;
        case QCOW2_EXT_MAGIC_BITMAPS:
            if (len != sizeof(Qcow2BitmapHeaderExt)) {
                error_setg(errp, "bitmaps_ext: Invalid extension length");
                return -EINVAL;
            }
            memcpy(&s->bitmaps_ext, data, sizeof(s->bitmaps_ext));
            s->has_bitmaps_ext = true;
            break;
        case QCOW2_EXT_MAGIC_CRYPTO_HEADER:
        case QCOW2_EXT_MAGIC_DATA_FILE:
        default: {
            /* Kept verbatim and written back on header updates. */
            Qcow2UnknownHeaderExtension *e =
                g_malloc0(sizeof(*e) + len);

            e->magic = magic;
            e->len = len;
            memcpy(e->data, data, len);
            *tail = e;
            tail = &e->next;
            break;
        }
        }
        offset += ROUND_UP(len, 8);
    }
    return 0;
}

static size_t header_ext_add(uint8_t *buf, size_t space, uint32_t magic,
                             const void *data, uint32_t len)
{
    size_t need = sizeof(QCowExtension) + ROUND_UP(len, 8);

    if (need > space) {
        return SIZE_MAX;
    }
    stbe32_p(buf, magic);
    stbe32_p(buf + 4, len);
    memcpy(buf + 8, data, len);
    memset(buf + 8 + len, 0, ROUND_UP(len, 8) - len);
    return need;
}

int coroutine_fn qcow2_update_header(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    size_t buflen = s->cluster_size;
    uint8_t *buf = qemu_blockalign0(bs->file->bs, buflen);
    QCowHeader *h = (QCowHeader *)buf;
    size_t off, n;
    Qcow2UnknownHeaderExtension *e;
    uint32_t header_length;
    int ret;

    if (s->qcow_version >= 3) {
        header_length = sizeof(QCowHeader) + s->unknown_header_fields_size;
    } else {
        header_length = QCOW2_V2_HEADER_LENGTH;
    }
    if (header_length > buflen) {
        ret = -ENOSPC;
        goto out;
    }
    h->magic = cpu_to_be32(QCOW_MAGIC);
    h->version = cpu_to_be32(s->qcow_version);
    h->cluster_bits = cpu_to_be32(s->cluster_bits);
    h->size = cpu_to_be64(s->size);
    h->crypt_method = cpu_to_be32(s->crypt_method_header);
    h->l1_size = cpu_to_be32(s->l1_size);
    h->l1_table_offset = cpu_to_be64(s->l1_table_offset);
    h->refcount_table_offset = cpu_to_be64(s->refcount_table_offset);
    h->refcount_table_clusters =
        cpu_to_be32(((uint64_t)s->refcount_table_size * 8) >> s->cluster_bits);
    h->nb_snapshots = cpu_to_be32(s->nb_snapshots);
    h->snapshots_offset = cpu_to_be64(s->snapshots_offset);
    if (s->qcow_version >= 3) {
        h->incompatible_features = cpu_to_be64(s->incompatible_features);
        h->compatible_features = cpu_to_be64(s->compatible_features);
        h->autoclear_features = cpu_to_be64(s->autoclear_features);
        h->refcount_order = cpu_to_be32(s->refcount_order);
        h->header_length = cpu_to_be32(header_length);
        h->compression_type = s->compression_type;
        if (s->unknown_header_fields_size) {
            memcpy(buf + sizeof(QCowHeader), s->unknown_header_fields,
                   s->unknown_header_fields_size);
        }
    }
    off = header_length;

    if (s->image_backing_format) {
        n = header_ext_add(buf + off, buflen - off,
                           QCOW2_EXT_MAGIC_BACKING_FORMAT,
                           s->image_backing_format,
                           strlen(s->image_backing_format));
        if (n == SIZE_MAX) {
            ret = -ENOSPC;
            goto out;
        }
        off += n;
    }
    if (s->qcow_version >= 3) {
        n = header_ext_add(buf + off, buflen - off,
                           QCOW2_EXT_MAGIC_FEATURE_TABLE,
                           qcow2_known_features, sizeof(qcow2_known_features));
        if (n == SIZE_MAX) {
            /* Optional: leave it out of tiny clusters. */
            n = 0;
        }
        off += n;
    }
    if (s->has_bitmaps_ext) {
        n = header_ext_add(buf + off, buflen - off, QCOW2_EXT_MAGIC_BITMAPS,
                           &s->bitmaps_ext, sizeof(s->bitmaps_ext));
        if (n == SIZE_MAX) {
            ret = -ENOSPC;
            goto out;
        }
        off += n;
    }
    for (e = s->unknown_exts; e; e = e->next) {
        n = header_ext_add(buf + off, buflen - off, e->magic, e->data, e->len);
        if (n == SIZE_MAX) {
            ret = -ENOSPC;
            goto out;
        }
        off += n;
    }
    n = header_ext_add(buf + off, buflen - off, QCOW2_EXT_MAGIC_END, NULL, 0);
    if (n == SIZE_MAX) {
        ret = -ENOSPC;
        goto out;
    }
    off += n;

    if (s->image_backing_file) {
        size_t len = strlen(s->image_backing_file);

        if (len > buflen - off || len > 1023) {
            ret = -ENOSPC;
            goto out;
        }
        memcpy(buf + off, s->image_backing_file, len);
        h->backing_file_offset = cpu_to_be64(off);
        h->backing_file_size = cpu_to_be32(len);
        s->backing_file_offset = off;
        s->backing_file_size = len;
        off += len;
    } else {
        s->backing_file_offset = 0;
        s->backing_file_size = 0;
    }
    s->header_length = header_length;

    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_MAIN_HEADER, 0, off);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_co_pwrite(bs->file, 0, ROUND_UP(off, 512), buf, 0);
out:
    qemu_vfree(buf);
    return ret < 0 ? ret : 0;
}

static int coroutine_fn write_incompat_features(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t val = cpu_to_be64(s->incompatible_features);

    return bdrv_co_pwrite_sync(bs->file,
                               offsetof(QCowHeader, incompatible_features),
                               sizeof(val), &val, 0);
}

int coroutine_fn qcow2_mark_dirty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if ((s->incompatible_features & QCOW2_INCOMPAT_DIRTY) ||
        s->qcow_version < 3) {
        return 0;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        return ret;
    }
    s->incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    ret = write_incompat_features(bs);
    if (ret < 0) {
        s->incompatible_features &= ~(uint64_t)QCOW2_INCOMPAT_DIRTY;
    }
    return ret;
}

int coroutine_fn qcow2_mark_clean(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        return 0;
    }
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        return ret;
    }
    s->incompatible_features &= ~(uint64_t)QCOW2_INCOMPAT_DIRTY;
    return write_incompat_features(bs);
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
     * Extend ahead in big steps so that allocating writes land inside the
     * file and do not each have to extend it; the unused tail has no
     * refcount and is trimmed on close.
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

/* ---- open / close ------------------------------------------------------------------ */

static int coroutine_fn read_snapshot_table(BlockDriverState *bs,
                                            Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t offset = s->snapshots_offset;
    uint32_t i;
    int ret;

    if (!s->nb_snapshots) {
        return 0;
    }
    s->snapshots = g_new0(QCowSnapshot, s->nb_snapshots);
    for (i = 0; i < s->nb_snapshots; i++) {
        QCowSnapshotHeader h;
        uint32_t extra, id_len, name_len;

        offset = ROUND_UP(offset, 8);
        ret = bdrv_co_pread(bs->file, offset, sizeof(h), &h, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read snapshot table");
            return ret;
        }
        offset += sizeof(h);
        extra = be32_to_cpu(h.extra_data_size);
        id_len = be16_to_cpu(h.id_str_size);
        name_len = be16_to_cpu(h.name_size);
        if (extra > 1024) {
            error_setg(errp, "Too much extra metadata in snapshot table "
                       "entry %u", i);
            return -EFBIG;
        }
        s->snapshots[i].l1_table_offset = be64_to_cpu(h.l1_table_offset);
        s->snapshots[i].l1_size = be32_to_cpu(h.l1_size);
        s->snapshots[i].vm_state_size = be32_to_cpu(h.vm_state_size);
        offset += extra + id_len + name_len;
        if (offset - s->snapshots_offset > QCOW_MAX_SNAPSHOTS * 1024ULL) {
            error_setg(errp, "Snapshot table is too big");
            return -EFBIG;
        }
        ret = qcow2_validate_table(bs, s->snapshots[i].l1_table_offset,
                                   s->snapshots[i].l1_size, 8,
                                   QCOW_MAX_L1_SIZE, "Snapshot L1 table",
                                   errp);
        if (ret < 0) {
            return ret;
        }
    }
    s->snapshots_size = offset - s->snapshots_offset;
    return 0;
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
               QCOW2_OL_INACTIVE_L1 | QCOW2_OL_BITMAP_DIRECTORY;
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
    uint32_t i;

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
    free_unknown_exts(s);
    if (s->snapshots) {
        for (i = 0; i < s->nb_snapshots; i++) {
            g_free(s->snapshots[i].id_str);
            g_free(s->snapshots[i].name);
        }
        g_free(s->snapshots);
        s->snapshots = NULL;
    }
    qemu_vfree(s->zero_cluster);
    s->zero_cluster = NULL;
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
                   "must be set if compression type is not zlib");
        ret = -EINVAL;
        goto fail;
    }
    if (s->compression_type == QCOW2_COMPRESSION_TYPE_ZLIB &&
        (s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit "
                   "must not be set if compression type is zlib");
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
    ret = read_extensions(bs, first, s->header_length, ext_end, errp);
    if (ret < 0) {
        goto fail;
    }

    if (s->incompatible_features & ~(uint64_t)QCOW2_INCOMPAT_MASK) {
        report_unsupported_feature(s, errp, s->incompatible_features &
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

    s->crypt_method_header = be32_to_cpu(header.crypt_method);
    if (s->crypt_method_header) {
        error_setg(errp, "qcow2: Encrypted images are not supported "
                   "(encryption method %u)", s->crypt_method_header);
        ret = -ENOTSUP;
        goto fail;
    }

    if (s->refcount_order > 6) {
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
    s->l1_vm_state_index = size_to_l1(s, s->size);

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
    if (s->nb_snapshots > QCOW_MAX_SNAPSHOTS) {
        error_setg(errp, "Too many snapshots");
        ret = -EINVAL;
        goto fail;
    }
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
    ret = read_snapshot_table(bs, errp);
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

    if (!bs->read_only) {
        bool update = false;

        /* Unknown autoclear bits: the data they describe may go stale. */
        if (s->autoclear_features & ~(uint64_t)QCOW2_AUTOCLEAR_MASK) {
            s->autoclear_features &= QCOW2_AUTOCLEAR_MASK;
            update = true;
        }
        if ((s->incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
            !(flags & BDRV_O_CHECK)) {
            BdrvCheckResult res;

            memset(&res, 0, sizeof(res));
            ret = qcow2_co_check(bs, &res, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
            if (ret < 0 || res.corruptions || res.check_errors) {
                error_setg_errno(errp, ret < 0 ? -ret : EIO,
                                 "Could not repair dirty image");
                ret = ret < 0 ? ret : -EIO;
                goto fail;
            }
            ret = qcow2_mark_clean(bs);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Could not update qcow2 header");
                goto fail;
            }
        }
        if (update) {
            ret = qcow2_update_header(bs);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Could not update qcow2 header");
                goto fail;
            }
        }
    }

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
    return ret;
}

static void coroutine_fn qcow2_co_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (!bs->read_only && s->l2_table_cache) {
        int ret;

        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
        if (ret >= 0) {
            ret = qcow2_cache_flush(bs, s->refcount_block_cache);
        }
        if (ret >= 0 && s->use_lazy_refcounts) {
            ret = qcow2_mark_clean(bs);
        }
        if (ret >= 0 && s->file_grown) {
            /* Give back the space reserved ahead of allocation. */
            int64_t end = qcow2_get_last_allocated_end(bs);

            if (end > 0 && end < s->file_size) {
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

static int coroutine_fn qcow2_co_preadv_part(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             QEMUIOVector *qiov,
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

/* Fill @buf with what the guest currently reads at [offset, +bytes). */
static int coroutine_fn cow_read(BlockDriverState *bs, uint64_t offset,
                                 uint64_t bytes, void *buf)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes);
    return qcow2_co_preadv_part(bs, offset, bytes, &qiov, 0, 0);
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

static int coroutine_fn qcow2_co_pwritev_part(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              QEMUIOVector *qiov,
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

        if (host) {
            /* Only the constant-time overlap checks on this path. */
            ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_FAST_PATH_IGN,
                                                host, bytes);
            if (ret < 0) {
                return ret;
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

static int coroutine_fn
qcow2_co_pwritev_compressed_part(BlockDriverState *bs, int64_t offset,
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
    /* Several clusters: compress each. */
    while (bytes > s->cluster_size) {
        ret = qcow2_co_pwritev_compressed_part(bs, offset, s->cluster_size,
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
        ret = qcow2_co_pwritev_part(bs, offset, bytes, qiov, qiov_offset, 0);
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
    return qcow2_co_pwritev_part(bs, offset, bytes, &qiov, 0, 0);
}

static int coroutine_fn qcow2_co_pwrite_zeroes(BlockDriverState *bs,
                                               int64_t offset, int64_t bytes,
                                               BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t end = offset + bytes;
    int64_t astart = ROUND_UP(offset, s->cluster_size);
    int64_t aend = start_of_cluster(s, end);
    int ret;

    if (qcow2_is_corrupt(s)) {
        return -EIO;
    }
    /* The tail of the image counts as a whole cluster. */
    if ((uint64_t)end == s->size) {
        aend = ROUND_UP(end, s->cluster_size);
    }
    if (astart >= aend) {
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

static int coroutine_fn qcow2_co_pdiscard(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t end = offset + bytes;
    int64_t astart = ROUND_UP(offset, s->cluster_size);
    int64_t aend = start_of_cluster(s, end);
    int ret;

    if (qcow2_is_corrupt(s)) {
        return -EIO;
    }
    if ((uint64_t)end == s->size) {
        aend = ROUND_UP(end, s->cluster_size);
    }
    if (astart >= aend) {
        return 0;   /* a hint: partial clusters stay as they are */
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cluster_discard(bs, astart, aend - astart, false);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/* ---- status, info ------------------------------------------------------------------------ */

static int coroutine_fn qcow2_co_block_status(BlockDriverState *bs,
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
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
}

static int64_t coroutine_fn qcow2_co_getlength(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    return s->size;
}

static int coroutine_fn qcow2_co_truncate(BlockDriverState *bs,
                                          int64_t offset, bool exact,
                                          PreallocMode prealloc,
                                          BdrvRequestFlags flags,
                                          Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_size = s->size;
    uint64_t val;
    int ret;

    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Unsupported preallocation mode '%s'",
                   PreallocMode_str[prealloc]);
        return -ENOTSUP;
    }
    if (offset & 511) {
        error_setg(errp, "The new size must be a multiple of 512");
        return -EINVAL;
    }
    if (s->nb_snapshots && (uint64_t)offset < old_size) {
        error_setg(errp, "Can't resize an image which has snapshots");
        return -ENOTSUP;
    }
    qemu_co_mutex_lock(&s->lock);
    if ((uint64_t)offset < old_size) {
        int64_t astart = ROUND_UP(offset, s->cluster_size);

        /* Drop everything beyond the new end (full discard). */
        if ((uint64_t)astart < old_size) {
            ret = qcow2_cluster_discard(bs, astart,
                                        ROUND_UP(old_size, s->cluster_size) -
                                        astart, true);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Failed to discard cropped "
                                 "clusters");
                goto out;
            }
        }
    } else {
        ret = qcow2_grow_l1_table(bs, size_to_l1(s, offset), true);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to grow the L1 table");
            goto out;
        }
    }
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
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
out:
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0 && (uint64_t)offset < old_size &&
        offset_into_cluster(s, offset)) {
        /* The kept part of the last cluster must read as zero if regrown. */
        int64_t n = MIN((uint64_t)(ROUND_UP(offset, s->cluster_size) -
                                   offset), old_size - offset);
        uint64_t saved = s->size;

        s->size = old_size;
        ret = qcow2_co_pwrite_zeroes(bs, offset, n, 0);
        s->size = saved;
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to zero the tail");
        }
    }
    return ret < 0 ? ret : 0;
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

static int coroutine_fn qcow2_co_change_backing_file(BlockDriverState *bs,
                                                     const char *backing_file,
                                                     const char *backing_fmt)
{
    BDRVQcow2State *s = bs->opaque;
    char *old_file = s->image_backing_file;
    char *old_fmt = s->image_backing_format;
    int ret;

    if (backing_file && strlen(backing_file) > 1023) {
        return -EINVAL;
    }
    if (backing_fmt && strlen(backing_fmt) >= sizeof(bs->backing_format)) {
        return -EINVAL;
    }
    s->image_backing_file = backing_file && backing_file[0]
                            ? g_strdup(backing_file) : NULL;
    s->image_backing_format = backing_fmt && backing_fmt[0] &&
                              s->image_backing_file
                              ? g_strdup(backing_fmt) : NULL;
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_update_header(bs);
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        g_free(s->image_backing_file);
        g_free(s->image_backing_format);
        s->image_backing_file = old_file;
        s->image_backing_format = old_fmt;
        return ret;
    }
    g_free(old_file);
    g_free(old_fmt);
    pstrcpy(bs->backing_file, sizeof(bs->backing_file),
            s->image_backing_file ? s->image_backing_file : "");
    pstrcpy(bs->backing_format, sizeof(bs->backing_format),
            s->image_backing_format ? s->image_backing_format : "");
    return 0;
}

BlockDriver bdrv_qcow2 = {
    .format_name                = "qcow2",
    .instance_size              = sizeof(BDRVQcow2State),
    .is_format                  = true,
    .supports_backing           = true,
    .bdrv_probe                 = qcow2_probe,
    .bdrv_co_open               = qcow2_co_open,
    .bdrv_co_close              = qcow2_co_close,
    .bdrv_refresh_limits        = qcow2_refresh_limits,
    .bdrv_co_preadv_part        = qcow2_co_preadv_part,
    .bdrv_co_pwritev_part       = qcow2_co_pwritev_part,
    .bdrv_co_pwritev_compressed_part = qcow2_co_pwritev_compressed_part,
    .bdrv_co_pwrite_zeroes      = qcow2_co_pwrite_zeroes,
    .bdrv_co_pdiscard           = qcow2_co_pdiscard,
    .bdrv_co_flush_to_os        = qcow2_co_flush_to_os,
    .bdrv_co_block_status       = qcow2_co_block_status,
    .bdrv_co_getlength          = qcow2_co_getlength,
    .bdrv_co_truncate           = qcow2_co_truncate,
    .bdrv_co_create_opts        = qcow2_co_create_opts,
    .create_opts                = &qcow2_create_opts,
    .bdrv_co_amend              = qcow2_co_amend,
    .amend_opts                 = &qcow2_amend_opts,
    .bdrv_measure               = qcow2_measure,
    .bdrv_get_info              = qcow2_get_info,
    .bdrv_get_specific_info     = qcow2_get_specific_info,
    .bdrv_co_check              = qcow2_co_check,
    .bdrv_co_change_backing_file = qcow2_co_change_backing_file,
};
