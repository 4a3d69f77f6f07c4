r"""Samplers: ODE integrators and diffusion samplers (reverse SDE, PC, PF-ODE, DDPM, DDIM, DPM-Solver++)."""

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
