/*
 * qemu-img: create, inspect, check and convert disk images.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Options, output and exit codes follow QEMU 7.2's qemu-img so scripts
 * and the qemu-iotests expectations work unchanged.  This file has main,
 * the help text and the options common to all subcommands; info, map,
 * check and measure are in qemu-img-info.c, create and amend in
 * qemu-img-create.c, the others in qemu-img-<command>.c, and shared
 * helpers in qemu-img-common.c.
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block-backend.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

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
