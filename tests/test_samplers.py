"""Diffusion samplers on Gaussian-mixture data with the exact denoiser: distributions, convergence, contracts."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gendist.diffusion import DDPM, VE, VP, SubVP, timesteps
from gendist.metrics.two_sample import energy_distance
from gendist.samplers import (
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
from gendist.testing.diffusion import DiffusedMixture

F64 = torch.float64
SDES = {"vp": lambda: VP(), "ve": lambda: VE(), "subvp": lambda: SubVP(), "ddpm": lambda: DDPM(steps=1000)}
# steps and spacing per sampler for the distribution test (rk45 is adaptive: one step, the endpoints)
CONFIGS = {
    "euler_maruyama": (100, "uniform"),
    "pc": (100, "uniform"),
    "euler": (200, "uniform"),
    "ddpm": (100, "uniform"),
    "heun": (30, "uniform"),
    "ddim": (50, "uniform"),
    "dpmpp_2m": (30, "logsnr"),
    "rk45": (1, "uniform"),
}
ODE_SAMPLERS = {"euler": sample_euler, "heun": sample_heun, "ddim": sample_ddim, "dpmpp_2m": sample_dpmpp_2m}


def mixture(sde):
    weights = torch.tensor([0.3, 0.7], dtype=F64)
    means = torch.tensor([[-2.0, -1.0], [1.5, 1.0]], dtype=F64)
    return DiffusedMixture(sde, weights, means, torch.tensor([0.5, 0.4], dtype=F64))


def prior_noise(sde, n, generator):
    return torch.randn(n, 2, generator=generator, dtype=F64) * sde.sigma(torch.tensor(sde.T, dtype=F64))


def guarded(gm, calls=None):
    """The exact denoiser, checking the contract: 0-dim float64 time, never t == 0."""

    def model(x, t):
        assert t.dim() == 0 and t.dtype == x.dtype == F64
        assert t > 0, "the model was evaluated at t == 0"
        if calls is not None:
            calls.append(t.item())
        return gm.denoiser(x, t)

    return model


@pytest.mark.parametrize("sampler", list(CONFIGS))
@pytest.mark.parametrize("sde_name", list(SDES))
def test_distribution(sde_name, sampler):
    sde = SDES[sde_name]()
    gm = mixture(sde)
    steps, spacing = CONFIGS[sampler]
    ts = timesteps(sde, steps, spacing, dtype=F64)
    g = torch.Generator().manual_seed(0)
    x = sample(sampler, guarded(gm), sde, prior_noise(sde, 1000, g), ts, generator=g)
    assert x.shape == (1000, 2) and x.dtype == F64 and torch.isfinite(x).all()
    torch.manual_seed(1)
    ref = gm.marginal(ts[-1]).sample((1000,))
    assert energy_distance(x, ref).p_value > 0.01


@pytest.mark.parametrize("sampler", list(CONFIGS))
def test_to_zero(sampler):
    # a grid ending at t = 0: the model is never evaluated there, the last step returns the denoised estimate
    sde = VP()
    gm = mixture(sde)
    steps, spacing = CONFIGS[sampler]
    ts = timesteps(sde, max(steps // 2, 1), spacing, t_min=0.0, dtype=F64)
    assert ts[-1] == 0
    g = torch.Generator().manual_seed(0)
    x = sample(sampler, guarded(gm), sde, prior_noise(sde, 1000, g), ts, generator=g)
    torch.manual_seed(1)
    assert energy_distance(x, gm.data().sample((1000,))).p_value > 0.01


@pytest.mark.parametrize("sde_name", ["vp", "ve"])
def test_ode_convergence(sde_name):
    # pathwise error against a tight adaptive solve of the probability-flow ODE from the same noise
    sde = SDES[sde_name]()
    gm = mixture(sde)
    x = prior_noise(sde, 100, torch.Generator().manual_seed(0))
    exact = sample_rk45(gm.denoiser, sde, x, timesteps(sde, 1, dtype=F64), rtol=1e-7, atol=1e-7)
    for name, sampler in ODE_SAMPLERS.items():
        spacing = "logsnr" if name == "dpmpp_2m" else "uniform"
        errors = [
            (sampler(gm.denoiser, sde, x, timesteps(sde, n, spacing, dtype=F64)) - exact).norm(dim=-1).mean().item()
            for n in (5, 10, 40)
        ]
        assert errors[0] > errors[1] > errors[2], (name, errors)
        if name in ("heun", "dpmpp_2m"):  # second order: 4x the steps, well over 4x smaller error
            assert errors[2] < errors[1] / 6, (name, errors)


@pytest.mark.parametrize("sampler", ["euler_maruyama", "pc", "ddpm"])
def test_weak_convergence(sampler):
    # the error of the second moment, with a fixed generator, falls from 5 to 200 steps
    sde = VP()
    gm = mixture(sde)
    exact = gm.marginal(sde.t_min)
    second = exact.variance + exact.mean**2
    errors = []
    for n in (5, 200):
        g = torch.Generator().manual_seed(1)
        x = SAMPLERS[sampler](gm.denoiser, sde, prior_noise(sde, 2000, g), timesteps(sde, n, dtype=F64), generator=g)
        errors.append((x.square().mean(0) - second).abs().sum().item())
    assert errors[0] > 0.5 and errors[1] < 0.2 and errors[1] < errors[0] / 5, errors


def test_ddim_eta1_is_ddpm():
    for sde in (VP(), VE(), SubVP(), DDPM(steps=100)):
        gm = mixture(sde)
        ts = timesteps(sde, 20, dtype=F64)
        x = prior_noise(sde, 300, torch.Generator().manual_seed(0))
        a = sample_ddim(gm.denoiser, sde, x, ts, eta=1.0, generator=torch.Generator().manual_seed(1))
        b = sample_ddpm(gm.denoiser, sde, x, ts, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        # and eta = 0 is deterministic, between them eta interpolates the noise
        c = sample_ddim(gm.denoiser, sde, x, ts, eta=0.0, generator=torch.Generator().manual_seed(5))
        d = sample_ddim(gm.denoiser, sde, x, ts, eta=0.0, generator=torch.Generator().manual_seed(6))
        torch.testing.assert_close(c, d, rtol=0, atol=0)


def test_ddpm_reproduces_ho():
    # Ho et al.'s Algorithm 2 with the betas of the DDPM process, on its grid t_i = i / N
    n = 50
    sde = DDPM(steps=n)
    betas = sde.betas
    alphas, abar = 1 - betas, torch.cumprod(1 - betas, 0)

    def eps_model(x, i):
        return torch.tanh(x + 0.1 * i)

    def denoiser(x, t):  # the data prediction of the epsilon model
        i = round(t.item() * n)
        return (x - (1 - abar[i - 1]).sqrt() * eps_model(x, i)) / abar[i - 1].sqrt()

    x_T = torch.randn(7, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    ts = timesteps(sde, n, t_min=0.0, dtype=F64)
    torch.testing.assert_close(ts, torch.arange(n, -1, -1, dtype=F64) / n)
    ours = sample_ddpm(denoiser, sde, x_T, ts, generator=torch.Generator().manual_seed(3))
    g, x = torch.Generator().manual_seed(3), x_T
    for i in range(n, 0, -1):
        z = torch.randn(x.shape, generator=g, dtype=F64) if i > 1 else torch.zeros_like(x)
        beta_tilde = (1 - abar[i - 2]) / (1 - abar[i - 1]) * betas[i - 1] if i > 1 else 0.0
        mean = (x - betas[i - 1] / (1 - abar[i - 1]).sqrt() * eps_model(x, i)) / alphas[i - 1].sqrt()
        x = mean + math.sqrt(beta_tilde) * z
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


@given(
    sde_name=st.sampled_from(list(SDES)),
    t=st.floats(0.05, 1.0),
    frac=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**16),
)
def test_ddpm_step_is_posterior(sde_name, t, frac, seed):
    # one step of sample_ddpm is a draw from q(x_s | x_t, x0_hat) written the textbook way
    sde = SDES[sde_name]() if sde_name != "ddpm" else DDPM(steps=100)
    t, s = torch.tensor(t, dtype=F64), torch.tensor(t * frac, dtype=F64)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)

    def model(x, t):
        return 0.5 * x + 1.0

    out = sample_ddpm(model, sde, x, torch.stack([t, s]), generator=torch.Generator().manual_seed(seed + 1))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    a_t, a_s, s_t, s_s = sde.alpha(t), sde.alpha(s), sde.sigma(t), sde.sigma(s)
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2
    mean = a_ts * s_s**2 / s_t**2 * x + a_s * var_ts / s_t**2 * model(x, t)
    torch.testing.assert_close(out, mean + (var_ts * s_s**2 / s_t**2).sqrt() * z, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_callback_generator_and_zero_steps(sampler):
    sde = VP()
    gm = mixture(sde)
    ts = timesteps(sde, 6, dtype=F64)
    x = prior_noise(sde, 50, torch.Generator().manual_seed(0))
    infos = []
    a = sample(sampler, gm.denoiser, sde, x, ts, generator=torch.Generator().manual_seed(1), callback=infos.append,
               progress=True)
    b = sample(sampler, gm.denoiser, sde, x, ts, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert all(set(info) == {"i", "t", "x", "denoised"} for info in infos)
    assert [info["i"] for info in infos] == list(range(len(infos)))
    if sampler != "rk45":  # one call per step, at the step's start
        assert len(infos) == 6
        assert [info["t"].item() for info in infos] == ts[:-1].tolist()
    else:  # one per evaluation, from ts[0] to ts[-1]
        assert infos[0]["t"].item() == ts[0].item() and infos[-1]["t"].item() == pytest.approx(ts[-1].item())
    if sampler in ("euler_maruyama", "pc", "ddpm"):
        c = sample(sampler, gm.denoiser, sde, x, ts, generator=torch.Generator().manual_seed(2))
        assert not torch.allclose(a, c)
    for bad in ([1.0], [], [0.5, 0.9], [1.0, 0.5, 0.5], [1.5, 0.5], [1.0, -0.1], [[1.0, 0.5]], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="ts"):
            sample(sampler, gm.denoiser, sde, x, torch.tensor(bad, dtype=F64))


def test_model_sees_every_time_once():
    sde = VE()
    gm = mixture(sde)
    ts = timesteps(sde, 8, t_min=0.0, dtype=F64)
    x = prior_noise(sde, 20, torch.Generator().manual_seed(0))
    for sampler, per_step in [(sample_euler_maruyama, 1), (sample_ddim, 1), (sample_dpmpp_2m, 1), (sample_pc, 2)]:
        calls = []
        sampler(guarded(gm, calls), sde, x, ts)
        assert len(calls) == per_step * 8, sampler.__name__
    calls = []
    sample_heun(guarded(gm, calls), sde, x, ts)
    assert len(calls) == 2 * 8 - 1 and 0.0 not in calls


def test_differentiable():
    sde = VP()
    gm = mixture(sde)
    x = prior_noise(sde, 10, torch.Generator().manual_seed(0)).requires_grad_()
    ts = timesteps(sde, 5, dtype=F64)
    for name in SAMPLERS:
        options = {"rtol": 1e-3, "atol": 1e-3} if name == "rk45" else {}
        (grad,) = torch.autograd.grad(sample(name, gm.denoiser, sde, x, ts, **options).sum(), x)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_bad_arguments():
    sde = VP()
    gm = mixture(sde)
    x, ts = torch.zeros(3, 2, dtype=F64), timesteps(sde, 3, dtype=F64)
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        sample("nope", gm.denoiser, sde, x, ts)
    with pytest.raises(ValueError, match="eta"):
        sample_ddim(gm.denoiser, sde, x, ts, eta=1.5)
    with pytest.raises(ValueError, match="snr"):
        sample_pc(gm.denoiser, sde, x, ts, snr=-1.0)
    with pytest.raises(ValueError, match="corrector_steps"):
        sample_pc(gm.denoiser, sde, x, ts, corrector_steps=1.5)
    with pytest.raises(ValueError, match="ts"):
        sample_euler(gm.denoiser, sde, x, torch.tensor([0.5, 0.2, 0.3], dtype=F64))
    # zero corrector steps is plain Euler–Maruyama
    a = sample_pc(gm.denoiser, sde, x, ts, corrector_steps=0, generator=torch.Generator().manual_seed(0))
    b = sample_euler_maruyama(gm.denoiser, sde, x, ts, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
