r"""Samplers: ODE integrators and diffusion samplers (reverse SDE, PC, PF-ODE, DDPM, DDIM, DPM-Solver++); MCMC of
unnormalized densities (ULA, MALA, HMC, annealed Langevin, SGLD with a replay buffer, Gibbs, parallel tempering,
NUTS) and AIS."""

from gendist.samplers.diffusion import (
    SAMPLERS,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_maruyama,
    sample_heun,
    sample_pc,
    sample_rk45,
)
from gendist.samplers.ode import METHODS, ODEError, ODEStats, State, odeint

__all__ = [
    "METHODS",
    "ODEError",
    "ODEStats",
    "SAMPLERS",
    "State",
    "odeint",
    "sample",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_euler_maruyama",
    "sample_heun",
    "sample_pc",
    "sample_rk45",
]
from gendist.samplers.ais import AISResult, ais  # noqa: E402
from gendist.samplers.mcmc import MCMC_SAMPLERS, MCMCError, MCMCResult, sample_mala, sample_ula  # noqa: E402

__all__ += ["AISResult", "MCMCError", "MCMCResult", "MCMC_SAMPLERS", "ais", "sample_mala", "sample_ula"]
from gendist.samplers.buffer import ReplayBuffer  # noqa: E402
from gendist.samplers.mcmc import (  # noqa: E402
    Tempered,
    geometric_betas,
    sample_annealed_langevin,
    sample_gibbs,
    sample_hmc,
    sample_nuts,
    sample_parallel_tempering,
    sample_sgld,
    temper,
)

__all__ += ["ReplayBuffer", "Tempered", "geometric_betas", "sample_annealed_langevin", "sample_gibbs", "sample_hmc",
            "sample_nuts", "sample_parallel_tempering", "sample_sgld", "temper"]
