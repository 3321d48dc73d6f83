/*
 * Block exports: serve a node to something outside the process (the
 * Linux block layer through ublk, a VM through VDUSE or vhost-user, a
 * network client through NBD).  One driver table per export type in
 * block/export/, a shared registry in block/export/export.c.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Threads (docs/devel/block-layer.rst, "Threading model"): every node
 * has one home AioContext, the main loop's in qemu-storage-daemon.  An
 * export takes requests in that loop only (its rings and sockets are fd
 * handlers there) and runs each one as a coroutine there, so the request
 * path needs no locks.  The registry below is owned by the main thread.
 */
#ifndef BLOCK_EXPORT_H
#define BLOCK_EXPORT_H

#include "block/block-backend.h"
#include "qemu/option.h"

typedef struct BlockExport BlockExport;

typedef struct BlockExportDriver {
    const char *type;            /* --export type=... */
    size_t instance_size;        /* BlockExport.opaque, zeroed */

    /*
     * Set the export up on exp->blk (already attached to the node, with
     * write permission when exp->writable) and start taking requests.
     * @opts holds the driver's own keys (type, id, node-name and writable
     * are removed); the driver removes what it consumes, and a key left
     * over is an error reported by the caller.  Main thread, outside
     * coroutine context, may block briefly (device creation).  Returns 0,
     * or -errno with @errp set; on failure it has released everything it
     * took and delete is not called.
     */
    int (*create)(BlockExport *exp, QDict *opts, Error **errp);

    /*
     * Stop taking new requests; the ones in flight still complete.
     * Idempotent.  Main thread.  When the last in-flight request is done
     * (blk_exp_unref() of the request's reference), delete runs.
     */
    void (*request_shutdown)(BlockExport *exp);

    /*
     * Free everything the export holds except exp->blk and exp itself
     * (the registry drops those).  No request is in flight.  Main thread.
     */
    void (*delete)(BlockExport *exp);

    /*
     * The node enters / leaves a drained section: stop polling for new
     * requests until drained_end (requests already started complete).
     * Optional.  Main thread, outside coroutine context or in one.
     */
    void (*drained_begin)(BlockExport *exp);
    void (*drained_end)(BlockExport *exp);
} BlockExportDriver;

struct BlockExport {
    const BlockExportDriver *drv;
    char *id;
    char *node_name;
    BlockBackend *blk;
    AioContext *ctx;             /* home loop of the node */
    bool writable;
    bool shutting_down;
    /*
     * One reference for being registered, one per request in flight
     * (blk_exp_ref/unref).  Owned by the home loop.
     */
    unsigned int refcount;
    void *opaque;                /* drv->instance_size bytes */
    BlockExport *next;
};

/*
 * Built-in export types, listed in builtin_drivers[] of
 * block/export/export.c.
 */
extern const BlockExportDriver blk_exp_ublk;   /* block/export/ublk.c */

/* Make a driver known to blk_exp_add(); done once at start-up. */
void blk_exp_register(const BlockExportDriver *drv);
/* Whether --export type=@type names a driver (checked before opening). */
bool blk_exp_type_known(const char *type);

/*
 * Create an export from --export keys: type, id, node-name,
 * writable=on|off (default off) and the driver's own.  @opts consumed.
 * Main thread.  Returns NULL with @errp set (one human line) on a bad
 * option, an unknown node or type, or a driver failure.
 */
BlockExport *blk_exp_add(QDict *opts, Error **errp);

BlockExport *blk_exp_find(const char *id);
void blk_exp_ref(BlockExport *exp);
/*
 * Drop a reference.  After the last one, delete runs from a bottom half
 * of the home loop (so a completion callback may drop it and still
 * return through the export's and the BlockBackend's code).
 */
void blk_exp_unref(BlockExport *exp);

/* Ask one / every export to stop taking requests (see request_shutdown). */
void blk_exp_request_shutdown(BlockExport *exp);
/*
 * Shut every export down, run the main loop until their in-flight
 * requests completed and they were deleted.  Main thread.
 */
void blk_exp_close_all(void);
/* True while any export is registered (the daemon's main loop test). */
bool blk_exp_any(void);

#endif
