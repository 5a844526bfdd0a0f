"""Export-time kernel layouts (issue 12): where the DSP conv's widened window lives, the
M3's paired-channel words, the connection table of a conv that covers its input, and the
5 % rule for constant data. Fast: no compiler, no QEMU (those run the layouts for real
in test_kernels_qemu.py, test_firmware_qemu.py and test_family_qemu.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lenet_edge.bundled import bundled_model
from lenet_edge.codegen.emit import _users
from lenet_edge.codegen.generate import generate_c
from lenet_edge.codegen.ops.fully_connected import mlal_pairs


def _library(variant: str, **kw):
    return generate_c(bundled_model(variant).read_bytes(), f"{variant}.tflite", **kw)


def _weights_for(program, path: str) -> int:
    return sum(c.nbytes for c in program.constants if not c.feature or path in _users(c.feature))


@pytest.mark.parametrize("variant", ["modern", "classic", "lenet1", "lenet4"])
def test_default_build_constants_within_five_percent_of_int8(variant):
    program = _library(variant).program
    int8 = _weights_for(program, "portable")
    for path in ("dsp", "mlal"):
        assert _weights_for(program, path) <= 1.05 * int8, (path, int8)


def test_speed_build_trades_flash_for_the_fully_connected_layers():
    size, speed = _library("modern").program, _library("modern", optimize="speed").program
    assert _weights_for(speed, "portable") == _weights_for(size, "portable")
    for path in ("dsp", "mlal"):
        assert _weights_for(speed, path) > 1.8 * _weights_for(size, path)


def test_dsp_window_scratch_sits_in_an_arena_gap():
    lib = _library("modern")
    steps = {s.name: (i, s) for i, s in enumerate(lib.program.steps)}
    assert lib.plan.arena_bytes == 2200  # the scratch did not grow the arena
    placed = [name for name in lib.plan.scratch]
    assert placed, "C3's widened window fits the bytes S4 leaves free"
    for name, at in lib.plan.scratch.items():
        i, step = steps[name]
        assert at + step.scratch_bytes <= lib.plan.arena_bytes
        for _, o, size, first, last in lib.plan.buffers:
            if first <= i <= last:  # live while the step runs: no shared byte
                assert at + step.scratch_bytes <= o or o + size <= at
    # C1 runs while the padded input and S2 fill the arena: its window stays on the stack.
    c1 = lib.program.steps[[s.kernel for s in lib.program.steps].index("conv2d")]
    assert c1.scratch_bytes and c1.name not in lib.plan.scratch


def test_mlal_pairs_split_exactly_and_refuse_what_would_not():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (6, 5, 5, 6)).astype(np.int8)
    packed = mlal_pairs(w).astype(np.int64).reshape(3, -1)
    x = rng.integers(-128, 128, 150).astype(np.int64)
    for j in range(3):
        s = int(packed[j] @ x)
        lo = ((s & 0xFFFFFF) ^ 0x800000) - 0x800000
        assert lo == int(w[2 * j].reshape(-1).astype(np.int64) @ x)
        assert (s - lo) >> 24 == int(w[2 * j + 1].reshape(-1).astype(np.int64) @ x)
    # A channel whose sum could reach 2^23 (here 600 taps of 127) is not packed.
    assert mlal_pairs(np.full((2, 600, 1, 1), 127, np.int8)) is None
    # -128 in the high channel and a negative low weight would leave int32.
    assert mlal_pairs(np.array([-1, -128], np.int8).reshape(2, 1, 1, 1)) is None


def test_lenet4_f5_skips_the_connection_tables_zeros():
    program = _library("lenet4").program
    f5 = [s for s in program.steps if s.kernel == "conv2d" and s.params.gh == 1][0]
    assert f5.params.sparse and f5.macs_executed < f5.macs_dense
    assert f5.macs_dense - f5.macs_executed == 33_000  # 48,000 dense, 15,000 connected
    portable = sum(c.nbytes for c in f5.constants if not c.feature or "portable" in _users(c.feature))
    assert portable < 48_000 // 2
