"""The TFLite interpreter (ai-edge-litert, or tflite_runtime where that is what is installed).

It rounds FULLY_CONNECTED once where TFLM rounds twice, so it may differ from TFLM by ±1
on a few int8 outputs: lenet-edge reports agreement with it, never uses it as the oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lenet_edge.quantize.tflm import BatchRunner, model_bytes_of
from lenet_edge.quiet import silenced_native_output


def litert_interpreter(model: bytes | str | Path):
    """A TFLite interpreter with its tensors allocated, created without native chatter."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the older name of the same interpreter
        from tflite_runtime.interpreter import Interpreter
    with silenced_native_output(1, 2):  # "INFO: Created TensorFlow Lite XNNPACK delegate"
        interp = Interpreter(model_content=model_bytes_of(model))
        interp.allocate_tensors()
    return interp


class LiteRTModel(BatchRunner):
    """A .tflite loaded into the TFLite interpreter, with TflmModel's invoke/run_batch."""

    def __init__(self, model: bytes | str | Path):
        self.model_bytes = model_bytes_of(model)
        self._interp = litert_interpreter(self.model_bytes)
        self.input_details = self._interp.get_input_details()[0]
        self.output_details = self._interp.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self.input_details["shape"])
        self.output_shape = tuple(int(d) for d in self.output_details["shape"])

    @property
    def output_quantization(self) -> tuple[float, int]:
        scale, zero_point = self.output_details["quantization"]
        return float(scale), int(zero_point)

    def invoke(self, input_int8: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(input_int8, dtype=self.input_details["dtype"])
        self._interp.set_tensor(self.input_details["index"], x.reshape(self.input_shape))
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self.output_details["index"]), copy=True)
