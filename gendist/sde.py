r"""Diffusion processes as linear SDEs :math:`dx = f(t)\, x\, dt + g(t)\, dw` (Song et al., 2021).

Every process here is linear, so its perturbation kernel is Gaussian,

.. math:: x_t \mid x_0 \sim \mathcal{N}(\alpha_t x_0, \sigma_t^2 I),
    \qquad f(t) = \frac{d \log \alpha_t}{dt}, \qquad
    g(t)^2 = \frac{d \sigma_t^2}{dt} - 2 f(t) \sigma_t^2,

and a process is fully described by :math:`\alpha_t` and :math:`\sigma_t` on
:math:`[0, T]`. Samplers and the probability-flow likelihood only use
:meth:`SDE.alpha`, :meth:`SDE.sigma`, :meth:`SDE.f` and :meth:`SDE.g2`, so they
work with every process: VP with a linear or cosine schedule, sub-VP, VE and
the discrete DDPM schedule embedded as a VP process.

References:
    | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al., 2021)
    | https://arxiv.org/abs/2011.13456
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from gendist._checks import check_integer

__all__ = ["SDE", "VP", "SubVP", "VE", "DDPM", "ReverseSDE", "timesteps", "SDES", "SPACINGS", "make_sde"]

Score = Callable[[Tensor, Tensor], Tensor]
SPACINGS = ("uniform", "logsnr", "karras")


def expand_time(t: Tensor, x: Tensor) -> Tensor:
    r"""``t`` (a scalar or a tensor of ``x``'s leading dims) with trailing singleton dims to broadcast against ``x``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() > x.dim() or t.shape != x.shape[: t.dim()]:
        raise ValueError(
            f"t must be a scalar or have the leading dims of x {tuple(x.shape)}, got shape {tuple(t.shape)}"
        )
    return t.reshape(t.shape + (1,) * (x.dim() - t.dim()))


class ReverseSDE(NamedTuple):
    r"""The reverse-time process given a score: :math:`dx = [f x - c\, g^2 s(x, t)]\, dt + \bar g\, d\bar w`,
    with :math:`c = 1, \bar g = g` for the reverse SDE and :math:`c = 1/2, \bar g = 0` for the probability-flow ODE."""

    drift: Callable[[Tensor, Tensor], Tensor]
    diffusion: Callable[[Tensor], Tensor]


class SDE(abc.ABC):
    r"""A linear diffusion process on :math:`[0, T]` with kernel :math:`\mathcal{N}(\alpha_t x_0, \sigma_t^2 I)`.

    Subclasses define :meth:`log_alpha`, :meth:`sigma`, :meth:`f` and :meth:`g2`
    for a float tensor ``t``; the rest follows.

    Arguments:
        T: the end time.
        t_min: the smallest time samplers and likelihoods use (the process at
            ``t_min`` is what a diffusion model's distribution describes).
    """

    name: str = "sde"

    def __init__(self, T: float = 1.0, t_min: float = 1e-3) -> None:
        if not 0 <= t_min < T:
            raise ValueError(f"{type(self).__name__}: need 0 <= t_min < T, got t_min={t_min}, T={T}")
        self.T, self.t_min = float(T), float(t_min)

    # the process -------------------------------------------------------------------
    @abc.abstractmethod
    def log_alpha(self, t: Tensor) -> Tensor:
        r""":math:`\log \alpha_t`, the log-scale of the kernel's mean."""

    @abc.abstractmethod
    def sigma(self, t: Tensor) -> Tensor:
        r""":math:`\sigma_t`, the kernel's standard deviation."""

    @abc.abstractmethod
    def f(self, t: Tensor) -> Tensor:
        r"""The drift coefficient :math:`f(t) = d \log \alpha_t / dt`."""

    @abc.abstractmethod
    def g2(self, t: Tensor) -> Tensor:
        r"""The squared diffusion coefficient :math:`g(t)^2 = d\sigma_t^2/dt - 2 f(t) \sigma_t^2`."""

    def alpha(self, t: Tensor) -> Tensor:
        return self.log_alpha(t).exp()

    def log_snr(self, t: Tensor) -> Tensor:
        r""":math:`\lambda_t = \log(\alpha_t^2 / \sigma_t^2)`, decreasing in :math:`t`."""
        return 2 * (self.log_alpha(t) - self.sigma(t).log())

    def check_time(self, t: Tensor | float, name: str = "t") -> Tensor:
        r"""``t`` as a tensor, or a clear error if it leaves :math:`[0, T]`."""
        t = torch.as_tensor(t, dtype=torch.get_default_dtype() if not isinstance(t, Tensor) else None)
        if not t.dtype.is_floating_point:
            t = t.to(torch.get_default_dtype())
        if not torch.compiler.is_compiling() and t.numel() and (t.min() < 0 or t.max() > self.T or t.isnan().any()):
            raise ValueError(
                f"{type(self).__name__}: `{name}` must lie in [0, T] = [0, {self.T:g}], "
                f"got values in [{t.min().item():g}, {t.max().item():g}]"
            )
        return t

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        r"""The forward drift :math:`f(t)\, x`."""
        return self.f(expand_time(t, x)) * x

    def diffusion(self, t: Tensor) -> Tensor:
        r"""The forward diffusion coefficient :math:`g(t)`."""
        return self.g2(t).sqrt()

    def marginal(self, x0: Tensor, t: Tensor | float, event_dim: int = 0) -> Distribution:
        r"""The perturbation kernel :math:`p_t(x \mid x_0) = \mathcal{N}(\alpha_t x_0, \sigma_t^2 I)`.

        ``t`` is a scalar or has the leading dims of ``x0`` (one time per sample);
        the last ``event_dim`` dims of ``x0`` form the event.
        """
        t = expand_time(self.check_time(t), x0)
        d = Normal(self.alpha(t) * x0, self.sigma(t).expand_as(x0))
        return Independent(d, event_dim) if event_dim else d

    def prior(self, event_shape: tuple[int, ...], dtype: torch.dtype | None = None, device=None) -> Distribution:
        r"""The distribution at :math:`T` assumed by samplers and likelihoods: :math:`\mathcal{N}(0, \sigma_T^2 I)`."""
        s = self.sigma(torch.tensor(self.T, dtype=dtype or torch.get_default_dtype(), device=device))
        return Independent(Normal(torch.zeros(event_shape, dtype=s.dtype, device=device), s), len(event_shape))

    def reverse(self, score: Score, probability_flow: bool = False) -> ReverseSDE:
        r"""The reverse-time SDE (or, with ``probability_flow``, the probability-flow ODE) for ``score(x, t)``."""
        c = 0.5 if probability_flow else 1.0

        def drift(x: Tensor, t: Tensor) -> Tensor:
            tt = expand_time(t, x)
            return self.f(tt) * x - c * self.g2(tt) * score(x, t)

        def diffusion(t: Tensor) -> Tensor:
            return torch.zeros_like(t) if probability_flow else self.g2(t).sqrt()

        return ReverseSDE(drift, diffusion)

    def time_of_log_snr(self, lam: Tensor) -> Tensor:
        r"""The time with :math:`\lambda_t = ` ``lam``, by bisection in float64 (clamped to :math:`[0, T]`)."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        lo = torch.zeros_like(lam)
        hi = torch.full_like(lam, self.T)
        for _ in range(64):
            mid = (lo + hi) / 2
            above = self.log_snr(mid) > lam  # log-SNR decreases: the root lies later
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return (lo + hi) / 2

    def config(self) -> dict:
        return {"sde": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in self.config().items()
                         if k != "sde")
        return f"{type(self).__name__}({args})"


class VP(SDE):
    r"""The variance-preserving process: :math:`\alpha_t^2 + \sigma_t^2 = 1`, :math:`f = -\beta(t)/2`,
    :math:`g^2 = \beta(t)`.

    ``schedule="linear"``: :math:`\beta(t) = \beta_{\min} + t (\beta_{\max} - \beta_{\min})` (DDPM's
    continuous limit; :math:`\beta_{\max}` is reached at :math:`t = 1` whatever ``T``);
    ``"cosine"``: :math:`\alpha_t^2 = \cos^2(\frac{\pi}{2} \frac{t + s}{1 + s}) /
    \cos^2(\frac{\pi}{2} \frac{s}{1 + s})` with :math:`s = 0.008` (Nichol & Dhariwal, 2021), whose
    default end time :math:`T = 0.9946` keeps :math:`\lambda_T` finite (as DPM-Solver does).

    Example:
        >>> sde = VP()
        >>> t = torch.tensor([0.0, 0.5, 1.0])
        >>> torch.allclose(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, torch.ones(3))
        True
    """

    name = "vp"

    def __init__(
        self,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        schedule: str = "linear",
        s: float = 0.008,
        T: float | None = None,
        t_min: float = 1e-3,
    ) -> None:
        if schedule not in ("linear", "cosine"):
            raise ValueError(f"VP: schedule must be 'linear' or 'cosine', got {schedule!r}")
        if schedule == "linear" and not 0 <= beta_min <= beta_max:
            raise ValueError(f"VP: need 0 <= beta_min <= beta_max, got {beta_min}, {beta_max}")
        if T is None:
            T = 0.9946 if schedule == "cosine" else 1.0
        if schedule == "cosine" and T >= 1:
            raise ValueError(f"VP: the cosine schedule needs T < 1 (alpha vanishes at 1), got T={T}")
        super().__init__(T, t_min)
        self.beta_min, self.beta_max, self.schedule, self.s = float(beta_min), float(beta_max), schedule, float(s)

    def _phi(self, t: Tensor) -> Tensor:
        return (t + self.s) / (1 + self.s) * (math.pi / 2)

    def beta(self, t: Tensor) -> Tensor:
        if self.schedule == "linear":
            return self.beta_min + t * (self.beta_max - self.beta_min)
        return math.pi / (1 + self.s) * torch.tan(self._phi(t))

    def log_alpha(self, t: Tensor) -> Tensor:
        if self.schedule == "linear":
            return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)
        return (torch.cos(self._phi(t)).log() - math.log(math.cos(self.s / (1 + self.s) * math.pi / 2))).clamp(max=0)

    def sigma(self, t: Tensor) -> Tensor:
        return (-torch.expm1(2 * self.log_alpha(t))).clamp(min=0).sqrt()

    def f(self, t: Tensor) -> Tensor:
        return -0.5 * self.beta(t)

    def g2(self, t: Tensor) -> Tensor:
        return self.beta(t)


class SubVP(VP):
    r"""The sub-VP process: VP's :math:`\alpha_t` with :math:`\sigma_t = 1 - \alpha_t^2` (below VP's),
    :math:`g^2 = \beta(t) (1 - \alpha_t^4)`.

    Example:
        >>> sde, t = SubVP(), torch.tensor(0.3)
        >>> bool(sde.sigma(t) < VP().sigma(t))
        True
    """

    name = "subvp"

    def sigma(self, t: Tensor) -> Tensor:
        return -torch.expm1(2 * self.log_alpha(t))

    def g2(self, t: Tensor) -> Tensor:
        return self.beta(t) * -torch.expm1(4 * self.log_alpha(t))


class VE(SDE):
    r"""The variance-exploding process: :math:`\alpha_t = 1`,
    :math:`\sigma_t = \sigma_{\min} (\sigma_{\max} / \sigma_{\min})^{t/T}`,
    :math:`g^2 = 2 \sigma_t^2 \log(\sigma_{\max}/\sigma_{\min}) / T`.

    Example:
        >>> sde = VE(sigma_min=0.01, sigma_max=50.0)
        >>> [round(v, 4) for v in sde.sigma(torch.tensor([0.0, 1.0])).tolist()]
        [0.01, 50.0]
    """

    name = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: float = 1.0, t_min: float = 1e-3) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"VE: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        super().__init__(T, t_min)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def _rate(self) -> float:
        return math.log(self.sigma_max / self.sigma_min) / self.T

    def log_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(self._rate() * t)

    def f(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def g2(self, t: Tensor) -> Tensor:
        return 2 * self._rate() * self.sigma(t) ** 2


class DDPM(SDE):
    r"""The discrete DDPM schedule :math:`\beta_1, \dots, \beta_N` as its VP counterpart on :math:`[0, 1]`.

    Step :math:`i` sits at :math:`t_i = i / N` with
    :math:`\alpha_{t_i}^2 = \bar\alpha_i = \prod_{j \le i} (1 - \beta_j)`;
    between steps :math:`\log \alpha_t` is the cubic Hermite interpolant with central-difference slopes, so
    :math:`f` is continuous (a piecewise-linear interpolant, DPM-Solver's choice, makes :math:`f` jump at every
    step, and adaptive ODE solvers stall on the jumps), and :math:`\alpha_t^2 + \sigma_t^2 = 1`. On the grid
    :math:`t_i`, the DDPM ancestral sampler reproduces
    Ho et al.'s update exactly. ``t_min`` defaults to :math:`1/N` (step 1).

    Arguments:
        betas: the schedule; by default ``steps`` values from ``schedule``: ``"linear"`` (1e-4 to 0.02)
            or ``"cosine"`` (Nichol & Dhariwal, clipped at 0.999).
        steps: :math:`N` when ``betas`` is not given.

    Example:
        >>> sde = DDPM(steps=1000)
        >>> abar = torch.cumprod(1 - sde.betas, 0)
        >>> bool(torch.allclose(sde.alpha(torch.tensor(0.5)) ** 2, abar[499].float()))
        True
    """

    name = "ddpm"

    def __init__(
        self,
        betas: Tensor | list[float] | None = None,
        steps: int = 1000,
        schedule: str = "linear",
        t_min: float | None = None,
    ) -> None:
        if betas is None:
            if schedule == "linear":
                betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
            elif schedule == "cosine":
                i = torch.arange(steps + 1, dtype=torch.float64) / steps
                abar = torch.cos((i + 0.008) / 1.008 * math.pi / 2) ** 2
                betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
            else:
                raise ValueError(f"DDPM: schedule must be 'linear' or 'cosine', got {schedule!r}")
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("DDPM: `betas` must be a non-empty sequence of values in (0, 1)")
        n = betas.numel()
        super().__init__(1.0, 1.0 / n if t_min is None else t_min)
        self.betas = betas
        self.schedule = schedule
        y = torch.cat([betas.new_zeros(1), 0.5 * torch.cumsum(torch.log1p(-betas), 0)])
        slopes = torch.empty_like(y)  # central differences inside, one-sided at the ends (per unit time)
        slopes[1:-1] = (y[2:] - y[:-2]) * n / 2
        slopes[0], slopes[-1] = (y[1] - y[0]) * n, (y[-1] - y[-2]) * n
        self._log_alpha, self._slopes = y, slopes
        self._tables: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def _interp(self, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""The cubic Hermite interpolant of :math:`\log\alpha` through the steps, and its derivative."""
        n = self.betas.numel()
        if t.device not in self._tables:  # copied to a device once, not on every call of a sampler's loop
            self._tables[t.device] = (self._log_alpha.to(t.device), self._slopes.to(t.device))
        y, m = self._tables[t.device]
        u = (t.double() * n).clamp(0, n)
        i = u.floor().long().clamp(max=n - 1)
        u = u - i
        h = 1.0 / n
        y0, y1, m0, m1 = y[i], y[i + 1], m[i] * h, m[i + 1] * h
        value = (2 * u**3 - 3 * u**2 + 1) * y0 + (u**3 - 2 * u**2 + u) * m0 + (3 * u**2 - 2 * u**3) * y1 + (
            u**3 - u**2) * m1
        slope = ((6 * u**2 - 6 * u) * (y0 - y1) + (3 * u**2 - 4 * u + 1) * m0 + (3 * u**2 - 2 * u) * m1) / h
        return value.to(t.dtype), slope.to(t.dtype)

    def log_alpha(self, t: Tensor) -> Tensor:
        return self._interp(t)[0]

    def sigma(self, t: Tensor) -> Tensor:
        return (-torch.expm1(2 * self.log_alpha(t))).clamp(min=0).sqrt()

    def f(self, t: Tensor) -> Tensor:
        return self._interp(t)[1]

    def g2(self, t: Tensor) -> Tensor:
        return -2 * self.f(t)

    def config(self) -> dict:
        return {"sde": self.name, "betas": self.betas.tolist(), "schedule": self.schedule, "t_min": self.t_min}

    def __repr__(self) -> str:
        return f"DDPM(steps={self.betas.numel()}, schedule={self.schedule!r}, t_min={self.t_min:g})"


_SDES = {"vp": VP, "subvp": SubVP, "ve": VE, "ddpm": DDPM}
SDES = tuple(_SDES)
r"""The names :func:`make_sde` takes: ``"vp"``, ``"subvp"``, ``"ve"``, ``"ddpm"``."""


def make_sde(spec: str | dict | SDE, **kwargs) -> SDE:
    r"""An :class:`SDE` from a name (``"vp"``, ``"subvp"``, ``"ve"``, ``"ddpm"``) and keyword arguments,
    or from the dict :meth:`SDE.config` wrote."""
    if isinstance(spec, SDE):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("sde")
        if name == "ddpm":
            spec.pop("T", None)  # fixed at 1
        return make_sde(name, **spec, **kwargs)
    if spec not in _SDES:
        raise ValueError(f"unknown SDE {spec!r}; expected one of {sorted(_SDES)}")
    return _SDES[spec](**kwargs)


def timesteps(
    sde: SDE,
    steps: int,
    spacing: str = "uniform",
    t_min: float | None = None,
    rho: float = 7.0,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""``steps + 1`` decreasing times from :math:`T` to ``t_min`` (default: ``sde.t_min``).

    ``spacing``: ``"uniform"`` in :math:`t`; ``"logsnr"`` uniform in :math:`\lambda_t` (DPM-Solver);
    ``"karras"``: :math:`\tilde\sigma = \sigma_t/\alpha_t` spaced as
    :math:`(\tilde\sigma_{\max}^{1/\rho}
    + \frac{i}{n}(\tilde\sigma_{\min}^{1/\rho} - \tilde\sigma_{\max}^{1/\rho}))^\rho`
    (Karras et al., 2022). A ``t_min`` of 0 ends the grid at the data (samplers then return the
    denoised estimate on their last step).

    Example:
        >>> [round(t, 5) for t in timesteps(VP(), 4).tolist()]
        [1.0, 0.75025, 0.5005, 0.25075, 0.001]
    """
    check_integer("timesteps: `steps`", steps, low=1)
    if spacing not in SPACINGS:
        raise ValueError(f"timesteps: `spacing` must be one of {SPACINGS}, got {spacing!r}")
    lo = sde.t_min if t_min is None else float(t_min)
    sde.check_time(lo, "t_min")
    dtype = dtype or torch.get_default_dtype()
    end = lo
    if spacing != "uniform" and lo == 0:
        lo = sde.t_min if sde.t_min > 0 else 1e-5  # the last step then goes to 0
        steps -= 1
    if steps == 0:
        return torch.tensor([sde.T, end], dtype=dtype)
    i = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    hi_lo = torch.tensor([sde.T, lo], dtype=torch.float64)
    if spacing == "uniform":
        t = sde.T + i * (lo - sde.T)
    elif spacing == "logsnr":
        lam = sde.log_snr(hi_lo)
        t = sde.time_of_log_snr(lam[0] + i * (lam[1] - lam[0]))
    else:
        smax, smin = (-sde.log_snr(hi_lo) / 2).exp() ** (1 / rho)
        t = sde.time_of_log_snr(-2 * (smax + i * (smin - smax)).pow(rho).log())
    t[0], t[-1] = sde.T, lo
    if end != lo:
        t = torch.cat([t, t.new_zeros(1)])
    return t.to(dtype)
