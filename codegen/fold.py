"""Fold the shape arithmetic a dynamic-batch conversion leaves in front of a RESHAPE.

`TFLiteConverter.from_keras_model` on a model with a free batch dimension computes
Flatten's target shape at run time: SHAPE(x) -> STRIDED_SLICE (the batch) -> PACK(batch,
features) -> RESHAPE's shape input. The generated C runs one image at a time (batch 1,
the static shape the .tflite records), so that arithmetic is a constant: it is evaluated
here, checked against the RESHAPE's recorded output shape, and the ops are dropped
(RESHAPE itself is a no-op alias in the C). Anything else in such a chain is left alone,
so validation refuses it by name.
"""

from __future__ import annotations

import numpy as np

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.errors import LenetEdgeError

SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")


def fold_batch_shape(graph: Graph) -> Graph:
    """Drop the SHAPE/STRIDED_SLICE/PACK ops that only compute a RESHAPE's target shape."""
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
    values: dict[int, np.ndarray] = {}  # tensor -> the int32 value it has at batch 1
    for t in graph.tensors:
        if t.is_constant and t.dtype in ("int32", "int64"):
            values[t.index] = t.data.astype(np.int64)
    folded: set[int] = set()
    for op in graph.ops:
        if op.kind not in SHAPE_OPS or len(op.outputs) != 1:
            continue
        value = _evaluate(graph, op, values)
        if value is not None:
            values[op.outputs[0]] = value
            folded.add(op.index)
    if not folded:
        return graph
    # Keep a folded op only if what it computes is read by something other than another
    # folded op or a RESHAPE's shape input (its value would then be needed at run time).
    by_output = {op.outputs[0]: op for op in graph.ops if op.index in folded}
    needed = set()
    for t, op in by_output.items():
        for reader in readers.get(t, []):
            shape_input = reader.kind == "RESHAPE" and len(reader.inputs) > 1 \
                and reader.inputs[1] == t
            if reader.index not in folded and not shape_input:
                needed.add(op.index)
        if t in graph.outputs:
            needed.add(op.index)
    if needed:
        return graph  # leave everything for validation to refuse, named
    ops = []
    for op in graph.ops:
        if op.index in folded:
            continue
        if op.kind == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] in by_output:
            _check_reshape(graph, op, values[op.inputs[1]])
            op = Op(index=op.index, kind=op.kind, inputs=op.inputs[:1], outputs=op.outputs,
                    options=op.options)
        ops.append(op)
    graph.ops = ops
    return graph


def _evaluate(graph: Graph, op: Op, values: dict[int, np.ndarray]) -> np.ndarray | None:
    """The op's int32 output at batch 1, or None when it is not plain shape arithmetic."""
    out = graph.tensor(op.outputs[0])
    if out.dtype not in ("int32", "int64"):
        return None
    if op.kind == "SHAPE":
        x = graph.tensor(op.inputs[0])
        return np.array(x.shape, dtype=np.int64)
    if any(t < 0 or t not in values for t in op.inputs):
        return None
    args = [values[t] for t in op.inputs]
    o = op.options
    if op.kind == "STRIDED_SLICE":
        if len(args) != 4 or args[0].ndim != 1 or o.get("ellipsis_mask") or \
                o.get("new_axis_mask") or o.get("offset") or any(a.shape != (1,) for a in args[1:]):
            return None
        begin, end, stride = (int(a[0]) for a in args[1:])
        if stride == 0:
            return None
        n = len(args[0])
        if o.get("shrink_axis_mask", 0) & 1:
            index = begin + n if begin < 0 else begin
            return args[0][index] if 0 <= index < n else None
        start = None if o.get("begin_mask", 0) & 1 else begin
        stop = None if o.get("end_mask", 0) & 1 else end
        return args[0][slice(start, stop, stride)]
    if op.kind == "PACK":
        if o.get("axis", 0) != 0 or any(a.ndim != 0 for a in args):
            return None
        return np.array([int(a) for a in args], dtype=np.int64)
    return None


def _check_reshape(graph: Graph, op: Op, shape: np.ndarray) -> None:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    want = [int(d) for d in shape]
    if want.count(-1) == 1:
        known = int(np.prod([d for d in want if d != -1]))
        want[want.index(-1)] = x.size // known if known else 0
    if tuple(want) != tuple(y.shape):
        raise LenetEdgeError(
            f"{graph.name}: op {op.index} RESHAPE computes shape {tuple(want)} at batch 1, "
            f"but its output is recorded as {tuple(y.shape)}")
