/*
 * qemu-img commit: write the data of an image into its backing file and
 * (unless -d or -b) empty the image afterwards.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU runs a block job for this; here a plain loop copies what the top
 * image has allocated.  Only the immediate backing file can be the base.
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

#define COMMIT_BUF_SIZE (2 * MiB)

/* Copy what @top has allocated itself into @base. */
static int commit_copy(BlockBackend *top, BlockBackend *base)
{
    BlockDriverState *bs = blk_bs(top);
    int64_t size, base_size, offset, n;
    uint8_t *buf;
    int ret = 0;

    size = blk_getlength(top);
    base_size = blk_getlength(base);
    if (size < 0 || base_size < 0) {
        error_report("Could not get the image sizes: %s",
                     strerror(-(size < 0 ? size : base_size)));
        return -1;
    }
    if (base_size < size) {
        Error *err = NULL;

        /* The top's data beyond the base's end must fit in the base. */
        if (blk_truncate(base, size, false, PREALLOC_MODE_OFF, 0,
                         &err) < 0) {
            error_report_err(err);
            return -1;
        }
    }

    buf = qemu_blockalign(bs, COMMIT_BUF_SIZE);
    for (offset = 0; offset < size; offset += n) {
        int st;

        n = MIN(COMMIT_BUF_SIZE, size - offset);
        st = bdrv_block_status(bs, offset, n, &n, NULL, NULL);
        if (st < 0) {
            ret = st;
            break;
        }
        if (st & BDRV_BLOCK_ALLOCATED) {
            if (st & BDRV_BLOCK_ZERO) {
                ret = blk_pwrite_zeroes(base, offset, n, BDRV_REQ_MAY_UNMAP);
            } else {
                ret = blk_pread(top, offset, n, buf, 0);
                if (ret == 0) {
                    ret = blk_pwrite(base, offset, n, buf, 0);
                }
            }
            if (ret < 0) {
                break;
            }
        }
        img_progress_print((float)n * 100 / size, 100);
    }
    qemu_vfree(buf);
    if (ret == 0) {
        ret = blk_flush(base);
    }
    if (ret < 0) {
        error_report("Block job failed: %s", strerror(-ret));
        return -1;
    }
    return 0;
}

/*
 * Make every cluster of the top unallocated so that reads go to the
 * base again.  Formats that cannot (no make_empty) keep their data, as
 * with QEMU.
 */
static int commit_empty_top(BlockBackend *blk, const char *filename)
{
    int r = bdrv_make_empty(blk_bs(blk));

    if (r < 0 && r != -ENOTSUP) {
        error_report("Could not empty %s: %s", filename, strerror(-r));
        return -1;
    }
    return 0;
}

int img_commit(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { NULL, 0, NULL, 0 }
    };
    const char *filename, *cache = "writeback";
    const char *base = NULL;
    bool progress = false, drop = false;
    bool writethrough = false;
    BlockBackend *blk = NULL, *base_blk = NULL;
    BlockDriverState *bs;
    g_autofree char *base_path = NULL;
    Error *err = NULL;
    int flags, c, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":f:ht:b:dpqr:", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 't':
            cache = optarg;
            break;
        case 'b':
            base = optarg;
            /* As QEMU: committing into a named base keeps the top image. */
            drop = true;
            break;
        case 'd':
            drop = true;
            break;
        case 'p':
            progress = true;
            break;
        case 'r':
            /* Accepted; there is no job to rate limit. */
            if (img_cvtnum("rate limit", optarg) < 0) {
                return 1;
            }
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

    /*
     * The top is opened with its backing chain (read-only), as QEMU
     * does, so that a chain in use elsewhere is refused the same way.
     * The chain is then dropped so that the base can be opened writable
     * on its own (our own read-only open of it would refuse that).
     */
    flags = BDRV_O_RDWR | BDRV_O_UNMAP;
    if (tool_parse_cache_mode(cache, &flags, &writethrough) < 0) {
        error_report("Invalid cache option: %s", cache);
        return 1;
    }
    blk = img_open(co.image_opts, filename, co.fmt, flags, writethrough, co.quiet,
                   false);
    if (!blk) {
        return 1;
    }
    bs = blk_bs(blk);
    img_progress_init(progress, 1.0);
    img_progress_print(0, 100);

    if (!bs->backing_file[0]) {
        error_report("Image does not have a backing file");
        goto out;
    }
    base_path = bdrv_get_full_backing_filename(bs, &err);
    if (!base_path) {
        error_report_err(err);
        goto out;
    }
    if (base) {
        g_autofree char *want = bdrv_get_full_backing_filename_from_filename(
            bdrv_get_filename(bs), base, NULL);
        g_autofree char *want_real = want ? realpath(want, NULL) : NULL;
        g_autofree char *have_real = realpath(base_path, NULL);

        if (!want_real || !have_real || strcmp(want_real, have_real)) {
            error_report("Did not find '%s' in the backing chain of '%s'",
                         base, filename);
            goto out;
        }
    }

    {
        QDict *options = qdict_new();

        if (bs->backing_format[0]) {
            qdict_put_str(options, "driver", bs->backing_format);
        }
        bdrv_unref_child(bs, bs->backing);
        base_blk = blk_new_open(base_path, options, BDRV_O_RDWR, &err);
        if (!base_blk) {
            /* QEMU's reopen of the base read-write words it bare. */
            error_report_err(err);
            goto out;
        }
        blk_set_enable_write_cache(base_blk, !writethrough);
    }

    if (commit_copy(blk, base_blk) < 0) {
        goto out;
    }
    if (!drop && commit_empty_top(blk, filename) < 0) {
        goto out;
    }
    img_progress_print(100, 0);
    img_progress_end();
    qprintf(co.quiet, "Image committed.\n");
    ret = 0;
    goto done;

out:
    img_progress_end();
done:
    if (base_blk) {
        blk_unref(base_blk);
    }
    blk_unref(blk);
    return ret;
}
