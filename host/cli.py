"""`lenet-edge validate`: on-device accuracy over serial, against float, TFLite and TFLM."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import BOARDS


def firmware_for(board, model_dir: str | Path | None, work_dir: Path, console: Console,
                 baud: int | None = None) -> tuple[Path, Path]:
    """(elf, export dir) for `board`: builds DIR's firmware, exporting the model first when
    `model_dir` is not an export directory (or not given: the bundled model)."""
    from lenet_edge.codegen.export import export, resolve_model
    from lenet_edge.firmware_templates.build import build_firmware
    from lenet_edge.firmware_templates.cli import print_sync
    from lenet_edge.host.references import resolve_models

    if model_dir is not None and (Path(model_dir) / "c" / "lenet5_model.h").is_file():
        export_dir = Path(model_dir)
    else:
        files = resolve_models(model_dir)
        export_dir = work_dir / "export"
        console.print(f"exporting {files.tflite} to C in {export_dir} ...")
        export(resolve_model(files.tflite), export_dir, measure_tflm=False, measure_code=False)
    console.print(f"building firmware for {getattr(board, 'name', board)} ...")
    result = build_firmware(board, export_dir, baud=baud)
    print_sync(console, result)
    return result.elf, export_dir


def accuracy_fraction(value: float) -> float:
    """--min-accuracy as a fraction: 0..1 as given, (1, 100] read as a percentage."""
    if not 0.0 <= value <= 100.0:
        raise click.BadParameter(f"{value} is not an accuracy: give a fraction 0..1 (0.99) "
                                 "or a percentage up to 100 (99)", param_hint="--min-accuracy")
    return value / 100.0 if value > 1.0 else value


@click.command("validate")
@click.option("--port", "url", metavar="URL", help="pyserial URL: /dev/ttyACM0, socket://127.0.0.1:P, rfc2217://...")
@click.option("--board", type=click.Choice(list(BOARDS)), help="qemu-... starts that emulated board itself (building its firmware if needed); a real board with --emulate runs its own image on QEMU's model of its chip.")
@click.option("--board-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A board described in TOML (README: 'A board of your own'), instead of --board.")
@click.option("--emulate", is_flag=True, help="With a real --board: run its image in QEMU (see `lenet-edge boards`).")
@click.option("--model-dir", type=click.Path(path_type=Path), help="Export/quantize directory or .tflite of the model the firmware runs (default: the bundled model).")
@click.option("--count", default=10000, show_default=True, type=click.IntRange(min=1), help="How many test images to stream (the first N).")
@click.option("--report", "out_dir", default="validation", show_default=True, type=click.Path(path_type=Path), help="Directory for report.json, report.md and the PNGs.")
@click.option("--min-accuracy", default=0.0, show_default=True, callback=lambda ctx, param, v: accuracy_fraction(v), help="Fail (exit 1) below this device accuracy: a fraction 0..1 (0.99), or a percentage above 1 up to 100 (99).")
@click.option("--per-layer", "per_layer", default=0, show_default=True, type=click.IntRange(min=0), metavar="K", help="Also compare every intermediate tensor with TFLM for the first K images.")
@click.option("--force", is_flag=True, help="Validate even when the device's model hash differs from the model's.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Test set: MNIST directory (default: $LENET_EDGE_DATA, cache, download), an IDX images file, an .npz with x_test/y_test, or DIR/<label>/*.png.")
@click.option("--timeout", default=2.0, show_default=True, type=click.FloatRange(min=0.01, max=600), help="Longest retransmission timeout, seconds (it adapts to the link below this, and only probes: a request is resent once the device proves it lost); 5x this of silence ends validation.")
@click.option("--baud", type=click.IntRange(min=1), default=115200, show_default=True, help="Baud rate of the serial port (and, with --board, of the firmware it builds).")
def validate(url, board, board_file, emulate, model_dir, count, out_dir, min_accuracy, per_layer, force, data_dir, timeout, baud):
    """Stream test images (MNIST's by default) to a device over serial and prove it computes the model.

    Checks the device's model hash, streams the images (several in flight, compressed),
    and compares the device's int8 logits with TFLM (must be byte-identical) and its
    predictions with the float and TFLite models. Writes OUT/report.json, report.md,
    confusion_matrix.png and disagreements.png. Exits 1 when the logits differ from TFLM
    or accuracy is below --min-accuracy, 130 on Ctrl-C (the partial report is kept).

    \b
    Examples:
      lenet-edge validate --board qemu-mps2-an386 --count 1000
      lenet-edge validate --board bbc-microbit --emulate --count 200
      lenet-edge validate --port /dev/ttyACM0 --model-dir out --report val
    """
    from lenet_edge.host.validate import prepare_report_dir

    console = Console(stderr=True)
    if board is None and board_file is None and url is None:
        raise LenetEdgeError("give --port URL (the device's serial port) or --board qemu-... (start an emulator)")
    if board is not None or board_file is not None:
        from lenet_edge.firmware_templates.boards import emulated_board
        from lenet_edge.firmware_templates.cli import resolve_board

        chosen = resolve_board(board, board_file=board_file)
        if url is not None:
            if chosen.is_qemu or emulate:
                raise LenetEdgeError("give either --port or an emulated --board, not both")
            board = None  # a real board at --port: the device says what it is
        else:
            board = emulated_board(chosen, emulate)
    prepare_report_dir(out_dir)  # before building or streaming anything
    if board is None:
        return run_and_summarise(url, console, model_dir=model_dir, count=count, out_dir=out_dir,
                                 min_accuracy=min_accuracy, force=force, per_layer=per_layer,
                                 data_dir=data_dir, timeout=timeout, baudrate=baud)

    from lenet_edge.firmware_templates.qemu import run_qemu

    elf, export_dir = firmware_for(board, model_dir, Path(out_dir), console, baud)
    with run_qemu(board, elf, emulate=emulate) as qemu_url:
        console.print(f"QEMU {board.name} serving its console at {qemu_url}")
        return run_and_summarise(qemu_url, console, model_dir=export_dir, count=count, out_dir=out_dir,
                                 min_accuracy=min_accuracy, force=force, per_layer=per_layer,
                                 data_dir=data_dir, timeout=timeout, baudrate=baud)


def run_and_summarise(url: str, console: Console, **kwargs) -> int:
    from lenet_edge.host.validate import validate as run

    result = run(url, console=console, **kwargs)
    print_summary(result, console)
    return result.exit_code


def print_summary(result, console: Console) -> None:
    from rich.table import Table

    r = result.report
    table = Table(title="on-device validation" + (" (PARTIAL)" if r["partial"] else ""))
    if r["partial"]:
        console.print(f"[yellow]partial report: {r.get('partial_reason')}[/]")
    table.add_column("figure")
    table.add_column("value", justify="right")

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f} %"

    items = (r.get("data") or {}).get("items", "images")
    table.add_row(items, f"{r['count']} / {r['requested']}")
    for key in ("device", "tflm", "tflite", "float"):
        table.add_row(f"accuracy {key}", pct(r["accuracy"][key]))
    table.add_row("device = TFLM logits (bytes)", pct(r["agreement"]["device_tflm_exact_logits"]))
    table.add_row("device = TFLite class", pct(r["agreement"]["device_tflite_argmax"]))
    table.add_row("device = float class", pct(r["agreement"]["device_float_argmax"]))
    from lenet_edge.host.report import unit_name

    lat = r["latency"]
    median = "n/a" if lat["median"] is None else f"{lat['median']:,}"
    if "median_us" in lat:
        median += f" ({lat['median_us']:,} us)"
    table.add_row(f"latency median ({unit_name(lat['unit'])})", median)
    table.add_row(f"throughput ({items}/s)", str(r["throughput_digits_per_s"]))
    if r.get("per_layer"):
        pl = r["per_layer"]
        table.add_row(f"per-layer identical {items}", f"{pl['identical_digits']} / {pl['digits']}")
    Console().print(table)
    if result.failures:
        for failure in result.failures:
            console.print(f"[red]FAILED:[/] {failure}")
    elif not r["partial"]:
        console.print("[green]PASSED[/]: the device computes exactly what TFLM computes")
    console.print(f"report: {result.out_dir / 'report.md'}")
