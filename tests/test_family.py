"""The LeNet family beyond LeNet-5: LeNet-1 and LeNet-4 have the papers' structure and
size, and their connection tables stay exactly zero through training and int8."""

import numpy as np
import pytest

from lenet_edge.bundled import VARIANTS
from lenet_edge.train.models import (LENET1_C3_TABLE, LENET4_C3_TABLE, LENET4_F5_TABLE,
                                     SparseConv2D, build_model, connection_mask,
                                     lenet_variant, with_batch_one)
from lenet_edge.train.training import RECIPES, parameter_count, train


def test_every_variant_has_a_model_and_a_recipe():
    assert set(VARIANTS) == set(RECIPES)
    for variant in VARIANTS:
        assert lenet_variant(build_model(variant)) == variant


def test_lenet1_is_the_papers_net():
    # 1998 paper, section III-C: the H3 map -> S2 maps table, 1-based.
    paper = {1: {1}, 2: {1, 2}, 3: {1, 2}, 4: {2}, 5: {1, 2}, 6: {1, 2}, 7: {3}, 8: {3, 4},
             9: {3, 4}, 10: {4}, 11: {3, 4}, 12: {3, 4}}
    assert [{m + 1 for m in maps} for maps in LENET1_C3_TABLE] == list(paper.values())
    mask = connection_mask(LENET1_C3_TABLE, 4)
    assert mask.shape == (4, 12) and mask.sum() == 20
    model = build_model("lenet1")
    assert [layer.output.shape[1:] for layer in model.layers[1:]] == [
        (24, 24, 4), (12, 12, 4), (8, 8, 12), (4, 4, 12), (192,), (10,)]
    # C1 4*(25+1), C3 20*25+12, output 10*(192+1): the paper's "about 2,600".
    assert parameter_count(model) == 104 + 512 + 1930 == 2546
    assert abs(parameter_count(model) - 2600) / 2600 < 0.05


def test_lenet4_has_the_papers_size():
    assert connection_mask(LENET4_C3_TABLE, 4).sum() == 48
    f5 = connection_mask(LENET4_F5_TABLE, 16)
    assert f5.shape == (16, 120) and set(f5.sum(axis=0)) == {5}
    assert set(f5.sum(axis=1)) <= {37, 38}  # every S4 map feeds about the same number
    model = build_model("lenet4")
    assert model.input_shape == (None, 28, 28, 1)  # 32x32 = 28x28 'same'-padded by 2
    assert [layer.output.shape[1:] for layer in model.layers[1:6]] == [
        (28, 28, 4), (14, 14, 4), (10, 10, 16), (5, 5, 16), (1, 1, 120)]
    # C1 104, C3 48*25+16, F5 120*(5*25+1), output 1210: the paper's "about 17,000".
    assert parameter_count(model) == 104 + 1216 + 15120 + 1210 == 17650
    assert abs(parameter_count(model) - 17000) / 17000 < 0.05


@pytest.mark.parametrize("variant", ["lenet1", "lenet4"])
def test_short_training_learns_and_keeps_the_tables_zero(variant):
    result = train(variant, epochs=1, seed=2, train_limit=3000)
    assert result.metrics["test_total"] == 10000 and result.metrics["test_accuracy"] > 60
    assert result.metrics["parameters"] == parameter_count(build_model(variant))
    sparse = [layer for layer in result.model.layers if isinstance(layer, SparseConv2D)]
    assert sparse
    for layer in sparse:
        kernel = layer.kernel.numpy()
        absent = layer.connections == 0
        assert np.all(kernel[:, :, absent] == 0.0), f"{layer.name}: absent weights moved"
        assert np.count_nonzero(kernel[:, :, ~absent]) == (~absent).sum() * 25
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    fixed = with_batch_one(result.model)
    np.testing.assert_allclose(fixed(x).numpy(), result.model(x).numpy(), rtol=1e-5, atol=1e-5)
