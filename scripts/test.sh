#!/usr/bin/env bash
# Set up and run every check xecr has: lint, types, and the whole test suite,
# including the end-to-end tests against a real dockerd, docker-registry and
# skopeo (installed with apt when run as root; skipped elsewhere unless CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=""
    for pkg in $(cat tests/e2e/apt-packages.txt); do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "installing Debian packages:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

ruff check .
ruff format --check .
mypy
python -m pytest "$@"
