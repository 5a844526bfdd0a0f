"""Refuse, with one clear message naming the model and the op, anything not supported exactly.

The generator promises bit-exactness with TFLM; a form it does not implement must stop
the export here rather than produce C that is silently different.
"""

from __future__ import annotations

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.checks import Unsupported
from lenet_edge.codegen import ops
from lenet_edge.errors import LenetEdgeError

SUPPORTED_OPS = (*ops.BY_KIND, "QUANTIZE", "DEQUANTIZE")
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
# kind -> (input counts TFLM's kernel accepts, indices that may be -1). Default: one input.
INPUTS = {kind: module.INPUTS for module in ops.MODULES for kind in module.KINDS}


def validate_graph(graph: Graph) -> None:
    """Raise LenetEdgeError on the first unsupported feature of ``graph``."""
    _check_boundary(graph)
    for op in graph.ops:
        try:
            _check_op(graph, op)
        except Unsupported as why:
            raise LenetEdgeError(
                f"{graph.name}: op {op.index} {op.kind} is not supported: {why}. "
                "lenet-edge generates C for int8 models from `lenet-edge quantize` "
                f"(ops: {', '.join(SUPPORTED_OPS)})"
            ) from None


def _check_boundary(graph: Graph) -> None:
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise LenetEdgeError(f"{graph.name}: the C API has one input and one output; the model "
                             f"has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs")
    if not graph.ops:
        raise LenetEdgeError(f"{graph.name}: the model has no operators")
    float_ops = [op for op in graph.ops
                 if op.kind not in ("QUANTIZE", "DEQUANTIZE")
                 and any(t >= 0 and graph.tensor(t).dtype == "float32"
                         for t in op.inputs + op.outputs)]
    if float_ops:
        op = float_ops[0]
        raise LenetEdgeError(
            f"{graph.name} is a float (unquantized) model (op {op.index} {op.kind} computes in "
            "float32); quantize it first: `lenet-edge quantize --model M.keras`")
    for t in graph.tensors:
        if t.dtype in ("int16", "uint8", "int4", "int64") and not t.is_constant:
            raise LenetEdgeError(
                f"{graph.name}: tensor {t.index} ({t.name}) is {t.dtype}; lenet-edge supports "
                "int8 activations only (full-integer int8 quantization)")
    produced = {t for op in graph.ops for t in op.outputs}
    for op in graph.ops:
        for t in op.inputs:
            if t < 0 or t in graph.inputs or t in produced:
                continue
            if not graph.tensor(t).is_constant:
                raise LenetEdgeError(f"{graph.name}: op {op.index} {op.kind} reads tensor {t}, "
                                     "which is neither an input, an op output nor a constant")
    seen = set(graph.inputs)
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0 and not graph.tensor(t).is_constant and t not in seen:
                raise LenetEdgeError(f"{graph.name}: ops are not in execution order "
                                     f"(op {op.index} reads tensor {t} before it is written)")
        seen.update(op.outputs)


def _check_op(graph: Graph, op: Op) -> None:
    if op.kind not in SUPPORTED_OPS:
        raise Unsupported("no kernel for this operator")
    if len(op.outputs) != 1:
        raise Unsupported(f"{len(op.outputs)} outputs")
    act = op.options.get("activation", "NONE")
    if act not in ACTIVATIONS:
        raise Unsupported(f"fused activation {act}")
    _check_inputs(op)
    if op.kind in ("QUANTIZE", "DEQUANTIZE"):
        _check_boundary_op(graph, op)
    else:
        ops.BY_KIND[op.kind].check(graph, op)


def _check_inputs(op: Op) -> None:
    """As many inputs as TFLM's kernel accepts; only those it treats as optional absent."""
    counts, optional = INPUTS.get(op.kind, ((1,), ()))
    if len(op.inputs) not in counts:
        raise Unsupported(f"{len(op.inputs)} inputs (TFLM's kernel takes "
                      f"{' or '.join(map(str, counts))})")
    for k, t in enumerate(op.inputs):
        if t < 0 and k not in optional:
            raise Unsupported(f"inputs[{k}] is absent (-1)")


def _check_boundary_op(graph: Graph, op: Op) -> None:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if op.kind == "QUANTIZE":
        if op.inputs[0] not in graph.inputs or x.dtype != "float32" or y.dtype != "int8":
            raise Unsupported("only a float32 -> int8 QUANTIZE of the model input is supported")
    else:
        if op.outputs[0] not in graph.outputs or x.dtype != "int8" or y.dtype != "float32":
            raise Unsupported("only an int8 -> float32 DEQUANTIZE of the model output is supported")
