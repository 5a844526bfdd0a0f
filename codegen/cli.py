"""CLI of the codegen stage: `lenet-edge export` and `lenet-edge eval`."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_edge.bundled import ENSEMBLE_VARIANT, FAMILY, VARIANTS, bundled_ensemble_dir
from lenet_edge.codegen.cross import CPUS
from lenet_edge.flows import check_board_name
from lenet_edge.layout import DEFAULT_EXPORT_DIR

TARGETS = ("cortex-m", "host")
BACKENDS = ("float", "tflite", "tflm", "c")


@click.command()
@click.option("--target", type=click.Choice(TARGETS), default="cortex-m", show_default=True,
              help="cortex-m: the C library (+ code size per CPU); host: also a shared library "
                   "for this machine in DIR/host/.")
@click.option("--model", "model", type=click.Path(dir_okay=False, path_type=Path),
              help="int8 .tflite (or a .keras, quantized first). Default: the bundled model.")
@click.option("--variant", type=click.Choice(FAMILY), default="modern",
              show_default=True, help="Bundled model to use when --model is not given "
                                      "(boosted-lenet4: the bundled ensemble, as --ensemble).")
@click.option("--cpu", "cpus", multiple=True, type=click.Choice(CPUS),
              help="Cortex-M CPU(s) the C is for (repeatable): their kernels are generated "
                   "(Helium for cortex-m55, DSP/SMLAD for cortex-m4/m7/m33, portable C always "
                   "(cortex-m0/m0plus/m3); the compiler picks by -mcpu) and their code size "
                   "measured. Default: --board's CPU, else all.")
@click.option("--board", metavar="BOARD", callback=check_board_name, help="Also render a firmware project for this board in DIR/firmware/ "
                                "(`lenet-edge boards` lists them).")
@click.option("--board-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Like --board, for a board described in TOML (README: 'A board of your own').")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_EXPORT_DIR, show_default=True,
              help="Export folder (what build, flash and validate read with --export).")
@click.option("--data", type=click.Path(path_type=Path),
              help="Calibration images for a .keras --model: MNIST by default, or a data set "
                   "as `eval --data` takes (its x_train, else its test images).")
@click.option("--no-tflm-arena", is_flag=True, help="Skip measuring TFLM's arena (faster).")
@click.option("--unfused", is_flag=True,
              help="One kernel per op, so lenet5_invoke_traced reports every tensor of the "
                   ".tflite (slower, bigger arena; for per-layer debugging).")
@click.option("--name", default="lenet5", show_default=True,
              help="Prefix of every public symbol, macro and file of the C library (NAME_invoke, "
                   "NAME_model.h, NAME_INPUT_SIZE...), so several models link into one firmware.")
@click.option("--optimize", type=click.Choice(("size", "speed")), default="size",
              show_default=True,
              help="speed: the fully connected layers' weights also stored widened (int16 "
                   "pairs on DSP cores, two outputs per int32 on the Cortex-M3) for fewer "
                   "instructions, at about twice their flash.")
@click.option("--ensemble", "ensemble_dir", type=click.Path(file_okay=False, path_type=Path),
              help="An ensemble folder (Boosted LeNet-4: `train --variant boosted-lenet4`'s "
                   "OUT, or the bundled lenet_edge/assets/boosted_lenet4): its three nets and "
                   "the C of its rule as one library, NAME_invoke (--name default: boosted).")
def export(target, model, variant, cpus, board, board_file, out_dir, data, no_tflm_arena, unfused,
           name, optimize, ensemble_dir):
    """Generate bit-exact C for the int8 model (and, with --board, a firmware project)."""
    from rich.console import Console

    if ensemble_dir is None and variant == ENSEMBLE_VARIANT and model is None:
        ensemble_dir = bundled_ensemble_dir()
    if ensemble_dir is not None:
        return _export_ensemble(ensemble_dir, out_dir, board, cpus, name, model, board_file,
                                optimize)

    from lenet_edge.codegen.export import resolve_model
    from lenet_edge.codegen.report import print_export_table
    from lenet_edge.flows import export_model, resolve_board

    console = Console()
    if board or board_file:
        board = resolve_board(board, board_file=board_file)  # checked before writing anything
        cpus = cpus or (board.cpu,)  # --board implies its CPU
    model_bytes = resolve_model(model, variant, data)
    with console.status("generating C, compiling for each CPU, measuring TFLM's arena..."):
        result = export_model(model_bytes, out_dir, target=target, cpus=tuple(cpus) or CPUS,
                            board=board, measure_tflm=not no_tflm_arena, fuse=not unfused, name=name,
                            optimize=optimize,
                            model_label=model.name if model else f"bundled {variant} model",
                            float_model=model if model and model.suffix == ".keras" else None)
    print_export_table(result, console)
    return 0


def _export_ensemble(ensemble_dir, out_dir, board, cpus, name, model, board_file,
                     optimize) -> int:
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.flows import export_ensemble_model

    if model is not None or board_file is not None:
        raise LenetEdgeError("--ensemble takes the ensemble's own nets: give no --model or "
                             "--board-file")
    report = export_ensemble_model(ensemble_dir, out_dir, board=board, cpus=tuple(cpus) or None,
                                   name="boosted" if name == "lenet5" else name,
                                   optimize=optimize)
    macs = ", ".join(f"{n['macs_executed']:,}" for n in report["nets"])
    click.echo(f"ensemble {report['name']}: nets {', '.join(n['name'] for n in report['nets'])}"
               f" (MACs executed {macs}), W = {report['weights']}, T = {report['threshold']}; "
               f"wrote {out_dir}/c/" + (f" and {out_dir}/firmware/" if board else ""))
    return 0


@click.command()
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS),
              help="Backend(s) to evaluate (repeatable). Default: all four (float only with "
                   "TensorFlow installed).")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path),
              help="int8 .tflite. Default: the bundled model of --variant.")
@click.option("--keras", "keras_model", type=click.Path(dir_okay=False, path_type=Path),
              help="Float model for --backend float. Default: the bundled .keras of --variant.")
@click.option("--variant", type=click.Choice(VARIANTS), default="modern",
              show_default=True)
@click.option("--data", type=click.Path(path_type=Path),
              help="Test set: MNIST directory (default), an IDX images file, an .npz with "
                   "x_test/y_test, or DIR/<label>/*.png.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N test images.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the results as JSON.")
def evaluate(backends, model, keras_model, variant, data, limit, json_out):
    """Accuracy of the float, TFLite, TFLM and generated-C backends on a test set.

    Exits 1 when the generated C and TFLM (which must agree byte for byte) do not."""
    from lenet_edge.codegen.evaluate import evaluate_backends, exactness_failures

    results = evaluate_backends(backends or None, model=model, keras_model=keras_model,
                                variant=variant, data_dir=data, limit=limit, json_out=json_out)
    failures = exactness_failures(results)
    for failure in failures:
        click.secho(f"FAILED: {failure}", fg="red", err=True)
    return 1 if failures else 0
