r"""The 8x8 handwritten digits of scikit-learn, with the project's fixed train/valid/test split.

The 1,797 images of :func:`sklearn.datasets.load_digits` (bundled with
scikit-learn, no download) have 64 pixels with integer values 0..16
(:data:`DIGITS_LEVELS` = 17 levels). The split is the one of the project's
benchmark protocol: ``perm = np.random.default_rng(0).permutation(1797)``,
train ``perm[:1200]``, valid ``perm[1200:1497]``, test ``perm[1497:]``.

A continuous density is scored on :func:`dequantize`-d data (uniform noise
of bin width 1), and its NLL turned into bits/dim by
:func:`gendist.metrics.bits_per_dim` with ``scale=1`` (the default without
``levels``).
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import torch
from torch import Tensor

__all__ = ["DIGITS_LEVELS", "DIGITS_SHAPE", "DIGITS_SPLITS", "load_digits", "dequantize"]

DIGITS_LEVELS = 17
r"""The number of integer levels of a pixel (values 0..16)."""

DIGITS_SHAPE = (8, 8)
r"""The (height, width) of an image; a row of :func:`load_digits` is one, row-major."""

DIGITS_SPLITS = {"train": (0, 1200), "valid": (1200, 1497), "test": (1497, 1797)}
r"""The ``(start, stop)`` slice of the fixed permutation for each split."""

_N = 1797


Split = Literal["train", "valid", "test", "all"]


@overload
def load_digits(split: Split = "train", labels: Literal[False] = False) -> Tensor: ...


@overload
def load_digits(split: Split = "train", *, labels: Literal[True]) -> tuple[Tensor, Tensor]: ...


@overload
def load_digits(split: Split, labels: Literal[True]) -> tuple[Tensor, Tensor]: ...


def load_digits(split: Split = "train", labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    r"""Loads a split of the 8x8 digits as a float tensor of integer levels (and, if asked, their classes).

    Arguments:
        split: ``"train"`` (1200 images), ``"valid"`` (297), ``"test"`` (300) or
            ``"all"`` (1797, in scikit-learn's order).
        labels: Also return the classes 0..9 (scikit-learn's ``target``), in the same order as the images.

    Returns:
        A tensor of shape ``(N, 64)`` and torch's default dtype, with integer values in 0..16; with
        ``labels=True``, a pair ``(x, y)`` with ``y`` a ``torch.long`` tensor of shape ``(N,)``.

    Raises:
        ImportError: If scikit-learn is not installed.
        ValueError: If ``split`` is unknown.

    Example:
        >>> x = load_digits("test")  # doctest: +SKIP
        >>> x.shape, int(x.min()), int(x.max())  # doctest: +SKIP
        (torch.Size([300, 64]), 0, 16)
        >>> x, y = load_digits("test", labels=True)  # doctest: +SKIP
        >>> y.dtype, y[:5]  # doctest: +SKIP
        (torch.int64, tensor([6, 5, 5, 0, 4]))
    """
    if not isinstance(labels, bool):
        raise TypeError(f"load_digits: labels must be True or False, got {labels!r}")
    if split != "all" and split not in DIGITS_SPLITS:
        raise ValueError(f"load_digits: unknown split {split!r}; use 'train', 'valid', 'test' or 'all'")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn for its bundled copy of the 8x8 digits: "
            "pip install scikit-learn (or pip install gendist[data])"
        ) from error
    bunch = _sk_load_digits()
    data = np.asarray(bunch.data, dtype=np.float64)
    target = np.asarray(bunch.target, dtype=np.int64)
    if data.shape != (_N, 64) or target.shape != (_N,):
        raise RuntimeError(f"load_digits: expected scikit-learn's digits of shape ({_N}, 64), got {data.shape}")
    if split != "all":
        start, stop = DIGITS_SPLITS[split]
        index = np.random.default_rng(0).permutation(_N)[start:stop]
        data, target = data[index], target[index]
    x = torch.as_tensor(data, dtype=torch.get_default_dtype())
    return (x, torch.as_tensor(target, dtype=torch.long)) if labels else x


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Uniform dequantization: adds noise :math:`u \sim \mathcal{U}[0, 1)` to integer levels.

    Arguments:
        x: Data with integer values (any shape, any dtype).
        generator: The random number generator of the noise (default: torch's global one).

    Returns:
        A float tensor of ``x``'s shape (``x``'s dtype if floating, else torch's default),
        with each value in :math:`[x, x + 1)`.

    Example:
        >>> y = dequantize(torch.tensor([0, 3, 16]), generator=torch.Generator().manual_seed(0))
        >>> bool(((y >= torch.tensor([0.0, 3.0, 16.0])) & (y < torch.tensor([1.0, 4.0, 17.0]))).all())
        True
    """
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    x = x.to(dtype)
    return x + torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)
