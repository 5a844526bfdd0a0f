"""Fusion: a CONV_2D or FULLY_CONNECTED step absorbs what follows it when the math allows,
so the fused ops' outputs are never materialised (`lower(fuse=True)`, what ships): an
elementwise table (TANH, LOGISTIC) applied to each requantized value, and, after a conv,
a non-overlapping VALID pool over a few conv pixels (its accumulators kept in registers),
or LeNet-5 (1998)'s trainable subsampling: a DEPTHWISE_CONV_2D whose kernel (at most
MAX_FUSED_POOL pixels) is its stride (one coefficient per pixel and channel, a bias), with
its own table after it.

An op module that fuses names what it absorbs in ``FUSES`` (``TABLE``, ``POOL``,
``SUBSAMPLE``) and
lowers a whole group with ``lower_group(graph, group, optimize)``; `lower.py` asks
`fusable_group` for the group. A fused tensor must have no other reader.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.ops import lut
from lenet_edge.codegen.steps import ConstArray, conv_requantization, folded_bias
from lenet_edge.codegen.steps import requant_constants
from lenet_edge.codegen.tables import elementwise_table
from lenet_edge.quantmath import activation_range

TABLE, POOL, SUBSAMPLE = "table", "pool", "subsample"  # what an op's FUSES may name
TABLE_KINDS = lut.KINDS
POOL_KINDS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")
MAX_FUSED_POOL = 4  # conv pixels per fused pool window (accumulators kept in registers)


def private_tensors(ops: list[Op], output: int) -> set[int]:
    """The tensors exactly one op reads (and not the output): only those may be fused away."""
    readers: dict[int, int] = {}
    for op in ops:
        for t in op.inputs:
            readers[t] = readers.get(t, 0) + 1
    return {t for t, n in readers.items() if n == 1 and t != output}


def subsampling(graph: Graph, op: Op) -> bool:
    """A DEPTHWISE_CONV_2D that is a non-overlapping subsampling a fused step can do: VALID,
    depth multiplier 1 (out channel c reads in channel c), its kernel its stride, at most
    MAX_FUSED_POOL pixels."""
    if op.kind != "DEPTHWISE_CONV_2D" or len(op.inputs) < 2 or op.inputs[1] < 0:
        return False
    x, w, y = (graph.tensor(t) for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    o = op.options
    return (o["padding"] == "VALID" and len(w.shape) == 4 and w.shape[0] == 1
            and tuple(o["stride"]) == tuple(w.shape[1:3])
            and tuple(o.get("dilation", (1, 1))) == (1, 1)
            and w.shape[1] * w.shape[2] <= MAX_FUSED_POOL
            and x.shape[3] == y.shape[3] == w.shape[3]
            and (o.get("depth_multiplier") or 1) == 1)


def fusable_group(ops: list[Op], i: int, private: set[int], fuses: tuple[str, ...],
                  graph: Graph | None = None) -> list[Op]:
    """ops[i] and what its step absorbs: a table, then (with POOL) a VALID pool whose
    stride is its window of at most MAX_FUSED_POOL pixels, or (with SUBSAMPLE, given the
    graph) a `subsampling` depthwise conv and a table after it."""
    group = [ops[i]]
    out = ops[i].outputs[0]
    j = i + 1
    if TABLE in fuses and j < len(ops) and ops[j].kind in TABLE_KINDS \
            and ops[j].inputs[0] == out and out in private:
        group.append(ops[j])
        out = ops[j].outputs[0]
        j += 1
    if POOL in fuses and j < len(ops) and out in private \
            and ops[j].kind in POOL_KINDS and ops[j].inputs[0] == out:
        pool = ops[j].options
        fh, fw = pool["filter"]
        if pool["padding"] == "VALID" and tuple(pool["stride"]) == (fh, fw) \
                and fh * fw <= MAX_FUSED_POOL:
            group.append(ops[j])
    elif SUBSAMPLE in fuses and graph is not None and j < len(ops) and out in private \
            and ops[j].inputs[0] == out and subsampling(graph, ops[j]):
        group.append(ops[j])
        out = ops[j].outputs[0]
        j += 1
        if j < len(ops) and ops[j].kind in TABLE_KINDS and ops[j].inputs[0] == out \
                and out in private:
            group.append(ops[j])
    return group


@dataclass(frozen=True, eq=False)
class Subsample:
    """A fused `subsampling` depthwise conv (TFLM DepthwiseConvPerChannel on the step's
    int8 pool pixels): out channel c is ``bias[c] + sum_i weights[c, i] * v_i`` (the input
    zero point folded into ``bias``), requantized by ``multipliers[c]``, plus
    ``output_offset``, clamped to [``act_min``, ``act_max``], then looked up in ``table``
    (its own TANH/LOGISTIC, None without one)."""

    weights: np.ndarray  # [oc][pool pixel] int8
    bias: np.ndarray  # [oc] int32
    multipliers: list
    output_offset: int
    act_min: int
    act_max: int
    table: np.ndarray | None = None
    table_kind: str = ""

    def constants(self, prefix: str) -> list[ConstArray]:
        """``<prefix>_sub_weights``, ``_sub_bias``, ``_sub_multiplier``, ``_sub_shift`` (and
        ``_sub_table``)."""
        sub = f"{prefix}_sub"
        found = [ConstArray(f"{sub}_weights", "int8_t", self.weights.reshape(-1),
                            "subsampling coefficients, [out channel][pool pixel]"),
                 ConstArray(f"{sub}_bias", "int32_t", self.bias,
                            "bias - input zero point * sum(coefficients), per channel"),
                 *requant_constants(sub, self.multipliers)]
        if self.table is not None:
            found.append(lut.table_constant(sub, self.table_kind, self.table))
        return found


@dataclass(frozen=True, eq=False)
class Fused:
    """What a fused step does after requantization: look each value up in ``table``
    (TFLM's int8 ``table_kind``, None without a table), then ``pool`` ("max", "avg",
    "subsampling" with ``sub``, or None) over ``pool_filter`` conv pixels, clamped to the
    pool's activation range."""

    table: np.ndarray | None = None
    table_kind: str = ""
    pool: str | None = None
    pool_filter: tuple[int, int] = (1, 1)
    pool_min: int = -128
    pool_max: int = 127
    sub: Subsample | None = None

    def table_constants(self, prefix: str) -> list[ConstArray]:
        """The table as the step's constant ``<prefix>_table`` (none without one), and the
        subsampling's constants."""
        found = [] if self.table is None else [
            lut.table_constant(prefix, self.table_kind, self.table)]
        return found + (self.sub.constants(prefix) if self.sub else [])


def _subsample(graph: Graph, op: Op) -> Subsample:
    """The `subsampling` depthwise conv ``op`` as a fused step's Subsample."""
    x, w, y = (graph.tensor(t) for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    oc = y.shape[3]
    weights = w.data.astype(np.int8).reshape(-1, oc).T  # [1, kh, kw, oc] -> [oc][pixel]
    multipliers, act_min, act_max = conv_requantization(graph, op, oc)
    return Subsample(weights=np.ascontiguousarray(weights),
                     bias=folded_bias(graph, op, weights, -x.quant.zero_point),
                     multipliers=multipliers, output_offset=y.quant.zero_point,
                     act_min=act_min, act_max=act_max)


def fused_ops(graph: Graph, group: list[Op]) -> Fused:
    """What the ops after the first of ``group`` (from `fusable_group`) do."""
    found: dict = {}
    sub = None
    for op in group[1:]:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if op.kind in TABLE_KINDS and sub is not None:
            sub = replace(sub, table=elementwise_table(op.kind, x.quant, y.quant),
                          table_kind=op.kind)
        elif op.kind in TABLE_KINDS:
            found.update(table=elementwise_table(op.kind, x.quant, y.quant), table_kind=op.kind)
        elif op.kind == "DEPTHWISE_CONV_2D":
            sub = _subsample(graph, op)
            found.update(pool="subsampling", pool_filter=tuple(op.options["stride"]))
        else:
            pool_min, pool_max = activation_range(op.options["activation"], y.quant.scale,
                                                  y.quant.zero_point)
            found.update(pool="max" if op.kind == "MAX_POOL_2D" else "avg",
                         pool_filter=tuple(op.options["filter"]), pool_min=pool_min,
                         pool_max=pool_max)
    return Fused(**found, sub=sub)
