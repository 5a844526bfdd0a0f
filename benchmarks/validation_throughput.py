"""End-to-end validation throughput on QEMU: digits/s over the emulated serial link.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/validation_throughput.py [--count 10000]

Exports the bundled model, builds the firmware for the board, starts QEMU and runs the
real `lenet-edge validate` path; prints a table and writes validation_throughput.json
(the report's figures plus the machine's load, which the figure depends on: QEMU's
emulation speed bounds the on-device compute).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    from lenet_edge.firmware_templates.boards import DEFAULT_BOARD

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--board", default=DEFAULT_BOARD)
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--json", default="validation_throughput.json")
    args = parser.parse_args()

    from lenet_edge.firmware_templates.qemu import run_qemu
    from lenet_edge.host.cli import firmware_for
    from lenet_edge.host.validate import validate

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        elf, export_dir = firmware_for(args.board, args.model_dir, work, console)
        load_before = os.getloadavg()[0]
        with run_qemu(args.board, elf) as url:
            result = validate(url, model_dir=export_dir, count=args.count, out_dir=work / "report", console=console)
        load_after = os.getloadavg()[0]
    r = result.report
    figures = {
        "board": args.board,
        "count": r["count"],
        "throughput_digits_per_s": r["throughput_digits_per_s"],
        "stream_seconds": r["stream_seconds"],
        "device_tflm_exact_logits": r["agreement"]["device_tflm_exact_logits"],
        "accuracy_device": r["accuracy"]["device"],
        "latency_median": r["latency"]["median"],
        "latency_unit": r["latency"]["unit"],
        "retransmissions": r["link"]["retransmissions"],
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
    }
    table = Table(title="validation throughput (QEMU, end to end)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
