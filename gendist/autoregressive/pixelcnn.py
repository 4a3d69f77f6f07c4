r"""PixelCNN as a distribution: a Gated PixelCNN's conditionals over images, raster order, channel by channel."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from einops import rearrange
from torch import Tensor

from gendist._checks import check_shape
from gendist.autoregressive.core import ARModule
from gendist.distributions.conditionals import Conditional
from gendist.nn.pixelcnn import GatedPixelCNN

__all__ = ["PixelCNN"]


class PixelCNN(ARModule):
    r"""A (conditional, gated) PixelCNN autoregressive distribution over images (van den Oord et al., 2016).

    .. math:: p(x \mid c) = \prod_{h, w} \prod_{k=1}^{C} p(x_{k,h,w} \mid \theta_{k,h,w}), \quad
        \theta = \mathrm{GatedPixelCNN}(x, c)

    with :math:`\theta_{k,h,w}` a function of the pixels before :math:`(h, w)` in
    raster order (every channel) and of channels :math:`< k` of :math:`(h, w)`:
    the event ``(C, H, W)`` is generated pixel by pixel, channel by channel
    within a pixel (flat position :math:`k H W + h W + w`). The network is a
    :class:`~gendist.nn.GatedPixelCNN` (vertical and horizontal stacks, no blind
    spot). ``log_prob`` is one pass; sampling runs :math:`C H W` steps, each
    through the horizontal stack on the current row only, with the vertical
    stack run once per row on the rows it can see (``sample(cache=False)``
    runs a full pass per step instead, with the same results).

    Arguments:
        shape: the image shape :math:`(C, H, W)`.
        family: the per-value conditional (``Bernoulli()`` for binarized
            images, ``Categorical(256)``, ``DiscretizedLogisticMixture(256, 5)``, ``Normal()``, ...).
        channels: the feature maps of every layer (a multiple of :math:`C`).
        layers: the gated layers.
        kernel: the odd width of the stacks' convolutions.
        context: the context size (0 for none): a class one-hot or an
            embedding, added to every layer's gates.

    Example:
        >>> from gendist.distributions.conditionals import Bernoulli
        >>> model = PixelCNN((1, 4, 4), family=Bernoulli(), channels=8, layers=2, kernel=3)
        >>> d = model()
        >>> x = d.sample((2,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([2, 1, 4, 4]), torch.Size([2]))

    References:
        | Pixel Recurrent Neural Networks (van den Oord et al., 2016) https://arxiv.org/abs/1601.06759
        | Conditional Image Generation with PixelCNN Decoders (van den Oord et al., 2016)
        | https://arxiv.org/abs/1606.05328
    """

    def __init__(
        self,
        shape: Sequence[int],
        family: Conditional | str = "bernoulli",
        channels: int = 64,
        layers: int = 8,
        kernel: int = 5,
        context: int = 0,
    ) -> None:
        shape = check_shape(shape)
        if len(shape) != 3:
            raise ValueError(f"shape must be an image shape (C, H, W), got {tuple(shape)}")
        super().__init__(shape, family, context)
        C = self.shape[0]
        if int(channels) == channels and channels >= 1 and channels % C:
            raise ValueError(f"channels must be a multiple of the image channels C={C}, got {channels}")
        self.net = GatedPixelCNN(C, self.family.inputs, self.family.params, channels, layers, kernel, self.context)

    @functools.cached_property
    def _ordering(self) -> list[int]:
        C, H, W = self.shape
        return [k * H * W + p for p in range(H * W) for k in range(C)]

    def _input(self, x: Tensor) -> Tensor:
        return rearrange(self.encode(x), "n c h w e -> n (c e) h w")

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        return rearrange(self.net(self._input(x), c), "n c p h w -> n c h w p")

    def begin(self, n: int, c: Tensor | None) -> Any:
        return {"row": -1, "links": None}

    def step(self, state: Any, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        _, H, W = self.shape
        k, p = divmod(self.ordering()[i], H * W)
        h, w = divmod(p, W)
        if state["row"] != h:  # the rows above are final: their vertical contributions serve the whole row
            r0 = max(0, h - self.net.rows_above)
            state["row"], state["links"] = h, self.net.row_links(self._input(x[:, :, r0 : h + 1]), h - r0, c)
        return self.net.row(self._input(x[:, :, h : h + 1]), 0, c, state["links"])[:, k, :, w]
