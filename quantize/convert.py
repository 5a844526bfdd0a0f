"""Keras model (lenet-edge's LeNet-5, or a user's own) -> full-integer int8 TFLite.

- The graph is traced with a fixed batch of 1, so Flatten is one RESHAPE and no
  shape-computing ops (SHAPE, STRIDED_SLICE, PACK) reach the microcontroller.
- No SOFTMAX: the LeNet models end in logits (argmax is unchanged, and an int8 softmax would
  squeeze the scores into 1/256 steps that the device has no use for).
- int8 input and output; weights symmetric int8 per output channel (the converter's
  default for CONV_2D and FULLY_CONNECTED), biases int32.
- A BatchNormalization right after a Conv2D/Dense without activation is folded into its
  weights by the converter; elsewhere it stays as MUL and ADD (which codegen supports).
- Calibration: training images. The representative set always includes an all-0 and an
  all-255 image, so the observed input range is exactly [0, 1] and the input gets scale
  1/255, zero point -128: the int8 input is then simply pixel - 128.
- ``argmax_range`` (`quantize --argmax-range`): the output's range is only where the
  calibration images' argmax is decided (quantize/output_range.py), a finer output step.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError, warn
from lenet_edge.quiet import silenced_native_output
# The calibration sample is train's rule (quantization-aware training needs it too).
from lenet_edge.train.calibration import (CALIBRATION_IMAGES, calibration_images,  # noqa: F401
                                          calibration_pick)

# What a LeNet-5 int8 graph may contain; anything else means the conversion went wrong.
# ADD: zip1989's per-unit biases (a constant [H, W, C] after a conv); DEPTHWISE_CONV_2D:
# classic-1998's subsampling layers (a trainable coefficient and bias per map).
ALLOWED_OPS = {"CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
               "TANH", "RELU", "ADD", "DEPTHWISE_CONV_2D"}
INPUT_SCALE = 1.0 / 255.0
INPUT_ZERO_POINT = -128


_WARNED: set[str] = set()  # warn once per model file, however often it is loaded


def load_keras_model(path: str | os.PathLike):
    """Load a Keras model (lenet-edge's LeNet-5 or any other); clear errors for what cannot
    become an int8 model for the C generator."""
    path = Path(path)
    if not path.is_file():
        raise LenetEdgeError(f"model file not found: {path} (train one with `lenet-edge train`, "
                             "or use the bundled one)")
    if path.suffix != ".keras":
        raise LenetEdgeError(f"{path} is not a .keras file; give a Keras model saved as .keras "
                             "(model.save('m.keras')), such as the lenet5.keras that "
                             "`lenet-edge train` writes")
    from lenet_edge.quiet import import_tensorflow_quietly

    import_tensorflow_quietly(f"reading the Keras model {path.name}")
    import keras

    from lenet_edge.train.models import lenet_variant

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # zip, JSON or weight errors: all mean "not a usable model"
        raise LenetEdgeError(f"cannot load {path} as a Keras model: {exc}") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise LenetEdgeError(f"{path}: the model has {len(model.inputs)} inputs and "
                             f"{len(model.outputs)} outputs; the C library takes one of each")
    if lenet_variant(model) is None and str(path) not in _WARNED:
        _WARNED.add(str(path))
        warn(f"{path.name}: {model.name!r} is not one of lenet-edge's LeNet models; it is "
             "converted as it is (no LeNet op-list check, no variant in reports)")
    return model


def convert_int8(model, calibration: np.ndarray, argmax_range: bool = False) -> bytes:
    """The int8 .tflite bytes of a float Keras ``model``, calibrated on uint8 images;
    ``argmax_range``: the output quantized over the calibration logits' argmax range."""
    import tensorflow as tf

    from lenet_edge.quantize.evaluate import check_image_shape
    from lenet_edge.train.models import lenet_variant, with_batch_one

    variant = lenet_variant(model)
    # lenet-edge's LeNets are rebuilt with batch 1 (what the bundled models were made with);
    # any other model is traced with a batch-1 signature, which gives the converter static
    # shapes too: Flatten becomes one RESHAPE, no SHAPE/STRIDED_SLICE/PACK.
    fixed = with_batch_one(model) if variant else model
    shape = tuple(int(d) for d in model.input_shape[1:])
    if any(d is None for d in model.input_shape[1:]):
        raise LenetEdgeError(f"{model.name!r} has a free input dimension "
                             f"{model.input_shape}; give it a fixed image size")
    check_image_shape(calibration.shape[1:], shape, "the calibration data")

    def representative():
        for image in calibration:
            yield [(image.astype(np.float32) / 255.0).reshape(1, *shape)]

    # Keras 3 models convert through a SavedModel: its signature has the batch-1 input
    # shape, and the converter freezes the variables it holds.
    with tempfile.TemporaryDirectory() as saved:
        with silenced_native_output():
            fixed.export(saved, format="tf_saved_model", verbose=False,
                         input_signature=[tf.TensorSpec((1, *shape), tf.float32)])
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        data = _convert(converter, representative)
    if argmax_range:
        from lenet_edge.quantize.evaluate import float_logits
        from lenet_edge.quantize.output_range import (argmax_range as span, int8_params,
                                                      set_output_quantization)

        data = set_output_quantization(data, *int8_params(*span(float_logits(model,
                                                                             calibration))))
    check_int8_model(data, lenet=variant is not None)
    return bytes(data)


def _convert(converter, representative) -> bytes:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with silenced_native_output():
        return converter.convert()


def op_names(model_bytes: bytes) -> list[str]:
    """Builtin op names of subgraph 0, in execution order."""
    from tflite_micro import runtime

    from lenet_edge.quantize.tflm import model_ops

    names = {v: k for k, v in vars(runtime.schema_fb.BuiltinOperator).items()
             if not k.startswith("_")}
    return [names.get(op.opcode, str(op.opcode)) for op in model_ops(model_bytes)]


def check_int8_model(model_bytes: bytes, lenet: bool = True) -> None:
    """Refuse a conversion that is not what the rest of the pipeline relies on. ``lenet``:
    also check the op list of a LeNet-5 (other models' ops are the C generator's to judge)."""
    from lenet_edge.quantize.litert import litert_interpreter

    unexpected = sorted(set(op_names(model_bytes)) - ALLOWED_OPS) if lenet else []
    if unexpected:
        raise LenetEdgeError(f"the int8 graph contains unexpected ops: {', '.join(unexpected)}")
    interp = litert_interpreter(model_bytes)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
        raise LenetEdgeError("converter did not produce int8 input/output tensors")
    scale, zero_point = inp["quantization"]
    if zero_point != INPUT_ZERO_POINT or not np.isclose(scale, INPUT_SCALE, rtol=1e-6, atol=0):
        raise LenetEdgeError(f"input quantization is scale {scale}, zero point {zero_point}; "
                             "expected 1/255 and -128")
