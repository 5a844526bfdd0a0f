"""The generated C under real compilers: Cortex-M cross-compiles with -Werror, and the host
build under AddressSanitizer + UndefinedBehaviorSanitizer over the whole test set."""

from __future__ import annotations

import numpy as np
import pytest

from lenet_edge.codegen import cross
from lenet_edge.codegen.export import export
from lenet_edge.cpus import get_cpu
from lenet_edge.quantize.evaluate import pixels_to_int8
from lenet_edge.codegen.host_build import (
    HostModel,
    build_sanitizer_harness,
    build_shared_library,
    run_sanitizer_harness,
)
from tests.codegen_fixtures import lenet_model_files, mnist_test, stress_inputs  # noqa: F401


@pytest.fixture(scope="module")
def exports(lenet_model_files, tmp_path_factory):
    return {v: export(p.read_bytes(), tmp_path_factory.mktemp(f"tc-{v}"), measure_tflm=False,
                      measure_code=False) for v, p in lenet_model_files.items()}


@pytest.mark.arm
@pytest.mark.parametrize("cpu", cross.CPUS)
def test_cross_compiles_with_werror(cpu, exports, tmp_path):
    assert cross.have_arm_gcc(), "arm-none-eabi-gcc is required (scripts/setup.sh installs it)"
    for variant, result in exports.items():
        objects = cross.compile_for_cpu(result.c_dir, cpu, tmp_path / variant)
        sizes = cross.section_sizes(objects)
        assert sizes["code"] > 0
        # The mutable globals are the arena (bss) and, when no gap in the arena can hold
        # the input (LeNet-1's arena is smaller than its 784-byte input), an input buffer of
        # its own; nothing in .data.
        assert sizes["data"] == 0
        own_input = 0 if result.library.plan.input_slot is not None else 784
        assert sizes["bss"] == max(4, result.report["arena_bytes"]) + own_input
        assert sizes["rodata"] >= result.report["weights_bytes"]
        assert sizes["code"] < 4096  # inference code beyond the weights, -Os


# The instruction that shows which kernel variant a core compiled (the compiler picks it
# from -mcpu's feature macros; the CPU table says which one each core should get).
SIGNATURE = {"portable": None, "dsp": "smlad", "mve": "vmladava.s8",
             "mlal": "_weights_mlal"}  # SMLAL is also GCC's int64 multiply: the table's name


@pytest.mark.arm
@pytest.mark.parametrize("cpu", cross.CPUS)
def test_each_core_compiles_its_kernel_variant(cpu, exports, tmp_path):
    import subprocess

    c_dir = exports["modern"].c_dir
    asm = tmp_path / "model.s"
    subprocess.run([cross.GCC, *get_cpu(cpu).gcc_flags, *cross.CFLAGS, f"-I{c_dir}", "-S",
                    str(c_dir / "lenet5_model.c"), "-o", str(asm)], check=True)
    text = asm.read_text()
    for mnemonic in ("smlad", "vmladava.s8", "_weights_mlal"):
        assert (mnemonic in text) == (SIGNATURE[get_cpu(cpu).kernels] == mnemonic), (cpu, mnemonic)


def test_cpu_table_kernels():
    """The cores with the DSP extension get SMLAD, the M55 Helium, the M3 SMLAL with paired
    channels, v6-M portable C."""
    kernels = {cpu: get_cpu(cpu).kernels for cpu in cross.CPUS}
    assert kernels == {"cortex-m0": "portable", "cortex-m0plus": "portable",
                       "cortex-m3": "mlal", "cortex-m4": "dsp", "cortex-m7": "dsp",
                       "cortex-m33": "dsp", "cortex-m55": "mve"}


@pytest.mark.parametrize("variant", ["modern", "classic", "classic-1998"])
def test_sanitizers_over_test_set(variant, exports, mnist_test, tmp_path):
    result = exports[variant]
    exe = build_sanitizer_harness(result.c_dir, tmp_path / "asan")
    images = mnist_test[0]
    inputs = np.concatenate([
        pixels_to_int8(images).reshape(len(images), -1),
        stress_inputs(500),
    ])
    outputs = run_sanitizer_harness(exe, inputs, tmp_path, 10)
    plain = HostModel(build_shared_library(result.c_dir, tmp_path / "lib.so"))
    np.testing.assert_array_equal(outputs, plain.invoke_batch(inputs))
