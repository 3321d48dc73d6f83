/*
 * Unit tests for the qcow2 driver core (mapping, allocation, refcounts,
 * COW, zero/discard, compression, backing files, reopen).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Images are laid out by hand here (header, refcount table, one refcount
 * block, L1 table) so the tests do not depend on the create code.  When
 * Debian's qemu-img is installed, the results are also checked with it.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/aio.h"
#include "qemu/cutils.h"
#include "../../block/qcow2.h"

#define REF_QEMU_IMG "/usr/bin/qemu-img"

static char *tmpdir;
/* Compression type written by make_image() (v3 only). */
static int make_image_compression;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/*
 * Write a fresh image: header in cluster 0, refcount table in cluster 1,
 * refcount block in cluster 2, L1 table from cluster 3.
 */
static void make_image(const char *path, uint64_t size, int cluster_bits,
                       int refcount_order, int version,
                       const char *backing, const char *backing_fmt)
{
    uint64_t cs = 1ULL << cluster_bits;
    uint64_t l1_entries = DIV_ROUND_UP(size, cs * (cs / 8));
    uint64_t l1_clusters = MAX(1, DIV_ROUND_UP(l1_entries * 8, cs));
    uint64_t nclusters = 3 + l1_clusters;
    uint8_t *buf = g_malloc0(nclusters * cs);
    Qcow2SetRefcountFunc *set = qcow2_refcount_set_func(refcount_order);
    uint64_t off;
    uint64_t i;
    int fd;

    g_assert_cmpint(nclusters, <=,
                    (cs * 8) >> refcount_order);   /* one refblock */
    stbe32_p(buf, QCOW_MAGIC);
    stbe32_p(buf + 4, version);
    stbe32_p(buf + 20, cluster_bits);
    stbe64_p(buf + 24, size);
    stbe32_p(buf + 36, l1_entries);
    stbe64_p(buf + 40, 3 * cs);
    stbe64_p(buf + 48, cs);
    stbe32_p(buf + 56, 1);
    off = 72;
    if (version == 3) {
        stbe32_p(buf + 96, refcount_order);
        stbe32_p(buf + 100, 112);
        if (make_image_compression) {
            stbe64_p(buf + 72, QCOW2_INCOMPAT_COMPRESSION);
            buf[104] = make_image_compression;
        }
        off = 112;
    }
    if (backing_fmt) {
        stbe32_p(buf + off, QCOW2_EXT_MAGIC_BACKING_FORMAT);
        stbe32_p(buf + off + 4, strlen(backing_fmt));
        memcpy(buf + off + 8, backing_fmt, strlen(backing_fmt));
        off += 8 + ROUND_UP(strlen(backing_fmt), 8);
    }
    off += 8;   /* end of extensions */
    if (backing) {
        stbe64_p(buf + 8, off);
        stbe32_p(buf + 16, strlen(backing));
        memcpy(buf + off, backing, strlen(backing));
    }
    stbe64_p(buf + cs, 2 * cs);
    for (i = 0; i < nclusters; i++) {
        set(buf + 2 * cs, i, 1);
    }
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, buf, nclusters * cs), ==, nclusters * cs);
    close(fd);
    g_free(buf);
}

static BlockBackend *open_image(const char *path, bool rw, const char *extra)
{
    Error *err = NULL;
    g_autofree char *str = g_strdup_printf("driver=qcow2,file.filename=%s%s%s",
                                           path, extra ? "," : "",
                                           extra ? extra : "");
    QDict *opts = qdict_parse_keyval(str, NULL, &error_abort);
    BlockBackend *blk = blk_new_open(NULL, opts,
                                     rw ? BDRV_O_RDWR | BDRV_O_UNMAP : 0,
                                     &err);

    if (!blk) {
        g_printerr("open %s: %s\n", path, error_get_pretty(err));
        error_free(err);
    }
    return blk;
}

static int run_cmd(const char *cmd, char **out)
{
    int status = -1;
    g_autofree char *err = NULL;

    if (!g_spawn_command_line_sync(cmd, out, &err, &status, NULL)) {
        return -1;
    }
    if (status) {
        g_printerr("%s: %s\n", cmd, err ? err : "");
    }
    return status;
}

static bool have_qemu_img(void)
{
    return access(REF_QEMU_IMG, X_OK) == 0;
}

/* qemu-img check must report a clean image. */
static void check_with_qemu(const char *path)
{
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;

    if (!have_qemu_img()) {
        g_test_skip(REF_QEMU_IMG " not installed");
        return;
    }
    cmd = g_strdup_printf(REF_QEMU_IMG " check %s", path);
    if (run_cmd(cmd, &out) != 0 || !strstr(out, "No errors were found")) {
        g_printerr("%s", out ? out : "");
        g_assert_not_reached();
    }
}

/* Compare the image's content to @ref with qemu-img compare. */
static void compare_with_qemu(const char *path, const uint8_t *ref,
                              uint64_t size)
{
    g_autofree char *raw = tmp_path("ref.raw");
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    int fd;

    if (!have_qemu_img()) {
        g_test_skip(REF_QEMU_IMG " not installed");
        return;
    }
    fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    g_assert_cmpint(write(fd, ref, size), ==, size);
    close(fd);
    cmd = g_strdup_printf(REF_QEMU_IMG " compare -f qcow2 -F raw %s %s",
                          path, raw);
    g_assert_cmpint(run_cmd(cmd, &out), ==, 0);
    unlink(raw);
}

static void verify_content(BlockBackend *blk, const uint8_t *ref,
                           uint64_t size)
{
    uint8_t *buf = g_malloc(size);
    uint64_t i;

    g_assert_cmpint(blk_pread(blk, 0, size, buf, 0), ==, 0);
    if (memcmp(buf, ref, size)) {
        for (i = 0; i < size && buf[i] == ref[i]; i++) {
        }
        g_printerr("mismatch at %#" PRIx64 ": %02x != %02x\n", i, buf[i],
                   ref[i]);
        g_assert_not_reached();
    }
    g_free(buf);
}

/* ---- random I/O against a reference --------------------------------------- */

typedef struct Op {
    int kind;          /* 0 write, 1 zero, 2 zero+unmap, 3 discard, 4 compr */
    int64_t offset, bytes;
    uint8_t *buf;
    QEMUIOVector qiov;
    int ret;
    bool done;
} Op;

static void op_cb(void *opaque, int ret)
{
    Op *op = opaque;

    op->ret = ret;
    op->done = true;
}

static bool overlaps(Op *ops, int n, int64_t off, int64_t len, int64_t align)
{
    int i;

    off = QEMU_ALIGN_DOWN(off, align);
    len = QEMU_ALIGN_UP(off + len, align) - off;
    for (i = 0; i < n; i++) {
        int64_t o = QEMU_ALIGN_DOWN(ops[i].offset, align);
        int64_t l = QEMU_ALIGN_UP(ops[i].offset + ops[i].bytes, align) - o;

        if (off < o + l && o < off + len) {
            return true;
        }
    }
    return false;
}

static void apply_ref(uint8_t *ref, Op *op, int64_t cs, uint64_t size,
                      const uint8_t *backing)
{
    int64_t s = op->offset, e = op->offset + op->bytes;
    int64_t as = QEMU_ALIGN_UP(s, cs), ae = QEMU_ALIGN_DOWN(e, cs);

    if ((uint64_t)e == size) {
        ae = e;
    }
    switch (op->kind) {
    case 0:
    case 4:
        memcpy(ref + s, op->buf, op->bytes);
        break;
    case 1:
    case 2:
        memset(ref + s, 0, op->bytes);
        break;
    case 3:
        /* Whole clusters only: they read as zeroes (with a backing file
         * only in v3, where the zero flag hides it; else it shows). */
        if (as < ae) {
            if (backing) {
                memcpy(ref + as, backing + as, ae - as);
            } else {
                memset(ref + as, 0, ae - as);
            }
        }
        break;
    }
}

/* @touched: clusters possibly allocated (compressed writes need
 * unallocated clusters, as in QEMU). */
static void random_io(BlockBackend *blk, uint8_t *ref, uint64_t size,
                      int64_t cs, int rounds, int depth, bool compress,
                      const uint8_t *discard_src, bool *touched, GRand *rnd)
{
    Op *ops = g_new0(Op, depth);
    int r, i, n;
    AioContext *ctx = qemu_get_aio_context();

    for (r = 0; r < rounds; r++) {
        n = 0;
        for (i = 0; i < depth * 3 && n < depth; i++) {
            Op *op = &ops[n];
            int kind = g_rand_int_range(rnd, 0, 100);
            int64_t max = MIN((int64_t)size, 4 * cs);
            int64_t len = g_rand_int_range(rnd, 1, max + 1);
            int64_t off;

            if (g_rand_boolean(rnd)) {
                len = QEMU_ALIGN_UP(len, 512);
            }
            len = MIN(len, (int64_t)size);
            off = g_rand_int_range(rnd, 0, size - len + 1);
            if (g_rand_int_range(rnd, 0, 3) == 0) {
                off = QEMU_ALIGN_DOWN(off, cs);
            }
            op->kind = kind < 70 ? 0 : kind < 78 ? 1 : kind < 86 ? 2 :
                       kind < 94 ? 3 : 4;
            if (op->kind == 4) {
                off = QEMU_ALIGN_DOWN(off, cs);
                if (!compress || touched[off / cs]) {
                    op->kind = 0;
                } else {
                    len = MIN(cs, (int64_t)size - off);
                }
            }
            /* Discards and zeroes act on whole clusters: keep apart. */
            if (overlaps(ops, n, off, len, cs)) {
                continue;
            }
            op->offset = off;
            op->bytes = len;
            {
                int64_t c;
                for (c = off / cs; c <= (off + len - 1) / cs; c++) {
                    touched[c] = true;
                }
            }
            op->done = false;
            op->buf = g_malloc(len);
            if (g_rand_boolean(rnd)) {
                memset(op->buf, g_rand_int_range(rnd, 1, 256), len);
            } else {
                int64_t k;
                for (k = 0; k < len; k++) {
                    op->buf[k] = g_rand_int(rnd);
                }
            }
            n++;
        }
        for (i = 0; i < n; i++) {
            Op *op = &ops[i];

            switch (op->kind) {
            case 0:
                qemu_iovec_init_buf(&op->qiov, op->buf, op->bytes);
                blk_aio_pwritev(blk, op->offset, &op->qiov, 0, op_cb, op);
                break;
            case 1:
            case 2:
                blk_aio_pwrite_zeroes(blk, op->offset, op->bytes,
                                      op->kind == 2 ? BDRV_REQ_MAY_UNMAP : 0,
                                      op_cb, op);
                break;
            case 3:
                blk_aio_pdiscard(blk, op->offset, op->bytes, op_cb, op);
                break;
            case 4:
                qemu_iovec_init_buf(&op->qiov, op->buf, op->bytes);
                blk_aio_pwritev(blk, op->offset, &op->qiov,
                                BDRV_REQ_WRITE_COMPRESSED, op_cb, op);
                break;
            }
        }
        for (i = 0; i < n; i++) {
            while (!ops[i].done) {
                aio_poll(ctx, true);
            }
            if (ops[i].ret < 0) {
                g_printerr("op %d kind %d off %#" PRIx64 " len %#" PRIx64
                           ": %s\n", i, ops[i].kind, ops[i].offset,
                           ops[i].bytes, strerror(-ops[i].ret));
            }
            g_assert_cmpint(ops[i].ret, ==, 0);
            if (g_getenv("QCOW2_TEST_DEBUG")) {
                g_printerr("r%d op kind %d off %#" PRIx64 " len %#" PRIx64
                           "\n", r, ops[i].kind, ops[i].offset,
                           ops[i].bytes);
            }
            apply_ref(ref, &ops[i], cs, size, discard_src);
            g_free(ops[i].buf);
        }
    }
    g_free(ops);
}

typedef struct GeomParams {
    int compression;
    int cluster_bits;
    int refcount_order;
    int version;
    uint64_t size;
    int rounds;
    const char *opts;    /* extra runtime options */
} GeomParams;

static void test_random_geometry(gconstpointer opaque)
{
    const GeomParams *p = opaque;
    g_autofree char *path = tmp_path("rand.qcow2");
    uint8_t *ref = g_malloc0(p->size);
    GRand *rnd = g_rand_new_with_seed(p->cluster_bits * 100 +
                                      p->refcount_order * 10 + p->version);
    BlockBackend *blk;
    int64_t cs = 1 << p->cluster_bits;
    g_autofree bool *touched = g_new0(bool, p->size / cs + 1);

    make_image_compression = p->compression;
    make_image(path, p->size, p->cluster_bits, p->refcount_order, p->version,
               NULL, NULL);
    make_image_compression = 0;
    blk = open_image(path, true, p->opts);
    g_assert_nonnull(blk);
    random_io(blk, ref, p->size, cs, p->rounds, 8, true, NULL, touched, rnd);
    verify_content(blk, ref, p->size);
    g_assert_cmpint(blk_flush(blk), ==, 0);
    blk_unref(blk);

    check_with_qemu(path);
    compare_with_qemu(path, ref, p->size);

    /* Reopen: everything persisted; then more I/O on the reopened image. */
    blk = open_image(path, true, p->opts);
    g_assert_nonnull(blk);
    verify_content(blk, ref, p->size);
    random_io(blk, ref, p->size, cs, p->rounds / 2 + 1, 4, true, NULL,
              touched, rnd);
    verify_content(blk, ref, p->size);
    blk_unref(blk);
    check_with_qemu(path);
    compare_with_qemu(path, ref, p->size);

    g_rand_free(rnd);
    g_free(ref);
    unlink(path);
}

/* Tiny refcount blocks force refcount table growth and new blocks. */
static void test_refcount_growth(void)
{
    g_autofree char *path = tmp_path("grow.qcow2");
    uint64_t size = 8 * MiB;
    int cs = 512;
    uint8_t *ref = g_malloc0(size);
    uint8_t *buf = g_malloc(64 * KiB);
    BlockBackend *blk;
    int64_t off;
    int i;

    /* 512-byte clusters, 64-bit refcounts: a block covers 64 clusters. */
    make_image(path, size, 9, 6, 3, NULL, NULL);
    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    for (off = 0, i = 0; off < (int64_t)size; off += 64 * KiB, i++) {
        memset(buf, i + 1, 64 * KiB);
        g_assert_cmpint(blk_pwrite(blk, off, 64 * KiB, buf, 0), ==, 0);
        memcpy(ref + off, buf, 64 * KiB);
    }
    verify_content(blk, ref, size);
    blk_unref(blk);
    check_with_qemu(path);
    compare_with_qemu(path, ref, size);

    blk = open_image(path, false, NULL);
    g_assert_nonnull(blk);
    verify_content(blk, ref, size);
    blk_unref(blk);
    (void)cs;
    g_free(buf);
    g_free(ref);
    unlink(path);
}

/* Reads of unallocated clusters come from the backing file; COW keeps it. */
static void test_backing(void)
{
    g_autofree char *base = tmp_path("base.raw");
    g_autofree char *top = tmp_path("top.qcow2");
    uint64_t size = 4 * MiB, base_size = 3 * MiB + 4096;
    uint8_t *ref = g_malloc0(size);
    uint8_t *bdata = g_malloc0(size);
    GRand *rnd = g_rand_new_with_seed(42);
    g_autofree bool *touched = g_new0(bool, 4 * MiB / 65536 + 1);
    BlockBackend *blk;
    uint64_t i;
    int fd;

    for (i = 0; i < base_size; i++) {
        bdata[i] = (i * 7 + i / 4096) & 0xff;
    }
    fd = open(base, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    g_assert_cmpint(write(fd, bdata, base_size), ==, base_size);
    close(fd);
    memcpy(ref, bdata, size);

    make_image(top, size, 16, 4, 3, "base.raw", "raw");
    blk = open_image(top, true, NULL);
    g_assert_nonnull(blk);
    verify_content(blk, ref, size);
    random_io(blk, ref, size, 65536, 20, 6, false, NULL, touched, rnd);
    verify_content(blk, ref, size);
    blk_unref(blk);
    check_with_qemu(top);
    compare_with_qemu(top, ref, size);

    g_rand_free(rnd);
    g_free(ref);
    g_free(bdata);
    unlink(top);
    unlink(base);
}

/* Concurrent partial writes into the same fresh clusters (COW). */
static void test_same_cluster_concurrency(void)
{
    g_autofree char *base = tmp_path("cbase.raw");
    g_autofree char *top = tmp_path("ctop.qcow2");
    uint64_t size = MiB;
    uint8_t *ref = g_malloc(size);
    enum { NOPS = 96 };
    Op *ops = g_new0(Op, NOPS);
    GRand *rnd = g_rand_new_with_seed(7);
    BlockBackend *blk;
    uint64_t i;
    int fd, k;

    for (i = 0; i < size; i++) {
        ref[i] = (i * 31 + 5) & 0xff;
    }
    fd = open(base, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    g_assert_cmpint(write(fd, ref, size), ==, size);
    close(fd);
    make_image(top, size, 16, 4, 3, "cbase.raw", "raw");
    blk = open_image(top, true, NULL);
    g_assert_nonnull(blk);

    /* Distinct 512-byte slots of clusters 0..3, all in flight at once. */
    for (k = 0; k < NOPS; k++) {
        int slot;
        bool dup;

        do {
            int j;

            slot = g_rand_int_range(rnd, 0, 4 * 128);
            dup = false;
            for (j = 0; j < k; j++) {
                dup |= ops[j].offset == (int64_t)slot * 512;
            }
        } while (dup);
        ops[k].offset = (int64_t)slot * 512;
        ops[k].bytes = 512;
        ops[k].buf = g_malloc(512);
        memset(ops[k].buf, k + 1, 512);
        qemu_iovec_init_buf(&ops[k].qiov, ops[k].buf, 512);
        blk_aio_pwritev(blk, ops[k].offset, &ops[k].qiov, 0, op_cb, &ops[k]);
    }
    for (k = 0; k < NOPS; k++) {
        while (!ops[k].done) {
            aio_poll(qemu_get_aio_context(), true);
        }
        g_assert_cmpint(ops[k].ret, ==, 0);
        memcpy(ref + ops[k].offset, ops[k].buf, 512);
        g_free(ops[k].buf);
    }
    verify_content(blk, ref, size);
    blk_unref(blk);
    check_with_qemu(top);
    compare_with_qemu(top, ref, size);

    g_rand_free(rnd);
    g_free(ops);
    g_free(ref);
    unlink(top);
    unlink(base);
}

/* Header field validation and feature bits at open. */
static void patch_image(const char *path, off_t off, const void *data,
                        size_t len)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(pwrite(fd, data, len, off), ==, len);
    close(fd);
}

static void expect_open_error(const char *path, bool rw, const char *msg)
{
    Error *err = NULL;
    g_autofree char *str = g_strdup_printf("driver=qcow2,file.filename=%s",
                                           path);
    QDict *opts = qdict_parse_keyval(str, NULL, &error_abort);
    BlockBackend *blk = blk_new_open(NULL, opts, rw ? BDRV_O_RDWR : 0, &err);

    g_assert_null(blk);
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), msg)) {
        g_printerr("got '%s', want '%s'\n", error_get_pretty(err), msg);
        g_assert_not_reached();
    }
    error_free(err);
}

static void test_open_validation(void)
{
    g_autofree char *path = tmp_path("bad.qcow2");
    uint8_t b8[8];
    BlockBackend *blk;

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe32_p(b8, 22);
    patch_image(path, 20, b8, 4);
    expect_open_error(path, false, "Unsupported cluster size: 2^22");

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe32_p(b8, 7);
    patch_image(path, 96, b8, 4);
    expect_open_error(path, false, "Reference count entry width too large");

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, 1ULL << 40);
    patch_image(path, 40, b8, 8);
    expect_open_error(path, false, "Active L1 table");

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, 12345);
    patch_image(path, 48, b8, 8);
    expect_open_error(path, false, "Reference count table offset invalid");

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, 1ULL << 5);
    patch_image(path, 72, b8, 8);
    /* Bit 5 is the zoned format: refused without its extension. */
    expect_open_error(path, false, "zoned extension is missing");

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, 1ULL << 4);
    patch_image(path, 72, b8, 8);
    expect_open_error(path, false,
                      "Unsupported qcow2 feature(s): extended L2 entries");

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, 1ULL << 40);
    patch_image(path, 72, b8, 8);
    expect_open_error(path, false, "Unknown incompatible feature: "
                      "10000000000");

    /* Corrupt bit: read-only is fine, read-write refused. */
    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, QCOW2_INCOMPAT_CORRUPT);
    patch_image(path, 72, b8, 8);
    expect_open_error(path, true,
                      "qcow2: Image is corrupt; cannot be opened read/write");
    blk = open_image(path, false, NULL);
    g_assert_nonnull(blk);
    blk_unref(blk);

    /* Unknown autoclear bits are cleared by a read-write open. */
    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    stbe64_p(b8, 0x8000000000000001ULL);
    patch_image(path, 88, b8, 8);
    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    blk_unref(blk);
    {
        int fd = open(path, O_RDONLY);
        g_assert_cmpint(pread(fd, b8, 8, 88), ==, 8);
        close(fd);
        /* Bit 0 (bitmaps) is understood and kept, bit 63 cleared. */
        g_assert_cmphex(ldbe64_p(b8), ==, 1);
    }
    unlink(path);
}

/* Overlapping a metadata write marks the image corrupt. */
static void test_corruption(void)
{
    g_autofree char *path = tmp_path("corrupt.qcow2");
    uint8_t buf[4096], b8[8];
    BlockBackend *blk;
    int fd;

    memset(buf, 0x55, sizeof(buf));
    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    blk = open_image(path, true, NULL);
    g_assert_cmpint(blk_pwrite(blk, 0, 4096, buf, 0), ==, 0);
    blk_unref(blk);

    /* Point guest cluster 0's L2 entry at the refcount table (cluster 1). */
    fd = open(path, O_RDWR);
    g_assert_cmpint(pread(fd, b8, 8, 3 * 65536), ==, 8);  /* L1[0] */
    {
        uint64_t l2 = ldbe64_p(b8) & L1E_OFFSET_MASK;
        stbe64_p(b8, 65536 | QCOW_OFLAG_COPIED);
        g_assert_cmpint(pwrite(fd, b8, 8, l2), ==, 8);
    }
    close(fd);

    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    /* The in-place write would hit the refcount table: refused. */
    g_assert_cmpint(blk_pwrite(blk, 0, 4096, buf, 0), ==, -EIO);
    /* And every later write too, even a harmless one. */
    g_assert_cmpint(blk_pwrite(blk, 131072, 4096, buf, 0), ==, -EIO);
    blk_unref(blk);
    fd = open(path, O_RDONLY);
    g_assert_cmpint(pread(fd, b8, 8, 72), ==, 8);
    close(fd);
    g_assert_cmphex(ldbe64_p(b8) & QCOW2_INCOMPAT_CORRUPT, !=, 0);
    expect_open_error(path, true,
                      "qcow2: Image is corrupt; cannot be opened read/write");

    /* An entry pointing at its own L2 table, with the table cached. */
    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    blk = open_image(path, true, NULL);
    g_assert_cmpint(blk_pwrite(blk, 0, 4096, buf, 0), ==, 0);
    blk_unref(blk);
    fd = open(path, O_RDWR);
    g_assert_cmpint(pread(fd, b8, 8, 3 * 65536), ==, 8);
    {
        uint64_t l2 = ldbe64_p(b8) & L1E_OFFSET_MASK;
        stbe64_p(b8, l2 | QCOW_OFLAG_COPIED);
        g_assert_cmpint(pwrite(fd, b8, 8, l2 + 8), ==, 8);
    }
    close(fd);
    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    g_assert_cmpint(blk_pread(blk, 0, 4096, buf, 0), ==, 0);
    g_assert_cmpint(blk_pwrite(blk, 65536, 4096, buf, 0), ==, -EIO);
    blk_unref(blk);
    unlink(path);
}

/* A freed cluster that held data must not be taken as zero when reused. */
static void test_reuse_not_zero(void)
{
    g_autofree char *path = tmp_path("reuse.qcow2");
    uint8_t *buf = g_malloc(65536), *rd = g_malloc(65536);
    BlockBackend *blk;

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    /* Fills a fresh cluster with compressed (non-zero) bytes. */
    memset(buf, 'x', 65536);
    g_assert_cmpint(blk_pwrite_compressed(blk, 0, buf, 65536), ==, 0);
    g_assert_cmpint(blk_pwrite_zeroes(blk, 0, 65536, BDRV_REQ_MAY_UNMAP),
                    ==, 0);
    /* Small writes to new clusters reuse the freed host clusters. */
    memset(buf, 0x77, 512);
    g_assert_cmpint(blk_pwrite(blk, 3 * 65536 + 4096, 512, buf, 0), ==, 0);
    g_assert_cmpint(blk_pwrite(blk, 5 * 65536, 512, buf, 0), ==, 0);
    g_assert_cmpint(blk_pread(blk, 3 * 65536, 65536, rd, 0), ==, 0);
    g_assert_true(buffer_is_zero(rd, 4096));
    g_assert_cmpmem(rd + 4096, 512, buf, 512);
    g_assert_true(buffer_is_zero(rd + 4608, 65536 - 4608));
    g_assert_cmpint(blk_pread(blk, 5 * 65536, 65536, rd, 0), ==, 0);
    g_assert_cmpmem(rd, 512, buf, 512);
    g_assert_true(buffer_is_zero(rd + 512, 65536 - 512));
    blk_unref(blk);
    check_with_qemu(path);
    g_free(buf);
    g_free(rd);
    unlink(path);
}

/* Lazy refcounts set the dirty bit and clear it on close. */
static void test_lazy_refcounts(void)
{
    g_autofree char *path = tmp_path("lazy.qcow2");
    uint8_t buf[4096], b8[8];
    BlockBackend *blk;
    int fd;

    memset(buf, 0x11, sizeof(buf));
    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    blk = open_image(path, true, "lazy-refcounts=on");
    g_assert_nonnull(blk);
    g_assert_cmpint(blk_pwrite(blk, 65536, 4096, buf, 0), ==, 0);
    fd = open(path, O_RDONLY);
    g_assert_cmpint(pread(fd, b8, 8, 72), ==, 8);
    g_assert_cmphex(ldbe64_p(b8) & QCOW2_INCOMPAT_DIRTY, !=, 0);
    blk_unref(blk);
    g_assert_cmpint(pread(fd, b8, 8, 72), ==, 8);
    g_assert_cmphex(ldbe64_p(b8) & QCOW2_INCOMPAT_DIRTY, ==, 0);
    close(fd);
    check_with_qemu(path);
    unlink(path);
}

/* Images written by QEMU read back identically. */
static void test_read_qemu_images(void)
{
    static const char *const variants[] = {
        "-o cluster_size=512,refcount_bits=1",
        "-o cluster_size=4096,refcount_bits=64",
        "-o cluster_size=65536",
        "-o cluster_size=2M,refcount_bits=16",
        "-o compat=0.10,cluster_size=65536",
        "-o cluster_size=65536,compression_type=zstd",
    };
    g_autofree char *img = tmp_path("q.qcow2");
    g_autofree char *raw = tmp_path("q.raw");
    uint64_t size = 6 * MiB;
    size_t v;

    if (!have_qemu_img() || access("/usr/bin/qemu-io", X_OK)) {
        g_test_skip("qemu-img not installed");
        return;
    }
    for (v = 0; v < ARRAY_SIZE(variants); v++) {
        g_autofree char *cmd = NULL;
        g_autofree char *out = NULL;
        uint8_t *ref = g_malloc(size);
        uint64_t i;
        BlockBackend *blk;
        int fd;

        for (i = 0; i < size; i++) {
            ref[i] = (i / 512) % 7 == 0 ? 0 : (i * 13 + v) & 0xff;
        }
        memset(ref + 2 * MiB, 0, MiB);
        memset(ref + 4 * MiB, 'x', MiB);   /* compresses well */
        fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        g_assert_cmpint(write(fd, ref, size), ==, size);
        close(fd);
        /* Compressed, then plain data rewritten over part of it. */
        cmd = g_strdup_printf(REF_QEMU_IMG " convert -c -O qcow2 %s %s %s",
                              variants[v], raw, img);
        g_assert_cmpint(run_cmd(cmd, &out), ==, 0);
        g_free(cmd);
        g_free(out);
        cmd = g_strdup_printf("/usr/bin/qemu-io -f qcow2 -c 'write -P 0xab "
                              "1000 70000' -c 'write -z 3M 64k' %s", img);
        g_assert_cmpint(run_cmd(cmd, &out), ==, 0);
        memset(ref + 1000, 0xab, 70000);
        memset(ref + 3 * MiB, 0, 64 * KiB);

        blk = open_image(img, false, NULL);
        g_assert_nonnull(blk);
        verify_content(blk, ref, size);
        blk_unref(blk);

        /* Then write to it with our driver and let QEMU check. */
        blk = open_image(img, true, NULL);
        g_assert_nonnull(blk);
        memset(ref + 5 * MiB - 3000, 0x3c, 9000);
        g_assert_cmpint(blk_pwrite(blk, 5 * MiB - 3000, 9000,
                                   ref + 5 * MiB - 3000, 0), ==, 0);
        verify_content(blk, ref, size);
        blk_unref(blk);
        check_with_qemu(img);
        compare_with_qemu(img, ref, size);
        g_free(ref);
    }
    unlink(img);
    unlink(raw);
}

/* Resize: grow (L1 grows), shrink (clusters dropped, tail zeroed). */
static void test_truncate(void)
{
    g_autofree char *path = tmp_path("resize.qcow2");
    uint8_t *buf = g_malloc(65536), *rd = g_malloc(65536);
    BlockBackend *blk;

    /* 4k clusters: one L2 table covers 2 MiB, the L1 has one entry. */
    make_image(path, MiB, 12, 4, 3, NULL, NULL);
    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    memset(buf, 0x5e, 65536);
    g_assert_cmpint(blk_pwrite(blk, MiB - 65536, 65536, buf, 0), ==, 0);
    g_assert_cmpint(blk_truncate(blk, 9 * MiB, false, PREALLOC_MODE_OFF, 0,
                                 NULL), ==, 0);
    g_assert_cmpint(blk_getlength(blk), ==, 9 * MiB);
    g_assert_cmpint(blk_pwrite(blk, 9 * MiB - 65536, 65536, buf, 0), ==, 0);
    blk_unref(blk);
    check_with_qemu(path);

    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    g_assert_cmpint(blk_getlength(blk), ==, 9 * MiB);
    g_assert_cmpint(blk_pread(blk, 9 * MiB - 65536, 65536, rd, 0), ==, 0);
    g_assert_cmpmem(rd, 65536, buf, 65536);
    /* Shrink into the middle of a cluster, then grow again. */
    g_assert_cmpint(blk_truncate(blk, MiB - 1536, false, PREALLOC_MODE_OFF,
                                 0, NULL), ==, 0);
    g_assert_cmpint(blk_truncate(blk, 2 * MiB, false, PREALLOC_MODE_OFF, 0,
                                 NULL), ==, 0);
    g_assert_cmpint(blk_pread(blk, MiB - 65536, 65536, rd, 0), ==, 0);
    g_assert_cmpmem(rd, 65536 - 1536, buf, 65536 - 1536);
    g_assert_true(buffer_is_zero(rd + 65536 - 1536, 1536));
    g_assert_cmpint(blk_pread(blk, MiB, 65536, rd, 0), ==, 0);
    g_assert_true(buffer_is_zero(rd, 65536));
    blk_unref(blk);
    check_with_qemu(path);
    g_free(buf);
    g_free(rd);
    unlink(path);
}

/* Persistent bitmaps of a QEMU image are flagged in use, check clean. */
static void test_bitmaps(void)
{
    g_autofree char *img = tmp_path("bm.qcow2");
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    uint8_t buf[4096];
    BlockBackend *blk;

    if (!have_qemu_img()) {
        g_test_skip("qemu-img not installed");
        return;
    }
    {
        const char *steps[] = { "create -q -f qcow2 %s 4M",
                                "bitmap --add %s b0", "bitmap --add %s b1" };
        size_t k;

        for (k = 0; k < ARRAY_SIZE(steps); k++) {
            g_autofree char *fmt = g_strconcat(REF_QEMU_IMG " ", steps[k],
                                               NULL);
            g_autofree char *c = g_strdup_printf(fmt, img);
            g_autofree char *o = NULL;

            g_assert_cmpint(run_cmd(c, &o), ==, 0);
        }
    }

    memset(buf, 0x42, sizeof(buf));
    blk = open_image(img, true, NULL);
    g_assert_nonnull(blk);
    g_assert_cmpint(blk_pwrite(blk, 65536, sizeof(buf), buf, 0), ==, 0);
    blk_unref(blk);
    check_with_qemu(img);

    cmd = g_strdup_printf(REF_QEMU_IMG " info --output=json %s", img);
    g_assert_cmpint(run_cmd(cmd, &out), ==, 0);
    /* Both bitmaps now say they may be stale. */
    g_assert_nonnull(strstr(out, "\"in-use\""));
    g_assert_nonnull(strstr(strstr(out, "\"in-use\"") + 1, "\"in-use\""));
    unlink(img);
}

static void test_compress_roundtrip(void)
{
    uint8_t src[65536], comp[65536], out[65536];
    ssize_t n;
    int t;

    for (t = 0; t < 2; t++) {
        size_t i;

        for (i = 0; i < sizeof(src); i++) {
            src[i] = (i / 100) & 0xff;
        }
        n = qcow2_compress_buf(t, comp, sizeof(comp) - 1, src, sizeof(src));
        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n, <, 4096);
        /* Trailing garbage (sector rounding) must be ignored. */
        memset(comp + n, 0xee, 512);
        g_assert_cmpint(qcow2_decompress_buf(t, out, sizeof(out), comp,
                                             n + 512), ==, 0);
        g_assert_cmpmem(src, sizeof(src), out, sizeof(out));
        /* Random data does not compress. */
        for (i = 0; i < sizeof(src); i++) {
            src[i] = g_random_int();
        }
        g_assert_cmpint(qcow2_compress_buf(t, comp, sizeof(comp) - 1, src,
                                           sizeof(src)), ==, -ENOMEM);
    }
}

static void test_refcount_accessors(void)
{
    uint8_t block[512];
    int order;

    for (order = 0; order <= 6; order++) {
        Qcow2GetRefcountFunc *get = qcow2_refcount_get_func(order);
        Qcow2SetRefcountFunc *set = qcow2_refcount_set_func(order);
        uint64_t n = 512 * 8 >> order, i;
        uint64_t max = order == 6 ? UINT64_MAX : (1ULL << (1 << order)) - 1;

        memset(block, 0, sizeof(block));
        for (i = 0; i < n; i++) {
            set(block, i, (i * 2654435761u) & max);
        }
        for (i = 0; i < n; i++) {
            g_assert_cmphex(get(block, i), ==, (i * 2654435761u) & max);
        }
        set(block, 3, max);
        g_assert_cmphex(get(block, 3), ==, max);
        g_assert_cmphex(get(block, 2), ==, (UINT64_C(2) * 2654435761u) & max);
        g_assert_cmphex(get(block, 4), ==, (UINT64_C(4) * 2654435761u) & max);
    }
}

static const GeomParams geoms[] = {
    { 0, 16, 4, 3, 8 * MiB, 30 },
    { 0, 9, 0, 3, 2 * MiB, 30 },
    { 0, 12, 6, 3, 4 * MiB, 30 },
    { 0, 16, 4, 2, 8 * MiB, 30 },
    { 0, 21, 3, 3, 16 * MiB, 10 },
    { 0, 10, 1, 3, 2 * MiB + 1536, 30 },
    { 0, 13, 2, 3, 3 * MiB, 20 },
    { 0, 14, 5, 3, 3 * MiB, 20 },
    /* Tiny caches: eviction of dirty tables under dependencies. */
    { 0, 9, 4, 3, 2 * MiB, 30,
      "l2-cache-size=1024,refcount-cache-size=2048" },
    { 0, 12, 4, 3, 8 * MiB, 20, "cache-size=16384" },
#ifdef CONFIG_ZSTD
    { 1, 16, 4, 3, 8 * MiB, 20 },
#endif
};

/* Header rewrite (rebase -u) keeps unknown extensions. */
static void test_change_backing_file(void)
{
    g_autofree char *path = tmp_path("rebase.qcow2");
    uint8_t ext[24], buf[4096];
    BlockBackend *blk;
    int fd;
    bool found = false;
    size_t i;

    make_image(path, MiB, 16, 4, 3, NULL, NULL);
    /* Unknown extension where the end marker was (offset 112). */
    stbe32_p(ext, 0x12345678);
    stbe32_p(ext + 4, 5);
    memcpy(ext + 8, "hello\0\0\0", 8);
    memset(ext + 16, 0, 8);
    patch_image(path, 112, ext, sizeof(ext));

    blk = open_image(path, true, NULL);
    g_assert_nonnull(blk);
    g_assert_cmpint(bdrv_change_backing_file(blk_bs(blk), "base.img", "raw"),
                    ==, 0);
    blk_unref(blk);

    fd = open(path, O_RDONLY);
    g_assert_cmpint(pread(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    close(fd);
    for (i = 112; i + 8 <= sizeof(buf); i += 8) {
        if (ldbe32_p(buf + i) == 0x12345678) {
            g_assert_cmpint(ldbe32_p(buf + i + 4), ==, 5);
            g_assert_cmpmem(buf + i + 8, 5, "hello", 5);
            found = true;
        }
    }
    g_assert_true(found);
    g_assert_cmpmem(buf + ldbe64_p(buf + 8), ldbe32_p(buf + 16),
                    "base.img", 8);

    if (have_qemu_img()) {
        g_autofree char *cmd = g_strdup_printf(REF_QEMU_IMG " info -U %s",
                                               path);
        g_autofree char *out = NULL;

        g_assert_cmpint(run_cmd(cmd, &out), ==, 0);
        g_assert_nonnull(strstr(out, "backing file: base.img"));
        g_assert_nonnull(strstr(out, "backing file format: raw"));
    } else {
        g_test_skip(REF_QEMU_IMG " not installed");
    }
    unlink(path);
}

int main(int argc, char **argv)
{
    int ret;
    size_t i;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-qcow2-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);

    g_test_add_func("/qcow2/refcount-accessors", test_refcount_accessors);
    g_test_add_func("/qcow2/compress-roundtrip", test_compress_roundtrip);
    for (i = 0; i < ARRAY_SIZE(geoms); i++) {
        g_autofree char *name =
            g_strdup_printf("/qcow2/random/c%d-r%d-v%d%s%s",
                            geoms[i].cluster_bits,
                            1 << geoms[i].refcount_order, geoms[i].version,
                            geoms[i].compression ? "-zstd" : "",
                            geoms[i].opts ? "-smallcache" : "");
        g_test_add_data_func(name, &geoms[i], test_random_geometry);
    }
    g_test_add_func("/qcow2/refcount-growth", test_refcount_growth);
    g_test_add_func("/qcow2/backing", test_backing);
    g_test_add_func("/qcow2/same-cluster-concurrency",
                    test_same_cluster_concurrency);
    g_test_add_func("/qcow2/open-validation", test_open_validation);
    g_test_add_func("/qcow2/corruption", test_corruption);
    g_test_add_func("/qcow2/lazy-refcounts", test_lazy_refcounts);
    g_test_add_func("/qcow2/reuse-not-zero", test_reuse_not_zero);
    g_test_add_func("/qcow2/bitmaps", test_bitmaps);
    g_test_add_func("/qcow2/truncate", test_truncate);
    g_test_add_func("/qcow2/change-backing-file", test_change_backing_file);
    g_test_add_func("/qcow2/read-qemu-images", test_read_qemu_images);
    ret = g_test_run();
    rmdir(tmpdir);
    return ret;
}
