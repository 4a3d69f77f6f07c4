r"""Denoising score matching for diffusion models: weightings over time, time samplers and the loss.

A denoiser :math:`D(x_t, t \mid c) \approx E[x_0 \mid x_t, c]` is trained on data :math:`x_0` perturbed by a
linear SDE, :math:`x_t = \alpha_t x_0 + \sigma_t \epsilon`. Its noise estimate
:math:`\hat\epsilon = (x_t - \alpha_t D) / \sigma_t` gives the per-sample error

.. math:: \ell(x_0, \epsilon, t) = \lVert \hat\epsilon - \epsilon \rVert^2
    = \mathrm{SNR}(t) \, \lVert D(x_t, t) - x_0 \rVert^2,
    \qquad \mathrm{SNR}(t) = \alpha_t^2 / \sigma_t^2 = e^{\lambda_t},

and the objective averages it over uniform time with a weighting :math:`w(t)`,

.. math:: \mathcal{L} = \frac{1}{T - t_{\min}} \int_{t_{\min}}^{T} w(t) \,
    E_{x_0, \epsilon}\big[\ell(x_0, \epsilon, t)\big] \, dt .

Every weighting has the same minimizer, the posterior mean :math:`E[x_0 \mid x_t]` (Vincent, 2011); they differ
in which noise levels the network's capacity goes to, and in the variance of the Monte Carlo estimate.
``"likelihood"`` is :math:`w = g(t)^2 / \sigma_t^2 = -d\lambda_t/dt`: the score error weighted by :math:`g^2`,
for which :math:`\frac{1}{2} (T - t_{\min}) \mathcal{L}` is the diffusion term of the negative ELBO (Song et al.,
2021; Kingma et al., 2021). :class:`TimeSampler` draws :math:`t` either uniformly or in proportion to
:math:`w` (importance sampling: the same objective with a much lower variance for steep weightings).

References:
    | A Connection Between Score Matching and Denoising Autoencoders (Vincent, 2011)
    | https://doi.org/10.1162/NECO_a_00142
    | Denoising Diffusion Probabilistic Models (Ho et al., 2020)
    | https://arxiv.org/abs/2006.11239
    | Maximum Likelihood Training of Score-Based Diffusion Models (Song et al., 2021)
    | https://arxiv.org/abs/2101.09258
    | Variational Diffusion Models (Kingma et al., 2021)
    | https://arxiv.org/abs/2107.00630
    | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., 2022)
    | https://arxiv.org/abs/2206.00364
    | Efficient Diffusion Training via Min-SNR Weighting Strategy (Hang et al., 2023)
    | https://arxiv.org/abs/2303.09556
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Size, Tensor

from gendist._checks import check_integer

if TYPE_CHECKING:  # gendist.diffusion imports this module: no import of it at run time
    from gendist.sde import SDE

__all__ = ["WEIGHTINGS", "weight", "TimeSampler", "dsm_loss"]

WEIGHTINGS = ("simple", "likelihood", "min_snr", "edm")

Denoiser = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]

_NODES = 8  # Gauss-Legendre points per cell for the importance sampler's masses


def _check_options(where: str, weighting: str, gamma: float, sigma_data: float) -> None:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"{where}: `weighting` must be one of {WEIGHTINGS}, got {weighting!r}")
    if not (isinstance(gamma, (int, float)) and not isinstance(gamma, bool) and 0 < gamma < math.inf):
        raise ValueError(f"{where}: `gamma` must be a positive number, got {gamma!r}")
    if not (isinstance(sigma_data, (int, float)) and not isinstance(sigma_data, bool) and 0 < sigma_data < math.inf):
        raise ValueError(f"{where}: `sigma_data` must be a positive number, got {sigma_data!r}")


def weight(sde: SDE, t: Tensor | float, weighting: str, *, gamma: float = 5.0, sigma_data: float = 1.0) -> Tensor:
    r"""The weighting :math:`w(t)` of the :math:`\epsilon`-MSE at times ``t``.

    With :math:`\mathrm{SNR} = \alpha_t^2 / \sigma_t^2`:

    * ``"simple"``: :math:`w = 1`, the unweighted :math:`\epsilon`-MSE (Ho et al., 2020);
    * ``"likelihood"``: :math:`w = g(t)^2 / \sigma_t^2 = -d \log \mathrm{SNR} / dt`, the score MSE weighted by
      :math:`g^2` (Song et al., 2021): :math:`\frac{1}{2} \int w \, E[\ell] \, dt` is the negative ELBO up to
      terms that do not depend on the denoiser;
    * ``"min_snr"``: :math:`w = \min(\mathrm{SNR}, \gamma) / \mathrm{SNR}` (Hang et al., 2023);
    * ``"edm"``: :math:`w = 1 + 1 / (\mathrm{SNR}\, \sigma_d^2)`, Karras et al.'s (2022)
      :math:`\lambda(\tilde\sigma) = (\tilde\sigma^2 + \sigma_d^2) / (\tilde\sigma \sigma_d)^2` on the
      :math:`x_0` error, rewritten for the :math:`\epsilon`-MSE.

    Arguments:
        sde: the process.
        t: the times, in :math:`[0, T]`.
        weighting: one of :data:`WEIGHTINGS`.
        gamma: the SNR cap :math:`\gamma` of ``"min_snr"``.
        sigma_data: the data's standard deviation :math:`\sigma_d` of ``"edm"``.

    Returns:
        The weights, of ``t``'s shape.

    Example:
        >>> from gendist.diffusion import VE
        >>> sde = VE(sigma_min=0.01, sigma_max=50.0)
        >>> weight(sde, torch.tensor([0.1, 0.9]), "likelihood")  # 2 log(sigma_max / sigma_min) for VE
        tensor([17.0344, 17.0344])
    """
    _check_options("weight", weighting, gamma, sigma_data)
    return _weight(sde, sde.check_time(t), weighting, gamma, sigma_data)


def _weight(sde: SDE, t: Tensor, weighting: str, gamma: float, sigma_data: float) -> Tensor:
    if weighting == "simple":
        return torch.ones_like(t)
    if weighting == "likelihood":
        return sde.g2(t) / sde.sigma(t) ** 2
    inv_snr = torch.exp(-sde.log_snr(t))  # 1 / SNR, exact 0 where sigma = 0
    if weighting == "min_snr":
        return torch.clamp(gamma * inv_snr, max=1.0)
    return 1 + inv_snr / sigma_data**2


def _shape(n_shape: int | Sequence[int]) -> Size:
    if isinstance(n_shape, int) and not isinstance(n_shape, bool):
        n_shape = (n_shape,)
    try:
        shape = Size(n_shape)
    except TypeError:
        raise ValueError(f"TimeSampler.sample: `n_shape` must be an int or a tuple of ints, got {n_shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"TimeSampler.sample: `n_shape` must not be negative, got {tuple(shape)}")
    return shape


class TimeSampler:
    r"""Draws training times :math:`t` and factors :math:`\rho(t)` with :math:`E[\rho(t) \, h(t)] =
    \frac{1}{T - t_{\min}} \int_{t_{\min}}^T w(t) h(t) \, dt` for any :math:`h` (here the expected
    :math:`\epsilon`-MSE): an unbiased estimate of the weighted objective.

    By default :math:`t \sim \mathcal{U}[t_{\min}, T]` and :math:`\rho = w(t)`. With ``importance``, :math:`t`
    follows a piecewise-constant density :math:`q \propto w \, m` on ``cells`` equal cells of :math:`[t_{\min}, T]`,
    where :math:`m(t) = \mathrm{SNR}\, \sigma_d^2 / (1 + \mathrm{SNR}\, \sigma_d^2)` is the :math:`\epsilon`-MSE per
    dim of the ideal denoiser for data :math:`\mathcal{N}(0, \sigma_d^2 I)`: a model of how the expected error
    varies with :math:`t` (it vanishes as :math:`\mathrm{SNR} \to 0`, where :math:`\epsilon` is easy to predict).
    Each cell's probability is the integral of :math:`w m` over it, by Gauss-Legendre quadrature in float64 (which
    handles the steep likelihood weighting near :math:`t_{\min}`), and :math:`\rho = w(t) / (q(t) (T - t_{\min}))`.
    The estimate is unbiased whatever the accuracy of the table or of :math:`m`; the variance drops a lot for
    ``"likelihood"`` (which Song et al. (2021) also train by importance sampling), and ``"edm"``, for which
    :math:`w m = 1`, keeps uniform times. (Drawing in proportion to :math:`w` alone would put ``"edm"``'s samples
    where :math:`w \to \infty` but the error :math:`\to 0`, and raise its variance manyfold.)

    Arguments:
        sde: the process.
        weighting: one of :data:`WEIGHTINGS` (see :func:`weight`).
        importance: draw :math:`t` in proportion to the weighting times the reference error :math:`m`.
        gamma: the SNR cap of ``"min_snr"``.
        sigma_data: the data's standard deviation :math:`\sigma_d`, of ``"edm"`` and of the reference error :math:`m`.
        cells: the number of cells of the importance density.
        uniform: the share of the uniform density in the importance density, a defensive mixture. Without
            it, ``"likelihood"`` on VP draws times near :math:`T` about a million times less often than near
            :math:`t_{\min}`, the network never learns the high noise levels, and samples diverge.

    Example:
        >>> from gendist.diffusion import VP
        >>> sampler = TimeSampler(VP(), "likelihood", importance=True)
        >>> t, factor = sampler.sample((4,), generator=torch.Generator().manual_seed(0))
        >>> t.shape, factor.shape
        (torch.Size([4]), torch.Size([4]))
    """

    def __init__(
        self,
        sde: SDE,
        weighting: str = "simple",
        *,
        importance: bool = False,
        gamma: float = 5.0,
        sigma_data: float = 1.0,
        cells: int = 1000,
        uniform: float = 0.2,
    ) -> None:
        if not all(callable(getattr(sde, m, None)) for m in ("alpha", "sigma", "log_snr", "g2", "check_time")):
            raise TypeError(f"TimeSampler: `sde` must be an SDE, got {type(sde).__name__}")
        _check_options("TimeSampler", weighting, gamma, sigma_data)
        self.sde, self.weighting, self.importance = sde, weighting, bool(importance)
        self.gamma, self.sigma_data = float(gamma), float(sigma_data)
        self.cells = check_integer("TimeSampler: `cells`", cells)
        if not 0 < uniform <= 1:
            raise ValueError(f"TimeSampler: `uniform` must be in (0, 1], got {uniform!r}")
        self.uniform = float(uniform)
        self.t_min, self.T = sde.t_min, sde.T
        w0 = self.weight(torch.tensor([self.t_min, self.T], dtype=torch.float64))
        if not torch.isfinite(w0).all():
            raise ValueError(
                f"TimeSampler: the {weighting!r} weighting of {sde!r} is not finite on [t_min, T] "
                f"(w(t_min), w(T) = {w0.tolist()}); use a process with t_min > 0"
            )
        self._probs = self._cdf = None
        if self.importance:
            self._tabulate()
        self._cache: dict = {}

    def weight(self, t: Tensor) -> Tensor:
        r"""The weighting :math:`w(t)` (see :func:`weight`)."""
        return _weight(self.sde, t, self.weighting, self.gamma, self.sigma_data)

    def _tabulate(self) -> None:
        nodes, weights = np.polynomial.legendre.leggauss(_NODES)
        nodes = torch.as_tensor((nodes + 1) / 2, dtype=torch.float64)  # on [0, 1]
        weights = torch.as_tensor(weights / 2, dtype=torch.float64)
        width = (self.T - self.t_min) / self.cells
        left = self.t_min + width * torch.arange(self.cells, dtype=torch.float64)
        t = (left[:, None] + width * nodes).clamp(self.t_min, self.T)
        reference = 1 / (1 + torch.exp(-self.sde.log_snr(t)) / self.sigma_data**2)  # m(t), 1 where sigma = 0
        mass = (self.weight(t) * reference * weights).sum(-1)  # the mean of w m over each cell
        if not torch.isfinite(mass).all() or (mass < 0).any():
            raise ValueError(f"TimeSampler: the {self.weighting!r} weighting is not finite and nonnegative")
        total = mass.sum()
        if not total > 0:
            raise ValueError(f"TimeSampler: the {self.weighting!r} weighting vanishes on [t_min, T] = "
                             f"[{self.t_min:g}, {self.T:g}]")
        # a defensive mixture with the uniform density (Hesterberg, 1995): every time keeps a share of the
        # draws, so the network also learns where w m is tiny (the high noise levels samplers start from)
        self._probs = (1 - self.uniform) * mass / mass.sum() + self.uniform / self.cells
        self._cdf = torch.cat([self._probs.new_zeros(1), self._probs.cumsum(0)])
        self._cdf[-1] = 1.0

    def density(self, t: Tensor) -> Tensor:
        r"""The density :math:`q(t)` that ``sample`` draws from (uniform without ``importance``)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        width = (self.T - self.t_min) / self.cells
        inside = (t >= self.t_min) & (t <= self.T)
        if not self.importance:
            return torch.where(inside, 1 / (self.T - self.t_min), 0.0)
        k = ((t - self.t_min) / width).floor().long().clamp(0, self.cells - 1)
        return torch.where(inside, self._probs[k] / width, 0.0)

    def _tables(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        key = (device, dtype)
        if key not in self._cache:
            self._cache[key] = (self._probs.to(device=device, dtype=dtype), self._cdf.to(device=device, dtype=dtype))
        return self._cache[key]

    def sample(
        self,
        n_shape: int | Sequence[int],
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Times ``t`` of shape ``n_shape`` and their factors :math:`\rho(t)`.

        Arguments:
            n_shape: the shape of the draw.
            generator: the random number generator (on ``device``).
            dtype: the floating dtype of the results (default: the default dtype).
            device: the device of the results.

        Returns:
            ``(t, factor)``, two tensors of shape ``n_shape``.
        """
        shape = _shape(n_shape)
        dtype = dtype or torch.get_default_dtype()
        if not dtype.is_floating_point:
            raise ValueError(f"TimeSampler.sample: `dtype` must be a floating dtype, got {dtype}")
        device = torch.device(device) if device is not None else torch.device("cpu")
        work = torch.float32 if device.type == "mps" else torch.float64  # drawn in float64 where it exists
        span = self.T - self.t_min
        u = torch.rand(shape, generator=generator, dtype=work, device=device)
        if not self.importance:
            t = self.t_min + span * u
            return t.to(dtype), self.weight(t).to(dtype)
        probs, cdf = self._tables(device, work)
        k = torch.searchsorted(cdf[1:-1].contiguous(), u.reshape(-1), right=True).reshape(shape)
        v = torch.rand(shape, generator=generator, dtype=work, device=device)
        t = (self.t_min + (k + v) * (span / self.cells)).clamp(self.t_min, self.T)
        factor = self.weight(t) / (self.cells * probs[k])  # w / (q span) with q = probs / (span / cells)
        return t.to(dtype), factor.to(dtype)

    def __repr__(self) -> str:
        return (
            f"TimeSampler({self.sde!r}, {self.weighting!r}, importance={self.importance}, gamma={self.gamma:g}, "
            f"sigma_data={self.sigma_data:g}, cells={self.cells})"
        )


def dsm_loss(
    denoiser: Denoiser,
    sde: SDE,
    x0: Tensor,
    c: Tensor | None = None,
    *,
    event_dim: int,
    sampler: TimeSampler,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The weighted denoising score-matching loss of each sample, :math:`\rho(t) \lVert \hat\epsilon - \epsilon
    \rVert^2` with :math:`(t, \rho)` from ``sampler``: an unbiased estimate of the objective :math:`\mathcal{L}`.

    Draws one :math:`t` and one :math:`\epsilon \sim \mathcal{N}(0, I)` per sample, forms :math:`x_t = \alpha_t x_0
    + \sigma_t \epsilon` and computes :math:`\lVert \hat\epsilon - \epsilon \rVert^2 = \mathrm{SNR}(t) \lVert
    D(x_t, t, c) - x_0 \rVert^2` (summed over the event dims) in the second, cancellation-free form.

    Arguments:
        denoiser: ``denoiser(x_t, t, c)``, the estimate of :math:`x_0`, with ``t`` of ``x_t``'s batch shape.
        sde: the process (the one ``sampler`` was built for).
        x0: the data, a float tensor whose last ``event_dim`` dims form the event.
        c: the context passed to the denoiser, or None.
        event_dim: the number of event dims of ``x0``.
        sampler: the times and their weights (see :class:`TimeSampler`).
        generator: the random number generator for :math:`t` and :math:`\epsilon`.

    Returns:
        The loss of each sample, of ``x0``'s batch shape; its mean is the training loss.

    Example:
        >>> from gendist.diffusion import VP
        >>> sde = VP()
        >>> sampler = TimeSampler(sde, "min_snr")
        >>> denoiser = lambda x, t, c: torch.zeros_like(x)  # E[x0 | x_t] of data concentrated at 0
        >>> dsm_loss(denoiser, sde, torch.randn(8, 3), event_dim=1, sampler=sampler).shape
        torch.Size([8])
    """
    if not isinstance(sampler, TimeSampler):
        raise TypeError(f"dsm_loss: `sampler` must be a TimeSampler, got {type(sampler).__name__}")
    if sampler.sde is not sde and (sampler.sde.T, sampler.sde.t_min) != (sde.T, sde.t_min):
        raise ValueError(f"dsm_loss: `sampler` was built for {sampler.sde!r}, not {sde!r}")
    if not isinstance(x0, Tensor) or not x0.dtype.is_floating_point:
        raise ValueError(f"dsm_loss: `x0` must be a floating-point tensor, got {getattr(x0, 'dtype', type(x0))}")
    if isinstance(event_dim, bool) or not isinstance(event_dim, int) or not 0 <= event_dim <= x0.dim():
        raise ValueError(
            f"dsm_loss: `event_dim` must be an integer in [0, x0.dim()] = [0, {x0.dim()}], got {event_dim!r}"
        )
    batch = x0.shape[: x0.dim() - event_dim]
    t, factor = sampler.sample(batch, generator=generator, dtype=x0.dtype, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    tt = t.reshape(batch + (1,) * event_dim)
    a, s = sde.alpha(tt), sde.sigma(tt)
    x_t = a * x0 + s * eps
    x0_hat = denoiser(x_t, t, c)
    if not isinstance(x0_hat, Tensor) or x0_hat.shape != x0.shape:
        got = tuple(x0_hat.shape) if isinstance(x0_hat, Tensor) else type(x0_hat).__name__
        raise ValueError(f"dsm_loss: the denoiser must return a tensor of x0's shape {tuple(x0.shape)}, got {got}")
    err = (a / s) * (x0_hat - x0)  # = eps_hat - eps
    mse = err.square().sum(tuple(range(x0.dim() - event_dim, x0.dim()))) if event_dim else err.square()
    return factor * mse
