r"""An implicit distribution: a generator network pushed through a latent distribution, a GAN's model."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import pyro.distributions as dist
import torch
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_context, check_integer, check_number, check_shape
from gendist.distributions.base import Honest, register_no_kl

__all__ = ["INTERPOLATIONS", "Implicit", "LogProbUnavailable", "slerp", "takes_truncation"]

Generator = Callable[..., Tensor]

INTERPOLATIONS = ("slerp", "lerp")
r"""The latent paths :meth:`Implicit.interpolate` walks: spherical (for Gaussian latents) or straight."""


def takes_truncation(generator: Generator) -> bool:
    r"""Whether ``generator`` truncates itself (its call takes ``truncation``, a style generator's :math:`\psi` in
    :math:`W`); a wrapper may say so for the network it calls through its own ``takes_truncation``."""
    said = getattr(generator, "takes_truncation", None)
    if said is not None:
        return bool(said)
    try:
        return "truncation" in inspect.signature(getattr(generator, "forward", generator)).parameters
    except (TypeError, ValueError):
        return False


class LogProbUnavailable(NotImplementedError):
    r"""Raised by ``log_prob`` of a distribution that has none (``log_prob_kind = "none"``), naming what to use."""


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    r"""Spherical interpolation :math:`\frac{\sin((1-t)\Omega)}{\sin\Omega} z_0 + \frac{\sin(t\Omega)}{\sin\Omega} z_1`,
    :math:`\cos\Omega = \langle z_0, z_1\rangle / \lVert z_0\rVert \lVert z_1\rVert`, over the last dimension
    (White, 2016); straight interpolation where the two are (anti)parallel.

    Example:
        >>> z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        >>> slerp(z0, z1, torch.tensor([0.5]))
        tensor([[0.7071, 0.7071]])
    """
    t = t.reshape(-1, *([1] * z0.dim()))
    cos = (z0 * z1).sum(-1, keepdim=True) / (z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True))
    omega = torch.acos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    straight = sin.abs() < 1e-6
    safe = torch.where(straight, torch.ones_like(sin), sin)
    a = torch.where(straight, 1 - t, torch.sin((1 - t) * omega) / safe)
    b = torch.where(straight, t, torch.sin(t * omega) / safe)
    return a * z0 + b * z1


class Implicit(Honest, dist.TorchDistribution):
    r"""The distribution of :math:`x = G(z, c)`, :math:`z \sim p(z)`: a generator :math:`G` pushed through a latent.

    ``rsample`` is one generator pass, differentiable in the generator's parameters (and in the latent's, when
    the latent has ``rsample``: a flow latent is allowed). The density of :math:`x` is not available — the
    generator is neither invertible nor volume-preserving in general — so ``log_prob_kind = "none"`` and
    ``log_prob`` raises :class:`LogProbUnavailable`, naming what compares such a model with data instead:
    the sample-based metrics of :mod:`gendist.metrics` and Pyro's likelihood-free ``EnergyDistance``.

    The batch shape is the context's leading shape; ``sample(sample_shape)`` has shape
    ``sample_shape + batch_shape + event_shape``. Two options of the call change what is drawn:

    - ``truncation`` :math:`\psi \in (0, 1]`, the truncation trick: latents are pulled towards the latent's mean,
      :math:`z \leftarrow \bar z + \psi (z - \bar z)` — or, for a generator whose ``forward`` takes ``truncation``
      (a style generator truncates in its :math:`W` space), passed to the generator;
    - :meth:`interpolate` walks a latent path between two latents, :meth:`push` maps given latents.

    Arguments:
        generator: ``generator(z, c) -> x`` on a flat batch: ``z`` of shape ``(N, *latent_shape)``, ``c`` of shape
            ``(N, context)`` or None, ``x`` of shape ``(N, *event_shape)``.
        latent: the distribution of :math:`z` (its batch and event shapes together are the latent shape).
        event_shape: the shape of one :math:`x`.
        context: the context (its leading dimensions are the batch shape), or None.
        context_size: the size of one context (checked; default: the context's last dimension).
        support: the support of one entry of :math:`x` (default real).
        truncation: :math:`\psi`, or None.

    Example:
        >>> gen = torch.nn.Linear(2, 3)
        >>> d = Implicit(lambda z, c: gen(z), dist.Normal(torch.zeros(2), 1.0).to_event(1), (3,))
        >>> d.rsample((5,)).shape, d.log_prob_kind
        (torch.Size([5, 3]), 'none')
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = True
    log_prob_kind = "none"

    def __init__(
        self,
        generator: Generator,
        latent: Distribution,
        event_shape: Size | tuple[int, ...],
        context: Tensor | None = None,
        *,
        context_size: int | None = None,
        support: constraints.Constraint = constraints.real,
        truncation: float | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if not callable(generator):
            raise TypeError(f"Implicit: `generator` must be callable as generator(z, c), "
                            f"got {type(generator).__name__}")
        if not isinstance(latent, Distribution):
            raise TypeError(f"Implicit: `latent` must be a torch Distribution, got {type(latent).__name__}")
        event_shape = check_shape(event_shape, "Implicit: `event_shape`")
        if context is not None:
            size = context.shape[-1] if context.dim() else 0
            check_context(context, context_size if context_size is not None else size, "Implicit")
        elif context_size:
            check_context(None, context_size, "Implicit")
        if truncation is not None:
            truncation = check_number("Implicit: `truncation`", truncation)
            if truncation > 1:
                raise ValueError(f"Implicit: `truncation` must be in (0, 1], got {truncation!r}")
        self.generator, self.latent, self.context = generator, latent, context
        self.truncation = truncation
        self.latent_shape = latent.batch_shape + latent.event_shape
        self._support = support
        batch_shape = context.shape[:-1] if context is not None else Size()
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        base = self._support
        n = len(self.event_shape) - getattr(base, "event_dim", 0)
        return constraints.independent(base, n) if n > 0 else base

    def expand(self, batch_shape: Size | tuple[int, ...], _instance: Implicit | None = None) -> Implicit:
        batch_shape = Size(batch_shape)
        if self.context is None:
            if batch_shape == self.batch_shape:
                return self
            new = self._get_checked_instance(Implicit, _instance)
            new.__dict__.update(self.__dict__)
            super(Implicit, new).__init__(batch_shape, self.event_shape, validate_args=False)
            new._validate_args = self._validate_args
            return new
        context = self.context.expand(batch_shape + self.context.shape[-1:])
        return Implicit(self.generator, self.latent, self.event_shape, context, support=self._support,
                        truncation=self.truncation, validate_args=self._validate_args)

    def _truncated(self, z: Tensor) -> Tensor:
        """Latents pulled towards the latent's mean by the truncation :math:`\\psi`."""
        try:
            mean = self.latent.mean
        except NotImplementedError as e:
            raise NotImplementedError(
                f"Implicit: truncation pulls latents towards the latent's mean, but the latent "
                f"{type(self.latent).__name__} has none: {e}") from e
        return mean + self.truncation * (z - mean)

    def _run(self, z: Tensor, shape: Size) -> Tensor:
        """The generator on latents ``z`` of shape ``shape + latent_shape``; ``shape`` ends in the batch shape."""
        n = math.prod(shape)
        flat = z.reshape(n, *self.latent_shape)
        c = None
        if self.context is not None:
            c = self.context.expand(shape[: len(shape) - len(self.batch_shape)] + self.context.shape)
            c = c.reshape(n, self.context.shape[-1])
        options: dict[str, Any] = {}
        if self.truncation is not None:
            if takes_truncation(self.generator):
                options["truncation"] = self.truncation
            else:
                flat = self._truncated(flat)
        x = self.generator(flat, c, **options)
        if not isinstance(x, Tensor) or x.shape != (n, *self.event_shape):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"Implicit: the generator returned shape {got} for {n} latents, but the event shape is "
                f"{tuple(self.event_shape)}: it must return ({n}, {', '.join(map(str, self.event_shape))})"
            )
        return x.reshape(*shape, *self.event_shape)

    def rsample(self, sample_shape: Size | tuple[int, ...] = Size()) -> Tensor:
        shape = Size(sample_shape) + self.batch_shape
        n = math.prod(shape)
        draw = self.latent.rsample if self.latent.has_rsample else self.latent.sample
        z = draw((n,))
        return self._run(z, shape)

    def sample(self, sample_shape: Size | tuple[int, ...] = Size()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def push(self, z: Tensor) -> Tensor:
        r"""The generator on given latents :math:`G(z, c)`: ``z`` of shape ``(..., *batch_shape, *latent_shape)``.

        Example:
            >>> d = Implicit(lambda z, c: 2 * z, dist.Normal(torch.zeros(2), 1.0).to_event(1), (2,))
            >>> d.push(torch.ones(3, 2))[0]
            tensor([2., 2.])
        """
        if not isinstance(z, Tensor):
            raise TypeError(f"Implicit.push: `z` must be a tensor, got {type(z).__name__}")
        k = len(self.latent_shape)
        if z.dim() < k or z.shape[z.dim() - k:] != self.latent_shape:
            raise ValueError(f"Implicit.push: `z` must have shape (..., "
                             f"{', '.join(map(str, self.latent_shape))}) ending in the latent shape "
                             f"{tuple(self.latent_shape)}, got {tuple(z.shape)}")
        try:
            lead = torch.broadcast_shapes(z.shape[: z.dim() - k], self.batch_shape)
        except RuntimeError:
            raise ValueError(f"Implicit.push: the leading shape of `z` {tuple(z.shape[: z.dim() - k])} does not "
                             f"broadcast with the batch shape {tuple(self.batch_shape)}") from None
        return self._run(z.expand(*lead, *self.latent_shape), lead)

    def interpolate(
        self, steps: int = 8, z0: Tensor | None = None, z1: Tensor | None = None, method: str = "slerp"
    ) -> Tensor:
        r"""Samples along a latent path from ``z0`` to ``z1`` (each drawn from the latent when not given).

        Returns a tensor of shape ``(steps, *batch_shape, *event_shape)``: ``G(z(t))`` at ``steps`` equally
        spaced :math:`t \in [0, 1]`, by :func:`slerp` (``method="slerp"``, for Gaussian latents, whose mass
        sits near a sphere) or straight lines (``"lerp"``).

        Example:
            >>> d = Implicit(lambda z, c: z, dist.Normal(torch.zeros(2), 1.0).to_event(1), (2,))
            >>> d.interpolate(3, torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]), method="lerp")[1]
            tensor([0., 0.])
        """
        steps = check_integer("Implicit.interpolate: `steps`", steps, low=2)
        if method not in INTERPOLATIONS:
            raise ValueError(f"Implicit.interpolate: `method` must be one of {INTERPOLATIONS}, got {method!r}")
        with torch.no_grad():
            n = max(1, self.batch_shape.numel())
            ends = [z if z is not None else self.latent.sample((n,)).reshape(*self.batch_shape, *self.latent_shape)
                    for z in (z0, z1)]
        z0, z1 = torch.broadcast_tensors(*ends)
        t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)
        if method == "slerp":
            flat0, flat1 = z0.flatten(z0.dim() - len(self.latent_shape)), z1.flatten(z1.dim() - len(self.latent_shape))
            path = slerp(flat0, flat1, t).reshape(steps, *z0.shape)
        else:
            path = torch.lerp(z0.unsqueeze(0), z1.unsqueeze(0), t.reshape(-1, *([1] * z0.dim())))
        return self.push(path)

    def log_prob(self, value: Tensor) -> Tensor:
        raise LogProbUnavailable(
            "Implicit has no log_prob (log_prob_kind = 'none'): a generator pushed through a latent has no "
            "density that can be computed. Compare its samples with data instead: gendist.metrics "
            "(classifier_two_sample_test, mmd, energy_distance, sliced_wasserstein, prdc, frechet_distance, "
            "sample_quality), or fit it in Pyro by the likelihood-free pyro.infer.EnergyDistance"
        )

    def __repr__(self) -> str:
        extra = f", truncation={self.truncation}" if self.truncation is not None else ""
        return (f"Implicit(event_shape={tuple(self.event_shape)}, batch_shape={tuple(self.batch_shape)}, "
                f"latent_shape={tuple(self.latent_shape)}{extra})")


register_no_kl(Implicit)
