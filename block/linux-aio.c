/*
 * Linux native AIO (libaio) back end for the file protocol driver.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Requests live in the submitting coroutine's stack frame: nothing is
 * allocated per request.  Submissions are queued and handed to the
 * kernel in one io_submit() per loop iteration (from a bottom half, or
 * right after reaping completions); a request arriving while nothing is
 * in flight goes out at once so queue depth 1 pays no extra latency.
 * Completions are signalled through an eventfd, but reaped by reading
 * the completion ring that the kernel maps into our address space, so
 * the busy-poll callback finds them without any system call.
 */
#include "qemu/osdep.h"
#include "block/raw-aio.h"

#ifdef CONFIG_LINUX_AIO

#include <libaio.h>
#include <sys/eventfd.h>

/* Enough for any queue depth the tools use; more waiters queue up. */
#define LAIO_MAX_EVENTS 1024

typedef struct LaioRequest {
    struct iocb iocb;
    Coroutine *co;
    ssize_t ret;
    bool done;
    struct LaioRequest *next;   /* submission queue link */
} LaioRequest;

struct LinuxAioState {
    io_context_t io_ctx;
    int efd;
    AioContext *aio_context;
    QEMUBH *submit_bh;

    /* Not yet submitted, in FIFO order. */
    LaioRequest *pending_head, **pending_tail;
    unsigned int pending;
    unsigned int in_flight;     /* submitted, not yet completed */
    unsigned int max_events;    /* io_setup() size: in_flight limit */
    AioSeqState seq;
    /* Coroutines waiting because LAIO_MAX_EVENTS are in flight. */
    CoQueue full_queue;
    bool reaping;
};

/*
 * The completion ring as the kernel lays it out at the address of the
 * io_context_t (fs/aio.c, struct aio_ring).  Stable user ABI.
 */
struct LaioRing {
    unsigned id;
    unsigned nr;
    unsigned head;
    unsigned tail;
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length;
    struct io_event events[];
};
#define LAIO_RING_MAGIC 0xa10a10a1

static void laio_complete(LinuxAioState *s, struct io_event *ev)
{
    LaioRequest *req = container_of(ev->obj, LaioRequest, iocb);
    long res = (long)ev->res;

    s->in_flight--;
    req->ret = res;
    req->done = true;
    aio_co_wake(req->co);
}

/* Returns the number of events consumed from the shared ring, -1 if the
 * ring cannot be read from user space. */
static int laio_reap_ring(LinuxAioState *s)
{
    struct LaioRing *ring = (struct LaioRing *)s->io_ctx;
    int n = 0;

    if (ring->magic != LAIO_RING_MAGIC || ring->incompat_features != 0) {
        return -1;
    }
    for (;;) {
        unsigned head = ring->head;
        unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        struct io_event ev;

        if (head == tail) {
            break;
        }
        ev = ring->events[head];
        /* Publish the slot as free before waking: the woken coroutine
         * may submit again and this handler may be re-entered. */
        __atomic_store_n(&ring->head, (head + 1) % ring->nr,
                         __ATOMIC_RELEASE);
        n++;
        laio_complete(s, &ev);
    }
    return n;
}

static void laio_submit_pending(LinuxAioState *s);

static bool laio_process_completions(LinuxAioState *s)
{
    bool progress = false;
    int n;

    if (s->reaping) {
        return false;
    }
    s->reaping = true;
    n = laio_reap_ring(s);
    if (n < 0) {
        /* Fallback: the system call (zero timeout, never blocks). */
        struct io_event events[64];
        struct timespec ts = { 0, 0 };
        int i;

        do {
            n = io_getevents(s->io_ctx, 0, ARRAY_SIZE(events), events, &ts);
            for (i = 0; i < n; i++) {
                laio_complete(s, &events[i]);
            }
            progress |= n > 0;
        } while (n == ARRAY_SIZE(events));
    } else {
        progress = n > 0;
    }
    s->reaping = false;

    /* Woken coroutines queued new requests: send them now rather than
     * after another loop iteration. */
    if (s->pending) {
        laio_submit_pending(s);
    }
    if (progress) {
        qemu_co_enter_next(&s->full_queue);
    }
    return progress;
}

static void laio_efd_read(void *opaque)
{
    LinuxAioState *s = opaque;
    uint64_t val;

    /* Clear the counter; completions are found in the ring. */
    if (read(s->efd, &val, sizeof(val)) < 0 && errno != EAGAIN) {
        return;
    }
    laio_process_completions(s);
}

static bool laio_poll(void *opaque)
{
    LinuxAioState *s = opaque;
    struct LaioRing *ring = (struct LaioRing *)s->io_ctx;

    if (ring->magic == LAIO_RING_MAGIC &&
        ring->head == __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE)) {
        return false;
    }
    return laio_process_completions(s);
}

static void laio_fail_request(LinuxAioState *s, LaioRequest *req, int err)
{
    req->ret = err;
    req->done = true;
    /* The submitter itself notices done without being woken. */
    if (req->co != qemu_coroutine_self()) {
        aio_co_wake(req->co);
    }
}

static void laio_submit_pending(LinuxAioState *s)
{
    while (s->pending) {
        struct iocb *iocbs[64];
        LaioRequest *req = s->pending_head;
        int n = 0, ret, i;

        while (req && n < ARRAY_SIZE(iocbs)) {
            iocbs[n++] = &req->iocb;
            req = req->next;
        }
        ret = io_submit(s->io_ctx, n, iocbs);
        if (ret == -EAGAIN) {
            /* Kernel queue full: retry when something completes. */
            if (s->in_flight) {
                return;
            }
            ret = -EAGAIN;
        }
        if (ret < 0) {
            /* The first request is bad; fail it and go on with the rest. */
            req = s->pending_head;
            s->pending_head = req->next;
            s->pending--;
            laio_fail_request(s, req, ret);
            continue;
        }
        for (i = 0; i < ret; i++) {
            s->pending_head = s->pending_head->next;
        }
        s->pending -= ret;
        s->in_flight += ret;
    }
    s->pending_head = NULL;
    s->pending_tail = &s->pending_head;
}

static void laio_submit_bh(void *opaque)
{
    LinuxAioState *s = opaque;

    laio_submit_pending(s);
}

ssize_t coroutine_fn laio_co_submit(LinuxAioState *s, int fd,
                                    uint64_t offset, struct iovec *iov,
                                    int niov, QemuAioType type)
{
    LaioRequest req = {
        .co = qemu_coroutine_self(),
    };

    while (s->in_flight + s->pending >= s->max_events) {
        qemu_co_queue_wait(&s->full_queue, NULL);
    }

    switch (type) {
    case QEMU_AIO_READ:
        io_prep_preadv(&req.iocb, fd, iov, niov, offset);
        break;
    case QEMU_AIO_WRITE:
        io_prep_pwritev(&req.iocb, fd, iov, niov, offset);
        break;
    case QEMU_AIO_FLUSH:
        io_prep_fdsync(&req.iocb, fd);
        break;
    default:
        return -EINVAL;
    }
    io_set_eventfd(&req.iocb, s->efd);

    req.next = NULL;
    *s->pending_tail = &req;
    s->pending_tail = &req.next;
    s->pending++;

    if (!aio_seq_continues(&s->seq, fd, type, offset, iov, niov) ||
        (s->in_flight == 0 && s->pending == 1)) {
        laio_submit_pending(s);
    } else if (!s->reaping) {
        qemu_bh_schedule(s->submit_bh);
    }

    while (!req.done) {
        qemu_coroutine_yield();
    }
    if (s->in_flight + s->pending < s->max_events) {
        qemu_co_queue_next(&s->full_queue);
    }
    return req.ret;
}

LinuxAioState *laio_init(Error **errp)
{
    LinuxAioState *s = g_new0(LinuxAioState, 1);
    int ret;

    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        error_setg_errno(errp, errno, "failed to create eventfd");
        g_free(s);
        return NULL;
    }
    s->max_events = LAIO_MAX_EVENTS;
    ret = io_setup(s->max_events, &s->io_ctx);
    if (ret == -EAGAIN) {
        /* fs.aio-max-nr nearly used up: make do with a smaller queue. */
        s->max_events = 128;
        ret = io_setup(s->max_events, &s->io_ctx);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "failed to create linux AIO context");
        close(s->efd);
        g_free(s);
        return NULL;
    }
    s->pending_tail = &s->pending_head;
    qemu_co_queue_init(&s->full_queue);
    return s;
}

void laio_cleanup(LinuxAioState *s)
{
    if (!s) {
        return;
    }
    assert(!s->aio_context);
    io_destroy(s->io_ctx);
    close(s->efd);
    g_free(s);
}

void laio_attach_aio_context(LinuxAioState *s, AioContext *ctx)
{
    s->aio_context = ctx;
    s->submit_bh = aio_bh_new(ctx, laio_submit_bh, s);
    aio_set_fd_handler(ctx, s->efd, laio_efd_read, NULL, laio_poll, s);
}

void laio_detach_aio_context(LinuxAioState *s, AioContext *ctx)
{
    aio_set_fd_handler(ctx, s->efd, NULL, NULL, NULL, NULL);
    qemu_bh_delete(s->submit_bh);
    s->submit_bh = NULL;
    s->aio_context = NULL;
}

static const char laio_ctx_key = 0;

static void laio_ctx_destroy(void *data)
{
    LinuxAioState *s = data;

    laio_detach_aio_context(s, s->aio_context);
    laio_cleanup(s);
}

LinuxAioState *aio_get_linux_aio(AioContext *ctx, Error **errp)
{
    LinuxAioState *s = aio_context_get_data(ctx, &laio_ctx_key);

    if (!s) {
        s = laio_init(errp);
        if (!s) {
            return NULL;
        }
        laio_attach_aio_context(s, ctx);
        aio_context_set_data(ctx, &laio_ctx_key, s, laio_ctx_destroy);
    }
    return s;
}

#else /* !CONFIG_LINUX_AIO */

LinuxAioState *laio_init(Error **errp)
{
    error_setg(errp, "Linux AIO is not supported by this build");
    return NULL;
}

void laio_cleanup(LinuxAioState *s)
{
}

void laio_attach_aio_context(LinuxAioState *s, AioContext *ctx)
{
}

void laio_detach_aio_context(LinuxAioState *s, AioContext *ctx)
{
}

ssize_t coroutine_fn laio_co_submit(LinuxAioState *s, int fd,
                                    uint64_t offset, struct iovec *iov,
                                    int niov, QemuAioType type)
{
    return -ENOTSUP;
}

LinuxAioState *aio_get_linux_aio(AioContext *ctx, Error **errp)
{
    return laio_init(errp);
}

#endif
