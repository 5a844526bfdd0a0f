"""Validation over a faulty serial link: QEMU behind the fault-injecting proxy.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/faulty_link.py [--count 300]
        [--rates 0 3e-3 5e-3]

For each rate r (faults per byte, in both directions: drops, bit flips and inserted bytes
each r x 0.3, stalls of 50 ms r x 0.1), plus one device reset a third of the way through
(none for the clean run), it runs the real `validate` path against the bundled model's
firmware on qemu-mps2-an386 and records: completed, results identical to the clean
run's (every digit's logits byte-identical to TFLM, as in the clean run), wall time and its ratio to the clean run's, and the link
figures (retransmissions, timeouts, CRC errors, garbage bytes, resets seen). Prints a
table, writes faulty_link.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BOARD = "qemu-mps2-an386"
DIGIT_BYTES = 135  # request bytes per digit (pixel-coded, framing included), for placing the reset


def rates_for(r: float):
    from lenet_edge.host.faultproxy import FaultRates

    return FaultRates(drop=0.3 * r, flip=0.3 * r, insert=0.3 * r, delay=0.1 * r, delay_s=0.05)


def one_run(elf, export_dir, out_dir, count, rate, seed, timeout):
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.firmware_templates.qemu import start_qemu
    from lenet_edge.host.faultproxy import FaultProxy
    from lenet_edge.host.validate import validate

    with start_qemu(BOARD, elf) as qemu:
        port = int(qemu.url.rsplit(":", 1)[1])
        reset_at = None if rate == 0 else (count // 3) * DIGIT_BYTES
        with FaultProxy(port, rates_for(rate), seed=seed, reset_after_bytes=reset_at,
                        reset=qemu.reset) as proxy:
            started = time.monotonic()
            error = None
            try:
                result = validate(proxy.url, model_dir=export_dir, count=count,
                                  out_dir=out_dir, timeout=timeout,
                                  console=Console(stderr=True, quiet=True))
            except LenetEdgeError as exc:
                result, error = None, str(exc)
            seconds = time.monotonic() - started
            faults = proxy.counts
    return result, error, seconds, faults


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--rates", type=float, nargs="+", default=[0.0, 3e-3, 5e-3])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=2.0, help="validate --timeout")
    p.add_argument("--json", type=Path, default=Path("faulty_link.json"))
    a = p.parse_args()

    from lenet_edge.bundled import bundled_model
    from lenet_edge.flows import export_model as export
    from lenet_edge.firmware_templates.build import build_firmware

    console = Console()
    rows = []
    with tempfile.TemporaryDirectory(prefix="faulty-link-") as tmp:
        tmp = Path(tmp)
        export(bundled_model().read_bytes(), tmp / "export", measure_tflm=False, measure_code=False)
        elf = build_firmware(BOARD, tmp / "export").elf
        # Untimed warm-up: the first validate in a process imports TensorFlow and loads
        # the references, which would flatter the ratios of the runs after it.
        one_run(elf, tmp / "export", tmp / "warm-up", 5, 0.0, a.seed, a.timeout)
        clean = None
        for rate in sorted(set(a.rates)):
            out = tmp / f"report-{rate}"
            result, error, seconds, faults = one_run(elf, tmp / "export", out, a.count, rate,
                                                        a.seed, a.timeout)
            report = result.report if result else None
            row = {"rate": rate, "completed": bool(report and not report["partial"]),
                   "error": error or (report or {}).get("partial_reason"),
                   "seconds": round(seconds, 1), "faults": faults.__dict__,
                   "link": report["link"] if report else None,
                   "exit_code": result.exit_code if result else 2}
            if report:
                row["stream_seconds"] = report["stream_seconds"]
                row["digits"] = report["count"]
                row["accuracy"] = report["accuracy"]["device"]
                row["exact_logits"] = report["agreement"]["device_tflm_exact_logits"]
                row["mismatch"] = report["mismatch"]
            if rate == 0:
                clean = row
            if clean and row["completed"]:
                row["same_as_clean"] = (row["digits"] == clean["digits"]
                                        and row["accuracy"] == clean["accuracy"]
                                        and row["exact_logits"] == 1.0 == clean["exact_logits"])
                row["time_ratio"] = round(seconds / clean["seconds"], 2)
                row["stream_ratio"] = round(row["stream_seconds"] / clean["stream_seconds"], 2)
            rows.append(row)
            console.print(f"rate {rate:g}: {'completed' if row['completed'] else 'FAILED'} "
                          f"in {seconds:.1f} s {row.get('error') or ''}")

    table = Table(title=f"validate {a.count} digits on {BOARD} through the fault proxy")
    for col in ("faults/B", "done", "= clean", "validate s", "x clean", "stream s", "x clean",
                "retrans.", "timeouts", "crc err.", "garbage B", "resets"):
        table.add_column(col, justify="right")
    for r in rows:
        link = r["link"] or {}
        table.add_row(f"{r['rate']:g}", "yes" if r["completed"] else "NO",
                      {True: "yes", False: "NO"}.get(r.get("same_as_clean"), "-"),
                      str(r["seconds"]), str(r.get("time_ratio", "-")),
                      str(r.get("stream_seconds", "-")), str(r.get("stream_ratio", "-")),
                      *(str(link.get(k, "-")) for k in ("retransmissions", "timeouts",
                                                         "crc_errors", "garbage_bytes",
                                                         "resets_seen")))
    console.print(table)
    a.json.write_text(json.dumps({"board": BOARD, "count": a.count, "seed": a.seed,
                                  "rows": rows}, indent=1) + "\n")
    console.print(f"wrote {a.json}")
    return 0 if all(r["completed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
