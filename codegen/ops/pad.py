"""PAD with constant paddings (TFLM's int8 Pad, the PAD form: filled with the output zero
point), up to 4 dimensions. Kernel: ops/pad.c.j2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenet_edge.codegen.checks import Unsupported, same_quant, unary_io
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import Step, step_name

KINDS = ("PAD",)
OPTIONS: dict[str, str] = {}  # TFLM reads no options table for PAD
INPUTS = ((2, 3), ())  # (input counts TFLM's kernel accepts, indices that may be -1)


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    if len(op.inputs) != 2:
        raise Unsupported("explicit pad values (PADV2 form)")
    p = graph.tensor(op.inputs[1])
    if not p.is_constant or p.dtype not in ("int32", "int64") or p.shape != (len(x.shape), 2):
        raise Unsupported("paddings must be a constant [rank, 2] int32 tensor")
    if len(x.shape) > 4:
        raise Unsupported("more than 4 dimensions")
    if (p.data < 0).any():
        raise Unsupported("negative padding")
    want = tuple(int(d + p.data[i].sum()) for i, d in enumerate(x.shape))
    if want != y.shape:
        raise Unsupported(f"output shape {y.shape}, paddings give {want}")
    same_quant(x, y)


@dataclass(frozen=True)
class PadParams:
    """What pad.c.j2 renders: shapes as 4-D (leading 1s), the padding before each axis."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    before: tuple[int, ...]
    value: int  # the output zero point, the fill


def lower(graph: Graph, op: Op) -> list[Step]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    pads = graph.tensor(op.inputs[1]).data.astype(np.int64)
    lead = (4 - len(x.shape))
    params = PadParams(in_shape=(1,) * lead + tuple(x.shape), out_shape=(1,) * lead + tuple(y.shape),
                       before=(0,) * lead + tuple(int(p[0]) for p in pads),
                       value=y.quant.zero_point)
    return [Step(name=step_name(op), kernel="pad", op_indices=(op.index,), input=x.index,
                 output=y.index, params=params)]
