"""TANH and LOGISTIC on int8: a 256-entry table per op, taken from TFLM itself
(codegen/tables.py runs the one-op model in the tflite-micro runtime for every input), so
it cannot drift from the oracle. Kernel: ops/lut.c.j2 (in place). A table right after a
convolution or fully connected layer is instead fused into its step (ops/fusion.py)."""

from __future__ import annotations

from dataclasses import dataclass

from lenet_edge.codegen.checks import Unsupported, unary_io
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import ConstArray, Step, step_name
from lenet_edge.codegen.tables import elementwise_table

KINDS = ("TANH", "LOGISTIC")
OPTIONS: dict[str, str] = {}  # TFLM reads no options table for them
INPUTS = ((1,), ())  # (input counts TFLM's kernel accepts, indices that may be -1)


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    if x.size != y.size:
        raise Unsupported("input and output sizes differ")


@dataclass(frozen=True)
class LutParams:
    """What lut.c.j2 renders: ``size`` values looked up in the constant ``<prefix>_table``."""

    size: int
    prefix: str


def table_constant(prefix: str, kind: str, table) -> ConstArray:
    """The 256 values as the constant ``<prefix>_table`` (the op's own step or a fused one)."""
    return ConstArray(f"{prefix}_table", "int8_t", table,
                      f"TFLM int8 {kind.lower()}, index = input + 128")


def lower(graph: Graph, op: Op) -> list[Step]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    table = elementwise_table(op.kind, x.quant, y.quant)
    prefix = step_name(op)
    return [Step(name=prefix, kernel="lut", op_indices=(op.index,), input=x.index,
                 output=y.index, params=LutParams(size=x.size, prefix=prefix), in_place_ok=True,
                 constants=[table_constant(prefix, op.kind, table)])]
