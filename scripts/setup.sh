#!/usr/bin/env bash
# Set up everything lenet-edge needs on a fresh Debian/Ubuntu machine:
#   - apt: the GNU Arm toolchain, newlib, QEMU, CMake, the host gcc (the bench's cycle
#     plugin), and clang with its libFuzzer/sanitizer runtime for the fuzz tests (skipped
#     when already installed)
#   - a virtualenv in .venv with lenet-edge installed (editable) with its [train] extra
#     (TensorFlow) and its test tools
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm cmake gcc clang libclang-rt-dev)

have_toolchain() {
    command -v arm-none-eabi-gcc >/dev/null 2>&1 &&
        command -v qemu-system-arm >/dev/null 2>&1 &&
        command -v cmake >/dev/null 2>&1 &&
        command -v gcc >/dev/null 2>&1 &&
        [ -f "$(arm-none-eabi-gcc -print-file-name=libc.a 2>/dev/null)" ] &&
        command -v clang >/dev/null 2>&1 &&
        compgen -G "$(clang --print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-*.a" >/dev/null
}

if ! have_toolchain; then
    echo "==> installing ${APT_PACKAGES[*]} (apt)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "error: need root or sudo to install: ${APT_PACKAGES[*]}" >&2
        echo "       run: apt-get install --no-install-recommends ${APT_PACKAGES[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: no apt-get here; install these yourself: ${APT_PACKAGES[*]}" >&2
        exit 1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: lenet-edge needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

# Reinstall only when pyproject.toml changed since the last successful install.
STAMP=.venv/.lenet-edge-installed
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "==> creating .venv and installing lenet-edge (first time: a few minutes)"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev,train]'
    echo "$WANT" > "$STAMP"
fi
