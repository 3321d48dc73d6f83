/*
 * Block layer core: driver registry, format probing, opening and closing
 * node graphs (format node on top of a protocol node, backing chains),
 * node options and small accessors.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"

#define BLOCK_PROBE_BUF_SIZE 2048

static BlockDriver *bdrv_drivers;
static unsigned int bdrv_node_counter;

/* ---- driver registry ------------------------------------------------ */

void bdrv_register(BlockDriver *drv)
{
    BlockDriver **p;

    /* Keep registration order: "Supported formats" lists it. */
    for (p = &bdrv_drivers; *p; p = &(*p)->next) {
        if (*p == drv) {
            return;
        }
    }
    drv->next = NULL;
    *p = drv;
}

void bdrv_init(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    qemu_init_main_loop();
    bdrv_register(&bdrv_file);
    bdrv_register(&bdrv_raw);
    bdrv_register(&bdrv_qcow2);
    bdrv_register(&bdrv_blklogwrites);
}

static BlockDriver *bdrv_find_driver(const char *name)
{
    BlockDriver *drv;

    for (drv = bdrv_drivers; drv; drv = drv->next) {
        if (!strcmp(drv->format_name, name)) {
            return drv;
        }
    }
    return NULL;
}

BlockDriver *bdrv_find_format(const char *format_name)
{
    return bdrv_find_driver(format_name);
}

void bdrv_iterate_format(void (*cb)(void *opaque, const char *name),
                         void *opaque)
{
    BlockDriver *drv;

    for (drv = bdrv_drivers; drv; drv = drv->next) {
        cb(opaque, drv->format_name);
    }
}

/* Length of a "proto:" prefix, or 0 if @filename is a plain path. */
static size_t protocol_prefix_len(const char *filename)
{
    const char *p = filename;

    /* A colon after a slash belongs to a path component. */
    while (*p && *p != ':' && *p != '/') {
        p++;
    }
    return *p == ':' ? (size_t)(p - filename) : 0;
}

BlockDriver *bdrv_find_protocol(const char *filename,
                                bool allow_protocol_prefix, Error **errp)
{
    size_t len = protocol_prefix_len(filename);
    BlockDriver *drv;

    if (!len || !allow_protocol_prefix) {
        return &bdrv_file;
    }
    for (drv = bdrv_drivers; drv; drv = drv->next) {
        if (drv->protocol_name && strlen(drv->protocol_name) == len &&
            !strncmp(drv->protocol_name, filename, len)) {
            return drv;
        }
    }
    error_setg(errp, "Unknown protocol '%.*s'", (int)len, filename);
    return NULL;
}

BlockDriver *bdrv_probe_format(const uint8_t *buf, int buf_size,
                               const char *filename)
{
    BlockDriver *drv, *best = &bdrv_raw;
    int score, best_score = 0;

    for (drv = bdrv_drivers; drv; drv = drv->next) {
        if (drv->bdrv_probe) {
            score = drv->bdrv_probe(buf, buf_size, filename);
            if (score > best_score) {
                best_score = score;
                best = drv;
            }
        }
    }
    return best;
}

/* ---- zone and enum names -------------------------------------------- */

const char *bdrv_zone_state_name(BlockZoneState state)
{
    switch (state) {
    case BLK_ZS_NOT_WP:  return "NOT_WP";
    case BLK_ZS_EMPTY:   return "EMPTY";
    case BLK_ZS_IOPEN:   return "IMP_OPEN";
    case BLK_ZS_EOPEN:   return "EXP_OPEN";
    case BLK_ZS_CLOSED:  return "CLOSED";
    case BLK_ZS_RDONLY:  return "RDONLY";
    case BLK_ZS_FULL:    return "FULL";
    case BLK_ZS_OFFLINE: return "OFFLINE";
    }
    return "UNKNOWN";
}

const char *bdrv_zone_type_name(BlockZoneType type)
{
    switch (type) {
    case BLK_ZT_CONV: return "CONVENTIONAL";
    case BLK_ZT_SWR:  return "SEQ_WRITE_REQUIRED";
    case BLK_ZT_SWP:  return "SEQ_WRITE_PREFERRED";
    }
    return "UNKNOWN";
}

const char *bdrv_zone_op_name(BlockZoneOp op)
{
    switch (op) {
    case BLK_ZO_OPEN:   return "open";
    case BLK_ZO_CLOSE:  return "close";
    case BLK_ZO_FINISH: return "finish";
    case BLK_ZO_RESET:  return "reset";
    }
    return "unknown";
}

const char *const PreallocMode_str[] = {
    [PREALLOC_MODE_OFF] = "off",
    [PREALLOC_MODE_METADATA] = "metadata",
    [PREALLOC_MODE_FALLOC] = "falloc",
    [PREALLOC_MODE_FULL] = "full",
    [PREALLOC_MODE__MAX] = NULL,
};

int prealloc_mode_parse(const char *s, Error **errp)
{
    int i;

    for (i = 0; i < PREALLOC_MODE__MAX; i++) {
        if (!strcmp(s, PreallocMode_str[i])) {
            return i;
        }
    }
    error_setg(errp, "Invalid parameter '%s'", s);
    return -1;
}

/* ---- coroutine runner ------------------------------------------------ */

void bdrv_run_co(CoroutineEntry *entry, void *opaque, bool *done)
{
    if (qemu_in_coroutine()) {
        entry(opaque);
    } else {
        AioContext *ctx = qemu_get_current_aio_context();
        Coroutine *co = qemu_coroutine_create(entry, opaque);

        qemu_coroutine_enter(co);
        AIO_WAIT_WHILE(ctx, !*done);
    }
}

/* ---- node lifetime ---------------------------------------------------- */

/* Every live node, newest first (bdrv_find_node). */
static BlockDriverState *all_nodes;

BlockDriverState *bdrv_find_node(const char *node_name)
{
    BlockDriverState *bs;

    for (bs = all_nodes; bs; bs = bs->next_node) {
        if (bs->drv && !strcmp(bs->node_name, node_name)) {
            return bs;
        }
    }
    return NULL;
}

static BlockDriverState *bdrv_new(void)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->refcnt = 1;
    bs->aio_context = qemu_get_current_aio_context();
    bs->total_bytes = -1;
    qemu_co_queue_init(&bs->drain_queue);
    qemu_co_mutex_init(&bs->flush_lock);
    bs->next_node = all_nodes;
    all_nodes = bs;
    /* "#block" + counter + two random digits, like QEMU's generated ids. */
    snprintf(bs->node_name, sizeof(bs->node_name), "#block%u%02d",
             ++bdrv_node_counter, g_random_int_range(0, 100));
    return bs;
}

static BdrvChild *bdrv_attach_child(BlockDriverState *parent,
                                    BlockDriverState *child_bs,
                                    const char *name)
{
    BdrvChild *c = g_new0(BdrvChild, 1);

    c->bs = child_bs;
    c->parent = parent;
    c->name = g_strdup(name);
    /* Holds nothing until the parent's permissions are refreshed. */
    c->perm = 0;
    c->shared = BLK_PERM_ALL;
    bdrv_parent_link(c);
    return c;
}

void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child)
{
    if (!child) {
        return;
    }
    if (parent) {
        if (parent->file == child) {
            parent->file = NULL;
        }
        if (parent->backing == child) {
            parent->backing = NULL;
        }
    }
    bdrv_parent_unlink(child);
    if (child->bs->refcnt > 1) {
        /* Still used elsewhere: drop the locks this edge needed. */
        bdrv_refresh_perms(child->bs, NULL);
    }
    bdrv_unref(child->bs);
    g_free(child->name);
    g_free(child);
}

void bdrv_ref(BlockDriverState *bs)
{
    bs->refcnt++;
}

typedef struct BdrvCloseCo {
    BlockDriverState *bs;
    bool done;
} BdrvCloseCo;

static void coroutine_fn bdrv_close_entry(void *opaque)
{
    BdrvCloseCo *c = opaque;

    bdrv_co_drain(c->bs);
    if (c->bs->drv && c->bs->drv->bdrv_co_close) {
        c->bs->drv->bdrv_co_close(c->bs);
    }
    c->done = true;
}

static void bdrv_free_node(BlockDriverState *bs)
{
    BlockDriverState **p;

    if (bs->drv && bs->opaque) {
        BdrvCloseCo c = { .bs = bs };

        /*
         * No parent is left; the section waits for what is still in
         * flight below and marks the node quiesced while the driver
         * writes its metadata back.
         */
        bdrv_drained_begin(bs);
        bdrv_run_co(bdrv_close_entry, &c, &c.done);
        bdrv_drained_end(bs);
    }
    for (p = &all_nodes; *p; p = &(*p)->next_node) {
        if (*p == bs) {
            *p = bs->next_node;
            break;
        }
    }
    bdrv_unref_child(bs, bs->backing);
    bdrv_unref_child(bs, bs->file);
    if (bs->options) {
        qdict_free(bs->options);
    }
    g_free(bs->opaque);
    g_free(bs);
}

void bdrv_unref(BlockDriverState *bs)
{
    if (!bs) {
        return;
    }
    assert(bs->refcnt > 0);
    if (--bs->refcnt == 0) {
        bdrv_free_node(bs);
    }
}

/* ---- options ---------------------------------------------------------- */

/* Flatten a parsed json: object into dotted string options. */
static bool flatten_json(QObject *obj, const char *prefix, QDict *out,
                         Error **errp)
{
    size_t i;
    const char *key;
    QObject *v;

    for (i = 0; qdict_obj_entry(obj, i, &key, &v); i++) {
        g_autofree char *name = prefix ? g_strdup_printf("%s.%s", prefix, key)
                                       : g_strdup(key);
        char buf[32];

        switch (qobj_type(v)) {
        case QTYPE_DICT:
            if (!flatten_json(v, name, out, errp)) {
                return false;
            }
            continue;
        case QTYPE_STR:
            qdict_put_str(out, name, qobj_get_str(v));
            break;
        case QTYPE_INT:
            snprintf(buf, sizeof(buf), "%" PRId64, qobj_get_int(v));
            qdict_put_str(out, name, buf);
            break;
        case QTYPE_BOOL:
            qdict_put_str(out, name, qobj_get_bool(v) ? "on" : "off");
            break;
        case QTYPE_NULL:
            qdict_put_str(out, name, "");
            break;
        default:
            error_setg(errp, "Invalid JSON value for option '%s'", name);
            return false;
        }
    }
    return true;
}

/*
 * Turn a "json:{...}" filename into options (explicit @options win).
 * Returns false with errp set on a parse error.
 */
static bool parse_json_filename(const char *filename, QDict *options,
                                Error **errp)
{
    Error *local_err = NULL;
    QObject *obj;
    QDict *json_opts;
    bool ok;

    obj = qobj_from_json(filename + strlen("json:"), &local_err);
    if (!obj) {
        error_setg(errp, "Could not parse the JSON options: %s",
                   local_err ? error_get_pretty(local_err) : "parse error");
        error_free(local_err);
        return false;
    }
    if (qobj_type(obj) != QTYPE_DICT) {
        error_setg(errp, "Invalid JSON object given");
        qobj_unref(obj);
        return false;
    }
    json_opts = qdict_new();
    ok = flatten_json(obj, NULL, json_opts, errp);
    if (ok) {
        qdict_join(options, json_opts, false);
    }
    qdict_free(json_opts);
    qobj_unref(obj);
    return ok;
}

static bool opt_bool(QDict *options, const char *key, bool *val, Error **errp)
{
    const char *s = qdict_get_try_str(options, key);

    if (!s) {
        return true;
    }
    if (!qapi_bool_parse(key, s, val, errp)) {
        return false;
    }
    qdict_del(options, key);
    return true;
}

/*
 * Consume the options every node understands and fold them into *flags.
 * Returns false with errp set on invalid values.
 */
static bool bdrv_absorb_generic_options(QDict *options, int *flags,
                                        bool *read_only_opt, Error **errp)
{
    bool b;
    const char *s;

    b = false;
    *read_only_opt = false;
    if (qdict_haskey(options, "read-only")) {
        if (!opt_bool(options, "read-only", &b, errp)) {
            return false;
        }
        *read_only_opt = b;
        if (b) {
            *flags &= ~BDRV_O_RDWR;
        }
    }
    if (qdict_haskey(options, "cache.direct")) {
        b = false;
        if (!opt_bool(options, "cache.direct", &b, errp)) {
            return false;
        }
        *flags = b ? (*flags | BDRV_O_NOCACHE) : (*flags & ~BDRV_O_NOCACHE);
    }
    if (qdict_haskey(options, "cache.no-flush")) {
        b = false;
        if (!opt_bool(options, "cache.no-flush", &b, errp)) {
            return false;
        }
        *flags = b ? (*flags | BDRV_O_NO_FLUSH) : (*flags & ~BDRV_O_NO_FLUSH);
    }
    if (qdict_haskey(options, "force-share")) {
        b = false;
        if (!opt_bool(options, "force-share", &b, errp)) {
            return false;
        }
        *flags = b ? (*flags | BDRV_O_FORCE_SHARE)
                   : (*flags & ~BDRV_O_FORCE_SHARE);
    }
    if (qdict_haskey(options, "auto-read-only")) {
        b = false;
        if (!opt_bool(options, "auto-read-only", &b, errp)) {
            return false;
        }
        *flags = b ? (*flags | BDRV_O_AUTO_RDONLY)
                   : (*flags & ~BDRV_O_AUTO_RDONLY);
    }
    s = qdict_get_try_str(options, "discard");
    if (s) {
        if (!strcmp(s, "on") || !strcmp(s, "unmap")) {
            *flags |= BDRV_O_UNMAP;
        } else if (!strcmp(s, "off") || !strcmp(s, "ignore")) {
            *flags &= ~BDRV_O_UNMAP;
        } else {
            error_setg(errp, "Invalid discard option");
            return false;
        }
        qdict_del(options, "discard");
    }
    s = qdict_get_try_str(options, "aio");
    if (s) {
        *flags &= ~(BDRV_O_NATIVE_AIO | BDRV_O_IO_URING);
        if (!strcmp(s, "native")) {
            *flags |= BDRV_O_NATIVE_AIO;
        } else if (!strcmp(s, "io_uring")) {
            *flags |= BDRV_O_IO_URING;
        } else if (strcmp(s, "threads") != 0) {
            error_setg(errp, "Invalid aio option");
            return false;
        }
        qdict_del(options, "aio");
    }
    return true;
}

/*
 * Fold the cache.* options of @options into *flags without consuming
 * them (the node itself absorbs them later).
 */
static bool bdrv_cache_flags(QDict *options, int *flags, Error **errp)
{
    static const char *const keys[] = { "cache.direct", "cache.no-flush" };
    QDict *probe = qdict_new();
    bool ro_opt, ok;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *v = qdict_get_try_str(options, keys[i]);

        if (v) {
            qdict_put_str(probe, keys[i], v);
        }
    }
    ok = bdrv_absorb_generic_options(probe, flags, &ro_opt, errp);
    qdict_free(probe);
    return ok;
}

/* The flags a child node inherits from its parent. */
static int bdrv_child_flags(int parent_flags)
{
    return parent_flags & (BDRV_O_RDWR | BDRV_O_CACHE_MASK |
                           BDRV_O_NATIVE_AIO | BDRV_O_IO_URING |
                           BDRV_O_UNMAP | BDRV_O_FORCE_SHARE |
                           BDRV_O_CHECK | BDRV_O_AUTO_RDONLY);
}

/* ---- limits ---------------------------------------------------------- */

static void bdrv_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BlockDriverState *file = bs->file ? bs->file->bs : NULL;

    memset(&bs->bl, 0, sizeof(bs->bl));
    bs->bl.request_alignment = 1;
    bs->bl.min_mem_alignment = 512;
    bs->bl.opt_mem_alignment = qemu_real_host_page_size();
    bs->bl.max_iov = IOV_MAX;
    if (file) {
        bs->bl.max_transfer = file->bl.max_transfer;
        bs->bl.opt_transfer = file->bl.opt_transfer;
        bs->bl.min_mem_alignment = MAX(bs->bl.min_mem_alignment,
                                       file->bl.min_mem_alignment);
        bs->bl.opt_mem_alignment = MAX(bs->bl.opt_mem_alignment,
                                       file->bl.opt_mem_alignment);
        bs->bl.max_iov = MIN(bs->bl.max_iov, file->bl.max_iov ?
                                             file->bl.max_iov : IOV_MAX);
    }
    if (bs->drv->bdrv_refresh_limits) {
        bs->drv->bdrv_refresh_limits(bs, errp);
    }
    if (!bs->bl.request_alignment) {
        bs->bl.request_alignment = 1;
    }
    assert(is_power_of_2(bs->bl.request_alignment));
}

/* ---- opening --------------------------------------------------------- */

static BlockDriverState *bdrv_co_open_inherit(const char *filename,
                                              QDict *options, int flags,
                                              bool protocol_child,
                                              Error **errp);

/* Error for options nobody consumed; true if there were any. */
static bool bdrv_check_leftover_options(BlockDriverState *bs, QDict *options,
                                        Error **errp)
{
    const char *key, *val;

    if (!qdict_entry(options, 0, &key, &val)) {
        return false;
    }
    if (bs->drv->is_format) {
        error_setg(errp, "Block format '%s' does not support the option '%s'",
                   bs->drv->format_name, key);
    } else {
        error_setg(errp, "Block protocol '%s' doesn't support the option '%s'",
                   bs->drv->format_name, key);
    }
    return true;
}

/*
 * Probe the format from the first bytes of @file.  Empty files are raw.
 */
static BlockDriver *bdrv_co_probe(BdrvChild *file, const char *filename,
                                  Error **errp)
{
    uint8_t *buf;
    int64_t len = bdrv_co_getlength(file->bs);
    BlockDriver *drv;
    const char *foreign;
    int ret, n;

    if (len < 0) {
        error_setg_errno(errp, -len, "Could not determine image size");
        return NULL;
    }
    if (len == 0) {
        return &bdrv_raw;
    }
    n = MIN(len, BLOCK_PROBE_BUF_SIZE);
    buf = g_malloc0(BLOCK_PROBE_BUF_SIZE);
    ret = bdrv_co_pread(file, 0, n, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read image for determining "
                         "its format");
        g_free(buf);
        return NULL;
    }
    drv = bdrv_probe_format(buf, n, filename);
    foreign = drv == &bdrv_raw ? bdrv_probe_foreign(buf, n) : NULL;
    if (drv == &bdrv_raw && !foreign && len >= 2 * BDRV_SECTOR_SIZE) {
        ret = bdrv_co_pread(file, len - BDRV_SECTOR_SIZE, BDRV_SECTOR_SIZE,
                            buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read image for "
                             "determining its format");
            g_free(buf);
            return NULL;
        }
        foreign = bdrv_probe_foreign_tail(buf, BDRV_SECTOR_SIZE);
    }
    g_free(buf);
    if (foreign) {
        /* Opening it as raw would let writes destroy its metadata. */
        error_setg(errp, "Image is in %s format, which is not supported "
                   "(only qcow2 and raw images are); use -f raw to access "
                   "the file as raw data", foreign);
        return NULL;
    }
    return drv;
}

/*
 * Open one node of driver @drv with @options (already stripped of child
 * options the caller handled).  For formats, @file is the opened storage
 * child (ownership passes to the node).
 */
static BlockDriverState *bdrv_co_open_node(BlockDriver *drv,
                                           const char *filename,
                                           QDict *options, int flags,
                                           BdrvChild *file, bool probed,
                                           Error **errp)
{
    BlockDriverState *bs = bdrv_new();
    Error *local_err = NULL;
    bool read_only_opt;
    const char *node_name;
    int ret;

    bs->drv = drv;
    bs->probed = probed;
    bs->options = qdict_clone(options);

    node_name = qdict_get_try_str(options, "node-name");
    if (node_name) {
        if (!node_name[0] || strlen(node_name) >= sizeof(bs->node_name)) {
            error_setg(errp, "Invalid node-name: '%s'", node_name);
            goto fail;
        }
        pstrcpy(bs->node_name, sizeof(bs->node_name), node_name);
        qdict_del(options, "node-name");
    }
    if (!bdrv_absorb_generic_options(options, &flags, &read_only_opt, errp)) {
        goto fail;
    }
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);

    if (file) {
        file->parent = bs;
        file->role = (drv->is_filter ? BDRV_CHILD_FILTERED : BDRV_CHILD_IMAGE) |
                     BDRV_CHILD_PRIMARY;
        bs->file = file;
        file = NULL;
        pstrcpy(bs->filename, sizeof(bs->filename), bs->file->bs->filename);
    } else if (filename) {
        pstrcpy(bs->filename, sizeof(bs->filename), filename);
    }
    if (!drv->is_format && !filename) {
        /* Protocols take their name from the "filename" option. */
        const char *f = qdict_get_try_str(options, "filename");
        if (f) {
            pstrcpy(bs->filename, sizeof(bs->filename), f);
        }
    }

    bs->opaque = g_malloc0(MAX(drv->instance_size, 1));
    /*
     * Take the permissions on the file before the driver reads or
     * updates anything in it (as QEMU does when it attaches the child).
     */
    if (bs->file && bdrv_refresh_perms(bs, errp) < 0) {
        goto fail_opened;
    }
    if (drv->bdrv_co_open) {
        ret = drv->bdrv_co_open(bs, options, flags, &local_err);
        if (ret < 0) {
            if (local_err) {
                error_propagate(errp, local_err);
            } else {
                error_setg_errno(errp, -ret, "Could not open '%s'",
                                 bs->filename);
            }
            goto fail_opened;
        }
    }
    if (!drv->is_format) {
        /* Protocols that did not consume it have no use for it. */
        qdict_del(options, "filename");
    }
    if (bdrv_check_leftover_options(bs, options, errp)) {
        goto fail_close;
    }
    /* The driver's options may change what it needs of its children. */
    if ((bs->file || bs->backing) && bdrv_refresh_perms(bs, errp) < 0) {
        goto fail_close;
    }
    bdrv_refresh_limits(bs, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        goto fail_close;
    }
    bs->total_bytes = -1;
    bs->total_bytes = bdrv_co_getlength(bs);
    if (bs->total_bytes < 0) {
        error_setg_errno(errp, -bs->total_bytes, "Could not get image size");
        bs->total_bytes = -1;
        goto fail_close;
    }
    if (drv->bdrv_co_activate && drv->bdrv_co_activate(bs, errp) < 0) {
        goto fail_close;
    }
    return bs;

fail_close:
    if (drv->bdrv_co_close) {
        drv->bdrv_co_close(bs);
    }
fail_opened:
    g_free(bs->opaque);
    bs->opaque = NULL;
fail:
    if (file) {
        bdrv_unref_child(NULL, file);
    }
    bs->drv = NULL;
    bdrv_unref(bs);
    return NULL;
}

/*
 * Open a protocol node for @filename / @options ("driver", "filename").
 */
static BlockDriverState *bdrv_co_open_protocol(const char *filename,
                                               QDict *options, int flags,
                                               Error **errp)
{
    const char *drvname = qdict_get_try_str(options, "driver");
    BlockDriver *drv;
    Error *local_err = NULL;

    if (drvname) {
        drv = bdrv_find_driver(drvname);
        if (!drv) {
            error_setg(errp, "Unknown driver '%s'", drvname);
            return NULL;
        }
        qdict_del(options, "driver");
    } else {
        if (!filename) {
            filename = qdict_get_try_str(options, "filename");
        }
        if (!filename) {
            error_setg(errp, "The 'file' block driver requires a file name");
            return NULL;
        }
        drv = bdrv_find_protocol(filename, true, errp);
        if (!drv) {
            return NULL;
        }
    }
    if (filename && !qdict_haskey(options, "filename")) {
        if (drv->bdrv_parse_filename) {
            drv->bdrv_parse_filename(filename, options, &local_err);
            if (local_err) {
                error_propagate(errp, local_err);
                return NULL;
            }
        } else {
            const char *rest = filename;
            if (drv->protocol_name &&
                strstart(filename, drv->protocol_name, &rest) &&
                *rest == ':') {
                rest++;
            } else {
                rest = filename;
            }
            qdict_put_str(options, "filename", rest);
        }
    }
    filename = qdict_get_try_str(options, "filename");
    {
        g_autofree char *fname = filename ? g_strdup(filename) : NULL;
        return bdrv_co_open_node(drv, fname, options, flags, NULL, false,
                                 errp);
    }
}

static BlockDriverState *bdrv_co_open_inherit(const char *filename,
                                              QDict *options, int flags,
                                              bool protocol_child,
                                              Error **errp)
{
    BlockDriverState *bs = NULL;
    BlockDriver *drv = NULL;
    BdrvChild *file = NULL;
    QDict *file_opts = NULL;
    const char *drvname;
    bool probed = false;
    bool ro_opt;
    int tmp_flags;

    if (!options) {
        options = qdict_new();
    }
    if (filename && g_str_has_prefix(filename, "json:")) {
        if (!parse_json_filename(filename, options, errp)) {
            goto out;
        }
        filename = NULL;
    }

    /* A read-only=on node cannot serve a read-write open. */
    if ((flags & BDRV_O_RDWR) && qdict_haskey(options, "read-only")) {
        tmp_flags = flags;
        QDict *probe = qdict_new();
        qdict_put_str(probe, "read-only",
                      qdict_get_try_str(options, "read-only"));
        if (!bdrv_absorb_generic_options(probe, &tmp_flags, &ro_opt, errp)) {
            qdict_free(probe);
            goto out;
        }
        qdict_free(probe);
        if (ro_opt && !(flags & BDRV_O_AUTO_RDONLY)) {
            error_setg(errp, "Block node is read-only");
            goto out;
        }
        if (ro_opt) {
            flags &= ~BDRV_O_RDWR;
        }
    }

    drvname = qdict_get_try_str(options, "driver");
    if (drvname) {
        drv = bdrv_find_driver(drvname);
        if (!drv) {
            error_setg(errp, "Unknown driver '%s'", drvname);
            goto out;
        }
    }

    if ((flags & BDRV_O_PROTOCOL) || protocol_child ||
        (drv && !drv->is_format)) {
        if (!drv || !drv->is_format) {
            bs = bdrv_co_open_protocol(filename, options, flags &
                                       ~BDRV_O_PROTOCOL, errp);
            goto out;
        }
    }

    /* Format node: open the storage child first. */
    file_opts = qdict_extract_subdict(options, "file");
    if (qdict_haskey(options, "file")) {
        error_setg(errp, "References to existing nodes are not supported "
                   "for \"file\"");
        goto out;
    }
    if (!filename && qdict_size(file_opts) == 0) {
        if (!drv) {
            error_setg(errp, "Must specify either driver or file");
        } else {
            error_setg(errp, "A block device must be specified for \"file\"");
        }
        goto out;
    }
    {
        Error *local_err = NULL;
        BlockDriverState *file_bs;
        int child_flags = bdrv_child_flags(flags);
        int cache_flags = flags;
        bool nested = qdict_haskey(file_opts, "driver") &&
                      bdrv_find_driver(qdict_get_try_str(file_opts, "driver"))
                      && bdrv_find_driver(qdict_get_try_str(file_opts,
                                                            "driver"))->is_format;
        bool fs = false;

        /* force-share applies to the whole subtree, as in QEMU. */
        if (!opt_bool(options, "force-share", &fs, errp)) {
            goto out;
        }
        if (fs) {
            qdict_put_str(options, "force-share", "on");
            child_flags |= BDRV_O_FORCE_SHARE;
        }
        /*
         * The cache mode given to a format node is its storage child's
         * too (QEMU's "cache.direct=on" next to "file.filename=..."):
         * the node absorbs its own options only after this open.
         */
        if (!bdrv_cache_flags(options, &cache_flags, errp)) {
            goto out;
        }
        child_flags = (child_flags & ~BDRV_O_CACHE_MASK) |
                      (cache_flags & BDRV_O_CACHE_MASK);

        file_bs = bdrv_co_open_inherit(filename, file_opts, child_flags,
                                       !nested, &local_err);
        file_opts = NULL;
        if (!file_bs) {
            error_propagate(errp, local_err);
            goto out;
        }
        file = bdrv_attach_child(NULL, file_bs, "file");
    }

    if (!drv) {
        drv = bdrv_co_probe(file, file->bs->filename, errp);
        if (!drv) {
            goto out;
        }
        probed = true;
    } else {
        qdict_del(options, "driver");
    }
    qdict_del(options, "filename");
    bs = bdrv_co_open_node(drv, NULL, options, flags, file, probed, errp);
    file = NULL;

out:
    if (file) {
        bdrv_unref_child(NULL, file);
    }
    if (file_opts) {
        qdict_free(file_opts);
    }
    qdict_free(options);
    return bs;
}

typedef struct BdrvOpenCo {
    const char *filename;
    QDict *options;
    int flags;
    Error **errp;
    BlockDriverState *ret;
    bool done;
} BdrvOpenCo;

static void coroutine_fn bdrv_open_entry(void *opaque)
{
    BdrvOpenCo *c = opaque;

    c->ret = bdrv_co_open_inherit(c->filename, c->options, c->flags, false,
                                  c->errp);
    c->done = true;
}

BlockDriverState *bdrv_open(const char *filename, QDict *options, int flags,
                            Error **errp)
{
    BdrvOpenCo c = {
        .filename = filename, .options = options, .flags = flags,
        .errp = errp,
    };

    bdrv_init();
    bdrv_run_co(bdrv_open_entry, &c, &c.done);
    return c.ret;
}

BdrvChild *bdrv_open_child(const char *filename, QDict *options,
                           const char *child_name, BlockDriverState *parent,
                           int flags, bool allow_none, Error **errp)
{
    QDict *sub = qdict_extract_subdict(options, child_name);
    BlockDriverState *cbs;
    const char *drvname;
    bool protocol = true;
    BdrvChild *c;

    if (!filename && qdict_size(sub) == 0) {
        qdict_free(sub);
        if (!allow_none) {
            error_setg(errp, "A block device must be specified for \"%s\"",
                       child_name);
        }
        return NULL;
    }
    drvname = qdict_get_try_str(sub, "driver");
    if (drvname && bdrv_find_driver(drvname) &&
        bdrv_find_driver(drvname)->is_format) {
        protocol = false;
    }
    cbs = bdrv_co_open_inherit(filename, sub, bdrv_child_flags(flags),
                               protocol, errp);
    if (!cbs) {
        return NULL;
    }
    c = bdrv_attach_child(parent, cbs, child_name);
    c->role = BDRV_CHILD_IMAGE;
    return c;
}

int coroutine_fn bdrv_open_backing(BlockDriverState *bs, QDict *options,
                                   Error **errp)
{
    QDict *sub = NULL;
    g_autofree char *full = NULL;
    const char *backing_ref = options ? qdict_get_try_str(options, "backing")
                                      : NULL;
    Error *local_err = NULL;
    BlockDriverState *backing_bs;
    int flags;

    if (backing_ref) {
        /* backing=null (or "") disables the backing file. */
        if (!backing_ref[0] || !strcmp(backing_ref, "null")) {
            qdict_del(options, "backing");
            return 0;
        }
        error_setg(errp, "References to existing nodes are not supported "
                   "for \"backing\"");
        return -EINVAL;
    }
    if (options) {
        sub = qdict_extract_subdict(options, "backing");
    }
    if (bs->open_flags & BDRV_O_NO_BACKING) {
        qdict_free(sub);
        return 0;
    }
    if (!bs->backing_file[0] && (!sub || qdict_size(sub) == 0)) {
        qdict_free(sub);
        return 0;
    }
    if (!sub) {
        sub = qdict_new();
    }
    if (bs->backing_file[0] && !qdict_haskey(sub, "file.filename") &&
        !qdict_haskey(sub, "filename")) {
        full = bdrv_get_full_backing_filename(bs, &local_err);
        if (!full) {
            error_propagate(errp, local_err);
            qdict_free(sub);
            return -EINVAL;
        }
    }
    if (bs->backing_format[0] && !qdict_haskey(sub, "driver")) {
        qdict_put_str(sub, "driver", bs->backing_format);
    }
    /* Backing files are opened read-only. */
    flags = bdrv_child_flags(bs->open_flags) & ~BDRV_O_RDWR;
    backing_bs = bdrv_co_open_inherit(full, sub, flags, false, &local_err);
    if (!backing_bs) {
        error_propagate(errp, local_err);
        error_prepend(errp, "Could not open backing file: ");
        return -EINVAL;
    }
    bs->backing = bdrv_attach_child(bs, backing_bs, "backing");
    bs->backing->role = BDRV_CHILD_COW;
    if (bdrv_refresh_perms(bs, &local_err) < 0) {
        bdrv_unref_child(bs, bs->backing);
        error_propagate(errp, local_err);
        error_prepend(errp, "Could not open backing file: ");
        return -EINVAL;
    }
    return 0;
}

/* ---- accessors ----------------------------------------------------- */

const char *bdrv_get_format_name(BlockDriverState *bs)
{
    return bs->drv ? bs->drv->format_name : NULL;
}

const char *bdrv_get_node_name(BlockDriverState *bs)
{
    return bs->node_name;
}

const char *bdrv_get_filename(BlockDriverState *bs)
{
    return bs->filename;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

int bdrv_get_flags(BlockDriverState *bs)
{
    return bs->open_flags;
}

BlockDriverState *bdrv_get_file(BlockDriverState *bs)
{
    return bs->file ? bs->file->bs : NULL;
}

BlockDriverState *bdrv_backing_bs(BlockDriverState *bs)
{
    return bs->backing ? bs->backing->bs : NULL;
}

BlockDriverState *bdrv_filter_or_cow_bs(BlockDriverState *bs)
{
    if (bs->drv && bs->drv->is_filter && bs->file) {
        return bs->file->bs;
    }
    return bdrv_backing_bs(bs);
}

AioContext *bdrv_get_aio_context(BlockDriverState *bs)
{
    return bs->aio_context;
}

const BlockLimits *bdrv_get_limits(BlockDriverState *bs)
{
    return &bs->bl;
}

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_get_info) {
        return -ENOTSUP;
    }
    return bs->drv->bdrv_get_info(bs, bdi);
}

QObject *bdrv_get_specific_info(BlockDriverState *bs, Error **errp)
{
    if (bs->drv && bs->drv->bdrv_get_specific_info) {
        return bs->drv->bdrv_get_specific_info(bs, errp);
    }
    return NULL;
}

void bdrv_report_corruption(BlockDriverState *bs, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("%s: Image is corrupt: %s", bs->filename, msg);
}

void *qemu_try_blockalign(BlockDriverState *bs, size_t size)
{
    size_t align = bs ? bs->bl.opt_mem_alignment : 0;

    if (!align) {
        align = qemu_real_host_page_size();
    }
    return qemu_try_memalign(align, size ? size : align);
}

void *qemu_blockalign(BlockDriverState *bs, size_t size)
{
    size_t align = bs ? bs->bl.opt_mem_alignment : 0;

    if (!align) {
        align = qemu_real_host_page_size();
    }
    return qemu_memalign(align, size ? size : align);
}

void *qemu_blockalign0(BlockDriverState *bs, size_t size)
{
    void *p = qemu_blockalign(bs, size);

    memset(p, 0, size);
    return p;
}
