"""On-device validation: stream test images (MNIST's digits by default) to the device,
compare with references.

`validate(url, ...)` checks the device's model hash, streams the digits pipelined with a
live-accuracy progress bar, then compares the device's int8 logits with TFLM (must be
byte-identical), and its predictions with the float and TFLite models, optionally checks
every intermediate tensor of the first K digits (`per_layer`), and writes the report
(report.py). Ctrl-C during streaming keeps a partial report, marked so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lenet_edge.errors import LenetEdgeError
from lenet_edge.host import references as refs
from lenet_edge.host.report import write_report
from lenet_edge.host.session import DeviceSession


@dataclass
class ValidationResult:
    report: dict
    out_dir: Path
    exit_code: int
    failures: list[str] = field(default_factory=list)


def check_model_hash(device_hash: str, files: refs.ModelFiles, force: bool) -> bool:
    """True when they match; raises unless `force` when they do not."""
    if device_hash == files.sha256:
        return True
    if not force:
        raise LenetEdgeError(
            f"the device runs model {device_hash[:16]}..., but the model being validated "
            f"({files.tflite}) is {files.sha256[:16]}...: flash firmware built from this "
            "model (lenet-edge export + build), point --model-dir at the model the firmware "
            "was built from, or pass --force to compare anyway"
        )
    return False


def validate(
    url: str,
    *,
    model_dir: str | Path | None = None,
    count: int = 10000,
    out_dir: str | Path = "validation",
    min_accuracy: float = 0.0,
    force: bool = False,
    per_layer: int = 0,
    data_dir: str | Path | None = None,
    timeout: float = 2.0,
    baudrate: int = 115200,
    console: Console | None = None,
) -> ValidationResult:
    console = console or Console(stderr=True)
    out_dir = Path(out_dir)
    files = refs.resolve_models(model_dir)
    from lenet_edge.quantize.evaluate import model_inputs
    from lenet_edge.train.datasets import load_test_set

    data = load_test_set(data_dir)
    if count <= 0:
        raise LenetEdgeError("--count must be at least 1")
    count = min(count, len(data.images))
    images, labels = data.images[:count], data.labels[:count]
    # The model's own preprocessing: its input shape, scale and zero point.
    inputs = model_inputs(files.tflite, images, data.name)

    with DeviceSession(url, timeout=timeout, baudrate=baudrate) as session:
        info = session.info()
        hash_ok = check_model_hash(info.model_hash, files, force)
        session.expect_model(info.model_hash)
        if info.int("input_size") != inputs.shape[1]:
            raise LenetEdgeError(
                f"the device's model takes {info.get('input_size')} inputs, the model being "
                f"validated {inputs.shape[1]}"
            )
        console.print(
            f"device: {info.get('board')} ({info.get('cpu')}, firmware {info.get('firmware')}), "
            f"model {info.model_hash[:16]}... {'matches' if hash_ok else 'DIFFERS (--force)'}"
        )
        outputs, counts, done, elapsed, partial = _stream(session, inputs, labels, console,
                                                          data.items)
        per_layer_result = None
        if per_layer and not partial:
            try:
                per_layer_result = _per_layer(session, files.tflite, inputs[:per_layer], console)
            except KeyboardInterrupt:
                partial = True
        # The stack high-water mark after the run (stack painting on the device).
        stack_measured = None if partial else session.info(refresh=True).int("stack_used")
        link = session.link_stats

    idx = np.flatnonzero(done)
    console.print(f"computing references for {len(idx)} {data.items} (float, TFLite, TFLM)...")
    dev_out = outputs[idx]
    tflm = refs.tflm_outputs(files.tflite, inputs[idx])
    tflite = refs.tflite_outputs(files.tflite, inputs[idx])
    float_pred = refs.float_predictions(files.keras, images[idx])
    report = _build_report(
        info.as_dict(), files, hash_ok, labels[idx], dev_out, counts[idx], tflm, tflite,
        float_pred, elapsed, partial, count, link, per_layer_result,
    )
    from lenet_edge.host.memory import memory_figures

    report["memory"] = memory_figures(model_dir, report["info"], stack_measured)
    report["data"] = {"name": data.name, "items": data.items, "source": data.source,
                      "class_names": list(data.class_names) if data.class_names else None}
    failures = []
    if report["agreement"]["device_tflm_exact_logits"] < 1.0:
        failures.append(
            f"device logits differ from TFLM on {report['mismatch']['count']} {data.items} "
            f"(first: number {report['mismatch']['first']})"
        )
    if report["accuracy"]["device"] < min_accuracy:
        failures.append(f"device accuracy {report['accuracy']['device']:.4f} < --min-accuracy {min_accuracy}")
    if per_layer_result and per_layer_result["first_difference"] is not None:
        d = per_layer_result["first_difference"]
        failures.append(f"per-layer: first difference at layer {d['layer']} ({d['layer_name']}) element {d['element']}")
    report["checks"] = {"passed": not failures, "failures": failures, "min_accuracy": min_accuracy}
    write_report(out_dir, report, images[idx], labels[idx], dev_out.argmax(axis=1) if len(idx) else np.zeros(0, int), float_pred)
    exit_code = 130 if partial else (1 if failures else 0)
    return ValidationResult(report, out_dir, exit_code, failures)


def _stream(session: DeviceSession, inputs: np.ndarray, labels: np.ndarray, console: Console,
            items: str = "digits"):
    n = len(inputs)
    outputs = np.zeros((n, session.info().int("output_size")), dtype=np.int8)
    counts = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    correct = 0
    partial = False
    columns = (
        TextColumn("[bold]device[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accuracy {task.fields[acc]}"),
        TextColumn("{task.fields[rate]} " + items + "/s"),
        TimeRemainingColumn(),
    )
    start = time.monotonic()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("device", total=n, acc="-", rate="-")
        try:
            for finished, (i, result) in enumerate(session.infer_stream((i, inputs[i]) for i in range(n)), 1):
                outputs[i] = result.output
                counts[i] = result.count
                done[i] = True
                correct += int(result.output.argmax() == labels[i])
                if finished % 10 == 0 or finished == n:
                    rate = finished / max(time.monotonic() - start, 1e-9)
                    progress.update(task, completed=finished, acc=f"{100 * correct / finished:.2f} %", rate=f"{rate:.0f}")
        except KeyboardInterrupt:
            partial = True
            console.print("[yellow]interrupted: writing a partial report[/]")
    return outputs, counts, done, time.monotonic() - start, partial


def _per_layer(session: DeviceSession, tflite: Path, inputs: np.ndarray, console: Console) -> dict:
    """Every traced tensor of the first K digits against TFLM's tensor of the same index."""
    from lenet_edge.quantize.tflm import TflmModel

    names = refs.tensor_names(tflite)
    short = refs.layer_names(tflite)
    ref = TflmModel(tflite, preserve_all_tensors=True)
    layer_counts: dict[int, list[int]] = {}
    layers_meta: list[dict] = []
    first_difference = None
    identical = 0
    for digit, x in enumerate(inputs):
        traces = session.trace(x)
        ref.invoke(x)
        same = True
        for t in traces:
            want = ref.tensor(t.tensor_index).reshape(-1)
            layer_counts.setdefault(t.layer, []).append(t.count)
            if digit == 0:
                layers_meta.append({"layer": t.layer, "tensor_index": t.tensor_index,
                                    "tensor_name": names.get(t.tensor_index, "?"),
                                    "layer_name": short.get(t.tensor_index, "?"), "size": int(t.data.size)})
            if want.size != t.data.size or not np.array_equal(want, t.data):
                same = False
                if first_difference is None:
                    bad = np.flatnonzero(want != t.data) if want.size == t.data.size else np.array([0])
                    e = int(bad[0])
                    first_difference = {
                        "digit": digit, "layer": t.layer, "tensor_index": t.tensor_index,
                        "tensor_name": names.get(t.tensor_index, "?"),
                        "layer_name": short.get(t.tensor_index, "?"), "element": e,
                        "device": int(t.data[e]) if e < t.data.size else None,
                        "tflm": int(want[e]) if e < want.size else None,
                        "differing_elements": int(bad.size),
                    }
        identical += same
        console.print(f"per-layer input {digit}: {'all tensors identical to TFLM' if same else 'DIFFERS'}")
    for meta in layers_meta:
        values = layer_counts.get(meta["layer"], [0])
        meta["count_median"] = int(np.median(values))
    return {"digits": len(inputs), "identical_digits": identical, "first_difference": first_difference,
            "layers": layers_meta}


def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": int(values.min()), "median": int(np.median(values)), "max": int(values.max())}


def _build_report(info, files, hash_ok, labels, dev_out, counts, tflm, tflite, float_pred,
                  elapsed, partial, requested, link, per_layer) -> dict:
    n = len(labels)
    dev_pred = dev_out.argmax(axis=1) if n else np.zeros(0, int)

    def acc(pred):
        return float((pred == labels).mean()) if pred is not None and n else None

    exact = np.all(dev_out == tflm, axis=1) if n else np.zeros(0, bool)
    bad = np.flatnonzero(~exact)
    latency = {"unit": info.get("counter_unit", "cycles"), **_stats(counts)}
    hz = info.get("counter_hz")
    # Only cycles are time: QEMU's guest instructions say nothing about a chip's speed.
    if latency["unit"] == "cycles" and isinstance(hz, int) and hz > 0 \
            and latency["median"] is not None:
        latency["median_us"] = round(latency["median"] / hz * 1e6, 1)
    return {
        "count": n,
        "requested": requested,
        "partial": partial,
        "accuracy": {
            "device": acc(dev_pred),
            "float": acc(float_pred),
            "tflite": acc(tflite.argmax(axis=1) if n else None),
            "tflm": acc(tflm.argmax(axis=1) if n else None),
        },
        "agreement": {
            "device_tflm_exact_logits": float(exact.mean()) if n else None,
            "device_float_argmax": float((dev_pred == float_pred).mean()) if float_pred is not None and n else None,
            "device_tflite_argmax": float((dev_pred == tflite.argmax(axis=1)).mean()) if n else None,
        },
        "mismatch": {"count": int(bad.size), "first": int(bad[0]) if bad.size else None,
                     "digits": [int(i) for i in bad[:20]]},
        "latency": latency,
        "throughput_digits_per_s": round(n / elapsed, 2) if elapsed > 0 else None,
        "stream_seconds": round(elapsed, 2),
        "info": info,
        "model": {"tflite": str(files.tflite), "sha256": files.sha256,
                  "keras": str(files.keras) if files.keras else None, "hash_matches_device": hash_ok,
                  "float_unavailable": refs.float_unavailable(files.keras)},
        "link": link,
        "per_layer": per_layer,
    }
