"""Lower the validated IR into steps: one kernel instance per op, with its constants.

Each step names the kernel template that implements it (templates/kernels/<kernel>.c.j2),
so a later pass can choose another kernel per op (per-core DSP/Helium variants) or fuse
steps without touching the reader or the emitter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lenet_edge.codegen.ir import Graph, Op
from lenet_edge.codegen.quantmath import (
    activation_range,
    conv_multipliers,
    fc_per_tensor_multiplier,
    padding_offsets,
)


@dataclass
class ConstArray:
    name: str
    ctype: str  # "int8_t", "int32_t", "uint16_t", ...
    values: np.ndarray  # flat
    comment: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.values.size * np.dtype(self.values.dtype).itemsize)


@dataclass
class Step:
    name: str  # C function name
    kernel: str  # template name under templates/kernels/
    op_indices: tuple[int, ...]
    input: int  # tensor index read
    output: int  # tensor index written
    params: dict = field(default_factory=dict)
    constants: list[ConstArray] = field(default_factory=list)
    traced: tuple[int, ...] = ()  # tensors reported to the trace callback after this step
    macs_dense: int = 0
    macs_executed: int = 0
    alias: bool = False  # output shares the input's memory (RESHAPE): no code
    in_place_ok: bool = False  # the kernel may write its output over its input
    in_place: bool = False  # set by the memory plan
    title: str = ""  # "op 3 CONV_2D", set by the emitter


@dataclass
class Program:
    graph: Graph
    input: int  # tensor index the C API's input fills
    output: int  # tensor index the C API's output receives
    steps: list[Step]

    @property
    def constants(self) -> list[ConstArray]:
        return [c for s in self.steps for c in s.constants]


def lower(graph: Graph) -> Program:
    ops = list(graph.ops)
    c_input, c_output = graph.inputs[0], graph.outputs[0]
    # Boundary float conversions stay outside the C library: it takes and returns int8.
    if ops and ops[0].kind == "QUANTIZE":
        c_input = ops.pop(0).outputs[0]
    if ops and ops[-1].kind == "DEQUANTIZE":
        c_output = ops.pop().inputs[0]
    steps = [_LOWER[op.kind](graph, op) for op in ops]
    for step in steps:
        step.traced = (step.output,)
    return Program(graph=graph, input=c_input, output=c_output, steps=steps)


def _io(graph: Graph, op: Op):
    return graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])


def _name(op: Op) -> str:
    return f"op{op.index}_{op.kind.lower()}"


def _requant_constants(prefix: str, pairs: list[tuple[int, int]]) -> list[ConstArray]:
    return [
        ConstArray(f"{prefix}_multiplier", "int32_t",
                   np.array([m for m, _ in pairs], dtype=np.int32), "Q31 multipliers"),
        ConstArray(f"{prefix}_shift", "int8_t",
                   np.array([s for _, s in pairs], dtype=np.int8), "power-of-two exponents"),
    ]


def _bias(graph: Graph, op: Op, prefix: str) -> list[ConstArray]:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = graph.tensor(op.inputs[2]).data.reshape(-1).astype(np.int32)
        return [ConstArray(f"{prefix}_bias", "int32_t", b, "int32 bias, scale s_in*s_w[c]")]
    return []


def _lower_conv(graph: Graph, op: Op) -> Step:
    x, y = _io(graph, op)
    w = graph.tensor(op.inputs[1])
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    _, kh, kw, _ = w.shape
    sh, sw = op.options["stride"]
    pad = op.options["padding"]
    prefix = _name(op)
    weights = w.data.astype(np.int8)  # OHWI
    # (out_channel, in_channel) slices that are all zero contribute exactly 0: skip them.
    active = [[c for c in range(ic) if weights[o, :, :, c].any()] for o in range(oc)]
    sparse = sum(len(a) for a in active) < oc * ic
    constants = []
    if sparse:
        packed = [weights[o][:, :, active[o]].reshape(-1) for o in range(oc)]
        starts = np.cumsum([0] + [len(a) for a in active])
        idx_type = np.uint8 if ic <= 256 else np.uint16
        constants += [
            ConstArray(f"{prefix}_weights", "int8_t",
                       np.concatenate(packed) if packed else np.zeros(0, np.int8),
                       "per out channel: [kh][kw][connected in channels]"),
            ConstArray(f"{prefix}_in_start", "uint16_t", starts.astype(np.uint16),
                       "connections of out channel c: in_list[in_start[c] .. in_start[c+1])"),
            ConstArray(f"{prefix}_in_list", "uint8_t" if idx_type == np.uint8 else "uint16_t",
                       np.array([c for a in active for c in a], dtype=idx_type),
                       "connected input channels"),
        ]
    else:
        constants.append(ConstArray(f"{prefix}_weights", "int8_t", weights.reshape(-1),
                                    "OHWI"))
    bias = _bias(graph, op, prefix)
    constants += bias
    constants += _requant_constants(prefix, conv_multipliers(
        x.quant.scale, w.quant.scales, y.quant.scale, oc))
    act_min, act_max = activation_range(op.options["activation"], y.quant.scale,
                                        y.quant.zero_point)
    params = dict(
        ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw,
        ph=padding_offsets(pad, sh, 1, ih, kh, oh), pw=padding_offsets(pad, sw, 1, iw, kw, ow),
        input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
        act_min=act_min, act_max=act_max, has_bias=bool(bias), prefix=prefix,
    )
    # Taps that fall in the padding are not computed (by TFLM either): count valid ones.
    taps = _valid_taps(ih, iw, oh, ow, kh, kw, sh, sw, params["ph"], params["pw"])
    dense = taps * ic * oc
    executed = taps * sum(len(a) for a in active)
    return Step(name=prefix, kernel="conv2d_sparse" if sparse else "conv2d",
                op_indices=(op.index,), input=x.index, output=y.index, params=params,
                constants=constants, macs_dense=dense, macs_executed=executed)


def _valid_taps(ih, iw, oh, ow, kh, kw, sh, sw, ph, pw) -> int:
    rows = sum(1 for oy in range(oh) for ky in range(kh) if 0 <= oy * sh - ph + ky < ih)
    cols = sum(1 for ox in range(ow) for kx in range(kw) if 0 <= ox * sw - pw + kx < iw)
    return rows * cols


def _lower_fc(graph: Graph, op: Op) -> Step:
    x, y = _io(graph, op)
    w = graph.tensor(op.inputs[1])
    n_out, n_in = w.shape
    prefix = _name(op)
    if w.quant.per_channel:
        pairs = conv_multipliers(x.quant.scale, w.quant.scales, y.quant.scale, n_out)
    else:
        pairs = [fc_per_tensor_multiplier(x.quant.scale, w.quant.scale, y.quant.scale)] * n_out
    bias = _bias(graph, op, prefix)
    constants = [ConstArray(f"{prefix}_weights", "int8_t", w.data.astype(np.int8).reshape(-1),
                            "[out][in]")] + bias + _requant_constants(prefix, pairs)
    act_min, act_max = activation_range(op.options["activation"], y.quant.scale,
                                        y.quant.zero_point)
    params = dict(n_in=n_in, n_out=n_out, per_channel=w.quant.per_channel,
                  input_offset=-x.quant.zero_point,
                  output_offset=y.quant.zero_point, act_min=act_min, act_max=act_max,
                  has_bias=bool(bias), prefix=prefix)
    return Step(name=prefix, kernel="fully_connected", op_indices=(op.index,), input=x.index,
                output=y.index, params=params, constants=constants,
                macs_dense=n_in * n_out, macs_executed=n_in * n_out)


def _lower_pool(graph: Graph, op: Op) -> Step:
    x, y = _io(graph, op)
    _, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    sh, sw = op.options["stride"]
    fh, fw = op.options["filter"]
    pad = op.options["padding"]
    act_min, act_max = activation_range(op.options["activation"], y.quant.scale,
                                        y.quant.zero_point)
    params = dict(ih=ih, iw=iw, c=c, oh=oh, ow=ow, sh=sh, sw=sw, fh=fh, fw=fw,
                  ph=padding_offsets(pad, sh, 1, ih, fh, oh),
                  pw=padding_offsets(pad, sw, 1, iw, fw, ow), act_min=act_min, act_max=act_max)
    kernel = "max_pool" if op.kind == "MAX_POOL_2D" else "avg_pool"
    return Step(name=_name(op), kernel=kernel, op_indices=(op.index,), input=x.index,
                output=y.index, params=params)


def _lower_lut(graph: Graph, op: Op) -> Step:
    from lenet_edge.codegen.tables import elementwise_table

    x, y = _io(graph, op)
    table = elementwise_table(op.kind, x.quant, y.quant)
    prefix = _name(op)
    return Step(name=prefix, kernel="lut", op_indices=(op.index,), input=x.index,
                output=y.index, params=dict(size=x.size, prefix=prefix), in_place_ok=True,
                constants=[ConstArray(f"{prefix}_table", "int8_t", table,
                                      f"TFLM int8 {op.kind.lower()}, index = input + 128")])


def _lower_reshape(graph: Graph, op: Op) -> Step:
    x, y = _io(graph, op)
    return Step(name=_name(op), kernel="copy", op_indices=(op.index,), input=x.index,
                output=y.index, params=dict(size=x.size), alias=True)


def _lower_pad(graph: Graph, op: Op) -> Step:
    x, y = _io(graph, op)
    pads = graph.tensor(op.inputs[1]).data.astype(np.int64)
    lead = (4 - len(x.shape))
    in_shape = (1,) * lead + tuple(x.shape)
    out_shape = (1,) * lead + tuple(y.shape)
    before = [0] * lead + [int(p[0]) for p in pads]
    return Step(name=_name(op), kernel="pad", op_indices=(op.index,), input=x.index,
                output=y.index, params=dict(in_shape=in_shape, out_shape=out_shape,
                                            before=before, value=y.quant.zero_point))


_LOWER = {
    "CONV_2D": _lower_conv,
    "FULLY_CONNECTED": _lower_fc,
    "AVERAGE_POOL_2D": _lower_pool,
    "MAX_POOL_2D": _lower_pool,
    "TANH": _lower_lut,
    "LOGISTIC": _lower_lut,
    "RESHAPE": _lower_reshape,
    "PAD": _lower_pad,
}
