/*
 * Block layer internals: the driver callback table and the node struct.
 * Included by drivers and by the generic layer (block.c, io.c).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * General contract for every callback below, unless its comment says
 * otherwise:
 *  - it runs on the node's AioContext thread;
 *  - callbacks named bdrv_co_* run in coroutine context and may yield;
 *  - the generic layer has checked the range (offset >= 0, no overflow,
 *    within BDRV_MAX_LENGTH), holds an in-flight reference on the node,
 *    and has aligned read/write requests to bl.request_alignment and
 *    split them at bl.max_transfer;
 *  - the return value is 0 (or the documented value) on success and a
 *    negative errno on failure; Error ** is used only by setup callbacks.
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

#include "block/block.h"
#include "block/snapshot.h"

typedef struct BlockLimits {
    /*
     * Alignment (bytes, power of two) for offset and length of reads
     * and writes passed to the driver; the generic layer pads smaller
     * requests with read-modify-write.  1 for byte-granular drivers.
     */
    uint32_t request_alignment;
    /* Largest read/write passed in one call, 0 = no limit. */
    uint32_t max_transfer;
    uint32_t opt_transfer;
    /* Discard and write-zeroes limits (0 = no limit / no alignment). */
    int64_t max_pdiscard;
    uint32_t pdiscard_alignment;
    int64_t max_pwrite_zeroes;
    uint32_t pwrite_zeroes_alignment;
    /* Buffer alignment: required (min) and preferred (opt). */
    size_t min_mem_alignment;
    size_t opt_mem_alignment;
    int max_iov;                 /* 0 = IOV_MAX */

    /* Zoned geometry; zoned == BLK_Z_NONE for ordinary devices. */
    BlockZoneModel zoned;
    uint64_t zone_size;          /* bytes, power of two */
    uint64_t zone_capacity;      /* bytes, <= zone_size */
    uint32_t nr_zones;
    uint32_t nr_conv_zones;
    uint32_t max_open_zones;     /* 0 = no limit */
    uint32_t max_active_zones;   /* 0 = no limit */
    uint32_t max_append_sectors; /* 512-byte sectors */
    uint32_t write_granularity;  /* bytes */
} BlockLimits;

/*
 * What a child is to its parent; decides the default permissions the
 * parent takes on it (bdrv_default_perms).  Values as in QEMU.
 */
typedef enum BdrvChildRole {
    BDRV_CHILD_DATA     = 1 << 0,   /* guest data lives here */
    BDRV_CHILD_METADATA = 1 << 1,   /* format metadata lives here */
    BDRV_CHILD_FILTERED = 1 << 2,   /* parent passes everything through */
    BDRV_CHILD_COW      = 1 << 3,   /* backing file: read-only source */
    BDRV_CHILD_PRIMARY  = 1 << 4,   /* the parent's main child */
} BdrvChildRole;
#define BDRV_CHILD_IMAGE (BDRV_CHILD_DATA | BDRV_CHILD_METADATA)

/*
 * What a parent that is not a node (a BlockBackend) does when the child
 * node enters or leaves a drained section (bdrv_drained_begin in
 * block/io.c).  Node parents need none: the section spreads to them.
 */
typedef struct BdrvChildClass {
    void (*drained_begin)(BdrvChild *c);
    void (*drained_end)(BdrvChild *c);
    /* True while the parent still has requests on the way to the node. */
    bool (*drained_poll)(BdrvChild *c);
} BdrvChildClass;

struct BdrvChild {
    BlockDriverState *bs;        /* the child node */
    const BdrvChildClass *klass; /* NULL for node parents */
    BlockDriverState *parent;    /* NULL for a BlockBackend's root */
    char *name;                  /* "file", "backing" */
    /*
     * Permissions this edge holds on bs (BLK_PERM_*) and lets other
     * users of bs hold; see block/block-perm.c.  A fresh edge holds 0
     * and shares everything.
     */
    BdrvChildRole role;
    uint64_t perm;
    uint64_t shared;
    BdrvChild *next_parent;      /* in bs->parents */
};

typedef struct BdrvTrackedRequest BdrvTrackedRequest;

struct BlockDriverState {
    BlockDriver *drv;
    void *opaque;                /* drv->instance_size bytes, zeroed */
    AioContext *aio_context;
    int refcnt;

    /*
     * Undo journal (bdrv_undo_begin() in block/io.c): while set, what
     * writes, discards and shrinks through a BdrvChild change below the
     * node's original length is saved first.  Owned by the node's
     * AioContext thread.
     */
    struct BdrvUndo *undo;

    int open_flags;              /* BDRV_O_* */
    bool read_only;
    char filename[PATH_MAX];     /* what the node was opened from */
    char node_name[32];
    /* Backing file as recorded in the image, and its format. */
    char backing_file[PATH_MAX];
    char backing_format[16];
    /* Options the node was opened with (for json: names and reopen). */
    QDict *options;

    /* Edges pointing at this node (their perm/shared add up). */
    BdrvChild *parents;

    BdrvChild *file;             /* protocol/storage child, may be NULL */
    BdrvChild *backing;          /* backing (COW) child, may be NULL */

    BlockLimits bl;
    /* Flags the driver implements natively; others are emulated. */
    BdrvRequestFlags supported_write_flags;
    BdrvRequestFlags supported_zero_flags;

    /* Requests in flight in the generic layer (for drain). */
    unsigned int in_flight;
    /* Coroutines waiting in bdrv_co_drain. */
    CoQueue drain_queue;
    /* Nesting depth of drained sections on this node (io.c). */
    unsigned int quiesce_counter;
    /* All live nodes, for bdrv_find_node() (main thread). */
    BlockDriverState *next_node;
    /* Tracked requests: every write is linked here (O(1), no allocation)
     * so a serialising one (RMW padding) can wait for overlapping writes;
     * serialising_in_flight counts those so the fast path skips the walk. */
    BdrvTrackedRequest *tracked_head;
    unsigned int serialising_in_flight;

    /* Cached length in bytes (-1: unknown, ask the driver).  Set after
     * open, refreshed by truncate, grown by writes past the end. */
    int64_t total_bytes;
    /* The format was guessed by probing (raw restricts writes to block 0). */
    bool probed;

    /* Serialises bdrv_co_flush so concurrent flushes share work. */
    CoMutex flush_lock;
    uint64_t write_gen;          /* bumped by every completed write */
    uint64_t flushed_gen;        /* write_gen covered by the last flush */
};

struct BlockDriver {
    const char *format_name;
    int instance_size;
    bool is_format;              /* probed and stacked on a protocol */
    bool is_filter;
    bool supports_backing;
    const char *protocol_name;   /* "file": handles "file:path" names */

    /*
     * Score how likely @buf (the first bytes of the file, at least 512
     * unless the file is shorter) is in this format: 0 = not at all,
     * 100 = certain.  Not a coroutine; must not do I/O.
     */
    int (*bdrv_probe)(const uint8_t *buf, int buf_size, const char *filename);
    /* Protocols: turn "proto:rest" / a path into options ("filename"). */
    void (*bdrv_parse_filename)(const char *filename, QDict *options,
                                Error **errp);

    /*
     * Open @bs.  Coroutine context.  For a format driver, the generic
     * layer has opened bs->file already (from the "file" option or the
     * filename); @options holds the node's remaining options: the driver
     * removes every key it consumes (unknown leftovers are an error).
     * Drivers that support backing files open them themselves with
     * bdrv_open_backing() after parsing the header.  Returns 0 or -errno
     * with *errp set.  On failure the generic layer closes the children;
     * the driver frees what it allocated.
     */
    int coroutine_fn (*bdrv_co_open)(BlockDriverState *bs, QDict *options,
                                     int flags, Error **errp);
    /*
     * Optional.  The open is complete (options checked, backing file
     * attached, limits known): the first point where the driver may
     * write to its children, for the updates an open implies (repairing
     * a dirty image, clearing stale feature bits).  Every check that can
     * refuse an image belongs in bdrv_co_open, so that a refused open
     * leaves the file as it was.  Coroutine context.  0 or -errno with
     * *errp set; on failure the generic layer closes the node.
     */
    int coroutine_fn (*bdrv_co_activate)(BlockDriverState *bs, Error **errp);
    /*
     * Close: flush caches and free driver state.  Coroutine context, no
     * request in flight (the generic layer drained).  Children are
     * released by the generic layer afterwards.
     */
    void coroutine_fn (*bdrv_co_close)(BlockDriverState *bs);

    /* Fill bs->bl; called after open (children's limits are known). */
    void (*bdrv_refresh_limits)(BlockDriverState *bs, Error **errp);

    /*
     * Read/write [offset, offset+bytes) from/into qiov at qiov_offset.
     * Aligned to bl.request_alignment, bytes <= bl.max_transfer.
     * Writes: @flags only contains bits of supported_write_flags (the
     * generic layer emulates FUA with a flush otherwise).  Writes past the
     * end are the generic layer's responsibility (rejected before this).
     */
    int coroutine_fn (*bdrv_co_preadv_part)(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pwritev_part)(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             QEMUIOVector *qiov,
                                             size_t qiov_offset,
                                             BdrvRequestFlags flags);
    /*
     * Compressed write of whole clusters (BDRV_REQ_WRITE_COMPRESSED);
     * bytes == 0 marks the end of a compressed stream (file end alignment).
     */
    int coroutine_fn (*bdrv_co_pwritev_compressed_part)(
        BlockDriverState *bs, int64_t offset, int64_t bytes,
        QEMUIOVector *qiov, size_t qiov_offset);
    /*
     * Make the range read as zeroes.  @flags may have MAY_UNMAP (free the
     * space), NO_FALLBACK, FUA.  Return -ENOTSUP to let the generic layer
     * write a zeroed buffer instead (unless NO_FALLBACK).
     */
    int coroutine_fn (*bdrv_co_pwrite_zeroes)(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags);
    /* Discard: a hint; the range's content becomes undefined (or zero). */
    int coroutine_fn (*bdrv_co_pdiscard)(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes);
    /*
     * Make every guest cluster unallocated, so that reads go to the
     * backing file again (qemu-img commit).  Coroutine context, no lock
     * held, no requests in flight.  0 or -errno; absent: -ENOTSUP.
     */
    int coroutine_fn (*bdrv_co_make_empty)(BlockDriverState *bs);
    /*
     * Flush in two steps: to_os writes the driver's own caches to its
     * children; to_disk makes the node's own storage durable (protocols).
     * The generic layer then flushes the children.
     */
    int coroutine_fn (*bdrv_co_flush_to_os)(BlockDriverState *bs);
    int coroutine_fn (*bdrv_co_flush_to_disk)(BlockDriverState *bs);

    /*
     * Status of [offset, offset+bytes) in this node (not its backing).
     * offset/bytes are aligned to request_alignment.  Return BDRV_BLOCK_*
     * flags, set *pnum (> 0, may exceed bytes only up to the end), and
     * with OFFSET_VALID *map and *file (the node holding the data).
     * @want_zero: the caller wants ZERO precisely (may cost more).
     */
    int coroutine_fn (*bdrv_co_block_status)(BlockDriverState *bs,
                                             bool want_zero, int64_t offset,
                                             int64_t bytes, int64_t *pnum,
                                             int64_t *map,
                                             BlockDriverState **file);

    /* Virtual size in bytes. */
    int64_t coroutine_fn (*bdrv_co_getlength)(BlockDriverState *bs);
    /* Host bytes used (protocols); formats default to their file's. */
    int64_t coroutine_fn (*bdrv_co_get_allocated_file_size)(
        BlockDriverState *bs);
    /*
     * Resize to @offset.  @exact: the size must be exactly @offset (else
     * growing to at least @offset is fine).  @prealloc applies to the
     * new area.  -ENOTSUP with errp set if the driver cannot.
     */
    int coroutine_fn (*bdrv_co_truncate)(BlockDriverState *bs,
                                         int64_t offset, bool exact,
                                         PreallocMode prealloc,
                                         BdrvRequestFlags flags,
                                         Error **errp);

    /*
     * Create an image file named @filename.  Coroutine context.  @opts
     * come from create_opts (for formats merged with the protocol's).
     */
    int coroutine_fn (*bdrv_co_create_opts)(BlockDriver *drv,
                                            const char *filename,
                                            QemuOpts *opts, Error **errp);
    const QemuOptsList *create_opts;
    /*
     * Optional: set the defaults of options that only apply with others
     * (e.g. zone.* with zone.mode), so that "Formatting" lists them.
     */
    void (*bdrv_create_opts_defaults)(QemuOpts *opts);
    /* Change creation options of an open (read-write) image. */
    int coroutine_fn (*bdrv_co_amend)(BlockDriverState *bs, QemuOpts *opts,
                                      bool force, Error **errp);
    const QemuOptsList *amend_opts;
    /* Space needed to convert @in_bs (may be NULL: size from @opts). */
    BlockMeasureInfo *(*bdrv_measure)(QemuOpts *opts,
                                      BlockDriverState *in_bs,
                                      Error **errp);

    /* Not coroutines; no I/O. */
    int (*bdrv_get_info)(BlockDriverState *bs, BlockDriverInfo *bdi);
    QObject *(*bdrv_get_specific_info)(BlockDriverState *bs, Error **errp);
    /* Internal snapshots as a QList of QEMU's SnapshotInfo dicts, or NULL. */
    QObject *(*bdrv_query_snapshots)(BlockDriverState *bs);

    /*
     * Internal snapshots (block/snapshot.c calls these after draining the
     * node; no request is in flight and none starts meanwhile).
     * Coroutine context; the driver takes its own metadata lock.
     * Return 0 or -errno.  @errp is set for refusals that have a message
     * of their own (zoned, corrupt or read-only image, bad snapshot
     * table); left unset, the generic layer or the tool words the errno
     * as QEMU does.  Nothing is changed when a check fails.
     *
     * create: snapshot the current state; an empty sn_info->id_str gets
     * a new unique ID (written back), an ID in use is -EEXIST.
     * goto: make the snapshot with ID (else name) @id_or_name the current
     * state, resizing to its size; -ENOENT if there is none.
     * delete: drop the snapshot matching @id and @name (NULL: any);
     * -ENOENT with *errp set if there is none.
     * list: not a coroutine, no I/O: the snapshots (g_new array in
     * *psn_tab, NULL if none) and their count.
     */
    int coroutine_fn (*bdrv_co_snapshot_create)(BlockDriverState *bs,
                                                QEMUSnapshotInfo *sn_info,
                                                Error **errp);
    int coroutine_fn (*bdrv_co_snapshot_goto)(BlockDriverState *bs,
                                              const char *id_or_name,
                                              Error **errp);
    int coroutine_fn (*bdrv_co_snapshot_delete)(BlockDriverState *bs,
                                                const char *id,
                                                const char *name,
                                                Error **errp);
    int (*bdrv_snapshot_list)(BlockDriverState *bs,
                              QEMUSnapshotInfo **psn_tab);

    /* Consistency check and repair.  Coroutine context. */
    int coroutine_fn (*bdrv_co_check)(BlockDriverState *bs,
                                      BdrvCheckResult *result,
                                      BdrvCheckMode fix);
    /* Rewrite the backing file name in the image (rebase -u). */
    int coroutine_fn (*bdrv_co_change_backing_file)(BlockDriverState *bs,
                                                    const char *backing_file,
                                                    const char *backing_fmt);

    /*
     * Zoned devices.  Coroutine context.  Drivers that do not implement
     * them leave them NULL and the generic layer returns -ENOTSUP.
     *
     * zone_report: describe up to *nr_zones zones starting with the one
     * containing @offset; sets *nr_zones to the number filled (0 at or past
     * the end).  Never fails because the buffer is short.
     * zone_mgmt: apply @op to every zone in [offset, offset+len); offset
     * zone aligned, len a multiple of zone_size or reaching the end.
     * zone_append: *offset is a zone start; the data is written at that
     * zone's write pointer and *offset set to where it went.
     * Errors: -EINVAL bad arguments or write not at the wp, -EIO operation
     * not allowed in the zone's condition, -ETOOMANYREFS open limit,
     * -EOVERFLOW active limit.
     */
    int coroutine_fn (*bdrv_co_zone_report)(BlockDriverState *bs,
                                            int64_t offset,
                                            unsigned int *nr_zones,
                                            BlockZoneDescriptor *zones);
    int coroutine_fn (*bdrv_co_zone_mgmt)(BlockDriverState *bs,
                                          BlockZoneOp op, int64_t offset,
                                          int64_t len);
    int coroutine_fn (*bdrv_co_zone_append)(BlockDriverState *bs,
                                            int64_t *offset,
                                            QEMUIOVector *qiov,
                                            BdrvRequestFlags flags);

    /*
     * Permissions.  Not coroutines, no I/O.
     *
     * child_perm: the permissions (*nperm) @bs needs on its child @c
     * and those it lets others have (*nshared), given what the parents
     * of @bs hold in total (@perm) and share (@shared).  May be called
     * before bdrv_co_open (opaque zeroed) and again after it.  NULL:
     * bdrv_default_perms() by @role.
     * set_perm: protocols holding a resource (file locks) apply the
     * node's total @perm/@shared.  Returns 0 or -errno with errp set;
     * on failure what was held before stays held.
     */
    void (*bdrv_child_perm)(BlockDriverState *bs, BdrvChild *c,
                            BdrvChildRole role, uint64_t perm,
                            uint64_t shared, uint64_t *nperm,
                            uint64_t *nshared);
    int (*bdrv_set_perm)(BlockDriverState *bs, uint64_t perm,
                         uint64_t shared, Error **errp);

    /* Linked list of registered drivers (generic layer only). */
    BlockDriver *next;
};

/* ---- helpers for drivers --------------------------------------------- */

/*
 * Open the child @child_name ("file") of @parent from the options in
 * @options under "child_name." and/or @filename.  Consumes those keys.
 * Coroutine context.  Returns NULL and sets errp on failure (or NULL
 * without error if @allow_none and nothing was given).
 */
BdrvChild *bdrv_open_child(const char *filename, QDict *options,
                           const char *child_name, BlockDriverState *parent,
                           int flags, bool allow_none, Error **errp);
/* Open bs->backing from bs->backing_file (or "backing.*" options). */
int coroutine_fn bdrv_open_backing(BlockDriverState *bs, QDict *options,
                                   Error **errp);
void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child);

/* ---- permissions (block/block-perm.c) --------------------------------- */

/* QEMU's default child permissions for @role (filter, COW, storage). */
void bdrv_default_perms(BlockDriverState *bs, BdrvChild *c,
                        BdrvChildRole role, uint64_t perm, uint64_t shared,
                        uint64_t *nperm, uint64_t *nshared);
/* Link/unlink edge @c into c->bs->parents (no permission update). */
void bdrv_parent_link(BdrvChild *c);
void bdrv_parent_unlink(BdrvChild *c);
/*
 * Recompute the permissions of @bs's children from what its parents
 * hold, recursively, and let protocol nodes apply them (image locks).
 * Returns 0 or -errno with errp set; on failure the edges below @bs get
 * their old permissions back.
 */
int bdrv_refresh_perms(BlockDriverState *bs, Error **errp);

/* Called by a driver that finds its image corrupt at runtime. */
void bdrv_report_corruption(BlockDriverState *bs, const char *fmt, ...)
    QEMU_PRINTF(2, 3);

/* Default implementations drivers can point at. */
int coroutine_fn bdrv_co_block_status_from_file(BlockDriverState *bs,
                                                bool want_zero,
                                                int64_t offset,
                                                int64_t bytes,
                                                int64_t *pnum, int64_t *map,
                                                BlockDriverState **file);

/*
 * Run entry(opaque) in a new coroutine and poll the current AioContext
 * until it sets *done (entry must do so last).  Inside a coroutine it is
 * called directly.  Used by all synchronous wrappers.
 */
void bdrv_run_co(CoroutineEntry *entry, void *opaque, bool *done);

/* Allocate a buffer suitably aligned for I/O on @bs. */
void *qemu_blockalign(BlockDriverState *bs, size_t size);
void *qemu_try_blockalign(BlockDriverState *bs, size_t size);
void *qemu_blockalign0(BlockDriverState *bs, size_t size);

/* Built-in drivers (registered by bdrv_init). */
extern BlockDriver bdrv_file;
extern BlockDriver bdrv_raw;
extern BlockDriver bdrv_qcow2;
extern BlockDriver bdrv_blklogwrites;

#endif
