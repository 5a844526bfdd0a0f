"""CMake: the rendered firmware project builds with CMake (arm-none-eabi toolchain file)
to the same image as with make, and runs; the exported C library and agent are
add_subdirectory targets of a user's project, cross-compiled and on this machine."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import numpy as np
import pytest

from lenet_edge.firmware_templates.build import build_firmware
from tests.firmware_fixtures import export_dir, mnist_digits  # noqa: F401

pytestmark = [pytest.mark.arm, pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")]


def _cmake(source, build, *args):
    for cmd in (["cmake", "-S", str(source), "-B", str(build), *args], ["cmake", "--build", str(build), "-j2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _sizes(elf) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True)
    return {p[0]: int(p[1]) for p in (line.split() for line in out.stdout.splitlines())
            if len(p) == 3 and p[0] in (".isr_vector", ".text", ".weights", ".rodata", ".data",
                                        ".stack", ".arena", ".bss")}


@pytest.mark.parametrize("board_name", ["qemu-mps2-an385", "nucleo-g071rb"])
def test_firmware_builds_with_cmake_like_make(board_name, export_dir, tmp_path):
    made = build_firmware(board_name, export_dir, tmp_path / "fw")
    build = tmp_path / "cmake-build"
    _cmake(tmp_path / "fw", build, f"-DCMAKE_TOOLCHAIN_FILE={tmp_path / 'fw' / 'arm-none-eabi.cmake'}")
    elf = build / made.elf.name
    assert elf.is_file() and elf.with_suffix(".bin").is_file() and elf.with_suffix(".hex").is_file()
    # Same sources, flags, stack bound and linker script: the same image layout.
    assert _sizes(elf) == _sizes(made.elf)
    assert (build / "stack_size.ld").read_text() == (made.elf.parent / "stack_size.ld").read_text()
    assert elf.with_suffix(".bin").read_bytes() == made.bin.read_bytes()


@pytest.mark.qemu
def test_cmake_built_firmware_runs_exactly(export_dir, mnist_digits, tmp_path):
    from lenet_edge.firmware_templates.qemu import run_qemu
    from lenet_edge.firmware_templates.render import render_firmware
    from lenet_edge.host.session import DeviceSession
    from lenet_edge.quantize.tflm import TflmModel

    fw = render_firmware("qemu-mps2-an386", export_dir, tmp_path / "fw")
    _cmake(fw, tmp_path / "b", f"-DCMAKE_TOOLCHAIN_FILE={fw / 'arm-none-eabi.cmake'}")
    inputs = mnist_digits[0][:10]
    expected = TflmModel(export_dir / "model" / "lenet5_int8.tflite").run_batch(inputs)
    with run_qemu("qemu-mps2-an386", tmp_path / "b" / "lenet5-qemu-mps2-an386.elf") as url:
        with DeviceSession(url) as session:
            got = dict(session.infer_stream(enumerate(inputs)))
    np.testing.assert_array_equal(np.stack([got[i].output.reshape(-1) for i in range(10)]), expected)


def _user_project(tmp_path, export_dir):
    """A user's CMake project that adds the exported library and agent as subdirectories."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(textwrap.dedent(f"""\
        cmake_minimum_required(VERSION 3.16)
        project(user_app C)
        add_subdirectory({export_dir / 'c'} lenet5_model)
        add_subdirectory({export_dir / 'agent'} lenet_agent)
        add_executable(app app.c)
        target_link_libraries(app PRIVATE lenet5 lenet_agent)
        target_compile_options(app PRIVATE -Wall -Wextra -Werror)
        """))
    (app / "app.c").write_text(textwrap.dedent("""\
        #include <stdio.h>
        #include "lenet5_model.h"
        #include "lenet_agent.h"
        int main(void)
        {
            int8_t input[LENET5_INPUT_SIZE], output[LENET5_OUTPUT_SIZE];
            if (fread(input, 1, sizeof input, stdin) != sizeof input) return 2;
            if (lenet5_invoke(input, output) != 0) return 3;
            /* the agent's CRC, as the host computes it (zlib) */
            printf("%08x\\n", (unsigned)lenet_agent_crc32(0, (const uint8_t *)output, sizeof output));
            fwrite(output, 1, sizeof output, stdout);
            return 0;
        }
        """))
    return app


def test_exported_library_and_agent_are_cmake_subdirectories(export_dir, mnist_digits, tmp_path):
    import zlib

    from lenet_edge.quantize.tflm import TflmModel

    app = _user_project(tmp_path, export_dir)
    _cmake(app, tmp_path / "host-build")  # this machine's compiler: run it
    x = mnist_digits[0][0].reshape(-1).astype(np.int8)
    proc = subprocess.run([str(tmp_path / "host-build" / "app")], input=x.tobytes(), capture_output=True, check=True)
    crc, out = proc.stdout.split(b"\n", 1)
    expected = TflmModel(export_dir / "model" / "lenet5_int8.tflite").run_batch(x[None])[0].reshape(-1)
    assert np.frombuffer(out, np.int8).tolist() == expected.tolist()
    assert int(crc, 16) == zlib.crc32(expected.tobytes())
    # Cross-compiled with the firmware's toolchain file: static libraries for the target.
    from lenet_edge.firmware_templates.render import render_firmware

    fw = render_firmware("qemu-mps2-an386", export_dir, tmp_path / "fw")
    cross = tmp_path / "cross-build"
    _cmake(app, cross, f"-DCMAKE_TOOLCHAIN_FILE={fw / 'arm-none-eabi.cmake'}",
           "-DCMAKE_C_FLAGS=-mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 --specs=nosys.specs")
    for lib, symbol in (("lenet5_model/liblenet5.a", "lenet5_invoke"), ("lenet_agent/liblenet_agent.a", "lenet_agent_poll")):
        nm = subprocess.run(["arm-none-eabi-nm", str(cross / lib)], capture_output=True, text=True, check=True).stdout
        assert f"T {symbol}" in nm
    header = subprocess.run(["arm-none-eabi-readelf", "-h", str(cross / "app")], capture_output=True,
                            text=True, check=True).stdout
    assert "Machine:                           ARM" in header  # linked for the target
