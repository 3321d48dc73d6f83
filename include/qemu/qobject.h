/*
 * A small ordered value tree (dict/list/int/str/bool) used to describe
 * image information once and print it both as QEMU-style JSON and as the
 * human readable indented form of "qemu-img info".
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_QOBJECT_H
#define QEMU_QOBJECT_H

typedef enum QType {
    QTYPE_NULL,
    QTYPE_BOOL,
    QTYPE_INT,
    QTYPE_DOUBLE,
    QTYPE_STR,
    QTYPE_DICT,
    QTYPE_LIST,
} QType;

typedef struct QObject QObject;

QObject *qobj_null(void);
QObject *qobj_bool(bool v);
QObject *qobj_int(int64_t v);
QObject *qobj_uint(uint64_t v);
QObject *qobj_double(double v);
QObject *qobj_str(const char *s);
QObject *qobj_dict(void);
QObject *qobj_list(void);
void qobj_unref(QObject *o);
QObject *qobj_ref(QObject *o);

QType qobj_type(const QObject *o);
bool qobj_get_bool(const QObject *o);
int64_t qobj_get_int(const QObject *o);
const char *qobj_get_str(const QObject *o);

/* Dict: keeps insertion order; putting an existing key replaces it.
 * Takes ownership of @v. */
void qdict_obj_put(QObject *dict, const char *key, QObject *v);
void qdict_obj_put_int(QObject *dict, const char *key, int64_t v);
void qdict_obj_put_str(QObject *dict, const char *key, const char *v);
void qdict_obj_put_bool(QObject *dict, const char *key, bool v);
QObject *qdict_obj_get(const QObject *dict, const char *key);
size_t qdict_obj_size(const QObject *dict);
bool qdict_obj_entry(const QObject *dict, size_t idx, const char **key,
                     QObject **v);

/* List: takes ownership of @v. */
void qlist_obj_append(QObject *list, QObject *v);
size_t qlist_obj_size(const QObject *list);
QObject *qlist_obj_get(const QObject *list, size_t idx);

/*
 * JSON as QEMU's tools print it: pretty = 4-space indentation,
 * "key": value, one member per line (qemu-img --output=json); compact
 * otherwise.  Appends to @out.
 */
void qobj_to_json(const QObject *o, bool pretty, GString *out);
/* Parse JSON text (for json: filenames and tests). NULL on error. */
QObject *qobj_from_json(const char *text, Error **errp);

/*
 * Human form used under "Format specific information:": one "key: value"
 * line per scalar, nested dicts/lists indented by 4 more, dashes in keys
 * turned into spaces.  @indent is a nesting level (4 spaces each):
 * qemu-img info passes 1 for the "data" dict.
 */
void qobj_print_human(const QObject *o, int indent, GString *out);

#endif
