/*
 * libFuzzer target: qemu-io command lines.  The input is split into
 * lines, each run through qemuio_command() on a fresh small qcow2 image
 * (zoned when the input starts with 'Z'), as "qemu-io -c LINE" would.
 *
 * What a command line could do to the fuzzing process rather than to
 * the image is filtered out: abort, sigraise and sleep are skipped, and
 * so are lines with a number above 1 MiB (the commands allocate their
 * buffers before checking the range), or above 4 KiB with -v (a hex
 * dump of a megabyte costs a second and finds nothing).  The process runs in an empty
 * directory and inputs naming a path ('/') are ignored, so "-s FILE"
 * reads nothing of the host's.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "fuzz-common.h"
#include "qemu-io.h"
#include "qemu/tools-common.h"

#define MAX_LINES 16
#define MAX_NUMBER (1024 * 1024)
#define MAX_NUMBER_DUMP 4096

static GByteArray *image[2];    /* plain, zoned */

static GByteArray *make_image(const char *dir, const char *name,
                              const char *opts)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *contents = NULL;
    Error *err = NULL;
    gsize len;

    if (bdrv_img_create(path, "qcow2", NULL, NULL, opts, 1024 * 1024, 0,
                        true, &err) < 0) {
        error_report_err(err);
        abort();
    }
    if (!g_file_get_contents(path, &contents, &len, NULL)) {
        abort();
    }
    unlink(path);
    return g_byte_array_append(g_byte_array_new(), (guint8 *)contents, len);
}

static void init(void)
{
    g_autofree char *dir = NULL;

    fuzz_init();
    dir = g_dir_make_tmp("fuzz-qemu-io-XXXXXX", NULL);
    if (!dir) {
        abort();
    }
    image[0] = make_image(dir, "plain.qcow2", "cluster_size=4096");
    image[1] = make_image(dir, "zoned.qcow2",
                          "cluster_size=4096,zone.mode=host-managed,"
                          "zone.size=128k,zone.conventional_zones=1,"
                          "zone.max_open_zones=2");
    /* Relative names given to "-s" find nothing here. */
    if (chdir(dir) < 0) {
        abort();
    }
}

static bool line_allowed(const char *line)
{
    g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
    int64_t max = MAX_NUMBER;
    bool first = true;

    for (char **w = words; *w; w++) {
        if (**w == '-' && strchr(*w, 'v')) {
            max = MAX_NUMBER_DUMP;
        }
    }
    for (char **w = words; *w; w++) {
        if (!**w) {
            continue;
        }
        if (first) {
            if (!strcmp(*w, "abort") || !strcmp(*w, "sigraise") ||
                !strcmp(*w, "sleep")) {
                return false;
            }
            first = false;
        }
        /* From the first digit: also "-l1G" style option values. */
        for (const char *p = *w; *p; p++) {
            if (g_ascii_isdigit(*p)) {
                if (tool_cvtnum(p) > max) {
                    return false;
                }
                break;
            }
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool initialized;
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    BlockBackend *blk;
    GByteArray *img;

    if (!initialized) {
        init();
        initialized = true;
    }
    if (memchr(data, '/', size) || memchr(data, '\0', size)) {
        return 0;
    }
    text = g_strndup((const char *)data, size);
    img = image[size > 0 && data[0] == 'Z'];
    fuzzmem_load(img->data, img->len);
    blk = fuzz_open_qcow2(BDRV_O_RDWR | BDRV_O_UNMAP);
    if (!blk) {
        abort();    /* the template image must open */
    }
    lines = g_strsplit(text + (size > 0 && data[0] == 'Z'), "\n", MAX_LINES + 1);
    for (int i = 0; lines[i] && i < MAX_LINES; i++) {
        if (line_allowed(lines[i])) {
            qemuio_command(blk, lines[i]);
        }
    }
    qemuio_wait_aio();
    fflush(stdout);
    blk_unref(blk);
    return 0;
}
