"""The codegen stage's export: model -> DIR/model/, DIR/c/, DIR/export_report.json (+ the
host library). The report's figures are measured, not estimated: the C is compiled for every
Cortex-M CPU and TFLM's arena is found by running the tflite-micro runtime. The agent
(DIR/agent/) and the firmware project (DIR/firmware/) come from a later stage:
`lenet_edge.flows.export_model` adds them (what `lenet-edge export` runs)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from lenet_edge.codegen import cross
from lenet_edge.codegen.generate import GeneratedLibrary, generate_c
from lenet_edge.errors import LenetEdgeError
from lenet_edge.layout import DEFAULT_EXPORT_DIR, ExportLayout

MODEL_NAME = ExportLayout.MODEL_NAME
FLOAT_MODEL_NAME = ExportLayout.FLOAT_MODEL_NAME
REPORT_NAME = ExportLayout.REPORT_NAME


@dataclass
class ExportResult:
    out_dir: Path
    model_path: Path
    c_dir: Path
    report: dict
    library: GeneratedLibrary
    host_library: Path | None = None
    firmware_dir: Path | None = None  # set by flows.export_model (with a board)
    agent_dir: Path | None = None  # the validation agent library (DIR/agent/), flows.export_model


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
    return convert_int8(model, calibration_images(
        load_calibration_images(data, tuple(model.input_shape[1:]))))


def export(model_bytes: bytes, out_dir: str | Path = DEFAULT_EXPORT_DIR, *, target: str = "cortex-m",
           cpus: tuple[str, ...] = cross.CPUS,
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
    layout = ExportLayout(out_dir)
    library = generate_c(model_bytes, model_label, fuse=fuse, cpus=cpus, prefix=name,
                         optimize=optimize)
    model_path = layout.model
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(model_bytes)
    keras_copy = layout.float_model
    if float_model is not None:
        shutil.copyfile(float_model, keras_copy)
    elif keras_copy.exists():  # from an earlier export of another model into this folder
        keras_copy.unlink()
    c_dir = layout.c_dir
    if c_dir.is_dir():
        for stale in list(c_dir.glob("*.c")) + list(c_dir.glob("*.h")):
            stale.unlink()
    library.write(c_dir)
    report = build_report(library, c_dir, model_bytes, target=target, cpus=cpus,
                          measure_tflm=measure_tflm, measure_code=measure_code)
    layout.report.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    result = ExportResult(out_dir=out_dir, model_path=model_path, c_dir=c_dir, report=report,
                          library=library)
    if target == "host":
        from lenet_edge.codegen.host_build import build_shared_library

        result.host_library = build_shared_library(c_dir, layout.host_dir / f"lib{name}.so", prefix=name)
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
            kernel="alias" if plan.is_alias(step) else
            step.kernel + ("_sparse" if getattr(step.params, "sparse", False) else ""),
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
