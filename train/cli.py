"""`lenet-edge train`: LeNet-5 on MNIST -> DIR/lenet5.keras + DIR/train_metrics.json."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_edge.errors import LenetEdgeError
from lenet_edge.quiet import import_tensorflow_quietly

from lenet_edge.bundled import ENSEMBLE_VARIANT, FAMILY



@click.command()
@click.option("--variant", type=click.Choice(FAMILY), default="modern",
              show_default=True,
              help="modern: LeNet-5 with ReLU, max pooling, full C3. classic: LeNet-5 of LeCun "
                   "1998 (tanh, average pooling, C3 connection table). lenet1, lenet4: the "
                   "1998 paper's LeNet-1 and LeNet-4 (tanh, connection tables). "
                   "classic-1998: classic with the paper's input range, scaled tanh and "
                   "trainable subsampling. zip1989: the "
                   "1989 zip-code net on its 16x16 split drawn from MNIST, with the paper's "
                   "recipe; zip1989-modern: the same size, ReLU, dropout, AdamW, then 5 "
                   "quantization-aware epochs (--qat-epochs). "
                   "boosted-lenet4: three LeNet-4s boosted, outputs added, early exit "
                   "(writes an ensemble folder: three int8 .tflite + ensemble.json).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs (float; --qat-epochs come after them). [default: the "
                   "variant's recipe: 12 for modern and classic(-1998), 20 for lenet1 and "
                   "lenet4, 23 for zip1989, 80 for zip1989-modern; boosted-lenet4: 20 for "
                   "nets 2 and 3]")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds weights, data order and augmentation (same seed, same model).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/lenet5"), show_default=True, help="Output directory.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="MNIST directory (IDX .gz files or mnist.npz). Default: $LENET_EDGE_DATA, "
                   "then the cache, then a download.")
@click.option("--limit", type=click.IntRange(min=1),
              help="Train on the first N training images only (quick experiments).")
@click.option("--no-augment", is_flag=True, help="Train without random +-2 px shifts.")
@click.option("--qat-epochs", type=click.IntRange(min=0), default=None,
              help="Quantization-aware fine-tuning epochs after the float ones: the int8 "
                   "conversion's roundings simulated in training (train/qat.py), so that "
                   "`lenet-edge quantize` loses less; the .keras stays a float model. "
                   "zip1989-modern and lenet1 (the graphs it simulates). 0: none. [default: "
                   "the recipe's: 5 for zip1989-modern, none for the others]")
@click.option("--net1", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="boosted-lenet4 only: a LeNet-4 .keras to reuse as net 1 (e.g. "
                   "lenet_edge/assets/lenet4/lenet5.keras) instead of training one.")
def train(variant, epochs, seed, out_dir, data_dir, limit, no_augment, qat_epochs, net1):
    """Train a LeNet on MNIST and measure it on the full 10,000-image test set (zip1989: on
    its 16x16 split of MNIST, 7,291 training and 2,007 test digits).

    Writes OUT/lenet5.keras (float model, input pixel/255) and OUT/train_metrics.json
    (test accuracy, per-class accuracy, parameter count, epochs, wall seconds).
    The next step is `lenet-edge quantize --model OUT/lenet5.keras --out OUT`.
    boosted-lenet4 writes OUT/net{1,2,3}.keras and quantizes them itself: the ensemble
    folder (net{1,2,3}_int8.tflite + ensemble.json) for `lenet-edge export --ensemble OUT`.
    """
    from lenet_edge.optional import require_tensorflow
    from lenet_edge.train.mnist import resolve_source

    from lenet_edge.train.qat import QAT_VARIANTS

    if qat_epochs and variant not in QAT_VARIANTS:
        raise LenetEdgeError(f"--qat-epochs is for {', '.join(QAT_VARIANTS)} only (its int8 "
                             f"simulation is written for those graphs), not {variant}")
    if net1 is not None and variant != ENSEMBLE_VARIANT:
        raise LenetEdgeError("--net1 is for --variant boosted-lenet4 only")
    if no_augment and variant == ENSEMBLE_VARIANT:
        raise LenetEdgeError("--no-augment does not apply to boosted-lenet4: its nets 2 and 3 "
                             "are filtered from shifted (distorted) patterns")
    require_tensorflow("`lenet-edge train`")  # before anything slow
    resolve_source(data_dir)  # fail on missing data before TensorFlow starts
    import_tensorflow_quietly("`lenet-edge train`")
    from rich.console import Console

    from lenet_edge.train.progress import TrainingProgress
    from lenet_edge.train.training import save
    from lenet_edge.train.training import train as run_train

    console = Console(stderr=True)
    if variant == ENSEMBLE_VARIANT:
        return _train_boosted(console, out_dir, net1, seed, epochs, data_dir, limit)
    with TrainingProgress(console) as progress:
        result = run_train(variant, epochs=epochs, seed=seed, data_dir=data_dir,
                           train_limit=limit, augment=not no_augment, progress=progress.update,
                           qat_epochs=qat_epochs)
    model_path, metrics_path = save(result, out_dir)
    m = result.metrics
    console.print(f"[bold]{variant}[/]: test accuracy [bold]{m['test_accuracy']:.2f} %[/] "
                  f"({m['test_correct']}/{m['test_total']}), {m['parameters']:,} parameters, "
                  f"{m['epochs']} epoch{'s' * (m['epochs'] != 1)}, {m['wall_seconds']:.0f} s")
    if "quantization_aware" in m:
        q = m["quantization_aware"]
        console.print(f"  of which {q['epochs']} quantization-aware epoch"
                      f"{'s' * (q['epochs'] != 1)}; before them: test accuracy "
                      f"{q['test_accuracy_before']:.2f} % after {q['float_train_seconds']:.0f} s")
    console.print(f"wrote {model_path} and {metrics_path}")
    return 0


def _train_boosted(console, out_dir, net1, seed, epochs, data_dir, limit):
    from lenet_edge.flows import train_boosted_ensemble

    ensemble = train_boosted_ensemble(
        out_dir, net1=net1, seed=seed, epochs=epochs, data_dir=data_dir, train_limit=limit,
        log=lambda text: console.print(text, markup=False, highlight=False))
    f, q = ensemble.meta["float"], ensemble.meta["int8_tflm"]
    console.print(f"[bold]boosted-lenet4[/]: float error {f['float_ensemble_error']:.2f} % "
                  f"({f['float_nets_per_digit']:.2f} nets/digit), int8 TFLM error "
                  f"[bold]{q['ensemble_error']:.2f} %[/] ({q['nets_per_digit']:.2f} nets/digit, "
                  f"T = {ensemble.rule.threshold}), nets alone {q['net_errors']} %, "
                  f"{ensemble.meta['wall_seconds']:.0f} s")
    console.print(f"wrote {out_dir}/net{{1,2,3}}.keras, net{{1,2,3}}_int8.tflite, ensemble.json")
    return 0
