/*
 * Scatter/gather I/O vector helpers.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/iov.h"

size_t iov_size(const struct iovec *iov, unsigned int iov_cnt)
{
    size_t len = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt; i++) {
        len += iov[i].iov_len;
    }
    return len;
}

size_t iov_to_buf(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, void *buf, size_t bytes)
{
    size_t done = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt && done < bytes; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = MIN(iov[i].iov_len - offset, bytes - done);
        memcpy((char *)buf + done, (char *)iov[i].iov_base + offset, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned int iov_cnt,
                    size_t offset, const void *buf, size_t bytes)
{
    size_t done = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt && done < bytes; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = MIN(iov[i].iov_len - offset, bytes - done);
        memcpy((char *)iov[i].iov_base + offset, (const char *)buf + done, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t iov_memset(const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, int fillc, size_t bytes)
{
    size_t done = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt && done < bytes; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = MIN(iov[i].iov_len - offset, bytes - done);
        memset((char *)iov[i].iov_base + offset, fillc, n);
        done += n;
        offset = 0;
    }
    return done;
}

int iov_copy(struct iovec *dst, unsigned int dst_cnt,
             const struct iovec *src, unsigned int src_cnt,
             size_t offset, size_t bytes)
{
    unsigned int i, j = 0;

    for (i = 0; i < src_cnt && j < dst_cnt && bytes; i++) {
        if (offset >= src[i].iov_len) {
            offset -= src[i].iov_len;
            continue;
        }
        size_t n = MIN(src[i].iov_len - offset, bytes);
        dst[j].iov_base = (char *)src[i].iov_base + offset;
        dst[j].iov_len = n;
        j++;
        bytes -= n;
        offset = 0;
    }
    return j;
}

void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint)
{
    if (alloc_hint < 1) {
        alloc_hint = 1;
    }
    qiov->iov = g_new(struct iovec, alloc_hint);
    qiov->niov = 0;
    qiov->nalloc = alloc_hint;
    qiov->size = 0;
}

void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov, int niov)
{
    qiov->iov = iov;
    qiov->niov = niov;
    qiov->nalloc = -1;
    qiov->size = iov_size(iov, niov);
}

void qemu_iovec_init_buf(QEMUIOVector *qiov, void *buf, size_t len)
{
    qiov->local_iov.iov_base = buf;
    qiov->local_iov.iov_len = len;
    qiov->iov = &qiov->local_iov;
    qiov->niov = 1;
    qiov->nalloc = -1;
    qiov->size = len;
}

void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len)
{
    /* Only vectors that own their array can grow. */
    assert(qiov->nalloc != -1);
    if (qiov->niov == qiov->nalloc) {
        qiov->nalloc = 2 * qiov->nalloc + 1;
        qiov->iov = g_renew(struct iovec, qiov->iov, qiov->nalloc);
    }
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->niov++;
    qiov->size += len;
}

void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                       size_t soffset, size_t sbytes)
{
    int i;

    assert(soffset + sbytes <= src->size);
    for (i = 0; i < src->niov && sbytes; i++) {
        if (soffset >= src->iov[i].iov_len) {
            soffset -= src->iov[i].iov_len;
            continue;
        }
        size_t n = MIN(src->iov[i].iov_len - soffset, sbytes);
        qemu_iovec_add(dst, (char *)src->iov[i].iov_base + soffset, n);
        sbytes -= n;
        soffset = 0;
    }
}

void qemu_iovec_init_slice(QEMUIOVector *qiov, QEMUIOVector *source,
                           size_t offset, size_t len)
{
    qemu_iovec_init(qiov, MIN(source->niov, 16));
    qemu_iovec_concat(qiov, source, offset, len);
}

void qemu_iovec_reset(QEMUIOVector *qiov)
{
    assert(qiov->nalloc != -1);
    qiov->niov = 0;
    qiov->size = 0;
}

void qemu_iovec_destroy(QEMUIOVector *qiov)
{
    if (qiov->nalloc != -1) {
        g_free(qiov->iov);
    }
    memset(qiov, 0, sizeof(*qiov));
}

size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                         void *buf, size_t bytes)
{
    return iov_to_buf(qiov->iov, qiov->niov, offset, buf, bytes);
}

size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes)
{
    return iov_from_buf(qiov->iov, qiov->niov, offset, buf, bytes);
}

size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                         int fillc, size_t bytes)
{
    return iov_memset(qiov->iov, qiov->niov, offset, fillc, bytes);
}

ssize_t qemu_iovec_compare(QEMUIOVector *a, QEMUIOVector *b)
{
    int ia = 0, ib = 0;
    size_t oa = 0, ob = 0, pos = 0;

    /* Walk both vectors in lockstep over their common length. */
    while (ia < a->niov && ib < b->niov) {
        size_t la = a->iov[ia].iov_len - oa;
        size_t lb = b->iov[ib].iov_len - ob;
        size_t n = MIN(la, lb);
        const uint8_t *pa = (const uint8_t *)a->iov[ia].iov_base + oa;
        const uint8_t *pb = (const uint8_t *)b->iov[ib].iov_base + ob;

        if (n && memcmp(pa, pb, n) != 0) {
            size_t k = 0;
            while (pa[k] == pb[k]) {
                k++;
            }
            return pos + k;
        }
        pos += n;
        oa += n;
        ob += n;
        if (oa == a->iov[ia].iov_len) {
            ia++;
            oa = 0;
        }
        if (ob == b->iov[ib].iov_len) {
            ib++;
            ob = 0;
        }
    }
    if (a->size != b->size) {
        return MIN(a->size, b->size);
    }
    return -1;
}

bool qemu_iovec_is_zero(QEMUIOVector *qiov, size_t offset, size_t bytes)
{
    int i;

    for (i = 0; i < qiov->niov && bytes; i++) {
        if (offset >= qiov->iov[i].iov_len) {
            offset -= qiov->iov[i].iov_len;
            continue;
        }
        size_t n = MIN(qiov->iov[i].iov_len - offset, bytes);
        if (!buffer_is_zero((char *)qiov->iov[i].iov_base + offset, n)) {
            return false;
        }
        bytes -= n;
        offset = 0;
    }
    return true;
}

bool qemu_iovec_is_aligned(QEMUIOVector *qiov, size_t align)
{
    int i;

    for (i = 0; i < qiov->niov; i++) {
        if ((uintptr_t)qiov->iov[i].iov_base % align ||
            qiov->iov[i].iov_len % align) {
            return false;
        }
    }
    return true;
}

/*
 * Scan 64 bytes per iteration, OR-ing words together so the loop has no
 * data dependent branch except once per block; the compiler vectorises it.
 */
static bool buffer_is_zero_words(const uint64_t *p, size_t nwords)
{
    size_t i = 0;

    for (; i + 8 <= nwords; i += 8) {
        uint64_t acc = p[i] | p[i + 1] | p[i + 2] | p[i + 3] |
                       p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7];
        if (acc) {
            return false;
        }
    }
    for (; i < nwords; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

bool buffer_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t head;

    if (len == 0) {
        return true;
    }
    /* Check the first bytes quickly: non-zero data is usually found early. */
    if (p[0] || p[len - 1] || p[len / 2]) {
        return false;
    }
    head = (-(uintptr_t)p) & (sizeof(uint64_t) - 1);
    if (head > len) {
        head = len;
    }
    for (size_t i = 0; i < head; i++) {
        if (p[i]) {
            return false;
        }
    }
    p += head;
    len -= head;
    if (!buffer_is_zero_words((const uint64_t *)(const void *)p,
                              len / sizeof(uint64_t))) {
        return false;
    }
    p += len & ~(sizeof(uint64_t) - 1);
    len &= sizeof(uint64_t) - 1;
    for (size_t i = 0; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}
