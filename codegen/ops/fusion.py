"""Fusion: a CONV_2D or FULLY_CONNECTED step absorbs what follows it when the math allows,
so the fused ops' outputs are never materialised (`lower(fuse=True)`, what ships): an
elementwise table (TANH, LOGISTIC) applied to each requantized value, and, after a conv,
a non-overlapping VALID pool over a few conv pixels (its accumulators kept in registers).

An op module that fuses names what it absorbs in ``FUSES`` (``TABLE``, ``POOL``) and
lowers a whole group with ``lower_group(graph, group, optimize)``; `lower.py` asks
`fusable_group` for the group. A fused tensor must have no other reader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.ops import lut
from lenet_edge.codegen.steps import ConstArray
from lenet_edge.codegen.tables import elementwise_table
from lenet_edge.quantmath import activation_range

TABLE, POOL = "table", "pool"  # what an op's FUSES may name
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


def fusable_group(ops: list[Op], i: int, private: set[int], fuses: tuple[str, ...]) -> list[Op]:
    """ops[i] and what its step absorbs: a table, then (with POOL) a VALID pool whose
    stride is its window of at most MAX_FUSED_POOL pixels."""
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
    return group


@dataclass(frozen=True, eq=False)
class Fused:
    """What a fused step does after requantization: look each value up in ``table``
    (TFLM's int8 ``table_kind``, None without a table), then ``pool`` ("max", "avg" or
    None) over ``pool_filter`` conv pixels, clamped to the pool's activation range."""

    table: np.ndarray | None = None
    table_kind: str = ""
    pool: str | None = None
    pool_filter: tuple[int, int] = (1, 1)
    pool_min: int = -128
    pool_max: int = 127

    def table_constants(self, prefix: str) -> list[ConstArray]:
        """The table as the step's constant ``<prefix>_table`` (none without one)."""
        if self.table is None:
            return []
        return [lut.table_constant(prefix, self.table_kind, self.table)]


def fused_ops(graph: Graph, group: list[Op]) -> Fused:
    """What the ops after the first of ``group`` (from `fusable_group`) do."""
    found: dict = {}
    for op in group[1:]:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if op.kind in TABLE_KINDS:
            found.update(table=elementwise_table(op.kind, x.quant, y.quant), table_kind=op.kind)
        else:
            pool_min, pool_max = activation_range(op.options["activation"], y.quant.scale,
                                                  y.quant.zero_point)
            found.update(pool="max" if op.kind == "MAX_POOL_2D" else "avg",
                         pool_filter=tuple(op.options["filter"]), pool_min=pool_min,
                         pool_max=pool_max)
    return Fused(**found)
