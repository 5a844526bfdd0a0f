"""What lowering produces, and the helpers every op's lowering shares.

A `Step` is one kernel instance (one op, or a fused op group) with its constants
(`ConstArray`); `lower.py` strings them into a `Program`. The helpers are the parts of a
lowering that several ops share: the step's C name, the requantization constants, the bias
with the input zero point folded in, and the bordered copy of an input that lets a
convolution (CONV_2D, DEPTHWISE_CONV_2D) run without bounds checks.

Shapes, strides and offsets are compile-time constants in the generated loops. Zero-point
handling is folded at export time: TFLM computes bias + sum(w * (x - zp_in)); the C
computes (bias - zp_in * sum(w)) + sum(w * x), equal in int32 arithmetic. Taps in a conv's
SAME padding add 0 in TFLM, exactly what an input padded with zp_in adds here, so a
padded copy of the input replaces every bounds check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from lenet_edge.codegen.ir import Graph, Op, Tensor
from lenet_edge.quantmath import activation_range, conv_multipliers, padding_offsets


@dataclass
class ConstArray:
    name: str
    ctype: str  # "int8_t", "int32_t", "uint16_t", ...
    values: np.ndarray  # flat
    comment: str = ""
    # The kernel variants that read it: "" (all), "scalar" (all but Helium), or names
    # joined by "+" ("mve", "dsp", "mlal+portable", ...); see emit._users.
    feature: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.values.size * np.dtype(self.values.dtype).itemsize)


@dataclass
class Step:
    name: str  # C function name
    kernel: str  # its template, kernels/<kernel>.c.j2 (ops/<kernel>.c.j2 or templates/kernels/)
    op_indices: tuple[int, ...]
    input: int  # tensor index read
    output: int  # tensor index written
    # The kernel's parameters, what its template reads as p.<name>: the op's frozen
    # dataclass (ops/<op>.py; PadRowsParams for the bordered copy).
    params: Any
    constants: list[ConstArray] = field(default_factory=list)
    traced: tuple[int, ...] = ()  # tensors reported to the trace callback after this step
    macs_dense: int = 0
    macs_executed: int = 0
    alias: bool = False  # output may share the input's memory (RESHAPE): the plan decides
    in_place_ok: bool = False  # the kernel may write its output over its input (plan decides)
    title: str = ""  # "op 3 CONV_2D", set by the emitter
    # Further activations read, passed after `input` (ADD/MUL of two tensors, CONCATENATION).
    extra_inputs: tuple[int, ...] = ()
    # Working memory of one kernel variant (the DSP conv's widened window): the memory plan
    # places it in an arena gap if one fits, else the kernel keeps it on its stack.
    scratch_bytes: int = 0


def step_name(op: Op) -> str:
    """The C function of the op's step: op<index>_<kind>."""
    return f"op{op.index}_{op.kind.lower()}"


def requant_constants(prefix: str, pairs: list[tuple[int, int]]) -> list[ConstArray]:
    # The C's rounding doubling high multiply relies on multipliers >= 0 (no saturation).
    assert all(0 <= m < 2**31 for m, _ in pairs), pairs
    return [
        ConstArray(f"{prefix}_multiplier", "int32_t",
                   np.array([m for m, _ in pairs], dtype=np.int32), "Q31 multipliers"),
        ConstArray(f"{prefix}_shift", "int8_t",
                   np.array([s for _, s in pairs], dtype=np.int8), "power-of-two exponents"),
    ]


def folded_bias(graph: Graph, op: Op, weights: np.ndarray, input_offset: int) -> np.ndarray:
    """bias + input_offset * sum(w) per output channel (int32 wrap-around, as TFLM's sum)."""
    n = weights.shape[0]
    bias = np.zeros(n, dtype=np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias += graph.tensor(op.inputs[2]).data.reshape(-1).astype(np.int64)
    folded = bias + input_offset * weights.reshape(n, -1).astype(np.int64).sum(axis=1)
    return ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)


def add_tensor(graph: Graph, name: str, shape: tuple[int, ...], quant) -> Tensor:
    """A scratch tensor of the generated code (not in the .tflite, never traced)."""
    t = Tensor(index=len(graph.tensors), name=name, shape=shape, dtype="int8", quant=quant)
    graph.tensors.append(t)
    return t


class ConvGeometry(NamedTuple):
    """A convolution's (CONV_2D, DEPTHWISE_CONV_2D) NHWC input and output, kernel, stride,
    and the padding before the first row and column as TFLM computes it."""

    ih: int
    iw: int
    ic: int
    oh: int
    ow: int
    oc: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int


def conv_geometry(graph: Graph, op: Op) -> ConvGeometry:
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = w.shape[1:3]  # OHWI (conv) and 1HWO (depthwise) alike
    sh, sw = op.options["stride"]
    pad = op.options["padding"]
    return ConvGeometry(ih, iw, ic, oh, ow, oc, kh, kw, sh, sw,
                        padding_offsets(pad, sh, 1, ih, kh, oh),
                        padding_offsets(pad, sw, 1, iw, kw, ow))


def conv_requantization(graph: Graph, op: Op, channels: int):
    """(per-channel (multiplier, shift) pairs, act_min, act_max) of a convolution's output,
    as TFLM's conv and depthwise conv derive them."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    multipliers = conv_multipliers(x.quant.scale, w.quant.scales, y.quant.scale, channels)
    act_min, act_max = activation_range(op.options["activation"], y.quant.scale,
                                        y.quant.zero_point)
    return multipliers, act_min, act_max


@dataclass(frozen=True)
class PadRowsParams:
    """What templates/kernels/pad_rows.c.j2 renders: ``rows`` input rows of ``row_bytes``
    copied into a buffer of ``size`` bytes filled with ``value`` (the zero point), rows
    ``out_row_bytes`` apart from byte ``first`` on."""

    rows: int
    row_bytes: int
    out_row_bytes: int
    first: int
    size: int
    value: int


def padded_input(graph: Graph, op: Op, x: Tensor, kernel: tuple[int, int],
                 out_hw: tuple[int, int], lead: tuple[int, int], prefix: str):
    """(steps, source tensor, height, width): a copy of ``x`` bordered with its zero point
    when the op's padding reaches outside it, so the kernel needs no bounds checks."""
    _, ih, iw, ic = x.shape
    (kh, kw), (oh, ow), (ph, pw) = kernel, out_hw, lead
    sh, sw = op.options["stride"]
    bottom = max(0, (oh - 1) * sh - ph + kh - ih)
    right = max(0, (ow - 1) * sw - pw + kw - iw)
    if not (ph or pw or bottom or right):
        return [], x.index, ih, iw
    padded = add_tensor(graph, f"{x.name}/padded", (1, ih + ph + bottom, iw + pw + right, ic),
                        x.quant)
    step = Step(
        name=f"{prefix}_pad_input", kernel="pad_rows", op_indices=(op.index,),
        input=x.index, output=padded.index, traced=None,
        params=PadRowsParams(rows=ih, row_bytes=iw * ic, out_row_bytes=padded.shape[2] * ic,
                             first=(ph * padded.shape[2] + pw) * ic, size=padded.size,
                             value=x.quant.zero_point))
    return [step], padded.index, padded.shape[1], padded.shape[2]
