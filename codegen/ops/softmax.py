"""SOFTMAX over the last axis, TFLM's int8 Softmax: exp(beta * s_in * -(max - x)) from a
table computed at export time (codegen/softmax.py, TFLM's fixed-point arithmetic), the
reciprocal and the final rounding on the device. Kernel: ops/softmax.c.j2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite

from lenet_edge.codegen.checks import Unsupported, unary_io
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.softmax import exp_table, softmax_params
from lenet_edge.codegen.steps import ConstArray, Step, step_name

KINDS = ("SOFTMAX",)
OPTIONS = {"SOFTMAX": "SoftmaxOptions"}  # the table TFLM's parser reads
INPUTS = ((1,), ())  # (input counts TFLM's kernel accepts, indices that may be -1)
# Rows longer than this could push TFLM's softmax shift past 31 bits.
MAX_DEPTH = 256


def read_options(kind: str, table) -> dict:
    o = tflite.SoftmaxOptions()
    o.Init(table.Bytes, table.Pos)
    return {"beta": float(np.float32(o.Beta()))}


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    if x.shape != y.shape or not x.shape:
        raise Unsupported("input and output shapes differ")
    if x.shape[-1] > MAX_DEPTH:
        raise Unsupported(f"rows of {x.shape[-1]} values (at most {MAX_DEPTH})")
    # TFLM's int8 softmax requires this output quantization (it checks it in Prepare).
    if y.quant.zero_point != -128 or abs(y.quant.scale - 1 / 256) > 0.001 / 256:
        raise Unsupported(f"output quantization scale {y.quant.scale} zero point "
                          f"{y.quant.zero_point}; TFLM needs 1/256 and -128")
    try:
        softmax_params(op.options.get("beta", 1.0), x.quant.scale)
    except ValueError as why:
        raise Unsupported(str(why)) from None


@dataclass(frozen=True)
class SoftmaxParams:
    """What softmax.c.j2 renders: ``rows`` rows of ``depth`` values; the exp table is the
    constant ``<prefix>_exp``."""

    rows: int
    depth: int
    prefix: str


def lower(graph: Graph, op: Op) -> list[Step]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    depth = x.shape[-1]
    prefix = step_name(op)
    table = exp_table(op.options.get("beta", 1.0), x.quant.scale)
    return [Step(name=prefix, kernel="softmax", op_indices=(op.index,), input=x.index,
                 output=y.index, params=SoftmaxParams(rows=x.size // depth, depth=depth,
                                                      prefix=prefix),
                 constants=[ConstArray(f"{prefix}_exp", "int32_t", table,
                                       "TFLM's exp(beta * s_in * -d) in Q0.31, d = max - x")])]
