"""The validation agent as a library: what export ships, the README's two integration
examples (STM32 HAL, Zephyr) compiled for Cortex-M against stand-ins of the vendor
headers, and the agent run under the sanitizers behind a real TCP link."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.host_fixtures import (  # noqa: F401
    AGENT,
    compile_host_device,
    lenet_model_files,
    mnist_test,
    modern_export,
    run_host_device,
)

ROOT = Path(__file__).resolve().parent.parent
STUBS = Path(__file__).resolve().parent / "agent_stubs"
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def readme_examples() -> dict[str, str]:
    """The README's C blocks that start with `/* example: NAME ...`, by NAME."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```c\n(/\* example: (\S+).*?)```", text, re.S)
    return {name: code for code, name in blocks}


def test_export_ships_the_agent_beside_the_library(modern_export):
    agent = modern_export / "agent"
    assert sorted(p.name for p in agent.iterdir()) == [
        "CMakeLists.txt", "PROTOCOL.md", "lenet_agent.c", "lenet_agent.h"]
    assert (agent / "PROTOCOL.md").read_bytes() == (ROOT / "docs" / "PROTOCOL.md").read_bytes()
    # The firmware compiles the very same sources.
    for name in ("lenet_agent.c", "lenet_agent.h"):
        assert (agent / name).read_bytes() == (AGENT / name).read_bytes()


@pytest.mark.arm
@pytest.mark.parametrize("example, cpu", [("stm32_hal.c", "cortex-m4"), ("zephyr.c", "cortex-m0plus")])
def test_readme_example_compiles_for_cortex_m(example, cpu, modern_export, tmp_path):
    examples = readme_examples()
    assert set(examples) == {"stm32_hal.c", "zephyr.c"}
    src = tmp_path / example
    src.write_text(examples[example], encoding="utf-8")
    agent = modern_export / "agent"
    objects = []
    for c in (src, agent / "lenet_agent.c"):
        obj = tmp_path / (c.stem + ".o")
        proc = subprocess.run(["arm-none-eabi-gcc", "-mthumb", f"-mcpu={cpu}", *STRICT, f"-I{STUBS}",
                               f"-I{modern_export / 'c'}", f"-I{agent}", "-c", str(c), "-o", str(obj)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        objects.append(obj)
    # The example really hands the agent its functions (not an empty file that compiles).
    symbols = subprocess.run(["arm-none-eabi-nm", str(objects[0])], capture_output=True, text=True,
                             check=True).stdout
    for needed in ("lenet_agent_init", "lenet_agent_poll", "lenet_agent_rx_push", "lenet5_invoke"):
        assert re.search(rf"\bU {needed}\b", symbols), needed


def test_agent_under_sanitizers_answers_info_infer_trace(modern_export, lenet_model_files, mnist_test,
                                                         tmp_path):
    """The agent + firmware main on the host, with ASan/UBSan: every request kind, a raw
    (uncompressed) input and bytes of garbage between frames."""
    from lenet_edge.host.session import DeviceSession
    from lenet_edge.quantize.evaluate import pixels_to_int8
    from lenet_edge.quantize.tflm import TflmModel

    binary = compile_host_device(modern_export / "c", tmp_path / "device",
                                 ("-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"))
    images, _ = mnist_test
    inputs = np.concatenate([pixels_to_int8(images[:20]).reshape(20, -1),
                             np.random.default_rng(5).integers(-128, 128, (5, 784)).astype(np.int8)])
    ref = TflmModel(lenet_model_files["modern"], preserve_all_tensors=True)
    with run_host_device(binary) as (url, proc):
        with DeviceSession(url) as session:
            info = session.info()
            assert info.int("max_payload") >= 784 + 6 and info.int("rx_buffer") > info.int("max_payload")
            session._port.write(b"\x00garbage\xa5\xa5")
            assert session.echo(b"x" * 300) == b"x" * 300
            results = dict(session.infer_stream(enumerate(inputs)))
            for i, x in enumerate(inputs):
                assert np.array_equal(results[i].output, ref.invoke(x).reshape(-1)), i
            traces = session.trace(inputs[-1])  # random: sent raw
            ref.invoke(inputs[-1])
            for t in traces:
                assert np.array_equal(t.data, ref.tensor(t.tensor_index).reshape(-1))
            assert session.info(refresh=True).int("garbage_bytes") >= 10
            # A sanitizer report would have ended the device (-fno-sanitize-recover).
            assert proc.poll() is None


def test_agent_with_a_polled_read_interface(modern_export, lenet_model_files, mnist_test, tmp_path):
    """The pull-style I/O (non-blocking read()) on pipes: garbage, a frame split across
    writes, a partial frame dropped after the byte timeout, a damaged frame, every request
    kind, and the I/O's own INFO keys."""
    import time

    from lenet_edge.host import protocol as P
    from lenet_edge.quantize.evaluate import pixels_to_int8
    from lenet_edge.quantize.tflm import TflmModel

    c = modern_export / "c"
    exe = tmp_path / "agent_stdio"
    subprocess.run(["gcc", *STRICT, "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    f"-I{AGENT}", f"-I{c}", str(Path(__file__).parent / "host_board" / "agent_stdio.c"),
                    str(AGENT / "lenet_agent.c"), *map(str, sorted(c.glob("*.c"))), "-o", str(exe)], check=True)
    digit = pixels_to_int8(mnist_test[0][:1]).reshape(-1)
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    infer = P.encode_frame(P.INFER, 3, P.encode_input(digit))
    damaged = bytearray(P.encode_frame(P.INFER, 4, P.encode_input(digit)))
    damaged[-1] ^= 1
    for chunk in (b"boot noise\xa5", P.encode_frame(P.INFO, 1, b""), infer[:50]):
        proc.stdin.write(chunk)
        proc.stdin.flush()
        time.sleep(0.05)
    # ... then a frame whose header promises 500 bytes that never come: without the byte
    # timeout it would swallow the ECHO below as its payload.
    proc.stdin.write(infer[50:] + bytes(damaged) + P.encode_frame(P.INFER, 9, bytes(500))[:30])
    proc.stdin.flush()
    time.sleep(0.8)  # > the 500 ms byte timeout: the partial frame is dropped
    proc.stdin.write(P.encode_frame(P.ECHO, 5, b"ping") + P.encode_frame(0x33, 6, b"")
                     + P.encode_frame(P.INFO, 7, b""))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    deframer = P.Deframer()
    frames = deframer.feed(out)
    assert out.startswith(b"lenet-edge stdio host x86-64\r\n")
    assert [f.seq for f in frames] == [1, 3, 5, 6, 7]
    info = P.parse_info(frames[0].payload)
    assert info.fields["transport"] == "stdio" and info.fields["answer"] == "-42"
    reply = P.parse_infer(frames[1].payload, 10)
    expected = TflmModel(lenet_model_files["modern"]).invoke(digit).reshape(-1)
    assert reply.output.tolist() == expected.tolist() and reply.input_crc == P.input_crc(digit)
    assert frames[2].payload == b"\x00ping"
    assert frames[3].type == P.ERROR and frames[3].payload[0] == 5  # unknown type
    last = P.parse_info(frames[4].payload)
    assert last.int("frames_bad") == 2 and last.int("garbage_bytes") >= len(b"boot noise")
    assert last.int("frames_ok") == 5
