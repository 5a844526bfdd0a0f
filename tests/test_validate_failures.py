"""Never lose a result: every way a validation can end leaves a report of what was checked,
and every numeric option is range-checked. The device is the host build of the firmware
(protocol.c + the generated C) over TCP, as in test_host_protocol.py."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from lenet_edge.cli import main
from lenet_edge.host import references
from lenet_edge.host.validate import validate
from tests.host_fixtures import (  # noqa: F401
    GoesDeaf,
    host_device_binary,
    lenet_model_files,
    mnist_test,
    modern_export,
    run_host_device,
)


def test_clean_link_reports_no_garbage_and_no_retransmissions(host_device_binary, modern_export, tmp_path):
    """The boot banner of the device we connect to is accounted as such (banner_bytes)."""
    with run_host_device(host_device_binary) as (url, _):
        result = validate(url, model_dir=modern_export, count=20, out_dir=tmp_path)
    link = result.report["link"]
    assert result.exit_code == 0
    assert link["garbage_bytes"] == 0 and link["retransmissions"] == 0
    assert link["stale_answers"] == 0 and link["resets_seen"] == 0


def _report(out):
    return json.loads((out / "report.json").read_text())


def test_link_giving_up_mid_run_keeps_a_partial_report(host_device_binary, modern_export, tmp_path):
    with run_host_device(host_device_binary) as (url, _):
        with GoesDeaf(int(url.rsplit(":", 1)[1]), up_bytes=8000) as proxy:
            result = validate(proxy.url, model_dir=modern_export, count=100, out_dir=tmp_path,
                              timeout=0.2)
    report = _report(tmp_path)
    assert result.exit_code == 1
    assert report["partial"] is True and "stopped answering" in report["partial_reason"]
    assert 0 < report["count"] < 100 and report["requested"] == 100
    # What was streamed was still checked against TFLM.
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["checks"]["passed"] is False
    assert "PARTIAL" in (tmp_path / "report.md").read_text()


def test_ctrl_c_while_computing_references_keeps_the_streamed_digits(
        host_device_binary, modern_export, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(references, "tflm_outputs", interrupted)
    with run_host_device(host_device_binary) as (url, _):
        result = validate(url, model_dir=modern_export, count=30, out_dir=tmp_path)
    report = _report(tmp_path)
    assert result.exit_code == 130
    assert report["partial"] is True and "references" in report["partial_reason"]
    assert report["count"] == 30  # every streamed digit is in the report
    assert report["accuracy"]["device"] is not None and report["accuracy"]["tflm"] is None
    assert report["agreement"]["device_tflm_exact_logits"] is None  # not claimed


def test_ctrl_c_while_streaming_keeps_what_was_answered(
        host_device_binary, modern_export, tmp_path, monkeypatch):
    from lenet_edge.host.session import DeviceSession

    real = DeviceSession.infer_stream

    def stream_then_interrupt(self, inputs):
        for k, item in enumerate(real(self, inputs)):
            if k == 12:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(DeviceSession, "infer_stream", stream_then_interrupt)
    with run_host_device(host_device_binary) as (url, _):
        result = validate(url, model_dir=modern_export, count=40, out_dir=tmp_path)
    report = _report(tmp_path)
    assert result.exit_code == 130
    assert report["partial"] is True and report["count"] == 12
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0


def _free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"socket://127.0.0.1:{s.getsockname()[1]}"


def test_report_path_that_cannot_be_written_is_refused_before_streaming(modern_export, tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("not a directory")
    # Nothing listens at the URL: the report check must come first.
    rc = main(["validate", "--port", _free_url(), "--export", str(modern_export),
               "--count", "5", "--report", str(a_file)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "--report" in err and "not a directory" in err


@pytest.mark.parametrize("args, message", [
    (["--min-accuracy", "150"], "not an accuracy"),
    (["--min-accuracy", "-0.5"], "not an accuracy"),
    (["--per-layer", "-1"], "--per-layer"),
    (["--count", "0"], "--count"),
    (["--timeout", "0"], "--timeout"),
    (["--baud", "-9600"], "--baud"),
])
def test_validate_options_are_range_checked(args, message, modern_export, tmp_path, capsys):
    rc = main(["validate", "--port", _free_url(), "--export", str(modern_export),
               "--report", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_min_accuracy_reads_fractions_and_percentages():
    from lenet_edge.host.cli import accuracy_fraction

    assert accuracy_fraction(0.99) == 0.99
    assert accuracy_fraction(99) == pytest.approx(0.99)
    assert accuracy_fraction(1) == 1.0


@pytest.mark.parametrize("argv, message", [
    (["eval", "--limit", "-3"], "--limit"),
    (["eval", "--limit", "0"], "--limit"),
    (["bench", "--count", "0"], "--count"),
    (["demo", "--per-layer", "-1"], "--per-layer"),
    (["train", "--seed", "-1"], "--seed"),
])
def test_other_numeric_options_are_range_checked(argv, message, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_eval_json_into_a_missing_folder_works(tmp_path):
    out = tmp_path / "missing" / "deeper" / "eval.json"
    rc = main(["eval", "--backend", "tflm", "--limit", "20", "--json", str(out)])
    assert rc == 0
    assert json.loads(out.read_text())["images"] == 20


def test_eval_json_that_cannot_be_written_fails_before_evaluating(tmp_path, capsys, monkeypatch):
    import lenet_edge.train.mnist as mnist

    def never(*a, **k):
        raise AssertionError("evaluated before checking --json")

    monkeypatch.setattr(mnist, "load_mnist", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["eval", "--backend", "tflm", "--json", str(blocker / "eval.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write --json" in err


def test_eval_fails_when_c_and_tflm_disagree(monkeypatch, capsys):
    import lenet_edge.codegen.evaluate as ev

    real = ev.run_c

    def off_by_one_on_the_first_image(model_bytes, images):
        out = real(model_bytes, images)
        out[0, 0] = np.int8(out[0, 0] ^ 1)
        return out

    assert main(["eval", "--backend", "tflm", "--backend", "c", "--limit", "20"]) == 0
    monkeypatch.setattr(ev, "run_c", off_by_one_on_the_first_image)
    rc = main(["eval", "--backend", "tflm", "--backend", "c", "--limit", "20"])
    assert rc == 1
    assert "c outputs differ from TFLM on 1 of 20" in capsys.readouterr().err


def test_flash_refuses_an_image_that_is_not_firmware(tmp_path, capsys):
    text = tmp_path / "notes.elf"
    text.write_text("this is not firmware\n")
    rc = main(["flash", "--board", "qemu-mps2-an386", "--image", str(text), "--duration", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "not a firmware image" in err


def test_export_to_an_unknown_board_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["export", "--board", "nosuchboard", "--out", str(out), "--no-tflm-arena"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown board 'nosuchboard'" in err
    assert not out.exists()


def test_model_dir_is_the_deprecated_name_of_export(modern_export, tmp_path, capsys):
    """Old scripts keep working: --model-dir is --export, with a warning (hidden in --help)."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    rc = main(["validate", "--port", _free_url(), "--model-dir", str(modern_export),
               "--count", "1", "--report", str(a_file)])
    err = capsys.readouterr().err
    assert rc == 2 and "warning: --model-dir is deprecated: use --export" in err
    rc = main(["validate", "--port", _free_url(), "--model-dir", str(modern_export),
               "--export", str(modern_export), "--report", str(a_file)])
    assert rc == 2 and "not both" in capsys.readouterr().err
    from click.testing import CliRunner

    from lenet_edge.cli import cli

    help_text = CliRunner().invoke(cli, ["validate", "--help"]).output
    assert "--export" in help_text and "--model-dir" not in help_text


@pytest.mark.parametrize("command", [
    ["export", "--no-tflm-arena"], ["build"], ["flash", "--duration", "1"],
    ["validate", "--count", "1"], ["demo"], ["bench", "--count", "1", "--boards"],
])
def test_every_board_option_is_checked_alike(command, tmp_path, capsys, monkeypatch):
    """One check of --board, one error line, whichever command (none writes anything)."""
    monkeypatch.chdir(tmp_path)
    flag = [] if command[-1] == "--boards" else ["--board"]
    rc = main([*command, *flag, "nosuchboard"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: unknown board 'nosuchboard'; known boards: qemu-mps2-an385" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
