/*
 * Tests for I/O vector helpers and buffer_is_zero.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/iov.h"

/* Three buffers of odd sizes so slices cross element boundaries. */
#define NBUF 3
static const size_t buf_sizes[NBUF] = { 7, 1, 13 };

typedef struct Fixture {
    uint8_t *bufs[NBUF];
    struct iovec iov[NBUF];
    QEMUIOVector qiov;
    uint8_t flat[32];       /* same contents, contiguous */
    size_t total;
} Fixture;

static void fixture_init(Fixture *f)
{
    size_t pos = 0;
    int i;

    for (i = 0; i < NBUF; i++) {
        f->bufs[i] = g_malloc(buf_sizes[i]);
        for (size_t j = 0; j < buf_sizes[i]; j++) {
            f->bufs[i][j] = f->flat[pos] = (uint8_t)(pos * 7 + 1);
            pos++;
        }
        f->iov[i].iov_base = f->bufs[i];
        f->iov[i].iov_len = buf_sizes[i];
    }
    f->total = pos;
    qemu_iovec_init_external(&f->qiov, f->iov, NBUF);
}

static void fixture_destroy(Fixture *f)
{
    for (int i = 0; i < NBUF; i++) {
        g_free(f->bufs[i]);
    }
}

static void test_iov_size_and_copy(void)
{
    Fixture f;
    uint8_t out[32];

    fixture_init(&f);
    g_assert_cmpuint(f.qiov.size, ==, 21);
    g_assert_cmpuint(iov_size(f.iov, NBUF), ==, 21);

    /* Every offset/length pair must match the flat copy. */
    for (size_t off = 0; off <= f.total; off++) {
        for (size_t len = 0; off + len <= f.total; len++) {
            memset(out, 0xaa, sizeof(out));
            g_assert_cmpuint(qemu_iovec_to_buf(&f.qiov, off, out, len), ==,
                             len);
            g_assert_cmpmem(out, len, f.flat + off, len);
            g_assert_cmpint(out[len], ==, 0xaa);
        }
    }
    /* Reading past the end is truncated. */
    g_assert_cmpuint(qemu_iovec_to_buf(&f.qiov, 15, out, 100), ==, 6);
    g_assert_cmpuint(qemu_iovec_to_buf(&f.qiov, 30, out, 100), ==, 0);

    /* from_buf across the boundary between element 0, 1 and 2. */
    static const uint8_t pattern[4] = { 0xf0, 0xf1, 0xf2, 0xf3 };
    g_assert_cmpuint(qemu_iovec_from_buf(&f.qiov, 6, pattern, 4), ==, 4);
    g_assert_cmpint(f.bufs[0][6], ==, 0xf0);
    g_assert_cmpint(f.bufs[1][0], ==, 0xf1);
    g_assert_cmpint(f.bufs[2][0], ==, 0xf2);
    g_assert_cmpint(f.bufs[2][1], ==, 0xf3);
    g_assert_cmpint(f.bufs[2][2], ==, f.flat[10]);

    g_assert_cmpuint(qemu_iovec_memset(&f.qiov, 5, 0, 5), ==, 5);
    g_assert_true(qemu_iovec_is_zero(&f.qiov, 5, 5));
    g_assert_false(qemu_iovec_is_zero(&f.qiov, 4, 5));
    g_assert_false(qemu_iovec_is_zero(&f.qiov, 5, 6));
    g_assert_cmpint(f.bufs[0][4], ==, f.flat[4]);
    g_assert_cmpint(f.bufs[2][1], ==, 0);
    g_assert_cmpint(f.bufs[2][2], ==, f.flat[10]);
    fixture_destroy(&f);
}

static void test_init_buf(void)
{
    QEMUIOVector qiov;
    char buf[16] = "hello";

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    g_assert_cmpint(qiov.niov, ==, 1);
    g_assert_cmpint(qiov.nalloc, ==, -1);
    /* No allocation: the single element lives inside the vector itself. */
    g_assert_true(qiov.iov == &qiov.local_iov);
    g_assert_true(qiov.iov[0].iov_base == buf);
    g_assert_cmpuint(qiov.size, ==, 16);
    g_assert_true(qemu_iovec_is_aligned(&qiov, 1));
    qemu_iovec_destroy(&qiov);
}

static void test_add_concat_slice(void)
{
    Fixture f;
    QEMUIOVector q, s;
    uint8_t out[32];

    fixture_init(&f);
    qemu_iovec_init(&q, 1);
    for (int i = 0; i < 20; i++) {
        qemu_iovec_add(&q, f.flat + i, 1);
    }
    g_assert_cmpint(q.niov, ==, 20);
    g_assert_cmpuint(q.size, ==, 20);
    g_assert_cmpuint(qemu_iovec_to_buf(&q, 0, out, 20), ==, 20);
    g_assert_cmpmem(out, 20, f.flat, 20);
    qemu_iovec_reset(&q);
    g_assert_cmpint(q.niov, ==, 0);
    g_assert_cmpuint(q.size, ==, 0);

    /* concat bytes [5, 17) of the three-buffer vector: touches all three. */
    qemu_iovec_concat(&q, &f.qiov, 5, 12);
    g_assert_cmpint(q.niov, ==, 3);
    g_assert_cmpuint(q.size, ==, 12);
    g_assert_cmpuint(q.iov[0].iov_len, ==, 2);
    g_assert_cmpuint(q.iov[1].iov_len, ==, 1);
    g_assert_cmpuint(q.iov[2].iov_len, ==, 9);
    qemu_iovec_to_buf(&q, 0, out, 12);
    g_assert_cmpmem(out, 12, f.flat + 5, 12);
    qemu_iovec_destroy(&q);

    /* A slice entirely inside the last buffer. */
    qemu_iovec_init_slice(&s, &f.qiov, 10, 5);
    g_assert_cmpint(s.niov, ==, 1);
    g_assert_true(s.iov[0].iov_base == f.bufs[2] + 2);
    qemu_iovec_destroy(&s);

    /* Slices starting exactly on a boundary skip empty pieces. */
    qemu_iovec_init_slice(&s, &f.qiov, 7, 2);
    g_assert_cmpint(s.niov, ==, 2);
    g_assert_true(s.iov[0].iov_base == f.bufs[1]);
    g_assert_true(s.iov[1].iov_base == f.bufs[2]);
    qemu_iovec_destroy(&s);

    qemu_iovec_init_slice(&s, &f.qiov, 21, 0);
    g_assert_cmpint(s.niov, ==, 0);
    qemu_iovec_destroy(&s);

    struct iovec dst[2];
    g_assert_cmpint(iov_copy(dst, 2, f.iov, NBUF, 3, 100), ==, 2);
    g_assert_true(dst[0].iov_base == f.bufs[0] + 3);
    g_assert_cmpuint(dst[0].iov_len, ==, 4);
    g_assert_cmpuint(dst[1].iov_len, ==, 1);
    fixture_destroy(&f);
}

static void test_compare(void)
{
    Fixture f;
    QEMUIOVector flat;
    uint8_t copy[32];

    fixture_init(&f);
    memcpy(copy, f.flat, f.total);
    qemu_iovec_init_buf(&flat, copy, f.total);
    g_assert_cmpint(qemu_iovec_compare(&f.qiov, &flat), ==, -1);
    g_assert_cmpint(qemu_iovec_compare(&flat, &f.qiov), ==, -1);
    copy[7] ^= 1;
    g_assert_cmpint(qemu_iovec_compare(&f.qiov, &flat), ==, 7);
    copy[7] ^= 1;
    copy[20] ^= 0x80;
    g_assert_cmpint(qemu_iovec_compare(&flat, &f.qiov), ==, 20);
    copy[20] ^= 0x80;
    /* Same prefix, different length: differs where the shorter ends. */
    qemu_iovec_init_buf(&flat, copy, 10);
    g_assert_cmpint(qemu_iovec_compare(&f.qiov, &flat), ==, 10);
    fixture_destroy(&f);
}

static void test_aligned(void)
{
    uint8_t *buf = qemu_memalign(4096, 8192);
    struct iovec iov[2] = {
        { buf, 4096 },
        { buf + 4096, 512 },
    };
    QEMUIOVector qiov;

    g_assert_true(((uintptr_t)buf & 4095) == 0);
    qemu_iovec_init_external(&qiov, iov, 2);
    g_assert_true(qemu_iovec_is_aligned(&qiov, 512));
    g_assert_false(qemu_iovec_is_aligned(&qiov, 4096));
    iov[1].iov_base = buf + 1;
    g_assert_false(qemu_iovec_is_aligned(&qiov, 512));
    qemu_vfree(buf);
    g_assert_cmpuint(qemu_real_host_page_size(), >=, 4096);
    g_assert_true(is_power_of_2(qemu_real_host_page_size()));
    buf = qemu_try_memalign(512, 0);
    g_assert_nonnull(buf);
    qemu_vfree(buf);
}

static void test_buffer_is_zero(void)
{
    size_t size = 4096 + 64;
    uint8_t *buf = g_malloc0(size + 16);

    g_assert_true(buffer_is_zero(buf, 0));
    /* Every alignment and length combination around the word size. */
    for (size_t start = 0; start < 16; start++) {
        for (size_t len = 1; len < 200; len++) {
            g_assert_true(buffer_is_zero(buf + start, len));
            for (size_t pos = 0; pos < len; pos++) {
                buf[start + pos] = 1;
                g_assert_false(buffer_is_zero(buf + start, len));
                buf[start + pos] = 0;
            }
            /* Non-zero bytes just outside the range are ignored. */
            if (start) {
                buf[start - 1] = 0xff;
            }
            buf[start + len] = 0xff;
            g_assert_true(buffer_is_zero(buf + start, len));
            if (start) {
                buf[start - 1] = 0;
            }
            buf[start + len] = 0;
        }
    }
    g_assert_true(buffer_is_zero(buf, size));
    buf[size - 1] = 0x10;
    g_assert_false(buffer_is_zero(buf, size));
    buf[size - 1] = 0;
    buf[3000] = 0x80;
    g_assert_false(buffer_is_zero(buf, size));
    g_free(buf);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/iov/size_and_copy", test_iov_size_and_copy);
    g_test_add_func("/iov/init_buf", test_init_buf);
    g_test_add_func("/iov/add_concat_slice", test_add_concat_slice);
    g_test_add_func("/iov/compare", test_compare);
    g_test_add_func("/iov/aligned", test_aligned);
    g_test_add_func("/iov/buffer_is_zero", test_buffer_is_zero);
    return g_test_run();
}
