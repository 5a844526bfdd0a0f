"""Boosted LeNet-4: the ensemble rule, once, in integers (the host reference; the generated
C wrapper, codegen/ensemble.py, is its twin and the tests check they agree digit by digit).

Three int8 nets with output scales s_k and zero points z_k. "Outputs added" (LeCun et al.
1998, Boosted LeNet-4) in int8 terms: the dequantized sum s_1(q_1 - z_1) + s_2(q_2 - z_2)
+ s_3(q_3 - z_3), scaled by 2^16 / max s_k and rounded per net, so it stays an int32 that
host and device compute identically:

    score[c] = sum_k W_k * (q_k[c] - z_k),   W_k = round(2^16 * s_k / max_j s_j)

(|q - z| <= 255 and W_k <= 65,536: |score| < 3 * 2^24, no overflow.)

Early exit: nets 2 and 3 run only when net 1 is not confident, i.e. when its int8 top-1
minus top-2 (in net 1's q units) is below T; then the score is net 1's term alone. T is
chosen on training digits so that the average cost is about ``TARGET_NETS`` nets per digit
(the paper's 1.75). The class is the first index of the largest score.

The device reports the result as ``OUTPUT_BYTES`` int8 values: the ten int32 scores
little-endian, then the number of nets run (1 or 3); ``output_bytes`` builds the same.

The ensemble folder (``write_ensemble`` / ``read_ensemble``): net1_int8.tflite,
net2_int8.tflite, net3_int8.tflite and ensemble.json (weights, threshold, scales, zero
points, the nets' hashes, the figures measured when it was made).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_edge.bundled import ENSEMBLE_VARIANT
from lenet_edge.errors import LenetEdgeError

NETS = 3
CLASSES = 10
WEIGHT_ONE = 1 << 16  # the largest scale's weight
TARGET_NETS = 1.75  # the paper's average cost, in nets per digit
OUTPUT_BYTES = 4 * CLASSES + 1  # int32 scores (little-endian) + nets run
ENSEMBLE_JSON = "ensemble.json"
NET_FILES = tuple(f"net{k + 1}_int8.tflite" for k in range(NETS))


def weights_for(scales) -> list[int]:
    """W_k = round(2^16 * s_k / max s) (halves up), from the nets' float32 output scales."""
    top = max(float(s) for s in scales)
    return [int(np.floor(WEIGHT_ONE * float(s) / top + 0.5)) for s in scales]


def margin(outputs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 of each row (int8 rows: in q units; float rows: in logits)."""
    top2 = np.sort(np.asarray(outputs), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def choose_threshold(net1_outputs: np.ndarray, target_nets: float = TARGET_NETS):
    """The T (a value of net 1's margin) whose early exit costs closest to ``target_nets``
    nets per digit on these outputs: a digit with margin < T runs all three nets."""
    m = margin(net1_outputs)
    candidates = np.unique(m)
    candidates = np.append(candidates, candidates[-1] + 1)  # T above every margin: always 3
    cost = np.array([1 + (NETS - 1) * float(np.mean(m < t)) for t in candidates])
    best = candidates[int(np.argmin(np.abs(cost - target_nets)))]
    return best.item()


@dataclass(frozen=True)
class Rule:
    """The integer rule: weights W_k, zero points z_k, threshold T (net 1's q units)."""
    weights: tuple[int, ...]
    zero_points: tuple[int, ...]
    threshold: int

    def confident(self, net1: np.ndarray) -> np.ndarray:
        """Digits whose nets 2 and 3 are skipped."""
        return margin(np.asarray(net1, np.int32)) >= self.threshold

    def scores(self, outputs) -> tuple[np.ndarray, np.ndarray]:
        """(scores int64 (N, 10), nets run (N,)) from the three nets' int8 outputs (N, 10)
        each; rows of nets 2 and 3 where net 1 is confident are not read (may be anything)."""
        q = [np.asarray(o, np.int64) for o in outputs]
        confident = self.confident(q[0])
        total = self.weights[0] * (q[0] - self.zero_points[0])
        for k in range(1, NETS):
            term = self.weights[k] * (q[k] - self.zero_points[k])
            total = total + np.where(confident[:, None], 0, term)
        return total, np.where(confident, 1, NETS)


def float_scores(outputs, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The float ensemble: logits added, nets 2 and 3 skipped when net 1's logit margin
    is at least ``threshold`` (chosen as for int8, on training digits)."""
    confident = margin(outputs[0]) >= threshold
    total = outputs[0] + np.where(confident[:, None], 0.0, outputs[1] + outputs[2])
    return total, np.where(confident, 1, NETS)


def output_bytes(scores: np.ndarray, nets_run: np.ndarray) -> np.ndarray:
    """(N, OUTPUT_BYTES) int8: what the device's ensemble reports for each digit."""
    scores = np.asarray(scores, np.int64)
    if np.abs(scores).max(initial=0) >= 2 ** 31:
        raise LenetEdgeError("ensemble score outside int32")
    head = scores.astype("<i4").view(np.int8).reshape(len(scores), 4 * CLASSES)
    return np.concatenate([head, np.asarray(nets_run, np.int8)[:, None]], axis=1)


def parse_output_bytes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``output_bytes``: (scores (N, 10) int64, nets run (N,))."""
    rows = np.ascontiguousarray(np.asarray(rows, np.int8).reshape(-1, OUTPUT_BYTES))
    scores = rows[:, :4 * CLASSES].copy().view("<i4").astype(np.int64)
    return scores, rows[:, -1].astype(np.int64)


@dataclass
class Ensemble:
    folder: Path
    rule: Rule
    scales: tuple[float, ...]
    models: tuple[bytes, ...]
    meta: dict = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """sha256 of the three .tflite hashes and the rule: the ensemble's identity (what the
        device's INFO reports as its model hash)."""
        text = json.dumps({"nets": [hashlib.sha256(m).hexdigest() for m in self.models],
                           "weights": list(self.rule.weights),
                           "zero_points": list(self.rule.zero_points),
                           "threshold": self.rule.threshold}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def write_ensemble(folder: str | Path, models, scales, zero_points, threshold: int,
                   extra: dict | None = None) -> Ensemble:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in zip(NET_FILES, models):
        (folder / name).write_bytes(data)
    rule = Rule(tuple(weights_for(scales)), tuple(int(z) for z in zero_points), int(threshold))
    ensemble = Ensemble(folder, rule, tuple(float(s) for s in scales), tuple(models))
    meta = {"kind": ENSEMBLE_VARIANT, "nets": list(NET_FILES),
            "net_sha256": [hashlib.sha256(m).hexdigest() for m in models],
            "output_scales": list(ensemble.scales), "zero_points": list(rule.zero_points),
            "weights": list(rule.weights), "threshold": rule.threshold,
            "rule": "score[c] = sum_k W_k (q_k[c] - z_k); nets 2, 3 only when net 1's "
                    "top-1 minus top-2 < threshold", **(extra or {})}
    ensemble.meta = meta
    (folder / ENSEMBLE_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    return ensemble


def read_ensemble(folder: str | Path) -> Ensemble:
    """The ensemble in ``folder``, its nets checked against the hashes ensemble.json names."""
    folder = Path(folder)
    path = folder / ENSEMBLE_JSON
    if not path.is_file():
        raise LenetEdgeError(f"{folder} holds no {ENSEMBLE_JSON}; make one with "
                             "`lenet-edge train --variant boosted-lenet4 --out DIR`")
    try:
        meta = json.loads(path.read_text())
        missing = [str(name) for name in meta["nets"] if not (folder / name).is_file()]
        if missing:
            raise LenetEdgeError(f"{folder}: {', '.join(missing)} missing (the nets "
                                 f"{ENSEMBLE_JSON} names: {', '.join(map(str, meta['nets']))})")
        models = tuple((folder / name).read_bytes() for name in meta["nets"])
        rule = Rule(tuple(int(w) for w in meta["weights"]),
                    tuple(int(z) for z in meta["zero_points"]), int(meta["threshold"]))
        scales = tuple(float(s) for s in meta["output_scales"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LenetEdgeError(f"{path}: not a usable ensemble description ({exc})") from None
    if len(models) != NETS or len(rule.weights) != NETS or len(rule.zero_points) != NETS:
        raise LenetEdgeError(f"{path}: an ensemble of {NETS} nets is expected")
    for name, data, want in zip(meta["nets"], models, meta.get("net_sha256", [])):
        if hashlib.sha256(data).hexdigest() != want:
            raise LenetEdgeError(f"{folder / name} is not the net {path} was made with "
                                 "(sha256 differs)")
    if list(rule.weights) != weights_for(scales):
        raise LenetEdgeError(f"{path}: weights do not follow from the output scales")
    return Ensemble(folder, rule, scales, models, meta)
