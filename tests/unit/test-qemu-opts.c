/*
 * Tests for QDict, keyval parsing and QemuOpts.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/option.h"

static const QemuOptDesc test_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Disk size" },
    { .name = "backing_file", .type = QEMU_OPT_STRING,
      .help = "Backing image" },
    { .name = "cluster_size", .type = QEMU_OPT_SIZE, .help = "Cluster size",
      .def_value_str = "65536" },
    { .name = "lazy_refcounts", .type = QEMU_OPT_BOOL,
      .help = "Delay refcount updates", .def_value_str = "off" },
    { .name = "refcount_bits", .type = QEMU_OPT_NUMBER,
      .help = "Refcount width", .def_value_str = "16" },
    { .name = "a_very_long_option_name", .type = QEMU_OPT_BOOL,
      .help = "Long" },
    { .name = "nohelp", .type = QEMU_OPT_STRING },
    { NULL }
};

static const QemuOptsList test_list = {
    .name = "test",
    .desc = test_desc,
};

static const QemuOptDesc proto_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Protocol size" },
    { .name = "nocow", .type = QEMU_OPT_BOOL, .help = "No CoW" },
    { NULL }
};

static const QemuOptsList proto_list = {
    .name = "proto",
    .desc = proto_desc,
};

static void test_qdict_basic(void)
{
    QDict *d = qdict_new(), *c;
    const char *k, *v;

    qdict_put_str(d, "driver", "qcow2");
    qdict_put_str(d, "file.filename", "x.img");
    qdict_put_str(d, "file.driver", "file");
    qdict_put_str(d, "read-only", "on");
    qdict_put_str(d, "driver", "raw");
    g_assert_cmpuint(qdict_size(d), ==, 4);
    /* Replacing keeps the position. */
    g_assert_true(qdict_entry(d, 0, &k, &v));
    g_assert_cmpstr(k, ==, "driver");
    g_assert_cmpstr(v, ==, "raw");
    g_assert_false(qdict_entry(d, 4, &k, &v));
    g_assert_null(qdict_get_try_str(d, "nope"));

    c = qdict_clone(d);
    qdict_del(d, "read-only");
    g_assert_false(qdict_haskey(d, "read-only"));
    g_assert_true(qdict_haskey(c, "read-only"));

    QDict *sub = qdict_extract_subdict(d, "file");
    g_assert_cmpuint(qdict_size(sub), ==, 2);
    g_assert_cmpstr(qdict_get_try_str(sub, "filename"), ==, "x.img");
    g_assert_cmpstr(qdict_get_try_str(sub, "driver"), ==, "file");
    g_assert_cmpuint(qdict_size(d), ==, 1);
    qdict_free(sub);

    /* "filex" is not under "file". */
    qdict_put_str(d, "filex", "1");
    qdict_put_str(d, "file", "2");
    sub = qdict_extract_subdict(d, "file");
    g_assert_cmpuint(qdict_size(sub), ==, 0);
    qdict_free(sub);

    qdict_join(d, c, false);
    g_assert_cmpstr(qdict_get_try_str(d, "driver"), ==, "raw");
    g_assert_cmpstr(qdict_get_try_str(d, "file.filename"), ==, "x.img");
    qdict_put_str(c, "driver", "qcow2");
    qdict_join(d, c, true);
    g_assert_cmpstr(qdict_get_try_str(d, "driver"), ==, "qcow2");

    qdict_free(c);
    qdict_free(d);
}

static void test_keyval(void)
{
    Error *err = NULL;
    QDict *d;
    char *s;

    d = qdict_parse_keyval("driver=qcow2,file.filename=a,,b.img,x=", NULL,
                           &err);
    g_assert_null(err);
    g_assert_cmpuint(qdict_size(d), ==, 3);
    g_assert_cmpstr(qdict_get_try_str(d, "driver"), ==, "qcow2");
    g_assert_cmpstr(qdict_get_try_str(d, "file.filename"), ==, "a,b.img");
    g_assert_cmpstr(qdict_get_try_str(d, "x"), ==, "");
    s = qdict_to_string(d);
    g_assert_cmpstr(s, ==, "driver=qcow2,file.filename=a,,b.img,x=");
    g_free(s);
    qdict_free(d);

    /* The implied key applies to the first element only. */
    d = qdict_parse_keyval("test.img,format=raw", "file", &error_abort);
    g_assert_cmpstr(qdict_get_try_str(d, "file"), ==, "test.img");
    g_assert_cmpstr(qdict_get_try_str(d, "format"), ==, "raw");
    qdict_free(d);

    d = qdict_parse_keyval("a,,b,c=1", "file", &error_abort);
    g_assert_cmpstr(qdict_get_try_str(d, "file"), ==, "a,b");
    g_assert_cmpstr(qdict_get_try_str(d, "c"), ==, "1");
    qdict_free(d);

    /* Later duplicates win; trailing comma is harmless. */
    d = qdict_parse_keyval("a=1,a=2,", NULL, &error_abort);
    g_assert_cmpuint(qdict_size(d), ==, 1);
    g_assert_cmpstr(qdict_get_try_str(d, "a"), ==, "2");
    qdict_free(d);

    d = qdict_parse_keyval("", NULL, &error_abort);
    g_assert_cmpuint(qdict_size(d), ==, 0);
    qdict_free(d);
}

/* Short-form flags are accepted with QEMU's deprecation warning. */
static void test_keyval_flags(void)
{
    if (g_test_subprocess()) {
        QDict *d = qdict_parse_keyval("driver=raw,read-only,nofoo", NULL,
                                      &error_abort);
        g_assert_cmpstr(qdict_get_try_str(d, "read-only"), ==, "on");
        g_assert_cmpstr(qdict_get_try_str(d, "foo"), ==, "off");
        qdict_free(d);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr(
        "warning: short-form boolean option 'read-only' deprecated\n"
        "Please use read-only=on instead\n"
        "warning: short-form boolean option 'nofoo' deprecated\n"
        "Please use foo=off instead\n");
}

static void test_opts_types(void)
{
    QemuOpts *opts = qemu_opts_create(&test_list);
    Error *err = NULL;

    /* Defaults come from the description. */
    g_assert_false(qemu_opt_has(opts, "cluster_size"));
    g_assert_cmpstr(qemu_opt_get(opts, "cluster_size"), ==, "65536");
    g_assert_cmpuint(qemu_opt_get_size(opts, "cluster_size", 0), ==, 65536);
    g_assert_cmpuint(qemu_opt_get_number(opts, "refcount_bits", 0), ==, 16);
    g_assert_false(qemu_opt_get_bool(opts, "lazy_refcounts", true));
    g_assert_true(qemu_opt_get_bool(opts, "a_very_long_option_name", true));
    g_assert_cmpuint(qemu_opt_get_size(opts, "size", 42), ==, 42);
    g_assert_null(qemu_opt_get(opts, "backing_file"));

    g_assert_true(qemu_opt_set(opts, "cluster_size", "2M", &error_abort));
    g_assert_cmpuint(qemu_opt_get_size(opts, "cluster_size", 0), ==, 2 * MiB);
    g_assert_true(qemu_opt_set(opts, "refcount_bits", "0x20", &error_abort));
    g_assert_cmpuint(qemu_opt_get_number(opts, "refcount_bits", 0), ==, 32);
    g_assert_true(qemu_opt_set(opts, "lazy_refcounts", "on", &error_abort));
    g_assert_true(qemu_opt_get_bool(opts, "lazy_refcounts", false));
    g_assert_true(qemu_opt_set_number(opts, "size", 1048576, &error_abort));
    g_assert_cmpuint(qemu_opt_get_size(opts, "size", 0), ==, MiB);
    g_assert_true(qemu_opt_set_bool(opts, "lazy_refcounts", false,
                                    &error_abort));
    g_assert_cmpstr(qemu_opt_get(opts, "lazy_refcounts"), ==, "off");

    /* Errors leave the old value in place. */
    g_assert_false(qemu_opt_set(opts, "cluster_size", "abc", &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Parameter 'cluster_size' "
                    "expects a non-negative number below 2^64");
    error_free(err);
    err = NULL;
    g_assert_cmpuint(qemu_opt_get_size(opts, "cluster_size", 0), ==, 2 * MiB);

    g_assert_false(qemu_opt_set(opts, "cluster_size", "20E", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Value '20E' is out of range for parameter "
                    "'cluster_size'");
    error_free(err);
    err = NULL;
    g_assert_false(qemu_opt_set(opts, "cluster_size", "-1", &err));
    error_free(err);
    err = NULL;
    g_assert_false(qemu_opt_set(opts, "refcount_bits", "abc", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Parameter 'refcount_bits' expects a number");
    error_free(err);
    err = NULL;
    g_assert_false(qemu_opt_set(opts, "refcount_bits", "99999999999999999999",
                                &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Value '99999999999999999999' is too large for "
                    "parameter 'refcount_bits'");
    error_free(err);
    err = NULL;
    g_assert_false(qemu_opt_set(opts, "lazy_refcounts", "xyz", &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Parameter 'lazy_refcounts' expects 'on' or 'off'");
    error_free(err);
    err = NULL;
    g_assert_false(qemu_opt_set(opts, "foo", "1", &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Invalid parameter 'foo'");
    error_free(err);
    err = NULL;

    char *v = qemu_opt_get_del(opts, "cluster_size");
    g_assert_cmpstr(v, ==, "2M");
    g_free(v);
    g_assert_false(qemu_opt_has(opts, "cluster_size"));
    v = qemu_opt_get_del(opts, "cluster_size");
    g_assert_cmpstr(v, ==, "65536");
    g_free(v);
    g_assert_false(qemu_opt_unset(opts, "backing_file"));
    qemu_opts_del(opts);
}

/* The size error carries QEMU's two-line suffix hint. */
static void test_opts_size_hint(void)
{
    if (g_test_subprocess()) {
        QemuOpts *opts = qemu_opts_create(&test_list);
        Error *err = NULL;

        qemu_opt_set(opts, "cluster_size", "1Q", &err);
        error_report_err(err);
        qemu_opts_del(opts);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr(
        "Parameter 'cluster_size' expects a non-negative number below 2^64\n"
        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, "
        "tera-, peta-\nand exabytes, respectively.\n");
}

static void test_opts_parse(void)
{
    QemuOpts *opts = qemu_opts_create(&test_list);
    Error *err = NULL;

    g_assert_true(qemu_opts_do_parse(opts, "backing_file=a,,b,lazy_refcounts,"
                                     "cluster_size=4k,", &error_abort));
    g_assert_cmpstr(qemu_opt_get(opts, "backing_file"), ==, "a,b");
    g_assert_true(qemu_opt_get_bool(opts, "lazy_refcounts", false));
    g_assert_cmpuint(qemu_opt_get_size(opts, "cluster_size", 0), ==, 4096);
    g_assert_true(qemu_opts_do_parse(opts, "nolazy_refcounts", &error_abort));
    g_assert_false(qemu_opt_get_bool(opts, "lazy_refcounts", true));

    g_assert_false(qemu_opts_do_parse(opts, "foo", &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Invalid parameter 'foo'");
    error_free(err);
    err = NULL;
    g_assert_false(qemu_opts_do_parse(opts, "=5", &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Invalid parameter ''");
    error_free(err);
    err = NULL;
    qemu_opts_del(opts);
}

static void test_opts_absorb(void)
{
    QemuOpts *opts = qemu_opts_create(&test_list);
    QDict *d = qdict_new();
    Error *err = NULL;

    qdict_put_str(d, "driver", "qcow2");
    qdict_put_str(d, "cluster_size", "1M");
    qdict_put_str(d, "backing_file", "b");
    qdict_put_str(d, "file.filename", "x");
    g_assert_true(qemu_opts_absorb_qdict(opts, d, &error_abort));
    g_assert_cmpuint(qdict_size(d), ==, 2);
    g_assert_true(qdict_haskey(d, "driver"));
    g_assert_true(qdict_haskey(d, "file.filename"));
    g_assert_cmpuint(qemu_opt_get_size(opts, "cluster_size", 0), ==, MiB);
    g_assert_cmpstr(qemu_opt_get(opts, "backing_file"), ==, "b");

    qdict_put_str(d, "lazy_refcounts", "maybe");
    g_assert_false(qemu_opts_absorb_qdict(opts, d, &err));
    g_assert_nonnull(err);
    error_free(err);
    qdict_free(d);
    qemu_opts_del(opts);
}

static void test_opts_append(void)
{
    QemuOptsList *l = qemu_opts_append(NULL, &test_list);
    size_t n = 0;

    l = qemu_opts_append(l, &proto_list);
    for (n = 0; l->desc[n].name; n++) {
        /* size is described by both; the first list's entry wins. */
        if (!strcmp(l->desc[n].name, "size")) {
            g_assert_cmpstr(l->desc[n].help, ==, "Disk size");
        }
    }
    g_assert_cmpuint(n, ==, ARRAY_SIZE(test_desc) - 1 + 1);
    g_assert_cmpstr(l->desc[n - 1].name, ==, "nocow");

    QemuOpts *opts = qemu_opts_create(l);
    g_assert_true(qemu_opt_set(opts, "nocow", "on", &error_abort));
    qemu_opts_del(opts);
    qemu_opts_free(l);
}

static void test_opts_print(void)
{
    QemuOpts *opts = qemu_opts_create(&test_list);
    GString *buf = g_string_new(NULL);

    qemu_opt_set_number(opts, "size", 1048576, &error_abort);
    qemu_opt_set(opts, "refcount_bits", "0x10", &error_abort);
    qemu_opt_set(opts, "backing_file", "a,b", &error_abort);
    qemu_opt_set(opts, "lazy_refcounts", "on", &error_abort);
    qemu_opt_set(opts, "cluster_size", "64k", &error_abort);

    /* Description order; numbers parsed, strings ",,"-escaped. */
    qemu_opts_print(opts, buf, true);
    g_assert_cmpstr(buf->str, ==, " size=1048576 backing_file=a,,b "
                    "cluster_size=65536 lazy_refcounts=on refcount_bits=16");
    qemu_opts_del(opts);

    opts = qemu_opts_create(&test_list);
    qemu_opt_set(opts, "size", "1M", &error_abort);
    g_string_truncate(buf, 0);
    qemu_opts_print(opts, buf, true);
    g_assert_cmpstr(buf->str, ==, " size=1048576 cluster_size=65536 "
                    "lazy_refcounts=off refcount_bits=16");
    g_string_truncate(buf, 0);
    qemu_opts_print(opts, buf, false);
    g_assert_cmpstr(buf->str, ==, " size=1048576");
    qemu_opts_del(opts);
    g_string_free(buf, true);
}

static const QemuOptDesc alias_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Disk size" },
    { .name = "zone.mode", .type = QEMU_OPT_STRING, .help = "Zone model" },
    { .name = "zoned", .type = QEMU_OPT_STRING, .help = "Alias",
      .alias_of = "zone.mode" },
    { NULL }
};

static const QemuOptsList alias_list = {
    .name = "alias",
    .desc = alias_desc,
};

/* An alias sets the option it names; only that one is stored and printed. */
static void test_opts_alias(void)
{
    QemuOptsList *l = qemu_opts_append(NULL, &alias_list);
    QemuOpts *opts = qemu_opts_create(l);
    GString *buf = g_string_new(NULL);
    QDict *d = qdict_new();

    g_assert_true(qemu_opts_do_parse(opts, "zoned=host-managed,size=1M",
                                     &error_abort));
    g_assert_cmpstr(qemu_opt_get(opts, "zone.mode"), ==, "host-managed");
    g_assert_false(qemu_opt_has(opts, "zoned"));
    qemu_opts_print(opts, buf, true);
    g_assert_cmpstr(buf->str, ==, " size=1048576 zone.mode=host-managed");

    /* The later spelling wins, whichever it is. */
    g_assert_true(qemu_opts_do_parse(opts, "zone.mode=a,zoned=b",
                                     &error_abort));
    g_assert_cmpstr(qemu_opt_get(opts, "zone.mode"), ==, "b");
    qemu_opts_del(opts);

    opts = qemu_opts_create(l);
    qdict_put_str(d, "zoned", "c");
    g_assert_true(qemu_opts_absorb_qdict(opts, d, &error_abort));
    g_assert_cmpuint(qdict_size(d), ==, 0);
    g_assert_cmpstr(qemu_opt_get(opts, "zone.mode"), ==, "c");
    qdict_free(d);
    qemu_opts_del(opts);
    qemu_opts_free(l);
    g_string_free(buf, true);
}

static void test_opts_help(void)
{
    if (g_test_subprocess()) {
        static const QemuOptsList empty = { .name = "empty" };
        qemu_opts_print_help(&test_list, true);
        qemu_opts_print_help(&proto_list, false);
        qemu_opts_print_help(&empty, false);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    /* Sorted; help starts at column 25 unless the name is longer. */
    g_test_trap_assert_stdout(
        "Supported options:\n"
        "  a_very_long_option_name=<bool (on/off)> - Long\n"
        "  backing_file=<str>     - Backing image\n"
        "  cluster_size=<size>    - Cluster size\n"
        "  lazy_refcounts=<bool (on/off)> - Delay refcount updates\n"
        "  nohelp=<str>\n"
        "  refcount_bits=<num>    - Refcount width\n"
        "  size=<size>            - Disk size\n"
        "  nocow=<bool (on/off)>  - No CoW\n"
        "  size=<size>            - Protocol size\n"
        "There are no options for empty.\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qdict/basic", test_qdict_basic);
    g_test_add_func("/qdict/keyval", test_keyval);
    g_test_add_func("/qdict/keyval_flags", test_keyval_flags);
    g_test_add_func("/qemu-opts/types", test_opts_types);
    g_test_add_func("/qemu-opts/size_hint", test_opts_size_hint);
    g_test_add_func("/qemu-opts/parse", test_opts_parse);
    g_test_add_func("/qemu-opts/absorb", test_opts_absorb);
    g_test_add_func("/qemu-opts/append", test_opts_append);
    g_test_add_func("/qemu-opts/print", test_opts_print);
    g_test_add_func("/qemu-opts/help", test_opts_help);
    g_test_add_func("/qemu-opts/alias", test_opts_alias);
    return g_test_run();
}
