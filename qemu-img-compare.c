/*
 * qemu-img compare: do two images show the same content?  -s (strict)
 * also fails on allocation differences.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

#define IMG_COMPARE_BUF_SIZE (2 * MiB)

/* Offset of the first non-zero 512-byte step, or -1 if all zero. */
static int64_t find_nonzero(const uint8_t *buf, int64_t bytes)
{
    int64_t i;

    for (i = 0; i < bytes; i += BDRV_SECTOR_SIZE) {
        if (!buffer_is_zero(buf + i, MIN(bytes - i, BDRV_SECTOR_SIZE))) {
            return i;
        }
    }
    return -1;
}

/* 0 if [offset, offset+bytes) reads as zeroes, 1 if not, 4 on error. */
static int check_empty_range(BlockBackend *blk, int64_t offset, int64_t bytes,
                             const char *filename, uint8_t *buf, bool quiet)
{
    int64_t idx;
    int ret;

    ret = blk_pread(blk, offset, bytes, buf, 0);
    if (ret < 0) {
        error_report("Error while reading offset %" PRId64 " of %s: %s",
                     offset, filename, strerror(-ret));
        return 4;
    }
    idx = find_nonzero(buf, bytes);
    if (idx >= 0) {
        qprintf(quiet, "Content mismatch at offset %" PRId64 "!\n",
                offset + idx);
        return 1;
    }
    return 0;
}

int img_compare(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    const char *fmt1 = NULL, *fmt2 = NULL, *cache = "writeback";
    const char *filename1, *filename2;
    bool strict = false, progress = false;
    bool writethrough = false;
    BlockBackend *blk1 = NULL, *blk2 = NULL;
    uint8_t *buf1 = NULL, *buf2 = NULL;
    int64_t size1, size2, total, offset, chunk;
    int flags = 0;
    int c, ret;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt1 = optarg;
            break;
        case 'F':
            fmt2 = optarg;
            break;
        case 'T':
            cache = optarg;
            break;
        case 'p':
            progress = true;
            break;
        case 's':
            strict = true;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    if (co.quiet) {
        progress = false;
    }
    if (optind != argc - 2) {
        img_error_exit("Expecting two image file names");
    }
    filename1 = argv[optind];
    filename2 = argv[optind + 1];

    /* From here on every exit ends the (possibly empty) progress line. */
    img_progress_init(progress, 2.0);
    /* Exit code 2 for anything that prevents the comparison. */
    ret = 2;
    if (tool_parse_cache_mode(cache, &flags, &writethrough) < 0) {
        error_report("Invalid source cache option: %s", cache);
        goto out;
    }
    blk1 = img_open(co.image_opts, filename1, fmt1, flags, writethrough, co.quiet,
                    co.force_share);
    if (!blk1) {
        goto out;
    }
    blk2 = img_open(co.image_opts, filename2, fmt2, flags, writethrough, co.quiet,
                    co.force_share);
    if (!blk2) {
        goto out;
    }
    img_progress_print(0, 100);

    buf1 = qemu_blockalign(blk_bs(blk1), IMG_COMPARE_BUF_SIZE);
    buf2 = qemu_blockalign(blk_bs(blk2), IMG_COMPARE_BUF_SIZE);
    size1 = blk_getlength(blk1);
    if (size1 < 0) {
        error_report("Can't get size of %s: %s", filename1, strerror(-size1));
        ret = 4;
        goto out;
    }
    size2 = blk_getlength(blk2);
    if (size2 < 0) {
        error_report("Can't get size of %s: %s", filename2, strerror(-size2));
        ret = 4;
        goto out;
    }
    total = MIN(size1, size2);

    if (strict && size1 != size2) {
        qprintf(co.quiet, "Strict mode: Image size mismatch!\n");
        ret = 1;
        goto out;
    }

    for (offset = 0; offset < total; offset += chunk) {
        int64_t pnum1, pnum2;
        int st1, st2;
        bool alloc1, alloc2;

        st1 = bdrv_block_status_above(blk_bs(blk1), NULL, offset,
                                      total - offset, &pnum1, NULL, NULL,
                                      NULL);
        if (st1 < 0) {
            error_report("Sector allocation test failed for %s", filename1);
            ret = 3;
            goto out;
        }
        st2 = bdrv_block_status_above(blk_bs(blk2), NULL, offset,
                                      total - offset, &pnum2, NULL, NULL,
                                      NULL);
        if (st2 < 0) {
            error_report("Sector allocation test failed for %s", filename2);
            ret = 3;
            goto out;
        }
        alloc1 = st1 & BDRV_BLOCK_ALLOCATED;
        alloc2 = st2 & BDRV_BLOCK_ALLOCATED;
        assert(pnum1 > 0 && pnum2 > 0);
        chunk = MIN(pnum1, pnum2);

        /*
         * EOF only says a query reached the end: the runs may simply be
         * of different lengths, and the next step compares the rest.
         */
        if (strict && (st1 & ~BDRV_BLOCK_EOF) != (st2 & ~BDRV_BLOCK_EOF)) {
            qprintf(co.quiet, "Strict mode: Offset %" PRId64
                    " block status mismatch!\n", offset);
            ret = 1;
            goto out;
        }
        if ((st1 & BDRV_BLOCK_ZERO) && (st2 & BDRV_BLOCK_ZERO)) {
            /* Both read as zeroes: nothing to compare. */
        } else if (alloc1 == alloc2) {
            if (alloc1) {
                int64_t pnum;
                int diff;

                chunk = MIN(chunk, IMG_COMPARE_BUF_SIZE);
                ret = blk_pread(blk1, offset, chunk, buf1, 0);
                if (ret < 0) {
                    error_report("Error while reading offset %" PRId64
                                 " of %s: %s", offset, filename1,
                                 strerror(-ret));
                    ret = 4;
                    goto out;
                }
                ret = blk_pread(blk2, offset, chunk, buf2, 0);
                if (ret < 0) {
                    error_report("Error while reading offset %" PRId64
                                 " of %s: %s", offset, filename2,
                                 strerror(-ret));
                    ret = 4;
                    goto out;
                }
                diff = img_compare_buffers(buf1, buf2, chunk, &pnum);
                if (diff || pnum != chunk) {
                    qprintf(co.quiet, "Content mismatch at offset %" PRId64
                            "!\n", offset + (diff ? 0 : pnum));
                    ret = 1;
                    goto out;
                }
            }
        } else {
            chunk = MIN(chunk, IMG_COMPARE_BUF_SIZE);
            if (alloc1) {
                ret = check_empty_range(blk1, offset, chunk, filename1, buf1,
                                        co.quiet);
            } else {
                ret = check_empty_range(blk2, offset, chunk, filename2, buf1,
                                        co.quiet);
            }
            if (ret) {
                goto out;
            }
        }
        img_progress_print((float)chunk * 100 / MAX(size1, size2), 100);
    }

    if (size1 != size2) {
        BlockBackend *blk_over = size1 > size2 ? blk1 : blk2;
        const char *name_over = size1 > size2 ? filename1 : filename2;
        int64_t size_over = MAX(size1, size2);

        qprintf(co.quiet, "Warning: Image size mismatch!\n");
        for (offset = total; offset < size_over; offset += chunk) {
            int st = bdrv_block_status_above(blk_bs(blk_over), NULL, offset,
                                             size_over - offset, &chunk,
                                             NULL, NULL, NULL);
            if (st < 0) {
                error_report("Sector allocation test failed for %s",
                             name_over);
                ret = 3;
                goto out;
            }
            if ((st & BDRV_BLOCK_ALLOCATED) && !(st & BDRV_BLOCK_ZERO)) {
                chunk = MIN(chunk, IMG_COMPARE_BUF_SIZE);
                ret = check_empty_range(blk_over, offset, chunk, name_over,
                                        buf1, co.quiet);
                if (ret) {
                    goto out;
                }
            }
            img_progress_print((float)chunk * 100 / size_over, 100);
        }
    }

    qprintf(co.quiet, "Images are identical.\n");
    ret = 0;

out:
    qemu_vfree(buf1);
    qemu_vfree(buf2);
    if (blk2) {
        blk_unref(blk2);
    }
    if (blk1) {
        blk_unref(blk1);
    }
    img_progress_end();
    return ret;
}
