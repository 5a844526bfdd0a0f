"""Boosted LeNet-4: the bundled ensemble's figures, and its two implementations checked equal.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/boosted_lenet4.py [--board B ...] [--count N]

1. the TFLM ensemble (three TflmModel runs + lenet_edge/ensemble.py's rule) and the
   generated C ensemble (codegen/ensemble.py, built for this machine) on every MNIST test
   digit: both outputs (ten int32 scores + nets run) compared byte for byte;
2. the zoo's row (lenet_edge/zoo.ensemble_zoo_row): errors, nets and multiply-adds per
   digit, and on each board (default: one per emulated core) the firmware with the three
   nets, flash, RAM, guest instructions per digit, its first --count answers checked
   against the TFLM ensemble's bytes.

Prints a table and writes boosted_lenet4.json. Exits 1 when the C and TFLM differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from lenet_edge.codegen.ensemble import build_host_runner, export_ensemble, run_host_runner  # noqa: E402
from lenet_edge.ensemble import output_bytes, read_ensemble  # noqa: E402
from lenet_edge.quantize.ensemble import tflm_ensemble  # noqa: E402
from lenet_edge.quantize.evaluate import model_inputs  # noqa: E402
from lenet_edge.train.datasets import load_test_set  # noqa: E402
from lenet_edge.zoo import ENSEMBLE_DIR, ensemble_zoo_row, zoo_boards  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--board", action="append", default=[], help="emulated board (repeatable)")
    p.add_argument("--count", type=int, default=20, help="digits checked on each device")
    p.add_argument("--out", type=Path, default=Path("boosted_out"))
    args = p.parse_args()
    console = Console(width=160)
    started = time.perf_counter()

    ensemble = read_ensemble(ENSEMBLE_DIR)
    data = load_test_set(None, (28, 28, 1))
    inputs = model_inputs(ensemble.models[0], data.images, data.name)
    t0 = time.perf_counter()
    scores, nets, _ = tflm_ensemble(ensemble, inputs)
    tflm_seconds = time.perf_counter() - t0
    expected = output_bytes(scores, nets)
    with tempfile.TemporaryDirectory() as tmp:
        export_ensemble(ensemble, Path(tmp) / "export")
        runner = build_host_runner(Path(tmp) / "export" / "c", Path(tmp) / "runner")
        t0 = time.perf_counter()
        got = run_host_runner(runner, inputs)
        c_seconds = time.perf_counter() - t0
    differing = int(np.sum(np.any(got != expected, axis=1)))

    row = ensemble_zoo_row(zoo_boards(tuple(args.board)), args.out, None, None, args.count)
    result = {"host_c_vs_tflm": {"digits": int(len(inputs)), "differing": differing,
                                 "tflm_seconds": round(tflm_seconds, 1),
                                 "host_c_seconds": round(c_seconds, 2)},
              "zoo_row": row, "seconds": round(time.perf_counter() - started, 1)}

    table = Table(title="Boosted LeNet-4 (bundled): ours vs the 1998 paper")
    for col in ("figure", "ours", "paper"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    paper = row["paper"]
    table.add_row("int8 TFLM error, %", f"{row['int8_tflm_error']:.2f}", f"{paper['error']}")
    table.add_row("float error, %", f"{row['float_error_bundled_report']:.2f}", "")
    table.add_row("nets per digit", f"{row['nets_per_digit']:.3f}", f"{paper['nets_per_digit']}")
    table.add_row("multiply-adds per digit", f"{row['macs_executed']:,}", f"{paper['macs']:,}")
    table.add_row("parameters", f"{row['parameters']:,}", f"{paper['parameters']:,}")
    table.add_row("reject for 0.5 % error, %", f"{row['rejection_for_0.5_percent_error']:.2f}",
                  "0.5")
    table.add_row("C == TFLM ensemble (digits)", f"{len(inputs) - differing:,} / {len(inputs):,}",
                  "")
    for name, b in row["boards"].items():
        table.add_row(f"{name} ({b['cpu']}): instructions/digit (1 net, 3 nets)",
                      f"{b['instructions']:,} ({b['instructions_one_net']:,}, "
                      f"{b['instructions_three_nets']:,})", "")
        table.add_row(f"{name}: flash, RAM; bit-exact digits",
                      f"{b['flash_bytes']:,}, {b['ram_bytes']:,}; {b['bit_exact_digits']}", "")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "boosted_lenet4.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {path} ({result['seconds']:.0f} s)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
