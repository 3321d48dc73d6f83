/*
 * Error objects and error reporting to stderr.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

struct Error {
    char *msg;
    GString *hint;          /* NULL until error_append_hint() */
    const char *src;
    int line;
};

/*
 * Only the addresses of these matter: they are sentinels that callers pass
 * as errp to ask for abort() / exit(1) on error.
 */
Error *error_abort;
Error *error_fatal;

static char *progname;

void error_set_progname(const char *name)
{
    const char *slash = name ? strrchr(name, '/') : NULL;

    g_free(progname);
    progname = g_strdup(slash ? slash + 1 : name);
}

const char *error_get_progname(void)
{
    return progname;
}

static void print_prefix(void)
{
    if (progname) {
        fprintf(stderr, "%s: ", progname);
    }
}

const char *error_get_hint(const Error *err)
{
    return err->hint ? err->hint->str : NULL;
}

void error_report_err(Error *err)
{
    print_prefix();
    fprintf(stderr, "%s\n", err->msg);
    if (err->hint) {
        fputs(err->hint->str, stderr);
    }
    error_free(err);
}

/* Deliver @err to @errp, honouring the abort/fatal sentinels. */
static void error_handle(Error **errp, Error *err)
{
    if (errp == &error_abort) {
        fprintf(stderr, "Unexpected error at %s:%d:\n", err->src, err->line);
        error_report_err(err);
        abort();
    }
    if (errp == &error_fatal) {
        error_report_err(err);
        exit(1);
    }
    if (!errp) {
        error_free(err);
        return;
    }
    /* Setting an error twice loses the first one: a caller bug. */
    assert(*errp == NULL);
    *errp = err;
}

static Error *error_new_v(const char *src, int line, const char *fmt,
                          va_list ap, const char *suffix)
{
    Error *err = g_new0(Error, 1);
    char *msg = g_strdup_vprintf(fmt, ap);

    if (suffix) {
        err->msg = g_strconcat(msg, ": ", suffix, NULL);
        g_free(msg);
    } else {
        err->msg = msg;
    }
    err->src = src;
    err->line = line;
    return err;
}

void error_setg_internal(Error **errp, const char *src, int line,
                         const char *fmt, ...)
{
    va_list ap;
    Error *err;

    va_start(ap, fmt);
    err = error_new_v(src, line, fmt, ap, NULL);
    va_end(ap);
    error_handle(errp, err);
}

void error_setg_errno_internal(Error **errp, const char *src, int line,
                               int os_errno, const char *fmt, ...)
{
    va_list ap;
    Error *err;
    int saved_errno = errno;

    va_start(ap, fmt);
    err = error_new_v(src, line, fmt, ap,
                      os_errno ? g_strerror(abs(os_errno)) : NULL);
    va_end(ap);
    error_handle(errp, err);
    errno = saved_errno;
}

void error_prepend(Error **errp, const char *fmt, ...)
{
    va_list ap;
    char *prefix, *msg;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msg = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free(prefix);
    g_free((*errp)->msg);
    (*errp)->msg = msg;
}

void error_append_hint(Error **errp, const char *fmt, ...)
{
    va_list ap;
    int saved_errno = errno;

    /* Hints are for humans: dropped when the error goes nowhere visible. */
    if (!errp || errp == &error_abort || errp == &error_fatal || !*errp) {
        return;
    }
    if (!(*errp)->hint) {
        (*errp)->hint = g_string_new(NULL);
    }
    va_start(ap, fmt);
    g_string_append_vprintf((*errp)->hint, fmt, ap);
    va_end(ap);
    errno = saved_errno;
}

void error_propagate(Error **dst_errp, Error *local_err)
{
    if (!local_err) {
        return;
    }
    /* Unlike setting, propagating keeps an earlier error and drops ours. */
    if (dst_errp && dst_errp != &error_abort && dst_errp != &error_fatal &&
        *dst_errp) {
        error_free(local_err);
        return;
    }
    error_handle(dst_errp, local_err);
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        if (err->hint) {
            g_string_free(err->hint, true);
        }
        g_free(err);
    }
}

void error_free_or_abort(Error **errp)
{
    assert(errp && *errp);
    error_free(*errp);
    *errp = NULL;
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
    print_prefix();
    if (prefix) {
        fputs(prefix, stderr);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(NULL, fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}
