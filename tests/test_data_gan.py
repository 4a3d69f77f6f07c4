r"""The data the GAN family is measured on: the ring and grid of Gaussians (mode collapse), the digits' labels,
translation pairs, attributes and captions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gendist.data import (
    CAPTION_VOCAB,
    SLANT_BINS,
    SLANT_TERCILES,
    THICKNESS_BINS,
    THICKNESS_TERCILES,
    Grid,
    Ring,
    densities,
    detokenize,
    digit_captions,
    digit_pairs,
    invert_digits,
    load_digits,
    slant,
    stroke_thickness,
    thicken_digits,
    tokenize,
)
from gendist.data.digits import DIGITS_SPLITS
from gendist.data.translation import _halves

# ---------------------------------------------------------------------------- ring and grid


def test_ring_and_grid_by_name_and_shapes() -> None:
    assert densities["ring"] is Ring and densities["grid"] is Grid
    for d in (Ring(), Grid(), Ring(modes=5, radius=1.0, std=0.05), Grid(side=3, spacing=1.0, std=0.05)):
        assert d.log_prob_kind == "exact" and d.event_shape == (2,)
        assert d.sample().shape == (2,) and d.sample((3, 4)).shape == (3, 4, 2)
        e = d.expand((5,))
        assert type(e) is type(d) and e.sample((3,)).shape == (3, 5, 2)
        assert torch.equal(e.centres, d.centres) and e.std == d.std and e.entropy().shape == (5,)
        assert d.log_prob(d.sample((7,))).shape == (7,)


def test_centres_are_exact() -> None:
    ring = Ring(dtype=torch.float64)
    c = ring.centres
    assert c.shape == (8, 2) and c.dtype == torch.float64 and ring.std == 0.02 and ring.modes == 8
    assert torch.equal(c[[0, 2, 4, 6]], torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]]).double())
    torch.testing.assert_close(c[1], torch.full((2,), math.sqrt(2), dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(c.norm(dim=-1), torch.full((8,), 2.0, dtype=torch.float64), rtol=0, atol=1e-15)
    grid = Grid()
    expected = torch.tensor([(i, j) for i in range(-4, 5, 2) for j in range(-4, 5, 2)], dtype=torch.float32)
    assert torch.equal(grid.centres, expected) and grid.std == 0.05 and grid.modes == 25
    assert torch.equal(Grid(side=4, spacing=1.0).centres[0], torch.tensor([-1.5, -1.5]))  # centred for an even side


@pytest.mark.parametrize(
    ("d", "h", "half"),
    [(Ring(modes=5, radius=1.0, std=0.05, dtype=torch.float64), 0.005, 1.4),
     (Grid(side=3, spacing=1.0, std=0.05, dtype=torch.float64), 0.005, 1.4)],
)
def test_log_prob_normalizes(d: Ring | Grid, h: float, half: float) -> None:
    r"""Midpoint quadrature (the defaults are integrated in test_toy2d.py): exact to ~1e-12 for a Gaussian
    with std = 10 h, the box 8 std past the outer modes."""
    g = torch.arange(-half, half, h, dtype=torch.float64) + h / 2
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1)
    total = d.log_prob(grid).exp().sum().item() * h * h
    assert abs(total - 1) < 1e-6, total


@pytest.mark.parametrize("d", [Ring(dtype=torch.float64), Grid(dtype=torch.float64)])
def test_entropy_is_log_modes_plus_one_gaussian(d: Ring | Grid) -> None:
    r"""The overlap is nil: at draws of mode k, log p(x) is log N_k(x) - log K to rounding, so H(Z|X) = 0."""
    k = torch.arange(4000) % d.modes
    torch.manual_seed(0)
    x = d.centres[k] + torch.randn(4000, 2, dtype=torch.float64) * d.std
    log_nk = torch.distributions.Normal(d.centres[k], d.std).log_prob(x).sum(-1)
    assert (d.log_prob(x) - (log_nk - math.log(d.modes))).abs().max().item() < 1e-12
    assert d.overlap_bound < 1e-80
    H = math.log(d.modes) + 1 + math.log(2 * math.pi * d.std**2)
    assert d.entropy().item() == pytest.approx(H, abs=1e-12)
    assert d.entropy().item() == pytest.approx({8: -2.9067274, 25: 0.0652883}[d.modes], abs=1e-7)
    lp = d.log_prob(d.sample((20_000,)))
    assert abs(-lp.mean().item() - H) < 4 * lp.std().item() / math.sqrt(20_000)


def test_samples_within_three_std() -> None:
    r"""The quality criterion: a draw lies within 3 std of its nearest centre with probability 1 - exp(-4.5)."""
    torch.manual_seed(1)
    for d in (Ring(dtype=torch.float64), Grid(dtype=torch.float64)):
        x = d.sample((20_000,))
        near = torch.cdist(x, d.centres).min(-1).values <= 3 * d.std
        p = 1 - math.exp(-4.5)
        assert abs(near.double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 20_000)
        assert torch.bincount(torch.cdist(x, d.centres).argmin(-1), minlength=d.modes).min() > 0


def test_overlapping_modes_have_no_closed_form_entropy() -> None:
    d = Ring(modes=8, radius=0.1, std=0.1)
    assert d.overlap_bound > 1
    with pytest.raises(NotImplementedError, match="overlap"):
        d.entropy()
    assert d.log_prob(torch.zeros(3, 2)).shape == (3,)


def test_ring_and_grid_bad_arguments() -> None:
    for build, name in [(lambda: Ring(modes=0), "modes"), (lambda: Ring(radius=-1.0), "radius"),
                        (lambda: Ring(std=0.0), "std"), (lambda: Grid(side=2.5), "side"),  # type: ignore[arg-type]
                        (lambda: Grid(spacing=math.nan), "spacing"), (lambda: Grid(std=-0.1), "std")]:
        with pytest.raises(ValueError, match=name):
            build()
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        Ring().log_prob(torch.zeros(3))


def test_cli_reads_ring_and_grid() -> None:
    from gendist.cli.data import load_data

    for name in ("ring", "grid"):
        data = load_data(name, None, 0)
        assert data.kind == "density" and data.train.shape[1] == 2
        assert data.entropy == pytest.approx(densities[name](dtype=torch.float64).entropy().item(), abs=1e-6)


# ---------------------------------------------------------------------------- digits: labels


@pytest.fixture(scope="module")
def sklearn_target() -> np.ndarray:
    datasets = pytest.importorskip("sklearn.datasets", reason="load_digits needs scikit-learn")
    return datasets.load_digits().target


def test_labels_follow_the_split_order(sklearn_target: np.ndarray) -> None:
    x, y = load_digits("all", labels=True)
    assert y.dtype == torch.long and y.shape == (1797,)
    assert torch.equal(y, torch.as_tensor(sklearn_target)) and torch.equal(x, load_digits("all"))
    perm = np.random.default_rng(0).permutation(1797)
    for split, (start, stop) in DIGITS_SPLITS.items():
        xs, ys = load_digits(split, labels=True)
        assert torch.equal(ys, torch.as_tensor(sklearn_target[perm[start:stop]]))
        assert torch.equal(xs, load_digits(split))  # the default is unchanged
        assert isinstance(load_digits(split), torch.Tensor)
    with pytest.raises(TypeError, match="labels"):
        load_digits("train", labels="yes")  # type: ignore[call-overload]


# ---------------------------------------------------------------------------- translation


def _random_digits(seed: int, n: int = 6) -> torch.Tensor:
    return torch.randint(0, 17, (n, 64), generator=torch.Generator().manual_seed(seed)).double()


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1))
def test_inversion_is_an_involution(seed: int) -> None:
    x = _random_digits(seed)
    assert torch.equal(invert_digits(invert_digits(x)), x)
    assert invert_digits(x).min() >= 0 and invert_digits(x).max() <= 16
    images = x.reshape(-1, 8, 8)
    assert torch.equal(invert_digits(images), 16 - images)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), amount=st.integers(0, 3), square=st.booleans(), drop=st.sampled_from([0, 4.0]))
def test_thickening_never_lowers_a_pixel(seed: int, amount: int, square: bool, drop: float) -> None:
    x = _random_digits(seed) * (torch.rand(6, 64, generator=torch.Generator().manual_seed(seed)) < 0.3)
    y = thicken_digits(x, amount, "square" if square else "cross", drop)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool((y >= x).all()) and y.min() >= 0 and y.max() <= 16
    assert torch.equal(thicken_digits(x.reshape(-1, 8, 8), amount, "square" if square else "cross", drop),
                       y.reshape(-1, 8, 8))
    assert bool((thicken_digits(y, 1, "square" if square else "cross", drop) >= y).all())
    if amount == 0:
        assert torch.equal(y, x)


def test_thickening_square_without_drop_is_the_max_filter() -> None:
    x = _random_digits(3).reshape(-1, 1, 8, 8)
    assert torch.equal(thicken_digits(x.reshape(-1, 64), 1, "square", 0).reshape(-1, 1, 8, 8),
                       F.max_pool2d(x, 3, stride=1, padding=1))


def test_translation_functions_reject_bad_input() -> None:
    x = torch.zeros(2, 64)
    with pytest.raises(ValueError, match="`x`.*levels"):
        invert_digits(x - 1)
    with pytest.raises(ValueError, match="`x`.*64"):
        thicken_digits(torch.zeros(2, 63))
    with pytest.raises(TypeError, match="`x`"):
        stroke_thickness(torch.zeros(2, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        slant(torch.full((2, 64), math.nan))
    with pytest.raises(ValueError, match="amount"):
        thicken_digits(x, -1)
    with pytest.raises(ValueError, match="footprint"):
        thicken_digits(x, 1, "disk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="drop"):
        thicken_digits(x, 1, drop=-1.0)
    with pytest.raises(ValueError, match="kind"):
        digit_pairs("test", kind="blur")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="amount"):
        digit_pairs("test", kind="invert", amount=2)


def test_attributes_of_simple_shapes() -> None:
    bar = torch.zeros(8, 8, dtype=torch.float64)
    bar[1:7, 3:5] = 16.0
    assert stroke_thickness(bar).item() == pytest.approx(1.5) and slant(bar).item() == 0
    assert stroke_thickness(thicken_digits(bar)).item() > 1.5
    assert stroke_thickness(bar / 2).item() == pytest.approx(1.5)  # independent of the scale of the levels
    blank = torch.zeros(3, 64)
    assert torch.equal(stroke_thickness(blank), torch.zeros(3)) and torch.equal(slant(blank), torch.zeros(3))
    lean = torch.zeros(2, 8, 8)
    lean[0, [6, 5, 4, 3, 2], [2, 3, 4, 5, 6]] = 16.0  # "/"
    lean[1, [6, 5, 4, 3, 2], [6, 5, 4, 3, 2]] = 16.0  # "\"
    torch.testing.assert_close(slant(lean), torch.tensor([1.0, -1.0]))
    assert slant(lean, bins=True).tolist() == [2, 0] and SLANT_BINS[2] == "right"


@pytest.fixture(scope="module")
def train() -> tuple[torch.Tensor, torch.Tensor]:
    pytest.importorskip("sklearn", reason="load_digits needs scikit-learn")
    x, y = load_digits("train", labels=True)
    return x.double(), y


def test_attribute_bins_are_training_terciles(train: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = train
    thirds = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
    for f, edges in ((stroke_thickness, THICKNESS_TERCILES), (slant, SLANT_TERCILES)):
        torch.testing.assert_close(torch.quantile(f(x), thirds), torch.tensor(edges, dtype=torch.float64),
                                   rtol=1e-12, atol=0)
        counts = torch.bincount(f(x, bins=True), minlength=3)
        assert counts.tolist() == torch.bincount(f(x.float(), bins=True), minlength=3).tolist()
        assert (counts - 400).abs().max() <= 5, counts
    assert (stroke_thickness(thicken_digits(x)) > stroke_thickness(x)).all()


def test_captions_round_trip(train: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = train
    captions = digit_captions(x, y)
    assert len(captions) == 1200 and captions[0].startswith("a ")
    tokens = tokenize(captions)
    assert tokens.dtype == torch.long and tokens.shape == (1200, 5) and tokens.max() < len(CAPTION_VOCAB)
    assert detokenize(tokens) == captions
    assert (tokens == 0).any() and CAPTION_VOCAB[0] == "<pad>"  # the 4-word "upright" captions are padded
    assert {c.split()[1] for c in captions} == set(THICKNESS_BINS)
    assert digit_captions(x[:3].reshape(3, 8, 8), y[:3].tolist()) == captions[:3]
    assert tokenize(captions[:2], max_len=7).shape == (2, 7)


def test_caption_errors_name_the_argument(train: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = train
    with pytest.raises(ValueError, match=r"unknown words \['purple', 'zebra'\]"):
        tokenize(["a thin zebra", "a purple one"])
    with pytest.raises(ValueError, match="max_len"):
        tokenize(["a thin one slanted left"], max_len=3)
    with pytest.raises(ValueError, match="empty"):
        tokenize(["a thin one", "  "])
    with pytest.raises(TypeError, match=r"captions\[1\]"):
        tokenize(["a thin one", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="`y`.*0..9"):
        digit_captions(x[:2], torch.tensor([1, 10]))
    with pytest.raises(ValueError, match="`y`.*shape"):
        digit_captions(x[:2], y[:3])
    with pytest.raises(TypeError, match="`y`"):
        digit_captions(x[:2], torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="`tokens`"):
        detokenize(torch.tensor([[1, 99]]))


def test_paired_and_unpaired_digits(train: tuple[torch.Tensor, torch.Tensor]) -> None:
    pytest.importorskip("sklearn", reason="load_digits needs scikit-learn")
    x, y = load_digits("valid", labels=True)
    source, target, labels = digit_pairs("valid", kind="invert", labels=True)
    assert torch.equal(source, x) and torch.equal(target, 16 - x) and torch.equal(labels, y)
    source, target = digit_pairs("valid", kind="thicken", amount=2)
    assert torch.equal(target, thicken_digits(x, 2)) and source.dtype == torch.get_default_dtype()

    first, second = _halves(297, 0)
    assert len(first) == len(second) == 148 and not set(first.tolist()) & set(second.tolist())
    source, target, ys, yt = digit_pairs("valid", kind="invert", labels=True, unpaired=True)
    assert torch.equal(source, x[first]) and torch.equal(invert_digits(target), x[second])
    assert torch.equal(ys, y[first]) and torch.equal(yt, y[second])
    assert not torch.equal(ys, yt)  # the i-th source and target are different digits
    other, _ = digit_pairs("valid", unpaired=True, seed=1)
    assert not torch.equal(other, digit_pairs("valid", unpaired=True)[0])


# ---------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda() -> None:
    for d in (Ring(device="cuda", dtype=torch.float64), Grid(device="cuda")):
        x = d.sample((100,))
        assert x.device.type == "cuda" and d.centres.device.type == "cuda"
        torch.testing.assert_close(d.log_prob(x).cpu(), type(d)(dtype=x.dtype).log_prob(x.cpu()))
    x = _random_digits(0).cuda()
    for f in (invert_digits, thicken_digits, stroke_thickness, slant):
        torch.testing.assert_close(f(x).cpu(), f(x.cpu()))
    assert slant(x, bins=True).device.type == "cuda"
