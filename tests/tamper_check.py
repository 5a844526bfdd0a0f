"""Judge tampered models: refused with one clear error, or exported into C bit-exact with TFLM.

Outcomes of one mutant:
  refused    export raised one LenetEdgeError (a single line)
  exact      export wrote C that gives TFLM's bytes on every input (MNIST + random)
  wrong      export wrote C whose outputs differ from TFLM's, or TFLM could not run a
             model export accepted (a silent wrong result either way)
  traceback  export raised something other than LenetEdgeError, or a multi-line error
  crash      the process judging it died (a signal) or hung

Mutants are judged in a worker process (`python -m tests.tamper_check --worker`) so a crash
is counted, not fatal; `judge_all` restarts the worker after one.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

OUTCOMES = ("refused", "exact", "wrong", "traceback", "crash")
ROOT = Path(__file__).resolve().parents[1]


def judge(data: bytes, inputs: np.ndarray) -> tuple[str, str]:
    """(outcome, detail) of exporting ``data`` (in this process)."""
    from lenet_edge.codegen.export import export
    from lenet_edge.codegen.host_build import HostModel
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.quantize.tflm import TflmModel

    with tempfile.TemporaryDirectory(prefix="tamper-") as tmp:
        try:
            result = export(data, tmp, target="host", measure_tflm=True, measure_code=False,
                            cpus=("cortex-m4",), model_label="tampered.tflite")
        except LenetEdgeError as exc:
            message = str(exc)
            if not message or "\n" in message.strip():
                return "traceback", f"multi-line error: {message[:300]!r}"
            return "refused", message
        except Exception as exc:  # noqa: BLE001 - what we are looking for
            return "traceback", f"{type(exc).__name__}: {exc}"[:300]
        try:
            want = TflmModel(data).run_batch(inputs)
        except LenetEdgeError as exc:
            return "wrong", f"exported, but TFLM cannot run it: {exc}"[:300]
        c = HostModel(result.host_library)
        if c.input_size != inputs.shape[1] or c.output_size != want.shape[1]:
            return "wrong", (f"C takes {c.input_size} -> {c.output_size} values, TFLM "
                             f"{inputs.shape[1]} -> {want.shape[1]}")
        got = c.invoke_batch(inputs)
        same = np.all(got == want, axis=1)
        if not same.all():
            return "wrong", f"{int((~same).sum())} of {len(inputs)} outputs differ from TFLM"
        return "exact", f"{len(inputs)} outputs identical to TFLM"


def judge_inputs(mnist: int, random: int) -> np.ndarray:
    """The first ``mnist`` MNIST test digits (as int8) and ``random`` stress inputs."""
    from lenet_edge.quantize.evaluate import pixels_to_int8
    from lenet_edge.train.mnist import load_mnist

    from tests.codegen_fixtures import stress_inputs

    images, _ = load_mnist("test")
    digits = pixels_to_int8(images[:mnist]).reshape(mnist, -1)
    return np.concatenate([digits, stress_inputs(random, seed=13)])


def _worker(directory: Path, first: int, mnist: int, random: int) -> None:
    from lenet_edge.quiet import silenced_native_output

    inputs = judge_inputs(mnist, random)
    for name in sorted(p.name for p in directory.glob("*.tflite"))[first:]:
        data = (directory / name).read_bytes()
        with silenced_native_output(2):
            outcome, detail = judge(data, inputs)
        print(json.dumps({"file": name, "outcome": outcome, "detail": detail}), flush=True)


def judge_all(mutants, *, mnist: int = 200, random: int = 64, timeout: float = 120.0,
              progress=None) -> list[dict]:
    """Judge every ``Mutation`` in worker processes; one dict per mutant, in order."""
    mutants = list(mutants)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tamper-set-") as tmp:
        directory = Path(tmp)
        for i, m in enumerate(mutants):
            (directory / f"{i:05d}.tflite").write_bytes(m.data)
        while len(results) < len(mutants):
            cmd = [sys.executable, "-m", "tests.tamper_check", "--worker", str(directory),
                   "--first", str(len(results)), "--mnist", str(mnist), "--random", str(random)]
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                    env=dict(os.environ, PYTHONPATH=str(ROOT)))
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put("")],
                             daemon=True).start()
            hung = False
            while True:
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:  # no verdict for `timeout` s: the mutant hangs something
                    hung = True
                    proc.kill()
                    break
                if not line:
                    break
                record = json.loads(line)
                m = mutants[len(results)]
                results.append({"name": m.name, "outcome": record["outcome"],
                                "detail": record["detail"]})
                if progress:
                    progress(results[-1])
            rc = proc.wait()
            if len(results) < len(mutants):  # the worker died (or hung) on the next mutant
                m = mutants[len(results)]
                results.append({"name": m.name, "outcome": "crash",
                                "detail": f"hung for {timeout:.0f} s" if hung else
                                f"judging process ended with code {rc}"})
                if progress:
                    progress(results[-1])
    return results


def tally(results: list[dict]) -> dict[str, int]:
    return {k: sum(r["outcome"] == k for r in results) for k in OUTCOMES}


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--worker", type=Path, required=True)
    p.add_argument("--mnist", type=int, default=200)
    p.add_argument("--random", type=int, default=64)
    p.add_argument("--first", type=int, default=0)
    a = p.parse_args()
    _worker(a.worker, a.first, a.mnist, a.random)
