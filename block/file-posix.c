/*
 * The "file" protocol driver: images stored in host files (and, in a
 * basic way, host block devices).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Reads and writes go through one of three back ends chosen with
 * aio=threads|native|io_uring.  The caller's buffers are handed to the
 * kernel as they are (zero-copy); only O_DIRECT requests with misaligned
 * memory are bounced.  Everything that can block (fdatasync, fallocate,
 * ftruncate, preallocation) runs in the thread pool.
 *
 * Image locking uses open file description locks on the same bytes as
 * QEMU (100 + permission bit: "I hold this", 200 + bit: "nobody else may
 * hold this"), so our tools and QEMU's refuse each other's conflicting
 * opens.  Which bytes a node holds follows from the permissions of its
 * parents (block/block-perm.c), as in QEMU.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/raw-aio.h"
#include "qemu/option.h"

#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <linux/fs.h>
#include <linux/magic.h>

typedef enum RawAioMode {
    RAW_AIO_THREADS,
    RAW_AIO_NATIVE,
    RAW_AIO_IO_URING,
} RawAioMode;

typedef enum RawLockMode {
    RAW_LOCK_AUTO,
    RAW_LOCK_ON,
    RAW_LOCK_OFF,
} RawLockMode;

#define RAW_LOCK_PERM_BASE   100
#define RAW_LOCK_SHARED_BASE 200
#define RAW_LOCK_NBITS       4

/* Largest block size probed for O_DIRECT. */
#define RAW_MAX_BLOCKSIZE    4096
/* iovec entries built on the stack for a sliced request. */
#define RAW_STACK_IOV        16

typedef struct BDRVRawState {
    int fd;
    char *filename;
    RawAioMode aio;
    LinuxAioState *laio;
    LuringState *luring;

    bool use_direct;
    bool no_flush;
    bool is_blockdev;
    uint32_t request_alignment;
    size_t buf_align;

    /* fallocate() capabilities, cleared when the fs says ENOTSUP. */
    bool has_write_zeroes;
    bool has_discard;
    bool has_fallocate;
    /* After a failed fdatasync the page cache state is unknown. */
    bool page_cache_inconsistent;
    /*
     * tmpfs never waits for a device, and io_uring punts its I/O to
     * worker threads: copying inline in the loop thread is far cheaper.
     */
    bool inline_io;
    /* Try reads with RWF_NOWAIT (page cache hits) before the pool. */
    bool try_nowait;

    bool use_lock;
    uint64_t perm, shared;            /* as requested */
    uint64_t locked_perm;             /* bits whose 100+i byte we hold */
    uint64_t locked_unshared;         /* bits whose 200+i byte we hold */
} BDRVRawState;

static const char *const raw_perm_names[RAW_LOCK_NBITS] = {
    "consistent read", "write", "write unchanged", "resize",
};

/* ---- image locking ---------------------------------------------------- */

static int raw_lock_byte(int fd, int64_t off, short type)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
        .l_type = type,
    };

    return fcntl(fd, F_OFD_SETLK, &fl) == -1 ? -errno : 0;
}

/* 0 if nobody else holds byte @off, -EAGAIN if someone does. */
static int raw_test_byte(int fd, int64_t off)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
        .l_type = F_WRLCK,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) == -1) {
        return -errno;
    }
    return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

/*
 * Make the held bytes match @perm/@unshared.  Without @unlock extra
 * bytes already held are kept.  The held sets (locked_perm and
 * locked_unshared) stay accurate even on failure.
 */
static int raw_apply_lock_bytes(int fd, uint64_t perm, uint64_t unshared,
                                bool unlock, uint64_t *locked_perm,
                                uint64_t *locked_unshared, Error **errp)
{
    int i, ret;

    for (i = 0; i < RAW_LOCK_NBITS * 2; i++) {
        bool shared_byte = i >= RAW_LOCK_NBITS;
        int bit_nr = i % RAW_LOCK_NBITS;
        uint64_t bit = 1ULL << bit_nr;
        uint64_t want = shared_byte ? unshared : perm;
        uint64_t *held = shared_byte ? locked_unshared : locked_perm;
        int off = (shared_byte ? RAW_LOCK_SHARED_BASE : RAW_LOCK_PERM_BASE) +
                  bit_nr;

        if ((want & bit) && !(*held & bit)) {
            ret = raw_lock_byte(fd, off, F_RDLCK);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Failed to lock byte %d", off);
                return ret;
            }
            *held |= bit;
        } else if (unlock && !(want & bit) && (*held & bit)) {
            ret = raw_lock_byte(fd, off, F_UNLCK);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Failed to unlock byte %d", off);
                return ret;
            }
            *held &= ~bit;
        }
    }
    return 0;
}

/* Does anybody else hold locks that conflict with @perm/@shared? */
static int raw_check_lock_bytes(int fd, uint64_t perm, uint64_t shared,
                                const char *filename, Error **errp)
{
    int i, ret;

    for (i = 0; i < RAW_LOCK_NBITS; i++) {
        if (!(perm & (1ULL << i))) {
            continue;
        }
        ret = raw_test_byte(fd, RAW_LOCK_SHARED_BASE + i);
        if (ret < 0) {
            error_setg(errp, "Failed to get \"%s\" lock", raw_perm_names[i]);
            error_append_hint(errp, "Is another process using the image "
                              "[%s]?\n", filename);
            return ret;
        }
    }
    for (i = 0; i < RAW_LOCK_NBITS; i++) {
        if (shared & (1ULL << i)) {
            continue;
        }
        ret = raw_test_byte(fd, RAW_LOCK_PERM_BASE + i);
        if (ret < 0) {
            error_setg(errp, "Failed to get shared \"%s\" lock",
                       raw_perm_names[i]);
            error_append_hint(errp, "Is another process using the image "
                              "[%s]?\n", filename);
            return ret;
        }
    }
    return 0;
}

/*
 * Take the locks for @perm/@shared on @fd, check nobody conflicts, then
 * drop bytes no longer needed.  On failure the previously held set is
 * restored.
 */
static int raw_lock_fd(int fd, const char *filename, uint64_t perm,
                       uint64_t shared, uint64_t *locked_perm,
                       uint64_t *locked_unshared, Error **errp)
{
    uint64_t old_perm = *locked_perm, old_unshared = *locked_unshared;
    uint64_t unshared = ~shared & BLK_PERM_ALL;
    int ret;

    /* Hold the union first so there is no window without our locks. */
    ret = raw_apply_lock_bytes(fd, perm | old_perm, unshared | old_unshared,
                               false, locked_perm, locked_unshared, errp);
    if (ret == 0) {
        ret = raw_check_lock_bytes(fd, perm, shared, filename, errp);
    }
    if (ret == 0) {
        ret = raw_apply_lock_bytes(fd, perm, unshared, true, locked_perm,
                                   locked_unshared, errp);
    }
    if (ret < 0) {
        raw_apply_lock_bytes(fd, old_perm, old_unshared, true, locked_perm,
                             locked_unshared, NULL);
    }
    return ret;
}

/*
 * bdrv_set_perm: hold the lock bytes for the node's total @perm/@shared.
 * Not a coroutine.  Returns 0 or -errno with errp set; on failure the
 * old bytes stay held.
 */
static int raw_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared,
                        Error **errp)
{
    BDRVRawState *s = bs->opaque;
    uint64_t unshared = ~shared & BLK_PERM_ALL;
    int ret;

    perm &= BLK_PERM_ALL;
    shared &= BLK_PERM_ALL;
    if (!s->use_lock) {
        s->perm = perm;
        s->shared = shared;
        return 0;
    }
    if (!(perm & ~s->perm) && !(unshared & s->shared)) {
        /* Only giving up: nothing new to check, just drop bytes. */
        ret = raw_apply_lock_bytes(s->fd, perm, unshared, true,
                                   &s->locked_perm, &s->locked_unshared, NULL);
    } else {
        ret = raw_lock_fd(s->fd, s->filename, perm, shared, &s->locked_perm,
                          &s->locked_unshared, errp);
        if (ret < 0) {
            return ret;
        }
    }
    s->perm = perm;
    s->shared = shared;
    return 0;
}

int raw_file_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared,
                      Error **errp)
{
    if (bs->drv != &bdrv_file) {
        error_setg(errp, "Not a file node");
        return -EINVAL;
    }
    return raw_set_perm(bs, perm, shared, errp);
}

/* ---- option parsing --------------------------------------------------- */

/* Take @key out of @options (the caller frees the result). */
static char *raw_take_opt(QDict *options, const char *key)
{
    const char *v = options ? qdict_get_try_str(options, key) : NULL;
    char *ret = g_strdup(v);

    if (v) {
        qdict_del(options, key);
    }
    return ret;
}

static int raw_parse_bool(const char *name, const char *v, bool *out,
                          Error **errp)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "false") ||
               !strcmp(v, "no")) {
        *out = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
        return -EINVAL;
    }
    return 0;
}

static void raw_parse_filename(const char *filename, QDict *options,
                               Error **errp)
{
    if (g_str_has_prefix(filename, "file:")) {
        filename += strlen("file:");
    }
    qdict_put_str(options, "filename", filename);
}

/* ---- alignment probing ------------------------------------------------ */

/*
 * O_DIRECT needs offsets, lengths and buffers aligned; the kernel does
 * not say how much for files, so try reads of increasing alignment.
 * Reading at or past EOF succeeds whatever the alignment, which is why
 * new images get their first block allocated (raw_allocate_first_block).
 */
static void raw_probe_alignment(BDRVRawState *s)
{
    size_t max_align = MAX(RAW_MAX_BLOCKSIZE, qemu_real_host_page_size());
    uint8_t *buf;
    size_t align;

    s->request_alignment = 1;
    s->buf_align = 1;
    if (!s->use_direct) {
        return;
    }

    s->request_alignment = 0;
    s->buf_align = 0;
#ifdef BLKSSZGET
    if (s->is_blockdev) {
        int sector_size;

        if (ioctl(s->fd, BLKSSZGET, &sector_size) == 0 && sector_size > 0) {
            s->request_alignment = sector_size;
        }
    }
#endif
    buf = qemu_try_memalign(max_align, 2 * max_align);
    if (buf) {
        for (align = 512; !s->request_alignment && align <= max_align;
             align <<= 1) {
            if (pread(s->fd, buf, align, 0) >= 0) {
                s->request_alignment = align;
            }
        }
        for (align = 512; !s->buf_align && align <= max_align;
             align <<= 1) {
            if (pread(s->fd, buf + align, max_align, 0) >= 0) {
                s->buf_align = align;
            }
        }
        qemu_vfree(buf);
    }
    if (!s->request_alignment) {
        s->request_alignment = RAW_MAX_BLOCKSIZE;
    }
    if (!s->buf_align) {
        s->buf_align = RAW_MAX_BLOCKSIZE;
    }
}

static void raw_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    bs->bl.request_alignment = s->request_alignment;
    bs->bl.min_mem_alignment = s->buf_align;
    bs->bl.opt_mem_alignment = MAX(s->buf_align, qemu_real_host_page_size());
    bs->bl.max_iov = IOV_MAX;
    /* Keep single requests within what a thread's int result can carry. */
    bs->bl.max_transfer = 1 << 30;
    if (s->use_direct) {
        bs->bl.pdiscard_alignment = s->request_alignment;
        bs->bl.pwrite_zeroes_alignment = s->request_alignment;
    }
}

/* ---- open / close ----------------------------------------------------- */

static int coroutine_fn raw_co_open(BlockDriverState *bs, QDict *options,
                                    int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    char *filename = raw_take_opt(options, "filename");
    char *aio = raw_take_opt(options, "aio");
    char *locking = raw_take_opt(options, "locking");
    char *direct = raw_take_opt(options, "cache.direct");
    char *no_flush = raw_take_opt(options, "cache.no-flush");
    /* Accepted for compatibility with QEMU's option set; no effect here. */
    char *max_batch = raw_take_opt(options, "aio-max-batch");
    char *drop_cache = raw_take_opt(options, "drop-cache");
    char *check_dropped = raw_take_opt(options, "x-check-cache-dropped");
    RawLockMode lock_mode = RAW_LOCK_AUTO;
    bool rw = flags & BDRV_O_RDWR;
    AioContext *ctx;
    struct stat st;
    int oflags, ret;

    s->fd = -1;
    if (!filename && bs->filename[0]) {
        filename = g_strdup(bs->filename);
    }
    if (!filename) {
        error_setg(errp, "The 'file' block driver requires a file name");
        ret = -EINVAL;
        goto fail;
    }
    if (g_str_has_prefix(filename, "file:")) {
        memmove(filename, filename + 5, strlen(filename + 5) + 1);
    }
    s->filename = filename;
    filename = NULL;
    if (!bs->filename[0]) {
        g_strlcpy(bs->filename, s->filename, sizeof(bs->filename));
    }

    s->use_direct = flags & BDRV_O_NOCACHE;
    if (direct && raw_parse_bool("cache.direct", direct, &s->use_direct,
                                 errp) < 0) {
        ret = -EINVAL;
        goto fail;
    }
    s->no_flush = flags & BDRV_O_NO_FLUSH;
    if (no_flush && raw_parse_bool("cache.no-flush", no_flush, &s->no_flush,
                                   errp) < 0) {
        ret = -EINVAL;
        goto fail;
    }

    if (!aio) {
        s->aio = (flags & BDRV_O_IO_URING) ? RAW_AIO_IO_URING :
                 (flags & BDRV_O_NATIVE_AIO) ? RAW_AIO_NATIVE :
                 RAW_AIO_THREADS;
    } else if (!strcmp(aio, "threads")) {
        s->aio = RAW_AIO_THREADS;
    } else if (!strcmp(aio, "native")) {
        s->aio = RAW_AIO_NATIVE;
    } else if (!strcmp(aio, "io_uring")) {
        s->aio = RAW_AIO_IO_URING;
    } else {
        error_setg(errp, "invalid parameter value: %s", aio);
        ret = -EINVAL;
        goto fail;
    }
    if (s->aio == RAW_AIO_NATIVE && !s->use_direct) {
        error_setg(errp, "aio=native was specified, but it requires "
                   "cache.direct=on, which was not specified.");
        ret = -EINVAL;
        goto fail;
    }

    if (!locking || !strcmp(locking, "auto")) {
        lock_mode = RAW_LOCK_AUTO;
    } else if (!strcmp(locking, "on")) {
        lock_mode = RAW_LOCK_ON;
    } else if (!strcmp(locking, "off")) {
        lock_mode = RAW_LOCK_OFF;
    } else {
        error_setg(errp, "invalid parameter value: %s", locking);
        ret = -EINVAL;
        goto fail;
    }

    oflags = O_CLOEXEC | (rw ? O_RDWR : O_RDONLY) |
             (s->use_direct ? O_DIRECT : 0);
    s->fd = open(s->filename, oflags);
    if (s->fd < 0 && rw && (flags & BDRV_O_AUTO_RDONLY) &&
        (errno == EACCES || errno == EROFS || errno == EPERM)) {
        rw = false;
        oflags = (oflags & ~O_RDWR) | O_RDONLY;
        s->fd = open(s->filename, oflags);
        if (s->fd >= 0) {
            bs->read_only = true;
            bs->open_flags &= ~BDRV_O_RDWR;
        }
    }
    if (s->fd < 0) {
        ret = -errno;
        error_setg_errno(errp, errno, "Could not open '%s'", s->filename);
        goto fail;
    }
    if (fstat(s->fd, &st) < 0) {
        ret = -errno;
        error_setg_errno(errp, errno, "Could not stat file");
        goto fail;
    }
    if (S_ISBLK(st.st_mode)) {
        s->is_blockdev = true;
    } else if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "'file' driver requires '%s' to be a regular file",
                   s->filename);
        ret = -EINVAL;
        goto fail;
    }
    {
        struct statfs sfs;

        s->inline_io = s->aio != RAW_AIO_NATIVE && fstatfs(s->fd, &sfs) == 0 &&
                       sfs.f_type == TMPFS_MAGIC;
    }
    s->try_nowait = s->aio == RAW_AIO_THREADS && !s->use_direct;
    s->has_fallocate = !s->is_blockdev;
    s->has_discard = !s->is_blockdev;
    s->has_write_zeroes = !s->is_blockdev;

    /*
     * No locks yet: a node holds what its parents need, applied through
     * raw_set_perm once they are known.  Here only find out whether the
     * file system can lock at all.
     */
    s->perm = 0;
    s->shared = BLK_PERM_ALL;
    if (lock_mode != RAW_LOCK_OFF) {
        ret = raw_test_byte(s->fd, RAW_LOCK_PERM_BASE);
        s->use_lock = true;
        if (ret == -ENOTSUP || ret == -ENOLCK || ret == -EINVAL) {
            if (lock_mode == RAW_LOCK_ON) {
                error_setg_errno(errp, -ret, "Failed to lock byte %d",
                                 RAW_LOCK_PERM_BASE);
                goto fail;
            }
            /* The file system cannot lock: go on without, as QEMU does. */
            s->use_lock = false;
        }
        ret = 0;
    }

    ctx = bs->aio_context ? bs->aio_context : qemu_get_current_aio_context();
    if (s->aio == RAW_AIO_NATIVE) {
        s->laio = aio_get_linux_aio(ctx, errp);
        if (!s->laio) {
            error_prepend(errp, "Unable to use native AIO: ");
            ret = -EINVAL;
            goto fail;
        }
    } else if (s->aio == RAW_AIO_IO_URING) {
        s->luring = aio_get_linux_io_uring(ctx, errp);
        if (!s->luring) {
            error_prepend(errp, "Unable to use io_uring: ");
            ret = -EINVAL;
            goto fail;
        }
    }

    /* Let the generic layer see the cache mode the options selected. */
    bs->open_flags = (bs->open_flags & ~BDRV_O_CACHE_MASK) |
                     (s->use_direct ? BDRV_O_NOCACHE : 0) |
                     (s->no_flush ? BDRV_O_NO_FLUSH : 0);
    raw_probe_alignment(s);
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    raw_refresh_limits(bs, NULL);
    ret = 0;
    goto out;

fail:
    if (s->fd >= 0) {
        close(s->fd);    /* also drops any OFD lock */
        s->fd = -1;
    }
    g_free(s->filename);
    s->filename = NULL;
out:
    g_free(filename);
    g_free(aio);
    g_free(locking);
    g_free(direct);
    g_free(no_flush);
    g_free(max_batch);
    g_free(drop_cache);
    g_free(check_dropped);
    return ret;
}

static void coroutine_fn raw_co_close(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    g_free(s->filename);
    s->filename = NULL;
}

/* ---- reads and writes ------------------------------------------------- */

typedef struct RawRwData {
    int fd;
    QemuAioType type;
    uint64_t offset;
    const struct iovec *iov;
    int niov;
    size_t bytes;
    size_t done;                 /* bytes already transferred */
    uint32_t align;              /* request alignment (O_DIRECT) */
} RawRwData;

/*
 * A fresh array for bytes [skip, end) of @iov: only needed after a short
 * transfer, which is rare.
 */
static struct iovec *raw_iov_tail(const struct iovec *iov, int niov,
                                  size_t skip, int *pniov)
{
    struct iovec *tail;
    int i;

    while (niov > 0 && skip >= iov->iov_len) {
        skip -= iov->iov_len;
        iov++;
        niov--;
    }
    tail = g_new(struct iovec, MAX(niov, 1));
    for (i = 0; i < niov; i++) {
        tail[i] = iov[i];
    }
    if (niov > 0) {
        tail[0].iov_base = (uint8_t *)tail[0].iov_base + skip;
        tail[0].iov_len -= skip;
    }
    *pniov = niov;
    return tail;
}

/*
 * After a transfer of @done bytes out of @d->bytes (0 < done < bytes or
 * done == 0 with @eof): decide whether to carry on.  Returns 1 to retry
 * the rest, 0 when the request is complete (EOF zero-filled), -errno.
 */
static int raw_handle_short(RawRwData *d, size_t done, bool eof)
{
    if (d->type == QEMU_AIO_READ) {
        /* At EOF, or unaligned remainder under O_DIRECT (which can only
         * be EOF too): the rest reads as zeroes. */
        if (eof || ((d->offset + done) % d->align) != 0) {
            iov_memset(d->iov, d->niov, done, 0, d->bytes - done);
            return 0;
        }
        return 1;
    }
    return eof ? -ENOSPC : 1;
}

/*
 * What is left of @d once @done bytes are transferred: @d's own array at
 * first, after a short transfer a fresh one in *@tail (which replaces any
 * earlier one; the caller frees the last).
 */
static const struct iovec *raw_rw_rest(RawRwData *d, size_t done,
                                       struct iovec **tail, int *niov)
{
    g_free(*tail);
    *tail = NULL;
    if (!done) {
        *niov = d->niov;
        return d->iov;
    }
    *tail = raw_iov_tail(d->iov, d->niov, done, niov);
    return *tail;
}

/*
 * Account for @n more bytes transferred after *@done: 0 when the request
 * is complete, 1 to transfer the rest (*@done advanced), -errno.  Both
 * submission paths share it so that short transfers are handled alike.
 */
static int raw_rw_step(RawRwData *d, size_t *done, size_t n)
{
    int ret;

    if (*done + n == d->bytes) {
        return 0;
    }
    ret = raw_handle_short(d, *done + n, n == 0);
    if (ret > 0) {
        *done += n;
    }
    return ret;
}

static int raw_thread_rw(void *opaque)
{
    RawRwData *d = opaque;
    struct iovec *tail = NULL;
    size_t done = d->done;
    int niov;
    const struct iovec *iov = raw_rw_rest(d, done, &tail, &niov);
    int ret = 0;

    while (done < d->bytes) {
        off_t pos = d->offset + done;
        ssize_t n;

        if (d->type == QEMU_AIO_READ) {
            n = niov == 1 ? pread(d->fd, iov->iov_base, iov->iov_len, pos)
                          : preadv(d->fd, iov, niov, pos);
        } else {
            n = niov == 1 ? pwrite(d->fd, iov->iov_base, iov->iov_len, pos)
                          : pwritev(d->fd, iov, niov, pos);
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            ret = -errno;
            break;
        }
        ret = raw_rw_step(d, &done, n);
        if (ret <= 0) {
            break;
        }
        ret = 0;
        iov = raw_rw_rest(d, done, &tail, &niov);
    }
    g_free(tail);
    return ret;
}

static int coroutine_fn raw_co_rw_async(BDRVRawState *s, RawRwData *d)
{
    struct iovec *tail = NULL;
    size_t done = d->done;
    int niov;
    const struct iovec *iov = raw_rw_rest(d, done, &tail, &niov);
    ssize_t n;
    int ret;

    for (;;) {
        /* The submit functions do not write to the array. */
        struct iovec *v = (struct iovec *)iov;

        if (s->aio == RAW_AIO_IO_URING) {
            n = luring_co_submit(s->luring, d->fd, d->offset + done, v, niov,
                                 d->type);
        } else {
            n = laio_co_submit(s->laio, d->fd, d->offset + done, v, niov,
                               d->type);
        }
        if (n < 0) {
            ret = n;
            break;
        }
        ret = raw_rw_step(d, &done, n);
        if (ret <= 0) {
            break;
        }
        iov = raw_rw_rest(d, done, &tail, &niov);
    }
    g_free(tail);
    return ret;
}

static bool raw_iov_is_aligned(const struct iovec *iov, int niov,
                               size_t align)
{
    int i;

    for (i = 0; i < niov; i++) {
        if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1)) {
            return false;
        }
    }
    return true;
}

static int coroutine_fn raw_co_prw(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_offset, QemuAioType type)
{
    BDRVRawState *s = bs->opaque;
    struct iovec stack_iov[RAW_STACK_IOV];
    struct iovec *iov, *heap_iov = NULL;
    struct iovec bounce_iov;
    void *bounce = NULL;
    RawRwData d;
    int niov, ret;

    if (bytes == 0) {
        return 0;
    }

    /* Describe the slice of the caller's buffers without copying data. */
    if (qiov_offset == 0 && bytes == qiov->size) {
        iov = qiov->iov;
        niov = qiov->niov;
    } else {
        size_t skip = qiov_offset, left = bytes;
        int i = 0, n = 0, cap = RAW_STACK_IOV;

        while (skip >= qiov->iov[i].iov_len) {
            skip -= qiov->iov[i].iov_len;
            i++;
        }
        iov = stack_iov;
        while (left > 0) {
            size_t len = MIN(qiov->iov[i].iov_len - skip, left);

            if (n == cap) {
                cap = qiov->niov;
                heap_iov = g_new(struct iovec, cap);
                memcpy(heap_iov, stack_iov, sizeof(stack_iov));
                iov = heap_iov;
            }
            iov[n].iov_base = (uint8_t *)qiov->iov[i].iov_base + skip;
            iov[n].iov_len = len;
            n++;
            left -= len;
            skip = 0;
            i++;
        }
        niov = n;
    }

    if (s->use_direct && !raw_iov_is_aligned(iov, niov, s->buf_align)) {
        bounce = qemu_try_memalign(MAX(s->buf_align,
                                       qemu_real_host_page_size()), bytes);
        if (!bounce) {
            ret = -ENOMEM;
            goto out;
        }
        if (type == QEMU_AIO_WRITE) {
            iov_to_buf(iov, niov, 0, bounce, bytes);
        }
        bounce_iov.iov_base = bounce;
        bounce_iov.iov_len = bytes;
        d.iov = &bounce_iov;
        d.niov = 1;
    } else {
        d.iov = iov;
        d.niov = niov;
    }
    d.fd = s->fd;
    d.type = type;
    d.offset = offset;
    d.bytes = bytes;
    d.done = 0;
    d.align = s->request_alignment;

    if (s->inline_io) {
        ret = raw_thread_rw(&d);
        goto copy_out;
    }
    if (type == QEMU_AIO_READ && s->try_nowait) {
        ssize_t n = preadv2(d.fd, d.iov, d.niov, offset, RWF_NOWAIT);

        if (n == bytes) {
            ret = 0;
            goto copy_out;
        } else if (n > 0) {
            d.done = n;     /* partly cached: the pool reads the rest */
        } else if (n < 0 && errno == EOPNOTSUPP) {
            s->try_nowait = false;
        }
    }
    if (s->aio == RAW_AIO_THREADS) {
        ret = thread_pool_submit_co(raw_thread_rw, &d);
    } else {
        ret = raw_co_rw_async(s, &d);
    }

copy_out:
    if (bounce && type == QEMU_AIO_READ && ret == 0) {
        iov_from_buf(iov, niov, 0, bounce, bytes);
    }
out:
    qemu_vfree(bounce);
    g_free(heap_iov);
    return ret;
}

static int coroutine_fn raw_co_preadv_part(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           size_t qiov_offset,
                                           BdrvRequestFlags flags)
{
    return raw_co_prw(bs, offset, bytes, qiov, qiov_offset, QEMU_AIO_READ);
}

static int coroutine_fn raw_co_pwritev_part(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            size_t qiov_offset,
                                            BdrvRequestFlags flags)
{
    return raw_co_prw(bs, offset, bytes, qiov, qiov_offset, QEMU_AIO_WRITE);
}

/* ---- flush ------------------------------------------------------------ */

static int raw_thread_fdatasync(void *opaque)
{
    int fd = *(int *)opaque;

    while (fdatasync(fd) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static int coroutine_fn raw_co_flush_to_disk(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    int fd = s->fd;
    int ret;

    if (s->no_flush) {
        return 0;
    }
    /*
     * Once fdatasync has failed, Linux may have dropped the dirty pages
     * and a later fdatasync would wrongly succeed.
     */
    if (s->page_cache_inconsistent) {
        return -EIO;
    }
    if (s->aio == RAW_AIO_IO_URING) {
        ret = luring_co_submit(s->luring, fd, 0, NULL, 0, QEMU_AIO_FLUSH);
    } else {
        ret = thread_pool_submit_co(raw_thread_fdatasync, &fd);
    }
    if (ret < 0 && ret != -EINVAL && ret != -ENOTSUP) {
        s->page_cache_inconsistent = true;
    }
    return ret < 0 ? ret : 0;
}

/* ---- write zeroes and discard ----------------------------------------- */

typedef struct RawFallocData {
    BDRVRawState *s;
    int64_t offset;
    int64_t bytes;
    BdrvRequestFlags flags;
} RawFallocData;

static int raw_fallocate(int fd, int mode, int64_t offset, int64_t bytes)
{
    while (fallocate(fd, mode, offset, bytes) < 0) {
        if (errno != EINTR) {
            /* Kernels say EOPNOTSUPP or EINVAL for unsupported modes. */
            return errno == EOPNOTSUPP || errno == EINVAL ? -ENOTSUP
                                                           : -errno;
        }
    }
    return 0;
}

static int raw_thread_discard(void *opaque)
{
    RawFallocData *d = opaque;
    int ret;

    if (!d->s->has_discard) {
        return -ENOTSUP;
    }
    ret = raw_fallocate(d->s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        d->offset, d->bytes);
    if (ret == -ENOTSUP) {
        d->s->has_discard = false;
    }
    return ret;
}

static int raw_thread_write_zeroes(void *opaque)
{
    RawFallocData *d = opaque;
    BDRVRawState *s = d->s;
    struct stat st;
    int ret;

    if (d->flags & BDRV_REQ_MAY_UNMAP) {
        ret = raw_thread_discard(d);
        if (ret != -ENOTSUP) {
            if (ret == 0 && fstat(s->fd, &st) == 0 &&
                d->offset + d->bytes > st.st_size &&
                ftruncate(s->fd, d->offset + d->bytes) < 0) {
                return -errno;
            }
            return ret;
        }
    }

    if (s->has_write_zeroes) {
        /* Without KEEP_SIZE this also extends the file if needed. */
        ret = raw_fallocate(s->fd, FALLOC_FL_ZERO_RANGE, d->offset, d->bytes);
        if (ret != -ENOTSUP) {
            return ret;
        }
        s->has_write_zeroes = false;
    }

    if (s->has_discard && s->has_fallocate) {
        /* Punch, then allocate again so later writes cannot fail ENOSPC. */
        ret = raw_fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            d->offset, d->bytes);
        if (ret == 0) {
            ret = raw_fallocate(s->fd, 0, d->offset, d->bytes);
            if (ret == -ENOTSUP) {
                s->has_fallocate = false;
                ret = 0;
            }
            return ret;
        }
        if (ret != -ENOTSUP) {
            return ret;
        }
        s->has_discard = false;
    }
    return -ENOTSUP;
}

static int coroutine_fn raw_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    RawFallocData d = { s, offset, bytes, flags };

    if (s->is_blockdev) {
        return -ENOTSUP;
    }
    return thread_pool_submit_co(raw_thread_write_zeroes, &d);
}

static int coroutine_fn raw_co_pdiscard(BlockDriverState *bs,
                                        int64_t offset, int64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    RawFallocData d = { s, offset, bytes, 0 };

    if (!(bs->open_flags & BDRV_O_UNMAP)) {
        return 0;
    }
    if (s->is_blockdev) {
        return -ENOTSUP;
    }
    return thread_pool_submit_co(raw_thread_discard, &d);
}

/* ---- block status ----------------------------------------------------- */

/*
 * Find where @start lies: in data ([*data, *hole) with *data == start)
 * or in a hole ([*hole, *data) with *hole == start).  -ENXIO: at or past
 * the end of the file (or a trailing hole).
 */
static int raw_find_allocation(BDRVRawState *s, off_t start, off_t *data,
                               off_t *hole)
{
    off_t d, h;

    d = lseek(s->fd, start, SEEK_DATA);
    if (d < 0) {
        return -errno;
    }
    if (d > start) {
        *hole = start;
        *data = d;
        return 0;
    }
    h = lseek(s->fd, start, SEEK_HOLE);
    if (h < 0) {
        return -errno;
    }
    if (h <= start) {
        /* The file changed under us; call it data. */
        return -EBUSY;
    }
    *data = start;
    *hole = h;
    return 0;
}

static int coroutine_fn raw_co_block_status(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;
    uint32_t align = s->request_alignment;
    off_t data = 0, hole = 0;
    int ret;

    *map = offset;
    *file = bs;
    if (!want_zero || s->is_blockdev) {
        *pnum = bytes;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }

    ret = raw_find_allocation(s, offset, &data, &hole);
    if (ret == -ENXIO) {
        /* Trailing hole, or past the end: reads return zeroes. */
        *pnum = bytes;
        ret = BDRV_BLOCK_ZERO;
    } else if (ret < 0) {
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA;
    } else if (data == offset) {
        /* Data up to the next hole; round up to the alignment (the
         * file's end may be unaligned under O_DIRECT). */
        *pnum = MIN(bytes, ROUND_UP((int64_t)hole - offset, align));
        ret = BDRV_BLOCK_DATA;
    } else {
        int64_t len = MIN(bytes, (int64_t)data - offset);

        len = ROUND_DOWN(len, align);
        if (len == 0) {
            /* Hole shorter than a block: report the block as data. */
            *pnum = MIN(bytes, (int64_t)align);
            ret = BDRV_BLOCK_DATA;
        } else {
            *pnum = len;
            ret = BDRV_BLOCK_ZERO;
        }
    }
    return ret | BDRV_BLOCK_OFFSET_VALID;
}

/* ---- size ------------------------------------------------------------- */

static int64_t coroutine_fn raw_co_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;

    if (s->is_blockdev) {
        off_t end = lseek(s->fd, 0, SEEK_END);

        return end < 0 ? -errno : end;
    }
    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return st.st_size;
}

static int64_t coroutine_fn raw_co_get_allocated_file_size(
    BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

/*
 * Write zeroes to the first block so that O_DIRECT alignment probing
 * finds real data there (reads in holes succeed at any alignment on
 * some file systems).
 */
static void raw_allocate_first_block(int fd, int64_t max_size)
{
    size_t len = MIN(MAX(RAW_MAX_BLOCKSIZE, qemu_real_host_page_size()),
                     (size_t)max_size);
    size_t align = MAX(RAW_MAX_BLOCKSIZE, qemu_real_host_page_size());
    void *buf = qemu_try_memalign(align, align);
    ssize_t n;

    if (!buf) {
        return;
    }
    memset(buf, 0, align);
    do {
        n = pwrite(fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    qemu_vfree(buf);
}

typedef struct RawTruncateData {
    int fd;
    int64_t offset;
    PreallocMode prealloc;
    Error **errp;
} RawTruncateData;

static int raw_thread_truncate(void *opaque)
{
    RawTruncateData *d = opaque;
    int fd = d->fd;
    struct stat st;
    int64_t cur;
    int ret = 0;

    if (fstat(fd, &st) < 0) {
        ret = -errno;
        error_setg_errno(d->errp, -ret, "Could not stat file");
        return ret;
    }
    cur = st.st_size;
    if (cur > d->offset && d->prealloc != PREALLOC_MODE_OFF) {
        error_setg(d->errp, "Cannot use preallocation for shrinking files");
        return -ENOTSUP;
    }

    switch (d->prealloc) {
    case PREALLOC_MODE_OFF:
        if (ftruncate(fd, d->offset) < 0) {
            ret = -errno;
            error_setg_errno(d->errp, -ret, "Could not resize file");
            return ret;
        }
        if (cur == 0 && d->offset > 0) {
            raw_allocate_first_block(fd, d->offset);
        }
        return 0;

    case PREALLOC_MODE_FALLOC:
        if (d->offset == cur) {
            return 0;
        }
        ret = -posix_fallocate(fd, cur, d->offset - cur);
        if (ret < 0) {
            error_setg_errno(d->errp, -ret, "Could not preallocate new data");
        } else if (cur == 0) {
            raw_allocate_first_block(fd, d->offset);
        }
        break;

    case PREALLOC_MODE_FULL: {
        const size_t chunk = 64 * KiB;
        int64_t pos = cur;
        void *zeroes;

        /* Setting the final size first lets the fs allocate in one go. */
        if (ftruncate(fd, d->offset) < 0) {
            ret = -errno;
            error_setg_errno(d->errp, -ret, "Could not resize file");
            break;
        }
        zeroes = g_malloc0(chunk);
        while (pos < d->offset) {
            ssize_t n = pwrite(fd, zeroes, MIN(chunk, d->offset - pos), pos);

            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                ret = -errno;
                error_setg_errno(d->errp, -ret,
                                 "Could not write zeros for preallocation");
                break;
            }
            pos += n;
        }
        g_free(zeroes);
        if (ret == 0 && fsync(fd) < 0) {
            ret = -errno;
            error_setg_errno(d->errp, -ret, "Could not flush file to disk");
        }
        break;
    }

    default:
        error_setg(d->errp, "Unsupported preallocation mode: %s",
                   PreallocMode_str[d->prealloc]);
        return -ENOTSUP;
    }

    if (ret < 0 && ftruncate(fd, cur) < 0) {
        error_report("Failed to restore old file length: %s",
                     strerror(errno));
    }
    return ret;
}

static int coroutine_fn raw_co_truncate(BlockDriverState *bs, int64_t offset,
                                        bool exact, PreallocMode prealloc,
                                        BdrvRequestFlags flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    RawTruncateData d = { s->fd, offset, prealloc, errp };

    if (s->is_blockdev) {
        int64_t len = raw_co_getlength(bs);

        if (prealloc != PREALLOC_MODE_OFF) {
            error_setg(errp, "Preallocation mode '%s' unsupported for this "
                       "non-regular file", PreallocMode_str[prealloc]);
            return -ENOTSUP;
        }
        if (len < 0) {
            error_setg_errno(errp, -len, "Failed to get device size");
            return len;
        }
        if (offset > len) {
            error_setg(errp, "Cannot grow device files");
            return -EINVAL;
        }
        if (exact && offset != len) {
            error_setg(errp, "Cannot resize device files");
            return -ENOTSUP;
        }
        return 0;
    }
    return thread_pool_submit_co(raw_thread_truncate, &d);
}

/* ---- image creation --------------------------------------------------- */

typedef struct RawCreateData {
    const char *filename;
    int64_t size;
    PreallocMode prealloc;
    bool nocow;
    int64_t extent_size_hint;
    Error *err;
} RawCreateData;

static void raw_set_create_attrs(int fd, RawCreateData *d)
{
#ifdef FS_IOC_FSSETXATTR
    if (d->extent_size_hint > 0) {
        struct fsxattr attr;

        /* Only XFS knows extent size hints; others fail, harmlessly. */
        if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) == 0) {
            attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
            attr.fsx_extsize = MIN(d->extent_size_hint, UINT32_MAX);
            if (ioctl(fd, FS_IOC_FSSETXATTR, &attr) < 0) {
                /* best effort */
            }
        }
    }
#endif
    if (d->nocow) {
        int attr;

        /* Only takes effect on an empty file, which this is (btrfs). */
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            if (ioctl(fd, FS_IOC_SETFLAGS, &attr) < 0) {
                /* best effort */
            }
        }
    }
}

static int raw_thread_create(void *opaque)
{
    RawCreateData *d = opaque;
    uint64_t locked_perm = 0, locked_unshared = 0;
    RawTruncateData td;
    int fd, ret;

    fd = open(d->filename, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        error_setg_errno(&d->err, -ret, "Could not create '%s'", d->filename);
        return ret;
    }

    /*
     * No O_TRUNC: take the write lock first so an image in use by
     * another process is refused rather than destroyed.
     */
    ret = raw_lock_fd(fd, d->filename, BLK_PERM_WRITE | BLK_PERM_RESIZE,
                      BLK_PERM_ALL & ~BLK_PERM_RESIZE, &locked_perm,
                      &locked_unshared, &d->err);
    if (ret < 0 && (ret == -ENOTSUP || ret == -ENOLCK || ret == -EINVAL) &&
        !locked_perm && !locked_unshared) {
        /* No lock support on this file system. */
        error_free(d->err);
        d->err = NULL;
        ret = 0;
    }
    if (ret < 0) {
        goto out;
    }

    if (ftruncate(fd, 0) < 0) {
        ret = -errno;
        error_setg_errno(&d->err, -ret, "Could not clear the new file");
        goto out;
    }
    raw_set_create_attrs(fd, d);

    td.fd = fd;
    td.offset = d->size;
    td.prealloc = d->prealloc;
    td.errp = &d->err;
    ret = raw_thread_truncate(&td);

out:
    if (close(fd) < 0 && ret == 0) {
        ret = -errno;
        error_setg_errno(&d->err, -ret, "Could not close the new file");
    }
    return ret;
}

static int coroutine_fn raw_co_create_opts(BlockDriver *drv,
                                           const char *filename,
                                           QemuOpts *opts, Error **errp)
{
    RawCreateData d = { 0 };
    const char *prealloc_str;
    int prealloc = PREALLOC_MODE_OFF;
    int ret;

    if (g_str_has_prefix(filename, "file:")) {
        filename += strlen("file:");
    }
    d.filename = filename;
    d.size = ROUND_UP(qemu_opt_get_size(opts, "size", 0), BDRV_SECTOR_SIZE);
    d.nocow = qemu_opt_get_bool(opts, "nocow", false);
    d.extent_size_hint = qemu_opt_has(opts, "extent_size_hint")
                         ? (int64_t)qemu_opt_get_size(opts, "extent_size_hint",
                                                      0)
                         : 1 * MiB;
    prealloc_str = qemu_opt_get(opts, "preallocation");
    if (prealloc_str) {
        prealloc = prealloc_mode_parse(prealloc_str, NULL);
        if (prealloc < 0) {
            /* QEMU's wording for a bad enum value of this protocol */
            error_setg(errp, "invalid parameter value: %s", prealloc_str);
            return -EINVAL;
        }
    }
    if (prealloc != PREALLOC_MODE_OFF && prealloc != PREALLOC_MODE_FALLOC &&
        prealloc != PREALLOC_MODE_FULL) {
        error_setg(errp, "Unsupported preallocation mode: %s",
                   PreallocMode_str[prealloc]);
        return -ENOTSUP;
    }
    d.prealloc = prealloc;

    ret = thread_pool_submit_co(raw_thread_create, &d);
    if (d.err) {
        error_propagate(errp, d.err);
    } else if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not create '%s'", filename);
    }
    return ret;
}

static const QemuOptDesc raw_create_opts_desc[] = {
    {
        .name = "size",
        .type = QEMU_OPT_SIZE,
        .help = "Virtual disk size",
    },
    {
        .name = "nocow",
        .type = QEMU_OPT_BOOL,
        .help = "Turn off copy-on-write (valid only on btrfs)",
    },
    {
        .name = "preallocation",
        .type = QEMU_OPT_STRING,
        .help = "Preallocation mode (allowed values: off, falloc, full)",
    },
    {
        .name = "extent_size_hint",
        .type = QEMU_OPT_SIZE,
        .help = "Extent size hint for the image file, 0 to disable",
    },
    { /* end of list */ }
};

static const QemuOptsList raw_create_opts = {
    .name = "raw-create-opts",
    .desc = raw_create_opts_desc,
};

BlockDriver bdrv_file = {
    .format_name = "file",
    .protocol_name = "file",
    .instance_size = sizeof(BDRVRawState),
    .bdrv_parse_filename = raw_parse_filename,
    .bdrv_co_open = raw_co_open,
    .bdrv_set_perm = raw_set_perm,
    .bdrv_co_close = raw_co_close,
    .bdrv_refresh_limits = raw_refresh_limits,
    .bdrv_co_preadv_part = raw_co_preadv_part,
    .bdrv_co_pwritev_part = raw_co_pwritev_part,
    .bdrv_co_pwrite_zeroes = raw_co_pwrite_zeroes,
    .bdrv_co_pdiscard = raw_co_pdiscard,
    .bdrv_co_flush_to_disk = raw_co_flush_to_disk,
    .bdrv_co_block_status = raw_co_block_status,
    .bdrv_co_getlength = raw_co_getlength,
    .bdrv_co_get_allocated_file_size = raw_co_get_allocated_file_size,
    .bdrv_co_truncate = raw_co_truncate,
    .bdrv_co_create_opts = raw_co_create_opts,
    .create_opts = &raw_create_opts,
};
