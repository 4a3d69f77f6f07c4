r"""Argument checks shared across gendist: errors that name the argument."""

from __future__ import annotations

import operator

__all__ = ["check_integer"]


def check_integer(name: str, value: object, low: int = 1, odd: bool = False) -> int:
    r"""``value`` as an ``int`` of at least ``low`` (and odd, if asked), or a ``ValueError`` naming ``name``."""
    try:
        out = operator.index(value)  # ints and integer scalars (numpy, 0-d integer tensors); not 2.5 or "3"
    except TypeError:
        out = None
    if out is None or isinstance(value, bool) or out < low or (odd and out % 2 == 0):
        raise ValueError(f"{name} must be {'an odd' if odd else 'an'} integer >= {low}, got {value!r}")
    return out
