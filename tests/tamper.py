"""Seeded mutations of a .tflite: what an attacker or a bad disk does to a model file.

`mutations(data, seed)` yields `Mutation(name, data)`: targeted in-place edits of the
fields the generator and TFLM read (opcodes, operator tensor lists, tensor shapes, types,
buffers, quantization, options, subgraph inputs/outputs, model version), then seeded byte
flips and truncations. Edits are made in place (the flatbuffer keeps its layout), so every
other field stays what the clean model has and each mutant differs in exactly one thing.
Fields a flatbuffer omits because they hold their default value cannot be edited in place
and are skipped.

Used by tests/test_tampered_models.py (a fixed subset) and
benchmarks/tampered_models.py (all of them).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import tflite

# flatbuffers vtable slots (see the tflite package's generated accessors)
OPCODE_DEPRECATED, OPCODE_BUILTIN = 4, 10
OP_OPCODE_INDEX, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS_TYPE, OP_OPTIONS = 4, 6, 8, 10, 12
T_SHAPE, T_TYPE, T_BUFFER, T_QUANT, T_IS_VARIABLE = 4, 6, 8, 12, 14
Q_SCALE, Q_ZERO_POINT, Q_AXIS = 8, 10, 16
SG_INPUTS, SG_OUTPUTS = 6, 8
MODEL_VERSION = 4
CONV_FIELDS = {"padding": (4, "b"), "stride_w": (6, "i"), "stride_h": (8, "i"),
               "activation": (10, "b"), "dilation_w": (12, "i"), "dilation_h": (14, "i")}
POOL_FIELDS = {"padding": (4, "b"), "stride_w": (6, "i"), "stride_h": (8, "i"),
               "filter_w": (10, "i"), "filter_h": (12, "i"), "activation": (14, "b")}
FC_FIELDS = {"activation": (4, "b"), "weights_format": (6, "b"), "keep_num_dims": (8, "b"),
             "asymmetric": (10, "b")}

NAN = float("nan")


@dataclass(frozen=True)
class Mutation:
    name: str
    data: bytes


def _field(table, slot: int) -> int | None:
    """Absolute position of a scalar field, None when the flatbuffer omits it."""
    o = table._tab.Offset(slot)
    return table._tab.Pos + o if o else None


def _vector(table, slot: int) -> tuple[int, int] | None:
    """(absolute position of element 0, length) of a vector field."""
    o = table._tab.Offset(slot)
    if not o:
        return None
    return table._tab.Vector(o), table._tab.VectorLen(o)


def _put(data: bytes, pos: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into("<" + fmt, out, pos, value)
    return bytes(out)


class _Editor:
    """Names and positions of the editable fields of one clean model."""

    def __init__(self, data: bytes):
        self.data = data
        self.model = tflite.Model.GetRootAsModel(data, 0)
        self.graph = self.model.Subgraphs(0)
        self.n_tensors = self.graph.TensorsLength()
        self.n_buffers = self.model.BuffersLength()

    def edits(self) -> Iterator[tuple[str, int, str, object]]:
        """(name, position, struct format, new value) for every targeted edit."""
        m, g, nt = self.model, self.graph, self.n_tensors
        pos = _field(m, MODEL_VERSION)
        if pos is not None:
            for v in (0, 2, 4, 0xFFFFFFFF):
                yield f"model.version={v}", pos, "I", v
        for i in range(m.OperatorCodesLength()):
            code = m.OperatorCodes(i)
            pos = _field(code, OPCODE_BUILTIN)
            if pos is not None:
                for v in (28, 3, 9, 0, 17, 22, 25, 32, 127, 150, 1000, -1):
                    yield f"opcode[{i}].builtin_code={v}", pos, "i", v
            pos = _field(code, OPCODE_DEPRECATED)
            if pos is not None:
                for v in (28, 0, 127, -1):
                    yield f"opcode[{i}].deprecated_builtin_code={v}", pos, "b", v
        opcodes = m.OperatorCodesLength()
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            pos = _field(op, OP_OPCODE_INDEX)
            if pos is not None:
                for v in sorted({(op.OpcodeIndex() + 1) % opcodes, opcodes, 0xFFFFFFFF}):
                    yield f"op[{i}].opcode_index={v}", pos, "I", v
            for slot, what in ((OP_INPUTS, "inputs"), (OP_OUTPUTS, "outputs")):
                vec = _vector(op, slot)
                if vec is None:
                    continue
                start, n = vec
                for k in range(n):
                    for v in (nt, -1, -2, 0, 17 if nt > 17 else nt - 1, 2):
                        yield f"op[{i}].{what}[{k}]={v}", start + 4 * k, "i", v
            pos = _field(op, OP_OPTIONS_TYPE)
            if pos is not None:
                for v in (0, 1, 5, 8, 255):
                    yield f"op[{i}].builtin_options_type={v}", pos, "B", v
            yield from self._option_edits(i, op)
        for slot, what in ((SG_INPUTS, "inputs"), (SG_OUTPUTS, "outputs")):
            start, n = _vector(g, slot)
            first_input = int(g.InputsAsNumpy()[0])
            weight = next(t for t in range(nt)  # a weight matrix (constant, rank >= 2)
                          if self._buffer_len(g.Tensors(t).Buffer())
                          and g.Tensors(t).ShapeLength() >= 2)
            for k in range(n):
                for v in sorted({nt, -1, 0x7FFFFFFF, first_input, weight, nt - 2, 11}):
                    yield f"subgraph.{what}[{k}]={v}", start + 4 * k, "i", v
        for t in range(nt):
            yield from self._tensor_edits(t, g.Tensors(t))

    def _buffer_len(self, b: int) -> int:
        return self.model.Buffers(b).DataLength() if b < self.n_buffers else 0

    def _option_edits(self, i: int, op):
        kind = op.BuiltinOptionsType()
        table = op.BuiltinOptions()
        if table is None:
            return
        known = {tflite.BuiltinOptions.Conv2DOptions: (tflite.Conv2DOptions, CONV_FIELDS),
                 tflite.BuiltinOptions.Pool2DOptions: (tflite.Pool2DOptions, POOL_FIELDS),
                 tflite.BuiltinOptions.FullyConnectedOptions:
                     (tflite.FullyConnectedOptions, FC_FIELDS)}
        if kind not in known:
            return
        cls, fields = known[kind]
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        for name, (slot, fmt) in fields.items():
            pos = _field(opts, slot)
            if pos is None:
                continue
            values = (0, 2, 3, 5, 7, -1) if fmt == "b" else (0, 1, 2, 3, -1, 1 << 20)
            for v in values:
                yield f"op[{i}].options.{name}={v}", pos, fmt, v

    def _tensor_edits(self, t: int, tensor):
        vec = _vector(tensor, T_SHAPE)
        if vec is not None:
            start, n = vec
            shape = [int(d) for d in tensor.ShapeAsNumpy()]
            for k in range(n):
                for v in sorted({0, -1, 1, 2 * shape[k], shape[k] + 1, 1 << 30}):
                    yield f"tensor[{t}].shape[{k}]={v}", start + 4 * k, "i", v
        pos = _field(tensor, T_TYPE)
        if pos is not None:
            for v in (0, 1, 2, 3, 7, 9, 10, 17, 99, -1):
                yield f"tensor[{t}].type={v}", pos, "b", v
        pos = _field(tensor, T_BUFFER)
        if pos is not None:
            b = tensor.Buffer()
            for v in sorted({0, 1, self.n_buffers - 1, self.n_buffers, 0xFFFFFFFF,
                             (b % (self.n_buffers - 1)) + 1}):
                yield f"tensor[{t}].buffer={v}", pos, "I", v
        pos = _field(tensor, T_IS_VARIABLE)
        if pos is not None:
            yield f"tensor[{t}].is_variable=1", pos, "B", 1
        q = tensor.Quantization()
        if q is None:
            return
        vec = _vector(q, Q_SCALE)
        if vec is not None:
            start, n = vec
            for k in sorted({0, n - 1}):
                for v in (-1.0, 0.0, NAN, math.inf, -math.inf, 1e-30, 1e30, 1e-45, 1.5e-38, 3.0):
                    yield f"tensor[{t}].scale[{k}]={v}", start + 4 * k, "f", v
        vec = _vector(q, Q_ZERO_POINT)
        if vec is not None:
            start, n = vec
            for k in sorted({0, n - 1}):
                for v in (1000, 128, -129, 127, -128, 1 << 40, 5):
                    yield f"tensor[{t}].zero_point[{k}]={v}", start + 8 * k, "q", v
        pos = _field(q, Q_AXIS)
        if pos is not None:
            for v in (1, 3, 4, -1):
                yield f"tensor[{t}].quantized_dimension={v}", pos, "i", v


def targeted(data: bytes) -> list[Mutation]:
    """Every targeted edit of ``data`` (deterministic order, no duplicates)."""
    out, seen = [], set()
    for name, pos, fmt, value in _Editor(data).edits():
        mutated = _put(data, pos, fmt, value)
        if mutated != data and mutated not in seen:
            seen.add(mutated)
            out.append(Mutation(name, mutated))
    return out


def _structure_positions(data: bytes) -> list[int]:
    """Byte positions outside the constant buffers' data: the flatbuffer's tables,
    vectors and offsets (most of the file is weights, where a flip only changes values)."""
    model = tflite.Model.GetRootAsModel(data, 0)
    inside = bytearray(len(data))
    for b in range(model.BuffersLength()):
        vec = _vector(model.Buffers(b), 4)
        if vec is not None and vec[1] > 64:
            inside[vec[0]: vec[0] + vec[1]] = b"\x01" * vec[1]
    return [p for p in range(8, len(data)) if not inside[p]]


def byte_flips(data: bytes, n: int, seed: int, positions: list[int] | None = None,
               label: str = "flip") -> list[Mutation]:
    """``n`` mutants with 1-4 bytes (anywhere past the 'TFL3' identifier, or among
    ``positions``) XORed with a random non-zero value."""
    rng = random.Random(seed)
    positions = positions or range(8, len(data))
    out = []
    for _ in range(n):
        mutated = bytearray(data)
        where = []
        for _ in range(rng.randint(1, 4)):
            p = rng.choice(positions)
            mutated[p] ^= rng.randint(1, 255)
            where.append(p)
        out.append(Mutation(f"{label}@{','.join(map(str, where))}", bytes(mutated)))
    return out


def truncations(data: bytes, n: int, seed: int) -> list[Mutation]:
    rng = random.Random(seed)
    lengths = sorted({rng.randrange(8, len(data)) for _ in range(n)} | {len(data) - 1, 16})
    return [Mutation(f"truncate@{k}", data[:k]) for k in lengths]


def mutations(data: bytes, seed: int = 13, flips: int = 120, structure_flips: int = 240,
              cuts: int = 20) -> list[Mutation]:
    """All mutants: targeted edits, byte flips anywhere, byte flips in the flatbuffer's
    structure (not in weight data), and truncations (seeded)."""
    return (targeted(data) + byte_flips(data, flips, seed)
            + byte_flips(data, structure_flips, seed + 1, _structure_positions(data),
                         "structure-flip")
            + truncations(data, cuts, seed))
