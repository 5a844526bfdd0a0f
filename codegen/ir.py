"""The small typed IR the generator works on: tensors, ops, one graph.

Scales are kept exactly as the float32 values stored in the flatbuffer (as Python floats,
which represent every float32 exactly), because TFLM computes its multipliers from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lenet_edge.errors import LenetEdgeError


@dataclass(frozen=True)
class Quant:
    scales: tuple[float, ...]  # float32 values, exact
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8", "int32", "float32", ...
    quant: Quant | None
    data: np.ndarray | None = None  # constant value (shaped), None for activations

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class Op:
    index: int
    kind: str  # builtin operator name, e.g. "CONV_2D"
    inputs: tuple[int, ...]  # -1 = optional input absent
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    name: str  # for messages: the model file name
    tensors: list[Tensor]
    ops: list[Op]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    sha256: str

    def tensor(self, index: int) -> Tensor:
        if not 0 <= index < len(self.tensors):  # never Python's wrap-around for -1
            raise LenetEdgeError(f"{self.name}: no tensor {index} (the model has "
                                 f"{len(self.tensors)})")
        return self.tensors[index]

    def op(self, index: int) -> Op:
        """The op with this .tflite index (ops folded away at export leave gaps)."""
        for op in self.ops:
            if op.index == index:
                return op
        raise KeyError(index)
