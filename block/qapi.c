/*
 * Image information as "qemu-img info" shows it: one QObject dict per
 * node with QEMU's JSON key names (in QEMU 7.2's output order), and the
 * human readable form built from the same dict.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"

QObject *bdrv_query_image_info(BlockDriverState *bs, Error **errp)
{
    QObject *info, *specific = NULL;
    BlockDriverInfo bdi;
    Error *local_err = NULL;
    int64_t size, actual;
    bool have_bdi;

    size = bdrv_getlength(bs);
    if (size < 0) {
        error_setg_errno(errp, -size, "Can't get image size '%s'",
                         bs->filename);
        return NULL;
    }
    have_bdi = bdrv_get_info(bs, &bdi) == 0;
    specific = bdrv_get_specific_info(bs, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        return NULL;
    }
    actual = bdrv_get_allocated_file_size(bs);

    /* The key order is the one QEMU 7.2 prints. */
    info = qobj_dict();
    if (bs->drv->bdrv_query_snapshots) {
        QObject *snaps = bs->drv->bdrv_query_snapshots(bs);

        if (snaps) {
            qdict_obj_put(info, "snapshots", snaps);
        }
    }
    if (bs->backing_file[0] && bs->backing_format[0]) {
        qdict_obj_put_str(info, "backing-filename-format",
                          bs->backing_format);
    }
    qdict_obj_put(info, "virtual-size", qobj_int(size));
    qdict_obj_put_str(info, "filename", bs->filename);
    if (have_bdi && bdi.cluster_size > 0) {
        qdict_obj_put_int(info, "cluster-size", bdi.cluster_size);
    }
    qdict_obj_put_str(info, "format", bs->drv->format_name);
    if (actual >= 0) {
        qdict_obj_put_int(info, "actual-size", actual);
    }
    if (specific) {
        qdict_obj_put(info, "format-specific", specific);
    }
    if (bs->backing_file[0]) {
        char *full = bdrv_get_full_backing_filename(bs, NULL);

        if (full) {
            qdict_obj_put_str(info, "full-backing-filename", full);
            g_free(full);
        }
        qdict_obj_put_str(info, "backing-filename", bs->backing_file);
    }
    qdict_obj_put_bool(info, "dirty-flag", have_bdi && bdi.is_dirty);
    return info;
}

static const char *info_str(const QObject *info, const char *key)
{
    QObject *v = qdict_obj_get(info, key);

    return v && qobj_type(v) == QTYPE_STR ? qobj_get_str(v) : NULL;
}

void bdrv_image_info_print_human(const QObject *info, GString *out)
{
    QObject *v;
    const char *bf, *full, *bfmt;
    int64_t vsize;
    g_autofree char *vs = NULL;

    g_string_append_printf(out, "image: %s\n", info_str(info, "filename"));
    g_string_append_printf(out, "file format: %s\n", info_str(info, "format"));
    vsize = qobj_get_int(qdict_obj_get(info, "virtual-size"));
    vs = size_to_str(vsize);
    g_string_append_printf(out, "virtual size: %s (%" PRId64 " bytes)\n",
                           vs, vsize);
    v = qdict_obj_get(info, "actual-size");
    if (v) {
        g_autofree char *as = size_to_str(qobj_get_int(v));
        g_string_append_printf(out, "disk size: %s\n", as);
    } else {
        g_string_append(out, "disk size: unavailable\n");
    }
    v = qdict_obj_get(info, "encrypted");
    if (v && qobj_get_bool(v)) {
        g_string_append(out, "encrypted: yes\n");
    }
    v = qdict_obj_get(info, "cluster-size");
    if (v) {
        g_string_append_printf(out, "cluster_size: %" PRId64 "\n",
                               qobj_get_int(v));
    }
    v = qdict_obj_get(info, "dirty-flag");
    if (v && qobj_get_bool(v)) {
        g_string_append(out, "cleanly shut down: no\n");
    }
    bf = info_str(info, "backing-filename");
    if (bf) {
        full = info_str(info, "full-backing-filename");
        g_string_append_printf(out, "backing file: %s", bf);
        if (full && strcmp(bf, full) != 0) {
            g_string_append_printf(out, " (actual path: %s)", full);
        }
        g_string_append_c(out, '\n');
        bfmt = info_str(info, "backing-filename-format");
        if (bfmt) {
            g_string_append_printf(out, "backing file format: %s\n", bfmt);
        }
    }
    v = qdict_obj_get(info, "snapshots");
    if (v && qobj_type(v) == QTYPE_LIST) {
        size_t i;

        g_string_append(out, "Snapshot list:\n");
        g_string_append_printf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID",
                               "TAG", "VM SIZE", "DATE", "VM CLOCK",
                               "ICOUNT");
        for (i = 0; i < qlist_obj_size(v); i++) {
            QObject *sn = qlist_obj_get(v, i);
            QObject *ic = qdict_obj_get(sn, "icount");
            int64_t secs = qobj_get_int(qdict_obj_get(sn, "vm-clock-sec"));
            int64_t nsec = qobj_get_int(qdict_obj_get(sn, "vm-clock-nsec"));
            g_autoptr(GDateTime) date = g_date_time_new_from_unix_local(
                qobj_get_int(qdict_obj_get(sn, "date-sec")));
            g_autofree char *date_str =
                date ? g_date_time_format(date, "%Y-%m-%d %H:%M:%S") : NULL;
            g_autofree char *vm_size = size_to_str(
                qobj_get_int(qdict_obj_get(sn, "vm-state-size")));
            g_autofree char *clock = g_strdup_printf(
                "%02d:%02d:%02d.%03d", (int)(secs / 3600),
                (int)((secs / 60) % 60), (int)(secs % 60),
                (int)(nsec / 1000000));
            g_autofree char *icount =
                ic ? g_strdup_printf("%" PRId64, qobj_get_int(ic))
                   : g_strdup("");

            g_string_append_printf(out, "%-9s %-16s %8s%20s%13s%11s\n",
                                   info_str(sn, "id"), info_str(sn, "name"),
                                   vm_size, date_str ? date_str : "",
                                   clock, icount);
        }
    }
    v = qdict_obj_get(info, "format-specific");
    if (v) {
        QObject *data = qdict_obj_get(v, "data");

        g_string_append(out, "Format specific information:\n");
        if (data) {
            qobj_print_human(data, 1, out);
        }
    }
}
