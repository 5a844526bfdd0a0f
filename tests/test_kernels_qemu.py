"""Every kernel variant (portable C on the M0 and M3, DSP on the M4, Helium on the M55),
run in QEMU on inputs MNIST never produces: random int8 and the extremes, where an
accumulator or a requantization edge would show. Logits byte-identical with TFLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lenet_edge.firmware_templates.boards import get_board
from lenet_edge.firmware_templates.build import build_firmware
from lenet_edge.firmware_templates.qemu import run_qemu
from tests.firmware_fixtures import (  # noqa: F401
    classic_1998_export_dir,
    classic_export_dir,
    export_dir,
)

pytestmark = [pytest.mark.qemu, pytest.mark.arm]


def _hard_inputs(size: int) -> np.ndarray:
    rng = np.random.default_rng(12)
    rows = [np.full(size, -128), np.full(size, 127), np.zeros(size),
            np.where(np.arange(size) % 2, 127, -128),  # checkerboard of extremes
            np.where(np.arange(size) % 29 < 14, 127, -128)]
    rows += [rng.integers(-128, 128, size) for _ in range(8)]
    rows += [rng.choice([-128, 127], size) for _ in range(4)]
    return np.array(rows, dtype=np.int8)


@pytest.mark.parametrize("variant", ["modern", "classic"])
@pytest.mark.parametrize("board_name", ["qemu-mps2-an385", "bbc-microbit", "qemu-mps2-an386",
                                        "qemu-mps3-an547"])
def test_kernels_exact_on_random_and_extreme_inputs(board_name, variant, request, tmp_path):
    export = request.getfixturevalue("export_dir" if variant == "modern"
                                     else "classic_export_dir")
    _assert_exact_on_board(export, board_name, tmp_path)


# The M3 (SMLAL kernels) runs classic-1998 in test_family_qemu.py.
@pytest.mark.parametrize("board_name", ["bbc-microbit", "qemu-mps2-an386", "qemu-mps3-an547"])
def test_fused_subsampling_exact_on_random_and_extreme_inputs(board_name,
                                                              classic_1998_export_dir,
                                                              tmp_path):
    """classic-1998's CONV_2D+TANH+DEPTHWISE_CONV_2D+TANH steps on the Thumb-1, DSP and
    Helium kernels."""
    layers = json.loads((classic_1998_export_dir / "export_report.json").read_text())["layers"]
    assert sum(layer["ops"] == ["CONV_2D", "TANH", "DEPTHWISE_CONV_2D", "TANH"]
               for layer in layers) == 2
    _assert_exact_on_board(classic_1998_export_dir, board_name, tmp_path)


def _assert_exact_on_board(export, board_name, tmp_path):
    from lenet_edge.host.session import DeviceSession
    from lenet_edge.quantize.tflm import TflmModel

    tflm = TflmModel(export / "model" / "lenet5_int8.tflite")
    inputs = _hard_inputs(784)
    expected = tflm.run_batch(inputs)
    board = get_board(board_name)
    elf = build_firmware(board, export, tmp_path / "fw").elf
    with run_qemu(board, elf, emulate=True) as url, DeviceSession(url) as session:
        got = np.stack([session.infer(x).output.reshape(-1) for x in inputs])
    np.testing.assert_array_equal(got, expected)


def _gemmlowp_requantize(acc: int, multiplier: int, shift: int) -> int:
    """TFLM's MultiplyByQuantizedMultiplier for shift <= 0 (reference arithmetic)."""
    p = acc * multiplier
    nudge = (1 << 30) if p >= 0 else 1 - (1 << 30)
    q = p + nudge
    high = -((-q) >> 31) if q < 0 else q >> 31  # truncating division by 2^31
    e = -shift
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> e) + (1 if (high & mask) > threshold else 0)


def _helium_requantize(acc: int, multiplier: int, shift: int) -> int:
    """The vector epilogue of the Helium pool-window conv, lane by lane, as the Armv8.1-M
    pseudocode defines VQRDMULH, VAND/VSHR, VQADD and VRSHL."""
    def wrap(v):
        return (v + 2**31) % 2**32 - 2**31

    high = max(-2**31, min(2**31 - 1, (2 * acc * multiplier + 2**31) >> 32))  # VQRDMULH
    fixup = wrap(high & wrap(shift)) >> 31  # VAND, VSHR #31: -1 for negatives when e > 0
    fixed = max(-2**31, min(2**31 - 1, high + fixup))  # VQADD
    e = -shift
    return wrap((fixed + ((1 << e) >> 1)) >> e)  # VRSHL by -e: round half up


def _requantization_cases(seed: int, accumulators: int, multipliers: int):
    """(accumulators, multipliers) for a requantization test: the int32 extremes, ties and
    small values, then ``accumulators`` random full-range and as many small ones, and
    ``multipliers`` random Q31 multipliers beside 0, 1, 2**30 and the largest."""
    rng = np.random.default_rng(seed)
    accs = [0, 1, -1, 2**31 - 1, -2**31, 2**30, -2**30, 12345, -12345]
    accs += [int(v) for v in rng.integers(-2**31, 2**31, accumulators)]
    accs += [int(v) for v in rng.integers(-5000, 5000, accumulators)]
    mults = [0, 1, 2**30, 2**31 - 1] + [int(v) for v in rng.integers(2**30, 2**31, multipliers)]
    return accs, mults


def test_helium_vector_requantization_is_tflms():
    # The M55's vectorised requantization must round exactly as TFLM's scalar one,
    # negative ties included (it runs only where every shift is <= 0 and multipliers >= 0).
    accs, mults = _requantization_cases(3, 1000, 20)
    for shift in range(0, -32, -1):
        for m in mults:
            for a in accs:
                assert _helium_requantize(a, m, shift) == _gemmlowp_requantize(a, m, shift), \
                    (a, m, shift)


def _right_shift_requantize(acc: int, multiplier: int, shift: int) -> int:
    """codegen's lenet5_requantize_right (shift <= -1), in the C's arithmetic: the high
    multiply, then x >> r plus the carry of (x's low bits + half - (x < 0)) in uint32."""
    high = (acc * multiplier + (1 << 30)) >> 31
    r = -shift
    unit = 1 << r
    low = ((high & (unit - 1)) + (unit >> 1) - (1 if high < 0 else 0)) % 2**32
    return (high >> r) + (low >> r)


def test_right_shift_requantization_is_tflms():
    # Used wherever every shift of a layer is <= -1 (known at export), on every core but
    # Thumb-1; ties of both signs and the int32 extremes included.
    accs, mults = _requantization_cases(5, 500, 10)
    for shift in range(-1, -32, -1):
        for m in mults:
            ties = [((k << -shift) + (1 << (-shift - 1))) for k in (-3, -1, 0, 2)]
            for a in accs + [t for t in ties if -2**31 <= t < 2**31]:
                assert _right_shift_requantize(a, m, shift) == _gemmlowp_requantize(a, m, shift), \
                    (a, m, shift)


@pytest.mark.parametrize("asm", [True, False], ids=["asm", "c-forms"])
@pytest.mark.parametrize("board_name", ["qemu-mps2-an385", "qemu-mps2-an386"])
def test_speed_build_exact_on_random_and_extreme_inputs(board_name, asm, tmp_path_factory,
                                                        tmp_path):
    # `export --optimize speed`: the widened fully connected layouts (int16 pairs on the
    # DSP cores, SMLAL output pairs on the M3) give TFLM's bytes too, and so do the C forms
    # the DSP and SMLAL kernels keep beside their inline asm (compiled here with __GNUC__
    # undefined, as a compiler without GNU asm would see them).
    from lenet_edge.codegen.export import export
    from lenet_edge.firmware_templates.render import DEFAULT_OPT, render_firmware
    from lenet_edge.host.session import DeviceSession
    from lenet_edge.quantize.tflm import TflmModel
    from tests.firmware_fixtures import firmware_model_bytes

    out = tmp_path / "speed"
    result = export(firmware_model_bytes(tmp_path_factory), out, measure_tflm=False,
                    measure_code=False, optimize="speed")
    assert result.report["optimize"] == "speed"
    names = (out / "c" / "lenet5_weights.h").read_text()
    assert "_weights_dsp16" in names and "_weights_mlal" in names
    tflm = TflmModel(out / "model" / "lenet5_int8.tflite")
    inputs = _hard_inputs(784)
    board = get_board(board_name)
    render_firmware(board, out, tmp_path / "fw", opt=DEFAULT_OPT if asm else "-O2 -U__GNUC__")
    elf = build_firmware(board, out, tmp_path / "fw").elf
    with run_qemu(board, elf, emulate=True) as url, DeviceSession(url) as session:
        got = np.stack([session.infer(x).output.reshape(-1) for x in inputs])
    np.testing.assert_array_equal(got, tflm.run_batch(inputs))


def test_cortex_m0_firmware_runs_the_thumb1_kernels(export_dir, tmp_path):
    # The micro:bit runs above on -O2 firmware, which must take the hand-written Thumb-1
    # (LENET5_V6M) conv and fully connected loops, not silently the portable C.
    import subprocess

    source = export_dir / "c" / "lenet5_model.c"
    text = source.read_text()
    assert "#if LENET5_V6M" in text and '"ldrsb %[xv], [%[kp], %[d1]]' in text
    assert '"ldrsb %[t], [%[kp], %[e0]]' in text

    def macros(*flags):
        out = subprocess.run(["arm-none-eabi-gcc", "-mthumb", *flags, f"-I{source.parent}",
                              "-E", "-dM", str(source)], check=True, capture_output=True,
                             text=True).stdout
        return out

    assert "#define LENET5_V6M 1" in macros("-mcpu=cortex-m0", "-O2")
    assert "#define LENET5_V6M 0" in macros("-mcpu=cortex-m0", "-Os")  # GCC: too few registers
    assert "#define LENET5_V6M 0" in macros("-mcpu=cortex-m0", "-O0")
    assert "#define LENET5_V6M 0" in macros("-mcpu=cortex-m3", "-O2")
