"""GAN objectives: the losses on fixed logits, their directions, stability, the penalties and training with fit."""

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from gendist.inference import (
    GAN_LOSSES,
    CriticLoss,
    GeneratorLoss,
    discriminator_loss,
    feature_matching,
    fit,
    gan_objectives,
    generator_loss,
    gradient_penalty,
    load_checkpoint,
    r1_penalty,
    r2_penalty,
)

REAL, FAKE = [0.0, 2.0], [-1.0, 1.0]


def sp(t: float) -> float:  # softplus, written independently of torch
    return math.log1p(math.exp(t))


def mean(v):
    return sum(v) / len(v)


def hand_d(kind: str) -> float:
    r, f = REAL, FAKE
    if kind in ("minimax", "non_saturating"):
        return mean([-math.log(1 / (1 + math.exp(-a))) for a in r]) + mean([-math.log(1 - 1 / (1 + math.exp(-b)))
                                                                           for b in f])
    if kind == "wasserstein":
        return mean(f) - mean(r)
    if kind == "hinge":
        return mean([max(0.0, 1 - a) for a in r]) + mean([max(0.0, 1 + b) for b in f])
    if kind == "least_squares":
        return 0.5 * mean([(a - 1) ** 2 for a in r]) + 0.5 * mean([b**2 for b in f])
    return mean([sp(-(a - mean(f))) for a in r]) + mean([sp(b - mean(r)) for b in f])


def hand_g(kind: str) -> float:
    r, f = REAL, FAKE
    if kind == "minimax":
        return mean([math.log(1 - 1 / (1 + math.exp(-b))) for b in f])
    if kind == "non_saturating":
        return mean([-math.log(1 / (1 + math.exp(-b))) for b in f])
    if kind in ("wasserstein", "hinge"):
        return -mean(f)
    if kind == "least_squares":
        return 0.5 * mean([(b - 1) ** 2 for b in f])
    return mean([sp(-(b - mean(r))) for b in f]) + mean([sp(a - mean(f)) for a in r])


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_losses_match_hand_computed_values(kind):
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert discriminator_loss(kind, real, fake).item() == pytest.approx(hand_d(kind), rel=1e-12)
    assert generator_loss(kind, fake, real).item() == pytest.approx(hand_g(kind), rel=1e-12)
    assert discriminator_loss(kind, real, fake).shape == ()


logits = st.lists(st.floats(-20, 20), min_size=1, max_size=6)


@pytest.mark.parametrize("kind", GAN_LOSSES)
@settings(max_examples=10)
@given(r=logits, f=logits, step=st.floats(0.01, 3.0))
def test_losses_move_towards_their_optimum(kind, r, f, step):
    real, fake = torch.tensor(r, dtype=torch.float64), torch.tensor(f, dtype=torch.float64)
    d = discriminator_loss(kind, real, fake).item()
    g = generator_loss(kind, fake, real).item()
    if kind == "least_squares":  # the critic aims at 1 (real) and 0 (fake), the generator at 1
        up, down = real + step * (1 - real) / 4, fake - step * fake / 4
        better_fake = fake + step * (1 - fake) / 4
    else:  # real scores up, fake scores down; the generator wants its fakes scored up
        up, down, better_fake = real + step, fake - step, fake + step
    tol = 1e-12 * (1 + abs(d))
    assert discriminator_loss(kind, up, fake).item() <= d + tol
    assert discriminator_loss(kind, real, down).item() <= d + tol
    assert generator_loss(kind, better_fake, real).item() <= g + 1e-12 * (1 + abs(g))


@pytest.mark.parametrize("kind", GAN_LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_losses_stay_finite_for_huge_logits(kind, dtype):
    big = torch.tensor([1e4, -1e4, 0.0], dtype=dtype, requires_grad=True)
    other = torch.tensor([-1e4, 1e4, 3.0], dtype=dtype, requires_grad=True)
    for value in (discriminator_loss(kind, big, other), discriminator_loss(kind, other, big),
                  generator_loss(kind, big, other), generator_loss(kind, other, big)):
        assert torch.isfinite(value)
        value.backward()
        assert torch.isfinite(big.grad).all() and torch.isfinite(other.grad).all()


def test_loss_errors_are_clear():
    s = torch.zeros(3)
    with pytest.raises(ValueError, match="`loss`.*'hinge'"):
        discriminator_loss("vanilla", s, s)
    with pytest.raises(ValueError, match="`loss`"):
        GeneratorLoss("vanilla")
    with pytest.raises(ValueError, match="`real`"):
        generator_loss("relativistic", s)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        discriminator_loss("hinge", torch.zeros(3, 1), s)
    with pytest.raises(ValueError, match="gp"):
        CriticLoss(gp=-1.0)
    with pytest.raises(ValueError, match="lazy"):
        CriticLoss(lazy=0)
    with pytest.raises(ValueError, match="feature_matching"):
        GeneratorLoss(feature_matching=-0.5)
    with pytest.raises(ValueError, match="n_critic"):
        gan_objectives(n_critic=0)
    with pytest.raises(ValueError, match="lr_critic"):
        gan_objectives(lr_critic=-1e-3)
    with pytest.raises(ValueError, match="betas"):
        gan_objectives(betas=(0.5, 1.0))
    with pytest.raises(ValueError, match="one score per example"):
        r1_penalty(lambda x, c: x, torch.randn(4, 2))


# --------------------------------------------------------------------------- penalties
def test_gradient_penalty_interpolates_on_the_segments_between_pairs():
    seen = []

    def critic(x, c):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    real, fake = torch.randn(6, 3, 4, 4, dtype=torch.float64), torch.randn(6, 3, 4, 4, dtype=torch.float64)
    gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    # x_hat_n = real_n + eps_n (fake_n - real_n) with ONE eps_n per example: the ratio is the same for every pixel
    ratio = ((seen[0] - real) / (fake - real)).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-9)
    assert ((ratio >= 0) & (ratio <= 1)).all() and ratio[:, 0].std() > 0  # on the segment, different per example


def test_gradient_penalty_norm_is_over_all_non_batch_dimensions():
    w = torch.arange(1.0, 1 + 2 * 3 * 3, dtype=torch.float64).reshape(2, 3, 3) / 10

    def critic(x, c):  # linear: the gradient is w for every example, norm ||w|| over channels, rows and columns
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 2, 3, 3, dtype=torch.float64), torch.randn(5, 2, 3, 3, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-12)
    assert gradient_penalty(critic, real, fake, target=0.0).item() == pytest.approx(w.pow(2).sum().item())
    assert r1_penalty(critic, real).item() == pytest.approx(0.5 * w.pow(2).sum().item(), rel=1e-12)
    assert r2_penalty(critic, fake).item() == pytest.approx(0.5 * w.pow(2).sum().item(), rel=1e-12)


@pytest.mark.parametrize("penalty", ["gp", "r1", "r2"])
def test_penalties_train_the_critic_not_the_data(penalty):
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    score = lambda x, c: critic(x).squeeze(-1)  # noqa: E731
    gen = nn.Linear(12, 12).double()
    real = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    fake = gen(torch.randn(4, 12, dtype=torch.float64)).reshape(4, 3, 2, 2)
    compute = {"gp": lambda: gradient_penalty(score, real, fake), "r1": lambda: r1_penalty(score, real),
               "r2": lambda: r2_penalty(score, fake)}[penalty]
    with torch.no_grad():  # scoring: the input gradient is still taken, the value has no graph
        scored = compute()
    value = compute()
    assert value.dtype == torch.float64 and value.requires_grad and not scored.requires_grad
    if penalty != "gp":
        assert scored.item() == pytest.approx(value.item(), rel=1e-12)
    value.backward()
    moved = [critic[1].weight, critic[1].bias, critic[3].weight]  # all but the output bias, which ∇x ignores
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in moved)  # create_graph=True
    assert all(p.grad is None for p in gen.parameters())  # the fakes are detached


def test_r1_gradient_in_the_critic_parameters():
    w = torch.tensor([0.5, -2.0, 1.0], requires_grad=True)
    value = r1_penalty(lambda x, c: x @ w, torch.randn(7, 3))  # R1 = ||w||^2 / 2: its gradient is w
    value.backward()
    assert torch.allclose(w.grad, w.detach())


def test_feature_matching():
    real, fake = torch.randn(8, 5), torch.randn(6, 5)
    assert feature_matching(real, fake).item() == pytest.approx((real.mean(0) - fake.mean(0)).pow(2).sum().item())
    assert feature_matching(real, real[torch.randperm(8)]).item() == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- the objectives on a toy GAN
class ToyGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = nn.Linear(1, 1)
        self.discriminator = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.LeakyReLU(0.2),
                                           nn.Linear(16, 1))

    def fake(self, batch):
        x = batch[0]
        return self.generator(torch.randn(len(x), 1, dtype=x.dtype, device=x.device))

    def critic(self, x, c=None):
        return self.discriminator(x).squeeze(-1)

    def critic_features(self, x, c=None):
        return self.discriminator[:-1](x)


def test_lazy_regularization_schedule_and_its_state():
    torch.manual_seed(0)
    model = ToyGAN().double()
    x = torch.randn(8, 1, dtype=torch.float64)
    fixed = model.generator(torch.randn(8, 1, dtype=torch.float64)).detach()
    model.fake = lambda batch: fixed
    plain = CriticLoss("hinge")
    lazy = CriticLoss("hinge", r1=0.5, r2=0.25, lazy=3)
    extra = 3 * (0.5 * r1_penalty(model.critic, x) + 0.25 * r2_penalty(model.critic, fixed)).item()
    got = [lazy(model, (x,)).item() - plain(model, (x,)).item() for _ in range(4)]
    assert got == pytest.approx([extra, 0.0, 0.0, extra])
    assert lazy.state_dict()["calls"] == 4
    with torch.no_grad():  # scoring leaves the schedule alone
        lazy(model, (x,))
    resumed = CriticLoss("hinge", r1=0.5, r2=0.25, lazy=3)
    resumed.load_state_dict(lazy.state_dict())
    assert [resumed.regularizes(), lazy.regularizes()] == [False, False]
    got = [resumed(model, (x,)).item() - plain(model, (x,)).item() for _ in range(3)]
    assert got == pytest.approx([0.0, 0.0, extra])  # calls 4, 5, 6: the next regularization is call 6 (a fresh
    # loss would regularize at once)


def test_gan_objectives_shape_and_learning_rates(tmp_path):
    critic, generator = gan_objectives("wasserstein", n_critic=2, gp=10.0, lr_critic=4e-4)
    assert (critic.name, critic.every, critic.validate) == ("critic", 1, False)
    assert (generator.name, generator.every, generator.validate) == ("generator", 2, False)
    torch.manual_seed(0)
    model = ToyGAN()
    fit(model, torch.randn(16, 1), objective=[critic, generator], epochs=1, batch_size=8, lr=3e-3, progress=False,
        checkpoint_dir=tmp_path)
    saved = load_checkpoint(tmp_path / "last.pt")
    groups = {k: v["param_groups"][0] for k, v in saved["optimizers"].items()}
    assert groups["critic"]["lr"] == 4e-4 and groups["generator"]["lr"] == 3e-3  # None: fit's lr
    assert groups["critic"]["betas"] == groups["generator"]["betas"] == (0.5, 0.999)
    assert saved["ranks"][0]["state"]["objective:critic"]["calls"] == 2


def test_fit_checkpoints_and_resumes_the_lazy_schedule(tmp_path):
    torch.manual_seed(0)
    model, data = ToyGAN(), torch.randn(24, 1)
    fit(model, data, objective=gan_objectives(r1=1.0, lazy=4), epochs=1, batch_size=8, progress=False,
        checkpoint_dir=tmp_path)
    objectives = gan_objectives(r1=1.0, lazy=4)
    fit(model, data, objective=objectives, epochs=2, batch_size=8, progress=False, checkpoint_dir=tmp_path,
        resume=True)
    assert objectives[0].loss.calls == 6  # 3 steps before the resume, 3 after


@pytest.mark.parametrize(("options", "epochs"), [({}, 10), ({"loss": "relativistic", "feature_matching": 1.0}, 10),
                                                 ({"loss": "hinge", "n_critic": 2, "r1": 0.5, "lazy": 2}, 20)])
def test_gan_objectives_train_a_toy_gan_towards_the_data(options, epochs):
    # N(3, 0.5) from z ~ N(0, 1) through a linear generator that starts near mean 0; 300 or 600 critic steps
    torch.manual_seed(0)
    model = ToyGAN()
    data = 3 + 0.5 * torch.randn(3000, 1)
    fit(model, data, objective=gan_objectives(**options), epochs=epochs, batch_size=100, lr=2e-2, progress=False)
    with torch.no_grad():
        mean = model.fake((torch.zeros(4000, 1),)).mean().item()
    assert abs(mean - 3) < 0.5, mean


def test_generator_loss_l1_needs_paired_shapes():
    model = ToyGAN()
    x = torch.randn(5, 1)
    value = GeneratorLoss("non_saturating", l1=2.0)(model, (x,))
    assert value.shape == () and torch.isfinite(value)
    model.fake = lambda batch: torch.zeros(5, 2)
    model.critic = lambda x, c=None: x.sum(1)
    with pytest.raises(ValueError, match="paired target"):
        GeneratorLoss(l1=1.0)(model, (x,))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_objectives_on_cuda(dtype):
    torch.manual_seed(0)
    model = ToyGAN().to("cuda", dtype)
    x = 3 + torch.randn(16, 1, device="cuda", dtype=dtype)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for loss in GAN_LOSSES:
        d = CriticLoss(loss, gp=1.0, r1=1.0, r2=1.0, generator=gen)(model, (x,))
        g = GeneratorLoss(loss, feature_matching=1.0, l1=1.0)(model, (x,))
        assert d.device.type == g.device.type == "cuda" and d.dtype == g.dtype == dtype
        (d + g).backward()
    image = lambda v, c: v.flatten(1).sum(1)  # noqa: E731
    real = torch.randn(4, 3, 5, 5, device="cuda", dtype=dtype)
    assert gradient_penalty(image, real, real + 1, generator=gen).item() == pytest.approx((75**0.5 - 1) ** 2, rel=1e-5)
