/*
 * Error objects: how setup code and tools report failures with a human
 * readable message.  The I/O path returns negative errno instead.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Conventions: a function taking "Error **errp" sets *errp on failure
 * (and only then) and usually also returns false / negative errno.
 * errp may be NULL (ignore the error), &error_abort (abort on error) or
 * &error_fatal (print and exit(1)).
 */
#ifndef QEMU_ERROR_H
#define QEMU_ERROR_H

typedef struct Error Error;

extern Error *error_abort;
extern Error *error_fatal;

/* Name printed before messages ("qemu-img", "qemu-io"); set by main(). */
void error_set_progname(const char *name);
const char *error_get_progname(void);

void error_setg_internal(Error **errp, const char *src, int line,
                         const char *fmt, ...) QEMU_PRINTF(4, 5);
void error_setg_errno_internal(Error **errp, const char *src, int line,
                               int os_errno, const char *fmt, ...)
    QEMU_PRINTF(5, 6);
#define error_setg(errp, ...) \
    error_setg_internal((errp), __FILE__, __LINE__, __VA_ARGS__)
/* Appends ": strerror(abs(os_errno))" to the message. */
#define error_setg_errno(errp, os_errno, ...) \
    error_setg_errno_internal((errp), __FILE__, __LINE__, (os_errno), \
                              __VA_ARGS__)

/* Add text in front of an existing error's message. */
void error_prepend(Error **errp, const char *fmt, ...) QEMU_PRINTF(2, 3);
/* Add a hint line printed after the message. */
void error_append_hint(Error **errp, const char *fmt, ...) QEMU_PRINTF(2, 3);

/* Move @local_err into @dst_errp (frees it if dst_errp is NULL). */
void error_propagate(Error **dst_errp, Error *local_err);
const char *error_get_pretty(const Error *err);
/* The hint lines (each ending in '\n'), or NULL. */
const char *error_get_hint(const Error *err);
void error_free(Error *err);
void error_free_or_abort(Error **errp);

/* Print "progname: message\n" (and hints) to stderr. */
void error_report_err(Error *err);
void error_report(const char *fmt, ...) QEMU_PRINTF(1, 2);
void warn_report(const char *fmt, ...) QEMU_PRINTF(1, 2);

#endif
