"""Exact 256-entry tables for elementwise int8 ops (TANH, LOGISTIC), asked of TFLM itself.

An int8 elementwise op has only 256 possible inputs, so instead of re-deriving TFLM's
fixed-point tanh we build a one-op model with the same quantization, run all 256 inputs
through the `tflite-micro` runtime once, and keep its answers. Exact by construction.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from lenet_edge.codegen.ir import Quant
from lenet_edge.errors import LenetEdgeError


def elementwise_table(kind: str, in_quant: Quant, out_quant: Quant) -> np.ndarray:
    """TFLM's int8 output for each int8 input -128..127 (index = input + 128)."""
    from tflite_micro import runtime

    model = _one_op_model(kind, in_quant, out_quant)
    inputs = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    try:
        interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 16)
        interp.set_input(inputs, 0)
        interp.invoke()
    except RuntimeError as exc:
        raise LenetEdgeError(f"TFLM refused a {kind} with this quantization: {exc}") from exc
    return np.array(interp.get_output(0), dtype=np.int8).reshape(256)


def _one_op_model(kind: str, in_quant: Quant, out_quant: Quant) -> bytes:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    def tensor(name: str, quant: Quant, buffer: int):
        t = s.TensorT()
        t.shape = [1, 256]
        t.type = s.TensorType.INT8
        t.buffer = buffer
        t.name = name
        q = s.QuantizationParametersT()
        q.scale = [quant.scale]
        q.zeroPoint = [quant.zero_point]
        t.quantization = q
        return t

    code = s.OperatorCodeT()
    builtin = getattr(s.BuiltinOperator, kind)
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]
    graph = s.SubGraphT()
    graph.tensors = [tensor("in", in_quant, 1), tensor("out", out_quant, 2)]
    graph.inputs = [0]
    graph.outputs = [1]
    graph.operators = [op]
    model = s.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [graph]
    model.buffers = [s.BufferT(), s.BufferT(), s.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
