"""Validation report files: report.json, report.md, confusion_matrix.png, disagreements.png."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CONFUSION_PNG = "confusion_matrix.png"
DISAGREE_PNG = "disagreements.png"
MAX_GRID = 64


def write_report(out_dir: Path, report: dict, images, labels, device_pred, float_pred) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report["files"] = {"confusion_matrix": CONFUSION_PNG, "disagreements": DISAGREE_PNG, "markdown": "report.md"}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    _confusion_png(out_dir / CONFUSION_PNG, labels, device_pred, report)
    _disagreements_png(out_dir / DISAGREE_PNG, images, labels, device_pred, float_pred)
    (out_dir / "report.md").write_text(markdown(report))


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def markdown(r: dict) -> str:
    info = r["info"]
    lat = r["latency"]
    lines = [
        "# lenet-edge on-device validation"
        + (f" (PARTIAL: {r.get('partial_reason') or 'interrupted'})" if r["partial"] else ""),
        "",
        f"Device: **{info.get('board')}** ({info.get('cpu')}, {info.get('clock_hz')} Hz), "
        f"firmware {info.get('firmware')}, model `{str(info.get('model_hash'))[:16]}...` "
        + ("(matches the validated model)" if r["model"]["hash_matches_device"] else "(**differs** from the validated model: --force)"),
        "",
        f"Digits: {r['count']} of {r['requested']} requested (MNIST test set, in order).",
        "",
        "| | accuracy |",
        "| --- | --- |",
    ]
    for key in ("device", "tflm", "tflite", "float"):
        lines.append(f"| {key} | {_pct(r['accuracy'][key])} |")
    ag = r["agreement"]
    lines += [
        "",
        "| agreement | |",
        "| --- | --- |",
        f"| device vs TFLM, byte-identical logits | {_pct(ag['device_tflm_exact_logits'])} |",
        f"| device vs TFLite, same class | {_pct(ag['device_tflite_argmax'])} |",
        f"| device vs float, same class | {_pct(ag['device_float_argmax'])} |",
        "",
        f"Latency per inference ({lat['unit']}): min {lat['min']}, median {lat['median']}, max {lat['max']}"
        + (f" (median {lat['median_us']} us at {info.get('counter_hz')} Hz)" if "median_us" in lat else ""),
        "",
        f"Throughput end to end: {r['throughput_digits_per_s']} digits/s over the serial link.",
        "",
    ]
    link = r.get("link") or {}
    if link:
        lines.append(
            "Link: " + ", ".join(f"{k} {v}" for k, v in link.items() if k in (
                "retransmissions", "timeouts", "crc_errors", "header_errors", "garbage_bytes", "resets_seen"))
        )
        lines.append("")
    pl = r.get("per_layer")
    if pl:
        lines += [f"## Per-layer check ({pl['digits']} digits)", "",
                  "| layer | tensor | name | size | median count |", "| --- | --- | --- | --- | --- |"]
        for m in pl["layers"]:
            lines.append(f"| {m['layer']} | {m['tensor_index']} | {m['tensor_name']} | {m['size']} | {m['count_median']} |")
        d = pl["first_difference"]
        lines += ["", "Every intermediate tensor identical to TFLM." if d is None else
                  f"First difference: digit {d['digit']}, layer {d['layer']} ({d['tensor_name']}), "
                  f"element {d['element']}: device {d['device']}, TFLM {d['tflm']}.", ""]
    checks = r.get("checks", {})
    lines += ["## Result", "", "PASSED" if checks.get("passed") else "FAILED"]
    lines += [f"- {f}" for f in checks.get("failures", [])]
    lines += ["", f"![confusion matrix]({CONFUSION_PNG})", "", f"![device vs float disagreements]({DISAGREE_PNG})", ""]
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _confusion_png(path: Path, labels, pred, report: dict) -> None:
    plt = _plt()
    matrix = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(labels, pred):
        matrix[int(t), int(p)] += 1
    fig, ax = plt.subplots(figsize=(6, 5.4), dpi=100)
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for t in range(10):
        for p in range(10):
            if matrix[t, p]:
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                        color="white" if t == p else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("device prediction")
    ax.set_ylabel("true label")
    acc = report["accuracy"]["device"]
    ax.set_title(f"{report['info'].get('board')}: {report['count']} digits, accuracy {_pct(acc)}")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _disagreements_png(path: Path, images, labels, device_pred, float_pred) -> None:
    plt = _plt()
    if float_pred is None:
        idx = np.zeros(0, int)
        note = "no float model to compare with"
    else:
        idx = np.flatnonzero(np.asarray(device_pred) != np.asarray(float_pred))
        note = f"device and float agree on all {len(labels)} digits"
    shown = idx[:MAX_GRID]
    if len(shown) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5), dpi=100)
        ax.axis("off")
        ax.text(0.5, 0.5, note, ha="center", va="center")
    else:
        cols = min(8, len(shown))
        rows = (len(shown) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), dpi=100, squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, i in zip(axes.flat, shown):
            ax.imshow(images[i], cmap="gray_r")
            ax.set_title(f"#{i} y{labels[i]} d{device_pred[i]} f{float_pred[i]}", fontsize=7)
        fig.suptitle(f"device != float: {len(idx)} digits (y label, d device, f float)", fontsize=9)
        fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
