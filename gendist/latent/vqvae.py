r"""VQ-VAE: a convolutional autoencoder with a vector-quantized code grid and an autoregressive prior over the codes.

The whole model is one distribution: :meth:`VQVAE.forward` returns a
:class:`VQVAEDistribution` that samples codes from the prior and images from
the decoder, and scores images by a lower bound on their log-likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
from einops import rearrange
from torch import Size, Tensor

from gendist._checks import check_context, check_integer, check_shape
from gendist._recipes import Recorded
from gendist.autoregressive import PixelCNN, Transformer
from gendist.distributions.conditionals import Categorical, Conditional, as_family, check_values
from gendist.distributions.factorized import Factorized
from gendist.distributions.latent import VQVAEDistribution
from gendist.distributions.lazy import LazyDistribution
from gendist.inference.objective import Objective, Stage, nll_objective
from gendist.nn.vq import VectorQuantizer

__all__ = ["VQVAE", "CodeUsage", "PRIORS", "STAGES"]

PRIORS = ("pixelcnn", "transformer")
STAGES = ("joint", "autoencoder", "prior")


class CodeUsage(NamedTuple):
    r"""How much of the codebook some data use: the fraction of codes that occur, and the perplexity
    :math:`\exp(-\sum_j p_j \log p_j)` of their frequencies (at most the codebook size)."""

    fraction: float
    perplexity: float


class _Residual(nn.Module):
    r""":math:`h + W_2\, \mathrm{relu}(W_1 * \mathrm{relu}(h))`, a 3x3 then a 1x1 convolution (van den Oord 2017)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.body(h)


class _Enter:
    """A stage's setup: switch a VQ-VAE to ``stage``."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __call__(self, model: nn.Module) -> None:
        model.stage = self.stage


def _prior_parameters(model: nn.Module):  # noqa: ANN202
    return model.prior.parameters()


def _encoder(inputs: int, channels: int, dim: int, downsample: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(inputs, channels, 3, padding=1)]
    for _ in range(downsample):  # each halves the height and width
        layers += [nn.ReLU(), nn.Conv2d(channels, channels, 4, stride=2, padding=1)]
    layers += [_Residual(channels) for _ in range(blocks)]
    return nn.Sequential(*layers, nn.ReLU(), nn.Conv2d(channels, dim, 1))


def _decoder(dim: int, channels: int, outputs: int, downsample: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(dim, channels, 3, padding=1)]
    layers += [_Residual(channels) for _ in range(blocks)]
    for _ in range(downsample):  # each doubles the height and width
        layers += [nn.ReLU(), nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)]
    return nn.Sequential(*layers, nn.ReLU(), nn.Conv2d(channels, outputs, 3, padding=1))


class VQVAE(Recorded, LazyDistribution):
    r"""A VQ-VAE (van den Oord et al., 2017) over images, with a learned autoregressive prior over its code grid.

    An encoder maps an image :math:`x` ``(C, H, W)`` to a grid of vectors
    :math:`z_e(x)` ``(dim, h, w)``, :math:`h = H / 2^s`, :math:`w = W / 2^s`
    (:math:`s` = ``downsample``); a :class:`~gendist.nn.VectorQuantizer`
    replaces each by its nearest code, :math:`k(x) \in \{0..K-1\}^{h \times w}`;
    a decoder maps the codes :math:`z_q = e_{k}` to every pixel's parameters of
    ``family``: the likelihood :math:`p(x \mid k)` is a
    :class:`~gendist.Factorized` (independent pixels given the codes). The
    prior :math:`p(k)` is a PixelCNN (or a causal transformer) over the code
    grid seen as a one-channel image of :math:`K` levels. ``vqvae()`` is the
    distribution of :math:`x` (a :class:`VQVAEDistribution`).

    :meth:`loss` (what :func:`gendist.inference.fit` minimizes) depends on :attr:`stage`:

    - ``"joint"`` (default): :math:`-\log p(x \mid k(x)) - \log p(k(x))` plus the
      quantizer's loss (commitment, and the codebook term without EMA), so one
      run trains the autoencoder and the prior together. The encoder gets the
      reconstruction gradient straight through the quantizer; the prior is
      fitted to the current codes (:math:`k(x)` is an integer: no gradient flows
      from the prior into the encoder), so it chases codes that still move
      early on; a last ``"prior"`` stage fits it to the final ones.
    - ``"autoencoder"``: the same without the prior's term (stage 1 of the paper).
    - ``"prior"``: :math:`-\log p(k(x))` alone, the encoder and the codebook frozen (stage 2).

    Arguments:
        shape: the image shape :math:`(C, H, W)`; :math:`H` and :math:`W` divisible by :math:`2^s`.
        family: the per-pixel family: ``"bernoulli"`` (binary images), ``Categorical(L)``,
            ``DiscretizedLogisticMixture(L, k)``, ``Normal(scale)``, ...
        codes: the codebook size :math:`K`.
        dim: the code dimension.
        channels: the feature maps of the encoder and decoder.
        downsample: the number :math:`s` of stride-2 convolutions (the grid is :math:`2^s` times smaller).
        blocks: the residual blocks of the encoder and of the decoder.
        prior: ``"pixelcnn"`` (a gated PixelCNN over the code grid) or ``"transformer"``
            (a causal transformer over the codes in raster order, 4 heads).
        prior_channels: the PixelCNN's feature maps, or the transformer's width.
        prior_layers: the prior's layers.
        prior_kernel: the PixelCNN's (odd) kernel width.
        decay, commitment, ema, restart, threshold: see :class:`~gendist.nn.VectorQuantizer`.
        stage: what :meth:`loss` trains: ``"joint"``, ``"autoencoder"`` or ``"prior"``.

    Example:
        >>> vq = VQVAE((1, 4, 4), "bernoulli", codes=4, dim=2, channels=8, downsample=1, blocks=0,
        ...            prior_channels=4, prior_layers=1)
        >>> d = vq()
        >>> x = d.sample((3,))
        >>> x.shape, d.log_prob(x).shape, vq.encode(x).shape, d.log_prob_kind
        (torch.Size([3, 1, 4, 4]), torch.Size([3]), torch.Size([3, 2, 2]), 'bound')
        >>> vq.loss(x).shape
        torch.Size([])

    References:
        | Neural Discrete Representation Learning (van den Oord et al., 2017) https://arxiv.org/abs/1711.00937
        | Generating Diverse High-Fidelity Images with VQ-VAE-2 (Razavi et al., 2019) https://arxiv.org/abs/1906.00446
    """

    validate_args: bool | None = None

    def __init__(
        self,
        shape: Sequence[int],
        family: Conditional | str = "bernoulli",
        codes: int = 32,
        dim: int = 16,
        channels: int = 64,
        downsample: int = 2,
        blocks: int = 2,
        prior: str = "pixelcnn",
        prior_channels: int = 32,
        prior_layers: int = 4,
        prior_kernel: int = 3,
        decay: float = 0.99,
        commitment: float = 0.25,
        ema: bool = True,
        restart: bool = True,
        threshold: float = 1.0,
        stage: str = "joint",
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        if len(self.shape) != 3:
            raise ValueError(f"shape must be an image shape (C, H, W), got {tuple(self.shape)}")
        self.family = as_family(family)
        codes = check_integer("codes", codes, 2)
        dim = check_integer("dim", dim, 1)
        channels = check_integer("channels", channels, 1)
        downsample = check_integer("downsample", downsample, 0)
        blocks = check_integer("blocks", blocks, 0)
        C, H, W = self.shape
        f = 2**downsample
        if H % f or W % f:
            raise ValueError(
                f"downsample={downsample} halves the image {downsample} times: H and W must be "
                f"divisible by {f}, got shape {tuple(self.shape)}"
            )
        self.grid = Size((H // f, W // f))
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        self.stage = stage  # checked by the setter
        self.encoder = _encoder(C, channels, dim, downsample, blocks)
        self.quantizer = VectorQuantizer(codes, dim, decay, commitment, ema, restart, threshold)
        self.decoder = _decoder(dim, channels, C * self.family.params, downsample, blocks)
        self.prior_kind = prior
        h, w = self.grid
        if prior == "pixelcnn":
            self.prior = PixelCNN((1, h, w), Categorical(codes), prior_channels, prior_layers, prior_kernel)
        else:
            if check_integer("prior_channels", prior_channels, 4) % 4:
                raise ValueError(
                    f"prior_channels (the transformer's width, 4 heads) must be a multiple of 4, got {prior_channels}"
                )
            self.prior = Transformer(h * w, Categorical(codes), d_model=prior_channels, heads=4, layers=prior_layers)

    @property
    def stage(self) -> str:
        r"""What :meth:`loss` trains: ``"joint"``, ``"autoencoder"`` or ``"prior"`` (settable between runs)."""
        return self._stage

    @stage.setter
    def stage(self, value: str) -> None:
        if value not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {value!r}")
        self._stage = value

    @property
    def codes(self) -> int:
        r"""The codebook size :math:`K`."""
        return self.quantizer.codes

    def _dtype(self) -> torch.dtype:
        return self.quantizer.codebook.dtype

    # --- the pieces -----------------------------------------------------------------------------

    def _values(self, x: Tensor, where: str, validate: bool = True) -> Tensor:
        r"""``x`` as a float tensor of the model's dtype ending in ``shape``, every entry in the support."""
        return check_values(where, x, self.family, self.shape, self._dtype(), validate)

    def _input(self, x: Tensor) -> Tensor:
        r"""What the encoder sees: levels rescaled to :math:`[-1, 1]` (discrete families), real values as they are."""
        L = self.family.levels
        return x * (2.0 / (L - 1)) - 1.0 if self.family.discrete and L else x

    def _theta(self, z_q: Tensor) -> Tensor:
        return rearrange(self.decoder(z_q), "n (c p) h w -> n c h w p", c=self.shape[0])

    def _prior_value(self, indices: Tensor) -> Tensor:
        r"""Code indices ``(N, h, w)`` as the prior's values: floats ``(N, 1, h, w)`` or ``(N, h w)``."""
        v = indices.to(self._dtype())
        return v.unsqueeze(1) if self.prior_kind == "pixelcnn" else v.flatten(1)

    def encode(self, x: Tensor) -> Tensor:
        r"""The code indices :math:`k(x)` of images ``(..., C, H, W)``: a long tensor ``(..., h, w)``.

        Changes no state (the EMA updates happen in :meth:`loss` only).
        """
        x = self._values(x, "VQVAE.encode")
        flat = x.reshape((-1,) + self.shape)
        return self.quantizer.nearest(self.encoder(self._input(flat))).reshape(x.shape[:-3] + self.grid)

    def decode(self, indices: Tensor) -> Factorized:
        r"""The likelihood :math:`p(x \mid k)` of code indices ``(..., h, w)``: batch shape ``...``."""
        if not isinstance(indices, Tensor) or indices.dim() < 2 or indices.shape[-2:] != self.grid:
            got = tuple(indices.shape) if isinstance(indices, Tensor) else type(indices).__name__
            raise ValueError(
                f"VQVAE.decode: `indices` must have shape (..., {self.grid[0]}, {self.grid[1]}), got {got}"
            )
        flat = indices.reshape((-1,) + self.grid)
        theta = self._theta(self.quantizer.embed(flat))
        return Factorized(
            self.family,
            theta.reshape(indices.shape[:-2] + theta.shape[1:]),
            event_dim=3,
            validate_args=self.validate_args,
        )

    def reconstruct(self, x: Tensor) -> Tensor:
        r"""The mean of :math:`p(x \mid k(x))`, the reconstruction of ``x``."""
        return self.decode(self.encode(x)).mean

    def bound(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The bound's two terms for images ``(N, C, H, W)``: :math:`\log p(x \mid k(x))` and :math:`\log p(k(x))`.

        No state changes, no input checks (see :meth:`VQVAEDistribution.log_prob`).
        """
        indices = self.quantizer.nearest(self.encoder(self._input(x)))
        theta = self._theta(self.quantizer.embed(indices))
        recon = Factorized(self.family, theta, event_dim=3).log_prob(x)
        return recon, self.prior().log_prob(self._prior_value(indices))

    # --- training -------------------------------------------------------------------------------

    def loss(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The training loss of images ``(..., C, H, W)`` for the current :attr:`stage`, averaged over images.

        In training mode it also updates the codebook (EMA) and restarts dead codes.
        """
        check_context(c, 0, "VQVAE.loss")
        x = self._values(x, "VQVAE.loss").reshape((-1,) + self.shape)
        if self.stage == "prior":
            with torch.no_grad():
                indices = self.quantizer.nearest(self.encoder(self._input(x)))
            return -self.prior().log_prob(self._prior_value(indices)).mean()
        z_q, indices, vq_loss = self.quantizer(self.encoder(self._input(x)))
        nll = -Factorized(self.family, self._theta(z_q), event_dim=3).log_prob(x)
        if self.stage == "joint":
            nll = nll - self.prior().log_prob(self._prior_value(indices))
        return nll.mean() + vq_loss

    def training_stages(self, epochs: int, prior_epochs: int, first: str = "joint") -> list[Stage]:
        r"""The two stages of VQ-VAE training for :func:`~gendist.inference.fit`: ``first`` (``"joint"`` or
        ``"autoencoder"``) for ``epochs`` epochs, then the prior alone on the final codes for ``prior_epochs``.

        The prior stage's optimizer holds the prior's parameters only. Pass the list as
        ``fit(vqvae, x, stages=vqvae.training_stages(...))``; plain ``fit(vqvae, x)`` trains the current
        :attr:`stage`.

        Example:
            >>> vq = VQVAE((1, 4, 4), "bernoulli", codes=4, dim=2, channels=8, downsample=1, blocks=1)
            >>> [s.name for s in vq.training_stages(2, 1)]
            ['joint', 'prior']
        """
        if first not in ("joint", "autoencoder"):
            raise ValueError(f"first must be 'joint' or 'autoencoder', got {first!r}")
        prior = Objective("prior", nll_objective, parameters=_prior_parameters)
        return [
            Stage(first, nll_objective, epochs=check_integer("epochs", epochs, 1), setup=_Enter(first)),
            Stage("prior", prior, epochs=check_integer("prior_epochs", prior_epochs, 1), setup=_Enter("prior")),
        ]

    @torch.no_grad()
    def code_usage(self, x: Tensor) -> CodeUsage:
        r"""The fraction of the codebook that images ``x`` use, and the perplexity of their codes."""
        counts = torch.bincount(self.encode(x).flatten(), minlength=self.codes).double()
        p = counts / counts.sum().clamp_min(1)
        perplexity = math.exp(-float((p * p.clamp_min(1e-300).log()).sum()))
        return CodeUsage(float((counts > 0).double().mean()), perplexity)

    # --- the distribution -----------------------------------------------------------------------

    def forward(self, c: Tensor | None = None) -> VQVAEDistribution:
        check_context(c, 0, "VQVAE")
        return VQVAEDistribution(self, validate_args=self.validate_args)
