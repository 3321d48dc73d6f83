/*
 * Unit tests for the event loop: bottom halves, timers, fd handlers,
 * busy polling, cross-thread wakeups and per-context data.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <pthread.h>
#include <sys/eventfd.h>

#include "block/aio.h"

static AioContext *ctx;

/* Run non-blocking iterations until nothing is left to do. */
static int drain_loop(void)
{
    int n = 0;

    while (aio_poll(ctx, false)) {
        n++;
    }
    return n;
}

/* ---- bottom halves -------------------------------------------------- */

typedef struct {
    int runs;
    GString *log;
    char id;
    QEMUBH *bh;
    int reschedule;
} BHState;

static void bh_cb(void *opaque)
{
    BHState *s = opaque;

    s->runs++;
    if (s->log) {
        g_string_append_c(s->log, s->id);
    }
    if (s->reschedule) {
        s->reschedule--;
        qemu_bh_schedule(s->bh);
    }
}

static void test_bh_schedule(void)
{
    BHState s = { 0 };

    s.bh = aio_bh_new(ctx, bh_cb, &s);
    g_assert_false(aio_poll(ctx, false));
    qemu_bh_schedule(s.bh);
    qemu_bh_schedule(s.bh);     /* idempotent until it runs */
    g_assert_cmpint(s.runs, ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(s.runs, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(s.runs, ==, 1);

    /* A blocking poll returns once the BH ran. */
    qemu_bh_schedule(s.bh);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(s.runs, ==, 2);
    qemu_bh_delete(s.bh);
}

static void test_bh_order(void)
{
    GString *log = g_string_new("");
    BHState s[4];
    int i;

    for (i = 0; i < 4; i++) {
        s[i] = (BHState) { .log = log, .id = 'a' + i };
        s[i].bh = aio_bh_new(ctx, bh_cb, &s[i]);
    }
    qemu_bh_schedule(s[2].bh);
    qemu_bh_schedule(s[0].bh);
    qemu_bh_schedule(s[3].bh);
    qemu_bh_schedule(s[1].bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpstr(log->str, ==, "cadb");
    for (i = 0; i < 4; i++) {
        qemu_bh_delete(s[i].bh);
    }
    g_string_free(log, true);
}

static void test_bh_cancel(void)
{
    BHState s = { 0 };

    s.bh = aio_bh_new(ctx, bh_cb, &s);
    qemu_bh_schedule(s.bh);
    qemu_bh_cancel(s.bh);
    drain_loop();
    g_assert_cmpint(s.runs, ==, 0);

    /* Cancel then schedule again: runs exactly once. */
    qemu_bh_schedule(s.bh);
    qemu_bh_cancel(s.bh);
    qemu_bh_schedule(s.bh);
    g_assert_cmpint(drain_loop(), ==, 1);
    g_assert_cmpint(s.runs, ==, 1);

    /* Deleting a scheduled BH: it never runs. */
    qemu_bh_schedule(s.bh);
    qemu_bh_delete(s.bh);
    drain_loop();
    g_assert_cmpint(s.runs, ==, 1);
}

static void test_bh_reschedule_self(void)
{
    BHState s = { .reschedule = 3 };

    s.bh = aio_bh_new(ctx, bh_cb, &s);
    qemu_bh_schedule(s.bh);
    /*
     * At most one run per BH pass (aio_poll makes two, before and after
     * the fd handlers): a self-rescheduling BH cannot livelock.
     */
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(s.runs, >=, 1);
    g_assert_cmpint(s.runs, <=, 2);
    drain_loop();
    g_assert_cmpint(s.runs, ==, 4);
    qemu_bh_delete(s.bh);
}

static void oneshot_cb(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_bh_oneshot(void)
{
    int n = 0, i;

    for (i = 0; i < 100; i++) {
        aio_bh_schedule_oneshot(ctx, oneshot_cb, &n);
    }
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(n, ==, 100);
    g_assert_false(aio_poll(ctx, false));
}

typedef struct {
    BHState *second;
} NestedState;

static void nested_cb(void *opaque)
{
    NestedState *ns = opaque;

    /* The second BH was scheduled with us: a nested loop must run it. */
    while (!ns->second->runs) {
        aio_poll(ctx, true);
    }
}

static void test_bh_nested_poll(void)
{
    BHState second = { 0 };
    NestedState ns = { &second };
    QEMUBH *first = aio_bh_new(ctx, nested_cb, &ns);

    second.bh = aio_bh_new(ctx, bh_cb, &second);
    qemu_bh_schedule(first);
    qemu_bh_schedule(second.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(second.runs, ==, 1);
    drain_loop();
    g_assert_cmpint(second.runs, ==, 1);
    qemu_bh_delete(first);
    qemu_bh_delete(second.bh);
}

/* ---- other threads -------------------------------------------------- */

typedef struct {
    QEMUBH *bh;
    AioContext *target;
    Coroutine *co;
    int delay_us;
    bool notify_only;
    bool flag;
} ThreadArg;

static void *kick_thread(void *opaque)
{
    ThreadArg *a = opaque;

    g_usleep(a->delay_us);
    if (a->co) {
        aio_co_schedule(a->target, a->co);
    } else if (a->notify_only) {
        __atomic_store_n(&a->flag, true, __ATOMIC_SEQ_CST);
        aio_notify(a->target);
    } else {
        qemu_bh_schedule(a->bh);
    }
    return NULL;
}

static void test_bh_other_thread(void)
{
    BHState s = { 0 };
    ThreadArg a = { .delay_us = 20000 };
    pthread_t th;
    int i;

    s.bh = aio_bh_new(ctx, bh_cb, &s);
    a.bh = s.bh;
    a.target = ctx;
    pthread_create(&th, NULL, kick_thread, &a);
    /* Sleeps in epoll until the other thread schedules the BH. */
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(s.runs, ==, 1);
    pthread_join(th, NULL);

    /* Race the schedule against going to sleep, many times. */
    a.delay_us = 0;
    for (i = 0; i < 200; i++) {
        pthread_create(&th, NULL, kick_thread, &a);
        while (s.runs != i + 2) {
            aio_poll(ctx, true);
        }
        pthread_join(th, NULL);
    }
    qemu_bh_delete(s.bh);
}

static void test_notify_other_thread(void)
{
    ThreadArg a = { .delay_us = 10000, .notify_only = true };
    pthread_t th;
    int i;

    a.target = ctx;
    for (i = 0; i < 50; i++) {
        a.flag = false;
        a.delay_us = i == 0 ? 10000 : 0;
        pthread_create(&th, NULL, kick_thread, &a);
        /* A bare aio_notify() must not be lost, even when it races. */
        AIO_WAIT_WHILE(ctx, !__atomic_load_n(&a.flag, __ATOMIC_SEQ_CST));
        pthread_join(th, NULL);
    }
}

static void coroutine_fn co_wait_entry(void *opaque)
{
    int *state = opaque;

    *state = 1;
    qemu_coroutine_yield();
    *state = 2;
}

static void test_co_schedule_other_thread(void)
{
    int state = 0;
    ThreadArg a = { .delay_us = 10000 };
    pthread_t th;

    a.co = qemu_coroutine_create(co_wait_entry, &state);
    a.target = ctx;
    qemu_coroutine_enter(a.co);
    g_assert_cmpint(state, ==, 1);
    pthread_create(&th, NULL, kick_thread, &a);
    while (state != 2) {
        aio_poll(ctx, true);
    }
    pthread_join(th, NULL);
}

/* A second context driven by its own thread. */
typedef struct {
    AioContext *ctx;
    bool stop;
    int hits;
} IOThread;

static void iothread_bh(void *opaque)
{
    IOThread *t = opaque;

    t->hits++;
    g_assert_true(qemu_get_current_aio_context() == t->ctx);
}

static void *iothread_run(void *opaque)
{
    IOThread *t = opaque;

    aio_context_set_current(t->ctx);
    while (!__atomic_load_n(&t->stop, __ATOMIC_SEQ_CST)) {
        aio_poll(t->ctx, true);
    }
    return NULL;
}

static void iothread_stop_bh(void *opaque)
{
    IOThread *t = opaque;

    __atomic_store_n(&t->stop, true, __ATOMIC_SEQ_CST);
}

typedef struct {
    IOThread *t;
    int hops;
    bool done;
    Coroutine *sleeper;
} HopState;

/* Bounce between the two contexts: the coroutine changes threads. */
static void coroutine_fn hop_entry(void *opaque)
{
    HopState *h = opaque;
    AioContext *main_ctx = qemu_get_aio_context();
    int i;

    for (i = 0; i < 50; i++) {
        aio_co_schedule(h->t->ctx, qemu_coroutine_self());
        qemu_coroutine_yield();
        g_assert_true(qemu_get_current_aio_context() == h->t->ctx);
        g_assert_true(qemu_coroutine_get_aio_context(qemu_coroutine_self())
                      == h->t->ctx);
        /* Our sleeper lives in the main context: this schedules it. */
        if (i == 25) {
            aio_co_wake(h->sleeper);
        }
        aio_co_schedule(main_ctx, qemu_coroutine_self());
        qemu_coroutine_yield();
        g_assert_true(qemu_get_current_aio_context() == main_ctx);
        h->hops++;
    }
    h->done = true;
}

static void coroutine_fn hop_sleeper(void *opaque)
{
    HopState *h = opaque;

    h->sleeper = qemu_coroutine_self();
    qemu_coroutine_yield();
    g_assert_true(qemu_get_current_aio_context() == qemu_get_aio_context());
    h->sleeper = NULL;
}

static void test_second_context(void)
{
    IOThread t = { .ctx = aio_context_new() };
    pthread_t th;
    int i;

    g_assert_true(qemu_get_current_aio_context() == qemu_get_aio_context());
    pthread_create(&th, NULL, iothread_run, &t);
    for (i = 0; i < 100; i++) {
        aio_bh_schedule_oneshot(t.ctx, iothread_bh, &t);
        g_usleep(100);
    }
    {
        HopState h = { .t = &t };

        qemu_coroutine_enter(qemu_coroutine_create(hop_sleeper, &h));
        qemu_coroutine_enter(qemu_coroutine_create(hop_entry, &h));
        while (!h.done || h.sleeper) {
            aio_poll(ctx, true);
        }
        g_assert_cmpint(h.hops, ==, 50);
    }
    aio_bh_schedule_oneshot(t.ctx, iothread_stop_bh, &t);
    pthread_join(th, NULL);
    g_assert_cmpint(t.hits, ==, 100);
    aio_context_unref(t.ctx);
}

/* ---- timers --------------------------------------------------------- */

typedef struct {
    GString *log;
    char id;
    int64_t fired_at;
} TimerState;

static void timer_cb(void *opaque)
{
    TimerState *s = opaque;

    g_string_append_c(s->log, s->id);
    s->fired_at = get_clock_ns();
}

static void test_timers(void)
{
    GString *log = g_string_new("");
    TimerState s[4];
    QEMUTimer *t[4];
    int64_t start = get_clock_ns();
    int64_t deadlines[4] = { 3000000, 1000000, 2000000, 1500000 };
    int i;

    for (i = 0; i < 4; i++) {
        s[i] = (TimerState) { log, 'a' + i, 0 };
        t[i] = aio_timer_new(ctx, timer_cb, &s[i]);
        g_assert_false(timer_pending(t[i]));
        timer_mod_ns(t[i], start + deadlines[i]);
        g_assert_true(timer_pending(t[i]));
    }
    timer_del(t[3]);
    g_assert_false(timer_pending(t[3]));
    /* Re-arming moves a timer: c now fires last. */
    timer_mod_ns(t[2], start + 4000000);

    while (log->len < 3) {
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpstr(log->str, ==, "bac");
    for (i = 0; i < 3; i++) {
        int64_t want = i == 2 ? 4000000 : deadlines[i];

        /* Never early. */
        g_assert_cmpint(s[i].fired_at - start, >=, want);
        g_assert_false(timer_pending(t[i]));
    }
    g_assert_false(aio_poll(ctx, false));
    for (i = 0; i < 4; i++) {
        timer_free(t[i]);
    }
    g_string_free(log, true);
}

static void test_timer_precision(void)
{
    TimerState s = { g_string_new(""), 'x', 0 };
    QEMUTimer *t = aio_timer_new(ctx, timer_cb, &s);
    int64_t start, total = 0;
    int i;

    /* Sub-millisecond deadlines: printed, not asserted (timing noise). */
    for (i = 0; i < 20; i++) {
        start = get_clock_ns();
        timer_mod_ns(t, start + 200000);
        while (timer_pending(t)) {
            aio_poll(ctx, true);
        }
        g_assert_cmpint(s.fired_at - start, >=, 200000);
        total += s.fired_at - start;
    }
    g_test_message("200 us timer fired after %.1f us on average",
                   total / 20 / 1000.0);
    timer_free(t);
    g_string_free(s.log, true);
}

/* ---- fd handlers ---------------------------------------------------- */

typedef struct {
    int fd;
    int reads;
    int writes;
    int polls;
    int poll_hit_at;
    uint64_t total;
    bool remove_self;
} FdState;

static void efd_read(void *opaque)
{
    FdState *s = opaque;
    uint64_t v;

    if (read(s->fd, &v, sizeof(v)) == sizeof(v)) {
        s->total += v;
    }
    s->reads++;
    if (s->remove_self) {
        aio_set_fd_handler(ctx, s->fd, NULL, NULL, NULL, NULL);
    }
}

static void fd_write(void *opaque)
{
    FdState *s = opaque;

    s->writes++;
}

static void test_fd_eventfd(void)
{
    FdState s = { .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
    uint64_t one = 1;

    g_assert_cmpint(s.fd, >=, 0);
    aio_set_fd_handler(ctx, s.fd, efd_read, NULL, NULL, &s);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(s.reads, ==, 0);

    g_assert_cmpint(write(s.fd, &one, sizeof(one)), ==, sizeof(one));
    g_assert_cmpint(write(s.fd, &one, sizeof(one)), ==, sizeof(one));
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(s.reads, ==, 1);
    g_assert_cmpint(s.total, ==, 2);
    g_assert_false(aio_poll(ctx, false));

    /* Removed: no longer called. */
    aio_set_fd_handler(ctx, s.fd, NULL, NULL, NULL, NULL);
    g_assert_cmpint(write(s.fd, &one, sizeof(one)), ==, sizeof(one));
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(s.reads, ==, 1);

    /* A handler removing itself from its callback. */
    s.remove_self = true;
    aio_set_fd_handler(ctx, s.fd, efd_read, NULL, NULL, &s);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(s.reads, ==, 2);
    g_assert_cmpint(write(s.fd, &one, sizeof(one)), ==, sizeof(one));
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(s.reads, ==, 2);
    close(s.fd);
}

static void test_fd_pipe(void)
{
    int p[2];
    FdState rd = { 0 }, wr = { 0 };
    char c = 'x';

    g_assert_cmpint(pipe2(p, O_NONBLOCK | O_CLOEXEC), ==, 0);
    rd.fd = p[0];
    wr.fd = p[1];
    /* An empty pipe is writable. */
    aio_set_fd_handler(ctx, p[1], NULL, fd_write, NULL, &wr);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(wr.writes, ==, 1);
    aio_set_fd_handler(ctx, p[1], NULL, NULL, NULL, NULL);
    g_assert_false(aio_poll(ctx, false));

    aio_set_fd_handler(ctx, p[0], efd_read, NULL, NULL, &rd);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(write(p[1], &c, 1), ==, 1);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(rd.reads, ==, 1);
    /* Switch the same fd to a write handler that never fires here. */
    aio_set_fd_handler(ctx, p[0], NULL, fd_write, NULL, &rd);
    g_assert_false(aio_poll(ctx, false));
    aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL, NULL);
    close(p[0]);
    close(p[1]);
}

static bool fd_poll(void *opaque)
{
    FdState *s = opaque;

    return ++s->polls == s->poll_hit_at;
}

static void count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_fd_poll_handler(void)
{
    FdState s = { .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
    int fired = 0, i;
    QEMUTimer *t = aio_timer_new(ctx, count_cb, &fired);

    aio_set_fd_handler(ctx, s.fd, efd_read, NULL, fd_poll, &s);

    /*
     * A configured window starts fully open: a blocking aio_poll is
     * satisfied by the poll callback alone.  The timer only guards
     * against hanging if it is not.
     */
    aio_context_set_poll_ns(ctx, 50000000);
    s.poll_hit_at = 3;
    timer_mod_ns(t, get_clock_ns() + 100000000);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(s.polls, ==, 3);
    g_assert_cmpint(fired, ==, 0);
    g_assert_cmpint(s.reads, ==, 0);
    timer_del(t);

    /* Short waits (a 100 us timer) keep it polling; never early. */
    s.polls = 0;
    s.poll_hit_at = 0;
    aio_context_set_poll_ns(ctx, 1000000);
    for (i = 0; i < 12; i++) {
        int64_t start = get_clock_ns();

        timer_mod_ns(t, start + 100000);
        while (timer_pending(t)) {
            aio_poll(ctx, true);
        }
        g_assert_cmpint(get_clock_ns() - start, >=, 100000);
    }
    g_assert_cmpint(fired, ==, 12);
    g_assert_cmpint(s.polls, >, 0);

    /* With polling off the callback is not used to wait. */
    aio_context_set_poll_ns(ctx, 0);
    s.polls = 0;
    timer_mod_ns(t, get_clock_ns() + 100000);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(fired, ==, 13);
    g_assert_cmpint(s.polls, ==, 0);

    aio_set_fd_handler(ctx, s.fd, NULL, NULL, NULL, NULL);
    aio_context_set_poll_ns(ctx, 32768);
    timer_free(t);
    close(s.fd);
}

/* ---- per-context data ----------------------------------------------- */

static GString *destroy_log;

static void data_destroy(void *data)
{
    g_string_append(destroy_log, data);
}

static void test_context_data(void)
{
    AioContext *c = aio_context_new();
    static const int key1, key2, key3;

    destroy_log = g_string_new("");
    g_assert_null(aio_context_get_data(c, &key1));
    aio_context_set_data(c, &key1, (void *)"1", data_destroy);
    aio_context_set_data(c, &key2, (void *)"2", data_destroy);
    aio_context_set_data(c, &key3, (void *)"3", NULL);
    g_assert_cmpstr(aio_context_get_data(c, &key1), ==, "1");
    g_assert_cmpstr(aio_context_get_data(c, &key2), ==, "2");
    g_assert_cmpstr(aio_context_get_data(c, &key3), ==, "3");
    g_assert_null(aio_context_get_data(ctx, &key1));

    /* Replacing releases the old value. */
    aio_context_set_data(c, &key1, (void *)"4", data_destroy);
    g_assert_cmpstr(destroy_log->str, ==, "1");
    g_assert_cmpstr(aio_context_get_data(c, &key1), ==, "4");

    aio_context_unref(c);
    g_assert_cmpstr(destroy_log->str, ==, "124");
    g_string_free(destroy_log, true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    ctx = qemu_get_aio_context();

    g_test_add_func("/aio/bh/schedule", test_bh_schedule);
    g_test_add_func("/aio/bh/order", test_bh_order);
    g_test_add_func("/aio/bh/cancel", test_bh_cancel);
    g_test_add_func("/aio/bh/reschedule_self", test_bh_reschedule_self);
    g_test_add_func("/aio/bh/oneshot", test_bh_oneshot);
    g_test_add_func("/aio/bh/nested_poll", test_bh_nested_poll);
    g_test_add_func("/aio/thread/bh", test_bh_other_thread);
    g_test_add_func("/aio/thread/notify", test_notify_other_thread);
    g_test_add_func("/aio/thread/co_schedule", test_co_schedule_other_thread);
    g_test_add_func("/aio/thread/second_context", test_second_context);
    g_test_add_func("/aio/timer/order", test_timers);
    g_test_add_func("/aio/timer/precision", test_timer_precision);
    g_test_add_func("/aio/fd/eventfd", test_fd_eventfd);
    g_test_add_func("/aio/fd/pipe", test_fd_pipe);
    g_test_add_func("/aio/fd/poll_handler", test_fd_poll_handler);
    g_test_add_func("/aio/context_data", test_context_data);
    return g_test_run();
}
