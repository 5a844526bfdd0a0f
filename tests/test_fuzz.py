"""The libFuzzer harnesses (tests/fuzz/), each fuzzed briefly from the committed corpus
under ASan + UBSan: the device protocol parser and the generated model. A finding fails
the test with libFuzzer's report; `scripts/fuzz.sh` runs them for longer."""

from __future__ import annotations

import pytest

from tests import fuzzing
from tests.host_fixtures import lenet_model_files, mnist_test, modern_export  # noqa: F401

SECONDS = 4


@pytest.fixture(scope="module")
def libfuzzer():
    if not fuzzing.have_libfuzzer():
        pytest.fail("clang with libFuzzer is missing: run scripts/setup.sh "
                    "(apt-get install clang libclang-rt-dev)")


@pytest.mark.parametrize("name", fuzzing.HARNESSES)
def test_harness_survives_a_short_fuzzing_run(name, libfuzzer, modern_export, tmp_path):
    exe = fuzzing.build(name, modern_export / "c", tmp_path / name)
    # Every committed seed first, then mutations of them for a few seconds.
    runs = fuzzing.run(exe, fuzzing.CORPUS / name, SECONDS, tmp_path)
    assert runs > len(list((fuzzing.CORPUS / name).iterdir()))
