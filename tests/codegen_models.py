"""Small int8 models for the codegen tests, made with the real TFLite converter.

Keras model -> TFLiteConverter (full-integer, int8 in/out, representative data) -> bytes.
"""

from __future__ import annotations

import numpy as np


def convert_int8(model, input_shape, rng_seed=0, samples=64, per_channel=True,
                 representative=None, float_io=False) -> bytes:
    """`float_io`: keep float32 input and output (the converter then adds a QUANTIZE at
    the input and a DEQUANTIZE at the output)."""
    import tensorflow as tf

    rng = np.random.default_rng(rng_seed)

    def rep():
        if representative is not None:
            for x in representative:
                yield [x[None].astype(np.float32)]
            return
        for _ in range(samples):
            yield [rng.random((1, *input_shape), dtype=np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    if not per_channel:
        conv._experimental_disable_per_channel = True
    return conv.convert()


def lenet_tflite(variant: str, seed: int = 0, images: np.ndarray | None = None) -> bytes:
    """A LeNet-5 of the project's own definition with random (seeded) weights."""
    import keras

    from lenet_edge.train.models import build_model, with_batch_one

    keras.utils.set_random_seed(seed)
    model = build_model(variant, batch_size=1)
    # Random biases too, so bias paths are exercised (fresh layers start at zero).
    rng = np.random.default_rng(seed)
    weights = [w if w.ndim > 1 else rng.normal(0, 0.05, w.shape).astype(w.dtype)
               for w in model.get_weights()]
    model.set_weights(weights)
    model = with_batch_one(model)  # the graph `quantize` converts (zip1989, classic-1998: folded)
    shape = tuple(model.input_shape[1:])
    rep = None
    if images is not None:
        if images.shape[1:3] != shape[:2]:  # zip1989's 16x16: resized as its split is
            from lenet_edge.train.zip1989 import resize_bilinear

            images = resize_bilinear(images[:64], shape[0])
        rep = [img[..., None].astype(np.float32) / 255.0 for img in images[:64]]
    return convert_int8(model, shape, seed, representative=rep)
