/*
 * Asynchronous I/O back ends of the file protocol driver: Linux AIO
 * (libaio) and io_uring.  Each AioContext has at most one instance of
 * each, created on first use and shared by every file node in it.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_RAW_AIO_H
#define BLOCK_RAW_AIO_H

#include "block/aio.h"
#include "qemu/iov.h"

typedef struct BlockDriverState BlockDriverState;

typedef enum {
    QEMU_AIO_READ,
    QEMU_AIO_WRITE,
    QEMU_AIO_FLUSH,      /* fdatasync */
} QemuAioType;

/* libaio: created by aio_get_linux_aio(). */
LinuxAioState *laio_init(Error **errp);
void laio_cleanup(LinuxAioState *s);
void laio_attach_aio_context(LinuxAioState *s, AioContext *ctx);
void laio_detach_aio_context(LinuxAioState *s, AioContext *ctx);
/*
 * Submit one request on @fd and yield until it completes.  Returns the
 * byte count semantics of the kernel folded into 0 / -errno (a short
 * read is zero-filled up to the end of @qiov, a short write is -EIO... 
 * see linux-aio.c).  Submissions are batched until the loop runs.
 */
int coroutine_fn laio_co_submit(int fd, uint64_t offset, QEMUIOVector *qiov,
                                int type, uint64_t dev_max_batch);

/* io_uring: created by aio_get_linux_io_uring(). */
LuringState *luring_init(Error **errp);
void luring_cleanup(LuringState *s);
void luring_attach_aio_context(LuringState *s, AioContext *ctx);
void luring_detach_aio_context(LuringState *s, AioContext *ctx);
int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                  uint64_t offset, QEMUIOVector *qiov,
                                  int type);

#endif
