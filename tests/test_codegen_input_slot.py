"""NAME_input_buffer(): the model input placed inside the arena (where the memory plan
leaves a gap until the input has been read) gives exactly TFLM's results, so a caller (the
validation agent) needs no input buffer of its own."""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pytest

from lenet_edge.codegen.export import export
from lenet_edge.quantize.evaluate import pixels_to_int8
from lenet_edge.quantize.tflm import TflmModel
from tests.codegen_fixtures import lenet_model_files, mnist_test, stress_inputs  # noqa: F401


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("variant", ["modern", "classic"])
def test_input_in_the_arena_is_exact(variant, fuse, lenet_model_files, mnist_test, tmp_path):
    result = export(lenet_model_files[variant].read_bytes(), tmp_path / "x", fuse=fuse,
                    measure_tflm=False, measure_code=False)
    source = (result.c_dir / "lenet5_model.c").read_text()
    assert result.library.plan.input_slot is not None  # LeNet-5 has the gap: no extra buffer
    assert f"return ARENA + {result.library.plan.input_slot};" in source
    main = tmp_path / "main.c"
    main.write_text(textwrap.dedent("""\
        #include <stdio.h>
        #include <string.h>
        #include "lenet5_model.h"
        int main(void)
        {
            int8_t x[LENET5_INPUT_SIZE], y[LENET5_OUTPUT_SIZE];
            while (fread(x, 1, sizeof x, stdin) == sizeof x) {
                int8_t *slot = lenet5_input_buffer();
                memcpy(slot, x, sizeof x);
                if (lenet5_invoke(slot, y) != 0) return 3;
                fwrite(y, 1, sizeof y, stdout);
            }
            return 0;
        }
        """))
    exe = tmp_path / "run"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{result.c_dir}",
                    str(main), str(result.c_dir / "lenet5_model.c"), "-o", str(exe)], check=True)
    images, _ = mnist_test
    inputs = np.concatenate([pixels_to_int8(images[:200]).reshape(200, -1), stress_inputs(100)])
    out = subprocess.run([str(exe)], input=inputs.astype(np.int8).tobytes(), capture_output=True,
                         check=True).stdout
    expected = TflmModel(result.model_path).run_batch(inputs).reshape(len(inputs), -1)
    np.testing.assert_array_equal(np.frombuffer(out, np.int8).reshape(expected.shape), expected)
