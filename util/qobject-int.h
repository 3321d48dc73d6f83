/*
 * QObject internals shared by qobject.c and qjson.c only.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef UTIL_QOBJECT_INT_H
#define UTIL_QOBJECT_INT_H

#include "qemu/qobject.h"

struct QObject {
    int refcnt;
    QType type;
    bool is_uint;           /* QTYPE_INT holding a value above INT64_MAX */
    union {
        bool b;
        int64_t i;
        double d;
        char *s;
        GPtrArray *items;   /* dict: QDictObjEntry *, list: QObject * */
    } u;
};

typedef struct QDictObjEntry {
    char *key;
    QObject *value;
} QDictObjEntry;

/* Append a non-string scalar the way both JSON and human output show it. */
void qobj_format_scalar(const QObject *o, GString *out);

#endif
