"""The light install: the .tflite pipeline without TensorFlow, and the wheel as a user gets it.

`pip install lenet-edge` brings no TensorFlow; export, build, flash and validate of a
.tflite must work with what it does bring, and the commands that need TensorFlow must say
which extra to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "lenet_edge" / "assets" / "modern"

# Run the CLI with TensorFlow and Keras made unimportable (an import of either raises).
NO_TENSORFLOW = (
    "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
    "from lenet_edge.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert sys.modules['tensorflow'] is None and sys.modules['keras'] is None\n"
    "sys.exit(code)\n"
)


def run_without_tensorflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, what", [
    (["train", "--limit", "10"], "`lenet-edge train`"),
    (["quantize", "--model", str(BUNDLED / "lenet5.keras")], "`lenet-edge quantize`"),
    (["export", "--model", str(BUNDLED / "lenet5.keras")], "reading the Keras model"),
    (["eval", "--backend", "float", "--limit", "5"], "the float (Keras) model"),
])
def test_commands_that_need_tensorflow_name_the_extra(args, what, tmp_path):
    result = run_without_tensorflow(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert what in lines[0] and "pip install 'lenet-edge[train]'" in lines[0]


def test_export_and_eval_of_a_tflite_never_import_tensorflow(tmp_path):
    out = tmp_path / "out"
    result = run_without_tensorflow("export", "--model", str(BUNDLED / "lenet5_int8.tflite"),
                                    "--out", str(out), "--no-tflm-arena", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "c" / "lenet5_model.c").is_file()
    # eval's default backends: float is skipped (with a note), the others run.
    result = run_without_tensorflow("eval", "--model", str(out / "model" / "lenet5_int8.tflite"),
                                    "--limit", "20", "--json", str(tmp_path / "eval.json"),
                                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "float backend skipped: TensorFlow not installed" in result.stdout
    backends = json.loads((tmp_path / "eval.json").read_text())["backends"]
    assert set(backends) == {"tflite", "tflm", "c"}
    assert backends["c"]["bytes_equal_tflm"] == 20


def _pip(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(python), "-m", "pip", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.arm
def test_wheel_in_a_fresh_venv_exports_builds_and_validates_without_tensorflow(tmp_path):
    """Build the wheel, install it (no extras) into a new venv, run the .tflite pipeline
    from outside the repository: export, build, a short QEMU validation."""
    # A copy of the source, so setuptools' build/ folder lands outside the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "__pycache__", "*.egg-info", ".pytest_cache", "out", "runs",
        "lenet-edge-demo", "bench_out"))
    wheels = tmp_path / "wheels"
    # -v: pip shows setuptools' own output, where warning walls would be.
    built = _pip(Path(sys.executable), "wheel", "-v", "--no-deps", str(source), "-w",
                 str(wheels), cwd=tmp_path)
    log = built.stdout + built.stderr
    assert "Installing build dependencies" in log  # the backend's output is there
    assert "would be ignored" not in log and "packages` configuration" not in log
    assert "Warning" not in log, [line for line in log.splitlines() if "Warning" in line]
    (wheel,) = wheels.glob("lenet_edge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("/licenses/LICENSE") for n in names)
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
    for needed in ("lenet_edge/codegen/ops/conv2d.c.j2", "lenet_edge/codegen/ops/conv2d_mve.c.j2",
                   "lenet_edge/codegen/ops/mean.c.j2", "lenet_edge/codegen/templates/fixedpoint.h",
                   "lenet_edge/codegen/templates/kernels/_variants.j2",
                   "lenet_edge/firmware_templates/common/main.c",
                   "lenet_edge/assets/modern/lenet5_int8.tflite"):
        assert needed in names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _pip(python, "install", "-q", str(wheel), cwd=tmp_path)
    probe = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True)
    assert probe.returncode != 0, "the light install must not bring TensorFlow"

    cli = env_dir / "bin" / "lenet-edge"
    work = tmp_path / "user"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(cli), *args], cwd=work, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        return result

    # One default folder (./export) for every command: no folder flag anywhere.
    run("export", "--target", "cortex-m", "--no-tflm-arena")
    run("build", "--board", "qemu-mps2-an386")
    assert (work / "export" / "firmware" / "build" / "lenet5-qemu-mps2-an386.elf").is_file()
    result = run("validate", "--board", "qemu-mps2-an386", "--count", "20", "--report", "val")
    assert "PASSED" in result.stderr
    report = json.loads((work / "val" / "report.json").read_text())
    assert report["count"] == 20
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["accuracy"]["float"] is None
    assert "TensorFlow not installed" in report["model"]["float_unavailable"]
    train = subprocess.run([str(cli), "train"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=120)
    assert train.returncode == 2
    assert "pip install 'lenet-edge[train]'" in train.stderr
