#!/usr/bin/env bash
# Set up xecr in a venv and run the offline demo against a loopback AWS stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"
exec python scripts/demo.py
