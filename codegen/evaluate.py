"""`lenet-edge eval`: accuracy of each backend on the MNIST test set.

float:  the Keras model on pixel/255
tflite: the int8 .tflite in the TFLite interpreter (ai-edge-litert)
tflm:   the int8 .tflite in the tflite-micro runtime (the bit-exact reference)
c:      the generated C, built for this machine and run in-process
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from lenet_edge.errors import LenetEdgeError


def _int8_inputs(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.int16) - 128).astype(np.int8).reshape(len(images), -1)


def run_float(keras_path: Path, images: np.ndarray) -> np.ndarray:
    import keras

    import lenet_edge.train.models  # noqa: F401  (registers the custom layers)

    model = keras.saving.load_model(keras_path, compile=False)
    x = images.astype(np.float32)[..., None] / 255.0
    return np.asarray(model.predict(x, batch_size=500, verbose=0))


def run_tflite(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the older package name, where that is what is installed
        from tflite_runtime.interpreter import Interpreter

    interp = Interpreter(model_content=model_bytes)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = _int8_inputs(images)
    result = np.empty((len(x), int(np.prod(out["shape"]))), dtype=np.int8)
    for i in track(range(len(x)), description="tflite", transient=True):
        interp.set_tensor(inp["index"], x[i].reshape(inp["shape"]))
        interp.invoke()
        result[i] = interp.get_tensor(out["index"]).reshape(-1)
    return result


def run_tflm(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    from lenet_edge.quantize.tflm import TflmModel

    return TflmModel(model_bytes).run_batch(_int8_inputs(images), progress="tflm")


def run_c(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    from lenet_edge.codegen.export import export
    from lenet_edge.codegen.host_build import HostModel, build_shared_library

    with tempfile.TemporaryDirectory(prefix="lenet5-eval-") as tmp:
        result = export(model_bytes, tmp, measure_tflm=False, measure_code=False)
        lib = HostModel(build_shared_library(result.c_dir, Path(tmp) / "liblenet5.so"))
        return lib.invoke_batch(_int8_inputs(images))


def evaluate_backends(backends, *, model=None, keras_model=None, variant="modern",
                      data_dir=None, limit=None, json_out=None, console=None) -> dict:
    from lenet_edge.bundled import bundled_model
    from lenet_edge.train.mnist import load_mnist

    console = console or Console()
    images, labels = load_mnist("test", data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    model_path = Path(model) if model else bundled_model(variant, "tflite")
    if not model_path.is_file():
        raise LenetEdgeError(f"model file not found: {model_path}")
    model_bytes = model_path.read_bytes()
    outputs = {}
    for backend in backends:
        if backend == "float":
            keras_path = Path(keras_model) if keras_model else bundled_model(variant, "keras")
            outputs[backend] = run_float(keras_path, images)
        elif backend == "tflite":
            outputs[backend] = run_tflite(model_bytes, images)
        elif backend == "tflm":
            outputs[backend] = run_tflm(model_bytes, images)
        elif backend == "c":
            outputs[backend] = run_c(model_bytes, images)
    results = {"model": str(model_path), "images": int(len(images)), "backends": {}}
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


def _print(results: dict, console: Console) -> None:
    n = results["images"]
    table = Table(title=f"MNIST test accuracy ({n} images)")
    table.add_column("backend")
    table.add_column("accuracy", justify="right")
    table.add_column("outputs identical to TFLM", justify="right")
    for backend, entry in results["backends"].items():
        same = entry.get("bytes_equal_tflm")
        table.add_row(backend, f"{100 * entry['accuracy']:.2f} %",
                      "-" if same is None else f"{same}/{n}")
    console.print(table)
