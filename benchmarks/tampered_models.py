"""Tampered-model suite: every seeded mutation of the bundled model, judged.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/tampered_models.py [--mnist 1000]

Each mutant (tests/tamper.py: targeted field edits, byte flips, truncations) must be
refused by `export` with one clear error, or exported into C bit-exact with TFLM on the
first --mnist MNIST test digits and --random stress inputs (tests/tamper_check.py). Prints
the figures (refused / exact / wrong / traceback / crash) per mutation family and writes
tampered_models.json with every mutant's outcome. Exits 1 on any wrong, traceback or crash.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from lenet_edge.bundled import VARIANTS  # noqa: E402
from tests.tamper import mutations  # noqa: E402
from tests.tamper_check import OUTCOMES, judge_all, tally  # noqa: E402


def family(name: str) -> str:
    """'tensor[3].scale[0]=nan' -> 'tensor.scale'; 'flip@...' -> 'flip'."""
    head = name.split("=")[0].split("@")[0]
    parts = [p.split("[")[0] for p in head.split(".")]
    return ".".join(parts[:1] + parts[-1:]) if len(parts) > 1 else parts[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="modern", choices=VARIANTS)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--flips", type=int, default=120)
    p.add_argument("--structure-flips", type=int, default=240)
    p.add_argument("--cuts", type=int, default=20)
    p.add_argument("--mnist", type=int, default=1000)
    p.add_argument("--random", type=int, default=256)
    p.add_argument("--only", help="judge only mutants whose name contains this")
    p.add_argument("--json", type=Path, default=Path("tampered_models.json"))
    a = p.parse_args()

    from lenet_edge.bundled import bundled_model

    data = bundled_model(a.variant, "tflite").read_bytes()
    mutants = mutations(data, seed=a.seed, flips=a.flips, structure_flips=a.structure_flips,
                        cuts=a.cuts)
    if a.only:
        mutants = [m for m in mutants if a.only in m.name]
    console = Console()
    start = time.monotonic()
    done = Counter()

    def progress(r):
        done[r["outcome"]] += 1
        if r["outcome"] not in ("refused", "exact"):
            console.print(f"[red]{r['outcome']}[/] {r['name']}: {r['detail']}")

    with console.status(f"judging {len(mutants)} mutants..."):
        results = judge_all(mutants, mnist=a.mnist, random=a.random, progress=progress)
    seconds = time.monotonic() - start

    by_family: dict[str, Counter] = {}
    for r in results:
        by_family.setdefault(family(r["name"]), Counter())[r["outcome"]] += 1
    table = Table(title=f"{len(results)} tampered variants of the bundled {a.variant} model "
                        f"({a.mnist} MNIST + {a.random} random inputs each)")
    table.add_column("mutation")
    for k in OUTCOMES:
        table.add_column(k, justify="right")
    for fam in sorted(by_family):
        table.add_row(fam, *(str(by_family[fam][k]) for k in OUTCOMES))
    totals = tally(results)
    table.add_row("[bold]total[/]", *(f"[bold]{totals[k]}[/]" for k in OUTCOMES))
    console.print(table)
    console.print(f"{seconds:.0f} s")
    a.json.write_text(json.dumps({
        "variant": a.variant, "seed": a.seed, "mnist_inputs": a.mnist, "random_inputs": a.random,
        "mutants": len(results), "totals": totals, "seconds": round(seconds, 1),
        "by_family": {f: dict(c) for f, c in sorted(by_family.items())}, "results": results,
    }, indent=1) + "\n")
    console.print(f"wrote {a.json}")
    return 0 if totals["wrong"] + totals["traceback"] + totals["crash"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
