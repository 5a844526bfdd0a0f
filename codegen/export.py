"""`lenet-edge export`: model -> DIR/model/, DIR/c/, DIR/agent/, DIR/export_report.json
(+ host lib, + firmware). The report's figures are measured, not estimated: the C is compiled for every
Cortex-M CPU and TFLM's arena is found by running the tflite-micro runtime."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from lenet_edge.codegen import cross
from lenet_edge.codegen.generate import GeneratedLibrary, generate_c
from lenet_edge.errors import LenetEdgeError

MODEL_NAME = "lenet5_int8.tflite"
FLOAT_MODEL_NAME = "lenet5.keras"
REPORT_NAME = "export_report.json"


@dataclass
class ExportResult:
    out_dir: Path
    model_path: Path
    c_dir: Path
    report: dict
    library: GeneratedLibrary
    host_library: Path | None = None
    firmware_dir: Path | None = None
    agent_dir: Path | None = None  # the validation agent library (DIR/agent/)


def _write_agent(out_dir: Path) -> Path | None:
    """DIR/agent/: the validation agent for the user's own firmware (see README)."""
    try:
        from lenet_edge.firmware_templates.agent_files import write_agent
    except ImportError:  # a build without the firmware templates: the C library alone
        return None
    return write_agent(out_dir / "agent")


def resolve_model(model: str | Path | None, variant: str = "modern", data=None) -> bytes:
    """The int8 .tflite bytes: given file, a .keras quantized on the fly (calibrated on
    ``data``'s images, MNIST's by default), or the bundled one."""
    if model is None:
        from lenet_edge.bundled import bundled_model

        return bundled_model(variant, "tflite").read_bytes()
    path = Path(model)
    if not path.is_file():
        raise LenetEdgeError(f"model file not found: {path}")
    if path.suffix == ".keras":
        return _quantize_keras(path, data)
    return path.read_bytes()


def _quantize_keras(path: Path, data=None) -> bytes:
    """The quantize stage's own conversion (same calibration as `lenet-edge quantize`)."""
    from lenet_edge.quantize.convert import calibration_images, convert_int8, load_keras_model
    from lenet_edge.train.datasets import load_calibration_images

    model = load_keras_model(path)
    return convert_int8(model, calibration_images(load_calibration_images(data)))


def export(model_bytes: bytes, out_dir: str | Path, *, target: str = "cortex-m",
           cpus: tuple[str, ...] = cross.CPUS, board=None,
           measure_tflm: bool = True, measure_code: bool = True,
           model_label: str = MODEL_NAME, fuse: bool = True,
           float_model: str | Path | None = None, name: str = "lenet5",
           optimize: str = "size") -> ExportResult:
    """``cpus``: the Cortex-M CPUs the C is for (their kernel variants are generated and
    their code size measured); ``fuse=False``: one step per op, every tensor traced;
    ``float_model``: the .keras the .tflite was converted from, kept beside it as
    DIR/model/lenet5.keras (validate's float reference); ``name``: prefix of every public
    symbol, macro and file (several models in one image); ``optimize``: "size" (default)
    or "speed" (weight layouts that cost flash for fewer instructions)."""
    out_dir = Path(out_dir)
    if board:  # an unknown board is refused before anything is written
        try:
            from lenet_edge.firmware_templates.boards import get_board
        except ImportError as exc:
            raise LenetEdgeError("--board needs the firmware templates, which this build "
                                 f"lacks ({exc})") from exc
        board = get_board(board)
    library = generate_c(model_bytes, model_label, fuse=fuse, cpus=cpus, prefix=name,
                         optimize=optimize)
    model_path = out_dir / "model" / MODEL_NAME
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(model_bytes)
    keras_copy = model_path.parent / FLOAT_MODEL_NAME
    if float_model is not None:
        shutil.copyfile(float_model, keras_copy)
    elif keras_copy.exists():  # from an earlier export of another model into this folder
        keras_copy.unlink()
    c_dir = out_dir / "c"
    if c_dir.is_dir():
        for stale in list(c_dir.glob("*.c")) + list(c_dir.glob("*.h")):
            stale.unlink()
    library.write(c_dir)
    agent_dir = _write_agent(out_dir)
    report = build_report(library, c_dir, model_bytes, target=target, cpus=cpus,
                          measure_tflm=measure_tflm, measure_code=measure_code)
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    result = ExportResult(out_dir=out_dir, model_path=model_path, c_dir=c_dir, report=report,
                          library=library, agent_dir=agent_dir)
    if target == "host":
        from lenet_edge.codegen.host_build import build_shared_library

        result.host_library = build_shared_library(c_dir, out_dir / "host" / f"lib{name}.so", prefix=name)
    if board:
        try:
            from lenet_edge.firmware_templates.render import render_firmware
        except ImportError as exc:
            raise LenetEdgeError("--board needs the firmware templates, which this build "
                                 f"lacks ({exc})") from exc
        result.firmware_dir = Path(render_firmware(board, out_dir))
    return result


def build_report(library: GeneratedLibrary, c_dir: Path, model_bytes: bytes, *, target: str,
                 cpus: tuple[str, ...], measure_tflm: bool, measure_code: bool) -> dict:
    program, plan, stats = library.program, library.plan, library.stats
    graph = program.graph
    layers = []
    for step in program.steps:
        loc = plan.locations[step.output]
        layers.append(dict(
            ops=[graph.op(i).kind for i in step.op_indices], op_indices=list(step.op_indices),
            kernel="alias" if step.alias else
            step.kernel + ("_sparse" if step.params.get("sparse") else ""),
            output_tensor=step.output,
            output_shape=list(graph.tensor(step.output).shape),
            output_location=loc.base if loc.base != "arena" else f"arena+{loc.offset}",
            macs_dense=step.macs_dense, macs_executed=step.macs_executed,
            constants_bytes=sum(c.nbytes for c in step.constants),
        ))
    report = dict(
        model=MODEL_NAME, model_sha256=graph.sha256, model_bytes=len(model_bytes),
        target=target, fused=program.fused, kernel_paths=list(library.paths),
        optimize=library.optimize,
        macs_dense=stats.macs_dense, macs_executed=stats.macs_executed,
        weights_bytes=stats.weights_bytes, arena_bytes=stats.arena_bytes,
        traced_tensors=[t for t, _ in library.traced_tensors], layers=layers,
        tflm_arena_bytes=None, code_bytes=None,
    )
    if measure_tflm:
        from lenet_edge.quantize.tflm import tflm_arena_bytes

        report["tflm_arena_bytes"] = tflm_arena_bytes(model_bytes)
    if measure_code and cross.have_arm_gcc():
        sizes = cross.code_bytes(c_dir, cpus)
        report["code_bytes"] = {cpu: s["code"] for cpu, s in sizes.items()}
        report["sections"] = sizes
        report["compiler"] = f"{cross.GCC} {' '.join(cross.CFLAGS)}"
    return report
