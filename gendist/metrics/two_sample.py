r"""Distances between two samples, with permutation tests: MMD, energy distance, sliced Wasserstein.

Every function takes two samples ``x`` of shape ``(N, ...)`` and ``y`` of shape
``(M, ...)`` (trailing dimensions are flattened to :math:`D` features; a 1-D tensor
is :math:`N` scalar samples), on any device and of any dtype (computed in float64,
on ``x``'s device), and returns a :class:`TestResult`.

The permutation p-value of a statistic :math:`T` is

.. math:: p = \frac{1 + \#\{b : T(\pi_b) \ge T\}}{1 + B}

over :math:`B` random relabellings :math:`\pi_b` of the pooled sample, which is a
valid (never anti-conservative) p-value for :math:`H_0: P_x = P_y`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["TestResult", "mmd", "energy_distance", "sliced_wasserstein"]


class TestResult(NamedTuple):
    r"""The outcome of a two-sample test.

    Attributes:
        statistic: The test statistic (a distance, or the classifier's held-out accuracy).
        p_value: The p-value for :math:`H_0: P_x = P_y`, or ``None`` if not computed.
        floor: The statistic of ``x`` against itself (two halves of ``x``), the value
            two samples of the same distribution reach at this sample size, or ``None``.
    """

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float | None = None
    floor: float | None = None


def _samples(x: Tensor, name: str) -> Tensor:
    r"""Validate one sample and return it as a float64 ``(N, D)`` tensor."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have a sample dimension, got a scalar")
    x = x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(-1, 1)
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {x.shape[0]}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(x.shape)})")
    if x.is_complex():
        raise ValueError(f"{name} must be real, got {x.dtype}")
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    x = x.to(dtype)
    if torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    if torch.isinf(x).any():
        raise ValueError(f"{name} contains inf")
    return x


def _pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    r"""Validate two samples: both ``(N, D)`` with the same ``D``, on ``x``'s device."""
    x, y = _samples(x, "x"), _samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y have different dimensions: x has {x.shape[1]} features, y has {y.shape[1]}")
    return x, y.to(device=x.device, dtype=x.dtype)


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _mmd_from_kernel(k: Tensor, a: Tensor) -> Tensor:
    r"""Unbiased squared MMD for each row of the 0/1 membership matrix ``a`` (1 = in ``x``).

    .. math::
        \mathrm{MMD}_u^2 = \frac{\sum_{i \ne j} k(x_i, x_j)}{n(n-1)}
        + \frac{\sum_{i \ne j} k(y_i, y_j)}{m(m-1)} - \frac{2 \sum_{i,j} k(x_i, y_j)}{nm}
    """
    b = 1 - a
    n, m = a.sum(-1), b.sum(-1)
    diag = k.diagonal()
    ka = a @ k  # (P, N)
    kb = b @ k
    sxx = (ka * a).sum(-1) - a @ diag
    syy = (kb * b).sum(-1) - b @ diag
    sxy = (ka * b).sum(-1)
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)


def _permutation_test(
    k: Tensor, n: int, permutations: int, generator: torch.Generator | None
) -> tuple[float, float | None]:
    r"""Statistic and permutation p-value of the kernel MMD on the pooled kernel matrix ``k``."""
    total = k.shape[0]
    a = torch.zeros(1, total, dtype=k.dtype, device=k.device)
    a[0, :n] = 1
    stat = _mmd_from_kernel(k, a)[0].item()
    if permutations <= 0:
        return stat, None
    g = _generator(generator)
    perms = torch.rand(permutations, total, generator=g).argsort(dim=1).to(k.device)
    a = (perms < n).to(k.dtype)
    null = _mmd_from_kernel(k, a)
    # a relative tolerance so that relabellings equal to the observed one up to rounding count as >=
    hits = (null >= stat - 1e-12 * max(1.0, abs(stat))).sum().item()
    return stat, (1 + hits) / (1 + permutations)


def mmd(
    x: Tensor,
    y: Tensor,
    bandwidths: list[float] | Tensor | None = None,
    permutations: int = 200,
    generator: torch.Generator | None = None,
) -> TestResult:
    r"""Unbiased squared maximum mean discrepancy with a sum of Gaussian kernels.

    .. math::
        k(a, b) = \sum_{\sigma} \exp\left(-\frac{\lVert a - b \rVert^2}{2 \sigma^2}\right),
        \qquad
        \mathrm{MMD}_u^2 = \frac{\sum_{i \ne j} k(x_i, x_j)}{n(n-1)}
        + \frac{\sum_{i \ne j} k(y_i, y_j)}{m(m-1)} - \frac{2}{nm} \sum_{i, j} k(x_i, y_j).

    The unbiased estimate is 0 in expectation when :math:`P_x = P_y` (so it can be
    slightly negative) and positive otherwise (the sum of characteristic kernels is
    characteristic).

    Arguments:
        x: The first sample, shape ``(N, ...)``.
        y: The second sample, shape ``(M, ...)``.
        bandwidths: The kernel widths :math:`\sigma`. Default: the median pairwise
            distance of the pooled sample (on at most 1000 points) times 0.5, 1 and 2.
        permutations: The number :math:`B` of relabellings for the p-value; 0 for none.
        generator: The random generator of the permutations; default: a fresh one seeded with 0.

    Returns:
        A :class:`TestResult` with the statistic :math:`\mathrm{MMD}_u^2`, the permutation
        p-value, and ``floor=None``.

    Raises:
        ValueError: If a sample has fewer than 2 points or NaN/inf, or the dimensions differ.

    Example:
        >>> x, y = torch.randn(100, 2), torch.randn(100, 2) + 1.0
        >>> r = mmd(x, y)
        >>> r.statistic > 0.1, r.p_value < 0.01
        (True, True)
    """
    x, y = _pair(x, y)
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).square()
    if bandwidths is None:
        sub = z[:: max(1, z.shape[0] // 1000)]
        dist = torch.cdist(sub, sub)
        off = dist[~torch.eye(sub.shape[0], dtype=torch.bool, device=sub.device)]
        median = off.median().item()
        if median <= 0:
            median = 1.0
        sigmas = torch.tensor([0.5, 1.0, 2.0], dtype=z.dtype, device=z.device) * median
    else:
        sigmas = torch.as_tensor(bandwidths, dtype=z.dtype, device=z.device).reshape(-1)
        if sigmas.numel() == 0 or not (sigmas > 0).all():
            raise ValueError(f"bandwidths must be positive, got {bandwidths!r}")
    k = sum(torch.exp(-d2 / (2 * s * s)) for s in sigmas)
    stat, p = _permutation_test(k, x.shape[0], permutations, generator)
    return TestResult(stat, p, None)


def energy_distance(
    x: Tensor,
    y: Tensor,
    permutations: int = 200,
    generator: torch.Generator | None = None,
) -> TestResult:
    r"""Energy distance (Székely and Rizzo), unbiased, with a permutation p-value.

    .. math::
        \mathcal{E} = \frac{2}{nm} \sum_{i,j} \lVert x_i - y_j \rVert
        - \frac{\sum_{i \ne j} \lVert x_i - x_j \rVert}{n(n-1)}
        - \frac{\sum_{i \ne j} \lVert y_i - y_j \rVert}{m(m-1)},

    the unbiased squared MMD with the distance kernel :math:`k(a, b) = -\lVert a - b \rVert`;
    its population value :math:`2E\lVert X - Y \rVert - E\lVert X - X' \rVert - E\lVert Y - Y' \rVert`
    is 0 if and only if :math:`P_x = P_y`.

    Arguments:
        x: The first sample, shape ``(N, ...)``.
        y: The second sample, shape ``(M, ...)``.
        permutations: The number :math:`B` of relabellings for the p-value; 0 for none.
        generator: The random generator of the permutations; default: a fresh one seeded with 0.

    Returns:
        A :class:`TestResult` with the statistic :math:`\mathcal{E}`, the permutation
        p-value, and ``floor=None``.

    Raises:
        ValueError: If a sample has fewer than 2 points or NaN/inf, or the dimensions differ.

    Example:
        >>> x, y = torch.randn(100, 2), torch.randn(100, 2) + 1.0
        >>> r = energy_distance(x, y)
        >>> r.statistic > 0.1, r.p_value < 0.01
        (True, True)
    """
    x, y = _pair(x, y)
    z = torch.cat([x, y])
    stat, p = _permutation_test(-torch.cdist(z, z), x.shape[0], permutations, generator)
    return TestResult(stat, p, None)


def _wasserstein_1d(u: Tensor, v: Tensor, p: float) -> Tensor:
    r"""Exact :math:`W_p^p` between the empirical measures of the columns of ``u`` (n, P) and ``v`` (m, P).

    .. math:: W_p^p = \int_0^1 \lvert F_u^{-1}(t) - F_v^{-1}(t) \rvert^p \, dt,

    integrated exactly: both quantile functions are constant between consecutive
    levels of :math:`\{i/n\} \cup \{j/m\}`.
    """
    n, m = u.shape[0], v.shape[0]
    u, v = u.sort(dim=0).values, v.sort(dim=0).values
    if n == m:
        return (u - v).abs().pow(p).mean(0)
    i, j = torch.arange(1, n + 1, dtype=torch.float64), torch.arange(1, m + 1, dtype=torch.float64)
    t = torch.cat([i / n, j / m]).sort().values
    t = torch.unique_consecutive(t)
    widths = torch.diff(t, prepend=t.new_zeros(1))
    mid = t - widths / 2
    iu = (mid * n).floor().long().clamp(max=n - 1).to(u.device)
    iv = (mid * m).floor().long().clamp(max=m - 1).to(u.device)
    return ((u[iu] - v[iv]).abs().pow(p) * widths.to(u)[:, None]).sum(0)


def sliced_wasserstein(
    x: Tensor,
    y: Tensor,
    projections: int = 128,
    p: float = 2,
    generator: torch.Generator | None = None,
) -> TestResult:
    r"""Sliced :math:`p`-Wasserstein distance, by Monte Carlo over random directions.

    .. math::
        \mathrm{SW}_p(x, y) = \left( \frac{1}{K} \sum_{k=1}^{K}
        W_p^p(\theta_k^\top x, \theta_k^\top y) \right)^{1/p},
        \qquad \theta_k \sim \mathcal{U}(S^{D-1}),

    with each one-dimensional :math:`W_p^p` between the projected empirical measures
    computed exactly (sizes may differ).

    Arguments:
        x: The first sample, shape ``(N, ...)``.
        y: The second sample, shape ``(M, ...)``.
        projections: The number :math:`K` of random directions.
        p: The order :math:`p \ge 1`.
        generator: The random generator of the directions; default: a fresh one seeded with 0.

    Returns:
        A :class:`TestResult` with the statistic :math:`\mathrm{SW}_p` (in the units of
        the data), ``p_value=None`` and ``floor=None``.

    Raises:
        ValueError: If a sample has fewer than 2 points or NaN/inf, the dimensions differ,
            ``projections < 1`` or ``p < 1``.

    Example:
        In one dimension it is :math:`W_p`, here of a shift by 2:

        >>> x = torch.randn(500)
        >>> round(sliced_wasserstein(x, x + 2.0).statistic, 6)
        2.0
        >>> sliced_wasserstein(torch.randn(300, 8), torch.randn(200, 8)).statistic < 0.2
        True
    """
    x, y = _pair(x, y)
    projections = check_integer("projections", projections, low=1)
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    theta = torch.randn(x.shape[1], projections, generator=_generator(generator), dtype=torch.float64)
    theta = (theta / theta.norm(dim=0, keepdim=True)).to(x)
    w = _wasserstein_1d(x @ theta, y @ theta, p)
    return TestResult(w.mean().pow(1 / p).item(), None, None)
