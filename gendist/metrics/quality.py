r"""One row of the sample-quality table every family is measured on: C2ST, PRDC and the Fréchet distance."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from gendist._checks import check_integer
from gendist.metrics.classifier import classifier_two_sample_test
from gendist.metrics.frechet import frechet_distance
from gendist.metrics.precision_recall import _check_k, prdc
from gendist.metrics.two_sample import _samples

__all__ = ["sample_quality"]


def _features(features: Callable[[Tensor], Tensor], x: Tensor, name: str) -> Tensor:
    where = f"features({name})"
    with torch.no_grad():
        out = features(x)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{where} must be a tensor of shape ({x.shape[0]}, F) (one row per sample), got {got}")
    return _samples(out, where)


def sample_quality(
    real: Tensor,
    fake: Tensor,
    *,
    features: Callable[[Tensor], Tensor] | None = None,
    k: int = 5,
    c2st: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    r"""Sample-quality metrics of ``fake`` against ``real``: one row of a comparison table.

    - ``"c2st"``: the held-out accuracy of :func:`~gendist.metrics.classifier_two_sample_test` on the raw
      flattened samples (0.5: indistinguishable, 1: disjoint); NaN when ``c2st=False``.
    - ``"precision"``, ``"recall"``, ``"density"``, ``"coverage"``: :func:`~gendist.metrics.precision_recall.prdc` with
      ``k`` neighbours, in the feature space.
    - ``"frechet"``: :func:`~gendist.metrics.frechet.frechet_distance` in the feature space (FID with an
      Inception network; here whatever ``features`` is, e.g. a :class:`~gendist.metrics.frechet.FeatureClassifier`'s
      ``features``).

    Arguments:
        real: The real samples, shape ``(N, ...)``.
        fake: The model's samples, shape ``(M, ...)``, with as many values per sample as ``real``.
        features: A callable mapping samples ``(N, ...)`` to features ``(N, F)`` (run without gradients);
            default: the flattened samples themselves.
        k: The neighbour of the PRDC radii; each set needs more than ``k`` samples.
        c2st: Whether to run the classifier two-sample test (the slowest part: a few seconds).
        generator: The random generator of the C2ST; default: a fresh one seeded with 0.

    Returns:
        A dict with the keys ``c2st``, ``precision``, ``recall``, ``density``, ``coverage``, ``frechet``.

    Raises:
        ValueError: On NaN/inf in the samples or features (naming which), mismatched sample or feature
            dimensions, or a set of at most ``k`` samples.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> row = sample_quality(torch.randn(100, 2, generator=g), torch.randn(100, 2, generator=g), c2st=False)
        >>> sorted(row), row["precision"] > 0.8, row["frechet"] < 0.1
        (['c2st', 'coverage', 'density', 'frechet', 'precision', 'recall'], True, True)
    """
    k = check_integer("k", k)
    x, y = _samples(real, "real"), _samples(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"real and fake samples have different sizes: {x.shape[1]} and {y.shape[1]} values per sample "
            f"(shapes {tuple(real.shape)} and {tuple(fake.shape)})"
        )
    _check_k(x.shape[0], k, "real")
    _check_k(y.shape[0], k, "fake")
    if features is None:
        fx, fy = x, y
    else:
        if not callable(features):
            raise ValueError(f"features must be a callable mapping (N, ...) samples to (N, F), got {features!r}")
        fx, fy = _features(features, real, "real"), _features(features, fake, "fake")
        if fx.shape[1] != fy.shape[1]:
            raise ValueError(
                f"features(real) and features(fake) have different dimensions: {fx.shape[1]} and {fy.shape[1]}"
            )
    row = {"c2st": classifier_two_sample_test(x, y, generator=generator).statistic if c2st else math.nan}
    row.update(prdc(fx, fy, k)._asdict())
    row["frechet"] = frechet_distance(fx, fy)
    return row
