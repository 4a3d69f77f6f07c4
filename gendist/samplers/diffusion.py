r"""Samplers for diffusion models: reverse SDE, predictor–corrector, probability-flow ODE, DDPM, DDIM, DPM-Solver++.

Every sampler has one signature, ``sample_xxx(model, sde, x, ts, *, callback, progress, generator, ...)``,
and owns its loop. ``model(x, t)`` is the denoiser :math:`\hat x_0 = D(x_t, t) \approx E[x_0 \mid x_t]` (``t``
a 0-dim tensor of ``x``'s dtype and device), from which the score is
:math:`\nabla \log p_t(x) \approx (\alpha_t \hat x_0 - x) / \sigma_t^2`. ``x`` is the state at ``ts[0]``
(usually a draw from :meth:`~gendist.sde.SDE.prior`) and ``ts`` a decreasing grid from
:func:`~gendist.sde.timesteps`; the result is the state at ``ts[-1]``. When ``ts[-1] == 0`` the
model is never evaluated at 0: the last step returns the denoised estimate at ``ts[-2]`` (for ``rk45``, at the
end of its solve).

With the linear SDE's kernel :math:`\mathcal{N}(\alpha_t x_0, \sigma_t^2 I)`, the probability-flow ODE is

.. math:: \frac{dx}{dt} = f(t)\, x - \frac12 g(t)^2 \nabla \log p_t(x)

and the reverse SDE doubles the score term and adds :math:`g(t)\, d\bar w`.

Network evaluations (NFE) per step: one for ``euler_maruyama``, ``euler``, ``ddpm``, ``ddim`` and ``dpmpp_2m``;
``corrector_steps + 1`` for ``pc``; two for ``heun`` (one on a last step to 0); ``rk45`` is adaptive (six per
accepted step). Every sampler is differentiable with respect to ``x`` and the model's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gendist._checks import check_integer
from gendist.samplers.ode import odeint
from gendist.sde import SDE

__all__ = [
    "SAMPLERS",
    "sample",
    "sample_euler_maruyama",
    "sample_pc",
    "sample_euler",
    "sample_heun",
    "sample_rk45",
    "sample_ddpm",
    "sample_ddim",
    "sample_dpmpp_2m",
]

Model = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[dict[str, Any]], None]


# helpers ------------------------------------------------------------------------------------------
def _grid(sde: SDE, x: Tensor, ts: Tensor, name: str) -> Tensor:
    r"""``ts`` on ``x``'s dtype and device, or a ``ValueError`` naming it."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"{name}: `x` must be a floating tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    ts = torch.as_tensor(ts).to(dtype=x.dtype, device=x.device)
    if ts.dim() != 1 or ts.numel() < 2:
        raise ValueError(f"{name}: `ts` must be a 1-D grid of at least 2 times (one step), got shape {tuple(ts.shape)}")
    sde.check_time(ts, "ts")
    if not bool((ts[1:] < ts[:-1]).all()):
        shown = ", ".join(f"{v:g}" for v in ts[:8].tolist()) + (", ..." if ts.numel() > 8 else "")
        raise ValueError(f"{name}: `ts` must be strictly decreasing (from noise to data), got [{shown}]")
    return ts


def _steps(ts: Tensor, progress: bool) -> Iterator[tuple[int, Tensor, Tensor, bool]]:
    r"""``(i, t_i, t_{i+1}, last)`` for every step, ``last`` true on a final step to 0 (read once, not per step)."""
    n, to_zero = len(ts) - 1, bool(ts[-1] == 0)
    for i in tqdm(range(n), disable=not progress, leave=False):
        yield i, ts[i], ts[i + 1], to_zero and i == n - 1


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _score(sde: SDE, x: Tensor, t: Tensor, denoised: Tensor) -> Tensor:
    return (sde.alpha(t) * denoised - x) / sde.sigma(t) ** 2


def _reverse_sde_step(
    sde: SDE, x: Tensor, t: Tensor, s: Tensor, denoised: Tensor, generator: torch.Generator | None
) -> Tensor:
    r"""One Euler–Maruyama step of the reverse SDE from ``t`` to ``s < t``."""
    dt = s - t
    drift = sde.f(t) * x - sde.g2(t) * _score(sde, x, t, denoised)
    return x + drift * dt + (sde.g2(t) * -dt).sqrt() * _noise(x, generator)


def _report(callback: Callback | None, i: int, t: Tensor, x: Tensor, denoised: Tensor) -> None:
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": denoised})


# SDE samplers ---------------------------------------------------------------------------------------
def sample_euler_maruyama(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Euler–Maruyama on the reverse SDE (one network evaluation per step).

    .. math:: x_{i+1} = x_i + \left[f(t_i)\, x_i - g(t_i)^2 s(x_i, t_i)\right] (t_{i+1} - t_i)
        + g(t_i) \sqrt{t_i - t_{i+1}}\, z_i, \qquad z_i \sim \mathcal{N}(0, I).

    Arguments:
        model: the denoiser ``model(x, t)``.
        sde: the process.
        x: the state at ``ts[0]``.
        ts: the decreasing times.
        callback: called after each evaluation with ``{"i", "t", "x", "denoised"}``.
        progress: show a progress bar.
        generator: the source of the noise.

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_euler_maruyama(gm.denoiser, gm.sde, x, timesteps(gm.sde, 10)).shape
        torch.Size([5, 2])

    References:
        | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al., 2021)
        | https://arxiv.org/abs/2011.13456
    """
    ts = _grid(sde, x, ts, "sample_euler_maruyama")
    for i, t, s, last in _steps(ts, progress):
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        x = _reverse_sde_step(sde, x, t, s, denoised, generator)
    return x


def sample_pc(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
    snr: float = 0.16,
    corrector_steps: int = 1,
) -> Tensor:
    r"""Predictor–corrector sampling: Langevin corrector steps at :math:`t_i`, then a reverse-diffusion
    (Euler–Maruyama) predictor step to :math:`t_{i+1}` (``corrector_steps + 1`` network evaluations per step).

    Each corrector step is :math:`x \leftarrow x + \epsilon\, s(x, t_i) + \sqrt{2 \epsilon}\, z` with the
    step size of the signal-to-noise rule :math:`\epsilon = 2 a_i (r \lVert z \rVert / \lVert s \rVert)^2`,
    norms over the whole batch, :math:`r` = ``snr`` and :math:`a_i = (\alpha_{t_i} / \alpha_{t_{i+1}})^2`
    (:math:`1 - \beta_i` for VP, 1 for VE).

    Arguments:
        model, sde, x, ts, callback, progress, generator: as :func:`sample_euler_maruyama`.
        snr: the signal-to-noise ratio :math:`r` of the corrector.
        corrector_steps: Langevin steps per time.

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VE, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VE(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_pc(gm.denoiser, gm.sde, x, timesteps(gm.sde, 10), snr=0.1).shape
        torch.Size([5, 2])

    References:
        | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al., 2021)
        | https://arxiv.org/abs/2011.13456
    """
    if not snr >= 0:
        raise ValueError(f"sample_pc: `snr` must be >= 0, got {snr!r}")
    check_integer("sample_pc: `corrector_steps`", corrector_steps, low=0)
    ts = _grid(sde, x, ts, "sample_pc")
    for i, t, s, last in _steps(ts, progress):
        a_i = torch.ones_like(t) if last else (sde.alpha(t) / sde.alpha(s)) ** 2
        for _ in range(corrector_steps):
            score = _score(sde, x, t, model(x, t))
            z = _noise(x, generator)
            eps = 2 * a_i * (snr * z.norm() / score.norm()) ** 2
            x = x + eps * score + (2 * eps).sqrt() * z
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        x = _reverse_sde_step(sde, x, t, s, denoised, generator)
    return x


# probability-flow ODE samplers --------------------------------------------------------------------------
def _velocity(sde: SDE, x: Tensor, t: Tensor, denoised: Tensor) -> Tensor:
    r"""The probability-flow velocity :math:`f(t) x - \frac12 g(t)^2 s(x, t)`."""
    return sde.f(t) * x - 0.5 * sde.g2(t) * _score(sde, x, t, denoised)


def sample_euler(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Euler's method on the probability-flow ODE in :math:`t` (one network evaluation per step, order 1).

    .. math:: x_{i+1} = x_i + (t_{i+1} - t_i) \left[f(t_i)\, x_i - \tfrac12 g(t_i)^2 s(x_i, t_i)\right].

    Arguments:
        model, sde, x, ts, callback, progress: as :func:`sample_euler_maruyama`.
        generator: unused (deterministic).

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_euler(gm.denoiser, gm.sde, x, timesteps(gm.sde, 10)).shape
        torch.Size([5, 2])

    References:
        | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al., 2021)
        | https://arxiv.org/abs/2011.13456
    """
    ts = _grid(sde, x, ts, "sample_euler")
    for i, t, s, last in _steps(ts, progress):
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        x = x + (s - t) * _velocity(sde, x, t, denoised)
    return x


def sample_heun(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Heun's method on the probability-flow ODE in :math:`t` (two network evaluations per step, one on a
    last step to 0; order 2).

    With :math:`v` the probability-flow velocity and :math:`h = t_{i+1} - t_i`,

    .. math:: \tilde x = x_i + h\, v(x_i, t_i), \qquad
        x_{i+1} = x_i + \tfrac{h}{2} \left[v(x_i, t_i) + v(\tilde x, t_{i+1})\right],

    Karras et al.'s Algorithm 1 for a general schedule; a last step to :math:`t = 0` returns the
    denoised estimate (their Euler step to :math:`\sigma = 0`).

    Arguments:
        model, sde, x, ts, callback, progress: as :func:`sample_euler_maruyama`.
        generator: unused (deterministic).

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_heun(gm.denoiser, gm.sde, x, timesteps(gm.sde, 10, t_min=0.0)).shape
        torch.Size([5, 2])

    References:
        | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., 2022)
        | https://arxiv.org/abs/2206.00364
    """
    ts = _grid(sde, x, ts, "sample_heun")
    for i, t, s, last in _steps(ts, progress):
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        h, d = s - t, _velocity(sde, x, t, denoised)
        x_euler = x + h * d
        d_next = _velocity(sde, x_euler, s, model(x_euler, s))
        x = x + h / 2 * (d + d_next)
    return x


def sample_rk45(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 10_000,
) -> Tensor:
    r"""The probability-flow ODE solved by adaptive Dormand–Prince 5(4) (:func:`~gendist.samplers.ode.odeint`)
    from ``ts[0]`` to ``ts[-1]``; only the endpoints of ``ts`` matter (six network evaluations per accepted
    step, seven per rejected one, two to start).

    If ``ts[-1] == 0`` it integrates to the smallest time the model is trusted at, ``sde.t_min`` (or ``ts[-2]``
    if smaller, or if ``sde.t_min`` is 0), and returns the denoised estimate there. ``callback``
    is called on every network evaluation, ``i`` counting them.

    Arguments:
        model, sde, x, ts, callback, progress: as :func:`sample_euler_maruyama`.
        generator: unused (deterministic).
        rtol, atol, max_steps: the solver's tolerances and step limit.

    Returns:
        The state at ``ts[-1]``.

    Raises:
        ODEError: if the solver cannot reach the tolerance.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_rk45(gm.denoiser, gm.sde, x, timesteps(gm.sde, 1), rtol=1e-3, atol=1e-3).shape
        torch.Size([5, 2])

    References:
        | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al., 2021)
        | https://arxiv.org/abs/2011.13456
        | A family of embedded Runge-Kutta formulae (Dormand & Prince, 1980)
        | https://doi.org/10.1016/0771-050X(80)90013-3
    """
    ts = _grid(sde, x, ts, "sample_rk45")
    t_end = ts[-1]
    if t_end == 0:
        t_end = ts[-2].clamp(max=sde.t_min) if sde.t_min > 0 else ts[-2]
    bar, nfe = tqdm(disable=not progress, leave=False, unit="nfe"), 0

    def velocity(t: Tensor, y: Tensor) -> Tensor:
        nonlocal nfe
        denoised = model(y, t)
        _report(callback, nfe, t, y, denoised)
        nfe += 1
        bar.update()
        return _velocity(sde, y, t, denoised)

    try:
        if t_end < ts[0]:
            x, _ = odeint(velocity, x, float(ts[0]), float(t_end), rtol=rtol, atol=atol, max_steps=max_steps)
        if ts[-1] == 0:
            t_end = t_end.clone()
            denoised = model(x, t_end)
            _report(callback, nfe, t_end, x, denoised)
            x = denoised
    finally:
        bar.close()
    return x


# discrete-time samplers ---------------------------------------------------------------------------------
def _ratio(sde: SDE, t: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`r = e^{\lambda_t - \lambda_s} = \alpha_t^2 \sigma_s^2 / (\alpha_s^2 \sigma_t^2)`, in (0, 1) for
    :math:`s < t`, and :math:`1 - r = \sigma_{t|s}^2 / \sigma_t^2` (without cancellation)."""
    dlam = sde.log_snr(t) - sde.log_snr(s)
    return dlam.exp(), -torch.expm1(dlam)


def sample_ddpm(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Ancestral sampling from the Gaussian posterior :math:`q(x_s \mid x_t, \hat x_0)` of the linear SDE
    (one network evaluation per step).

    With :math:`\alpha_{t|s} = \alpha_t / \alpha_s`, :math:`\sigma_{t|s}^2 = \sigma_t^2 - \alpha_{t|s}^2 \sigma_s^2`
    and :math:`s < t` the next time,

    .. math:: x_s = \frac{\alpha_{t|s} \sigma_s^2}{\sigma_t^2} x_t + \frac{\alpha_s \sigma_{t|s}^2}{\sigma_t^2}
        \hat x_0 + \frac{\sigma_{t|s} \sigma_s}{\sigma_t} z,

    computed as :math:`\alpha_s (r x_t / \alpha_t + (1 - r) \hat x_0) + \sigma_s \sqrt{1 - r}\, z` with
    :math:`r = e^{\lambda_t - \lambda_s}` (:math:`\lambda` the log-SNR). On the DDPM process's grid
    :math:`t_i = i / N` this is Ho et al.'s update; for VE it is Song et al.'s ancestral sampler. A last
    step to 0 (:math:`\alpha = 1, \sigma = 0`) returns :math:`\hat x_0`.

    Arguments:
        model, sde, x, ts, callback, progress, generator: as :func:`sample_euler_maruyama`.

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import DDPM, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(DDPM(steps=100), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_ddpm(gm.denoiser, gm.sde, x, timesteps(gm.sde, 99)).shape
        torch.Size([5, 2])

    References:
        | Denoising Diffusion Probabilistic Models (Ho et al., 2020)
        | https://arxiv.org/abs/2006.11239
    """
    ts = _grid(sde, x, ts, "sample_ddpm")
    for i, t, s, last in _steps(ts, progress):
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        (r, one_minus_r), a_s = _ratio(sde, t, s), sde.alpha(s)
        mean = a_s * (r * x / sde.alpha(t) + one_minus_r * denoised)
        x = mean + sde.sigma(s) * one_minus_r.sqrt() * _noise(x, generator)
    return x


def sample_ddim(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
) -> Tensor:
    r"""DDIM (one network evaluation per step): deterministic for ``eta=0`` (the first-order exponential
    integrator of the probability-flow ODE), ancestral DDPM for ``eta=1``.

    With :math:`\hat\epsilon = (x_t - \alpha_t \hat x_0) / \sigma_t`, :math:`r = e^{\lambda_t - \lambda_s}`
    and :math:`c = \eta\, \sigma_s \sqrt{1 - r}` (:math:`\eta` times the posterior standard deviation),

    .. math:: x_s = \alpha_s \hat x_0 + \sqrt{\sigma_s^2 - c^2}\, \hat\epsilon + c\, z.

    A last step to 0 returns :math:`\hat x_0`.

    Arguments:
        model, sde, x, ts, callback, progress, generator: as :func:`sample_euler_maruyama`.
        eta: the stochasticity :math:`\eta \in [0, 1]`.

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_ddim(gm.denoiser, gm.sde, x, timesteps(gm.sde, 10, "logsnr")).shape
        torch.Size([5, 2])

    References:
        | Denoising Diffusion Implicit Models (Song et al., 2021)
        | https://arxiv.org/abs/2010.02502
    """
    if not 0 <= eta <= 1:
        raise ValueError(f"sample_ddim: `eta` must lie in [0, 1], got {eta!r}")
    ts = _grid(sde, x, ts, "sample_ddim")
    for i, t, s, last in _steps(ts, progress):
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        (_, one_minus_r), sigma_s = _ratio(sde, t, s), sde.sigma(s)
        eps = (x - sde.alpha(t) * denoised) / sde.sigma(t)
        x = sde.alpha(s) * denoised + sigma_s * (1 - eta**2 * one_minus_r).sqrt() * eps
        if eta > 0:
            x = x + eta * sigma_s * one_minus_r.sqrt() * _noise(x, generator)
    return x


def sample_dpmpp_2m(
    model: Model,
    sde: SDE,
    x: Tensor,
    ts: Tensor,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""DPM-Solver++(2M), the second-order multistep solver of the probability-flow ODE in the data prediction
    (one network evaluation per step).

    With :math:`\lambda = \log(\alpha / \sigma)` and :math:`h_i = \lambda_{t_{i+1}} - \lambda_{t_i}`,

    .. math:: x_{i+1} = \frac{\sigma_{t_{i+1}}}{\sigma_{t_i}} x_i - \alpha_{t_{i+1}} (e^{-h_i} - 1) D_i,
        \qquad D_i = \left(1 + \frac{1}{2 r_i}\right) \hat x_0^{(i)} - \frac{1}{2 r_i} \hat x_0^{(i-1)},
        \quad r_i = \frac{h_{i-1}}{h_i},

    and :math:`D_0 = \hat x_0^{(0)}` (a first-order, DDIM step). A last step to 0 returns :math:`\hat x_0`.

    Arguments:
        model, sde, x, ts, callback, progress: as :func:`sample_euler_maruyama`.
        generator: unused (deterministic).

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample_dpmpp_2m(gm.denoiser, gm.sde, x, timesteps(gm.sde, 10, "logsnr")).shape
        torch.Size([5, 2])

    References:
        | DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models (Lu et al., 2022)
        | https://arxiv.org/abs/2211.01095
    """
    ts = _grid(sde, x, ts, "sample_dpmpp_2m")
    lam = sde.log_snr(ts[ts > 0]) / 2
    old, h_last = None, None
    for i, t, s, last in _steps(ts, progress):
        denoised = model(x, t)
        _report(callback, i, t, x, denoised)
        if last:
            x = denoised
            break
        h = lam[i + 1] - lam[i]
        d = denoised
        if old is not None:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - 1 / (2 * r) * old
        x = sde.sigma(s) / sde.sigma(t) * x - sde.alpha(s) * torch.expm1(-h) * d
        old, h_last = denoised, h
    return x


SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "euler_maruyama": sample_euler_maruyama,
    "pc": sample_pc,
    "euler": sample_euler,
    "heun": sample_heun,
    "rk45": sample_rk45,
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
}


def sample(name: str, model: Model, sde: SDE, x: Tensor, ts: Tensor, **options: Any) -> Tensor:
    r"""Runs the sampler ``SAMPLERS[name]`` with keyword ``options``.

    Arguments:
        name: a key of :data:`SAMPLERS`.
        model, sde, x, ts: as :func:`sample_euler_maruyama`.
        options: ``callback``, ``progress``, ``generator`` and the sampler's own options.

    Returns:
        The state at ``ts[-1]``.

    Example:
        >>> from gendist.diffusion import VP, timesteps
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(1), torch.zeros(1, 2), 1.0)
        >>> x = gm.sde.prior((2,)).sample((5,))
        >>> sample("ddim", gm.denoiser, gm.sde, x, timesteps(gm.sde, 5), eta=0.5).shape
        torch.Size([5, 2])
    """
    if name not in SAMPLERS:
        raise ValueError(f"sample: unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](model, sde, x, ts, **options)
