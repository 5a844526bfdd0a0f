"""Read a .tflite flatbuffer (with the maintained `tflite` parser) into the IR, as TFLM reads it.

A model file is untrusted input. Every field the generator relies on is read the way
tflite-micro reads it (raw flatbuffer fields, not the parser's conveniences) and checked
where TFLM would read out of range or differently from what the IR says: opcodes, tensor
types, shapes against buffer sizes, buffer and tensor indices, quantization, option tables
(here), and the graph's tensor references and inputs/outputs (`wellformed`). Deciding what
is supported is `validate`'s job. Any damage becomes one LenetEdgeError naming the field.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from lenet_edge.codegen.ir import Graph, Op, Quant, Tensor
from lenet_edge.codegen import ops
from lenet_edge.codegen.wellformed import check_structure
from lenet_edge.errors import LenetEdgeError
from lenet_edge.quantize.tflm import builtin_code

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(TensorType).items() if not k.startswith("_")}
_OPTIONS_NAMES = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
_NUMPY = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
          "uint8": np.uint8, "float32": np.float32}
# Zero points a tensor of this type can hold (TFLM casts the stored int64 to int32).
_ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
                     "int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 31), (1 << 31) - 1)}
# The option table each op the reader decodes must carry (TFLM's parser reads exactly
# this table; another table type, or none, would make its parameters differ from ours).
# An op of codegen/ops/ names its own (OPTIONS); these are the ops only fold.py reads.
OPTIONS_OF = {"STRIDED_SLICE": "StridedSliceOptions",
              "PACK": "PackOptions",
              **{kind: table for module in ops.MODULES for kind, table in module.OPTIONS.items()}}
# Below this a float32 scale is subnormal: TFLM's real/scale limits overflow to inf.
MIN_SCALE = float(np.finfo(np.float32).tiny)
SCHEMA_VERSION = 3  # the TFLite schema TFLM reads
MAX_RANK = 6
MAX_ELEMENTS = 1 << 26  # far beyond any microcontroller; keeps size arithmetic sane


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
    if model.Version() != SCHEMA_VERSION:
        raise LenetEdgeError(f"{name}: schema version field is {model.Version()}, TFLM reads "
                             f"version {SCHEMA_VERSION} only (damaged or foreign file)")
    if model.SubgraphsLength() != 1:
        raise LenetEdgeError(f"{name}: expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    tensors = [_read_tensor(model, graph.Tensors(i), i, data, name)
               for i in range(graph.TensorsLength())]
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        n_codes = model.OperatorCodesLength()
        if not 0 <= op.OpcodeIndex() < n_codes:
            raise LenetEdgeError(f"{name}: op {i} has opcode_index {op.OpcodeIndex()}, but the "
                                 f"model has {n_codes} operator codes")
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = builtin_code(code)
        kind = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        if kind == "CUSTOM":
            kind = f"CUSTOM({_printable(code.CustomCode() or b'', 40)})"
        ops.append(Op(
            index=i, kind=kind,
            inputs=tuple(int(t) for t in op.InputsAsNumpy()) if op.InputsLength() else (),
            outputs=tuple(int(t) for t in op.OutputsAsNumpy()) if op.OutputsLength() else (),
            options=_read_options(kind, op, f"{name}: op {i} ({kind})"),
        ))
    result = Graph(
        name=name, tensors=tensors, ops=ops,
        inputs=tuple(int(t) for t in graph.InputsAsNumpy()) if graph.InputsLength() else (),
        outputs=tuple(int(t) for t in graph.OutputsAsNumpy()) if graph.OutputsLength() else (),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    check_structure(result)
    return result


def _read_tensor(model, t, index: int, data: bytes, name: str) -> Tensor:
    tname = _printable(t.Name()) if t.Name() else f"tensor{index}"
    where = f"{name}: tensor {index} ({tname})"
    if t.Type() not in _TYPE_NAMES:
        raise LenetEdgeError(f"{where}: type field is {t.Type()}, not a TFLite tensor type")
    dtype = _TYPE_NAMES[t.Type()]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    _check_shape(shape, where)
    if t.IsVariable():
        raise LenetEdgeError(f"{where}: is_variable is set (TFLM keeps such tensors as state "
                             "between invocations); lenet-edge supports stateless models only")
    if t.Sparsity() is not None:
        raise LenetEdgeError(f"{where}: has sparsity parameters (TFLM does not read them)")
    quant = _read_quant(t.Quantization(), dtype, shape, where)
    raw = _buffer_bytes(model, t.Buffer(), data, where)
    value = None
    if raw:  # an empty buffer is how a flatbuffer marks a tensor without constant data
        if dtype not in _NUMPY:
            raise LenetEdgeError(f"{where}: a constant of type {dtype}, which lenet-edge "
                                 "cannot read")
        itemsize = np.dtype(_NUMPY[dtype]).itemsize
        size = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if len(raw) != size * itemsize:
            raise LenetEdgeError(f"{where}: buffer {t.Buffer()} holds {len(raw)} bytes, but "
                                 f"shape {list(shape)} of {dtype} needs {size * itemsize}")
        value = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(shape).copy()
    return Tensor(index=index, name=tname, shape=shape, dtype=dtype, quant=quant, data=value)


def _printable(raw: bytes, limit: int = 80) -> str:
    """A name from the file, safe for a one-line message (a damaged string can hold
    anything, newlines included)."""
    text = "".join(c if c.isprintable() else "?" for c in raw.decode(errors="replace"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_shape(shape: tuple[int, ...], where: str) -> None:
    if len(shape) > MAX_RANK:
        raise LenetEdgeError(f"{where}: shape {list(shape)} has rank {len(shape)} "
                             f"(at most {MAX_RANK})")
    for k, d in enumerate(shape):
        if d < 1:
            raise LenetEdgeError(f"{where}: shape[{k}] is {d} in {list(shape)}; every "
                                 "dimension must be at least 1")
    if math.prod(shape) > MAX_ELEMENTS:
        raise LenetEdgeError(f"{where}: shape {list(shape)} has {math.prod(shape)} elements "
                             f"(at most {MAX_ELEMENTS})")


def _buffer_bytes(model, b: int, data: bytes, where: str) -> bytes:
    n = model.BuffersLength()
    if not 0 <= b < n:
        raise LenetEdgeError(f"{where}: buffer index {b} is out of range (the model has "
                             f"{n} buffers)")
    buf = model.Buffers(b)
    if buf.DataLength() > 0:
        return buf.DataAsNumpy().tobytes()
    if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        if buf.Offset() + buf.Size() > len(data):
            raise LenetEdgeError(f"{where}: buffer {b} lies outside the file (truncated model)")
        return data[buf.Offset(): buf.Offset() + buf.Size()]
    return b""


def _read_quant(q, dtype: str, shape: tuple[int, ...], where: str) -> Quant | None:
    """Scales and zero points, checked as TFLM would need them (it copies both arrays for
    as many channels as there are scales)."""
    if q is None or q.ScaleLength() == 0:
        if q is not None and q.ZeroPointLength() > 0:
            raise LenetEdgeError(f"{where}: quantization has zero points but no scales")
        return None
    if q.DetailsType() != 0:
        raise LenetEdgeError(f"{where}: custom quantization details (not read by TFLM)")
    scales = tuple(float(s) for s in q.ScaleAsNumpy().astype(np.float32))
    n = len(scales)
    if q.ZeroPointLength() != n:
        raise LenetEdgeError(f"{where}: quantization has {n} scales but "
                             f"{q.ZeroPointLength()} zero points (they must match)")
    zps = tuple(int(z) for z in q.ZeroPointAsNumpy())
    for k, s in enumerate(scales):
        if not (math.isfinite(s) and s >= MIN_SCALE):
            raise LenetEdgeError(f"{where}: quantization scale[{k}] is {s}; scales must be "
                                 "finite, positive and normal float32 values")
    lo, hi = _ZERO_POINT_RANGE.get(dtype, (-(1 << 31), (1 << 31) - 1))
    for k, z in enumerate(zps):
        if not lo <= z <= hi:
            raise LenetEdgeError(f"{where}: quantization zero_point[{k}] is {z}, outside "
                                 f"{dtype}'s range [{lo}, {hi}]")
    axis = int(q.QuantizedDimension())
    if n > 1:
        if not 0 <= axis < len(shape):
            raise LenetEdgeError(f"{where}: quantized_dimension is {axis} for a tensor of "
                                 f"rank {len(shape)}")
        if shape[axis] != n:
            raise LenetEdgeError(f"{where}: {n} per-channel scales, but dimension {axis} of "
                                 f"shape {list(shape)} has {shape[axis]} channels")
    return Quant(scales=scales, zero_points=zps, axis=axis)


def _read_options(kind: str, op, where: str) -> dict:
    want = OPTIONS_OF.get(kind)
    if want is None:
        return {}
    have = _OPTIONS_NAMES.get(op.BuiltinOptionsType(), f"type {op.BuiltinOptionsType()}")
    table = op.BuiltinOptions()
    if have != want or table is None:
        raise LenetEdgeError(f"{where}: builtin_options is {have}, expected {want}")
    if kind in ops.BY_KIND:
        return ops.BY_KIND[kind].read_options(kind, table)
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
    return {}
