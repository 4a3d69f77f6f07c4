r"""Planar, radial and Sylvester flows: the residual flows of variational inference.

Each layer holds its parameters either as free parameters (``context=0``) or
computes them from a context with an MLP (``context > 0``), the amortized
setting of a VAE encoder (van den Berg et al., 2018). The layers build
parameters that always satisfy the maps' invertibility conditions.

These flows are made for reverse-KL variational inference:
``rsample_and_log_prob`` is one cheap forward pass. Unlike the cached
versions found elsewhere, their ``log_prob`` also scores any point, through
the inverses of :mod:`gendist.transforms.vi` (closed form for radial,
bisection to the dtype's resolution for planar and Sylvester), with gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_context, check_sizes
from gendist.distributions.lazy import LazyDistribution, LazyTransform
from gendist.flows.core import FlowModule
from gendist.nn.mlp import MLP
from gendist.transforms.vi import Planar, Radial, Sylvester

__all__ = ["PlanarLayer", "RadialLayer", "SylvesterLayer", "PlanarFlow", "RadialFlow", "SylvesterFlow"]


class _AmortizedLayer(LazyTransform):
    r"""A flat parameter vector :math:`\theta`: free (``context=0``) or :math:`\mathrm{MLP}(c)`."""

    def __init__(
        self,
        features: int,
        params: int,
        context: int,
        hidden: Sequence[int],
        activation: type[nn.Module],
    ) -> None:
        super().__init__()
        check_sizes(features, context)
        self.features = int(features)
        self.context = int(context)
        if context > 0:
            self.net = MLP(context, params, hidden, activation=activation)
        else:
            bound = 1 / math.sqrt(features)
            self.theta = nn.Parameter(torch.empty(params).uniform_(-bound, bound))

    def _theta(self, c: Tensor | None) -> Tensor:
        check_context(c, self.context, type(self).__name__)
        return self.theta if self.context == 0 else self.net(c)


class PlanarLayer(_AmortizedLayer):
    r"""A planar map :math:`x = z + \hat u \tanh(w^\top z + b)` with learned or amortized parameters.

    :math:`\hat u` is the reparametrization of Rezende & Mohamed (2015,
    appendix A) that guarantees invertibility,

    .. math:: \hat u = u + \left(m(w^\top u) - w^\top u\right) \frac{w}{\|w\|^2},
              \qquad m(s) = -1 + \epsilon + \mathrm{softplus}(s),

    so :math:`w^\top \hat u = m(w^\top u) > -1`. The margin
    :math:`\epsilon` = ``margin`` = :math:`10^{-4}` is not in the paper: without it,
    :math:`\mathrm{softplus}(s)` underflows for :math:`s \ll 0` and rounding puts
    :math:`w^\top \hat u` at (or below) :math:`-1`, a singular map. It bounds
    the slope :math:`1 + h' w^\top \hat u` below by :math:`\epsilon`. See
    :class:`~gendist.transforms.Planar` for the map and its (bisection) inverse.

    Arguments:
        features: the dimension :math:`D`.
        context: the context size (0 for free parameters).
        hidden: the context network's hidden sizes.
        activation: the context network's activation class.

    Example:
        >>> layer = PlanarLayer(3, context=2)
        >>> t = layer(torch.randn(5, 2))
        >>> t.u.shape, t(torch.randn(7, 5, 3)).shape
        (torch.Size([5, 3]), torch.Size([7, 5, 3]))
    """

    margin: float = 1e-4

    def __init__(
        self,
        features: int,
        context: int = 0,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__(features, 2 * features + 1, context, hidden, activation)

    def forward(self, c: Tensor | None = None) -> Planar:
        theta = self._theta(c)
        D = self.features
        u, w, b = theta[..., :D], theta[..., D : 2 * D], theta[..., 2 * D]
        wu = (w * u).sum(dim=-1, keepdim=True)
        ww = (w * w).sum(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        u_hat = u + (F.softplus(wu) - (1 - self.margin) - wu) * w / ww
        return Planar(u_hat, w, b)


class RadialLayer(_AmortizedLayer):
    r"""A radial map :math:`x = z + \beta (z - z_0) / (\alpha + \|z - z_0\|)` with learned or amortized parameters.

    :math:`\alpha = \mathrm{softplus}(\tilde\alpha) > 0` and
    :math:`\beta = -(1 - \epsilon) \alpha + \mathrm{softplus}(\tilde\beta) > -\alpha`, so the
    map is always invertible (Rezende & Mohamed, 2015, appendix A, with
    :math:`\epsilon = 0`). The margin :math:`\epsilon` = ``margin`` = :math:`10^{-4}`
    keeps :math:`\alpha + \beta \ge \epsilon \alpha` when the softplus underflows,
    so the map stays non-singular at :math:`z_0`. See
    :class:`~gendist.transforms.Radial` for the map and its closed-form inverse.

    Arguments:
        features: the dimension :math:`D`.
        context: the context size (0 for free parameters).
        hidden: the context network's hidden sizes.
        activation: the context network's activation class.

    Example:
        >>> t = RadialLayer(2)()
        >>> z = torch.randn(4, 2)
        >>> bool(torch.allclose(t.inv(t(z)), z, atol=1e-6))
        True
    """

    margin: float = 1e-4

    def __init__(
        self,
        features: int,
        context: int = 0,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__(features, features + 2, context, hidden, activation)

    def forward(self, c: Tensor | None = None) -> Radial:
        theta = self._theta(c)
        D = self.features
        alpha = F.softplus(theta[..., D])
        beta = F.softplus(theta[..., D + 1]) - (1 - self.margin) * alpha
        return Radial(theta[..., :D], alpha, beta)


class SylvesterLayer(_AmortizedLayer):
    r"""An orthogonal Sylvester map :math:`x = z + Q R \tanh(\tilde R Q^\top z + b)`, learned or amortized.

    :math:`Q` (:math:`D \times M`, orthonormal columns) is the ``Q`` factor of
    the reduced QR decomposition (``torch.linalg.qr``, differentiable for the
    full-column-rank matrices it meets in practice) of an unconstrained
    :math:`D \times M` parameter. :math:`R` and :math:`\tilde R` are upper
    triangular with free off-diagonal entries and diagonals
    :math:`(1 - \epsilon) \tanh(\cdot) \in (-1, 1)`, so :math:`R_{ii} \tilde R_{ii} > -1`
    and the map is invertible, as in the paper (which has :math:`\epsilon = 0`;
    the margin ``margin`` = :math:`10^{-4}` keeps the product above :math:`-1`
    where tanh rounds to :math:`\pm 1`). See
    :class:`~gendist.transforms.Sylvester` for the map and its inverse.

    Arguments:
        features: the dimension :math:`D`.
        context: the context size (0 for free parameters).
        rank: the number :math:`M \le D` of orthonormal directions; :math:`D` by default.
        hidden: the context network's hidden sizes.
        activation: the context network's activation class.

    Example:
        >>> t = SylvesterLayer(4, rank=2)()
        >>> t.Q.shape, t.R.shape
        (torch.Size([4, 2]), torch.Size([2, 2]))

    References:
        | Sylvester Normalizing Flows for Variational Inference (van den Berg et al., 2018)
        | https://arxiv.org/abs/1803.05649
    """

    margin: float = 1e-4

    def __init__(
        self,
        features: int,
        context: int = 0,
        rank: int | None = None,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        M = features if rank is None else int(rank)
        if not 1 <= M <= features:
            raise ValueError(f"rank must be in 1..features = 1..{features}, got {rank}")
        tri = M * (M + 1) // 2
        super().__init__(features, features * M + 2 * tri + M, context, hidden, activation)
        self.rank = M
        rows, cols = torch.triu_indices(M, M)
        self.register_buffer("triu", rows * M + cols, persistent=False)

    def _upper(self, p: Tensor) -> Tensor:
        M = self.rank
        full = p.new_zeros(p.shape[:-1] + (M * M,)).index_copy(-1, self.triu, p).unflatten(-1, (M, M))
        diag = torch.diagonal(full, dim1=-2, dim2=-1)
        return full.triu(1) + torch.diag_embed((1 - self.margin) * torch.tanh(diag))

    def forward(self, c: Tensor | None = None) -> Sylvester:
        theta = self._theta(c)
        D, M = self.features, self.rank
        tri = M * (M + 1) // 2
        Q = torch.linalg.qr(theta[..., : D * M].unflatten(-1, (D, M))).Q
        i = D * M
        R = self._upper(theta[..., i : i + tri])
        R_tilde = self._upper(theta[..., i + tri : i + 2 * tri])
        return Sylvester(Q, R, R_tilde, theta[..., i + 2 * tri :])


class PlanarFlow(FlowModule):
    r"""Planar flow (Rezende & Mohamed, 2015): a stack of :class:`PlanarLayer`.

    Sampling and ``rsample_and_log_prob`` are one forward pass per layer
    (cheap: the VI use); ``log_prob`` of any point inverts each layer by
    bisection (:class:`~gendist.transforms.Planar`), so it is exact to the
    dtype's resolution and differentiable, at about 25 (float32) or 54
    (float64) cheap elementwise steps per layer.

    Arguments:
        features: the data dimension :math:`D`.
        context: the context size (0 for none); with a context, every layer's
            parameters are amortized by an MLP.
        transforms: the number of layers.
        hidden: the context networks' hidden sizes.
        base: the base distribution (standard normal by default).
        support: an optional data constraint, see :class:`~gendist.flows.FlowModule`.
        activation: the context networks' activation class.

    Example:
        >>> flow = PlanarFlow(2, transforms=4)
        >>> x, lp = flow().rsample_and_log_prob((3,))
        >>> bool(torch.allclose(flow().log_prob(x), lp, atol=1e-4))
        True

    References:
        | Variational Inference with Normalizing Flows (Rezende & Mohamed, 2015)
        | https://arxiv.org/abs/1505.05770
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 8,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers = [PlanarLayer(features, context, hidden, activation) for _ in range(transforms)]
        super().__init__(layers, features, context, base, support)


class RadialFlow(FlowModule):
    r"""Radial flow (Rezende & Mohamed, 2015): a stack of :class:`RadialLayer`.

    Both directions are closed form, one pass per layer.

    Arguments: as :class:`PlanarFlow`.

    Example:
        >>> flow = RadialFlow(3, context=2, transforms=2)
        >>> flow(torch.randn(5, 2)).log_prob(torch.randn(5, 3)).shape
        torch.Size([5])

    References:
        | Variational Inference with Normalizing Flows (Rezende & Mohamed, 2015)
        | https://arxiv.org/abs/1505.05770
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 8,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers = [RadialLayer(features, context, hidden, activation) for _ in range(transforms)]
        super().__init__(layers, features, context, base, support)


class SylvesterFlow(FlowModule):
    r"""Orthogonal Sylvester flow (van den Berg et al., 2018): a stack of :class:`SylvesterLayer`.

    Each layer has its own :math:`Q`. Sampling is one pass per layer;
    ``log_prob`` inverts each layer by :math:`M` sequential bisections
    (:class:`~gendist.transforms.Sylvester`), exact to the dtype's resolution
    and differentiable.

    Arguments:
        features: the data dimension :math:`D`.
        context: the context size (0 for none); with a context, every layer's
            parameters (:math:`Q`, :math:`R`, :math:`\tilde R`, :math:`b`) are
            amortized by an MLP, as in the paper's VAE.
        transforms: the number of layers.
        hidden: the context networks' hidden sizes.
        base: the base distribution (standard normal by default).
        support: an optional data constraint, see :class:`~gendist.flows.FlowModule`.
        rank: the number :math:`M \le D` of orthonormal directions per layer; :math:`D` by default.
        activation: the context networks' activation class.

    Example:
        >>> flow = SylvesterFlow(3, transforms=2, rank=2)
        >>> flow().sample((4,)).shape
        torch.Size([4, 3])

    References:
        | Sylvester Normalizing Flows for Variational Inference (van den Berg et al., 2018)
        | https://arxiv.org/abs/1803.05649
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 4,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        rank: int | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers = [SylvesterLayer(features, context, rank, hidden, activation) for _ in range(transforms)]
        super().__init__(layers, features, context, base, support)
