"""`lenet-edge quantize` without the CLI: convert, evaluate, write the report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

TFLITE_NAME = "lenet5_int8.tflite"
REPORT_NAME = "quant_report.json"


def quantize(model_path: str | os.PathLike, out_dir: str | os.PathLike,
             data_dir: str | os.PathLike | None = None, eval_limit: int | None = None,
             calibration_count: int | None = None, progress=None,
             argmax_range: bool = False) -> dict:
    """Write ``out_dir/lenet5_int8.tflite`` and ``quant_report.json``; return the report.

    ``eval_limit`` evaluates only the first N test images (tests); the default is the full
    10,000. ``progress(stage, done, total)`` reports long steps. ``argmax_range``: the
    output's range from the calibration logits' argmax range (quantize/output_range.py).
    """
    from lenet_edge.quantize.convert import (CALIBRATION_IMAGES, calibration_images,
                                             convert_int8, load_keras_model)
    from lenet_edge.quantize.evaluate import (check_image_shape, float_logits, litert_logits,
                                              model_summary, tflm_logits)
    from lenet_edge.train.datasets import load_calibration_images, load_test_set
    from lenet_edge.train.models import lenet_variant
    from lenet_edge.train.training import accuracy_metrics

    started = time.perf_counter()
    model = load_keras_model(model_path)
    variant = lenet_variant(model)  # None: a user's own model
    shape = tuple(model.input_shape[1:])
    test = load_test_set(data_dir, shape).head(eval_limit)
    check_image_shape(test.images.shape[1:], tuple(model.input_shape[1:]), test.name)
    test_images, test_labels = test.images, test.labels
    calibration = calibration_images(load_calibration_images(data_dir, shape),
                                     calibration_count or CALIBRATION_IMAGES)

    _step(progress, "converting", 0, 1)
    model_bytes = convert_int8(model, calibration, argmax_range)
    _step(progress, "converting", 1, 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tflite_path = out_dir / TFLITE_NAME
    tflite_path.write_bytes(model_bytes)

    float_pred = np.argmax(float_logits(model, test_images), axis=1)
    tflm = tflm_logits(model_bytes, test_images,
                       lambda d, t: _step(progress, "int8 under TFLM", d, t))
    lite = litert_logits(model_bytes, test_images,
                         lambda d, t: _step(progress, "int8 under TFLite", d, t))
    tflm_pred, lite_pred = np.argmax(tflm, axis=1), np.argmax(lite, axis=1)

    float_acc = accuracy_metrics(float_pred, test_labels)
    tflm_acc = accuracy_metrics(tflm_pred, test_labels)
    lite_acc = accuracy_metrics(lite_pred, test_labels)
    differing = tflm != lite
    summary = model_summary(model_bytes)
    report = {
        "variant": variant,
        "source_model": str(model_path),
        "tflite": TFLITE_NAME,
        "test_images": int(len(test_labels)),
        "test_set": test.name,
        "calibration_images": int(len(calibration)),
        "output_range": "argmax" if argmax_range else "calibrated",
        "float_accuracy": float_acc["accuracy"],
        "int8_tflm_accuracy": tflm_acc["accuracy"],
        "int8_tflite_accuracy": lite_acc["accuracy"],
        "tflm_minus_float_points": round(tflm_acc["accuracy"] - float_acc["accuracy"], 2),
        "argmax_agreement_with_float": {
            "tflm": _percent(tflm_pred == float_pred),
            "tflite": _percent(lite_pred == float_pred),
        },
        "tflm_vs_tflite": {
            "logits_differing": int(differing.sum()),
            "logits_total": int(differing.size),
            "images_with_a_differing_logit": int(differing.any(axis=1).sum()),
            "max_abs_difference": int(np.abs(tflm.astype(np.int16) - lite).max(initial=0)),
            "argmax_agreement": _percent(tflm_pred == lite_pred),
        },
        "per_class_accuracy": {"float": float_acc["per_class_accuracy"],
                               "int8_tflm": tflm_acc["per_class_accuracy"]},
        **summary,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _percent(matches: np.ndarray) -> float:
    return round(float(matches.mean()) * 100, 2) if matches.size else 0.0


def _step(progress, stage, done, total):
    if progress:
        progress(stage, done, total)
