r"""A two-level hierarchical VAE: :math:`p(x \mid z_1) p(z_1 \mid z_2) p(z_2)` with a bottom-up guide."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution

from gendist._checks import check_integer, check_shape
from gendist._recipes import Recorded
from gendist.distributions.bases import StandardNormal
from gendist.distributions.chain import Chain
from gendist.distributions.conditionals import Conditional
from gendist.distributions.lazy import LazyDistribution
from gendist.latent.core import LatentModel
from gendist.latent.nets import Decoder, GaussianEncoder

__all__ = ["HierarchicalVAE", "TopDown", "BottomUp"]


def _with(h: Tensor, c: Tensor | None) -> Tensor:
    return h if c is None else torch.cat([h, c.expand(h.shape[:-1] + c.shape[-1:])], -1)


class _Given:
    r"""``module(_with(u, c))``: the second block of a :class:`Chain`, :math:`p(v \mid u, c)`, from a module.

    A module-level class rather than a lambda, so the distributions holding it pickle.
    """

    def __init__(self, module: LazyDistribution, c: Tensor | None) -> None:
        self.module, self.c = module, c

    def __call__(self, u: Tensor) -> Distribution:
        return self.module(_with(u, self.c))


class TopDown(LazyDistribution):
    r"""The prior :math:`p(z_1, z_2 \mid c) = p(z_2) p(z_1 \mid z_2, c)` over :math:`[z_1, z_2]` (a :class:`Chain`)."""

    def __init__(self, latents: tuple[int, int], context: int, hidden: Sequence[int], activation: type[nn.Module]):
        super().__init__()
        self.top = StandardNormal(latents[1])
        self.down = GaussianEncoder(latents[1] + context, latents[0], hidden, "diag", activation)
        self.latents = latents

    def forward(self, c: Tensor | None = None) -> Distribution:
        return Chain(self.top(c), _Given(self.down, c), self.latents[0], first_last=True)


class BottomUp(LazyDistribution):
    r"""The guide :math:`q(z_1, z_2 \mid x, c) = q(z_1 \mid x, c)\, q(z_2 \mid z_1, c)` over :math:`[z_1, z_2]`."""

    def __init__(
        self,
        features: int,
        context: int,
        latents: tuple[int, int],
        hidden: Sequence[int],
        top_hidden: Sequence[int],
        activation: type[nn.Module],
    ) -> None:
        super().__init__()
        self.context = context
        self.bottom = GaussianEncoder(features, latents[0], hidden, "diag", activation)
        self.up = GaussianEncoder(latents[0] + context, latents[1], top_hidden, "diag", activation)
        self.latents = latents

    def forward(self, c: Tensor | None = None) -> Distribution:  # c: the flattened x, then the context
        ctx = c[..., c.shape[-1] - self.context :] if self.context else None
        return Chain(self.bottom(c), _Given(self.up, ctx), self.latents[1])


class _Bottom(LazyDistribution):
    r"""The decoder :math:`p(x \mid z_1, c)`: it reads :math:`z_1` (and the context) out of :math:`[z_1, z_2, c]`."""

    def __init__(self, decoder: LazyDistribution, latents: tuple[int, int]) -> None:
        super().__init__()
        self.decoder, self.latents = decoder, latents

    def forward(self, c: Tensor | None = None) -> Distribution:
        L1, L2 = self.latents
        return self.decoder(torch.cat([c[..., :L1], c[..., L1 + L2 :]], -1))


class HierarchicalVAE(Recorded, LatentModel):
    r"""A VAE with two stochastic layers (Burda et al., 2016, section 5; Sønderby et al., 2016).

    .. math:: p(x) = \iint p(x \mid z_1)\, p(z_1 \mid z_2)\, p(z_2)\, dz_1\, dz_2, \qquad
        q(z_1, z_2 \mid x) = q(z_1 \mid x)\, q(z_2 \mid z_1)

    with Gaussian conditionals from perceptrons and :math:`p(z_2) = \mathcal{N}(0, I)`.
    The latent value is :math:`z = [z_1, z_2]`; the KL term of the ELBO is the
    one-sample estimate (it has no closed form). Everything else is :class:`~gendist.latent.VAE`'s.

    Arguments:
        shape: the event shape of :math:`x`.
        latents: :math:`(|z_1|, |z_2|)`.
        family: the decoder's per-entry family.
        hidden: the hidden sizes of :math:`q(z_1 \mid x)` and :math:`p(x \mid z_1)` (reversed).
        top_hidden: the hidden sizes of :math:`q(z_2 \mid z_1)` and :math:`p(z_1 \mid z_2)`.
        context: the context size (0 for none).
        objective, beta, warmup, k, particles, chunk: see :class:`~gendist.latent.LatentModel`.
        activation: the activation module class.

    Example:
        >>> hvae = HierarchicalVAE(6, latents=(3, 2), hidden=(16,), top_hidden=(8,))
        >>> x = hvae().sample((4,))
        >>> hvae.elbo(x).shape, hvae.encode(x).event_shape
        (torch.Size([4]), torch.Size([5]))
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        latents: Sequence[int] = (100, 50),
        family: Conditional | str = "bernoulli",
        hidden: Sequence[int] = (200, 200),
        top_hidden: Sequence[int] = (100, 100),
        context: int = 0,
        objective: str = "elbo",
        beta: float = 1.0,
        warmup: int = 0,
        k: int = 1,
        particles: int = 100,
        chunk: int | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        shape = check_shape(shape)
        if len(latents) != 2:
            raise ValueError(f"latents must be two sizes (|z1|, |z2|), got {latents!r}")
        L = (check_integer("latents[0]", latents[0], 1), check_integer("latents[1]", latents[1], 1))
        context = check_integer("context", context, 0)
        prior = TopDown(L, context, tuple(reversed(tuple(top_hidden))), activation)
        encoder = BottomUp(shape.numel() + context, context, L, hidden, top_hidden, activation)
        decoder = _Bottom(Decoder(L[0] + context, shape, family, tuple(reversed(tuple(hidden))), False, activation), L)
        super().__init__(prior, encoder, decoder, shape, context, objective, beta, warmup, k, particles, chunk)
