/*
 * QDict: an insertion-ordered string -> string map for block options.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Option dicts hold a handful of entries and are only consulted while
 * opening images, so a flat array with linear lookup is both simpler and
 * faster than hashing.
 */
#include "qemu/osdep.h"
#include "qemu/option.h"

typedef struct QDictEntry {
    char *key;
    char *value;
} QDictEntry;

struct QDict {
    GArray *entries;        /* of QDictEntry, in insertion order */
};

QDict *qdict_new(void)
{
    QDict *d = g_new0(QDict, 1);

    d->entries = g_array_new(false, false, sizeof(QDictEntry));
    return d;
}

void qdict_free(QDict *d)
{
    guint i;

    if (!d) {
        return;
    }
    for (i = 0; i < d->entries->len; i++) {
        QDictEntry *e = &g_array_index(d->entries, QDictEntry, i);
        g_free(e->key);
        g_free(e->value);
    }
    g_array_free(d->entries, true);
    g_free(d);
}

static gint qdict_find(const QDict *d, const char *key)
{
    guint i;

    for (i = 0; i < d->entries->len; i++) {
        if (!strcmp(g_array_index(d->entries, QDictEntry, i).key, key)) {
            return i;
        }
    }
    return -1;
}

QDict *qdict_clone(const QDict *d)
{
    QDict *n = qdict_new();
    guint i;

    for (i = 0; i < d->entries->len; i++) {
        QDictEntry *e = &g_array_index(d->entries, QDictEntry, i);
        QDictEntry ne = { g_strdup(e->key), g_strdup(e->value) };
        g_array_append_val(n->entries, ne);
    }
    return n;
}

void qdict_put_str(QDict *d, const char *key, const char *value)
{
    gint i = qdict_find(d, key);

    if (i >= 0) {
        /* Replacing keeps the original position, like QEMU's QDict. */
        QDictEntry *e = &g_array_index(d->entries, QDictEntry, i);
        char *old = e->value;
        e->value = g_strdup(value);
        g_free(old);
    } else {
        QDictEntry ne = { g_strdup(key), g_strdup(value) };
        g_array_append_val(d->entries, ne);
    }
}

const char *qdict_get_try_str(const QDict *d, const char *key)
{
    gint i = qdict_find(d, key);

    return i >= 0 ? g_array_index(d->entries, QDictEntry, i).value : NULL;
}

bool qdict_haskey(const QDict *d, const char *key)
{
    return qdict_find(d, key) >= 0;
}

void qdict_del(QDict *d, const char *key)
{
    gint i = qdict_find(d, key);

    if (i >= 0) {
        QDictEntry *e = &g_array_index(d->entries, QDictEntry, i);
        g_free(e->key);
        g_free(e->value);
        g_array_remove_index(d->entries, i);
    }
}

size_t qdict_size(const QDict *d)
{
    return d->entries->len;
}

bool qdict_entry(const QDict *d, size_t idx, const char **key,
                 const char **value)
{
    QDictEntry *e;

    if (idx >= d->entries->len) {
        return false;
    }
    e = &g_array_index(d->entries, QDictEntry, idx);
    if (key) {
        *key = e->key;
    }
    if (value) {
        *value = e->value;
    }
    return true;
}

QDict *qdict_extract_subdict(QDict *src, const char *prefix)
{
    QDict *dst = qdict_new();
    size_t plen = strlen(prefix);
    guint i = 0;

    while (i < src->entries->len) {
        QDictEntry *e = &g_array_index(src->entries, QDictEntry, i);
        if (!strncmp(e->key, prefix, plen) && e->key[plen] == '.') {
            qdict_put_str(dst, e->key + plen + 1, e->value);
            g_free(e->key);
            g_free(e->value);
            g_array_remove_index(src->entries, i);
        } else {
            i++;
        }
    }
    return dst;
}

void qdict_join(QDict *dst, const QDict *src, bool overwrite)
{
    guint i;

    for (i = 0; i < src->entries->len; i++) {
        QDictEntry *e = &g_array_index(src->entries, QDictEntry, i);
        if (overwrite || !qdict_haskey(dst, e->key)) {
            qdict_put_str(dst, e->key, e->value);
        }
    }
}

/*
 * Copy a value up to the next single ',' (",," stands for a literal
 * comma).  Returns the position of the terminating ',' or NUL.
 */
static const char *parse_opt_value(const char *p, char **value)
{
    GString *s = g_string_new(NULL);

    while (*p) {
        if (*p == ',') {
            if (p[1] != ',') {
                break;
            }
            p++;
        }
        g_string_append_c(s, *p);
        p++;
    }
    *value = g_string_free(s, false);
    return p;
}

QDict *qdict_parse_keyval(const char *str, const char *implied_key,
                          Error **errp)
{
    QDict *d = qdict_new();
    const char *p = str;
    bool first = true;

    while (*p) {
        size_t len = strcspn(p, "=,");
        char *key, *value;

        if (p[len] == '=') {
            key = g_strndup(p, len);
            p = parse_opt_value(p + len + 1, &value);
        } else if (first && implied_key) {
            key = g_strdup(implied_key);
            p = parse_opt_value(p, &value);
        } else {
            /*
             * A bare "flag" means flag=on and "noflag" flag=off, which
             * QEMU still accepts but warns about.
             */
            const char *prefix = "";
            key = g_strndup(p, len);
            p += len;
            if (g_str_has_prefix(key, "no")) {
                memmove(key, key + 2, strlen(key + 2) + 1);
                value = g_strdup("off");
                prefix = "no";
            } else {
                value = g_strdup("on");
            }
            warn_report("short-form boolean option '%s%s' deprecated",
                        prefix, key);
            fprintf(stderr, "Please use %s=%s instead\n", key, value);
        }
        qdict_put_str(d, key, value);
        g_free(key);
        g_free(value);
        first = false;
        if (*p == ',') {
            p++;
        }
    }
    (void)errp;    /* this syntax has no failing input; kept for callers */
    return d;
}

char *qdict_to_string(const QDict *d)
{
    GString *s = g_string_new(NULL);
    guint i;

    for (i = 0; i < d->entries->len; i++) {
        QDictEntry *e = &g_array_index(d->entries, QDictEntry, i);
        const char *v;

        if (i) {
            g_string_append_c(s, ',');
        }
        g_string_append_printf(s, "%s=", e->key);
        for (v = e->value; *v; v++) {
            if (*v == ',') {
                g_string_append_c(s, ',');
            }
            g_string_append_c(s, *v);
        }
    }
    return g_string_free(s, false);
}
