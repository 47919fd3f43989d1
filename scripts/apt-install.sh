#!/usr/bin/env bash
# apt-install.sh PACKAGE...: install the Debian packages that are missing, when
# run as root on a machine with apt (elsewhere it does nothing: the caller's
# tools then report what is missing). Used by test.sh and release.sh.
set -euo pipefail
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || exit 0
missing=""
for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -n "$missing" ] || exit 0
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # a list of package names
apt-get install -y -qq --no-install-recommends $missing >/dev/null
