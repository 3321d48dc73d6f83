/*
 * JSON output (QEMU tool style) and a small JSON parser for QObjects.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/qobject.h"
#include "qobject-int.h"

/* ---- Output ---------------------------------------------------------- */

/*
 * Decode one UTF-8 sequence at @s.  Returns the code point, or -1 for an
 * invalid, overlong or surrogate sequence (consuming one byte then).
 */
static int utf8_decode(const unsigned char *s, const unsigned char **end)
{
    int len, cp, i;
    unsigned char c = s[0];

    if (c < 0x80) {
        *end = s + 1;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        goto invalid;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            goto invalid;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        goto invalid;
    }
    *end = s + len;
    return cp;

invalid:
    *end = s + 1;
    return -1;
}

/*
 * Strings are emitted as pure ASCII: everything outside printable ASCII
 * becomes \uXXXX (upper case hex, surrogate pairs beyond the BMP, U+FFFD
 * for invalid UTF-8), matching QEMU's tools byte for byte.
 */
static void json_append_str(GString *out, const char *str)
{
    const unsigned char *p = (const unsigned char *)str, *next;

    g_string_append_c(out, '"');
    while (*p) {
        int cp = utf8_decode(p, &next);
        p = next;
        switch (cp) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (cp < 0) {
                cp = 0xfffd;
            }
            if (cp > 0xffff) {
                cp -= 0x10000;
                g_string_append_printf(out, "\\u%04X\\u%04X",
                                       0xd800 + (cp >> 10),
                                       0xdc00 + (cp & 0x3ff));
            } else if (cp < 0x20 || cp >= 0x7f) {
                g_string_append_printf(out, "\\u%04X", cp);
            } else {
                g_string_append_c(out, cp);
            }
        }
    }
    g_string_append_c(out, '"');
}

static void json_newline(GString *out, bool pretty, int level)
{
    if (pretty) {
        g_string_append_printf(out, "\n%*s", level * 4, "");
    }
}

static void json_append(const QObject *o, bool pretty, int level, GString *out)
{
    /* Compact output still separates members with ", " like QEMU. */
    const char *sep = pretty ? "," : ", ";
    guint i;

    switch (o->type) {
    case QTYPE_STR:
        json_append_str(out, o->u.s);
        break;
    case QTYPE_DICT:
        g_string_append_c(out, '{');
        for (i = 0; i < o->u.items->len; i++) {
            QDictObjEntry *e = g_ptr_array_index(o->u.items, i);
            if (i) {
                g_string_append(out, sep);
            }
            json_newline(out, pretty, level + 1);
            json_append_str(out, e->key);
            g_string_append(out, ": ");
            json_append(e->value, pretty, level + 1, out);
        }
        /* Even an empty dict gets its closing brace on a new line. */
        json_newline(out, pretty, level);
        g_string_append_c(out, '}');
        break;
    case QTYPE_LIST:
        g_string_append_c(out, '[');
        for (i = 0; i < o->u.items->len; i++) {
            if (i) {
                g_string_append(out, sep);
            }
            json_newline(out, pretty, level + 1);
            json_append(g_ptr_array_index(o->u.items, i), pretty, level + 1,
                        out);
        }
        json_newline(out, pretty, level);
        g_string_append_c(out, ']');
        break;
    default:
        qobj_format_scalar(o, out);
        break;
    }
}

void qobj_to_json(const QObject *o, bool pretty, GString *out)
{
    json_append(o, pretty, 0, out);
}

/* ---- Parser ---------------------------------------------------------- */

typedef struct JSONParser {
    const char *p;
    Error **errp;
    int depth;
} JSONParser;

/* Deep nesting would only exhaust the stack; json: names are shallow. */
#define JSON_MAX_DEPTH 1024

static void skip_ws(JSONParser *js)
{
    while (*js->p == ' ' || *js->p == '\t' || *js->p == '\n' ||
           *js->p == '\r') {
        js->p++;
    }
}

static void json_error(JSONParser *js, const char *fmt, ...) QEMU_PRINTF(2, 3);

static void json_error(JSONParser *js, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(js->errp, "JSON parse error, %s", msg);
    g_free(msg);
}

/* A token that cannot start or continue anything: report up to @end. */
static void json_stray(JSONParser *js, const char *start, const char *end)
{
    int len = end - start;

    json_error(js, "stray '%.*s'", len, start);
}

static void append_utf8(GString *s, unsigned cp)
{
    char buf[8];
    int n = g_unichar_to_utf8(cp, buf);

    g_string_append_len(s, buf, n);
}

static int parse_hex4(const char *p)
{
    int v = 0, i;

    for (i = 0; i < 4; i++) {
        if (!g_ascii_isxdigit(p[i])) {
            return -1;
        }
        v = v * 16 + g_ascii_xdigit_value(p[i]);
    }
    return v;
}

/* Both quote styles: QEMU's parser accepts 'single' quotes as well. */
static char *parse_string(JSONParser *js)
{
    const char *start = js->p;
    char quote = *js->p++;
    GString *s = g_string_new(NULL);

    for (;;) {
        unsigned char c = *js->p;

        if (c == '\0') {
            json_error(js, "premature EOI");
            goto fail;
        }
        if (c == quote) {
            js->p++;
            break;
        }
        if (c < 0x20) {
            json_stray(js, start, js->p);
            goto fail;
        }
        if (c != '\\') {
            g_string_append_c(s, c);
            js->p++;
            continue;
        }
        js->p++;
        switch (*js->p) {
        case '"':
        case '\'':
        case '\\':
        case '/':
            g_string_append_c(s, *js->p);
            break;
        case 'b':
            g_string_append_c(s, '\b');
            break;
        case 'f':
            g_string_append_c(s, '\f');
            break;
        case 'n':
            g_string_append_c(s, '\n');
            break;
        case 'r':
            g_string_append_c(s, '\r');
            break;
        case 't':
            g_string_append_c(s, '\t');
            break;
        case 'u': {
            const char *esc = js->p - 1;
            int cp = parse_hex4(js->p + 1);
            int lo;

            if (cp < 0) {
                /* Quote the escape up to and including the bad digit. */
                int n = 2;
                while (n < 6 && g_ascii_isxdigit(esc[n])) {
                    n++;
                }
                n += esc[n] != '\0';
                json_error(js, "%.*s is not a valid Unicode character", n,
                           esc);
                goto fail;
            }
            js->p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* A high surrogate must be followed by a low one. */
                lo = js->p[1] == '\\' && js->p[2] == 'u' ?
                     parse_hex4(js->p + 3) : -1;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    json_error(js, "%.6s is not a valid Unicode character",
                               esc);
                    goto fail;
                }
                js->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                json_error(js, "%.6s is not a valid Unicode character", esc);
                goto fail;
            } else if (cp == 0) {
                /* Embedded NULs cannot be represented in a C string. */
                json_error(js, "%.6s is not a valid Unicode character", esc);
                goto fail;
            }
            append_utf8(s, cp);
            break;
        }
        case '\0':
            json_error(js, "premature EOI");
            goto fail;
        default:
            json_error(js, "invalid escape sequence in string");
            goto fail;
        }
        js->p++;
    }
    return g_string_free(s, false);

fail:
    g_string_free(s, true);
    return NULL;
}

static bool is_delim(char c)
{
    return c == '\0' || c == ',' || c == ':' || c == ']' || c == '}' ||
           c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '[' ||
           c == '{' || c == '"' || c == '\'';
}

static QObject *parse_number(JSONParser *js)
{
    const char *start = js->p, *p = js->p;
    bool is_float = false;
    char *end;

    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (g_ascii_isdigit(*p)) {
        while (g_ascii_isdigit(*p)) {
            p++;
        }
    } else {
        json_stray(js, start, p + (*p != '\0'));
        return NULL;
    }
    if (*p == '.') {
        is_float = true;
        p++;
        if (!g_ascii_isdigit(*p)) {
            json_stray(js, start, p + (*p != '\0'));
            return NULL;
        }
        while (g_ascii_isdigit(*p)) {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        is_float = true;
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!g_ascii_isdigit(*p)) {
            json_stray(js, start, p + (*p != '\0'));
            return NULL;
        }
        while (g_ascii_isdigit(*p)) {
            p++;
        }
    }
    if (!is_delim(*p)) {
        json_stray(js, start, p + 1);
        return NULL;
    }
    js->p = p;

    if (!is_float) {
        /* Integers that overflow fall back to unsigned, then to double. */
        errno = 0;
        if (*start == '-') {
            long long v = strtoll(start, &end, 10);
            if (errno == 0) {
                return qobj_int(v);
            }
        } else {
            unsigned long long v = strtoull(start, &end, 10);
            if (errno == 0) {
                return v > INT64_MAX ? qobj_uint(v) : qobj_int(v);
            }
        }
    }
    return qobj_double(g_ascii_strtod(start, &end));
}

static QObject *parse_value(JSONParser *js);

/*
 * After a member of a dict or list: consume the closing bracket (return 1)
 * or a separator (return 0); anything else is an error (return -1).
 */
static int after_member(JSONParser *js, char close, const char *what)
{
    skip_ws(js);
    if (*js->p == close) {
        js->p++;
        return 1;
    }
    if (*js->p == '\0') {
        json_error(js, "premature EOI");
        return -1;
    }
    if (*js->p != ',') {
        json_error(js, "expected separator in %s", what);
        return -1;
    }
    js->p++;
    return 0;
}

static QObject *parse_dict(JSONParser *js)
{
    QObject *dict = qobj_dict();

    js->p++;
    skip_ws(js);
    if (*js->p == '}') {
        js->p++;
        return dict;
    }
    for (;;) {
        char *key;
        QObject *v;

        skip_ws(js);
        if (*js->p == '\0') {
            json_error(js, "premature EOI");
            goto fail;
        }
        if (*js->p != '"' && *js->p != '\'') {
            /* A value in key position is a different error than junk. */
            if (strchr(",}:", *js->p)) {
                json_error(js, "expecting value");
                goto fail;
            }
            v = parse_value(js);
            if (v) {
                qobj_unref(v);
                json_error(js, "key is not a string in object");
            }
            goto fail;
        }
        key = parse_string(js);
        if (!key) {
            goto fail;
        }
        skip_ws(js);
        if (*js->p != ':') {
            if (*js->p == '\0') {
                json_error(js, "premature EOI");
            } else {
                json_error(js, "missing : in object pair");
            }
            g_free(key);
            goto fail;
        }
        js->p++;
        v = parse_value(js);
        if (!v) {
            g_free(key);
            goto fail;
        }
        if (qdict_obj_get(dict, key)) {
            json_error(js, "duplicate key");
            qobj_unref(v);
            g_free(key);
            goto fail;
        }
        qdict_obj_put(dict, key, v);
        g_free(key);
        switch (after_member(js, '}', "dict")) {
        case 1:
            return dict;
        case -1:
            goto fail;
        }
    }

fail:
    qobj_unref(dict);
    return NULL;
}

static QObject *parse_list(JSONParser *js)
{
    QObject *list = qobj_list();

    js->p++;
    skip_ws(js);
    if (*js->p == ']') {
        js->p++;
        return list;
    }
    for (;;) {
        QObject *v = parse_value(js);

        if (!v) {
            goto fail;
        }
        qlist_obj_append(list, v);
        switch (after_member(js, ']', "list")) {
        case 1:
            return list;
        case -1:
            goto fail;
        }
    }

fail:
    qobj_unref(list);
    return NULL;
}

static QObject *parse_value(JSONParser *js)
{
    QObject *ret = NULL;
    char c;

    skip_ws(js);
    c = *js->p;
    if (++js->depth > JSON_MAX_DEPTH) {
        json_error(js, "too deeply nested");
        goto out;
    }
    if (c == '\0') {
        json_error(js, "premature EOI");
    } else if (c == '{') {
        ret = parse_dict(js);
    } else if (c == '[') {
        ret = parse_list(js);
    } else if (c == '"' || c == '\'') {
        char *s = parse_string(js);
        if (s) {
            ret = qobj_str(NULL);
            ret->u.s = s;
        }
    } else if (c == '-' || g_ascii_isdigit(c)) {
        ret = parse_number(js);
    } else if (g_ascii_isalpha(c)) {
        const char *start = js->p;
        size_t len = 0;

        while (g_ascii_isalpha(start[len])) {
            len++;
        }
        if (len == 4 && !strncmp(start, "true", 4)) {
            ret = qobj_bool(true);
        } else if (len == 5 && !strncmp(start, "false", 5)) {
            ret = qobj_bool(false);
        } else if (len == 4 && !strncmp(start, "null", 4)) {
            ret = qobj_null();
        } else {
            json_error(js, "invalid keyword '%.*s'", (int)len, start);
        }
        js->p += len;
    } else if (c == ',' || c == ']' || c == '}' || c == ':') {
        json_error(js, "expecting value");
    } else {
        json_stray(js, js->p, js->p + 1);
    }
out:
    js->depth--;
    return ret;
}

QObject *qobj_from_json(const char *text, Error **errp)
{
    JSONParser js = { .p = text, .errp = errp };
    Error *local_err = NULL;
    QObject *o;

    skip_ws(&js);
    if (*js.p == '\0') {
        error_setg(errp, "Expecting a JSON value");
        return NULL;
    }
    js.errp = &local_err;
    o = parse_value(&js);
    if (!o) {
        error_propagate(errp, local_err);
        return NULL;
    }
    skip_ws(&js);
    if (*js.p) {
        qobj_unref(o);
        error_setg(errp, "Expecting at most one JSON value");
        return NULL;
    }
    return o;
}
