/*
 * Unit tests for the thread pool.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <pthread.h>

#include "block/aio.h"

static AioContext *ctx;
static pthread_t main_thread;

typedef struct {
    int input;
    int sleep_us;
    pthread_t ran_on;
    int result;
    bool done;
} Job;

static int running, max_running;

static int job_fn(void *opaque)
{
    Job *j = opaque;
    int now = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
    int old = __atomic_load_n(&max_running, __ATOMIC_SEQ_CST);

    while (now > old &&
           !__atomic_compare_exchange_n(&max_running, &old, now, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        /* old reloaded */
    }
    j->ran_on = pthread_self();
    if (j->sleep_us) {
        g_usleep(j->sleep_us);
    }
    __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
    return j->input * 3 - 1;
}

static int completed;

static void job_done(void *opaque, int ret)
{
    Job *j = opaque;

    /* Completions run in the loop thread. */
    g_assert_true(pthread_equal(pthread_self(), main_thread));
    g_assert_false(j->done);
    j->result = ret;
    j->done = true;
    completed++;
}

static void test_submit_aio(void)
{
    enum { N = 2000 };
    Job *jobs = g_new0(Job, N);
    ThreadPool *pool = aio_get_thread_pool(ctx);
    int i;

    g_assert_true(pool == aio_get_thread_pool(ctx));
    completed = 0;
    for (i = 0; i < N; i++) {
        jobs[i].input = i;
        thread_pool_submit_aio(pool, job_fn, &jobs[i], job_done, &jobs[i]);
    }
    AIO_WAIT_WHILE(ctx, completed < N);
    for (i = 0; i < N; i++) {
        g_assert_true(jobs[i].done);
        g_assert_cmpint(jobs[i].result, ==, i * 3 - 1);
        g_assert_false(pthread_equal(jobs[i].ran_on, main_thread));
    }
    /* A late, empty completion BH may still be pending: nothing else. */
    while (aio_poll(ctx, false)) {
    }
    g_assert_cmpint(completed, ==, N);
    g_free(jobs);
}

typedef struct {
    Job job;
    int *left;
} CoJob;

static void coroutine_fn co_job_entry(void *opaque)
{
    CoJob *cj = opaque;
    int ret = thread_pool_submit_co(job_fn, &cj->job);

    g_assert_true(pthread_equal(pthread_self(), main_thread));
    g_assert_true(qemu_in_coroutine());
    cj->job.result = ret;
    cj->job.done = true;
    (*cj->left)--;
}

static void test_submit_co(void)
{
    enum { N = 500 };
    CoJob *jobs = g_new0(CoJob, N);
    int left = N, i;

    for (i = 0; i < N; i++) {
        jobs[i].job.input = i + 7;
        jobs[i].left = &left;
        qemu_coroutine_enter(qemu_coroutine_create(co_job_entry, &jobs[i]));
    }
    AIO_WAIT_WHILE(ctx, left > 0);
    for (i = 0; i < N; i++) {
        g_assert_true(jobs[i].job.done);
        g_assert_cmpint(jobs[i].job.result, ==, (i + 7) * 3 - 1);
    }
    g_free(jobs);
}

static void test_submit_co_outside(void)
{
    Job j = { .input = 5 };

    /* Outside a coroutine it waits synchronously. */
    g_assert_cmpint(thread_pool_submit_co(job_fn, &j), ==, 14);
    g_assert_false(pthread_equal(j.ran_on, main_thread));
}

static void test_max_workers(void)
{
    enum { N = 24 };
    AioContext *c = aio_context_new();
    ThreadPool *pool;
    Job jobs[N] = { 0 };
    int i;

    /* This context belongs to us for the duration of the test. */
    aio_context_set_current(c);
    pool = aio_get_thread_pool(c);
    thread_pool_set_max_workers(pool, 2);
    max_running = 0;
    completed = 0;
    for (i = 0; i < N; i++) {
        jobs[i].input = i;
        jobs[i].sleep_us = 1000;
        thread_pool_submit_aio(pool, job_fn, &jobs[i], job_done, &jobs[i]);
    }
    AIO_WAIT_WHILE(c, completed < N);
    /* (Exactly 2 unless the machine is so loaded they never overlap.) */
    g_assert_cmpint(max_running, >=, 1);
    g_assert_cmpint(max_running, <=, 2);
    for (i = 0; i < N; i++) {
        g_assert_cmpint(jobs[i].result, ==, i * 3 - 1);
    }
    aio_context_set_current(NULL);
    /* Freeing the context stops its workers. */
    aio_context_unref(c);
}

static void test_concurrency(void)
{
    enum { N = 16 };
    Job jobs[N] = { 0 };
    int i;

    /* Blocking jobs run in parallel on separate workers. */
    max_running = 0;
    completed = 0;
    for (i = 0; i < N; i++) {
        jobs[i].sleep_us = 20000;
        thread_pool_submit_aio(aio_get_thread_pool(ctx), job_fn, &jobs[i],
                               job_done, &jobs[i]);
    }
    AIO_WAIT_WHILE(ctx, completed < N);
    g_assert_cmpint(max_running, >, 1);
    g_test_message("max concurrent jobs: %d", max_running);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    ctx = qemu_get_aio_context();
    main_thread = pthread_self();

    g_test_add_func("/thread-pool/submit_aio", test_submit_aio);
    g_test_add_func("/thread-pool/submit_co", test_submit_co);
    g_test_add_func("/thread-pool/submit_co_outside", test_submit_co_outside);
    g_test_add_func("/thread-pool/max_workers", test_max_workers);
    g_test_add_func("/thread-pool/concurrency", test_concurrency);
    return g_test_run();
}
