/*
 * String and number parsing helpers.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"

#include <ctype.h>

/*
 * Common tail of the strto* wrappers: decide the return code from errno,
 * where parsing stopped and whether the caller accepts trailing text.
 */
static int check_strtox_result(const char *nptr, const char *ep,
                               const char **endptr, bool check_trailing,
                               int libc_errno)
{
    assert(ep >= nptr);
    if (ep == nptr) {
        /* No digits at all. */
        libc_errno = EINVAL;
    } else if (libc_errno == 0 && check_trailing && *ep) {
        libc_errno = EINVAL;
    }
    if (endptr) {
        *endptr = ep;
    }
    return -libc_errno;
}

/* Only report EINVAL/ERANGE: other errno values are noise from libc. */
static int clean_errno(void)
{
    return (errno == ERANGE || errno == EINVAL) ? errno : 0;
}

static bool has_minus_sign(const char *nptr)
{
    while (isspace((unsigned char)*nptr)) {
        nptr++;
    }
    return *nptr == '-';
}

int qemu_strtoi64(const char *nptr, const char **endptr, int base,
                  int64_t *result)
{
    char *ep;
    long long v;
    int err;

    if (!nptr) {
        if (endptr) {
            *endptr = nptr;
        }
        return -EINVAL;
    }
    errno = 0;
    v = strtoll(nptr, &ep, base);
    err = clean_errno();
    *result = v;
    return check_strtox_result(nptr, ep, endptr, endptr == NULL, err);
}

/*
 * Like strtoull, negative input is accepted and wraps (so "-1" is the
 * maximum value), as QEMU's parser does.
 */
int qemu_strtou64(const char *nptr, const char **endptr, int base,
                  uint64_t *result)
{
    char *ep;
    unsigned long long v;
    int err;

    if (!nptr) {
        if (endptr) {
            *endptr = nptr;
        }
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(nptr, &ep, base);
    err = clean_errno();
    *result = err == ERANGE ? UINT64_MAX : v;
    return check_strtox_result(nptr, ep, endptr, endptr == NULL, err);
}

int qemu_strtol(const char *nptr, const char **endptr, int base, long *result)
{
    int64_t v = 0;
    int ret = qemu_strtoi64(nptr, endptr, base, &v);

    /* long is 64 bits on every host we support. */
    QEMU_BUILD_BUG_ON(sizeof(long) != sizeof(int64_t));
    if (nptr) {
        *result = v;
    }
    return ret;
}

int qemu_strtoi(const char *nptr, const char **endptr, int base, int *result)
{
    int64_t v = 0;
    int ret = qemu_strtoi64(nptr, endptr, base, &v);

    if (ret == -EINVAL && (!nptr || (endptr && *endptr == nptr))) {
        return ret;
    }
    if (v > INT_MAX) {
        *result = INT_MAX;
        return -ERANGE;
    }
    if (v < INT_MIN) {
        *result = INT_MIN;
        return -ERANGE;
    }
    *result = v;
    return ret;
}

int qemu_strtoui(const char *nptr, const char **endptr, int base,
                 unsigned int *result)
{
    uint64_t v = 0;
    int ret = qemu_strtou64(nptr, endptr, base, &v);

    if (ret == -EINVAL && (!nptr || (endptr && *endptr == nptr))) {
        return ret;
    }
    if (ret == -ERANGE) {
        *result = UINT_MAX;
        return ret;
    }
    if (has_minus_sign(nptr)) {
        /* "-N" wraps like strtoul, but only for N within range. */
        uint64_t mag = -v;
        if (mag > UINT_MAX) {
            *result = UINT_MAX;
            return -ERANGE;
        }
        *result = (unsigned int)-(unsigned int)mag;
        return ret;
    }
    if (v > UINT_MAX) {
        *result = UINT_MAX;
        return -ERANGE;
    }
    *result = v;
    return ret;
}

/* Multiplier for a size suffix, or 0 if @c is not one. */
static uint64_t suffix_mul(char c)
{
    switch (toupper((unsigned char)c)) {
    case 'B':
        return 1;
    case 'K':
        return KiB;
    case 'M':
        return MiB;
    case 'G':
        return GiB;
    case 'T':
        return TiB;
    case 'P':
        return PiB;
    case 'E':
        return EiB;
    }
    return 0;
}

int qemu_strtosz_suffix(const char *nptr, const char **end, uint64_t *result,
                        char default_suffix)
{
    const char *ep = nptr;
    uint64_t val = 0, mul, frac_part = 0;
    double fraction = 0;
    bool hex = false;
    int ret;

    ret = qemu_strtou64(nptr, &ep, 10, &val);
    if (ret) {
        goto out;
    }
    /* Negative sizes would silently wrap in qemu_strtou64. */
    if (memchr(nptr, '-', ep - nptr)) {
        ep = nptr;
        ret = -EINVAL;
        goto out;
    }
    if (val == 0 && (*ep == 'x' || *ep == 'X')) {
        hex = true;
        ret = qemu_strtou64(nptr, &ep, 16, &val);
        if (ret) {
            goto out;
        }
        if (*ep == '.') {
            ep = nptr;
            ret = -EINVAL;
            goto out;
        }
    } else if (*ep == '.') {
        /*
         * A fraction: "1.k" (no digits) is accepted as "1k", but an
         * exponent would make the whole input ambiguous, so reject it.
         */
        char *fend;

        errno = 0;
        fraction = g_ascii_strtod(ep, &fend);
        if (fend == ep || errno) {
            fraction = 0;
            ep++;
        } else if (memchr(ep, 'e', fend - ep) || memchr(ep, 'E', fend - ep)) {
            ep = nptr;
            ret = -EINVAL;
            goto out;
        } else {
            ep = fend;
        }
    }

    mul = suffix_mul(*ep);
    if (mul) {
        if (hex) {
            warn_report("Using a multiplier suffix on hex numbers is "
                        "deprecated: %s", nptr);
        }
        ep++;
    } else {
        mul = suffix_mul(default_suffix);
        assert(mul);
    }
    if (fraction != 0) {
        /* A fraction of a byte makes no sense. */
        if (mul == 1) {
            ep = nptr;
            ret = -EINVAL;
            goto out;
        }
        frac_part = (uint64_t)(fraction * mul);
    }
    if (val > (UINT64_MAX - frac_part) / mul) {
        ret = -ERANGE;
        goto out;
    }
    val = val * mul + frac_part;
    ret = 0;

out:
    if (end) {
        *end = ep;
    } else if (ret == 0 && *ep) {
        ret = -EINVAL;
    }
    /* Callers may rely on *result being untouched when parsing fails. */
    if (ret == 0) {
        *result = val;
    }
    return ret;
}

int qemu_strtosz(const char *nptr, const char **end, uint64_t *result)
{
    return qemu_strtosz_suffix(nptr, end, result, 'B');
}

int qemu_strtosz_MiB(const char *nptr, const char **end, uint64_t *result)
{
    return qemu_strtosz_suffix(nptr, end, result, 'M');
}

char *size_to_str(uint64_t val)
{
    static const char *const units[] = {
        "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
    };
    /*
     * Switch to the next unit as soon as the number would otherwise need
     * four integer digits ("1000 KiB" is shown as "0.977 MiB").  Scaling
     * by 1024/1000 in double precision, rather than comparing integers,
     * keeps rounding near 2^60 identical to qemu-img's output.
     */
    double scaled = (double)val / (1000.0 / 1024.0);
    unsigned int i = 0;

    while (i < ARRAY_SIZE(units) - 1 &&
           scaled >= (double)(1ULL << (10 * (i + 1)))) {
        i++;
    }
    return g_strdup_printf("%0.3g %s", (double)val / (double)(1ULL << (i * 10)),
                           units[i]);
}

bool qapi_bool_parse(const char *name, const char *value, bool *obj,
                     Error **errp)
{
    static const char *const yes[] = { "on", "yes", "true", "y" };
    static const char *const no[] = { "off", "no", "false", "n" };
    size_t i;

    if (value) {
        for (i = 0; i < ARRAY_SIZE(yes); i++) {
            if (!strcmp(value, yes[i])) {
                *obj = true;
                return true;
            }
            if (!strcmp(value, no[i])) {
                *obj = false;
                return true;
            }
        }
    }
    error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
    return false;
}

void pstrcpy(char *buf, int buf_size, const char *str)
{
    int len;

    if (buf_size <= 0) {
        return;
    }
    len = strnlen(str, buf_size - 1);
    memcpy(buf, str, len);
    buf[len] = '\0';
}

bool strstart(const char *str, const char *val, const char **ptr)
{
    size_t n = strlen(val);

    if (strncmp(str, val, n) != 0) {
        return false;
    }
    if (ptr) {
        *ptr = str + n;
    }
    return true;
}
