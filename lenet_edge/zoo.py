"""`lenet-edge zoo`: the bundled LeNet family side by side with the papers' figures.

For every bundled variant, one row: the paper's error, parameters and multiply-adds next to
ours (float error from the bundled quant_report.json; int8 error under TFLM and the
rejection needed for 0.5 % error, both measured now on the test set from the TFLM logits),
the MACs the generated C executes, and flash, RAM and guest instructions per inference of
the firmware on every emulated Cortex-M core (one board per core by default; measured by
`lenet-edge bench`'s own routine, which refuses to report a firmware whose logits are not
byte-identical to TFLM's).

Each variant is measured on its own test set: MNIST's 10,000 digits, or for the 16x16
zip1989 nets the 2,007 digits of their split (train/zip1989.py), chosen by the model's
input shape (train/datasets.load_test_set).

Boosted LeNet-4 (``boosted-lenet4``, three bundled LeNet-4s and lenet_edge/ensemble.py's
rule) gets a row too: its int8 error is the TFLM ensemble's, its firmware holds the three
nets and the generated C rule (codegen/ensemble.py), its MACs and instructions are the
average per digit over the test set's mix of early exits and full runs.

Prints a table and writes zoo.json and zoo_pareto.png (int8 error against instructions
and against flash). Not measured here: the rejection from the device's own logits (they
are TFLM's, byte for byte, on the digits the device ran; the full-set figure uses TFLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from lenet_edge.bundled import ENSEMBLE_VARIANT as ENSEMBLE
from lenet_edge.bundled import FAMILY, VARIANTS, bundled_ensemble_dir, bundled_model
from lenet_edge.host.rejection import rejection_for_error

ENSEMBLE_DIR = bundled_ensemble_dir()

# LeCun et al. 1998 (Fig. 9 errors without distortions; multiply-adds and parameters from
# section III-C). `modern` is ours (a LeNet-5 shape with ReLU and max pooling): no paper row.
PAPER = {
    "classic": {"name": "LeNet-5", "error": 0.95, "parameters": 60_000, "macs": 401_000},
    "classic-1998": {"name": "LeNet-5", "error": 0.95, "parameters": 60_000, "macs": 401_000},
    # "rejection": what the papers give for the rejection needed for 0.5 % error.
    "lenet1": {"name": "LeNet-1", "error": 1.7, "parameters": 2_600, "macs": 100_000,
               "rejection": "about 3.7"},
    "lenet4": {"name": "LeNet-4", "error": 1.1, "parameters": 17_000, "macs": 260_000,
               "rejection": "about 1.8"},
    # LeCun et al. 1989 on USPS (5.0 %), and the reproduction on its 16x16 MNIST split
    # (github.com/karpathy/lecun1989-repro): 4.09 % faithful, 1.59 % modern recipe.
    # "macs": the paper's 64,660 connections (biases included).
    "zip1989": {"name": "1989 zip-code net", "error": 5.0, "reproduction_error": 4.09,
                "parameters": 9_760, "macs": 64_660,
                "rejection": "1 % error at about 9 % (1990)"},
    "zip1989-modern": {"name": "1989 net, modern recipe", "reproduction_error": 1.59,
                       "parameters": 9_760, "macs": 64_660},
    # Boosted LeNet-4's 0.7 % is with distorted training images (the paper gives no other);
    # 460 K multiply-adds: the average cost (about 1.75 nets); 51 K: its memory (variables).
    ENSEMBLE: {"name": "Boosted LeNet-4", "error": 0.7, "parameters": 51_000,
               "macs": 460_000, "nets_per_digit": 1.75, "rejection": "0.5"},
}


def _bundled_report(variant: str, name: str) -> dict:
    return json.loads((bundled_model(variant).parent / name).read_text())


def zoo_boards(names: tuple[str, ...] = ()) -> list:
    """The boards to measure on: the named ones, else one emulated board per Cortex-M core
    (the first in the board table's order), so every core QEMU runs gets its figure."""
    from lenet_edge.firmware_templates.boards import BOARDS, EMULATED_BOARDS, emulated_board

    if not names:
        cores: dict[str, str] = {}
        for name in EMULATED_BOARDS:
            cores.setdefault(BOARDS[name].cpu, name)
        names = tuple(cores.values())
    return [emulated_board(name, emulate=True) for name in names]


def zoo_row(variant: str, boards: list, out_dir: Path, data_dir, limit: int | None,
            count: int) -> dict:
    from lenet_edge.bench import measure
    from lenet_edge.flows import export_model as export
    from lenet_edge.quantize.evaluate import input_spec, model_inputs
    from lenet_edge.quantize.tflm import TflmModel
    from lenet_edge.train.datasets import load_test_set

    model = bundled_model(variant).read_bytes()
    data = load_test_set(data_dir, input_spec(model)[0]).head(limit)
    labels = data.labels
    exported = export(model, out_dir / variant / "export",
                      cpus=tuple(sorted({b.cpu for b in boards})))
    # The model's own input shape and quantization (shape checked), not an MNIST constant.
    all_inputs = model_inputs(model, data.images, data.name)
    logits = TflmModel(model).run_batch(all_inputs)
    inputs = all_inputs[:count]
    measured = {}
    for board in boards:
        device = measure(board, variant, exported.out_dir, exported.report, out_dir / variant,
                         inputs, logits[:count], inputs[:10], cycles=False)
        measured[board.name] = {key: device[key] for key in (
            "cpu", "flash_bytes", "ram_bytes", "instructions", "bit_exact_digits")}
    first = measured[boards[0].name]
    quant = _bundled_report(variant, "quant_report.json")
    train = _bundled_report(variant, "train_metrics.json")
    return {
        "paper": PAPER.get(variant),
        # From the bundled model's quantize run (its whole test set): no TensorFlow here.
        "float_error_bundled_report": round(100 - quant["float_accuracy"], 2),
        "int8_tflm_error": round(100.0 * float(np.mean(np.argmax(logits, 1) != labels)), 2),
        "test_set": data.name,
        "test_digits": int(len(labels)),
        "rejection_for_0.5_percent_error": rejection_for_error(logits, labels),
        "parameters": int(train["parameters"]),
        "macs_executed": int(exported.report["macs_executed"]),
        "macs_dense": int(exported.report["macs_dense"]),
        # The first board's figures (the table's flash and RAM), then every board's.
        "flash_bytes": first["flash_bytes"],
        "ram_bytes": first["ram_bytes"],
        "instructions": first["instructions"],
        "device_bit_exact_digits": min(m["bit_exact_digits"] for m in measured.values()),
        "boards": measured,
    }


def ensemble_zoo_row(boards: list, out_dir: Path, data_dir, limit: int | None,
                     count: int) -> dict:
    """The Boosted LeNet-4 row: the int8 ensemble under TFLM (three TflmModel runs + the
    rule) on the test set; on each board the firmware with the three nets and the C rule,
    whose every answer must equal the Python rule's bytes (or no figure). Instructions per
    digit: the average over the test set's mix of 1-net and 3-net digits, from the median
    count of each kind measured on the device (bench.measure with bench.EnsembleMix, the
    routine and the weighing `bench --variants boosted-lenet4` uses)."""
    from lenet_edge import flows
    from lenet_edge.bench import EnsembleMix, ensemble_digits, measure
    from lenet_edge.ensemble import NETS, output_bytes, read_ensemble
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.evaluate import model_inputs
    from lenet_edge.train.datasets import load_test_set

    ensemble = read_ensemble(ENSEMBLE_DIR)
    data = load_test_set(data_dir, (28, 28, 1)).head(limit)
    inputs = model_inputs(ensemble.models[0], data.images, data.name)
    scores, nets_run, _ = tflm_ensemble(ensemble, inputs)
    expected = output_bytes(scores, nets_run)
    # The device digits: the first `count`, plus the first of each kind they lack.
    picked = ensemble_digits(nets_run, count)
    mix = EnsembleMix(nets_run[picked], float(np.mean(nets_run == NETS)))
    export_dir = out_dir / ENSEMBLE / "export"
    report = flows.export_ensemble_model(ensemble, export_dir,
                                         cpus=tuple(sorted({b.cpu for b in boards})))
    measured = {}
    for board in boards:
        # Every answer must equal the TFLM ensemble's bytes, or no figure (measure refuses).
        device = measure(board, ENSEMBLE, export_dir, report, out_dir / ENSEMBLE,
                         inputs[picked], expected[picked], inputs[:10], cycles=False,
                         ensemble=mix)
        measured[board.name] = {key: device[key] for key in (
            "cpu", "flash_bytes", "ram_bytes", "instructions", "instructions_one_net",
            "instructions_three_nets", "bit_exact_digits")}
    first = measured[boards[0].name]
    lenet4 = _bundled_report("lenet4", "train_metrics.json")
    meta = ensemble.meta
    return {
        "paper": PAPER[ENSEMBLE],
        "float_error_bundled_report": meta["float"]["float_ensemble_error"],
        "int8_tflm_error": round(100.0 * float(np.mean(np.argmax(scores, 1) != data.labels)), 2),
        "test_set": data.name,
        "test_digits": int(len(data.labels)),
        "nets_per_digit": round(float(np.mean(nets_run)), 3),
        "threshold": ensemble.rule.threshold,
        "weights": list(ensemble.rule.weights),
        "rejection_for_0.5_percent_error": rejection_for_error(scores, data.labels),
        "parameters": NETS * int(lenet4["parameters"]),  # three LeNet-4s
        "macs_executed": mix.macs(report),  # average per digit
        "macs_executed_all_nets": int(report["macs_executed_all_nets"]),
        "macs_dense": mix.macs(report, "macs_dense"),
        "flash_bytes": first["flash_bytes"],
        "ram_bytes": first["ram_bytes"],
        "instructions": first["instructions"],
        "device_bit_exact_digits": min(m["bit_exact_digits"] for m in measured.values()),
        "boards": measured,
    }


def _table(rows: dict, boards: list) -> Table:
    table = Table(title=f"the LeNet family: paper vs ours (error %; flash and RAM on "
                        f"{boards[0].name}; guest instructions per digit on each core)")
    cols = ["variant", "paper error (repro.)", "float", "int8 TFLM", "test digits",
            "reject for 0.5 %", "params (paper)", "MACs executed (paper)", "MACs dense",
            "flash", "RAM"] + [b.cpu.removeprefix("cortex-") for b in boards]
    for col in cols:
        table.add_column(col, justify="left" if col == "variant" else "right",
                         no_wrap=col == "variant")
    for variant, r in rows.items():
        p = r["paper"] or {}

        def paper(key, fmt="{:,}"):
            return fmt.format(p[key]) if key in p else "—"

        error = paper("error", "{:.2f}")
        if "reproduction_error" in p:
            error += f" ({p['reproduction_error']:.2f})"
        table.add_row(variant, error, f"{r['float_error_bundled_report']:.2f}",
                      f"{r['int8_tflm_error']:.2f}", f"{r['test_digits']:,}",
                      f"{r['rejection_for_0.5_percent_error']:.2f}",
                      f"{r['parameters']:,} ({paper('parameters')})",
                      f"{r['macs_executed']:,} ({paper('macs')})", f"{r['macs_dense']:,}",
                      f"{r['flash_bytes']:,}", f"{r['ram_bytes']:,}",
                      *(f"{r['boards'][b.name]['instructions']:,}" for b in boards))
    return table


def markdown_table(rows: dict, boards: list) -> str:
    """The table of BENCHMARKS.md's zoo section, from the same rows: flash and RAM on the
    first board, guest instructions on each; "—" where the papers give no figure."""
    cores = [b.cpu.removeprefix("cortex-").upper() for b in boards]
    head = ["variant", "paper error (reproduction)", "float", "int8 TFLM", "test digits",
            "reject for 0.5 % (paper)", "parameters (paper)", "MACs executed (paper)", "flash",
            "RAM", *cores]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for variant, r in rows.items():
        p = r["paper"] or {}
        error = str(p.get("error", "—"))
        if "reproduction_error" in p:
            error += f" ({p['reproduction_error']})"

        def with_paper(ours: int, key: str) -> str:
            return f"{ours:,}" + (f" ({p[key]:,})" if key in p else "")

        cells = [variant, error, f"{r['float_error_bundled_report']:.2f}",
                 f"{r['int8_tflm_error']:.2f}", f"{r['test_digits']:,}",
                 f"{r['rejection_for_0.5_percent_error']:.2f} ({p.get('rejection', '—')})",
                 with_paper(r["parameters"], "parameters"),
                 with_paper(r["macs_executed"], "macs"), f"{r['flash_bytes']:,}",
                 f"{r['ram_bytes']:,}",
                 *(f"{r['boards'][b.name]['instructions']:,}" for b in boards)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pareto_png(path: Path, rows: dict, boards: list) -> None:
    """int8 error against instructions per inference (one colour per core) and against
    flash (first board), one point per variant: the family's trade-off (lower left is
    better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for k, board in enumerate(boards):
        for variant, r in rows.items():
            x = r["boards"][board.name]["instructions"] / 1e6
            axes[0].scatter(x, r["int8_tflm_error"], color=f"C{k}",
                            label=board.cpu if variant == next(iter(rows)) else None)
            if k == 0:
                axes[0].annotate(variant, (x, r["int8_tflm_error"]),
                                 textcoords="offset points", xytext=(4, 4), fontsize=8)
    if len(boards) > 1:
        axes[0].legend(fontsize=7)
    for ax, key, scale, label in (
            (axes[0], None, None, "million guest instructions per digit"),
            (axes[1], "flash_bytes", 1e3, f"flash, KB ({boards[0].name})")):
        for variant, r in rows.items() if key else ():
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
@click.option("--board", "boards", multiple=True,
              help="Emulated board whose core runs the firmware (repeatable; see `lenet-edge "
                   "boards`). Default: one board per emulated core (M0, M3, M4, M7, M33, M55).")
@click.option("--variants", "variants", multiple=True, type=click.Choice(FAMILY),
              help="Bundled variants (repeatable; default: every one, and boosted-lenet4, "
                   "the ensemble of three bundled LeNet-4s).")
@click.option("--count", default=20, show_default=True, type=click.IntRange(min=1),
              help="Digits run on the device (checked byte for byte against TFLM).")
@click.option("--limit", type=click.IntRange(min=1),
              help="Test digits for the int8 error and rejection (default: the whole test "
                   "set: MNIST's 10,000, zip1989's 2,007).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("zoo_out"),
              show_default=True, help="Folder for exports, firmware and zoo.json.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="MNIST folder (default: $LENET_EDGE_DATA, cache, download).")
def zoo(boards, variants, count, limit, out_dir, data_dir):
    """The bundled LeNet family next to the papers' figures.

    Per variant: the paper's error, parameters and multiply-adds; ours: float error, int8
    error under TFLM, the rejection needed for 0.5 % error, parameters, MACs executed by
    the generated C, flash and RAM, and guest instructions per inference on every emulated
    core (bit-exact with TFLM, or no figure). Prints a table and writes OUT/zoo.json and
    OUT/zoo_pareto.png (int8 error against instructions and against flash), and the table
    in Markdown as OUT/zoo.md.
    """
    targets = zoo_boards(boards)
    console = Console(width=max(Console().width, 160))
    rows = {}
    for variant in list(variants) or FAMILY:
        console.print(f"{variant}: export, TFLM on its test set, firmware on "
                      f"{', '.join(b.name for b in targets)}")
        if variant == ENSEMBLE:
            rows[variant] = ensemble_zoo_row(targets, out_dir, data_dir, limit, count)
        else:
            rows[variant] = zoo_row(variant, targets, out_dir, data_dir, limit, count)
    console.print(_table(rows, targets))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "zoo.json"
    path.write_text(json.dumps({"board": targets[0].name, "cpu": targets[0].cpu,
                                "boards": {b.name: b.cpu for b in targets},
                                "unit": "guest instructions per inference, "
                                        "qemu-system-arm -icount shift=0",
                                "variants": rows}, indent=2, sort_keys=True) + "\n")
    (out_dir / "zoo.md").write_text(markdown_table(rows, targets))
    pareto_png(out_dir / "zoo_pareto.png", rows, targets)
    console.print(f"wrote {path}, {out_dir / 'zoo.md'} (the table in Markdown) and "
                  f"{out_dir / 'zoo_pareto.png'}")
    return 0
