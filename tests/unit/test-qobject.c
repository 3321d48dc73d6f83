/*
 * Tests for QObject trees, JSON output/parsing and the human printer.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/qobject.h"

/* Roughly the shape of "qemu-img info" for a qcow2 image with bitmaps. */
static QObject *build_info(void)
{
    QObject *info = qobj_dict();
    QObject *spec = qobj_dict();
    QObject *data = qobj_dict();
    QObject *bitmaps = qobj_list();
    QObject *bm, *flags;

    qdict_obj_put_int(info, "virtual-size", 67108864);
    qdict_obj_put_str(info, "filename", "b.qcow2");
    qdict_obj_put_str(info, "format", "qcow2");

    qdict_obj_put_str(data, "compat", "1.1");
    qdict_obj_put_bool(data, "lazy-refcounts", false);

    bm = qobj_dict();
    flags = qobj_list();
    qlist_obj_append(flags, qobj_str("auto"));
    qdict_obj_put(bm, "flags", flags);
    qdict_obj_put_str(bm, "name", "b m\"1");
    qdict_obj_put_int(bm, "granularity", 65536);
    qlist_obj_append(bitmaps, bm);

    bm = qobj_dict();
    qdict_obj_put(bm, "flags", qobj_list());
    qdict_obj_put_str(bm, "name", "bm2");
    qdict_obj_put_int(bm, "granularity", 131072);
    qlist_obj_append(bitmaps, bm);

    qdict_obj_put(data, "bitmaps", bitmaps);
    qdict_obj_put_int(data, "refcount-bits", 16);
    qdict_obj_put_str(spec, "type", "qcow2");
    qdict_obj_put(spec, "data", data);
    qdict_obj_put(info, "format-specific", spec);
    qdict_obj_put_bool(info, "dirty-flag", false);
    return info;
}

static const char info_pretty[] =
    "{\n"
    "    \"virtual-size\": 67108864,\n"
    "    \"filename\": \"b.qcow2\",\n"
    "    \"format\": \"qcow2\",\n"
    "    \"format-specific\": {\n"
    "        \"type\": \"qcow2\",\n"
    "        \"data\": {\n"
    "            \"compat\": \"1.1\",\n"
    "            \"lazy-refcounts\": false,\n"
    "            \"bitmaps\": [\n"
    "                {\n"
    "                    \"flags\": [\n"
    "                        \"auto\"\n"
    "                    ],\n"
    "                    \"name\": \"b m\\\"1\",\n"
    "                    \"granularity\": 65536\n"
    "                },\n"
    "                {\n"
    "                    \"flags\": [\n"
    "                    ],\n"
    "                    \"name\": \"bm2\",\n"
    "                    \"granularity\": 131072\n"
    "                }\n"
    "            ],\n"
    "            \"refcount-bits\": 16\n"
    "        }\n"
    "    },\n"
    "    \"dirty-flag\": false\n"
    "}";

static void test_json_pretty(void)
{
    QObject *info = build_info();
    GString *out = g_string_new(NULL);

    qobj_to_json(info, true, out);
    g_assert_cmpstr(out->str, ==, info_pretty);
    g_string_free(out, true);
    qobj_unref(info);
}

static void test_json_compact(void)
{
    QObject *d = qobj_dict();
    QObject *l = qobj_list();
    GString *out = g_string_new(NULL);

    qlist_obj_append(l, qobj_int(-1));
    qlist_obj_append(l, qobj_uint(UINT64_MAX));
    qlist_obj_append(l, qobj_null());
    qlist_obj_append(l, qobj_double(1.5));
    qdict_obj_put(d, "l", l);
    qdict_obj_put(d, "e", qobj_dict());
    qdict_obj_put(d, "el", qobj_list());
    qobj_to_json(d, false, out);
    g_assert_cmpstr(out->str, ==, "{\"l\": [-1, 18446744073709551615, null, "
                    "1.5], \"e\": {}, \"el\": []}");
    g_string_truncate(out, 0);
    qobj_to_json(qdict_obj_get(d, "e"), true, out);
    g_assert_cmpstr(out->str, ==, "{\n}");
    g_string_free(out, true);
    qobj_unref(d);
}

static void test_json_escape(void)
{
    QObject *s = qobj_str("\xc3\xa9\x01\x7f\xf0\x9f\x98\x80\t\\/\n\xff.q");
    GString *out = g_string_new(NULL);

    /* Non-ASCII as \uXXXX (upper case), surrogate pairs, U+FFFD. */
    qobj_to_json(s, true, out);
    g_assert_cmpstr(out->str, ==, "\"\\u00E9\\u0001\\u007F\\uD83D\\uDE00\\t"
                    "\\\\/\\n\\uFFFD.q\"");
    g_string_free(out, true);
    qobj_unref(s);
}

static void test_json_roundtrip(void)
{
    QObject *info = build_info(), *parsed;
    GString *a = g_string_new(NULL), *b = g_string_new(NULL);

    qobj_to_json(info, true, a);
    parsed = qobj_from_json(a->str, &error_abort);
    qobj_to_json(parsed, true, b);
    g_assert_cmpstr(a->str, ==, b->str);
    qobj_unref(parsed);

    g_string_truncate(a, 0);
    g_string_truncate(b, 0);
    qobj_to_json(info, false, a);
    parsed = qobj_from_json(a->str, &error_abort);
    qobj_to_json(parsed, false, b);
    g_assert_cmpstr(a->str, ==, b->str);

    g_string_free(a, true);
    g_string_free(b, true);
    qobj_unref(parsed);
    qobj_unref(info);
}

static void test_json_parse_values(void)
{
    QObject *o, *v;

    o = qobj_from_json(" {'driver': 'qcow2', \"file\": {\"driver\":\"file\","
                       "\"filename\":\"a\\u00e9\\ud83d\\ude00\\\"b\"},"
                       "\"n\": -12, \"big\": 18446744073709551615,"
                       "\"f\": 2.5e1, \"t\": true, \"z\": null,"
                       "\"l\": [1, [], {}]} ", &error_abort);
    g_assert_cmpint(qobj_type(o), ==, QTYPE_DICT);
    g_assert_cmpuint(qdict_obj_size(o), ==, 8);
    g_assert_cmpstr(qobj_get_str(qdict_obj_get(o, "driver")), ==, "qcow2");
    v = qdict_obj_get(o, "file");
    g_assert_cmpstr(qobj_get_str(qdict_obj_get(v, "filename")), ==,
                    "a\xc3\xa9\xf0\x9f\x98\x80\"b");
    g_assert_cmpint(qobj_get_int(qdict_obj_get(o, "n")), ==, -12);
    g_assert_cmpint(qobj_type(qdict_obj_get(o, "big")), ==, QTYPE_INT);
    g_assert_cmpuint((uint64_t)qobj_get_int(qdict_obj_get(o, "big")), ==,
                     UINT64_MAX);
    g_assert_cmpint(qobj_type(qdict_obj_get(o, "f")), ==, QTYPE_DOUBLE);
    g_assert_cmpint(qobj_get_int(qdict_obj_get(o, "f")), ==, 25);
    g_assert_true(qobj_get_bool(qdict_obj_get(o, "t")));
    g_assert_cmpint(qobj_type(qdict_obj_get(o, "z")), ==, QTYPE_NULL);
    v = qdict_obj_get(o, "l");
    g_assert_cmpuint(qlist_obj_size(v), ==, 3);
    g_assert_cmpint(qobj_type(qlist_obj_get(v, 1)), ==, QTYPE_LIST);
    g_assert_cmpint(qobj_type(qlist_obj_get(v, 2)), ==, QTYPE_DICT);
    g_assert_null(qlist_obj_get(v, 3));

    /* References keep subtrees alive after the parent goes away. */
    v = qobj_ref(qdict_obj_get(o, "file"));
    qobj_unref(o);
    g_assert_cmpstr(qobj_get_str(qdict_obj_get(v, "driver")), ==, "file");
    qobj_unref(v);
}

static void test_json_parse_errors(void)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        { "", "Expecting a JSON value" },
        { "  ", "Expecting a JSON value" },
        { "{\"driver\":}", "JSON parse error, expecting value" },
        { "{\"driver\" \"x\"}", "JSON parse error, missing : in object pair" },
        { "{\"a\":1,}", "JSON parse error, expecting value" },
        { "{\"a\":1}x", "Expecting at most one JSON value" },
        { "{\"a\":tru}", "JSON parse error, invalid keyword 'tru'" },
        { "{\"a\":\"\\x\"}",
          "JSON parse error, invalid escape sequence in string" },
        { "{\"a\":1,\"a\":2}", "JSON parse error, duplicate key" },
        { "{\"a\":1 \"b\":2}", "JSON parse error, expected separator in dict" },
        { "[1 2]", "JSON parse error, expected separator in list" },
        { "{1:2}", "JSON parse error, key is not a string in object" },
        { "[1,]", "JSON parse error, expecting value" },
        { "{\"a\":1", "JSON parse error, premature EOI" },
        { "{\"a\":\"abc", "JSON parse error, premature EOI" },
        { "[", "JSON parse error, premature EOI" },
        { "{\"a\":01}", "JSON parse error, stray '01'" },
        { "{\"a\":@}", "JSON parse error, stray '@'" },
        { "{\"a\":-}", "JSON parse error, stray '-}'" },
        { "{\"a\":1.}", "JSON parse error, stray '1.}'" },
        { "{\"a\":\"\\u00\"}",
          "JSON parse error, \\u00\" is not a valid Unicode character" },
        { "{\"a\":\"\\ud800\"}",
          "JSON parse error, \\ud800 is not a valid Unicode character" },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        Error *err = NULL;
        QObject *o = qobj_from_json(cases[i].text, &err);

        g_assert_null(o);
        g_assert_nonnull(err);
        g_assert_cmpstr(error_get_pretty(err), ==, cases[i].msg);
        error_free(err);
    }
}

static void test_human(void)
{
    QObject *info = build_info();
    QObject *data = qdict_obj_get(qdict_obj_get(info, "format-specific"),
                                  "data");
    GString *out = g_string_new("Format specific information:\n");

    qobj_print_human(data, 1, out);
    g_assert_cmpstr(out->str, ==,
                    "Format specific information:\n"
                    "    compat: 1.1\n"
                    "    lazy refcounts: false\n"
                    "    bitmaps:\n"
                    "        [0]:\n"
                    "            flags:\n"
                    "                [0]: auto\n"
                    "            name: b m\"1\n"
                    "            granularity: 65536\n"
                    "        [1]:\n"
                    "            flags:\n"
                    "            name: bm2\n"
                    "            granularity: 131072\n"
                    "    refcount bits: 16\n");
    g_string_free(out, true);
    qobj_unref(info);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qobject/json/pretty", test_json_pretty);
    g_test_add_func("/qobject/json/compact", test_json_compact);
    g_test_add_func("/qobject/json/escape", test_json_escape);
    g_test_add_func("/qobject/json/roundtrip", test_json_roundtrip);
    g_test_add_func("/qobject/json/parse_values", test_json_parse_values);
    g_test_add_func("/qobject/json/parse_errors", test_json_parse_errors);
    g_test_add_func("/qobject/human", test_human);
    return g_test_run();
}
