/*
 * Cost of a coroutine switch and of a pooled create+enter+terminate.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Timing is not a test (see README.rst beside this file): this prints
 * figures and asserts nothing.  Each figure is the median of several
 * rounds, so one preempted round on the shared machine does not skew it.
 * Usage: coroutine-switch [ROUNDS [N]]
 */
#include "qemu/osdep.h"

#include "block/aio.h"

static void coroutine_fn bench_entry(void *opaque)
{
    bool *stop = opaque;

    while (!*stop) {
        qemu_coroutine_yield();
    }
}

static void coroutine_fn bench_short(void *opaque)
{
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

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    int n = argc > 2 ? atoi(argv[2]) : 1000000;
    double *round_trip, *create;
    bool stop = false;
    Coroutine *co;
    int r, i;

    if (rounds < 1 || n < 1) {
        fprintf(stderr, "usage: %s [ROUNDS [N]]\n", argv[0]);
        return 1;
    }
    qemu_init_main_loop();
    round_trip = g_new(double, rounds);
    create = g_new(double, rounds);
    co = qemu_coroutine_create(bench_entry, &stop);
    qemu_coroutine_enter(co);
    for (r = 0; r < rounds; r++) {
        int64_t t0, t1, t2;

        t0 = get_clock_ns();
        for (i = 0; i < n; i++) {
            qemu_coroutine_enter(co);   /* enter + yield = two switches */
        }
        t1 = get_clock_ns();
        for (i = 0; i < n; i++) {
            qemu_coroutine_enter(qemu_coroutine_create(bench_short, NULL));
        }
        t2 = get_clock_ns();
        round_trip[r] = (double)(t1 - t0) / n;
        create[r] = (double)(t2 - t1) / n;
    }
    stop = true;
    qemu_coroutine_enter(co);

    printf("coroutine switch: %.1f ns; enter+yield round trip: %.1f ns; "
           "pooled create+enter+terminate: %.1f ns (median of %d x %d)\n",
           median(round_trip, rounds) / 2, median(round_trip, rounds),
           median(create, rounds), rounds, n);
    g_free(round_trip);
    g_free(create);
    return 0;
}
