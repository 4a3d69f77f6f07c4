r"""Public checks of autoregressive distributions: the ordering, enumeration, cached sampling, support.

They work on any distribution an :class:`~gendist.autoregressive.ARModule`
builds (MADE, NADE, PixelCNN, WaveNet, a Transformer, or your own subclass),
and on :class:`~gendist.distributions.Ensemble` over orders where that makes
sense. Each check raises an ``AssertionError`` saying what failed and by how
much (a ``ValueError`` where it does not apply), as the other checks of
:mod:`gendist.testing` do.

Example:
    >>> from gendist.autoregressive import MADE, Bernoulli
    >>> model = MADE(3, family=Bernoulli(), hidden=(8,)).eval()
    >>> check_autoregressive(model)
    >>> d = model()
    >>> round(float(check_enumeration(d)), 4)  # the 2**3 probabilities sum to one
    1.0
    >>> check_cached_sampling(d); check_support(d)
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist.distributions.autoregressive import ARModel, Autoregressive, Ensemble
from gendist.testing.distributions import _expect_error, _is_estimate, _same_noise
from gendist.testing.transforms import _close, tolerance

__all__ = [
    "check_autoregressive",
    "check_enumeration",
    "check_cached_sampling",
    "check_support",
]


# ---------------------------------------------------------------- helpers


def _levels(support: constraints.Constraint) -> tuple[int, int] | None:
    r"""``(lowest value, number of values)`` of a finite discrete (elementwise) support, else None."""
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if isinstance(support, constraints._Boolean):
        return 0, 2
    if isinstance(support, constraints._IntegerInterval):
        return int(support.lower_bound), int(support.upper_bound) - int(support.lower_bound) + 1
    return None


def _outside(support: constraints.Constraint) -> list[float]:
    r"""Values just outside an elementwise support (empty for the real line)."""
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if isinstance(support, constraints._Boolean):
        return [2.0, -1.0, 0.5, math.nan]
    if isinstance(support, constraints._IntegerInterval):
        lo, hi = float(support.lower_bound), float(support.upper_bound)
        return [hi + 1, lo - 1, lo + 0.5, math.nan]
    if isinstance(support, constraints._IntegerGreaterThan):
        return [float(support.lower_bound) - 1, float(support.lower_bound) + 0.5, math.nan]
    out = []
    if isinstance(support, (constraints._Interval, constraints._HalfOpenInterval)):
        out = [float(support.lower_bound) - 1, float(support.upper_bound) + 1]
    elif isinstance(support, (constraints._GreaterThan, constraints._GreaterThanEq)):
        out = [float(support.lower_bound) - 1]
    elif isinstance(support, constraints._LessThan):
        out = [float(support.upper_bound) + 1]
    return out


def _tensors(model: Any) -> Any:
    return itertools.chain(model.parameters(), model.buffers()) if hasattr(model, "parameters") else ()


def _param_dtype(model: Any) -> torch.dtype:
    for t in _tensors(model):
        if t.dtype.is_floating_point:
            return t.dtype
    return torch.get_default_dtype()


def _param_device(model: Any) -> torch.device:
    for t in _tensors(model):
        return t.device
    return torch.device("cpu")


def _resolve(model: Any, c: Tensor | None, k: int | None, g: torch.Generator, n: int) -> list[
        tuple[ARModel, Tensor | None]]:
    r"""The networks (:class:`ARModel`) behind ``model`` and the context each is checked with."""
    if isinstance(model, Ensemble):
        return [r for part in model.components for r in _resolve(part, c, None, g, n)]
    if isinstance(model, Autoregressive):
        return [(model.model, model.context if c is None else c)]
    if isinstance(model, nn.Module):
        size = getattr(model, "context", 0)
        if c is None and isinstance(size, int) and size > 0:
            c = torch.randn(n, size, generator=g, dtype=_param_dtype(model)).to(_param_device(model))
        orders = getattr(model, "orders", 1)
        if k is not None:
            built = [model(c, k=k)]
        elif isinstance(orders, int) and orders > 1:  # every order of a multi-order model (MADE's orders=K)
            built = [model(c, k=j) for j in range(orders)]
        else:
            built = [model(c)]
        if all(isinstance(d, (Autoregressive, Ensemble)) for d in built):
            return [r for d in built for r in _resolve(d, None, None, g, n)]
    if hasattr(model, "conditionals") and hasattr(model, "ordering"):  # a bare ARModel
        return [(model, c)]
    raise TypeError(
        "check_autoregressive needs an ARModule (a module whose call builds an Autoregressive), an Autoregressive "
        f"or Ensemble distribution, or an object with conditionals(x, c) and ordering(); got {type(model).__name__}"
    )


def _check_order(order: Sequence[int], D: int, who: str) -> list[int]:
    order = [int(i) for i in order]
    if sorted(order) != list(range(D)):
        raise AssertionError(f"{who}.ordering() must be a permutation of the {D} flat positions, got {order}")
    return order


# ---------------------------------------------------------------- the autoregressive property


def _dependencies_by_gradient(model: ARModel, x: Tensor, c: Tensor | None, g: torch.Generator,
                              noise: float = 0.0) -> Tensor | None:
    r"""``dep[p, q]``: how much :math:`\theta_p` moves with position ``q``'s input, by autograd; None without a path.

    Gradients are taken w.r.t. both the raw value and what ``family.encode``
    returns: a one-hot encoding is not differentiable w.r.t. the integer
    value, so for discrete families the encoded inputs carry the dependence;
    a network that reads the raw value (continuous families, a scalar code)
    is covered by the raw one. The encoding is spliced in as a leaf that has
    the same value (the network computes exactly what it does normally), or,
    with ``noise``, that value plus Gaussian noise of that scale (and so are a
    continuous raw value and the context): points off the data, where units
    that are inactive on every data point (dead ReLUs) wake up.
    """
    family = model.family
    N, shape = x.shape[0], x.shape[1:]
    D = shape.numel()
    raw = x.detach().clone()
    if noise and not family.discrete:
        raw = raw + noise * torch.randn(raw.shape, generator=g, dtype=torch.float64).to(raw)
    if noise and c is not None and c.dtype.is_floating_point:
        c = c + noise * torch.randn(c.shape, generator=g, dtype=torch.float64).to(c)
    raw.requires_grad_(True)
    leaves: list[Tensor] = []
    own = "encode" in vars(family)
    encode = family.encode

    def spliced(v: Tensor) -> Tensor:
        e = encode(v)
        if v.shape != raw.shape or not isinstance(e, Tensor) or not e.dtype.is_floating_point:
            return e
        leaf = e.detach()
        if noise:
            leaf = leaf + noise * torch.randn(leaf.shape, generator=g, dtype=torch.float64).to(leaf)
        leaf.requires_grad_(True)
        leaves.append(leaf)
        return leaf + (e - e.detach())  # the value of e; gradients reach both the leaf and, through e, the raw value

    family.encode = spliced
    try:
        theta = model.conditionals(raw, c)
    finally:
        if own:
            family.encode = encode
        else:
            del family.encode
    if theta.shape[: 1 + len(shape)] != (N,) + tuple(shape) or theta.dim() != len(shape) + 2:
        raise AssertionError(
            f"conditionals(x, c) must have shape (N, *shape, params) = {(N, *shape, family.params)}, got "
            f"{tuple(theta.shape)}"
        )
    theta = theta.reshape(N, D, -1)
    inputs = [raw] + leaves
    dep = torch.zeros(D, D, dtype=torch.float64)
    reached = torch.zeros(D, dtype=torch.bool)
    for p in range(D):
        if not theta.requires_grad:
            break
        w = torch.randn(theta.shape[0], theta.shape[2], generator=g, dtype=torch.float64).to(theta)
        grads = torch.autograd.grad((theta[:, p] * w).sum(), inputs, retain_graph=True, allow_unused=True)
        for gr in grads:
            if gr is not None:
                reached[p] = True
                gr = gr.detach().abs().double()
                if noise:  # off the data, an overflow says nothing about the structure
                    gr = torch.where(torch.isfinite(gr), gr, torch.zeros((), dtype=gr.dtype, device=gr.device))
                dep[p] += gr.reshape(N, D, -1).sum((0, 2)).cpu()
    return dep if bool(reached.any()) else None


def _dependencies_by_intervention(model: ARModel, x: Tensor, c: Tensor | None) -> Tensor:
    r"""``dep[p, q]``: how much :math:`\theta_p` changes when position ``q``'s value changes (one pass per ``q``)."""
    family = model.family
    N, shape = x.shape[0], x.shape[1:]
    D = shape.numel()
    levels = _levels(family.support)
    with torch.no_grad():
        base = model.conditionals(x, c).reshape(N, D, -1)
        dep = torch.zeros(D, D, dtype=torch.float64)
        for q in range(D):
            moved = x.reshape(N, D).clone()
            if levels is None:
                moved[:, q] += 1.0
            else:
                lo, count = levels
                moved[:, q] = lo + torch.remainder(moved[:, q] - lo + 1, count)
            theta = model.conditionals(moved.reshape(x.shape), c).reshape(N, D, -1)
            dep[:, q] = (theta - base).abs().double().sum((0, 2)).cpu()
    return dep


def check_autoregressive(
    model: Any,
    c: Tensor | None = None,
    x: Tensor | None = None,
    k: int | None = None,
    connected: bool = True,
    samples: int = 16,
    seed: int = 0,
) -> None:
    r"""Check every :math:`\theta_{\sigma(i)}` depends only on the positions before it in the order :math:`\sigma`.

    For each step :math:`i` of ``ordering()``, the parameters of flat position
    :math:`\sigma(i)` (from ``conditionals(x, c)``, one pass) must have exactly
    zero gradient w.r.t. the inputs at positions :math:`\sigma(j), j \ge i`
    (the position itself included), summed in absolute value over ``samples``
    values drawn from the model. Gradients are taken w.r.t. the raw value *and*
    what ``family.encode`` feeds the network (the one-hot encoding of a
    Categorical is not differentiable w.r.t. the integer value, so for discrete
    families the encoded inputs carry the dependence); a network that reads
    neither differentiably (an embedding lookup) is checked by intervention
    instead: changing the value at one position (to the next level, or by +1)
    must leave the parameters of every position not after it bit for bit unchanged.
    With ``connected``, each position but the first must also depend on at
    least one earlier position (a network cut off from its inputs passes the
    first test vacuously). Both are judged at the drawn values and at noisy
    copies of them (their encodings and the context plus Gaussian noise of
    scale 1 and 10; the raw values too, for continuous families): off the data,
    ReLU units that no data point activates come alive, so a sound network
    shows its connections (non-finite gradients at the noisy copies are ignored).

    Works for any :class:`~gendist.autoregressive.ARModule` and the
    distributions it builds: ``model`` is an ``ARModule`` (called as
    ``model(c)``, or ``model(c, k=k)``; a model with ``orders > 1``, such as
    MADE's, is checked in every order unless ``k`` is given), an
    :class:`~gendist.distributions.Autoregressive` (its network ``d.model``: for
    MADE, the view of one order), an :class:`~gendist.distributions.Ensemble`
    (each component), or a bare object with ``family``, ``conditionals(x, c)``
    and ``ordering()``.

    Arguments:
        model: what to check (see above).
        c: the context, ``(*batch, context)``; random ``(samples, context)`` ones
            when None and the module has a ``context`` size.
        x: values ``(*batch, *shape)`` to differentiate at; ``samples`` draws of the model when None.
        k: the order of a multi-order model to check (all of them when None).
        connected: also require some dependence on earlier positions.
        samples: how many values to draw when ``x`` is None.
        seed: the seed of the drawn values, contexts and projections (the global RNG is left as it was).

    Example:
        >>> from gendist.autoregressive import MADE, Categorical
        >>> check_autoregressive(MADE(4, family=Categorical(3), hidden=(16,), orders=2, context=2))
    """
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for net, ctx in _resolve(model, c, k, g, samples):
            _check_one(net, ctx, x, connected, samples)


def _check_one(net: ARModel, c: Tensor | None, x: Tensor | None, connected: bool, samples: int) -> None:
    shape = Size(net.shape)
    D, e = shape.numel(), len(shape)
    who = type(net).__name__
    if hasattr(net, "made") and hasattr(net, "k"):  # the view of one order of a multi-order MADE
        who = f"{type(net.made).__name__} (order {net.k})"
    order = _check_order(net.ordering(), D, who)
    dtype = _param_dtype(net)
    if x is None:
        d = Autoregressive(net, c, batch_shape=None if c is not None else (samples,), validate_args=False,
                           dtype=dtype)
        x = d.sample(() if c is None else (max(1, samples // max(1, c.shape[:-1].numel())),))
    if x.dim() < e or x.shape[x.dim() - e:] != shape:
        raise ValueError(f"check_autoregressive: x must end in the event shape {tuple(shape)}, got {tuple(x.shape)}")
    batch = torch.broadcast_shapes(x.shape[: x.dim() - e], c.shape[:-1] if c is not None else ())
    x = x.expand(batch + shape).reshape((-1,) + shape).to(dtype)
    if c is not None:
        c = c.expand(batch + c.shape[-1:]).reshape(-1, c.shape[-1])
    g = torch.Generator().manual_seed(1)
    dep = _dependencies_by_gradient(net, x, c, g)
    if dep is None:
        dep, how = _dependencies_by_intervention(net, x, c), "change of theta when the input changes"
    else:
        for noise in (1.0, 10.0):
            more = _dependencies_by_gradient(net, x, c, g, noise=noise)
            dep = dep if more is None else dep + more
        how = "sum of |d theta / d input| over the samples and noisy copies of them"
    rank = {p: i for i, p in enumerate(order)}
    leaks, cut = [], []
    for i, p in enumerate(order):
        for q in order[i:]:
            if dep[p, q] != 0:
                leaks.append(f"position {p} (step {i}) on position {q} (step {rank[q]}): {dep[p, q].item():.3g}")
        if connected and i > 0 and not bool((dep[p, order[:i]] != 0).any()):
            cut.append(f"position {p} (step {i})")
    if leaks:
        raise AssertionError(
            f"{who} is not autoregressive in its order {order}: {len(leaks)} parameter(s) depend on the same or a "
            f"later position ({how}): " + "; ".join(leaks[:6]) + ("; ..." if len(leaks) > 6 else "")
        )
    if cut:
        raise AssertionError(
            f"{who}: {len(cut)} position(s) depend on none of the positions before them in the order {order} "
            f"(no {how}): {', '.join(cut[:6])}; a small random network can have a connection cut everywhere (dead "
            "ReLUs, saturated gates): perturb or train it, or pass connected=False if that is intended"
        )


# ---------------------------------------------------------------- enumeration


def check_enumeration(d: Distribution, atol: float = 1e-5) -> Tensor:
    r"""Check :math:`\sum_x p(x) = 1` over ``enumerate_support()``, per batch element; return the sums.

    Also checks the enumerated values are distinct and in the support, and
    that their log-probabilities are neither NaN nor :math:`+\infty`. Works
    for any distribution with ``has_enumerate_support`` (an autoregressive
    model over a few discrete positions: at most :math:`2^{16}` configurations).

    Example:
        >>> from gendist.autoregressive import MADE, Categorical
        >>> d = MADE(3, family=Categorical(4), hidden=(16,), context=2)(torch.randn(5, 2))
        >>> check_enumeration(d).shape
        torch.Size([5])
    """
    if not d.has_enumerate_support:
        raise ValueError(f"check_enumeration needs a distribution with enumerate_support; {type(d).__name__} has none")
    with torch.no_grad():
        values = d.enumerate_support(expand=False)
        n = values.shape[0]
        rows = values.reshape(n, -1)
        if torch.unique(rows, dim=0).shape[0] != n:
            raise AssertionError(f"enumerate_support lists {n - torch.unique(rows, dim=0).shape[0]} values twice")
        if not bool(d.support.check(values).all()):
            raise AssertionError("enumerate_support lists values outside the support")
        lp = d.log_prob(values).double()
        if bool(lp.isnan().any()) or bool((lp == math.inf).any()):
            raise AssertionError(f"log_prob of the enumerated values has {int((lp.isnan() | (lp == math.inf)).sum())} "
                                 "NaN or +inf entries")
        total = lp.logsumexp(0).exp()
    err = (total - 1).abs()
    if not bool((err <= atol).all()):
        i = int(err.flatten().argmax())
        raise AssertionError(
            f"probabilities over the {n} enumerated values sum to {total.flatten()[i].item():.8g}, not 1 "
            f"(batch element {i} of {total.numel()}; |error| {err.max().item():.3g} > atol={atol})"
        )
    return total


# ---------------------------------------------------------------- cached sampling


def check_cached_sampling(d: Distribution, sample_shape: Sequence[int] = (3,), seed: int = 0,
                          atol: float | None = None) -> None:
    r"""Check cached and uncached sampling agree, and ``sample_and_log_prob`` agrees with ``log_prob``.

    Under the same seed, ``d.sample(sample_shape, cache=True)`` (the network's
    incremental ``step``) and ``cache=False`` (a full pass per position) must
    draw the same values: exactly for discrete families, to ``atol`` (by default
    ``tolerance(dtype)``, absolute and relative) for continuous ones, whose
    partial passes may sum in another order. ``sample_and_log_prob`` must draw
    those values too, and its log-probabilities (from the sequential pass) must
    match ``d.log_prob`` of them (the full pass) to ``atol``, with and without
    the cache. An :class:`~gendist.distributions.Ensemble` is checked component
    by component. The global RNG is left as it was. Check peaked continuous
    densities (scales near the 1e-3 floor) in float64: in float32 the partial
    passes' rounding moves such a log-density by up to 1e-3.

    Example:
        >>> from gendist.autoregressive import MADE, Normal
        >>> check_cached_sampling(MADE(4, family=Normal(), hidden=(16,), context=2)(torch.randn(2, 2)))
    """
    if isinstance(d, Ensemble):
        for part in d.components:
            check_cached_sampling(part, sample_shape, seed, atol)
        return
    if not isinstance(d, Autoregressive) and not hasattr(d, "sample_and_log_prob"):
        raise ValueError(f"check_cached_sampling needs sample(shape, cache=...) and sample_and_log_prob; "
                         f"{type(d).__name__} has neither")
    S = Size(sample_shape)
    draws = {}
    with torch.random.fork_rng():
        for cache in (True, False):
            torch.manual_seed(seed)
            draws[cache] = d.sample(S, cache=cache)
            torch.manual_seed(seed)
            draws[cache, "fused"] = d.sample_and_log_prob(S, cache=cache)
    a, b = draws[True], draws[False]
    discrete = _levels(d.support) is not None
    tol = tolerance(a.dtype) if atol is None else atol
    if discrete:
        if not torch.equal(a, b):
            diff = a != b
            raise AssertionError(
                f"cached and uncached sampling drew different values under seed {seed}: {int(diff.sum())} of "
                f"{diff.numel()} entries differ (first at flat index {int(diff.flatten().nonzero()[0])})"
            )
    else:
        _close(f"cached sample vs uncached sample (seed {seed})", a, b, tol, tol)
    for cache in (True, False):
        x, lp = draws[cache, "fused"]
        if not torch.equal(x, draws[cache]):
            raise AssertionError(f"sample_and_log_prob(cache={cache}) drew other values than sample(cache={cache}) "
                                 f"under the same seed (max difference {(x - draws[cache]).abs().max().item():.3g})")
        with torch.no_grad():
            full = d.log_prob(x)
        _close(f"sample_and_log_prob(cache={cache}) log-probabilities vs log_prob", lp, full, tol, tol)


# ---------------------------------------------------------------- support


def _with_validation(d: Distribution, flag: bool) -> Distribution:
    if isinstance(d, Ensemble):
        return Ensemble([_with_validation(part, flag) for part in d.components], validate_args=flag)
    new = copy.copy(d)
    new._validate_args = flag
    return new


def check_support(d: Distribution) -> None:
    r"""Check out-of-support values: :math:`-\infty` without validation, a clear ``ValueError`` with it.

    The values tried come from ``d.support``: 2, -1, 0.5 and NaN for binary
    values; :math:`K`, -1, 0.5 and NaN for :math:`0..K-1`; a point beyond each
    bound of an interval; none for the real line. Each replaces one entry of
    one of two samples: with ``validate_args=False`` that sample's
    ``log_prob`` must be :math:`-\infty` and the other's unchanged and finite;
    with ``validate_args=True`` ``log_prob`` must raise a ``ValueError``
    naming the support and the value. A value of the wrong event shape must
    raise a ``ValueError`` naming the expected shape, either way. Works on
    :class:`~gendist.distributions.Autoregressive` and
    :class:`~gendist.distributions.Ensemble` distributions, on torch's, and on
    any other: a stochastic estimate (``log_prob_kind = "estimate"``) is
    compared on the same random numbers.

    Example:
        >>> from gendist.autoregressive import MADE, Categorical
        >>> check_support(MADE(3, family=Categorical(4), hidden=(8,))())
    """
    E = d.event_shape
    quiet, loud = _with_validation(d, False), _with_validation(d, True)
    estimate = _is_estimate(d)  # the in-support neighbour is compared on the same random numbers
    with torch.no_grad():
        x = d.sample((2,))
        want = _same_noise(lambda: quiet.log_prob(x), estimate)
    if not x.dtype.is_floating_point:
        raise ValueError(f"check_support needs floating-point samples, got dtype {x.dtype}")
    if not bool(torch.isfinite(want).all()):
        raise AssertionError("log_prob of the distribution's own samples is not finite")
    for value in _outside(d.support):
        bad = x.clone().reshape(2, -1, max(1, E.numel()))
        bad[0, :, 0] = value
        bad = bad.reshape(x.shape)
        with torch.no_grad():
            lp = _same_noise(lambda b=bad: quiet.log_prob(b), estimate)
        if not bool((lp[0] == -math.inf).all()):
            raise AssertionError(
                f"log_prob of a value holding {value:g} (outside {d.support}) is {lp[0].flatten()[0].item():.6g} "
                "with validate_args=False, expected -inf"
            )
        tol = tolerance(x.dtype)
        _close(f"log_prob of the in-support sample next to one holding {value:g}", lp[1], want[1], tol, tol)
        _expect_error(ValueError, lambda b=bad: loud.log_prob(b),
                      f"an entry {value:g} outside {d.support} with validate_args=True", ("support", f"{value:g}"))
    if E:
        wrong = torch.zeros(x.shape[:-1] + (x.shape[-1] + 1,), dtype=x.dtype, device=x.device)
        for which, dd in (("validate_args=False", quiet), ("validate_args=True", loud)):
            _expect_error(ValueError, lambda w=wrong, q=dd: q.log_prob(w), f"a wrong event shape ({which})",
                          ("shape", str(tuple(E))))
