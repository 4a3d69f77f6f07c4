"""Recipes record a JSON config that, with the state_dict, recreates the model."""

import json

import pytest
import torch
from torch.distributions import constraints

from gendist.config import config, from_config
from gendist.flows import (
    IAF,
    MAF,
    NICE,
    NSF,
    FlowModule,
    PlanarFlow,
    RadialFlow,
    RealNVP,
    SylvesterFlow,
)

RECIPES = [
    lambda: MAF(3, context=2, transforms=2, hidden=(8,), randperm=True, seed=4, univariate="spline",
                activation=torch.nn.Tanh, support=constraints.interval(-3.0, 4.0)),
    lambda: IAF(2, transforms=2, hidden=(8, 8)),
    lambda: NSF(3, transforms=2, bins=5, bound=2.0, coupling=True, masks=[torch.tensor([1, 0, 1]),
                                                                          torch.tensor([0, 1, 0])]),
    lambda: NSF(2, context=1, fast="sample", support=constraints.positive),
    lambda: RealNVP(4, transforms=3, hidden=(8,)),
    lambda: NICE(2, context=2, transforms=2),
    lambda: PlanarFlow(2, transforms=3),
    lambda: RadialFlow(3, context=2, transforms=2),
    lambda: SylvesterFlow(3, transforms=2, rank=2),
]


@pytest.mark.parametrize("i", range(len(RECIPES)))
def test_config_round_trip_gives_identical_log_prob(i):
    torch.manual_seed(i)
    flow = RECIPES[i]()
    cfg = json.loads(json.dumps(config(flow)))
    torch.manual_seed(100 + i)
    clone = from_config(cfg)
    clone.load_state_dict(flow.state_dict())
    c = torch.randn(4, flow.context) if flow.context else None
    x = flow(c).sample((3,))
    assert torch.equal(clone(c).log_prob(x), flow(c).log_prob(x))


def test_models_without_a_config_say_why():
    with pytest.raises(ValueError, match="not built by a gendist recipe"):
        config(FlowModule([], features=2))
    with pytest.raises(ValueError, match="`base`"):
        config(MAF(2, base=torch.distributions.Independent(torch.distributions.Laplace(torch.zeros(2), 1.0), 1)))
    with pytest.raises(ValueError, match="unknown model class"):
        from_config({"class": "os.system", "args": {}})


def test_dicts_of_options_and_recipes_inside_a_recipe_round_trip():
    from gendist.ebm import Energy, ProductOfExperts
    from gendist.flows import MAF

    energy = Energy(2, hidden=(8,), sampler_options={"step_size": 0.1}, partition_options={"points": 51})
    product = ProductOfExperts(energy, MAF(2, transforms=1, hidden=(4,)))
    for model in (energy, product):
        clone = from_config(json.loads(json.dumps(config(model))))
        clone.load_state_dict(model.state_dict())
        x = torch.randn(3, 2)
        want = model(log_partition="quadrature").log_prob(x)
        assert torch.equal(clone(log_partition="quadrature").log_prob(x), want)
    assert clone.options["sampler_options"] is None or isinstance(clone.options["sampler_options"], dict)
