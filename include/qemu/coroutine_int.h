/*
 * Coroutine internals shared by util/coroutine*.c and util/async.c.
 * Nothing outside util/ should include this.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_COROUTINE_INT_H
#define QEMU_COROUTINE_INT_H

#include "qemu/coroutine.h"

/*
 * util/ is only linked into executables, so its thread-locals can use
 * the cheap static TLS model (a %fs-relative load, no __tls_get_addr).
 */
#define CO_TLS_MODEL __attribute__((tls_model("initial-exec")))

typedef enum CoroutineAction {
    COROUTINE_YIELD = 1,
    COROUTINE_TERMINATE = 2,
    COROUTINE_ENTER = 3,
} CoroutineAction;

struct Coroutine {
    CoroutineEntry *entry;      /* NULL once terminated (catches reuse) */
    void *entry_arg;
    /*
     * Who entered us.  Non-NULL while running, and until the switch
     * away from us has completed: the enter loop clears it, so another
     * thread never resumes a coroutine whose stack is still in use.
     */
    Coroutine *caller;
    /* Context the coroutine last ran in; wakeups are sent there. */
    AioContext *ctx;
    /*
     * Non-NULL (name of the scheduler) while queued for entry by
     * aio_co_schedule() or on another coroutine's wakeup list.  Accessed
     * atomically because other threads may schedule us.
     */
    const char *scheduled;
    /* Link for CoQueue, wakeup lists and the enter loop's pending list. */
    Coroutine *co_queue_next;
    /* Coroutines woken by this one; entered as soon as it yields. */
    Coroutine *wakeup_head, *wakeup_tail;
    /* Link for AioContext's lock-free list of scheduled coroutines. */
    Coroutine *co_scheduled_next;
    /*
     * Nesting depth of aio_poll() calls made by this coroutine: wakeups
     * from handlers then enter directly, as the poller is not yielding.
     */
    int in_aio_poll;
    /* Link in the per-thread pool of free coroutines. */
    Coroutine *pool_next;
};

/* ---- back end (coroutine-ucontext.c) ---- */

/* Allocate a coroutine with its own stack, ready for its first switch. */
Coroutine *qemu_coroutine_new(void);
void qemu_coroutine_delete(Coroutine *co);
/*
 * Save @from, make @to current and resume it.  Returns the action passed
 * by whoever switches back to @from.
 */
CoroutineAction qemu_coroutine_switch(Coroutine *from, Coroutine *to,
                                      CoroutineAction action);
/* The running coroutine, or the thread's leader (never NULL). */
Coroutine *qemu_coroutine_current(void);
bool qemu_coroutine_is_leader(Coroutine *co);

/* ---- generic (coroutine.c) ---- */

/* Run @co (and whatever it wakes) in @ctx; aborts on misuse. */
void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co);
/*
 * Queue @co to be entered as soon as @self (the running coroutine) yields
 * or terminates: the same-thread deferred wakeup used by aio_co_wake().
 */
void qemu_coroutine_add_wakeup(Coroutine *self, Coroutine *co);
/* Print a message naming @co and abort (misuse of the coroutine API). */
void QEMU_NORETURN qemu_coroutine_abort(Coroutine *co, const char *fmt, ...)
    QEMU_PRINTF(2, 3);

#endif
