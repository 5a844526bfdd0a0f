"""int8 accuracy of a .tflite under TFLM (the reference) and under the TFLite interpreter.

The int8 input is ``pixel - 128`` (input scale 1/255, zero point -128), the same bytes
the device receives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pixels_to_int8(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> the model's int8 input: pixel - 128."""
    return (images.astype(np.int16) - 128).astype(np.int8)


def tflm_logits(model_bytes: bytes, images: np.ndarray, progress=None) -> np.ndarray:
    """int8 logits (N, 10) from the TFLM reference kernels, one image at a time."""
    from lenet_edge.quantize.tflm import TflmModel

    model = TflmModel(model_bytes)
    inputs = pixels_to_int8(images)
    out = np.empty((len(inputs), 10), dtype=np.int8)
    for i, x in enumerate(inputs):
        out[i] = model.invoke(x).reshape(-1)
        if progress:
            progress(i + 1, len(inputs))
    return out


def litert_logits(model_bytes: bytes, images: np.ndarray, progress=None) -> np.ndarray:
    """int8 logits (N, 10) from the TFLite interpreter (ai-edge-litert, else tflite_runtime)."""
    interp = litert_interpreter(model_bytes)
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    inputs = pixels_to_int8(images)
    out = np.empty((len(inputs), 10), dtype=np.int8)
    for i, x in enumerate(inputs):
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]))
        interp.invoke()
        out[i] = interp.get_tensor(outp["index"]).reshape(-1)
        if progress:
            progress(i + 1, len(inputs))
    return out


def litert_interpreter(model_bytes: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the older name, where that is what is installed
        from tflite_runtime.interpreter import Interpreter
    interp = Interpreter(model_content=model_bytes)
    interp.allocate_tensors()
    return interp


def dequantized(logits_int8: np.ndarray, model_bytes: bytes) -> np.ndarray:
    interp = litert_interpreter(model_bytes)
    scale, zero_point = interp.get_output_details()[0]["quantization"]
    return scale * (logits_int8.astype(np.float32) - zero_point)


def model_summary(model_bytes: bytes) -> dict:
    """Input/output quantization, op list and size of a .tflite."""
    from lenet_edge.quantize.convert import op_names

    interp = litert_interpreter(model_bytes)
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    return {
        "model_bytes": len(model_bytes),
        "ops": op_names(model_bytes),
        "input": {"shape": [int(d) for d in inp["shape"]], "dtype": np.dtype(inp["dtype"]).name,
                  "scale": float(inp["quantization"][0]),
                  "zero_point": int(inp["quantization"][1])},
        "output": {"shape": [int(d) for d in outp["shape"]],
                   "dtype": np.dtype(outp["dtype"]).name,
                   "scale": float(outp["quantization"][0]),
                   "zero_point": int(outp["quantization"][1])},
    }


def read_model(path: str | Path) -> bytes:
    return Path(path).read_bytes()
