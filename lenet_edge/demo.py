"""`lenet-edge demo`: the main job end to end on an emulated Cortex-M.

bundled model -> generated C (export) -> firmware (build) -> QEMU -> validation over the
emulated serial port -> report. Every step is the same code the single commands run.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from lenet_edge.firmware_templates.boards import DEFAULT_BOARD
from lenet_edge.flows import check_board_name


@click.command("demo")
@click.option("--count", default=1000, show_default=True, type=click.IntRange(min=1), help="MNIST test digits to classify on the device.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, callback=check_board_name, help="Emulated board (qemu-...).")
@click.option("--variant", default="modern", show_default=True, help="Bundled model variant.")
@click.option("--out", "out_dir", default="lenet-edge-demo", show_default=True, type=click.Path(path_type=Path), help="Where the export, firmware and report go.")
@click.option("--per-layer", "per_layer", default=1, show_default=True, type=click.IntRange(min=0), metavar="K", help="Check every intermediate tensor of the first K digits.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="MNIST directory (default: $LENET_EDGE_DATA, cache, download).")
def demo(count, board, variant, out_dir, per_layer, data_dir):
    """Run the main job end to end: export the bundled LeNet-5 to C, build firmware for an
    emulated Cortex-M, start QEMU, classify MNIST digits over its serial port, and report.

    \b
    Writes OUT/export/ (model, C library, firmware project and build) and
    OUT/report/ (report.json, report.md, confusion_matrix.png, disagreements.png).
    Exits non-zero if the device's logits differ from TFLM's on any digit.
    """
    from lenet_edge import flows
    from lenet_edge.bundled import bundled_model
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.firmware_templates.boards import get_board
    from lenet_edge.host.summary import run_and_summarise

    console = Console(stderr=True)
    if not get_board(board).is_qemu:
        raise LenetEdgeError(f"the demo runs on an emulated board; {board} is real hardware (try {DEFAULT_BOARD})")
    export_dir = out_dir / "export"
    model = bundled_model(variant, "tflite")
    console.rule("1/4 export: bundled model -> C")
    flows.export_model(model.read_bytes(), export_dir, measure_tflm=False, measure_code=False)
    console.print(f"C library in {export_dir / 'c'}")
    console.rule(f"2/4 build: firmware for {board}")
    build = flows.build(board, export_dir, console)
    console.print(f"{build.elf}: flash {build.flash_bytes} B, RAM {build.ram_bytes} B")
    console.rule("3/4 run: QEMU")
    with flows.emulated_device(board, build.elf) as url:
        console.print(f"UART0 at {url}")
        console.rule(f"4/4 validate: {count} digits over serial")
        return run_and_summarise(url, console, model_dir=export_dir, count=count,
                                 out_dir=out_dir / "report", per_layer=per_layer, data_dir=data_dir)
