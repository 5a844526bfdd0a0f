"""Validation end to end against the real firmware in QEMU over its TCP serial port:
the report, a faulty link with a device reset mid-run, and every kind of bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from lenet_edge.cli import main
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.qemu import start_qemu
from lenet_edge.host.faultproxy import FaultProxy, FaultRates
from lenet_edge.host.validate import validate
from tests.host_fixtures import (  # noqa: F401
    QEMU_BOARD,
    lenet_model_files,
    mnist_test,
    modern_export,
    qemu_elf,
    tcp_server,
)

pytestmark = [pytest.mark.qemu, pytest.mark.arm]

REPORT_KEYS = {
    "count", "accuracy", "agreement", "latency", "throughput_digits_per_s", "info",
}


def test_validate_on_qemu_is_bit_exact_with_tflm(modern_export, tmp_path, capsys):
    """Two emulators (`--jobs 2`) share the 300 digits; one merged report."""
    out = tmp_path / "report"
    code = main(["validate", "--board", QEMU_BOARD, "--export", str(modern_export), "--count", "300",
                 "--report", str(out), "--per-layer", "1", "--jobs", "2"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert set(report["accuracy"]) == {"device", "float", "tflite", "tflm"}
    assert set(report["agreement"]) == {"device_tflm_exact_logits", "device_float_argmax", "device_tflite_argmax"}
    assert {"unit", "min", "median", "max"} <= set(report["latency"])
    assert report["count"] == 300 and report["partial"] is False
    # A clean link looks clean: the boot banner is expected text, not garbage or a fault;
    # nothing is resent, however long QEMU on a loaded host stalls (a timeout only probes).
    assert report["link"]["garbage_bytes"] == 0 and report["link"]["crc_errors"] == 0
    assert report["link"]["retransmissions"] == 0 and report["link"]["stale_answers"] == 0
    assert [d["board"] for d in report["devices"]] == [QEMU_BOARD] * 2
    assert sum(d["count"] for d in report["devices"]) == 300 and min(d["count"] for d in report["devices"]) > 0
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"]
    assert report["latency"]["unit"] == "guest_instructions"
    assert 0 < report["latency"]["min"] <= report["latency"]["median"] <= report["latency"]["max"]
    assert report["info"]["board"] == QEMU_BOARD
    assert report["per_layer"]["first_difference"] is None
    assert report["per_layer"]["identical_digits"] == 1
    for name in ("report.md", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0
    # disagreements.png exists exactly when there is something to show.
    shown = report["disagreements"]["shown"]
    assert (out / "disagreements.png").is_file() == (shown > 0)
    d = report["disagreements"]
    assert max(d["device_vs_label"], d["device_vs_float"]) <= shown <= d["device_vs_label"] + d["device_vs_float"]
    assert d["device_vs_label"] == round(300 * (1 - report["accuracy"]["device"]))
    md = (out / "report.md").read_text()
    assert "PASSED" in md
    # True units and memory: QEMU counts guest instructions, never shown as time.
    assert "guest instructions" in md and " us " not in md and "median_us" not in report["latency"]
    assert "| flash |" in md and "| stack, measured |" in md
    assert report["memory"]["flash_bytes"] > report["memory"]["sections"]["weights"] > 0
    assert 0 < report["memory"]["stack_measured_bytes"] <= report["memory"]["stack_worst_case_bytes"]
    assert "c1+s2 CONV_2D+MAX_POOL_2D" in md  # short names of the fused steps


@pytest.mark.parametrize("rate", [2e-4, 6e-4])
def test_faulty_link_and_reset_mid_run_give_the_clean_result(qemu_elf, modern_export, tmp_path, rate):
    n = 200
    with start_qemu(QEMU_BOARD, qemu_elf) as qemu:
        port = int(qemu.url.rsplit(":", 1)[1])
        rates = FaultRates(drop=rate, flip=rate, insert=rate, delay=rate / 5, delay_s=0.05)
        # Reset once, about a third of the way through the digits (~210 bytes each).
        with FaultProxy(port, rates, seed=7, reset_after_bytes=70 * 210, reset=qemu.reset) as proxy:
            started = time.monotonic()
            result = validate(proxy.url, model_dir=modern_export, count=n, out_dir=tmp_path, timeout=0.5)
            elapsed = time.monotonic() - started
            faults = proxy.counts
    report = result.report
    assert faults.resets == 1 and faults.dropped and faults.flipped and faults.inserted
    assert report["link"]["resets_seen"] >= 1
    assert report["link"]["retransmissions"] > 0
    # The same figures a clean run gives: every digit, byte-identical to TFLM.
    assert report["count"] == n and not report["partial"]
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"]
    assert result.exit_code == 0
    assert elapsed < 120


def test_harder_link_and_a_reset_give_the_clean_result(qemu_elf, modern_export, tmp_path):
    """5e-3 faults per byte (drops, flips, inserts 1.5e-3 each, 50 ms stalls 5e-4) both
    ways and one device reset: the same report as on a clean link (the time it takes is
    measured by benchmarks/faulty_link.py)."""
    n = 150
    reports = {}
    for rate in (0.0, 5e-3):
        with start_qemu(QEMU_BOARD, qemu_elf) as qemu:
            port = int(qemu.url.rsplit(":", 1)[1])
            rates = FaultRates(drop=0.3 * rate, flip=0.3 * rate, insert=0.3 * rate,
                               delay=0.1 * rate, delay_s=0.05)
            with FaultProxy(port, rates, seed=5, reset_after_bytes=50 * 210 if rate else None,
                            reset=qemu.reset) as proxy:
                result = validate(proxy.url, model_dir=modern_export, count=n,
                                  out_dir=tmp_path / str(rate))
        reports[rate] = result.report
        assert result.exit_code == 0 and not result.report["partial"]
    clean, faulty = reports[0.0], reports[5e-3]
    assert clean["link"]["retransmissions"] == 0 and clean["link"]["garbage_bytes"] == 0
    assert faulty["link"]["resets_seen"] >= 1 and faulty["link"]["retransmissions"] > 0
    assert faulty["count"] == n and faulty["agreement"]["device_tflm_exact_logits"] == 1.0
    assert faulty["accuracy"] == clean["accuracy"]


def test_no_such_port_is_a_clean_error(modern_export, tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    for url in (f"socket://127.0.0.1:{free}", "/dev/ttyNO_SUCH_PORT"):
        code = main(["validate", "--port", url, "--export", str(modern_export), "--count", "5",
                     "--report", str(tmp_path)])
        assert code == 2
        assert "cannot open serial port" in capsys.readouterr().err


def test_nothing_answering_fails_in_bounded_time(modern_export, tmp_path):
    def silent(conn, stop):
        stop.wait(30)
        conn.close()

    with tcp_server(silent) as url:
        started = time.monotonic()
        with pytest.raises(LenetEdgeError, match="nothing answered"):
            validate(url, model_dir=modern_export, count=5, out_dir=tmp_path, timeout=0.3)
        assert time.monotonic() - started < 10


def test_garbage_sending_firmware_is_named_as_such(modern_export, tmp_path):
    def garbage(conn, stop):
        rng = random.Random(0)
        try:
            while not stop.is_set():
                conn.sendall(bytes(rng.randrange(256) for _ in range(200)) + b"\xa5\x5a\x82")
                time.sleep(0.01)
        except OSError:
            pass

    with tcp_server(garbage) as url:
        started = time.monotonic()
        with pytest.raises(LenetEdgeError, match="other data arrived"):
            validate(url, model_dir=modern_export, count=5, out_dir=tmp_path, timeout=0.3)
        assert time.monotonic() - started < 10


def test_device_with_another_model_is_refused_unless_forced(qemu_elf, lenet_model_files, tmp_path, capsys):
    other = lenet_model_files["classic"]
    with start_qemu(QEMU_BOARD, qemu_elf) as qemu:
        code = main(["validate", "--port", qemu.url, "--export", str(other), "--count", "20",
                     "--report", str(tmp_path / "refused")])
        assert code == 2
        err = capsys.readouterr().err
        assert "--force" in err and "runs model" in err
        assert not (tmp_path / "refused" / "report.json").exists()
    with start_qemu(QEMU_BOARD, qemu_elf) as qemu:
        code = main(["validate", "--port", qemu.url, "--export", str(other), "--count", "20",
                     "--report", str(tmp_path / "forced"), "--force"])
    report = json.loads((tmp_path / "forced" / "report.json").read_text())
    assert report["model"]["hash_matches_device"] is False
    # Another model's logits cannot all match: the check fails, and says so.
    assert report["agreement"]["device_tflm_exact_logits"] < 1.0
    assert code == 1


def test_ctrl_c_keeps_a_partial_report(qemu_elf, modern_export, tmp_path):
    out = tmp_path / "partial"
    with start_qemu(QEMU_BOARD, qemu_elf) as qemu:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lenet_edge", "validate", "--port", qemu.url, "--export",
             str(modern_export), "--count", "10000", "--report", str(out)],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "120"},
        )
        lines = []
        streaming = threading.Event()

        def pump():
            for line in proc.stderr:
                lines.append(line)
                if line.startswith("device:"):
                    streaming.set()

        threading.Thread(target=pump, daemon=True).start()
        try:
            assert streaming.wait(60), "".join(lines)
            time.sleep(2.0)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 130, "".join(lines)
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True
    assert 0 < report["count"] < 10000
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert "PARTIAL" in (out / "report.md").read_text()


def test_clean_link_to_a_booting_device_reports_no_garbage_and_no_retransmissions(qemu_elf, modern_export, tmp_path):
    """The guest boots when we connect: its banner (usually seen; QEMU sometimes drops it)
    is expected text (banner_bytes), and the INFO sent while it booted is answered, not
    counted as lost."""
    with start_qemu(QEMU_BOARD, qemu_elf) as qemu:
        result = validate(qemu.url, model_dir=modern_export, count=20, out_dir=tmp_path)
    link = result.report["link"]
    assert result.exit_code == 0, link
    assert link["garbage_bytes"] == 0 and link["crc_errors"] == 0 and link["retransmissions"] == 0
    assert link["resets_seen"] == 0 and link["stale_answers"] == 0
