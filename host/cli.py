"""`lenet-edge validate`: on-device accuracy over serial, against float, TFLite and TFLM."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from lenet_edge.errors import LenetEdgeError, warn
from lenet_edge.flows import check_board_name
from lenet_edge.host.summary import print_summary, run_and_summarise  # noqa: F401 (moved there)
from lenet_edge.layout import DEFAULT_EXPORT_DIR, ExportLayout


def accuracy_fraction(value: float) -> float:
    """--min-accuracy as a fraction: 0..1 as given, (1, 100] read as a percentage."""
    if not 0.0 <= value <= 100.0:
        raise click.BadParameter(f"{value} is not an accuracy: give a fraction 0..1 (0.99) "
                                 "or a percentage up to 100 (99)", param_hint="--min-accuracy")
    return value / 100.0 if value > 1.0 else value


@click.command("validate")
@click.option("--port", "url", metavar="URL", multiple=True, help="pyserial URL: /dev/ttyACM0, socket://127.0.0.1:P, rfc2217://... Give it several times to share the images among several devices (one merged report).")
@click.option("--board", metavar="BOARD", callback=check_board_name, help="qemu-... starts that emulated board itself (building its firmware if needed); a real board with --emulate runs its own image on QEMU's model of its chip.")
@click.option("--board-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A board described in TOML (README: 'A board of your own'), instead of --board.")
@click.option("--emulate", is_flag=True, help="With a real --board: run its image in QEMU (see `lenet-edge boards`).")
@click.option("--export", "--model", "model_dir", type=click.Path(path_type=Path), help=f"Export folder (or a quantize folder, or a .tflite, or an ensemble folder such as lenet_edge/assets/boosted_lenet4, or its `export --ensemble` folder) of the model the firmware runs [default: {DEFAULT_EXPORT_DIR}/ when it holds an export, else the bundled model (with --board: exported there first)].")
@click.option("--model-dir", "old_model_dir", type=click.Path(path_type=Path), hidden=True, help="Deprecated name of --export.")
@click.option("--count", default=10000, show_default=True, type=click.IntRange(min=1), help="How many test images to stream (the first N).")
@click.option("--report", "out_dir", default="validation", show_default=True, type=click.Path(path_type=Path), help="Directory for report.json, report.md and the PNGs.")
@click.option("--min-accuracy", default=0.0, show_default=True, callback=lambda ctx, param, v: accuracy_fraction(v), help="Fail (exit 1) below this device accuracy: a fraction 0..1 (0.99), or a percentage above 1 up to 100 (99).")
@click.option("--per-layer", "per_layer", default=0, show_default=True, type=click.IntRange(min=0), metavar="K", help="Also compare every intermediate tensor with TFLM for the first K images.")
@click.option("--force", is_flag=True, help="Validate even when the device's model hash differs from the model's.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Test set: MNIST directory (default: $LENET_EDGE_DATA, cache, download), an IDX images file, an .npz with x_test/y_test, or DIR/<label>/*.png.")
@click.option("--timeout", default=2.0, show_default=True, type=click.FloatRange(min=0.01, max=600), help="Longest retransmission timeout, seconds (it adapts to the link below this, and only probes: a request is resent once the device proves it lost); 5x this of silence ends validation.")
@click.option("--baud", type=click.IntRange(min=1), default=115200, show_default=True, help="Baud rate of the serial port (and, with --board, of the firmware it builds).")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1, max=64), help="With an emulated --board: start this many emulators and share the images among them.")
def validate(url, board, board_file, emulate, model_dir, old_model_dir, count, out_dir, min_accuracy, per_layer, force, data_dir, timeout, baud, jobs):
    """Stream test images (MNIST's by default) to a device over serial and prove it computes the model.

    Checks the device's model hash, streams the images (several in flight, compressed),
    and compares the device's int8 logits with TFLM (must be byte-identical) and its
    predictions with the float and TFLite models. Writes OUT/report.json, report.md,
    confusion_matrix.png, disagreements.png and error_rejection.png. Exits 1 when the
    logits differ from TFLM or accuracy is below --min-accuracy, 130 on Ctrl-C (the
    partial report is kept). An ensemble (Boosted LeNet-4) is checked against the TFLM
    ensemble: its scores and nets run, byte for byte.

    \b
    Examples:
      lenet-edge validate --board qemu-mps2-an386 --count 1000
      lenet-edge validate --board bbc-microbit --emulate --count 200
      lenet-edge validate --port /dev/ttyACM0 --export out --report val
      lenet-edge validate --port /dev/ttyACM0 --port /dev/ttyACM1 --export out
      lenet-edge validate --board qemu-mps2-an386 --jobs 2
      lenet-edge validate --board qemu-mps2-an386 --model lenet_edge/assets/boosted_lenet4
    """
    from lenet_edge.flows import validate_on_emulator, validation_board
    from lenet_edge.host.validate import prepare_report_dir

    console = Console(stderr=True)
    if old_model_dir is not None:
        if model_dir is not None:
            raise LenetEdgeError("give --export (--model-dir is its old name), not both")
        warn("--model-dir is deprecated: use --export (the same folder)")
        model_dir = old_model_dir
    urls = list(url) or None
    if board is None and board_file is None and urls is None:
        raise LenetEdgeError("give --port URL (the device's serial port) or --board qemu-... (start an emulator)")
    board = validation_board(board, board_file, emulate, urls)
    if jobs > 1 and board is None:
        raise LenetEdgeError("--jobs starts emulators: give it with an emulated --board "
                             "(for real devices give --port once per device)")
    if model_dir is None and ExportLayout().has_library():
        model_dir = DEFAULT_EXPORT_DIR  # the folder `lenet-edge export` wrote by default
    prepare_report_dir(out_dir)  # before building or streaming anything
    options = dict(count=count, min_accuracy=min_accuracy, force=force, per_layer=per_layer,
                   data_dir=data_dir, timeout=timeout)
    if board is None:
        return run_and_summarise(urls, console, model_dir=model_dir, out_dir=out_dir,
                                 baudrate=baud, **options)
    return validate_on_emulator(board, model_dir, Path(out_dir), console, emulate=emulate,
                                baud=baud, jobs=jobs, **options)
