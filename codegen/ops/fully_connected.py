"""FULLY_CONNECTED, TFLM's int8 FullyConnected (per-tensor weights) and
FullyConnectedPerChannel, also the kernel of a CONV_2D whose window is its whole input
(ops/conv2d.py). BLOCK outputs are computed together so each input load feeds them all;
the input zero point is folded into the bias; a TANH/LOGISTIC after it may be fused into
its step (ops/fusion.py). Kernel: ops/fully_connected.c.j2, with one file per variant of
the block's MACs (fully_connected_{portable,mve,dsp,mlal,v6m}.c.j2) picked by the CPU
table's kernel variant (`paths`). `--optimize speed` adds the weight layouts that cost
flash (int16 pairs in SXTB16's order for DSP, two outputs an int32 for SMLAL)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite

from lenet_edge.codegen import options
from lenet_edge.codegen.checks import Unsupported, check_requantization, check_weights, unary_io
from lenet_edge.codegen.ir import Graph, Op, Tensor
from lenet_edge.codegen.ops import fusion
from lenet_edge.codegen.steps import ConstArray, Step, folded_bias, requant_constants, step_name
from lenet_edge.quantmath import activation_range, conv_multipliers, fc_per_tensor_multiplier

KINDS = ("FULLY_CONNECTED",)
OPTIONS = {"FULLY_CONNECTED": "FullyConnectedOptions"}  # the table TFLM's parser reads
INPUTS = ((2, 3), (2,))  # input, weights, optional bias (-1 when absent)
FUSES = (fusion.TABLE,)  # what its step may absorb after it
BLOCK = 4  # output neurons computed together (one input load feeds them all)


def read_options(kind: str, table) -> dict:
    o = tflite.FullyConnectedOptions()
    o.Init(table.Bytes, table.Pos)
    return {
        "activation": options.activation(o),
        "weights_format": o.WeightsFormat(),
        "keep_num_dims": bool(o.KeepNumDims()),
        "asymmetric_quantize_inputs": bool(o.AsymmetricQuantizeInputs()),
    }


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    o = op.options
    if o.get("weights_format", 0) != 0:
        raise Unsupported("shuffled weights format")
    if o.get("asymmetric_quantize_inputs"):
        raise Unsupported("dynamic-range (hybrid) quantization")
    w = check_weights(graph, op, 2, y.shape[-1])
    check_requantization(multipliers(x, w, y, w.shape[0]), x, y)
    if y.size != w.shape[0] or x.size != w.shape[1]:
        raise Unsupported(f"input of {x.size} and output of {y.size} values do not match weights "
                          f"{w.shape} with batch 1")


def multipliers(x: Tensor, w: Tensor, y: Tensor, n_out: int,
                conv: bool = False) -> list[tuple[int, int]]:
    """The (multiplier, shift) of each output as TFLM derives them: per channel (and for a
    conv lowered here, TFLM's conv), else one for the layer."""
    if conv or w.quant.per_channel:
        return conv_multipliers(x.quant.scale, w.quant.scales, y.quant.scale, n_out)
    return [fc_per_tensor_multiplier(x.quant.scale, w.quant.scale, y.quant.scale)] * n_out


@dataclass(frozen=True)
class FullyConnectedParams:
    """What fully_connected.c.j2 (and its variant files) render: ``n_in`` -> ``n_out``
    values in ``blocks`` blocks of ``block`` outputs (``row_words`` 4-byte words and
    ``row_tail`` bytes an input row, ``mve_chunks`` its 16-byte vectors); the constants are
    ``<prefix>_weights``, ``_bias``, ``_multiplier``, ``_shift`` (and ``_table`` with
    ``lut``, ``_weights_dsp16`` with ``dsp16``, ``_weights_mlal`` with ``mlal``);
    ``right_only`` / ``right_shift``: every shift is <= 0 / <= -1; ``what``: the TFLM
    kernel it matches, for the comment."""

    prefix: str
    what: str
    n_in: int
    n_out: int
    block: int
    blocks: int
    row_words: int
    row_tail: int
    mve_chunks: tuple[tuple[int, int], ...]
    output_offset: int
    act_min: int
    act_max: int
    right_only: bool
    right_shift: bool
    lut: bool
    dsp16: bool
    mlal: bool


def lower(graph: Graph, op: Op) -> list[Step]:
    return lower_group(graph, [op])


def lower_group(graph: Graph, group: list[Op], optimize: str = "size") -> list[Step]:
    """The step of ``group`` (the layer and what `fusion.fusable_group` gave it)."""
    return [lower_step(graph, group, optimize=optimize)]


def lower_step(graph: Graph, group: list[Op], conv: bool = False,
               optimize: str = "size") -> Step:
    """``conv``: group[0] is a CONV_2D whose window is its whole input (ops/conv2d.py)."""
    op = group[0]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    final = graph.tensor(group[-1].outputs[0])
    w = graph.tensor(op.inputs[1])
    weights = w.data.astype(np.int8).reshape(w.shape[0], -1)
    n_out, n_in = weights.shape
    prefix = step_name(op)
    pairs = multipliers(x, w, y, n_out, conv=conv)
    blocks = -(-n_out // BLOCK)
    padded_out = blocks * BLOCK
    # Rows past n_out are zero (computed, never stored) so every block is full.
    padded = np.zeros((padded_out, n_in), dtype=np.int8)
    padded[:n_out] = weights
    pad_to = padded_out - n_out
    bias = np.concatenate([folded_bias(graph, op, weights, -x.quant.zero_point),
                           np.zeros(pad_to, np.int32)])
    pairs = pairs + [(0, -1)] * pad_to  # shift -1: the rows keep right_shift's premise
    post = fusion.fused_ops(graph, group)
    dense = ConstArray(f"{prefix}_weights", "int8_t", padded.reshape(-1),
                       f"[out][in], out padded to a multiple of {BLOCK} with zero rows")
    dsp16 = mlal = None
    if optimize == "speed":
        dsp16 = _dsp16_pairs(padded) if n_in % 4 == 0 else None
        mlal = mlal_pairs(padded.reshape(padded_out, n_in, 1, 1))
        dense.feature = "+".join(v for v in ("mve", "dsp", "mlal", "portable")
                                 if not (v == "dsp" and dsp16 is not None)
                                 and not (v == "mlal" and mlal is not None))
    constants = [dense,
                 ConstArray(f"{prefix}_bias", "int32_t", bias,
                            "bias - input zero point * sum(weights), per output")]
    constants += requant_constants(prefix, pairs)
    constants += post.table_constants(prefix)
    if dsp16 is not None:
        constants.append(ConstArray(f"{prefix}_weights_dsp16", "int32_t", dsp16,
                                    "--optimize speed: [block][in / 4][out][2] int16 pairs "
                                    "(w0, w2), (w1, w3)", feature="dsp"))
    if mlal is not None:
        constants.append(ConstArray(f"{prefix}_weights_mlal", "int32_t", mlal,
                                    "--optimize speed: [out pair][in] w(2j) + w(2j+1) * 2^24",
                                    feature="mlal"))
    act_min, act_max = activation_range(op.options["activation"], y.quant.scale,
                                        y.quant.zero_point)
    params = FullyConnectedParams(
        prefix=prefix,
        what="Conv2D as a dot product" if conv else
        "FullyConnected" + ("PerChannel" if w.quant.per_channel else ""),
        n_in=n_in, n_out=n_out, block=BLOCK, blocks=blocks, row_words=n_in // 4,
        row_tail=n_in % 4, mve_chunks=vector_chunks(n_in), output_offset=y.quant.zero_point,
        act_min=act_min, act_max=act_max, right_only=all(s <= 0 for _, s in pairs),
        right_shift=all(s <= -1 for _, s in pairs), lut=post.table is not None,
        dsp16=dsp16 is not None, mlal=mlal is not None)
    return Step(name=prefix + ("_fused" if len(group) > 1 else ""), kernel="fully_connected",
                op_indices=tuple(o.index for o in group), input=x.index, output=final.index,
                params=params, constants=constants,
                macs_dense=n_in * n_out, macs_executed=n_in * n_out)


def _dsp16_pairs(padded: np.ndarray) -> np.ndarray:
    """--optimize speed, DSP (fully_connected_dsp.c.j2): int16 pairs in SXTB16's order,
    (w0, w2), (w1, w3) per 4 inputs, as [block][in / 4][out of the block][2], so one
    step's 8 words are contiguous."""
    padded_out, n_in = padded.shape
    quads = padded.astype(np.int64).reshape(padded_out, n_in // 4, 4)
    words = np.stack([(quads[..., 0] & 0xFFFF) | (quads[..., 2] << 16),
                      (quads[..., 1] & 0xFFFF) | (quads[..., 3] << 16)], axis=-1)
    words = words.reshape(padded_out // BLOCK, BLOCK, n_in // 4, 2).transpose(0, 2, 1, 3)
    return ((words + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32).reshape(-1)


def mlal_pairs(weights: np.ndarray) -> np.ndarray | None:
    """Two outputs' (out channels') weights in one int32, w(2j) + w(2j+1) * 2^24, for the
    SMLAL kernels (fully_connected_mlal.c.j2, conv2d_mlal.c.j2; ``weights`` OHWI): x * word
    accumulated in 64 bits is the sum of channel 2j plus 2^24 times that of channel 2j+1.
    The low sum is recovered exactly (its 24 low bits, sign-extended) when |sum| < 2^23 for
    every int8 input, i.e. when the channel's sum of |w| times 128 stays below 2^23; None
    when a channel breaks that."""
    oc = weights.shape[0]
    flat = weights.reshape(oc, -1).astype(np.int64)
    if oc < 2 or (np.abs(flat).sum(axis=1) * 128 >= 1 << 23).any():
        return None
    if oc % 2:
        flat = np.concatenate([flat, np.zeros((1, flat.shape[1]), np.int64)])
    packed = flat[0::2] + flat[1::2] * (1 << 24)
    if (packed < -(1 << 31)).any():  # only a weight of -128 in the high channel gets here
        return None
    return packed.astype(np.int32).reshape(-1)


def vector_chunks(length: int) -> tuple[tuple[int, int], ...]:
    """(offset, lanes) of the 16-byte Helium vectors that cover a row of ``length`` bytes."""
    return tuple((o, min(16, length - o)) for o in range(0, length, 16))
