"""`lenet-edge eval`: accuracy of each backend on a test set (MNIST's by default, or
--data: see train/datasets.py).

float:  the Keras model on pixel/255
tflite: the int8 .tflite in the TFLite interpreter (ai-edge-litert)
tflm:   the int8 .tflite in the tflite-micro runtime (the bit-exact reference)
c:      the generated C, built for this machine and run in-process
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lenet_edge.errors import LenetEdgeError
from lenet_edge.quantize.evaluate import float_logits, litert_logits, model_inputs, tflm_logits


def run_c(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    from lenet_edge.codegen.export import export
    from lenet_edge.codegen.host_build import HostModel, build_shared_library

    with tempfile.TemporaryDirectory(prefix="lenet5-eval-") as tmp:
        result = export(model_bytes, tmp, measure_tflm=False, measure_code=False)
        lib = HostModel(build_shared_library(result.c_dir, Path(tmp) / "liblenet5.so"))
        return lib.invoke_batch(model_inputs(model_bytes, images))


def evaluate_backends(backends, *, model=None, keras_model=None, variant="modern",
                      data_dir=None, limit=None, json_out=None, console=None) -> dict:
    from lenet_edge.bundled import bundled_model
    from lenet_edge.train.datasets import load_test_set

    console = console or Console()
    if json_out:
        _prepare_json(Path(json_out))
    if not backends:  # the default: all, but float only where TensorFlow is installed
        from lenet_edge.optional import TRAIN_EXTRA, have_tensorflow

        backends = ["float", "tflite", "tflm", "c"]
        if not have_tensorflow():
            backends.remove("float")
            console.print(f"float backend skipped: TensorFlow not installed ({TRAIN_EXTRA})")
    model_path = Path(model) if model else bundled_model(variant, "tflite")
    if not model_path.is_file():
        raise LenetEdgeError(f"model file not found: {model_path}")
    model_bytes = model_path.read_bytes()
    from lenet_edge.quantize.evaluate import input_spec

    data = load_test_set(data_dir, input_spec(model_bytes)[0]).head(limit)
    images, labels = data.images, data.labels
    model_inputs(model_bytes, images[:1], data.name)  # a shape mismatch stops here, once
    outputs = {}
    for backend in backends:
        if backend == "float":
            keras_path = Path(keras_model) if keras_model else bundled_model(variant, "keras")
            outputs[backend] = float_logits(keras_path, images)
        elif backend == "tflite":
            outputs[backend] = litert_logits(model_bytes, images, progress="tflite")
        elif backend == "tflm":
            outputs[backend] = tflm_logits(model_bytes, images, progress="tflm")
        elif backend == "c":
            outputs[backend] = run_c(model_bytes, images)
    results = {"model": str(model_path), "images": int(len(images)), "data": data.name,
               "backends": {}}
    reference = outputs.get("tflm")
    for backend, out in outputs.items():
        pred = np.argmax(out, axis=1)
        entry = {"accuracy": float(np.mean(pred == labels))}
        if reference is not None and backend in ("tflite", "c"):
            entry["bytes_equal_tflm"] = int(np.sum(np.all(out == reference, axis=1)))
            entry["argmax_equal_tflm"] = int(np.sum(pred == np.argmax(reference, axis=1)))
        results["backends"][backend] = entry
    _print(results, console)
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


# Backends that must give TFLM's bytes exactly (tflite rounds differently: not a failure).
MUST_EQUAL_TFLM = ("c",)


def exactness_failures(results: dict) -> list[str]:
    """One message per backend that must equal TFLM byte for byte and does not."""
    n = results["images"]
    out = []
    for backend in MUST_EQUAL_TFLM:
        same = results["backends"].get(backend, {}).get("bytes_equal_tflm")
        if same is not None and same != n:
            out.append(f"{backend} outputs differ from TFLM on {n - same} of {n} images "
                       "(the generated C must be bit-exact with TFLM)")
    return out


def _prepare_json(path: Path) -> None:
    """Create --json's folder now: a path that cannot be written fails before evaluating."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LenetEdgeError(f"cannot write --json {path}: {exc.strerror or exc}") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise LenetEdgeError(f"cannot write --json {path}: "
                             + ("it is a directory" if path.is_dir() else "folder not writable"))


def _print(results: dict, console: Console) -> None:
    n = results["images"]
    table = Table(title=f"accuracy on {results['data']} ({n} images)")
    table.add_column("backend")
    table.add_column("accuracy", justify="right")
    table.add_column("outputs identical to TFLM", justify="right")
    for backend, entry in results["backends"].items():
        same = entry.get("bytes_equal_tflm")
        table.add_row(backend, f"{100 * entry['accuracy']:.2f} %",
                      "-" if same is None else f"{same}/{n}")
    console.print(table)
