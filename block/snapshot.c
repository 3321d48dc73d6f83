/*
 * Internal snapshots: generic wrappers over the drivers' callbacks.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The error wording follows QEMU's block layer so that qemu-img prints
 * the same messages: a failed goto without a driver message becomes
 * "Failed to load snapshot: <errno text>".
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/snapshot.h"

/* The virtual size may change (goto): forget the cached length. */
static void coroutine_fn refresh_length(BlockDriverState *bs)
{
    int64_t len;

    bs->total_bytes = -1;
    len = bdrv_co_getlength(bs);
    bs->total_bytes = len >= 0 ? len : -1;
}

int coroutine_fn bdrv_co_snapshot_create(BlockDriverState *bs,
                                         QEMUSnapshotInfo *sn_info,
                                         Error **errp)
{
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_snapshot_create) {
        return -ENOTSUP;
    }
    bdrv_drained_begin(bs);
    ret = bs->drv->bdrv_co_snapshot_create(bs, sn_info, errp);
    bdrv_drained_end(bs);
    return ret;
}

int coroutine_fn bdrv_co_snapshot_goto(BlockDriverState *bs,
                                       const char *id_or_name, Error **errp)
{
    Error *local_err = NULL;
    int ret;

    if (!bs->drv) {
        error_setg(errp, "Block driver is closed");
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_snapshot_goto) {
        error_setg(errp, "Block driver does not support snapshots");
        return -ENOTSUP;
    }
    bdrv_drained_begin(bs);
    ret = bs->drv->bdrv_co_snapshot_goto(bs, id_or_name, &local_err);
    refresh_length(bs);
    bdrv_drained_end(bs);
    if (ret < 0) {
        if (local_err) {
            error_propagate(errp, local_err);
        } else {
            error_setg_errno(errp, -ret, "Failed to load snapshot");
        }
    }
    return ret;
}

int coroutine_fn bdrv_co_snapshot_delete(BlockDriverState *bs,
                                         const char *id, const char *name,
                                         Error **errp)
{
    int ret;

    if (!bs->drv) {
        error_setg(errp, "Block driver is closed");
        return -ENOMEDIUM;
    }
    if (!id && !name) {
        error_setg(errp, "snapshot_id and name are both NULL");
        return -EINVAL;
    }
    if (!bs->drv->bdrv_co_snapshot_delete) {
        error_setg(errp, "Block format '%s' does not support internal "
                   "snapshot deletion", bs->drv->format_name);
        return -ENOTSUP;
    }
    bdrv_drained_begin(bs);
    ret = bs->drv->bdrv_co_snapshot_delete(bs, id, name, errp);
    bdrv_drained_end(bs);
    return ret;
}

int bdrv_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_tab)
{
    *psn_tab = NULL;
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_snapshot_list) {
        return -ENOTSUP;
    }
    return bs->drv->bdrv_snapshot_list(bs, psn_tab);
}

int bdrv_snapshot_find(BlockDriverState *bs, QEMUSnapshotInfo *sn_info,
                       const char *name)
{
    QEMUSnapshotInfo *tab;
    int n, i, ret = -ENOENT;

    n = bdrv_snapshot_list(bs, &tab);
    if (n < 0) {
        return n;
    }
    for (i = 0; i < n; i++) {
        if (!strcmp(tab[i].name, name)) {
            *sn_info = tab[i];
            ret = 0;
            break;
        }
    }
    g_free(tab);
    return ret;
}

/* ---- synchronous wrappers ------------------------------------------------ */

typedef struct SnapshotCo {
    BlockDriverState *bs;
    QEMUSnapshotInfo *sn_info;
    const char *id;
    const char *name;
    Error **errp;
    int op;
    int ret;
    bool done;
} SnapshotCo;

enum { SNAP_CO_CREATE, SNAP_CO_GOTO, SNAP_CO_DELETE };

static void coroutine_fn snapshot_co_entry(void *opaque)
{
    SnapshotCo *c = opaque;

    switch (c->op) {
    case SNAP_CO_CREATE:
        c->ret = bdrv_co_snapshot_create(c->bs, c->sn_info, c->errp);
        break;
    case SNAP_CO_GOTO:
        c->ret = bdrv_co_snapshot_goto(c->bs, c->id, c->errp);
        break;
    default:
        c->ret = bdrv_co_snapshot_delete(c->bs, c->id, c->name, c->errp);
        break;
    }
    c->done = true;
}

int bdrv_snapshot_create(BlockDriverState *bs, QEMUSnapshotInfo *sn_info,
                         Error **errp)
{
    SnapshotCo c = { .bs = bs, .sn_info = sn_info, .errp = errp,
                     .op = SNAP_CO_CREATE };

    bdrv_run_co(snapshot_co_entry, &c, &c.done);
    return c.ret;
}

int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name,
                       Error **errp)
{
    SnapshotCo c = { .bs = bs, .id = id_or_name, .errp = errp,
                     .op = SNAP_CO_GOTO };

    bdrv_run_co(snapshot_co_entry, &c, &c.done);
    return c.ret;
}

int bdrv_snapshot_delete(BlockDriverState *bs, const char *id,
                         const char *name, Error **errp)
{
    SnapshotCo c = { .bs = bs, .id = id, .name = name, .errp = errp,
                     .op = SNAP_CO_DELETE };

    bdrv_run_co(snapshot_co_entry, &c, &c.done);
    return c.ret;
}
