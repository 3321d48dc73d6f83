/*
 * qemu-img dd: copy a range of an image into a new image, dd(1) style.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Size arithmetic follows QEMU 7.2 exactly, including that count= limits
 * the input from offset 0 (not from skip=): output size is
 * MIN(count * bs, input size) - skip * bs.
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

typedef struct DdOpts {
    const char *in_name;
    const char *out_name;
    int64_t bs;
    int64_t count;
    int64_t skip;
    bool has_count;
    bool has_skip;
} DdOpts;

/* Parse one "key=value" operand; false (reported) on error. */
static bool dd_parse_operand(DdOpts *dd, const char *arg)
{
    const char *eq = strchr(arg, '=');
    g_autofree char *key = NULL;
    const char *val;

    if (!eq) {
        error_report("unrecognized operand %s", arg);
        return false;
    }
    key = g_strndup(arg, eq - arg);
    val = eq + 1;
    if (!strcmp(key, "if")) {
        dd->in_name = val;
    } else if (!strcmp(key, "of")) {
        dd->out_name = val;
    } else if (!strcmp(key, "bs")) {
        dd->bs = tool_cvtnum_full("bs", val, 1, INT_MAX);
        if (dd->bs < 0) {
            return false;
        }
    } else if (!strcmp(key, "count")) {
        dd->count = img_cvtnum("count", val);
        if (dd->count < 0) {
            return false;
        }
        dd->has_count = true;
    } else if (!strcmp(key, "skip")) {
        dd->skip = img_cvtnum("skip", val);
        if (dd->skip < 0) {
            return false;
        }
        dd->has_skip = true;
    } else {
        error_report("unrecognized operand %s", key);
        return false;
    }
    return true;
}

int img_dd(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    DdOpts dd = { .bs = 512 };
    const char *out_fmt = "raw";
    BlockBackend *in_blk = NULL, *out_blk = NULL;
    BlockDriver *drv;
    int64_t size, in_pos, out_pos, out_size;
    uint8_t *buf = NULL;
    Error *err = NULL;
    int c, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hf:O:U", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'O':
            out_fmt = optarg;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    for (; optind < argc; optind++) {
        if (!dd_parse_operand(&dd, argv[optind])) {
            return 1;
        }
    }
    if (!dd.in_name || !dd.out_name) {
        error_report("Must specify both input and output files");
        return 1;
    }

    in_blk = img_open(co.image_opts, dd.in_name, co.fmt, 0, false, false,
                      co.force_share);
    if (!in_blk) {
        return 1;
    }
    drv = bdrv_find_format(out_fmt);
    if (!drv) {
        error_report("Unknown file format");
        goto out;
    }
    size = blk_getlength(in_blk);
    if (size < 0) {
        error_report("Failed to get size for '%s'", dd.in_name);
        goto out;
    }
    if (dd.has_count && dd.count <= INT64_MAX / dd.bs &&
        size > dd.count * dd.bs) {
        size = dd.count * dd.bs;
    }
    /* A skip beyond the input gives an empty output, like dd(1). */
    if (dd.has_skip && (dd.skip > INT64_MAX / dd.bs ||
                        size < dd.skip * dd.bs)) {
        out_size = 0;
    } else {
        out_size = size - dd.skip * dd.bs;
    }

    bdrv_img_create(dd.out_name, out_fmt, NULL, NULL, NULL, out_size, 0,
                    true, &err);
    if (err) {
        error_prepend(&err, "%s: error while creating output image: ",
                      dd.out_name);
        error_report_err(err);
        goto out;
    }
    out_blk = img_open(false, dd.out_name, out_fmt, BDRV_O_RDWR, false,
                       false, false);
    if (!out_blk) {
        goto out;
    }

    if (dd.has_skip && (dd.skip > INT64_MAX / dd.bs ||
                        size < dd.skip * dd.bs)) {
        error_report("%s: cannot skip to specified offset", dd.in_name);
        in_pos = size;
    } else {
        in_pos = dd.skip * dd.bs;
    }

    buf = qemu_blockalign(blk_bs(in_blk), dd.bs);
    for (out_pos = 0; in_pos < size; ) {
        int64_t bytes = MIN(dd.bs, size - in_pos);
        int r;

        r = blk_pread(in_blk, in_pos, bytes, buf, 0);
        if (r < 0) {
            error_report("error while reading from input image file: %s",
                         strerror(-r));
            goto out;
        }
        in_pos += bytes;
        r = blk_pwrite(out_blk, out_pos, bytes, buf, 0);
        if (r < 0) {
            error_report("error while writing to output image file: %s",
                         strerror(-r));
            goto out;
        }
        out_pos += bytes;
    }
    ret = 0;

out:
    qemu_vfree(buf);
    if (out_blk) {
        blk_unref(out_blk);
    }
    blk_unref(in_blk);
    return ret;
}
