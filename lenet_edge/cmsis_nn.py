"""The same int8 model on Arm's CMSIS-NN kernels: the benchmark's anchor, built in the same run.

`write_cmsis_nn_library(model_bytes, export_dir, cmsis_dir, out_dir)` writes, into
``out_dir/c/``, a drop-in replacement for the generated library (same `lenet5_model.h` API,
so the same firmware, protocol and bench measure it): a small driver that runs the model
op by op as TFLM's CMSIS-NN backend does (arm_convolve_wrapper_s8, arm_max_pool_s8,
arm_avgpool_s8, arm_fully_connected_per_channel_s8 / arm_fully_connected_s8), with the
model's own quantization parameters derived exactly as TFLM derives them (codegen's
quantmath). TANH/LOGISTIC have no int8 CMSIS-NN kernel (TFLM runs its reference kernel);
the driver applies TFLM's exact 256-entry table, as the generated code does.

CMSIS-NN itself is never copied into this repository: the driver's folder gets one small
wrapper .c per CMSIS-NN source file (it #includes the file from the checkout given on the
command line) and a copy of the checkout's Include/ folder (CMSIS-NN includes its headers
with quotes, so they must sit on the model folder's include path).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError
from lenet_edge.layout import ExportLayout

# CMSIS-NN sources the int8 LeNet ops need (unused functions are dropped at link time by
# --gc-sections; listing only these keeps 9 boards' builds quick).
SOURCES = (
    "ConvolutionFunctions/arm_convolve_wrapper_s8.c",
    "ConvolutionFunctions/arm_convolve_s8.c",
    "ConvolutionFunctions/arm_convolve_1x1_s8.c",
    "ConvolutionFunctions/arm_convolve_1x1_s8_fast.c",
    "ConvolutionFunctions/arm_convolve_1_x_n_s8.c",
    "ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c",
    "ConvolutionFunctions/arm_nn_mat_mult_kernel_s8_s16.c",
    "ConvolutionFunctions/arm_nn_mat_mult_kernel_row_offset_s8_s16.c",
    "ConvolutionFunctions/arm_nn_mat_mult_s8.c",
    "FullyConnectedFunctions/arm_fully_connected_s8.c",
    "FullyConnectedFunctions/arm_fully_connected_per_channel_s8.c",
    "FullyConnectedFunctions/arm_fully_connected_get_buffer_sizes_s8.c",
    "FullyConnectedFunctions/arm_vector_sum_s8.c",
    "PoolingFunctions/arm_max_pool_s8.c",
    "PoolingFunctions/arm_avgpool_s8.c",
    "PoolingFunctions/arm_avgpool_get_buffer_sizes_s8.c",
    "NNSupportFunctions/arm_nn_mat_mult_nt_t_s8.c",
    "NNSupportFunctions/arm_nn_mat_mult_nt_t_s8_s32.c",
    "NNSupportFunctions/arm_nn_vec_mat_mult_t_s8.c",
    "NNSupportFunctions/arm_nn_vec_mat_mult_t_per_ch_s8.c",
    "NNSupportFunctions/arm_nn_mat_mul_core_1x_s8.c",
    "NNSupportFunctions/arm_nn_mat_mul_core_4x_s8.c",
    "NNSupportFunctions/arm_q7_to_q15_with_offset.c",
    "NNSupportFunctions/arm_s8_to_s16_unordered_with_offset.c",
)
DRIVER = "lenet5_cmsis_nn.c"
# CMSIS-NN is not written for this project's -Wall -Wextra -Werror -std=c99; its own
# warnings are not ours to fix, so its wrappers silence them.
_QUIET = ("-Wunused-parameter", "-Wunused-variable", "-Wunused-function", "-Wsign-compare",
          "-Wmissing-field-initializers", "-Wimplicit-fallthrough", "-Wcast-qual",
          "-Wpedantic", "-Wtype-limits", "-Wunused-but-set-variable", "-Wmaybe-uninitialized",
          "-Wstrict-aliasing", "-Wimplicit-function-declaration")


def check_checkout(cmsis_dir: Path) -> Path:
    cmsis_dir = Path(cmsis_dir).resolve()
    if not cmsis_dir.is_dir():
        raise LenetEdgeError(f"--cmsis-nn {cmsis_dir}: no such folder (a CMSIS-NN checkout)")
    missing = [s for s in SOURCES if not (cmsis_dir / "Source" / s).is_file()]
    if not (cmsis_dir / "Include" / "arm_nnfunctions.h").is_file() or missing:
        raise LenetEdgeError(
            f"--cmsis-nn {cmsis_dir}: not a CMSIS-NN checkout with the int8 kernels "
            f"(missing {'Include/arm_nnfunctions.h' if not missing else missing[0]})")
    return cmsis_dir


def write_cmsis_nn_library(model_bytes: bytes, export_dir: Path, cmsis_dir: Path,
                           out_dir: Path) -> Path:
    """``export_dir``: the generated library's export (its header and traced tensors are
    reused, so both builds report the same layers). Returns ``out_dir`` (an export folder
    that `build_firmware` accepts)."""
    from lenet_edge.codegen.reader import parse_model
    from lenet_edge.codegen.validate import validate_graph

    cmsis_dir = check_checkout(cmsis_dir)
    graph = parse_model(model_bytes, "model.tflite")
    validate_graph(graph)
    header = ExportLayout(export_dir).header().read_text(encoding="utf-8")
    traced = [int(t) for t in re.search(r"LENET5_TRACED_TENSOR_INDICES \{([^}]*)\}",
                                        header).group(1).split(",")]
    driver, arena_bytes = _driver(graph, traced)
    c_dir = ExportLayout(out_dir).c_dir
    if c_dir.is_dir():
        shutil.rmtree(c_dir)
    c_dir.mkdir(parents=True)
    header = re.sub(r"#define LENET5_ARENA_BYTES \d+", f"#define LENET5_ARENA_BYTES {arena_bytes}",
                    header)
    header = header.replace("#define LENET5_MODEL_H\n", "#define LENET5_MODEL_H\n"
                            "/* CMSIS-NN build of the model (lenet-edge bench --cmsis-nn). */\n", 1)
    (c_dir / "lenet5_model.h").write_text(header, encoding="utf-8")
    (c_dir / DRIVER).write_text(driver, encoding="utf-8")
    shutil.copytree(cmsis_dir / "Include", c_dir, dirs_exist_ok=True)
    pragmas = "".join(f'#pragma GCC diagnostic ignored "{w}"\n' for w in _QUIET)
    for source in SOURCES:
        name = "cmsis_" + Path(source).name
        (c_dir / name).write_text(
            "/* Compiles CMSIS-NN's own file from the checkout (not part of lenet-edge). */\n"
            + pragmas + f'#include "{cmsis_dir / "Source" / source}"\n', encoding="utf-8")
    return Path(out_dir)


def _c_array(ctype: str, name: str, values) -> str:
    values = [int(v) for v in np.asarray(values).reshape(-1)]
    body = ",\n".join("    " + ", ".join(str(v) for v in values[i:i + 16])
                      for i in range(0, len(values), 16))
    return f"static const {ctype} {name}[{max(len(values), 1)}] = {{\n{body}\n}};\n"


def _driver(graph, traced: list[int]) -> tuple[str, int]:
    """(C text, bytes of its static RAM) for the graph, run op by op."""
    from lenet_edge.quantmath import (
        activation_range,
        conv_multipliers,
        fc_per_tensor_multiplier,
        padding_offsets,
    )
    from lenet_edge.codegen.lower import int8_body
    from lenet_edge.codegen.tables import elementwise_table

    ops, c_input, c_output = int8_body(graph)  # the same int8 part as our library's
    consts: list[str] = []
    body: list[str] = []
    init: list[str] = []
    ram: list[str] = []
    scratch = 0
    sizes = [0, 0]  # each activation buffer holds every other op's output
    buffers = {c_input: "input"}  # tensor -> C expression of its data
    flip = 0

    def out_buffer(op):
        nonlocal flip
        t = op.outputs[0]
        if t == c_output:
            buffers[t] = "output"
        else:
            buffers[t] = f"lenet5_act{flip}"
            sizes[flip] = max(sizes[flip], graph.tensor(t).size)
            flip ^= 1
        return buffers[t]

    for op in ops:
        x = graph.tensor(op.inputs[0])
        y = graph.tensor(op.outputs[0])
        p = f"op{op.index}"
        src = buffers[x.index]
        if op.kind == "RESHAPE":
            buffers[y.index] = src
            if y.index == c_output:
                body.append(f"    memcpy(output, {src}, {y.size});")
            continue
        if op.kind in ("TANH", "LOGISTIC") and src.startswith("lenet5_act") \
                and y.index != c_output:
            dst = buffers[y.index] = src  # a table lookup can run in place
        else:
            dst = out_buffer(op)
        if op.kind in ("CONV_2D", "FULLY_CONNECTED"):
            w = graph.tensor(op.inputs[1])
            weights = w.data.astype(np.int8)
            n_out = weights.shape[0]
            n_in = int(weights.size // n_out)
            bias = (graph.tensor(op.inputs[2]).data.reshape(-1).astype(np.int32)
                    if len(op.inputs) > 2 and op.inputs[2] >= 0 else np.zeros(n_out, np.int32))
            act = activation_range(op.options["activation"], y.quant.scale, y.quant.zero_point)
            per_channel = op.kind == "CONV_2D" or w.quant.per_channel
            if per_channel:
                pairs = conv_multipliers(x.quant.scale, w.quant.scales, y.quant.scale, n_out)
            else:
                pairs = [fc_per_tensor_multiplier(x.quant.scale, w.quant.scale, y.quant.scale)]
            consts += [_c_array("int8_t", f"{p}_weights", weights),
                       _c_array("int32_t", f"{p}_bias", bias),
                       _c_array("int32_t", f"{p}_multiplier", [m for m, _ in pairs]),
                       _c_array("int32_t", f"{p}_shift", [s for _, s in pairs])]
            quant = (f"const cmsis_nn_per_channel_quant_params q = "
                     f"{{(int32_t *){p}_multiplier, (int32_t *){p}_shift}};")
            if op.kind == "CONV_2D":
                _, ih, iw, ic = x.shape
                _, oh, ow, _ = y.shape
                _, kh, kw, _ = w.shape
                sh, sw = op.options["stride"]
                dh, dw = op.options.get("dilation", (1, 1))
                ph = padding_offsets(op.options["padding"], sh, dh, ih, kh, oh)
                pw = padding_offsets(op.options["padding"], sw, dw, iw, kw, ow)
                rhs = kh * kw * ic
                # arm_convolve_wrapper_s8_get_buffer_size: DSP 2 x int16 columns (rounded
                # to 4), Helium 4 x 16-byte-rounded columns; checked at run time too.
                need = max(4 * (-(-rhs // 4) * 4), 64 * -(-rhs // 16))
                scratch = max(scratch, need)
                body.append(f"""    {{ /* op {op.index} CONV_2D: arm_convolve_wrapper_s8 */
        const cmsis_nn_conv_params cp = {{{-x.quant.zero_point}, {y.quant.zero_point}, {{{sw}, {sh}}}, {{{pw}, {ph}}}, {{{dw}, {dh}}}, {{{act[0]}, {act[1]}}}}};
        {quant}
        const cmsis_nn_dims in = {{1, {ih}, {iw}, {ic}}}, fd = {{{n_out}, {kh}, {kw}, {ic}}},
                            bd = {{1, 1, 1, {n_out}}}, od = {{1, {oh}, {ow}, {n_out}}};
        const cmsis_nn_context c = {{lenet5_scratch, (int32_t)sizeof lenet5_scratch}};
        if (arm_convolve_wrapper_s8_get_buffer_size(&cp, &in, &fd, &od) > (int32_t)sizeof lenet5_scratch ||
            arm_convolve_wrapper_s8(&c, &cp, &q, &in, {src}, &fd, {p}_weights, &bd, {p}_bias, &od, {dst}) != ARM_CMSIS_NN_SUCCESS) {{
            return -2;
        }}
    }}""")
            else:
                fc = (f"const cmsis_nn_fc_params fp = {{{-x.quant.zero_point}, 0, "
                      f"{y.quant.zero_point}, {{{act[0]}, {act[1]}}}}};")
                dims = (f"const cmsis_nn_dims in = {{1, 1, 1, {n_in}}}, fd = {{{n_in}, 1, 1, "
                        f"{n_out}}}, bd = {{1, 1, 1, {n_out}}}, od = {{1, 1, 1, {n_out}}};")
                # Helium: TFLM's Prepare stores bias + input_offset * sum(w) per row.
                ram.append(f"#if defined(ARM_MATH_MVEI)\nstatic int32_t {p}_sums[{n_out}];\n"
                           f"#define {p.upper()}_CTX {{{p}_sums, (int32_t)sizeof {p}_sums}}\n"
                           f"#else\n#define {p.upper()}_CTX {{NULL, 0}}\n#endif\n")
                init.append(f"#if defined(ARM_MATH_MVEI)\n    arm_vector_sum_s8({p}_sums, "
                            f"{n_in}, {n_out}, {p}_weights, {-x.quant.zero_point}, 0, "
                            f"{p}_bias);\n#endif")
                ctx = f"const cmsis_nn_context c = {p.upper()}_CTX;"
                if per_channel:
                    call = (f"arm_fully_connected_per_channel_s8(&c, &fp, &q, &in, {src}, &fd, "
                            f"{p}_weights, &bd, {p}_bias, &od, {dst})")
                else:
                    quant = (f"const cmsis_nn_per_tensor_quant_params q = {{{pairs[0][0]}, "
                             f"{pairs[0][1]}}};")
                    call = (f"arm_fully_connected_s8(&c, &fp, &q, &in, {src}, &fd, "
                            f"{p}_weights, &bd, {p}_bias, &od, {dst})")
                body.append(f"""    {{ /* op {op.index} FULLY_CONNECTED */
        {fc}
        {quant}
        {dims}
        {ctx}
        if ({call} != ARM_CMSIS_NN_SUCCESS) {{
            return -2;
        }}
    }}""")
        elif op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            _, ih, iw, ch = x.shape
            _, oh, ow, _ = y.shape
            sh, sw = op.options["stride"]
            fh, fw = op.options["filter"]
            ph = padding_offsets(op.options["padding"], sh, 1, ih, fh, oh)
            pw = padding_offsets(op.options["padding"], sw, 1, iw, fw, ow)
            act = activation_range(op.options["activation"], y.quant.scale, y.quant.zero_point)
            if op.kind == "MAX_POOL_2D":
                call = f"arm_max_pool_s8(&c, &pp, &in, {src}, &fd, &od, {dst})"
                ctx = "const cmsis_nn_context c = {NULL, 0};"
            else:
                scratch = max(scratch, 4 * ch)
                call = (f"arm_avgpool_s8_get_buffer_size({ow}, {ch}) > (int32_t)sizeof "
                        f"lenet5_scratch || arm_avgpool_s8(&c, &pp, &in, {src}, &fd, &od, {dst})")
                ctx = ("const cmsis_nn_context c = {lenet5_scratch, "
                       "(int32_t)sizeof lenet5_scratch};")
            body.append(f"""    {{ /* op {op.index} {op.kind} */
        const cmsis_nn_pool_params pp = {{{{{sw}, {sh}}}, {{{pw}, {ph}}}, {{{act[0]}, {act[1]}}}}};
        const cmsis_nn_dims in = {{1, {ih}, {iw}, {ch}}}, fd = {{1, {fh}, {fw}, 1}}, od = {{1, {oh}, {ow}, {ch}}};
        {ctx}
        if ({call} != ARM_CMSIS_NN_SUCCESS) {{
            return -2;
        }}
    }}""")
        elif op.kind in ("TANH", "LOGISTIC"):
            table = elementwise_table(op.kind, x.quant, y.quant)
            consts.append(_c_array("int8_t", f"{p}_table", table))
            body.append(f"""    /* op {op.index} {op.kind}: no int8 CMSIS-NN kernel; TFLM's exact table */
    for (int i = 0; i < {x.size}; ++i) {{
        {dst}[i] = {p}_table[{src}[i] + 128];
    }}""")
        else:
            raise LenetEdgeError(f"--cmsis-nn: op {op.index} {op.kind} has no CMSIS-NN "
                                 "build in the benchmark")
        if y.index in traced:
            body.append(f"    if (fn != NULL) {{\n        fn(ctx, {y.index}, {dst}, {y.size});\n    }}")
    scratch = max(4, -(-scratch // 4) * 4)
    text = f"""/* LeNet-5 on Arm CMSIS-NN kernels, op by op as TFLM's CMSIS-NN backend runs it.
 * Generated by `lenet-edge bench --cmsis-nn` for the benchmark; not part of the shipped
 * library. Constants are the .tflite's own; multipliers and shifts as TFLM derives them. */
#include "lenet5_model.h"

#include <stddef.h>
#include <string.h>

#include "arm_nnfunctions.h"

{"".join(consts)}
/* Two activation buffers (every other op writes each) and the kernels' scratch buffer. */
static int8_t lenet5_act0[{max(sizes[0], 1)}] __attribute__((aligned(4)));
static int8_t lenet5_act1[{max(sizes[1], 1)}] __attribute__((aligned(4)));
static int32_t lenet5_scratch[{scratch // 4}];
{"".join(ram)}
static int lenet5_ready;

int lenet5_invoke_traced(const int8_t *input, int8_t *output, lenet5_trace_fn fn, void *ctx)
{{
    if (input == NULL || output == NULL) {{
        return -1;
    }}
    (void)fn;
    (void)ctx;
    if (!lenet5_ready) {{ /* TFLM's Prepare */
{chr(10).join(init)}
        lenet5_ready = 1;
    }}
{chr(10).join(body)}
    return 0;
}}

int lenet5_invoke(const int8_t *input, int8_t *output)
{{
    return lenet5_invoke_traced(input, output, NULL, NULL);
}}

/* The generated library offers an arena slot for the input (lenet5_model.h); this
 * driver's buffers are CMSIS-NN's, so the input gets a buffer of its own (counted in
 * its RAM). */
int8_t *lenet5_input_buffer(void)
{{
    static int8_t input[LENET5_INPUT_SIZE];
    return input;
}}

int lenet5_argmax(const int8_t *output)
{{
    int best = 0;
    for (int i = 1; i < LENET5_OUTPUT_SIZE; ++i) {{
        if (output[i] > output[best]) {{
            best = i;
        }}
    }}
    return best;
}}
"""
    sums = sum(4 * graph.tensor(o.inputs[1]).shape[0] for o in ops if o.kind == "FULLY_CONNECTED")
    return text, sum(-(-n // 4) * 4 for n in sizes) + scratch + sums
