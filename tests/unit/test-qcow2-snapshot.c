/*
 * Unit tests for internal snapshots through the generic API
 * (include/block/snapshot.h): ID handling, errors, reverting data and
 * size, drivers without snapshot support.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The command line and interoperability with QEMU are covered by the
 * qcow2-snapshot* iotests; these tests reach what qemu-img cannot ask
 * for, such as an explicit ID that is already taken.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/snapshot.h"
#include "qemu/cutils.h"

static char *tmpdir;

static char *make_img(const char *name, const char *fmt, const char *opts,
                      uint64_t size)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    Error *err = NULL;

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, fmt, NULL, NULL, opts, size, 0,
                                    true, &err), ==, 0);
    g_assert_null(err);
    return path;
}

static BlockBackend *open_img(const char *path, const char *fmt)
{
    QDict *opts = qdict_new();
    Error *err = NULL;
    BlockBackend *blk;

    qdict_put_str(opts, "driver", fmt);
    blk = blk_new_open(path, opts, BDRV_O_RDWR, &err);
    g_assert_null(err);
    g_assert_nonnull(blk);
    return blk;
}

static void fill(BlockBackend *blk, int64_t off, int64_t len, int pattern)
{
    g_autofree uint8_t *buf = g_malloc(len);

    memset(buf, pattern, len);
    g_assert_cmpint(blk_pwrite(blk, off, len, buf, 0), ==, 0);
}

static void expect(BlockBackend *blk, int64_t off, int64_t len, int pattern)
{
    g_autofree uint8_t *buf = g_malloc(len);
    int64_t i;

    g_assert_cmpint(blk_pread(blk, off, len, buf, 0), ==, 0);
    for (i = 0; i < len; i++) {
        g_assert_cmpint(buf[i], ==, pattern);
    }
}

static char *file_contents(const char *path, gsize *len)
{
    char *data = NULL;

    g_assert_true(g_file_get_contents(path, &data, len, NULL));
    return data;
}

static void test_ids_and_errors(void)
{
    g_autofree char *path = make_img("ids.qcow2", "qcow2", NULL, 4 * MiB);
    g_autofree char *before = NULL, *after = NULL;
    BlockBackend *blk = open_img(path, "qcow2");
    BlockDriverState *bs = blk_bs(blk);
    QEMUSnapshotInfo sn, *tab;
    gsize len_before, len_after;
    Error *err = NULL;

    fill(blk, 0, 64 * KiB, 0x11);
    memset(&sn, 0, sizeof(sn));
    pstrcpy(sn.name, sizeof(sn.name), "first");
    sn.icount = UINT64_MAX;
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, 0);
    /* An empty ID is replaced by the next free number. */
    g_assert_cmpstr(sn.id_str, ==, "1");

    /* An ID in use: refused, and the file is not touched. */
    g_assert_cmpint(blk_flush(blk), ==, 0);
    before = file_contents(path, &len_before);
    pstrcpy(sn.name, sizeof(sn.name), "again");
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, -EEXIST);
    g_assert_null(err);
    g_assert_cmpint(blk_flush(blk), ==, 0);
    after = file_contents(path, &len_after);
    g_assert_cmpuint(len_before, ==, len_after);
    g_assert_true(memcmp(before, after, len_before) == 0);

    /* An explicit ID is kept; the next automatic one goes past it. */
    pstrcpy(sn.id_str, sizeof(sn.id_str), "7");
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, 0);
    sn.id_str[0] = 0;
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, 0);
    g_assert_cmpstr(sn.id_str, ==, "8");

    g_assert_cmpint(bdrv_snapshot_list(bs, &tab), ==, 3);
    g_assert_cmpstr(tab[0].name, ==, "first");
    g_assert_cmpuint(tab[0].icount, ==, UINT64_MAX);
    g_assert_cmpstr(tab[1].id_str, ==, "7");
    g_free(tab);

    /* find looks at names only. */
    g_assert_cmpint(bdrv_snapshot_find(bs, &sn, "7"), ==, -ENOENT);
    g_assert_cmpint(bdrv_snapshot_find(bs, &sn, "again"), ==, 0);
    g_assert_cmpstr(sn.id_str, ==, "7");

    /* Delete needs ID and name to match. */
    g_assert_cmpint(bdrv_snapshot_delete(bs, "7", "first", &err), ==,
                    -ENOENT);
    g_assert_cmpstr(error_get_pretty(err), ==, "Can't find the snapshot");
    error_free(err);
    err = NULL;
    g_assert_cmpint(bdrv_snapshot_delete(bs, "7", NULL, &err), ==, 0);
    g_assert_cmpint(bdrv_snapshot_delete(bs, NULL, "again", &err), ==, 0);
    g_assert_cmpint(bdrv_snapshot_list(bs, &tab), ==, 1);
    g_free(tab);

    g_assert_cmpint(bdrv_snapshot_goto(bs, "nope", &err), ==, -ENOENT);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Failed to load snapshot: No such file or directory");
    error_free(err);
    blk_unref(blk);
    unlink(path);
}

static void test_revert_data_and_size(void)
{
    g_autofree char *path = make_img("revert.qcow2", "qcow2",
                                     "cluster_size=4096", 1 * MiB);
    BlockBackend *blk = open_img(path, "qcow2");
    BlockDriverState *bs = blk_bs(blk);
    QEMUSnapshotInfo sn;
    Error *err = NULL;

    fill(blk, 0, 8 * KiB, 0x21);
    memset(&sn, 0, sizeof(sn));
    pstrcpy(sn.name, sizeof(sn.name), "small");
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, 0);

    /* Same session: the writes after the snapshot must copy. */
    fill(blk, 4 * KiB, 8 * KiB, 0x22);
    g_assert_cmpint(blk_truncate(blk, 3 * MiB, false, PREALLOC_MODE_OFF, 0,
                                 &err), ==, 0);
    fill(blk, 2 * MiB, 4 * KiB, 0x23);
    pstrcpy(sn.name, sizeof(sn.name), "big");
    sn.id_str[0] = 0;
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, 0);

    g_assert_cmpint(bdrv_snapshot_goto(bs, "small", &err), ==, 0);
    g_assert_cmpint(blk_getlength(blk), ==, 1 * MiB);
    expect(blk, 0, 8 * KiB, 0x21);
    expect(blk, 8 * KiB, 4 * KiB, 0);
    /* Writable again after the revert. */
    fill(blk, 0, 4 * KiB, 0x24);

    g_assert_cmpint(bdrv_snapshot_goto(bs, "2", &err), ==, 0);
    g_assert_cmpint(blk_getlength(blk), ==, 3 * MiB);
    expect(blk, 0, 4 * KiB, 0x21);
    expect(blk, 4 * KiB, 8 * KiB, 0x22);
    expect(blk, 2 * MiB, 4 * KiB, 0x23);
    g_assert_null(err);
    blk_unref(blk);
    unlink(path);
}

static void test_raw_unsupported(void)
{
    g_autofree char *path = make_img("plain.raw", "raw", NULL, 1 * MiB);
    BlockBackend *blk = open_img(path, "raw");
    BlockDriverState *bs = blk_bs(blk);
    QEMUSnapshotInfo sn, *tab;
    Error *err = NULL;

    memset(&sn, 0, sizeof(sn));
    g_assert_cmpint(bdrv_snapshot_list(bs, &tab), ==, -ENOTSUP);
    g_assert_null(tab);
    g_assert_cmpint(bdrv_snapshot_create(bs, &sn, &err), ==, -ENOTSUP);
    g_assert_null(err);
    g_assert_cmpint(bdrv_snapshot_goto(bs, "x", &err), ==, -ENOTSUP);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Block driver does not support snapshots");
    error_free(err);
    blk_unref(blk);
    unlink(path);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-qcow2-snapshot-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);

    g_test_add_func("/qcow2-snapshot/ids-and-errors", test_ids_and_errors);
    g_test_add_func("/qcow2-snapshot/revert-data-and-size",
                    test_revert_data_and_size);
    g_test_add_func("/qcow2-snapshot/raw-unsupported", test_raw_unsupported);
    ret = g_test_run();
    rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
