r"""Statically binarized MNIST (Larochelle & Murray, 2011) from a local ``.npz`` file.

The file holds keys ``train`` (50,000 images), ``valid`` (10,000) and ``test``
(10,000), each ``uint8`` of shape ``(N, 98)``: the 784 binary pixels of a
row-major 28x28 image packed 8 to a byte. Nothing is downloaded; the file is
looked for, in order, at the ``path`` argument, at the ``GENDIST_DATA``
environment variable (the file itself or a folder holding it), and at
``../shared/data/binarized_mnist.npz`` relative to the project root.

Report test NLL in nats (a sum over the 784 pixels, averaged over images);
do not compare with dynamically binarized numbers, which are about 2 nats easier.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["MNIST_FILE", "MNIST_LEVELS", "MNIST_SHAPE", "load_binarized_mnist", "binarized_mnist_path"]

MNIST_FILE = "binarized_mnist.npz"
r"""The file name of the statically binarized MNIST."""

MNIST_SHAPE = (28, 28)
r"""The (height, width) of an image; a row of :func:`load_binarized_mnist` is one, row-major."""

MNIST_LEVELS = 2
r"""The number of levels of a pixel: binarized, 0 or 1."""

_SPLITS = ("train", "valid", "test")


def _candidates(path: str | os.PathLike[str] | None) -> list[Path]:
    if path is not None:
        return [Path(path)]
    env = os.environ.get("GENDIST_DATA")
    if env:
        env_path = Path(env)
        return [env_path / MNIST_FILE if env_path.is_dir() else env_path]
    return [Path(__file__).resolve().parents[3] / "shared" / "data" / MNIST_FILE]


def binarized_mnist_path(path: str | os.PathLike[str] | None = None) -> Path:
    r"""Resolves where the binarized MNIST file is.

    Arguments:
        path: An explicit path to the ``.npz`` file; if ``None``, the ``GENDIST_DATA``
            environment variable (a file or a folder holding ``binarized_mnist.npz``),
            else ``<project root>/../shared/data/binarized_mnist.npz``.

    Returns:
        The path of the file.

    Raises:
        FileNotFoundError: If the file is not where it was looked for (the message names the place).

    Example:
        >>> binarized_mnist_path("/nonexistent/mnist.npz")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: binarized MNIST not found at /nonexistent/mnist.npz (from the path argument); ...
    """
    source = (
        "the path argument"
        if path is not None
        else ("the GENDIST_DATA environment variable" if os.environ.get("GENDIST_DATA") else "the default location")
    )
    (candidate,) = _candidates(path)
    if not candidate.is_file():
        raise FileNotFoundError(
            f"binarized MNIST not found at {candidate} (from {source}); "
            f"pass path=, or set GENDIST_DATA to the file or its folder"
        )
    return candidate


def load_binarized_mnist(
    split: Literal["train", "valid", "test"] = "train",
    path: str | os.PathLike[str] | None = None,
) -> Tensor:
    r"""Loads a split of statically binarized MNIST as a float tensor of 0s and 1s.

    Arguments:
        split: ``"train"`` (50,000 images), ``"valid"`` (10,000) or ``"test"`` (10,000).
        path: The ``.npz`` file; see :func:`binarized_mnist_path` for where it is looked for otherwise.

    Returns:
        A tensor of shape ``(N, 784)`` and torch's default dtype with values 0 and 1,
        each row a row-major 28x28 image.

    Raises:
        ValueError: If ``split`` is unknown or the file lacks it or has the wrong shape.
        FileNotFoundError: If the file is not found.

    Example:
        >>> x = load_binarized_mnist("test")  # doctest: +SKIP
        >>> x.shape, round(x.mean().item(), 4)  # doctest: +SKIP
        (torch.Size([10000, 784]), 0.1325)
    """
    if split not in _SPLITS:
        raise ValueError(f"load_binarized_mnist: unknown split {split!r}; use 'train', 'valid' or 'test'")
    file = binarized_mnist_path(path)
    with np.load(file) as archive:
        if split not in archive.files:
            raise ValueError(f"{file}: no array {split!r} (it has {', '.join(archive.files)})")
        packed = archive[split]
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] * 8 < 784:
        raise ValueError(
            f"{file}: array {split!r} is {packed.dtype} of shape {packed.shape}; expected uint8 of shape (N, 98)"
        )
    pixels = np.unpackbits(packed, axis=1)[:, :784]
    # unpackbits leaves the pixels column-major: rows made contiguous, so a mini-batch gathers whole rows
    return torch.as_tensor(np.ascontiguousarray(pixels), dtype=torch.get_default_dtype()).contiguous()
