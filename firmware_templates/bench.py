"""Firmware benchmark: flash/RAM of every board's image and guest instructions per
inference on each QEMU core. Prints a table and writes JSON.

    python -m lenet_edge.firmware_templates.bench --export out --count 100 --json bench.json

Counts come from the firmware's own counter (SysTick under `-icount shift=0`: guest
instructions in steps of 40, or 31.25 on the 32 MHz AN547), one request at a time so no
UART interrupt lands inside a measured inference.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from lenet_edge.firmware_templates.boards import BOARDS, QEMU_BOARDS
from lenet_edge.firmware_templates.build import build_firmware


def measure_board(board: str, export_dir: Path, work: Path, inputs: np.ndarray) -> dict:
    from lenet_edge.firmware_templates.qemu import run_qemu
    from lenet_edge.host.session import DeviceSession

    result = build_firmware(board, export_dir, work / board)
    row = {"board": board, "flash_bytes": result.flash_bytes, "ram_bytes": result.ram_bytes,
           "sections": result.sections, "stack_worst_case_bytes": result.stack["worst_case_bytes"]}
    if BOARDS[board].is_qemu and len(inputs):
        with run_qemu(board, result.elf) as url, DeviceSession(url) as session:
            info = session.info()
            counts = np.array([session.infer(x).count for x in inputs])
        row.update(counter_unit=info.fields["counter_unit"], count=len(counts),
                   per_inference_min=int(counts.min()), per_inference_median=int(np.median(counts)),
                   per_inference_max=int(counts.max()))
    return row


@click.command()
@click.option("--export", "export_dir", type=click.Path(path_type=Path), required=True)
@click.option("--count", type=int, default=100, show_default=True, help="Digits per QEMU core.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def main(export_dir: Path, count: int, json_path: Path | None) -> None:
    from lenet_edge.train.mnist import load_mnist

    images, _ = load_mnist("test")
    inputs = (images[:count].astype(np.int16) - 128).astype(np.int8)
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lenet-edge-bench-") as tmp:
        for board in BOARDS:
            with console.status(f"{board} ..."):
                rows.append(measure_board(board, export_dir, Path(tmp), inputs if board in QEMU_BOARDS else inputs[:0]))
    table = Table(title=f"firmware: image size and instructions per inference ({count} digits)")
    for col in ("board", "flash", "RAM", "weights", "arena", "stack est.", "unit", "min", "median", "max"):
        table.add_column(col, justify="left" if col in ("board", "unit") else "right")
    for r in rows:
        s = r["sections"]
        table.add_row(r["board"], f"{r['flash_bytes']:,}", f"{r['ram_bytes']:,}", f"{s['weights']:,}",
                      f"{s['arena']:,}", f"{r['stack_worst_case_bytes']:,}", r.get("counter_unit", "-"),
                      *(f"{r[k]:,}" if k in r else "-" for k in ("per_inference_min", "per_inference_median",
                                                                  "per_inference_max")))
    console.print(table)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        console.print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
