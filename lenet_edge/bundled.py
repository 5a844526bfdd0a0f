"""The models shipped inside the package, so export works with no data and no training.

Regenerate them with `scripts/make_bundled_models.sh` (the exact train + quantize
commands are in that script and in README.md).
"""

from __future__ import annotations

from pathlib import Path

from lenet_edge.errors import LenetEdgeError

ASSETS = Path(__file__).resolve().parent / "assets"
# The LeNet family members lenet-edge trains and bundles: the one list every command's
# --variant choices come from.
VARIANTS = ("modern", "classic", "classic-1998", "lenet1", "lenet4", "zip1989",
            "zip1989-modern")
# Boosted LeNet-4 is bundled too, but as an ensemble folder (three nets and a rule,
# lenet_edge/ensemble.py), not one model: the commands that take it route it on this name.
ENSEMBLE_VARIANT = "boosted-lenet4"
FAMILY = VARIANTS + (ENSEMBLE_VARIANT,)
DEFAULT_VARIANT = "modern"
VARIANT_TITLES = {"modern": "modern LeNet-5", "classic": "classic LeNet-5",
                  "classic-1998": "LeNet-5 with the 1998 details", "lenet1": "LeNet-1",
                  "lenet4": "LeNet-4", "zip1989": "1989 zip-code net",
                  "zip1989-modern": "1989 zip-code net, modern recipe",
                  ENSEMBLE_VARIANT: "Boosted LeNet-4"}

_FILES = {"tflite": "lenet5_int8.tflite", "keras": "lenet5.keras"}


def asset_dir(variant: str) -> Path:
    """lenet_edge/assets/<variant>/, '-' written '_' (a folder name setuptools installs as
    package data: zip1989-modern -> zip1989_modern)."""
    return ASSETS / variant.replace("-", "_")


def bundled_model(variant: str = DEFAULT_VARIANT, kind: str = "tflite") -> Path:
    """Path of a bundled model: kind 'tflite' (int8) or 'keras' (float)."""
    if variant not in VARIANTS:
        raise LenetEdgeError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    path = asset_dir(variant) / _FILES[kind]
    if not path.is_file():
        raise LenetEdgeError(
            f"bundled {variant} model missing at {path}; regenerate it with "
            "scripts/make_bundled_models.sh"
        )
    return path


def bundled_ensemble_dir() -> Path:
    """The bundled Boosted LeNet-4 ensemble folder (ensemble.json + net{1,2,3}_int8.tflite)."""
    return asset_dir(ENSEMBLE_VARIANT)
