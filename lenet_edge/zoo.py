"""`lenet-edge zoo`: the bundled LeNet family side by side with the papers' figures.

For every bundled variant, one row: the paper's error, parameters and multiply-adds next to
ours (float error from the bundled quant_report.json; int8 error under TFLM and the
rejection needed for 0.5 % error, both measured now on the test set from the TFLM logits),
the MACs the generated C executes, and flash, RAM and guest instructions per inference of
the firmware on one emulated board (measured by `lenet-edge bench`'s own routine, which
refuses to report a firmware whose logits are not byte-identical to TFLM's).

Prints a table and writes zoo.json and zoo_pareto.png (int8 error against instructions
and against flash). Not measured here: Boosted LeNet-4 and zip1989 (not built yet), and the rejection from the device's own logits (they are TFLM's, byte for
byte, on the digits the device ran; the full-set figure uses TFLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from lenet_edge.bundled import VARIANTS, bundled_model
from lenet_edge.host.rejection import rejection_for_error

# LeCun et al. 1998 (Fig. 9 errors without distortions; multiply-adds and parameters from
# section III-C). `modern` is ours (a LeNet-5 shape with ReLU and max pooling): no paper row.
PAPER = {
    "classic": {"name": "LeNet-5", "error": 0.95, "parameters": 60_000, "macs": 401_000},
    "lenet1": {"name": "LeNet-1", "error": 1.7, "parameters": 2_600, "macs": 100_000},
    "lenet4": {"name": "LeNet-4", "error": 1.1, "parameters": 17_000, "macs": 260_000},
}
def _bundled_report(variant: str, name: str) -> dict:
    return json.loads((bundled_model(variant).parent / name).read_text())


def zoo_row(variant: str, board, out_dir: Path, images: np.ndarray, labels: np.ndarray,
            count: int) -> dict:
    from lenet_edge.bench import measure
    from lenet_edge.flows import export_model as export
    from lenet_edge.quantize.evaluate import model_inputs
    from lenet_edge.quantize.tflm import TflmModel

    model = bundled_model(variant).read_bytes()
    exported = export(model, out_dir / variant / "export", cpus=(board.cpu,))
    # The model's own input shape and quantization (shape checked), not an MNIST constant.
    all_inputs = model_inputs(model, images, "the MNIST test set")
    logits = TflmModel(model).run_batch(all_inputs)
    inputs = all_inputs[:count]
    device = measure(board, variant, exported.out_dir, exported.report, out_dir / variant,
                     inputs, logits[:count], inputs[:10])
    quant = _bundled_report(variant, "quant_report.json")
    train = _bundled_report(variant, "train_metrics.json")
    return {
        "paper": PAPER.get(variant),
        # From the bundled model's quantize run (all 10,000 test digits): no TensorFlow here.
        "float_error_bundled_report": round(100 - quant["float_accuracy"], 2),
        "int8_tflm_error": round(100.0 * float(np.mean(np.argmax(logits, 1) != labels)), 2),
        "test_digits": int(len(labels)),
        "rejection_for_0.5_percent_error": rejection_for_error(logits, labels),
        "parameters": int(train["parameters"]),
        "macs_executed": device["macs_executed"],
        "macs_dense": device["macs_dense"],
        "flash_bytes": device["flash_bytes"],
        "ram_bytes": device["ram_bytes"],
        "instructions": device["instructions"],
        "device_bit_exact_digits": device["bit_exact_digits"],
    }


def _table(rows: dict, board: str) -> Table:
    table = Table(title=f"the LeNet family: paper vs ours (error %, int8 on {board})")
    cols = ("variant", "paper error", "float (10k)", "int8 TFLM", "reject for 0.5 %",
            "params (paper)", "MACs executed (paper)", "MACs dense", "flash", "RAM",
            "instructions")
    for col in cols:
        table.add_column(col, justify="left" if col == "variant" else "right")
    for variant, r in rows.items():
        p = r["paper"] or {}

        def paper(key, fmt="{:,}"):
            return fmt.format(p[key]) if key in p else "—"

        table.add_row(variant, paper("error", "{:.2f}"), f"{r['float_error_bundled_report']:.2f}",
                      f"{r['int8_tflm_error']:.2f}",
                      f"{r['rejection_for_0.5_percent_error']:.2f}",
                      f"{r['parameters']:,} ({paper('parameters')})",
                      f"{r['macs_executed']:,} ({paper('macs')})", f"{r['macs_dense']:,}",
                      f"{r['flash_bytes']:,}", f"{r['ram_bytes']:,}", f"{r['instructions']:,}")
    return table


def pareto_png(path: Path, rows: dict, board: str) -> None:
    """int8 error against instructions per inference and against flash, one point per
    variant: the family's trade-off (lower left is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for ax, key, scale, label in (
            (axes[0], "instructions", 1e6, f"million guest instructions per digit ({board})"),
            (axes[1], "flash_bytes", 1e3, "flash, KB")):
        for variant, r in rows.items():
            x = r[key] / scale
            ax.scatter(x, r["int8_tflm_error"], color="tab:blue")
            ax.annotate(variant, (x, r["int8_tflm_error"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("int8 error, %")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    fig.suptitle("the LeNet family: error against cost")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--board", default="qemu-mps2-an386", show_default=True,
              help="Emulated board whose core runs the firmware (see `lenet-edge boards`).")
@click.option("--variants", "variants", multiple=True, type=click.Choice(VARIANTS),
              help="Bundled variants (repeatable; default: every one).")
@click.option("--count", default=20, show_default=True, type=click.IntRange(min=1),
              help="Digits run on the device (checked byte for byte against TFLM).")
@click.option("--limit", type=click.IntRange(min=1),
              help="Test digits for the int8 error and rejection (default: all 10,000).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("zoo_out"),
              show_default=True, help="Folder for exports, firmware and zoo.json.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="MNIST folder (default: $LENET_EDGE_DATA, cache, download).")
def zoo(board, variants, count, limit, out_dir, data_dir):
    """The bundled LeNet family next to the 1998 paper's figures.

    Per variant: the paper's error, parameters and multiply-adds; ours: float error, int8
    error under TFLM, the rejection needed for 0.5 % error, parameters, MACs executed by
    the generated C, and flash, RAM and guest instructions per inference on one emulated
    board (bit-exact with TFLM, or no figure). Prints a table and writes OUT/zoo.json and
    OUT/zoo_pareto.png (int8 error against instructions and against flash).
    """
    from lenet_edge.firmware_templates.boards import emulated_board
    from lenet_edge.train.mnist import load_mnist

    target = emulated_board(board, emulate=True)
    images, labels = load_mnist("test", data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    count = min(count, len(images))
    console = Console(width=max(Console().width, 140))
    rows = {}
    for variant in list(variants) or list(VARIANTS):
        console.print(f"{variant}: export, TFLM on {len(images):,} digits, firmware on {board}")
        rows[variant] = zoo_row(variant, target, out_dir, images, labels, count)
    console.print(_table(rows, board))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "zoo.json"
    path.write_text(json.dumps({"board": board, "cpu": target.cpu,
                                "unit": "guest instructions per inference, "
                                        "qemu-system-arm -icount shift=0",
                                "variants": rows}, indent=2, sort_keys=True) + "\n")
    pareto_png(out_dir / "zoo_pareto.png", rows, board)
    console.print(f"wrote {path} and {out_dir / 'zoo_pareto.png'}")
    return 0
