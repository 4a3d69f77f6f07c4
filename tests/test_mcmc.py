"""MCMC samplers of unnormalized densities: their laws against exact draws and probabilities, their biases, their
errors, the replay buffer's exact resume, and the EnergyBased bridge."""

import math

import pytest
import torch

import gendist
from gendist.inference import fit
from gendist.samplers import (
    MCMC_SAMPLERS,
    MCMCError,
    MCMCResult,
    ReplayBuffer,
    geometric_betas,
    sample_annealed_langevin,
    sample_gibbs,
    sample_hmc,
    sample_mala,
    sample_nuts,
    sample_parallel_tempering,
    sample_sgld,
    sample_ula,
    temper,
)
from gendist.testing import check_mcmc, check_mcmc_discrete

F64 = torch.float64
GRADIENT = ["ula", "mala", "hmc", "annealed_langevin", "sgld", "parallel_tempering", "nuts"]
FAST = {"hmc": {"leapfrog": 3}, "nuts": {"warmup": 3, "max_tree_depth": 3}}  # options that keep a run short


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


class Gaussian:
    """N(mean, cov) in 2-D: the log-density up to its constant, and exact draws."""

    def __init__(self, mean, cov):
        self.mean = torch.as_tensor(mean, dtype=F64)
        self.L = torch.linalg.cholesky(torch.as_tensor(cov, dtype=F64))
        self.P = torch.cholesky_inverse(self.L)

    def __call__(self, x):
        d = x - self.mean
        return -0.5 * ((d @ self.P) * d).sum(-1)

    def sample(self, n, g):
        return self.mean + torch.randn(n, 2, generator=g, dtype=F64) @ self.L.T


class Mixture:
    """A 2-D mixture of isotropic Gaussians with unequal weights (a sampler must find both modes in proportion)."""

    def __init__(self, weights, means, std):
        self.w, self.m, self.s = torch.tensor(weights, dtype=F64), torch.tensor(means, dtype=F64), std

    def __call__(self, x):
        d = ((x[..., None, :] - self.m) ** 2).sum(-1)
        return torch.logsumexp(self.w.log() - 0.5 * d / self.s**2, -1)

    def sample(self, n, g):
        k = torch.multinomial(self.w, n, replacement=True, generator=g)
        return self.m[k] + self.s * torch.randn(n, 2, generator=g, dtype=F64)


class Boltzmann:
    """log f(x) = beta (x'Wx / 2 + b'x) on {0, 1}^D, with an exact single-site Gibbs sweep and its tempering."""

    def __init__(self, W, b, beta=1.0):
        self.W, self.b, self.beta = torch.as_tensor(W, dtype=F64), torch.as_tensor(b, dtype=F64), beta

    def __call__(self, x):
        return self.beta * (0.5 * ((x @ self.W) * x).sum(-1) + x @ self.b)

    def gibbs(self, x, generator=None):
        x = x.clone()
        for j in range(len(self.b)):
            p = torch.sigmoid(self.beta * (x @ self.W[:, j] + self.b[j]))  # W has a zero diagonal
            u = torch.rand(p.shape, generator=generator, dtype=x.dtype, device=x.device)
            x[..., j] = (u < p).to(x.dtype)
        return x

    def tempered(self, beta):
        return Boltzmann(self.W, self.b, self.beta * beta)

    def states(self):
        D = len(self.b)
        return ((torch.arange(2**D)[:, None] >> torch.arange(D - 1, -1, -1)) & 1).to(F64)

    def probs(self):
        return torch.softmax(self(self.states()), 0)


GAUSS = Gaussian([1.0, -1.0], [[1.0, 0.8], [0.8, 1.0]])
MIXTURE = Mixture([0.3, 0.7], [[-1.0, -1.0], [1.0, 1.0]], 0.7)
SEPARATED = Mixture([0.3, 0.7], [[-2.5, -2.5], [2.5, 2.5]], 0.5)  # a barrier MALA does not cross in 300 steps
RUNS = {  # steps and options reaching the target from N(0, 4 I) in 500 chains
    "mala": (300, {"step_size": 0.2}),
    "hmc": (60, {"step_size": 0.25, "leapfrog": 5}),
    "parallel_tempering": (200, {"step_size": 0.2, "betas": 4, "beta_min": 0.05}),
}


def _start(n=500, seed=1):
    g = _g(seed)
    return 2 * torch.randn(n, 2, generator=g, dtype=F64), g


# --- laws -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [GAUSS, MIXTURE], ids=["correlated_gaussian", "mixture"])
@pytest.mark.parametrize("sampler", sorted(RUNS))
def test_chains_reach_the_target(sampler, target):
    x0, g = _start()
    steps, options = RUNS[sampler]
    out = check_mcmc(sampler, target, x0, target.sample(500, g), steps, generator=g, **options)
    assert out.x.dtype == F64 and out.x.shape == x0.shape and out.acceptance_rate > 0.5


def test_annealed_mala_reaches_the_target_and_keeps_only_the_last_level():
    x0, g = _start()
    out = check_mcmc("annealed_langevin", MIXTURE, x0, MIXTURE.sample(500, g), 300, generator=g, step_size=0.05,
                     mala=True, keep=4, thin=5)
    assert out.info["steps_per_level"] == [30] * 10 and out.samples.shape == (4, 500, 2)
    assert out.acceptance_rate > 0.9
    with pytest.raises(ValueError, match="last level"):
        sample_annealed_langevin(MIXTURE, x0, 300, keep=31, step_size=0.05)


def test_tempering_crosses_a_barrier_that_mala_does_not():
    x0, g = _start()
    reference = SEPARATED.sample(500, g)
    out = check_mcmc("parallel_tempering", SEPARATED, x0, reference, 200, generator=g, step_size=0.2, betas=4,
                     beta_min=0.05)
    rates = out.info["swap_rates"]
    assert rates.shape == (3,) and bool((rates > 0.3).all()) and out.info["replicas"].shape == (4, 500, 2)
    with pytest.raises(AssertionError, match="do not follow the target"):  # the check has the power to see it
        check_mcmc("mala", SEPARATED, x0, reference, 300, generator=g, step_size=0.2)


def test_gibbs_and_tempered_gibbs_match_enumerated_probabilities():
    g = _g()
    model = Boltzmann([[0, 1.0, -0.5, 0], [1.0, 0, 0.3, 0], [-0.5, 0.3, 0, 0.8], [0, 0, 0.8, 0]], [0.2, -0.4, 0.1, 0])
    x0 = torch.zeros(2000, 4, dtype=F64)
    out = check_mcmc_discrete("gibbs", model, x0, model.states(), model.probs(), 6, generator=g, keep=2)
    assert out.samples.shape == (2, 2000, 4) and out.acceptance is None
    # a ferromagnet: all-0 and all-1 hold nearly all the mass; single-site Gibbs from all-0 stays there
    w = 4.0 * (1 - torch.eye(4, dtype=F64))
    ferro = Boltzmann(w, -6.0 * torch.ones(4, dtype=F64))
    states, probs = ferro.states(), ferro.probs()
    assert float(probs[0] + probs[-1]) > 0.9
    out = check_mcmc_discrete("parallel_tempering", ferro, x0, states, probs, 100, generator=g, kernel="gibbs",
                              betas=4, beta_min=0.1)
    assert out.acceptance is None and bool((out.info["swap_rates"] > 0.2).all())
    with pytest.raises(AssertionError, match="do not follow the probabilities"):
        check_mcmc_discrete("gibbs", ferro, x0, states, probs, 100, generator=g)


def test_ula_variance_bias_follows_theory():
    # on N(0, 1), ULA is x' = (1 - e) x + sqrt(2 e) z, whose stationary variance is 2 / (2 - e)
    g, n = _g(), 20000
    target = lambda x: -0.5 * x.pow(2).sum(-1)  # noqa: E731
    measured = {}
    for eps in (0.5, 0.1):
        out = sample_ula(target, torch.randn(n, 1, generator=g, dtype=F64), 80, step_size=eps, generator=g)
        var, theory = float(out.x.var()), 2 / (2 - eps)
        assert abs(var - theory) < 4 * theory * math.sqrt(2 / n), (eps, var, theory)
        measured[eps] = var
    assert abs(measured[0.1] - 1) < abs(measured[0.5] - 1) / 3


def test_sgld_with_decoupled_noise_samples_a_colder_density():
    # x' = (1 - e) x + s z on N(0, 1): variance s^2 / (2 e - e^2), near f^(2 e / s^2) = N(0, 1/2) here
    g, n, eps, s = _g(), 20000, 0.01, 0.1
    out = sample_sgld(lambda x: -0.5 * x.pow(2).sum(-1), torch.randn(n, 1, generator=g, dtype=F64), 600,
                      step_size=eps, noise=s, generator=g)
    theory = s**2 / (2 * eps - eps**2)
    assert abs(float(out.x.var()) - theory) < 4 * theory * math.sqrt(2 / n)


def test_mala_acceptance_drops_as_the_step_grows():
    g = _g()
    x0 = GAUSS.sample(400, g)
    rates = [sample_mala(GAUSS, x0, 30, step_size=e, generator=g).acceptance_rate for e in (0.05, 0.3, 1.0, 3.0)]
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[0] > 0.95 and rates[-1] < 0.3, rates


def test_ess_of_iid_and_of_correlated_draws():
    g = _g()
    iid = MCMCResult(torch.zeros(4, 2), torch.randn(1000, 4, 2, generator=g, dtype=F64))
    assert torch.allclose(iid.ess(), torch.full((2,), 4000.0, dtype=F64), rtol=0.15)
    rho, z = 0.9, torch.randn(4000, 8, generator=g, dtype=F64)  # AR(1): ESS = n (1 - rho) / (1 + rho)
    x = torch.zeros_like(z)
    x[0] = z[0]
    for t in range(1, len(z)):
        x[t] = rho * x[t - 1] + math.sqrt(1 - rho**2) * z[t]
    ess = MCMCResult(x[-1], x[:, :, None]).ess()
    assert 0.7 < float(ess) / (4000 * 8 * (1 - rho) / (1 + rho)) < 1.3


def test_nuts_bridge_recovers_a_gaussian():
    g = _g()
    out = sample_nuts(GAUSS, torch.zeros(4, 2, dtype=F64), 150, warmup=100, generator=g, keep=150)
    draws = out.samples.reshape(-1, 2)
    assert out.samples.shape == (150, 4, 2) and out.x.dtype == F64 and out.acceptance.shape == (4,)
    assert torch.allclose(draws.mean(0), GAUSS.mean, atol=0.25)
    assert torch.allclose(draws.var(0), torch.ones(2, dtype=F64), rtol=0.35)
    assert out.info["step_size"] > 0 and "r_hat" in out.info["diagnostics"]["x"]
    again = sample_nuts(GAUSS, torch.zeros(4, 2, dtype=F64), 5, warmup=5, generator=_g())
    assert torch.equal(again.x, sample_nuts(GAUSS, torch.zeros(4, 2, dtype=F64), 5, warmup=5, generator=_g()).x)


# --- the one signature -----------------------------------------------------------------------------------------
def _options(name):
    if name == "gibbs":
        return {}
    options = {"step_size": 0.1, **FAST.get(name, {})}
    if name == "parallel_tempering":
        options["betas"] = 3
    if name == "annealed_langevin":
        options["betas"] = 2
    return options


def _target(name, device="cpu"):
    if name == "gibbs":
        return Boltzmann(torch.zeros(2, 2, device=device), torch.ones(2, device=device))
    return lambda x: -0.5 * x.pow(2).sum((-2, -1))  # the event is the last two dimensions


@pytest.mark.parametrize("name", sorted(MCMC_SAMPLERS))
def test_every_sampler_has_the_one_signature(name):
    sampler, target = MCMC_SAMPLERS[name], _target(name)
    shape = (3, 2, 2, 2) if name != "gibbs" else (3, 2, 2)  # chains (3, 2), event (2, 2) (Gibbs: (2,))
    x = torch.randn(shape, generator=_g(), dtype=F64).round().abs().clamp(max=1) if name == "gibbs" else \
        torch.randn(shape, generator=_g(), dtype=F64)
    calls = []
    out = sampler(target, x, 8, generator=_g(1), keep=2, thin=2, callback=calls.append, progress=False,
                  **_options(name))
    assert out.x.shape == x.shape and out.x.dtype == F64 and out.steps == 8
    assert out.samples.shape == (2, *x.shape) and torch.equal(out.samples[-1], out.x)
    assert out.acceptance is None or out.acceptance.shape == (3, 2)
    assert len(calls) >= 8 and isinstance(calls[-1], dict) and "x" in calls[-1]
    again = sampler(target, x, 8, generator=_g(1), keep=2, thin=2, **_options(name))
    assert torch.equal(out.x, again.x)  # every draw comes from the generator
    assert sampler(target, x, 0, **_options(name)).x.shape == x.shape


@pytest.mark.parametrize("name", sorted(MCMC_SAMPLERS))
def test_bad_arguments_give_clear_errors(name):
    sampler, target = MCMC_SAMPLERS[name], _target(name)
    x = torch.zeros(3, 2, 2, dtype=F64)
    options = _options(name)
    if name != "gibbs":
        for bad in (0.0, -1.0, math.nan, math.inf):
            with pytest.raises(ValueError, match="step_size"):
                sampler(target, x, 2, **{**options, "step_size": bad})
    with pytest.raises(ValueError, match="at least one chain"):
        sampler(target, torch.zeros(0, 2, 2, dtype=F64), 2, **options)
    with pytest.raises(TypeError, match="floating-point"):
        sampler(target, torch.zeros(3, 2, 2, dtype=torch.long), 2, **options)
    with pytest.raises(ValueError, match="steps"):
        sampler(target, x, -1, **options)
    if name != "gibbs":
        with pytest.raises(ValueError, match="one log-density per chain"):
            sampler(lambda y: y.sum() * y.new_ones(7), x, 2, **options)


def test_gibbs_needs_a_gibbs_target_and_tempering_checks_its_ladder():
    x = torch.zeros(5, 2, dtype=F64)
    with pytest.raises(TypeError, match=r"gibbs\(x, generator\)"):
        sample_gibbs(lambda y: y.sum(-1), x, 2)
    with pytest.raises(TypeError, match=r"gibbs\(x, generator\)"):
        sample_parallel_tempering(lambda y: y.sum(-1), x, 2, kernel="gibbs")
    with pytest.raises(ValueError, match="kernel"):
        sample_parallel_tempering(lambda y: y.sum(-1), x, 2, kernel="nuts")
    for bad in ([0.5, 0.2, 1.0], [0.1, 0.5], [-0.1, 1.0], [[0.5, 1.0]]):
        with pytest.raises(ValueError, match="betas"):
            sample_parallel_tempering(lambda y: y.sum(-1), x, 2, betas=bad)
    with pytest.raises(ValueError, match="leapfrog"):
        sample_hmc(lambda y: y.sum(-1), x, 2, leapfrog=0)
    with pytest.raises(ValueError, match="mass"):
        sample_hmc(lambda y: y.sum(-1), x, 2, mass=-1.0)
    assert torch.allclose(geometric_betas(3, 0.01, F64), torch.tensor([0.01, 0.1, 1.0], dtype=F64))
    assert temper(Boltzmann(torch.zeros(2, 2), torch.ones(2)), 0.5).beta == 0.5  # a target's own tempering


class NaNAfter:
    """-|x|^2 / 2 for the first `calls` evaluations, NaN after: a broken energy at a known step."""

    def __init__(self, calls):
        self.calls, self.n = calls, 0

    def __call__(self, x):
        self.n += 1
        lp = -0.5 * x.pow(2).sum(-1)
        return lp * math.nan if self.n > self.calls else lp


@pytest.mark.parametrize("name,calls,step", [
    ("ula", 5, 5), ("mala", 5, 5), ("sgld", 5, 5), ("hmc", 5, 2), ("parallel_tempering", 5, 5),
    ("annealed_langevin", 6, 5), ("nuts", 0, 0),
])
def test_nan_energies_raise_with_the_step_and_the_last_finite_state(name, calls, step):
    # calls: the first is at the start; then one per step (HMC: 3 leapfrog steps; annealing: one more per level)
    x = torch.randn(4, 2, generator=_g(), dtype=F64)
    options = {"step_size": 0.1, **FAST.get(name, {})}
    if name == "annealed_langevin":
        options["betas"] = 2
    with pytest.raises(MCMCError, match=f"step {step}") as error:
        MCMC_SAMPLERS[name](NaNAfter(calls), x, 10, generator=_g(), **options)
    assert error.value.step == step and error.value.state.shape == x.shape
    assert bool(torch.isfinite(error.value.state).all())


def test_a_nan_gibbs_sweep_raises():
    class Broken(Boltzmann):
        def gibbs(self, x, generator=None):
            return x * math.nan

    with pytest.raises(MCMCError, match="step 1") as error:
        sample_gibbs(Broken(torch.zeros(2, 2), torch.zeros(2)), torch.zeros(3, 2, dtype=F64), 4)
    assert error.value.step == 1 and torch.equal(error.value.state, torch.zeros(3, 2, dtype=F64))


def test_hmc_rejects_diverging_trajectories_without_error():
    out = sample_hmc(GAUSS, torch.zeros(50, 2, dtype=F64), 5, step_size=5.0, leapfrog=20, generator=_g())
    assert bool(torch.isfinite(out.x).all()) and out.acceptance_rate < 0.1 and int(out.info["divergences"].sum()) > 0


# --- the replay buffer ----------------------------------------------------------------------------------------
def _uniform(n, g):
    return torch.rand(n, 2, generator=g, dtype=F64) * 4 - 2


def test_replay_buffer_restarts_a_fraction_and_writes_back():
    buf = ReplayBuffer(1000, lambda n, g: torch.full((n, 2), 7.0, dtype=F64), reinit=0.05, seed=0)
    buf.update(torch.arange(1000), torch.zeros(1000, 2, dtype=F64))
    x, index = buf.sample(1000)
    fresh = float((x == 7.0).all(-1).double().mean())
    assert 0.03 < fresh < 0.07 and len(set(index.tolist())) == 1000  # distinct slots
    out = sample_sgld(lambda y: -0.5 * y.pow(2).sum(-1), torch.ones(64, 2, dtype=F64), 3, step_size=0.1,
                      buffer=buf, generator=_g())
    assert torch.equal(buf.x[out.info["index"]], out.x)
    with pytest.raises(ValueError, match="distinct"):
        buf.sample(1001)


def test_replay_buffer_state_round_trips_and_resumes_identically(tmp_path):
    target = lambda y: -0.5 * y.pow(2).sum(-1)  # noqa: E731
    a = ReplayBuffer(200, _uniform, seed=0)
    for _ in range(3):
        sample_sgld(target, a.fresh(32), 2, step_size=0.1, buffer=a, generator=_g())
    torch.save(a.state_dict(), tmp_path / "buffer.pt")
    b = ReplayBuffer(200, _uniform, seed=123)
    b.load_state_dict(torch.load(tmp_path / "buffer.pt", weights_only=True))
    assert torch.equal(a.x, b.x)
    for _ in range(2):
        xa = sample_sgld(target, a.fresh(32), 2, step_size=0.1, buffer=a, generator=_g(5)).x
        xb = sample_sgld(target, b.fresh(32), 2, step_size=0.1, buffer=b, generator=_g(5)).x
        assert torch.equal(xa, xb)
    assert torch.equal(a.x, b.x)
    with pytest.raises(ValueError, match="shape"):
        ReplayBuffer(10, _uniform).load_state_dict(a.state_dict())


class Quadratic(torch.nn.Module):
    """E(x) = |x - mu|^2 / 2, trained by persistent contrastive divergence from a replay buffer."""

    def __init__(self):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.zeros(2, dtype=F64))

    def energy(self, x):
        return 0.5 * (x - self.mu).pow(2).sum(-1)


def test_fit_checkpoints_and_resumes_the_buffer_exactly(tmp_path):
    data = torch.randn(96, 2, generator=_g(), dtype=F64) + 1.0

    class Stop(Exception):
        pass

    def run(out, stop_at=None, resume=False):
        model, buf = Quadratic(), ReplayBuffer(64, _uniform, seed=0 if not resume else 9)

        def contrastive(m, batch):  # Langevin noise from the run's stream, restarts from the buffer's
            neg = sample_sgld(lambda y: -m.energy(y), buf.fresh(len(batch[0])), 3, step_size=0.1, buffer=buf).x
            return m.energy(batch[0]).mean() - m.energy(neg).mean()

        def stop(step, loss):
            if step == stop_at:
                raise Stop

        try:
            h = fit(model, data, objective=contrastive, epochs=2, batch_size=16, lr=0.05, progress=False, seed=0,
                    checkpoint_dir=out, checkpoint_every=2, resume=resume, state={"buffer": buf}, callback=stop)
        except Stop:
            h = None
        return h, model, buf

    reference, ref_model, ref_buf = run(None)
    run(tmp_path, stop_at=7)
    resumed, model, buf = run(tmp_path, resume=True)
    assert resumed.step_loss == reference.step_loss
    assert torch.equal(buf.x, ref_buf.x) and torch.equal(model.mu, ref_model.mu)
    assert torch.equal(buf.generator.get_state(), ref_buf.generator.get_state())


# --- the distribution ------------------------------------------------------------------------------------------
class BoltzmannEnergy:
    """An energy with a Gibbs sweep in EnergyBased's convention: gibbs(x, c, generator, beta)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x, c):
        return -self.model(x)

    def gibbs(self, x, c, generator, beta):
        return self.model.tempered(beta).gibbs(x, generator)


def test_energy_based_runs_hmc_and_tempered_gibbs():
    d = gendist.EnergyBased(lambda x, c: 0.5 * x.pow(2).sum(-1), (2,), dtype=F64)
    out = d.mcmc((400,), sampler="hmc", steps=40, step_size=0.3, leapfrog=5, generator=_g())
    assert out.x.shape == (400, 2) and out.acceptance_rate > 0.8
    assert torch.allclose(out.x.var(0), torch.ones(2, dtype=F64), rtol=0.2)
    ferro = Boltzmann(4.0 * (1 - torch.eye(4, dtype=F64)), -6.0 * torch.ones(4, dtype=F64))
    b = gendist.EnergyBased(BoltzmannEnergy(ferro), (4,), torch.distributions.constraints.boolean, dtype=F64)
    t = b.target().tempered(0.5)
    assert callable(t.gibbs) and torch.allclose(t(ferro.states()), 0.5 * ferro(ferro.states()))
    check_mcmc_discrete(lambda *a, **k: b.mcmc((2000,), x=a[1], sampler="parallel_tempering", steps=a[2], **k),
                        None, torch.zeros(2000, 4, dtype=F64), ferro.states(), ferro.probs(), 100, generator=_g(),
                        kernel="gibbs", betas=4, beta_min=0.1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(MCMC_SAMPLERS))
def test_samplers_stay_on_cuda_and_draw_from_a_cuda_generator(name):
    sampler, target, cuda = MCMC_SAMPLERS[name], _target(name, "cuda"), torch.device("cuda")
    x = torch.randn(3, 2, 2, generator=_g(), dtype=F64).to(cuda)
    if name == "gibbs":
        x = (x > 0).to(F64)
    out = sampler(target, x, 8, generator=torch.Generator(cuda).manual_seed(0), keep=2, **_options(name))
    assert out.x.is_cuda and out.samples.is_cuda and (out.acceptance is None or out.acceptance.is_cuda)
    again = sampler(target, x, 8, generator=torch.Generator(cuda).manual_seed(0), keep=2, **_options(name))
    assert torch.equal(out.x, again.x)
    if name == "sgld":
        buf = ReplayBuffer(16, _uniform, seed=0).to(cuda)
        out = sample_sgld(lambda y: -y.pow(2).sum(-1), buf.fresh(4), 3, step_size=0.1, buffer=buf,
                          generator=torch.Generator(cuda).manual_seed(0))
        assert out.x.is_cuda and buf.x.is_cuda and torch.equal(buf.x[out.info["index"].to(cuda)], out.x)
