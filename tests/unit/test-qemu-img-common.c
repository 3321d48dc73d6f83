/*
 * Unit tests for qemu-img's shared helpers: QEMU's JSON key order,
 * -o help detection, option accumulation and the progress output.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/qobject.h"
#include "qemu-img.h"

static char *to_json(const QObject *o)
{
    GString *out = g_string_new(NULL);
    QObject *ordered = img_qobj_qemu_order(o);

    qobj_to_json(ordered, true, out);
    qobj_unref(ordered);
    return g_string_free(out, false);
}

/* "qemu-img check --output=json" of a qcow2 image, as QEMU 7.2 prints it. */
static void test_order_check(void)
{
    QObject *d = qobj_dict();
    g_autofree char *json = NULL;

    /* Inserted in QAPI order; QEMU prints hash-bucket order. */
    qdict_obj_put_str(d, "filename", "d.qcow2");
    qdict_obj_put_str(d, "format", "qcow2");
    qdict_obj_put_int(d, "check-errors", 0);
    qdict_obj_put_int(d, "image-end-offset", 524288);
    qdict_obj_put_int(d, "total-clusters", 1024);
    qdict_obj_put_int(d, "allocated-clusters", 3);
    json = to_json(d);
    g_assert_cmpstr(json, ==,
                    "{\n"
                    "    \"image-end-offset\": 524288,\n"
                    "    \"total-clusters\": 1024,\n"
                    "    \"check-errors\": 0,\n"
                    "    \"allocated-clusters\": 3,\n"
                    "    \"filename\": \"d.qcow2\",\n"
                    "    \"format\": \"qcow2\"\n"
                    "}");
    qobj_unref(d);
}

/* Nested dicts inside lists are reordered too. */
static void test_order_nested(void)
{
    QObject *list = qobj_list();
    QObject *outer = qobj_dict();
    QObject *spec = qobj_dict();
    QObject *data = qobj_dict();
    g_autofree char *json = NULL;

    qdict_obj_put_bool(data, "extended-l2", false);
    qdict_obj_put_bool(data, "corrupt", false);
    qdict_obj_put_str(data, "compat", "1.1");
    qdict_obj_put_int(data, "refcount-bits", 16);
    qdict_obj_put(spec, "data", data);
    qdict_obj_put_str(spec, "type", "qcow2");
    qdict_obj_put(outer, "format-specific", spec);
    qdict_obj_put_int(outer, "virtual-size", 1);
    qlist_obj_append(list, outer);

    json = to_json(list);
    g_assert_cmpstr(json, ==,
                    "[\n"
                    "    {\n"
                    "        \"virtual-size\": 1,\n"
                    "        \"format-specific\": {\n"
                    "            \"type\": \"qcow2\",\n"
                    "            \"data\": {\n"
                    "                \"compat\": \"1.1\",\n"
                    "                \"refcount-bits\": 16,\n"
                    "                \"corrupt\": false,\n"
                    "                \"extended-l2\": false\n"
                    "            }\n"
                    "        }\n"
                    "    }\n"
                    "]");
    qobj_unref(list);
}

static void test_order_measure(void)
{
    QObject *d = qobj_dict();
    g_autofree char *json = NULL;

    qdict_obj_put_int(d, "required", 1);
    qdict_obj_put_int(d, "fully-allocated", 2);
    qdict_obj_put_int(d, "bitmaps", 0);
    json = to_json(d);
    g_assert_cmpstr(json, ==,
                    "{\n"
                    "    \"bitmaps\": 0,\n"
                    "    \"required\": 1,\n"
                    "    \"fully-allocated\": 2\n"
                    "}");
    qobj_unref(d);
}

static void test_help_option(void)
{
    g_assert_true(img_has_help_option("help"));
    g_assert_true(img_has_help_option("?"));
    g_assert_true(img_has_help_option("size=1M,help"));
    g_assert_false(img_has_help_option(NULL));
    g_assert_false(img_has_help_option("helpme"));
    g_assert_false(img_has_help_option("cluster_size=64k"));
}

static void test_accumulate(void)
{
    char *o = NULL;

    o = img_accumulate_options(o, "a=1");
    g_assert_cmpstr(o, ==, "a=1");
    o = img_accumulate_options(o, "b=2,c=3");
    g_assert_cmpstr(o, ==, "a=1,b=2,c=3");
    g_free(o);
}

static void test_progress(void)
{
    if (g_test_subprocess()) {
        img_progress_init(true, 1.0);
        img_progress_print(0, 100);
        img_progress_print(0.5, 100);   /* below min_skip: not shown */
        img_progress_print(1.0, 100);   /* 1.5 > 0 + 1: shown */
        img_progress_print(100, 0);
        img_progress_end();
        exit(0);
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout("    (0.00/100%)\r    (1.50/100%)\r"
                              "    (100.00/100%)\r\n");
}

static void test_progress_disabled(void)
{
    if (g_test_subprocess()) {
        img_progress_init(false, 1.0);
        img_progress_print(0, 100);
        img_progress_print(100, 0);
        img_progress_end();
        printf("end");
        exit(0);
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout("end");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qemu-img/order/check", test_order_check);
    g_test_add_func("/qemu-img/order/nested", test_order_nested);
    g_test_add_func("/qemu-img/order/measure", test_order_measure);
    g_test_add_func("/qemu-img/help-option", test_help_option);
    g_test_add_func("/qemu-img/accumulate", test_accumulate);
    g_test_add_func("/qemu-img/progress", test_progress);
    g_test_add_func("/qemu-img/progress-disabled", test_progress_disabled);
    return g_test_run();
}
