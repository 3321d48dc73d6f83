/*
 * Image creation (bdrv_create, bdrv_img_create for "qemu-img create"),
 * measure dispatch and backing file name helpers.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"

/* ---- backing file names ------------------------------------------------ */

/* "proto:..." and "json:..." names are not relative paths. */
static bool path_has_protocol(const char *path)
{
    const char *p = path;

    while (*p && *p != ':' && *p != '/') {
        p++;
    }
    return *p == ':';
}

char *bdrv_get_full_backing_filename_from_filename(const char *backed,
                                                   const char *backing,
                                                   Error **errp)
{
    const char *slash;

    if (!backing || !backing[0]) {
        return NULL;
    }
    if (backing[0] == '/' || path_has_protocol(backing)) {
        return g_strdup(backing);
    }
    if (!backed || !backed[0] || g_str_has_prefix(backed, "json:")) {
        error_setg(errp, "Cannot use relative backing file names for '%s'",
                   backed ? backed : "");
        return NULL;
    }
    /* Relative to the directory of the image that names it. */
    slash = strrchr(backed, '/');
    if (!slash) {
        return g_strdup(backing);
    }
    return g_strdup_printf("%.*s%s", (int)(slash - backed + 1), backed,
                           backing);
}

char *bdrv_get_full_backing_filename(BlockDriverState *bs, Error **errp)
{
    return bdrv_get_full_backing_filename_from_filename(bs->filename,
                                                        bs->backing_file,
                                                        errp);
}

/* ---- bdrv_create ------------------------------------------------------- */

typedef struct CreateCo {
    BlockDriver *drv;
    const char *filename;
    QemuOpts *opts;
    Error **errp;
    int ret;
    bool done;
} CreateCo;

static void coroutine_fn bdrv_create_entry(void *opaque)
{
    CreateCo *c = opaque;

    c->ret = c->drv->bdrv_co_create_opts(c->drv, c->filename, c->opts,
                                         c->errp);
    c->done = true;
}

int bdrv_create(BlockDriver *drv, const char *filename, QemuOpts *opts,
                Error **errp)
{
    CreateCo c = { .drv = drv, .filename = filename, .opts = opts,
                   .errp = errp };

    bdrv_init();
    if (!drv->bdrv_co_create_opts) {
        error_setg(errp, "Driver '%s' does not support image creation",
                   drv->format_name);
        return -ENOTSUP;
    }
    bdrv_run_co(bdrv_create_entry, &c, &c.done);
    return c.ret;
}

int coroutine_fn bdrv_co_create_file(const char *filename, QemuOpts *opts,
                                     Error **errp)
{
    BlockDriver *proto;
    QemuOpts *popts;
    const QemuOptDesc *d;
    int ret;

    proto = bdrv_find_protocol(filename, true, errp);
    if (!proto) {
        return -ENOENT;
    }
    if (!proto->bdrv_co_create_opts || !proto->create_opts) {
        error_setg(errp, "Driver '%s' does not support image creation",
                   proto->format_name);
        return -ENOTSUP;
    }
    /* Pass on only what the protocol understands. */
    popts = qemu_opts_create(proto->create_opts);
    for (d = proto->create_opts->desc; d && d->name; d++) {
        if (qemu_opt_has(opts, d->name)) {
            const char *v = qemu_opt_get(opts, d->name);
            if (v && !qemu_opt_set(popts, d->name, v, errp)) {
                qemu_opts_del(popts);
                return -EINVAL;
            }
        }
    }
    ret = proto->bdrv_co_create_opts(proto, filename, popts, errp);
    qemu_opts_del(popts);
    return ret;
}

/* ---- qemu-img create ---------------------------------------------------- */

int bdrv_img_create(const char *filename, const char *fmt,
                    const char *base_filename, const char *base_fmt,
                    const char *options, uint64_t img_size, int flags,
                    bool quiet, Error **errp)
{
    QemuOptsList *create_opts = NULL;
    QemuOpts *opts = NULL;
    BlockDriver *drv, *proto;
    const char *backing_file, *backing_fmt;
    Error *local_err = NULL;
    int64_t size;
    int ret = -EINVAL;

    bdrv_init();
    drv = bdrv_find_format(fmt);
    if (!drv) {
        error_setg(errp, "Unknown file format '%s'", fmt);
        return -EINVAL;
    }
    proto = bdrv_find_protocol(filename, true, errp);
    if (!proto) {
        return -EINVAL;
    }
    if (!drv->create_opts) {
        error_setg(errp, "Format driver '%s' does not support image creation",
                   drv->format_name);
        return -ENOTSUP;
    }
    if (!proto->create_opts) {
        error_setg(errp, "Protocol driver '%s' does not support image "
                   "creation", proto->format_name);
        return -ENOTSUP;
    }
    create_opts = qemu_opts_append(NULL, drv->create_opts);
    create_opts = qemu_opts_append(create_opts, proto->create_opts);
    opts = qemu_opts_create(create_opts);

    /* The positional size first, so "-o size=" can be detected twice. */
    if (img_size != (uint64_t)-1) {
        qemu_opt_set_number(opts, "size", img_size, NULL);
    }
    if (options) {
        QemuOpts *tmp = qemu_opts_create(create_opts);

        if (!qemu_opts_do_parse(tmp, options, &local_err)) {
            qemu_opts_del(tmp);
            error_propagate(errp, local_err);
            goto out;
        }
        if (img_size != (uint64_t)-1 && qemu_opt_has(tmp, "size")) {
            qemu_opts_del(tmp);
            error_setg(errp, "The image size must be specified only once");
            goto out;
        }
        qemu_opts_del(tmp);
        if (!qemu_opts_do_parse(opts, options, errp)) {
            goto out;
        }
    }
    if (base_filename) {
        if (!qemu_opt_set(opts, "backing_file", base_filename, NULL)) {
            error_setg(errp, "Backing file not supported for file format "
                       "'%s'", fmt);
            goto out;
        }
    }
    if (base_fmt) {
        if (!qemu_opt_set(opts, "backing_fmt", base_fmt, NULL)) {
            error_setg(errp, "Backing file format not supported for file "
                       "format '%s'", fmt);
            goto out;
        }
    }

    backing_file = qemu_opt_get(opts, "backing_file");
    backing_fmt = qemu_opt_get(opts, "backing_fmt");
    if (backing_file) {
        if (!strcmp(filename, backing_file)) {
            error_setg(errp, "Error: Trying to create an image with the "
                       "same filename as the backing file");
            goto out;
        }
        if (!backing_file[0]) {
            error_setg(errp, "Expected backing file name, got empty string");
            goto out;
        }
    }
    if (backing_fmt && !bdrv_find_format(backing_fmt)) {
        error_setg(errp, "Unknown backing file format '%s'", backing_fmt);
        goto out;
    }

    size = qemu_opt_has(opts, "size") ? (int64_t)qemu_opt_get_size(opts,
                                                                   "size", 0)
                                      : -1;
    if (backing_file && !(flags & BDRV_O_NO_BACKING)) {
        g_autofree char *full = NULL;
        BlockDriverState *bbs;
        QDict *bopts;

        full = bdrv_get_full_backing_filename_from_filename(filename,
                                                            backing_file,
                                                            &local_err);
        if (!full) {
            error_propagate(errp, local_err);
            goto out;
        }
        bopts = qdict_new();
        if (backing_fmt) {
            qdict_put_str(bopts, "driver", backing_fmt);
        }
        /* Only the size is needed: read-only, no backing, shared. */
        bbs = bdrv_open(full, bopts,
                        (flags & ~(BDRV_O_RDWR | BDRV_O_NO_BACKING)) |
                        BDRV_O_NO_BACKING | BDRV_O_FORCE_SHARE, &local_err);
        if (!bbs) {
            error_append_hint(&local_err, "Could not open backing image.\n");
            error_propagate(errp, local_err);
            goto out;
        }
        if (!backing_fmt) {
            error_setg(&local_err, "Backing file specified without backing "
                       "format");
            error_append_hint(&local_err, "Detected format of %s.",
                              bbs->drv->format_name);
            error_propagate(errp, local_err);
            bdrv_unref(bbs);
            goto out;
        }
        if (size == -1) {
            size = bdrv_getlength(bbs);
            if (size < 0) {
                error_setg_errno(errp, -size, "Could not get size of '%s'",
                                 backing_file);
                bdrv_unref(bbs);
                goto out;
            }
            qemu_opt_set_number(opts, "size", size, NULL);
        }
        bdrv_unref(bbs);
    } else if (backing_file && !backing_fmt) {
        error_setg(errp, "Backing file specified without backing format");
        goto out;
    }

    if (size == -1) {
        error_setg(errp, "Image creation needs a size parameter");
        goto out;
    }

    if (drv->bdrv_create_opts_defaults) {
        drv->bdrv_create_opts_defaults(opts);
    }
    if (!quiet) {
        GString *line = g_string_new(NULL);

        g_string_printf(line, "Formatting '%s', fmt=%s", filename, fmt);
        qemu_opts_print(opts, line, true);
        printf("%s\n", line->str);
        fflush(stdout);
        g_string_free(line, true);
    }

    ret = bdrv_create(drv, filename, opts, &local_err);
    if (ret == -EFBIG) {
        /* A clearer message than most drivers give for this case. */
        error_free(local_err);
        local_err = NULL;
        error_setg(errp, "The image size is too large for file format '%s'%s",
                   fmt, qemu_opt_get_size(opts, "cluster_size", 0)
                        ? " (try using a larger cluster size)" : "");
    } else if (local_err) {
        error_propagate(errp, local_err);
    } else if (ret < 0) {
        error_setg_errno(errp, -ret, "%s: error while creating %s", filename,
                         fmt);
    }

out:
    qemu_opts_del(opts);
    qemu_opts_free(create_opts);
    return ret < 0 ? ret : 0;
}

/* ---- measure ------------------------------------------------------------ */

BlockMeasureInfo *bdrv_measure(BlockDriver *drv, QemuOpts *opts,
                               BlockDriverState *in_bs, Error **errp)
{
    if (!drv->bdrv_measure) {
        error_setg(errp, "Block driver '%s' does not support size "
                   "measurement", drv->format_name);
        return NULL;
    }
    return drv->bdrv_measure(opts, in_bs, errp);
}
