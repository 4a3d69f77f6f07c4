r"""GAN networks: generators :math:`G(z, c)` and discriminators :math:`D(x, c)`.

Every generator maps ``z`` of shape ``(N, latent)`` (and a flat context ``c`` of shape ``(N, context)``) to
samples ``(N, *shape)``; every discriminator maps ``x`` of shape ``(N, *shape)`` (and ``c``) to scores (logits)
``(N,)``, and has ``features(x, c) -> (N, F)``, its penultimate features (for feature matching). A source image
for translation travels as the flat context; the network reshapes it. The blocks (minibatch standard deviation,
self-attention, conditional batch norm, spectral normalization) are in :mod:`gendist.nn.gan_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Size, Tensor

from gendist._checks import check_integer, check_number, check_shape
from gendist.nn.gan_blocks import (
    _OUT,
    ConditionalBatchNorm2d,
    MinibatchStdDev,
    SelfAttention2d,
    _check_batch,
    _check_cond,
    _choice,
    spectral_normed,
)

__all__ = [
    "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "PatchDiscriminator",
    "UNetTranslator",
]

_SLOPE = 0.2  # the leaky ReLU slope of every discriminator (DCGAN's)


def _generator_input(where: str, z: Tensor | None, c: Tensor | None, latent: int, context: int) -> Tensor:
    r"""Check ``z`` ``(N, latent)`` and ``c`` ``(N, context)``; ``z`` may be ``None`` when ``latent == 0``."""
    if z is None and latent == 0 and isinstance(c, Tensor) and c.dim() >= 1:
        z = c.new_empty(c.shape[0], 0)
    _check_batch(where, "z", z, (latent,))
    _check_cond(where, c, context, z.shape[0])
    return z


def _image_shape(where: str, shape: Sequence[int], name: str = "shape") -> Size:
    shape = check_shape(shape, f"{where}: `{name}`")
    if len(shape) != 3:
        raise ValueError(f"{where}: `{name}` must be an image shape (C, H, W), got {tuple(shape)}")
    return shape


def _doublings(h: int, w: int, base: int = 4) -> tuple[int, int, int]:
    r"""The number :math:`k` of halvings from ``(h, w)`` that stay whole and at least ``base``, and the smallest map."""
    k = 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= base:
        h, w, k = h // 2, w // 2, k + 1
    return k, h, w


def _leaky(h: Tensor) -> Tensor:
    return F.leaky_relu(h, _SLOPE)


class _Discriminator(nn.Module):
    r"""What every discriminator shares: ``features`` (checks, then ``_features``), the score head and the
    projection of the context (Miyato & Koyama, 2018): :math:`D(x, c) = \psi(\phi(x)) + \langle V c, \phi(x)\rangle`.
    """

    shape: Size
    context: int
    num_features: int

    def _heads(self, conditioning: str) -> None:
        self.conditioning = conditioning
        self.head = nn.Linear(self.num_features, 1)
        projection = conditioning == "projection" and self.context > 0
        self.embed = nn.Linear(self.context, self.num_features, bias=False) if projection else None

    def _features(self, x: Tensor, c: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The penultimate features :math:`\phi(x)` (with the context, under concatenation), ``(N, F)``."""
        where = type(self).__name__
        _check_batch(where, "x", x, self.shape)
        _check_cond(where, c, self.context, x.shape[0])
        return self._features(x, c)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        phi = self.features(x, c)
        score = self.head(phi).squeeze(-1)
        if self.embed is not None:
            score = score + (self.embed(c) * phi).sum(-1)
        return score


class MLPGenerator(nn.Module):
    r"""A perceptron generator :math:`G(z, c)`: the context is concatenated to :math:`z`.

    Linear layers of sizes ``hidden`` (each followed by batch norm when ``batchnorm``, then the activation), a
    last linear layer to :math:`\prod` ``shape`` values, the output activation, reshaped to ``shape``.

    Arguments:
        latent: the size of :math:`z` (0 allowed for a deterministic map of a context).
        shape: the shape of a sample.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        activation: ``"relu"`` or ``"leaky_relu"`` (slope 0.2).
        batchnorm: batch norm after each hidden linear layer.
        out: the output activation, ``"identity"``, ``"tanh"`` or ``"sigmoid"``.

    Example:
        >>> g = MLPGenerator(4, (2, 3), hidden=(16,), context=1)
        >>> g(torch.randn(5, 4), torch.randn(5, 1)).shape
        torch.Size([5, 2, 3])
    """

    def __init__(
        self,
        latent: int,
        shape: int | Sequence[int],
        hidden: Sequence[int] = (256, 256),
        context: int = 0,
        activation: str = "relu",
        batchnorm: bool = False,
        out: str = "identity",
    ) -> None:
        super().__init__()
        where = "MLPGenerator"
        self.latent = check_integer(f"{where}: `latent`", latent, low=0)
        self.context = check_integer(f"{where}: `context`", context, low=0)
        if latent + context == 0:
            raise ValueError(f"{where}: needs an input: `latent` + `context` must be >= 1, got 0")
        self.shape = check_shape(shape, f"{where}: `shape`")
        hidden = tuple(check_integer(f"{where}: `hidden` sizes", h, low=1) for h in hidden)
        _choice(where, "activation", activation, ("relu", "leaky_relu"))
        _choice(where, "out", out, tuple(_OUT))
        layers: list[nn.Module] = []
        d = latent + context
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU() if activation == "relu" else nn.LeakyReLU(_SLOPE))
            d = h
        layers += [nn.Linear(d, self.shape.numel()), _OUT[out]()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        z = _generator_input("MLPGenerator", z, c, self.latent, self.context)
        h = z if c is None else torch.cat([z, c], -1)
        return self.net(h).reshape(z.shape[0], *self.shape)


class MLPDiscriminator(_Discriminator):
    r"""A perceptron discriminator :math:`D(x, c)` of flattened samples, with leaky ReLUs (slope 0.2).

    The context is concatenated to :math:`x` (``conditioning="concat"``), or projected (``"projection"``,
    Miyato & Koyama, 2018): :math:`D(x, c) = \psi(\phi(x)) + \langle V c, \phi(x) \rangle`, :math:`\phi` the
    last hidden layer (the ``features``). ``minibatch_std`` appends ProGAN's minibatch standard deviation
    before the last hidden layer; ``spectral_norm`` normalizes every linear layer (the projection's too).

    Arguments:
        shape: the shape of a sample.
        hidden: the hidden layer sizes (at least one).
        context: the context size (0 for none).
        conditioning: ``"concat"`` or ``"projection"``.
        spectral_norm: spectral normalization of every layer.
        minibatch_std: a :class:`~gendist.nn.gan_blocks.MinibatchStdDev` before the last hidden layer.
        dropout: the dropout rate after each hidden layer.

    Example:
        >>> d = MLPDiscriminator((2, 3), hidden=(16, 8), context=1, conditioning="projection")
        >>> x, c = torch.randn(5, 2, 3), torch.randn(5, 1)
        >>> d(x, c).shape, d.features(x, c).shape
        (torch.Size([5]), torch.Size([5, 8]))
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        hidden: Sequence[int] = (256, 256),
        context: int = 0,
        conditioning: str = "concat",
        spectral_norm: bool = False,
        minibatch_std: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        where = "MLPDiscriminator"
        self.shape = check_shape(shape, f"{where}: `shape`")
        self.context = check_integer(f"{where}: `context`", context, low=0)
        hidden = tuple(check_integer(f"{where}: `hidden` sizes", h, low=1) for h in hidden)
        if not hidden:
            raise ValueError(f"{where}: `hidden` must hold at least one layer size (the features), got ()")
        _choice(where, "conditioning", conditioning, ("concat", "projection"))
        dropout = check_number(f"{where}: `dropout`", dropout, zero=True)
        if dropout >= 1:
            raise ValueError(f"{where}: `dropout` must be < 1, got {dropout}")
        self.concat = conditioning == "concat" and self.context > 0
        layers: list[nn.Module] = []
        d = self.shape.numel() + (self.context if self.concat else 0)
        for i, h in enumerate(hidden):
            if minibatch_std and i == len(hidden) - 1:
                layers.append(MinibatchStdDev())
                d += 1
            layers += [nn.Linear(d, h), nn.LeakyReLU(_SLOPE)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = h
        self.body = nn.Sequential(*layers)
        self.num_features = d
        self._heads(conditioning)
        if spectral_norm:
            spectral_normed(self)

    def _features(self, x: Tensor, c: Tensor | None) -> Tensor:
        h = x.flatten(1)
        if self.concat:
            h = torch.cat([h, c], -1)
        return self.body(h)


class DCGANGenerator(nn.Module):
    r"""A DCGAN generator (Radford et al., 2016) of images ``(C, H, W)``.

    :math:`z` (with the context under ``conditioning="concat"``) is projected to a small map of
    :math:`h_0 \times w_0` (halving :math:`H, W` while they stay whole and at least 4: 4x4 for 8, 16, 32, 64;
    7x7 for 28), then stride-2 transposed convolutions double the resolution up to :math:`H \times W` while the
    channels halve down to ``channels``; each stage has batch norm and ReLU, and a 3x3 convolution to :math:`C`
    channels and the output activation end it. ``conditioning="batchnorm"`` feeds the context through
    conditional batch norm (:class:`~gendist.nn.gan_blocks.ConditionalBatchNorm2d`) at every stage instead;
    ``attention`` adds a SAGAN self-attention block at the middle resolution.

    Arguments:
        latent: the size of :math:`z`.
        shape: the image shape ``(C, H, W)``.
        channels: the channels at full resolution (doubled per halving, at most 8 times).
        context: the context size (0 for none).
        conditioning: ``"concat"`` or ``"batchnorm"``.
        attention: a self-attention block at the middle resolution.
        out: the output activation, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.

    Example:
        >>> g = DCGANGenerator(8, (1, 28, 28), channels=4, context=3, conditioning="batchnorm", attention=True)
        >>> g(torch.randn(2, 8), torch.randn(2, 3)).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        latent: int,
        shape: Sequence[int],
        channels: int = 64,
        context: int = 0,
        conditioning: str = "concat",
        attention: bool = False,
        out: str = "tanh",
    ) -> None:
        super().__init__()
        where = "DCGANGenerator"
        self.latent = check_integer(f"{where}: `latent`", latent, low=0)
        self.shape = _image_shape(where, shape)
        channels = check_integer(f"{where}: `channels`", channels, low=1)
        self.context = check_integer(f"{where}: `context`", context, low=0)
        self.conditioning = _choice(where, "conditioning", conditioning, ("concat", "batchnorm"))
        _choice(where, "out", out, tuple(_OUT))
        self.cbn = conditioning == "batchnorm" and self.context > 0
        d = latent + (0 if self.cbn else self.context)
        if d == 0:
            raise ValueError(f"{where}: needs an input: `latent` must be >= 1 (unless a context is concatenated)")
        C, H, W = self.shape
        k, h0, w0 = _doublings(H, W)
        self.base = (h0, w0)
        widths = [channels * min(2 ** (k - j), 8) for j in range(k + 1)]  # j = 0: the smallest map
        self.project = nn.Linear(d, widths[0] * h0 * w0)
        self.norms = nn.ModuleList(
            ConditionalBatchNorm2d(w, self.context) if self.cbn else nn.BatchNorm2d(w) for w in widths
        )
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in zip(widths[:-1], widths[1:]))
        self.attention_at = (k + 1) // 2
        self.attention = SelfAttention2d(widths[self.attention_at]) if attention else None
        self.final = nn.Conv2d(widths[-1], C, 3, padding=1)
        self.out = _OUT[out]()

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        z = _generator_input("DCGANGenerator", z, c, self.latent, self.context)
        h = self.project(z if c is None or self.cbn else torch.cat([z, c], -1))
        h = h.reshape(z.shape[0], -1, *self.base)
        for j, norm in enumerate(self.norms):
            if j > 0:
                h = self.ups[j - 1](h)
            h = F.relu(norm(h, c) if self.cbn else norm(h))
            if self.attention is not None and j == self.attention_at:
                h = self.attention(h)
        return self.out(self.final(h))


class DCGANDiscriminator(_Discriminator):
    r"""A DCGAN discriminator of images ``(C, H, W)``, with leaky ReLUs (slope 0.2).

    A 3x3 convolution to ``channels``, then stride-2 4x4 convolutions halving the resolution (doubling the
    channels, at most 8 times) down to the generator's smallest map, then a 3x3 convolution (after ProGAN's
    minibatch standard deviation when ``minibatch_std``); the features :math:`\phi` are a linear map of the
    flattened last map (leaky ReLU), and the score is :math:`\psi(\phi)` (plus the projection of the context
    with ``conditioning="projection"``; ``"concat"`` broadcasts the context as extra input channels).

    Batch norm follows the stride-2 convolutions only when asked, or by default (``batchnorm=None``) when
    neither ``spectral_norm`` nor ``minibatch_std`` is on: spectral normalization already controls the
    critic's scale, and batch statistics would blur the per-group statistics of the minibatch layer. Use
    ``batchnorm=False`` for a gradient-penalty critic (WGAN-GP penalises per-example gradients, which batch
    norm couples).

    Arguments:
        shape: the image shape ``(C, H, W)``.
        channels: the channels at full resolution.
        context: the context size (0 for none).
        conditioning: ``"concat"`` or ``"projection"``.
        spectral_norm: spectral normalization of every layer.
        attention: a self-attention block at the middle resolution.
        minibatch_std: a :class:`~gendist.nn.gan_blocks.MinibatchStdDev` before the last convolution.
        batchnorm: batch norm after the stride-2 convolutions (``None``: see above).

    Example:
        >>> d = DCGANDiscriminator((3, 16, 16), channels=4, context=2, conditioning="projection")
        >>> x, c = torch.randn(2, 3, 16, 16), torch.randn(2, 2)
        >>> d(x, c).shape, d.features(x, c).shape
        (torch.Size([2]), torch.Size([2, 16]))
    """

    def __init__(
        self,
        shape: Sequence[int],
        channels: int = 64,
        context: int = 0,
        conditioning: str = "concat",
        spectral_norm: bool = False,
        attention: bool = False,
        minibatch_std: bool = False,
        batchnorm: bool | None = None,
    ) -> None:
        super().__init__()
        where = "DCGANDiscriminator"
        self.shape = _image_shape(where, shape)
        channels = check_integer(f"{where}: `channels`", channels, low=1)
        self.context = check_integer(f"{where}: `context`", context, low=0)
        _choice(where, "conditioning", conditioning, ("concat", "projection"))
        self.concat = conditioning == "concat" and self.context > 0
        if batchnorm is None:
            batchnorm = not (spectral_norm or minibatch_std)
        C, H, W = self.shape
        k, h0, w0 = _doublings(H, W)
        widths = [channels * min(2**j, 8) for j in range(k + 1)]  # j = 0: full resolution
        self.stem = nn.Conv2d(C + (self.context if self.concat else 0), widths[0], 3, padding=1)
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) if batchnorm else nn.Identity() for w in widths[1:])
        self.attention_at = k - (k + 1) // 2  # the generator's middle resolution
        self.attention = SelfAttention2d(widths[self.attention_at]) if attention else None
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        self.last = nn.Conv2d(widths[-1] + int(minibatch_std), widths[-1], 3, padding=1)
        self.linear = nn.Linear(widths[-1] * h0 * w0, widths[-1])
        self.num_features = widths[-1]
        self._heads(conditioning)
        if spectral_norm:
            spectral_normed(self)

    def _features(self, x: Tensor, c: Tensor | None) -> Tensor:
        if self.concat:
            x = torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        h = _leaky(self.stem(x))
        for j in range(len(self.downs) + 1):
            if j > 0:
                h = _leaky(self.norms[j - 1](self.downs[j - 1](h)))
            if self.attention is not None and j == self.attention_at:
                h = self.attention(h)
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        h = _leaky(self.last(h))
        return _leaky(self.linear(h.flatten(1)))


def _source_shape(where: str, shape: Size, source_shape: Sequence[int] | None) -> Size:
    source = shape if source_shape is None else _image_shape(where, source_shape, "source_shape")
    if source[1:] != shape[1:]:
        raise ValueError(f"{where}: the source images must have the target's size {tuple(shape[1:])}, got "
                         f"source_shape {tuple(source)}")
    return source


class UNetTranslator(nn.Module):
    r"""A pix2pix U-Net generator (Isola et al., 2017) translating a source image to a target image.

    The source arrives as the flat context ``c`` of shape ``(N, prod(source_shape))`` and is reshaped to
    ``source_shape`` (the target's :math:`H, W`); ``z`` of shape ``(N, latent)`` is broadcast as ``latent`` extra
    input channels (``latent=0``: ``z`` is ``(N, 0)`` or ``None``). An encoder of stride-2 4x4 convolutions
    (leaky ReLU, batch norm) halves the resolution while it stays whole and at least 2 (at most 4 times); a
    decoder of transposed convolutions (ReLU, batch norm) doubles it back, each stage concatenated with the
    encoder's map of its resolution (the skips). As in pix2pix, dropout at the three innermost decoder stages
    is the generator's noise: it stays on in eval mode (``dropout=0`` turns it off).

    Arguments:
        shape: the target image shape ``(C, H, W)``.
        source_shape: the source image shape ``(C', H, W)`` (default: ``shape``).
        channels: the channels at full resolution (doubled per halving, at most 8 times).
        latent: the size of :math:`z` (0 for none).
        dropout: the dropout rate of the innermost decoder stages.
        out: the output activation, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.

    Example:
        >>> g = UNetTranslator((1, 8, 8), source_shape=(2, 8, 8), channels=4, latent=3)
        >>> g(torch.randn(5, 3), torch.randn(5, 2 * 8 * 8)).shape
        torch.Size([5, 1, 8, 8])
    """

    def __init__(
        self,
        shape: Sequence[int],
        source_shape: Sequence[int] | None = None,
        channels: int = 32,
        latent: int = 0,
        dropout: float = 0.5,
        out: str = "tanh",
    ) -> None:
        super().__init__()
        where = "UNetTranslator"
        self.shape = _image_shape(where, shape)
        self.source_shape = _source_shape(where, self.shape, source_shape)
        self.context = self.source_shape.numel()
        channels = check_integer(f"{where}: `channels`", channels, low=1)
        self.latent = check_integer(f"{where}: `latent`", latent, low=0)
        self.dropout = check_number(f"{where}: `dropout`", dropout, zero=True)
        if self.dropout >= 1:
            raise ValueError(f"{where}: `dropout` must be < 1, got {dropout}")
        _choice(where, "out", out, tuple(_OUT))
        k, _, _ = _doublings(*self.shape[1:], base=2)
        k = min(k, 4)
        widths = [channels * min(2**j, 8) for j in range(k + 1)]
        self.stem = nn.Conv2d(self.source_shape[0] + latent, widths[0], 3, padding=1)
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths[:-1], widths[1:]))
        # no batch norm at the bottleneck (pix2pix)
        self.down_norms = nn.ModuleList(nn.BatchNorm2d(w) if j < k else nn.Identity()
                                        for j, w in enumerate(widths[1:], 1))
        ups_in = [widths[k]] + [2 * widths[j] for j in range(k - 1, 0, -1)]  # innermost first
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, widths[j - 1], 4, 2, 1)
                                 for a, j in zip(ups_in, range(k, 0, -1)))
        self.up_norms = nn.ModuleList(nn.BatchNorm2d(widths[j - 1]) for j in range(k, 0, -1))
        self.final = nn.Conv2d(2 * widths[0] if k else widths[0], self.shape[0], 3, padding=1)
        self.out = _OUT[out]()

    def forward(self, z: Tensor | None, c: Tensor | None = None) -> Tensor:
        where = "UNetTranslator"
        if c is None:
            raise ValueError(f"{where} translates a source image: it needs a context `c` of shape "
                             f"(N, {self.context}) (the flattened source {tuple(self.source_shape)}), got None")
        z = _generator_input(where, z, c, self.latent, self.context)
        h = c.reshape(-1, *self.source_shape)
        if self.latent:
            h = torch.cat([h, z[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1)
        h = self.stem(h)
        skips = [h]
        for down, norm in zip(self.downs, self.down_norms):
            h = norm(down(_leaky(h)))
            skips.append(h)
        skips.pop()  # the bottleneck is no skip
        for i, (up, norm) in enumerate(zip(self.ups, self.up_norms)):
            h = norm(up(F.relu(h)))
            if i < 3 and self.dropout:
                h = F.dropout(h, self.dropout, training=True)  # the noise: on in eval mode too
            h = torch.cat([h, skips.pop()], 1)
        return self.out(self.final(F.relu(h)))


class PatchDiscriminator(_Discriminator):
    r"""A PatchGAN discriminator (Isola et al., 2017): a logit per overlapping patch, averaged.

    The target image is concatenated (as channels) with the source image of a pair, which arrives as the flat
    context ``c`` of shape ``(N, prod(source_shape))``; with ``source_shape=None`` the discriminator is
    unconditional (unpaired translation, CycleGAN). Stride-2 4x4 convolutions (leaky ReLU; batch norm after all
    but the first) halve the resolution while it is at least 8 (at most 3 times: 8x8 images give 4x4 patch
    maps, 28x28 give 7x7), then a 3x3 convolution (the last hidden map, the ``features`` flattened) and a 3x3
    convolution to one logit per patch. :meth:`patches` gives the map ``(N, h, w)``, ``forward`` its mean.

    Arguments:
        shape: the target image shape ``(C, H, W)``.
        source_shape: the source image shape ``(C', H, W)``, or ``None`` for no source.
        channels: the channels of the first layer (doubled per halving, at most 8 times).
        batchnorm: batch norm in the hidden layers (pix2pix); ``False`` for a gradient-penalty critic.

    Example:
        >>> d = PatchDiscriminator((1, 28, 28), source_shape=(3, 28, 28), channels=4)
        >>> x, c = torch.randn(2, 1, 28, 28), torch.randn(2, 3 * 28 * 28)
        >>> d(x, c).shape, d.patches(x, c).shape
        (torch.Size([2]), torch.Size([2, 7, 7]))
    """

    def __init__(
        self,
        shape: Sequence[int],
        source_shape: Sequence[int] | None = None,
        channels: int = 32,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        where = "PatchDiscriminator"
        self.shape = _image_shape(where, shape)
        self.source_shape = None if source_shape is None else _source_shape(where, self.shape, source_shape)
        self.context = 0 if self.source_shape is None else self.source_shape.numel()
        channels = check_integer(f"{where}: `channels`", channels, low=1)
        C, H, W = self.shape
        n = 0
        while min(H, W) >= 8 and n < 3:
            H, W, n = H // 2, W // 2, n + 1
        self.patch_shape = (H, W)
        c_in = C + (0 if self.source_shape is None else self.source_shape[0])
        layers: list[nn.Module] = []
        for j in range(n + 1):  # n stride-2 layers, then a stride-1 one
            c_out = channels * min(2**j, 8)
            conv = nn.Conv2d(c_in, c_out, 4, 2, 1) if j < n else nn.Conv2d(c_in, c_out, 3, 1, 1)
            layers += [conv] + ([nn.BatchNorm2d(c_out)] if batchnorm and j > 0 else []) + [nn.LeakyReLU(_SLOPE)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.logit = nn.Conv2d(c_in, 1, 3, padding=1)
        self.num_features = c_in * H * W
        self.conditioning = "concat"
        self.embed = None

    def _body(self, x: Tensor, c: Tensor | None) -> Tensor:
        if self.source_shape is not None:
            x = torch.cat([x, c.reshape(-1, *self.source_shape)], 1)
        return self.body(x)

    def _features(self, x: Tensor, c: Tensor | None) -> Tensor:
        return self._body(x, c).flatten(1)

    def patches(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The logit of every patch, ``(N, h, w)``."""
        _check_batch(type(self).__name__, "x", x, self.shape)
        _check_cond(type(self).__name__, c, self.context, x.shape[0])
        return self.logit(self._body(x, c)).squeeze(1)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.patches(x, c).mean((-2, -1))

