"""Pyro guides on CUDA (skipped without a GPU): AutoFlow trains, samples and summarizes on the device."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from gendist.bayes import AutoFlow, svi

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_autoflow_on_cuda(dtype):
    y = torch.randn(20, 2, device="cuda", dtype=dtype)

    def model(y):
        mu = pyro.sample("mu", dist.Normal(torch.zeros(2, device=y.device, dtype=y.dtype), 1.0).to_event(1))
        sigma = pyro.sample("sigma", dist.LogNormal(torch.zeros((), device=y.device, dtype=y.dtype), 1.0))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal(mu, sigma.unsqueeze(-1)).to_event(1), obs=y)

    pyro.clear_param_store()
    guide = AutoFlow(model)
    svi(model, guide, y, steps=10)
    draws = guide(y)
    assert draws["mu"].is_cuda and draws["mu"].dtype == dtype
    assert all(p.is_cuda for p in guide.parameters())
    assert guide.median(y)["sigma"].is_cuda
