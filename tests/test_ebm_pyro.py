r"""Energy-based models inside Pyro (issue 14): an EBM prior under NUTS, ``pyro.factor``, ``potential_fn``.

The prior's energy is a known Gaussian's, :math:`E(x) = \frac12 \lVert (x - m) / s \rVert^2`, so the
posterior under Gaussian observations is known in closed form; its unknown :math:`\log Z` cancels in MCMC,
which is why ``d.unnormalized()`` (``log_prob = -E``) is what ``pyro.sample`` takes. A strict EBM (``log_prob``
needing :math:`\log Z`) refuses under NUTS, naming what to use, rather than giving a silently wrong answer.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn as nn
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_value
from torch import Tensor

from gendist.distributions import EnergyBased, LogPartitionUnknown
from gendist.ebm import Energy

M, S = torch.tensor([1.0, -0.5]), torch.tensor([0.8, 1.5])  # the prior N(M, S^2)
NOISE = 0.7
Y = torch.tensor([[1.6, 0.4], [1.2, 1.1], [2.0, 0.3]])  # three observations y ~ N(x, NOISE^2)


class GaussianEnergy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean, self.log_scale = nn.Parameter(M.clone()), nn.Parameter(S.log())

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * ((x - self.mean) / self.log_scale.exp()).pow(2).sum(-1)


@pytest.fixture(autouse=True)
def _fresh_pyro():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


def _prior() -> EnergyBased:
    return Energy(2, net=GaussianEnergy())()


def _posterior() -> tuple[Tensor, Tensor]:
    precision = S**-2 + len(Y) / NOISE**2
    return (M * S**-2 + Y.sum(0) / NOISE**2) / precision, precision**-1


def _check(x: Tensor, mean: Tensor, var: Tensor) -> None:
    # 300 correlated draws: the mean within ~4 standard errors, the variance within 35%
    torch.testing.assert_close(x.mean(0), mean, rtol=0, atol=float(4 * (var.max() / 100).sqrt()))
    torch.testing.assert_close(x.var(0), var, rtol=0.35, atol=0)


def test_ebm_prior_under_nuts_matches_the_known_posterior():
    d = _prior().unnormalized()

    def model() -> None:
        x = pyro.sample("x", d)
        with pyro.plate("data", len(Y)):
            pyro.sample("y", dist.Normal(x, NOISE).to_event(1), obs=Y)

    mcmc = MCMC(NUTS(model), num_samples=300, warmup_steps=150, disable_progbar=True)
    mcmc.run()
    _check(mcmc.get_samples()["x"].detach(), *_posterior())


def test_pyro_factor_is_the_same_prior():
    d = _prior()

    def model() -> None:
        x = pyro.sample("x", dist.ImproperUniform(dist.constraints.real, (), (2,)))
        pyro.factor("e", -d.energy_of(x))
        with pyro.plate("data", len(Y)):
            pyro.sample("y", dist.Normal(x, NOISE).to_event(1), obs=Y)

    # an improper site cannot be drawn: NUTS starts from a given value
    nuts = NUTS(model, init_strategy=init_to_value(values={"x": torch.zeros(2)}), max_plate_nesting=1)
    mcmc = MCMC(nuts, num_samples=300, warmup_steps=150, disable_progbar=True)
    mcmc.run()
    _check(mcmc.get_samples()["x"].detach(), *_posterior())


def test_nuts_on_the_potential_function():
    d = _prior()
    mcmc = MCMC(NUTS(potential_fn=d.potential()), num_samples=300, warmup_steps=150, disable_progbar=True,
                initial_params={"x": torch.zeros(2)})
    mcmc.run()
    _check(mcmc.get_samples()["x"].detach(), M, S**2)


def test_a_strict_ebm_refuses_log_prob_and_nuts():
    d = _prior()
    assert d.log_prob_kind == "unnormalized"
    with pytest.raises(LogPartitionUnknown) as info:
        d.log_prob(torch.zeros(2))
    assert "log_partition" in str(info.value) and "unnormalized_log_prob" in str(info.value)
    assert isinstance(info.value, NotImplementedError)

    def model() -> None:
        pyro.sample("x", d)

    with pytest.raises(LogPartitionUnknown, match="unnormalized"):
        MCMC(NUTS(model), num_samples=5, warmup_steps=5, disable_progbar=True).run()
    # the normalized distribution is a proper prior: its log_prob is exact and NUTS runs on it
    n = d.normalized("quadrature", bound=10.0, points=201)
    assert n.log_prob_kind == "exact"
    torch.testing.assert_close(n.log_prob(Y), dist.Normal(M, S).to_event(1).log_prob(Y), rtol=0, atol=1e-4)
