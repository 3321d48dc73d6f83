/*
 * Common includes and small helpers shared by every translation unit.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every .c file includes this header first.
 */
#ifndef QEMU_OSDEP_H
#define QEMU_OSDEP_H

#define _GNU_SOURCE 1
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "config-host.h"

/*
 * Marks a function that may only be called from coroutine context.  It is
 * documentation (and a grep target); the compiler does not check it.
 */
#define coroutine_fn

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#ifndef container_of
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/* Round @n down/up to a multiple of @m (any positive m). */
#define QEMU_ALIGN_DOWN(n, m) ((n) / (m) * (m))
#define QEMU_ALIGN_UP(n, m)   QEMU_ALIGN_DOWN((n) + (m) - 1, (m))
#define QEMU_IS_ALIGNED(n, m) (((n) % (m)) == 0)
/* Same, for a power-of-two @m. */
#define ROUND_DOWN(n, m)      ((n) & -(0 ? (n) : (m)))
#define ROUND_UP(n, m)        ROUND_DOWN((n) + (m) - 1, (m))
#define DIV_ROUND_UP(n, d)    (((n) + (d) - 1) / (d))

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#define MIN_NON_ZERO(a, b) \
    ((a) == 0 ? (b) : ((b) == 0 ? (a) : MIN(a, b)))

#define QEMU_PACKED        __attribute__((packed))
#define QEMU_NORETURN      __attribute__((noreturn))
#define QEMU_PRINTF(a, b)  __attribute__((format(printf, a, b)))
#define QEMU_UNUSED        __attribute__((unused))
#define QEMU_BUILD_BUG_ON(x) _Static_assert(!(x), #x)

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)
#define TiB (INT64_C(1) << 40)
#define PiB (INT64_C(1) << 50)
#define EiB (INT64_C(1) << 60)

static inline bool is_power_of_2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* Number of the highest set bit, or -1 for 0. */
static inline int ctz64(uint64_t v) { return v ? __builtin_ctzll(v) : 64; }
static inline int clz64(uint64_t v) { return v ? __builtin_clzll(v) : 64; }

/* Host page size and the alignment used for O_DIRECT bounce buffers. */
size_t qemu_real_host_page_size(void);
void *qemu_memalign(size_t alignment, size_t size);
void *qemu_try_memalign(size_t alignment, size_t size);
void qemu_vfree(void *ptr);

/* Monotonic clock in nanoseconds. */
static inline int64_t get_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

#include "qemu/bswap.h"
#include "qemu/error.h"

#endif /* QEMU_OSDEP_H */
