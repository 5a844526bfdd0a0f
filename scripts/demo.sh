#!/usr/bin/env bash
# Quick start, command 1: set up, then run the main job end to end
# (bundled model -> C -> firmware -> QEMU Cortex-M -> validation over serial).
# Extra arguments go to `lenet-edge demo` (see `lenet-edge demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/lenet-edge demo "$@"
