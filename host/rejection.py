"""The error-rejection trade-off of a classifier's int8 logits (LeCun et al. 1998 report
the rejection needed to reach 0.5 % error): reject the least confident digits first, by
the margin between the two highest logits, and see how the error on the rest falls.

One rule, used by `validate`'s report (the device's logits) and by `lenet-edge zoo`.
"""

from __future__ import annotations

import numpy as np

TARGET_ERRORS = (0.5, 1.0)  # percent: the 1998 and 1990 papers' figures
REJECTIONS = (0.0, 1.0, 2.0, 5.0, 10.0)  # percent


def _sorted_errors(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1 where the prediction is wrong, most confident digit first (stable for ties)."""
    top2 = np.sort(np.asarray(logits).astype(np.int32), axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    order = np.argsort(-margin, kind="stable")
    return (np.argmax(logits, axis=1) != np.asarray(labels))[order]


def error_rejection_curve(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rejected %, error % on the kept digits) for keeping the 1..N most confident."""
    wrong = _sorted_errors(logits, labels)
    n = len(wrong)
    kept = np.arange(1, n + 1)
    return 100.0 * (n - kept) / max(n, 1), 100.0 * np.cumsum(wrong) / kept


def rejection_for_error(logits: np.ndarray, labels: np.ndarray, target: float = 0.5) -> float:
    """Smallest percentage of digits to reject so the error on the rest is at most
    ``target`` %."""
    wrong = _sorted_errors(logits, labels)
    kept = np.arange(1, len(wrong) + 1)
    ok = np.flatnonzero(np.cumsum(wrong) * 100.0 <= target * kept)
    keep = int(ok[-1]) + 1 if ok.size else 0
    return round(100.0 * (len(wrong) - keep) / max(len(wrong), 1), 2)


def error_at_rejection(logits: np.ndarray, labels: np.ndarray, rejected: float) -> float:
    """Error % on the digits kept after rejecting the least confident ``rejected`` %."""
    wrong = _sorted_errors(logits, labels)
    keep = max(1, int(round(len(wrong) * (1 - rejected / 100.0))))
    return round(100.0 * float(wrong[:keep].mean()), 2) if len(wrong) else 0.0


def rejection_summary(logits: np.ndarray, labels: np.ndarray) -> dict:
    """The figures a report shows: rejection for each target error, error at each rejection."""
    return {
        "confidence": "margin between the two highest int8 logits",
        "rejection_percent_for_error_percent": {
            f"{t:g}": rejection_for_error(logits, labels, t) for t in TARGET_ERRORS},
        "error_percent_at_rejection_percent": {
            f"{r:g}": error_at_rejection(logits, labels, r) for r in REJECTIONS},
    }
