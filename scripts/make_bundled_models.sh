#!/usr/bin/env bash
# Regenerate the bundled models in lenet_edge/assets/<variant>/ ('-' as '_') with the default settings
# of `lenet-edge train` and `lenet-edge quantize` (the exact commands below).
# Needs MNIST: --data-less, so $LENET_EDGE_DATA, the cache or a download (see README).
# The recipes are train/training.py's RECIPES: zip1989-modern's includes its 5
# quantization-aware epochs after the 80 float ones (train/qat.py), so its line is the same
# `train` as every variant's (`--qat-epochs 0` would give the float-only model).
# Usage: scripts/make_bundled_models.sh [modern|classic|classic-1998|lenet1|lenet4|zip1989|zip1989-modern|boosted-lenet4 ...]
#        (default: all; boosted-lenet4 after lenet4: it reuses the bundled LeNet-4 as net 1,
#        trains nets 2 and 3 and quantizes all three in one command)
set -euo pipefail
cd "$(dirname "$0")/.."
LENET_EDGE=.venv/bin/lenet-edge
VARIANTS=("${@:-modern classic classic-1998 lenet1 lenet4 zip1989 zip1989-modern boosted-lenet4}")
# shellcheck disable=SC2068
for variant in ${VARIANTS[@]}; do
    out=lenet_edge/assets/${variant//-/_}  # zip1989-modern -> zip1989_modern (a package-data name)
    if [ "$variant" = boosted-lenet4 ]; then
        "$LENET_EDGE" train --variant boosted-lenet4 --net1 lenet_edge/assets/lenet4/lenet5.keras \
            --seed 0 --out "$out"
        continue
    fi
    "$LENET_EDGE" train --variant "$variant" --seed 0 --out "$out"
    "$LENET_EDGE" quantize --model "$out/lenet5.keras" --out "$out"
done
