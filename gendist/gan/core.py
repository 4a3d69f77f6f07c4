r"""The GAN as a recipe: a generator and a critic whose call builds the :class:`~gendist.Implicit` distribution."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_context, check_integer, check_number, check_shape, check_value
from gendist._recipes import Recorded
from gendist.distributions.implicit import Implicit, takes_truncation
from gendist.distributions.lazy import LazyDistribution
from gendist.inference.ema import EMA
from gendist.inference.gan import GAN_LOSSES, gan_objectives
from gendist.inference.objective import Objective
from gendist.nn.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    PatchDiscriminator,
    UNetTranslator,
)
from gendist.nn.style import StyleGenerator

__all__ = ["GAN", "GENERATORS", "DISCRIMINATORS", "OUTPUTS", "Pushforward"]

GENERATORS = ("mlp", "dcgan", "style", "unet")
r"""The generator networks a :class:`GAN` builds by name (or give an ``nn.Module``)."""

DISCRIMINATORS = ("mlp", "dcgan", "patch")
r"""The critic networks a :class:`GAN` builds by name (or give an ``nn.Module``)."""

OUTPUTS: dict[str, constraints.Constraint] = {
    "identity": constraints.real, "tanh": constraints.interval(-1.0, 1.0), "sigmoid": constraints.unit_interval,
}
r"""The generator's output nonlinearity and the support it gives one entry of :math:`x`."""


class Pushforward(nn.Module):
    r"""The generator's side of a GAN: the network and its latent (a fixed distribution, or a module of a
    learned one, such as a flow), trained together; ``image`` reshapes the network's images to the event.
    """

    def __init__(self, net: nn.Module, latent: int | Distribution | LazyDistribution, shape: Size,
                 image: Size | None) -> None:
        super().__init__()
        self.net, self.shape, self.image = net, shape, image
        if isinstance(latent, nn.Module):
            self.latent_module: nn.Module | None = latent
            self.fixed = None
        else:
            self.latent_module, self.fixed = None, latent
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(): the latent's device

    def latent(self) -> Distribution:
        r"""The latent distribution :math:`p(z)` on the module's device and dtype."""
        if self.latent_module is not None:
            return self.latent_module()
        if isinstance(self.fixed, int):
            zero = self._anchor.new_zeros(self.fixed)  # no validation: its checks would sync a GPU on every fake
            normal = dist.Normal(zero, torch.ones_like(zero), validate_args=False)
            return dist.Independent(normal, 1, validate_args=False)
        return _moved(self.fixed, self._anchor)

    @property
    def takes_truncation(self) -> bool:
        r"""Whether the network truncates itself (a style generator, in :math:`W`): read by :class:`Implicit`."""
        return takes_truncation(self.net)

    def forward(self, z: Tensor, c: Tensor | None = None, **options: Any) -> Tensor:
        x = self.net(z, c, **options)
        return x.reshape(x.shape[0], *self.shape) if self.image is not None else x


def _moved(d: Distribution, like: Tensor) -> Distribution:
    r"""``d`` with its floating-point tensors (and those of the distributions inside it) on ``like``'s device and
    dtype: a fixed latent follows the module's ``.to()`` / ``.double()``. ``d`` itself when they already are."""
    moved = copy.copy(d)
    changed = False
    for key, value in vars(d).items():
        if isinstance(value, Tensor) and value.is_floating_point() and (
                value.dtype != like.dtype or value.device != like.device):
            setattr(moved, key, value.to(like))
            changed = True
        elif isinstance(value, Distribution):
            inner = _moved(value, like)
            if inner is not value:
                setattr(moved, key, inner)
                changed = True
    return moved if changed else d


class GAN(Recorded, LazyDistribution):
    r"""A generative adversarial network: ``gan(c)`` is the :class:`~gendist.Implicit` distribution
    :math:`x = G(z, c)`, :math:`z \sim p(z)`; ``fit(gan, data)`` trains it by its :meth:`objectives`.

    The critic :math:`D` learns to tell data from generated samples and the generator to fool it
    (Goodfellow et al., 2014); the losses, penalties and regularizers are those of
    :mod:`gendist.inference.gan` (``loss``: ``"non_saturating"``, ``"minimax"``, ``"wasserstein"``, ``"hinge"``,
    ``"least_squares"``, ``"relativistic"``). ``gan(c)`` samples with the moving average of the generator's
    weights when ``ema`` is set (it is updated after every generator step by ``fit``, or by :meth:`after_step`).

    Arguments:
        shape: the event shape of :math:`x` (a vector ``(D,)`` or an image ``(C, H, W)``).
        latent: the latent: its size (a standard normal), a torch distribution, or a module whose call
            returns one (a gendist flow: trained with the generator).
        generator: ``"mlp"``, ``"dcgan"`` (conv), ``"style"`` (StyleGAN2-like), ``"unet"`` (image to image,
            the source image as the context), or a network ``net(z, c) -> (N, *shape)``.
        discriminator: ``"mlp"``, ``"dcgan"``, ``"patch"`` (PatchGAN), or a network ``net(x, c) -> (N,)`` with
            ``features(x, c)``.
        image: the ``(C, H, W)`` the conv networks see when ``shape`` is a flat vector of that many entries.
        context: the context size (0: unconditional).
        conditioning: how the networks read the context: ``"concat"``, or ``"batchnorm"`` (conditional batch
            norm in a DCGAN generator) / ``"projection"`` (a projection critic); for the generator and the
            critic respectively when given as a pair.
        hidden, channels: the width of the networks; ``out``: the generator's output (``"identity"``,
            ``"tanh"``, ``"sigmoid"``: it sets the support).
        spectral_norm, attention, minibatch_std: the critic's spectral normalization, self-attention
            (also in a DCGAN generator) and minibatch standard deviation.
        loss, n_critic, gp, r1, r2, lazy, feature_matching, l1: the objectives (see
            :func:`~gendist.inference.gan.gan_objectives`).
        lr_generator, lr_critic, betas: the two Adam optimizers (None: ``fit``'s rate).
        ema: the decay of the generator's weight average used to sample (None: none).
        style: the style generator's options (``w_dim``, ``mapping_layers``, ``mixing``, ``style``).
        truncation: the default truncation :math:`\psi` of the distribution (None: none).

    Example:
        >>> gan = GAN(2, latent=2, hidden=(8,))
        >>> gan().sample((3,)).shape, gan().log_prob_kind
        (torch.Size([3, 2]), 'none')
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        latent: int | Distribution | LazyDistribution = 64,
        generator: str | nn.Module = "mlp",
        discriminator: str | nn.Module = "mlp",
        *,
        image: Sequence[int] | None = None,
        context: int = 0,
        conditioning: str | tuple[str, str] = "concat",
        hidden: Sequence[int] = (256, 256),
        channels: int = 64,
        out: str = "identity",
        spectral_norm: bool = False,
        attention: bool = False,
        minibatch_std: bool = False,
        loss: str = "non_saturating",
        n_critic: int = 1,
        gp: float = 0.0,
        r1: float = 0.0,
        r2: float = 0.0,
        lazy: int = 1,
        feature_matching: float = 0.0,
        l1: float = 0.0,
        lr_generator: float | None = None,
        lr_critic: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
        ema: float | None = None,
        style: dict[str, Any] | None = None,
        dropout: float = 0.0,
        truncation: float | None = None,
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape, "GAN: `shape`")
        self.context = check_integer("GAN: `context`", context, low=0)
        if out not in OUTPUTS:
            raise ValueError(f"GAN: `out` must be one of {sorted(OUTPUTS)}, got {out!r}")
        if loss not in GAN_LOSSES:
            raise ValueError(f"GAN: `loss` must be one of {GAN_LOSSES}, got {loss!r}")
        if isinstance(conditioning, str):
            conditioning = (conditioning, conditioning)
        g_cond, d_cond = conditioning
        g_cond = "concat" if g_cond == "projection" else g_cond
        d_cond = "concat" if d_cond == "batchnorm" else d_cond
        self.image = check_shape(image, "GAN: `image`") if image is not None else None
        if self.image is not None and self.image.numel() != self.shape.numel():
            raise ValueError(f"GAN: `image` {tuple(self.image)} must hold as many entries as `shape` "
                             f"{tuple(self.shape)} ({self.shape.numel()}), got {self.image.numel()}")
        net_shape = self.image if self.image is not None else self.shape
        if isinstance(latent, bool) or not isinstance(latent, (int, Distribution, nn.Module)):
            raise TypeError(f"GAN: `latent` must be a size, a torch distribution or a module returning one, "
                            f"got {type(latent).__name__}")
        if isinstance(latent, int):
            latent_size = check_integer("GAN: `latent`", latent, low=1)
        else:
            d = latent() if isinstance(latent, nn.Module) else latent
            latent_size = (d.batch_shape + d.event_shape).numel()
        self.latent_size = latent_size
        self.support = OUTPUTS[out]
        self.truncation = truncation
        net = self._generator(generator, net_shape, latent_size, g_cond, hidden, channels, out, attention,
                              dropout, style or {})
        self.generator = Pushforward(net, latent, self.shape, self.image)
        # a penalty on the critic's input gradient is per example: batch norm would mix the examples
        self.discriminator = self._discriminator(discriminator, net_shape, d_cond, hidden, channels, spectral_norm,
                                                 attention, minibatch_std, penalized=bool(gp or r1 or r2))
        self._options = dict(loss=loss, n_critic=check_integer("GAN: `n_critic`", n_critic),
                             gp=gp, r1=r1, r2=r2, lazy=lazy, feature_matching=feature_matching, l1=l1,
                             lr_generator=lr_generator, lr_critic=lr_critic, betas=tuple(betas))
        self.objectives()  # checks the objectives' options now
        self.ema = EMA(self.generator, decay=check_number("GAN: `ema`", ema)) if ema is not None else None
        self._stepped = 0
        self._check_generator()

    # -- construction -------------------------------------------------------------------------------------
    def _generator(self, kind: str | nn.Module, shape: Size, latent: int, conditioning: str,
                   hidden: Sequence[int], channels: int, out: str, attention: bool, dropout: float,
                   style: dict[str, Any]) -> nn.Module:
        if isinstance(kind, nn.Module):
            return kind
        if kind == "mlp":
            return MLPGenerator(latent, shape, hidden=tuple(hidden), context=self.context, out=out)
        if kind not in GENERATORS:
            raise ValueError(f"GAN: `generator` must be one of {GENERATORS} or an nn.Module, got {kind!r}")
        if len(shape) != 3:
            raise ValueError(f"GAN: generator={kind!r} makes images: give an image `shape` (C, H, W) or `image`, "
                             f"got shape {tuple(shape)}")
        if kind == "dcgan":
            return DCGANGenerator(latent, shape, channels=channels, context=self.context, conditioning=conditioning,
                                  attention=attention, out=out)
        if kind == "style":
            return StyleGenerator(latent, shape, channels=channels, context=self.context, out=out, **style)
        source = (self.context // shape[1] // shape[2], shape[1], shape[2]) if self.context else None
        if source is None or math.prod(source) != self.context:
            raise ValueError(f"GAN: generator='unet' translates a source image given as the context: `context` "
                             f"must be C * {shape[1]} * {shape[2]} for a source of the target's size, got "
                             f"{self.context}")
        return UNetTranslator(shape, source, channels=channels, latent=latent, dropout=dropout, out=out)

    def _discriminator(self, kind: str | nn.Module, shape: Size, conditioning: str, hidden: Sequence[int],
                       channels: int, spectral_norm: bool, attention: bool, minibatch_std: bool,
                       penalized: bool = False) -> nn.Module:
        if isinstance(kind, nn.Module):
            return kind
        if kind == "mlp":
            return MLPDiscriminator(shape, hidden=tuple(hidden), context=self.context, conditioning=conditioning,
                                    spectral_norm=spectral_norm, minibatch_std=minibatch_std)
        if kind not in DISCRIMINATORS:
            raise ValueError(f"GAN: `discriminator` must be one of {DISCRIMINATORS} or an nn.Module, got {kind!r}")
        if len(shape) != 3:
            raise ValueError(f"GAN: discriminator={kind!r} reads images: give an image `shape` (C, H, W) or "
                             f"`image`, got shape {tuple(shape)}")
        if kind == "dcgan":
            return DCGANDiscriminator(shape, channels=channels, context=self.context, conditioning=conditioning,
                                      spectral_norm=spectral_norm, attention=attention, minibatch_std=minibatch_std,
                                      batchnorm=False if penalized else None)
        source = (self.context // shape[1] // shape[2], shape[1], shape[2]) if self.context else None
        return PatchDiscriminator(shape, source, channels=channels, batchnorm=not penalized)

    def _check_generator(self) -> None:
        """Run the generator once on two latents: its output must have the event shape."""
        was = self.training
        self.eval()
        try:
            c = self.generator._anchor.new_zeros(2, self.context) if self.context else None
            with torch.no_grad():
                z = self.generator.latent().sample((2,))
                x = self.generator(z, c)
        finally:
            self.train(was)
        if x.shape != (2, *self.shape):
            raise ValueError(f"GAN: the generator returns samples of shape {tuple(x.shape[1:])} but the event shape "
                             f"(`shape`) is {tuple(self.shape)}")

    # -- the distribution ----------------------------------------------------------------------------------
    @property
    def sampler(self) -> Pushforward:
        r"""The generator that samples: the weight average in eval mode when ``ema`` is set, else the generator."""
        if self.ema is not None and not self.training:
            return self.ema.averaged
        return self.generator

    def forward(self, c: Tensor | None = None, truncation: float | None = None) -> Implicit:
        check_context(c, self.context, "GAN")
        g = self.sampler
        return Implicit(g, g.latent(), self.shape, c, context_size=self.context or None, support=self.support,
                        truncation=truncation if truncation is not None else self.truncation)

    # -- what the objectives use (gendist.inference.gan) ---------------------------------------------------
    def fake(self, batch: tuple[Tensor, ...]) -> Tensor:
        r"""Differentiable fakes for ``batch`` (one per example, with its context ``batch[1]`` if any)."""
        x = batch[0]
        c = batch[1] if len(batch) > 1 else None
        check_context(c, self.context, "GAN")
        z = self.generator.latent().rsample((x.shape[0],))
        return self.generator(z, c)

    def _image(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.image) if self.image is not None else x

    def critic(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The critic's scores :math:`D(x, c)` of shape ``(N,)``."""
        check_value("x", x, self.shape, "GAN.critic", finite=False)
        return self.discriminator(self._image(x), c)

    def critic_features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The critic's penultimate features, for feature matching."""
        return self.discriminator.features(self._image(x), c)

    def objectives(self) -> list[Objective]:
        r"""The critic's and the generator's :class:`~gendist.inference.Objective` (critic first)."""
        objectives = gan_objectives(**self._options)
        generator = objectives[-1]
        inner = generator.loss

        def counted(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            self.generator_stepped()
            return inner(model, batch)

        generator.loss = counted
        return objectives

    def generator_stepped(self) -> None:
        r"""Mark that the generator takes a step on this batch (its weight average follows in :meth:`after_step`)."""
        self._stepped += 1

    def after_step(self) -> None:
        r"""Update the generator's weight average if the generator took a step since the last call."""
        if self.ema is not None and self._stepped:
            self.ema.update(self.generator)
        self._stepped = 0
