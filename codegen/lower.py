"""Lower the validated IR into a `Program`: its steps, one kernel instance per op (or per
fused op group), with their constants. The generic driver only: every op is lowered by its
module of codegen/ops/ (`ops.BY_KIND`), which holds its kernel template beside it.

With ``fuse=True`` (the default, what ships) an op whose module names ``FUSES`` (CONV_2D,
FULLY_CONNECTED) absorbs what follows it when the math allows (`ops.fusion`): its module
lowers the whole group (`lower_group`). With ``fuse=False`` every op is its own step and
every op output is traced (the test build). ``optimize`` reaches the same modules (the
weight layouts they may add).
"""

from __future__ import annotations

from dataclasses import dataclass

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.ops import BY_KIND as OP_MODULES
from lenet_edge.codegen.ops import fusion
from lenet_edge.codegen.steps import ConstArray, Step
from lenet_edge.errors import LenetEdgeError


@dataclass
class Program:
    graph: Graph
    input: int  # tensor index the C API's input fills
    output: int  # tensor index the C API's output receives
    steps: list[Step]
    fused: bool = True

    @property
    def constants(self) -> list[ConstArray]:
        return [c for s in self.steps for c in s.constants]


def int8_body(graph: Graph) -> tuple[list[Op], int, int]:
    """(ops, input tensor, output tensor) of the int8 part of ``graph``: boundary float
    conversions (a leading QUANTIZE, a trailing DEQUANTIZE) stay outside the C library,
    which takes and returns int8."""
    ops = list(graph.ops)
    c_input, c_output = graph.inputs[0], graph.outputs[0]
    if ops and ops[0].kind == "QUANTIZE":
        c_input = ops.pop(0).outputs[0]
    if ops and ops[-1].kind == "DEQUANTIZE":
        c_output = ops.pop().inputs[0]
    return ops, c_input, c_output


OPTIMIZE = ("size", "speed")  # export --optimize: speed may trade flash for instructions


def lower(graph: Graph, fuse: bool = True, optimize: str = "size") -> Program:
    """``optimize="speed"``: the fully connected layers also get weight layouts that cost
    flash (int16 pairs for the DSP cores, two outputs an int32 for the SMLAL ones); "size"
    keeps the constant data within a few percent of the int8 weights."""
    if optimize not in OPTIMIZE:
        raise LenetEdgeError(f"--optimize must be one of {', '.join(OPTIMIZE)}, not {optimize!r}")
    ops, c_input, c_output = int8_body(graph)
    private = fusion.private_tensors(ops, c_output)
    steps: list[Step] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        module = OP_MODULES[op.kind]
        fuses = getattr(module, "FUSES", ())
        if fuses:  # it may absorb what follows it; its layouts follow --optimize
            group = fusion.fusable_group(ops, i, private, fuses, graph) if fuse else [op]
            steps += module.lower_group(graph, group, optimize)
        else:
            group = [op]
            steps += module.lower(graph, op)
        i += len(group)
    for step in steps:  # scratch steps (traced=None) report nothing
        step.traced = () if step.traced is None else (step.traced or (step.output,))
    return Program(graph=graph, input=c_input, output=c_output, steps=steps, fused=fuse)
