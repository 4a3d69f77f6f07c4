r"""Energy-based models: the recipes users build (RBMs, deep energies, JEM, products of experts); calling one
returns its :class:`~gendist.distributions.EnergyBased`."""

__all__: list[str] = []

from gendist.ebm.rbm import RBM, RBMEnergy, ais_schedule  # noqa: E402

__all__ += ["RBM", "RBMEnergy", "ais_schedule"]

from gendist.ebm.energy import (  # noqa: E402
    PARTITION_METHODS,
    SUPPORTS,
    BinaryNetEnergy,
    Energy,
    EnergyRecipe,
    NetEnergy,
    SingleSiteGibbs,
)
from gendist.ebm.jem import JEM, LogitEnergy  # noqa: E402
from gendist.ebm.product import BinaryExpertsEnergy, ExpertsEnergy, ProductOfExperts  # noqa: E402

__all__ += ["PARTITION_METHODS", "SUPPORTS", "BinaryNetEnergy", "Energy", "EnergyRecipe", "NetEnergy"]
__all__ += ["SingleSiteGibbs"]
__all__ += ["JEM", "LogitEnergy"]
__all__ += ["BinaryExpertsEnergy", "ExpertsEnergy", "ProductOfExperts"]
