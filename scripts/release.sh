#!/usr/bin/env bash
# Build every release artifact of this commit into dist/, with dist/SHA256SUMS:
# the wheel and sdist, the self-contained Linux bundle, the .deb, the .rpm and
# the OCI image archive. Reproducible: two builds of one commit, in two clones,
# give the same SHA256SUMS (SOURCE_DATE_EPOCH is the last commit's time).
#
# Run from a clean clone on Debian 12 (as root it installs what it needs with
# apt; pip fetches the build tools and the pinned dependencies). The same
# recipe builds arm64 artifacts on an arm64 machine. See release/.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3 (the distribution's): the interpreter the bundle carries. gcc and
# libc6-dev: the static launcher. rpm: rpmbuild. dpkg-deb comes with dpkg.
PACKAGES="python3 python3-venv libpython3-stdlib gcc libc6-dev rpm git"
# shellcheck disable=SC2086 # a list of package names
./scripts/apt-install.sh $PACKAGES

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
venv=build/release-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    'build==1.6.1' 'twine>=6.1'
exec "$venv/bin/python" -m release "$@"
