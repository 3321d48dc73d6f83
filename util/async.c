/*
 * AioContext life cycle, bottom halves, timers, coroutine scheduling and
 * per-context data.  The epoll side of the loop is in aio-posix.c.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <sched.h>

#include "block/aio-int.h"
#include "qemu/coroutine_int.h"

/*
 * Default busy-poll ceiling.  The loop only spins while completions are
 * expected soon (the window adapts to the observed wait times and drops
 * to zero when waits are long), so an idle loop sleeps in epoll.  32 us
 * covers a fast NVMe or page-cache round trip.
 */
#define AIO_POLL_MAX_NS_DEFAULT 32768

/* ---- contexts ------------------------------------------------------ */

static AioContext *main_ctx;
static gsize main_ctx_once;
static __thread CO_TLS_MODEL AioContext *current_ctx;

static void co_schedule_bh_cb(void *opaque);

AioContext *aio_context_new(void)
{
    AioContext *ctx = g_new0(AioContext, 1);

    ctx->refcnt = 1;
    ctx->poll_max_ns = AIO_POLL_MAX_NS_DEFAULT;
    aio_context_setup(ctx);
    ctx->co_schedule_bh = aio_bh_new(ctx, co_schedule_bh_cb, ctx);
    return ctx;
}

void qemu_init_main_loop(void)
{
    if (g_once_init_enter(&main_ctx_once)) {
        __atomic_store_n(&main_ctx, aio_context_new(), __ATOMIC_RELEASE);
        g_once_init_leave(&main_ctx_once, 1);
    }
}

AioContext *qemu_get_aio_context(void)
{
    AioContext *ctx = __atomic_load_n(&main_ctx, __ATOMIC_ACQUIRE);

    if (unlikely(!ctx)) {
        qemu_init_main_loop();
        ctx = __atomic_load_n(&main_ctx, __ATOMIC_ACQUIRE);
    }
    return ctx;
}

AioContext *qemu_get_current_aio_context(void)
{
    AioContext *ctx = current_ctx;

    return ctx ? ctx : qemu_get_aio_context();
}

void aio_context_set_current(AioContext *ctx)
{
    current_ctx = ctx;
}

static void bh_free_pending(AioContext *ctx);

static void aio_context_free(AioContext *ctx)
{
    AioContextData *d;
    QEMUTimer *t;

    /* Back ends first: they may still remove fd handlers and BHs. */
    while ((d = ctx->data)) {
        ctx->data = d->next;
        if (d->destroy) {
            d->destroy(d->data);
        }
        g_free(d);
    }
    if (ctx->thread_pool) {
        thread_pool_free(ctx->thread_pool);
        ctx->thread_pool = NULL;
    }
    qemu_bh_delete(ctx->co_schedule_bh);
    bh_free_pending(ctx);
    while ((t = ctx->timers)) {
        ctx->timers = t->next;
        t->next = NULL;
        t->expire_ns = -1;
    }
    aio_context_cleanup(ctx);
    if (current_ctx == ctx) {
        current_ctx = NULL;
    }
    g_free(ctx);
}

void aio_context_unref(AioContext *ctx)
{
    if (__atomic_sub_fetch(&ctx->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        assert(ctx != __atomic_load_n(&main_ctx, __ATOMIC_ACQUIRE));
        aio_context_free(ctx);
    }
}

/* ---- per-context data ------------------------------------------------ */

void *aio_context_get_data(AioContext *ctx, const void *key)
{
    AioContextData *d;

    for (d = ctx->data; d; d = d->next) {
        if (d->key == key) {
            return d->data;
        }
    }
    return NULL;
}

void aio_context_set_data(AioContext *ctx, const void *key, void *data,
                          void (*destroy)(void *data))
{
    AioContextData **pd, *d;

    for (pd = &ctx->data; (d = *pd); pd = &d->next) {
        if (d->key == key) {
            break;
        }
    }
    if (d) {
        /* Replacing: the old value is released like at context free. */
        void *old = d->data;
        void (*old_destroy)(void *) = d->destroy;

        if (data) {
            d->data = data;
            d->destroy = destroy;
        } else {
            *pd = d->next;
            g_free(d);
        }
        if (old != data && old_destroy) {
            old_destroy(old);
        }
        return;
    }
    if (!data) {
        return;
    }
    /* Prepend: destroy callbacks then run newest first. */
    d = g_new0(AioContextData, 1);
    d->key = key;
    d->data = data;
    d->destroy = destroy;
    d->next = ctx->data;
    ctx->data = d;
}

ThreadPool *aio_get_thread_pool(AioContext *ctx)
{
    if (!ctx->thread_pool) {
        ctx->thread_pool = thread_pool_new(ctx);
    }
    return ctx->thread_pool;
}

/* ---- bottom halves ------------------------------------------------- */

enum {
    BH_SCHEDULED = 1,   /* should run (cleared by cancel) */
    BH_ENQUEUED = 2,    /* linked on bh_pending or a slice */
    BH_DELETED = 4,     /* free when taken off the list */
    BH_ONESHOT = 8,     /* free after running */
};

struct QEMUBH {
    AioContext *ctx;
    QEMUBHFunc *cb;
    void *opaque;
    QEMUBH *next;
    unsigned int flags;
};

QEMUBH *aio_bh_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    QEMUBH *bh = g_new0(QEMUBH, 1);

    bh->ctx = ctx;
    bh->cb = cb;
    bh->opaque = opaque;
    return bh;
}

static void bh_enqueue(QEMUBH *bh, unsigned int new_flags)
{
    AioContext *ctx = bh->ctx;
    unsigned int old;
    QEMUBH *head;

    old = __atomic_fetch_or(&bh->flags, new_flags | BH_ENQUEUED,
                            __ATOMIC_SEQ_CST);
    if (old & BH_ENQUEUED) {
        /* Still linked (maybe cancelled): the runner will see the flag. */
        return;
    }
    head = __atomic_load_n(&ctx->bh_pending, __ATOMIC_RELAXED);
    do {
        bh->next = head;
    } while (!__atomic_compare_exchange_n(&ctx->bh_pending, &head, bh, true,
                                          __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    aio_notify(ctx);
}

void qemu_bh_schedule(QEMUBH *bh)
{
    bh_enqueue(bh, BH_SCHEDULED);
}

void aio_bh_schedule_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    QEMUBH *bh = aio_bh_new(ctx, cb, opaque);

    bh_enqueue(bh, BH_SCHEDULED | BH_ONESHOT);
}

void qemu_bh_cancel(QEMUBH *bh)
{
    __atomic_fetch_and(&bh->flags, ~BH_SCHEDULED, __ATOMIC_SEQ_CST);
}

void qemu_bh_delete(QEMUBH *bh)
{
    unsigned int old;

    if (!bh) {
        return;
    }
    old = __atomic_fetch_or(&bh->flags, BH_DELETED, __ATOMIC_SEQ_CST);
    if (!(old & BH_ENQUEUED)) {
        g_free(bh);
    }
}

bool aio_bh_pending(AioContext *ctx)
{
    return __atomic_load_n(&ctx->bh_pending, __ATOMIC_ACQUIRE) ||
           ctx->bh_ready_head;
}

/* Runs the BHs scheduled so far, in scheduling order. */
bool aio_bh_poll(AioContext *ctx)
{
    QEMUBH *list, *bh;
    bool progress = false;

    if (!__atomic_load_n(&ctx->bh_pending, __ATOMIC_RELAXED) &&
        !ctx->bh_ready_head) {
        return false;
    }
    list = __atomic_exchange_n(&ctx->bh_pending, NULL, __ATOMIC_ACQUIRE);
    if (list) {
        QEMUBH *rev = NULL, *tail = list;

        while (list) {
            QEMUBH *next = list->next;

            list->next = rev;
            rev = list;
            list = next;
        }
        if (ctx->bh_ready_tail) {
            ctx->bh_ready_tail->next = rev;
        } else {
            ctx->bh_ready_head = rev;
        }
        ctx->bh_ready_tail = tail;
    }

    /* BHs scheduled meanwhile go to bh_pending: this loop terminates. */
    while ((bh = ctx->bh_ready_head)) {
        unsigned int old;

        /* Unlink before clearing ENQUEUED: a reschedule relinks it. */
        ctx->bh_ready_head = bh->next;
        if (!ctx->bh_ready_head) {
            ctx->bh_ready_tail = NULL;
        }
        bh->next = NULL;
        old = __atomic_fetch_and(&bh->flags, ~(BH_SCHEDULED | BH_ENQUEUED),
                                 __ATOMIC_SEQ_CST);
        if (old & BH_DELETED) {
            g_free(bh);
            continue;
        }
        if (old & BH_SCHEDULED) {
            /* Oneshot BHs are private: nobody else can touch them. */
            bool oneshot = old & BH_ONESHOT;

            progress = true;
            bh->cb(bh->opaque);
            if (oneshot) {
                g_free(bh);
            }
        }
    }
    return progress;
}

/* Context teardown: free what only the list still references. */
static void bh_free_pending(AioContext *ctx)
{
    QEMUBH *bh = __atomic_exchange_n(&ctx->bh_pending, NULL,
                                     __ATOMIC_ACQUIRE);

    assert(!ctx->bh_ready_head);
    while (bh) {
        QEMUBH *next = bh->next;
        unsigned int old = __atomic_fetch_and(&bh->flags, ~BH_ENQUEUED,
                                              __ATOMIC_SEQ_CST);

        if (old & (BH_DELETED | BH_ONESHOT)) {
            g_free(bh);
        }
        bh = next;
    }
}

/* ---- timers -------------------------------------------------------- */

void aio_timer_init(AioContext *ctx, QEMUTimer *t, QEMUTimerCB *cb,
                    void *opaque)
{
    t->ctx = ctx;
    t->cb = cb;
    t->opaque = opaque;
    t->expire_ns = -1;
    t->next = NULL;
}

QEMUTimer *aio_timer_new(AioContext *ctx, QEMUTimerCB *cb, void *opaque)
{
    QEMUTimer *t = g_new(QEMUTimer, 1);

    aio_timer_init(ctx, t, cb, opaque);
    return t;
}

bool timer_pending(QEMUTimer *t)
{
    return t->expire_ns >= 0;
}

void timer_del(QEMUTimer *t)
{
    QEMUTimer **pt;

    if (t->expire_ns < 0) {
        return;
    }
    for (pt = &t->ctx->timers; *pt; pt = &(*pt)->next) {
        if (*pt == t) {
            *pt = t->next;
            break;
        }
    }
    t->next = NULL;
    t->expire_ns = -1;
}

void timer_mod_ns(QEMUTimer *t, int64_t expire_ns)
{
    QEMUTimer **pt;

    timer_del(t);
    if (expire_ns < 0) {
        expire_ns = 0;
    }
    /* Equal deadlines fire in the order they were set. */
    for (pt = &t->ctx->timers; *pt; pt = &(*pt)->next) {
        if ((*pt)->expire_ns > expire_ns) {
            break;
        }
    }
    t->expire_ns = expire_ns;
    t->next = *pt;
    *pt = t;
}

void timer_free(QEMUTimer *t)
{
    if (t) {
        timer_del(t);
        g_free(t);
    }
}

int64_t aio_timers_deadline_ns(AioContext *ctx)
{
    int64_t delta;

    if (!ctx->timers) {
        return -1;
    }
    delta = ctx->timers->expire_ns - get_clock_ns();
    return delta > 0 ? delta : 0;
}

bool aio_timers_run(AioContext *ctx)
{
    QEMUTimer *t;
    int64_t now;
    bool progress = false;

    if (!ctx->timers) {
        return false;
    }
    now = get_clock_ns();
    while ((t = ctx->timers) && t->expire_ns <= now) {
        ctx->timers = t->next;
        t->next = NULL;
        t->expire_ns = -1;
        /* The callback may re-arm or free the timer. */
        t->cb(t->opaque);
        progress = true;
    }
    return progress;
}

/* ---- coroutine scheduling ------------------------------------------ */

static void co_schedule_bh_cb(void *opaque)
{
    AioContext *ctx = opaque;
    Coroutine *list, *co;

    list = __atomic_exchange_n(&ctx->co_scheduled, NULL, __ATOMIC_ACQUIRE);
    if (list) {
        Coroutine *rev = NULL, *tail = list;

        while (list) {
            Coroutine *next = list->co_scheduled_next;

            list->co_scheduled_next = rev;
            rev = list;
            list = next;
        }
        if (ctx->co_ready_tail) {
            ctx->co_ready_tail->co_scheduled_next = rev;
        } else {
            ctx->co_ready_head = rev;
        }
        ctx->co_ready_tail = tail;
    }

    while ((co = ctx->co_ready_head)) {
        ctx->co_ready_head = co->co_scheduled_next;
        if (!ctx->co_ready_head) {
            ctx->co_ready_tail = NULL;
        } else {
            /* Let a nested aio_poll() run the rest. */
            qemu_bh_schedule(ctx->co_schedule_bh);
        }
        co->co_scheduled_next = NULL;
        /*
         * A coroutine moving here from another thread schedules itself
         * and then yields: wait for that thread to finish switching it
         * out.  (Still running in this context would be a real re-entry;
         * the enter below aborts on it.)
         */
        while (__atomic_load_n(&co->caller, __ATOMIC_ACQUIRE) &&
               __atomic_load_n(&co->ctx, __ATOMIC_ACQUIRE) != ctx) {
            sched_yield();
        }
        __atomic_store_n(&co->scheduled, NULL, __ATOMIC_RELEASE);
        qemu_aio_coroutine_enter(ctx, co);
    }
}

void aio_co_schedule(AioContext *ctx, Coroutine *co)
{
    const char *old = NULL;
    Coroutine *head;

    if (!__atomic_compare_exchange_n(&co->scheduled, &old, "aio_co_schedule",
                                     false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST)) {
        qemu_coroutine_abort(co, "scheduled while already scheduled by %s",
                             old);
    }
    head = __atomic_load_n(&ctx->co_scheduled, __ATOMIC_RELAXED);
    do {
        co->co_scheduled_next = head;
    } while (!__atomic_compare_exchange_n(&ctx->co_scheduled, &head, co,
                                          true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    qemu_bh_schedule(ctx->co_schedule_bh);
}

void aio_co_wake(Coroutine *co)
{
    AioContext *ctx = __atomic_load_n(&co->ctx, __ATOMIC_ACQUIRE);
    Coroutine *self;

    if (ctx != qemu_get_current_aio_context()) {
        aio_co_schedule(ctx, co);
        return;
    }
    self = qemu_coroutine_self();
    if (self && !self->in_aio_poll) {
        /* Runs as soon as we yield; never re-enter our caller chain. */
        qemu_coroutine_add_wakeup(self, co);
        return;
    }
    qemu_aio_coroutine_enter(ctx, co);
}
