"""Quantization-aware fine-tuning (QAT) of zip1989-modern (and LeNet-1): a few epochs of the
trained float net with the roundings its int8 conversion will make simulated in the
forward pass.

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

LeNet-1 (CONV_2D, TANH, AVERAGE_POOL_2D twice, RESHAPE, FULLY_CONNECTED): the same weight
rule; the two conv outputs and the logits calibrated as above; TANH's int8 output and the
pools' (which keep their input's parameters) on the fixed 1/128 grid, the pool's average
rounded half away from zero as TFLM's kernel does. C3's table stays zero the same way.
Only the recipe of zip1989-modern includes a QAT phase; LeNet-1's is opt-in
(`train --variant lenet1 --qat-epochs N`).
"""

from __future__ import annotations

import numpy as np

# Per simulated variant, the int8 tensors of its deploy graph that get a calibrated range.
ACTIVATIONS = {"zip1989-modern": ("h1_conv", "h1", "h2_conv", "h2", "h3", "logits"),
               "lenet1": ("c1", "c3", "logits")}
QAT_VARIANTS = tuple(ACTIVATIONS)
TANH_RANGE = (-1.0, 127.0 / 128.0)  # TFLite's int8 TANH output: scale 1/128, zero point 0


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
    """A Keras model sharing ``model``'s variables (zip1989-modern's or LeNet-1's training
    graph) whose forward pass is the int8 deploy graph's, roundings simulated. Train it like
    any model; ``calibrate(images)`` sets its activation ranges."""
    import keras
    import tensorflow as tf

    from lenet_edge.train.models import variant_of

    variant = variant_of(model)
    if variant not in QAT_VARIANTS:
        raise ValueError(f"quantization-aware training is for {', '.join(QAT_VARIANTS)} only")
    activations = ACTIVATIONS[variant]

    class Qat(keras.Model):
        def __init__(self, base):
            super().__init__(name=f"{base.name}_qat")
            self.base = base
            self.layer = {layer.name: layer for layer in base.layers}
            self.ranges = {name: (self.add_weight(name=f"{name}_min", shape=(),
                                                  initializer="zeros", trainable=False),
                                  self.add_weight(name=f"{name}_max", shape=(),
                                                  initializer="zeros", trainable=False))
                           for name in activations}

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

            if variant == "lenet1":
                return self.lenet1(x, act, weights, quantize), taps
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

        def lenet1(self, x, act, weights, quantize):
            """CONV_2D, TANH, AVERAGE_POOL_2D twice, RESHAPE, FULLY_CONNECTED: TANH's
            output and the pool's (which keeps its input's parameters) are on the fixed
            1/128 grid."""
            def grid(v):
                return fake_quant(v, *TANH_RANGE) if quantize else v

            def pooled(v):
                # TFLM's int8 average of 4 grid values: the sum / 4 rounded half away from
                # zero (fake_quant would round halves up, and 1 in 4 sums is a half).
                v = self.layer[pool](v)
                if not quantize:
                    return v
                q = tf.sign(v) * tf.floor(tf.abs(v) * 128.0 + 0.5) / 128.0
                return v + tf.stop_gradient(q - v)

            for conv, pool in (("c1", "s2"), ("c3", "s4")):
                layer = self.layer[conv]
                x = act(conv, layer.convolution_op(x, weights(layer.kernel)) + layer.bias)
                x = pooled(grid(tf.tanh(x)))
            x = tf.reshape(x, (-1, int(np.prod(x.shape[1:]))))
            out = self.layer["logits"]
            return act("logits", tf.matmul(x, weights(out.kernel)) + out.bias)

        def call(self, x, training=False):
            return self.forward(x, training=training)[0]

        def calibrate(self, images: np.ndarray) -> dict:
            """Set every activation range to [min, max] of the float net on ``images``
            (uint8), as the converter's calibration does; return the ranges."""
            from lenet_edge.train.training import to_model_input

            low = {n: np.inf for n in activations}
            high = {n: -np.inf for n in activations}
            inputs = to_model_input(images)
            for start in range(0, len(inputs), 500):
                _, taps = self.forward(tf.constant(inputs[start:start + 500]), quantize=False)
                for n, v in taps.items():
                    low[n] = min(low[n], float(tf.reduce_min(v)))
                    high[n] = max(high[n], float(tf.reduce_max(v)))
            for n in activations:
                self.ranges[n][0].assign(low[n])
                self.ranges[n][1].assign(high[n])
            return {n: (low[n], high[n]) for n in activations}

    return Qat(model)


def fake_quant_logits(qat, images: np.ndarray) -> np.ndarray:
    """The QAT model's (simulated int8) logits of uint8 images, inference mode."""
    from lenet_edge.train.training import to_model_input

    return qat.predict(to_model_input(images), batch_size=500, verbose=0)
