"""Build the generated C for this machine: a shared library loaded with ctypes (eval, tests)
and a sanitizer executable (ASan + UBSan) that runs a whole input set."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError

HOST_DIR = Path(__file__).resolve().parent / "host"
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _compiler() -> str:
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise LenetEdgeError(f"C compiler '{cc}' not found; install gcc (apt-get install gcc) "
                             "or set CC")
    return cc


def _sources(c_dir: Path) -> list[str]:
    sources = sorted(str(p) for p in Path(c_dir).glob("*.c"))
    if not sources:
        raise LenetEdgeError(f"no C sources in {c_dir}; run `lenet-edge export` first")
    return sources


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LenetEdgeError(f"{what} failed:\n{' '.join(cmd)}\n{proc.stderr.strip()}")


# The harness is written against the default name's API; for a library exported with
# another --name, this header maps those names onto it.
_HARNESS_API = ("invoke", "invoke_traced", "INPUT_SIZE", "OUTPUT_SIZE", "NUM_TRACED_TENSORS",
                "TRACED_TENSOR_INDICES", "TRACED_TENSOR_SIZES")


def _harness_shim(prefix: str, directory: Path) -> Path:
    lines = [f'#include "{prefix}_model.h"']
    for api in _HARNESS_API:
        old, new = ("LENET5_", prefix.upper() + "_") if api.isupper() else ("lenet5_", prefix + "_")
        lines.append(f"#define {old}{api} {new}{api}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lenet5_model.h").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def build_shared_library(c_dir: str | Path, out: str | Path | None = None, prefix: str = "lenet5") -> Path:
    """gcc -shared of the library plus the host batch harness -> .so path."""
    c_dir = Path(c_dir)
    out = Path(out) if out else c_dir.parent / "host" / f"lib{prefix}.so"
    out.parent.mkdir(parents=True, exist_ok=True)
    shim = [f"-I{_harness_shim(prefix, out.parent / 'harness-api')}"] if prefix != "lenet5" else []
    cmd = [_compiler(), *WARNINGS, "-O2", "-fPIC", "-shared", *shim, f"-I{c_dir}",
           *_sources(c_dir), str(HOST_DIR / "harness.c"), "-o", str(out)]
    _run(cmd, "host build")
    return out


def build_sanitizer_harness(c_dir: str | Path, out: str | Path) -> Path:
    c_dir, out = Path(c_dir), Path(out)
    cmd = [_compiler(), *WARNINGS, "-O2", "-g", "-fno-omit-frame-pointer",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{c_dir}",
           *_sources(c_dir), str(HOST_DIR / "sanitize_main.c"), "-o", str(out)]
    _run(cmd, "sanitizer build")
    return out


def run_sanitizer_harness(exe: str | Path, inputs: np.ndarray, work: str | Path,
                          output_size: int) -> np.ndarray:
    work = Path(work)
    inputs_path, outputs_path = work / "inputs.bin", work / "outputs.bin"
    np.ascontiguousarray(inputs, dtype=np.int8).tofile(inputs_path)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(exe), str(inputs_path), str(outputs_path)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0 or "runtime error" in proc.stderr:
        raise LenetEdgeError(f"sanitizer run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return np.fromfile(outputs_path, dtype=np.int8).reshape(len(inputs), output_size)


class HostModel:
    """The generated C, loaded in-process."""

    def __init__(self, library: str | Path, prefix: str = "lenet5"):
        self._lib = ctypes.CDLL(str(library))
        self._quantize = getattr(self._lib, f"{prefix}_quantize_pixels")
        self._argmax = getattr(self._lib, f"{prefix}_argmax")
        i8p = ctypes.POINTER(ctypes.c_int8)
        self._lib.lenet5_host_invoke_batch.argtypes = [i8p, i8p, ctypes.c_int32]
        self._lib.lenet5_host_trace_batch.argtypes = [i8p, i8p, i8p, ctypes.c_int32,
                                                      ctypes.c_int32]
        self._quantize.argtypes = [ctypes.POINTER(ctypes.c_uint8), i8p]
        self._argmax.argtypes = [i8p]
        indices = (ctypes.c_int32 * 4096)()
        sizes = (ctypes.c_int32 * 4096)()
        n = self._lib.lenet5_host_trace_layout(indices, sizes)
        self.trace_layout = [(indices[i], sizes[i]) for i in range(n)]
        self.input_size = int(ctypes.c_int32.in_dll(self._lib, "lenet5_host_input_size").value)
        self.output_size = int(ctypes.c_int32.in_dll(self._lib, "lenet5_host_output_size").value)

    @staticmethod
    def _ptr(a: np.ndarray, ctype=ctypes.c_int8):
        return a.ctypes.data_as(ctypes.POINTER(ctype))

    def invoke_batch(self, inputs: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(inputs, dtype=np.int8).reshape(-1, self.input_size)
        out = np.zeros((len(x), self.output_size), dtype=np.int8)
        rc = self._lib.lenet5_host_invoke_batch(self._ptr(x), self._ptr(out), len(x))
        if rc != 0:
            raise LenetEdgeError(f"lenet5_invoke returned {rc}")
        return out

    def trace_batch(self, inputs: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Outputs and, per traced tensor index, its (n, size) values."""
        x = np.ascontiguousarray(inputs, dtype=np.int8).reshape(-1, self.input_size)
        out = np.zeros((len(x), self.output_size), dtype=np.int8)
        stride = sum(size for _, size in self.trace_layout)
        traces = np.zeros((len(x), stride), dtype=np.int8)
        rc = self._lib.lenet5_host_trace_batch(self._ptr(x), self._ptr(out), self._ptr(traces),
                                               stride, len(x))
        if rc != 0:
            raise LenetEdgeError(f"lenet5_invoke_traced returned {rc}")
        result, pos = {}, 0
        for index, size in self.trace_layout:
            result[index] = traces[:, pos:pos + size]
            pos += size
        return out, result

    def quantize_pixels(self, pixels: np.ndarray) -> np.ndarray:
        p = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(self.input_size)
        out = np.zeros(self.input_size, dtype=np.int8)
        self._quantize(self._ptr(p, ctypes.c_uint8), self._ptr(out))
        return out

    def argmax(self, output: np.ndarray) -> int:
        o = np.ascontiguousarray(output, dtype=np.int8)
        return int(self._argmax(self._ptr(o)))
