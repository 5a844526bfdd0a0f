"""Lower the validated IR into steps: one kernel instance per op (or per fused op group),
with its constants.

Each step names the kernel template that implements it (`kernels/<kernel>.c.j2`). Every op
but CONV_2D and FULLY_CONNECTED is lowered by its module of codegen/ops/ (its kernel
beside it); those two, with what they fuse, are lowered here (templates/kernels/).
With ``fuse=True`` (the default, what ships) a convolution absorbs what follows it when
the math allows: an elementwise table (TANH, LOGISTIC) and a non-overlapping VALID pool,
so pooled outputs are produced without materialising the full convolution output. With
``fuse=False`` every op is its own step and every op output is traced (the test build).

Shapes, strides and offsets are compile-time constants in the generated loops. Zero-point
handling is folded at export time: TFLM computes bias + sum(w * (x - zp_in)); the C
computes (bias - zp_in * sum(w)) + sum(w * x), equal in int32 arithmetic. Taps in a conv's
SAME padding add 0 in TFLM, exactly what an input padded with zp_in adds here, so a
padded copy of the input replaces every bounds check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.ops import BY_KIND as OP_MODULES
from lenet_edge.codegen.ops import fully_connected, fusion
from lenet_edge.codegen.ops.fully_connected import mlal_pairs, vector_chunks
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
from lenet_edge.errors import LenetEdgeError



@dataclass
class Program:
    graph: Graph
    input: int  # tensor index the C API's input fills
    output: int  # tensor index the C API's output receives
    steps: list[Step]
    fused: bool = True

    @property
    def constants(self) -> list[ConstArray]:
        return [c for s in self.steps for c in s.constants]


def int8_body(graph: Graph) -> tuple[list[Op], int, int]:
    """(ops, input tensor, output tensor) of the int8 part of ``graph``: boundary float
    conversions (a leading QUANTIZE, a trailing DEQUANTIZE) stay outside the C library,
    which takes and returns int8."""
    ops = list(graph.ops)
    c_input, c_output = graph.inputs[0], graph.outputs[0]
    if ops and ops[0].kind == "QUANTIZE":
        c_input = ops.pop(0).outputs[0]
    if ops and ops[-1].kind == "DEQUANTIZE":
        c_output = ops.pop().inputs[0]
    return ops, c_input, c_output


OPTIMIZE = ("size", "speed")  # export --optimize: speed may trade flash for instructions


def lower(graph: Graph, fuse: bool = True, optimize: str = "size") -> Program:
    """``optimize="speed"``: the fully connected layers also get weight layouts that cost
    flash (int16 pairs for the DSP cores, two outputs an int32 for the SMLAL ones); "size"
    keeps the constant data within a few percent of the int8 weights."""
    if optimize not in OPTIMIZE:
        raise LenetEdgeError(f"--optimize must be one of {', '.join(OPTIMIZE)}, not {optimize!r}")
    ops, c_input, c_output = int8_body(graph)
    private = fusion.private_tensors(ops, c_output)
    steps: list[Step] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        group = [op]
        if fuse and op.kind in ("CONV_2D", "FULLY_CONNECTED"):
            group = fusion.fusable_group(ops, i, private, (fusion.TABLE, fusion.POOL)
                                         if op.kind == "CONV_2D" else (fusion.TABLE,))
        if op.kind == "CONV_2D":
            steps += _lower_conv(graph, group, optimize)
        elif op.kind == "FULLY_CONNECTED":
            steps += fully_connected.lower_group(graph, group, optimize)
        else:
            steps += OP_MODULES[op.kind].lower(graph, op)
        i += len(group)
    for step in steps:  # scratch steps (traced=None) report nothing
        step.traced = () if step.traced is None else (step.traced or (step.output,))
    return Program(graph=graph, input=c_input, output=c_output, steps=steps, fused=fuse)


def _lower_conv(graph: Graph, group: list[Op], optimize: str = "size") -> list[Step]:
    op = group[0]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    final = graph.tensor(group[-1].outputs[0])
    w = graph.tensor(op.inputs[1])
    ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, ph, pw = conv_geometry(graph, op)
    prefix = step_name(op)
    weights = w.data.astype(np.int8)  # OHWI
    input_offset = -x.quant.zero_point
    active = [[c for c in range(ic) if weights[o, :, :, c].any()] for o in range(oc)]
    # Dense: every tap of every output (padding taps included, as a MAC count usually is).
    macs_dense = oh * ow * kh * kw * ic * oc
    steps: list[Step] = []
    # An input exactly the kernel's size with one output pixel is a fully connected layer,
    # unless a connection table zeroes whole (out, in) channel slices (LeNet-4's F5): the
    # conv kernel skips those exactly, the dense fully connected one would store and
    # multiply them.
    table = sum(len(a) for a in active) < oc * ic
    if oh == ow == 1 and ih == kh and iw == kw and ph == pw == 0 and not table:
        return [fully_connected.lower_step(graph, group, conv=True, optimize=optimize)]
    pad_steps, source, ih, iw = padded_input(graph, op, x, (kh, kw), (oh, ow), (ph, pw), prefix)
    steps += pad_steps
    post = fusion.fused_ops(graph, group)
    multipliers, act_min, act_max = conv_requantization(graph, op, oc)
    if post.pool:
        fh, fw = post.pool_filter
        gh, gw = (oh - fh) // fh + 1, (ow - fw) // fw + 1
        pixels = [(dy, dx) for dy in range(fh) for dx in range(fw)]
        group_step = (fh * sh * iw * ic, fw * sw * ic)
    else:
        gh, gw = oh, ow
        pixels = [(0, 0)]
        group_step = (sh * iw * ic, sw * ic)
    # Max pooling commutes with a non-decreasing requantization: pool the accumulators,
    # requantize once. Non-decreasing holds without a left shift (which may wrap in int32).
    max_first = (post.pool == "max" and post.table is None
                 and all(s <= 0 for _, s in multipliers))
    sparse = sum(len(a) for a in active) < oc * ic
    constants = [ConstArray(f"{prefix}_bias", "int32_t",
                            folded_bias(graph, op, weights, input_offset),
                            "bias - input zero point * sum(weights), per out channel")]
    constants += requant_constants(prefix, multipliers)
    constants += post.table_constants(prefix)
    row_len = kw * ic
    dense = ConstArray(f"{prefix}_weights", "int8_t", weights.reshape(-1),
                       "OHWI: rows of kw * ic contiguous weights")
    if sparse:
        # Scalar and DSP code skip all-zero slices: per out channel [ky][connected in
        # channel][kx]. Helium keeps dense rows (zeros included): a row costs a couple of
        # 16-lane vector MACs whatever its zeros, which beats per-channel code.
        packed = [weights[o][:, :, active[o]].transpose(0, 2, 1).reshape(-1) for o in range(oc)]
        starts = np.cumsum([0] + [len(a) for a in active])
        dense.feature = "mve"
        constants += [
            ConstArray(f"{prefix}_weights_sparse", "int8_t",
                       np.concatenate(packed) if packed else np.zeros(0, np.int8),
                       "per out channel: [kh][connected in channel][kw]", feature="scalar"),
            ConstArray(f"{prefix}_in_start", "uint16_t", starts.astype(np.uint16),
                       "connections of out channel c: in_list[in_start[c] .. in_start[c+1])",
                       feature="scalar"),
            ConstArray(f"{prefix}_in_list", "uint16_t",
                       np.array([c for a in active for c in a], dtype=np.uint16),
                       "connected input channels", feature="scalar"),
            dense,
        ]
    else:
        constants.append(dense)
    window = _mve_window(weights, post, (sh, sw))
    if window is not None:
        # Helium runs this step from the window table alone (see _mve_window).
        dense.feature = "scalar"
        constants.append(ConstArray(f"{prefix}_weights_window", "int8_t", window.reshape(-1),
                                    "[oc][pool pixel][vectors]: its kernel placed at its "
                                    "lanes of the packed pool window",
                                    feature="mve"))
    poff = [(dy * sh * iw + dx * sw) * ic for dy, dx in pixels]
    dsp = mlal = None
    if not sparse:
        dsp = _dsp_layout(weights, pixels, (sh, sw), post.pool_filter)
        constants.append(ConstArray(f"{prefix}_weights_dsp", "int32_t", dsp.pop("weights"),
                                    "[oc][ky][pair]: in-order int16 pairs (w0, w1), (w2, w3) "
                                    "of each OHWI row, zero-padded", feature="dsp"))
        mlal = mlal_pairs(weights)
        if mlal is not None:
            constants.append(ConstArray(f"{prefix}_weights_mlal", "int32_t", mlal,
                                        "[out channel pair][ky][kx][in]: w(2j) + w(2j+1) * 2^24",
                                        feature="mlal"))
        # The int8 rows stay for the variants without a layout of their own.
        dense.feature = "+".join(v for v in ("mve", "mlal", "portable")
                                 if not (v == "mve" and window is not None)
                                 and not (v == "mlal" and mlal is not None))
    params = dict(
        prefix=prefix, ic=ic, oc=oc, kh=kh, kw=kw, row_len=row_len, row_stride=iw * ic,
        gh=gh, gw=gw, gsy=group_step[0], gsx=group_step[1], poff=poff, npix=len(poff),
        output_offset=y.quant.zero_point, act_min=act_min, act_max=act_max,
        right_only=all(s <= 0 for _, s in multipliers),
        right_shift=all(s <= -1 for _, s in multipliers),  # lenet5_requantize_right
        pool=post.pool, pool_min=post.pool_min, pool_max=post.pool_max,
        lut=post.table is not None, max_first=max_first,
        row_words=row_len // 4, row_tail=row_len % 4, sparse=sparse,
        mve_chunks=vector_chunks(row_len),
        mve_window=window is not None,
        window_row_bytes=((post.pool_filter[1] - 1) * sw + kw) * ic if window is not None
        else 0,
        window_rows=(post.pool_filter[0] - 1) * sh + kh if window is not None else 0,
        window_chunks=window.shape[2] // 16 if window is not None else 0,
        dsp=dsp,
        mlal=not sparse and mlal is not None,
    )
    fused = len(group) > 1
    steps.append(Step(
        name=prefix + ("_fused" if fused else ""), kernel="conv2d",
        op_indices=tuple(o.index for o in group), input=source, output=final.index,
        params=params, constants=constants, macs_dense=macs_dense,
        macs_executed=gh * gw * len(poff) * kh * kw * sum(len(a) for a in active),
        scratch_bytes=dsp["scratch_bytes"] if dsp else 0))
    return steps


def _dsp_layout(weights: np.ndarray, pixels: list[tuple[int, int]], stride: tuple[int, int],
                pool: tuple[int, int]) -> dict:
    """The DSP conv kernel's plan (templates/kernels/conv2d_dsp.c.j2). Each pool window's
    input rows are widened once to in-order int16 in a scratch buffer (`pitch` elements a
    row); the weights are stored as in-order int16 pairs (w0, w1), (w2, w3)... one int32
    each, a kernel row zero-padded to whole pairs (conv weights only: within the 5 % rule).
    A pixel's reads past its row (at most to `pitch`) meet zero weights; the pads are 0."""
    oc, kh, kw, ic = weights.shape
    sh, sw = stride
    row_len = kw * ic
    pairs = -(-row_len // 2)
    win_len = ((pool[1] - 1) * sw + kw) * ic  # elements of a window row the input holds
    pitch = (pool[1] - 1) * sw * ic + 2 * pairs
    pitch += pitch % 2  # even: every scratch row starts on a word
    rows = (pool[0] - 1) * sh + kh
    padded = np.zeros((oc, kh, 2 * pairs), dtype=np.int64)
    padded[:, :, :row_len] = weights.reshape(oc, kh, row_len)
    words = (padded[..., 0::2] & 0xFFFF) | (padded[..., 1::2] << 16)
    words = ((words + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
    return dict(weights=words.reshape(-1), pairs=pairs,
                one_tap=row_len % 2 == 1,  # the last pair is (w, 0)
                pitch=pitch, rows=rows, win_len=win_len,
                poff=[dy * sh * pitch + dx * sw * ic for dy, dx in pixels],
                scratch_bytes=2 * rows * pitch)


def _mve_window(weights: np.ndarray, post: fusion.Fused,
                stride: tuple[int, int]) -> np.ndarray | None:
    """Helium: when a fused pool window's input (each pool pixel's receptive field, rows
    of ((fw - 1) * sw + kw) * ic bytes) packs into at most 3 vectors, the kernel copies
    it once per window into a small contiguous buffer, and each pool pixel's dot product
    is 1-3 full-vector VMLADAVs against its kernel placed at its lanes of that buffer
    (zero elsewhere). C1 (1 input channel, 5x5, 2x2 pool): a 6x6 window, 36 bytes, 3
    vectors per pixel, where row by row it took 5 partly used, predicated vectors.
    Returns [oc][pool pixel][chunks * 16] int8, or None when it does not apply."""
    if post.pool is None:
        return None
    oc, kh, kw, ic = weights.shape
    fh, fw = post.pool_filter
    sh, sw = stride
    row_bytes = ((fw - 1) * sw + kw) * ic
    rows = (fh - 1) * sh + kh
    chunks = -(-rows * row_bytes // 16)
    if chunks > 3:
        return None
    table = np.zeros((oc, fh * fw, chunks * 16), dtype=np.int8)
    for dy in range(fh):
        for dx in range(fw):
            for ky in range(kh):
                start = (dy * sh + ky) * row_bytes + dx * sw * ic
                table[:, dy * fw + dx, start:start + kw * ic] = \
                    weights[:, ky].reshape(oc, kw * ic)
    return table
