"""What `validate` checks an ensemble's device (Boosted LeNet-4) against.

The ensemble firmware (`export --ensemble`) answers INFER with 41 bytes: ten int32 scores
and the number of nets it ran (lenet_edge/ensemble.py, ``output_bytes``). Its references
are the same bytes computed on the host, with the rule written once in
lenet_edge/ensemble.py (``Rule.scores``, ``float_scores``), never again here:

- TFLM: the three nets under tflite-micro with the early exit (quantize/ensemble.py's
  ``tflm_ensemble``, what the zoo and the QEMU test check the device against): the bit-exact
  oracle, byte for byte;
- TFLite: the same rule over the three nets' ai-edge-litert outputs;
- float: the three .keras nets' logits added, nets 2 and 3 skipped when net 1's float
  logit margin is at least ensemble.json's ``float.float_threshold`` (its own threshold,
  chosen on training digits as T is: the float ensemble train/boosted.py reports), so its
  early exits are its own, not the int8 ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_edge.ensemble import ENSEMBLE_JSON, NETS, OUTPUT_BYTES, Ensemble, parse_output_bytes
from lenet_edge.errors import LenetEdgeError
from lenet_edge.layout import ExportLayout

EXPORT_COPY = "ensemble"  # DIR/ensemble/: the ensemble folder `export --ensemble` copies
FLOAT_NAMES = tuple(f"net{k + 1}.keras" for k in range(NETS))  # beside the int8 nets
PER_LAYER_NOTE = ("the per-layer check (--per-layer K) compares every tensor the firmware "
                  "traces (boosted_invoke_traced: net 1's op outputs, then nets 2 and 3's "
                  "unless net 1 exits early) with TFLM's tensor of that net, and checks that "
                  "nets 2 and 3's layers answer 'not run' exactly on the digits the TFLM "
                  "ensemble exits early on")


def ensemble_folder(path: Path) -> Path | None:
    """The ensemble folder ``path`` names (an ensemble folder, or an ensemble's export and
    its copy in DIR/ensemble/), or None when it is not an ensemble."""
    if not path.is_dir():
        return None
    if (path / ENSEMBLE_JSON).is_file():
        return path
    if (ExportLayout(path).c_dir / ENSEMBLE_JSON).is_file():  # the export's marker
        copy = path / EXPORT_COPY
        if not (copy / ENSEMBLE_JSON).is_file():
            raise LenetEdgeError(
                f"{path} is an ensemble export without {EXPORT_COPY}/{ENSEMBLE_JSON} (the "
                "ensemble it was made from): export it again with `lenet-edge export "
                "--ensemble FOLDER`, or give --export the ensemble folder")
        return copy
    return None


def resolve_ensemble(folder: Path, source: str):
    """ModelFiles of the ensemble in ``folder``: its nets checked against ensemble.json
    (hashes, output scales and zero points) before anything is built or streamed."""
    from lenet_edge.bundled import bundled_ensemble_dir
    from lenet_edge.ensemble import read_ensemble
    from lenet_edge.host.references import ModelFiles
    from lenet_edge.quantize.ensemble import check_nets, check_quantization

    ensemble = read_ensemble(folder)
    check_quantization(ensemble)
    check_nets(ensemble.models)
    keras = _float_nets(folder)
    bundled = bundled_ensemble_dir()
    if keras is None and (bundled / ENSEMBLE_JSON).is_file() \
            and read_ensemble(bundled).hash == ensemble.hash:
        keras = _float_nets(bundled)  # an export of the bundled ensemble: its float nets
    return ModelFiles(folder / ensemble.meta["nets"][0], None, ensemble.hash, source,
                      ensemble=ensemble, ensemble_keras=keras)


def _float_nets(folder: Path) -> tuple[Path, ...] | None:
    paths = tuple(folder / name for name in FLOAT_NAMES)
    return paths if all(p.is_file() for p in paths) else None


def float_threshold(ensemble: Ensemble) -> float | None:
    value = (ensemble.meta.get("float") or {}).get("float_threshold")
    return float(value) if isinstance(value, (int, float)) else None


def float_unavailable(files) -> str | None:
    """Why there is no float ensemble reference (None when there is one)."""
    from lenet_edge.optional import TRAIN_EXTRA, have_tensorflow

    if files.ensemble_keras is None:
        return f"no {', '.join(FLOAT_NAMES)} beside the ensemble's nets"
    if float_threshold(files.ensemble) is None:
        return f"{ENSEMBLE_JSON} gives no float.float_threshold (the float early exit)"
    if not have_tensorflow():
        return f"TensorFlow not installed ({TRAIN_EXTRA})"
    return None


@dataclass
class References:
    tflm: np.ndarray  # (N, 41) int8: the TFLM ensemble's answers, as the device gives them
    tflite: np.ndarray  # (N, 41) int8: the same rule over LiteRT's outputs
    float_pred: np.ndarray | None  # (N,) the float ensemble's classes
    float_nets: np.ndarray | None  # (N,) nets the float ensemble ran


def references(files, inputs: np.ndarray, images: np.ndarray) -> References:
    from lenet_edge.ensemble import float_scores, output_bytes
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.litert import LiteRTModel

    ensemble = files.ensemble
    scores, nets_run, _ = tflm_ensemble(ensemble, inputs, progress="TFLM ensemble")
    tflm = output_bytes(scores, nets_run)
    # LiteRT runs every net on every digit; the rule reads nets 2 and 3 only where needed.
    lite = ensemble.rule.scores([LiteRTModel(m).run_batch(inputs) for m in ensemble.models])
    float_pred = float_nets = None
    if len(inputs) and float_unavailable(files) is None:
        from lenet_edge.quantize.evaluate import float_logits

        logits = [float_logits(p, images) for p in files.ensemble_keras]
        total, float_nets = float_scores(logits, float_threshold(ensemble))
        float_pred = total.argmax(axis=1)
    return References(tflm, output_bytes(*lite), float_pred, float_nets)


def _histogram(nets: np.ndarray) -> dict[str, int]:
    """Digits per number of nets run: 1 (early exit) and 3, and anything else seen."""
    kinds = sorted({1, NETS} | {int(k) for k in np.unique(nets)})
    return {str(k): int(np.sum(nets == k)) for k in kinds}


def ensemble_figures(files, dev_out: np.ndarray, counts: np.ndarray, refs: References | None,
                     unit: str) -> dict:
    """report.json's ``ensemble``: the rule, nets run per digit (device, TFLM, float),
    the device's counts per inference by nets run, the first digit whose bytes differ."""
    ensemble = files.ensemble
    dev_scores, dev_nets = parse_output_bytes(dev_out)
    n = len(dev_out)
    by_nets = {}
    for k in sorted(set(dev_nets.tolist())):
        mine = counts[dev_nets == k]
        by_nets[str(k)] = {"digits": int(mine.size), "min": int(mine.min()),
                           "median": int(np.median(mine)), "max": int(mine.max())}
    out = {
        "kind": ensemble.meta.get("kind", "ensemble"),
        "folder": str(ensemble.folder),
        "nets": list(ensemble.meta["nets"]),
        "weights": list(ensemble.rule.weights),
        "zero_points": list(ensemble.rule.zero_points),
        "threshold": ensemble.rule.threshold,
        "output_bytes": OUTPUT_BYTES,
        "nets_run": {
            "device_mean": round(float(dev_nets.mean()), 3) if n else None,
            "device_histogram": _histogram(dev_nets),
            "tflm_mean": None, "float_mean": None,
        },
        # The ensemble's cost per digit is a mix of 1-net and 3-net runs: the mean too.
        "count_mean": int(round(float(counts.mean()))) if n else None,
        "count_by_nets_run": {"unit": unit, **by_nets},
        "float_definition": "the three float nets' logits added; nets 2 and 3 skipped when "
                            "net 1's float logit margin (top-1 minus top-2) is at least "
                            f"ensemble.json's float_threshold ({float_threshold(ensemble)}), "
                            "its own early exit",
        "float_threshold": float_threshold(ensemble),
        "float_unavailable": float_unavailable(files),
        "first_mismatch": None,
        "per_layer": PER_LAYER_NOTE,
    }
    if refs is None:
        return out
    tflm_scores, tflm_nets = parse_output_bytes(refs.tflm)
    out["nets_run"]["tflm_mean"] = round(float(tflm_nets.mean()), 3) if n else None
    out["nets_run"]["tflm_histogram"] = _histogram(tflm_nets)
    if refs.float_nets is not None and n:
        out["nets_run"]["float_mean"] = round(float(refs.float_nets.mean()), 3)
        out["nets_run"]["float_histogram"] = _histogram(refs.float_nets)
    bad = np.flatnonzero(np.any(dev_out != refs.tflm, axis=1))
    if bad.size:
        i = int(bad[0])
        out["first_mismatch"] = {
            "index": i, "device_scores": dev_scores[i].tolist(),
            "tflm_scores": tflm_scores[i].tolist(), "device_nets_run": int(dev_nets[i]),
            "tflm_nets_run": int(tflm_nets[i]),
            "differing_bytes": [int(b) for b in np.flatnonzero(dev_out[i] != refs.tflm[i])]}
    return out
