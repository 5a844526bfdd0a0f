"""Inference code per core at the export's -Os and at the firmware's -O2.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/code_size.py [--variant modern] [--json code_size.json]

`lenet-edge export` (and the bench's "inference code" column) measure the generated
library at -Os (codegen/cross.py); the firmware lenet-edge renders compiles it at -O2
(firmware_templates/render.py DEFAULT_OPT), where GCC inlines and unrolls more and where
the Cortex-M0's Thumb-1 asm kernels are on. This prints both (code = .text; the weights
and tables are .rodata, shown apart) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

CORES = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
OPTS = ("-Os", "-O2")


def main() -> None:
    from lenet_edge.bundled import bundled_model
    from lenet_edge.codegen.cross import code_bytes
    from lenet_edge.codegen.export import export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="modern")
    parser.add_argument("--json", default="code_size.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exported = export(bundled_model(args.variant).read_bytes(), Path(tmp), cpus=CORES,
                          measure_tflm=False, measure_code=False)
        sizes = {opt: code_bytes(exported.out_dir / "c", CORES, opt) for opt in OPTS}
    rows = {core: {opt.lstrip("-"): {"code": sizes[opt][core]["code"],
                                     "rodata": sizes[opt][core]["rodata"]} for opt in OPTS}
            for core in CORES}
    table = Table(title=f"{args.variant}: the generated library's code (.text) and constants "
                        "(.rodata), bytes")
    for col in ("core", "code -Os", "code -O2", "rodata"):
        table.add_column(col, justify="right")
    for core, r in rows.items():
        table.add_row(core, f"{r['Os']['code']:,}", f"{r['O2']['code']:,}", f"{r['Os']['rodata']:,}")
    Console().print(table)
    Path(args.json).write_text(json.dumps({"variant": args.variant, "cores": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
