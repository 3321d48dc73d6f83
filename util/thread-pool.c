/*
 * Thread pool: run blocking calls (preadv without aio, fsync, fallocate)
 * on worker threads and deliver the result back in the submitting
 * AioContext's thread, through a bottom half.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <pthread.h>
#include <signal.h>

#include "block/aio-int.h"

#define THREAD_POOL_MAX_WORKERS_DEFAULT 64
/* Idle workers exit after this long (g_cond_wait_until uses us). */
#define THREAD_POOL_IDLE_TIMEOUT_US (10 * G_USEC_PER_SEC)

typedef struct ThreadPoolRequest {
    ThreadPoolFunc *func;
    void *arg;
    /* Exactly one of co (coroutine form) and cb (callback form). */
    Coroutine *co;
    ThreadPoolCompletion *cb;
    void *opaque;
    int ret;
    struct ThreadPoolRequest *next;
} ThreadPoolRequest;

struct ThreadPool {
    AioContext *ctx;
    QEMUBH *completion_bh;

    GMutex lock;
    GCond request_cond;         /* work queued or stopping */
    GCond exit_cond;            /* a worker exited */
    /* Protected by lock: */
    ThreadPoolRequest *queue_head, *queue_tail;
    int queued;
    int cur_threads;
    int idle_threads;
    int max_threads;
    bool stopping;

    /* Finished requests, pushed by workers (lock-free LIFO). */
    ThreadPoolRequest *done;
    /* Owner thread only: finished requests not yet completed, FIFO. */
    ThreadPoolRequest *ready_head, *ready_tail;
    int inflight;
};

static void *thread_pool_worker(void *opaque)
{
    ThreadPool *pool = opaque;

    g_mutex_lock(&pool->lock);
    for (;;) {
        ThreadPoolRequest *req, *head;

        while (!pool->queue_head && !pool->stopping) {
            gint64 deadline = g_get_monotonic_time() +
                              THREAD_POOL_IDLE_TIMEOUT_US;
            gboolean woken;

            pool->idle_threads++;
            woken = g_cond_wait_until(&pool->request_cond, &pool->lock,
                                      deadline);
            pool->idle_threads--;
            if (!woken && !pool->queue_head) {
                goto out;       /* idle for too long */
            }
        }
        if (!pool->queue_head) {
            break;              /* stopping */
        }
        req = pool->queue_head;
        pool->queue_head = req->next;
        if (!pool->queue_head) {
            pool->queue_tail = NULL;
        }
        pool->queued--;
        g_mutex_unlock(&pool->lock);

        req->ret = req->func(req->arg);

        head = __atomic_load_n(&pool->done, __ATOMIC_RELAXED);
        do {
            req->next = head;
        } while (!__atomic_compare_exchange_n(&pool->done, &head, req, true,
                                              __ATOMIC_RELEASE,
                                              __ATOMIC_RELAXED));
        /* Only costs a write to the eventfd if the loop sleeps. */
        qemu_bh_schedule(pool->completion_bh);

        g_mutex_lock(&pool->lock);
    }
out:
    pool->cur_threads--;
    g_cond_broadcast(&pool->exit_cond);
    g_mutex_unlock(&pool->lock);
    return NULL;
}

/* Called with pool->lock held. */
static void thread_pool_spawn(ThreadPool *pool)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int err;

    /* Workers must not take signals meant for the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&tid, &attr, thread_pool_worker, pool);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err == 0) {
        pool->cur_threads++;
    } else if (pool->cur_threads == 0) {
        /* Nobody would ever run the request. */
        fprintf(stderr, "thread pool: cannot create a worker: %s\n",
                strerror(err));
        abort();
    }
}

static void thread_pool_completion_bh(void *opaque)
{
    ThreadPool *pool = opaque;
    ThreadPoolRequest *list, *req;

    list = __atomic_exchange_n(&pool->done, NULL, __ATOMIC_ACQUIRE);
    if (list) {
        ThreadPoolRequest *rev = NULL, *tail = list;

        while (list) {
            ThreadPoolRequest *next = list->next;

            list->next = rev;
            rev = list;
            list = next;
        }
        if (pool->ready_tail) {
            pool->ready_tail->next = rev;
        } else {
            pool->ready_head = rev;
        }
        pool->ready_tail = tail;
    }

    while ((req = pool->ready_head)) {
        pool->ready_head = req->next;
        if (!pool->ready_head) {
            pool->ready_tail = NULL;
        } else {
            /* A callback may run a nested aio_poll: it finishes the rest. */
            qemu_bh_schedule(pool->completion_bh);
        }
        pool->inflight--;
        pool->ctx->poll_inflight--;
        if (req->co) {
            /* req lives on the coroutine's stack. */
            aio_co_wake(req->co);
        } else {
            ThreadPoolCompletion *cb = req->cb;
            void *cb_opaque = req->opaque;
            int ret = req->ret;

            g_free(req);
            cb(cb_opaque, ret);
        }
    }
}

ThreadPool *thread_pool_new(AioContext *ctx)
{
    ThreadPool *pool = g_new0(ThreadPool, 1);

    pool->ctx = ctx;
    pool->completion_bh = aio_bh_new(ctx, thread_pool_completion_bh, pool);
    g_mutex_init(&pool->lock);
    g_cond_init(&pool->request_cond);
    g_cond_init(&pool->exit_cond);
    pool->max_threads = THREAD_POOL_MAX_WORKERS_DEFAULT;
    return pool;
}

void thread_pool_free(ThreadPool *pool)
{
    /* Requests still running reference the pool: let them finish. */
    while (pool->inflight) {
        aio_poll(pool->ctx, true);
    }
    g_mutex_lock(&pool->lock);
    pool->stopping = true;
    g_cond_broadcast(&pool->request_cond);
    while (pool->cur_threads) {
        g_cond_wait(&pool->exit_cond, &pool->lock);
    }
    g_mutex_unlock(&pool->lock);

    qemu_bh_delete(pool->completion_bh);
    g_cond_clear(&pool->exit_cond);
    g_cond_clear(&pool->request_cond);
    g_mutex_clear(&pool->lock);
    g_free(pool);
}

void thread_pool_set_max_workers(ThreadPool *pool, int max)
{
    g_mutex_lock(&pool->lock);
    pool->max_threads = MAX(max, 1);
    g_mutex_unlock(&pool->lock);
}

static void thread_pool_queue(ThreadPool *pool, ThreadPoolRequest *req)
{
    bool wake;

    req->next = NULL;
    pool->inflight++;
    pool->ctx->poll_inflight++;

    g_mutex_lock(&pool->lock);
    if (pool->queue_tail) {
        pool->queue_tail->next = req;
    } else {
        pool->queue_head = req;
    }
    pool->queue_tail = req;
    pool->queued++;
    /* Idle workers already signalled count against queued requests. */
    if (pool->idle_threads < pool->queued &&
        pool->cur_threads < pool->max_threads) {
        thread_pool_spawn(pool);
    }
    /* Busy workers look at the queue before sleeping again. */
    wake = pool->idle_threads > 0;
    g_mutex_unlock(&pool->lock);
    /* Signal unlocked, so the woken worker does not block on the lock. */
    if (wake) {
        g_cond_signal(&pool->request_cond);
    }
}

void thread_pool_submit_aio(ThreadPool *pool, ThreadPoolFunc *func,
                            void *arg, ThreadPoolCompletion *cb,
                            void *opaque)
{
    ThreadPoolRequest *req = g_new0(ThreadPoolRequest, 1);

    assert(cb);
    req->func = func;
    req->arg = arg;
    req->cb = cb;
    req->opaque = opaque;
    thread_pool_queue(pool, req);
}

typedef struct ThreadPoolSync {
    bool done;
    int ret;
} ThreadPoolSync;

static void thread_pool_sync_cb(void *opaque, int ret)
{
    ThreadPoolSync *s = opaque;

    s->ret = ret;
    s->done = true;
}

int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    ThreadPool *pool = aio_get_thread_pool(ctx);
    ThreadPoolRequest req = {
        .func = func,
        .arg = opaque,
        .co = qemu_coroutine_self(),
    };

    if (!req.co) {
        /* Outside coroutines: wait synchronously in the event loop. */
        ThreadPoolSync s = { 0 };

        thread_pool_submit_aio(pool, func, opaque, thread_pool_sync_cb, &s);
        AIO_WAIT_WHILE(ctx, !s.done);
        return s.ret;
    }
    thread_pool_queue(pool, &req);
    qemu_coroutine_yield();
    return req.ret;
}
