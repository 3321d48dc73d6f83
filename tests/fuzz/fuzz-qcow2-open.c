/*
 * libFuzzer target: the fuzz input is a qcow2 image file.  Open it
 * read-write, then run what "qemu-img info" and "qemu-img check" (no
 * repair) run, the zone report of a zoned image, a read and a write,
 * and close it (which flushes the caches and clears the dirty bit).
 *
 * The last 8 input bytes steer the request offsets, so the fuzzer can
 * move them without touching the header.
 *
 * Images with an active L1 table of more than 64K entries are skipped
 * here (not in fuzz-qcow2-repair): open and check walk the whole table,
 * tens of milliseconds per input that the fuzzer then keeps choosing.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "fuzz-common.h"
#include "block/block_int.h"
#include "qemu/bswap.h"

#define IO_LEN 4096
#define MAX_L1_ENTRIES 65536
#define HEADER_L1_SIZE 36   /* offset of the big-endian l1_size */

static void run_info(BlockDriverState *bs)
{
    Error *err = NULL;
    QObject *info = bdrv_query_image_info(bs, &err);
    GString *out;

    if (!info) {
        error_free(err);
        return;
    }
    out = g_string_new(NULL);
    bdrv_image_info_print_human(info, out);
    qobj_to_json(info, true, out);
    g_string_free(out, true);
    qobj_unref(info);
}

static void run_zones(BlockDriverState *bs, uint64_t seed)
{
    BlockZoneDescriptor zones[4];
    unsigned int nr = ARRAY_SIZE(zones);
    int64_t len = bdrv_getlength(bs);

    if (bs->bl.zoned == BLK_Z_NONE || len <= 0) {
        return;
    }
    bdrv_zone_report(bs, seed % len, &nr, zones);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t buf[IO_LEN];
    BdrvCheckResult res;
    BlockBackend *blk;
    uint64_t seed = 0;
    int64_t len, off;

    fuzz_init();
    if (size >= HEADER_L1_SIZE + 4 &&
        ldbe32_p(data + HEADER_L1_SIZE) > MAX_L1_ENTRIES) {
        return 0;
    }
    if (size >= sizeof(seed)) {
        memcpy(&seed, data + size - sizeof(seed), sizeof(seed));
    }
    fuzzmem_load(data, size);
    blk = fuzz_open_qcow2(BDRV_O_RDWR);
    if (!blk) {
        fuzzmem_assert_unchanged(data, size);
        return 0;
    }
    run_info(blk_bs(blk));
    memset(&res, 0, sizeof(res));
    bdrv_check(blk_bs(blk), &res, 0);
    run_zones(blk_bs(blk), seed);

    len = blk_getlength(blk);
    if (len > 0) {
        off = seed % len & ~(int64_t)511;
        blk_pread(blk, off, MIN(IO_LEN, len - off), buf, 0);
        memset(buf, 0xa5, sizeof(buf));
        off = (seed >> 32) % len & ~(int64_t)511;
        blk_pwrite(blk, off, MIN(IO_LEN, len - off), buf, 0);
        blk_pread(blk, 0, MIN(IO_LEN, len), buf, 0);
    }
    blk_unref(blk);
    return 0;
}
