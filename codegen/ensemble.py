"""Boosted LeNet-4 as one C library: the three nets generated as any model, with the names
NAME1, NAME2, NAME3 (`export --name`), and a generated wrapper NAME_model.h/.c with the
generated model API (NAME_invoke, NAME_INPUT_SIZE, NAME_MODEL_HASH...) that applies the
ensemble rule of lenet_edge/ensemble.py in C: the validation agent and the firmware run it
as they run one model.

    DIR/c/NAME_model.h, NAME_model.c          the ensemble (early exit, weighted sum) and
                                              the one arena the nets share (NAME_arena_words)
    DIR/c/NAME{1,2,3}_model.h/.c, _weights.h  the nets
    DIR/c/ensemble.json                       what the firmware renderer reads: the name
    DIR/c/CMakeLists.txt                      target NAME (all four .c)
    DIR/ensemble/                             the ensemble folder the C was made from
    DIR/export_report.json                    per-net figures (MACs, arena), the rule
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jinja2
import numpy as np

from lenet_edge import __version__
from lenet_edge.codegen.generate import generate_c
from lenet_edge.codegen.host_build import WARNINGS, _compiler, _run
from lenet_edge.codegen.emit import check_name
from lenet_edge.codegen.memory_plan import ALIGN, lowest_fit
from lenet_edge.ensemble import CLASSES, OUTPUT_BYTES, WEIGHT_ONE, Ensemble, read_ensemble
from lenet_edge.errors import LenetEdgeError
from lenet_edge.layout import ExportLayout
from lenet_edge.quantize.ensemble import check_nets, check_quantization

DEFAULT_NAME = "boosted"
MARKER = "ensemble.json"  # in DIR/c/: the library's name is the ensemble's, not a net's
HOST_MAIN = Path(__file__).resolve().parent / "host" / "ensemble_main.c"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("lenet_edge.codegen", "."),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def export_ensemble(ensemble: Ensemble | str | Path, out_dir: str | Path,
                    name: str = DEFAULT_NAME, cpus=None, optimize: str = "size") -> dict:
    """Write the ensemble's C library into ``out_dir`` (layout above); returns the report."""
    from lenet_edge.codegen.cross import CPUS

    if not isinstance(ensemble, Ensemble):
        ensemble = read_ensemble(ensemble)
    check_name(name)
    # Each net through the code generator's own checks (a malformed .tflite is refused
    # there) before anything reads its quantization or anything is written.
    libraries = [generate_c(model, ensemble.meta["nets"][k], cpus=cpus or CPUS,
                            prefix=f"{name}{k + 1}", optimize=optimize,
                            shared_arena=f"{name}_arena_words")
                 for k, model in enumerate(ensemble.models)]
    check_quantization(ensemble)
    check_nets(ensemble.models)  # the same input: one input slot in the shared arena
    arena_bytes, input_offset = plan_shared_arena(libraries)
    layout = ExportLayout(out_dir)
    c_dir = layout.c_dir
    if c_dir.is_dir():
        shutil.rmtree(c_dir)
    c_dir.mkdir(parents=True)
    nets, net_reports = [], []
    for library in libraries:
        prefix = library.prefix
        for file_name, text in sorted(library.files.items()):
            if file_name.endswith((".c", ".h")):
                (c_dir / file_name).write_text(text, encoding="utf-8", newline="\n")
        traced = [{"index": t, "size": size} for t, size in library.traced_tensors]
        nets.append({"name": prefix, "NAME": prefix.upper(), "traced": traced})
        net_reports.append({"name": prefix, "model_sha256": library.program.graph.sha256,
                            "macs_executed": library.stats.macs_executed,
                            "macs_dense": library.stats.macs_dense,
                            "arena_bytes": library.stats.arena_bytes,
                            "weights_bytes": library.stats.weights_bytes,
                            # What NAME_invoke_traced reports of this net (the order of
                            # NAME{k}_invoke_traced), after the nets before it.
                            "traced": traced})
    rule = ensemble.rule
    context = dict(version=__version__, title="Boosted LeNet-4", name=name, NAME=name.upper(),
                   nets=nets, first=nets[0], classes=CLASSES, weights=list(rule.weights),
                   threshold=rule.threshold, model_hash=ensemble.hash,
                   arena_bytes=arena_bytes, arena_words=max(1, arena_bytes // 4),
                   input_offset=input_offset,
                   score_scale=repr(float(np.float32(max(ensemble.scales) / WEIGHT_ONE))))
    env = _env()
    for suffix in ("h", "c"):
        text = env.get_template(f"ensemble_model.{suffix}.j2").render(context)
        (c_dir / f"{name}_model.{suffix}").write_text(text, encoding="utf-8", newline="\n")
    sources = " ".join([f"{name}_model.c"] + [f"{n['name']}_model.c" for n in nets])
    (c_dir / "CMakeLists.txt").write_text(
        f"# Boosted LeNet-4 generated by lenet-edge {__version__}: add_subdirectory(path/to/c)\n"
        "cmake_minimum_required(VERSION 3.13)\n"
        f"project({name}_model C)\n\n"
        f"add_library({name} STATIC {sources})\n"
        f"target_include_directories({name} PUBLIC ${{CMAKE_CURRENT_SOURCE_DIR}})\n"
        f"set_target_properties({name} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON "
        "C_EXTENSIONS OFF)\n", encoding="utf-8")
    (c_dir / MARKER).write_text(json.dumps({"name": name, "nets": [n["name"] for n in nets],
                                            "model_hash": ensemble.hash}, indent=2) + "\n")
    copy = layout.root / "ensemble"
    if copy.resolve() != ensemble.folder.resolve():
        if copy.is_dir():
            shutil.rmtree(copy)
        copy.mkdir(parents=True)
        for file_name in list(ensemble.meta["nets"]) + ["ensemble.json"]:
            shutil.copyfile(ensemble.folder / file_name, copy / file_name)
    report = {"kind": "ensemble", "name": name, "model_sha256": ensemble.hash,
              "weights": list(rule.weights), "threshold": rule.threshold, "nets": net_reports,
              "macs_executed_all_nets": sum(n["macs_executed"] for n in net_reports),
              # One arena: the largest net's plan and the input (plan_shared_arena).
              "arena_bytes": arena_bytes, "input_offset": input_offset,
              "arena_bytes_if_separate": sum(n["arena_bytes"] for n in net_reports)
              + ensemble_input_size(libraries)}
    layout.report.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def ensemble_input_size(libraries) -> int:
    program = libraries[0].program
    return program.graph.tensor(program.input).size


def plan_shared_arena(libraries) -> tuple[int, int]:
    """(bytes, input offset) of the one arena the nets share. The nets run one after
    another and keep nothing in their arena between calls, so each net's own plan starts at
    offset 0 of it. The ensemble's input must survive every net but the last (each reads
    it): it goes where no net's buffer or scratch ever lies (simpler than also letting it
    share bytes with what the last net writes after reading it, and the same for nets of one
    architecture, whose plans are the same), after the largest plan when no gap fits it."""
    busy = []
    for library in libraries:
        plan = library.plan
        scratch = {step.name: step.scratch_bytes for step in library.program.steps}
        busy += [(offset, size) for _, offset, size, _, _ in plan.buffers]
        busy += [(offset, scratch[step]) for step, offset in plan.scratch.items()]
    input_size = ensemble_input_size(libraries)
    input_offset = lowest_fit(input_size, busy)
    end = max([library.plan.arena_bytes for library in libraries] + [input_offset + input_size])
    return (end + ALIGN - 1) // ALIGN * ALIGN, input_offset


def ensemble_name(c_dir: str | Path) -> str | None:
    """The ensemble library's name when ``c_dir`` holds one (its marker), else None."""
    marker = Path(c_dir) / MARKER
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text())["name"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LenetEdgeError(f"{marker}: not an ensemble marker ({exc})") from None


def build_host_runner(c_dir: str | Path, out: str | Path, sanitize: bool = False) -> Path:
    """A host program running the ensemble C on int8 inputs (stdin -> OUTPUT_BYTES per
    input on stdout; run_host_runner, run_host_trace); ``sanitize``: ASan + UBSan."""
    c_dir, out = Path(c_dir), Path(out)
    name = ensemble_name(c_dir)
    if name is None:
        raise LenetEdgeError(f"{c_dir} holds no ensemble library")
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"] \
        if sanitize else ["-O2"]
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [_compiler(), *WARNINGS, *flags, f"-I{c_dir}", f'-DENSEMBLE_HEADER="{name}_model.h"',
           f"-DENSEMBLE_PREFIX={name}", f"-DENSEMBLE_UPPER={name.upper()}", *sorted(str(p) for p in c_dir.glob("*.c")),
           str(HOST_MAIN), "-o", str(out)]
    _run(cmd, "ensemble host build")
    return out


def _run_runner(exe: str | Path, inputs: np.ndarray, *args: str) -> tuple[int, bytes]:
    data = np.ascontiguousarray(inputs, dtype=np.int8)
    proc = subprocess.run([str(exe), str(data.shape[1]), *args], input=data.tobytes(),
                          capture_output=True)
    if proc.returncode != 0:
        raise LenetEdgeError(f"{exe} failed (exit {proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace').strip()}")
    return len(data), proc.stdout


def run_host_runner(exe: str | Path, inputs: np.ndarray) -> np.ndarray:
    """(N, OUTPUT_BYTES) int8 outputs of the ensemble C for int8 ``inputs`` (N, size)."""
    n, out = _run_runner(exe, inputs)
    return np.frombuffer(out, dtype=np.int8).reshape(n, OUTPUT_BYTES)


def run_host_trace(exe: str | Path, inputs: np.ndarray) -> list[tuple[list[tuple[int, np.ndarray]], np.ndarray]]:
    """Per input, what NAME_invoke_traced reported, in order ((tensor index, int8 data) per
    call), and its OUTPUT_BYTES output."""
    _, out = _run_runner(exe, inputs, "trace")
    results, at = [], 0
    for _ in range(len(inputs)):
        calls = []
        while True:
            tensor, size = np.frombuffer(out, dtype=np.int32, count=2, offset=at).tolist()
            at += 8
            if tensor < 0:
                break
            calls.append((tensor, np.frombuffer(out, dtype=np.int8, count=size, offset=at).copy()))
            at += size
        results.append((calls, np.frombuffer(out, dtype=np.int8, count=OUTPUT_BYTES, offset=at)))
        at += OUTPUT_BYTES
    return results
