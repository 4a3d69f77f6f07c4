"""Energy-based models on CUDA (skipped without a GPU): every tensor stays on the device, in float64 too."""

import pytest
import torch

from gendist.ebm import JEM, RBM, Energy, ProductOfExperts
from gendist.flows import MAF
from gendist.inference import ContrastiveDivergence, DenoisingScoreMatching, fit

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MODELS = {
    "rbm-bernoulli": lambda: RBM(6, 4, steps=5),
    "rbm-gaussian-centered": lambda: RBM(2, 3, visible_kind="gaussian", centering=True, steps=5),
    "energy-context": lambda: Energy(2, context=2, hidden=(8,), steps=5),
    "energy-hmc": lambda: Energy(2, hidden=(8,), sampler="hmc", steps=5),
    "jem": lambda: JEM(3, 2, hidden=(8,), steps=5),
    "product": lambda: ProductOfExperts(Energy(2, hidden=(8,)), MAF(2, transforms=1, hidden=(8,)), steps=5),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_energy_models_on_cuda(name, dtype):
    model = MODELS[name]().to(device="cuda", dtype=dtype)
    c = torch.randn(3, 2, device="cuda", dtype=dtype) if name == "energy-context" else None
    d = model(c)
    x = d.sample((4,))
    assert x.is_cuda and x.dtype == dtype
    assert d.unnormalized_log_prob(x).is_cuda
    method = "exact" if name.startswith("rbm") else "quadrature"
    n = d.normalized(method)
    lp = n.log_prob(x)
    assert lp.is_cuda and bool(lp.isfinite().all())
    if name.startswith("rbm-bernoulli"):
        est = d.log_partition("ais", chains=16, betas=20, generator=torch.Generator("cuda").manual_seed(0))
        assert est.value.is_cuda and est.stderr.is_cuda
    else:
        assert d.score(x).is_cuda


def test_training_on_cuda_with_persistent_chains():
    rbm = RBM(6, 4).cuda()
    x = torch.randint(0, 2, (64, 6), device="cuda").float()
    loss = ContrastiveDivergence(1, persistent=True, chains=16)
    history = fit(rbm, x, objective=loss, epochs=2, batch_size=16, progress=False)
    assert len(history.step_loss) == 8 and loss.chains.is_cuda
    energy = Energy(2, hidden=(8,)).cuda()
    fit(energy, torch.randn(64, 2, device="cuda"), objective=DenoisingScoreMatching(0.1), epochs=1, batch_size=16,
        progress=False)
