r"""Energy-based models: the recipes users build (RBMs, deep energies, JEM, products of experts); calling one
returns its :class:`~gendist.distributions.EnergyBased`."""

__all__: list[str] = []
