#!/usr/bin/env bash
# Fuzz the device protocol parser and the generated model with libFuzzer + ASan + UBSan
# for a long time (default 600 s each). Findings are written to fuzz_out/<harness>.run/.
#   scripts/fuzz.sh [--seconds N] [--harness fuzz_protocol|fuzz_model] [--work DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
exec env PYTHONPATH="$PWD" .venv/bin/python -m tests.fuzzing "$@"
