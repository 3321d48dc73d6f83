/*
 * Timed sleep for coroutines.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "block/aio-int.h"

static void co_sleep_cb(void *opaque)
{
    aio_co_wake(opaque);
}

void coroutine_fn qemu_co_sleep_ns(int64_t ns)
{
    Coroutine *co = qemu_coroutine_self();
    QEMUTimer t;

    if (!co) {
        fprintf(stderr, "qemu_co_sleep_ns: called outside of a coroutine\n");
        abort();
    }
    /* The timer lives on our stack: sleeping needs no allocation. */
    aio_timer_init(qemu_coroutine_get_aio_context(co), &t, co_sleep_cb, co);
    timer_mod_ns(&t, get_clock_ns() + MAX(ns, 0));
    qemu_coroutine_yield();
    /* Someone may have woken us early: the timer must not outlive us. */
    timer_del(&t);
}
