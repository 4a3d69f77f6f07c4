r"""Progressive growing (ProGAN, Karras et al., 2018) as a recipe that :func:`~gendist.inference.fit` trains in
two stages: the networks at half the resolution first, then grown to the full one with the new layers faded in.

``fit(pgan, images)`` runs :meth:`ProgressiveGAN.stages`:

- ``"low"``: :class:`~gendist.nn.ProgressiveGenerator` and :class:`~gendist.nn.ProgressiveDiscriminator` at
  the low resolution :math:`H/2`; the critic sees the real images average-pooled down to it;
- ``"grow"``: both :meth:`~gendist.nn.ProgressiveGenerator.grow` to :math:`H`; the fade-in :math:`\alpha`
  rises from 0 to 1 over ``fade_steps`` generator steps (then stays 1), and the critic sees the real images
  faded the same way, :math:`(1 - \alpha)\, \operatorname{up}(\operatorname{down}(x)) + \alpha x`.

``pgan(c)`` is always an :class:`~gendist.Implicit` distribution of full-size images: before growing, the
low-resolution image up-sampled by nearest neighbours. The resolution and :math:`\alpha` live in the networks'
``state_dict``, so a run stopped inside ``"grow"`` resumes with its :math:`\alpha`.

References:
    | Progressive growing of GANs for improved quality, stability, and variation (Karras et al., 2018)
    | https://arxiv.org/abs/1710.10196
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist._checks import check_context, check_integer, check_value
from gendist.gan.core import GAN
from gendist.inference.objective import Batch, Objective, Stage, Stateful
from gendist.nn.progressive import ProgressiveDiscriminator, ProgressiveGenerator

__all__ = ["ProgressiveGAN"]


def _up(x: Tensor) -> Tensor:
    r"""Nearest-neighbour up-sampling by 2 of ``(N, C, H, W)`` images."""
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class FullSize(nn.Module):
    r"""A :class:`~gendist.nn.ProgressiveGenerator` whose images always have the full size :math:`H`: at the low
    resolution its :math:`H/2` image up-sampled by nearest neighbours (so the distribution keeps its event shape
    at every stage).

    Example:
        >>> g = FullSize(ProgressiveGenerator(4, (1, 16, 16), channels=4))
        >>> g(torch.randn(2, 4)).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(self, net: ProgressiveGenerator) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        x = self.net(z, c)
        return _up(x) if self.net.resolution == self.net.low_resolution else x


class _Now:
    r"""What a GAN loss sees of a :class:`ProgressiveGAN`: fakes and critic at the networks' current resolution."""

    def __init__(self, gan: ProgressiveGAN) -> None:
        self.gan = gan

    def fake(self, batch: Batch) -> Tensor:
        return self.gan.fake(batch, full=False)

    def critic(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.gan.discriminator(x, c)

    def critic_features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.gan.discriminator.features(x, c)


class AtResolution:
    r"""A GAN loss (:class:`~gendist.inference.gan.CriticLoss`, :class:`~gendist.inference.gan.GeneratorLoss`)
    on images at the networks' current resolution: the real images as :meth:`ProgressiveGAN.real` makes them, the
    fakes and the critic's scores at that resolution (so a penalty on the critic's input gradient, R1 or the
    gradient penalty, is the one of the networks' own input). A stateful loss (the critic's lazy R1 schedule)
    keeps its ``state_dict`` for the checkpoints.
    """

    def __init__(self, loss: Any) -> None:
        if not callable(loss):
            raise TypeError(f"AtResolution: `loss` must be callable as loss(model, batch), got {type(loss).__name__}")
        self.loss = loss

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return self.loss(_Now(model), (model.real(batch[0]), *batch[1:]))

    def __repr__(self) -> str:
        return f"AtResolution({self.loss!r})"


class _StatefulAtResolution(AtResolution):
    def state_dict(self) -> dict[str, Any]:
        return self.loss.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> Any:
        return self.loss.load_state_dict(state)


def _at_resolution(loss: Any) -> AtResolution:
    return _StatefulAtResolution(loss) if isinstance(loss, Stateful) else AtResolution(loss)


def _setup_low(model: ProgressiveGAN) -> None:
    model.shrink()


def _setup_grow(model: ProgressiveGAN) -> None:
    if model.resolution != model.high_resolution:  # a run resumed inside "grow" keeps its alpha
        model.grow(0.0 if model.fade_steps else 1.0)


class ProgressiveGAN(GAN):
    r"""A progressively grown GAN (ProGAN, Karras et al., 2018): ``pgan(c)`` is the :class:`~gendist.Implicit`
    distribution of images :math:`x = G(z, c)` of shape ``shape`` :math:`= (C, H, H)`, and ``fit(pgan, images)``
    trains it in the two stages of :meth:`stages`: ``"low"`` at :math:`H/2`, then ``"grow"`` to :math:`H`, where
    the new layers fade in as :math:`\alpha` rises from 0 to 1 over ``fade_steps`` generator steps.

    The networks are :class:`~gendist.nn.ProgressiveGenerator` (wrapped in :class:`FullSize`, so samples have the
    full shape at every stage: nearest up-sampled before growing) and :class:`~gendist.nn.ProgressiveDiscriminator`.
    The losses see the images at the networks' current resolution :math:`r` (:class:`AtResolution`): the real
    images as :meth:`real` makes them,

    .. math:: \tilde x = \begin{cases} \operatorname{down}(x) & r = H/2 \\
        (1 - \alpha)\, \operatorname{up}(\operatorname{down}(x)) + \alpha\, x & r = H \end{cases}

    (average pooling and nearest up-sampling by 2, as the generator's own fade), the generator's images at
    :math:`r`. :meth:`fake` and :meth:`critic` take and give full-size images (the critic average-pools them
    at the low resolution).

    Arguments:
        shape: the image shape :math:`(C, H, H)`, :math:`H \in \{4, 7\} \cdot 2^k`, :math:`k \ge 1`
            (8, 14, 16, 28, 32, ...).
        latent: the latent size (a standard normal).
        channels: the networks' feature channels at every resolution.
        context: the context size (0: unconditional; the critic projects it).
        out: the generator's output, ``"tanh"`` (scale images to :math:`[-1, 1]`), ``"sigmoid"`` or
            ``"identity"``; it sets the support.
        group: the critic's minibatch standard deviation group size.
        low_epochs, grow_epochs: the epochs of each stage (None: ``fit``'s ``epochs``).
        fade_steps: the generator steps over which :math:`\alpha` goes from 0 to 1 (0: no fade).
        loss, n_critic, gp, r1, r2, lazy, feature_matching: the objectives (see
            :func:`~gendist.inference.gan.gan_objectives`).
        lr_generator, lr_critic, betas: the two Adam optimizers (None: ``fit``'s rate; ProGAN's betas
            :math:`(0, 0.99)`).
        ema: the decay of the generator's weight average used to sample (None: none).
        truncation: the default truncation :math:`\psi` of the distribution (None: none).

    Example:
        >>> pgan = ProgressiveGAN((1, 8, 8), latent=4, channels=4, fade_steps=10)
        >>> [s.name for s in pgan.stages()], pgan.resolution
        (['low', 'grow'], 4)
        >>> pgan().sample((3,)).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int] = (1, 16, 16),
        latent: int = 32,
        channels: int = 32,
        *,
        context: int = 0,
        out: str = "tanh",
        group: int = 4,
        low_epochs: int | None = None,
        grow_epochs: int | None = None,
        fade_steps: int = 1000,
        loss: str = "non_saturating",
        n_critic: int = 1,
        gp: float = 0.0,
        r1: float = 1.0,
        r2: float = 0.0,
        lazy: int = 1,
        feature_matching: float = 0.0,
        lr_generator: float | None = None,
        lr_critic: float | None = None,
        betas: tuple[float, float] = (0.0, 0.99),
        ema: float | None = None,
        truncation: float | None = None,
    ) -> None:
        where = "ProgressiveGAN"
        epochs = {}
        for name, value in (("low_epochs", low_epochs), ("grow_epochs", grow_epochs)):
            epochs[name] = None if value is None else check_integer(f"{where}: `{name}`", value, low=1)
        fade_steps = check_integer(f"{where}: `fade_steps`", fade_steps, low=0)
        latent = check_integer(f"{where}: `latent`", latent, low=1)
        context = check_integer(f"{where}: `context`", context, low=0)
        generator = FullSize(ProgressiveGenerator(latent, shape, channels=channels, context=context, out=out))
        discriminator = ProgressiveDiscriminator(shape, channels=channels, context=context, group=group)
        super().__init__(shape, latent, generator, discriminator, context=context, out=out, loss=loss,
                         n_critic=n_critic, gp=gp, r1=r1, r2=r2, lazy=lazy, feature_matching=feature_matching,
                         lr_generator=lr_generator, lr_critic=lr_critic, betas=betas, ema=ema,
                         truncation=truncation)
        self.low_epochs, self.grow_epochs = epochs["low_epochs"], epochs["grow_epochs"]
        self.fade_steps = fade_steps
        self.low_resolution = discriminator.low_resolution
        self.high_resolution = discriminator.high_resolution

    # -- growth ---------------------------------------------------------------------------------------------
    def _networks(self) -> list[nn.Module]:
        nets = [self.generator.net.net, self.discriminator]
        if self.ema is not None:
            nets.append(self.ema.averaged.net.net)
        return nets

    def _set_growth(self, resolution: int, alpha: float) -> None:
        for net in self._networks():
            net.resolution = resolution
            net.alpha = alpha

    @property
    def resolution(self) -> int:
        r"""The resolution the networks work at now: ``low_resolution`` (:math:`H/2`) or ``high_resolution``."""
        return self.discriminator.resolution

    @property
    def alpha(self) -> float:
        r"""The fade-in :math:`\alpha \in [0, 1]` of the high-resolution layers (1 before growing: unused)."""
        return self.discriminator.alpha

    def grow(self, alpha: float = 0.0) -> None:
        r"""Move the generator (and its weight average) and the critic to the full resolution, faded in by
        ``alpha``."""
        self._set_growth(self.high_resolution, alpha)

    def shrink(self) -> None:
        r"""Move the networks back to the low resolution (the ``"low"`` stage starts there)."""
        self._set_growth(self.low_resolution, 1.0)

    # -- what the objectives use -----------------------------------------------------------------------------
    def fake(self, batch: Batch, full: bool = True) -> Tensor:
        r"""Differentiable fakes for ``batch``: full-size images, or (``full=False``) at the current resolution."""
        if full:
            return super().fake(batch)
        c = batch[1] if len(batch) > 1 else None
        check_context(c, self.context, "ProgressiveGAN")
        z = self.generator.latent().rsample((batch[0].shape[0],))
        return self.generator.net.net(z, c)

    def real(self, x: Tensor) -> Tensor:
        r"""Full-size real images ``(N, C, H, H)`` as the critic sees them now: average-pooled to :math:`H/2` at
        the low resolution, :math:`(1 - \alpha)\, \operatorname{up}(\operatorname{down}(x)) + \alpha x` while
        fading in."""
        check_value("x", x, self.shape, "ProgressiveGAN.real", finite=False)
        if self.resolution == self.low_resolution:
            return F.avg_pool2d(x, 2)
        if self.alpha < 1:
            return torch.lerp(_up(F.avg_pool2d(x, 2)), x, self.alpha)
        return x

    def _now(self, x: Tensor, where: str) -> Tensor:
        check_value("x", x, self.shape, where, finite=False)
        return F.avg_pool2d(x, 2) if self.resolution == self.low_resolution else x

    def critic(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The critic's scores :math:`D(x, c)` of full-size images ``(N, C, H, H)`` (average-pooled to the low
        resolution before growing), shape ``(N,)``."""
        return self.discriminator(self._now(x, "ProgressiveGAN.critic"), c)

    def critic_features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The critic's penultimate features of full-size images, for feature matching."""
        return self.discriminator.features(self._now(x, "ProgressiveGAN.critic_features"), c)

    def objectives(self) -> list[Objective]:
        r"""The critic's and the generator's objectives at the networks' current resolution (:class:`AtResolution`;
        critic first)."""
        objectives = super().objectives()
        for objective in objectives:
            objective.loss = _at_resolution(objective.loss)
        return objectives

    def stages(self) -> list[Stage]:
        r"""The two stages :func:`~gendist.inference.fit` runs: ``"low"`` (the networks at :math:`H/2`), then
        ``"grow"`` (grown to :math:`H`, :math:`\alpha` from 0 to 1 over ``fade_steps`` generator steps)."""
        return [Stage("low", self.objectives(), epochs=self.low_epochs, setup=_setup_low),
                Stage("grow", self.objectives(), epochs=self.grow_epochs, setup=_setup_grow)]

    def after_step(self) -> None:
        r"""Update the generator's weight average, and raise :math:`\alpha` by ``1 / fade_steps`` per generator
        step while fading in."""
        stepped = self._stepped
        super().after_step()
        if stepped and self.resolution == self.high_resolution and self.alpha < 1:
            done = round(self.alpha * self.fade_steps) + stepped  # alpha = steps / fade_steps: no counter to save
            self.grow(min(1.0, done / self.fade_steps) if self.fade_steps else 1.0)

    def extra_repr(self) -> str:
        return (f"shape={tuple(self.shape)}, resolution={self.resolution}, alpha={self.alpha:g}, "
                f"fade_steps={self.fade_steps}")
