r"""Adapters to and from other libraries: nflows transforms and flows (both ways), Pyro autoguides."""

from gendist.interop.nflows import (
    FromNflows,
    NflowsBase,
    NflowsFlow,
    NflowsTransform,
    ToNflows,
    from_nflows,
    from_nflows_flow,
    to_nflows,
)
from gendist.interop.pyro import FlowTransform

__all__ = [
    "FlowTransform",
    "FromNflows",
    "NflowsBase",
    "NflowsFlow",
    "NflowsTransform",
    "ToNflows",
    "from_nflows",
    "from_nflows_flow",
    "to_nflows",
]
