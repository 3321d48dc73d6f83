/*
 * libFuzzer target: "qemu-img check -r all" on the fuzz input (a qcow2
 * image file), then a second check as qemu-img does after repairing,
 * and a read and a write on the repaired image.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t buf[4096];
    BdrvCheckResult res;
    BlockBackend *blk;
    int64_t len;

    fuzz_init();
    fuzzmem_load(data, size);
    blk = fuzz_open_qcow2(BDRV_O_RDWR | BDRV_O_CHECK);
    if (!blk) {
        fuzzmem_assert_unchanged(data, size);
        return 0;
    }
    memset(&res, 0, sizeof(res));
    if (bdrv_check(blk_bs(blk), &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS) == 0) {
        memset(&res, 0, sizeof(res));
        bdrv_check(blk_bs(blk), &res, 0);
    }
    len = blk_getlength(blk);
    if (len > 0) {
        blk_pread(blk, 0, MIN((int64_t)sizeof(buf), len), buf, 0);
        memset(buf, 0x5a, sizeof(buf));
        blk_pwrite(blk, 0, MIN((int64_t)sizeof(buf), len), buf, 0);
    }
    blk_unref(blk);
    return 0;
}
