"""`lenet-edge validate` with several devices: the digits shared among them, every device's
model hash checked, one merged report with per-device figures. The devices are host builds
of the firmware over TCP (tests/host_board)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from lenet_edge.cli import main
from lenet_edge.errors import LenetEdgeError
from lenet_edge.host.validate import validate
from tests.host_fixtures import (  # noqa: F401
    GoesDeaf,
    compile_host_device,
    host_device_binary,
    lenet_model_files,
    mnist_test,
    modern_export,
    run_host_device,
)


def test_two_devices_share_the_digits_and_merge_one_report(host_device_binary, modern_export, tmp_path):
    with run_host_device(host_device_binary) as (url1, _), run_host_device(host_device_binary) as (url2, _):
        code = main(["validate", "--port", url1, "--port", url2, "--export", str(modern_export),
                     "--count", "300", "--report", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["count"] == 300 and not report["partial"]
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    devices = report["devices"]
    assert [d["url"] for d in devices] == [url1, url2]
    assert sum(d["count"] for d in devices) == 300 and all(d["count"] > 0 for d in devices)
    assert all(d["model_hash"] == report["model"]["sha256"] for d in devices)
    # The link figures are the devices' summed.
    assert report["link"]["received_frames"] == sum(d["link"]["received_frames"] for d in devices)
    assert "## Devices" in (tmp_path / "report.md").read_text()


def test_every_devices_model_hash_is_checked(host_device_binary, modern_export, tmp_path):
    # The second device claims another model (its header's hash replaced).
    other = tmp_path / "c"
    shutil.copytree(modern_export / "c", other)
    header = other / "lenet5_model.h"
    text = header.read_text()
    real = re.search(r'MODEL_HASH "([0-9a-f]{64})"', text).group(1)
    header.write_text(text.replace(real, "0011223344556677" * 4))
    impostor = compile_host_device(other, tmp_path / "impostor")
    with run_host_device(host_device_binary) as (url1, _), run_host_device(impostor) as (url2, _):
        with pytest.raises(LenetEdgeError, match="runs model 0011223344556677"):
            validate([url1, url2], model_dir=modern_export, count=20, out_dir=tmp_path / "r")


def test_a_device_that_stops_ends_the_run_with_a_partial_report(host_device_binary, modern_export, tmp_path):
    with run_host_device(host_device_binary) as (url1, _), run_host_device(host_device_binary) as (url2, _):
        with GoesDeaf(int(url2.rsplit(":", 1)[1]), up_bytes=4000) as deaf:
            result = validate([url1, deaf.url], model_dir=modern_export, count=2000,
                              out_dir=tmp_path, timeout=0.2)
    report = result.report
    assert result.exit_code == 1 and report["partial"]
    assert deaf.url in report["partial_reason"] and "stopped answering" in report["partial_reason"]
    assert 0 < report["count"] < 2000 and report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["devices"][1]["count"] < report["devices"][0]["count"]


def test_jobs_needs_an_emulated_board(capsys):
    assert main(["validate", "--port", "socket://127.0.0.1:9", "--jobs", "2"]) != 0
    assert "error: --jobs starts emulators" in capsys.readouterr().err
