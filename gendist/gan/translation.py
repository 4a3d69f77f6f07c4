r"""Image-to-image translation as conditional implicit distributions :math:`p(y \mid x)`: pix2pix and CycleGAN.

- :class:`Pix2Pix` (Isola et al., 2017): paired translation, a conditional :class:`~gendist.gan.GAN` whose
  context is the flat source image, with a U-Net generator, a PatchGAN critic that sees the source too, and the
  L1 distance to the paired target; ``fit(pix2pix, (target, source))`` trains it.
- :class:`CycleGAN` (Zhu et al., 2017): unpaired translation between two domains :math:`A` and :math:`B` by two
  translators :math:`G: A \to B`, :math:`F: B \to A` and two critics, held together by cycle consistency;
  ``fit(cyclegan, (a, b))`` trains it on batches of unpaired images of each domain.

Calling either on a flattened source image returns the :class:`~gendist.Implicit` distribution of its
translations (``log_prob_kind = "none"``). The networks end in ``tanh`` by default: scale images to
:math:`[-1, 1]` (the 8x8 digits' levels :math:`0..16` as :math:`x / 8 - 1`).

References:
    | Image-to-image translation with conditional adversarial networks (Isola et al., 2017)
    | https://arxiv.org/abs/1611.07004
    | Unpaired image-to-image translation using cycle-consistent adversarial networks (Zhu et al., 2017)
    | https://arxiv.org/abs/1703.10593
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Distribution

from gendist._checks import check_context, check_integer, check_number, check_shape
from gendist._recipes import Recorded
from gendist.distributions.implicit import Implicit
from gendist.distributions.lazy import LazyDistribution
from gendist.gan.core import GAN, OUTPUTS
from gendist.inference.gan import GAN_LOSSES, AdamFactory, check_betas, discriminator_loss, generator_loss
from gendist.inference.objective import Batch, Objective
from gendist.nn.gan import PatchDiscriminator, UNetTranslator

__all__ = ["CycleGAN", "NoLatent", "Pix2Pix"]


class NoLatent(LazyDistribution):
    r"""The empty latent of a translator without :math:`z`: a standard normal of size 0 on the module's device.

    pix2pix draws no latent (the dropout of its generator is the noise) and CycleGAN's translators are
    deterministic; their :class:`~gendist.Implicit` still has a latent, of shape ``(0,)``.

    Example:
        >>> NoLatent()().sample((3,)).shape
        torch.Size([3, 0])
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def forward(self, c: Tensor | None = None) -> Distribution:
        zero = self._anchor.new_zeros(0)
        return dist.Normal(zero, torch.ones_like(zero)).to_event(1)


def _image_shape(where: str, name: str, shape: int | Sequence[int]) -> Size:
    out = check_shape(shape, f"{where}: `{name}`")
    if len(out) != 3:
        raise ValueError(f"{where}: `{name}` must be an image shape (C, H, W), got {tuple(out)}")
    return out


def check_source(where: str, c: object, shape: Size, dtype: torch.dtype | None = None) -> None:
    r"""Raise a clear error unless ``c`` is a flattened source image of shape ``(..., prod(shape))``.

    A source given as an image batch ``(..., *shape)`` gets an error saying how to flatten it.
    """
    size = shape.numel()
    if c is None:
        raise ValueError(f"{where} translates a source image: give the source flattened, a context `c` of shape "
                         f"(..., {size}) for source images {tuple(shape)}, got None")
    k = len(shape)
    if isinstance(c, Tensor) and c.dim() >= k and tuple(c.shape[c.dim() - k:]) == tuple(shape) and (
            c.dim() == k or c.shape[-1] != size):
        raise ValueError(f"{where}: the source image travels flat, as a context of shape (..., {size}); got an "
                         f"image of shape {tuple(c.shape)}: pass `c.flatten(-{k})`")
    check_context(c, size, where, dtype)


def as_images(where: str, name: str, x: object, shape: Size, dtype: torch.dtype | None = None) -> Tensor:
    r"""A batch ``x`` of images ``(N, *shape)`` or flat rows ``(N, prod(shape))`` as images, or a clear error."""
    if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{where}: `{name}` must be a floating-point tensor of images, got {got}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{where}: `{name}` has dtype {x.dtype} but the model is {dtype}; use `{name}.to({dtype})`")
    ok = (x.dim() == 1 + len(shape) and x.shape[1:] == shape) or (x.dim() == 2 and x.shape[1] == shape.numel())
    if not ok or x.shape[0] < 1:
        raise ValueError(f"{where}: `{name}` must be a batch of images ({', '.join(['N', *map(str, shape)])}) or of "
                         f"flat rows (N, {shape.numel()}), got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], *shape)


class Pix2Pix(GAN):
    r"""Paired image-to-image translation (pix2pix, Isola et al., 2017): ``pix2pix(source)`` is the
    :class:`~gendist.Implicit` distribution :math:`p(y \mid x)` of translations :math:`y = G(x)` of a source
    image :math:`x`, given flat, shape ``(..., prod(source_shape))``.

    A conditional :class:`~gendist.gan.GAN` whose context is the flat source: a U-Net generator
    (:class:`~gendist.nn.UNetTranslator`, whose dropout stays on when sampling: the paper's noise, as no
    latent is drawn with ``latent=0``) and a PatchGAN critic (:class:`~gendist.nn.PatchDiscriminator`) that
    sees the target and the source concatenated as channels. The generator minimizes

    .. math:: L_G = \ell_G\big(D(G(x), x)\big) + \lambda_1 \, E\,\lvert G(x) - y \rvert

    (``l1`` :math:`= \lambda_1`, 100 in the paper), the critic the loss of ``loss`` on the pairs
    :math:`(y, x)` against :math:`(G(x), x)`. Train it with ``fit(pix2pix, (target, source))``: ``target`` of
    shape ``(N, *shape)`` and ``source`` flat ``(N, prod(source_shape))``, paired row by row. The output is
    ``out`` (``tanh``: scale images to :math:`[-1, 1]`).

    Arguments:
        shape: the target image shape ``(C, H, W)``.
        source_shape: the source image shape ``(C', H, W)`` (default: ``shape``).
        channels: the width of both networks.
        l1: the weight :math:`\lambda_1` of the L1 distance to the paired target.
        latent: the size of a latent :math:`z` broadcast as input channels (0: none, as in the paper).
        dropout: the rate of the generator's dropout (its noise).
        out: the generator's output, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.
        loss, n_critic, lr_generator, lr_critic, betas, ema: as for :class:`~gendist.gan.GAN`.

    Example:
        >>> p2p = Pix2Pix((1, 8, 8), channels=4)
        >>> p2p(torch.zeros(3, 64)).sample((2,)).shape
        torch.Size([2, 3, 1, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int] = (1, 8, 8),
        source_shape: Sequence[int] | None = None,
        channels: int = 32,
        l1: float = 100.0,
        *,
        latent: int = 0,
        dropout: float = 0.5,
        out: str = "tanh",
        loss: str = "non_saturating",
        n_critic: int = 1,
        lr_generator: float | None = None,
        lr_critic: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
        ema: float | None = None,
    ) -> None:
        where = "Pix2Pix"
        target = _image_shape(where, "shape", shape)
        source = target if source_shape is None else _image_shape(where, "source_shape", source_shape)
        if source[1:] != target[1:]:
            raise ValueError(f"{where}: the source images must have the target's size {tuple(target[1:])}, got "
                             f"source_shape {tuple(source)}")
        channels = check_integer(f"{where}: `channels`", channels)
        latent = check_integer(f"{where}: `latent`", latent, low=0)
        if out not in OUTPUTS:
            raise ValueError(f"{where}: `out` must be one of {sorted(OUTPUTS)}, got {out!r}")
        generator = UNetTranslator(target, source, channels=channels, latent=latent, dropout=dropout, out=out)
        critic = PatchDiscriminator(target, source, channels=channels)
        super().__init__(target, NoLatent() if latent == 0 else latent, generator, critic, context=source.numel(),
                         channels=channels, out=out, loss=loss, n_critic=n_critic, l1=check_number(
                             f"{where}: `l1`", l1, zero=True), lr_generator=lr_generator, lr_critic=lr_critic,
                         betas=betas, ema=ema)
        self.source_shape = source

    @property
    def _dtype(self) -> torch.dtype:
        return self.generator._anchor.dtype

    def forward(self, c: Tensor | None = None, truncation: float | None = None) -> Implicit:
        check_source("Pix2Pix", c, self.source_shape, self._dtype)
        return super().forward(c, truncation)

    def fake(self, batch: tuple[Tensor, ...]) -> Tensor:
        r"""Translations of the batch's sources ``batch[1]`` (one per target ``batch[0]``), differentiable."""
        where = "Pix2Pix"
        if len(batch) != 2:
            raise ValueError(f"{where} trains on pairs: batches (target, source), the source flat "
                             f"(N, {self.context}); got a batch of {len(batch)} tensor(s)")
        y, c = batch
        as_images(where, "target", y, self.shape, self._dtype)
        if y.dim() != 1 + len(self.shape):
            raise ValueError(f"{where}: the target must have shape (N, {', '.join(map(str, self.shape))}), "
                             f"got {tuple(y.shape)}")
        check_source(where, c, self.source_shape, self._dtype)
        if c.dim() != 2 or c.shape[0] != y.shape[0]:
            raise ValueError(f"{where}: the sources must be one flat row per target, shape ({y.shape[0]}, "
                             f"{self.context}), got {tuple(c.shape)}")
        return super().fake(batch)


# --------------------------------------------------------------------------------------------------- CycleGAN
class _CriticLoss:
    r"""One CycleGAN critic's loss: its domain's real images against the other translator's (detached) fakes."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return model.critic_loss(batch, self.domain)

    def __repr__(self) -> str:
        return f"CycleGAN critic loss (domain {self.domain.upper()})"


class _GeneratorLoss:
    r"""CycleGAN's generator loss: :meth:`CycleGAN.generator_losses` summed."""

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return sum(model.generator_losses(batch).values())

    def __repr__(self) -> str:
        return "CycleGAN generator loss (adversarial + cycle + identity)"


class CycleGAN(Recorded, LazyDistribution):
    r"""Unpaired image-to-image translation (CycleGAN, Zhu et al., 2017) between domains :math:`A` and :math:`B`.

    Two translators, :math:`G: A \to B` (``generator_ab``) and :math:`F: B \to A` (``generator_ba``), U-Nets
    (:class:`~gendist.nn.UNetTranslator`) that read the source image as their context; two PatchGAN critics
    (:class:`~gendist.nn.PatchDiscriminator`, unconditional), :math:`D_A` and :math:`D_B`. ``cyclegan(a)`` is the
    :class:`~gendist.Implicit` distribution of :math:`G(a)` (a point mass unless ``dropout``),
    :meth:`reverse` that of :math:`F(b)`; both take flat images ``(..., prod(shape))``.

    ``fit(cyclegan, (a, b))`` trains it by :meth:`objectives`: batches of **unpaired** images of each domain,
    ``a`` in the data slot and ``b`` in the slot of a context (it is not one: the second tensor of the batch
    is just the batch of domain :math:`B`; rows of ``a`` and ``b`` need not correspond). Each may be images
    ``(N, C, H, W)`` or flat rows ``(N, C * H * W)``. The critics minimize the loss of ``loss`` (LSGAN by
    default) per patch, :math:`D_B` on :math:`b` against :math:`G(a)` and :math:`D_A` on :math:`a` against
    :math:`F(b)`; the generators minimize

    .. math:: L = \ell_G(D_B(G(a))) + \ell_G(D_A(F(b)))
        + \lambda_c \big(E\lvert F(G(a)) - a \rvert + E\lvert G(F(b)) - b \rvert\big)
        + \lambda_c \lambda_i \big(E\lvert G(b) - b \rvert + E\lvert F(a) - a \rvert\big)

    with :math:`\lambda_c` = ``cycle`` (10) and :math:`\lambda_i` = ``identity`` (0.5; relative to the
    cycle's weight, as in the authors' code; it needs domains of one shape), :math:`E\lvert\cdot\rvert` the
    mean absolute difference over all entries and :math:`\ell_G` :func:`~gendist.inference.gan.generator_loss`
    per patch (the least-squares ones carry a half: :math:`\tfrac12 (D - 1)^2`). No pool of past fakes is kept.

    Arguments:
        shape: the image shape ``(C, H, W)`` of domain :math:`B` (the translations ``cyclegan(a)``).
        source_shape: that of domain :math:`A` (default: ``shape``).
        channels: the width of the four networks.
        cycle: the cycle-consistency weight :math:`\lambda_c`.
        identity: the identity weight :math:`\lambda_i` (relative to ``cycle``; 0: none).
        loss: the adversarial loss, one of :data:`~gendist.inference.gan.GAN_LOSSES`.
        dropout: the translators' dropout (noise that stays on when sampling; 0: deterministic).
        out: the translators' output, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.
        n_critic: critic steps per generator step.
        lr_generator, lr_critic, betas: the Adam optimizers (None: ``fit``'s rate).

    Example:
        >>> cg = CycleGAN((1, 8, 8), channels=4)
        >>> a = torch.rand(3, 64) * 2 - 1
        >>> cg(a).sample().shape, cg.reverse(a).sample().shape
        (torch.Size([3, 1, 8, 8]), torch.Size([3, 1, 8, 8]))
        >>> [o.name for o in cg.objectives()]
        ['critic_a', 'critic_b', 'generator']
    """

    def __init__(
        self,
        shape: Sequence[int] = (1, 8, 8),
        channels: int = 32,
        cycle: float = 10.0,
        identity: float = 0.5,
        loss: str = "least_squares",
        *,
        source_shape: Sequence[int] | None = None,
        dropout: float = 0.0,
        out: str = "tanh",
        n_critic: int = 1,
        lr_generator: float | None = None,
        lr_critic: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        where = "CycleGAN"
        self.shape = _image_shape(where, "shape", shape)
        self.source_shape = self.shape if source_shape is None else _image_shape(where, "source_shape", source_shape)
        if self.source_shape[1:] != self.shape[1:]:
            raise ValueError(f"{where}: the two domains' images must have one size {tuple(self.shape[1:])}, got "
                             f"source_shape {tuple(self.source_shape)}")
        channels = check_integer(f"{where}: `channels`", channels)
        self.cycle = check_number(f"{where}: `cycle`", cycle, zero=True)
        self.identity = check_number(f"{where}: `identity`", identity, zero=True)
        if self.identity and self.shape != self.source_shape:
            raise ValueError(f"{where}: the identity loss feeds each translator images of its target domain, which "
                             f"needs domains of one shape; got {tuple(self.source_shape)} and {tuple(self.shape)}: "
                             f"set identity=0")
        if loss not in GAN_LOSSES:
            raise ValueError(f"{where}: `loss` must be one of {GAN_LOSSES}, got {loss!r}")
        if out not in OUTPUTS:
            raise ValueError(f"{where}: `out` must be one of {sorted(OUTPUTS)}, got {out!r}")
        self.loss = loss
        self.support = OUTPUTS[out]
        self.n_critic = check_integer(f"{where}: `n_critic`", n_critic)
        self._optim: dict[str, Any] = {
            "lr_generator": None if lr_generator is None else check_number(f"{where}: `lr_generator`", lr_generator),
            "lr_critic": None if lr_critic is None else check_number(f"{where}: `lr_critic`", lr_critic),
            "betas": check_betas(f"{where}: `betas`", betas),
        }
        self.generator_ab = UNetTranslator(self.shape, self.source_shape, channels=channels, dropout=dropout, out=out)
        self.generator_ba = UNetTranslator(self.source_shape, self.shape, channels=channels, dropout=dropout, out=out)
        self.discriminator_a = PatchDiscriminator(self.source_shape, None, channels=channels)
        self.discriminator_b = PatchDiscriminator(self.shape, None, channels=channels)
        self.latent = NoLatent()

    @property
    def _dtype(self) -> torch.dtype:
        return self.latent._anchor.dtype

    # -- the distributions -----------------------------------------------------------------------------------
    def forward(self, c: Tensor | None = None) -> Implicit:
        r"""The distribution of :math:`G(a)`, :math:`a` = ``c`` flat, shape ``(..., prod(source_shape))``."""
        check_source("CycleGAN", c, self.source_shape, self._dtype)
        return Implicit(self.generator_ab, self.latent(), self.shape, c, support=self.support)

    def reverse(self, b: Tensor) -> Implicit:
        r"""The distribution of :math:`F(b)`, ``b`` flat, shape ``(..., prod(shape))``."""
        check_source("CycleGAN.reverse", b, self.shape, self._dtype)
        return Implicit(self.generator_ba, self.latent(), self.source_shape, b, support=self.support)

    # -- translations and losses -----------------------------------------------------------------------------
    def to_b(self, a: Tensor) -> Tensor:
        r""":math:`G(a)` of images ``a`` ``(N, *source_shape)`` (or flat), differentiable: ``(N, *shape)``."""
        a = as_images("CycleGAN", "a", a, self.source_shape, self._dtype)
        return self.generator_ab(a.new_empty(a.shape[0], 0), a.flatten(1))

    def to_a(self, b: Tensor) -> Tensor:
        r""":math:`F(b)` of images ``b`` ``(N, *shape)`` (or flat), differentiable: ``(N, *source_shape)``."""
        b = as_images("CycleGAN", "b", b, self.shape, self._dtype)
        return self.generator_ba(b.new_empty(b.shape[0], 0), b.flatten(1))

    def _split(self, batch: Batch) -> tuple[Tensor, Tensor]:
        if len(batch) != 2:
            raise ValueError(f"CycleGAN trains on batches (a, b) of unpaired images of its two domains, got a batch "
                             f"of {len(batch)} tensor(s)")
        a = as_images("CycleGAN", "a", batch[0], self.source_shape, self._dtype)
        b = as_images("CycleGAN", "b", batch[1], self.shape, self._dtype)
        return a, b

    def cycle_loss(self, a: Tensor, b: Tensor) -> Tensor:
        r"""The cycle-consistency error :math:`E\lvert F(G(a)) - a \rvert + E\lvert G(F(b)) - b \rvert` (unweighted).

        Example:
            >>> cg = CycleGAN((1, 8, 8), channels=4)
            >>> cg.cycle_loss(torch.zeros(2, 64), torch.zeros(2, 64)).shape
            torch.Size([])
        """
        a, b = self._split((a, b))
        return (self.to_a(self.to_b(a)) - a).abs().mean() + (self.to_b(self.to_a(b)) - b).abs().mean()

    def critic_loss(self, batch: Batch, domain: str) -> Tensor:
        r"""The loss of critic :math:`D_A` (``domain="a"``: :math:`a` against :math:`F(b)`) or :math:`D_B`
        (``"b"``: :math:`b` against :math:`G(a)`), per patch; the fakes are detached."""
        a, b = self._split(batch)
        if domain == "a":
            critic, real, fake = self.discriminator_a, a, self.to_a(b)
        elif domain == "b":
            critic, real, fake = self.discriminator_b, b, self.to_b(a)
        else:
            raise ValueError(f"CycleGAN.critic_loss: `domain` must be 'a' or 'b', got {domain!r}")
        return discriminator_loss(self.loss, critic.patches(real).flatten(), critic.patches(fake.detach()).flatten())

    def generator_losses(self, batch: Batch) -> dict[str, Tensor]:
        r"""The generators' weighted terms: ``adversarial_ab``, ``adversarial_ba``, ``cycle`` and ``identity``."""
        a, b = self._split(batch)
        fake_b, fake_a = self.to_b(a), self.to_a(b)

        def adversarial(critic: PatchDiscriminator, fake: Tensor, real: Tensor) -> Tensor:
            real_scores = None
            if self.loss == "relativistic":
                with torch.no_grad():
                    real_scores = critic.patches(real).flatten()
            return generator_loss(self.loss, critic.patches(fake).flatten(), real_scores)

        cycle = (self.to_a(fake_b) - a).abs().mean() + (self.to_b(fake_a) - b).abs().mean()
        out = {"adversarial_ab": adversarial(self.discriminator_b, fake_b, b),
               "adversarial_ba": adversarial(self.discriminator_a, fake_a, a),
               "cycle": self.cycle * cycle}
        if self.identity:
            same = (self.to_b(b) - b).abs().mean() + (self.to_a(a) - a).abs().mean()
            out["identity"] = self.cycle * self.identity * same
        return out

    def objectives(self) -> list[Objective]:
        r"""``"critic_a"`` (:math:`D_A`), ``"critic_b"`` (:math:`D_B`) and ``"generator"`` (:math:`G` and :math:`F`
        together, every ``n_critic``-th batch), each with its own Adam; none validated (see
        :func:`~gendist.inference.gan.gan_objectives`)."""
        lr_g, lr_d = self._optim["lr_generator"], self._optim["lr_critic"]

        def adam(lr: float | None) -> AdamFactory:
            return AdamFactory(lr, self._optim["betas"])

        return [
            Objective("critic_a", _CriticLoss("a"), parameters=lambda m: m.discriminator_a.parameters(),
                      optimizer=adam(lr_d), lr=lr_d, validate=False),
            Objective("critic_b", _CriticLoss("b"), parameters=lambda m: m.discriminator_b.parameters(),
                      optimizer=adam(lr_d), lr=lr_d, validate=False),
            Objective("generator", _GeneratorLoss(),
                      parameters=lambda m: [*m.generator_ab.parameters(), *m.generator_ba.parameters()],
                      optimizer=adam(lr_g), lr=lr_g, every=self.n_critic, validate=False),
        ]
