/*
 * qemu-io: run I/O commands against a block device image.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: qemu-io [OPTIONS] [-c CMD]... [FILE].  Commands given with -c
 * run in order; without any, commands are read from stdin after a
 * "qemu-io> " prompt.  The exit status is 1 if any command failed.
 */
#include "qemu/osdep.h"
#include <getopt.h>
#include <signal.h>
#include "qemu-io.h"
#include "qemu/cutils.h"
#include "qemu/tools-common.h"

static BlockBackend *qemuio_blk;
static bool quit_requested;
static bool image_opts;
static const char *progname = "qemu-io";

/* -c commands, in order. */
static char **cmdline;
static int ncmdline;

/*
 * Open @name (or only @opts with --image-opts) as the current image.
 * @opts is consumed.  Returns 0, or 1 after reporting the error.
 */
static int openfile(const char *name, int flags, bool writethrough,
                    bool force_share, QDict *opts)
{
    Error *err = NULL;

    if (qemuio_blk) {
        error_report("file open already, try 'help close'");
        qdict_free(opts);
        return 1;
    }
    if (flags & BDRV_O_SNAPSHOT) {
        error_report("can't open%s%s: snapshot mode (-s) is not supported",
                     name ? " device " : "", name ? name : "");
        qdict_free(opts);
        return 1;
    }
    if (force_share) {
        const char *fs;

        if (!opts) {
            opts = qdict_new();
        }
        fs = qdict_get_try_str(opts, "force-share");
        if (fs && strcmp(fs, "on")) {
            error_report("-U conflicts with image options");
            qdict_free(opts);
            return 1;
        }
        qdict_put_str(opts, "force-share", "on");
        /* Sharing writes with other users of the image is never safe. */
        if ((flags & BDRV_O_RDWR) &&
            g_strcmp0(qdict_get_try_str(opts, "read-only"), "on")) {
            error_report("can't open%s%s: force-share=on can only be used "
                         "with read-only images", name ? " device " : "",
                         name ? name : "");
            qdict_free(opts);
            return 1;
        }
    }

    qemuio_blk = blk_new_open(name, opts, flags, &err);
    if (!qemuio_blk) {
        error_prepend(&err, "can't open%s%s: ", name ? " device " : "",
                      name ? name : "");
        error_report_err(err);
        return 1;
    }
    blk_set_enable_write_cache(qemuio_blk, !writethrough);
    return 0;
}

static int close_f(BlockBackend *blk, int argc, char **argv)
{
    qemuio_wait_aio();
    blk_unref(qemuio_blk);
    qemuio_blk = NULL;
    return 0;
}

static const QemuIOCommand close_cmd = {
    .name = "close",
    .altname = "c",
    .cfunc = close_f,
    .oneline = "close the current open file",
};

static void open_help(void)
{
    printf(
"\n"
" Opens an image for the other commands to work on.\n"
"\n"
" Example:\n"
" 'open -n -o driver=raw /tmp/data' - open a raw image read-write with\n"
"                                      O_DIRECT\n"
"\n"
" -r, -- read-only\n"
" -s, -- snapshot mode (not supported)\n"
" -C, -- copy-on-read (accepted, no effect)\n"
" -n, -- bypass the host page cache, same as -t none\n"
" -U, -- do not lock the image against other users\n"
" -k, -- Linux native AIO, same as -i native\n"
" -i, -- AIO back end: threads, native or io_uring\n"
" -t, -- cache mode (none, writeback, writethrough, directsync, unsafe)\n"
" -d, -- discard mode (ignore/off or unmap/on)\n"
" -o, -- block driver options, key=value[,key=value...]\n"
"\n");
}

static int open_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand open_cmd = {
    .name = "open",
    .altname = "o",
    .cfunc = open_f,
    .argmin = 1,
    .argmax = -1,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .args = "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
    .oneline = "open the file specified by path",
    .help = open_help,
};

/* Merge "key=value,..." into *opts (created on first use). */
static bool add_opts(QDict **opts, const char *str)
{
    Error *err = NULL;
    QDict *parsed = qdict_parse_keyval(str, NULL, &err);

    if (!parsed) {
        error_report_err(err);
        return false;
    }
    if (!*opts) {
        *opts = qdict_new();
    }
    qdict_join(*opts, parsed, true);
    qdict_free(parsed);
    return true;
}

static int open_f(BlockBackend *blk, int argc, char **argv)
{
    int flags = BDRV_O_UNMAP;
    bool writethrough = true, readonly = false, force_share = false;
    QDict *opts = NULL;
    int c, ret;

    optind = 0;
    while ((c = getopt(argc, argv, "snCro:ki:t:d:U")) != -1) {
        switch (c) {
        case 's':
            flags |= BDRV_O_SNAPSHOT;
            break;
        case 'n':
            flags |= BDRV_O_NOCACHE;
            writethrough = false;
            break;
        case 'C':
            /* Copy-on-read is not implemented; accepted for scripts. */
            break;
        case 'r':
            readonly = true;
            break;
        case 'k':
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 't':
            if (tool_parse_cache_mode(optarg, &flags, &writethrough) < 0) {
                error_report("Invalid cache option: %s", optarg);
                goto fail;
            }
            break;
        case 'd':
            if (tool_parse_discard_flags(optarg, &flags) < 0) {
                error_report("Invalid discard option: %s", optarg);
                goto fail;
            }
            break;
        case 'i':
            if (tool_parse_aio(optarg, &flags) < 0) {
                error_report("Invalid aio option: %s", optarg);
                goto fail;
            }
            break;
        case 'o':
            if (image_opts) {
                printf("--image-opts and 'open -o' are mutually "
                       "exclusive\n");
                goto fail;
            }
            if (!add_opts(&opts, optarg)) {
                goto fail;
            }
            break;
        case 'U':
            force_share = true;
            break;
        default:
            qemuio_command_usage(&open_cmd);
            goto fail;
        }
    }

    if (!readonly) {
        flags |= BDRV_O_RDWR;
    }

    if (image_opts && optind == argc - 1) {
        Error *err = NULL;
        QDict *parsed = tool_parse_image_opts(argv[optind], false, &err);

        if (!parsed) {
            error_report_err(err);
            goto fail;
        }
        qdict_free(opts);
        opts = parsed;
        optind++;
    }

    if (optind == argc - 1) {
        ret = openfile(argv[optind], flags, writethrough, force_share, opts);
    } else if (optind == argc) {
        ret = openfile(NULL, flags, writethrough, force_share, opts);
    } else {
        qemuio_command_usage(&open_cmd);
        goto fail;
    }
    return ret ? -EINVAL : 0;

fail:
    qdict_free(opts);
    return -EINVAL;
}

static void reopen_help(void)
{
    printf(
"\n"
" Changes the options of the open image (not supported by this block\n"
" layer: the options are checked, then the command fails).\n"
"\n"
" -r, -- switch to read-only\n"
" -w, -- switch to read-write\n"
" -c, -- new cache mode\n"
" -o, -- new block driver options (as for 'open')\n"
"\n");
}

static int reopen_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand reopen_cmd = {
    .name = "reopen",
    .cfunc = reopen_f,
    .argmin = 0,
    .argmax = -1,
    .args = "[(-r|-w)] [-c cache] [-o options]",
    .oneline = "reopens an image with new options",
    .help = reopen_help,
};

static int reopen_f(BlockBackend *blk, int argc, char **argv)
{
    bool has_rw = false, writethrough = false;
    int c, flags = 0;

    optind = 0;
    while ((c = getopt(argc, argv, "c:o:rw")) != -1) {
        switch (c) {
        case 'c':
            if (tool_parse_cache_mode(optarg, &flags, &writethrough) < 0) {
                error_report("Invalid cache option: %s", optarg);
                return -EINVAL;
            }
            break;
        case 'o':
            break;
        case 'r':
        case 'w':
            if (has_rw) {
                error_report("Only one -r/-w option may be given");
                return -EINVAL;
            }
            has_rw = true;
            break;
        default:
            qemuio_command_usage(&reopen_cmd);
            return -EINVAL;
        }
    }
    if (optind != argc) {
        qemuio_command_usage(&reopen_cmd);
        return -EINVAL;
    }
    /* The block layer offers no reopen of a live graph. */
    error_report("Cannot reopen: %s", strerror(ENOTSUP));
    return -ENOTSUP;
}

static int quit_f(BlockBackend *blk, int argc, char **argv)
{
    quit_requested = true;
    return 0;
}

static const QemuIOCommand quit_cmd = {
    .name = "quit",
    .altname = "q",
    .cfunc = quit_f,
    .argmin = -1,
    .argmax = -1,
    .flags = QEMUIO_CMD_GLOBAL,
    .oneline = "exit the program",
};

static void usage(void)
{
    printf(
"Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
"Exercise the block layer by running I/O commands on a disk image\n"
"\n"
"  --object OBJECTDEF   (not supported)\n"
"  --image-opts         the file argument is a key=value option string\n"
"  -c, --cmd STRING     run this command (may be repeated; no prompt)\n"
"  -f, --format FMT     image format (default: probe)\n"
"  -r, --read-only      open the image read-only\n"
"  -s, --snapshot       snapshot mode (not supported)\n"
"  -n, --nocache        bypass the host page cache, same as -t none\n"
"  -C, --copy-on-read   copy-on-read (accepted, no effect)\n"
"  -m, --misalign       use misaligned I/O buffers\n"
"  -k, --native-aio     Linux native AIO, same as -i native\n"
"  -i, --aio=MODE       AIO back end: threads, native or io_uring\n"
"  -t, --cache=MODE     cache mode: none, writeback, writethrough,\n"
"                       directsync or unsafe\n"
"  -d, --discard=MODE   discard mode: ignore/off or unmap/on\n"
"  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
"                       tracing options (accepted, ignored)\n"
"  -U, --force-share    do not lock the image against other users\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n"
"\n"
"Run '%s -c help' for the list of commands.\n",
           progname, progname);
}

static const char *prompt(void)
{
    static char buf[64];

    if (!buf[0]) {
        snprintf(buf, sizeof(buf), "%s> ", progname);
    }
    return buf;
}

/* Process completions that are already due, without blocking. */
static void poll_pending(void)
{
    AioContext *ctx = qemu_get_aio_context();

    while (aio_poll(ctx, false)) {
        /* keep going while there is progress */
    }
}

static int run_one(const char *line)
{
    return qemuio_command(qemuio_blk, line);
}

static int command_loop(void)
{
    int last_error = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int i, ret;

    if (cmdline) {
        for (i = 0; !quit_requested && i < ncmdline; i++) {
            ret = run_one(cmdline[i]);
            if (ret < 0) {
                last_error = ret;
            }
        }
        return last_error;
    }

    while (!quit_requested) {
        poll_pending();
        printf("%s", prompt());
        fflush(stdout);
        len = getline(&line, &cap, stdin);
        if (len < 0) {
            break;
        }
        if (len > 0 && line[len - 1] == '\n') {
            line[len - 1] = '\0';
        }
        ret = run_one(line);
        if (ret < 0) {
            last_error = ret;
        }
    }
    free(line);
    return last_error;
}

enum {
    OPTION_OBJECT = 256,
    OPTION_IMAGE_OPTS,
};

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "snapshot", no_argument, NULL, 's' },
        { "nocache", no_argument, NULL, 'n' },
        { "copy-on-read", no_argument, NULL, 'C' },
        { "misalign", no_argument, NULL, 'm' },
        { "native-aio", no_argument, NULL, 'k' },
        { "aio", required_argument, NULL, 'i' },
        { "discard", required_argument, NULL, 'd' },
        { "cache", required_argument, NULL, 't' },
        { "trace", required_argument, NULL, 'T' },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    int flags = BDRV_O_UNMAP;
    bool writethrough = true, readonly = false, force_share = false;
    const char *format = NULL;
    QDict *opts = NULL;
    int c, ret;

    signal(SIGPIPE, SIG_IGN);
    progname = g_path_get_basename(argv[0]);
    error_set_progname(progname);

    while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmki:t:T:U",
                            long_opts, NULL)) != -1) {
        switch (c) {
        case 's':
            flags |= BDRV_O_SNAPSHOT;
            break;
        case 'n':
            flags |= BDRV_O_NOCACHE;
            writethrough = false;
            break;
        case 'C':
            break;
        case 'd':
            if (tool_parse_discard_flags(optarg, &flags) < 0) {
                error_report("Invalid discard option: %s", optarg);
                exit(1);
            }
            break;
        case 'f':
            format = optarg;
            break;
        case 'c':
            cmdline = g_renew(char *, cmdline, ncmdline + 1);
            cmdline[ncmdline++] = optarg;
            break;
        case 'r':
            readonly = true;
            break;
        case 'm':
            qemuio_misalign = true;
            break;
        case 'k':
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'i':
            if (tool_parse_aio(optarg, &flags) < 0) {
                error_report("Invalid aio option: %s", optarg);
                exit(1);
            }
            break;
        case 't':
            if (tool_parse_cache_mode(optarg, &flags, &writethrough) < 0) {
                error_report("Invalid cache option: %s", optarg);
                exit(1);
            }
            break;
        case 'T':
            /* No trace backends: accepted so scripts keep working. */
            break;
        case 'V':
            printf("%s version " QEMU_VERSION QEMU_PKGVERSION "\n"
                   "Copyright (c) 2026 The zoned-qcow2 project authors\n",
                   progname);
            exit(0);
        case 'h':
            usage();
            exit(0);
        case 'U':
            force_share = true;
            break;
        case OPTION_OBJECT:
            error_report("--object is not supported");
            exit(1);
        case OPTION_IMAGE_OPTS:
            image_opts = true;
            break;
        default:
            usage();
            exit(1);
        }
    }

    if (argc - optind > 1) {
        usage();
        exit(1);
    }
    if (format && image_opts) {
        error_report("--image-opts and -f are mutually exclusive");
        exit(1);
    }

    qemu_init_main_loop();
    bdrv_init();

    qemuio_add_command(&quit_cmd);
    qemuio_add_command(&open_cmd);
    qemuio_add_command(&close_cmd);
    qemuio_add_command(&reopen_cmd);

    if (!readonly) {
        flags |= BDRV_O_RDWR;
    }

    if (argc - optind == 1) {
        const char *name = argv[optind];

        if (image_opts) {
            Error *err = NULL;

            opts = tool_parse_image_opts(name, false, &err);
            if (!opts) {
                error_report_err(err);
                exit(1);
            }
            name = NULL;
        } else if (format) {
            opts = qdict_new();
            qdict_put_str(opts, "driver", format);
        }
        if (openfile(name, flags, writethrough, force_share, opts)) {
            exit(1);
        }
    }

    ret = command_loop();

    /* Requests started by aio_* still print their results before exit. */
    qemuio_wait_aio();
    if (qemuio_blk) {
        blk_drain(qemuio_blk);
        blk_unref(qemuio_blk);
    }
    fflush(stdout);
    return ret < 0 ? 1 : 0;
}
