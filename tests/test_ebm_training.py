"""Training objectives of energy-based models: CD-k, PCD, replay buffers, DSM, SSM, NCE and flow contrastive
estimation, on small energies written here (a Gaussian-shaped quadratic, a 1-D bump, a 4-bit Boltzmann machine)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Independent, Laplace, Normal

from gendist.distributions import EnergyBased
from gendist.flows import MAF
from gendist.inference import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseContrastiveEstimation,
    SlicedScoreMatching,
    fit,
    flow_contrastive_objectives,
    load_checkpoint,
)
from gendist.samplers import MCMCError, ReplayBuffer


class Quadratic(nn.Module):
    r"""E(x) = 1/2 (x - m)^T P (x - m), P = L L^T (L lower triangular, positive diagonal): a Gaussian, exact NLL."""

    def __init__(self, dim: int = 2, step_size: float = 0.1, context: int = 0) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(dim))
        self.raw = nn.Parameter(torch.zeros(dim, dim))
        self.shift = nn.Linear(context, dim) if context else None
        self.step_size = step_size

    def L(self) -> Tensor:
        return torch.tril(self.raw, -1) + torch.diag(self.raw.diagonal().exp())

    def precision(self) -> Tensor:
        L = self.L()
        return L @ L.T

    def energy(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        m = self.m if c is None else self.m + self.shift(c)
        return 0.5 * ((x - m) @ self.L()).pow(2).sum(-1)

    def forward(self, c: Tensor | None = None) -> EnergyBased:
        return EnergyBased(self.energy, self.m.shape, context=c, sampler="mala", steps=10,
                           sampler_options={"step_size": self.step_size}, dtype=self.m.dtype, device=self.m.device)

    def nll(self, x: Tensor) -> float:
        log_z = 0.5 * len(self.m) * math.log(2 * math.pi) - self.raw.diagonal().sum()
        return (self.energy(x) + log_z).mean().item()


class Bump(nn.Module):
    r"""E(x) = 1/2 ((x - m) / s)^2 in 1-D, with a learnable log Z (``log_normalizer``) for NCE."""

    def __init__(self) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(1))
        self.log_s = nn.Parameter(torch.zeros(()))
        self.log_normalizer = nn.Parameter(torch.zeros(()))

    def energy(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return 0.5 * ((x - self.m) / self.log_s.exp()).pow(2).sum(-1)

    def forward(self, c: Tensor | None = None) -> EnergyBased:
        return EnergyBased(self.energy, (1,), dtype=self.m.dtype, device=self.m.device)


class GaussianNoise(nn.Module):
    r"""A trainable 1-D Gaussian noise (reparameterized: what flow contrastive estimation needs)."""

    def __init__(self) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1))
        self.log_scale = nn.Parameter(torch.zeros(1))

    def forward(self, c: Tensor | None = None) -> Independent:
        return Independent(Normal(self.loc, self.log_scale.exp()), 1)


class BumpWithNoise(Bump):
    def __init__(self) -> None:
        super().__init__()
        self.noise = GaussianNoise()


class FVBMEnergy:
    r"""A fully visible Boltzmann machine's energy, -1/2 x^T W x - b^T x (W symmetric, zero diagonal), with an
    exact Gibbs sweep (each unit from its conditional in turn)."""

    def __init__(self, module: FVBM) -> None:
        self.module = module

    def weights(self) -> Tensor:
        U = torch.triu(self.module.u, 1)
        return U + U.T

    def __call__(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return -0.5 * ((x @ self.weights()) * x).sum(-1) - x @ self.module.b

    def gibbs(self, x: Tensor, c: Tensor | None = None, generator: torch.Generator | None = None,
              beta: float | Tensor = 1.0) -> Tensor:
        W, b = self.weights().detach(), self.module.b.detach()
        x = x.clone()
        for i in range(x.shape[-1]):
            p = torch.sigmoid(beta * (x @ W[i] + b[i]))
            u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
            x[..., i] = (u < p).to(x.dtype)
        return x


class FVBM(nn.Module):
    def __init__(self, n: int = 4) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.zeros(n, n))
        self.b = nn.Parameter(torch.zeros(n))

    def forward(self, c: Tensor | None = None) -> EnergyBased:
        from torch.distributions import constraints

        return EnergyBased(FVBMEnergy(self), self.b.shape, constraints.boolean, sampler="mala", steps=1)

    def nll(self, x: Tensor) -> float:
        d = self()
        return -d.normalized("exact").log_prob(x).mean().item()


def _gaussian_data(n: int = 1000, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[1.0, 0.0], [0.6, 0.5]])
    return torch.randn(n, 2, generator=g) @ A.T + torch.tensor([1.0, -2.0])


def _relative(P: Tensor, target: Tensor) -> float:
    return float((P - target).abs().max() / target.abs().max())


# --------------------------------------------------------------------------- score matching
def test_denoising_score_matching_recovers_the_noisy_gaussian():
    x = _gaussian_data()
    sigma = 0.3
    torch.manual_seed(0)
    model = Quadratic()
    fit(model, x, objective=DenoisingScoreMatching(sigma), epochs=40, batch_size=125, lr=0.1, schedule="cosine",
        progress=False, seed=0)
    # the minimizer is the score of the data convolved with N(0, sigma^2 I): precision (S + sigma^2 I)^-1
    S = torch.cov(x.T, correction=0)
    target = torch.linalg.inv(S + sigma**2 * torch.eye(2))
    assert (model.m.detach() - x.mean(0)).abs().max() < 0.03
    assert _relative(model.precision().detach(), target) < 0.04


@pytest.mark.parametrize("options", [dict(projections=1), dict(projections=2, variance_reduction=False,
                                                                    directions="rademacher")])
def test_sliced_score_matching_recovers_the_gaussian(options):
    x = _gaussian_data()
    torch.manual_seed(0)
    model = Quadratic()
    fit(model, x, objective=SlicedScoreMatching(**options), epochs=40, batch_size=125, lr=0.1, schedule="cosine",
        progress=False, seed=0)
    target = torch.linalg.inv(torch.cov(x.T, correction=0))  # score matching's minimizer: the empirical Gaussian
    assert (model.m.detach() - x.mean(0)).abs().max() < 0.03
    assert _relative(model.precision().detach(), target) < 0.05


def test_score_matching_validates_under_no_grad_and_keeps_float64():
    x = _gaussian_data(64).double()
    model = Quadratic().double()
    for loss in (DenoisingScoreMatching(0.5), SlicedScoreMatching(2)):
        with torch.no_grad():  # fit's validation: SSM needs a second derivative in x even so
            value = loss(model, (x,))
        assert value.dtype == torch.float64 and value.isfinite()
    h = fit(model, x, valid=x[:16], objective=SlicedScoreMatching(), epochs=1, batch_size=32, progress=False)
    assert len(h.epoch_valid) == 1 and math.isfinite(h.epoch_valid[0])


# --------------------------------------------------------------------------- noise-contrastive estimation
def test_nce_learns_log_z():
    g = torch.Generator().manual_seed(0)
    x = 1.5 + 0.7 * torch.randn(2000, 1, generator=g)
    torch.manual_seed(0)
    model = Bump()
    noise = Independent(Normal(torch.zeros(1), 2.5 * torch.ones(1)), 1)
    fit(model, x, objective=NoiseContrastiveEstimation(noise, ratio=2), epochs=20, batch_size=250, lr=0.05,
        schedule="cosine", progress=False, seed=0)
    log_z = model().log_partition("quadrature", bound=12.0, points=801).value.item()  # the learned energy's true log Z
    assert abs(model.log_normalizer.item() - log_z) < 0.03
    assert abs(model.m.item() - 1.5) < 0.06 and abs(model.log_s.exp().item() - 0.7) < 0.05


def test_flow_contrastive_estimation_trains_energy_and_noise():
    g = torch.Generator().manual_seed(0)
    x = 1.5 + 0.7 * torch.randn(2000, 1, generator=g)
    torch.manual_seed(0)
    model = BumpWithNoise()
    objectives = flow_contrastive_objectives(model.noise, ratio=1)
    h = fit(model, x, valid=x[:200], objective=objectives, epochs=20, batch_size=125, lr=0.05, schedule="cosine",
            progress=False, seed=0)
    # neither is validated: the value against a moving noise would pick early weights as the "best"
    assert sorted(h.losses) == ["energy", "noise"] and not h.valid
    log_z = model().log_partition("quadrature", bound=12.0, points=801).value.item()
    assert abs(model.log_normalizer.item() - log_z) < 0.05
    # the noise moved from N(0, 1) towards the data, N(1.5, 0.7^2)
    assert abs(model.noise.loc.item() - 1.5) < 0.15 and abs(model.noise.log_scale.exp().item() - 0.7) < 0.15
    # each objective trains its own parameters only
    energy, noise = objectives
    assert {id(p) for p in energy.trainable(model)} == {id(model.m), id(model.log_s), id(model.log_normalizer)}
    assert {id(p) for p in noise.trainable(model)} == {id(p) for p in model.noise.parameters()}


class NoRsample(Laplace):
    has_rsample = False


def test_flow_contrastive_estimation_with_a_gendist_flow():
    x = _gaussian_data(200)
    torch.manual_seed(0)
    model = Quadratic()
    model.log_normalizer = nn.Parameter(torch.zeros(()))
    model.noise = MAF(2, transforms=1, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = fit(model, x, objective=flow_contrastive_objectives(model.noise, ratio=2, noise_lr=1e-2), epochs=1,
            batch_size=50, lr=1e-2, progress=False, seed=0)
    assert len(h.losses["energy"]) == len(h.losses["noise"]) == 4
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in ("m", "raw", "log_normalizer"))
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("noise."))


def test_nce_errors_are_clear():
    x = torch.randn(8, 1)
    noise = Independent(Normal(torch.zeros(1), torch.ones(1)), 1)
    with pytest.raises(AttributeError, match="log_normalizer"):
        NoiseContrastiveEstimation(noise)(Quadratic(1), (x,))
    with pytest.raises(ValueError, match="event shape"):
        NoiseContrastiveEstimation(Normal(0.0, 1.0))(Bump(), (x,))
    with pytest.raises(ValueError, match="rsample"):
        fixed = Independent(NoRsample(torch.zeros(1), torch.ones(1)), 1)
        NoiseContrastiveEstimation(fixed, role="noise")(Bump(), (x,))
    with pytest.raises(ValueError, match="ratio"):
        NoiseContrastiveEstimation(noise, ratio=0)
    with pytest.raises(ValueError, match="role"):
        NoiseContrastiveEstimation(noise, role="critic")
    with pytest.raises(TypeError, match="noise"):
        NoiseContrastiveEstimation(3.0)
    outside = GaussianNoise()
    with pytest.raises(ValueError, match="submodule"):
        fit(Bump(), x, objective=flow_contrastive_objectives(outside), epochs=1, progress=False)
    with pytest.raises(TypeError, match="module"):
        flow_contrastive_objectives(noise)


# --------------------------------------------------------------------------- contrastive divergence
@pytest.mark.parametrize("options", [
    dict(k=1, step_size=0.1),                                   # CD-1 from the batch, the model's MALA
    dict(k=5, persistent=True, chains=100, step_size=0.1),      # PCD
    dict(k=1, sampler="ula", step_size=0.05, l2=0.01),          # another sampler, with the energy penalty
])
def test_contrastive_divergence_lowers_the_exact_nll(options):
    x = _gaussian_data()
    torch.manual_seed(0)
    model = Quadratic()
    before = model.nll(x)
    fit(model, x, objective=ContrastiveDivergence(seed=0, **options), epochs=10, batch_size=100, lr=0.05,
        progress=False, seed=0)
    best = 0.5 * 2 * (1 + math.log(2 * math.pi)) + 0.5 * float(torch.logdet(torch.cov(x.T, correction=0)))
    assert model.nll(x) < before - 2.0 and model.nll(x) < best + 1.0


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_and_pcd_with_gibbs_lower_the_exact_nll_of_a_boltzmann_machine(persistent):
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.9, 0.2, 0.5, 0.5])
    x = (torch.rand(400, 4, generator=g) < p).float()
    x[:, 3] = x[:, 2]  # two units always equal: a pairwise interaction to learn
    torch.manual_seed(0)
    model = FVBM()
    loss = ContrastiveDivergence(k=1, persistent=persistent, seed=0)
    assert loss._name(model()) == "gibbs"  # the energy has gibbs: it is chosen over the model's MALA
    before = model.nll(x)
    fit(model, x, objective=loss, epochs=10, batch_size=50, lr=0.1, progress=False, seed=0)
    assert model.nll(x) < before - 0.5


@pytest.mark.parametrize("start", ["persistent", "buffer"])
def test_pcd_and_replay_resume_exactly(tmp_path, start):
    x = _gaussian_data(300)

    def run(out=None, kill_at=None, resume=False):
        torch.manual_seed(0)
        model = Quadratic()
        if start == "persistent":  # the loss's seed is drawn from fit's stream
            loss = ContrastiveDivergence(k=2, persistent=True, chains=32, step_size=0.1, l2=0.01)
        else:
            loss = ContrastiveDivergence(k=2, buffer=_buffer(100), sampler="sgld", step_size=0.05, l2=0.01)

        def die(step, value):
            if step == kill_at:
                raise KeyboardInterrupt  # killed: what was not checkpointed is lost with the objects below

        h = fit(model, x, valid=x[:50], objective=loss, epochs=3, batch_size=64, progress=False, seed=0,
                checkpoint_dir=out, checkpoint_every=3, resume=resume, callback=die)
        return h, model, loss

    reference, ref_model, ref_loss = run()
    for kill_at in (8, 11):  # 5 steps an epoch: resumes mid-epoch (from step 6), and from an epoch end (step 10)
        out = tmp_path / f"run{kill_at}"
        with pytest.raises(KeyboardInterrupt):
            run(out, kill_at)
        saved = load_checkpoint(out / "last.pt")
        assert saved["history"]["step"] < kill_at
        mine = saved["ranks"][0]["state"]["objective:loss"]
        assert mine["chains"].shape == (32, 2) if start == "persistent" else mine["buffer"]["x"].shape == (100, 2)
        resumed, model, loss = run(out, resume=True)
        assert resumed.step_loss == reference.step_loss and resumed.epoch_valid == reference.epoch_valid
        if start == "persistent":
            assert torch.equal(loss.chains, ref_loss.chains)
        else:
            assert torch.equal(loss.buffer.x, ref_loss.buffer.x)
        assert torch.equal(loss.state_dict()["generator"], ref_loss.state_dict()["generator"])
        for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
            assert torch.equal(a, b)


def test_validation_moves_neither_chains_nor_buffer_nor_streams():
    x = _gaussian_data(64)
    model = Quadratic()
    for loss in (ContrastiveDivergence(k=3, persistent=True, step_size=0.1, seed=1),
                 ContrastiveDivergence(k=3, buffer=_buffer(), sampler="sgld", step_size=0.05, seed=1)):
        loss(model, (x,))
        state = {k: v.clone() if isinstance(v, Tensor) else v for k, v in loss.state_dict().items()}
        model.eval()
        with torch.no_grad():
            a, b = loss(model, (x,)), loss(model, (x,))
        assert torch.equal(a, b)  # the same draws: copies of the streams
        now = loss.state_dict()
        assert torch.equal(now["generator"], state["generator"])
        if loss.persistent:
            assert torch.equal(now["chains"], state["chains"])
        else:
            assert all(torch.equal(now["buffer"][k], state["buffer"][k]) for k in ("x", "generator"))
        model.train()
        loss(model, (x,))
        moved = loss.state_dict()
        assert not torch.equal(moved["chains"], state["chains"]) if loss.persistent else not torch.equal(
            moved["buffer"]["x"], state["buffer"]["x"])


def _buffer(size: int = 200, seed: int = 0) -> ReplayBuffer:
    return ReplayBuffer(size, lambda n, g: torch.rand(n, 2, generator=g) * 8 - 4, seed=seed)


def test_replay_buffer_negatives():
    x = _gaussian_data(600)
    torch.manual_seed(0)
    model = Quadratic()
    buffer = _buffer()
    first = buffer.x.clone()
    loss = ContrastiveDivergence(k=10, buffer=buffer, sampler="sgld", step_size=0.05, l2=0.01, seed=0)
    before = model.nll(x)
    fit(model, x, objective=loss, epochs=5, batch_size=100, lr=0.05, progress=False, seed=0)
    assert model.nll(x) < before - 1.0
    assert not torch.equal(buffer.x, first)  # the negatives went back into the buffer
    state = loss.state_dict()
    assert torch.equal(state["buffer"]["x"], buffer.x)
    other = ContrastiveDivergence(k=10, buffer=_buffer(seed=5), sampler="sgld", step_size=0.05)
    other.load_state_dict(state)
    assert torch.equal(other.buffer.x, buffer.x)
    assert torch.equal(other.buffer.generator.get_state(), buffer.generator.get_state())


def test_conditional_models():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(32, 3, generator=g)
    x = torch.randn(32, 2, generator=g) + c[:, :2]
    model = Quadratic(context=3)
    for loss in (ContrastiveDivergence(k=2, step_size=0.1, seed=0), DenoisingScoreMatching(0.2),
                 SlicedScoreMatching(2)):
        value = loss(model, (x, c))
        value.backward()
        assert value.shape == () and model.shift.weight.grad is not None
        model.zero_grad()
    with pytest.raises(ValueError, match="unconditional"):
        ContrastiveDivergence(persistent=True, step_size=0.1)(model, (x, c))


def test_bad_arguments():
    with pytest.raises(ValueError, match="`k`"):
        ContrastiveDivergence(k=0)
    with pytest.raises(ValueError, match="`chains`"):
        ContrastiveDivergence(persistent=True, chains=0)
    with pytest.raises(ValueError, match="persistent=True"):
        ContrastiveDivergence(chains=10)
    with pytest.raises(ValueError, match="step_size"):
        ContrastiveDivergence(step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        ContrastiveDivergence(step_size=-1e-3)
    with pytest.raises(ValueError, match="step_size"):
        ContrastiveDivergence(step_size=torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match="l2"):
        ContrastiveDivergence(l2=-0.1)
    with pytest.raises(ValueError, match="l2"):
        ContrastiveDivergence(l2=float("inf"))
    with pytest.raises(ValueError, match="not both"):
        ContrastiveDivergence(persistent=True, buffer=_buffer())
    with pytest.raises(TypeError, match="buffer"):
        ContrastiveDivergence(buffer=[1, 2])
    with pytest.raises(ValueError, match="init"):
        ContrastiveDivergence(persistent=True, init="noise")
    with pytest.raises(ValueError, match="sampler"):  # the distribution names the samplers it knows
        ContrastiveDivergence(sampler="nope")(Quadratic(), (torch.randn(4, 2),))
    with pytest.raises(ValueError, match="sigma"):
        DenoisingScoreMatching(0.0)
    with pytest.raises(ValueError, match="projections"):
        SlicedScoreMatching(projections=0)
    with pytest.raises(ValueError, match="directions"):
        SlicedScoreMatching(directions="uniform")


class Broken(Quadratic):
    r"""A quadratic whose energy turns NaN once ``broken`` is set (a diverged training run)."""

    broken = False

    def energy(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        e = super().energy(x, c)
        return e * float("nan") if self.broken else e


def test_nan_energy_gives_a_clear_error():
    x = _gaussian_data(200)

    def breaks(step, value):
        if step == 2:
            model.broken = True

    model = Broken()
    with pytest.raises(MCMCError, match="NaN"):  # the sampler stops first, naming the step
        fit(model, x, objective=ContrastiveDivergence(step_size=0.1, seed=0), epochs=2, batch_size=50,
            progress=False, callback=breaks)
    model = Broken()
    with pytest.raises(FloatingPointError, match="loss of objective"):  # fit's own
        fit(model, x, objective=DenoisingScoreMatching(0.1), epochs=2, batch_size=50, progress=False, callback=breaks)
    model = Broken()
    model.broken, model.log_normalizer = True, nn.Parameter(torch.zeros(()))
    with pytest.raises(FloatingPointError, match="loss of objective"):
        fit(model, x, objective=NoiseContrastiveEstimation(Independent(Normal(torch.zeros(2), torch.ones(2)), 1)),
            epochs=1, batch_size=50, progress=False)


def test_pcd_from_the_model_init_and_repr():
    model = Quadratic()
    loss = ContrastiveDivergence(k=2, persistent=True, chains=7, init="model", step_size=0.1, seed=3)
    loss(model, (torch.randn(5, 2),))
    assert loss.chains.shape == (7, 2)
    assert "persistent" in repr(loss) and "sigma=0.1" in repr(DenoisingScoreMatching(0.1))


def test_pcd_with_centering_moves_the_offsets_and_lowers_the_exact_nll():
    from gendist.ebm import RBM

    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.9, 0.2, 0.5, 0.5, 0.1, 0.7])
    x = (torch.rand(400, 6, generator=g) < p).double()
    x[:, 3] = x[:, 2]
    torch.manual_seed(0)
    model = RBM(6, 3, centering=True, centering_decay=0.1, log_partition="exact").double()
    nll = lambda: float(-model().log_prob(x).mean())  # noqa: E731
    before = nll()
    loss = ContrastiveDivergence(k=1, persistent=True, chains=50, centering=True, seed=0)
    fit(model, x, objective=loss, epochs=10, batch_size=50, lr=0.05, progress=False, seed=0)
    assert torch.allclose(model.visible_offset, x.mean(0), atol=0.1)  # the offsets follow the data's means
    assert nll() < before - 0.5
    assert "centering=True" in repr(loss)
    with pytest.raises(TypeError, match="update_offsets"):  # a model without offsets
        ContrastiveDivergence(centering=True)(Quadratic(), (torch.randn(5, 2),))
    model.eval()  # validation leaves the offsets alone
    offsets = model.visible_offset.clone()
    loss(model, (x[:10],))
    assert torch.equal(model.visible_offset, offsets)
