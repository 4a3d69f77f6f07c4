r"""Text to image as a conditional implicit distribution :math:`p(x \mid \text{caption})`: GAN-INT-CLS with
StackGAN's conditioning augmentation.

References:
    | Generative adversarial text to image synthesis (Reed et al., 2016) https://arxiv.org/abs/1605.05396
    | StackGAN: text to photo-realistic image synthesis with stacked generative adversarial networks
    | (Zhang et al., 2017) https://arxiv.org/abs/1612.03242
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Tensor

from gendist._checks import check_context, check_integer, check_number
from gendist._recipes import Recorded
from gendist.distributions.implicit import Implicit
from gendist.distributions.lazy import LazyDistribution
from gendist.gan.core import OUTPUTS
from gendist.gan.translation import _image_shape, as_images
from gendist.inference.gan import GAN_LOSSES, AdamFactory, check_betas, discriminator_loss, generator_loss
from gendist.inference.objective import Batch, Objective
from gendist.nn.gan import DCGANDiscriminator, DCGANGenerator
from gendist.nn.gan_blocks import ConditioningAugmentation, TextEncoder

__all__ = ["TextToImage"]

CAPTION_VOCAB_SIZE = 19
r"""``len(gendist.data.CAPTION_VOCAB)``, the default vocabulary (the data sit on this package's floor, so the
size is written here; a test checks that the two agree)."""


class _CriticLoss:
    r"""The matching-aware critic's loss (:meth:`TextToImage.critic_loss`)."""

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return model.critic_loss(batch)

    def __repr__(self) -> str:
        return "TextToImage matching-aware critic loss"


class _GeneratorLoss:
    r"""The generator's loss (:meth:`TextToImage.generator_loss`)."""

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return model.generator_loss(batch)

    def __repr__(self) -> str:
        return "TextToImage generator loss (adversarial + KL of the conditioning augmentation)"


class TextToImage(Recorded, LazyDistribution):
    r"""Text to image (GAN-INT-CLS, Reed et al., 2016, with StackGAN's conditioning augmentation): ``t2i(tokens)``
    is the :class:`~gendist.Implicit` distribution :math:`p(x \mid t)` of images for a caption :math:`t`.

    The context is the caption's token ids as a float tensor ``(..., max_len)`` (contexts are float vectors;
    integer ids are converted), padded with 0 (:func:`gendist.data.tokenize` with ``max_len``). A
    :class:`~gendist.nn.TextEncoder` maps them to an embedding :math:`e = \phi(t)`; a
    :class:`~gendist.nn.ConditioningAugmentation` draws :math:`\hat c \sim \mathcal N(\mu(e),
    \operatorname{diag}\sigma(e)^2)` (its mean in eval mode); a DCGAN generator reads :math:`(z, \hat c)`
    concatenated (or :math:`\hat c` through conditional batch norm), :math:`x = G(z, \hat c)`,
    :math:`z \sim \mathcal N(0, I)`. The critic
    :math:`D(x, e)` (:class:`~gendist.nn.DCGANDiscriminator`, the embedding projected or concatenated as channels)
    is matching-aware: with the batch's captions rolled by one, :math:`\tilde t_n = t_{n-1}` (mismatched captions),

    .. math:: L_D = \ell_D\Big(D(x, e),\ \big[D(G(z, \hat c), e);\ D(x, \phi(\tilde t))\big]\Big)

    — the loss of ``loss`` with real images under their captions as real, and fakes under their captions and
    real images under mismatched captions as fake, each half the weight of the fake term (Reed et al.'s
    :math:`\tfrac12`). A batch of one example has no other caption: its mismatch term is left out. The
    generator minimizes :math:`\ell_G(D(G(z, \hat c), e)) + \lambda_{KL} E\, \mathrm{KL}(\mathcal N(\mu,
    \sigma^2) \,\|\, \mathcal N(0, I))` (``kl`` :math:`= \lambda_{KL}`).

    The defaults depart from the papers where the 8x8 digits asked for it. Measured as in
    ``benchmarks/gan_translation.py`` (the share of test captions whose image, drawn in eval mode, a digit
    classifier puts in the caption's class; 40 epochs at rate 1e-3, one seed each): a projection critic with
    spectral normalization and :math:`\lambda_{KL} = 0.1` gave 0.99; the same with StackGAN's
    :math:`\lambda_{KL} = 1`, 0.91; Reed et al.'s concatenating critic with spectral normalization, 0.82 (and
    with batch norm, at rate 2e-4, 0.13: it had not learnt the classes).

    Who trains what: the text encoder :math:`\phi` is trained with the **critic** (``"critic"`` objective: the
    discriminator and the encoder, by the matching-aware loss, whose mismatched pairs are what makes the
    embedding tell captions apart); the ``"generator"`` objective trains the generator and the conditioning
    augmentation, and reads :math:`e` detached.

    ``fit(t2i, (images, tokens))``: ``images`` ``(N, *shape)`` or flat ``(N, prod(shape))``, ``tokens``
    ``(N, max_len)``. The output is ``out`` (``tanh``: scale images to :math:`[-1, 1]`).

    Arguments:
        shape: the image shape ``(C, H, W)``.
        vocab: the vocabulary size (ids ``0 .. vocab - 1``, 0 padding; default ``len(CAPTION_VOCAB)`` = 19).
        text_dim: the size of the text embedding :math:`e`.
        max_len: the caption length ``L`` (the context size; position embeddings make word order count).
        latent: the size of :math:`z`.
        augment: the size of :math:`\hat c` (the conditioning augmentation's output).
        channels: the width of the generator and the critic.
        hidden: the text encoder's hidden size.
        kl: the KL weight :math:`\lambda_{KL}`.
        loss: one of :data:`~gendist.inference.gan.GAN_LOSSES`.
        conditioning: how the networks read the text: one name (``"concat"``, GAN-INT-CLS; ``"projection"``
            is the critic's and ``"batchnorm"`` the generator's, the other network concatenating), or a pair: the
            generator's (``"concat"``: :math:`(z, \hat c)` concatenated; ``"batchnorm"``: :math:`\hat c` through
            conditional batch norm at every stage) and the critic's (``"concat"``: :math:`e` as channels;
            ``"projection"``: Miyato & Koyama's projection).
        spectral_norm: spectral normalization of the critic's layers (then without batch norm).
        out: the generator's output, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.
        n_critic, lr_generator, lr_critic, betas: as for :class:`~gendist.gan.GAN`.

    Example:
        >>> t2i = TextToImage((1, 8, 8), text_dim=8, latent=4, augment=4, channels=4, hidden=8)
        >>> tokens = torch.tensor([[1.0, 2, 7, 18, 0], [1, 4, 12, 15, 17]])
        >>> t2i(tokens).sample((3,)).shape
        torch.Size([3, 2, 1, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int] = (1, 8, 8),
        vocab: int = CAPTION_VOCAB_SIZE,
        text_dim: int = 32,
        *,
        max_len: int = 5,
        latent: int = 32,
        augment: int = 16,
        channels: int = 32,
        hidden: int = 64,
        kl: float = 0.1,
        loss: str = "non_saturating",
        conditioning: str | Sequence[str] = "projection",
        spectral_norm: bool = True,
        out: str = "tanh",
        n_critic: int = 1,
        lr_generator: float | None = None,
        lr_critic: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        where = "TextToImage"
        self.shape = _image_shape(where, "shape", shape)
        self.max_len = check_integer(f"{where}: `max_len`", max_len)
        self.latent_size = check_integer(f"{where}: `latent`", latent)
        self.kl = check_number(f"{where}: `kl`", kl, zero=True)
        if loss not in GAN_LOSSES:
            raise ValueError(f"{where}: `loss` must be one of {GAN_LOSSES}, got {loss!r}")
        if isinstance(conditioning, str):  # one name for both, as in GAN: each network takes the one it has
            pair = ("concat" if conditioning == "projection" else conditioning,
                    "concat" if conditioning == "batchnorm" else conditioning)
        else:
            pair = tuple(conditioning)
        if len(pair) != 2 or pair[0] not in ("concat", "batchnorm") or pair[1] not in ("concat", "projection"):
            raise ValueError(f"{where}: `conditioning` must be 'concat', or a pair (generator: 'concat' or "
                             f"'batchnorm', critic: 'concat' or 'projection'), got {conditioning!r}")
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
        self.text = TextEncoder(vocab, dim=text_dim, hidden=hidden, max_len=self.max_len)
        self.augment = ConditioningAugmentation(text_dim, augment)
        self.net = DCGANGenerator(self.latent_size, self.shape, channels=channels, context=augment,
                                  conditioning=pair[0], out=out)
        self.discriminator = DCGANDiscriminator(self.shape, channels=channels, context=text_dim,
                                                conditioning=pair[1], spectral_norm=spectral_norm)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    # -- inputs ----------------------------------------------------------------------------------------------
    def tokens(self, c: object, where: str = "TextToImage") -> Tensor:
        r"""``c`` as float token ids ``(..., max_len)`` in the model's dtype (integer ids converted), or an error."""
        if isinstance(c, Tensor) and not c.dtype.is_floating_point and c.dtype != torch.bool:
            c = c.to(self._anchor.dtype)
        if c is None:
            raise ValueError(f"{where} draws images for a caption: give its token ids, a context `c` of shape "
                             f"(..., {self.max_len}) (gendist.data.tokenize(captions, max_len={self.max_len})), "
                             f"got None")
        check_context(c, self.max_len, where, self._anchor.dtype)
        return c

    # -- the distribution ------------------------------------------------------------------------------------
    def latent(self) -> dist.TorchDistribution:
        r"""The latent :math:`p(z) = \mathcal N(0, I)` on the model's device and dtype."""
        zero = self._anchor.new_zeros(self.latent_size)
        return dist.Normal(zero, torch.ones_like(zero)).to_event(1)

    def generate(self, z: Tensor, c: Tensor) -> Tensor:
        r""":math:`G(z, \hat c)`, :math:`\hat c` augmented from the embedding of the tokens ``c`` ``(N, max_len)``."""
        return self.net(z, self.augment(self.text(c)))

    def forward(self, c: Tensor | None = None) -> Implicit:
        c = self.tokens(c)
        return Implicit(self.generate, self.latent(), self.shape, c, support=self.support)

    # -- what the objectives use -----------------------------------------------------------------------------
    def _split(self, batch: Batch) -> tuple[Tensor, Tensor]:
        if len(batch) != 2:
            raise ValueError(f"TextToImage trains on batches (images, tokens), got a batch of {len(batch)} "
                             f"tensor(s)")
        x = as_images("TextToImage", "images", batch[0], self.shape, self._anchor.dtype)
        c = self.tokens(batch[1])
        if c.dim() != 2 or c.shape[0] != x.shape[0]:
            raise ValueError(f"TextToImage: the tokens must be one caption per image, shape ({x.shape[0]}, "
                             f"{self.max_len}), got {tuple(c.shape)}")
        return x, c

    def critic(self, x: Tensor, c: Tensor) -> Tensor:
        r"""The critic's scores :math:`D(x, \phi(t))` ``(N,)`` of images ``x`` under captions ``c`` (token ids)."""
        return self.discriminator(x, self.text(c))

    @staticmethod
    def mismatched(c: Tensor) -> Tensor:
        r"""Mismatched captions: the batch's captions rolled by one, :math:`\tilde t_n = t_{n-1}`.

        Example:
            >>> TextToImage.mismatched(torch.tensor([[1.0], [2.0], [3.0]])).flatten()
            tensor([3., 1., 2.])
        """
        return c.roll(1, 0)

    def fake(self, batch: Batch) -> Tensor:
        r"""Differentiable fakes for the batch's captions (the text embedding detached)."""
        x, c = self._split(batch)
        z = self.latent().rsample((x.shape[0],))
        return self.net(z, self.augment(self.text(c).detach()))

    def critic_loss(self, batch: Batch) -> Tensor:
        r"""The matching-aware loss :math:`L_D` (trains the critic and the text encoder)."""
        x, c = self._split(batch)
        fake = self.fake(batch).detach()
        real = self.critic(x, c)
        fakes = [self.critic(fake, c)]
        if x.shape[0] > 1:
            fakes.append(self.critic(x, self.mismatched(c)))
        return discriminator_loss(self.loss, real, torch.cat(fakes))

    def generator_loss(self, batch: Batch) -> Tensor:
        r"""The generator's adversarial loss plus ``kl`` times the conditioning augmentation's mean KL."""
        x, c = self._split(batch)
        e = self.text(c).detach()
        z = self.latent().rsample((x.shape[0],))
        fake = self.net(z, self.augment(e))
        real_scores = None
        if self.loss == "relativistic":
            with torch.no_grad():
                real_scores = self.discriminator(x, e)
        total = generator_loss(self.loss, self.discriminator(fake, e), real_scores)
        if self.kl:
            total = total + self.kl * self.augment.kl().mean()
        return total

    def objectives(self) -> list[Objective]:
        r"""``"critic"`` (the discriminator and the text encoder) and ``"generator"`` (the generator and the
        conditioning augmentation, every ``n_critic``-th batch), each with its own Adam; neither validated."""
        lr_g, lr_d = self._optim["lr_generator"], self._optim["lr_critic"]

        def adam(lr: float | None) -> AdamFactory:
            return AdamFactory(lr, self._optim["betas"])

        return [
            Objective("critic", _CriticLoss(),
                      parameters=lambda m: [*m.discriminator.parameters(), *m.text.parameters()],
                      optimizer=adam(lr_d), lr=lr_d, validate=False),
            Objective("generator", _GeneratorLoss(),
                      parameters=lambda m: [*m.net.parameters(), *m.augment.parameters()],
                      optimizer=adam(lr_g), lr=lr_g, every=self.n_critic, validate=False),
        ]
