"""The LeNet family: the 1989 zip-code net, three LeNet-5 variants, LeNet-1 and LeNet-4.

All take float pixels in [0, 1] (pixel/255, nothing else), shape (28, 28, 1) (zip1989:
(16, 16, 1)), and end in 10 logits (no softmax: the device reports logits, argmax is the
same).

``zip1989`` (LeCun et al. 1989; the layout of Karpathy's reproduction): 16x16 input in
[-1, 1] with background -1; H1 12@8x8 (5x5, stride 2, padded with the background); H2
12@4x4 (5x5, stride 2), each map reading 8 of the 12 H1 maps; H3 30 units; 10 outputs;
tanh; one bias per unit (not per map): 9,760 parameters, as the paper. The [-1, 1] range
is folded into H1 exactly: with y = 2x - 1 (x = pixel/255) and the padding y = -1 (x = 0,
the int8 input's zero point), conv(y, W) + b = conv(x, 2W) + (b - sum(W)) at every unit,
border units included, so H1's kernel is 2W and the constant joins H1's per-unit biases.
The reproduction pads H2's input with -1 as well; with one bias per unit a padding value
is only a constant per unit, so padding with 0 (what TFLite's SAME does) spans the same
functions. Per-unit biases are a conv without bias followed by ``UnitBias`` (in the
.tflite: CONV_2D, then ADD of a constant [H, W, C] tensor). The outputs are the logits
before the paper's final tanh (monotone: the same argmax); the faithful recipe trains
tanh(logits) against +-1 targets (train/training.py). ``zip1989-modern`` is the same size
with the reproduction's modern choices: ReLU and dropout 0.25 after H2.

``classic`` follows LeCun et al. 1998: C1 6@5x5 on a 32x32 input, S2 2x2 average
pooling, C3 16@5x5 with the paper's connection table (Table I), S4 average pooling,
C5 120@5x5, F6 84, 10 outputs, tanh. The 32x32 input is MNIST's 28x28 padded by 2 with
zeros; 'same' padding on C1 over the 28x28 image computes exactly that (the pad value is
real 0, i.e. int8 -128, the input zero point) without a PAD op or a 32x32 buffer.

``classic-1998``: ``classic`` with the paper's input range (background -0.1, foreground
1.175), squashing function 1.7159 tanh(2/3 a) and subsampling layers with a trainable
coefficient and bias per map, each folded into plain int8 ops for conversion
(``_classic_1998_deploy``).

``modern``: ReLU, max pooling, a full C3, otherwise the same shapes.

``lenet1`` (1998 paper, section III-C): 28x28 input, C1 4@24x24 (5x5), S2 2x2 average,
C3 12@8x8 (5x5) with the paper's 20-of-48 connection table, S4 2x2 average, 10 outputs
fully connected to the 12@4x4 maps, tanh: 2,546 parameters, about 92,000 multiply-adds.

``lenet4``: 32x32 input (28x28 with 'same' padding, as classic), C1 4@28x28, S2 4@14x14,
C3 16@10x10 with a connection table (48 of 64), S4 16@5x5, 120 units each reading 5 of
the 16 S4 maps, 10 outputs, tanh: 17,650 parameters. The paper gives only totals (about
17,000 parameters, 260,000 connections); a fully connected 120-unit layer alone would have
48,120, so the 120 units must be sparsely connected. Why 4 and not 8 S2 maps: see README.
"""

from __future__ import annotations

import keras
import numpy as np

from lenet_edge.bundled import VARIANTS  # the one list of variants
# The Keras model name marks a lenet-edge model (quantize and export recognise it by it).
MODEL_NAMES = {"modern": "lenet5_modern", "classic": "lenet5_classic", "lenet1": "lenet1",
               "lenet4": "lenet4", "zip1989": "zip1989", "zip1989-modern": "zip1989_modern",
               "classic-1998": "lenet5_classic_1998"}
IMAGE_SHAPE = (28, 28, 1)
ZIP1989_SHAPE = (16, 16, 1)
NUM_CLASSES = 10

# LeCun et al. 1998, Table I: which S2 maps each C3 map sees.
C3_TABLE = (
    [[i % 6, (i + 1) % 6, (i + 2) % 6] for i in range(6)]
    + [[(i + k) % 6 for k in range(4)] for i in range(6)]
    + [[i % 6, (i + 1) % 6, (i + 3) % 6, (i + 4) % 6] for i in range(3)]
    + [list(range(6))]
)


# LeNet-1 (1998 paper, section III-C): which S2 maps each C3 map sees (0-based; the
# issue lists them 1-based: 1:{1} 2:{1,2} 3:{1,2} 4:{2} 5:{1,2} 6:{1,2} 7:{3} ...).
LENET1_C3_TABLE = ([[0], [0, 1], [0, 1], [1], [0, 1], [0, 1]]
                   + [[2], [2, 3], [2, 3], [3], [2, 3], [2, 3]])

# LeNet-4's C3 (ours; the paper gives no table): 4 maps on adjacent pairs of S2 maps, 4 on
# triples, 2 on opposite pairs, 6 on all four (48 of 64 connections).
LENET4_C3_TABLE = ([[i, (i + 1) % 4] for i in range(4)]
                   + [[i, (i + 1) % 4, (i + 2) % 4] for i in range(4)]
                   + [[0, 2], [1, 3]] + [list(range(4))] * 6)

# LeNet-4's 120 units (ours): unit j reads 5 consecutive S4 maps 5j..5j+4 (mod 16), 5x5
# each, so the 600 connections go round the 16 maps evenly (37 or 38 units per map).
LENET4_F5_TABLE = [[(5 * j + k) % 16 for k in range(5)] for j in range(120)]


# zip1989's H2 (the paper gives no scheme; the reproduction's): maps 0-3 read H1 maps 0-7,
# maps 4-7 read 4-11, maps 8-11 read 0-3 and 8-11 (96 of 144 connections).
ZIP1989_H2_TABLE = ([list(range(0, 8))] * 4 + [list(range(4, 12))] * 4
                    + [[0, 1, 2, 3, 8, 9, 10, 11]] * 4)


def connection_mask(table, in_maps: int) -> np.ndarray:
    """(in_maps, out_maps) 0/1 matrix: mask[in, out] = 1 where ``table[out]`` lists ``in``."""
    mask = np.zeros((in_maps, len(table)), dtype=np.float32)
    for out_map, in_list in enumerate(table):
        mask[in_list, out_map] = 1.0
    return mask


def c3_mask() -> np.ndarray:
    """(6, 16) 0/1 matrix: mask[s2_map, c3_map] = 1 where the paper connects them."""
    return connection_mask(C3_TABLE, 6)


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


@keras.saving.register_keras_serializable(package="lenet_edge")
class UnitBias(keras.layers.Layer):
    """One trainable bias per unit (per position and map), as the 1989 net has: x + b with b
    of the input's shape (without the batch). Converts to one int8 ADD of a constant."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=tuple(input_shape[1:]),
                                    initializer="zeros")

    def call(self, x):
        return x + self.bias


def _paper_init(fan_in: int):
    """The 1989 paper's initialisation as the reproduction reads it: uniform in
    +-2.4/sqrt(fan_in), fan_in counting connected inputs only."""
    limit = 2.4 / float(np.sqrt(fan_in))
    return keras.initializers.RandomUniform(-limit, limit)


def build_model(variant: str, batch_size: int | None = None) -> keras.Model:
    """A LeNet of the given variant; ``batch_size=1`` for the graph that gets converted."""
    builders = {"classic": _classic, "modern": _modern, "lenet1": _lenet1, "lenet4": _lenet4,
                "zip1989": _zip1989, "zip1989-modern": _zip1989_modern,
                "classic-1998": _classic_1998}
    if variant not in builders:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return builders[variant](batch_size)


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


def _lenet1(batch_size):
    L = keras.layers
    inputs = keras.Input(IMAGE_SHAPE, batch_size=batch_size, name="pixels")
    x = L.Conv2D(4, 5, activation="tanh", name="c1")(inputs)
    x = L.AveragePooling2D(2, name="s2")(x)
    x = SparseConv2D(12, 5, connection_mask(LENET1_C3_TABLE, 4), activation="tanh",
                     name="c3")(x)
    x = L.AveragePooling2D(2, name="s4")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAMES["lenet1"])


def _lenet4(batch_size):
    L = keras.layers
    inputs = keras.Input(IMAGE_SHAPE, batch_size=batch_size, name="pixels")
    x = L.Conv2D(4, 5, padding="same", activation="tanh", name="c1")(inputs)
    x = L.AveragePooling2D(2, name="s2")(x)
    x = SparseConv2D(16, 5, connection_mask(LENET4_C3_TABLE, 4), activation="tanh",
                     name="c3")(x)
    x = L.AveragePooling2D(2, name="s4")(x)
    x = SparseConv2D(120, 5, connection_mask(LENET4_F5_TABLE, 16), activation="tanh",
                     name="f5")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAMES["lenet4"])


def _zip1989_net(batch_size, activation: str, dropout: float, name: str,
                 deploy: bool = False) -> keras.Model:
    """``deploy``: the graph that gets converted, the same function with each conv given a
    bias per map too (int32 in the .tflite; ``_deploy_weights``), so that its int8 output,
    before the ADD of the rest of the unit biases, spans about the pre-activation's range
    rather than the bias-less sum's. tanh: the map's mean unit bias. ReLU: the map's largest
    unit bias B, with the ReLU applied in the conv too: relu(relu(s + B) + (b - B)) =
    relu(s + b) exactly since b - B <= 0, and the conv's int8 output needs no negative
    range at all."""
    L = keras.layers
    inputs = keras.Input(ZIP1989_SHAPE, batch_size=batch_size, name="pixels")
    conv_activation = "relu" if deploy and activation == "relu" else None
    # H1's kernel is 2W of the [-1, 1] net (see the module docstring), so its init is doubled.
    x = L.Conv2D(12, 5, strides=2, padding="same", use_bias=deploy, name="h1",
                 activation=conv_activation, kernel_initializer=_paper_init(25 / 4))(inputs)
    x = L.Activation(activation, name="h1_act")(UnitBias(name="h1_bias")(x))
    x = SparseConv2D(12, 5, connection_mask(ZIP1989_H2_TABLE, 12), strides=2, padding="same",
                     use_bias=deploy, activation=conv_activation,
                     kernel_initializer=_paper_init(8 * 25), name="h2")(x)
    x = L.Activation(activation, name="h2_act")(UnitBias(name="h2_bias")(x))
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(30, activation=activation, kernel_initializer=_paper_init(192), name="h3")(x)
    outputs = L.Dense(NUM_CLASSES, kernel_initializer=_paper_init(30), name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _zip1989(batch_size):
    return _zip1989_net(batch_size, *_ZIP1989_OPTIONS["zip1989"])


def _zip1989_modern(batch_size):
    return _zip1989_net(batch_size, *_ZIP1989_OPTIONS["zip1989-modern"])


# LeCun et al. 1998, appendix A: the squashing function f(a) = A tanh(S a), and the input
# range (background -0.1, foreground 1.175: mean about 0, variance about 1).
SQUASH_A, SQUASH_S = 1.7159, 2.0 / 3.0
INPUT_BACKGROUND, INPUT_FOREGROUND = -0.1, 1.175


@keras.saving.register_keras_serializable(package="lenet_edge")
class ScaledTanh(keras.layers.Layer):
    """The 1998 paper's squashing function 1.7159 tanh(2/3 a)."""

    def call(self, x):
        return SQUASH_A * keras.ops.tanh(SQUASH_S * x)


@keras.saving.register_keras_serializable(package="lenet_edge")
class PaperInput(keras.layers.Layer):
    """pixel/255 -> the paper's range (background -0.1, foreground 1.175), padded by
    ``pad`` pixels of background on each side (MNIST's 28x28 -> LeNet-5's 32x32)."""

    def __init__(self, pad: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x):
        y = INPUT_BACKGROUND + (INPUT_FOREGROUND - INPUT_BACKGROUND) * x
        p = self.pad
        return keras.ops.pad(y, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=INPUT_BACKGROUND)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="lenet_edge")
class Subsampling(keras.layers.Layer):
    """The 1998 paper's S2/S4: the four inputs of each 2x2 block added, times a trainable
    coefficient, plus a trainable bias, one of each per map."""

    def build(self, input_shape):
        maps = input_shape[-1]
        self.coefficient = self.add_weight(name="coefficient", shape=(maps,),
                                           initializer=keras.initializers.Constant(0.25))
        self.bias = self.add_weight(name="bias", shape=(maps,), initializer="zeros")

    def call(self, x):
        summed = 4.0 * keras.ops.average_pool(x, 2, strides=2, padding="valid")
        return summed * self.coefficient + self.bias


def _classic_1998(batch_size):
    """LeNet-5 with the 1998 paper's details that TFLite int8 can express: the input range
    (background -0.1, foreground 1.175, padded to 32x32 with the background), the squashing
    function 1.7159 tanh(2/3 a) everywhere, and subsampling layers with a trainable
    coefficient and bias per map followed by the squashing function. The graph that gets
    converted is ``_classic_1998_deploy`` (the same function, every constant folded)."""
    L = keras.layers
    inputs = keras.Input(IMAGE_SHAPE, batch_size=batch_size, name="pixels")
    x = PaperInput(2, name="input_range")(inputs)
    x = ScaledTanh(name="c1_act")(L.Conv2D(6, 5, name="c1")(x))
    x = ScaledTanh(name="s2_act")(Subsampling(name="s2")(x))
    x = ScaledTanh(name="c3_act")(SparseConv2D(16, 5, c3_mask(), name="c3")(x))
    x = ScaledTanh(name="s4_act")(Subsampling(name="s4")(x))
    x = ScaledTanh(name="c5_act")(L.Conv2D(120, 5, name="c5")(x))
    x = L.Flatten(name="flatten")(x)
    x = ScaledTanh(name="f6_act")(L.Dense(84, name="f6")(x))
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAMES["classic-1998"])


def _classic_1998_deploy(batch_size):
    """classic-1998 as TFLite int8 runs it: plain tanh, 'same' padding over pixel/255 (the
    input zero point is the paper's background once the range is folded into C1), and each
    subsampling layer one 2x2 stride-2 DEPTHWISE_CONV_2D whose four taps are equal."""
    L = keras.layers
    inputs = keras.Input(IMAGE_SHAPE, batch_size=batch_size, name="pixels")
    x = L.Conv2D(6, 5, padding="same", activation="tanh", name="c1")(inputs)
    x = L.DepthwiseConv2D(2, strides=2, activation="tanh", name="s2")(x)
    x = SparseConv2D(16, 5, c3_mask(), activation="tanh", name="c3")(x)
    x = L.DepthwiseConv2D(2, strides=2, activation="tanh", name="s4")(x)
    x = L.Conv2D(120, 5, activation="tanh", name="c5")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(84, activation="tanh", name="f6")(x)
    outputs = L.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAMES["classic-1998"])


def _classic_1998_deploy_weights(model: keras.Model) -> list:
    """Fold the constants of classic-1998 into its deploy graph's weights, exactly:
    - the input range y = -0.1 + 1.275 x, padded with y = -0.1 (x = 0): conv(y, W) + b =
      conv(x, 1.275 W) + (b - 0.1 sum W) at every unit, border ones included;
    - f(a) = A tanh(S a): S multiplies the layer's own kernel and bias, A the next layer's
      kernel (its input is A times the deploy graph's tanh);
    - subsampling: c * (sum of 4) + d = a 2x2 depthwise kernel of four equal taps c."""
    a, s = SQUASH_A, SQUASH_S
    w = {layer.name: [v.numpy() for v in layer.weights] for layer in model.layers}
    span = INPUT_FOREGROUND - INPUT_BACKGROUND
    k1, b1 = w["c1"]
    out = [s * span * k1, s * (b1 + INPUT_BACKGROUND * k1.sum(axis=(0, 1, 2)))]
    for pool, conv in (("s2", "c3"), ("s4", "c5")):
        coefficient, bias = w[pool]
        taps = np.broadcast_to((s * a * coefficient)[:, None], (2, 2, len(coefficient), 1))
        out += [taps.copy(), s * bias]
        kernel, conv_bias = w[conv]
        out += [s * a * kernel, s * conv_bias]
    k6, b6 = w["f6"]
    k7, b7 = w["logits"]
    out += [s * a * k6, s * b6, a * k7, b7]
    return [v.astype(np.float32) for v in out]


def with_batch_one(model: keras.Model) -> keras.Model:
    """The same network and weights with the batch fixed at 1 (Flatten -> one RESHAPE): the
    graph that gets converted (for zip1989, its deploy form: the same function)."""
    variant = variant_of(model)
    if variant == "classic-1998":
        fixed = _classic_1998_deploy(1)
        fixed.set_weights(_classic_1998_deploy_weights(model))
        return fixed
    if variant.startswith("zip1989"):
        fixed = _zip1989_net(1, *_ZIP1989_OPTIONS[variant], deploy=True)
        fixed.set_weights(_deploy_weights(model))
        return fixed
    fixed = build_model(variant, batch_size=1)
    fixed.set_weights(model.get_weights())
    return fixed


_ZIP1989_OPTIONS = {"zip1989": ("tanh", 0.0, MODEL_NAMES["zip1989"]),
                    "zip1989-modern": ("relu", 0.25, MODEL_NAMES["zip1989-modern"])}


def _deploy_weights(model: keras.Model) -> list:
    """zip1989's weights for its deploy graph: each conv gets a bias per map (the mean of
    the map's unit biases; with ReLU, their maximum), the UnitBias after it keeps the rest
    (the sum is unchanged)."""
    relu = _ZIP1989_OPTIONS[variant_of(model)][0] == "relu"
    weights, kernel = [], []
    for layer in model.layers:
        values = [w.numpy() for w in layer.weights]
        if isinstance(layer, keras.layers.Conv2D) and not layer.use_bias:
            kernel = values  # its bias comes from the UnitBias that follows it
        elif isinstance(layer, UnitBias):
            mean = values[0].max(axis=(0, 1)) if relu else values[0].mean(axis=(0, 1))
            weights += kernel + [mean, values[0] - mean]
        else:
            weights += values
    return weights


def lenet_variant(model: keras.Model) -> str | None:
    """The variant of lenet-edge's own LeNet models (by Keras model name), None for any other."""
    for variant, name in MODEL_NAMES.items():
        if model.name == name:
            return variant
    return None


def variant_of(model: keras.Model) -> str:
    variant = lenet_variant(model)
    if variant is None:
        raise ValueError(f"{model.name!r} is not a lenet-edge LeNet model")
    return variant
