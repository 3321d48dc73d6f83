/*
 * Stand-in for libFuzzer's main in ordinary (gcc) builds: run the
 * target once on every file named on the command line or found in a
 * directory named there.  The regression inputs of tests/fuzz/regress
 * are replayed this way by "make check", under ASan too.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "fuzz-common.h"

static int replay_file(const char *path)
{
    g_autofree char *data = NULL;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, NULL)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    gint64 start = g_get_monotonic_time();

    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    fprintf(stderr, "replay: %s (%zu bytes) %.3f ms\n", path, (size_t)len,
            (g_get_monotonic_time() - start) / 1000.0);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, failed = 0;

    for (int i = 1; i < argc; i++) {
        GDir *dir = g_dir_open(argv[i], 0, NULL);
        const char *name;

        if (!dir) {
            failed |= replay_file(argv[i]);
            files++;
            continue;
        }
        while ((name = g_dir_read_name(dir))) {
            g_autofree char *path = g_build_filename(argv[i], name, NULL);

            failed |= replay_file(path);
            files++;
        }
        g_dir_close(dir);
    }
    fprintf(stderr, "replay: %d inputs\n", files);
    return failed || files == 0;
}
