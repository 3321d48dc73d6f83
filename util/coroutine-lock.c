/*
 * Coroutine synchronisation: CoQueue, CoMutex and CoRwlock.  All
 * waiters of one object must run in the same thread; wakeups go through
 * aio_co_wake(), so a waker running in a coroutine hands control over
 * only when it yields.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "qemu/coroutine_int.h"

static Coroutine *co_self_or_die(const char *func)
{
    Coroutine *self = qemu_coroutine_self();

    if (!self) {
        fprintf(stderr, "%s: called outside of a coroutine\n", func);
        abort();
    }
    return self;
}

/* ---- CoQueue ------------------------------------------------------- */

static void co_queue_push(CoQueue *q, Coroutine *co)
{
    co->co_queue_next = NULL;
    if (q->tail) {
        q->tail->co_queue_next = co;
    } else {
        q->head = co;
    }
    q->tail = co;
}

static Coroutine *co_queue_pop(CoQueue *q)
{
    Coroutine *co = q->head;

    if (co) {
        q->head = co->co_queue_next;
        if (!q->head) {
            q->tail = NULL;
        }
        co->co_queue_next = NULL;
    }
    return co;
}

void qemu_co_queue_init(CoQueue *q)
{
    q->head = q->tail = NULL;
}

void coroutine_fn qemu_co_queue_wait(CoQueue *q, CoMutex *lock)
{
    Coroutine *self = co_self_or_die(__func__);

    co_queue_push(q, self);
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
    qemu_coroutine_yield();
    if (lock) {
        qemu_co_mutex_lock(lock);
    }
}

bool qemu_co_queue_next(CoQueue *q)
{
    Coroutine *co = co_queue_pop(q);

    if (!co) {
        return false;
    }
    aio_co_wake(co);
    return true;
}

void qemu_co_queue_restart_all(CoQueue *q)
{
    /* Detach first: a woken coroutine may wait on @q again. */
    Coroutine *co = q->head;

    q->head = q->tail = NULL;
    while (co) {
        Coroutine *next = co->co_queue_next;

        co->co_queue_next = NULL;
        aio_co_wake(co);
        co = next;
    }
}

bool qemu_co_enter_next(CoQueue *q)
{
    Coroutine *co = co_queue_pop(q);

    if (!co) {
        return false;
    }
    qemu_coroutine_enter(co);
    return true;
}

bool qemu_co_queue_empty(CoQueue *q)
{
    return q->head == NULL;
}

/* ---- CoMutex ------------------------------------------------------- */

void qemu_co_mutex_init(CoMutex *m)
{
    m->locked = false;
    m->holder = NULL;
    qemu_co_queue_init(&m->waiters);
}

void coroutine_fn qemu_co_mutex_lock(CoMutex *m)
{
    Coroutine *self = co_self_or_die(__func__);

    if (!m->locked) {
        m->locked = true;
        m->holder = self;
        return;
    }
    if (m->holder == self) {
        qemu_coroutine_abort(self, "CoMutex %p locked recursively",
                             (void *)m);
    }
    co_queue_push(&m->waiters, self);
    qemu_coroutine_yield();
    /* unlock() handed the mutex over before waking us. */
    assert(m->locked && m->holder == self);
}

bool coroutine_fn qemu_co_mutex_trylock(CoMutex *m)
{
    if (m->locked) {
        return false;
    }
    m->locked = true;
    m->holder = co_self_or_die(__func__);
    return true;
}

void coroutine_fn qemu_co_mutex_unlock(CoMutex *m)
{
    Coroutine *self = co_self_or_die(__func__);
    Coroutine *next;

    if (!m->locked || m->holder != self) {
        qemu_coroutine_abort(self, "unlocking CoMutex %p it does not hold",
                             (void *)m);
    }
    /*
     * Hand the lock straight to the oldest waiter: nobody can barge in
     * between, which makes the mutex FIFO fair.
     */
    next = co_queue_pop(&m->waiters);
    if (next) {
        m->holder = next;
        aio_co_wake(next);
    } else {
        m->locked = false;
        m->holder = NULL;
    }
}

void qemu_co_mutex_assert_locked(CoMutex *m)
{
    assert(m->locked && m->holder == qemu_coroutine_self());
}

/* ---- CoRwlock ------------------------------------------------------ */

/* A waiter, on its own stack; granted the lock before being woken. */
typedef struct CoRwTicket {
    bool read;
    Coroutine *co;
    struct CoRwTicket *next;
} CoRwTicket;

void qemu_co_rwlock_init(CoRwlock *l)
{
    l->readers = 0;
    l->writer = false;
    l->head = l->tail = NULL;
}

static void rwlock_wait(CoRwlock *l, bool read, bool at_head)
{
    CoRwTicket t = {
        .read = read,
        .co = co_self_or_die("CoRwlock"),
    };

    if (at_head) {
        t.next = l->head;
        l->head = &t;
        if (!l->tail) {
            l->tail = &t;
        }
    } else {
        if (l->tail) {
            l->tail->next = &t;
        } else {
            l->head = &t;
        }
        l->tail = &t;
    }
    qemu_coroutine_yield();
}

/* Grant the lock to waiters in arrival order while compatible. */
static void rwlock_grant(CoRwlock *l)
{
    CoRwTicket *t;

    while ((t = l->head)) {
        bool read = t->read;

        if (read) {
            if (l->writer) {
                break;
            }
            l->readers++;
        } else {
            if (l->writer || l->readers) {
                break;
            }
            l->writer = true;
        }
        l->head = t->next;
        if (!l->head) {
            l->tail = NULL;
        }
        /* @t may vanish once its coroutine runs. */
        aio_co_wake(t->co);
        if (!read) {
            break;
        }
    }
}

void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *l)
{
    /* Queue behind any waiter, so a waiting writer is not starved. */
    if (!l->writer && !l->head) {
        l->readers++;
        return;
    }
    rwlock_wait(l, true, false);
}

void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *l)
{
    if (!l->writer && !l->readers && !l->head) {
        l->writer = true;
        return;
    }
    rwlock_wait(l, false, false);
}

void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *l)
{
    assert(l->readers > 0 && !l->writer);
    l->readers--;
    if (l->readers == 0) {
        l->writer = true;
        return;
    }
    /*
     * We already own part of the lock: go first once the other readers
     * are gone, ahead of writers that queued after our read lock.
     */
    rwlock_wait(l, false, true);
}

void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *l)
{
    assert(l->writer && l->readers == 0);
    l->writer = false;
    l->readers = 1;
    rwlock_grant(l);
}

void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *l)
{
    if (l->writer) {
        l->writer = false;
    } else {
        assert(l->readers > 0);
        l->readers--;
    }
    rwlock_grant(l);
}
