/*
 * Tests for the qemu-io command dispatcher and commands, on a file node:
 * what they print (timings are matched with globs) and what they return.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu-io.h"

static char *image_path;

static BlockBackend *open_image(bool writable)
{
    QDict *opts = qdict_new();
    Error *err = NULL;
    BlockBackend *blk;

    qdict_put_str(opts, "driver", "file");
    blk = blk_new_open(image_path, opts,
                       writable ? BDRV_O_RDWR : 0, &err);
    if (!blk) {
        error_report_err(err);
        g_assert_not_reached();
    }
    return blk;
}

static void test_rw_subprocess(void)
{
    BlockBackend *blk = open_image(true);

    g_assert_cmpint(qemuio_command(blk, "write -P 0xab 512 1k"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "read -P 0xab 512 1k"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "read -q -P 0xac 512 1k"), ==,
                    -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "read -v 1k 20"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "read -C 0 512"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "length"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "read 0 12x"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "read 1M 512"), <, 0);
    fflush(stdout);
    blk_unref(blk);
}

static void test_rw(void)
{
    g_test_trap_subprocess("/qemu-io/rw/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout(
        "wrote 1024/1024 bytes at offset 512\n"
        "1 KiB, 1 ops; * sec (* ops/sec)\n"
        "read 1024/1024 bytes at offset 512\n"
        "1 KiB, 1 ops; * sec (* ops/sec)\n"
        "Pattern verification failed at offset 512, 1024 bytes\n"
        "00000400:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  "
        "................\n"
        "00000410:  ab ab ab ab  ....\n"
        "read 20/20 bytes at offset 1024\n"
        "20 bytes, 1 ops; * sec (* ops/sec)\n"
        "512,1,0:00:*\n"
        "64 KiB\n"
        "Parsing error: non-numeric argument, or extraneous/unrecognized "
        "suffix -- 12x\n"
        "read failed: Input/output error\n");
}

static void test_dispatch_subprocess(void)
{
    BlockBackend *blk = open_image(true);

    g_assert_cmpint(qemuio_command(blk, "read 0"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "map 1"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "alloc 0 1 2"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "bogus"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(NULL, "length"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(NULL, "help bogus"), ==, -EINVAL);
    /* Empty lines and extra spaces are fine. */
    g_assert_cmpint(qemuio_command(blk, ""), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "  l  "), ==, 0);
    fflush(stdout);
    blk_unref(blk);
}

static void test_dispatch(void)
{
    g_test_trap_subprocess("/qemu-io/dispatch/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr(
        "bad argument count 1 to read, expected at least 2 arguments\n"
        "bad argument count 1 to map, expected 0 arguments\n"
        "bad argument count 3 to alloc, expected between 1 and 2 "
        "arguments\n"
        "command \"bogus\" not found\n"
        "no file open, try 'help open'\n");
    g_test_trap_assert_stdout("command bogus not found\n64 KiB\n");
}

static void test_aio_subprocess(void)
{
    BlockBackend *blk = open_image(true);

    g_assert_cmpint(qemuio_command(blk, "aio_write -P 0x11 0 4k"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "aio_write -q -P 0x22 4k 2k 2k"), ==,
                    0);
    g_assert_cmpint(qemuio_command(blk, "aio_flush"), ==, 0);
    g_assert_cmpint(qemuio_aio_in_flight(), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "aio_read -P 0x22 4k 4k"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "aio_read -P 0x11 4k 512"), ==, 0);
    qemuio_wait_aio();
    g_assert_cmpint(qemuio_aio_in_flight(), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "read -q -P 0x11 0 4k"), ==, 0);
    fflush(stdout);
    blk_unref(blk);
}

static void test_aio(void)
{
    g_test_trap_subprocess("/qemu-io/aio/subprocess", 0, 0);
    g_test_trap_assert_passed();
    /* The two reads may complete in either order. */
    g_test_trap_assert_stdout(
        "wrote 4096/4096 bytes at offset 0\n"
        "4 KiB, 1 ops; * sec (* ops/sec)\n*"
        "read 4096/4096 bytes at offset 4096\n*");
    g_test_trap_assert_stdout(
        "*Pattern verification failed at offset 4096, 512 bytes\n"
        "read 512/512 bytes at offset 4096\n*");
}

static void test_readonly_subprocess(void)
{
    BlockBackend *blk = open_image(false);

    error_set_progname("qemu-io");
    g_assert_cmpint(qemuio_command(blk, "write 0 512"), <, 0);
    g_assert_cmpint(qemuio_command(blk, "discard 0 512"), <, 0);
    g_assert_cmpint(qemuio_command(blk, "read -q 0 512"), ==, 0);
    blk_unref(blk);
}

static void test_readonly(void)
{
    g_test_trap_subprocess("/qemu-io/readonly/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("qemu-io: Block node is read-only\n"
                              "qemu-io: Block node is read-only\n");
}

static void test_write_checks_subprocess(void)
{
    BlockBackend *blk = open_image(true);

    g_assert_cmpint(qemuio_command(blk, "write -n 0 1"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "write -z -P 1 0 1"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "write -c 1 512"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "write -P 0x100 0 1"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "read 0 3G"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "readv 0 1G 1G 1G"), ==, -EINVAL);
    g_assert_cmpint(qemuio_command(blk, "write -q -z 0 4k"), ==, 0);
    g_assert_cmpint(qemuio_command(blk, "readv -q -P 0 0 1k 3k"), ==, 0);
    fflush(stdout);
    blk_unref(blk);
}

static void test_write_checks(void)
{
    g_test_trap_subprocess("/qemu-io/write-checks/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout(
        "-n requires -z to be specified\n"
        "Only one of -z, -P, and -s can be specified at the same time\n"
        "1 is not a sector-aligned value for 'offset'\n"
        "0x100 is not a valid pattern byte\n"
        "length cannot exceed 2147483136, given 3G\n"
        "The total number of bytes exceed the maximum size 2147483136\n");
}

int main(int argc, char **argv)
{
    int fd, ret;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();

    fd = g_file_open_tmp("qemu-io-cmds-XXXXXX", &image_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 64 * KiB), ==, 0);
    close(fd);

    g_test_add_func("/qemu-io/rw", test_rw);
    g_test_add_func("/qemu-io/rw/subprocess", test_rw_subprocess);
    g_test_add_func("/qemu-io/dispatch", test_dispatch);
    g_test_add_func("/qemu-io/dispatch/subprocess", test_dispatch_subprocess);
    g_test_add_func("/qemu-io/aio", test_aio);
    g_test_add_func("/qemu-io/aio/subprocess", test_aio_subprocess);
    g_test_add_func("/qemu-io/readonly", test_readonly);
    g_test_add_func("/qemu-io/readonly/subprocess",
                    test_readonly_subprocess);
    g_test_add_func("/qemu-io/write-checks", test_write_checks);
    g_test_add_func("/qemu-io/write-checks/subprocess",
                    test_write_checks_subprocess);
    ret = g_test_run();
    unlink(image_path);
    g_free(image_path);
    return ret;
}
