"""Build and run the libFuzzer harnesses (tests/fuzz/*.c) with ASan + UBSan.

    fuzz_protocol  the device protocol (the validation agent, firmware_templates/agent/) with the
                   real generated model: framing, resync, input decoding, every request
    fuzz_model     the generated C library on arbitrary int8 inputs

`build(name, c_dir, out)` compiles one against an export's C library; `run(exe, corpus,
seconds)` fuzzes a copy of the committed corpus (tests/fuzz/corpus/<name>/, which
libFuzzer would otherwise grow in place) and returns the number of runs. The tests run
each for a few seconds (test_fuzz.py); `scripts/fuzz.sh` runs them for as long as asked.
Needs clang and its libFuzzer runtime (scripts/setup.sh installs them).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "tests" / "fuzz"
CORPUS = FUZZ_DIR / "corpus"
AGENT = ROOT / "firmware_templates" / "agent"
HARNESSES = ("fuzz_protocol", "fuzz_model")
# -Wno-unused-function: clang (unlike gcc) warns about the generated C's unused static
# inline fixed-point helpers.
FLAGS = ["-std=c99", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
         "-fno-omit-frame-pointer",
         "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]
ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def have_libfuzzer() -> bool:
    """clang can link a -fsanitize=fuzzer program here."""
    if shutil.which("clang") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text("#include <stdint.h>\n#include <stddef.h>\n"
                       "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                       "{(void)d;(void)n;return 0;}\n")
        proc = subprocess.run(["clang", "-fsanitize=fuzzer", str(src), "-o", str(Path(tmp) / "t")],
                              capture_output=True)
        return proc.returncode == 0


def build(name: str, c_dir: str | Path, out: str | Path) -> Path:
    """Compile harness ``name`` against the generated library in ``c_dir``."""
    c_dir, out = Path(c_dir), Path(out)
    sources = [FUZZ_DIR / f"{name}.c", *sorted(c_dir.glob("*.c"))]
    includes = [f"-I{c_dir}"]
    if name == "fuzz_protocol":  # the agent library with the generated model
        sources.append(AGENT / "lenet_agent.c")
        includes.append(f"-I{AGENT}")
    cmd = ["clang", *FLAGS, *includes, *map(str, sources), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building {name} failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return out


def run(exe: str | Path, corpus: str | Path, seconds: float, work: str | Path) -> int:
    """Fuzz for ``seconds`` from a copy of ``corpus``; returns libFuzzer's run count.
    Raises AssertionError with libFuzzer's report on a finding (crash, leak, UB)."""
    work = Path(work)
    grown = work / "corpus"
    if grown.exists():
        shutil.rmtree(grown)
    shutil.copytree(corpus, grown)
    # libFuzzer's RSS limit reads getrusage's peak RSS, which Linux carries over fork+exec:
    # the harness starts with this (pytest worker) process's peak, so a worker grown past
    # 2 GB made every harness "out-of-memory" at once. Limit the harness's own growth to
    # libFuzzer's default 2,048 MB on top of what it inherits; single mallocs stay capped.
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    cmd = [str(exe), f"-max_total_time={max(1, int(seconds))}", "-print_final_stats=1",
           f"-artifact_prefix={work}/", "-max_len=4096",
           f"-rss_limit_mb={inherited_mb + 2048}", "-malloc_limit_mb=2048", str(grown)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work,
                          env=dict(os.environ, **ENV), timeout=seconds * 4 + 120)
    log = proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"{Path(exe).name} found a problem (exit {proc.returncode}):\n"
                             f"{log[-6000:]}")
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    return int(runs[-1]) if runs else 0


def export_for_fuzzing(out: str | Path) -> Path:
    """The bundled modern model exported to C in ``out``; returns the C folder."""
    from lenet_edge.bundled import bundled_model
    from lenet_edge.codegen.export import export

    result = export(bundled_model("modern").read_bytes(), out, measure_tflm=False,
                    measure_code=False)
    return result.c_dir


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Run the libFuzzer harnesses for a while.")
    p.add_argument("--seconds", type=float, default=600, help="per harness")
    p.add_argument("--harness", choices=HARNESSES, action="append")
    p.add_argument("--work", type=Path, default=Path("fuzz_out"))
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    c_dir = export_for_fuzzing(a.work / "export")
    for name in a.harness or HARNESSES:
        exe = build(name, c_dir, a.work / name)
        work = a.work / f"{name}.run"
        work.mkdir(exist_ok=True)
        n = run(exe, CORPUS / name, a.seconds, work)
        print(f"{name}: {n} runs in {a.seconds:.0f} s, no finding (ASan + UBSan)")
