/*
 * The event loop proper: an epoll set per AioContext, an eventfd for
 * cross-thread wakeups, adaptive busy polling and aio_poll().
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "block/aio-int.h"
#include "qemu/coroutine_int.h"

/* Events taken per epoll_wait (on the stack: aio_poll may nest). */
#define AIO_MAX_EVENTS 64
/* Smallest useful busy-poll window; below it polling is switched off. */
#define AIO_POLL_MIN_NS 4096

static void QEMU_NORETURN aio_fatal(const char *what)
{
    fprintf(stderr, "aio: %s: %s\n", what, strerror(errno));
    abort();
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void aio_context_setup(AioContext *ctx)
{
    struct epoll_event ev = { .events = EPOLLIN };

    ctx->epollfd = epoll_create1(EPOLL_CLOEXEC);
    if (ctx->epollfd < 0) {
        aio_fatal("epoll_create1");
    }
    ctx->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ctx->notify_fd < 0) {
        aio_fatal("eventfd");
    }
    ctx->notifier.fd = ctx->notify_fd;
    ctx->notifier.events = EPOLLIN;
    ev.data.ptr = &ctx->notifier;
    if (epoll_ctl(ctx->epollfd, EPOLL_CTL_ADD, ctx->notify_fd, &ev) < 0) {
        aio_fatal("epoll_ctl(notifier)");
    }
}

void aio_context_cleanup(AioContext *ctx)
{
    AioHandler *h;

    assert(ctx->walking == 0);
    while ((h = ctx->handlers)) {
        ctx->handlers = h->next;
        g_free(h);
    }
    close(ctx->epollfd);
    close(ctx->notify_fd);
}

/* ---- notification -------------------------------------------------- */

void aio_notify(AioContext *ctx)
{
    /*
     * notified tells a poller that is about to sleep not to; the write
     * wakes one that already sleeps.  The exchange orders the caller's
     * earlier stores (a scheduled BH) before both.
     */
    if (__atomic_exchange_n(&ctx->notified, true, __ATOMIC_SEQ_CST)) {
        return;     /* an earlier notification is still pending */
    }
    if (__atomic_load_n(&ctx->notify_me, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        ssize_t r;

        do {
            r = write(ctx->notify_fd, &one, sizeof(one));
        } while (r < 0 && errno == EINTR);
        /* EAGAIN: the counter is saturated, the poller wakes anyway. */
    }
}

/* Called before running BHs so later notifications are not lost. */
static inline void aio_notify_accept(AioContext *ctx)
{
    if (__atomic_load_n(&ctx->notified, __ATOMIC_RELAXED)) {
        (void)__atomic_exchange_n(&ctx->notified, false, __ATOMIC_SEQ_CST);
    }
}

static void aio_notifier_drain(AioContext *ctx)
{
    uint64_t v;
    ssize_t r;

    do {
        r = read(ctx->notify_fd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
}

/* ---- fd handlers --------------------------------------------------- */

static AioHandler *find_handler(AioContext *ctx, int fd)
{
    AioHandler *h;

    for (h = ctx->handlers; h; h = h->next) {
        if (h->fd == fd && !h->deleted) {
            return h;
        }
    }
    return NULL;
}

static uint32_t handler_events(AioHandler *h)
{
    return (h->io_read ? EPOLLIN : 0) | (h->io_write ? EPOLLOUT : 0);
}

static void free_deleted_handlers(AioContext *ctx)
{
    AioHandler **ph = &ctx->handlers, *h;

    while ((h = *ph)) {
        if (h->deleted) {
            *ph = h->next;
            g_free(h);
        } else {
            ph = &h->next;
        }
    }
    ctx->have_deleted = false;
}

void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll,
                        void *opaque)
{
    AioHandler *h = find_handler(ctx, fd);
    struct epoll_event ev = { 0 };
    uint32_t events;

    if (!io_read && !io_write && !io_poll) {
        if (!h) {
            return;
        }
        if (epoll_ctl(ctx->epollfd, EPOLL_CTL_DEL, fd, &ev) < 0 &&
            errno != EBADF && errno != ENOENT) {
            aio_fatal("epoll_ctl(DEL)");
        }
        if (h->io_poll) {
            ctx->n_poll_handlers--;
        }
        h->deleted = true;
        /* A walking aio_poll may still hold a pointer to it. */
        if (ctx->walking == 0) {
            free_deleted_handlers(ctx);
        } else {
            ctx->have_deleted = true;
        }
        return;
    }

    if (!h) {
        h = g_new0(AioHandler, 1);
        h->fd = fd;
        h->io_read = io_read;
        h->io_write = io_write;
        h->io_poll = io_poll;
        h->opaque = opaque;
        h->events = handler_events(h);
        ev.events = h->events;
        ev.data.ptr = h;
        if (epoll_ctl(ctx->epollfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            fprintf(stderr, "aio: cannot watch fd %d: %s\n", fd,
                    strerror(errno));
            abort();
        }
        if (io_poll) {
            ctx->n_poll_handlers++;
        }
        h->next = ctx->handlers;
        ctx->handlers = h;
        return;
    }

    ctx->n_poll_handlers += !!io_poll - !!h->io_poll;
    h->io_read = io_read;
    h->io_write = io_write;
    h->io_poll = io_poll;
    h->opaque = opaque;
    events = handler_events(h);
    if (events != h->events) {
        ev.events = events;
        ev.data.ptr = h;
        if (epoll_ctl(ctx->epollfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
            aio_fatal("epoll_ctl(MOD)");
        }
        h->events = events;
    }
}

/* ---- polling ------------------------------------------------------- */

void aio_context_set_poll_ns(AioContext *ctx, int64_t max_ns)
{
    /* Start at the configured window; long waits shrink it again. */
    ctx->poll_max_ns = MAX(max_ns, 0);
    ctx->poll_ns = ctx->poll_max_ns;
}

/*
 * Spin on the io_poll callbacks (and on BHs scheduled by other threads)
 * until one of them has something or @deadline passes.  Returns true if
 * waiting is no longer needed.
 */
static bool aio_busy_poll(AioContext *ctx, int64_t deadline, bool *progress)
{
    do {
        AioHandler *h;

        for (h = ctx->handlers; h; h = h->next) {
            if (h->io_poll && !h->deleted && h->io_poll(h->opaque)) {
                *progress = true;
            }
        }
        if (*progress || __atomic_load_n(&ctx->notified, __ATOMIC_RELAXED) ||
            __atomic_load_n(&ctx->bh_pending, __ATOMIC_RELAXED)) {
            return true;
        }
        cpu_relax();
    } while (get_clock_ns() < deadline);
    return false;
}

/*
 * Adapt the window to how long we ended up waiting: a wait shorter than
 * the ceiling would have been caught by polling a bit longer, a longer
 * one means spinning is wasted CPU (an idle loop decays to no polling in
 * a few iterations).
 */
static void aio_poll_adjust(AioContext *ctx, int64_t block_ns)
{
    if (block_ns > ctx->poll_max_ns) {
        ctx->poll_ns /= 2;
        if (ctx->poll_ns < AIO_POLL_MIN_NS) {
            ctx->poll_ns = 0;
        }
    } else if (block_ns > ctx->poll_ns) {
        ctx->poll_ns = MIN(MAX(ctx->poll_ns * 2, AIO_POLL_MIN_NS),
                           ctx->poll_max_ns);
    }
}

/* ---- the loop ------------------------------------------------------ */

static int aio_epoll_wait(AioContext *ctx, struct epoll_event *events,
                          int64_t timeout_ns)
{
    int n, ms;

#ifdef __GLIBC_PREREQ
#if __GLIBC_PREREQ(2, 35)
    /* epoll_pwait2 takes a timespec: no rounding of timer deadlines. */
    static bool no_pwait2;

    if (timeout_ns > 0 && !__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
        struct timespec ts = {
            .tv_sec = timeout_ns / 1000000000,
            .tv_nsec = timeout_ns % 1000000000,
        };

        n = epoll_pwait2(ctx->epollfd, events, AIO_MAX_EVENTS, &ts, NULL);
        if (n >= 0) {
            return n;
        }
        if (errno == EINTR) {
            return 0;
        }
        if (errno != ENOSYS) {
            aio_fatal("epoll_pwait2");
        }
        __atomic_store_n(&no_pwait2, true, __ATOMIC_RELAXED);
    }
#endif
#endif
    if (timeout_ns < 0) {
        ms = -1;
    } else {
        /* Round up: waking early would just spin until the deadline. */
        ms = MIN(DIV_ROUND_UP(timeout_ns, 1000000), (int64_t)INT_MAX);
    }
    n = epoll_wait(ctx->epollfd, events, AIO_MAX_EVENTS, ms);
    if (n < 0) {
        if (errno == EINTR) {
            return 0;
        }
        aio_fatal("epoll_wait");
    }
    return n;
}

static bool aio_dispatch_event(AioContext *ctx, struct epoll_event *ev)
{
    AioHandler *h = ev->data.ptr;
    uint32_t e = ev->events;
    bool progress = false;

    if (h == &ctx->notifier) {
        aio_notifier_drain(ctx);
        return false;
    }
    if (h->deleted) {
        return false;
    }
    if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && h->io_read) {
        h->io_read(h->opaque);
        progress = true;
    }
    /* The read handler may have removed or replaced this handler. */
    if ((e & (EPOLLOUT | EPOLLERR)) && !h->deleted && h->io_write) {
        h->io_write(h->opaque);
        progress = true;
    }
    return progress;
}

bool aio_poll(AioContext *ctx, bool blocking)
{
    struct epoll_event events[AIO_MAX_EVENTS];
    bool progress = false, polling = false;
    int64_t timeout_ns = 0, start_ns = 0;
    Coroutine *self = qemu_coroutine_self();
    int i, n;

    ctx->walking++;
    if (unlikely(self)) {
        self->in_aio_poll++;
    }

    /* Work that is already due costs no system call. */
    aio_notify_accept(ctx);
    progress |= aio_timers_run(ctx);
    progress |= aio_bh_poll(ctx);
    if (progress) {
        blocking = false;
    }

    if (blocking && ctx->poll_max_ns &&
        (ctx->n_poll_handlers || ctx->poll_inflight)) {
        polling = true;
        start_ns = get_clock_ns();
        if (ctx->poll_ns) {
            int64_t deadline = start_ns + ctx->poll_ns;
            int64_t timer = aio_timers_deadline_ns(ctx);

            if (timer >= 0) {
                deadline = MIN(deadline, start_ns + timer);
            }
            if (aio_busy_poll(ctx, deadline, &progress)) {
                blocking = false;
            }
        }
    }

    if (blocking) {
        /* Pairs with aio_notify(): either we see notified or it writes. */
        __atomic_store_n(&ctx->notify_me, true, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctx->notified, __ATOMIC_SEQ_CST) ||
            aio_bh_pending(ctx)) {
            timeout_ns = 0;
        } else {
            timeout_ns = aio_timers_deadline_ns(ctx);
        }
    }

    n = aio_epoll_wait(ctx, events, timeout_ns);

    if (blocking) {
        __atomic_store_n(&ctx->notify_me, false, __ATOMIC_RELAXED);
    }
    if (polling && blocking) {
        aio_poll_adjust(ctx, get_clock_ns() - start_ns);
    }

    for (i = 0; i < n; i++) {
        progress |= aio_dispatch_event(ctx, &events[i]);
    }

    aio_notify_accept(ctx);
    progress |= aio_timers_run(ctx);
    progress |= aio_bh_poll(ctx);

    if (unlikely(self)) {
        self->in_aio_poll--;
    }
    if (--ctx->walking == 0 && ctx->have_deleted) {
        free_deleted_handlers(ctx);
    }
    return progress;
}
