"""CLI of the codegen stage: `lenet-edge export` and `lenet-edge eval`."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_edge.codegen.cross import CPUS

TARGETS = ("cortex-m", "host")
BACKENDS = ("float", "tflite", "tflm", "c")


@click.command()
@click.option("--target", type=click.Choice(TARGETS), default="cortex-m", show_default=True,
              help="cortex-m: the C library (+ code size per CPU); host: also a shared library "
                   "for this machine in DIR/host/.")
@click.option("--model", "model", type=click.Path(dir_okay=False, path_type=Path),
              help="int8 .tflite (or a .keras, quantized first). Default: the bundled model.")
@click.option("--variant", type=click.Choice(["modern", "classic"]), default="modern",
              show_default=True, help="Bundled model to use when --model is not given.")
@click.option("--cpu", "cpus", multiple=True, type=click.Choice(CPUS),
              help="Cortex-M CPU(s) the C is for (repeatable): their kernels are generated "
                   "(Helium for cortex-m55, DSP/SMLAD for cortex-m4/m7, portable C always; the "
                   "compiler picks by -mcpu) and their code size measured. Default: all.")
@click.option("--board", help="Also render a firmware project for this board in DIR/firmware/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("export"), show_default=True, help="Output directory.")
@click.option("--no-tflm-arena", is_flag=True, help="Skip measuring TFLM's arena (faster).")
@click.option("--unfused", is_flag=True,
              help="One kernel per op, so lenet5_invoke_traced reports every tensor of the "
                   ".tflite (slower, bigger arena; for per-layer debugging).")
@click.option("--name", default="lenet5", show_default=True,
              help="Prefix of every public symbol, macro and file of the C library (NAME_invoke, "
                   "NAME_model.h, NAME_INPUT_SIZE...), so several models link into one firmware.")
def export(target, model, variant, cpus, board, out_dir, no_tflm_arena, unfused, name):
    """Generate bit-exact C for the int8 model (and, with --board, a firmware project)."""
    from rich.console import Console

    from lenet_edge.codegen.export import export as run_export
    from lenet_edge.codegen.export import resolve_model
    from lenet_edge.codegen.report import print_export_table

    console = Console()
    model_bytes = resolve_model(model, variant)
    with console.status("generating C, compiling for each CPU, measuring TFLM's arena..."):
        result = run_export(model_bytes, out_dir, target=target, cpus=tuple(cpus) or CPUS,
                            board=board, measure_tflm=not no_tflm_arena, fuse=not unfused, name=name,
                            model_label=model.name if model else f"bundled {variant} model")
    print_export_table(result, console)
    return 0


@click.command()
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS),
              help="Backend(s) to evaluate (repeatable). Default: all four.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path),
              help="int8 .tflite. Default: the bundled model of --variant.")
@click.option("--keras", "keras_model", type=click.Path(dir_okay=False, path_type=Path),
              help="Float model for --backend float. Default: the bundled .keras of --variant.")
@click.option("--variant", type=click.Choice(["modern", "classic"]), default="modern",
              show_default=True)
@click.option("--data", type=click.Path(path_type=Path), help="MNIST directory.")
@click.option("--limit", type=int, help="Evaluate only the first N test images.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the results as JSON.")
def evaluate(backends, model, keras_model, variant, data, limit, json_out):
    """Accuracy on the MNIST test set of the float, TFLite, TFLM and generated-C backends."""
    from lenet_edge.codegen.evaluate import evaluate_backends

    evaluate_backends(backends or BACKENDS, model=model, keras_model=keras_model,
                      variant=variant, data_dir=data, limit=limit, json_out=json_out)
    return 0
