"""CONCATENATION of int8 activations, TFLM's int8 Concatenation: every input quantized
like the output, so TFLM copies bytes; the inputs are joined along one axis. Kernel:
ops/concatenation.c.j2 (a step reading several activations: Step.extra_inputs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite

from lenet_edge.codegen import options
from lenet_edge.codegen.checks import Unsupported, int8_act, same_quant
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import Step, step_name

KINDS = ("CONCATENATION",)
OPTIONS = {"CONCATENATION": "ConcatenationOptions"}  # the table TFLM's parser reads
INPUTS = (tuple(range(1, 11)), ())  # TFLM: 1 to 10 inputs, none optional


def read_options(kind: str, table) -> dict:
    o = tflite.ConcatenationOptions()
    o.Init(table.Bytes, table.Pos)
    return {"axis": o.Axis(), "activation": options.activation(o)}


def check(graph: Graph, op: Op) -> None:
    y = int8_act(graph, op.outputs[0], "output")
    if op.options.get("activation", "NONE") != "NONE":
        raise Unsupported(f"fused activation {op.options['activation']}")
    axis = op.options.get("axis", 0)
    axis = axis + len(y.shape) if axis < 0 else axis
    if not 0 <= axis < len(y.shape):
        raise Unsupported(f"axis {op.options.get('axis')} of a rank-{len(y.shape)} output")
    total = 0
    for t in op.inputs:
        x = graph.tensor(t)
        if x.is_constant:
            raise Unsupported(f"input {t} is a constant")
        x = int8_act(graph, t, "input")
        same_quant(x, y)
        if len(x.shape) != len(y.shape) or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, y.shape)) if i != axis):
            raise Unsupported(f"input shape {x.shape} does not fit output {y.shape} on axis {axis}")
        total += x.shape[axis]
    if total != y.shape[axis]:
        raise Unsupported(f"inputs add up to {total} along axis {axis}, the output has "
                          f"{y.shape[axis]}")


@dataclass(frozen=True)
class ConcatenationParams:
    """What concatenation.c.j2 renders: ``outer`` rows; input k copies ``inner[k]`` bytes a
    row to ``offsets[k]`` of the output's row of ``row`` bytes."""

    outer: int
    inner: tuple[int, ...]
    offsets: tuple[int, ...]
    row: int


def lower(graph: Graph, op: Op) -> list[Step]:
    y = graph.tensor(op.outputs[0])
    axis = op.options.get("axis", 0) % len(y.shape)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    inner = tuple(int(np.prod(graph.tensor(t).shape[axis:], dtype=np.int64)) for t in op.inputs)
    params = ConcatenationParams(outer=outer, inner=inner,
                                 offsets=tuple(int(o) for o in np.cumsum((0,) + inner[:-1])),
                                 row=sum(inner))
    return [Step(name=step_name(op), kernel="concatenation", op_indices=(op.index,),
                 input=op.inputs[0], extra_inputs=tuple(op.inputs[1:]), output=y.index,
                 params=params)]
