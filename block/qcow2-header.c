/*
 * qcow2 format driver: the image header.  Reading and checking it at open
 * (fixed fields, extensions, table locations, backing file name), writing
 * it back, feature names, the dirty and corrupt bits (corruption
 * signalling), the zoned extension and create options, and the info the
 * header gives "qemu-img info".
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qcow2.h"

/*
 * Names of the features this implementation knows: the one table, written
 * into headers (see do_update_header) and used to name refused bits.
 */
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
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_ZONED_BITNR,
      "zoned format" },
    { QCOW2_FEAT_TYPE_COMPATIBLE, QCOW2_COMPAT_LAZY_REFCOUNTS_BITNR,
      "lazy refcounts" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, QCOW2_AUTOCLEAR_BITMAPS_BITNR,
      "bitmaps" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, QCOW2_AUTOCLEAR_DATA_FILE_RAW_BITNR,
      "raw external data" },
};

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

void qcow2_report_unsupported_feature(BDRVQcow2State *s, Error **errp,
                                      uint64_t mask)
{
    g_autoptr(GString) str = g_string_new("");
    uint64_t unknown = 0;
    int bit;

    for (bit = 0; bit < 64; bit++) {
        const char *name;

        if (!(mask & (UINT64_C(1) << bit))) {
            continue;
        }
        name = feature_name(s->feature_table, s->nb_features,
                            QCOW2_FEAT_TYPE_INCOMPATIBLE, bit);
        if (!name) {
            /* Our own name when the image carries none for the bit. */
            name = feature_name(qcow2_known_features,
                                ARRAY_SIZE(qcow2_known_features),
                                QCOW2_FEAT_TYPE_INCOMPATIBLE, bit);
        }
        if (name) {
            add_feature_name(str, name);
        } else {
            unknown |= UINT64_C(1) << bit;
        }
    }
    /* Bits without a name are reported together, as one mask. */
    if (unknown) {
        g_autofree char *unk =
            g_strdup_printf("Unknown incompatible feature: %" PRIx64, unknown);
        add_feature_name(str, unk);
    }
    error_setg(errp, "Unsupported qcow2 feature(s): %s", str->str);
}

void qcow2_free_unknown_exts(BDRVQcow2State *s)
{
    while (s->unknown_exts) {
        Qcow2UnknownHeaderExtension *e = s->unknown_exts;

        s->unknown_exts = e->next;
        g_free(e);
    }
}

/* Parse the extensions in [start, end) of the first cluster @buf. */
int qcow2_read_extensions(BlockDriverState *bs, const uint8_t *buf,
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
        /* Even the end marker's length must fit, as QEMU checks it. */
        if (len > end - offset) {
            error_setg(errp, "Header extension too large");
            return -EINVAL;
        }
        if (magic == QCOW2_EXT_MAGIC_END) {
            break;
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
        case QCOW2_EXT_MAGIC_ZONED:
            /* Never read more than we know; longer extensions may grow. */
            if (len < QCOW2_ZONED_EXT_LEN) {
                error_setg(errp, "Invalid zoned extension: length %" PRIu32
                           " is less than %d", len, QCOW2_ZONED_EXT_LEN);
                return -EINVAL;
            }
            s->zoned_ext = (Qcow2ZonedHeaderExt) {
                .zoned = data[0],
                .zone_size = ldbe64_p(data + 4),
                .zone_capacity = ldbe64_p(data + 12),
                .conventional_zones = ldbe32_p(data + 20),
                .nr_zones = ldbe32_p(data + 24),
                .max_active_zones = ldbe32_p(data + 28),
                .max_open_zones = ldbe32_p(data + 32),
                .max_append_bytes = ldbe32_p(data + 36),
                .zonedmeta_size = ldbe64_p(data + 40),
                .zonedmeta_offset = ldbe64_p(data + 48),
            };
            s->has_zoned_ext = true;
            break;
        case QCOW2_EXT_MAGIC_CRYPTO_HEADER:
            /* Encrypted images are refused later; this is a bad header. */
            if (s->crypt_method_header != QCOW_CRYPT_LUKS) {
                error_setg(errp, "CRYPTO header extension only expected "
                           "with LUKS encryption method");
                return -EINVAL;
            }
            /* fall through */
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
    if (len) {
        memcpy(buf + 8, data, len);
    }
    memset(buf + 8 + len, 0, ROUND_UP(len, 8) - len);
    return need;
}

static int coroutine_fn do_update_header(BlockDriverState *bs,
                                         bool with_features)
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
        cpu_to_be32(((uint64_t)s->refcount_table_disk_entries * 8) >>
                    s->cluster_bits);
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
    /*
     * The feature name table is informational: like QEMU, spend header
     * space on it only with clusters larger than 4k.
     */
    if (s->qcow_version >= 3 && with_features && s->cluster_size > 4096) {
        /* The zoned name only in zoned images: others keep the old table. */
        Qcow2Feature table[ARRAY_SIZE(qcow2_known_features)];
        size_t i, nt = 0;

        for (i = 0; i < ARRAY_SIZE(qcow2_known_features); i++) {
            if (qcow2_known_features[i].type == QCOW2_FEAT_TYPE_INCOMPATIBLE &&
                qcow2_known_features[i].bit == QCOW2_INCOMPAT_ZONED_BITNR &&
                !s->has_zoned_ext) {
                continue;
            }
            table[nt++] = qcow2_known_features[i];
        }
        n = header_ext_add(buf + off, buflen - off,
                           QCOW2_EXT_MAGIC_FEATURE_TABLE,
                           table, nt * sizeof(Qcow2Feature));
        if (n == SIZE_MAX) {
            ret = -ENOSPC;
            goto out;
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
    if (s->has_zoned_ext) {
        const Qcow2ZonedHeaderExt *z = &s->zoned_ext;
        uint8_t ze[QCOW2_ZONED_EXT_LEN] = { 0 };

        ze[0] = z->zoned;
        stbe64_p(ze + 4, z->zone_size);
        stbe64_p(ze + 12, z->zone_capacity);
        stbe32_p(ze + 20, z->conventional_zones);
        stbe32_p(ze + 24, z->nr_zones);
        stbe32_p(ze + 28, z->max_active_zones);
        stbe32_p(ze + 32, z->max_open_zones);
        stbe32_p(ze + 36, z->max_append_bytes);
        stbe64_p(ze + 40, z->zonedmeta_size);
        stbe64_p(ze + 48, z->zonedmeta_offset);
        n = header_ext_add(buf + off, buflen - off, QCOW2_EXT_MAGIC_ZONED,
                           ze, sizeof(ze));
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

    /*
     * The whole (zero padded) header cluster, as QEMU writes it: a shorter
     * backing file name must not leave stale bytes of the old one behind.
     */
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_MAIN_HEADER, 0, buflen);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_co_pwrite(bs->file, 0, buflen, buf, 0);
out:
    qemu_vfree(buf);
    return ret < 0 ? ret : 0;
}

int coroutine_fn qcow2_update_header(BlockDriverState *bs)
{
    int ret = do_update_header(bs, true);

    if (ret == -ENOSPC) {
        /* The feature name table is optional: leave it out of tiny
         * clusters rather than fail. */
        ret = do_update_header(bs, false);
    }
    return ret;
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

/* Rewrite the backing file name and format (rebase -u). */
int coroutine_fn qcow2_co_change_backing_file(BlockDriverState *bs,
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
    if (backing_file && backing_file[0] && (s->zoned || s->has_zoned_ext)) {
        return -ENOTSUP;   /* the open would refuse the image */
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

/* ---- zoned extension: validation, creation ------------------------------ */

/*
 * Rules shared by open and create: every message names the field so
 * that a user can tell which value of a damaged header is wrong.
 */
static int zoned_check_geometry(uint64_t size, uint64_t zone_size,
                                uint64_t zone_capacity, uint64_t conv,
                                uint64_t max_active, uint64_t max_open,
                                uint64_t max_append, bool create,
                                Error **errp)
{
    /* Create names the options, open the header fields. */
    const char *prefix = create ? "" : "Invalid zoned extension: ";
    const char *n_size = create ? "zone.size" : "zone_size";
    const char *n_cap = create ? "zone.capacity" : "zone_capacity";
    const char *n_conv = create ? "zone.conventional_zones"
                                : "conventional_zones";
    const char *n_active = create ? "zone.max_active_zones"
                                  : "max_active_zones";
    const char *n_open = create ? "zone.max_open_zones" : "max_open_zones";
    const char *n_append = create ? "zone.max_append_bytes"
                                  : "max_append_bytes";
    uint64_t nr_zones;

    if (zone_size < 4096 || !is_power_of_2(zone_size) ||
        zone_size > (UINT64_C(1) << 62)) {
        error_setg(errp, "%s%s %" PRIu64 " must be a power of two of at "
                   "least 4096", prefix, n_size, zone_size);
        return -EINVAL;
    }
    if (zone_capacity < 512 || zone_capacity % 512 ||
        zone_capacity > zone_size) {
        error_setg(errp, "%s%s %" PRIu64 " must be a multiple of 512 "
                   "between 512 and the zone size %" PRIu64, prefix, n_cap,
                   zone_capacity, zone_size);
        return -EINVAL;
    }
    if (size == 0) {
        error_setg(errp, "%sa zoned image needs a non-zero size", prefix);
        return -EINVAL;
    }
    nr_zones = DIV_ROUND_UP(size, zone_size);
    if (nr_zones > UINT32_MAX) {
        error_setg(errp, "%snr_zones %" PRIu64 " exceeds %u", prefix,
                   nr_zones, UINT32_MAX);
        return -EINVAL;
    }
    if (conv >= nr_zones) {
        error_setg(errp, "%s%s %" PRIu64 " must be less than the number "
                   "of zones (%" PRIu64 ")", prefix, n_conv, conv,
                   nr_zones);
        return -EINVAL;
    }
    if (max_active > nr_zones - conv) {
        error_setg(errp, "%s%s %" PRIu64 " exceeds the number of "
                   "sequential zones (%" PRIu64 ")", prefix, n_active,
                   max_active,
                   nr_zones - conv);
        return -EINVAL;
    }
    if (max_open > UINT32_MAX) {
        error_setg(errp, "%s%s %" PRIu64 " is too large", prefix, n_open,
                   max_open);
        return -EINVAL;
    }
    if (max_active && max_open > max_active) {
        error_setg(errp, "%s%s %" PRIu64 " exceeds %s %" PRIu64, prefix,
                   n_open, max_open, n_active, max_active);
        return -EINVAL;
    }
    if (max_append == 0 || max_append % 512 || max_append > zone_capacity) {
        error_setg(errp, "%s%s %" PRIu64 " must be a non-zero multiple of "
                   "512 of at most the zone capacity %" PRIu64, prefix,
                   n_append, max_append, zone_capacity);
        return -EINVAL;
    }
    return 0;
}

int qcow2_zoned_validate_ext(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZonedHeaderExt *z = &s->zoned_ext;
    bool bit = s->incompatible_features & QCOW2_INCOMPAT_ZONED;
    const char *p = "Invalid zoned extension: ";
    int ret;

    if (bit && !s->has_zoned_ext) {
        error_setg(errp, "Incompatible feature bit 5 (zoned format) is set "
                   "but the zoned extension is missing");
        return -EINVAL;
    }
    if (!s->has_zoned_ext) {
        return 0;
    }
    if (!bit) {
        error_setg(errp, "Zoned extension present but incompatible feature "
                   "bit 5 (zoned format) is not set");
        return -EINVAL;
    }
    if (s->qcow_version < 3) {
        error_setg(errp, "%sonly defined for qcow2 version 3", p);
        return -EINVAL;
    }
    if (z->zoned != QCOW2_ZONED_HOST_MANAGED) {
        error_setg(errp, "%szoned %u is not a known model (1 = host-managed)",
                   p, z->zoned);
        return -EINVAL;
    }
    ret = zoned_check_geometry(s->size, z->zone_size, z->zone_capacity,
                               z->conventional_zones, z->max_active_zones,
                               z->max_open_zones, z->max_append_bytes, false,
                               errp);
    if (ret < 0) {
        return ret;
    }
    if (z->nr_zones != DIV_ROUND_UP(s->size, z->zone_size)) {
        error_setg(errp, "%snr_zones %u does not match the virtual size "
                   "(%" PRIu64 " zones)", p, z->nr_zones,
                   (uint64_t)DIV_ROUND_UP(s->size, z->zone_size));
        return -EINVAL;
    }
    if (z->zonedmeta_size != (uint64_t)z->nr_zones * 8) {
        error_setg(errp, "%szonedmeta_size %" PRIu64 " must be 8 * nr_zones "
                   "(%" PRIu64 ")", p, z->zonedmeta_size,
                   (uint64_t)z->nr_zones * 8);
        return -EINVAL;
    }
    if (z->zonedmeta_offset == 0 ||
        offset_into_cluster(s, z->zonedmeta_offset) ||
        z->zonedmeta_offset > (uint64_t)s->file_size ||
        z->zonedmeta_size > (uint64_t)s->file_size - z->zonedmeta_offset) {
        error_setg(errp, "%szonedmeta_offset 0x%" PRIx64 " must be cluster "
                   "aligned, after the header and inside the file", p,
                   z->zonedmeta_offset);
        return -EINVAL;
    }
    /*
     * Opened without its backing file (rebase -u), a zoned image that
     * names one can be repaired by dropping the name.
     */
    if (s->backing_file_offset && !(bs->open_flags & BDRV_O_NO_BACKING)) {
        error_setg(errp, "Zoned images cannot have a backing file");
        return -EINVAL;
    }
    return 0;
}

#define ZONE_OPT_MODE        "zone.mode"
#define ZONE_OPT_SIZE        "zone.size"
#define ZONE_OPT_CAPACITY    "zone.capacity"
#define ZONE_OPT_CONV        "zone.conventional_zones"
#define ZONE_OPT_MAX_OPEN    "zone.max_open_zones"
#define ZONE_OPT_MAX_ACTIVE  "zone.max_active_zones"
#define ZONE_OPT_MAX_APPEND  "zone.max_append_bytes"

void qcow2_zoned_create_opts_defaults(QemuOpts *opts)
{
    uint64_t size, cap;

    if (!qemu_opt_get(opts, ZONE_OPT_MODE)) {
        return;
    }
    /* The same defaults as qcow2_zoned_parse_create_opts(). */
    size = qemu_opt_get_size(opts, ZONE_OPT_SIZE, 256 * MiB);
    cap = qemu_opt_get_size(opts, ZONE_OPT_CAPACITY, size);
    if (!qemu_opt_get(opts, ZONE_OPT_SIZE)) {
        qemu_opt_set_number(opts, ZONE_OPT_SIZE, size, NULL);
    }
    if (!qemu_opt_get(opts, ZONE_OPT_CAPACITY)) {
        qemu_opt_set_number(opts, ZONE_OPT_CAPACITY, cap, NULL);
    }
    if (!qemu_opt_get(opts, ZONE_OPT_CONV)) {
        qemu_opt_set_number(opts, ZONE_OPT_CONV, 0, NULL);
    }
    if (!qemu_opt_get(opts, ZONE_OPT_MAX_OPEN)) {
        qemu_opt_set_number(opts, ZONE_OPT_MAX_OPEN, 0, NULL);
    }
    if (!qemu_opt_get(opts, ZONE_OPT_MAX_ACTIVE)) {
        qemu_opt_set_number(opts, ZONE_OPT_MAX_ACTIVE, 0, NULL);
    }
    if (!qemu_opt_get(opts, ZONE_OPT_MAX_APPEND)) {
        qemu_opt_set_number(opts, ZONE_OPT_MAX_APPEND,
                            MIN(64 * KiB, cap & ~(uint64_t)511), NULL);
    }
}

int qcow2_zoned_parse_create_opts(QemuOpts *opts, Qcow2ZonedCreateParams *p,
                                  Error **errp)
{
    static const char *const others[] = {
        ZONE_OPT_SIZE, ZONE_OPT_CAPACITY, ZONE_OPT_CONV, ZONE_OPT_MAX_OPEN,
        ZONE_OPT_MAX_ACTIVE, ZONE_OPT_MAX_APPEND,
    };
    const char *mode = qemu_opt_get(opts, ZONE_OPT_MODE);
    const char *compat = qemu_opt_get(opts, "compat");
    uint64_t size, conv, max_open, max_active, max_append;
    size_t i;

    memset(p, 0, sizeof(*p));
    if (!mode) {
        for (i = 0; i < ARRAY_SIZE(others); i++) {
            if (qemu_opt_get(opts, others[i])) {
                error_setg(errp, "Option '%s' requires zone.mode=host-managed",
                           others[i]);
                return -EINVAL;
            }
        }
        return 0;
    }
    if (strcmp(mode, "host-managed")) {
        error_setg(errp, "Parameter 'zone.mode' does not accept value '%s' "
                   "(allowed: host-managed)", mode);
        return -EINVAL;
    }
    if (compat && (!strcmp(compat, "0.10") || !strcmp(compat, "v2"))) {
        error_setg(errp, "Zoned images require compat=1.1 (qcow2 version 3)");
        return -EINVAL;
    }
    if (qemu_opt_get(opts, "backing_file")) {
        error_setg(errp, "Zoned images cannot have a backing file");
        return -EINVAL;
    }
    if (qemu_opt_get(opts, "data_file")) {
        error_setg(errp, "Zoned images cannot have an external data file");
        return -EINVAL;
    }
    if (qemu_opt_get_bool(opts, "extended_l2", false)) {
        error_setg(errp, "Zoned images cannot have extended L2 entries");
        return -EINVAL;
    }
    if (qemu_opt_get_bool(opts, "encryption", false) ||
        qemu_opt_get(opts, "encrypt.format")) {
        error_setg(errp, "Zoned images cannot be encrypted");
        return -EINVAL;
    }

    size = ROUND_UP(qemu_opt_get_size(opts, "size", 0), BDRV_SECTOR_SIZE);
    p->zoned = true;
    p->zone_size = qemu_opt_get_size(opts, ZONE_OPT_SIZE, 256 * MiB);
    p->zone_capacity = qemu_opt_get_size(opts, ZONE_OPT_CAPACITY,
                                         p->zone_size);
    conv = qemu_opt_get_number(opts, ZONE_OPT_CONV, 0);
    max_open = qemu_opt_get_number(opts, ZONE_OPT_MAX_OPEN, 0);
    max_active = qemu_opt_get_number(opts, ZONE_OPT_MAX_ACTIVE, 0);
    /* The default never exceeds a small zone; explicit values are checked. */
    max_append = qemu_opt_get_size(opts, ZONE_OPT_MAX_APPEND,
                                   MIN(64 * KiB, p->zone_capacity &
                                       ~(uint64_t)511));
    if (zoned_check_geometry(size, p->zone_size, p->zone_capacity, conv,
                             max_active, max_open, max_append, true,
                             errp) < 0) {
        return -EINVAL;
    }
    p->conventional_zones = conv;
    p->max_open_zones = max_open;
    p->max_active_zones = max_active;
    p->max_append_bytes = max_append;
    return 0;
}

int coroutine_fn qcow2_zoned_format(const char *filename,
                                    const Qcow2ZonedCreateParams *p,
                                    Error **errp)
{
    QDict *options = qdict_new();
    BlockDriverState *bs;
    BDRVQcow2State *s;
    uint64_t nr_zones, region, i;
    int64_t off = -1;
    uint64_t *buf = NULL;
    int ret;

    qdict_put_str(options, "driver", "qcow2");
    bs = bdrv_open(filename, options, BDRV_O_RDWR, errp);
    if (!bs) {
        return -EIO;
    }
    s = bs->opaque;
    nr_zones = DIV_ROUND_UP(s->size, p->zone_size);
    region = ROUND_UP(nr_zones * 8, s->cluster_size);

    buf = qemu_try_blockalign(bs->file->bs, region);
    if (!buf) {
        ret = -ENOMEM;
        goto out;
    }
    memset(buf, 0, region);
    for (i = 0; i < nr_zones; i++) {
        uint64_t start = i * p->zone_size;

        buf[i] = cpu_to_be64(i < p->conventional_zones ?
                             start | QCOW2_ZONED_CONV_WP_FLAG : start);
    }

    qemu_co_mutex_lock(&s->lock);
    off = qcow2_alloc_clusters(bs, region);
    if (off >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    } else {
        ret = off;
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_grow_file(bs, off + region);
    if (ret >= 0) {
        ret = bdrv_co_pwrite(bs->file, off, region, buf, 0);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        goto out;
    }

    s->zoned_ext = (Qcow2ZonedHeaderExt) {
        .zoned = QCOW2_ZONED_HOST_MANAGED,
        .zone_size = p->zone_size,
        .zone_capacity = p->zone_capacity,
        .conventional_zones = p->conventional_zones,
        .nr_zones = nr_zones,
        .max_active_zones = p->max_active_zones,
        .max_open_zones = p->max_open_zones,
        .max_append_bytes = p->max_append_bytes,
        .zonedmeta_size = nr_zones * 8,
        .zonedmeta_offset = off,
    };
    s->has_zoned_ext = true;
    s->incompatible_features |= QCOW2_INCOMPAT_ZONED;
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_update_header(bs);
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
out:
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write the zoned metadata");
    }
    qemu_vfree(buf);
    bdrv_unref(bs);
    return ret < 0 ? ret : 0;
}

/* ---- the header at open ----------------------------------------------------------- */

/*
 * Read and check the fixed header, the extensions and the place of every
 * table (the tables themselves are loaded by the open path).  *pfirst is
 * set to the first cluster (header, extensions, backing file name), which
 * the caller frees, also on failure.  0, or -errno with @errp set.
 */
int coroutine_fn qcow2_read_header(BlockDriverState *bs, int flags,
                                   uint8_t **pfirst, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCowHeader header;
    uint8_t *first;
    uint64_t ext_end;
    int ret;

    *pfirst = NULL;
    memset(&header, 0, sizeof(header));
    ret = bdrv_co_pread(bs->file, 0,
                        MIN((int64_t)sizeof(header), s->file_size),
                        &header, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read qcow2 header");
        return ret;
    }
    if (s->file_size < QCOW2_V2_HEADER_LENGTH ||
        be32_to_cpu(header.magic) != QCOW_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format");
        return -EINVAL;
    }
    s->qcow_version = be32_to_cpu(header.version);
    if (s->qcow_version < 2 || s->qcow_version > 3) {
        error_setg(errp, "Unsupported qcow2 version %d", s->qcow_version);
        return -ENOTSUP;
    }
    s->cluster_bits = be32_to_cpu(header.cluster_bits);
    if (s->cluster_bits < MIN_CLUSTER_BITS ||
        s->cluster_bits > MAX_CLUSTER_BITS) {
        error_setg(errp, "Unsupported cluster size: 2^%d", s->cluster_bits);
        return -EINVAL;
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
            return -EINVAL;
        }
    }
    if (s->header_length > (uint32_t)s->cluster_size) {
        error_setg(errp, "qcow2 header exceeds cluster size");
        return -EINVAL;
    }
    if (s->header_length > s->file_size) {
        error_setg(errp, "qcow2 header is beyond the end of the image file");
        return -EINVAL;
    }

    /* The whole first cluster holds header, extensions, backing name. */
    first = *pfirst = g_malloc0(s->cluster_size);
    ret = bdrv_co_pread(bs->file, 0, MIN(s->cluster_size, s->file_size),
                        first, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read qcow2 header");
        return ret;
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
        return -EINVAL;
    }

    s->compression_type = QCOW2_COMPRESSION_TYPE_ZLIB;
    if (s->header_length > offsetof(QCowHeader, compression_type)) {
        s->compression_type = header.compression_type;
    }
    if (s->compression_type != QCOW2_COMPRESSION_TYPE_ZLIB &&
        s->compression_type != QCOW2_COMPRESSION_TYPE_ZSTD) {
        error_setg(errp, "qcow2: unknown compression type: %u",
                   s->compression_type);
        return -ENOTSUP;
    }
    if (s->compression_type != QCOW2_COMPRESSION_TYPE_ZLIB &&
        !(s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit "
                   "must be set");
        return -EINVAL;
    }
    if (s->compression_type == QCOW2_COMPRESSION_TYPE_ZLIB &&
        (s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit "
                   "must not be set");
        return -EINVAL;
    }
#ifndef CONFIG_ZSTD
    if (s->compression_type == QCOW2_COMPRESSION_TYPE_ZSTD) {
        error_setg(errp, "qcow2: zstd compression is not supported by this "
                   "build");
        return -ENOTSUP;
    }
#endif

    ext_end = s->backing_file_offset ? s->backing_file_offset
                                     : (uint64_t)s->cluster_size;
    s->crypt_method_header = be32_to_cpu(header.crypt_method);
    ret = qcow2_read_extensions(bs, first, s->header_length, ext_end, errp);
    if (ret < 0) {
        return ret;
    }

    if (s->incompatible_features & ~(uint64_t)QCOW2_INCOMPAT_MASK) {
        qcow2_report_unsupported_feature(s, errp, s->incompatible_features &
                                   ~(uint64_t)QCOW2_INCOMPAT_MASK);
        return -ENOTSUP;
    }
    if ((s->incompatible_features & QCOW2_INCOMPAT_CORRUPT) &&
        !bs->read_only && !(flags & BDRV_O_CHECK)) {
        error_setg(errp, "qcow2: Image is corrupt; cannot be opened "
                   "read/write");
        return -EACCES;
    }

    if (s->crypt_method_header) {
        error_setg(errp, "qcow2: Encrypted images are not supported "
                   "(encryption method %u)", s->crypt_method_header);
        return -ENOTSUP;
    }

    if ((uint32_t)s->refcount_order > 6) {
        error_setg(errp, "Reference count entry width too large; may not "
                   "exceed 64 bits");
        return -EINVAL;
    }
    /*
     * "Raw external data" describes a data file, which we refuse above
     * when the image has one: without, the bit is a damaged header.
     */
    if (s->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) {
        error_setg(errp, "data-file-raw requires a data file");
        return -EINVAL;
    }

    s->size = be64_to_cpu(header.size);
    if (s->size > (uint64_t)INT64_MAX - s->cluster_size) {
        error_setg(errp, "Image size too large");
        return -EFBIG;
    }
    /* The L1 index must fit its 32-bit field (and every int using it). */
    if (size_to_l1(s, s->size) > INT_MAX) {
        error_setg(errp, "Image is too big");
        return -EFBIG;
    }
    s->l1_vm_state_index = size_to_l1(s, s->size);
    ret = qcow2_zoned_validate_ext(bs, errp);
    if (ret < 0) {
        return ret;
    }

    /* Refcount table. */
    s->refcount_table_offset = be64_to_cpu(header.refcount_table_offset);
    {
        uint32_t rt_clusters = be32_to_cpu(header.refcount_table_clusters);

        if (rt_clusters == 0) {
            error_setg(errp, "Image does not contain a reference count "
                       "table");
            return -EINVAL;
        }
        ret = qcow2_validate_table(bs, s->refcount_table_offset,
                                   rt_clusters, s->cluster_size,
                                   QCOW_MAX_REFTABLE_SIZE,
                                   "Reference count table", errp);
        if (ret < 0) {
            return ret;
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
        return ret;
    }

    /* Active L1 table. */
    s->l1_size = be32_to_cpu(header.l1_size);
    s->l1_table_offset = be64_to_cpu(header.l1_table_offset);
    if (s->l1_size > QCOW_MAX_L1_SIZE / 8) {
        error_setg(errp, "Active L1 table too large");
        return -EFBIG;
    }
    if (s->l1_size < s->l1_vm_state_index) {
        error_setg(errp, "L1 table is too small");
        return -EINVAL;
    }
    return qcow2_validate_table(bs, s->l1_table_offset, s->l1_size, 8,
                                QCOW_MAX_L1_SIZE, "Active L1 table", errp);
}

/* The backing file name stored in the first cluster @first. */
int qcow2_read_backing_name(BlockDriverState *bs, const uint8_t *first,
                            Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->backing_file_offset) {
        uint32_t len = s->backing_file_size;

        if (len > MIN(1023, s->cluster_size - s->backing_file_offset)) {
            error_setg(errp, "Backing file name too long");
            return -EINVAL;
        }
        s->image_backing_file = g_strndup((const char *)first +
                                          s->backing_file_offset, len);
        pstrcpy(bs->backing_file, sizeof(bs->backing_file),
                s->image_backing_file);
    }
    if (s->image_backing_format) {
        pstrcpy(bs->backing_format, sizeof(bs->backing_format),
                s->image_backing_format);
    }
    return 0;
}

/* Check a table's offset and size against the format limits. */
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
        /*
         * Failing to persist the bit is fine: writes are refused now.  An
         * open still in progress (not activated) keeps it in memory: a
         * refused open must leave the file as it was.
         */
        if (qemu_in_coroutine() && s->activated) {
            qcow2_mark_corrupt(bs);
        } else {
            s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        }
    }
}

/* ---- info ---------------------------------------------------------------------- */

int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcow2State *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    bdi->vm_state_offset = qcow2_vm_state_offset(s);
    bdi->is_dirty = !!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY);
    return 0;
}

QObject *qcow2_get_specific_info(BlockDriverState *bs, Error **errp)
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
