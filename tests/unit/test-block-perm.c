/*
 * Unit tests for block permissions (block/block-perm.c): the image lock
 * bytes a BlockBackend's open flags lead to through raw and qcow2 nodes,
 * as QEMU 7.2 takes them, and that failed opens leave nothing behind.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/*
 * The lock bytes (100..103, 200..203) somebody holds on @path, as seen
 * from a fresh open file description: "100 101 203".  Our own
 * BlockBackends count as somebody, as OFD locks are per description.
 */
static char *held(const char *path)
{
    GString *s = g_string_new(NULL);
    int fd = open(path, O_RDONLY);
    int i;

    g_assert_cmpint(fd, >=, 0);
    for (i = 0; i < 8; i++) {
        struct flock fl = {
            .l_whence = SEEK_SET,
            .l_start = (i < 4 ? 100 : 200) + i % 4,
            .l_len = 1,
            .l_type = F_WRLCK,
        };

        g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
        if (fl.l_type != F_UNLCK) {
            g_string_append_printf(s, "%s%d", s->len ? " " : "",
                                   (i < 4 ? 100 : 200) + i % 4);
        }
    }
    close(fd);
    return g_string_free(s, false);
}

static void assert_held(const char *path, const char *want)
{
    g_autofree char *got = held(path);

    g_assert_cmpstr(got, ==, want);
}

static void make_image(const char *path, const char *fmt,
                       const char *backing, const char *backing_fmt)
{
    Error *err = NULL;

    unlink(path);
    g_assert_cmpint(bdrv_img_create(path, fmt, backing, backing_fmt, NULL,
                                    backing ? (uint64_t)-1 : 1 * MiB, 0,
                                    true, &err), ==, 0);
    g_assert(!err);
}

/* blk_new_open(@path) as @fmt, plus "key=value" @opt if given. */
static BlockBackend *open_blk(const char *path, const char *fmt, int flags,
                              const char *opt, Error **errp)
{
    QDict *options = qdict_new();

    qdict_put_str(options, "driver", fmt);
    if (opt) {
        g_auto(GStrv) kv = g_strsplit(opt, "=", 2);

        qdict_put_str(options, kv[0], kv[1]);
    }
    return blk_new_open(path, options, flags, errp);
}

/* Hold @path with @flags, check the bytes, let go, check they are gone. */
static void check_perms(const char *path, const char *fmt, int flags,
                        const char *opt, const char *want)
{
    BlockBackend *blk = open_blk(path, fmt, flags, opt, &error_abort);

    assert_held(path, want);
    blk_unref(blk);
    assert_held(path, "");
}

static void test_raw(void)
{
    g_autofree char *path = tmp_path("perm.raw");

    make_image(path, "raw", NULL, NULL);
    /* A filter: exactly what the BlockBackend asks, sharing everything. */
    check_perms(path, "raw", BDRV_O_RDWR, NULL, "100 101");
    check_perms(path, "raw", 0, NULL, "100");
    check_perms(path, "raw", BDRV_O_NO_IO, NULL, "");
    check_perms(path, "raw", BDRV_O_RDWR | BDRV_O_RESIZE, NULL,
                "100 101 103");
    check_perms(path, "raw", BDRV_O_NO_SHARE, NULL, "100 201 203");
    check_perms(path, "raw", BDRV_O_NO_SHARE | BDRV_O_FORCE_SHARE, NULL,
                "100");
    /* A window into the file: others must not resize it. */
    check_perms(path, "raw", BDRV_O_RDWR, "offset=512", "100 101 203");
    check_perms(path, "raw", 0, "size=4096", "100 203");
}

static void test_qcow2(void)
{
    g_autofree char *path = tmp_path("perm.qcow2");

    make_image(path, "qcow2", NULL, NULL);
    /* Metadata storage: write and resize when writable, share reads. */
    check_perms(path, "qcow2", BDRV_O_RDWR, NULL, "100 101 103 201 203");
    check_perms(path, "qcow2", 0, NULL, "100 201 203");
    check_perms(path, "qcow2", BDRV_O_NO_IO, NULL, "201 203");
    check_perms(path, "qcow2", BDRV_O_FORCE_SHARE, NULL, "100");
    check_perms(path, "qcow2", BDRV_O_FORCE_SHARE, "force-share=on", "100");
}

static void test_two_writers(void)
{
    g_autofree char *raw = tmp_path("two.raw");
    g_autofree char *qcow = tmp_path("two.qcow2");
    BlockBackend *a, *b;
    Error *err = NULL;

    /* raw shares writes: a second writer is fine. */
    make_image(raw, "raw", NULL, NULL);
    a = open_blk(raw, "raw", BDRV_O_RDWR, NULL, &error_abort);
    b = open_blk(raw, "raw", BDRV_O_RDWR, NULL, &error_abort);
    blk_unref(a);
    assert_held(raw, "100 101");
    blk_unref(b);
    assert_held(raw, "");

    /* qcow2 does not; the refused open keeps no lock of its own. */
    make_image(qcow, "qcow2", NULL, NULL);
    a = open_blk(qcow, "qcow2", 0, NULL, &error_abort);
    b = open_blk(qcow, "qcow2", BDRV_O_RDWR, NULL, &err);
    g_assert(!b);
    g_assert_cmpstr(error_get_pretty(err), ==, "Failed to get \"write\" lock");
    error_free(err);
    err = NULL;
    /* raw on top of the same file asks for write, qcow2 does not share it */
    b = open_blk(qcow, "raw", BDRV_O_RDWR, NULL, &err);
    g_assert(!b);
    g_assert_cmpstr(error_get_pretty(err), ==, "Failed to get \"write\" lock");
    error_free(err);
    err = NULL;
    assert_held(qcow, "100 201 203");
    blk_unref(a);
    assert_held(qcow, "");
}

static void test_backing(void)
{
    g_autofree char *base = tmp_path("base.qcow2");
    g_autofree char *rbase = tmp_path("base.raw");
    g_autofree char *top = tmp_path("top.qcow2");
    BlockBackend *blk, *holder;
    Error *err = NULL;

    /* The backing file is only read, whatever the overlay does. */
    make_image(base, "qcow2", NULL, NULL);
    make_image(top, "qcow2", base, "qcow2");
    blk = open_blk(top, "qcow2", BDRV_O_RDWR, NULL, &error_abort);
    assert_held(top, "100 101 103 201 203");
    assert_held(base, "100 201 203");
    blk_unref(blk);
    assert_held(base, "");

    make_image(rbase, "raw", NULL, NULL);
    make_image(top, "qcow2", rbase, "raw");
    blk = open_blk(top, "qcow2", BDRV_O_RDWR, NULL, &error_abort);
    assert_held(rbase, "100");
    blk_unref(blk);

    /* A written backing file refuses the overlay; the overlay lets go. */
    make_image(top, "qcow2", base, "qcow2");
    holder = open_blk(base, "qcow2", BDRV_O_RDWR, NULL, &error_abort);
    blk = open_blk(top, "qcow2", 0, NULL, &err);
    g_assert(!blk);
    g_assert_cmpstr(error_get_pretty(err), ==, "Could not open backing file: "
                    "Failed to get shared \"write\" lock");
    error_free(err);
    assert_held(top, "");
    assert_held(base, "100 101 103 201 203");
    blk_unref(holder);
    assert_held(base, "");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-block-perm-XXXXXX", NULL);
    g_assert(tmpdir);

    g_test_add_func("/block-perm/raw", test_raw);
    g_test_add_func("/block-perm/qcow2", test_qcow2);
    g_test_add_func("/block-perm/two-writers", test_two_writers);
    g_test_add_func("/block-perm/backing", test_backing);
    ret = g_test_run();

    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

        if (system(cmd) != 0) {
            g_test_message("could not remove %s", tmpdir);
        }
    }
    g_free(tmpdir);
    return ret;
}
