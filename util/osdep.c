/*
 * Host helpers: page size and aligned allocations.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

size_t qemu_real_host_page_size(void)
{
    static size_t page_size;

    if (!page_size) {
        long sz = sysconf(_SC_PAGESIZE);
        page_size = sz > 0 ? (size_t)sz : 4096;
    }
    return page_size;
}

void *qemu_try_memalign(size_t alignment, size_t size)
{
    void *ptr;

    /* posix_memalign wants a power of two that is a multiple of void*. */
    if (alignment < sizeof(void *)) {
        alignment = sizeof(void *);
    }
    assert(is_power_of_2(alignment));
    /* Zero-byte requests still get a unique, freeable pointer. */
    if (size == 0) {
        size = alignment;
    }
    if (posix_memalign(&ptr, alignment, size) != 0) {
        return NULL;
    }
    return ptr;
}

void *qemu_memalign(size_t alignment, size_t size)
{
    void *ptr = qemu_try_memalign(alignment, size);

    if (!ptr) {
        fprintf(stderr, "qemu_memalign: failed to allocate %zu bytes: %s\n",
                size, strerror(ENOMEM));
        abort();
    }
    return ptr;
}

void qemu_vfree(void *ptr)
{
    free(ptr);
}
