/*
 * QObject: a small reference counted value tree with ordered dicts.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/qobject.h"
#include "qobject-int.h"

static QObject *qobj_new(QType type)
{
    QObject *o = g_new0(QObject, 1);

    o->refcnt = 1;
    o->type = type;
    return o;
}

QObject *qobj_null(void)
{
    return qobj_new(QTYPE_NULL);
}

QObject *qobj_bool(bool v)
{
    QObject *o = qobj_new(QTYPE_BOOL);

    o->u.b = v;
    return o;
}

QObject *qobj_int(int64_t v)
{
    QObject *o = qobj_new(QTYPE_INT);

    o->u.i = v;
    return o;
}

QObject *qobj_uint(uint64_t v)
{
    QObject *o = qobj_new(QTYPE_INT);

    /* Only values that do not fit int64_t need the unsigned flag. */
    o->u.i = (int64_t)v;
    o->is_uint = v > INT64_MAX;
    return o;
}

QObject *qobj_double(double v)
{
    QObject *o = qobj_new(QTYPE_DOUBLE);

    o->u.d = v;
    return o;
}

QObject *qobj_str(const char *s)
{
    QObject *o = qobj_new(QTYPE_STR);

    o->u.s = g_strdup(s);
    return o;
}

static void dict_entry_free(gpointer p)
{
    QDictObjEntry *e = p;

    g_free(e->key);
    qobj_unref(e->value);
    g_free(e);
}

QObject *qobj_dict(void)
{
    QObject *o = qobj_new(QTYPE_DICT);

    o->u.items = g_ptr_array_new_with_free_func(dict_entry_free);
    return o;
}

QObject *qobj_list(void)
{
    QObject *o = qobj_new(QTYPE_LIST);

    o->u.items = g_ptr_array_new_with_free_func((GDestroyNotify)qobj_unref);
    return o;
}

QObject *qobj_ref(QObject *o)
{
    if (o) {
        o->refcnt++;
    }
    return o;
}

void qobj_unref(QObject *o)
{
    if (!o || --o->refcnt > 0) {
        return;
    }
    switch (o->type) {
    case QTYPE_STR:
        g_free(o->u.s);
        break;
    case QTYPE_DICT:
    case QTYPE_LIST:
        g_ptr_array_free(o->u.items, true);
        break;
    default:
        break;
    }
    g_free(o);
}

QType qobj_type(const QObject *o)
{
    return o->type;
}

bool qobj_get_bool(const QObject *o)
{
    assert(o->type == QTYPE_BOOL);
    return o->u.b;
}

int64_t qobj_get_int(const QObject *o)
{
    if (o->type == QTYPE_DOUBLE) {
        return (int64_t)o->u.d;
    }
    assert(o->type == QTYPE_INT);
    return o->u.i;
}

const char *qobj_get_str(const QObject *o)
{
    return o && o->type == QTYPE_STR ? o->u.s : NULL;
}

static QDictObjEntry *dict_find(const QObject *dict, const char *key)
{
    guint i;

    assert(dict->type == QTYPE_DICT);
    for (i = 0; i < dict->u.items->len; i++) {
        QDictObjEntry *e = g_ptr_array_index(dict->u.items, i);
        if (!strcmp(e->key, key)) {
            return e;
        }
    }
    return NULL;
}

void qdict_obj_put(QObject *dict, const char *key, QObject *v)
{
    QDictObjEntry *e = dict_find(dict, key);

    if (e) {
        qobj_unref(e->value);
        e->value = v;
        return;
    }
    e = g_new(QDictObjEntry, 1);
    e->key = g_strdup(key);
    e->value = v;
    g_ptr_array_add(dict->u.items, e);
}

void qdict_obj_put_int(QObject *dict, const char *key, int64_t v)
{
    qdict_obj_put(dict, key, qobj_int(v));
}

void qdict_obj_put_str(QObject *dict, const char *key, const char *v)
{
    qdict_obj_put(dict, key, qobj_str(v));
}

void qdict_obj_put_bool(QObject *dict, const char *key, bool v)
{
    qdict_obj_put(dict, key, qobj_bool(v));
}

QObject *qdict_obj_get(const QObject *dict, const char *key)
{
    QDictObjEntry *e = dict_find(dict, key);

    return e ? e->value : NULL;
}

size_t qdict_obj_size(const QObject *dict)
{
    assert(dict->type == QTYPE_DICT);
    return dict->u.items->len;
}

bool qdict_obj_entry(const QObject *dict, size_t idx, const char **key,
                     QObject **v)
{
    QDictObjEntry *e;

    assert(dict->type == QTYPE_DICT);
    if (idx >= dict->u.items->len) {
        return false;
    }
    e = g_ptr_array_index(dict->u.items, idx);
    if (key) {
        *key = e->key;
    }
    if (v) {
        *v = e->value;
    }
    return true;
}

void qlist_obj_append(QObject *list, QObject *v)
{
    assert(list->type == QTYPE_LIST);
    g_ptr_array_add(list->u.items, v);
}

size_t qlist_obj_size(const QObject *list)
{
    assert(list->type == QTYPE_LIST);
    return list->u.items->len;
}

QObject *qlist_obj_get(const QObject *list, size_t idx)
{
    assert(list->type == QTYPE_LIST);
    return idx < list->u.items->len ? g_ptr_array_index(list->u.items, idx)
                                    : NULL;
}

void qobj_format_scalar(const QObject *o, GString *out)
{
    switch (o->type) {
    case QTYPE_NULL:
        g_string_append(out, "null");
        break;
    case QTYPE_BOOL:
        g_string_append(out, o->u.b ? "true" : "false");
        break;
    case QTYPE_INT:
        if (o->is_uint) {
            g_string_append_printf(out, "%" PRIu64, (uint64_t)o->u.i);
        } else {
            g_string_append_printf(out, "%" PRId64, o->u.i);
        }
        break;
    case QTYPE_DOUBLE:
        g_string_append_printf(out, "%.17g", o->u.d);
        break;
    default:
        g_assert_not_reached();
    }
}

static bool is_composite(const QObject *o)
{
    return o->type == QTYPE_DICT || o->type == QTYPE_LIST;
}

static void print_human_value(const QObject *o, int indent, GString *out);

/* "label:" then either the scalar on the same line or the block below. */
static void print_human_member(const char *label, const QObject *v,
                               int indent, GString *out)
{
    g_string_append_printf(out, "%*s%s:%c", indent * 4, "", label,
                           is_composite(v) ? '\n' : ' ');
    print_human_value(v, indent + 1, out);
    if (!is_composite(v)) {
        g_string_append_c(out, '\n');
    }
}

static void print_human_value(const QObject *o, int indent, GString *out)
{
    guint i;

    switch (o->type) {
    case QTYPE_DICT:
        for (i = 0; i < o->u.items->len; i++) {
            QDictObjEntry *e = g_ptr_array_index(o->u.items, i);
            /* Key names read better with spaces: "lazy-refcounts". */
            char *label = g_strdelimit(g_strdup(e->key), "-", ' ');
            print_human_member(label, e->value, indent, out);
            g_free(label);
        }
        break;
    case QTYPE_LIST:
        for (i = 0; i < o->u.items->len; i++) {
            char label[32];
            snprintf(label, sizeof(label), "[%u]", i);
            print_human_member(label, g_ptr_array_index(o->u.items, i),
                               indent, out);
        }
        break;
    case QTYPE_STR:
        g_string_append(out, o->u.s);
        break;
    default:
        qobj_format_scalar(o, out);
        break;
    }
}

void qobj_print_human(const QObject *o, int indent, GString *out)
{
    print_human_value(o, indent, out);
}
