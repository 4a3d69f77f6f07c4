r"""Public checks of implicit distributions: models that sample but have no density (``log_prob_kind = "none"``).

A GAN's distribution (:class:`~gendist.Implicit`) draws :math:`x = G(z, c)`, :math:`z \sim p(z)`, and cannot
score a value: the checks of :mod:`gendist.testing.distributions` that go through ``log_prob`` do not apply. What
does apply is checked here: the shapes of ``sample`` and ``rsample``, the gradient of ``rsample`` (one generator
pass: it must reach the generator's parameters), the support, ``expand``, the error ``log_prob`` raises (it must
say what to use instead), and the use in Pyro (a latent site in a plate, ``Predictive``, and an observed site
fitted by the likelihood-free ``EnergyDistance``). Each check raises an ``AssertionError`` saying what went
wrong; it returns nothing on success.

Example:
    >>> from gendist.gan import GAN
    >>> gan = GAN(2, latent=2, hidden=(8,), context=3).eval()
    >>> check_implicit(gan(torch.randn(4, 3)), generator=gan.generator)
    >>> check_reparameterized(gan, torch.randn(4, 3))
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn as nn
from pyro import poutine
from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.infer import EnergyDistance, Predictive
from torch import Size, Tensor
from torch.distributions import Distribution

from gendist.distributions.implicit import LogProbUnavailable
from gendist.testing.distributions import _expect_error
from gendist.testing.transforms import _close, tolerance

__all__ = ["LOG_PROB_WORDS", "check_implicit", "check_reparameterized"]

LOG_PROB_WORDS: tuple[str, ...] = ("gendist.metrics", "EnergyDistance")
r"""What the error of an implicit distribution's ``log_prob`` must name: the sample-based metrics and Pyro's
likelihood-free loss."""


def _trainable(module: nn.Module, unreached: Sequence[str] = ()) -> list[tuple[str, Tensor]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad and not n.startswith(tuple(unreached))]


def _reach(value: Tensor, named: list[tuple[str, Tensor]], what: str) -> None:
    r"""``value`` is finite and the gradient of its sum reaches every one of ``named``, finite."""
    if not bool(torch.isfinite(value).all()):
        raise AssertionError(f"{what}: {int((~torch.isfinite(value)).sum())} non-finite values")
    if not named:
        return
    if not value.requires_grad:
        raise AssertionError(f"{what} does not depend on the generator's parameters (it does not require grad): "
                             "rsample must be differentiable")
    grads = torch.autograd.grad(value.sum(), [p for _, p in named], allow_unused=True)
    missing = [n for (n, _), g in zip(named, grads) if g is None]
    if missing:
        raise AssertionError(f"{what}: no gradient reaches the generator's parameters {missing}")
    bad = [n for (n, _), g in zip(named, grads) if not bool(torch.isfinite(g).all())]
    if bad:
        raise AssertionError(f"{what}: non-finite gradients for the generator's parameters {bad}")


def _shape(what: str, x: Tensor, want: Size) -> None:
    if x.shape != want:
        raise AssertionError(f"{what}: shape {tuple(x.shape)} != sample_shape + batch_shape + event_shape "
                             f"{tuple(want)}")


def check_reparameterized(module: nn.Module, c: Tensor | None = None, sample_shape: tuple[int, ...] = (3,), *,
                          generator: nn.Module | None = None, unreached: Sequence[str] = ()) -> None:
    r"""Check ``module(c).rsample`` is one differentiable pass: finite samples whose gradient reaches every
    trainable parameter of the generator, finite, while ``sample`` takes none.

    The generator is ``generator``, by default ``module.generator`` when the module has one (a
    :class:`~gendist.gan.GAN`: its critic is not on the sampling path), else the whole module; ``unreached``
    names (prefixes of its parameter names) the parameters sampling does not use by design. A GAN with ``ema``
    samples in eval mode with the moving average of its weights, which take no gradient: check such a module in
    training mode.

    Example:
        >>> from gendist.gan import GAN
        >>> check_reparameterized(GAN(3, latent=2, hidden=(8,)))
    """
    d = module(c)
    if not d.has_rsample:
        raise AssertionError(f"{type(d).__name__}.has_rsample is False: an implicit model samples by a "
                             "differentiable pass (rsample)")
    if generator is None:
        generator = getattr(module, "generator", None)
        generator = generator if isinstance(generator, nn.Module) else module
    S = Size(sample_shape)
    y = d.rsample(S)
    _shape("rsample", y, S + d.batch_shape + d.event_shape)
    _reach(y, _trainable(generator, unreached), "rsample")
    x = d.sample(S)
    if x.requires_grad:
        raise AssertionError("sample returned a tensor that requires grad: sample must not build a graph "
                             "(rsample does)")


def _pyro(d: Distribution, plate_size: int, named: list[tuple[str, Tensor]]) -> None:
    r"""``d`` as a latent site in a plate (trace, condition, Predictive) and as an observed site of
    ``EnergyDistance``."""
    B, E = d.batch_shape, d.event_shape
    dim = -len(B) - 1
    want = Size((plate_size,)) + B + E

    def model(obs: Tensor | None = None) -> Tensor:
        with pyro.plate("plate", plate_size, dim=dim):
            return pyro.sample("x", d, obs=obs)

    trace = poutine.trace(model).get_trace()
    x = trace.nodes["x"]["value"]
    _shape(f"pyro.sample in a plate of {plate_size}", x, want)
    if not bool(d.support.check(x).all()):
        raise AssertionError("pyro.sample in a plate: values fall outside the declared support")
    _expect_error(LogProbUnavailable, trace.compute_log_prob, "scoring a traced site (trace.compute_log_prob)",
                  LOG_PROB_WORDS)
    cond = poutine.trace(poutine.condition(model, data={"x": x})).get_trace()
    if not torch.equal(cond.nodes["x"]["value"], x):
        raise AssertionError("poutine.condition did not fix the site's value")
    for parallel in (False, True):
        got = Predictive(model, num_samples=2, parallel=parallel)()["x"]
        _shape(f"Predictive(num_samples=2, parallel={parallel})", got, Size((2,)) + want)
    with torch.no_grad():
        data = d.sample((plate_size,))
    loss = EnergyDistance(num_particles=2)(model, lambda obs=None: None, data)
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        raise AssertionError(f"EnergyDistance on an observed site: expected a scalar loss, got {loss!r}")
    _reach(loss, named, "EnergyDistance on an observed site")


def check_implicit(d: Distribution, *, generator: nn.Module | None = None,
                   sample_shapes: Sequence[tuple[int, ...]] = ((), (3,), (2, 2)), plate_size: int = 3) -> None:
    r"""Check a distribution without a density: what applies of :func:`~gendist.testing.check_shapes` and
    :func:`~gendist.testing.check_pyro`, and that it says it has no ``log_prob``.

    - ``log_prob_kind == "none"``, and ``log_prob`` raises
      :class:`~gendist.distributions.implicit.LogProbUnavailable` naming :data:`LOG_PROB_WORDS`
      (``gendist.metrics``, ``EnergyDistance``), on ``d`` and on ``d.expand``;
    - ``sample`` and ``rsample`` have shape ``sample_shape + batch_shape + event_shape`` for each of
      ``sample_shapes``, finite values in the support (``support.event_dim == len(event_shape)``); ``sample``
      does not require grad; the same seed gives the same ``rsample``;
    - ``rsample``'s gradient reaches every trainable parameter of ``generator`` (default: ``d.generator`` when
      it is a module), finite;
    - ``expand((2,) + batch_shape)`` and ``to_event(1)`` give the right shapes;
    - in Pyro: a ``pyro.sample`` site in a plate of ``plate_size`` under ``poutine.trace`` (and ``condition``)
      has the plate's shape, scoring it raises ``LogProbUnavailable``, ``Predictive`` (sequential and
      vectorized) stacks draws, and ``EnergyDistance`` on an observed site gives a finite scalar loss whose
      gradient reaches the generator.

    Example:
        >>> from gendist import Implicit
        >>> gen = torch.nn.Linear(2, 3)
        >>> check_implicit(Implicit(lambda z, c: gen(z), dist.Normal(torch.zeros(2), 1.0).to_event(1), (3,)),
        ...                generator=gen)
    """
    name = type(d).__name__
    declared = getattr(d, "log_prob_kind", None)
    if declared != "none":
        raise AssertionError(f"{name}.log_prob_kind is {declared!r}: a distribution without a density declares "
                             "'none'")
    if generator is None and isinstance(getattr(d, "generator", None), nn.Module):
        generator = d.generator
    named = _trainable(generator) if generator is not None else []
    B, E = d.batch_shape, d.event_shape
    if not d.has_rsample:
        raise AssertionError(f"{name}.has_rsample is False: an implicit model samples by a differentiable pass")
    support = d.support
    if support.event_dim != len(E):
        raise AssertionError(f"support.event_dim {support.event_dim} != len(event_shape) {len(E)}")
    for shape in sample_shapes:
        S = Size(shape)
        x = d.sample(S)
        _shape(f"sample{tuple(S)}", x, S + B + E)
        if x.requires_grad:
            raise AssertionError("sample returned a tensor that requires grad: sample must not build a graph")
        if not bool(torch.isfinite(x).all()):
            raise AssertionError(f"sample{tuple(S)}: non-finite values")
        if not bool(support.check(x).all()):
            raise AssertionError(f"sample{tuple(S)}: values fall outside the declared support {support}")
        y = d.rsample(S)
        _shape(f"rsample{tuple(S)}", y, S + B + E)
        if not bool(support.check(y.detach()).all()):
            raise AssertionError(f"rsample{tuple(S)}: values fall outside the declared support {support}")
        _reach(y, named, f"rsample{tuple(S)}")
    x = d.sample()
    with torch.no_grad():
        again = []
        for _ in range(2):
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                torch.manual_seed(0)
                again.append(d.rsample((2,)))
    tol = tolerance(again[0].dtype)
    _close("rsample after the same seed", again[1], again[0], tol, tol)
    _expect_error(LogProbUnavailable, lambda: d.log_prob(x), f"{name}.log_prob", LOG_PROB_WORDS)
    e = d.expand(Size((2,)) + B)
    if e.batch_shape != (2,) + B or e.event_shape != E:
        raise AssertionError(f"expand: batch {tuple(e.batch_shape)}, event {tuple(e.event_shape)}")
    for S in (Size(), Size((3,))):
        _shape(f"expand: sample{tuple(S)}", e.sample(S), S + (2,) + B + E)
        _shape(f"expand: rsample{tuple(S)}", e.rsample(S), S + (2,) + B + E)
    _expect_error(LogProbUnavailable, lambda: e.log_prob(e.sample()), f"{name}.expand(...).log_prob",
                  LOG_PROB_WORDS)
    te = e.to_event(1) if isinstance(e, TorchDistributionMixin) else dist.Independent(e, 1)
    EB = Size((2,)) + B
    if te.event_shape != EB[-1:] + E or te.sample((3,)).shape != Size((3,)) + EB + E:
        raise AssertionError(f"to_event(1): event_shape {tuple(te.event_shape)} or sample shape is wrong")
    _pyro(d, plate_size, named)
