"""`lenet-edge export --name NAME`: every public symbol, macro and file is prefixed, so two
exported models link into one program and each still computes exactly what TFLM does."""

from __future__ import annotations

import re
import subprocess
import textwrap

import numpy as np
import pytest

from lenet_edge.codegen.export import export
from lenet_edge.quantize.evaluate import pixels_to_int8
from lenet_edge.quantize.tflm import TflmModel
from tests.codegen_fixtures import lenet_model_files, mnist_test, stress_inputs  # noqa: F401

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


@pytest.fixture(scope="module")
def named_exports(lenet_model_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("named")
    return {variant: export(lenet_model_files[variant].read_bytes(), out / variant, name=variant,
                            measure_tflm=False, measure_code=False)
            for variant in ("modern", "classic")}


def test_every_public_name_and_file_is_prefixed(named_exports, lenet_model_files, tmp_path):
    result = named_exports["classic"]
    c = result.c_dir
    assert sorted(p.name for p in c.iterdir()) == [
        "CMakeLists.txt", "classic_model.c", "classic_model.h", "classic_weights.h"]
    header = (c / "classic_model.h").read_text()
    macros = re.findall(r"^#define (\w+)", header, re.M)
    assert macros and all(m.startswith("CLASSIC_") for m in macros), macros
    obj = tmp_path / "classic.o"
    subprocess.run(["gcc", *STRICT, "-c", str(c / "classic_model.c"), "-o", str(obj)], check=True)
    nm = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    public = [line.split()[2] for line in nm.splitlines() if line.split()[1].isupper()]
    assert public and all(s.startswith("classic_") for s in public), public
    # Renaming is only the prefix: named back, it is the default export byte for byte.
    default = export(lenet_model_files["classic"].read_bytes(), tmp_path / "default",
                     measure_tflm=False, measure_code=False)
    for path in c.iterdir():
        text = path.read_text().replace("classic", "lenet5").replace("CLASSIC", "LENET5")
        assert text == (default.c_dir / path.name.replace("classic", "lenet5")).read_text(), path.name


def test_two_models_in_one_program_both_exact(named_exports, mnist_test, tmp_path):
    images, _ = mnist_test
    inputs = np.concatenate([pixels_to_int8(images[:300]).reshape(300, -1), stress_inputs(100)])
    main = tmp_path / "two_models.c"
    main.write_text(textwrap.dedent("""\
        #include <stdio.h>
        #include "classic_model.h"
        #include "modern_model.h"
        /* stdin: N inputs of 784 int8; stdout: per input modern's then classic's logits */
        int main(void)
        {
            int8_t x[MODERN_INPUT_SIZE], a[MODERN_OUTPUT_SIZE], b[CLASSIC_OUTPUT_SIZE];
            while (fread(x, 1, sizeof x, stdin) == sizeof x) {
                if (modern_invoke(x, a) != 0 || classic_invoke(x, b) != 0) return 3;
                fwrite(a, 1, sizeof a, stdout);
                fwrite(b, 1, sizeof b, stdout);
            }
            return 0;
        }
        """))
    exe = tmp_path / "two_models"
    sources = [str(main)] + [str(r.c_dir / f"{v}_model.c") for v, r in named_exports.items()]
    includes = [f"-I{r.c_dir}" for r in named_exports.values()]
    subprocess.run(["gcc", *STRICT, *includes, *sources, "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], input=inputs.astype(np.int8).tobytes(), capture_output=True,
                         check=True).stdout
    got = np.frombuffer(out, np.int8).reshape(len(inputs), 2, 10)
    for k, variant in enumerate(("modern", "classic")):
        expected = TflmModel(named_exports[variant].model_path).run_batch(inputs).reshape(len(inputs), 10)
        np.testing.assert_array_equal(got[:, k], expected, err_msg=variant)


@pytest.mark.arm
@pytest.mark.qemu
def test_firmware_runs_a_named_export(named_exports, mnist_test, tmp_path):
    import hashlib

    from lenet_edge.firmware_templates.build import build_firmware
    from lenet_edge.firmware_templates.qemu import run_qemu
    from lenet_edge.host.session import DeviceSession

    result = named_exports["classic"]
    elf = build_firmware("qemu-mps2-an385", result.out_dir, tmp_path / "fw").elf
    inputs = pixels_to_int8(mnist_test[0][:5]).reshape(5, -1)
    expected = TflmModel(result.model_path).run_batch(inputs).reshape(5, 10)
    with run_qemu("qemu-mps2-an385", elf) as url:
        with DeviceSession(url) as session:
            assert session.info().model_hash == hashlib.sha256(result.model_path.read_bytes()).hexdigest()
            got = dict(session.infer_stream(enumerate(inputs)))
    np.testing.assert_array_equal(np.stack([got[i].output.reshape(-1) for i in range(5)]), expected)


def test_bad_name_is_one_clear_error(tmp_path, capsys):
    from lenet_edge.cli import main

    assert main(["export", "--name", "9lives", "--no-tflm-arena", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "error: --name '9lives' is not usable as a C prefix" in err and "Traceback" not in err
