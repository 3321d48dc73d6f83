/*
 * Scatter/gather I/O vectors.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_IOV_H
#define QEMU_IOV_H

/*
 * A list of buffers with a cached total size.  For the common single
 * buffer case, qemu_iovec_init_buf() uses the embedded local_iov and
 * allocates nothing.
 */
typedef struct QEMUIOVector {
    struct iovec *iov;
    int niov;
    int nalloc;          /* -1: iov points at local_iov or external memory */
    size_t size;
    struct iovec local_iov;
} QEMUIOVector;

void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);
void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov, int niov);
void qemu_iovec_init_buf(QEMUIOVector *qiov, void *buf, size_t len);
/* Make @qiov describe bytes [offset, offset+len) of @source (allocates). */
void qemu_iovec_init_slice(QEMUIOVector *qiov, QEMUIOVector *source,
                           size_t offset, size_t len);
void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);
void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                       size_t soffset, size_t sbytes);
void qemu_iovec_reset(QEMUIOVector *qiov);
void qemu_iovec_destroy(QEMUIOVector *qiov);

size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                         void *buf, size_t bytes);
size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes);
size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                         int fillc, size_t bytes);
/* Compare contents; returns -1 if equal, else the first differing offset. */
ssize_t qemu_iovec_compare(QEMUIOVector *a, QEMUIOVector *b);
/* True if bytes [offset, offset+bytes) are all zero. */
bool qemu_iovec_is_zero(QEMUIOVector *qiov, size_t offset, size_t bytes);
/* Every buffer address and length is a multiple of @align. */
bool qemu_iovec_is_aligned(QEMUIOVector *qiov, size_t align);

/* Plain iovec array helpers. */
size_t iov_size(const struct iovec *iov, unsigned int iov_cnt);
size_t iov_to_buf(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, void *buf, size_t bytes);
size_t iov_from_buf(const struct iovec *iov, unsigned int iov_cnt,
                    size_t offset, const void *buf, size_t bytes);
size_t iov_memset(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, int fillc, size_t bytes);
/* Fill @dst with at most @dst_cnt entries covering [offset, offset+bytes)
 * of @src; returns the number used. */
int iov_copy(struct iovec *dst, unsigned int dst_cnt,
             const struct iovec *src, unsigned int src_cnt,
             size_t offset, size_t bytes);

/* True if @buf[0..len) is all zeroes (fast). */
bool buffer_is_zero(const void *buf, size_t len);

#endif
