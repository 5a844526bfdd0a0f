#!/usr/bin/env python3
"""Regenerate the pixel coder's probability tables in firmware_templates/agent/lenet_agent.c.

    LENET_EDGE_DATA=../shared/data/mnist .venv/bin/python scripts/make_pixel_tables.py [--check]

The tables are counted on the 60,000 MNIST training images (host/pixel_coder.py,
`train_tables`: integer counts, one rounding rule), so the same data gives the same bytes.
`--check` changes nothing and exits 1 if the committed block differs from the regenerated one.
"""

from __future__ import annotations

import argparse
import sys

from lenet_edge.host import pixel_coder as C
from lenet_edge.train.mnist import load_mnist


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="only compare with the committed tables")
    args = parser.parse_args()
    images, _ = load_mnist("train")
    block = C.table_block(C.train_tables(images))
    path = C.agent_source_path()
    text = path.read_text()
    start, end = text.find(C.TABLE_BEGIN), text.find(C.TABLE_END)
    if start < 0 or end < 0:
        print(f"error: {path} has no table markers", file=sys.stderr)
        return 1
    new = text[:start] + block + text[end + len(C.TABLE_END):]
    if args.check:
        same = new == text
        print(f"{path}: tables {'match' if same else 'DIFFER from'} the training set's")
        return 0 if same else 1
    if new != text:
        path.write_text(new)
    print(f"{path}: {C.TABLE_SIZE} table bytes written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
