"""RESHAPE: the same int8 bytes in a new shape. The step aliases its input (Step.alias)
unless the memory plan must copy it (into the caller's output buffer). Kernel:
ops/copy.c.j2. The shape ops that only compute a RESHAPE's target are folded before
validation (fold.py)."""

from __future__ import annotations

from dataclasses import dataclass

from lenet_edge.codegen.checks import Unsupported, same_quant, unary_io
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import Step, step_name

KINDS = ("RESHAPE",)
OPTIONS: dict[str, str] = {}  # its ReshapeOptions are not read: the output shape is the IR's
INPUTS = ((1, 2), ())  # the input, optionally the shape tensor


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    if x.size != y.size:
        raise Unsupported(f"reshape from {x.size} to {y.size} elements")
    same_quant(x, y)


@dataclass(frozen=True)
class CopyParams:
    """What copy.c.j2 renders: ``size`` bytes copied."""

    size: int


def lower(graph: Graph, op: Op) -> list[Step]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    return [Step(name=step_name(op), kernel="copy", op_indices=(op.index,), input=x.index,
                 output=y.index, params=CopyParams(size=x.size), alias=True)]
