"""MEAN over H and W (global average pooling), TFLM's int8 MEAN: the per-channel sum of
x - zero point, requantized by a multiplier that has the division folded in
(quantmath.mean_multiplier). Kernel: ops/mean.c.j2."""

from __future__ import annotations

from dataclasses import dataclass

import tflite

from lenet_edge.codegen.checks import Unsupported, unary_io
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import Step, step_name
from lenet_edge.quantmath import mean_multiplier

KINDS = ("MEAN",)
OPTIONS = {"MEAN": "ReducerOptions"}  # the builtin options table TFLM's parser reads
INPUTS = ((2,), ())  # (input counts TFLM's kernel accepts, indices that may be -1)


def read_options(kind: str, table) -> dict:
    o = tflite.ReducerOptions()
    o.Init(table.Bytes, table.Pos)
    return {"keep_dims": bool(o.KeepDims())}


def check(graph: Graph, op: Op) -> None:
    """Only the global average pool form: NHWC, mean over H and W."""
    x, y = unary_io(graph, op)
    if len(op.inputs) != 2 or not graph.tensor(op.inputs[1]).is_constant:
        raise Unsupported("the axes are not a constant")
    axes = sorted(int(a) % max(len(x.shape), 1) for a in graph.tensor(op.inputs[1]).data.reshape(-1))
    if len(x.shape) != 4 or x.shape[0] != 1 or axes != [1, 2]:
        raise Unsupported(f"mean over axes {axes} of {x.shape} (only over H and W of NHWC)")
    if y.size != x.shape[3]:
        raise Unsupported(f"output shape {y.shape} for {x.shape[3]} channels")
    if (x.quant.scale, x.quant.zero_point) == (y.quant.scale, y.quant.zero_point):
        raise Unsupported("input and output quantization are identical (TFLM takes another "
                          "code path for that form)")


@dataclass(frozen=True)
class MeanParams:
    """What mean.c.j2 renders: ``pixels`` (H*W) summed per channel of ``c``."""

    pixels: int
    c: int
    in_offset: int  # -input zero point
    multiplier: int
    shift: int
    out_offset: int  # output zero point


def lower(graph: Graph, op: Op) -> list[Step]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _, h, w, c = x.shape
    multiplier, shift = mean_multiplier(x.quant.scale, y.quant.scale, h * w)
    assert 0 <= multiplier < 2**31
    params = MeanParams(pixels=h * w, c=c, in_offset=-x.quant.zero_point, multiplier=multiplier,
                        shift=shift, out_offset=y.quant.zero_point)
    return [Step(name=step_name(op), kernel="mean", op_indices=(op.index,), input=x.index,
                 output=y.index, params=params, macs_dense=h * w * c, macs_executed=h * w * c)]
