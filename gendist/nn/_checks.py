r"""Argument checks shared by the networks and their recipes."""

from __future__ import annotations

import operator

__all__ = ["check_integer"]


def check_integer(name: str, value: object, low: int) -> int:
    r"""``value`` as an ``int`` of at least ``low``, or a ``ValueError`` naming the argument ``name``."""
    try:
        out = operator.index(value)  # ints and integer scalars (numpy, 0-d integer tensors); not 2.5 or "3"
    except TypeError:
        out = None
    if out is None or isinstance(value, bool) or out < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return out
