r"""``kl_divergence`` of gendist distributions: registered, so torch's dispatch gives an error that says what to do.

Unregistered pairs make torch raise "No KL(p || q) is implemented" and name nothing to use instead; every
gendist family is registered as ``p`` against any ``q`` here. Two flows that push their bases through the same
transform objects keep torch's answer, the KL of their bases; any other pair raises a ``NotImplementedError``
naming the Monte Carlo estimate and :mod:`gendist.metrics`.
"""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution, TransformedDistribution, kl_divergence, register_kl

from gendist.distributions.autoregressive import Autoregressive, Ensemble
from gendist.distributions.base import register_no_kl, unimplemented
from gendist.distributions.chain import Chain
from gendist.distributions.diffusion import Diffusion
from gendist.distributions.factorized import Factorized
from gendist.distributions.flow import Flow
from gendist.distributions.latent import LatentVariable, VQVAEDistribution

__all__ = ["FAMILIES"]

FAMILIES: tuple[type[Distribution], ...] = (
    Flow, Autoregressive, Ensemble, LatentVariable, VQVAEDistribution, Diffusion, Factorized, Chain,
)
r"""The distribution classes registered as ``p`` of ``kl_divergence(p, q)``."""


def _kl_flows(p: Flow, q: TransformedDistribution) -> Tensor:
    r"""KL of the bases when both flows apply the same transforms (KL is invariant under one bijection)."""
    if p.transforms != q.transforms or p.event_shape != q.event_shape:
        raise unimplemented(p, "kl", f"kl_divergence(p={type(p).__name__}, q={type(q).__name__}), other transforms")
    try:
        return kl_divergence(p.base_dist, q.base_dist)
    except NotImplementedError as e:  # bases without a closed form (a mixture)
        raise unimplemented(p, "kl", "no closed-form KL between the bases either") from e


for _family in FAMILIES:
    register_no_kl(_family)
# more specific than torch's (TransformedDistribution, TransformedDistribution), so no dispatch is ambiguous
register_kl(Flow, TransformedDistribution)(_kl_flows)
register_kl(Flow, Flow)(_kl_flows)
