r"""Public checks of distributions and of the modules that build them.

Each check raises an ``AssertionError`` saying what went wrong; it returns
nothing on success. ``d`` is any torch/Pyro distribution; ``module`` is a
module whose call ``module(c)`` returns one (a gendist model).

Example:
    >>> from gendist.flows import NSF
    >>> flow = NSF(2, transforms=2, hidden=(16,))
    >>> check_shapes(flow()); check_pyro(flow())
    >>> round(check_normalized(flow()), 2)
    1.0
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
import torch.nn as nn
from pyro.distributions.testing.gof import auto_goodness_of_fit
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch import Size, Tensor
from torch.distributions import Distribution

from gendist.distributions.base import LOG_PROB_KINDS
from gendist.testing.transforms import _close, check_finite_gradients, tolerance

__all__ = [
    "check_log_prob_kind",
    "check_shapes",
    "check_pyro",
    "check_sample_log_prob",
    "check_normalized",
    "check_float64",
    "check_state_dict",
    "check_gradients",
    "check_extreme_inputs",
    "check_bad_inputs",
    "check_unimplemented",
    "chi2_pvalue",
]


def _is_estimate(d: Distribution) -> bool:
    r"""Whether ``d.log_prob`` is a stochastic estimate (two calls differ unless they draw the same random numbers)."""
    return getattr(d, "log_prob_kind", None) == "estimate"


def _same_noise(fn: Callable[[], Tensor], reseed: bool, seed: int = 0) -> Tensor:
    r"""``fn()``; with ``reseed``, run on the global RNG seeded with ``seed`` (the caller's RNG state is kept), so
    that two calls of a stochastic ``log_prob`` on the same shapes draw the same random numbers."""
    if not reseed:
        return fn()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return fn()


def check_log_prob_kind(d: Distribution, kind: str | None = None) -> None:
    r"""Check ``d`` declares what its ``log_prob`` is (``log_prob_kind``), and is honest about it.

    With ``kind``, the declaration must be that one. A declared ``"exact"`` or ``"bound"`` ``log_prob`` must be
    a function of the value alone: scoring its own samples twice, on other random numbers, gives the same values
    (within ``tolerance(dtype)``); a stochastic one must say ``"estimate"``.
    """
    declared = getattr(d, "log_prob_kind", None)
    if declared not in LOG_PROB_KINDS:
        raise AssertionError(
            f"{type(d).__name__}.log_prob_kind must be one of {sorted(LOG_PROB_KINDS)}, got {declared!r}"
        )
    if kind is not None and declared != kind:
        raise AssertionError(f"{type(d).__name__}.log_prob_kind is {declared!r}, expected {kind!r}")
    if declared not in ("exact", "bound"):
        return
    with torch.no_grad():
        x = d.sample((4,))
        first = _same_noise(lambda: d.log_prob(x.clone()), True, seed=1)
        second = _same_noise(lambda: d.log_prob(x.clone()), True, seed=2)
    tol = tolerance(first.dtype)
    _close(f"log_prob_kind {declared!r}: log_prob on other random numbers (a stochastic log_prob is an 'estimate')",
           second, first, tol, tol)


def check_shapes(d: Distribution, sample_shape: tuple[int, ...] = (3,)) -> None:
    r"""Check ``sample``/``rsample``/``log_prob`` shapes, ``support``, ``expand`` and ``to_event``.

    For a stochastic estimate (``log_prob_kind = "estimate"``) ``log_prob`` after ``expand`` is checked for
    its shape and finiteness only (more values draw other random numbers).
    """
    S, B, E = Size(sample_shape), d.batch_shape, d.event_shape
    x = d.sample(S)
    if x.shape != S + B + E:
        raise AssertionError(f"sample{tuple(S)}: shape {tuple(x.shape)} != {tuple(S + B + E)}")
    lp = d.log_prob(x.clone())  # a copy: score through log_prob, not a cached density
    if lp.shape != S + B:
        raise AssertionError(f"log_prob: shape {tuple(lp.shape)} != sample_shape + batch_shape {tuple(S + B)}")
    if not torch.isfinite(lp).all():
        raise AssertionError("log_prob of the distribution's own samples is not finite")
    if d.has_rsample and d.rsample(S).shape != S + B + E:
        raise AssertionError("rsample shape differs from sample shape")
    support = d.support
    if support.event_dim != len(E):
        raise AssertionError(f"support.event_dim {support.event_dim} != len(event_shape) {len(E)}")
    if not support.check(x).all():
        raise AssertionError("samples fall outside the declared support")
    e = d.expand(Size((2,)) + B)
    if e.batch_shape != (2,) + B or e.event_shape != E:
        raise AssertionError(f"expand: batch {tuple(e.batch_shape)}, event {tuple(e.event_shape)}")
    xe = e.sample(S)
    if xe.shape != S + (2,) + B + E or e.log_prob(xe).shape != S + (2,) + B:
        raise AssertionError("expand: sample/log_prob shapes are wrong")
    le = e.log_prob(x.unsqueeze(len(S)))
    if _is_estimate(d):
        # a stochastic estimate of more values draws other random numbers: compare its shape and finiteness only
        if le.shape != S + (2,) + B or not torch.isfinite(le).all():
            raise AssertionError(f"log_prob after expand: shape {tuple(le.shape)} or non-finite values")
    else:
        _close("log_prob after expand", le, lp.unsqueeze(len(S)).expand(S + (2,) + B), 1e-5, 1e-5)
    te = e.to_event(1) if isinstance(e, TorchDistributionMixin) else dist.Independent(e, 1)
    EB = Size((2,)) + B
    if te.event_shape != EB[-1:] + E or te.log_prob(xe).shape != S + EB[:-1]:
        raise AssertionError(f"to_event(1): event_shape {tuple(te.event_shape)} or log_prob shape is wrong")


def check_pyro(d: Distribution, plate_size: int = 4) -> None:
    r"""Check ``d`` works as a latent and an observed ``pyro.sample`` site inside a plate,
    under ``poutine.trace``, ``poutine.condition`` and ``.mask(False)``.

    A stochastic estimate (``log_prob_kind = "estimate"``) is compared with the site's on the same random
    numbers (both computed right after the same seed)."""
    B, E = d.batch_shape, d.event_shape
    dim = -len(B) - 1

    def model(obs: Tensor | None = None) -> Tensor:
        with pyro.plate("plate", plate_size, dim=dim):
            return pyro.sample("x", d, obs=obs)

    trace = pyro.poutine.trace(model).get_trace()
    x = trace.nodes["x"]["value"]
    if x.shape != Size((plate_size,)) + B + E:
        raise AssertionError(f"pyro.sample in a plate: value shape {tuple(x.shape)}")
    estimate = _is_estimate(d)  # a stochastic estimate agrees with itself only on the same random numbers
    _same_noise(trace.compute_log_prob, estimate)
    site_lp = trace.nodes["x"]["log_prob"]
    tol = 1e-4 if x.dtype == torch.float32 else 1e-8  # the site may hold the fused (forward) density
    _close("pyro trace log_prob vs d.log_prob", site_lp, _same_noise(lambda: d.log_prob(x.clone()), estimate), tol, tol)
    cond = pyro.poutine.trace(pyro.poutine.condition(model, data={"x": x})).get_trace()
    if not torch.equal(cond.nodes["x"]["value"], x):
        raise AssertionError("poutine.condition did not fix the site's value")
    masked = d.mask(False)
    if masked.log_prob(x).abs().sum() != 0:
        raise AssertionError(".mask(False) did not zero log_prob")


def check_sample_log_prob(
    d: Distribution, n: int = 4000, threshold: float = 1e-3, fused: bool = True, rounds: int = 3
) -> float:
    r"""Goodness of fit of ``d.sample`` against ``d.log_prob`` (Pyro's ``auto_goodness_of_fit``).

    Catches a flow that forgot a log-determinant or an unnormalized density.
    The score is the median of ``rounds`` independent tests on ``n`` samples
    each (the nearest-neighbour test is approximate at finite ``n``, so one
    p-value alone fails correct models too often); it must exceed
    ``threshold``. With ``fused``, also checks ``rsample_and_log_prob`` (or
    ``sample_and_log_prob``) agrees with ``log_prob``. ``d`` must have an
    empty batch shape, and ``n`` must exceed 1000 times the event size.
    Returns the score (1 is perfect).

    For a discrete support the test is Pearson's chi-square
    (:func:`chi2_pvalue`) of the counts of ``n`` samples in the cells listed
    by another ``n`` samples, plus one cell for all other values, against the
    probabilities ``log_prob`` gives them; the listed cells' probabilities must
    also sum to at most 1.
    """
    if d.batch_shape != ():
        raise ValueError(f"check_sample_log_prob needs batch_shape (), got {tuple(d.batch_shape)}")
    if n <= 1000 * d.event_shape.numel():
        raise ValueError(f"check_sample_log_prob needs n > 1000 * event size = {1000 * d.event_shape.numel()}")
    scores = []
    with torch.no_grad():
        if fused:
            paired = getattr(d, "rsample_and_log_prob" if d.has_rsample else "sample_and_log_prob", None)
            if paired is not None:
                x2, lp2 = paired((64,))
                tol = 1e-3 if x2.dtype == torch.float32 else 1e-8
                _close("fused log_prob vs log_prob", lp2, d.log_prob(x2), tol, tol)
        for _ in range(rounds):
            if d.support.is_discrete:
                scores.append(_discrete_goodness_of_fit(d, n))
                continue
            x = d.sample((n,))
            lp = d.log_prob(x.clone())  # a copy: score through log_prob, not a cached density
            scores.append(float(auto_goodness_of_fit(x.double(), lp.double().exp())))
    score = sorted(scores)[len(scores) // 2]
    if not score > threshold:
        raise AssertionError(
            f"samples disagree with log_prob: median goodness of fit {score:.3g} <= {threshold} "
            f"(rounds: {', '.join(f'{s:.3g}' for s in scores)})"
        )
    return score


def chi2_pvalue(observed: Tensor, expected: Tensor) -> float:
    r"""Pearson's chi-square test of counts against expected counts (same total); cells expected below 5 pooled.

    Returns the p-value, :math:`Q(\tfrac{k - 1}2, \tfrac{X^2}2)` for :math:`k` cells after pooling (1 for
    fewer than two cells; 0 if a cell of expected count 0 was hit).

    Example:
        >>> round(chi2_pvalue(torch.tensor([52.0, 48.0]), torch.tensor([50.0, 50.0])), 3)
        0.689
    """
    o, e = observed.double().flatten(), expected.double().flatten()
    if bool(((e <= 0) & (o > 0)).any()):
        return 0.0
    small = e < 5
    if bool(small.any()):
        o = torch.cat([o[~small], o[small].sum()[None]])
        e = torch.cat([e[~small], e[small].sum()[None]])
    keep = e > 0
    o, e = o[keep], e[keep]
    if len(e) < 2:
        return 1.0
    stat = ((o - e) ** 2 / e).sum()
    return float(torch.special.gammaincc(torch.tensor((len(e) - 1) / 2, dtype=torch.float64), stat / 2))


def _discrete_goodness_of_fit(d: Distribution, n: int) -> float:
    r"""Chi-square p-value of ``n`` discrete samples against ``log_prob``.

    The cells are the distinct values of ``n`` other samples (chosen independently of the counted
    ones), plus one cell for every other value, of probability one minus theirs.
    """
    E = d.event_shape
    cells = torch.unique(d.sample((n,)).reshape(n, -1), dim=0)
    x = d.sample((n,)).reshape(n, -1)
    _, index = torch.unique(torch.cat([cells, x]), dim=0, return_inverse=True)
    counts = torch.bincount(index[len(cells) :], minlength=int(index.max()) + 1)[index[: len(cells)]].double()
    probs = d.log_prob(cells.reshape((-1,) + E)).double().exp()
    total = float(probs.sum())
    if total > 1 + 1e-4:
        raise AssertionError(
            f"samples disagree with log_prob: {len(cells)} distinct values have total probability "
            f"{total:.6f} > 1 (an unnormalized log_prob)"
        )
    rest = max(0.0, 1.0 - total)
    observed = torch.cat([counts, torch.tensor([n - float(counts.sum())], dtype=torch.float64)])
    expected = n * torch.cat([probs, torch.tensor([rest], dtype=torch.float64)])
    return chi2_pvalue(observed.cpu(), expected.cpu())


def check_normalized(
    d: Distribution,
    low: Tensor | float | None = None,
    high: Tensor | float | None = None,
    points: int | None = None,
    atol: float = 1e-3,
    samples: int = 20000,
    pad: float = 0.25,
) -> float:
    r"""Check :math:`\int p(x) dx \approx 1` by quadrature, for events of 1 or 2 numbers (any event shape).

    The box ``[low, high]`` defaults to the range of ``samples`` samples widened
    by ``pad`` times its size on each side; the midpoint rule uses ``points``
    per axis (20,001 in 1-D, 1,001 in 2-D). Returns the integral.
    """
    E = d.event_shape
    D = E.numel()
    if d.batch_shape != () or D not in (1, 2):
        raise ValueError(f"check_normalized needs batch_shape () and events of 1 or 2 numbers, got {tuple(E)}")
    with torch.no_grad():
        if low is None or high is None:
            s = d.sample((samples,)).reshape(-1, D)
            lo, hi = s.min(0).values, s.max(0).values
            width = pad * (hi - lo)
            low = lo - width if low is None else low
            high = hi + width if high is None else high
        dtype = torch.float64 if d.sample().dtype == torch.float64 else torch.get_default_dtype()
        low = torch.as_tensor(low, dtype=dtype).expand(D)
        high = torch.as_tensor(high, dtype=dtype).expand(D)
        points = points or (20001 if D == 1 else 1001)
        # midpoint rule on a regular grid
        axes = [lo + (hi - lo) * (torch.arange(points, dtype=dtype) + 0.5) / points for lo, hi in zip(low, high)]
        cell = torch.prod((high - low) / points)
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, D)
        lp = torch.cat([_log_prob_or_ninf(d, g.reshape((-1,) + E)) for g in grid.split(65536)])
        total = float(torch.exp(lp.double()).sum() * cell)
    if not math.isfinite(total) or abs(total - 1) > atol:
        raise AssertionError(f"density integrates to {total:.6f} over the box, not 1 (atol={atol})")
    return total


def _log_prob_or_ninf(d: Distribution, x: Tensor) -> Tensor:
    """``log_prob`` inside the support, ``-inf`` outside (so validation never trips)."""
    inside = d.support.check(x)
    lp = torch.full(inside.shape, -math.inf, dtype=x.dtype)
    if inside.any():
        lp[inside] = d.log_prob(x[inside])
    return lp


def _context_like(c: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if c is None else c.to(dtype)


def check_float64(module: nn.Module, c: Tensor | None = None) -> None:
    r"""Check a model runs in float64: ``module.double()`` samples and scores in float64."""
    m = copy.deepcopy(module).double()
    d = m(_context_like(c, torch.float64))
    x = d.sample((5,))
    if x.dtype != torch.float64:
        raise AssertionError(f"float64 model sampled dtype {x.dtype}")
    lp = d.log_prob(x)
    if lp.dtype != torch.float64 or not torch.isfinite(lp).all():
        raise AssertionError(f"float64 model log_prob has dtype {lp.dtype} / non-finite values")


def check_state_dict(factory: Callable[[], nn.Module], c: Tensor | None = None, x: Tensor | None = None) -> None:
    r"""Check that ``state_dict`` saved and loaded with ``weights_only=True`` reproduces ``log_prob`` exactly.

    ``factory()`` builds a fresh model; the first one's state is loaded into
    a second one built from a different random seed. A stochastic estimate
    (``log_prob_kind = "estimate"``) is compared on the same random numbers.
    """
    with torch.random.fork_rng():  # the caller's RNG state is left as it was
        torch.manual_seed(1)
        a = factory()
        torch.manual_seed(2)
        b = factory()
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    a.eval(), b.eval()
    with torch.no_grad():
        x = a(c).sample((7,)) if x is None else x
        estimate = _is_estimate(a(c))  # a stochastic estimate is reproducible only on the same random numbers
        la = _same_noise(lambda: a(c).log_prob(x), estimate)
        lb = _same_noise(lambda: b(c).log_prob(x), estimate)
    if not torch.equal(la, lb):
        raise AssertionError(f"log_prob differs after a state_dict round trip by {(la - lb).abs().max():.3g}")


def _reached(module: nn.Module, unreached: tuple[str, ...]) -> list[Tensor]:
    r"""The trainable parameters but those whose names start with one of ``unreached``."""
    return [p for n, p in module.named_parameters() if p.requires_grad and not n.startswith(tuple(unreached))]


def check_gradients(module: nn.Module, x: Tensor, c: Tensor | None = None, unreached: tuple[str, ...] = ()) -> None:
    r"""Check ``log_prob(x)`` is finite and its gradient reaches every trainable parameter, finite.

    ``unreached`` names (prefixes of parameter names) the parameters ``log_prob`` does not depend on by
    design: a VQ-VAE's ``"encoder."``, which picks the integer codes.
    """
    check_finite_gradients(module(c).log_prob(x), _reached(module, unreached), "log_prob")


def check_extreme_inputs(module: nn.Module, c: Tensor | None = None, scales: tuple[float, ...] = (30.0, 1e3),
                         unreached: tuple[str, ...] = ()) -> None:
    r"""Check ``log_prob`` and its gradients stay finite far out in the tails (e.g. beyond a spline's bound).

    Points outside a constrained support are skipped (their log-density is
    :math:`-\infty` by definition). ``unreached`` is :func:`check_gradients`'.
    """
    d = module(c)
    params = _reached(module, unreached)
    x0 = d.sample((8,))
    for scale in scales:
        x = x0 / x0.abs().amax().clamp_min(1e-6) * scale
        inside = d.support.check(x)
        x = x.where(inside.reshape(inside.shape + (1,) * len(d.event_shape)).expand_as(x), x0)
        x = x.detach().requires_grad_(True)
        lp = module(c).log_prob(x)
        check_finite_gradients(lp, params + [x], f"log_prob at |x| ~ {scale:g}")


def _expect_error(kind: type[Exception], fn: Callable[[], object], what: str, words: tuple[str, ...]) -> None:
    try:
        fn()
    except kind as e:
        message = str(e)
        missing = [w for w in words if w not in message]
        if missing:
            raise AssertionError(f"{what}: the error message {message!r} does not mention {missing}") from e
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{what}: raised {type(e).__name__}: {e}, expected {kind.__name__}") from e
    raise AssertionError(f"{what}: no error was raised, expected {kind.__name__}")


def check_bad_inputs(d: Distribution) -> None:
    r"""Check ``log_prob`` rejects NaN, infinite, integer and wrongly shaped values with clear errors.

    For a discrete support (integers stored as floats) only the wrong shape is
    checked: integer tensors are legitimate values there, and NaN, infinite and
    other out-of-support values are :func:`~gendist.testing.check_support`'s.
    """
    x = d.sample((2,))
    if d.event_shape.numel() == 0 or not x.dtype.is_floating_point:
        return
    wrong = torch.zeros(x.shape[:-1] + (x.shape[-1] + 1,), dtype=x.dtype)
    if d.support.is_discrete:
        _expect_error(ValueError, lambda: d.log_prob(wrong), "wrong event shape", ("shape", str(tuple(d.event_shape))))
        return
    nan = x.clone()
    nan.view(-1)[0] = float("nan")
    _expect_error(ValueError, lambda: d.log_prob(nan), "NaN input", ("NaN",))
    inf = x.clone()
    inf.view(-1)[0] = float("inf")
    _expect_error(ValueError, lambda: d.log_prob(inf), "infinite input", ("infinite",))
    _expect_error(TypeError, lambda: d.log_prob(x.long()), "integer input", ("dtype", "int64"))
    _expect_error(ValueError, lambda: d.log_prob(wrong), "wrong event shape", ("shape", str(tuple(d.event_shape))))


ALTERNATIVE_WORDS: tuple[str, ...] = ("instead", "use ", "estimate", "sample(", "gendist.")
r"""A message names an alternative when it holds one of these (what :func:`check_unimplemented` looks for)."""


def check_unimplemented(d: Distribution, value: Tensor | None = None) -> None:
    r"""Check every optional method of ``d`` works or raises an error that says what to use instead.

    Calls ``mean``, ``variance``, ``stddev``, ``entropy()``, ``cdf(value)``, ``icdf`` (at ``cdf(value)``
    where that works, else at 0.5), ``enumerate_support()`` (only when ``has_enumerate_support`` is False)
    and ``kl_divergence(d, d)``. Each must either return (the moments with shape ``batch_shape + event_shape``,
    the entropy and the KL with shape ``batch_shape``) or raise a ``NotImplementedError`` (or a gendist
    ``ValueError``/``TypeError``) whose message is not empty and names an alternative: it holds one of
    :data:`ALTERNATIVE_WORDS` (``"instead"``, ``"use "``, ``"estimate"``, ``"sample("``, ``"gendist."``).

    Arguments:
        d: the distribution.
        value: where to evaluate ``cdf`` (default: one ``d.sample()``).

    Example:
        >>> from gendist.flows import NSF
        >>> check_unimplemented(NSF(2, transforms=1, hidden=(8,))())
    """
    B, E = d.batch_shape, d.event_shape
    name = type(d).__name__
    if value is None:
        with torch.no_grad():
            value = d.sample()

    def attempt(what: str, fn: Callable[[], Tensor], shape: Size | None = None) -> Tensor | None:
        try:
            out = fn()
        except (NotImplementedError, ValueError, TypeError) as e:
            message = str(e).strip()
            if not message:
                raise AssertionError(f"{name}.{what} raised {type(e).__name__} with an empty message") from e
            if not any(word in message for word in ALTERNATIVE_WORDS):
                raise AssertionError(
                    f"{name}.{what} raised {type(e).__name__}({message!r}), which names no alternative "
                    f"(none of {list(ALTERNATIVE_WORDS)})"
                ) from e
            return None
        except Exception as e:  # noqa: BLE001
            raise AssertionError(
                f"{name}.{what} raised {type(e).__name__}: {e}; expected a result or a NotImplementedError "
                "naming an alternative"
            ) from e
        if shape is not None and isinstance(out, Tensor) and out.shape != shape:
            raise AssertionError(f"{name}.{what} has shape {tuple(out.shape)}, expected {tuple(shape)}")
        return out

    with torch.no_grad():
        for what in ("mean", "variance", "stddev"):
            attempt(what, lambda w=what: getattr(d, w), B + E)
        attempt("entropy()", d.entropy, B)
        p = attempt("cdf(value)", lambda: d.cdf(value))
        q = p if isinstance(p, Tensor) else torch.full_like(value, 0.5)
        attempt("icdf(p)", lambda: d.icdf(q))
        if not d.has_enumerate_support:
            attempt("enumerate_support()", d.enumerate_support)
        attempt("kl_divergence(d, d)", lambda: torch.distributions.kl_divergence(d, d), B)
