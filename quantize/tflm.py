"""The TFLM reference: the `tflite-micro` runtime, the bit-exact oracle for generated C.

Wraps `tflite_micro.runtime.Interpreter` so the rest of lenet-edge can run int8 inputs
through TFLM's reference kernels, read every intermediate tensor, and measure the arena
TFLM needs for a model.

TFLM does not verify the flatbuffer it runs, so a damaged model can crash it. A model that
is not one of the bundled ones is therefore first loaded and run once in a child process
(`tflm_child`); only a model that survives that is run in this process (our ops' memory
accesses depend on the model, not on the input values). The arena is always measured in
a child.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError
from lenet_edge.quiet import silenced_native_output


def model_bytes_of(model: bytes | bytearray | str | Path) -> bytes:
    """The .tflite bytes of ``model``: bytes as they are, or a path's contents."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    path = Path(model)
    if not path.is_file():
        raise LenetEdgeError(f"model file not found: {path}")
    return path.read_bytes()


def _raw_scalar(table, slot: int, flags, default: int) -> int:
    """A flatbuffer scalar field exactly as stored (generated accessors may rewrite it)."""
    o = table._tab.Offset(slot)
    return table._tab.Get(flags, table._tab.Pos + o) if o else default


def builtin_code(code) -> int:
    """TFLM's GetBuiltinCode: max(builtin_code, deprecated_builtin_code) of the RAW fields.

    ``code``: an OperatorCode table (of the `tflite` package or tflite-micro's schema).
    The generated BuiltinCode() returns the deprecated field whenever the real one is
    below 127, which hides a real field that differs from it."""
    from flatbuffers.number_types import Int8Flags, Int32Flags

    return max(_raw_scalar(code, 10, Int32Flags, 0), _raw_scalar(code, 4, Int8Flags, 0))


@dataclass(frozen=True)
class OpRecord:
    """One operator of the model's main subgraph, in execution order."""

    index: int
    opcode: int  # BuiltinOperator value
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def model_ops(model: bytes | str | Path) -> list[OpRecord]:
    """The operators of subgraph 0 with their tensor indices, in execution order."""
    from tflite_micro import runtime

    data = model_bytes_of(model)
    root = runtime.schema_fb.Model.GetRootAsModel(data, 0)
    graph = root.Subgraphs(0)
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = root.OperatorCodes(op.OpcodeIndex())
        opcode = builtin_code(code)
        ops.append(
            OpRecord(
                index=i,
                opcode=opcode,
                inputs=tuple(int(t) for t in op.InputsAsNumpy()),
                outputs=tuple(int(t) for t in op.OutputsAsNumpy()),
            )
        )
    return ops


class BatchRunner:
    """Batch evaluation over a subclass's `invoke(input) -> output` and `output_shape`."""

    output_shape: tuple[int, ...]
    output_details: dict

    def invoke(self, input_int8: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_batch(self, inputs_int8: np.ndarray,
                  progress: str | Callable[[int, int], None] | None = None) -> np.ndarray:
        """Outputs for a batch of inputs (first axis is the batch), flattened per input.

        ``progress``: a description for a transient progress bar, or a callable
        ``(done, total)`` called after each input.
        """
        n = len(inputs_int8)
        out = np.empty((n, int(np.prod(self.output_shape))), dtype=self.output_details["dtype"])
        indices = range(n)
        if isinstance(progress, str):
            from rich.progress import track

            indices = track(indices, description=progress, transient=True)
        for i in indices:
            out[i] = self.invoke(inputs_int8[i]).reshape(-1)
            if callable(progress):
                progress(i + 1, n)
        return out


class TflmModel(BatchRunner):
    """A model loaded into the TFLM reference interpreter.

    With ``preserve_all_tensors`` every intermediate tensor keeps its value after
    `invoke`, so `tensor(i)` returns what TFLM computed for tensor index ``i``.
    """

    def __init__(
        self,
        model: bytes | str | Path,
        *,
        preserve_all_tensors: bool = False,
        arena_size: int | None = None,
        isolate: bool = True,
    ):
        """``isolate``: load an untrusted model in a child process first (see module doc)."""
        from tflite_micro import runtime

        self.model_bytes = model_bytes_of(model)
        config = (
            runtime.InterpreterConfig.kPreserveAllTensors
            if preserve_all_tensors
            else runtime.InterpreterConfig.kAllocationRecording
        )
        # TFLM's own default (10x model size) is too small for tiny models with large
        # activations; be generous, the host has memory.
        if arena_size is None:
            arena_size = max(len(self.model_bytes) * 10, 1 << 20)
        if isolate:
            _probe_in_child(self.model_bytes, preserve_all_tensors, arena_size)
        try:
            self._interp = runtime.Interpreter.from_bytes(
                self.model_bytes, arena_size=arena_size, intrepreter_config=config
            )
        except RuntimeError as exc:
            raise LenetEdgeError(f"TFLM cannot load this model: {exc}") from exc
        self.preserve_all_tensors = preserve_all_tensors
        self.input_details = self._interp.get_input_details(0)
        self.output_details = self._interp.get_output_details(0)
        self.input_shape = tuple(int(d) for d in self.input_details["shape"])
        self.output_shape = tuple(int(d) for d in self.output_details["shape"])
        self.ops = model_ops(self.model_bytes)

    def invoke(self, input_int8: np.ndarray) -> np.ndarray:
        """Run one input (any shape with the right element count); returns the output."""
        x = np.ascontiguousarray(input_int8, dtype=self.input_details["dtype"])
        self._interp.set_input(x.reshape(self.input_shape), 0)
        self._interp.invoke()
        return np.array(self._interp.get_output(0), copy=True)

    def tensor(self, index: int) -> np.ndarray:
        """Value of tensor ``index`` after the last invoke (needs preserve_all_tensors)."""
        if not self.preserve_all_tensors:
            raise ValueError("TflmModel(preserve_all_tensors=True) is needed to read tensors")
        return np.array(self._interp.GetTensor(index, 0)["tensor_data"], copy=True)

    def op_output_tensors(self) -> dict[int, np.ndarray]:
        """Every op's output tensor after the last invoke, by tensor index."""
        return {t: self.tensor(t) for op in self.ops for t in op.outputs}


_PROBED: set[tuple] = set()  # (sha256, preserve_all_tensors, arena_size) that passed


@lru_cache(maxsize=1)
def _bundled_hashes() -> frozenset[str]:
    from lenet_edge.bundled import VARIANTS, bundled_model

    hashes = set()
    for variant in VARIANTS:
        try:
            hashes.add(hashlib.sha256(bundled_model(variant).read_bytes()).hexdigest())
        except LenetEdgeError:
            pass
    return frozenset(hashes)


def _probe_in_child(model: bytes, preserve_all_tensors: bool, arena_size: int) -> None:
    digest = hashlib.sha256(model).hexdigest()
    key = (digest, preserve_all_tensors, arena_size)
    if digest in _bundled_hashes() or key in _PROBED:
        return
    from lenet_edge.quantize import tflm_child

    tflm_child.run("probe", model, "loading", preserve_all_tensors=preserve_all_tensors,
                   arena_size=arena_size)
    _PROBED.add(key)


ARENA_PROBE = "lenet-edge arena probe "
ARENA_CRASH_RETRIES = 8


def tflm_arena_bytes(model: bytes | str | Path, granularity: int = 16) -> int:
    """`measure_arena_bytes` in a child process (a TFLM crash becomes a LenetEdgeError).

    TFLM can also crash, instead of refusing, on an arena too small for a sound model
    (seen with zip1989-modern at about 2,600 bytes of the 4,320 it needs). The child names
    each size before it tries it: a crash at any size but the first (the generous one,
    whose crash is the model's own error) counts as "does not fit", and the search
    resumes above it in a new child."""
    from lenet_edge.quantize import tflm_child

    data, low = model_bytes_of(model), 0
    for _ in range(ARENA_CRASH_RETRIES):
        try:
            return tflm_child.run("arena", data, "measuring the arena of",
                                  granularity=granularity, low=low)
        except tflm_child.ChildCrashed as crash:
            tried = [int(line[len(ARENA_PROBE):]) for line in crash.stderr.splitlines()
                     if line.startswith(ARENA_PROBE)]
            if len(tried) < 2:  # the first probe is the large arena: the model itself
                raise
            low = max(low, tried[-1])
    raise LenetEdgeError(f"tflite-micro crashed {ARENA_CRASH_RETRIES} times measuring the "
                         "arena of this model")


def measure_arena_bytes(model: bytes | str | Path, granularity: int = 16, low: int = 0,
                        announce: bool = False) -> int:
    """The smallest tensor arena with which TFLM loads and runs ``model`` on this host.

    Found by bisection over `arena_size`. Measured with the x86-64 `tflite-micro`
    runtime: its 64-bit pointers make the bookkeeping part slightly larger than on a
    32-bit Cortex-M, so this is an upper estimate of TFLM's arena on the device.
    """
    from tflite_micro import runtime

    data = model_bytes_of(model)
    probe = None

    def fits(size: int) -> bool:
        nonlocal probe
        if announce:  # for tflm_arena_bytes: which size a crash happened at
            print(f"{ARENA_PROBE}{size}", file=sys.stderr, flush=True)
        try:
            with silenced_native_output(2):
                interp = runtime.Interpreter.from_bytes(data, arena_size=size)
                if probe is None:
                    details = interp.get_input_details(0)
                    probe = np.zeros(details["shape"], dtype=details["dtype"])
                interp.set_input(probe, 0)
                interp.invoke()
            return True
        except RuntimeError:
            return False

    high = max(len(data) * 10, 1 << 16)
    if not fits(high):
        high = 1 << 27
        try:  # TFLM's own reason, with an arena far larger than any model needs
            with silenced_native_output(2):
                interp = runtime.Interpreter.from_bytes(data, arena_size=high)
                details = interp.get_input_details(0)
                probe = np.zeros(details["shape"], dtype=details["dtype"])
                interp.set_input(probe, 0)
                interp.invoke()
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise LenetEdgeError(f"TFLM cannot run this model: {reason}") from None
    # `low` is known not to fit (0, or where TFLM crashed on an earlier search).
    while high - low > granularity:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid
    return high
