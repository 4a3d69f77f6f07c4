r"""A bridge to Pyro's No-U-Turn sampler, with the one sampler signature."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gendist._checks import check_integer
from gendist.samplers.mcmc.core import (
    Callback,
    MCMCError,
    MCMCResult,
    Target,
    _check,
    _check_log_prob,
    _finite,
    check_step_size,
)


class _Potential:
    r"""Pyro's potential energy of the joint state of the chains: :math:`-\sum_\text{chains} \log f(x)`."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def __call__(self, params: dict[str, Tensor]) -> Tensor:
        return -self.target(params["x"]).sum()


class _Hook:
    def __init__(self, callback: Callback) -> None:
        self.callback = callback

    def __call__(self, kernel: Any, params: dict[str, Tensor], stage: str, i: int) -> None:
        self.callback({"i": i, "x": params["x"], "stage": stage})


def sample_nuts(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    keep: int = 0,
    thin: int = 1,
    warmup: int | None = None,
    step_size: float = 1.0,
    adapt_step_size: bool = True,
    adapt_mass_matrix: bool = True,
    full_mass: bool = False,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
) -> MCMCResult:
    r"""The No-U-Turn sampler of Pyro (:class:`pyro.infer.mcmc.NUTS` with ``potential_fn``, run by
    :class:`pyro.infer.mcmc.MCMC`): HMC whose trajectories grow until they turn back, after a warmup that adapts
    the step size (dual averaging, to ``target_accept_prob``) and the mass matrix.

    All chains run as **one joint state**: NUTS samples the product :math:`\prod_c f(x_c)` of the chains, with
    one step size, one mass matrix and one trajectory for all (Pyro's own ``num_chains`` runs processes).
    Measured on a correlated 2-D Gaussian (300 warmup + 300 draws, CPU): 4 chains jointly took 3.0 s for an
    effective sample size of about 800 per coordinate, against 6.3 s and 480 for 4 separate runs; 16 chains,
    5.7 s and 4400 against 32 s and 2900. Joint trajectories lengthen slowly with the number of chains (as
    :math:`d^{1/4}`), so this is for small numbers of chains of small targets; a context batch (one target per
    chain) works too, since the target sees the chains' shape.

    ``steps`` draws follow ``warmup`` adaptation steps (default ``steps``); ``acceptance`` is Pyro's mean
    acceptance probability of the joint chain, and ``info`` holds the adapted ``step_size``, the
    ``divergences`` and Pyro's ``diagnostics()`` (split :math:`\hat R` and effective sample sizes).
    Pyro draws from torch's global stream: with a ``generator``, that stream is seeded from it for the run and
    then restored, so the result is reproducible and the caller's stream untouched.

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states.
        steps: the number of draws after warmup.
        warmup: the adaptation steps (default: ``steps``).
        step_size: the initial step size (adapted during warmup with ``adapt_step_size``).
        adapt_step_size, adapt_mass_matrix, full_mass, target_accept_prob, max_tree_depth: NUTS's options.
        keep, thin: keep the last ``keep`` draws, every ``thin``-th.
        generator: seeds the run (see above).
        progress: show Pyro's progress bar.
        callback: called after each step (warmup included) with ``{"i", "x", "stage"}``.

    Example:
        >>> target = lambda x: -0.5 * x.pow(2).sum(-1)
        >>> g = torch.Generator().manual_seed(0)
        >>> out = sample_nuts(target, torch.zeros(2, 2), 20, warmup=20, keep=10, generator=g)
        >>> out.samples.shape, out.acceptance.shape
        (torch.Size([10, 2, 2]), torch.Size([2]))

    References:
        | The No-U-Turn sampler (Hoffman & Gelman, 2014)
        | Pyro: deep universal probabilistic programming (Bingham et al., 2019)
    """
    from pyro.infer.mcmc import MCMC, NUTS

    name = "sample_nuts"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    warmup = steps if warmup is None else check_integer(f"{name}: `warmup`", warmup, low=0)
    max_tree_depth = check_integer(f"{name}: `max_tree_depth`", max_tree_depth, low=1)
    if not 0.0 < float(target_accept_prob) < 1.0:
        raise ValueError(f"{name}: `target_accept_prob` must be in (0, 1), got {target_accept_prob!r}")
    x = x.detach()
    with torch.no_grad():
        lp = target(x)
    _check_log_prob(name, lp, x)
    _finite(name, 0, x, lp, x)
    if steps == 0:
        return MCMCResult(x, None, torch.zeros_like(lp), 0, {"step_size": step_size, "warmup": warmup})
    kernel = NUTS(potential_fn=_Potential(target), step_size=float(step_size), adapt_step_size=adapt_step_size,
                  adapt_mass_matrix=adapt_mass_matrix, full_mass=full_mass, target_accept_prob=target_accept_prob,
                  max_tree_depth=max_tree_depth)
    mcmc = MCMC(kernel, num_samples=steps, warmup_steps=warmup, initial_params={"x": x},
                hook_fn=_Hook(callback) if callback is not None else None, disable_progbar=not progress)
    with torch.enable_grad():  # NUTS differentiates the potential, also when called under no_grad (sample())
        if generator is None:
            mcmc.run()
        else:
            device = generator.device
            seed = int(torch.randint(2**62, (), generator=generator, device=device))
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                torch.manual_seed(seed)
                mcmc.run()
    draws = mcmc.get_samples()["x"].detach()  # (steps, *x.shape)
    bad = ~torch.isfinite(draws).flatten(1).all(1)
    if bool(bad.any()):
        j = int(bad.nonzero()[0])
        raise MCMCError(f"{name}: the chain produced NaN or infinite values at draw {j + 1} (after {warmup} warmup "
                        "steps); the last finite state is `error.state`. Check the energy for NaN",
                        j + 1, draws[j - 1] if j else x)
    kept = None
    if keep:
        kept = draws[steps - keep * thin + thin - 1:: thin]
    diagnostics = mcmc.diagnostics()
    rate = float(diagnostics["acceptance rate"]["chain 0"])
    info = {
        "step_size": kernel.step_size,
        "warmup": warmup,
        "divergences": len(diagnostics["divergences"]["chain 0"]),
        "diagnostics": diagnostics,
    }
    return MCMCResult(draws[-1], kept, torch.full_like(lp, rate), steps, info)
