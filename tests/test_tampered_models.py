"""Untrusted models: the defects an audit found, and a fixed subset of the tampered suite.

Every mutant of the bundled model must be refused with one clear error or exported into C
bit-exact with TFLM (tests/tamper_check.py). benchmarks/tampered_models.py runs all of
them and prints the figures.
"""

from __future__ import annotations

import pytest

from lenet_edge.cli import main
from tests.tamper import mutations, targeted
from tests.tamper_check import judge_all, tally


@pytest.fixture(scope="module")
def clean_model():
    from lenet_edge.bundled import bundled_model

    return bundled_model("modern", "tflite").read_bytes()


@pytest.fixture(scope="module")
def by_name(clean_model):
    return {m.name: m for m in targeted(clean_model)}


# The defects of issue 13, each as the field edit that reproduces it on the bundled model:
# tensor 0 is the input, 2 a weight, 11 an activation, 17 the output (18 tensors).
DEFECTS = {
    "opcode[1].builtin_code=28": "op 1 TANH",  # MAX_POOL_2D -> TANH: read as TFLM reads it
    "tensor[11].zero_point[0]=1000": "zero_point[0] is 1000",
    "tensor[11].zero_point[0]=128": "zero_point[0] is 128",
    "subgraph.outputs[0]=18": "outputs[0] is tensor 18",
    "subgraph.outputs[0]=-1": "outputs[0] is tensor -1",
    "subgraph.outputs[0]=0": "both the subgraph's input and its output",
    "subgraph.outputs[0]=2": "a constant",
    "tensor[10].buffer=4294967295": "buffer index 4294967295",
    "tensor[11].scale[0]=-1.0": "scale[0] is -1.0",
    "tensor[11].scale[0]=0.0": "scale[0] is 0.0",
    "tensor[11].scale[0]=nan": "scale[0] is nan",
    "tensor[11].scale[0]=inf": "scale[0] is inf",
}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_issue_defects_are_refused_with_one_clear_error(name, by_name, tmp_path, capsys):
    path = tmp_path / "tampered.tflite"
    path.write_bytes(by_name[name].data)
    out = tmp_path / "out"
    rc = main(["export", "--model", str(path), "--out", str(out), "--cpu", "cortex-m0plus"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: tampered.tflite"), err
    assert DEFECTS[name] in lines[0]
    assert not out.exists()  # refused before anything was written


def test_opcode_is_read_from_the_raw_fields(by_name):
    """builtin_code 28 with deprecated_builtin_code 17: TFLM runs TANH, and so must we."""
    import tflite

    from lenet_edge.quantize.tflm import builtin_code

    data = by_name["opcode[1].builtin_code=28"].data
    code = tflite.Model.GetRootAsModel(data, 0).OperatorCodes(1)
    assert code.BuiltinCode() == 17  # what the parser's accessor claims
    assert builtin_code(code) == 28  # what TFLM reads


def test_a_tflm_crash_is_a_clear_error_not_the_callers(by_name):
    """TFLM crashes on a tensor whose buffer index is far out of range; run in a child
    process, that is one LenetEdgeError here (the reader refuses the model before that)."""
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.quantize.tflm import TflmModel, tflm_arena_bytes

    data = by_name["tensor[10].buffer=4294967295"].data
    with pytest.raises(LenetEdgeError, match="tflite-micro crashed"):
        TflmModel(data)
    with pytest.raises(LenetEdgeError, match="tflite-micro crashed"):
        tflm_arena_bytes(data)


def _subset(clean_model):
    """A fixed, small cross-section: every 40th mutant plus the defects above."""
    every = mutations(clean_model)
    chosen = every[::40]
    names = {m.name for m in chosen}
    return chosen + [m for m in every if m.name in DEFECTS and m.name not in names]


def test_tampered_subset_is_refused_or_exact(clean_model):
    results = judge_all(_subset(clean_model), mnist=100, random=32)
    totals = tally(results)
    bad = [r for r in results if r["outcome"] not in ("refused", "exact")]
    assert not bad, bad
    assert totals["refused"] > 10 and totals["exact"] >= 3  # the subset exercises both
