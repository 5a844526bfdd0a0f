"""End-to-end validation throughput on QEMU: digits/s over the emulated serial link.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/validation_throughput.py [--count 10000]

Exports the bundled model, builds the firmware for the board, starts QEMU and runs the
real `lenet-edge validate` path; prints a table and writes validation_throughput.json
(the report's figures plus the machine's load and CPU steal time, which the figure
depends on: on a virtual machine, steal slows QEMU's byte-by-byte UART hand-overs).

`--unpinned` runs QEMU without pinning it to one CPU (LENET_EDGE_QEMU_PIN=0), to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table


def cpu_times() -> list[int]:
    """Aggregate CPU jiffies from /proc/stat (user nice system idle iowait irq softirq steal)."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def steal_percent(before: list[int], after: list[int]) -> float | None:
    if len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after)]
    return round(100.0 * delta[7] / max(sum(delta), 1), 1)


def main() -> None:
    from lenet_edge.firmware_templates.boards import DEFAULT_BOARD

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--board", default=DEFAULT_BOARD)
    parser.add_argument("--export", "--model-dir", dest="model_dir", default=None)
    parser.add_argument("--json", default="validation_throughput.json")
    parser.add_argument("--unpinned", action="store_true", help="do not pin QEMU to one CPU (for comparison)")
    args = parser.parse_args()
    if args.unpinned:
        os.environ["LENET_EDGE_QEMU_PIN"] = "0"

    from lenet_edge.flows import emulated_device, firmware_for
    from lenet_edge.host.validate import validate

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from lenet_edge.bundled import bundled_model

        # The bundled model by default, exported into the temporary folder (not ./export).
        model = args.model_dir or bundled_model()
        elf, export_dir = firmware_for(args.board, model, work, console)
        load_before = os.getloadavg()[0]
        times_before = cpu_times()
        with emulated_device(args.board, elf) as url:
            result = validate(url, model_dir=export_dir, count=args.count, out_dir=work / "report", console=console)
        load_after = os.getloadavg()[0]
        times_after = cpu_times()
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
        "qemu_pinned_to_one_cpu": not args.unpinned,
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "cpu_steal_percent": steal_percent(times_before, times_after),
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
