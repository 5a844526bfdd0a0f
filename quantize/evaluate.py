"""The reference backends on MNIST digits: float (Keras), TFLM (the bit-exact oracle) and
the TFLite interpreter, each as logits for a batch of uint8 images.

The int8 input is ``pixel - 128`` (input scale 1/255, zero point -128), the same bytes
the device receives. Used by `quantize` (its report), `eval` and `validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

Progress = str | Callable[[int, int], None] | None


def pixels_to_int8(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> the model's int8 input: pixel - 128 (same shape)."""
    return (np.asarray(images).astype(np.int16) - 128).astype(np.int8)


def tflm_logits(model: bytes | str | Path, images: np.ndarray,
                progress: Progress = None) -> np.ndarray:
    """int8 logits (N, outputs) from the TFLM reference kernels, one image at a time."""
    from lenet_edge.quantize.tflm import TflmModel

    return TflmModel(model).run_batch(pixels_to_int8(images), progress)


def litert_logits(model: bytes | str | Path, images: np.ndarray,
                  progress: Progress = None) -> np.ndarray:
    """int8 logits (N, outputs) from the TFLite interpreter (ai-edge-litert)."""
    from lenet_edge.quantize.litert import LiteRTModel

    return LiteRTModel(model).run_batch(pixels_to_int8(images), progress)


def float_logits(keras_model, images: np.ndarray) -> np.ndarray:
    """Float logits (N, outputs) of a Keras model (or a .keras path) on pixel/255."""
    from lenet_edge.quiet import import_tensorflow_quietly

    import_tensorflow_quietly("the float (Keras) model")
    if isinstance(keras_model, (str, Path)):
        from lenet_edge.quantize.convert import load_keras_model

        keras_model = load_keras_model(keras_model)
    from lenet_edge.train.training import to_model_input

    x = to_model_input(images)
    try:
        out = keras_model.predict(x, batch_size=500, verbose=0)
    except ValueError:  # a model built with a fixed batch of 1
        out = np.concatenate([keras_model(x[i:i + 1], training=False) for i in range(len(x))])
    return np.asarray(out).reshape(len(x), -1)


def dequantized(logits_int8: np.ndarray, model_bytes: bytes) -> np.ndarray:
    from lenet_edge.quantize.litert import LiteRTModel

    scale, zero_point = LiteRTModel(model_bytes).output_quantization
    return scale * (logits_int8.astype(np.float32) - zero_point)


def model_summary(model_bytes: bytes) -> dict:
    """Input/output quantization, op list and size of a .tflite."""
    from lenet_edge.quantize.convert import op_names
    from lenet_edge.quantize.litert import LiteRTModel

    model = LiteRTModel(model_bytes)

    def describe(details: dict) -> dict:
        return {"shape": [int(d) for d in details["shape"]],
                "dtype": np.dtype(details["dtype"]).name,
                "scale": float(details["quantization"][0]),
                "zero_point": int(details["quantization"][1])}

    return {"model_bytes": len(model_bytes), "ops": op_names(model_bytes),
            "input": describe(model.input_details), "output": describe(model.output_details)}


def read_model(path: str | Path) -> bytes:
    return Path(path).read_bytes()
