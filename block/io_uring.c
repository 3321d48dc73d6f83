/*
 * io_uring back end for the file protocol driver.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Requests live in the submitting coroutine's stack frame.  SQEs are
 * filled in directly in the shared submission ring and handed to the
 * kernel with one io_uring_enter() per loop iteration: from a bottom
 * half, or right after reaping completions when woken coroutines queued
 * more work.  A request arriving while nothing is in flight is submitted
 * at once so queue depth 1 does not wait for the bottom half.  The ring
 * fd is registered with the event loop (it polls readable when CQEs are
 * posted) and the busy-poll callback peeks at the CQ ring in user space.
 */
#include "qemu/osdep.h"
#include "block/raw-aio.h"

#ifdef CONFIG_LINUX_IO_URING

#include <liburing.h>

#define LURING_ENTRIES 256

typedef struct LuringRequest {
    Coroutine *co;
    ssize_t ret;
    bool done;
} LuringRequest;

struct LuringState {
    struct io_uring ring;
    AioContext *aio_context;
    QEMUBH *submit_bh;
    unsigned int pending;       /* SQEs prepared but not submitted */
    unsigned int in_flight;     /* submitted, CQE not yet seen */
    CoQueue full_queue;         /* waiting for a free SQ/CQ slot */
    bool reaping;
    AioSeqState seq;
};

static void luring_submit_pending(LuringState *s)
{
    int ret;

    while (s->pending) {
        ret = io_uring_submit(&s->ring);
        if (ret > 0) {
            s->pending -= MIN((unsigned int)ret, s->pending);
            s->in_flight += ret;
            continue;
        }
        if (ret == -EINTR) {
            continue;
        }
        /*
         * -EAGAIN/-EBUSY: the kernel is short of resources or the CQ
         * would overflow; completions will make room and we retry after
         * reaping.  Anything else we cannot recover from here either:
         * leave the SQEs queued for the next attempt.
         */
        break;
    }
}

static bool luring_process_completions(LuringState *s)
{
    struct io_uring_cqe *cqe;
    bool progress = false;

    if (s->reaping) {
        return false;
    }
    s->reaping = true;
    while (io_uring_peek_cqe(&s->ring, &cqe) == 0 && cqe) {
        LuringRequest *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        /* Release the slot before waking: the woken coroutine may
         * submit again. */
        io_uring_cqe_seen(&s->ring, cqe);
        s->in_flight--;
        progress = true;
        req->ret = res;
        req->done = true;
        aio_co_wake(req->co);
    }
    s->reaping = false;

    if (s->pending) {
        luring_submit_pending(s);
    }
    if (progress) {
        qemu_co_enter_next(&s->full_queue);
    }
    return progress;
}

static void luring_fd_read(void *opaque)
{
    luring_process_completions(opaque);
}

static bool luring_poll(void *opaque)
{
    LuringState *s = opaque;

    if (!io_uring_cq_ready(&s->ring)) {
        return false;
    }
    return luring_process_completions(s);
}

static void luring_submit_bh(void *opaque)
{
    luring_submit_pending(opaque);
}

ssize_t coroutine_fn luring_co_submit(LuringState *s, int fd,
                                      uint64_t offset, struct iovec *iov,
                                      int niov, QemuAioType type)
{
    LuringRequest req = {
        .co = qemu_coroutine_self(),
    };
    struct io_uring_sqe *sqe;

    if (type != QEMU_AIO_READ && type != QEMU_AIO_WRITE &&
        type != QEMU_AIO_FLUSH) {
        return -EINVAL;
    }

    /* Keep in_flight within the CQ size so completions never overflow. */
    for (;;) {
        if (s->in_flight + s->pending < LURING_ENTRIES) {
            sqe = io_uring_get_sqe(&s->ring);
            if (sqe) {
                break;
            }
        }
        qemu_co_queue_wait(&s->full_queue, NULL);
    }

    switch (type) {
    case QEMU_AIO_READ:
        io_uring_prep_readv(sqe, fd, iov, niov, offset);
        break;
    case QEMU_AIO_WRITE:
        io_uring_prep_writev(sqe, fd, iov, niov, offset);
        break;
    default:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, &req);
    s->pending++;

    if (!aio_seq_continues(&s->seq, fd, type, offset, iov, niov) ||
        (s->in_flight == 0 && s->pending == 1)) {
        luring_submit_pending(s);
        if (s->pending) {
            qemu_bh_schedule(s->submit_bh);    /* retry later */
        }
    } else if (!s->reaping) {
        qemu_bh_schedule(s->submit_bh);
    }

    while (!req.done) {
        qemu_coroutine_yield();
    }
    if (!qemu_co_queue_empty(&s->full_queue)) {
        qemu_co_queue_next(&s->full_queue);
    }
    return req.ret;
}

LuringState *luring_init(Error **errp)
{
    LuringState *s = g_new0(LuringState, 1);
    int ret;

    ret = io_uring_queue_init(LURING_ENTRIES, &s->ring, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "failed to init linux io_uring ring");
        g_free(s);
        return NULL;
    }
    qemu_co_queue_init(&s->full_queue);
    return s;
}

void luring_cleanup(LuringState *s)
{
    if (!s) {
        return;
    }
    assert(!s->aio_context);
    io_uring_queue_exit(&s->ring);
    g_free(s);
}

void luring_attach_aio_context(LuringState *s, AioContext *ctx)
{
    s->aio_context = ctx;
    s->submit_bh = aio_bh_new(ctx, luring_submit_bh, s);
    aio_set_fd_handler(ctx, s->ring.ring_fd, luring_fd_read, NULL,
                       luring_poll, s);
}

void luring_detach_aio_context(LuringState *s, AioContext *ctx)
{
    aio_set_fd_handler(ctx, s->ring.ring_fd, NULL, NULL, NULL, NULL);
    qemu_bh_delete(s->submit_bh);
    s->submit_bh = NULL;
    s->aio_context = NULL;
}

static const char luring_ctx_key = 0;

static void luring_ctx_destroy(void *data)
{
    LuringState *s = data;

    luring_detach_aio_context(s, s->aio_context);
    luring_cleanup(s);
}

LuringState *aio_get_linux_io_uring(AioContext *ctx, Error **errp)
{
    LuringState *s = aio_context_get_data(ctx, &luring_ctx_key);

    if (!s) {
        s = luring_init(errp);
        if (!s) {
            return NULL;
        }
        luring_attach_aio_context(s, ctx);
        aio_context_set_data(ctx, &luring_ctx_key, s, luring_ctx_destroy);
    }
    return s;
}

#else /* !CONFIG_LINUX_IO_URING */

LuringState *luring_init(Error **errp)
{
    error_setg(errp, "io_uring is not supported by this build");
    return NULL;
}

void luring_cleanup(LuringState *s)
{
}

void luring_attach_aio_context(LuringState *s, AioContext *ctx)
{
}

void luring_detach_aio_context(LuringState *s, AioContext *ctx)
{
}

ssize_t coroutine_fn luring_co_submit(LuringState *s, int fd,
                                      uint64_t offset, struct iovec *iov,
                                      int niov, QemuAioType type)
{
    return -ENOTSUP;
}

LuringState *aio_get_linux_io_uring(AioContext *ctx, Error **errp)
{
    return luring_init(errp);
}

#endif
