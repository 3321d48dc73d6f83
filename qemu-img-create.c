/*
 * qemu-img create and amend: make an image, or change the options of an
 * existing one, from -o format options.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/option.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

int img_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *base_fmt = NULL, *base_filename = NULL;
    const char *filename;
    char *options = NULL;
    uint64_t img_size = (uint64_t)-1;
    int flags = 0;
    Error *err = NULL;
    int c, ret;
    ImgCommonOpts co = { .fmt = "raw" };

    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'F':
            base_fmt = optarg;
            break;
        case 'b':
            base_filename = optarg;
            break;
        case 'o':
            options = img_accumulate_options(options, optarg);
            break;
        case 'u':
            flags |= BDRV_O_NO_BACKING;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }

    /* Option help works with or without a filename. */
    filename = optind < argc ? argv[optind] : NULL;
    if (img_has_help_option(options)) {
        ret = img_print_block_option_help(filename, co.fmt);
        g_free(options);
        return ret;
    }
    if (optind >= argc) {
        img_error_exit("Expecting image file name");
    }
    optind++;

    if (optind < argc) {
        int64_t sval = img_cvtnum("image size", argv[optind++]);

        if (sval < 0) {
            goto fail;
        }
        img_size = sval;
    }
    if (optind != argc) {
        img_error_exit("Unexpected argument: %s", argv[optind]);
    }

    bdrv_img_create(filename, co.fmt, base_filename, base_fmt, options,
                    img_size, flags, co.quiet, &err);
    if (err) {
        error_prepend(&err, "%s: ", filename);
        error_report_err(err);
        goto fail;
    }
    g_free(options);
    return 0;

fail:
    g_free(options);
    return 1;
}


static int print_amend_option_help(const char *format)
{
    BlockDriver *drv = bdrv_find_format(format);

    if (!drv) {
        error_report("Unknown file format '%s'", format);
        return 1;
    }
    if (!drv->bdrv_co_amend || !drv->amend_opts) {
        error_report("Format driver '%s' does not support option amendment",
                     format);
        return 1;
    }
    printf("Amend options for '%s':\n", format);
    qemu_opts_print_help(drv->amend_opts, false);
    return 0;
}

int img_amend(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force", no_argument, NULL, OPTION_FORCE },
        { NULL, 0, NULL, 0 }
    };
    const char *filename, *cache = "writeback";
    bool force = false, progress = false;
    bool writethrough = false;
    char *options = NULL;
    BlockBackend *blk = NULL;
    BlockDriverState *bs;
    QemuOptsList *list = NULL;
    QemuOpts *opts = NULL;
    Error *err = NULL;
    int flags = BDRV_O_RDWR;
    int c, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'o':
            options = img_accumulate_options(options, optarg);
            break;
        case 't':
            cache = optarg;
            break;
        case 'p':
            progress = true;
            break;
        case OPTION_FORCE:
            force = true;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    if (!options) {
        img_error_exit("Must specify options (-o)");
    }
    /* From here on every exit ends the (possibly empty) progress line. */
    img_progress_init(progress && !co.quiet, 1.0);
    if (co.fmt && img_has_help_option(options)) {
        ret = print_amend_option_help(co.fmt);
        goto out;
    }
    if (optind != argc - 1) {
        error_report("Expecting one image file name");
        goto out;
    }
    filename = argv[optind];
    if (tool_parse_cache_mode(cache, &flags, &writethrough) < 0) {
        error_report("Invalid cache option: %s", cache);
        goto out;
    }
    blk = img_open(co.image_opts, filename, co.fmt, flags, writethrough, co.quiet,
                   false);
    if (!blk) {
        goto out;
    }
    bs = blk_bs(blk);
    co.fmt = bdrv_get_format_name(bs);
    if (img_has_help_option(options)) {
        ret = print_amend_option_help(co.fmt);
        goto out;
    }
    if (!bs->drv->bdrv_co_amend || !bs->drv->amend_opts) {
        error_report("Format driver '%s' does not support option amendment",
                     co.fmt);
        goto out;
    }
    list = qemu_opts_append(NULL, bs->drv->amend_opts);
    opts = qemu_opts_create(list);
    if (!qemu_opts_do_parse(opts, options, &err)) {
        /* Name options that exist only at creation time specifically. */
        if (bs->drv->create_opts) {
            QemuOptsList *clist = qemu_opts_append(NULL, bs->drv->create_opts);
            QemuOpts *copts = qemu_opts_create(clist);

            if (qemu_opts_do_parse(copts, options, NULL)) {
                error_append_hint(&err, "This option is only supported for "
                                  "image creation\n");
            }
            qemu_opts_del(copts);
            qemu_opts_free(clist);
        }
        error_report_err(err);
        goto out;
    }
    img_progress_print(0, 0);
    if (bdrv_amend(bs, opts, force, &err) < 0) {
        error_report_err(err);
        goto out;
    }
    img_progress_print(100, 0);
    ret = 0;

out:
    if (opts) {
        qemu_opts_del(opts);
    }
    if (list) {
        qemu_opts_free(list);
    }
    if (blk) {
        blk_unref(blk);
    }
    img_progress_end();
    g_free(options);
    return ret;
}
