/*
 * qcow2 format driver: internal snapshots (the snapshot table, create,
 * goto, delete, list).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Refcount model (the one QEMU and "qemu-img check" use): every L1 table
 * (the active one and each snapshot's) counts one reference to each L2
 * table it names, and every walk through an L2 table counts one
 * reference to each cluster it names, so an L2 table shared by two L1
 * tables makes its data clusters count twice.  COPIED (bit 63) in the
 * active tables means "refcount is exactly one": writable in place.
 *
 * Crash safety: reference increments reach the disk before anything
 * points at the new references; a snapshot table is written in new
 * clusters, flushed, then the header is switched to it and only then is
 * the old table freed.  An interrupted operation leaks clusters at worst.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qcow2.h"

/* The part of an entry's extra data we interpret (QEMU writes 24 bytes). */
typedef struct QEMU_PACKED QCowSnapshotExtraData {
    uint64_t vm_state_size_large;
    uint64_t disk_size;
    uint64_t icount;
} QCowSnapshotExtraData;

/* Larger extra data is refused at open, as QEMU does. */
#define QCOW_MAX_SNAPSHOT_EXTRA_DATA 1024
/* Upper bound of the whole table (QEMU's limit as well). */
#define QCOW_MAX_SNAPSHOTS_SIZE      (1024ULL * QCOW_MAX_SNAPSHOTS)

/* ---- the table ------------------------------------------------------------------ */

void qcow2_free_snapshots(BDRVQcow2State *s)
{
    uint32_t i;

    if (!s->snapshots) {
        return;
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        g_free(s->snapshots[i].id_str);
        g_free(s->snapshots[i].name);
        g_free(s->snapshots[i].unknown_extra_data);
    }
    g_free(s->snapshots);
    s->snapshots = NULL;
}

int coroutine_fn qcow2_read_snapshots(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t offset = s->snapshots_offset;
    uint32_t i;
    int ret;

    s->snapshots_size = 0;
    if (!s->nb_snapshots) {
        return 0;
    }
    s->snapshots = g_new0(QCowSnapshot, s->nb_snapshots);
    for (i = 0; i < s->nb_snapshots; i++) {
        QCowSnapshot *sn = &s->snapshots[i];
        QCowSnapshotHeader h;
        QCowSnapshotExtraData ext;
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
        if (extra > QCOW_MAX_SNAPSHOT_EXTRA_DATA) {
            error_setg(errp, "Too much extra metadata in snapshot table "
                       "entry %u", i);
            return -EFBIG;
        }
        sn->l1_table_offset = be64_to_cpu(h.l1_table_offset);
        sn->l1_size = be32_to_cpu(h.l1_size);
        sn->vm_state_size = be32_to_cpu(h.vm_state_size);
        sn->date_sec = be32_to_cpu(h.date_sec);
        sn->date_nsec = be32_to_cpu(h.date_nsec);
        sn->vm_clock_nsec = be64_to_cpu(h.vm_clock_nsec);
        sn->extra_data_size = extra;
        /* Fields the entry is too short for take QEMU's defaults. */
        sn->disk_size = s->size;
        sn->icount = UINT64_MAX;

        memset(&ext, 0, sizeof(ext));
        ret = bdrv_co_pread(bs->file, offset, MIN(extra, sizeof(ext)),
                            &ext, 0);
        if (ret >= 0 && extra > sizeof(ext)) {
            sn->unknown_extra_data = g_malloc(extra - sizeof(ext));
            ret = bdrv_co_pread(bs->file, offset + sizeof(ext),
                                extra - sizeof(ext),
                                sn->unknown_extra_data, 0);
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read snapshot table");
            return ret;
        }
        if (extra >= 8) {
            sn->vm_state_size = be64_to_cpu(ext.vm_state_size_large);
        }
        if (extra >= 16) {
            sn->disk_size = be64_to_cpu(ext.disk_size);
        }
        if (extra >= 24) {
            sn->icount = be64_to_cpu(ext.icount);
        }
        offset += extra;
        if (offset + id_len + name_len - s->snapshots_offset >
            QCOW_MAX_SNAPSHOTS_SIZE) {
            error_setg(errp, "Snapshot table is too big");
            return -EFBIG;
        }
        sn->id_str = g_malloc0(id_len + 1);
        sn->name = g_malloc0(name_len + 1);
        ret = bdrv_co_pread(bs->file, offset, id_len, sn->id_str, 0);
        if (ret >= 0) {
            ret = bdrv_co_pread(bs->file, offset + id_len, name_len,
                                sn->name, 0);
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read snapshot table");
            return ret;
        }
        offset += id_len + name_len;
        /*
         * Like QEMU, a broken L1 table reference is not validated here:
         * the active layer stays usable and "check" names the entry.
         */
    }
    s->snapshots_size = offset - s->snapshots_offset;
    return 0;
}

/* Bytes entry @sn takes in the table, from an 8-aligned start. */
static uint64_t entry_size(const QCowSnapshot *sn)
{
    return sizeof(QCowSnapshotHeader) +
           MAX(sizeof(QCowSnapshotExtraData), sn->extra_data_size) +
           strlen(sn->id_str) + strlen(sn->name);
}

/* Serialise @nb entries; returns the buffer and sets *size. */
static uint8_t *build_table(const QCowSnapshot *tab, uint32_t nb,
                            uint64_t *size)
{
    uint64_t total = 0, pos = 0;
    uint8_t *buf;
    uint32_t i;

    for (i = 0; i < nb; i++) {
        total = ROUND_UP(total, 8) + entry_size(&tab[i]);
    }
    *size = total;
    buf = g_malloc0(MAX(total, 1));
    for (i = 0; i < nb; i++) {
        const QCowSnapshot *sn = &tab[i];
        QCowSnapshotHeader h;
        QCowSnapshotExtraData ext;
        uint32_t extra = MAX(sizeof(ext), sn->extra_data_size);
        size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);

        pos = ROUND_UP(pos, 8);
        memset(&h, 0, sizeof(h));
        h.l1_table_offset = cpu_to_be64(sn->l1_table_offset);
        h.l1_size = cpu_to_be32(sn->l1_size);
        h.id_str_size = cpu_to_be16(id_len);
        h.name_size = cpu_to_be16(name_len);
        h.date_sec = cpu_to_be32(sn->date_sec);
        h.date_nsec = cpu_to_be32(sn->date_nsec);
        h.vm_clock_nsec = cpu_to_be64(sn->vm_clock_nsec);
        /* Too large for the old field: readers that only know it see a
         * disk-only snapshot rather than a truncated state. */
        h.vm_state_size = cpu_to_be32(sn->vm_state_size <= UINT32_MAX ?
                                      sn->vm_state_size : 0);
        h.extra_data_size = cpu_to_be32(extra);
        memcpy(buf + pos, &h, sizeof(h));
        pos += sizeof(h);

        ext.vm_state_size_large = cpu_to_be64(sn->vm_state_size);
        ext.disk_size = cpu_to_be64(sn->disk_size);
        ext.icount = cpu_to_be64(sn->icount);
        memcpy(buf + pos, &ext, sizeof(ext));
        if (extra > sizeof(ext)) {
            memcpy(buf + pos + sizeof(ext), sn->unknown_extra_data,
                   extra - sizeof(ext));
        }
        pos += extra;
        memcpy(buf + pos, sn->id_str, id_len);
        pos += id_len;
        memcpy(buf + pos, sn->name, name_len);
        pos += name_len;
    }
    assert(pos == total);
    return buf;
}

/*
 * Make @tab (@nb entries) the image's snapshot table: written to new
 * clusters, flushed, the header switched, then the old table freed.  On
 * success s->snapshots/nb_snapshots are replaced by @tab (the old array
 * is freed, its strings are not: entries may be shared with @tab).  On
 * failure nothing visible changed.  s->lock held.
 */
static int coroutine_fn write_snapshot_table(BlockDriverState *bs,
                                             QCowSnapshot *tab, uint32_t nb)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t size, old_offset = s->snapshots_offset;
    int64_t offset = 0;
    int old_size = s->snapshots_size;
    uint8_t *buf;
    uint8_t hdr[12];
    int ret;

    buf = build_table(tab, nb, &size);
    if (size > QCOW_MAX_SNAPSHOTS_SIZE) {
        ret = -EFBIG;
        goto out;
    }
    if (size) {
        offset = qcow2_alloc_clusters(bs, size);
        if (offset < 0) {
            ret = offset;
            offset = 0;
            goto out;
        }
        qcow2_meta_filter_add(s, offset, size);
    }
    /*
     * Everything the new table points at, and the table's own refcount,
     * must be on disk before the header names it; a crash before the
     * header write only leaks the new table.
     */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        goto out;
    }
    /* nb_snapshots and snapshots_offset are adjacent in the header. */
    QEMU_BUILD_BUG_ON(offsetof(QCowHeader, snapshots_offset) !=
                      offsetof(QCowHeader, nb_snapshots) + 4);
    stbe32_p(hdr, nb);
    stbe64_p(hdr + 4, offset);
    ret = qcow2_write_table_and_header(bs, offset, buf, size,
                                       offsetof(QCowHeader, nb_snapshots),
                                       hdr, sizeof(hdr));
    if (ret < 0) {
        goto out;
    }

    g_free(s->snapshots);
    s->snapshots = tab;
    s->nb_snapshots = nb;
    s->snapshots_offset = offset;
    s->snapshots_size = size;
    offset = 0;
    if (old_size) {
        qcow2_free_clusters(bs, old_offset, old_size);
    }
    ret = 0;
out:
    if (offset > 0) {
        qcow2_free_clusters(bs, offset, size);
    }
    g_free(buf);
    return ret;
}

/* ---- finding snapshots ---------------------------------------------------------- */

/* Index of the entry matching @id and @name (NULL matches any), or -1. */
static int find_snapshot(BDRVQcow2State *s, const char *id, const char *name)
{
    uint32_t i;

    if (!id && !name) {
        return -1;
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        if ((!id || !strcmp(s->snapshots[i].id_str, id)) &&
            (!name || !strcmp(s->snapshots[i].name, name))) {
            return i;
        }
    }
    return -1;
}

static int find_snapshot_by_id_or_name(BDRVQcow2State *s, const char *str)
{
    int i = find_snapshot(s, str, NULL);

    return i >= 0 ? i : find_snapshot(s, NULL, str);
}

/* ---- reference walks ------------------------------------------------------------ */

/* Host byte range of a compressed L2 entry, in 512-byte sectors. */
static void compressed_range(BDRVQcow2State *s, uint64_t l2_entry,
                             uint64_t *start, uint64_t *len)
{
    uint64_t coffset;
    int csize;

    qcow2_parse_compressed_l2_entry(s, l2_entry, &coffset, &csize);
    *start = coffset & ~(uint64_t)(QCOW2_COMPRESSED_SECTOR_SIZE - 1);
    *len = ROUND_UP(coffset + csize, QCOW2_COMPRESSED_SECTOR_SIZE) - *start;
}

static int coroutine_fn load_l2(BlockDriverState *bs, uint64_t l2_offset,
                                uint64_t **l2)
{
    BDRVQcow2State *s = bs->opaque;

    if (offset_into_cluster(s, l2_offset)) {
        qcow2_signal_corruption(bs, true, -1, -1, "L2 table offset %#"
                                PRIx64 " unaligned", l2_offset);
        return -EIO;
    }
    return qcow2_cache_get(bs, s->l2_table_cache, l2_offset, (void **)l2);
}

static void count_ref(GHashTable *h, uint64_t cluster)
{
    gpointer k = GUINT_TO_POINTER(cluster);

    g_hash_table_insert(h, k, GUINT_TO_POINTER(
        GPOINTER_TO_UINT(g_hash_table_lookup(h, k)) + 1));
}

/*
 * Would one more reference through every table of @l1 push a refcount
 * past its maximum (always the case with refcount_bits=1 once anything
 * is allocated)?  -EINVAL, as QEMU answers, before anything changes.
 */
static int coroutine_fn check_increment(BlockDriverState *bs,
                                        const uint64_t *l1, uint32_t l1_size)
{
    BDRVQcow2State *s = bs->opaque;
    GHashTable *refs = g_hash_table_new(g_direct_hash, g_direct_equal);
    GHashTableIter it;
    gpointer key, val;
    uint32_t i;
    int j, ret = 0;

    for (i = 0; i < l1_size; i++) {
        uint64_t l2_offset = l1[i] & L1E_OFFSET_MASK, *l2;

        if (!l2_offset) {
            continue;
        }
        ret = load_l2(bs, l2_offset, &l2);
        if (ret < 0) {
            goto out;
        }
        count_ref(refs, l2_offset >> s->cluster_bits);
        for (j = 0; j < s->l2_size; j++) {
            uint64_t e = be64_to_cpu(l2[j]), start, len, c;

            switch (qcow2_get_cluster_type(bs, e)) {
            case QCOW2_CLUSTER_COMPRESSED:
                compressed_range(s, e, &start, &len);
                for (c = start >> s->cluster_bits;
                     c <= (start + len - 1) >> s->cluster_bits; c++) {
                    count_ref(refs, c);
                }
                break;
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                count_ref(refs, (e & L2E_OFFSET_MASK) >> s->cluster_bits);
                break;
            default:
                break;
            }
        }
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);
    }

    g_hash_table_iter_init(&it, refs);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, GPOINTER_TO_UINT(key), &rc);
        if (ret < 0) {
            goto out;
        }
        if (rc + GPOINTER_TO_UINT(val) > s->refcount_max) {
            ret = -EINVAL;
            goto out;
        }
    }
out:
    g_hash_table_destroy(refs);
    return ret;
}

/* @e with COPIED set iff @rc is one. */
static uint64_t with_copied(uint64_t e, uint64_t rc)
{
    return rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
}

/*
 * Add @addend (-1, 0 or +1) to the refcount of every L2 table of @l1 and
 * of every cluster those tables name, then make the COPIED flags of the
 * L2 entries and of @l1 (host order, changed in place) match the new
 * refcounts.  Sets *l1_changed if an entry of @l1 changed; the caller
 * writes @l1 back where it matters.  s->lock held.
 */
static int coroutine_fn update_refcounts(BlockDriverState *bs, uint64_t *l1,
                                         uint32_t l1_size, int addend,
                                         bool *l1_changed)
{
    BDRVQcow2State *s = bs->opaque;
    bool decrease = addend < 0;
    uint32_t i;
    int j, ret;

    *l1_changed = false;
    for (i = 0; i < l1_size; i++) {
        uint64_t l2_offset = l1[i] & L1E_OFFSET_MASK, *l2, rc;

        if (!l2_offset) {
            continue;
        }
        ret = load_l2(bs, l2_offset, &l2);
        if (ret < 0) {
            return ret;
        }
        for (j = 0; j < s->l2_size; j++) {
            uint64_t e = be64_to_cpu(l2[j]), ne = e, start, len;

            switch (qcow2_get_cluster_type(bs, e)) {
            case QCOW2_CLUSTER_COMPRESSED:
                if (addend) {
                    compressed_range(s, e, &start, &len);
                    ret = qcow2_update_refcount(bs, start, len, 1, decrease);
                }
                break;
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                if (offset_into_cluster(s, e & L2E_OFFSET_MASK)) {
                    qcow2_signal_corruption(bs, true, -1, -1, "Cluster "
                                            "allocation offset %#" PRIx64
                                            " unaligned (L2 offset: %#"
                                            PRIx64 ", L2 index: %#x)",
                                            e & L2E_OFFSET_MASK, l2_offset,
                                            j);
                    ret = -EIO;
                    break;
                }
                if (addend) {
                    ret = qcow2_update_cluster_refcount(
                        bs, (e & L2E_OFFSET_MASK) >> s->cluster_bits, 1,
                        decrease);
                }
                if (ret >= 0) {
                    ret = qcow2_get_refcount(bs, (e & L2E_OFFSET_MASK) >>
                                             s->cluster_bits, &rc);
                }
                if (ret >= 0) {
                    ne = with_copied(e, rc);
                }
                break;
            default:
                /* Nothing to write in place: never COPIED. */
                ne = e & ~QCOW_OFLAG_COPIED;
                break;
            }
            if (ret < 0) {
                qcow2_cache_put(s->l2_table_cache, (void **)&l2);
                return ret;
            }
            if (ne != e) {
                l2[j] = cpu_to_be64(ne);
                qcow2_cache_entry_mark_dirty(s->l2_table_cache, l2);
            }
        }
        qcow2_cache_put(s->l2_table_cache, (void **)&l2);

        if (addend) {
            ret = qcow2_update_cluster_refcount(bs, l2_offset >>
                                                s->cluster_bits, 1, decrease);
            if (ret < 0) {
                return ret;
            }
        }
        ret = qcow2_get_refcount(bs, l2_offset >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if (with_copied(l1[i], rc) != l1[i]) {
            l1[i] = with_copied(l1[i], rc);
            *l1_changed = true;
        }
    }
    return 0;
}

/* Write the whole in-memory active L1 table (changed flags). */
static int coroutine_fn write_active_l1(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *buf;
    uint32_t i;
    int ret;

    if (!s->l1_size) {
        return 0;
    }
    buf = g_new(uint64_t, s->l1_size);
    for (i = 0; i < s->l1_size; i++) {
        buf[i] = cpu_to_be64(s->l1_table[i]);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L1,
                                        s->l1_table_offset,
                                        (int64_t)s->l1_size * 8);
    if (ret >= 0) {
        ret = bdrv_co_pwrite_sync(bs->file, s->l1_table_offset,
                                  (int64_t)s->l1_size * 8, buf, 0);
    }
    g_free(buf);
    return ret;
}

/* Recompute the COPIED flags of the active tables and persist them. */
static int coroutine_fn refresh_active_flags(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    bool changed;
    int ret;

    ret = update_refcounts(bs, s->l1_table, s->l1_size, 0, &changed);
    if (ret >= 0 && changed) {
        ret = write_active_l1(bs);
    }
    return ret;
}

/* Read snapshot @sn's L1 table in host order (after validating it). */
static int coroutine_fn read_snapshot_l1(BlockDriverState *bs,
                                         const QCowSnapshot *sn,
                                         uint64_t **l1, Error **errp)
{
    uint32_t i;
    int ret;

    *l1 = NULL;
    ret = qcow2_validate_table(bs, sn->l1_table_offset, sn->l1_size, 8,
                               QCOW_MAX_L1_SIZE, "Snapshot L1 table", errp);
    if (ret < 0) {
        return ret;
    }
    *l1 = g_try_new0(uint64_t, MAX(sn->l1_size, 1));
    if (!*l1) {
        error_setg(errp, "Could not allocate the snapshot L1 table");
        return -ENOMEM;
    }
    if (sn->l1_size) {
        ret = bdrv_co_pread(bs->file, sn->l1_table_offset,
                            (int64_t)sn->l1_size * 8, *l1, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the snapshot L1 "
                             "table");
            g_free(*l1);
            *l1 = NULL;
            return ret;
        }
    }
    for (i = 0; i < sn->l1_size; i++) {
        (*l1)[i] = be64_to_cpu((*l1)[i]);
    }
    return 0;
}

/* Refusals common to every change (the message says why). */
static int check_writable(BlockDriverState *bs, const char *what,
                          Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (bs->read_only) {
        error_setg(errp, "Cannot %s of a read-only image", what);
        return -EACCES;
    }
    if (qcow2_is_corrupt(s)) {
        error_setg(errp, "Cannot %s of an image marked corrupt "
                   "(repair it with 'qemu-img check -r all')", what);
        return -EIO;
    }
    if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        /* Refcounts are not exact: walking them would spread errors. */
        error_setg(errp, "Cannot %s of an image whose lazy refcounts "
                   "are not up to date", what);
        return -EIO;
    }
    return 0;
}

static int refuse_zoned(BlockDriverState *bs, const char *what, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->has_zoned_ext || s->zoned ||
        (s->incompatible_features & QCOW2_INCOMPAT_ZONED)) {
        /* Reverting would move data behind the zones' write pointers. */
        error_setg(errp, "Cannot %s of a zoned image: internal "
                   "snapshots are not supported with zones", what);
        return -ENOTSUP;
    }
    return 0;
}

/* ---- create ---------------------------------------------------------------------- */

int coroutine_fn qcow2_snapshot_create(BlockDriverState *bs,
                                       QEMUSnapshotInfo *sn_info,
                                       Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCowSnapshot *tab = NULL, *sn;
    uint64_t *l1_copy = NULL;
    int64_t l1_offset = 0;
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8, new_size;
    bool changed, counted = false;
    uint32_t i;
    int ret;

    ret = refuse_zoned(bs, "create a snapshot", errp);
    if (ret >= 0) {
        ret = check_writable(bs, "create a snapshot", errp);
    }
    if (ret < 0) {
        return ret;
    }
    if (s->nb_snapshots >= QCOW_MAX_SNAPSHOTS) {
        return -EFBIG;
    }

    qemu_co_mutex_lock(&s->lock);
    if (!sn_info->id_str[0]) {
        /* One past the largest numeric ID, as QEMU picks them. */
        unsigned long id, max = 0;

        for (i = 0; i < s->nb_snapshots; i++) {
            id = strtoul(s->snapshots[i].id_str, NULL, 10);
            max = MAX(max, id);
        }
        snprintf(sn_info->id_str, sizeof(sn_info->id_str), "%lu", max + 1);
    }
    if (find_snapshot(s, sn_info->id_str, NULL) >= 0) {
        ret = -EEXIST;
        goto out;
    }

    /* The new table, built ahead so that a size problem changes nothing. */
    tab = g_new0(QCowSnapshot, s->nb_snapshots + 1);
    if (s->nb_snapshots) {
        memcpy(tab, s->snapshots, s->nb_snapshots * sizeof(*tab));
    }
    sn = &tab[s->nb_snapshots];
    sn->id_str = g_strdup(sn_info->id_str);
    sn->name = g_strdup(sn_info->name);
    sn->l1_size = s->l1_size;
    sn->disk_size = s->size;
    sn->vm_state_size = sn_info->vm_state_size;
    sn->date_sec = sn_info->date_sec;
    sn->date_nsec = sn_info->date_nsec;
    sn->vm_clock_nsec = sn_info->vm_clock_nsec;
    sn->icount = sn_info->icount;
    new_size = 0;
    for (i = 0; i <= s->nb_snapshots; i++) {
        new_size = ROUND_UP(new_size, 8) + entry_size(&tab[i]);
    }
    if (new_size > QCOW_MAX_SNAPSHOTS_SIZE) {
        ret = -EFBIG;
        goto out;
    }

    /* refcount_bits=1 (or saturated refcounts) ends here, unchanged. */
    ret = check_increment(bs, s->l1_table, s->l1_size);
    if (ret < 0) {
        goto out;
    }

    /* Write all pending table updates first: the copy must see them. */
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        goto out;
    }
    if (l1_bytes) {
        l1_offset = qcow2_alloc_clusters(bs, l1_bytes);
        if (l1_offset < 0) {
            ret = l1_offset;
            l1_offset = 0;
            goto out;
        }
        /* The copy is shared: COPIED is meaningless there, keep it clear. */
        l1_copy = g_new(uint64_t, s->l1_size);
        for (i = 0; i < s->l1_size; i++) {
            l1_copy[i] = cpu_to_be64(s->l1_table[i] & ~QCOW_OFLAG_COPIED);
        }
        ret = qcow2_pre_write_overlap_check(bs, 0, l1_offset, l1_bytes);
        if (ret >= 0) {
            ret = bdrv_co_pwrite(bs->file, l1_offset, l1_bytes, l1_copy, 0);
        }
        if (ret < 0) {
            goto out;
        }
        qcow2_meta_filter_add(s, l1_offset, l1_bytes);
    }
    sn->l1_table_offset = l1_offset;

    /* One more reference to everything; active COPIED flags drop. */
    counted = true;
    ret = update_refcounts(bs, s->l1_table, s->l1_size, 1, &changed);
    if (ret >= 0 && changed) {
        ret = write_active_l1(bs);
    }
    if (ret < 0) {
        goto out;
    }

    ret = write_snapshot_table(bs, tab, s->nb_snapshots + 1);
    if (ret < 0) {
        goto out;
    }
    tab = NULL;
    l1_offset = 0;
    counted = false;

out:
    if (counted) {
        /* Best effort: give the references back (else only leaks). */
        if (update_refcounts(bs, s->l1_table, s->l1_size, -1,
                             &changed) >= 0 && changed) {
            write_active_l1(bs);
        }
    }
    if (l1_offset > 0) {
        qcow2_free_clusters(bs, l1_offset, l1_bytes);
    }
    if (tab) {
        g_free(tab[s->nb_snapshots].id_str);
        g_free(tab[s->nb_snapshots].name);
        g_free(tab);
    }
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
    }
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    g_free(l1_copy);
    return ret;
}

/* ---- goto ------------------------------------------------------------------------ */

int coroutine_fn qcow2_snapshot_goto(BlockDriverState *bs,
                                     const char *id_or_name, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCowSnapshot *sn;
    uint64_t *sn_l1 = NULL, *old_l1 = NULL, need;
    Error *local_err = NULL;
    uint32_t i, old_size;
    bool changed;
    int idx, ret;

    ret = refuse_zoned(bs, "apply a snapshot", errp);
    if (ret >= 0) {
        ret = check_writable(bs, "apply a snapshot", errp);
    }
    if (ret < 0) {
        return ret;
    }

    qemu_co_mutex_lock(&s->lock);
    idx = find_snapshot_by_id_or_name(s, id_or_name);
    if (idx < 0) {
        ret = -ENOENT;
        goto out;
    }
    sn = &s->snapshots[idx];
    /*
     * QEMU prints these problems on their own line and fails with
     * "Failed to load snapshot: <errno>": do the same.
     */
    if (sn->disk_size > (uint64_t)INT64_MAX - s->cluster_size ||
        sn->disk_size % BDRV_SECTOR_SIZE) {
        error_report("Snapshot '%s' has an invalid disk size %" PRIu64,
                     sn->id_str, sn->disk_size);
        ret = -EINVAL;
        goto out;
    }
    ret = read_snapshot_l1(bs, sn, &sn_l1, &local_err);
    if (ret < 0) {
        error_report_err(local_err);
        goto out;
    }
    ret = check_increment(bs, sn_l1, sn->l1_size);
    if (ret < 0) {
        goto out;
    }

    /* The active table must hold every entry the snapshot's view needs. */
    need = MAX((uint64_t)sn->l1_size, (uint64_t)size_to_l1(s, sn->disk_size));
    ret = qcow2_grow_l1_table(bs, need, true);
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret < 0) {
        goto out;
    }

    /* References of the snapshot's tree go up before anything uses it. */
    ret = update_refcounts(bs, sn_l1, sn->l1_size, 1, &changed);
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto out;
    }

    /* Switch: the snapshot's entries, zero padded, over the active L1. */
    old_size = s->l1_size;
    old_l1 = g_memdup2(s->l1_table, (size_t)old_size * 8);
    for (i = 0; i < s->l1_size; i++) {
        s->l1_table[i] = i < sn->l1_size ? sn_l1[i] : 0;
    }
    ret = write_active_l1(bs);
    if (ret < 0) {
        /* The old table may be partly overwritten: keep the old view in
         * memory; the extra references are leaks at worst. */
        memcpy(s->l1_table, old_l1, (size_t)old_size * 8);
        goto out;
    }

    if (sn->disk_size != s->size) {
        uint64_t be = cpu_to_be64(sn->disk_size);

        ret = bdrv_co_pwrite_sync(bs->file, offsetof(QCowHeader, size),
                                  sizeof(be), &be, 0);
        if (ret < 0) {
            goto out;
        }
        s->size = sn->disk_size;
        s->l1_vm_state_index = size_to_l1(s, s->size);
    }

    /* Drop the references of the old active tree, then fix flags. */
    ret = update_refcounts(bs, old_l1, old_size, -1, &changed);
    if (ret >= 0) {
        ret = refresh_active_flags(bs);
    }
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
    }
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
out:
    qemu_co_mutex_unlock(&s->lock);
    g_free(sn_l1);
    g_free(old_l1);
    return ret;
}

/* ---- delete ---------------------------------------------------------------------- */

int coroutine_fn qcow2_snapshot_delete(BlockDriverState *bs, const char *id,
                                       const char *name, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCowSnapshot *tab, gone;
    uint64_t *sn_l1 = NULL;
    bool changed;
    int idx, ret;

    ret = check_writable(bs, "delete a snapshot", errp);
    if (ret < 0) {
        return ret;
    }

    qemu_co_mutex_lock(&s->lock);
    idx = find_snapshot(s, id, name);
    if (idx < 0) {
        error_setg(errp, "Can't find the snapshot");
        ret = -ENOENT;
        goto out;
    }
    gone = s->snapshots[idx];
    ret = read_snapshot_l1(bs, &gone, &sn_l1, errp);
    if (ret < 0) {
        goto out;
    }

    /* First the table without the entry: afterwards nothing needs the
     * snapshot's references, and a crash only leaks them. */
    tab = g_new0(QCowSnapshot, MAX(s->nb_snapshots - 1, 1));
    memcpy(tab, s->snapshots, idx * sizeof(*tab));
    memcpy(tab + idx, s->snapshots + idx + 1,
           (s->nb_snapshots - idx - 1) * sizeof(*tab));
    ret = write_snapshot_table(bs, tab, s->nb_snapshots - 1);
    if (ret < 0) {
        g_free(tab);
        error_setg_errno(errp, -ret, "Failed to remove snapshot from "
                         "snapshot list");
        goto out;
    }

    ret = update_refcounts(bs, sn_l1, gone.l1_size, -1, &changed);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to free the cluster and L1 "
                         "table");
        goto free_entry;
    }
    if (gone.l1_size) {
        qcow2_free_clusters(bs, gone.l1_table_offset,
                            (int64_t)gone.l1_size * 8);
    }
    /* Clusters only the active image still uses become writable. */
    ret = refresh_active_flags(bs);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
    }
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to update snapshot status in "
                         "disk");
    }
free_entry:
    g_free(gone.id_str);
    g_free(gone.name);
    g_free(gone.unknown_extra_data);
out:
    qemu_co_mutex_unlock(&s->lock);
    g_free(sn_l1);
    return ret;
}

/* ---- list ------------------------------------------------------------------------ */

int qcow2_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_tab)
{
    BDRVQcow2State *s = bs->opaque;
    QEMUSnapshotInfo *tab;
    uint32_t i;

    *psn_tab = NULL;
    if (!s->nb_snapshots || !s->snapshots) {
        return 0;
    }
    tab = g_new0(QEMUSnapshotInfo, s->nb_snapshots);
    for (i = 0; i < s->nb_snapshots; i++) {
        const QCowSnapshot *sn = &s->snapshots[i];

        pstrcpy(tab[i].id_str, sizeof(tab[i].id_str), sn->id_str);
        pstrcpy(tab[i].name, sizeof(tab[i].name), sn->name);
        tab[i].vm_state_size = sn->vm_state_size;
        tab[i].date_sec = sn->date_sec;
        tab[i].date_nsec = sn->date_nsec;
        tab[i].vm_clock_nsec = sn->vm_clock_nsec;
        tab[i].icount = sn->icount;
    }
    *psn_tab = tab;
    return s->nb_snapshots;
}

QObject *qcow2_query_snapshots(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    QObject *list;
    uint32_t i;

    if (!s->nb_snapshots || !s->snapshots) {
        return NULL;
    }
    list = qobj_list();
    for (i = 0; i < s->nb_snapshots; i++) {
        QCowSnapshot *sn = &s->snapshots[i];
        QObject *d = qobj_dict();

        if (sn->icount != UINT64_MAX) {
            qdict_obj_put_int(d, "icount", sn->icount);
        }
        qdict_obj_put_int(d, "vm-clock-nsec",
                          sn->vm_clock_nsec % 1000000000);
        qdict_obj_put_str(d, "name", sn->name ? sn->name : "");
        qdict_obj_put_int(d, "date-sec", sn->date_sec);
        qdict_obj_put_int(d, "date-nsec", sn->date_nsec);
        qdict_obj_put_int(d, "vm-clock-sec",
                          sn->vm_clock_nsec / 1000000000);
        qdict_obj_put_str(d, "id", sn->id_str ? sn->id_str : "");
        qdict_obj_put_int(d, "vm-state-size", sn->vm_state_size);
        qlist_obj_append(list, d);
    }
    return list;
}

/* ---- check repair ---------------------------------------------------------------- */

/*
 * Write the table again from memory ("check -r"): entries whose extra
 * data was too short get the full fields, with the values the read gave
 * them (the header's VM state size, the image size).  The old table is
 * freed only if @free_old: one the check did not count (past the end of
 * the file) has no reference of its own to drop.  s->lock held.
 */
int coroutine_fn qcow2_rewrite_snapshot_table(BlockDriverState *bs,
                                              bool free_old)
{
    BDRVQcow2State *s = bs->opaque;
    QCowSnapshot *tab = g_new0(QCowSnapshot, MAX(s->nb_snapshots, 1));
    int old_size = s->snapshots_size;
    uint32_t i;
    int ret;

    memcpy(tab, s->snapshots, s->nb_snapshots * sizeof(*tab));
    if (!free_old) {
        s->snapshots_size = 0;
    }
    ret = write_snapshot_table(bs, tab, s->nb_snapshots);
    if (ret < 0) {
        s->snapshots_size = old_size;
        g_free(tab);
        return ret;
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        s->snapshots[i].extra_data_size = MAX(s->snapshots[i].extra_data_size,
                                              sizeof(QCowSnapshotExtraData));
    }
    return 0;
}
