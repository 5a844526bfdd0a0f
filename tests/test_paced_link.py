"""The fault proxy's baud-paced mode (a UART's 10 bits a byte), and what the pixels encoding
buys on such a link: the host build of the firmware behind a 115200-baud pace."""

from __future__ import annotations

import time

import numpy as np

from lenet_edge.host.faultproxy import FaultProxy, FaultRates
from lenet_edge.host.session import DeviceSession
from tests.host_fixtures import (  # noqa: F401
    host_device_binary, lenet_model_files, mnist_test, modern_export, run_host_device)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_paced_proxy_moves_bytes_at_the_baud_rate(host_device_binary):
    with run_host_device(host_device_binary) as (url, _):
        with FaultProxy(_port(url), FaultRates(), baud=115200) as proxy:
            with DeviceSession(proxy.url) as session:
                session.info()
                start = time.monotonic()
                for _ in range(6):
                    assert session.echo(bytes(range(250)) * 2) == bytes(range(250)) * 2
                seconds = time.monotonic() - start
            # 6 x (512 up + 513 down), one after the other: >= 6,150 bytes of wire time, less
            # the pacer's back-to-back slack (a slice may start up to 5 ms early in each
            # direction when the line was busy just before).
            assert seconds >= 6_150 * 10 / 115200 - 12 * 0.005
            assert proxy.counts.bytes_up >= 6 * 512


def test_pixels_fit_80_digits_per_second_into_115200_baud(host_device_binary, mnist_test):
    """Runs allow at most ~53 digits/s at 115200 baud (217 bytes a digit); pixels ~133
    bytes: ~86. The pace holds (never faster than the wire); the measured rate is in
    BENCHMARKS.md (on a loaded 2-core machine the host's own CPU share decides it)."""
    images = (mnist_test[0][:400].reshape(400, -1).astype(np.int16) - 128).astype(np.int8)
    with run_host_device(host_device_binary) as (url, _):
        with FaultProxy(_port(url), FaultRates(), baud=115200) as proxy:
            with DeviceSession(proxy.url) as session:
                session.info()
                sent = session.stats.sent_bytes
                start = time.monotonic()
                n = sum(1 for _ in session.infer_stream((i, images[i]) for i in range(400)))
                rate = n / (time.monotonic() - start)
                per_digit = (session.stats.sent_bytes - sent) / n
    assert n == 400 and per_digit < 140, per_digit  # room for >= 82 digits/s
    assert rate <= 11520 / per_digit * 1.02, rate


def test_paced_proxy_runs_as_a_process_of_its_own(host_device_binary):
    """`python -m lenet_edge.host.faultproxy PORT --baud N` (benchmarks/link_throughput.py
    runs the paced wire so, apart from the host's interpreter)."""
    import subprocess
    import sys

    with run_host_device(host_device_binary) as (url, _):
        proc = subprocess.Popen([sys.executable, "-m", "lenet_edge.host.faultproxy", str(_port(url)),
                                 "--baud", "115200"], stdout=subprocess.PIPE, text=True)
        try:
            word, proxy_url = proc.stdout.readline().split()
            assert word == "listening"
            with DeviceSession(proxy_url) as session:
                assert session.info().int("input_size") == 784
                start = time.monotonic()
                assert session.echo(bytes(500)) == bytes(500)
                # 1,024 bytes on the wire; the pacer lets a slice start up to 5 ms early
                # in each direction when the line was busy just before (the INFO chunks).
                assert time.monotonic() - start >= 1024 * 10 / 115200 - 2 * 0.005
        finally:
            proc.kill()
            proc.wait(timeout=10)
