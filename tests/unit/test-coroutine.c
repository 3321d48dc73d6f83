/*
 * Unit tests for coroutines and the coroutine locks.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "block/aio.h"

/* Yield to the event loop: we are entered again from its next iteration. */
static void coroutine_fn co_yield_to_loop(void)
{
    aio_co_schedule(qemu_get_current_aio_context(), qemu_coroutine_self());
    qemu_coroutine_yield();
}

static void run_loop_until(bool *done)
{
    while (!*done) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

/* ---- enter / yield / terminate -------------------------------------- */

typedef struct {
    int step;
    Coroutine *self_inside;
    bool in_co_inside;
} BasicState;

static void coroutine_fn basic_entry(void *opaque)
{
    BasicState *s = opaque;

    s->self_inside = qemu_coroutine_self();
    s->in_co_inside = qemu_in_coroutine();
    g_assert_true(qemu_coroutine_entered(s->self_inside));
    s->step = 1;
    qemu_coroutine_yield();
    s->step = 2;
    qemu_coroutine_yield();
    s->step = 3;
}

static void test_enter_yield(void)
{
    BasicState s = { 0 };
    Coroutine *co = qemu_coroutine_create(basic_entry, &s);

    g_assert_false(qemu_in_coroutine());
    g_assert_null(qemu_coroutine_self());
    g_assert_false(qemu_coroutine_entered(co));
    g_assert_cmpint(s.step, ==, 0);

    qemu_coroutine_enter(co);
    g_assert_cmpint(s.step, ==, 1);
    g_assert_true(s.self_inside == co);
    g_assert_true(s.in_co_inside);
    g_assert_false(qemu_coroutine_entered(co));
    g_assert_true(qemu_coroutine_get_aio_context(co) ==
                  qemu_get_aio_context());

    qemu_coroutine_enter(co);
    g_assert_cmpint(s.step, ==, 2);
    qemu_coroutine_enter_if_inactive(co);
    g_assert_cmpint(s.step, ==, 3);
    g_assert_false(qemu_in_coroutine());
}

/* Recursion: each level enters the next; yields come back level by level. */
#define NEST_DEPTH 64

typedef struct {
    int level;
    int *trace;
    int *ntrace;
} NestArg;

static void coroutine_fn nest_entry(void *opaque)
{
    NestArg *a = opaque;
    NestArg child = { a->level + 1, a->trace, a->ntrace };
    Coroutine *co = NULL;

    a->trace[(*a->ntrace)++] = a->level;
    if (a->level + 1 < NEST_DEPTH) {
        co = qemu_coroutine_create(nest_entry, &child);
        qemu_coroutine_enter(co);
        /* The child yielded back to us, its parent. */
        g_assert_true(qemu_coroutine_self() != co);
    }
    a->trace[(*a->ntrace)++] = 1000 + a->level;
    qemu_coroutine_yield();
    if (co) {
        qemu_coroutine_enter(co);
    }
    a->trace[(*a->ntrace)++] = 2000 + a->level;
}

static void test_nesting(void)
{
    int trace[NEST_DEPTH * 3];
    int ntrace = 0;
    NestArg root = { 0, trace, &ntrace };
    Coroutine *co = qemu_coroutine_create(nest_entry, &root);
    int i;

    qemu_coroutine_enter(co);
    /* 0..63 descending, then 1063..1000 as each level yields upward. */
    g_assert_cmpint(ntrace, ==, NEST_DEPTH * 2);
    for (i = 0; i < NEST_DEPTH; i++) {
        g_assert_cmpint(trace[i], ==, i);
        g_assert_cmpint(trace[NEST_DEPTH + i], ==, 1000 + NEST_DEPTH - 1 - i);
    }
    qemu_coroutine_enter(co);
    g_assert_cmpint(ntrace, ==, NEST_DEPTH * 3);
    for (i = 0; i < NEST_DEPTH; i++) {
        g_assert_cmpint(trace[2 * NEST_DEPTH + i], ==,
                        2000 + NEST_DEPTH - 1 - i);
    }
    g_assert_false(qemu_in_coroutine());
}

/* A coroutine can create and run another one to completion. */
static void coroutine_fn add_one(void *opaque)
{
    (*(int *)opaque)++;
}

static void coroutine_fn spawner(void *opaque)
{
    int i;

    for (i = 0; i < 10; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(add_one, opaque));
    }
}

static void test_create_inside(void)
{
    int n = 0;

    qemu_coroutine_enter(qemu_coroutine_create(spawner, &n));
    g_assert_cmpint(n, ==, 10);
}

/* A deep stack must be usable (qcow2 code runs in coroutines). */
static void coroutine_fn big_stack_entry(void *opaque)
{
    volatile char buf[512 * 1024];
    size_t i;

    for (i = 0; i < sizeof(buf); i += 4096) {
        buf[i] = (char)i;
    }
    *(int *)opaque = buf[4096];
}

static void test_big_stack(void)
{
    int r = -1;

    qemu_coroutine_enter(qemu_coroutine_create(big_stack_entry, &r));
    g_assert_cmpint(r, ==, 0);
}

/* ---- misuse aborts with a message ------------------------------------ */

static void coroutine_fn yield_once(void *opaque)
{
    qemu_coroutine_yield();
}

static void coroutine_fn enter_parent_child(void *opaque)
{
    Coroutine **parent = opaque;

    /* Our parent is running (it entered us): entering it is a bug. */
    qemu_coroutine_enter(*parent);
}

static void coroutine_fn enter_child(void *opaque)
{
    Coroutine *self = qemu_coroutine_self();

    qemu_coroutine_enter(qemu_coroutine_create(enter_parent_child, &self));
}

static void test_misuse(void)
{
    if (g_test_subprocess()) {
        const char *mode = g_getenv("CO_MISUSE");
        Coroutine *co;

        if (!g_strcmp0(mode, "running")) {
            qemu_coroutine_enter(qemu_coroutine_create(enter_child, NULL));
        } else if (!g_strcmp0(mode, "scheduled")) {
            co = qemu_coroutine_create(yield_once, NULL);
            qemu_coroutine_enter(co);
            aio_co_schedule(qemu_get_aio_context(), co);
            qemu_coroutine_enter(co);
        } else if (!g_strcmp0(mode, "terminated")) {
            co = qemu_coroutine_create(yield_once, NULL);
            qemu_coroutine_enter(co);
            qemu_coroutine_enter(co);
            /* Terminated and back in the pool: entering it is a bug. */
            qemu_coroutine_enter(co);
        }
        return;
    }

    g_setenv("CO_MISUSE", "running", true);
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*already running*");

    g_setenv("CO_MISUSE", "scheduled", true);
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*already scheduled by aio_co_schedule*");

    g_setenv("CO_MISUSE", "terminated", true);
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*after it terminated*");
    g_unsetenv("CO_MISUSE");
}

/* ---- pool ------------------------------------------------------------- */

static void test_pool_reuse(void)
{
    Coroutine *cos[100];
    Coroutine *first;
    int n = 0, i;

    qemu_coroutine_pool_set_max(64);
    /* Warm up: one free coroutine in the pool. */
    qemu_coroutine_enter(qemu_coroutine_create(add_one, &n));
    g_assert_cmpuint(qemu_coroutine_pool_size(), >=, 1);

    first = qemu_coroutine_create(add_one, &n);
    qemu_coroutine_enter(first);
    for (i = 0; i < 10000; i++) {
        unsigned int before = qemu_coroutine_pool_size();
        Coroutine *co = qemu_coroutine_create(add_one, &n);

        /* LIFO pool: the same object (and stack) comes back every time. */
        g_assert_true(co == first);
        g_assert_cmpuint(qemu_coroutine_pool_size(), ==, before - 1);
        qemu_coroutine_enter(co);
        g_assert_cmpuint(qemu_coroutine_pool_size(), ==, before);
    }
    g_assert_cmpint(n, ==, 10002);

    /* More live coroutines than the limit: the pool keeps only 64. */
    for (i = 0; i < 100; i++) {
        cos[i] = qemu_coroutine_create(yield_once, NULL);
        qemu_coroutine_enter(cos[i]);
    }
    for (i = 0; i < 100; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    g_assert_cmpuint(qemu_coroutine_pool_size(), ==, 64);

    qemu_coroutine_pool_set_max(8);
    g_assert_cmpuint(qemu_coroutine_pool_size(), ==, 8);
    qemu_coroutine_pool_set_max(64);
}

/* ---- many coroutines ------------------------------------------------ */

#define MANY 10000

static void coroutine_fn many_entry(void *opaque)
{
    int *count = opaque;

    (*count)++;
    qemu_coroutine_yield();
    (*count)--;
}

static void test_many(void)
{
    Coroutine **cos = g_new(Coroutine *, MANY);
    int count = 0, i;

    for (i = 0; i < MANY; i++) {
        cos[i] = qemu_coroutine_create(many_entry, &count);
        qemu_coroutine_enter(cos[i]);
    }
    g_assert_cmpint(count, ==, MANY);
    for (i = 0; i < MANY; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    g_assert_cmpint(count, ==, 0);
    g_free(cos);
}

/* ---- deferred wakeups ----------------------------------------------- */

typedef struct {
    Coroutine *sleeper;
    GString *log;
} WakeState;

static void coroutine_fn wake_sleeper(void *opaque)
{
    WakeState *s = opaque;

    s->sleeper = qemu_coroutine_self();
    g_string_append_c(s->log, 'a');
    qemu_coroutine_yield();
    g_string_append_c(s->log, 'c');
}

static void coroutine_fn wake_waker(void *opaque)
{
    WakeState *s = opaque;

    /* From a coroutine: the sleeper must not run before we yield. */
    aio_co_wake(s->sleeper);
    g_string_append_c(s->log, 'b');
}

static void test_wake_deferred(void)
{
    WakeState s = { .log = g_string_new("") };

    qemu_coroutine_enter(qemu_coroutine_create(wake_sleeper, &s));
    qemu_coroutine_enter(qemu_coroutine_create(wake_waker, &s));
    g_assert_cmpstr(s.log->str, ==, "abc");

    /* From outside a coroutine aio_co_wake enters at once. */
    g_string_truncate(s.log, 0);
    qemu_coroutine_enter(qemu_coroutine_create(wake_sleeper, &s));
    aio_co_wake(s.sleeper);
    g_assert_cmpstr(s.log->str, ==, "ac");
    g_string_free(s.log, true);
}

static void coroutine_fn sched_entry(void *opaque)
{
    int *n = opaque;

    (*n)++;
    co_yield_to_loop();
    (*n)++;
}

static void test_schedule(void)
{
    int n = 0;

    qemu_coroutine_enter(qemu_coroutine_create(sched_entry, &n));
    g_assert_cmpint(n, ==, 1);
    /* Deferred until the loop runs its BHs. */
    g_assert_true(aio_poll(qemu_get_aio_context(), false));
    g_assert_cmpint(n, ==, 2);
    g_assert_false(aio_poll(qemu_get_aio_context(), false));
}

/* ---- CoMutex -------------------------------------------------------- */

#define MUTEX_COS 8
#define MUTEX_ITERS 50

typedef struct {
    CoMutex lock;
    int counter;
    int inside;
    int order[MUTEX_COS * MUTEX_ITERS];
    int norder;
    int finished;
    bool all_done;
} MutexTest;

typedef struct {
    MutexTest *t;
    int id;
} MutexArg;

static void coroutine_fn mutex_entry(void *opaque)
{
    MutexArg *a = opaque;
    MutexTest *t = a->t;
    int i;

    for (i = 0; i < MUTEX_ITERS; i++) {
        int v;

        qemu_co_mutex_lock(&t->lock);
        qemu_co_mutex_assert_locked(&t->lock);
        g_assert_cmpint(t->inside, ==, 0);
        t->inside++;
        t->order[t->norder++] = a->id;
        v = t->counter;
        /* Let everyone else run while we hold the lock. */
        co_yield_to_loop();
        t->counter = v + 1;
        t->inside--;
        qemu_co_mutex_unlock(&t->lock);
    }
    if (++t->finished == MUTEX_COS) {
        t->all_done = true;
    }
}

static void test_co_mutex(void)
{
    MutexTest *t = g_new0(MutexTest, 1);
    MutexArg args[MUTEX_COS];
    int i;

    qemu_co_mutex_init(&t->lock);
    for (i = 0; i < MUTEX_COS; i++) {
        args[i].t = t;
        args[i].id = i;
        qemu_coroutine_enter(qemu_coroutine_create(mutex_entry, &args[i]));
    }
    run_loop_until(&t->all_done);
    g_assert_cmpint(t->counter, ==, MUTEX_COS * MUTEX_ITERS);
    /* FIFO hand-off: strict round robin. */
    for (i = 0; i < MUTEX_COS * MUTEX_ITERS; i++) {
        g_assert_cmpint(t->order[i], ==, i % MUTEX_COS);
    }
    g_assert_false(t->lock.locked);
    g_free(t);
}

static void coroutine_fn trylock_entry(void *opaque)
{
    CoMutex *m = opaque;

    g_assert_true(qemu_co_mutex_trylock(m));
    g_assert_true(m->locked);
    qemu_coroutine_yield();
    qemu_co_mutex_unlock(m);
}

static void coroutine_fn trylock_fail(void *opaque)
{
    g_assert_false(qemu_co_mutex_trylock(opaque));
}

static void test_co_mutex_trylock(void)
{
    CoMutex m;
    Coroutine *co;

    qemu_co_mutex_init(&m);
    co = qemu_coroutine_create(trylock_entry, &m);
    qemu_coroutine_enter(co);
    qemu_coroutine_enter(qemu_coroutine_create(trylock_fail, &m));
    qemu_coroutine_enter(co);
    g_assert_false(m.locked);
}

/* ---- CoQueue -------------------------------------------------------- */

typedef struct {
    CoQueue q;
    CoMutex *lock;
    GString *log;
} QueueTest;

typedef struct {
    QueueTest *t;
    char id;
} QueueArg;

static void coroutine_fn queue_waiter(void *opaque)
{
    QueueArg *a = opaque;

    if (a->t->lock) {
        qemu_co_mutex_lock(a->t->lock);
    }
    qemu_co_queue_wait(&a->t->q, a->t->lock);
    if (a->t->lock) {
        qemu_co_mutex_assert_locked(a->t->lock);
        qemu_co_mutex_unlock(a->t->lock);
    }
    g_string_append_c(a->t->log, a->id);
}

static void coroutine_fn queue_restart_co(void *opaque)
{
    QueueTest *t = opaque;

    qemu_co_queue_restart_all(&t->q);
    /* Deferred: nobody ran yet. */
    g_string_append_c(t->log, '!');
}

static void test_co_queue(void)
{
    QueueTest t = { .log = g_string_new("") };
    QueueArg args[5];
    int i;

    qemu_co_queue_init(&t.q);
    g_assert_true(qemu_co_queue_empty(&t.q));
    for (i = 0; i < 5; i++) {
        args[i].t = &t;
        args[i].id = 'a' + i;
        qemu_coroutine_enter(qemu_coroutine_create(queue_waiter, &args[i]));
    }
    g_assert_false(qemu_co_queue_empty(&t.q));
    g_assert_true(qemu_co_enter_next(&t.q));
    g_assert_cmpstr(t.log->str, ==, "a");
    g_assert_true(qemu_co_queue_next(&t.q));
    g_assert_cmpstr(t.log->str, ==, "ab");
    qemu_coroutine_enter(qemu_coroutine_create(queue_restart_co, &t));
    g_assert_cmpstr(t.log->str, ==, "ab!cde");
    g_assert_true(qemu_co_queue_empty(&t.q));
    g_assert_false(qemu_co_queue_next(&t.q));
    g_assert_false(qemu_co_enter_next(&t.q));

    /* With a mutex: released while waiting, held again on wakeup. */
    {
        CoMutex m;

        qemu_co_mutex_init(&m);
        t.lock = &m;
        g_string_truncate(t.log, 0);
        for (i = 0; i < 3; i++) {
            qemu_coroutine_enter(qemu_coroutine_create(queue_waiter,
                                                       &args[i]));
            g_assert_false(m.locked);
        }
        qemu_co_queue_restart_all(&t.q);
        g_assert_cmpstr(t.log->str, ==, "abc");
        g_assert_false(m.locked);
    }
    g_string_free(t.log, true);
}

/* ---- CoRwlock ------------------------------------------------------- */

typedef struct {
    CoRwlock l;
    int readers_in;
    int max_readers;
    bool writer_in;
    GString *log;
} RwTest;

typedef struct {
    RwTest *t;
    char id;
    bool write;
    Coroutine *co;
} RwArg;

/* Take the lock, log, wait to be entered again, release. */
static void coroutine_fn rw_entry(void *opaque)
{
    RwArg *a = opaque;
    RwTest *t = a->t;

    a->co = qemu_coroutine_self();
    if (a->write) {
        qemu_co_rwlock_wrlock(&t->l);
        g_assert_cmpint(t->readers_in, ==, 0);
        g_assert_false(t->writer_in);
        t->writer_in = true;
    } else {
        qemu_co_rwlock_rdlock(&t->l);
        g_assert_false(t->writer_in);
        t->readers_in++;
        t->max_readers = MAX(t->max_readers, t->readers_in);
    }
    g_string_append_c(t->log, a->id);
    qemu_coroutine_yield();
    if (a->write) {
        t->writer_in = false;
    } else {
        t->readers_in--;
    }
    qemu_co_rwlock_unlock(&t->l);
    g_string_append_printf(t->log, "-%c", a->id);
}

static void rw_start(RwArg *a, RwTest *t, char id, bool write)
{
    a->t = t;
    a->id = id;
    a->write = write;
    qemu_coroutine_enter(qemu_coroutine_create(rw_entry, a));
}

static void test_co_rwlock(void)
{
    RwTest t = { .log = g_string_new("") };
    RwArg r1, r2, r3, w1, r4;

    qemu_co_rwlock_init(&t.l);
    /* Readers share. */
    rw_start(&r1, &t, '1', false);
    rw_start(&r2, &t, '2', false);
    rw_start(&r3, &t, '3', false);
    g_assert_cmpint(t.max_readers, ==, 3);
    g_assert_cmpstr(t.log->str, ==, "123");

    /* A writer waits for them; a later reader waits for the writer. */
    rw_start(&w1, &t, 'W', true);
    rw_start(&r4, &t, '4', false);
    g_assert_cmpstr(t.log->str, ==, "123");
    qemu_coroutine_enter(r1.co);
    qemu_coroutine_enter(r2.co);
    g_assert_cmpstr(t.log->str, ==, "123-1-2");
    qemu_coroutine_enter(r3.co);
    /* Writer first, reader 4 still waiting. */
    g_assert_cmpstr(t.log->str, ==, "123-1-2-3W");
    g_assert_true(t.writer_in);
    qemu_coroutine_enter(w1.co);
    g_assert_cmpstr(t.log->str, ==, "123-1-2-3W-W4");
    qemu_coroutine_enter(r4.co);
    g_assert_cmpstr(t.log->str, ==, "123-1-2-3W-W4-4");
    g_assert_false(t.l.writer);
    g_assert_cmpint(t.l.readers, ==, 0);
    g_string_free(t.log, true);
}

typedef struct {
    CoRwlock *l;
    GString *log;
    Coroutine *co;
} UpgradeArg;

static void coroutine_fn upgrader(void *opaque)
{
    UpgradeArg *a = opaque;

    a->co = qemu_coroutine_self();
    qemu_co_rwlock_rdlock(a->l);
    g_string_append(a->log, "R");
    qemu_coroutine_yield();
    qemu_co_rwlock_upgrade(a->l);
    g_assert_true(a->l->writer);
    g_assert_cmpint(a->l->readers, ==, 0);
    g_string_append(a->log, "U");
    qemu_coroutine_yield();
    qemu_co_rwlock_downgrade(a->l);
    g_string_append(a->log, "D");
    qemu_coroutine_yield();
    qemu_co_rwlock_unlock(a->l);
    g_string_append(a->log, "-u");
}

static void coroutine_fn plain_reader(void *opaque)
{
    UpgradeArg *a = opaque;

    a->co = qemu_coroutine_self();
    qemu_co_rwlock_rdlock(a->l);
    g_string_append(a->log, "r");
    qemu_coroutine_yield();
    qemu_co_rwlock_unlock(a->l);
    g_string_append(a->log, "-r");
}

static void test_co_rwlock_upgrade(void)
{
    CoRwlock l;
    GString *log = g_string_new("");
    UpgradeArg up = { &l, log }, rd = { &l, log }, rd2 = { &l, log };

    qemu_co_rwlock_init(&l);
    qemu_coroutine_enter(qemu_coroutine_create(upgrader, &up));
    qemu_coroutine_enter(qemu_coroutine_create(plain_reader, &rd));
    g_assert_cmpstr(log->str, ==, "Rr");
    /* Upgrade must wait for the other reader. */
    qemu_coroutine_enter(up.co);
    g_assert_cmpstr(log->str, ==, "Rr");
    qemu_coroutine_enter(rd.co);
    g_assert_cmpstr(log->str, ==, "Rr-rU");
    /* A reader arriving while we write waits... */
    qemu_coroutine_enter(qemu_coroutine_create(plain_reader, &rd2));
    g_assert_cmpstr(log->str, ==, "Rr-rU");
    /* ...and is let in by the downgrade, sharing with us. */
    qemu_coroutine_enter(up.co);
    g_assert_cmpstr(log->str, ==, "Rr-rUDr");
    g_assert_cmpint(l.readers, ==, 2);
    qemu_coroutine_enter(up.co);
    qemu_coroutine_enter(rd2.co);
    g_assert_cmpstr(log->str, ==, "Rr-rUDr-u-r");
    g_assert_cmpint(l.readers, ==, 0);
    g_assert_false(l.writer);
    g_string_free(log, true);
}

/* ---- sleep ---------------------------------------------------------- */

typedef struct {
    int64_t ns;
    GString *log;
    char id;
    int *running;
} SleepArg;

static void coroutine_fn sleeper(void *opaque)
{
    SleepArg *a = opaque;

    qemu_co_sleep_ns(a->ns);
    g_string_append_c(a->log, a->id);
    (*a->running)--;
}

static void test_co_sleep(void)
{
    GString *log = g_string_new("");
    int running = 3;
    SleepArg a = { 6000000, log, 'c', &running };
    SleepArg b = { 2000000, log, 'a', &running };
    SleepArg c = { 4000000, log, 'b', &running };
    int64_t start = get_clock_ns();

    qemu_coroutine_enter(qemu_coroutine_create(sleeper, &a));
    qemu_coroutine_enter(qemu_coroutine_create(sleeper, &b));
    qemu_coroutine_enter(qemu_coroutine_create(sleeper, &c));
    g_assert_cmpstr(log->str, ==, "");
    while (running) {
        aio_poll(qemu_get_aio_context(), true);
    }
    g_assert_cmpstr(log->str, ==, "abc");
    g_assert_cmpint(get_clock_ns() - start, >=, 6000000);
    g_string_free(log, true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();

    g_test_add_func("/coroutine/enter_yield", test_enter_yield);
    g_test_add_func("/coroutine/nesting", test_nesting);
    g_test_add_func("/coroutine/create_inside", test_create_inside);
    g_test_add_func("/coroutine/big_stack", test_big_stack);
    g_test_add_func("/coroutine/misuse", test_misuse);
    g_test_add_func("/coroutine/pool_reuse", test_pool_reuse);
    g_test_add_func("/coroutine/many", test_many);
    g_test_add_func("/coroutine/wake_deferred", test_wake_deferred);
    g_test_add_func("/coroutine/schedule", test_schedule);
    g_test_add_func("/coroutine/co_mutex", test_co_mutex);
    g_test_add_func("/coroutine/co_mutex_trylock", test_co_mutex_trylock);
    g_test_add_func("/coroutine/co_queue", test_co_queue);
    g_test_add_func("/coroutine/co_rwlock", test_co_rwlock);
    g_test_add_func("/coroutine/co_rwlock_upgrade", test_co_rwlock_upgrade);
    g_test_add_func("/coroutine/co_sleep", test_co_sleep);
    return g_test_run();
}
