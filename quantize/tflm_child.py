"""tflite-micro on an untrusted model, in a child process: its crash is our clear error.

TFLM trusts the flatbuffer it is given (indices, sizes, offsets are not verified), so a
damaged model can make it read out of bounds and kill the process with SIGSEGV. `run`
starts `python -m lenet_edge.quantize.tflm_child`, hands it the model and one task, and
turns a signal, a timeout or TFLM's own refusal into one LenetEdgeError.

Tasks (see `_TASKS`): "probe" loads the model, invokes it once on zeros and reads every op
output (what TflmModel will do in-process afterwards); "arena" measures the smallest
arena (quantize.tflm.tflm_arena_bytes' bisection).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

from lenet_edge.errors import LenetEdgeError

TIMEOUT_S = 300.0


class ChildCrashed(LenetEdgeError):
    """The child died on a signal; ``stderr`` holds what it wrote before."""

    def __init__(self, message: str, stderr: str):
        super().__init__(message)
        self.stderr = stderr


def run(task: str, model: bytes, what: str, **kwargs):
    """The task's result, computed in a child process; LenetEdgeError if it fails."""
    request = pickle.dumps({"task": task, "model": bytes(model), "kwargs": kwargs})
    try:
        proc = subprocess.run([sys.executable, "-m", "lenet_edge.quantize.tflm_child"],
                              input=request, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LenetEdgeError(f"tflite-micro did not finish {what} this model within "
                             f"{TIMEOUT_S:.0f} s (a damaged model?)") from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise ChildCrashed(f"tflite-micro crashed ({name}) {what} this model: the model is "
                           "damaged or malformed in a way TFLM does not check",
                           proc.stderr.decode(errors="replace"))
    try:
        reply = pickle.loads(proc.stdout)
    except Exception:  # noqa: BLE001 - anything but our reply means the child failed
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise LenetEdgeError(f"tflite-micro failed {what} this model (exit "
                             f"{proc.returncode}: {tail[0]})") from None
    if "error" in reply:
        raise LenetEdgeError(reply["error"])
    return reply["result"]


def _probe(model: bytes, preserve_all_tensors: bool, arena_size: int) -> bool:
    import numpy as np

    from lenet_edge.quantize.tflm import TflmModel

    m = TflmModel(model, preserve_all_tensors=preserve_all_tensors, arena_size=arena_size,
                  isolate=False)
    m.invoke(np.zeros(m.input_shape, dtype=m.input_details["dtype"]))
    if preserve_all_tensors:
        m.op_output_tensors()
    return True


def _arena(model: bytes, granularity: int, low: int = 0) -> int:
    from lenet_edge.quantize.tflm import measure_arena_bytes

    return measure_arena_bytes(model, granularity, low, announce=True)


_TASKS = {"probe": _probe, "arena": _arena}


def _main() -> None:
    # TFLM prints to fd 1; keep the reply channel apart from it.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    request = pickle.loads(sys.stdin.buffer.read())
    try:
        reply = {"result": _TASKS[request["task"]](request["model"], **request["kwargs"])}
    except LenetEdgeError as exc:
        reply = {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one error
        reply = {"error": f"tflite-micro cannot run this model: {type(exc).__name__}: {exc}"}
    with os.fdopen(reply_fd, "wb") as out:
        out.write(pickle.dumps(reply))


if __name__ == "__main__":
    _main()
