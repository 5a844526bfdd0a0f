"""Boosted LeNet-4 in int8: each net converted as any LeNet-4, the early-exit threshold T
chosen on TFLM's outputs for training digits, and the ensemble run under TFLM (the
reference the device's ensemble must equal byte for byte). The rule is lenet_edge.ensemble's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lenet_edge.ensemble import (NETS, TARGET_NETS, Ensemble, choose_threshold,
                                 read_ensemble, write_ensemble)
from lenet_edge.errors import LenetEdgeError
from lenet_edge.quantize.evaluate import model_inputs, model_summary

THRESHOLD_DIGITS = 10_000  # training digits T is chosen on (as for the float threshold)


def tflm_ensemble(ensemble: Ensemble, inputs: np.ndarray, progress=None):
    """(scores (N, 10) int64, nets run (N,), per-net int8 outputs) under TFLM, running nets
    2 and 3 only on the digits where the rule needs them (rows elsewhere are zero)."""
    from lenet_edge.quantize.tflm import TflmModel

    check_quantization(ensemble)
    nets = [TflmModel(m) for m in ensemble.models]
    outs = [nets[0].run_batch(inputs, progress)]
    need = np.flatnonzero(~ensemble.rule.confident(outs[0]))
    for net in nets[1:]:
        out = np.zeros_like(outs[0])
        if len(need):
            out[need] = net.run_batch(inputs[need])
        outs.append(out)
    scores, nets_run = ensemble.rule.scores(outs)
    return scores, nets_run, outs


def check_quantization(ensemble: Ensemble) -> None:
    """ensemble.json's output scales and zero points must be the nets' own (the rule's W_k
    and z_k come from them; the generated C reads z_k from the nets' headers)."""
    for k, model in enumerate(ensemble.models):
        out = model_summary(model)["output"]
        if (out["scale"], out["zero_point"]) != (ensemble.scales[k], ensemble.rule.zero_points[k]):
            raise LenetEdgeError(
                f"{ensemble.folder}: ensemble.json gives net {k + 1} output scale "
                f"{ensemble.scales[k]} and zero point {ensemble.rule.zero_points[k]}, its "
                f".tflite {out['scale']} and {out['zero_point']}")


def check_nets(models) -> None:
    """The three nets must take the same input (shape and quantization) and give 10 outputs."""
    summaries = [model_summary(m) for m in models]
    first = summaries[0]["input"]
    for k, s in enumerate(summaries):
        if s["input"] != first:
            raise LenetEdgeError(f"ensemble net {k + 1} takes another input than net 1 "
                                 f"({s['input']} vs {first})")
        if list(s["output"]["shape"]) != [1, 10]:
            raise LenetEdgeError(f"ensemble net {k + 1} does not give 10 outputs")


def quantize_ensemble(keras_models, out_dir: str | Path, data_dir=None,
                      eval_limit: int | None = None, extra: dict | None = None,
                      threshold_digits: int = THRESHOLD_DIGITS) -> Ensemble:
    """Convert the three nets, choose T, write the ensemble folder (lenet_edge.ensemble) with
    the int8 figures in ensemble.json, and return it."""
    from lenet_edge.quantize.convert import calibration_images, convert_int8
    from lenet_edge.train.datasets import load_calibration_images
    from lenet_edge.train.mnist import load_mnist

    started = time.perf_counter()
    shape = tuple(keras_models[0].input_shape[1:])
    calibration = calibration_images(load_calibration_images(data_dir, shape))
    models = [convert_int8(m, calibration) for m in keras_models]
    check_nets(models)
    summaries = [model_summary(m) for m in models]
    scales = [s["output"]["scale"] for s in summaries]
    zero_points = [s["output"]["zero_point"] for s in summaries]

    from lenet_edge.quantize.tflm import TflmModel

    train_images, _ = load_mnist("train", data_dir)
    train_in = model_inputs(models[0], train_images[:threshold_digits])
    threshold = int(choose_threshold(TflmModel(models[0]).run_batch(train_in), TARGET_NETS))
    ensemble = write_ensemble(out_dir, models, scales, zero_points, threshold, extra)
    figures = evaluate_ensemble(ensemble, data_dir, eval_limit)
    figures["quantize_seconds"] = round(time.perf_counter() - started, 1)
    return write_ensemble(out_dir, models, scales, zero_points, threshold,
                          {**(extra or {}), "int8_tflm": figures})


def evaluate_ensemble(ensemble: Ensemble | str | Path, data_dir=None,
                      limit: int | None = None) -> dict:
    """The ensemble's int8 figures under TFLM on the MNIST test set: error, nets per digit,
    each net's error alone, and the error of always adding all three."""
    from lenet_edge.quantize.tflm import TflmModel
    from lenet_edge.train.datasets import load_test_set

    if not isinstance(ensemble, Ensemble):
        ensemble = read_ensemble(ensemble)
    data = load_test_set(data_dir, (28, 28, 1)).head(limit)
    inputs = model_inputs(ensemble.models[0], data.images, data.name)
    scores, nets_run, _ = tflm_ensemble(ensemble, inputs)
    every = [TflmModel(m).run_batch(inputs) for m in ensemble.models]
    all_scores, _ = type(ensemble.rule)(ensemble.rule.weights, ensemble.rule.zero_points,
                                        threshold=10 ** 6).scores(every)

    def error(pred):
        return round(100.0 * float(np.mean(pred != data.labels)), 2)

    return {"test_set": data.name, "test_digits": int(len(data.labels)),
            "ensemble_error": error(np.argmax(scores, axis=1)),
            "nets_per_digit": round(float(np.mean(nets_run)), 3),
            "net_errors": [error(np.argmax(o, axis=1)) for o in every],
            "all_three_error": error(np.argmax(all_scores, axis=1)),
            "nets": NETS}
