/*
 * qemu-img bench: issue a stream of reads or writes at a fixed queue
 * depth and report the run time.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * This is what the project is measured with (instructions per request
 * under callgrind), so the request loop does nothing beyond what QEMU's
 * does: one preallocated buffer and qiov, and a completion callback that
 * submits the next request.
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

typedef struct BenchData {
    BlockBackend *blk;
    uint64_t image_size;
    bool write;
    int bufsize;
    int step;
    int nrreq;          /* queue depth */
    int n;              /* requests not yet completed */
    int flush_interval;
    bool drain_on_flush;
    uint8_t *buf;
    QEMUIOVector qiov;

    int in_flight;
    bool in_flush;
    uint64_t offset;

    /*
     * --zone-append (ours, not QEMU's): each write is a zone append to the
     * zone containing its offset.  The result offset of a request in
     * flight lives in a slot taken from a free stack of @nrreq slots.
     */
    bool zone_append;
    uint64_t zone_size;
    struct BenchAppendSlot *slots;
    struct BenchAppendSlot **free_slots;
    int nr_free_slots;
} BenchData;

typedef struct BenchAppendSlot {
    BenchData *b;
    int64_t offset;
} BenchAppendSlot;

static void bench_cb(void *opaque, int ret);

static void bench_append_cb(void *opaque, int ret)
{
    BenchAppendSlot *slot = opaque;
    BenchData *b = slot->b;

    b->free_slots[b->nr_free_slots++] = slot;
    bench_cb(b, ret);
}

static void bench_undrained_flush_cb(void *opaque, int ret)
{
    if (ret < 0) {
        error_report("Failed flush request: %s", strerror(-ret));
        exit(EXIT_FAILURE);
    }
}

static void bench_cb(void *opaque, int ret)
{
    BenchData *b = opaque;

    if (ret < 0) {
        error_report("Failed request: %s", strerror(-ret));
        exit(EXIT_FAILURE);
    }

    if (b->in_flush) {
        /* A drained flush finished: the queue may fill up again. */
        b->in_flush = false;
    } else if (b->in_flight > 0) {
        int remaining = b->n - b->in_flight;

        b->n--;
        b->in_flight--;

        if (b->flush_interval && remaining % b->flush_interval == 0) {
            /* With draining, the flush waits for the last request. */
            if (!b->in_flight || !b->drain_on_flush) {
                if (b->drain_on_flush) {
                    b->in_flush = true;
                    blk_aio_flush(b->blk, bench_cb, b);
                } else {
                    blk_aio_flush(b->blk, bench_undrained_flush_cb, b);
                }
            }
            if (b->drain_on_flush) {
                return;
            }
        }
    }

    while (b->n > b->in_flight && b->in_flight < b->nrreq) {
        int64_t offset = b->offset;

        /*
         * Account the request before submitting it so that a completion
         * running early sees a consistent state.
         */
        b->in_flight++;
        b->offset += b->step;
        b->offset %= b->image_size;
        if (b->zone_append) {
            BenchAppendSlot *slot = b->free_slots[--b->nr_free_slots];

            slot->offset = offset & ~(int64_t)(b->zone_size - 1);
            blk_aio_zone_append(b->blk, &slot->offset, &b->qiov, 0,
                                bench_append_cb, slot);
        } else if (b->write) {
            blk_aio_pwritev(b->blk, offset, &b->qiov, 0, bench_cb, b);
        } else {
            blk_aio_preadv(b->blk, offset, &b->qiov, 0, bench_cb, b);
        }
    }
}

int img_bench(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "flush-interval", required_argument, NULL, OPTION_FLUSH_INTERVAL },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "pattern", required_argument, NULL, OPTION_PATTERN },
        { "no-drain", no_argument, NULL, OPTION_NO_DRAIN },
        { "zone-append", no_argument, NULL, OPTION_ZONE_APPEND },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    const char *filename;
    bool quiet = false, is_write = false;
    bool writethrough = false, drain_on_flush = true;
    bool zone_append = false;
    int count = 75000, depth = 64, pattern = 0, flush_interval = 0;
    int64_t offset = 0, bufsize = 4096, step = 0, image_size, t0, t1;
    BlockBackend *blk;
    BenchData data = { 0 };
    int flags = 0;
    int c, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 'c': {
            unsigned int v;

            if (qemu_strtoui(optarg, NULL, 0, &v) < 0 || v > INT_MAX) {
                error_report("Invalid request count specified");
                return 1;
            }
            count = v;
            break;
        }
        case 'd': {
            unsigned int v;

            /* QEMU hangs on depth 0; refuse it instead. */
            if (qemu_strtoui(optarg, NULL, 0, &v) < 0 || v > INT_MAX ||
                v == 0) {
                error_report("Invalid queue depth specified");
                return 1;
            }
            depth = v;
            break;
        }
        case 'n':
            /* As in QEMU: -n selects native AIO (it predates -i). */
            flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'i':
            if (tool_parse_aio(optarg, &flags) < 0) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'o':
            offset = img_cvtnum("offset", optarg);
            if (offset < 0) {
                return 1;
            }
            break;
        case 'q':
            /* Accepted; bench prints its two lines regardless, as QEMU. */
            quiet = true;
            break;
        case 's':
            bufsize = tool_cvtnum_full("buffer size", optarg, 0, INT_MAX);
            if (bufsize < 0) {
                return 1;
            }
            break;
        case 'S':
            step = tool_cvtnum_full("step_size", optarg, 0, INT_MAX);
            if (step < 0) {
                return 1;
            }
            break;
        case 't':
            if (tool_parse_cache_mode(optarg, &flags, &writethrough) < 0) {
                error_report("Invalid cache mode");
                return 1;
            }
            break;
        case 'w':
            flags |= BDRV_O_RDWR;
            is_write = true;
            break;
        case OPTION_PATTERN: {
            unsigned int v;

            if (qemu_strtoui(optarg, NULL, 0, &v) < 0 || v > 0xff) {
                error_report("Invalid pattern byte specified");
                return 1;
            }
            pattern = v;
            break;
        }
        case OPTION_FLUSH_INTERVAL: {
            unsigned int v;

            if (qemu_strtoui(optarg, NULL, 0, &v) < 0 || v > INT_MAX) {
                error_report("Invalid flush interval specified");
                return 1;
            }
            flush_interval = v;
            break;
        }
        case OPTION_NO_DRAIN:
            drain_on_flush = false;
            break;
        case OPTION_ZONE_APPEND:
            zone_append = true;
            flags |= BDRV_O_RDWR;
            is_write = true;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    if (optind != argc - 1) {
        img_error_exit("Expecting one image file name");
    }
    filename = argv[argc - 1];

    if (!is_write && flush_interval) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    if (flush_interval && flush_interval < depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }

    blk = img_open(co.image_opts, filename, co.fmt, flags, writethrough, quiet,
                   co.force_share);
    if (!blk) {
        return 1;
    }
    image_size = blk_getlength(blk);
    if (image_size < 0) {
        error_report("Could not get the image size: %s",
                     strerror(-image_size));
        goto out;
    }
    if (image_size == 0) {
        /* The offset wraps modulo the size: nothing sensible to do. */
        error_report("Cannot benchmark an empty image");
        goto out;
    }

    data = (BenchData) {
        .blk = blk,
        .image_size = image_size,
        .bufsize = bufsize,
        .step = step ? step : bufsize,
        .nrreq = depth,
        .n = count,
        .offset = offset,
        .write = is_write,
        .flush_interval = flush_interval,
        .drain_on_flush = drain_on_flush,
    };
    if (zone_append) {
        const BlockLimits *bl = bdrv_get_limits(blk_bs(blk));
        int i;

        if (bl->zoned == BLK_Z_NONE || !bl->zone_size) {
            error_report("--zone-append needs a zoned image");
            goto out;
        }
        data.zone_append = true;
        data.zone_size = bl->zone_size;
        data.slots = g_new0(BenchAppendSlot, depth);
        data.free_slots = g_new(BenchAppendSlot *, depth);
        for (i = 0; i < depth; i++) {
            data.slots[i].b = &data;
            data.free_slots[i] = &data.slots[i];
        }
        data.nr_free_slots = depth;
    }
    printf("Sending %d %s requests, %d bytes each, %d in parallel "
           "(starting at offset %" PRId64 ", step size %d)\n",
           data.n, data.zone_append ? "zone append" :
           data.write ? "write" : "read", data.bufsize, data.nrreq,
           (int64_t)data.offset, data.step);
    if (flush_interval) {
        printf("Sending flush every %d requests\n", flush_interval);
    }

    /* Every request of the run shares this one buffer. */
    data.buf = qemu_blockalign(blk_bs(blk), MAX(data.bufsize, 1));
    memset(data.buf, pattern, data.bufsize);
    qemu_iovec_init_buf(&data.qiov, data.buf, data.bufsize);

    t0 = get_clock_ns();
    bench_cb(&data, 0);
    while (data.n > 0) {
        aio_poll(blk_get_aio_context(blk), true);
    }
    t1 = get_clock_ns();
    printf("Run completed in %3.3f seconds.\n", (t1 - t0) / 1e9);
    ret = 0;

out:
    g_free(data.slots);
    g_free(data.free_slots);
    qemu_vfree(data.buf);
    blk_unref(blk);
    return ret;
}
