/*
 * qcow2 format driver: the driver table and the zoned emulation.  Zoned
 * images follow the rules of a host-managed device as Linux null_blk
 * implements them: the zone state machine, write-pointer persistence, and
 * the report, management and append callbacks.  For every request whose
 * meaning zones change, the table points at a wrapper here around the
 * zone-unaware function of the data path (qcow2-io.c); open and close are
 * in qcow2-open.c, the header in qcow2-header.c.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Locking: s->lock (a CoMutex) protects the metadata.  It is released
 * around guest data I/O.  Reads and in-place rewrites of clusters whose L2
 * table is cached take a lock-free path: they look the entry up without
 * yielding, and an entry that is NORMAL with the COPIED flag cannot have
 * an allocation in flight, so the mapping is stable for the request.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qcow2.h"

/* ---- zoned devices -------------------------------------------------------------- */

/*
 * Zone model (the rules of Linux null_blk, see docs/zoned.rst).  Per zone
 * we keep 21 bytes: the accepted write pointer, the write pointer covering
 * completed writes only (what we persist), the writes in flight and the
 * condition.  The state changes of a request happen without yielding, so
 * in our single-threaded coroutine model they are atomic: a write is
 * accepted and its wp advanced before its I/O starts, and appends to one
 * zone therefore run concurrently.  mgmt_lock serialises management
 * operations and write-pointer persistence.
 *
 * As in null_blk, each operation (write, open, close, finish, reset) is
 * one function switching on the condition of the zone, and every change
 * of condition goes through zone_set_cond(), which keeps the count of
 * zones in each condition: the open and active limits are checked
 * against those counts.
 */

/* BlockZoneState is a 4-bit code (as in ZBC/ZNS). */
#define ZONE_NR_CONDS 16
QEMU_BUILD_BUG_ON(BLK_ZS_OFFLINE >= ZONE_NR_CONDS);

struct Qcow2ZonedState {
    uint64_t size;
    uint64_t zone_size;
    uint64_t zone_capacity;
    int zone_bits;
    uint32_t nr_zones;
    uint32_t nr_conv;
    uint32_t max_open;
    uint32_t max_active;
    uint32_t max_append;

    uint64_t *wp;            /* accepted: where the next write must start */
    uint64_t *done_wp;       /* all writes below it completed */
    uint32_t *inflight;      /* accepted writes not yet completed */
    uint8_t *cond;           /* BlockZoneState */

    /* Zones in each condition, indexed by BlockZoneState. */
    uint32_t nr_cond[ZONE_NR_CONDS];
    uint32_t imp_close_zone_no;  /* round-robin start of implicit close */

    uint8_t *dirty;          /* per region cluster: entries to write back */
    int dirty_shift;         /* zone number >> dirty_shift = its cluster */
    uint32_t region_clusters;
    bool any_dirty;
    CoMutex mgmt_lock;
    CoQueue drained;         /* woken when a zone has no write in flight */
    uint32_t drained_waiters;    /* coroutines in zoned_wait() */
    /* Zones a reset is freeing: writes to them wait (mgmt_lock held). */
    uint32_t resetting_first;
    uint32_t resetting_last;
};

static inline uint64_t zone_start(Qcow2ZonedState *zs, uint32_t z)
{
    return (uint64_t)z << zs->zone_bits;
}

static inline uint64_t zone_len(Qcow2ZonedState *zs, uint32_t z)
{
    return MIN(zs->zone_size, zs->size - zone_start(zs, z));
}

static inline uint64_t zone_cap(Qcow2ZonedState *zs, uint32_t z)
{
    return MIN(zs->zone_capacity, zone_len(zs, z));
}

static inline void zone_mark_dirty(Qcow2ZonedState *zs, uint32_t z)
{
    zs->any_dirty = true;
    zs->dirty[z >> zs->dirty_shift] = 1;
}

/* The wp a zone would have on reopen: set when nothing is in flight. */
static inline void zone_settle(Qcow2ZonedState *zs, uint32_t z)
{
    uint64_t wp = zs->wp[z];

    if (zs->inflight[z] == 0 && zs->done_wp[z] != wp) {
        zs->done_wp[z] = wp;
        zone_mark_dirty(zs, z);
    }
}

/* ---- zone state machine ---------------------------------------------------------- */

/* The only place a zone changes condition. */
static inline void zone_set_cond(Qcow2ZonedState *zs, uint32_t z,
                                 BlockZoneState cond)
{
    zs->nr_cond[zs->cond[z]]--;
    zs->nr_cond[cond]++;
    zs->cond[z] = cond;
}

static inline uint32_t zone_nr_open(Qcow2ZonedState *zs)
{
    return zs->nr_cond[BLK_ZS_IOPEN] + zs->nr_cond[BLK_ZS_EOPEN];
}

static inline uint32_t zone_nr_active(Qcow2ZonedState *zs)
{
    return zone_nr_open(zs) + zs->nr_cond[BLK_ZS_CLOSED];
}

/* Room for one more active zone?  0 or -EOVERFLOW. */
static int zone_check_active(Qcow2ZonedState *zs)
{
    if (!zs->max_active || zone_nr_active(zs) < zs->max_active) {
        return 0;
    }
    return -EOVERFLOW;
}

/* Close open zone @z: CLOSED, or EMPTY if nothing was written. */
static int zone_close(Qcow2ZonedState *zs, uint32_t z)
{
    switch (zs->cond[z]) {
    case BLK_ZS_CLOSED:
        return 0;
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
        break;
    default:
        return -EIO;
    }
    zone_set_cond(zs, z, zs->wp[z] == zone_start(zs, z) ? BLK_ZS_EMPTY
                                                         : BLK_ZS_CLOSED);
    return 0;
}

/* Close one implicitly open zone, round robin from the last one closed. */
static void zone_close_imp_open(Qcow2ZonedState *zs)
{
    uint32_t zno = zs->imp_close_zone_no, i;

    if (zno >= zs->nr_zones || zno < zs->nr_conv) {
        zno = zs->nr_conv;
    }
    for (i = zs->nr_conv; i < zs->nr_zones; i++) {
        uint32_t z = zno;

        if (++zno >= zs->nr_zones) {
            zno = zs->nr_conv;
        }
        if (zs->cond[z] == BLK_ZS_IOPEN) {
            zone_close(zs, z);
            zs->imp_close_zone_no = zno;
            return;
        }
    }
}

/*
 * Room for one more open zone?  An implicitly open zone is closed to make
 * it if that keeps the active limit.  0 or -ETOOMANYREFS.
 */
static int zone_check_open(Qcow2ZonedState *zs)
{
    if (!zs->max_open || zone_nr_open(zs) < zs->max_open) {
        return 0;
    }
    if (zs->nr_cond[BLK_ZS_IOPEN] && zone_check_active(zs) == 0) {
        zone_close_imp_open(zs);
        return 0;
    }
    return -ETOOMANYREFS;
}

/* Resources for zone @z to become open (from EMPTY or CLOSED). */
static int zone_check_resources(Qcow2ZonedState *zs, uint32_t z)
{
    int ret;

    switch (zs->cond[z]) {
    case BLK_ZS_EMPTY:
        ret = zone_check_active(zs);
        if (ret < 0) {
            return ret;
        }
        /* fall through */
    case BLK_ZS_CLOSED:
        return zone_check_open(zs);
    default:
        return -EIO;
    }
}

static int zone_open(Qcow2ZonedState *zs, uint32_t z)
{
    int ret;

    switch (zs->cond[z]) {
    case BLK_ZS_EOPEN:
        return 0;
    case BLK_ZS_EMPTY:
    case BLK_ZS_CLOSED:
        ret = zone_check_resources(zs, z);
        if (ret < 0) {
            return ret;
        }
        break;
    case BLK_ZS_IOPEN:
        break;
    default:
        return -EIO;
    }
    zone_set_cond(zs, z, BLK_ZS_EOPEN);
    return 0;
}

/* The caller makes the bytes past the old wp read as zeroes. */
static int zone_finish(Qcow2ZonedState *zs, uint32_t z)
{
    int ret;

    switch (zs->cond[z]) {
    case BLK_ZS_FULL:
        return 0;
    case BLK_ZS_EMPTY:
    case BLK_ZS_CLOSED:
        ret = zone_check_resources(zs, z);
        if (ret < 0) {
            return ret;
        }
        break;
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
        break;
    default:
        return -EIO;
    }
    zone_set_cond(zs, z, BLK_ZS_FULL);
    zs->wp[z] = zone_start(zs, z) + zone_len(zs, z);
    return 0;
}

/* The caller frees the data once the new wp is durable. */
static int zone_reset(Qcow2ZonedState *zs, uint32_t z)
{
    switch (zs->cond[z]) {
    case BLK_ZS_EMPTY:
        return 0;
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
    case BLK_ZS_CLOSED:
    case BLK_ZS_FULL:
        break;
    default:
        return -EIO;
    }
    zone_set_cond(zs, z, BLK_ZS_EMPTY);
    zs->wp[z] = zone_start(zs, z);
    return 0;
}

/*
 * Where a write of @bytes to sequential zone @z, whose capacity ends at
 * @end, must go: at the wp (an append, @append, gets it in *offset), in
 * whole sectors of @sector_size, within the capacity.  Changes nothing.
 */
static inline int zone_write_check(Qcow2ZonedState *zs, uint32_t z,
                                   int64_t *offset, uint64_t bytes,
                                   bool append, uint32_t sector_size,
                                   uint64_t end)
{
    if (append) {
        *offset = zs->wp[z];
    } else if ((uint64_t)*offset != zs->wp[z] ||
               (bytes & (sector_size - 1))) {
        return -EINVAL;
    }
    return *offset + bytes > end ? -EIO : 0;
}

/*
 * Accept a write of [*offset, +bytes) to sequential zone @z (an append
 * when @append: *offset is set to the wp used): the zone opens implicitly
 * and its wp advances.  zone_write_end() must follow.  0 or -errno.
 */
static int zone_write_begin(Qcow2ZonedState *zs, uint32_t z, int64_t *offset,
                            uint64_t bytes, bool append,
                            uint32_t sector_size)
{
    uint64_t end = zone_start(zs, z) + zone_cap(zs, z);
    int ret;

    switch (zs->cond[z]) {
    case BLK_ZS_EMPTY:
    case BLK_ZS_CLOSED:
        ret = zone_write_check(zs, z, offset, bytes, append, sector_size,
                               end);
        if (ret == 0) {
            ret = zone_check_resources(zs, z);
        }
        if (ret < 0) {
            return ret;
        }
        zone_set_cond(zs, z, BLK_ZS_IOPEN);
        break;
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
        ret = zone_write_check(zs, z, offset, bytes, append, sector_size,
                               end);
        if (ret < 0) {
            return ret;
        }
        break;
    default:
        return -EIO;
    }
    zs->wp[z] += bytes;
    zs->inflight[z]++;
    if (zs->wp[z] == end) {
        zone_set_cond(zs, z, BLK_ZS_FULL);
    }
    return 0;
}

/*
 * The common case of zone_write_begin(), without its function-call and
 * switch overhead: a write at the wp of an open sequential zone, in whole
 * sectors, that leaves the zone open (ends before its capacity), below
 * any range a reset is freeing.  Accepts it exactly as zone_write_begin()
 * would and returns true; false means the general path must decide.
 */
static inline bool zone_write_begin_fast(Qcow2ZonedState *zs, uint32_t z,
                                         uint64_t offset, uint64_t bytes,
                                         uint32_t sector_size)
{
    uint64_t end = offset + bytes;

    QEMU_BUILD_BUG_ON((BLK_ZS_IOPEN | 1) != BLK_ZS_EOPEN);
    /*
     * end < zone_start + zone_cap, spelt with the capacity at most the
     * zone size (checked at open) so that only a short last zone needs
     * the device size.
     */
    if (z < zs->nr_conv || z >= zs->nr_zones ||
        z >= zs->resetting_first ||
        (zs->cond[z] | 1) != BLK_ZS_EOPEN || offset != zs->wp[z] ||
        (bytes & (sector_size - 1)) ||
        end - zone_start(zs, z) >= zs->zone_capacity || end >= zs->size) {
        return false;
    }
    zs->wp[z] = end;
    zs->inflight[z]++;
    return true;
}

/*
 * A write accepted in zone @z is over (a failed one has given its range
 * back already).  zs is a parameter, not reloaded from s: with
 * -fno-strict-aliasing every store here would force a reload.
 */
static inline void zone_write_done(Qcow2ZonedState *zs, uint32_t z)
{
    if (--zs->inflight[z] == 0) {
        uint64_t wp = zs->wp[z];

        /* zone_settle() without testing inflight again */
        if (zs->done_wp[z] != wp) {
            zs->done_wp[z] = wp;
            zone_mark_dirty(zs, z);
        }
        if (zs->drained_waiters) {
            qemu_co_queue_restart_all(&zs->drained);
        }
    }
}

/*
 * A failed write gives its range back if no later write was accepted in
 * the zone and it did not fill the zone; otherwise the wp stays advanced
 * and the failed range reads as whatever reached the disk.
 */
static void zone_write_end(BDRVQcow2State *s, uint32_t z, uint64_t offset,
                           uint64_t bytes, int ret)
{
    Qcow2ZonedState *zs = s->zoned;

    if (ret < 0 && zs->cond[z] != BLK_ZS_FULL &&
        zs->wp[z] == offset + bytes) {
        zs->wp[z] = offset;
        /* Back at the start: EMPTY unless explicitly open. */
        if (offset == zone_start(zs, z)) {
            switch (zs->cond[z]) {
            case BLK_ZS_IOPEN:
            case BLK_ZS_CLOSED:
                zone_set_cond(zs, z, BLK_ZS_EMPTY);
                break;
            default:
                break;
            }
        }
    }
    zone_write_done(zs, z);
}

/*
 * Wait until a zone's writes drain or a reset ends.  Counted so that
 * completing writes test a field instead of calling into the queue.
 */
static void coroutine_fn zoned_wait(Qcow2ZonedState *zs)
{
    zs->drained_waiters++;
    qemu_co_queue_wait(&zs->drained, NULL);
    zs->drained_waiters--;
}

/* ---- zoned requests ----------------------------------------------------------------- */

static int coroutine_fn zoned_write(BlockDriverState *bs, int64_t *offset,
                                    int64_t bytes, QEMUIOVector *qiov,
                                    size_t qiov_offset, bool append,
                                    BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint32_t z = *offset >> zs->zone_bits;
    bool seq;
    int ret;

    /* Data written now must not be freed by a reset still under way. */
    while (z >= zs->resetting_first && z <= zs->resetting_last) {
        zoned_wait(zs);
    }
    if (z >= zs->nr_zones) {
        return -EINVAL;
    }
    seq = z >= zs->nr_conv;
    if (seq) {
        ret = zone_write_begin(zs, z, offset, bytes, append,
                               bs->bl.write_granularity);
        if (ret < 0) {
            return ret;
        }
    } else if (append) {
        return -EIO;
    } else if (*offset + bytes > zone_start(zs, zs->nr_conv)) {
        /* Random writes stay inside the conventional zones. */
        return -EINVAL;
    }
    if (qiov) {
        ret = qcow2_co_pwritev_data(bs, *offset, bytes, qiov, qiov_offset, 0);
    } else {
        ret = qcow2_co_pwrite_zeroes_data(bs, *offset, bytes, flags);
    }
    if (seq) {
        zone_write_end(s, z, *offset, bytes, ret);
    }
    return ret;
}

/*
 * A regular write crossing zone boundaries is done zone by zone, each
 * part checked on its own, as Linux splits it before a zoned device sees
 * it; like the chained bios there, it fails with the error of the last
 * part that failed.  Coroutine context, no lock held (zoned_write takes
 * what it needs); returns 0 or -errno.
 */
static int coroutine_fn zoned_write_split(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes,
                                          QEMUIOVector *qiov,
                                          size_t qiov_offset,
                                          BdrvRequestFlags flags)
{
    Qcow2ZonedState *zs = ((BDRVQcow2State *)bs->opaque)->zoned;
    uint64_t zend = ((offset >> zs->zone_bits) + 1) << zs->zone_bits;
    int ret = 0;

    if ((uint64_t)(offset + bytes) <= zend) {
        return zoned_write(bs, &offset, bytes, qiov, qiov_offset, false,
                           flags);
    }
    while (bytes > 0) {
        int64_t n = MIN((uint64_t)bytes, zend - offset);
        int64_t off = offset;
        int r = zoned_write(bs, &off, n, qiov, qiov_offset, false, flags);

        if (r < 0) {
            ret = r;
        }
        offset += n;
        qiov_offset += n;
        bytes -= n;
        zend += zs->zone_size;
    }
    return ret;
}

/*
 * A guest write to a zoned image: the common sequential write takes the
 * fast path (same rules, fewer instructions; see zone_write_begin_fast),
 * anything else zoned_write_split().  Out of line so that the non-zoned
 * write path in qcow2_co_pwritev_part stays a plain tail call.
 */
static int coroutine_fn __attribute__((noinline))
zoned_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
              QEMUIOVector *qiov, size_t qiov_offset)
{
    Qcow2ZonedState *zs = ((BDRVQcow2State *)bs->opaque)->zoned;
    uint32_t z = offset >> zs->zone_bits;
    int ret;

    if (!zone_write_begin_fast(zs, z, offset, bytes,
                               bs->bl.write_granularity)) {
        return zoned_write_split(bs, offset, bytes, qiov, qiov_offset, 0);
    }
    ret = qcow2_co_pwritev_data(bs, offset, bytes, qiov, qiov_offset, 0);
    if (unlikely(ret < 0)) {
        zone_write_end(bs->opaque, offset >> zs->zone_bits, offset, bytes,
                       ret);
        return ret;
    }
    zone_write_done(zs, offset >> zs->zone_bits);
    return ret;
}

static int coroutine_fn qcow2_co_preadv_part(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             QEMUIOVector *qiov,
                                             size_t qiov_offset,
                                             BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (!zs) {
        return qcow2_co_preadv_data(bs, offset, bytes, qiov, qiov_offset,
                                    flags);
    }
    /* Bytes at or past a write pointer read as zeroes, stale or not. */
    while (bytes > 0) {
        uint32_t z = offset >> zs->zone_bits;
        uint64_t zend = zone_start(zs, z) + zs->zone_size;
        uint64_t n, valid;
        int ret;

        if (z < zs->nr_conv) {
            zend = zone_start(zs, zs->nr_conv);
        }
        n = MIN((uint64_t)bytes, zend - offset);
        if (z < zs->nr_conv) {
            valid = n;
        } else {
            valid = zs->wp[z] > (uint64_t)offset ?
                    MIN(n, zs->wp[z] - offset) : 0;
        }
        if (valid) {
            ret = qcow2_co_preadv_data(bs, offset, valid, qiov, qiov_offset,
                                       flags);
            if (ret < 0) {
                return ret;
            }
        }
        if (valid < n) {
            qemu_iovec_memset(qiov, qiov_offset + valid, 0, n - valid);
        }
        offset += n;
        bytes -= n;
        qiov_offset += n;
    }
    return 0;
}

static int coroutine_fn qcow2_co_pwritev_part(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              QEMUIOVector *qiov,
                                              size_t qiov_offset,
                                              BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->zoned) {
        return qcow2_co_pwritev_data(bs, offset, bytes, qiov, qiov_offset,
                                     flags);
    }
    return zoned_pwritev(bs, offset, bytes, qiov, qiov_offset);
}

static int coroutine_fn qcow2_co_pwrite_zeroes(BlockDriverState *bs,
                                               int64_t offset, int64_t bytes,
                                               BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->zoned) {
        return qcow2_co_pwrite_zeroes_data(bs, offset, bytes, flags);
    }
    return zoned_write_split(bs, offset, bytes, NULL, 0, flags);
}

static int coroutine_fn qcow2_co_pdiscard(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (zs) {
        /* Sequential zones free space by reset; discard is a hint. */
        uint64_t conv_end = zone_start(zs, zs->nr_conv);

        if ((uint64_t)offset >= conv_end) {
            return 0;
        }
        bytes = MIN((uint64_t)bytes, conv_end - offset);
    }
    return qcow2_co_pdiscard_data(bs, offset, bytes);
}

static int coroutine_fn qcow2_co_zone_append(BlockDriverState *bs,
                                             int64_t *offset,
                                             QEMUIOVector *qiov,
                                             BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (!zs) {
        return -ENOTSUP;
    }
    if (*offset & (zs->zone_size - 1) || (uint64_t)*offset >= zs->size ||
        qiov->size == 0 || qiov->size % bs->bl.write_granularity ||
        qiov->size > zs->max_append) {
        return -EINVAL;
    }
    return zoned_write(bs, offset, qiov->size, qiov, 0, true, 0);
}

static int coroutine_fn qcow2_co_zone_report(BlockDriverState *bs,
                                             int64_t offset,
                                             unsigned int *nr_zones,
                                             BlockZoneDescriptor *zones)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t z;
    unsigned int n = 0;

    if (!zs) {
        return -ENOTSUP;
    }
    z = (uint64_t)offset >> zs->zone_bits;
    /* Past the end of a short last zone is past the device: no zones. */
    if (z < zs->nr_zones &&
        (uint64_t)offset >= zone_start(zs, z) + zone_len(zs, z)) {
        z = zs->nr_zones;
    }
    for (; z < zs->nr_zones && n < *nr_zones; z++, n++) {
        BlockZoneDescriptor *d = &zones[n];

        d->start = zone_start(zs, z);
        d->length = zone_len(zs, z);
        d->cap = z < zs->nr_conv ? d->length : zone_cap(zs, z);
        d->wp = z < zs->nr_conv ? d->start + d->length : zs->wp[z];
        d->type = z < zs->nr_conv ? BLK_ZT_CONV : BLK_ZT_SWR;
        d->state = zs->cond[z];
    }
    *nr_zones = n;
    return 0;
}

/* Write the dirty region clusters (the caller made the data durable). */
static int coroutine_fn zoned_write_region(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t per = s->cluster_size / 8;
    uint64_t *buf = NULL;
    uint32_t c;
    int ret = 0;

    zs->any_dirty = false;
    buf = qemu_blockalign(bs->file->bs, s->cluster_size);
    for (c = 0; c < zs->region_clusters; c++) {
        uint64_t first = c * per, i, n, off, len;

        if (!zs->dirty[c]) {
            continue;
        }
        zs->dirty[c] = 0;
        n = MIN(per, (uint64_t)zs->nr_zones - first);
        memset(buf, 0, s->cluster_size);
        for (i = 0; i < n; i++) {
            uint64_t z = first + i;

            buf[i] = cpu_to_be64(z < zs->nr_conv ?
                                 zone_start(zs, z) | QCOW2_ZONED_CONV_WP_FLAG :
                                 zs->done_wp[z]);
        }
        /* Whole sectors: the entries, then zeroes up to the next sector. */
        off = s->zoned_ext.zonedmeta_offset + c * s->cluster_size;
        len = ROUND_UP(n * 8, BDRV_SECTOR_SIZE);
        ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ZONED_META, off,
                                            len);
        if (ret >= 0) {
            ret = bdrv_co_pwrite(bs->file, off, len, buf, 0);
        }
        if (ret < 0) {
            zs->dirty[c] = 1;
            zs->any_dirty = true;
            break;
        }
    }
    qemu_vfree(buf);
    return ret < 0 ? ret : 0;
}

/* Flush data and metadata, then write the dirty entries; mgmt_lock held. */
static int coroutine_fn zoned_persist_locked(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    int ret;

    /* Nothing is written to an image marked corrupt. */
    if (!zs || !zs->any_dirty || bs->read_only || qcow2_is_corrupt(s)) {
        return 0;
    }
    /* A persisted wp must never cover data or metadata not yet durable. */
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cache_flush(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    return ret < 0 ? ret : zoned_write_region(bs);
}

int coroutine_fn qcow2_zoned_persist(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!s->zoned) {
        return 0;
    }
    qemu_co_mutex_lock(&s->zoned->mgmt_lock);
    ret = zoned_persist_locked(bs);
    qemu_co_mutex_unlock(&s->zoned->mgmt_lock);
    return ret;
}

/* One zone management operation on sequential zone @z. */
static int zone_mgmt_one(Qcow2ZonedState *zs, BlockZoneOp op, uint32_t z)
{
    switch (op) {
    case BLK_ZO_OPEN:
        return zone_open(zs, z);
    case BLK_ZO_CLOSE:
        return zone_close(zs, z);
    case BLK_ZO_FINISH:
        return zone_finish(zs, z);
    case BLK_ZO_RESET:
        return zone_reset(zs, z);
    }
    return -EINVAL;
}

/*
 * Free the clusters wholly inside [start, end) (full discard, so the image
 * stays bounded under write/reset cycles); with @zero_partial also make
 * the rest read as zeroes, for a finish that exposes [start, end).
 */
static int coroutine_fn zone_drop_data(BlockDriverState *bs, uint64_t start,
                                       uint64_t end, bool zero_partial)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t astart = ROUND_UP(start, s->cluster_size);
    uint64_t aend = end == s->size ? ROUND_UP(end, s->cluster_size)
                                   : start_of_cluster(s, end);
    int ret = 0;

    if (zero_partial) {
        return start < end ?
               qcow2_co_pwrite_zeroes_data(bs, start, end - start,
                                           BDRV_REQ_MAY_UNMAP) : 0;
    }
    if (astart < aend) {
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_cluster_discard(bs, astart, aend - astart, true);
        qemu_co_mutex_unlock(&s->lock);
    }
    return ret;
}

/*
 * Open/close/finish/reset every zone of [offset, offset + len), any
 * alignment on entry (checked here: -EINVAL).  Coroutine context; takes
 * mgmt_lock.  Every zone is tried; returns 0, the error of the last zone
 * that failed, or an I/O error of persisting the write pointers.
 */
static int coroutine_fn qcow2_co_zone_mgmt(BlockDriverState *bs,
                                           BlockZoneOp op, int64_t offset,
                                           int64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    uint64_t end = offset + len;
    uint32_t first, last, z;
    int zone_err = 0;
    int ret = 0;

    if (!zs) {
        return -ENOTSUP;
    }
    if (offset < 0 || len <= 0 || (offset & (zs->zone_size - 1)) ||
        end > zs->size || ((len & (zs->zone_size - 1)) && end != zs->size)) {
        return -EINVAL;
    }
    first = offset >> zs->zone_bits;
    last = (end - 1) >> zs->zone_bits;
    if (first < zs->nr_conv) {
        /*
         * Reset of the whole device skips conventional zones (null_blk's
         * reset all); any other range fails on them but, as Linux issues
         * one request per zone, still acts on its sequential zones.
         */
        if (op != BLK_ZO_RESET || offset != 0 || end != zs->size) {
            zone_err = -EIO;
        }
        if (last < zs->nr_conv) {
            return zone_err;
        }
        first = zs->nr_conv;
    }

    qemu_co_mutex_lock(&zs->mgmt_lock);
    if (op == BLK_ZO_RESET) {
        zs->resetting_first = first;
        zs->resetting_last = last;
    }
    for (z = first; z <= last; z++) {
        uint64_t old_wp = zs->wp[z];
        int r = zone_mgmt_one(zs, op, z);

        /* Every zone is tried; the error of the last failing one wins. */
        if (r < 0) {
            zone_err = r;
            continue;
        }
        if (zs->wp[z] == old_wp) {
            continue;
        }
        /* In-flight writes settle the persisted wp when they end. */
        zone_settle(zs, z);
        if (op == BLK_ZO_FINISH) {
            /* Stale clusters past the old wp must not become visible. */
            ret = zone_drop_data(bs, old_wp, zs->wp[z], true);
        }
        if (ret < 0) {
            break;
        }
    }
    /* Management operations are durable when they complete. */
    if (ret >= 0) {
        ret = zoned_persist_locked(bs);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret >= 0 && op == BLK_ZO_RESET) {
        /* Only after the reset wp is durable: data stays until then. */
        for (z = first; z <= last && ret >= 0; z++) {
            /* Writes accepted before the reset must land before it. */
            while (zs->inflight[z]) {
                zoned_wait(zs);
            }
            if (zs->cond[z] != BLK_ZS_EMPTY) {
                continue;   /* its reset failed (read-only, offline) */
            }
            ret = zone_drop_data(bs, zone_start(zs, z),
                                 zone_start(zs, z) + zone_len(zs, z), false);
        }
    }
    zs->resetting_first = UINT32_MAX;
    zs->resetting_last = 0;
    qemu_co_queue_restart_all(&zs->drained);
    qemu_co_mutex_unlock(&zs->mgmt_lock);
    return ret < 0 ? ret : zone_err;
}

/*
 * Conditions are derived: conventional zones NOT_WP, sequential ones EMPTY
 * at start, FULL at capacity, else CLOSED.
 */
int coroutine_fn qcow2_zoned_open(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZonedHeaderExt *ext = &s->zoned_ext;
    Qcow2ZonedState *zs;
    uint64_t region;
    uint32_t z;
    int ol, saved_ol, ret;

    if (!s->has_zoned_ext) {
        return 0;
    }
    /* Whatever overlap-check says: a bad region is refused at open. */
    saved_ol = s->overlap_check;
    s->overlap_check = QCOW2_OL_CACHED;
    ol = qcow2_check_metadata_overlap(bs, QCOW2_OL_ZONED_META,
                                      ext->zonedmeta_offset,
                                      ext->zonedmeta_size);
    s->overlap_check = saved_ol;
    if (ol) {
        error_setg(errp, "Invalid zoned extension: zonedmeta_offset 0x%"
                   PRIx64 ": the write-pointer region overlaps other "
                   "metadata", ext->zonedmeta_offset);
        return -EINVAL;
    }
    zs = g_new0(Qcow2ZonedState, 1);
    zs->size = s->size;
    zs->zone_size = ext->zone_size;
    zs->zone_capacity = ext->zone_capacity;
    zs->zone_bits = ctz64(ext->zone_size);
    zs->nr_zones = ext->nr_zones;
    zs->nr_conv = ext->conventional_zones;
    zs->max_open = ext->max_open_zones;
    zs->max_active = ext->max_active_zones;
    zs->max_append = ext->max_append_bytes;
    qemu_co_mutex_init(&zs->mgmt_lock);
    qemu_co_queue_init(&zs->drained);
    zs->resetting_first = UINT32_MAX;
    region = ROUND_UP(ext->zonedmeta_size, BDRV_SECTOR_SIZE);
    zs->region_clusters = DIV_ROUND_UP(ext->zonedmeta_size, s->cluster_size);
    zs->dirty_shift = s->cluster_bits - 3;    /* 8-byte entries */
    zs->wp = g_try_malloc(region);
    zs->done_wp = g_try_new(uint64_t, zs->nr_zones);
    zs->inflight = g_try_new0(uint32_t, zs->nr_zones);
    /* Every zone starts NOT_WP (0); sequential ones move on below. */
    zs->cond = g_try_malloc0(zs->nr_zones);
    zs->nr_cond[BLK_ZS_NOT_WP] = zs->nr_zones;
    zs->dirty = g_try_malloc0(zs->region_clusters);
    s->zoned = zs;
    if (!zs->wp || !zs->done_wp || !zs->inflight || !zs->cond ||
        !zs->dirty) {
        error_setg(errp, "Could not allocate the zone state");
        return -ENOMEM;
    }
    /* One read of the whole region, one pass over it. */
    ret = bdrv_co_pread(bs->file, ext->zonedmeta_offset,
                        MIN(region, (uint64_t)s->file_size -
                            ext->zonedmeta_offset), zs->wp, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read the write pointers");
        return ret;
    }
    for (z = 0; z < zs->nr_zones; z++) {
        uint64_t start = zone_start(zs, z), wp = be64_to_cpu(zs->wp[z]);
        uint64_t cap_end = start + zone_cap(zs, z);
        uint64_t len_end = start + zone_len(zs, z);

        if (z < zs->nr_conv) {
            /* The header is authoritative; check reports mismatches. */
            zs->wp[z] = zs->done_wp[z] = len_end;
            continue;
        }
        if (wp < start || (wp > cap_end && wp != len_end)) {
            if (!(bs->open_flags & BDRV_O_CHECK)) {
                error_setg(errp, "Invalid zoned metadata: write pointer 0x%"
                           PRIx64 " of zone %u lies outside the zone "
                           "[0x%" PRIx64 ", 0x%" PRIx64 "]", wp, z, start,
                           len_end);
                return -EINVAL;
            }
            /*
             * Opened for check: keep going with the zone finished in
             * memory; only a repair writes it back.
             */
            wp = len_end;
        }
        zs->wp[z] = zs->done_wp[z] = wp;
        zone_set_cond(zs, z, wp == start ? BLK_ZS_EMPTY :
                             wp >= cap_end ? BLK_ZS_FULL : BLK_ZS_CLOSED);
    }
    qcow2_meta_filter_add(s, ext->zonedmeta_offset, ext->zonedmeta_size);
    return 0;
}

void qcow2_zoned_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    if (zs) {
        g_free(zs->wp);
        g_free(zs->done_wp);
        g_free(zs->inflight);
        g_free(zs->cond);
        g_free(zs->dirty);
        g_free(zs);
        s->zoned = NULL;
    }
}

int coroutine_fn qcow2_zoned_check(BlockDriverState *bs,
                                   BdrvCheckResult *res, BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;
    bool repair = (fix & BDRV_FIX_ERRORS) && !bs->read_only;
    const char *what = repair ? "Repairing" : "ERROR";
    uint64_t *raw;
    uint32_t z, bad = 0;
    int ret;

    if (!zs) {
        return 0;
    }
    /* Compare the region on disk with what open made of it. */
    raw = g_try_malloc(ROUND_UP(s->zoned_ext.zonedmeta_size,
                                BDRV_SECTOR_SIZE));
    if (!raw) {
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, s->zoned_ext.zonedmeta_offset,
                        s->zoned_ext.zonedmeta_size, raw, 0);
    if (ret < 0) {
        g_free(raw);
        res->check_errors++;
        return ret;
    }
    for (z = 0; z < zs->nr_zones; z++) {
        uint64_t e = be64_to_cpu(raw[z]), start = zone_start(zs, z);

        if (z < zs->nr_conv) {
            if (e != (start | QCOW2_ZONED_CONV_WP_FLAG)) {
                qcow2_check_msg(s, "%s zone %u: conventional entry 0x%" PRIx64
                        " -> 0x%" PRIx64 "\n", what, z, e,
                        start | QCOW2_ZONED_CONV_WP_FLAG);
                bad++;
            }
        } else if (e != zs->done_wp[z]) {
            /* Open replaced a write pointer outside its zone. */
            qcow2_check_msg(s, "%s zone %u: write pointer 0x%" PRIx64 " outside "
                    "[0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64 "\n",
                    what, z, e, start, start + zone_len(zs, z),
                    zs->done_wp[z]);
            bad++;
        }
    }
    g_free(raw);
    if (!bad) {
        return 0;
    }
    if (!repair) {
        res->corruptions += bad;
        return 0;
    }
    /* Rewrite the whole region from the repaired in-memory state. */
    memset(zs->dirty, 1, zs->region_clusters);
    zs->any_dirty = true;
    ret = bdrv_co_flush(bs->file->bs);
    if (ret >= 0) {
        ret = zoned_write_region(bs);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        res->check_errors++;
        res->corruptions += bad;
        return ret;
    }
    res->corruptions_fixed += bad;
    return 0;
}

static void qcow2_zoned_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedState *zs = s->zoned;

    qcow2_refresh_limits(bs, errp);
    if (!zs) {
        return;
    }
    bs->bl.zoned = BLK_Z_HM;
    bs->bl.zone_size = zs->zone_size;
    bs->bl.zone_capacity = zs->zone_capacity;
    bs->bl.nr_zones = zs->nr_zones;
    bs->bl.nr_conv_zones = zs->nr_conv;
    bs->bl.max_open_zones = zs->max_open;
    bs->bl.max_active_zones = zs->max_active;
    bs->bl.max_append_sectors = zs->max_append / BDRV_SECTOR_SIZE;
    /* The logical sector: zoned writes and appends come in whole ones. */
    bs->bl.write_granularity = BDRV_SECTOR_SIZE;
}

/* ---- requests zones change, wrapping the data path ------------------------------ */

static int coroutine_fn qcow2_co_flush_to_os(BlockDriverState *bs)
{
    int ret = qcow2_co_flush_caches(bs);

    /* The generic layer flushes bs->file after us. */
    return ret < 0 ? ret : qcow2_zoned_persist(bs);
}

static int coroutine_fn qcow2_co_block_status(BlockDriverState *bs,
                                              bool want_zero, int64_t offset,
                                              int64_t bytes, int64_t *pnum,
                                              int64_t *map,
                                              BlockDriverState **file)
{
    Qcow2ZonedState *zs = ((BDRVQcow2State *)bs->opaque)->zoned;

    if (zs && offset >> zs->zone_bits >= zs->nr_conv) {
        /* At and past the write pointer: zeroes, whatever is stored. */
        uint32_t z = offset >> zs->zone_bits;

        if ((uint64_t)offset >= zs->wp[z]) {
            *pnum = MIN((uint64_t)bytes,
                        zone_start(zs, z) + zone_len(zs, z) - offset);
            return BDRV_BLOCK_ZERO;
        }
        bytes = MIN((uint64_t)bytes, zs->wp[z] - offset);
    }
    return qcow2_co_block_status_data(bs, want_zero, offset, bytes, pnum,
                                      map, file);
}

static int coroutine_fn
qcow2_co_pwritev_compressed_part(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 size_t qiov_offset)
{
    BDRVQcow2State *s = bs->opaque;

    /* Compressed data cannot follow a write pointer. */
    if (s->zoned && !qcow2_is_corrupt(s)) {
        return -ENOTSUP;
    }
    return qcow2_co_pwritev_compressed_data(bs, offset, bytes, qiov,
                                            qiov_offset);
}

static int coroutine_fn qcow2_co_make_empty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    /* Zones are emptied by reset, which keeps the write pointers right. */
    if (s->zoned && !qcow2_is_corrupt(s) && !bdrv_is_read_only(bs)) {
        return -ENOTSUP;
    }
    return qcow2_co_make_empty_data(bs);
}

BlockDriver bdrv_qcow2 = {
    .format_name                = "qcow2",
    .instance_size              = sizeof(BDRVQcow2State),
    .is_format                  = true,
    .supports_backing           = true,
    .bdrv_probe                 = qcow2_probe,
    .bdrv_co_open               = qcow2_co_open,
    .bdrv_co_activate           = qcow2_co_activate,
    .bdrv_co_close              = qcow2_co_close,
    .bdrv_refresh_limits        = qcow2_zoned_refresh_limits,
    .bdrv_co_preadv_part        = qcow2_co_preadv_part,
    .bdrv_co_pwritev_part       = qcow2_co_pwritev_part,
    .bdrv_co_pwritev_compressed_part = qcow2_co_pwritev_compressed_part,
    .bdrv_co_pwrite_zeroes      = qcow2_co_pwrite_zeroes,
    .bdrv_co_pdiscard           = qcow2_co_pdiscard,
    .bdrv_co_make_empty         = qcow2_co_make_empty,
    .bdrv_co_flush_to_os        = qcow2_co_flush_to_os,
    .bdrv_co_block_status       = qcow2_co_block_status,
    .bdrv_co_getlength          = qcow2_co_getlength,
    .bdrv_co_truncate           = qcow2_co_truncate,
    .bdrv_co_create_opts        = qcow2_co_create_opts,
    .create_opts                = &qcow2_create_opts,
    .bdrv_create_opts_defaults  = qcow2_zoned_create_opts_defaults,
    .bdrv_co_amend              = qcow2_co_amend,
    .amend_opts                 = &qcow2_amend_opts,
    .bdrv_measure               = qcow2_measure,
    .bdrv_get_info              = qcow2_get_info,
    .bdrv_get_specific_info     = qcow2_get_specific_info,
    .bdrv_query_snapshots       = qcow2_query_snapshots,
    .bdrv_co_snapshot_create    = qcow2_snapshot_create,
    .bdrv_co_snapshot_goto      = qcow2_snapshot_goto,
    .bdrv_co_snapshot_delete    = qcow2_snapshot_delete,
    .bdrv_snapshot_list         = qcow2_snapshot_list,
    .bdrv_co_check              = qcow2_co_check,
    .bdrv_co_change_backing_file = qcow2_co_change_backing_file,
    .bdrv_co_zone_report        = qcow2_co_zone_report,
    .bdrv_co_zone_mgmt          = qcow2_co_zone_mgmt,
    .bdrv_co_zone_append        = qcow2_co_zone_append,
};
