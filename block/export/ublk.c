/*
 * ublk export: serve a node as the Linux block device /dev/ublkbN.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The kernel's ublk driver (Linux >= 6.6 for zoned devices) turns every
 * block request on /dev/ublkbN into the completion of an io_uring
 * command we armed on /dev/ublkcN; we serve it and answer with a command
 * that also re-arms the tag (ABI notes in ublk-abi.h).
 *
 * Threads: everything runs in the node's home loop (the main loop of
 * qemu-storage-daemon).  One io_uring carries the I/O commands of every
 * queue; its fd is a handler of that loop, so all commands of all queues
 * come from one task, as the driver requires per queue.  Each request
 * runs as a coroutine there.  Data moves with pread/pwrite on /dev/ublkcN
 * (UBLK_F_USER_COPY, which zoned ublk requires anyway): these are memory
 * copies inside the kernel and never wait for I/O.
 *
 * Control commands go through a second ring on /dev/ublk-control.  The
 * driver runs them in io_uring worker threads, so START_DEV and STOP_DEV
 * are submitted and their completions awaited while the loop keeps
 * serving requests: starting the disk reads the partition table and
 * reports the zones through us, stopping it waits for the requests in
 * flight.
 *
 * Life cycle: create() arms every tag, submits START_DEV and runs the
 * loop until it completes, so the device node exists when create()
 * returns.  request_shutdown() submits STOP_DEV; the driver then fails
 * the armed commands with -ENODEV.  The export keeps a reference of its
 * own until STOP_DEV completed and no request is being served; delete()
 * then closes the rings and /dev/ublkcN and removes the device with
 * DEL_DEV.  If the process dies instead (SIGKILL), closing its rings
 * makes the driver remove the disk by itself; the device number stays
 * taken until DEL_DEV, which the next start does when given that number
 * again with dev-id (see ublk_reclaim_stale()).
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/iov.h"
#include "block/aio.h"
#include "block/block-backend.h"
#include "block/export.h"
#include "ublk-abi.h"

#include <liburing.h>
#include <linux/blkzoned.h>
#include <sys/mman.h>

#define UBLK_CTRL_PATH      "/dev/ublk-control"
/* Largest request: 1 MiB keeps 1M sequential writes in one request. */
#define UBLK_MAX_IO_BYTES   (1u << 20)
/*
 * Bounce buffers are recycled by size class (4 KiB .. 1 MiB, powers of
 * two), up to this many bytes kept: allocating per request cost a
 * memalign for small requests and, for 1 MiB ones, a fresh mmap whose
 * 256 pages fault in again on every request.
 */
#define UBLK_POOL_MIN_SHIFT 12
#define UBLK_POOL_CLASSES   9
#define UBLK_POOL_MAX_BYTES (16u << 20)
/* Zones fetched from the node per blk_co_zone_report() call. */
#define UBLK_REPORT_BATCH   512u
/* user_data of the control commands awaited asynchronously. */
#define UBLK_CTRL_TAG_START 1
#define UBLK_CTRL_TAG_STOP  2
#define UBLK_CTRL_TAG_SYNC  3
/* How long delete() waits for DEL_DEV (a holder may keep the disk). */
#define UBLK_DEL_TIMEOUT_S  10

typedef struct UblkExport UblkExport;

typedef struct UblkTag {
    UblkExport *ue;
    uint16_t q_id;
    uint16_t tag;
    bool armed;                 /* a command of this tag is in the kernel */
    int32_t result;             /* of the request being served */
    uint64_t append_sector;     /* zone append: where the data went */
    struct UblkTag *next;       /* waiting list while drained */
} UblkTag;

struct UblkExport {
    BlockExport *exp;
    AioContext *ctx;

    int ctrl_fd;
    struct io_uring ctrl_ring;
    bool ctrl_ring_ok;
    int cdev_fd;
    struct io_uring ring;       /* I/O commands of every queue */
    bool ring_ok;
    QEMUBH *submit_bh;

    uint32_t dev_id;
    bool dev_added;
    unsigned int nr_queues;
    unsigned int depth;
    uint32_t lbs;
    int64_t size;               /* bytes exported */
    int64_t node_size;          /* bytes of the node (>= size) */
    bool zoned;
    BlockZoneGeometry geo;

    const struct ublkx_io_desc **iods;   /* per queue, mapped */
    size_t iod_len;
    UblkTag *tags;              /* nr_queues * depth */

    /* Free bounce buffers per size class, linked through their first word. */
    void *pool[UBLK_POOL_CLASSES];
    size_t pool_bytes;

    unsigned int armed;         /* commands in the kernel */
    unsigned int serving;       /* requests taken, not yet committed */
    UblkTag *waiting_head;      /* taken while drained, not started */
    UblkTag *waiting_tail;
    unsigned int drained;       /* nesting of drained sections */
    bool reaping;

    bool start_done;
    int start_ret;
    bool stop_sent;
    bool stop_done;
    bool self_ref;              /* reference held until stopped */
    bool warned_cmd_error;
};

static inline UblkExport *ublk_of(BlockExport *exp)
{
    return exp->opaque;
}

/* ---- control commands ----------------------------------------------- */

static void ublk_ctrl_prep(UblkExport *ue, struct io_uring_sqe *sqe,
                           uint32_t op, const struct ublkx_ctrl_cmd *cmd,
                           uint64_t user_data)
{
    /* SQE128: the command area after the 48-byte header holds 80 bytes. */
    memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = ue->ctrl_fd;
    sqe->cmd_op = op;
    sqe->user_data = user_data;
    memcpy(sqe->cmd, cmd, sizeof(*cmd));
}

static void ublk_ctrl_cmd_init(UblkExport *ue, struct ublkx_ctrl_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->dev_id = ue->dev_id;
    cmd->queue_id = UINT16_MAX;
}

/*
 * Run a control command to completion.  Only while no asynchronous one
 * (START/STOP) is outstanding, which could otherwise take its CQE.
 * @timeout_s 0 waits forever.  Returns the command's result (-errno).
 */
static int ublk_ctrl_sync(UblkExport *ue, uint32_t op,
                          const struct ublkx_ctrl_cmd *cmd,
                          unsigned int timeout_s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ue->ctrl_ring);
    struct io_uring_cqe *cqe;
    int ret;

    if (!sqe) {
        return -EBUSY;
    }
    ublk_ctrl_prep(ue, sqe, op, cmd, UBLK_CTRL_TAG_SYNC);
    do {
        ret = io_uring_submit(&ue->ctrl_ring);
    } while (ret == -EINTR);
    if (ret < 0) {
        return ret;
    }
    for (;;) {
        if (timeout_s) {
            struct __kernel_timespec ts = { .tv_sec = timeout_s };

            ret = io_uring_wait_cqe_timeout(&ue->ctrl_ring, &cqe, &ts);
        } else {
            ret = io_uring_wait_cqe(&ue->ctrl_ring, &cqe);
        }
        if (ret == -EINTR) {
            continue;
        }
        if (ret < 0) {
            return ret;
        }
        break;
    }
    ret = cqe->res;
    io_uring_cqe_seen(&ue->ctrl_ring, cqe);
    return ret;
}

static int ublk_ctrl_async(UblkExport *ue, uint32_t op,
                           const struct ublkx_ctrl_cmd *cmd, uint64_t tag)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ue->ctrl_ring);
    int ret;

    if (!sqe) {
        return -EBUSY;
    }
    ublk_ctrl_prep(ue, sqe, op, cmd, tag);
    do {
        ret = io_uring_submit(&ue->ctrl_ring);
    } while (ret == -EINTR);
    return ret < 0 ? ret : 0;
}

static void ublk_maybe_release(UblkExport *ue);

/* Completions of START_DEV / STOP_DEV, in the home loop. */
static void ublk_ctrl_read(void *opaque)
{
    UblkExport *ue = opaque;
    struct io_uring_cqe *cqe;
    bool stopped = false;

    while (io_uring_peek_cqe(&ue->ctrl_ring, &cqe) == 0 && cqe) {
        uint64_t tag = cqe->user_data;
        int res = cqe->res;

        io_uring_cqe_seen(&ue->ctrl_ring, cqe);
        if (tag == UBLK_CTRL_TAG_START) {
            ue->start_ret = res;
            ue->start_done = true;
        } else if (tag == UBLK_CTRL_TAG_STOP) {
            if (res < 0) {
                error_report("ublk: %s: stopping /dev/ublkb%u failed: %s",
                             ue->exp->id, ue->dev_id, strerror(-res));
            }
            ue->stop_done = true;
            stopped = true;
        }
    }
    /*
     * Last: the release may delete the export, which exits this ring and
     * frees ue (the loop above once read the unmapped ring after it).
     */
    if (stopped) {
        ublk_maybe_release(ue);
    }
}

/* ---- I/O commands --------------------------------------------------- */

static void ublk_submit(UblkExport *ue)
{
    int ret;

    while (io_uring_sq_ready(&ue->ring) > 0) {
        ret = io_uring_submit(&ue->ring);
        if (ret == -EINTR) {
            continue;
        }
        if (ret < 0) {
            /*
             * -EAGAIN/-EBUSY: short of resources; completions make room,
             * and the reaping path submits again.  Anything else cannot
             * be fixed here: say so once.
             */
            if (ret != -EAGAIN && ret != -EBUSY && !ue->warned_cmd_error) {
                ue->warned_cmd_error = true;
                error_report("ublk: %s: io_uring_submit: %s", ue->exp->id,
                             strerror(-ret));
            }
            qemu_bh_schedule(ue->submit_bh);
        }
        break;
    }
}

static void ublk_submit_bh(void *opaque)
{
    ublk_submit(opaque);
}

/* Queue FETCH (commit false) or COMMIT_AND_FETCH of @t. */
static void ublk_queue_cmd(UblkExport *ue, UblkTag *t, bool commit)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ue->ring);
    struct ublkx_io_cmd cmd = {
        .q_id = t->q_id,
        .tag = t->tag,
    };

    /* The SQ has a slot per tag, and a tag has one command at most. */
    assert(sqe);
    if (commit) {
        cmd.result = t->result;
        cmd.addr = t->append_sector;
    }
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = ue->cdev_fd;
    sqe->cmd_op = commit ? UBLKX_IO_COMMIT_AND_FETCH_REQ : UBLKX_IO_FETCH_REQ;
    memcpy(sqe->cmd, &cmd, sizeof(cmd));
    io_uring_sqe_set_data(sqe, t);
    t->armed = true;
    ue->armed++;
}

static const struct ublkx_io_desc *ublk_iod(UblkExport *ue, UblkTag *t)
{
    return &ue->iods[t->q_id][t->tag];
}

static inline int64_t ublk_user_copy_pos(UblkTag *t)
{
    return (int64_t)ublkx_user_copy_pos(t->q_id, t->tag);
}

/* Copy the request's data (write, append) from the kernel. */
static int ublk_copy_in(UblkExport *ue, UblkTag *t, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = pread(ue->cdev_fd, buf, len, ublk_user_copy_pos(t));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    return (size_t)n == len ? 0 : -EIO;
}

/* Copy read or report data to the kernel, from byte @off of the request. */
static int ublk_copy_out(UblkExport *ue, UblkTag *t, const void *buf,
                         size_t len, size_t off)
{
    ssize_t n;

    do {
        n = pwrite(ue->cdev_fd, buf, len, ublk_user_copy_pos(t) + off);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    return (size_t)n == len ? 0 : -EIO;
}

static unsigned int ublk_pool_class(size_t bytes)
{
    unsigned int c = 0;

    while (((size_t)1 << (UBLK_POOL_MIN_SHIFT + c)) < bytes) {
        c++;
    }
    return c;
}

/*
 * A page-aligned buffer of at least @bytes (<= UBLK_MAX_IO_BYTES), or
 * NULL.  The pool belongs to the export's home loop: no lock.
 */
static void *ublk_buf_get(UblkExport *ue, size_t bytes)
{
    unsigned int c = ublk_pool_class(bytes);
    void *buf = ue->pool[c];

    assert(c < UBLK_POOL_CLASSES);
    if (buf) {
        ue->pool[c] = *(void **)buf;
        ue->pool_bytes -= (size_t)1 << (UBLK_POOL_MIN_SHIFT + c);
        return buf;
    }
    return qemu_try_memalign(qemu_real_host_page_size(),
                             (size_t)1 << (UBLK_POOL_MIN_SHIFT + c));
}

static void ublk_buf_put(UblkExport *ue, void *buf, size_t bytes)
{
    unsigned int c = ublk_pool_class(bytes);
    size_t len = (size_t)1 << (UBLK_POOL_MIN_SHIFT + c);

    if (!buf) {
        return;
    }
    if (ue->pool_bytes + len > UBLK_POOL_MAX_BYTES) {
        qemu_vfree(buf);
        return;
    }
    *(void **)buf = ue->pool[c];
    ue->pool[c] = buf;
    ue->pool_bytes += len;
}

static void ublk_pool_free(UblkExport *ue)
{
    unsigned int c;

    for (c = 0; c < UBLK_POOL_CLASSES; c++) {
        while (ue->pool[c]) {
            void *buf = ue->pool[c];

            ue->pool[c] = *(void **)buf;
            qemu_vfree(buf);
        }
    }
    ue->pool_bytes = 0;
}

static int64_t ublk_zone_len_at(UblkExport *ue, int64_t offset)
{
    return MIN((int64_t)ue->geo.zone_size, ue->size - offset);
}

static void ublk_fill_blk_zone(struct blk_zone *bz,
                               const BlockZoneDescriptor *z)
{
    memset(bz, 0, sizeof(*bz));
    bz->start = z->start >> BDRV_SECTOR_BITS;
    bz->len = z->length >> BDRV_SECTOR_BITS;
    bz->wp = z->wp >> BDRV_SECTOR_BITS;
    bz->capacity = z->cap >> BDRV_SECTOR_BITS;
    bz->type = z->type;
    bz->cond = z->state;
}

/*
 * Zone report: up to @nr zones from @offset, in batches so that a report
 * of the whole device costs time linear in its zone count.
 */
static int coroutine_fn ublk_co_report(UblkExport *ue, UblkTag *t,
                                       int64_t offset, uint32_t nr)
{
    BlockZoneDescriptor *zones = NULL;
    struct blk_zone *out = NULL;
    uint32_t done = 0;
    int ret = 0;

    zones = g_try_new(BlockZoneDescriptor, UBLK_REPORT_BATCH);
    out = g_try_new(struct blk_zone, UBLK_REPORT_BATCH);
    if (!zones || !out) {
        ret = -ENOMEM;
        goto out;
    }
    while (done < nr && offset < ue->size) {
        unsigned int n = MIN(nr - done, UBLK_REPORT_BATCH);
        unsigned int i;

        ret = blk_co_zone_report(ue->exp->blk, offset, &n, zones);
        if (ret < 0) {
            goto out;
        }
        /* A short last zone left out of the disk is not reported. */
        while (n > 0 && zones[n - 1].start >= (uint64_t)ue->size) {
            n--;
        }
        if (n == 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            ublk_fill_blk_zone(&out[i], &zones[i]);
        }
        ret = ublk_copy_out(ue, t, out, n * sizeof(struct blk_zone),
                            (size_t)done * sizeof(struct blk_zone));
        if (ret < 0) {
            goto out;
        }
        done += n;
        offset = zones[n - 1].start + zones[n - 1].length;
    }
    if (done < nr) {
        /* A zero entry ends a short report. */
        memset(out, 0, sizeof(struct blk_zone));
        ret = ublk_copy_out(ue, t, out, sizeof(struct blk_zone),
                            (size_t)done * sizeof(struct blk_zone));
        if (ret < 0) {
            goto out;
        }
    }
    /*
     * The driver completes a report like a read, with the byte count
     * as the result, and clamps it to the request's length; the request
     * may be longer than @nr entries, so claim the largest request.
     */
    ret = UBLK_MAX_IO_BYTES;
out:
    g_free(zones);
    g_free(out);
    return ret;
}

static int coroutine_fn ublk_co_handle(UblkExport *ue, UblkTag *t)
{
    const struct ublkx_io_desc *iod = ublk_iod(ue, t);
    /* The descriptor is ours until the commit; read it once anyway. */
    uint32_t op_flags = __atomic_load_n(&iod->op_flags, __ATOMIC_RELAXED);
    uint32_t nr_sectors = iod->nr_sectors;
    uint64_t sector = iod->start_sector;
    uint8_t op = op_flags & 0xff;
    int64_t offset, bytes;
    BdrvRequestFlags flags = 0;
    QEMUIOVector qiov;
    void *buf = NULL;
    int ret;

    /*
     * Requests with a range lie inside the device (the kernel checks
     * too; the arithmetic below relies on it).  A flush carries no range
     * (its sector is all ones), a report a zone count instead of sectors.
     */
    offset = 0;
    bytes = 0;
    if (op != UBLKX_IO_OP_FLUSH && op != UBLKX_IO_OP_ZONE_RESET_ALL) {
        if (sector >= (uint64_t)(ue->size >> BDRV_SECTOR_BITS)) {
            ret = -EIO;
            goto out;
        }
        offset = (int64_t)sector << BDRV_SECTOR_BITS;
        bytes = (int64_t)nr_sectors << BDRV_SECTOR_BITS;
        if (op != UBLKX_IO_OP_REPORT_ZONES && bytes > ue->size - offset) {
            ret = -EIO;
            goto out;
        }
    }
    if (op_flags & UBLKX_IO_F_FUA) {
        flags |= BDRV_REQ_FUA;
    }

    switch (op) {
    case UBLKX_IO_OP_READ:
        if (bytes > UBLK_MAX_IO_BYTES) {
            ret = -EIO;
            goto out;
        }
        buf = ublk_buf_get(ue, bytes);
        if (!buf) {
            ret = -ENOMEM;
            goto out;
        }
        qemu_iovec_init_buf(&qiov, buf, bytes);
        ret = blk_co_preadv(ue->exp->blk, offset, bytes, &qiov, 0);
        if (ret < 0) {
            goto out;
        }
        ret = ublk_copy_out(ue, t, buf, bytes, 0);
        if (ret < 0) {
            goto out;
        }
        ret = bytes;
        break;

    case UBLKX_IO_OP_WRITE:
    case UBLKX_IO_OP_ZONE_APPEND:
        if (bytes > UBLK_MAX_IO_BYTES) {
            ret = -EIO;
            goto out;
        }
        if (!ue->exp->writable) {
            ret = -EROFS;
            goto out;
        }
        buf = ublk_buf_get(ue, bytes);
        if (!buf) {
            ret = -ENOMEM;
            goto out;
        }
        ret = ublk_copy_in(ue, t, buf, bytes);
        if (ret < 0) {
            goto out;
        }
        qemu_iovec_init_buf(&qiov, buf, bytes);
        if (op == UBLKX_IO_OP_WRITE) {
            ret = blk_co_pwritev(ue->exp->blk, offset, bytes, &qiov, flags);
        } else {
            int64_t where = offset;

            if (!ue->zoned) {
                ret = -EOPNOTSUPP;
                goto out;
            }
            ret = blk_co_zone_append(ue->exp->blk, &where, &qiov, flags);
            if (ret >= 0) {
                t->append_sector = (uint64_t)where >> BDRV_SECTOR_BITS;
            }
        }
        if (ret < 0) {
            goto out;
        }
        ret = bytes;
        break;

    case UBLKX_IO_OP_FLUSH:
        ret = blk_co_flush(ue->exp->blk);
        break;

    case UBLKX_IO_OP_DISCARD:
        if (ue->zoned) {
            ret = -EOPNOTSUPP;
            goto out;
        }
        ret = blk_co_pdiscard(ue->exp->blk, offset, bytes);
        break;

    case UBLKX_IO_OP_WRITE_ZEROES:
        if (ue->zoned) {
            ret = -EOPNOTSUPP;
            goto out;
        }
        if (!(op_flags & UBLKX_IO_F_NOUNMAP)) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        ret = blk_co_pwrite_zeroes(ue->exp->blk, offset, bytes, flags);
        break;

    case UBLKX_IO_OP_ZONE_OPEN:
    case UBLKX_IO_OP_ZONE_CLOSE:
    case UBLKX_IO_OP_ZONE_FINISH:
    case UBLKX_IO_OP_ZONE_RESET: {
        static const BlockZoneOp zop[] = {
            [UBLKX_IO_OP_ZONE_OPEN] = BLK_ZO_OPEN,
            [UBLKX_IO_OP_ZONE_CLOSE] = BLK_ZO_CLOSE,
            [UBLKX_IO_OP_ZONE_FINISH] = BLK_ZO_FINISH,
            [UBLKX_IO_OP_ZONE_RESET] = BLK_ZO_RESET,
        };

        if (!ue->zoned || offset >= ue->size ||
            (offset & (ue->geo.zone_size - 1))) {
            ret = ue->zoned ? -EINVAL : -EOPNOTSUPP;
            goto out;
        }
        /* Zone management requests carry no length: one zone. */
        ret = blk_co_zone_mgmt(ue->exp->blk, zop[op], offset,
                               ublk_zone_len_at(ue, offset));
        break;
    }

    case UBLKX_IO_OP_ZONE_RESET_ALL:
        if (!ue->zoned) {
            ret = -EOPNOTSUPP;
            goto out;
        }
        /*
         * The whole node, so that the node treats it as "reset every
         * zone" (it skips conventional zones then) even when a short
         * last zone is not exported.
         */
        ret = blk_co_zone_mgmt(ue->exp->blk, BLK_ZO_RESET, 0,
                               ue->node_size);
        break;

    case UBLKX_IO_OP_REPORT_ZONES:
        if (!ue->zoned) {
            ret = -EOPNOTSUPP;
            goto out;
        }
        ret = ublk_co_report(ue, t, offset, nr_sectors);
        break;

    default:
        ret = -EOPNOTSUPP;
        break;
    }

out:
    ublk_buf_put(ue, buf, bytes);
    /*
     * The node fails a write or append off the write pointer, and a zone
     * operation the zone's condition forbids, with -EINVAL; a zoned disk
     * (null_blk, ZBC, ZNS) reports these as I/O errors, and the kernel
     * would pass -EINVAL up as "invalid argument".
     */
    if (ret == -EINVAL && ue->zoned && op != UBLKX_IO_OP_READ &&
        op != UBLKX_IO_OP_REPORT_ZONES) {
        ret = -EIO;
    }
    /* Results are bytes or 0 on success, -errno on error. */
    return ret;
}

static void coroutine_fn ublk_co_serve(void *opaque)
{
    UblkTag *t = opaque;
    UblkExport *ue = t->ue;
    BlockExport *exp = ue->exp;

    t->append_sector = 0;
    t->result = ublk_co_handle(ue, t);
    ublk_queue_cmd(ue, t, true);
    qemu_bh_schedule(ue->submit_bh);
    ue->serving--;
    ublk_maybe_release(ue);
    blk_exp_unref(exp);
}

static void ublk_start(UblkExport *ue, UblkTag *t)
{
    Coroutine *co = qemu_coroutine_create(ublk_co_serve, t);

    qemu_coroutine_enter(co);
}

/* Handle the completions of the I/O ring: requests arriving. */
static bool ublk_reap(UblkExport *ue)
{
    struct io_uring_cqe *cqe;
    bool progress = false;

    if (ue->reaping) {
        return false;
    }
    ue->reaping = true;
    while (io_uring_peek_cqe(&ue->ring, &cqe) == 0 && cqe) {
        UblkTag *t = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&ue->ring, cqe);
        progress = true;
        assert(t->armed);
        t->armed = false;
        ue->armed--;
        if (res == UBLKX_IO_RES_OK) {
            blk_exp_ref(ue->exp);
            ue->serving++;
            if (ue->drained) {
                /* Taken from the kernel, started at drained_end. */
                t->next = NULL;
                if (ue->waiting_tail) {
                    ue->waiting_tail->next = t;
                } else {
                    ue->waiting_head = t;
                }
                ue->waiting_tail = t;
            } else {
                ublk_start(ue, t);
            }
        } else if (res != UBLKX_IO_RES_ABORT && !ue->warned_cmd_error) {
            /* The tag is lost to us; the device will be stopped. */
            ue->warned_cmd_error = true;
            error_report("ublk: %s: I/O command of queue %u tag %u failed: "
                         "%s", ue->exp->id, t->q_id, t->tag, strerror(-res));
        }
    }
    ublk_submit(ue);
    ue->reaping = false;
    ublk_maybe_release(ue);
    return progress;
}

static void ublk_ring_read(void *opaque)
{
    ublk_reap(opaque);
}

static bool ublk_ring_poll(void *opaque)
{
    UblkExport *ue = opaque;

    if (!io_uring_cq_ready(&ue->ring)) {
        return false;
    }
    return ublk_reap(ue);
}

/*
 * Drop the export's own reference once the device is stopped and no
 * request is being served; the armed commands left are cancelled when
 * delete() closes the ring.
 */
static void ublk_maybe_release(UblkExport *ue)
{
    if (ue->self_ref && ue->stop_done && ue->serving == 0 && !ue->reaping) {
        ue->self_ref = false;
        blk_exp_unref(ue->exp);
    }
}

/* ---- set-up and tear-down ------------------------------------------- */

static int ublk_parse_uint(QDict *opts, const char *key, int64_t min,
                           int64_t max, int64_t *out, Error **errp)
{
    const char *s = qdict_get_try_str(opts, key);
    int64_t v;

    if (!s) {
        return 0;
    }
    if (qemu_strtoi64(s, NULL, 10, &v) < 0 || v < min || v > max) {
        error_setg(errp, "ublk export: %s must be an integer from %" PRId64
                   " to %" PRId64 ", not '%s'", key, min, max, s);
        return -EINVAL;
    }
    *out = v;
    qdict_del(opts, key);
    return 1;
}

/*
 * A device left by a daemon that died (disk gone, device number still
 * taken): delete it so that a restart can use the same number.  Only a
 * device whose server is gone is touched.
 */
static bool ublk_reclaim_stale(UblkExport *ue)
{
    struct ublkx_dev_info info = { 0 };
    struct ublkx_ctrl_cmd cmd;
    int ret;

    ublk_ctrl_cmd_init(ue, &cmd);
    cmd.addr = (uintptr_t)&info;
    cmd.len = sizeof(info);
    ret = ublk_ctrl_sync(ue, UBLKX_CMD_GET_DEV_INFO, &cmd, 0);
    if (ret < 0 || info.state != UBLKX_S_DEV_DEAD) {
        return false;
    }
    if (info.ublksrv_pid > 0 &&
        (kill(info.ublksrv_pid, 0) == 0 || errno != ESRCH)) {
        return false;
    }
    ublk_ctrl_cmd_init(ue, &cmd);
    ret = ublk_ctrl_sync(ue, UBLKX_CMD_DEL_DEV, &cmd, UBLK_DEL_TIMEOUT_S);
    if (ret == 0) {
        warn_report("ublk: removed the stale device %u of a previous run",
                    ue->dev_id);
    }
    return ret == 0;
}

static int ublk_add_dev(UblkExport *ue, Error **errp)
{
    struct ublkx_dev_info info = { 0 };
    struct ublkx_ctrl_cmd cmd;
    uint64_t want = UBLKX_F_USER_COPY | UBLKX_F_CMD_IOCTL_ENCODE |
                    (ue->zoned ? UBLKX_F_ZONED : 0);
    bool retried = false;
    int ret;

again:
    memset(&info, 0, sizeof(info));
    info.nr_hw_queues = ue->nr_queues;
    info.queue_depth = ue->depth;
    info.max_io_buf_bytes = UBLK_MAX_IO_BYTES;
    info.dev_id = ue->dev_id;
    info.ublksrv_pid = getpid();
    info.flags = want;
    ublk_ctrl_cmd_init(ue, &cmd);
    cmd.addr = (uintptr_t)&info;
    cmd.len = sizeof(info);
    ret = ublk_ctrl_sync(ue, UBLKX_CMD_ADD_DEV, &cmd, 0);
    if (ret == -EEXIST && ue->dev_id != UINT32_MAX && !retried) {
        retried = true;
        if (ublk_reclaim_stale(ue)) {
            goto again;
        }
    }
    if (ret < 0) {
        if (ret == -EEXIST) {
            error_setg(errp, "ublk export: device %u is in use", ue->dev_id);
        } else if (ret == -EINVAL && ue->zoned) {
            error_setg(errp, "ublk export: the kernel refused the zoned "
                       "device (ADD_DEV: %s; zoned ublk needs Linux >= 6.6 "
                       "with CONFIG_BLK_DEV_ZONED)", strerror(-ret));
        } else {
            error_setg(errp, "ublk export: adding the device failed: %s",
                       strerror(-ret));
        }
        return ret;
    }
    ue->dev_added = true;
    ue->dev_id = info.dev_id;
    if ((info.flags & want) != want) {
        error_setg(errp, "ublk export: the kernel's ublk driver lacks %s",
                   (info.flags & UBLKX_F_USER_COPY) ? "zoned devices"
                                                     : "user copy");
        return -EOPNOTSUPP;
    }
    /* The driver may lower the queue count to the number of CPUs. */
    if (info.nr_hw_queues == 0 || info.nr_hw_queues > ue->nr_queues ||
        info.queue_depth != ue->depth ||
        info.max_io_buf_bytes < UBLK_MAX_IO_BYTES) {
        error_setg(errp, "ublk export: unexpected device limits from the "
                   "kernel (%u queues, depth %u, %u bytes per request)",
                   info.nr_hw_queues, info.queue_depth,
                   info.max_io_buf_bytes);
        return -EINVAL;
    }
    if (info.nr_hw_queues < ue->nr_queues) {
        warn_report("ublk: %s: the kernel allows %u queues only",
                    ue->exp->id, info.nr_hw_queues);
        ue->nr_queues = info.nr_hw_queues;
    }
    return 0;
}

static int ublk_set_params(UblkExport *ue, Error **errp)
{
    struct ublkx_params p;
    struct ublkx_ctrl_cmd cmd;
    unsigned int shift = ctz64(ue->lbs);
    int ret;

    memset(&p, 0, sizeof(p));
    p.len = sizeof(p);
    p.types = UBLKX_PARAM_TYPE_BASIC;
    p.basic.logical_bs_shift = shift;
    p.basic.physical_bs_shift = shift;
    p.basic.io_min_shift = shift;
    p.basic.io_opt_shift = shift;
    p.basic.max_sectors = UBLK_MAX_IO_BYTES >> BDRV_SECTOR_BITS;
    p.basic.dev_sectors = ue->size >> BDRV_SECTOR_BITS;
    if (ue->exp->writable) {
        p.basic.attrs = UBLKX_ATTR_VOLATILE_CACHE | UBLKX_ATTR_FUA;
    } else {
        p.basic.attrs = UBLKX_ATTR_READ_ONLY;
    }
    if (ue->zoned) {
        uint64_t append = ue->geo.max_append_bytes;

        if (!append || append > UBLK_MAX_IO_BYTES) {
            append = UBLK_MAX_IO_BYTES;
        }
        p.types |= UBLKX_PARAM_TYPE_ZONED;
        p.basic.chunk_sectors = ue->geo.zone_size >> BDRV_SECTOR_BITS;
        p.zoned.max_open_zones = ue->geo.max_open_zones;
        p.zoned.max_active_zones = ue->geo.max_active_zones;
        p.zoned.max_zone_append_sectors = append >> BDRV_SECTOR_BITS;
    } else if (ue->exp->writable) {
        p.types |= UBLKX_PARAM_TYPE_DISCARD;
        p.discard.discard_granularity = ue->lbs;
        p.discard.max_discard_sectors = UINT32_MAX >> 1 &
                                        ~((ue->lbs >> BDRV_SECTOR_BITS) - 1);
        p.discard.max_write_zeroes_sectors = p.discard.max_discard_sectors;
        p.discard.max_discard_segments = 1;
    }

    ublk_ctrl_cmd_init(ue, &cmd);
    cmd.addr = (uintptr_t)&p;
    cmd.len = sizeof(p);
    ret = ublk_ctrl_sync(ue, UBLKX_CMD_SET_PARAMS, &cmd, 0);
    if (ret < 0) {
        error_setg(errp, "ublk export: the kernel refused the device "
                   "parameters: %s", strerror(-ret));
    }
    return ret;
}

/* Open /dev/ublkcN; devtmpfs creates it with the device, udev may lag. */
static int ublk_open_cdev(UblkExport *ue, Error **errp)
{
    char path[64];
    int i;

    snprintf(path, sizeof(path), "/dev/ublkc%u", ue->dev_id);
    for (i = 0; i < 200; i++) {
        ue->cdev_fd = open(path, O_RDWR | O_CLOEXEC);
        if (ue->cdev_fd >= 0 || errno != ENOENT) {
            break;
        }
        g_usleep(10000);
    }
    if (ue->cdev_fd < 0) {
        error_setg_errno(errp, errno, "ublk export: cannot open %s", path);
        return -errno;
    }
    return 0;
}

static int ublk_map_queues(UblkExport *ue, Error **errp)
{
    size_t page = qemu_real_host_page_size();
    size_t stride = UBLKX_CMD_BUF_STRIDE(page);
    unsigned int q;

    ue->iod_len = ROUND_UP(ue->depth * sizeof(struct ublkx_io_desc), page);
    ue->iods = g_new0(const struct ublkx_io_desc *, ue->nr_queues);
    for (q = 0; q < ue->nr_queues; q++) {
        void *p = mmap(NULL, ue->iod_len, PROT_READ,
                       MAP_SHARED | MAP_POPULATE, ue->cdev_fd,
                       (off_t)q * stride);

        if (p == MAP_FAILED) {
            error_setg_errno(errp, errno, "ublk export: cannot map the "
                             "request descriptors of queue %u", q);
            return -errno;
        }
        ue->iods[q] = p;
    }
    return 0;
}

static void ublk_free(UblkExport *ue)
{
    unsigned int q;

    if (ue->ring_ok) {
        aio_set_fd_handler(ue->ctx, ue->ring.ring_fd, NULL, NULL, NULL,
                           NULL);
        io_uring_queue_exit(&ue->ring);
        ue->ring_ok = false;
    }
    if (ue->submit_bh) {
        qemu_bh_delete(ue->submit_bh);
        ue->submit_bh = NULL;
    }
    if (ue->iods) {
        for (q = 0; q < ue->nr_queues; q++) {
            if (ue->iods[q]) {
                munmap((void *)ue->iods[q], ue->iod_len);
            }
        }
        g_free(ue->iods);
        ue->iods = NULL;
    }
    if (ue->cdev_fd >= 0) {
        close(ue->cdev_fd);
        ue->cdev_fd = -1;
    }
    if (ue->dev_added) {
        struct ublkx_ctrl_cmd cmd;
        int ret;

        /*
         * DEL_DEV waits until the last user of the device let go (our
         * ring and char device are closed by now; a process that still
         * holds the disk open keeps it).  Bounded, so a holder cannot
         * stall the daemon's exit.
         */
        ublk_ctrl_cmd_init(ue, &cmd);
        ret = ublk_ctrl_sync(ue, UBLKX_CMD_DEL_DEV, &cmd, UBLK_DEL_TIMEOUT_S);
        if (ret < 0) {
            warn_report("ublk: %s: deleting device %u: %s", ue->exp->id,
                        ue->dev_id, strerror(-ret));
        }
        ue->dev_added = false;
    }
    if (ue->ctrl_ring_ok) {
        aio_set_fd_handler(ue->ctx, ue->ctrl_ring.ring_fd, NULL, NULL, NULL,
                           NULL);
        io_uring_queue_exit(&ue->ctrl_ring);
        ue->ctrl_ring_ok = false;
    }
    if (ue->ctrl_fd >= 0) {
        close(ue->ctrl_fd);
        ue->ctrl_fd = -1;
    }
    g_free(ue->tags);
    ue->tags = NULL;
    ublk_pool_free(ue);
}

static int ublk_exp_create(BlockExport *exp, QDict *opts, Error **errp)
{
    UblkExport *ue = ublk_of(exp);
    int64_t nr_queues = 1, depth = 128, lbs = 0, dev_id = -1;
    uint32_t min_lbs;
    unsigned int entries, q, i;
    struct ublkx_ctrl_cmd cmd;
    int ret;

    ue->exp = exp;
    ue->ctx = exp->ctx;
    ue->ctrl_fd = -1;
    ue->cdev_fd = -1;

    if (ublk_parse_uint(opts, "num-queues", 1, 64, &nr_queues, errp) < 0 ||
        ublk_parse_uint(opts, "queue-depth", 1, UBLKX_MAX_QUEUE_DEPTH,
                        &depth, errp) < 0 ||
        ublk_parse_uint(opts, "logical-block-size", 512, 4096, &lbs,
                        errp) < 0 ||
        ublk_parse_uint(opts, "dev-id", -1, (1 << 20) - 1, &dev_id,
                        errp) < 0) {
        return -EINVAL;
    }
    ue->nr_queues = nr_queues;
    ue->depth = depth;
    ue->dev_id = dev_id < 0 ? UINT32_MAX : (uint32_t)dev_id;

    min_lbs = blk_get_logical_block_size(exp->blk);
    if (lbs == 0) {
        lbs = MAX(min_lbs, BDRV_SECTOR_SIZE);
    }
    if (lbs != 512 && lbs != 4096) {
        error_setg(errp, "ublk export: logical-block-size must be 512 or "
                   "4096, not %" PRId64, lbs);
        return -EINVAL;
    }
    if (lbs < min_lbs) {
        error_setg(errp, "ublk export: logical-block-size %" PRId64 " is "
                   "below the node's write granularity %" PRIu32, lbs,
                   min_lbs);
        return -EINVAL;
    }
    ue->lbs = lbs;

    blk_get_zone_geometry(exp->blk, &ue->geo);
    ue->zoned = ue->geo.model == BLK_Z_HM;
    ue->size = blk_getlength(exp->blk);
    if (ue->size < 0) {
        error_setg(errp, "ublk export: cannot get the size of node '%s': %s",
                   exp->node_name, strerror(-ue->size));
        return ue->size;
    }
    ue->node_size = ue->size;
    /* A trailing partial block cannot be addressed: leave it out. */
    ue->size = ROUND_DOWN(ue->size, (int64_t)ue->lbs);
    if (ue->size == 0) {
        error_setg(errp, "ublk export: node '%s' is smaller than one block",
                   exp->node_name);
        return -EINVAL;
    }
    if (ue->zoned) {
        uint64_t zs = ue->geo.zone_size;

        if (!is_power_of_2(zs) || zs < ue->lbs ||
            (zs >> BDRV_SECTOR_BITS) > UINT32_MAX) {
            error_setg(errp, "ublk export: zone size %" PRIu64 " is not a "
                       "power of two the kernel accepts", zs);
            return -EINVAL;
        }
        if (ue->size % zs) {
            /*
             * Linux 6.12's ublk counts whole zones only
             * (ublk_get_nr_zones) and then fails the disk's zone check
             * on a short last zone: leave that zone out.
             */
            warn_report("ublk: %s: the short last zone is not exported "
                        "(the kernel's ublk driver needs whole zones)",
                        exp->id);
            ue->size = ROUND_DOWN(ue->size, (int64_t)zs);
            if (ue->size == 0) {
                error_setg(errp, "ublk export: node '%s' has no whole zone",
                           exp->node_name);
                return -EINVAL;
            }
        }
    }

    ue->ctrl_fd = open(UBLK_CTRL_PATH, O_RDWR | O_CLOEXEC);
    if (ue->ctrl_fd < 0) {
        ret = -errno;
        error_setg_errno(errp, errno, "ublk export: cannot open "
                         UBLK_CTRL_PATH " (is the ublk_drv module loaded?)");
        goto fail;
    }
    ret = io_uring_queue_init(8, &ue->ctrl_ring, IORING_SETUP_SQE128);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "ublk export: io_uring set-up failed");
        goto fail;
    }
    ue->ctrl_ring_ok = true;

    ret = ublk_add_dev(ue, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = ublk_set_params(ue, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = ublk_open_cdev(ue, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = ublk_map_queues(ue, errp);
    if (ret < 0) {
        goto fail;
    }

    entries = 1;
    while (entries < ue->nr_queues * ue->depth) {
        entries <<= 1;
    }
    ret = io_uring_queue_init(entries, &ue->ring, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "ublk export: io_uring set-up failed");
        goto fail;
    }
    ue->ring_ok = true;
    ue->submit_bh = aio_bh_new(ue->ctx, ublk_submit_bh, ue);

    ue->tags = g_new0(UblkTag, ue->nr_queues * ue->depth);
    for (q = 0; q < ue->nr_queues; q++) {
        for (i = 0; i < ue->depth; i++) {
            UblkTag *t = &ue->tags[q * ue->depth + i];

            t->ue = ue;
            t->q_id = q;
            t->tag = i;
            ublk_queue_cmd(ue, t, false);
        }
    }
    /* START_DEV waits until every tag is armed: submit them all now. */
    do {
        ret = io_uring_submit(&ue->ring);
    } while (ret == -EINTR);
    if (ret < 0 || io_uring_sq_ready(&ue->ring)) {
        error_setg_errno(errp, ret < 0 ? -ret : EAGAIN,
                         "ublk export: arming the I/O commands failed");
        ret = ret < 0 ? ret : -EAGAIN;
        goto fail;
    }
    aio_set_fd_handler(ue->ctx, ue->ring.ring_fd, ublk_ring_read, NULL,
                       ublk_ring_poll, ue);
    aio_set_fd_handler(ue->ctx, ue->ctrl_ring.ring_fd, ublk_ctrl_read, NULL,
                       NULL, ue);

    /*
     * Adding the disk reads its partition table and zones through us:
     * serve them from the loop while START_DEV runs in the kernel.
     */
    ue->self_ref = true;
    blk_exp_ref(exp);
    ublk_ctrl_cmd_init(ue, &cmd);
    cmd.data[0] = getpid();
    ret = ublk_ctrl_async(ue, UBLKX_CMD_START_DEV, &cmd, UBLK_CTRL_TAG_START);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "ublk export: starting the device "
                         "failed");
        goto fail_started;
    }
    while (!ue->start_done) {
        aio_poll(ue->ctx, true);
    }
    if (ue->start_ret < 0) {
        ret = ue->start_ret;
        error_setg(errp, "ublk export: the kernel refused to start the "
                   "device: %s", strerror(-ret));
        goto fail_started;
    }
    fprintf(stderr, "ublk: %s is /dev/ublkb%u\n", exp->id, ue->dev_id);
    return 0;

fail_started:
    /*
     * Armed commands stay in the kernel until the ring is closed;
     * requests already taken (from a half-started disk) finish first.
     */
    while (ue->serving) {
        aio_poll(ue->ctx, true);
    }
    ue->self_ref = false;
    blk_exp_unref(exp);
fail:
    ublk_free(ue);
    return ret;
}

static void ublk_exp_request_shutdown(BlockExport *exp)
{
    UblkExport *ue = ublk_of(exp);
    struct ublkx_ctrl_cmd cmd;
    int ret;

    if (ue->stop_sent) {
        return;
    }
    ue->stop_sent = true;
    ublk_ctrl_cmd_init(ue, &cmd);
    ret = ublk_ctrl_async(ue, UBLKX_CMD_STOP_DEV, &cmd, UBLK_CTRL_TAG_STOP);
    if (ret < 0) {
        /* Nothing will abort the commands: release, delete closes all. */
        error_report("ublk: %s: stopping /dev/ublkb%u failed: %s", exp->id,
                     ue->dev_id, strerror(-ret));
        ue->stop_done = true;
        ublk_maybe_release(ue);
    }
}

static void ublk_exp_delete(BlockExport *exp)
{
    UblkExport *ue = ublk_of(exp);

    assert(ue->serving == 0);
    ublk_free(ue);
}

static void ublk_exp_drained_begin(BlockExport *exp)
{
    ublk_of(exp)->drained++;
}

static void ublk_exp_drained_end(BlockExport *exp)
{
    UblkExport *ue = ublk_of(exp);

    assert(ue->drained > 0);
    if (--ue->drained) {
        return;
    }
    while (ue->waiting_head && !ue->drained) {
        UblkTag *t = ue->waiting_head;

        ue->waiting_head = t->next;
        if (!ue->waiting_head) {
            ue->waiting_tail = NULL;
        }
        ublk_start(ue, t);
    }
}

const BlockExportDriver blk_exp_ublk = {
    .type = "ublk",
    .instance_size = sizeof(UblkExport),
    .create = ublk_exp_create,
    .request_shutdown = ublk_exp_request_shutdown,
    .delete = ublk_exp_delete,
    .drained_begin = ublk_exp_drained_begin,
    .drained_end = ublk_exp_drained_end,
};
