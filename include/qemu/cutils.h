/*
 * String and number parsing shared by the tools and option parsing.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_CUTILS_H
#define QEMU_CUTILS_H

/*
 * Parse a size with an optional suffix: B, K/k, M, G, T, P, E (binary
 * multiples; "k" is accepted in lower case, the others in either case).
 * A fraction is allowed with a suffix ("1.5M").  @default_suffix applies
 * when there is none ('B' for bytes).  On success stores the value and,
 * if @end is not NULL, where parsing stopped (otherwise trailing garbage
 * is an error).  Returns 0, -EINVAL or -ERANGE.
 */
int qemu_strtosz(const char *nptr, const char **end, uint64_t *result);
int qemu_strtosz_MiB(const char *nptr, const char **end, uint64_t *result);
int qemu_strtosz_suffix(const char *nptr, const char **end, uint64_t *result,
                        char default_suffix);

/*
 * Strict integer parsing.  Leading whitespace allowed; trailing garbage
 * is an error unless @endptr is given.  Returns 0, -EINVAL or -ERANGE.
 */
int qemu_strtoi(const char *nptr, const char **endptr, int base, int *result);
int qemu_strtoui(const char *nptr, const char **endptr, int base,
                 unsigned int *result);
int qemu_strtol(const char *nptr, const char **endptr, int base, long *result);
int qemu_strtoi64(const char *nptr, const char **endptr, int base,
                  int64_t *result);
int qemu_strtou64(const char *nptr, const char **endptr, int base,
                  uint64_t *result);

/* "1 KiB", "64 MiB", "1.5 GiB": the human size format qemu-img prints. */
char *size_to_str(uint64_t val);

/* Parse "on"/"off"/"yes"/"no"/"true"/"false". */
bool qapi_bool_parse(const char *name, const char *value, bool *obj,
                     Error **errp);

/* Copy at most buf_size-1 bytes and NUL terminate. */
void pstrcpy(char *buf, int buf_size, const char *str);
bool strstart(const char *str, const char *val, const char **ptr);

#endif
