#!/usr/bin/env bash
# Set up and run every check xecr has: lint, types, and the whole test suite,
# including the end-to-end tests against a real dockerd, docker-registry and
# skopeo (installed with apt when run as root; skipped elsewhere unless CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck disable=SC2046 # one package name a line
./scripts/apt-install.sh $(cat tests/e2e/apt-packages.txt)

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

ruff check .
ruff format --check .
mypy
python -m pytest "$@"
