/*
 * qemu-img resize: grow or (with --shrink) shrink an image.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qemu-img.h"

static const QemuOptDesc resize_opt_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { NULL }
};
static const QemuOptsList resize_opts = {
    .name = "resize",
    .desc = resize_opt_desc,
};

int img_resize(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "preallocation", required_argument, NULL, OPTION_PREALLOCATION },
        { "shrink", no_argument, NULL, OPTION_SHRINK },
        { NULL, 0, NULL, 0 }
    };
    const char *filename, *size;
    bool shrink = false;
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    int64_t n, cur_size, total_size;
    BlockBackend *blk;
    QemuOpts *param;
    Error *err = NULL;
    ImgCommonOpts co = { 0 };
    int relative, c, ret;

    /*
     * Take the size off argv before getopt sees it, so that "-1G" is not
     * mistaken for an option.
     */
    if (argc < 3) {
        img_error_exit("Not enough arguments");
    }
    size = argv[--argc];

    while ((c = getopt_long(argc, argv, ":f:hq", long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPTION_PREALLOCATION:
            ret = prealloc_mode_parse(optarg, NULL);
            if (ret < 0) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            prealloc = ret;
            break;
        case OPTION_SHRINK:
            shrink = true;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    if (optind != argc - 1) {
        img_error_exit("Expecting image file name and size");
    }
    filename = argv[optind];

    switch (size[0]) {
    case '+':
        relative = 1;
        size++;
        break;
    case '-':
        relative = -1;
        size++;
        break;
    default:
        relative = 0;
        break;
    }

    /* QemuOpts gives the same message for a bad size as QEMU. */
    param = qemu_opts_create(&resize_opts);
    if (!qemu_opt_set(param, "size", size, &err)) {
        error_report_err(err);
        qemu_opts_del(param);
        return 1;
    }
    n = qemu_opt_get_size(param, "size", 0);
    qemu_opts_del(param);

    blk = img_open(co.image_opts, filename, co.fmt, BDRV_O_RDWR | BDRV_O_RESIZE,
                   false, co.quiet, false);
    if (!blk) {
        return 1;
    }
    ret = -1;
    cur_size = blk_getlength(blk);
    if (cur_size < 0) {
        error_report("Failed to inquire current image length: %s",
                     strerror(-cur_size));
        goto out;
    }
    /* The reference counts in whole sectors: "+/-" apply to that size. */
    cur_size = ROUND_UP(cur_size, 512);
    total_size = relative ? cur_size + n * relative : n;
    if (total_size <= 0) {
        error_report("New image size must be positive");
        goto out;
    }
    if (total_size <= cur_size && prealloc != PREALLOC_MODE_OFF) {
        error_report("Preallocation can only be used for growing images");
        goto out;
    }
    if (total_size < cur_size && !shrink) {
        error_report("Use the --shrink option to perform a shrink operation.");
        warn_report("Shrinking an image will delete all data beyond the "
                    "shrunken image's end. Before performing such an "
                    "operation, make sure there is no important data there.");
        goto out;
    }
    ret = blk_truncate(blk, total_size, true, prealloc, 0, &err);
    if (ret == 0) {
        qprintf(co.quiet, "Image resized.\n");
    } else {
        error_report_err(err);
    }

out:
    blk_unref(blk);
    return ret ? 1 : 0;
}
