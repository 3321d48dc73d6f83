/*
 * AioContext: the event loop.  One per thread that does I/O (the main
 * thread has one from qemu_init_main_loop(); exports may create more).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A loop iteration (aio_poll) runs, in this order: expired timers,
 * scheduled bottom halves, ready fd handlers; it sleeps in epoll only
 * when asked to block and nothing is pending.  Completion back ends
 * (linux-aio, io_uring, the thread pool) register an fd handler and may
 * register a "poll" callback that is tried before sleeping.
 */
#ifndef QEMU_AIO_H
#define QEMU_AIO_H

#include "qemu/coroutine.h"

typedef struct QEMUBH QEMUBH;
typedef struct QEMUTimer QEMUTimer;
typedef struct ThreadPool ThreadPool;
typedef struct LinuxAioState LinuxAioState;
typedef struct LuringState LuringState;

typedef void QEMUBHFunc(void *opaque);
typedef void IOHandler(void *opaque);
/*
 * Busy-poll callback: checks for completions and processes them itself
 * (like the fd's read handler would); returns true if it found any.
 */
typedef bool AioPollFn(void *opaque);
typedef void QEMUTimerCB(void *opaque);

/* The calling thread's context (main context until set otherwise). */
AioContext *qemu_get_current_aio_context(void);
AioContext *qemu_get_aio_context(void);   /* the main loop's */
void qemu_init_main_loop(void);           /* idempotent */

AioContext *aio_context_new(void);
void aio_context_unref(AioContext *ctx);
/* Make @ctx the calling thread's current context. */
void aio_context_set_current(AioContext *ctx);

/*
 * Run one loop iteration.  With @blocking, waits until at least one event
 * has been handled (returns false only if there is nothing that could
 * ever wake it).  Returns true if progress was made.
 */
bool aio_poll(AioContext *ctx, bool blocking);

/* Wake a blocking aio_poll() from another thread or a signal handler. */
void aio_notify(AioContext *ctx);

/* Poll until @cond is true (used by synchronous wrappers). */
#define AIO_WAIT_WHILE(ctx, cond) do {              \
        while ((cond)) {                            \
            aio_poll((ctx), true);                  \
        }                                           \
    } while (0)

/* ---- bottom halves: callbacks run at the next loop iteration -------- */
QEMUBH *aio_bh_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque);
void qemu_bh_schedule(QEMUBH *bh);        /* thread safe */
void qemu_bh_cancel(QEMUBH *bh);
void qemu_bh_delete(QEMUBH *bh);
/* Allocate, schedule and free automatically after it ran once. */
void aio_bh_schedule_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque);

/* ---- fd handlers ---------------------------------------------------- */
/*
 * Register/replace/remove (both NULL) handlers for @fd.  @io_poll, if not
 * NULL, is called in busy-poll mode before blocking; it must be cheap.
 */
void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll,
                        void *opaque);

/* ---- timers (CLOCK_MONOTONIC, nanoseconds) -------------------------- */
/* Not thread safe: arm, delete and free them in @ctx's thread only. */
QEMUTimer *aio_timer_new(AioContext *ctx, QEMUTimerCB *cb, void *opaque);
void timer_mod_ns(QEMUTimer *t, int64_t expire_ns);  /* absolute */
void timer_del(QEMUTimer *t);
void timer_free(QEMUTimer *t);
bool timer_pending(QEMUTimer *t);

/*
 * Busy-poll budget: how long aio_poll spins on io_poll callbacks before
 * sleeping.  0 disables polling.
 */
void aio_context_set_poll_ns(AioContext *ctx, int64_t max_ns);

/* ---- per-context I/O back ends (created lazily) ---------------------- */
ThreadPool *aio_get_thread_pool(AioContext *ctx);
/* Implemented in block/linux-aio.c and block/io_uring.c on top of
 * aio_context_get_data(). */
LinuxAioState *aio_get_linux_aio(AioContext *ctx, Error **errp);
LuringState *aio_get_linux_io_uring(AioContext *ctx, Error **errp);

/* ---- thread pool: run blocking work off the loop thread -------------- */
typedef int ThreadPoolFunc(void *opaque);
/*
 * Run func(opaque) in a worker thread; the calling coroutine yields until
 * it returns, then gets its return value.
 */
int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *opaque);
/* Callback form: cb(opaque, ret) runs in the loop thread afterwards. */
typedef void ThreadPoolCompletion(void *opaque, int ret);
void thread_pool_submit_aio(ThreadPool *pool, ThreadPoolFunc *func,
                            void *arg, ThreadPoolCompletion *cb,
                            void *opaque);
void thread_pool_set_max_workers(ThreadPool *pool, int max);

/*
 * Per-context storage for back ends that live outside util/ (linux-aio,
 * io_uring in block/): get returns NULL until set; @destroy runs when the
 * context is freed.  @key is any unique address.
 */
void *aio_context_get_data(AioContext *ctx, const void *key);
void aio_context_set_data(AioContext *ctx, const void *key, void *data,
                          void (*destroy)(void *data));

#endif
