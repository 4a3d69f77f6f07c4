r"""``--data``: a 2-D density, the 8x8 digits, binarized MNIST or a user's table, as train/valid/test rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gendist import data as gdata
from gendist.cli.errors import UsageError, user_input

__all__ = ["Data", "DENSITY_SIZES", "IMAGES", "load_data"]

DENSITY_SIZES = (20000, 5000, 20000)
r"""The train/valid/test sizes drawn from a 2-D density."""

TABLE_HOLDOUT = 10
r"""A table's valid and test splits are each 1/TABLE_HOLDOUT of its rows (80/10/10)."""

MIN_ROWS = 10
r"""The fewest rows of a table that split into train/valid/test."""

IMAGES = {
    "digits": (gdata.load_digits, gdata.DIGITS_LEVELS, gdata.DIGITS_SHAPE,
               "reference test bits/dim: full-covariance Gaussian 2.943, categorical MADE 2.252, NSF 2.210"),
    "mnist": (gdata.load_binarized_mnist, gdata.MNIST_LEVELS, gdata.MNIST_SHAPE,
              "reference test NLL: NADE 88.86, MADE 88.04, PixelCNN 81.30"),
}
r"""The bundled image data: loader of a split, levels, image shape, and published numbers to compare with
(digits: anchors.md, same split and dequantization; MNIST: test NLL in nats, statically binarized)."""


@dataclass(frozen=True)
class Data:
    r"""The rows of a data set, split, and what is known about them."""

    name: str
    kind: str  # "density", "digits", "mnist" or "table"
    train: Tensor
    valid: Tensor
    test: Tensor
    names: list[str] | None = None  # column names
    levels: int | None = None  # integer levels of discrete data
    image_shape: tuple[int, int] | None = None
    entropy: float | None = None  # the exact entropy of a 2-D density
    reference: str | None = None  # a line of published numbers

    @property
    def features(self) -> int:
        r"""The number of values in a row."""
        return self.train.shape[-1]


def _split(x: Tensor, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = n_valid = max(1, len(x) // TABLE_HOLDOUT)
    test, valid, train = perm[:n_test], perm[n_test : n_test + n_valid], perm[n_test + n_valid :]
    return x[train], x[valid], x[test]


def _density(name: str, seed: int) -> Data:
    density = gdata.densities[name]()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        train, valid, test = (density.sample((n,)) for n in DENSITY_SIZES)
    entropy = float(density.entropy()) if density.log_prob_kind == "exact" else None
    return Data(name, "density", train, valid, test, names=["x", "y"], entropy=entropy)


def _images(name: str) -> Data:
    load, levels, shape, reference = IMAGES[name]
    with user_input(FileNotFoundError, ImportError):  # MNIST's file not found; scikit-learn not installed
        train, valid, test = (load(s) for s in ("train", "valid", "test"))
    return Data(name, name, train, valid, test, levels=levels, image_shape=shape, reference=reference)


def _table(name: str, columns: str | None, seed: int) -> Data:
    path = Path(name)
    with user_input(FileNotFoundError, ValueError, OSError):  # missing, unreadable or malformed
        x, names = gdata.load_table(path, columns=columns.split(",") if columns else None)
    if len(x) < MIN_ROWS:
        raise UsageError(f"{path}: {len(x)} rows are too few to split into train/valid/test (need {MIN_ROWS} or more)")
    train, valid, test = _split(x.to(torch.get_default_dtype()), seed)
    return Data(name, "table", train, valid, test, names=names)


def load_data(name: str, columns: str | None, seed: int) -> Data:
    r"""Resolve ``--data`` (and ``--columns``, ``--seed``) into its train/valid/test rows."""
    if name in gdata.densities:
        return _density(name, seed)
    if name in IMAGES:
        return _images(name)
    if not Path(name).suffix:
        known = ", ".join([*gdata.densities, *IMAGES])
        raise UsageError(f"unknown data {name!r}: give a .npy, .npz or .csv file or one of {known}")
    return _table(name, columns, seed)
