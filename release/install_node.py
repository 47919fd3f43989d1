"""Install this bundle onto a Kubernetes node (the image's ``install-node``).

    install-node [--wait] HOST_DIR PLUGIN_DIR

Copies the bundle this file belongs to into HOST_DIR (a hostPath mount, for
instance /host/opt/xecr), replacing an older copy in one rename, and links
PLUGIN_DIR/docker-credential-xecr to HOST_DIR's launcher as the node sees it
(HOST_DIR with the leading /host removed). With --wait it then sleeps until
stopped, so a DaemonSet's only container stays Ready.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

USAGE = "usage: install-node [--wait] HOST_DIR PLUGIN_DIR"
HOST_PREFIX = "/host"


def _as_node_sees(path: str) -> str:
    path = os.path.abspath(path)
    if path == HOST_PREFIX or path.startswith(HOST_PREFIX + "/"):
        return path[len(HOST_PREFIX) :] or "/"
    return path


def install(bundle: str, target: str, plugins: str) -> str:
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    fresh = target + ".new"
    old = target + ".old"
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(bundle, fresh, symlinks=True)
    if os.path.lexists(target):
        os.rename(target, old)
    os.rename(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    os.makedirs(plugins, exist_ok=True)
    link = os.path.join(plugins, "docker-credential-xecr")
    tmp = link + ".new"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join(_as_node_sees(target), "bin", "docker-credential-xecr"), tmp)
    os.replace(tmp, link)
    return link


def main(argv: list[str]) -> int:
    wait = "--wait" in argv
    args = [arg for arg in argv if arg != "--wait"]
    if len(args) != 2 or any(arg.startswith("-") for arg in args):
        print(USAGE, file=sys.stderr)
        return 2
    bundle = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        link = install(bundle, args[0], args[1])
    except OSError as exc:
        where = exc.filename
        print(f"xecr install-node: cannot install into {where}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"xecr install-node: installed {args[0]}; {link} -> {os.readlink(link)}", flush=True)
    if wait:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
