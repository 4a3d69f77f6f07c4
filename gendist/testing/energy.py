r"""Public checks of energy-based models: an estimated :math:`\log Z` agrees with the exact one, and forward and
reverse annealing bracket it.

Forward AIS is unbiased in :math:`Z`, so :math:`\log \hat Z` is a stochastic lower bound of :math:`\log Z`; reverse
AIS started from exact draws is unbiased in :math:`1/Z`, a stochastic upper bound (Burda et al., 2015). On a model
whose :math:`\log Z` is known exactly (enumeration, quadrature), both must lie within a few of their own standard
errors of it, on their own side.

Example:
    >>> import torch
    >>> from gendist.ebm import RBM
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> rbm = RBM(6, 4).double()
    >>> forward, reverse = check_log_partition(rbm(), chains=200, betas=200)
    >>> forward.method, reverse.method
    ('ais', 'reverse_ais')
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gendist.distributions.energy import EnergyBased, LogPartition

__all__ = ["check_log_partition", "exact_draws"]


def exact_draws(d: EnergyBased, n: int, generator: torch.Generator | None = None, points: int = 801,
                **quadrature: Any) -> Tensor:
    r"""``n`` exact draws of ``d`` (batch shape ``()``): by enumeration of binary values, or, for 1-2 real entries,
    from the quadrature grid's cells in proportion to their mass (jittered uniformly within a cell: exact up to
    the grid's resolution)."""
    if d.batch_shape:
        raise ValueError(f"exact_draws needs batch_shape (), got {tuple(d.batch_shape)}")
    with torch.no_grad():
        if d.has_enumerate_support:
            values = d.enumerate_support()
            logits = -d.energy_of(values)
            i = torch.multinomial(torch.softmax(logits.double(), 0).cpu(), n, replacement=True, generator=generator)
            return values[i.to(values.device)]
        D = d.event_shape.numel()
        if d.binary or D > 2:
            raise ValueError("exact_draws: needs binary values few enough to enumerate, or 1-2 real entries")
        bound = float(quadrature.get("bound", 10.0))
        edges = torch.linspace(-bound, bound, points + 1, dtype=torch.float64)
        mids = (edges[1:] + edges[:-1]) / 2
        width = float(edges[1] - edges[0])
        grid = mids[:, None] if D == 1 else torch.cartesian_prod(mids, mids)
        logits = -d.energy_of(grid.to(d.dtype).to(d.device).reshape(-1, *d.event_shape)).double().cpu()
        i = torch.multinomial(torch.softmax(logits, 0), n, replacement=True, generator=generator)
        jitter = (torch.rand(n, D, dtype=torch.float64, generator=generator) - 0.5) * width
        return (grid[i] + jitter).to(d.dtype).to(d.device).reshape(n, *d.event_shape)


def check_log_partition(
    d: EnergyBased,
    method: str = "ais",
    exact: LogPartition | None = None,
    reverse: bool = True,
    sigmas: float = 4.0,
    floor: float = 1e-3,
    seed: int = 0,
    **options: Any,
) -> tuple[LogPartition, LogPartition | None]:
    r"""Check an estimate of :math:`\log Z` (``d.log_partition(method, **options)``) against the exact value.

    The forward estimate must lie within ``sigmas`` of its standard errors (plus ``floor`` nats) of the exact
    :math:`\log Z` (``exact``, else ``d.log_partition("exact")`` or ``"quadrature"``); with ``reverse``, reverse
    AIS from exact draws (:func:`exact_draws`, as many as ``options["chains"]``) must too, and the two must
    bracket it: :math:`\log \hat Z_{fwd} - k\,se \le \log Z \le \log \hat Z_{rev} + k\,se` (for batch shape
    ``()``: exact draws are of one distribution).

    Returns:
        The forward and the reverse (or None) :class:`~gendist.distributions.energy.LogPartition`.
    """
    if exact is None:
        method_exact = "exact" if ("exact" in getattr(d.energy, "partition_methods", ()) or d.has_enumerate_support) \
            else "quadrature"
        with torch.no_grad():
            exact = d.log_partition(method_exact)
    if exact.kind != "exact":
        raise ValueError(f"check_log_partition: the reference log Z must be exact, got a {exact.method!r} estimate")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        forward = d.log_partition(method, generator=g, **options)
    truth = exact.value.detach().double()

    def close(est: LogPartition, what: str) -> None:
        se = est.stderr.double() if est.stderr is not None else torch.zeros_like(truth)
        gap = (est.value.double() - truth).abs()
        if not bool((gap <= sigmas * se + floor).all()):
            raise AssertionError(
                f"{what} log Z {est.value.flatten()[:4].tolist()} (se {se.flatten()[:4].tolist()}) is more than "
                f"{sigmas:g} standard errors + {floor:g} from the exact {truth.flatten()[:4].tolist()}")

    close(forward, f"{method}")
    back = None
    if reverse and not d.batch_shape:
        chains = int(options.get("chains", 100))
        x = exact_draws(d, chains, g)
        kwargs = {k: v for k, v in options.items() if k != "chains"}
        with torch.no_grad():
            back = d.log_partition(f"reverse_{method}" if not method.startswith("reverse") else method, x=x,
                                   generator=g, **kwargs)
        close(back, "reverse AIS")
        se_f = forward.stderr.double() if forward.stderr is not None else 0.0
        se_b = back.stderr.double() if back.stderr is not None else 0.0
        lower = forward.value.double() - sigmas * se_f - floor
        upper = back.value.double() + sigmas * se_b + floor
        if not bool(((lower <= truth) & (truth <= upper)).all()):
            raise AssertionError(
                f"forward ({forward.value.flatten()[:4].tolist()}) and reverse ({back.value.flatten()[:4].tolist()}) "
                f"AIS do not bracket the exact log Z {truth.flatten()[:4].tolist()}")
    if not math.isfinite(float(forward.value.detach().double().sum())):
        raise AssertionError("the estimated log Z is not finite")
    return forward, back
