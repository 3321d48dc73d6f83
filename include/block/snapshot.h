/*
 * Internal snapshots: the generic API over the drivers' snapshot
 * callbacks (block/snapshot.c).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The bdrv_co_* functions must be called from a coroutine; the plain
 * forms are synchronous wrappers (see block/block.h).  They drain the
 * node first; the caller must not start new requests on it meanwhile.
 */
#ifndef BLOCK_SNAPSHOT_H
#define BLOCK_SNAPSHOT_H

#include "block/block.h"

/*
 * One internal snapshot as the tools see it.  The fixed buffers give
 * the limits QEMU's tools have: longer names are cut (255 bytes).
 */
typedef struct QEMUSnapshotInfo {
    char id_str[128];            /* unique ID; "" on create: pick one */
    char name[256];              /* tag, need not be unique */
    uint64_t vm_state_size;      /* bytes of saved VM state */
    uint32_t date_sec;           /* wall clock time of creation */
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;      /* guest clock at creation */
    uint64_t icount;             /* instruction count; UINT64_MAX: none */
} QEMUSnapshotInfo;

/*
 * Create a snapshot of the current state.  Returns 0 or -errno; *errp is
 * set only for refusals with a message of their own (a zoned or corrupt
 * image, ...): otherwise the caller reports the errno, as QEMU's
 * qemu-img does.  -ENOTSUP without *errp: no snapshot support.
 */
int coroutine_fn bdrv_co_snapshot_create(BlockDriverState *bs,
                                         QEMUSnapshotInfo *sn_info,
                                         Error **errp);
/* Revert to the snapshot with ID or (failing that) name @id_or_name. */
int coroutine_fn bdrv_co_snapshot_goto(BlockDriverState *bs,
                                       const char *id_or_name, Error **errp);
/* Delete the snapshot matching @id and @name (either may be NULL). */
int coroutine_fn bdrv_co_snapshot_delete(BlockDriverState *bs,
                                         const char *id, const char *name,
                                         Error **errp);

int bdrv_snapshot_create(BlockDriverState *bs, QEMUSnapshotInfo *sn_info,
                         Error **errp);
int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name,
                       Error **errp);
int bdrv_snapshot_delete(BlockDriverState *bs, const char *id,
                         const char *name, Error **errp);

/*
 * The snapshot list: the count (*psn_tab g_free'd by the caller, NULL if
 * none) or -errno (-ENOTSUP: no snapshot support).  No I/O.
 */
int bdrv_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_tab);
/* Copy the first snapshot named @name (names only, not IDs) to *sn_info. */
int bdrv_snapshot_find(BlockDriverState *bs, QEMUSnapshotInfo *sn_info,
                       const char *name);

#endif
