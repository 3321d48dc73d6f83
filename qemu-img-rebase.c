/*
 * qemu-img rebase: switch an image to another backing file, by default
 * copying in whatever the old chain and the new one read differently.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/qobject.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

#define REBASE_BUF_SIZE (2 * MiB)

/*
 * Safe rebase: wherever @blk's top node has no data of its own, copy in
 * the content of the old backing chain where it differs from @new_blk
 * (NULL: no new backing file, i.e. zeroes), so the guest-visible content
 * stays the same once the backing file is switched.
 */
static int rebase_copy_differences(BlockBackend *blk, BlockBackend *new_blk,
                                   BlockDriverState *prefix_bs)
{
    BlockDriverState *bs = blk_bs(blk);
    int64_t size, new_size = 0, offset, n;
    float step;
    uint8_t *buf_old, *buf_new;
    int ret = 0;

    size = blk_getlength(blk);
    if (size < 0) {
        error_report("Could not get size of '%s': %s", bdrv_get_filename(bs),
                     strerror(-size));
        return -1;
    }
    if (new_blk) {
        new_size = blk_getlength(new_blk);
        if (new_size < 0) {
            error_report("Could not get size of '%s': %s",
                         bdrv_get_filename(blk_bs(new_blk)),
                         strerror(-new_size));
            return -1;
        }
    }
    buf_old = qemu_blockalign(bs, REBASE_BUF_SIZE);
    buf_new = qemu_blockalign(bs, REBASE_BUF_SIZE);

    /*
     * As QEMU, every chunk that is compared advances the progress by one
     * buffer's share of the image (chunks cut short by allocation too).
     */
    step = size ? 100.0f / (size / MIN(size, REBASE_BUF_SIZE)) : 0;
    for (offset = 0; offset < size; offset += n) {
        int64_t pos, pnum;

        n = MIN(REBASE_BUF_SIZE, size - offset);
        ret = bdrv_is_allocated(bs, offset, n, &n);
        if (ret < 0) {
            error_report("error while reading image metadata: %s",
                         strerror(-ret));
            goto out;
        }
        if (ret) {
            /* The image's own data hides any backing file. */
            ret = 0;
            continue;
        }
        if (prefix_bs) {
            /* Only what lies above the new backing node can differ. */
            ret = bdrv_is_allocated_above(bdrv_backing_bs(bs), prefix_bs,
                                          false, offset, n, &n);
            if (ret < 0) {
                error_report("error while reading image metadata: %s",
                             strerror(-ret));
                goto out;
            }
            if (!ret) {
                continue;
            }
        }

        /* Reading the top node here returns the old backing content. */
        ret = blk_pread(blk, offset, n, buf_old, 0);
        if (ret < 0) {
            error_report("error while reading from old backing file");
            goto out;
        }
        memset(buf_new, 0, n);
        if (new_blk && offset < new_size) {
            ret = blk_pread(new_blk, offset, MIN(n, new_size - offset),
                            buf_new, 0);
            if (ret < 0) {
                error_report("error while reading from new backing file");
                goto out;
            }
        }

        for (pos = 0; pos < n; pos += pnum) {
            if (img_compare_buffers(buf_old + pos, buf_new + pos,
                                    n - pos, &pnum)) {
                ret = blk_pwrite(blk, offset + pos, pnum, buf_old + pos, 0);
                if (ret < 0) {
                    error_report("Error while writing to COW image: %s",
                                 strerror(-ret));
                    goto out;
                }
            }
        }
        img_progress_print(step, 100);
    }
    ret = 0;

out:
    qemu_vfree(buf_old);
    qemu_vfree(buf_new);
    return ret < 0 ? -1 : 0;
}

/* The node of @bs's backing chain that is the same file as @new_blk's. */
static BlockDriverState *rebase_find_in_chain(BlockDriverState *bs,
                                              BlockBackend *new_blk)
{
    g_autofree char *want = NULL;
    BlockDriverState *b;

    if (!new_blk) {
        return NULL;
    }
    want = realpath(bdrv_get_filename(blk_bs(new_blk)), NULL);
    if (!want) {
        return NULL;
    }
    for (b = bdrv_backing_bs(bs); b; b = bdrv_backing_bs(b)) {
        g_autofree char *have = realpath(bdrv_get_filename(b), NULL);

        if (have && !strcmp(have, want)) {
            return b;
        }
    }
    return NULL;
}

int img_rebase(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    const char *filename, *cache = "writeback";
    const char *src_cache = "writeback";
    const char *out_baseimg = NULL, *out_basefmt = NULL;
    bool unsafe = false;
    bool progress = false;
    bool writethrough = false, src_writethrough = false;
    BlockBackend *blk = NULL, *new_blk = NULL;
    int flags, src_flags = 0;
    int c, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'F':
            out_basefmt = optarg;
            break;
        case 'b':
            out_baseimg = optarg;
            break;
        case 'u':
            unsafe = true;
            break;
        case 'p':
            progress = true;
            break;
        case 't':
            cache = optarg;
            break;
        case 'T':
            src_cache = optarg;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    if (co.quiet) {
        progress = false;
    }
    if (optind != argc - 1) {
        img_error_exit("Expecting one image file name");
    }
    filename = argv[optind];
    if (!out_baseimg) {
        if (!unsafe) {
            img_error_exit("Must specify backing file (-b) or use unsafe "
                           "mode (-u)");
        }
        /* As QEMU: -u without -b means the image loses its backing file. */
        out_baseimg = "";
    }
    /* From here on every exit ends the (possibly empty) progress line. */
    img_progress_init(progress, 2.0);
    img_progress_print(0, 100);

    flags = BDRV_O_RDWR | (unsafe ? BDRV_O_NO_BACKING : 0);
    if (tool_parse_cache_mode(cache, &flags, &writethrough) < 0) {
        error_report("Invalid cache option: %s", cache);
        goto out;
    }
    if (tool_parse_cache_mode(src_cache, &src_flags, &src_writethrough) < 0) {
        error_report("Invalid source cache option: %s", src_cache);
        goto out;
    }
    blk = img_open(co.image_opts, filename, co.fmt, flags, writethrough, co.quiet,
                   false);
    if (!blk) {
        goto out;
    }
    /* Refuse before the copy: the result could never be opened again. */
    if (out_baseimg[0] &&
        bdrv_get_limits(blk_bs(blk))->zoned != BLK_Z_NONE) {
        error_report("Cannot rebase '%s' onto a backing file: zoned images "
                     "cannot have one", filename);
        goto out;
    }

    if (!unsafe && out_baseimg[0]) {
        Error *err = NULL;
        QDict *options;
        char *path;

        /* A relative name is relative to the image, as it is stored. */
        path = bdrv_get_full_backing_filename_from_filename(
            bdrv_get_filename(blk_bs(blk)), out_baseimg, &err);
        if (!path) {
            error_report_err(err);
            goto out;
        }
        options = qdict_new();
        if (out_basefmt) {
            qdict_put_str(options, "driver", out_basefmt);
        }
        new_blk = blk_new_open(path, options,
                               src_flags | (co.force_share ?
                                            BDRV_O_FORCE_SHARE : 0), &err);
        if (!new_blk) {
            error_prepend(&err, "Could not open new backing file '%s': ",
                          out_baseimg);
            error_report_err(err);
            g_free(path);
            goto out;
        }
        blk_set_enable_write_cache(new_blk, !src_writethrough);
        g_free(path);
    }

    if (!unsafe) {
        if (rebase_copy_differences(blk, new_blk,
                                    rebase_find_in_chain(blk_bs(blk),
                                                         new_blk)) < 0) {
            goto out;
        }
    }

    if (out_baseimg[0] == '\0') {
        out_basefmt = NULL;
        ret = bdrv_change_backing_file(blk_bs(blk), NULL, NULL);
    } else if (!out_basefmt) {
        /* QEMU 7.2 refuses to record a backing file without its format. */
        ret = -EINVAL;
    } else {
        ret = bdrv_change_backing_file(blk_bs(blk), out_baseimg,
                                       out_basefmt);
    }
    if (ret == -ENOSPC) {
        error_report("Could not change the backing file to '%s': No space "
                     "left in the file header", out_baseimg);
    } else if (ret == -EINVAL && out_baseimg[0] && !out_basefmt) {
        error_report("Could not change the backing file to '%s': backing "
                     "format must be specified", out_baseimg);
    } else if (ret < 0) {
        error_report("Could not change the backing file to '%s': %s",
                     out_baseimg, strerror(-ret));
    }
    ret = ret < 0 ? 1 : 0;
    img_progress_print(100, 0);

out:
    img_progress_end();
    if (new_blk) {
        blk_unref(new_blk);
    }
    if (blk) {
        blk_unref(blk);
    }
    return ret;
}
