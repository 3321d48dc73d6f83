/*
 * qemu-io commands: the I/O exerciser's command set and dispatcher.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Output formats and messages follow the reference qemu-io byte for byte
 * (tests compare them); where the reference prints to stdout with printf
 * we do too, and error_report() is used where it prefixes "qemu-io: ".
 */
#include "qemu/osdep.h"
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include "qemu-io.h"
#include "block/block_int.h"      /* driver names for "info" */
#include "qemu/cutils.h"
#include "qemu/tools-common.h"

bool qemuio_misalign;

static QemuIOCommand *cmd_table;
static int cmd_count;
static bool builtins_added;

/*
 * Largest length the commands accept: INT_MAX rounded down to a sector,
 * the limit (and the number in the messages) of the reference tool.
 */
#define QEMUIO_MAX_BYTES ((int64_t)(INT_MAX >> BDRV_SECTOR_BITS) \
                          << BDRV_SECTOR_BITS)

/* aio_read/aio_write requests whose completion has not run yet. */
static int aio_in_flight;

static void add_builtin_commands(void);

/* ---- command table ---------------------------------------------------- */

static int compare_cmd_name(const void *a, const void *b)
{
    return strcmp(((const QemuIOCommand *)a)->name,
                  ((const QemuIOCommand *)b)->name);
}

static void table_insert(const QemuIOCommand *cmd)
{
    cmd_table = g_renew(QemuIOCommand, cmd_table, cmd_count + 1);
    cmd_table[cmd_count++] = *cmd;
    qsort(cmd_table, cmd_count, sizeof(*cmd_table), compare_cmd_name);
}

void qemuio_add_command(const QemuIOCommand *cmd)
{
    add_builtin_commands();
    table_insert(cmd);
}

void qemuio_command_usage(const QemuIOCommand *cmd)
{
    printf("%s %s -- %s\n", cmd->name, cmd->args, cmd->oneline);
}

static const QemuIOCommand *find_command(const char *name)
{
    int i;

    for (i = 0; i < cmd_count; i++) {
        if (!strcmp(cmd_table[i].name, name) ||
            (cmd_table[i].altname && !strcmp(cmd_table[i].altname, name))) {
            return &cmd_table[i];
        }
    }
    return NULL;
}

/* ---- helpers ---------------------------------------------------------- */

/* -P takes one byte value; strtol base 0 so "0xab" and "171" both work. */
static int parse_pattern(const char *arg)
{
    char *end;
    long val;

    errno = 0;
    val = strtol(arg, &end, 0);
    if (errno || val < 0 || val > 0xff || *end != '\0') {
        printf("%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return val;
}

#define MISALIGN_OFFSET 16

static size_t io_buf_align(void)
{
    /* A page satisfies O_DIRECT on every device we drive. */
    return MAX(qemu_real_host_page_size(), 4096);
}

static void *io_alloc(size_t len, int pattern)
{
    size_t total = MAX(len, 1) + (qemuio_misalign ? MISALIGN_OFFSET : 0);
    uint8_t *buf = qemu_memalign(io_buf_align(), total);

    memset(buf, pattern, total);
    return qemuio_misalign ? buf + MISALIGN_OFFSET : buf;
}

static void io_free(void *p)
{
    if (p) {
        qemu_vfree(qemuio_misalign ? (uint8_t *)p - MISALIGN_OFFSET : p);
    }
}

/* Fill a buffer with the contents of @path, repeated to @len bytes. */
static void *io_alloc_from_file(size_t len, const char *path)
{
    uint8_t *buf;
    size_t got;
    FILE *f;

    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = io_alloc(len, 0);
    got = fread(buf, 1, len, f);
    if (ferror(f)) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        goto fail;
    }
    if (got == 0) {
        fprintf(stderr, "%s: file is empty\n", path);
        goto fail;
    }
    fclose(f);
    for (size_t pos = got; pos < len; pos += got) {
        memcpy(buf + pos, buf, MIN(got, len - pos));
    }
    return buf;

fail:
    fclose(f);
    io_free(buf);
    return NULL;
}

/* Hex + printable dump, 16 bytes a line, addresses relative to @offset. */
static void dump_buffer(const uint8_t *buf, int64_t offset, int64_t len)
{
    int64_t line;
    int i;

    for (line = 0; line < len; line += 16) {
        int n = MIN(16, len - line);

        printf("%08" PRIx64 ":  ", (uint64_t)(offset + line));
        for (i = 0; i < n; i++) {
            printf("%02x ", buf[line + i]);
        }
        printf(" ");
        for (i = 0; i < n; i++) {
            putchar(isalnum(buf[line + i]) ? buf[line + i] : '.');
        }
        printf("\n");
    }
}

static bool buffer_has_pattern(const uint8_t *buf, int pattern, int64_t len)
{
    int64_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != pattern) {
            return false;
        }
    }
    return true;
}

static void time_now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

static void report(const char *op, const struct timespec *start,
                   int64_t offset, int64_t count, int64_t total, bool Cflag)
{
    struct timespec end, diff;

    time_now(&end);
    diff = tool_tsub(end, *start);
    tool_print_report(op, &diff, offset, count, total, 1, Cflag);
}

/*
 * Build one buffer split into an I/O vector, one element per length
 * argument (readv, writev, aio_read/write, zone_append).  Returns NULL
 * after printing why, else the buffer.
 */
static void *create_iovec(QEMUIOVector *qiov, char **argv, int nr_iov,
                          int pattern)
{
    size_t *sizes = g_new0(size_t, nr_iov);
    uint64_t total = 0;
    uint8_t *buf = NULL, *p;
    int i;

    for (i = 0; i < nr_iov; i++) {
        int64_t len = tool_cvtnum(argv[i]);

        if (len < 0) {
            tool_print_cvtnum_err(len, argv[i]);
            goto out;
        }
        if (len > QEMUIO_MAX_BYTES) {
            printf("Argument '%s' exceeds maximum size %" PRIu64 "\n",
                   argv[i], (uint64_t)QEMUIO_MAX_BYTES);
            goto out;
        }
        if (total > QEMUIO_MAX_BYTES - len) {
            printf("The total number of bytes exceed the maximum size %"
                   PRIu64 "\n", (uint64_t)QEMUIO_MAX_BYTES);
            goto out;
        }
        sizes[i] = len;
        total += len;
    }

    qemu_iovec_init(qiov, nr_iov);
    buf = p = io_alloc(total, pattern);
    for (i = 0; i < nr_iov; i++) {
        qemu_iovec_add(qiov, p, sizes[i]);
        p += sizes[i];
    }

out:
    g_free(sizes);
    return buf;
}

/* VM state and compressed I/O work in whole sectors. */
static bool check_sector_aligned(int64_t offset, int64_t count)
{
    if (!QEMU_IS_ALIGNED(offset, BDRV_SECTOR_SIZE)) {
        printf("%" PRId64 " is not a sector-aligned value for 'offset'\n",
               offset);
        return false;
    }
    if (!QEMU_IS_ALIGNED(count, BDRV_SECTOR_SIZE)) {
        printf("%" PRId64 " is not a sector-aligned value for 'count'\n",
               count);
        return false;
    }
    return true;
}

static void getopt_reset(void)
{
    /* glibc restarts its scan (and permutation state) with optind 0. */
    optind = 0;
}

/* ---- read / write ----------------------------------------------------- */

static void read_help(void)
{
    printf(
"\n"
" Reads LEN bytes at OFFSET from the open image.\n"
"\n"
" Example:\n"
" 'read -v 512 1k' - hexdump 1 KiB of data starting at byte 512\n"
"\n"
" -b, -- access the VM state area instead of the disk contents\n"
" -C, -- print statistics in machine readable form\n"
" -l, -- number of bytes to check against the pattern (with -P)\n"
" -p, -- accepted for compatibility, has no effect\n"
" -P, -- check that the data read consists of this byte\n"
" -q, -- quiet: no statistics\n"
" -s, -- where the pattern check starts in the buffer (with -P)\n"
" -v, -- hexdump the data read\n"
"\n");
}

/*
 * Parse the "offset len" pair at @args[0] and @args[1] (sizes with
 * suffixes); on error print why and return the negative errno.
 */
static int parse_offset_len(char **args, int64_t *offset, int64_t *len)
{
    *offset = tool_cvtnum(args[0]);
    if (*offset < 0) {
        tool_print_cvtnum_err(*offset, args[0]);
        return *offset;
    }
    *len = tool_cvtnum(args[1]);
    if (*len < 0) {
        tool_print_cvtnum_err(*len, args[1]);
        return *len;
    }
    return 0;
}

static int read_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand read_cmd = {
    .name = "read",
    .altname = "r",
    .cfunc = read_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-abCqv] [-P pattern [-s off] [-l len]] off len",
    .oneline = "reads a number of bytes at a specified offset",
    .help = read_help,
};

static int read_f(BlockBackend *blk, int argc, char **argv)
{
    bool Cflag = false, qflag = false, vflag = false, bflag = false;
    bool Pflag = false, sflag = false, lflag = false;
    int64_t offset, count, pattern_offset = 0, pattern_count = 0;
    struct timespec t1;
    int c, pattern = 0, ret;
    uint8_t *buf;

    getopt_reset();
    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'C':
            Cflag = true;
            break;
        case 'l':
            lflag = true;
            pattern_count = tool_cvtnum(optarg);
            if (pattern_count < 0) {
                tool_print_cvtnum_err(pattern_count, optarg);
                return pattern_count;
            }
            break;
        case 'p':
            break;
        case 'P':
            Pflag = true;
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            sflag = true;
            pattern_offset = tool_cvtnum(optarg);
            if (pattern_offset < 0) {
                tool_print_cvtnum_err(pattern_offset, optarg);
                return pattern_offset;
            }
            break;
        case 'v':
            vflag = true;
            break;
        default:
            qemuio_command_usage(&read_cmd);
            return -EINVAL;
        }
    }

    if (optind != argc - 2) {
        qemuio_command_usage(&read_cmd);
        return -EINVAL;
    }

    ret = parse_offset_len(&argv[optind], &offset, &count);
    if (ret < 0) {
        return ret;
    }
    optind++;
    if (count > QEMUIO_MAX_BYTES) {
        printf("length cannot exceed %" PRIu64 ", given %s\n",
               (uint64_t)QEMUIO_MAX_BYTES, argv[optind]);
        return -EINVAL;
    }

    if (!Pflag && (lflag || sflag)) {
        qemuio_command_usage(&read_cmd);
        return -EINVAL;
    }
    if (!lflag) {
        pattern_count = count - pattern_offset;
    }
    if (pattern_count < 0 || pattern_count + pattern_offset > count) {
        printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }

    if (bflag && !check_sector_aligned(offset, count)) {
        return -EINVAL;
    }

    buf = io_alloc(count, 0xab);
    time_now(&t1);
    if (bflag) {
        /* The block layer has no VM state area. */
        ret = -ENOTSUP;
    } else {
        ret = blk_pread(blk, offset, count, buf, 0);
    }
    if (ret < 0) {
        printf("read failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;

    if (Pflag && !buffer_has_pattern(buf + pattern_offset, pattern,
                                     pattern_count)) {
        printf("Pattern verification failed at offset %" PRId64 ", %"
               PRId64 " bytes\n", offset + pattern_offset, pattern_count);
        ret = -EINVAL;
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        dump_buffer(buf, offset, count);
    }
    report("read", &t1, offset, count, count, Cflag);

out:
    io_free(buf);
    return ret;
}

static void write_help(void)
{
    printf(
"\n"
" Writes LEN bytes at OFFSET into the open image; the data is the byte\n"
" 0xcd unless -P, -s or -z says otherwise.\n"
"\n"
" Example:\n"
" 'write 512 1k' - write 1 KiB starting at byte 512\n"
"\n"
" -b, -- access the VM state area instead of the disk contents\n"
" -c, -- store the data compressed (blk_pwrite_compressed)\n"
" -C, -- print statistics in machine readable form\n"
" -f, -- Force Unit Access: data is stable when the write completes\n"
" -n, -- with -z: fail instead of writing zero buffers\n"
" -p, -- accepted for compatibility, has no effect\n"
" -P, -- fill the buffer with this byte\n"
" -q, -- quiet: no statistics\n"
" -s, -- fill the buffer from this file (repeated as needed)\n"
" -u, -- with -z: the zeroed range may be unmapped\n"
" -z, -- write zeroes (blk_pwrite_zeroes)\n"
"\n");
}

static int write_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand write_cmd = {
    .name = "write",
    .altname = "w",
    .cfunc = write_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-bcCfnquz] [-P pattern | -s source_file] off len",
    .oneline = "writes a number of bytes at a specified offset",
    .help = write_help,
};

static int write_f(BlockBackend *blk, int argc, char **argv)
{
    bool Cflag = false, qflag = false, bflag = false, Pflag = false;
    bool zflag = false, cflag = false, sflag = false;
    BdrvRequestFlags flags = 0;
    const char *file_name = NULL;
    int64_t offset, count;
    struct timespec t1;
    int c, pattern = 0xcd, ret;
    uint8_t *buf = NULL;

    getopt_reset();
    while ((c = getopt(argc, argv, "bcCfnpP:qs:uz")) != -1) {
        switch (c) {
        case 'b':
            bflag = true;
            break;
        case 'c':
            cflag = true;
            break;
        case 'C':
            Cflag = true;
            break;
        case 'f':
            flags |= BDRV_REQ_FUA;
            break;
        case 'n':
            flags |= BDRV_REQ_NO_FALLBACK;
            break;
        case 'p':
            break;
        case 'P':
            Pflag = true;
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 's':
            sflag = true;
            file_name = optarg;
            break;
        case 'u':
            flags |= BDRV_REQ_MAY_UNMAP;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            qemuio_command_usage(&write_cmd);
            return -EINVAL;
        }
    }

    if (optind != argc - 2) {
        qemuio_command_usage(&write_cmd);
        return -EINVAL;
    }
    if (bflag && zflag) {
        printf("-b and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_FUA) && (bflag || cflag)) {
        printf("-f and -b or -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_NO_FALLBACK) && !zflag) {
        printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag + Pflag + sflag > 1) {
        printf("Only one of -z, -P, and -s can be specified at the same "
               "time\n");
        return -EINVAL;
    }

    ret = parse_offset_len(&argv[optind], &offset, &count);
    if (ret < 0) {
        return ret;
    }
    optind++;
    if (count > QEMUIO_MAX_BYTES && !(flags & BDRV_REQ_NO_FALLBACK)) {
        printf("length cannot exceed %" PRIu64 " without -n, given %s\n",
               (uint64_t)QEMUIO_MAX_BYTES, argv[optind]);
        return -EINVAL;
    }

    if ((bflag || cflag) && !check_sector_aligned(offset, count)) {
        return -EINVAL;
    }

    if (!zflag) {
        if (sflag) {
            buf = io_alloc_from_file(count, file_name);
            if (!buf) {
                return -EINVAL;
            }
        } else {
            buf = io_alloc(count, pattern);
        }
    }

    time_now(&t1);
    if (bflag) {
        ret = -ENOTSUP;
    } else if (zflag) {
        ret = blk_pwrite_zeroes(blk, offset, count, flags);
    } else if (cflag) {
        ret = blk_pwrite_compressed(blk, offset, buf, count);
    } else {
        ret = blk_pwrite(blk, offset, count, buf, flags);
    }
    if (ret < 0) {
        printf("write failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        report("wrote", &t1, offset, count, count, Cflag);
    }

out:
    io_free(buf);
    return ret;
}

static void readv_help(void)
{
    printf(
"\n"
" Reads into several buffers, one per LEN argument, starting at OFFSET.\n"
"\n"
" Example:\n"
" 'readv -v 512 1k 1k' - hexdump 2 KiB read from byte 512 into two buffers\n"
"\n"
" -C, -- print statistics in machine readable form\n"
" -P, -- check that the data read consists of this byte\n"
" -q, -- quiet: no statistics\n"
" -v, -- hexdump the data read\n"
"\n");
}

static int readv_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand readv_cmd = {
    .name = "readv",
    .cfunc = readv_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Cqv] [-P pattern] off len [len..]",
    .oneline = "reads a number of bytes at a specified offset",
    .help = readv_help,
};

static int readv_f(BlockBackend *blk, int argc, char **argv)
{
    bool Cflag = false, qflag = false, vflag = false, Pflag = false;
    QEMUIOVector qiov;
    struct timespec t1;
    int c, pattern = 0, ret;
    int64_t offset;
    uint8_t *buf;

    getopt_reset();
    while ((c = getopt(argc, argv, "CP:qv")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'P':
            Pflag = true;
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        case 'v':
            vflag = true;
            break;
        default:
            qemuio_command_usage(&readv_cmd);
            return -EINVAL;
        }
    }
    if (optind > argc - 2) {
        qemuio_command_usage(&readv_cmd);
        return -EINVAL;
    }

    offset = tool_cvtnum(argv[optind]);
    if (offset < 0) {
        tool_print_cvtnum_err(offset, argv[optind]);
        return offset;
    }
    optind++;
    buf = create_iovec(&qiov, &argv[optind], argc - optind, 0xab);
    if (!buf) {
        return -EINVAL;
    }

    time_now(&t1);
    ret = blk_preadv(blk, offset, qiov.size, &qiov, 0);
    if (ret < 0) {
        printf("readv failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (Pflag && !buffer_has_pattern(buf, pattern, qiov.size)) {
        printf("Pattern verification failed at offset %" PRId64 ", %zu "
               "bytes\n", offset, qiov.size);
        ret = -EINVAL;
    }
    if (qflag) {
        goto out;
    }
    if (vflag) {
        dump_buffer(buf, offset, qiov.size);
    }
    report("read", &t1, offset, qiov.size, qiov.size, Cflag);

out:
    io_free(buf);
    qemu_iovec_destroy(&qiov);
    return ret;
}

static void writev_help(void)
{
    printf(
"\n"
" Writes from several buffers, one per LEN argument, starting at OFFSET;\n"
" the data is the byte 0xcd unless -P gives another.\n"
"\n"
" Example:\n"
" 'writev 512 1k 1k' - write 2 KiB from two buffers starting at byte 512\n"
"\n"
" -C, -- print statistics in machine readable form\n"
" -f, -- Force Unit Access: data is stable when the write completes\n"
" -P, -- fill the buffers with this byte\n"
" -q, -- quiet: no statistics\n"
"\n");
}

static int writev_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand writev_cmd = {
    .name = "writev",
    .cfunc = writev_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-Cfq] [-P pattern] off len [len..]",
    .oneline = "writes a number of bytes at a specified offset",
    .help = writev_help,
};

static int writev_f(BlockBackend *blk, int argc, char **argv)
{
    bool Cflag = false, qflag = false;
    BdrvRequestFlags flags = 0;
    QEMUIOVector qiov;
    struct timespec t1;
    int c, pattern = 0xcd, ret;
    int64_t offset;
    uint8_t *buf;

    getopt_reset();
    while ((c = getopt(argc, argv, "CfP:q")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'f':
            flags |= BDRV_REQ_FUA;
            break;
        case 'P':
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                return -EINVAL;
            }
            break;
        case 'q':
            qflag = true;
            break;
        default:
            qemuio_command_usage(&writev_cmd);
            return -EINVAL;
        }
    }
    if (optind > argc - 2) {
        qemuio_command_usage(&writev_cmd);
        return -EINVAL;
    }

    offset = tool_cvtnum(argv[optind]);
    if (offset < 0) {
        tool_print_cvtnum_err(offset, argv[optind]);
        return offset;
    }
    optind++;
    buf = create_iovec(&qiov, &argv[optind], argc - optind, pattern);
    if (!buf) {
        return -EINVAL;
    }

    time_now(&t1);
    ret = blk_pwritev(blk, offset, qiov.size, &qiov, flags);
    if (ret < 0) {
        printf("writev failed: %s\n", strerror(-ret));
        goto out;
    }
    ret = 0;
    if (!qflag) {
        report("wrote", &t1, offset, qiov.size, qiov.size, Cflag);
    }

out:
    io_free(buf);
    qemu_iovec_destroy(&qiov);
    return ret;
}

/* ---- asynchronous requests ---------------------------------------- */

typedef struct QemuIOAioReq {
    QEMUIOVector qiov;
    int64_t offset;
    int64_t bytes;
    uint8_t *buf;           /* NULL for write-zeroes */
    bool qflag;
    bool vflag;
    bool Cflag;
    bool Pflag;
    int pattern;
    struct timespec t1;
} QemuIOAioReq;

static void aio_req_free(QemuIOAioReq *req)
{
    if (req->buf) {
        io_free(req->buf);
        qemu_iovec_destroy(&req->qiov);
    }
    g_free(req);
    aio_in_flight--;
}

static void aio_write_done(void *opaque, int ret)
{
    QemuIOAioReq *req = opaque;

    if (ret < 0) {
        printf("aio_write failed: %s\n", strerror(-ret));
    } else if (!req->qflag) {
        report("wrote", &req->t1, req->offset, req->bytes, req->bytes,
               req->Cflag);
    }
    aio_req_free(req);
}

static void aio_read_done(void *opaque, int ret)
{
    QemuIOAioReq *req = opaque;

    if (ret < 0) {
        printf("readv failed: %s\n", strerror(-ret));
        goto out;
    }
    if (req->Pflag && !buffer_has_pattern(req->buf, req->pattern,
                                          req->bytes)) {
        printf("Pattern verification failed at offset %" PRId64 ", %"
               PRId64 " bytes\n", req->offset, req->bytes);
    }
    if (req->qflag) {
        goto out;
    }
    if (req->vflag) {
        dump_buffer(req->buf, req->offset, req->bytes);
    }
    report("read", &req->t1, req->offset, req->bytes, req->bytes,
           req->Cflag);
out:
    aio_req_free(req);
}

static void aio_read_help(void)
{
    printf(
"\n"
" Starts a read of several buffers at OFFSET and returns at once; the\n"
" result is printed when the request completes.  Use aio_flush to wait\n"
" for all outstanding requests.  Errors and pattern mismatches found on\n"
" completion do not make the command itself fail.\n"
"\n"
" Example:\n"
" 'aio_read -v 512 1k 1k' - hexdump 2 KiB read from byte 512\n"
"\n"
" -C, -- print statistics in machine readable form\n"
" -i, -- count an invalid request in the statistics, do no I/O\n"
" -P, -- check that the data read consists of this byte\n"
" -q, -- quiet: no statistics\n"
" -v, -- hexdump the data read\n"
"\n");
}

static int aio_read_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand aio_read_cmd = {
    .name = "aio_read",
    .cfunc = aio_read_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Ciqv] [-P pattern] off len [len..]",
    .oneline = "asynchronously reads a number of bytes",
    .help = aio_read_help,
};

static int aio_read_f(BlockBackend *blk, int argc, char **argv)
{
    QemuIOAioReq *req = g_new0(QemuIOAioReq, 1);
    int c;

    getopt_reset();
    while ((c = getopt(argc, argv, "CiP:qv")) != -1) {
        switch (c) {
        case 'C':
            req->Cflag = true;
            break;
        case 'P':
            req->Pflag = true;
            req->pattern = parse_pattern(optarg);
            if (req->pattern < 0) {
                g_free(req);
                return -EINVAL;
            }
            break;
        case 'i':
            /* There are no I/O statistics to account it in. */
            printf("injecting invalid read request\n");
            g_free(req);
            return 0;
        case 'q':
            req->qflag = true;
            break;
        case 'v':
            req->vflag = true;
            break;
        default:
            g_free(req);
            qemuio_command_usage(&aio_read_cmd);
            return -EINVAL;
        }
    }
    if (optind > argc - 2) {
        g_free(req);
        qemuio_command_usage(&aio_read_cmd);
        return -EINVAL;
    }

    req->offset = tool_cvtnum(argv[optind]);
    if (req->offset < 0) {
        int ret = req->offset;
        tool_print_cvtnum_err(ret, argv[optind]);
        g_free(req);
        return ret;
    }
    optind++;
    req->buf = create_iovec(&req->qiov, &argv[optind], argc - optind, 0xab);
    if (!req->buf) {
        g_free(req);
        return -EINVAL;
    }
    req->bytes = req->qiov.size;

    aio_in_flight++;
    time_now(&req->t1);
    blk_aio_preadv(blk, req->offset, &req->qiov, 0, aio_read_done, req);
    return 0;
}

static void aio_write_help(void)
{
    printf(
"\n"
" Starts a write of several buffers at OFFSET and returns at once; the\n"
" result is printed when the request completes.  Use aio_flush to wait\n"
" for all outstanding requests.  Errors found on completion do not make\n"
" the command itself fail.  The data is the byte 0xcd unless -P or -z\n"
" says otherwise.\n"
"\n"
" Example:\n"
" 'aio_write 512 1k 1k' - write 2 KiB from two buffers at byte 512\n"
"\n"
" -C, -- print statistics in machine readable form\n"
" -f, -- Force Unit Access: data is stable when the write completes\n"
" -i, -- count an invalid request in the statistics, do no I/O\n"
" -P, -- fill the buffers with this byte\n"
" -q, -- quiet: no statistics\n"
" -u, -- with -z: the zeroed range may be unmapped\n"
" -z, -- write zeroes (blk_aio_pwrite_zeroes)\n"
"\n");
}

static int aio_write_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand aio_write_cmd = {
    .name = "aio_write",
    .cfunc = aio_write_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-Cfiquz] [-P pattern] off len [len..]",
    .oneline = "asynchronously writes a number of bytes",
    .help = aio_write_help,
};

static int aio_write_f(BlockBackend *blk, int argc, char **argv)
{
    QemuIOAioReq *req = g_new0(QemuIOAioReq, 1);
    BdrvRequestFlags flags = 0;
    bool zflag = false;
    int c, pattern = 0xcd;

    getopt_reset();
    while ((c = getopt(argc, argv, "CfiP:quz")) != -1) {
        switch (c) {
        case 'C':
            req->Cflag = true;
            break;
        case 'f':
            flags |= BDRV_REQ_FUA;
            break;
        case 'q':
            req->qflag = true;
            break;
        case 'u':
            flags |= BDRV_REQ_MAY_UNMAP;
            break;
        case 'P':
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                g_free(req);
                return -EINVAL;
            }
            break;
        case 'i':
            printf("injecting invalid write request\n");
            g_free(req);
            return 0;
        case 'z':
            zflag = true;
            break;
        default:
            g_free(req);
            qemuio_command_usage(&aio_write_cmd);
            return -EINVAL;
        }
    }
    if (optind > argc - 2) {
        g_free(req);
        qemuio_command_usage(&aio_write_cmd);
        return -EINVAL;
    }
    if (zflag && optind != argc - 2) {
        printf("-z supports only a single length parameter\n");
        g_free(req);
        return -EINVAL;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        printf("-u requires -z to be specified\n");
        g_free(req);
        return -EINVAL;
    }

    req->offset = tool_cvtnum(argv[optind]);
    if (req->offset < 0) {
        int ret = req->offset;
        tool_print_cvtnum_err(ret, argv[optind]);
        g_free(req);
        return ret;
    }
    optind++;

    if (zflag) {
        int64_t count = tool_cvtnum(argv[optind]);
        if (count < 0) {
            tool_print_cvtnum_err(count, argv[optind]);
            g_free(req);
            return count;
        }
        req->bytes = count;
        aio_in_flight++;
        time_now(&req->t1);
        blk_aio_pwrite_zeroes(blk, req->offset, count, flags,
                              aio_write_done, req);
        return 0;
    }

    req->buf = create_iovec(&req->qiov, &argv[optind], argc - optind,
                            pattern);
    if (!req->buf) {
        g_free(req);
        return -EINVAL;
    }
    req->bytes = req->qiov.size;
    aio_in_flight++;
    time_now(&req->t1);
    blk_aio_pwritev(blk, req->offset, &req->qiov, flags, aio_write_done,
                    req);
    return 0;
}

int qemuio_aio_in_flight(void)
{
    return aio_in_flight;
}

void qemuio_wait_aio(void)
{
    AioContext *ctx = qemu_get_aio_context();

    while (aio_in_flight > 0) {
        aio_poll(ctx, true);
    }
}

static int aio_flush_f(BlockBackend *blk, int argc, char **argv)
{
    qemuio_wait_aio();
    blk_drain(blk);
    return 0;
}

static const QemuIOCommand aio_flush_cmd = {
    .name = "aio_flush",
    .cfunc = aio_flush_f,
    .oneline = "completes all outstanding aio requests",
};

static int flush_f(BlockBackend *blk, int argc, char **argv)
{
    return blk_flush(blk);
}

static const QemuIOCommand flush_cmd = {
    .name = "flush",
    .altname = "f",
    .cfunc = flush_f,
    .oneline = "flush all in-core file state to disk",
};

/* ---- zoned devices ---------------------------------------------------- */

static inline uint64_t to_sectors(uint64_t bytes)
{
    return bytes >> BDRV_SECTOR_BITS;
}

static int zone_report_f(BlockBackend *blk, int argc, char **argv)
{
    /* Report in batches: the count is the user's, memory must not be. */
    const unsigned int batch = 1024;
    BlockZoneDescriptor *zones;
    int64_t offset, nr;
    unsigned int nr_zones, i;
    int ret;

    ret = parse_offset_len(&argv[1], &offset, &nr);
    if (ret < 0) {
        return ret;
    }
    if (nr > UINT_MAX) {
        printf("Number of zones must be less than 2^32\n");
        return -ERANGE;
    }
    zones = g_new0(BlockZoneDescriptor, batch);
    do {
        nr_zones = MIN(nr, batch);
        ret = blk_zone_report(blk, offset, &nr_zones, zones);
        if (ret < 0) {
            printf("zone report failed: %s\n", strerror(-ret));
            break;
        }
        for (i = 0; i < nr_zones; i++) {
            printf("start: 0x%" PRIx64 ", len 0x%" PRIx64 ", cap 0x%" PRIx64
                   ", wptr 0x%" PRIx64 ", zcond:%u, [type: %u]\n",
                   to_sectors(zones[i].start), to_sectors(zones[i].length),
                   to_sectors(zones[i].cap), to_sectors(zones[i].wp),
                   (unsigned)zones[i].state, (unsigned)zones[i].type);
        }
        if (nr_zones == 0 ||
            zones[nr_zones - 1].start + zones[nr_zones - 1].length <=
            (uint64_t)offset) {
            break;
        }
        offset = zones[nr_zones - 1].start + zones[nr_zones - 1].length;
        nr -= nr_zones;
    } while (nr > 0);
    g_free(zones);
    return ret;
}

static const QemuIOCommand zone_report_cmd = {
    .name = "zone_report",
    .altname = "zrp",
    .cfunc = zone_report_f,
    .argmin = 2,
    .argmax = 2,
    .args = "offset number",
    .oneline = "report zone information",
};

static int zone_mgmt(BlockBackend *blk, char **argv, BlockZoneOp op,
                     const char *what)
{
    int64_t offset, len;
    int ret;

    ret = parse_offset_len(&argv[1], &offset, &len);
    if (ret < 0) {
        return ret;
    }
    ret = blk_zone_mgmt(blk, op, offset, len);
    if (ret < 0) {
        printf("zone %s failed: %s\n", what, strerror(-ret));
    }
    return ret;
}

static int zone_open_f(BlockBackend *blk, int argc, char **argv)
{
    return zone_mgmt(blk, argv, BLK_ZO_OPEN, "open");
}

static int zone_close_f(BlockBackend *blk, int argc, char **argv)
{
    return zone_mgmt(blk, argv, BLK_ZO_CLOSE, "close");
}

static int zone_finish_f(BlockBackend *blk, int argc, char **argv)
{
    return zone_mgmt(blk, argv, BLK_ZO_FINISH, "finish");
}

static int zone_reset_f(BlockBackend *blk, int argc, char **argv)
{
    return zone_mgmt(blk, argv, BLK_ZO_RESET, "reset");
}

static const QemuIOCommand zone_open_cmd = {
    .name = "zone_open",
    .altname = "zo",
    .cfunc = zone_open_f,
    .argmin = 2,
    .argmax = 2,
    .args = "offset len",
    .oneline = "explicitly open a range of zones",
};

static const QemuIOCommand zone_close_cmd = {
    .name = "zone_close",
    .altname = "zc",
    .cfunc = zone_close_f,
    .argmin = 2,
    .argmax = 2,
    .args = "offset len",
    .oneline = "close a range of zones",
};

static const QemuIOCommand zone_finish_cmd = {
    .name = "zone_finish",
    .altname = "zf",
    .cfunc = zone_finish_f,
    .argmin = 2,
    .argmax = 2,
    .args = "offset len",
    .oneline = "finish (make full) a range of zones",
};

static const QemuIOCommand zone_reset_cmd = {
    .name = "zone_reset",
    .altname = "zrs",
    .cfunc = zone_reset_f,
    .argmin = 2,
    .argmax = 2,
    .args = "offset len",
    .oneline = "reset the write pointers of a range of zones",
};

static int zone_append_f(BlockBackend *blk, int argc, char **argv)
{
    QEMUIOVector qiov;
    bool pflag = false;
    int64_t offset;
    int first = 1, ret;
    uint8_t *buf;

    /* Only a leading "-p" is an option; the rest are numbers. */
    if (!strcmp(argv[1], "-p")) {
        pflag = true;
        first = 2;
    }
    offset = tool_cvtnum(argv[first]);
    if (offset < 0) {
        tool_print_cvtnum_err(offset, argv[first]);
        return offset;
    }
    first++;
    buf = create_iovec(&qiov, &argv[first], argc - first, 0xcd);
    if (!buf) {
        return -EINVAL;
    }
    ret = blk_zone_append(blk, &offset, &qiov, 0);
    if (ret < 0) {
        printf("zone append failed: %s\n", strerror(-ret));
    } else if (pflag) {
        printf("After zap done, the append sector is 0x%" PRIx64 "\n",
               to_sectors(offset));
    }
    io_free(buf);
    qemu_iovec_destroy(&qiov);
    return ret;
}

static const QemuIOCommand zone_append_cmd = {
    .name = "zone_append",
    .altname = "zap",
    .cfunc = zone_append_f,
    .argmin = 3,
    .argmax = 4,
    .args = "offset len [len..]",
    .oneline = "append data to a zone, at its write pointer",
};

/* ---- image level commands -------------------------------------------- */

static int truncate_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand truncate_cmd = {
    .name = "truncate",
    .altname = "t",
    .cfunc = truncate_f,
    .argmin = 1,
    .argmax = 3,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-m prealloc_mode] off",
    .oneline = "truncates the current file at the given offset",
};

static int truncate_f(BlockBackend *blk, int argc, char **argv)
{
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    Error *err = NULL;
    int64_t offset;
    int c, ret;

    getopt_reset();
    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm':
            ret = prealloc_mode_parse(optarg, NULL);
            if (ret < 0) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return -EINVAL;
            }
            prealloc = ret;
            break;
        default:
            qemuio_command_usage(&truncate_cmd);
            return -EINVAL;
        }
    }
    if (optind >= argc) {
        qemuio_command_usage(&truncate_cmd);
        return -EINVAL;
    }

    offset = tool_cvtnum(argv[optind]);
    if (offset < 0) {
        /* The reference names argv[1] here, even after "-m mode". */
        tool_print_cvtnum_err(offset, argv[1]);
        return offset;
    }
    ret = blk_truncate(blk, offset, false, prealloc, 0, &err);
    if (ret < 0) {
        error_report_err(err);
        return ret;
    }
    return 0;
}

static int length_f(BlockBackend *blk, int argc, char **argv)
{
    char str[64];
    int64_t size;

    size = blk_getlength(blk);
    if (size < 0) {
        printf("getlength: %s\n", strerror(-size));
        return size;
    }
    tool_cvtstr(size, str, sizeof(str));
    printf("%s\n", str);
    return 0;
}

static const QemuIOCommand length_cmd = {
    .name = "length",
    .altname = "l",
    .cfunc = length_f,
    .oneline = "gets the length of the current file",
};

static int info_f(BlockBackend *blk, int argc, char **argv)
{
    BlockDriverState *bs = blk_bs(blk);
    BlockDriverInfo bdi;
    char s1[64], s2[64];
    Error *err = NULL;
    QObject *spec;
    int ret;

    printf("format name: %s\n", bdrv_get_format_name(bs));
    /* Protocol drivers ("file") are named twice, as the reference does. */
    if (bs->drv && bs->drv->protocol_name) {
        printf("format name: %s\n", bs->drv->protocol_name);
    }

    memset(&bdi, 0, sizeof(bdi));
    ret = bdrv_get_info(bs, &bdi);
    /* Drivers without extra information still get the zero lines. */
    if (ret < 0 && ret != -ENOTSUP) {
        return ret;
    }
    tool_cvtstr(bdi.cluster_size, s1, sizeof(s1));
    tool_cvtstr(bdi.vm_state_offset, s2, sizeof(s2));
    printf("cluster size: %s\n", s1);
    printf("vm state offset: %s\n", s2);

    spec = bdrv_get_specific_info(bs, &err);
    if (err) {
        error_report_err(err);
        return -EIO;
    }
    if (spec) {
        QObject *data = qdict_obj_get(spec, "data");
        GString *out = g_string_new("Format specific information:\n");

        qobj_print_human(data ? data : spec, 1, out);
        fputs(out->str, stdout);
        g_string_free(out, true);
        qobj_unref(spec);
    }
    return 0;
}

static const QemuIOCommand info_cmd = {
    .name = "info",
    .altname = "i",
    .cfunc = info_f,
    .oneline = "prints information about the current file",
};

static void discard_help(void)
{
    printf(
"\n"
" Discards LEN bytes at OFFSET: the range may read back as zeroes or as\n"
" its old contents afterwards.\n"
"\n"
" Example:\n"
" 'discard 512 1k' - discard 1 KiB starting at byte 512\n"
"\n"
" -C, -- print statistics in machine readable form\n"
" -q, -- quiet: no statistics\n"
"\n");
}

static int discard_f(BlockBackend *blk, int argc, char **argv);

static const QemuIOCommand discard_cmd = {
    .name = "discard",
    .altname = "d",
    .cfunc = discard_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-Cq] off len",
    .oneline = "discards a number of bytes at a specified offset",
    .help = discard_help,
};

static int discard_f(BlockBackend *blk, int argc, char **argv)
{
    bool Cflag = false, qflag = false;
    int64_t offset, bytes;
    struct timespec t1;
    int c, ret;

    getopt_reset();
    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C':
            Cflag = true;
            break;
        case 'q':
            qflag = true;
            break;
        default:
            qemuio_command_usage(&discard_cmd);
            return -EINVAL;
        }
    }
    if (optind != argc - 2) {
        qemuio_command_usage(&discard_cmd);
        return -EINVAL;
    }

    ret = parse_offset_len(&argv[optind], &offset, &bytes);
    if (ret < 0) {
        return ret;
    }
    optind++;
    if (bytes > QEMUIO_MAX_BYTES) {
        printf("length cannot exceed %" PRIu64 ", given %s\n",
               (uint64_t)QEMUIO_MAX_BYTES, argv[optind]);
        return -EINVAL;
    }

    time_now(&t1);
    ret = blk_pdiscard(blk, offset, bytes);
    if (ret < 0) {
        printf("discard failed: %s\n", strerror(-ret));
        return ret;
    }
    if (!qflag) {
        report("discard", &t1, offset, bytes, bytes, Cflag);
    }
    return 0;
}

static int alloc_f(BlockBackend *blk, int argc, char **argv)
{
    BlockDriverState *bs = blk_bs(blk);
    int64_t offset, start, remaining, count, num, sum_alloc = 0;
    char str[64];
    int ret;

    start = offset = tool_cvtnum(argv[1]);
    if (offset < 0) {
        tool_print_cvtnum_err(offset, argv[1]);
        return offset;
    }
    if (argc == 3) {
        count = tool_cvtnum(argv[2]);
        if (count < 0) {
            tool_print_cvtnum_err(count, argv[2]);
            return count;
        }
    } else {
        count = BDRV_SECTOR_SIZE;
    }

    remaining = count;
    while (remaining) {
        ret = bdrv_is_allocated(bs, offset, remaining, &num);
        if (ret < 0) {
            printf("is_allocated failed: %s\n", strerror(-ret));
            return ret;
        }
        offset += num;
        remaining -= num;
        if (ret) {
            sum_alloc += num;
        }
        if (num == 0) {
            /* Hit the end of the image: report what exists. */
            count -= remaining;
            remaining = 0;
        }
    }

    tool_cvtstr(start, str, sizeof(str));
    printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
           sum_alloc, count, str);
    return 0;
}

static const QemuIOCommand alloc_cmd = {
    .name = "alloc",
    .altname = "a",
    .cfunc = alloc_f,
    .argmin = 1,
    .argmax = 2,
    .args = "offset [count]",
    .oneline = "checks if offset is allocated in the file",
};

/* Length of the run starting at @offset with one allocation state. */
static int map_run(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   int64_t *pnum)
{
    int64_t num;
    int ret, first;

    first = bdrv_is_allocated(bs, offset, bytes, &num);
    if (first < 0) {
        return first;
    }
    *pnum = num;
    while (bytes > 0) {
        offset += num;
        bytes -= num;
        ret = bdrv_is_allocated(bs, offset, bytes, &num);
        if (ret != first || !num) {
            break;
        }
        *pnum += num;
    }
    return first;
}

static int map_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t offset = 0, bytes, num;
    char s1[64], s2[64];
    int ret;

    bytes = blk_getlength(blk);
    if (bytes < 0) {
        error_report("Failed to query image length: %s", strerror(-bytes));
        return bytes;
    }
    while (bytes) {
        ret = map_run(blk_bs(blk), offset, bytes, &num);
        if (ret < 0) {
            error_report("Failed to get allocation status: %s",
                         strerror(-ret));
            return ret;
        }
        if (!num) {
            error_report("Unexpected end of image");
            return -EIO;
        }
        tool_cvtstr(num, s1, sizeof(s1));
        tool_cvtstr(offset, s2, sizeof(s2));
        printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
               s1, (uint64_t)num, ret ? "    allocated" : "not allocated",
               s2, (uint64_t)offset);
        offset += num;
        bytes -= num;
    }
    return 0;
}

static const QemuIOCommand map_cmd = {
    .name = "map",
    .cfunc = map_f,
    .argmin = 0,
    .argmax = 0,
    .args = "",
    .oneline = "prints the allocated areas of a file",
};

/*
 * Breakpoints belong to the blkdebug driver, which this block layer does
 * not have: the commands exist (scripts list them) and report ENOTSUP.
 */
static int break_f(BlockBackend *blk, int argc, char **argv)
{
    printf("Could not set breakpoint: %s\n", strerror(ENOTSUP));
    return -ENOTSUP;
}

static const QemuIOCommand break_cmd = {
    .name = "break",
    .cfunc = break_f,
    .argmin = 2,
    .argmax = 2,
    .args = "event tag",
    .oneline = "sets a breakpoint on event and tags the stopped request as tag",
};

static int remove_break_f(BlockBackend *blk, int argc, char **argv)
{
    printf("Could not remove breakpoint %s: %s\n", argv[1],
           strerror(ENOTSUP));
    return -ENOTSUP;
}

static const QemuIOCommand remove_break_cmd = {
    .name = "remove_break",
    .cfunc = remove_break_f,
    .argmin = 1,
    .argmax = 1,
    .args = "tag",
    .oneline = "remove a breakpoint by tag",
};

static int resume_f(BlockBackend *blk, int argc, char **argv)
{
    printf("Could not resume request: %s\n", strerror(ENOTSUP));
    return -ENOTSUP;
}

static const QemuIOCommand resume_cmd = {
    .name = "resume",
    .cfunc = resume_f,
    .argmin = 1,
    .argmax = 1,
    .args = "tag",
    .oneline = "resumes the request tagged as tag",
};

static int wait_break_f(BlockBackend *blk, int argc, char **argv)
{
    /* Nothing can ever be suspended: fail rather than wait forever. */
    printf("Could not wait for breakpoint %s: %s\n", argv[1],
           strerror(ENOTSUP));
    return -ENOTSUP;
}

static const QemuIOCommand wait_break_cmd = {
    .name = "wait_break",
    .cfunc = wait_break_f,
    .argmin = 1,
    .argmax = 1,
    .args = "tag",
    .oneline = "waits for the suspension of a request",
};

/* ---- miscellaneous ---------------------------------------------------- */

static int abort_f(BlockBackend *blk, int argc, char **argv)
{
    abort();
}

static const QemuIOCommand abort_cmd = {
    .name = "abort",
    .cfunc = abort_f,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .oneline = "simulate a program crash using abort(3)",
};

static void sigraise_help(void)
{
    printf(
"\n"
" Sends the given signal number to qemu-io itself.\n"
"\n"
" Example:\n"
" 'sigraise %d' - raise SIGTERM\n"
"\n", SIGTERM);
}

static int sigraise_f(BlockBackend *blk, int argc, char **argv)
{
    int64_t sig = tool_cvtnum(argv[1]);

    if (sig < 0) {
        tool_print_cvtnum_err(sig, argv[1]);
        return sig;
    }
    if (sig > NSIG) {
        printf("signal argument '%s' is too large to be a valid signal\n",
               argv[1]);
        return -EINVAL;
    }
    /* The signal may end the process before exit() would flush. */
    fflush(stdout);
    fflush(stderr);
    raise(sig);
    return 0;
}

static const QemuIOCommand sigraise_cmd = {
    .name = "sigraise",
    .cfunc = sigraise_f,
    .argmin = 1,
    .argmax = 1,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .args = "signal",
    .oneline = "raises a signal",
    .help = sigraise_help,
};

static void sleep_expired(void *opaque)
{
    *(bool *)opaque = true;
}

static int sleep_f(BlockBackend *blk, int argc, char **argv)
{
    AioContext *ctx = qemu_get_aio_context();
    bool expired = false;
    QEMUTimer *timer;
    char *end;
    long ms;

    ms = strtol(argv[1], &end, 0);
    if (ms < 0 || *end != '\0') {
        printf("%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    /* Keep the loop running so that aio completions show up meanwhile. */
    timer = aio_timer_new(ctx, sleep_expired, &expired);
    timer_mod_ns(timer, get_clock_ns() + ms * INT64_C(1000000));
    while (!expired) {
        aio_poll(ctx, true);
    }
    timer_free(timer);
    return 0;
}

static const QemuIOCommand sleep_cmd = {
    .name = "sleep",
    .cfunc = sleep_f,
    .argmin = 1,
    .argmax = 1,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .oneline = "waits for the given value in milliseconds",
};

static void help_oneline(const char *name, const QemuIOCommand *cmd)
{
    printf("%s ", name);
    if (cmd->args) {
        printf("%s ", cmd->args);
    }
    printf("-- %s\n", cmd->oneline);
}

static int help_f(BlockBackend *blk, int argc, char **argv)
{
    const QemuIOCommand *cmd;
    int i;

    if (argc < 2) {
        for (i = 0; i < cmd_count; i++) {
            help_oneline(cmd_table[i].name, &cmd_table[i]);
        }
        printf("\nUse 'help commandname' for extended help.\n");
        return 0;
    }
    cmd = find_command(argv[1]);
    if (!cmd) {
        printf("command %s not found\n", argv[1]);
        return -EINVAL;
    }
    help_oneline(argv[1], cmd);
    if (cmd->help) {
        cmd->help();
    }
    return 0;
}

static const QemuIOCommand help_cmd = {
    .name = "help",
    .altname = "?",
    .cfunc = help_f,
    .argmin = 0,
    .argmax = 1,
    .flags = QEMUIO_CMD_GLOBAL,
    .args = "[command]",
    .oneline = "help for one or all commands",
};

static void add_builtin_commands(void)
{
    static const QemuIOCommand *const builtins[] = {
        &help_cmd, &read_cmd, &readv_cmd, &write_cmd, &writev_cmd,
        &aio_read_cmd, &aio_write_cmd, &aio_flush_cmd, &flush_cmd,
        &zone_report_cmd, &zone_open_cmd, &zone_close_cmd,
        &zone_finish_cmd, &zone_reset_cmd, &zone_append_cmd,
        &truncate_cmd, &length_cmd, &info_cmd, &discard_cmd, &alloc_cmd,
        &map_cmd, &abort_cmd, &sleep_cmd, &sigraise_cmd, &break_cmd,
        &remove_break_cmd, &resume_cmd, &wait_break_cmd,
    };
    int i;

    if (builtins_added) {
        return;
    }
    builtins_added = true;
    for (i = 0; i < ARRAY_SIZE(builtins); i++) {
        table_insert(builtins[i]);
    }
}

/* ---- dispatcher ------------------------------------------------------- */

/* Split at single spaces, dropping empty words (tabs are not separators). */
static char **split_words(char *line, int *count)
{
    GPtrArray *words = g_ptr_array_new();
    char *p;

    while ((p = strsep(&line, " ")) != NULL) {
        if (*p) {
            g_ptr_array_add(words, p);
        }
    }
    *count = words->len;
    g_ptr_array_add(words, NULL);
    return (char **)g_ptr_array_free(words, false);
}

static int run_command(BlockBackend *blk, const QemuIOCommand *cmd,
                       int argc, char **argv)
{
    int nargs = argc - 1;

    if (!blk &&
        !(cmd->flags & (QEMUIO_CMD_GLOBAL | QEMUIO_CMD_NOFILE_OK))) {
        fprintf(stderr, "no file open, try 'help open'\n");
        return -EINVAL;
    }
    if (nargs < cmd->argmin || (cmd->argmax != -1 && nargs > cmd->argmax)) {
        if (cmd->argmax == -1) {
            fprintf(stderr, "bad argument count %d to %s, expected at least "
                    "%d arguments\n", nargs, argv[0], cmd->argmin);
        } else if (cmd->argmin == cmd->argmax) {
            fprintf(stderr, "bad argument count %d to %s, expected %d "
                    "arguments\n", nargs, argv[0], cmd->argmin);
        } else {
            fprintf(stderr, "bad argument count %d to %s, expected between "
                    "%d and %d arguments\n", nargs, argv[0], cmd->argmin,
                    cmd->argmax);
        }
        return -EINVAL;
    }
    if ((cmd->flags & QEMUIO_CMD_WRITE) && blk_is_read_only(blk)) {
        error_report("Block node is read-only");
        return -EPERM;
    }
    return cmd->cfunc(blk, argc, argv);
}

int qemuio_command(BlockBackend *blk, const char *line)
{
    const QemuIOCommand *cmd;
    char *copy = g_strdup(line);
    char **argv;
    int argc, ret = 0;

    add_builtin_commands();
    argv = split_words(copy, &argc);
    if (argc) {
        cmd = find_command(argv[0]);
        if (cmd) {
            ret = run_command(blk, cmd, argc, argv);
        } else {
            fprintf(stderr, "command \"%s\" not found\n", argv[0]);
            ret = -EINVAL;
        }
    }
    g_free(argv);
    g_free(copy);
    return ret;
}
