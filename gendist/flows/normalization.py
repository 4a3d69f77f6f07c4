r"""Normalization layers: ActNorm (data-dependent initialization) and batch normalization (MAF)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.transforms import IndependentTransform

from gendist.distributions.lazy import LazyTransform
from gendist.transforms.base import Transform
from gendist.transforms.elementwise import MonotonicAffine

__all__ = ["ActNorm", "BatchNorm", "Standardize"]


class _ActNormTransform(Transform):
    """:math:`x = z e^{s} + m`, initializing :math:`(m, s)` from the first data batch it inverts."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    sign = +1

    def __init__(self, module: ActNorm) -> None:
        super().__init__()
        self.module = module

    def call_and_ladj(self, z: Tensor) -> tuple[Tensor, Tensor]:
        m = self.module
        x = z * m.log_scale.exp() + m.shift
        return x, m.log_scale.sum().expand(x.shape[:-1])

    def inv_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m = self.module
        if m.training and not bool(m.initialized):
            m.initialize(x)
        z = (x - m.shift) * torch.exp(-m.log_scale)
        return z, m.log_scale.sum().expand(z.shape[:-1])


class ActNorm(LazyTransform):
    r"""Activation normalization (Kingma & Dhariwal, 2018): :math:`x = z e^{s} + m`.

    The first data batch scored in training mode sets :math:`m` and :math:`s`
    so that the batch, as it reaches this layer from the data side, leaves it
    with zero mean and unit variance per feature; after
    that both are ordinary parameters. The ``initialized`` flag is a buffer, so
    the state survives ``state_dict`` round trips (a reloaded model is not
    re-initialized).

    Example:
        >>> layer = ActNorm(2)
        >>> z = layer().inv(3 + 2 * torch.randn(100, 2))
        >>> bool(layer.initialized)
        True
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        flat = x.detach().reshape(-1, x.shape[-1])
        self.shift.copy_(flat.mean(0))
        std = flat.std(0) if len(flat) > 1 else torch.ones_like(self.log_scale)
        self.log_scale.copy_(torch.log(std.clamp_min(1e-6)))
        self.initialized.fill_(True)

    def forward(self, c: Tensor | None = None) -> Transform:
        return _ActNormTransform(self)


class _BatchNormTransform(Transform):
    domain = constraints.real_vector
    codomain = constraints.real_vector
    sign = +1

    def __init__(self, module: BatchNorm) -> None:
        super().__init__()
        self.module = module

    def _stats(self, x: Tensor | None) -> tuple[Tensor, Tensor]:
        m = self.module
        if m.training and x is not None:
            flat = x.reshape(-1, x.shape[-1])
            mean, var = flat.mean(0), flat.var(0, unbiased=False)
            with torch.no_grad():
                m.running_mean.lerp_(mean.detach(), m.momentum)
                m.running_var.lerp_(var.detach(), m.momentum)
            return mean, var
        return m.running_mean, m.running_var

    def call_and_ladj(self, z: Tensor) -> tuple[Tensor, Tensor]:
        m = self.module
        mean, var = self._stats(None)
        log_std = 0.5 * torch.log(var + m.eps)
        x = (z - m.beta) * torch.exp(log_std - m.log_gamma) + mean
        return x, (log_std - m.log_gamma).sum(-1).expand(x.shape[:-1])

    def inv_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m = self.module
        mean, var = self._stats(x)
        log_std = 0.5 * torch.log(var + m.eps)
        z = (x - mean) * torch.exp(m.log_gamma - log_std) + m.beta
        return z, (log_std - m.log_gamma).sum(-1).expand(z.shape[:-1])


class BatchNorm(LazyTransform):
    r"""Batch normalization as a bijection (Papamakarios et al., 2017, eq. 13).

    In the data-to-base direction :math:`z = (x - \mu) / \sqrt{v + \epsilon} \, e^{\gamma} + \beta`.
    In training mode :math:`(\mu, v)` are the statistics of the batch being
    scored (and update running averages); in eval mode, and when sampling,
    the running averages are used, so the map is a fixed bijection.
    """

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.log_gamma = nn.Parameter(torch.zeros(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))
        self.momentum = float(momentum)
        self.eps = float(eps)

    def forward(self, c: Tensor | None = None) -> Transform:
        return _BatchNormTransform(self)


class Standardize(LazyTransform):
    r"""A fixed data-side affine map :math:`x = \sigma z + \mu`, stored as buffers.

    Ending a flow with it lets the rest of the flow work on standardized data
    while ``log_prob`` and samples stay in the data's original units: the
    log-determinant :math:`\sum_i \log \sigma_i` is part of the density.
    :math:`\mu, \sigma` are set once from data (:meth:`from_data`) and are not
    trained; they are saved in ``state_dict``.

    Example:
        >>> from gendist.flows import FlowModule, MAF
        >>> x = 100 + 10 * torch.randn(500, 2)
        >>> flow = FlowModule([*MAF(2, transforms=1).transforms, Standardize.from_data(x)], features=2)
        >>> flow().sample((3,)).mean().item() > 50
        True
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    @classmethod
    def from_data(cls, x: Tensor) -> Standardize:
        r"""Build with the mean and standard deviation of ``x`` (shape :math:`(N, D)`) per feature.

        A constant feature (zero spread) is an error: a density over it is degenerate.
        """
        flat = x.detach().reshape(-1, x.shape[-1])
        std = flat.std(0) if len(flat) > 1 else torch.ones_like(flat[0])
        constant = (std <= 0).nonzero().flatten().tolist()
        if constant:
            raise ValueError(f"Standardize: features {constant} are constant; drop them (their density is degenerate)")
        layer = cls(x.shape[-1]).to(x.dtype)
        layer.mean.copy_(flat.mean(0))
        layer.std.copy_(std)
        return layer

    def forward(self, c: Tensor | None = None) -> Transform:
        return IndependentTransform(MonotonicAffine(self.mean, self.std.log()), 1)
