"""Choose zip1989-modern's quantization-aware fine-tuning (train/qat.py) without the test set.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/zip1989_qat.py [--out zip1989_qat.json]

1,000 training digits of the 16x16 split (a fixed draw, train/training.py split_holdout)
are held out; the float recipe (80 epochs) trains on the other 6,291 once, then each row
starts again from that float model, once per seed (shifts, order, dropout): QAT for E
epochs at peak rate R (and, as a control, the same fine-tune in plain float), converted by the project's converter (calibrated on
the 6,291) and run under TFLM on the 1,000 held-out digits, and on the 6,291 for the
int8 argmax flips against float (robustness with less noise). The test digits are not
loaded. ``--float-model PATH`` keeps the float model between runs. Markdown table (means over the seeds) on stdout, every run in the JSON.
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from lenet_edge.quiet import import_tensorflow_quietly

VARIANT = "zip1989-modern"
HOLDOUT = 1000
# (QAT epochs, peak rate); ("float", ...) rows fine-tune without the int8 simulation.
GRID = [("qat", 5, 3e-4), ("qat", 10, 3e-4), ("qat", 20, 3e-4), ("qat", 5, 1e-4),
        ("qat", 10, 1e-4), ("float", 10, 3e-4), ("float", 5, 1e-4)]
SEEDS = (1, 2, 3)  # each row's shifts, order and dropout; the table gives the mean


def measure(model, calibration, images, labels, train_images):
    from lenet_edge.quantize.convert import convert_int8
    from lenet_edge.quantize.evaluate import float_logits, tflm_logits
    from lenet_edge.train.qat import fake_quant_logits, qat_model

    model_bytes = convert_int8(model, calibration)
    int8 = tflm_logits(model_bytes, images).argmax(1)
    flt = float_logits(model, images).argmax(1)
    qat = qat_model(model)
    qat.calibrate(calibration)
    fq = fake_quant_logits(qat, images).argmax(1)
    # Robustness to the int8 roundings with less noise than 1,000 digits give: argmax flips
    # against float on the 6,291 training digits (no labels needed).
    train_flips = int((tflm_logits(model_bytes, train_images).argmax(1)
                       != float_logits(model, train_images).argmax(1)).sum())
    return {"float_errors": int((flt != labels).sum()), "int8_errors": int((int8 != labels).sum()),
            "train_digit_flips": train_flips,
            "fake_quant_errors": int((fq != labels).sum()),
            "int8_flips_against_float": int((int8 != flt).sum()),
            "int8_differs_from_fake_quant": int((int8 != fq).sum())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="zip1989_qat.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--only", nargs="+", help="rows as kind:epochs:rate, e.g. qat:10:0.0003")
    parser.add_argument("--float-model", help="reuse (or write, when missing) the float model "
                        "trained on the 6,291 digits at this .keras path")
    args = parser.parse_args()
    import_tensorflow_quietly("the benchmark")
    from lenet_edge.train.calibration import calibration_images
    from lenet_edge.train.training import (RECIPES, fit_epochs, quantization_aware_finetune,
                                           seed_everything, train)

    from lenet_edge.train.training import load_data, save_keras, split_holdout

    started = time.perf_counter()
    split = load_data(RECIPES[VARIANT])["train"]
    (images, labels), (val_images, val_labels) = split_holdout(*split, HOLDOUT)
    if args.float_model and Path(args.float_model).is_file():
        from lenet_edge.quantize.convert import load_keras_model

        model = load_keras_model(args.float_model)
    else:
        model = train(VARIANT, qat_epochs=0, holdout=HOLDOUT).model
        if args.float_model:
            save_keras(model, Path(args.float_model))
    float_seconds = time.perf_counter() - started
    calibration = calibration_images(images)
    trained = model.get_weights()
    dropout = model.get_layer("dropout").seed_generator.state
    rows = [{"fine_tune": "none", "epochs": 0, "peak_lr": None, "seed": None,
             **measure(model, calibration, val_images, val_labels, images), "seconds": 0.0}]
    grid = [(kind, epochs, lr) for kind, epochs, lr in GRID
            if not args.only or f"{kind}:{epochs}:{lr:g}" in args.only]
    for kind, epochs, lr in grid:
        for seed in args.seeds:
            model.set_weights(trained)
            seed_everything(seed)
            dropout.assign(np.array([seed, 0], dtype=np.int64))  # each run its own dropout draw
            rng = np.random.default_rng(seed)
            recipe = dataclasses.replace(RECIPES[VARIANT], qat_lr=lr, peak_lr=lr)
            t = time.perf_counter()
            if kind == "qat":
                quantization_aware_finetune(model, recipe, images, labels, range(epochs), rng)
            else:  # the same extra epochs without the int8 simulation (the control)
                from lenet_edge.train.training import _loss, _optimizer

                batches = -(-len(images) // recipe.batch_size)
                model.compile(optimizer=_optimizer(recipe, epochs * batches), loss=_loss(recipe))
                fit_epochs(model, recipe, images, labels, range(epochs), rng, True, [])
            rows.append({"fine_tune": kind, "epochs": epochs, "peak_lr": lr, "seed": seed,
                         **measure(model, calibration, val_images, val_labels, images),
                         "seconds": round(time.perf_counter() - t, 1)})
            print(rows[-1], flush=True, file=sys.stderr)

    print(f"held-out training digits: {len(val_labels):,} (1 digit = {100 / len(val_labels):.2f} "
          f"points); float model trained on {len(labels):,} in {float_seconds:.0f} s")
    print()
    keys = ("float_errors", "fake_quant_errors", "int8_errors", "int8_flips_against_float",
            "int8_differs_from_fake_quant", "train_digit_flips", "seconds")
    print(f"| fine-tune | epochs | peak rate | runs | {' | '.join(k.replace('_', ' ') for k in keys)} "
          "| int8 minus float (points) |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * (len(keys) + 1))
    groups = {}
    for r in rows:
        groups.setdefault((r["fine_tune"], r["epochs"], r["peak_lr"]), []).append(r)
    summary = []
    for (kind, epochs, lr), runs in groups.items():
        mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
        gap = 100 * (mean["float_errors"] - mean["int8_errors"]) / len(val_labels)
        summary.append({"fine_tune": kind, "epochs": epochs, "peak_lr": lr, "runs": len(runs),
                        **mean, "int8_minus_float_points": gap})
        print(f"| {kind} | {epochs} | {lr or '—'} | {len(runs)} | "
              f"{' | '.join(f'{mean[k]:.1f}' for k in keys)} | {gap:+.2f} |")
    with open(args.out, "w") as f:
        json.dump({"variant": VARIANT, "held_out": int(len(val_labels)),
                   "train_digits": int(len(labels)), "float_seconds": round(float_seconds, 1),
                   "rows": rows, "summary": summary}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
