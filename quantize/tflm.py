"""The TFLM reference: the `tflite-micro` runtime, the bit-exact oracle for generated C.

Wraps `tflite_micro.runtime.Interpreter` so the rest of lenet-edge can run int8 inputs
through TFLM's reference kernels, read every intermediate tensor, and measure the arena
TFLM needs for a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
        opcode = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
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
    ):
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


def tflm_arena_bytes(model: bytes | str | Path, granularity: int = 16) -> int:
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
    while not fits(high):
        high *= 2
        if high > 1 << 28:
            raise LenetEdgeError("TFLM cannot run this model with any arena size")
    low = 0  # known not to fit
    while high - low > granularity:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid
    return high
