r"""Adapters to and from other flow libraries (nflows), with numerical agreement tests."""

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

__all__ = [
    "FromNflows",
    "NflowsBase",
    "NflowsFlow",
    "NflowsTransform",
    "ToNflows",
    "from_nflows",
    "from_nflows_flow",
    "to_nflows",
]
