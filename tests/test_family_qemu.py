"""Each LeNet family member beyond LeNet-5 (lenet1, lenet4) validated on an emulated
Cortex-M: the firmware's logits byte-identical to TFLM on real MNIST digits."""

from __future__ import annotations

import json

import pytest

from lenet_edge.cli import main
from tests.host_fixtures import QEMU_BOARD, lenet_model_files, mnist_test  # noqa: F401

pytestmark = [pytest.mark.qemu, pytest.mark.arm]


@pytest.mark.parametrize("variant", ["lenet1", "lenet4"])
def test_validate_on_qemu_is_bit_exact_with_tflm(variant, lenet_model_files, tmp_path):
    from lenet_edge.codegen.export import export

    model_dir = tmp_path / "export"
    export(lenet_model_files[variant].read_bytes(), model_dir, measure_tflm=False,
           measure_code=False)
    out = tmp_path / "report"
    assert main(["validate", "--board", QEMU_BOARD, "--model-dir", str(model_dir),
                 "--count", "200", "--report", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["count"] == 200 and report["partial"] is False
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"]
    assert report["info"]["board"] == QEMU_BOARD
