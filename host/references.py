"""The model files a validation checks the device against, and their reference outputs.

Float (the Keras model), TFLite (the ai-edge-litert interpreter) and TFLM (the
tflite-micro runtime: the bit-exact oracle for the device) on the same digits. An
ensemble (Boosted LeNet-4) is resolved here too; its references are host/ensemble_refs.py's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_edge.ensemble import Ensemble
from lenet_edge.errors import LenetEdgeError
from lenet_edge.layout import ExportLayout

TFLITE_NAME = ExportLayout.MODEL_NAME
KERAS_NAME = ExportLayout.FLOAT_MODEL_NAME


@dataclass
class ModelFiles:
    tflite: Path  # an ensemble's: net 1 (its input shape and quantization are every net's)
    keras: Path | None
    sha256: str  # what the device's INFO must report (an ensemble's: Ensemble.hash)
    source: str  # "bundled modern", or the directory given
    ensemble: Ensemble | None = None  # Boosted LeNet-4: the nets and the rule
    ensemble_keras: tuple[Path, ...] | None = None  # its three float nets, when found

    def class_scores(self, outputs: np.ndarray) -> np.ndarray:
        """What the class is read from, per device output row: one model's int8 logits,
        or an ensemble's int32 scores (the first 40 of its 41 bytes)."""
        if self.ensemble is None:
            return np.asarray(outputs)
        from lenet_edge.ensemble import parse_output_bytes

        return parse_output_bytes(outputs)[0]

    def output_size(self) -> int:
        """Bytes of the device's INFER answer for this model: its outputs, or an ensemble's
        41 (ten int32 scores and the nets run)."""
        if self.ensemble is not None:
            from lenet_edge.ensemble import OUTPUT_BYTES

            return OUTPUT_BYTES
        from lenet_edge.quantize.tflm import TflmModel

        return int(np.prod(TflmModel(self.tflite).output_shape))

    def why_no_float(self) -> str | None:
        """Why there is no float reference (None when there is one)."""
        if self.ensemble is not None:
            from lenet_edge.host.ensemble_refs import float_unavailable as ensemble_reason

            return ensemble_reason(self)
        return float_unavailable(self.keras)

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """The class of each output row (the first index of the largest score)."""
        outputs = np.asarray(outputs)
        if outputs.ndim == 1:
            return self.predict(outputs[None])[0]
        return self.class_scores(outputs).argmax(axis=1)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resolve_models(model_dir: str | Path | None) -> ModelFiles:
    """The .tflite to validate (and its .keras when there is one).

    `model_dir` may be an export directory (`DIR/model/lenet5_int8.tflite`), a training
    or quantize output directory, or a .tflite file; None means the bundled model. An
    ensemble folder (ensemble.json) or an ensemble's export (`export --ensemble`) gives
    the ensemble (host/ensemble_refs.py).
    """
    from lenet_edge.bundled import VARIANTS, bundled_model
    from lenet_edge.host.ensemble_refs import ensemble_folder, resolve_ensemble

    if model_dir is None:
        tflite = bundled_model(kind="tflite")
        keras = bundled_model(kind="keras") if (tflite.parent / KERAS_NAME).is_file() else None
        return ModelFiles(tflite, keras, sha256_file(tflite), "bundled model")
    path = Path(model_dir)
    if (folder := ensemble_folder(path)) is not None:
        return resolve_ensemble(folder, str(path))
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


def tensor_difference(want: np.ndarray, got: np.ndarray) -> dict | None:
    """None when the device's traced tensor ``got`` is TFLM's ``want`` byte for byte; else
    where they first differ (element 0 when the sizes differ), both values there and how
    many elements differ: the per-layer checks' one comparison."""
    if want.size == got.size and np.array_equal(want, got):
        return None
    bad = np.flatnonzero(want != got) if want.size == got.size else np.array([0])
    e = int(bad[0])
    return {"element": e, "device": int(got[e]) if e < got.size else None,
            "tflm": int(want[e]) if e < want.size else None, "differing_elements": int(bad.size)}


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
