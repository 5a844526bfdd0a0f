"""The two LeNet-5 variants.

Both take float pixels in [0, 1] (pixel/255, nothing else), shape (28, 28, 1), and end in
10 logits (no softmax: the device reports logits, argmax is the same).

``classic`` follows LeCun et al. 1998: C1 6@5x5 on a 32x32 input, S2 2x2 average
pooling, C3 16@5x5 with the paper's connection table (Table I), S4 average pooling,
C5 120@5x5, F6 84, 10 outputs, tanh. The 32x32 input is MNIST's 28x28 padded by 2 with
zeros; 'same' padding on C1 over the 28x28 image computes exactly that (the pad value is
real 0, i.e. int8 -128, the input zero point) without a PAD op or a 32x32 buffer.

``modern``: ReLU, max pooling, a full C3, otherwise the same shapes.
"""

from __future__ import annotations

import keras
import numpy as np

VARIANTS = ("modern", "classic")
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# LeCun et al. 1998, Table I: which S2 maps each C3 map sees.
C3_TABLE = (
    [[i % 6, (i + 1) % 6, (i + 2) % 6] for i in range(6)]
    + [[(i + k) % 6 for k in range(4)] for i in range(6)]
    + [[i % 6, (i + 1) % 6, (i + 3) % 6, (i + 4) % 6] for i in range(3)]
    + [list(range(6))]
)


def c3_mask() -> np.ndarray:
    """(6, 16) 0/1 matrix: mask[s2_map, c3_map] = 1 where the paper connects them."""
    mask = np.zeros((6, 16), dtype=np.float32)
    for c3_map, s2_maps in enumerate(C3_TABLE):
        mask[s2_maps, c3_map] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="lenet_edge")
class ConnectionTable(keras.constraints.Constraint):
    """Zeroes the kernel entries of absent input->output map connections.

    Keras applies a constraint after every optimizer step, so absent connections are
    exactly 0.0 through training; the converter then writes those zeros as int8 0.
    """

    def __init__(self, mask):
        self.mask = np.asarray(mask, dtype=np.float32)  # (in_maps, out_maps)

    def __call__(self, kernel):
        return kernel * keras.ops.convert_to_tensor(self.mask[None, None, :, :], kernel.dtype)

    def get_config(self):
        return {"mask": self.mask.tolist()}


@keras.saving.register_keras_serializable(package="lenet_edge")
class SparseConv2D(keras.layers.Conv2D):
    """Conv2D whose kernel is masked by a connection table (LeNet-5's C3).

    A plain CONV_2D in the .tflite (zeros where there is no connection), so the graph stays
    one op; ``count_params`` counts only the connected weights (the trainable ones).
    """

    def __init__(self, filters, kernel_size, connections, **kwargs):
        kwargs.pop("kernel_constraint", None)
        super().__init__(filters, kernel_size, kernel_constraint=ConnectionTable(connections),
                         **kwargs)
        self.connections = np.asarray(connections, dtype=np.float32)

    def build(self, input_shape):
        super().build(input_shape)
        # Start from a kernel that already respects the table.
        self.kernel.assign(self.kernel_constraint(self.kernel))

    def count_params(self):
        kh, kw = self.kernel_size
        weights = int(self.connections.sum()) * kh * kw
        return weights + (self.filters if self.use_bias else 0)

    def get_config(self):
        config = super().get_config()
        config.pop("kernel_constraint", None)
        config["connections"] = self.connections.tolist()
        return config


def build_model(variant: str, batch_size: int | None = None) -> keras.Model:
    """A LeNet-5 of the given variant; ``batch_size=1`` for the graph that gets converted."""
    if variant == "classic":
        return _classic(batch_size)
    if variant == "modern":
        return _modern(batch_size)
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def _classic(batch_size):
    L = keras.layers
    inputs = keras.Input(IMAGE_SHAPE, batch_size=batch_size, name="pixels")
    x = L.Conv2D(6, 5, padding="same", activation="tanh", name="c1")(inputs)
    x = L.AveragePooling2D(2, name="s2")(x)
    x = SparseConv2D(16, 5, c3_mask(), activation="tanh", name="c3")(x)
    x = L.AveragePooling2D(2, name="s4")(x)
    x = L.Conv2D(120, 5, activation="tanh", name="c5")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(84, activation="tanh", name="f6")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="lenet5_classic")


def _modern(batch_size):
    L = keras.layers
    inputs = keras.Input(IMAGE_SHAPE, batch_size=batch_size, name="pixels")
    x = L.Conv2D(6, 5, padding="same", activation="relu", name="c1")(inputs)
    x = L.MaxPooling2D(2, name="s2")(x)
    x = L.Conv2D(16, 5, activation="relu", name="c3")(x)
    x = L.MaxPooling2D(2, name="s4")(x)
    x = L.Conv2D(120, 5, activation="relu", name="c5")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(84, activation="relu", name="f6")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="lenet5_modern")


def with_batch_one(model: keras.Model) -> keras.Model:
    """The same network and weights with the batch fixed at 1 (Flatten -> one RESHAPE)."""
    fixed = build_model(variant_of(model), batch_size=1)
    fixed.set_weights(model.get_weights())
    return fixed


def lenet_variant(model: keras.Model) -> str | None:
    """'modern' or 'classic' for lenet-edge's own LeNet-5 models, None for any other."""
    for variant in VARIANTS:
        if model.name == f"lenet5_{variant}":
            return variant
    return None


def variant_of(model: keras.Model) -> str:
    variant = lenet_variant(model)
    if variant is None:
        raise ValueError(f"{model.name!r} is not a lenet-edge LeNet-5 model")
    return variant
