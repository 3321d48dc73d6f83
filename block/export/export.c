/*
 * Block exports: the driver table and the registry every export type
 * shares (include/block/export.h).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Everything here runs in the main thread, which is also the home loop
 * of every node (docs/devel/block-layer.rst, "Threading model"), so the
 * registry and the reference counts need no lock.
 */
#include "qemu/osdep.h"
#include "qemu/error.h"
#include "block/export.h"
#include "block/block_int.h"

/*
 * Export types built into every binary.  A new type adds one line here
 * (and its extern declaration in export.h).
 */
static const BlockExportDriver *const builtin_drivers[] = {
#ifdef CONFIG_LINUX_IO_URING
    &blk_exp_ublk,
#endif
    NULL,
};

/* Types added at run time (tests register fakes). */
static GPtrArray *registered_drivers;

/* Registered exports, newest first. */
static BlockExport *exports;

void blk_exp_register(const BlockExportDriver *drv)
{
    if (!registered_drivers) {
        registered_drivers = g_ptr_array_new();
    }
    g_ptr_array_add(registered_drivers, (gpointer)drv);
}

static const BlockExportDriver *blk_exp_find_driver(const char *type)
{
    size_t i;

    if (registered_drivers) {
        for (i = 0; i < registered_drivers->len; i++) {
            const BlockExportDriver *drv = registered_drivers->pdata[i];

            if (!strcmp(drv->type, type)) {
                return drv;
            }
        }
    }
    for (i = 0; builtin_drivers[i]; i++) {
        if (!strcmp(builtin_drivers[i]->type, type)) {
            return builtin_drivers[i];
        }
    }
    return NULL;
}

bool blk_exp_type_known(const char *type)
{
    return blk_exp_find_driver(type) != NULL;
}

BlockExport *blk_exp_find(const char *id)
{
    BlockExport *exp;

    for (exp = exports; exp; exp = exp->next) {
        if (!strcmp(exp->id, id)) {
            return exp;
        }
    }
    return NULL;
}

bool blk_exp_any(void)
{
    return exports != NULL;
}

/* ---- drained sections reach the driver through the BlockBackend ------ */

static void blk_exp_drained_begin(void *opaque)
{
    BlockExport *exp = opaque;

    if (exp->drv->drained_begin) {
        exp->drv->drained_begin(exp);
    }
}

static void blk_exp_drained_end(void *opaque)
{
    BlockExport *exp = opaque;

    if (exp->drv->drained_end) {
        exp->drv->drained_end(exp);
    }
}

static const BlockDevOps blk_exp_dev_ops = {
    .drained_begin = blk_exp_drained_begin,
    .drained_end = blk_exp_drained_end,
};

/* ---- lifetime ---------------------------------------------------------- */

static void blk_exp_free(BlockExport *exp)
{
    blk_unref(exp->blk);
    g_free(exp->opaque);
    g_free(exp->id);
    g_free(exp->node_name);
    g_free(exp);
}

void blk_exp_ref(BlockExport *exp)
{
    assert(exp->refcount > 0);
    exp->refcount++;
}

static bool blk_exp_registered(BlockExport *exp)
{
    BlockExport *e;

    for (e = exports; e; e = e->next) {
        if (e == exp) {
            return true;
        }
    }
    return false;
}

/*
 * The last reference is often dropped in a request's completion
 * callback, with the BlockBackend's AIO code and the driver still on
 * the stack; deleting from a bottom half lets both return first.
 */
static void blk_exp_delete_bh(void *opaque)
{
    BlockExport *exp = opaque;
    BlockExport **p;

    for (p = &exports; *p; p = &(*p)->next) {
        if (*p == exp) {
            *p = exp->next;
            break;
        }
    }
    exp->drv->delete(exp);
    blk_set_dev_ops(exp->blk, NULL, NULL);
    blk_exp_free(exp);
}

void blk_exp_unref(BlockExport *exp)
{
    assert(exp->refcount > 0);
    if (--exp->refcount > 0) {
        return;
    }
    /* Only a shut-down export loses its registration reference. */
    assert(exp->shutting_down);
    aio_bh_schedule_oneshot(exp->ctx, blk_exp_delete_bh, exp);
}

void blk_exp_request_shutdown(BlockExport *exp)
{
    if (exp->shutting_down) {
        return;
    }
    exp->shutting_down = true;
    exp->drv->request_shutdown(exp);
    /* The registration reference; in-flight requests keep theirs. */
    blk_exp_unref(exp);
}

void blk_exp_close_all(void)
{
    BlockExport *exp;

    /*
     * A shutdown may delete the export (and unlink it) at once, so look
     * for the next live one from the head each time.
     */
    for (;;) {
        for (exp = exports; exp && exp->shutting_down; exp = exp->next) {
        }
        if (!exp) {
            break;
        }
        blk_exp_request_shutdown(exp);
    }
    AIO_WAIT_WHILE(qemu_get_aio_context(), exports != NULL);
}

/* ---- creation ---------------------------------------------------------- */

/* on/off (and the spellings QEMU's keyval also takes) -> *val. */
static bool blk_exp_parse_bool(const char *key, const char *s, bool *val,
                               Error **errp)
{
    if (!strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "yes")) {
        *val = true;
    } else if (!strcmp(s, "off") || !strcmp(s, "false") ||
               !strcmp(s, "no")) {
        *val = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    return true;
}

/* Remove @key from @opts and return its value (a copy), or NULL. */
static char *blk_exp_take(QDict *opts, const char *key)
{
    char *v = g_strdup(qdict_get_try_str(opts, key));

    qdict_del(opts, key);
    return v;
}

BlockExport *blk_exp_add(QDict *opts, Error **errp)
{
    const BlockExportDriver *drv;
    BlockDriverState *bs;
    BlockExport *exp = NULL;
    g_autofree char *type = blk_exp_take(opts, "type");
    g_autofree char *id = blk_exp_take(opts, "id");
    g_autofree char *node_name = blk_exp_take(opts, "node-name");
    g_autofree char *writable_str = blk_exp_take(opts, "writable");
    bool writable = false;
    const char *key, *value;
    uint64_t perm;
    int ret;

    if (!type) {
        error_setg(errp, "Parameter 'type' is missing");
        goto fail;
    }
    if (!id) {
        error_setg(errp, "Parameter 'id' is missing");
        goto fail;
    }
    if (!node_name) {
        error_setg(errp, "Parameter 'node-name' is missing");
        goto fail;
    }
    if (!id[0]) {
        error_setg(errp, "Parameter 'id' must not be empty");
        goto fail;
    }
    if (writable_str &&
        !blk_exp_parse_bool("writable", writable_str, &writable, errp)) {
        goto fail;
    }
    drv = blk_exp_find_driver(type);
    if (!drv) {
        error_setg(errp, "Unknown export type '%s'", type);
        goto fail;
    }
    if (blk_exp_find(id)) {
        error_setg(errp, "Export '%s' already exists", id);
        goto fail;
    }
    bs = bdrv_find_node(node_name);
    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", node_name);
        goto fail;
    }
    if (writable && bdrv_is_read_only(bs)) {
        error_setg(errp, "Cannot export read-only node '%s' as writable",
                   node_name);
        goto fail;
    }

    exp = g_new0(BlockExport, 1);
    exp->drv = drv;
    exp->id = g_steal_pointer(&id);
    exp->node_name = g_steal_pointer(&node_name);
    exp->writable = writable;
    exp->ctx = bdrv_get_aio_context(bs);
    exp->refcount = 1;
    exp->opaque = g_malloc0(MAX(drv->instance_size, 1));
    /*
     * Others may keep reading and writing the node (as QEMU's exports
     * allow); we only ask for write when we serve writes.
     */
    perm = BLK_PERM_CONSISTENT_READ | (writable ? BLK_PERM_WRITE : 0);
    exp->blk = blk_new_with_perm(bs, perm, BLK_PERM_ALL, errp);
    if (!exp->blk) {
        g_free(exp->opaque);
        g_free(exp->id);
        g_free(exp->node_name);
        g_free(exp);
        exp = NULL;
        goto fail;
    }

    ret = drv->create(exp, opts, errp);
    if (ret < 0) {
        blk_exp_free(exp);
        exp = NULL;
        goto fail;
    }
    exp->next = exports;
    exports = exp;
    blk_set_dev_ops(exp->blk, &blk_exp_dev_ops, exp);

    /* The driver took its keys; anything left is a mistake. */
    if (qdict_entry(opts, 0, &key, &value)) {
        error_setg(errp, "Export type '%s' does not support the option '%s'",
                   type, key);
        blk_exp_request_shutdown(exp);
        /* Requests the export already started finish first. */
        AIO_WAIT_WHILE(qemu_get_aio_context(), blk_exp_registered(exp));
        exp = NULL;
        goto fail;
    }
    qdict_free(opts);
    return exp;

fail:
    qdict_free(opts);
    return NULL;
}
