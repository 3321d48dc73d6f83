/*
 * qemu-io command table and dispatcher.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-io-cmds.c holds the I/O commands (read, write, aio_*, zone_*, ...)
 * and the line dispatcher; qemu-io.c adds the commands that manage the
 * open image (open, close, quit) and runs the command loop.
 */
#ifndef QEMU_IO_H
#define QEMU_IO_H

#include "block/block-backend.h"

/*
 * A command handler gets argv[0] = the name as typed.  It returns 0 or a
 * negative errno; any negative value makes qemu-io exit with status 1.
 */
typedef int QemuIOCmdFunc(BlockBackend *blk, int argc, char **argv);
typedef void QemuIOHelpFunc(void);

/* Runs whether or not an image is open (help, quit). */
#define QEMUIO_CMD_GLOBAL    0x1
/* May run without an open image. */
#define QEMUIO_CMD_NOFILE_OK 0x2
/* Needs a writable image ("Block node is read-only" otherwise). */
#define QEMUIO_CMD_WRITE     0x4

typedef struct QemuIOCommand {
    const char *name;
    const char *altname;        /* short alias, may be NULL */
    QemuIOCmdFunc *cfunc;
    int argmin;                 /* arguments after the name */
    int argmax;                 /* -1: no upper limit */
    int flags;                  /* QEMUIO_CMD_* */
    const char *args;           /* synopsis for help, may be NULL */
    const char *oneline;        /* one line description */
    QemuIOHelpFunc *help;       /* extended help, may be NULL */
} QemuIOCommand;

/* -m: offset buffers by 16 bytes to exercise unaligned I/O paths. */
extern bool qemuio_misalign;

/* Register a command (the table is kept sorted by name). */
void qemuio_add_command(const QemuIOCommand *cmd);
/* Print "name args -- oneline" (the reply to bad options). */
void qemuio_command_usage(const QemuIOCommand *cmd);

/*
 * Split @cmd at spaces, look the command up and run it on @blk (may be
 * NULL when no image is open).  Returns the handler's result, or -EINVAL
 * when the command is unknown or used wrongly.
 */
int qemuio_command(BlockBackend *blk, const char *cmd);

/* Number of aio_* requests still in flight. */
int qemuio_aio_in_flight(void);
/* Run the event loop until every aio_* request has completed. */
void qemuio_wait_aio(void);

#endif
