r"""Energy networks: a scalar :math:`E_\theta(x, c)` per example, smooth in :math:`x` (samplers need its gradient)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Size, Tensor

from gendist._checks import check_integer, check_shape
from gendist.nn.mlp import MLP
from gendist.nn.score import FourierFeatures

__all__ = ["ConvNet", "EnergyConvNet", "EnergyMLP"]


def _check_activation(where: str, activation: object) -> None:
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise TypeError(f"{where}: `activation` must be an nn.Module class (nn.SiLU, nn.Softplus, ...), "
                        f"got {activation!r}")


class EnergyMLP(nn.Module):
    r"""A perceptron energy :math:`E_\theta(x, c) \in \mathbb{R}` of a vector :math:`x \in \mathbb{R}^D`.

    A :class:`~gendist.nn.MLP` with one output, the context entering its first layer additively. The default
    activation is smooth (SiLU), so :math:`\nabla_x E` is continuous, as Langevin and HMC samplers need
    (ReLU gives a piecewise-constant gradient).

    With ``fourier`` :math:`= m > 0` the perceptron reads :math:`x` together with :math:`m` random Fourier
    features of it, :math:`[\sin(2\pi B x), \cos(2\pi B x)]` with :math:`B_{ij} \sim \mathcal{N}(0, s^2)`
    drawn once (a :class:`~gendist.nn.score.FourierFeatures`, :math:`s` = ``fourier_scale``): a low-dimensional
    energy then resolves detail at the scale :math:`1/s` (thin rings, sharp edges) that a perceptron of
    :math:`x` alone learns slowly or not at all (Tancik et al., 2020). The features are bounded and smooth, so
    the energy stays smooth in :math:`x`, and grows at most linearly in :math:`x` through its raw input.

    Arguments:
        features: the size :math:`D` of :math:`x`.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        activation: the activation module class (``nn.SiLU``, ``nn.Softplus``, ``nn.ELU``, ...).
        fourier: the number :math:`m` of random Fourier features of :math:`x` (even; 0 for none).
        fourier_scale: their frequency scale :math:`s`, in the units of :math:`x`.
        fourier_seed: the seed of their frequencies :math:`B` (a saved buffer).

    Maps ``x`` of shape ``(..., D)`` (and ``c`` of shape ``(..., context)``, broadcasting) to ``(...,)``.

    Example:
        >>> net = EnergyMLP(3, hidden=(16,), context=2)
        >>> net(torch.randn(4, 5, 3), torch.randn(5, 2)).shape
        torch.Size([4, 5])
        >>> EnergyMLP(2, hidden=(16,), fourier=8, fourier_scale=2.0)(torch.randn(7, 2)).shape
        torch.Size([7])
    """

    def __init__(
        self,
        features: int,
        hidden: Sequence[int] = (128, 128),
        context: int = 0,
        activation: type[nn.Module] = nn.SiLU,
        fourier: int = 0,
        fourier_scale: float = 1.0,
        fourier_seed: int = 0,
    ) -> None:
        super().__init__()
        self.features = check_integer("EnergyMLP: `features`", features, low=1)
        self.context = check_integer("EnergyMLP: `context`", context, low=0)
        hidden = tuple(check_integer("EnergyMLP: `hidden` sizes", h, low=1) for h in hidden)
        _check_activation("EnergyMLP", activation)
        self.fourier = check_integer("EnergyMLP: `fourier` (the number of Fourier features)", fourier, low=0,
                                     even=True)
        ok = isinstance(fourier_scale, (int, float)) and not isinstance(fourier_scale, bool)
        if not (ok and math.isfinite(fourier_scale) and fourier_scale > 0):
            raise ValueError(f"EnergyMLP: `fourier_scale` must be a positive finite number, got {fourier_scale!r}")
        self.fourier_scale = float(fourier_scale)
        self.embed = FourierFeatures(features, fourier, fourier_scale, fourier_seed) if fourier else None
        self.net = MLP(features + self.fourier, 1, hidden, context, activation)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        if self.context and c is None:
            raise ValueError(f"EnergyMLP: this network needs a context `c` of shape (..., {self.context}), got None")
        if self.embed is not None:
            x = torch.cat([x, self.embed(x)], -1)
        return self.net(x, c if self.context else None).squeeze(-1)


class ConvNet(nn.Module):
    r"""A small convolutional network from images ``(..., C, H, W)`` (and a context) to ``out_features`` values.

    A 3x3 convolution to ``width`` channels, then stride-2 4x4 convolutions doubling the channels (up to
    ``8 width``) while the image is larger than 4x4 (``depth`` of them; at most 4 by default), then a perceptron
    on the flattened maps, the context added to its hidden layer. Any leading dimensions (one image per entry).

    Arguments:
        channels: the channels :math:`C`.
        size: :math:`H` (square images) or :math:`(H, W)`.
        out_features: the number of outputs.
        width: the channels of the first layer.
        depth: the number of stride-2 stages (default: while the maps are larger than 4x4, at most 4).
        hidden: the width of the final hidden layer (default ``4 width``).
        context: the context size (0 for none).
        activation: the activation module class (smooth by default).

    Example:
        >>> net = ConvNet(1, 8, 10, width=4)
        >>> net(torch.randn(2, 3, 1, 8, 8)).shape
        torch.Size([2, 3, 10])
    """

    def __init__(
        self,
        channels: int,
        size: int | Sequence[int],
        out_features: int,
        width: int = 32,
        depth: int | None = None,
        hidden: int | None = None,
        context: int = 0,
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.channels = check_integer(f"{name}: `channels`", channels, low=1)
        size = check_shape(size, f"{name}: `size`")
        if len(size) == 1:
            size = size * 2
        if len(size) != 2:
            raise ValueError(f"{name}: `size` must be H or (H, W), got {tuple(size)}")
        self.size = Size(size)
        check_integer(f"{name}: `out_features`", out_features, low=1)
        width = check_integer(f"{name}: `width`", width, low=1)
        self.context = check_integer(f"{name}: `context`", context, low=0)
        _check_activation(name, activation)
        if depth is None:
            depth, (h, w) = 0, self.size
            while min(h, w) > 4 and depth < 4:
                depth, h, w = depth + 1, h // 2, w // 2
        depth = check_integer(f"{name}: `depth`", depth, low=0)
        h, w = self.size
        layers: list[nn.Module] = [nn.Conv2d(self.channels, width, 3, padding=1)]
        c_in = width
        for i in range(depth):
            if min(h, w) < 2:
                raise ValueError(f"{name}: {depth} stride-2 stages shrink {tuple(self.size)} images below 1x1; "
                                 f"use depth <= {i}")
            c_out = width * 2 ** min(i + 1, 3)
            layers += [activation(), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
            c_in, h, w = c_out, h // 2, w // 2
        layers.append(activation())
        self.body = nn.Sequential(*layers)
        hidden = check_integer(f"{name}: `hidden`", 4 * width if hidden is None else hidden, low=1)
        self.head = MLP(c_in * h * w, out_features, (hidden,), context, activation)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        event = Size((self.channels, *self.size))
        if x.dim() < 3 or x.shape[-3:] != event:
            raise ValueError(f"{type(self).__name__}: `x` must have shape (..., {', '.join(map(str, event))}), "
                             f"got shape {tuple(x.shape)}")
        if self.context and c is None:
            raise ValueError(f"{type(self).__name__}: this network needs a context `c` of shape "
                             f"(..., {self.context}), got None")
        batch = x.shape[:-3]
        h = self.body(x.reshape(batch.numel(), *event)).flatten(1)
        h = h.reshape(*batch, h.shape[-1])
        return self.head(h, c if self.context else None)


class EnergyConvNet(ConvNet):
    r"""A convolutional energy :math:`E_\theta(x, c) \in \mathbb{R}` of images ``(..., C, H, W)`` -> ``(...,)``:
    a :class:`ConvNet` with one output (see there for the arguments).

    Example:
        >>> net = EnergyConvNet(1, 8, width=4)
        >>> net(torch.randn(5, 1, 8, 8)).shape
        torch.Size([5])
    """

    def __init__(
        self,
        channels: int,
        size: int | Sequence[int],
        width: int = 32,
        depth: int | None = None,
        hidden: int | None = None,
        context: int = 0,
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__(channels, size, 1, width, depth, hidden, context, activation)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return super().forward(x, c).squeeze(-1)
