"""Translation and text to image: Pix2Pix, CycleGAN and TextToImage build Implicit distributions, rebuild from
their configs, train with fit (every objective moves its parameters), and check their inputs."""

import json

import pytest
import torch
import torch.nn as nn

from gendist import Implicit
from gendist.config import config, from_config
from gendist.data import CAPTION_VOCAB, tokenize
from gendist.gan import CycleGAN, Pix2Pix, TextToImage
from gendist.inference import fit

TOKENS = tokenize(["a thin two upright", "a thick seven slanted right", "a regular one slanted left"],
                  max_len=5).float()


def small(kind: str, **options):
    if kind == "pix2pix":
        return Pix2Pix((1, 8, 8), channels=4, **options)
    if kind == "cyclegan":
        return CycleGAN((1, 8, 8), channels=4, **options)
    return TextToImage((1, 8, 8), text_dim=8, latent=4, augment=4, channels=4, hidden=8, **options)


def batch(kind: str, n: int = 6, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 8, 8, generator=g) * 2 - 1).to(dtype)
    if kind == "pix2pix":
        return x, (torch.rand(n, 64, generator=g) * 2 - 1).to(dtype)
    if kind == "cyclegan":
        return x, (torch.rand(n, 64, generator=g) * 2 - 1).to(dtype)
    return x, TOKENS[torch.arange(n) % 3].to(dtype)


KINDS = ("pix2pix", "cyclegan", "t2i")


@pytest.mark.parametrize("kind", KINDS)
def test_builds_an_implicit_distribution_of_the_right_shape(kind):
    torch.manual_seed(0)
    model = small(kind)
    c = batch(kind, 3)[1]
    d = model(c)
    assert isinstance(d, Implicit) and d.log_prob_kind == "none"
    assert d.batch_shape == (3,) and d.event_shape == (1, 8, 8)
    assert d.rsample((2,)).shape == (2, 3, 1, 8, 8)
    assert bool((d.sample().abs() <= 1).all())  # tanh: the support [-1, 1]


def test_pix2pix_other_source_channels_and_a_latent():
    p2p = Pix2Pix((1, 8, 8), source_shape=(2, 8, 8), channels=4, latent=3)
    assert p2p.context == 128 and p2p(torch.zeros(5, 128)).latent_shape == (3,)
    x = p2p(torch.zeros(5, 128)).sample((2,))
    assert x.shape == (2, 5, 1, 8, 8)


def test_pix2pix_generator_loss_has_the_l1_term():
    torch.manual_seed(0)
    with_l1, without = small("pix2pix", dropout=0.0), small("pix2pix", dropout=0.0, l1=0.0)
    without.load_state_dict(with_l1.state_dict())
    target, source = batch("pix2pix", 4)
    gap = with_l1.objectives()[1].loss(with_l1, (target, source)) - without.objectives()[1].loss(without,
                                                                                                 (target, source))
    l1 = (with_l1.fake((target, source)) - target).abs().mean()
    assert gap.item() == pytest.approx(100 * l1.item(), rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_config_rebuilds_the_model(kind):
    torch.manual_seed(0)
    options = {"dropout": 0.0} if kind == "pix2pix" else {}
    model = small(kind, **options)
    fit(model, batch(kind), epochs=1, batch_size=3, progress=False)  # running statistics away from their start
    clone = from_config(json.loads(json.dumps(config(model))))
    assert type(clone) is type(model)
    clone.load_state_dict(model.state_dict())
    model.eval(), clone.eval()
    c = batch(kind, 3)[1]
    d, e = model(c), clone(c)
    z = torch.randn(2, 3, *d.latent_shape)
    assert torch.equal(d.push(z), e.push(z))
    if kind == "cyclegan":
        assert torch.equal(model.reverse(c).sample(), clone.reverse(c).sample())


@pytest.mark.parametrize("kind", KINDS)
def test_fit_steps_and_every_objective_moves_its_parameters(kind):
    torch.manual_seed(0)
    model = small(kind)
    data = batch(kind, 8)
    objectives = model.objectives()
    for obj in objectives:
        params = obj.trainable(model)
        assert params
        model.zero_grad()
        obj.loss(model, data).backward()
        missing = [i for i, p in enumerate(params) if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        assert not missing, f"{obj.name}: parameters without a gradient: {missing}"
    # the objectives train disjoint parts that together are the whole model
    ids = [{id(p) for p in o.trainable(model)} for o in objectives]
    assert sum(map(len, ids)) == len(set().union(*ids)) == len(list(model.parameters()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = fit(model, data, epochs=2, batch_size=4, progress=False)
    assert set(h.losses) == {o.name for o in objectives}
    assert all(len(v) == 4 for v in h.losses.values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cycle_loss_is_zero_for_identity_generators_and_counts_otherwise():
    class Shift(nn.Module):
        def __init__(self, by: float) -> None:
            super().__init__()
            self.by = by

        def forward(self, z, c):
            return c.reshape(-1, 1, 8, 8) + self.by

    cg = CycleGAN((1, 8, 8), channels=4)
    a, b = batch("cyclegan", 4)
    cg.generator_ab, cg.generator_ba = Shift(0.0), Shift(0.0)
    assert cg.cycle_loss(a, b).item() == 0.0
    terms = cg.generator_losses((a, b))
    assert terms["cycle"].item() == 0.0 and terms["identity"].item() == 0.0
    cg.generator_ab = Shift(0.5)  # F(G(a)) = a + 0.5 and G(F(b)) = b + 0.5
    assert cg.cycle_loss(a, b).item() == pytest.approx(1.0)
    terms = cg.generator_losses((a, b))
    assert terms["cycle"].item() == pytest.approx(10.0)  # weighted by cycle = 10
    assert terms["identity"].item() == pytest.approx(10 * 0.5 * 0.5)  # |G(b) - b| = 0.5, F(a) = a


def test_cyclegan_translates_both_ways_and_takes_images_or_rows():
    torch.manual_seed(0)
    cg = CycleGAN((1, 8, 8), channels=4).eval()
    a = batch("cyclegan", 3)[1]
    assert torch.equal(cg(a).sample(), cg.to_b(a))  # deterministic without dropout
    assert torch.equal(cg.to_b(a), cg.to_b(a.reshape(3, 1, 8, 8)))
    assert torch.equal(cg.reverse(a).sample(), cg.to_a(a))
    with pytest.raises(ValueError, match="identity"):
        CycleGAN((1, 8, 8), source_shape=(3, 8, 8), channels=4)
    two = CycleGAN((1, 8, 8), source_shape=(3, 8, 8), channels=4, identity=0.0)
    assert two(torch.zeros(2, 192)).sample().shape == (2, 1, 8, 8)
    assert two.reverse(torch.zeros(2, 64)).sample().shape == (2, 3, 8, 8)


def test_the_mismatched_term_scores_real_images_under_rolled_captions():
    torch.manual_seed(0)
    t2i = small("t2i")
    x, c = batch("t2i", 3)
    seen = []
    score = t2i.critic

    def recording(images, tokens):
        seen.append((images, tokens))
        return score(images, tokens)

    t2i.critic = recording
    t2i.critic_loss((x, c))
    assert len(seen) == 3
    (x0, c0), (fake, c1), (x2, c2) = seen
    assert torch.equal(x0, x) and torch.equal(c0, c) and torch.equal(c1, c) and not torch.equal(fake, x)
    assert torch.equal(x2, x) and torch.equal(c2, c[[2, 0, 1]])  # rolled by one: caption n-1 for image n
    seen.clear()
    t2i.critic_loss((x[:1], c[:1]))  # one example has no other caption: no mismatch term
    assert len(seen) == 2


def test_mismatched_pairs_count_as_fake():
    # a critic that only looks at the caption scores matching and mismatched pairs alike: the loss sees the
    # mismatched pairs among the fakes (least squares: 0.5 E(D_real - 1)^2 + 0.5 E(D_fake)^2)
    t2i = small("t2i", loss="least_squares")
    x, c = batch("t2i", 3)

    def critic(images, tokens):
        return torch.ones(images.shape[0]) if torch.equal(images, x) else torch.zeros(images.shape[0])

    t2i.critic = critic
    assert t2i.critic_loss((x, c)).item() == pytest.approx(0.5 * 0.5)  # half the fakes (the mismatched) score 1


def test_t2i_vocabulary_integer_tokens_and_the_kl_term():
    assert TextToImage().text.vocab == len(CAPTION_VOCAB)
    torch.manual_seed(0)
    t2i = small("t2i")
    t2i.eval()
    long_tokens = TOKENS.long()
    z = torch.randn(3, 4)
    assert torch.equal(t2i(long_tokens).push(z), t2i(TOKENS).push(z))
    t2i.train()
    data = batch("t2i", 4)
    torch.manual_seed(1)
    with_kl = t2i.generator_loss(data)
    weight, t2i.kl = t2i.kl, 0.0
    torch.manual_seed(1)
    without = t2i.generator_loss(data)
    torch.manual_seed(1)
    t2i.fake(data)
    assert weight == 0.1
    assert (with_kl - without).item() == pytest.approx(weight * t2i.augment.kl().mean().item(), rel=1e-4)


def test_t2i_conditioning_options():
    t2i = small("t2i")  # the default: a projection critic with spectral normalization, a concatenating generator
    assert t2i.discriminator.embed is not None and not t2i.net.cbn
    assert any(nn.utils.parametrize.is_parametrized(m, "weight") for m in t2i.discriminator.modules())
    reed = small("t2i", conditioning="concat", spectral_norm=False)
    assert reed.discriminator.embed is None and reed.discriminator.concat
    cbn = small("t2i", conditioning=["batchnorm", "concat"])
    assert cbn.net.cbn and cbn.discriminator.concat
    clone = from_config(json.loads(json.dumps(config(cbn))))
    assert clone.net.cbn
    assert cbn(TOKENS).sample().shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="conditioning"):
        small("t2i", conditioning=("projection", "concat"))


def test_bad_contexts_and_batches_give_clear_errors():
    p2p, cg, t2i = small("pix2pix"), small("cyclegan"), small("t2i")
    for model, name in ((p2p, "Pix2Pix"), (cg, "CycleGAN")):
        with pytest.raises(ValueError, match=f"{name} translates a source image"):
            model()
        with pytest.raises(ValueError, match=r"travels flat.*c.flatten\(-3\)"):
            model(torch.zeros(2, 1, 8, 8))
        with pytest.raises(ValueError, match=r"shape \(\.\.\., 64\)"):
            model(torch.zeros(2, 63))
        with pytest.raises(TypeError, match="dtype"):
            model(torch.zeros(2, 64, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"pairs: batches \(target, source\)"):
        p2p.fake((torch.zeros(2, 1, 8, 8),))
    with pytest.raises(ValueError, match=r"target must have shape \(N, 1, 8, 8\)"):
        p2p.fake((torch.zeros(2, 64), torch.zeros(2, 64)))
    with pytest.raises(ValueError, match=r"one flat row per target, shape \(2, 64\)"):
        p2p.fake((torch.zeros(2, 1, 8, 8), torch.zeros(3, 64)))
    with pytest.raises(ValueError, match=r"CycleGAN.reverse"):
        cg.reverse(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"`b` must be a batch of images \(N, 1, 8, 8\) or of flat rows \(N, 64\)"):
        cg.cycle_loss(torch.zeros(2, 64), torch.zeros(2, 65))
    with pytest.raises(ValueError, match=r"unpaired images"):
        fit(cg, torch.zeros(4, 64), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"caption.*\(\.\.\., 5\).*tokenize"):
        t2i()
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 5\)"):
        t2i(torch.ones(2, 4))
    with pytest.raises(ValueError, match="token ids must lie in 0 .. 18"):
        t2i(torch.full((2, 5), 25.0)).sample()
    with pytest.raises(ValueError, match=r"one caption per image, shape \(2, 5\)"):
        t2i.critic_loss((torch.zeros(2, 64), TOKENS))
    for bad, match in (({"loss": "bce"}, "loss"), ({"out": "relu"}, "out"), ({"shape": (64,)}, "image shape")):
        for kind in KINDS:
            options = dict(bad)
            shape = options.pop("shape", (1, 8, 8))
            with pytest.raises(ValueError, match=match):
                {"pix2pix": Pix2Pix, "cyclegan": CycleGAN, "t2i": TextToImage}[kind](shape, **options)


@pytest.mark.parametrize("kind", KINDS)
def test_float64(kind):
    torch.manual_seed(0)
    model = small(kind).double()
    data = batch(kind, 4, torch.float64)
    assert model(data[1]).sample().dtype == torch.float64
    assert all(torch.isfinite(o.loss(model, data)) for o in model.objectives())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda(kind):
    torch.manual_seed(0)
    model = small(kind).cuda()
    data = tuple(t.cuda() for t in batch(kind, 4))
    assert model(data[1]).sample().device.type == "cuda"
    fit(model, data, epochs=1, batch_size=2, progress=False)
