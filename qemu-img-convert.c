/*
 * qemu-img convert: copy one or more (concatenated) images into a new or
 * existing target, skipping zero ranges and copying with several
 * coroutines in parallel.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

#define CONVERT_BUF_SIZE      (2 * MiB)
#define CONVERT_MAX_BUF_SIZE  (16 * MiB)   /* largest -S accepted */
#define CONVERT_MAX_COROUTINES 16

typedef enum ChunkStatus {
    CHUNK_DATA,
    CHUNK_ZERO,
    CHUNK_BACKING,      /* left to the target's backing file: no write */
} ChunkStatus;

typedef struct ConvertState {
    BlockBackend **src;
    int64_t *src_size;      /* bytes of each source */
    int64_t *src_start;     /* where each source starts in the target */
    int src_num;
    int64_t total_size;     /* sum of sector-aligned source sizes */

    BlockBackend *target;
    bool target_zero_init;  /* unwritten target ranges read as zero */
    bool target_has_backing; /* -B: copy only the source's top layer */
    bool compressed;
    bool wr_in_order;
    int64_t min_sparse;     /* 0: no zero detection, write everything */
    int64_t chunk_size;     /* largest piece one coroutine copies */

    int64_t next_offset;    /* next byte to hand to a coroutine */
    int64_t wr_offs;        /* in-order mode: next byte to be written */
    CoQueue wr_queue;       /* coroutines waiting for their turn */
    CoMutex lock;           /* held while a chunk is being picked */
    int running;
    int ret;

    int64_t progress_total;
    int64_t progress_done;
} ConvertState;

/*
 * Pick the next chunk: [*offset, *offset + *bytes) inside one source,
 * with one status.  Returns 0 at the end, 1 with a chunk, -errno.
 */
static int coroutine_fn convert_next_chunk(ConvertState *s, int *src_idx,
                                           int64_t *offset, int64_t *bytes,
                                           ChunkStatus *status)
{
    int64_t off = s->next_offset, local, n, pnum = 0;
    int i, ret;

    if (off >= s->total_size) {
        return 0;
    }
    for (i = s->src_num - 1; i > 0 && s->src_start[i] > off; i--) {
        /* find the source containing @off */
    }
    local = off - s->src_start[i];
    if (local >= s->src_size[i]) {
        /* Padding up to the next 512-byte boundary reads as zeroes. */
        n = (i + 1 < s->src_num ? s->src_start[i + 1] : s->total_size) - off;
        *status = CHUNK_ZERO;
        goto done;
    }
    n = MIN(s->chunk_size, s->src_size[i] - local);
    if (s->compressed) {
        /* Compressed clusters are written whole: stay cluster aligned. */
        n = MIN(n, QEMU_ALIGN_UP(off + 1, s->chunk_size) - off);
    }

    if (s->min_sparse == 0 && !s->target_has_backing) {
        *status = CHUNK_DATA;
    } else {
        /*
         * As QEMU: with a backing file for the target, only what the
         * source's top layer allocates is copied; the rest is left to
         * the new backing file.
         */
        if (s->target_has_backing) {
            ret = bdrv_co_block_status(blk_bs(s->src[i]), local, n, &pnum,
                                       NULL, NULL);
        } else {
            ret = bdrv_co_block_status_above(blk_bs(s->src[i]), NULL, local,
                                             n, &pnum, NULL, NULL, NULL);
        }
        if (ret < 0) {
            error_report("error while reading block status at offset %"
                         PRId64 ": %s", local, strerror(-ret));
            return ret;
        }
        if (ret & BDRV_BLOCK_ZERO) {
            *status = s->min_sparse ? CHUNK_ZERO : CHUNK_DATA;
        } else if (!(ret & BDRV_BLOCK_DATA) && s->target_has_backing) {
            *status = CHUNK_BACKING;
        } else {
            /* Data, or unallocated without backing: read it. */
            *status = CHUNK_DATA;
        }
        if (s->compressed && pnum < n) {
            /* A partly zero cluster is read and written as a whole. */
            *status = CHUNK_DATA;
        } else {
            n = MIN(n, pnum);
        }
    }

done:
    *src_idx = i;
    *offset = off;
    *bytes = n;
    s->next_offset = off + n;
    return 1;
}

/* Make [offset, offset+bytes) of the target read as zeroes. */
static int coroutine_fn convert_write_zeroes(ConvertState *s, int64_t offset,
                                             int64_t bytes)
{
    if (s->target_zero_init) {
        return 0;
    }
    return blk_co_pwrite_zeroes(s->target, offset, bytes,
                                BDRV_REQ_MAY_UNMAP);
}

/* Write a buffer, leaving out aligned runs of zeroes (-S). */
static int coroutine_fn convert_write_sparse(ConvertState *s, int64_t offset,
                                             uint8_t *buf, int64_t bytes)
{
    int64_t pos = 0;
    int ret;

    while (pos < bytes) {
        int64_t run_start = pos;
        bool zero = false;

        /* Grow a run of pieces (aligned to min_sparse) of equal kind. */
        while (pos < bytes) {
            int64_t end = QEMU_ALIGN_UP(offset + pos + 1, s->min_sparse) -
                          offset;
            bool piece_zero;

            end = MIN(end, bytes);
            piece_zero = buffer_is_zero(buf + pos, end - pos);
            if (pos == run_start) {
                zero = piece_zero;
            } else if (piece_zero != zero) {
                break;
            }
            pos = end;
        }

        if (zero) {
            ret = convert_write_zeroes(s, offset + run_start,
                                       pos - run_start);
        } else {
            QEMUIOVector qiov;

            qemu_iovec_init_buf(&qiov, buf + run_start, pos - run_start);
            ret = blk_co_pwritev(s->target, offset + run_start,
                                 pos - run_start, &qiov, 0);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static int coroutine_fn convert_write(ConvertState *s, int64_t offset,
                                      int64_t bytes, ChunkStatus status,
                                      uint8_t *buf)
{
    QEMUIOVector qiov;

    if (status == CHUNK_BACKING) {
        return 0;
    }
    if (status == CHUNK_ZERO) {
        return convert_write_zeroes(s, offset, bytes);
    }
    if (s->compressed) {
        if (buffer_is_zero(buf, bytes)) {
            return convert_write_zeroes(s, offset, bytes);
        }
        qemu_iovec_init_buf(&qiov, buf, bytes);
        return blk_co_pwritev(s->target, offset, bytes, &qiov,
                              BDRV_REQ_WRITE_COMPRESSED);
    }
    if (s->min_sparse) {
        return convert_write_sparse(s, offset, buf, bytes);
    }
    qemu_iovec_init_buf(&qiov, buf, bytes);
    return blk_co_pwritev(s->target, offset, bytes, &qiov, 0);
}

static void coroutine_fn convert_co_worker(void *opaque)
{
    ConvertState *s = opaque;
    uint8_t *buf = qemu_blockalign(blk_bs(s->target), s->chunk_size);

    while (s->ret == 0) {
        ChunkStatus status;
        int64_t offset, bytes;
        int idx, ret;

        /* Picking may yield in block status: keep chunks in order. */
        qemu_co_mutex_lock(&s->lock);
        ret = convert_next_chunk(s, &idx, &offset, &bytes, &status);
        qemu_co_mutex_unlock(&s->lock);
        if (ret <= 0) {
            if (ret < 0) {
                s->ret = ret;
            }
            break;
        }

        if (status == CHUNK_DATA) {
            QEMUIOVector qiov;

            qemu_iovec_init_buf(&qiov, buf, bytes);
            ret = blk_co_preadv(s->src[idx], offset - s->src_start[idx],
                                bytes, &qiov, 0);
            if (ret < 0) {
                /* Like QEMU, name the position in the output. */
                error_report("error while reading at byte %" PRId64 ": %s",
                             offset, strerror(-ret));
                s->ret = ret;
                break;
            }
        }

        /* Without -W, writes go out strictly in offset order. */
        while (s->wr_in_order && s->ret == 0 && s->wr_offs != offset) {
            qemu_co_queue_wait(&s->wr_queue, NULL);
        }
        if (s->ret) {
            break;
        }

        ret = convert_write(s, offset, bytes, status, buf);
        if (ret < 0) {
            error_report("error while writing at byte %" PRId64 ": %s",
                         offset, strerror(-ret));
            s->ret = ret;
            break;
        }
        if (s->wr_in_order) {
            s->wr_offs = offset + bytes;
            qemu_co_queue_restart_all(&s->wr_queue);
        }
        if (status == CHUNK_DATA && s->progress_total) {
            s->progress_done += bytes;
            img_progress_print(100.0 * s->progress_done / s->progress_total,
                               0);
        }
    }

    /* Let coroutines waiting for their turn see the error or the end. */
    qemu_co_queue_restart_all(&s->wr_queue);
    qemu_vfree(buf);
    s->running--;
}

/* Bytes that will be read (not known to be zero), for the progress bar. */
static int64_t convert_count_data(ConvertState *s)
{
    int64_t total = 0;
    int i;

    if (s->min_sparse == 0) {
        return s->total_size;
    }
    for (i = 0; i < s->src_num; i++) {
        int64_t off = 0, pnum;

        while (off < s->src_size[i]) {
            int ret = bdrv_block_status_above(blk_bs(s->src[i]), NULL, off,
                                              s->src_size[i] - off, &pnum,
                                              NULL, NULL, NULL);
            if (ret < 0) {
                return s->total_size;
            }
            if (!(ret & BDRV_BLOCK_ZERO)) {
                total += pnum;
            }
            off += pnum;
        }
    }
    return total;
}

static int convert_do_copy(ConvertState *s, int num_coroutines)
{
    AioContext *ctx = blk_get_aio_context(s->target);
    int i;

    if (s->compressed) {
        BlockDriverInfo bdi;

        if (bdrv_get_info(blk_bs(s->target), &bdi) < 0 ||
            bdi.cluster_size <= 0) {
            error_report("could not get block driver info");
            return -EINVAL;
        }
        s->chunk_size = bdi.cluster_size;
    } else {
        BlockDriverInfo bdi;

        s->chunk_size = CONVERT_BUF_SIZE;
        /*
         * Leaving a zero run unwritten inside a cluster that gets
         * allocated anyway saves nothing; QEMU skips whole clusters only.
         */
        if (s->min_sparse && bdrv_get_info(blk_bs(s->target), &bdi) == 0 &&
            bdi.cluster_size > s->min_sparse &&
            bdi.cluster_size <= CONVERT_BUF_SIZE) {
            s->min_sparse = bdi.cluster_size;
        }
    }

    s->progress_total = convert_count_data(s);
    qemu_co_queue_init(&s->wr_queue);
    qemu_co_mutex_init(&s->lock);
    s->running = num_coroutines;
    for (i = 0; i < num_coroutines; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(convert_co_worker, s));
    }
    while (s->running > 0) {
        aio_poll(ctx, true);
    }
    if (s->ret == 0) {
        s->ret = blk_flush(s->target);
        if (s->ret < 0) {
            error_report("error while flushing the target: %s",
                         strerror(-s->ret));
        }
    }
    return s->ret;
}

/*
 * Create the target from the format's and protocol's creation options,
 * -o, and the size and backing file decided here (as QEMU, the size
 * always comes from the sources, even if -o names one).
 */
static int convert_create_target(BlockDriver *drv, const char *filename,
                                 const char *fmt, const char *options,
                                 const char *backing, const char *backing_fmt,
                                 int64_t size)
{
    BlockDriver *proto_drv;
    QemuOptsList *list = NULL;
    QemuOpts *opts = NULL;
    Error *err = NULL;
    int ret = -1;

    if (!drv->create_opts) {
        error_report("Format driver '%s' does not support image creation",
                     drv->format_name);
        return -1;
    }
    proto_drv = bdrv_find_protocol(filename, true, &err);
    if (!proto_drv) {
        error_report_err(err);
        return -1;
    }
    if (!proto_drv->create_opts) {
        error_report("Protocol driver '%s' does not support image creation",
                     proto_drv->format_name);
        return -1;
    }
    list = qemu_opts_append(NULL, drv->create_opts);
    list = qemu_opts_append(list, proto_drv->create_opts);
    opts = qemu_opts_create(list);
    if (options && !qemu_opts_do_parse(opts, options, &err)) {
        error_report_err(err);
        goto out;
    }
    qemu_opt_set_number(opts, "size", size, NULL);
    if (backing) {
        if (!drv->supports_backing) {
            error_report("Backing file not supported for file format '%s'",
                         fmt);
            goto out;
        }
        qemu_opt_set(opts, "backing_file", backing, NULL);
        if (backing_fmt) {
            qemu_opt_set(opts, "backing_fmt", backing_fmt, NULL);
        }
    }
    if (qemu_opt_get(opts, "backing_file") &&
        !qemu_opt_get(opts, "backing_fmt")) {
        error_report("Use of backing file requires explicit backing format");
        goto out;
    }
    if (bdrv_create(drv, filename, opts, &err) < 0) {
        error_prepend(&err, "%s: error while converting %s: ", filename, fmt);
        error_report_err(err);
        goto out;
    }
    ret = 0;

out:
    qemu_opts_del(opts);
    qemu_opts_free(list);
    return ret;
}

/*
 * With -B the target is opened without its backing file (recorded only,
 * never read here).  QEMU opens that backing chain read-only with the
 * target, so a backing file in use elsewhere is refused the same way:
 * hold it likewise until the end (*pblk, NULL if there is none).
 * Returns 0, or -1 after reporting the error.
 */
static int convert_hold_backing(BlockBackend *target,
                                const char *out_filename,
                                BlockBackend **pblk)
{
    BlockDriverState *bs = blk_bs(target);
    g_autofree char *path = NULL;
    Error *err = NULL;
    QDict *options;

    *pblk = NULL;
    if (!bs->backing_file[0]) {
        return 0;
    }
    path = bdrv_get_full_backing_filename(bs, &err);
    if (path) {
        options = qdict_new();
        if (bs->backing_format[0]) {
            qdict_put_str(options, "driver", bs->backing_format);
        }
        *pblk = blk_new_open(path, options, 0, &err);
    }
    if (!*pblk) {
        error_prepend(&err, "Could not open '%s': Could not open backing "
                      "file: ", out_filename);
        error_report_err(err);
        return -1;
    }
    return 0;
}

int img_convert(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "target-image-opts", no_argument, NULL, OPTION_TARGET_IMAGE_OPTS },
        { "target-is-zero", no_argument, NULL, OPTION_TARGET_IS_ZERO },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    const char *out_fmt = NULL, *cache = "unsafe";
    const char *src_cache = "writeback";
    const char *out_baseimg = NULL, *backing_fmt = NULL, *out_filename;
    char *options = NULL;
    bool progress = false, skip_create = false;
    bool tgt_image_opts = false;
    bool target_is_zero = false, writethrough, src_writethrough = false;
    bool copy_range = false, progress_started = false;
    int num_coroutines = 8, flags, src_flags = BDRV_O_NO_SHARE;
    ConvertState s = { .wr_in_order = true, .min_sparse = 4 * KiB };
    BlockBackend *backing_blk = NULL;
    BlockDriver *drv = NULL;
    int64_t sval;
    int c, i, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WU",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 'O':
            out_fmt = optarg;
            break;
        case 'B':
            out_baseimg = optarg;
            break;
        case 'C':
            /* Accepted, but the copy is always done by reads and writes. */
            copy_range = true;
            break;
        case 'c':
            s.compressed = true;
            break;
        case 'F':
            backing_fmt = optarg;
            break;
        case 'o':
            options = img_accumulate_options(options, optarg);
            break;
        case 'l':
            error_report("Snapshots are not supported");
            goto out;
        case 'S':
            sval = img_cvtnum("buffer size for sparse output", optarg);
            if (sval < 0) {
                goto out;
            }
            if (!QEMU_IS_ALIGNED(sval, BDRV_SECTOR_SIZE) ||
                sval > CONVERT_MAX_BUF_SIZE) {
                error_report("Invalid buffer size for sparse output "
                             "specified. Valid sizes are multiples of %llu "
                             "up to %llu. Select 0 to disable sparse "
                             "detection (fully allocates output).",
                             BDRV_SECTOR_SIZE,
                             (unsigned long long)CONVERT_MAX_BUF_SIZE);
                goto out;
            }
            s.min_sparse = sval;
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
        case 'n':
            skip_create = true;
            break;
        case 'm':
            if (qemu_strtoi(optarg, NULL, 0, &num_coroutines) < 0 ||
                num_coroutines < 1 ||
                num_coroutines > CONVERT_MAX_COROUTINES) {
                error_report("Invalid number of coroutines. Allowed number of"
                             " coroutines is between 1 and %d",
                             CONVERT_MAX_COROUTINES);
                goto out;
            }
            break;
        case 'W':
            s.wr_in_order = false;
            break;
        case OPTION_TARGET_IMAGE_OPTS:
            tgt_image_opts = true;
            break;
        case OPTION_TARGET_IS_ZERO:
            target_is_zero = true;
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }

    if (!out_fmt && !tgt_image_opts) {
        out_fmt = "raw";
    }
    if (co.quiet) {
        progress = false;
    }
    if (tgt_image_opts && !skip_create) {
        error_report("--target-image-opts requires use of -n flag");
        goto out;
    }
    if (skip_create && options) {
        error_report("-o has no effect when skipping image creation");
        goto out;
    }
    if (target_is_zero && !skip_create) {
        error_report("--target-is-zero requires use of -n flag");
        goto out;
    }
    if (copy_range && s.compressed) {
        error_report("Cannot enable copy offloading when -c is used");
        goto out;
    }

    s.src_num = argc - optind - 1;
    out_filename = s.src_num >= 1 ? argv[argc - 1] : NULL;

    if (options && img_has_help_option(options)) {
        if (out_fmt) {
            ret = img_print_block_option_help(out_filename, out_fmt);
        } else {
            error_report("Option help requires a format be specified");
        }
        goto out;
    }
    if (s.src_num < 1) {
        error_report("Must specify image file name");
        goto out;
    }
    /* From here on every exit ends the (possibly empty) progress line. */
    img_progress_init(progress, 1.0);
    img_progress_print(0, 100);
    progress_started = true;

    if (tool_parse_cache_mode(src_cache, &src_flags,
                              &src_writethrough) < 0) {
        error_report("Invalid source cache option: %s", src_cache);
        goto out;
    }

    /* Open the sources; each starts at a 512-byte boundary, as in QEMU. */
    s.src = g_new0(BlockBackend *, s.src_num);
    s.src_size = g_new0(int64_t, s.src_num);
    s.src_start = g_new0(int64_t, s.src_num);
    for (i = 0; i < s.src_num; i++) {
        s.src[i] = img_open(co.image_opts, argv[optind + i], co.fmt, src_flags,
                            src_writethrough, co.quiet, co.force_share);
        if (!s.src[i]) {
            goto out;
        }
        s.src_size[i] = blk_getlength(s.src[i]);
        if (s.src_size[i] < 0) {
            error_report("Could not get size of %s: %s", argv[optind + i],
                         strerror(-s.src_size[i]));
            goto out;
        }
        s.src_start[i] = s.total_size;
        s.total_size += QEMU_ALIGN_UP(s.src_size[i], BDRV_SECTOR_SIZE);
    }

    if (!skip_create) {
        drv = bdrv_find_format(out_fmt);
        if (!drv) {
            error_report("Unknown file format '%s'", out_fmt);
            goto out;
        }
        if (s.compressed && !drv->bdrv_co_pwritev_compressed_part) {
            error_report("Compression not supported for this file format");
            goto out;
        }
        if (convert_create_target(drv, out_filename, out_fmt, options,
                                  out_baseimg, backing_fmt,
                                  s.total_size) < 0) {
            goto out;
        }
    }

    flags = BDRV_O_RDWR;
    if (s.min_sparse) {
        flags |= BDRV_O_UNMAP;
    }
    if (out_baseimg) {
        /* The backing file is only recorded, never read here. */
        flags |= BDRV_O_NO_BACKING;
    }
    if (tool_parse_cache_mode(cache, &flags, &writethrough) < 0) {
        error_report("Invalid cache option: %s", cache);
        goto out;
    }
    s.target = img_open(tgt_image_opts, out_filename,
                        skip_create ? (tgt_image_opts ? NULL : out_fmt)
                                    : out_fmt,
                        flags, writethrough, co.quiet, false);
    if (!s.target) {
        goto out;
    }
    if (out_baseimg &&
        convert_hold_backing(s.target, out_filename, &backing_blk) < 0) {
        goto out;
    }
    if (skip_create && s.compressed &&
        !blk_bs(s.target)->drv->bdrv_co_pwritev_compressed_part) {
        error_report("Compression not supported for this file format");
        goto out;
    }
    if (skip_create) {
        int64_t tsize = blk_getlength(s.target);

        if (tsize < 0) {
            error_report("Failed to get size of the target image: %s",
                         strerror(-tsize));
            goto out;
        }
        if (tsize < s.total_size) {
            error_report("output file is smaller than input file");
            goto out;
        }
    }

    /*
     * A freshly created image without a backing file reads as zeroes,
     * so zero ranges need no writes; with -n only --target-is-zero says so.
     */
    s.target_zero_init = skip_create ? target_is_zero : !out_baseimg;
    s.target_has_backing = out_baseimg != NULL;

    ret = convert_do_copy(&s, num_coroutines) < 0 ? 1 : 0;
    if (ret == 0 && s.compressed &&
        blk_pwrite_compressed(s.target, 0, NULL, 0) < 0) {
        /* As QEMU: an empty compressed write ends the stream. */
        error_report("error while closing the compressed stream");
        ret = 1;
    }
    if (ret == 0) {
        /* QEMU shows 100% twice: once for the copy, once when done. */
        if (s.progress_done < s.progress_total || !s.progress_total) {
            img_progress_print(100, 0);
        }
        img_progress_print(100, 0);
    }

out:
    if (progress_started) {
        img_progress_end();
    }
    if (backing_blk) {
        blk_unref(backing_blk);
    }
    if (s.target) {
        blk_unref(s.target);
    }
    for (i = 0; s.src && i < s.src_num; i++) {
        if (s.src[i]) {
            blk_unref(s.src[i]);
        }
    }
    g_free(s.src);
    g_free(s.src_size);
    g_free(s.src_start);
    g_free(options);
    return ret;
}
