"""MAX_POOL_2D and AVERAGE_POOL_2D, TFLM's int8 MaxPool / AveragePool (SAME or VALID
padding; the average over the in-image taps, rounded half away from zero). Kernels:
ops/max_pool.c.j2, ops/avg_pool.c.j2. A pool right after a convolution may instead be
fused into the conv's step (ops/fusion.py)."""

from __future__ import annotations

from dataclasses import dataclass

import tflite

from lenet_edge.codegen import options
from lenet_edge.codegen.checks import Unsupported, same_quant, unary_io
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import Step, step_name
from lenet_edge.quantmath import activation_range, output_size, padding_offsets

KINDS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
OPTIONS = {kind: "Pool2DOptions" for kind in KINDS}  # the table TFLM's parser reads
INPUTS = ((1,), ())  # (input counts TFLM's kernel accepts, indices that may be -1)


def read_options(kind: str, table) -> dict:
    o = tflite.Pool2DOptions()
    o.Init(table.Bytes, table.Pos)
    return {
        "padding": options.padding(o),
        "stride": (o.StrideH(), o.StrideW()),
        "filter": (o.FilterHeight(), o.FilterWidth()),
        "activation": options.activation(o),
    }


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    o = op.options
    if o.get("padding") not in ("SAME", "VALID"):
        raise Unsupported(f"padding {o.get('padding')}")
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1 or x.shape[3] != y.shape[3]:
        raise Unsupported("input and output must be NHWC with batch 1 and equal channels")
    same_quant(x, y)
    for axis in range(2):
        stride, k = o["stride"][axis], o["filter"][axis]
        if stride < 1 or k < 1:
            raise Unsupported(f"stride {o['stride']} filter {o['filter']}")
        if output_size(o["padding"], stride, 1, x.shape[1 + axis], k) != y.shape[1 + axis]:
            raise Unsupported(f"output shape {y.shape} is not what {o['padding']} padding gives")


@dataclass(frozen=True)
class PoolParams:
    """What max_pool.c.j2 / avg_pool.c.j2 render: NHWC shapes, window, stride, the padding
    before the first row and column, the fused activation's range."""

    ih: int
    iw: int
    c: int
    oh: int
    ow: int
    sh: int
    sw: int
    fh: int
    fw: int
    ph: int
    pw: int
    act_min: int
    act_max: int


def lower(graph: Graph, op: Op) -> list[Step]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    sh, sw = op.options["stride"]
    fh, fw = op.options["filter"]
    pad = op.options["padding"]
    act_min, act_max = activation_range(op.options["activation"], y.quant.scale,
                                        y.quant.zero_point)
    params = PoolParams(ih=ih, iw=iw, c=c, oh=oh, ow=ow, sh=sh, sw=sw, fh=fh, fw=fw,
                        ph=padding_offsets(pad, sh, 1, ih, fh, oh),
                        pw=padding_offsets(pad, sw, 1, iw, fw, ow),
                        act_min=act_min, act_max=act_max)
    kernel = "max_pool" if op.kind == "MAX_POOL_2D" else "avg_pool"
    return [Step(name=step_name(op), kernel=kernel, op_indices=(op.index,), input=x.index,
                 output=y.index, params=params)]
