"""The model files a validation checks the device against, and their reference outputs.

Float (the Keras model), TFLite (the ai-edge-litert interpreter) and TFLM (the
tflite-micro runtime: the bit-exact oracle for the device) on the same digits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError
from lenet_edge.layout import ExportLayout

TFLITE_NAME = ExportLayout.MODEL_NAME
KERAS_NAME = ExportLayout.FLOAT_MODEL_NAME


@dataclass
class ModelFiles:
    tflite: Path
    keras: Path | None
    sha256: str
    source: str  # "bundled modern", or the directory given


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def refuse_ensemble(model_dir: str | Path | None) -> None:
    """validate checks one model against TFLM: an ensemble (its folder or its export) gets
    one error saying where its device check lives instead."""
    if model_dir is None or not Path(model_dir).is_dir():
        return
    path = Path(model_dir)
    if (path / "ensemble.json").is_file() or (ExportLayout(path).c_dir / "ensemble.json").is_file():
        raise LenetEdgeError(
            f"{path} is an ensemble (Boosted LeNet-4); validate checks one model against TFLM. "
            "The ensemble's firmware is checked against the TFLM ensemble by `lenet-edge zoo "
            "--variants boosted-lenet4` and benchmarks/boosted_lenet4.py")


def resolve_models(model_dir: str | Path | None) -> ModelFiles:
    """The .tflite to validate (and its .keras when there is one).

    `model_dir` may be an export directory (`DIR/model/lenet5_int8.tflite`), a training
    or quantize output directory, or a .tflite file; None means the bundled model.
    """
    from lenet_edge.bundled import VARIANTS, bundled_model

    if model_dir is None:
        tflite = bundled_model(kind="tflite")
        keras = bundled_model(kind="keras") if (tflite.parent / KERAS_NAME).is_file() else None
        return ModelFiles(tflite, keras, sha256_file(tflite), "bundled model")
    refuse_ensemble(model_dir)
    path = Path(model_dir)
    if path.is_file() and path.suffix == ".tflite":
        tflite, folders = path, [path.parent, path.parent.parent]
    elif path.is_dir():
        candidates = [ExportLayout(path).model, path / TFLITE_NAME]
        tflite = next((c for c in candidates if c.is_file()), None)
        if tflite is None:
            raise LenetEdgeError(
                f"no {TFLITE_NAME} in {path} (looked in {path}/model/ and {path}/); give the "
                "directory `lenet-edge export` or `lenet-edge quantize` wrote"
            )
        folders = [tflite.parent, path, path.parent]
    else:
        raise LenetEdgeError(f"--export {path}: no such directory or .tflite file")
    digest = sha256_file(tflite)
    keras = next((f / KERAS_NAME for f in folders if (f / KERAS_NAME).is_file()), None)
    if keras is None:
        # An export of a bundled model: its float twin ships with the package.
        for variant in VARIANTS:
            try:
                bundled = bundled_model(variant, "tflite")
            except LenetEdgeError:
                continue
            if sha256_file(bundled) == digest and (bundled.parent / KERAS_NAME).is_file():
                keras = bundled.parent / KERAS_NAME
    return ModelFiles(tflite, keras, digest, str(path))


def tflm_outputs(tflite: Path, inputs: np.ndarray) -> np.ndarray:
    from lenet_edge.quantize.tflm import TflmModel

    return TflmModel(tflite).run_batch(inputs, progress="TFLM reference")


def tflite_outputs(tflite: Path, inputs: np.ndarray) -> np.ndarray:
    from lenet_edge.quantize.litert import LiteRTModel

    return LiteRTModel(tflite).run_batch(inputs, progress="TFLite reference")


def float_unavailable(keras_path: Path | None) -> str | None:
    """Why there is no float reference (None when there is one)."""
    from lenet_edge.optional import TRAIN_EXTRA, have_tensorflow

    if keras_path is None:
        return "no .keras model beside the .tflite"
    if not have_tensorflow():
        return f"TensorFlow not installed ({TRAIN_EXTRA})"
    return None


def float_predictions(keras_path: Path | None, images: np.ndarray) -> np.ndarray | None:
    """argmax of the float model on pixel/255, or None without a .keras model or TensorFlow."""
    if float_unavailable(keras_path):
        return None
    from lenet_edge.quantize.evaluate import float_logits

    return float_logits(keras_path, images).argmax(axis=1)


def tensor_names(tflite: Path) -> dict[int, str]:
    from tflite_micro import runtime

    root = runtime.schema_fb.Model.GetRootAsModel(Path(tflite).read_bytes(), 0)
    graph = root.Subgraphs(0)
    return {i: graph.Tensors(i).Name().decode(errors="replace") for i in range(graph.TensorsLength())}


def layer_names(tflite: Path) -> dict[int, str]:
    """Tensor index -> a short name for the layer (or fused layers) that writes it,
    e.g. "c1 CONV_2D", or "c1+s2 CONV_2D+MAX_POOL_2D" for a fused step.

    Converter tensor names run to 80+ characters ("model_1/c1_1/Relu;model_1/c1_1/BiasAdd;
    ..."); the Keras layer name is the second path element of the first part. Which ops a
    step fused comes from the export's export_report.json, when it sits beside the model.
    """
    import json
    import re

    from lenet_edge.codegen.reader import read_model

    graph = read_model(tflite)
    keras_name, writer = {}, {}
    for op in graph.ops:
        for t in op.outputs:
            parts = graph.tensor(t).name.split(";")[0].split("/")
            layer = re.sub(r"_\d+$", "", parts[1]) if len(parts) > 2 else ""
            keras_name[op.index] = layer or ("output" if t in graph.outputs else "")
            writer[t] = [op.index]
    layout = ExportLayout.of_model(tflite)
    if layout is not None and layout.report.is_file():
        try:
            for step in json.loads(layout.report.read_text()).get("layers", []):
                writer[int(step["output_tensor"])] = [int(i) for i in step["op_indices"]]
        except (ValueError, KeyError, TypeError):
            pass  # a damaged report: per-op names are still right
    names = {}
    for t, ops in writer.items():
        layers = list(dict.fromkeys(keras_name.get(i, "") for i in ops if keras_name.get(i)))
        kinds = "+".join(graph.ops[i].kind for i in ops if i < len(graph.ops))
        names[t] = f"{'+'.join(layers)} {kinds}".strip()
    return names
