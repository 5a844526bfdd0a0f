"""The checks several ops share, and the refusal they raise.

An op's `check` (codegen/ops/<op>.py) raises `Unsupported` for a form the generator does
not implement exactly; validate.validate_graph turns it into one LenetEdgeError naming the
model and the op.
"""

from __future__ import annotations

import numpy as np

from lenet_edge.codegen.ir import Graph, Op, Tensor
from lenet_edge.quantmath import output_size


class Unsupported(Exception):
    """A form of an op the generator does not implement exactly."""


def unary_io(graph: Graph, op: Op) -> tuple[Tensor, Tensor]:
    """(input, output) of an op on one activation: both int8 activations with one scale and
    zero point, the fused activation's limits representable in the output's scale."""
    x = int8_act(graph, op.inputs[0], "input")
    y = int8_act(graph, op.outputs[0], "output")
    check_activation_limits(op.options.get("activation", "NONE"), y)
    return x, y


def int8_act(graph: Graph, t: int, role: str) -> Tensor:
    tensor = graph.tensor(t)
    if tensor.dtype != "int8":
        raise Unsupported(f"{role} tensor {t} is {tensor.dtype}, expected int8")
    if tensor.quant is None or tensor.quant.per_channel:
        raise Unsupported(f"{role} tensor {t} needs one scale and zero point")
    if tensor.is_constant:
        raise Unsupported(f"{role} tensor {t} is a constant")
    return tensor


def check_bias(graph: Graph, op: Op, channels: int) -> None:
    """An optional bias (input 2): a constant int32 vector, one value per output channel."""
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = graph.tensor(op.inputs[2])
        if not b.is_constant or b.dtype != "int32" or b.size != channels:
            raise Unsupported(f"bias must be a constant int32 vector of {channels} values "
                              f"(found {b.dtype} {b.shape})")


def check_activation_limits(act: str, y: Tensor) -> None:
    """TFLM casts real_limit / scale (float32) to int32: it must fit."""
    limits = {"RELU6": (6.0,), "RELU_N1_TO_1": (-1.0, 1.0)}.get(act, ())
    for f in limits:
        with np.errstate(over="ignore"):
            q = np.float32(f) / np.float32(y.quant.scale)
        if not abs(float(q)) < 2.0 ** 31:
            raise Unsupported(f"{act} limit {f} / output scale {y.quant.scale} does not "
                              "fit int32")


def same_quant(x: Tensor, y: Tensor) -> None:
    if (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
        raise Unsupported("input and output quantization differ (a requantizing form)")


def check_conv_io(op: Op, x: Tensor, y: Tensor) -> None:
    """What CONV_2D and DEPTHWISE_CONV_2D share before their weights: no dilation, SAME or
    VALID padding, NHWC input and output of batch 1."""
    o = op.options
    if o.get("dilation") != (1, 1):
        raise Unsupported(f"dilation {o.get('dilation')}")
    if o.get("padding") not in ("SAME", "VALID"):
        raise Unsupported(f"padding {o.get('padding')}")
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1 or y.shape[0] != 1:
        raise Unsupported("input and output must be NHWC with batch 1")


def check_conv_output(op: Op, x: Tensor, w: Tensor, y: Tensor) -> None:
    """Strides of at least 1, and the output size the padding gives for the kernel of
    ``w`` (OHWI or 1HWO: kh, kw in dimensions 1 and 2)."""
    o = op.options
    for axis, (stride, k) in enumerate(zip(o["stride"], w.shape[1:3])):
        if stride < 1:
            raise Unsupported(f"stride {o['stride']}")
        if output_size(o["padding"], stride, 1, x.shape[1 + axis], k) != y.shape[1 + axis]:
            raise Unsupported(f"output shape {y.shape} is not what {o['padding']} padding gives")


def check_weights(graph: Graph, op: Op, rank: int, out_channels: int) -> Tensor:
    """CONV_2D's and FULLY_CONNECTED's weights (input 1): constant, int8 of ``rank``,
    symmetric, per-channel only along the output channel (axis 0); and the bias."""
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        raise Unsupported("no weights tensor")
    w = graph.tensor(op.inputs[1])
    if not w.is_constant:
        raise Unsupported("weights are not constant")
    if w.dtype != "int8":
        raise Unsupported(f"weights are {w.dtype}, expected int8")
    if len(w.shape) != rank:
        raise Unsupported(f"weights have rank {len(w.shape)}, expected {rank}")
    if w.quant is None:
        raise Unsupported("weights are not quantized")
    if any(z != 0 for z in w.quant.zero_points):
        raise Unsupported("weights have a non-zero zero point (TFLM needs symmetric weights)")
    if w.quant.per_channel and (w.quant.axis != 0 or len(w.quant.scales) != out_channels):
        raise Unsupported("per-channel weights must be quantized along the output channel (axis 0)")
    check_bias(graph, op, out_channels)
    return w


def check_requantization(pairs: list[tuple[int, int]], x: Tensor, y: Tensor) -> None:
    """TFLM's fixed-point requantization holds shifts up to 30 (a larger left shift
    overflows int32 in its MultiplyByQuantizedMultiplier); ``pairs`` are the (multiplier,
    shift) pairs the op's lowering uses."""
    worst = max(shift for _, shift in pairs)
    if worst > 30:
        raise Unsupported(f"requantization multiplier of 2^{worst - 1} or more (input scale "
                          f"{x.quant.scale} x weight scale / output scale {y.quant.scale}); "
                          "TFLM's fixed point holds at most 2^30")
