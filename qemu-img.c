/*
 * qemu-img: create, inspect, check and convert disk images.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Options, output and exit codes follow QEMU 7.2's qemu-img so scripts
 * and the qemu-iotests expectations work unchanged.  This file has main,
 * help, create, compare, resize, amend and rebase; info, map, check and
 * measure are in qemu-img-info.c, the others in qemu-img-<command>.c and
 * shared helpers in qemu-img-common.c.
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

#define IMG_COMPARE_BUF_SIZE (2 * MiB)

/* ---------------------------------------------------------------------- */
/* help / version                                                          */
/* ---------------------------------------------------------------------- */

static void print_version(void)
{
    printf("qemu-img version " QEMU_VERSION QEMU_PKGVERSION "\n"
           "Copyright (c) 2026 The zoned-qcow2 project authors\n");
}

static void print_format_name(void *opaque, const char *name)
{
    GPtrArray *names = opaque;

    g_ptr_array_add(names, (gpointer)name);
}

static int cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void img_help(void)
{
    GPtrArray *names = g_ptr_array_new();
    guint i;

    print_version();
    printf(
"usage: qemu-img [standard options] command [command options]\n"
"Disk image utility: create, inspect, check, convert and benchmark images\n"
"\n"
"    '-h', '--help'       display this help and exit\n"
"    '-V', '--version'    output version information and exit\n"
"\n"
"Command syntax:\n"
"  amend [--image-opts] [-q] [-f fmt] [-t cache] [--force] -o options filename\n"
"  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [--zone-append] [-U] filename\n"
"  check [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename\n"
"  commit [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename\n"
"  compare [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2\n"
"  convert [--image-opts] [--target-image-opts] [--target-is-zero] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-m num_coroutines] [-W] filename [filename2 [...]] output_filename\n"
"  create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]\n"
"  dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
"  info [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename\n"
"  map [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename\n"
"  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--image-opts] [-f fmt] filename]\n"
"  rebase [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
"  resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size\n"
"  snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename\n"
"\n"
"Command parameters:\n"
"  'filename' names a disk image; with --image-opts it is a list of\n"
"    key=value block options instead\n"
"  'fmt' is the image format; when omitted it is probed from the contents\n"
"  'cache' is how the output image is cached: 'none', 'writeback' (the\n"
"    default except for convert), 'writethrough', 'directsync' or 'unsafe'\n"
"    (the default for convert)\n"
"  'src_cache' is the same for input images\n"
"  'size' is a byte count; the suffixes 'k' or 'K' (1024), 'M', 'G', 'T',\n"
"    'P' and 'E' multiply by further powers of 1024; 'b' is ignored\n"
"  'output_filename' and 'output_fmt' name the destination image and format\n"
"  'options' is a comma separated name=value list of format options; use\n"
"    -o help to list those of a format\n"
"  '-c' writes the target compressed (formats with compression only)\n"
"  '-u' is the unsafe mode: rebase only rewrites the backing file name\n"
"    without comparing contents, create does not open the backing file\n"
"  '-h' with or without a command prints this help\n"
"  '-p' shows progress (some commands only)\n"
"  '-q' is quiet: nothing but errors is printed\n"
"  '-S' is the run of zero bytes (default 4k) that convert leaves\n"
"    unallocated in the target; 0 fully allocates the target\n"
"  '--output' selects human or json output\n"
"  '-n' makes convert write into an existing target instead of creating it\n"
"\n"
"Parameters to check subcommand:\n"
"  '-r' repairs what the check found: 'leaks' only leaked clusters,\n"
"       'all' every kind of error (riskier)\n"
"\n"
"Parameters to convert subcommand:\n"
"  '-m' is the number of requests copied in parallel (default 8)\n"
"  '-W' lets writes to the target complete out of order\n"
"\n"
"Parameters to dd subcommand:\n"
"  'bs=BYTES' is the size of each copied block (default: 512)\n"
"  'count=N' limits the input to N blocks\n"
"  'if=FILE' and 'of=FILE' name the input and the (new) output image\n"
"  'skip=N' starts copying N blocks into the input\n"
"\n"
"Parameters to snapshot subcommand:\n"
"  'snapshot' names the snapshot to create, apply or delete\n"
"  '-a' reverts the image to a snapshot (ID or name)\n"
"  '-c' creates a snapshot of the current contents\n"
"  '-d' deletes a snapshot (by name)\n"
"  '-l' lists the snapshots of the image\n"
"\n"
"Parameters to compare subcommand:\n"
"  '-f' first image format\n"
"  '-F' second image format\n"
"  '-s' strict mode: images of different size or allocation differ\n"
"\n"
"Supported formats:");
    bdrv_iterate_format(print_format_name, names);
    g_ptr_array_sort(names, cmp_names);
    for (i = 0; i < names->len; i++) {
        printf(" %s", (const char *)g_ptr_array_index(names, i));
    }
    printf("\n\n");
    g_ptr_array_free(names, true);
    exit(EXIT_SUCCESS);
}

bool img_common_option(int c, char **argv, ImgCommonOpts *o)
{
    switch (c) {
    case '?':
    case ':':
        img_bad_option(c, argv);
    case 'h':
        img_help();
    case 'f':
        o->fmt = optarg;
        return true;
    case 'q':
        o->quiet = true;
        return true;
    case 'U':
        o->force_share = true;
        return true;
    case OPTION_IMAGE_OPTS:
        o->image_opts = true;
        return true;
    case OPTION_OBJECT:
        return true;
    default:
        return false;
    }
}

/* ---------------------------------------------------------------------- */
/* create                                                                  */
/* ---------------------------------------------------------------------- */

static int img_create(int argc, char **argv)
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

/* ---------------------------------------------------------------------- */
/* compare                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Compare in 512-byte steps: returns whether the first step differs and
 * sets *pnum to the length of the prefix with the same result.
 */
static int compare_buffers(const uint8_t *a, const uint8_t *b, int64_t bytes,
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

static int img_compare(int argc, char **argv)
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
                diff = compare_buffers(buf1, buf2, chunk, &pnum);
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

/* ---------------------------------------------------------------------- */
/* resize                                                                  */
/* ---------------------------------------------------------------------- */

static const QemuOptDesc resize_opt_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { NULL }
};
static const QemuOptsList resize_opts = {
    .name = "resize",
    .desc = resize_opt_desc,
};

static int img_resize(int argc, char **argv)
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
        case OPTION_OBJECT:
            /* Secrets of encrypted images: none to create here. */
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

/* ---------------------------------------------------------------------- */
/* amend                                                                   */
/* ---------------------------------------------------------------------- */

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

static int img_amend(int argc, char **argv)
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

/* ---------------------------------------------------------------------- */
/* rebase                                                                  */
/* ---------------------------------------------------------------------- */

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
    buf_old = qemu_blockalign(bs, IMG_COMPARE_BUF_SIZE);
    buf_new = qemu_blockalign(bs, IMG_COMPARE_BUF_SIZE);

    /*
     * As QEMU, every chunk that is compared advances the progress by one
     * buffer's share of the image (chunks cut short by allocation too).
     */
    step = size ? 100.0f / (size / MIN(size, IMG_COMPARE_BUF_SIZE)) : 0;
    for (offset = 0; offset < size; offset += n) {
        int64_t pos, pnum;

        n = MIN(IMG_COMPARE_BUF_SIZE, size - offset);
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
            if (compare_buffers(buf_old + pos, buf_new + pos, n - pos,
                                &pnum)) {
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

static int img_rebase(int argc, char **argv)
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

/* ---------------------------------------------------------------------- */
/* main                                                                    */
/* ---------------------------------------------------------------------- */

typedef struct ImgCmd {
    const char *name;
    int (*handler)(int argc, char **argv);
} ImgCmd;

static const ImgCmd img_cmds[] = {
    { "amend", img_amend },
    { "bench", img_bench },
    { "check", img_check },
    { "commit", img_commit },
    { "compare", img_compare },
    { "convert", img_convert },
    { "create", img_create },
    { "dd", img_dd },
    { "info", img_info },
    { "map", img_map },
    { "measure", img_measure },
    { "rebase", img_rebase },
    { "resize", img_resize },
    { "snapshot", img_snapshot },
};

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "trace", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 }
    };
    const char *cmdname;
    size_t i;
    int c;

    error_set_progname("qemu-img");
    qemu_init_main_loop();
    bdrv_init();

    if (argc < 2) {
        img_error_exit("Not enough arguments");
    }
    /* '+': stop at the command name; its options are the command's. */
    while ((c = getopt_long(argc, argv, "+:hVT:", long_options,
                            NULL)) != -1) {
        switch (c) {
        case '?':
        case ':':
            img_bad_option(c, argv);
        case 'h':
            img_help();
        case 'V':
            print_version();
            return 0;
        case 'T':
            /* Tracing is not supported; accepted for compatibility. */
            break;
        }
    }
    if (optind >= argc) {
        img_error_exit("Not enough arguments");
    }
    cmdname = argv[optind];
    argv += optind;
    argc -= optind;
    /* Restart getopt for the command's own options (glibc: optind 0). */
    optind = 0;

    for (i = 0; i < ARRAY_SIZE(img_cmds); i++) {
        if (!strcmp(cmdname, img_cmds[i].name)) {
            return img_cmds[i].handler(argc, argv);
        }
    }
    img_error_exit("Command not found: %s", cmdname);
}
