/*
 * Generic request layer: range checks, in-flight accounting and drain,
 * alignment (read-modify-write padding with serialisation), splitting,
 * FUA emulation, write-zeroes and discard emulation, flush, block status
 * and the zoned-device entry points.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"

/* Bounce buffer size for emulated write-zeroes. */
#define ZERO_BOUNCE_MAX (1 * MiB)

struct BdrvTrackedRequest {
    BlockDriverState *bs;
    int64_t offset;             /* aligned range covered */
    int64_t bytes;
    bool serialising;
    Coroutine *co;
    CoQueue wait_queue;         /* requests waiting for this one */
    BdrvTrackedRequest *waiting_for;
    BdrvTrackedRequest *next, *prev;
};

/* ---- in-flight accounting -------------------------------------------- */

static inline void bdrv_inc_in_flight(BlockDriverState *bs)
{
    bs->in_flight++;
}

static inline void bdrv_dec_in_flight(BlockDriverState *bs)
{
    if (--bs->in_flight == 0 && unlikely(bs->drain_queue.head != NULL)) {
        qemu_co_queue_restart_all(&bs->drain_queue);
        /* Non-coroutine drainers poll; make sure their loop wakes. */
        aio_notify(bs->aio_context);
    }
}

static bool bdrv_subtree_busy(BlockDriverState *bs)
{
    if (bs->in_flight) {
        return true;
    }
    if (bs->file && bdrv_subtree_busy(bs->file->bs)) {
        return true;
    }
    return bs->backing && bdrv_subtree_busy(bs->backing->bs);
}

void coroutine_fn bdrv_co_drain(BlockDriverState *bs)
{
    while (bs->in_flight) {
        qemu_co_queue_wait(&bs->drain_queue, NULL);
    }
    if (bs->file) {
        bdrv_co_drain(bs->file->bs);
    }
    if (bs->backing) {
        bdrv_co_drain(bs->backing->bs);
    }
}

void bdrv_drain(BlockDriverState *bs)
{
    if (qemu_in_coroutine()) {
        bdrv_co_drain(bs);
        return;
    }
    AIO_WAIT_WHILE(bs->aio_context, bdrv_subtree_busy(bs));
}

/* ---- drained sections ------------------------------------------------ */

/*
 * A section on a node quiesces every parent above it: node parents by
 * the same counter (their requests end up here), other parents (the
 * BlockBackends, and through their dev ops the exports) through their
 * BdrvChildClass.  Only the 0 -> 1 and 1 -> 0 transitions of a node's
 * counter are passed up, so each edge contributes one level to the
 * parent's counter.
 */
static void bdrv_quiesce(BlockDriverState *bs)
{
    BdrvChild *c, *next;

    if (bs->quiesce_counter++ > 0) {
        return;
    }
    for (c = bs->parents; c; c = next) {
        next = c->next_parent;
        if (c->klass && c->klass->drained_begin) {
            c->klass->drained_begin(c);
        } else if (c->parent) {
            bdrv_quiesce(c->parent);
        }
    }
}

static void bdrv_unquiesce(BlockDriverState *bs)
{
    BdrvChild *c, *next;

    assert(bs->quiesce_counter > 0);
    if (--bs->quiesce_counter > 0) {
        return;
    }
    for (c = bs->parents; c; c = next) {
        next = c->next_parent;
        if (c->klass && c->klass->drained_end) {
            c->klass->drained_end(c);
        } else if (c->parent) {
            bdrv_unquiesce(c->parent);
        }
    }
}

/* Something above @bs still has a request on its way down. */
static bool bdrv_parents_busy(BlockDriverState *bs)
{
    BdrvChild *c;

    for (c = bs->parents; c; c = c->next_parent) {
        if (c->klass && c->klass->drained_poll) {
            if (c->klass->drained_poll(c)) {
                return true;
            }
        } else if (c->parent && (c->parent->in_flight ||
                                 bdrv_parents_busy(c->parent))) {
            return true;
        }
    }
    return false;
}

static bool bdrv_drained_busy(BlockDriverState *bs)
{
    return bdrv_subtree_busy(bs) || bdrv_parents_busy(bs);
}

typedef struct BdrvDrainedCo {
    BlockDriverState *bs;
    Coroutine *co;
} BdrvDrainedCo;

/*
 * A coroutine cannot wait by polling the loop it runs in without
 * risking being woken in the middle; it hands the wait to a bottom half
 * and yields until that is done.
 */
static void bdrv_drained_poll_bh(void *opaque)
{
    BdrvDrainedCo *d = opaque;

    AIO_WAIT_WHILE(d->bs->aio_context, bdrv_drained_busy(d->bs));
    aio_co_wake(d->co);
}

void bdrv_drained_begin(BlockDriverState *bs)
{
    bdrv_quiesce(bs);
    if (qemu_in_coroutine()) {
        BdrvDrainedCo d = { .bs = bs, .co = qemu_coroutine_self() };

        aio_bh_schedule_oneshot(bs->aio_context, bdrv_drained_poll_bh, &d);
        qemu_coroutine_yield();
        return;
    }
    AIO_WAIT_WHILE(bs->aio_context, bdrv_drained_busy(bs));
}

void bdrv_drained_end(BlockDriverState *bs)
{
    bdrv_unquiesce(bs);
}

/* ---- request checks ------------------------------------------------ */

static inline int bdrv_check_request(int64_t offset, int64_t bytes)
{
    if (unlikely(offset < 0 || bytes < 0 || offset > BDRV_MAX_LENGTH ||
                 bytes > BDRV_MAX_LENGTH - offset)) {
        return -EIO;
    }
    return 0;
}

/* The qiov must cover the request. */
static inline int bdrv_check_qiov(QEMUIOVector *qiov, size_t qiov_offset,
                                  int64_t bytes)
{
    if (unlikely(qiov && (qiov_offset > qiov->size ||
                          (uint64_t)bytes > qiov->size - qiov_offset))) {
        return -EINVAL;
    }
    return 0;
}

/* ---- tracked requests (writes) ---------------------------------------- */

static inline void tracked_request_begin(BdrvTrackedRequest *req,
                                         BlockDriverState *bs, int64_t offset,
                                         int64_t bytes)
{
    req->bs = bs;
    req->offset = offset;
    req->bytes = bytes;
    req->serialising = false;
    req->co = NULL;
    req->waiting_for = NULL;
    req->wait_queue.head = req->wait_queue.tail = NULL;
    req->prev = NULL;
    req->next = bs->tracked_head;
    if (req->next) {
        req->next->prev = req;
    }
    bs->tracked_head = req;
}

static inline void tracked_request_end(BdrvTrackedRequest *req)
{
    BlockDriverState *bs = req->bs;

    if (req->prev) {
        req->prev->next = req->next;
    } else {
        bs->tracked_head = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    if (req->serialising) {
        bs->serialising_in_flight--;
    }
    if (unlikely(req->wait_queue.head != NULL)) {
        qemu_co_queue_restart_all(&req->wait_queue);
    }
}

static bool tracked_overlaps(BdrvTrackedRequest *a, BdrvTrackedRequest *b)
{
    return a->offset < b->offset + b->bytes &&
           b->offset < a->offset + a->bytes;
}

/*
 * Wait until no conflicting request overlaps @self: a serialising request
 * conflicts with every overlapping write, a plain write only with
 * serialising ones.  Requests that are themselves waiting are skipped:
 * they re-check (and wait for @self) when woken, so no wait cycle can
 * form.
 */
static void coroutine_fn wait_serialising_requests(BdrvTrackedRequest *self)
{
    BlockDriverState *bs = self->bs;
    BdrvTrackedRequest *req;
    bool retry;

    do {
        retry = false;
        for (req = bs->tracked_head; req; req = req->next) {
            if (req == self || (!req->serialising && !self->serialising)) {
                continue;
            }
            if (!tracked_overlaps(self, req) || req->waiting_for) {
                continue;
            }
            self->waiting_for = req;
            qemu_co_queue_wait(&req->wait_queue, NULL);
            self->waiting_for = NULL;
            retry = true;
            break;
        }
    } while (retry);
}

static void coroutine_fn tracked_request_serialise(BdrvTrackedRequest *req,
                                                   uint32_t align)
{
    int64_t start = QEMU_ALIGN_DOWN(req->offset, align);
    int64_t end = QEMU_ALIGN_UP(req->offset + req->bytes, align);

    req->offset = start;
    req->bytes = end - start;
    if (!req->serialising) {
        req->serialising = true;
        req->bs->serialising_in_flight++;
    }
    wait_serialising_requests(req);
}

/* ---- reads ------------------------------------------------------------ */

/*
 * Aligned read: split at max_transfer and zero-fill past the cached end
 * of the node.
 */
static int coroutine_fn bdrv_aligned_preadv(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            BdrvRequestFlags flags)
{
    BlockDriver *drv = bs->drv;
    uint32_t max = bs->bl.max_transfer;
    int64_t total = bs->total_bytes;
    int ret;

    if (likely((!max || bytes <= max) &&
               (total < 0 || offset + bytes <= total))) {
        return drv->bdrv_co_preadv_part(bs, offset, bytes, qiov, qiov_offset,
                                        flags);
    }

    /* Slow path: past the end and/or larger than one transfer. */
    if (total >= 0 && offset + bytes > total) {
        int64_t valid = total > offset
            ? QEMU_ALIGN_UP(total - offset, bs->bl.request_alignment) : 0;
        valid = MIN(valid, bytes);
        qemu_iovec_memset(qiov, qiov_offset + valid, 0, bytes - valid);
        bytes = valid;
    }
    if (!max) {
        max = BDRV_REQUEST_MAX_BYTES;
    }
    max = QEMU_ALIGN_DOWN(max, bs->bl.request_alignment);
    while (bytes > 0) {
        int64_t n = MIN(bytes, (int64_t)max);

        ret = drv->bdrv_co_preadv_part(bs, offset, n, qiov, qiov_offset,
                                       flags);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        qiov_offset += n;
        bytes -= n;
    }
    return 0;
}

/* Read an unaligned request through a bounce buffer of whole blocks. */
static int coroutine_fn bdrv_padded_preadv(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           size_t qiov_offset,
                                           BdrvRequestFlags flags)
{
    uint32_t align = bs->bl.request_alignment;
    int64_t start = QEMU_ALIGN_DOWN(offset, align);
    int64_t end = QEMU_ALIGN_UP(offset + bytes, align);
    int64_t head = offset - start;
    QEMUIOVector local;
    uint8_t *head_buf = NULL, *tail_buf = NULL;
    int64_t tail_start = end - align;
    int ret;

    /*
     * Bounce only the partial head and tail blocks; the middle goes
     * straight into the caller's buffer.
     */
    qemu_iovec_init(&local, qiov->niov + 2);
    head_buf = qemu_blockalign(bs, align);
    if (head) {
        qemu_iovec_add(&local, head_buf, head);
    }
    if (tail_start < offset) {
        /* Head and tail are the same block: bounce all of it. */
        qemu_iovec_reset(&local);
        qemu_iovec_add(&local, head_buf, align);
        ret = bdrv_aligned_preadv(bs, start, align, &local, 0, flags);
        if (ret == 0) {
            qemu_iovec_from_buf(qiov, qiov_offset, head_buf + head, bytes);
        }
        goto out;
    }
    qemu_iovec_concat(&local, qiov, qiov_offset, bytes);
    if (end != offset + bytes) {
        tail_buf = qemu_blockalign(bs, align);
        qemu_iovec_add(&local, tail_buf, end - (offset + bytes));
    }
    ret = bdrv_aligned_preadv(bs, start, end - start, &local, 0, flags);
out:
    qemu_iovec_destroy(&local);
    qemu_vfree(head_buf);
    qemu_vfree(tail_buf);
    return ret;
}

int coroutine_fn bdrv_co_preadv_part(BdrvChild *child, int64_t offset,
                                     int64_t bytes, QEMUIOVector *qiov,
                                     size_t qiov_offset,
                                     BdrvRequestFlags flags)
{
    BlockDriverState *bs = child->bs;
    uint32_t align;
    int ret;

    if (unlikely(!bs->drv)) {
        return -ENOMEDIUM;
    }
    ret = bdrv_check_request(offset, bytes);
    if (unlikely(ret < 0)) {
        return ret;
    }
    ret = bdrv_check_qiov(qiov, qiov_offset, bytes);
    if (unlikely(ret < 0 || bytes == 0)) {
        return ret;
    }
    if (unlikely(!bs->drv->bdrv_co_preadv_part)) {
        return -ENOTSUP;
    }

    bdrv_inc_in_flight(bs);
    align = bs->bl.request_alignment;
    if (likely(((offset | bytes) & (align - 1)) == 0)) {
        ret = bdrv_aligned_preadv(bs, offset, bytes, qiov, qiov_offset,
                                  flags);
    } else {
        ret = bdrv_padded_preadv(bs, offset, bytes, qiov, qiov_offset, flags);
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

int coroutine_fn bdrv_co_preadv(BdrvChild *child, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    return bdrv_co_preadv_part(child, offset, bytes, qiov, 0, flags);
}

int coroutine_fn bdrv_co_pread(BdrvChild *child, int64_t offset,
                               int64_t bytes, void *buf,
                               BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes);
    return bdrv_co_preadv_part(child, offset, bytes, &qiov, 0, flags);
}

/* ---- writes ------------------------------------------------------------ */

/* Bookkeeping after a successful write/zero/discard. */
static inline void bdrv_write_done(BlockDriverState *bs, int64_t end)
{
    bs->write_gen++;
    if (unlikely(bs->total_bytes >= 0 && end > bs->total_bytes)) {
        bs->total_bytes = end;
    }
}

/* Emulated write-zeroes: write a zeroed buffer, in chunks. */
static int coroutine_fn bdrv_write_zero_buffer(BlockDriverState *bs,
                                               int64_t offset, int64_t bytes,
                                               BdrvRequestFlags flags)
{
    int64_t chunk = MIN(bytes, ZERO_BOUNCE_MAX);
    uint32_t max = bs->bl.max_transfer;
    QEMUIOVector qiov;
    void *buf;
    int ret = 0;

    if (max) {
        chunk = MIN(chunk, (int64_t)max);
    }
    chunk = MAX(chunk, (int64_t)bs->bl.request_alignment);
    buf = qemu_try_blockalign(bs, chunk);
    if (!buf) {
        return -ENOMEM;
    }
    memset(buf, 0, chunk);
    while (bytes > 0) {
        int64_t n = MIN(bytes, chunk);

        qemu_iovec_init_buf(&qiov, buf, n);
        ret = bs->drv->bdrv_co_pwritev_part(bs, offset, n, &qiov, 0, flags);
        if (ret < 0) {
            break;
        }
        offset += n;
        bytes -= n;
    }
    qemu_vfree(buf);
    return ret;
}

/*
 * Write zeroes on an aligned range: use the driver's callback split by
 * max_pwrite_zeroes and pwrite_zeroes_alignment, falling back to writing
 * zeroes unless NO_FALLBACK.
 */
static int coroutine_fn bdrv_aligned_pwrite_zeroes(BlockDriverState *bs,
                                                   int64_t offset,
                                                   int64_t bytes,
                                                   BdrvRequestFlags flags)
{
    BlockDriver *drv = bs->drv;
    int64_t max = bs->bl.max_pwrite_zeroes ? bs->bl.max_pwrite_zeroes
                                           : BDRV_REQUEST_MAX_BYTES;
    uint32_t zalign = MAX(bs->bl.pwrite_zeroes_alignment,
                          bs->bl.request_alignment);
    BdrvRequestFlags wflags = flags & ~(BDRV_REQ_ZERO_WRITE |
                                        BDRV_REQ_MAY_UNMAP |
                                        BDRV_REQ_NO_FALLBACK);
    int ret = 0;

    max = QEMU_ALIGN_DOWN(max, zalign);
    if (!max) {
        max = zalign;
    }
    while (bytes > 0) {
        int64_t n = MIN(bytes, max);

        /* Keep driver calls on zalign boundaries where possible. */
        if (offset % zalign) {
            n = MIN(n, QEMU_ALIGN_UP(offset, zalign) - offset);
        } else if (n > zalign && n % zalign) {
            n = QEMU_ALIGN_DOWN(n, zalign);
        }
        ret = -ENOTSUP;
        if (drv->bdrv_co_pwrite_zeroes) {
            ret = drv->bdrv_co_pwrite_zeroes(bs, offset, n,
                                             flags & (bs->supported_zero_flags |
                                                      BDRV_REQ_MAY_UNMAP |
                                                      BDRV_REQ_NO_FALLBACK));
        }
        if (ret == -ENOTSUP && !(flags & BDRV_REQ_NO_FALLBACK)) {
            ret = bdrv_write_zero_buffer(bs, offset, n,
                                         wflags & bs->supported_write_flags);
        }
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return ret;
}

/*
 * Aligned write (data or zeroes): split at max_transfer, emulate FUA.
 */
static int coroutine_fn bdrv_aligned_pwritev(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             QEMUIOVector *qiov,
                                             size_t qiov_offset,
                                             BdrvRequestFlags flags)
{
    BlockDriver *drv = bs->drv;
    uint32_t max = bs->bl.max_transfer;
    BdrvRequestFlags native = (flags & BDRV_REQ_ZERO_WRITE)
                              ? bs->supported_zero_flags
                              : bs->supported_write_flags;
    bool emulate_fua = (flags & BDRV_REQ_FUA) && !(native & BDRV_REQ_FUA);
    BdrvRequestFlags dflags = flags & bs->supported_write_flags;
    int ret;

    if (unlikely(flags & BDRV_REQ_ZERO_WRITE)) {
        ret = bdrv_aligned_pwrite_zeroes(bs, offset, bytes,
                                         flags & ~(emulate_fua ? BDRV_REQ_FUA
                                                               : 0));
    } else if (likely(!max || bytes <= max)) {
        ret = drv->bdrv_co_pwritev_part(bs, offset, bytes, qiov, qiov_offset,
                                        dflags);
    } else {
        int64_t o = offset, left = bytes;
        size_t qo = qiov_offset;

        max = QEMU_ALIGN_DOWN(max, bs->bl.request_alignment);
        ret = 0;
        while (left > 0) {
            int64_t n = MIN(left, (int64_t)max);

            ret = drv->bdrv_co_pwritev_part(bs, o, n, qiov, qo, dflags);
            if (ret < 0) {
                break;
            }
            o += n;
            qo += n;
            left -= n;
        }
    }
    if (likely(ret == 0)) {
        bdrv_write_done(bs, offset + bytes);
        if (unlikely(emulate_fua)) {
            ret = bdrv_co_flush(bs);
        }
    }
    return ret;
}

/*
 * Unaligned write: read the partial head/tail blocks, patch them and write
 * whole blocks.  The caller has serialised the aligned range.
 */
static int coroutine_fn bdrv_padded_pwritev(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            BdrvRequestFlags flags)
{
    uint32_t align = bs->bl.request_alignment;
    int64_t end = offset + bytes;
    int64_t head_start = QEMU_ALIGN_DOWN(offset, align);
    int64_t tail_start = QEMU_ALIGN_DOWN(end, align);
    bool zero = flags & BDRV_REQ_ZERO_WRITE;
    BdrvRequestFlags bflags = flags & ~(BDRV_REQ_ZERO_WRITE |
                                        BDRV_REQ_MAY_UNMAP |
                                        BDRV_REQ_NO_FALLBACK);
    QEMUIOVector bq;
    uint8_t *buf;
    int ret = 0;

    buf = qemu_try_blockalign(bs, align);
    if (!buf) {
        return -ENOMEM;
    }
    qemu_iovec_init_buf(&bq, buf, align);

    if (offset != head_start) {
        /* Partial first block (may also be the last). */
        int64_t n = MIN(end, head_start + align) - offset;

        ret = bdrv_aligned_preadv(bs, head_start, align, &bq, 0, 0);
        if (ret < 0) {
            goto out;
        }
        if (zero) {
            memset(buf + (offset - head_start), 0, n);
        } else {
            qemu_iovec_to_buf(qiov, qiov_offset, buf + (offset - head_start),
                              n);
        }
        ret = bdrv_aligned_pwritev(bs, head_start, align, &bq, 0, bflags);
        if (ret < 0) {
            goto out;
        }
        offset += n;
        qiov_offset += n;
        bytes -= n;
    }
    if (bytes > 0 && tail_start > offset) {
        int64_t n = tail_start - offset;

        ret = bdrv_aligned_pwritev(bs, offset, n, qiov, qiov_offset, flags);
        if (ret < 0) {
            goto out;
        }
        offset += n;
        qiov_offset += n;
        bytes -= n;
    }
    if (bytes > 0) {
        /* Partial last block. */
        assert(offset == tail_start && bytes < align);
        ret = bdrv_aligned_preadv(bs, tail_start, align, &bq, 0, 0);
        if (ret < 0) {
            goto out;
        }
        if (zero) {
            memset(buf, 0, bytes);
        } else {
            qemu_iovec_to_buf(qiov, qiov_offset, buf, bytes);
        }
        ret = bdrv_aligned_pwritev(bs, tail_start, align, &bq, 0, bflags);
    }
out:
    qemu_vfree(buf);
    return ret;
}

/* ---- undo journal ----------------------------------------------------- */

typedef struct BdrvUndoEntry {
    int64_t offset;
    int64_t bytes;
    void *data;
} BdrvUndoEntry;

struct BdrvUndo {
    GArray *entries;             /* BdrvUndoEntry, oldest first */
    int64_t orig_len;
};

int coroutine_fn bdrv_co_undo_begin(BdrvChild *child)
{
    BlockDriverState *bs = child->bs;
    int64_t len = bdrv_co_getlength(bs);

    if (len < 0) {
        return len;
    }
    assert(!bs->undo);
    bs->undo = g_new0(struct BdrvUndo, 1);
    bs->undo->entries = g_array_new(false, false, sizeof(BdrvUndoEntry));
    bs->undo->orig_len = len;
    return 0;
}

static void bdrv_undo_free(struct BdrvUndo *u)
{
    guint i;

    for (i = 0; i < u->entries->len; i++) {
        qemu_vfree(g_array_index(u->entries, BdrvUndoEntry, i).data);
    }
    g_array_free(u->entries, true);
    g_free(u);
}

void bdrv_undo_end(BdrvChild *child)
{
    if (child->bs->undo) {
        bdrv_undo_free(child->bs->undo);
        child->bs->undo = NULL;
    }
}

/*
 * Save what [offset, offset + bytes) holds before a change.  Only the
 * part below the original length: the rollback truncates the rest away.
 */
static int coroutine_fn bdrv_undo_record(BdrvChild *child, int64_t offset,
                                         int64_t bytes)
{
    struct BdrvUndo *u = child->bs->undo;
    BdrvUndoEntry e;
    int64_t len, end;
    int ret;

    if (likely(!u)) {
        return 0;
    }
    len = bdrv_co_getlength(child->bs);
    if (len < 0) {
        return len;
    }
    end = MIN(offset + bytes, MIN(len, u->orig_len));
    if (offset >= end) {
        return 0;
    }
    e.offset = offset;
    e.bytes = end - offset;
    e.data = qemu_try_blockalign(child->bs, e.bytes);
    if (!e.data) {
        return -ENOMEM;
    }
    /* Read with the journal off: the read path does not record anyway. */
    ret = bdrv_co_pread(child, e.offset, e.bytes, e.data, 0);
    if (ret < 0) {
        qemu_vfree(e.data);
        return ret;
    }
    g_array_append_val(u->entries, e);
    return 0;
}

int coroutine_fn bdrv_co_undo_rollback(BdrvChild *child)
{
    struct BdrvUndo *u = child->bs->undo;
    int64_t len;
    int ret = 0, r;
    guint i;

    if (!u) {
        return 0;
    }
    child->bs->undo = NULL;
    for (i = u->entries->len; i-- > 0;) {
        BdrvUndoEntry *e = &g_array_index(u->entries, BdrvUndoEntry, i);

        r = bdrv_co_pwrite(child, e->offset, e->bytes, e->data, 0);
        ret = ret < 0 ? ret : r;
    }
    len = bdrv_co_getlength(child->bs);
    if (len >= 0 && len != u->orig_len) {
        r = bdrv_co_truncate(child, u->orig_len, true, PREALLOC_MODE_OFF, 0,
                             NULL);
        ret = ret < 0 ? ret : r;
    }
    r = bdrv_co_flush(child->bs);
    ret = ret < 0 ? ret : r;
    bdrv_undo_free(u);
    return ret < 0 ? ret : 0;
}

int coroutine_fn bdrv_co_pwritev_part(BdrvChild *child, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      size_t qiov_offset,
                                      BdrvRequestFlags flags)
{
    BlockDriverState *bs = child->bs;
    BdrvTrackedRequest req;
    uint32_t align;
    int ret;

    if (unlikely(!bs->drv)) {
        return -ENOMEDIUM;
    }
    if (unlikely(bs->read_only)) {
        return -EPERM;
    }
    ret = bdrv_check_request(offset, bytes);
    if (unlikely(ret < 0)) {
        return ret;
    }
    if (!(flags & BDRV_REQ_ZERO_WRITE)) {
        ret = bdrv_check_qiov(qiov, qiov_offset, bytes);
        if (unlikely(ret < 0)) {
            return ret;
        }
    }
    if (unlikely(bytes == 0 && !(flags & BDRV_REQ_WRITE_COMPRESSED))) {
        /* An empty compressed write still goes down: it ends a stream. */
        return 0;
    }
    if (unlikely(bs->undo)) {
        ret = bdrv_undo_record(child, offset, bytes);
        if (ret < 0) {
            return ret;
        }
    }
    if (unlikely(flags & BDRV_REQ_WRITE_COMPRESSED)) {
        if (!bs->drv->bdrv_co_pwritev_compressed_part) {
            return -ENOTSUP;
        }
        bdrv_inc_in_flight(bs);
        ret = bs->drv->bdrv_co_pwritev_compressed_part(bs, offset, bytes,
                                                       qiov, qiov_offset);
        if (ret == 0) {
            bdrv_write_done(bs, offset + bytes);
        }
        bdrv_dec_in_flight(bs);
        return ret;
    }
    if (unlikely(!bs->drv->bdrv_co_pwritev_part) &&
        !(flags & BDRV_REQ_ZERO_WRITE && bs->drv->bdrv_co_pwrite_zeroes)) {
        return -ENOTSUP;
    }

    bdrv_inc_in_flight(bs);
    tracked_request_begin(&req, bs, offset, bytes);
    align = bs->bl.request_alignment;
    if (likely(((offset | bytes) & (align - 1)) == 0)) {
        if (unlikely(bs->serialising_in_flight)) {
            wait_serialising_requests(&req);
        }
        ret = bdrv_aligned_pwritev(bs, offset, bytes, qiov, qiov_offset,
                                   flags);
    } else {
        tracked_request_serialise(&req, align);
        ret = bdrv_padded_pwritev(bs, offset, bytes, qiov, qiov_offset,
                                  flags);
    }
    tracked_request_end(&req);
    bdrv_dec_in_flight(bs);
    return ret;
}

int coroutine_fn bdrv_co_pwritev(BdrvChild *child, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags)
{
    return bdrv_co_pwritev_part(child, offset, bytes, qiov, 0, flags);
}

int coroutine_fn bdrv_co_pwrite(BdrvChild *child, int64_t offset,
                                int64_t bytes, const void *buf,
                                BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, (void *)buf, bytes);
    return bdrv_co_pwritev_part(child, offset, bytes, &qiov, 0, flags);
}

int coroutine_fn bdrv_co_pwrite_sync(BdrvChild *child, int64_t offset,
                                     int64_t bytes, const void *buf,
                                     BdrvRequestFlags flags)
{
    int ret = bdrv_co_pwrite(child, offset, bytes, buf, flags);

    if (ret < 0) {
        return ret;
    }
    return bdrv_co_flush(child->bs);
}

int coroutine_fn bdrv_co_pwrite_zeroes(BdrvChild *child, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags)
{
    if (!(child->bs->open_flags & BDRV_O_UNMAP)) {
        flags &= ~BDRV_REQ_MAY_UNMAP;
    }
    return bdrv_co_pwritev_part(child, offset, bytes, NULL, 0,
                                flags | BDRV_REQ_ZERO_WRITE);
}

/* ---- discard ---------------------------------------------------------- */

int coroutine_fn bdrv_co_pdiscard(BdrvChild *child, int64_t offset,
                                  int64_t bytes)
{
    BlockDriverState *bs = child->bs;
    int64_t align, max, end;
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->read_only) {
        return -EPERM;
    }
    ret = bdrv_check_request(offset, bytes);
    if (ret < 0) {
        return ret;
    }
    /* Discard is a hint: without unmap permission or support, do nothing. */
    if (!(bs->open_flags & BDRV_O_UNMAP) || !bs->drv->bdrv_co_pdiscard) {
        return 0;
    }
    if (unlikely(bs->undo)) {
        ret = bdrv_undo_record(child, offset, bytes);
        if (ret < 0) {
            return ret;
        }
    }
    align = MAX(bs->bl.pdiscard_alignment, bs->bl.request_alignment);
    end = offset + bytes;
    /*
     * A request reaching the end of the image keeps its unaligned end, so
     * that the partial last cluster can be discarded as QEMU does; the
     * driver ignores what it cannot discard.
     */
    if (end != bdrv_co_getlength(bs)) {
        end = QEMU_ALIGN_DOWN(end, align);
    }
    offset = QEMU_ALIGN_UP(offset, align);
    if (end <= offset) {
        return 0;
    }
    max = bs->bl.max_pdiscard ? QEMU_ALIGN_DOWN(bs->bl.max_pdiscard, align)
                              : BDRV_REQUEST_MAX_BYTES;
    if (max <= 0) {
        max = align;
    }

    bdrv_inc_in_flight(bs);
    ret = 0;
    while (offset < end) {
        int64_t n = MIN(end - offset, max);

        ret = bs->drv->bdrv_co_pdiscard(bs, offset, n);
        if (ret == -ENOTSUP) {
            ret = 0;
        }
        if (ret < 0) {
            break;
        }
        offset += n;
    }
    if (ret == 0) {
        bs->write_gen++;
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- flush ------------------------------------------------------------ */

int coroutine_fn bdrv_co_flush(BlockDriverState *bs)
{
    BlockDriver *drv;
    uint64_t gen;
    int ret = 0, r;

    if (!bs || !bs->drv) {
        return 0;
    }
    drv = bs->drv;
    bdrv_inc_in_flight(bs);
    /* Concurrent flushes queue here; a later one finds nothing to do. */
    qemu_co_mutex_lock(&bs->flush_lock);
    gen = bs->write_gen;

    if (drv->bdrv_co_flush_to_os) {
        ret = drv->bdrv_co_flush_to_os(bs);
        if (ret < 0) {
            goto out;
        }
    }
    if (!(bs->open_flags & BDRV_O_NO_FLUSH) && bs->flushed_gen != gen &&
        drv->bdrv_co_flush_to_disk) {
        ret = drv->bdrv_co_flush_to_disk(bs);
        if (ret < 0) {
            goto out;
        }
    }
    if (bs->file && !bs->file->bs->read_only) {
        r = bdrv_co_flush(bs->file->bs);
        if (r < 0 && ret == 0) {
            ret = r;
        }
    }
    if (bs->backing && !bs->backing->bs->read_only) {
        r = bdrv_co_flush(bs->backing->bs);
        if (r < 0 && ret == 0) {
            ret = r;
        }
    }
out:
    if (ret == 0) {
        bs->flushed_gen = gen;
    }
    qemu_co_mutex_unlock(&bs->flush_lock);
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- length and truncate ------------------------------------------------ */

int64_t coroutine_fn bdrv_co_getlength(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (likely(bs->total_bytes >= 0)) {
        return bs->total_bytes;
    }
    if (bs->drv->bdrv_co_getlength) {
        return bs->drv->bdrv_co_getlength(bs);
    }
    if (bs->file) {
        return bdrv_co_getlength(bs->file->bs);
    }
    return -ENOTSUP;
}

int coroutine_fn bdrv_co_make_empty(BlockDriverState *bs)
{
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_make_empty) {
        return -ENOTSUP;
    }
    ret = bs->drv->bdrv_co_make_empty(bs);
    if (ret < 0) {
        return ret;
    }
    return bdrv_co_flush(bs);
}

int64_t coroutine_fn bdrv_co_get_allocated_file_size(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->bdrv_co_get_allocated_file_size) {
        return bs->drv->bdrv_co_get_allocated_file_size(bs);
    }
    if (bs->file) {
        return bdrv_co_get_allocated_file_size(bs->file->bs);
    }
    return -ENOTSUP;
}

int coroutine_fn bdrv_co_truncate(BdrvChild *child, int64_t offset,
                                  bool exact, PreallocMode prealloc,
                                  BdrvRequestFlags flags, Error **errp)
{
    BlockDriverState *bs = child->bs;
    int64_t len;
    int ret;

    if (!bs->drv) {
        error_setg(errp, "No medium inserted");
        return -ENOMEDIUM;
    }
    if (offset < 0 || offset > BDRV_MAX_LENGTH) {
        error_setg(errp, "Image size cannot be negative");
        return -EINVAL;
    }
    if (bs->read_only) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    if (!bs->drv->bdrv_co_truncate) {
        error_setg(errp, "Image format driver does not support resize");
        return -ENOTSUP;
    }
    /*
     * Growing must not uncover backing data beyond the old end: ask the
     * driver to make the new area read as zeroes if the backing file
     * reaches that far.
     */
    if (bs->backing && bs->backing->bs) {
        int64_t old_len = bdrv_co_getlength(bs);
        int64_t backing_len = bdrv_co_getlength(bs->backing->bs);

        if (old_len >= 0 && offset > old_len) {
            if (backing_len < 0) {
                error_setg_errno(errp, -backing_len,
                                 "Could not get backing file size");
                return backing_len;
            }
            if (backing_len > old_len) {
                flags |= BDRV_REQ_ZERO_WRITE;
            }
        }
    }
    if (unlikely(bs->undo)) {
        /* A shrink loses the tail: keep it (grown space is cut again). */
        len = bdrv_co_getlength(bs);
        ret = len < 0 ? len : offset < len
              ? bdrv_undo_record(child, offset, len - offset) : 0;
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not save the data to cut");
            return ret;
        }
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_truncate(bs, offset, exact, prealloc, flags, errp);
    /* Whatever happened, the driver knows the new size. */
    bs->total_bytes = -1;
    len = bdrv_co_getlength(bs);
    bs->total_bytes = len >= 0 ? len : -1;
    if (ret == 0) {
        bs->write_gen++;
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- block status ------------------------------------------------------ */

int coroutine_fn bdrv_co_block_status_from_file(BlockDriverState *bs,
                                                bool want_zero,
                                                int64_t offset,
                                                int64_t bytes,
                                                int64_t *pnum, int64_t *map,
                                                BlockDriverState **file)
{
    assert(bs->file);
    *pnum = bytes;
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

int coroutine_fn bdrv_co_block_status(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum,
                                      int64_t *map, BlockDriverState **file)
{
    int64_t total, aligned_off, aligned_bytes, local_map = 0, n;
    BlockDriverState *local_file = NULL;
    uint32_t align;
    int ret;

    *pnum = 0;
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    total = bdrv_co_getlength(bs);
    if (total < 0) {
        return total;
    }
    if (offset < 0 || bytes < 0) {
        return -EINVAL;
    }
    if (offset >= total) {
        return BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, total - offset);
    if (bytes == 0) {
        return 0;
    }

    if (!bs->drv->bdrv_co_block_status) {
        /* Everything is data; protocols map it onto themselves. */
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
        if (!bs->file && !bs->backing) {
            ret |= BDRV_BLOCK_OFFSET_VALID;
            local_map = offset;
            local_file = bs;
        }
        goto done;
    }

    bdrv_inc_in_flight(bs);
    align = bs->bl.request_alignment;
    aligned_off = QEMU_ALIGN_DOWN(offset, align);
    aligned_bytes = QEMU_ALIGN_UP(offset + bytes, align) - aligned_off;
    ret = bs->drv->bdrv_co_block_status(bs, true, aligned_off, aligned_bytes,
                                        &n, &local_map, &local_file);
    if (ret < 0) {
        bdrv_dec_in_flight(bs);
        return ret;
    }
    /* Translate the aligned answer back to the caller's range. */
    assert(n > 0 || aligned_bytes == 0);
    n -= offset - aligned_off;
    if (n <= 0) {
        n = MIN(bytes, (int64_t)align);
    }
    *pnum = MIN(n, bytes);
    if (ret & BDRV_BLOCK_OFFSET_VALID) {
        local_map += offset - aligned_off;
    }

    if (ret & BDRV_BLOCK_RAW) {
        /* Pass-through: the answer is @local_file's at @local_map. */
        assert(ret & BDRV_BLOCK_OFFSET_VALID && local_file);
        ret = bdrv_co_block_status(local_file, local_map, *pnum, pnum,
                                   &local_map, &local_file);
        bdrv_dec_in_flight(bs);
        if (ret < 0) {
            return ret;
        }
        if (*pnum == 0) {
            /*
             * Past the end of the file (the tail of its last sector):
             * reads as zero, and like QEMU's trailing hole it keeps the
             * mapping the pass-through gave (the recursion left it).
             */
            *pnum = MIN(bytes, n);
            ret = BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED |
                  BDRV_BLOCK_OFFSET_VALID;
        }
        ret &= ~BDRV_BLOCK_EOF;
        goto done;
    }

    if (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) {
        ret |= BDRV_BLOCK_ALLOCATED;
    } else if (bs->drv->supports_backing) {
        BlockDriverState *bk = bdrv_backing_bs(bs);

        /* Unallocated with nothing (or nothing this far) below: zero. */
        if (!bk) {
            ret |= BDRV_BLOCK_ZERO;
        } else {
            int64_t blen = bdrv_co_getlength(bk);
            if (blen >= 0 && offset >= blen) {
                ret |= BDRV_BLOCK_ZERO;
            }
        }
    }

    if ((ret & BDRV_BLOCK_RECURSE) && local_file && local_file != bs &&
        (ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO) &&
        (ret & BDRV_BLOCK_OFFSET_VALID)) {
        int64_t fpnum;
        int r2 = bdrv_co_block_status(local_file, local_map, *pnum, &fpnum,
                                      NULL, NULL);
        if (r2 >= 0) {
            if ((r2 & BDRV_BLOCK_EOF) && (!fpnum || (r2 & BDRV_BLOCK_ZERO))) {
                ret |= BDRV_BLOCK_ZERO;
            } else if (fpnum > 0) {
                *pnum = MIN(*pnum, fpnum);
                ret |= r2 & BDRV_BLOCK_ZERO;
            }
        }
    }
    bdrv_dec_in_flight(bs);

done:
    ret &= ~(BDRV_BLOCK_RECURSE | BDRV_BLOCK_RAW);
    if (offset + *pnum == total) {
        ret |= BDRV_BLOCK_EOF;
    }
    if (map) {
        *map = local_map;
    }
    if (file) {
        *file = local_file;
    }
    return ret;
}

/*
 * Walk the chain from @bs down to @base (excluded unless @include_base)
 * and return the status of the first layer that has the data.
 */
static int coroutine_fn bdrv_co_common_block_status_above(
    BlockDriverState *bs, BlockDriverState *base, bool include_base,
    int64_t offset, int64_t bytes, int64_t *pnum, int64_t *map,
    BlockDriverState **file, int *depth)
{
    BlockDriverState *p;
    int64_t eof = 0;
    int dummy;
    int ret;

    if (!depth) {
        depth = &dummy;
    }
    *depth = 0;
    if (!include_base && bs == base) {
        *pnum = bytes;
        return 0;
    }
    ret = bdrv_co_block_status(bs, offset, bytes, pnum, map, file);
    ++*depth;
    if (ret < 0 || *pnum == 0 || (ret & BDRV_BLOCK_ALLOCATED) || bs == base) {
        return ret;
    }
    if (ret & BDRV_BLOCK_EOF) {
        eof = offset + *pnum;
    }
    bytes = MIN(bytes, *pnum);
    for (p = bdrv_filter_or_cow_bs(bs); p && (include_base || p != base);
         p = bdrv_filter_or_cow_bs(p)) {
        ret = bdrv_co_block_status(p, offset, bytes, pnum, map, file);
        ++*depth;
        if (ret < 0) {
            return ret;
        }
        if (*pnum == 0) {
            /* This layer is short: its synthesised zeroes count as data. */
            *pnum = bytes;
            if (file) {
                *file = p;
            }
            ret = BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
            break;
        }
        if (ret & BDRV_BLOCK_ALLOCATED) {
            ret &= ~BDRV_BLOCK_EOF;
            break;
        }
        if (p == base) {
            break;
        }
        bytes = MIN(bytes, *pnum);
    }
    if (eof && offset + *pnum == eof) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}

int coroutine_fn bdrv_co_block_status_above(BlockDriverState *bs,
                                            BlockDriverState *base,
                                            int64_t offset, int64_t bytes,
                                            int64_t *pnum, int64_t *map,
                                            BlockDriverState **file,
                                            int *depth)
{
    return bdrv_co_common_block_status_above(bs, base, false, offset, bytes,
                                             pnum, map, file, depth);
}

int coroutine_fn bdrv_co_is_allocated(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum)
{
    int64_t dummy;
    int ret = bdrv_co_block_status(bs, offset, bytes, pnum ? pnum : &dummy,
                                   NULL, NULL);

    if (ret < 0) {
        return ret;
    }
    return !!(ret & BDRV_BLOCK_ALLOCATED);
}

int coroutine_fn bdrv_co_is_allocated_above(BlockDriverState *top,
                                            BlockDriverState *base,
                                            bool include_base, int64_t offset,
                                            int64_t bytes, int64_t *pnum)
{
    int depth;
    int64_t dummy;
    int ret = bdrv_co_common_block_status_above(top, base, include_base,
                                                offset, bytes,
                                                pnum ? pnum : &dummy,
                                                NULL, NULL, &depth);

    if (ret < 0) {
        return ret;
    }
    /* A positive depth (1 = @top) when allocated. */
    return (ret & BDRV_BLOCK_ALLOCATED) ? depth : 0;
}

/* ---- zoned devices ------------------------------------------------------ */

int coroutine_fn bdrv_co_zone_report(BlockDriverState *bs, int64_t offset,
                                     unsigned int *nr_zones,
                                     BlockZoneDescriptor *zones)
{
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_zone_report || bs->bl.zoned == BLK_Z_NONE) {
        return -ENOTSUP;
    }
    if (offset < 0) {
        return -EINVAL;
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_zone_report(bs, offset, nr_zones, zones);
    bdrv_dec_in_flight(bs);
    return ret;
}

int coroutine_fn bdrv_co_zone_mgmt(BlockDriverState *bs, BlockZoneOp op,
                                   int64_t offset, int64_t len)
{
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_zone_mgmt || bs->bl.zoned == BLK_Z_NONE) {
        return -ENOTSUP;
    }
    if (bs->read_only) {
        return -EPERM;
    }
    ret = bdrv_check_request(offset, len);
    if (ret < 0) {
        return ret;
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_zone_mgmt(bs, op, offset, len);
    if (ret == 0) {
        bs->write_gen++;
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

int coroutine_fn bdrv_co_zone_append(BlockDriverState *bs, int64_t *offset,
                                     QEMUIOVector *qiov,
                                     BdrvRequestFlags flags)
{
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_zone_append || bs->bl.zoned == BLK_Z_NONE) {
        return -ENOTSUP;
    }
    if (bs->read_only) {
        return -EPERM;
    }
    ret = bdrv_check_request(*offset, qiov->size);
    if (ret < 0) {
        return ret;
    }
    /* Appends are whole sectors. */
    if (!QEMU_IS_ALIGNED(qiov->size, BDRV_SECTOR_SIZE) ||
        !QEMU_IS_ALIGNED(*offset, BDRV_SECTOR_SIZE)) {
        return -EINVAL;
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_zone_append(bs, offset, qiov,
                                       flags & bs->supported_write_flags);
    if (ret == 0) {
        bdrv_write_done(bs, *offset + qiov->size);
        if ((flags & BDRV_REQ_FUA) &&
            !(bs->supported_write_flags & BDRV_REQ_FUA)) {
            ret = bdrv_co_flush(bs);
        }
    }
    bdrv_dec_in_flight(bs);
    return ret;
}

/* ---- maintenance ------------------------------------------------------- */

int coroutine_fn bdrv_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                               BdrvCheckMode fix)
{
    int ret;

    memset(res, 0, sizeof(*res));
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_check) {
        return -ENOTSUP;
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_check(bs, res, fix);
    bdrv_dec_in_flight(bs);
    return ret;
}

int coroutine_fn bdrv_co_amend(BlockDriverState *bs, QemuOpts *opts,
                               bool force, Error **errp)
{
    int ret;

    if (!bs->drv) {
        error_setg(errp, "Node is ejected");
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_amend) {
        error_setg(errp, "Block driver '%s' does not support option "
                   "amendment", bs->drv->format_name);
        return -ENOTSUP;
    }
    /* An export on the node must not see the image change under it. */
    bdrv_drained_begin(bs);
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_amend(bs, opts, force, errp);
    bs->total_bytes = -1;
    {
        int64_t len = bdrv_co_getlength(bs);
        bs->total_bytes = len >= 0 ? len : -1;
    }
    bdrv_dec_in_flight(bs);
    bdrv_drained_end(bs);
    return ret;
}

int coroutine_fn bdrv_co_change_backing_file(BlockDriverState *bs,
                                             const char *backing_file,
                                             const char *backing_fmt)
{
    int ret;

    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_co_change_backing_file) {
        return -ENOTSUP;
    }
    bdrv_inc_in_flight(bs);
    ret = bs->drv->bdrv_co_change_backing_file(bs, backing_file, backing_fmt);
    if (ret == 0) {
        pstrcpy(bs->backing_file, sizeof(bs->backing_file),
                backing_file ? backing_file : "");
        pstrcpy(bs->backing_format, sizeof(bs->backing_format),
                backing_fmt ? backing_fmt : "");
    }
    bdrv_dec_in_flight(bs);
    return ret;
}
