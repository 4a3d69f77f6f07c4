r"""Products of experts (Hinton, 2002): :math:`p(x) \propto \prod_i p_i(x)`, energies adding up."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist.distributions.energy import EnergyBased
from gendist.ebm.energy import EnergyRecipe, SingleSiteGibbs

__all__ = ["BinaryExpertsEnergy", "ExpertsEnergy", "ProductOfExperts"]


def _binary(d: Distribution) -> bool:
    if isinstance(d, EnergyBased):
        return d.binary
    base = d.support
    while isinstance(base, constraints.independent):
        base = base.base_constraint
    if base is constraints.boolean:
        return True
    if getattr(base, "is_discrete", False):
        raise ValueError(f"ProductOfExperts: an expert's values are discrete ({base}); experts take real or "
                         "binary values")
    return False


class ExpertsEnergy:
    r""":math:`E(x) = \sum_i E_i(x)` with :math:`E_i` an energy's own (``energy_of``) or :math:`-\log p_i(x)`
    for an expert with an exact ``log_prob``; the experts' distributions are built once (picklable)."""

    def __init__(self, experts: list[Distribution], event_shape: Size) -> None:
        self.experts, self.event_shape = experts, Size(event_shape)

    def __call__(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        total: Tensor | None = None
        for d in self.experts:
            e = d.energy_of(x) if isinstance(d, EnergyBased) else -d.log_prob(x)
            total = e if total is None else total + e
        assert total is not None
        return total.expand(x.shape[: x.dim() - len(self.event_shape)])


class BinaryExpertsEnergy(SingleSiteGibbs, ExpertsEnergy):
    r"""An :class:`ExpertsEnergy` over binary values, with single-site Gibbs sweeps for ``sampler="gibbs"``."""


class ProductOfExperts(EnergyRecipe):
    r"""A product of experts :math:`p(x \mid c) = \frac{1}{Z(c)} \prod_i p_i(x \mid c)`, the energy
    :math:`E(x \mid c) = \sum_i E_i(x \mid c)`; calling it returns an :class:`~gendist.EnergyBased` whose
    :math:`\log Z` is unknown (unless ``log_partition`` computes it).

    An expert is a module whose call builds a distribution: an energy model (its energy :math:`E_i`, from
    ``energy_of``: :class:`~gendist.ebm.Energy`, :class:`~gendist.ebm.JEM`, an RBM, another product) or a
    model with an exact ``log_prob`` (:math:`E_i = -\log p_i`: a flow, an autoregressive model, a module
    returning a torch distribution). The experts share the event shape, and the context: ``model(c)`` calls
    every expert with ``c`` (``model()`` calls them with none).

    Arguments:
        experts: the expert modules (at least one).
        sampler, steps, step_size, sampler_options, log_partition, partition_options: as for
            :class:`~gendist.ebm.Energy` (``sampler`` defaults to ``"mala"``, ``"gibbs"`` for binary values).

    Example:
        >>> from gendist.ebm import Energy
        >>> poe = ProductOfExperts(Energy(1, hidden=(8,)), Energy(1, hidden=(8,)), steps=5)
        >>> d = poe(log_partition="quadrature", partition_options={"points": 101})
        >>> d.log_prob(torch.zeros(3, 1)).shape, d.log_prob_kind
        (torch.Size([3]), 'exact')

    References:
        | Training Products of Experts by Minimizing Contrastive Divergence (Hinton, 2002)
    """

    def __init__(
        self,
        *experts: nn.Module,
        sampler: str | None = None,
        steps: int = 200,
        step_size: float = 0.01,
        sampler_options: dict[str, Any] | None = None,
        log_partition: str | None = None,
        partition_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not experts:
            raise ValueError("ProductOfExperts: give at least one expert (modules whose call builds a distribution)")
        for i, m in enumerate(experts):
            if not isinstance(m, nn.Module):
                raise TypeError(f"ProductOfExperts: expert {i} must be an nn.Module whose call builds a distribution "
                                f"(wrap a fixed distribution in a module), got {type(m).__name__}")
        self.experts = nn.ModuleList(experts)
        # the support is known once the experts are built: checked against it then
        self._set_options("ProductOfExperts", False, sampler or "mala", steps, step_size, sampler_options,
                          log_partition, partition_options)
        self.options["sampler"] = sampler

    def distributions(self, c: Tensor | None = None) -> list[Distribution]:
        r"""The experts' distributions given ``c``, checked: the same event shape, batch shapes that broadcast
        to ``c``'s leading shape, exact ``log_prob`` where the expert is not an energy."""
        out = []
        for i, m in enumerate(self.experts):
            d = m(c) if c is not None else m()
            if not isinstance(d, Distribution):
                raise TypeError(f"ProductOfExperts: expert {i} ({type(m).__name__}) must build a distribution when "
                                f"called, got {type(d).__name__}")
            kind = getattr(d, "log_prob_kind", "exact")
            if not isinstance(d, EnergyBased) and kind != "exact":
                raise ValueError(f"ProductOfExperts: expert {i} ({type(m).__name__}) has a log_prob of kind {kind!r}, "
                                 "not 'exact'; a product needs exact log-densities or energies")
            out.append(d)
        shapes = [tuple(d.event_shape) for d in out]
        if len(set(shapes)) > 1:
            raise ValueError(f"ProductOfExperts: the experts must share the event shape, got {shapes} "
                             "(a torch distribution over a vector needs `.to_event(1)` or Independent)")
        batch = c.shape[:-1] if c is not None else Size()
        for i, d in enumerate(out):
            try:
                ok = torch.broadcast_shapes(d.batch_shape, batch) == batch
            except RuntimeError:
                ok = False
            if not ok:
                raise ValueError(f"ProductOfExperts: expert {i} has batch shape {tuple(d.batch_shape)}; the product's "
                                 f"is the context's leading shape {tuple(batch)}: expected it or one broadcasting "
                                 "to it")
        return out

    def forward(self, c: Tensor | None = None, **options: Any) -> EnergyBased:
        r"""The product :math:`p(x \mid c)`; keyword ``options`` override the sampler and partition settings."""
        experts = self.distributions(c)
        binary = {_binary(d) for d in experts}
        if len(binary) > 1:
            raise ValueError("ProductOfExperts: the experts mix binary and real values; they must share the support")
        shape, is_binary = experts[0].event_shape, binary.pop()
        energy = (BinaryExpertsEnergy if is_binary else ExpertsEnergy)(experts, shape)
        return self._distribution("ProductOfExperts", energy, shape, is_binary, c, options)

    def energy(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r""":math:`E(x \mid c) = \sum_i E_i(x \mid c)`, shape ``x.shape[:-len(event_shape)]``."""
        return self(c).energy_of(x)
