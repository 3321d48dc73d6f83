/*
 * Block layer: public API used by tools, format drivers and exports.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The I/O functions named bdrv_co_* must be called from a coroutine; the
 * plain bdrv_* forms are synchronous wrappers that may be called from
 * anywhere on the loop thread (inside a coroutine they call the _co_
 * form directly, outside they run it in a new coroutine and poll the
 * event loop until it completes).  I/O functions return 0 (or a byte
 * count / length where documented) on success and -errno on failure.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include "block/aio.h"
#include "qemu/iov.h"
#include "qemu/option.h"
#include "qemu/qobject.h"

typedef struct BlockDriver BlockDriver;
typedef struct BlockDriverState BlockDriverState;
typedef struct BdrvChild BdrvChild;

#define BDRV_SECTOR_BITS   9
#define BDRV_SECTOR_SIZE   (1ULL << BDRV_SECTOR_BITS)

/* Largest request the generic layer accepts (as QEMU: INT64_MAX aligned). */
#define BDRV_MAX_LENGTH    (QEMU_ALIGN_DOWN(INT64_MAX, 1 << 30))
/* Largest single request passed to a driver (before max_transfer). */
#define BDRV_REQUEST_MAX_BYTES (INT32_MAX & ~(uint64_t)(BDRV_SECTOR_SIZE * 8 - 1))

/* ---- open flags ------------------------------------------------------ */
#define BDRV_O_RDWR         0x0002  /* read-write (else read-only) */
#define BDRV_O_NO_BACKING   0x0004  /* do not open the backing chain */
#define BDRV_O_SNAPSHOT     0x0008  /* unused, reserved */
#define BDRV_O_PROTOCOL     0x0010  /* filename names a protocol node */
#define BDRV_O_NOCACHE      0x0020  /* cache.direct: O_DIRECT */
#define BDRV_O_NATIVE_AIO   0x0080  /* aio=native (libaio) */
#define BDRV_O_NO_FLUSH     0x0200  /* cache.no-flush: flushes are no-ops */
#define BDRV_O_UNMAP        0x4000  /* discard requests are honoured */
#define BDRV_O_CHECK        0x1000  /* opened for check: allow corrupt images */
#define BDRV_O_FORCE_SHARE  0x8000  /* -U: no image locking conflicts */
#define BDRV_O_IO_URING     0x40000 /* aio=io_uring */
#define BDRV_O_INACTIVE     0x0800  /* reserved */
#define BDRV_O_AUTO_RDONLY  0x20000 /* fall back to read-only if needed */
#define BDRV_O_CACHE_MASK   (BDRV_O_NOCACHE | BDRV_O_NO_FLUSH)
/* Permission requests of blk_new_open() (see block/block-perm.c). */
#define BDRV_O_NO_SHARE     0x0001  /* share only reads, not writes/resize */
#define BDRV_O_RESIZE       0x0040  /* request the resize permission */
#define BDRV_O_NO_IO        0x10000 /* metadata only: no read permission */

/*
 * Permission bits, numbered as QEMU numbers them: a file node holding
 * bit i takes the lock byte 100 + i, and one not sharing it 200 + i, so
 * our locks and QEMU's see each other.
 */
#define BLK_PERM_CONSISTENT_READ  0x01
#define BLK_PERM_WRITE            0x02
#define BLK_PERM_WRITE_UNCHANGED  0x04
#define BLK_PERM_RESIZE           0x08
#define BLK_PERM_ALL              0x0f

/* ---- request flags ---------------------------------------------------- */
typedef enum BdrvRequestFlags {
    BDRV_REQ_FUA              = 0x1,   /* write through to stable storage */
    BDRV_REQ_ZERO_WRITE       = 0x2,   /* internal: write zeroes */
    BDRV_REQ_MAY_UNMAP        = 0x4,   /* zeroes may be written by unmapping */
    BDRV_REQ_NO_FALLBACK      = 0x8,   /* fail rather than write real zeroes */
    BDRV_REQ_WRITE_COMPRESSED = 0x10,  /* store compressed (qcow2) */
    BDRV_REQ_SERIALISING      = 0x20,  /* internal: exclusive range */
    BDRV_REQ_PREFETCH         = 0x40,  /* reserved */
    BDRV_REQ_REGISTERED_BUF   = 0x80,  /* reserved for io_uring fixed bufs */
    BDRV_REQ_MASK             = 0xff,
} BdrvRequestFlags;

/* ---- block status ------------------------------------------------------ */
#define BDRV_BLOCK_DATA         0x01  /* reads return data from this node */
#define BDRV_BLOCK_ZERO         0x02  /* reads return zeroes */
#define BDRV_BLOCK_OFFSET_VALID 0x04  /* *map is a valid offset in *file */
#define BDRV_BLOCK_RAW          0x08  /* pass-through: ask *file at *map */
#define BDRV_BLOCK_ALLOCATED    0x10  /* allocated in this layer */
#define BDRV_BLOCK_EOF          0x20  /* the range reaches the end */
#define BDRV_BLOCK_RECURSE      0x40  /* ask *file whether it is zero */
#define BDRV_BLOCK_COMPRESSED   0x80  /* stored compressed */

typedef enum PreallocMode {
    PREALLOC_MODE_OFF,
    PREALLOC_MODE_METADATA,
    PREALLOC_MODE_FALLOC,
    PREALLOC_MODE_FULL,
    PREALLOC_MODE__MAX,
} PreallocMode;
extern const char *const PreallocMode_str[];
/* Parse; returns -1 and sets errp on an unknown name. */
int prealloc_mode_parse(const char *s, Error **errp);

/* ---- zoned devices (values as Linux and virtio-blk use them) --------- */
typedef enum BlockZoneModel {
    BLK_Z_NONE = 0,
    BLK_Z_HM   = 1,   /* host-managed */
    BLK_Z_HA   = 2,   /* host-aware */
} BlockZoneModel;

typedef enum BlockZoneType {
    BLK_ZT_CONV = 1,  /* conventional: random writes */
    BLK_ZT_SWR  = 2,  /* sequential write required */
    BLK_ZT_SWP  = 3,  /* sequential write preferred */
} BlockZoneType;

typedef enum BlockZoneState {
    BLK_ZS_NOT_WP  = 0x0,
    BLK_ZS_EMPTY   = 0x1,
    BLK_ZS_IOPEN   = 0x2,
    BLK_ZS_EOPEN   = 0x3,
    BLK_ZS_CLOSED  = 0x4,
    BLK_ZS_RDONLY  = 0xd,
    BLK_ZS_FULL    = 0xe,
    BLK_ZS_OFFLINE = 0xf,
} BlockZoneState;

typedef enum BlockZoneOp {
    BLK_ZO_OPEN,
    BLK_ZO_CLOSE,
    BLK_ZO_FINISH,
    BLK_ZO_RESET,     /* over [0, device size) this resets every zone */
} BlockZoneOp;

/* One zone as reported; all values in bytes. */
typedef struct BlockZoneDescriptor {
    uint64_t start;
    uint64_t length;
    uint64_t cap;
    uint64_t wp;
    BlockZoneType type;
    BlockZoneState state;
} BlockZoneDescriptor;

/* "EMPTY", "IMP_OPEN", ... : the one table of condition names. */
const char *bdrv_zone_state_name(BlockZoneState state);
const char *bdrv_zone_type_name(BlockZoneType type);
const char *bdrv_zone_op_name(BlockZoneOp op);   /* "open", "close", ... */

/* ---- information ---------------------------------------------------- */
typedef struct BlockDriverInfo {
    int cluster_size;          /* 0 if not applicable */
    int64_t vm_state_offset;
    bool is_dirty;
} BlockDriverInfo;

typedef struct BlockFragInfo {
    uint64_t allocated_clusters;
    uint64_t total_clusters;
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
} BlockFragInfo;

typedef struct BdrvCheckResult {
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;
    BlockFragInfo bfi;
} BdrvCheckResult;

typedef enum BdrvCheckMode {
    BDRV_FIX_LEAKS  = 1,
    BDRV_FIX_ERRORS = 2,
} BdrvCheckMode;

typedef struct BlockMeasureInfo {
    uint64_t required;         /* bytes needed for the data written */
    uint64_t fully_allocated;  /* bytes needed with every cluster allocated */
    uint64_t bitmaps;
    bool has_bitmaps;          /* print "bitmaps size" (qcow2 v3 -> v3) */
} BlockMeasureInfo;

/* ---- drivers and nodes ------------------------------------------------ */
void bdrv_init(void);                 /* registers the built-in drivers */
void bdrv_register(BlockDriver *drv);
BlockDriver *bdrv_find_format(const char *format_name);
/* The protocol driver for @filename ("file" for plain paths). */
BlockDriver *bdrv_find_protocol(const char *filename, bool allow_protocol_prefix,
                                Error **errp);
/* Probe the first bytes of an image; returns the best format driver. */
BlockDriver *bdrv_probe_format(const uint8_t *buf, int buf_size,
                               const char *filename);
/*
 * The name of a format we do not implement whose signature @buf (the
 * first bytes of an image) or @tail (its last 512 bytes) carries, or NULL
 * (block/probe-foreign.c).
 */
const char *bdrv_probe_foreign(const uint8_t *buf, size_t buf_size);
const char *bdrv_probe_foreign_tail(const uint8_t *tail, size_t tail_size);
/* Calls cb for every registered format (for "Supported formats:"). */
void bdrv_iterate_format(void (*cb)(void *opaque, const char *name),
                         void *opaque);

/*
 * Open a node graph.  @filename may be NULL when @options names
 * everything ("driver=qcow2,file.filename=..."); a "json:{...}" filename
 * is parsed into options.  Without a "driver" option the format is
 * probed.  @options is consumed (may be NULL).  Unknown options are an
 * error naming the option.  Runs the drivers' open in a coroutine.
 */
BlockDriverState *bdrv_open(const char *filename, QDict *options, int flags,
                            Error **errp);
void bdrv_ref(BlockDriverState *bs);
/* Drop a reference; the last one drains, closes and frees the node. */
void bdrv_unref(BlockDriverState *bs);

/*
 * The live node called @node_name (given with node-name= or generated),
 * or NULL.  Main thread.
 */
BlockDriverState *bdrv_find_node(const char *node_name);

/* Node accessors. */
const char *bdrv_get_format_name(BlockDriverState *bs);
const char *bdrv_get_node_name(BlockDriverState *bs);
const char *bdrv_get_filename(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);
int bdrv_get_flags(BlockDriverState *bs);
BlockDriverState *bdrv_get_file(BlockDriverState *bs);     /* may be NULL */
BlockDriverState *bdrv_backing_bs(BlockDriverState *bs);   /* may be NULL */
/* The node that stores this node's data (skipping filters). */
BlockDriverState *bdrv_filter_or_cow_bs(BlockDriverState *bs);
AioContext *bdrv_get_aio_context(BlockDriverState *bs);
const struct BlockLimits *bdrv_get_limits(BlockDriverState *bs);

/* ---- I/O on a child (drivers) or a node (tools use BlockBackend) ---- */
int coroutine_fn bdrv_co_preadv(BdrvChild *child, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn bdrv_co_preadv_part(BdrvChild *child, int64_t offset,
                                     int64_t bytes, QEMUIOVector *qiov,
                                     size_t qiov_offset,
                                     BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwritev(BdrvChild *child, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwritev_part(BdrvChild *child, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      size_t qiov_offset,
                                      BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pread(BdrvChild *child, int64_t offset,
                               int64_t bytes, void *buf,
                               BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwrite(BdrvChild *child, int64_t offset,
                                int64_t bytes, const void *buf,
                                BdrvRequestFlags flags);
/* Write then flush the node (metadata updates that must be durable). */
int coroutine_fn bdrv_co_pwrite_sync(BdrvChild *child, int64_t offset,
                                     int64_t bytes, const void *buf,
                                     BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwrite_zeroes(BdrvChild *child, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pdiscard(BdrvChild *child, int64_t offset,
                                  int64_t bytes);
/* Flush this node, then its children (the whole subtree). */
int coroutine_fn bdrv_co_flush(BlockDriverState *bs);

int64_t coroutine_fn bdrv_co_getlength(BlockDriverState *bs);
int64_t coroutine_fn bdrv_co_get_allocated_file_size(BlockDriverState *bs);
int coroutine_fn bdrv_co_make_empty(BlockDriverState *bs);
/*
 * An undo journal on @child's node, for a multi-step update that must
 * leave the file exactly as it was if it fails halfway (a format
 * driver's open-time repair).  Coroutine context; one journal per node.
 * bdrv_co_undo_begin: start recording (0 or -errno).
 * bdrv_co_undo_rollback: write back what was recorded, newest first,
 * restore the original length, flush, and stop recording (0 or -errno).
 * bdrv_undo_end: keep the changes and stop recording.
 */
int coroutine_fn bdrv_co_undo_begin(BdrvChild *child);
int coroutine_fn bdrv_co_undo_rollback(BdrvChild *child);
void bdrv_undo_end(BdrvChild *child);
int coroutine_fn bdrv_co_truncate(BdrvChild *child, int64_t offset,
                                  bool exact, PreallocMode prealloc,
                                  BdrvRequestFlags flags, Error **errp);

/*
 * Status of [offset, offset+bytes) in @bs only: returns BDRV_BLOCK_ flags
 * or -errno; *pnum is the length of the range with that status
 * (> 0 unless offset is at the end).  *map and *file as for the callback.
 */
int coroutine_fn bdrv_co_block_status(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum,
                                      int64_t *map, BlockDriverState **file);
/* The same, looking through the backing chain down to (not including)
 * @base (NULL: the whole chain). */
int coroutine_fn bdrv_co_block_status_above(BlockDriverState *bs,
                                            BlockDriverState *base,
                                            int64_t offset, int64_t bytes,
                                            int64_t *pnum, int64_t *map,
                                            BlockDriverState **file,
                                            int *depth);
/* 1 if allocated in @bs itself, 0 if not, -errno. */
int coroutine_fn bdrv_co_is_allocated(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum);
int coroutine_fn bdrv_co_is_allocated_above(BlockDriverState *top,
                                            BlockDriverState *base,
                                            bool include_base, int64_t offset,
                                            int64_t bytes, int64_t *pnum);

int coroutine_fn bdrv_co_zone_report(BlockDriverState *bs, int64_t offset,
                                     unsigned int *nr_zones,
                                     BlockZoneDescriptor *zones);
int coroutine_fn bdrv_co_zone_mgmt(BlockDriverState *bs, BlockZoneOp op,
                                   int64_t offset, int64_t len);
/* *offset: in = zone start, out = where the data was written. */
int coroutine_fn bdrv_co_zone_append(BlockDriverState *bs, int64_t *offset,
                                     QEMUIOVector *qiov,
                                     BdrvRequestFlags flags);

int coroutine_fn bdrv_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                               BdrvCheckMode fix);
int coroutine_fn bdrv_co_amend(BlockDriverState *bs, QemuOpts *opts,
                               bool force, Error **errp);
int coroutine_fn bdrv_co_change_backing_file(BlockDriverState *bs,
                                             const char *backing_file,
                                             const char *backing_fmt);
int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
/* Format specific info as a dict tree ({"type":..., "data": {...}}). */
QObject *bdrv_get_specific_info(BlockDriverState *bs, Error **errp);

/* ---- synchronous wrappers (loop thread, coroutine or not) ----------- */
int bdrv_pread(BdrvChild *child, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags);
int bdrv_pwrite(BdrvChild *child, int64_t offset, int64_t bytes,
                const void *buf, BdrvRequestFlags flags);
int bdrv_pwrite_sync(BdrvChild *child, int64_t offset, int64_t bytes,
                     const void *buf, BdrvRequestFlags flags);
int bdrv_pwrite_zeroes(BdrvChild *child, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags);
int bdrv_flush(BlockDriverState *bs);
int64_t bdrv_getlength(BlockDriverState *bs);
int64_t bdrv_get_allocated_file_size(BlockDriverState *bs);
int bdrv_make_empty(BlockDriverState *bs);
int bdrv_truncate(BdrvChild *child, int64_t offset, bool exact,
                  PreallocMode prealloc, BdrvRequestFlags flags, Error **errp);
int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file);
int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                            int64_t offset, int64_t bytes, int64_t *pnum,
                            int64_t *map, BlockDriverState **file, int *depth);
int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum);
int bdrv_is_allocated_above(BlockDriverState *top, BlockDriverState *base,
                            bool include_base, int64_t offset, int64_t bytes,
                            int64_t *pnum);
int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix);
int bdrv_amend(BlockDriverState *bs, QemuOpts *opts, bool force, Error **errp);
int bdrv_change_backing_file(BlockDriverState *bs, const char *backing_file,
                             const char *backing_fmt);
int bdrv_zone_report(BlockDriverState *bs, int64_t offset,
                     unsigned int *nr_zones, BlockZoneDescriptor *zones);
int bdrv_zone_mgmt(BlockDriverState *bs, BlockZoneOp op, int64_t offset,
                   int64_t len);

/* Wait until no request is in flight on @bs and its children. */
void bdrv_drain(BlockDriverState *bs);
void coroutine_fn bdrv_co_drain(BlockDriverState *bs);
/*
 * Drained section: parents (BlockBackends, and through them exports)
 * are told to stop starting requests, then in-flight ones are waited
 * for; until the matching end no new request reaches @bs.  Sections
 * nest (a counter).  Main thread; begin may be called in a coroutine.
 */
void bdrv_drained_begin(BlockDriverState *bs);
void bdrv_drained_end(BlockDriverState *bs);

/* ---- image creation -------------------------------------------------- */
/*
 * Create an image with @drv (format or protocol) from @opts (which must
 * be made from @drv's create_opts, merged with the protocol's for a
 * format).  Runs the driver's create in a coroutine.
 */
int bdrv_create(BlockDriver *drv, const char *filename, QemuOpts *opts,
                Error **errp);
/* Create the protocol-level file for a format driver's create. */
int coroutine_fn bdrv_co_create_file(const char *filename, QemuOpts *opts,
                                     Error **errp);
/*
 * qemu-img create: merges create option lists, applies "-o" string and
 * size, prints the "Formatting '...', fmt=..." line unless @quiet, and
 * creates.  @base_filename/@base_fmt are the backing file, if any.
 */
int bdrv_img_create(const char *filename, const char *fmt,
                    const char *base_filename, const char *base_fmt,
                    const char *options, uint64_t img_size, int flags,
                    bool quiet, Error **errp);

/*
 * Measure how much space converting @in_bs (or a new image of the size
 * in @opts if NULL) to @drv would take.
 */
BlockMeasureInfo *bdrv_measure(BlockDriver *drv, QemuOpts *opts,
                               BlockDriverState *in_bs, Error **errp);

/* Helpers for drivers' create and backing file names. */
char *bdrv_get_full_backing_filename_from_filename(const char *backed,
                                                   const char *backing,
                                                   Error **errp);
char *bdrv_get_full_backing_filename(BlockDriverState *bs, Error **errp);

/* The "qemu-img info" human/JSON data of one node (no backing chain). */
QObject *bdrv_query_image_info(BlockDriverState *bs, Error **errp);
/*
 * Append the human form of a bdrv_query_image_info() dict ("image: ...",
 * ..., "Format specific information:" block), each line ending in '\n'.
 */
void bdrv_image_info_print_human(const QObject *info, GString *out);

#endif
