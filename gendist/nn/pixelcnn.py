r"""The Gated PixelCNN network: a vertical and a horizontal stack of gated causal convolutions."""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange
from torch import Tensor

from gendist._checks import check_integer
from gendist.nn.causal import HorizontalConv2d, MaskedConv2d, VerticalConv2d, down_shift

__all__ = ["GatedPixelCNN"]


def _gate(y: Tensor) -> Tensor:
    r""":math:`\tanh(a) \odot \sigma(b)` of the interleaved halves of ``(N, 2F, H, W)`` (a pair shares a group)."""
    a, b = rearrange(y, "n (f two) h w -> two n f h w", two=2)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNN(nn.Module):
    r"""The Gated PixelCNN without blind spot (van den Oord et al., 2016), optionally conditional.

    Every layer :math:`l` computes, with :math:`*` a causal convolution and
    :math:`c` the context,

    .. math::
        v^{l+1} = \tanh(W^v_f * v^l + V_f c) \odot \sigma(W^v_g * v^l + V_g c)

        g^l = \tanh(W^h_f * h^l + U_f\, \mathrm{shift}(W^v * v^l) + \dots) \odot \sigma(\dots), \quad
        h^{l+1} = h^l + R^l g^l, \quad s = \sum_l S^l g^l

    and the output is :math:`O_2\, \mathrm{relu}(O_1\, \mathrm{relu}(s))` (1x1 convolutions).
    The vertical stack (:class:`~gendist.nn.causal.VerticalConv2d`) sees the
    rows above (shifted down one row before it feeds the horizontal stack),
    the horizontal one (:class:`~gendist.nn.causal.HorizontalConv2d`) the
    pixels to the left. Within a pixel the maps are split into ``image_channels``
    groups, so output channel :math:`c` of pixel :math:`(h, w)` depends on every
    pixel before :math:`(h, w)` in raster order (within :attr:`rows_above`
    rows and ``layers * (kernel // 2)`` columns) and on channels :math:`< c` of
    :math:`(h, w)` only.

    Arguments:
        image_channels: the image channels :math:`C`.
        inputs: the values :math:`E` per channel value (an encoding).
        params: the outputs :math:`P` per channel value.
        channels: the feature maps :math:`F` of every layer (a multiple of :math:`C`).
        layers: the gated layers.
        kernel: the odd width :math:`n` of the stacks' convolutions.
        context: the context size (0 for none).

    Shapes: ``(N, C E, H, W)`` (channels major: ``(c e)``) and ``(N, context)``
    to ``(N, C, P, H, W)``.

    Example:
        >>> net = GatedPixelCNN(3, 1, 2, channels=6, layers=2)
        >>> net(torch.randn(4, 3, 5, 5)).shape
        torch.Size([4, 3, 2, 5, 5])

    References:
        | Conditional Image Generation with PixelCNN Decoders (van den Oord et al., 2016)
        | https://arxiv.org/abs/1606.05328
    """

    def __init__(
        self,
        image_channels: int,
        inputs: int,
        params: int,
        channels: int = 64,
        layers: int = 8,
        kernel: int = 5,
        context: int = 0,
    ) -> None:
        super().__init__()
        C = check_integer("image_channels", image_channels)
        check_integer("inputs", inputs)
        check_integer("params", params)
        F_ = check_integer("channels", channels)
        L = check_integer("layers", layers)
        check_integer("kernel", kernel, 3, odd=True)
        check_integer("context", context, 0)
        if F_ % C:
            raise ValueError(f"channels must be a multiple of image_channels={C} (one group per channel), got {F_}")
        self.image_channels, self.params, self.kernel, self.layers = C, int(params), int(kernel), L
        two = 2 * F_
        self.vertical_convs = nn.ModuleList(
            VerticalConv2d(C * inputs if l == 0 else F_, two, kernel) for l in range(L)
        )
        self.links = nn.ModuleList(nn.Conv2d(two, two, 1) for _ in range(L))
        self.horizontal_convs = nn.ModuleList(
            HorizontalConv2d(C * inputs if l == 0 else F_, two, kernel, "A" if l == 0 else "B", C) for l in range(L)
        )
        self.residuals = nn.ModuleList(MaskedConv2d(F_, F_, 1, "B", C) for _ in range(L - 1))
        self.skips = nn.ModuleList(MaskedConv2d(F_, F_, 1, "B", C) for _ in range(L))
        self.head = nn.ModuleList([MaskedConv2d(F_, F_, 1, "B", C), MaskedConv2d(F_, C * params, 1, "B", C)])
        self.context = nn.Linear(context, L * 2 * two) if context else None

    @property
    def rows_above(self) -> int:
        r"""How many rows above its own an output sees: :math:`L \lfloor n/2 \rfloor + 1`."""
        return self.layers * (self.kernel // 2) + 1

    def _bias(self, c: Tensor | None, stack: int) -> list[Tensor | None]:
        r"""The context's per-layer biases of one stack (0: vertical, 1: horizontal), ``(N, 2F, 1, 1)`` each."""
        if self.context is None:
            return [None] * self.layers
        if c is None:
            raise ValueError("this network needs a context tensor `c`, got None")
        b = rearrange(self.context(c), "n (l s f) -> s l n f () ()", l=self.layers, s=2)
        return list(b[stack])

    def vertical(self, x: Tensor, c: Tensor | None = None) -> list[Tensor]:
        r"""The vertical stack's contribution to each horizontal layer, ``(N, 2F, H, W)`` each, *not* shifted:
        row :math:`h` (which sees rows :math:`\le h`) is meant for row :math:`h + 1`."""
        out = []
        v = x
        for l, (conv, link, bias) in enumerate(zip(self.vertical_convs, self.links, self._bias(c, 0))):
            pre = conv(v)
            if bias is not None:
                pre = pre + bias
            out.append(link(pre))
            if l + 1 < self.layers:
                v = _gate(pre)
        return out

    def horizontal(self, x: Tensor, links: list[Tensor] | None, c: Tensor | None = None) -> Tensor:
        r"""The horizontal stack and head on rows of ``x``, given the shifted vertical contributions of those
        rows (None: none, as for row 0); ``(N, C, P, rows, W)``."""
        h, skip = x, None
        for l, (conv, bias) in enumerate(zip(self.horizontal_convs, self._bias(c, 1))):
            pre = conv(h)
            if links is not None:
                pre = pre + links[l]
            if bias is not None:
                pre = pre + bias
            g = _gate(pre)
            s = self.skips[l](g)
            skip = s if skip is None else skip + s
            if l < len(self.residuals):  # the last layer's stack output would go nowhere
                h = self.residuals[l](g) + h if l > 0 else self.residuals[l](g)
        out = self.head[1](torch.relu(self.head[0](torch.relu(skip))))
        return rearrange(out, "n (c p) h w -> n c p h w", c=self.image_channels)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.horizontal(x, [down_shift(v) for v in self.vertical(x, c)], c)

    def row(self, x: Tensor, h: int, c: Tensor | None = None, links: list[Tensor] | None = None) -> Tensor:
        r"""The outputs of row ``h`` alone, ``(N, C, P, W)``, from rows :math:`\le h` of ``x`` (the same numbers
        as ``forward(x, c)[..., h, :]``).

        ``links`` (from :meth:`row_links`) saves the vertical stack's work when
        computing a row several times (once per pixel and channel when sampling).
        """
        if links is None:
            links = self.row_links(x, h, c)
        return self.horizontal(x[:, :, h : h + 1], links, c)[:, :, :, 0]

    def row_links(self, x: Tensor, h: int, c: Tensor | None = None) -> list[Tensor] | None:
        r"""The vertical stack's contributions to row ``h``, ``(N, 2F, 1, W)`` each (None for row 0).

        Computed from the :attr:`rows_above` rows above ``h`` only: the zero
        padding above the crop does not reach the crop's last row.
        """
        if h == 0:
            return None
        return [v[:, :, -1:] for v in self.vertical(x[:, :, max(0, h - self.rows_above) : h], c)]
