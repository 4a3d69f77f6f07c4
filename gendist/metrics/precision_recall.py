r"""Precision and recall (Kynkäänniemi et al., 2019), density and coverage (Naeem et al., 2020) on features.

Each sample's :math:`k`-nearest-neighbour ball :math:`B(x_i, r_i)`, with :math:`r_i` the distance from
:math:`x_i` to its :math:`k`-th nearest neighbour in its own set, estimates the support of its
distribution. For real features :math:`X = \{x_i\}_{i=1}^N` and fake ones :math:`Y = \{y_j\}_{j=1}^M`:

.. math::
    \text{precision} = \frac{1}{M} \sum_j 1\Big[y_j \in \bigcup_i B(x_i, r_i)\Big], \qquad
    \text{recall} = \frac{1}{N} \sum_i 1\Big[x_i \in \bigcup_j B(y_j, s_j)\Big],

.. math::
    \text{density} = \frac{1}{kM} \sum_j \sum_i 1[y_j \in B(x_i, r_i)], \qquad
    \text{coverage} = \frac{1}{N} \sum_i 1\Big[\min_j \lVert x_i - y_j \rVert < r_i\Big],

with open balls (strict inequalities), as in the authors' code. Density is not bounded by 1 (fakes
gathered where the real balls overlap most score above 1); for two identical sets without ties, precision,
recall and coverage are 1 and density is exactly 1 (each point lies in its own ball and in the balls of
those of which it is one of the :math:`k - 1` strictly nearer neighbours).

The distances are exact (``torch.cdist`` on the differences, in float64), computed by blocks of rows so
that memory stays bounded (a 10k x 10k comparison never holds the full matrix).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gendist._checks import check_integer
from gendist.metrics.two_sample import _samples

__all__ = ["PRDC", "prdc"]

_BLOCK = 1 << 22  # distances per block (32 MiB in float64)


class PRDC(NamedTuple):
    r"""Precision, recall, density and coverage of fake features against real ones (see :func:`prdc`)."""

    precision: float
    recall: float
    density: float
    coverage: float


def _rows(columns: int, chunk: int | None) -> int:
    return chunk if chunk is not None else max(1, _BLOCK // max(columns, 1))


def _check_k(n: int, k: int, name: str) -> None:
    if n <= k:
        raise ValueError(
            f"{name} needs more than k={k} samples (at least {k + 1}) for k-nearest-neighbour radii, got {n}"
        )


def _cdist(a: Tensor, b: Tensor) -> Tensor:
    r"""Exact Euclidean distances: from the differences, not :math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2 a \cdot b`
    (whose cancellation leaves a point about 1e-7 away from itself in float64 and flips the strict tests)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _radii(x: Tensor, k: int, rows: int) -> Tensor:
    r"""The distance from each point of ``x`` to its ``k``-th nearest other point."""
    # the k+1-th smallest distance of a row counts the point itself (at distance 0)
    return torch.cat([_cdist(x[i : i + rows], x).kthvalue(k + 1, dim=1).values for i in range(0, len(x), rows)])


def prdc(real_features: Tensor, fake_features: Tensor, k: int = 5, *, chunk: int | None = None) -> PRDC:
    r"""Improved precision and recall, density and coverage of fake features against real ones.

    Precision (the share of fakes inside the real manifold) and density measure fidelity; recall (the
    share of reals inside the fake manifold) and coverage (the share of reals with a fake inside their
    own ball) measure diversity. Density and coverage are the robust versions: an outlier among the reals
    inflates the real manifold, which precision trusts and density does not. Naeem et al. recommend
    :math:`k = 5` and a few thousand samples a side.

    Arguments:
        real_features: The real features :math:`X`, shape ``(N, F)`` (trailing dimensions are flattened).
        fake_features: The fake features :math:`Y`, shape ``(M, F)``.
        k: The neighbour :math:`k` whose distance is a ball's radius.
        chunk: The number of rows of each block of distances; default: as many as fit in :math:`2^{22}`
            distances. The result does not depend on it.

    Returns:
        A :class:`PRDC` ``(precision, recall, density, coverage)``, computed in float64 on
        ``real_features``'s device.

    Raises:
        ValueError: On NaN/inf, different feature dimensions, or a set of at most ``k`` samples.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
        >>> prdc(x, x)
        PRDC(precision=1.0, recall=1.0, density=1.0, coverage=1.0)
        >>> prdc(x, y + 100.0)
        PRDC(precision=0.0, recall=0.0, density=0.0, coverage=0.0)
    """
    k = check_integer("k", k)
    if chunk is not None:
        chunk = check_integer("chunk", chunk)
    x, y = _samples(real_features, "real_features"), _samples(fake_features, "fake_features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"real_features and fake_features have different dimensions: {x.shape[1]} and {y.shape[1]} features"
        )
    _check_k(x.shape[0], k, "real_features")
    _check_k(y.shape[0], k, "fake_features")
    y = y.to(device=x.device, dtype=x.dtype)
    n, m = x.shape[0], y.shape[0]
    r = _radii(x, k, _rows(n, chunk))
    s = _radii(y, k, _rows(m, chunk))

    # one pass over blocks of fakes: row reductions for precision/density, column ones for recall/coverage
    inside = torch.zeros(m, dtype=torch.long, device=x.device)  # number of real balls holding each fake
    recalled = torch.zeros(n, dtype=torch.bool, device=x.device)  # reals inside some fake ball
    nearest = torch.full((n,), torch.inf, dtype=x.dtype, device=x.device)  # each real's nearest fake
    rows = _rows(n, chunk)
    for j in range(0, m, rows):
        d = _cdist(y[j : j + rows], x)  # (b, N)
        inside[j : j + rows] = (d < r).sum(dim=1)
        recalled |= (d < s[j : j + rows, None]).any(dim=0)
        nearest = torch.minimum(nearest, d.min(dim=0).values)
    return PRDC(
        precision=(inside > 0).to(x.dtype).mean().item(),
        recall=recalled.to(x.dtype).mean().item(),
        density=inside.to(x.dtype).mean().item() / k,
        coverage=(nearest < r).to(x.dtype).mean().item(),
    )
