"""The public checks of gendist.testing on diffusion models, over processes, parametrizations and contexts.

A diffusion model's distribution is a continuous normalizing flow (the probability-flow ODE from the prior),
so its log_prob must integrate to 1 and agree with its default (rk45) sampler whatever the network's
weights: both are checked on untrained, perturbed networks, in 1-D where quadrature is exact.
"""

import pytest
import torch

from gendist.diffusion import DiffusionModel
from gendist.testing import (
    check_bad_inputs,
    check_float64,
    check_gradients,
    check_log_prob_kind,
    check_normalized,
    check_pyro,
    check_sample_log_prob,
    check_shapes,
    check_state_dict,
)
from gendist.testing.registry import perturb

FAST = {"hidden": (16, 16), "method": "rk4", "ode_steps": 16, "sampler": "ddim", "steps": 4}  # fixed grids
CONFIGS = {
    "vp-eps": {"sde": "vp"},
    "vp-cosine-v": {"sde": "vp", "schedule": "cosine", "parametrization": "v"},
    "subvp-x0": {"sde": "subvp", "parametrization": "x0"},
    "ve-edm": {"sde": "ve", "sigma_max": 10.0, "parametrization": "edm", "sigma_data": 0.5},
    "ddpm-score": {"sde": "ddpm", "ddpm_steps": 100, "parametrization": "score"},
    "vp-context": {"sde": "vp", "context": 2},
    "vp-gaussian-features": {"sde": "vp", "parametrization": "gaussian", "features": 8, "feature_scale": 0.5,
                             "dropout": 0.1},
}


def _model(name, shape=1, seed=0):
    torch.manual_seed(seed)
    module = DiffusionModel(shape, **{**FAST, **CONFIGS[name]})
    if module.denoiser.parametrization == "gaussian":  # a fitted Gaussian, correlated in 2-D
        module.fit_gaussian(torch.randn(100, shape) @ torch.full((shape, shape), 0.7).tril() + 1.5)
    return perturb(module, 0.3, torch.Generator().manual_seed(seed)).eval()


def _context(module, *batch):
    return torch.randn(*batch, module.context) if module.context else None


@pytest.mark.parametrize("name", CONFIGS)
def test_shapes_kind_and_bad_inputs(name):
    module = _model(name, shape=2)
    d = module(_context(module, 2))
    check_log_prob_kind(d)
    check_shapes(d)
    check_bad_inputs(d)
    check_pyro(module(_context(module, 3)))


@pytest.mark.parametrize("name", CONFIGS)
def test_float64_state_dict_gradients(name):
    module = _model(name, shape=2)
    c = _context(module, 3)
    check_float64(module, c)
    check_state_dict(lambda: DiffusionModel(2, **{**FAST, **CONFIGS[name]}), c)
    check_gradients(module, module(c).sample(), c)


@pytest.mark.parametrize("name", ["vp-eps", "ve-edm", "ddpm-score", "vp-gaussian-features"])
def test_normalized_and_sampled_by_its_density(name):
    module = _model(name, shape=1)
    d = module(method="dopri5", ode_steps=None, rtol=1e-6, atol=1e-6, sampler="rk45")  # the exact flow
    x = d.sample((2000,))
    pad = 0.75 * (x.max() - x.min())
    check_normalized(d, low=x.min() - pad, high=x.max() + pad, points=2001)
    # random Fourier features make the perturbed network wiggly in x: 16 steps of DPM-Solver++ are too coarse
    steps = 64 if CONFIGS[name].get("features") else 16
    check_sample_log_prob(module(sampler="dpmpp_2m", steps=steps), n=1500, fused=False, rounds=1)
