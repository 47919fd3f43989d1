#!/usr/bin/env bash
# Set up xecr in a venv (once, and again when pyproject.toml changes) and run the
# offline demo against a loopback AWS stand-in. Its files go to a temporary folder
# that is removed when the demo ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/xecr ] || [ pyproject.toml -nt .venv/bin/xecr ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
fi
export PATH="$PWD/.venv/bin:$PATH"
root=$(mktemp -d "${TMPDIR:-/tmp}/xecr-demo-XXXXXX")
trap 'rm -rf "$root"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
python scripts/demo.py --root "$root"
