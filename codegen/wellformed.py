"""The graph's tensor references, checked as TFLM would need them before it runs anything.

TFLM indexes its tensor array with these numbers without checking them, so a reference out
of range is a read out of bounds in TFLM, and an output that is a constant or the input
would make the C (which writes outputs into its arena) and TFLM disagree about which bytes
are the result. Support questions (op kinds, types) are `validate`'s job.
"""

from __future__ import annotations

from lenet_edge.codegen.ir import Graph
from lenet_edge.errors import LenetEdgeError


def check_structure(graph: Graph) -> None:
    """Raise LenetEdgeError on the first tensor reference TFLM would read differently."""
    n = len(graph.tensors)
    writer: dict[int, int] = {}
    for op in graph.ops:
        where = f"{graph.name}: op {op.index} ({op.kind})"
        for k, t in enumerate(op.inputs):
            if not -1 <= t < n:  # -1: an optional input left out
                raise LenetEdgeError(f"{where}: inputs[{k}] is tensor {t}, but the model has "
                                     f"{n} tensors (0..{n - 1})")
        for k, t in enumerate(op.outputs):
            if not 0 <= t < n:
                raise LenetEdgeError(f"{where}: outputs[{k}] is tensor {t}, but the model has "
                                     f"{n} tensors (0..{n - 1})")
            if t in writer:
                raise LenetEdgeError(f"{where}: outputs[{k}] is tensor {t}, which op "
                                     f"{writer[t]} already writes")
            if t in op.inputs:
                raise LenetEdgeError(f"{where}: tensor {t} is both an input and an output")
            if graph.tensor(t).is_constant:
                raise LenetEdgeError(f"{where}: outputs[{k}] is tensor {t}, a constant "
                                     "(weights or bias)")
            writer[t] = op.index
    for role, ids in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        for k, t in enumerate(ids):
            where = f"{graph.name}: subgraph {role}[{k}]"
            if not 0 <= t < n:
                raise LenetEdgeError(f"{where} is tensor {t}, but the model has {n} tensors "
                                     f"(0..{n - 1})")
            if graph.tensor(t).is_constant:
                raise LenetEdgeError(f"{where} is tensor {t}, a constant (weights or bias)")
        if len(set(ids)) != len(ids):
            raise LenetEdgeError(f"{graph.name}: subgraph {role} name a tensor twice: "
                                 f"{list(ids)}")
    for k, t in enumerate(graph.inputs):
        if t in writer:
            raise LenetEdgeError(f"{graph.name}: subgraph inputs[{k}] is tensor {t}, which "
                                 f"op {writer[t]} writes")
        if t in graph.outputs:
            raise LenetEdgeError(f"{graph.name}: tensor {t} is both the subgraph's input and "
                                 "its output")
    for k, t in enumerate(graph.outputs):
        if t not in writer:
            raise LenetEdgeError(f"{graph.name}: subgraph outputs[{k}] is tensor {t}, which "
                                 "no op writes")
