/*
 * Coroutines: cooperative user-space threads that run the block layer's
 * requests.  All coroutines of a process run on the thread that entered
 * them; a coroutine belongs to the AioContext of the thread that created it.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_COROUTINE_H
#define QEMU_COROUTINE_H

typedef struct Coroutine Coroutine;
typedef struct AioContext AioContext;
typedef void coroutine_fn CoroutineEntry(void *opaque);

/*
 * Create a coroutine that will run entry(opaque) when first entered.
 * Stacks come from a per-thread pool, so creation is cheap.
 */
Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque);

/*
 * Switch to @co until it yields or terminates.  May be called from
 * outside or inside a coroutine (nesting: the caller becomes the parent
 * and resumes when @co yields).  Entering a running coroutine aborts.
 */
void qemu_coroutine_enter(Coroutine *co);

/* Enter @co only if it is not already running or scheduled. */
void qemu_coroutine_enter_if_inactive(Coroutine *co);

/* Give control back to the coroutine's parent (the caller of enter). */
void coroutine_fn qemu_coroutine_yield(void);

/* The running coroutine, or NULL outside of coroutine context. */
Coroutine *qemu_coroutine_self(void);
bool qemu_in_coroutine(void);
bool qemu_coroutine_entered(Coroutine *co);

AioContext *qemu_coroutine_get_aio_context(Coroutine *co);

/*
 * Wake a coroutine that yielded waiting for an event.  Safe from any
 * context of the same thread: if called from a coroutine it is deferred
 * until that coroutine yields or terminates (it then runs before control
 * returns to whoever entered the caller), so the caller is never
 * re-entered; from a callback in the event loop it enters @co directly.
 * If @co belongs to another thread's AioContext it is scheduled there.
 */
void aio_co_wake(Coroutine *co);
/* Always defer: schedule @co to be entered from @ctx's loop. */
void aio_co_schedule(AioContext *ctx, Coroutine *co);

/* Sleep the current coroutine for @ns nanoseconds (event loop keeps running). */
void coroutine_fn qemu_co_sleep_ns(int64_t ns);

/* Pool tuning and statistics (for tests). */
void qemu_coroutine_pool_set_max(unsigned int max);
unsigned int qemu_coroutine_pool_size(void);

/* ---- Coroutine queues ------------------------------------------------ */

/* A FIFO of coroutines waiting for something. */
typedef struct CoQueue {
    Coroutine *head, *tail;     /* linked through Coroutine::co_queue_next */
} CoQueue;

void qemu_co_queue_init(CoQueue *q);
/*
 * Yield until woken by qemu_co_queue_next/restart_all.  If @lock is not
 * NULL it is a CoMutex held by the caller: it is released while waiting
 * and taken again before returning.
 */
typedef struct CoMutex CoMutex;
void coroutine_fn qemu_co_queue_wait(CoQueue *q, CoMutex *lock);
/* Wake the first waiter (deferred; it runs when the waker yields). Returns
 * false if the queue was empty. */
bool qemu_co_queue_next(CoQueue *q);
void qemu_co_queue_restart_all(CoQueue *q);
/* Wake the first waiter immediately (enter it now) from non-coroutine code. */
bool qemu_co_enter_next(CoQueue *q);
bool qemu_co_queue_empty(CoQueue *q);

/* ---- CoMutex --------------------------------------------------------- */

/* A sleeping lock for coroutines; FIFO fair, not recursive. */
struct CoMutex {
    bool locked;
    Coroutine *holder;
    CoQueue waiters;
};

void qemu_co_mutex_init(CoMutex *m);
void coroutine_fn qemu_co_mutex_lock(CoMutex *m);
/* Returns true and takes the lock if it was free. */
bool coroutine_fn qemu_co_mutex_trylock(CoMutex *m);
void coroutine_fn qemu_co_mutex_unlock(CoMutex *m);
void qemu_co_mutex_assert_locked(CoMutex *m);

/* ---- CoRwlock -------------------------------------------------------- */

/*
 * Readers share, a writer is exclusive.  FIFO: a waiting writer blocks
 * later readers so writers cannot starve.
 */
typedef struct CoRwlock {
    int readers;                /* active readers */
    bool writer;                /* a writer holds it */
    struct CoRwTicket *head, *tail; /* waiters in arrival order */
} CoRwlock;

void qemu_co_rwlock_init(CoRwlock *l);
void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *l);
void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *l);
/* Turn a held read lock into a write lock (waits for other readers). */
void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *l);
/* Turn a held write lock into a read lock; wakes queued readers. */
void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *l);
void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *l);

#endif
