r"""Langevin samplers: unadjusted (ULA), Metropolis-adjusted (MALA), annealed, and SGLD with a replay buffer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gendist.samplers.buffer import ReplayBuffer
from gendist.samplers.mcmc.core import (
    Callback,
    MCMCResult,
    Target,
    _as,
    _betas,
    _check,
    _check_log_prob,
    _check_positive,
    _finite,
    _Keeper,
    _start,
    _steps,
    check_step_size,
    log_prob_and_grad,
    temper,
)
from gendist.samplers.mcmc.moves import _mala_move, _ula_move


def sample_ula(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    step_size: float = 1e-2,
    keep: int = 0,
    thin: int = 1,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> MCMCResult:
    r"""The unadjusted Langevin algorithm: the Euler–Maruyama discretisation of the Langevin diffusion.

    .. math:: x_{i+1} = x_i + \epsilon \nabla \log f(x_i) + \sqrt{2 \epsilon}\, z_i, \qquad z_i \sim \mathcal{N}(0, I)

    Step and noise are coupled (noise :math:`\sqrt{2\epsilon}`): the chain's stationary law tends to
    :math:`f / Z` as :math:`\epsilon \to 0`, with a bias of order :math:`\epsilon` at a fixed step
    (:func:`sample_mala` removes it).

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states.
        steps: the number of transitions.
        step_size: :math:`\epsilon` (a number, or a tensor broadcasting against ``x``).
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the noise.
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob"}``.

    Example:
        >>> out = sample_ula(lambda x: -0.5 * x.pow(2).sum(-1), torch.zeros(4, 2), 10, step_size=0.1)
        >>> out.x.shape, out.acceptance is None
        (torch.Size([4, 2]), True)

    References:
        | Exponential convergence of Langevin distributions and their discrete approximations
        | (Roberts & Tweedie, 1996)
    """
    name = "sample_ula"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    keeper = _Keeper(steps, keep, thin)
    lp, grad = _start(name, target, x)
    scale = math.sqrt(2.0) * torch.as_tensor(step_size, dtype=x.dtype, device=x.device).sqrt()
    for i in _steps(steps, progress, name):
        x, lp, grad = _ula_move(target, x, grad, step_size, scale, generator, name, i)
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x, "log_prob": lp})
    return MCMCResult(x, keeper.stack(), None, steps, {"step_size": step_size})


def sample_mala(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    step_size: float = 1e-2,
    keep: int = 0,
    thin: int = 1,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> MCMCResult:
    r"""The Metropolis-adjusted Langevin algorithm: a Langevin proposal, accepted by Metropolis–Hastings.

    .. math:: x' = x + \epsilon \nabla \log f(x) + \sqrt{2 \epsilon}\, z, \qquad
        \alpha = \min\Big(1, \frac{f(x')\, q(x \mid x')}{f(x)\, q(x' \mid x)}\Big), \qquad
        \log q(x' \mid x) = -\frac{\lVert x' - x - \epsilon \nabla \log f(x) \rVert^2}{4 \epsilon}

    Its stationary law is exactly :math:`f / Z` for every step size; the acceptance probability of each chain,
    averaged over the steps, is returned (about 0.57 is optimal in high dimension).

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states.
        steps: the number of transitions.
        step_size: :math:`\epsilon` (a number, or a per-chain tensor broadcasting against ``x``).
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the noise and of the accept/reject draws.
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob", "accept"}``.

    Example:
        >>> out = sample_mala(lambda x: -0.5 * x.pow(2).sum(-1), torch.zeros(4, 2), 10, step_size=0.5, keep=5)
        >>> out.samples.shape, out.acceptance.shape
        (torch.Size([5, 4, 2]), torch.Size([4]))

    References:
        | Exponential convergence of Langevin distributions and their discrete approximations
        | (Roberts & Tweedie, 1996)
    """
    name = "sample_mala"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    lp, grad = _start(name, target, x)
    eps = torch.as_tensor(step_size, dtype=x.dtype, device=x.device)
    accepted = torch.zeros_like(lp)
    for i in _steps(steps, progress, name):
        x, lp, grad, alpha = _mala_move(target, x, lp, grad, eps, generator, name, i)
        accepted += alpha
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x, "log_prob": lp, "accept": alpha})
    acceptance = accepted / max(steps, 1)
    return MCMCResult(x, keeper.stack(), acceptance, steps, {"step_size": step_size})


def _levels(steps: int, levels: int) -> list[int]:
    r"""``steps`` split over ``levels``: equal shares, the remainder to the last levels."""
    base, extra = divmod(steps, levels)
    return [base + (k >= levels - extra) for k in range(levels)]


def sample_annealed_langevin(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    keep: int = 0,
    thin: int = 1,
    step_size: float | Tensor = 1e-2,
    betas: int | Sequence[float] | Tensor = 10,
    beta_min: float = 0.01,
    scale_step: bool = True,
    mala: bool = False,
) -> MCMCResult:
    r"""Annealed Langevin dynamics: Langevin steps through the tempered densities :math:`f^{\beta_1}, \dots,
    f^{\beta_K}`, :math:`\beta_1 < \dots < \beta_K = 1`.

    At level :math:`k` the chains take Langevin steps of the tempered log-density :math:`\beta_k \log f`
    (``target(x) * beta``; a target's own ``tempered(beta)`` where it has one),

    .. math:: x \leftarrow x + \epsilon_k \beta_k \nabla \log f(x) + \sqrt{2 \epsilon_k}\, z, \qquad
        \epsilon_k = \epsilon / \beta_k \text{ (with ``scale_step``) or } \epsilon,

    unadjusted (ULA), or accepted by Metropolis–Hastings with ``mala=True`` (then each level leaves
    :math:`f^{\beta_k}` exactly invariant). The flat hot densities let chains cross between modes; the cold
    end brings them to :math:`f`. ``steps`` is split over the levels in equal shares (the remainder to the last
    ones). With ``scale_step`` the step grows as the density widens (:math:`\epsilon_k \beta_k` constant, as
    the step :math:`\alpha_i \propto \sigma_i^2` of Song & Ermon), so every level costs the same number of steps
    to relax. This is a heuristic annealing: the final states follow :math:`f` only once the last level has
    relaxed (and, unadjusted, up to ULA's :math:`O(\epsilon)` bias); unlike AIS, no weights correct them.

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states (usually broad noise).
        steps: the number of transitions, over all levels.
        step_size: :math:`\epsilon` (a number, or a tensor broadcasting against ``x``).
        betas: the inverse temperatures (increasing, the last 1), or a number :math:`K` of them spaced
            geometrically from ``beta_min`` to 1 (:func:`geometric_betas`).
        beta_min: the hottest inverse temperature of the geometric schedule.
        scale_step: take :math:`\epsilon_k = \epsilon / \beta_k` at level :math:`k` (else :math:`\epsilon`).
        mala: Metropolis-adjust every step (the acceptance is returned).
        keep, thin: keep the last ``keep`` states, every ``thin``-th step: they must fall in the last level.
        generator: the source of the noise (and of the accept/reject draws).
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob", "beta", "level"}`` (``log_prob``
            tempered; ``"accept"`` with ``mala``).

    Example:
        >>> target = lambda x: -0.5 * x.pow(2).sum(-1)
        >>> out = sample_annealed_langevin(target, 5 * torch.randn(8, 2), 40, step_size=0.1, betas=4, keep=5)
        >>> out.samples.shape, out.info["steps_per_level"]
        (torch.Size([5, 8, 2]), [10, 10, 10, 10])

    References:
        | Generative modeling by estimating gradients of the data distribution (Song & Ermon, 2019)
        | Optimization by simulated annealing (Kirkpatrick, Gelatt & Vecchi, 1983)
    """
    name = "sample_annealed_langevin"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    b = _betas(name, betas, beta_min, x)
    per = _levels(steps, len(b))
    if keep * thin > per[-1]:
        raise ValueError(f"{name}: cannot keep {keep} states every {thin} steps in the last level, which has "
                         f"{per[-1]} of the {steps} steps ({len(b)} levels); keep fewer or take more steps")
    level_of = [k for k, n in enumerate(per) for _ in range(n)]
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    eps0 = _as(step_size, x)
    accepted = None
    level, t, lp, grad, eps, scale = -1, target, None, None, eps0, eps0
    for i in _steps(steps, progress, name):
        if level_of[i] != level:  # a new level: its tempered target, step, and the log-density there
            level = level_of[i]
            t = temper(target, float(b[level]))
            eps = eps0 / b[level] if scale_step else eps0
            scale = (2 * eps).sqrt()
            lp, grad = log_prob_and_grad(t, x)
            _check_log_prob(name, lp, x)
            _finite(name, i, x, lp, x)
            if accepted is None:
                accepted = torch.zeros_like(lp)
        if mala:
            x, lp, grad, alpha = _mala_move(t, x, lp, grad, eps, generator, name, i)
            accepted += alpha
        else:
            x, lp, grad = _ula_move(t, x, grad, eps, scale, generator, name, i)
        keeper(i, x)
        if callback is not None:
            out = {"i": i, "x": x, "log_prob": lp, "beta": float(b[level]), "level": level}
            callback(out | ({"accept": alpha} if mala else {}))
    if steps == 0:
        _check_log_prob(name, target(x), x)
    acceptance = accepted / steps if mala and accepted is not None else None
    info = {"step_size": step_size, "betas": b, "steps_per_level": per, "scale_step": scale_step}
    return MCMCResult(x, keeper.stack(), acceptance, steps, info)


def sample_sgld(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    keep: int = 0,
    thin: int = 1,
    step_size: float | Tensor = 1e-2,
    noise: float | Tensor | None = None,
    buffer: ReplayBuffer | None = None,
) -> MCMCResult:
    r"""Stochastic-gradient Langevin dynamics, as energy-based models are trained with: Langevin steps on a
    learned (or mini-batch) log-density, from persistent chains of a :class:`ReplayBuffer`.

    .. math:: x_{i+1} = x_i + \epsilon \nabla \log f(x_i) + \sigma z_i, \qquad \sigma = \sqrt{2 \epsilon}
        \text{ by default}

    With the default noise this is Langevin (ULA): its stationary law tends to :math:`f / Z` as
    :math:`\epsilon \to 0`. An explicit ``noise`` :math:`\sigma` decouples the two, as JEM and IGEBM do (e.g.
    :math:`\epsilon = 1, \sigma = 0.01`): this is then **not** Langevin for :math:`f`. For small steps it
    samples :math:`f^{2\epsilon / \sigma^2} / Z'`, a much colder density than :math:`f` when
    :math:`\sigma^2 < 2\epsilon` (nearly gradient ascent to the modes); models trained so are still fitted, but
    their samples are not :math:`f`'s.

    With ``buffer``, the chains are persistent: each chain starts from a state of the buffer (drawn without
    replacement) with probability :math:`1 - \text{reinit}`, else from its entry of ``x`` (fresh states: draw
    them with ``buffer.fresh(n)``, the buffer's ``init``, or your own), and the final states are written back
    into the slots they came from. ``x`` then has one leading chain dimension.

    Arguments:
        target: the log-density up to a constant, one value per chain (the negative energy).
        x: the chains' starting states (with ``buffer``: the fresh states of the chains that restart).
        steps: the number of transitions.
        step_size: :math:`\epsilon` (a number, or a tensor broadcasting against ``x``).
        noise: :math:`\sigma`, the noise scale (default :math:`\sqrt{2\epsilon}`: Langevin; see above).
        buffer: a :class:`ReplayBuffer` of persistent chains.
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the Langevin noise (the buffer draws with its own generator).
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob"}``.

    Example:
        >>> target = lambda x: -0.5 * x.pow(2).sum(-1)
        >>> buf = ReplayBuffer(64, lambda n, g: torch.rand(n, 2, generator=g) * 2 - 1, seed=0)
        >>> out = sample_sgld(target, buf.fresh(16), 20, step_size=0.05, buffer=buf)
        >>> out.x.shape, torch.equal(buf.x[out.info["index"]], out.x)
        (torch.Size([16, 2]), True)

    References:
        | Bayesian learning via stochastic gradient Langevin dynamics (Welling & Teh, 2011)
        | Implicit generation and generalization in energy-based models (Du & Mordatch, 2019)
        | Your classifier is secretly an energy based model (Grathwohl et al., 2020)
    """
    name = "sample_sgld"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    if noise is not None:
        _check_positive(name, "noise", noise)
    index = None
    if buffer is not None:
        if not (callable(getattr(buffer, "sample", None)) and callable(getattr(buffer, "update", None))):
            raise TypeError(f"{name}: `buffer` must be a ReplayBuffer (sample(n, fresh), update(index, x)), got "
                            f"{type(buffer).__name__}")
        x, index = buffer.sample(x.shape[0], fresh=x)
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    lp, grad = _start(name, target, x)
    eps = _as(step_size, x)
    scale = (2 * eps).sqrt() if noise is None else _as(noise, x)
    for i in _steps(steps, progress, name):
        x, lp, grad = _ula_move(target, x, grad, eps, scale, generator, name, i)
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x, "log_prob": lp})
    if buffer is not None:
        buffer.update(index, x)
    info = {"step_size": step_size, "noise": noise, "index": index}
    return MCMCResult(x, keeper.stack(), None, steps, info)
