r"""Public check of autoregressive in-painting: observed entries kept, the exact conditional recovered.

Example:
    >>> from gendist.autoregressive import MADE, Bernoulli
    >>> d = MADE(3, family=Bernoulli(), hidden=(8,))()
    >>> sorted(check_inpaint(d))
    ['chi2_pvalue', 'tv_particles_1', 'tv_sir']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Size, Tensor
from torch.distributions import Distribution

from gendist.testing.autoregressive import _check_order, _levels
from gendist.testing.distributions import chi2_pvalue

__all__ = ["check_inpaint"]


# ---------------------------------------------------------------- inpainting


def _ordering(d: Distribution, order: Sequence[int] | None) -> list[int]:
    D = d.event_shape.numel()
    if order is not None:
        return _check_order(order, D, "order")
    model = getattr(d, "model", None)
    if model is None or not hasattr(model, "ordering"):
        raise ValueError(f"check_inpaint needs the generation order: {type(d).__name__} has no model.ordering(); "
                         "pass order=")
    return _check_order(model.ordering(), D, type(model).__name__)


def _mask(positions: Sequence[int], E: Size, device: torch.device) -> Tensor:
    m = torch.zeros(E.numel(), dtype=torch.bool, device=device)
    m[list(positions)] = True
    return m.reshape(E)


def _exact_conditional(d: Distribution, value: Tensor, missing: list[int], levels: tuple[int, int]) -> Tensor:
    r"""``p(x_missing | x_observed)`` for every configuration of the missing positions, ``(V, *batch)``."""
    lo, count = levels
    E = d.event_shape
    configs = torch.tensor(list(itertools.product(range(count), repeat=len(missing))), dtype=value.dtype) + lo
    configs = configs.to(value.device)
    V = configs.shape[0]
    full = value.reshape(-1, E.numel()).unsqueeze(0).repeat(V, 1, 1)  # (V, B, D)
    full[:, :, missing] = configs[:, None, :]
    with torch.no_grad():
        lp = d.log_prob(full.reshape((V,) + value.shape)).double()
    return lp.softmax(0)


def _frequencies(draws: Tensor, missing: list[int], levels: tuple[int, int], V: int, E: Size) -> Tensor:
    r"""How often each configuration of the missing positions was drawn, ``(V, *batch)``."""
    lo, count = levels
    n = draws.shape[0]
    flat = draws.reshape(n, -1, E.numel())[:, :, missing].long() - lo  # (n, B, m)
    weights = count ** torch.arange(len(missing) - 1, -1, -1, device=draws.device)
    index = (flat * weights).sum(-1)  # (n, B): the row of itertools.product's order
    counts = torch.zeros(V, index.shape[1], dtype=torch.float64, device=draws.device)
    counts.scatter_add_(0, index, torch.ones_like(index, dtype=torch.float64))
    return counts.reshape((V,) + draws.shape[1: draws.dim() - len(E)])


def _chi2_pvalue(expected: Tensor, counts: Tensor) -> float:
    r"""Pearson's test of counts ``(V, B)`` against expected counts, one column (batch element) after another."""
    columns = zip(expected.reshape(expected.shape[0], -1).T, counts.reshape(counts.shape[0], -1).T)
    return min(chi2_pvalue(o.cpu(), e.cpu()) for e, o in columns)


def check_inpaint(
    d: Distribution,
    samples: int = 2000,
    particles: int = 32,
    seed: int = 0,
    max_configs: int = 64,
    threshold: float = 1e-5,
    order: Sequence[int] | None = None,
) -> dict[str, float]:
    r"""Check ``d.inpaint`` keeps the observed entries and draws the missing ones from the right conditional.

    Any family: with half of the positions observed (at random), every output
    keeps the observed entries exactly, is in the support, has shape
    ``sample_shape + batch_shape + event_shape``, with ``particles`` 1 and 2;
    the entries at missing positions are ignored (NaN placeholders give the
    same output under the same seed).

    Discrete families, where the missing positions have at most
    ``max_configs`` configurations, against the exact conditional
    :math:`p(x_\text{miss} \mid x_\text{obs})` computed by enumeration:

    * observed positions first in the generation order: the frequencies of
      ``samples`` completions (``particles=1``, exact in this case) pass
      Pearson's chi-square test (:func:`~gendist.testing.chi2_pvalue`, cells of
      expected count below 5 pooled) at level ``threshold``, in every batch
      element;
    * observed positions last in the order (``particles=1`` then ignores
      them): the total-variation distance :math:`TV_P` of the completions with
      ``particles`` proposals (sampling-importance-resampling) to the exact
      conditional (averaged over the batch) must be at most half that of
      ``particles=1``, :math:`TV_1`,
      or within the sampling noise
      :math:`\tfrac12\sqrt{2 (V \log 2 + \log 10^6) / n}` (a
      Bretagnolle-Huber-Carol bound over :math:`V` configurations).

    The draws are seeded (``seed``; the global RNG is left as it was), so the
    result is deterministic. Returns what it measured (empty for continuous
    families): ``chi2_pvalue``, ``tv_particles_1`` and ``tv_sir``.

    Works on any distribution with ``inpaint(value, observed, sample_shape,
    particles)`` whose ``model.ordering()`` gives the order (or pass ``order``):
    an :class:`~gendist.distributions.Autoregressive` built by any ``ARModule``.

    Example:
        >>> from gendist.autoregressive import MADE, Categorical
        >>> out = check_inpaint(MADE(4, family=Categorical(3), hidden=(16,), context=2)(torch.randn(2, 2)))
        >>> out["chi2_pvalue"] > 1e-5, out["tv_sir"] <= max(0.5 * out["tv_particles_1"], 0.1)
        (True, True)
    """
    if not hasattr(d, "inpaint"):
        raise ValueError(f"check_inpaint needs a distribution with inpaint(); {type(d).__name__} has none")
    order = _ordering(d, order)
    E, B = d.event_shape, d.batch_shape
    D = E.numel()
    out: dict[str, float] = {}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        with torch.no_grad():
            value = d.sample()
        device = value.device
        # 1. the observed entries are kept, the rest are in the support, placeholders are ignored
        flags = torch.rand(D) < 0.5
        if D > 1:  # at least one observed and one missing position
            flags[order[0]], flags[order[-1]] = True, False
        mask = flags.to(device).reshape(E)
        holes = value.clone()
        if holes.dtype.is_floating_point:
            holes[..., ~mask] = math.nan
        for p in (1, 2):
            torch.manual_seed(seed + p)
            got = d.inpaint(value, mask, (3,), particles=p)
            if got.shape != (3,) + B + E:
                raise AssertionError(f"inpaint(value, observed, (3,), particles={p}): shape {tuple(got.shape)} != "
                                     f"{(3,) + tuple(B + E)}")
            kept = got[..., mask] == value[..., mask]
            if not bool(kept.all()):
                raise AssertionError(f"inpaint(particles={p}) changed {int((~kept).sum())} observed entries")
            if not bool(d.support.check(got).all()):
                raise AssertionError(f"inpaint(particles={p}) drew values outside the support {d.support}")
            torch.manual_seed(seed + p)
            again = d.inpaint(holes, mask, (3,), particles=p)
            if not torch.equal(again, got):
                raise AssertionError(
                    f"inpaint(particles={p}) depends on the entries at unobserved positions: NaN placeholders gave "
                    f"{int((again != got).sum())} different entries under the same seed"
                )
        levels = _levels(d.support)
        if levels is None or D < 2:
            return out
        # 2. observed positions first in the order: particles=1 is exact
        seen = max(D // 2, D - int(math.log(max_configs) / math.log(levels[1])))
        if seen >= D:
            return out
        first, later = order[:seen], order[seen:]
        exact = _exact_conditional(d, value, later, levels)
        V = exact.shape[0]
        torch.manual_seed(seed + 3)
        draws = d.inpaint(value, _mask(first, E, device), (samples,))
        counts = _frequencies(draws, later, levels, V, E)
        out["chi2_pvalue"] = p = _chi2_pvalue(samples * exact, counts)
        if not p > threshold:
            raise AssertionError(
                f"inpainted frequencies (observed positions {first} first in the order) disagree with the exact "
                f"conditional by enumeration: chi-square p-value {p:.3g} <= {threshold} over {samples} draws "
                f"(largest frequency error {(counts / samples - exact).abs().max().item():.3g})"
            )
        # 3. observed positions last in the order: sampling-importance-resampling must correct for them
        last, early = order[D - seen:], order[: D - seen]
        exact = _exact_conditional(d, value, early, levels)
        tv = {}
        for p in (1, particles):
            torch.manual_seed(seed + 4)
            draws = d.inpaint(value, _mask(last, E, device), (samples,), particles=p)
            freq = _frequencies(draws, early, levels, V, E) / samples
            tv[p] = float(0.5 * (freq - exact).abs().sum(0).mean())
        noise = 0.5 * math.sqrt(2 * (V * math.log(2) + math.log(1e6)) / samples)
        out["tv_particles_1"], out["tv_sir"] = tv[1], tv[particles]
        if not (tv[particles] <= noise or tv[particles] <= 0.5 * tv[1]):
            raise AssertionError(
                f"inpaint with {particles} particles (observed positions {last} last in the order) is "
                f"{tv[particles]:.3g} in total variation from the exact conditional: neither within the sampling "
                f"noise {noise:.3g} nor half the {tv[1]:.3g} of particles=1"
            )
    return out
