"""Quantization-aware fine-tuning (QAT) of zip1989-modern: a few epochs of the trained float
net with the roundings its int8 conversion will make simulated in the forward pass.

Why: the int8 model loses a few digits against float on roundings spread over every
layer (BENCHMARKS.md, "Where the 0.2 points go"). QAT lets the weights settle where those
roundings cost nothing. The result is still a plain float model (the same Keras graph and
variables, saved as lenet5.keras); `lenet-edge quantize` converts it exactly as any other,
with the TFLite converter's post-training calibration, and TFLM and the device check it as
before. Nothing here replaces a step of the conversion: the simulation mimics it.

What is simulated (the .tflite of zip1989-modern: CONV_2D+ReLU, ADD+ReLU, CONV_2D+ReLU,
ADD+ReLU, RESHAPE, FULLY_CONNECTED+ReLU, FULLY_CONNECTED; train/models.py's deploy graph):
- weights of H1, H2, H3 and the output layer: symmetric int8 per output channel, scale
  max|w| / 127 (the converter's rule);
- the ADD constants (the unit biases less the per-map maximum that goes into the conv's
  int32 bias): int8 per tensor over their own [min, 0];
- the six int8 activations (each conv's output, each ADD's, H3's, the logits): per-tensor
  asymmetric int8 (``tf.quantization.fake_quant_with_min_max_vars``, which nudges the zero
  point as the converter does) over [min, max] of the float net on the calibration images
  the converter will use (train/calibration.py), re-measured before every epoch;
- int32 biases and TFLM's requantization are not simulated (far finer than the steps above).
Gradients pass straight through the roundings (the straight-through estimator; outside an
activation range, the clamp's gradient is zero). H2's connection table is the kernel
variable's constraint, applied after every optimizer step as in float training, so the
absent connections stay exactly 0 (and round to int8 0).
"""

from __future__ import annotations

import numpy as np

QAT_VARIANTS = ("zip1989-modern",)
# The int8 tensors of zip1989-modern's deploy graph that get a calibrated range.
ACTIVATIONS = ("h1_conv", "h1", "h2_conv", "h2", "h3", "logits")


def fake_quant_weights(w):
    """Symmetric int8 per output channel (the last axis), as the converter quantizes
    CONV_2D and FULLY_CONNECTED weights; straight-through gradient."""
    import tensorflow as tf

    axes = list(range(len(w.shape) - 1))
    scale = tf.stop_gradient(tf.reduce_max(tf.abs(w), axis=axes) / 127.0)
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    q = tf.clip_by_value(tf.round(w / scale), -127.0, 127.0) * scale
    return w + tf.stop_gradient(q - w)


def fake_quant(x, low, high):
    """Per-tensor asymmetric int8 over [low, high] widened to hold 0."""
    import tensorflow as tf

    low = tf.stop_gradient(tf.minimum(low, 0.0))
    high = tf.stop_gradient(tf.maximum(high, 0.0))
    return tf.quantization.fake_quant_with_min_max_vars(x, low, high, num_bits=8)


def fake_quant_constant(c):
    """A constant int8 tensor (an ADD's second input): per tensor over its own range."""
    import tensorflow as tf

    return fake_quant(c, tf.reduce_min(c), tf.reduce_max(c))


def qat_model(model):
    """A Keras model sharing ``model``'s variables (zip1989-modern's training graph) whose
    forward pass is the int8 deploy graph's, roundings simulated. Train it like any model;
    ``calibrate(images)`` sets its activation ranges."""
    import keras
    import tensorflow as tf

    from lenet_edge.train.models import variant_of

    if variant_of(model) not in QAT_VARIANTS:
        raise ValueError(f"quantization-aware training is for {', '.join(QAT_VARIANTS)} only")

    class Zip1989Qat(keras.Model):
        def __init__(self, base):
            super().__init__(name="zip1989_modern_qat")
            self.base = base
            self.layer = {name: base.get_layer(name) for name in (
                "h1", "h1_bias", "h2", "h2_bias", "dropout", "h3", "logits")}
            self.ranges = {name: (self.add_weight(name=f"{name}_min", shape=(),
                                                  initializer="zeros", trainable=False),
                                  self.add_weight(name=f"{name}_max", shape=(),
                                                  initializer="zeros", trainable=False))
                           for name in ACTIVATIONS}

        def forward(self, x, training=False, quantize=True):
            """(logits, {activation name: its float value before rounding})."""
            taps = {}

            def act(name, value):
                taps[name] = value
                return fake_quant(value, *self.ranges[name]) if quantize else value

            def weights(w):
                return fake_quant_weights(w) if quantize else w

            def const(c):
                return fake_quant_constant(c) if quantize else c

            for conv, bias in (("h1", "h1_bias"), ("h2", "h2_bias")):
                layer, unit = self.layer[conv], self.layer[bias].bias
                per_map = tf.reduce_max(unit, axis=(0, 1))  # the deploy conv's int32 bias
                x = act(conv + "_conv",
                        tf.nn.relu(layer.convolution_op(x, weights(layer.kernel)) + per_map))
                x = act(conv, tf.nn.relu(x + const(unit - per_map)))
            x = self.layer["dropout"](x, training=training)
            x = tf.reshape(x, (-1, int(np.prod(x.shape[1:]))))
            h3, out = self.layer["h3"], self.layer["logits"]
            x = act("h3", tf.nn.relu(tf.matmul(x, weights(h3.kernel)) + h3.bias))
            return act("logits", tf.matmul(x, weights(out.kernel)) + out.bias), taps

        def call(self, x, training=False):
            return self.forward(x, training=training)[0]

        def calibrate(self, images: np.ndarray) -> dict:
            """Set every activation range to [min, max] of the float net on ``images``
            (uint8), as the converter's calibration does; return the ranges."""
            from lenet_edge.train.training import to_model_input

            low = {n: np.inf for n in ACTIVATIONS}
            high = {n: -np.inf for n in ACTIVATIONS}
            inputs = to_model_input(images)
            for start in range(0, len(inputs), 500):
                _, taps = self.forward(tf.constant(inputs[start:start + 500]), quantize=False)
                for n, v in taps.items():
                    low[n] = min(low[n], float(tf.reduce_min(v)))
                    high[n] = max(high[n], float(tf.reduce_max(v)))
            for n in ACTIVATIONS:
                self.ranges[n][0].assign(low[n])
                self.ranges[n][1].assign(high[n])
            return {n: (low[n], high[n]) for n in ACTIVATIONS}

    return Zip1989Qat(model)


def fake_quant_logits(qat, images: np.ndarray) -> np.ndarray:
    """The QAT model's (simulated int8) logits of uint8 images, inference mode."""
    from lenet_edge.train.training import to_model_input

    return qat.predict(to_model_input(images), batch_size=500, verbose=0)
