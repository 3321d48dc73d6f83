/*
 * qemu-img: helpers shared by the subcommands (option parsing, opening
 * images, progress output, QEMU's output key order).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Kept apart from qemu-img.c so that unit tests can link them.
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qemu/qobject.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

/* ---------------------------------------------------------------------- */
/* Common helpers                                                          */
/* ---------------------------------------------------------------------- */

void img_error_exit(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", error_get_progname());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information\n",
            error_get_progname());
    exit(EXIT_FAILURE);
}

void img_bad_option(int c, char **argv)
{
    /* getopt leaves the offending word just before optind. */
    if (c == ':') {
        img_error_exit("missing argument for option '%s'", argv[optind - 1]);
    }
    img_error_exit("unrecognized option '%s'", argv[optind - 1]);
}

void qprintf(bool quiet, const char *fmt, ...)
{
    va_list ap;

    if (quiet) {
        return;
    }
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

int64_t img_cvtnum(const char *name, const char *value)
{
    return tool_cvtnum_full(name, value, 0, INT64_MAX);
}

OutputFormat img_parse_output_format(const char *arg)
{
    if (!strcmp(arg, "json")) {
        return OFORMAT_JSON;
    }
    if (!strcmp(arg, "human")) {
        return OFORMAT_HUMAN;
    }
    error_report("--output must be used with human or json as argument.");
    exit(EXIT_FAILURE);
}

BlockBackend *img_open(bool image_opts, const char *filename,
                       const char *fmt, int flags, bool writethrough,
                       bool quiet, bool force_share)
{
    BlockBackend *blk;
    QDict *options;
    Error *err = NULL;

    if (force_share) {
        if (flags & BDRV_O_RDWR) {
            error_report("Could not open '%s': force-share=on can only be "
                         "used with read-only images", filename);
            return NULL;
        }
        flags |= BDRV_O_FORCE_SHARE;
    }
    if (image_opts) {
        if (fmt) {
            error_report("--image-opts and --format are mutually exclusive");
            return NULL;
        }
        options = tool_parse_image_opts(filename, true, &err);
        if (!options) {
            error_report_err(err);
            return NULL;
        }
        blk = blk_new_open(NULL, options, flags, &err);
    } else {
        options = qdict_new();
        if (fmt) {
            qdict_put_str(options, "driver", fmt);
        }
        blk = blk_new_open(filename, options, flags, &err);
    }
    if (!blk) {
        error_prepend(&err, "Could not open '%s': ", filename);
        error_report_err(err);
        return NULL;
    }
    blk_set_enable_write_cache(blk, !writethrough);
    return blk;
}

bool img_has_help_option(const char *list)
{
    g_auto(GStrv) parts = NULL;
    int i;

    if (!list) {
        return false;
    }
    parts = g_strsplit(list, ",", -1);
    for (i = 0; parts[i]; i++) {
        if (!strcmp(parts[i], "help") || !strcmp(parts[i], "?")) {
            return true;
        }
    }
    return false;
}

/*
 * As QEMU: an empty list, a leading comma or an unescaped (odd) run of
 * trailing commas is rejected before any option is looked at.
 */
static bool img_valid_option_list(const char *optarg)
{
    size_t len = strlen(optarg), i = len;

    if (!optarg[0] || optarg[0] == ',') {
        return false;
    }
    while (i > 0 && optarg[i - 1] == ',') {
        i--;
    }
    return (len - i) % 2 == 0;
}

char *img_accumulate_options(char *options, const char *optarg)
{
    char *joined;

    if (!img_valid_option_list(optarg)) {
        error_report("Invalid option list: %s", optarg);
        exit(EXIT_FAILURE);
    }
    if (!options) {
        return g_strdup(optarg);
    }
    joined = g_strdup_printf("%s,%s", options, optarg);
    g_free(options);
    return joined;
}

int img_print_block_option_help(const char *filename, const char *fmt)
{
    BlockDriver *drv, *proto_drv;
    QemuOptsList *list;
    Error *err = NULL;

    drv = bdrv_find_format(fmt);
    if (!drv) {
        error_report("Unknown file format '%s'", fmt);
        return 1;
    }
    if (!drv->create_opts) {
        error_report("Format driver '%s' does not support image creation",
                     fmt);
        return 1;
    }
    list = qemu_opts_append(NULL, drv->create_opts);
    if (filename) {
        proto_drv = bdrv_find_protocol(filename, true, &err);
        if (!proto_drv) {
            error_report_err(err);
            qemu_opts_free(list);
            return 1;
        }
        if (!proto_drv->create_opts) {
            error_report("Protocol driver '%s' does not support image "
                         "creation", proto_drv->format_name);
            qemu_opts_free(list);
            return 1;
        }
        list = qemu_opts_append(list, proto_drv->create_opts);
        printf("Supported options:\n");
    } else {
        printf("Supported %s options:\n", fmt);
    }
    qemu_opts_print_help(list, false);
    qemu_opts_free(list);
    if (!filename) {
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    return 0;
}

/* ---- progress ---------------------------------------------------------- */

static struct {
    bool enabled;
    float current;
    float last_print;
    float min_skip;
} img_progress;

static void img_progress_show(void)
{
    printf("    (%3.2f/100%%)\r", img_progress.current);
    fflush(stdout);
}

void img_progress_init(bool enabled, float min_skip)
{
    img_progress.enabled = enabled;
    img_progress.current = 0;
    img_progress.last_print = 0;
    img_progress.min_skip = min_skip;
}

/* @max == 0: @delta is the new absolute percentage; else a share of @max. */
void img_progress_print(float delta, int max)
{
    float cur;

    if (!img_progress.enabled) {
        return;
    }
    cur = max ? img_progress.current + delta / 100 * max : delta;
    /* Callers may overshoot by whole steps; the display stops at 100%. */
    cur = MIN(cur, 100);
    img_progress.current = cur;
    if (cur > img_progress.last_print + img_progress.min_skip ||
        cur < img_progress.last_print - img_progress.min_skip ||
        cur == 100 || cur == 0) {
        img_progress.last_print = cur;
        img_progress_show();
    }
}

void img_progress_end(void)
{
    if (!img_progress.enabled) {
        return;
    }
    printf("\n");
    fflush(stdout);
}

/* ---- QEMU's dictionary order -------------------------------------------- */

/*
 * QEMU's QDict is a 512-bucket hash table whose iteration visits buckets
 * in order and, inside a bucket, the newest entry first.  Its JSON and
 * human printers follow that order, so ours must too.
 */
#define QEMU_QDICT_BUCKETS 512

static unsigned int qemu_qdict_bucket(const char *key)
{
    uint32_t v = 0x238F13AFu * (uint32_t)strlen(key);
    unsigned int i;

    for (i = 0; key[i]; i++) {
        v += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    }
    return (1103515243u * v + 12345u) % QEMU_QDICT_BUCKETS;
}

typedef struct DictSortEntry {
    unsigned int bucket;
    size_t idx;
    const char *key;
    QObject *value;
} DictSortEntry;

static int dict_sort_cmp(const void *a, const void *b)
{
    const DictSortEntry *x = a, *y = b;

    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    /* Later insertions come first within a bucket. */
    return x->idx < y->idx ? 1 : (x->idx > y->idx ? -1 : 0);
}

QObject *img_qobj_qemu_order(const QObject *o)
{
    QObject *copy;
    size_t i, n;

    switch (qobj_type(o)) {
    case QTYPE_DICT: {
        DictSortEntry *e;

        n = qdict_obj_size(o);
        e = g_new0(DictSortEntry, n ? n : 1);
        for (i = 0; i < n; i++) {
            qdict_obj_entry(o, i, &e[i].key, &e[i].value);
            e[i].idx = i;
            e[i].bucket = qemu_qdict_bucket(e[i].key);
        }
        qsort(e, n, sizeof(*e), dict_sort_cmp);
        copy = qobj_dict();
        for (i = 0; i < n; i++) {
            qdict_obj_put(copy, e[i].key, img_qobj_qemu_order(e[i].value));
        }
        g_free(e);
        return copy;
    }
    case QTYPE_LIST:
        copy = qobj_list();
        n = qlist_obj_size(o);
        for (i = 0; i < n; i++) {
            qlist_obj_append(copy, img_qobj_qemu_order(qlist_obj_get(o, i)));
        }
        return copy;
    default:
        return qobj_ref((QObject *)o);
    }
}

/* Print @o as QEMU's pretty JSON followed by a newline. */
void img_print_json(const QObject *o)
{
    g_autoptr(GString) out = g_string_new(NULL);
    QObject *ordered = img_qobj_qemu_order(o);

    qobj_to_json(ordered, true, out);
    qobj_unref(ordered);
    printf("%s\n", out->str);
}

/*
 * Compare in 512-byte steps: returns whether the first step differs and
 * sets *pnum to the length of the prefix with the same result.
 */
int img_compare_buffers(const uint8_t *a, const uint8_t *b, int64_t bytes,
                        int64_t *pnum)
{
    const int64_t step = BDRV_SECTOR_SIZE;
    int64_t len = MIN(bytes, step);
    bool diff = memcmp(a, b, len) != 0;
    int64_t done = len;

    while (done < bytes) {
        len = MIN(bytes - done, step);
        if ((memcmp(a + done, b + done, len) != 0) != diff) {
            break;
        }
        done += len;
    }
    *pnum = done;
    return diff;
}
