"""`lenet-edge demo`: the README's main job, end to end on the default emulated board."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.arm]


def test_demo_runs_the_main_job_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "lenet_edge", "demo", "--count", "200", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PASSED" in result.stderr
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["count"] == 200
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"]
    # The bundled model is trained: it must actually recognise digits, on the device too.
    assert report["accuracy"]["device"] > 0.9
    assert report["accuracy"]["float"] is not None
    assert report["per_layer"]["first_difference"] is None
    assert (out / "export" / "c" / "lenet5_model.h").is_file()
    assert (out / "report" / "confusion_matrix.png").is_file()
