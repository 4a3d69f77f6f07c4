r"""Progressive growing (ProGAN, Karras et al. 2018) as a two-resolution cascade: a generator and a discriminator
that work at a low resolution :math:`H/2` first, then :meth:`grow` to :math:`H`, the new layers faded in by
:math:`\alpha`.

Both share ProGAN's parts: equalized learning rates (:class:`~gendist.nn.style.EqualConv2d`,
:class:`~gendist.nn.style.EqualLinear`), leaky ReLUs (slope 0.2), the pixel norm after every generator
convolution, nearest-neighbour up-sampling, average-pool down-sampling, and a minibatch standard deviation
(:class:`~gendist.nn.gan_blocks.MinibatchStdDev`) before the discriminator's last convolution.

The current ``resolution`` and ``alpha`` are plain attributes (set them, or call :meth:`grow`), saved in the
``state_dict`` (``_extra_state``). At the low resolution the high-resolution layers get no gradient: under
``DistributedDataParallel`` use ``find_unused_parameters=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Size, Tensor

from gendist._checks import check_context, check_integer, check_shape, check_value
from gendist.nn.gan_blocks import MinibatchStdDev
from gendist.nn.style import (
    _OUTS,
    EqualConv2d,
    EqualLinear,
    _check_choice,
    _check_real,
    _lrelu,
    _pixel_norm,
    _start,
    _upsample,
)

__all__ = ["ProgressiveDiscriminator", "ProgressiveGenerator"]


class _Growing(nn.Module):
    r"""The state both progressive networks share: two resolutions, the current one, and the fade-in ``alpha``."""

    def _init_growing(self, where: str, shape: Sequence[int]) -> tuple[int, int]:
        self.shape = check_shape(shape, f"{where}: `shape`")
        img_ch, size, r0 = _start(where, self.shape)
        if size == r0:
            raise ValueError(f"{where}: the image size must be at least twice the start ({r0}x{r0}) to grow into, "
                             f"got {size}x{size}")
        self.high_resolution, self.low_resolution = size, size // 2
        self._resolution, self._alpha = self.low_resolution, 1.0
        return img_ch, r0

    @property
    def resolution(self) -> int:
        r"""The resolution the network works at now: ``low_resolution`` (before :meth:`grow`) or
        ``high_resolution``."""
        return self._resolution

    @resolution.setter
    def resolution(self, value: int) -> None:
        if value not in (self.low_resolution, self.high_resolution) or isinstance(value, bool):
            raise ValueError(f"{type(self).__name__}: `resolution` must be {self.low_resolution} or "
                             f"{self.high_resolution}, got {value!r}")
        self._resolution = int(value)

    @property
    def alpha(self) -> float:
        r"""The fade-in of the high-resolution layers, in :math:`[0, 1]` (used at the high resolution only)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        value = _check_real(f"{type(self).__name__}: `alpha`", value)
        if not 0 <= value <= 1:
            raise ValueError(f"{type(self).__name__}: `alpha` must be in [0, 1], got {value!r}")
        self._alpha = value

    @property
    def current_shape(self) -> Size:
        r"""The image shape :math:`(C, r, r)` at the current resolution :math:`r`."""
        return Size((self.shape[0], self._resolution, self._resolution))

    def grow(self, alpha: float = 0.0) -> None:
        r"""Move to the high resolution, the new layers faded in by ``alpha`` (0: not yet; raise it to 1)."""
        self.alpha = alpha
        self._resolution = self.high_resolution

    def get_extra_state(self) -> Any:
        return {"resolution": self._resolution, "alpha": self._alpha}

    def set_extra_state(self, state: Any) -> None:
        self.resolution = state["resolution"]
        self.alpha = state["alpha"]


def _conv(in_ch: int, out_ch: int) -> EqualConv2d:
    return EqualConv2d(in_ch, out_ch, 3)


class ProgressiveGenerator(_Growing):
    r"""ProGAN's generator over two resolutions, :math:`H/2` then :math:`H`.

    The latent is pixel-normalized (and the context, if any, concatenated), mapped by an equalized dense layer to
    a :math:`r_0 \times r_0` map (:math:`r_0 = 4`, or 7 for sizes :math:`7 \cdot 2^k`), then each resolution up to
    :math:`H/2` has 3x3 convolutions, each followed by a leaky ReLU and the pixel norm (the resolution doubled by
    nearest neighbours between them); a 1x1 toRGB makes the low-resolution image. The high-resolution block
    (up-sampling, two convolutions, its own toRGB) makes the :math:`H \times H` image, faded in as

    .. math:: y = (1 - \alpha)\, \operatorname{up}(\operatorname{toRGB}_{H/2}(h_{H/2}))
              + \alpha\, \operatorname{toRGB}_H(h_H),

    then ``out`` is applied (nearest up-sampling commutes with it, so :math:`\alpha = 0` gives exactly the
    up-sampled low-resolution image).

    ``forward(z, c=None)``: latents ``(N, latent)`` (contexts ``(N, context)``) to images of the current shape
    ``(N, C, r, r)``, :math:`r` = ``resolution`` (``low_resolution`` until :meth:`grow`).

    Arguments:
        latent: the latent size.
        shape: the final image shape :math:`(C, H, H)`, :math:`H \in \{4, 7\} \cdot 2^k`, :math:`k \ge 1`
            (8, 14, 16, 28, 32, ...).
        channels: the feature channels at every resolution.
        context: the context size (0 for none).
        out: the output activation, ``"tanh"``, ``"sigmoid"`` or ``"identity"``.

    Example:
        >>> g = ProgressiveGenerator(8, (1, 16, 16), channels=4)
        >>> g(torch.randn(2, 8)).shape
        torch.Size([2, 1, 8, 8])
        >>> g.grow(alpha=0.5)
        >>> g(torch.randn(2, 8)).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self, latent: int, shape: Sequence[int] = (1, 28, 28), channels: int = 64, context: int = 0, out: str = "tanh",
    ) -> None:
        super().__init__()
        where = "ProgressiveGenerator"
        img_ch, r0 = self._init_growing(where, shape)
        self.latent = check_integer(f"{where}: `latent`", latent)
        self.channels = ch = check_integer(f"{where}: `channels`", channels)
        self.context = check_integer(f"{where}: `context`", context, low=0)
        self.out = _check_choice(f"{where}: `out`", out, tuple(_OUTS))
        self.start = r0
        self.input = EqualLinear(latent + context, ch * r0 * r0)
        self.base = nn.ModuleList([_conv(ch, ch)])
        r = r0
        while r < self.low_resolution:
            self.base.extend([_conv(ch, ch), _conv(ch, ch)])
            r *= 2
        self.high = nn.ModuleList([_conv(ch, ch), _conv(ch, ch)])
        self.to_rgb_low = EqualConv2d(ch, img_ch, 1)
        self.to_rgb_high = EqualConv2d(ch, img_ch, 1)

    def _features(self, z: Tensor, c: Tensor | None) -> Tensor:
        where = "ProgressiveGenerator"
        dtype = self.input.weight.dtype
        check_value("z", z, Size([self.latent]), where, dtype=dtype, finite=False)
        if z.dim() != 2:
            raise ValueError(f"{where}: `z` must have shape (N, {self.latent}), got {tuple(z.shape)}")
        check_context(c, self.context, where, dtype=dtype)
        x = _pixel_norm(z)
        if c is not None:
            if c.shape != (z.shape[0], self.context):
                raise ValueError(f"{where}: context `c` must have shape (N, {self.context}) = "
                                 f"({z.shape[0]}, {self.context}), got {tuple(c.shape)}")
            x = torch.cat([x, c], 1)
        r0 = self.start
        h = _pixel_norm(_lrelu(self.input(x)).reshape(-1, self.channels, r0, r0))
        for i, conv in enumerate(self.base):
            if i and i % 2:  # the first convolution of every doubled resolution
                h = _upsample(h)
            h = _pixel_norm(_lrelu(conv(h)))
        return h

    def _high(self, h: Tensor) -> Tensor:
        h = _upsample(h)
        for conv in self.high:
            h = _pixel_norm(_lrelu(conv(h)))
        return self.to_rgb_high(h)

    def branches(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""The two images that the fade-in blends, before ``out``: the up-sampled low-resolution toRGB and the
        high-resolution toRGB, each ``(N, C, H, H)``."""
        h = self._features(z, c)
        return _upsample(self.to_rgb_low(h)), self._high(h)

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        h = self._features(z, c)
        if self._resolution == self.low_resolution:
            y = self.to_rgb_low(h)
        elif self._alpha == 1:
            y = self._high(h)
        else:
            y = torch.lerp(_upsample(self.to_rgb_low(h)), self._high(h), self._alpha)
        return _OUTS[self.out](y)

    def extra_repr(self) -> str:
        return (f"latent={self.latent}, shape={tuple(self.shape)}, resolution={self._resolution}, "
                f"alpha={self._alpha}, out={self.out!r}")


class ProgressiveDiscriminator(_Growing):
    r"""ProGAN's discriminator over two resolutions, the mirror of :class:`ProgressiveGenerator`.

    At the high resolution a 1x1 fromRGB (and a leaky ReLU) feeds a block of two 3x3 convolutions and a 2x2 average
    pool, faded in with the low-resolution fromRGB of the pooled image:

    .. math:: h_{H/2} = (1 - \alpha)\, \operatorname{fromRGB}_{H/2}(\operatorname{pool}(x))
              + \alpha\, \operatorname{block}_H(\operatorname{fromRGB}_H(x));

    at the low resolution :math:`h_{H/2} = \operatorname{fromRGB}_{H/2}(x)`. The base then halves the maps down to
    :math:`r_0 \times r_0` (two convolutions and a pool each), appends the minibatch standard deviation (groups of
    ``group``), and a convolution and a dense layer give the ``channels`` features :math:`\phi(x)`; the score is
    :math:`\psi(\phi) + \langle e(c), \phi \rangle` (a projection of the context, if any; Miyato & Koyama 2018).

    ``forward(x, c=None) -> (N,)`` logits for images ``(N, C, r, r)`` at the current resolution :math:`r`;
    ``features(x, c=None) -> (N, channels)``.

    Arguments:
        shape: the final image shape :math:`(C, H, H)` (as for :class:`ProgressiveGenerator`).
        channels: the feature channels at every resolution.
        context: the context size (0 for none).
        group: the minibatch standard deviation's group size.

    Example:
        >>> d = ProgressiveDiscriminator((1, 16, 16), channels=4, context=3)
        >>> d(torch.randn(4, 1, 8, 8), torch.randn(4, 3)).shape
        torch.Size([4])
        >>> d.grow(alpha=0.5)
        >>> d.features(torch.randn(4, 1, 16, 16), torch.randn(4, 3)).shape
        torch.Size([4, 4])
    """

    def __init__(
        self, shape: Sequence[int] = (1, 28, 28), channels: int = 64, context: int = 0, group: int = 4,
    ) -> None:
        super().__init__()
        where = "ProgressiveDiscriminator"
        img_ch, r0 = self._init_growing(where, shape)
        self.channels = ch = check_integer(f"{where}: `channels`", channels)
        self.context = check_integer(f"{where}: `context`", context, low=0)
        self.start = r0
        self.from_rgb_high = EqualConv2d(img_ch, ch, 1)
        self.from_rgb_low = EqualConv2d(img_ch, ch, 1)
        self.high = nn.ModuleList([_conv(ch, ch), _conv(ch, ch)])
        self.base = nn.ModuleList()
        r = self.low_resolution
        while r > r0:
            self.base.extend([_conv(ch, ch), _conv(ch, ch)])
            r //= 2
        self.minibatch_std = MinibatchStdDev(group)
        self.final_conv = _conv(ch + 1, ch)
        self.final_dense = EqualLinear(ch * r0 * r0, ch)
        self.score = EqualLinear(ch, 1)
        self.embed = EqualLinear(context, ch, bias=False) if context else None

    def _check(self, x: Tensor, c: Tensor | None) -> None:
        where = "ProgressiveDiscriminator"
        dtype = self.score.weight.dtype
        check_value("x", x, self.current_shape, where, dtype=dtype, finite=False)
        if x.dim() != 4:
            r = self._resolution
            raise ValueError(f"{where}: `x` must have shape (N, {self.shape[0]}, {r}, {r}) (the current resolution "
                             f"{r}), got {tuple(x.shape)}")
        check_context(c, self.context, where, dtype=dtype)
        if c is not None and c.shape != (x.shape[0], self.context):
            raise ValueError(f"{where}: context `c` must have shape (N, {self.context}) = "
                             f"({x.shape[0]}, {self.context}), got {tuple(c.shape)}")

    def _features(self, x: Tensor) -> Tensor:
        if self._resolution == self.low_resolution:
            h = _lrelu(self.from_rgb_low(x))
        else:
            h = _lrelu(self.from_rgb_high(x))
            for conv in self.high:
                h = _lrelu(conv(h))
            h = F.avg_pool2d(h, 2)
            if self._alpha < 1:
                h = torch.lerp(_lrelu(self.from_rgb_low(F.avg_pool2d(x, 2))), h, self._alpha)
        for i, conv in enumerate(self.base):
            h = _lrelu(conv(h))
            if i % 2:
                h = F.avg_pool2d(h, 2)
        h = _lrelu(self.final_conv(self.minibatch_std(h)))
        return _lrelu(self.final_dense(h.flatten(1)))

    def features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The penultimate features :math:`\phi(x)`, ``(N, channels)`` (the context enters only the score)."""
        self._check(x, c)
        return self._features(x)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        self._check(x, c)
        phi = self._features(x)
        out = self.score(phi).squeeze(-1)
        if self.embed is not None:
            out = out + (self.embed(c) * phi).sum(-1)
        return out

    def extra_repr(self) -> str:
        return f"shape={tuple(self.shape)}, resolution={self._resolution}, alpha={self._alpha}"
