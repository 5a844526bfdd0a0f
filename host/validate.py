"""On-device validation: stream MNIST test digits to the device, compare with references.

`validate(url, ...)` checks the device's model hash, streams the digits pipelined with a
live-accuracy progress bar (given several URLs, it checks every device's hash and shares
the digits among them, each device taking the next digit when it has room), then compares the device's int8 logits with TFLM (must be
byte-identical), and its predictions with the float and TFLite models, optionally checks
every intermediate tensor of the first K digits (`per_layer`), and writes the report
(report.py). Once streaming has begun, every ending (the link giving up, Ctrl-C at any
stage) still writes the report of what was checked, marked partial with the reason.

An ensemble (Boosted LeNet-4: its folder or its export) is validated the same way: its
device answers 41 bytes (ten int32 scores, nets run), checked byte for byte against the
TFLM ensemble, its class read from the scores (host/ensemble_refs.py); its per-layer check
compares each net's traced tensors with that net under TFLM (host/ensemble_per_layer.py).
"""

from __future__ import annotations

import contextlib
import threading
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
            "model (lenet-edge export + build), point --export at the model the firmware "
            "was built from, or pass --force to compare anyway"
        )
    return False


def clock_warnings(info: dict) -> list[str]:
    """What a person should know about the device's clock and UART, from its INFO: a clock
    set-up that fell back, a baud rate the divisor misses by more than 2 %."""
    warnings = []
    if info.get("clock_fault", "0") not in ("0", 0):
        warnings.append(
            f"the device's clock set-up failed ({info.get('clock_status')}); it runs at "
            f"{int(info.get('clock_hz', 0)) / 1e6:g} MHz, its reset clock"
            + (" (expected under QEMU, which does not model this chip's clock tree)"
               if str(info.get("emulated")) == "1" else ""))
    try:
        want, got = int(info["uart_baud"]), int(info["uart_baud_actual"])
    except (KeyError, ValueError):
        return warnings
    if want and abs(got / want - 1) > 0.02 and str(info.get("emulated")) != "1":
        warnings.append(f"the device's UART runs at {got} baud for the {want} asked "
                        f"({100 * (got / want - 1):+.1f} %): expect framing errors")
    return warnings
def prepare_report_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and prove it is writable, before any digit is streamed (a report
    that cannot be written at the end would lose everything that was checked)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".lenet-edge-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise LenetEdgeError(f"--report {out_dir} exists and is not a directory; give a "
                             "directory for report.json, report.md and the PNGs") from None
    except OSError as exc:
        raise LenetEdgeError(f"cannot write the report to {out_dir}: "
                             f"{exc.strerror or exc}; give --report a directory you can "
                             "write") from None
    return out_dir


@dataclass
class _Run:
    """What the device part of a validation has established so far (kept on any ending)."""

    outputs: np.ndarray
    counts: np.ndarray
    done: np.ndarray
    info: dict = field(default_factory=dict)
    hash_ok: bool = False
    elapsed: float = 0.0
    per_layer: dict | None = None
    link: dict = field(default_factory=dict)
    partial: str | None = None  # why the run stopped early (None: it completed)
    stack_measured: int | None = None  # the device's stack high-water mark after the run
    interrupted: bool = False  # Ctrl-C (exit 130) rather than a failure (exit 1)
    device: np.ndarray | None = None  # which device computed each digit (several devices)
    devices: list[dict] = field(default_factory=list)  # per-device figures


def validate(
    url: str | list[str] | tuple[str, ...],
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
    """``url``: one device's pyserial URL, or several (the digits are shared among them and
    merged into one report). Errors before the first digit is streamed (no device, wrong model) raise
    LenetEdgeError; from then on every ending (the link giving up, a device that changed,
    Ctrl-C at any stage) writes a report of what was checked, marked partial with the
    reason, and returns a non-zero exit code."""
    console = console or Console(stderr=True)
    if count <= 0:
        raise LenetEdgeError("--count must be at least 1")
    if per_layer < 0:
        raise LenetEdgeError("--per-layer must be 0 or more")
    out_dir = prepare_report_dir(out_dir)
    files = refs.resolve_models(model_dir)
    from lenet_edge.quantize.evaluate import input_spec, model_inputs
    from lenet_edge.train.datasets import load_test_set

    # The model's input shape picks MNIST's zip1989 split for a 16x16 model.
    data = load_test_set(data_dir, input_spec(files.tflite)[0])
    count = min(count, len(data.images))
    images, labels = data.images[:count], data.labels[:count].astype(np.int64)
    # The model's own preprocessing: its input shape, scale and zero point.
    inputs = model_inputs(files.tflite, images, data.name)
    run = _run_device(url, files, inputs, labels, console, force=force, per_layer=per_layer,
                      timeout=timeout, baudrate=baudrate, items=data.items)

    idx = np.flatnonzero(run.done)
    dev_out = run.outputs[idx]
    tflm = tflite = float_pred = ensemble_refs = None
    try:
        if files.ensemble is not None:
            from lenet_edge.host import ensemble_refs as ens

            console.print(f"computing the ensemble's references for {len(idx)} {data.items} "
                          "(float, TFLite, TFLM)...")
            ensemble_refs = ens.references(files, inputs[idx], images[idx])
            tflm, tflite = ensemble_refs.tflm, ensemble_refs.tflite
            float_pred = ensemble_refs.float_pred
        else:
            console.print(f"computing references for {len(idx)} {data.items} (float, TFLite, TFLM)...")
            tflm = refs.tflm_outputs(files.tflite, inputs[idx])
            tflite = refs.tflite_outputs(files.tflite, inputs[idx])
            float_pred = refs.float_predictions(files.keras, images[idx])
    except KeyboardInterrupt:
        run.interrupted = True
        run.partial = run.partial or "interrupted (Ctrl-C) while computing the references"
        console.print("[yellow]interrupted: writing a partial report[/]")
    report = _build_report(
        run.info, files, run.hash_ok, labels[idx], dev_out, run.counts[idx], tflm, tflite,
        float_pred, run.elapsed, run.partial, count, run.link, run.per_layer,
    )
    if files.ensemble is not None:
        from lenet_edge.host.ensemble_refs import ensemble_figures

        report["ensemble"] = ensemble_figures(files, dev_out, run.counts[idx], ensemble_refs,
                                              report["latency"]["unit"])
    report["devices"] = _device_figures(run, idx)
    from lenet_edge.host.memory import memory_figures

    report["memory"] = memory_figures(model_dir, report["info"], run.stack_measured)
    report["data"] = {"name": data.name, "items": data.items, "source": data.source,
                      "class_names": list(data.class_names) if data.class_names else None}
    failures = []
    if run.partial:
        failures.append(f"validation stopped early: {run.partial}")
    exact = report["agreement"]["device_tflm_exact_logits"]
    if exact is not None and exact < 1.0:
        what = "device scores differ from the TFLM ensemble's" if files.ensemble is not None \
            else "device logits differ from TFLM"
        failures.append(
            f"{what} on {report['mismatch']['count']} {data.items} "
            f"(first: number {report['mismatch']['first']})"
        )
    device_acc = report["accuracy"]["device"]
    if device_acc is not None and device_acc < min_accuracy:
        failures.append(f"device accuracy {device_acc:.4f} < --min-accuracy {min_accuracy}")
    if run.per_layer and run.per_layer["first_difference"] is not None:
        failures.append(f"per-layer: {first_difference_text(run.per_layer['first_difference'])}")
    report["checks"] = {"passed": not failures, "failures": failures, "min_accuracy": min_accuracy}
    dev_scores = files.class_scores(dev_out)
    if len(idx):
        from lenet_edge.host.rejection import rejection_summary

        report["rejection"] = rejection_summary(dev_scores, labels[idx])
        if files.ensemble is not None:
            report["rejection"]["confidence"] = "margin between the two highest int32 ensemble scores"
    try:
        write_report(out_dir, report, images[idx], labels[idx],
                     files.predict(dev_out) if len(idx) else np.zeros(0, int), float_pred,
                     device_logits=dev_scores if len(idx) else None)
    except OSError as exc:
        raise LenetEdgeError(f"writing the report to {out_dir} failed: "
                             f"{exc.strerror or exc}") from None
    exit_code = 130 if run.interrupted else (1 if failures else 0)
    return ValidationResult(report, out_dir, exit_code, failures)


def _run_device(urls, files, inputs, labels, console, *, force, per_layer, timeout,
                baudrate, items="digits") -> _Run:
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise LenetEdgeError("give at least one --port")
    n = len(inputs)
    run = None
    output_size = files.output_size()
    with contextlib.ExitStack() as stack:
        sessions = []
        hash_ok = True
        for url in urls:
            session = stack.enter_context(DeviceSession(url, timeout=timeout, baudrate=baudrate))
            info = session.info()
            ok = check_model_hash(info.model_hash, files, force)
            hash_ok = hash_ok and ok
            session.expect_model(info.model_hash)
            if info.int("output_size") != output_size:  # reachable with --force only
                raise LenetEdgeError(
                    f"the device answers {info.get('output_size')} bytes per input, the model "
                    f"being validated {output_size}"
                    + (" (an ensemble's firmware: ten int32 scores and the nets run)"
                       if files.ensemble is not None else "")
                    + (f" (device at {url})" if len(urls) > 1 else ""))
            if info.int("input_size") != inputs.shape[1]:
                raise LenetEdgeError(
                    f"the device's model takes {info.get('input_size')} inputs, the model being "
                    f"validated {inputs.shape[1]}" + (f" (device at {url})" if len(urls) > 1 else "")
                )
            console.print(
                f"device: {info.get('board')} ({info.get('cpu')}, firmware {info.get('firmware')}), "
                f"model {info.model_hash[:16]}... {'matches' if ok else 'DIFFERS (--force)'}"
                + (f" at {url}" if len(urls) > 1 else "")
            )
            for warning in clock_warnings(info.fields):
                console.print(f"[yellow]warning: {warning}[/yellow]")
            sessions.append(session)
        first = sessions[0].info()
        run = _Run(outputs=np.zeros((n, first.int("output_size")), dtype=np.int8),
                   counts=np.zeros(n, dtype=np.int64), done=np.zeros(n, dtype=bool),
                   info=first.as_dict(), hash_ok=hash_ok,
                   device=np.full(n, 0 if len(sessions) == 1 else -1, dtype=np.int16))
        run.devices = [{"url": s.url, "board": s.info().get("board"), "cpu": s.info().get("cpu"),
                        "model_hash": s.info().model_hash, "stream_seconds": 0.0} for s in sessions]
        try:
            if len(sessions) == 1:
                _stream(sessions[0], inputs, labels, console, run, items, files.predict)
            else:
                _stream_shared(sessions, inputs, labels, console, run, items, files.predict)
            if per_layer and not run.partial:
                try:
                    if files.ensemble is not None:
                        from lenet_edge.host.ensemble_per_layer import ensemble_per_layer

                        run.per_layer = ensemble_per_layer(sessions[0], files,
                                                           inputs[:per_layer], console)
                    else:
                        run.per_layer = _per_layer(sessions[0], files.tflite,
                                                   inputs[:per_layer], console)
                except LenetEdgeError as exc:
                    run.partial = f"the per-layer check stopped: {exc}"
            if not run.partial:  # the stack high-water mark after the run (painted stack)
                run.stack_measured = max(s.info(refresh=True).int("stack_used") for s in sessions)
        except KeyboardInterrupt:
            run.interrupted = True
            run.partial = run.partial or "interrupted (Ctrl-C)"
            console.print("[yellow]interrupted: writing a partial report[/]")
        finally:
            if len(sessions) == 1:
                run.devices[0]["stream_seconds"] = round(run.elapsed, 2)
            for figures, session in zip(run.devices, sessions):
                figures["link"] = session.link_stats
            run.link = _merged_link([d["link"] for d in run.devices])
    return run


def _merged_link(links: list[dict]) -> dict:
    """Several devices' link figures as one: counts summed."""
    merged: dict = {}
    for link in links:
        for key, value in link.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def _device_figures(run: _Run, idx: np.ndarray) -> list[dict]:
    """Per device: what it computed (digits, its share of the stream's time, latency)."""
    out = []
    for k, figures in enumerate(run.devices):
        mine = idx[run.device[idx] == k] if run.device is not None else idx
        seconds = figures.get("stream_seconds") or 0.0
        out.append({**figures, "count": int(mine.size),
                    "throughput_digits_per_s": round(mine.size / seconds, 2) if seconds > 0 else None,
                    "latency_median": int(np.median(run.counts[mine])) if mine.size else None})
    return out


def _stream_shared(sessions: list[DeviceSession], inputs: np.ndarray, labels: np.ndarray,
                   console: Console, run: _Run, items: str, predict) -> None:
    """Stream every input, shared among several devices: one thread per device, each
    taking the next digit whenever its link has room (a faster device takes more). The
    first device that fails stops the others; the run is then partial."""
    n = len(inputs)
    lock = threading.Lock()
    stop = threading.Event()
    next_digit = iter(range(n))
    errors: list[tuple[str, Exception]] = []

    def digits():
        while not stop.is_set():
            with lock:
                i = next(next_digit, None)
            if i is None:
                return
            yield i, inputs[i]

    def serve(k: int, session: DeviceSession) -> None:
        # A device codes the inputs it takes in chunks, ahead of its link: small chunks, so
        # that at the end no device sits on many digits the others could have taken.
        session.encode_chunk = 64
        start = time.monotonic()
        try:
            for i, result in session.infer_stream(digits()):
                run.outputs[i] = result.output
                run.counts[i] = result.count
                run.device[i] = k
                run.done[i] = True
        except Exception as exc:  # LenetEdgeError, or a bug: either ends the whole run
            errors.append((session.url, exc))
            stop.set()
        finally:
            run.devices[k]["stream_seconds"] = round(time.monotonic() - start, 2)

    columns = (
        TextColumn(f"[bold]{len(sessions)} devices[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accuracy {task.fields[acc]}"),
        TextColumn("{task.fields[rate]} " + items + "/s"),
        TimeRemainingColumn(),
    )
    threads = [threading.Thread(target=serve, args=(k, s), daemon=True, name=f"device-{k}")
               for k, s in enumerate(sessions)]
    start = time.monotonic()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("devices", total=n, acc="-", rate="-")
        try:
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.2)
                finished = int(run.done.sum())
                if finished:
                    done = np.flatnonzero(run.done)
                    correct = int((predict(run.outputs[done]) == labels[done]).sum())
                    rate = finished / max(time.monotonic() - start, 1e-9)
                    progress.update(task, completed=finished, acc=f"{100 * correct / finished:.2f} %",
                                    rate=f"{rate:.0f}")
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            raise
        finally:
            run.elapsed = time.monotonic() - start
    if errors:
        url, exc = errors[0]
        if not isinstance(exc, LenetEdgeError):
            raise exc
        run.partial = f"after {int(run.done.sum())} of {n} {items}: the device at {url}: {exc}"
        console.print(f"[red]the run stopped: {exc}[/]\nwriting a partial report")


def _stream(session: DeviceSession, inputs: np.ndarray, labels: np.ndarray, console: Console,
            run: _Run, items: str, predict) -> None:
    """Stream every input into ``run``; a link that gives up ends the run as partial.
    ``predict``: output rows -> classes (ModelFiles.predict), for the live accuracy."""
    n = len(inputs)
    correct = 0
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
                run.outputs[i] = result.output
                run.counts[i] = result.count
                run.done[i] = True
                correct += int(predict(result.output) == labels[i])
                run.elapsed = time.monotonic() - start
                if finished % 10 == 0 or finished == n:
                    rate = finished / max(time.monotonic() - start, 1e-9)
                    progress.update(task, completed=finished, acc=f"{100 * correct / finished:.2f} %", rate=f"{rate:.0f}")
        except LenetEdgeError as exc:
            run.partial = f"after {int(run.done.sum())} of {n} {items}: {exc}"
            console.print(f"[red]the run stopped: {exc}[/]\nwriting a partial report")
        finally:
            run.elapsed = time.monotonic() - start


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
            difference = refs.tensor_difference(want, t.data)
            if difference is not None:
                same = False
                if first_difference is None:
                    first_difference = {
                        "digit": digit, "layer": t.layer, "tensor_index": t.tensor_index,
                        "tensor_name": names.get(t.tensor_index, "?"),
                        "layer_name": short.get(t.tensor_index, "?"), **difference,
                    }
        identical += same
        console.print(f"per-layer input {digit}: {'all tensors identical to TFLM' if same else 'DIFFERS'}")
    for meta in layers_meta:
        values = layer_counts.get(meta["layer"], [0])
        meta["count_median"] = int(np.median(values))
    return {"digits": len(inputs), "identical_digits": identical, "first_difference": first_difference,
            "layers": layers_meta}


def first_difference_text(d: dict) -> str:
    """The per-layer check's first difference in words (an ensemble's may be a layer run
    where the TFLM ensemble exits early, or not run where it does not: element None)."""
    where = f"layer {d['layer']} ({d.get('layer_name') or d['tensor_name']})"
    if d.get("element") is None:
        what = "ran it, the TFLM ensemble exits early" if d["device"] == "ran" \
            else f"did not run it, the TFLM ensemble runs {d['tflm_nets_run']} nets"
        return f"first difference at input {d['digit']}, {where}: the device {what}"
    return f"first difference at {where} element {d['element']}" \
        + (f" of input {d['digit']}" if "net" in d else "")


def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": int(values.min()), "median": int(np.median(values)), "max": int(values.max())}


def _build_report(info, files, hash_ok, labels, dev_out, counts, tflm, tflite, float_pred,
                  elapsed, partial, requested, link, per_layer) -> dict:
    """``tflm``/``tflite``/``float_pred`` are None when they were not computed (Ctrl-C);
    classes are read from outputs by ``files.predict`` (an ensemble's: from its scores)."""
    n = len(labels)
    dev_pred = files.predict(dev_out) if n else np.zeros(0, int)

    def acc(pred):
        return float((pred == labels).mean()) if pred is not None and n else None

    checked = tflm is not None and n > 0
    exact = np.all(dev_out == tflm, axis=1) if checked else np.zeros(0, bool)
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
        "partial": partial is not None,
        "partial_reason": partial,
        "accuracy": {
            "device": acc(dev_pred),
            "float": acc(float_pred),
            "tflite": acc(files.predict(tflite) if tflite is not None and n else None),
            "tflm": acc(files.predict(tflm) if checked else None),
        },
        "agreement": {
            "device_tflm_exact_logits": float(exact.mean()) if checked else None,
            "device_float_argmax": float((dev_pred == float_pred).mean()) if float_pred is not None and n else None,
            "device_tflite_argmax": float((dev_pred == files.predict(tflite)).mean()) if tflite is not None and n else None,
        },
        "mismatch": {"count": int(bad.size), "first": int(bad[0]) if bad.size else None,
                     "digits": [int(i) for i in bad[:20]]},
        "latency": latency,
        "throughput_digits_per_s": round(n / elapsed, 2) if elapsed > 0 else None,
        "stream_seconds": round(elapsed, 2),
        "info": info,
        "model": {"tflite": str(files.tflite), "sha256": files.sha256,
                  "keras": str(files.keras) if files.keras else None, "hash_matches_device": hash_ok,
                  "float_unavailable": files.why_no_float(),
                  "ensemble": str(files.ensemble.folder) if files.ensemble is not None else None},
        "link": link,
        "per_layer": per_layer,
    }
