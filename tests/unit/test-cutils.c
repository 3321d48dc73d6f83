/*
 * Tests for number/size parsing, size formatting and Error objects.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"

/* Expected outcome of parsing one size string. */
typedef struct SizeCase {
    const char *str;
    int ret;
    uint64_t value;
} SizeCase;

static void test_strtosz_table(void)
{
    static const SizeCase cases[] = {
        { "0", 0, 0 },
        { "12345", 0, 12345 },
        { "  1M", 0, MiB },
        { "1B", 0, 1 },
        { "1b", 0, 1 },
        { "1k", 0, KiB },
        { "1K", 0, KiB },
        { "2m", 0, 2 * MiB },
        { "3G", 0, 3 * GiB },
        { "4T", 0, 4 * TiB },
        { "5P", 0, 5 * PiB },
        { "1E", 0, EiB },
        { "1.5M", 0, MiB + MiB / 2 },
        { "1.25k", 0, 1280 },
        { "0.5G", 0, GiB / 2 },
        { "1.0", 0, 1 },
        { "1.0B", 0, 1 },
        { "1.", 0, 1 },
        { "1.k", 0, KiB },
        { "1.0000001k", 0, KiB },
        { "0x100000", 0, MiB },
        { "0X10", 0, 16 },
        { "+5", 0, 5 },
        { "15E", 0, 15 * (uint64_t)EiB },
        { "18446744073709551615", 0, UINT64_MAX },
        /* Errors */
        { "", -EINVAL, 0 },
        { "   ", -EINVAL, 0 },
        { "abc", -EINVAL, 0 },
        { "1Q", -EINVAL, 0 },
        { "1kB", -EINVAL, 0 },
        { "1M ", -EINVAL, 0 },
        { "1 M", -EINVAL, 0 },
        { "1.5", -EINVAL, 0 },
        { "1.5B", -EINVAL, 0 },
        { "1.5e3K", -EINVAL, 0 },
        { "1.0e0", -EINVAL, 0 },
        { ".5M", -EINVAL, 0 },
        { "0x1.8M", -EINVAL, 0 },
        { "0x", -EINVAL, 0 },
        { "-1", -EINVAL, 0 },
        { "-0", -EINVAL, 0 },
        { " -1M", -EINVAL, 0 },
        { "16E", -ERANGE, 0 },
        { "15.9999E", 0, 15 * (uint64_t)EiB + (uint64_t)(0.9999 * EiB) },
        { "15.99999999999999999E", -ERANGE, 0 },
        { "16383.99999P", 0,
          16383 * (uint64_t)PiB + (uint64_t)(0.99999 * PiB) },
        { "16384P", -ERANGE, 0 },
        { "18446744073709551616", -ERANGE, 0 },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t v = 0xdeadbeef;
        int ret = qemu_strtosz(cases[i].str, NULL, &v);

        if (ret != cases[i].ret) {
            g_test_message("input '%s': got %d want %d", cases[i].str, ret,
                           cases[i].ret);
        }
        g_assert_cmpint(ret, ==, cases[i].ret);
        if (ret == 0) {
            g_assert_cmpuint(v, ==, cases[i].value);
        } else {
            /* The result is untouched on error. */
            g_assert_cmpuint(v, ==, 0xdeadbeef);
        }
    }
}

static void test_strtosz_end(void)
{
    const char *end;
    uint64_t v;
    const char *s = "12k34";

    g_assert_cmpint(qemu_strtosz(s, &end, &v), ==, 0);
    g_assert_cmpuint(v, ==, 12 * KiB);
    g_assert_true(end == s + 3);

    s = "1.5Mx";
    g_assert_cmpint(qemu_strtosz(s, &end, &v), ==, 0);
    g_assert_cmpuint(v, ==, 3 * MiB / 2);
    g_assert_cmpstr(end, ==, "x");

    /* Trailing text is fine with an end pointer... */
    s = "64 KiB";
    g_assert_cmpint(qemu_strtosz(s, &end, &v), ==, 0);
    g_assert_cmpuint(v, ==, 64);
    g_assert_cmpstr(end, ==, " KiB");

    /* ...but a failure points back at the start. */
    s = "-5";
    g_assert_cmpint(qemu_strtosz(s, &end, &v), ==, -EINVAL);
    g_assert_true(end == s);
    s = "1.5";
    g_assert_cmpint(qemu_strtosz(s, &end, &v), ==, -EINVAL);
    g_assert_true(end == s);
}

static void test_strtosz_mib(void)
{
    uint64_t v;

    g_assert_cmpint(qemu_strtosz_MiB("12", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 12 * MiB);
    g_assert_cmpint(qemu_strtosz_MiB("1.5", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 3 * MiB / 2);
    g_assert_cmpint(qemu_strtosz_MiB("7B", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 7);
    g_assert_cmpint(qemu_strtosz_suffix("3", NULL, &v, 'G'), ==, 0);
    g_assert_cmpuint(v, ==, 3 * GiB);
    g_assert_cmpint(qemu_strtosz_MiB("17592186044416", NULL, &v), ==,
                    -ERANGE);
}

static void test_strtoi(void)
{
    int i;
    unsigned int u;
    long l;
    int64_t i64;
    uint64_t u64;
    const char *end;

    g_assert_cmpint(qemu_strtoi("42", NULL, 10, &i), ==, 0);
    g_assert_cmpint(i, ==, 42);
    g_assert_cmpint(qemu_strtoi("  -42", NULL, 10, &i), ==, 0);
    g_assert_cmpint(i, ==, -42);
    g_assert_cmpint(qemu_strtoi("0x1f", NULL, 0, &i), ==, 0);
    g_assert_cmpint(i, ==, 31);
    g_assert_cmpint(qemu_strtoi("0x1f", NULL, 16, &i), ==, 0);
    g_assert_cmpint(i, ==, 31);
    g_assert_cmpint(qemu_strtoi("010", NULL, 0, &i), ==, 0);
    g_assert_cmpint(i, ==, 8);
    g_assert_cmpint(qemu_strtoi("0x1f", NULL, 10, &i), ==, -EINVAL);
    g_assert_cmpint(qemu_strtoi("", NULL, 10, &i), ==, -EINVAL);
    g_assert_cmpint(qemu_strtoi("  ", NULL, 10, &i), ==, -EINVAL);
    g_assert_cmpint(qemu_strtoi("x", NULL, 10, &i), ==, -EINVAL);
    g_assert_cmpint(qemu_strtoi(NULL, NULL, 10, &i), ==, -EINVAL);
    g_assert_cmpint(qemu_strtoi("12x", NULL, 10, &i), ==, -EINVAL);
    g_assert_cmpint(qemu_strtoi("12x", &end, 10, &i), ==, 0);
    g_assert_cmpint(i, ==, 12);
    g_assert_cmpstr(end, ==, "x");
    g_assert_cmpint(qemu_strtoi("x", &end, 10, &i), ==, -EINVAL);
    g_assert_cmpstr(end, ==, "x");
    g_assert_cmpint(qemu_strtoi("2147483647", NULL, 10, &i), ==, 0);
    g_assert_cmpint(i, ==, INT_MAX);
    g_assert_cmpint(qemu_strtoi("2147483648", NULL, 10, &i), ==, -ERANGE);
    g_assert_cmpint(i, ==, INT_MAX);
    g_assert_cmpint(qemu_strtoi("-2147483649", NULL, 10, &i), ==, -ERANGE);
    g_assert_cmpint(i, ==, INT_MIN);

    g_assert_cmpint(qemu_strtoui("4294967295", NULL, 10, &u), ==, 0);
    g_assert_cmpuint(u, ==, UINT_MAX);
    g_assert_cmpint(qemu_strtoui("4294967296", NULL, 10, &u), ==, -ERANGE);
    g_assert_cmpint(qemu_strtoui("-1", NULL, 10, &u), ==, 0);
    g_assert_cmpuint(u, ==, UINT_MAX);
    g_assert_cmpint(qemu_strtoui("-4294967296", NULL, 10, &u), ==, -ERANGE);

    g_assert_cmpint(qemu_strtol("-9223372036854775808", NULL, 10, &l), ==, 0);
    g_assert_cmpint(l, ==, LONG_MIN);
    g_assert_cmpint(qemu_strtol("9223372036854775808", NULL, 10, &l), ==,
                    -ERANGE);

    g_assert_cmpint(qemu_strtoi64("0x7fffffffffffffff", NULL, 0, &i64), ==, 0);
    g_assert_cmpint(i64, ==, INT64_MAX);
    g_assert_cmpint(qemu_strtoi64("99999999999999999999", NULL, 0, &i64), ==,
                    -ERANGE);

    g_assert_cmpint(qemu_strtou64("18446744073709551615", NULL, 0, &u64), ==,
                    0);
    g_assert_cmpuint(u64, ==, UINT64_MAX);
    g_assert_cmpint(qemu_strtou64("18446744073709551616", NULL, 0, &u64), ==,
                    -ERANGE);
    g_assert_cmpint(qemu_strtou64("-1", NULL, 0, &u64), ==, 0);
    g_assert_cmpuint(u64, ==, UINT64_MAX);
    g_assert_cmpint(qemu_strtou64("0x", NULL, 0, &u64), ==, -EINVAL);
}

static void test_size_to_str(void)
{
    static const struct {
        uint64_t val;
        const char *str;
    } cases[] = {
        { 0, "0 B" },
        { 1, "1 B" },
        { 512, "512 B" },
        { 999, "999 B" },
        { 1000, "0.977 KiB" },
        { 1023, "0.999 KiB" },
        { 1024, "1 KiB" },
        { 1536, "1.5 KiB" },
        { 65536, "64 KiB" },
        { 233472, "228 KiB" },
        { 1000 * 1024 - 1, "1e+03 KiB" },
        { 1000 * 1024, "0.977 MiB" },
        { MiB + MiB / 2, "1.5 MiB" },
        { 67108864, "64 MiB" },
        { 1234567, "1.18 MiB" },
        { 2 * GiB, "2 GiB" },
        { 10 * TiB, "10 TiB" },
        { 3 * PiB, "3 PiB" },
        { EiB, "1 EiB" },
        { UINT64_MAX, "16 EiB" },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        char *s = size_to_str(cases[i].val);
        g_assert_cmpstr(s, ==, cases[i].str);
        g_free(s);
    }
}

static void test_bool_parse(void)
{
    Error *err = NULL;
    bool b = false;

    g_assert_true(qapi_bool_parse("x", "on", &b, &error_abort) && b);
    g_assert_true(qapi_bool_parse("x", "off", &b, &error_abort) && !b);
    g_assert_true(qapi_bool_parse("x", "yes", &b, &error_abort) && b);
    g_assert_true(qapi_bool_parse("x", "false", &b, &error_abort) && !b);
    g_assert_false(qapi_bool_parse("lazy_refcounts", "xyz", &b, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Parameter 'lazy_refcounts' expects 'on' or 'off'");
    error_free(err);
}

static void test_pstrcpy(void)
{
    char buf[4];
    const char *rest;

    pstrcpy(buf, sizeof(buf), "abcdef");
    g_assert_cmpstr(buf, ==, "abc");
    pstrcpy(buf, sizeof(buf), "x");
    g_assert_cmpstr(buf, ==, "x");
    g_assert_true(strstart("json:{}", "json:", &rest));
    g_assert_cmpstr(rest, ==, "{}");
    g_assert_false(strstart("jso", "json:", &rest));
}

static void test_error_objects(void)
{
    Error *err = NULL, *err2 = NULL;

    error_setg(&err, "Could not open '%s'", "x.img");
    error_prepend(&err, "%s: ", "prefix");
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "prefix: Could not open 'x.img'");
    error_propagate(&err2, err);
    g_assert_true(err2 == err);
    err = NULL;
    error_free_or_abort(&err2);
    g_assert_null(err2);

    error_setg_errno(&err, -ENOENT, "Could not open '%s'", "y");
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Could not open 'y': No such file or directory");
    error_free(err);
    err = NULL;

    /* Propagating onto an existing error keeps the first one. */
    error_setg(&err, "first");
    error_setg(&err2, "second");
    error_propagate(&err, err2);
    g_assert_cmpstr(error_get_pretty(err), ==, "first");
    error_free(err);
    err = NULL;
    err2 = NULL;

    /* errp == NULL silently drops everything. */
    error_setg(NULL, "ignored");
    error_append_hint(NULL, "ignored\n");
    error_propagate(NULL, NULL);
}

/* Run error_report_err in a subprocess to check the exact stderr bytes. */
static void test_error_report(void)
{
    if (g_test_subprocess()) {
        Error *err = NULL;

        error_set_progname("/usr/bin/qemu-img");
        error_setg(&err, "Parameter 'cluster_size' expects a number");
        error_append_hint(&err, "Hint line 1\n");
        error_append_hint(&err, "Hint %d\n", 2);
        error_report_err(err);
        warn_report("careful %s", "now");
        error_report("plain");
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("qemu-img: Parameter 'cluster_size' expects a "
                              "number\nHint line 1\nHint 2\n"
                              "qemu-img: warning: careful now\n"
                              "qemu-img: plain\n");
}

static void test_error_fatal(void)
{
    if (g_test_subprocess()) {
        error_set_progname("qemu-io");
        error_setg(&error_fatal, "fatal %d", 7);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("qemu-io: fatal 7\n");
}

static void test_error_abort(void)
{
    if (g_test_subprocess()) {
        error_setg(&error_abort, "boom");
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*boom*");
}

static void test_error_no_progname(void)
{
    if (g_test_subprocess()) {
        error_report("no prefix");
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("no prefix\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cutils/strtosz/table", test_strtosz_table);
    g_test_add_func("/cutils/strtosz/end", test_strtosz_end);
    g_test_add_func("/cutils/strtosz/mib", test_strtosz_mib);
    g_test_add_func("/cutils/strtoi", test_strtoi);
    g_test_add_func("/cutils/size_to_str", test_size_to_str);
    g_test_add_func("/cutils/bool_parse", test_bool_parse);
    g_test_add_func("/cutils/pstrcpy", test_pstrcpy);
    g_test_add_func("/error/objects", test_error_objects);
    g_test_add_func("/error/report", test_error_report);
    g_test_add_func("/error/fatal", test_error_fatal);
    g_test_add_func("/error/abort", test_error_abort);
    g_test_add_func("/error/no_progname", test_error_no_progname);
    return g_test_run();
}
