"""The whole LeNet family trained from scratch, timed: issue 11's "under 20 minutes" target.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/train_family.py [--out DIR] [--variant V ...]

Runs exactly what a user (and scripts/make_bundled_models.sh) runs, one fresh process per
command, with the default recipes and --seed 0, into DIR (never into the bundled assets):

    lenet-edge train --variant V --seed 0 --out DIR/V
    lenet-edge quantize --model DIR/V/lenet5.keras --out DIR/V

and for boosted-lenet4, after lenet4 (net 1 is the LeNet-4 just trained, as in the bundled
ensemble; the command trains nets 2 and 3 and quantizes all three):

    lenet-edge train --variant boosted-lenet4 --net1 DIR/lenet4/lenet5.keras --seed 0 --out DIR/boosted-lenet4

"Training" is each train command's wall time (process start to exit: data loading and the
Keras fit included); quantization is timed apart, since the target is about training. The
table also gives each variant's float and int8 (TFLM) test error of this run, so a faster
run is seen to be as good. Prints a table and writes DIR/train_family.json (with the
machine's load average before and after: the figures are only comparable on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lenet_edge.bundled import ENSEMBLE_VARIANT, FAMILY  # noqa: E402  (boosted after lenet4)

TARGET_SECONDS = 20 * 60


def lenet_edge(*args: str) -> float:
    """Run one lenet-edge command in its own process; its wall seconds."""
    exe = Path(sys.executable).with_name("lenet-edge")
    started = time.perf_counter()
    subprocess.run([str(exe), *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def train_variant(variant: str, out: Path) -> dict:
    folder = out / variant
    if variant == ENSEMBLE_VARIANT:
        net1 = out / "lenet4" / "lenet5.keras"
        if not net1.is_file():
            raise SystemExit("boosted-lenet4 reuses this run's lenet4 as net 1: include lenet4")
        train = lenet_edge("train", "--variant", variant, "--net1", str(net1), "--seed", "0",
                           "--out", str(folder))
        meta = json.loads((folder / "ensemble.json").read_text())
        return {"train_seconds": round(train, 1), "quantize_seconds": 0.0,
                "float_error": meta["float"]["float_ensemble_error"],
                "int8_error": meta["int8_tflm"]["ensemble_error"]}
    train = lenet_edge("train", "--variant", variant, "--seed", "0", "--out", str(folder))
    quantize = lenet_edge("quantize", "--model", str(folder / "lenet5.keras"), "--out", str(folder))
    report = json.loads((folder / "quant_report.json").read_text())
    return {"train_seconds": round(train, 1), "quantize_seconds": round(quantize, 1),
            "float_error": round(100 - report["float_accuracy"], 2),
            "int8_error": round(100 - report["int8_tflm_accuracy"], 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("train_family_out"),
                   help="folder for the trained models and train_family.json")
    p.add_argument("--variant", action="append", choices=FAMILY,
                   help="train only these (repeatable; default: the whole family)")
    args = p.parse_args()
    from rich.console import Console
    from rich.table import Table

    variants = [v for v in FAMILY if v in (args.variant or FAMILY)]
    args.out.mkdir(parents=True, exist_ok=True)
    console = Console(width=120)
    load_before = os.getloadavg()
    rows = {}
    for variant in variants:
        console.print(f"[bold]{variant}[/]: training ...")
        rows[variant] = train_variant(variant, args.out)
        console.print(f"  {rows[variant]}")
    total = round(sum(r["train_seconds"] for r in rows.values()), 1)
    result = {"variants": rows, "train_seconds_total": total,
              "target_seconds": TARGET_SECONDS if len(variants) == len(FAMILY) else None,
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "cpus": os.cpu_count()}

    table = Table(title="The LeNet family trained from scratch (default recipes, --seed 0)")
    for col in ("variant", "train s", "quantize s", "float error %", "int8 TFLM error %"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for variant, r in rows.items():
        table.add_row(variant, f"{r['train_seconds']:.1f}", f"{r['quantize_seconds']:.1f}",
                      f"{r['float_error']:.2f}", f"{r['int8_error']:.2f}")
    table.add_row("total", f"{total:.1f} ({total / 60:.1f} min)", "", "", "")
    console.print(table)
    path = args.out / "train_family.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {path}; load average {result['load_average_before']} -> "
                  f"{result['load_average_after']}")
    if result["target_seconds"] and total > TARGET_SECONDS:
        console.print(f"[red]over the {TARGET_SECONDS // 60}-minute target[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
