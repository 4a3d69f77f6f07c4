r"""Networks for denoisers: ``net(u, noise, c)`` with the noise level embedded by Fourier features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ["NoiseEmbedding", "ScoreMLP"]


class NoiseEmbedding(nn.Module):
    r"""Fixed Fourier features :math:`[\sin(\omega_i n), \cos(\omega_i n)]` of a noise level :math:`n`,
    with :math:`\omega_i` log-spaced from 1 to 100 (:math:`n = \frac14 \log\tilde\sigma` spans about
    :math:`[-2, 2]`)."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        if size < 2 or size % 2:
            raise ValueError(f"NoiseEmbedding: `size` must be an even integer >= 2, got {size}")
        self.register_buffer("omega", torch.logspace(0, 2, size // 2), persistent=False)

    def forward(self, noise: Tensor) -> Tensor:
        a = noise[..., None] * self.omega.to(noise.dtype)
        return torch.cat([a.sin(), a.cos()], -1)


class ScoreMLP(nn.Module):
    r"""A perceptron denoiser network for data of any ``shape``: the flattened input, the noise
    embedding and the context are concatenated, then ``hidden`` layers.

    Arguments:
        shape: the event shape of :math:`x`.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        embedding: the size of the noise embedding.
        activation: the activation module class.

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
    ) -> None:
        super().__init__()
        self.shape = torch.Size([shape] if isinstance(shape, int) else shape)
        self.context = context
        self.embed = NoiseEmbedding(embedding)
        d = math.prod(self.shape)
        sizes = [d + embedding + context, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), activation()]
        layers.append(nn.Linear(sizes[-1], d))
        self.layers = nn.Sequential(*layers)

    def forward(self, u: Tensor, noise: Tensor, c: Tensor | None = None) -> Tensor:
        batch = u.shape[: u.dim() - len(self.shape)]
        h = [u.reshape(batch + (-1,)), self.embed(noise.expand(batch))]
        if self.context:
            if c is None:
                raise ValueError(f"ScoreMLP: this network needs a context `c` of size {self.context}, got None")
            h.append(c.expand(batch + c.shape[-1:]))
        return self.layers(torch.cat(h, -1)).reshape(u.shape)
