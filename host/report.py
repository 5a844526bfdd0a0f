"""Validation report files: report.json, report.md, confusion_matrix.png, disagreements.png,
error_rejection.png.

Written for a person: every figure carries its true unit (QEMU counts guest instructions,
which are not cycles and not time; silicon counts cycles, shown with microseconds at the
core clock), layers are named by their Keras layer and op, not by the converter's
80-character tensor names, and the pictures show what went wrong (every image the device
classifies differently from its label or from the float model, with both classes), or
are not drawn when nothing did.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

CONFUSION_PNG = "confusion_matrix.png"
DISAGREE_PNG = "disagreements.png"
REJECTION_PNG = "error_rejection.png"
MAX_TILES = 400  # a bad model can disagree on thousands: the first ones are enough to look at
TILE_COLUMNS = 10

UNIT_NAMES = {"guest_instructions": "guest instructions", "cycles": "cycles"}
# An ensemble's references are ensembles too (host/ensemble_refs.py).
ENSEMBLE_MODEL_NAMES = {"device": "device (ensemble firmware)", "tflm": "TFLM ensemble",
                        "tflite": "TFLite ensemble (the same rule)", "float": "float ensemble"}


def write_report(out_dir: Path, report: dict, images, labels, device_pred, float_pred,
                 device_logits=None) -> None:
    """``device_logits``: the device's outputs, for the error-rejection curve (none drawn
    without them)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    disagreements = disagreement_indices(labels, device_pred, float_pred)
    report["disagreements"] = {
        "device_vs_label": int(np.sum(np.asarray(device_pred) != np.asarray(labels))),
        "device_vs_float": None if float_pred is None else
        int(np.sum(np.asarray(device_pred) != np.asarray(float_pred))),
        "shown": int(min(len(disagreements), MAX_TILES)),
    }
    curve = device_logits is not None and len(device_logits) > 0
    report["files"] = {"confusion_matrix": CONFUSION_PNG, "markdown": "report.md",
                       "disagreements": DISAGREE_PNG if len(disagreements) else None,
                       "error_rejection": REJECTION_PNG if curve else None}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    _confusion_png(out_dir / CONFUSION_PNG, labels, device_pred, report)
    stale = out_dir / DISAGREE_PNG
    if len(disagreements):
        _disagreements_png(stale, images, labels, device_pred, float_pred,
                           disagreements[:MAX_TILES], report)
    elif stale.exists():  # from an earlier run into the same folder
        stale.unlink()
    if curve:
        _rejection_png(out_dir / REJECTION_PNG, device_logits, labels, report)
    elif (out_dir / REJECTION_PNG).exists():
        (out_dir / REJECTION_PNG).unlink()
    (out_dir / "report.md").write_text(markdown(report))


def disagreement_indices(labels, device_pred, float_pred) -> np.ndarray:
    """Indices where the device's class differs from the label or from the float model's."""
    device_pred = np.asarray(device_pred)
    bad = device_pred != np.asarray(labels)
    if float_pred is not None:
        bad |= device_pred != np.asarray(float_pred)
    return np.flatnonzero(bad)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _n(value) -> str:
    return "n/a" if value is None else f"{value:,}"


def unit_name(unit: str | None) -> str:
    return UNIT_NAMES.get(unit or "", (unit or "counts").replace("_", " "))


def item_noun(report: dict) -> str:
    """What one input is called: "digits" for the MNIST family, else "images"."""
    return (report.get("data") or {}).get("items", "images")


def class_name(report: dict, k) -> str:
    """A class as the data names it (PNG folder names), else its number."""
    names = (report.get("data") or {}).get("class_names")
    return names[int(k)] if names and 0 <= int(k) < len(names) else str(int(k))


def counted(n: int, noun: str) -> str:
    """ "1 digit", "7 digits" (nouns here are regular plurals)."""
    return f"{n:,} {noun[:-1] if n == 1 and noun.endswith('s') else noun}"


def latency_line(r: dict) -> str:
    lat = r["latency"]
    unit = unit_name(lat["unit"])
    line = (f"Latency per inference: median {_n(lat['median'])} {unit} "
            f"(min {_n(lat['min'])}, max {_n(lat['max'])})")
    if lat["unit"] == "guest_instructions":
        return line + (". QEMU counts guest instructions: not cycles (no pipeline, caches "
                       "or wait states are modelled) and not time; real boards report cycles.")
    if "median_us" in lat:
        clock = r["info"].get("counter_hz")
        mhz = f"{clock / 1e6:g} MHz" if isinstance(clock, int) else "the core clock"
        return line + f" = {lat['median_us']:,} us at {mhz}."
    return line + "."


def markdown(r: dict) -> str:
    info = r["info"]
    items = item_noun(r)
    data = r.get("data") or {}
    clock = info.get("clock_hz")
    lines = [
        "# lenet-edge on-device validation"
        + (f" (PARTIAL: {r.get('partial_reason') or 'interrupted'})" if r["partial"] else ""),
        "",
        f"Device: **{info.get('board')}** ({info.get('cpu')}"
        + (f", {clock / 1e6:g} MHz" if isinstance(clock, int) else "")
        + f"), firmware {info.get('firmware')}, model `{str(info.get('model_hash'))[:16]}...` "
        + ("(matches the validated model)" if r["model"]["hash_matches_device"]
           else "(**differs** from the validated model: --force)"),
        "",
        f"Data: {r['count']:,} of {r['requested']:,} {items} requested, "
        f"{data.get('name', 'test set')}, in order.",
        "",
        "| model | accuracy |",
        "| --- | --- |",
    ]
    float_missing = r["model"].get("float_unavailable")
    names = ENSEMBLE_MODEL_NAMES if r.get("ensemble") else {}
    for key in ("device", "tflm", "tflite", "float"):
        note = f" ({float_missing})" if key == "float" and float_missing else ""
        lines.append(f"| {names.get(key, key)} | {_pct(r['accuracy'][key])}{note} |")
    ag = r["agreement"]
    exact = ("device vs TFLM ensemble, byte-identical answers (10 int32 scores + nets run)"
             if r.get("ensemble") else "device vs TFLM, byte-identical outputs")
    lines += [
        "",
        "| agreement | |",
        "| --- | --- |",
        f"| {exact} | {_pct(ag['device_tflm_exact_logits'])} |",
        f"| device vs TFLite, same class | {_pct(ag['device_tflite_argmax'])} |",
        f"| device vs float, same class | {_pct(ag['device_float_argmax'])} |",
        "",
        latency_line(r)
        + (" For an ensemble this is the median over a mix of 1-net and 3-net digits: "
           "each kind's figures and the mean are under Ensemble." if r.get("ensemble") else ""),
        "",
        f"Throughput end to end: {r['throughput_digits_per_s']} {items}/s over the serial link.",
        "",
    ]
    lines += _memory_lines(r.get("memory"))
    link = r.get("link") or {}
    if link:
        lines.append(
            "Link: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in link.items() if k in (
                "retransmissions", "timeouts", "crc_errors", "header_errors", "garbage_bytes",
                "resets_seen"))
        )
        lines.append("")
    lines += _device_lines(r, items)
    lines += _ensemble_lines(r, items)
    lines += _per_layer_lines(r)
    checks = r.get("checks", {})
    lines += ["## Result", "", "PASSED" if checks.get("passed") else "FAILED"]
    lines += [f"- {f}" for f in checks.get("failures", [])]
    lines += ["", f"![confusion matrix]({CONFUSION_PNG})", ""]
    lines += _rejection_lines(r)
    lines += _disagreement_lines(r, items)
    return "\n".join(lines)


def _ensemble_lines(r: dict, items: str) -> list[str]:
    """An ensemble's rule, nets run per digit, counts by nets run, first mismatch."""
    e = r.get("ensemble")
    if not e:
        return []
    runs = e["nets_run"]
    weights = ", ".join(f"{w:,}" for w in e["weights"])
    lines = ["## Ensemble", "",
             f"Ensemble `{e['folder']}` ({', '.join(e['nets'])}): score[c] = sum_k W_k "
             f"(q_k[c] - z_k) with W = ({weights}), z = {tuple(e['zero_points'])}; nets 2 and "
             f"3 run only when net 1's top-1 minus top-2 is below T = {e['threshold']}. The "
             f"device answers {e['output_bytes']} bytes per {items[:-1]}: the ten int32 "
             "scores and the number of nets it ran, all compared with the TFLM ensemble's.",
             "", "| nets run per " + items[:-1] + " | mean | 1 net | 3 nets |",
             "| --- | ---: | ---: | ---: |"]
    for who in ("device", "tflm", "float"):
        hist = runs.get(f"{who}_histogram")
        if runs.get(f"{who}_mean") is None or not hist:
            continue
        label = {"device": "device", "tflm": "TFLM ensemble", "float": "float ensemble"}[who]
        lines.append(f"| {label} | {runs[f'{who}_mean']:.3f} | {hist.get('1', 0):,} "
                     f"| {hist.get('3', 0):,} |")
    by = {k: v for k, v in e["count_by_nets_run"].items() if k != "unit"}
    if by:
        unit = unit_name(e["count_by_nets_run"]["unit"])
        lines += ["", f"| nets run | {items} | median {unit} | min | max |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {k} | {v['digits']:,} | {v['median']:,} | {v['min']:,} | {v['max']:,} |"
                  for k, v in by.items()]
        lines += ["", f"Mean over these {items}: {e['count_mean']:,} {unit} per {items[:-1]} "
                  "(the early exits' mix)."]
    lines += ["", f"Float ensemble: {e['float_definition']}"
              + (f" (not computed: {e['float_unavailable']})." if e.get("float_unavailable")
                 else "."), ""]
    m = e.get("first_mismatch")
    if m:
        lines += [f"First mismatch: {items[:-1]} {m['index']}: device scores {m['device_scores']}"
                  f" ({m['device_nets_run']} nets), TFLM ensemble {m['tflm_scores']} "
                  f"({m['tflm_nets_run']} nets); bytes {m['differing_bytes']} differ.", ""]
    note = e["per_layer"]
    lines += [f"{note[0].upper()}{note[1:]}.", ""]
    return lines


def _device_lines(r: dict, items: str) -> list[str]:
    """With several devices: what each computed (the digits were shared among them)."""
    devices = r.get("devices") or []
    if len(devices) < 2:
        return []
    lines = ["## Devices", "", f"| device | board | {items} | {items}/s | latency median | retransmissions |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for d in devices:
        lines.append(f"| {d['url']} | {d.get('board')} | {d['count']} | {d.get('throughput_digits_per_s')} "
                     f"| {d.get('latency_median')} | {(d.get('link') or {}).get('retransmissions', 0)} |")
    return lines + [""]


def _memory_lines(mem: dict | None) -> list[str]:
    if not mem:
        return []
    lines = ["## Memory", "", "| | bytes | of which |", "| --- | ---: | --- |"]
    s = mem.get("sections") or {}
    if mem.get("flash_bytes") is not None:
        parts = ", ".join(f"{k} {s[k]:,}" for k in ("text", "rodata", "weights", "data") if k in s)
        cap = mem.get("flash_capacity")
        lines.append(f"| flash | {mem['flash_bytes']:,}"
                     + (f" of {cap:,}" if cap else "") + f" | {parts} |")
    if mem.get("ram_bytes") is not None:
        parts = ", ".join(f"{k} {s[k]:,}" for k in ("data", "bss", "arena", "stack") if k in s)
        cap = mem.get("ram_capacity")
        lines.append(f"| RAM | {mem['ram_bytes']:,}" + (f" of {cap:,}" if cap else "")
                     + f" | {parts} (stack: reserved) |")
    elif mem.get("arena_bytes") is not None:
        lines.append(f"| arena | {mem['arena_bytes']:,} | the model's activations (device INFO) |")
    if mem.get("stack_worst_case_bytes") is not None:
        lines.append(f"| stack, worst case | {mem['stack_worst_case_bytes']:,} | static analysis "
                     "of the build (deepest call path + interrupt + exception frame) |")
    if mem.get("stack_measured_bytes") is not None:
        lines.append(f"| stack, measured | {mem['stack_measured_bytes']:,} | high-water mark on "
                     "the device after the run (stack painting) |")
    lines.append("")
    if mem.get("source"):
        lines += [f"Flash and RAM from the build report `{mem['source']}`.", ""]
    else:
        lines += ["No build report for this board beside the model (flash and RAM: run "
                  "`lenet-edge build`); figures above are what the device reports.", ""]
    return lines


def _per_layer_lines(r: dict) -> list[str]:
    pl = r.get("per_layer")
    if not pl:
        return []
    unit = unit_name(r["latency"]["unit"])
    hz = r["info"].get("counter_hz")
    # Microseconds only where the counter counts cycles (silicon), never for QEMU.
    us = r["latency"]["unit"] == "cycles" and isinstance(hz, int) and hz > 0
    ensemble = pl.get("ensemble")  # an ensemble's: each layer names its net
    lines = [f"## Per-layer check ({counted(pl['digits'], item_noun(r))})", ""]
    if ensemble:
        lines += ["Each layer is a tensor of one net, compared with that net under TFLM; "
                  "nets 2 and 3's layers must answer 'not run' exactly where the TFLM "
                  f"ensemble exits early (nets run under TFLM per input: "
                  f"{', '.join(map(str, ensemble['tflm_nets_run']))}). Layers from "
                  f"{ensemble['layers_from']}.", ""]
    lines += [f"| step | layer | tensor | values | median {unit} |" + (" us |" if us else ""),
              "| ---: | --- | ---: | ---: | ---: |" + (" ---: |" if us else "")]
    for m in pl["layers"]:
        name = m.get("layer_name") or m["tensor_name"]
        median = m["count_median"]
        lines.append(f"| {m['layer']} | {name} | {m['tensor_index']} | {m['size']:,} "
                     + ("| not run |" if median is None else f"| {median:,} |")
                     + ((" |" if median is None else f" {median / hz * 1e6:,.1f} |") if us else ""))
    d = pl["first_difference"]
    noun = counted(1, item_noun(r)).split()[1]
    if d is None:
        text = "Every traced tensor identical to TFLM" + ("'s nets, every early exit the "
                                                          "TFLM ensemble's." if ensemble else ".")
    elif d.get("element") is None:  # an ensemble's wrong exit
        text = (f"First difference: {noun} {d['digit']}, step {d['layer']} ({d['layer_name']}): "
                f"the device {'ran' if d['device'] == 'ran' else 'did not run'} it, the TFLM "
                f"ensemble ran {d['tflm_nets_run']} net{'s' if d['tflm_nets_run'] > 1 else ''}.")
    else:
        text = (f"First difference: {noun} {d['digit']}, step {d['layer']} "
                f"({d.get('layer_name') or d['tensor_name']}), element {d['element']}: "
                f"device {d['device']}, TFLM {d['tflm']}.")
    return lines + ["", text, ""]


def _disagreement_lines(r: dict, items: str) -> list[str]:
    d = r.get("disagreements") or {}
    vs_label, vs_float = d.get("device_vs_label", 0), d.get("device_vs_float")
    text = f"The device's class differs from the label on {counted(vs_label, items)}"
    text += "" if vs_float is None else f" and from the float model's on {vs_float:,}"
    if not r["files"].get("disagreements"):
        return [text + ": nothing to show.", ""]
    shown = d.get("shown", 0)
    return [text + f"; {DISAGREE_PNG} shows " + (f"the first {shown}" if shown == MAX_TILES
                                                  else "each of them") + ".", "",
            f"![disagreements]({DISAGREE_PNG})", ""]


def _rejection_lines(r: dict) -> list[str]:
    rej = r.get("rejection")
    if not rej:
        return []
    lines = ["## Error against rejection", "",
             f"Rejecting the least confident {item_noun(r)} first ({rej['confidence']}, "
             "from the device's outputs):", "",
             "| target error | rejection needed |", "| --- | --- |"]
    lines += [f"| {t} % | {v:.2f} % |"
              for t, v in rej["rejection_percent_for_error_percent"].items()]
    lines += ["", "| rejected | error on the rest |", "| --- | --- |"]
    lines += [f"| {k} % | {v:.2f} % |"
              for k, v in rej["error_percent_at_rejection_percent"].items()]
    return lines + ["", f"![error against rejection]({REJECTION_PNG})", ""]


def _rejection_png(path: Path, logits, labels, report: dict) -> None:
    from lenet_edge.host.rejection import error_rejection_curve, rejection_for_error

    plt = _plt()
    rejected, error = error_rejection_curve(logits, labels)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(rejected, error, color="tab:blue")
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    # Show up to twice the rejection that reaches 0.5 % error (at least 10 %).
    ax.set_xlim(0, min(100.0, max(10.0, 2 * rejection_for_error(logits, labels, 0.5))))
    ax.set_xlabel(f"rejected {item_noun(report)} (least confident first), %")
    ax.set_ylabel("error on the rest, %")
    ax.set_title(f"{report['info'].get('board')}: error against rejection")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _confusion_png(path: Path, labels, pred, report: dict) -> None:
    plt = _plt()
    outputs = report["info"].get("output_size")
    classes = max(int(np.max(labels, initial=0)) + 1, int(np.max(pred, initial=0)) + 1,
                  outputs if isinstance(outputs, int) else 0)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for t, p in zip(labels, pred):
        matrix[int(t), int(p)] += 1
    size = max(5.0, 0.45 * classes + 1.5)
    fig, ax = plt.subplots(figsize=(size + 0.6, size), dpi=100)
    ax.imshow(np.log1p(matrix), cmap="Blues")
    if classes <= 30:
        for t in range(classes):
            for p in range(classes):
                if matrix[t, p]:
                    ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                            color="white" if t == p else "black")
        ticks = [class_name(report, k) for k in range(classes)]
        ax.set_xticks(range(classes), ticks, rotation=90 if max(map(len, ticks)) > 2 else 0)
        ax.set_yticks(range(classes), ticks)
    ax.set_xlabel("device prediction")
    ax.set_ylabel("true label")
    acc = report["accuracy"]["device"]
    ax.set_title(f"{report['info'].get('board')}: {report['count']} {item_noun(report)}, "
                 f"accuracy {_pct(acc)}")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _disagreements_png(path: Path, images, labels, device_pred, float_pred, shown,
                       report: dict) -> None:
    """One tile per image: the picture, the label and the device's class (red when they
    differ), and the float model's class when there is one."""
    plt = _plt()
    cols = min(TILE_COLUMNS, len(shown))
    rows = (len(shown) + cols - 1) // cols
    caption_lines = 4 if float_pred is not None else 3
    fig, axes = plt.subplots(rows, cols, figsize=(max(1.3 * cols, 4.5),
                                                  (1.15 + 0.14 * caption_lines) * rows + 0.5),
                             dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown):
        image = np.asarray(images[i])
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, vmin=0, vmax=255)
        wrong = device_pred[i] != labels[i]
        caption = (f"#{i}\nlabel {class_name(report, labels[i])}\n"
                   f"device {class_name(report, device_pred[i])}")
        if float_pred is not None:
            caption += f"\nfloat {class_name(report, float_pred[i])}"
        ax.set_title(caption, fontsize=7, color="red" if wrong else "black", linespacing=1.1)
    vs = "its label (red) or the float model" if float_pred is not None else "its label"
    title = f"{len(shown)} {item_noun(report)} where the device's class differs from {vs}"
    fig.suptitle(textwrap.fill(title, width=int(12 * fig.get_figwidth())), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
