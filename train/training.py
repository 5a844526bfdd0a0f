"""Train a LeNet variant on its data set and measure it on the full test set.

Recipe (the defaults of `lenet-edge train`, per variant in RECIPES): Adam, cosine-decayed
learning rate, batch 128, and each epoch sees every training image shifted by a random
offset of up to +-2 pixels (zero fill), which is what lets a 60k-parameter net pass 99 %
in a few epochs. The small nets (LeNet-1, LeNet-4) get more epochs and a higher peak rate:
with 2.5k-18k parameters an epoch is cheap and they need longer to converge.
The zip1989 nets train on the 16x16 split (train/zip1989.py): ``zip1989`` with the 1989
paper's recipe as the reproduction runs it (plain SGD, one digit per step, learning rate
0.03, 23 passes, mean squared error of tanh(outputs) against targets +1 for the class and
-1 elsewhere, no augmentation); ``zip1989-modern`` with the reproduction's modern one
(cross-entropy, AdamW, +-1 pixel shifts; ReLU and dropout are in the model), followed by
5 quantization-aware epochs (train/qat.py: the int8 conversion's roundings simulated, so
`quantize` loses less; ``qat_epochs``).
Shifts are drawn with numpy from the seed, so the data order and augmentation are exact
functions of the seed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError
from lenet_edge.train.mnist import load_mnist

DEFAULT_SEED = 0
BATCH_SIZE = 128
SHIFT = 2  # max pixels of random translation per axis


@dataclass(frozen=True)
class Recipe:
    epochs: int
    peak_lr: float
    optimizer: str = "adam"  # adam | adamw | sgd
    loss: str = "crossentropy"  # crossentropy | tanh_mse: tanh(logits) against +-1 targets
    schedule: str = "cosine"  # cosine (decayed to 2 % of the peak) | constant
    batch_size: int = BATCH_SIZE
    shift: int = SHIFT  # max pixels of random translation per axis (0: none)
    data: str = "mnist"  # mnist | zip1989 (the 16x16 split)
    weight_decay: float = 0.0  # AdamW's
    # Quantization-aware fine-tuning after the float epochs (train/qat.py; 0: none).
    qat_epochs: int = 0
    qat_lr: float = 3e-4


RECIPES = {
    "modern": Recipe(epochs=12, peak_lr=2e-3),
    "classic": Recipe(epochs=12, peak_lr=2e-3),
    "classic-1998": Recipe(epochs=12, peak_lr=2e-3),
    "lenet1": Recipe(epochs=20, peak_lr=5e-3),
    "lenet4": Recipe(epochs=20, peak_lr=4e-3),
    "zip1989": Recipe(epochs=23, peak_lr=0.03, optimizer="sgd", loss="tanh_mse",
                      schedule="constant", batch_size=1, shift=0, data="zip1989"),
    # Then 5 quantization-aware epochs at 3e-4 (train/qat.py), chosen on 1,000 held-out
    # training digits (benchmarks/zip1989_qat.py; BENCHMARKS.md).
    "zip1989-modern": Recipe(epochs=80, peak_lr=3e-3, optimizer="adamw", batch_size=16,
                             shift=1, data="zip1989", weight_decay=1e-4, qat_epochs=5,
                             qat_lr=3e-4),
}
DEFAULT_EPOCHS = {variant: recipe.epochs for variant, recipe in RECIPES.items()}


@dataclass
class TrainResult:
    model: object  # keras.Model
    metrics: dict = field(default_factory=dict)
    train_data: tuple | None = None  # (images, labels) it trained on
    eval_data: tuple | None = None  # what the metrics measure: the test set or the held-out


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TF, and ask TF for deterministic kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, H, W, 1) in [0, 1]: the models' only preprocessing."""
    return (images.astype(np.float32) / 255.0)[..., None]


def load_data(recipe: Recipe, data_dir=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images, labels), "test": ...} of the recipe's data set (uint8 pixels)."""
    if recipe.data == "zip1989":
        from lenet_edge.train.zip1989 import load_zip1989

        return load_zip1989(data_dir)
    return {split: load_mnist(split, data_dir) for split in ("train", "test")}


def shifted(images: np.ndarray, rng: np.random.Generator, max_shift: int = SHIFT) -> np.ndarray:
    """Each image moved by its own random (dy, dx) in [-max_shift, max_shift], zero-filled."""
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    oy = rng.integers(0, 2 * max_shift + 1, n)
    ox = rng.integers(0, 2 * max_shift + 1, n)
    rows = oy[:, None] + np.arange(h)[None, :]  # (n, h)
    cols = ox[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def parameter_count(model) -> int:
    """Trainable parameters, counting a masked layer's connected weights only."""
    return int(sum(layer.count_params() for layer in model.layers if layer.weights))


def evaluate_float(model, images: np.ndarray, labels: np.ndarray) -> dict:
    logits = model.predict(to_model_input(images), batch_size=500, verbose=0)
    return accuracy_metrics(np.argmax(logits, axis=1), labels)


def accuracy_metrics(predicted: np.ndarray, labels: np.ndarray) -> dict:
    correct = predicted == labels
    classes = range(10) if labels.size and labels.max() <= 9 else sorted(set(labels.tolist()))
    per_class = {str(c): round(float(correct[labels == c].mean()) * 100, 2) for c in classes
                 if (labels == c).any()}
    return {"accuracy": round(float(correct.mean()) * 100, 2), "correct": int(correct.sum()),
            "total": int(len(labels)), "per_class_accuracy": per_class}


def train(variant: str, epochs: int | None = None, seed: int = DEFAULT_SEED,
          data_dir: str | os.PathLike | None = None, train_limit: int | None = None,
          augment: bool = True, progress=None, qat_epochs: int | None = None,
          holdout: int = 0) -> TrainResult:
    """Train ``variant``; ``train_limit`` uses only the first N training images (tests).

    ``progress(epoch, epochs, batch, batches, logs)`` is called after every batch.
    ``qat_epochs``: quantization-aware fine-tuning epochs after the float ones (the
    recipe's by default; train/qat.py). ``holdout``: keep N training digits (a fixed draw)
    out of training and measure on them instead of the test set, which is then not looked
    at (choosing a recipe); the model and the held-out digits are in the result.
    """
    import keras

    from lenet_edge.train.models import build_model

    recipe = RECIPES[variant]
    epochs = recipe.epochs if epochs is None else epochs
    qat_epochs = recipe.qat_epochs if qat_epochs is None else qat_epochs
    if qat_epochs:
        from lenet_edge.train.qat import QAT_VARIANTS

        if variant not in QAT_VARIANTS:
            raise LenetEdgeError(f"quantization-aware training (--qat-epochs) is implemented "
                                 f"for {', '.join(QAT_VARIANTS)} only, not {variant}")
    seed_everything(seed)
    started = time.perf_counter()
    data = load_data(recipe, data_dir)
    (train_images, train_labels), (test_images, test_labels) = data["train"], data["test"]
    if train_limit is not None:
        train_images, train_labels = train_images[:train_limit], train_labels[:train_limit]
    if holdout:
        (train_images, train_labels), (test_images, test_labels) = split_holdout(
            train_images, train_labels, holdout)

    model = build_model(variant)
    batches = -(-len(train_images) // recipe.batch_size)
    model.compile(optimizer=_optimizer(recipe, epochs * batches), loss=_loss(recipe),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")
                           if recipe.loss == "tanh_mse" else "accuracy"],
                  # One-digit steps (zip1989's SGD) run 256 to a call: no Python per step.
                  steps_per_execution=256 if recipe.batch_size == 1 else 1)
    rng = np.random.default_rng(seed)
    callbacks = [_ProgressCallback(progress, epochs + qat_epochs, batches)] if progress else []
    fit_epochs(model, recipe, train_images, train_labels, range(epochs), rng, augment,
               callbacks)
    float_seconds = time.perf_counter() - started
    before_qat = evaluate_float(model, test_images, test_labels) if qat_epochs else None
    qat_ranges = None
    if qat_epochs:
        qat_ranges = quantization_aware_finetune(
            model, recipe, train_images, train_labels, range(epochs, epochs + qat_epochs),
            rng, augment, callbacks)
    train_seconds = time.perf_counter() - started

    test = evaluate_float(model, test_images, test_labels)
    measured_on = "validation" if holdout else "test"
    metrics = {
        "variant": variant,
        f"{measured_on}_accuracy": test["accuracy"],
        f"{measured_on}_correct": test["correct"],
        f"{measured_on}_total": test["total"],
        "per_class_accuracy": test["per_class_accuracy"],
        "parameters": parameter_count(model),
        "epochs": epochs,
        "seed": seed,
        "batch_size": recipe.batch_size,
        "optimizer": recipe.optimizer,
        "loss": recipe.loss,
        "peak_learning_rate": recipe.peak_lr,
        "learning_rate_schedule": recipe.schedule,
        "augmentation": f"random shift +-{recipe.shift} px" if augment and recipe.shift
        else "none",
        "data": recipe.data,
        "train_images": int(len(train_images)),
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if holdout:
        metrics["held_out_training_digits"] = holdout
    if qat_epochs:
        metrics["quantization_aware"] = {
            "epochs": qat_epochs, "peak_learning_rate": recipe.qat_lr,
            f"{measured_on}_accuracy_before": before_qat["accuracy"],
            "float_train_seconds": round(float_seconds, 1),
            "activation_ranges": {k: [round(lo, 4), round(hi, 4)]
                                  for k, (lo, hi) in qat_ranges.items()}}
    return TrainResult(model, metrics, (train_images, train_labels), (test_images, test_labels))


HOLDOUT_SEED = 2026  # the held-out draw does not depend on the training seed


def split_holdout(images: np.ndarray, labels: np.ndarray, count: int):
    """((train images, labels), (held-out images, labels)): ``count`` digits drawn with a
    fixed seed kept out of training, to choose a recipe without the test set."""
    if not 0 < count < len(images):
        raise LenetEdgeError(f"cannot hold out {count} of {len(images)} training digits")
    out = np.zeros(len(images), bool)
    out[np.random.default_rng(HOLDOUT_SEED).choice(len(images), count, replace=False)] = True
    return (images[~out], labels[~out]), (images[out], labels[out])


def fit_epochs(model, recipe: Recipe, images: np.ndarray, labels: np.ndarray, epochs,
               rng: np.random.Generator, augment: bool, callbacks, before_epoch=None) -> None:
    """One ``model.fit`` per epoch over a fresh permutation (and shifts) drawn from ``rng``;
    ``before_epoch()`` runs first each time (QAT's re-calibration)."""
    import tensorflow as tf

    for epoch in epochs:
        if before_epoch:
            before_epoch()
        order = rng.permutation(len(images))
        shuffled = images[order]
        if augment and recipe.shift:
            shuffled = shifted(shuffled, rng, recipe.shift)
        # A plain batched Dataset (already shuffled above): Keras' numpy adapter would add a
        # map op that makes tf.data print a spurious error line each epoch.
        data = tf.data.Dataset.from_tensor_slices(
            (to_model_input(shuffled), _targets(recipe, labels[order]))
        ).batch(recipe.batch_size)
        model.fit(data, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0,
                  callbacks=callbacks)


def quantization_aware_finetune(model, recipe: Recipe, images: np.ndarray,
                                labels: np.ndarray, epochs, rng: np.random.Generator,
                                augment: bool = True, callbacks=()) -> dict:
    """Fine-tune ``model`` in place through its int8 simulation (train/qat.py): AdamW at
    the recipe's QAT peak rate, cosine-decayed, the float phase's batch, shifts and loss;
    activation ranges re-measured on the converter's calibration images before every
    epoch. Returns the last ranges."""
    import keras

    from lenet_edge.train.calibration import calibration_images
    from lenet_edge.train.qat import qat_model

    qat = qat_model(model)
    calibration = calibration_images(images)
    batches = -(-len(images) // recipe.batch_size)
    steps = len(epochs) * batches
    qat.compile(optimizer=keras.optimizers.AdamW(
        keras.optimizers.schedules.CosineDecay(recipe.qat_lr, decay_steps=steps, alpha=0.02),
        weight_decay=recipe.weight_decay), loss=_loss(recipe), metrics=["accuracy"])
    fit_epochs(qat, recipe, images, labels, epochs, rng, augment, list(callbacks),
               before_epoch=lambda: qat.calibrate(calibration))
    return qat.calibrate(calibration)


def _optimizer(recipe: Recipe, steps: int):
    import keras

    lr = recipe.peak_lr
    if recipe.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(recipe.peak_lr, decay_steps=steps, alpha=0.02)
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(lr)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(lr)


def _loss(recipe: Recipe):
    import keras

    if recipe.loss == "tanh_mse":
        def tanh_mse(targets, logits):
            # The 1989 net's cost: squared error of its tanh outputs against +-1 targets,
            # averaged over the 10 outputs (the reproduction's torch.mean).
            return keras.ops.mean(keras.ops.square(keras.ops.tanh(logits) - targets), axis=-1)
        return tanh_mse
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _targets(recipe: Recipe, labels: np.ndarray) -> np.ndarray:
    """Labels for sparse cross-entropy; for tanh_mse, +1 at the class and -1 elsewhere."""
    if recipe.loss != "tanh_mse":
        return labels
    targets = np.full((len(labels), 10), -1.0, dtype=np.float32)
    targets[np.arange(len(labels)), labels] = 1.0
    return targets


def save(result: TrainResult, out_dir: Path) -> tuple[Path, Path]:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "lenet5.keras"
    save_keras(result.model, model_path)
    metrics_path = out_dir / "train_metrics.json"
    metrics_path.write_text(json.dumps(result.metrics, indent=2) + "\n")
    return model_path, metrics_path


def save_keras(model, path: Path) -> None:
    """Save the inference model only (no optimizer state, no compile config: a third of the
    size), with the zip's timestamps and Keras' date_saved pinned, so the same weights
    always give the same bytes."""
    import json
    import zipfile

    from lenet_edge.train.models import build_model, variant_of

    clean = build_model(variant_of(model))
    clean.set_weights(model.get_weights())
    clean.save(path)
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w") as zout:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1980-01-01@00:00:00"
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            zout.writestr(fixed, data)


def _renumber_shared_objects(config):
    """Keras names shared config objects by their Python id(); number them in order of
    appearance instead (same object, same number), so the file does not change per process."""
    numbers = {}

    def walk(node):
        if isinstance(node, dict):
            return {k: numbers.setdefault(v, len(numbers) + 1) if k == "shared_object_id"
                    else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(config)


class _ProgressCallback:
    """Adapter from Keras' callback API to a plain function (keeps rich out of training)."""

    def __new__(cls, report, epochs, batches):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                report(self.epoch, epochs, batch + 1, batches, logs or {})

        return Callback()
