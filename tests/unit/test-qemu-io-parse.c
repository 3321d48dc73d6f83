/*
 * Tests for the tool helpers: size parsing, error messages, cache and
 * aio mode parsing, and the report formats qemu-io prints.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/tools-common.h"
#include "block/block.h"

static void test_cvtnum(void)
{
    g_assert_cmpint(tool_cvtnum("0"), ==, 0);
    g_assert_cmpint(tool_cvtnum("512"), ==, 512);
    g_assert_cmpint(tool_cvtnum("4k"), ==, 4096);
    g_assert_cmpint(tool_cvtnum("4K"), ==, 4096);
    g_assert_cmpint(tool_cvtnum("1M"), ==, MiB);
    g_assert_cmpint(tool_cvtnum("1.5k"), ==, 1536);
    g_assert_cmpint(tool_cvtnum("1b"), ==, 1);
    g_assert_cmpint(tool_cvtnum("0x200"), ==, 512);
    g_assert_cmpint(tool_cvtnum("7E"), ==, 7 * EiB);

    g_assert_cmpint(tool_cvtnum("12x"), ==, -EINVAL);
    g_assert_cmpint(tool_cvtnum("-1"), ==, -EINVAL);
    g_assert_cmpint(tool_cvtnum("1.3"), ==, -EINVAL);
    g_assert_cmpint(tool_cvtnum(""), ==, -EINVAL);
    /* 8 EiB does not fit an int64_t offset. */
    g_assert_cmpint(tool_cvtnum("8E"), ==, -ERANGE);
    g_assert_cmpint(tool_cvtnum("99999999999999999999"), ==, -ERANGE);
}

static void test_cvtnum_err_subprocess(void)
{
    tool_print_cvtnum_err(-EINVAL, "12x");
    tool_print_cvtnum_err(-ERANGE, "16E");
    tool_print_cvtnum_err(-EIO, "odd");
}

static void test_cvtnum_err(void)
{
    g_test_trap_subprocess("/tools/cvtnum-err/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout(
        "Parsing error: non-numeric argument, or extraneous/unrecognized "
        "suffix -- 12x\n"
        "Parsing error: argument too large -- 16E\n"
        "Parsing error: odd\n");
}

static void test_cvtnum_full_subprocess(void)
{
    error_set_progname("qemu-img");
    g_assert_cmpint(tool_cvtnum_full("image size", "64M", 0, INT64_MAX),
                    ==, 64 * MiB);
    g_assert_cmpint(tool_cvtnum_full("image size", "1k", 2048, 4096), ==,
                    -ERANGE);
    g_assert_cmpint(tool_cvtnum_full("image size", "zz", 0, 10), ==,
                    -EINVAL);
}

static void test_cvtnum_full(void)
{
    g_test_trap_subprocess("/tools/cvtnum-full/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr(
        "qemu-img: Invalid image size specified. Must be between 2048 and "
        "4096.\n"
        "qemu-img: Invalid image size specified. You may use k, M, G, T, P "
        "or E suffixes for\n"
        "qemu-img: kilobytes, megabytes, gigabytes, terabytes, petabytes "
        "and exabytes.\n");
}

static void test_cvtstr(void)
{
    static const struct {
        double value;
        const char *expect;
    } cases[] = {
        { 0, "0 bytes" },
        { 40, "40 bytes" },
        { 511.5, "511.500000 bytes" },
        { 1024, "1 KiB" },
        { 1536, "1.500 KiB" },
        { 4096, "4 KiB" },
        { 64 * MiB, "64 MiB" },
        { 67043328, "63.938 MiB" },
        { 512 * MiB, "512 MiB" },
        { 3 * GiB, "3 GiB" },
        { 228.805 * KiB, "228.805 KiB" },
        { 2.0 * TiB, "2 TiB" },
        { 1.25 * PiB, "1.250 PiB" },
        { 8.0 * EiB, "8 EiB" },
    };
    char buf[64];
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        tool_cvtstr(cases[i].value, buf, sizeof(buf));
        g_assert_cmpstr(buf, ==, cases[i].expect);
    }
}

static void test_timestr(void)
{
    struct timespec t = { .tv_sec = 0, .tv_nsec = 4560000 };
    char buf[64];

    tool_timestr(&t, buf, sizeof(buf), false);
    g_assert_cmpstr(buf, ==, "00.00 sec");
    tool_timestr(&t, buf, sizeof(buf), true);
    g_assert_cmpstr(buf, ==, "0:00:00.00");

    t.tv_nsec = 250000000;
    tool_timestr(&t, buf, sizeof(buf), false);
    g_assert_cmpstr(buf, ==, "00.25 sec");

    t.tv_sec = 3725;
    tool_timestr(&t, buf, sizeof(buf), false);
    g_assert_cmpstr(buf, ==, "1:02:05.25");
}

static void test_tsub_tdiv(void)
{
    struct timespec a = { .tv_sec = 10, .tv_nsec = 100000000 };
    struct timespec b = { .tv_sec = 8, .tv_nsec = 600000000 };
    struct timespec d = tool_tsub(a, b);

    g_assert_cmpint(d.tv_sec, ==, 1);
    g_assert_cmpint(d.tv_nsec, ==, 500000000);
    g_assert_cmpfloat(tool_tdiv(3.0, d), ==, 2.0);
}

static void test_report_subprocess(void)
{
    struct timespec t = { .tv_sec = 0, .tv_nsec = 500000000 };

    tool_print_report("wrote", &t, 0, 4096, 4096, 1, false);
    tool_print_report("read", &t, 512, 1536, 1536, 1, false);
    tool_print_report("read", &t, 0, 512, 512, 1, true);
}

static void test_report(void)
{
    g_test_trap_subprocess("/tools/report/subprocess", 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout(
        "wrote 4096/4096 bytes at offset 0\n"
        "4 KiB, 1 ops; 00.50 sec (8 KiB/sec and 2.0000 ops/sec)\n"
        "read 1536/1536 bytes at offset 512\n"
        "1.500 KiB, 1 ops; 00.50 sec (3 KiB/sec and 2.0000 ops/sec)\n"
        "512,1,0:00:00.50,1024.000,2.000\n");
}

static void test_cache_mode(void)
{
    static const struct {
        const char *mode;
        int flags;
        bool writethrough;
    } cases[] = {
        { "none", BDRV_O_NOCACHE, false },
        { "off", BDRV_O_NOCACHE, false },
        { "directsync", BDRV_O_NOCACHE, true },
        { "writeback", 0, false },
        { "writethrough", 0, true },
        { "unsafe", BDRV_O_NO_FLUSH, false },
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        /* Old cache bits go, unrelated bits stay. */
        int flags = BDRV_O_RDWR | BDRV_O_NOCACHE | BDRV_O_NO_FLUSH;
        bool wt = !cases[i].writethrough;

        g_assert_cmpint(tool_parse_cache_mode(cases[i].mode, &flags, &wt),
                        ==, 0);
        g_assert_cmpint(flags, ==, BDRV_O_RDWR | cases[i].flags);
        g_assert(wt == cases[i].writethrough);
    }

    {
        int flags = BDRV_O_RDWR;
        bool wt = true;

        g_assert_cmpint(tool_parse_cache_mode("foo", &flags, &wt), ==, -1);
        g_assert_cmpint(flags, ==, BDRV_O_RDWR);
        g_assert(wt);
    }
}

static void test_discard_aio(void)
{
    int flags = BDRV_O_RDWR | BDRV_O_UNMAP;

    g_assert_cmpint(tool_parse_discard_flags("ignore", &flags), ==, 0);
    g_assert_cmpint(flags, ==, BDRV_O_RDWR);
    g_assert_cmpint(tool_parse_discard_flags("unmap", &flags), ==, 0);
    g_assert_cmpint(flags, ==, BDRV_O_RDWR | BDRV_O_UNMAP);
    g_assert_cmpint(tool_parse_discard_flags("off", &flags), ==, 0);
    g_assert_cmpint(flags, ==, BDRV_O_RDWR);
    g_assert_cmpint(tool_parse_discard_flags("bogus", &flags), ==, -1);

    flags = 0;
    g_assert_cmpint(tool_parse_aio("native", &flags), ==, 0);
    g_assert_cmpint(flags, ==, BDRV_O_NATIVE_AIO);
    g_assert_cmpint(tool_parse_aio("threads", &flags), ==, 0);
    g_assert_cmpint(flags, ==, 0);
#ifdef CONFIG_LINUX_IO_URING
    g_assert_cmpint(tool_parse_aio("io_uring", &flags), ==, 0);
    g_assert_cmpint(flags, ==, BDRV_O_IO_URING);
#endif
    g_assert_cmpint(tool_parse_aio("bogus", &flags), ==, -1);
}

static void test_image_opts(void)
{
    Error *err = NULL;
    QDict *d;

    d = tool_parse_image_opts("driver=raw,file.filename=/tmp/x", false,
                              &err);
    g_assert_nonnull(d);
    g_assert_cmpstr(qdict_get_try_str(d, "driver"), ==, "raw");
    g_assert_cmpstr(qdict_get_try_str(d, "file.filename"), ==, "/tmp/x");
    qdict_free(d);

    d = tool_parse_image_opts("img.qcow2,driver=qcow2", true, &err);
    g_assert_nonnull(d);
    g_assert_cmpstr(qdict_get_try_str(d, "file"), ==, "img.qcow2");
    g_assert_cmpstr(qdict_get_try_str(d, "driver"), ==, "qcow2");
    qdict_free(d);

    /* qemu-io style: a bare word is a boolean flag, not the file. */
    d = tool_parse_image_opts("driver=raw,cache.direct", false, &err);
    g_assert_nonnull(d);
    g_assert_cmpstr(qdict_get_try_str(d, "cache.direct"), ==, "on");
    g_assert_false(qdict_haskey(d, "file"));
    qdict_free(d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tools/cvtnum", test_cvtnum);
    g_test_add_func("/tools/cvtnum-err", test_cvtnum_err);
    g_test_add_func("/tools/cvtnum-err/subprocess",
                    test_cvtnum_err_subprocess);
    g_test_add_func("/tools/cvtnum-full", test_cvtnum_full);
    g_test_add_func("/tools/cvtnum-full/subprocess",
                    test_cvtnum_full_subprocess);
    g_test_add_func("/tools/cvtstr", test_cvtstr);
    g_test_add_func("/tools/timestr", test_timestr);
    g_test_add_func("/tools/tsub-tdiv", test_tsub_tdiv);
    g_test_add_func("/tools/report", test_report);
    g_test_add_func("/tools/report/subprocess", test_report_subprocess);
    g_test_add_func("/tools/cache-mode", test_cache_mode);
    g_test_add_func("/tools/discard-aio", test_discard_aio);
    g_test_add_func("/tools/image-opts", test_image_opts);
    return g_test_run();
}
