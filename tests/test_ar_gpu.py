"""Autoregressive models on CUDA (skipped without a GPU): every tensor stays on the device."""

import pytest
import torch

from gendist.autoregressive import (
    MADE,
    NADE,
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    Normal,
    PixelCNN,
    Transformer,
    WaveNet,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MODELS = {
    "made": lambda: MADE(5, Bernoulli(), hidden=(16,), context=2),
    "made-orders": lambda: MADE(4, Categorical(3), hidden=(16,), orders=3).eval(),
    "nade": lambda: NADE(5, Normal(), hidden=16, context=2),
    "pixelcnn": lambda: PixelCNN((3, 2, 2), Categorical(3), channels=9, layers=2, kernel=3, context=2),
    "wavenet": lambda: WaveNet(6, DiscretizedLogisticMixture(4, 2), channels=8, layers=2, context=2),
    "transformer": lambda: Transformer(6, Bernoulli(), d_model=16, heads=2, layers=1),
}


@pytest.mark.parametrize("name", MODELS)
def test_autoregressive_on_cuda(name):
    model = MODELS[name]().double().cuda()
    c = torch.randn(3, model.context, dtype=torch.float64, device="cuda") if model.context else None
    d = model(c)
    torch.manual_seed(0)
    x = d.sample((2,))
    assert x.is_cuda
    lp = d.log_prob(x)
    assert lp.is_cuda and lp.shape == x.shape[: 1 + len(d.batch_shape)] and bool(lp.isfinite().all())
    if hasattr(d, "model"):  # a single Autoregressive (not an Ensemble)
        torch.manual_seed(1)
        a = d.sample((2,))
        torch.manual_seed(1)
        b = d.sample((2,), cache=False)
        assert torch.equal(a, b)
        observed = torch.zeros(d.event_shape, dtype=torch.bool, device="cuda")
        observed.view(-1)[0] = True
        assert d.inpaint(x[0], observed).is_cuda
    if d.has_enumerate_support and not d.batch_shape:
        s = d.enumerate_support()
        assert s.is_cuda and abs(float(d.log_prob(s).exp().sum()) - 1) < 1e-9
