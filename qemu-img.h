/*
 * qemu-img: helpers shared by the subcommand source files.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_IMG_H
#define QEMU_IMG_H

#include "block/block-backend.h"

/* getopt_long return values for long-only options (above any char). */
enum {
    OPTION_OUTPUT = 256,
    OPTION_BACKING_CHAIN,
    OPTION_IMAGE_OPTS,
    OPTION_TARGET_IMAGE_OPTS,
    OPTION_START_OFFSET,
    OPTION_MAX_LENGTH,
    OPTION_SIZE,
    OPTION_PREALLOCATION,
    OPTION_SHRINK,
    OPTION_FLUSH_INTERVAL,
    OPTION_NO_DRAIN,
    OPTION_PATTERN,
    OPTION_FORCE,
    OPTION_TARGET_IS_ZERO,
    OPTION_ZONE_APPEND,
    OPTION_OBJECT,
};

typedef enum OutputFormat {
    OFORMAT_JSON,
    OFORMAT_HUMAN,
} OutputFormat;

/* Print "qemu-img: <msg>" plus the --help hint and exit(1). */
void QEMU_NORETURN QEMU_PRINTF(1, 2) img_error_exit(const char *fmt, ...);
/* Handle getopt's '?' and ':' results (never return). */
void QEMU_NORETURN img_bad_option(int c, char **argv);
/* Print the full help text and exit(0). */
void QEMU_NORETURN img_help(void);

/* Options every subcommand that has them spells and handles the same way. */
typedef struct ImgCommonOpts {
    const char *fmt;        /* -f */
    bool quiet;             /* -q */
    bool force_share;       /* -U, --force-share */
    bool image_opts;        /* --image-opts */
} ImgCommonOpts;

/*
 * Handle getopt result @c if it is common: '?' and ':' (bad option, never
 * returns), -h (help, never returns), -f, -q, -U, --image-opts and
 * --object (accepted and ignored: we have no objects; QEMU uses them for
 * secrets of encrypted images, which we do not open).  Returns false for
 * any other option.  A subcommand without one of these leaves it out of
 * its option string, so getopt never returns it.
 */
bool img_common_option(int c, char **argv, ImgCommonOpts *o);

/* printf unless @quiet. */
void QEMU_PRINTF(2, 3) qprintf(bool quiet, const char *fmt, ...);

/* Size for option @name (min 0, max INT64_MAX): tool_cvtnum_full(). */
int64_t img_cvtnum(const char *name, const char *value);

/* "human"/"json"; exits with QEMU's message otherwise. */
OutputFormat img_parse_output_format(const char *arg);

/* Open an image as the subcommands do; reports errors itself. */
BlockBackend *img_open(bool image_opts, const char *filename,
                       const char *fmt, int flags, bool writethrough,
                       bool quiet, bool force_share);

/* "-o help" handling shared by create and convert. */
bool img_has_help_option(const char *list);
int img_print_block_option_help(const char *filename, const char *fmt);
/* Append an -o argument to the accumulated list; exits on a malformed one. */
char *img_accumulate_options(char *options, const char *optarg);

/* "    (12.34/100%)\r" progress output, as qemu-img -p prints it. */
void img_progress_init(bool enabled, float min_skip);
void img_progress_print(float delta, int max);
void img_progress_end(void);

/*
 * Copy of @o whose dictionaries are ordered the way QEMU's QDict
 * iterates (by hash bucket), so JSON and human output list keys in the
 * same order as QEMU's tools.
 */
QObject *img_qobj_qemu_order(const QObject *o);
/* Print @o (in QEMU's key order) as pretty JSON and a newline. */
void img_print_json(const QObject *o);

/*
 * Compare in 512-byte steps: returns whether the first step differs and
 * sets *pnum to the length of the prefix with the same result.
 */
int img_compare_buffers(const uint8_t *a, const uint8_t *b, int64_t bytes,
                        int64_t *pnum);

int img_amend(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_check(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_snapshot(int argc, char **argv);

#endif
