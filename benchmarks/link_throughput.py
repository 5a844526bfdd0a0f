"""Validation throughput over UART-paced links and with several devices (QEMU).

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/link_throughput.py [--count 2000]
        [--board qemu-mps2-an386] [--only NAME ...]

Runs the real `validate` path against the bundled model's firmware in QEMU, each device
behind the fault proxy in its baud-paced mode (no faults: a UART at 115200 or 921600 baud,
8N1; the proxy in a process of its own) or unpaced (QEMU's own TCP serial port), with one or two emulators, and with the
input encodings the host would otherwise have to use (runs: what devices without the
pixels encoding get). Prints a table, writes link_throughput.json: digits/s end to end,
request bytes per digit on the link, the device = TFLM check, retransmissions, load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# name: (devices, baud or None for unpaced, encoding)
CONFIGS = {
    "runs-115200": (1, 115200, "runs"),
    "pixels-115200": (1, 115200, "pixels"),
    "runs-921600": (1, 921600, "runs"),
    "pixels-921600": (1, 921600, "pixels"),
    "pixels-unpaced": (1, None, "pixels"),
    "2x-pixels-unpaced": (2, None, "pixels"),
    "2x-pixels-115200": (2, 115200, "pixels"),
}


@contextlib.contextmanager
def encoding(name: str):
    """Make the host use only raw/runs (as for a device whose INFO lists no pixels)."""
    from lenet_edge.host import pixel_coder, session

    if name == "pixels":
        yield
        return

    class RunsOnly(pixel_coder.InputEncoder):
        @classmethod
        def for_device(cls, info):
            return cls(["raw", "runs"])

    saved = session.InputEncoder
    session.InputEncoder = RunsOnly
    try:
        yield
    finally:
        session.InputEncoder = saved


@contextlib.contextmanager
def paced_link(port: int, baud: int):
    """The fault proxy's paced mode (no faults) in a subprocess; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "lenet_edge.host.faultproxy", str(port), "--baud", str(baud)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"the proxy did not start: {line}")
        yield line[1]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def one_run(board, elf, export_dir, work, devices, baud, enc, count):
    from lenet_edge.firmware_templates.qemu import start_qemu
    from lenet_edge.host.validate import validate

    with contextlib.ExitStack() as stack:
        urls = []
        for _ in range(devices):
            # Each emulator pins itself to the CPU idlest when it starts: with two, the same
            # one (the first waits idle for its connection). Let the OS spread them, as
            # `validate --jobs` does.
            qemu = stack.enter_context(start_qemu(board, elf, pin=devices == 1))
            if baud:
                # The paced "wire" in a process of its own: like a real UART, it must not
                # wait for the host's interpreter (threads in one process share its lock).
                port = int(qemu.url.rsplit(":", 1)[1])
                urls.append(stack.enter_context(paced_link(port, baud)))
            else:
                urls.append(qemu.url)
        load = os.getloadavg()[0]
        started = time.monotonic()
        with encoding(enc):
            result = validate(urls if devices > 1 else urls[0], model_dir=export_dir, count=count,
                              out_dir=work / "report", console=Console(stderr=True, quiet=True))
        wall = time.monotonic() - started
    r = result.report
    link = r["link"]
    return {
        "devices": devices,
        "baud": baud,
        "encoding": enc,
        "count": r["count"],
        "digits_per_s": r["throughput_digits_per_s"],
        "per_device_digits_per_s": [d["throughput_digits_per_s"] for d in r["devices"]],
        "request_bytes_per_digit": round(link["sent_bytes"] / max(r["count"], 1), 1),
        "link_ceiling_digits_per_s": round(baud / 10 / (link["sent_bytes"] / r["count"]), 1) if baud else None,
        "device_tflm_exact_logits": r["agreement"]["device_tflm_exact_logits"],
        "retransmissions": link["retransmissions"],
        "validate_wall_s": round(wall, 1),
        "load_average_1min_before": round(load, 2),
    }


def main() -> None:
    from lenet_edge.firmware_templates.boards import get_board

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--board", default="qemu-mps2-an386")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="run only these configurations")
    parser.add_argument("--json", default="link_throughput.json")
    args = parser.parse_args()

    from lenet_edge.flows import firmware_for

    console = Console(stderr=True)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        board = get_board(args.board)
        elf, export_dir = firmware_for(board, None, work, console)
        for name in args.only or CONFIGS:
            devices, baud, enc = CONFIGS[name]
            console.print(f"{name}: {devices} x {args.board}, {baud or 'unpaced'}, {enc}, {args.count} digits")
            rows[name] = one_run(board, elf, export_dir, work, devices, baud, enc, args.count)
            console.print(f"  {rows[name]['digits_per_s']} digits/s")
    table = Table(title=f"validation throughput by link ({args.board}, {args.count} digits)")
    for col in ("run", "devices", "link", "encoding", "digits/s", "per device", "bytes up/digit",
                "link ceiling", "= TFLM", "resent", "load"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, str(r["devices"]), f"{r['baud']} baud" if r["baud"] else "unpaced", r["encoding"],
                      f"{r['digits_per_s']:.1f}", ", ".join(f"{x:.1f}" for x in r["per_device_digits_per_s"]),
                      f"{r['request_bytes_per_digit']:.1f}",
                      "-" if r["link_ceiling_digits_per_s"] is None else f"{r['link_ceiling_digits_per_s']:.1f}",
                      f"{100 * r['device_tflm_exact_logits']:.2f} %", str(r["retransmissions"]),
                      f"{r['load_average_1min_before']:.1f}")
    Console(width=200).print(table)
    out = {"board": args.board, "count": args.count, "cpus": os.cpu_count(), "runs": rows}
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
