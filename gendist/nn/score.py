r"""Networks for denoisers: ``net(u, noise, c)`` with the noise level embedded by Fourier features.

References:
    | Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional Domains
    | (Tancik et al., 2020) https://arxiv.org/abs/2006.10739
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["FourierFeatures", "NoiseEmbedding", "ScoreMLP"]


class NoiseEmbedding(nn.Module):
    r"""Fixed Fourier features :math:`[\sin(\omega_i n), \cos(\omega_i n)]` of a noise level :math:`n`,
    with :math:`\omega_i` log-spaced from 1 to 100 (:math:`n = \frac14 \log\tilde\sigma` spans about
    :math:`[-2, 2]`)."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        size = check_integer("NoiseEmbedding: `size`", size, low=2, even=True)
        self.register_buffer("omega", torch.logspace(0, 2, size // 2), persistent=False)

    def forward(self, noise: Tensor) -> Tensor:
        a = noise[..., None] * self.omega.to(noise.dtype)
        return torch.cat([a.sin(), a.cos()], -1)


class FourierFeatures(nn.Module):
    r"""Random Fourier features :math:`[\sin(2\pi B u), \cos(2\pi B u)]` of an input :math:`u \in \mathbb{R}^d`,
    with :math:`B \in \mathbb{R}^{m/2 \times d}` drawn once from :math:`\mathcal{N}(0, s^2)` (Tancik et al.,
    2020). A perceptron fed with them resolves detail at the scale :math:`1/s` that it cannot learn from
    :math:`u` alone in low dimension. :math:`B` is a saved buffer, drawn from its own generator (``seed``).

    Example:
        >>> FourierFeatures(2, 16, scale=4.0)(torch.randn(5, 2)).shape
        torch.Size([5, 16])
    """

    def __init__(self, dim: int, size: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        size = check_integer("FourierFeatures: `size`", size, low=2, even=True)
        if not scale > 0:
            raise ValueError(f"FourierFeatures: `scale` must be positive, got {scale}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("B", 2 * math.pi * scale * torch.randn(size // 2, dim, generator=g))

    def forward(self, u: Tensor) -> Tensor:
        a = u @ self.B.to(u.dtype).T
        return torch.cat([a.sin(), a.cos()], -1)


class ScoreMLP(nn.Module):
    r"""A perceptron denoiser network for data of any ``shape``: the flattened input (and its Fourier
    features, if any), the noise embedding and the context are concatenated, then ``hidden`` layers.

    Arguments:
        shape: the event shape of :math:`x`.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        embedding: the size of the noise embedding.
        activation: the activation module class.
        features: the number of random Fourier features of the input (0 for none; see
            :class:`FourierFeatures`), for low-dimensional data with fine detail.
        feature_scale: their frequency scale :math:`s`, in units of the (unit-variance) network input.
        dropout: the dropout probability after every hidden layer (in training mode only), against
            overfitting small data sets.

    Example:
        >>> net = ScoreMLP((3,), hidden=(32, 32), context=2)
        >>> net(torch.randn(7, 3), torch.randn(7), torch.randn(7, 2)).shape
        torch.Size([7, 3])
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        hidden: Sequence[int] = (256, 256, 256),
        context: int = 0,
        embedding: int = 32,
        activation: type[nn.Module] = nn.SiLU,
        features: int = 0,
        feature_scale: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.shape = torch.Size([shape] if isinstance(shape, int) else shape)
        self.context = context
        self.embed = NoiseEmbedding(embedding)
        d = math.prod(self.shape)
        features = check_integer("ScoreMLP: `features`", features, low=0, even=True)
        if not 0 <= dropout < 1:
            raise ValueError(f"ScoreMLP: `dropout` must be in [0, 1), got {dropout}")
        self.features = FourierFeatures(d, features, feature_scale) if features else None
        sizes = [d + features + embedding + context, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), activation()] + ([nn.Dropout(dropout)] if dropout else [])
        layers.append(nn.Linear(sizes[-1], d))
        self.layers = nn.Sequential(*layers)

    def forward(self, u: Tensor, noise: Tensor, c: Tensor | None = None) -> Tensor:
        batch = u.shape[: u.dim() - len(self.shape)]
        flat = u.reshape(batch + (-1,))
        h = [flat, self.embed(noise.expand(batch))]
        if self.features is not None:
            h.append(self.features(flat))
        if self.context:
            if c is None:
                raise ValueError(f"ScoreMLP: this network needs a context `c` of size {self.context}, got None")
            h.append(c.expand(batch + c.shape[-1:]))
        return self.layers(torch.cat(h, -1)).reshape(u.shape)
