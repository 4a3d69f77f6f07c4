"""The public checks fail on broken compositions (each check can fail)."""

import pyro.distributions as dist
import pytest
import torch
import torch.nn as nn
from torch.distributions import constraints

from gendist.autoregressive import ARModule, Categorical
from gendist.distributions import Autoregressive, Flow
from gendist.testing import (
    check_autoregressive,
    check_bad_inputs,
    check_cached_sampling,
    check_enumeration,
    check_inpaint,
    check_invertible,
    check_log_abs_det_jacobian,
    check_normalized,
    check_sample_log_prob,
    check_shapes,
    check_support,
)
from gendist.transforms import MonotonicAffine, Transform


class _ForgotLadj(Transform):
    """y = 2x + 1 whose log-determinant is wrongly zero."""

    domain = codomain = constraints.real

    def call_and_ladj(self, x):
        return 2 * x + 1, torch.zeros_like(x)

    def inv_and_ladj(self, y):
        return (y - 1) / 2, torch.zeros_like(y)


class _WrongInverse(_ForgotLadj):
    def call_and_ladj(self, x):
        return 2 * x + 1, torch.full_like(x, 0.6931471805599453)

    def inv_and_ladj(self, y):
        return (y - 1) / 2.01, torch.full_like(y, 0.6931471805599453)


def _base(d=2):
    return dist.Normal(torch.zeros(d), torch.ones(d)).to_event(1)


def test_correct_composition_passes():
    t = MonotonicAffine(torch.tensor(1.0), torch.tensor(0.6931471805599453))
    d = Flow(_base(), [t])
    check_invertible(t, torch.randn(10))
    check_log_abs_det_jacobian(t, torch.randn(10))
    assert check_sample_log_prob(d) > 1e-3
    assert abs(check_normalized(d) - 1) < 1e-3
    check_shapes(d)
    check_bad_inputs(d)


def test_forgotten_log_det_is_caught():
    d = Flow(_base(), [_ForgotLadj()])
    with pytest.raises(AssertionError, match="log|det"):
        check_log_abs_det_jacobian(_ForgotLadj(), torch.randn(5))
    with pytest.raises(AssertionError, match="integrates to"):
        check_normalized(d)
    with pytest.raises(AssertionError, match="goodness of fit"):
        check_sample_log_prob(d)


def test_wrong_inverse_is_caught():
    with pytest.raises(AssertionError, match="f\\(f\\^-1\\(y\\)\\) vs y"):
        check_invertible(_WrongInverse(), torch.randn(10))


def test_unnormalized_density_is_caught():
    class Shifted(dist.Normal):
        def log_prob(self, x):
            return super().log_prob(x) + 0.3

    with pytest.raises(AssertionError):
        check_sample_log_prob(Shifted(torch.zeros(2), 1.0).to_event(1))
    with pytest.raises(AssertionError, match="integrates to"):
        check_normalized(Shifted(torch.zeros(1), 1.0).to_event(1))


def test_silent_nan_is_caught():
    class Silent(dist.Normal):  # accepts NaN quietly, as torch does without validation
        pass

    with pytest.raises(AssertionError, match="NaN input"):
        check_bad_inputs(Silent(torch.zeros(2), 1.0, validate_args=False).to_event(1))


# ---------------------------------------------------------------- autoregressive checks


class _Chain(ARModule):
    r"""A hand-made autoregressive model: :math:`\theta_i = w (2 x_{i-1} - 1)` (+ ``leak`` :math:`(2 x_i - 1)`)."""

    def __init__(self, family: object = "bernoulli", features: int = 3, strength: float = 3.0,
                 leak: float = 0.0) -> None:
        super().__init__((features,), family)
        self.w = nn.Parameter(torch.tensor(float(strength)))
        self.leak = leak

    def conditionals(self, x, c):
        v = 2 * self.encode(x)[..., 0] - 1  # (N, D)
        prev = torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1)
        mean = self.w * prev + self.leak * v
        return torch.stack([mean] + [torch.zeros_like(mean)] * (self.family.params - 1), -1)


class _StaleCache(_Chain):
    """A cached step that disagrees with the full pass."""

    def step(self, state, x, c, i):
        return self.step_uncached(x, c, i) + 0.5


class _Embedded(ARModule):
    """Reads its input through an embedding lookup (no gradient reaches the value): checked by intervention."""

    def __init__(self, leak: bool = False) -> None:
        super().__init__((3,), Categorical(3))
        self.embed = nn.Embedding(3, 1)
        self.leak = leak

    def conditionals(self, x, c):
        e = self.embed(x.long())[..., 0]  # (N, 3)
        if not self.leak:  # position i sees positions < i (<= i when leaky)
            e = torch.cat([torch.zeros_like(e[:, :1]), e[:, :-1]], 1)
        seen = e.cumsum(1)
        return seen.unsqueeze(-1) * torch.tensor([1.0, -1.0, 0.5])


def test_correct_autoregressive_model_passes():
    for family in ("bernoulli", Categorical(3), Categorical(3, encode="scalar"), "normal"):
        model = _Chain(family)
        check_autoregressive(model)
        if model.family.discrete:
            check_enumeration(model())
        check_cached_sampling(model())
        check_support(model())
    check_inpaint(_Chain()())
    check_autoregressive(_Embedded())


def test_leaky_model_is_caught():
    for family in ("bernoulli", Categorical(3), Categorical(3, encode="scalar"), "normal"):
        with pytest.raises(AssertionError, match="not autoregressive.*position 1 \\(step 1\\) on position 1"):
            check_autoregressive(_Chain(family, leak=1.0))
    with pytest.raises(AssertionError, match="sum to"):
        check_enumeration(_Chain(leak=1.0)())
    with pytest.raises(AssertionError, match="sum to"):
        check_enumeration(_Chain(Categorical(3), leak=1.0)())
    with pytest.raises(AssertionError, match="not autoregressive.*change of theta"):
        check_autoregressive(_Embedded(leak=True))  # no gradient path: by intervention


def test_disconnected_model_is_caught():
    cut = _Chain(strength=0.0)
    with pytest.raises(AssertionError, match="depend on none of the positions before them"):
        check_autoregressive(cut)
    check_autoregressive(cut, connected=False)


def test_stale_cache_is_caught():
    with pytest.raises(AssertionError, match="cached sample vs uncached sample"):
        check_cached_sampling(_StaleCache("normal")())
    with pytest.raises(AssertionError, match="cached and uncached sampling drew different values|log-probabilities"):
        check_cached_sampling(_StaleCache(strength=0.0)(), sample_shape=(50,))


def test_lenient_support_is_caught():
    class Lenient(Autoregressive):  # clamps out-of-support values instead of rejecting them
        def log_prob(self, value):
            return super().log_prob(value.nan_to_num(0.0).clamp(0, 1).round())

    d = Lenient(_Chain())
    with pytest.raises(AssertionError, match="expected -inf"):
        check_support(d)


class _MarginalInpaint(Autoregressive):
    """Keeps the observed entries but draws the others from the marginal, ignoring the observations."""

    def inpaint(self, value, observed, sample_shape=(), particles=1):
        return torch.where(observed, value, self.sample(sample_shape))


class _NoResampling(Autoregressive):
    """Ignores ``particles``: no correction for observed positions late in the order."""

    def inpaint(self, value, observed, sample_shape=(), particles=1):
        return super().inpaint(value, observed, sample_shape, 1)


class _Overwrites(Autoregressive):
    def inpaint(self, value, observed, sample_shape=(), particles=1):
        return self.sample(sample_shape)


def test_inpaint_bugs_are_caught():
    found = check_inpaint(Autoregressive(_Chain()))
    assert found["tv_particles_1"] > 0.2 > 0.05 > found["tv_sir"]  # the chain makes the late observation matter
    with pytest.raises(AssertionError, match="chi-square"):
        check_inpaint(_MarginalInpaint(_Chain()))
    with pytest.raises(AssertionError, match="16 particles"):
        check_inpaint(_NoResampling(_Chain()), particles=16)
    with pytest.raises(AssertionError, match="changed .* observed entries"):
        check_inpaint(_Overwrites(_Chain()))


def test_discrete_goodness_of_fit_catches_bugs():
    assert check_sample_log_prob(Autoregressive(_Chain()), n=4000) > 1e-3

    class Shifted(Autoregressive):  # log_prob off by a constant: probabilities sum to e^0.3
        def log_prob(self, value):
            return super().log_prob(value) + 0.3

    with pytest.raises(AssertionError, match="total probability 1.3498"):
        check_sample_log_prob(Shifted(_Chain()), n=4000, fused=False)

    class WrongSampler(Autoregressive):  # draws from a weaker chain than the one it scores
        def sample(self, sample_shape=torch.Size(), cache=True):
            return Autoregressive(_Chain(strength=1.5)).sample(sample_shape)

    with pytest.raises(AssertionError, match="goodness of fit"):
        check_sample_log_prob(WrongSampler(_Chain()), n=4000, fused=False)


def test_discrete_bad_inputs_check_only_the_shape():
    d = _Chain(Categorical(3))()
    check_bad_inputs(d)  # NaN and integer tensors are check_support's business for discrete values

    class Silent(Autoregressive):
        def log_prob(self, value):
            return super().log_prob(value[..., :3])

    with pytest.raises(AssertionError, match="wrong event shape"):
        check_bad_inputs(Silent(_Chain()))
