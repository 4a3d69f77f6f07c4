r"""Mode coverage of samples of a mixture with known centres: the VEEGAN / PacGAN protocol.

For a mixture of :math:`M` isotropic Gaussians with centres :math:`\mu_m` and standard deviations
:math:`\sigma_m` (the ring of 8 and the grid of 25 of the GAN literature), each sample :math:`x` goes to
its nearest centre in standardized distance, :math:`m(x) = \arg\min_m \lVert x - \mu_m \rVert / \sigma_m`,
and is of *high quality* when that distance is at most ``threshold`` (3 standard deviations). A mode is
*covered* when at least ``min_count`` high-quality samples fall in it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from gendist._checks import check_integer, check_number
from gendist.metrics.precision_recall import _cdist
from gendist.metrics.two_sample import _samples

__all__ = ["ModeCoverage", "mode_coverage"]

_BLOCK = 1 << 22  # distances per block (32 MiB in float64)


class ModeCoverage(NamedTuple):
    r"""The outcome of :func:`mode_coverage`.

    Attributes:
        modes: The number of modes with at least ``min_count`` high-quality samples.
        high_quality: The share of all samples within ``threshold`` standard deviations of their nearest centre.
        counts: The number of high-quality samples of each mode, an integer tensor of shape ``(M,)``.
        kl: :math:`\mathrm{KL}(\hat p \,\|\, \mathcal{U}_M) = \sum_m \hat p_m \log(M \hat p_m)`, the KL divergence
            of the high-quality samples' mode histogram :math:`\hat p` from the uniform one (PacGAN's "reverse
            KL"; 0 for a perfectly balanced sample, :math:`\log M` for a single mode); NaN without high-quality
            samples.
    """

    modes: int
    high_quality: float
    counts: Tensor
    kl: float


def mode_coverage(
    samples: Tensor,
    centres: Tensor,
    std: float | Tensor,
    *,
    threshold: float = 3.0,
    min_count: int | None = None,
) -> ModeCoverage:
    r"""Modes covered, share of high-quality samples and mode balance of samples of a Gaussian mixture.

    The protocol of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018): 2500 samples of the
    generator, against a ring of 8 Gaussians (radius 2, :math:`\sigma = 0.02`) or a grid of 25
    (centres :math:`\{-4, -2, 0, 2, 4\}^2`, :math:`\sigma = 0.05`). A sample is of high quality when

    .. math:: \min_m \frac{\lVert x - \mu_m \rVert}{\sigma_m} \le \text{threshold} = 3,

    and mode :math:`m` is covered when at least ``min_count`` high-quality samples have it as nearest centre.

    The counting rule: PacGAN's released metric code counts a mode as captured as soon as its histogram
    of high-quality samples is non-zero, so ``min_count=None`` means 1, not scaled with the number of
    samples (neither paper scales it). With centres tens of standard deviations apart, as in both
    benchmarks, a stray sample rarely lands within 3 :math:`\sigma` of a missed mode, so 1 is not fragile
    there; pass a larger ``min_count`` (e.g. 20 of 2500 for the grid, a fifth of the 100 expected per mode)
    to ignore stray points on a looser mixture.

    Exact draws of the mixture are all of high quality only up to the chi-square tail: in :math:`D`
    dimensions :math:`\lVert x - \mu \rVert^2 / \sigma^2 \sim \chi^2_D`, so in 2-D the share within
    :math:`3\sigma` is :math:`1 - e^{-9/2} \approx 0.9889` (not the 1-D rule's 0.9973).

    Arguments:
        samples: The samples, shape ``(N, D)`` (trailing dimensions are flattened).
        centres: The mode centres :math:`\mu_m`, shape ``(M, D)``.
        std: The modes' standard deviation :math:`\sigma`, a positive number or a tensor of shape ``(M,)``.
        threshold: The high-quality radius, in standard deviations.
        min_count: The number of high-quality samples that covers a mode; default (None): 1.

    Returns:
        A :class:`ModeCoverage` ``(modes, high_quality, counts, kl)``.

    Raises:
        ValueError: On NaN/inf, mismatched dimensions, a non-positive ``std`` or ``threshold``, or a
            ``min_count`` below 1.

    Example:
        >>> angles = torch.arange(8) * 2 * math.pi / 8
        >>> centres = 2 * torch.stack([angles.cos(), angles.sin()], dim=1)
        >>> g = torch.Generator().manual_seed(0)
        >>> x = centres[torch.arange(2500) % 8] + 0.02 * torch.randn(2500, 2, generator=g)
        >>> r = mode_coverage(x, centres, 0.02)
        >>> r.modes, abs(r.high_quality - (1 - math.exp(-4.5))) < 0.01, r.kl < 0.01
        (8, True, True)
        >>> mode_coverage(centres[0] + 0.02 * torch.randn(2500, 2, generator=g), centres, 0.02).modes
        1
    """
    x = _samples(samples, "samples")
    if not isinstance(centres, Tensor):
        raise ValueError(f"centres must be a torch.Tensor of shape (M, D), got {type(centres).__name__}")
    if centres.dim() != 2 or centres.shape[0] < 1:
        raise ValueError(f"centres must have shape (M, D) with M >= 1, got shape {tuple(centres.shape)}")
    if centres.shape[1] != x.shape[1]:
        raise ValueError(
            f"centres have {centres.shape[1]} features but samples have {x.shape[1]}; they must match"
        )
    mu = centres.to(device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(mu).all()):
        raise ValueError("centres contains NaN or inf")
    m = mu.shape[0]
    if isinstance(std, Tensor):
        sigma = std.to(device=x.device, dtype=x.dtype).reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(m)
        if sigma.shape[0] != m:
            raise ValueError(f"std must be a number or a tensor of shape ({m},) (one per centre), "
                             f"got shape {tuple(std.shape)}")
        if not bool(torch.isfinite(sigma).all()) or not bool((sigma > 0).all()):
            raise ValueError("std must be positive and finite")
    else:
        sigma = torch.full((m,), check_number("std", std), device=x.device, dtype=x.dtype)
    threshold = check_number("threshold", threshold)
    min_count = 1 if min_count is None else check_integer("min_count", min_count, low=1)

    # nearest centre in standardized distance, by blocks of rows (bounded memory for large N)
    rows = max(1, _BLOCK // m)
    nearest, dist = [], []
    for i in range(0, x.shape[0], rows):
        d = _cdist(x[i : i + rows], mu) / sigma
        best = d.min(dim=1)
        nearest.append(best.indices)
        dist.append(best.values)
    nearest, dist = torch.cat(nearest), torch.cat(dist)
    good = dist <= threshold
    counts = torch.bincount(nearest[good], minlength=m)
    total = int(counts.sum().item())
    if total:
        p = counts.to(x.dtype) / total
        p = p[p > 0]
        kl = max(float((p * (p * m).log()).sum().item()), 0.0)
    else:
        kl = math.nan
    return ModeCoverage(int((counts >= min_count).sum().item()), total / x.shape[0], counts, kl)
