/*
 * xecr's launcher: the `bin/xecr` of the self-contained bundle.
 *
 * It runs the bundle's own Python through the bundle's own dynamic loader, so
 * the bundle needs nothing from the host but a Linux kernel: no Python, and no
 * glibc of any version (this file is linked statically). It sets no
 * environment variable, so what xecr starts (a credential_process, say) sees
 * the caller's environment unchanged.
 *
 * Layout, found from /proc/self/exe (so a symlink to this file works anywhere):
 *   ROOT/bin/xecr                 this program (docker-credential-xecr links here)
 *   ROOT/libexec/python3          the interpreter
 *   ROOT/lib/so/LOADER            the dynamic loader and every shared library
 *   ROOT/lib/python3.X/...        the standard library, site-packages
 *   ROOT/lib/xecr/install_node.py run when called as `install-node`
 *
 * argv[0] is passed on, because xecr answers as a credential helper when
 * called as docker-credential-xecr. `-I -S`: no user site, no site module, no
 * PYTHON* variables: only the bundle's own folders are on sys.path (RUN adds
 * site-packages, which -S leaves out).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef XECR_LOADER
#error "XECR_LOADER (the loader's file name, e.g. ld-linux-x86-64.so.2) must be defined"
#endif

/* sys.path[1] is the standard library's folder; site-packages is below it. */
static const char RUN[] =
    "import sys;sys.path.append(sys.path[1]+'/site-packages');del sys.argv[0];"
    "from ecr_helper.cli import run;run()";

static void fail(const char *what, const char *path) {
    fprintf(stderr, "xecr: %s %s: %s (reinstall xecr)\n", what, path, strerror(errno));
    exit(1);
}

/* PATH with its last component removed, in place; "" when it has none. */
static void parent(char *path) {
    char *slash = strrchr(path, '/');
    if (slash) *slash = '\0'; else path[0] = '\0';
}

int main(int argc, char **argv) {
    char root[PATH_MAX], loader[PATH_MAX], libs[PATH_MAX], python[PATH_MAX], script[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
    if (n <= 0) fail("cannot find itself through", "/proc/self/exe");
    root[n] = '\0';
    parent(root); /* ROOT/bin */
    parent(root); /* ROOT */
    if (snprintf(loader, sizeof loader, "%s/lib/so/%s", root, XECR_LOADER) >= (int)sizeof loader ||
        snprintf(libs, sizeof libs, "%s/lib/so", root) >= (int)sizeof libs ||
        snprintf(python, sizeof python, "%s/libexec/python3", root) >= (int)sizeof python ||
        snprintf(script, sizeof script, "%s/lib/xecr/install_node.py", root) >= (int)sizeof script) {
        errno = ENAMETOOLONG;
        fail("install folder too long:", root);
    }
    const char *name = argc > 0 && argv[0] ? argv[0] : "xecr";
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    int install_node = strcmp(base, "install-node") == 0;

    /* loader --inhibit-cache --library-path LIBS PYTHON -I -S (-c RUN NAME | SCRIPT) ARGS... NULL */
    char **args = calloc((size_t)argc + 12, sizeof *args);
    if (!args) fail("out of memory starting", python);
    int i = 0;
    args[i++] = loader;
    args[i++] = "--inhibit-cache";
    args[i++] = "--library-path";
    args[i++] = libs;
    args[i++] = python;
    args[i++] = "-I";
    args[i++] = "-S";
    if (install_node) {
        args[i++] = script;
    } else {
        args[i++] = "-c";
        args[i++] = (char *)RUN;
        args[i++] = (char *)name;
    }
    for (int a = 1; a < argc; a++) args[i++] = argv[a];
    args[i] = NULL;
    execv(loader, args);
    fail("cannot run", loader);
    return 1;
}
