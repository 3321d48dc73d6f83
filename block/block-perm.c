/*
 * Block layer permissions: what each edge of the node graph needs from
 * the node below it and what it lets others do, following QEMU's model
 * so that the image locks a file node takes are the ones QEMU takes.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A node's total permissions are the union of what its parent edges
 * hold and the intersection of what they share; a node without parents
 * holds nothing and shares everything.  Drivers derive their children's
 * permissions from that (bdrv_child_perm, default bdrv_default_perms),
 * and protocol nodes turn their totals into image locks (bdrv_set_perm).
 * The totals are recomputed top-down whenever an edge is added: when a
 * format node gets its file or backing child and when a BlockBackend
 * attaches with the permissions its open flags ask for.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"

void bdrv_default_perms(BlockDriverState *bs, BdrvChild *c,
                        BdrvChildRole role, uint64_t perm, uint64_t shared,
                        uint64_t *nperm, uint64_t *nshared)
{
    bool inactive = bs->open_flags & BDRV_O_INACTIVE;

    perm &= BLK_PERM_ALL;
    shared &= BLK_PERM_ALL;

    if (role & BDRV_CHILD_FILTERED) {
        /* A filter forwards what its users need and allow, nothing more. */
        *nperm = perm;
        *nshared = shared;
        return;
    }

    if (role & BDRV_CHILD_COW) {
        /* Backing files are only ever read, and only if the parent reads. */
        *nperm = perm & BLK_PERM_CONSISTENT_READ;
        /* Others may change it only if our users cope with changing data. */
        *nshared = (shared & BLK_PERM_WRITE) ?
                   BLK_PERM_WRITE | BLK_PERM_RESIZE : 0;
        *nshared |= BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
        if (inactive) {
            *nshared |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
        }
        return;
    }

    /* Storage (data and/or metadata) of a format node. */
    if (role & BDRV_CHILD_METADATA) {
        /* Metadata may be updated even when nobody writes guest data. */
        if (!bs->read_only && !inactive) {
            perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
        }
        if (!(bs->open_flags & BDRV_O_NO_IO)) {
            perm |= BLK_PERM_CONSISTENT_READ;
        }
        /* Metadata read once must stay valid: nobody else may change it. */
        shared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    }
    if (role & BDRV_CHILD_DATA) {
        /* The format may rely on the size of its data file. */
        shared &= ~BLK_PERM_RESIZE;
        /* Unchanged writes above can become real writes below (COW). */
        if (perm & BLK_PERM_WRITE_UNCHANGED) {
            perm |= BLK_PERM_WRITE;
        }
        /* Writing may extend the file. */
        if (perm & BLK_PERM_WRITE) {
            perm |= BLK_PERM_RESIZE;
        }
    }
    if (inactive) {
        shared |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
    }
    *nperm = perm;
    *nshared = shared;
}

void bdrv_parent_link(BdrvChild *c)
{
    c->next_parent = c->bs->parents;
    c->bs->parents = c;
}

void bdrv_parent_unlink(BdrvChild *c)
{
    BdrvChild **p;

    for (p = &c->bs->parents; *p; p = &(*p)->next_parent) {
        if (*p == c) {
            *p = c->next_parent;
            c->next_parent = NULL;
            return;
        }
    }
}

static void bdrv_cumulative_perms(BlockDriverState *bs, uint64_t *perm,
                                  uint64_t *shared)
{
    BdrvChild *c;

    *perm = 0;
    *shared = BLK_PERM_ALL;
    for (c = bs->parents; c; c = c->next_parent) {
        *perm |= c->perm;
        *shared &= c->shared;
    }
}

static void bdrv_child_perm(BlockDriverState *bs, BdrvChild *c,
                            uint64_t perm, uint64_t shared,
                            uint64_t *nperm, uint64_t *nshared)
{
    if (bs->drv && bs->drv->bdrv_child_perm) {
        bs->drv->bdrv_child_perm(bs, c, c->role, perm, shared, nperm,
                                 nshared);
    } else if (c->role) {
        bdrv_default_perms(bs, c, c->role, perm, shared, nperm, nshared);
    } else {
        *nperm = 0;
        *nshared = BLK_PERM_ALL;
    }
    /* force-share on the child: it never keeps anybody out. */
    if (c->bs->open_flags & BDRV_O_FORCE_SHARE) {
        *nshared = BLK_PERM_ALL;
    }
}

int bdrv_refresh_perms(BlockDriverState *bs, Error **errp)
{
    BdrvChild *children[2] = { bs->file, bs->backing };
    uint64_t old_perm[2], old_shared[2];
    uint64_t perm, shared;
    int i, j, ret;

    bdrv_cumulative_perms(bs, &perm, &shared);
    if (bs->drv && bs->drv->bdrv_set_perm && bs->opaque) {
        ret = bs->drv->bdrv_set_perm(bs, perm, shared, errp);
        if (ret < 0) {
            return ret;
        }
    }
    for (i = 0; i < 2; i++) {
        BdrvChild *c = children[i];

        if (!c) {
            continue;
        }
        old_perm[i] = c->perm;
        old_shared[i] = c->shared;
        bdrv_child_perm(bs, c, perm, shared, &c->perm, &c->shared);
        ret = bdrv_refresh_perms(c->bs, errp);
        if (ret < 0) {
            /* Give the edges below their old permissions back. */
            for (j = 0; j <= i; j++) {
                if (children[j]) {
                    children[j]->perm = old_perm[j];
                    children[j]->shared = old_shared[j];
                    bdrv_refresh_perms(children[j]->bs, NULL);
                }
            }
            return ret;
        }
    }
    return 0;
}
