"""Read a .tflite flatbuffer (with the maintained `tflite` parser) into the IR.

Only reads and decodes; deciding what is supported is `validate`'s job. Any damage to the
file (wrong identifier, truncation, offsets out of range) becomes one LenetEdgeError.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from lenet_edge.codegen.ir import Graph, Op, Quant, Tensor
from lenet_edge.errors import LenetEdgeError

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(TensorType).items() if not k.startswith("_")}
_ACT_NAMES = {v: k for k, v in vars(ActivationFunctionType).items() if not k.startswith("_")}
_PADDING_NAMES = {v: k for k, v in vars(Padding).items() if not k.startswith("_")}
_NUMPY = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
          "uint8": np.uint8, "float32": np.float32}


def read_model(path: str | Path) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise LenetEdgeError(f"model file not found: {path}")
    return parse_model(path.read_bytes(), path.name)


def parse_model(data: bytes, name: str = "model") -> Graph:
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise LenetEdgeError(
            f"{name} is not a TFLite flatbuffer (missing the 'TFL3' identifier); "
            "give the .tflite written by `lenet-edge quantize`"
        )
    try:
        return _parse(data, name)
    except LenetEdgeError:
        raise
    except Exception as exc:  # the flatbuffer accessors raise anything on damaged input
        raise LenetEdgeError(
            f"{name} is damaged or truncated ({type(exc).__name__} while reading it); "
            "re-export it with `lenet-edge quantize`"
        ) from exc


def _parse(data: bytes, name: str) -> Graph:
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise LenetEdgeError(f"{name}: expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    tensors = [_read_tensor(model, graph.Tensors(i), i, data) for i in range(graph.TensorsLength())]
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        if kind == "CUSTOM":
            kind = f"CUSTOM({code.CustomCode().decode(errors='replace')})"
        ops.append(Op(
            index=i, kind=kind,
            inputs=tuple(int(t) for t in op.InputsAsNumpy()) if op.InputsLength() else (),
            outputs=tuple(int(t) for t in op.OutputsAsNumpy()) if op.OutputsLength() else (),
            options=_read_options(kind, op),
        ))
    for op in ops:
        for t in op.inputs + op.outputs:
            if t >= len(tensors) or t < -1:
                raise LenetEdgeError(f"{name}: op {op.index} ({op.kind}) names tensor {t}, "
                                     f"but the model has {len(tensors)} tensors")
    return Graph(
        name=name, tensors=tensors, ops=ops,
        inputs=tuple(int(t) for t in graph.InputsAsNumpy()),
        outputs=tuple(int(t) for t in graph.OutputsAsNumpy()),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _read_tensor(model, t, index: int, data: bytes) -> Tensor:
    dtype = _TYPE_NAMES.get(t.Type(), f"type{t.Type()}")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    q = t.Quantization()
    quant = None
    if q is not None and q.ScaleLength() > 0:
        scales = tuple(float(s) for s in q.ScaleAsNumpy().astype(np.float32))
        zps = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * len(scales)
        quant = Quant(scales=scales, zero_points=zps, axis=int(q.QuantizedDimension()))
    value = None
    buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    raw = None
    if buf is not None:
        if buf.DataLength() > 0:
            raw = buf.DataAsNumpy().tobytes()
        elif buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = data[buf.Offset(): buf.Offset() + buf.Size()]
            if len(raw) != buf.Size():
                raise LenetEdgeError("buffer outside the file (truncated model)")
    if raw is not None and dtype in _NUMPY:
        arr = np.frombuffer(raw, dtype=_NUMPY[dtype])
        size = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if arr.size != size:
            raise LenetEdgeError(f"tensor {index} holds {arr.size} values for shape {shape}")
        value = arr.reshape(shape).copy()
    name = t.Name().decode(errors="replace") if t.Name() else f"tensor{index}"
    return Tensor(index=index, name=name, shape=shape, dtype=dtype, quant=quant, data=value)


def _read_options(kind: str, op) -> dict:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        o.Init(table.Bytes, table.Pos)
        opts = {
            "padding": _PADDING_NAMES.get(o.Padding(), str(o.Padding())),
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": _ACT_NAMES.get(o.FusedActivationFunction(), "?"),
        }
        if kind == "DEPTHWISE_CONV_2D":
            opts["depth_multiplier"] = o.DepthMultiplier()
        return opts
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": _PADDING_NAMES.get(o.Padding(), str(o.Padding())),
            "stride": (o.StrideH(), o.StrideW()),
            "filter": (o.FilterHeight(), o.FilterWidth()),
            "activation": _ACT_NAMES.get(o.FusedActivationFunction(), "?"),
        }
    if kind == "FULLY_CONNECTED":
        o = tflite.FullyConnectedOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "activation": _ACT_NAMES.get(o.FusedActivationFunction(), "?"),
            "weights_format": o.WeightsFormat(),
            "keep_num_dims": bool(o.KeepNumDims()),
            "asymmetric_quantize_inputs": bool(o.AsymmetricQuantizeInputs()),
        }
    if kind in ("ADD", "MUL"):
        o = tflite.AddOptions() if kind == "ADD" else tflite.MulOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _ACT_NAMES.get(o.FusedActivationFunction(), "?")}
    if kind == "CONCATENATION":
        o = tflite.ConcatenationOptions()
        o.Init(table.Bytes, table.Pos)
        return {"axis": o.Axis(), "activation": _ACT_NAMES.get(o.FusedActivationFunction(), "?")}
    if kind == "MEAN":
        o = tflite.ReducerOptions()
        o.Init(table.Bytes, table.Pos)
        return {"keep_dims": bool(o.KeepDims())}
    if kind == "STRIDED_SLICE":  # only folded (shape arithmetic), see fold.py
        o = tflite.StridedSliceOptions()
        o.Init(table.Bytes, table.Pos)
        return {"begin_mask": o.BeginMask(), "end_mask": o.EndMask(),
                "ellipsis_mask": o.EllipsisMask(), "new_axis_mask": o.NewAxisMask(),
                "shrink_axis_mask": o.ShrinkAxisMask(), "offset": bool(o.Offset())}
    if kind == "PACK":
        o = tflite.PackOptions()
        o.Init(table.Bytes, table.Pos)
        return {"values_count": o.ValuesCount(), "axis": o.Axis()}
    if kind == "SOFTMAX":
        o = tflite.SoftmaxOptions()
        o.Init(table.Bytes, table.Pos)
        return {"beta": float(np.float32(o.Beta()))}
    return {}
