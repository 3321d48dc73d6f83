/*
 * Shared pieces of the libFuzzer targets: an in-memory protocol driver
 * ("fuzzmem") that serves the fuzz input as the image file, and helpers
 * to open a qcow2 node on it.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include "qemu/osdep.h"
#include "block/block-backend.h"

/* The file may grow to this many bytes (writes beyond fail -ENOSPC). */
#define FUZZMEM_MAX_SIZE (16 * 1024 * 1024)

/* Register the drivers, quiet the error reports; idempotent. */
void fuzz_init(void);

/* Make @data the contents of the in-memory file (copied). */
void fuzzmem_load(const uint8_t *data, size_t size);

/*
 * Abort unless the in-memory file still holds exactly @data: an open
 * that refuses an image must not have written to it.
 */
void fuzzmem_assert_unchanged(const uint8_t *data, size_t size);

/*
 * Open the in-memory file as qcow2 with @flags (BDRV_O_*).  Backing
 * files are never opened (BDRV_O_NO_BACKING is forced): a fuzz input
 * must not reach host files.  NULL when the image is refused.
 */
BlockBackend *fuzz_open_qcow2(int flags);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
