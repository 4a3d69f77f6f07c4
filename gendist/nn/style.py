r"""Style-based generator parts (StyleGAN, StyleGAN2), written from the papers' equations.

Karras, Laine & Aila (2019), *A Style-Based Generator Architecture for Generative Adversarial Networks*
(the mapping network, AdaIN, noise inputs, style mixing, truncation in :math:`\mathcal{W}`); Karras et al. (2020),
*Analyzing and Improving the Image Quality of StyleGAN* (weight modulation and demodulation, the skip generator);
Karras et al. (2018), *Progressive Growing of GANs* (the equalized learning rate, the pixel norm).

Every layer here uses the equalized learning rate: a weight is stored as a standard normal draw and scaled at run
time by He's constant, so that Adam's (scale-free) steps move every layer at the same relative speed. Up-sampling is
by nearest neighbours (each pixel repeated 2x2, then a convolution), whose backward pass is a plain sum: deterministic
on CUDA as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Size, Tensor

from gendist._checks import check_context, check_integer, check_number, check_shape, check_value

__all__ = [
    "AdaIN", "EqualConv2d", "EqualLinear", "MappingNetwork", "ModulatedConv2d", "NoiseInjection", "StyleGenerator",
]

_SLOPE = 0.2
_GAIN = math.sqrt(2.0)  # He's gain for the leaky ReLU: keeps unit-variance activations unit-variance
_OUTS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda x: x}


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, _SLOPE) * _GAIN


def _pixel_norm(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    r""":math:`x / \sqrt{\operatorname{mean}(x^2) + \epsilon}` along ``dim`` (ProGAN's pixel-wise feature norm)."""
    return x * torch.rsqrt(x.square().mean(dim, keepdim=True) + eps)


def _upsample(x: Tensor) -> Tensor:
    r"""Nearest-neighbour up-sampling by 2 of ``(N, C, H, W)`` maps (an expand: its gradient is a plain sum)."""
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value  # type: ignore[return-value]


def _check_maps(where: str, x: Tensor, channels: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{where}: `x` must be feature maps of shape (N, {channels}, H, W), got {got}")


def _check_styles(where: str, w: Tensor, n: int, w_dim: int) -> None:
    if not isinstance(w, Tensor) or w.dim() != 2 or w.shape != (n, w_dim):
        got = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
        raise ValueError(f"{where}: `w` must have shape (N, w_dim) = ({n}, {w_dim}), one style per map, got {got}")


def _start(where: str, shape: Size) -> tuple[int, int, int]:
    r"""``(C, H, r0)`` for square images ``(C, H, H)`` with :math:`H = r_0 2^k`, :math:`r_0 \in \{4, 7\}`."""
    if len(shape) != 3:
        raise ValueError(f"{where}: `shape` must be (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if h != w:
        raise ValueError(f"{where}: images must be square (H == W), got shape {tuple(shape)}")
    for r0 in (4, 7):
        r = r0
        while r < h:
            r *= 2
        if r == h:
            return c, h, r0
    raise ValueError(f"{where}: the image size must be 4 or 7 times a power of 2 (8, 16, 28, 32, 64, ...), "
                     f"got {h}x{w}")


class EqualLinear(nn.Module):
    r"""A linear layer with an equalized learning rate: :math:`y = (\lambda / \sqrt{n_\text{in}})\, V x +
    \lambda\, b_V`.

    The stored weight :math:`V` is drawn from :math:`\mathcal{N}(0, 1/\lambda^2)` and the stored bias is
    ``bias_init`` :math:`/\lambda`, so the effective weight :math:`W = (\lambda/\sqrt{n_\text{in}}) V` starts as
    :math:`\mathcal{N}(0, 1/n_\text{in})` and the effective bias as ``bias_init``, whatever :math:`\lambda`; an
    optimizer's steps on :math:`V` then move :math:`W` :math:`\lambda` times more slowly (:math:`\lambda` =
    ``lr_multiplier``, 0.01 in StyleGAN's mapping network).

    Example:
        >>> EqualLinear(3, 5, lr_multiplier=0.01)(torch.randn(2, 3)).shape
        torch.Size([2, 5])
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_features = check_integer("EqualLinear: `in_features`", in_features)
        self.out_features = check_integer("EqualLinear: `out_features`", out_features)
        self.lr_multiplier = check_number("EqualLinear: `lr_multiplier`", lr_multiplier)
        bias_init = _check_real("EqualLinear: `bias_init`", bias_init)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / self.lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / self.lr_multiplier)) if bias else None
        self.weight_gain = self.lr_multiplier / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return F.linear(x, self.weight * self.weight_gain, bias)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"lr_multiplier={self.lr_multiplier}")


class EqualConv2d(nn.Module):
    r"""A 2-D convolution with an equalized learning rate: weights :math:`\mathcal{N}(0, 1)` scaled at run time by
    :math:`1/\sqrt{C_\text{in} k^2}`; "same" padding (odd ``kernel_size``).

    Example:
        >>> EqualConv2d(3, 8, 3)(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_integer("EqualConv2d: `in_channels`", in_channels)
        self.out_channels = check_integer("EqualConv2d: `out_channels`", out_channels)
        self.kernel_size = check_integer("EqualConv2d: `kernel_size`", kernel_size, odd=True)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, bias={self.bias is not None}"


class MappingNetwork(nn.Module):
    r"""StyleGAN's mapping network :math:`f: (z, c) \mapsto w \in \mathcal{W}`.

    The latent is normalized, :math:`\hat z = z / \sqrt{\operatorname{mean}(z^2) + \epsilon}` (the pixel norm);
    a context :math:`c` (if any) is embedded by an equalized linear map to ``w_dim`` values, normalized the same way
    and concatenated; then ``layers`` equalized linear layers of width ``w_dim``, each followed by a leaky ReLU
    (slope 0.2, gain :math:`\sqrt 2`), learned ``lr_multiplier`` times more slowly than the rest of the generator.

    Maps ``z`` of shape ``(..., latent)`` (and ``c`` of shape ``(..., context)``, broadcasting) to ``(..., w_dim)``.

    Example:
        >>> f = MappingNetwork(8, 16, layers=2, context=3)
        >>> f(torch.randn(5, 8), torch.randn(5, 3)).shape
        torch.Size([5, 16])
    """

    def __init__(self, latent: int, w_dim: int, layers: int = 4, context: int = 0, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        self.latent = check_integer("MappingNetwork: `latent`", latent)
        self.w_dim = check_integer("MappingNetwork: `w_dim`", w_dim)
        layers = check_integer("MappingNetwork: `layers`", layers)
        self.context = check_integer("MappingNetwork: `context`", context, low=0)
        self.lr_multiplier = check_number("MappingNetwork: `lr_multiplier`", lr_multiplier)
        self.embed = EqualLinear(context, w_dim) if context else None
        sizes = [latent + (w_dim if context else 0)] + [w_dim] * layers
        self.layers = nn.ModuleList(
            EqualLinear(a, b, lr_multiplier=self.lr_multiplier) for a, b in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        check_value("z", z, Size([self.latent]), "MappingNetwork", finite=False)
        check_context(c, self.context, "MappingNetwork")
        x = _pixel_norm(z, -1)
        if self.embed is not None:
            e = _pixel_norm(self.embed(c), -1)
            batch = torch.broadcast_shapes(x.shape[:-1], e.shape[:-1])
            x = torch.cat([x.expand(*batch, -1), e.expand(*batch, -1)], -1)
        for layer in self.layers:
            x = _lrelu(layer(x))
        return x


class AdaIN(nn.Module):
    r"""Adaptive instance normalization (StyleGAN): :math:`\operatorname{AdaIN}(x, w)_i = y_{s,i}\,
    \frac{x_i - \mu(x_i)}{\sigma(x_i)} + y_{b,i}`.

    Each channel :math:`x_i` of each map is normalized over its pixels, then scaled and shifted by the style
    :math:`(y_s, y_b) = A w`, an equalized affine map of :math:`w` whose bias starts at 1 for the scales and 0 for
    the shifts (so at initialization the style is near the identity).

    ``forward(x, w)``: maps ``(N, channels, H, W)`` with one style ``w`` of shape ``(N, w_dim)`` per map.

    Example:
        >>> AdaIN(4, 8)(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape
        torch.Size([2, 4, 5, 5])
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = check_integer("AdaIN: `channels`", channels)
        self.w_dim = check_integer("AdaIN: `w_dim`", w_dim)
        self.eps = check_number("AdaIN: `eps`", eps)
        self.style = EqualLinear(w_dim, 2 * channels)
        with torch.no_grad():
            self.style.bias[:channels] = 1.0

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        _check_maps("AdaIN", x, self.channels)
        _check_styles("AdaIN", w, x.shape[0], self.w_dim)
        scale, shift = self.style(w)[:, :, None, None].chunk(2, 1)
        mean = x.mean((2, 3), keepdim=True)
        var = (x - mean).square().mean((2, 3), keepdim=True)
        return scale * (x - mean) * torch.rsqrt(var + self.eps) + shift


class ModulatedConv2d(nn.Module):
    r"""StyleGAN2's modulated convolution: one convolution per example, its weights modulated by the style.

    With the style :math:`s = A w \in \mathbb{R}^{C_\text{in}}` (an equalized affine map whose bias starts at 1),

    .. math:: w'_{oik} = s_i\, w_{oik}, \qquad
              w''_{oik} = w'_{oik} \Big/ \sqrt{\textstyle\sum_{i,k} {w'_{oik}}^2 + \epsilon}

    (the demodulation, ``demodulate=True``): for inputs of unit variance and independent entries each output
    channel then has unit variance again. The per-example convolutions run as one grouped convolution over the
    batch. With ``upsample=True`` the maps are first doubled by nearest neighbours (then convolved, which smooths the
    blocks). Odd ``kernel_size``, "same" padding; no bias (the layers that use it add theirs).

    ``forward(x, w)``: maps ``(N, in_channels, H, W)`` with one ``w`` of shape ``(N, w_dim)`` per map, to
    ``(N, out_channels, H, W)`` (``2H, 2W`` up-sampling).

    Example:
        >>> conv = ModulatedConv2d(4, 6, 3, w_dim=8, upsample=True)
        >>> conv(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape
        torch.Size([2, 6, 10, 10])
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True,
        upsample: bool = False, eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.in_channels = check_integer("ModulatedConv2d: `in_channels`", in_channels)
        self.out_channels = check_integer("ModulatedConv2d: `out_channels`", out_channels)
        self.kernel_size = check_integer("ModulatedConv2d: `kernel_size`", kernel_size, odd=True)
        self.w_dim = check_integer("ModulatedConv2d: `w_dim`", w_dim)
        self.demodulate, self.upsample = bool(demodulate), bool(upsample)
        self.eps = check_number("ModulatedConv2d: `eps`", eps)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        _check_maps("ModulatedConv2d", x, self.in_channels)
        n = x.shape[0]
        _check_styles("ModulatedConv2d", w, n, self.w_dim)
        s = self.affine(w)  # (N, C_in)
        weight = self.weight[None] * self.weight_gain * s[:, None, :, None, None]  # (N, C_out, C_in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + self.eps)
        if self.upsample:
            x = _upsample(x)
        if n == 0:
            return x.new_zeros(0, self.out_channels, *x.shape[2:])
        h, wd = x.shape[2:]
        k = self.kernel_size
        y = F.conv2d(x.reshape(1, n * self.in_channels, h, wd), weight.reshape(n * self.out_channels, -1, k, k),
                     padding=k // 2, groups=n)
        return y.reshape(n, self.out_channels, h, wd)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, w_dim={self.w_dim}, "
                f"demodulate={self.demodulate}, upsample={self.upsample}")


class NoiseInjection(nn.Module):
    r"""Per-pixel noise (StyleGAN): :math:`x + \beta \odot n`, :math:`n_{n,1,h,w} \sim \mathcal{N}(0, 1)` shared
    by the channels, scaled by a learned per-channel weight :math:`\beta` that starts at 0 (the identity).

    ``forward(x, noise=None, generator=None)``: maps ``(N, channels, H, W)``; ``noise`` (shape ``(N or 1, 1 or
    channels, H, W)``) is used as given (deterministic), else drawn with ``generator`` (a ``torch.Generator`` on
    ``x``'s device), else with torch's global generator.

    Example:
        >>> layer = NoiseInjection(4)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> bool((layer(x) == x).all())  # the weight starts at 0
        True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = check_integer("NoiseInjection: `channels`", channels)
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        _check_maps("NoiseInjection", x, self.channels)
        n, c, h, w = x.shape
        if noise is None:
            noise = torch.randn(n, 1, h, w, generator=generator, device=x.device, dtype=x.dtype)
        else:
            if generator is not None:
                raise ValueError("NoiseInjection: give either `noise` or a `generator` to draw it, not both")
            if not isinstance(noise, Tensor) or noise.dim() != 4 or noise.shape[0] not in (1, n) \
                    or noise.shape[1] not in (1, c) or noise.shape[2:] != x.shape[2:]:
                got = tuple(noise.shape) if isinstance(noise, Tensor) else type(noise).__name__
                raise ValueError(f"NoiseInjection: `noise` must have shape (N or 1, 1 or {c}, {h}, {w}) for maps of "
                                 f"shape {tuple(x.shape)}, got {got}")
        return x + self.weight[:, None, None] * noise


class _StyleLayer(nn.Module):
    r"""One synthesis layer: (up-sampling) convolution, noise, bias, leaky ReLU, and for AdaIN the style.

    ``style="modulated"``: a :class:`ModulatedConv2d`; ``"adain"``: an :class:`EqualConv2d` (or none, for the
    layer on the constant input) followed by :class:`AdaIN`.
    """

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, size: int, style: str, conv: bool, upsample: bool) -> None:
        super().__init__()
        self.style, self.upsample = style, upsample
        if style == "modulated":
            self.conv: nn.Module | None = ModulatedConv2d(in_ch, out_ch, 3, w_dim, upsample=upsample)
        else:
            self.conv = EqualConv2d(in_ch, out_ch, 3, bias=False) if conv else None
        self.noise = NoiseInjection(out_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.adain = AdaIN(out_ch, w_dim) if style == "adain" else None
        # fixed noise for noise_mode="const": drawn once from a seeded generator (no global RNG touched)
        g = torch.Generator().manual_seed(size)
        self.register_buffer("noise_const", torch.randn(1, 1, size, size, generator=g), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str, generator: torch.Generator | None) -> Tensor:
        if self.style == "modulated":
            x = self.conv(x, w)
        else:
            if self.upsample:
                x = _upsample(x)
            if self.conv is not None:
                x = self.conv(x)
        if noise_mode == "random":
            x = self.noise(x, generator=generator)
        elif noise_mode == "const":
            x = self.noise(x, self.noise_const.to(x.dtype))
        x = _lrelu(x + self.bias[:, None, None])
        return x if self.adain is None else self.adain(x, w)


class _ToRGB(nn.Module):
    r"""StyleGAN2's toRGB: a modulated 1x1 convolution without demodulation, plus a bias."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[:, None, None]


class StyleGenerator(nn.Module):
    r"""A style-based generator :math:`G(z, c)`: StyleGAN2's skip generator (``style="modulated"``) or StyleGAN's
    AdaIN generator (``style="adain"``).

    The mapping network (:class:`MappingNetwork`) sends :math:`(z, c)` to :math:`w \in \mathcal{W}`, broadcast to
    ``num_ws`` per-layer styles :math:`w_0, \dots, w_{L-1}`. Synthesis starts from a learned constant
    :math:`4\times4` map (:math:`7\times7` for sizes :math:`7 \cdot 2^k`, such as 28) and doubles the resolution up
    to :math:`H`: each resolution has a block of two 3x3 layers (one on the constant), each a convolution, per-pixel
    noise (:class:`NoiseInjection`), a bias and a leaky ReLU, the style entering either by weight modulation and
    demodulation (:class:`ModulatedConv2d`) or by :class:`AdaIN` after the activation. With ``"modulated"`` each
    block has a toRGB (a modulated 1x1 convolution) and the images are summed across resolutions, each partial image
    up-sampled by nearest neighbours: :math:`y_r = \operatorname{up}(y_{r/2}) + \operatorname{toRGB}_r(x_r)`; the
    toRGB of a block shares its style with the next block's first layer (as in StyleGAN2), so ``num_ws`` is twice
    the number of resolutions in both styles. With ``"adain"`` a single 1x1 convolution makes the image from the last
    maps. The output goes through ``out`` (``"tanh"``: :math:`[-1, 1]`, ``"sigmoid"``: :math:`[0, 1]`).

    **Truncation.** The buffer ``w_avg`` follows the mapped :math:`w` as an exponential moving average (decay
    ``w_avg_decay``) in training mode only; ``truncation`` :math:`=\psi` gives
    :math:`w \leftarrow \bar w + \psi (w - \bar w)` for the first ``truncation_cutoff`` styles (all by default):
    :math:`\psi = 1` changes nothing, :math:`\psi = 0` gives the average image.

    **Style mixing** (a regularizer, training mode only): each example, with probability ``mixing``, takes the
    styles of a second latent :math:`z_2 \sim \mathcal{N}(0, I)` (with the same context) from a crossover layer
    drawn uniformly in :math:`\{1, \dots, L-1\}` on; :meth:`mix` does it with a given crossover, for showing it.
    In evaluation mode nothing is mixed.

    **Noise.** ``noise_mode="random"`` (the default) draws the per-pixel noise (with ``generator`` if given,
    which then also draws the mixing), ``"const"`` uses noise drawn once at construction, ``"none"`` turns it off.

    Arguments:
        latent: the latent size.
        shape: the image shape :math:`(C, H, W)`, square, :math:`H \in \{4, 7\} \cdot 2^k` (8, 16, 28, 32, ...).
        channels: the feature channels at every resolution.
        w_dim: the size of :math:`w`.
        mapping_layers: the depth of the mapping network.
        context: the context size (0 for none).
        mixing: the style-mixing probability in training mode.
        style: ``"modulated"`` (StyleGAN2) or ``"adain"`` (StyleGAN).
        out: the output activation, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.
        lr_multiplier: the mapping network's learning-rate multiplier.
        w_avg_decay: the decay of the moving average ``w_avg``.

    Example:
        >>> g = StyleGenerator(8, (1, 8, 8), channels=4, w_dim=8, mapping_layers=2).eval()
        >>> g(torch.randn(3, 8)).shape
        torch.Size([3, 1, 8, 8])
        >>> g.num_ws, g.synthesis(g.mapping(torch.randn(3, 8)), noise_mode="none").shape
        (4, torch.Size([3, 1, 8, 8]))
    """

    def __init__(
        self,
        latent: int,
        shape: Sequence[int] = (1, 28, 28),
        channels: int = 64,
        w_dim: int = 64,
        mapping_layers: int = 4,
        context: int = 0,
        mixing: float = 0.9,
        style: str = "modulated",
        out: str = "tanh",
        lr_multiplier: float = 0.01,
        w_avg_decay: float = 0.995,
    ) -> None:
        super().__init__()
        where = "StyleGenerator"
        self.latent = check_integer(f"{where}: `latent`", latent)
        self.shape = check_shape(shape, f"{where}: `shape`")
        img_ch, size, r0 = _start(where, self.shape)
        self.channels = check_integer(f"{where}: `channels`", channels)
        self.w_dim = check_integer(f"{where}: `w_dim`", w_dim)
        self.context = check_integer(f"{where}: `context`", context, low=0)
        mixing = _check_real(f"{where}: `mixing`", mixing)
        if not 0 <= mixing <= 1:
            raise ValueError(f"{where}: `mixing` must be a probability in [0, 1], got {mixing!r}")
        self.mixing = mixing
        self.style = _check_choice(f"{where}: `style`", style, ("modulated", "adain"))
        self.out = _check_choice(f"{where}: `out`", out, tuple(_OUTS))
        decay = _check_real(f"{where}: `w_avg_decay`", w_avg_decay)
        if not 0 <= decay < 1:
            raise ValueError(f"{where}: `w_avg_decay` must be in [0, 1), got {w_avg_decay!r}")
        self.w_avg_decay = decay
        self.mapping_network = MappingNetwork(latent, w_dim, mapping_layers, context, lr_multiplier)
        sizes = [r0]
        while sizes[-1] < size:
            sizes.append(2 * sizes[-1])
        self.resolutions = tuple(sizes)
        self.const = nn.Parameter(torch.randn(channels, r0, r0))
        ch, modulated = channels, style == "modulated"
        layers = [] if modulated else [_StyleLayer(ch, ch, w_dim, r0, style, conv=False, upsample=False)]
        layers.append(_StyleLayer(ch, ch, w_dim, r0, style, conv=True, upsample=False))
        for r in sizes[1:]:
            layers += [_StyleLayer(ch, ch, w_dim, r, style, conv=True, upsample=True),
                       _StyleLayer(ch, ch, w_dim, r, style, conv=True, upsample=False)]
        self.layers = nn.ModuleList(layers)
        if modulated:
            self.to_rgb: nn.Module = nn.ModuleList(_ToRGB(ch, img_ch, w_dim) for _ in sizes)
        else:
            self.to_rgb = EqualConv2d(ch, img_ch, 1)
        self.num_ws = len(layers) + (1 if modulated else 0)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    # --- mapping ---------------------------------------------------------------------------------------------------

    def _check_truncation(self, truncation: float | None, cutoff: int | None) -> tuple[float | None, int]:
        psi = None if truncation is None else _check_real("StyleGenerator: `truncation` (psi)", truncation)
        if cutoff is None:
            return psi, self.num_ws
        cutoff = check_integer("StyleGenerator: `truncation_cutoff`", cutoff, low=0)
        if cutoff > self.num_ws:
            raise ValueError(f"StyleGenerator: `truncation_cutoff` must be at most num_ws = {self.num_ws}, "
                             f"got {cutoff}")
        return psi, cutoff

    def _map(self, z: Tensor, c: Tensor | None, psi: float | None, cutoff: int, update: bool) -> Tensor:
        w = self.mapping_network(z, c)  # (N, w_dim)
        if update and w.shape[0] > 0:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_decay))
        ws = w[:, None, :].expand(-1, self.num_ws, -1)
        if psi is not None and psi != 1 and cutoff > 0:
            head = self.w_avg.lerp(ws[:, :cutoff], psi)
            ws = torch.cat([head, ws[:, cutoff:]], 1)
        return ws

    def _latents(self, z: Tensor, c: Tensor | None, name: str = "z") -> tuple[Tensor, Tensor | None]:
        where = "StyleGenerator"
        check_value(name, z, Size([self.latent]), where, dtype=self.const.dtype, finite=False)
        if z.dim() != 2:
            raise ValueError(f"{where}: `{name}` must have shape (N, {self.latent}), got {tuple(z.shape)}")
        check_context(c, self.context, where, dtype=self.const.dtype)
        if c is not None and c.shape != (z.shape[0], self.context):
            raise ValueError(f"{where}: context `c` must have shape (N, {self.context}) = "
                             f"({z.shape[0]}, {self.context}), got {tuple(c.shape)}")
        return z, c

    def mapping(
        self, z: Tensor, c: Tensor | None = None, truncation: float | None = None, truncation_cutoff: int | None = None,
    ) -> Tensor:
        r"""The styles :math:`w` of latents ``z`` ``(N, latent)``, shape ``(N, num_ws, w_dim)``, truncated with
        :math:`\psi` = ``truncation`` (for the first ``truncation_cutoff`` styles); in training mode it also moves
        ``w_avg``. No style mixing."""
        psi, cutoff = self._check_truncation(truncation, truncation_cutoff)
        z, c = self._latents(z, c)
        return self._map(z, c, psi, cutoff, self.training)

    # --- synthesis -------------------------------------------------------------------------------------------------

    def synthesis(self, w: Tensor, noise_mode: str = "random", generator: torch.Generator | None = None) -> Tensor:
        r"""The images ``(N, C, H, W)`` of styles ``w``: ``(N, num_ws, w_dim)`` (one per layer) or ``(N, w_dim)``
        (the same for all layers)."""
        where = "StyleGenerator.synthesis"
        _check_choice(f"{where}: `noise_mode`", noise_mode, ("random", "const", "none"))
        if not isinstance(w, Tensor):
            raise TypeError(f"{where}: `w` must be a torch.Tensor, got {type(w).__name__}")
        if w.dim() == 2 and w.shape[-1] == self.w_dim:
            w = w[:, None, :].expand(-1, self.num_ws, -1)
        if w.dim() != 3 or w.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"{where}: `w` must have shape (N, {self.num_ws}, {self.w_dim}) (num_ws, w_dim) or "
                             f"(N, {self.w_dim}), got {tuple(w.shape)}")
        if w.dtype != self.const.dtype:
            raise TypeError(f"{where}: `w` has dtype {w.dtype} but the network is {self.const.dtype}")
        n = w.shape[0]
        x = self.const[None].expand(n, -1, -1, -1)
        modulated = self.style == "modulated"
        img = None
        for i, layer in enumerate(self.layers):
            x = layer(x, w[:, i], noise_mode, generator)
            if modulated and i % 2 == 0:  # the end of a block: layer 0, then every second layer
                y = self.to_rgb[i // 2](x, w[:, i + 1])
                img = y if img is None else _upsample(img) + y
        if not modulated:
            img = self.to_rgb(x)
        return _OUTS[self.out](img)

    # --- the generator ---------------------------------------------------------------------------------------------

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation: float | None = None,
        truncation_cutoff: int | None = None,
        *,
        noise_mode: str = "random",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        psi, cutoff = self._check_truncation(truncation, truncation_cutoff)
        z, c = self._latents(z, c)
        ws = self._map(z, c, psi, cutoff, self.training)
        n = z.shape[0]
        if self.training and self.mixing > 0 and self.num_ws > 1 and n > 0:
            mixed = torch.rand(n, generator=generator, device=z.device) < self.mixing
            crossover = torch.randint(1, self.num_ws, (n,), generator=generator, device=z.device)
            z2 = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            ws2 = self._map(z2, c, psi, cutoff, False)
            take = (torch.arange(self.num_ws, device=z.device) >= crossover[:, None]) & mixed[:, None]
            ws = torch.where(take[..., None], ws2, ws)
        return self.synthesis(ws, noise_mode, generator)

    def mix(
        self,
        z1: Tensor,
        z2: Tensor,
        crossover: int,
        c: Tensor | None = None,
        truncation: float | None = None,
        truncation_cutoff: int | None = None,
        *,
        noise_mode: str = "random",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        r"""Style mixing: the images with the styles of ``z1`` for layers ``< crossover`` and of ``z2`` from
        ``crossover`` on (``0``: ``z2`` only; ``num_ws``: ``z1`` only). Does not move ``w_avg``."""
        crossover = check_integer("StyleGenerator.mix: `crossover`", crossover, low=0)
        if crossover > self.num_ws:
            raise ValueError(f"StyleGenerator.mix: `crossover` must be in [0, num_ws = {self.num_ws}], got {crossover}")
        psi, cutoff = self._check_truncation(truncation, truncation_cutoff)
        z1, c = self._latents(z1, c, "z1")
        z2, _ = self._latents(z2, c, "z2")
        if z1.shape != z2.shape:
            raise ValueError(f"StyleGenerator.mix: `z1` and `z2` must have the same shape, got {tuple(z1.shape)} "
                             f"and {tuple(z2.shape)}")
        ws1 = self._map(z1, c, psi, cutoff, False)
        ws2 = self._map(z2, c, psi, cutoff, False)
        return self.synthesis(torch.cat([ws1[:, :crossover], ws2[:, crossover:]], 1), noise_mode, generator)

    def extra_repr(self) -> str:
        return (f"latent={self.latent}, shape={tuple(self.shape)}, style={self.style!r}, num_ws={self.num_ws}, "
                f"mixing={self.mixing}, out={self.out!r}")
