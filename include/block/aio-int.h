/*
 * AioContext internals shared by util/async.c, util/aio-posix.c,
 * util/thread-pool.c and util/coroutine-sleep.c.  Nothing outside util/
 * should include this.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_AIO_INT_H
#define BLOCK_AIO_INT_H

#include "block/aio.h"

typedef struct AioHandler {
    int fd;
    IOHandler *io_read;
    IOHandler *io_write;
    AioPollFn *io_poll;
    void *opaque;
    uint32_t events;            /* mask currently registered with epoll */
    bool deleted;               /* freed once no aio_poll is walking */
    struct AioHandler *next;
} AioHandler;

struct QEMUTimer {
    AioContext *ctx;
    QEMUTimerCB *cb;
    void *opaque;
    int64_t expire_ns;          /* -1 when not pending */
    QEMUTimer *next;            /* sorted by expire_ns, then arrival */
};

typedef struct AioContextData {
    const void *key;
    void *data;
    void (*destroy)(void *data);
    struct AioContextData *next;
} AioContextData;

struct AioContext {
    int refcnt;

    /* ---- aio-posix.c: epoll set and the notifier ---- */
    int epollfd;
    int notify_fd;              /* eventfd written by aio_notify() */
    /* Set while the owner may sleep in epoll: others must write the fd. */
    bool notify_me;
    /* notify_fd already written and not yet drained: skip the write. */
    bool notified;
    AioHandler notifier;
    AioHandler *handlers;       /* includes deleted ones while walking */
    int walking;                /* nesting depth of handler walks */
    bool have_deleted;
    int n_poll_handlers;

    /* Adaptive busy polling (see aio_poll()). */
    int64_t poll_max_ns;
    int64_t poll_ns;            /* current window, 0..poll_max_ns */
    /* Work whose completion arrives as a BH (thread pool): worth polling. */
    int poll_inflight;

    /* ---- async.c: bottom halves ---- */
    QEMUBH *bh_pending;         /* lock-free LIFO, pushed by any thread */
    /*
     * Owner thread: BHs taken off bh_pending and not yet run, in
     * scheduling order.  Kept in ctx so that an aio_poll() nested in a
     * callback runs them instead of leaving them stranded.
     */
    QEMUBH *bh_ready_head;
    QEMUBH *bh_ready_tail;

    /* ---- async.c: timers (owner thread only) ---- */
    QEMUTimer *timers;

    /* ---- async.c: aio_co_schedule() ---- */
    Coroutine *co_scheduled;    /* lock-free LIFO, pushed by any thread */
    Coroutine *co_ready_head;   /* taken off co_scheduled, FIFO */
    Coroutine *co_ready_tail;
    QEMUBH *co_schedule_bh;

    ThreadPool *thread_pool;
    AioContextData *data;
};

/* aio-posix.c */
void aio_context_setup(AioContext *ctx);
void aio_context_cleanup(AioContext *ctx);

/* async.c */
bool aio_bh_poll(AioContext *ctx);
bool aio_bh_pending(AioContext *ctx);
bool aio_timers_run(AioContext *ctx);
/* Nanoseconds until the next timer (0 if expired), -1 if none. */
int64_t aio_timers_deadline_ns(AioContext *ctx);
/* Initialise caller-owned timer storage (no allocation). */
void aio_timer_init(AioContext *ctx, QEMUTimer *t, QEMUTimerCB *cb,
                    void *opaque);

/* thread-pool.c */
ThreadPool *thread_pool_new(AioContext *ctx);
void thread_pool_free(ThreadPool *pool);

#endif
