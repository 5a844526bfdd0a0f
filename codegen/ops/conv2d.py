"""CONV_2D, TFLM's int8 ConvPerChannel: the input zero point folded into the bias and SAME
padding as a bordered copy of the input (steps.py's geometry, requantization and bordered
copy, shared with DEPTHWISE_CONV_2D). (out, in) channel slices that are all zero (LeNet's
connection tables) are neither stored nor multiplied by the scalar and DSP code. A conv
whose window is its whole input is a dot product: ops/fully_connected.py lowers it.

Fused (ops/fusion.py): a TANH/LOGISTIC table and a non-overlapping VALID pool (or a 2x2
stride-2 depthwise subsampling and its table) after it; a pooled output is then computed
from its pool window's conv pixels in registers.

Kernel: ops/conv2d.c.j2 (portable C and the dispatch), with a file per variant:
conv2d_dsp.c.j2 (SMLAD on widened rows, `_dsp_layout`), conv2d_mlal.c.j2 (two out channels
an SMLAL, `fully_connected.mlal_pairs`), conv2d_mve.c.j2 (Helium: the parts of the portable
loop nest it replaces, `_mve_window` or 16-lane rows), conv2d_v6m.c.j2 (ARMv6-M asm), and
the fused epilogue every variant ends with, conv2d_post.j2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite

from lenet_edge.codegen import options
from lenet_edge.codegen.checks import Unsupported, check_conv_io, check_conv_output, unary_io
from lenet_edge.codegen.checks import check_requantization, check_weights
from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.ops import fully_connected, fusion
from lenet_edge.codegen.ops.fully_connected import mlal_pairs, vector_chunks
from lenet_edge.codegen.steps import ConstArray, Step, conv_geometry, conv_requantization
from lenet_edge.codegen.steps import folded_bias, padded_input, requant_constants, step_name
from lenet_edge.quantmath import conv_multipliers

KINDS = ("CONV_2D",)
OPTIONS = {"CONV_2D": "Conv2DOptions"}  # the table TFLM's parser reads
INPUTS = ((2, 3), (2,))  # input, weights, optional bias (-1 when absent)
FUSES = (fusion.TABLE, fusion.POOL, fusion.SUBSAMPLE)  # what its step may absorb after it


def read_options(kind: str, table) -> dict:
    o = tflite.Conv2DOptions()
    o.Init(table.Bytes, table.Pos)
    return options.convolution(o)


def check(graph: Graph, op: Op) -> None:
    x, y = unary_io(graph, op)
    check_conv_io(op, x, y)
    w = check_weights(graph, op, 4, y.shape[3])
    check_requantization(conv_multipliers(x.quant.scale, w.quant.scales, y.quant.scale,
                                          y.shape[3]), x, y)
    if w.shape[0] != y.shape[3] or w.shape[3] != x.shape[3]:
        raise Unsupported(f"weights shape {w.shape} does not match input {x.shape} / output "
                          f"{y.shape} (grouped convolution)")
    check_conv_output(op, x, w, y)


@dataclass(frozen=True)
class DspLayout:
    """The DSP kernel's plan (conv2d_dsp.c.j2, from `_dsp_layout`): ``rows`` scratch rows of
    ``pitch`` int16 (``scratch_bytes`` in all), of which a window row fills ``win_len``;
    ``pairs`` int16 weight pairs a kernel row, the last one (w, 0) when ``one_tap``; ``poff``:
    each pool pixel's offset in the scratch, in int16 elements."""

    pairs: int
    one_tap: bool
    pitch: int
    rows: int
    win_len: int
    poff: tuple[int, ...]
    scratch_bytes: int


@dataclass(frozen=True)
class ConvParams:
    """What conv2d.c.j2 (and its variant files) render: ``gh`` x ``gw`` x ``oc`` outputs
    (pooled when ``pool``), the output pixel (gy, gx)'s input at ``gy * gsy + gx * gsx``,
    each of its ``npix`` conv pixels at ``poff``; kernel ``kh`` x ``kw`` x ``ic``, rows of
    ``row_len`` bytes ``row_stride`` apart in the (bordered) input. The constants are
    ``<prefix>_bias``, ``_multiplier``, ``_shift`` (``_table`` with ``lut``) and the weights:
    ``_weights`` (OHWI), ``_weights_sparse`` + ``_in_start`` + ``_in_list`` when ``sparse``,
    ``_weights_window`` with ``mve_window`` (``window_rows`` rows of ``window_row_bytes`` in
    ``window_chunks`` vectors), ``_weights_dsp`` with ``dsp``, ``_weights_mlal`` with
    ``mlal``. ``right_only`` / ``right_shift``: every shift is <= 0 / <= -1; ``max_first``:
    max-pool the accumulators, then requantize once."""

    prefix: str
    ic: int
    oc: int
    kh: int
    kw: int
    row_len: int
    row_stride: int
    gh: int
    gw: int
    gsy: int
    gsx: int
    poff: tuple[int, ...]
    output_offset: int
    act_min: int
    act_max: int
    right_only: bool
    right_shift: bool
    pool: str | None
    pool_min: int
    pool_max: int
    lut: bool
    max_first: bool
    sparse: bool
    mve_chunks: tuple[tuple[int, int], ...]
    mve_window: bool
    window_row_bytes: int
    window_rows: int
    window_chunks: int
    dsp: DspLayout | None
    mlal: bool
    # pool "subsampling" (fusion.Subsample): its requantization's output zero point, clamp,
    # shifts all <= -1, table.
    sub_output_offset: int = 0
    sub_min: int = -128
    sub_max: int = 127
    sub_right_shift: bool = False
    sub_lut: bool = False

    @property
    def npix(self) -> int:
        """Conv pixels per output (the pool window's, else 1)."""
        return len(self.poff)


def lower(graph: Graph, op: Op) -> list[Step]:
    return lower_group(graph, [op])


def lower_group(graph: Graph, group: list[Op], optimize: str = "size") -> list[Step]:
    """The steps of ``group`` (the conv and what `fusion.fusable_group` gave it): the
    bordered input's copy, if any, then the conv's."""
    op = group[0]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    final = graph.tensor(group[-1].outputs[0])
    w = graph.tensor(op.inputs[1])
    ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, ph, pw = conv_geometry(graph, op)
    prefix = step_name(op)
    weights = w.data.astype(np.int8)  # OHWI
    active = [[c for c in range(ic) if weights[o, :, :, c].any()] for o in range(oc)]
    sparse = sum(len(a) for a in active) < oc * ic
    # An input exactly the kernel's size with one output pixel is a fully connected layer,
    # unless a connection table zeroes whole (out, in) channel slices (LeNet-4's F5): the
    # conv kernel skips those exactly, the dense fully connected one would store and
    # multiply them.
    if oh == ow == 1 and ih == kh and iw == kw and ph == pw == 0 and not sparse \
            and all(o.kind != "DEPTHWISE_CONV_2D" for o in group):
        return [fully_connected.lower_step(graph, group, conv=True, optimize=optimize)]
    # Dense: every tap of every output (padding taps included, as a MAC count usually is).
    macs_dense = oh * ow * kh * kw * ic * oc
    steps, source, ih, iw = padded_input(graph, op, x, (kh, kw), (oh, ow), (ph, pw), prefix)
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
    constants = [ConstArray(f"{prefix}_bias", "int32_t",
                            folded_bias(graph, op, weights, -x.quant.zero_point),
                            "bias - input zero point * sum(weights), per out channel")]
    constants += requant_constants(prefix, multipliers)
    constants += post.table_constants(prefix)
    row_len = kw * ic
    dense = ConstArray(f"{prefix}_weights", "int8_t", weights.reshape(-1),
                       "OHWI: rows of kw * ic contiguous weights")
    if sparse:
        constants += _sparse_constants(prefix, weights, active)
        dense.feature = "mve"
    constants.append(dense)
    window = _mve_window(weights, post, (sh, sw))
    if window is not None:
        # Helium runs this step from the window table alone (see _mve_window).
        dense.feature = "scalar"
        constants.append(ConstArray(f"{prefix}_weights_window", "int8_t", window.reshape(-1),
                                    "[oc][pool pixel][vectors]: its kernel placed at its "
                                    "lanes of the packed pool window",
                                    feature="mve"))
    poff = tuple((dy * sh * iw + dx * sw) * ic for dy, dx in pixels)
    dsp = mlal = None
    if not sparse:
        dsp_weights, dsp = _dsp_layout(weights, pixels, (sh, sw), post.pool_filter)
        constants.append(ConstArray(f"{prefix}_weights_dsp", "int32_t", dsp_weights,
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
    params = ConvParams(
        prefix=prefix, ic=ic, oc=oc, kh=kh, kw=kw, row_len=row_len, row_stride=iw * ic,
        gh=gh, gw=gw, gsy=group_step[0], gsx=group_step[1], poff=poff,
        output_offset=y.quant.zero_point, act_min=act_min, act_max=act_max,
        right_only=all(s <= 0 for _, s in multipliers),
        right_shift=all(s <= -1 for _, s in multipliers),  # lenet5_requantize_right
        pool=post.pool, pool_min=post.pool_min, pool_max=post.pool_max,
        lut=post.table is not None, max_first=max_first, sparse=sparse,
        mve_chunks=vector_chunks(row_len), mve_window=window is not None,
        window_row_bytes=((post.pool_filter[1] - 1) * sw + kw) * ic if window is not None
        else 0,
        window_rows=(post.pool_filter[0] - 1) * sh + kh if window is not None else 0,
        window_chunks=window.shape[2] // 16 if window is not None else 0,
        dsp=dsp, mlal=mlal is not None, **_sub_params(post.sub))
    sub_macs = gh * gw * len(poff) * oc if post.sub else 0  # the subsampling's, as unfused
    steps.append(Step(
        name=prefix + ("_fused" if len(group) > 1 else ""), kernel="conv2d",
        op_indices=tuple(o.index for o in group), input=source, output=final.index,
        params=params, constants=constants, macs_dense=macs_dense + sub_macs,
        macs_executed=gh * gw * len(poff) * kh * kw * sum(len(a) for a in active) + sub_macs,
        scratch_bytes=dsp.scratch_bytes if dsp else 0))
    return steps


def _sub_params(sub: fusion.Subsample | None) -> dict:
    """ConvParams' ``sub_*`` fields for a fused subsampling (none without one)."""
    if sub is None:
        return {}
    return dict(sub_output_offset=sub.output_offset, sub_min=sub.act_min, sub_max=sub.act_max,
                sub_right_shift=all(s <= -1 for _, s in sub.multipliers),
                sub_lut=sub.table is not None)


def _sparse_constants(prefix: str, weights: np.ndarray,
                      active: list[list[int]]) -> list[ConstArray]:
    """Scalar and DSP code skip all-zero slices: per out channel [ky][connected in
    channel][kx], and where each out channel's connections are. Helium keeps dense rows
    (zeros included): a row costs a couple of 16-lane vector MACs whatever its zeros,
    which beats per-channel code."""
    oc = weights.shape[0]
    packed = [weights[o][:, :, active[o]].transpose(0, 2, 1).reshape(-1) for o in range(oc)]
    starts = np.cumsum([0] + [len(a) for a in active])
    return [
        ConstArray(f"{prefix}_weights_sparse", "int8_t",
                   np.concatenate(packed) if packed else np.zeros(0, np.int8),
                   "per out channel: [kh][connected in channel][kw]", feature="scalar"),
        ConstArray(f"{prefix}_in_start", "uint16_t", starts.astype(np.uint16),
                   "connections of out channel c: in_list[in_start[c] .. in_start[c+1])",
                   feature="scalar"),
        ConstArray(f"{prefix}_in_list", "uint16_t",
                   np.array([c for a in active for c in a], dtype=np.uint16),
                   "connected input channels", feature="scalar"),
    ]


def _dsp_layout(weights: np.ndarray, pixels: list[tuple[int, int]], stride: tuple[int, int],
                pool: tuple[int, int]) -> tuple[np.ndarray, DspLayout]:
    """The DSP kernel's weights and plan (conv2d_dsp.c.j2). Each pool window's input rows
    are widened once to in-order int16 in a scratch buffer (`pitch` elements a row); the
    weights are stored as in-order int16 pairs (w0, w1), (w2, w3)... one int32 each, a
    kernel row zero-padded to whole pairs (conv weights only: within the 5 % rule). A
    pixel's reads past its row (at most to `pitch`) meet zero weights; the pads are 0."""
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
    return words.reshape(-1), DspLayout(
        pairs=pairs, one_tap=row_len % 2 == 1,  # the last pair is (w, 0)
        pitch=pitch, rows=rows, win_len=win_len,
        poff=tuple(dy * sh * pitch + dx * sw * ic for dy, dx in pixels),
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
