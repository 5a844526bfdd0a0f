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
DEFAULT_VARIANT = "modern"
VARIANT_TITLES = {"modern": "modern LeNet-5", "classic": "classic LeNet-5",
                  "classic-1998": "LeNet-5 with the 1998 details", "lenet1": "LeNet-1",
                  "lenet4": "LeNet-4", "zip1989": "1989 zip-code net",
                  "zip1989-modern": "1989 zip-code net, modern recipe"}

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
