"""`lenet-edge quantize`: lenet5.keras -> DIR/lenet5_int8.tflite + DIR/quant_report.json."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_edge.quiet import import_tensorflow_quietly


@click.command()
@click.option("--model", "model_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Float model written by `lenet-edge train` (lenet5.keras).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output directory. [default: the model's directory]")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Data: MNIST directory (IDX .gz files or mnist.npz; default: "
                   "$LENET_EDGE_DATA, then the cache, then a download), or a test set as "
                   "`eval --data` takes (calibrated on its x_train when it has one).")
@click.option("--limit", type=click.IntRange(min=1),
              help="Evaluate on the first N test images only. [default: all]")
@click.option("--argmax-range", is_flag=True,
              help="Quantize the output (logits) over the calibration images' argmax range "
                   "only (lowest top logit to highest logit; below it saturates at -128): a "
                   "finer output step, fewer int8 ties. [default: the whole range]")
def quantize(model_path, out_dir, data_dir, limit, argmax_range):
    """Convert a float LeNet-5 to a full-integer int8 TFLite model and measure it.

    int8 input (pixel - 128) and output (logits), per-channel int8 weights, int32
    biases, calibrated on 1,000 training images. Writes OUT/lenet5_int8.tflite and
    OUT/quant_report.json: float accuracy, int8 accuracy under TFLM (the reference the
    generated C matches) and under the TFLite interpreter, their agreement, model bytes
    and op list.
    """
    import_tensorflow_quietly("`lenet-edge quantize`")
    from rich.console import Console

    from lenet_edge.quantize.convert import load_keras_model
    from lenet_edge.quantize.evaluate import check_image_shape
    from lenet_edge.quantize.pipeline import quantize as run_quantize
    from lenet_edge.train.datasets import load_test_set
    from lenet_edge.train.progress import StageProgress

    console = Console(stderr=True)
    out_dir = out_dir or model_path.parent
    # Clear errors before anything slow: the model, the data, and whether they fit.
    model = load_keras_model(model_path)
    test = load_test_set(data_dir, tuple(model.input_shape[1:]))
    check_image_shape(test.images.shape[1:], tuple(model.input_shape[1:]), test.name)
    with StageProgress(console) as progress:
        report = run_quantize(model_path, out_dir, data_dir=data_dir, eval_limit=limit,
                              progress=progress.update, argmax_range=argmax_range)
    print_report(report, console)
    console.print(f"wrote {Path(out_dir) / report['tflite']} and "
                  f"{Path(out_dir) / 'quant_report.json'}")
    return 0


def print_report(report: dict, console) -> None:
    from rich.table import Table

    from lenet_edge.bundled import VARIANT_TITLES

    what = VARIANT_TITLES.get(report["variant"], "model")
    table = Table(title=f"{what}, {report['test_images']:,} images of {report['test_set']}")
    table.add_column("model")
    table.add_column("accuracy %", justify="right")
    table.add_column("argmax = float %", justify="right")
    agree = report["argmax_agreement_with_float"]
    table.add_row("float (Keras)", f"{report['float_accuracy']:.2f}", "")
    table.add_row("int8 TFLM", f"{report['int8_tflm_accuracy']:.2f}", f"{agree['tflm']:.2f}")
    table.add_row("int8 TFLite", f"{report['int8_tflite_accuracy']:.2f}",
                  f"{agree['tflite']:.2f}")
    console.print(table)
    diff = report["tflm_vs_tflite"]
    console.print(f"TFLM vs TFLite: {diff['logits_differing']}/{diff['logits_total']} int8 "
                  f"logits differ (max |diff| {diff['max_abs_difference']}); "
                  f"{report['model_bytes']:,} bytes; ops: {' '.join(report['ops'])}")
