"""ADD and MUL with TFLM's int8 arithmetic: of two activations of one shape (a residual
connection), or of an activation and a constant (a scalar, one value per channel, or one
per element: what a BatchNormalization or Rescaling the converter could not fold becomes),
whose side of the formula is then precomputed per channel (or element). Kernels:
ops/add_tensors.c.j2, ops/mul_tensors.c.j2 (two activations: Step.extra_inputs),
ops/add_const.c.j2, ops/mul_const.c.j2 (a constant operand, in place)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tflite

from lenet_edge.codegen import options
from lenet_edge.codegen.checks import Unsupported, int8_act
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import ConstArray, Step, step_name
from lenet_edge.quantmath import (
    activation_range,
    add_multipliers,
    add_scaled_input,
    quantize_multiplier,
)

KINDS = ("ADD", "MUL")
OPTIONS = {"ADD": "AddOptions", "MUL": "MulOptions"}  # the tables TFLM's parser reads
INPUTS = ((2,), ())  # (input counts TFLM's kernel accepts, indices that may be -1)


def read_options(kind: str, table) -> dict:
    o = tflite.AddOptions() if kind == "ADD" else tflite.MulOptions()
    o.Init(table.Bytes, table.Pos)
    return {"activation": options.activation(o)}


def const_operand(graph: Graph, op: Op) -> tuple[int, int]:
    """(activation input, constant input) of an ADD or MUL, in either order."""
    a, b = op.inputs
    return (b, a) if graph.tensor(a).is_constant else (a, b)


def const_is_elementwise(const_shape, x_shape) -> bool:
    """A constant with one value per element of the activation (zip1989's per-unit biases:
    [1, H, W, C] or [H, W, C] for a [1, H, W, C] input), which TFLM adds without broadcast."""
    const_shape, x_shape = tuple(const_shape), tuple(x_shape)
    tail = x_shape[len(x_shape) - len(const_shape):]
    return (len(const_shape) <= len(x_shape) and const_shape == tail
            and math.prod(const_shape) == math.prod(x_shape) > 1)


def check(graph: Graph, op: Op) -> None:
    if len(op.inputs) != 2:
        raise Unsupported(f"{len(op.inputs)} inputs")
    if all(not graph.tensor(t).is_constant for t in op.inputs):
        a, b = (int8_act(graph, t, "input") for t in op.inputs)
        y = int8_act(graph, op.outputs[0], "output")
        if not (a.shape == b.shape == y.shape):
            raise Unsupported(f"operands of shapes {a.shape} and {b.shape} (broadcasting "
                              "between two activations is not supported)")
        if op.kind == "ADD":
            _check_add_scales(a.quant.scale, b.quant.scale, y.quant.scale)
        return
    xi, ci = const_operand(graph, op)
    x = int8_act(graph, xi, "input")
    y = int8_act(graph, op.outputs[0], "output")
    c = graph.tensor(ci)
    if c.dtype != "int8" or c.quant is None or c.quant.per_channel:
        raise Unsupported(f"constant operand {ci} must be int8 with one scale and zero point")
    if x.shape != y.shape or not x.shape:
        raise Unsupported(f"output shape {y.shape} differs from the input's {x.shape}")
    channels = x.shape[-1]
    trailing = tuple(d for d in c.shape if d != 1)
    if c.size != 1 and not const_is_elementwise(c.shape, x.shape) and (
            trailing != (channels,) or len(c.shape) > len(x.shape) or c.shape[-1] != channels):
        raise Unsupported(f"constant of shape {c.shape} is neither a scalar, one value per "
                          f"channel nor one value per element of {x.shape}")
    if op.kind == "ADD":
        _check_add_scales(x.quant.scale, c.quant.scale, y.quant.scale)


def _check_add_scales(s1: float, s2: float, s_out: float) -> None:
    if any(shift > 0 for _, shift in add_multipliers(s1, s2, s_out)):
        raise Unsupported("output scale too small for TFLM's int8 ADD rescaling")


@dataclass(frozen=True)
class _Elementwise:
    size: int  # elements of the output
    out_offset: int  # output zero point
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddTensorsParams(_Elementwise):
    """add_tensors.c.j2: TFLM's ADD of two activations (each rescaled, then summed)."""

    offset1: int  # -zero point of each input
    offset2: int
    m1: int
    s1: int
    m2: int
    s2: int
    out_multiplier: int
    out_shift: int


@dataclass(frozen=True)
class MulTensorsParams(_Elementwise):
    """mul_tensors.c.j2: TFLM's MUL of two activations."""

    offset1: int
    offset2: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class _ConstOperand(_Elementwise):
    channels: int  # the constant's period along the flat activation
    prefix: str  # of the constant's array
    in_offset: int  # -input zero point


@dataclass(frozen=True)
class AddConstParams(_ConstOperand):
    """add_const.c.j2: the activation rescaled, plus the constant's precomputed addend."""

    in_multiplier: int
    in_shift: int
    out_multiplier: int
    out_shift: int


@dataclass(frozen=True)
class MulConstParams(_ConstOperand):
    """mul_const.c.j2: the activation times the constant's precomputed factor."""

    multiplier: int
    shift: int


def lower(graph: Graph, op: Op) -> list[Step]:
    if not any(graph.tensor(t).is_constant for t in op.inputs):
        return [_lower_two_tensors(graph, op)]
    xi, ci = const_operand(graph, op)
    x, c, y = graph.tensor(xi), graph.tensor(ci), graph.tensor(op.outputs[0])
    values = c.data.astype(np.int64).reshape(-1)
    # The constant repeats with this period along the flat activation: one value per
    # channel, or (per-unit biases) one per element.
    channels = x.size if values.size == x.size else x.shape[-1]
    if values.size == 1:
        values = np.repeat(values, channels)
    prefix = step_name(op)
    act_min, act_max = activation_range(op.options.get("activation", "NONE"), y.quant.scale,
                                        y.quant.zero_point)
    common = dict(size=x.size, channels=channels, prefix=prefix, in_offset=-x.quant.zero_point,
                  out_offset=y.quant.zero_point, act_min=act_min, act_max=act_max)
    if op.kind == "MUL":
        multiplier, shift = quantize_multiplier(x.quant.scale * c.quant.scale / y.quant.scale)
        params = MulConstParams(**common, multiplier=multiplier, shift=shift)
        constants = [ConstArray(f"{prefix}_factor", "int16_t",
                                (values - c.quant.zero_point).astype(np.int16),
                                "constant operand + its offset, per channel")]
        kernel = "mul_const"
    else:
        (m1, s1), (m2, s2), (mo, so) = add_multipliers(x.quant.scale, c.quant.scale,
                                                       y.quant.scale)
        addend = [add_scaled_input(int(v), -c.quant.zero_point, m2, s2) for v in values]
        params = AddConstParams(**common, in_multiplier=m1, in_shift=-s1, out_multiplier=mo,
                                out_shift=-so)
        constants = [ConstArray(f"{prefix}_addend", "int32_t", np.array(addend, np.int32),
                                "constant operand rescaled as TFLM's ADD does, per channel")]
        kernel = "add_const"
    return [Step(name=prefix, kernel=kernel, op_indices=(op.index,), input=x.index,
                 output=y.index, params=params, constants=constants, in_place_ok=True)]


def _lower_two_tensors(graph: Graph, op: Op) -> Step:
    a, b = (graph.tensor(t) for t in op.inputs)
    y = graph.tensor(op.outputs[0])
    act_min, act_max = activation_range(op.options.get("activation", "NONE"), y.quant.scale,
                                        y.quant.zero_point)
    common = dict(size=y.size, offset1=-a.quant.zero_point, offset2=-b.quant.zero_point,
                  out_offset=y.quant.zero_point, act_min=act_min, act_max=act_max)
    if op.kind == "MUL":
        multiplier, shift = quantize_multiplier(a.quant.scale * b.quant.scale / y.quant.scale)
        params = MulTensorsParams(**common, multiplier=multiplier, shift=shift)
    else:
        (m1, s1), (m2, s2), (mo, so) = add_multipliers(a.quant.scale, b.quant.scale,
                                                       y.quant.scale)
        params = AddTensorsParams(**common, m1=m1, s1=-s1, m2=m2, s2=-s2, out_multiplier=mo,
                                  out_shift=-so)
    kernel = "mul_tensors" if op.kind == "MUL" else "add_tensors"
    return Step(name=step_name(op), kernel=kernel, op_indices=(op.index,), input=a.index,
                extra_inputs=(b.index,), output=y.index, params=params)
