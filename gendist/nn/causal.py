r"""Causal convolutions: the masked and two-stack 2-D layers of PixelCNN, the dilated 1-D layer of WaveNet.

Images are generated in raster order and, within a pixel, channel by channel
(R, then G, then B). A layer's feature maps are split into ``image_channels``
contiguous *groups*; group :math:`j` of a pixel may see groups :math:`< j`
(mask ``"A"``, the first layer) or :math:`\le j` (mask ``"B"``, later layers) of
the same pixel, and everything of the pixels before it.

Example:
    >>> conv = MaskedConv2d(3, 6, 3, mask="A", image_channels=3)
    >>> conv.mask[:, :, 1, 1]  # the centre tap: group j (2 maps each) sees input channels < j
    tensor([[0., 0., 0.],
            [0., 0., 0.],
            [1., 0., 0.],
            [1., 0., 0.],
            [1., 1., 0.],
            [1., 1., 0.]])
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist._checks import check_integer

__all__ = [
    "CausalConv1d",
    "HorizontalConv2d",
    "MaskedConv2d",
    "Queue",
    "VerticalConv2d",
    "channel_mask",
    "down_shift",
]


def _mask_type(mask: str) -> bool:
    r"""True for mask ``"A"`` (strict: a group does not see itself)."""
    if mask not in ("A", "B"):
        raise ValueError(f"mask must be 'A' (excludes the centre) or 'B' (includes it), got {mask!r}")
    return mask == "A"


def channel_mask(in_channels: int, out_channels: int, image_channels: int, mask: str) -> Tensor:
    r"""The ``(out, in)`` 0/1 mask of one pixel's own channels: output group :math:`j` sees input group :math:`i`
    iff :math:`i < j` (``"A"``) or :math:`i \le j` (``"B"``).

    Channel :math:`k` of :math:`n` is in group :math:`\lfloor k G / n \rfloor` of :math:`G` = ``image_channels``.

    Example:
        >>> channel_mask(2, 2, 2, "B")
        tensor([[1., 0.],
                [1., 1.]])
    """
    strict = _mask_type(mask)
    g_in = torch.arange(in_channels) * image_channels // in_channels
    g_out = torch.arange(out_channels) * image_channels // out_channels
    seen = g_in[None, :] < g_out[:, None] if strict else g_in[None, :] <= g_out[:, None]
    return seen.to(torch.get_default_dtype())


def down_shift(x: Tensor) -> Tensor:
    r"""Move ``(N, C, H, W)`` maps one row down (row 0 becomes zeros): row :math:`h` then holds row :math:`h - 1`."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class MaskedConv2d(nn.Conv2d):
    r"""An :math:`n \times n` convolution that sees only the pixels before the centre in raster order
    (the original PixelCNN layer, van den Oord et al. 2016).

    .. math:: y = (M \odot W) * x + b

    where :math:`M` keeps the taps above the centre row and left of the centre,
    and at the centre the groups allowed by :func:`channel_mask`. A stack of
    these has a blind spot (pixels up-right are never seen); a ``kernel=1``
    layer is a per-pixel 1x1 convolution that respects the channel order.

    Arguments:
        in_channels: the input maps.
        out_channels: the output maps.
        kernel: the odd kernel size :math:`n`.
        mask: ``"A"`` (the centre pixel's group :math:`j` sees groups :math:`< j`) or ``"B"`` (:math:`\le j`).
        image_channels: the groups :math:`G` (3 for RGB).
        bias: whether to add a bias.

    Example:
        >>> conv = MaskedConv2d(1, 4, 3, mask="A")
        >>> conv(torch.randn(2, 1, 5, 5)).shape
        torch.Size([2, 4, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        mask: str = "B",
        image_channels: int = 1,
        bias: bool = True,
    ) -> None:
        kernel = check_integer("kernel", kernel, 1, odd=True)
        check_integer("image_channels", image_channels)
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)
        m = torch.zeros(out_channels, in_channels, kernel, kernel)
        m[:, :, : kernel // 2] = 1
        m[:, :, kernel // 2, : kernel // 2] = 1
        m[:, :, kernel // 2, kernel // 2] = channel_mask(in_channels, out_channels, image_channels, mask)
        self.register_buffer("mask", m.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class VerticalConv2d(nn.Conv2d):
    r"""The vertical stack of the Gated PixelCNN: an :math:`(\lfloor n/2 \rfloor + 1) \times n` convolution
    whose output at row :math:`h` sees rows :math:`h - \lfloor n/2 \rfloor, \dots, h`, all :math:`n` columns.

    Stacked, it sees a cone of the rows above with no blind spot; pass its
    output through :func:`down_shift` before adding it to the horizontal stack,
    which then sees only rows strictly above.

    Example:
        >>> conv = VerticalConv2d(1, 4, 3)
        >>> conv(torch.randn(2, 1, 5, 6)).shape
        torch.Size([2, 4, 5, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True) -> None:
        kernel = check_integer("kernel", kernel, 1, odd=True)
        super().__init__(in_channels, out_channels, (kernel // 2 + 1, kernel), bias=bias)
        self.n = kernel

    def forward(self, x: Tensor) -> Tensor:
        r = self.n // 2
        return super().forward(F.pad(x, (r, r, r, 0)))


class HorizontalConv2d(nn.Conv2d):
    r"""The horizontal stack of the Gated PixelCNN: a :math:`1 \times (\lfloor n/2 \rfloor + 1)` convolution
    over the pixels left of the centre and the centre's allowed channel groups.

    .. math:: y_{h,w} = \sum_{j=1}^{\lfloor n/2 \rfloor} W_j x_{h,w-j} + (M \odot W_0) x_{h,w} + b

    with :math:`M` the :func:`channel_mask` (``"A"`` or ``"B"``).

    Example:
        >>> conv = HorizontalConv2d(3, 6, 3, mask="A", image_channels=3)
        >>> conv(torch.randn(2, 3, 5, 6)).shape
        torch.Size([2, 6, 5, 6])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        mask: str = "B",
        image_channels: int = 1,
        bias: bool = True,
    ) -> None:
        kernel = check_integer("kernel", kernel, 1, odd=True)
        check_integer("image_channels", image_channels)
        super().__init__(in_channels, out_channels, (1, kernel // 2 + 1), bias=bias)
        self.n = kernel
        m = torch.ones(out_channels, in_channels, 1, kernel // 2 + 1)
        m[:, :, 0, -1] = channel_mask(in_channels, out_channels, image_channels, mask)
        self.register_buffer("mask", m.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(F.pad(x, (self.n // 2, 0, 0, 0)), self.weight * self.mask, self.bias)


class Queue:
    r"""The last ``span`` inputs of a causal convolution, a ring of per-step tensors (Fast WaveNet's queue).

    Pushing and reading are :math:`O(1)` and never write into a tensor, so
    autograd can differentiate through a sequence of steps.

    Example:
        >>> q = Queue(2)
        >>> q.push(torch.ones(1)); q.push(2 * torch.ones(1))
        >>> q.get(1), q.get(2), q.get(3) is None
        (tensor([2.]), tensor([1.]), True)
    """

    def __init__(self, span: int) -> None:
        self.span = int(span)
        self.items: list[Tensor | None] = [None] * self.span
        self.t = 0

    def get(self, lag: int) -> Tensor | None:
        r"""The input pushed ``lag`` steps ago (:math:`1 \le` ``lag`` :math:`\le` ``span``), None before the start."""
        return self.items[(self.t - lag) % self.span] if lag <= self.t else None

    def push(self, x: Tensor) -> None:
        if self.span:
            self.items[self.t % self.span] = x
        self.t += 1


class CausalConv1d(nn.Conv1d):
    r"""A dilated causal convolution over ``(N, C, T)``: :math:`y_t = b + \sum_{j=0}^{k-1} W_{k-1-j}\, x_{t - j d}`.

    Left zero padding of :math:`(k - 1) d` steps: :math:`y_t` sees :math:`x_{\le t}`
    only. :meth:`step` computes one :math:`y_t` from :math:`x_t` and a
    :class:`Queue` of the past inputs (from :meth:`queue`), for incremental generation.

    Arguments:
        in_channels: the input channels.
        out_channels: the output channels.
        kernel: the taps :math:`k`.
        dilation: the spacing :math:`d` of the taps.

    Example:
        >>> conv = CausalConv1d(2, 3, kernel=2, dilation=4).double()
        >>> x = torch.randn(5, 2, 9, dtype=torch.float64)
        >>> q = conv.queue()
        >>> steps = torch.stack([conv.step(x[:, :, t], q) for t in range(9)], -1)
        >>> torch.allclose(steps, conv(x))
        True
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 2, dilation: int = 1) -> None:
        kernel = check_integer("kernel", kernel)
        dilation = check_integer("dilation", dilation)
        super().__init__(in_channels, out_channels, kernel, dilation=dilation)
        self.span = (kernel - 1) * dilation

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.span, 0)))

    def queue(self) -> Queue:
        r"""An empty queue of past inputs for :meth:`step`."""
        return Queue(self.span)

    def step(self, x: Tensor, queue: Queue) -> Tensor:
        r""":math:`y_t`, ``(N, out)``, from :math:`x_t` ``(N, in)``; pushes :math:`x_t` onto ``queue``."""
        k, d = self.kernel_size[0], self.dilation[0]
        y = F.linear(x, self.weight[:, :, k - 1], self.bias)
        for j in range(1, k):
            past = queue.get(j * d)
            if past is not None:
                y = y + F.linear(past, self.weight[:, :, k - 1 - j])
        queue.push(x)
        return y
