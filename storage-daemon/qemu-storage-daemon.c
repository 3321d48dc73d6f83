/*
 * qemu-storage-daemon: open block nodes from the command line and serve
 * them through exports until SIGINT or SIGTERM (docs/storage-daemon.rst).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One thread does everything that matters: the main loop is the home
 * loop of every node and every export (docs/devel/block-layer.rst,
 * "Threading model").
 */
#include "qemu/osdep.h"
#include "qemu/error.h"
#include "block/block.h"
#include "block/block_int.h"
#include "block/export.h"

#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

enum {
    OPT_BLOCKDEV = 256,
    OPT_EXPORT,
    OPT_PIDFILE,
    OPT_DAEMONIZE,
};

/* The state the shutdown path needs. */
static GPtrArray *nodes;           /* BlockDriverState *, opening order */
static char *pidfile_path;         /* absolute; NULL when not written */
static int pidfile_fd = -1;
static bool quit_requested;

static void print_version(void)
{
    printf("qemu-storage-daemon version " QEMU_VERSION QEMU_PKGVERSION "\n"
           "Copyright (c) 2026 The zoned-qcow2 project authors\n");
}

static void print_help(void)
{
    printf(
"Usage: qemu-storage-daemon [options]\n"
"Serve block nodes to other processes, the kernel and VMs\n"
"\n"
"  -h, --help                display this help and exit\n"
"  -V, --version             output version information and exit\n"
"\n"
"  --blockdev [driver=]<driver>,node-name=<name>[,<prop>=<value>...]\n"
"  --blockdev '{\"driver\": ..., \"node-name\": ..., ...}'\n"
"                            open a block node; nodes are read-write\n"
"                            unless read-only=on; children use dotted\n"
"                            keys (file.driver=file,file.filename=PATH,\n"
"                            file.aio=io_uring,cache.direct=on)\n"
"\n"
"  --export type=<type>,id=<id>,node-name=<name>[,writable=on|off]\n"
"           [,<driver keys>...]\n"
"                            serve a node; the ublk type takes\n"
"                            num-queues, queue-depth and\n"
"                            logical-block-size\n"
"\n"
"  --pidfile <path>          write the process id to <path> (removed on\n"
"                            exit)\n"
"  --daemonize               run in the background; return once every\n"
"                            export is ready\n"
"\n"
"SIGINT and SIGTERM stop the exports, complete the requests in flight,\n"
"flush and close the nodes and exit with status 0.\n");
}

/*
 * Report @err on exactly one line, the hint (if any) folded in, so that
 * scripts can take the last line of stderr as the reason.
 */
static void report_err(Error *err)
{
    const char *hint = error_get_hint(err);

    if (hint) {
        g_autofree char *h = g_strstrip(g_strdup(hint));

        g_strdelimit(h, "\n", ' ');
        error_report("%s (%s)", error_get_pretty(err), h);
        error_free(err);
    } else {
        error_report_err(err);
    }
}

/* ---- option parsing ------------------------------------------------------ */

/* Turn a parsed JSON object into dotted string keys ("file.filename"). */
static bool flatten_json_opts(QObject *obj, const char *prefix, QDict *out,
                              Error **errp)
{
    const char *key;
    QObject *v;
    size_t i;

    for (i = 0; qdict_obj_entry(obj, i, &key, &v); i++) {
        g_autofree char *name = prefix ? g_strdup_printf("%s.%s", prefix, key)
                                       : g_strdup(key);
        g_autofree char *str = NULL;

        switch (qobj_type(v)) {
        case QTYPE_DICT:
            if (!flatten_json_opts(v, name, out, errp)) {
                return false;
            }
            continue;
        case QTYPE_STR:
            str = g_strdup(qobj_get_str(v));
            break;
        case QTYPE_INT:
            str = g_strdup_printf("%" PRId64, qobj_get_int(v));
            break;
        case QTYPE_BOOL:
            str = g_strdup(qobj_get_bool(v) ? "on" : "off");
            break;
        default:
            error_setg(errp, "Parameter '%s' has a type --blockdev does not "
                       "take", name);
            return false;
        }
        qdict_put_str(out, name, str);
    }
    return true;
}

/*
 * The tools' keyval parser also takes QemuOpts' legacy forms (a bare
 * "flag" meaning flag=on, an empty key); the daemon takes QEMU's strict
 * syntax, where every element is key=value.
 */
static bool check_keyval_syntax(const char *opt, const char *arg,
                                Error **errp)
{
    const char *p = arg;

    while (*p) {
        const char *start = p;
        bool has_eq = false;

        /* One element: up to a ',' that is not doubled. */
        while (*p && !(*p == ',' && p[1] != ',')) {
            if (*p == ',') {
                p += 2;
                continue;
            }
            if (*p == '=' && !has_eq) {
                if (p == start) {
                    error_setg(errp, "%s: Expected a parameter name before "
                               "'='", opt);
                    return false;
                }
                has_eq = true;
            }
            p++;
        }
        if (!has_eq) {
            error_setg(errp, "%s: Expected '=' after parameter '%.*s'", opt,
                       (int)(p - start), start);
            return false;
        }
        if (*p == ',') {
            p++;
        }
    }
    return true;
}

/* "key=value,..." or a JSON object. */
static QDict *parse_option_string(const char *opt, const char *arg,
                                  Error **errp)
{
    const char *p = arg;
    QObject *obj;
    QDict *d;

    while (g_ascii_isspace(*p)) {
        p++;
    }
    if (*p != '{') {
        if (!check_keyval_syntax(opt, arg, errp)) {
            return NULL;
        }
        d = qdict_parse_keyval(arg, NULL, errp);
        if (!d) {
            error_prepend(errp, "%s: ", opt);
        }
        return d;
    }
    obj = qobj_from_json(p, errp);
    if (!obj) {
        error_prepend(errp, "%s: ", opt);
        return NULL;
    }
    if (qobj_type(obj) != QTYPE_DICT) {
        qobj_unref(obj);
        error_setg(errp, "%s: the JSON form must be an object", opt);
        return NULL;
    }
    d = qdict_new();
    if (!flatten_json_opts(obj, NULL, d, errp)) {
        error_prepend(errp, "%s: ", opt);
        qdict_free(d);
        d = NULL;
    }
    qobj_unref(obj);
    return d;
}

/*
 * Check everything that can be checked without touching an image, so a
 * mistake on the command line leaves every image as it was.
 */
static bool check_options(GPtrArray *blockdevs, GPtrArray *exports_opts,
                          Error **errp)
{
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
    guint i;

    for (i = 0; i < blockdevs->len; i++) {
        QDict *d = blockdevs->pdata[i];
        const char *name = qdict_get_try_str(d, "node-name");

        if (!qdict_get_try_str(d, "driver")) {
            error_setg(errp, "--blockdev: Parameter 'driver' is missing");
            return false;
        }
        if (!name) {
            error_setg(errp, "--blockdev: Parameter 'node-name' is missing");
            return false;
        }
        if (!g_hash_table_add(names, (gpointer)name)) {
            error_setg(errp, "--blockdev: Duplicate node name '%s'", name);
            return false;
        }
    }
    /* Children may be named too (file.node-name=...). */
    for (i = 0; i < blockdevs->len; i++) {
        const char *key, *value;
        size_t j;

        for (j = 0; qdict_entry(blockdevs->pdata[i], j, &key, &value); j++) {
            if (g_str_has_suffix(key, ".node-name") &&
                !g_hash_table_add(names, (gpointer)value)) {
                error_setg(errp, "--blockdev: Duplicate node name '%s'",
                           value);
                return false;
            }
        }
    }
    /* First the keys every export needs, ids unique. */
    for (i = 0; i < exports_opts->len; i++) {
        QDict *d = exports_opts->pdata[i];
        const char *id = qdict_get_try_str(d, "id");

        if (!qdict_get_try_str(d, "type")) {
            error_setg(errp, "--export: Parameter 'type' is missing");
            return false;
        }
        if (!id) {
            error_setg(errp, "--export: Parameter 'id' is missing");
            return false;
        }
        if (!g_hash_table_add(ids, (gpointer)id)) {
            error_setg(errp, "--export: Duplicate export id '%s'", id);
            return false;
        }
        if (!qdict_get_try_str(d, "node-name")) {
            error_setg(errp, "--export: Parameter 'node-name' is missing");
            return false;
        }
    }
    /* Then what each one refers to. */
    for (i = 0; i < exports_opts->len; i++) {
        QDict *d = exports_opts->pdata[i];
        const char *type = qdict_get_try_str(d, "type");
        const char *node = qdict_get_try_str(d, "node-name");

        if (!g_hash_table_contains(names, node)) {
            error_setg(errp, "--export: Cannot find node '%s'", node);
            return false;
        }
        if (!blk_exp_type_known(type)) {
            error_setg(errp, "--export: Unknown export type '%s'", type);
            return false;
        }
    }
    return true;
}

/* ---- pid file ------------------------------------------------------------ */

static bool write_pidfile(const char *path, Error **errp)
{
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *abs = g_path_is_absolute(path) ? g_strdup(path) :
                           g_build_filename(cwd, path, NULL);
    char buf[32];
    int fd, len;

    fd = open(abs, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Cannot open pid file '%s'", path);
        return false;
    }
    /* A second daemon with the same pid file must not take it over. */
    if (lockf(fd, F_TLOCK, 0) < 0) {
        error_setg_errno(errp, errno, "Cannot lock pid file '%s'", path);
        close(fd);
        return false;
    }
    len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, len) != len) {
        error_setg_errno(errp, errno, "Cannot write pid file '%s'", path);
        close(fd);
        return false;
    }
    pidfile_fd = fd;
    pidfile_path = g_steal_pointer(&abs);
    return true;
}

static void remove_pidfile(void)
{
    if (pidfile_path) {
        unlink(pidfile_path);
        g_free(pidfile_path);
        pidfile_path = NULL;
    }
    if (pidfile_fd >= 0) {
        close(pidfile_fd);
        pidfile_fd = -1;
    }
}

/* ---- daemonizing --------------------------------------------------------- */

/*
 * Fork before any thread or image exists.  The parent waits until the
 * child says it is ready (one byte on the pipe) and exits 0, or sees the
 * pipe close without it (the child printed its error on the shared
 * stderr and exited) and exits with the child's status.  Returns the
 * write end of the pipe in the child.
 */
static int daemonize_start(void)
{
    int fds[2];
    pid_t pid;
    char c;
    ssize_t n;
    int status;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        error_report("Cannot create a pipe: %s", strerror(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        error_report("Cannot fork: %s", strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        close(fds[1]);
        do {
            n = read(fds[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1) {
            exit(0);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status)
                                                        : 1);
    }
    close(fds[0]);
    setsid();
    return fds[1];
}

/* Tell the parent we are ready and leave the terminal alone. */
static void daemonize_finish(int fd)
{
    int null_fd;
    char c = 0;

    if (write(fd, &c, 1) != 1) {
        /* The parent is gone; nobody waits for the answer. */
    }
    close(fd);
    null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        if (null_fd > STDERR_FILENO) {
            close(null_fd);
        }
    }
    /* Do not keep a mount point busy; every path was made absolute. */
    if (chdir("/") < 0) {
        /* Staying where we are is harmless. */
    }
}

/* ---- signals ------------------------------------------------------------- */

static void signal_read(void *opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    struct signalfd_siginfo si;

    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        quit_requested = true;
    }
}

/* SIGINT and SIGTERM become events of the main loop. */
static int setup_signals(sigset_t *set)
{
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);

    if (fd < 0) {
        error_report("Cannot create a signalfd: %s", strerror(errno));
        return -1;
    }
    aio_set_fd_handler(qemu_get_aio_context(), fd, signal_read, NULL, NULL,
                       GINT_TO_POINTER(fd));
    return fd;
}

/* ---- start and shutdown --------------------------------------------------- */

/*
 * Flush and close every node, newest first (an export-free node graph
 * by now).  The flush runs in a drained section so nothing can slip in
 * between it and the close.  Returns false if a flush failed.
 */
static bool close_nodes(void)
{
    bool ok = true;
    guint i;

    for (i = nodes->len; i-- > 0;) {
        BlockDriverState *bs = nodes->pdata[i];
        int ret;

        bdrv_drained_begin(bs);
        ret = bdrv_is_read_only(bs) ? 0 : bdrv_flush(bs);
        bdrv_drained_end(bs);
        if (ret < 0) {
            error_report("Failed to flush node '%s': %s",
                         bdrv_get_node_name(bs), strerror(-ret));
            ok = false;
        }
        bdrv_unref(bs);
    }
    g_ptr_array_set_size(nodes, 0);
    return ok;
}

static void fail_exit(Error *err)
{
    report_err(err);
    blk_exp_close_all();
    close_nodes();
    remove_pidfile();
    exit(1);
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "blockdev", required_argument, NULL, OPT_BLOCKDEV },
        { "export", required_argument, NULL, OPT_EXPORT },
        { "pidfile", required_argument, NULL, OPT_PIDFILE },
        { "daemonize", no_argument, NULL, OPT_DAEMONIZE },
        { NULL, 0, NULL, 0 },
    };
    /* Entries moved out for bdrv_open/blk_exp_add are set to NULL. */
    g_autoptr(GPtrArray) blockdevs =
        g_ptr_array_new_with_free_func((GDestroyNotify)qdict_free);
    g_autoptr(GPtrArray) exports_opts =
        g_ptr_array_new_with_free_func((GDestroyNotify)qdict_free);
    const char *pidfile = NULL;
    bool daemonize = false, ok;
    int ready_fd = -1;
    Error *err = NULL;
    sigset_t sigs;
    QDict *d;
    guint i;
    int c;

    error_set_progname("qemu-storage-daemon");
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:hV", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            print_help();
            return 0;
        case 'V':
            print_version();
            return 0;
        case OPT_BLOCKDEV:
        case OPT_EXPORT:
            d = parse_option_string(c == OPT_BLOCKDEV ? "--blockdev"
                                                      : "--export",
                                    optarg, &err);
            if (!d) {
                report_err(err);
                return 1;
            }
            g_ptr_array_add(c == OPT_BLOCKDEV ? blockdevs : exports_opts, d);
            break;
        case OPT_PIDFILE:
            pidfile = optarg;
            break;
        case OPT_DAEMONIZE:
            daemonize = true;
            break;
        case ':':
            error_report("Option '%s' needs an argument", argv[optind - 1]);
            return 1;
        default:
            error_report("Unknown option '%s' (try --help)",
                         argv[optind - 1]);
            return 1;
        }
    }
    if (optind < argc) {
        error_report("Unexpected argument '%s' (try --help)", argv[optind]);
        return 1;
    }
    if (!check_options(blockdevs, exports_opts, &err)) {
        report_err(err);
        return 1;
    }

    if (daemonize) {
        ready_fd = daemonize_start();
    }

    /*
     * Block the signals before any thread exists so that only the
     * signalfd sees them.
     */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    qemu_init_main_loop();
    bdrv_init();
    nodes = g_ptr_array_new();
    if (setup_signals(&sigs) < 0) {
        return 1;
    }
    if (pidfile && !write_pidfile(pidfile, &err)) {
        fail_exit(err);
    }

    for (i = 0; i < blockdevs->len; i++) {
        BlockDriverState *bs;
        const char *ro;
        int flags = BDRV_O_RDWR;

        d = blockdevs->pdata[i];
        blockdevs->pdata[i] = NULL;
        /* read-only=on asks for a read-only open (bdrv_open checks it). */
        ro = qdict_get_try_str(d, "read-only");
        if (ro && (!strcmp(ro, "on") || !strcmp(ro, "true") ||
                   !strcmp(ro, "yes"))) {
            flags = 0;
        }
        bs = bdrv_open(NULL, d, flags, &err);
        if (!bs) {
            fail_exit(err);
        }
        g_ptr_array_add(nodes, bs);
    }
    for (i = 0; i < exports_opts->len; i++) {
        d = exports_opts->pdata[i];
        exports_opts->pdata[i] = NULL;
        if (!blk_exp_add(d, &err)) {
            error_prepend(&err, "--export: ");
            fail_exit(err);
        }
    }

    if (daemonize) {
        daemonize_finish(ready_fd);
    }

    while (!quit_requested) {
        aio_poll(qemu_get_aio_context(), true);
    }

    /* Stop taking requests, let those in flight finish, then close. */
    blk_exp_close_all();
    ok = close_nodes();
    remove_pidfile();
    return ok ? 0 : 1;
}
