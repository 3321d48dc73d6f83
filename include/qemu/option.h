/*
 * Options: QDict (a flat string dictionary used for block node options,
 * with dotted keys for children: "file.filename") and QemuOpts (typed,
 * documented option lists used for create options and driver runtime
 * options).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_OPTION_H
#define QEMU_OPTION_H

/* ---- QDict: ordered string -> string map ----------------------------- */
typedef struct QDict QDict;

QDict *qdict_new(void);
void qdict_free(QDict *d);
QDict *qdict_clone(const QDict *d);
void qdict_put_str(QDict *d, const char *key, const char *value);
const char *qdict_get_try_str(const QDict *d, const char *key);
bool qdict_haskey(const QDict *d, const char *key);
void qdict_del(QDict *d, const char *key);
size_t qdict_size(const QDict *d);
/* Iterate in insertion order: idx from 0; returns false at the end. */
bool qdict_entry(const QDict *d, size_t idx, const char **key,
                 const char **value);
/*
 * Move every "prefix.rest" entry into a new dict as "rest" (prefix given
 * without the dot).  Returns an empty dict if none.
 */
QDict *qdict_extract_subdict(QDict *src, const char *prefix);
/* Copy entries of @src missing from @dst. */
void qdict_join(QDict *dst, const QDict *src, bool overwrite);
/*
 * Parse "key=value,key2=value2" (",," is a literal comma in a value).  If
 * @implied_key is not NULL, a first element without '=' is its value
 * (e.g. "driver").  Returns NULL and sets errp on syntax error.
 */
QDict *qdict_parse_keyval(const char *str, const char *implied_key,
                          Error **errp);
/* "key=value,..." in insertion order (for messages and json:{} names). */
char *qdict_to_string(const QDict *d);

/* ---- QemuOpts: typed option lists ----------------------------------- */
typedef enum QemuOptType {
    QEMU_OPT_STRING = 0,
    QEMU_OPT_BOOL,
    QEMU_OPT_NUMBER,
    QEMU_OPT_SIZE,
} QemuOptType;

typedef struct QemuOptDesc {
    const char *name;
    QemuOptType type;
    const char *help;
    const char *def_value_str;
    /*
     * Another spelling of the option named here (in the same list):
     * setting this name sets that option, and only that one is stored
     * and printed.
     */
    const char *alias_of;
} QemuOptDesc;

/* A list of descriptions; desc is terminated by an entry with name NULL. */
typedef struct QemuOptsList {
    const char *name;
    const QemuOptDesc *desc;
} QemuOptsList;

typedef struct QemuOpts QemuOpts;

QemuOpts *qemu_opts_create(const QemuOptsList *list);
void qemu_opts_del(QemuOpts *opts);
/* Merge two description lists (driver create opts + protocol's). */
QemuOptsList *qemu_opts_append(QemuOptsList *dst, const QemuOptsList *src);
void qemu_opts_free(QemuOptsList *list);

/* Set after validating against the description (type and name). */
bool qemu_opt_set(QemuOpts *opts, const char *name, const char *value,
                  Error **errp);
bool qemu_opt_set_number(QemuOpts *opts, const char *name, int64_t val,
                         Error **errp);
bool qemu_opt_set_bool(QemuOpts *opts, const char *name, bool val,
                       Error **errp);
/* Parse "a=b,c=d" into @opts. */
bool qemu_opts_do_parse(QemuOpts *opts, const char *params, Error **errp);
/*
 * Move every entry of @qdict whose key is described by @opts' list into
 * @opts (removing it from @qdict).  Unknown keys are left in @qdict.
 */
bool qemu_opts_absorb_qdict(QemuOpts *opts, QDict *qdict, Error **errp);

bool qemu_opt_has(QemuOpts *opts, const char *name);
/* Value as set, else the description's default, else NULL. */
const char *qemu_opt_get(QemuOpts *opts, const char *name);
char *qemu_opt_get_del(QemuOpts *opts, const char *name);
bool qemu_opt_get_bool(QemuOpts *opts, const char *name, bool defval);
uint64_t qemu_opt_get_number(QemuOpts *opts, const char *name,
                             uint64_t defval);
uint64_t qemu_opt_get_size(QemuOpts *opts, const char *name,
                           uint64_t defval);
bool qemu_opt_unset(QemuOpts *opts, const char *name);

/*
 * Print the "-o help" listing the way qemu-img does (sorted, aligned) to
 * stdout; @print_caption adds the leading "Supported options:" line.
 */
void qemu_opts_print_help(const QemuOptsList *list, bool print_caption);
/*
 * Append " name=value" for every option (set ones, and those with a
 * default when @with_defaults) to @buf: used for "Formatting ..." lines.
 */
void qemu_opts_print(QemuOpts *opts, GString *buf, bool with_defaults);
const QemuOptsList *qemu_opts_list(QemuOpts *opts);

#endif
