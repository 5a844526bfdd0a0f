"""Boosted LeNet-4 (LeCun et al. 1998, after Drucker, Schapire and Simard): three LeNet-4s.

- net 1: a LeNet-4 (the `lenet4` recipe, or a given one, e.g. the bundled model);
- net 2: trained on a 50/50 mix of patterns net 1 got right and patterns it got wrong;
- net 3: trained on patterns where nets 1 and 2 disagree.

Net 1 makes few errors on the clean training set, so, as in the paper, the patterns are
filtered from a stream of distorted ones: ``POOL_COPIES`` copies of the training set, each
digit shifted by a random +-``POOL_SHIFT`` pixels (the paper used affine distortions; shifts
are the distortion lenet-edge's recipes use). Nets 2 and 3 start from fresh weights and
train on their filtered sets with the ``BOOST_RECIPE`` (few epochs: the sets are small).

The ensemble rule (outputs added, early exit on net 1's confidence) is lenet_edge.ensemble's;
the float figures here use its float twin with a threshold chosen on training digits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lenet_edge.bundled import ENSEMBLE_VARIANT
from lenet_edge.ensemble import TARGET_NETS, choose_threshold, float_scores
from lenet_edge.train.training import (RECIPES, Recipe, _loss, _optimizer, load_data,
                                       seed_everything, shifted, to_model_input)

POOL_COPIES = 8
POOL_SHIFT = 3
BOOST_RECIPE = Recipe(epochs=20, peak_lr=4e-3, shift=1)
THRESHOLD_DIGITS = 10_000  # training digits the early-exit threshold is chosen on


@dataclass
class BoostedResult:
    models: list  # three keras.Model
    metrics: dict = field(default_factory=dict)
    float_threshold: float = 0.0


def _fit(model, images, labels, recipe: Recipe, epochs: int, rng, progress=None):
    import tensorflow as tf

    batches = -(-len(images) // recipe.batch_size)
    model.compile(optimizer=_optimizer(recipe, epochs * batches), loss=_loss(recipe))
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        x = images[order]
        if recipe.shift:
            x = shifted(x, rng, recipe.shift)
        data = tf.data.Dataset.from_tensor_slices(
            (to_model_input(x), labels[order])).batch(recipe.batch_size)
        model.fit(data, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
        if progress:
            progress(epoch + 1, epochs)
    return model


def _predict(model, images):
    return model.predict(to_model_input(images), batch_size=1000, verbose=0)


def train_boosted(net1=None, seed: int = 0, data_dir=None, epochs: int | None = None,
                  train_limit: int | None = None, pool_copies: int = POOL_COPIES,
                  log=print) -> BoostedResult:
    """Train the three nets. ``net1``: a keras.Model to use as net 1 (else trained with the
    lenet4 recipe); ``epochs`` applies to nets 2 and 3 (and to net 1 when trained here)."""
    from lenet_edge.train.models import build_model
    from lenet_edge.train.training import train as train_single

    started = time.perf_counter()
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    data = load_data(RECIPES["lenet4"], data_dir)
    (train_images, train_labels), (test_images, test_labels) = data["train"], data["test"]
    if train_limit is not None:
        train_images, train_labels = train_images[:train_limit], train_labels[:train_limit]
    reused = net1 is not None
    if net1 is None:
        log("net 1: training a LeNet-4 (lenet4 recipe)")
        net1 = train_single("lenet4", epochs=epochs, seed=seed, data_dir=data_dir,
                            train_limit=train_limit).model
    t_net1 = time.perf_counter() - started

    # The stream of distorted patterns nets 2 and 3 are filtered from.
    pool = np.concatenate([shifted(train_images, rng, POOL_SHIFT) for _ in range(pool_copies)])
    pool_labels = np.tile(train_labels, pool_copies)
    pred1 = np.argmax(_predict(net1, pool), axis=1)
    wrong = np.flatnonzero(pred1 != pool_labels)
    right = np.flatnonzero(pred1 == pool_labels)
    half = min(len(wrong), len(right))  # 50/50 (a weak net 1 may get most patterns wrong)
    pick = np.concatenate([wrong if half == len(wrong) else rng.choice(wrong, half, replace=False),
                           rng.choice(right, size=half, replace=False)])
    log(f"net 2: {half} patterns net 1 got wrong + as many it got right "
        f"(of {len(pool):,} distorted; {len(wrong)} wrong)")
    recipe = BOOST_RECIPE
    n_epochs = epochs or recipe.epochs
    net2 = _fit(build_model("lenet4"), pool[pick], pool_labels[pick], recipe, n_epochs, rng)

    pred2 = np.argmax(_predict(net2, pool), axis=1)
    disagree = np.flatnonzero(pred1 != pred2)
    log(f"net 3: {len(disagree)} patterns where nets 1 and 2 disagree")
    net3 = _fit(build_model("lenet4"), pool[disagree], pool_labels[disagree], recipe,
                n_epochs, rng)
    train_seconds = time.perf_counter() - started

    models = [net1, net2, net3]
    # Float figures: threshold on (clean) training digits, error on the test set.
    sub = train_images[:THRESHOLD_DIGITS]
    threshold = float(choose_threshold(_predict(net1, sub), TARGET_NETS))
    test_out = [_predict(m, test_images) for m in models]
    scores, nets_run = float_scores(test_out, threshold)
    error = lambda pred: round(100.0 * float(np.mean(pred != test_labels)), 2)  # noqa: E731
    metrics = {
        "variant": ENSEMBLE_VARIANT,
        "net1": "given (reused)" if reused else "trained (lenet4 recipe)",
        "net1_seconds": round(t_net1, 1),
        "pool": {"copies": pool_copies, "shift": POOL_SHIFT, "patterns": int(len(pool))},
        "net2_train_patterns": int(len(pick)), "net2_from_wrong": int(half),
        "net1_wrong_in_pool": int(len(wrong)),
        "net3_train_patterns": int(len(disagree)),
        "boost_recipe": {"epochs": n_epochs, "peak_lr": recipe.peak_lr, "shift": recipe.shift,
                         "batch_size": recipe.batch_size},
        "seed": seed,
        "float_threshold": threshold,
        "float_net_errors": [error(np.argmax(o, axis=1)) for o in test_out],
        "float_ensemble_error": error(np.argmax(scores, axis=1)),
        "float_all_three_error": error(np.argmax(sum(test_out), axis=1)),
        "float_nets_per_digit": round(float(np.mean(nets_run)), 3),
        "test_total": int(len(test_labels)),
        "train_images": int(len(train_images)),
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    return BoostedResult(models, metrics, threshold)
