/*
 * The "blklogwrites" filter driver: passes every request to its "file"
 * child and appends what each completed write, write-zeroes, discard,
 * truncate and flush did to the file to a log, so that a replayer
 * (scripts/powercut/replay.py) can rebuild the file as it could be
 * found after a power cut at any point (docs/powercut.rst).
 *
 *   qemu-io --image-opts driver=qcow2,file.driver=blklogwrites,\
 *       file.file.filename=x.qcow2,file.log-file=x.log
 *
 * Log format (little endian): a 16-byte header, "BLKLOGW1", u32 version
 * (1), u32 0; then records of a 24-byte head, u32 type, u32 0, u64 a,
 * u64 b, followed for WRITE by b bytes of data:
 *
 *   1 WRITE     a = offset, b = length; the data follows
 *   2 ZERO      a = offset, b = length: the range reads as zeroes (the
 *               file grows to a + b if it was shorter)
 *   3 DISCARD   a = offset, b = length: a hole was punched; the part
 *               inside the file reads as zeroes, the size is unchanged
 *   4 FLUSH     a = n: the records with index < n (counting from 0,
 *               the header not counted) completed before this flush
 *               started and are durable now; later ones are not
 *   5 TRUNCATE  a = the file's size after a resize
 *   6 OPENED    a = 0: the copy of the file found at open ends here
 *
 * At open the file's content is recorded first (TRUNCATE to its size,
 * WRITE for every non-zero 1 MiB chunk, FLUSH, OPENED), so a log alone
 * rebuilds every state.  A record is written when the child's request
 * has completed, before the request completes upwards, with one write(2)
 * on an O_APPEND descriptor: the log order is the completion order.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/option.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"

#define BLKLOG_MAGIC     "BLKLOGW1"
#define BLKLOG_VERSION   1
#define BLKLOG_BASE_CHUNK (1024 * 1024)

enum {
    BLKLOG_WRITE = 1,
    BLKLOG_ZERO = 2,
    BLKLOG_DISCARD = 3,
    BLKLOG_FLUSH = 4,
    BLKLOG_TRUNCATE = 5,
    BLKLOG_OPENED = 6,
};

typedef struct BlkLogRecord {
    uint32_t type;
    uint32_t reserved;
    uint64_t a;
    uint64_t b;
} QEMU_PACKED BlkLogRecord;

typedef struct BDRVBlkLogState {
    int fd;
    /* Records written so far: the index of the next one. */
    uint64_t nr_records;
} BDRVBlkLogState;

static const QemuOptDesc blklog_runtime_desc[] = {
    { .name = "log-file", .type = QEMU_OPT_STRING,
      .help = "file the log is written to (created or truncated)" },
    { NULL }
};

static const QemuOptsList blklog_runtime_opts = {
    .name = "blklogwrites",
    .desc = blklog_runtime_desc,
};

static int blklog_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= n;
    }
    return 0;
}

/*
 * Append one record (head and data in one write, so that records never
 * interleave).  @qiov may be NULL for records without data.
 */
static int blklog_append(BDRVBlkLogState *s, uint32_t type, uint64_t a,
                         uint64_t b, QEMUIOVector *qiov, size_t qiov_offset)
{
    size_t data = qiov ? b : 0;
    g_autofree uint8_t *buf = NULL;
    BlkLogRecord rec = {
        .type = cpu_to_le32(type),
        .a = cpu_to_le64(a),
        .b = cpu_to_le64(b),
    };
    int ret;

    if (data > SIZE_MAX - sizeof(rec)) {
        return -EOVERFLOW;
    }
    buf = g_try_malloc(sizeof(rec) + data);
    if (!buf) {
        return -ENOMEM;
    }
    memcpy(buf, &rec, sizeof(rec));
    if (data) {
        qemu_iovec_to_buf(qiov, qiov_offset, buf + sizeof(rec), data);
    }
    ret = blklog_write_all(s->fd, buf, sizeof(rec) + data);
    if (ret == 0) {
        s->nr_records++;
    }
    return ret;
}

/* Record the file as it is now: the state a replay starts from. */
static int coroutine_fn blklog_record_base(BlockDriverState *bs)
{
    BDRVBlkLogState *s = bs->opaque;
    int64_t len = bdrv_co_getlength(bs->file->bs);
    uint8_t *buf;
    QEMUIOVector qiov;
    int64_t off;
    int ret;

    if (len < 0) {
        return len;
    }
    ret = blklog_append(s, BLKLOG_TRUNCATE, len, 0, NULL, 0);
    if (ret < 0) {
        return ret;
    }
    buf = qemu_blockalign(bs->file->bs, BLKLOG_BASE_CHUNK);
    for (off = 0; off < len; off += BLKLOG_BASE_CHUNK) {
        int64_t n = MIN(len - off, BLKLOG_BASE_CHUNK);

        ret = bdrv_co_pread(bs->file, off, n, buf, 0);
        if (ret < 0) {
            goto out;
        }
        if (buffer_is_zero(buf, n)) {
            continue;
        }
        qemu_iovec_init_buf(&qiov, buf, n);
        ret = blklog_append(s, BLKLOG_WRITE, off, n, &qiov, 0);
        if (ret < 0) {
            goto out;
        }
    }
    ret = blklog_append(s, BLKLOG_FLUSH, s->nr_records, 0, NULL, 0);
    if (ret == 0) {
        ret = blklog_append(s, BLKLOG_OPENED, 0, 0, NULL, 0);
    }
out:
    qemu_vfree(buf);
    return ret;
}

static int coroutine_fn blklog_co_open(BlockDriverState *bs, QDict *options,
                                       int flags, Error **errp)
{
    BDRVBlkLogState *s = bs->opaque;
    struct {
        char magic[8];
        uint32_t version;
        uint32_t reserved;
    } QEMU_PACKED head = { .version = cpu_to_le32(BLKLOG_VERSION) };
    QemuOpts *opts;
    const char *path;
    int ret = -EINVAL;

    s->fd = -1;
    opts = qemu_opts_create(&blklog_runtime_opts);
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        goto out;
    }
    path = qemu_opt_get(opts, "log-file");
    if (!path) {
        error_setg(errp, "blklogwrites needs the option 'log-file'");
        goto out;
    }
    bs->file = bdrv_open_child(NULL, options, "file", bs, flags, false, errp);
    if (!bs->file) {
        goto out;
    }
    bs->file->role = BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY;
    pstrcpy(bs->filename, sizeof(bs->filename), bs->file->bs->filename);
    ret = bdrv_refresh_perms(bs, errp);
    if (ret < 0) {
        goto out;
    }

    s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                 0644);
    if (s->fd < 0) {
        ret = -errno;
        error_setg_errno(errp, errno, "Could not open log file '%s'", path);
        goto out;
    }
    memcpy(head.magic, BLKLOG_MAGIC, sizeof(head.magic));
    ret = blklog_write_all(s->fd, &head, sizeof(head));
    if (ret == 0) {
        ret = blklog_record_base(bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write log file '%s'", path);
        goto out;
    }
    /* FUA is not passed down: the generic layer turns it into a flush. */
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    ret = 0;
out:
    if (ret < 0 && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    qemu_opts_del(opts);
    return ret;
}

/* The children are released by the generic layer. */
static void coroutine_fn blklog_co_close(BlockDriverState *bs)
{
    BDRVBlkLogState *s = bs->opaque;

    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* A filter: the users' permissions pass straight to the file. */
static void blklog_child_perm(BlockDriverState *bs, BdrvChild *c,
                              BdrvChildRole role, uint64_t perm,
                              uint64_t shared, uint64_t *nperm,
                              uint64_t *nshared)
{
    bdrv_default_perms(bs, c, BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY,
                       perm, shared, nperm, nshared);
}

static void blklog_refresh_limits(BlockDriverState *bs, Error **errp)
{
    bs->bl = bs->file->bs->bl;
}

static int coroutine_fn blklog_co_preadv_part(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              QEMUIOVector *qiov,
                                              size_t qiov_offset,
                                              BdrvRequestFlags flags)
{
    return bdrv_co_preadv_part(bs->file, offset, bytes, qiov, qiov_offset,
                               flags);
}

/*
 * Writes, zeroes, discards and truncates: logged only when the child
 * completed them (a failed request may have changed the file partly;
 * the replayer cannot know how, and the layers above treat the range
 * as undefined anyway).
 */
static int coroutine_fn blklog_co_pwritev_part(BlockDriverState *bs,
                                               int64_t offset, int64_t bytes,
                                               QEMUIOVector *qiov,
                                               size_t qiov_offset,
                                               BdrvRequestFlags flags)
{
    int ret = bdrv_co_pwritev_part(bs->file, offset, bytes, qiov, qiov_offset,
                                   flags);

    if (ret < 0) {
        return ret;
    }
    return blklog_append(bs->opaque, BLKLOG_WRITE, offset, bytes, qiov,
                         qiov_offset);
}

static int coroutine_fn blklog_co_pwrite_zeroes(BlockDriverState *bs,
                                                int64_t offset, int64_t bytes,
                                                BdrvRequestFlags flags)
{
    int ret = bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);

    if (ret < 0) {
        return ret;
    }
    return blklog_append(bs->opaque, BLKLOG_ZERO, offset, bytes, NULL, 0);
}

static int coroutine_fn blklog_co_pdiscard(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes)
{
    int ret;

    /* A file node without discard=unmap ignores discards: nothing to log. */
    if (!(bs->file->bs->open_flags & BDRV_O_UNMAP)) {
        return 0;
    }
    ret = bdrv_co_pdiscard(bs->file, offset, bytes);
    if (ret < 0) {
        return ret;
    }
    return blklog_append(bs->opaque, BLKLOG_DISCARD, offset, bytes, NULL, 0);
}

static int coroutine_fn blklog_co_truncate(BlockDriverState *bs,
                                           int64_t offset, bool exact,
                                           PreallocMode prealloc,
                                           BdrvRequestFlags flags,
                                           Error **errp)
{
    int64_t len;
    int ret;

    ret = bdrv_co_truncate(bs->file, offset, exact, prealloc, flags, errp);
    if (ret < 0) {
        return ret;
    }
    len = bdrv_co_getlength(bs->file->bs);
    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the file size");
        return len;
    }
    ret = blklog_append(bs->opaque, BLKLOG_TRUNCATE, len, 0, NULL, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write the log");
    }
    return ret;
}

/*
 * Flush the child here rather than leaving it to the generic layer, so
 * that the FLUSH record is written only once the child's flush is done.
 * It covers the records that existed when it started: a write completing
 * while the flush runs may or may not be durable.
 */
static int coroutine_fn blklog_co_flush_to_disk(BlockDriverState *bs)
{
    BDRVBlkLogState *s = bs->opaque;
    uint64_t covered = s->nr_records;
    int ret;

    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        return ret;
    }
    return blklog_append(s, BLKLOG_FLUSH, covered, 0, NULL, 0);
}

static int64_t coroutine_fn blklog_co_getlength(BlockDriverState *bs)
{
    return bdrv_co_getlength(bs->file->bs);
}

/*
 * Contract of every callback: it runs on the node's AioContext thread,
 * the I/O ones in coroutine context; the generic layer has checked and
 * aligned every request (our limits are the child's) and holds an
 * in-flight reference; no lock of ours is needed, as the log descriptor
 * is written with one write(2) per record from that single thread.
 * Returns 0 or the child's (or the log write's) negative errno.  No zone
 * callbacks: the file below a zoned qcow2 image is not zoned itself.
 */
BlockDriver bdrv_blklogwrites = {
    .format_name = "blklogwrites",
    .instance_size = sizeof(BDRVBlkLogState),
    .is_filter = true,
    .bdrv_co_open = blklog_co_open,
    .bdrv_co_close = blklog_co_close,
    .bdrv_child_perm = blklog_child_perm,
    .bdrv_refresh_limits = blklog_refresh_limits,
    .bdrv_co_preadv_part = blklog_co_preadv_part,
    .bdrv_co_pwritev_part = blklog_co_pwritev_part,
    .bdrv_co_pwrite_zeroes = blklog_co_pwrite_zeroes,
    .bdrv_co_pdiscard = blklog_co_pdiscard,
    .bdrv_co_truncate = blklog_co_truncate,
    .bdrv_co_flush_to_disk = blklog_co_flush_to_disk,
    .bdrv_co_getlength = blklog_co_getlength,
    .bdrv_co_block_status = bdrv_co_block_status_from_file,
};
