"""`lenet-edge bench`: instructions, flash and RAM of the generated firmware on every QEMU core.

For each variant it exports the bundled model once (every core's kernels are generated;
the compiler's -mcpu picks them), then for each board: builds the firmware, runs it under
QEMU with `-icount shift=0`, and measures over the real serial link:

- instructions per inference (one request at a time, so no UART interrupt lands inside),
  total and per layer (the device's TRACE counts), and per executed MAC;
- that the logits are byte-identical to the tflite-micro runtime's (speed never costs
  exactness: the bench refuses to report a figure for a firmware that is not exact);
- flash (weights, code, total) and RAM (arena, stack high-water mark measured on the
  device, the stack reserved from the static bound, and the total RAM the image claims:
  data + bss + arena + reserved stack, the build's figure);
- host-side validation throughput (pipelined INFER, digits/s).

Prints a table and writes bench.json:
``bench["boards"][BOARD][VARIANT]`` with ``instructions``, ``instructions_per_layer``,
``instructions_per_mac``, ``macs_executed``, ``flash_bytes``, ``weights_bytes``,
``code_bytes``, ``arena_bytes``, ``stack_bytes`` (measured), ``stack_reserved_bytes``,
``stack_bound_bytes``, ``ram_bytes`` (data + bss + arena + reserved stack), ``digits_per_s``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from lenet_edge.bundled import VARIANTS, bundled_model
from lenet_edge.cpus import CPUS
from lenet_edge.errors import LenetEdgeError

def _layer_names(report: dict) -> dict[int, str]:
    """Traced tensor index -> the ops that produce it ("CONV_2D+MAX_POOL_2D")."""
    return {layer["output_tensor"]: "+".join(layer["ops"]) for layer in report["layers"]}


def measure(board, variant: str, export_dir: Path, report: dict, work: Path,
            inputs: np.ndarray, expected: np.ndarray, throughput_inputs: np.ndarray) -> dict:
    from lenet_edge.firmware_templates.build import build_firmware
    from lenet_edge.firmware_templates.qemu import run_qemu
    from lenet_edge.host.session import DeviceSession

    build = build_firmware(board, export_dir, work / board.name)
    names = _layer_names(report)
    # A real board's own image runs on QEMU's model of its chip.
    with run_qemu(board, build.elf, emulate=True) as url, DeviceSession(url) as session:
        info = session.info(refresh=True)
        results = [session.infer(x) for x in inputs]
        layers = session.trace(inputs[0])
        start = time.perf_counter()
        streamed = sum(1 for _ in session.infer_stream(enumerate(throughput_inputs)))
        digits_per_s = streamed / (time.perf_counter() - start)
        stack_used = session.info(refresh=True).int("stack_used")
    outputs = np.array([r.output for r in results])
    mismatches = int(np.sum(np.any(outputs != expected, axis=1)))
    if mismatches:
        raise LenetEdgeError(f"{board.name} {variant}: {mismatches} of {len(inputs)} outputs differ "
                             "from TFLM; refusing to report speed for inexact firmware")
    counts = np.array([r.count for r in results])
    instructions = int(np.median(counts))
    per_layer = {f"{names.get(t.tensor_index, 'tensor')}#{t.tensor_index}": int(t.count)
                 for t in layers}
    s = build.sections
    code = int(s["text"] + s["rodata"])
    return {
        "cpu": info.fields["cpu"],
        "counter_unit": info.fields["counter_unit"],
        "counter_source": info.fields.get("counter_source"),
        "clock_hz": info.int("clock_hz"),
        "clock_status": info.fields.get("clock_status"),
        "counter_resolution": info.int("counter_resolution"),
        "instructions": instructions,
        "instructions_min": int(counts.min()),
        "instructions_max": int(counts.max()),
        "instructions_per_layer": per_layer,
        "macs_executed": int(report["macs_executed"]),
        "macs_dense": int(report["macs_dense"]),
        "instructions_per_mac": round(instructions / report["macs_executed"], 3),
        "bit_exact_digits": len(inputs),
        "weights_bytes": int(s["weights"]),
        "code_bytes": code,
        "inference_code_bytes": report.get("code_bytes", {}).get(info.fields["cpu"]),
        "flash_bytes": int(build.flash_bytes),
        "arena_bytes": int(s["arena"]),
        "stack_bytes": stack_used,
        "stack_reserved_bytes": int(s["stack"]),
        "stack_bound_bytes": int(build.stack["worst_case_bytes"]),
        # One definition of RAM everywhere (build, bench, reports): data + bss + arena +
        # the reserved stack, i.e. what the image claims (build.ram_bytes).
        "ram_bytes": int(build.ram_bytes),
        "digits_per_s": round(digits_per_s, 1),
        "throughput_digits": streamed,
    }


def _rows(results: dict):
    for board, per_variant in results.items():
        for variant, r in per_variant.items():
            yield board, variant, r


def _speed_table(results: dict) -> Table:
    table = Table(title="guest instructions per inference (QEMU -icount shift=0), bit-exact")
    for col in ("board", "variant", "cpu", "instructions", "per MAC", "digits/s"):
        table.add_column(col, justify="left" if col in ("board", "variant", "cpu") else "right")
    for board, variant, r in _rows(results):
        table.add_row(board, variant, r["cpu"], f"{r['instructions']:,}",
                      f"{r['instructions_per_mac']:.2f}", f"{r['digits_per_s']:.0f}")
    return table


def _memory_table(results: dict, tflm_arena: dict) -> Table:
    table = Table(title="flash and RAM (bytes)")
    for col in ("board", "variant", "flash", "weights", "code", "arena", "TFLM arena",
                "stack (measured)", "stack (reserved)", "RAM"):
        table.add_column(col, justify="left" if col in ("board", "variant") else "right")
    for board, variant, r in _rows(results):
        table.add_row(board, variant, f"{r['flash_bytes']:,}", f"{r['weights_bytes']:,}",
                      f"{r['code_bytes']:,}", f"{r['arena_bytes']:,}",
                      f"{tflm_arena.get(variant) or 0:,}", f"{r['stack_bytes']:,}",
                      f"{r['stack_reserved_bytes']:,}", f"{r['ram_bytes']:,}")
    return table


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--boards", "boards", multiple=True, metavar="BOARD",
              help="Boards to run in QEMU (repeatable): qemu-* boards, and real boards whose "
                   "own image runs on QEMU's model of their chip. Default: every such board.")
@click.option("--board-file", "board_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also run a board described in TOML (repeatable; it needs an [emulator]).")
@click.option("--cpu", "cpus", multiple=True, type=click.Choice(CPUS),
              help="Only the boards with this core (repeatable).")
@click.option("--variants", "variants", multiple=True, type=click.Choice(VARIANTS),
              help="Bundled model variants (repeatable; default: every one).")
@click.option("--count", default=20, show_default=True, type=click.IntRange(min=1),
              help="Digits measured one at a time per board (median reported).")
@click.option("--throughput-count", default=300, show_default=True, type=click.IntRange(min=1),
              help="Digits streamed pipelined per board for digits/s.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("bench_out"),
              show_default=True, help="Folder for exports, firmware and bench.json.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="MNIST folder (default: $LENET_EDGE_DATA, cache, download).")
def bench(boards, board_files, cpus, variants, count, throughput_count, out_dir, data_dir):
    """Benchmark the generated firmware on every emulated Cortex-M core.

    Exports each bundled variant, builds the firmware per QEMU board, runs it under
    `qemu-system-arm -icount shift=0` and measures, over the serial link, guest
    instructions per inference (total and per layer), instructions per executed MAC,
    flash (weights, code) and RAM (arena, device-measured stack high-water mark), and
    pipelined validation throughput. Every board's logits are checked byte for byte
    against the tflite-micro runtime first. Prints a table and writes OUT/bench.json.
    Takes a few minutes for all boards and all variants.
    """
    from rich.progress import Progress

    from lenet_edge.codegen.export import export
    from lenet_edge.firmware_templates.boards import EMULATED_BOARDS, emulated_board
    from lenet_edge.quantize.evaluate import pixels_to_int8
    from lenet_edge.quantize.tflm import TflmModel
    from lenet_edge.train.mnist import load_mnist

    from lenet_edge.firmware_templates.board_file import load_board_file

    named = list(boards) or ([] if board_files else list(EMULATED_BOARDS))
    # A board QEMU cannot run gets its clear error from emulated_board.
    boards = [emulated_board(b, emulate=True) for b in named]
    boards += [emulated_board(load_board_file(f), emulate=True) for f in board_files]
    if cpus:
        boards = [b for b in boards if b.cpu in cpus]
        if not boards:
            raise LenetEdgeError(f"no emulated board has a {' or '.join(cpus)} core")
    variants = list(variants) or list(VARIANTS)
    images, _ = load_mnist("test", data_dir)
    inputs = pixels_to_int8(images[:count]).reshape(count, -1)
    stream = pixels_to_int8(images[count:count + throughput_count])
    stream = stream.reshape(len(stream), -1)
    cpus = tuple(sorted({b.cpu for b in boards}))  # their kernels are exported
    console = Console(width=max(Console().width, 120))
    results: dict[str, dict] = {b.name: {} for b in boards}
    tflm_arena: dict[str, int] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("bench", total=len(variants) * (1 + len(boards)))
        for variant in variants:
            progress.update(task, description=f"{variant}: export")
            model = bundled_model(variant).read_bytes()
            exported = export(model, out_dir / variant / "export", cpus=cpus)
            report = exported.report
            tflm_arena[variant] = report.get("tflm_arena_bytes")
            tflm = TflmModel(model)
            expected = np.array([tflm.invoke(x).reshape(-1) for x in inputs])
            progress.advance(task)
            for board in boards:
                progress.update(task, description=f"{variant}: {board.name}")
                results[board.name][variant] = measure(board, variant, exported.out_dir, report,
                                                  out_dir / variant, inputs, expected, stream)
                progress.advance(task)
    console.print(_speed_table(results))
    console.print(_memory_table(results, tflm_arena))
    bench_json = {
        "command": "lenet-edge bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"]
        else "lenet-edge bench",
        "host": platform.machine(),
        "unit": "guest instructions per inference, qemu-system-arm -icount shift=0",
        "boards": results,
        "tflm_arena_bytes": tflm_arena,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bench.json"
    path.write_text(json.dumps(bench_json, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {path}")
