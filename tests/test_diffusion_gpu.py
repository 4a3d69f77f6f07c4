"""Diffusion models on CUDA (skipped without a GPU): every tensor stays on the device."""

import pytest
import torch

from gendist.diffusion import DiffusionModel
from gendist.samplers import SAMPLERS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("sde", ["vp", "subvp", "ve", "ddpm"])
@pytest.mark.parametrize("context", [0, 2])
def test_diffusion_on_cuda(sde, context):
    model = DiffusionModel(3, sde=sde, hidden=(16,), context=context, rtol=1e-4, atol=1e-4).double().cuda()
    c = torch.randn(4, context, dtype=torch.float64, device="cuda") if context else None
    d = model(c)
    x = d.sample((2,))
    assert x.is_cuda and x.dtype == torch.float64
    lp = d.log_prob(x)
    assert lp.is_cuda and lp.shape == x.shape[:-1] and bool(lp.isfinite().all())
    est = model(c, divergence="hutchinson").log_prob(x)
    assert est.is_cuda and bool(est.isfinite().all())
    loss = model.loss(torch.randn(4, 3, dtype=torch.float64, device="cuda"), c)
    loss.backward()
    assert all(p.grad is None or p.grad.is_cuda for p in model.parameters())
    model.after_step()


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_on_cuda(sampler):
    model = DiffusionModel(2, hidden=(16,), sampler=sampler, steps=5, rtol=1e-3, atol=1e-3).cuda().eval()
    x = model().sample((7,))
    assert x.is_cuda and x.shape == (7, 2) and bool(x.isfinite().all())
