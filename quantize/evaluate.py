"""The reference backends on MNIST digits: float (Keras), TFLM (the bit-exact oracle) and
the TFLite interpreter, each as logits for a batch of uint8 images.

The int8 input is pixel/255 quantized with the model's input scale and zero point by
the one rule, `lenet_edge.quantmath.quantize_input` (for the LeNet models' 1/255 and -128
exactly ``pixel - 128``), the same bytes the device receives. Used by `quantize` (its
report), `eval` and `validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lenet_edge import quantmath
from lenet_edge.errors import LenetEdgeError

Progress = str | Callable[[int, int], None] | None


LENET_INPUT_SCALE, LENET_INPUT_ZERO_POINT = 1 / 255, -128  # every bundled LeNet model


def pixels_to_int8(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> the bundled LeNet models' int8 input (scale 1/255, zero point -128,
    so exactly pixel - 128), same shape."""
    return quantmath.quantize_pixels(images, LENET_INPUT_SCALE, LENET_INPUT_ZERO_POINT)


def quantize_pixels(images: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """uint8 pixels (N, ...) -> int8 model inputs (N, size): pixel/255 quantized with the
    model's input scale and zero point (`quantmath.quantize_input`, TFLite's QUANTIZE)."""
    images = np.asarray(images)
    return quantmath.quantize_pixels(images.reshape(len(images), -1), scale, zero_point)


def input_spec(model: bytes | str | Path) -> tuple[tuple[int, ...], float, int]:
    """(input shape without the batch, scale, zero point) of an int8 .tflite."""
    from lenet_edge.quantize.tflm import TflmModel

    details = TflmModel(model).input_details
    if np.dtype(details["dtype"]) != np.int8:
        raise LenetEdgeError(
            f"the model takes {np.dtype(details['dtype']).name} input; lenet-edge evaluates "
            "and validates models with int8 input and output (convert with "
            "inference_input_type=tf.int8, as `lenet-edge quantize` does)")
    shape = tuple(int(d) for d in details["shape"])[1:]
    params = details.get("quantization_parameters") or {}
    scales, zeros = params.get("scales"), params.get("zero_points")
    if scales is not None and len(scales):
        return shape, float(scales[0]), int(zeros[0])
    scale, zero = details.get("quantization", (1 / 255, -128))
    return shape, float(scale), int(zero)


def check_image_shape(image_shape: tuple[int, ...], model_shape: tuple[int, ...],
                      data_name: str) -> None:
    """Refuse images the model cannot take: (H, W[, C]) against the model's input."""
    hwc = tuple(image_shape) + ((1,) if len(image_shape) == 2 else ())
    # Equal up to axes of size 1 ((28, 28, 1) vs (28, 28)), or a flat input of that size.
    ok = [d for d in hwc if d != 1] == [d for d in model_shape if d != 1] or \
        (len(model_shape) == 1 and int(np.prod(hwc)) == model_shape[0])
    if not ok:
        raise LenetEdgeError(
            f"the model takes {'x'.join(map(str, model_shape))} inputs, but {data_name} has "
            f"{'x'.join(map(str, hwc))} images; give the test set the model was trained for "
            "(--data)")


def model_inputs(model: bytes | str | Path, images: np.ndarray,
                 data_name: str = "the test set") -> np.ndarray:
    """The int8 inputs (N, size) the model takes for uint8 ``images``: shape checked, then
    quantized with the model's own input scale and zero point."""
    shape, scale, zero_point = input_spec(model)
    check_image_shape(np.asarray(images).shape[1:], shape, data_name)
    return quantize_pixels(images, scale, zero_point)


def tflm_logits(model: bytes | str | Path, images: np.ndarray,
                progress: Progress = None) -> np.ndarray:
    """int8 logits (N, outputs) from the TFLM reference kernels, one image at a time."""
    from lenet_edge.quantize.tflm import TflmModel

    return TflmModel(model).run_batch(model_inputs(model, images), progress)


def litert_logits(model: bytes | str | Path, images: np.ndarray,
                  progress: Progress = None) -> np.ndarray:
    """int8 logits (N, outputs) from the TFLite interpreter (ai-edge-litert)."""
    from lenet_edge.quantize.litert import LiteRTModel

    return LiteRTModel(model).run_batch(model_inputs(model, images), progress)


def float_logits(keras_model, images: np.ndarray) -> np.ndarray:
    """Float logits (N, outputs) of a Keras model (or a .keras path) on pixel/255."""
    from lenet_edge.quiet import import_tensorflow_quietly

    import_tensorflow_quietly("the float (Keras) model")
    if isinstance(keras_model, (str, Path)):
        from lenet_edge.quantize.convert import load_keras_model

        keras_model = load_keras_model(keras_model)
    # pixel/255 in the model's own input shape (e.g. (28, 28, 1) for (N, 28, 28) images).
    shape = tuple(d for d in keras_model.input_shape[1:])
    x = np.asarray(images).astype(np.float32) / np.float32(255.0)
    x = x.reshape((len(x), *shape))
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
