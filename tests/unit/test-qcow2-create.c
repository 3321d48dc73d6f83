/*
 * Unit tests for qcow2 creation, measurement, amendment and check
 * (block/qcow2-create.c, block/qcow2-check.c).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Fresh images must be byte-identical to what QEMU 7.2's qemu-img
 * writes: the expected md5 sums below were taken from images made by
 * Debian's qemu-img, and when that tool is installed the test also
 * creates the reference image and compares it byte by byte.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/option.h"

#define REF_QEMU_IMG "/usr/bin/qemu-img"

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static char *file_md5(const char *path, gsize *len)
{
    gchar *data = NULL;
    char *sum;

    g_assert_true(g_file_get_contents(path, &data, len, NULL));
    sum = g_compute_checksum_for_data(G_CHECKSUM_MD5, (guchar *)data, *len);
    g_free(data);
    return sum;
}

typedef struct CreateCase {
    const char *opts;
    uint64_t size;
    gsize file_len;
    const char *md5;
} CreateCase;

static const CreateCase create_cases[] = {
    { "", 1 * MiB, 196616, "8e309b80fc0e748728a95dd8255b830c" },
    { "compat=0.10", 1 * MiB, 196616, "dd314a92a71f5fbcf7c286a83cb4731b" },
    { "cluster_size=512", 1 * MiB, 1792, "463d9a94ab58a1f59050bfba0835a320" },
    { "cluster_size=4k", 1 * MiB, 12296, "9f20569d6fc54ef78e9427d64759f3c8" },
    { "refcount_bits=1", 1 * MiB, 196616,
      "3a574982839a8ff7374ffe3c8eaa67cc" },
    { "refcount_bits=64", 1 * MiB, 196616,
      "74d7bcc7d229cfabbedf1a4395bd3c37" },
    { "lazy_refcounts=on", 1 * MiB, 196616,
      "37399c597d12776ddc8baae78b6c93bf" },
    { "compression_type=zstd", 1 * MiB, 196616,
      "eb11b8f6da460debbe4b1e5194f7ac9b" },
    /* Refcount blocks allocated behind a multi-cluster L1 table. */
    { "cluster_size=512", 1 * GiB, 264704,
      "169cb71ef903fb64bcb68c28099dd1dd" },
    { "refcount_bits=64,cluster_size=512", 1 * GiB, 267776,
      "f4b55d755bc52626d306fbc2ca4a89ed" },
    { "", 0, 196608, "a9c7b43a758177f8878f1d56306758ed" },
    { "preallocation=metadata", 1 * MiB, 1376256,
      "e64f4e30071a86ebb70637e1b47d9197" },
    /* Several refcount blocks and L2 tables crossing block boundaries. */
    { "preallocation=metadata,cluster_size=4k", 10 * MiB, 10526720,
      "bf62045989486bf11fdcda299950d37d" },
    /* Refcount table growth and reuse of the old table's cluster. */
    { "preallocation=metadata,cluster_size=512", 4 * MiB, 4278784,
      "bb517140f27f5d115016fb38c0353fef" },
    /* The refcount table grows: new blocks and table behind the ranges. */
    { "preallocation=metadata,cluster_size=512", 16 * MiB, 17143808,
      "d38f6295be9dfcbc348d8f44e0445319" },
    { "preallocation=falloc", 1 * MiB, 1376256,
      "1cdfa5f29b8b9139c66e2b9095555377" },
    { "preallocation=full,cluster_size=4k", 10 * MiB, 10526720,
      "36497be8cacab9930bf36e10203364dd" },
};

static void test_create_layout(gconstpointer opaque)
{
    const CreateCase *c = opaque;
    g_autofree char *path = tmp_path("create.qcow2");
    g_autofree char *md5 = NULL;
    Error *err = NULL;
    gsize len;
    int ret;

    unlink(path);
    ret = bdrv_img_create(path, "qcow2", NULL, NULL, c->opts, c->size, 0,
                          true, &err);
    if (err) {
        g_test_message("%s", error_get_pretty(err));
    }
    g_assert_cmpint(ret, ==, 0);
    md5 = file_md5(path, &len);
    g_assert_cmpuint(len, ==, c->file_len);
    g_assert_cmpstr(md5, ==, c->md5);

    if (g_file_test(REF_QEMU_IMG, G_FILE_TEST_IS_EXECUTABLE)) {
        g_autofree char *ref = tmp_path("ref.qcow2");
        g_autofree char *size = g_strdup_printf("%" PRIu64, c->size);
        g_autofree char *ref_md5 = NULL;
        const char *argv[] = { REF_QEMU_IMG, "create", "-q", "-f", "qcow2",
                               "-o", *c->opts ? c->opts : "cluster_size=64k",
                               ref, size, NULL };
        gint wstatus;
        gsize ref_len;

        unlink(ref);
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                                   &wstatus, NULL));
        g_assert_cmpint(wstatus, ==, 0);
        ref_md5 = file_md5(ref, &ref_len);
        g_assert_cmpuint(ref_len, ==, len);
        g_assert_cmpstr(ref_md5, ==, md5);
        unlink(ref);
    }
    unlink(path);
}

typedef struct ErrorCase {
    const char *opts;
    const char *msg;
} ErrorCase;

static const ErrorCase error_cases[] = {
    { "cluster_size=1000",
      "Cluster size must be a power of two between 512 and 2048k" },
    { "cluster_size=4M",
      "Cluster size must be a power of two between 512 and 2048k" },
    { "compat=0.10,lazy_refcounts=on",
      "Lazy refcounts only supported with compatibility level 1.1 and above "
      "(use version=v3 or greater)" },
    { "compat=0.10,refcount_bits=8",
      "Different refcount widths than 16 bits require compatibility level "
      "1.1 or above (use version=v3 or greater)" },
    { "refcount_bits=3",
      "Refcount width must be a power of two and may not exceed 64 bits" },
    { "refcount_bits=128",
      "Refcount width must be a power of two and may not exceed 64 bits" },
    { "compat=foo", "Parameter 'version' does not accept value 'foo'" },
    { "preallocation=foo",
      "Parameter 'preallocation' does not accept value 'foo'" },
    { "compression_type=lz4",
      "Parameter 'compression-type' does not accept value 'lz4'" },
    { "backing_fmt=raw",
      "Backing format cannot be used without backing file" },
    { "data_file_raw=on", "data-file-raw requires data-file" },
};

static void test_create_errors(void)
{
    g_autofree char *path = tmp_path("bad.qcow2");
    size_t i;

    for (i = 0; i < ARRAY_SIZE(error_cases); i++) {
        Error *err = NULL;
        int ret;

        unlink(path);
        ret = bdrv_img_create(path, "qcow2", NULL, NULL, error_cases[i].opts,
                              1 * MiB, 0, true, &err);
        g_assert_cmpint(ret, <, 0);
        g_assert_nonnull(err);
        g_assert_cmpstr(error_get_pretty(err), ==, error_cases[i].msg);
        error_free(err);
    }
    /* Unsupported features are refused, not silently ignored. */
    {
        Error *err = NULL;
        g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL,
                                        "extended_l2=on", 1 * MiB, 0, true,
                                        &err), <, 0);
        g_assert_nonnull(strstr(error_get_pretty(err), "not supported"));
        error_free(err);
    }
    unlink(path);
}

typedef struct MeasureCase {
    const char *opts;
    uint64_t required;
    uint64_t fully_allocated;
} MeasureCase;

/* Values printed by QEMU 7.2's "qemu-img measure -O qcow2 --size". */
static const MeasureCase measure_cases[] = {
    { "size=1G", 393216, 1074135040 },
    { "size=100G,cluster_size=512", 2138404352, 109512586752 },
    { "size=10G,refcount_bits=1", 1572864, 10738991104 },
    { "size=10G,preallocation=falloc", 10739318784, 10739318784 },
    { "size=1T,cluster_size=2M,refcount_bits=64", 16777216,
      1099528404992 },
};

static void test_measure(void)
{
    BlockDriver *drv;
    size_t i;

    bdrv_init();
    drv = bdrv_find_format("qcow2");
    g_assert_nonnull(drv);
    for (i = 0; i < ARRAY_SIZE(measure_cases); i++) {
        QemuOptsList *list = qemu_opts_append(NULL, drv->create_opts);
        QemuOpts *opts = qemu_opts_create(list);
        BlockMeasureInfo *info;

        g_assert_true(qemu_opts_do_parse(opts, measure_cases[i].opts,
                                         &error_abort));
        info = bdrv_measure(drv, opts, NULL, &error_abort);
        g_assert_cmpuint(info->required, ==, measure_cases[i].required);
        g_assert_cmpuint(info->fully_allocated, ==,
                         measure_cases[i].fully_allocated);
        g_assert_false(info->has_bitmaps);
        g_free(info);
        qemu_opts_del(opts);
        qemu_opts_free(list);
    }
}

/* Overwrite bytes of a file (corruption injection). */
static void poke(const char *path, off_t off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, len, off), ==, (ssize_t)len);
    close(fd);
}

static BlockDriverState *open_qcow2(const char *path, int flags)
{
    QDict *options = qdict_new();

    qdict_put_str(options, "driver", "qcow2");
    return bdrv_open(path, options, flags, &error_abort);
}

static void test_check_leak(void)
{
    g_autofree char *path = tmp_path("leak.qcow2");
    BlockDriverState *bs;
    BdrvCheckResult res;
    uint8_t one[2] = { 0, 1 };

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL, NULL, 4 * MiB,
                                    0, true, &error_abort), ==, 0);
    /* Cluster 5 (past the L1 table) gets refcount 1 but no reference. */
    g_assert_cmpint(truncate(path, 6 * 65536), ==, 0);
    poke(path, 0x20000 + 2 * 5, one, 2);

    bs = open_qcow2(path, BDRV_O_RDWR | BDRV_O_CHECK);
    g_assert_cmpint(bdrv_check(bs, &res, 0), ==, 0);
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.image_end_offset, ==, 6 * 65536);

    g_assert_cmpint(bdrv_check(bs, &res, BDRV_FIX_LEAKS), ==, 0);
    g_assert_cmpint(res.leaks_fixed, ==, 1);
    g_assert_cmpint(res.leaks, ==, 0);

    g_assert_cmpint(bdrv_check(bs, &res, 0), ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.image_end_offset, ==, 4 * 65536);
    g_assert_cmpuint(res.bfi.total_clusters, ==, 64);
    bdrv_unref(bs);
    unlink(path);
}

static void test_check_rebuild(void)
{
    g_autofree char *path = tmp_path("rebuild.qcow2");
    BlockDriverState *bs;
    BdrvCheckResult res;
    uint8_t zero[2] = { 0, 0 };

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL,
                                    "preallocation=metadata", 1 * MiB, 0,
                                    true, &error_abort), ==, 0);
    /* The refcount of the L2 table (cluster 4) drops to 0. */
    poke(path, 0x20000 + 2 * 4, zero, 2);

    bs = open_qcow2(path, BDRV_O_RDWR | BDRV_O_CHECK);
    g_assert_cmpint(bdrv_check(bs, &res, 0), ==, 0);
    g_assert_cmpint(res.corruptions, >=, 1);
    g_assert_cmpuint(res.bfi.allocated_clusters, ==, 16);

    /* Leak repair alone cannot fix a missing reference. */
    g_assert_cmpint(bdrv_check(bs, &res, BDRV_FIX_LEAKS), <, 0);

    g_assert_cmpint(bdrv_check(bs, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS),
                    ==, 0);
    g_assert_cmpint(res.corruptions_fixed, >=, 1);
    g_assert_cmpint(bdrv_check(bs, &res, 0), ==, 0);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    bdrv_unref(bs);
    unlink(path);
}

/*
 * Growing an empty image lays it out as creating it that size does: QEMU's
 * create is the same truncate.  The expected sums are those of the create
 * cases above (checked there against QEMU 7.2).
 */
typedef struct GrowCase {
    PreallocMode prealloc;
    uint64_t size;
    gsize file_len;
    const char *md5;
} GrowCase;

static const GrowCase grow_cases[] = {
    /*
     * The L1 table needs refcount blocks for two more ranges: the block
     * for the second range lands in the third, whose block QEMU makes
     * first, behind it (they used to be placed the other way round).
     */
    { PREALLOC_MODE_OFF, 1 * GiB, 264704,
      "169cb71ef903fb64bcb68c28099dd1dd" },
    /*
     * The refcount table must grow: QEMU puts new blocks and the table
     * behind the ranges in use (it used to be allocated like any
     * cluster).
     */
    { PREALLOC_MODE_METADATA, 16 * MiB, 17143808,
      "d38f6295be9dfcbc348d8f44e0445319" },
};

static void test_resize_layout(gconstpointer opaque)
{
    const GrowCase *c = opaque;
    g_autofree char *path = tmp_path("grow.qcow2");
    g_autofree char *md5 = NULL;
    BlockDriverState *bs;
    BdrvChild self;
    gsize len;

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL,
                                    "cluster_size=512", 0, 0, true,
                                    &error_abort), ==, 0);
    bs = open_qcow2(path, BDRV_O_RDWR | BDRV_O_RESIZE);
    self = (BdrvChild) { .bs = bs, .name = (char *)"test" };
    g_assert_cmpint(bdrv_truncate(&self, c->size, false, c->prealloc, 0,
                                  &error_abort), ==, 0);
    bdrv_unref(bs);
    md5 = file_md5(path, &len);
    g_assert_cmpuint(len, ==, c->file_len);
    g_assert_cmpstr(md5, ==, c->md5);
    unlink(path);
}

/*
 * Like QEMU, a header rewrite leaves the feature name table out of
 * clusters of 4k and less (it used to be added by any amend).
 */
static void test_amend_small_cluster_header(void)
{
    g_autofree char *path = tmp_path("amend4k.qcow2");
    BlockDriverState *bs;
    QemuOptsList *list;
    QemuOpts *opts;
    gchar *data;
    gsize len;

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL,
                                    "cluster_size=4k", 1 * MiB, 0, true,
                                    &error_abort), ==, 0);
    bs = open_qcow2(path, BDRV_O_RDWR);
    list = qemu_opts_append(NULL, bs->drv->amend_opts);
    opts = qemu_opts_create(list);
    g_assert_true(qemu_opts_do_parse(opts, "lazy_refcounts=on",
                                     &error_abort));
    g_assert_cmpint(bdrv_amend(bs, opts, false, &error_abort), ==, 0);
    qemu_opts_del(opts);
    qemu_opts_free(list);
    bdrv_unref(bs);

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(ldbe64_p(data + 80), ==, 1);      /* lazy refcounts */
    g_assert_cmpuint(ldbe32_p(data + 112), ==, 0);     /* no extension */
    g_free(data);
    unlink(path);
}

static void test_amend(void)
{
    g_autofree char *path = tmp_path("amend.qcow2");
    BlockDriverState *bs;
    QemuOptsList *list;
    QemuOpts *opts;
    Error *err = NULL;
    gchar *data;
    gsize len;

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL, NULL, 1 * MiB,
                                    0, true, &error_abort), ==, 0);
    bs = open_qcow2(path, BDRV_O_RDWR);
    list = qemu_opts_append(NULL, bs->drv->amend_opts);

    opts = qemu_opts_create(list);
    g_assert_true(qemu_opts_do_parse(opts, "compat=0.10,lazy_refcounts=on",
                                     &error_abort));
    g_assert_cmpint(bdrv_amend(bs, opts, false, &err), <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Lazy refcounts only supported with compatibility level "
                    "1.1 and above (use compat=1.1 or greater)");
    error_free(err);
    err = NULL;
    qemu_opts_del(opts);

    opts = qemu_opts_create(list);
    g_assert_true(qemu_opts_do_parse(opts, "lazy_refcounts=on",
                                     &error_abort));
    g_assert_cmpint(bdrv_amend(bs, opts, false, &error_abort), ==, 0);
    qemu_opts_del(opts);

    opts = qemu_opts_create(list);
    g_assert_true(qemu_opts_do_parse(opts, "backing_file=foo",
                                     &error_abort));
    g_assert_cmpint(bdrv_amend(bs, opts, false, &err), <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Cannot amend the backing file");
    error_free(err);
    err = NULL;
    qemu_opts_del(opts);

    bdrv_unref(bs);
    /* Compatible feature bit 0 (lazy refcounts) is now on disk. */
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(ldbe64_p(data + 80), ==, 1);
    g_free(data);

    /* Off again, then downgrading is safe. */
    bs = open_qcow2(path, BDRV_O_RDWR);
    opts = qemu_opts_create(list);
    g_assert_true(qemu_opts_do_parse(opts, "lazy_refcounts=off,compat=0.10",
                                     &error_abort));
    g_assert_cmpint(bdrv_amend(bs, opts, false, &error_abort), ==, 0);
    qemu_opts_del(opts);
    bdrv_unref(bs);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(ldbe32_p(data + 4), ==, 2);
    g_free(data);

    qemu_opts_free(list);
    unlink(path);
}

static void test_amend_refcount_bits(void)
{
    g_autofree char *path = tmp_path("amend-rb.qcow2");
    BlockDriverState *bs;
    QemuOptsList *list;
    QemuOpts *opts;
    BdrvCheckResult res;
    gchar *data;
    gsize len;

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL,
                                    "preallocation=metadata", 1 * MiB, 0,
                                    true, &error_abort), ==, 0);
    bs = open_qcow2(path, BDRV_O_RDWR);
    list = qemu_opts_append(NULL, bs->drv->amend_opts);
    opts = qemu_opts_create(list);
    g_assert_true(qemu_opts_do_parse(opts, "refcount_bits=2", &error_abort));
    g_assert_cmpint(bdrv_amend(bs, opts, false, &error_abort), ==, 0);
    qemu_opts_del(opts);
    g_assert_cmpint(bdrv_check(bs, &res, 0), ==, 0);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpuint(res.bfi.allocated_clusters, ==, 16);
    bdrv_unref(bs);
    qemu_opts_free(list);

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(ldbe32_p(data + 96), ==, 1);     /* refcount_order */
    g_free(data);

    /* Reopened with the new width, the image is still consistent. */
    bs = open_qcow2(path, BDRV_O_RDWR | BDRV_O_CHECK);
    g_assert_cmpint(bdrv_check(bs, &res, 0), ==, 0);
    g_assert_cmpint(res.corruptions + res.leaks + res.check_errors, ==, 0);
    bdrv_unref(bs);
    unlink(path);
}

int main(int argc, char **argv)
{
    size_t i;
    int ret;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-qcow2-create-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);

    for (i = 0; i < ARRAY_SIZE(create_cases); i++) {
        g_autofree char *name =
            g_strdup_printf("/qcow2-create/layout/%zu:%s:%" PRIu64, i,
                            create_cases[i].opts, create_cases[i].size);
        g_test_add_data_func(name, &create_cases[i], test_create_layout);
    }
    g_test_add_func("/qcow2-create/errors", test_create_errors);
    g_test_add_func("/qcow2-create/measure", test_measure);
    g_test_add_func("/qcow2-check/leak", test_check_leak);
    g_test_add_func("/qcow2-check/rebuild", test_check_rebuild);
    g_test_add_func("/qcow2-amend/basic", test_amend);
    g_test_add_func("/qcow2-amend/small-cluster-header",
                    test_amend_small_cluster_header);
    for (i = 0; i < ARRAY_SIZE(grow_cases); i++) {
        g_autofree char *name =
            g_strdup_printf("/qcow2-resize/layout/%zu", i);
        g_test_add_data_func(name, &grow_cases[i], test_resize_layout);
    }
    g_test_add_func("/qcow2-amend/refcount-bits", test_amend_refcount_bits);

    ret = g_test_run();
    rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
