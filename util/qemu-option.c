/*
 * QemuOpts: typed option lists validated against a description table.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/option.h"

typedef struct QemuOpt {
    char *name;
    char *str;              /* the value as given (or as formatted) */
    const QemuOptDesc *desc;    /* NULL for lists without descriptions */
    union {
        bool boolean;
        uint64_t uint;
    } value;
} QemuOpt;

struct QemuOpts {
    const QemuOptsList *list;
    GPtrArray *opts;        /* of QemuOpt *, in the order they were set */
};

static void qemu_opt_free(gpointer p)
{
    QemuOpt *opt = p;

    g_free(opt->name);
    g_free(opt->str);
    g_free(opt);
}

QemuOpts *qemu_opts_create(const QemuOptsList *list)
{
    QemuOpts *opts = g_new0(QemuOpts, 1);

    opts->list = list;
    opts->opts = g_ptr_array_new_with_free_func(qemu_opt_free);
    return opts;
}

void qemu_opts_del(QemuOpts *opts)
{
    if (opts) {
        g_ptr_array_free(opts->opts, true);
        g_free(opts);
    }
}

const QemuOptsList *qemu_opts_list(QemuOpts *opts)
{
    return opts->list;
}

static size_t desc_count(const QemuOptDesc *desc)
{
    size_t n = 0;

    while (desc && desc[n].name) {
        n++;
    }
    return n;
}

static const QemuOptDesc *find_desc(const QemuOptDesc *desc, const char *name)
{
    for (; desc && desc->name; desc++) {
        if (!strcmp(desc->name, name)) {
            return desc;
        }
    }
    return NULL;
}

/* A list without descriptions accepts any option as a string. */
static bool list_accepts_anything(const QemuOptsList *list)
{
    return desc_count(list->desc) == 0;
}

QemuOptsList *qemu_opts_append(QemuOptsList *dst, const QemuOptsList *src)
{
    size_t ndst, nsrc, n, i;
    QemuOptDesc *desc;

    if (!src) {
        return dst;
    }
    if (!dst) {
        dst = g_new0(QemuOptsList, 1);
        dst->name = src->name;
    }
    ndst = desc_count(dst->desc);
    nsrc = desc_count(src->desc);

    /* dst->desc is always our own allocation (or NULL) here. */
    desc = (QemuOptDesc *)dst->desc;
    desc = g_renew(QemuOptDesc, desc, ndst + nsrc + 1);
    n = ndst;
    for (i = 0; i < nsrc; i++) {
        /* The first list to describe a name wins. */
        bool dup = false;
        for (size_t j = 0; j < n; j++) {
            if (!strcmp(desc[j].name, src->desc[i].name)) {
                dup = true;
                break;
            }
        }
        if (!dup) {
            desc[n++] = src->desc[i];
        }
    }
    memset(&desc[n], 0, sizeof(desc[n]));
    dst->desc = desc;
    return dst;
}

void qemu_opts_free(QemuOptsList *list)
{
    if (list) {
        g_free((QemuOptDesc *)list->desc);
        g_free(list);
    }
}

static bool parse_number(const char *name, const char *value, uint64_t *ret,
                         Error **errp)
{
    int err = qemu_strtou64(value, NULL, 0, ret);

    if (err == -ERANGE) {
        error_setg(errp, "Value '%s' is too large for parameter '%s'",
                   value, name);
        return false;
    }
    if (err) {
        error_setg(errp, "Parameter '%s' expects a number", name);
        return false;
    }
    return true;
}

static bool parse_size(const char *name, const char *value, uint64_t *ret,
                       Error **errp)
{
    int err = qemu_strtosz(value, NULL, ret);

    if (err == -ERANGE) {
        error_setg(errp, "Value '%s' is out of range for parameter '%s'",
                   value, name);
        return false;
    }
    if (err) {
        error_setg(errp, "Parameter '%s' expects a non-negative number "
                   "below 2^64", name);
        error_append_hint(errp, "Optional suffix k, M, G, T, P or E means "
                          "kilo-, mega-, giga-, tera-, peta-\n"
                          "and exabytes, respectively.\n");
        return false;
    }
    return true;
}

/* Validate @opt->str according to its description and fill opt->value. */
static bool opt_parse(QemuOpt *opt, Error **errp)
{
    if (!opt->desc) {
        return true;
    }
    switch (opt->desc->type) {
    case QEMU_OPT_STRING:
        return true;
    case QEMU_OPT_BOOL:
        return qapi_bool_parse(opt->name, opt->str, &opt->value.boolean,
                               errp);
    case QEMU_OPT_NUMBER:
        return parse_number(opt->name, opt->str, &opt->value.uint, errp);
    case QEMU_OPT_SIZE:
        return parse_size(opt->name, opt->str, &opt->value.uint, errp);
    }
    g_assert_not_reached();
}

static QemuOpt *find_opt(QemuOpts *opts, const char *name, guint *idx)
{
    guint i;

    /* Search backwards: the latest setting of a name wins. */
    for (i = opts->opts->len; i-- > 0;) {
        QemuOpt *opt = g_ptr_array_index(opts->opts, i);
        if (!strcmp(opt->name, name)) {
            if (idx) {
                *idx = i;
            }
            return opt;
        }
    }
    return NULL;
}

/* Validate the name and build an option; the caller fills in the value. */
static QemuOpt *opt_new(QemuOpts *opts, const char *name, const char *str,
                        Error **errp)
{
    const QemuOptDesc *desc = find_desc(opts->list->desc, name);
    QemuOpt *opt;

    if (!desc && !list_accepts_anything(opts->list)) {
        error_setg(errp, "Invalid parameter '%s'", name);
        return NULL;
    }
    if (desc && desc->alias_of) {
        desc = find_desc(opts->list->desc, desc->alias_of);
        assert(desc && !desc->alias_of);
        name = desc->name;
    }
    opt = g_new0(QemuOpt, 1);
    opt->name = g_strdup(name);
    opt->str = g_strdup(str);
    opt->desc = desc;
    return opt;
}

static void opt_store(QemuOpts *opts, QemuOpt *opt)
{
    guint idx;

    if (find_opt(opts, opt->name, &idx)) {
        g_ptr_array_remove_index(opts->opts, idx);
    }
    g_ptr_array_add(opts->opts, opt);
}

bool qemu_opt_set(QemuOpts *opts, const char *name, const char *value,
                  Error **errp)
{
    QemuOpt *opt = opt_new(opts, name, value, errp);

    if (!opt) {
        return false;
    }
    if (!opt_parse(opt, errp)) {
        qemu_opt_free(opt);
        return false;
    }
    opt_store(opts, opt);
    return true;
}

bool qemu_opt_set_number(QemuOpts *opts, const char *name, int64_t val,
                         Error **errp)
{
    char buf[32];
    QemuOpt *opt;

    snprintf(buf, sizeof(buf), "%" PRId64, val);
    opt = opt_new(opts, name, buf, errp);
    if (!opt) {
        return false;
    }
    opt->value.uint = val;
    opt_store(opts, opt);
    return true;
}

bool qemu_opt_set_bool(QemuOpts *opts, const char *name, bool val,
                       Error **errp)
{
    QemuOpt *opt = opt_new(opts, name, val ? "on" : "off", errp);

    if (!opt) {
        return false;
    }
    opt->value.boolean = val;
    opt_store(opts, opt);
    return true;
}

/* Same ",," escaping as the QDict keyval parser. */
static const char *get_value(const char *p, char **value)
{
    GString *s = g_string_new(NULL);

    while (*p) {
        if (*p == ',') {
            if (p[1] != ',') {
                break;
            }
            p++;
        }
        g_string_append_c(s, *p++);
    }
    *value = g_string_free(s, false);
    return p;
}

bool qemu_opts_do_parse(QemuOpts *opts, const char *params, Error **errp)
{
    const char *p = params;

    while (*p) {
        size_t len = strcspn(p, "=,");
        char *name, *value;
        bool ok;

        name = g_strndup(p, len);
        if (p[len] == '=') {
            p = get_value(p + len + 1, &value);
        } else {
            /* "flag" is flag=on and "noflag" is flag=off. */
            p += len;
            if (g_str_has_prefix(name, "no")) {
                memmove(name, name + 2, strlen(name + 2) + 1);
                value = g_strdup("off");
            } else {
                value = g_strdup("on");
            }
        }
        ok = qemu_opt_set(opts, name, value, errp);
        g_free(name);
        g_free(value);
        if (!ok) {
            return false;
        }
        if (*p == ',') {
            p++;
        }
    }
    return true;
}

bool qemu_opts_absorb_qdict(QemuOpts *opts, QDict *qdict, Error **errp)
{
    size_t i = 0;
    const char *key, *value;

    while (qdict_entry(qdict, i, &key, &value)) {
        if (!find_desc(opts->list->desc, key)) {
            i++;
            continue;
        }
        if (!qemu_opt_set(opts, key, value, errp)) {
            return false;
        }
        /* Deleting shifts the following entries down to index i. */
        qdict_del(qdict, key);
    }
    return true;
}

bool qemu_opt_has(QemuOpts *opts, const char *name)
{
    return find_opt(opts, name, NULL) != NULL;
}

const char *qemu_opt_get(QemuOpts *opts, const char *name)
{
    QemuOpt *opt = find_opt(opts, name, NULL);
    const QemuOptDesc *desc;

    if (opt) {
        return opt->str;
    }
    desc = find_desc(opts->list->desc, name);
    return desc ? desc->def_value_str : NULL;
}

char *qemu_opt_get_del(QemuOpts *opts, const char *name)
{
    char *str = g_strdup(qemu_opt_get(opts, name));

    qemu_opt_unset(opts, name);
    return str;
}

bool qemu_opt_unset(QemuOpts *opts, const char *name)
{
    guint idx;
    bool found = false;

    while (find_opt(opts, name, &idx)) {
        g_ptr_array_remove_index(opts->opts, idx);
        found = true;
    }
    return found;
}

bool qemu_opt_get_bool(QemuOpts *opts, const char *name, bool defval)
{
    QemuOpt *opt = find_opt(opts, name, NULL);
    const char *str;
    bool v;

    if (opt && opt->desc && opt->desc->type == QEMU_OPT_BOOL) {
        return opt->value.boolean;
    }
    str = qemu_opt_get(opts, name);
    if (str && qapi_bool_parse(name, str, &v, NULL)) {
        return v;
    }
    return defval;
}

/* Shared by the number and size getters: both store a uint64_t. */
static uint64_t opt_get_uint(QemuOpts *opts, const char *name,
                             uint64_t defval, bool size)
{
    QemuOpt *opt = find_opt(opts, name, NULL);
    const char *str;
    uint64_t v;
    int ret;

    if (opt && opt->desc && (opt->desc->type == QEMU_OPT_NUMBER ||
                             opt->desc->type == QEMU_OPT_SIZE)) {
        return opt->value.uint;
    }
    str = qemu_opt_get(opts, name);
    if (!str) {
        return defval;
    }
    ret = size ? qemu_strtosz(str, NULL, &v) : qemu_strtou64(str, NULL, 0, &v);
    return ret ? defval : v;
}

uint64_t qemu_opt_get_number(QemuOpts *opts, const char *name,
                             uint64_t defval)
{
    return opt_get_uint(opts, name, defval, false);
}

uint64_t qemu_opt_get_size(QemuOpts *opts, const char *name,
                           uint64_t defval)
{
    return opt_get_uint(opts, name, defval, true);
}

static const char *opt_type_name(QemuOptType type)
{
    switch (type) {
    case QEMU_OPT_STRING:
        return "str";
    case QEMU_OPT_BOOL:
        return "bool (on/off)";
    case QEMU_OPT_NUMBER:
        return "num";
    case QEMU_OPT_SIZE:
        return "size";
    }
    g_assert_not_reached();
}

static gint compare_lines(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void qemu_opts_print_help(const QemuOptsList *list, bool print_caption)
{
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    const QemuOptDesc *desc;
    guint i;

    for (desc = list->desc; desc && desc->name; desc++) {
        GString *line = g_string_new(NULL);

        g_string_append_printf(line, "  %s=<%s>", desc->name,
                               opt_type_name(desc->type));
        if (desc->help) {
            /* Help texts start in one column unless the name is too long. */
            while (line->len < 24) {
                g_string_append_c(line, ' ');
            }
            g_string_append_printf(line, " - %s", desc->help);
        }
        g_ptr_array_add(lines, g_string_free(line, false));
    }
    g_ptr_array_sort(lines, compare_lines);

    if (lines->len == 0) {
        if (list->name) {
            printf("There are no options for %s.\n", list->name);
        } else {
            printf("No options.\n");
        }
    } else if (print_caption) {
        printf("Supported options:\n");
    }
    for (i = 0; i < lines->len; i++) {
        printf("%s\n", (char *)g_ptr_array_index(lines, i));
    }
    g_ptr_array_free(lines, true);
}

/* Values are re-escaped so that the printed line could be parsed back. */
static void append_escaped(GString *buf, const char *s)
{
    for (; *s; s++) {
        if (*s == ',') {
            g_string_append_c(buf, ',');
        }
        g_string_append_c(buf, *s);
    }
}

void qemu_opts_print(QemuOpts *opts, GString *buf, bool with_defaults)
{
    const QemuOptDesc *desc = opts->list->desc;
    guint i;

    if (list_accepts_anything(opts->list)) {
        for (i = 0; i < opts->opts->len; i++) {
            QemuOpt *opt = g_ptr_array_index(opts->opts, i);
            g_string_append_printf(buf, " %s=", opt->name);
            append_escaped(buf, opt->str);
        }
        return;
    }

    /* Description order, so the output does not depend on the caller. */
    for (; desc->name; desc++) {
        QemuOpt *opt = find_opt(opts, desc->name, NULL);
        const char *value = opt ? opt->str :
                            with_defaults ? desc->def_value_str : NULL;

        if (!value) {
            continue;
        }
        g_string_append_printf(buf, " %s=", desc->name);
        if (desc->type == QEMU_OPT_STRING) {
            append_escaped(buf, value);
        } else if (opt && (desc->type == QEMU_OPT_SIZE ||
                           desc->type == QEMU_OPT_NUMBER)) {
            /* Parsed numbers print in decimal, signed (QEMU does too). */
            g_string_append_printf(buf, "%" PRId64, (int64_t)opt->value.uint);
        } else {
            g_string_append(buf, value);
        }
    }
}
