"""The public checks fail on broken compositions (each check can fail)."""

import pyro.distributions as dist
import pytest
import torch
from torch.distributions import constraints

from gendist.distributions import Flow
from gendist.testing import (
    check_bad_inputs,
    check_invertible,
    check_log_abs_det_jacobian,
    check_normalized,
    check_sample_log_prob,
    check_shapes,
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
