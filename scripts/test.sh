#!/usr/bin/env bash
# Quick start, command 2: set up, then run the test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k codegen).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q -n 2 "$@"
