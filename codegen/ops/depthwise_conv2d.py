"""DEPTHWISE_CONV_2D, TFLM's DepthwiseConvPerChannel (int8, per-channel or per-tensor
weights): out channel o reads input channel o // depth_multiplier; the input zero point
folded into the bias and SAME padding as a bordered copy of the input, as for CONV_2D
(the geometry, requantization and bordered copy are steps.py's, shared with it).
Kernel: ops/depthwise_conv2d.c.j2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite

from lenet_edge.codegen import options
from lenet_edge.codegen.checks import (
    Unsupported,
    check_bias,
    check_conv_io,
    check_conv_output,
    unary_io,
)
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.steps import (
    ConstArray,
    Step,
    conv_geometry,
    conv_requantization,
    folded_bias,
    padded_input,
    requant_constants,
    step_name,
)

KINDS = ("DEPTHWISE_CONV_2D",)
OPTIONS = {"DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions"}  # the table TFLM's parser reads
INPUTS = ((2, 3), (2,))  # input, weights, optional bias (-1 when absent)


def read_options(kind: str, table) -> dict:
    o = tflite.DepthwiseConv2DOptions()
    o.Init(table.Bytes, table.Pos)
    return {**options.convolution(o), "depth_multiplier": o.DepthMultiplier()}


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    check_conv_io(op, x, y)
    oc, ic = y.shape[3], x.shape[3]
    if len(op.inputs) < 2 or op.inputs[1] < 0 or not graph.tensor(op.inputs[1]).is_constant:
        raise Unsupported("weights are not constant")
    w = graph.tensor(op.inputs[1])
    if w.dtype != "int8" or w.quant is None or len(w.shape) != 4:
        raise Unsupported(f"weights must be int8 [1, kh, kw, {oc}] (found {w.dtype} {w.shape})")
    if w.shape[0] != 1 or w.shape[3] != oc or oc % ic:
        raise Unsupported(f"weights shape {w.shape} does not match input {x.shape} / output "
                          f"{y.shape}")
    multiplier = op.options.get("depth_multiplier") or oc // ic
    if multiplier * ic != oc:
        raise Unsupported(f"depth multiplier {multiplier} with {ic} in and {oc} out channels")
    if any(z != 0 for z in w.quant.zero_points):
        raise Unsupported("weights have a non-zero zero point (TFLM needs symmetric weights)")
    if w.quant.per_channel and (w.quant.axis != 3 or len(w.quant.scales) != oc):
        raise Unsupported("per-channel depthwise weights must be quantized along axis 3")
    check_bias(graph, op, oc)
    check_conv_output(op, x, w, y)


@dataclass(frozen=True)
class DepthwiseParams:
    """What depthwise_conv2d.c.j2 renders: the (bordered) input ``ih`` x ``iw`` x ``ic``,
    output ``oh`` x ``ow`` x ``oc``, kernel, stride, depth multiplier ``dm``; the constants
    are ``<prefix>_bias``, ``_multiplier``, ``_shift`` and ``_weights``."""

    prefix: str
    ic: int
    oc: int
    kh: int
    kw: int
    sh: int
    sw: int
    oh: int
    ow: int
    ih: int
    iw: int
    dm: int
    output_offset: int
    act_min: int
    act_max: int


def lower(graph: Graph, op: Op) -> list[Step]:
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, ph, pw = conv_geometry(graph, op)
    prefix = step_name(op)
    steps, source, pih, piw = padded_input(graph, op, x, (kh, kw), (oh, ow), (ph, pw), prefix)
    weights = w.data.astype(np.int8).reshape(kh, kw, oc)
    by_channel = weights.transpose(2, 0, 1)  # (oc, kh, kw) for the bias fold
    multipliers, act_min, act_max = conv_requantization(graph, op, oc)
    constants = [ConstArray(f"{prefix}_bias", "int32_t",
                            folded_bias(graph, op, by_channel, -x.quant.zero_point),
                            "bias - input zero point * sum(weights), per out channel"),
                 *requant_constants(prefix, multipliers),
                 ConstArray(f"{prefix}_weights", "int8_t", weights.reshape(-1),
                            "[kh][kw][out channel]")]
    params = DepthwiseParams(prefix=prefix, ic=ic, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, oh=oh,
                             ow=ow, ih=pih, iw=piw,
                             dm=op.options.get("depth_multiplier", 1) or oc // ic,
                             output_offset=y.quant.zero_point, act_min=act_min, act_max=act_max)
    steps.append(Step(name=prefix, kernel="depthwise_conv2d", op_indices=(op.index,),
                      input=source, output=y.index, params=params, constants=constants,
                      macs_dense=oh * ow * kh * kw * oc, macs_executed=oh * ow * kh * kw * oc))
    return steps
