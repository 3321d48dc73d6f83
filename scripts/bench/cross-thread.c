/*
 * What handing a request from another thread to the node's home loop
 * and back costs, against starting it as a coroutine in the home loop
 * itself: the measurement behind "one home loop, no cross-thread
 * requests" (docs/devel/block-layer.rst, "Threading model").
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Timing is not a test (README.rst beside this file): this prints
 * figures and asserts nothing.  Each round runs both ways back to back
 * and the median of the per-round ratios is reported, so a round slowed
 * by the other users of this machine skews neither side alone.
 *
 * Requests: "null" (a coroutine that completes in the next loop
 * iteration, as an I/O completion would: the dispatch cost alone) and
 * "read4k" (blk_co_preadv of 4 KiB from a raw file in
 * the page cache, aio=io_uring when built with it, else threads).
 *
 * direct:  the home loop starts each request as a coroutine, as an
 *          export whose ring is an fd handler of that loop does.
 * handoff: a second thread (a per-queue thread of a multi-loop design)
 *          queues the request under a mutex, wakes the home loop with
 *          qemu_bh_schedule() (aio_notify), the loop starts the
 *          coroutine, and the completion wakes the thread through an
 *          eventfd, which it must see before it can commit the request.
 *
 * Usage: cross-thread [ROUNDS [N]]
 */
#include "qemu/osdep.h"
#include "qemu/error.h"
#include "block/aio.h"
#include "block/block-backend.h"
#include "block/block_int.h"

#include <pthread.h>
#include <sys/eventfd.h>

#define FILE_SIZE (1 * MiB)
#define BUF_SIZE 4096

typedef enum { REQ_NULL, REQ_READ4K } ReqKind;

typedef struct Bench Bench;

typedef struct Req {
    Bench *b;
    int64_t offset;
    struct Req *next;
    uint8_t *buf;
} Req;

struct Bench {
    AioContext *ctx;
    BlockBackend *blk;
    ReqKind kind;
    int depth;
    int n;
    /* direct */
    int started, completed;
    Req *free_reqs;
    /* handoff */
    GMutex lock;
    Req *queue;                 /* submitted, not yet started */
    Req *done;                  /* completed, not yet seen by the thread */
    QEMUBH *bh;
    int efd;                    /* completions -> submitter */
    bool stop;
    Req *reqs;                  /* depth of them */
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void coroutine_fn run_request(Req *r)
{
    if (r->b->kind == REQ_NULL) {
        aio_co_schedule(r->b->ctx, qemu_coroutine_self());
        qemu_coroutine_yield();
    } else {
        QEMUIOVector qiov;
        int ret;

        qemu_iovec_init_buf(&qiov, r->buf, BUF_SIZE);
        ret = blk_co_preadv(r->b->blk, r->offset, BUF_SIZE, &qiov, 0);
        if (ret < 0) {
            fprintf(stderr, "read failed: %s\n", strerror(-ret));
            exit(1);
        }
    }
}

/* ---- direct: started by the home loop itself ---------------------------- */

static void coroutine_fn direct_entry(void *opaque)
{
    Req *r = opaque;
    Bench *b = r->b;

    run_request(r);
    b->completed++;
    r->next = b->free_reqs;
    b->free_reqs = r;
}

static double run_direct(Bench *b)
{
    int64_t t0 = now_ns();
    int i;

    b->started = b->completed = 0;
    b->free_reqs = NULL;
    for (i = 0; i < b->depth; i++) {
        b->reqs[i].next = b->free_reqs;
        b->free_reqs = &b->reqs[i];
    }
    while (b->completed < b->n) {
        /* Start as many as there are free tags, as a ring would. */
        while (b->free_reqs && b->started < b->n) {
            Req *r = b->free_reqs;

            b->free_reqs = r->next;
            r->offset = (int64_t)(b->started++ % (FILE_SIZE / BUF_SIZE)) *
                        BUF_SIZE;
            qemu_coroutine_enter(qemu_coroutine_create(direct_entry, r));
        }
        if (b->completed < b->n) {
            aio_poll(b->ctx, true);
        }
    }
    return (double)(now_ns() - t0) / b->n;
}

/* ---- handoff: submitted by another thread ------------------------------- */

static void coroutine_fn handoff_entry(void *opaque)
{
    Req *r = opaque;
    uint64_t one = 1;

    run_request(r);
    g_mutex_lock(&r->b->lock);
    r->next = r->b->done;
    r->b->done = r;
    g_mutex_unlock(&r->b->lock);
    if (write(r->b->efd, &one, sizeof(one)) != sizeof(one)) {
        abort();
    }
}

/* Home loop: start what the other thread queued. */
static void handoff_bh(void *opaque)
{
    Bench *b = opaque;
    Req *r;

    g_mutex_lock(&b->lock);
    r = b->queue;
    b->queue = NULL;
    g_mutex_unlock(&b->lock);
    while (r) {
        Req *next = r->next;

        qemu_coroutine_enter(qemu_coroutine_create(handoff_entry, r));
        r = next;
    }
}

static void handoff_submit(Bench *b, Req *r, int seq)
{
    r->offset = (int64_t)(seq % (FILE_SIZE / BUF_SIZE)) * BUF_SIZE;
    g_mutex_lock(&b->lock);
    r->next = b->queue;
    b->queue = r;
    g_mutex_unlock(&b->lock);
    qemu_bh_schedule(b->bh);
}

/*
 * The queue thread: keeps depth requests in flight, re-submitting one
 * per completion it reads from the eventfd.
 */
static void *handoff_thread(void *opaque)
{
    Bench *b = opaque;
    int submitted = 0, completed = 0, i;
    uint64_t cnt;
    Req *r;

    for (i = 0; i < b->depth && submitted < b->n; i++) {
        handoff_submit(b, &b->reqs[i], submitted++);
    }
    while (completed < b->n) {
        if (read(b->efd, &cnt, sizeof(cnt)) != sizeof(cnt)) {
            abort();
        }
        /* Commit what completed and re-arm those tags. */
        g_mutex_lock(&b->lock);
        r = b->done;
        b->done = NULL;
        g_mutex_unlock(&b->lock);
        while (r) {
            Req *next = r->next;

            completed++;
            if (submitted < b->n) {
                handoff_submit(b, r, submitted++);
            }
            r = next;
        }
    }
    __atomic_store_n(&b->stop, true, __ATOMIC_SEQ_CST);
    aio_notify(b->ctx);
    return NULL;
}

static double run_handoff(Bench *b)
{
    pthread_t th;
    int64_t t0 = now_ns();

    b->stop = false;
    pthread_create(&th, NULL, handoff_thread, b);
    while (!__atomic_load_n(&b->stop, __ATOMIC_SEQ_CST)) {
        aio_poll(b->ctx, true);
    }
    pthread_join(th, NULL);
    return (double)(now_ns() - t0) / b->n;
}

/* ------------------------------------------------------------------------ */

static BlockBackend *open_file(const char *path)
{
    QDict *opts = qdict_new();
    Error *err = NULL;
    BlockBackend *blk;

    qdict_put_str(opts, "driver", "raw");
    qdict_put_str(opts, "file.driver", "file");
    qdict_put_str(opts, "file.filename", path);
#ifdef CONFIG_LINUX_IO_URING
    qdict_put_str(opts, "file.aio", "io_uring");
#endif
    blk = blk_new_open(NULL, opts, 0, &err);
    if (!blk) {
        error_report_err(err);
        exit(1);
    }
    return blk;
}

static void bench(Bench *b, const char *name, int rounds)
{
    double *direct = g_new(double, rounds);
    double *handoff = g_new(double, rounds);
    double *ratio = g_new(double, rounds);
    int r;

    /* Warm the caches, the coroutine pool and the page cache. */
    run_direct(b);
    run_handoff(b);
    for (r = 0; r < rounds; r++) {
        direct[r] = run_direct(b);
        handoff[r] = run_handoff(b);
        ratio[r] = handoff[r] / direct[r];
    }
    printf("%-8s depth %2d: direct %8.0f ns/req, handoff %8.0f ns/req, "
           "handoff/direct %.2fx (median of %d x %d)\n",
           name, b->depth, median(direct, rounds), median(handoff, rounds),
           median(ratio, rounds), rounds, b->n);
    g_free(direct);
    g_free(handoff);
    g_free(ratio);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    int n = argc > 2 ? atoi(argv[2]) : 20000;
    static const int depths[] = { 1, 32 };
    g_autofree char *path = NULL;
    Bench b = { 0 };
    int fd, i, k;

    if (rounds < 1 || n < 1) {
        fprintf(stderr, "usage: %s [ROUNDS [N]]\n", argv[0]);
        return 1;
    }
    error_set_progname("cross-thread");
    qemu_init_main_loop();
    bdrv_init();

    fd = g_file_open_tmp("cross-thread-XXXXXX", &path, NULL);
    if (fd < 0) {
        fprintf(stderr, "cannot create a temporary file\n");
        return 1;
    }
    {
        g_autofree uint8_t *data = g_malloc(FILE_SIZE);

        memset(data, 0xa5, FILE_SIZE);
        if (write(fd, data, FILE_SIZE) != FILE_SIZE) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
    }
    close(fd);

    b.ctx = qemu_get_aio_context();
    b.blk = open_file(path);
    b.n = n;
    b.bh = aio_bh_new(b.ctx, handoff_bh, &b);
    b.efd = eventfd(0, EFD_CLOEXEC);
    g_mutex_init(&b.lock);
    b.reqs = g_new0(Req, 32);
    for (i = 0; i < 32; i++) {
        b.reqs[i].b = &b;
        b.reqs[i].buf = qemu_blockalign(blk_bs(b.blk), BUF_SIZE);
    }

    for (k = 0; k < 2; k++) {
        for (i = 0; i < (int)ARRAY_SIZE(depths); i++) {
            b.kind = k ? REQ_READ4K : REQ_NULL;
            b.depth = depths[i];
            bench(&b, k ? "read4k" : "null", rounds);
        }
    }

    for (i = 0; i < 32; i++) {
        qemu_vfree(b.reqs[i].buf);
    }
    qemu_bh_delete(b.bh);
    close(b.efd);
    blk_unref(b.blk);
    unlink(path);
    return 0;
}
