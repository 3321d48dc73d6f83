/*
 * Coroutine life cycle: creation from a per-thread pool, enter/yield,
 * termination and the deferred wakeups that run when a coroutine yields.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <pthread.h>

#include "qemu/coroutine_int.h"
#include "block/aio.h"

#define COROUTINE_POOL_DEFAULT_MAX 64

/*
 * Free coroutines keep their stack, so reusing one costs neither a
 * system call nor an allocation.  The pool is per thread and needs no
 * lock; the limit is global.
 */
static unsigned int pool_max = COROUTINE_POOL_DEFAULT_MAX;
static __thread CO_TLS_MODEL Coroutine *pool_head;
static __thread CO_TLS_MODEL unsigned int pool_count;
static __thread CO_TLS_MODEL bool pool_registered;
static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;

/*
 * Pool accessors: never inlined, because a coroutine may move to another
 * thread between two accesses and a cached TLS address would be stale.
 */
#ifdef __clang__
#define POOL_TLS_FN static __attribute__((noinline))
#else
#define POOL_TLS_FN static __attribute__((noinline, noclone))
#endif

static void pool_trim(unsigned int keep);

static void pool_thread_exit(void *unused)
{
    pool_trim(0);
}

static void pool_key_init(void)
{
    if (pthread_key_create(&pool_key, pool_thread_exit) != 0) {
        abort();
    }
}

POOL_TLS_FN Coroutine *pool_get(void)
{
    Coroutine *co;

    __asm__ volatile("" ::: "memory");
    co = pool_head;
    if (co) {
        pool_head = co->pool_next;
        pool_count--;
    }
    return co;
}

/* Returns false if the pool is full. */
POOL_TLS_FN bool pool_put(Coroutine *co)
{
    __asm__ volatile("" ::: "memory");
    if (pool_count >= __atomic_load_n(&pool_max, __ATOMIC_RELAXED)) {
        return false;
    }
    if (unlikely(!pool_registered)) {
        /* Free this thread's stacks when it exits. */
        pthread_once(&pool_key_once, pool_key_init);
        pthread_setspecific(pool_key, &pool_registered);
        pool_registered = true;
    }
    co->pool_next = pool_head;
    pool_head = co;
    pool_count++;
    return true;
}

POOL_TLS_FN void pool_trim(unsigned int keep)
{
    __asm__ volatile("" ::: "memory");
    while (pool_count > keep) {
        Coroutine *co = pool_head;

        pool_head = co->pool_next;
        pool_count--;
        qemu_coroutine_delete(co);
    }
}

void qemu_coroutine_pool_set_max(unsigned int max)
{
    __atomic_store_n(&pool_max, max, __ATOMIC_RELAXED);
    pool_trim(max);
}

unsigned int qemu_coroutine_pool_size(void)
{
    __asm__ volatile("" ::: "memory");
    return pool_count;
}

void qemu_coroutine_abort(Coroutine *co, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "coroutine %p: ", (void *)co);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque)
{
    Coroutine *co = pool_get();

    if (!co) {
        co = qemu_coroutine_new();
    }
    co->entry = entry;
    co->entry_arg = opaque;
    co->caller = NULL;
    co->ctx = qemu_get_current_aio_context();
    co->scheduled = NULL;
    co->co_queue_next = NULL;
    co->wakeup_head = co->wakeup_tail = NULL;
    co->co_scheduled_next = NULL;
    co->in_aio_poll = 0;
    return co;
}

static void coroutine_release(Coroutine *co)
{
    co->entry = NULL;
    if (!pool_put(co)) {
        qemu_coroutine_delete(co);
    }
}

void qemu_coroutine_add_wakeup(Coroutine *self, Coroutine *co)
{
    const char *old = NULL;

    /* Marking it catches a second wake or an enter before it runs. */
    if (!__atomic_compare_exchange_n(&co->scheduled, &old, "aio_co_wake",
                                     false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST)) {
        qemu_coroutine_abort(co, "woken while already scheduled by %s",
                             old);
    }
    co->co_queue_next = NULL;
    if (self->wakeup_tail) {
        self->wakeup_tail->co_queue_next = co;
    } else {
        self->wakeup_head = co;
    }
    self->wakeup_tail = co;
}

void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co)
{
    Coroutine *self = qemu_coroutine_current();
    Coroutine *pending = co;
    bool first = true;

    co->co_queue_next = NULL;
    /*
     * Besides @co, run whatever it woke while it ran (depth first, in
     * wake order) before returning to our caller.
     */
    while (pending) {
        Coroutine *to = pending;
        CoroutineAction ret;

        pending = to->co_queue_next;
        to->co_queue_next = NULL;

        if (first) {
            const char *sched = __atomic_load_n(&to->scheduled,
                                                __ATOMIC_ACQUIRE);
            if (sched) {
                qemu_coroutine_abort(to, "entered while already scheduled "
                                     "by %s", sched);
            }
            first = false;
        } else {
            __atomic_store_n(&to->scheduled, NULL, __ATOMIC_RELAXED);
        }
        if (to->caller) {
            qemu_coroutine_abort(to, "entered while already running "
                                 "(recursive enter)");
        }
        if (!to->entry) {
            qemu_coroutine_abort(to, "entered after it terminated");
        }
        if (to == self) {
            qemu_coroutine_abort(to, "a coroutine cannot enter itself");
        }

        to->caller = self;
        /* Read by aio_co_wake() on other threads. */
        __atomic_store_n(&to->ctx, ctx, __ATOMIC_RELEASE);
        ret = qemu_coroutine_switch(self, to, COROUTINE_ENTER);

        /* @to is off its stack now; take what we need before freeing it. */
        if (to->wakeup_head) {
            to->wakeup_tail->co_queue_next = pending;
            pending = to->wakeup_head;
            to->wakeup_head = to->wakeup_tail = NULL;
        }
        if (ret == COROUTINE_TERMINATE) {
            to->caller = NULL;
            coroutine_release(to);
        } else {
            assert(ret == COROUTINE_YIELD);
            /* From here on another thread may resume it: hands off. */
            __atomic_store_n(&to->caller, NULL, __ATOMIC_RELEASE);
        }
    }
}

void qemu_coroutine_enter(Coroutine *co)
{
    qemu_aio_coroutine_enter(qemu_get_current_aio_context(), co);
}

void qemu_coroutine_enter_if_inactive(Coroutine *co)
{
    if (!qemu_coroutine_entered(co) &&
        !__atomic_load_n(&co->scheduled, __ATOMIC_ACQUIRE)) {
        qemu_coroutine_enter(co);
    }
}

void coroutine_fn qemu_coroutine_yield(void)
{
    Coroutine *self = qemu_coroutine_current();
    Coroutine *to = self->caller;

    if (!to) {
        fprintf(stderr, "qemu_coroutine_yield: called outside of a "
                "coroutine\n");
        abort();
    }
    /* caller is cleared by the enter loop once we are switched out. */
    qemu_coroutine_switch(self, to, COROUTINE_YIELD);
}

Coroutine *qemu_coroutine_self(void)
{
    Coroutine *co = qemu_coroutine_current();

    return qemu_coroutine_is_leader(co) ? NULL : co;
}

bool qemu_in_coroutine(void)
{
    return qemu_coroutine_self() != NULL;
}

bool qemu_coroutine_entered(Coroutine *co)
{
    return __atomic_load_n(&co->caller, __ATOMIC_ACQUIRE) != NULL;
}

AioContext *qemu_coroutine_get_aio_context(Coroutine *co)
{
    return co->ctx;
}
